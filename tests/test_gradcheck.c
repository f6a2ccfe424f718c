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

#include "nn/model_impl.h"

/* case tables below leave trailing fields out on purpose: they are zero (= off) */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

#include "resflow/config.h"
#include "resflow/model.h"
#include "core/rng.h"
#include "nn/zoo.h"

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
    float ips_clip; /* escm2/dcmt: 0 = 15 */
    rf_monotonic mono; /* ResFlow studies: M1-M4 */
    int esmm_links;    /* ESMM + FR [+ LR] */
    int mse0;          /* task 0: the squared-error regression head, labels in [1, 5] */
    int twin_link;     /* twin: rf_twin_link (item side: field f1 and dense d1) */
    int twin_dim;      /* twin: d */
    int no_dense;      /* the data without dense features (a zoo model's embedding chunks are then
                        * views of x, not column selections) */
} gc_case;

static rf_dataset *tiny_data(int K, uint64_t seed, int D)
{
    const int n = 7, F = 3;
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
    c->model.monotonic = g->mono;
    c->model.monotonic_weight = 0.7f;
    c->model.esmm_links = g->esmm_links;
    /* model zoo sizes (small) */
    c->model.bottom = (rf_widths){2, {6, 5}};
    c->model.expert_hidden = (rf_widths){2, {5, 4}};
    c->model.experts = 3;
    c->model.shared_experts = 2;
    c->model.specific_experts = 2;
    c->model.aitm_alpha = 0.6f;
    c->model.cf_weight = 0.5f;
    c->model.global_weight = 0.5f;
    c->model.ips_clip = g->ips_clip > 0 ? g->ips_clip : 15.0f;
    c->K = g->K;
    for (int k = 0; k < g->K; k++) {
        snprintf(c->tasks[k].name, RF_NAME_MAX, "t%d", k);
        snprintf(c->tasks[k].label, sizeof c->tasks[k].label, "y%d", k);
        if (g->parents[k]) snprintf(c->tasks[k].parent, RF_NAME_MAX, "%s", g->parents[k]);
        c->tasks[k].weight = 1.0f + 0.5f * k;
        c->tasks[k].pos_weight = k ? g->pos_w : 1.0f;
    }
    if (g->mse0) c->tasks[0].loss = RF_LOSS_MSE;
    if (g->type == RF_MODEL_TWIN) { /* item side: f1 and d1; user side: f0, f2 and d0 */
        c->model.twin_link = g->twin_link;
        c->model.twin_dim = g->twin_dim;
        c->model.n_item_fields = 1;
        snprintf(c->model.item_fields[0], RF_NAME_MAX, "f1");
        c->model.n_item_dense = 1;
        snprintf(c->model.item_dense[0], RF_NAME_MAX, "d1");
        c->data.schema.D = 2;
        for (int d = 0; d < 2; d++) snprintf(c->data.schema.dense[d], RF_NAME_MAX, "d%d", d);
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
    rf_dataset *ds = tiny_data(g->K, 11, g->no_dense ? 0 : 2);
    for (size_t i = 0; g->mse0 && i < ds->n; i++) ds->labels[i * g->K] = 1.0f + 0.6f * (float)i; /* a value */
    rf_model *m = NULL;
    rf_error e;
    assert_int_equal(rf_config_create_model(&cfg, ds->F, ds->fields, ds->D, &m, &e), RF_OK);
    /* perturb every parameter so no unit sits on a kink and BN/PReLU params are generic */
    rf_rng r;
    rf_rng_seed(&r, 99);
    for (size_t i = 0; i < m->n_params; i++) m->params[i] += (float)(0.2 * (rf_rng_uniform(&r) - 0.5));
    rf_workspace *ws = rf_workspace_create(m, (int)ds->n);
    rf_grads *G = rf_grads_create(m);
    size_t rows[7];
    for (size_t i = 0; i < ds->n; i++) rows[i] = i;
    int lc[RF_MAX_TASKS];
    for (int k = 0; k < g->K; k++) lc[k] = k;
    rf_batch b = {ds, rows, (int)ds->n, lc};

    /* stop-gradient values (STEM's other-task experts, propensity weights) are recorded at
     * this point and held fixed in the perturbed forwards below, so the finite differences
     * differentiate the function the backward pass differentiates */
    assert_int_equal(rf_ws_freeze(ws, m, RF_FREEZE_RECORD), 0);
    rf_grads_zero(G);
    loss_of(m, ws, &b, task_scale);
    assert_int_equal(rf_model_backward(m, ws, &b, G, NULL), RF_OK);
    assert_int_equal(rf_ws_freeze(ws, m, RF_FREEZE_USE), 0);
    float *an = malloc(m->n_params * sizeof(float));
    memcpy(an, rf_grads_dense(G, NULL), m->n_params * sizeof(float));
    size_t ne = m->emb_off[m->F] * m->E;
    float *ean = calloc(ne, sizeof(float));
    const uint32_t *er;
    float *eg;
    size_t nr = rf_grads_emb(G, &er, &eg);
    for (size_t i = 0; i < nr; i++) memcpy(ean + (size_t)er[i] * m->E, eg + i * m->E, m->E * sizeof(float));
    rf_grads_emb_clear(G);

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
    rf_grads_free(G);
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
    {RF_MODEL_RESFLOW, 2, P2, 2, {5, 4}, RF_ACT_PRELU, RF_BN_NONE, RF_DENSE_CONCAT, 3, 1, 5.0f, 0},
    {RF_MODEL_RESFLOW, 2, P2, 2, {5, 4}, RF_ACT_RELU, RF_BN_BATCH, RF_DENSE_PROJECT, 3, 1, 3.0f, 0},
    {RF_MODEL_RESFLOW, 3, CHAIN3, 3, {6, 5, 4}, RF_ACT_PRELU, RF_BN_BATCH, RF_DENSE_CONCAT, 5, 1, 2.0f, 0},
    {RF_MODEL_RESFLOW, 4, TREE4, 2, {5, 3}, RF_ACT_PRELU, RF_BN_NONE, RF_DENSE_PROJECT, 1, 0, 4.0f, 0},
    {RF_MODEL_RESFLOW, 2, P2, 2, {5, 4}, RF_ACT_PRELU, RF_BN_NONE, RF_DENSE_CONCAT, 0, 1, 1.0f, 0},
    {RF_MODEL_NSE, 2, P2, 2, {5, 4}, RF_ACT_PRELU, RF_BN_BATCH, RF_DENSE_CONCAT, 0, 0, 2.0f, 0},
    {RF_MODEL_ESMM, 2, P2, 2, {5, 4}, RF_ACT_PRELU, RF_BN_NONE, RF_DENSE_CONCAT, 0, 0, 3.0f, 0},
    {RF_MODEL_ESMM, 3, CHAIN3, 1, {4}, RF_ACT_RELU, RF_BN_BATCH, RF_DENSE_PROJECT, 0, 0, 1.0f, 0},
    /* ResFlow studies: monotonic options M1-M4 and ESMM + FR / ESMM + FR + LR */
    {RF_MODEL_RESFLOW, 2, P2, 2, {5, 4}, RF_ACT_PRELU, RF_BN_NONE, RF_DENSE_CONCAT, 3, 1, 2.0f, 0.0f, RF_MONO_M1, 0},
    {RF_MODEL_RESFLOW, 3, CHAIN3, 2, {5, 4}, RF_ACT_PRELU, RF_BN_NONE, RF_DENSE_CONCAT, 3, 1, 2.0f, 0.0f, RF_MONO_M2, 0},
    {RF_MODEL_RESFLOW, 3, CHAIN3, 2, {5, 4}, RF_ACT_PRELU, RF_BN_BATCH, RF_DENSE_CONCAT, 3, 1, 2.0f, 0.0f, RF_MONO_M3, 0},
    {RF_MODEL_RESFLOW, 3, CHAIN3, 2, {5, 4}, RF_ACT_PRELU, RF_BN_NONE, RF_DENSE_CONCAT, 3, 1, 2.0f, 0.0f, RF_MONO_M4, 0},
    {RF_MODEL_ESMM, 2, P2, 2, {5, 4}, RF_ACT_PRELU, RF_BN_NONE, RF_DENSE_CONCAT, 3, 0, 2.0f, 0.0f, RF_MONO_NONE, 1},
    {RF_MODEL_ESMM, 3, CHAIN3, 2, {5, 4}, RF_ACT_RELU, RF_BN_NONE, RF_DENSE_CONCAT, 1, 1, 2.0f, 0.0f, RF_MONO_NONE, 1},
    /* the traditional regression head (tasks.N.loss mse), alone and next to a linked chain */
    {RF_MODEL_NSE, 1, {NULL}, 2, {5, 4}, RF_ACT_PRELU, RF_BN_NONE, RF_DENSE_CONCAT, 0, 0, 1.0f, 0.0f, RF_MONO_NONE, 0, 1},
    {RF_MODEL_RESFLOW, 3, {NULL, NULL, "t1"}, 2, {5, 4}, RF_ACT_PRELU, RF_BN_BATCH, RF_DENSE_PROJECT, 3, 1, 2.0f, 0.0f,
     RF_MONO_NONE, 0, 1},
    /* single-layer cases isolate the kernels: linear+bias, PReLU, BN */
    {RF_MODEL_NSE, 1, {NULL}, 1, {4}, RF_ACT_RELU, RF_BN_NONE, RF_DENSE_CONCAT, 0, 0, 1.0f, 0},
    {RF_MODEL_NSE, 1, {NULL}, 1, {4}, RF_ACT_PRELU, RF_BN_NONE, RF_DENSE_CONCAT, 0, 0, 1.0f, 0},
    {RF_MODEL_NSE, 1, {NULL}, 1, {4}, RF_ACT_RELU, RF_BN_BATCH, RF_DENSE_PROJECT, 0, 0, 1.0f, 0},
};

/* The model zoo (op-graph models): every op's backward through whole models. */
static const gc_case zoo_cases[] = {
    {RF_MODEL_SINGLE, 2, P2, 2, {5, 4}, RF_ACT_PRELU, RF_BN_NONE, RF_DENSE_CONCAT, 0, 0, 3.0f, 0},
    {RF_MODEL_SINGLE, 3, CHAIN3, 1, {4}, RF_ACT_RELU, RF_BN_BATCH, RF_DENSE_PROJECT, 0, 0, 2.0f, 0},
    {RF_MODEL_SHARED_BOTTOM, 2, P2, 1, {4}, RF_ACT_PRELU, RF_BN_BATCH, RF_DENSE_CONCAT, 0, 0, 2.0f, 0},
    {RF_MODEL_MOE, 2, P2, 1, {4}, RF_ACT_PRELU, RF_BN_NONE, RF_DENSE_CONCAT, 0, 0, 2.0f, 0},
    {RF_MODEL_MMOE, 3, CHAIN3, 2, {4, 3}, RF_ACT_PRELU, RF_BN_NONE, RF_DENSE_PROJECT, 0, 0, 2.0f, 0},
    {RF_MODEL_MMOE, 2, P2, 1, {4}, RF_ACT_RELU, RF_BN_BATCH, RF_DENSE_CONCAT, 0, 0, 1.0f, 0},
    {RF_MODEL_PLE, 2, P2, 1, {4}, RF_ACT_PRELU, RF_BN_NONE, RF_DENSE_CONCAT, 0, 0, 2.0f, 0},
    {RF_MODEL_PLE, 3, CHAIN3, 1, {3}, RF_ACT_PRELU, RF_BN_BATCH, RF_DENSE_PROJECT, 0, 0, 1.0f, 0},
    /* AITM: info layer + 2-item attention + calibrator, chains and a tree */
    {RF_MODEL_AITM, 2, P2, 2, {5, 4}, RF_ACT_PRELU, RF_BN_NONE, RF_DENSE_CONCAT, 0, 0, 3.0f, 0},
    {RF_MODEL_AITM, 3, CHAIN3, 1, {4}, RF_ACT_RELU, RF_BN_BATCH, RF_DENSE_PROJECT, 0, 0, 1.0f, 0},
    {RF_MODEL_AITM, 4, TREE4, 1, {3}, RF_ACT_PRELU, RF_BN_NONE, RF_DENSE_CONCAT, 0, 0, 2.0f, 0},
    /* ESCM2: ESMM product + IPW / DR counterfactual risk (DR: imputation towers in the extras) */
    {RF_MODEL_ESCM2_IPW, 2, P2, 2, {5, 4}, RF_ACT_PRELU, RF_BN_NONE, RF_DENSE_CONCAT, 0, 0, 2.0f, 0},
    {RF_MODEL_ESCM2_IPW, 3, CHAIN3, 1, {4}, RF_ACT_RELU, RF_BN_BATCH, RF_DENSE_PROJECT, 0, 0, 1.0f, 2.5f},
    {RF_MODEL_ESCM2_DR, 2, P2, 1, {4}, RF_ACT_PRELU, RF_BN_NONE, RF_DENSE_CONCAT, 0, 0, 3.0f, 0},
    {RF_MODEL_ESCM2_DR, 3, CHAIN3, 2, {4, 3}, RF_ACT_PRELU, RF_BN_BATCH, RF_DENSE_PROJECT, 0, 0, 1.0f, 2.5f},
    {RF_MODEL_ESCM2_DR, 4, TREE4, 1, {3}, RF_ACT_PRELU, RF_BN_NONE, RF_DENSE_CONCAT, 0, 0, 1.0f, 0},
    /* DCMT: factual + counterfactual CVR towers */
    {RF_MODEL_DCMT, 2, P2, 2, {5, 4}, RF_ACT_PRELU, RF_BN_NONE, RF_DENSE_CONCAT, 0, 0, 2.0f, 0},
    {RF_MODEL_DCMT, 3, CHAIN3, 1, {4}, RF_ACT_RELU, RF_BN_BATCH, RF_DENSE_PROJECT, 0, 0, 1.0f, 1.8f},
    /* STEM: (K+1) embedding chunks, specific + shared experts, AFTB gates */
    {RF_MODEL_STEM, 2, P2, 1, {4}, RF_ACT_PRELU, RF_BN_NONE, RF_DENSE_CONCAT, 0, 0, 2.0f, 0},
    {RF_MODEL_STEM, 3, CHAIN3, 1, {3}, RF_ACT_PRELU, RF_BN_BATCH, RF_DENSE_PROJECT, 0, 0, 1.0f, 0},
    {RF_MODEL_STEM, 4, TREE4, 1, {3}, RF_ACT_RELU, RF_BN_NONE, RF_DENSE_PROJECT, 0, 0, 1.0f, 0},
    /* without dense features: the embedding chunks as views of x */
    {.type = RF_MODEL_STEM, .K = 2, .parents = P2, .L = 1, .hidden = {4}, .act = RF_ACT_PRELU, .pos_w = 2.0f,
     .no_dense = 1},
    {.type = RF_MODEL_STEM, .K = 3, .parents = CHAIN3, .L = 1, .hidden = {3}, .act = RF_ACT_RELU, .bn = RF_BN_BATCH,
     .pos_w = 1.0f, .no_dense = 1},
    {.type = RF_MODEL_SINGLE, .K = 3, .parents = CHAIN3, .L = 2, .hidden = {5, 4}, .act = RF_ACT_PRELU, .pos_w = 2.0f,
     .no_dense = 1},
    /* twin towers (src/nn/twin.c): NSE twin, then the top link before / after / both the dot
     * product, with and without the hidden-layer links; more in tests/test_twin.c */
    {RF_MODEL_TWIN, 2, P2, 2, {5, 4}, RF_ACT_PRELU, RF_BN_NONE, RF_DENSE_CONCAT, 0, 0, 3.0f, 0, RF_MONO_NONE, 0, 0,
     RF_TWIN_NONE, 3},
    {RF_MODEL_TWIN, 2, P2, 2, {5, 4}, RF_ACT_PRELU, RF_BN_NONE, RF_DENSE_CONCAT, 0, 0, 1.0f, 0, RF_MONO_NONE, 0, 0,
     RF_TWIN_BEFORE, 3},
    {RF_MODEL_TWIN, 3, CHAIN3, 1, {4}, RF_ACT_PRELU, RF_BN_BATCH, RF_DENSE_CONCAT, 1, 0, 2.0f, 0, RF_MONO_NONE, 0, 0,
     RF_TWIN_AFTER, 2},
    {RF_MODEL_TWIN, 4, TREE4, 1, {4}, RF_ACT_RELU, RF_BN_NONE, RF_DENSE_CONCAT, 0, 0, 2.0f, 0, RF_MONO_NONE, 0, 0,
     RF_TWIN_BOTH, 3},
    {RF_MODEL_TWIN, 3, CHAIN3, 2, {4, 3}, RF_ACT_PRELU, RF_BN_NONE, RF_DENSE_CONCAT, 3, 0, 2.0f, 0, RF_MONO_M3, 0, 0,
     RF_TWIN_BOTH, 2},
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
    rf_dataset *ds = tiny_data(g->K, 11, 2);
    rf_model *m = NULL;
    rf_error e;
    assert_int_equal(rf_config_create_model(&cfg, ds->F, ds->fields, ds->D, &m, &e), RF_OK);
    rf_workspace *ws = rf_workspace_create(m, 7);
    rf_grads *G = rf_grads_create(m);
    size_t rows[7] = {0, 1, 2, 3, 4, 5, 6};
    int lc[3] = {0, 1, 2};
    rf_batch b = {ds, rows, 7, lc};
    float *sum = calloc(m->n_params, sizeof(float));
    for (int k = 0; k < 3; k++) {
        float ts[3] = {0, 0, 0};
        ts[k] = 1;
        rf_grads_zero(G);
        loss_of(m, ws, &b, ts);
        assert_int_equal(rf_model_backward(m, ws, &b, G, NULL), RF_OK);
        rf_grads_emb_clear(G);
        for (size_t i = 0; i < m->n_params; i++) sum[i] += rf_grads_dense(G, NULL)[i];
    }
    rf_grads_zero(G);
    loss_of(m, ws, &b, NULL);
    assert_int_equal(rf_model_backward(m, ws, &b, G, NULL), RF_OK);
    rf_grads_emb_clear(G);
    assert_true(close_enough(sum, rf_grads_dense(G, NULL), m->n_params, 1e-6, 1e-4, "sum of per-task grads"));
    free(sum);
    rf_grads_free(G);
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
    rf_dataset *ds = tiny_data(2, 5, 2);
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
        assert_int_equal(rf_config_create_model(&cfg, ds->F, ds->fields, ds->D, &m, &e), RF_OK);
        rf_workspace *ws = rf_workspace_create(m, 7);
        rf_grads *G = rf_grads_create(m);
        assert_int_equal(rf_model_forward(m, ws, &b, 0, &e), RF_OK);
        memcpy(out[v], rf_ws_logits(ws), sizeof out[v]);
        rf_grads_free(G);
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

/* ---- stop-gradients really stop ------------------------------------------------------------
 * The finite-difference checks above hold stop-gradient values fixed (rf_ws_freeze), so they
 * would pass if a stop-gradient were missing. Here, without freezing: the analytic gradient
 * through a stop-gradient path is exactly zero while the forward function does depend on that
 * path (its numeric derivative is not zero), so each check fails if the stop-gradient leaks and
 * also if the path was not there in the first place. */
typedef struct {
    rf_dataset *ds;
    rf_model *m;
    rf_workspace *ws;
    rf_grads *G;
    size_t rows[7];
    int lc[RF_MAX_TASKS];
    rf_batch b;
} fixture;

static void fx_open(fixture *f, const rf_config *cfg, int D)
{
    rf_error e;
    f->ds = tiny_data(cfg->K, 11, D);
    assert_int_equal(rf_config_create_model(cfg, f->ds->F, f->ds->fields, f->ds->D, &f->m, &e), RF_OK);
    rf_rng r;
    rf_rng_seed(&r, 99);
    for (size_t i = 0; i < f->m->n_params; i++) f->m->params[i] += (float)(0.2 * (rf_rng_uniform(&r) - 0.5));
    f->ws = rf_workspace_create(f->m, 7);
    f->G = rf_grads_create(f->m);
    assert_non_null(f->ws);
    for (int i = 0; i < 7; i++) f->rows[i] = (size_t)i;
    for (int k = 0; k < cfg->K; k++) f->lc[k] = k;
    f->b = (rf_batch){f->ds, f->rows, 7, f->lc};
}

static void fx_close(fixture *f)
{
    rf_grads_free(f->G);
    rf_workspace_free(f->ws);
    rf_model_free(f->m);
    rf_dataset_free(f->ds);
}

/* Analytic gradients of the (task-scaled) loss: dense into dp (n_params), embeddings into de
 * (all rows x E, untouched rows 0). */
static void fx_grads(fixture *f, const float *ts, float *dp, float *de)
{
    rf_model *m = f->m;
    rf_grads *G = f->G;
    rf_grads_zero(G);
    loss_of(m, f->ws, &f->b, ts);
    assert_int_equal(rf_model_backward(m, f->ws, &f->b, G, NULL), RF_OK);
    memcpy(dp, rf_grads_dense(G, NULL), m->n_params * sizeof(float));
    memset(de, 0, m->emb_off[m->F] * m->E * sizeof(float));
    const uint32_t *er;
    float *eg;
    size_t nr = rf_grads_emb(f->G, &er, &eg);
    for (size_t i = 0; i < nr; i++) memcpy(de + (size_t)er[i] * m->E, eg + i * m->E, m->E * sizeof(float));
    rf_grads_emb_clear(f->G);
}

/* Central difference of the loss in P[i] (live forward, nothing frozen). */
static double fx_numeric(fixture *f, const float *ts, float *P, size_t i)
{
    const double h = 1e-3;
    float save = P[i];
    P[i] = (float)(save + h);
    double hp = (double)P[i] - save, lp = loss_of(f->m, f->ws, &f->b, ts);
    P[i] = (float)(save - h);
    double hm = save - (double)P[i], lm = loss_of(f->m, f->ws, &f->b, ts);
    P[i] = save;
    return (lp - lm) / (hp + hm);
}

/* STEM (AFTB): task k's loss reaches its own embedding chunk and the shared chunk, never another
 * task's chunk, although the forward pass mixes the other tasks' experts into task k's gate. */
static void test_stem_stopgrad(void **state)
{
    (void)state;
    for (int v = 0; v < 4; v++) { /* BatchNorm off / on, dense features (chunks selected) / none (views) */
        int bn = v & 1, D = v & 2 ? 0 : 2;
        gc_case g = {RF_MODEL_STEM, 3, CHAIN3, 1, {4}, RF_ACT_PRELU, bn ? RF_BN_BATCH : RF_BN_NONE,
                     RF_DENSE_PROJECT, 0, 0, 1.0f, 0};
        rf_config cfg;
        make_cfg(&cfg, &g);
        fixture f;
        fx_open(&f, &cfg, D);
        rf_model *m = f.m;
        int K = g.K, E = cfg.model.emb_dim;
        assert_int_equal(m->E, (K + 1) * E);
        size_t nrow = m->emb_off[m->F];
        float *dp = malloc(m->n_params * sizeof(float)), *de = malloc(nrow * m->E * sizeof(float));
        for (int k = 0; k < K; k++) {
            float ts[3] = {0, 0, 0};
            ts[k] = 1;
            fx_grads(&f, ts, dp, de);
            double own = 0, shared = 0, other = 0, num_other = 0;
            for (size_t r = 0; r < nrow; r++)
                for (int c = 0; c < (K + 1) * E; c++) {
                    int chunk = c / E;
                    double a = fabs(de[r * m->E + c]);
                    if (chunk == k) own += a;
                    else if (chunk == K) shared += a;
                    else other += a;
                }
            /* the forward path exists: perturbing another task's chunk moves task k's loss */
            for (size_t r = 0; r < nrow; r++)
                for (int c = 0; c < (K + 1) * E; c++) {
                    int chunk = c / E;
                    if (chunk == k || chunk == K) continue;
                    double nd = fabs(fx_numeric(&f, ts, m->emb, r * m->E + c));
                    if (nd > num_other) num_other = nd;
                }
            if (getenv("RESFLOW_TEST_VERBOSE"))
                fprintf(stderr, "  stem bn=%d D=%d task %d: |own| %.3g |shared| %.3g |other| %.3g, max numeric other %.3g\n",
                        bn, D, k, own, shared, other, num_other);
            assert_true(own > 0);
            assert_true(shared > 0);
            assert_true(other == 0.0);
            assert_true(num_other > 1e-5);
        }
        free(dp);
        free(de);
        fx_close(&f);
    }
}

/* ESCM2 and DCMT: the counterfactual / causal CVR terms of task k weight rows by the inverse of
 * the parent's probability (the propensity), with a stop-gradient: with the global CTCVR loss off
 * (global_weight 0), task k's loss gives no gradient to the towers that produce the propensity
 * (the parameters that the parent's own entire-space loss trains), though it depends on them. */
static void test_propensity_stopgrad(void **state)
{
    (void)state;
    const rf_model_type types[3] = {RF_MODEL_ESCM2_IPW, RF_MODEL_ESCM2_DR, RF_MODEL_DCMT};
    for (int ti = 0; ti < 3; ti++)
        for (int K = 2; K <= 3; K++) {
            gc_case g = {types[ti], K, CHAIN3, 1, {4}, RF_ACT_PRELU, K == 3 ? RF_BN_BATCH : RF_BN_NONE,
                         RF_DENSE_CONCAT, 0, 0, 1.0f, 0};
            rf_config cfg;
            make_cfg(&cfg, &g);
            int child = K - 1, par = K - 2;
            /* the parameters behind the propensity p_par: what par's entire-space BCE trains */
            cfg.model.global_weight = 1.0f;
            cfg.model.cf_weight = 0.0f;
            fixture f;
            fx_open(&f, &cfg, 2);
            rf_model *m = f.m;
            size_t np = m->n_params, ne = m->emb_off[m->F] * m->E;
            float *dpar = malloc(np * sizeof(float)), *dch = malloc(np * sizeof(float)),
                  *de = malloc(ne * sizeof(float));
            float ts[3] = {0, 0, 0};
            ts[par] = 1;
            fx_grads(&f, ts, dpar, de);
            /* task child's loss with only its counterfactual terms */
            f.m->spec.model.global_weight = 0.0f;
            f.m->spec.model.cf_weight = 1.0f;
            ts[par] = 0;
            ts[child] = 1;
            fx_grads(&f, ts, dch, de);
            size_t nprop = 0, leak = 0;
            double own = 0, num = 0;
            for (size_t i = 0; i < np; i++) {
                if (dpar[i] == 0.0f) {
                    own += fabs(dch[i]);
                    continue;
                }
                nprop++;
                if (dch[i] != 0.0f) leak++;
                double nd = fabs(fx_numeric(&f, ts, m->params, i));
                if (nd > num) num = nd;
            }
            if (getenv("RESFLOW_TEST_VERBOSE"))
                fprintf(stderr, "  %s K=%d: %zu propensity params, %zu leaking, max numeric %.3g, |own| %.3g\n",
                        rf_model_type_name(types[ti]), K, nprop, leak, num, own);
            assert_true(nprop > 0);
            assert_int_equal(leak, 0);
            assert_true(num > 1e-5); /* the loss does depend on the propensity */
            assert_true(own > 0);    /* and it trains the child's own towers */
            free(dpar);
            free(dch);
            free(de);
            fx_close(&f);
        }
}

/* Out-of-range ids are a data error, not a crash. */
static void test_bad_id(void **state)
{
    (void)state;
    rf_config cfg;
    make_cfg(&cfg, &cases[0]);
    rf_dataset *ds = tiny_data(2, 5, 2);
    rf_model *m = NULL;
    rf_error e;
    assert_int_equal(rf_config_create_model(&cfg, ds->F, ds->fields, ds->D, &m, &e), RF_OK);
    ds->cat[3 * ds->F + 1] = 99;
    rf_workspace *ws = rf_workspace_create(m, 7);
    rf_grads *G = rf_grads_create(m);
    size_t rows[7] = {0, 1, 2, 3, 4, 5, 6};
    int lc[2] = {0, 1};
    rf_batch b = {ds, rows, 7, lc};
    assert_int_equal(rf_model_forward(m, ws, &b, 1, &e), RF_EDATA);
    assert_non_null(strstr(e.msg, "outside its vocabulary"));
    rf_grads_free(G);
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
        cmocka_unit_test(test_stem_stopgrad),
        cmocka_unit_test(test_propensity_stopgrad),
    };
    return cmocka_run_group_tests_name("gradcheck", tests, NULL, NULL);
}
