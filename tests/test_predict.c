/* test_predict.c - rf_predict_ex (src/nn/predict.c): batch-parallel scoring.
 *
 * Scores do not depend on the thread count, bit for bit, for a tower model and an op-graph zoo
 * model, on a row count that is not a multiple of the batch (before, the zoo model's last batch
 * differed between 1 and 2 threads: the GEMMs were split by rows over the threads). A bad row in
 * a later batch is reported as the first one, whichever thread meets it first. NULL options are
 * the defaults; rf_predict is rf_predict_ex in fp32; rf_evaluate_ex scores as rf_predict_ex.
 * bf16 prediction: refused for a zoo model and without AVX512-BF16 (test_bf16.c checks its
 * accuracy). */
#include <omp.h>

#include "test_util.h"

#include "resflow/config.h"
#include "resflow/train.h"

#define ROWS 3001 /* 5 batches of 512 and a partial one */

static float *scores(const rf_model *m, const rf_dataset *ds, const rf_predict_opts *o, rf_status want)
{
    int K = rf_model_info_of(m)->K;
    float *p = calloc(ds->n * (size_t)K, sizeof *p), *c = calloc(ds->n * (size_t)K, sizeof *c);
    rf_error e;
    rf_status st = rf_predict_ex(m, ds, o, p, c, &e);
    if (st != want) fprintf(stderr, "  rf_predict_ex: %s\n", st ? e.msg : "ok");
    assert_int_equal(st, want);
    for (size_t i = 0; i < ds->n * (size_t)K && !st; i++) assert_true(isfinite(p[i]) && p[i] >= 0 && p[i] <= 1);
    free(c);
    return p;
}

static void threads_same(rf_model_type t)
{
    rf_dataset *ds = test_sim(ROWS, 7, 300, 400, 50, 0.2f);
    rf_config cfg;
    rf_model *m = test_small_model(ds, t, 0, &cfg);
    int K = rf_model_info_of(m)->K;
    rf_predict_opts o1 = {1, RF_PREC_FP32}, o2 = {2, RF_PREC_FP32};
    float *a = scores(m, ds, &o1, RF_OK), *b = scores(m, ds, &o2, RF_OK), *c = scores(m, ds, NULL, RF_OK);
    assert_memory_equal(a, b, ds->n * (size_t)K * sizeof *a);
    assert_memory_equal(a, c, ds->n * (size_t)K * sizeof *a);
    float *d = malloc(ds->n * (size_t)K * sizeof *d);
    rf_error e;
    assert_int_equal(rf_predict(m, ds, 2, d, NULL, &e), RF_OK);
    assert_memory_equal(a, d, ds->n * (size_t)K * sizeof *a);
    /* a single batch (fewer rows than one): the same rows score the same with 2 threads */
    rf_dataset *one = test_sim(300, 7, 300, 400, 50, 0.2f);
    float *s1 = scores(m, one, &o1, RF_OK), *s2 = scores(m, one, &o2, RF_OK);
    assert_memory_equal(s1, s2, one->n * (size_t)K * sizeof *s1);
    free(s1);
    free(s2);
    rf_dataset_free(one);
    /* evaluation scores as prediction */
    rf_eval_result r1, r2;
    assert_int_equal(rf_evaluate(m, ds, 1, &r1, &e), RF_OK);
    assert_int_equal(rf_evaluate_ex(m, ds, &o2, &r2, &e), RF_OK);
    for (int k = 0; k < K; k++) assert_true(r1.task[k].auc == r2.task[k].auc || (isnan(r1.task[k].auc) && isnan(r2.task[k].auc)));
    assert_true(r1.loss == r2.loss);
    free(a);
    free(b);
    free(c);
    free(d);
    rf_model_free(m);
    rf_dataset_free(ds);
}

static void test_threads_tower(void **state)
{
    (void)state;
    threads_same(RF_MODEL_RESFLOW);
}

static void test_threads_zoo(void **state)
{
    (void)state;
    threads_same(RF_MODEL_MMOE);
}

static void test_first_bad_row(void **state)
{
    (void)state;
    rf_dataset *ds = test_sim(ROWS, 8, 300, 400, 50, 0.2f);
    rf_config cfg;
    rf_model *m = test_small_model(ds, RF_MODEL_RESFLOW, 0, &cfg);
    /* ids outside the vocabulary in batch 1 (row 700) and batch 4 (row 2100) */
    ds->cat[700 * (size_t)ds->F] = 0xfffffff0u;
    ds->cat[2100 * (size_t)ds->F] = 0xfffffff0u;
    for (int t = 1; t <= 2; t++) {
        for (int rep = 0; rep < 3; rep++) {
            int K = rf_model_info_of(m)->K;
            float *p = calloc(ds->n * (size_t)K, sizeof *p);
            rf_error e;
            rf_predict_opts o = {t, RF_PREC_FP32};
            assert_int_equal(rf_predict_ex(m, ds, &o, p, NULL, &e), RF_EDATA);
            if (!strstr(e.msg, "row 700")) fprintf(stderr, "  %d threads: %s\n", t, e.msg);
            assert_non_null(strstr(e.msg, "row 700"));
            free(p);
        }
    }
    rf_model_free(m);
    rf_dataset_free(ds);
}

/* A zoo model scores in bf16 where the CPU has it (the same scores for 1 and 2 threads, not
 * fp32's), never in int8; a CPU without AVX512-BF16 refuses bf16. */
static void test_bf16_zoo_and_refusals(void **state)
{
    (void)state;
    rf_dataset *ds = test_sim(600, 9, 300, 400, 50, 0.2f);
    rf_config cfg;
    rf_model *m = test_small_model(ds, RF_MODEL_MMOE, 0, &cfg);
    rf_predict_opts o = {2, RF_PREC_BF16}, o1 = {1, RF_PREC_BF16}, o8 = {2, RF_PREC_INT8}, o32 = {2, RF_PREC_FP32};
    free(scores(m, ds, &o8, RF_EUSAGE)); /* int8: the tower models only */
    if (rf_bf16_supported()) {
        size_t n = ds->n * (size_t)rf_model_info_of(m)->K;
        float *a = scores(m, ds, &o, RF_OK), *b = scores(m, ds, &o1, RF_OK), *f = scores(m, ds, &o32, RF_OK);
        assert_memory_equal(a, b, n * sizeof *a);
        assert_true(memcmp(a, f, n * sizeof *a) != 0); /* bf16 ran */
        free(a);
        free(b);
        free(f);
    }
    rf_model_free(m);
    m = test_small_model(ds, RF_MODEL_NSE, 0, &cfg);
    test_env_saved env = test_bf16_off(); /* as a CPU without AVX512-BF16 */
    int K = rf_model_info_of(m)->K;
    float *p = calloc(ds->n * (size_t)K, sizeof *p);
    rf_error e;
    assert_int_equal(rf_predict_ex(m, ds, &o, p, NULL, &e), RF_EUSAGE);
    assert_non_null(strstr(e.msg, "AVX512-BF16"));
    test_bf16_restore(&env);
    free(p);
    rf_model_free(m);
    rf_dataset_free(ds);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_threads_tower),
        cmocka_unit_test(test_threads_zoo),
        cmocka_unit_test(test_first_bad_row),
        cmocka_unit_test(test_bf16_zoo_and_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
