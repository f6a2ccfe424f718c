/* exp_run.c - one run of an experiment: train, evaluate, fill an rf_run_result (contract in
 * include/resflow/lab/exp_result.h).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resflow/lab/exp_result.h"
#include "resflow/lab/exp_spec.h"
#include "resflow/metrics.h"
#include "resflow/model.h"
#include "resflow/regression.h"

/* ---- one run ---------------------------------------------------------------------------------- */

static rf_status run_resolved(const rf_config *cfg, const rf_splits *sp, rf_log_fn log, void *ud, rf_run_result *out,
                               rf_error *err);

/* The entire-space AUC of each child task's conditional score C (n, K) against the simulator's
 * counterfactual label cf_<label> of every test row (clicked or not), and the same AUC of the
 * simulator's true counterfactual probability; children without such a label keep NaN. */
static void es_aucs(const rf_config *cfg, const rf_dataset *t, const float *C, rf_run_result *out)
{
    const size_t K = (size_t)cfg->K, TK = (size_t)t->K;
    for (int k = 0; k < cfg->K; k++) {
        int cf = out->parent[k] >= 0 && !out->task_mse[k] ? rf_dataset_cf_label_index(t, cfg->tasks[k].label) : -1;
        if (cf < 0) continue;
        out->es_auc[k] = rf_auc_strided(C + k, K, t->labels + cf, TK, NULL, 0, t->n, NULL);
        out->es_oracle[k] = rf_auc_strided(t->truth + cf, TK, t->labels + cf, TK, NULL, 0, t->n, NULL);
    }
}

rf_status rf_experiment_run(const rf_config *cfg, const rf_splits *sp, rf_log_fn log, void *ud, rf_run_result *out,
                            rf_error *err)
{
    memset(out, 0, sizeof *out);
    out->config_hash = rf_run_hash(cfg); /* of the configuration as given */
    rf_config *rc = malloc(sizeof *rc);
    if (!rc) return rf_errorf(err, RF_ENOMEM, "out of memory");
    *rc = *cfg;
    rf_status st = rf_regression_resolve(rc, sp->train, err); /* thresholds, tasks (regression.h) */
    if (!st) st = run_resolved(rc, sp, log, ud, out, err);
    free(rc);
    return st;
}

static rf_status run_resolved(const rf_config *cfg, const rf_splits *sp, rf_log_fn log, void *ud, rf_run_result *out,
                              rf_error *err)
{
    snprintf(out->model_type, sizeof out->model_type, "%s", rf_model_type_name(cfg->model.type));
    out->seed = cfg->train.seed;
    out->K = cfg->K;
    for (int k = 0; k < cfg->K; k++) {
        snprintf(out->task[k], RF_NAME_MAX, "%s", cfg->tasks[k].name);
        out->parent[k] = rf_config_task_index(cfg, cfg->tasks[k].parent);
        out->auc[k] = out->cond_auc[k] = out->logloss[k] = out->oracle_auc[k] = out->increase[k] = NAN;
        out->es_auc[k] = out->es_oracle[k] = NAN;
        out->task_mse[k] = cfg->tasks[k].loss == RF_LOSS_MSE;
    }
    snprintf(out->target, sizeof out->target, "%s", cfg->regression.target);
    out->mse = out->rmse = out->mae = out->oracle_mse = NAN;
    out->valid_score = out->seconds = out->samples_per_sec = NAN;
    out->test_rows = sp->test->n;
    rf_model *m = NULL;
    rf_status st = rf_config_create_model(cfg, sp->train->F, sp->train->fields, sp->train->D, &m, err);
    if (st) return st;
    const rf_model_info *mi = rf_model_info_of(m);
    out->dense_params = mi->n_params;
    out->emb_params = mi->n_emb_rows * (size_t)mi->E;
    const rf_dataset *t = sp->test;
    int lc[RF_MAX_TASKS];
    if ((st = rf_resolve_labels(m, t, lc, err))) {
        rf_model_free(m);
        return st;
    }
    for (int k = 0; k < cfg->K && t->truth; k++) /* the data's own ceiling, whatever the model does */
        if (!out->task_mse[k])
            out->oracle_auc[k] =
                rf_auc_strided(t->truth + lc[k], (size_t)t->K, t->labels + lc[k], (size_t)t->K, NULL, 0, t->n, NULL);
    int tc = out->target[0] && t->truth ? rf_dataset_label_index(t, out->target) : -1;
    if (tc >= 0) /* the simulator's expected target: the noise floor of the MSE */
        out->oracle_mse = rf_reg_eval(t->truth + tc, (size_t)t->K, t->labels + tc, (size_t)t->K, t->n).mse;
    rf_train_summary sum;
    memset(&sum, 0, sizeof sum);
    st = rf_train(m, &cfg->train, &(rf_train_hooks){log, ud, NULL, NULL, NULL}, sp->train, sp->valid, &sum, err);
    if (st == RF_ENUMERIC) { /* diverged: a result, not a failure of the experiment */
        out->status = RF_ENUMERIC;
        snprintf(out->error, sizeof out->error, "%.500s", err ? err->msg : "non-finite loss");
        rf_model_free(m);
        rf_error_clear(err);
        return RF_OK;
    }
    rf_eval_result ev;
    float *P = NULL, *C = NULL;
    const size_t nk = (t->n ? t->n : 1) * (size_t)cfg->K;
    if (!st && (!(P = malloc(nk * sizeof *P)) || !(C = malloc(nk * sizeof *C))))
        st = rf_errorf(err, RF_ENOMEM, "out of memory for the test predictions (%zu rows)", t->n);
    if (!st) st = rf_predict(m, t, cfg->train.threads, P, C, err);
    if (!st) st = rf_evaluate_probs(m, t, P, C, &ev, err);
    if (!st && t->truth) es_aucs(cfg, t, C, out);
    free(P);
    free(C);
    if (st) {
        rf_model_free(m);
        return st;
    }
    out->status = RF_OK;
    out->valid_score = sum.best_score;
    out->best_epoch = sum.best_epoch;
    out->epochs_run = sum.epochs_run;
    out->seconds = sum.seconds;
    out->samples_per_sec = sum.samples_per_sec;
    for (int k = 0; k < cfg->K; k++) {
        out->auc[k] = ev.task[k].auc;
        out->logloss[k] = ev.task[k].logloss;
        if (out->parent[k] >= 0) {
            out->cond_auc[k] = ev.cond[k].auc;
            out->increase[k] = ev.increase[k];
        }
    }
    if (out->target[0]) {
        out->mse = ev.reg.mse;
        out->rmse = ev.reg.rmse;
        out->mae = ev.reg.mae;
    }
    rf_model_free(m);
    return RF_OK;
}
