/* fileio.c - writing a file atomically (contract in include/resflow/resflow.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resflow/resflow.h"

rf_status rf_write_atomic(const char *path, const char *data, size_t len, rf_error *err)
{
    size_t n = strlen(path) + 5;
    char *tmp = malloc(n);
    if (!tmp) return rf_errorf(err, RF_ENOMEM, "out of memory");
    snprintf(tmp, n, "%s.tmp", path);
    rf_status st = RF_OK;
    FILE *fp = fopen(tmp, "wb");
    if (!fp) {
        st = rf_errorf(err, RF_EIO, "cannot write %s: %s", tmp, strerror(errno));
    } else {
        int bad = fwrite(data, 1, len, fp) != len;
        bad |= fclose(fp) != 0;
        if (bad || rename(tmp, path)) {
            st = rf_errorf(err, RF_EIO, "cannot write %s: %s", path, strerror(errno ? errno : EIO));
            remove(tmp);
        }
    }
    free(tmp);
    return st;
}
