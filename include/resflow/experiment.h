/* experiment.h - experiments: models x datasets x seeds, each run's resolved configuration,
 * run results on disk (so finished runs are not redone), and mean ± std tables.
 *
 * An experiment (docs/experiments.md) names datasets (a config file and/or overrides on top of
 * the built-in defaults, e.g. the simulator with synth.tasks=3), models (a model.type, optionally
 * with overrides of its own) and seeds (train.seed). The configuration of run (dataset d, model
 * m, seed s) is built in this order, later layers winning:
 *
 *   built-in defaults <- dataset config file <- dataset set <- experiment set
 *     <- experiment backbone (model.* keys, the same for every model) <- model set
 *     <- overrides added by the caller (the command line's --set)
 *     <- model.type = the model's type, train.seed = the seed
 *
 * All runs of one dataset share its data (model sets may not touch data.*, synth.* or tasks),
 * so a caller loads the data once per dataset. A run's identity is the XXH64 hash of its
 * resolved configuration (rf_run_hash: the keys that differ from the defaults); its result
 * file stores that hash, and a result whose hash matches the current configuration is reused
 * instead of training again.
 *
 * Statistics over seeds: the mean and the sample standard deviation (n - 1 denominator) of the
 * runs that finished; diverged runs (non-finite loss) are counted separately. Metrics are
 * matched by task name across the models of a dataset (models may have different tasks, e.g.
 * the progressive and the traditional regression heads); runs with a regression target also
 * report MSE, RMSE and MAE (lower is better).
 * Tables: Markdown, CSV (one row per dataset, model and metric) and JSON (every run's values
 * and the summaries). Library code: no printing, errors as rf_status + rf_error.
 */
#ifndef RESFLOW_EXPERIMENT_H
#define RESFLOW_EXPERIMENT_H

#include "config.h"
#include "pipeline.h"
#include "train.h"

#ifdef __cplusplus
extern "C" {
#endif

#define RF_EXP_NAME_MAX 64   /* dataset/model names: [A-Za-z0-9_.+-], used in file names */
#define RF_EXP_MAX_SEEDS 64
#define RF_EXP_MAX_ITEMS 64  /* datasets, models */

/* One "key=value" override and where it came from (file:line:col, or line 0 for the
 * command line), for error messages. */
typedef struct {
    char *text;
    long line, col;
} rf_exp_set;

typedef struct {
    char name[RF_EXP_NAME_MAX];
    char config[1024];  /* config file ("" = built-in defaults) */
    int n_sets;
    rf_exp_set *sets;
} rf_exp_dataset;

typedef struct {
    char name[RF_EXP_NAME_MAX]; /* table label and directory name, e.g. "mmoe" or "mmoe-8e" */
    rf_model_type type;
    int n_sets;
    rf_exp_set *sets;
} rf_exp_model;

typedef struct {
    char name[128];           /* title ("" = none) */
    char out[1024];           /* output directory from the file ("" = none) */
    char source[1024];        /* the experiment file ("" = built from the command line) */
    int n_seeds;
    uint64_t seeds[RF_EXP_MAX_SEEDS];
    int n_datasets, n_models;
    rf_exp_dataset datasets[RF_EXP_MAX_ITEMS];
    rf_exp_model models[RF_EXP_MAX_ITEMS];
    int n_sets, n_backbone, n_extra;
    rf_exp_set *sets;     /* set: every run */
    rf_exp_set *backbone; /* backbone: model.* keys (stored with the "model." prefix) */
    rf_exp_set *extra;    /* caller's overrides (the command line), after the model's */
} rf_experiment;

/* An empty experiment (no datasets, models or seeds); NULL when out of memory. */
RF_API rf_experiment *rf_experiment_new(void);
RF_API void rf_experiment_free(rf_experiment *x);
/* Read an experiment file (YAML) into an empty experiment. Errors name file:line:column. */
RF_API rf_status rf_experiment_load_file(rf_experiment *x, const char *path, rf_error *err);
RF_API rf_status rf_experiment_load_string(rf_experiment *x, const char *text, size_t len,
                                           const char *name, rf_error *err);
/* Add a model: "TYPE" or "NAME=TYPE" (e.g. "mmoe", "big-mmoe=mmoe"). */
RF_API rf_status rf_experiment_add_model(rf_experiment *x, const char *spec, rf_error *err);
/* Add a dataset NAME with an optional config file (NULL or "" = built-in defaults). */
RF_API rf_status rf_experiment_add_dataset(rf_experiment *x, const char *name, const char *config,
                                           rf_error *err);
/* Seeds: "N" (seeds 1..N) or a comma-separated list ("1,2,7"); replaces the current seeds. */
RF_API rf_status rf_experiment_set_seeds(rf_experiment *x, const char *spec, rf_error *err);
/* Append a caller override "key=value" (applied after the models' own overrides). */
RF_API rf_status rf_experiment_add_override(rf_experiment *x, const char *assignment,
                                            rf_error *err);
/* Replace the model list by a comma-separated list whose items are models of the experiment
 * (by name, with their overrides) or new ones ("TYPE" or "NAME=TYPE"). */
RF_API rf_status rf_experiment_pick_models(rf_experiment *x, const char *list, rf_error *err);
/* Replace the dataset list by a comma-separated list whose items are datasets of the
 * experiment (by name), or new ones: "NAME=CONFIG.yaml", or (for an experiment not read from a
 * file) a bare NAME = the built-in defaults. */
RF_API rf_status rf_experiment_pick_datasets(rf_experiment *x, const char *list, rf_error *err);
/* At least one dataset, model and seed; unique names; then every run's configuration is
 * resolved and validated (so a typo fails before anything trains). */
RF_API rf_status rf_experiment_validate(const rf_experiment *x, rf_error *err);

/* The resolved configuration of run (dataset d, model m, seed index s), validated, with the
 * label schema filled in (rf_schema_from_tasks): ready for rf_data_load and rf_model_create. */
RF_API rf_status rf_experiment_config(const rf_experiment *x, int d, int m, int s, rf_config *cfg,
                                      rf_error *err);
/* A run's identity: XXH64 of the lines of rf_config_dump(cfg) that differ from the built-in
 * defaults' dump (the task list always counts), with the keys that only say how a run executes
 * (train.threads, train.log_every) left out. Equal configurations, equal hashes; a key added to
 * resflow later, at a default that keeps the old behaviour, does not change any hash. 0 when
 * out of memory. */
RF_API uint64_t rf_run_hash(const rf_config *cfg);

/* ---- runs --------------------------------------------------------------------------------- */

typedef struct {
    rf_status status;     /* RF_OK, or RF_ENUMERIC when training diverged (non-finite loss) */
    char error[512];      /* why, when status != RF_OK */
    uint64_t config_hash; /* rf_run_hash of the run's configuration */
    char model_type[32];  /* model.type name */
    uint64_t seed;
    int K;
    char task[RF_MAX_TASKS][RF_NAME_MAX];
    int parent[RF_MAX_TASKS];      /* -1 for a root */
    double auc[RF_MAX_TASKS];      /* test AUC per task (NaN if undefined) */
    double cond_auc[RF_MAX_TASKS]; /* child task on its parent's positives (NaN for roots) */
    double increase[RF_MAX_TASKS]; /* child task: share of test rows predicted above the parent
                                      (the paper's Table 11 "increase"; NaN for roots) */
    double logloss[RF_MAX_TASKS];
    double oracle_auc[RF_MAX_TASKS]; /* AUC of the simulator's true probabilities (NaN: none) */
    int task_mse[RF_MAX_TASKS];    /* 1: a squared-error task (traditional regression head) */
    char target[RF_NAME_MAX];      /* regression.target ("" = no regression) */
    double mse, rmse, mae;         /* regression: test error of the prediction (NaN: none) */
    double oracle_mse;             /* MSE of the simulator's expected target (NaN: none) */
    double valid_score;   /* train.monitor value of the kept model on validation */
    int best_epoch, epochs_run;
    double seconds, samples_per_sec;
    size_t dense_params, emb_params, test_rows;
} rf_run_result;

/* Train cfg's model on sp->train (early stopping on sp->valid) and evaluate it on sp->test.
 * A regression configuration is resolved first (rf_regression_resolve: thresholds from
 * sp->train, tasks per head); out->config_hash is the hash of cfg as given.
 * A diverged run is not an error: it returns RF_OK with out->status = RF_ENUMERIC. Other
 * failures return their status. */
RF_API rf_status rf_experiment_run(const rf_config *cfg, const rf_splits *sp, rf_log_fn log,
                                   void *ud, rf_run_result *out, rf_error *err);
/* A run result as JSON text (written to path.tmp, then renamed) and back. */
RF_API rf_status rf_run_result_write(const rf_run_result *r, const char *path, rf_error *err);
RF_API rf_status rf_run_result_read(rf_run_result *r, const char *path, rf_error *err);

/* ---- statistics and tables ------------------------------------------------------------------ */

typedef struct {
    double mean, std; /* std: sample standard deviation (n - 1); NaN when n < 2 */
    int n;            /* finite values used */
} rf_stat;

/* Mean and sample std of the finite values among v[0..n) (NaNs are skipped). */
RF_API rf_stat rf_stat_of(const double *v, int n);

/* Write DIR/results.md, DIR/results.csv and DIR/results.json from the results of every run:
 * res[(d * n_models + m) * n_seeds + s]; a NULL entry is a run that has no result. When md is
 * not NULL it receives the Markdown text (malloc'ed; caller frees). */
RF_API rf_status rf_experiment_write_tables(const rf_experiment *x, const rf_run_result *const *res,
                                            const char *dir, char **md, rf_error *err);

#ifdef __cplusplus
}
#endif
#endif
