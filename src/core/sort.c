/* sort.c - the LSD radix sort of sort.h. One body (sort_body) for both key widths and every
 * payload size; it is inlined with the key width and the payload size as constants, so each
 * common case (no payload, 4, 8, 12 or 16 bytes) compiles to its own loop of plain moves. */
#include <stdlib.h>

#include "core/sort.h"

#if defined(__GNUC__)
#define ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define ALWAYS_INLINE inline
#endif

void rf_sort_hist32(size_t *h, const uint32_t *k, size_t m)
{
    for (size_t i = 0; i < m; i++) rf_sort_count32(h, k[i]);
}

void rf_sort_hist64(size_t *h, const uint64_t *k, size_t m)
{
    for (size_t i = 0; i < m; i++) rf_sort_count64(h, k[i]); /* all passes' histograms in one read */
}

static ALWAYS_INLINE uint64_t key_at(const void *k, size_t i, size_t kb)
{
    return kb == 4 ? ((const uint32_t *)k)[i] : ((const uint64_t *)k)[i];
}

/* kb: key bytes (4 or 8), vs: payload bytes (0: none). */
static ALWAYS_INLINE void sort_body(void **k, void **v, void *kt, void *vt, size_t vs, size_t m, size_t *h,
                                    size_t kb)
{
    unsigned char *a = *k, *at = kt, *av = vs ? *v : NULL, *avt = vt;
    int passes = kb == 4 ? RF_SORT_PASSES(32) : RF_SORT_PASSES(64);
    for (int p = 0; p < passes; p++) {
        unsigned sh = (unsigned)(RF_SORT_BITS * p);
        size_t *c = h + (size_t)p * RF_SORT_BUCKETS;
        if (m == 0 || c[(key_at(a, 0, kb) >> sh) & (RF_SORT_BUCKETS - 1)] == m) continue; /* constant digit */
        size_t sum = 0;
        for (size_t d = 0; d < RF_SORT_BUCKETS; d++) {
            size_t x = c[d];
            c[d] = sum;
            sum += x;
        }
        for (size_t i = 0; i < m; i++) {
            uint64_t x = key_at(a, i, kb);
            size_t o = c[(x >> sh) & (RF_SORT_BUCKETS - 1)]++;
            if (kb == 4) ((uint32_t *)at)[o] = (uint32_t)x;
            else ((uint64_t *)at)[o] = x;
            if (vs) memcpy(avt + o * vs, av + i * vs, vs);
        }
        unsigned char *t = a;
        a = at;
        at = t;
        t = av;
        av = avt;
        avt = t;
    }
    *k = a;
    if (vs) *v = av;
}

/* The body for the payload size vs, specialised for the common sizes. */
static ALWAYS_INLINE void sort_sized(void **k, void **v, void *kt, void *vt, size_t vs, size_t m, size_t *h,
                                     size_t kb)
{
    switch (vs) {
    case 0: sort_body(k, v, kt, vt, 0, m, h, kb); break;
    case 4: sort_body(k, v, kt, vt, 4, m, h, kb); break;
    case 8: sort_body(k, v, kt, vt, 8, m, h, kb); break;
    case 12: sort_body(k, v, kt, vt, 12, m, h, kb); break;
    case 16: sort_body(k, v, kt, vt, 16, m, h, kb); break;
    default: sort_body(k, v, kt, vt, vs, m, h, kb); break;
    }
}

/* The sort of kb-byte keys (4 or 8), counting the histograms when h is NULL. */
static int sort_keys(void **k, void **v, void *kt, void *vt, size_t vsize, size_t m, size_t *h, size_t kb)
{
    size_t *own = NULL;
    if (!h) {
        if (!(h = own = calloc(kb == 4 ? RF_SORT_HIST32 : RF_SORT_HIST64, sizeof *h))) return -1;
        if (kb == 4) rf_sort_hist32(h, *k, m);
        else rf_sort_hist64(h, *k, m);
    }
    vsize = v && *v ? vsize : 0;
    if (kb == 4) sort_sized(k, v, kt, vt, vsize, m, h, 4);
    else sort_sized(k, v, kt, vt, vsize, m, h, 8);
    free(own);
    return 0;
}

int rf_radix_sort32_(uint32_t **k, void **v, uint32_t *kt, void *vt, size_t vsize, size_t m, size_t *h)
{
    void *kk = *k;
    int r = sort_keys(&kk, v, kt, vt, vsize, m, h, 4);
    *k = kk;
    return r;
}

int rf_radix_sort64_(uint64_t **k, void **v, uint64_t *kt, void *vt, size_t vsize, size_t m, size_t *h)
{
    void *kk = *k;
    int r = sort_keys(&kk, v, kt, vt, vsize, m, h, 8);
    *k = kk;
    return r;
}
