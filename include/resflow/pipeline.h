/* pipeline.h - from a data configuration to train/valid/test datasets.
 *
 * Sources: "synth" (the built-in simulator, rf_synth_generate) or a CSV/TSV path read with
 * the configured schema. Without separate valid/test files the source is split by position:
 * the last test_frac of the rows is the test set and the valid_frac before it the validation
 * set (logs are time-ordered, so the held-out rows come after the training rows, and a
 * query's rows are never split between sets). Vocabularies are fitted on the training file.
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
 * are binary, so labels must be 0 or 1. */
RF_API void rf_schema_from_tasks(rf_config *cfg);

RF_API rf_status rf_data_load(const rf_config *cfg, rf_splits *out, rf_log_fn log, void *ud,
                              rf_error *err);
/* Load a file to score with a trained model: its columns are the model's own fields (names,
 * separators, pooling), dense features and task labels, encoded with the model's vocabularies
 * (integer ids as they are for fields without one, e.g. simulator models). With
 * with_labels == 0 the label columns are not read (the dataset has K = 0). */
RF_API rf_status rf_data_load_for_model(const rf_loaded_model *lm, const char *path,
                                        int skip_bad_rows, int with_labels, rf_dataset **out,
                                        size_t *bad_rows, rf_error *err);
RF_API void rf_splits_free(rf_splits *s);

#ifdef __cplusplus
}
#endif
#endif
