/* test_seam.c - the engine's public seams, through the public headers only:
 * - inference on one const model (a tower model with BatchNorm, and MMoE's op graph) from many
 *   threads at once, each with its own workspace, gives the scores of one thread alone bit for
 *   bit (run under ThreadSanitizer by `make tsan`);
 * - the gradient hook sees every step's gradients before the optimizer, can change them (a
 *   hook that zeroes them leaves the parameters where weight decay alone takes them), and its
 *   error stops training;
 * - the optimizer's state saved after n steps and loaded into a fresh optimizer continues to
 *   the same parameters, bit for bit, as the uninterrupted run; a state of another optimizer
 *   shape is refused;
 * - the fused embedding update (rf_model_backward_emb_each) sees each row of the batch's list
 *   once, with the same gradient, and a training step through it equals, bit for bit, the step
 *   through the whole list;
 * - per-task gradients (rf_model_task_grads) sum to the joint gradient;
 * - parameter groups cover every dense parameter exactly once, and tag shared ones by the
 *   tasks whose loss reaches them, for every model type (and with the M1 penalty) checked
 *   against the per-task gradients themselves (a task outside a group's mask has an exactly
 *   zero gradient there, a task inside it a non-zero one), embeddings included. */
#include <omp.h>
#include <pthread.h>

#include "test_util.h"

#include "resflow/config.h"
#include "resflow/optim.h"
#include "resflow/train.h"

static rf_dataset *sim(size_t rows) { return test_sim(rows, 5, 1000, 2000, 300, 0.1f); }

static rf_model *model_for(const rf_dataset *ds, rf_model_type t, rf_config *cfg)
{
    return test_small_model(ds, t, 0, cfg);
}

/* ---- many threads, one const model ------------------------------------------------------ */

typedef struct {
    const rf_model *m;
    const rf_dataset *ds;
    float *probs; /* (n, K) */
    int ok;
} scorer;

static void *score_all(void *arg)
{
    scorer *s = arg;
    /* one OpenMP thread per concurrent caller (model.h: OpenBLAS's threaded GEMMs share buffers) */
    int nt = omp_get_max_threads();
    omp_set_num_threads(1);
    int K = rf_model_info_of(s->m)->K, B = 97; /* a batch size that does not divide n */
    rf_workspace *ws = rf_workspace_create(s->m, B);
    size_t rows[97];
    s->ok = ws != NULL;
    for (size_t o = 0; s->ok && o < s->ds->n; o += (size_t)B) {
        int nb = (int)(s->ds->n - o < (size_t)B ? s->ds->n - o : (size_t)B);
        for (int i = 0; i < nb; i++) rows[i] = o + (size_t)i;
        rf_batch b = {s->ds, rows, nb, NULL};
        rf_error e;
        if (rf_model_forward(s->m, ws, &b, 0, &e) != RF_OK) s->ok = 0;
        else memcpy(s->probs + o * (size_t)K, rf_ws_probs(ws), (size_t)nb * (size_t)K * sizeof(float));
    }
    rf_workspace_free(ws);
    omp_set_num_threads(nt);
    return NULL;
}

static void test_const_model_many_threads(void **state)
{
    (void)state;
    rf_dataset *ds = sim(3000);
    /* a tower model with BatchNorm, and an op-graph model (MMoE) */
    for (int t = 0; t < 2; t++) {
        rf_config cfg;
        rf_model *m = model_for(ds, t ? RF_MODEL_MMOE : RF_MODEL_RESFLOW, &cfg);
        rf_error e;
        cfg.train.epochs = 1;
        cfg.train.threads = 1;
        assert_int_equal(rf_train(m, &cfg.train, NULL, ds, NULL, NULL, &e), RF_OK); /* BN statistics set */
        int K = rf_model_info_of(m)->K;
        /* the reference: the same batches scored alone (the last bits of a score may depend on
         * the batch size: OpenBLAS picks other kernels for small GEMMs) */
        scorer one = {m, ds, malloc(ds->n * (size_t)K * sizeof(float)), 0};
        score_all(&one);
        assert_true(one.ok);
        float *ref = one.probs;
        enum { T = 4 };
        pthread_t th[T];
        scorer sc[T];
        for (int i = 0; i < T; i++) {
            sc[i] = (scorer){m, ds, malloc(ds->n * (size_t)K * sizeof(float)), 0};
            assert_int_equal(pthread_create(&th[i], NULL, score_all, &sc[i]), 0);
        }
        for (int i = 0; i < T; i++) {
            assert_int_equal(pthread_join(th[i], NULL), 0);
            assert_true(sc[i].ok);
            assert_memory_equal(sc[i].probs, ref, ds->n * (size_t)K * sizeof(float));
            free(sc[i].probs);
        }
        free(ref);
        rf_model_free(m);
    }
    rf_dataset_free(ds);
}

/* ---- the gradient hook ------------------------------------------------------------------ */

typedef struct {
    int calls, fail_at, zero;
    size_t n_dense, n_rows;
    int omp_threads; /* OpenMP threads the hook ran with (inside rf_train) */
} hook_state;

static rf_status hook(void *ud, const rf_model *m, rf_grads *g, rf_error *err)
{
    hook_state *h = ud;
    h->calls++;
    h->omp_threads = omp_get_max_threads();
    size_t n;
    float *d = rf_grads_dense(g, &n);
    const uint32_t *rows;
    float *v;
    size_t nr = rf_grads_emb(g, &rows, &v);
    h->n_dense = n;
    h->n_rows = nr;
    if (h->zero) {
        memset(d, 0, n * sizeof(float));
        memset(v, 0, nr * (size_t)rf_model_info_of(m)->E * sizeof(float));
    }
    if (h->calls == h->fail_at) return rf_errorf(err, RF_EIO, "all-reduce failed (test)");
    return RF_OK;
}

static void test_grad_hook(void **state)
{
    (void)state;
    rf_dataset *ds = sim(1280);
    rf_config cfg;
    rf_model *m = model_for(ds, RF_MODEL_NSE, &cfg);
    const rf_model_info *in = rf_model_info_of(m);
    cfg.train.epochs = 1;
    cfg.train.threads = 1; /* (make tsan: OpenMP's own threads are not instrumented) */
    cfg.train.weight_decay = 0;
    float *p0 = malloc(in->n_params * sizeof(float));
    memcpy(p0, rf_model_params(m), in->n_params * sizeof(float));
    hook_state h = {0, 0, 1, 0, 0, 0};
    rf_train_hooks hk = {NULL, NULL, hook, &h, NULL};
    rf_error e;
    rf_train_summary sum;
    int omp_was = omp_get_max_threads();
    omp_set_num_threads(3);
    assert_int_equal(rf_train(m, &cfg.train, &hk, ds, NULL, &sum, &e), RF_OK);
    /* train.threads ran the call, and the caller's setting is back */
    assert_int_equal(h.omp_threads, 1);
    assert_int_equal(omp_get_max_threads(), 3);
    omp_set_num_threads(omp_was); /* (make tsan runs the rest with OpenMP's one thread) */
    assert_int_equal(h.calls, 10); /* every step: 1280 rows / 128 */
    assert_int_equal(sum.steps, 10);
    assert_int_equal(h.n_dense, in->n_params);
    assert_true(h.n_rows > 0);
    /* zero gradients and no weight decay: Adam moves nothing */
    assert_memory_equal(rf_model_params(m), p0, in->n_params * sizeof(float));
    /* an error from the hook stops training with it */
    hook_state f = {0, 3, 0, 0, 0, 0};
    hk.hook_ud = &f;
    assert_int_equal(rf_train(m, &cfg.train, &hk, ds, NULL, NULL, &e), RF_EIO);
    assert_int_equal(f.calls, 3);
    assert_non_null(strstr(e.msg, "all-reduce failed"));
    free(p0);
    rf_model_free(m);
    rf_dataset_free(ds);
}

/* ---- optimizer state -------------------------------------------------------------------- */

/* n steps of the training step on consecutive batches from batch index `from`. */
static void steps(rf_model *m, rf_optimizer *opt, const rf_dataset *ds, int from, int n)
{
    rf_workspace *ws = rf_workspace_create(m, 128);
    rf_grads *g = rf_grads_create(m);
    size_t rows[128];
    int lc[2] = {0, 1};
    rf_error e;
    for (int s = from; s < from + n; s++) {
        for (int i = 0; i < 128; i++) rows[i] = ((size_t)s * 128 + (size_t)i * 13) % ds->n;
        rf_batch b = {ds, rows, 128, lc};
        double loss;
        assert_int_equal(rf_train_step(m, ws, g, opt, &b, NULL, NULL, &loss, &e), RF_OK);
    }
    rf_grads_free(g);
    rf_workspace_free(ws);
}

static void test_optimizer_state_roundtrip(void **state)
{
    (void)state;
    rf_dataset *ds = sim(2000);
    rf_config cfg;
    rf_model *a = model_for(ds, RF_MODEL_RESFLOW, &cfg), *b = model_for(ds, RF_MODEL_RESFLOW, &cfg);
    const rf_model_info *in = rf_model_info_of(a);
    rf_optimizer *oa = rf_adam_create(a, &cfg.train), *ob = rf_adam_create(b, &cfg.train);
    assert_string_equal(rf_optimizer_name(oa), "adam");
    steps(a, oa, ds, 0, 5);
    /* checkpoint after 5 steps: parameters and optimizer state into b and a fresh optimizer */
    size_t n = rf_optimizer_state_size(oa);
    unsigned char *buf = malloc(n);
    rf_optimizer_save_state(oa, buf);
    rf_optimizer *oc = rf_adam_create(b, &cfg.train);
    rf_error e;
    assert_int_equal(rf_optimizer_load_state(oc, buf, n, &e), RF_OK);
    assert_int_equal(rf_optimizer_steps(oc), 5);
    memcpy(rf_model_params(b), rf_model_params(a), in->n_params * sizeof(float));
    memcpy(rf_model_buffers(b), rf_model_buffers(a), in->n_buffers * sizeof(float));
    memcpy(rf_model_emb(b), rf_model_emb(a), in->n_emb_rows * (size_t)in->E * sizeof(float));
    steps(a, oa, ds, 5, 4);
    steps(b, oc, ds, 5, 4);
    assert_memory_equal(rf_model_params(a), rf_model_params(b), in->n_params * sizeof(float));
    assert_memory_equal(rf_model_emb(a), rf_model_emb(b), in->n_emb_rows * (size_t)in->E * sizeof(float));
    assert_memory_equal(rf_model_buffers(a), rf_model_buffers(b), in->n_buffers * sizeof(float));
    /* without the state (fresh moments, step 0) the same steps give other parameters */
    steps(b, ob, ds, 9, 1);
    steps(a, oa, ds, 9, 1);
    assert_memory_not_equal(rf_model_params(a), rf_model_params(b), in->n_params * sizeof(float));
    /* refused: truncated, corrupted magic, another model's shape */
    assert_int_equal(rf_optimizer_load_state(oc, buf, n - 1, &e), RF_EFORMAT);
    buf[0] ^= 1;
    assert_int_equal(rf_optimizer_load_state(oc, buf, n, &e), RF_EFORMAT);
    buf[0] ^= 1;
    rf_config c2;
    rf_model *other = model_for(ds, RF_MODEL_NSE, &c2);
    rf_model_free(other);
    c2.model.hidden[1] = 8;
    assert_int_equal(rf_config_create_model(&c2, ds->F, ds->fields, ds->D, &other, &e), RF_OK);
    rf_optimizer *od = rf_adam_create(other, &c2.train);
    assert_int_equal(rf_optimizer_load_state(od, buf, n, &e), RF_EFORMAT);
    assert_non_null(strstr(e.msg, "bytes of state"));
    rf_optimizer_free(od);
    rf_model_free(other);
    free(buf);
    rf_optimizer_free(oa);
    rf_optimizer_free(ob);
    rf_optimizer_free(oc);
    rf_model_free(a);
    rf_model_free(b);
    rf_dataset_free(ds);
}

/* ---- the fused embedding update ---------------------------------------------------------- */

static rf_status noop_hook(void *ud, const rf_model *m, rf_grads *g, rf_error *err)
{
    (void)ud, (void)m, (void)g, (void)err;
    return RF_OK;
}

typedef struct {
    float *val;   /* (n_emb_rows, E): the gradient rows seen */
    int *seen;    /* per row: times passed to apply */
    int E;
    size_t max_rows;
} each_state;

static void collect(void *ud, const rf_grads *rows)
{
    each_state *c = ud;
    const uint32_t *r;
    float *v;
    size_t n = rf_grads_emb(rows, &r, &v);
    assert_true(n <= c->max_rows);
    for (size_t i = 0; i < n; i++) { /* the fields' rows are disjoint: no two threads write one row */
        c->seen[r[i]]++;
        memcpy(c->val + (size_t)r[i] * c->E, v + i * c->E, c->E * sizeof(float));
    }
}

/* rf_model_backward_emb_each hands every row of rf_model_backward_emb's list exactly once, with
 * the same gradient bit for bit, leaves the set empty; and a training step through it (lazy
 * Adam is row-wise) equals, bit for bit, the step through the whole list (the hook path). */
static void test_emb_each(void **state)
{
    (void)state; /* (fields in parallel on the machine's threads; make tsan runs it on one) */
    rf_dataset *ds = sim(2000);
    rf_config cfg;
    rf_model *a = model_for(ds, RF_MODEL_RESFLOW, &cfg), *b = model_for(ds, RF_MODEL_RESFLOW, &cfg);
    const rf_model_info *in = rf_model_info_of(a);
    size_t ne = in->n_emb_rows * (size_t)in->E;
    memcpy(rf_model_params(b), rf_model_params(a), in->n_params * sizeof(float));
    memcpy(rf_model_buffers(b), rf_model_buffers(a), in->n_buffers * sizeof(float));
    memcpy(rf_model_emb(b), rf_model_emb(a), ne * sizeof(float));
    rf_optimizer *oa = rf_adam_create(a, &cfg.train), *ob = rf_adam_create(b, &cfg.train);
    assert_true(rf_optimizer_sparse_rowwise(oa));
    rf_workspace *wa = rf_workspace_create(a, 512), *wb = rf_workspace_create(b, 512);
    rf_grads *ga = rf_grads_create(a), *gb = rf_grads_create(b);
    size_t rows[512];
    int lc[2] = {0, 1};
    rf_error e;
    double la, lb;
    for (int s = 0; s < 6; s++) {
        for (int i = 0; i < 512; i++) rows[i] = ((size_t)s * 512 + (size_t)i * 7) % ds->n;
        rf_batch bt = {ds, rows, 512, lc};
        assert_int_equal(rf_train_step(a, wa, ga, oa, &bt, NULL, NULL, &la, &e), RF_OK);
        assert_int_equal(rf_train_step(b, wb, gb, ob, &bt, noop_hook, NULL, &lb, &e), RF_OK);
        assert_memory_equal(&la, &lb, sizeof la);
    }
    assert_memory_equal(rf_model_params(a), rf_model_params(b), in->n_params * sizeof(float));
    assert_memory_equal(rf_model_emb(a), rf_model_emb(b), ne * sizeof(float));
    assert_memory_equal(rf_model_buffers(a), rf_model_buffers(b), in->n_buffers * sizeof(float));
    /* the rows themselves */
    rf_batch bt = {ds, rows, 512, lc};
    assert_int_equal(rf_model_forward(a, wa, &bt, 1, &e), RF_OK);
    rf_model_loss(a, wa, &bt, NULL, NULL);
    rf_grads_zero(ga);
    assert_int_equal(rf_model_backward_dense(a, wa, &bt, ga, &e), RF_OK);
    each_state c = {calloc(ne, sizeof(float)), calloc(in->n_emb_rows, sizeof(int)), in->E, 512 * 8};
    rf_model_backward_emb_each(a, wa, &bt, ga, collect, &c);
    const uint32_t *r;
    float *v;
    assert_int_equal(rf_grads_emb(ga, &r, &v), 0); /* consumed and cleared */
    rf_model_backward_emb(a, wa, &bt, ga);
    size_t n = rf_grads_emb(ga, &r, &v), total = 0;
    assert_true(n > 512);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(c.seen[r[i]], 1);
        assert_memory_equal(c.val + (size_t)r[i] * in->E, v + i * in->E, in->E * sizeof(float));
    }
    for (size_t i = 0; i < in->n_emb_rows; i++) total += (size_t)c.seen[i];
    assert_int_equal(total, n); /* nothing else was passed */
    free(c.val);
    free(c.seen);
    rf_grads_free(ga);
    rf_grads_free(gb);
    rf_workspace_free(wa);
    rf_workspace_free(wb);
    rf_optimizer_free(oa);
    rf_optimizer_free(ob);
    rf_model_free(a);
    rf_model_free(b);
    rf_dataset_free(ds);
}

/* ---- per-task gradients and parameter groups --------------------------------------------- */

static void test_task_grads_and_groups(void **state)
{
    (void)state;
    rf_dataset *ds = sim(500);
    for (int t = 0; t < 4; t++) {
        rf_model_type type = t == 3 ? RF_MODEL_MMOE : (rf_model_type)t;
        rf_config cfg;
        rf_model *m = model_for(ds, type, &cfg);
        const rf_model_info *in = rf_model_info_of(m);
        rf_workspace *ws = rf_workspace_create(m, 64);
        rf_grads *g[2] = {rf_grads_create(m), rf_grads_create(m)}, *joint = rf_grads_create(m);
        size_t rows[64];
        for (int i = 0; i < 64; i++) rows[i] = (size_t)i * 7;
        int lc[2] = {0, 1};
        rf_batch b = {ds, rows, 64, lc};
        rf_error e;
        assert_int_equal(rf_model_forward(m, ws, &b, 1, &e), RF_OK);
        double lk[2];
        assert_int_equal(rf_model_task_grads(m, ws, &b, g, lk, &e), RF_OK);
        rf_grads_zero(joint);
        double l = rf_model_loss(m, ws, &b, NULL, NULL);
        assert_int_equal(rf_model_backward(m, ws, &b, joint, &e), RF_OK);
        assert_true(fabs(lk[0] + lk[1] - l) <= 1e-9 * fabs(l) + 1e-12);
        size_t n;
        const float *d0 = rf_grads_dense(g[0], &n), *d1 = rf_grads_dense(g[1], NULL), *dj = rf_grads_dense(joint, NULL);
        for (size_t i = 0; i < n; i++) assert_true(fabsf(d0[i] + d1[i] - dj[i]) <= 1e-5f + 1e-4f * fabsf(dj[i]));

        /* groups: every dense parameter exactly once */
        int ng = rf_model_param_groups(m, NULL, 0);
        rf_param_group *gr = calloc((size_t)ng, sizeof *gr);
        assert_int_equal(rf_model_param_groups(m, gr, ng), ng);
        unsigned char *seen = calloc(in->n_params, 1);
        int emb_groups = 0;
        for (int i = 0; i < ng; i++) {
            if (gr[i].emb) {
                emb_groups++;
                assert_int_equal(gr[i].tasks, 3u); /* the embeddings serve both tasks */
                continue;
            }
            for (size_t r = 0; r < gr[i].rows; r++)
                for (size_t c = 0; c < gr[i].cols; c++) {
                    size_t o = gr[i].off + r * gr[i].ld + c;
                    assert_true(o < in->n_params);
                    seen[o]++;
                }
            /* a tower group has an owner among its tasks; the child's tower is its alone */
            if (gr[i].owner >= 0) assert_true(gr[i].tasks >> gr[i].owner & 1u);
            if (gr[i].owner == 1) assert_int_equal(gr[i].tasks, 2u);
            /* the parent's tower: shared with the child for ResFlow and ESMM, not for NSE */
            if (gr[i].owner == 0 && in->is_tower) assert_int_equal(gr[i].tasks, type == RF_MODEL_NSE ? 1u : 3u);
        }
        assert_int_equal(emb_groups, 1);
        for (size_t i = 0; i < in->n_params; i++) assert_int_equal(seen[i], 1);
        /* the task-1 gradient of the task-0 tower: zero for NSE, not for ResFlow */
        if (in->is_tower)
            for (int i = 0; i < ng; i++)
                if (!gr[i].emb && gr[i].owner == 0 && strstr(gr[i].name, "layer0.W")) {
                    double s = 0;
                    for (size_t r = 0; r < gr[i].rows; r++)
                        for (size_t c = 0; c < gr[i].cols; c++) s += fabsf(d1[gr[i].off + r * gr[i].ld + c]);
                    if (type == RF_MODEL_NSE) assert_true(s == 0);
                    else assert_true(s > 0);
                }
        free(seen);
        free(gr);
        rf_grads_free(g[0]);
        rf_grads_free(g[1]);
        rf_grads_free(joint);
        rf_workspace_free(ws);
        rf_model_free(m);
    }
    rf_dataset_free(ds);
}

/* Groups against the gradients: task k's gradient is exactly zero on a group whose mask lacks
 * bit k and non-zero somewhere on one that has it (also per embedding column run). */
static void check_groups(const rf_model *m, const rf_dataset *ds, const char *what)
{
    const rf_model_info *in = rf_model_info_of(m);
    int K = in->K, B = 512, E = in->E;
    rf_workspace *ws = rf_workspace_create(m, B);
    rf_grads *g[2] = {rf_grads_create(m), rf_grads_create(m)};
    size_t *rows = malloc((size_t)B * sizeof *rows);
    for (int i = 0; i < B; i++) rows[i] = (size_t)i * 3;
    int lc[2] = {0, 1};
    rf_batch b = {ds, rows, B, lc};
    rf_error e;
    assert_int_equal(K, 2);
    assert_int_equal(rf_model_forward(m, ws, &b, 1, &e), RF_OK);
    assert_int_equal(rf_model_task_grads(m, ws, &b, g, NULL, &e), RF_OK);
    int ng = rf_model_param_groups(m, NULL, 0);
    rf_param_group *gr = calloc((size_t)ng, sizeof *gr);
    assert_int_equal(rf_model_param_groups(m, gr, ng), ng);
    unsigned char *seen = calloc(in->n_params, 1);
    int specific = 0;
    for (int i = 0; i < ng; i++) {
        assert_true(gr[i].tasks != 0 && gr[i].tasks <= 3u);
        if (gr[i].owner >= 0) assert_true(gr[i].tasks >> gr[i].owner & 1u);
        if (!in->is_tower) assert_int_equal(gr[i].owner, gr[i].tasks == 3u ? -1 : (int)gr[i].tasks - 1);
        specific += gr[i].tasks != 3u;
        for (int k = 0; k < K; k++) {
            double s = 0;
            if (gr[i].emb) {
                const uint32_t *er;
                float *ev;
                size_t nr = rf_grads_emb(g[k], &er, &ev);
                for (size_t r = 0; r < nr; r++)
                    for (size_t c = 0; c < gr[i].cols; c++) s += fabsf(ev[r * (size_t)E + gr[i].off + c]);
            } else {
                const float *d = rf_grads_dense(g[k], NULL);
                for (size_t r = 0; r < gr[i].rows; r++)
                    for (size_t c = 0; c < gr[i].cols; c++) s += fabsf(d[gr[i].off + r * gr[i].ld + c]);
            }
            if (!(gr[i].tasks >> k & 1u) && s != 0)
                fail_msg("%s: %s: task %d's gradient %g outside its mask %u", what, gr[i].name, k, s, gr[i].tasks);
            if ((gr[i].tasks >> k & 1u) && !(s > 0))
                fail_msg("%s: %s: task %d in mask %u, zero gradient", what, gr[i].name, k, gr[i].tasks);
        }
        if (gr[i].emb) continue;
        for (size_t r = 0; r < gr[i].rows; r++)
            for (size_t c = 0; c < gr[i].cols; c++) seen[gr[i].off + r * gr[i].ld + c]++;
    }
    for (size_t i = 0; i < in->n_params; i++) assert_int_equal(seen[i], 1);
    /* every model has task-specific parameters (its towers, or the child's) */
    assert_true(specific > 0);
    free(seen);
    free(gr);
    free(rows);
    rf_grads_free(g[0]);
    rf_grads_free(g[1]);
    rf_workspace_free(ws);
}

/* Every model type (the twin-tower one with each top link), and NSE / MMoE with the M1 penalty
 * (a child's loss reaching the parent's logit). */
static void test_groups_vs_gradients(void **state)
{
    (void)state;
    rf_dataset *ds = sim(2000);
    for (int link = RF_TWIN_NONE; link <= RF_TWIN_BOTH; link++) {
        rf_config cfg;
        rf_config_default(&cfg);
        cfg.model.type = RF_MODEL_TWIN;
        cfg.model.emb_dim = 8;
        cfg.model.n_hidden = 2;
        cfg.model.hidden[0] = 32;
        cfg.model.hidden[1] = 16;
        cfg.model.twin_dim = 8;
        cfg.model.twin_link = link;
        cfg.model.n_item_fields = 0;
        for (int f = 0; f < ds->F; f++)
            if (!strncmp(ds->fields[f].name, "item", 4) || !strcmp(ds->fields[f].name, "brand") ||
                !strcmp(ds->fields[f].name, "shop"))
                snprintf(cfg.model.item_fields[cfg.model.n_item_fields++], RF_NAME_MAX, "%s", ds->fields[f].name);
        assert_true(cfg.model.n_item_fields > 0);
        rf_model *m = NULL;
        rf_error e;
        if (rf_config_create_model(&cfg, ds->F, ds->fields, ds->D, &m, &e) != RF_OK) fail_msg("twin: %s", e.msg);
        char what[32];
        snprintf(what, sizeof what, "twin link %d", link);
        check_groups(m, ds, what);
        rf_model_free(m);
    }
    for (int t = 0; t <= RF_MODEL_STEM + 2; t++) {
        rf_model_type type = t == RF_MODEL_STEM + 1 ? RF_MODEL_NSE : t == RF_MODEL_STEM + 2 ? RF_MODEL_MMOE : (rf_model_type)t;
        rf_config cfg;
        rf_config_default(&cfg);
        rf_model *m = NULL;
        if (t > RF_MODEL_STEM) { /* with M1 */
            rf_model *tmp = model_for(ds, type, &cfg);
            rf_model_free(tmp);
            cfg.model.monotonic = RF_MONO_M1;
            cfg.model.monotonic_weight = 1.0f;
            rf_error e;
            assert_int_equal(rf_config_create_model(&cfg, ds->F, ds->fields, ds->D, &m, &e), RF_OK);
        } else {
            m = model_for(ds, type, &cfg);
        }
        char what[64];
        snprintf(what, sizeof what, "%s%s", rf_model_type_name(type), t > RF_MODEL_STEM ? "+M1" : "");
        check_groups(m, ds, what);
        rf_model_free(m);
    }
    rf_dataset_free(ds);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_const_model_many_threads),
        cmocka_unit_test(test_grad_hook),
        cmocka_unit_test(test_optimizer_state_roundtrip),
        cmocka_unit_test(test_emb_each),
        cmocka_unit_test(test_task_grads_and_groups),
        cmocka_unit_test(test_groups_vs_gradients),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
