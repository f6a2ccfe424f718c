/* fileio.h - library-internal file helpers. */
#ifndef RESFLOW_FILEIO_H
#define RESFLOW_FILEIO_H

#include <stddef.h>

#include "resflow/resflow.h"

/* Write text[0..len) to path.tmp, then rename it to path, so a reader never sees a partial
 * file. RF_EIO (naming the file and the reason) or RF_ENOMEM on failure; nothing is left behind. */
rf_status rf_write_atomic(const char *path, const char *text, size_t len, rf_error *err);

#endif
