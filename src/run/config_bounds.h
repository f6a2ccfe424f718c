/* config_bounds.h - limits checked on configuration text before libyaml sees it (issue #17,
 * finding 6): libyaml's time grows with the square of the nesting depth (30k nested brackets
 * took 6.7 s) and a file is read whole, so both are bounded. Internal. */
#ifndef RESFLOW_CONFIG_BOUNDS_H
#define RESFLOW_CONFIG_BOUNDS_H

#include <stddef.h>

#include "resflow/resflow.h"

#define RF_CONFIG_MAX_BYTES (1u << 20) /* a configuration file or text */
#define RF_CONFIG_MAX_DEPTH 32         /* nested flow collections ([ {) */
#define RF_CONFIG_MAX_INDENT 256       /* columns of indentation, block sequence dashes included */

/* RF_OK, or RF_EUSAGE at name:line:column saying which limit the text exceeds. */
rf_status rf_cfg_check_bounds_(const char *text, size_t len, const char *name, rf_error *err);

#endif
