/* exp_result.h - one run of an experiment (train, evaluate) and its result, on disk as JSON
 * (overview in experiment.h). */
#ifndef RESFLOW_EXP_RESULT_H
#define RESFLOW_EXP_RESULT_H

#include "../config.h"
#include "../pipeline.h"
#include "../train.h"

#ifdef __cplusplus
extern "C" {
#endif

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
    double es_auc[RF_MAX_TASKS];     /* child task: its conditional score over all test rows against
                                        the simulator's counterfactual label cf_<label> (the
                                        entire-space CVR AUC; NaN: no such label, or a root) */
    double es_oracle[RF_MAX_TASKS];  /* the same AUC of the simulator's true counterfactual
                                        probability (NaN: none) */
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
/* A run result as JSON text (written atomically and durably: include/resflow/afile.h) and back. */
RF_API rf_status rf_run_result_write(const rf_run_result *r, const char *path, rf_error *err);
RF_API rf_status rf_run_result_read(rf_run_result *r, const char *path, rf_error *err);

#ifdef __cplusplus
}
#endif
#endif
