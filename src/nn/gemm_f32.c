/* gemm_f32.c - the fp32 GEMM on AVX-512 (see gemm_f32.h).
 *
 * Measured against OpenBLAS 0.3.21 (its Cooperlake kernels) on the training step's shapes, one
 * thread (docs/performance.md, "Own fp32 GEMM"): OpenBLAS spends 15-20 % of a GEMM packing
 * both operands and scaling C (sgemm_beta) for shapes this small; here op(A) is never packed:
 *
 * - op(A) is read in place: the micro-kernel broadcasts A(i, k) from A[i * lda + k] (A not
 *   transposed: six row streams) or A[k * lda + i] (transposed: the six values of a step are
 *   adjacent), so a weight gradient x^T dZ reads x as it is stored; each k step of such a
 *   transposed A is a new line of A, lda floats on, a page apart for a layer 1024 wide, which
 *   the hardware prefetchers do not follow: the kernel fetches the line PFA steps ahead itself
 *   (an expert layer's weight gradient, 256 x 128 x 2048 with lda = 1024, one thread: 64-73 ->
 *   86-94 GFLOP/s; the towers' shapes, whose x is in cache, unchanged);
 * - op(B) is copied per K block and 64-column panel (transposed when it is B^T, an input
 *   gradient's W^T) into a 64 KiB buffer on the thread's stack, zero past N: reading B in place
 *   was as fast for the towers, but a 1024-wide expert weight (4 KiB row stride) then lost its
 *   L1 sets.
 *
 * Micro-kernel: 6 x 64 of C in 24 zmm accumulators, one broadcast of A per row and four loads
 * of B per k step, 24 FMAs; K blocked by KC so a panel's slice of B (KC x 64 floats, 64 KiB)
 * stays in L2 while it is swept down the thread's rows. Each C(i, j) is the sum over k in
 * order, one FMA per k, from zero, per K block: alpha * sum + beta * C on the first block, + C
 * on the next, so a row's result depends neither on the thread count nor on the other rows.
 * Rows of C are split over the OpenMP team in whole 6-row blocks, as rf_gemm split them.
 *
 * Products with at most 4 columns (a gate's, N = the experts; a logit layer's, N = 1; and their
 * weight gradients) would use 1 to 4 lanes of each panel vector: they take kernels whose vectors
 * run down C's rows instead (skinny_nn, skinny_tn below), with the same arithmetic per element.
 */
#include <math.h>
#include <omp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <immintrin.h>

#include "core/omp.h"
#include "nn/epi.h"
#include "nn/gemm_f32.h"
#include "nn/transpose16.h"

#define MR 6    /* rows of C per micro-kernel */
#define NRV 4   /* 16-column vectors of C per micro-kernel */
#define NB 64   /* columns of a panel (NRV * 16) */
#define KC 256  /* K per block */
#define PFA 16  /* op(A) = A^T: fetch row k + PFA of A while at k (below) */

#define F32_TARGET __attribute__((target("avx512f,fma")))

/* The choice, made once per process (like an ifunc's): never written after decide(). */
static int use_own;
static pthread_once_t use_once = PTHREAD_ONCE_INIT;

static void decide(void)
{
    const char *e = getenv("RESFLOW_GEMM");
    __builtin_cpu_init();
    use_own = !(e && !strcmp(e, "openblas")) && __builtin_cpu_supports("avx512f");
}

int rf_gemm_f32_on(void)
{
    pthread_once(&use_once, decide);
    return use_own;
}

/* C[0..mr)[0..16*nr) (the last vector masked by last) = alpha * sum_k A(i,k) B(k) + beta * C,
 * k in [0, kn); A(i, k) at a[i * lda + k] (ta = 0) or a[k * lda + i] (ta = 1), B's step k at
 * b + k * bs. Only the last rows of C (M not a multiple of 6) take this loop: GCC 12 keeps its
 * accumulator array on the stack (35-40 GFLOP/s), which is why the six-row tiles (KERN6 below)
 * are written out. */
F32_TARGET static inline __attribute__((always_inline)) void kern(int ta, int mr, int nr, const float *a, size_t lda,
                                                                  const float *b, size_t bs, int kn, float *C, int ldc,
                                                                  const float *ab, __mmask16 last)
{
    size_t ars = ta ? 1 : lda, aks = ta ? lda : 1;
    __m512 acc[MR][NRV];
    for (int i = 0; i < mr; i++)
        for (int j = 0; j < nr; j++) acc[i][j] = _mm512_setzero_ps();
    for (int k = 0; k < kn; k++) {
        __m512 bv[NRV];
        for (int j = 0; j < nr - 1; j++) bv[j] = _mm512_loadu_ps(b + (size_t)k * bs + 16 * j);
        bv[nr - 1] = _mm512_maskz_loadu_ps(last, b + (size_t)k * bs + 16 * (nr - 1));
        for (int i = 0; i < mr; i++) {
            __m512 av = _mm512_set1_ps(a[i * ars + k * aks]);
            for (int j = 0; j < nr; j++) acc[i][j] = _mm512_fmadd_ps(av, bv[j], acc[i][j]);
        }
    }
    float alpha = ab[0], beta = ab[1]; /* read after the loop: no register held through it */
    for (int i = 0; i < mr; i++)
        for (int j = 0; j < nr; j++) {
            float *c = C + (size_t)i * ldc + 16 * j;
            __mmask16 m = j == nr - 1 ? last : (__mmask16)0xffff;
            _mm512_mask_storeu_ps(c, m, rf_wb_ab(acc[i][j], c, m, alpha, beta));
        }
}

/* Six rows of C and n vectors (n = 4 for a whole 64-column panel; fewer, or the last one partial,
 * for a narrower panel: a gate's 4 columns, a logit's 1, a layer width not a multiple of 64), the
 * accumulators named and the FMAs in inline assembly: GCC 12 keeps kern()'s accumulator array on
 * the stack in the loop, two memory moves per FMA (35-40 GFLOP/s instead of 100), as in
 * gemm_int8.c. The same FMAs in the same order as kern(); the last vector loaded and stored
 * under its mask. */
#define FMA(acc, a, b) __asm__("vfmadd231ps %2, %1, %0" : "+v"(acc) : "v"(a), "v"(b))
#define ACC4(i) __m512 c##i##0 = _mm512_setzero_ps(), c##i##1 = c##i##0, c##i##2 = c##i##0, c##i##3 = c##i##0;
#define FMAN(n, i, j, b) if ((n) > (j)) FMA(c##i##j, av, b);
#define ROWN(n, i)                                                                                 \
    {                                                                                              \
        __m512 av = _mm512_set1_ps(a[(i) * ars + k * aks]);                                        \
        FMAN(n, i, 0, b0) FMAN(n, i, 1, b1) FMAN(n, i, 2, b2) FMAN(n, i, 3, b3)                    \
    }
#define OUTN(n, i, j)                                                                              \
    if ((n) > (j)) {                                                                               \
        float *c_ = C + (size_t)(i) * ldc + 16 * (j);                                              \
        __mmask16 m_ = (j) == (n) - 1 ? last : (__mmask16)0xffff;                                  \
        _mm512_mask_storeu_ps(c_, m_, rf_wb_ab(c##i##j, c_, m_, alpha, beta));                     \
    }
#define OUTROWN(n, i) OUTN(n, i, 0) OUTN(n, i, 1) OUTN(n, i, 2) OUTN(n, i, 3)
#define LOADN(n, j) ((j) < (n) - 1 ? _mm512_loadu_ps(bk + 16 * (j)) : _mm512_maskz_loadu_ps(last, bk + 16 * (j)))
#define KERN6(t, n)                                                                               \
    F32_TARGET static void kern6_##t##_##n(const float *a, size_t lda, const float *b, size_t bs, int kn, \
                                                 float *C, int ldc, const float *ab, __mmask16 last) \
    {                                                                                              \
        size_t ars = (t) ? 1 : lda, aks = (t) ? lda : 1;                                           \
        ACC4(0) ACC4(1) ACC4(2) ACC4(3) ACC4(4) ACC4(5)                                            \
        for (int k = 0; k < kn; k++) {                                                             \
            const float *bk = b + (size_t)k * bs;                                                  \
            if (t) __builtin_prefetch(a + (k + PFA) * aks); /* A^T: one new line per k, see PFA */ \
            __m512 b0 = LOADN(n, 0), b1 = b0, b2 = b0, b3 = b0;                                    \
            if ((n) > 1) b1 = LOADN(n, 1);                                                         \
            if ((n) > 2) b2 = LOADN(n, 2);                                                         \
            if ((n) > 3) b3 = LOADN(n, 3);                                                         \
            ROWN(n, 0) ROWN(n, 1) ROWN(n, 2) ROWN(n, 3) ROWN(n, 4) ROWN(n, 5)                      \
        }                                                                                          \
        float alpha = ab[0], beta = ab[1];                                                         \
        OUTROWN(n, 0) OUTROWN(n, 1) OUTROWN(n, 2) OUTROWN(n, 3) OUTROWN(n, 4) OUTROWN(n, 5)        \
    }
KERN6(0, 1) KERN6(0, 2) KERN6(0, 3) KERN6(0, 4)
KERN6(1, 1) KERN6(1, 2) KERN6(1, 3) KERN6(1, 4)
typedef void (*kern6_fn)(const float *, size_t, const float *, size_t, int, float *, int, const float *, __mmask16);
static const kern6_fn KERN6_TAB[2][NRV] = {{kern6_0_1, kern6_0_2, kern6_0_3, kern6_0_4},
                                             {kern6_1_1, kern6_1_2, kern6_1_3, kern6_1_4}};

typedef void (*kern_fn)(const float *, size_t, const float *, size_t, int, float *, int, const float *, __mmask16);
#define KERN(t, r, n)                                                                                          \
    F32_TARGET static void kern_##t##_##r##_##n(const float *a, size_t lda, const float *b, size_t bs, int kn,  \
                                                float *C, int ldc, const float *ab, __mmask16 last)             \
    {                                                                                                            \
        kern(t, r, n, a, lda, b, bs, kn, C, ldc, ab, last);                                                      \
    }
#define KERNS(t, r) KERN(t, r, 1) KERN(t, r, 2) KERN(t, r, 3) KERN(t, r, 4)
#define KERNT(t) KERNS(t, 1) KERNS(t, 2) KERNS(t, 3) KERNS(t, 4) KERNS(t, 5) /* 6 rows: KERN6 */
KERNT(0) KERNT(1)
#define ROW(t, r) {kern_##t##_##r##_1, kern_##t##_##r##_2, kern_##t##_##r##_3, kern_##t##_##r##_4}
#define TAB(t) {ROW(t, 1), ROW(t, 2), ROW(t, 3), ROW(t, 4), ROW(t, 5)}
static const kern_fn KERN_TAB[2][MR - 1][NRV] = {TAB(0), TAB(1)};

/* Columns [j0, j0 + w) and K [k0, k0 + kn) of op(B) = B^T (B stored N x K) into d (kn x NB),
 * columns past N zero. */
static void pack_t(const float *B, int ldb, int N, int j0, int w, int k0, int kn, float *d)
{
    for (int jj = 0; jj < w; jj++) {
        int j = j0 + jj;
        if (j >= N) {
            for (int k = 0; k < kn; k++) d[(size_t)k * NB + jj] = 0.0f;
            continue;
        }
        const float *s = B + (size_t)j * ldb + k0;
        for (int k = 0; k < kn; k++) d[(size_t)k * NB + jj] = s[k];
    }
}

/* The same slice of op(B) = B (B stored K x N), columns past N zero. */
F32_TARGET static void pack_n(const float *B, int ldb, int N, int j0, int w, int k0, int kn, float *d)
{
    for (int k = 0; k < kn; k++) {
        const float *s = B + (size_t)(k0 + k) * ldb + j0;
        for (int jj = 0; jj < w; jj += 16)
            _mm512_storeu_ps(d + (size_t)k * NB + jj, _mm512_maskz_loadu_ps(rf_mask16(N - j0 - jj), s + jj));
    }
}

/* A weight gradient with at most SK_N columns (a gate's, N = the experts; a logit layer's, N = 1):
 * C(M, N) = alpha * A^T B + beta * C, A stored K x M, B K x N, rows [i0, i1) of C. The panel
 * kernel would fill 1 to 4 of a 64-column panel's lanes; here the vectors run down C's rows, a row
 * of A being contiguous over them: acc(i..i+15, j) += A(k, i..i+15) * B(k, j), up to SK_V vectors
 * of rows and the N columns at a time. Per element the same FMAs in the same order as the panel
 * kernel (K blocks of KC from the first k, each summed from zero; alpha * sum + beta * C after the
 * first, + C after the next, as rf_wb_ab in scalar form), so the same bits. */
#define SK_N 4 /* columns at most */
#define SK_V 6 /* 16-row vectors of C per pass: 6 x 4 accumulators */
#define SKACC(v) __m512 s##v##0 = _mm512_setzero_ps(), s##v##1 = s##v##0, s##v##2 = s##v##0, s##v##3 = s##v##0;
#define SKB(bk) /* B(k, 0..n) broadcast */                                                    \
    __m512 b0 = _mm512_set1_ps((bk)[0]), b1 = b0, b2 = b0, b3 = b0;                                \
    if (n > 1) b1 = _mm512_set1_ps((bk)[1]);                                                       \
    if (n > 2) b2 = _mm512_set1_ps((bk)[2]);                                                       \
    if (n > 3) b3 = _mm512_set1_ps((bk)[3]);
#define SKFMA(v, x) /* vector v's n columns += x * B(k, j) */                                      \
    {                                                                                              \
        FMA(s##v##0, x, b0);                                                                       \
        if (n > 1) FMA(s##v##1, x, b1);                                                            \
        if (n > 2) FMA(s##v##2, x, b2);                                                            \
        if (n > 3) FMA(s##v##3, x, b3);                                                            \
    }
#define SKROW(nv, v)                                                                               \
    if ((nv) > (v)) {                                                                              \
        __m512 av = (v) == (nv) - 1 ? _mm512_maskz_loadu_ps(last, ak + 16 * (v)) : _mm512_loadu_ps(ak + 16 * (v)); \
        SKFMA(v, av)                                                                               \
    }
#define SKPUT(nv, v)                                                                               \
    if ((nv) > (v)) {                                                                              \
        _mm512_store_ps(t[0] + 16 * (v), s##v##0), _mm512_store_ps(t[1] + 16 * (v), s##v##1);     \
        _mm512_store_ps(t[2] + 16 * (v), s##v##2), _mm512_store_ps(t[3] + 16 * (v), s##v##3);     \
    }
#define SKERN(nv)                                                                                  \
    F32_TARGET static void skern_##nv(const float *a, size_t lda, const float *b, size_t ldb, int n, int kn, \
                                      __mmask16 last, float t[SK_N][16 * SK_V])                     \
    {                                                                                              \
        SKACC(0) SKACC(1) SKACC(2) SKACC(3) SKACC(4) SKACC(5)                                      \
        for (int k = 0; k < kn; k++) {                                                             \
            const float *ak = a + (size_t)k * lda;                                                 \
            SKB(b + (size_t)k * ldb)                                                               \
            SKROW(nv, 0) SKROW(nv, 1) SKROW(nv, 2) SKROW(nv, 3) SKROW(nv, 4) SKROW(nv, 5)          \
        }                                                                                          \
        SKPUT(nv, 0) SKPUT(nv, 1) SKPUT(nv, 2) SKPUT(nv, 3) SKPUT(nv, 4) SKPUT(nv, 5)              \
    }
SKERN(1) SKERN(2) SKERN(3) SKERN(4) SKERN(5) SKERN(6)
typedef void (*skern_fn)(const float *, size_t, const float *, size_t, int, int, __mmask16, float[SK_N][16 * SK_V]);
static const skern_fn SKERN_TAB[SK_V] = {skern_1, skern_2, skern_3, skern_4, skern_5, skern_6};

/* rf_wb_ab, one element at a time: C's rows [r0, r0 + m) x N from t (t[j][i]) */
static void skinny_put(const float t[SK_N][16 * SK_V], int m, int N, float alpha, float bt, float *C, int ldc)
{
    for (int i = 0; i < m; i++)
        for (int j = 0; j < N; j++) {
            float *c = C + (size_t)i * ldc + j, v = t[j][i];
            if (alpha != 1.0f) v *= alpha;
            if (bt == 1.0f) v += *c;
            else if (bt != 0.0f) v = fmaf(bt, *c, v);
            *c = v;
        }
}

F32_TARGET static void skinny_tn(int i0, int i1, int N, int K, float alpha, const float *A, int lda, const float *Bm,
                                 int ldb, float beta, float *C, int ldc)
{
    _Alignas(64) float t[SK_N][16 * SK_V];
    for (int r0 = i0; r0 < i1; r0 += 16 * SK_V) {
        int m = i1 - r0 < 16 * SK_V ? i1 - r0 : 16 * SK_V, nv = (m + 15) / 16;
        __mmask16 last = rf_mask16(m - 16 * (nv - 1));
        for (int k0 = 0; k0 < K; k0 += KC) {
            int kn = K - k0 < KC ? K - k0 : KC;
            float bt = k0 == 0 ? beta : 1.0f;
            SKERN_TAB[nv - 1](A + (size_t)k0 * lda + r0, (size_t)lda, Bm + (size_t)k0 * ldb, (size_t)ldb, N, kn, last, t);
            skinny_put((const float(*)[16 * SK_V])t, m, N, alpha, bt, C + (size_t)r0 * ldc, ldc);
        }
    }
}

/* A narrow product, C(M, N) = alpha * A B + beta * C with N <= SK_N (a gate's logits, a logit
 * layer's), A stored M x K, rows [i0, i1) of C: the vectors run down C's rows again, 64 rows at a
 * time, each 16 x 16 piece of A transposed in registers so that a vector holds 16 rows' A(i, k),
 * then acc(i..i+15, j) += A(i..i+15, k) * B(k, j) for each k in order: per element the panel
 * kernel's fused multiply-adds, K blocks and write-back, so the same bits. */
#define NFMA(ng, g)                                                                                \
    if ((ng) > (g)) {                                                                              \
        __m512 col = _mm512_load_ps(T[g][kk]);                                                     \
        SKFMA(g, col)                                                                              \
    }
#define NKERN(ng)                                                                                  \
    F32_TARGET static void nkern_##ng(const float *a, size_t lda, const float *b, size_t ldb, int n, int kn, int m, \
                                      float t[SK_N][16 * SK_V])                                    \
    {                                                                                              \
        _Alignas(64) float T[4][16][16];                                                           \
        SKACC(0) SKACC(1) SKACC(2) SKACC(3)                                                        \
        for (int kc = 0; kc < kn; kc += 16) {                                                      \
            int kw = kn - kc < 16 ? kn - kc : 16;                                                  \
            __mmask16 km = rf_mask16(kw);                                                          \
            for (int g = 0; g < (ng); g++) { /* rows 16g.. of A, columns kc.., as 16 columns */   \
                __m512 r[16];                                                                      \
                for (int i = 0; i < 16; i++)                                                       \
                    r[i] = 16 * g + i < m ? _mm512_maskz_loadu_ps(km, a + (size_t)(16 * g + i) * lda + kc) \
                                          : _mm512_setzero_ps();                                   \
                rf_transpose16(r);                                                                 \
                for (int i = 0; i < 16; i++) _mm512_store_ps(T[g][i], r[i]);                       \
            }                                                                                      \
            for (int kk = 0; kk < kw; kk++) {                                                      \
                SKB(b + (size_t)(kc + kk) * ldb)                                                   \
                NFMA(ng, 0) NFMA(ng, 1) NFMA(ng, 2) NFMA(ng, 3)                                    \
            }                                                                                      \
        }                                                                                          \
        SKPUT(ng, 0) SKPUT(ng, 1) SKPUT(ng, 2) SKPUT(ng, 3)                                        \
    }
NKERN(1) NKERN(2) NKERN(3) NKERN(4)
typedef void (*nkern_fn)(const float *, size_t, const float *, size_t, int, int, int, float[SK_N][16 * SK_V]);
static const nkern_fn NKERN_TAB[4] = {nkern_1, nkern_2, nkern_3, nkern_4};

F32_TARGET static void skinny_nn(int i0, int i1, int N, int K, float alpha, const float *A, int lda, const float *Bm,
                                 int ldb, float beta, float *C, int ldc)
{
    _Alignas(64) float t[SK_N][16 * SK_V];
    for (int r0 = i0; r0 < i1; r0 += 64) {
        int m = i1 - r0 < 64 ? i1 - r0 : 64;
        for (int k0 = 0; k0 < K; k0 += KC) {
            int kn = K - k0 < KC ? K - k0 : KC;
            NKERN_TAB[(m + 15) / 16 - 1](A + (size_t)r0 * lda + k0, (size_t)lda, Bm + (size_t)k0 * ldb, (size_t)ldb, N, kn,
                                         m, t);
            skinny_put((const float(*)[16 * SK_V])t, m, N, alpha, k0 == 0 ? beta : 1.0f, C + (size_t)r0 * ldc, ldc);
        }
    }
}

/* rf_gemm_f32_act's conversion of one mr x cols tile of C (D in, the activation's input
 * gradient out), its rows' slope-gradient terms added in row order to sum (NULL: ReLU). */
F32_TARGET static void tile_act(float *c, int ldc, int mr, int cols, const float *z, int ldz, const float *al,
                                float *sum)
{
    const __m512 zero = _mm512_setzero_ps();
    for (int j = 0; j < cols; j += 16) {
        __mmask16 m = rf_mask16(cols - j < 16 ? cols - j : 16);
        __m512 a = al ? _mm512_maskz_loadu_ps(m, al + j) : zero, s = sum ? _mm512_maskz_loadu_ps(m, sum + j) : zero;
        for (int i = 0; i < mr; i++) {
            __m512 g = _mm512_maskz_loadu_ps(m, c + (size_t)i * ldc + j), v = _mm512_maskz_loadu_ps(m, z + (size_t)i * ldz + j);
            __mmask16 pos = _mm512_cmp_ps_mask(v, zero, _CMP_GT_OQ); /* v > 0: NaN is not */
            __m512 d = al ? _mm512_mask_blend_ps(pos, _mm512_mul_ps(a, g), g) : _mm512_maskz_mov_ps(pos, g);
            _mm512_mask_storeu_ps(c + (size_t)i * ldc + j, m, d);
            if (sum) s = _mm512_add_ps(s, _mm512_maskz_mul_ps((__mmask16)~pos, g, v)); /* v > 0 ? 0 : g v */
        }
        if (sum) _mm512_mask_storeu_ps(sum + j, m, s);
    }
}

/* Rows [r0, r1) of C (r0 a multiple of MR); with act, each tile converted after its last K block
 * (rf_gemm_f32_act), its slope terms into sum. */
F32_TARGET static void rows(int transA, int transB, int r0, int r1, int N, int K, float alpha, const float *A, int lda,
                            const float *Bm, int ldb, float beta, float *C, int ldc, const rf_gemm_act *act,
                            float *sum)
{
    _Alignas(64) float bt[KC * NB]; /* op(B)'s slice of the panel and K block */
    size_t ars = transA ? 1 : (size_t)lda, aks = transA ? (size_t)lda : 1;
    for (int j0 = 0; j0 < N; j0 += NB) {
        int cols = N - j0 < NB ? N - j0 : NB, nr = (cols + 15) / 16;
        __mmask16 last = rf_mask16(cols - 16 * (nr - 1));
        for (int k0 = 0; k0 < K; k0 += KC) {
            int kn = K - k0 < KC ? K - k0 : KC;
            const float ab[2] = {alpha, k0 == 0 ? beta : 1.0f};
            if (transB) pack_t(Bm, ldb, N, j0, 16 * nr, k0, kn, bt);
            else pack_n(Bm, ldb, N, j0, 16 * nr, k0, kn, bt);
            for (int i0 = r0; i0 < r1; i0 += MR) {
                int mr = r1 - i0 < MR ? r1 - i0 : MR;
                const float *a = A + i0 * ars + (size_t)k0 * aks;
                float *c = C + (size_t)i0 * ldc + j0;
                if (mr == MR) KERN6_TAB[transA != 0][nr - 1](a, (size_t)lda, bt, NB, kn, c, ldc, ab, last);
                else KERN_TAB[transA != 0][mr - 1][nr - 1](a, (size_t)lda, bt, NB, kn, c, ldc, ab, last);
                if (act && k0 + kn == K)
                    tile_act(c, ldc, mr, cols, act->Z + (size_t)i0 * act->ldz + j0, act->ldz,
                             act->alpha ? act->alpha + j0 : NULL, sum ? sum + j0 : NULL);
            }
        }
    }
}

/* The panel kernel's team: rows of C in whole MR-row blocks over nt threads (one inside a team),
 * thread t's slope sums (rf_gemm_f32_act) at sums + t N. */
static int panel_threads(int M, int N, int K) { return rf_omp_gemm_threads((double)M * N * K, (M + MR - 1) / MR); }

static void panel_team(int nt, int transA, int transB, int M, int N, int K, float alpha, const float *A, int lda,
                       const float *Bm, int ldb, float beta, float *C, int ldc, const rf_gemm_act *act, float *sums)
{
    int nblk = (M + MR - 1) / MR;
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        int t = omp_get_thread_num(), n = omp_get_num_threads();
        int b0 = (int)((long)nblk * t / n), b1 = (int)((long)nblk * (t + 1) / n);
        int r0 = b0 * MR, r1 = b1 * MR < M ? b1 * MR : M;
        if (r0 < r1)
            rows(transA, transB, r0, r1, N, K, alpha, A, lda, Bm, ldb, beta, C, ldc, act,
                 sums ? sums + (size_t)t * N : NULL);
    }
}

int rf_gemm_f32(int transA, int transB, int M, int N, int K, float alpha, const float *A, int lda, const float *Bm,
                int ldb, float beta, float *C, int ldc)
{
    if (!rf_gemm_f32_on()) return -1;
    if (M <= 0 || N <= 0) return 0;
    if (K <= 0) { /* C = beta * C */
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) C[(size_t)i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[(size_t)i * ldc + j];
        return 0;
    }
    if (!transB && N <= SK_N && M >= 16) { /* narrow: C's rows in blocks of 16 on the threads */
        int nblk = (M + 15) / 16, nt = rf_omp_gemm_threads((double)M * 16 * K, nblk);
#pragma omp parallel num_threads(nt) if (nt > 1)
        {
            int t = omp_get_thread_num(), n = omp_get_num_threads();
            int r0 = (int)((long)nblk * t / n) * 16, r1 = (int)((long)nblk * (t + 1) / n) * 16;
            if (r1 > M) r1 = M;
            if (r0 < r1 && transA) skinny_tn(r0, r1, N, K, alpha, A, lda, Bm, ldb, beta, C, ldc);
            else if (r0 < r1) skinny_nn(r0, r1, N, K, alpha, A, lda, Bm, ldb, beta, C, ldc);
        }
        return 0;
    }
    panel_team(panel_threads(M, N, K), transA, transB, M, N, K, alpha, A, lda, Bm, ldb, beta, C, ldc, NULL, NULL);
    return 0;
}

int rf_gemm_f32_act(int transB, int M, int N, int K, const float *A, int lda, const float *Bm, int ldb, float *C,
                    int ldc, const rf_gemm_act *act)
{
    if (!rf_gemm_f32_on() || N <= SK_N || M <= 0 || K <= 0) return -1;
    int nt = panel_threads(M, N, K);
    float *sums = act->dalpha ? calloc((size_t)nt * N, sizeof *sums) : NULL; /* per thread */
    if (act->dalpha && !sums) return -1;
    panel_team(nt, 0, transB, M, N, K, 1.0f, A, lda, Bm, ldb, 0.0f, C, ldc, act, sums);
    if (sums) {
        for (int t = 0; t < nt; t++) /* threads without rows added nothing: their sums are 0 */
            for (int j = 0; j < N; j++) act->dalpha[j] += sums[(size_t)t * N + j];
        free(sums);
    }
    return 0;
}
