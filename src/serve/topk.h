/* topk.h - top-K kernels over item vectors (internal to the serve wing).
 *
 * Items: n items, K tasks, width d; item i's vector of task k is v[(i*K + k)*d .. +d), its bias
 * vb[i*K + k] (vb may be NULL: 0). A query is K user vectors u (K, d). The kernel computes the K
 * dot products <u_k, v_ik> of every item and ranks items by a score computed from them:
 * dot + vb when K == 1 and no score function is given (any increasing function of the single
 * logit ranks the same), else by the caller's score function over blocks of items (e.g. the
 * twin model's logits, sigmoid and the stored fusion formula).
 *
 * Exact path: every item's dots in fp32 (AVX-512 FMA when the CPU has it, else portable code),
 * blocks of items, a threshold filter and a buffer compacted by quickselect per query
 * (cheaper than a heap: an item below the running K-th best costs one compare).
 * Quantized path: the compact copy (per task and dimension an offset a and a step b, codes
 * c in 0..255: v ~ a + b c) scanned with the query folded into signed 8-bit weights
 * (<u, v> ~ <u, a> + s <w8, c>; AVX512-VNNI vpdpbusd over 16 items at once, else portable),
 * a shortlist of the best approximate scores, then the exact fp32 dots of the shortlist and the
 * exact ranking of it. Codes are laid out for that: per block of 16 items, per task, per group
 * of 4 dimensions, 16 x 4 bytes (item-major inside the group).
 *
 * Ties rank by the lower item index; items whose score is NaN or -inf are never returned.
 * Everything a search needs is in a rf_tk_scratch made up front: no malloc per search. */
#ifndef RESFLOW_SERVE_TOPK_H
#define RESFLOW_SERVE_TOPK_H

#include <stddef.h>
#include <stdint.h>

#include "resflow/rank.h"
#include "resflow/resflow.h"

#define RF_TK_LANES 16  /* items per code block */
#define RF_TK_BLOCK 256 /* items per scan block: a score function gets at most max(this, shortlist) */

typedef struct {
    size_t n;
    int K, d;
    const float *v;        /* (n, K, d) */
    const float *vb;       /* (n, K) or NULL */
    /* the compact copy, NULL when absent */
    int dq;                /* d rounded up to a multiple of 4 */
    const float *qa, *qb;  /* (K, dq) offset and step per task and dimension */
    const uint8_t *codes;  /* rf_tk_codes_bytes(n, K, d) */
    /* the bf16 alternative (bench only, see docs/serving.md), NULL when absent */
    const uint16_t *bf;    /* rf_tk_bf16_bytes(n, K, d) / 2 */
} rf_tk_items;

static inline int rf_tk_dq(int d) { return (d + 3) & ~3; }
/* Bytes of the compact copy: ceil(n / 16) blocks of K * dq * 16. */
static inline size_t rf_tk_codes_bytes(size_t n, int K, int d)
{
    return (n + RF_TK_LANES - 1) / RF_TK_LANES * (size_t)K * (size_t)rf_tk_dq(d) * RF_TK_LANES;
}
/* Bytes of the bf16 copy: ceil(n / 16) blocks of K * dq * 16 * 2 (per block, per task, per pair
 * of dimensions, 16 items x 2 bf16, item-major inside the pair: the vdpbf16ps layout). */
static inline size_t rf_tk_bf16_bytes(size_t n, int K, int d)
{
    return 2 * rf_tk_codes_bytes(n, K, d);
}
/* Round v (n, K, d) to bf16 (nearest even) in the layout above; threads as rf_tk_quantize. */
void rf_tk_to_bf16(size_t n, int K, int d, const float *v, uint16_t *bf, int threads);

/* Fit the per-(task, dimension) ranges and write the codes: qa, qb (K, dq), codes as above.
 * threads: OpenMP threads (0 = the caller's default). */
void rf_tk_quantize(size_t n, int K, int d, const float *v, float *qa, float *qb, uint8_t *codes,
                    int threads);

/* The ranking score of n items from their dots (n, K) and biases vb (n, K, NULL = 0) for query
 * q: out (n). thread is the caller's slot (0 .. threads-1) for per-thread scratch of its own. */
typedef void (*rf_tk_score_fn)(void *ud, int q, int thread, const float *dots, const float *vb, int n,
                               float *out);

#define RF_TK_INT8 1
#define RF_TK_BF16 2

typedef struct {
    int k;                 /* results per query */
    int quantized;         /* RF_TK_INT8 (1): compact copy + exact re-rank of the shortlist;
                            * RF_TK_BF16 (2): the same over the bf16 copy; 0: exact */
    int shortlist;         /* quantized: candidates re-ranked (>= k; 0 = max(10 k, 1000)) */
    int threads;           /* OpenMP threads (0 = 1) */
    rf_tk_score_fn score;  /* NULL: dot + vb (K must be 1) */
    /* optional: a cheaper score ranking items as `score` does (within float rounding): the
     * scan ranks by it and keeps the shortlist (exact search: 2 k, at most the scratch's
     * shortlist), which `score` re-ranks from exact dots */
    rf_tk_score_fn approx;
    void *ud;
} rf_tk_opts;

typedef struct rf_tk_scratch rf_tk_scratch;
/* Scratch for searches of up to max_q queries, k <= max_k, shortlist <= max_shortlist, threads
 * <= max_threads over items with K tasks of width d. NULL when out of memory. */
rf_tk_scratch *rf_tk_scratch_create(int K, int d, int max_q, int max_k, int max_shortlist, int max_threads);
void rf_tk_scratch_free(rf_tk_scratch *s);
/* The shortlist an opts asks for (its default resolved). */
int rf_tk_shortlist(const rf_tk_opts *o);

/* Search Q queries u (Q, K, d). Per query q: nout[q] results (min(k, items with a finite
 * score)), best first: idx[q*k + j], score[q*k + j] and, if dots is not NULL, their exact dots
 * dots[(q*k + j)*K + t]. RF_EUSAGE when the options exceed the scratch or the items lack a
 * compact copy for a quantized search. */
rf_status rf_tk_search(const rf_tk_items *it, const float *u, int Q, const rf_tk_opts *o, rf_tk_scratch *s,
                       uint32_t *idx, float *score, float *dots, int *nout, rf_error *err) RF_WUR;

/* The exact fp32 dots of item i with u (K, d) into out (K) (the exact path's own arithmetic). */
void rf_tk_item_dots(const rf_tk_items *it, const float *u, size_t i, float *out);

/* ---- the fused ranking score, fast (topk_fuse.c) --------------------------------------------
 * A twin model's ranking score of one item from its K dots: logits z = dot + ub + vb (or the
 * model's own logits function when its logit links are on), p_k = sigmoid(z_k), score columns
 * p_t or p_t / max(p_parent, 1e-30) (conditionals), and the fusion formula over terms that are a
 * column or the ratio of two (rf_fusion_apply's rules). rf_tk_fuse_block computes, per block of
 * items, in float and with vectorisable loops, a score ranking items as the formula does: the
 * formula itself for ADD, its logarithm for MUL (exp is increasing). The search uses it as
 * rf_tk_opts.approx and re-ranks what it keeps with the exact per-item formula. */
#define RF_TK_FUSE_FLOOR 1e-30f

typedef struct {
    int task, parent; /* p_task, divided by max(p_parent, floor) when parent >= 0 */
} rf_tk_fuse_col;

typedef void (*rf_tk_logits_fn)(const void *m, const float *dot, const float *ub, const float *vb, float *z);

typedef struct {
    int K, mul, n;                            /* tasks, 1 = MUL (else ADD), terms */
    rf_tk_fuse_col a[RF_FUSION_MAX_TERMS], b[RF_FUSION_MAX_TERMS]; /* b.task < 0: no ratio */
    float coef[RF_FUSION_MAX_TERMS];
    rf_tk_logits_fn logits;                   /* NULL: z = dot + ub + vb */
    const void *m;                            /* its first argument */
} rf_tk_fuse;

/* Resolve a fusion formula's terms over named columns (name[j] is column col[j]), as
 * rf_fusion_apply does: a name that is a column, else "a|b" the ratio of two columns. RF_EUSAGE
 * naming the term when it matches none. */
rf_status rf_tk_fuse_plan(rf_tk_fuse *p, int K, const rf_fusion *f, const char *const *name, const rf_tk_fuse_col *col,
                          int ncols, rf_error *err) RF_WUR;
/* The ranking score of n items from dots (n, K), user biases ub (K, NULL = 0), item biases vb
 * (n, K, NULL = 0): out (n); work: n * (K + 1) floats of scratch. */
void rf_tk_fuse_block(const rf_tk_fuse *p, const float *ub, const float *dots, const float *vb, int n, float *work,
                      float *out);

/* The items of an open index file (index.c), pointing into its mapping. */
struct rf_index;
void rf_index_items(const struct rf_index *ix, rf_tk_items *it);

#endif
