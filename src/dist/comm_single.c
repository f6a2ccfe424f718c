/* comm_single.c - the communicator of a build without MPI: one process, every collective a
 * copy or nothing (comm_mpi.c is the MPI one; the same functions, so callers have no #ifdefs). */
#include <stdlib.h>
#include <string.h>

#include "resflow/dist.h"

struct rf_comm {
    int unused;
};

const char *rf_comm_kind(void) { return "single"; }

rf_status rf_comm_create(rf_comm **out, rf_error *err)
{
    *out = calloc(1, sizeof **out);
    return *out ? RF_OK : rf_errorf(err, RF_ENOMEM, "out of memory");
}

void rf_comm_free(rf_comm *c) { free(c); }
int rf_comm_rank(const rf_comm *c) { (void)c; return 0; }
int rf_comm_size(const rf_comm *c) { (void)c; return 1; }
int rf_comm_local_size(const rf_comm *c) { (void)c; return 1; }

rf_status rf_comm_sum_f32(rf_comm *c, float *v, size_t n, rf_error *err)
{
    (void)c, (void)v, (void)n, (void)err;
    return RF_OK;
}

rf_status rf_comm_sum_f64(rf_comm *c, double *v, size_t n, rf_error *err)
{
    (void)c, (void)v, (void)n, (void)err;
    return RF_OK;
}

rf_status rf_comm_allgather(rf_comm *c, const void *mine, size_t bytes, void *all, rf_error *err)
{
    (void)c, (void)err;
    if (bytes) memmove(all, mine, bytes);
    return RF_OK;
}

rf_status rf_comm_allgatherv(rf_comm *c, const void *mine, void *all, const size_t *counts, rf_error *err)
{
    (void)c, (void)err;
    if (counts[0]) memmove(all, mine, counts[0]);
    return RF_OK;
}

rf_status rf_comm_barrier(rf_comm *c, rf_error *err)
{
    (void)c, (void)err;
    return RF_OK;
}

void rf_comm_abort(rf_comm *c, int code) { (void)c, (void)code; }

void rf_comm_stats(const rf_comm *c, uint64_t *bytes, double *seconds)
{
    (void)c;
    if (bytes) *bytes = 0;
    if (seconds) *seconds = 0;
}
