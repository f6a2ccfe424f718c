/* sort.h - the one sort of resflow's hot paths: a stable LSD radix sort of 32- or 64-bit
 * unsigned keys carrying a payload of any fixed size (or none), 11-bit digits (3 passes for
 * 32-bit keys, 6 for 64-bit ones), a pass skipped when every key has the same digit.
 * Internal, not installed.
 *
 * The digit histograms come first: rf_sort_count32/64 add one key (a caller that gathers its
 * keys anyway counts them on the way, sparing a read), rf_sort_hist32/64 count an array; or
 * pass h = NULL and the sort counts (and allocates the histograms) itself. The sort uses up h.
 * Keys and payloads are sorted between k/v and the scratch kt/vt (same sizes); on return *k
 * and *v point at whichever holds the result. Typed wrappers: RF_SORT_DEFINE below.
 */
#ifndef RESFLOW_SORT_H
#define RESFLOW_SORT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define RF_SORT_BITS 11
#define RF_SORT_BUCKETS ((size_t)1 << RF_SORT_BITS)
#define RF_SORT_PASSES(kbits) (((kbits) + RF_SORT_BITS - 1) / RF_SORT_BITS)
/* size_t counts in the histograms of 32- and 64-bit keys */
#define RF_SORT_HIST32 (RF_SORT_PASSES(32) * RF_SORT_BUCKETS)
#define RF_SORT_HIST64 (RF_SORT_PASSES(64) * RF_SORT_BUCKETS)

/* Order-preserving map of a non-NaN float to uint32 (-0.0 and +0.0 map to the same key). */
static inline uint32_t rf_sort_key_f32(float s)
{
    uint32_t u;
    if (s == 0.0f) s = 0.0f; /* fold -0.0 into +0.0 */
    memcpy(&u, &s, sizeof u);
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

/* Count one key into zeroed histograms h (RF_SORT_HIST32 / RF_SORT_HIST64 entries). */
static inline void rf_sort_count32(size_t *h, uint32_t key)
{
    for (int p = 0; p < RF_SORT_PASSES(32); p++)
        h[(size_t)p * RF_SORT_BUCKETS + ((key >> (p * RF_SORT_BITS)) & (RF_SORT_BUCKETS - 1))]++;
}
static inline void rf_sort_count64(size_t *h, uint64_t key)
{
    for (int p = 0; p < RF_SORT_PASSES(64); p++)
        h[(size_t)p * RF_SORT_BUCKETS + ((key >> (p * RF_SORT_BITS)) & (RF_SORT_BUCKETS - 1))]++;
}
/* Count k[0..m) into zeroed histograms h. */
void rf_sort_hist32(size_t *h, const uint32_t *k, size_t m);
void rf_sort_hist64(size_t *h, const uint64_t *k, size_t m);

/* Sort k[0..m) ascending (stable), carrying the vsize-byte payloads at *v (v or *v NULL: no
 * payload). h: the histograms of k[0..m), or NULL. Returns 0, or -1 when h is NULL and its
 * allocation fails (nothing moved then). */
int rf_radix_sort32_(uint32_t **k, void **v, uint32_t *kt, void *vt, size_t vsize, size_t m, size_t *h);
int rf_radix_sort64_(uint64_t **k, void **v, uint64_t *kt, void *vt, size_t vsize, size_t m, size_t *h);

/* static inline int NAME(uintBITS_t **k, T **v, uintBITS_t *kt, T *vt, size_t m, size_t *h):
 * the sort above for payloads of type T (v may be NULL). */
#define RF_SORT_DEFINE(NAME, BITS, T)                                                                   \
    static inline int NAME(uint##BITS##_t **k, T **v, uint##BITS##_t *kt, T *vt, size_t m, size_t *h) \
    {                                                                                                 \
        void *pv = v ? (void *)*v : NULL;                                                             \
        int r = rf_radix_sort##BITS##_(k, &pv, kt, vt, sizeof(T), m, h);                              \
        if (v) *v = (T *)pv;                                                                          \
        return r;                                                                                     \
    }

RF_SORT_DEFINE(rf_radix_sort32_f32, 32, float) /* AUC: score keys, weights */
RF_SORT_DEFINE(rf_radix_sort64_zu, 64, size_t) /* groups, order counts: keys, row indices */

#endif
