/* test_bnsync.c - synchronised BatchNorm (src/nn/bnsync.c, rf_ws_set_batch_sum): one batch
 * split over two "processes" (two threads, each with its own workspace, their batch sums
 * exchanged through shared memory in rank order) gives the one-process pass over the whole
 * batch: the same probabilities per row, the same new running statistics on both, and - after
 * the data-parallel combination sum_r (B_r/B) g_r that rf_dist's gradient hook makes - the same
 * dense gradient, up to float summation order. The same with a process that has no row of the
 * batch (it joins the sums with zeros, rf_model_bn_idle_), for a tower model (model.bn: batch)
 * and a zoo model with BatchNorm (mmoe). Without the sums (each process normalising its own
 * rows) the gradients differ: the check can fail. With one process and a sum that does nothing,
 * the pass is bit for bit the plain one. */
#include <omp.h>
#include <pthread.h>

#include "test_util.h"

#include "nn/bnsync.h"
#include "nn/model_impl.h"
#include "resflow/config.h"
#include "resflow/train.h"

#define B 64

/* Two threads, one at a time: a thread holds mu while it computes and waits (releasing it) in
 * the sum until the other arrives, so OpenBLAS never runs two GEMMs at once. */
typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    double *part[2];
    int n[2], arrived, bad;
    long gen;
} bus;

typedef struct {
    bus *b;
    int rank, sync;
    const rf_model *m;
    const rf_dataset *ds;
    const size_t *rows;
    int n;
    const int *lc;
    rf_workspace *ws;
    rf_grads *g;
    rf_status st;
} proc;

static rf_status bus_sum(void *ud, double *v, int n, rf_error *err)
{
    (void)err;
    proc *p = ud;
    bus *b = p->b;
    b->part[p->rank] = v;
    b->n[p->rank] = n;
    long gen = b->gen;
    if (++b->arrived == 2) {
        if (b->n[0] != b->n[1]) b->bad = 1; /* the processes called different sums */
        int k = b->n[0] < b->n[1] ? b->n[0] : b->n[1];
        for (int j = 0; j < k; j++) b->part[0][j] = b->part[1][j] = b->part[0][j] + b->part[1][j];
        b->arrived = 0;
        b->gen++;
        pthread_cond_broadcast(&b->cv);
    } else {
        while (b->gen == gen) pthread_cond_wait(&b->cv, &b->mu);
    }
    return RF_OK;
}

static void *run_proc(void *arg)
{
    proc *p = arg;
    pthread_mutex_lock(&p->b->mu);
    omp_set_num_threads(1);
    if (p->sync) rf_ws_set_batch_sum(p->ws, bus_sum, p);
    rf_error e;
    rf_grads_zero(p->g);
    if (p->n == 0) {
        p->st = rf_model_bn_idle_(p->m, p->ws, p->g, &e);
    } else {
        rf_batch bt = {p->ds, p->rows, p->n, p->lc};
        p->st = rf_model_forward(p->m, p->ws, &bt, 1, &e);
        if (!p->st) {
            (void)rf_model_loss(p->m, p->ws, &bt, NULL, NULL);
            p->st = rf_model_backward(p->m, p->ws, &bt, p->g, &e);
            rf_grads_emb_clear(p->g);
        }
    }
    pthread_mutex_unlock(&p->b->mu);
    return NULL;
}

static rf_model *make(const rf_dataset *ds, rf_model_type type)
{
    rf_config cfg;
    rf_config_default(&cfg);
    cfg.model.type = type;
    cfg.model.bn = RF_BN_BATCH;
    cfg.model.emb_dim = 8;
    cfg.model.n_hidden = 2;
    cfg.model.hidden[0] = 32;
    cfg.model.hidden[1] = 16;
    rf_model *m = NULL;
    rf_error e;
    assert_int_equal(rf_config_create_model(&cfg, ds->F, ds->fields, ds->D, &m, &e), RF_OK);
    return m;
}

static double max_abs(const float *a, size_t n)
{
    double x = 0;
    for (size_t i = 0; i < n; i++)
        if (fabs(a[i]) > x) x = fabs(a[i]);
    return x;
}

/* The whole batch in one pass vs split at `split` over two processes (sync: with the sums);
 * returns the largest gradient difference relative to the largest gradient. */
static double split_vs_whole(rf_model_type type, int split, int sync)
{
    rf_dataset *ds = test_sim(2000, 11, 300, 500, 100, 0.2f);
    rf_model *m = make(ds, type);
    const rf_model_info *mi = rf_model_info_of(m);
    int lc[RF_MAX_TASKS];
    rf_error e;
    assert_int_equal(rf_resolve_labels(m, ds, lc, &e), RF_OK);
    size_t rows[B];
    for (int i = 0; i < B; i++) rows[i] = (size_t)(i * 29 + 5) % ds->n;
    omp_set_num_threads(1);

    /* one process, the whole batch */
    rf_workspace *ws = rf_workspace_create(m, B);
    rf_grads *g = rf_grads_create(m);
    rf_batch bt = {ds, rows, B, lc};
    rf_grads_zero(g);
    assert_int_equal(rf_model_forward(m, ws, &bt, 1, &e), RF_OK);
    (void)rf_model_loss(m, ws, &bt, NULL, NULL);
    assert_int_equal(rf_model_backward(m, ws, &bt, g, &e), RF_OK);
    rf_grads_emb_clear(g);
    size_t nd;
    const float *g1 = rf_grads_dense(g, &nd);

    /* two processes */
    bus b = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, {NULL, NULL}, {0, 0}, 0, 0, 0};
    proc p[2];
    pthread_t th[2];
    for (int r = 0; r < 2; r++) {
        p[r] = (proc){&b, r, sync, m, ds, r ? rows + split : rows, r ? B - split : split, lc,
                      rf_workspace_create(m, B), rf_grads_create(m), RF_OK};
        assert_non_null(p[r].ws);
        assert_int_equal(pthread_create(&th[r], NULL, run_proc, &p[r]), 0);
    }
    for (int r = 0; r < 2; r++) pthread_join(th[r], NULL);
    assert_int_equal(p[0].st, RF_OK);
    assert_int_equal(p[1].st, RF_OK);
    assert_int_equal(b.bad, 0);

    /* the rows' probabilities and the running statistics */
    const float *P1 = rf_ws_probs(ws);
    for (int r = 0; r < 2 && sync; r++) {
        const float *P = rf_ws_probs(p[r].ws);
        for (int i = 0; i < p[r].n * mi->K; i++)
            assert_float_equal(P[i], P1[(r ? split : 0) * mi->K + i], 2e-5);
        for (size_t i = 0; i < m->n_buffers; i++) assert_float_equal(p[r].ws->bufn[i], ws->bufn[i], 1e-5);
    }
    if (sync) assert_memory_equal(p[0].ws->bufn, p[1].ws->bufn, m->n_buffers * sizeof(float));

    /* the dense gradient combined as rf_dist's hook does */
    const float *ga = rf_grads_dense(p[0].g, NULL), *gb = rf_grads_dense(p[1].g, NULL);
    double wa = (double)split / B, wb = (double)(B - split) / B, diff = 0;
    for (size_t i = 0; i < nd; i++) {
        double d = fabs(wa * ga[i] + wb * gb[i] - g1[i]);
        if (d > diff) diff = d;
    }
    diff /= max_abs(g1, nd);
    if (getenv("BNSYNC_VERBOSE")) fprintf(stderr, "type %d split %d sync %d: max relative gradient difference %.3g\n", (int)type, split, sync, diff);
    for (int r = 0; r < 2; r++) {
        rf_workspace_free(p[r].ws);
        rf_grads_free(p[r].g);
    }
    rf_workspace_free(ws);
    rf_grads_free(g);
    rf_model_free(m);
    rf_dataset_free(ds);
    return diff;
}

static void test_tower_split(void **state)
{
    (void)state;
    double d = split_vs_whole(RF_MODEL_RESFLOW, 23, 1);
    assert_true(d < 1e-5);
    assert_true(split_vs_whole(RF_MODEL_RESFLOW, 23, 0) > 1e-3); /* local statistics: not the same */
}

static void test_zoo_split(void **state)
{
    (void)state;
    assert_true(split_vs_whole(RF_MODEL_MMOE, 40, 1) < 1e-5);
    assert_true(split_vs_whole(RF_MODEL_MMOE, 40, 0) > 1e-3);
}

static void test_idle_process(void **state)
{
    (void)state;
    assert_true(split_vs_whole(RF_MODEL_RESFLOW, 0, 1) < 1e-5);
    assert_true(split_vs_whole(RF_MODEL_MMOE, B, 1) < 1e-5);
}

static rf_status no_op_sum(void *ud, double *v, int n, rf_error *err)
{
    (void)ud, (void)v, (void)n, (void)err;
    return RF_OK;
}

static rf_status failing_sum(void *ud, double *v, int n, rf_error *err)
{
    (void)ud, (void)v, (void)n;
    return rf_errorf(err, RF_EIO, "the network is down");
}

/* One process: the same bits as without a sum; a failing sum fails the pass with its message. */
static void test_one_process_bitwise(void **state)
{
    (void)state;
    rf_dataset *ds = test_sim(500, 12, 300, 500, 100, 0.2f);
    for (int t = 0; t < 2; t++) {
        rf_model *m = make(ds, t ? RF_MODEL_MMOE : RF_MODEL_RESFLOW);
        int lc[RF_MAX_TASKS];
        rf_error e;
        assert_int_equal(rf_resolve_labels(m, ds, lc, &e), RF_OK);
        size_t rows[B];
        for (int i = 0; i < B; i++) rows[i] = (size_t)i * 7;
        rf_batch bt = {ds, rows, B, lc};
        rf_workspace *ws[2] = {rf_workspace_create(m, B), rf_workspace_create(m, B)};
        rf_grads *g[2] = {rf_grads_create(m), rf_grads_create(m)};
        rf_ws_set_batch_sum(ws[1], no_op_sum, NULL);
        for (int k = 0; k < 2; k++) {
            rf_grads_zero(g[k]);
            assert_int_equal(rf_model_forward(m, ws[k], &bt, 1, &e), RF_OK);
            (void)rf_model_loss(m, ws[k], &bt, NULL, NULL);
            assert_int_equal(rf_model_backward(m, ws[k], &bt, g[k], &e), RF_OK);
        }
        size_t nd;
        const float *d0 = rf_grads_dense(g[0], &nd);
        assert_memory_equal(d0, rf_grads_dense(g[1], NULL), nd * sizeof(float));
        assert_memory_equal(ws[0]->bufn, ws[1]->bufn, m->n_buffers * sizeof(float));
        assert_memory_equal(rf_ws_probs(ws[0]), rf_ws_probs(ws[1]), B * m->K * sizeof(float));
        rf_ws_set_batch_sum(ws[1], failing_sum, NULL);
        assert_int_equal(rf_model_forward(m, ws[1], &bt, 1, &e), RF_EIO);
        assert_non_null(strstr(e.msg, "network is down"));
        for (int k = 0; k < 2; k++) {
            rf_workspace_free(ws[k]);
            rf_grads_free(g[k]);
        }
        rf_model_free(m);
    }
    rf_dataset_free(ds);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tower_split),
        cmocka_unit_test(test_zoo_split),
        cmocka_unit_test(test_idle_process),
        cmocka_unit_test(test_one_process_bitwise),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
