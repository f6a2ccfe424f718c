/* sweep.h - parameter sweeps (the paper's Fig. 3) on top of experiments (experiment.h).
 *
 * A sweep sets one config key to each of a list of values. It is an experiment in which every
 * model (or, for a key that belongs to the data, every dataset) is repeated once per value,
 * with "key=value" appended to that copy's own overrides:
 *
 *   model.emb_dim = 4, 8, 16      models resflow, nse  ->  resflow+model.emb_dim_4, ...,
 *                                                          nse+model.emb_dim_16
 *   tasks.ctcvr.pos_weight = 1, 500  dataset synth     ->  synth+tasks.ctcvr.pos_weight_1, ...
 *
 * Keys of data.*, synth.* and tasks belong to a dataset (experiment.h: every run of a dataset
 * shares its data), so they expand the datasets; every other key expands the models. The copies
 * are ordinary experiment items: their runs are stored, hashed and reused like any experiment's
 * (repeating a sweep trains nothing; adding a value trains only its runs).
 *
 * One curve ("series") per base model and base dataset; one point per value: the mean and the
 * sample standard deviation (n - 1) over seeds of one metric (AUC, conditional AUC or logloss
 * of a task) on the test split. Library code: no printing, errors as rf_status + rf_error.
 */
#ifndef RESFLOW_SWEEP_H
#define RESFLOW_SWEEP_H

#include "experiment.h"

#ifdef __cplusplus
extern "C" {
#endif

#define RF_SWEEP_MAX_VALUES 32
#define RF_SWEEP_VALUE_MAX 48 /* characters of one value, as typed */

typedef enum { RF_SWEEP_AUC, RF_SWEEP_COND_AUC, RF_SWEEP_LOGLOSS, RF_SWEEP_MSE } rf_sweep_metric;

typedef struct {
    char key[256];
    int n_values;
    char value[RF_SWEEP_MAX_VALUES][RF_SWEEP_VALUE_MAX]; /* as typed, e.g. "1e-4" */
    double x[RF_SWEEP_MAX_VALUES];                      /* the number; NaN when not a number */
    int numeric;        /* every value is a finite number */
    int data_level;     /* the key expands datasets (data.*, synth.*, tasks), else models */
    int expanded;       /* rf_sweep_expand has run */
    int n_base;         /* base items (models or datasets) before the expansion */
    char base[RF_EXP_MAX_ITEMS][RF_EXP_NAME_MAX];
    rf_sweep_metric metric;
    char task[RF_NAME_MAX]; /* the metric's task ("" = the last task of the config) */
} rf_sweep;

/* key and a comma-separated list of values (1..RF_SWEEP_MAX_VALUES distinct, non-empty).
 * model.type and train.seed cannot be swept (they are the experiment's models and seeds). */
RF_API rf_status rf_sweep_init(rf_sweep *sw, const char *key, const char *values, rf_error *err);
/* metric "auc", "auc:TASK", "cond_auc:TASK" or "logloss:TASK" (no task: the last task). */
RF_API rf_status rf_sweep_set_metric(rf_sweep *sw, const char *spec, rf_error *err);
/* "ctcvr AUC", "ctcvr|ctr AUC", "ctcvr logloss" into buf (task "" -> the config's last). */
RF_API void rf_sweep_metric_label(const rf_sweep *sw, char *buf, size_t n);

/* Replace the experiment's models (or datasets) by one copy per value (names BASE+KEY_VALUE,
 * characters outside [A-Za-z0-9_.+-] becoming '_'), then check: every run resolves, the metric's
 * task exists (and has a parent for cond_auc), and no later layer of the experiment (its set:,
 * backbone:, a model's set or the caller's overrides) sets the swept key again, which would
 * silently undo the sweep. Call after the experiment's models, datasets, seeds and overrides
 * are final; fills sw->task when it was "". A bad key or value is found before the experiment
 * changes; after other errors (conflicts, the metric's task) it may be half expanded. */
RF_API rf_status rf_sweep_expand(rf_experiment *x, rf_sweep *sw, rf_error *err);

/* One curve: a base model on a base dataset; point v = value sw->value[v]. */
typedef struct {
    char model[RF_EXP_NAME_MAX], dataset[RF_EXP_NAME_MAX];
    char label[2 * RF_EXP_NAME_MAX + 4]; /* the model, or "model (dataset)" with several datasets */
    rf_stat stat[RF_SWEEP_MAX_VALUES];
    int runs[RF_SWEEP_MAX_VALUES];     /* results present */
    int diverged[RF_SWEEP_MAX_VALUES]; /* of those, diverged */
    double v[RF_SWEEP_MAX_VALUES][RF_EXP_MAX_SEEDS]; /* per seed (NaN: none) */
} rf_sweep_series;

/* The curves from the experiment's results (res as for rf_experiment_write_tables:
 * res[(d * n_models + m) * n_seeds + s], NULL = no result). *out is malloc'ed (caller frees). */
RF_API rf_status rf_sweep_collect(const rf_experiment *x, const rf_sweep *sw, const rf_run_result *const *res,
                                  rf_sweep_series **out, int *n_out, rf_error *err);

/* Write DIR/sweep.csv (one row per curve and value: key, dataset, model, value as typed, x =
 * its number (its position for words), metric, task, mean, std, n, runs, diverged, per-seed
 * values separated by ';'), DIR/sweep.md (a table:
 * one row per value, one column per curve, mean ± std, the best mean of each column in bold)
 * and DIR/sweep.svg (rf_plot_svg: mean ± std error bars; log x axis when log_x; x ticks at the
 * values as typed; non-numeric values are equally spaced categories). md, when not NULL,
 * receives the Markdown (malloc'ed). log_x with a non-numeric or non-positive value is an
 * RF_EUSAGE error (nothing is written). */
/* RF_EUSAGE unless every value is a number > 0 (what a log x axis needs). */
RF_API rf_status rf_sweep_check_log_x(const rf_sweep *sw, rf_error *err);
RF_API rf_status rf_sweep_write(const rf_experiment *x, const rf_sweep *sw, const rf_sweep_series *s, int n,
                                const char *dir, int log_x, char **md, rf_error *err);

#ifdef __cplusplus
}
#endif
#endif
