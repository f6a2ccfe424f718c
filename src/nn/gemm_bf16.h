/* gemm_bf16.h - bf16 GEMM with fp32 accumulation (train.precision: bf16), internal to nn/.
 *
 * C(M,N) = alpha * op(A) op(B) + beta * C, row-major, exactly rf_gemm's contract (ops.h), but
 * A and B are rounded to bfloat16 (round to nearest even) before the products, which are
 * summed in fp32 by AVX512-BF16's vdpbf16ps. The operands are packed into a caller-owned
 * scratch (rf_bf16_scratch, one per workspace): op(A) as bf16 pairs along K, op(B) in panels of
 * 64 columns holding the same pairs, so every multiply is one 32-bit broadcast of A against 16
 * columns of B. A tower model's activations are written in those layouts by the passes that
 * compute them (rf_bf16_acts), so its GEMMs pack only the weights. Rows of C are split over the
 * calling thread's OpenMP team (one thread inside a parallel region), like rf_gemm.
 *
 * The kernel needs AVX512-BF16 (AMD Zen 4, Intel Cooper Lake and Sapphire Rapids and later);
 * rf_bf16_cpu_ok says whether this CPU has it. It is compiled with a target attribute, so a
 * PORTABLE=1 build has it too, and picks it only where the CPU has it. No AMX path: not
 * testable on the machines this was written on.
 */
#ifndef RESFLOW_GEMM_BF16_H
#define RESFLOW_GEMM_BF16_H

#include <stddef.h>
#include <stdint.h>

#include "nn/ops.h"
#include "resflow/spec.h" /* RF_MAX_LAYERS, RF_MAX_TASKS */

/* Packing room, sized for the largest GEMM it will see (rf_bf16_scratch_need). */
typedef struct rf_bf16_scratch {
    uint16_t *a, *b;       /* packed op(A), op(B) */
    size_t a_cap, b_cap;   /* their capacity in bf16 values */
} rf_bf16_scratch;

/* 1 if this CPU (and OS) runs AVX512-BF16 instructions; 0 else, or when the environment sets
 * RESFLOW_BF16=off (to check the refusal on a machine that has them). */
int rf_bf16_cpu_ok(void);

/* Grows *a_need / *b_need to what one GEMM of this shape packs (bf16 values). */
void rf_bf16_scratch_need(int transA, int transB, int M, int N, int K, size_t *a_need, size_t *b_need);
/* A scratch with room for a_need / b_need values; NULL if out of memory. */
rf_bf16_scratch *rf_bf16_scratch_create(size_t a_need, size_t b_need);
void rf_bf16_scratch_free(rf_bf16_scratch *s);

/* The GEMM. Returns 0, or -1 (nothing done) when the scratch is too small for the shape. */
int rf_gemm_bf16(rf_bf16_scratch *s, int transA, int transB, int M, int N, int K, float alpha,
                 const float *A, int lda, const float *Bm, int ldb, float beta, float *C, int ldc);

/* An activation's bf16 copies in the layouts the GEMMs pack it into (bf16 training): a tower's
 * block of W columns of a layer's output (or of the input x), read by the next layer's forward
 * GEMM as rows and by its weight gradient as pairs, or of a layer's pre-activation gradient dZ,
 * read by the input-gradient GEMM as rows and by the weight gradient as pairs. The pass that
 * computes the activation writes them (rf_bf16_act_put, two rows at a time, while the rows are
 * in cache: the GEMMs then do not read the fp32 matrix again to pack it); valid says they hold
 * the current batch. The same bf16 values as the GEMM's own packing, so the same bits. */
typedef struct rf_bf16_act {
    uint16_t *rows;  /* row r at rows + r * kp2, kp2 = W rounded to even (pad 0) */
    uint32_t *pairs; /* rows (2q, 2q + 1) interleaved, in panels of pw columns over W rounded to
                      * 16, as pack_pairs lays them out: pw = W rounded to 16 for op(A) = A^T,
                      * 64 for op(B) = B */
    int W, pw;
    int valid;
} rf_bf16_act;
/* Rows 2q and 2q + 1 of a batch of B rows (r1 NULL when 2q + 1 = B), their W values at r0, r1. */
void rf_bf16_act_put(const rf_bf16_act *u, int B, int q, const float *r0, const float *r1);
/* n units side by side: unit i takes the row's columns [i W, (i + 1) W) (W = u[0].W). */
void rf_bf16_act_put_n(const rf_bf16_act *u, int n, int B, int q, const float *r0, const float *r1);

/* A tower model's activations in those layouts (a bf16 training workspace: precision_ws.c), one
 * per GEMM operand: the input x (W = In), each tower's block of O[l] for l < L - 1 (W = H_l),
 * and of dZ[l] (layer 0: one unit, W = K H_0, read whole by the layer's one GEMM per pass). */
struct rf_model;
typedef struct rf_bf16_acts {
    rf_bf16_act x;
    rf_bf16_act o[RF_MAX_LAYERS][RF_MAX_TASKS];
    rf_bf16_act dz[RF_MAX_LAYERS][RF_MAX_TASKS];
} rf_bf16_acts;
/* For batches of up to maxB rows; NULL when out of memory. */
rf_bf16_acts *rf_bf16_acts_create(const struct rf_model *m, int maxB);
void rf_bf16_acts_free(rf_bf16_acts *a);
/* Every unit stale (a new batch). */
void rf_bf16_acts_invalidate(rf_bf16_acts *a);

/* rf_gemm_bf16, with op(A) taken from ua (A^T: its pairs; A: its rows) and op(B) from ub (B: its
 * pairs) instead of packing them when they are valid and laid out for this shape (NULL: pack). */
int rf_gemm_bf16_pk(rf_bf16_scratch *s, int transA, int transB, int M, int N, int K, float alpha, const float *A,
                    int lda, const rf_bf16_act *ua, const float *Bm, int ldb, const rf_bf16_act *ub, float beta,
                    float *C, int ldc);

/* A weight gradient C = alpha * A^T B + beta * C (K = the batch's rows) in bf16, its K split
 * between the threads with the partial sums in kp (rf_gemm_tn, ops.h), A^T and B from ua and ub
 * (their pairs) when they are valid for this shape. 0, or -1 as rf_gemm_bf16. */
int rf_gemm_bf16_tn(rf_bf16_scratch *s, rf_kpart *kp, int M, int N, int K, float alpha, const float *A, int lda,
                    const rf_bf16_act *ua, const float *Bm, int ldb, const rf_bf16_act *ub, float beta, float *C,
                    int ldc);

/* Scoring (rf_ws_set_precision for a scoring workspace, rf_ws_score_only): every hidden layer's
 * weights packed once, as the GEMM packs them, so a batch packs only its activations. */
typedef struct rf_bf16_wpack rf_bf16_wpack;
rf_bf16_wpack *rf_bf16_wpack_create(const struct rf_model *m);
void rf_bf16_wpack_free(rf_bf16_wpack *w);
/* C = A W for layer l (task k of a later layer) of m with the weights of w (packed from m), with
 * the fused write-back ep (epi.h; NULL: none, as rf_gemm_bf16) on the last K block, straight
 * into the layer's output: the same bits as rf_gemm_bf16 and forward.c's passes. 0, or -1 when
 * the scratch is too small (nothing done). */
struct rf_epi;
int rf_gemm_bf16_score(rf_bf16_scratch *s, const rf_bf16_wpack *w, const struct rf_model *m, int l, int k, int M,
                       const float *A, int lda, float *C, int ldc, const struct rf_epi *ep);

/* The one hook of forward.c, backward.c and graph.c: a GEMM in the workspace's precision (bf16
 * when the workspace holds a scratch, i.e. rf_ws_set_precision chose bf16; rf_gemm otherwise).
 * A GEMM with fewer than RF_BF16_MIN_NK columns or products per sum (a zoo model's gates, N = the
 * number of experts; a logit layer, N = 1; their input gradients, K = the same) stays fp32: the
 * kernel's 64-column panels would compute 16 to 64 times the products it needs. */
#define RF_BF16_MIN_NK 16
static inline void rf_gemm_prec(rf_bf16_scratch *bf, int transA, int transB, int M, int N, int K,
                                 float alpha, const float *A, int lda, const float *Bm, int ldb,
                                 float beta, float *C, int ldc)
{
    if (!bf || N < RF_BF16_MIN_NK || K < RF_BF16_MIN_NK ||
        rf_gemm_bf16(bf, transA, transB, M, N, K, alpha, A, lda, Bm, ldb, beta, C, ldc))
        rf_gemm(transA, transB, M, N, K, alpha, A, lda, Bm, ldb, beta, C, ldc);
}

/* rf_gemm_prec with an activation's pre-packed layouts for op(A) and op(B) (rf_gemm_bf16_pk;
 * NULL: none), used when the GEMM runs in bf16. */
static inline void rf_gemm_prec_pk(rf_bf16_scratch *bf, int transA, int transB, int M, int N, int K, float alpha,
                                   const float *A, int lda, const rf_bf16_act *ua, const float *Bm, int ldb,
                                   const rf_bf16_act *ub, float beta, float *C, int ldc)
{
    if (!bf || N < RF_BF16_MIN_NK || K < RF_BF16_MIN_NK ||
        rf_gemm_bf16_pk(bf, transA, transB, M, N, K, alpha, A, lda, ua, Bm, ldb, ub, beta, C, ldc))
        rf_gemm(transA, transB, M, N, K, alpha, A, lda, Bm, ldb, beta, C, ldc);
}

/* The weight gradients' hook: C = alpha * A^T B + beta * C with K the batch's rows, split between
 * the threads (rf_gemm_tn; kp the workspace's partial sums), in the workspace's precision as
 * rf_gemm_prec_pk. */
static inline void rf_gemm_prec_tn(rf_bf16_scratch *bf, rf_kpart *kp, int M, int N, int K, float alpha,
                                   const float *A, int lda, const rf_bf16_act *ua, const float *Bm, int ldb,
                                   const rf_bf16_act *ub, float beta, float *C, int ldc)
{
    if (!bf || N < RF_BF16_MIN_NK || K < RF_BF16_MIN_NK ||
        rf_gemm_bf16_tn(bf, kp, M, N, K, alpha, A, lda, ua, Bm, ldb, ub, beta, C, ldc))
        rf_gemm_tn(kp, M, N, K, alpha, A, lda, Bm, ldb, beta, C, ldc);
}

#endif
