/* exp_table.h - statistics over seeds and the tables of an experiment (overview in
 * experiment.h). */
#ifndef RESFLOW_EXP_TABLE_H
#define RESFLOW_EXP_TABLE_H

#include "exp_result.h"
#include "exp_spec.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    double mean, std; /* std: sample standard deviation (n - 1); NaN when n < 2 */
    int n;            /* finite values used */
} rf_stat;

/* Mean and sample std of the finite values among v[0..n) (NaNs are skipped). */
RF_API rf_stat rf_stat_of(const double *v, int n);

/* The paired difference a - b of one metric over the seeds (runs of the same seed paired; seeds
 * where either is not finite skipped): the mean and its 95 % Student-t interval (NaN with fewer
 * than 2 pairs); significant when the interval excludes 0. Used for the "difference to the
 * baseline" tables of experiments and sweeps. */
typedef struct {
    double mean, lo, hi;
    int n;           /* pairs used */
    int significant; /* interval excludes 0 */
} rf_paired_diff;
RF_API rf_paired_diff rf_paired_seed_diff(const double *a, const double *b, int n);
/* "+0.0023 [+0.0005, +0.0041] *" ("*" = significant), "+0.0023 (1 seed)" or "-". */
RF_API void rf_paired_diff_format(char *buf, size_t n, const rf_paired_diff *d);

/* Write DIR/results.md, DIR/results.csv and DIR/results.json from the results of every run:
 * res[(d * n_models + m) * n_seeds + s]; a NULL entry is a run that has no result. When md is
 * not NULL it receives the Markdown text (malloc'ed; caller frees). */
RF_API rf_status rf_experiment_write_tables(const rf_experiment *x, const rf_run_result *const *res,
                                            const char *dir, char **md, rf_error *err);

#ifdef __cplusplus
}
#endif
#endif
