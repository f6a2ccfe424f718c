/* omp.h - the thread count of one parallel region: the caller's request (> 0), else OpenMP's
 * default for the calling thread; whether a loop of n elements is worth a team; a row-split
 * GEMM's team. Internal. */
#ifndef RESFLOW_CORE_OMP_H
#define RESFLOW_CORE_OMP_H

#include <omp.h>

static inline int rf_omp_threads(int requested) { return requested > 0 ? requested : omp_get_max_threads(); }

/* For `#pragma omp parallel for if (...)`: n elements above min, and not already inside a team
 * (a nested region only costs: with nesting off it runs on one thread anyway, and libgomp
 * allocates its team state per call; scoring threads with their own workspaces are such a team). */
static inline int rf_omp_worth(long n, long min) { return n > min && !omp_in_parallel(); }

/* The team of a GEMM that splits its rows in nblk blocks over threads (gemm_f32.c,
 * gemm_bf16.c): one thread inside a team, under 2^20 multiply-adds, or with fewer than four
 * blocks per thread. */
static inline int rf_omp_gemm_threads(double mnk, int nblk)
{
    int nt = omp_in_parallel() ? 1 : omp_get_max_threads();
    return mnk < (1 << 20) || nblk < 4 * nt ? 1 : nt;
}

#endif
