/* textin.h - the loader's input text (textin.c): plain, gzip or zstd files, compressed input
 * inflated ahead by a thread of its own, regular files read by concurrent preads, the input
 * hashed behind the parse. Internal to src/data/. */
#ifndef RESFLOW_DATA_TEXTIN_H
#define RESFLOW_DATA_TEXTIN_H

#include <pthread.h>
#include <sys/types.h>

#include <xxhash.h>
#include <zlib.h>
#include <zstd.h>

#include "core/pool.h"
#include "resflow/resflow.h"

/* The read buffer has BUF_PAD bytes after buf[cap]: buf[len] is a '\n' sentinel and 64-byte
 * loads starting at or before it stay inside the allocation. */
#define BUF_PAD 128
/* Longest row accepted (keeps field lengths within uint32_t). */
#define ROW_MAX ((size_t)1 << 31)

/* ---- input: plain, gzip, zstd ---------------------------------------------------------- */

enum { IN_PLAIN, IN_GZ, IN_ZSTD };

typedef struct {
    int fd, kind;
    z_stream *gz;   /* gzip: inflated here member by member (not gzread, which ignores trailing bytes) */
    int gzend;      /* gzip: the last member ended; more bytes must start another member */
    uint64_t zread; /* compressed bytes read from the file (gzip: for the offset in messages) */
    ZSTD_DStream *zs;
    unsigned char *zin; /* compressed input buffer (gzip and zstd) */
    ZSTD_inBuffer zib;
    size_t zlast; /* last return of ZSTD_decompressStream (0 = at a frame end) */
    int zeof;     /* the compressed file is read to its end */
    off_t size;   /* file size (plain files), 0 if unknown */
    uint64_t off; /* bytes read so far (regular plain files are read with pread) */
} input;

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

rf_status rf_in_open_(input *in, const char *path, rf_error *err);
void rf_in_close_(input *in);
/* Start inflating in (compressed); NULL when the thread cannot start (then read directly). */
prefetch *rf_pf_start_(input *in, const char *path);
void rf_pf_free_(prefetch *pf);
hasher *rf_hs_create_(void);
uint64_t rf_hs_digest_(hasher *h);
void rf_hs_free_(hasher *h);
/* Append text until the buffer is full (grows it when the unparsed part fills it) or EOF. */
rf_status rf_tb_fill_(textbuf *b, const char *path, rf_error *err);

#endif
