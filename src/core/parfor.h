/* parfor.h - a parallel loop whose threads each own a scratch buffer (internal; not installed).
 *
 * The simulator's passes over chunks of lists and the significance bootstrap's replicates run
 * this way: every thread allocates its scratch once, then takes indices one at a time
 * (OpenMP, schedule dynamic, 1). What an index computes must depend on the index only (its own
 * random stream), so the result does not depend on the number of threads. */
#ifndef RESFLOW_CORE_PARFOR_H
#define RESFLOW_CORE_PARFOR_H

#include <stddef.h>

/* fn(ctx, scratch, i) for every i in [0, n) on rf_omp_threads(threads) threads, scratch being
 * the calling thread's own block of `bytes` bytes. Returns 0, or -1 when a thread could not
 * allocate its scratch (the indices it took were then skipped: the caller reports out of
 * memory). */
int rf_parfor_scratch_(int threads, size_t n, size_t bytes, void (*fn)(void *ctx, void *scratch, size_t i),
                       void *ctx);

#endif
