/* test_metrics.c - AUC / log loss / task summary: hand cases, brute-force properties, speed. */
#include <time.h>

#include "test_util.h"

#include "resflow/metrics.h"
#include "core/rng.h"

#define EPS 1e-12

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif

/* O(n^2) reference: weighted Mann-Whitney AUC over kept rows; NaN if a class is absent. */
static double brute_auc(const float *s, size_t ss, const float *y, size_t ys, const float *w,
                        const float *mask, size_t ms, size_t n)
{
    double num = 0, wp = 0, wn = 0;
    for (size_t i = 0; i < n; i++) {
        if (mask && !(mask[i * ms] > 0.5f)) continue;
        double wi = w ? w[i] : 1.0;
        if (y[i * ys] > 0.5f) wp += wi; else wn += wi;
        if (!(y[i * ys] > 0.5f)) continue;
        for (size_t j = 0; j < n; j++) {
            if ((mask && !(mask[j * ms] > 0.5f)) || y[j * ys] > 0.5f) continue;
            double wj = w ? w[j] : 1.0;
            num += wi * wj * (s[i * ss] > s[j * ss] ? 1.0 : s[i * ss] == s[j * ss] ? 0.5 : 0.0);
        }
    }
    return (wp > 0 && wn > 0) ? num / (wp * wn) : NAN;
}

static void test_auc_hand(void **state)
{
    (void)state;
    rf_status st = RF_EINTERNAL;
    const float s[] = {0.1f, 0.4f, 0.35f, 0.8f}, y[] = {0, 0, 1, 1};
    assert_true(fabs(rf_auc(s, y, NULL, 4, &st) - 0.75) < EPS);
    assert_int_equal(st, RF_OK);
    st = RF_EINTERNAL;
    assert_true(fabs(rf_auc_strided(s, 1, y, 1, NULL, 0, 4, &st) - 0.75) < EPS);
    assert_int_equal(st, RF_OK);
    /* negative scores and infinities order correctly */
    const float s2[] = {-INFINITY, -2.0f, -1.0f, 0.5f, INFINITY}, y2[] = {0, 1, 0, 1, 1};
    /* pos -2 beats -inf only (1 of 2), pos 0.5 and +inf beat both: 5/6 */
    assert_true(fabs(rf_auc(s2, y2, NULL, 5, NULL) - 5.0 / 6.0) < EPS);
}

static void test_auc_ties(void **state)
{
    (void)state;
    const float s1[] = {0.5f, 0.5f}, y1[] = {1, 0};
    assert_true(fabs(rf_auc(s1, y1, NULL, 2, NULL) - 0.5) < EPS);
    /* pos .5 vs neg .2 -> 1, pos .5 vs neg .5 -> .5, pos .9 -> 2: 3.5 / 4 */
    const float s2[] = {0.2f, 0.5f, 0.5f, 0.9f}, y2[] = {0, 1, 0, 1};
    assert_true(fabs(rf_auc(s2, y2, NULL, 4, NULL) - 0.875) < EPS);
    /* all tied */
    const float s3[] = {0.3f, 0.3f, 0.3f, 0.3f, 0.3f}, y3[] = {1, 0, 0, 1, 0};
    assert_true(fabs(rf_auc(s3, y3, NULL, 5, NULL) - 0.5) < EPS);
    /* -0.0 ties with +0.0 (both orders) */
    const float s4[] = {-0.0f, 0.0f}, y4[] = {1, 0}, y5[] = {0, 1};
    assert_true(fabs(rf_auc(s4, y4, NULL, 2, NULL) - 0.5) < EPS);
    assert_true(fabs(rf_auc(s4, y5, NULL, 2, NULL) - 0.5) < EPS);
}

static void test_auc_undefined(void **state)
{
    (void)state;
    rf_status st = RF_EINTERNAL;
    const float s[] = {0.1f, 0.7f, 0.3f}, pos[] = {1, 1, 0.9f}, neg[] = {0, 0.5f, 0};
    assert_true(isnan(rf_auc(s, pos, NULL, 3, &st)));
    assert_int_equal(st, RF_OK);
    st = RF_EINTERNAL;
    assert_true(isnan(rf_auc(s, neg, NULL, 3, &st))); /* 0.5 is not > 0.5 */
    assert_int_equal(st, RF_OK);
    st = RF_EINTERNAL;
    assert_true(isnan(rf_auc(s, pos, NULL, 0, &st)));
    assert_int_equal(st, RF_OK);
    /* mask leaves only positives */
    const float y[] = {1, 0, 1}, m[] = {1, 0, 1};
    assert_true(isnan(rf_auc_strided(s, 1, y, 1, m, 1, 3, &st)));
    assert_int_equal(st, RF_OK);
    /* all positive weight on one class */
    const float w[] = {1, 0, 1};
    assert_true(isnan(rf_auc(s, y, w, 3, &st)));
    assert_int_equal(st, RF_OK);
}

static void test_auc_nan_score(void **state)
{
    (void)state;
    rf_status st = RF_OK;
    const float s[] = {0.1f, NAN, 0.3f, 0.9f}, y[] = {0, 1, 0, 1};
    assert_true(isnan(rf_auc(s, y, NULL, 4, &st)));
    assert_int_equal(st, RF_ENUMERIC);
    assert_true(isnan(rf_auc(s, y, NULL, 4, NULL))); /* NULL st is fine */
    /* NaN in a masked-out row is not considered */
    const float m[] = {1, 0, 1, 1};
    assert_true(fabs(rf_auc_strided(s, 1, y, 1, m, 1, 4, &st) - 1.0) < EPS);
    assert_int_equal(st, RF_OK);
    /* bad weights */
    const float s2[] = {0.1f, 0.2f, 0.3f}, y2[] = {0, 1, 1}, w1[] = {1, -1, 1},
                w2[] = {1, NAN, 1}, w3[] = {1, INFINITY, 1};
    assert_true(isnan(rf_auc(s2, y2, w1, 3, &st)));
    assert_int_equal(st, RF_ENUMERIC);
    st = RF_OK;
    assert_true(isnan(rf_auc(s2, y2, w2, 3, &st)));
    assert_int_equal(st, RF_ENUMERIC);
    st = RF_OK;
    assert_true(isnan(rf_auc(s2, y2, w3, 3, &st)));
    assert_int_equal(st, RF_ENUMERIC);
}

static void test_auc_weights(void **state)
{
    (void)state;
    rf_status st = RF_EINTERNAL;
    /* pos .35(w3) beats neg .1(w1): 3; pos .8(w4) beats both: 4*3 = 12; total 15/(7*3) */
    const float s[] = {0.1f, 0.4f, 0.35f, 0.8f}, y[] = {0, 0, 1, 1}, w[] = {1, 2, 3, 4};
    assert_true(fabs(rf_auc(s, y, w, 4, &st) - 15.0 / 21.0) < EPS);
    assert_int_equal(st, RF_OK);
    /* unit weights == unweighted; zero weight removes a row */
    const float w1[] = {1, 1, 1, 1}, w0[] = {1, 0, 1, 1};
    assert_true(fabs(rf_auc(s, y, w1, 4, NULL) - 0.75) < EPS);
    assert_true(fabs(rf_auc(s, y, w0, 4, NULL) - 1.0) < EPS);
    /* tie with weights: pos w2 vs neg w3 at the same score -> 0.5 */
    const float st2[] = {0.5f, 0.5f}, yt[] = {1, 0}, wt[] = {2, 3};
    assert_true(fabs(rf_auc(st2, yt, wt, 2, NULL) - 0.5) < EPS);
}

static void test_auc_mask_strides(void **state)
{
    (void)state;
    /* row-major [score, label, mask] rows; masked rows would flip the result if kept */
    const float t[] = {0.1f, 0, 1, 0.4f, 0, 1, 0.35f, 1, 1, 0.8f, 1, 1,
                       0.9f, 0, 0, 0.05f, 1, 0};
    rf_status st = RF_EINTERNAL;
    assert_true(fabs(rf_auc_strided(t, 3, t + 1, 3, t + 2, 3, 6, &st) - 0.75) < EPS);
    assert_int_equal(st, RF_OK);
    /* without the mask: brute force on all six rows */
    double want = brute_auc(t, 3, t + 1, 3, NULL, NULL, 0, 6);
    assert_true(fabs(rf_auc_strided(t, 3, t + 1, 3, NULL, 0, 6, &st) - want) < EPS);
    assert_true(fabs(want - 0.75) > 0.1);
}

/* Random data with heavy ties (scores on a 0.05 grid incl. negatives and -0.0). */
static void fill_random(rf_rng *r, float *s, float *y, float *w, size_t n, double pos_rate)
{
    for (size_t i = 0; i < n; i++) {
        long q = (long)rf_rng_below(r, 41) - 10; /* -10..30 -> -0.5..1.5 */
        s[i] = (float)q * 0.05f;
        if (q == 0 && rf_rng_below(r, 2)) s[i] = -0.0f;
        y[i] = rf_rng_uniform(r) < pos_rate ? 1.0f : 0.0f;
        w[i] = rf_rng_below(r, 5) == 0 ? 0.0f : (float)rf_rng_uniform(r) * 3.0f;
    }
}

static void test_auc_vs_brute(void **state)
{
    (void)state;
    rf_rng r;
    rf_rng_seed(&r, 12345);
    enum { NMAX = 400 };
    float s[NMAX], y[NMAX], w[NMAX], mat[NMAX * 4];
    for (int it = 0; it < 300; it++) {
        size_t n = 1 + rf_rng_below(&r, NMAX);
        double rate = it % 10 == 0 ? 0.02 : rf_rng_uniform(&r);
        fill_random(&r, s, y, w, n, rate);
        rf_status st = RF_EINTERNAL;
        double a = rf_auc(s, y, NULL, n, &st), b = brute_auc(s, 1, y, 1, NULL, NULL, 0, n);
        assert_int_equal(st, RF_OK);
        assert_true(isnan(a) == isnan(b));
        if (!isnan(b)) assert_true(fabs(a - b) < 1e-12);
        a = rf_auc(s, y, w, n, &st);
        b = brute_auc(s, 1, y, 1, w, NULL, 0, n);
        assert_true(isnan(a) == isnan(b));
        if (!isnan(b)) assert_true(fabs(a - b) < 1e-9);
        /* strided + mask: [score, pad, label, mask] */
        for (size_t i = 0; i < n; i++) {
            mat[4 * i] = s[i];
            mat[4 * i + 1] = NAN;
            mat[4 * i + 2] = y[i];
            mat[4 * i + 3] = rf_rng_below(&r, 3) ? 1.0f : 0.0f;
        }
        a = rf_auc_strided(mat, 4, mat + 2, 4, mat + 3, 4, n, &st);
        b = brute_auc(mat, 4, mat + 2, 4, NULL, mat + 3, 4, n);
        assert_int_equal(st, RF_OK);
        assert_true(isnan(a) == isnan(b));
        if (!isnan(b)) assert_true(fabs(a - b) < 1e-12);
    }
}

static void test_auc_shuffle_invariant(void **state)
{
    (void)state;
    rf_rng r;
    rf_rng_seed(&r, 7);
    enum { N = 20000 };
    float *s = malloc(N * sizeof *s), *y = malloc(N * sizeof *y), *w = malloc(N * sizeof *w);
    assert_non_null(s);
    assert_non_null(y);
    assert_non_null(w);
    fill_random(&r, s, y, w, N, 0.3);
    double a0 = rf_auc(s, y, NULL, N, NULL), w0 = rf_auc(s, y, w, N, NULL);
    assert_false(isnan(a0));
    for (size_t i = N - 1; i > 0; i--) {
        size_t j = rf_rng_below(&r, i + 1);
        float t = s[i]; s[i] = s[j]; s[j] = t;
        t = y[i]; y[i] = y[j]; y[j] = t;
        t = w[i]; w[i] = w[j]; w[j] = t;
    }
    assert_true(rf_auc(s, y, NULL, N, NULL) == a0); /* unit weights: exact integer sums */
    assert_true(fabs(rf_auc(s, y, w, N, NULL) - w0) < 1e-12);
    free(s);
    free(y);
    free(w);
}

static void test_auc_perfect_reversed(void **state)
{
    (void)state;
    enum { N = 1000 };
    float s[N], y[N], sr[N];
    for (int i = 0; i < N; i++) {
        s[i] = (float)i / N - 0.3f; /* crosses zero: exercises the sign-bit key mapping */
        sr[i] = -s[i];
        y[i] = i >= 600 ? 1.0f : 0.0f;
    }
    assert_true(rf_auc(s, y, NULL, N, NULL) == 1.0);
    assert_true(rf_auc(sr, y, NULL, N, NULL) == 0.0);
}

static void test_logloss(void **state)
{
    (void)state;
    const float p[] = {0.9f, 0.2f}, y[] = {1, 0};
    double want = -(log((double)0.9f) + log(1.0 - (double)0.2f)) / 2;
    assert_true(fabs(rf_logloss(p, 1, y, 1, 2) - want) < 1e-12);
    /* clamping: p = 0 with y = 1 and p = 1 with y = 0 */
    const float pc[] = {0.0f, 1.0f}, yc[] = {1, 0};
    assert_true(fabs(rf_logloss(pc, 1, yc, 1, 2) - -log(1e-7)) < 1e-6);
    /* strides: p in column 0, label in column 1 of 2-wide rows */
    const float m[] = {0.9f, 1, 0.2f, 0};
    assert_true(fabs(rf_logloss(m, 2, m + 1, 2, 2) - want) < 1e-12);
    assert_true(isnan(rf_logloss(p, 1, y, 1, 0)));
    const float pn[] = {NAN, 0.5f};
    assert_true(isnan(rf_logloss(pn, 1, y, 1, 2)));
}

static void test_task_eval(void **state)
{
    (void)state;
    /* [p, click, mask]; last row masked out */
    const float t[] = {0.1f, 0, 1, 0.4f, 0, 1, 0.35f, 1, 1, 0.8f, 1, 1, 0.99f, 0, 0};
    rf_task_metrics m = rf_task_eval(t, 3, t + 1, 3, t + 2, 3, 5);
    assert_int_equal(m.n, 4);
    assert_int_equal(m.positives, 2);
    assert_true(fabs(m.auc - 0.75) < EPS);
    double mp = ((double)0.1f + 0.4f + 0.35f + 0.8f) / 4;
    assert_true(fabs(m.mean_pred - mp) < 1e-12);
    assert_true(fabs(m.mean_label - 0.5) < EPS);
    assert_true(fabs(m.calib - mp / 0.5) < 1e-12);
    double ll = -(log(1 - (double)0.1f) + log(1 - (double)0.4f) + log((double)0.35f) +
                  log((double)0.8f)) / 4;
    assert_true(fabs(m.logloss - ll) < 1e-12);
    /* no positives: calib and auc NaN */
    const float p0[] = {0.2f, 0.3f}, y0[] = {0, 0};
    m = rf_task_eval(p0, 1, y0, 1, NULL, 0, 2);
    assert_int_equal(m.n, 2);
    assert_int_equal(m.positives, 0);
    assert_true(isnan(m.calib));
    assert_true(isnan(m.auc));
    assert_true(fabs(m.mean_pred - ((double)0.2f + 0.3f) / 2) < 1e-12);
    /* nothing kept */
    const float mz[] = {0, 0};
    m = rf_task_eval(p0, 1, y0, 1, mz, 1, 2);
    assert_int_equal(m.n, 0);
    assert_true(isnan(m.auc) && isnan(m.logloss) && isnan(m.mean_pred) && isnan(m.calib));
}

static void test_auc_10m_speed(void **state)
{
    (void)state;
#ifdef UNDER_ASAN
    skip(); /* 10M rows under ASan is slow and the timing meaningless */
#else
    enum { N = 10000000 };
    float *s = malloc((size_t)N * sizeof *s), *y = malloc((size_t)N * sizeof *y);
    assert_non_null(s);
    assert_non_null(y);
    rf_rng r;
    rf_rng_seed(&r, 99);
    for (size_t i = 0; i < N; i++) {
        double u = rf_rng_uniform(&r);
        y[i] = rf_rng_uniform(&r) < 0.1 + 0.3 * u ? 1.0f : 0.0f; /* weakly informative */
        s[i] = (float)u;
    }
    struct timespec t0, t1;
    rf_status st = RF_EINTERNAL;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    double a = rf_auc(s, y, NULL, N, &st);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double sec = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    fprintf(stderr, "  rf_auc 10M rows: %.3f s (auc %.4f)\n", sec, a);
    assert_int_equal(st, RF_OK);
    assert_true(a > 0.62 && a < 0.645); /* ~0.633 for this generator */
    assert_true(sec < 5.0);
    free(s);
    free(y);
#endif
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_auc_hand),
        cmocka_unit_test(test_auc_ties),
        cmocka_unit_test(test_auc_undefined),
        cmocka_unit_test(test_auc_nan_score),
        cmocka_unit_test(test_auc_weights),
        cmocka_unit_test(test_auc_mask_strides),
        cmocka_unit_test(test_auc_vs_brute),
        cmocka_unit_test(test_auc_shuffle_invariant),
        cmocka_unit_test(test_auc_perfect_reversed),
        cmocka_unit_test(test_logloss),
        cmocka_unit_test(test_task_eval),
        cmocka_unit_test(test_auc_10m_speed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
