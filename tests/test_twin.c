/* test_twin.c - the twin-tower model (include/resflow/twin.h, src/nn/twin.c): the serving
 * contract for every link mode (eval logits = rf_twin_logits of the user and item vectors of the
 * same row; each side reads only its own inputs), what the before link does to the vectors, the
 * side split and its errors, and the model file round trip. The finite-difference gradient
 * checks of every link mode are test_gradcheck.c's twin cases (one checker for every model); the
 * PyTorch fixtures (tests/ref/twin_ref.py) are replayed by test_reference.c.
 */
#include "test_util.h"

#include "core/rng.h"
#include "nn/model_impl.h"
#include "resflow/config.h"
#include "resflow/model.h"
#include "resflow/modelfile.h"
#include "resflow/twin.h"

TEST_TMPDIR("twin")

enum { N = 9, F = 4, D = 2 };
static const char *const FIELD[F] = {"user", "item", "tags", "shop"}; /* item side: item, shop */
static const char *const DENSE[D] = {"age", "price"};                  /* item side: price */

/* A tiny dataset: f0 user (single), f1 item (single), f2 user tags (mean-pooled, 0..3 ids),
 * f3 item shop (sum-pooled, 1..2 ids), dense age (user) and price (item), row weights. */
static rf_dataset *tiny(int K, uint64_t seed)
{
    rf_dataset *ds = rf_dataset_alloc(N, F, D, K);
    rf_rng r;
    rf_rng_seed(&r, seed);
    uint32_t vocab[F] = {5, 6, 4, 3};
    for (int f = 0; f < F; f++) {
        snprintf(ds->fields[f].name, RF_NAME_MAX, "%s", FIELD[f]);
        ds->fields[f].vocab = vocab[f];
    }
    for (int f = 2; f < 4; f++) {
        ds->fields[f].multi = 1;
        ds->fields[f].pooling = f == 2 ? RF_POOL_MEAN : RF_POOL_SUM;
        ds->mv_off[f] = malloc((N + 1) * sizeof(uint64_t));
        ds->mv_ids[f] = malloc(3 * N * sizeof(uint32_t));
        ds->mv_off[f][0] = 0;
    }
    for (int i = 0; i < N; i++) {
        ds->cat[i * F + 0] = (uint32_t)rf_rng_below(&r, 5);
        ds->cat[i * F + 1] = (uint32_t)rf_rng_below(&r, 6);
        for (int f = 2; f < 4; f++) {
            int c = f == 2 ? (int)rf_rng_below(&r, 4) : 1 + (int)rf_rng_below(&r, 2);
            for (int j = 0; j < c; j++) ds->mv_ids[f][ds->mv_off[f][i] + j] = (uint32_t)rf_rng_below(&r, vocab[f]);
            ds->mv_off[f][i + 1] = ds->mv_off[f][i] + c;
        }
        for (int d = 0; d < D; d++) ds->dense[i * D + d] = (float)(2 * rf_rng_uniform(&r) - 1);
        for (int k = 0; k < K; k++) ds->labels[i * K + k] = (float)(rf_rng_uniform(&r) < 0.5);
    }
    ds->weight = malloc(N * sizeof(float));
    for (int i = 0; i < N; i++) ds->weight[i] = (float)(0.5 + rf_rng_uniform(&r));
    for (int k = 0; k < K; k++) snprintf(ds->label_names[k], RF_NAME_MAX, "y%d", k);
    for (int d = 0; d < D; d++) snprintf(ds->dense_names[d], RF_NAME_MAX, "%s", DENSE[d]);
    return ds;
}

typedef struct {
    int K;
    const char *parents[4];
    int L, hidden[3];
    rf_act act;
    rf_bn bn;
    uint32_t res_layers;
    int link; /* rf_twin_link */
    int d;
    rf_monotonic mono;
} tw_case;

static void make_cfg(rf_config *c, const tw_case *t)
{
    rf_config_default(c);
    c->model.type = RF_MODEL_TWIN;
    c->model.emb_dim = 3;
    c->model.n_hidden = t->L;
    for (int l = 0; l < t->L; l++) c->model.hidden[l] = t->hidden[l];
    c->model.act = t->act;
    c->model.bn = t->bn;
    c->model.res_layers = t->res_layers;
    c->model.twin_link = t->link;
    c->model.twin_dim = t->d;
    c->model.emb_init = 0.5f;
    c->model.monotonic = t->mono;
    c->model.n_item_fields = 2;
    snprintf(c->model.item_fields[0], RF_NAME_MAX, "item");
    snprintf(c->model.item_fields[1], RF_NAME_MAX, "shop");
    c->model.n_item_dense = 1;
    snprintf(c->model.item_dense[0], RF_NAME_MAX, "price");
    c->data.schema.D = D; /* the dense names item_dense is resolved against */
    for (int d = 0; d < D; d++) snprintf(c->data.schema.dense[d], RF_NAME_MAX, "%s", DENSE[d]);
    c->K = t->K;
    for (int k = 0; k < t->K; k++) {
        memset(&c->tasks[k], 0, sizeof c->tasks[k]);
        snprintf(c->tasks[k].name, RF_NAME_MAX, "t%d", k);
        snprintf(c->tasks[k].label, sizeof c->tasks[k].label, "y%d", k);
        if (t->parents[k]) snprintf(c->tasks[k].parent, RF_NAME_MAX, "%s", t->parents[k]);
        c->tasks[k].weight = 1.0f + 0.5f * k;
        c->tasks[k].pos_weight = k ? 3.0f : 1.0f;
    }
    c->train.seed = 5;
}

static rf_model *make_model(const tw_case *t, const rf_dataset *ds, rf_config *cfg)
{
    make_cfg(cfg, t);
    rf_model *m = NULL;
    rf_error e;
    rf_status st = rf_config_create_model(cfg, ds->F, ds->fields, ds->D, &m, &e);
    if (st) fprintf(stderr, "  %s\n", e.msg);
    assert_int_equal(st, RF_OK);
    /* generic parameters: no unit on a kink, BN/PReLU parameters away from their init */
    rf_rng r;
    rf_rng_seed(&r, 78);
    for (size_t i = 0; i < m->n_params; i++) m->params[i] += (float)(0.3 * (rf_rng_uniform(&r) - 0.5));
    return m;
}

#define CHAIN3 {NULL, "t0", "t1"}

/* Eval-mode logits = rf_twin_logits of the vectors of the same row; user vectors read only the
 * user side, item vectors only the item side; the links change the logits as documented. */
static void test_serving_contract(void **state)
{
    (void)state;
    for (int link = 0; link < 4; link++) {
        tw_case t = {3, CHAIN3, 2, {5, 4}, RF_ACT_PRELU, RF_BN_BATCH, 3, link, 4, RF_MONO_NONE};
        rf_dataset *ds = tiny(3, 33);
        rf_config cfg;
        rf_model *m = make_model(&t, ds, &cfg);
        for (size_t i = 0; i < m->n_buffers; i++) m->buffers[i] = i % 2 ? 0.7f : 0.1f; /* running var, mean */
        assert_int_equal(rf_model_is_twin(m), 1);
        assert_int_equal(rf_twin_dim(m), 4);
        int sides[F] = {0, 1, 0, 1};
        for (int f = 0; f < F; f++) assert_int_equal(rf_twin_field_side(m, f), sides[f]);
        assert_int_equal(rf_twin_dense_side(m, 0), 0);
        assert_int_equal(rf_twin_dense_side(m, 1), 1);
        assert_int_equal(rf_twin_field_side(m, F), -1);
        rf_workspace *ws = rf_workspace_create(m, N);
        size_t rows[N];
        for (int i = 0; i < N; i++) rows[i] = (size_t)i;
        int lc[3] = {0, 1, 2};
        rf_batch b = {ds, rows, N, lc};
        rf_error e;
        int K = 3, d = 4;
        float u[N * 3 * 4], v[N * 3 * 4], ub[N * 3], vb[N * 3], S[N * 3];
        assert_int_equal(rf_model_forward(m, ws, &b, 0, &e), RF_OK);
        memcpy(S, rf_ws_logits(ws), sizeof S);
        assert_int_equal(rf_twin_user_vectors(m, ws, &b, u, ub, &e), RF_OK);
        assert_int_equal(rf_twin_item_vectors(m, ws, &b, v, vb, &e), RF_OK);
        for (int i = 0; i < N; i++) {
            float dot[3], z[3];
            for (int k = 0; k < K; k++) {
                dot[k] = 0;
                for (int j = 0; j < d; j++) dot[k] += u[(i * K + k) * d + j] * v[(i * K + k) * d + j];
            }
            rf_twin_logits(m, dot, ub + i * K, vb + i * K, z);
            for (int k = 0; k < K; k++) assert_true(fabsf(z[k] - S[i * K + k]) <= 1e-5f * (1 + fabsf(S[i * K + k])));
            /* the after link: z_k - z_parent is the pair's own score */
            if (link & RF_TWIN_AFTER)
                assert_true(fabsf(z[1] - z[0] - (dot[1] + ub[i * K + 1] + vb[i * K + 1])) < 1e-4f);
            else
                assert_true(fabsf(z[1] - (dot[1] + ub[i * K + 1] + vb[i * K + 1])) < 1e-5f);
        }
        /* each side reads only its own inputs: change the other side's, the vectors stay */
        rf_dataset *d2 = tiny(3, 33);
        for (int i = 0; i < N; i++) {
            d2->cat[i * F + 1] = (d2->cat[i * F + 1] + 1) % 6; /* item id */
            d2->dense[i * D + 1] += 0.5f;                     /* price */
        }
        rf_batch b2 = {d2, rows, N, lc};
        float u2[N * 3 * 4], v2[N * 3 * 4];
        assert_int_equal(rf_twin_user_vectors(m, ws, &b2, u2, NULL, &e), RF_OK);
        assert_int_equal(rf_twin_item_vectors(m, ws, &b2, v2, NULL, &e), RF_OK);
        assert_memory_equal(u, u2, sizeof u);
        assert_true(memcmp(v, v2, sizeof v) != 0);
        for (int i = 0; i < N; i++) {
            d2->cat[i * F + 0] = (d2->cat[i * F + 0] + 2) % 5; /* user id */
            d2->dense[i * D + 0] -= 0.25f;                    /* age */
        }
        float u3[N * 3 * 4], v3[N * 3 * 4];
        assert_int_equal(rf_twin_user_vectors(m, ws, &b2, u3, NULL, &e), RF_OK);
        assert_int_equal(rf_twin_item_vectors(m, ws, &b2, v3, NULL, &e), RF_OK);
        assert_memory_equal(v2, v3, sizeof v2);
        assert_true(memcmp(u2, u3, sizeof u2) != 0);
        rf_dataset_free(d2);
        rf_workspace_free(ws);
        rf_model_free(m);
        rf_dataset_free(ds);
    }
}

/* With the same parameters, the before link makes v_1 = own_1 + v_0: switching it off in a copy
 * of the spec (same slab layout) gives back the own vector. */
static void test_before_link_adds_parent(void **state)
{
    (void)state;
    tw_case t = {2, {NULL, "t0"}, 1, {5}, RF_ACT_RELU, RF_BN_NONE, 0, RF_TWIN_BEFORE, 3, RF_MONO_NONE};
    rf_dataset *ds = tiny(2, 44);
    rf_config cfg;
    rf_model *a = make_model(&t, ds, &cfg);
    t.link = RF_TWIN_NONE;
    rf_model *n = make_model(&t, ds, &cfg);
    assert_int_equal(a->n_params, n->n_params);
    memcpy(n->params, a->params, a->n_params * sizeof(float));
    memcpy(n->emb, a->emb, a->emb_off[a->F] * (size_t)a->E * sizeof(float));
    rf_workspace *wa = rf_workspace_create(a, N), *wn = rf_workspace_create(n, N);
    size_t rows[N];
    for (int i = 0; i < N; i++) rows[i] = (size_t)i;
    int lc[2] = {0, 1};
    rf_batch b = {ds, rows, N, lc};
    rf_error e;
    float va[N * 2 * 3], vn[N * 2 * 3], ua[N * 2 * 3], un[N * 2 * 3];
    assert_int_equal(rf_twin_item_vectors(a, wa, &b, va, NULL, &e), RF_OK);
    assert_int_equal(rf_twin_item_vectors(n, wn, &b, vn, NULL, &e), RF_OK);
    assert_int_equal(rf_twin_user_vectors(a, wa, &b, ua, NULL, &e), RF_OK);
    assert_int_equal(rf_twin_user_vectors(n, wn, &b, un, NULL, &e), RF_OK);
    for (int i = 0; i < N; i++)
        for (int j = 0; j < 3; j++) {
            assert_true(fabsf(va[i * 6 + j] - vn[i * 6 + j]) < 1e-6f);                        /* root */
            assert_true(fabsf(va[i * 6 + 3 + j] - (vn[i * 6 + 3 + j] + vn[i * 6 + j])) < 1e-5f); /* child */
            assert_true(fabsf(ua[i * 6 + 3 + j] - (un[i * 6 + 3 + j] + un[i * 6 + j])) < 1e-5f);
        }
    rf_workspace_free(wa);
    rf_workspace_free(wn);
    rf_model_free(a);
    rf_model_free(n);
    rf_dataset_free(ds);
}

static void expect_error(rf_config *c, const rf_dataset *ds, const char *want)
{
    rf_model *m = NULL;
    rf_error e;
    e.msg[0] = 0;
    rf_status st = rf_config_validate(c, &e);
    if (!st) st = rf_config_create_model(c, ds->F, ds->fields, ds->D, &m, &e);
    if (!strstr(e.msg, want)) fprintf(stderr, "  got \"%s\", wanted \"%s\"\n", e.msg, want);
    assert_int_not_equal(st, RF_OK);
    assert_non_null(strstr(e.msg, want));
    assert_null(m);
}

static void test_side_errors(void **state)
{
    (void)state;
    tw_case t = {2, {NULL, "t0"}, 1, {4}, RF_ACT_RELU, RF_BN_NONE, 1, RF_TWIN_AFTER, 3, RF_MONO_NONE};
    rf_dataset *ds = tiny(2, 55);
    rf_config c;
    make_cfg(&c, &t);
    snprintf(c.model.item_fields[1], RF_NAME_MAX, "shopp");
    expect_error(&c, ds, "model.item_fields: no categorical field named \"shopp\" (fields: user item tags shop)");
    make_cfg(&c, &t);
    c.model.n_item_fields = 0;
    memset(c.model.item_fields, 0, sizeof c.model.item_fields);
    expect_error(&c, ds, "model.item_fields: a twin model needs the item tower's categorical fields");
    make_cfg(&c, &t);
    snprintf(c.model.item_dense[0], RF_NAME_MAX, "cost");
    expect_error(&c, ds, "model.item_dense: \"cost\" is not in data.dense");
    make_cfg(&c, &t);
    c.model.dense_mode = RF_DENSE_PROJECT;
    expect_error(&c, ds, "model.dense_mode: a twin model needs concat");
    /* every input on the item side: the user tower would have none */
    make_cfg(&c, &t);
    c.model.n_item_fields = 4;
    for (int f = 0; f < F; f++) snprintf(c.model.item_fields[f], RF_NAME_MAX, "%s", FIELD[f]);
    c.model.n_item_dense = 2;
    snprintf(c.model.item_dense[1], RF_NAME_MAX, "age");
    expect_error(&c, ds, "twin: the user tower has no input");
    /* a name that the data does not have, with no schema to validate against: at creation */
    make_cfg(&c, &t);
    c.data.schema.D = 0;
    snprintf(c.model.item_dense[0], RF_NAME_MAX, "cost");
    snprintf(c.data.source, sizeof c.data.source, "x.csv");
    expect_error(&c, ds, "model.item_dense: no dense feature named \"cost\"");
    rf_dataset_free(ds);
}

/* The twin keys are dumped for a twin model only (other models' files stay byte-identical), and
 * a twin model file loads back to the same logits. */
static void test_model_file(void **state)
{
    (void)state;
    rf_config c;
    rf_config_default(&c);
    char *dump = rf_config_dump(&c);
    assert_null(strstr(dump, "twin_dim"));
    assert_null(strstr(dump, "item_fields"));
    free(dump);
    tw_case t = {2, {NULL, "t0"}, 2, {5, 4}, RF_ACT_PRELU, RF_BN_BATCH, 3, RF_TWIN_BOTH, 3, RF_MONO_NONE};
    rf_dataset *ds = tiny(2, 66);
    rf_model *m = make_model(&t, ds, &c);
    dump = rf_config_dump(&c);
    assert_non_null(strstr(dump, "twin_dim: 3"));
    assert_non_null(strstr(dump, "twin_link: both"));
    assert_non_null(strstr(dump, "item_fields: [item, shop]"));
    free(dump);
    for (size_t i = 0; i < m->n_buffers; i++) m->buffers[i] = i % 3 ? 0.9f : -0.1f;
    char labels[2][RF_NAME_MAX] = {"y0", "y1"};
    const char *path = tmp_path("twin.model");
    rf_error e;
    assert_int_equal(rf_model_save(m, &c, NULL, (const char(*)[RF_NAME_MAX])ds->dense_names,
                                   (const char(*)[RF_NAME_MAX])labels, path, &e), RF_OK);
    rf_loaded_model lm;
    assert_int_equal(rf_model_load(path, &lm, &e), RF_OK);
    assert_int_equal(rf_model_is_twin(lm.model), 1);
    assert_int_equal(rf_twin_dense_side(lm.model, 1), 1);
    assert_int_equal(rf_twin_field_side(lm.model, 3), 1);
    size_t rows[N];
    for (int i = 0; i < N; i++) rows[i] = (size_t)i;
    int lc[2] = {0, 1};
    rf_batch b = {ds, rows, N, lc};
    rf_workspace *w1 = rf_workspace_create(m, N), *w2 = rf_workspace_create(lm.model, N);
    assert_int_equal(rf_model_forward(m, w1, &b, 0, &e), RF_OK);
    assert_int_equal(rf_model_forward(lm.model, w2, &b, 0, &e), RF_OK);
    assert_memory_equal(rf_ws_logits(w1), rf_ws_logits(w2), N * 2 * sizeof(float));
    rf_workspace_free(w1);
    rf_workspace_free(w2);
    rf_loaded_model_free(&lm);
    rf_model_free(m);
    rf_dataset_free(ds);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_serving_contract),
        cmocka_unit_test(test_before_link_adds_parent),
        cmocka_unit_test(test_side_errors),
        cmocka_unit_test(test_model_file),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
