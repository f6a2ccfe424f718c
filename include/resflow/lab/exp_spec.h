/* exp_spec.h - an experiment: its datasets, models, seeds and overrides, read from a file or
 * built from the command line, and the resolved configuration and identity of each run
 * (overview in experiment.h, file format in docs/experiments.md).
 *
 * An experiment names datasets (a config file and/or overrides on top of
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
 */
#ifndef RESFLOW_EXP_SPEC_H
#define RESFLOW_EXP_SPEC_H

#include "../config.h"

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
    char baseline[RF_EXP_NAME_MAX]; /* the model the others are compared with ("" = the first) */
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

#ifdef __cplusplus
}
#endif
#endif
