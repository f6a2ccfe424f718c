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
#include "train.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    rf_dataset *train, *valid, *test;
    rf_encoders *enc;   /* NULL for the simulator (ids are used as they are) */
    size_t bad_rows;    /* rows skipped with skip_bad_rows */
} rf_splits;

/* Fill cfg->data.schema labels from the tasks (schema.label[k] = tasks[k].label). */
RF_API void rf_schema_from_tasks(rf_config *cfg);

RF_API rf_status rf_data_load(const rf_config *cfg, rf_splits *out, rf_log_fn log, void *ud,
                              rf_error *err);
/* Load one extra file with a trained model's schema and encoders (eval/predict). With
 * with_labels == 0 the label columns are not read (the dataset has K = 0). */
RF_API rf_status rf_data_load_file(const rf_config *cfg, const rf_encoders *enc, const char *path,
                                   int skip_bad_rows, int with_labels, rf_dataset **out,
                                   size_t *bad_rows, rf_error *err);
RF_API void rf_splits_free(rf_splits *s);

#ifdef __cplusplus
}
#endif
#endif
