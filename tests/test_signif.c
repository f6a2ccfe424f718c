/* test_signif.c - paired AUC significance (signif.h): DeLong against a brute-force numpy
 * reference (tests/ref/delong_ref.py -> tests/fixtures/delong.txt), hand-sized cases, the
 * bootstrap against DeLong, errors. */
#include "test_util.h"

#include "resflow/metrics.h"
#include "resflow/signif.h"
#include "core/rng.h"

static const char *fixture(void)
{
    const char *d = getenv("RESFLOW_FIXTURES");
    static char p[512];
    snprintf(p, sizeof p, "%s/delong.txt", d ? d : "tests/fixtures");
    return p;
}

static void test_delong_reference(void **state)
{
    (void)state;
    FILE *f = fopen(fixture(), "r");
    assert_non_null(f);
    char line[256];
    int cases = 0;
    while (fgets(line, sizeof line, f)) {
        int n;
        assert_int_equal(sscanf(line, "case %d", &n), 1);
        float *a = malloc(3 * (size_t)n * sizeof *a), *b = a + n, *y = b + n;
        for (int i = 0; i < n; i++) {
            int yi;
            assert_non_null(fgets(line, sizeof line, f));
            assert_int_equal(sscanf(line, "%f %f %d", &a[i], &b[i], &yi), 3);
            y[i] = (float)yi;
        }
        double e[5];
        assert_non_null(fgets(line, sizeof line, f));
        assert_int_equal(sscanf(line, "expect %lf %lf %lf %lf %lf", &e[0], &e[1], &e[2], &e[3], &e[4]), 5);
        rf_auc_diff d;
        rf_error err;
        assert_int_equal(rf_auc_delong(a, 1, b, 1, y, 1, NULL, 0, (size_t)n, 0.95, &d, &err), RF_OK);
        assert_true(fabs(d.auc_a - e[0]) < 1e-12);
        assert_true(fabs(d.auc_b - e[1]) < 1e-12);
        assert_true(fabs(d.diff - e[2]) < 1e-12);
        assert_true(fabs(d.se - e[3]) < 1e-10);
        assert_true(fabs(d.p - e[4]) < 1e-8 * (1 + e[4]));
        assert_true(fabs(d.hi - d.lo - 2 * 1.959963984540054 * e[3]) < 1e-8);
        assert_int_equal(rf_auc_diff_significant(&d), e[4] < 0.05);
        /* the AUCs agree with metrics.h's */
        assert_true(fabs(d.auc_a - rf_auc(a, y, NULL, (size_t)n, NULL)) < 1e-12);
        free(a);
        cases++;
    }
    fclose(f);
    assert_int_equal(cases, 3);
}

static void test_hand_sized(void **state)
{
    (void)state;
    /* identical scores: diff 0, se 0, not significant, p 1 */
    float a[6] = {0.1f, 0.4f, 0.35f, 0.8f, 0.2f, 0.9f}, y[6] = {0, 0, 1, 1, 0, 1};
    rf_auc_diff d;
    rf_error err;
    assert_int_equal(rf_auc_delong(a, 1, a, 1, y, 1, NULL, 0, 6, 0.95, &d, &err), RF_OK);
    assert_true(d.diff == 0 && d.se == 0 && d.p == 1.0);
    assert_false(rf_auc_diff_significant(&d));
    /* 2 positives, 2 negatives by hand: a perfect (AUC 1), b: pos {0.2, 0.9} neg {0.5, 0.1} ->
     * pairs (0.2>0.5)=0 (0.2>0.1)=1 (0.9>*)=1,1 -> 3/4. Placements: a V10 = {1, 1}, V01 = {1, 1};
     * b V10 = {1/2, 1}, V01 = {1/2, 1}. diff placements V10 {1/2, 0}: var 1/8; V01 same. */
    float pa[4] = {0.8f, 0.9f, 0.3f, 0.1f}, pb[4] = {0.2f, 0.9f, 0.5f, 0.1f}, py[4] = {1, 1, 0, 0};
    assert_int_equal(rf_auc_delong(pa, 1, pb, 1, py, 1, NULL, 0, 4, 0.95, &d, &err), RF_OK);
    assert_true(fabs(d.auc_a - 1.0) < 1e-12 && fabs(d.auc_b - 0.75) < 1e-12);
    assert_true(fabs(d.se - sqrt(0.125 / 2 + 0.125 / 2)) < 1e-12);
    /* a mask keeps rows: the last two rows masked out leaves one class only -> RF_EDATA */
    float mask[4] = {1, 1, 0, 0};
    assert_int_equal(rf_auc_delong(pa, 1, pb, 1, py, 1, mask, 1, 4, 0.95, &d, &err), RF_EDATA);
    /* errors */
    assert_int_equal(rf_auc_delong(pa, 1, pb, 1, py, 1, NULL, 0, 4, 1.5, &d, &err), RF_EUSAGE);
    float nanv[4] = {NAN, 0, 0, 0};
    assert_int_equal(rf_auc_delong(nanv, 1, pb, 1, py, 1, NULL, 0, 4, 0.95, &d, &err), RF_ENUMERIC);
    assert_int_equal(rf_auc_bootstrap(pa, 1, pb, 1, py, 1, NULL, 0, NULL, 4, 5, 1, 1, 0.95, &d, &err), RF_EUSAGE);
    assert_true(fabs(rf_normal_quantile(0.975) - 1.959963984540054) < 1e-9);
    assert_true(fabs(rf_normal_quantile(0.001) + 3.090232306167813) < 1e-8);
}

/* Rows grouped in lists of 10; with no within-list correlation the bootstrap over lists and
 * DeLong agree on the standard error; the bootstrap is deterministic and thread-independent. */
static void test_bootstrap_agrees(void **state)
{
    (void)state;
    const size_t n = 20000;
    float *a = malloc(3 * n * sizeof *a), *b = a + n, *y = b + n;
    uint64_t *g = malloc(n * sizeof *g);
    rf_rng r;
    rf_rng_seed(&r, 5);
    rf_rng_spare sp = {0, 0};
    for (size_t i = 0; i < n; i++) {
        y[i] = rf_rng_uniformf(&r) < 0.2f;
        float t = rf_rng_normalf(&r, &sp) + y[i];
        a[i] = t + rf_rng_normalf(&r, &sp);
        b[i] = 0.7f * a[i] + 0.7f * rf_rng_normalf(&r, &sp) + 0.2f * y[i];
        g[i] = 1000003u * (i / 10);
    }
    rf_auc_diff dl, bs, bs1;
    rf_error err;
    assert_int_equal(rf_auc_delong(a, 1, b, 1, y, 1, NULL, 0, n, 0.95, &dl, &err), RF_OK);
    assert_int_equal(rf_auc_bootstrap(a, 1, b, 1, y, 1, NULL, 0, g, n, 400, 7, 2, 0.95, &bs, &err), RF_OK);
    assert_int_equal(rf_auc_bootstrap(a, 1, b, 1, y, 1, NULL, 0, g, n, 400, 7, 1, 0.95, &bs1, &err), RF_OK);
    assert_int_equal(bs.groups, n / 10);
    assert_int_equal(bs.reps, 400);
    assert_true(bs.lo == bs1.lo && bs.hi == bs1.hi && bs.se == bs1.se);
    assert_true(fabs(bs.diff - dl.diff) < 1e-12 && fabs(bs.auc_a - dl.auc_a) < 1e-12);
    assert_true(fabs(bs.se / dl.se - 1) < 0.2);
    assert_true(bs.lo < bs.diff && bs.diff < bs.hi);
    assert_int_equal(rf_auc_diff_significant(&bs), rf_auc_diff_significant(&dl));
    /* lists that share a strong list effect: the bootstrap over lists widens the interval */
    for (size_t i = 0; i < n; i++) {
        float le = (float)((i / 10) % 7) - 3.0f;
        a[i] += 0.8f * le * (b[i] > 0);
    }
    assert_int_equal(rf_auc_bootstrap(a, 1, b, 1, y, 1, NULL, 0, NULL, n, 200, 7, 2, 0.95, &bs1, &err), RF_OK);
    assert_int_equal(bs1.groups, n);
    free(a);
    free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_delong_reference),
        cmocka_unit_test(test_hand_sized),
        cmocka_unit_test(test_bootstrap_agrees),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
