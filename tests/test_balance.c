/* test_balance.c - PUB (include/resflow/balance.h):
 * - the weight solve alpha_i (M alpha)_i = 1 on hand-computed K = 2 and K = 3 matrices, an
 *   ill-conditioned one, singular ones (regularised, finite), zero-update tasks (alpha = 0),
 *   refusal of a non-finite matrix;
 * - two PUB steps on a ResFlow model against a direct computation in the test (per-task Adam
 *   updates from rf_model_task_grads, the Gram matrix over the shared groups, rf_pub_weights,
 *   the weighted update; plain Adam for the task-specific groups);
 * - 50 steps with a task whose gradient is zero (and with no positives of a task) stay finite;
 * - the optimizer state round-trips: a saved and loaded PUB continues bit for bit;
 * - a 3-task model (configs/synth_3task.yaml, shrunk) trains with PUB. */
#include "test_balance_util.h"

#include "resflow/balance.h"
#include "resflow/config.h"
#include "resflow/train.h"

/* ---- the weight solve ------------------------------------------------------------------- */

static double residual(const double *M, int K, const double *a)
{
    double r = 0;
    for (int i = 0; i < K; i++) {
        double t = 0;
        for (int j = 0; j < K; j++) t += M[i * K + j] * a[j];
        r = fmax(r, fabs(a[i] * t - 1));
    }
    return r;
}

static void solve_ok(const double *M, int K, double *a)
{
    rf_error e;
    assert_int_equal(rf_pub_weights(M, K, a, &e), RF_OK);
    for (int i = 0; i < K; i++) assert_true(a[i] > 0 && isfinite(a[i]));
    assert_true(residual(M, K, a) < 1e-9);
}

#define NEAR(x, y) assert_true(fabs((x) - (y)) <= 1e-12 * fabs(y))

static void test_weights_k2(void **state)
{
    (void)state;
    double a[2];
    /* diagonal: alpha_i = 1/sqrt(M_ii) */
    double D[4] = {4, 0, 0, 9};
    solve_ok(D, 2, a);
    NEAR(a[0], 0.5);
    NEAR(a[1], 1.0 / 3);
    /* [[1,1],[1,4]]: a1^2 + a1 a2 = 1 = a1 a2 + 4 a2^2 => a1 = 2 a2, 6 a2^2 = 1 */
    double P[4] = {1, 1, 1, 4};
    solve_ok(P, 2, a);
    NEAR(a[0], 2 / sqrt(6.0));
    NEAR(a[1], 1 / sqrt(6.0));
    /* conflicting tasks [[1,-1/2],[-1/2,1]]: a = x (1, 1), x^2 / 2 = 1 */
    double C[4] = {1, -0.5, -0.5, 1};
    solve_ok(C, 2, a);
    NEAR(a[0], sqrt(2.0));
    NEAR(a[1], sqrt(2.0));
    /* scale invariance: M * s gives alpha / sqrt(s) (tiny and huge Gram matrices) */
    double S[4] = {1e-20, 1e-20, 1e-20, 4e-20}, L[4] = {1e20, 1e20, 1e20, 4e20};
    solve_ok(S, 2, a);
    NEAR(a[0], 2e10 / sqrt(6.0));
    solve_ok(L, 2, a);
    NEAR(a[1], 1e-10 / sqrt(6.0));
}

static void test_weights_k3(void **state)
{
    (void)state;
    double a[3];
    /* I + J: a = x (1,1,1), 4 x^2 = 1 */
    double M[9] = {2, 1, 1, 1, 2, 1, 1, 1, 2};
    solve_ok(M, 3, a);
    for (int i = 0; i < 3; i++) NEAR(a[i], 0.5);
    /* block diagonal: task 2 alone (1/sqrt(9)) and tasks 0, 1 as in [[1,1],[1,4]] */
    double B[9] = {1, 1, 0, 1, 4, 0, 0, 0, 9};
    solve_ok(B, 3, a);
    NEAR(a[0], 2 / sqrt(6.0));
    NEAR(a[1], 1 / sqrt(6.0));
    NEAR(a[2], 1.0 / 3);
    /* a Gram matrix of three random vectors in R^5, with a conflicting pair */
    double u[3][5] = {{1, -2, 0.5, 3, 0}, {-0.7, 1.5, 1, -2, 0.1}, {0.2, 0.3, -4, 1, 2}}, G[9];
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) {
            G[i * 3 + j] = 0;
            for (int p = 0; p < 5; p++) G[i * 3 + j] += u[i][p] * u[j][p];
        }
    solve_ok(G, 3, a);
}

static void test_weights_degenerate(void **state)
{
    (void)state;
    double a[3];
    rf_error e;
    /* ill-conditioned, definite: nearly opposite updates (cond 2e4) -> a = (100, 100); nearly
     * parallel (cond 2e8) -> a = 1/sqrt(2 - 1e-8) */
    double I1[4] = {1, -(1 - 1e-4), -(1 - 1e-4), 1};
    solve_ok(I1, 2, a);
    assert_true(fabs(a[0] - 100) < 1e-6 && fabs(a[1] - 100) < 1e-6);
    double I2[4] = {1, 1 - 1e-8, 1 - 1e-8, 1};
    solve_ok(I2, 2, a);
    assert_true(fabs(a[0] - 1 / sqrt(2 - 1e-8)) < 1e-12);
    /* singular, solvable: identical updates -> a = 1/sqrt(2) each */
    double P[4] = {1, 1, 1, 1};
    solve_ok(P, 2, a);
    NEAR(a[0], 1 / sqrt(2.0));
    /* singular, no positive solution (u2 = -u1): regularised, finite, positive, equal */
    double N[4] = {1, -1, -1, 1};
    assert_int_equal(rf_pub_weights(N, 2, a, &e), RF_OK);
    assert_true(isfinite(a[0]) && isfinite(a[1]) && a[0] > 0 && a[1] > 0);
    assert_true(fabs(a[0] - a[1]) <= 1e-9 * a[0]);
    /* three tasks, one the negative of the sum of the others: no solution; regularised */
    double V[9] = {1, 0, -1, 0, 1, -1, -1, -1, 2};
    assert_int_equal(rf_pub_weights(V, 3, a, &e), RF_OK);
    for (int i = 0; i < 3; i++) assert_true(isfinite(a[i]) && a[i] > 0);
    /* a zero task: alpha 0, the others solved among themselves */
    double Z[9] = {4, 0, 2, 0, 0, 0, 2, 0, 4};
    assert_int_equal(rf_pub_weights(Z, 3, a, &e), RF_OK);
    assert_true(a[1] == 0);
    NEAR(a[0], 1 / sqrt(6.0));
    NEAR(a[2], 1 / sqrt(6.0));
    /* all zero: all 0 */
    double O[4] = {0, 0, 0, 0};
    assert_int_equal(rf_pub_weights(O, 2, a, &e), RF_OK);
    assert_true(a[0] == 0 && a[1] == 0);
    /* K = 1: 1/sqrt(M) */
    double one = 16;
    solve_ok(&one, 1, a);
    NEAR(a[0], 0.25);
    /* refused: non-finite, negative diagonal, K out of range; alpha stays finite */
    double F[4] = {1, NAN, NAN, 1};
    assert_int_equal(rf_pub_weights(F, 2, a, &e), RF_ENUMERIC);
    assert_true(a[0] == 1 && a[1] == 1);
    double Ng[4] = {-1, 0, 0, 1};
    assert_int_equal(rf_pub_weights(Ng, 2, a, &e), RF_EUSAGE);
    assert_int_equal(rf_pub_weights(Ng, 0, a, &e), RF_EUSAGE);
}

/* ---- the optimizer ---------------------------------------------------------------------- */

static void shrink(rf_config *cfg) { test_small_cfg(cfg, 1e-2f); }

static rf_model *model_for(const rf_dataset *ds, rf_model_type t, rf_config *cfg)
{
    return test_small_model(ds, t, 1e-2f, cfg);
}

/* The batch of step s (128 rows). */
static rf_batch batch_of(const rf_dataset *ds, int s, size_t *rows, int *lc)
{
    for (int i = 0; i < 128; i++) rows[i] = ((size_t)s * 128 + (size_t)i * 13) % ds->n;
    return (rf_batch){ds, rows, 128, lc};
}

/* One PUB step on the model's current parameters, checked against a direct computation: the
 * optimizer's state before the step is read from its saved bytes (moments m, v). */
static void check_step(rf_model *m, rf_optimizer *o, const rf_train_cfg *tc, rf_workspace *ws,
                       rf_grads **g, const rf_batch *b, const unsigned char *shared)
{
    const rf_model_info *in = rf_model_info_of(m);
    int K = in->K;
    size_t n = in->n_params;
    /* the state before: header 40 | n ne K interval next_refresh (32) | K alpha | m | v */
    size_t ss = rf_optimizer_state_size(o);
    unsigned char *st = malloc(ss);
    rf_optimizer_save_state(o, st);
    float *m0 = malloc(n * sizeof(float)), *v0 = malloc(n * sizeof(float));
    memcpy(m0, st + 72 + 8 * (size_t)K, n * sizeof(float)); /* (little-endian host) */
    memcpy(v0, st + 72 + 8 * (size_t)K + 4 * n, n * sizeof(float));
    size_t ne = in->n_emb_rows * (size_t)in->E;
    float *em0 = malloc(ne * sizeof(float)), *ev0 = malloc(ne * sizeof(float));
    memcpy(em0, st + 72 + 8 * (size_t)K + 8 * n, ne * sizeof(float));
    memcpy(ev0, st + 72 + 8 * (size_t)K + 8 * n + 4 * ne, ne * sizeof(float));
    free(st);
    double t = (double)rf_optimizer_steps(o) + 1;
    double b1 = tc->beta1, b2 = tc->beta2, eps = tc->eps, lr = tc->lr, wd = tc->weight_decay;
    double bc1 = 1 - pow(b1, t), bc2 = 1 - pow(b2, t);

    rf_error e;
    assert_int_equal(rf_model_forward(m, ws, b, 1, &e), RF_OK);
    assert_int_equal(rf_model_task_grads(m, ws, b, g, NULL, &e), RF_OK);
    const float *gk[RF_MAX_TASKS];
    for (int k = 0; k < K; k++) gk[k] = rf_grads_dense(g[k], NULL);
    /* the per-task Adam updates of the shared parameters and their Gram matrix */
    double M[RF_MAX_TASKS * RF_MAX_TASKS] = {0}, alpha[RF_MAX_TASKS];
    double *u = malloc((size_t)K * n * sizeof(double));
    size_t n_shared = 0;
    for (size_t i = 0; i < n; i++) {
        if (!shared[i]) continue;
        n_shared++;
        for (int k = 0; k < K; k++) {
            double mk = b1 * m0[i] + (1 - b1) * gk[k][i], vk = b2 * v0[i] + (1 - b2) * gk[k][i] * gk[k][i];
            u[(size_t)k * n + i] = (mk / bc1) / (sqrt(vk) / sqrt(bc2) + eps);
        }
        for (int k = 0; k < K; k++)
            for (int l = 0; l < K; l++) M[k * K + l] += u[(size_t)k * n + i] * u[(size_t)l * n + i];
    }
    assert_true(n_shared <= n);
    assert_int_equal(rf_pub_weights(M, K, alpha, &e), RF_OK);
    double asum = 0;
    for (int k = 0; k < K; k++) asum += alpha[k];
    /* the step uses the weights rescaled to sum K (balance.h: Scale) */
    for (int k = 0; k < K && asum > 0; k++) alpha[k] *= K / asum;
    asum = asum > 0 ? K : 0;
    /* the expected parameters */
    const float *p = rf_model_params(m);
    double *want = malloc(n * sizeof(double));
    for (size_t i = 0; i < n; i++) {
        if (shared[i]) {
            double du = 0;
            for (int k = 0; k < K; k++) du += alpha[k] * u[(size_t)k * n + i];
            want[i] = p[i] - lr * (wd * p[i] + du);
        } else {
            double gi = wd * p[i];
            for (int k = 0; k < K; k++) gi += gk[k][i];
            double mi = b1 * m0[i] + (1 - b1) * gi, vi = b2 * v0[i] + (1 - b2) * gi * gi;
            want[i] = p[i] - lr / bc1 * mi / (sqrt(vi) / sqrt(bc2) + eps);
        }
    }
    /* the embeddings: lazy Adam on the summed per-task row gradients */
    int E = in->E;
    double *eacc = calloc(ne, sizeof(double));
    unsigned char *touched = calloc(in->n_emb_rows, 1);
    for (int k = 0; k < K; k++) {
        const uint32_t *er;
        float *ev;
        size_t nr = rf_grads_emb(g[k], &er, &ev);
        for (size_t r = 0; r < nr; r++) {
            touched[er[r]] = 1;
            for (int j = 0; j < E; j++) eacc[(size_t)er[r] * E + j] += ev[r * (size_t)E + j];
        }
    }
    double elr = tc->emb_lr > 0 ? tc->emb_lr : tc->lr, ewd = tc->emb_weight_decay;
    float *emb = rf_model_emb(m), *emb0 = malloc(ne * sizeof(float));
    memcpy(emb0, emb, ne * sizeof(float));
    float *before = malloc(n * sizeof(float));
    memcpy(before, p, n * sizeof(float));
    assert_int_equal(rf_pub_step(o, m, g, K, &e), RF_OK);
    const double *al = rf_pub_alpha(o);
    for (int k = 0; k < K; k++) assert_true(fabs(al[k] - alpha[k]) <= 1e-5 * alpha[k]);
    size_t moved_shared = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs(want[i] - before[i]);
        /* float (library) against double (here): relative to the step, plus a floor of 1e-5 of
         * the step's scale for coordinates whose gradient is near eps or underflows in float */
        double floor = 1e-5 * lr * (shared[i] ? asum : 1);
        assert_true(fabs(p[i] - want[i]) <= 2e-7 * fabs(want[i]) + 1e-4 * d + floor);
        if (shared[i] && p[i] != before[i]) moved_shared++;
    }
    assert_true(moved_shared > 0 || n_shared == 0);
    size_t n_touched = 0;
    for (size_t r = 0; r < in->n_emb_rows; r++) {
        n_touched += touched[r];
        for (int j = 0; j < E; j++) {
            size_t i = r * (size_t)E + (size_t)j;
            if (!touched[r]) {
                assert_true(emb[i] == emb0[i]);
                continue;
            }
            double gi = eacc[i] + ewd * emb0[i];
            double mi = b1 * em0[i] + (1 - b1) * gi, vi = b2 * ev0[i] + (1 - b2) * gi * gi;
            double w = emb0[i] - elr * sqrt(bc2) / bc1 * mi / (sqrt(vi) + eps);
            assert_true(fabs(emb[i] - w) <= 2e-7 * fabs(w) + 1e-4 * fabs(w - emb0[i]) + 1e-5 * elr);
        }
    }
    assert_true(n_touched > 0);
    free(eacc);
    free(touched);
    free(emb0);
    free(em0);
    free(ev0);
    free(before);
    free(want);
    free(u);
    free(m0);
    free(v0);
}

/* three steps of every model type, checked by hand */
static void test_pub_step_every_type(void **state)
{
    (void)state;
    rf_dataset *ds = bal_sim(2000, 0.1f, 5);
    for (int t = 0; t <= RF_MODEL_STEM; t++) {
        rf_config cfg;
        rf_model *m = model_for(ds, (rf_model_type)t, &cfg);
        unsigned char *sh = bal_shared_mask(m);
        rf_optimizer *o = rf_pub_create(m, &cfg.train, 1);
        rf_workspace *ws = rf_workspace_create(m, 128);
        rf_grads *g[2] = {rf_grads_create(m), rf_grads_create(m)};
        size_t rows[128];
        int lc[2] = {0, 1};
        for (int s = 0; s < 3; s++) {
            rf_batch b = batch_of(ds, s, rows, lc);
            check_step(m, o, &cfg.train, ws, g, &b, sh);
        }
        rf_grads_free(g[0]);
        rf_grads_free(g[1]);
        rf_workspace_free(ws);
        rf_optimizer_free(o);
        free(sh);
        rf_model_free(m);
    }
    rf_dataset_free(ds);
}

static void test_pub_step_by_hand(void **state)
{
    (void)state;
    rf_dataset *ds = bal_sim(2000, 0.1f, 5);
    rf_config cfg;
    rf_model *m = model_for(ds, RF_MODEL_RESFLOW, &cfg);
    size_t n_sh = 0, np = rf_model_info_of(m)->n_params;
    unsigned char *sh = bal_shared_mask(m);
    for (size_t i = 0; i < np; i++) n_sh += sh[i];
    assert_true(n_sh > 0); /* ResFlow: the parent's tower is shared with the child */
    rf_optimizer *o = rf_pub_create(m, &cfg.train, 1);
    assert_string_equal(rf_optimizer_name(o), "pub");
    assert_true(rf_pub_alpha(o)[0] == 1 && rf_pub_alpha(o)[1] == 1);
    rf_workspace *ws = rf_workspace_create(m, 128);
    rf_grads *g[2] = {rf_grads_create(m), rf_grads_create(m)};
    size_t rows[128];
    int lc[2] = {0, 1};
    for (int s = 0; s < 3; s++) { /* step 1 from zero moments, then with moments */
        rf_batch b = batch_of(ds, s, rows, lc);
        check_step(m, o, &cfg.train, ws, g, &b, sh);
    }
    /* a non-finite per-task update at a refresh: RF_ENUMERIC, model and step count untouched */
    {
        rf_batch b = batch_of(ds, 3, rows, lc);
        rf_error e2;
        assert_int_equal(rf_model_forward(m, ws, &b, 1, &e2), RF_OK);
        assert_int_equal(rf_model_task_grads(m, ws, &b, g, NULL, &e2), RF_OK);
        size_t i0 = 0;
        while (!sh[i0]) i0++;
        rf_grads_dense(g[1], NULL)[i0] = NAN;
        float *p0 = malloc(np * sizeof(float));
        memcpy(p0, rf_model_params(m), np * sizeof(float));
        long st0 = rf_optimizer_steps(o);
        assert_int_equal(rf_pub_step(o, m, g, 2, &e2), RF_ENUMERIC);
        assert_int_equal(rf_optimizer_steps(o), st0);
        assert_memory_equal(rf_model_params(m), p0, np * sizeof(float));
        free(p0);
    }
    /* not a PUB optimizer / wrong K: refused */
    rf_optimizer *adam = rf_adam_create(m, &cfg.train);
    rf_error e;
    assert_int_equal(rf_pub_step(adam, m, g, 2, &e), RF_EUSAGE);
    assert_null(rf_pub_alpha(adam));
    assert_int_equal(rf_pub_step(o, m, g, 1, &e), RF_EUSAGE);
    rf_optimizer_free(adam);
    rf_grads_free(g[0]);
    rf_grads_free(g[1]);
    rf_workspace_free(ws);
    rf_optimizer_free(o);
    free(sh);
    rf_model_free(m);
    rf_dataset_free(ds);
}

static void test_pub_zero_task(void **state)
{
    (void)state;
    /* (a) no positives of the second task in any batch; (b) its gradient zeroed (a masked
     * task): alpha 0 at first, resolved again at the next step; 50 steps each */
    for (int v = 0; v < 2; v++) {
        rf_dataset *ds = bal_sim(3000, 0.1f, 5);
        if (v == 0)
            for (size_t i = 0; i < ds->n; i++) ds->labels[i * (size_t)ds->K + 1] = 0;
        for (int t = 0; t < 2; t++) {
            rf_config cfg;
            rf_model *m = model_for(ds, t ? RF_MODEL_MMOE : RF_MODEL_RESFLOW, &cfg);
            rf_optimizer *o = rf_pub_create(m, &cfg.train, 10);
            rf_workspace *ws = rf_workspace_create(m, 128);
            rf_grads *g[2] = {rf_grads_create(m), rf_grads_create(m)};
            size_t rows[128];
            int lc[2] = {0, 1};
            rf_error e;
            for (int s = 0; s < 50; s++) {
                rf_batch b = batch_of(ds, s, rows, lc);
                if (v == 0) {
                    double loss;
                    assert_int_equal(rf_train_step_pub(m, ws, g, o, &b, &loss, &e), RF_OK);
                    assert_true(isfinite(loss));
                } else {
                    assert_int_equal(rf_model_forward(m, ws, &b, 1, &e), RF_OK);
                    assert_int_equal(rf_model_task_grads(m, ws, &b, g, NULL, &e), RF_OK);
                    if (s < 12) rf_grads_zero(g[1]);
                    rf_model_adopt_buffers(m, ws);
                    assert_int_equal(rf_pub_step(o, m, g, 2, &e), RF_OK);
                    const double *al = rf_pub_alpha(o);
                    if (s == 0) assert_true(al[1] == 0 && al[0] > 0); /* zero update at step 1 */
                    if (s == 1) assert_true(al[1] > 0);               /* momentum: no longer zero */
                }
                const double *al = rf_pub_alpha(o);
                assert_true(isfinite(al[0]) && isfinite(al[1]) && al[0] >= 0 && al[1] >= 0);
            }
            assert_true(bal_all_finite(m));
            assert_int_equal(rf_optimizer_steps(o), 50);
            rf_grads_free(g[0]);
            rf_grads_free(g[1]);
            rf_workspace_free(ws);
            rf_optimizer_free(o);
            rf_model_free(m);
        }
        rf_dataset_free(ds);
    }
}

static void pub_steps(rf_model *m, rf_optimizer *o, const rf_dataset *ds, int from, int n)
{
    int K = rf_model_info_of(m)->K;
    rf_workspace *ws = rf_workspace_create(m, 128);
    rf_grads *g[RF_MAX_TASKS];
    for (int k = 0; k < K; k++) g[k] = rf_grads_create(m);
    size_t rows[128];
    int lc[RF_MAX_TASKS];
    rf_error e;
    assert_int_equal(rf_resolve_labels(m, ds, lc, &e), RF_OK);
    for (int s = from; s < from + n; s++) {
        rf_batch b = batch_of(ds, s, rows, lc);
        double loss;
        assert_int_equal(rf_train_step_pub(m, ws, g, o, &b, &loss, &e), RF_OK);
        assert_true(isfinite(loss));
    }
    for (int k = 0; k < K; k++) rf_grads_free(g[k]);
    rf_workspace_free(ws);
}

static void test_pub_state_roundtrip(void **state)
{
    (void)state;
    rf_dataset *ds = bal_sim(2000, 0.1f, 5);
    rf_config cfg;
    rf_model *a = model_for(ds, RF_MODEL_RESFLOW, &cfg), *b = model_for(ds, RF_MODEL_RESFLOW, &cfg);
    const rf_model_info *in = rf_model_info_of(a);
    rf_optimizer *oa = rf_pub_create(a, &cfg.train, 3);
    pub_steps(a, oa, ds, 0, 5); /* refreshed at 1 and 4; next at 7 */
    size_t n = rf_optimizer_state_size(oa);
    unsigned char *buf = malloc(n);
    rf_optimizer_save_state(oa, buf);
    rf_optimizer *ob = rf_pub_create(b, &cfg.train, 3);
    rf_error e;
    assert_int_equal(rf_optimizer_load_state(ob, buf, n, &e), RF_OK);
    assert_int_equal(rf_optimizer_steps(ob), 5);
    assert_memory_equal(rf_pub_alpha(ob), rf_pub_alpha(oa), 2 * sizeof(double));
    memcpy(rf_model_params(b), rf_model_params(a), in->n_params * sizeof(float));
    memcpy(rf_model_buffers(b), rf_model_buffers(a), in->n_buffers * sizeof(float));
    memcpy(rf_model_emb(b), rf_model_emb(a), in->n_emb_rows * (size_t)in->E * sizeof(float));
    pub_steps(a, oa, ds, 5, 6);
    pub_steps(b, ob, ds, 5, 6);
    assert_memory_equal(rf_model_params(a), rf_model_params(b), in->n_params * sizeof(float));
    assert_memory_equal(rf_model_emb(a), rf_model_emb(b), in->n_emb_rows * (size_t)in->E * sizeof(float));
    assert_memory_equal(rf_pub_alpha(ob), rf_pub_alpha(oa), 2 * sizeof(double));
    /* refused: another interval, Adam's state, truncated */
    rf_optimizer *oc = rf_pub_create(b, &cfg.train, 10);
    assert_int_equal(rf_optimizer_load_state(oc, buf, n, &e), RF_EFORMAT);
    assert_non_null(strstr(e.msg, "interval"));
    rf_optimizer *ad = rf_adam_create(b, &cfg.train);
    size_t na = rf_optimizer_state_size(ad);
    unsigned char *abuf = malloc(na);
    rf_optimizer_save_state(ad, abuf);
    assert_int_equal(rf_optimizer_load_state(oc, abuf, na, &e), RF_EFORMAT);
    assert_int_equal(rf_optimizer_load_state(ob, buf, n - 1, &e), RF_EFORMAT);
    free(abuf);
    rf_optimizer_free(ad);
    rf_optimizer_free(oc);
    free(buf);
    rf_optimizer_free(oa);
    rf_optimizer_free(ob);
    rf_model_free(a);
    rf_model_free(b);
    rf_dataset_free(ds);
}

static void test_pub_three_tasks(void **state)
{
    (void)state;
    rf_config cfg;
    rf_error e;
    const char *path = "configs/synth_3task.yaml";
    if (access(path, R_OK) != 0) path = "../configs/synth_3task.yaml";
    if (access(path, R_OK) != 0) path = "../../configs/synth_3task.yaml";
    assert_int_equal(rf_config_load_file(&cfg, path, &e), RF_OK);
    shrink(&cfg);
    rf_dataset *ds = bal_sim3(3000, 7);
    rf_model *m = NULL;
    assert_int_equal(rf_config_create_model(&cfg, ds->F, ds->fields, ds->D, &m, &e), RF_OK);
    assert_int_equal(rf_model_info_of(m)->K, 3);
    unsigned char *sh = bal_shared_mask(m);
    rf_optimizer *op = rf_pub_create(m, &cfg.train, 1);
    /* two steps by hand, then 30 through the training step */
    rf_workspace *ws = rf_workspace_create(m, 128);
    rf_grads *g[3] = {rf_grads_create(m), rf_grads_create(m), rf_grads_create(m)};
    size_t rows[128];
    int lc[3];
    assert_int_equal(rf_resolve_labels(m, ds, lc, &e), RF_OK);
    for (int s = 0; s < 2; s++) {
        rf_batch b = batch_of(ds, s, rows, lc);
        check_step(m, op, &cfg.train, ws, g, &b, sh);
    }
    for (int k = 0; k < 3; k++) rf_grads_free(g[k]);
    rf_workspace_free(ws);
    pub_steps(m, op, ds, 2, 30);
    const double *al = rf_pub_alpha(op);
    for (int k = 0; k < 3; k++) assert_true(isfinite(al[k]) && al[k] > 0);
    assert_true(bal_all_finite(m));
    rf_optimizer_free(op);
    free(sh);
    rf_model_free(m);
    rf_dataset_free(ds);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_weights_k2),
        cmocka_unit_test(test_weights_k3),
        cmocka_unit_test(test_weights_degenerate),
        cmocka_unit_test(test_pub_step_by_hand),
        cmocka_unit_test(test_pub_step_every_type),
        cmocka_unit_test(test_pub_zero_task),
        cmocka_unit_test(test_pub_state_roundtrip),
        cmocka_unit_test(test_pub_three_tasks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
