/* regression.h - regression as progressive multi-task (ResFlow paper §4.6; docs/regression.md).
 *
 * A configuration with regression.target set predicts that numeric column. The thresholds
 * v_0 < v_1 < ... < v_K come from regression.thresholds or, when that list is empty, from the
 * quantiles of the training rows' target (rf_quantile_thresholds). The heads:
 *
 *   progressive   one binary task per k = 1..K with the label target>=v_k (1 iff the value is
 *                 at least v_k), chained k -> k+1 (task k+1's parent is task k, so ResFlow
 *                 links run from the dense task to the sparse one); the prediction is the
 *                 expected value E(v) of rf_expected_value (metrics.h)
 *   traditional   one task with the squared-error loss on a linear output (tasks.N.loss mse),
 *                 its bias initialised to the training mean; the prediction is that output
 *
 * Data: the target is read as a numeric label (rf_schema_from_tasks adds it to
 * data.numeric_labels) together with the labels target>=v_k, whatever the head, so models of
 * both heads can share one loaded dataset. With quantile thresholds those labels are derived
 * after the split (rf_data_load), from the training rows' quantiles.
 *
 * rf_regression_resolve turns a configuration into the one a model is built from: thresholds
 * made explicit, tasks generated. The model file stores that resolved configuration, so
 * `resflow eval` / `predict` on it use the same thresholds.
 */
#ifndef RESFLOW_REGRESSION_H
#define RESFLOW_REGRESSION_H

#include "config.h"
#include "model.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The canonical label of threshold v: "target>=v" with v in the shortest form that reads back
 * to the same float (e.g. "rating>=4", "play_time>=2.5"). */
RF_API void rf_regression_label(const char *target, float v, char out[RF_SPEC_MAX]);

/* The thresholds of cfg: regression.thresholds, or the quantiles of train's target column
 * (train may be NULL when the thresholds are explicit). */
RF_API rf_status rf_regression_thresholds(const rf_config *cfg, const rf_dataset *train, rf_floats *out,
                                          rf_error *err);

/* Resolve a regression configuration (no-op without regression.target) for a model:
 * thresholds made explicit (quantiles of train's target), and the tasks
 *   progressive: ge<v_1> -> ge<v_2> -> ... -> ge<v_K> with labels target>=v_k (a configured
 *                task list that is exactly that chain keeps its names and weights);
 *   traditional: one task named after the target, label = the target, loss mse.
 * Any other configured task list than these or the built-in default is an error, as is a
 * train.monitor that the resolved tasks cannot give (auc:<missing task>; mean_auc with the
 * traditional head), or a resolved configuration that does not validate (the traditional head
 * on a model without the mse loss). Idempotent. */
RF_API rf_status rf_regression_resolve(rf_config *cfg, const rf_dataset *train, rf_error *err);

/* Append the labels target>=v_k (k = 1..K) that ds lacks, computed from its target column
 * (not for a memory-mapped dataset). */
RF_API rf_status rf_regression_derive_labels(const rf_config *cfg, const rf_floats *thr, rf_dataset *ds,
                                             rf_error *err);

/* The regression prediction of every row from P (n, K), the probabilities of rf_predict:
 * E(v) of the progressive tasks (found by their labels), or the traditional head's output. */
RF_API rf_status rf_regression_predict(const rf_model *m, const float *P, size_t n, float *out, rf_error *err);

#ifdef __cplusplus
}
#endif
#endif
