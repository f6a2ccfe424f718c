/* bigmem.h - large arrays on 2 MiB pages (internal; not installed).
 *
 * On paravirtualised machines every 4 KiB page fault is a trap into the hypervisor (~10 us
 * measured on this project's VMs: first-touching 256 MiB costs 0.64 s with 4 KiB pages), and
 * randomly accessed tables (embeddings and their optimizer state, rank scratch) miss the TLB
 * on most row gathers and scatters with 4 KiB pages (docs/design.md), so big arrays ask for
 * transparent huge pages: one fault and one TLB entry per 2 MiB. The blocks come from
 * posix_memalign and are released with free(); realloc() works on them. */
#ifndef RESFLOW_BIGMEM_H
#define RESFLOW_BIGMEM_H

#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define RF_HUGE_PAGE ((size_t)2 << 20)

/* Ask for huge pages on the 2 MiB-aligned part of [p, p + bytes) (if at least 4 MiB). */
static inline void rf_advise_huge_(void *p, size_t bytes)
{
#ifdef MADV_HUGEPAGE
    const uintptr_t H = RF_HUGE_PAGE;
    if (!p || bytes < 2 * H) return;
    uintptr_t a = ((uintptr_t)p + H - 1) & ~(H - 1), e = ((uintptr_t)p + bytes) & ~(H - 1);
    if (e > a) (void)madvise((void *)a, e - a, MADV_HUGEPAGE);
#else
    (void)p;
    (void)bytes;
#endif
}

/* realloc(p, bytes), except that an array of 1 MiB or more moves to a fresh 2 MiB-aligned
 * block on huge pages unless it is in one already. NULL on failure (p is then untouched). */
static inline void *rf_big_realloc_(void *p, size_t bytes)
{
    const uintptr_t H = RF_HUGE_PAGE;
    if (bytes >= H / 2 && (!p || ((uintptr_t)p & (H - 1)))) {
        size_t old = p ? malloc_usable_size(p) : 0, cap = (bytes + H - 1) & ~(H - 1);
        void *q = NULL;
        if (posix_memalign(&q, H, cap)) return NULL;
#ifdef MADV_HUGEPAGE
        (void)madvise(q, cap, MADV_HUGEPAGE);
#endif
        if (old) memcpy(q, p, old < bytes ? old : bytes);
        free(p);
        return q;
    }
    void *q = realloc(p, bytes ? bytes : 1);
    if (q) rf_advise_huge_(q, bytes);
    return q;
}

/* malloc(bytes) and calloc(n, size) through rf_big_realloc_. */
static inline void *rf_big_malloc_(size_t bytes) { return rf_big_realloc_(NULL, bytes); }

/* bytes aligned to 64 (a cache line; the bf16 kernels' packed vectors) or, from 1 MiB, on huge
 * pages as rf_big_malloc_. Free with free(). */
static inline void *rf_big_aligned_(size_t bytes)
{
    return bytes >= RF_HUGE_PAGE / 2 ? rf_big_malloc_(bytes) : aligned_alloc(64, (bytes + 63) / 64 * 64 + 64);
}

static inline void *rf_big_calloc_(size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size) return NULL;
    void *p = rf_big_realloc_(NULL, n * size);
    if (p) memset(p, 0, n * size);
    return p;
}

#endif
