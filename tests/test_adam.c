/* test_adam.c - the dense Adam update (nn/adam.h) against its plain definition, bit for bit: the
 * update splits its elements between the threads and claims each thread's lines of p first
 * (optim.c); neither may change a single element, skip one at a split or past the last whole
 * line, or touch anything outside [0, n). */
#include <math.h>
#include <omp.h>
#include <stdint.h>

#include "test_util.h"

#include "core/rng.h"
#include "nn/adam.h"

/* torch.optim.Adam's step as optim.c writes it, one element at a time */
static void adam_plain(const rf_train_cfg *tc, long t, float *p, float *m, float *v, const float *g, size_t n)
{
    double b1 = tc->beta1, b2 = tc->beta2;
    double bc1 = 1.0 - pow(b1, (double)t), bc2 = 1.0 - pow(b2, (double)t);
    float step = (float)(tc->lr / bc1), sq2 = (float)sqrt(bc2);
    float fb1 = (float)b1, fb2 = (float)b2, wd = tc->weight_decay, eps = tc->eps;
    for (size_t i = 0; i < n; i++) {
        float gi = g[i] + wd * p[i];
        m[i] = fb1 * m[i] + (1 - fb1) * gi;
        v[i] = fb2 * v[i] + (1 - fb2) * gi * gi;
        p[i] -= step * m[i] / (sqrtf(v[i]) / sq2 + eps);
    }
}

/* sizes below and above the parallel threshold (65536), not multiples of a line (16 floats),
 * from an offset that is not a line's start; three steps on one and on two threads */
static void test_adam_dense_matches_plain(void **state)
{
    (void)state;
    const size_t ns[6] = {1, 37, 65536, 65537, 100003, 262151};
    rf_train_cfg tc = {0};
    tc.lr = 0.01f;
    tc.beta1 = 0.9f;
    tc.beta2 = 0.999f;
    tc.eps = 1e-8f;
    tc.weight_decay = 1e-4f;
    rf_rng r;
    rf_rng_seed(&r, 5);
    for (int ni = 0; ni < 6; ni++)
        for (int nt = 1; nt <= 2; nt++)
            for (int off = 0; off < 2; off++) {
                size_t n = ns[ni], pad = 16, tot = n + off + 2 * pad;
                float *p1 = malloc(tot * 4), *m1 = malloc(tot * 4), *v1 = malloc(tot * 4), *p2 = malloc(tot * 4),
                      *m2 = malloc(tot * 4), *v2 = malloc(tot * 4), *g = malloc(tot * 4);
                assert_non_null(p1 && m1 && v1 && p2 && m2 && v2 && g);
                for (size_t i = 0; i < tot; i++) {
                    p1[i] = (float)(rf_rng_uniform(&r) * 2 - 1);
                    m1[i] = v1[i] = 0.0f;
                }
                p1[pad + off] = -0.0f; /* a signed zero keeps its sign through the claim */
                memcpy(p2, p1, tot * 4);
                memcpy(m2, m1, tot * 4);
                memcpy(v2, v1, tot * 4);
                omp_set_num_threads(nt);
                for (long t = 1; t <= 3; t++) {
                    for (size_t i = 0; i < tot; i++) g[i] = (float)(rf_rng_uniform(&r) - 0.5);
                    size_t o = pad + off;
                    adam_plain(&tc, t, p1 + o, m1 + o, v1 + o, g + o, n);
                    rf_adam_dense_(&tc, t, p2 + o, m2 + o, v2 + o, g + o, n);
                }
                assert_memory_equal(p1, p2, tot * 4); /* including the untouched pads */
                assert_memory_equal(m1, m2, tot * 4);
                assert_memory_equal(v1, v2, tot * 4);
                /* the update did something: the last element moved, its moments are not zero */
                assert_true(m2[pad + off + n - 1] != 0.0f && v2[pad + off + n - 1] > 0.0f);
                free(p1), free(m1), free(v1), free(p2), free(m2), free(v2), free(g);
            }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_adam_dense_matches_plain),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
