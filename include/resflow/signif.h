/* signif.h - is one model's AUC really better than another's on the same rows?
 *
 * Two paired tests of the difference of two AUCs computed on the same rows and labels:
 *   - DeLong, DeLong & Clarke-Pearson (1988): the AUCs' covariance from the structural
 *     components (placement values) of each positive and each negative; exact and O(N)
 *     after one sort per score column. Rows are assumed independent.
 *   - a paired bootstrap over groups (queries/lists): whole groups are resampled with
 *     replacement and both AUCs recomputed on every replicate, so correlation between the rows
 *     of one list is respected. O(N) per replicate (one sort per score column, reused).
 * Both report the difference a - b, its standard error, a confidence interval at `level`
 * (e.g. 0.95) and a two-sided p-value. Labels are positive when > 0.5; rows are kept where
 * mask[i*mstride] > 0.5 (mask NULL = all rows).
 */
#ifndef RESFLOW_SIGNIF_H
#define RESFLOW_SIGNIF_H

#include "resflow.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    double auc_a, auc_b; /* the two AUCs on the kept rows */
    double diff;         /* auc_a - auc_b */
    double se;           /* standard error of diff */
    double lo, hi;       /* confidence interval of diff at the requested level */
    double p;            /* two-sided p-value of diff == 0 */
    size_t n, positives; /* kept rows, positives among them */
    size_t groups;       /* bootstrap: distinct groups resampled (0 for DeLong) */
    int reps;            /* bootstrap replicates (0 for DeLong) */
} rf_auc_diff;

/* Paired DeLong test. RF_EUSAGE for a level outside (0, 1) or NULL pointers, RF_EDATA when a
 * class is absent, RF_ENUMERIC on a NaN score, RF_ENOMEM. */
RF_API rf_status rf_auc_delong(const float *a, size_t astride, const float *b, size_t bstride,
                               const float *label, size_t lstride, const float *mask, size_t mstride,
                               size_t n, double level, rf_auc_diff *out, rf_error *err);

/* Paired bootstrap over groups: group[i] is row i's group key (any 64-bit value; NULL = every
 * row its own group). reps >= 10 replicates from seed (deterministic for any thread count;
 * threads: OpenMP threads, 0 = the caller's). The interval is the percentile interval of the
 * replicates' differences, se their standard deviation, p twice the smaller tail share of
 * replicate differences on either side of 0 (at least 1/reps). Replicates in which a class
 * vanishes are redrawn. Errors as rf_auc_delong, and RF_EUSAGE for reps < 10. */
RF_API rf_status rf_auc_bootstrap(const float *a, size_t astride, const float *b, size_t bstride,
                                  const float *label, size_t lstride, const float *mask, size_t mstride,
                                  const uint64_t *group, size_t n, int reps, uint64_t seed, int threads,
                                  double level, rf_auc_diff *out, rf_error *err);

/* 1 when the interval excludes 0. */
RF_API int rf_auc_diff_significant(const rf_auc_diff *d);

/* The standard normal quantile Phi^-1(p), 0 < p < 1. */
RF_API double rf_normal_quantile(double p);

#ifdef __cplusplus
}
#endif
#endif
