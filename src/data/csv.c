/* csv.c - the text loader (rf_load_csv): delimited text into an rf_dataset with fitted or
 * given encoders; label expressions; CSV writing.
 *
 * Input: plain, gzip (zlib) or zstd (libzstd) files, detected by their magic bytes. The text is
 * read in rounds of `threads x block_bytes` bytes into one buffer. Each round is cut into one
 * piece per thread at a guessed row start (the first '\n' after the target offset outside
 * double quotes, by quote parity); the pieces are parsed in parallel (pool.c), then checked
 * in order: piece i is kept only if it starts exactly where piece i-1 ended, otherwise it is
 * parsed again from there (so a wrong guess - a literal '"' in an unquoted field - costs time,
 * never correctness). The unparsed tail (an incomplete last row) is carried into the next round.
 *
 * Rows: tokenized in place (RFC 4180 quotes with "" escapes unless quoting is off, LF or CRLF
 * line ends, a delimiter of 1..7 bytes) into field spans; joined side tables append their
 * columns to every row (looked up by the row's join-key text); only the columns the schema
 * names are converted. Nothing is allocated per field: numbers are parsed straight from the
 * buffer; quoted fields with "" escapes and ISO-8859-1 text are converted in a scratch buffer.
 *
 * Encoding. With given encoders (*enc != NULL) values are encoded while parsing: vocabulary
 * lookup (unknown -> the field's OOV id), hashing, bucket boundaries, dense fill + normaliser.
 * When fitting (*enc == NULL) categorical values get provisional ids (first-seen order;
 * each thread looks keys up in the global vocabulary, read-only during the parse, and fits the
 * new ones into a local vocabulary, merged in piece order, so the result does not depend on
 * the thread count), bucket fields keep their raw float bits and dense values stay raw (NaN =
 * missing); after the last row, the encoders are fitted on the training rows
 * [0, rf_split_points(...)) only: a key is kept if it occurs at least min_count times there (the
 * field's own :min:N, else data.min_count)
 * (keys seen only in held-out rows are unknown, as they would be to a deployed model),
 * quantile boundaries and dense statistics come from those rows, and every row is then
 * rewritten with the final ids and values.
 *
 * Numbers: numparse.h - exact, results equal (float)strtod(s). The dense fields of a row are
 * parsed as a batch (dense_batch: plain decimals 16 or 32 bytes at a time with SIMD, then one
 * vector division per 8 fields); the rest, and labels, weights and filters, field by field:
 * short decimals inline (Clinger's fast path, else Eisel-Lemire with a table of powers of
 * five), long mantissas exactly, anything unusual or ambiguous through strtod on a
 * NUL-terminated copy ("C" locale decimal point). Whitespace around numbers is not accepted.
 *
 * Speed: rows without quotes are split with 64-byte bitmaps of their delimiters and line ends
 * (AVX2 when the CPU has it, else SSE2; tokenize_row), other rows field by field (16-byte SSE2
 * scans between quotes); integer categorical values use the vocabularies' direct tables (no
 * hashing), other values are hashed first and their hash-table slots prefetched so the
 * lookups' cache misses overlap; the input is hashed (cache staleness) by a thread of its own;
 * the output arrays are pre-sized from the file size (plain files) and, like the other big
 * buffers, on transparent huge pages (bigmem.h).
 *
 * Conventions: completely empty lines are skipped (like pandas); a UTF-8 BOM at the start is
 * ignored; a '"' inside an unquoted field is literal; a lone CR inside a field is data.
 * A label spec that is literally the name of a column is that column (so "a*b" written by
 * rf_dataset_write_csv reads back directly). An empty multi-valued field is an empty bag (no
 * ids); empty pieces ("x||y") are skipped; a multi-valued field's separator defaults to '|'.
 * The group column's text is hashed with XXH3_64bits; the weight must be finite and >= 0.
 * A joined row that is missing (no side-table row has the key) gives empty values: id 0 for
 * categorical fields, "missing" for numeric ones. Side tables keep the first row of a key.
 *
 * Errors: data errors are RF_EDATA at file:line:col (1-based physical line, 1-based byte column
 * where the offending field starts; a wrong field count points at the row's first column;
 * values taken from a side table point at the row's join key). With opts->skip_bad_rows, rows
 * with a wrong field count, a bad number/weight/label or characters after a closing quote are
 * skipped and counted (they never reach the vocabularies); an unterminated quote, I/O errors,
 * a bad header and "no data rows" still fail.
 */
#define _GNU_SOURCE /* mremap */
#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <omp.h>
#include <xxhash.h>
#include <zlib.h>
#include <zstd.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "core/bigmem.h"
#include "data/dataint.h"
#include "data/numparse.h"
#include "core/pool.h"
#include "core/sbuf.h"

/* ---- number parsing ------------------------------------------------------------------- */

/* Side-table and scratch texts keep this many readable bytes after their ends. */
#define TEXT_PAD 16

/* double -> float; -1 if the value rounds outside the float range. */
static int to_float(double d, float *out)
{
    /* halfway between FLT_MAX and 2^128 rounds (to even) to infinity */
    static const double lim = (double)FLT_MAX + 0x1p103;
    if (!(fabs(d) < lim)) return -1;
    *out = (float)d;
    return 0;
}

/* The dense transform, identical at fitting and at encoding time. */
static inline float dense_apply(float raw, const rf_dense_enc *e)
{
    if (e->norm == RF_NORM_NONE) return raw;
    return (float)(((double)raw - (double)e->shift) * (double)e->scale);
}

/* ---- input: plain, gzip, zstd ---------------------------------------------------------- */

enum { IN_PLAIN, IN_GZ, IN_ZSTD };

typedef struct {
    int fd, kind;
    gzFile gz;
    ZSTD_DStream *zs;
    unsigned char *zin;
    ZSTD_inBuffer zib;
    size_t zlast; /* last return of ZSTD_decompressStream (0 = at a frame end) */
    int zeof;
    off_t size;   /* file size (plain files), 0 if unknown */
    uint64_t off; /* bytes read so far (regular plain files are read with pread) */
} input;

static void in_close(input *in)
{
    if (in->gz) gzclose(in->gz);
    else if (in->fd >= 0) close(in->fd);
    if (in->zs) ZSTD_freeDStream(in->zs);
    free(in->zin);
    memset(in, 0, sizeof *in);
    in->fd = -1;
}

#define ZIN_CAP ((size_t)1 << 17)

static rf_status in_open(input *in, const char *path, rf_error *err)
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
        in->gz = gzdopen(in->fd, "rb");
        if (!in->gz) {
            close(in->fd);
            in->fd = -1;
            return rf_errorf(err, RF_ENOMEM, "out of memory opening %s", path);
        }
        gzbuffer(in->gz, 1u << 17);
    } else if (got == 4 && m[0] == 0x28 && m[1] == 0xB5 && m[2] == 0x2F && m[3] == 0xFD) {
        in->kind = IN_ZSTD;
        in->zs = ZSTD_createDStream();
        in->zin = malloc(ZIN_CAP);
        if (!in->zs || !in->zin) {
            in_close(in);
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
    if (in->kind == IN_GZ) {
        int r = gzread(in->gz, dst, (unsigned)n);
        int zerr = Z_OK;
        const char *zmsg = NULL;
        if (r <= 0) zmsg = gzerror(in->gz, &zerr);
        if (r < 0 || (r == 0 && zerr != Z_OK && zerr != Z_STREAM_END)) {
            if (zerr == Z_ERRNO)
                return rf_error_at(err, RF_EIO, path, 0, 0, "read error: %s", strerror(errno));
            return rf_error_at(err, RF_EDATA, path, 0, 0, "corrupt compressed data: %s",
                               zmsg ? zmsg : "unknown zlib error");
        }
        *got = (size_t)r;
        return RF_OK;
    }
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

/* ---- decompressing ahead ----------------------------------------------------------------
 * A compressed input is inflated by a thread of its own into a ring of chunks while the rows
 * of the previous text are parsed (inflating gzip alone runs at about 250 MB/s, slower than the
 * parse). Chunks are handed over in order; an error reaches the reader after the good text
 * before it, as if it had been read sequentially. */

#define PF_CHUNK ((size_t)1 << 20)
#define PF_N 8

typedef struct {
    input *in;
    const char *path;
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    char *chunk[PF_N];
    size_t clen[PF_N];
    int full[PF_N];
    int head, tail;  /* next chunk to read / to fill */
    size_t cpos;     /* read offset in chunk[head] */
    int done, stop;  /* the producer stopped (end, error); asked to stop */
    rf_status st;
    rf_error err;
} prefetch;

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
static prefetch *pf_start(input *in, const char *path)
{
    prefetch *pf = calloc(1, sizeof *pf);
    if (!pf) return NULL;
    pf->in = in;
    pf->path = path;
    int ok = 1;
    for (int i = 0; i < PF_N && ok; i++) ok = (pf->chunk[i] = malloc(PF_CHUNK)) != NULL;
    if (ok && rf_thread_start_(&pf->th, &pf->mu, &pf->cv, pf_thread, pf)) return pf;
    for (int i = 0; i < PF_N; i++) free(pf->chunk[i]);
    free(pf);
    return NULL;
}

static void pf_free(prefetch *pf)
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

/* ---- tokenizer --------------------------------------------------------------------------- */

/* The read buffer has BUF_PAD bytes after buf[cap]: buf[len] is a '\n' sentinel and 64-byte
 * loads starting at or before it stay inside the allocation. */
#define BUF_PAD 128
/* Longest row accepted (keeps field lengths within uint32_t). */
#define ROW_MAX ((size_t)1 << 31)

typedef struct {
    const char *p;     /* content start */
    const char *start; /* where the field starts (opening quote for quoted fields) */
    uint32_t len;
    uint32_t esc;      /* 1: contains "" escapes; JOIN_MISSING, SIDE_VALUE: joined values */
} span;

#define JOIN_MISSING 2u /* esc: value of a side-table row that does not exist (empty) */
#define SIDE_VALUE 3u   /* esc: value taken from a side table (already unescaped/converted) */

typedef struct {
    span *f;
    int n, cap;
    const char *next;   /* first byte after the row */
    long lines;         /* physical lines the row spans (newlines consumed) */
    const char *bad;    /* first char after a closing quote that is not delim/EOL, or NULL */
    const char *unterm; /* opening quote of an unterminated quoted field */
} tokens;

enum { TOK_ROW, TOK_MORE, TOK_EOF, TOK_UNTERM, TOK_NOMEM };

/* What the tokenizer needs to know about the text and the format. */
typedef struct {
    const char *buf; /* text [buf, end), *end == '\n' (sentinel) */
    const char *end;
    int eof;
    char d0;         /* first delimiter byte */
    int dl;          /* delimiter length */
    const char *dstr;
    int quote;       /* 1: RFC 4180 quoting */
    const unsigned char *cls; /* 1 for d0, '\n', '\r' */
    int simd;        /* block scanner of tokenize_row: 2 AVX2, 1 SSE2, 0 none (byte loop) */
    const char *pad_end; /* 64-byte loads may start at or before this (end, for the read buffer) */
} tokctx;

/* First byte at or after q that is d0, '\n' or '\r' (the sentinel bounds it). */
static inline const char *next_special(const tokctx *x, const char *q)
{
#if defined(__SSE2__)
    const __m128i vd = _mm_set1_epi8(x->d0), vn = _mm_set1_epi8('\n'), vr = _mm_set1_epi8('\r');
    for (;;) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)q);
        __m128i m = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, vd), _mm_cmpeq_epi8(v, vn)),
                                 _mm_cmpeq_epi8(v, vr));
        unsigned bits = (unsigned)_mm_movemask_epi8(m);
        if (bits) return q + __builtin_ctz(bits);
        q += 16;
    }
#else
    while (!x->cls[(unsigned char)*q]) q++;
    return q;
#endif
}

/* Is there a whole delimiter at q (*q == d0)? -1: undecided (needs more data). */
static inline int at_delim(const tokctx *x, const char *q)
{
    if (x->dl == 1) return 1;
    if (q + x->dl > x->end) {
        if (!x->eof && memcmp(q, x->dstr, (size_t)(x->end - q)) == 0) return -1;
        return 0;
    }
    return memcmp(q, x->dstr, (size_t)x->dl) == 0;
}

/* Scan an unquoted stretch from q: stops at a delimiter, '\n', "\r\n" or the end of data.
 * Returns NULL if more data is needed to decide. */
static const char *scan_plain(const tokctx *x, const char *q)
{
    const char *end = x->end;
    for (;;) {
        q = next_special(x, q); /* the sentinel stops this */
        if (q < end && *q == '\r') {
            if (q + 1 == end) {
                if (!x->eof) return NULL;
                return q + 1; /* trailing lone CR at EOF: data */
            }
            if (q[1] == '\n') return q;
            q++; /* lone CR: part of the field */
            continue;
        }
        if (q < end && *q == x->d0 && *q != '\n' && *q != '\r') {
            int d = at_delim(x, q);
            if (d < 0) return NULL;
            if (!d) {
                q++;
                continue;
            }
        }
        return q;
    }
}

/* Tokenize the row at p. */
static int tokenize(const tokctx *x, const char *p, tokens *t)
{
    const char *end = x->end;
    if (p == end) return x->eof ? TOK_EOF : TOK_MORE;
    t->n = 0;
    t->lines = 0;
    t->bad = NULL;
    t->unterm = NULL;
    for (;;) {
        if (t->n == t->cap) {
            int nc = t->cap ? 2 * t->cap : 64;
            span *nf = realloc(t->f, (size_t)nc * sizeof *nf);
            if (!nf) return TOK_NOMEM;
            t->f = nf;
            t->cap = nc;
        }
        span *s = &t->f[t->n++];
        s->start = p;
        s->esc = 0;
        if (x->quote && p < end && *p == '"') {
            const char *q = p + 1;
            for (;;) {
                const char *c = memchr(q, '"', (size_t)(end - q));
                if (!c) {
                    if (!x->eof) return TOK_MORE;
                    t->unterm = p;
                    return TOK_UNTERM;
                }
                if (c + 1 == end && !x->eof) return TOK_MORE;
                if (c + 1 < end && c[1] == '"') {
                    s->esc = 1;
                    q = c + 2;
                    continue;
                }
                s->p = p + 1;
                s->len = (uint32_t)(c - (p + 1));
                for (const char *nl = s->p; (nl = memchr(nl, '\n', (size_t)(c - nl))); nl++)
                    t->lines++;
                p = c + 1;
                break;
            }
            const char *q2 = scan_plain(x, p);
            if (!q2) return TOK_MORE;
            if (q2 != p && !t->bad) t->bad = p;
            p = q2;
        } else {
            const char *q = scan_plain(x, p);
            if (!q) return TOK_MORE;
            s->p = p;
            s->len = (uint32_t)(q - p);
            p = q;
        }
        if (p >= end) {
            if (!x->eof) return TOK_MORE;
            t->next = end;
            return TOK_ROW;
        }
        if (*p == x->d0 && *p != '\n' && *p != '\r') { /* scan_plain stopped at a delimiter */
            p += x->dl;
            continue;
        }
        if (*p == '\r') p++; /* scan_plain guarantees "\r\n" here */
        p++;                 /* '\n' */
        t->lines++;
        t->next = p;
        return TOK_ROW;
    }
}

/* Number of '"' in [p, p + n). */
static size_t count_quotes(const char *p, size_t n)
{
    size_t c = 0, i = 0;
#if defined(__SSE2__)
    const __m128i vq = _mm_set1_epi8('"');
    for (; i + 16 <= n; i += 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(p + i));
        c += (size_t)__builtin_popcount((unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, vq)));
    }
#endif
    for (; i < n; i++) c += p[i] == '"';
    return c;
}

/* ---- block tokenizer ----------------------------------------------------------------------
 * The common row - a one-byte delimiter, no quotes, LF or CRLF line end - is split with a bitmap
 * of its structural bytes (delimiter, '\n', '\r', '"') computed 64 bytes at a time with AVX2
 * (chosen at run time with __builtin_cpu_supports) or SSE2; each set bit is a field end. Any
 * quote, a lone CR, a row with more fields than the span array holds, or a buffer without the
 * 64-byte padding goes to tokenize(), which handles everything (RFC 4180); both give the same
 * spans for the rows the block tokenizer accepts. */

enum { TOK_SLOW = -1 };

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HAVE_BLOCK_TOK 1
/* The block scanners: for the 64 bytes at q, the delimiter bits (*md) and the bits of the
 * bytes that end or complicate a row: '\n', '\r', '"' (*ms). */
__attribute__((target("avx2"), always_inline)) static inline void mask64_avx2(const char *q, char d0, uint64_t *md,
                                                                              uint64_t *ms)
{
    const __m256i vd = _mm256_set1_epi8(d0), vn = _mm256_set1_epi8('\n'), vr = _mm256_set1_epi8('\r'),
                  vq = _mm256_set1_epi8('"');
    __m256i a = _mm256_loadu_si256((const __m256i *)(const void *)q);
    __m256i b = _mm256_loadu_si256((const __m256i *)(const void *)(q + 32));
    __m256i sa = _mm256_or_si256(_mm256_cmpeq_epi8(a, vn), _mm256_or_si256(_mm256_cmpeq_epi8(a, vr), _mm256_cmpeq_epi8(a, vq)));
    __m256i sb = _mm256_or_si256(_mm256_cmpeq_epi8(b, vn), _mm256_or_si256(_mm256_cmpeq_epi8(b, vr), _mm256_cmpeq_epi8(b, vq)));
    *md = (uint64_t)(uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(a, vd)) |
          (uint64_t)(uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(b, vd)) << 32;
    *ms = (uint64_t)(uint32_t)_mm256_movemask_epi8(sa) | (uint64_t)(uint32_t)_mm256_movemask_epi8(sb) << 32;
}

static inline void mask64_sse2(const char *q, char d0, uint64_t *md, uint64_t *ms)
{
    const __m128i vd = _mm_set1_epi8(d0), vn = _mm_set1_epi8('\n'), vr = _mm_set1_epi8('\r'), vq = _mm_set1_epi8('"');
    uint64_t d = 0, m = 0;
    for (int i = 0; i < 4; i++) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(q + 16 * i));
        __m128i c = _mm_or_si128(_mm_cmpeq_epi8(v, vn), _mm_or_si128(_mm_cmpeq_epi8(v, vr), _mm_cmpeq_epi8(v, vq)));
        d |= (uint64_t)(uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(v, vd)) << (16 * i);
        m |= (uint64_t)(uint32_t)_mm_movemask_epi8(c) << (16 * i);
    }
    *md = d;
    *ms = m;
}

/* Room for at least want spans. */
static int tok_reserve(tokens *t, int want)
{
    if (want <= t->cap) return 0;
    int nc = t->cap ? 2 * t->cap : 64;
    while (nc < want) nc *= 2;
    span *nf = realloc(t->f, (size_t)nc * sizeof *nf);
    if (!nf) return -1;
    t->f = nf;
    t->cap = nc;
    return 0;
}

/* One span per bit of ends (field ends at q + bit; the first field starts at *fs); *fs moves
 * past the last. Up to TOK_UNROLL fields are written unconditionally (spans past the last one
 * are scratch: the caller reserved room), so the loop exit does not depend on the data. */
#define TOK_UNROLL 12
static inline span *tok_emit(span *f, const char *q, uint64_t ends, const char **fs)
{
    int cnt = __builtin_popcountll(ends);
    const char *s = *fs;
    if (cnt <= TOK_UNROLL) {
        uint64_t e = ends;
        for (int k = 0; k < TOK_UNROLL; k++) {
            const char *c = q + __builtin_ctzll(e | (uint64_t)1 << 63); /* e == 0: scratch */
            f[k].p = f[k].start = s;
            f[k].len = (uint32_t)(c - s);
            f[k].esc = 0;
            s = c + 1;
            e &= e - 1;
        }
    } else {
        span *sp = f;
        for (uint64_t e = ends; e; e &= e - 1, sp++) {
            const char *c = q + __builtin_ctzll(e);
            sp->p = sp->start = s;
            sp->len = (uint32_t)(c - s);
            sp->esc = 0;
            s = c + 1;
        }
    }
    if (ends) *fs = q + 64 - __builtin_clzll(ends);
    return f + cnt;
}

/* The row at p (p < x->end) as spans, or TOK_SLOW: one function per block scanner (a macro, so
 * that the AVX2 one is compiled for AVX2 as a whole, whatever the build's -march). In a block,
 * the delimiters before the first special byte are all field ends. */
#define TOK_BLOCK_FN(NAME, ATTR, MASK)                                                             \
    ATTR static int NAME(const tokctx *x, const char *p, tokens *t)                                \
    {                                                                                              \
        const char *end = x->end, *fs = p;                                                         \
        const char d0 = x->d0;                                                                     \
        int n = 0;                                                                                 \
        for (const char *q = p;; q += 64) {                                                        \
            if (q > x->pad_end) return TOK_SLOW;                                                   \
            uint64_t md, ms;                                                                       \
            MASK(q, d0, &md, &ms);                                                                 \
            uint64_t stop = ms & (0 - ms); /* the first special byte, if any */                    \
            uint64_t ends = stop ? md & (stop - 1) : md;                                           \
            if (tok_reserve(t, n + 65 + TOK_UNROLL)) return TOK_NOMEM;                             \
            n = (int)(tok_emit(t->f + n, q, ends, &fs) - t->f);                                    \
            if (!stop) continue;                                                                   \
            const char *c = q + __builtin_ctzll(stop);                                             \
            span *s = &t->f[n++];                                                                  \
            s->p = s->start = fs;                                                                  \
            s->len = (uint32_t)(c - fs);                                                           \
            s->esc = 0;                                                                            \
            t->n = n;                                                                              \
            t->bad = t->unterm = NULL;                                                             \
            if (*c == '\n') {                                                                      \
                if (c == end) { /* the sentinel */                                                 \
                    if (!x->eof) return TOK_MORE;                                                  \
                    t->next = end;                                                                 \
                    t->lines = 0;                                                                  \
                } else {                                                                           \
                    t->next = c + 1;                                                               \
                    t->lines = 1;                                                                  \
                }                                                                                  \
                return TOK_ROW;                                                                    \
            }                                                                                      \
            if (*c == '\r' && c + 1 < end && c[1] == '\n') {                                       \
                t->next = c + 2;                                                                   \
                t->lines = 1;                                                                      \
                return TOK_ROW;                                                                    \
            }                                                                                      \
            return TOK_SLOW; /* a quote or a lone CR */                                            \
        }                                                                                          \
    }

TOK_BLOCK_FN(tok_block_avx2, __attribute__((target("avx2"))), mask64_avx2)
TOK_BLOCK_FN(tok_block_sse2, , mask64_sse2)
#endif

/* Tokenize the row at p: the block tokenizer when it applies, else tokenize(). */
static inline int tokenize_row(const tokctx *x, const char *p, tokens *t)
{
#ifdef HAVE_BLOCK_TOK
    if (x->simd && x->dl == 1 && p < x->end && p <= x->pad_end) {
        int r = x->simd == 2 ? tok_block_avx2(x, p, t) : tok_block_sse2(x, p, t);
        if (r != TOK_SLOW) return r;
    }
#endif
    return tokenize(x, p, t);
}

/* The block scanner this CPU supports (once per load; RESFLOW_TOKENIZER=sse2 or =scalar
 * forces a smaller one: tests cover every path on any machine). */
static int simd_level(void)
{
    const char *force = getenv("RESFLOW_TOKENIZER");
    if (force && !strcmp(force, "scalar")) return 0;
#ifdef HAVE_BLOCK_TOK
    if (force && !strcmp(force, "sse2")) return 1;
    return __builtin_cpu_supports("avx2") ? 2 : 1;
#else
    return 0;
#endif
}

/* ---- expressions: labels and filters ------------------------------------------------------ */

enum { X_COL, X_PROD, X_NUM, X_STR };
enum { OP_GE, OP_GT, OP_LE, OP_LT, OP_EQ, OP_NE };

typedef struct {
    int kind, op;
    char a[RF_SPEC_MAX], b[RF_SPEC_MAX]; /* column names */
    double v;                            /* X_NUM */
    char text[RF_SPEC_MAX];              /* X_STR */
    size_t tlen;
} expr;

static void trim_copy(char *dst, size_t cap, const char *s, size_t n)
{
    while (n && (*s == ' ' || *s == '\t')) s++, n--;
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t')) n--;
    if (n >= cap) n = cap - 1;
    memcpy(dst, s, n);
    dst[n] = '\0';
}

/* Parse "col", "a*b", "col OP value" (OP: >= > <= < == = !=). Returns 0, or -1 with why. */
static int parse_expr(const char *spec, expr *x, char *why, size_t wn)
{
    memset(x, 0, sizeof *x);
    const char *o = strpbrk(spec, "<>=!");
    if (!o) {
        const char *star = strchr(spec, '*');
        if (star) {
            x->kind = X_PROD;
            trim_copy(x->a, sizeof x->a, spec, (size_t)(star - spec));
            trim_copy(x->b, sizeof x->b, star + 1, strlen(star + 1));
            if (!x->a[0] || !x->b[0]) {
                snprintf(why, wn, "\"%s\": expected a*b", spec);
                return -1;
            }
            return 0;
        }
        x->kind = X_COL;
        trim_copy(x->a, sizeof x->a, spec, strlen(spec));
        return 0;
    }
    const char *val;
    if (*o == '>' || *o == '<') {
        int eq = o[1] == '=';
        x->op = *o == '>' ? (eq ? OP_GE : OP_GT) : (eq ? OP_LE : OP_LT);
        val = o + 1 + eq;
    } else if (*o == '=') {
        x->op = OP_EQ;
        val = o + 1 + (o[1] == '=');
    } else {
        if (o[1] != '=') {
            snprintf(why, wn, "\"%s\": expected != ", spec);
            return -1;
        }
        x->op = OP_NE;
        val = o + 2;
    }
    trim_copy(x->a, sizeof x->a, spec, (size_t)(o - spec));
    trim_copy(x->text, sizeof x->text, val, strlen(val));
    x->tlen = strlen(x->text);
    if (!x->a[0]) {
        snprintf(why, wn, "\"%s\": no column name before the operator", spec);
        return -1;
    }
    char *end;
    double v = x->tlen ? strtod(x->text, &end) : 0;
    if (x->tlen && *end == '\0' && isfinite(v)) {
        x->kind = X_NUM;
        x->v = v;
    } else {
        x->kind = X_STR;
        if (x->op != OP_EQ && x->op != OP_NE) {
            snprintf(why, wn, "\"%s\": %s needs a number", spec, x->op == OP_GE ? ">=" : x->op == OP_GT ? ">" : x->op == OP_LE ? "<=" : "<");
            return -1;
        }
    }
    return 0;
}

static inline int cmp_num(int op, double x, double v)
{
    switch (op) {
    case OP_GE: return x >= v;
    case OP_GT: return x > v;
    case OP_LE: return x <= v;
    case OP_LT: return x < v;
    case OP_EQ: return x == v;
    default: return x != v;
    }
}

/* ---- side tables (joins) ---------------------------------------------------------------- */

typedef struct {
    char path[RF_PATH_MAX];
    int ncols, key_col, on_col; /* on_col: column of the main row holding the key */
    char (*names)[RF_NAME_MAX];
    char *text;      /* every field's (converted, unescaped) text, back to back */
    size_t text_len, text_cap;
    size_t *off;     /* (rows * ncols + 1) start of each field in text */
    size_t rows, rows_cap;
    uint32_t *slots; /* open addressing: row + 1, 0 empty */
    size_t mask;
    int base;        /* first extended column of this table's columns */
} side;

static void side_free(side *s)
{
    free(s->names);
    free(s->text);
    free(s->off);
    free(s->slots);
}

static inline const char *side_field(const side *s, size_t r, int c, uint32_t *len)
{
    size_t i = r * (size_t)s->ncols + (size_t)c;
    *len = (uint32_t)(s->off[i + 1] - s->off[i]);
    return s->text + s->off[i];
}

static long side_find(const side *s, const char *k, size_t n)
{
    uint64_t h = XXH3_64bits(k, n);
    for (size_t i = (size_t)h & s->mask;; i = (i + 1) & s->mask) {
        uint32_t r = s->slots[i];
        if (!r) return -1;
        uint32_t l;
        const char *t = side_field(s, r - 1, s->key_col, &l);
        if (l == n && memcmp(t, k, n) == 0) return (long)r - 1;
    }
}

/* ISO-8859-1 -> UTF-8 of s[0..n) into *buf (grown); returns the length. -1 on OOM. */
static long latin1_to_utf8(const char *s, size_t n, char **buf, size_t *cap)
{
    if (*cap < 2 * n + 1) {
        size_t nc = 2 * n + 64;
        char *nb = realloc(*buf, nc);
        if (!nb) return -1;
        *buf = nb;
        *cap = nc;
    }
    char *o = *buf;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x80) *o++ = (char)c;
        else {
            *o++ = (char)(0xC0 | (c >> 6));
            *o++ = (char)(0x80 | (c & 0x3F));
        }
    }
    return (long)(o - *buf);
}

static int has_high(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] >= 0x80) return 1;
    return 0;
}

/* ---- output columns ---------------------------------------------------------------------- */

/* Spilled arrays: each in an unlinked temporary file, mapped shared and grown with ftruncate +
 * mremap, so the kernel can write the loaded data back and evict it (bounded memory for
 * rf_cache_build). Keyed by the address of the array pointer they back. */
typedef struct {
    void **slot;
    int fd;
    size_t bytes;
} spill_ent;

typedef struct {
    char dir[RF_PATH_MAX];
    int n;
    spill_ent e[5 + 2 * RF_MAX_FIELDS];
} spill_set;

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

typedef struct {
    size_t n, cap;
    spill_set *spill; /* NULL: malloc'ed arrays */
    uint32_t *cat;    /* (n, F) */
    float *dense;     /* (n, D) */
    float *labels;    /* (n, K) */
    float *weight;    /* (n) or NULL */
    uint64_t *group;  /* (n) or NULL */
    uint64_t *mv_off[RF_MAX_FIELDS]; /* (n + 1) */
    uint32_t *mv_ids[RF_MAX_FIELDS];
    size_t mv_len[RF_MAX_FIELDS], mv_cap[RF_MAX_FIELDS];
} cols;

static void cols_free(cols *c)
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
static void *cgrow(cols *c, void **slot, size_t bytes)
{
    return c->spill ? spill_grow(c->spill, slot, bytes) : rf_big_realloc_(*slot, bytes);
}

/* ---- the loader --------------------------------------------------------------------------- */

enum { FK_VOCAB = RF_ENC_VOCAB, FK_IDS = RF_ENC_IDS, FK_HASH = RF_ENC_HASH, FK_BUCKET = RF_ENC_BUCKET };

/* Parallel fitting: a piece writes a key's global provisional id when the global vocabulary
 * already has it (it is only read while pieces are parsed), else its id in the piece's own
 * vocabulary with this bit set (mapped to the global id when the piece is copied out). A
 * piece's vocabulary stays far below 2^31 keys. */
#define LOCAL_ID 0x80000000u

typedef struct {
    int col;          /* extended column */
    int kind;
    int multi;
    char sep;
    uint32_t size;    /* FK_IDS: ids; FK_HASH: buckets + 1 */
    uint32_t oov;     /* FK_VOCAB with given encoders */
    uint64_t seed;
    const float *bounds;
    uint32_t nb;
    rf_vocab *vocab;  /* FK_VOCAB: the global vocabulary (being fitted, or frozen) */
} fplan;

typedef struct {
    int col;
    int fill;         /* rf_fill (given: from the encoder) */
    float fill_value; /* given encoders */
    const rf_dense_enc *enc; /* given encoders; NULL = raw */
} dplan;

typedef struct {
    expr x;
    int ca, cb;       /* columns (cb: X_PROD) */
    int numeric;      /* not checked to be 0/1 */
    int scaled;
    double lo, hi;
} lplan;

typedef struct {
    expr x;
    int col;
} fltplan;

typedef struct loader loader;

typedef struct {
    /* region */
    const char *start, *hint, *end;
    int more;         /* stopped at an incomplete row (needs more text) */
    long lines;
    cols c;
    /* parallel fitting: local vocabularies, kept across rounds, and their local -> global
     * provisional id maps (the first mapped ids are known; new keys are merged per round) */
    rf_vocab *voc[RF_MAX_FIELDS];
    uint32_t *map[RF_MAX_FIELDS];
    uint32_t mapped[RF_MAX_FIELDS];
    uint64_t local;   /* fields with piece-local ids (LOCAL_ID) in this round's rows */
    tokens t;
    char *scratch, *conv;
    size_t scratch_cap, conv_cap;
    size_t bad, filtered;
    size_t dst;       /* merged: first output row */
    size_t mv_base[RF_MAX_FIELDS]; /* merged: first output multi-value id of each field */
    int failed;       /* an error is in err (line relative to the piece start, 0-based) */
    rf_error err;
    const char *row;  /* current row */
    long row_line;    /* lines before the current row within the piece */
    char gap[128];    /* keeps the fields each thread writes per row off its neighbour's cache lines */
} piece;

struct loader {
    const rf_schema *sc;
    const char *path;
    rf_error *err;
    int skip, fitting, direct;
    int F, D, K;
    tokctx tx;        /* buf/end/eof updated per round */
    unsigned char cls[256];
    char dstr[RF_DELIM_MAX];
    int latin1;
    int ncols, next;  /* main columns; extended columns (main + joined) */
    fplan fp[RF_MAX_FIELDS];
    dplan dp[RF_MAX_DENSE];
    lplan lp[RF_MAX_LABELS];
    fltplan flt[RF_MAX_FILTERS];
    int nflt;
    int weight_col, group_col;
    int use_na;       /* NA strings apply to dense columns */
    side sides[RF_MAX_JOINS];
    int nside;
    rf_encoders *enc;
    cols out;
    rf_pool *pool;    /* the threads of the parallel steps of a round (NULL: one thread) */
    rf_load_hooks_ *hooks;
    int dense_stream; /* dense rows go to hooks->dense_sink, out.dense stays NULL */
    int dense_batch;  /* plain decimal dense fields are converted a row at a time */
    int dense_enc;    /* some dense column has an encoder to apply */
    size_t est_rows;
    size_t bad_rows, filtered;
};

enum { ROW_OK = 0, ROW_SKIP = 1, ROW_FAIL = 2, ROW_FILTERED = 3 };

#define SHOW_MAX 40

/* Location (piece-relative 0-based line, 1-based column) of position at in the current row. */
static void locate(const piece *P, const char *at, long *line, long *col)
{
    const char *ls = P->row;
    long ln = P->row_line;
    if (!(at >= P->row && at <= P->row + ROW_MAX)) at = P->row; /* outside the buffer */
    for (const char *q = P->row; q < at; q++)
        if (*q == '\n') {
            ln++;
            ls = q + 1;
        }
    *line = ln;
    *col = (long)(at - ls) + 1;
}

static int row_bad(const loader *L, piece *P, const char *at, const char *fmt, ...) RF_PRINTF(4, 5);
static int row_bad(const loader *L, piece *P, const char *at, const char *fmt, ...)
{
    if (L->skip) {
        P->bad++;
        return ROW_SKIP;
    }
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    long line, col;
    locate(P, at, &line, &col);
    rf_error_at(&P->err, RF_EDATA, L->path, line, col, "%s", msg);
    P->failed = 1;
    return ROW_FAIL;
}

static int row_oom(const loader *L, piece *P)
{
    rf_errorf(&P->err, RF_ENOMEM, "out of memory loading %s", L->path);
    P->failed = 2;
    return ROW_FAIL;
}

/* Field text with "" escapes removed (into the scratch buffer if needed); NULL on OOM. */
static const char *field_text(piece *P, const span *s, size_t *len)
{
    if (s->esc != 1) {
        *len = s->len;
        return s->p;
    }
    if (P->scratch_cap < (size_t)s->len + 1) {
        size_t nc = (size_t)s->len + 1 > 2 * P->scratch_cap ? (size_t)s->len + 1 : 2 * P->scratch_cap;
        char *nb = realloc(P->scratch, nc + TEXT_PAD);
        if (!nb) return NULL;
        P->scratch = nb;
        P->scratch_cap = nc;
    }
    size_t o = 0;
    for (uint32_t i = 0; i < s->len; i++) {
        P->scratch[o++] = s->p[i];
        if (s->p[i] == '"') i++; /* inside a quoted field quotes come in pairs */
    }
    *len = o;
    return P->scratch;
}

/* Text of a categorical/string value: unescaped and, for ISO-8859-1 input, UTF-8. Values of
 * side tables are already converted. */
static const char *value_text(const loader *L, piece *P, const span *s, size_t *len)
{
    const char *t = field_text(P, s, len);
    if (!t || !L->latin1 || s->esc > 1 || !has_high(t, *len)) return t;
    long n = latin1_to_utf8(t, *len, &P->conv, &P->conv_cap);
    if (n < 0) return NULL;
    *len = (size_t)n;
    return P->conv;
}

/* Report a bad numeric field (role: "column", "label column", ...; name: schema name). */
static int num_error(const loader *L, piece *P, const span *s, int rc, const char *role, const char *name)
{
    size_t n;
    const char *txt = field_text(P, s, &n);
    if (!txt) return row_oom(L, P);
    int show = n > SHOW_MAX ? SHOW_MAX : (int)n;
    const char *ell = n > SHOW_MAX ? "..." : "";
    if (s->esc == JOIN_MISSING)
        return row_bad(L, P, s->start, "no row for this key in the joined file (needed for %s '%s')", role, name);
    if (rc == RF_NUM_EMPTY) return row_bad(L, P, s->start, "empty numeric value in %s '%s'", role, name);
    if (rc == RF_NUM_NONFINITE)
        return row_bad(L, P, s->start, "non-finite value '%.*s%s' in %s '%s'", show, txt, ell, role, name);
    return row_bad(L, P, s->start, "invalid number '%.*s%s' in %s '%s'", show, txt, ell, role, name);
}

/* Parse a numeric field into *out; returns ROW_*. */
static inline int num_span(const loader *L, piece *P, const span *s, const char *role, const char *name,
                           double *out)
{
    if (s->esc == JOIN_MISSING) return num_error(L, P, s, RF_NUM_EMPTY, role, name);
    int rc = rf_parse_num_(s->p, s->len, out);
    if (rc == RF_NUM_OK && s->esc != 1) return ROW_OK;
    if (s->esc == 1) { /* only possible with "" escapes inside a quoted number: never valid */
        size_t n;
        const char *txt = field_text(P, s, &n);
        if (!txt) return row_oom(L, P);
        if ((rc = rf_parse_num_(txt, n, out)) == RF_NUM_OK) return ROW_OK;
    }
    return num_error(L, P, s, rc, role, name);
}

/* Is the span a missing value (empty, a missing joined row, or one of the NA strings)? */
static int is_na(const loader *L, const span *s)
{
    if (s->esc == JOIN_MISSING || s->len == 0) return 1;
    const rf_schema *sc = L->sc;
    for (int i = 0; i < sc->nna; i++) {
        size_t n = strlen(sc->na[i]);
        if (n == s->len && memcmp(s->p, sc->na[i], n) == 0) return 1;
    }
    return 0;
}

static int grow_rows(const loader *L, cols *c, size_t want)
{
    size_t nc = c->cap ? 2 * c->cap : want ? want : 1024;
    while (nc < want) nc *= 2;
    uint32_t *ct = cgrow(c, (void **)&c->cat, nc * (size_t)(L->F ? L->F : 1) * sizeof *ct);
    if (!ct) return -1;
    c->cat = ct;
    if (L->D && !(L->dense_stream && c == &L->out)) {
        float *d = cgrow(c, (void **)&c->dense, nc * (size_t)L->D * sizeof *d);
        if (!d) return -1;
        c->dense = d;
    }
    float *lb = cgrow(c, (void **)&c->labels, nc * (size_t)(L->K ? L->K : 1) * sizeof *lb);
    if (!lb) return -1;
    c->labels = lb;
    if (L->weight_col >= 0) {
        float *w = cgrow(c, (void **)&c->weight, nc * sizeof *w);
        if (!w) return -1;
        c->weight = w;
    }
    if (L->group_col >= 0) {
        uint64_t *g = cgrow(c, (void **)&c->group, nc * sizeof *g);
        if (!g) return -1;
        c->group = g;
    }
    for (int f = 0; f < L->F; f++) {
        if (!L->fp[f].multi) continue;
        uint64_t *o = cgrow(c, (void **)&c->mv_off[f], (nc + 1) * sizeof *o);
        if (!o) return -1;
        if (!c->mv_off[f]) o[0] = 0;
        c->mv_off[f] = o;
    }
    c->cap = nc;
    return 0;
}

static int push_mv(cols *c, int f, uint32_t id)
{
    if (c->mv_len[f] == c->mv_cap[f]) {
        size_t nc = c->mv_cap[f] ? 2 * c->mv_cap[f] : 4096;
        uint32_t *ni = rf_big_realloc_(c->mv_ids[f], nc * sizeof *ni);
        if (!ni) return -1;
        c->mv_ids[f] = ni;
        c->mv_cap[f] = nc;
    }
    c->mv_ids[f][c->mv_len[f]++] = id;
    return 0;
}

/* Integer-id value: the decimal value itself, 0 (OOV) when outside [0, size); *bad is set
 * when the text is not a non-negative integer. */
static uint32_t encode_id(uint32_t size, const char *s, size_t n, int *bad)
{
    uint64_t v = 0;
    if (n == 0 || n > 19) {
        *bad = n > 0;
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            *bad = 1;
            return 0;
        }
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    return v < size ? (uint32_t)v : 0;
}

/* Id of a non-empty value of field f with hash h (= rf_vocab_hash_ for vocabularies). While
 * fitting: a provisional id (local vocabulary of the piece unless direct). *oom on failure. */
/* id, provisional in piece P's own vocabulary, as written to P's rows: tagged LOCAL_ID (and
 * field f noted for the remap); 0 with *oom set when id is 0 (out of memory) or too large. */
static inline uint32_t local_id(piece *P, int f, uint32_t id, int *oom)
{
    if (!id || id >= LOCAL_ID) {
        *oom = 1;
        return 0;
    }
    P->local |= (uint64_t)1 << f;
    return id | LOCAL_ID;
}

static inline uint32_t encode_vocab(const loader *L, piece *P, int f, const char *s, size_t n, uint64_t h,
                                    int *oom)
{
    const fplan *fp = &L->fp[f];
    if (L->fitting && L->direct) {
        uint32_t id = rf_vocab_fit_id_(fp->vocab, s, n, h);
        if (!id) *oom = 1;
        return id;
    }
    if (L->fitting) { /* a key the global vocabulary has (read-only while pieces are parsed) */
        uint32_t g = rf_vocab_find_h_(fp->vocab, s, n, h);
        return g ? g : local_id(P, f, rf_vocab_fit_id_(P->voc[f], s, n, h), oom);
    }
    uint32_t id = rf_vocab_lookup_h_(fp->vocab, s, n, h);
    return id ? id : fp->oov;
}

/* Id of the value s[0..n) of a non-bucket field; *bad: 1 OOM, 2 not an integer id. */
static inline uint32_t encode_value(const loader *L, piece *P, int f, const char *s, size_t n, int *bad)
{
    if (n == 0) return 0;
    const fplan *fp = &L->fp[f];
    switch (fp->kind) {
    case FK_HASH: return 1 + (uint32_t)(XXH3_64bits_withSeed(s, n, fp->seed) % (fp->size - 1));
    case FK_IDS: {
        int b = 0;
        uint32_t id = encode_id(fp->size, s, n, &b);
        if (b) *bad = 2;
        return id;
    }
    default: return encode_vocab(L, P, f, s, n, rf_vocab_hash_(fp->vocab, s, n), bad);
    }
}

/* Text of extended column c of the current row. */
static inline const span *colspan(const piece *P, int c) { return &P->t.f[c]; }

/* Evaluate a comparison expression on its column; *res 0/1; returns ROW_*. */
static int eval_cmp(const loader *L, piece *P, const expr *x, const span *s, const char *role,
                    const char *name, int *res)
{
    if (x->kind == X_NUM) {
        double v;
        int rc = num_span(L, P, s, role, name, &v);
        if (rc != ROW_OK) return rc;
        *res = cmp_num(x->op, v, x->v);
        return ROW_OK;
    }
    size_t n = 0;
    const char *t = s->esc == JOIN_MISSING ? "" : value_text(L, P, s, &n);
    if (!t) return row_oom(L, P);
    if (s->esc == JOIN_MISSING) n = 0;
    int eq = n == x->tlen && memcmp(t, x->text, n) == 0;
    *res = x->op == OP_EQ ? eq : !eq;
    return ROW_OK;
}

/* Fill the joined columns of the current row. */
static int join_row(const loader *L, piece *P)
{
    tokens *t = &P->t;
    for (int j = 0; j < L->nside; j++) {
        const side *s = &L->sides[j];
        int need = L->next;
        if (t->cap < need) {
            span *nf = realloc(t->f, (size_t)need * sizeof *nf);
            if (!nf) return row_oom(L, P);
            t->f = nf;
            t->cap = need;
        }
        const span *ks = &t->f[s->on_col];
        size_t kn;
        const char *k = value_text(L, P, ks, &kn);
        if (!k) return row_oom(L, P);
        long r = side_find(s, k, kn);
        for (int c = 0; c < s->ncols; c++) {
            span *o = &t->f[s->base + c];
            o->start = ks->start;
            if (r < 0) {
                o->p = "";
                o->len = 0;
                o->esc = JOIN_MISSING;
            } else {
                o->p = side_field(s, (size_t)r, c, &o->len);
                o->esc = SIDE_VALUE;
            }
        }
    }
    t->n = L->next;
    return ROW_OK;
}

/* The dense fields of the current row that are plain decimals, converted as a batch
 * (rf_num_batch_*, numparse.h) into drow, raw; slow gets the fields left to the field-by-field
 * path (all of them when an NA string reads as a number: see make_plan). */
static void dense_batch(const loader *L, const piece *P, float *drow, uint64_t *slow)
{
    rf_num_batch_ b;
    for (int d0 = 0; d0 < L->D; d0 += 64) {
        int cnt = L->D - d0 < 64 ? L->D - d0 : 64;
        if (!L->dense_batch) {
            slow[d0 >> 6] = cnt == 64 ? ~(uint64_t)0 : ((uint64_t)1 << cnt) - 1;
            continue;
        }
        rf_num_batch_init_(&b);
        for (int i = 0; i < cnt; i++) {
            const span *sp = colspan(P, L->dp[d0 + i].col);
            rf_num_batch_add_(&b, sp->p, sp->esc ? 0 : sp->len); /* only text of the read buffer (padded) */
        }
        slow[d0 >> 6] = rf_num_batch_finish_(&b, drow + d0);
    }
}

/* Convert the tokenized current row of piece P into its next output row. */
static int process_row(const loader *L, piece *P)
{
    tokens *t = &P->t;
    if (t->bad) return row_bad(L, P, t->bad, "unexpected character after closing quote");
    if (t->n != L->ncols) return row_bad(L, P, P->row, "expected %d fields, found %d", L->ncols, t->n);
    if (L->nside && join_row(L, P) != ROW_OK) return ROW_FAIL;
    const rf_schema *sc = L->sc;
    int rc;
    for (int i = 0; i < L->nflt; i++) {
        int keep = 0;
        if (L->flt[i].x.kind == X_NUM && is_na(L, colspan(P, L->flt[i].col))) {
            P->filtered++; /* a missing value passes no numeric filter */
            return ROW_FILTERED;
        }
        if ((rc = eval_cmp(L, P, &L->flt[i].x, colspan(P, L->flt[i].col), "filter column", L->flt[i].x.a,
                           &keep)) != ROW_OK)
            return rc;
        if (!keep) {
            P->filtered++;
            return ROW_FILTERED;
        }
    }
    cols *c = &P->c;
    if (c->n == c->cap && grow_rows(L, c, 0)) return row_oom(L, P);
    size_t r = c->n;
    double x;
    /* numeric columns first: a rejected row must not touch the vocabularies */
    float *drow = L->D ? c->dense + r * (size_t)L->D : NULL;
    uint64_t slow[(RF_MAX_DENSE + 63) / 64];
    dense_batch(L, P, drow, slow);
    /* the fields the batch left, in order */
    for (int w = 0; w < (L->D + 63) >> 6; w++)
        for (uint64_t left = slow[w]; left; left &= left - 1) {
            int d = w * 64 + __builtin_ctzll(left);
            const dplan *dp = &L->dp[d];
            const span *s = colspan(P, dp->col);
            if (dp->fill != RF_FILL_ERROR && is_na(L, s)) {
                drow[d] = L->fitting ? NAN : dp->fill_value;
                continue;
            }
            if (!(s->esc == 0 && rf_num_fast_(s->p, s->len, &x) == RF_NUM_OK) && /* inline: the common case */
                (rc = num_span(L, P, s, "column", sc->dense[d], &x)) != ROW_OK)
                return rc;
            if (to_float(x, &drow[d]))
                return row_bad(L, P, s->start, "value out of float range in column '%s'", sc->dense[d]);
        }
    if (!L->fitting && L->dense_enc) /* given encoders: the row's values (and fills) transformed */
        for (int d = 0; d < L->D; d++)
            if (L->dp[d].enc) drow[d] = dense_apply(drow[d], L->dp[d].enc);
    for (int k = 0; k < L->K; k++) {
        const lplan *lp = &L->lp[k];
        float *y = &c->labels[r * (size_t)L->K + (size_t)k];
        const span *sa = colspan(P, lp->ca);
        if (lp->x.kind == X_NUM || lp->x.kind == X_STR) {
            int v;
            if ((rc = eval_cmp(L, P, &lp->x, sa, "label column", sc->label[k], &v)) != ROW_OK) return rc;
            *y = (float)v;
            continue;
        }
        double a, b = 1.0;
        if ((rc = num_span(L, P, sa, "label column", sc->label[k], &a)) != ROW_OK) return rc;
        if (lp->cb >= 0 && (rc = num_span(L, P, colspan(P, lp->cb), "label column", sc->label[k], &b)) != ROW_OK)
            return rc;
        if (to_float(a * b, y))
            return row_bad(L, P, sa->start, "value out of float range in label column '%s'", sc->label[k]);
        if (lp->scaled) {
            double z = (a * b - lp->lo) / (lp->hi - lp->lo);
            *y = (float)(z < 0 ? 0 : z > 1 ? 1 : z);
        } else if (sc->labels_binary && !lp->numeric && a * b != 0.0 && a * b != 1.0) {
            const span *bs = (a != 0.0 && a != 1.0) || lp->cb < 0 ? sa : colspan(P, lp->cb);
            return row_bad(L, P, bs->start, "label '%.*s' is not 0 or 1 in label column '%s'",
                           (int)(bs->len > SHOW_MAX ? SHOW_MAX : bs->len), bs->p, sc->label[k]);
        }
    }
    if (L->weight_col >= 0) {
        const span *s = colspan(P, L->weight_col);
        if ((rc = num_span(L, P, s, "weight column", sc->weight, &x)) != ROW_OK) return rc;
        float v;
        if (to_float(x, &v))
            return row_bad(L, P, s->start, "value out of float range in weight column '%s'", sc->weight);
        if (v < 0)
            return row_bad(L, P, s->start, "negative weight '%.*s' in weight column '%s'",
                           (int)(s->len > SHOW_MAX ? SHOW_MAX : s->len), s->p, sc->weight);
        c->weight[r] = v;
    }
    if (L->group_col >= 0) {
        size_t n;
        const char *s = field_text(P, colspan(P, L->group_col), &n);
        if (!s) return row_oom(L, P);
        c->group[r] = XXH3_64bits(s, n);
    }
    uint32_t *crow = c->cat + r * (size_t)(L->F ? L->F : 1);
    /* bucket fields (numbers) before any vocabulary is touched */
    for (int f = 0; f < L->F; f++) {
        const fplan *fp = &L->fp[f];
        if (fp->kind != FK_BUCKET) continue;
        const span *s = colspan(P, fp->col);
        float v = NAN;
        if (!is_na(L, s)) {
            if ((rc = num_span(L, P, s, "column", sc->cat[f].name, &x)) != ROW_OK) return rc;
            if (to_float(x, &v))
                return row_bad(L, P, s->start, "value out of float range in column '%s'", sc->cat[f].name);
        }
        if (L->fitting) memcpy(&crow[f], &v, sizeof v);
        else crow[f] = rf_bucket_id_(fp->bounds, fp->nb, v);
    }
    /* integer-id fields: validate before any vocabulary is touched */
    for (int f = 0; f < L->F; f++) {
        const fplan *fp = &L->fp[f];
        if (fp->kind != FK_IDS) continue;
        const span *sp = colspan(P, fp->col);
        int bad = 0;
        if (!fp->multi) {
            crow[f] = encode_id(fp->size, sp->p, sp->esc == JOIN_MISSING ? 0 : sp->len, &bad);
        } else {
            for (const char *a = sp->p, *e = sp->p + sp->len; a < e && !bad;) {
                const char *q = memchr(a, fp->sep, (size_t)(e - a));
                if (!q) q = e;
                if (q > a) encode_id(fp->size, a, (size_t)(q - a), &bad);
                a = q + 1;
            }
        }
        if (bad)
            return row_bad(L, P, sp->start, "expected integer ids in column '%s', found '%.*s'", sc->cat[f].name,
                           (int)(sp->len > SHOW_MAX ? SHOW_MAX : sp->len), sp->p);
    }
    /* categorical columns: hash the plain single-valued vocabulary ones first and prefetch their
     * table slots, so that the cache misses of the lookups overlap */
    int oom = 0;
    uint64_t hs[RF_MAX_FIELDS], done = 0;
    for (int f = 0; f < L->F; f++) {
        const fplan *fp = &L->fp[f];
        const span *sp = colspan(P, fp->col);
        if (fp->kind == FK_VOCAB && !fp->multi && sp->esc != 1 && sp->esc != JOIN_MISSING && sp->len && !L->latin1) {
            /* an integer id: direct table (parallel fitting: the global vocabulary, read-only
             * while the pieces are parsed, knows most keys; the piece's own only new ones) */
            uint32_t id;
            if (L->fitting && !L->direct) {
                if (rf_vocab_small_(fp->vocab, sp->p, sp->len, 0, &id) && id) {
                    crow[f] = id;
                    done |= (uint64_t)1 << f;
                    continue;
                }
                if (rf_vocab_small_(P->voc[f], sp->p, sp->len, 1, &id)) {
                    crow[f] = local_id(P, f, id, &oom);
                    done |= (uint64_t)1 << f;
                    continue;
                }
            } else if (rf_vocab_small_(fp->vocab, sp->p, sp->len, L->fitting, &id)) {
                if (L->fitting && !id) oom = 1;
                crow[f] = id ? id : fp->oov;
                done |= (uint64_t)1 << f;
                continue;
            }
            hs[f] = rf_vocab_hash_(fp->vocab, sp->p, sp->len); /* (the global one is looked at first) */
        }
    }
    for (int f = 0; f < L->F; f++) {
        const fplan *fp = &L->fp[f];
        if (fp->kind == FK_BUCKET || (fp->kind == FK_IDS && !fp->multi) || (done >> f & 1)) continue;
        const span *sp = colspan(P, fp->col);
        if (fp->kind == FK_VOCAB && !fp->multi && sp->esc != 1 && sp->esc != JOIN_MISSING && !L->latin1) {
            crow[f] = sp->len ? encode_vocab(L, P, f, sp->p, sp->len, hs[f], &oom) : 0;
            continue;
        }
        size_t n;
        const char *s = value_text(L, P, sp, &n);
        if (!s) return row_oom(L, P);
        if (!fp->multi) {
            crow[f] = encode_value(L, P, f, s, n, &oom);
            continue;
        }
        crow[f] = 0;
        const char *e = s + n;
        while (s < e) {
            const char *q = memchr(s, fp->sep, (size_t)(e - s));
            if (!q) q = e;
            if (q > s && push_mv(c, f, encode_value(L, P, f, s, (size_t)(q - s), &oom))) return row_oom(L, P);
            s = q + 1;
        }
        c->mv_off[f][r + 1] = c->mv_len[f];
    }
    if (oom) return row_oom(L, P);
    c->n++;
    return ROW_OK;
}

/* Parse the rows of piece P starting at P->start, up to the first row starting at or after
 * P->hint. */
/* Forget a piece's local vocabularies (after a parse from a wrong start: its keys may not
 * be the file's, nor in the file's order). */
static void piece_reset_vocab(piece *P)
{
    for (int f = 0; f < RF_MAX_FIELDS; f++) {
        rf_vocab_free(P->voc[f]);
        P->voc[f] = NULL;
        P->mapped[f] = 0;
    }
}

static void parse_piece(const loader *L, piece *P)
{
    const char *p = P->start;
    P->lines = 0;
    P->more = 0;
    P->failed = 0;
    P->bad = P->filtered = 0;
    P->c.n = 0;
    P->local = 0;
    for (int f = 0; f < L->F; f++) {
        P->c.mv_len[f] = 0;
        if (L->fitting && !L->direct && L->fp[f].kind == FK_VOCAB && !P->voc[f] &&
            !(P->voc[f] = rf_vocab_create())) {
            row_oom(L, P);
            P->end = p;
            return;
        }
    }
    while (p < P->hint) {
        P->row = p;
        P->row_line = P->lines;
        int tk = tokenize_row(&L->tx, p, &P->t);
        if (tk == TOK_MORE) {
            P->more = 1;
            break;
        }
        if (tk == TOK_EOF) break;
        if (tk == TOK_NOMEM) {
            row_oom(L, P);
            break;
        }
        if (tk == TOK_UNTERM) {
            long line, col;
            locate(P, P->t.unterm, &line, &col);
            rf_error_at(&P->err, RF_EDATA, L->path, line, col, "unterminated quoted field");
            P->failed = 1;
            break;
        }
        const span *f0 = &P->t.f[0];
        int blank = P->t.n == 1 && f0->len == 0 && f0->start == f0->p;
        if (!blank && process_row(L, P) == ROW_FAIL) break;
        p = P->t.next;
        P->lines += P->t.lines;
    }
    P->end = p;
}

static void piece_free(piece *P)
{
    cols_free(&P->c);
    for (int f = 0; f < RF_MAX_FIELDS; f++) {
        rf_vocab_free(P->voc[f]);
        free(P->map[f]);
    }
    free(P->t.f);
    free(P->scratch);
    free(P->conv);
}

/* Appending a piece's rows to the output, in two steps: reserve_piece (serial, in file order)
 * merges the piece's new vocabulary keys into the global vocabularies and makes room for its
 * rows; copy_piece (the pieces of a round in parallel) copies them, remapping local ids. */
static rf_status reserve_piece(loader *L, piece *P)
{
    cols *o = &L->out, *c = &P->c;
    size_t n = c->n;
    P->dst = o->n;
    if (!n) return RF_OK;
    if (o->n + n > o->cap && grow_rows(L, o, o->n + n > L->est_rows ? o->n + n : L->est_rows)) {
        if (o->spill)
            return rf_errorf(L->err, RF_EIO, "cannot grow the spill files in %s: %s", o->spill->dir, strerror(errno));
        return rf_errorf(L->err, RF_ENOMEM, "out of memory loading %s", L->path);
    }
    /* merge local vocabularies: local id -> global provisional id */
    if (L->fitting && !L->direct)
        for (int f = 0; f < L->F; f++) {
            if (L->fp[f].kind != FK_VOCAB) continue;
            rf_vocab *lv = P->voc[f], *gv = L->fp[f].vocab;
            uint32_t m = rf_vocab_entries_(lv);
            if (m == P->mapped[f] && P->map[f]) continue; /* no new keys in this round */
            uint32_t *map = realloc(P->map[f], ((size_t)m + 1) * sizeof *map);
            if (!map) return rf_errorf(L->err, RF_ENOMEM, "out of memory");
            P->map[f] = map;
            map[0] = 0;
            for (uint32_t i = P->mapped[f] + 1; i <= m; i++) {
                size_t kl;
                const char *k = rf_vocab_key_len_(lv, i, &kl);
                uint32_t g = rf_vocab_fit_id_(gv, k, kl, rf_vocab_hash_(gv, k, kl));
                if (!g) return rf_errorf(L->err, RF_ENOMEM, "out of memory");
                map[i] = g;
            }
            P->mapped[f] = m;
        }
    for (int f = 0; f < L->F; f++) {
        if (!L->fp[f].multi) continue;
        size_t m = c->mv_len[f], base = o->mv_len[f];
        if (base + m > o->mv_cap[f]) {
            size_t nc = o->mv_cap[f] ? o->mv_cap[f] : 4096;
            while (nc < base + m) nc *= 2;
            uint32_t *ni = cgrow(o, (void **)&o->mv_ids[f], nc * sizeof *ni);
            if (!ni) return rf_errorf(L->err, RF_ENOMEM, "out of memory loading %s", L->path);
            o->mv_ids[f] = ni;
            o->mv_cap[f] = nc;
        }
        P->mv_base[f] = base;
        o->mv_len[f] = base + m;
    }
    o->n += n;
    return RF_OK;
}

static void copy_piece(const loader *L, const piece *P)
{
    const cols *c = &P->c;
    const cols *o = &L->out;
    size_t n = c->n, at = P->dst;
    if (!n) return;
    int F = L->F ? L->F : 1;
    int remap = L->fitting && !L->direct;
    memcpy(o->cat + at * (size_t)F, c->cat, n * (size_t)F * sizeof *o->cat);
    if (remap) /* piece-local ids (tagged) -> global provisional ids */
        for (int f = 0; f < L->F; f++) {
            if (L->fp[f].kind != FK_VOCAB || L->fp[f].multi || !(P->local >> f & 1)) continue;
            uint32_t *col = o->cat + at * (size_t)F + f;
            const uint32_t *map = P->map[f];
            for (size_t i = 0; i < n; i++) {
                uint32_t id = col[i * (size_t)F];
                if (id & LOCAL_ID) col[i * (size_t)F] = map[id & ~LOCAL_ID];
            }
        }
    if (L->D && !L->dense_stream)
        memcpy(o->dense + at * (size_t)L->D, c->dense, n * (size_t)L->D * sizeof *o->dense);
    memcpy(o->labels + at * (size_t)(L->K ? L->K : 1), c->labels, n * (size_t)(L->K ? L->K : 1) * sizeof *o->labels);
    if (o->weight) memcpy(o->weight + at, c->weight, n * sizeof *o->weight);
    if (o->group) memcpy(o->group + at, c->group, n * sizeof *o->group);
    for (int f = 0; f < L->F; f++) {
        if (!L->fp[f].multi) continue;
        size_t m = c->mv_len[f], base = P->mv_base[f];
        if (remap && L->fp[f].kind == FK_VOCAB) {
            const uint32_t *map = P->map[f];
            for (size_t j = 0; j < m; j++) {
                uint32_t id = c->mv_ids[f][j];
                o->mv_ids[f][base + j] = id & LOCAL_ID ? map[id & ~LOCAL_ID] : id;
            }
        } else if (m) {
            memcpy(o->mv_ids[f] + base, c->mv_ids[f], m * sizeof *o->mv_ids[f]);
        }
        for (size_t i = 1; i <= n; i++) o->mv_off[f][at + i] = base + c->mv_off[f][i];
    }
}

/* Copy the merged pieces [0, np) into the output in parallel; the streamed dense rows go to the
 * sink, in order, as one more task. */
typedef struct {
    loader *L;
    piece *P;
    int np, sink_failed;
} copy_ctx;

static void copy_task(void *ctx, int i)
{
    copy_ctx *c = ctx;
    const loader *L = c->L;
    if (i < c->np) {
        copy_piece(L, &c->P[i]);
        return;
    }
    for (int j = 0; j < c->np && !c->sink_failed; j++)
        if (c->P[j].c.n && L->hooks->dense_sink(L->hooks->ud, c->P[j].c.dense, c->P[j].c.n, L->D, L->err))
            c->sink_failed = 1;
}

static rf_status copy_pieces(loader *L, piece *P, int np)
{
    copy_ctx c = {L, P, np, 0};
    rf_pool_run(L->pool, np + (L->dense_stream ? 1 : 0), copy_task, &c);
    return c.sink_failed ? (L->err->code ? L->err->code : RF_EIO) : RF_OK;
}

typedef struct {
    const loader *L;
    piece *P;
} parse_ctx;

static void parse_task(void *ctx, int i)
{
    parse_ctx *c = ctx;
    parse_piece(c->L, &c->P[i]);
}

/* ---- plan: columns of the header, encoders -------------------------------------------------- */

/* Extended column named name (main file first, then the side tables), -1 if absent. */
static int find_col(const loader *L, char (*names)[RF_NAME_MAX], const char *name)
{
    for (int c = 0; c < L->ncols; c++)
        if (!strcmp(names[c], name)) return c;
    for (int j = 0; j < L->nside; j++) {
        const side *s = &L->sides[j];
        for (int c = 0; c < s->ncols; c++)
            if (c != s->key_col && !strcmp(s->names[c], name)) return s->base + c;
    }
    return -1;
}

static rf_status missing_column(const loader *L, char (*names)[RF_NAME_MAX], const char *name,
                                const char *role)
{
    char list[320];
    size_t o = 0;
    list[0] = '\0';
    for (int c = 0; c < L->ncols; c++) {
        int w = snprintf(list + o, sizeof list - o, "%s%s", c ? ", " : "", names[c]);
        if (w < 0 || (size_t)w >= sizeof list - o) {
            memcpy(list + sizeof list - 5, "...", 4);
            break;
        }
        o += (size_t)w;
    }
    char joined[64] = "";
    if (L->nside) snprintf(joined, sizeof joined, " or the %d joined file%s", L->nside, L->nside > 1 ? "s" : "");
    return rf_error_at(L->err, RF_EDATA, L->path, L->sc->no_header ? 0 : 1, L->sc->no_header ? 0 : 1,
                       "%s column '%s' not found in %s%s (columns: %s)", role, name,
                       L->sc->no_header ? "data.columns" : "header", joined, list);
}

/* Resolve every schema column to an extended column, and the encoders to use. */
static rf_status make_plan(loader *L, char (*names)[RF_NAME_MAX])
{
    const rf_schema *sc = L->sc;
    rf_encoders *e = L->enc;
    char why[256];
    for (int f = 0; f < sc->F; f++) {
        fplan *fp = &L->fp[f];
        const rf_cat_spec *cs = &sc->cat[f];
        if ((fp->col = find_col(L, names, cs->name)) < 0) return missing_column(L, names, cs->name, "categorical");
        fp->multi = cs->multi && !cs->bucket;
        fp->sep = cs->sep ? cs->sep : '|';
        if (L->fitting) {
            fp->kind = cs->bucket ? FK_BUCKET : cs->hash ? FK_HASH : FK_VOCAB;
            fp->size = cs->hash + 1;
            fp->seed = sc->hash_seed;
            if (fp->kind == FK_VOCAB) fp->vocab = e->vocab[f];
        } else if (e->field) {
            const rf_field_enc *fe = &e->field[f];
            fp->kind = fe->kind;
            fp->size = fe->size;
            fp->oov = fe->oov;
            fp->seed = fe->seed;
            fp->bounds = fe->bounds;
            fp->nb = fe->nbounds;
            fp->vocab = e->vocab[f];
            if (fp->kind == FK_BUCKET) fp->multi = 0;
        } else {
            fp->kind = e->vocab[f] ? FK_VOCAB : FK_IDS;
            fp->vocab = e->vocab[f];
            fp->size = e->id_size ? e->id_size[f] : 1;
        }
    }
    for (int d = 0; d < sc->D; d++) {
        dplan *dp = &L->dp[d];
        if ((dp->col = find_col(L, names, sc->dense[d])) < 0) return missing_column(L, names, sc->dense[d], "dense");
        if (!L->fitting && e->dense && d < e->D) {
            dp->enc = &e->dense[d];
            dp->fill = dp->enc->fill;
            dp->fill_value = dp->enc->fill_value;
        } else {
            dp->enc = NULL;
            dp->fill = sc->fill;
            dp->fill_value = sc->fill == RF_FILL_VALUE ? sc->fill_value : 0.0f;
            if (!L->fitting && sc->fill == RF_FILL_MEAN) dp->fill = RF_FILL_ERROR; /* nothing fitted */
        }
    }
    /* the row-at-a-time conversion of dense fields does not know NA strings: off when one of
     * them reads as a number and would be missing rather than that number */
    int na_used = 0;
    L->dense_enc = 0;
    for (int d = 0; d < sc->D; d++) {
        L->dense_enc |= L->dp[d].enc != NULL;
        na_used |= L->dp[d].fill != RF_FILL_ERROR;
    }
    L->dense_batch = sc->D > 0;
    for (int i = 0; i < sc->nna && na_used; i++) {
        double v;
        if (rf_parse_num_(sc->na[i], strlen(sc->na[i]), &v) == RF_NUM_OK) L->dense_batch = 0;
    }
    for (int k = 0; k < sc->K; k++) {
        lplan *lp = &L->lp[k];
        const char *spec = sc->label[k];
        lp->cb = -1;
        if ((lp->ca = find_col(L, names, spec)) >= 0) {
            memset(&lp->x, 0, sizeof lp->x);
            lp->x.kind = X_COL;
        } else {
            if (parse_expr(spec, &lp->x, why, sizeof why))
                return rf_error_at(L->err, RF_EUSAGE, L->path, 0, 0, "label %s", why);
            if ((lp->ca = find_col(L, names, lp->x.a)) < 0) return missing_column(L, names, lp->x.a, "label");
            if (lp->x.kind == X_PROD && (lp->cb = find_col(L, names, lp->x.b)) < 0)
                return missing_column(L, names, lp->x.b, "label");
        }
        for (int i = 0; i < sc->nnumeric; i++) {
            const char *nm = sc->numeric[i], *colon = strchr(nm, ':');
            size_t nl = colon ? (size_t)(colon - nm) : strlen(nm);
            if (nl != strlen(spec) || strncmp(nm, spec, nl)) continue;
            lp->numeric = 1;
            if (colon) {
                char *end;
                lp->lo = strtod(colon + 1, &end);
                if (*end != ':' || !(lp->hi = strtod(end + 1, &end), *end == '\0') || !(lp->hi > lp->lo))
                    return rf_errorf(L->err, RF_EUSAGE, "data.numeric_labels: \"%s\": expected name or name:lo:hi with lo < hi", nm);
                lp->scaled = 1;
            }
        }
    }
    L->nflt = sc->nfilter;
    for (int i = 0; i < sc->nfilter; i++) {
        fltplan *fl = &L->flt[i];
        if (parse_expr(sc->filter[i], &fl->x, why, sizeof why) || fl->x.kind == X_COL || fl->x.kind == X_PROD) {
            if (fl->x.kind == X_COL || fl->x.kind == X_PROD)
                snprintf(why, sizeof why, "\"%s\": expected column OP value (OP: >= > <= < == !=)", sc->filter[i]);
            return rf_errorf(L->err, RF_EUSAGE, "data.filter: %s", why);
        }
        if ((fl->col = find_col(L, names, fl->x.a)) < 0) return missing_column(L, names, fl->x.a, "filter");
    }
    L->weight_col = L->group_col = -1;
    if (sc->weight[0] && (L->weight_col = find_col(L, names, sc->weight)) < 0)
        return missing_column(L, names, sc->weight, "weight");
    if (sc->group[0] && (L->group_col = find_col(L, names, sc->group)) < 0)
        return missing_column(L, names, sc->group, "group");
    return RF_OK;
}

static rf_status check_schema(const rf_schema *sc, rf_error *err)
{
    if (sc->F < 0 || sc->F > RF_MAX_FIELDS || sc->D < 0 || sc->D > RF_MAX_DENSE || sc->K < 0 ||
        sc->K > RF_MAX_LABELS || sc->ncols < 0 || sc->ncols > RF_MAX_COLS || sc->njoin < 0 ||
        sc->njoin > RF_MAX_JOINS || sc->nfilter < 0 || sc->nfilter > RF_MAX_FILTERS || sc->nna < 0 ||
        sc->nna > RF_MAX_NA || sc->nnumeric < 0 || sc->nnumeric > RF_MAX_LABELS)
        return rf_errorf(err, RF_EUSAGE, "schema: bad sizes F=%d D=%d K=%d", sc->F, sc->D, sc->K);
    char d = sc->delim ? sc->delim : ',';
    if (sc->delim_str[0]) d = sc->delim_str[0];
    if (d == '"' || d == '\n' || d == '\r')
        return rf_errorf(err, RF_EUSAGE, "schema: invalid delimiter");
    for (int k = 0; k < sc->K; k++)
        if (strlen(sc->label[k]) >= RF_SPEC_MAX - 1)
            return rf_errorf(err, RF_EUSAGE, "schema: label spec '%s' too long", sc->label[k]);
    for (int f = 0; f < sc->F; f++)
        if (sc->cat[f].multi && (sc->cat[f].sep == '\n' || sc->cat[f].sep == '\r'))
            return rf_errorf(err, RF_EUSAGE, "schema: invalid separator for field '%s'", sc->cat[f].name);
    if (sc->no_header && sc->ncols < 1)
        return rf_errorf(err, RF_EUSAGE, "schema: a file without a header needs its column names (data.columns)");
    return RF_OK;
}

const char *rf_schema_delim(const rf_schema *s, char buf[RF_DELIM_MAX])
{
    if (s->delim_str[0]) {
        snprintf(buf, RF_DELIM_MAX, "%s", s->delim_str);
    } else {
        buf[0] = s->delim ? s->delim : ',';
        buf[1] = '\0';
    }
    return buf;
}

/* ---- reading rounds ------------------------------------------------------------------------ */

/* The input's hash, computed by a thread of its own behind the parse: the bytes of a round are
 * handed over once read and hashed while the round is parsed (hs_wait before the buffer
 * changes). Without the thread (it could not be started), hs_submit hashes in place. */
typedef struct {
    XXH3_state_t *st;
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    const char *p;
    size_t n; /* bytes handed over and not hashed yet (0: idle) */
    int stop, started;
} hasher;

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

static hasher *hs_create(void)
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

static uint64_t hs_digest(hasher *h)
{
    hs_wait(h);
    return XXH3_64bits_digest(h->st);
}

static void hs_free(hasher *h)
{
    if (!h) return;
    if (h->started) rf_thread_stop_(h->th, &h->mu, &h->cv, &h->stop);
    XXH3_freeState(h->st);
    free(h);
}

typedef struct {
    input in;
    char *buf;
    size_t cap, len, pos;
    int eof;
    long line; /* physical line of buf[pos] */
    hasher *hs;       /* hash of the bytes read (plain files, when asked), or NULL */
    int threads;      /* > 1: a regular file is read by this many threads at once */
    prefetch *pf;     /* a compressed input being inflated ahead, or NULL */
    rf_pool *pool;    /* the loader's threads */
} textbuf;

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
static rf_status tb_fill(textbuf *b, const char *path, rf_error *err)
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
    if (b->hs) hs_submit(b->hs, b->buf + len0, b->len - len0);
    b->buf[b->len] = '\n';
    memset(b->buf + b->len + 1, 0, BUF_PAD - 1); /* defined bytes for the 64-byte loads */
    return RF_OK;
}

static void tokctx_init(tokctx *x, unsigned char *cls, const char *dstr, int quote)
{
    memset(cls, 0, 256);
    x->dstr = dstr;
    x->dl = (int)strlen(dstr);
    x->d0 = dstr[0];
    x->quote = quote;
    cls[(unsigned char)x->d0] = 1;
    cls['\n'] = 1;
    cls['\r'] = 1;
    x->cls = cls;
    x->simd = simd_level();
    x->pad_end = NULL;
}

static void tokctx_set(tokctx *x, const textbuf *b)
{
    x->buf = b->buf;
    x->end = b->buf + b->len;
    x->eof = b->eof;
    x->pad_end = x->end; /* BUF_PAD > 64 readable bytes follow the sentinel */
}

/* Read a side table completely. */
static rf_status load_side(const rf_join_spec *js, side *s, rf_error *err)
{
    memset(s, 0, sizeof *s);
    snprintf(s->path, sizeof s->path, "%s", js->path);
    const char *path = js->path;
    textbuf b = {0};
    tokens t = {0};
    unsigned char cls[256];
    tokctx x;
    char dstr[RF_DELIM_MAX];
    snprintf(dstr, sizeof dstr, "%s", js->delim[0] ? js->delim : ",");
    tokctx_init(&x, cls, dstr, 1);
    char *conv = NULL, *scr = NULL;
    size_t conv_cap = 0, scr_cap = 0;
    rf_status st = in_open(&b.in, path, err);
    if (st) return st;
    b.cap = (size_t)1 << 20;
    b.buf = rf_big_realloc_(NULL, b.cap + BUF_PAD);
    if (!b.buf) {
        in_close(&b.in);
        return rf_errorf(err, RF_ENOMEM, "out of memory");
    }
    b.line = 1;
    int have_header = js->no_header;
    if (js->no_header) {
        s->ncols = js->ncols;
        s->names = calloc((size_t)s->ncols, sizeof *s->names);
        if (!s->names) {
            st = rf_errorf(err, RF_ENOMEM, "out of memory");
            goto done;
        }
        for (int c = 0; c < s->ncols; c++) memcpy(s->names[c], js->cols[c], RF_NAME_MAX);
    }
    if ((st = tb_fill(&b, path, err))) goto done;
    if (b.len >= 3 && memcmp(b.buf, "\xEF\xBB\xBF", 3) == 0) b.pos = 3;
    for (;;) {
        tokctx_set(&x, &b);
        int tk = tokenize_row(&x, b.buf + b.pos, &t);
        if (tk == TOK_MORE) {
            if ((st = tb_fill(&b, path, err))) goto done;
            continue;
        }
        if (tk == TOK_EOF) break;
        if (tk == TOK_NOMEM) {
            st = rf_errorf(err, RF_ENOMEM, "out of memory");
            goto done;
        }
        if (tk == TOK_UNTERM) {
            st = rf_error_at(err, RF_EDATA, path, b.line, 0, "unterminated quoted field");
            goto done;
        }
        const span *f0 = &t.f[0];
        int blank = t.n == 1 && f0->len == 0 && f0->start == f0->p;
        if (!blank) {
            if (t.bad) {
                st = rf_error_at(err, RF_EDATA, path, b.line, (long)(t.bad - (b.buf + b.pos)) + 1,
                                 "unexpected character after closing quote");
                goto done;
            }
            if (!have_header) {
                s->ncols = t.n;
                s->names = calloc((size_t)t.n, sizeof *s->names);
                if (!s->names) {
                    st = rf_errorf(err, RF_ENOMEM, "out of memory");
                    goto done;
                }
                for (int c = 0; c < t.n; c++) {
                    size_t n = t.f[c].len < RF_NAME_MAX ? t.f[c].len : RF_NAME_MAX - 1;
                    memcpy(s->names[c], t.f[c].p, n); /* header names: no "" escapes expected */
                }
                have_header = 1;
            } else {
                if (t.n != s->ncols) {
                    st = rf_error_at(err, RF_EDATA, path, b.line, 1, "expected %d fields, found %d", s->ncols, t.n);
                    goto done;
                }
                if (s->rows == s->rows_cap) {
                    size_t nc = s->rows_cap ? 2 * s->rows_cap : 1024;
                    size_t *no = realloc(s->off, (nc * (size_t)s->ncols + 1) * sizeof *no);
                    if (!no) {
                        st = rf_errorf(err, RF_ENOMEM, "out of memory");
                        goto done;
                    }
                    s->off = no;
                    s->rows_cap = nc;
                }
                for (int c = 0; c < t.n; c++) {
                    const span *sp = &t.f[c];
                    const char *v = sp->p;
                    size_t n = sp->len;
                    if (sp->esc) {
                        if (scr_cap < n + 1) {
                            char *ns = realloc(scr, n + 64);
                            if (!ns) {
                                st = rf_errorf(err, RF_ENOMEM, "out of memory");
                                goto done;
                            }
                            scr = ns;
                            scr_cap = n + 64;
                        }
                        size_t o = 0;
                        for (size_t i = 0; i < n; i++) {
                            scr[o++] = v[i];
                            if (v[i] == '"') i++;
                        }
                        v = scr;
                        n = o;
                    }
                    if (js->latin1 && has_high(v, n)) {
                        long m = latin1_to_utf8(v, n, &conv, &conv_cap);
                        if (m < 0) {
                            st = rf_errorf(err, RF_ENOMEM, "out of memory");
                            goto done;
                        }
                        v = conv;
                        n = (size_t)m;
                    }
                    if (s->text_len + n + 1 > s->text_cap) {
                        size_t nc = s->text_cap ? 2 * s->text_cap : 65536;
                        while (nc < s->text_len + n + 1) nc *= 2;
                        char *nt = realloc(s->text, nc + TEXT_PAD);
                        if (!nt) {
                            st = rf_errorf(err, RF_ENOMEM, "out of memory");
                            goto done;
                        }
                        memset(nt + s->text_len, 0, nc + TEXT_PAD - s->text_len);
                        s->text = nt;
                        s->text_cap = nc;
                    }
                    s->off[s->rows * (size_t)s->ncols + (size_t)c] = s->text_len;
                    memcpy(s->text + s->text_len, v, n);
                    s->text_len += n;
                }
                s->rows++;
                s->off[s->rows * (size_t)s->ncols] = s->text_len;
            }
        }
        b.pos = (size_t)(t.next - b.buf);
        b.line += t.lines;
    }
    if (!have_header || !s->ncols) {
        st = rf_error_at(err, RF_EDATA, path, 1, 1, "empty file");
        goto done;
    }
    if (!s->text && !(s->text = calloc(1, 1 + TEXT_PAD))) {
        st = rf_errorf(err, RF_ENOMEM, "out of memory");
        goto done;
    }
    if (!s->off && !(s->off = calloc(1, sizeof *s->off))) {
        st = rf_errorf(err, RF_ENOMEM, "out of memory");
        goto done;
    }
    s->key_col = -1;
    const char *key = js->key[0] ? js->key : js->on;
    for (int c = 0; c < s->ncols; c++)
        if (!strcmp(s->names[c], key)) s->key_col = c;
    if (s->key_col < 0) {
        st = rf_error_at(err, RF_EDATA, path, 1, 1, "join key column '%s' not found", key);
        goto done;
    }
    if (s->rows >= UINT32_MAX / 2) {
        st = rf_error_at(err, RF_EDATA, path, 0, 0, "too many rows for a joined table");
        goto done;
    }
    size_t size = 64;
    while (size < 2 * s->rows + 2) size *= 2;
    s->slots = calloc(size, sizeof *s->slots);
    if (!s->slots) {
        st = rf_errorf(err, RF_ENOMEM, "out of memory");
        goto done;
    }
    s->mask = size - 1;
    for (size_t r = 0; r < s->rows; r++) {
        uint32_t l;
        const char *k = side_field(s, r, s->key_col, &l);
        if (side_find(s, k, l) >= 0) continue; /* the first row of a key wins */
        uint64_t h = XXH3_64bits(k, l);
        size_t i = (size_t)h & s->mask;
        while (s->slots[i]) i = (i + 1) & s->mask;
        s->slots[i] = (uint32_t)r + 1;
    }
done:
    in_close(&b.in);
    free(b.buf);
    free(t.f);
    free(conv);
    free(scr);
    if (st) side_free(s);
    return st;
}

/* ---- fitting after the last row --------------------------------------------------------------- */

static rf_status fit_all(loader *L, size_t a)
{
    cols *o = &L->out;
    size_t n = o->n;
    int F = L->F ? L->F : 1;
    rf_encoders *e = L->enc;
    uint32_t minc = L->sc->min_count ? L->sc->min_count : 1;
    uint32_t *cnt[RF_MAX_FIELDS] = {0}, *map[RF_MAX_FIELDS] = {0};
    rf_status st = RF_OK;
    /* vocabulary counts on the training rows: one pass over the rows for all fields */
    for (int f = 0; f < L->F; f++)
        if (L->fp[f].kind == FK_VOCAB &&
            !(cnt[f] = calloc((size_t)rf_vocab_entries_(L->fp[f].vocab) + 1, sizeof *cnt[f]))) {
            st = rf_errorf(L->err, RF_ENOMEM, "out of memory");
            goto done;
        }
    for (size_t i = 0; i < a; i++) {
        const uint32_t *row = o->cat + i * (size_t)F;
        for (int f = 0; f < L->F; f++)
            if (cnt[f] && !L->fp[f].multi && cnt[f][row[f]] != UINT32_MAX) cnt[f][row[f]]++;
    }
    for (int f = 0; f < L->F; f++) {
        fplan *fp = &L->fp[f];
        rf_field_enc *fe = &e->field[f];
        fe->kind = fp->kind;
        if (fp->kind == FK_VOCAB) {
            uint32_t m = rf_vocab_entries_(fp->vocab);
            if (fp->multi) {
                uint64_t end = o->mv_off[f][a];
                for (uint64_t j = 0; j < end; j++)
                    if (cnt[f][o->mv_ids[f][j]] != UINT32_MAX) cnt[f][o->mv_ids[f][j]]++;
            }
            if (rf_vocab_freeze_counts_(fp->vocab, cnt[f], L->sc->cat[f].min_count ? L->sc->cat[f].min_count : minc,
                                        &map[f])) {
                st = rf_errorf(L->err, RF_ENOMEM, "out of memory");
                goto done;
            }
            uint32_t kept = rf_vocab_size(fp->vocab) - 1;
            fe->oov = L->sc->oov == RF_OOV_OWN ? kept + 1 : 0;
            fe->size = kept + 1 + (L->sc->oov == RF_OOV_OWN);
            for (uint32_t i = 1; i <= m; i++)
                if (!map[f][i]) map[f][i] = fe->oov;
            if (fp->multi) {
                for (uint64_t j = 0; j < o->mv_len[f]; j++) o->mv_ids[f][j] = map[f][o->mv_ids[f][j]];
                free(map[f]);
                map[f] = NULL;
            }
        } else if (fp->kind == FK_HASH) {
            fe->size = fp->size;
            fe->seed = fp->seed;
        } else if (fp->kind == FK_BUCKET) {
            /* the column holds float bits */
            float *vals = malloc((a ? a : 1) * sizeof *vals);
            if (!vals) {
                st = rf_errorf(L->err, RF_ENOMEM, "out of memory");
                goto done;
            }
            for (size_t i = 0; i < a; i++) memcpy(&vals[i], &o->cat[i * (size_t)F + f], sizeof(float));
            rf_status s2 = rf_bucket_fit_(vals, 1, a, L->sc->cat[f].bucket, &fe->bounds, &fe->nbounds);
            free(vals);
            if (s2) {
                st = rf_errorf(L->err, RF_ENOMEM, "out of memory");
                goto done;
            }
            fe->size = fe->nbounds + 2;
        }
        e->id_size[f] = fe->size;
        if (fp->kind != FK_VOCAB) {
            rf_vocab_free(e->vocab[f]);
            e->vocab[f] = NULL;
        }
    }
    /* final ids of single-valued vocabulary and bucket fields: one pass over the rows */
    int any = 0;
    for (int f = 0; f < L->F; f++) any |= map[f] != NULL || L->fp[f].kind == FK_BUCKET;
    if (any) {
        const fplan *fps = L->fp;
        const rf_field_enc *fes = e->field;
        int nF = L->F;
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < n; i++) {
            uint32_t *row = o->cat + i * (size_t)F;
            for (int f = 0; f < nF; f++) {
                if (map[f]) {
                    row[f] = map[f][row[f]];
                } else if (fps[f].kind == FK_BUCKET) {
                    float v;
                    memcpy(&v, &row[f], sizeof v);
                    row[f] = rf_bucket_id_(fes[f].bounds, fes[f].nbounds, v);
                }
            }
        }
    }
    /* dense: statistics of the training rows, then fill + normalise every row (streamed dense
     * values are final: no fill, no normalisation) */
    if (L->D && !L->dense_stream) {
        const rf_schema *sc = L->sc;
        int D = L->D, norm[RF_MAX_DENSE];
        for (int d = 0; d < D; d++) norm[d] = sc->dense_norm[d] ? sc->dense_norm[d] - 1 : sc->norm;
        int need = sc->fill != RF_FILL_ERROR;
        for (int d = 0; d < D; d++) need |= norm[d] != RF_NORM_NONE;
        if (!need) { /* raw values, nothing missing: no statistics needed */
            for (int d = 0; d < D; d++) {
                memset(&e->dense[d], 0, sizeof e->dense[d]);
                e->dense[d].norm = RF_NORM_NONE;
                e->dense[d].scale = 1;
            }
        } else if (rf_dense_fit_all_(o->dense, a, D, norm, sc->fill, sc->fill_value, e->dense)) {
            st = rf_errorf(L->err, RF_ENOMEM, "out of memory");
            goto done;
        }
        int apply = sc->fill != RF_FILL_ERROR;
        for (int d = 0; d < D; d++) apply |= e->dense[d].norm != RF_NORM_NONE;
        if (apply) {
            const rf_dense_enc *de = e->dense;
#pragma omp parallel for schedule(static)
            for (size_t i = 0; i < n; i++) {
                float *x = o->dense + i * (size_t)D;
                for (int d = 0; d < D; d++) x[d] = dense_apply(isnan(x[d]) ? de[d].fill_value : x[d], &de[d]);
            }
        }
    }
done:
    for (int f = 0; f < RF_MAX_FIELDS; f++) {
        free(cnt[f]);
        free(map[f]);
    }
    return st;
}

/* ---- rf_load_csv ------------------------------------------------------------------------------- */

#define DEFAULT_BLOCK ((size_t)4 << 20)

static void loader_free(loader *L)
{
    cols_free(&L->out);
    for (int j = 0; j < L->nside; j++) side_free(&L->sides[j]);
}

/* Shrink a buffer to its used size (best effort). */
static void *shrink(void *p, size_t bytes)
{
    void *q = realloc(p, bytes ? bytes : 1);
    return q ? q : p;
}

/* Guess where row boundaries are: for each target offset the first '\n' at or after it with
 * an even number of quotes since the region start (RFC 4180 quote parity). */
static void guess_splits(const char *s, const char *e, int np, const char **st)
{
    size_t total = (size_t)(e - s);
    st[0] = s;
    const char *scan = s;
    size_t quotes = 0;
    for (int i = 1; i < np; i++) {
        const char *target = s + total * (size_t)i / (size_t)np;
        if (target < st[i - 1]) target = st[i - 1];
        const char *p = target;
        for (;;) {
            const char *nl = memchr(p, '\n', (size_t)(e - p));
            if (!nl) {
                st[i] = e;
                break;
            }
            quotes += count_quotes(scan, (size_t)(nl - scan));
            scan = nl;
            if (!(quotes & 1)) {
                st[i] = nl + 1;
                break;
            }
            p = nl + 1;
        }
    }
}

rf_status rf_load_csv(const char *path, const rf_schema *schema, rf_encoders **enc,
                      rf_load_opts *opts, rf_dataset **out, rf_error *err)
{
    return rf_load_csv_hooked_(path, schema, enc, opts, NULL, out, err);
}

rf_status rf_load_csv_hooked_(const char *path, const rf_schema *schema, rf_encoders **enc, rf_load_opts *opts,
                              rf_load_hooks_ *hooks, rf_dataset **out, rf_error *err)
{
    if (!path || !schema || !enc || !out)
        return rf_errorf(err, RF_EINTERNAL, "rf_load_csv: NULL argument");
    *out = NULL;
    rf_status st = check_schema(schema, err);
    if (st) return st;
    if (*enc && ((*enc)->F != schema->F || (schema->F && !(*enc)->vocab)))
        return rf_errorf(err, RF_EUSAGE, "encoders have %d fields, schema has %d", (*enc)->F,
                         schema->F);
    for (int f = 0; *enc && !(*enc)->field && f < schema->F; f++)
        if (!(*enc)->vocab[f] && !((*enc)->id_size && (*enc)->id_size[f] > 0))
            return rf_errorf(err, RF_EUSAGE, "field %d (%s) has neither a vocabulary nor an id range", f,
                             schema->cat[f].name);

    loader *L = calloc(1, sizeof *L);
    piece *P = NULL;
    int np_alloc = 0;
    textbuf b = {0};
    b.in.fd = -1;
    if (!L) return rf_errorf(err, RF_ENOMEM, "out of memory");
    L->sc = schema;
    L->path = path;
    L->err = err;
    L->skip = opts && opts->skip_bad_rows;
    L->F = schema->F;
    L->D = schema->D;
    L->K = schema->K;
    L->latin1 = schema->latin1;
    L->weight_col = L->group_col = -1;
    L->hooks = hooks;
    if (hooks) hooks->hashed = 0;
    rf_schema_delim(schema, L->dstr);
    tokctx_init(&L->tx, L->cls, L->dstr, 1);
    if (opts) opts->bad_rows = opts->fit_rows = opts->filtered_rows = 0;
    size_t max_rows = opts ? opts->max_rows : 0;
    int T = opts && opts->threads > 0 ? opts->threads : omp_get_max_threads();
    if (T < 1) T = 1;
    if (T > 64) T = 64;
    size_t block = opts && opts->block_bytes ? opts->block_bytes : DEFAULT_BLOCK;
    rf_dataset *ds = NULL;

    if (opts && opts->spill_dir && opts->spill_dir[0]) {
        if (!(L->out.spill = calloc(1, sizeof *L->out.spill))) {
            st = rf_errorf(err, RF_ENOMEM, "out of memory");
            goto fail;
        }
        snprintf(L->out.spill->dir, sizeof L->out.spill->dir, "%s", opts->spill_dir);
    }
    for (int j = 0; j < schema->njoin; j++) {
        if ((st = load_side(&schema->join[j], &L->sides[j], err))) goto fail;
        L->nside = j + 1;
    }
    if ((st = in_open(&b.in, path, err))) goto fail;
    if (hooks && hooks->want_hash && b.in.kind == IN_PLAIN) {
        if (!(b.hs = hs_create())) {
            st = rf_errorf(err, RF_ENOMEM, "out of memory");
            goto fail;
        }
    }
    b.cap = block * (size_t)T;
    if (b.cap < 4096) b.cap = 4096;
    b.threads = T;
    L->pool = rf_pool_create(T);
    b.pool = L->pool;
    if (b.in.kind != IN_PLAIN) b.pf = pf_start(&b.in, path);
    b.buf = rf_big_realloc_(NULL, b.cap + BUF_PAD);
    if (!b.buf) {
        st = rf_errorf(err, RF_ENOMEM, "out of memory");
        goto fail;
    }
    b.line = 1;
    if ((st = tb_fill(&b, path, err))) goto fail;
    if (b.len >= 3 && memcmp(b.buf, "\xEF\xBB\xBF", 3) == 0) b.pos = 3;
    /* plain file: estimate the row count from the size and the first block's line length */
    if (b.in.kind == IN_PLAIN && !b.eof && b.in.size > 0) {
        size_t nl = 0;
        for (const char *q = b.buf; (q = memchr(q, '\n', (size_t)(b.buf + b.len - q))); q++) nl++;
        if (nl > 1) {
            double est = (double)b.in.size * (double)nl / (double)b.len * 1.02 + 64;
            if (est < 1e12) L->est_rows = (size_t)est;
        }
    }
    if (max_rows && L->est_rows > max_rows) L->est_rows = max_rows;

    if (*enc) {
        L->enc = *enc;
    } else {
        if (!(L->enc = rf_encoders_new_(schema->F, schema->D))) {
            st = rf_errorf(err, RF_ENOMEM, "out of memory");
            goto fail;
        }
        for (int f = 0; f < schema->F; f++)
            if (!schema->cat[f].hash && !schema->cat[f].bucket && !(L->enc->vocab[f] = rf_vocab_create())) {
                st = rf_errorf(err, RF_ENOMEM, "out of memory");
                goto fail;
            }
        L->fitting = 1;
    }
    L->direct = T == 1;

    /* header (or the configured column names) */
    char (*names)[RF_NAME_MAX] = NULL;
    long header_line = 0;
    piece hp;
    memset(&hp, 0, sizeof hp);
    if (schema->no_header) {
        L->ncols = schema->ncols;
        names = calloc((size_t)L->ncols, sizeof *names);
        if (!names) {
            st = rf_errorf(err, RF_ENOMEM, "out of memory");
            goto fail;
        }
        for (int c = 0; c < L->ncols; c++) memcpy(names[c], schema->cols[c], RF_NAME_MAX);
    } else {
        for (;;) {
            tokctx_set(&L->tx, &b);
            hp.row = b.buf + b.pos;
            int tk = tokenize_row(&L->tx, b.buf + b.pos, &hp.t);
            if (tk == TOK_MORE) {
                if ((st = tb_fill(&b, path, err))) break;
                continue;
            }
            if (tk == TOK_EOF) break;
            if (tk == TOK_NOMEM) {
                st = rf_errorf(err, RF_ENOMEM, "out of memory");
                break;
            }
            if (tk == TOK_UNTERM) {
                long line, col;
                locate(&hp, hp.t.unterm, &line, &col);
                st = rf_error_at(err, RF_EDATA, path, b.line + line, col, "unterminated quoted field");
                break;
            }
            const span *f0 = &hp.t.f[0];
            if (!(hp.t.n == 1 && f0->len == 0 && f0->start == f0->p)) {
                if (hp.t.bad) {
                    long line, col;
                    locate(&hp, hp.t.bad, &line, &col);
                    st = rf_error_at(err, RF_EDATA, path, b.line + line, col,
                                     "unexpected character after closing quote");
                    break;
                }
                L->ncols = hp.t.n;
                names = calloc((size_t)L->ncols, sizeof *names);
                if (!names) {
                    st = rf_errorf(err, RF_ENOMEM, "out of memory");
                    break;
                }
                for (int c = 0; c < L->ncols; c++) {
                    size_t n;
                    const char *s = field_text(&hp, &hp.t.f[c], &n);
                    if (!s) {
                        st = rf_errorf(err, RF_ENOMEM, "out of memory");
                        break;
                    }
                    if (n >= RF_NAME_MAX) n = RF_NAME_MAX - 1;
                    memcpy(names[c], s, n);
                }
                header_line = b.line;
                b.pos = (size_t)(hp.t.next - b.buf);
                b.line += hp.t.lines;
                break;
            }
            b.pos = (size_t)(hp.t.next - b.buf);
            b.line += hp.t.lines;
        }
        free(hp.t.f);
        free(hp.scratch);
        if (st) goto fail_names;
        if (!names) {
            st = rf_error_at(err, RF_EDATA, path, 1, 1, "empty file");
            goto fail_names;
        }
    }
    L->next = L->ncols;
    for (int j = 0; j < L->nside; j++) {
        side *s = &L->sides[j];
        s->base = L->next;
        L->next += s->ncols;
        s->on_col = -1;
        for (int c = 0; c < L->ncols; c++)
            if (!strcmp(names[c], schema->join[j].on)) s->on_col = c;
        if (s->on_col < 0) {
            st = missing_column(L, names, schema->join[j].on, "join");
            goto fail_names;
        }
    }
    if ((st = make_plan(L, names))) goto fail_names;
    free(names);
    names = NULL;
    /* dense values final as parsed: stream them to the sink instead of keeping them */
    if (hooks && hooks->dense_sink && L->D && !max_rows) {
        int ok = 1;
        if (L->fitting) {
            ok = schema->fill == RF_FILL_ERROR;
            for (int d = 0; d < L->D && ok; d++)
                ok = (schema->dense_norm[d] ? schema->dense_norm[d] - 1 : schema->norm) == RF_NORM_NONE;
        }
        L->dense_stream = ok;
    }

    P = calloc((size_t)T, sizeof *P);
    if (!P) {
        st = rf_errorf(err, RF_ENOMEM, "out of memory");
        goto fail;
    }
    np_alloc = T;
    int done = 0;
    while (!done) {
        if (b.pos == b.len && b.eof) break;
        tokctx_set(&L->tx, &b);
        const char *rs = b.buf + b.pos, *re = b.buf + b.len;
        size_t region = (size_t)(re - rs);
        int np = T;
        if (region < (size_t)np * 65536) np = (int)(region / 65536) + 1;
        if (np > T) np = T;
        const char *starts[64];
        guess_splits(rs, re, np, starts);
        for (int i = 0; i < np; i++) {
            P[i].start = starts[i];
            P[i].hint = i + 1 < np ? starts[i + 1] : re;
        }
        parse_ctx pc = {L, P};
        rf_pool_run(L->pool, np, parse_task, &pc);
        /* check and merge in order */
        const char *expect = rs;
        long line = b.line;
        int progressed = 0, merged = 0;
        for (int i = 0; i < np && !done; i++) {
            if (P[i].start != expect) {
                piece_reset_vocab(&P[i]); /* its parse started in the wrong place */
                if (expect >= P[i].hint && i + 1 < np) { /* swallowed by a long row: empty piece */
                    P[i].start = P[i].end = expect;
                    P[i].c.n = 0;
                    P[i].lines = 0;
                    P[i].more = 0;
                    P[i].failed = 0;
                    P[i].bad = P[i].filtered = 0;
                    continue;
                }
                P[i].start = expect;
                parse_piece(L, &P[i]);
            }
            if (P[i].failed) {
                *err = P[i].err;
                if (P[i].failed == 1) err->line += line;
                st = err->code ? err->code : RF_EDATA;
                goto fail;
            }
            if ((st = reserve_piece(L, &P[i]))) goto fail;
            merged = i + 1;
            L->bad_rows += P[i].bad;
            L->filtered += P[i].filtered;
            line += P[i].lines;
            expect = P[i].end;
            progressed |= P[i].end != P[i].start;
            if (max_rows && L->out.n >= max_rows) done = 1;
            if (P[i].more) break; /* everything after is inside an incomplete row */
        }
        /* pieces not merged this round parsed text that is parsed again next round: their
         * vocabularies would hold keys out of the file's order */
        for (int i = merged; i < np; i++) piece_reset_vocab(&P[i]);
        if (merged && (st = copy_pieces(L, P, merged))) goto fail;
        b.pos = (size_t)(expect - b.buf);
        b.line = line;
        if (done) break;
        if (b.eof && b.pos == b.len) break;
        if (!progressed && b.eof) break; /* cannot happen: at EOF every row completes */
        if ((st = tb_fill(&b, path, err))) goto fail;
    }
    if (max_rows && L->out.n > max_rows) {
        L->out.n = max_rows;
        for (int f = 0; f < L->F; f++)
            if (L->fp[f].multi) L->out.mv_len[f] = L->out.mv_off[f][max_rows];
    }
    if (L->out.n == 0) {
        long at = schema->no_header ? 1 : header_line + 1;
        if (L->bad_rows)
            st = rf_error_at(err, RF_EDATA, path, at, 1, "no data rows (%zu bad rows skipped)", L->bad_rows);
        else if (schema->no_header && !L->filtered)
            st = rf_error_at(err, RF_EDATA, path, 1, 1, "empty file");
        else
            st = rf_error_at(err, RF_EDATA, path, at, 1, "no data rows%s", L->filtered ? " (all filtered out)" : "");
        goto fail;
    }

    size_t n = L->out.n, fit_n = n;
    if (L->fitting) {
        size_t a, bb;
        rf_split_points(L->out.group, n, opts ? opts->valid_frac : 0, opts ? opts->test_frac : 0, &a, &bb);
        fit_n = a;
        if ((st = fit_all(L, a))) goto fail;
    }

    /* assemble the dataset: hand over the column arrays */
    ds = rf_dataset_alloc(0, L->F, L->D, L->K);
    if (!ds) {
        st = rf_errorf(err, RF_ENOMEM, "out of memory");
        goto fail;
    }
    cols *o = &L->out;
    ds->n = n;
    struct rf_mapping *sm = NULL;
    if (o->spill) { /* the spilled arrays become the dataset's mapping (unmapped when freed) */
        for (int f = 0; f < L->F; f++)
            if (L->fp[f].multi && !o->mv_ids[f] && !(o->mv_ids[f] = cgrow(o, (void **)&o->mv_ids[f], 4))) {
                st = rf_errorf(err, RF_ENOMEM, "out of memory (spill files in %s)", o->spill->dir);
                goto fail;
            }
        sm = calloc(1, sizeof *sm);
        if (sm) sm->extra = calloc((size_t)o->spill->n + 1, sizeof *sm->extra);
        if (!sm || !sm->extra) {
            if (sm) free(sm);
            st = rf_errorf(err, RF_ENOMEM, "out of memory");
            goto fail;
        }
        for (int i = 0; i < o->spill->n; i++) {
            spill_ent *x = &o->spill->e[i];
            sm->extra[i].p = *x->slot;
            sm->extra[i].n = x->bytes;
            close(x->fd);
        }
        sm->nextra = o->spill->n;
        sm->refs = 1;
        o->spill->n = 0; /* owned by the mapping now */
    }
#define TAKE(x, bytes) (sm ? (void *)(x) : shrink((x), (bytes)))
    free(ds->cat);
    ds->cat = TAKE(o->cat, n * (size_t)(L->F ? L->F : 1) * sizeof *o->cat);
    o->cat = NULL;
    free(ds->dense);
    ds->dense = L->D && o->dense ? TAKE(o->dense, n * (size_t)L->D * sizeof *o->dense) : NULL;
    o->dense = NULL;
    free(ds->labels);
    ds->labels = TAKE(o->labels, n * (size_t)(L->K ? L->K : 1) * sizeof *o->labels);
    o->labels = NULL;
    if (o->weight) ds->weight = TAKE(o->weight, n * sizeof *o->weight);
    o->weight = NULL;
    if (o->group) ds->group = TAKE(o->group, n * sizeof *o->group);
    o->group = NULL;
    ds->map = sm;
    for (int f = 0; f < L->F; f++) {
        rf_field *fd = &ds->fields[f];
        const fplan *fp = &L->fp[f];
        snprintf(fd->name, sizeof fd->name, "%s", schema->cat[f].name);
        fd->multi = fp->multi;
        fd->pooling = fp->multi ? schema->cat[f].pooling : RF_POOL_SUM;
        fd->sep = fp->multi ? fp->sep : schema->cat[f].sep;
        if (L->enc->field) fd->vocab = L->enc->field[f].size;
        else fd->vocab = L->enc->vocab[f] ? rf_vocab_size(L->enc->vocab[f]) : L->enc->id_size[f];
        if (fd->multi) {
            ds->mv_off[f] = TAKE(o->mv_off[f], (n + 1) * sizeof *o->mv_off[f]);
            o->mv_off[f] = NULL;
            if (!o->mv_ids[f]) o->mv_ids[f] = malloc(sizeof *o->mv_ids[f]);
            ds->mv_ids[f] = o->mv_ids[f] ? TAKE(o->mv_ids[f], o->mv_len[f] * sizeof *o->mv_ids[f]) : NULL;
            o->mv_ids[f] = NULL;
            if (!ds->mv_ids[f]) {
                st = rf_errorf(err, RF_ENOMEM, "out of memory");
                goto fail;
            }
        }
    }
#undef TAKE
    for (int d = 0; d < L->D; d++) snprintf(ds->dense_names[d], RF_NAME_MAX, "%s", schema->dense[d]);
    for (int k = 0; k < L->K; k++) snprintf(ds->label_names[k], RF_NAME_MAX, "%s", schema->label[k]);

    if (opts) {
        opts->bad_rows = L->bad_rows;
        opts->fit_rows = fit_n;
        opts->filtered_rows = L->filtered;
    }
    if (L->fitting) *enc = L->enc;
    if (hooks) {
        if (b.hs && b.eof && b.pos == b.len) {
            hooks->hashed = 1;
            hooks->input_hash = hs_digest(b.hs);
        }
    }
    goto cleanup;

fail_names:
    free(names);
fail:
    if (opts) {
        opts->bad_rows = L->bad_rows;
        opts->filtered_rows = L->filtered;
    }
    rf_dataset_free(ds);
    ds = NULL;
    if (L->fitting) rf_encoders_free(L->enc);
cleanup:
    pf_free(b.pf);
    rf_pool_free(L->pool);
    in_close(&b.in);
    hs_free(b.hs); /* before the buffer it may be reading */
    free(b.buf);
    for (int i = 0; i < np_alloc; i++) piece_free(&P[i]);
    free(P);
    spill_set *spill = L->out.spill;
    loader_free(L);
    free(spill);
    free(L);
    *out = ds;
    if (!ds && st == RF_OK) st = RF_EINTERNAL;
    return ds ? RF_OK : st;
}

/* ---- derived labels (simulator data) ------------------------------------------------------------ */

rf_status rf_dataset_derive_labels(rf_dataset *ds, const char (*specs)[RF_SPEC_MAX], int n, rf_error *err)
{
    int add = 0;
    expr xs[RF_MAX_LABELS];
    int ca[RF_MAX_LABELS], cb[RF_MAX_LABELS], which[RF_MAX_LABELS];
    char why[256];
    for (int i = 0; i < n; i++) {
        if (rf_dataset_label_index(ds, specs[i]) >= 0) continue;
        int dup = 0;
        for (int j = 0; j < add; j++)
            if (!strcmp(specs[which[j]], specs[i])) dup = 1;
        if (dup) continue;
        if (strlen(specs[i]) >= RF_NAME_MAX)
            return rf_errorf(err, RF_EUSAGE, "label \"%s\": longer than %d characters", specs[i], RF_NAME_MAX - 1);
        expr *x = &xs[add];
        if (parse_expr(specs[i], x, why, sizeof why)) return rf_errorf(err, RF_EUSAGE, "label %s", why);
        if (x->kind == X_COL || x->kind == X_STR) {
            char have[512] = "";
            for (int k = 0; k < ds->K; k++)
                snprintf(have + strlen(have), sizeof have - strlen(have), "%s%s", k ? ", " : "", ds->label_names[k]);
            return rf_errorf(err, RF_EUSAGE, "label \"%s\" is not in the data (labels: %s)", specs[i], have);
        }
        ca[add] = rf_dataset_label_index(ds, x->a);
        cb[add] = x->kind == X_PROD ? rf_dataset_label_index(ds, x->b) : 0;
        if (ca[add] < 0 || cb[add] < 0)
            return rf_errorf(err, RF_EUSAGE, "label \"%s\": column \"%s\" is not a label of the data", specs[i],
                             ca[add] < 0 ? x->a : x->b);
        which[add++] = i;
    }
    if (!add) return RF_OK;
    /* a mapped dataset (a cache) gets its new label array as an anonymous mapping handed to the
     * file mapping, released with it */
    int mapped = ds->map != NULL;
    if (mapped && ds->truth) return rf_errorf(err, RF_EUSAGE, "cannot derive labels of a mapped dataset with truths");
    int K = ds->K, K2 = K + add;
    size_t lbytes = (ds->n ? ds->n : 1) * (size_t)K2 * sizeof(float);
    float *lab = NULL;
    if (!mapped) {
        lab = malloc(lbytes);
    } else {
        void *p = mmap(NULL, lbytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        lab = p == MAP_FAILED ? NULL : p;
    }
    float *tr = ds->truth ? malloc((ds->n ? ds->n : 1) * (size_t)K2 * sizeof *tr) : NULL;
    char (*names)[RF_NAME_MAX] = calloc((size_t)K2, RF_NAME_MAX);
    if (!lab || (ds->truth && !tr) || !names || (mapped && rf_mapping_add_region_(ds->map, lab, lbytes))) {
        if (mapped && lab) munmap(lab, lbytes);
        else free(lab);
        free(tr);
        free(names);
        return rf_errorf(err, RF_ENOMEM, "out of memory");
    }
    memcpy(names, ds->label_names, (size_t)K * RF_NAME_MAX);
    for (int j = 0; j < add; j++) snprintf(names[K + j], RF_NAME_MAX, "%s", specs[which[j]]);
    for (size_t i = 0; i < ds->n; i++) {
        const float *y = ds->labels + i * (size_t)K;
        float *o = lab + i * (size_t)K2;
        memcpy(o, y, (size_t)K * sizeof *o);
        for (int j = 0; j < add; j++) {
            const expr *x = &xs[j];
            o[K + j] = x->kind == X_PROD ? y[ca[j]] * y[cb[j]] : (float)cmp_num(x->op, y[ca[j]], x->v);
        }
        if (tr) {
            memcpy(tr + i * (size_t)K2, ds->truth + i * (size_t)K, (size_t)K * sizeof *tr);
            for (int j = 0; j < add; j++) tr[i * (size_t)K2 + (size_t)K + (size_t)j] = NAN;
        }
    }
    if (!mapped) free(ds->labels); /* else it lies in the file mapping */
    free(ds->truth);
    free(ds->label_names);
    ds->labels = lab;
    ds->truth = tr;
    ds->label_names = names;
    ds->K = K2;
    return RF_OK;
}

/* ---- writer --------------------------------------------------------------------------- */


/* A field, quoted (RFC 4180) if it contains the delimiter, a quote or a line break. */
static void sb_field(sbuf *b, const char *s, size_t n, char delim)
{
    int q = 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] == delim || s[i] == '"' || s[i] == '\n' || s[i] == '\r') q = 1;
    if (!q) {
        sb_add(b, s, n);
        return;
    }
    sb_char(b, '"');
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '"') sb_char(b, '"');
        sb_char(b, s[i]);
    }
    sb_char(b, '"');
}

static void sb_u64(sbuf *b, uint64_t v)
{
    char t[24];
    int i = 24;
    do {
        t[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    sb_add(b, t + i, (size_t)(24 - i));
}

/* %.9g (round-trips every float); small integers take a fast path with identical output. */
static void sb_float(sbuf *b, float f)
{
    if (f == f && fabsf(f) < 16777216.0f && f == (float)(int32_t)f && !(f == 0 && signbit(f))) {
        int32_t i = (int32_t)f;
        if (i < 0) sb_char(b, '-');
        sb_u64(b, (uint64_t)(i < 0 ? -(int64_t)i : i));
        return;
    }
    char t[32];
    int n = snprintf(t, sizeof t, "%.9g", (double)f);
    sb_add(b, t, (size_t)n);
}

/* Writer contract: comma-delimited, header = field names, dense names, label names, then
 * "weight" and "group" when present, then "p_<label>" for every label when truth is present
 * (the true probability or expectation of that label, "nan" where unknown). Categorical ids
 * are written as decimal integers (a multi-valued field as its ids joined by the field's
 * separator, quoted when that is ','), floats (truth included) with %.9g (exact float round
 * trip), groups as decimal integers. Reloading with a schema built from the dataset and
 * encoders mapping the text "k" to id k reproduces cat/mv ids, dense, labels and weight
 * exactly; group keys are re-hashed on load, so only their partition of the rows is
 * preserved. The file is written to path + ".tmp" and renamed into place, so readers never
 * see a partial file. */
rf_status rf_dataset_write_csv(const rf_dataset *ds, const char *path, rf_error *err)
{
    if (!ds || !path) return rf_errorf(err, RF_EINTERNAL, "rf_dataset_write_csv: NULL argument");
    size_t pl = strlen(path);
    char *tmp = malloc(pl + 5);
    if (!tmp) return rf_errorf(err, RF_ENOMEM, "out of memory");
    memcpy(tmp, path, pl);
    memcpy(tmp + pl, ".tmp", 5);
    const char delim = ',';
    rf_status st = RF_OK;
    sbuf b = {0};
    FILE *fp = fopen(tmp, "wb");
    if (!fp) {
        st = rf_error_at(err, RF_EIO, tmp, 0, 0, "cannot create: %s", strerror(errno));
        free(tmp);
        return st;
    }
    /* header */
    int col = 0;
    for (int f = 0; f < ds->F; f++, col++) {
        if (col) sb_char(&b, delim);
        sb_field(&b, ds->fields[f].name, strlen(ds->fields[f].name), delim);
    }
    for (int d = 0; d < ds->D; d++, col++) {
        if (col) sb_char(&b, delim);
        sb_field(&b, ds->dense_names[d], strlen(ds->dense_names[d]), delim);
    }
    for (int k = 0; k < ds->K; k++, col++) {
        if (col) sb_char(&b, delim);
        sb_field(&b, ds->label_names[k], strlen(ds->label_names[k]), delim);
    }
    if (ds->weight) {
        if (col++) sb_char(&b, delim);
        sb_add(&b, "weight", 6);
    }
    if (ds->group) {
        if (col++) sb_char(&b, delim);
        sb_add(&b, "group", 5);
    }
    for (int k = 0; ds->truth && k < ds->K; k++, col++) {
        char name[RF_NAME_MAX + 2];
        snprintf(name, sizeof name, "p_%s", ds->label_names[k]);
        if (col) sb_char(&b, delim);
        sb_field(&b, name, strlen(name), delim);
    }
    sb_char(&b, '\n');

    sbuf mv = {0};
    int werr = 0;
    for (size_t i = 0; i < ds->n && !b.oom && !mv.oom && !werr; i++) {
        col = 0;
        for (int f = 0; f < ds->F; f++, col++) {
            if (col) sb_char(&b, delim);
            if (!ds->fields[f].multi || !ds->mv_off || !ds->mv_off[f]) {
                sb_u64(&b, ds->cat[i * (size_t)ds->F + (size_t)f]);
                continue;
            }
            mv.len = 0;
            char sep = ds->fields[f].sep ? ds->fields[f].sep : '|';
            for (uint64_t j = ds->mv_off[f][i]; j < ds->mv_off[f][i + 1]; j++) {
                if (j > ds->mv_off[f][i]) sb_char(&mv, sep);
                sb_u64(&mv, ds->mv_ids[f][j]);
            }
            if (!mv.oom) sb_field(&b, mv.p ? mv.p : "", mv.len, delim);
        }
        for (int d = 0; d < ds->D; d++, col++) {
            if (col) sb_char(&b, delim);
            sb_float(&b, ds->dense[i * (size_t)ds->D + (size_t)d]);
        }
        for (int k = 0; k < ds->K; k++, col++) {
            if (col) sb_char(&b, delim);
            sb_float(&b, ds->labels[i * (size_t)ds->K + (size_t)k]);
        }
        if (ds->weight) {
            if (col++) sb_char(&b, delim);
            sb_float(&b, ds->weight[i]);
        }
        if (ds->group) {
            if (col++) sb_char(&b, delim);
            sb_u64(&b, ds->group[i]);
        }
        for (int k = 0; ds->truth && k < ds->K; k++, col++) {
            if (col) sb_char(&b, delim);
            sb_float(&b, ds->truth[i * (size_t)ds->K + (size_t)k]);
        }
        sb_char(&b, '\n');
        if (b.len >= ((size_t)1 << 20)) {
            if (fwrite(b.p, 1, b.len, fp) != b.len) werr = 1;
            b.len = 0;
        }
    }
    if (b.oom || mv.oom) {
        st = rf_errorf(err, RF_ENOMEM, "out of memory writing %s", path);
    } else if (werr || (b.len && fwrite(b.p, 1, b.len, fp) != b.len)) {
        st = rf_error_at(err, RF_EIO, tmp, 0, 0, "write error: %s", strerror(errno));
    } else if (ferror(fp)) {
        st = rf_error_at(err, RF_EIO, tmp, 0, 0, "write error: %s", strerror(errno));
    }
    if (fclose(fp) != 0 && st == RF_OK)
        st = rf_error_at(err, RF_EIO, tmp, 0, 0, "write error: %s", strerror(errno));
    if (st == RF_OK && rename(tmp, path) != 0)
        st = rf_error_at(err, RF_EIO, path, 0, 0, "cannot rename %s: %s", tmp, strerror(errno));
    if (st != RF_OK) remove(tmp);
    free(b.p);
    free(mv.p);
    free(tmp);
    return st;
}
