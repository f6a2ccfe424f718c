/* ops.c - dense kernels (GEMM: own AVX-512 kernel, gemm_f32.c, else OpenBLAS CBLAS; elementwise
 * loops via OpenMP). */
#include <cblas.h>
#include <immintrin.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "core/bigmem.h"
#include "core/omp.h"
#include "core/simd.h"
#include "nn/gemm_bf16.h"
#include "nn/gemm_f32.h"
#include "nn/ops.h"
#include "nn/transpose16.h"

#define PAR_MIN 65536 /* elements below which a loop stays single-threaded */

/* The own kernel where the CPU has AVX-512 (gemm_f32.c), else OpenBLAS. */
void rf_gemm(int transA, int transB, int M, int N, int K, float alpha, const float *A, int lda,
             const float *Bm, int ldb, float beta, float *C, int ldc)
{
    if (!rf_gemm_f32(transA, transB, M, N, K, alpha, A, lda, Bm, ldb, beta, C, ldc)) return; /* AVX-512 */
    rf_gemm_openblas(transA, transB, M, N, K, alpha, A, lda, Bm, ldb, beta, C, ldc);
}

void rf_gemm_act_bwd(int transB, int M, int N, int K, const float *A, int lda, const float *Bm, int ldb, float *C,
                     int ld, const float *Z, const float *alpha, float *dalpha)
{
    rf_gemm_act act = {Z, ld, alpha, dalpha};
    if (!rf_gemm_f32_act(transB, M, N, K, A, lda, Bm, ldb, C, ld, &act)) return;
    rf_gemm(0, transB, M, N, K, 1.0f, A, lda, Bm, ldb, 0.0f, C, ld);
    rf_act_bwd(Z, C, C, M, N, ld, alpha, dalpha);
}

float *rf_kpart_room(rf_kpart *kp, size_t n)
{
    if (n <= kp->cap) return kp->p;
    free(kp->p);
    kp->cap = 0;
    if ((kp->p = rf_big_aligned_(n * sizeof(float)))) kp->cap = n;
    return kp->p;
}

void rf_kpart_free(rf_kpart *kp)
{
    free(kp->p);
    kp->p = NULL;
    kp->cap = 0;
}

void rf_kpart_reduce(float *C, int ldc, int M, int N, const float *part, int t, int n)
{
    int i0 = (int)((long)M * t / n), i1 = (int)((long)M * (t + 1) / n);
    size_t mn = (size_t)M * N;
    for (int i = i0; i < i1; i++) {
        float *restrict c = C + (size_t)i * ldc;
        for (int u = 1; u < n; u++) {
            const float *restrict p = part + (size_t)(u - 1) * mn + (size_t)i * N;
#pragma omp simd
            for (int j = 0; j < N; j++) c[j] += p[j];
        }
    }
}

float *rf_kpart_team(rf_kpart *kp, int M, int N, int K, int *nt)
{
    int n = omp_in_parallel() ? 1 : omp_get_max_threads();
    float *part = M > 0 && N > 0 && kp && rf_kpart_worth((double)M * N * K, K, n)
                      ? rf_kpart_room(kp, (size_t)(n - 1) * M * N)
                      : NULL;
    if (part) *nt = n;
    return part;
}

void rf_gemm_tn(rf_kpart *kp, int M, int N, int K, float alpha, const float *A, int lda, const float *Bm, int ldb,
                float beta, float *C, int ldc)
{
    int nt = 1;
    float *part = rf_kpart_team(kp, M, N, K, &nt);
    if (!part) {
        rf_gemm(1, 0, M, N, K, alpha, A, lda, Bm, ldb, beta, C, ldc);
        return;
    }
    int P = (K + 1) / 2;
#pragma omp parallel num_threads(nt)
    {
        int t = omp_get_thread_num(), n = omp_get_num_threads();
        int k0 = 2 * rf_kpart_pair0(P, t, n), k1 = 2 * rf_kpart_pair0(P, t + 1, n);
        if (k1 > K) k1 = K;
        /* one thread's GEMM (inside the team rf_gemm does not split) */
        if (t == 0) rf_gemm(1, 0, M, N, k1 - k0, alpha, A, lda, Bm, ldb, beta, C, ldc);
        else rf_gemm(1, 0, M, N, k1 - k0, alpha, A + (size_t)k0 * lda, lda, Bm + (size_t)k0 * ldb, ldb, 0.0f,
                     part + (size_t)(t - 1) * M * N, N);
#pragma omp barrier
        rf_kpart_reduce(C, ldc, M, N, part, t, n);
    }
}

/* OpenBLAS 0.3.21 does not thread these (small, skinny) shapes at all (measured: same time on
 * 1 and 2 threads), while one core reaches ~200 GFLOP/s. So we split the M rows of C across
 * the OpenMP threads ourselves; each block is an independent single-threaded SGEMM (OpenBLAS
 * runs single-threaded inside a parallel region). Rows of op(A) are rows of A, or columns of
 * A when transposed, so weight gradients (A^T B) split the same way, with no reduction. */
void rf_gemm_openblas(int transA, int transB, int M, int N, int K, float alpha, const float *A, int lda,
                      const float *Bm, int ldb, float beta, float *C, int ldc)
{
    if (M == 0 || N == 0) return;
    CBLAS_TRANSPOSE ta = transA ? CblasTrans : CblasNoTrans, tb = transB ? CblasTrans : CblasNoTrans;
    int nt = omp_in_parallel() ? 1 : omp_get_max_threads();
    if (nt > 1 && (double)M * N * K >= (1 << 20) && M >= 32 * nt) {
#pragma omp parallel num_threads(nt)
        {
            int t = omp_get_thread_num(), n = omp_get_num_threads();
            int per = ((M + n - 1) / n + 15) & ~15; /* whole 16-row panels covering M (M / n rounded
                                                      * down left the last row out when M = 32j + 1) */
            int r0 = t * per, r1 = r0 + per < M ? r0 + per : M;
            if (r0 < r1)
                cblas_sgemm(CblasRowMajor, ta, tb, r1 - r0, N, K, alpha,
                            transA ? A + r0 : A + (size_t)r0 * lda, lda, Bm, ldb, beta,
                            C + (size_t)r0 * ldc, ldc);
        }
        return;
    }
    cblas_sgemm(CblasRowMajor, ta, tb, M, N, K, alpha, A, lda, Bm, ldb, beta, C, ldc);
}

void rf_bias_fwd(float *Y, int B, int N, int ld, const float *bias)
{
#pragma omp parallel for schedule(static) if ((long)B * N > PAR_MIN)
    for (int b = 0; b < B; b++) {
        float *restrict y = Y + (size_t)b * ld;
        #pragma omp simd
        for (int j = 0; j < N; j++) y[j] += bias[j];
    }
}

RF_HOT_CLONES
void rf_bias_bwd(const float *dY, int B, int N, int ld, float *dbias)
{
    /* column blocks of 16 per thread, each column summed over the rows in order: the same sums
     * for any thread count */
    int nt = rf_omp_worth((long)B * N, PAR_MIN) && N >= 32 ? omp_get_max_threads() : 1;
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        int t = omp_get_thread_num(), n = omp_get_num_threads();
        int per = ((N + n - 1) / n + 15) & ~15, j0 = t * per, j1 = j0 + per < N ? j0 + per : N;
        for (int b = 0; b < B && j0 < j1; b++) {
            const float *restrict d = dY + (size_t)b * ld;
            float *restrict db = dbias;
            #pragma omp simd
            for (int j = j0; j < j1; j++) db[j] += d[j];
        }
    }
}

void rf_act_fwd(const float *Z, float *A, int B, int N, int ld, const float *alpha)
{
#pragma omp parallel for schedule(static) if ((long)B * N > PAR_MIN)
    for (int b = 0; b < B; b++) {
        const float *restrict z = Z + (size_t)b * ld;
        float *restrict a = A + (size_t)b * ld;
        if (alpha) {
            #pragma omp simd
            for (int j = 0; j < N; j++) {
                float v = z[j];
                a[j] = v > 0 ? v : alpha[j] * v;
            }
        } else {
            #pragma omp simd
            for (int j = 0; j < N; j++) {
                float v = z[j];
                a[j] = v > 0 ? v : 0.0f;
            }
        }
    }
}

RF_HOT_CLONES
void rf_act_bwd(const float *Z, const float *dA, float *dZ, int B, int N, int ld,
                const float *alpha, float *dalpha)
{
    /* The slopes' terms (PReLU) in the same pass, each thread's rows summed in row order into its
     * own sums, which are then added in thread order (as rf_gemm_f32_act's write-back does): one
     * thread gives the row-order sums of before. */
    int nt = rf_omp_worth((long)B * N, PAR_MIN) ? omp_get_max_threads() : 1, used = 1;
    float *sums = alpha && dalpha ? calloc((size_t)nt * N, sizeof *sums) : NULL;
    if (alpha && dalpha && !sums) nt = 1; /* no room: one thread, its terms straight into dalpha */
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        float *restrict sl = !alpha ? NULL : sums ? sums + (size_t)omp_get_thread_num() * N : dalpha;
        if (omp_get_thread_num() == 0) used = omp_get_num_threads();
#pragma omp for schedule(static)
        for (int b = 0; b < B; b++) {
            const float *z = Z + (size_t)b * ld, *da = dA + (size_t)b * ld;
            float *dz = dZ + (size_t)b * ld; /* may alias da: element-wise, read before write */
            if (sl) {
                #pragma omp simd
                for (int j = 0; j < N; j++) {
                    float v = z[j], g = da[j];
                    sl[j] += v > 0 ? 0.0f : g * v;
                    dz[j] = v > 0 ? g : alpha[j] * g;
                }
            } else if (alpha) {
                #pragma omp simd
                for (int j = 0; j < N; j++) {
                    float v = z[j], g = da[j];
                    dz[j] = v > 0 ? g : alpha[j] * g;
                }
            } else {
                #pragma omp simd
                for (int j = 0; j < N; j++) {
                    float v = z[j], g = da[j];
                    dz[j] = v > 0 ? g : 0.0f;
                }
            }
        }
    }
    if (sums) {
        for (int t = 0; t < used; t++)
            for (int j = 0; j < N; j++) dalpha[j] += sums[(size_t)t * N + j];
        free(sums);
    }
}

/* 16 rows' logits of one block (o: row 0's block, rows ld apart; HL a multiple of 16), into S
 * K apart: the 16 sums side by side in a vector, each 16 x 16 piece of the rows transposed so
 * that step j adds column j's 16 products (the scalar loop's mul and add per row). */
__attribute__((target("avx512f"))) static void logits16(const float *o, size_t ld, int HL, const float *w, float bias,
                                                        float *S, int K)
{
    __m512 s = _mm512_set1_ps(bias);
    for (int j0 = 0; j0 < HL; j0 += 16) {
        __m512 r[16];
        for (int i = 0; i < 16; i++) r[i] = _mm512_loadu_ps(o + (size_t)i * ld + j0);
        rf_transpose16(r);
        for (int j = 0; j < 16; j++) s = _mm512_add_ps(s, _mm512_mul_ps(r[j], _mm512_set1_ps(w[j0 + j])));
    }
    float v[16];
    _mm512_storeu_ps(v, s);
    for (int i = 0; i < 16; i++) S[(size_t)i * K] = v[i];
}

/* The logits of nr <= 8 rows of one block, nr independent sums (they overlap instead of waiting on
 * one add chain). */
static void logits_rows(const float *o, size_t ld, int nr, int HL, const float *w, float bias, float *S, int K)
{
    float s[8];
    for (int i = 0; i < nr; i++) s[i] = bias;
    for (int j = 0; j < HL; j++)
        for (int i = 0; i < nr; i++) s[i] += o[(size_t)i * ld + j] * w[j];
    for (int i = 0; i < nr; i++) S[(size_t)i * K] = s[i];
}

/* Blocks of 16 rows on AVX-512 (a bf16 ResFlow step of the reference setup, 2048 rows x 2 tasks
 * x 64: 1.03 -> 0.42 % of its perf samples, ~41 -> ~17 us), else of 8 rows; the rows left over
 * 8 at a time. */
void rf_logits(const float *O, int B, int K, int HL, const float *Wout, const float *bout, float *S)
{
    size_t ld = (size_t)K * HL;
    int v16 = HL % 16 == 0 && __builtin_cpu_supports("avx512f"), rb = v16 ? 16 : 8, nb = B / rb * rb;
#pragma omp parallel for schedule(static) if (rf_omp_worth((long)B * K * HL, 65536))
    for (int b = 0; b < nb; b += rb)
        for (int k = 0; k < K; k++) {
            const float *o = O + (size_t)b * ld + (size_t)k * HL, *w = Wout + (size_t)k * HL;
            if (v16) logits16(o, ld, HL, w, bout[k], S + (size_t)b * K + k, K);
            else logits_rows(o, ld, 8, HL, w, bout[k], S + (size_t)b * K + k, K);
        }
    for (int b = nb; b < B; b += 8)
        for (int k = 0; k < K; k++)
            logits_rows(O + (size_t)b * ld + (size_t)k * HL, ld, B - b < 8 ? B - b : 8, HL, Wout + (size_t)k * HL,
                        bout[k], S + (size_t)b * K + k, K);
}

/* one row: z += bias, a = act(z) (PReLU with slopes alpha, else ReLU) */
static inline __attribute__((always_inline)) void bias_act_row(float *restrict z, float *restrict a,
                                                               const float *restrict bias,
                                                               const float *restrict alpha, int N)
{
    if (alpha) {
        #pragma omp simd
        for (int j = 0; j < N; j++) {
            float v = z[j] + bias[j];
            z[j] = v;
            a[j] = v > 0 ? v : alpha[j] * v;
        }
    } else {
        #pragma omp simd
        for (int j = 0; j < N; j++) {
            float v = z[j] + bias[j];
            z[j] = v;
            a[j] = v > 0 ? v : 0.0f;
        }
    }
}

/* Rows 2q and 2q + 1 of a (B, ld) output into the bf16 layouts pk (n units). */
static inline void put_pair(const struct rf_bf16_act *pk, int n, int B, int q, const float *A, int ld)
{
    rf_bf16_act_put_n(pk, n, B, q, A + (size_t)(2 * q) * ld, 2 * q + 1 < B ? A + (size_t)(2 * q + 1) * ld : NULL);
}

RF_HOT_CLONES
void rf_bias_act_fwd(float *Z, float *A, int B, int N, int ld, const float *bias,
                     const float *alpha, const struct rf_bf16_act *pk, int npk)
{
#pragma omp parallel for schedule(static) if ((long)B * N > PAR_MIN)
    for (int q = 0; q < (B + 1) / 2; q++) { /* two rows at a time, for pk */
        for (int b = 2 * q; b < 2 * q + 2 && b < B; b++)
            bias_act_row(Z + (size_t)b * ld, A + (size_t)b * ld, bias, alpha, N);
        if (pk) put_pair(pk, npk, B, q, A, ld);
    }
}

RF_HOT_CLONES
void rf_bias_act_link_fwd(float *Z, float *A, int B, int K, int H, const float *bias, const float *alpha,
                          const int *order, const int *parent, const struct rf_bf16_act *pk, int npk)
{
    int ld = K * H;
#pragma omp parallel for schedule(static) if ((long)B * ld > PAR_MIN)
    for (int q = 0; q < (B + 1) / 2; q++) { /* two rows at a time, for pk */
        for (int b = 2 * q; b < 2 * q + 2 && b < B; b++) {
            for (int i = 0; i < K; i++) {
                int k = order[i], p = parent[k];
                float *restrict a = A + (size_t)b * ld + (size_t)k * H;
                bias_act_row(Z + (size_t)b * ld + (size_t)k * H, a, bias + (size_t)k * H,
                             alpha ? alpha + (size_t)k * H : NULL, H);
                if (p >= 0) { /* the parent's block of this row is final: it came earlier in order */
                    const float *restrict ap = A + (size_t)b * ld + (size_t)p * H;
                    #pragma omp simd
                    for (int j = 0; j < H; j++) a[j] += ap[j];
                }
            }
        }
        if (pk) put_pair(pk, npk, B, q, A, ld);
    }
}

RF_HOT_CLONES
void rf_act_bias_bwd(const float *Z, const float *dA, float *dZ, int B, int N, int ld,
                     const float *alpha, float *dbias, float *dalpha, const struct rf_bf16_act *pk, int npk)
{
    int team = 1; /* the team's size, for the pairs split between two threads' rows (pk) */
    int nt = rf_omp_worth((long)B * N, PAR_MIN) ? omp_get_max_threads() : 1;
    if (nt > 16) nt = 16;
    /* per-thread column sums (double would be exact-er, float matches the reference's order
     * of magnitude of error; sums of <= B terms) */
    float *part = calloc((size_t)nt * 2 * N, sizeof(float));
    if (!part) nt = 1;
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        int t = omp_get_thread_num(), n = omp_get_num_threads();
        float *restrict sb = part ? part + (size_t)t * 2 * N : NULL, *restrict sa = sb ? sb + N : NULL;
        int r0 = (int)((long)B * t / n), r1 = (int)((long)B * (t + 1) / n);
        if (t == 0) team = n;
        float *restrict db = sb ? sb : dbias, *restrict dal = sa ? sa : dalpha;
        for (int b = r0; b < r1; b++) {
            const float *restrict z = Z + (size_t)b * ld, *restrict da = dA + (size_t)b * ld;
            float *restrict dz = dZ + (size_t)b * ld;
            if (alpha) {
                #pragma omp simd
                for (int j = 0; j < N; j++) {
                    float v = z[j], g = da[j];
                    float d = v > 0 ? g : alpha[j] * g;
                    dal[j] += v > 0 ? 0.0f : g * v;
                    dz[j] = d;
                    db[j] += d;
                }
            } else {
                #pragma omp simd
                for (int j = 0; j < N; j++) {
                    float g = z[j] > 0 ? da[j] : 0.0f;
                    dz[j] = g;
                    db[j] += g;
                }
            }
            /* a pair of rows once both are this thread's; the last row alone when B is odd */
            if (pk && ((b & 1) ? b - 1 >= r0 : b == B - 1)) put_pair(pk, npk, B, b / 2, dZ, ld);
        }
    }
    if (pk) /* the pairs whose two rows two threads wrote */
        for (int t = 1; t < team; t++) {
            int r0 = (int)((long)B * t / team);
            if (r0 & 1) put_pair(pk, npk, B, r0 / 2, dZ, ld);
        }
    if (part) {
        for (int t = 0; t < nt; t++) {
            const float *sb = part + (size_t)t * 2 * N, *sa = sb + N;
            #pragma omp simd
            for (int j = 0; j < N; j++) dbias[j] += sb[j];
            if (alpha && dalpha)
                #pragma omp simd
                for (int j = 0; j < N; j++) dalpha[j] += sa[j];
        }
        free(part);
    }
}

RF_HOT_CLONES
void rf_bn_fwd_train(const float *X, float *Y, int B, int N, int ld, const float *gamma,
                     const float *beta, float *mean, float *rstd, float *run_mean,
                     float *run_var, float momentum, float eps)
{
    /* two-pass mean/variance in double per column block, rows streamed for cache reuse */
    double s[256], q[256];
    for (int j0 = 0; j0 < N; j0 += 256) {
        int nj = N - j0 < 256 ? N - j0 : 256;
        memset(s, 0, sizeof s);
        memset(q, 0, sizeof q);
        for (int b = 0; b < B; b++) {
            const float *x = X + (size_t)b * ld + j0;
            for (int j = 0; j < nj; j++) s[j] += x[j];
        }
        for (int j = 0; j < nj; j++) s[j] /= B;
        for (int b = 0; b < B; b++) {
            const float *x = X + (size_t)b * ld + j0;
            for (int j = 0; j < nj; j++) {
                double d = x[j] - s[j];
                q[j] += d * d;
            }
        }
        for (int j = 0; j < nj; j++) {
            double var = q[j] / B;
            mean[j0 + j] = (float)s[j];
            rstd[j0 + j] = (float)(1.0 / sqrt(var + eps));
            double unb = B > 1 ? q[j] / (B - 1) : var;
            run_mean[j0 + j] = (float)((1 - momentum) * run_mean[j0 + j] + momentum * s[j]);
            run_var[j0 + j] = (float)((1 - momentum) * run_var[j0 + j] + momentum * unb);
        }
    }
#pragma omp parallel for schedule(static) if ((long)B * N > PAR_MIN)
    for (int b = 0; b < B; b++) {
        const float *x = X + (size_t)b * ld;
        float *y = Y + (size_t)b * ld;
        #pragma omp simd
        for (int j = 0; j < N; j++) y[j] = (x[j] - mean[j]) * rstd[j] * gamma[j] + beta[j];
    }
}

void rf_bn_fwd_eval(const float *X, float *Y, int B, int N, int ld, const float *gamma,
                    const float *beta, const float *run_mean, const float *run_var, float eps)
{
#pragma omp parallel for schedule(static) if ((long)B * N > PAR_MIN)
    for (int b = 0; b < B; b++) {
        const float *x = X + (size_t)b * ld;
        float *y = Y + (size_t)b * ld;
        #pragma omp simd
        for (int j = 0; j < N; j++)
            y[j] = (x[j] - run_mean[j]) / sqrtf(run_var[j] + eps) * gamma[j] + beta[j];
    }
}

RF_HOT_CLONES
void rf_bn_bwd(const float *X, const float *dY, float *dX, int B, int N, int ld,
               const float *gamma, const float *mean, const float *rstd, float *dgamma,
               float *dbeta)
{
    /* dxhat = dy*gamma; dx = rstd/B * (B*dxhat - sum(dxhat) - xhat*sum(dxhat*xhat)) */
    double sd[256], sdx[256];
    for (int j0 = 0; j0 < N; j0 += 256) {
        int nj = N - j0 < 256 ? N - j0 : 256;
        memset(sd, 0, sizeof sd);
        memset(sdx, 0, sizeof sdx);
        for (int b = 0; b < B; b++) {
            const float *x = X + (size_t)b * ld + j0, *dy = dY + (size_t)b * ld + j0;
            for (int j = 0; j < nj; j++) {
                float xh = (x[j] - mean[j0 + j]) * rstd[j0 + j];
                sd[j] += dy[j];
                sdx[j] += (double)dy[j] * xh;
            }
        }
        for (int j = 0; j < nj; j++) {
            dgamma[j0 + j] += (float)sdx[j];
            dbeta[j0 + j] += (float)sd[j];
        }
        for (int b = 0; b < B; b++) {
            const float *x = X + (size_t)b * ld + j0, *dy = dY + (size_t)b * ld + j0;
            float *dx = dX + (size_t)b * ld + j0;
            for (int j = 0; j < nj; j++) {
                float r = rstd[j0 + j];
                float xh = (x[j] - mean[j0 + j]) * r;
                float g = gamma[j0 + j];
                dx[j] = g * r * (dy[j] - (float)(sd[j] / B) - xh * (float)(sdx[j] / B));
            }
        }
    }
}

double rf_wbce_logit(float s, float t, float w, float *ds)
{
    /* loss = (1-t) s + (1 + (w-1) t) (log(1+e^{-|s|}) + max(-s, 0)) */
    double sd = s;
    double lw = 1.0 + (w - 1.0) * t;
    double e = exp(-fabs(sd)); /* = exp(-sd) for s >= 0, exp(sd) below: one call for all three */
    double loss = (1.0 - t) * sd + lw * (log1p(e) + (sd < 0 ? -sd : 0.0));
    double sig = sd >= 0 ? 1.0 / (1.0 + e) : e / (1.0 + e);
    *ds = (float)(sig * (w * t + 1.0 - t) - w * t);
    return loss;
}
