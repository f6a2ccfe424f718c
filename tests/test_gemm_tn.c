/* test_gemm_tn.c - the weight gradients' GEMM with its K (the batch's rows) split between the
 * threads (rf_gemm_tn, ops.h; rf_gemm_bf16_tn, gemm_bf16.h).
 *
 * Against products summed in double, for shapes around the kernels' tiles and K blocks, odd K
 * (the last pair of rows has one row), alpha and beta (0, 1, other; NaN in C with beta = 0 must
 * not come through), on one, two and three threads and inside a parallel region. The bits:
 * one thread gives rf_gemm's (the GEMM is not split); n threads give exactly the documented
 * scheme, each share's sum from one thread's rf_gemm and the partials added to C in thread
 * order, and the same again on a second call; a shape too small to split gives rf_gemm's. */
#include <omp.h>

#include "test_util.h"

#include "nn/gemm_bf16.h"
#include "nn/ops.h"
#include "resflow/model.h"

static void check(int M, int N, int K, float alpha, float beta, const float *A, int lda, const float *B, int ldb,
                  const float *C0, const float *C, int ldc, double rel)
{
    for (int i = 0; i < M; i++) {
        for (int j = 0; j < N; j++) {
            double r = 0, mag = 0;
            for (int k = 0; k < K; k++) {
                double p = (double)A[(size_t)k * lda + i] * B[(size_t)k * ldb + j];
                r += p;
                mag += fabs(p);
            }
            double c0 = beta == 0.0f ? 0.0 : C0[(size_t)i * ldc + j], want = alpha * r + beta * c0;
            double tol = rel * (fabs(alpha) * mag + fabs(beta * c0)) + 1e-30;
            double got = C[(size_t)i * ldc + j];
            if (!(fabs(got - want) <= tol))
                fail_msg("tn M=%d N=%d K=%d alpha=%g beta=%g: C[%d][%d] = %.9g, want %.9g (tol %.3g)", M, N, K, alpha,
                         beta, i, j, got, want, tol);
        }
        for (int j = N; j < ldc; j++)
            if (C[(size_t)i * ldc + j] != C0[(size_t)i * ldc + j]) fail_msg("tn wrote C[%d][%d] beyond N = %d", i, j, N);
    }
}

/* What rf_gemm_tn computes on n threads, from single-thread rf_gemm calls: C = alpha * (rows of
 * share 0) + beta * C, then each other share's alpha * sum added in order. */
static void scheme(int n, int M, int N, int K, float alpha, float beta, const float *A, int lda, const float *B, int ldb,
                   float *C, int ldc)
{
    int P = (K + 1) / 2, was = omp_get_max_threads();
    omp_set_num_threads(1);
    float *part = malloc((size_t)M * N * sizeof *part);
    assert_non_null(part);
    for (int t = 0; t < n; t++) {
        int k0 = 2 * rf_kpart_pair0(P, t, n), k1 = 2 * rf_kpart_pair0(P, t + 1, n);
        if (k1 > K) k1 = K;
        if (t == 0) {
            rf_gemm(1, 0, M, N, k1, alpha, A, lda, B, ldb, beta, C, ldc);
            continue;
        }
        rf_gemm(1, 0, M, N, k1 - k0, alpha, A + (size_t)k0 * lda, lda, B + (size_t)k0 * ldb, ldb, 0.0f, part, N);
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) C[(size_t)i * ldc + j] += part[(size_t)i * N + j];
    }
    free(part);
    omp_set_num_threads(was);
}

typedef struct {
    int M, N, K;
} shape;

static const shape SHAPES[] = {
    {256, 256, 2048}, /* the towers' layer 0 */
    {128, 64, 2048},  /* a later layer's per-task block */
    {64, 128, 1023},  /* odd K: a last pair of one row */
    {7, 300, 1025},   /* fewer rows of C than a tile */
    {300, 70, 513},   /* K blocks and column tails */
    {33, 1, 4096},    /* one column */
    {130, 48, 777},
    {16, 16, 300},    /* too small to split (under 2^20 multiply-adds): rf_gemm's bits */
};

static void one(const shape *h, float alpha, float beta, uint64_t seed)
{
    int M = h->M, N = h->N, K = h->K, lda = M + 3, ldb = N + 5, ldc = N + 2;
    float *A = test_randm((size_t)K * lda, seed), *B = test_randm((size_t)K * ldb, seed + 1);
    float *C0 = test_randm((size_t)M * ldc, seed + 2), *C = malloc((size_t)M * ldc * sizeof *C);
    float *R = malloc((size_t)M * ldc * sizeof *R), *S = malloc((size_t)M * ldc * sizeof *S);
    assert_true(C && R && S);
    if (beta == 0.0f)
        for (int i = 0; i < M; i++) C0[(size_t)i * ldc] = NAN;
    size_t bytes = (size_t)M * ldc * sizeof *C;
    rf_kpart kp = {0};
    int was = omp_get_max_threads();
    for (int n = 1; n <= 3; n++) {
        omp_set_num_threads(n);
        memcpy(C, C0, bytes);
        rf_gemm_tn(&kp, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        check(M, N, K, alpha, beta, A, lda, B, ldb, C0, C, ldc, 4.0 * (K + 2) * 6e-8);
        int split = rf_kpart_worth((double)M * N * K, K, n);
        memcpy(R, C0, bytes);
        if (split) scheme(n, M, N, K, alpha, beta, A, lda, B, ldb, R, ldc);
        else rf_gemm(1, 0, M, N, K, alpha, A, lda, B, ldb, beta, R, ldc);
        if (memcmp(C, R, bytes)) fail_msg("tn M=%d N=%d K=%d on %d threads: not the bits of its scheme", M, N, K, n);
        memcpy(S, C0, bytes); /* again: the same bits */
        rf_gemm_tn(&kp, M, N, K, alpha, A, lda, B, ldb, beta, S, ldc);
        assert_memory_equal(C, S, bytes);
        if (n == 2) { /* inside a team: one thread, rf_gemm's bits */
            memcpy(S, C0, bytes);
#pragma omp parallel num_threads(2)
            {
#pragma omp single
                rf_gemm_tn(&kp, M, N, K, alpha, A, lda, B, ldb, beta, S, ldc);
            }
            memcpy(R, C0, bytes);
            rf_gemm(1, 0, M, N, K, alpha, A, lda, B, ldb, beta, R, ldc);
            assert_memory_equal(R, S, bytes);
        }
    }
    /* no room (kp NULL): rf_gemm's bits on two threads */
    omp_set_num_threads(2);
    memcpy(S, C0, bytes);
    rf_gemm_tn(NULL, M, N, K, alpha, A, lda, B, ldb, beta, S, ldc);
    memcpy(R, C0, bytes);
    rf_gemm(1, 0, M, N, K, alpha, A, lda, B, ldb, beta, R, ldc);
    assert_memory_equal(R, S, bytes);
    omp_set_num_threads(was);
    rf_kpart_free(&kp);
    free(A);
    free(B);
    free(C0);
    free(C);
    free(R);
    free(S);
}

static void test_fp32(void **state)
{
    (void)state;
    uint64_t seed = 101;
    for (size_t s = 0; s < sizeof SHAPES / sizeof *SHAPES; s++) {
        one(&SHAPES[s], 1.0f, 1.0f, seed++);
        one(&SHAPES[s], 1.0f, 0.0f, seed++);
        one(&SHAPES[s], -0.5f, 0.75f, seed++);
    }
}

/* bf16: against the products of the bf16-rounded operands (fp32 accumulation's tolerance); one
 * thread gives rf_gemm_bf16's bits, n threads the same bits on a second call. */
static void test_bf16(void **state)
{
    (void)state;
    if (!rf_bf16_supported()) {
        fprintf(stderr, "  [skip] no AVX512-BF16 on this CPU\n");
        skip();
    }
    size_t an = 0, bn = 0;
    for (size_t s = 0; s < sizeof SHAPES / sizeof *SHAPES; s++)
        rf_bf16_scratch_need(1, 0, SHAPES[s].M, SHAPES[s].N, SHAPES[s].K, &an, &bn);
    rf_bf16_scratch *sc = rf_bf16_scratch_create(an, bn);
    assert_non_null(sc);
    int was = omp_get_max_threads();
    uint64_t seed = 901;
    for (size_t s = 0; s < sizeof SHAPES / sizeof *SHAPES; s++) {
        int M = SHAPES[s].M, N = SHAPES[s].N, K = SHAPES[s].K, lda = M + 3, ldb = N + 5, ldc = N + 2;
        if (N < RF_BF16_MIN_NK) continue; /* stays fp32 (rf_gemm_prec_tn) */
        float *A = test_randm((size_t)K * lda, seed++), *B = test_randm((size_t)K * ldb, seed++);
        float *Ar = malloc((size_t)K * lda * sizeof *Ar), *Br = malloc((size_t)K * ldb * sizeof *Br);
        float *C0 = test_randm((size_t)M * ldc, seed++), *C = malloc((size_t)M * ldc * sizeof *C);
        float *S = malloc((size_t)M * ldc * sizeof *S);
        assert_true(Ar && Br && C && S);
        for (size_t i = 0; i < (size_t)K * lda; i++) Ar[i] = test_bf16r(A[i]);
        for (size_t i = 0; i < (size_t)K * ldb; i++) Br[i] = test_bf16r(B[i]);
        size_t bytes = (size_t)M * ldc * sizeof *C;
        rf_kpart kp = {0};
        for (int n = 1; n <= 3; n++) {
            omp_set_num_threads(n);
            memcpy(C, C0, bytes);
            assert_int_equal(rf_gemm_bf16_tn(sc, &kp, M, N, K, 0.5f, A, lda, NULL, B, ldb, NULL, 1.0f, C, ldc), 0);
            check(M, N, K, 0.5f, 1.0f, Ar, lda, Br, ldb, C0, C, ldc, 1e-6);
            memcpy(S, C0, bytes);
            if (n == 1) assert_int_equal(rf_gemm_bf16(sc, 1, 0, M, N, K, 0.5f, A, lda, B, ldb, 1.0f, S, ldc), 0);
            else assert_int_equal(rf_gemm_bf16_tn(sc, &kp, M, N, K, 0.5f, A, lda, NULL, B, ldb, NULL, 1.0f, S, ldc), 0);
            if (memcmp(C, S, bytes)) fail_msg("bf16 tn M=%d N=%d K=%d on %d threads: bits differ", M, N, K, n);
        }
        rf_kpart_free(&kp);
        free(A);
        free(B);
        free(Ar);
        free(Br);
        free(C0);
        free(C);
        free(S);
    }
    omp_set_num_threads(was);
    rf_bf16_scratch_free(sc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fp32),
        cmocka_unit_test(test_bf16),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
