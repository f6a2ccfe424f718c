/* pipeline.h - from a data configuration to train/valid/test datasets.
 *
 * Sources: "synth" (the built-in simulator, rf_synth_generate) or a text file read with the
 * configured schema (rf_load_csv: CSV/TSV and other delimited formats, side tables joined,
 * .gz/.zst), optionally through a binary cache (data.cache, see cache.h). Without separate
 * valid/test files the source is split by position: the last test_frac of the rows is the
 * test set and the valid_frac before it the validation set (logs are time-ordered, so the
 * held-out rows come after the training rows, and a query's rows are never split between
 * sets). Encoders (vocabularies, hash/bucket/normaliser parameters) are fitted on the
 * training rows only and applied to the validation and test rows. docs/data.md has the
 * whole contract.
 */
#ifndef RESFLOW_PIPELINE_H
#define RESFLOW_PIPELINE_H

#include "cache.h"
#include "config.h"
#include "modelfile.h"
#include "rowenc.h"
#include "train.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    rf_dataset *train, *valid, *test;
    rf_encoders *enc;   /* NULL for the simulator (ids are used as they are) */
    size_t bad_rows;    /* rows skipped with skip_bad_rows */
    uint64_t cache_verified, cache_bytes; /* from a cache (data.cache): bytes of its data region
                                             this process verified, and the region's size */
} rf_splits;

/* Fill cfg->data.schema labels from the tasks (schema.label[k] = tasks[k].label); all tasks
 * are binary, so plain labels must be 0 or 1 (data.numeric_labels lifts that per label). */
RF_API void rf_schema_from_tasks(rf_config *cfg);

RF_API rf_status rf_data_load(const rf_config *cfg, rf_splits *out, rf_log_fn log, void *ud,
                              rf_error *err);
/* rf_data_load for process rank of nproc of a data-parallel run (dist.h): from a cache, only the
 * rows this process reads are verified (rf_cache_load_shard); a text source or the simulator is
 * read whole. rf_data_load is process 0 of 1. */
RF_API rf_status rf_data_load_shard(const rf_config *cfg, int rank, int nproc, rf_splits *out, rf_log_fn log,
                                    void *ud, rf_error *err);
/* The position split of a whole source (rf_split_points with the configured fractions; a
 * fraction is 0 when its separate file is configured): train/valid/test as ranges of all
 * (views when all is mapped). out->enc is not touched. */
RF_API rf_status rf_data_split(const rf_config *cfg, rf_dataset *all, rf_splits *out, rf_error *err);
/* Load a file to score with a trained model: its columns are the model's own fields (names,
 * separators, pooling), dense features and task labels, encoded with the model's encoders
 * (integer ids as they are for fields without one, e.g. simulator models), in the format of
 * the model's stored configuration (delimiter, header, joins, ...). With with_labels == 0 the
 * label columns are not read (the dataset has K = 0). */
RF_API rf_status rf_data_load_for_model(const rf_loaded_model *lm, const char *path,
                                        int skip_bad_rows, int with_labels, rf_dataset **out,
                                        size_t *bad_rows, rf_error *err);
/* The test rows of the model's own data source, encoded with the model's stored encoders (never
 * re-fitted, so a changed training file or configuration cannot change them): data.test when
 * the model's configuration has one, else the test split of data.source (the same position
 * split as in training; the source is read with its labels whatever with_labels says, so the
 * rows kept match training's). RF_EUSAGE for a simulator model. */
RF_API rf_status rf_data_load_test_for_model(const rf_loaded_model *lm, int skip_bad_rows, int with_labels,
                                             rf_dataset **out, size_t *bad_rows, rf_error *err);
/* The same two with the loader's report: lo->skip_bad_rows in (the other input fields are the
 * model's own: zero them); out lo->bad_rows and lo->bad_first (where and why the first skipped
 * rows were bad: "line 12 column 4: ...; line 40 ..."), for a message that names them. */
RF_API rf_status rf_data_load_for_model_ex(const rf_loaded_model *lm, const char *path, int with_labels,
                                           rf_load_opts *lo, rf_dataset **out, rf_error *err);
RF_API rf_status rf_data_load_test_for_model_ex(const rf_loaded_model *lm, int with_labels, rf_load_opts *lo,
                                                rf_dataset **out, rf_error *err);
/* "skipped N bad rows of PATH (--skip-bad-rows): line 12 column 4: ...; ..." into buf (n bytes,
 * cut to fit); returns buf. */
RF_API const char *rf_load_bad_summary(const rf_load_opts *lo, const char *path, char *buf, size_t n);
RF_API void rf_splits_free(rf_splits *s);

/* A row encoder (rowenc.h) for raw rows of the model's own columns, with its stored encoders
 * (integer ids as they are for fields without one), as rf_data_load_for_model reads a file. It
 * refers to lm's vocabularies: free it before lm. */
RF_API rf_status rf_row_encoder_for_model(const rf_loaded_model *lm, rf_row_encoder **out, rf_error *err) RF_WUR;

/* ---- The dataset cache (cache.h) of a configuration (src/run/cachecfg.c) ------------------ */
/* The cache API's arguments for cfg: its data section with the schema's labels from the tasks
 * (rf_schema_from_tasks), and the options: train.skip_bad_rows, train.threads and the hash of
 * the `data:` keys except data.cache/shuffle*, the task labels and train.skip_bad_rows. */
RF_API void rf_cache_args(const rf_config *cfg, rf_data_cfg *data, rf_cache_opts *o);
/* rf_cache_build and rf_cache_check with the arguments of cfg (rf_cache_args). */
RF_API rf_status rf_cache_build_cfg(const rf_config *cfg, const char *path, rf_log_fn log, void *ud,
                                    rf_cache_info *info, rf_error *err);
RF_API rf_status rf_cache_check_cfg(const rf_config *cfg, const char *path, rf_error *err);
/* The splits of cfg from the cache cfg->data.schema.cache: built first if missing or stale
 * (logged), then mapped, verified and split (views, no copy). */
RF_API rf_status rf_cache_load_splits(const rf_config *cfg, rf_splits *out, rf_log_fn log, void *ud,
                                      rf_error *err);
/* The same for process rank of nproc of a data-parallel run: only the rows it reads are verified
 * (rf_cache_verify_rows): its shard [r*n/N, (r+1)*n/N) of the training rows and its slices of the
 * validation and test rows, as rf_dist_create and rf_dist_evaluate take them (with data.split:
 * random, the whole source part). A damaged range fails with the cache's message; only rank 0
 * rebuilds a damaged cache. rf_cache_load_splits is process 0 of 1 (everything verified). */
RF_API rf_status rf_cache_load_shard(const rf_config *cfg, int rank, int nproc, rf_splits *out, rf_log_fn log,
                                     void *ud, rf_error *err);

#ifdef __cplusplus
}
#endif
#endif
