/* test_gradcheck.c - finite-difference gradient checks for every layer and whole models.
 *
 * Each case builds a tiny dataset (single- and multi-valued fields, dense features, row
 * weights), runs forward + loss + backward, and compares every dense parameter gradient and
 * every touched embedding-row gradient with central differences of the loss (float32 model,
 * so h = 3e-3 and a tolerance |a-n| <= 2e-3 + 3e-2|n|; parameters are perturbed randomly first
 * so that PReLU kinks are not sat upon). Kernels (BN, PReLU, bias, GEMM wiring) are exercised
 * in isolation by the single-layer cases and in combination by the model cases.
 */
#include "test_util.h"

#include "resflow/config.h"
#include "resflow/model.h"
#include "../src/rng.h"

typedef struct {
    rf_model_type type;
    int K;
    const char *parents[4]; /* per task, NULL or parent name */
    int L;
    int hidden[3];
    rf_act act;
    rf_bn bn;
    rf_dense_mode dm;
    uint32_t res_layers;
    int res_logit;
    float pos_w;
} gc_case;

static rf_dataset *tiny_data(int K, uint64_t seed)
{
    const int n = 7, F = 3, D = 2;
    rf_dataset *ds = rf_dataset_alloc(n, F, D, K);
    rf_rng r;
    rf_rng_seed(&r, seed);
    uint32_t vocab[3] = {5, 4, 6};
    for (int f = 0; f < F; f++) {
        snprintf(ds->fields[f].name, RF_NAME_MAX, "f%d", f);
        ds->fields[f].vocab = vocab[f];
    }
    ds->fields[2].multi = 1;
    ds->fields[2].pooling = RF_POOL_MEAN;
    ds->mv_off[2] = malloc((n + 1) * sizeof(uint64_t));
    ds->mv_ids[2] = malloc(3 * n * sizeof(uint32_t));
    ds->mv_off[2][0] = 0;
    for (int i = 0; i < n; i++) {
        ds->cat[i * F + 0] = (uint32_t)rf_rng_below(&r, 5);
        ds->cat[i * F + 1] = (uint32_t)rf_rng_below(&r, 4);
        int c = (int)rf_rng_below(&r, 4); /* 0..3 values, including empty */
        for (int j = 0; j < c; j++) ds->mv_ids[2][ds->mv_off[2][i] + j] = (uint32_t)rf_rng_below(&r, 6);
        ds->mv_off[2][i + 1] = ds->mv_off[2][i] + c;
        for (int d = 0; d < D; d++) ds->dense[i * D + d] = (float)(2 * rf_rng_uniform(&r) - 1);
        for (int k = 0; k < K; k++) ds->labels[i * K + k] = (float)(rf_rng_uniform(&r) < 0.5);
    }
    ds->weight = malloc(n * sizeof(float));
    for (int i = 0; i < n; i++) ds->weight[i] = (float)(0.5 + rf_rng_uniform(&r));
    for (int k = 0; k < K; k++) snprintf(ds->label_names[k], RF_NAME_MAX, "y%d", k);
    return ds;
}

static void make_cfg(rf_config *c, const gc_case *g)
{
    memset(c, 0, sizeof *c);
    c->model.type = g->type;
    c->model.emb_dim = 3;
    c->model.n_hidden = g->L;
    for (int l = 0; l < g->L; l++) c->model.hidden[l] = g->hidden[l];
    c->model.act = g->act;
    c->model.prelu_init = 0.25f;
    c->model.bn = g->bn;
    c->model.bn_momentum = 0.1f;
    c->model.bn_eps = 1e-5f;
    c->model.dense_mode = g->dm;
    c->model.res_layers = g->res_layers;
    c->model.res_logit = g->res_logit;
    c->model.emb_init = 0.5f;
    /* model zoo sizes (small) */
    c->model.bottom = (rf_widths){2, {6, 5}};
    c->model.expert_hidden = (rf_widths){2, {5, 4}};
    c->model.experts = 3;
    c->model.shared_experts = 2;
    c->model.specific_experts = 2;
    c->model.aitm_alpha = 0.6f;
    c->model.cf_weight = 0.5f;
    c->model.global_weight = 0.5f;
    c->model.ips_clip = 15.0f;
    c->K = g->K;
    for (int k = 0; k < g->K; k++) {
        snprintf(c->tasks[k].name, RF_NAME_MAX, "t%d", k);
        snprintf(c->tasks[k].label, sizeof c->tasks[k].label, "y%d", k);
        if (g->parents[k]) snprintf(c->tasks[k].parent, RF_NAME_MAX, "%s", g->parents[k]);
        c->tasks[k].weight = 1.0f + 0.5f * k;
        c->tasks[k].pos_weight = k ? g->pos_w : 1.0f;
    }
    c->train.seed = 3;
}

static double loss_of(rf_model *m, rf_workspace *ws, const rf_batch *b, const float *ts)
{
    rf_error e;
    assert_int_equal(rf_model_forward(m, ws, b, 1, &e), RF_OK);
    return rf_model_loss(m, ws, b, ts, NULL);
}

/* Returns the number of mismatching gradient entries (prints them). */
static int check_model(const gc_case *g, const float *task_scale)
{
    rf_config cfg;
    make_cfg(&cfg, g);
    rf_dataset *ds = tiny_data(g->K, 11);
    rf_model *m = NULL;
    rf_error e;
    assert_int_equal(rf_model_create(&cfg, ds->F, ds->fields, ds->D, &m, &e), RF_OK);
    /* perturb every parameter so no unit sits on a kink and BN/PReLU params are generic */
    rf_rng r;
    rf_rng_seed(&r, 99);
    for (size_t i = 0; i < m->n_params; i++) m->params[i] += (float)(0.2 * (rf_rng_uniform(&r) - 0.5));
    rf_workspace *ws = rf_workspace_create(m, (int)ds->n);
    size_t rows[7];
    for (size_t i = 0; i < ds->n; i++) rows[i] = i;
    int lc[RF_MAX_TASKS];
    for (int k = 0; k < g->K; k++) lc[k] = k;
    rf_batch b = {ds, rows, (int)ds->n, lc};

    rf_model_zero_grad(m);
    loss_of(m, ws, &b, task_scale);
    rf_model_backward(m, ws, &b);
    float *an = malloc(m->n_params * sizeof(float));
    memcpy(an, m->grads, m->n_params * sizeof(float));
    size_t ne = m->emb_off[m->F] * m->E;
    float *ean = calloc(ne, sizeof(float));
    const uint32_t *er;
    float *eg;
    size_t nr = rf_ws_emb_grads(ws, &er, &eg);
    for (size_t i = 0; i < nr; i++) memcpy(ean + (size_t)er[i] * m->E, eg + i * m->E, m->E * sizeof(float));
    rf_ws_emb_grads_clear(ws);

    /* central differences at h and h/2: where they disagree the loss is not smooth there (a
     * ReLU/PReLU kink lies within h); such entries are skipped and counted, and the test
     * fails if more than 3% are skipped, so a wrong gradient cannot hide as a "kink". */
    const double h = 2e-3;
    int bad = 0, skipped = 0, checked = 0;
    for (int pass = 0; pass < 2; pass++) {
        float *P = pass ? m->emb : m->params;
        const float *A = pass ? ean : an;
        size_t n = pass ? ne : m->n_params;
        for (size_t i = 0; i < n; i++) {
            float save = P[i];
            double num[2], side[2][2];
            double l0 = loss_of(m, ws, &b, task_scale);
            for (int s = 0; s < 2; s++) {
                double hh = s ? h / 2 : h;
                P[i] = (float)(save + hh);
                double hp = (double)P[i] - save;
                double lp = loss_of(m, ws, &b, task_scale);
                P[i] = (float)(save - hh);
                double hm = save - (double)P[i];
                double lm = loss_of(m, ws, &b, task_scale);
                P[i] = save;
                num[s] = (lp - lm) / (hp + hm);
                side[s][0] = (lp - l0) / hp; /* one-sided slopes */
                side[s][1] = (l0 - lm) / hm;
            }
            checked++;
            /* smooth loss: the gap between the one-sided slopes is curvature, proportional to the
             * step (gap(h) = 2 gap(h/2) + O(h^2)); a kink within a step breaks that. Central
             * differences of the two steps must agree too. */
            double gap0 = side[0][0] - side[0][1], gap1 = side[1][0] - side[1][1];
            if (!(fabs(num[0] - num[1]) <= 1e-3 + 1e-2 * fabs(num[1])) ||
                !(fabs(gap0 - 2 * gap1) <= 1e-3 + 2e-2 * fabs(num[1]))) {
                skipped++;
                continue;
            }
            if (!(fabs(num[1] - A[i]) <= 1e-3 + 2e-2 * fabs(num[1]))) {
                if (bad < 8)
                    fprintf(stderr, "  %s[%zu]: analytic %.6g numeric %.6g\n", pass ? "emb" : "param", i,
                            A[i], num[1]);
                bad++;
            }
        }
    }
    if (getenv("RESFLOW_TEST_VERBOSE")) fprintf(stderr, "  checked %d, non-smooth %d\n", checked, skipped);
    if (skipped * 100 > checked * 3) {
        fprintf(stderr, "  too many non-smooth points: %d of %d\n", skipped, checked);
        bad += skipped;
    }
    free(an);
    free(ean);
    rf_workspace_free(ws);
    rf_model_free(m);
    rf_dataset_free(ds);
    return bad;
}

#define P2 {NULL, "t0", NULL, NULL}
#define CHAIN3 {NULL, "t0", "t1", NULL}
#define TREE4 {NULL, "t0", "t1", "t1"}

static const gc_case cases[] = {
    /* type, K, parents, L, hidden, act, bn, dense, res_layers, res_logit, pos_w */
    {RF_MODEL_RESFLOW, 2, P2, 2, {5, 4}, RF_ACT_PRELU, RF_BN_NONE, RF_DENSE_CONCAT, 3, 1, 5.0f},
    {RF_MODEL_RESFLOW, 2, P2, 2, {5, 4}, RF_ACT_RELU, RF_BN_BATCH, RF_DENSE_PROJECT, 3, 1, 3.0f},
    {RF_MODEL_RESFLOW, 3, CHAIN3, 3, {6, 5, 4}, RF_ACT_PRELU, RF_BN_BATCH, RF_DENSE_CONCAT, 5, 1, 2.0f},
    {RF_MODEL_RESFLOW, 4, TREE4, 2, {5, 3}, RF_ACT_PRELU, RF_BN_NONE, RF_DENSE_PROJECT, 1, 0, 4.0f},
    {RF_MODEL_RESFLOW, 2, P2, 2, {5, 4}, RF_ACT_PRELU, RF_BN_NONE, RF_DENSE_CONCAT, 0, 1, 1.0f},
    {RF_MODEL_NSE, 2, P2, 2, {5, 4}, RF_ACT_PRELU, RF_BN_BATCH, RF_DENSE_CONCAT, 0, 0, 2.0f},
    {RF_MODEL_ESMM, 2, P2, 2, {5, 4}, RF_ACT_PRELU, RF_BN_NONE, RF_DENSE_CONCAT, 0, 0, 3.0f},
    {RF_MODEL_ESMM, 3, CHAIN3, 1, {4}, RF_ACT_RELU, RF_BN_BATCH, RF_DENSE_PROJECT, 0, 0, 1.0f},
    /* single-layer cases isolate the kernels: linear+bias, PReLU, BN */
    {RF_MODEL_NSE, 1, {NULL}, 1, {4}, RF_ACT_RELU, RF_BN_NONE, RF_DENSE_CONCAT, 0, 0, 1.0f},
    {RF_MODEL_NSE, 1, {NULL}, 1, {4}, RF_ACT_PRELU, RF_BN_NONE, RF_DENSE_CONCAT, 0, 0, 1.0f},
    {RF_MODEL_NSE, 1, {NULL}, 1, {4}, RF_ACT_RELU, RF_BN_BATCH, RF_DENSE_PROJECT, 0, 0, 1.0f},
};

/* The model zoo (op-graph models): every op's backward through whole models. */
static const gc_case zoo_cases[] = {
    {RF_MODEL_SINGLE, 2, P2, 2, {5, 4}, RF_ACT_PRELU, RF_BN_NONE, RF_DENSE_CONCAT, 0, 0, 3.0f},
    {RF_MODEL_SINGLE, 3, CHAIN3, 1, {4}, RF_ACT_RELU, RF_BN_BATCH, RF_DENSE_PROJECT, 0, 0, 2.0f},
    {RF_MODEL_SHARED_BOTTOM, 2, P2, 1, {4}, RF_ACT_PRELU, RF_BN_BATCH, RF_DENSE_CONCAT, 0, 0, 2.0f},
    {RF_MODEL_MOE, 2, P2, 1, {4}, RF_ACT_PRELU, RF_BN_NONE, RF_DENSE_CONCAT, 0, 0, 2.0f},
    {RF_MODEL_MMOE, 3, CHAIN3, 2, {4, 3}, RF_ACT_PRELU, RF_BN_NONE, RF_DENSE_PROJECT, 0, 0, 2.0f},
    {RF_MODEL_MMOE, 2, P2, 1, {4}, RF_ACT_RELU, RF_BN_BATCH, RF_DENSE_CONCAT, 0, 0, 1.0f},
    {RF_MODEL_PLE, 2, P2, 1, {4}, RF_ACT_PRELU, RF_BN_NONE, RF_DENSE_CONCAT, 0, 0, 2.0f},
    {RF_MODEL_PLE, 3, CHAIN3, 1, {3}, RF_ACT_PRELU, RF_BN_BATCH, RF_DENSE_PROJECT, 0, 0, 1.0f},
};

static void test_zoo_models(void **state)
{
    (void)state;
    int total = 0;
    for (size_t c = 0; c < sizeof zoo_cases / sizeof zoo_cases[0]; c++) {
        int bad = check_model(&zoo_cases[c], NULL);
        if (bad) fprintf(stderr, "zoo case %zu (type %d): %d mismatches\n", c, zoo_cases[c].type, bad);
        total += bad;
    }
    assert_int_equal(total, 0);
}

static void test_models(void **state)
{
    (void)state;
    int total = 0;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        int bad = check_model(&cases[c], NULL);
        if (bad) fprintf(stderr, "case %zu: %d mismatches\n", c, bad);
        total += bad;
    }
    assert_int_equal(total, 0);
}

/* One-hot task scales give each task's gradient separately (what PUB needs); they also
 * pass the finite-difference check, and they sum to the full gradient. */
static void test_per_task_gradients(void **state)
{
    (void)state;
    const gc_case *g = &cases[2];
    for (int k = 0; k < g->K; k++) {
        float ts[3] = {0, 0, 0};
        ts[k] = 1;
        assert_int_equal(check_model(g, ts), 0);
    }
    rf_config cfg;
    make_cfg(&cfg, g);
    rf_dataset *ds = tiny_data(g->K, 11);
    rf_model *m = NULL;
    rf_error e;
    assert_int_equal(rf_model_create(&cfg, ds->F, ds->fields, ds->D, &m, &e), RF_OK);
    rf_workspace *ws = rf_workspace_create(m, 7);
    size_t rows[7] = {0, 1, 2, 3, 4, 5, 6};
    int lc[3] = {0, 1, 2};
    rf_batch b = {ds, rows, 7, lc};
    float *sum = calloc(m->n_params, sizeof(float));
    for (int k = 0; k < 3; k++) {
        float ts[3] = {0, 0, 0};
        ts[k] = 1;
        rf_model_zero_grad(m);
        loss_of(m, ws, &b, ts);
        rf_model_backward(m, ws, &b);
        rf_ws_emb_grads_clear(ws);
        for (size_t i = 0; i < m->n_params; i++) sum[i] += m->grads[i];
    }
    rf_model_zero_grad(m);
    loss_of(m, ws, &b, NULL);
    rf_model_backward(m, ws, &b);
    rf_ws_emb_grads_clear(ws);
    assert_true(close_enough(sum, m->grads, m->n_params, 1e-6, 1e-4, "sum of per-task grads"));
    free(sum);
    rf_workspace_free(ws);
    rf_model_free(m);
    rf_dataset_free(ds);
}

/* The residual links must change the function: ResFlow with links differs from NSE with the
 * same parameters, and with all links off it equals NSE exactly. */
static void test_links_matter(void **state)
{
    (void)state;
    gc_case g = cases[0];
    rf_dataset *ds = tiny_data(2, 5);
    size_t rows[7] = {0, 1, 2, 3, 4, 5, 6};
    int lc[2] = {0, 1};
    rf_batch b = {ds, rows, 7, lc};
    float out[3][14];
    for (int v = 0; v < 3; v++) {
        rf_config cfg;
        make_cfg(&cfg, &g);
        if (v == 1) cfg.model.type = RF_MODEL_NSE;
        if (v == 2) { cfg.model.res_layers = 0; cfg.model.res_logit = 0; }
        rf_model *m = NULL;
        rf_error e;
        assert_int_equal(rf_model_create(&cfg, ds->F, ds->fields, ds->D, &m, &e), RF_OK);
        rf_workspace *ws = rf_workspace_create(m, 7);
        assert_int_equal(rf_model_forward(m, ws, &b, 0, &e), RF_OK);
        memcpy(out[v], rf_ws_logits(ws), sizeof out[v]);
        rf_workspace_free(ws);
        rf_model_free(m);
    }
    assert_memory_equal(out[1], out[2], sizeof out[1]);
    /* task 0 (the root) is identical; task 1 differs */
    int differ = 0;
    for (int i = 0; i < 7; i++) {
        assert_float_equal(out[0][2 * i], out[1][2 * i], 0);
        differ += out[0][2 * i + 1] != out[1][2 * i + 1];
    }
    assert_true(differ > 0);
    rf_dataset_free(ds);
}

/* Out-of-range ids are a data error, not a crash. */
static void test_bad_id(void **state)
{
    (void)state;
    rf_config cfg;
    make_cfg(&cfg, &cases[0]);
    rf_dataset *ds = tiny_data(2, 5);
    rf_model *m = NULL;
    rf_error e;
    assert_int_equal(rf_model_create(&cfg, ds->F, ds->fields, ds->D, &m, &e), RF_OK);
    ds->cat[3 * ds->F + 1] = 99;
    rf_workspace *ws = rf_workspace_create(m, 7);
    size_t rows[7] = {0, 1, 2, 3, 4, 5, 6};
    int lc[2] = {0, 1};
    rf_batch b = {ds, rows, 7, lc};
    assert_int_equal(rf_model_forward(m, ws, &b, 1, &e), RF_EDATA);
    assert_non_null(strstr(e.msg, "outside its vocabulary"));
    rf_workspace_free(ws);
    rf_model_free(m);
    rf_dataset_free(ds);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_models),
        cmocka_unit_test(test_zoo_models),
        cmocka_unit_test(test_per_task_gradients),
        cmocka_unit_test(test_links_matter),
        cmocka_unit_test(test_bad_id),
    };
    return cmocka_run_group_tests_name("gradcheck", tests, NULL, NULL);
}
