/* gemm_f32.h - the fp32 GEMM on AVX-512, internal to nn/ (rf_gemm calls it; gemm_f32.c).
 *
 * C(M,N) = alpha * op(A) op(B) + beta * C, row-major, rf_gemm's contract (ops.h). Own AVX-512F
 * micro-kernel; the operands are read in place (only a transposed B is repacked, per block, on
 * the thread's stack), so the GEMM needs no scratch. Rows of C are split over the calling
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

#endif
