/* dataset.c - allocation, slicing, views and lookup for columnar datasets; the position split;
 * the training row order (full or block shuffle, with memory advice for mapped datasets). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/bigmem.h"
#include "core/rng.h"
#include "data/dataint.h"

rf_dataset *rf_dataset_alloc(size_t n, int F, int D, int K)
{
    rf_dataset *ds = calloc(1, sizeof *ds);
    if (!ds) return NULL;
    ds->n = n;
    ds->F = F;
    ds->D = D;
    ds->K = K;
    size_t n1 = n ? n : 1;
    ds->fields = calloc(F > 0 ? (size_t)F : 1, sizeof *ds->fields);
    ds->dense_names = calloc(D > 0 ? (size_t)D : 1, sizeof *ds->dense_names);
    ds->label_names = calloc(K > 0 ? (size_t)K : 1, sizeof *ds->label_names);
    /* the columns on huge pages (bigmem.h): training reads their rows in shuffled order */
    ds->cat = rf_big_calloc_(n1 * (F > 0 ? (size_t)F : 1), sizeof *ds->cat);
    ds->mv_off = calloc(F > 0 ? (size_t)F : 1, sizeof *ds->mv_off);
    ds->mv_ids = calloc(F > 0 ? (size_t)F : 1, sizeof *ds->mv_ids);
    ds->dense = D > 0 ? rf_big_calloc_(n1 * (size_t)D, sizeof *ds->dense) : NULL;
    ds->labels = rf_big_calloc_(n1 * (K > 0 ? (size_t)K : 1), sizeof *ds->labels);
    if (!ds->fields || !ds->dense_names || !ds->label_names || !ds->cat || !ds->mv_off ||
        !ds->mv_ids || (D > 0 && !ds->dense) || !ds->labels) {
        rf_dataset_free(ds);
        return NULL;
    }
    return ds;
}

void rf_mapping_retain_(struct rf_mapping *m)
{
    if (m) __atomic_add_fetch(&m->refs, 1, __ATOMIC_RELAXED);
}

int rf_mapping_add_region_(struct rf_mapping *m, void *p, size_t n)
{
    struct rf_region *x = realloc(m->extra, ((size_t)m->nextra + 1) * sizeof *x);
    if (!x) return -1;
    m->extra = x;
    x[m->nextra].p = p;
    x[m->nextra].n = n;
    m->nextra++;
    return 0;
}

void rf_mapping_release_(struct rf_mapping *m)
{
    if (!m) return;
    if (__atomic_sub_fetch(&m->refs, 1, __ATOMIC_ACQ_REL) != 0) return;
    if (m->base) munmap(m->base, m->len);
    for (int i = 0; i < m->nextra; i++) munmap(m->extra[i].p, m->extra[i].n);
    free(m->extra);
    free(m);
}

void rf_dataset_free(rf_dataset *ds)
{
    if (!ds) return;
    if (!ds->map) {
        for (int f = 0; f < ds->F && ds->mv_off; f++) {
            free(ds->mv_off[f]);
            if (ds->mv_ids) free(ds->mv_ids[f]);
        }
        free(ds->cat);
        free(ds->dense);
        free(ds->labels);
        free(ds->weight);
        free(ds->group);
        free(ds->truth);
    }
    rf_mapping_release_(ds->map);
    free(ds->mv_off);
    free(ds->mv_ids);
    free(ds->fields);
    free(ds->dense_names);
    free(ds->label_names);
    free(ds);
}

rf_dataset *rf_dataset_slice(const rf_dataset *src, const size_t *rows, size_t n)
{
    rf_dataset *ds = rf_dataset_alloc(n, src->F, src->D, src->K);
    if (!ds) return NULL;
    int F = src->F, D = src->D, K = src->K;
    memcpy(ds->fields, src->fields, (size_t)F * sizeof *ds->fields);
    if (D) memcpy(ds->dense_names, src->dense_names, (size_t)D * sizeof *ds->dense_names);
    memcpy(ds->label_names, src->label_names, (size_t)K * sizeof *ds->label_names);
    if (src->weight && !(ds->weight = malloc((n ? n : 1) * sizeof *ds->weight))) goto oom;
    if (src->group && !(ds->group = malloc((n ? n : 1) * sizeof *ds->group))) goto oom;
    if (src->truth && !(ds->truth = malloc((n ? n : 1) * (size_t)K * sizeof *ds->truth))) goto oom;
    for (size_t i = 0; i < n; i++) {
        size_t r = rows[i];
        memcpy(ds->cat + i * F, src->cat + r * F, (size_t)F * sizeof *ds->cat);
        if (D) memcpy(ds->dense + i * D, src->dense + r * D, (size_t)D * sizeof *ds->dense);
        memcpy(ds->labels + i * K, src->labels + r * K, (size_t)K * sizeof *ds->labels);
        if (ds->weight) ds->weight[i] = src->weight[r];
        if (ds->group) ds->group[i] = src->group[r];
        if (ds->truth) memcpy(ds->truth + i * K, src->truth + r * K, (size_t)K * sizeof *ds->truth);
    }
    for (int f = 0; f < F; f++) {
        if (!src->mv_off[f]) continue;
        uint64_t total = 0;
        for (size_t i = 0; i < n; i++) total += src->mv_off[f][rows[i] + 1] - src->mv_off[f][rows[i]];
        ds->mv_off[f] = malloc((n + 1) * sizeof **ds->mv_off);
        ds->mv_ids[f] = malloc((total ? total : 1) * sizeof **ds->mv_ids);
        if (!ds->mv_off[f] || !ds->mv_ids[f]) goto oom;
        uint64_t o = 0;
        ds->mv_off[f][0] = 0;
        for (size_t i = 0; i < n; i++) {
            uint64_t a = src->mv_off[f][rows[i]], b = src->mv_off[f][rows[i] + 1];
            memcpy(ds->mv_ids[f] + o, src->mv_ids[f] + a, (b - a) * sizeof **ds->mv_ids);
            o += b - a;
            ds->mv_off[f][i + 1] = o;
        }
    }
    return ds;
oom:
    rf_dataset_free(ds);
    return NULL;
}

rf_dataset *rf_dataset_range(const rf_dataset *src, size_t lo, size_t hi)
{
    if (hi < lo) hi = lo;
    if (!src->map) {
        size_t *rows = malloc((hi > lo ? hi - lo : 1) * sizeof *rows);
        if (!rows) return NULL;
        for (size_t i = lo; i < hi; i++) rows[i - lo] = i;
        rf_dataset *out = rf_dataset_slice(src, rows, hi - lo);
        free(rows);
        return out;
    }
    /* a view: same mapping, arrays offset by lo rows */
    rf_dataset *ds = calloc(1, sizeof *ds);
    if (!ds) return NULL;
    int F = src->F, D = src->D, K = src->K;
    ds->n = hi - lo;
    ds->F = F;
    ds->D = D;
    ds->K = K;
    ds->fields = malloc((F > 0 ? (size_t)F : 1) * sizeof *ds->fields);
    ds->dense_names = malloc((D > 0 ? (size_t)D : 1) * sizeof *ds->dense_names);
    ds->label_names = malloc((K > 0 ? (size_t)K : 1) * sizeof *ds->label_names);
    ds->mv_off = calloc(F > 0 ? (size_t)F : 1, sizeof *ds->mv_off);
    ds->mv_ids = calloc(F > 0 ? (size_t)F : 1, sizeof *ds->mv_ids);
    if (!ds->fields || !ds->dense_names || !ds->label_names || !ds->mv_off || !ds->mv_ids) {
        free(ds->fields);
        free(ds->dense_names);
        free(ds->label_names);
        free(ds->mv_off);
        free(ds->mv_ids);
        free(ds);
        return NULL;
    }
    memcpy(ds->fields, src->fields, (size_t)F * sizeof *ds->fields);
    if (D) memcpy(ds->dense_names, src->dense_names, (size_t)D * sizeof *ds->dense_names);
    if (K) memcpy(ds->label_names, src->label_names, (size_t)K * sizeof *ds->label_names);
    ds->cat = src->cat + lo * (size_t)F;
    ds->dense = src->dense ? src->dense + lo * (size_t)D : NULL;
    ds->labels = src->labels + lo * (size_t)K;
    ds->weight = src->weight ? src->weight + lo : NULL;
    ds->group = src->group ? src->group + lo : NULL;
    ds->truth = src->truth ? src->truth + lo * (size_t)K : NULL;
    for (int f = 0; f < F; f++) {
        if (!src->mv_off[f]) continue;
        ds->mv_off[f] = src->mv_off[f] + lo; /* absolute offsets into the shared ids */
        ds->mv_ids[f] = src->mv_ids[f];
    }
    ds->map = src->map;
    ds->shuffle_block = src->shuffle_block;
    ds->shuffle_window = src->shuffle_window;
    rf_mapping_retain_(ds->map);
    return ds;
}

int rf_dataset_label_index(const rf_dataset *ds, const char *name)
{
    for (int k = 0; k < ds->K; k++)
        if (strcmp(ds->label_names[k], name) == 0) return k;
    return -1;
}

int rf_dataset_cf_label_index(const rf_dataset *ds, const char *label)
{
    char nm[RF_NAME_MAX];
    if (!label || strchr(label, '*')) return -1;
    int n = snprintf(nm, sizeof nm, "cf_%s", label);
    return n > 0 && (size_t)n < sizeof nm ? rf_dataset_label_index(ds, nm) : -1; /* longer: no such name */
}

double rf_dataset_bytes(const rf_dataset *d)
{
    if (!d) return 0;
    double b = (double)d->n * (d->F * 4.0 + d->D * 4.0 + d->K * 4.0 + (d->weight ? 4 : 0) +
                               (d->group ? 8 : 0) + (d->truth ? d->K * 4.0 : 0));
    for (int f = 0; f < d->F; f++)
        if (d->mv_off[f]) b += 8.0 * (double)(d->n + 1) + 4.0 * (double)(d->mv_off[f][d->n] - d->mv_off[f][0]);
    return b;
}

/* ---- split ------------------------------------------------------------------------------ */

static size_t align_group(const uint64_t *group, size_t n, size_t at)
{
    if (!group) return at;
    while (at > 0 && at < n && group[at] == group[at - 1]) at++;
    return at;
}

void rf_split_roles(const uint64_t *group, size_t n, uint64_t seed, float valid_frac, float test_frac,
                    uint8_t *role)
{
    double t = test_frac, v = (double)test_frac + valid_frac;
    uint64_t s = rf_splitmix64(&seed); /* the seed mixed once; each key then hashed with it */
    for (size_t i = 0; i < n; i++) {
        uint64_t x = (group ? group[i] : (uint64_t)i) ^ s;
        double u = (double)(rf_splitmix64(&x) >> 11) * 0x1.0p-53;
        role[i] = u < t ? 2 : u < v ? 1 : 0;
    }
}

void rf_split_points(const uint64_t *group, size_t n, float valid_frac, float test_frac, size_t *a,
                     size_t *b)
{
    size_t n_test = (size_t)(test_frac * (double)n), n_valid = (size_t)(valid_frac * (double)n);
    if (n_test > n) n_test = n;
    if (n_valid > n - n_test) n_valid = n - n_test;
    size_t x = align_group(group, n, n - n_test - n_valid), y = align_group(group, n, n - n_test);
    if (x > y) x = y;
    *a = x;
    *b = y;
}

/* ---- memory advice for mapped datasets ----------------------------------------------------- */

/* A fault in a file mapping maps more than the faulting page ("fault-around", whole large
 * page-cache folios), so reading a block also maps pages of its neighbours. Rather than
 * dropping each consumed block with a guessed halo, a new window drops everything outside its
 * own blocks (rf_dataset_keep_only_): pages mapped as a side effect never accumulate. */
#define FAULT_AROUND ((uintptr_t)0)

/* madvise rows [r0, r1) of an array of n rows of elem bytes at base. */
static void advise_range(const void *base, size_t elem, size_t r0, size_t r1, size_t n, int advice)
{
    if (!base || r1 <= r0 || !elem) return;
    long pg = sysconf(_SC_PAGESIZE);
    uintptr_t P = pg > 0 ? (uintptr_t)pg : 4096;
    uintptr_t lo = (uintptr_t)base, hi = (uintptr_t)base + n * elem;
    uintptr_t a = (uintptr_t)base + r0 * elem, e = (uintptr_t)base + r1 * elem;
    if (advice) { /* prefetch: whole pages covering the range */
        a &= ~(P - 1);
        e = (e + P - 1) & ~(P - 1);
        (void)madvise((void *)a, e - a, MADV_WILLNEED);
    } else { /* drop the range and its fault-around halo, within the array's whole pages */
        a = a > lo + FAULT_AROUND ? a - FAULT_AROUND : lo;
        e = e + FAULT_AROUND < hi ? e + FAULT_AROUND : hi;
        a = (a + P - 1) & ~(P - 1);
        e &= ~(P - 1);
        if (e > a) (void)madvise((void *)a, e - a, MADV_DONTNEED);
    }
}

void rf_dataset_advise_(const rf_dataset *ds, size_t r0, size_t r1, int advice)
{
    if (!ds->map) return;
    size_t n = ds->n;
    if (r1 > n) r1 = n;
    advise_range(ds->cat, (size_t)ds->F * sizeof *ds->cat, r0, r1, n, advice);
    advise_range(ds->dense, (size_t)ds->D * sizeof *ds->dense, r0, r1, n, advice);
    advise_range(ds->labels, (size_t)ds->K * sizeof *ds->labels, r0, r1, n, advice);
    advise_range(ds->weight, sizeof *ds->weight, r0, r1, n, advice);
    advise_range(ds->group, sizeof *ds->group, r0, r1, n, advice);
    advise_range(ds->truth, (size_t)ds->K * sizeof *ds->truth, r0, r1, n, advice);
    for (int f = 0; f < ds->F; f++) {
        if (!ds->mv_off[f]) continue;
        advise_range(ds->mv_off[f], sizeof *ds->mv_off[f], r0, r1 + 1, n + 1, advice);
        /* ids of this view: [mv_off[0], mv_off[n]) of the shared array */
        const uint32_t *ids = ds->mv_ids[f] + ds->mv_off[f][0];
        uint64_t base = ds->mv_off[f][0];
        advise_range(ids, sizeof *ids, ds->mv_off[f][r0] - base, ds->mv_off[f][r1] - base,
                     ds->mv_off[f][n] - base, advice);
    }
}

/* ---- training row order -------------------------------------------------------------------- */

struct rf_row_order {
    const rf_dataset *ds;
    uint64_t seed;
    int batch;
    size_t n;
    /* full shuffle */
    size_t *perm;     /* (n) persistent across epochs */
    size_t next;      /* next position in perm */
    /* block shuffle */
    size_t block, nblocks;
    int window;
    size_t *border;   /* (nblocks) block order of the epoch */
    size_t wb;        /* next block (index into border) */
    size_t *buf;      /* rows of the current window (+ carry): cap window*block + batch */
    size_t blen, bpos;
    size_t *done;     /* blocks of the window being consumed (to drop after) */
    size_t ndone;
    rf_rng rng;
};

rf_row_order *rf_row_order_create(const rf_dataset *ds, uint64_t seed, int batch)
{
    rf_row_order *o = calloc(1, sizeof *o);
    if (!o) return NULL;
    o->ds = ds;
    o->seed = seed;
    o->batch = batch > 0 ? batch : 1;
    o->n = ds->n;
    if (ds->shuffle_block > 0 && ds->n > ds->shuffle_block) {
        o->block = ds->shuffle_block;
        o->window = ds->shuffle_window > 0 ? ds->shuffle_window : 1;
        o->nblocks = (ds->n + o->block - 1) / o->block;
        if ((size_t)o->window > o->nblocks) o->window = (int)o->nblocks;
        if (o->window > 64) o->window = 64;
        o->border = malloc(o->nblocks * sizeof *o->border);
        o->buf = malloc(((size_t)o->window * o->block + (size_t)o->batch) * sizeof *o->buf);
        o->done = malloc((size_t)o->window * sizeof *o->done);
        if (!o->border || !o->buf || !o->done) {
            rf_row_order_free(o);
            return NULL;
        }
    } else {
        o->perm = malloc((o->n ? o->n : 1) * sizeof *o->perm);
        if (!o->perm) {
            rf_row_order_free(o);
            return NULL;
        }
        for (size_t i = 0; i < o->n; i++) o->perm[i] = i;
    }
    return o;
}

void rf_row_order_free(rf_row_order *o)
{
    if (!o) return;
    free(o->perm);
    free(o->border);
    free(o->buf);
    free(o->done);
    free(o);
}

static int cmp_size(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return (x > y) - (x < y);
}

/* Drop from memory every row of a mapped dataset outside the blocks listed (block size
 * rows each): one madvise per gap and array. */
static void keep_only(const rf_dataset *ds, const size_t *blocks, size_t nb, size_t rows)
{
    if (!ds->map) return;
    size_t sorted[64], k = 0;
    for (size_t i = 0; i < nb && k < 64; i++) sorted[k++] = blocks[i];
    qsort(sorted, k, sizeof *sorted, cmp_size);
    size_t from = 0;
    for (size_t i = 0; i <= k; i++) {
        size_t to = i < k ? sorted[i] * rows : ds->n;
        if (to > from) rf_dataset_advise_(ds, from, to, 0);
        if (i < k) from = (sorted[i] + 1) * rows;
    }
}

static void drop_done(rf_row_order *o)
{
    for (size_t i = 0; i < o->ndone; i++) {
        size_t b = o->done[i];
        rf_dataset_advise_(o->ds, b * o->block, (b + 1) * o->block, 0);
    }
    o->ndone = 0;
}

void rf_row_order_epoch(rf_row_order *o, int ep)
{
    rf_rng_seed(&o->rng, o->seed * 1000003ULL + (uint64_t)ep + 1);
    if (o->perm) {
        for (size_t i = o->n - 1; o->n > 0 && i > 0; i--) {
            size_t j = rf_rng_below(&o->rng, i + 1), t = o->perm[i];
            o->perm[i] = o->perm[j];
            o->perm[j] = t;
        }
        o->next = 0;
        return;
    }
    drop_done(o);
    for (size_t i = 0; i < o->nblocks; i++) o->border[i] = i;
    for (size_t i = o->nblocks - 1; i > 0; i--) {
        size_t j = rf_rng_below(&o->rng, i + 1), t = o->border[i];
        o->border[i] = o->border[j];
        o->border[j] = t;
    }
    o->wb = 0;
    o->blen = o->bpos = 0;
}

/* Load the next window of blocks behind the unconsumed rows of buf (fewer than one batch)
 * and shuffle them all together. The blocks of the previous window are dropped from memory
 * first: a row of theirs still in the carry simply faults its page back in. */
static void next_window(rf_row_order *o)
{
    size_t carry = o->blen - o->bpos;
    memmove(o->buf, o->buf + o->bpos, carry * sizeof *o->buf);
    o->blen = carry;
    o->bpos = 0;
    o->ndone = 0;
    for (int w = 0; w < o->window && o->wb < o->nblocks; w++) {
        size_t b = o->border[o->wb++];
        size_t r0 = b * o->block, r1 = r0 + o->block > o->n ? o->n : r0 + o->block;
        for (size_t r = r0; r < r1; r++) o->buf[o->blen++] = r;
        o->done[o->ndone++] = b;
    }
    keep_only(o->ds, o->done, o->ndone, o->block);
    for (size_t i = 0; i < o->ndone; i++)
        rf_dataset_advise_(o->ds, o->done[i] * o->block, (o->done[i] + 1) * o->block, 1);
    for (size_t i = o->blen - 1; o->blen > 0 && i > 0; i--) {
        size_t j = rf_rng_below(&o->rng, i + 1), t = o->buf[i];
        o->buf[i] = o->buf[j];
        o->buf[j] = t;
    }
}

const size_t *rf_row_order_next(rf_row_order *o, int *nb)
{
    size_t B = (size_t)o->batch;
    if (o->perm) {
        size_t left = o->n - o->next;
        size_t m = left < B ? left : B;
        *nb = (int)m;
        const size_t *r = o->perm + o->next;
        o->next += m;
        return r;
    }
    if (o->blen - o->bpos < B && o->wb < o->nblocks) next_window(o);
    size_t left = o->blen - o->bpos;
    size_t m = left < B ? left : B;
    *nb = (int)m;
    const size_t *r = o->buf + o->bpos;
    o->bpos += m;
    if (m == 0) drop_done(o);
    return r;
}
