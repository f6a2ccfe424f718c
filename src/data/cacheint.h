/* cacheint.h - declarations shared by the dataset cache's writer (cachewrite.c) and reader
 * (cache.c). Internal to src/data/. */
#ifndef RESFLOW_DATA_CACHEINT_H
#define RESFLOW_DATA_CACHEINT_H

#include <stdint.h>
#include <string.h>

#include "resflow/cache.h"

#define HDR 4096u
#define ALIGN 4096u
#define MAX_INPUTS (3 + RF_MAX_JOINS)

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
