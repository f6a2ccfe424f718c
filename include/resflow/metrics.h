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

#ifdef __cplusplus
}
#endif
#endif
