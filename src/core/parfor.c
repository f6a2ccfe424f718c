/* parfor.c - a parallel loop whose threads each own a scratch buffer (parfor.h). */
#include <stdlib.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "core/omp.h"
#include "core/parfor.h"

int rf_parfor_scratch_(int threads, size_t n, size_t bytes, void (*fn)(void *ctx, void *scratch, size_t i),
                       void *ctx)
{
    int oom = 0;
#ifdef _OPENMP
#pragma omp parallel num_threads(rf_omp_threads(threads))
#endif
    {
        void *scratch = malloc(bytes ? bytes : 1);
        if (!scratch) {
#ifdef _OPENMP
#pragma omp atomic write
#endif
            oom = 1;
        }
#ifdef _OPENMP
#pragma omp for schedule(dynamic, 1)
#endif
        for (size_t i = 0; i < n; i++) {
            if (!scratch) continue;
            fn(ctx, scratch, i);
        }
        free(scratch);
    }
    (void)threads;
    return oom ? -1 : 0;
}
