/* columns.c - the loader's output columns: malloc'ed (big ones on huge pages) or spilled to
 * unlinked temporary files. */
#define _GNU_SOURCE /* mremap */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/bigmem.h"
#include "data/loader.h"


static void *spill_grow(spill_set *s, void **slot, size_t bytes)
{
    if (!bytes) bytes = 1;
    spill_ent *x = NULL;
    for (int i = 0; i < s->n; i++)
        if (s->e[i].slot == slot) x = &s->e[i];
    if (!x) {
        if (s->n == (int)(sizeof s->e / sizeof s->e[0])) return NULL;
        char path[RF_PATH_MAX + 32];
        snprintf(path, sizeof path, "%s/.resflow-spill-XXXXXX", s->dir);
        int fd = mkstemp(path);
        if (fd < 0) return NULL;
        unlink(path);
        if (ftruncate(fd, (off_t)bytes) != 0) {
            close(fd);
            return NULL;
        }
        void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (p == MAP_FAILED) {
            close(fd);
            return NULL;
        }
        x = &s->e[s->n++];
        x->slot = slot;
        x->fd = fd;
        x->bytes = bytes;
        return p;
    }
    if (bytes <= x->bytes) return *slot;
    if (ftruncate(x->fd, (off_t)bytes) != 0) return NULL;
    void *p = mremap(*slot, x->bytes, bytes, MREMAP_MAYMOVE);
    if (p == MAP_FAILED) return NULL;
    x->bytes = bytes;
    return p;
}

void rf_cols_free_(cols *c)
{
    if (c->spill) { /* spilled arrays: unmap (every array lives in one entry) */
        for (int i = 0; i < c->spill->n; i++) {
            spill_ent *x = &c->spill->e[i];
            if (*x->slot) munmap(*x->slot, x->bytes);
            *x->slot = NULL;
            close(x->fd);
        }
        c->spill->n = 0;
    }
    free(c->cat);
    free(c->dense);
    free(c->labels);
    free(c->weight);
    free(c->group);
    for (int f = 0; f < RF_MAX_FIELDS; f++) {
        free(c->mv_off[f]);
        free(c->mv_ids[f]);
    }
    memset(c, 0, sizeof *c);
}

/* Grow the array *slot of c to bytes (spilled, or malloc'ed - big ones on huge pages, see
 * bigmem.h); NULL on failure. */
void *rf_cgrow_(cols *c, void **slot, size_t bytes)
{
    return c->spill ? spill_grow(c->spill, slot, bytes) : rf_big_realloc_(*slot, bytes);
}
