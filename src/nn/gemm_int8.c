/* gemm_int8.c - int8 scoring GEMM on AVX512-VNNI (see gemm_int8.h).
 *
 * Micro-kernel: MR x (16 * NRV) of C in 24 zmm int32 accumulators, one broadcast of an Aq quad
 * and NRV loads of Wq per quad step, then the exact integer correction and the two scales in the
 * write-back. A 64-column panel of Wq (kq quads x 256 bytes: 64 KiB for Kin = 1024) stays in
 * L1/L2 while the thread sweeps its rows down it.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <immintrin.h>

#include "nn/epi.h"
#include "nn/gemm_int8.h"
#include "nn/model_impl.h"
#include "nn/ops.h"

#define MR 6   /* rows of C per micro-kernel */
#define NRV 4  /* 16-column vectors of C per micro-kernel */
#define NB 64  /* columns of a Wq panel */

#define I8_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,fma")))

int rf_i8_cpu_ok(void)
{
    const char *e = getenv("RESFLOW_INT8");
    if (e && !strcmp(e, "off")) return 0;
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vnni");
}

/* One quantized matrix: the first kin rows of a Kin x N weight matrix (layer 0: the embedding
 * columns), the rest (tail rows, layer 0's dense columns) multiplied in fp32. */
typedef struct {
    int kin, n, kq;
    int8_t *b;      /* panels of NB columns (the last narrower, rounded to 16): kq quads x w x 4 bytes */
    float *scale;   /* N column scales sw */
    int32_t *comp;  /* N: 128 * sum_k Wq[k][j] */
    float *smooth;  /* kin: c_k (A's column k enters as A / c_k, W's row k as c_k W); NULL: all 1 */
    float *inv;     /* kin: 1 / c_k, or NULL */
    const float *tail; /* rows kin.. of W (ld ldw), tail_k of them: the fp32 part, or NULL */
    int ldw, tail_k;
} i8_mat;

struct rf_i8_ctx {
    i8_mat *mat;
    int n_mat, first[RF_MAX_LAYERS]; /* layer l's first matrix */
    uint8_t *a;                      /* max_rows x a_row bytes */
    float *ascale;                   /* max_rows */
    int max_rows, a_row;
};

static size_t round16(size_t n) { return (n + 15) & ~(size_t)15; }

/* Layer l's matrix (task k's after layer 0). */
static const i8_mat *mat_of(const rf_i8_ctx *c, int l, int k) { return &c->mat[c->first[l] + (l == 0 ? 0 : k)]; }

/* Quantize and pack W (kin x n, ld ldw), its row k scaled by smooth[k] (NULL: 1). 0, or -1 when
 * out of memory. */
static int mat_init(i8_mat *q, const float *W, int ldw, int kin, int n, const float *smooth)
{
    q->kin = kin, q->n = n, q->kq = (kin + 3) / 4;
    size_t np = round16((size_t)n);
    q->b = aligned_alloc(64, ((size_t)q->kq * np * 4 + 63) / 64 * 64 + 64);
    q->scale = malloc((size_t)n * sizeof *q->scale);
    q->comp = malloc((size_t)n * sizeof *q->comp);
    if (!q->b || !q->scale || !q->comp) return -1;
    memset(q->b, 0, (size_t)q->kq * np * 4);
    for (int j = 0; j < n; j++) {
        float mx = 0;
        for (int k = 0; k < kin; k++) mx = fmaxf(mx, fabsf(W[(size_t)k * ldw + j] * (smooth ? smooth[k] : 1.0f)));
        float s = mx > 0 ? mx / 127.0f : 1.0f, inv = 1.0f / s;
        int pan = j / NB, w = (int)np - pan * NB < NB ? (int)np - pan * NB : NB;
        int8_t *d = q->b + (size_t)pan * NB * q->kq * 4 + (size_t)(j - pan * NB) * 4;
        int32_t sum = 0;
        for (int k = 0; k < kin; k++) {
            long v = lrintf(W[(size_t)k * ldw + j] * (smooth ? smooth[k] : 1.0f) * inv);
            v = v > 127 ? 127 : v < -127 ? -127 : v;
            d[(size_t)(k / 4) * w * 4 + k % 4] = (int8_t)v;
            sum += (int32_t)v;
        }
        q->scale[j] = s;
        q->comp[j] = 128 * sum;
    }
    return 0;
}

static void mat_free(i8_mat *q)
{
    free(q->smooth);
    free(q->inv);
    free(q->b);
    free(q->scale);
    free(q->comp);
}

/* Layer 0: the F*E embedding columns in int8, smoothed (SmoothQuant's migration strength 1/2):
 * c_k = sqrt(amax_k / wmax_k), amax_k the largest |value| of column k in the field's embedding
 * table (a bound on the column in every row of a single-valued field), wmax_k the largest |W| of
 * row k, so that A / c_k and c_k W have the same range sqrt(amax_k wmax_k) in every column:
 * without it a row's scale follows its largest field and the small-valued fields lose their
 * digits (the simulator's test AUC fell by 0.0024). The dense columns (concatenated or the
 * projected field) have no such bound and other magnitudes: they stay fp32. */
static int layer0_init(i8_mat *q, const rf_model *m)
{
    int FE = m->F * m->E, KH = m->K * m->H[0], E = m->E;
    float *c = malloc((size_t)(FE ? FE : 1) * sizeof *c);
    if (!c) return -1;
    for (int f = 0; f < m->F; f++) {
        float *amax = c + f * E; /* the table's column maxima first, row by row */
        for (int e = 0; e < E; e++) amax[e] = 0;
        const float *t = m->emb + m->emb_off[f] * (size_t)E;
        for (size_t r = 0; r < m->vocab[f]; r++)
            for (int e = 0; e < E; e++) { /* not fmaxf: a call per value in GCC 12 (NaN rules) */
                float v = fabsf(t[r * (size_t)E + e]);
                amax[e] = v > amax[e] ? v : amax[e];
            }
        for (int e = 0; e < E; e++) {
            float wmax = 0;
            const float *w = m->layer[0].W + (size_t)(f * E + e) * KH;
            for (int j = 0; j < KH; j++) wmax = fabsf(w[j]) > wmax ? fabsf(w[j]) : wmax;
            float v = amax[e] > 0 && wmax > 0 ? sqrtf(amax[e] / wmax) : 1.0f;
            amax[e] = isfinite(v) && v > 0 ? v : 1.0f;
        }
    }
    if (mat_init(q, m->layer[0].W, KH, FE, KH, c)) {
        free(c);
        return -1;
    }
    q->smooth = c;
    q->inv = malloc((size_t)(FE ? FE : 1) * sizeof *q->inv);
    if (!q->inv) return -1;
    for (int k = 0; k < FE; k++) q->inv[k] = 1.0f / c[k];
    q->ldw = KH;
    q->tail_k = m->In - FE;
    q->tail = q->tail_k > 0 ? m->layer[0].W + (size_t)FE * KH : NULL;
    return 0;
}

rf_i8_ctx *rf_i8_ctx_create(const rf_model *m, int max_rows)
{
    rf_i8_ctx *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    int K = m->K, nmat = 0, kmax = 0;
    for (int l = 0; l < m->L; l++) {
        c->first[l] = nmat;
        nmat += l == 0 ? 1 : K;
        int kin = l == 0 ? m->In : m->H[l - 1];
        if (kin > kmax) kmax = kin;
    }
    c->n_mat = nmat;
    c->a_row = (kmax + 3) / 4 * 4;
    c->max_rows = max_rows;
    c->mat = calloc((size_t)(nmat ? nmat : 1), sizeof *c->mat);
    c->a = aligned_alloc(64, ((size_t)max_rows * c->a_row + 63) / 64 * 64 + 64);
    c->ascale = malloc((size_t)(max_rows ? max_rows : 1) * sizeof *c->ascale);
    int bad = !c->mat || !c->a || !c->ascale;
    for (int l = 0; l < m->L && !bad; l++)
        for (int k = 0; k < (l == 0 ? 1 : K) && !bad; k++) {
            int kin, n;
            const float *W = rf_tower_w(m, l, k, &kin, &n);
            bad = l == 0 ? layer0_init(&c->mat[0], m) : mat_init(&c->mat[c->first[l] + k], W, n, kin, n, NULL);
        }
    if (bad) {
        rf_i8_ctx_free(c);
        return NULL;
    }
    return c;
}

void rf_i8_ctx_free(rf_i8_ctx *c)
{
    if (!c) return;
    for (int i = 0; c->mat && i < c->n_mat; i++) mat_free(&c->mat[i]);
    free(c->mat);
    free(c->a);
    free(c->ascale);
    free(c);
}

/* Rows of A (M x kin; column k times inv[k] when inv is not NULL) to Aq + 128 (rows of kq * 4
 * bytes, the pad 128) and their scales. */
I8_TARGET static void quantize_rows(const float *A, int lda, int M, int kin, int kq, const float *inv_c, uint8_t *dst,
                                    float *sc)
{
    const __m512i absmask = _mm512_set1_epi32(0x7fffffff); /* integer AND: AVX512F (and_ps is DQ) */
    const __m512i bias = _mm512_set1_epi32(128);
    for (int i = 0; i < M; i++) {
        const float *s = A + (size_t)i * lda;
        __m512i mx = _mm512_setzero_si512(); /* |v| as integers: NaN > Inf > every finite value */
        for (int k = 0; k < kin; k += 16) {
            __m512 v = _mm512_maskz_loadu_ps(rf_mask16(kin - k), s + k);
            if (inv_c) v = _mm512_mul_ps(v, _mm512_maskz_loadu_ps(rf_mask16(kin - k), inv_c + k));
            mx = _mm512_max_epu32(mx, _mm512_and_si512(_mm512_castps_si512(v), absmask));
        }
        uint32_t mb = _mm512_reduce_max_epu32(mx);
        float m;
        memcpy(&m, &mb, 4);
        /* a NaN or Inf in the row: its scores NaN, as fp32's would not be finite either */
        float scale = !isfinite(m) ? NAN : m > 0 ? m / 127.0f : 1.0f;
        __m512 inv = _mm512_set1_ps(1.0f / scale);
        uint8_t *d = dst + (size_t)i * kq * 4;
        /* |v| <= 127 (to a rounding of 127 * 2^-24) by the choice of scale: no clamp (a row with
         * a NaN or Inf gives some bytes, and its scale NaN) */
        for (int k = 0; k < kq * 4; k += 16) {
            __m512 v = _mm512_maskz_loadu_ps(rf_mask16(kin - k), s + k);
            v = _mm512_mul_ps(v, inv_c ? _mm512_mul_ps(inv, _mm512_maskz_loadu_ps(rf_mask16(kin - k), inv_c + k)) : inv);
            __m512i q = _mm512_add_epi32(_mm512_cvtps_epi32(v), bias); /* round to nearest even */
            _mm_mask_storeu_epi8(d + k, rf_mask16(kq * 4 - k), _mm512_cvtepi32_epi8(q));
        }
        sc[i] = scale;
    }
}

#define DPBUSD(acc, a, b) (acc) = _mm512_dpbusd_epi32((acc), (a), (b))

/* Store v (a 16-column vector j of a panel, masked by m) at c; with ep, through the fused
 * write-back first (epi.h). */
I8_TARGET static inline __attribute__((always_inline)) void put(float *c, __mmask16 m, __m512 v, const rf_epi *ep,
                                                                int j)
{
    if (ep) v = rf_epi_apply(v, c, m, ep, j);
    _mm512_mask_storeu_ps(c, m, v);
}

/* C[0..mr)[0..16*nr) (the last vector masked by last) = sa[i] sw[j] (sum_q Aq(i,q) . Wq(q, j) -
 * comp[j]); Aq row i at a + i * ar, Wq quads of step q at b + q * bs (int32 lanes). */
I8_TARGET static inline __attribute__((always_inline)) void kern(int mr, int nr, const uint8_t *a, size_t ar,
                                                                 const int32_t *b, size_t bs, int kq, float *C, int ldc,
                                                                 const float *sa, const float *sw,
                                                                 const int32_t *comp, __mmask16 last,
                                                                 const rf_epi *ep)
{
    __m512i acc[MR][NRV];
    for (int i = 0; i < mr; i++)
        for (int j = 0; j < nr; j++) acc[i][j] = _mm512_setzero_si512();
    for (int q = 0; q < kq; q++) {
        __m512i bv[NRV];
        for (int j = 0; j < nr; j++) bv[j] = _mm512_loadu_si512(b + (size_t)q * bs + 16 * j);
        for (int i = 0; i < mr; i++) {
            int32_t x;
            memcpy(&x, a + i * ar + 4 * (size_t)q, 4);
            __m512i av = _mm512_set1_epi32(x);
            for (int j = 0; j < nr; j++) DPBUSD(acc[i][j], av, bv[j]);
        }
    }
    for (int i = 0; i < mr; i++)
        for (int j = 0; j < nr; j++) {
            __mmask16 m = j == nr - 1 ? last : (__mmask16)0xffff;
            __m512 v = _mm512_cvtepi32_ps(_mm512_sub_epi32(acc[i][j], _mm512_maskz_loadu_epi32(m, comp + 16 * j)));
            v = _mm512_mul_ps(v, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, sw + 16 * j), _mm512_set1_ps(sa[i])));
            put(C + (size_t)i * ldc + 16 * j, m, v, ep, j);
        }
}

typedef void (*kern_fn)(const uint8_t *, size_t, const int32_t *, size_t, int, float *, int, const float *,
                        const float *, const int32_t *, __mmask16, const rf_epi *);
#define KERN(r, n)                                                                                              \
    I8_TARGET static void kern_##r##_##n(const uint8_t *a, size_t ar, const int32_t *b, size_t bs, int kq,       \
                                         float *C, int ldc, const float *sa, const float *sw, const int32_t *comp, \
                                         __mmask16 last, const rf_epi *ep)                                   \
    {                                                                                                           \
        kern(r, n, a, ar, b, bs, kq, C, ldc, sa, sw, comp, last, ep);                                            \
    }
#define KERNS(r) KERN(r, 1) KERN(r, 2) KERN(r, 3) KERN(r, 4)
KERNS(1) KERNS(2) KERNS(3) KERNS(4) KERNS(5) /* 6 rows: KERN6 below */

/* Six rows and n vectors (n = 4 for a whole 64-column panel; fewer, or the last one partial,
 * for a narrower one) with the accumulators as named variables: GCC 12 keeps an array of them on
 * the stack in the loop above (two memory moves per vpdpbusd: measured, the kernel was then no
 * faster than bf16's), named ones in registers. */
#define DPA(acc, a, b) __asm__("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(a), "v"(b))
#define ACC4(i) __m512i c##i##0 = _mm512_setzero_si512(), c##i##1 = c##i##0, c##i##2 = c##i##0, c##i##3 = c##i##0;
#define DPN(n, i, j, b) if ((n) > (j)) DPA(c##i##j, av, b);
#define ROWN(n, i)                                                                                \
    {                                                                                             \
        int32_t x;                                                                                \
        memcpy(&x, a + (i) * ar + 4 * (size_t)q, 4);                                              \
        __m512i av = _mm512_set1_epi32(x);                                                        \
        DPN(n, i, 0, b0) DPN(n, i, 1, b1) DPN(n, i, 2, b2) DPN(n, i, 3, b3)                       \
    }
/* the write-back of vector j of row i (bias, activation, link loaded once per vector j) */
#define OUT1(i, j)                                                                                \
    {                                                                                             \
        float *c_ = C + (size_t)(i) * ldc + 16 * (j);                                             \
        __m512 v = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(c##i##j, kj)),               \
                                 _mm512_mul_ps(wj, _mm512_set1_ps(sa[i])));                        \
        if (ep) {                                                                                 \
            v = _mm512_add_ps(v, bj);                                                             \
            __mmask16 pos = _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_GT_OQ);               \
            v = ep->alpha ? _mm512_mask_blend_ps(pos, _mm512_mul_ps(aj, v), v) : _mm512_maskz_mov_ps(pos, v); \
            if (lj) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mj, c_ + lj));                     \
        }                                                                                         \
        _mm512_mask_storeu_ps(c_, mj, v);                                                         \
    }
/* column vector j of all 6 rows (a parent's vector, at a lower j or in an earlier panel, is then
 * always written before its child's); the last of n vectors under the mask last */
#define OUTCOL(n, j)                                                                              \
    if ((n) > (j)) {                                                                              \
        __mmask16 mj = (j) == (n) - 1 ? last : (__mmask16)0xffff;                                 \
        __m512i kj = _mm512_maskz_loadu_epi32(mj, comp + 16 * (j));                               \
        __m512 wj = _mm512_maskz_loadu_ps(mj, sw + 16 * (j)), bj = _mm512_setzero_ps(), aj = bj;  \
        int lj = 0;                                                                               \
        if (ep) {                                                                                 \
            bj = _mm512_maskz_loadu_ps(mj, ep->bias + 16 * (j));                                  \
            if (ep->alpha) aj = _mm512_maskz_loadu_ps(mj, ep->alpha + 16 * (j));                  \
            if (ep->link) lj = ep->link[j];                                                       \
        }                                                                                         \
        OUT1(0, j) OUT1(1, j) OUT1(2, j) OUT1(3, j) OUT1(4, j) OUT1(5, j)                         \
    }
#define KERN6(n)                                                                                  \
    I8_TARGET static void kern_6_##n(const uint8_t *a, size_t ar, const int32_t *b, size_t bs, int kq, float *C, \
                                     int ldc, const float *sa, const float *sw, const int32_t *comp,          \
                                     __mmask16 last, const rf_epi *ep)                                        \
    {                                                                                             \
        ACC4(0) ACC4(1) ACC4(2) ACC4(3) ACC4(4) ACC4(5)                                           \
        for (int q = 0; q < kq; q++) {                                                            \
            const int32_t *bq = b + (size_t)q * bs;                                               \
            __m512i b0 = _mm512_loadu_si512(bq), b1 = b0, b2 = b0, b3 = b0;                       \
            if ((n) > 1) b1 = _mm512_loadu_si512(bq + 16);                                        \
            if ((n) > 2) b2 = _mm512_loadu_si512(bq + 32);                                        \
            if ((n) > 3) b3 = _mm512_loadu_si512(bq + 48);                                        \
            ROWN(n, 0) ROWN(n, 1) ROWN(n, 2) ROWN(n, 3) ROWN(n, 4) ROWN(n, 5)                     \
        }                                                                                         \
        OUTCOL(n, 0) OUTCOL(n, 1) OUTCOL(n, 2) OUTCOL(n, 3)                                       \
    }
KERN6(1) KERN6(2) KERN6(3) KERN6(4)
#define ROW(r) {kern_##r##_1, kern_##r##_2, kern_##r##_3, kern_##r##_4}
static const kern_fn KERN_TAB[MR][NRV] = {ROW(1), ROW(2), ROW(3), ROW(4), ROW(5), ROW(6)};

/* C = A W (+ the write-back ep: bias, activation, links; NULL: none) */
static void gemm(rf_i8_ctx *c, const i8_mat *q, int M, const float *A, int lda, float *C, int ldc, const rf_epi *ep)
{
    int np = (int)round16((size_t)q->n);
    size_t ar = (size_t)q->kq * 4;
    for (int r0 = 0; r0 < M; r0 += c->max_rows) { /* never more rows than the scratch holds */
        int mm = M - r0 < c->max_rows ? M - r0 : c->max_rows;
        quantize_rows(A + (size_t)r0 * lda, lda, mm, q->kin, q->kq, q->inv, c->a, c->ascale);
        for (int j0 = 0; j0 < q->n; j0 += NB) {
            int w = np - j0 < NB ? np - j0 : NB;     /* panel width */
            int cols = q->n - j0 < NB ? q->n - j0 : NB;
            int nr = (cols + 15) / 16;
            __mmask16 last = rf_mask16(cols - 16 * (nr - 1));
            const int32_t *bp = (const int32_t *)(q->b + (size_t)j0 * q->kq * 4);
            rf_epi pe = ep ? rf_epi_panel(ep, j0) : (rf_epi){0}; /* the panel's part of the write-back */
            for (int i0 = 0; i0 < mm; i0 += MR) {
                int mr = mm - i0 < MR ? mm - i0 : MR;
                KERN_TAB[mr - 1][nr - 1](c->a + i0 * ar, ar, bp, (size_t)w, q->kq, C + (size_t)(r0 + i0) * ldc + j0,
                                         ldc, c->ascale + i0, q->scale + j0, q->comp + j0, last, ep ? &pe : NULL);
            }
        }
    }
}

void rf_gemm_i8(rf_i8_ctx *c, int l, int k, int M, const float *A, int lda, float *C, int ldc)
{
    const i8_mat *q = mat_of(c, l, k);
    gemm(c, q, M, A, lda, C, ldc, NULL);
    if (q->tail) /* the fp32 columns */
        rf_gemm(0, 0, M, q->n, q->tail_k, 1.0f, A + q->kin, lda, q->tail, q->ldw, 1.0f, C, ldc);
}

int rf_gemm_i8_fused(rf_i8_ctx *c, int l, int k, int M, const float *A, int lda, float *C, int ldc, const rf_epi *ep)
{
    const i8_mat *q = mat_of(c, l, k);
    if (q->tail) return -1; /* the fp32 part would come after the write-back */
    gemm(c, q, M, A, lda, C, ldc, ep);
    return 0;
}

const float *rf_i8_smooth(const rf_i8_ctx *c, int l, int k, int *kin)
{
    const i8_mat *q = mat_of(c, l, k);
    *kin = q->kin;
    return q->smooth;
}
