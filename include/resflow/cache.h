/* cache.h - the binary dataset cache: text data parsed, joined and encoded once, stored in a
 * versioned, checksummed, memory-mappable file (`resflow prepare`, data.cache).
 *
 * A cache holds the configured source (and the separate valid/test files, if any) fully
 * encoded with the encoders fitted on the training rows, the encoders themselves, and what it
 * was built from: the size, modification time and XXH3 content hash of every input file (the
 * source, joined files, valid/test files) and the caller's hash of its configuration
 * (rf_cache_opts.config_hash; for an rf_config, rf_cache_args in pipeline.h hashes the `data:`
 * keys except data.cache/shuffle*, the task labels, train.skip_bad_rows). It is stale when
 * the configuration hash differs, or an input's size differs, or its modification time
 * differs and its content hash differs too (a `touch` alone does not invalidate it).
 *
 * Training from a cache maps the file read-only: the datasets' arrays point into the mapping
 * (no copy), the data checksums are verified with a sequential read first (or, for a process of
 * a data-parallel run, only the chunks holding its rows: rf_cache_verify_rows), and the training
 * rows are shuffled in blocks (data.shuffle, data.shuffle_block, data.shuffle_window) with
 * the blocks of a window prefetched and dropped after use, so resident memory stays bounded
 * by the window, not the dataset. Layout: docs/formats.md ("Dataset cache").
 */
#ifndef RESFLOW_CACHE_H
#define RESFLOW_CACHE_H

#include "dataset.h"
#include "encoders.h"
#include "source.h"

#ifdef __cplusplus
extern "C" {
#endif

#define RF_CACHE_MAGIC "RESFLOWD"
#define RF_CACHE_VERSION 2 /* 2: per-chunk checksums; version 1 files are still read (verified whole) */

typedef struct {
    size_t rows[3];       /* source, valid file, test file (0 if none) */
    size_t bad_rows, filtered_rows, fit_rows;
    uint64_t input_bytes; /* sum of the input files' sizes */
    uint64_t file_bytes;  /* size of the cache file */
    double seconds;       /* build time */
} rf_cache_info;

/* What decides a cache's content besides data (rf_data_cfg, whose schema has its labels). */
typedef struct {
    uint64_t config_hash; /* the caller's hash of its configuration, stored in the cache; a cache
                             built with another hash is stale */
    int skip_bad_rows;    /* rf_load_opts.skip_bad_rows */
    int threads;          /* parser threads (0 = OpenMP's default) */
} rf_cache_opts;

/* Build the cache of data (its source, joins, valid/test files; the schema's labels set) at
 * path (written to a temporary file and renamed, afile.h). The parsed columns are spilled to
 * unlinked temporary files in path's directory while loading, so the data need not fit in
 * memory. */
RF_API rf_status rf_cache_build(const rf_data_cfg *data, const rf_cache_opts *o, const char *path, rf_log_fn log,
                                void *ud, rf_cache_info *info, rf_error *err);

/* RF_OK if the cache at path is complete, intact (header and metadata checksums) and fresh
 * for data and o. Otherwise: RF_EIO (missing/unreadable), RF_EFORMAT with the reason (not a
 * cache, other version, truncated, corrupted, or stale: which input or the configuration
 * changed). */
RF_API rf_status rf_cache_check(const rf_data_cfg *data, const rf_cache_opts *o, const char *path, rf_error *err);

/* Map and verify the cache at path without checking freshness: part 0 (the source) and the
 * separate valid/test files (NULL if none), and the encoders. The whole data region is read once
 * (rf_cache_map + rf_cache_verify + rf_cache_datasets). */
RF_API rf_status rf_cache_open(const char *path, rf_dataset **source, rf_dataset **valid,
                               rf_dataset **test, rf_encoders **enc, rf_error *err);

/* The same in steps, for a process that reads only some rows (a data-parallel shard):
 * rf_cache_map checks the header and the metadata (as rf_cache_check, without freshness) and
 * maps the file; nothing of the data region is verified yet. rf_cache_verify verifies all of it
 * (as rf_cache_open). rf_cache_verify_rows verifies rows [lo, hi) of part p (0 the source, 1 the
 * valid file, 2 the test file): the chunks of the data region that hold them in any of the part's
 * arrays (categorical ids, dense values, labels, weights, groups, multi-value offsets and ids;
 * version 2, 64 KiB chunks, each read once however many ranges ask for it), then that those rows'
 * ids are below their fields' sizes and their offsets are in order; RF_EFORMAT "data checksum
 * mismatch in chunk I (bytes A-B)" or "data: id ...". A version-1 cache (no chunk checksums) is
 * verified whole instead. Rows outside the verified ranges may be damaged: whoever reads them
 * must verify them (in a data-parallel run every row is in some process's range).
 * rf_cache_datasets gives the datasets (views into the mapping; they keep it alive after
 * rf_cache_close) and moves the encoders out (once). rf_cache_verified: bytes of the data region
 * verified so far, and its size. */
typedef struct rf_cache rf_cache;
RF_API rf_status rf_cache_map(const char *path, rf_cache **out, rf_error *err) RF_WUR;
RF_API void rf_cache_close(rf_cache *c);
RF_API size_t rf_cache_part_rows(const rf_cache *c, int p);
RF_API rf_status rf_cache_verify(rf_cache *c, rf_error *err) RF_WUR;
RF_API rf_status rf_cache_verify_rows(rf_cache *c, int p, size_t lo, size_t hi, rf_error *err) RF_WUR;
RF_API rf_status rf_cache_datasets(rf_cache *c, rf_dataset **source, rf_dataset **valid, rf_dataset **test,
                                   rf_encoders **enc, rf_error *err) RF_WUR;
RF_API void rf_cache_verified(const rf_cache *c, uint64_t *bytes, uint64_t *total);

#ifdef __cplusplus
}
#endif
#endif
