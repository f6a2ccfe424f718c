/* cachewrite.c - writing the binary dataset cache (rf_cache_build; contract in
 * include/resflow/cache.h, layout in docs/formats.md "Dataset cache"; reading is cache.c).
 *
 * Writing: a temporary file beside path (afile.h) is written front to back through aligned
 * buffers by a writer thread, with O_DIRECT where the file system allows it (no page cache is
 * filled): a zero header page; the dense rows of each input as the loader accepts them, when they are
 * final as parsed (no normalisation to fit; rf_load_csv_hooked_); the other arrays once the
 * encoders are fitted (held in memory meanwhile, or in unlinked spill files next to the cache
 * for inputs large for this machine); every array at a 4096-byte aligned offset, hashed with
 * XXH3-64 as written, padding included, and per chunk (16 KiB or more; the table ends the metadata); the
 * metadata; then the real header; renamed over path
 * (rf_afile_commit, no fsync: see rf_cache_build). The input text files are hashed while they
 * are read.
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


static double now_sec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ---- writing ---------------------------------------------------------------------------------- */

/* The file is written through NWBUF aligned buffers by a writer thread, with O_DIRECT where the
 * file system allows it: the caller fills one buffer while the thread writes another, and no
 * page-cache memory is filled (first-touch page faults of fresh memory were the largest cost of
 * building a cache). Every buffer but the last is full, so every write is 4096-aligned; the
 * last is zero-padded and the file truncated back to its length. */
#define WBUF ((size_t)8 << 20)
#define NWBUF 3

typedef struct {
    rf_afile *af;          /* the temporary file, renamed over the cache by rf_afile_commit */
    int fd;                /* its descriptor */
    int direct;            /* O_DIRECT is on */
    const char *tmp;       /* its name (error messages) */
    uint64_t pos;          /* bytes put */
    XXH3_state_t *h;       /* hash of the data region [HDR, hash_end), updated by the writer */
    uint64_t hash_end;     /* where the metadata starts (UINT64_MAX before) */
    unsigned char *buf[NWBUF];
    int cur;               /* buffer being filled */
    size_t blen;           /* bytes in buf[cur] */
    uint64_t bstart;       /* file offset of buf[cur][0] */
    pthread_t th;
    int started;           /* the thread runs (else writes are synchronous) */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    size_t qlen[NWBUF];    /* > 0: queued, this many bytes */
    uint64_t qoff[NWBUF], qend[NWBUF]; /* file offset; hash_end when queued */
    int head;              /* next buffer for the thread */
    int stop;
    int err_no;            /* first write error */
    rf_chunker_ ck;        /* per-chunk hashes of the data region (fed by w_put once on) */
    int ck_on;
} wfile;

static int pwrite_all(wfile *w, const unsigned char *p, size_t n, uint64_t off)
{
    while (n) {
        ssize_t r = pwrite(w->fd, p, n > ((size_t)1 << 30) ? (size_t)1 << 30 : n, (off_t)off);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0 && errno == EINVAL && w->direct) { /* O_DIRECT refused after all: write through the cache */
            int fl = fcntl(w->fd, F_GETFL);
            if (fl == -1 || fcntl(w->fd, F_SETFL, fl & ~O_DIRECT) == -1) return errno;
            w->direct = 0;
            continue;
        }
        if (r < 0) return errno;
        if (r == 0) return EIO;
        p += r;
        n -= (size_t)r;
        off += (uint64_t)r;
    }
    return 0;
}

/* Hash buffer i's bytes of the data region (in file order: buffers are written in order), then
 * write it. */
static int w_write(wfile *w, int i, size_t n, uint64_t off, uint64_t hash_end)
{
    uint64_t a = off > HDR ? off : HDR, e = off + n < hash_end ? off + n : hash_end;
    if (e > a) XXH3_64bits_update(w->h, w->buf[i] + (a - off), (size_t)(e - a));
    return pwrite_all(w, w->buf[i], n, off);
}

static void *w_thread(void *arg)
{
    wfile *w = arg;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (!w->qlen[w->head] && !w->stop) pthread_cond_wait(&w->cv, &w->mu);
        int i = w->head;
        if (!w->qlen[i]) break; /* stopped, nothing queued */
        size_t n = w->qlen[i];
        uint64_t off = w->qoff[i], end = w->qend[i];
        int failed = w->err_no;
        pthread_mutex_unlock(&w->mu);
        int e = failed ? 0 : w_write(w, i, n, off, end);
        pthread_mutex_lock(&w->mu);
        if (e && !w->err_no) w->err_no = e;
        w->qlen[i] = 0;
        w->head = (i + 1) % NWBUF;
        pthread_cond_broadcast(&w->cv);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

static int w_error(wfile *w)
{
    if (!w->started) return w->err_no;
    pthread_mutex_lock(&w->mu);
    int e = w->err_no;
    pthread_mutex_unlock(&w->mu);
    return e;
}

/* Hand buf[cur] (n bytes, n a multiple of 4096 unless it is the last) to the writer. */
static void w_submit(wfile *w, size_t n)
{
    if (!w->started) {
        int e = w->err_no ? 0 : w_write(w, w->cur, n, w->bstart, w->hash_end);
        if (e) w->err_no = e;
    } else {
        pthread_mutex_lock(&w->mu);
        w->qoff[w->cur] = w->bstart;
        w->qend[w->cur] = w->hash_end;
        w->qlen[w->cur] = n;
        pthread_cond_broadcast(&w->cv);
        w->cur = (w->cur + 1) % NWBUF;
        while (w->qlen[w->cur]) pthread_cond_wait(&w->cv, &w->mu);
        pthread_mutex_unlock(&w->mu);
    }
    w->bstart += n;
    w->blen = 0;
}

static void w_put(wfile *w, const void *p, size_t n)
{
    const unsigned char *s = p;
    w->pos += n;
    if (w->ck_on) rf_chunker_feed_(&w->ck, p, n);
    while (n) {
        size_t k = WBUF - w->blen < n ? WBUF - w->blen : n;
        memcpy(w->buf[w->cur] + w->blen, s, k);
        w->blen += k;
        s += k;
        n -= k;
        if (w->blen == WBUF) w_submit(w, WBUF);
    }
}

static void w_pad(wfile *w)
{
    static const unsigned char zero[ALIGN];
    size_t r = (size_t)(w->pos % ALIGN);
    if (r) w_put(w, zero, ALIGN - r);
}

/* Stop the writer thread after it has written what is queued. */
static void w_stop(wfile *w)
{
    if (!w->started) return;
    rf_thread_stop_(w->th, &w->mu, &w->cv, &w->stop);
    w->started = 0;
}

/* Stop the writer thread; unless keep, close and remove the file (kept: w->af is committed by
 * the caller). */
static void w_close(wfile *w, int keep)
{
    w_stop(w);
    if (!keep) {
        rf_afile_abort(w->af);
        w->af = NULL;
        w->fd = -1;
    }
    for (int i = 0; i < NWBUF; i++) free(w->buf[i]);
    memset(w->buf, 0, sizeof w->buf);
    if (w->h) XXH3_freeState(w->h);
    w->h = NULL;
    rf_chunker_free_(&w->ck);
}

/* Create the temporary file for path (afile.h) and start the writer; the header page is put as
 * zeros. */
static unsigned chunk_shift(uint64_t input_bytes)
{
    unsigned sh = CHUNK_SHIFT_MIN;
    while (sh < CHUNK_SHIFT_MAX && (input_bytes >> sh) > ((uint64_t)1 << 16)) sh++;
    return sh;
}

static rf_status w_open(wfile *w, const char *path, unsigned shift, rf_error *err)
{
    memset(w, 0, sizeof *w);
    w->fd = -1;
    w->hash_end = UINT64_MAX;
    rf_status st = rf_afile_open(path, 0, &w->af, err);
    if (st) return st;
    w->fd = rf_afile_fd(w->af);
    w->tmp = rf_afile_tmp_path(w->af);
    int fl = fcntl(w->fd, F_GETFL);
    w->direct = fl != -1 && fcntl(w->fd, F_SETFL, fl | O_DIRECT) == 0;
    for (int i = 0; i < NWBUF; i++) w->buf[i] = rf_big_realloc_(NULL, WBUF); /* 2 MiB-aligned, huge pages */
    w->h = XXH3_createState();
    if (!w->buf[0] || !w->buf[1] || !w->buf[2] || !w->h || rf_chunker_init_(&w->ck, shift)) {
        w_close(w, 0);
        return rf_errorf(err, RF_ENOMEM, "out of memory");
    }
    XXH3_64bits_reset(w->h);
    w->started = rf_thread_start_(&w->th, &w->mu, &w->cv, w_thread, w);
    static const unsigned char zero[HDR];
    w_put(w, zero, HDR);
    w->ck_on = 1; /* the data region starts here */
    return RF_OK;
}

/* Write the last (padded) buffer and wait for every write; the file gets its exact length. */
static int w_finish(wfile *w)
{
    if (w->blen) {
        size_t n = w->blen, r = n % ALIGN; /* padded for O_DIRECT (the writer thread owns w->direct) */
        if (r) {
            memset(w->buf[w->cur] + n, 0, ALIGN - r);
            n += ALIGN - r;
        }
        w_submit(w, n);
    }
    w_stop(w);
    if (!w->err_no && w->bstart != w->pos && ftruncate(w->fd, (off_t)w->pos) != 0) w->err_no = errno;
    return w->err_no;
}

/* Loader hook: dense rows straight into the file. */
static int dense_sink(void *ud, const float *x, size_t n, int D, rf_error *err)
{
    wfile *w = ud;
    w_put(w, x, n * (size_t)D * sizeof *x);
    int e = w_error(w);
    if (e) rf_error_at(err, RF_EIO, w->tmp, 0, 0, "write error: %s", strerror(e));
    return e != 0;
}

/* Write an array at the next aligned offset; record (offset, bytes) in meta. */
static void w_array(wfile *w, bbuf *meta, const void *p, size_t bytes)
{
    if (!p) {
        bb_u64(meta, 0);
        bb_u64(meta, 0);
        return;
    }
    w_pad(w);
    bb_u64(meta, w->pos);
    bb_u64(meta, bytes);
    w_put(w, p, bytes);
}

/* dense: the extent of the part's streamed dense rows (when ds->dense is NULL). */
static void write_part(wfile *w, bbuf *meta, const rf_dataset *ds, const uint64_t dense[2])
{
    if (!ds) {
        bb_u8(meta, 0);
        return;
    }
    bb_u8(meta, 1);
    size_t n = ds->n;
    bb_u64(meta, n);
    bb_u32(meta, (uint32_t)ds->F);
    bb_u32(meta, (uint32_t)ds->D);
    bb_u32(meta, (uint32_t)ds->K);
    w_array(w, meta, ds->cat, n * (size_t)ds->F * sizeof *ds->cat);
    if (ds->D && !ds->dense) {
        bb_u64(meta, dense[0]);
        bb_u64(meta, dense[1]);
    } else {
        w_array(w, meta, ds->D ? ds->dense : NULL, n * (size_t)ds->D * sizeof *ds->dense);
    }
    w_array(w, meta, ds->labels, n * (size_t)ds->K * sizeof *ds->labels);
    w_array(w, meta, ds->weight, n * sizeof *ds->weight);
    w_array(w, meta, ds->group, n * sizeof *ds->group);
    for (int f = 0; f < ds->F; f++) {
        const rf_field *fd = &ds->fields[f];
        bb_u8(meta, (unsigned)fd->multi);
        bb_u8(meta, (unsigned)fd->pooling);
        bb_u8(meta, (unsigned char)fd->sep);
        bb_u8(meta, 0);
        bb_u32(meta, fd->vocab);
        bb_name(meta, fd->name);
        if (fd->multi) {
            uint64_t base = ds->mv_off[f][0], total = ds->mv_off[f][n] - base;
            /* offsets relative to this part (they start at 0 in a loaded dataset) */
            w_array(w, meta, ds->mv_off[f], (n + 1) * sizeof *ds->mv_off[f]);
            w_array(w, meta, ds->mv_ids[f] + base, total * sizeof *ds->mv_ids[f]);
        }
    }
    for (int d = 0; d < ds->D; d++) bb_name(meta, ds->dense_names[d]);
    for (int k = 0; k < ds->K; k++) bb_name(meta, ds->label_names[k]);
}

static void write_encoders(bbuf *meta, const rf_encoders *enc, rf_error *err, rf_status *st)
{
    unsigned char *prep = NULL;
    size_t plen = 0;
    if (!enc) {
        bb_u8(meta, 0);
        return;
    }
    bb_u8(meta, 1);
    if ((*st = rf_encoders_prep_write(enc, &prep, &plen, err))) return;
    bb_u32(meta, (uint32_t)enc->F);
    bb_u32(meta, (uint32_t)(enc->dense ? enc->D : 0));
    bb_u64(meta, plen);
    bb_put(meta, prep, plen);
    free(prep);
    for (int f = 0; f < enc->F; f++) {
        const rf_vocab *v = enc->vocab ? enc->vocab[f] : NULL;
        bb_u32(meta, v ? 1 : 0);
        if (!v) continue;
        uint32_t nk = rf_vocab_size(v) - 1;
        bb_u32(meta, nk);
        for (uint32_t i = 1; i <= nk; i++) {
            const char *k = rf_vocab_key(v, i);
            bb_bytes(meta, k, (uint32_t)strlen(k));
        }
    }
}

/* The rest of the file after the loads: the arrays not streamed yet, the metadata, the header.
 * The caller renames. */
static rf_status write_rest(wfile *w, const rf_dataset *parts[3], const uint64_t dense[3][2], const rf_encoders *enc,
                            const fprint *in, int nin, uint64_t chash, const size_t info3[3], uint64_t *file_bytes,
                            rf_error *err)
{
    bbuf meta = {0};
    rf_status st = RF_OK;
    bb_u32(&meta, 3);
    for (int p = 0; p < 3; p++) write_part(w, &meta, parts[p], dense[p]);
    write_encoders(&meta, enc, err, &st);
    if (st) goto done;
    bb_u32(&meta, (uint32_t)nin);
    for (int i = 0; i < nin; i++) {
        bb_bytes(&meta, in[i].path, (uint32_t)strlen(in[i].path));
        bb_u64(&meta, in[i].size);
        bb_u64(&meta, (uint64_t)in[i].mtime_s);
        bb_u64(&meta, (uint64_t)in[i].mtime_ns);
        bb_u64(&meta, in[i].hash);
    }
    for (int i = 0; i < 3; i++) bb_u64(&meta, info3[i]);
    w_pad(w); /* the data region ends here: its chunk table ends the metadata */
    w->ck_on = 0;
    rf_chunker_end_(&w->ck);
    bb_u64(&meta, w->ck.n);
    for (size_t i = 0; i < w->ck.n; i++) bb_u64(&meta, w->ck.h[i]);
    if (meta.oom || w->ck.oom) {
        st = rf_errorf(err, RF_ENOMEM, "out of memory");
        goto done;
    }
    uint64_t meta_off = w->pos;
    w->hash_end = meta_off;
    w_put(w, meta.p, meta.len);
    int e = w_finish(w);
    if (e) {
        st = rf_error_at(err, RF_EIO, w->tmp, 0, 0, "write error: %s", strerror(e));
        goto done;
    }
    uint64_t data_hash = XXH3_64bits_digest(w->h); /* the writer has stopped */
    unsigned char *hdr = w->buf[0]; /* aligned, free now */
    memset(hdr, 0, HDR);
    memcpy(hdr, RF_CACHE_MAGIC, 8);
    wr32(hdr + 8, RF_CACHE_VERSION);
    wr32(hdr + 12, RF_ENDIAN_MARK);
    wr64(hdr + 16, w->pos);
    wr64(hdr + 24, meta_off);
    wr64(hdr + 32, meta.len);
    wr64(hdr + 40, XXH64(meta.p, meta.len, 0));
    wr64(hdr + 48, data_hash);
    wr64(hdr + 56, chash);
    wr32(hdr + 64, (uint32_t)__builtin_ctzll(w->ck.size));
    wr64(hdr + HDR - 8, XXH64(hdr, HDR - 8, 0));
    if ((e = pwrite_all(w, hdr, HDR, 0))) {
        st = rf_error_at(err, RF_EIO, w->tmp, 0, 0, "write error: %s", strerror(e));
        goto done;
    }
    *file_bytes = w->pos;
done:
    free(meta.p);
    return st;
}

rf_status rf_cache_build(const rf_data_cfg *data, const rf_cache_opts *o, const char *path, rf_log_fn log,
                         void *ud, rf_cache_info *info, rf_error *err)
{
    double t0 = now_sec();
    rf_cache_info inf;
    memset(&inf, 0, sizeof inf);
    if (!strcmp(data->source, "synth"))
        return rf_errorf(err, RF_EUSAGE, "data.cache: the simulator (data.source: synth) is generated in memory, "
                                         "there is nothing to cache; set data.source to a file");
    if (!rf_host_le()) return rf_errorf(err, RF_EUSAGE, "caches are little-endian; this host is not");
    const char *paths[MAX_INPUTS];
    fprint in[MAX_INPUTS];
    int nin = rf_cache_list_inputs_(data, paths);
    /* input index of each part's file (the text files are hashed while they are loaded) */
    int part_in[3] = {0, data->valid[0] ? 1 + data->schema.njoin : -1, -1};
    if (data->test[0]) part_in[2] = 1 + data->schema.njoin + (data->valid[0] ? 1 : 0);
    rf_status st;
    for (int i = 0; i < nin; i++) {
        if ((st = rf_cache_fingerprint_(paths[i], &in[i], err))) return st;
        inf.input_bytes += in[i].size;
    }
    /* the loaded arrays go to unlinked spill files next to the cache: memory stays bounded */
    char spill[RF_PATH_MAX];
    {
        char *dcopy = strdup(path);
        if (!dcopy) return rf_errorf(err, RF_ENOMEM, "out of memory");
        snprintf(spill, sizeof spill, "%s", dirname(dcopy));
        free(dcopy);
    }
    /* spill when asked, or when the inputs are large for this machine's memory */
    long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);
    double ram = pages > 0 && psize > 0 ? (double)pages * (double)psize : 0;
    int do_spill = data->schema.cache_spill == 1 ||
                   (data->schema.cache_spill == 0 && ram > 0 && (double)inf.input_bytes > ram / 4);
    wfile w;
    if ((st = w_open(&w, path, chunk_shift(inf.input_bytes), err))) return st;
    rf_dataset *parts[3] = {NULL, NULL, NULL};
    uint64_t dense[3][2] = {{0, 0}, {0, 0}, {0, 0}};
    rf_encoders *enc = NULL;
    for (int p = 0; p < 3 && !st; p++) {
        const char *f = p == 0 ? data->source : p == 1 ? data->valid : data->test;
        if (!f[0]) continue;
        rf_load_opts lo;
        memset(&lo, 0, sizeof lo);
        lo.skip_bad_rows = o->skip_bad_rows;
        lo.threads = o->threads;
        lo.spill_dir = do_spill ? spill : NULL;
        if (p == 0) {
            lo.valid_frac = data->valid[0] ? 0 : data->valid_frac;
            lo.test_frac = data->test[0] ? 0 : data->test_frac;
        }
        rf_load_hooks_ hk;
        memset(&hk, 0, sizeof hk);
        hk.dense_sink = dense_sink;
        hk.ud = &w;
        hk.want_hash = 1;
        w_pad(&w);
        dense[p][0] = w.pos;
        st = rf_load_csv_hooked_(f, &data->schema, &enc, &lo, &hk, &parts[p], err);
        dense[p][1] = w.pos - dense[p][0];
        inf.bad_rows += lo.bad_rows;
        if (p == 0) {
            inf.filtered_rows = lo.filtered_rows;
            inf.fit_rows = lo.fit_rows;
        }
        if (!st && part_in[p] >= 0 && part_in[p] < nin) {
            if (hk.hashed) in[part_in[p]].hash = hk.input_hash;
            else st = rf_cache_file_hash_(f, &in[part_in[p]].hash, err);
        }
    }
    for (int i = 0; i < nin && !st; i++) /* the side tables */
        if (i != part_in[0] && i != part_in[1] && i != part_in[2]) st = rf_cache_file_hash_(paths[i], &in[i].hash, err);
    for (int p = 0; p < 3 && !st; p++) /* streamed dense rows: exactly the part's rows */
        if (parts[p] && parts[p]->D && !parts[p]->dense &&
            dense[p][1] != (uint64_t)parts[p]->n * (uint64_t)parts[p]->D * sizeof(float))
            st = rf_errorf(err, RF_EINTERNAL, "cache: %llu bytes of dense rows streamed for %zu rows of %d values",
                           (unsigned long long)dense[p][1], parts[p]->n, parts[p]->D);
    if (!st) {
        for (int p = 0; p < 3; p++) inf.rows[p] = parts[p] ? parts[p]->n : 0;
        size_t info3[3] = {inf.bad_rows, inf.filtered_rows, inf.fit_rows};
        const rf_dataset *cp[3] = {parts[0], parts[1], parts[2]};
        st = write_rest(&w, cp, (const uint64_t(*)[2])dense, enc, in, nin, o->config_hash, info3, &inf.file_bytes,
                        err);
    }
    for (int p = 0; p < 3; p++) rf_dataset_free(parts[p]);
    rf_encoders_free(enc);
    w_close(&w, !st);
    /* Renamed over path without fsync: a cache is derived data, and every open verifies the whole
     * file (header, metadata and data checksums), so a file torn by a crash is found and rebuilt,
     * never used; flushing the host's disk cache cost 0.14-0.18 s of a 1.4 s build on the
     * benchmark VM. (Model files, which cannot be rebuilt, are fsync'ed.) */
    if (!st) st = rf_afile_commit(w.af, 0, err);
    inf.seconds = now_sec() - t0;
    if (!st)
        logf_(log, ud, "cache %s: %zu rows (+%zu valid, %zu test file rows), %.1f MB from %.1f MB of input in %.2f s",
              path, inf.rows[0], inf.rows[1], inf.rows[2], inf.file_bytes / 1e6, inf.input_bytes / 1e6,
              inf.seconds);
    if (info) *info = inf;
    return st;
}

