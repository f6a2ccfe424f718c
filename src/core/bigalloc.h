/* bigalloc.h - allocation of large, randomly accessed tables (embeddings and their optimizer
 * state): 2 MiB aligned and advised as transparent huge pages, which removes most TLB misses
 * of row gathers/scatters (measured: see bench/README.md). Free with free(). */
#ifndef RESFLOW_BIGALLOC_H
#define RESFLOW_BIGALLOC_H
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

static inline void *rf_big_alloc(size_t bytes, int zero)
{
    const size_t huge = (size_t)2 << 20;
    if (bytes == 0) bytes = 1;
    if (bytes < huge) return zero ? calloc(1, bytes) : malloc(bytes);
    size_t n = (bytes + huge - 1) / huge * huge;
    void *p = NULL;
    if (posix_memalign(&p, huge, n)) return NULL;
#ifdef MADV_HUGEPAGE
    madvise(p, n, MADV_HUGEPAGE); /* advisory: failure is harmless */
#endif
    if (zero) memset(p, 0, n);
    return p;
}
#endif
