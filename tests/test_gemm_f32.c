/* test_gemm_f32.c - the own fp32 GEMM (src/nn/gemm_f32.c, rf_gemm on AVX-512 CPUs).
 *
 * Against products summed in double for every transpose, odd and strided shapes around the
 * micro-kernel (6 x 64) and its K block (256), alpha and beta (0, 1, other), K = 0: within fp32
 * accumulation's error bound (K * 2^-24 of sum |a b|, with margin); nothing written beyond N in
 * a wider C; on one and two threads and inside a parallel region, with the same bits (a row's
 * sums do not depend on the split), and the own kernel bit for bit against a scalar model of its
 * arithmetic (fused multiply-adds in order per K block), the narrow products' paths included.
 * rf_gemm's OpenBLAS path (CPUs without AVX-512F, or
 * RESFLOW_GEMM=openblas) is checked the same way on its own. */
#include <omp.h>

#include "test_util.h"

#include "nn/gemm_f32.h"
#include "nn/ops.h"

static void check(int ta, int tb, int M, int N, int K, float alpha, float beta, const float *A, int lda, const float *B,
                  int ldb, const float *C0, const float *C, int ldc)
{
    for (int i = 0; i < M; i++) {
        for (int j = 0; j < N; j++) {
            double r = 0, mag = 0;
            for (int k = 0; k < K; k++) {
                double p = (double)(ta ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k]) *
                           (tb ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j]);
                r += p;
                mag += fabs(p);
            }
            double c0 = C0[(size_t)i * ldc + j], want = alpha * r + (beta == 0.0f ? 0.0 : beta * c0);
            double tol = 4.0 * (K + 2) * 6e-8 * (fabs(alpha) * mag + fabs(beta * c0)) + 1e-30;
            double got = C[(size_t)i * ldc + j];
            if (!(fabs(got - want) <= tol))
                fail_msg("gemm ta=%d tb=%d M=%d N=%d K=%d alpha=%g beta=%g: C[%d][%d] = %.9g, want %.9g (tol %.3g)", ta,
                         tb, M, N, K, alpha, beta, i, j, got, want, tol);
        }
        for (int j = N; j < ldc; j++)
            if (C[(size_t)i * ldc + j] != C0[(size_t)i * ldc + j]) fail_msg("gemm wrote C[%d][%d] beyond N = %d", i, j, N);
    }
}

typedef void (*gemm_fn)(int, int, int, int, int, float, const float *, int, const float *, int, float, float *, int);

/* One shape: gemm on 1 and 2 threads and inside a parallel region, checked, and compared when it
 * is the own kernel (rf_gemm on AVX-512: a row's sums do not depend on the split). */
static void run(gemm_fn gemm, int ta, int tb, int M, int N, int K, float alpha, float beta, uint64_t seed)
{
    int lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 5, ldc = N + 2;
    float *A = test_randm((size_t)(ta ? K : M) * lda, seed), *B = test_randm((size_t)(tb ? N : K) * ldb, seed + 1);
    float *C0 = test_randm((size_t)M * ldc, seed + 2), *C[3];
    if (beta == 0.0f) /* beta = 0: C is not read, NaNs there must not come through */
        for (int i = 0; i < M; i++) C0[(size_t)i * ldc] = NAN;
    for (int v = 0; v < 3; v++) {
        C[v] = malloc((size_t)M * ldc * sizeof *C[v]);
        assert_non_null(C[v]);
        memcpy(C[v], C0, (size_t)M * ldc * sizeof *C[v]);
    }
    omp_set_num_threads(1);
    gemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C[0], ldc);
    omp_set_num_threads(2);
    gemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C[1], ldc);
#pragma omp parallel num_threads(2)
    {
#pragma omp single
        gemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C[2], ldc);
    }
    if (beta == 0.0f)
        for (int i = 0; i < M; i++) C0[(size_t)i * ldc] = 0.0f; /* for the check: any value times 0 */
    for (int v = 0; v < 3; v++) check(ta, tb, M, N, K, alpha, beta, A, lda, B, ldb, C0, C[v], ldc);
    if (gemm == rf_gemm && rf_gemm_f32_on()) { /* OpenBLAS may block a split's rows otherwise */
        assert_memory_equal(C[0], C[1], (size_t)M * ldc * sizeof *C[0]);
        assert_memory_equal(C[0], C[2], (size_t)M * ldc * sizeof *C[0]);
    }
    free(A);
    free(B);
    free(C0);
    for (int v = 0; v < 3; v++) free(C[v]);
}

static const int SHAPES[][3] = {
    /* M, N, K: around the micro-kernel (6 x 64), the K block (256) and the 16-column vectors */
    {1, 1, 1},     {7, 17, 3},    {13, 65, 33},  {31, 100, 257}, {6, 64, 2},    {64, 16, 255},  {97, 130, 64},
    {300, 70, 513}, {2, 300, 1},  {257, 33, 300}, {48, 200, 20}, {190, 48, 130}, {600, 128, 256}, {12, 64, 600}, {131, 256, 300},
    /* narrow: a gate's (N = the experts) and a logit layer's (N = 1) products and weight gradients take their own paths */
    {256, 4, 700}, {97, 3, 300}, {300, 1, 513}, {16, 2, 40}, {113, 4, 256}, {17, 1, 5},
};

static void shapes(gemm_fn gemm)
{
    uint64_t seed = 11;
    for (size_t s = 0; s < sizeof SHAPES / sizeof *SHAPES; s++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++) {
                const int *h = SHAPES[s];
                run(gemm, ta, tb, h[0], h[1], h[2], 1.0f, 0.0f, seed++);
                run(gemm, ta, tb, h[0], h[1], h[2], 1.0f, 1.0f, seed++);
                run(gemm, ta, tb, h[0], h[1], h[2], -0.5f, 0.75f, seed++);
            }
}

static void test_shapes(void **state)
{
    (void)state;
    fprintf(stderr, "  rf_gemm: %s\n", rf_gemm_f32_on() ? "own AVX-512 kernel" : "OpenBLAS");
    shapes(rf_gemm);
}

/* the OpenBLAS path on its own (the one an AVX2 CPU takes): its row split once left the last
 * row of M = 32j + 1 out on two threads (M = 257 here) */
static void test_shapes_openblas(void **state)
{
    (void)state;
    shapes(rf_gemm_openblas);
}

/* The kernels' arithmetic, element by element: over each K block of 256 from the first k, a sum
 * from zero with one fused multiply-add per k in order; then alpha * sum (when alpha is not 1),
 * + C (beta 1, or any block after the first) or + beta * C fused (other betas but 0). */
static float model_elem(int ta, int tb, int i, int j, int K, float alpha, float beta, const float *A, int lda,
                        const float *B, int ldb, float c)
{
    for (int k0 = 0; k0 < K; k0 += 256) {
        float s = 0.0f, bt = k0 == 0 ? beta : 1.0f;
        for (int k = k0; k < K && k < k0 + 256; k++)
            s = fmaf(ta ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k], tb ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j], s);
        if (alpha != 1.0f) s *= alpha;
        if (bt == 1.0f) s += c;
        else if (bt != 0.0f) s = fmaf(bt, c, s);
        c = s;
    }
    return c;
}

/* The own kernel's results are that arithmetic's bit for bit: the 64-column panels and the narrow
 * products' paths (N <= 4: a gate's, a logit layer's, and their weight gradients) alike (the same bits whichever path a shape takes), on 1 and 2 threads. */
static void test_exact_arithmetic(void **state)
{
    (void)state;
    if (!rf_gemm_f32_on()) skip();
    static const int SH[][4] = {/* ta, M, N, K */
                                {1, 256, 4, 700}, {1, 97, 3, 513}, {1, 300, 1, 260}, {1, 16, 2, 40}, {1, 40, 5, 300},
                                {1, 64, 20, 257}, {0, 50, 4, 300}, {0, 13, 70, 513}, {1, 33, 64, 100},
                                {0, 97, 3, 513}, {0, 130, 1, 64}, {0, 17, 2, 17}, {0, 64, 4, 256}, {0, 16, 1, 1}};
    uint64_t seed = 101;
    for (size_t h = 0; h < sizeof SH / sizeof *SH; h++)
        for (int v = 0; v < 6; v++) { /* B as stored (tb 0) or transposed (tb 1: the panel kernel's packed B^T) */
            int ta = SH[h][0], tb = v / 3, M = SH[h][1], N = SH[h][2], K = SH[h][3];
            int lda = (ta ? M : K) + 1, ldb = (tb ? K : N) + 3, ldc = N + 1;
            float alpha = v % 3 == 2 ? -0.5f : 1.0f, beta = v % 3 == 0 ? 0.0f : v % 3 == 1 ? 1.0f : 0.75f;
            float *A = test_randm((size_t)(ta ? K : M) * lda, seed++), *B = test_randm((size_t)(tb ? N : K) * ldb, seed++);
            float *C0 = test_randm((size_t)M * ldc, seed++), *C = malloc((size_t)M * ldc * sizeof *C);
            assert_non_null(C);
            for (int nt = 1; nt <= 2; nt++) {
                memcpy(C, C0, (size_t)M * ldc * sizeof *C);
                omp_set_num_threads(nt);
                rf_gemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
                for (int i = 0; i < M; i++)
                    for (int j = 0; j < N; j++) {
                        float want = model_elem(ta, tb, i, j, K, alpha, beta, A, lda, B, ldb, C0[(size_t)i * ldc + j]);
                        float got = C[(size_t)i * ldc + j];
                        if (memcmp(&got, &want, sizeof got))
                            fail_msg("gemm ta=%d tb=%d M=%d N=%d K=%d alpha=%g beta=%g, %d threads: C[%d][%d] = %.9g, "
                                     "the kernels' arithmetic gives %.9g",
                                     ta, tb, M, N, K, alpha, beta, nt, i, j, got, want);
                    }
            }
            free(A), free(B), free(C0), free(C);
        }
}

/* rf_gemm_f32_act: the activation's backward in the write-back. The gradient C bit for bit the
 * GEMM followed by rf_act_bwd (ReLU, PReLU), on one and two threads, around the tile (6 x 64,
 * partial vectors), the K block (several of them) and with padded rows; the slopes' gradient on
 * one thread bit for bit the sum of each row's term in row order added to dalpha, on two threads
 * within rounding of rf_act_bwd's. Zero, negative and NaN inputs to the activation included. */
static void test_act_bwd(void **state)
{
    (void)state;
    if (!rf_gemm_f32_on()) skip();
    static const int SH[][3] = {{50, 70, 130}, {13, 64, 513}, {97, 200, 64}, {128, 5, 300}, {7, 16, 3}, {300, 257, 256}};
    uint64_t seed = 900;
    for (size_t h = 0; h < sizeof SH / sizeof *SH; h++)
        for (int v = 0; v < 4; v++) { /* ReLU / PReLU, B as stored / transposed */
            int M = SH[h][0], N = SH[h][1], K = SH[h][2], prelu = v & 1, tb = v >> 1;
            int lda = K + 2, ldb = (tb ? K : N) + 1, ld = N + 3;
            float *A = test_randm((size_t)M * lda, seed++), *B = test_randm((size_t)(tb ? N : K) * ldb, seed++);
            float *Z = test_randm((size_t)M * ld, seed++), *al = test_randm((size_t)N, seed++);
            float *dal0 = test_randm((size_t)N, seed++), *dal = malloc(N * sizeof *dal), *dref = malloc(N * sizeof *dref);
            float *C = malloc((size_t)M * ld * sizeof *C), *R = malloc((size_t)M * ld * sizeof *R);
            assert_true(dal && dref && C && R);
            Z[0] = 0.0f, Z[ld + 1] = -0.0f, Z[2] = NAN; /* not > 0: the slope's side */
            for (int nt = 1; nt <= 2; nt++) {
                omp_set_num_threads(nt);
                for (size_t i = 0; i < (size_t)M * ld; i++) C[i] = R[i] = 7.0f; /* padding must stay */
                memcpy(dal, dal0, N * sizeof *dal);
                memcpy(dref, dal0, N * sizeof *dref);
                rf_gemm_act act = {Z, ld, prelu ? al : NULL, prelu ? dal : NULL};
                if (N <= 4) { /* the narrow path is not fused */
                    assert_int_equal(rf_gemm_f32_act(tb, M, N, K, A, lda, B, ldb, C, ld, &act), -1);
                    continue;
                }
                assert_int_equal(rf_gemm_f32_act(tb, M, N, K, A, lda, B, ldb, C, ld, &act), 0);
                rf_gemm(0, tb, M, N, K, 1.0f, A, lda, B, ldb, 0.0f, R, ld);
                float *s = calloc(N, sizeof *s);
                assert_non_null(s);
                for (int i = 0; i < M; i++) /* one thread's order: the rows in order, then into dalpha */
                    for (int j = 0; j < N; j++) {
                        float z = Z[(size_t)i * ld + j];
                        s[j] += z > 0 ? 0.0f : R[(size_t)i * ld + j] * z;
                    }
                rf_act_bwd(Z, R, R, M, N, ld, prelu ? al : NULL, prelu ? dref : NULL);
                for (int i = 0; i < M; i++)
                    for (int j = 0; j < ld; j++)
                        if (memcmp(&C[(size_t)i * ld + j], &R[(size_t)i * ld + j], sizeof(float)))
                            fail_msg("act bwd M=%d N=%d K=%d prelu=%d tb=%d, %d threads: C[%d][%d] = %.9g, want %.9g", M,
                                     N, K, prelu, tb, nt, i, j, C[(size_t)i * ld + j], R[(size_t)i * ld + j]);
                for (int j = 0; prelu && j < N; j++) {
                    float one = dal0[j] + s[j];
                    if (nt == 1 && memcmp(&dal[j], &one, sizeof one))
                        fail_msg("act bwd M=%d N=%d K=%d: dalpha[%d] = %.9g, want %.9g", M, N, K, j, dal[j], one);
                    if (!(isnan(dal[j]) && isnan(dref[j])) && !(fabsf(dal[j] - dref[j]) <= 1e-5f * (1.0f + fabsf(dref[j]))))
                        fail_msg("act bwd M=%d N=%d K=%d, %d threads: dalpha[%d] = %.9g, rf_act_bwd %.9g", M, N, K, nt,
                                 j, dal[j], dref[j]);
                }
                free(s);
            }
            free(A), free(B), free(Z), free(al), free(dal0), free(dal), free(dref), free(C), free(R);
        }
}

/* K = 0: C = beta * C (0 when beta is 0, whatever C held) */
static void test_k_zero(void **state)
{
    (void)state;
    float A[1] = {1}, B[1] = {1}, C[6] = {1, 2, 3, NAN, 5, 6};
    rf_gemm(0, 0, 2, 3, 0, 1.0f, A, 1, B, 3, 0.5f, C, 3);
    assert_true(C[0] == 0.5f && C[2] == 1.5f && isnan(C[3]));
    rf_gemm(0, 0, 2, 3, 0, 1.0f, A, 1, B, 3, 0.0f, C, 3);
    for (int i = 0; i < 6; i++) assert_true(C[i] == 0.0f);
}

/* the switch: RESFLOW_GEMM=openblas is read once per process, so only its reading is checked
 * here (the CLI test runs a whole process with it) */
static void test_switch(void **state)
{
    (void)state;
    float A[4] = {1, 2, 3, 4}, B[4] = {1, 0, 0, 1}, C[4];
    int r = rf_gemm_f32(0, 0, 2, 2, 2, 1.0f, A, 2, B, 2, 0.0f, C, 2);
    assert_int_equal(r, rf_gemm_f32_on() ? 0 : -1);
    if (!r) assert_true(C[0] == 1 && C[1] == 2 && C[2] == 3 && C[3] == 4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shapes),
        cmocka_unit_test(test_shapes_openblas),
        cmocka_unit_test(test_exact_arithmetic),
        cmocka_unit_test(test_act_bwd),
        cmocka_unit_test(test_k_zero),
        cmocka_unit_test(test_switch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
