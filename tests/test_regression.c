/* test_regression.c - regression as progressive multi-task (paper §4.6): the expected value on
 * hand-computed cases, quantile thresholds, MSE/RMSE/MAE, task generation per head, the
 * config keys and their errors, and the prediction of a model's tasks. The finite-difference
 * check of the squared-error head is in test_gradcheck.c (cases with mse0). */
#include "test_util.h"

#include "nn/model_impl.h"

#include "resflow/config.h"
#include "resflow/metrics.h"
#include "resflow/pipeline.h"
#include "resflow/regression.h"
#include "resflow/train.h"

static const float V5[5] = {1, 2, 3, 4, 5};

static void test_expected_value(void **state)
{
    (void)state;
    /* 1(1-.9) + 2(.9-.7) + 3(.7-.4) + 4(.4-.1) + 5(.1) = .1 + .4 + .9 + 1.2 + .5 */
    float q[4] = {0.9f, 0.7f, 0.4f, 0.1f};
    assert_float_equal(rf_expected_value(q, 1, 4, V5), 3.1, 1e-6);
    /* a chain that increases twice: the clipped terms are 0 and the mass is 1.2, not renormalised:
     * 1(.5) + 2 max(.5-.6, 0) + 3(.6-.2) + 4 max(.2-.3, 0) + 5(.3) = .5 + 0 + 1.2 + 0 + 1.5 */
    float up[4] = {0.5f, 0.6f, 0.2f, 0.3f};
    assert_float_equal(rf_expected_value(up, 1, 4, V5), 3.2, 1e-6);
    /* K = 1: v_0 (1 - Q_1) + v_1 Q_1 */
    float v1[2] = {0, 10}, q1 = 0.25f;
    assert_float_equal(rf_expected_value(&q1, 1, 1, v1), 2.5, 1e-6);
    /* non-uniform thresholds: 0(.2) + 1(.3) + 5(.4) + 30(.1) */
    float vn[4] = {0, 1, 5, 30}, qn[3] = {0.8f, 0.5f, 0.1f};
    assert_float_equal(rf_expected_value(qn, 1, 3, vn), 5.3, 1e-6);
    /* negative values: -2(.5) + 0(.25) + 3(.25) */
    float vm[3] = {-2, 0, 3}, qm[2] = {0.5f, 0.25f};
    assert_float_equal(rf_expected_value(qm, 1, 2, vm), -0.25, 1e-6);
    /* certain extremes: all Q = 1 gives v_K, all Q = 0 gives v_0 */
    float ones[4] = {1, 1, 1, 1}, zeros[4] = {0, 0, 0, 0};
    assert_float_equal(rf_expected_value(ones, 1, 4, V5), 5, 1e-9);
    assert_float_equal(rf_expected_value(zeros, 1, 4, V5), 1, 1e-9);
    /* strided: the tasks are columns of a (rows, K) matrix */
    float mat[8] = {0.9f, -1, 0.7f, -1, 0.4f, -1, 0.1f, -1};
    assert_float_equal(rf_expected_value(mat, 2, 4, V5), 3.1, 1e-6);
    /* with non-increasing Q the formula is v_0 + sum_k (v_k - v_{k-1}) Q_k */
    float qs[3] = {0.95f, 0.6f, 0.05f}, vs[4] = {0, 2, 3, 7};
    assert_float_equal(rf_expected_value(qs, 1, 3, vs), 0 + 2 * 0.95 + 1 * 0.6 + 4 * 0.05, 1e-6);
}

static void test_quantile_thresholds(void **state)
{
    (void)state;
    float x[5] = {5, 1, 3, 2, 4}, v[RF_MAX_THRESHOLDS];
    int n;
    assert_int_equal(rf_quantile_thresholds(x, 1, 5, 4, v, &n), RF_OK);
    assert_int_equal(n, 5);
    for (int k = 0; k < 5; k++) assert_float_equal(v[k], k + 1, 0);
    assert_int_equal(rf_quantile_thresholds(x, 1, 5, 2, v, &n), RF_OK); /* ranks 0, 2, 4 */
    assert_int_equal(n, 3);
    assert_float_equal(v[0], 1, 0);
    assert_float_equal(v[1], 3, 0);
    assert_float_equal(v[2], 5, 0);
    /* ties: ranks round(k * 5 / 3) = 0, 2, 3, 5 of 1 1 1 1 2 3 are 1 1 1 3 -> [1, 3] */
    float t[6] = {1, 3, 1, 2, 1, 1};
    assert_int_equal(rf_quantile_thresholds(t, 1, 6, 3, v, &n), RF_OK);
    assert_int_equal(n, 2);
    assert_float_equal(v[0], 1, 0);
    assert_float_equal(v[1], 3, 0);
    /* strided column, NaN skipped: 10 20 30 40 -> K = 3: ranks 0, 1, 2, 3 */
    float c[10] = {40, 0, NAN, 0, 10, 0, 30, 0, 20, 0};
    assert_int_equal(rf_quantile_thresholds(c, 2, 5, 3, v, &n), RF_OK);
    assert_int_equal(n, 4);
    assert_float_equal(v[0], 10, 0);
    assert_float_equal(v[3], 40, 0);
    /* a constant target has no threshold task */
    float k7[3] = {7, 7, 7};
    assert_int_equal(rf_quantile_thresholds(k7, 1, 3, 4, v, &n), RF_EDATA);
}

static void test_mse_rmse_mae(void **state)
{
    (void)state;
    float p[3] = {1, 2, 3}, y[6] = {1, 9, 3, 9, 5, 9}; /* target strided: 1, 3, 5 */
    rf_reg_metrics r = rf_reg_eval(p, 1, y, 2, 3);     /* errors 0, -1, -2 */
    assert_int_equal(r.n, 3);
    assert_float_equal(r.mse, 5.0 / 3, 1e-12);
    assert_float_equal(r.rmse, sqrt(5.0 / 3), 1e-12);
    assert_float_equal(r.mae, 1, 1e-12);
    r = rf_reg_eval(p, 1, y, 2, 0);
    assert_true(isnan(r.mse) && isnan(r.rmse) && isnan(r.mae));
}

static void test_labels(void **state)
{
    (void)state;
    char b[RF_SPEC_MAX];
    rf_regression_label("rating", 4, b);
    assert_string_equal(b, "rating>=4");
    rf_regression_label("play_time", 2.5f, b);
    assert_string_equal(b, "play_time>=2.5");
    rf_regression_label("x", 0.1f, b);
    assert_string_equal(b, "x>=0.1");
    rf_regression_label("x", -3e7f, b);
    assert_string_equal(b, "x>=-3e+07");
}

static void set_ok(rf_config *c, const char *a)
{
    rf_error e;
    rf_status st = rf_config_set(c, a, &e);
    if (st) fprintf(stderr, "  %s\n", e.msg);
    assert_int_equal(st, RF_OK);
}

static void regression_cfg(rf_config *c, const char *head)
{
    rf_config_default(c);
    set_ok(c, "regression.target=rating");
    set_ok(c, "regression.thresholds=[1, 2, 3, 4, 5]");
    set_ok(c, head);
}

static void test_resolve_tasks(void **state)
{
    (void)state;
    rf_config c;
    rf_error e;
    /* progressive: the default task list is replaced by the chain ge2 -> ge3 -> ge4 -> ge5 */
    regression_cfg(&c, "regression.head=progressive");
    assert_int_equal(rf_config_validate(&c, &e), RF_OK);
    assert_int_equal(rf_regression_resolve(&c, NULL, &e), RF_OK);
    assert_int_equal(c.K, 4);
    assert_string_equal(c.tasks[0].name, "ge2");
    assert_string_equal(c.tasks[0].label, "rating>=2");
    assert_string_equal(c.tasks[0].parent, "");
    assert_string_equal(c.tasks[3].name, "ge5");
    assert_string_equal(c.tasks[3].parent, "ge4");
    rf_config again = c; /* idempotent */
    assert_int_equal(rf_regression_resolve(&again, NULL, &e), RF_OK);
    assert_memory_equal(&again, &c, sizeof c);
    assert_int_equal(rf_config_validate(&c, &e), RF_OK);
    /* a listed chain with the same labels keeps its names and weights */
    regression_cfg(&c, "tasks=[{name: r2, label: rating>=2}, {name: r3, label: rating>=3, parent: r2}, "
                       "{name: r4, label: rating>=4, parent: r3, pos_weight: 2}, {name: r5, label: rating>=5, parent: r4}]");
    set_ok(&c, "train.monitor=auc:r4");
    assert_int_equal(rf_regression_resolve(&c, NULL, &e), RF_OK);
    assert_string_equal(c.tasks[2].name, "r4");
    assert_float_equal(c.tasks[2].pos_weight, 2, 0);
    /* traditional: one mse task on the target, and the auc:r4 monitor no longer exists */
    regression_cfg(&c, "regression.head=traditional");
    set_ok(&c, "model.type=nse");
    set_ok(&c, "train.monitor=mse");
    assert_int_equal(rf_regression_resolve(&c, NULL, &e), RF_OK);
    assert_int_equal(c.K, 1);
    assert_string_equal(c.tasks[0].name, "rating");
    assert_string_equal(c.tasks[0].label, "rating");
    assert_int_equal(c.tasks[0].loss, RF_LOSS_MSE);
    assert_int_equal(rf_config_validate(&c, &e), RF_OK);
    set_ok(&c, "train.monitor=auc:rating");
    assert_int_equal(rf_regression_resolve(&c, NULL, &e), RF_OK); /* (it exists; its AUC is NaN) */
    regression_cfg(&c, "regression.head=traditional");
    set_ok(&c, "tasks=[{name: r2, label: rating>=2}, {name: r3, label: rating>=3, parent: r2}, "
               "{name: r4, label: rating>=4, parent: r3}, {name: r5, label: rating>=5, parent: r4}]");
    set_ok(&c, "train.monitor=auc:r4");
    assert_int_equal(rf_regression_resolve(&c, NULL, &e), RF_EUSAGE);
    assert_non_null(strstr(e.msg, "use train.monitor=mse"));
    regression_cfg(&c, "regression.head=traditional"); /* the default monitor, mean_auc */
    assert_int_equal(rf_regression_resolve(&c, NULL, &e), RF_EUSAGE);
    assert_non_null(strstr(e.msg, "has no AUC"));
    /* a task list that is neither the chain nor the default is an error, naming the chain */
    regression_cfg(&c, "tasks=[{name: a, label: rating>=2}, {name: b, label: rating>=4, parent: a}]");
    assert_int_equal(rf_regression_resolve(&c, NULL, &e), RF_EUSAGE);
    assert_non_null(strstr(e.msg, "rating>=2 -> rating>=3 -> rating>=4 -> rating>=5"));
    /* the mse head is for the tower models, on a root task */
    regression_cfg(&c, "model.type=esmm");
    set_ok(&c, "tasks.ctr.loss=mse");
    assert_int_equal(rf_config_validate(&c, &e), RF_EUSAGE);
    set_ok(&c, "model.type=nse");
    assert_int_equal(rf_config_validate(&c, &e), RF_EUSAGE); /* ctr is ctcvr's parent */
    assert_non_null(strstr(e.msg, "cannot be a parent"));
}

/* The simulator's rating preset (rows rows) with the regression keys sets[0..n): data loaded,
 * the configuration resolved, a model built. */
static rf_model *rating_model(rf_config *c, rf_splits *sp, const char *rows, const char *const *sets, int n)
{
    rf_error e;
    rf_config_default(c);
    set_ok(c, "synth={preset: rating, users: 300, items: 200}");
    set_ok(c, rows);
    for (int i = 0; i < n; i++) set_ok(c, sets[i]);
    assert_int_equal(rf_config_validate(c, &e), RF_OK);
    rf_schema_from_tasks(c);
    assert_string_equal(c->data.schema.label[0], "rating");
    assert_int_equal(rf_data_load(c, sp, NULL, NULL, &e), RF_OK);
    assert_int_equal(rf_regression_resolve(c, sp->train, &e), RF_OK);
    rf_model *m = NULL;
    assert_int_equal(rf_config_create_model(c, sp->train->F, sp->train->fields, sp->train->D, &m, &e), RF_OK);
    return m;
}

static void test_quantile_resolve_and_data(void **state)
{
    (void)state;
    /* quantile thresholds: fitted on the training rows, the labels added after the split */
    rf_config c;
    rf_splits sp;
    rf_error e;
    const char *sets[] = {"regression={target: rating, quantiles: 4}", "train.monitor=mse"};
    rf_model *m = rating_model(&c, &sp, "synth.rows=4000", sets, 2);
    assert_true(c.regression.thresholds.n >= 3);
    assert_float_equal(c.regression.thresholds.v[0], 1, 0); /* the minimum and the maximum */
    assert_float_equal(c.regression.thresholds.v[c.regression.thresholds.n - 1], 5, 0);
    assert_int_equal(c.K, c.regression.thresholds.n - 1);
    int lc[RF_MAX_TASKS];
    assert_int_equal(rf_resolve_labels(m, sp.test, lc, &e), RF_OK); /* every split has the labels */
    /* E(v) of the untrained model against the target, as rf_evaluate computes it */
    size_t n = sp.test->n;
    float *P = malloc(n * m->K * sizeof *P), *E = malloc(n * sizeof *E);
    assert_int_equal(rf_predict(m, sp.test, 0, P, NULL, &e), RF_OK);
    assert_int_equal(rf_regression_predict(rf_model_spec_of(m), P, n, E, &e), RF_OK);
    int tc = rf_dataset_label_index(sp.test, "rating");
    rf_reg_metrics want = rf_reg_eval(E, 1, sp.test->labels + tc, sp.test->K, n);
    rf_eval_result r;
    assert_int_equal(rf_evaluate(m, sp.test, 0, &r, &e), RF_OK);
    assert_float_equal(r.reg.mse, want.mse, 1e-12);
    assert_int_equal(r.reg.n, n);
    for (size_t i = 0; i < n; i++) assert_true(E[i] >= 1 && E[i] <= 5.0001f);
    free(P);
    free(E);
    rf_model_free(m);
    rf_splits_free(&sp);
}

static void test_traditional_trains(void **state)
{
    (void)state;
    rf_config c;
    rf_splits sp;
    rf_error e;
    const char *sets[] = {"regression={target: rating, thresholds: [1, 2, 3, 4, 5], head: traditional}",
                          "model={type: nse, hidden: [8], emb_dim: 4}", "train={monitor: mse, epochs: 1, threads: 1}"};
    rf_model *m = rating_model(&c, &sp, "synth.rows=6000", sets, 3);
    assert_int_equal(c.K, 1);
    rf_train_summary ts;
    assert_int_equal(rf_train(m, &c.train, NULL, sp.train, sp.valid, &ts, &e), RF_OK);
    rf_eval_result r;
    assert_int_equal(rf_evaluate(m, sp.test, 0, &r, &e), RF_OK);
    /* better than predicting the training mean (the initial output): the target's variance */
    int tc = rf_dataset_label_index(sp.test, "rating");
    double mu = 0, var = 0;
    for (size_t i = 0; i < sp.test->n; i++) mu += sp.test->labels[i * sp.test->K + tc];
    mu /= sp.test->n;
    for (size_t i = 0; i < sp.test->n; i++)
        var += pow(sp.test->labels[i * sp.test->K + tc] - mu, 2) / sp.test->n;
    fprintf(stderr, "  traditional head: test MSE %.4f, target variance %.4f\n", r.reg.mse, var);
    assert_true(r.reg.mse < 1.05 * var);
    assert_float_equal(r.reg.mse, r.task[0].n ? r.loss : NAN, 1e-9); /* its loss is the MSE */
    assert_true(isnan(r.task[0].auc));
    assert_float_equal(-r.reg.mse, rf_monitor_value(m, c.train.monitor, &r), 0);
    rf_model_free(m);
    rf_splits_free(&sp);
}

/* Config keys: dump round trip, and errors naming file:line:column. */
static void test_config_keys(void **state)
{
    (void)state;
    rf_config c, d;
    rf_error e;
    regression_cfg(&c, "regression.head=traditional");
    set_ok(&c, "tasks.ctr.loss=mse");
    char *dump = rf_config_dump(&c);
    assert_non_null(strstr(dump, "thresholds: [1, 2, 3, 4, 5]"));
    assert_non_null(strstr(dump, "loss: mse"));
    rf_config_default(&d);
    assert_int_equal(rf_config_load_string(&d, dump, strlen(dump), "dump", &e), RF_OK);
    assert_memory_equal(&c, &d, sizeof c);
    free(dump);
    /* a classification task's dump has no loss key (run hashes of older configs unchanged) */
    rf_config_default(&c);
    dump = rf_config_dump(&c);
    assert_null(strstr(dump, "loss:"));
    free(dump);

    const char *bad1 = "regression:\n  target: rating\n  thresholds: [1, 3, 2]\n";
    rf_config_default(&c);
    assert_int_equal(rf_config_load_string(&c, bad1, strlen(bad1), "reg.yaml", &e), RF_EUSAGE);
    assert_string_equal(e.file, "reg.yaml");
    assert_int_equal(e.line, 3);
    assert_int_equal(e.col, 15);
    assert_non_null(strstr(e.msg, "strictly ascending (2 after 3)"));
    const char *bad2 = "model: {type: nse}\nregression:\n  thresholds: [1, 5]\n  head: traditional\n";
    assert_int_equal(rf_config_load_string(&c, bad2, strlen(bad2), "reg.yaml", &e), RF_EUSAGE);
    assert_int_equal(e.line, 3);
    assert_int_equal(e.col, 3);
    assert_non_null(strstr(e.msg, "regression.target is not set"));
    const char *bad3 = "regression: {target: rating, thresholds: [4]}\n";
    assert_int_equal(rf_config_load_string(&c, bad3, strlen(bad3), "reg.yaml", &e), RF_EUSAGE);
    assert_int_equal(e.line, 1);
    assert_non_null(strstr(e.msg, "2..16 values"));
    const char *bad4 = "regression: {target: rating, quantiles: 99}\n";
    assert_int_equal(rf_config_load_string(&c, bad4, strlen(bad4), "reg.yaml", &e), RF_EUSAGE);
    assert_int_equal(e.line, 1);
    /* the command line: a target without thresholds or quantiles; mse without a target */
    rf_config_default(&c);
    set_ok(&c, "regression.target=rating");
    assert_int_equal(rf_config_validate(&c, &e), RF_EUSAGE);
    assert_non_null(strstr(e.msg, "regression.quantiles"));
    rf_config_default(&c);
    set_ok(&c, "train.monitor=mse");
    assert_int_equal(rf_config_validate(&c, &e), RF_EUSAGE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_expected_value),
        cmocka_unit_test(test_quantile_thresholds),
        cmocka_unit_test(test_mse_rmse_mae),
        cmocka_unit_test(test_labels),
        cmocka_unit_test(test_resolve_tasks),
        cmocka_unit_test(test_quantile_resolve_and_data),
        cmocka_unit_test(test_traditional_trains),
        cmocka_unit_test(test_config_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
