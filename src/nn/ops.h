/* ops.h - private numerical kernels: forward/backward pairs over float* with explicit
 * dimensions and leading dimensions (row-major). Backward kernels ACCUMULATE parameter
 * gradients (+=) and SET input gradients unless stated otherwise.
 * B rows, N columns, ld leading dimension (>= N).
 */
#ifndef RESFLOW_OPS_H
#define RESFLOW_OPS_H
#include <stddef.h>

/* C(M,N) = alpha * op(A) op(B) + beta * C, row-major (gemm_f32.c on AVX-512, else cblas_sgemm). */
void rf_gemm(int transA, int transB, int M, int N, int K, float alpha, const float *A, int lda,
             const float *Bm, int ldb, float beta, float *C, int ldc);
/* Room for the partial sums of a weight gradient whose K (a batch's rows) is split between the
 * threads of a team (rf_gemm_tn): (threads - 1) M x N floats, owned by a workspace, grown on
 * first use; {0} is empty. */
typedef struct rf_kpart {
    float *p;
    size_t cap; /* floats */
} rf_kpart;
/* kp's room for n floats, grown if needed; NULL when out of memory. */
float *rf_kpart_room(rf_kpart *kp, size_t n);
void rf_kpart_free(rf_kpart *kp);
/* The first of thread t's share of P pairs of rows in a team of n (t = n: P): the same share
 * whatever the GEMM, an even row, so a thread sums the rows its passes computed. */
static inline int rf_kpart_pair0(int P, int t, int n) { return (int)((long)P * t / n); }
/* Thread t of n: its rows of C += part_1 + ... + part_{n-1}, in that order (part_u at
 * part + (u - 1) M N, rows N floats apart). */
void rf_kpart_reduce(float *C, int ldc, int M, int N, const float *part, int t, int n);
/* 1 when a K-split GEMM of this shape is worth a team of nt (> 1): 2^20 multiply-adds and 64
 * pairs of rows per thread. */
static inline int rf_kpart_worth(double mnk, int K, int nt) { return nt > 1 && mnk >= (1 << 20) && (K + 1) / 2 >= 64 * nt; }
/* The partials' room for splitting this shape's K over the calling thread's team (*nt set to
 * the team's size), or NULL when it is not split: inside a team, not worth it, no room. */
float *rf_kpart_team(rf_kpart *kp, int M, int N, int K, int *nt);

/* A weight gradient, C(M,N) = alpha * A^T B + beta * C with K the batch's rows (A stored K x M,
 * B K x N): each thread of the team sums the products over its own share of the rows
 * (rf_kpart_pair0: the rows its forward and backward passes wrote, still in its caches) into C
 * (thread 0, with beta) or its partial in kp (alpha, beta 0), then the partials are added to C
 * in thread order. Splitting the rows of C instead, as rf_gemm does, has every thread read
 * every row of A and B, half of them from the other cores' caches (docs/performance.md). The
 * bits depend on the team's size; on one thread (a small shape, inside a team, no room in kp)
 * they are rf_gemm's. */
void rf_gemm_tn(rf_kpart *kp, int M, int N, int K, float alpha, const float *A, int lda, const float *Bm, int ldb,
                float beta, float *C, int ldc);
/* rf_gemm's path on a CPU without AVX-512 (rows split over the OpenMP team, cblas_sgemm each) */
void rf_gemm_openblas(int transA, int transB, int M, int N, int K, float alpha, const float *A, int lda,
                      const float *Bm, int ldb, float beta, float *C, int ldc);

/* Y[b, j] += bias[j] */
void rf_bias_fwd(float *Y, int B, int N, int ld, const float *bias);
/* dbias[j] += sum_b dY[b, j] */
void rf_bias_bwd(const float *dY, int B, int N, int ld, float *dbias);

/* A = relu(Z) / prelu(Z; alpha per column); alpha NULL means ReLU. A must not alias Z. */
void rf_act_fwd(const float *Z, float *A, int B, int N, int ld, const float *alpha);
/* dZ = dA * act'(Z); dalpha[j] += sum_b dA * Z where Z <= 0 (if alpha: each thread's rows summed in
 * row order, the threads' sums added in thread order). dZ may alias dA. */
void rf_act_bwd(const float *Z, const float *dA, float *dZ, int B, int N, int ld,
                const float *alpha, float *dalpha);

/* C (M x N, ld) = the gradient at the input Z (ld) of a ReLU / PReLU (alpha NULL / not) whose
 * output's gradient is A op(B) (transB: B transposed), dalpha (if not NULL) += the slopes'
 * gradient: the consumer's input-gradient GEMM and rf_act_bwd in one, the activation's backward
 * in the GEMM's write-back where the own fp32 kernel runs (gemm_f32.h: its slope sums per thread,
 * so their last bits differ from rf_act_bwd's), else the two calls. */
void rf_gemm_act_bwd(int transB, int M, int N, int K, const float *A, int lda, const float *Bm, int ldb, float *C,
                     int ld, const float *Z, const float *alpha, float *dalpha);

/* The bf16 layouts a pass below also writes its output in (gemm_bf16.h): npk units side by
 * side over each row's columns, two rows at a time; pk NULL: none. */
struct rf_bf16_act;

/* Fused: Z += bias (in place), then A = act(Z). One pass over the matrix; A also into pk. */
void rf_bias_act_fwd(float *Z, float *A, int B, int N, int ld, const float *bias,
                     const float *alpha, const struct rf_bf16_act *pk, int npk);
/* Fused, for K side-by-side blocks of H columns (ld = K*H) with residual links: per row,
 * blocks in `order` (parents first), Z += bias, A = act(Z), then A's block k += A's block
 * parent[k] when parent[k] >= 0 - the same arithmetic as rf_bias_act_fwd followed by the link
 * adds, in one pass over the matrix instead of two; A also into pk (npk units). A must not
 * alias Z. */
void rf_bias_act_link_fwd(float *Z, float *A, int B, int K, int H, const float *bias, const float *alpha,
                          const int *order, const int *parent, const struct rf_bf16_act *pk, int npk);
/* The logit layer: S[b * K + k] = bout[k] + sum_j O[b][k * HL + j] * Wout[k * HL + j] for B rows
 * of K side-by-side blocks of HL columns, the sum over j in order, each product rounded before
 * it is added (C11: no contraction): the same bits as one row at a time, whatever the thread
 * count or the CPU. Rows on the threads. */
void rf_logits(const float *O, int B, int K, int HL, const float *Wout, const float *bout, float *S);
/* Fused: dZ = dA * act'(Z); dbias += sum_b dZ; dalpha += sum_b dA*Z over Z <= 0 (if alpha).
 * dZ must not alias dA. Rows are split across threads, each with private column sums. dZ also
 * into pk. */
void rf_act_bias_bwd(const float *Z, const float *dA, float *dZ, int B, int N, int ld,
                     const float *alpha, float *dbias, float *dalpha, const struct rf_bf16_act *pk, int npk);

/* BatchNorm over the B rows, per column. Training: batch mean and biased variance, saves
 * mean/rstd, updates running stats (running var with the unbiased estimate, PyTorch
 * semantics). Eval: uses running stats. Y may not alias X. */
void rf_bn_fwd_train(const float *X, float *Y, int B, int N, int ld, const float *gamma,
                     const float *beta, float *mean, float *rstd, float *run_mean,
                     float *run_var, float momentum, float eps);
void rf_bn_fwd_eval(const float *X, float *Y, int B, int N, int ld, const float *gamma,
                    const float *beta, const float *run_mean, const float *run_var, float eps);
/* dX = BN backward with batch statistics; dgamma, dbeta accumulated. dX may alias dY. */
void rf_bn_bwd(const float *X, const float *dY, float *dX, int B, int N, int ld,
               const float *gamma, const float *mean, const float *rstd, float *dgamma,
               float *dbeta);

/* Positive-weighted BCE on a logit s with target t:
 * -[w t log sig(s) + (1-t) log(1-sig(s))], stable. Returns loss; *ds = dL/ds. */
double rf_wbce_logit(float s, float t, float w, float *ds);

static inline float rf_sigmoidf(float x)
{
    return x >= 0 ? 1.0f / (1.0f + __builtin_expf(-x)) : __builtin_expf(x) / (1.0f + __builtin_expf(x));
}
#endif
