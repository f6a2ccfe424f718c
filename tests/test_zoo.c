/* test_zoo.c - the model zoo's own objectives and robustness (docs/models.md).
 *
 * - The objectives of aitm, escm2_ipw, escm2_dr and dcmt (rf_zoo_loss) equal a direct, naive
 *   transcription of the formulas of docs/models.md (methods.md §4.7, §4.9, §4.10), per task.
 * - Their gradients with respect to the logits and the extra outputs match central differences
 *   of the loss computed in double precision (tight tolerances, so even the 1e-3-weighted DCMT
 *   prior is checked); propensity weights held fixed, as their stop-gradient says.
 * - Extreme propensities (parent probabilities of 1e-35 or 1 - 1e-35, 3-task chains) give a
 *   finite loss and finite gradients, with the inverse propensities capped at model.ips_clip.
 * - Every zoo model works with 5 tasks (a tree): forward, loss, backward all finite, and the
 *   one-hot per-task gradients of the own-objective models sum to the joint gradient.
 * - AITM, ESCM2-IPW, ESCM2-DR, DCMT and STEM train on the 3-task simulator (click -> cart ->
 *   order) for 300 steps without a non-finite loss and learn every task (test AUC > 0.55).
 */
#include "test_util.h"

#include "nn/model_impl.h"
#include "resflow/config.h"

/* The model specification of a test configuration (no fields: the zoo's helpers read only the
 * tasks and the architecture). */
static const rf_model_spec *spec_of_cfg(const rf_config *c)
{
    static rf_model_spec s; /* test-only scratch: each call overwrites it */
    rf_config_model_spec(c, 0, NULL, 0, &s);
    return &s;
}

#include "resflow/config.h"
#include "resflow/model.h"
#include "resflow/pipeline.h"
#include "resflow/train.h"
#include "core/rng.h"
#include "nn/zoo.h"

/* ---- naive reference of the objectives ------------------------------------------------------ */

static double sig(double s) { return 1.0 / (1.0 + exp(-s)); }
static double bce(double p, double t, double w) { return -(w * t * log(p) + (1 - t) * log(1 - p)); }
static double clipinv(double p, double clip) { return fmin(1.0 / fmax(p, 1e-6), clip); }

/* Task k's loss L_k of one row (before the row weight and the task scale). */
static double ref_row(const rf_config *c, const int *par, const double *s, const double *x, const double *y,
                      int k)
{
    const rf_model_cfg *m = &c->model;
    double pw = c->tasks[k].pos_weight;
    int p = par[k];
    if (m->type == RF_MODEL_AITM) {
        double l = bce(sig(s[k]), y[k], pw);
        if (p >= 0) l += m->aitm_alpha * fmax(sig(s[k]) - sig(s[p]), 0.0);
        return l;
    }
    double pe[RF_MAX_TASKS]; /* entire-space probabilities: products along the chain */
    for (int j = 0; j < c->K; j++) {
        pe[j] = 1;
        for (int i = j; i >= 0; i = par[i]) pe[j] *= sig(s[i]);
    }
    if (p < 0) return bce(pe[k], y[k], pw); /* L_CTR */
    double o = y[p], prop = pe[p], r = sig(s[k]), delta = bce(r, y[k], pw);
    double w1 = o * clipinv(prop, m->ips_clip);
    int e = rf_zoo_extra_col(spec_of_cfg(c), k);
    double risk;
    switch (m->type) {
    case RF_MODEL_ESCM2_IPW: risk = w1 * delta; break;
    case RF_MODEL_ESCM2_DR: {
        double imp = sig(x[e]), err = delta - imp;
        risk = imp + w1 * err + w1 * err * err;
        break;
    }
    default: { /* DCMT */
        double w0 = (1 - o) * clipinv(1 - prop, m->ips_clip), rs = sig(x[e]);
        risk = w1 * delta + w0 * bce(rs, 1 - y[k], 1.0) + 1e-3 * fabs(r + rs - 1);
    }
    }
    return m->global_weight * bce(pe[k], y[k], pw) + m->cf_weight * risk;
}

typedef struct {
    int B, K, nx;
    float S[64 * RF_MAX_TASKS], X[64 * RF_MAX_TASKS], Y[64 * RF_MAX_TASKS], rw[64];
    double scale[RF_MAX_TASKS];
} batch_in;

static void cfg_for(rf_config *c, rf_model_type t, int K, const int *par)
{
    rf_config_default(c);
    c->model.type = t;
    c->model.aitm_alpha = 0.7f;
    c->model.cf_weight = 0.4f;
    c->model.global_weight = 0.8f;
    c->model.ips_clip = 6.0f;
    c->K = K;
    for (int k = 0; k < K; k++) {
        snprintf(c->tasks[k].name, RF_NAME_MAX, "t%d", k);
        snprintf(c->tasks[k].label, sizeof c->tasks[k].label, "y%d", k);
        c->tasks[k].parent[0] = '\0';
        if (par[k] >= 0) snprintf(c->tasks[k].parent, RF_NAME_MAX, "t%d", par[k]);
        c->tasks[k].weight = 1.0f + 0.25f * k;
        c->tasks[k].pos_weight = 1.0f + k;
    }
}

static void random_batch(batch_in *in, const rf_config *c, int B, uint64_t seed, float spread)
{
    rf_rng r;
    rf_rng_seed(&r, seed);
    in->B = B;
    in->K = c->K;
    in->nx = rf_zoo_n_extra(spec_of_cfg(c));
    for (int i = 0; i < B * c->K; i++) {
        in->S[i] = (float)(spread * (2 * rf_rng_uniform(&r) - 1));
        in->Y[i] = (float)(rf_rng_uniform(&r) < 0.5);
    }
    for (int i = 0; i < B * in->nx; i++) in->X[i] = (float)(spread * (2 * rf_rng_uniform(&r) - 1));
    for (int b = 0; b < B; b++) in->rw[b] = (float)(0.5 + rf_rng_uniform(&r));
    for (int k = 0; k < c->K; k++) in->scale[k] = (0.5 + rf_rng_uniform(&r)) * c->tasks[k].weight;
}

static const rf_model_type OWN[4] = {RF_MODEL_AITM, RF_MODEL_ESCM2_IPW, RF_MODEL_ESCM2_DR, RF_MODEL_DCMT};
static const int PAR2[2] = {-1, 0}, PAR3[3] = {-1, 0, 1}, TREE4[4] = {-1, 0, 1, 1};

static double zoo_loss(const rf_config *c, const batch_in *in, float *dS, float *dX, double *pt,
                       rf_zoo_frozen *fz, const int *par)
{
    return rf_zoo_loss(spec_of_cfg(c), par, in->B, in->S, in->X, in->Y, in->rw, in->scale, dS, dX, pt, fz);
}

static void test_loss_formulas(void **state)
{
    (void)state;
    const int *pars[3] = {PAR2, PAR3, TREE4};
    const int Ks[3] = {2, 3, 4};
    for (int ti = 0; ti < 4; ti++)
        for (int pi = 0; pi < 3; pi++) {
            rf_config c;
            cfg_for(&c, OWN[ti], Ks[pi], pars[pi]);
            batch_in in;
            random_batch(&in, &c, 32, 7 + ti * 3 + pi, 3.0f);
            float dS[64 * RF_MAX_TASKS], dX[64 * RF_MAX_TASKS];
            double pt[RF_MAX_TASKS];
            double tot = zoo_loss(&c, &in, dS, dX, pt, NULL, pars[pi]);
            double want_tot = 0;
            for (int k = 0; k < c.K; k++) {
                double lk = 0;
                for (int b = 0; b < in.B; b++) {
                    double s[RF_MAX_TASKS], x[RF_MAX_TASKS], y[RF_MAX_TASKS];
                    for (int j = 0; j < c.K; j++) {
                        s[j] = in.S[b * c.K + j];
                        y[j] = in.Y[b * c.K + j];
                    }
                    for (int j = 0; j < in.nx; j++) x[j] = in.X[b * in.nx + j];
                    lk += in.rw[b] * ref_row(&c, pars[pi], s, x, y, k);
                }
                lk /= in.B;
                assert_true(fabs(pt[k] - lk) <= 1e-9 * fabs(lk) + 1e-12);
                want_tot += in.scale[k] * lk;
            }
            assert_true(fabs(tot - want_tot) <= 1e-9 * fabs(want_tot));
        }
}

/* d loss / d logits and extras against central differences (propensity weights frozen). */
static void test_loss_gradients(void **state)
{
    (void)state;
    const int *pars[3] = {PAR2, PAR3, TREE4};
    const int Ks[3] = {2, 3, 4};
    int checked = 0, skipped = 0;
    for (int ti = 0; ti < 4; ti++)
        for (int pi = 0; pi < 3; pi++) {
            rf_config c;
            cfg_for(&c, OWN[ti], Ks[pi], pars[pi]);
            if (OWN[ti] == RF_MODEL_DCMT) c.model.cf_weight = 1.0f; /* keep the 1e-3 prior visible */
            batch_in in;
            random_batch(&in, &c, 16, 100 + ti * 3 + pi, 4.0f);
            float dS[64 * RF_MAX_TASKS], dX[64 * RF_MAX_TASKS], tS[64 * RF_MAX_TASKS], tX[64 * RF_MAX_TASKS];
            float wbuf[64 * 2 * RF_MAX_TASKS];
            rf_zoo_frozen fz = {RF_FREEZE_RECORD, wbuf};
            zoo_loss(&c, &in, dS, dX, NULL, &fz, pars[pi]);
            fz.mode = RF_FREEZE_USE;
            for (int which = 0; which < 2; which++) {
                float *v = which ? in.X : in.S;
                const float *an = which ? dX : dS;
                int n = in.B * (which ? in.nx : in.K);
                for (int i = 0; i < n; i++) {
                    double num[2];
                    for (int hs = 0; hs < 2; hs++) {
                        float save = v[i];
                        double h = hs ? 5e-4 : 1e-3;
                        v[i] = (float)(save + h);
                        double hp = (double)v[i] - save, lp = zoo_loss(&c, &in, tS, tX, NULL, &fz, pars[pi]);
                        v[i] = (float)(save - h);
                        double hm = save - (double)v[i], lm = zoo_loss(&c, &in, tS, tX, NULL, &fz, pars[pi]);
                        v[i] = save;
                        num[hs] = (lp - lm) / (hp + hm);
                    }
                    checked++;
                    if (fabs(num[0] - num[1]) > 1e-7 + 1e-4 * fabs(num[1])) { /* a kink within h */
                        skipped++;
                        continue;
                    }
                    if (!(fabs(num[1] - an[i]) <= 1e-7 + 1e-4 * fabs(num[1])))
                        fail_msg("%s K=%d %s[%d]: analytic %.9g numeric %.9g", rf_model_type_name(OWN[ti]), c.K,
                                 which ? "X" : "S", i, an[i], num[1]);
                }
            }
        }
    assert_true(checked > 500);
    assert_true(skipped * 50 < checked);
}

/* Parent probabilities of ~1e-35 (and of 1 - 1e-35): weights capped at ips_clip, everything
 * finite, including a 3-task chain whose entire-space order probability is ~1e-105. */
static void test_extreme_propensities(void **state)
{
    (void)state;
    for (int ti = 1; ti < 4; ti++)
        for (int K = 2; K <= 3; K++) {
            rf_config c;
            cfg_for(&c, OWN[ti], K, PAR3);
            batch_in in;
            random_batch(&in, &c, 8, 5, 1.0f);
            const float ext[4] = {-80.0f, 80.0f, -30.0f, 30.0f};
            for (int b = 0; b < in.B; b++) {
                for (int k = 0; k < K; k++) in.S[b * K + k] = ext[(b + k) % 4];
                for (int e = 0; e < in.nx; e++) in.X[b * in.nx + e] = ext[(b + e + 1) % 4];
                for (int k = 0; k < K; k++) in.Y[b * K + k] = (float)((b >> k) & 1);
            }
            float dS[64 * RF_MAX_TASKS], dX[64 * RF_MAX_TASKS];
            double pt[RF_MAX_TASKS];
            double tot = zoo_loss(&c, &in, dS, dX, pt, NULL, PAR3);
            assert_true(isfinite(tot));
            for (int k = 0; k < K; k++) assert_true(isfinite(pt[k]));
            for (int i = 0; i < in.B * K; i++) assert_true(isfinite(dS[i]));
            for (int i = 0; i < in.B * in.nx; i++) assert_true(isfinite(dX[i]));
        }
    /* ESCM2-IPW, one row, parent logit -80 (p = 1.8e-35), clicked, converted: the risk is
     * ips_clip * BCE(sigmoid(s_child), 1), not 1/p times it */
    rf_config c;
    cfg_for(&c, RF_MODEL_ESCM2_IPW, 2, PAR2);
    batch_in in = {.B = 1, .K = 2, .nx = 0, .S = {-80.0f, 0.0f}, .Y = {1, 1}, .rw = {1}, .scale = {1, 1}};
    float dS[4], dX[1];
    double pt[2];
    zoo_loss(&c, &in, dS, dX, pt, NULL, PAR2);
    double pw = c.tasks[1].pos_weight, lp1 = -80.0 - log1p(exp(-80.0)) - log(2.0);
    double want = c.model.global_weight * (-pw * lp1) + c.model.cf_weight * c.model.ips_clip * pw * log(2.0);
    assert_true(fabs(pt[1] - want) <= 1e-9 * want);

    /* A saturated root (logit 40, sigmoid rounds to 1 in double), not clicked: the gradient of
     * its BCE is sigmoid(40) ~ 1, not 0 (1 - sigmoid(s) must not be formed by subtraction) */
    for (int ti = 1; ti < 4; ti++) {
        cfg_for(&c, OWN[ti], 2, PAR2);
        batch_in sat = {.B = 1, .K = 2, .nx = rf_zoo_n_extra(spec_of_cfg(&c)), .S = {40.0f, 0.0f}, .Y = {0, 0},
                        .rw = {1}, .scale = {1, 0}};
        zoo_loss(&c, &sat, dS, dX, pt, NULL, PAR2);
        assert_true(fabs(dS[0] - 1.0) < 1e-6);
    }
}

/* ---- whole models ---------------------------------------------------------------------------- */

static rf_dataset *rand_data(int n, int K, uint64_t seed)
{
    const int F = 3, D = 2;
    rf_dataset *ds = rf_dataset_alloc((size_t)n, F, D, K);
    assert_non_null(ds);
    rf_rng r;
    rf_rng_seed(&r, seed);
    uint32_t vocab[3] = {11, 7, 5};
    for (int f = 0; f < F; f++) {
        snprintf(ds->fields[f].name, RF_NAME_MAX, "f%d", f);
        ds->fields[f].vocab = vocab[f];
    }
    for (int i = 0; i < n; i++) {
        for (int f = 0; f < F; f++) ds->cat[i * F + f] = (uint32_t)rf_rng_below(&r, vocab[f]);
        for (int d = 0; d < D; d++) ds->dense[i * D + d] = (float)(2 * rf_rng_uniform(&r) - 1);
        for (int k = 0; k < K; k++) ds->labels[i * K + k] = (float)(rf_rng_uniform(&r) < 0.5);
    }
    for (int k = 0; k < K; k++) snprintf(ds->label_names[k], RF_NAME_MAX, "y%d", k);
    return ds;
}

static void small_model_cfg(rf_config *c)
{
    c->model.emb_dim = 4;
    c->model.n_hidden = 2;
    c->model.hidden[0] = 16;
    c->model.hidden[1] = 8;
    c->model.bottom = (rf_widths){2, {16, 8}};
    c->model.expert_hidden = (rf_widths){2, {16, 8}};
    c->model.experts = 3;
    c->model.shared_experts = 2;
    c->model.specific_experts = 1;
}

/* Five tasks (t0 -> t1 -> {t2, t3}, t3 -> t4): every zoo model builds, runs, and its one-hot
 * per-task gradients add up to the joint gradient (the per-task attribution of the extra
 * terms that PUB-style per-task updates rely on). */
static void test_five_tasks(void **state)
{
    (void)state;
    const int par5[5] = {-1, 0, 1, 1, 3};
    rf_dataset *ds = rand_data(64, 5, 3);
    size_t rows[64];
    for (int i = 0; i < 64; i++) rows[i] = (size_t)i;
    int lc[5] = {0, 1, 2, 3, 4};
    rf_batch b = {ds, rows, 64, lc};
    for (int t = RF_MODEL_SINGLE; t <= RF_MODEL_STEM; t++)
        for (int bn = 0; bn < 2; bn++) {
            rf_config c;
            cfg_for(&c, (rf_model_type)t, 5, par5);
            small_model_cfg(&c);
            c.model.bn = bn ? RF_BN_BATCH : RF_BN_NONE;
            rf_model *m = NULL;
            rf_error e;
            assert_int_equal(rf_config_create_model(&c, ds->F, ds->fields, ds->D, &m, &e), RF_OK);
            rf_workspace *ws = rf_workspace_create(m, 64);
            rf_grads *G = rf_grads_create(m);
            assert_non_null(ws);
            float *sum = calloc(m->n_params, sizeof(float));
            double per[5], tot_parts = 0;
            for (int k = 0; k <= 5; k++) { /* 5 one-hot passes, then the joint one */
                float ts[5] = {0, 0, 0, 0, 0};
                if (k < 5) ts[k] = 1;
                rf_grads_zero(G);
                assert_int_equal(rf_model_forward(m, ws, &b, 1, &e), RF_OK);
                double l = rf_model_loss(m, ws, &b, k < 5 ? ts : NULL, per);
                assert_true(isfinite(l));
                assert_int_equal(rf_model_backward(m, ws, &b, G, NULL), RF_OK);
                rf_grads_emb_clear(G);
                for (size_t i = 0; i < m->n_params; i++) assert_true(isfinite(rf_grads_dense(G, NULL)[i]));
                if (k < 5) {
                    for (size_t i = 0; i < m->n_params; i++) sum[i] += rf_grads_dense(G, NULL)[i];
                    tot_parts += l;
                } else {
                    double wsum = 0;
                    for (int j = 0; j < 5; j++) wsum += c.tasks[j].weight * per[j];
                    assert_true(fabs(wsum - l) <= 1e-9 * fabs(l));
                    assert_true(fabs(tot_parts - l) <= 1e-6 * fabs(l));
                    assert_true(close_enough(sum, rf_grads_dense(G, NULL), m->n_params, 1e-6, 1e-4, rf_model_type_name(t)));
                }
            }
            /* outputs: extras for escm2_dr/dcmt (one per child task); probabilities multiply
             * along the tree for escm2/dcmt and are plain sigmoids otherwise */
            int nx = rf_zoo_n_extra(spec_of_cfg(&c));
            assert_int_equal(nx, (t == RF_MODEL_ESCM2_DR || t == RF_MODEL_DCMT) ? 4 : 0);
            assert_true((rf_ws_extras(ws) != NULL) == (nx > 0));
            const float *P = rf_ws_probs(ws), *S = rf_ws_logits(ws);
            for (int i = 0; i < 64; i++)
                for (int k = 0; k < 5; k++) {
                    double want = sig(S[i * 5 + k]);
                    if (rf_model_is_product(m) && par5[k] >= 0) want *= P[i * 5 + par5[k]];
                    assert_true(fabs(P[i * 5 + k] - want) <= 1e-6 * want + 1e-30);
                }
            free(sum);
            rf_grads_free(G);
            rf_workspace_free(ws);
            rf_model_free(m);
        }
    rf_dataset_free(ds);
}

/* The five new models on the 3-task simulator (click -> cart -> order, entire-space labels):
 * 300 steps of training with the default loss settings never produce a non-finite loss (rf_train
 * returns RF_ENUMERIC if one does), and every task is learnt. */
static void test_train_3task(void **state)
{
    (void)state;
    rf_config base;
    rf_config_default(&base);
    rf_synth_opts *o = &base.data.synth;
    o->rows = 120000;
    o->tasks = 3;
    o->seed = 5;
    o->n_users = 3000;
    o->n_items = 4000;
    o->n_queries = 1500;
    o->ctr = 0.1f;
    o->cart_rate = 0.3f;
    o->cvr = 0.1f;
    base.data.valid_frac = 0.05f;
    base.data.test_frac = 0.15f;
    rf_splits sp;
    rf_error e;
    assert_int_equal(rf_data_load(&base, &sp, NULL, NULL, &e), RF_OK);
    const rf_dataset *tr = sp.train, *va = sp.valid, *te = sp.test;
    const rf_model_type types[5] = {RF_MODEL_AITM, RF_MODEL_ESCM2_IPW, RF_MODEL_ESCM2_DR, RF_MODEL_DCMT,
                                    RF_MODEL_STEM};
    const int par3[3] = {-1, 0, 1};
    const char *labels[3] = {"click", "cart", "order"};
    for (int ti = 0; ti < 5; ti++) {
        rf_config c;
        cfg_for(&c, types[ti], 3, par3);
        c.model.aitm_alpha = base.model.aitm_alpha; /* the defaults */
        c.model.cf_weight = base.model.cf_weight;
        c.model.global_weight = base.model.global_weight;
        c.model.ips_clip = base.model.ips_clip;
        for (int k = 0; k < 3; k++) {
            snprintf(c.tasks[k].label, sizeof c.tasks[k].label, "%s", labels[k]);
            c.tasks[k].weight = 1;
            c.tasks[k].pos_weight = 1;
        }
        small_model_cfg(&c);
        c.model.emb_dim = 8;
        c.model.hidden[0] = 32;
        c.model.hidden[1] = 16;
        c.model.expert_hidden = (rf_widths){1, {32}};
        c.train.batch_size = 512;
        c.train.max_steps = 300;
        c.train.epochs = 3;
        c.train.lr = 3e-3f;
        c.train.log_every = 0;
        rf_model *m = NULL;
        assert_int_equal(rf_config_create_model(&c, tr->F, tr->fields, tr->D, &m, &e), RF_OK);
        rf_train_summary sum;
        rf_status st = rf_train(m, &c.train, NULL, tr, va, &sum, &e);
        if (st) fail_msg("%s: %s", rf_model_type_name(types[ti]), e.msg);
        assert_int_equal(sum.steps, 300);
        rf_eval_result ev;
        assert_int_equal(rf_evaluate(m, te, 0, &ev, &e), RF_OK);
        if (getenv("RESFLOW_TEST_VERBOSE"))
            fprintf(stderr, "  %-9s test AUC click %.4f cart %.4f order %.4f | cart|click %.4f order|cart %.4f\n",
                    rf_model_type_name(types[ti]), ev.task[0].auc, ev.task[1].auc, ev.task[2].auc, ev.cond[1].auc,
                    ev.cond[2].auc);
        for (int k = 0; k < 3; k++) {
            assert_true(isfinite(ev.task[k].logloss));
            assert_true(ev.task[k].auc > 0.55);
        }
        rf_model_free(m);
    }
    rf_splits_free(&sp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loss_formulas),
        cmocka_unit_test(test_loss_gradients),
        cmocka_unit_test(test_extreme_propensities),
        cmocka_unit_test(test_five_tasks),
        cmocka_unit_test(test_train_3task),
    };
    return cmocka_run_group_tests_name("zoo", tests, NULL, NULL);
}
