/* gemm_int8.h - int8 scoring of the tower models' hidden layers (rf_ws_set_precision(..,
 * RF_PREC_INT8), `--precision int8`), internal to nn/.
 *
 * Scheme (the usual dynamic quantization of inference libraries): each weight matrix W (Kin x N)
 * is quantized once, when the precision is set, per output column j: sw[j] = max_k |W[k][j]| /
 * 127, Wq = round(W / sw) in [-127, 127]. Each row i of the activations is quantized when it is
 * multiplied: sa[i] = max_k |A[i][k]| / 127, Aq = round(A / sa). AVX512-VNNI's vpdpbusd
 * multiplies unsigned by signed bytes, so Aq goes in shifted to Aq + 128 (1..255) and the shift
 * is taken back exactly in integers: C[i][j] = sa[i] sw[j] (sum_k (Aq+128) Wq - 128 sum_k Wq).
 * The sums are exact int32 (|sum| < 255 * 127 * Kin, far from overflow for any Kin below 66000);
 * the only rounding is the quantization itself, and the result is the same on every thread
 * count and every CPU that has the instructions.
 *
 * Layer 0 is smoothed first (its embedding columns; its dense columns stay fp32): see
 * layer0_init in gemm_int8.c.
 *
 * Layout: Aq rows of kq = ceil(Kin / 4) quads (4 bytes along K, the pad 128 = zero); Wq in panels
 * of 64 columns, each quad of a column as one 32-bit lane (bytes W[4q..4q+3][j]), 16 columns to
 * a 512-bit vector: one vpdpbusd adds 4 products to each of 16 sums, twice the products of
 * vdpbf16ps per instruction (measured on AMD Zen 4: 468 G int8 ops/s per core against 234
 * GFLOP/s bf16).
 */
#ifndef RESFLOW_GEMM_INT8_H
#define RESFLOW_GEMM_INT8_H

#include <stddef.h>
#include <stdint.h>

struct rf_model;

/* 1 if this CPU (and OS) runs AVX512-VNNI (with AVX512BW); 0 else, or when the environment sets
 * RESFLOW_INT8=off (to check the refusal on a machine that has them). */
int rf_i8_cpu_ok(void);

/* The quantized weights of every hidden layer of a tower model (layer 0: one In x K*H matrix;
 * layer l > 0: one H[l-1] x H[l] matrix per task) and the activation scratch of batches of up
 * to max_rows rows. NULL if out of memory. */
typedef struct rf_i8_ctx rf_i8_ctx;
rf_i8_ctx *rf_i8_ctx_create(const struct rf_model *m, int max_rows);
void rf_i8_ctx_free(rf_i8_ctx *c);

/* C (M x N, ld ldc) = A (M x Kin, ld lda) W for the weights of layer l (task k; 0 for layer 0),
 * on the calling thread. */
void rf_gemm_i8(rf_i8_ctx *c, int l, int k, int M, const float *A, int lda, float *C, int ldc);

/* As rf_gemm_i8, with the fused write-back ep (epi.h: bias, activation, links; the links'
 * parents must be final first) straight into the layer's output: the same bits as rf_gemm_i8
 * followed by forward.c's passes. -1, nothing done, for a layer 0 with fp32 dense columns. */
struct rf_epi;
int rf_gemm_i8_fused(rf_i8_ctx *c, int l, int k, int M, const float *A, int lda, float *C, int ldc,
                     const struct rf_epi *ep);
/* For tests: the smoothing factors c_k of layer l's (task k's) int8 columns (NULL: none) and
 * their count *kin (layer 0: the embedding columns; the others are fp32). */
const float *rf_i8_smooth(const rf_i8_ctx *c, int l, int k, int *kin);

#endif
