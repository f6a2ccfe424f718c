/* cacheint.h - declarations shared by the dataset cache's writer (cachewrite.c) and reader
 * (cache.c). Internal to src/data/. */
#ifndef RESFLOW_DATA_CACHEINT_H
#define RESFLOW_DATA_CACHEINT_H

#include <stdint.h>
#include <string.h>

#include <xxhash.h>

#include "resflow/cache.h"

#define HDR 4096u
#define ALIGN 4096u
#define MAX_INPUTS (3 + RF_MAX_JOINS)
/* Version 2: the data region [HDR, metadata) is checksummed per chunk of 2^shift bytes (XXH3-64
 * each, the table at the end of the metadata, the shift in the header), so a process can verify
 * only the chunks that hold its rows. The writer takes 16 KiB chunks, larger for inputs over 1 GiB
 * (chunks of input_bytes / 65536 or more, up to 4 MiB): small enough that a
 * process's row ranges waste little at their ends, few enough that the table stays small. */
#define CHUNK_SHIFT_MIN 14u
#define CHUNK_SHIFT_MAX 22u

/* Per-chunk hashes of a byte stream that starts at the data region (writer: computes them;
 * reader: the same over the bytes it reads). */
typedef struct {
    XXH3_state_t *s;
    uint64_t size;      /* chunk bytes */
    uint64_t fill;      /* bytes of the current chunk fed so far */
    uint64_t *h;        /* finished chunks' hashes (writer) */
    size_t n, cap;
    int oom;
} rf_chunker_;

int rf_chunker_init_(rf_chunker_ *c, unsigned shift);
void rf_chunker_free_(rf_chunker_ *c);
/* Feed n bytes; each chunk completed is appended to c->h. */
void rf_chunker_feed_(rf_chunker_ *c, const void *p, size_t n);
/* End of the stream: the last, partial chunk (if any) is appended. */
void rf_chunker_end_(rf_chunker_ *c);

/* ---- inputs and hashes ----------------------------------------------------------------------- */

typedef struct {
    char path[RF_PATH_MAX];
    uint64_t size;
    int64_t mtime_s, mtime_ns;
    uint64_t hash;
} fprint;

rf_status rf_cache_file_hash_(const char *path, uint64_t *h, rf_error *err);
/* Path, size and modification time (the hash is filled in separately). */
rf_status rf_cache_fingerprint_(const char *path, fprint *f, rf_error *err);
/* The input files of data: source, side tables, valid and test files (MAX_INPUTS at most). */
int rf_cache_list_inputs_(const rf_data_cfg *data, const char **paths);

#endif
