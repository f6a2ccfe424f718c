/* metrics.h - evaluation metrics computed over a whole set (never averaged over batches).
 *
 * AUC is exact and tie-aware: tied scores contribute 1/2 (the Mann-Whitney statistic with
 * mid-ranks), computed by one O(N log N) sort. Labels are treated as positive when > 0.5.
 * Rows may carry weights (NULL = all 1).
 */
#ifndef RESFLOW_METRICS_H
#define RESFLOW_METRICS_H

#include "resflow.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Exact weighted ROC AUC. Returns NaN when one class is absent (or n == 0).
 * Returns RF_ENUMERIC via *st (if not NULL) when a score is NaN. */
RF_API double rf_auc(const float *score, const float *label, const float *weight, size_t n,
                     rf_status *st);

/* Strided variant: score[i*sstride], label[i*lstride]; optional mask (keep row i if
 * mask[i*mstride] > 0.5), used e.g. for CVR AUC on clicked rows. */
RF_API double rf_auc_strided(const float *score, size_t sstride, const float *label,
                             size_t lstride, const float *mask, size_t mstride, size_t n,
                             rf_status *st);

/* Mean binary log loss with p clamped to [1e-7, 1-1e-7]. */
RF_API double rf_logloss(const float *p, size_t pstride, const float *label, size_t lstride,
                         size_t n);

typedef struct {
    double auc;        /* NaN if undefined */
    double logloss;
    double mean_pred;  /* mean predicted probability */
    double mean_label; /* observed rate */
    double calib;      /* mean_pred / mean_label (NaN if no positives) */
    size_t n, positives;
} rf_task_metrics;

/* All of the above for score[i*sstride] against label[i*lstride] on the rows where
 * mask[i*mstride] > 0.5 (mask NULL = all rows). Used per task, and for CVR on clicked rows. */
RF_API rf_task_metrics rf_task_eval(const float *score, size_t sstride, const float *label,
                                    size_t lstride, const float *mask, size_t mstride, size_t n);

/* ---- regression (paper §4.6) --------------------------------------------------------------- */

/* The expected value of progressive regression: thresholds v[0] < ... < v[K] and the K task
 * probabilities Q_k = Q(target >= v_k), k = 1..K, at q[(k-1)*qstride] (Q_0 = 1):
 *   E = sum_{k=0}^{K-1} v_k * max(Q_k - Q_{k+1}, 0) + v_K * Q_K
 * exactly as the paper states it. When the chain increases somewhere (Q_{k+1} > Q_k) the
 * clipped differences sum to more than 1 (1 + the total increase) and E is not renormalised. */
RF_API double rf_expected_value(const float *q, size_t qstride, int K, const float *v);

typedef struct {
    double mse, rmse, mae; /* NaN when n == 0 */
    size_t n;
} rf_reg_metrics;

/* Mean squared error, its root and the mean absolute error of pred[i*pstride] against
 * target[i*tstride] over n rows. */
RF_API rf_reg_metrics rf_reg_eval(const float *pred, size_t pstride, const float *target, size_t tstride,
                                  size_t n);

/* Thresholds from quantiles: of the finite values x[i*stride], i < n, sorted ascending
 * (s_0 <= ... <= s_{m-1}), v_k = s_{round(k (m-1) / K)} for k = 0..K (v_0 the minimum, v_K the
 * maximum: observed values, so a threshold task target >= v_k always has positives), with
 * repeated values dropped: *nv (<= K + 1) strictly ascending values go to v. RF_EDATA when
 * fewer than 2 distinct values remain (e.g. a constant target), RF_ENOMEM. */
RF_API rf_status rf_quantile_thresholds(const float *x, size_t stride, size_t n, int K, float *v, int *nv);

#ifdef __cplusplus
}
#endif
#endif
