/* topk.c - the top-K kernels of topk.h: exact fp32 and quantized (8-bit codes, VNNI) scans over
 * blocks of items, a threshold filter into per-query buffers compacted by quickselect, and the
 * exact re-rank of a shortlist. The SIMD code is chosen at run time (__builtin_cpu_supports), so
 * a PORTABLE=1 build uses it too; the portable code computes the same quantities. */
#include <immintrin.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "resflow/spec.h" /* RF_MAX_TASKS */
#include "serve/topk.h"

#define QG 8 /* queries scanned together over one block of items (the block stays in cache) */

typedef struct {
    float s;
    uint32_t i;
} ent;

typedef struct {
    ent *e;
    int n, cap, keep;
    float thr; /* an item must score above this to enter */
} coll;

struct rf_tk_scratch {
    int K, d, dq, max_q, max_k, max_sl, max_t, cap;
    coll *colls;      /* (max_t, max_q): chunk c, query q */
    ent *pool;        /* the collectors' entries */
    ent *merge;       /* per thread: max_t * cap */
    float *dots;      /* per thread: QG * BLOCK * K, then the re-rank's max_sl * K */
    float *sc;        /* per thread: max(BLOCK, max_sl) */
    float *vbuf;      /* per thread: max_sl * K (gathered biases) */
    int32_t *w4;      /* (max_q, K, dq / 4) packed signed 8-bit query weights */
    uint32_t *ubf;    /* (max_q, K, dq / 2) the query as pairs of bf16 (the bf16 scan) */
    float *qc, *qs;   /* (max_q, K) the query's constant and scale */
    size_t per_dots, per_sc;
};

/* ---- SIMD choice --------------------------------------------------------------------------- */

static int cpu_avx512(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f");
}
static int cpu_bf16(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bf16");
}
static int cpu_vnni(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vnni");
}

/* ---- exact dots ---------------------------------------------------------------------------- */

__attribute__((target("avx512f"))) static inline float dot_avx512(const float *a, const float *b, int d)
{
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    int j = 0;
    for (; j + 32 <= d; j += 32) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + j), _mm512_loadu_ps(b + j), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + j + 16), _mm512_loadu_ps(b + j + 16), s1);
    }
    if (j + 16 <= d) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + j), _mm512_loadu_ps(b + j), s0);
        j += 16;
    }
    if (j < d) {
        __mmask16 m = (__mmask16)((1u << (d - j)) - 1);
        s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + j), _mm512_maskz_loadu_ps(m, b + j), s1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

static float dot_plain(const float *a, const float *b, int d)
{
    float s[16] = {0};
    int j = 0;
    for (; j + 16 <= d; j += 16)
        for (int l = 0; l < 16; l++) s[l] += a[j + l] * b[j + l];
    for (int l = 0; j < d; j++, l++) s[l] += a[j] * b[j];
    float t = 0;
    for (int l = 0; l < 16; l++) t += s[l];
    return t;
}

typedef float (*dot_fn)(const float *, const float *, int);
static dot_fn pick_dot(void) { return cpu_avx512() ? dot_avx512 : dot_plain; }

void rf_tk_item_dots(const rf_tk_items *it, const float *u, size_t i, float *out)
{
    dot_fn dot = pick_dot();
    for (int k = 0; k < it->K; k++)
        out[k] = dot(u + (size_t)k * it->d, it->v + (i * (size_t)it->K + (size_t)k) * (size_t)it->d, it->d);
}

/* dots (n, K) of items i0 .. i0 + n with the query u (K, d) */
static void exact_block_plain(const rf_tk_items *it, const float *u, size_t i0, int n, float *dots)
{
    int K = it->K, d = it->d;
    const float *v = it->v + i0 * (size_t)K * (size_t)d;
    for (int i = 0; i < n; i++)
        for (int k = 0; k < K; k++) dots[i * K + k] = dot_plain(u + (size_t)k * d, v + ((size_t)i * K + k) * d, d);
}

/* the same with the AVX-512 dot product inlined (no call per item) */
__attribute__((target("avx512f"))) static void exact_block_avx512(const rf_tk_items *it, const float *u, size_t i0,
                                                                   int n, float *dots)
{
    int K = it->K, d = it->d;
    const float *v = it->v + i0 * (size_t)K * (size_t)d;
    for (int i = 0; i < n; i++)
        for (int k = 0; k < K; k++) dots[i * K + k] = dot_avx512(u + (size_t)k * d, v + ((size_t)i * K + k) * d, d);
}

typedef void (*exact_fn)(const rf_tk_items *, const float *, size_t, int, float *);

/* ---- quantized dots ------------------------------------------------------------------------ */

void rf_tk_quantize(size_t n, int K, int d, const float *v, float *qa, float *qb, uint8_t *codes, int threads)
{
    int dq = rf_tk_dq(d), KD = K * d;
    int t = threads > 0 ? threads : omp_get_max_threads();
    /* the range of every (task, dimension), one pass over the rows */
    for (int j = 0; j < K * dq; j++) qa[j] = 0, qb[j] = 0;
    if (n) {
        float *lo = qa, *hi = qb; /* (K, dq) used as (K*d) scratch first, then spread below */
        memcpy(lo, v, (size_t)KD * sizeof *lo);
        memcpy(hi, v, (size_t)KD * sizeof *hi);
#pragma omp parallel num_threads(t)
        {
            float l2[RF_MAX_TASKS * 64], h2[RF_MAX_TASKS * 64];
            for (int j0 = 0; j0 < KD; j0 += RF_MAX_TASKS * 64) {
                int m = KD - j0 < RF_MAX_TASKS * 64 ? KD - j0 : RF_MAX_TASKS * 64;
                memcpy(l2, v + j0, (size_t)m * sizeof *l2);
                memcpy(h2, v + j0, (size_t)m * sizeof *h2);
#pragma omp for schedule(static)
                for (size_t i = 1; i < n; i++) {
                    const float *x = v + i * (size_t)KD + j0;
                    for (int j = 0; j < m; j++) {
                        l2[j] = x[j] < l2[j] ? x[j] : l2[j];
                        h2[j] = x[j] > h2[j] ? x[j] : h2[j];
                    }
                }
#pragma omp critical
                for (int j = 0; j < m; j++) {
                    lo[j0 + j] = l2[j] < lo[j0 + j] ? l2[j] : lo[j0 + j];
                    hi[j0 + j] = h2[j] > hi[j0 + j] ? h2[j] : hi[j0 + j];
                }
#pragma omp barrier
            }
        }
        /* (K*d) -> (K, dq), from the end so nothing is overwritten before it is read */
        for (int k = K - 1; k >= 0; k--)
            for (int j = dq - 1; j >= 0; j--) {
                float l = j < d ? lo[k * d + j] : 0, h = j < d ? hi[k * d + j] : 0;
                qa[k * dq + j] = l;
                qb[k * dq + j] = h > l ? (h - l) / 255.0f : 1.0f;
            }
    } else {
        for (int j = 0; j < K * dq; j++) qb[j] = 1.0f;
    }
    size_t nb = (n + RF_TK_LANES - 1) / RF_TK_LANES;
    size_t per_blk = (size_t)K * dq * RF_TK_LANES;
#pragma omp parallel for num_threads(t) schedule(static)
    for (size_t b = 0; b < nb; b++) {
        uint8_t *c = codes + b * per_blk;
        for (int k = 0; k < K; k++)
            for (int g = 0; g < dq / 4; g++)
                for (int l = 0; l < RF_TK_LANES; l++)
                    for (int r = 0; r < 4; r++) {
                        size_t i = b * RF_TK_LANES + (size_t)l;
                        int j = 4 * g + r;
                        uint8_t code = 0;
                        if (i < n && j < d) {
                            float x = (v[(i * K + k) * (size_t)d + j] - qa[k * dq + j]) / qb[k * dq + j];
                            long q = lrintf(x);
                            code = (uint8_t)(q < 0 ? 0 : q > 255 ? 255 : q);
                        }
                        c[((size_t)k * (dq / 4) + g) * 64 + (size_t)l * 4 + (size_t)r] = code;
                    }
    }
}

/* Fold the query into 8-bit weights per task: <u, a + b c> = <u, a> + <u * b, c>, and
 * u * b ~ qs * w8 with w8 in -127..127. */
static void quantize_query(const rf_tk_items *it, const float *u, int32_t *w4, float *qc, float *qs)
{
    int K = it->K, d = it->d, dq = it->dq;
    for (int k = 0; k < K; k++) {
        const float *uk = u + (size_t)k * d, *a = it->qa + (size_t)k * dq, *b = it->qb + (size_t)k * dq;
        float m = 0;
        double c = 0;
        for (int j = 0; j < d; j++) {
            float w = fabsf(uk[j] * b[j]);
            m = w > m ? w : m;
            c += (double)uk[j] * a[j];
        }
        float s = m > 0 ? m / 127.0f : 1.0f;
        int8_t w8[4];
        for (int g = 0; g < dq / 4; g++) {
            for (int r = 0; r < 4; r++) {
                int j = 4 * g + r;
                long q = j < d ? lrintf(uk[j] * b[j] / s) : 0;
                w8[r] = (int8_t)(q < -127 ? -127 : q > 127 ? 127 : q);
            }
            memcpy(&w4[k * (dq / 4) + g], w8, 4);
        }
        qc[k] = (float)c;
        qs[k] = s;
    }
}

/* approximate dots (16, K) of one code block */
__attribute__((target("avx512f,avx512bw,avx512vnni"))) static void qblock_vnni(const uint8_t *blk, const int32_t *w4,
                                                                                 int K, int dq, const float *qc,
                                                                                 const float *qs, float *out)
{
    int G = dq / 4;
    for (int k = 0; k < K; k++) {
        const uint8_t *c = blk + (size_t)k * G * 64;
        const int32_t *w = w4 + k * G;
        __m512i a0 = _mm512_setzero_si512(), a1 = _mm512_setzero_si512();
        __m512i a2 = _mm512_setzero_si512(), a3 = _mm512_setzero_si512();
        int g = 0;
        for (; g + 4 <= G; g += 4) {
            a0 = _mm512_dpbusd_epi32(a0, _mm512_loadu_si512(c + g * 64), _mm512_set1_epi32(w[g]));
            a1 = _mm512_dpbusd_epi32(a1, _mm512_loadu_si512(c + g * 64 + 64), _mm512_set1_epi32(w[g + 1]));
            a2 = _mm512_dpbusd_epi32(a2, _mm512_loadu_si512(c + g * 64 + 128), _mm512_set1_epi32(w[g + 2]));
            a3 = _mm512_dpbusd_epi32(a3, _mm512_loadu_si512(c + g * 64 + 192), _mm512_set1_epi32(w[g + 3]));
        }
        for (; g < G; g++) a0 = _mm512_dpbusd_epi32(a0, _mm512_loadu_si512(c + g * 64), _mm512_set1_epi32(w[g]));
        __m512i acc = _mm512_add_epi32(_mm512_add_epi32(a0, a1), _mm512_add_epi32(a2, a3));
        __m512 f = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc), _mm512_set1_ps(qs[k]), _mm512_set1_ps(qc[k]));
        if (K == 1) {
            _mm512_storeu_ps(out, f);
        } else {
            float tmp[16];
            _mm512_storeu_ps(tmp, f);
            for (int l = 0; l < 16; l++) out[l * K + k] = tmp[l];
        }
    }
}

static void qblock_plain(const uint8_t *blk, const int32_t *w4, int K, int dq, const float *qc, const float *qs,
                         float *out)
{
    int G = dq / 4;
    for (int k = 0; k < K; k++) {
        int32_t acc[16] = {0};
        const uint8_t *c = blk + (size_t)k * G * 64;
        for (int g = 0; g < G; g++) {
            int8_t w[4];
            memcpy(w, &w4[k * G + g], 4);
            for (int l = 0; l < 16; l++)
                for (int r = 0; r < 4; r++) acc[l] += (int32_t)c[g * 64 + l * 4 + r] * w[r];
        }
        for (int l = 0; l < 16; l++) out[l * K + k] = (float)acc[l] * qs[k] + qc[k];
    }
}

typedef void (*qblock_fn)(const uint8_t *, const int32_t *, int, int, const float *, const float *, float *);

/* ---- bf16 dots (the measured alternative to the 8-bit codes) ------------------------------- */

static inline uint16_t to_bf16(float x)
{
    uint32_t b;
    memcpy(&b, &x, 4);
    if ((b & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((b >> 16) | 0x40); /* NaN stays NaN */
    return (uint16_t)((b + 0x7fffu + ((b >> 16) & 1u)) >> 16);
}

static inline float from_bf16(uint16_t h)
{
    uint32_t b = (uint32_t)h << 16;
    float x;
    memcpy(&x, &b, 4);
    return x;
}

void rf_tk_to_bf16(size_t n, int K, int d, const float *v, uint16_t *bf, int threads)
{
    int dq = rf_tk_dq(d), t = threads > 0 ? threads : omp_get_max_threads();
    size_t nb = (n + RF_TK_LANES - 1) / RF_TK_LANES, per_blk = (size_t)K * dq * RF_TK_LANES;
#pragma omp parallel for num_threads(t) schedule(static)
    for (size_t b = 0; b < nb; b++) {
        uint16_t *c = bf + b * per_blk;
        for (int k = 0; k < K; k++)
            for (int g = 0; g < dq / 2; g++)
                for (int l = 0; l < RF_TK_LANES; l++)
                    for (int r = 0; r < 2; r++) {
                        size_t i = b * RF_TK_LANES + (size_t)l;
                        int j = 2 * g + r;
                        c[((size_t)k * (dq / 2) + g) * 32 + (size_t)l * 2 + (size_t)r] =
                            i < n && j < d ? to_bf16(v[(i * K + k) * (size_t)d + j]) : 0;
                    }
    }
}

/* the query as bf16 pairs per task: ubf (K, dq / 2) */
static void query_bf16(const rf_tk_items *it, const float *u, uint32_t *ubf)
{
    int K = it->K, d = it->d, G = it->dq / 2;
    for (int k = 0; k < K; k++)
        for (int g = 0; g < G; g++) {
            int j = 2 * g;
            uint16_t lo = j < d ? to_bf16(u[(size_t)k * d + j]) : 0, hi = j + 1 < d ? to_bf16(u[(size_t)k * d + j + 1]) : 0;
            ubf[k * G + g] = (uint32_t)lo | (uint32_t)hi << 16;
        }
}

/* approximate dots (16, K) of one bf16 block: vdpbf16ps, 16 items x 2 dimensions per instruction */
__attribute__((target("avx512f,avx512bf16"))) static void bblock_avx512(const uint16_t *blk, const uint32_t *ubf, int K,
                                                                         int dq, float *out)
{
    int G = dq / 2;
    for (int k = 0; k < K; k++) {
        const uint16_t *c = blk + (size_t)k * G * 32;
        const uint32_t *w = ubf + k * G;
        __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps(), a2 = _mm512_setzero_ps(), a3 = _mm512_setzero_ps();
        int g = 0;
#define BF(acc, o) acc = _mm512_dpbf16_ps(acc, (__m512bh)_mm512_loadu_si512(c + (g + o) * 32), \
                                          (__m512bh)_mm512_set1_epi32((int)w[g + o]))
        for (; g + 4 <= G; g += 4) {
            BF(a0, 0);
            BF(a1, 1);
            BF(a2, 2);
            BF(a3, 3);
        }
        for (; g < G; g++) BF(a0, 0);
#undef BF
        __m512 f = _mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3));
        if (K == 1) {
            _mm512_storeu_ps(out, f);
        } else {
            float tmp[16];
            _mm512_storeu_ps(tmp, f);
            for (int l = 0; l < 16; l++) out[l * K + k] = tmp[l];
        }
    }
}

static void bblock_plain(const uint16_t *blk, const uint32_t *ubf, int K, int dq, float *out)
{
    int G = dq / 2;
    for (int k = 0; k < K; k++) {
        float acc[16] = {0};
        const uint16_t *c = blk + (size_t)k * G * 32;
        for (int g = 0; g < G; g++) {
            float w0 = from_bf16((uint16_t)(ubf[k * G + g] & 0xffffu)), w1 = from_bf16((uint16_t)(ubf[k * G + g] >> 16));
            for (int l = 0; l < 16; l++) acc[l] += from_bf16(c[g * 32 + l * 2]) * w0 + from_bf16(c[g * 32 + l * 2 + 1]) * w1;
        }
        for (int l = 0; l < 16; l++) out[l * K + k] = acc[l];
    }
}

typedef void (*bblock_fn)(const uint16_t *, const uint32_t *, int, int, float *);

/* ---- selection ----------------------------------------------------------------------------- */

static inline int better(ent a, ent b) { return a.s > b.s || (a.s == b.s && a.i < b.i); }

/* Reorder e[0..n) so that e[0..m) are its m best (any order), 0 < m <= n. */
static void select_top(ent *e, int n, int m)
{
    int lo = 0, hi = n - 1, t = m - 1;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        /* median of three as the pivot */
        if (better(e[mid], e[lo])) { ent x = e[mid]; e[mid] = e[lo]; e[lo] = x; }
        if (better(e[hi], e[lo])) { ent x = e[hi]; e[hi] = e[lo]; e[lo] = x; }
        if (better(e[hi], e[mid])) { ent x = e[hi]; e[hi] = e[mid]; e[mid] = x; }
        ent p = e[mid];
        int i = lo, j = hi;
        while (i <= j) {
            while (better(e[i], p)) i++;
            while (better(p, e[j])) j--;
            if (i <= j) {
                ent x = e[i];
                e[i++] = e[j];
                e[j--] = x;
            }
        }
        if (t <= j) hi = j;
        else if (t >= i) lo = i;
        else break;
    }
}

/* Sort e[0..n) best first. */
static void sort_ents(ent *e, int n)
{
    while (n > 16) {
        int h = n / 2;
        select_top(e, n, h); /* e[0..h) are the h best: sort both halves */
        sort_ents(e + h, n - h);
        n = h;
    }
    for (int i = 1; i < n; i++) {
        ent x = e[i];
        int j = i;
        for (; j > 0 && better(x, e[j - 1]); j--) e[j] = e[j - 1];
        e[j] = x;
    }
}

static void compact(coll *c)
{
    select_top(c->e, c->n, c->keep);
    c->n = c->keep;
    float w = c->e[0].s;
    for (int j = 1; j < c->keep; j++) w = c->e[j].s < w ? c->e[j].s : w;
    c->thr = w;
}

static inline void push(coll *c, float s, uint32_t i)
{
    if (s > c->thr) {
        c->e[c->n++] = (ent){s, i};
        if (c->n == c->cap) compact(c);
    }
}

__attribute__((target("avx512f"))) static void filter_avx512(coll *c, const float *sc, int n, size_t base)
{
    int j = 0;
    for (; j + 16 <= n; j += 16) {
        __mmask16 m = _mm512_cmp_ps_mask(_mm512_loadu_ps(sc + j), _mm512_set1_ps(c->thr), _CMP_GT_OQ);
        while (m) {
            int l = __builtin_ctz(m);
            m &= (__mmask16)(m - 1);
            push(c, sc[j + l], (uint32_t)(base + (size_t)j + (size_t)l));
        }
    }
    for (; j < n; j++) push(c, sc[j], (uint32_t)(base + (size_t)j));
}

static void filter_plain(coll *c, const float *sc, int n, size_t base)
{
    for (int j = 0; j < n; j++) push(c, sc[j], (uint32_t)(base + (size_t)j));
}

typedef void (*filter_fn)(coll *, const float *, int, size_t);

/* ---- scratch ------------------------------------------------------------------------------- */

void rf_tk_scratch_free(rf_tk_scratch *s)
{
    if (!s) return;
    free(s->colls);
    free(s->pool);
    free(s->merge);
    free(s->dots);
    free(s->sc);
    free(s->vbuf);
    free(s->w4);
    free(s->ubf);
    free(s->qc);
    free(s->qs);
    free(s);
}

rf_tk_scratch *rf_tk_scratch_create(int K, int d, int max_q, int max_k, int max_shortlist, int max_threads)
{
    if (K < 1 || d < 1 || max_q < 1 || max_k < 1 || max_threads < 1) return NULL;
    rf_tk_scratch *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->K = K;
    s->d = d;
    s->dq = rf_tk_dq(d);
    s->max_q = max_q;
    s->max_k = max_k;
    s->max_sl = max_shortlist > max_k ? max_shortlist : max_k;
    s->max_t = max_threads;
    s->cap = 2 * s->max_sl + 16;
    size_t nc = (size_t)max_threads * max_q;
    s->per_dots = (size_t)K * (QG * RF_TK_BLOCK > s->max_sl ? QG * RF_TK_BLOCK : s->max_sl);
    s->per_sc = (size_t)(RF_TK_BLOCK > s->max_sl ? RF_TK_BLOCK : s->max_sl);
    s->colls = calloc(nc, sizeof *s->colls);
    s->pool = malloc(nc * (size_t)s->cap * sizeof *s->pool);
    s->merge = malloc((size_t)max_threads * max_threads * (size_t)s->cap * sizeof *s->merge);
    s->dots = malloc((size_t)max_threads * s->per_dots * sizeof *s->dots);
    s->sc = malloc((size_t)max_threads * s->per_sc * sizeof *s->sc);
    s->vbuf = malloc((size_t)max_threads * s->max_sl * K * sizeof *s->vbuf);
    s->w4 = malloc((size_t)max_q * K * (s->dq / 4) * sizeof *s->w4);
    s->ubf = malloc((size_t)max_q * K * (s->dq / 2) * sizeof *s->ubf);
    s->qc = malloc((size_t)max_q * K * sizeof *s->qc);
    s->qs = malloc((size_t)max_q * K * sizeof *s->qs);
    if (!s->colls || !s->pool || !s->merge || !s->dots || !s->sc || !s->vbuf || !s->w4 || !s->ubf || !s->qc || !s->qs) {
        rf_tk_scratch_free(s);
        return NULL;
    }
    for (size_t c = 0; c < nc; c++) s->colls[c].e = s->pool + c * (size_t)s->cap;
    return s;
}

int rf_tk_shortlist(const rf_tk_opts *o)
{
    if (!o->quantized) return o->k;
    int sl = o->shortlist > 0 ? o->shortlist : (10 * o->k > 1000 ? 10 * o->k : 1000);
    return sl < o->k ? o->k : sl;
}

/* ---- search -------------------------------------------------------------------------------- */

typedef struct {
    const rf_tk_items *it;
    const rf_tk_opts *o;
    rf_tk_scratch *s;
    const float *u;
    dot_fn dot;
    exact_fn exact;
    qblock_fn qblock;
    bblock_fn bblock;
    filter_fn filter;
} run;

static void score_block(const run *r, int q, int tid, const float *dots, const float *vb, int n, float *out)
{
    if (r->o->score) {
        r->o->score(r->o->ud, q, tid, dots, vb, n, out);
        return;
    }
    for (int i = 0; i < n; i++) out[i] = dots[i] + (vb ? vb[i] : 0.0f);
}

/* What the scan keeps per query: the shortlist when quantized, 2 k (within the scratch) when
 * an approximate score ranks the scan, else k. */
static int keep_of(const rf_tk_opts *o, const rf_tk_scratch *s)
{
    if (o->quantized) return rf_tk_shortlist(o);
    if (o->approx) return 2 * o->k < s->max_sl ? 2 * o->k : s->max_sl;
    return o->k;
}

/* the scan's score (approx when given) */
static void scan_score(const run *r, int q, int tid, const float *dots, const float *vb, int n, float *out)
{
    if (r->o->approx) {
        r->o->approx(r->o->ud, q, tid, dots, vb, n, out);
        return;
    }
    score_block(r, q, tid, dots, vb, n, out);
}

/* Scan items [i0, i1) (i0 a multiple of 16) for queries q0 .. q0 + nq into collector set c. */
static void scan(const run *r, int tid, int c, size_t i0, size_t i1, int q0, int nq)
{
    const rf_tk_items *it = r->it;
    rf_tk_scratch *s = r->s;
    int K = it->K;
    float *dots = s->dots + (size_t)tid * s->per_dots, *sc = s->sc + (size_t)tid * s->per_sc;
    size_t per_blk = (size_t)K * it->dq * RF_TK_LANES;
    for (size_t b = i0; b < i1; b += RF_TK_BLOCK) {
        int n = (int)(i1 - b < RF_TK_BLOCK ? i1 - b : RF_TK_BLOCK);
        const float *vb = it->vb ? it->vb + b * K : NULL;
        for (int qq = 0; qq < nq; qq++) {
            int q = q0 + qq;
            float *dq = dots + (size_t)qq * RF_TK_BLOCK * K;
            if (r->o->quantized == RF_TK_BF16) {
                const uint32_t *ubf = s->ubf + (size_t)q * K * (it->dq / 2);
                for (int l = 0; l < n; l += RF_TK_LANES)
                    r->bblock(it->bf + (b + (size_t)l) / RF_TK_LANES * per_blk, ubf, K, it->dq, dq + (size_t)l * K);
            } else if (r->o->quantized) {
                const int32_t *w4 = s->w4 + (size_t)q * K * (it->dq / 4);
                for (int l = 0; l < n; l += RF_TK_LANES)
                    r->qblock(it->codes + (b + (size_t)l) / RF_TK_LANES * per_blk, w4, K, it->dq, s->qc + (size_t)q * K,
                              s->qs + (size_t)q * K, dq + (size_t)l * K);
            } else {
                r->exact(it, r->u + (size_t)q * K * it->d, b, n, dq);
            }
            scan_score(r, q, tid, dq, vb, n, sc);
            r->filter(&s->colls[(size_t)c * s->max_q + q], sc, n, b);
        }
    }
}

/* Merge query q's collectors (one per thread), re-rank when quantized, write its results. */
static int finish(const run *r, int tid, int q, int nthreads, uint32_t *idx, float *score, float *dots)
{
    const rf_tk_items *it = r->it;
    rf_tk_scratch *s = r->s;
    int K = it->K, k = r->o->k;
    ent *m = s->merge + (size_t)tid * s->max_t * s->cap;
    int n = 0;
    for (int c = 0; c < nthreads; c++) {
        coll *cl = &s->colls[(size_t)c * s->max_q + q];
        memcpy(m + n, cl->e, (size_t)cl->n * sizeof *m);
        n += cl->n;
    }
    int keep = keep_of(r->o, s);
    if (n > keep) select_top(m, n, keep), n = keep;
    const float *u = r->u + (size_t)q * K * it->d;
    float *dd = s->dots + (size_t)tid * s->per_dots, *sc = s->sc + (size_t)tid * s->per_sc;
    if (r->o->quantized || r->o->approx) {
        float *vb = it->vb ? s->vbuf + (size_t)tid * s->max_sl * K : NULL;
        for (int j = 0; j < n; j++) {
            size_t i = m[j].i;
            for (int t = 0; t < K; t++)
                dd[(size_t)j * K + t] = r->dot(u + (size_t)t * it->d, it->v + (i * K + (size_t)t) * it->d, it->d);
            if (vb) memcpy(vb + (size_t)j * K, it->vb + i * K, (size_t)K * sizeof *vb);
        }
        score_block(r, q, tid, dd, vb, n, sc);
        int w = 0;
        for (int j = 0; j < n; j++)
            if (sc[j] > -INFINITY) m[w++] = (ent){sc[j], m[j].i};
        n = w;
        if (n > k) select_top(m, n, k), n = k;
    }
    sort_ents(m, n);
    for (int j = 0; j < n; j++) {
        idx[(size_t)q * k + j] = m[j].i;
        score[(size_t)q * k + j] = m[j].s;
        if (dots) rf_tk_item_dots(it, u, m[j].i, dots + ((size_t)q * k + j) * K);
    }
    return n;
}

rf_status rf_tk_search(const rf_tk_items *it, const float *u, int Q, const rf_tk_opts *o, rf_tk_scratch *s,
                       uint32_t *idx, float *score, float *dots, int *nout, rf_error *err)
{
    if (!it || !u || !o || !s || !idx || !score || !nout || Q < 0)
        return rf_errorf(err, RF_EUSAGE, "top-k search: NULL argument");
    int t = o->threads > 0 ? o->threads : 1;
    int sl = rf_tk_shortlist(o);
    if (o->k < 1 || o->k > s->max_k || Q > s->max_q || t > s->max_t || sl > s->max_sl || it->K != s->K ||
        it->d != s->d)
        return rf_errorf(err, RF_EUSAGE,
                         "top-k search: k %d (1..%d), %d queries (<= %d), %d threads (<= %d), shortlist %d (<= %d)",
                         o->k, s->max_k, Q, s->max_q, t, s->max_t, sl, s->max_sl);
    if (o->quantized < 0 || o->quantized > RF_TK_BF16)
        return rf_errorf(err, RF_EUSAGE, "top-k search: quantized %d (0, 1 int8, 2 bf16)", o->quantized);
    if ((o->quantized == RF_TK_INT8 && !it->codes) || (o->quantized == RF_TK_BF16 && !it->bf))
        return rf_errorf(err, RF_EUSAGE, "top-k search: the index has no %s compact copy",
                         o->quantized == RF_TK_BF16 ? "bf16" : "8-bit");
    if ((!o->score && it->K != 1) || (o->approx && !o->score))
        return rf_errorf(err, RF_EUSAGE, "top-k search: %d tasks need a score function", it->K);
    if (it->n > (size_t)UINT32_MAX) return rf_errorf(err, RF_EUSAGE, "top-k search: more than 2^32 items");
    run r = {it, o, s, u, pick_dot(), cpu_avx512() ? exact_block_avx512 : exact_block_plain,
             cpu_vnni() ? qblock_vnni : qblock_plain, cpu_bf16() ? bblock_avx512 : bblock_plain,
             cpu_avx512() ? filter_avx512 : filter_plain};
    /* Work units: (a range of items, a group of queries). Fewer queries than threads: the items
     * are cut into 8 ranges per thread taken dynamically, so a thread the OS holds back (other
     * jobs on the cores) has its share taken over instead of being waited for. Each thread
     * collects into its own per-query collectors, whatever ranges it scans. */
    int nchunks = Q >= t ? 1 : 8 * t, ngroups = (Q + QG - 1) / QG;
    int keep = keep_of(o, s);
    for (int c = 0; c < t; c++)
        for (int q = 0; q < Q; q++) {
            coll *cl = &s->colls[(size_t)c * s->max_q + q];
            *cl = (coll){cl->e, 0, 2 * keep + 16, keep, -INFINITY};
        }
    if (o->quantized == RF_TK_BF16)
        for (int q = 0; q < Q; q++)
            query_bf16(it, u + (size_t)q * it->K * it->d, s->ubf + (size_t)q * it->K * (it->dq / 2));
    else if (o->quantized)
        for (int q = 0; q < Q; q++)
            quantize_query(it, u + (size_t)q * it->K * it->d, s->w4 + (size_t)q * it->K * (it->dq / 4),
                           s->qc + (size_t)q * it->K, s->qs + (size_t)q * it->K);
    size_t nb = (it->n + RF_TK_LANES - 1) / RF_TK_LANES;
    int units = nchunks * ngroups;
#pragma omp parallel for num_threads(t) schedule(dynamic, 1)
    for (int w = 0; w < units; w++) {
        int c = w / ngroups, g = w % ngroups;
        size_t b0 = nb * (size_t)c / (size_t)nchunks, b1 = nb * (size_t)(c + 1) / (size_t)nchunks;
        size_t i0 = b0 * RF_TK_LANES, i1 = b1 * RF_TK_LANES < it->n ? b1 * RF_TK_LANES : it->n;
        int q0 = g * QG, nq = Q - q0 < QG ? Q - q0 : QG;
        int tid = omp_get_thread_num();
        if (i0 < i1) scan(&r, tid, tid, i0, i1, q0, nq);
    }
    /* one query: merged by the calling thread, no second wake-up of the team */
#pragma omp parallel for num_threads(t) schedule(dynamic, 1) if (Q > 1)
    for (int q = 0; q < Q; q++) nout[q] = finish(&r, omp_get_thread_num(), q, t, idx, score, dots);
    return RF_OK;
}
