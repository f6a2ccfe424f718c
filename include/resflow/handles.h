/* handles.h - the library through opaque handles and plain arrays, for language bindings
 * (ctypes, cffi: the Python package in python/) that should not mirror large C structs.
 *
 *   rf_config *c = rf_config_new();  rf_config_load_file(c, ...);  rf_config_set(c, ...);
 *   rf_train_to_file(c, "m.model", log, ud, &summary, &test, err);     (as `resflow train`)
 *   rf_loaded_model *lm;  rf_model_open("m.model", &lm, err);
 *   rf_model_data(lm, "rows.csv", 0, 0, &ds, &bad, err);               (as `resflow predict`)
 *   rf_model_predict_all(lm, ds, 0, P, C, S, EV, err);
 *   rf_dataset_free(ds);  rf_model_close(lm);  rf_config_free(c);
 *
 * A loaded model is read-only after rf_model_open: many threads may predict with it at once.
 */
#ifndef RESFLOW_HANDLES_H
#define RESFLOW_HANDLES_H

#include "modelfile.h"
#include "train.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- configurations --------------------------------------------------------------------- */
/* A configuration with the built-in defaults (rf_config_default); NULL when out of memory. */
RF_API rf_config *rf_config_new(void);
RF_API rf_config *rf_config_clone(const rf_config *c);
RF_API void rf_config_free(rf_config *c);

/* sizeof of a public struct a binding mirrors ("rf_error", "rf_eval_result", "rf_train_summary",
 * "rf_task_metrics", "rf_column", "rf_dataset", "rf_eval_opts"), so it can check its layout; 0 for
 * another name. */
RF_API size_t rf_abi_sizeof(const char *type);

/* The simulator's log of cfg (its synth.* keys, train.threads) written to csv_path as
 * `resflow synth -o` writes it (rf_dataset_write_csv). */
RF_API rf_status rf_config_simulate(const rf_config *cfg, const char *csv_path, rf_error *err) RF_WUR;

/* ---- training ---------------------------------------------------------------------------- */
/* What `resflow train` does, without printing: load the data of cfg, resolve its regression
 * tasks (cfg is updated to the resolved configuration), create the model, train it (progress
 * lines to log), evaluate it on the test rows (test->n == 0 when there are none) and save it to
 * out_path (atomically). On RF_ENUMERIC the last good model is saved when there was one. sum and
 * test may be NULL. With train.checkpoint_every set, checkpoints (checkpoint.h) are written to
 * out_path + ".ckpt" as `resflow train` writes them (`resflow train --resume` continues one to
 * the model this call would have written) and the last is removed once the model is saved. */
RF_API rf_status rf_train_to_file(rf_config *cfg, const char *out_path, rf_log_fn log, void *ud,
                                  rf_train_summary *sum, rf_eval_result *test, rf_error *err) RF_WUR;

/* ---- loaded models ------------------------------------------------------------------------ */
RF_API rf_status rf_model_open(const char *path, rf_loaded_model **out, rf_error *err) RF_WUR;
RF_API void rf_model_close(rf_loaded_model *lm);
/* Write lm to path as a model file (rf_model_save, and its fusion formula when it has one). */
RF_API rf_status rf_model_write(const rf_loaded_model *lm, const char *path, rf_error *err) RF_WUR;

RF_API const rf_model *rf_model_of(const rf_loaded_model *lm);
RF_API const rf_config *rf_model_config(const rf_loaded_model *lm);
/* Tasks (name, parent index or -1), the raw columns the model reads (its F categorical fields
 * then its D dense columns), the label columns (the dataset labels the tasks are built from). */
RF_API int rf_model_ntasks(const rf_loaded_model *lm);
RF_API const char *rf_model_task(const rf_loaded_model *lm, int k, int *parent);
RF_API int rf_model_ncolumns(const rf_loaded_model *lm);
RF_API const char *rf_model_column(const rf_loaded_model *lm, int i);
RF_API int rf_model_nlabels(const rf_loaded_model *lm);
RF_API const char *rf_model_label(const rf_loaded_model *lm, int j);
/* The regression target ("" for a classification model), its head (1 traditional, 0
 * progressive) and its resolved thresholds v_0..v_K (*n of them, pointers into lm). */
RF_API const char *rf_model_regression(const rf_loaded_model *lm, int *traditional, const float **thresholds,
                                       int *n);
/* 1 when the model has a fusion formula; its spec form (rf_fusion_spec) into buf. */
RF_API int rf_model_fusion_spec(const rf_loaded_model *lm, char *buf, size_t n);

/* The rows to score, as `resflow eval/predict` read them: the file path encoded with the
 * model's encoders, or (path NULL) the model's own test rows (the simulator's test split
 * regenerated for a simulator model). *bad_rows (may be NULL) counts skipped rows. */
RF_API rf_status rf_model_data(const rf_loaded_model *lm, const char *path, int with_labels, int skip_bad_rows,
                               rf_dataset **out, size_t *bad_rows, rf_error *err) RF_WUR;
RF_API size_t rf_dataset_rows(const rf_dataset *ds);

/* What `resflow predict` writes, for ds's n rows: P (n, K) task probabilities, C (n, K) the
 * conditionals (may be NULL), S (n) the fused score (NULL, or ignored when the model has no
 * formula), EV (n) E(v) or the traditional head's output of a regression model (NULL, or
 * ignored for other models). threads: OpenMP threads of the call (0 = the model's
 * train.threads); precision: rf_precision of the scoring (rf_predict_opts, train.h). */
RF_API rf_status rf_model_predict_all(const rf_loaded_model *lm, const rf_dataset *ds, int threads, int precision,
                                      float *P, float *C, float *S, float *EV, rf_error *err) RF_WUR;

#ifdef __cplusplus
}
#endif
#endif
