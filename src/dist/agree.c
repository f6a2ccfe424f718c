/* agree.c - agreement between the processes at a phase boundary, on top of the communicator's
 * collectives (either build): a status (the lowest failing rank's error everywhere) and a
 * byte string (the configuration) that must be the same everywhere. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "resflow/dist.h"

rf_status rf_comm_agree(rf_comm *c, rf_status st, rf_error *err)
{
    int n = rf_comm_size(c);
    if (n == 1) return st;
    rf_error mine;
    if (st) mine = *err;
    else memset(&mine, 0, sizeof mine);
    mine.code = st;
    rf_error *all = malloc((size_t)n * sizeof *all);
    rf_error tmp;
    if (!all) return rf_errorf(err, RF_ENOMEM, "out of memory");
    rf_status cs = rf_comm_allgather(c, &mine, sizeof mine, all, &tmp);
    if (cs) {
        free(all);
        *err = tmp;
        return cs;
    }
    st = RF_OK;
    for (int r = 0; r < n && !st; r++) {
        if (!all[r].code) continue;
        st = all[r].code;
        *err = all[r];
        int k = snprintf(err->msg, sizeof err->msg, "rank %d: ", r);
        if (k > 0 && (size_t)k < sizeof err->msg)
            memcpy(err->msg + k, all[r].msg, strnlen(all[r].msg, sizeof err->msg - 1 - k) + 1);
        err->msg[sizeof err->msg - 1] = 0;
    }
    free(all);
    return st;
}

rf_status rf_comm_check_same(rf_comm *c, const void *bytes, size_t len, const char *what, rf_error *err)
{
    int n = rf_comm_size(c);
    uint64_t h = XXH3_64bits(bytes, len), *all = malloc((size_t)n * sizeof *all);
    if (!all) return rf_errorf(err, RF_ENOMEM, "out of memory");
    rf_status st = rf_comm_allgather(c, &h, sizeof h, all, err);
    for (int r = 1; r < n && !st; r++)
        if (all[r] != all[0])
            st = rf_errorf(err, RF_EUSAGE,
                           "rank %d's %s differs from rank 0's (hash %016llx vs %016llx)",
                           r, what, (unsigned long long)all[r], (unsigned long long)all[0]);
    free(all);
    return st;
}
