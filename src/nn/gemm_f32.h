/* gemm_f32.h - the fp32 GEMM on AVX-512, internal to nn/ (rf_gemm calls it; gemm_f32.c).
 *
 * C(M,N) = alpha * op(A) op(B) + beta * C, row-major, rf_gemm's contract (ops.h). Own AVX-512F
 * micro-kernel; the operands are read in place (only a transposed B is repacked, per block, on
 * the thread's stack), so the GEMM needs no scratch (rf_gemm_f32_act allocates its threads'
 * slope sums, N floats each). Rows of C are split over the calling
 * thread's OpenMP team (one thread inside a parallel region); a row's result does not depend on
 * the split. Compiled with a target attribute and used only where the CPU has AVX-512F: a
 * PORTABLE=1 build has it too, and an AVX2 CPU keeps OpenBLAS.
 */
#ifndef RESFLOW_GEMM_F32_H
#define RESFLOW_GEMM_F32_H

/* 1 when rf_gemm_f32 runs here: the CPU has AVX-512F and the environment does not set
 * RESFLOW_GEMM=openblas (to compare with OpenBLAS; decided once per process). */
int rf_gemm_f32_on(void);

/* The GEMM. Returns 0, or -1 (nothing done) when rf_gemm_f32_on() is 0. */
int rf_gemm_f32(int transA, int transB, int M, int N, int K, float alpha, const float *A, int lda, const float *Bm,
                int ldb, float beta, float *C, int ldc);

/* A ReLU's or PReLU's backward in the write-back of its consumer's input-gradient GEMM: with
 * D = A op(B) (M x N; alpha 1, beta 0), C = D where Z > 0, else alpha_j D (PReLU) or 0 (ReLU),
 * and dalpha_j += the sum over rows of D Z where Z <= 0 (PReLU: the slopes' gradient, each
 * thread's rows summed in order, then the threads' sums in thread order). Z is the activation's
 * input (M x N at ldz); C may not alias A. Each tile of C is converted right after the last K
 * block stored it, while it is in L1: D is never written to memory. */
typedef struct {
    const float *Z;
    int ldz;
    const float *alpha; /* (N) PReLU slopes, or NULL: ReLU */
    float *dalpha;      /* (N) += the slopes' gradient, or NULL */
} rf_gemm_act;

/* Returns 0, or -1 (nothing done) when rf_gemm_f32_on() is 0, N <= 4 (the narrow path) or the
 * threads' sums could not be allocated. */
int rf_gemm_f32_act(int transB, int M, int N, int K, const float *A, int lda, const float *Bm, int ldb, float *C,
                    int ldc, const rf_gemm_act *act);

#endif
