/* cache.c - the binary dataset cache (contract in include/resflow/cache.h, layout in
 * docs/formats.md "Dataset cache").
 *
 * Writing is cachewrite.c; this file checks, verifies and maps a cache.
 * Reading: the header (its own XXH64) and the metadata (XXH64) are checked first, then the
 * data region is read sequentially once to verify its checksums (version 2: one per chunk;
 * version 1: one) and that every id is inside its field's range (so a damaged file can never
 * index outside an embedding table), and the file is mapped read-only. A process that reads only
 * some rows (rf_cache_verify_rows) verifies only the chunks holding them and their ids.
 */
#define _GNU_SOURCE /* O_DIRECT */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <xxhash.h>

#include "core/logf.h"
#include "core/bytes.h"
#include "core/bigmem.h"
#include "data/dataint.h"
#include "core/pool.h"
#include "resflow/afile.h"
#include "data/cacheint.h"


/* ---- byte buffer (metadata) ------------------------------------------------------------- */

static int rc_name(rcur *c, char out[RF_NAME_MAX])
{
    const unsigned char *q;
    if (rc_take(c, RF_NAME_MAX, &q) || !memchr(q, 0, RF_NAME_MAX)) return -1;
    memcpy(out, q, RF_NAME_MAX);
    return 0;
}

#define FMTERR(...) rf_error_at(err, RF_EFORMAT, path, 0, 0, __VA_ARGS__)

/* ---- inputs and hashes ----------------------------------------------------------------------- */

rf_status rf_cache_file_hash_(const char *path, uint64_t *h, rf_error *err)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0) return rf_error_at(err, RF_EIO, path, 0, 0, "cannot open: %s", strerror(errno));
    XXH3_state_t *s = XXH3_createState();
    size_t cap = (size_t)1 << 20;
    char *buf = malloc(cap);
    rf_status st = RF_OK;
    if (!s || !buf) st = rf_errorf(err, RF_ENOMEM, "out of memory");
    else XXH3_64bits_reset(s);
    while (!st) {
        ssize_t r = read(fd, buf, cap);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) st = rf_error_at(err, RF_EIO, path, 0, 0, "read error: %s", strerror(errno));
        if (r <= 0) break;
        XXH3_64bits_update(s, buf, (size_t)r);
    }
    if (!st) *h = XXH3_64bits_digest(s);
    free(buf);
    if (s) XXH3_freeState(s);
    close(fd);
    return st;
}

/* Path, size and modification time (the hash is filled in separately). */
rf_status rf_cache_fingerprint_(const char *path, fprint *f, rf_error *err)
{
    memset(f, 0, sizeof *f);
    snprintf(f->path, sizeof f->path, "%s", path);
    struct stat st;
    if (stat(path, &st) != 0) return rf_error_at(err, RF_EIO, path, 0, 0, "cannot open: %s", strerror(errno));
    f->size = (uint64_t)st.st_size;
    f->mtime_s = (int64_t)st.st_mtim.tv_sec;
    f->mtime_ns = (int64_t)st.st_mtim.tv_nsec;
    return RF_OK;
}

int rf_cache_list_inputs_(const rf_data_cfg *data, const char **paths)
{
    int n = 0;
    paths[n++] = data->source;
    for (int j = 0; j < data->schema.njoin && j < RF_MAX_JOINS; j++) paths[n++] = data->schema.join[j].path;
    if (data->valid[0]) paths[n++] = data->valid;
    if (data->test[0]) paths[n++] = data->test;
    return n;
}

int rf_chunker_init_(rf_chunker_ *c, unsigned shift)
{
    memset(c, 0, sizeof *c);
    c->size = (uint64_t)1 << shift;
    if (!(c->s = XXH3_createState())) return -1;
    XXH3_64bits_reset(c->s);
    return 0;
}

void rf_chunker_free_(rf_chunker_ *c)
{
    if (c->s) XXH3_freeState(c->s);
    free(c->h);
    memset(c, 0, sizeof *c);
}

static void chunk_done(rf_chunker_ *c)
{
    if (c->n == c->cap) {
        size_t nc = c->cap ? 2 * c->cap : 64;
        uint64_t *p = realloc(c->h, nc * sizeof *p);
        if (!p) {
            c->oom = 1;
            return;
        }
        c->h = p;
        c->cap = nc;
    }
    c->h[c->n++] = XXH3_64bits_digest(c->s);
    XXH3_64bits_reset(c->s);
    c->fill = 0;
}

void rf_chunker_feed_(rf_chunker_ *c, const void *p, size_t n)
{
    const unsigned char *b = p;
    while (n && !c->oom) {
        size_t k = c->size - c->fill < n ? (size_t)(c->size - c->fill) : n;
        XXH3_64bits_update(c->s, b, k);
        c->fill += k;
        b += k;
        n -= k;
        if (c->fill == c->size) chunk_done(c);
    }
}

void rf_chunker_end_(rf_chunker_ *c)
{
    if (c->fill && !c->oom) chunk_done(c);
}

/* ---- reading ---------------------------------------------------------------------------------- */

typedef struct {
    int fd;
    uint32_t version, chunk_shift; /* chunk_shift: version 2 */
    uint64_t size, meta_off, meta_len, data_hash, chash;
    unsigned char *meta;
} chead;

static void chead_free(chead *h)
{
    if (h->fd >= 0) close(h->fd);
    free(h->meta);
    h->fd = -1;
    h->meta = NULL;
}

static rf_status read_exact(int fd, void *p, size_t n, uint64_t off, const char *path, rf_error *err)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, (char *)p + got, n - got, (off_t)(off + got));
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return rf_error_at(err, RF_EIO, path, 0, 0, "read error: %s", strerror(errno));
        if (r == 0) return FMTERR("truncated: unexpected end of file");
        got += (size_t)r;
    }
    return RF_OK;
}

static rf_status read_head(const char *path, chead *h, rf_error *err)
{
    memset(h, 0, sizeof *h);
    h->fd = open(path, O_RDONLY);
    if (h->fd < 0) return rf_error_at(err, RF_EIO, path, 0, 0, "cannot open: %s", strerror(errno));
    struct stat st;
    if (fstat(h->fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        chead_free(h);
        return rf_error_at(err, RF_EIO, path, 0, 0, "cannot open: not a regular file");
    }
    uint64_t size = (uint64_t)st.st_size;
    unsigned char hdr[HDR];
    size_t got = size < HDR ? (size_t)size : HDR;
    rf_status s = read_exact(h->fd, hdr, got, 0, path, err);
    if (s) goto fail;
    if (memcmp(hdr, RF_CACHE_MAGIC, got < 8 ? got : 8) != 0) {
        s = FMTERR("not a resflow dataset cache (bad magic)");
        goto fail;
    }
    if (size < HDR) {
        s = FMTERR("truncated: expected at least %u bytes (the header), file has %llu", HDR, (unsigned long long)size);
        goto fail;
    }
    uint32_t ver = rd32(hdr + 8);
    if (ver != RF_CACHE_VERSION && ver != 1) { /* version 1: no chunk checksums, verified whole */
        s = FMTERR("cache format version %u, this build reads version %d (%s): run resflow prepare again", ver,
                   RF_CACHE_VERSION, ver > RF_CACHE_VERSION ? "written by a newer resflow" : "an older format");
        goto fail;
    }
    if (rd32(hdr + 12) != RF_ENDIAN_MARK) {
        s = FMTERR("bad endian marker: the header is corrupted or from another byte order");
        goto fail;
    }
    if (rd64(hdr + HDR - 8) != XXH64(hdr, HDR - 8, 0)) {
        s = FMTERR("header checksum mismatch: the cache is corrupted");
        goto fail;
    }
    h->size = rd64(hdr + 16);
    h->meta_off = rd64(hdr + 24);
    h->meta_len = rd64(hdr + 32);
    h->data_hash = rd64(hdr + 48);
    h->chash = rd64(hdr + 56);
    h->version = ver;
    h->chunk_shift = ver >= 2 ? rd32(hdr + 64) : 0;
    if (ver >= 2 && (h->chunk_shift < 12 || h->chunk_shift > 24)) {
        s = FMTERR("bad chunk size 2^%u: the header is corrupted", h->chunk_shift);
        goto fail;
    }
    if (h->size != size) {
        s = size < h->size ? FMTERR("truncated: expected %llu bytes, file has %llu", (unsigned long long)h->size,
                                    (unsigned long long)size)
                           : FMTERR("%llu unexpected bytes after the end", (unsigned long long)(size - h->size));
        goto fail;
    }
    if (h->meta_off < HDR || h->meta_off > size || h->meta_len != size - h->meta_off || h->meta_off % ALIGN) {
        s = FMTERR("bad metadata location: the header is corrupted");
        goto fail;
    }
    h->meta = malloc(h->meta_len ? h->meta_len : 1);
    if (!h->meta) {
        s = rf_errorf(err, RF_ENOMEM, "out of memory");
        goto fail;
    }
    if ((s = read_exact(h->fd, h->meta, h->meta_len, h->meta_off, path, err))) goto fail;
    if (XXH64(h->meta, h->meta_len, 0) != rd64(hdr + 40)) {
        s = FMTERR("metadata checksum mismatch: the cache is corrupted");
        goto fail;
    }
    return RF_OK;
fail:
    chead_free(h);
    return s;
}

typedef struct {
    uint64_t off, len;
} extent;

typedef struct {
    int present;
    uint64_t n;
    uint32_t F, D, K;
    extent cat, dense, labels, weight, group;
    rf_field fields[RF_MAX_FIELDS];
    extent mv_off[RF_MAX_FIELDS], mv_ids[RF_MAX_FIELDS];
    char (*dnames)[RF_NAME_MAX];
    char (*lnames)[RF_NAME_MAX];
} partmeta;

static int c_ext(rcur *c, extent *e) { return rc_u64(c, &e->off) || rc_u64(c, &e->len); }

/* Parsed metadata. */
typedef struct {
    partmeta part[3];
    rf_encoders *enc;
    int nin;
    fprint in[MAX_INPUTS];
    uint64_t nchunks;            /* version 2: chunks of the data region */
    const unsigned char *chunks; /* their XXH3-64s (in the header's metadata buffer) */
} cmeta;

static void cmeta_free(cmeta *m)
{
    for (int p = 0; p < 3; p++) {
        free(m->part[p].dnames);
        free(m->part[p].lnames);
    }
    rf_encoders_free(m->enc);
    memset(m, 0, sizeof *m);
}

static rf_status check_ext(const char *path, const chead *h, const extent *e, uint64_t want, int present,
                           const char *what, rf_error *err)
{
    if (!present) {
        if (e->off || e->len) return FMTERR("metadata: unexpected %s array", what);
        return RF_OK;
    }
    if (e->len != want || e->off < HDR || e->off % 8 || e->off > h->meta_off || e->len > h->meta_off - e->off)
        return FMTERR("metadata: %s array out of place (offset %llu, %llu bytes)", what,
                      (unsigned long long)e->off, (unsigned long long)e->len);
    return RF_OK;
}

static rf_status parse_meta(const char *path, const chead *h, cmeta *m, rf_error *err)
{
    memset(m, 0, sizeof *m);
    rcur c = {h->meta, (size_t)h->meta_len, 0};
    uint32_t np;
    rf_status st = RF_OK;
    if (rc_u32(&c, &np) || np != 3) return FMTERR("metadata: bad part count");
    for (int p = 0; p < 3; p++) {
        partmeta *pm = &m->part[p];
        unsigned pres;
        if (rc_u8(&c, &pres) || pres > 1) return FMTERR("metadata: part %d: bad header", p);
        pm->present = (int)pres;
        if (!pres) continue;
        if (rc_u64(&c, &pm->n) || rc_u32(&c, &pm->F) || rc_u32(&c, &pm->D) || rc_u32(&c, &pm->K))
            return FMTERR("metadata: part %d: truncated", p);
        if (pm->F > RF_MAX_FIELDS || pm->D > 65536 || pm->K > RF_MAX_LABELS || pm->n > ((uint64_t)1 << 40))
            return FMTERR("metadata: part %d: bad sizes", p);
        if (c_ext(&c, &pm->cat) || c_ext(&c, &pm->dense) || c_ext(&c, &pm->labels) || c_ext(&c, &pm->weight) ||
            c_ext(&c, &pm->group))
            return FMTERR("metadata: part %d: truncated", p);
        uint64_t n = pm->n;
        if ((st = check_ext(path, h, &pm->cat, n * pm->F * 4, 1, "categorical", err)) ||
            (st = check_ext(path, h, &pm->dense, n * pm->D * 4, pm->D > 0, "dense", err)) ||
            (st = check_ext(path, h, &pm->labels, n * pm->K * 4, 1, "label", err)) ||
            (st = check_ext(path, h, &pm->weight, n * 4, pm->weight.len > 0, "weight", err)) ||
            (st = check_ext(path, h, &pm->group, n * 8, pm->group.len > 0, "group", err)))
            return st;
        for (uint32_t f = 0; f < pm->F; f++) {
            unsigned multi, pool, sep, pad;
            rf_field *fd = &pm->fields[f];
            if (rc_u8(&c, &multi) || rc_u8(&c, &pool) || rc_u8(&c, &sep) || rc_u8(&c, &pad) || rc_u32(&c, &fd->vocab) ||
                rc_name(&c, fd->name))
                return FMTERR("metadata: part %d field %u: truncated", p, f);
            if (multi > 1 || pool > 1 || fd->vocab < 1) return FMTERR("metadata: part %d field %u: bad values", p, f);
            fd->multi = (int)multi;
            fd->pooling = (int)pool;
            fd->sep = (char)sep;
            if (multi) {
                if (c_ext(&c, &pm->mv_off[f]) || c_ext(&c, &pm->mv_ids[f]))
                    return FMTERR("metadata: part %d field %u: truncated", p, f);
                if ((st = check_ext(path, h, &pm->mv_off[f], (n + 1) * 8, 1, "multi-value offset", err)) ||
                    (st = check_ext(path, h, &pm->mv_ids[f], pm->mv_ids[f].len, pm->mv_ids[f].len > 0, "multi-value id", err)))
                    return st;
                if (pm->mv_ids[f].len % 4) return FMTERR("metadata: part %d field %u: bad id array", p, f);
            }
        }
        pm->dnames = calloc(pm->D ? pm->D : 1, RF_NAME_MAX);
        pm->lnames = calloc(pm->K ? pm->K : 1, RF_NAME_MAX);
        if (!pm->dnames || !pm->lnames) return rf_errorf(err, RF_ENOMEM, "out of memory");
        for (uint32_t d = 0; d < pm->D; d++)
            if (rc_name(&c, pm->dnames[d])) return FMTERR("metadata: part %d: bad dense name", p);
        for (uint32_t k = 0; k < pm->K; k++)
            if (rc_name(&c, pm->lnames[k])) return FMTERR("metadata: part %d: bad label name", p);
        if (p && (pm->F != m->part[0].F || pm->D != m->part[0].D || pm->K != m->part[0].K))
            return FMTERR("metadata: part %d has another shape than the source", p);
    }
    if (!m->part[0].present) return FMTERR("metadata: no source part");
    unsigned has_enc;
    if (rc_u8(&c, &has_enc) || has_enc > 1) return FMTERR("metadata: bad encoder flag");
    if (has_enc) {
        uint32_t F, D;
        uint64_t plen;
        const unsigned char *prep;
        if (rc_u32(&c, &F) || rc_u32(&c, &D) || rc_u64(&c, &plen) || plen > c.n - c.off || rc_take(&c, (size_t)plen, &prep))
            return FMTERR("metadata: encoders truncated");
        if (F != m->part[0].F) return FMTERR("metadata: encoders for %u fields, the data has %u", F, m->part[0].F);
        if (D > 65536) return FMTERR("metadata: encoders for %u dense columns (at most 65536)", D); /* fuzz_cache */
        rf_encoders *e = rf_encoders_new_((int)F, (int)D);
        if (!e) return rf_errorf(err, RF_ENOMEM, "out of memory");
        m->enc = e;
        free(e->field);
        e->field = NULL;
        free(e->dense);
        e->dense = NULL;
        e->D = 0;
        for (uint32_t f = 0; f < F; f++) {
            uint32_t present, nk;
            if (rc_u32(&c, &present) || present > 1) return FMTERR("metadata: vocabulary %u: bad flag", f);
            if (!present) continue;
            if (rc_u32(&c, &nk) || nk > (c.n - c.off) / 4) return FMTERR("metadata: vocabulary %u: truncated", f);
            if (!(e->vocab[f] = rf_vocab_create())) return rf_errorf(err, RF_ENOMEM, "out of memory");
            for (uint32_t i = 0; i < nk; i++) {
                uint32_t kl;
                const unsigned char *k;
                if (rc_u32(&c, &kl) || rc_take(&c, kl, &k)) return FMTERR("metadata: vocabulary %u: truncated", f);
                rf_status s2 = rf_vocab_add(e->vocab[f], (const char *)k, kl);
                if (s2 == RF_ENOMEM) return rf_errorf(err, RF_ENOMEM, "out of memory");
                if (s2) return FMTERR("metadata: vocabulary %u: duplicate key", f);
            }
            rf_vocab_freeze(e->vocab[f], 0);
        }
        if ((st = rf_encoders_prep_parse(e, (int)F, (int)D, prep, (size_t)plen, path, err))) return st;
        for (uint32_t f = 0; f < F; f++)
            if (e->field[f].size != m->part[0].fields[f].vocab)
                return FMTERR("metadata: field %u: encoder and data disagree on its size", f);
    }
    uint32_t nin;
    if (rc_u32(&c, &nin) || nin > MAX_INPUTS) return FMTERR("metadata: bad input list");
    m->nin = (int)nin;
    for (uint32_t i = 0; i < nin; i++) {
        uint32_t pl;
        const unsigned char *pp;
        fprint *f = &m->in[i];
        uint64_t ms, mns;
        if (rc_u32(&c, &pl) || pl >= RF_PATH_MAX || rc_take(&c, pl, &pp) || rc_u64(&c, &f->size) || rc_u64(&c, &ms) ||
            rc_u64(&c, &mns) || rc_u64(&c, &f->hash))
            return FMTERR("metadata: input %u: truncated", i);
        memcpy(f->path, pp, pl);
        f->path[pl] = '\0';
        f->mtime_s = (int64_t)ms;
        f->mtime_ns = (int64_t)mns;
    }
    uint64_t skip3[3];
    for (int i = 0; i < 3; i++)
        if (rc_u64(&c, &skip3[i])) return FMTERR("metadata: truncated");
    if (h->version >= 2) {
        uint64_t region = h->meta_off - HDR, want = (region + ((uint64_t)1 << h->chunk_shift) - 1) >> h->chunk_shift;
        if (rc_u64(&c, &m->nchunks) || m->nchunks != want || m->nchunks > (c.n - c.off) / 8 ||
            rc_take(&c, (size_t)m->nchunks * 8, &m->chunks))
            return FMTERR("metadata: bad chunk table");
    }
    if (c.off != c.n) return FMTERR("metadata: %zu unexpected bytes at its end", c.n - c.off);
    return RF_OK;
}

/* Stale? *why gets the reason. */
static rf_status freshness(const rf_data_cfg *data, const rf_cache_opts *o, const chead *h, const cmeta *m,
                           char *why, size_t wn, rf_error *err)
{
    why[0] = '\0';
    if (h->version != RF_CACHE_VERSION) {
        snprintf(why, wn, "it is in the older cache format version %u", h->version);
        return RF_OK;
    }
    if (h->chash != o->config_hash) {
        snprintf(why, wn, "the data configuration changed");
        return RF_OK;
    }
    const char *paths[MAX_INPUTS];
    int n = rf_cache_list_inputs_(data, paths);
    if (n != m->nin) {
        snprintf(why, wn, "the list of input files changed");
        return RF_OK;
    }
    for (int i = 0; i < n; i++) {
        const fprint *old = &m->in[i];
        if (strcmp(old->path, paths[i])) {
            snprintf(why, wn, "input %s was %s", paths[i], old->path);
            return RF_OK;
        }
        fprint now;
        rf_status st = rf_cache_fingerprint_(paths[i], &now, err);
        if (st) return st;
        if (now.size != old->size) {
            snprintf(why, wn, "%s changed (size %llu, was %llu)", paths[i], (unsigned long long)now.size,
                     (unsigned long long)old->size);
            return RF_OK;
        }
        if (now.mtime_s != old->mtime_s || now.mtime_ns != old->mtime_ns) {
            if ((st = rf_cache_file_hash_(paths[i], &now.hash, err))) return st;
            if (now.hash != old->hash) {
                snprintf(why, wn, "%s changed (content)", paths[i]);
                return RF_OK;
            }
        }
    }
    return RF_OK;
}

rf_status rf_cache_check(const rf_data_cfg *data, const rf_cache_opts *o, const char *path, rf_error *err)
{
    chead h;
    cmeta m;
    rf_status st = read_head(path, &h, err);
    if (st) return st;
    st = parse_meta(path, &h, &m, err);
    char why[RF_PATH_MAX + 128];
    if (!st) st = freshness(data, o, &h, &m, why, sizeof why, err);
    if (!st && why[0]) st = FMTERR("stale: %s; run resflow prepare again", why);
    cmeta_free(&m);
    chead_free(&h);
    return st;
}

/* ---- verification ------------------------------------------------------------------------------ */

/* What an array's elements must satisfy. */
enum { K_NONE = 0, K_CAT = 1, K_IDS = 2, K_OFFS = 3 }; /* cat: F ids per row; ids < vocab; offsets */

typedef struct {
    extent e;
    int kind;
    const partmeta *pm;
    int f;
} arr;

/* Checks the elements of an array piece by piece: elem is the index of the next element, prev
 * the last offset seen (K_OFFS). */
typedef struct {
    const arr *a;
    uint64_t elem, prev;
} echeck;

static rf_status check_piece(const char *path, echeck *k, const unsigned char *buf, size_t n, rf_error *err)
{
    const arr *a = k->a;
    const partmeta *pm = a->pm;
    if (a->kind == K_CAT) {
        uint32_t F = pm->F;
        for (size_t j = 0; j + 4 <= n; j += 4, k->elem++) {
            uint32_t id = rd32(buf + j), f = (uint32_t)(k->elem % F);
            if (!pm->fields[f].multi && id >= pm->fields[f].vocab)
                return FMTERR("data: id %u of field %s out of range (%u ids): the cache is corrupted", id,
                              pm->fields[f].name, pm->fields[f].vocab);
        }
    } else if (a->kind == K_IDS) {
        uint32_t v = pm->fields[a->f].vocab;
        for (size_t j = 0; j + 4 <= n; j += 4)
            if (rd32(buf + j) >= v)
                return FMTERR("data: id %u of field %s out of range: the cache is corrupted", rd32(buf + j),
                              pm->fields[a->f].name);
    } else if (a->kind == K_OFFS) {
        uint64_t total = pm->mv_ids[a->f].len / 4;
        for (size_t j = 0; j + 8 <= n; j += 8, k->elem++) {
            uint64_t o = rd64(buf + j);
            if ((k->elem == 0 && o != 0) || o < k->prev || o > total || (k->elem == pm->n && o != total))
                return FMTERR("data: bad multi-value offsets of field %s: the cache is corrupted", pm->fields[a->f].name);
            k->prev = o;
        }
    }
    return RF_OK;
}

/* Every array of the present parts, sorted by offset; -1 when they overlap. */
static int list_arrays(const cmeta *m, arr *list)
{
    int na = 0;
    for (int p = 0; p < 3; p++) {
        const partmeta *pm = &m->part[p];
        if (!pm->present) continue;
        arr a0 = {pm->cat, K_CAT, pm, -1};
        list[na++] = a0;
        const extent *ex[4] = {&pm->dense, &pm->labels, &pm->weight, &pm->group};
        for (int i = 0; i < 4; i++)
            if (ex[i]->len) {
                arr a = {*ex[i], K_NONE, pm, -1};
                list[na++] = a;
            }
        for (uint32_t f = 0; f < pm->F; f++)
            if (pm->fields[f].multi) {
                arr a = {pm->mv_off[f], K_OFFS, pm, (int)f}, b = {pm->mv_ids[f], K_IDS, pm, (int)f};
                list[na++] = a;
                if (b.e.len) list[na++] = b;
            }
    }
    for (int i = 1; i < na; i++) /* insertion sort by offset */
        for (int j = i; j > 0 && list[j].e.off < list[j - 1].e.off; j--) {
            arr t = list[j];
            list[j] = list[j - 1];
            list[j - 1] = t;
        }
    for (int i = 1; i < na; i++)
        if (list[i].e.off < list[i - 1].e.off + list[i - 1].e.len) return -1;
    return na;
}

#define MAX_ARRAYS (3 * (5 + 2 * RF_MAX_FIELDS))
#define RBUF ((size_t)4 << 20)

static uint64_t chunk_hash(const cmeta *m, uint64_t i) { return rd64(m->chunks + 8 * i); }

/* The bytes [a, b) of the data region of chunk i, for messages. */
static rf_status chunk_mismatch(const char *path, const chead *h, uint64_t i, rf_error *err)
{
    uint64_t a = HDR + (i << h->chunk_shift), b = a + ((uint64_t)1 << h->chunk_shift);
    if (b > h->meta_off) b = h->meta_off;
    return FMTERR("data checksum mismatch in chunk %llu (bytes %llu-%llu): the cache is corrupted",
                  (unsigned long long)i, (unsigned long long)a, (unsigned long long)(b - 1));
}

/* Verify the whole data region with one sequential read: its checksum (version 1: one hash;
 * version 2: every chunk's) and the ids and offsets of every row. */
static rf_status verify_data(const char *path, const chead *h, const cmeta *m, rf_error *err)
{
    arr list[MAX_ARRAYS];
    int na = list_arrays(m, list);
    if (na < 0) return FMTERR("metadata: overlapping arrays");
    XXH3_state_t *hs = XXH3_createState();
    unsigned char *buf = malloc(RBUF);
    rf_chunker_ ck;
    int ck_ok = h->version >= 2 ? rf_chunker_init_(&ck, h->chunk_shift) == 0 : (memset(&ck, 0, sizeof ck), 1);
    rf_status st = RF_OK;
    if (!hs || !buf || !ck_ok) {
        st = rf_errorf(err, RF_ENOMEM, "out of memory");
        goto done;
    }
    XXH3_64bits_reset(hs);
    uint64_t pos = HDR;
    for (int i = 0; i <= na && !st; i++) {
        uint64_t end = i < na ? list[i].e.off + list[i].e.len : h->meta_off;
        echeck k = {i < na ? &list[i] : NULL, 0, 0};
        while (pos < end && !st) { /* padding / unlisted bytes up to the array, then the array */
            uint64_t stop = i < na && pos < list[i].e.off ? list[i].e.off : end;
            size_t n = stop - pos < RBUF ? (size_t)(stop - pos) : RBUF;
            if ((st = read_exact(h->fd, buf, n, pos, path, err))) break;
            if (h->version >= 2) rf_chunker_feed_(&ck, buf, n);
            else XXH3_64bits_update(hs, buf, n);
            if (i < na && pos >= list[i].e.off) st = check_piece(path, &k, buf, n, err);
            pos += n;
        }
    }
    if (st) goto done;
    if (h->version < 2) {
        if (XXH3_64bits_digest(hs) != h->data_hash) st = FMTERR("data checksum mismatch: the cache is corrupted");
        goto done;
    }
    rf_chunker_end_(&ck);
    if (ck.oom) st = rf_errorf(err, RF_ENOMEM, "out of memory");
    for (uint64_t i = 0; i < ck.n && !st; i++)
        if (ck.h[i] != chunk_hash(m, i)) st = chunk_mismatch(path, h, i, err);
done:
    rf_chunker_free_(&ck);
    free(buf);
    if (hs) XXH3_freeState(hs);
    return st;
}

static rf_dataset *part_dataset(const partmeta *pm, struct rf_mapping *map)
{
    rf_dataset *ds = calloc(1, sizeof *ds);
    if (!ds) return NULL;
    int F = (int)pm->F, D = (int)pm->D, K = (int)pm->K;
    ds->n = pm->n;
    ds->F = F;
    ds->D = D;
    ds->K = K;
    ds->fields = calloc(F ? (size_t)F : 1, sizeof *ds->fields);
    ds->dense_names = calloc(D ? (size_t)D : 1, RF_NAME_MAX);
    ds->label_names = calloc(K ? (size_t)K : 1, RF_NAME_MAX);
    ds->mv_off = calloc(F ? (size_t)F : 1, sizeof *ds->mv_off);
    ds->mv_ids = calloc(F ? (size_t)F : 1, sizeof *ds->mv_ids);
    ds->map = map;
    rf_mapping_retain_(map);
    if (!ds->fields || !ds->dense_names || !ds->label_names || !ds->mv_off || !ds->mv_ids) {
        rf_dataset_free(ds);
        return NULL;
    }
    char *b = map->base;
    memcpy(ds->fields, pm->fields, (size_t)F * sizeof *ds->fields);
    memcpy(ds->dense_names, pm->dnames, (size_t)D * RF_NAME_MAX);
    memcpy(ds->label_names, pm->lnames, (size_t)K * RF_NAME_MAX);
    /* empty arrays (no rows, no fields, no multi-values) are never read: any valid pointer */
    uint32_t *none = (uint32_t *)(void *)b;
    ds->cat = pm->cat.len ? (uint32_t *)(void *)(b + pm->cat.off) : none;
    ds->dense = D ? (float *)(void *)(b + pm->dense.off) : NULL;
    ds->labels = pm->labels.len ? (float *)(void *)(b + pm->labels.off) : (float *)(void *)none;
    ds->weight = pm->weight.len ? (float *)(void *)(b + pm->weight.off) : NULL;
    ds->group = pm->group.len ? (uint64_t *)(void *)(b + pm->group.off) : NULL;
    for (int f = 0; f < F; f++) {
        if (!pm->fields[f].multi) continue;
        ds->mv_off[f] = (uint64_t *)(void *)(b + pm->mv_off[f].off);
        ds->mv_ids[f] = pm->mv_ids[f].len ? (uint32_t *)(void *)(b + pm->mv_ids[f].off) : none;
    }
    return ds;
}

/* ---- a cache opened in steps ---------------------------------------------------------------- */

struct rf_cache {
    char path[RF_PATH_MAX];
    chead h;
    cmeta m;
    struct rf_mapping *map;
    unsigned char *done;  /* per chunk (version 2): verified */
    unsigned char *buf;   /* buflen bytes: runs of chunks, pieces of rows to check */
    size_t buflen;
    int whole;            /* the whole data region is verified */
    uint64_t verified;    /* bytes of the data region verified */
};

rf_status rf_cache_map(const char *path, rf_cache **out, rf_error *err)
{
    *out = NULL;
    if (!rf_host_le()) return rf_errorf(err, RF_EUSAGE, "caches are little-endian; this host is not");
    rf_cache *c = calloc(1, sizeof *c);
    if (!c) return rf_errorf(err, RF_ENOMEM, "out of memory");
    snprintf(c->path, sizeof c->path, "%s", path);
    rf_status st = read_head(path, &c->h, err);
    if (st) {
        free(c);
        return st;
    }
    arr list[MAX_ARRAYS];
    if ((st = parse_meta(path, &c->h, &c->m, err))) goto fail;
    if (list_arrays(&c->m, list) < 0) {
        st = FMTERR("metadata: overlapping arrays");
        goto fail;
    }
    size_t bl = c->h.version >= 2 && ((size_t)1 << c->h.chunk_shift) > RBUF ? (size_t)1 << c->h.chunk_shift : RBUF;
    c->done = calloc(c->m.nchunks ? c->m.nchunks : 1, 1);
    c->buf = malloc(bl);
    c->buflen = bl;
    c->map = calloc(1, sizeof *c->map);
    if (!c->done || !c->buf || !c->map) {
        st = rf_errorf(err, RF_ENOMEM, "out of memory");
        goto fail;
    }
    c->map->len = (size_t)c->h.meta_off;
    c->map->base = mmap(NULL, c->map->len, PROT_READ, MAP_PRIVATE, c->h.fd, 0);
    if (c->map->base == MAP_FAILED) {
        free(c->map);
        c->map = NULL;
        st = rf_error_at(err, RF_EIO, path, 0, 0, "cannot map: %s", strerror(errno));
        goto fail;
    }
    c->map->refs = 1;
    /* rows are read where the row order says (and prefetched with MADV_WILLNEED per block), so
     * no speculative readahead */
    (void)madvise(c->map->base, c->map->len, MADV_RANDOM);
    *out = c;
    return RF_OK;
fail:
    rf_cache_close(c);
    return st;
}

void rf_cache_close(rf_cache *c)
{
    if (!c) return;
    if (c->map) rf_mapping_release_(c->map); /* the datasets hold their own references */
    cmeta_free(&c->m);
    chead_free(&c->h);
    free(c->done);
    free(c->buf);
    free(c);
}

size_t rf_cache_part_rows(const rf_cache *c, int p)
{
    return p >= 0 && p < 3 && c->m.part[p].present ? (size_t)c->m.part[p].n : 0;
}

void rf_cache_verified(const rf_cache *c, uint64_t *bytes, uint64_t *total)
{
    if (bytes) *bytes = c->verified;
    if (total) *total = c->h.meta_off - HDR;
}

rf_status rf_cache_verify(rf_cache *c, rf_error *err)
{
    if (c->whole) return RF_OK;
    const char *path = c->path;
    rf_status st = verify_data(path, &c->h, &c->m, err);
    if (st) return st;
    c->whole = 1;
    c->verified = c->h.meta_off - HDR;
    if (c->m.nchunks) memset(c->done, 1, c->m.nchunks);
    return RF_OK;
}

/* Verify the chunks that hold the bytes [a, b) of the data region (each chunk once; runs of
 * chunks not verified yet are read together, up to the buffer's size). */
static rf_status verify_span(rf_cache *c, uint64_t a, uint64_t b, rf_error *err)
{
    const char *path = c->path;
    unsigned sh = c->h.chunk_shift;
    uint64_t C = (uint64_t)1 << sh, per = c->buflen / C; /* chunks per read (>= 1) */
    if (b <= a) return RF_OK;
    uint64_t last = (b - 1 - HDR) >> sh;
    for (uint64_t i = (a - HDR) >> sh; i <= last;) {
        if (c->done[i]) {
            i++;
            continue;
        }
        uint64_t j = i + 1;
        while (j <= last && j - i < per && !c->done[j]) j++;
        uint64_t off = HDR + (i << sh), end = HDR + (j << sh);
        if (end > c->h.meta_off) end = c->h.meta_off;
        rf_status st = read_exact(c->h.fd, c->buf, (size_t)(end - off), off, path, err);
        if (st) return st;
        for (uint64_t k = i; k < j; k++) {
            uint64_t o = (k - i) << sh, len = off + o + C > end ? end - off - o : C;
            if (XXH3_64bits(c->buf + o, (size_t)len) != chunk_hash(&c->m, k)) return chunk_mismatch(path, &c->h, k, err);
            c->done[k] = 1;
            c->verified += len;
        }
        i = j;
    }
    return RF_OK;
}

/* Check elements [e0, e1) of array a (elem bytes each; verified) with check_piece. */
static rf_status check_span(rf_cache *c, const arr *a, size_t elem, uint64_t e0, uint64_t e1, rf_error *err)
{
    echeck k = {a, e0, 0};
    uint64_t pos = a->e.off + e0 * elem, end = a->e.off + e1 * elem;
    rf_status st = RF_OK;
    while (pos < end && !st) {
        size_t n = end - pos < RBUF ? (size_t)(end - pos) : RBUF;
        if (!(st = read_exact(c->h.fd, c->buf, n, pos, c->path, err))) st = check_piece(c->path, &k, c->buf, n, err);
        pos += n;
    }
    return st;
}

rf_status rf_cache_verify_rows(rf_cache *c, int p, size_t lo, size_t hi, rf_error *err)
{
    const char *path = c->path;
    if (p < 0 || p > 2 || !c->m.part[p].present || lo > hi || hi > c->m.part[p].n)
        return rf_errorf(err, RF_EUSAGE, "cache: no rows [%zu, %zu) in part %d", lo, hi, p);
    if (c->h.version < 2) return rf_cache_verify(c, err); /* no chunk checksums: all of it */
    if (c->whole || lo == hi) return RF_OK;
    const partmeta *pm = &c->m.part[p];
    struct {
        const extent *e;
        size_t row;
    } fixed[5] = {{&pm->cat, (size_t)pm->F * 4}, {&pm->dense, (size_t)pm->D * 4}, {&pm->labels, (size_t)pm->K * 4},
                  {&pm->weight, 4}, {&pm->group, 8}};
    rf_status st = RF_OK;
    for (int i = 0; i < 5 && !st; i++)
        if (fixed[i].e->len) st = verify_span(c, fixed[i].e->off + lo * fixed[i].row, fixed[i].e->off + hi * fixed[i].row, err);
    arr cat = {pm->cat, K_CAT, pm, -1};
    if (!st) st = check_span(c, &cat, 4, (uint64_t)lo * pm->F, (uint64_t)hi * pm->F, err);
    for (uint32_t f = 0; f < pm->F && !st; f++) {
        if (!pm->fields[f].multi) continue;
        const extent *eo = &pm->mv_off[f];
        arr offs = {*eo, K_OFFS, pm, (int)f}, ids = {pm->mv_ids[f], K_IDS, pm, (int)f};
        if ((st = verify_span(c, eo->off + lo * 8, eo->off + (hi + 1) * 8, err)) ||
            (st = check_span(c, &offs, 8, lo, hi + 1, err)))
            break;
        unsigned char b[8];
        uint64_t o0, o1;
        if ((st = read_exact(c->h.fd, b, 8, eo->off + lo * 8, path, err))) break;
        o0 = rd64(b);
        if ((st = read_exact(c->h.fd, b, 8, eo->off + hi * 8, path, err))) break;
        o1 = rd64(b);
        if (o1 > o0 && !(st = verify_span(c, ids.e.off + o0 * 4, ids.e.off + o1 * 4, err)))
            st = check_span(c, &ids, 4, o0, o1, err);
    }
    return st;
}

rf_status rf_cache_datasets(rf_cache *c, rf_dataset **source, rf_dataset **valid, rf_dataset **test,
                            rf_encoders **enc, rf_error *err)
{
    *source = *valid = *test = NULL;
    *enc = NULL;
    rf_dataset **outs[3] = {source, valid, test};
    for (int p = 0; p < 3; p++) {
        if (!c->m.part[p].present) continue;
        if (!(*outs[p] = part_dataset(&c->m.part[p], c->map))) {
            for (int q = 0; q < 3; q++) {
                rf_dataset_free(*outs[q]);
                *outs[q] = NULL;
            }
            return rf_errorf(err, RF_ENOMEM, "out of memory");
        }
    }
    *enc = c->m.enc;
    c->m.enc = NULL;
    return RF_OK;
}

rf_status rf_cache_open(const char *path, rf_dataset **source, rf_dataset **valid, rf_dataset **test,
                        rf_encoders **enc, rf_error *err)
{
    *source = *valid = *test = NULL;
    *enc = NULL;
    rf_cache *c;
    rf_status st = rf_cache_map(path, &c, err);
    if (st) return st;
    if (!(st = rf_cache_verify(c, err))) st = rf_cache_datasets(c, source, valid, test, enc, err);
    rf_cache_close(c);
    return st;
}
