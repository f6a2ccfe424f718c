/* comm_mpi.c - the communicator over MPI (built with `make MPI=1`; comm_single.c otherwise).
 * Every collective is timed and its payload counted (rf_comm_stats). MPI counts are ints: a
 * collective of more than INT_MAX elements is refused rather than truncated. */
#include <limits.h>
#include <mpi.h>
#include <stdlib.h>
#include <time.h>

#include "resflow/dist.h"

struct rf_comm {
    int rank, size, local_size;
    int we_init; /* MPI_Init was ours: MPI_Finalize in rf_comm_free */
    uint64_t bytes;
    double seconds;
};

static double now_sec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static rf_status mpi_fail(rf_error *err, int rc, const char *what)
{
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(rc, msg, &len) != MPI_SUCCESS) len = 0;
    msg[len < MPI_MAX_ERROR_STRING ? len : MPI_MAX_ERROR_STRING - 1] = 0;
    return rf_errorf(err, RF_EIO, "MPI %s failed: %s", what, len ? msg : "unknown error");
}

const char *rf_comm_kind(void) { return "mpi"; }

rf_status rf_comm_create(rf_comm **out, rf_error *err)
{
    *out = NULL;
    rf_comm *c = calloc(1, sizeof *c);
    if (!c) return rf_errorf(err, RF_ENOMEM, "out of memory");
    int inited = 0, fin = 0, rc;
    MPI_Finalized(&fin);
    if (fin) {
        free(c);
        return rf_errorf(err, RF_EUSAGE, "MPI was finalised (an earlier communicator was freed): MPI cannot start "
                                         "twice in one process");
    }
    MPI_Initialized(&inited);
    if (!inited) {
        if ((rc = MPI_Init(NULL, NULL)) != MPI_SUCCESS) {
            free(c);
            return mpi_fail(err, rc, "initialisation");
        }
        c->we_init = 1;
    }
    /* errors come back as codes (and become rf_errors), not as MPI's default abort */
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &c->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &c->size);
    MPI_Comm node;
    c->local_size = 1;
    if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node) == MPI_SUCCESS) {
        MPI_Comm_size(node, &c->local_size);
        MPI_Comm_free(&node);
    }
    *out = c;
    return RF_OK;
}

void rf_comm_free(rf_comm *c)
{
    if (!c) return;
    int fin = 0;
    MPI_Finalized(&fin);
    if (c->we_init && !fin) MPI_Finalize();
    free(c);
}

int rf_comm_rank(const rf_comm *c) { return c->rank; }
int rf_comm_size(const rf_comm *c) { return c->size; }
int rf_comm_local_size(const rf_comm *c) { return c->local_size; }

static rf_status sum_(rf_comm *c, void *v, size_t n, MPI_Datatype t, size_t esz, rf_error *err)
{
    if (n > INT_MAX) return rf_errorf(err, RF_EUSAGE, "all-reduce of %zu values: more than MPI's int count", n);
    double t0 = now_sec();
    int rc = MPI_Allreduce(MPI_IN_PLACE, v, (int)n, t, MPI_SUM, MPI_COMM_WORLD);
    c->seconds += now_sec() - t0;
    c->bytes += n * esz;
    return rc == MPI_SUCCESS ? RF_OK : mpi_fail(err, rc, "all-reduce");
}

rf_status rf_comm_sum_f32(rf_comm *c, float *v, size_t n, rf_error *err)
{
    return sum_(c, v, n, MPI_FLOAT, sizeof(float), err);
}

rf_status rf_comm_sum_f64(rf_comm *c, double *v, size_t n, rf_error *err)
{
    return sum_(c, v, n, MPI_DOUBLE, sizeof(double), err);
}

rf_status rf_comm_allgather(rf_comm *c, const void *mine, size_t bytes, void *all, rf_error *err)
{
    if (bytes > INT_MAX) return rf_errorf(err, RF_EUSAGE, "all-gather of %zu bytes: more than MPI's int count", bytes);
    double t0 = now_sec();
    int rc = MPI_Allgather(mine, (int)bytes, MPI_BYTE, all, (int)bytes, MPI_BYTE, MPI_COMM_WORLD);
    c->seconds += now_sec() - t0;
    c->bytes += bytes;
    return rc == MPI_SUCCESS ? RF_OK : mpi_fail(err, rc, "all-gather");
}

rf_status rf_comm_allgatherv(rf_comm *c, const void *mine, void *all, const size_t *counts, rf_error *err)
{
    int *cnt = malloc((size_t)c->size * 2 * sizeof *cnt);
    if (!cnt) return rf_errorf(err, RF_ENOMEM, "out of memory");
    int *displ = cnt + c->size;
    size_t off = 0;
    for (int r = 0; r < c->size; r++) {
        if (counts[r] > INT_MAX || off > INT_MAX) {
            free(cnt);
            return rf_errorf(err, RF_EUSAGE, "all-gather of %zu bytes: more than MPI's int count", off + counts[r]);
        }
        cnt[r] = (int)counts[r];
        displ[r] = (int)off;
        off += counts[r];
    }
    double t0 = now_sec();
    int rc = MPI_Allgatherv(mine, cnt[c->rank], MPI_BYTE, all, cnt, displ, MPI_BYTE, MPI_COMM_WORLD);
    c->seconds += now_sec() - t0;
    c->bytes += counts[c->rank];
    free(cnt);
    return rc == MPI_SUCCESS ? RF_OK : mpi_fail(err, rc, "all-gather");
}

rf_status rf_comm_barrier(rf_comm *c, rf_error *err)
{
    double t0 = now_sec();
    int rc = MPI_Barrier(MPI_COMM_WORLD);
    c->seconds += now_sec() - t0;
    return rc == MPI_SUCCESS ? RF_OK : mpi_fail(err, rc, "barrier");
}

void rf_comm_abort(rf_comm *c, int code)
{
    if (c && c->size > 1) MPI_Abort(MPI_COMM_WORLD, code ? code : 1);
}

void rf_comm_stats(const rf_comm *c, uint64_t *bytes, double *seconds)
{
    if (bytes) *bytes = c->bytes;
    if (seconds) *seconds = c->seconds;
}
