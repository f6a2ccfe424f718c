/* test_studies.c - ResFlow's study switches (paper §3.3, Tables 5 and 11): the monotonic
 * options M1-M4, ESMM + FR / ESMM + FR + LR, and the "share of rows whose probability
 * increases along the chain" metric. Gradients of all of them are checked by finite
 * differences in test_gradcheck.c; here: invariants and hand-computed values. */
#include "test_util.h"

#include "nn/model_impl.h"

#include "resflow/config.h"
#include "resflow/train.h"

static rf_dataset *sim(int tasks)
{
    rf_synth_opts o = rf_synth_default();
    o.rows = 3000;
    o.tasks = tasks;
    o.n_users = 300;
    o.n_items = 500;
    o.n_queries = 100;
    rf_dataset *ds = NULL;
    rf_error e;
    assert_int_equal(rf_synth_generate(&o, &ds, &e), RF_OK);
    return ds;
}

static rf_model *make(const rf_dataset *ds, rf_model_type t, rf_monotonic mono, int esmm_links, int K)
{
    rf_config c;
    rf_config_default(&c);
    if (K == 3) {
        rf_error e;
        assert_int_equal(rf_config_set(&c, "tasks=[{name: click, label: click}, {name: cart, label: cart, parent: click}, "
                                           "{name: order, label: order, parent: cart}]", &e), RF_OK);
    }
    c.model.type = t;
    c.model.monotonic = mono;
    c.model.monotonic_weight = 0.7f;
    c.model.esmm_links = esmm_links;
    c.model.emb_dim = 4;
    c.model.n_hidden = 2;
    c.model.hidden[0] = 12;
    c.model.hidden[1] = 6;
    c.model.emb_init = 0.5f; /* large random outputs: constraints must hold anyway */
    rf_model *m = NULL;
    rf_error e;
    assert_int_equal(rf_config_create_model(&c, ds->F, ds->fields, ds->D, &m, &e), RF_OK);
    /* push every tower's bias up so that children would exceed their parents unconstrained */
    for (size_t i = 0; i < m->n_params; i++) m->params[i] *= 1.5f;
    return m;
}

static size_t increases(const rf_model *m, const float *P, size_t n)
{
    size_t up = 0;
    for (size_t i = 0; i < n; i++)
        for (int k = 0; k < m->K; k++)
            if (m->parent[k] >= 0 && P[i * m->K + k] > P[i * m->K + m->parent[k]] + 1e-7f) up++;
    return up;
}

/* M3 and M4 make an increase impossible, whatever the parameters; without them it happens. */
static void test_m3_m4_never_increase(void **state)
{
    (void)state;
    rf_dataset *ds = sim(3);
    float *P = malloc(ds->n * 3 * sizeof(float));
    rf_error e;
    rf_monotonic modes[3] = {RF_MONO_NONE, RF_MONO_M3, RF_MONO_M4};
    size_t up[3];
    for (int i = 0; i < 3; i++) {
        rf_model *m = make(ds, RF_MODEL_RESFLOW, modes[i], 0, 3);
        assert_int_equal(rf_predict(m, ds, 0, P, NULL, &e), RF_OK);
        up[i] = increases(m, P, ds->n);
        rf_model_free(m);
    }
    assert_true(up[0] > 0);
    assert_int_equal(up[1], 0);
    assert_int_equal(up[2], 0);
    free(P);
    rf_dataset_free(ds);
}

/* The M1 and M2 penalties equal their definitions: w * mean_b max(p_c - p_p, 0) and
 * w * mean_b max(r_c, 0) with r_c = s_c - s_p (the residual logit). */
static void test_penalty_values(void **state)
{
    (void)state;
    rf_dataset *ds = sim(2);
    size_t rows[256];
    for (int i = 0; i < 256; i++) rows[i] = (size_t)i * 11 % ds->n;
    int lc[2] = {0, 1};
    rf_batch b = {ds, rows, 256, lc};
    rf_error e;
    double loss[3];
    float P[512], S[512];
    rf_monotonic modes[3] = {RF_MONO_NONE, RF_MONO_M1, RF_MONO_M2};
    for (int i = 0; i < 3; i++) {
        rf_model *m = make(ds, RF_MODEL_RESFLOW, modes[i], 0, 2);
        rf_workspace *ws = rf_workspace_create(m, 256);
        assert_int_equal(rf_model_forward(m, ws, &b, 0, &e), RF_OK);
        loss[i] = rf_model_loss(m, ws, &b, NULL, NULL);
        if (i == 0) {
            memcpy(P, rf_ws_probs(ws), sizeof P);
            memcpy(S, rf_ws_logits(ws), sizeof S);
        }
        rf_workspace_free(ws);
        rf_model_free(m);
    }
    double m1 = 0, m2 = 0;
    for (int i = 0; i < 256; i++) {
        m1 += fmax(P[2 * i + 1] - P[2 * i], 0);
        m2 += fmax(S[2 * i + 1] - S[2 * i], 0);
    }
    m1 *= 0.7 / 256;
    m2 *= 0.7 / 256;
    assert_true(m1 > 1e-3 && m2 > 1e-2); /* the penalties are active on this data */
    assert_float_equal(loss[1] - loss[0], m1, 1e-5 * (1 + m1));
    assert_float_equal(loss[2] - loss[0], m2, 1e-5 * (1 + m2));
    rf_dataset_free(ds);
}

/* ESMM + FR (+ LR): the links change the model; with every link switched off it is plain ESMM. */
static void test_esmm_links(void **state)
{
    (void)state;
    rf_dataset *ds = sim(2);
    rf_error e;
    float *P[3];
    for (int v = 0; v < 3; v++) {
        rf_model *m = make(ds, RF_MODEL_ESMM, RF_MONO_NONE, v > 0, 2);
        if (v == 2) { /* links on, but none selected */
            m->spec.model.res_layers = 0;
            m->spec.model.res_logit = 0;
        }
        P[v] = malloc(ds->n * 2 * sizeof(float));
        assert_int_equal(rf_predict(m, ds, 0, P[v], NULL, &e), RF_OK);
        rf_model_free(m);
    }
    assert_memory_equal(P[0], P[2], ds->n * 2 * sizeof(float));
    size_t differ = 0;
    for (size_t i = 0; i < ds->n; i++) {
        assert_float_equal(P[0][2 * i], P[1][2 * i], 0); /* the root (ctr) is untouched */
        differ += P[0][2 * i + 1] != P[1][2 * i + 1];
    }
    assert_true(differ > ds->n * 99 / 100); /* the ctcvr column changes (almost) everywhere */
    /* products never increase, links or not */
    rf_model *m = make(ds, RF_MODEL_ESMM, RF_MONO_NONE, 1, 2);
    assert_int_equal(increases(m, P[1], ds->n), 0);
    rf_model_free(m);
    for (int v = 0; v < 3; v++) free(P[v]);
    rf_dataset_free(ds);
}

/* rf_evaluate's increase share is the share of rows with p_child > p_parent. */
static void test_increase_share(void **state)
{
    (void)state;
    rf_dataset *ds = sim(3);
    rf_model *m = make(ds, RF_MODEL_RESFLOW, RF_MONO_NONE, 0, 3);
    rf_error e;
    rf_eval_result r;
    assert_int_equal(rf_evaluate(m, ds, 0, &r, &e), RF_OK);
    float *P = malloc(ds->n * 3 * sizeof(float));
    assert_int_equal(rf_predict(m, ds, 0, P, NULL, &e), RF_OK);
    for (int k = 1; k < 3; k++) {
        size_t up = 0;
        for (size_t i = 0; i < ds->n; i++) up += P[i * 3 + k] > P[i * 3 + k - 1];
        assert_float_equal(r.increase[k], (double)up / ds->n, 1e-12);
    }
    assert_true(isnan(r.increase[0]));
    free(P);
    rf_model_free(m);
    rf_dataset_free(ds);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_m3_m4_never_increase),
        cmocka_unit_test(test_penalty_values),
        cmocka_unit_test(test_esmm_links),
        cmocka_unit_test(test_increase_share),
    };
    return cmocka_run_group_tests_name("studies", tests, NULL, NULL);
}
