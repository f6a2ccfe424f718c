/* textin.c - the loader's input text: plain, gzip (zlib) or zstd (libzstd) files, detected by
 * their magic bytes; a compressed input is inflated ahead by a thread of its own; a regular
 * plain file is read in rounds of concurrent preads; the input is hashed (cache staleness) by
 * a thread of its own behind the parse. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/bigmem.h"
#include "core/pool.h"
#include "data/textin.h"


void rf_in_close_(input *in)
{
    if (in->gz) {
        inflateEnd(in->gz);
        free(in->gz);
    }
    if (in->fd >= 0) close(in->fd);
    if (in->zs) ZSTD_freeDStream(in->zs);
    free(in->zin);
    memset(in, 0, sizeof *in);
    in->fd = -1;
}

#define ZIN_CAP ((size_t)1 << 17)

rf_status rf_in_open_(input *in, const char *path, rf_error *err)
{
    memset(in, 0, sizeof *in);
    in->fd = open(path, O_RDONLY);
    if (in->fd < 0) return rf_error_at(err, RF_EIO, path, 0, 0, "cannot open: %s", strerror(errno));
    struct stat st;
    if (fstat(in->fd, &st) == 0 && S_ISDIR(st.st_mode)) {
        close(in->fd);
        in->fd = -1;
        return rf_error_at(err, RF_EIO, path, 0, 0, "cannot open: %s", strerror(EISDIR));
    }
    unsigned char m[4] = {0};
    ssize_t got = pread(in->fd, m, 4, 0);
    if (got < 0) {
        int e = errno;
        close(in->fd);
        in->fd = -1;
        return rf_error_at(err, RF_EIO, path, 0, 0, "cannot read: %s", strerror(e));
    }
    if (got >= 2 && m[0] == 0x1f && m[1] == 0x8b) {
        in->kind = IN_GZ;
        in->gz = calloc(1, sizeof *in->gz);
        in->zin = malloc(ZIN_CAP);
        if (!in->gz || !in->zin || inflateInit2(in->gz, 16 + MAX_WBITS) != Z_OK) { /* gzip only */
            free(in->gz);
            in->gz = NULL;
            rf_in_close_(in);
            return rf_errorf(err, RF_ENOMEM, "out of memory opening %s", path);
        }
    } else if (got == 4 && m[0] == 0x28 && m[1] == 0xB5 && m[2] == 0x2F && m[3] == 0xFD) {
        in->kind = IN_ZSTD;
        in->zs = ZSTD_createDStream();
        in->zin = malloc(ZIN_CAP);
        if (!in->zs || !in->zin) {
            rf_in_close_(in);
            return rf_errorf(err, RF_ENOMEM, "out of memory opening %s", path);
        }
        ZSTD_initDStream(in->zs);
        in->zib.src = in->zin;
    } else {
        in->kind = IN_PLAIN;
        if (S_ISREG(st.st_mode)) in->size = st.st_size;
    }
    return RF_OK;
}

/* Move the unread compressed bytes to the front of in->zin and read more after them (sets
 * zeof at the end of the file). */
static rf_status z_refill(input *in, const unsigned char **next, size_t *avail, const char *path, rf_error *err)
{
    if (*avail && *next != in->zin) memmove(in->zin, *next, *avail);
    *next = in->zin;
    ssize_t r;
    do r = read(in->fd, in->zin + *avail, ZIN_CAP - *avail);
    while (r < 0 && errno == EINTR);
    if (r < 0) return rf_error_at(err, RF_EIO, path, 0, 0, "read error: %s", strerror(errno));
    if (r == 0) in->zeof = 1;
    *avail += (size_t)r;
    in->zread += (uint64_t)r;
    return RF_OK;
}

/* gzip: inflate up to n bytes; *got = 0 at the end. Concatenated members are one stream (RFC
 * 1952, what gzip -d and zcat do); after the last member the file must end: any other byte is
 * an error naming its offset (zlib's gzread ignores such trailing garbage), as is a file that
 * ends inside a member. */
static rf_status gz_read(input *in, char *dst, size_t n, size_t *got, const char *path, rf_error *err)
{
    z_stream *z = in->gz;
    if (!n) return RF_OK;
    z->next_out = (unsigned char *)dst;
    z->avail_out = (uInt)n;
    while (z->avail_out == (uInt)n) {
        if (in->gzend ? z->avail_in < 2 && !in->zeof : z->avail_in == 0 && !in->zeof) {
            const unsigned char *next = z->next_in;
            size_t avail = z->avail_in;
            rf_status st = z_refill(in, &next, &avail, path, err);
            if (st) return st;
            z->next_in = (unsigned char *)next;
            z->avail_in = (uInt)avail;
            continue;
        }
        if (in->gzend) {
            if (!z->avail_in) break; /* the end of the file after a whole member */
            if (z->next_in[0] != 0x1f || z->avail_in < 2 || z->next_in[1] != 0x8b)
                return rf_error_at(err, RF_EDATA, path, 0, 0,
                                   "garbage after the end of the gzip stream at byte %llu (of %llu): "
                                   "not another gzip member",
                                   (unsigned long long)(in->zread - z->avail_in),
                                   (unsigned long long)in->zread);
            inflateReset(z); /* the next member */
            in->gzend = 0;
        }
        if (!z->avail_in) /* zeof inside a member */
            return rf_error_at(err, RF_EDATA, path, 0, 0,
                               "corrupt compressed data: the file ends inside a gzip member (truncated?)");
        int rc = inflate(z, Z_NO_FLUSH);
        if (rc == Z_STREAM_END) in->gzend = 1;
        else if (rc == Z_MEM_ERROR) return rf_errorf(err, RF_ENOMEM, "out of memory inflating %s", path);
        else if (rc != Z_OK && rc != Z_BUF_ERROR)
            return rf_error_at(err, RF_EDATA, path, 0, 0, "corrupt compressed data at byte %llu: %s",
                               (unsigned long long)(in->zread - z->avail_in), z->msg ? z->msg : "zlib error");
    }
    *got = n - z->avail_out;
    return RF_OK;
}

/* Read up to n bytes; *got = 0 at the end. */
static rf_status in_read(input *in, char *dst, size_t n, size_t *got, const char *path, rf_error *err)
{
    *got = 0;
    if (n > ((size_t)1 << 30)) n = (size_t)1 << 30;
    if (in->kind == IN_PLAIN) {
        for (;;) {
            ssize_t r = in->size > 0 ? pread(in->fd, dst, n, (off_t)in->off) : read(in->fd, dst, n);
            if (r > 0) in->off += (uint64_t)r;
            if (r < 0 && errno == EINTR) continue;
            if (r < 0) return rf_error_at(err, RF_EIO, path, 0, 0, "read error: %s", strerror(errno));
            *got = (size_t)r;
            return RF_OK;
        }
    }
    if (in->kind == IN_GZ) return gz_read(in, dst, n, got, path, err);
    /* zstd */
    ZSTD_outBuffer ob = {dst, n, 0};
    while (ob.pos == 0) {
        if (in->zib.pos == in->zib.size) {
            if (in->zeof) {
                if (in->zlast != 0)
                    return rf_error_at(err, RF_EDATA, path, 0, 0,
                                       "corrupt compressed data: truncated zstd frame");
                return RF_OK;
            }
            ssize_t r;
            do r = read(in->fd, in->zin, ZIN_CAP);
            while (r < 0 && errno == EINTR);
            if (r < 0) return rf_error_at(err, RF_EIO, path, 0, 0, "read error: %s", strerror(errno));
            if (r == 0) {
                in->zeof = 1;
                continue;
            }
            in->zib.size = (size_t)r;
            in->zib.pos = 0;
        }
        size_t rc = ZSTD_decompressStream(in->zs, &ob, &in->zib);
        if (ZSTD_isError(rc))
            return rf_error_at(err, RF_EDATA, path, 0, 0, "corrupt compressed data: %s",
                               ZSTD_getErrorName(rc));
        in->zlast = rc;
    }
    *got = ob.pos;
    return RF_OK;
}


static void *pf_thread(void *arg)
{
    prefetch *pf = arg;
    pthread_mutex_lock(&pf->mu);
    while (!pf->stop) {
        int i = pf->tail;
        if (pf->full[i]) {
            pthread_cond_wait(&pf->cv, &pf->mu);
            continue;
        }
        pthread_mutex_unlock(&pf->mu);
        size_t len = 0, got = 1;
        rf_status st = RF_OK;
        if (!pf->chunk[i] && !(pf->chunk[i] = malloc(PF_CHUNK))) /* on first use: a small file needs one */
            st = rf_errorf(&pf->err, RF_ENOMEM, "out of memory inflating %s", pf->path);
        while (len < PF_CHUNK && got && !st)
            if (!(st = in_read(pf->in, pf->chunk[i] + len, PF_CHUNK - len, &got, pf->path, &pf->err))) len += got;
        pthread_mutex_lock(&pf->mu);
        pf->clen[i] = len;
        pf->full[i] = len > 0;
        pf->tail = len > 0 ? (i + 1) % PF_N : i;
        if (st || len < PF_CHUNK) { /* error or the end */
            pf->st = st;
            pf->done = 1;
        }
        pthread_cond_broadcast(&pf->cv);
        if (pf->done) break;
    }
    pthread_mutex_unlock(&pf->mu);
    return NULL;
}

/* Start inflating in (compressed); NULL when the thread cannot start (then read directly). */
prefetch *rf_pf_start_(input *in, const char *path)
{
    prefetch *pf = calloc(1, sizeof *pf);
    if (!pf) return NULL;
    pf->in = in;
    pf->path = path;
    if (rf_thread_start_(&pf->th, &pf->mu, &pf->cv, pf_thread, pf)) return pf;
    free(pf);
    return NULL;
}

void rf_pf_free_(prefetch *pf)
{
    if (!pf) return;
    rf_thread_stop_(pf->th, &pf->mu, &pf->cv, &pf->stop);
    for (int i = 0; i < PF_N; i++) free(pf->chunk[i]);
    free(pf);
}

/* Like in_read: up to n bytes, *got = 0 at the end. */
static rf_status pf_read(prefetch *pf, char *dst, size_t n, size_t *got, rf_error *err)
{
    *got = 0;
    pthread_mutex_lock(&pf->mu);
    while (!pf->full[pf->head] && !pf->done) pthread_cond_wait(&pf->cv, &pf->mu);
    int i = pf->head, have = pf->full[i];
    rf_status st = pf->st;
    pthread_mutex_unlock(&pf->mu);
    if (!have) {
        if (st) *err = pf->err;
        return st;
    }
    size_t k = pf->clen[i] - pf->cpos < n ? pf->clen[i] - pf->cpos : n;
    memcpy(dst, pf->chunk[i] + pf->cpos, k);
    pf->cpos += k;
    if (pf->cpos == pf->clen[i]) {
        pthread_mutex_lock(&pf->mu);
        pf->full[i] = 0;
        pf->head = (i + 1) % PF_N;
        pf->cpos = 0;
        pthread_cond_broadcast(&pf->cv);
        pthread_mutex_unlock(&pf->mu);
    }
    *got = k;
    return RF_OK;
}


static void *hs_thread(void *arg)
{
    hasher *h = arg;
    pthread_mutex_lock(&h->mu);
    for (;;) {
        while (!h->n && !h->stop) pthread_cond_wait(&h->cv, &h->mu);
        if (!h->n) break;
        const char *p = h->p;
        size_t n = h->n;
        pthread_mutex_unlock(&h->mu);
        XXH3_64bits_update(h->st, p, n);
        pthread_mutex_lock(&h->mu);
        h->n = 0;
        pthread_cond_broadcast(&h->cv);
    }
    pthread_mutex_unlock(&h->mu);
    return NULL;
}

hasher *rf_hs_create_(void)
{
    hasher *h = calloc(1, sizeof *h);
    if (!h || !(h->st = XXH3_createState())) {
        free(h);
        return NULL;
    }
    XXH3_64bits_reset(h->st);
    h->started = rf_thread_start_(&h->th, &h->mu, &h->cv, hs_thread, h);
    return h;
}

static void hs_wait(hasher *h)
{
    if (!h->started) return;
    pthread_mutex_lock(&h->mu);
    while (h->n) pthread_cond_wait(&h->cv, &h->mu);
    pthread_mutex_unlock(&h->mu);
}

/* Hash [p, p + n) next (p must stay unchanged until the next hs_wait). */
static void hs_submit(hasher *h, const char *p, size_t n)
{
    if (!n) return;
    if (!h->started) {
        XXH3_64bits_update(h->st, p, n);
        return;
    }
    pthread_mutex_lock(&h->mu);
    while (h->n) pthread_cond_wait(&h->cv, &h->mu);
    h->p = p;
    h->n = n;
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
}

uint64_t rf_hs_digest_(hasher *h)
{
    hs_wait(h);
    return XXH3_64bits_digest(h->st);
}

void rf_hs_free_(hasher *h)
{
    if (!h) return;
    if (h->started) rf_thread_stop_(h->th, &h->mu, &h->cv, &h->stop);
    XXH3_freeState(h->st);
    free(h);
}

/* Fill buf[len..cap) of a regular plain file with b->threads concurrent preads of one slice
 * each (the copy out of the page cache is a large part of the serial time of a round). A
 * short slice means the end of the file. */
typedef struct {
    int fd;
    char *dst;
    uint64_t off;
    size_t want, slice, got[64];
    int errs[64];
} read_ctx;

static void read_task(void *ctx, int i)
{
    read_ctx *c = ctx;
    size_t lo = (size_t)i * c->slice, hi = lo + c->slice < c->want ? lo + c->slice : c->want, g = 0;
    c->errs[i] = 0;
    while (lo + g < hi) {
        ssize_t r = pread(c->fd, c->dst + lo + g, hi - lo - g, (off_t)(c->off + lo + g));
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) c->errs[i] = errno;
        if (r <= 0) break;
        g += (size_t)r;
    }
    c->got[i] = lo < hi ? g : 0;
}

static rf_status tb_read_par(textbuf *b, const char *path, rf_error *err)
{
    size_t want = b->cap - b->len;
    int T = b->threads > 64 ? 64 : b->threads;
    read_ctx rc;
    rc.fd = b->in.fd;
    rc.dst = b->buf + b->len;
    rc.off = b->in.off;
    rc.want = want;
    rc.slice = (want + (size_t)T - 1) / (size_t)T;
    rf_pool_run(b->pool, T, read_task, &rc);
    size_t slice = rc.slice, *got = rc.got;
    int *errs = rc.errs;
    size_t total = 0;
    for (int i = 0; i < T; i++) {
        size_t lo = (size_t)i * slice, hi = lo + slice < want ? lo + slice : want;
        if (errs[i]) return rf_error_at(err, RF_EIO, path, 0, 0, "read error: %s", strerror(errs[i]));
        if (lo >= hi) break;
        total += got[i];
        if (got[i] < hi - lo) { /* the end of the file */
            b->eof = 1;
            break;
        }
    }
    if (!total) b->eof = 1;
    b->len += total;
    b->in.off += total;
    return RF_OK;
}

/* Append text until the buffer is full (grows it when the unparsed part fills it) or EOF. */
rf_status rf_tb_fill_(textbuf *b, const char *path, rf_error *err)
{
    if (b->hs) hs_wait(b->hs); /* the buffer is about to change */
    if (b->pos) {
        memmove(b->buf, b->buf + b->pos, b->len - b->pos);
        b->len -= b->pos;
        b->pos = 0;
    }
    if (b->len == b->cap) {
        size_t nc = b->cap * 2;
        if (nc > ROW_MAX)
            return rf_error_at(err, RF_EDATA, path, b->line, 1, "row longer than %zu bytes (unterminated quote?)",
                               ROW_MAX);
        char *nb = rf_big_realloc_(b->buf, nc + BUF_PAD);
        if (!nb) return rf_errorf(err, RF_ENOMEM, "out of memory reading %s", path);
        b->buf = nb;
        b->cap = nc;
    }
    size_t len0 = b->len;
    if (!b->eof && b->len < b->cap && b->threads > 1 && b->in.kind == IN_PLAIN && b->in.size > 0 &&
        b->cap - b->len >= ((size_t)1 << 18)) {
        rf_status st = tb_read_par(b, path, err);
        if (st) return st;
    }
    while (!b->eof && b->len < b->cap) {
        size_t got;
        rf_status st = b->pf ? pf_read(b->pf, b->buf + b->len, b->cap - b->len, &got, err)
                             : in_read(&b->in, b->buf + b->len, b->cap - b->len, &got, path, err);
        if (st) return st;
        if (!got) b->eof = 1;
        b->len += got;
    }
    /* A NUL byte is never text: refused here, once per round, so no key can hold one (keys are
     * C strings in the model file) and a binary or UTF-16 file is named as such. */
    const char *nul = memchr(b->buf + len0, 0, b->len - len0);
    if (nul) {
        long line = b->line, col = 1;
        for (const char *q = b->buf; q < nul; q++, col++)
            if (*q == '\n') line++, col = 0;
        return rf_error_at(err, RF_EDATA, path, line, col, "NUL byte in the input (a binary or UTF-16 file?)");
    }
    if (b->hs) hs_submit(b->hs, b->buf + len0, b->len - len0);
    b->buf[b->len] = '\n';
    memset(b->buf + b->len + 1, 0, BUF_PAD - 1); /* defined bytes for the 64-byte loads */
    return RF_OK;
}
