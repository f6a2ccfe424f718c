/* gemm_bf16.c - bf16 GEMM with fp32 accumulation on AVX512-BF16 (see gemm_bf16.h).
 *
 * Layout. vdpbf16ps multiplies pairs of bf16 along K: acc[j] += a0*b0[j] + a1*b1[j] for 16 fp32
 * lanes j. So op(A) is packed as one 32-bit pair (A[i][2p], A[i][2p+1]) per row i and pair p,
 * and op(B) as pairs (B[2p][j], B[2p+1][j]) with 16 consecutive columns j in one 512-bit vector,
 * in panels of NB = 64 columns (panel-major, then pair, then column). K is padded to even with
 * zeros. op(A)'s pair (i, p) sits at a32[i * ars + p * aps]: a row-major copy (ars = Kp/2,
 * aps = 1) when A is not transposed, pair-major (ars = 1, aps = M rounded to 16) when it is,
 * which is the same interleave of two source rows as op(B)'s packing.
 *
 * Micro-kernel: MR x (16 * NRV) of C in 24 zmm accumulators, one broadcast of an A pair and NRV
 * loads of B per pair step; K is blocked by KC pairs so a panel's slice of B (KC x 64 pairs,
 * 32 KiB at KC = 128) stays in L1/L2 while it is swept down the thread's rows.
 */
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include <immintrin.h>

#include "core/bigmem.h"
#include "core/omp.h"
#include "nn/epi.h"
#include "nn/gemm_bf16.h"
#include "nn/model_impl.h"

#define MR 6       /* rows of C per micro-kernel */
#define NRV 4      /* 16-column vectors of C per micro-kernel */
#define NB 64      /* columns of a B panel (NRV * 16) */
#ifndef KC
#define KC 128     /* pairs of K per block */
#endif

#define BF16_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16,fma")))

int rf_bf16_cpu_ok(void)
{
    const char *e = getenv("RESFLOW_BF16");
    if (e && !strcmp(e, "off")) return 0;
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512bf16");
}

static size_t round16(size_t n) { return (n + 15) & ~(size_t)15; }

void rf_bf16_scratch_need(int transA, int transB, int M, int N, int K, size_t *a_need, size_t *b_need)
{
    (void)transB;
    size_t kp = (size_t)(K + 1) / 2; /* pairs */
    size_t a = transA ? kp * round16((size_t)M) * 2 : (size_t)M * kp * 2;
    size_t b = kp * round16((size_t)N) * 2;
    if (a > *a_need) *a_need = a;
    if (b > *b_need) *b_need = b;
}

rf_bf16_scratch *rf_bf16_scratch_create(size_t a_need, size_t b_need)
{
    rf_bf16_scratch *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    /* 64-byte aligned, whole cache lines, so packed vectors never straddle an allocation */
    size_t an = (a_need + 31) & ~(size_t)31, bn = (b_need + 31) & ~(size_t)31;
    s->a = rf_big_aligned_((an ? an : 32) * sizeof *s->a);
    s->b = rf_big_aligned_((bn ? bn : 32) * sizeof *s->b);
    if (!s->a || !s->b) {
        rf_bf16_scratch_free(s);
        return NULL;
    }
    s->a_cap = an;
    s->b_cap = bn;
    return s;
}

void rf_bf16_scratch_free(rf_bf16_scratch *s)
{
    if (!s) return;
    free(s->a);
    free(s->b);
    free(s);
}

/* ---- packing ------------------------------------------------------------------------------ */

/* Rows [r0, r1) of a (R x K) fp32 matrix to bf16 rows of kp2 = K rounded to even values
 * (the pad value 0). */
BF16_TARGET static void pack_rows(const float *src, int ld, int r0, int r1, int K, uint16_t *dst, int kp2)
{
    for (int r = r0; r < r1; r++) {
        const float *s = src + (size_t)r * ld;
        uint16_t *d = dst + (size_t)r * kp2;
        for (int k = 0; k < kp2; k += 32) {
            __m512 lo = _mm512_maskz_loadu_ps(rf_mask16(K - k), s + k);
            __m512 hi = _mm512_maskz_loadu_ps(rf_mask16(K - k - 16), s + k + 16);
            __m512i v = (__m512i)_mm512_cvtne2ps_pbh(hi, lo);
            long n = kp2 - k;
            __mmask32 m = n >= 32 ? (__mmask32)0xffffffffu : (__mmask32)((1u << n) - 1);
            _mm512_mask_storeu_epi16(d + k, m, v);
        }
    }
}

/* The 16-bit lanes of cvtne2ps_pbh(hi, lo) (lo's 16 values, then hi's) as pairs (lo[j], hi[j]). */
static const short PAIR_IX[32] = {0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23,
                                  8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31};

/* Pairs [p0, p1) of rows (2p, 2p+1) of a (K x W) fp32 matrix, interleaved: pair (p, j) =
 * (src[2p][j], src[2p+1][j]) as 32 bits, in panels of pw columns (a multiple of 16; the last
 * panel narrower) over W rounded to 16, the pad 0; a panel holds kpairs rows of its width. */
BF16_TARGET static void pack_pairs(const float *src, int ld, int K, int W, int p0, int p1, int kpairs, int pw,
                                   uint32_t *dst)
{
    __m512i idx = _mm512_loadu_si512(PAIR_IX);
    int wp = (int)round16((size_t)W);
    for (int p = p0; p < p1; p++) {
        const float *s0 = src + (size_t)(2 * p) * ld, *s1 = 2 * p + 1 < K ? s0 + ld : NULL;
        for (int j0 = 0; j0 < wp; j0 += pw) { /* panel by panel */
            int w = wp - j0 < pw ? wp - j0 : pw;
            uint32_t *d = dst + (size_t)j0 * kpairs + (size_t)p * w;
            for (int jj = 0; jj < w; jj += 16) {
                int j = j0 + jj;
                __mmask16 m = rf_mask16(W - j);
                __m512 lo = _mm512_maskz_loadu_ps(m, s0 + j);
                __m512 hi = s1 ? _mm512_maskz_loadu_ps(m, s1 + j) : _mm512_setzero_ps();
                _mm512_storeu_si512(d + jj, _mm512_permutexvar_epi16(idx, (__m512i)_mm512_cvtne2ps_pbh(hi, lo)));
            }
        }
    }
}

/* Columns [j0, j1) of op(B) = B^T for B stored (N x K): pair (p, j) = (B[j][2p], B[j][2p+1]),
 * the same panels as pack_pairs; columns N..round16(N) are zero. */
BF16_TARGET static void pack_cols_t(const float *src, int ld, int K, int N, int j0, int j1, int kpairs, uint32_t *dst)
{
    int np = (int)round16((size_t)N);
    for (int j = j0; j < j1; j++) {
        int pan = j / NB, w = np - pan * NB < NB ? np - pan * NB : NB;
        uint32_t *d = dst + (size_t)pan * NB * kpairs + (j - pan * NB);
        if (j >= N) {
            for (int p = 0; p < kpairs; p++) d[(size_t)p * w] = 0;
            continue;
        }
        const float *s = src + (size_t)j * ld;
        __m512i stride = _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                                            _mm512_set1_epi32(w));
        for (int p = 0; p < kpairs; p += 16) {
            int k = 2 * p;
            __m512 lo = _mm512_maskz_loadu_ps(rf_mask16(K - k), s + k);
            __m512 hi = _mm512_maskz_loadu_ps(rf_mask16(K - k - 16), s + k + 16);
            __m512i v = (__m512i)_mm512_cvtne2ps_pbh(hi, lo); /* 16 pairs p..p+15 */
            _mm512_mask_i32scatter_epi32(d + (size_t)p * w, rf_mask16(kpairs - p), stride, v, 4);
        }
    }
}

/* Rows 2q and 2q + 1 of an activation (r1 NULL: row 2q is the batch's last) into its layouts:
 * each 16 columns converted once, stored as the two rows' slices and as their pairs (the same
 * values pack_rows and pack_pairs would write). */
BF16_TARGET void rf_bf16_act_put(const rf_bf16_act *u, int B, int q, const float *r0, const float *r1)
{
    __m512i idx = _mm512_loadu_si512(PAIR_IX);
    int W = u->W, kp2 = (W + 1) & ~1, wp = (int)round16((size_t)W), kpairs = (B + 1) / 2;
    uint16_t *d0 = u->rows + (size_t)(2 * q) * kp2, *d1 = d0 + kp2;
    for (int j0 = 0; j0 < wp; j0 += u->pw) { /* panel by panel */
        int w = wp - j0 < u->pw ? wp - j0 : u->pw;
        uint32_t *dp = u->pairs + (size_t)j0 * kpairs + (size_t)q * w;
        for (int jj = 0; jj < w; jj += 16) {
            int j = j0 + jj;
            __mmask16 m = rf_mask16(W - j), mr = rf_mask16(kp2 - j);
            __m512 lo = _mm512_maskz_loadu_ps(m, r0 + j);
            __m512 hi = r1 ? _mm512_maskz_loadu_ps(m, r1 + j) : _mm512_setzero_ps();
            __m512i v = (__m512i)_mm512_cvtne2ps_pbh(hi, lo); /* r0's 16 values, then r1's */
            _mm256_mask_storeu_epi16(d0 + j, mr, _mm512_castsi512_si256(v));
            if (r1) _mm256_mask_storeu_epi16(d1 + j, mr, _mm512_extracti64x4_epi64(v, 1));
            _mm512_storeu_si512(dp + jj, _mm512_permutexvar_epi16(idx, v));
        }
    }
}

void rf_bf16_act_put_n(const rf_bf16_act *u, int n, int B, int q, const float *r0, const float *r1)
{
    for (int i = 0; i < n; i++)
        rf_bf16_act_put(&u[i], B, q, r0 + (size_t)i * u[0].W, r1 ? r1 + (size_t)i * u[0].W : NULL);
}

static int act_alloc(rf_bf16_act *u, int maxB, int W, int pw)
{
    size_t kp2 = (size_t)(W + 1) & ~(size_t)1, rows = (size_t)(maxB + 1) / 2 * 2 * kp2 * 2,
           pairs = (size_t)(maxB + 1) / 2 * round16((size_t)W) * 4;
    *u = (rf_bf16_act){rf_big_aligned_(rows), rf_big_aligned_(pairs), W, pw, 0};
    return u->rows && u->pairs ? 0 : -1;
}

static void act_free(rf_bf16_act *u)
{
    free(u->rows);
    free(u->pairs);
}

rf_bf16_acts *rf_bf16_acts_create(const rf_model *m, int maxB)
{
    rf_bf16_acts *a = calloc(1, sizeof *a);
    if (!a) return NULL;
    int bad = act_alloc(&a->x, maxB, m->In, (int)round16((size_t)m->In));
    for (int l = 0; l < m->L; l++)
        for (int k = 0; k < m->K; k++) {
            if (l < m->L - 1) bad |= act_alloc(&a->o[l][k], maxB, m->H[l], (int)round16((size_t)m->H[l]));
            if (l > 0 || k == 0) bad |= act_alloc(&a->dz[l][k], maxB, l == 0 ? m->K * m->H[0] : m->H[l], NB);
        }
    if (bad) {
        rf_bf16_acts_free(a);
        return NULL;
    }
    return a;
}

void rf_bf16_acts_free(rf_bf16_acts *a)
{
    if (!a) return;
    act_free(&a->x);
    for (int l = 0; l < RF_MAX_LAYERS; l++)
        for (int k = 0; k < RF_MAX_TASKS; k++) {
            act_free(&a->o[l][k]);
            act_free(&a->dz[l][k]);
        }
    free(a);
}

void rf_bf16_acts_invalidate(rf_bf16_acts *a)
{
    a->x.valid = 0;
    for (int l = 0; l < RF_MAX_LAYERS; l++)
        for (int k = 0; k < RF_MAX_TASKS; k++) a->o[l][k].valid = a->dz[l][k].valid = 0;
}

/* ---- micro-kernel ------------------------------------------------------------------------- */

/* C[0..mr)[0..16*nr) (the last vector masked by last) = alpha * sum_p A(i,p) . B(p) + beta * C,
 * p in [0, np); A pair (i, p) at a[i * ars + p * aps], B pairs of step p at b + p * bs. */
BF16_TARGET static inline __attribute__((always_inline)) void kern(int mr, int nr, const uint32_t *a, size_t ars, size_t aps,
                                                       const uint32_t *b, size_t bs, int np, float *C, int ldc,
                                                       float alpha, float beta, __mmask16 last, const rf_epi *ep)
{
    __m512 acc[MR][NRV];
    for (int i = 0; i < mr; i++)
        for (int j = 0; j < nr; j++) acc[i][j] = _mm512_setzero_ps();
    for (int p = 0; p < np; p++) {
        __m512bh bv[NRV];
        for (int j = 0; j < nr; j++) bv[j] = (__m512bh)_mm512_loadu_si512(b + (size_t)p * bs + 16 * j);
        for (int i = 0; i < mr; i++) {
            __m512bh av = (__m512bh)_mm512_set1_epi32((int)a[i * ars + p * aps]);
            for (int j = 0; j < nr; j++) acc[i][j] = _mm512_dpbf16_ps(acc[i][j], av, bv[j]);
        }
    }
    for (int i = 0; i < mr; i++)
        for (int j = 0; j < nr; j++) {
            float *c = C + (size_t)i * ldc + 16 * j;
            __mmask16 m = j == nr - 1 ? last : (__mmask16)0xffff;
            __m512 v = rf_wb_ab(acc[i][j], c, m, alpha, beta);
            if (ep) v = rf_epi_apply(v, c, m, ep, j); /* the last K block of a scoring GEMM */
            _mm512_mask_storeu_ps(c, m, v);
        }
}

typedef void (*kern_fn)(const uint32_t *, size_t, size_t, const uint32_t *, size_t, int, float *, int, float,
                        float, __mmask16, const rf_epi *);
#define KERN(r, n)                                                                                          \
    BF16_TARGET static void kern_##r##_##n(const uint32_t *a, size_t ars, size_t aps, const uint32_t *b,       \
                                           size_t bs, int np, float *C, int ldc, float alpha, float beta,      \
                                           __mmask16 last, const rf_epi *ep)                                   \
    {                                                                                                         \
        kern(r, n, a, ars, aps, b, bs, np, C, ldc, alpha, beta, last, ep);                                     \
    }
#define KERNS(r) KERN(r, 1) KERN(r, 2) KERN(r, 3) KERN(r, 4)
KERNS(1) KERNS(2) KERNS(3) KERNS(4) KERNS(5) /* 6 rows: KERN6 */

/* Six rows of C and n vectors, the accumulators named and the products in inline assembly:
 * GCC 12 keeps kern()'s accumulator array on the stack around the loop (24 stores to zero it,
 * 24 to spill it after, and a write-back loop reading it back: measured, 10-15 % of the
 * kernel's time on a step's shapes), as in gemm_f32.c and gemm_int8.c. The same products in
 * the same order as kern(), the same write-back, row by row. */
#define DPB(acc, a, b) __asm__("vdpbf16ps %2, %1, %0" : "+v"(acc) : "v"(a), "v"(b))
#define ACC4(i) __m512 c##i##0 = _mm512_setzero_ps(), c##i##1 = c##i##0, c##i##2 = c##i##0, c##i##3 = c##i##0;
#define DPN(n, i, j, b) if ((n) > (j)) DPB(c##i##j, av, b);
#define ROWN(n, i)                                                                                 \
    {                                                                                              \
        __m512i av = _mm512_set1_epi32((int)ap[(i) * ars]);                                        \
        DPN(n, i, 0, b0) DPN(n, i, 1, b1) DPN(n, i, 2, b2) DPN(n, i, 3, b3)                        \
    }
#define OUTN(n, i, j)                                                                              \
    if ((n) > (j)) {                                                                               \
        float *c_ = C + (size_t)(i) * ldc + 16 * (j);                                              \
        __mmask16 m_ = (j) == (n) - 1 ? last : (__mmask16)0xffff;                                  \
        __m512 v_ = rf_wb_ab(c##i##j, c_, m_, alpha, beta);                                        \
        if (ep) v_ = rf_epi_apply(v_, c_, m_, ep, j);                                              \
        _mm512_mask_storeu_ps(c_, m_, v_);                                                         \
    }
#define OUTROWN(n, i) OUTN(n, i, 0) OUTN(n, i, 1) OUTN(n, i, 2) OUTN(n, i, 3)
#define KERN6(n)                                                                                   \
    BF16_TARGET static void kern_6_##n(const uint32_t *a, size_t ars, size_t aps, const uint32_t *b, size_t bs, \
                                       int np, float *C, int ldc, float alpha, float beta, __mmask16 last, \
                                       const rf_epi *ep)                                           \
    {                                                                                              \
        ACC4(0) ACC4(1) ACC4(2) ACC4(3) ACC4(4) ACC4(5)                                            \
        for (int p = 0; p < np; p++) {                                                             \
            const uint32_t *ap = a + (size_t)p * aps, *bp_ = b + (size_t)p * bs;                   \
            __m512i b0 = _mm512_loadu_si512(bp_), b1 = b0, b2 = b0, b3 = b0;                       \
            if ((n) > 1) b1 = _mm512_loadu_si512(bp_ + 16);                                        \
            if ((n) > 2) b2 = _mm512_loadu_si512(bp_ + 32);                                        \
            if ((n) > 3) b3 = _mm512_loadu_si512(bp_ + 48);                                        \
            ROWN(n, 0) ROWN(n, 1) ROWN(n, 2) ROWN(n, 3) ROWN(n, 4) ROWN(n, 5)                      \
        }                                                                                          \
        OUTROWN(n, 0) OUTROWN(n, 1) OUTROWN(n, 2) OUTROWN(n, 3) OUTROWN(n, 4) OUTROWN(n, 5)        \
    }
KERN6(1) KERN6(2) KERN6(3) KERN6(4)
#define ROW(r) {kern_##r##_1, kern_##r##_2, kern_##r##_3, kern_##r##_4}
static const kern_fn KERN_TAB[MR][NRV] = {ROW(1), ROW(2), ROW(3), ROW(4), ROW(5), ROW(6)};

/* ---- the GEMM ----------------------------------------------------------------------------- */

/* Row blocks [b0, b1) of C over the pairs [p0, p1) of K: alpha * sum + beta * C on the first K
 * block, + C on the next; the write-back ep (NULL: none) on the block that ends at p1. */
static void tiles(const uint32_t *a32, size_t ars, size_t aps, const uint32_t *b32, int M, int N, int kpairs, int np,
                  int b0, int b1, int p0, int p1, float alpha, float beta, float *C, int ldc, const rf_epi *ep)
{
    for (int k0 = p0; k0 < p1; k0 += KC) {
        int kn = p1 - k0 < KC ? p1 - k0 : KC;
        float be = k0 == p0 ? beta : 1.0f;
        int lastk = k0 + kn == p1;
        for (int j0 = 0; j0 < N; j0 += NB) {
            int w = np - j0 < NB ? np - j0 : NB;     /* panel width (pairs per step) */
            int cols = N - j0 < NB ? N - j0 : NB;    /* valid columns of C */
            int nr = (cols + 15) / 16;
            __mmask16 last = rf_mask16(cols - 16 * (nr - 1));
            const uint32_t *bp = b32 + (size_t)j0 * kpairs + (size_t)k0 * w;
            rf_epi pe = ep && lastk ? rf_epi_panel(ep, j0) : (rf_epi){0}; /* the panel's write-back */
            for (int bi = b0; bi < b1; bi++) {
                int i0 = bi * MR, mr = M - i0 < MR ? M - i0 : MR;
                KERN_TAB[mr - 1][nr - 1](a32 + i0 * ars + k0 * aps, ars, aps, bp, (size_t)w, kn,
                                         C + (size_t)i0 * ldc + j0, ldc, alpha, be, last, ep && lastk ? &pe : NULL);
            }
        }
    }
}

/* rf_gemm_bf16, with op(A) already packed when apk is not NULL (an activation's layouts,
 * rf_bf16_act), op(B) when bpk is not NULL (rf_bf16_pack_b or an activation's pairs: B not
 * transposed), and the fused write-back ep on the last K block (NULL: none). With kp (not NULL;
 * then op(A) = A^T and no write-back), K is split between the threads instead of the rows of C
 * where that is worth it: rf_gemm_tn's scheme (ops.h), its partial sums in kp. */
static int gemm(rf_bf16_scratch *s, int transA, int transB, int M, int N, int K, float alpha, const float *A, int lda,
                const uint32_t *apk, const float *Bm, int ldb, const uint32_t *bpk, float beta, float *C, int ldc,
                const rf_epi *ep, rf_kpart *kp)
{
    if (M <= 0 || N <= 0) return 0;
    size_t an = 0, bn = 0;
    rf_bf16_scratch_need(transA, transB, M, N, K, &an, &bn);
    if ((!apk && an > s->a_cap) || (!bpk && bn > s->b_cap)) return -1;
    int kpairs = (K + 1) / 2, kp2 = 2 * kpairs, mp = (int)round16((size_t)M), np = (int)round16((size_t)N);
    const uint32_t *a32 = apk ? apk : (const uint32_t *)s->a;
    const uint32_t *b32 = bpk ? bpk : (const uint32_t *)s->b;
    size_t ars = transA ? 1 : (size_t)kpairs, aps = transA ? (size_t)mp : 1;
    int nblk = (M + MR - 1) / MR, nt = rf_omp_gemm_threads((double)M * N * K, nblk);
    float *part = rf_kpart_team(kp, M, N, K, &nt);
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        int t = omp_get_thread_num(), n = omp_get_num_threads();
        if (kpairs == 0) { /* K = 0: C = beta * C */
            for (int i = t; i < M; i += n)
                for (int j = 0; j < N; j++) C[(size_t)i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[(size_t)i * ldc + j];
        } else {
            /* pack op(A) and op(B) (shared by the team) unless given, then each thread its rows of C */
            if (!apk && transA) {
#pragma omp for schedule(static) nowait
                for (int p = 0; p < kpairs; p++) pack_pairs(A, lda, K, M, p, p + 1, kpairs, mp, (uint32_t *)s->a);
            } else if (!apk) {
#pragma omp for schedule(static) nowait
                for (int r = 0; r < M; r++) pack_rows(A, lda, r, r + 1, K, s->a, kp2);
            }
            if (!bpk && transB) {
#pragma omp for schedule(static)
                for (int j = 0; j < np; j++) pack_cols_t(Bm, ldb, K, N, j, j + 1, kpairs, (uint32_t *)s->b);
            } else if (!bpk) {
#pragma omp for schedule(static)
                for (int p = 0; p < kpairs; p++) pack_pairs(Bm, ldb, K, N, p, p + 1, kpairs, NB, (uint32_t *)s->b);
            } else if (!apk) { /* op(A) packed before any thread reads it */
#pragma omp barrier
            }
            if (part) { /* each thread every row of C over its pairs, then the partials added */
                int p0 = rf_kpart_pair0(kpairs, t, n), p1 = rf_kpart_pair0(kpairs, t + 1, n);
                if (t == 0) tiles(a32, ars, aps, b32, M, N, kpairs, np, 0, nblk, p0, p1, alpha, beta, C, ldc, NULL);
                else tiles(a32, ars, aps, b32, M, N, kpairs, np, 0, nblk, p0, p1, alpha, 0.0f,
                           part + (size_t)(t - 1) * M * N, N, NULL);
#pragma omp barrier
                rf_kpart_reduce(C, ldc, M, N, part, t, n);
            } else {
                int b0 = (int)((long)nblk * t / n), b1 = (int)((long)nblk * (t + 1) / n);
                tiles(a32, ars, aps, b32, M, N, kpairs, np, b0, b1, 0, kpairs, alpha, beta, C, ldc, ep);
            }
        }
    }
    return 0;
}

int rf_gemm_bf16(rf_bf16_scratch *s, int transA, int transB, int M, int N, int K, float alpha,
                 const float *A, int lda, const float *Bm, int ldb, float beta, float *C, int ldc)
{
    return gemm(s, transA, transB, M, N, K, alpha, A, lda, NULL, Bm, ldb, NULL, beta, C, ldc, NULL, NULL);
}

/* op(A) and op(B) from the activations' layouts ua and ub when they are valid and laid out for
 * this shape (else NULL: the GEMM packs). */
static void act_operands(int transA, int transB, int M, int N, int K, const rf_bf16_act *ua, const rf_bf16_act *ub,
                         const uint32_t **apk, const uint32_t **bpk)
{
    *apk = *bpk = NULL;
    if (ua && ua->valid && transA && ua->W == M && ua->pw == (int)round16((size_t)M)) *apk = ua->pairs;
    if (ua && ua->valid && !transA && ua->W == K) *apk = (const uint32_t *)ua->rows;
    if (ub && ub->valid && !transB && ub->W == N && ub->pw == NB) *bpk = ub->pairs;
}

int rf_gemm_bf16_pk(rf_bf16_scratch *s, int transA, int transB, int M, int N, int K, float alpha, const float *A,
                    int lda, const rf_bf16_act *ua, const float *Bm, int ldb, const rf_bf16_act *ub, float beta,
                    float *C, int ldc)
{
    const uint32_t *apk, *bpk;
    act_operands(transA, transB, M, N, K, ua, ub, &apk, &bpk);
    return gemm(s, transA, transB, M, N, K, alpha, A, lda, apk, Bm, ldb, bpk, beta, C, ldc, NULL, NULL);
}

int rf_gemm_bf16_tn(rf_bf16_scratch *s, rf_kpart *kp, int M, int N, int K, float alpha, const float *A, int lda,
                    const rf_bf16_act *ua, const float *Bm, int ldb, const rf_bf16_act *ub, float beta, float *C,
                    int ldc)
{
    const uint32_t *apk, *bpk;
    act_operands(1, 0, M, N, K, ua, ub, &apk, &bpk);
    return gemm(s, 1, 0, M, N, K, alpha, A, lda, apk, Bm, ldb, bpk, beta, C, ldc, NULL, kp);
}

/* ---- scoring: the weights packed once, the write-back fused --------------------------------- */

struct rf_bf16_wpack {
    uint32_t *w[RF_MAX_LAYERS * RF_MAX_TASKS]; /* layer 0: [0]; layer l > 0: task k at [l * RF_MAX_TASKS + k] */
};

static uint32_t *pack_b(const float *B, int ldb, int K, int N)
{
    int kpairs = (K + 1) / 2;
    uint32_t *d = aligned_alloc(64, ((size_t)kpairs * round16((size_t)N) * 4 + 63) / 64 * 64 + 64);
    if (d) pack_pairs(B, ldb, K, N, 0, kpairs, kpairs, NB, d);
    return d;
}

rf_bf16_wpack *rf_bf16_wpack_create(const rf_model *m)
{
    rf_bf16_wpack *w = calloc(1, sizeof *w);
    int bad = !w;
    for (int l = 0; l < m->L && !bad; l++)
        for (int k = 0; k < (l == 0 ? 1 : m->K) && !bad; k++) {
            int kin, n;
            const float *W = rf_tower_w(m, l, k, &kin, &n);
            bad = !(w->w[l * RF_MAX_TASKS + k] = pack_b(W, n, kin, n));
        }
    if (bad) {
        rf_bf16_wpack_free(w);
        return NULL;
    }
    return w;
}

void rf_bf16_wpack_free(rf_bf16_wpack *w)
{
    if (!w) return;
    for (size_t i = 0; i < sizeof w->w / sizeof *w->w; i++) free(w->w[i]);
    free(w);
}

int rf_gemm_bf16_score(rf_bf16_scratch *s, const rf_bf16_wpack *w, const rf_model *m, int l, int k, int M,
                       const float *A, int lda, float *C, int ldc, const rf_epi *ep)
{
    int kin, n;
    rf_tower_w(m, l, k, &kin, &n);
    return gemm(s, 0, 0, M, n, kin, 1.0f, A, lda, NULL, NULL, 0, w->w[l == 0 ? 0 : l * RF_MAX_TASKS + k], 0.0f, C, ldc,
                ep, NULL);
}
