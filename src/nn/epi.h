/* epi.h - the fused write-back of the scoring GEMMs (gemm_int8.c, gemm_bf16.c): a product's
 * vector v of 16 columns becomes act(v + bias) (+ the parent tower's value of the same row), the
 * same operations in the same order as forward.c's bias + activation + link passes
 * (rf_bias_act_link_fwd), so the same bits. Internal to nn/. */
#ifndef RESFLOW_EPI_H
#define RESFLOW_EPI_H

#include <immintrin.h>

#include "resflow/spec.h" /* RF_MAX_LAYERS */

struct rf_model;

/* A matrix's write-back (pointers at the matrix's first column; a kernel takes them at its
 * panel's first column). */
typedef struct rf_epi {
    const float *bias, *alpha; /* alpha NULL: ReLU, else PReLU slopes */
    const int *link;           /* per 16-column vector: the parent's column offset from the value
                                * (0: none); NULL: no links */
} rf_epi;

/* The link offsets of every hidden layer of a model, for the fused write-back of its scoring
 * workspaces: link[l] per 16-column vector of layer l's matrices (layer 0: one matrix of K*H
 * columns; a later layer: one of H per task, task k's at [k * its vectors]), the parent's column
 * offset from the value (0: none); NULL when layer l's links cannot be fused: a task whose parent
 * has a higher index (forward.c runs a layer's towers in index order), or in layer 0 towers that
 * are not whole 16-column vectors (a parent's vector of a row must be written before its
 * child's). */
typedef struct rf_epi_links {
    int *link[RF_MAX_LAYERS];
} rf_epi_links;
/* NULL when out of memory. */
rf_epi_links *rf_epi_links_create(const struct rf_model *m);
void rf_epi_links_free(rf_epi_links *t);
/* Layer l's (task k's) write-back into *ep: its bias and slopes, and its links when links is
 * set. 0, or -1 when those links cannot be fused (*ep then unset). */
int rf_epi_of(const rf_epi_links *t, const struct rf_model *m, int l, int k, int links, rf_epi *ep);

/* ep shifted to the panel that starts at column j0 (a multiple of 16). */
static inline rf_epi rf_epi_panel(const rf_epi *ep, int j0)
{
    return (rf_epi){ep->bias + j0, ep->alpha ? ep->alpha + j0 : NULL, ep->link ? ep->link + j0 / 16 : NULL};
}

/* The mask of the first n (clamped to 0..16) lanes of a vector: a panel's last, partial one. */
static inline __mmask16 rf_mask16(long n) { return n >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n > 0 ? n : 0)) - 1); }

/* alpha * v + beta * C (C's vector at c, mask m; not read when beta is 0): a GEMM's write-back,
 * the bf16 and fp32 kernels' the same operations. */
__attribute__((target("avx512f"))) static inline __m512 rf_wb_ab(__m512 v, const float *c, __mmask16 m, float alpha,
                                                                 float beta)
{
    if (alpha != 1.0f) v = _mm512_mul_ps(v, _mm512_set1_ps(alpha));
    if (beta == 1.0f) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, c));
    else if (beta != 0.0f) v = _mm512_fmadd_ps(_mm512_set1_ps(beta), _mm512_maskz_loadu_ps(m, c), v);
    return v;
}

/* v (vector j of the panel at c, mask m) through the write-back ep. */
__attribute__((target("avx512f"))) static inline __m512 rf_epi_apply(__m512 v, const float *c, __mmask16 m,
                                                                     const rf_epi *ep, int j)
{
    v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, ep->bias + 16 * j));
    __mmask16 pos = _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_GT_OQ);
    v = ep->alpha ? _mm512_mask_blend_ps(pos, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, ep->alpha + 16 * j), v), v)
                  : _mm512_maskz_mov_ps(pos, v);
    if (ep->link && ep->link[j]) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, c + ep->link[j]));
    return v;
}

#endif
