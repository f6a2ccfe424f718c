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

#include "dataset.h"
#include "spec.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The canonical label of threshold v: "target>=v" with v in the shortest form that reads back
 * to the same float (e.g. "rating>=4", "play_time>=2.5"). */
RF_API void rf_regression_label(const char *target, float v, char out[RF_SPEC_MAX]);

/* The regression prediction of every row from P (n, K), the probabilities of rf_predict of a
 * model with specification sp (rf_model_spec_of): E(v) of the progressive tasks (found by their
 * labels), or the traditional head's output. */
RF_API rf_status rf_regression_predict(const rf_model_spec *sp, const float *P, size_t n, float *out,
                                       rf_error *err);

#ifdef __cplusplus
}
#endif
#endif
