/* test_balance_methods.c - train.balance's methods (include/resflow/balance.h, src/nn/balance_*.c):
 * - the coefficients of pcgrad, mgda, cagrad, nash_mtl and uncertainty on small gradient sets
 *   computed by hand here (conflicting, aligned, one dominant; K = 2 and 3), and on degenerate
 *   Gram matrices (zero, singular, one task: finite); non-finite input refused;
 * - the PyTorch fixture tests/fixtures/balance_ref.txt (tests/ref/balance_ref.py): PUB's weights
 *   and joint update from torch.optim.Adam's per-task updates, PCGrad's and MGDA's combined
 *   gradients;
 * - one optimizer step of every method on a ResFlow model against Adam's first step computed
 *   here from the per-task gradients (|update| = lr * c / (|c| + eps) per coordinate);
 * - every method trains every model type through rf_train (finite, learns), the config key. */
#include "test_balance_util.h"

#include "resflow/balance.h"
#include "resflow/config.h"
#include "resflow/train.h"

#define NEAR(a, b, tol) assert_true(fabs((double)(a) - (double)(b)) <= (tol) * (1 + fabs((double)(b))))

/* M = G G' for K vectors of length P (row-major) */
static void gram(const double *g, int K, int P, double *M)
{
    for (int i = 0; i < K; i++)
        for (int j = 0; j < K; j++) {
            double s = 0;
            for (int p = 0; p < P; p++) s += g[i * P + p] * g[j * P + p];
            M[i * K + j] = s;
        }
}

/* the combined vector sum_k w_k g_k */
static void combine(const double *g, int K, int P, const double *w, double *out)
{
    for (int p = 0; p < P; p++) {
        out[p] = 0;
        for (int k = 0; k < K; k++) out[p] += w[k] * g[k * P + p];
    }
}

static void coeffs(int meth, const double *g, int K, int P, double *ws, double *wt)
{
    double M[RF_MAX_TASKS * RF_MAX_TASKS];
    gram(g, K, P, M);
    rf_error e;
    assert_int_equal(rf_balance_coeffs(meth, M, NULL, K, 1, ws, wt, &e), RF_OK);
}

static void test_pcgrad_by_hand(void **state)
{
    (void)state;
    double ws[3], wt[3], d[2];
    /* conflicting: g1 = (1,0), g2 = (-1,1): g1' = (1/2,1/2), g2' = (0,1), sum (1/2, 3/2) */
    double c[] = {1, 0, -1, 1};
    coeffs(RF_BALANCE_PCGRAD, c, 2, 2, ws, wt);
    combine(c, 2, 2, ws, d);
    NEAR(d[0], 0.5, 1e-12);
    NEAR(d[1], 1.5, 1e-12);
    assert_true(wt[0] == 1 && wt[1] == 1);
    /* aligned: nothing projected */
    double a[] = {1, 0, 2, 1};
    coeffs(RF_BALANCE_PCGRAD, a, 2, 2, ws, wt);
    NEAR(ws[0], 1, 1e-15);
    NEAR(ws[1], 1, 1e-15);
    /* one dominant, conflicting: g1 = (10,0), g2 = (-1,1): g1' = 10 (1,0) + 5 (-1,1) = (5,5),
     * g2' = (-1,1) + 0.1 (10,0) = (0,1): the small task keeps its orthogonal part */
    double dm[] = {10, 0, -1, 1};
    coeffs(RF_BALANCE_PCGRAD, dm, 2, 2, ws, wt);
    combine(dm, 2, 2, ws, d);
    NEAR(d[0], 5, 1e-12);
    NEAR(d[1], 6, 1e-12);
    /* K = 3, one conflicting pair (order cannot matter): g3 orthogonal to both */
    double k3[] = {1, 0, 0, -1, 1, 0, 0, 0, 1};
    coeffs(RF_BALANCE_PCGRAD, k3, 3, 3, ws, wt);
    double d3[3];
    combine(k3, 3, 3, ws, d3);
    NEAR(d3[0], 0.5, 1e-12);
    NEAR(d3[1], 1.5, 1e-12);
    NEAR(d3[2], 1, 1e-12);
}

static void test_mgda_by_hand(void **state)
{
    (void)state;
    double ws[3], wt[3], d[2];
    double o[] = {1, 0, 0, 1}; /* orthogonal, equal: the midpoint */
    coeffs(RF_BALANCE_MGDA, o, 2, 2, ws, wt);
    NEAR(ws[0], 0.5, 1e-12);
    NEAR(ws[1], 0.5, 1e-12);
    assert_true(wt[0] == ws[0] && wt[1] == ws[1]);
    double dom[] = {1, 0, 3, 0}; /* aligned, one dominant: the smaller gradient alone */
    coeffs(RF_BALANCE_MGDA, dom, 2, 2, ws, wt);
    NEAR(ws[0], 1, 1e-12);
    NEAR(ws[1], 0, 1e-12);
    double opp[] = {1, 0, -1, 0}; /* opposite: the zero vector is in the hull */
    coeffs(RF_BALANCE_MGDA, opp, 2, 2, ws, wt);
    combine(opp, 2, 2, ws, d);
    NEAR(d[0], 0, 1e-12);
    /* g1 = (1,0), g2 = (0,2): min |w e1 + (1-w) 2 e2|^2 at w = 4/5 */
    double un[] = {1, 0, 0, 2};
    coeffs(RF_BALANCE_MGDA, un, 2, 2, ws, wt);
    NEAR(ws[0], 0.8, 1e-12);
    /* K = 3: e1, e2 and (5,5): the hull's nearest point to 0 is (1/2, 1/2) */
    double k3[] = {1, 0, 0, 1, 5, 5};
    coeffs(RF_BALANCE_MGDA, k3, 3, 2, ws, wt);
    combine(k3, 3, 2, ws, d);
    NEAR(d[0], 0.5, 1e-9);
    NEAR(d[1], 0.5, 1e-9);
    NEAR(ws[0] + ws[1] + ws[2], 1, 1e-12);
}

/* CAGrad's objective, evaluated directly, for a grid check */
static double cagrad_obj(const double *g, int P, double w)
{
    double g0[8], gw[8], dot = 0, n0 = 0, nw = 0;
    for (int p = 0; p < P; p++) {
        g0[p] = 0.5 * (g[p] + g[P + p]);
        gw[p] = w * g[p] + (1 - w) * g[P + p];
        dot += g0[p] * gw[p];
        n0 += g0[p] * g0[p];
        nw += gw[p] * gw[p];
    }
    return dot + 0.5 * sqrt(n0) * sqrt(nw);
}

static void test_cagrad_by_hand(void **state)
{
    (void)state;
    double ws[2], wt[2];
    /* orthogonal unit gradients: w = (1/2, 1/2), |g0|^2 = 1/2, lambda = c|g0|/|g_w| = 1/2,
     * coefficients (1/2 + 1/2 * 1/2) / (1 + 1/4) = 0.6 each */
    double o[] = {1, 0, 0, 1};
    coeffs(RF_BALANCE_CAGRAD, o, 2, 2, ws, wt);
    NEAR(ws[0], 0.6, 1e-6);
    NEAR(ws[1], 0.6, 1e-6);
    assert_true(wt[0] == 1 && wt[1] == 1);
    /* conflicting, unequal: the solved w against a fine grid of the objective; the direction
     * d = (g0 + lambda g_w) / (1 + c^2) from that w */
    double g[] = {1, 0, -0.5, 2};
    coeffs(RF_BALANCE_CAGRAD, g, 2, 2, ws, wt);
    double best = INFINITY, wbest = 0;
    for (int i = 0; i <= 200000; i++) {
        double w = i / 200000.0, f = cagrad_obj(g, 2, w);
        if (f < best) best = f, wbest = w;
    }
    double gw[2] = {wbest * g[0] + (1 - wbest) * g[2], wbest * g[1] + (1 - wbest) * g[3]};
    double g0[2] = {0.5 * (g[0] + g[2]), 0.5 * (g[1] + g[3])};
    double lam = 0.5 * sqrt(g0[0] * g0[0] + g0[1] * g0[1]) / sqrt(gw[0] * gw[0] + gw[1] * gw[1]);
    double d[2], want0 = (g0[0] + lam * gw[0]) / 1.25, want1 = (g0[1] + lam * gw[1]) / 1.25;
    combine(g, 2, 2, ws, d);
    NEAR(d[0], want0, 1e-4);
    NEAR(d[1], want1, 1e-4);
    /* the conflict-averse property: d does not decrease either task (<d, g_i> >= 0 here) */
    assert_true(d[0] * g[0] + d[1] * g[1] > 0 && d[0] * g[2] + d[1] * g[3] > 0);
}

static void test_nash_uncertainty_by_hand(void **state)
{
    (void)state;
    double ws[2], wt[2];
    /* g1 = (1,0), g2 = (0,2): alpha_i^2 |g_i|^2 = 1 -> alpha = (1, 1/2); the shared gradient
     * (1,1) has norm sqrt 2 > 1: clipped to norm 1 */
    double g[] = {1, 0, 0, 2};
    coeffs(RF_BALANCE_NASH_MTL, g, 2, 2, ws, wt);
    NEAR(wt[0], 1, 1e-9);
    NEAR(wt[1], 0.5, 1e-9);
    NEAR(ws[0], 1 / sqrt(2), 1e-9);
    NEAR(ws[1], 0.5 / sqrt(2), 1e-9);
    /* uncertainty at its first step: s = 0, weights 1 */
    double M[4], loss[2] = {2, 0.1};
    gram(g, 2, 2, M);
    rf_error e;
    assert_int_equal(rf_balance_coeffs(RF_BALANCE_UNCERTAINTY, M, loss, 2, 1, ws, wt, &e), RF_OK);
    assert_true(ws[0] == 1 && ws[1] == 1 && wt[0] == 1);
}

static void test_degenerate(void **state)
{
    (void)state;
    const int meths[] = {RF_BALANCE_UNCERTAINTY, RF_BALANCE_PCGRAD, RF_BALANCE_MGDA, RF_BALANCE_CAGRAD,
                         RF_BALANCE_NASH_MTL};
    double zero[9] = {0}, same[4] = {1, 1, 1, 1}, opp[4] = {1, -1, -1, 1}, one[1] = {4}, half[4] = {1, 0, 0, 0};
    const double *Ms[] = {zero, same, opp, one, half};
    const int Ks[] = {3, 2, 2, 1, 2};
    rf_error e;
    for (size_t i = 0; i < sizeof meths / sizeof *meths; i++)
        for (int c = 0; c < 5; c++) {
            double ws[3] = {NAN, NAN, NAN}, wt[3] = {NAN, NAN, NAN};
            assert_int_equal(rf_balance_coeffs(meths[i], Ms[c], NULL, Ks[c], 3, ws, wt, &e), RF_OK);
            for (int k = 0; k < Ks[c]; k++) assert_true(isfinite(ws[k]) && isfinite(wt[k]));
        }
    double bad[4] = {1, NAN, NAN, 1}, ws[2], wt[2];
    assert_int_equal(rf_balance_coeffs(RF_BALANCE_MGDA, bad, NULL, 2, 1, ws, wt, &e), RF_ENUMERIC);
    assert_int_equal(rf_balance_coeffs(RF_BALANCE_PUB, same, NULL, 2, 1, ws, wt, &e), RF_EUSAGE);
    assert_int_equal(rf_balance_coeffs(RF_BALANCE_MGDA, same, NULL, 0, 1, ws, wt, &e), RF_EUSAGE);
    assert_string_equal(rf_balance_name(RF_BALANCE_NASH_MTL), "nash_mtl");
    assert_string_equal(rf_balance_name(99), "?");
}

/* ---- the PyTorch fixture ------------------------------------------------------------------ */

static void read_vec(FILE *f, double *x, int n)
{
    for (int i = 0; i < n; i++) assert_int_equal(fscanf(f, "%lf", &x[i]), 1);
}

static void test_torch_fixture(void **state)
{
    (void)state;
    const char *dir = getenv("RESFLOW_FIXTURES") ? getenv("RESFLOW_FIXTURES") : "tests/fixtures";
    char path[512];
    snprintf(path, sizeof path, "%s/balance_ref.txt", dir);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char kind[16];
    int n_pub = 0, n_pc = 0, n_mg = 0;
    rf_error e;
    while (fscanf(f, "%15s", kind) == 1 && strcmp(kind, "end") != 0) {
        int K, P, t = 0;
        assert_int_equal(fscanf(f, "%d %d", &K, &P), 2);
        if (!strcmp(kind, "pub")) assert_int_equal(fscanf(f, "%d", &t), 1);
        double *g = malloc(sizeof(double) * (size_t)(K + 4) * P);
        double *m = g + (size_t)K * P, *v = m + P, *want = v + P, *got = want + P;
        if (!strcmp(kind, "pub")) {
            read_vec(f, m, P);
            read_vec(f, v, P);
        }
        read_vec(f, g, K * P);
        if (!strcmp(kind, "pub")) {
            double a_ref[RF_MAX_TASKS], an_ref[RF_MAX_TASKS], a[RF_MAX_TASKS], M[RF_MAX_TASKS * RF_MAX_TASKS];
            read_vec(f, a_ref, K);
            read_vec(f, an_ref, K);
            read_vec(f, want, P);
            /* the per-task Adam updates as balance.h specifies them (b = 0.9, 0.999, eps 1e-8) */
            double *u = malloc(sizeof(double) * (size_t)K * P);
            double bc1 = 1 - pow(0.9, t), bc2 = 1 - pow(0.999, t);
            for (int k = 0; k < K; k++)
                for (int p = 0; p < P; p++) {
                    double gk = g[k * P + p], mk = 0.9 * m[p] + 0.1 * gk, vk = 0.999 * v[p] + 0.001 * gk * gk;
                    u[k * P + p] = (mk / bc1) / (sqrt(vk) / sqrt(bc2) + 1e-8);
                }
            gram(u, K, P, M);
            assert_int_equal(rf_pub_weights(M, K, a, &e), RF_OK);
            double s = 0;
            for (int k = 0; k < K; k++) {
                NEAR(a[k], a_ref[k], 1e-6);
                s += a[k];
            }
            for (int k = 0; k < K; k++) a[k] *= K / s;
            for (int k = 0; k < K; k++) NEAR(a[k], an_ref[k], 1e-6);
            combine(u, K, P, a, got);
            for (int p = 0; p < P; p++) NEAR(got[p], want[p], 1e-6);
            free(u);
            n_pub++;
        } else {
            read_vec(f, want, P);
            int meth = !strcmp(kind, "pcgrad") ? RF_BALANCE_PCGRAD : RF_BALANCE_MGDA;
            double ws[RF_MAX_TASKS], wt[RF_MAX_TASKS];
            coeffs(meth, g, K, P, ws, wt);
            combine(g, K, P, ws, got);
            double scale = 0;
            for (int p = 0; p < P; p++) scale = fmax(scale, fabs(want[p]));
            for (int p = 0; p < P; p++) {
                if (getenv("RESFLOW_TEST_VERBOSE") && fabs(got[p] - want[p]) > 1e-6 * (1 + scale))
                    fprintf(stderr, "%s K=%d p=%d got %.12g want %.12g (w %g %g)\n", kind, K, p, got[p], want[p], ws[0], ws[1]);
                assert_true(fabs(got[p] - want[p]) <= 1e-6 * (1 + scale));
            }
            if (meth == RF_BALANCE_PCGRAD) n_pc++;
            else n_mg++;
        }
        free(g);
    }
    fclose(f);
    assert_int_equal(n_pub, 4);
    assert_int_equal(n_pc, 4);
    assert_int_equal(n_mg, 6);
}

/* ---- steps on a model ---------------------------------------------------------------------- */

static rf_model *model_for(const rf_dataset *ds, rf_model_type t, rf_config *cfg, int balance)
{
    rf_config_default(cfg);
    cfg->model.type = t;
    cfg->model.emb_dim = 8;
    cfg->model.n_hidden = 2;
    cfg->model.hidden[0] = 32;
    cfg->model.hidden[1] = 16;
    cfg->train.batch_size = 128;
    cfg->train.weight_decay = 1e-3f;
    cfg->train.emb_weight_decay = 1e-4f;
    cfg->train.lr = 1e-2f;
    cfg->train.log_every = 1000000;
    cfg->train.balance = balance;
    rf_model *m = NULL;
    rf_error e;
    assert_int_equal(rf_config_create_model(cfg, ds->F, ds->fields, ds->D, &m, &e), RF_OK);
    return m;
}

/* The first step of method meth on a 2-task model of type t, against Adam's first step (or
 * AdaTask's) on the combination computed here. */
static void check_first_step(rf_model_type t, int meth)
{
    rf_dataset *ds = bal_sim(2000, 0.1f, 5);
    rf_config cfg;
    rf_model *m = model_for(ds, t, &cfg, meth);
    const rf_model_info *in = rf_model_info_of(m);
    int K = in->K, E = in->E;
    size_t n = in->n_params, ne = in->n_emb_rows * (size_t)E;
    unsigned char *sh = bal_shared_mask(m);
    rf_balancer *b = rf_balancer_create(m, &cfg.train, meth);
    assert_non_null(b);
    rf_workspace *ws = rf_workspace_create(m, 128);
    rf_grads *g[RF_MAX_TASKS];
    for (int k = 0; k < K; k++) g[k] = rf_grads_create(m);
    size_t rows[128];
    int lc[2] = {0, 1};
    for (int i = 0; i < 128; i++) rows[i] = (size_t)i * 7 % ds->n;
    rf_batch bt = {ds, rows, 128, lc};
    float *p0 = malloc(n * sizeof(float)), *e0 = malloc(ne * sizeof(float));
    memcpy(p0, rf_model_params(m), n * sizeof(float));
    memcpy(e0, rf_model_emb(m), ne * sizeof(float));
    double loss;
    rf_error e;
    assert_int_equal(rf_train_step_balanced(m, ws, g, b, &bt, &loss, &e), RF_OK);
    assert_int_equal(rf_optimizer_steps(rf_balancer_optimizer(b)), 1);
    /* the per-task gradients (left in g) as dense arrays, the Gram matrix of the shared part */
    double *eg = calloc((size_t)K * ne, sizeof(double));
    for (int k = 0; k < K; k++) {
        const uint32_t *r;
        float *v;
        size_t nr = rf_grads_emb(g[k], &r, &v);
        for (size_t i = 0; i < nr; i++)
            for (int j = 0; j < E; j++) eg[(size_t)k * ne + (size_t)r[i] * E + j] += v[i * (size_t)E + j];
    }
    double M[RF_MAX_TASKS * RF_MAX_TASKS] = {0}, cs[RF_MAX_TASKS], ct[RF_MAX_TASKS];
    for (int k = 0; k < K; k++)
        for (int l = 0; l < K; l++) {
            const float *a = rf_grads_dense(g[k], NULL), *c = rf_grads_dense(g[l], NULL);
            for (size_t i = 0; i < n; i++)
                if (sh[i]) M[k * K + l] += (double)a[i] * c[i];
            for (size_t i = 0; i < ne; i++) M[k * K + l] += eg[(size_t)k * ne + i] * eg[(size_t)l * ne + i];
        }
    if (meth == RF_BALANCE_ADATASK) {
        for (int k = 0; k < K; k++) cs[k] = ct[k] = 1;
    } else {
        assert_int_equal(rf_balance_coeffs(meth, M, NULL, K, cfg.train.seed, cs, ct, &e), RF_OK);
    }
    double w[RF_MAX_TASKS];
    rf_balancer_weights(b, w);
    for (int k = 0; k < K; k++) NEAR(w[k], cs[k], 1e-5);
    double lr = cfg.train.lr, wd = cfg.train.weight_decay, eps = cfg.train.eps;
    const float *p = rf_model_params(m);
    size_t checked = 0;
    for (size_t i = 0; i < n; i++) {
        double want;
        if (meth == RF_BALANCE_ADATASK && sh[i]) {
            double du = 0;
            for (int k = 0; k < K; k++) {
                double gk = rf_grads_dense(g[k], NULL)[i];
                du += gk / (fabs(gk) + eps);
            }
            want = p0[i] - lr * (wd * p0[i] + du);
        } else {
            double c = wd * p0[i];
            for (int k = 0; k < K; k++) c += (sh[i] ? cs[k] : ct[k]) * rf_grads_dense(g[k], NULL)[i];
            if (fabs(c) < 1e-5) continue; /* float rounding of a near-zero combination */
            want = p0[i] - lr * c / (fabs(c) + eps);
        }
        assert_true(fabs(p[i] - want) <= 1e-4 * lr + 1e-6 * fabs(want));
        checked++;
    }
    assert_true(checked > n / 4);
    double elr = cfg.train.lr, ewd = cfg.train.emb_weight_decay, eeps = eps / sqrt(1 - cfg.train.beta2);
    const float *em = rf_model_emb(m);
    size_t moved = 0;
    for (size_t i = 0; i < ne; i++) {
        int touched = 0;
        double c = 0;
        for (int k = 0; k < K; k++) {
            if (eg[(size_t)k * ne + i] != 0) touched = 1;
            c += (meth == RF_BALANCE_ADATASK ? 1 : cs[k]) * eg[(size_t)k * ne + i];
        }
        if (!touched) continue;
        c += ewd * e0[i];
        if (fabs(c) < 1e-5) continue;
        double want = e0[i] - elr * c / (fabs(c) + eeps);
        assert_true(fabs(em[i] - want) <= 1e-4 * elr + 1e-6 * fabs(want));
        moved++;
    }
    assert_true(moved > 0);
    free(eg);
    free(p0);
    free(e0);
    free(sh);
    for (int k = 0; k < K; k++) rf_grads_free(g[k]);
    rf_workspace_free(ws);
    rf_balancer_free(b);
    rf_model_free(m);
    rf_dataset_free(ds);
}

static void test_first_step_every_method(void **state)
{
    (void)state;
    for (int meth = RF_BALANCE_UNCERTAINTY; meth < RF_BALANCE_COUNT; meth++) {
        check_first_step(RF_MODEL_RESFLOW, meth);
        check_first_step(RF_MODEL_MMOE, meth);
    }
}

/* uncertainty: the second step's weights are exp(-s) after one Adam step of s on
 * d/ds = 1/2 - l_k (Adam's first step moves s by lr * sign) */
static void test_uncertainty_learns(void **state)
{
    (void)state;
    double M[4] = {1, 0, 0, 1}, ws[2], wt[2];
    rf_error e;
    rf_balancer *b;
    rf_dataset *ds = bal_sim(500, 0.1f, 6);
    rf_config cfg;
    rf_model *m = model_for(ds, RF_MODEL_RESFLOW, &cfg, RF_BALANCE_UNCERTAINTY);
    b = rf_balancer_create(m, &cfg.train, RF_BALANCE_UNCERTAINTY);
    rf_grads *g[2] = {rf_grads_create(m), rf_grads_create(m)};
    double loss[2] = {2.0, 0.1};
    assert_int_equal(rf_balancer_step(b, m, g, loss, &e), RF_OK); /* zero gradients: finite */
    assert_int_equal(rf_balancer_step(b, m, g, loss, &e), RF_OK);
    rf_balancer_weights(b, ws);
    NEAR(ws[0], exp(-cfg.train.lr), 1e-6); /* l = 2 > 1/2: s grows, the weight falls */
    NEAR(ws[1], exp(cfg.train.lr), 1e-6);
    (void)M;
    (void)wt;
    /* a non-finite loss is refused, the model untouched */
    loss[1] = NAN;
    assert_int_equal(rf_balancer_step(b, m, g, loss, &e), RF_ENUMERIC);
    rf_grads_free(g[0]);
    rf_grads_free(g[1]);
    rf_balancer_free(b);
    rf_model_free(m);
    rf_dataset_free(ds);
}

/* every method trains every model type through rf_train (60 steps): finite, and on ResFlow
 * it learns the click task; a data set without conversions (a task with no positives) too */
static void test_train_every_type(void **state)
{
    (void)state;
    rf_dataset *tr = bal_sim(8000, 0.1f, 7), *va = bal_sim(2000, 0.1f, 8), *none = bal_sim(4000, 1e-4f, 9);
    for (int meth = RF_BALANCE_PUB; meth < RF_BALANCE_COUNT; meth++)
        for (int t = 0; t <= RF_MODEL_STEM; t++) {
            rf_config cfg;
            rf_model *m = model_for(tr, (rf_model_type)t, &cfg, meth);
            cfg.train.max_steps = t == RF_MODEL_RESFLOW ? 60 : 12;
            cfg.train.epochs = 1;
            cfg.train.threads = 1;
            rf_train_summary s;
            rf_error e;
            rf_status st = rf_train(m, &cfg.train, NULL, tr, va, &s, &e);
            if (st) fprintf(stderr, "%s on type %d: %s\n", rf_balance_name(meth), t, e.msg);
            assert_int_equal(st, RF_OK);
            assert_true(bal_all_finite(m));
            if (t == RF_MODEL_RESFLOW) {
                assert_true(s.best_valid.task[0].auc > 0.55);
                cfg.train.max_steps = 20;
                assert_int_equal(rf_train(m, &cfg.train, NULL, none, NULL, &s, &e), RF_OK);
                assert_true(bal_all_finite(m));
            }
            rf_model_free(m);
        }
    /* with a caller's optimizer: refused */
    rf_config cfg;
    rf_model *m = model_for(tr, RF_MODEL_RESFLOW, &cfg, RF_BALANCE_PCGRAD);
    rf_optimizer *adam = rf_adam_create(m, &cfg.train);
    rf_train_hooks hk = {0};
    hk.opt = adam;
    rf_error e;
    assert_int_equal(rf_train(m, &cfg.train, &hk, tr, NULL, NULL, &e), RF_EUSAGE);
    rf_optimizer_free(adam);
    rf_model_free(m);
    rf_dataset_free(tr);
    rf_dataset_free(va);
    rf_dataset_free(none);
}

/* The balancer's state through its optimizer's bytes (what a checkpoint stores): 4 steps, save,
 * load into a new balancer on a copy of the model, 4 more steps on both: the same parameters
 * bit for bit, for every method, 3 tasks (PCGrad's random task order, Nash-MTL's cached weights
 * with train.balance_interval 3, uncertainty's log-variances, PUB's refresh step). A state of
 * another method is refused. */
static void test_state_roundtrip(void **state)
{
    (void)state;
    rf_dataset *ds = bal_sim3(3000, 7);
    rf_error e;
    unsigned char *other = NULL;
    size_t other_n = 0;
    for (int meth = RF_BALANCE_PUB; meth < RF_BALANCE_COUNT; meth++) {
        rf_config cfg;
        rf_model *m[2];
        for (int i = 0; i < 2; i++) {
            rf_config_default(&cfg);
            cfg.model.emb_dim = 4;
            cfg.model.n_hidden = 1;
            cfg.model.hidden[0] = 8;
            cfg.K = 3;
            cfg.train.lr = 1e-2f;
            cfg.train.balance = meth;
            cfg.train.balance_interval = 3;
            for (int k = 0; k < 3; k++) {
                snprintf(cfg.tasks[k].name, sizeof cfg.tasks[k].name, "t%d", k);
                snprintf(cfg.tasks[k].label, sizeof cfg.tasks[k].label, "%s", k == 0 ? "click" : k == 1 ? "cart" : "order");
                snprintf(cfg.tasks[k].parent, sizeof cfg.tasks[k].parent, "%s", k ? (k == 1 ? "t0" : "t1") : "");
            }
            assert_int_equal(rf_config_create_model(&cfg, ds->F, ds->fields, ds->D, &m[i], &e), RF_OK);
        }
        const rf_model_info *in = rf_model_info_of(m[0]);
        rf_balancer *b[2] = {rf_balancer_create(m[0], &cfg.train, meth), NULL};
        rf_workspace *ws = rf_workspace_create(m[0], 64);
        rf_grads *g[3] = {rf_grads_create(m[0]), rf_grads_create(m[0]), rf_grads_create(m[0])};
        int lc[3] = {rf_dataset_label_index(ds, "click"), rf_dataset_label_index(ds, "cart"),
                     rf_dataset_label_index(ds, "order")};
        size_t rows[64];
        double loss;
        for (int s = 0; s < 4; s++) {
            for (int i = 0; i < 64; i++) rows[i] = ((size_t)s * 64 + i) * 13 % ds->n;
            rf_batch bt = {ds, rows, 64, lc};
            assert_int_equal(rf_train_step_balanced(m[0], ws, g, b[0], &bt, &loss, &e), RF_OK);
        }
        rf_optimizer *o0 = rf_balancer_optimizer(b[0]);
        size_t n = rf_optimizer_state_size(o0);
        unsigned char *st = malloc(n);
        rf_optimizer_save_state(o0, st);
        memcpy(rf_model_params(m[1]), rf_model_params(m[0]), in->n_params * sizeof(float));
        memcpy(rf_model_emb(m[1]), rf_model_emb(m[0]), in->n_emb_rows * (size_t)in->E * sizeof(float));
        if (in->n_buffers) memcpy(rf_model_buffers(m[1]), rf_model_buffers(m[0]), in->n_buffers * sizeof(float));
        b[1] = rf_balancer_create(m[1], &cfg.train, meth);
        assert_int_equal(rf_optimizer_load_state(rf_balancer_optimizer(b[1]), st, n, &e), RF_OK);
        double w0[3], w1[3];
        rf_balancer_weights(b[0], w0);
        rf_balancer_weights(b[1], w1);
        assert_memory_equal(w0, w1, sizeof w0);
        for (int s = 4; s < 8; s++)
            for (int i = 0; i < 2; i++) {
                for (int r = 0; r < 64; r++) rows[r] = ((size_t)s * 64 + r) * 13 % ds->n;
                rf_batch bt = {ds, rows, 64, lc};
                assert_int_equal(rf_train_step_balanced(m[i], ws, g, b[i], &bt, &loss, &e), RF_OK);
            }
        if (memcmp(rf_model_params(m[0]), rf_model_params(m[1]), in->n_params * sizeof(float)))
            fail_msg("%s: the resumed balancer diverged", rf_balance_name(meth));
        assert_memory_equal(rf_model_emb(m[0]), rf_model_emb(m[1]), in->n_emb_rows * (size_t)in->E * sizeof(float));
        if (other) { /* the previous method's state: refused, naming both */
            rf_status ls = rf_optimizer_load_state(rf_balancer_optimizer(b[1]), other, other_n, &e);
            assert_int_equal(ls, RF_EFORMAT);
        }
        free(other);
        other = st;
        other_n = n;
        for (int k = 0; k < 3; k++) rf_grads_free(g[k]);
        rf_workspace_free(ws);
        for (int i = 0; i < 2; i++) {
            rf_balancer_free(b[i]);
            rf_model_free(m[i]);
        }
    }
    free(other);
    rf_dataset_free(ds);
}

static void test_config_key(void **state)
{
    (void)state;
    rf_config cfg;
    rf_config_default(&cfg);
    assert_int_equal(cfg.train.balance, RF_BALANCE_NONE);
    char *d = rf_config_dump(&cfg);
    assert_null(strstr(d, "balance")); /* none: not in the dump (model files unchanged) */
    free(d);
    rf_error e;
    for (int k = 1; k < RF_BALANCE_COUNT; k++) {
        char a[64];
        snprintf(a, sizeof a, "train.balance=%s", rf_balance_name(k));
        assert_int_equal(rf_config_set(&cfg, a, &e), RF_OK);
        assert_int_equal(cfg.train.balance, k);
    }
    assert_int_equal(rf_config_set(&cfg, "train.balance_interval=5", &e), RF_OK);
    d = rf_config_dump(&cfg);
    assert_non_null(strstr(d, "balance: adatask"));
    assert_non_null(strstr(d, "balance_interval: 5"));
    rf_config back;
    rf_config_default(&back);
    assert_int_equal(rf_config_load_string(&back, d, strlen(d), "dump", &e), RF_OK);
    assert_int_equal(back.train.balance, RF_BALANCE_ADATASK);
    assert_int_equal(back.train.balance_interval, 5);
    free(d);
    assert_int_not_equal(rf_config_set(&cfg, "train.balance=gradnorm", &e), RF_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pcgrad_by_hand),
        cmocka_unit_test(test_mgda_by_hand),
        cmocka_unit_test(test_cagrad_by_hand),
        cmocka_unit_test(test_nash_uncertainty_by_hand),
        cmocka_unit_test(test_degenerate),
        cmocka_unit_test(test_torch_fixture),
        cmocka_unit_test(test_first_step_every_method),
        cmocka_unit_test(test_uncertainty_learns),
        cmocka_unit_test(test_train_every_type),
        cmocka_unit_test(test_state_roundtrip),
        cmocka_unit_test(test_config_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
