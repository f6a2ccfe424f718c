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

#include "config.h"
#include "modelfile.h"
#include "train.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    rf_dataset *train, *valid, *test;
    rf_encoders *enc;   /* NULL for the simulator (ids are used as they are) */
    size_t bad_rows;    /* rows skipped with skip_bad_rows */
} rf_splits;

/* Fill cfg->data.schema labels from the tasks (schema.label[k] = tasks[k].label); all tasks
 * are binary, so plain labels must be 0 or 1 (data.numeric_labels lifts that per label). */
RF_API void rf_schema_from_tasks(rf_config *cfg);

RF_API rf_status rf_data_load(const rf_config *cfg, rf_splits *out, rf_log_fn log, void *ud,
                              rf_error *err);
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
RF_API void rf_splits_free(rf_splits *s);

#ifdef __cplusplus
}
#endif
#endif
