/* train.h - training loop with validation-based early stopping, evaluation, prediction.
 *
 * rf_train: per epoch, rows are shuffled from (seed, epoch); each batch runs the training step
 * forward -> loss -> backward into a gradient set (rf_grads) -> the caller's gradient hook, if
 * any (transform or all-reduce the gradients in place) -> the optimizer (Adam from the options,
 * or the caller's). The validation set (never the test set) is evaluated every
 * epoch (or every eval_every steps); the best parameters by train.monitor are kept in
 * memory and restored at the end. Training stops after `patience` evaluations without
 * improvement. When the monitored value is NaN (a task with one class in the validation set has
 * no AUC), a "warning: " line is logged and the validation loss is monitored instead, so the
 * model kept is the best by loss. A non-finite loss stops training with RF_ENUMERIC and restores the last good
 * (best validated, else initial) parameters, so what the caller saves is never garbage.
 */
#ifndef RESFLOW_TRAIN_H
#define RESFLOW_TRAIN_H

#include "metrics.h"
#include "model.h"
#include "optim.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Progress lines go through an rf_log_fn (resflow.h; NULL = silent). */

/* Called after each backward pass with the batch's gradients (the dense slab and the sparse
 * embedding rows), before the optimizer: may change them in place, e.g. clip them or all-reduce
 * them across processes. A status other than RF_OK stops training with it. */
typedef rf_status (*rf_grad_hook)(void *ud, const rf_model *m, rf_grads *g, rf_error *err);

typedef struct {
    rf_task_metrics task[RF_MAX_TASKS]; /* per task, on all rows */
    rf_task_metrics cond[RF_MAX_TASKS]; /* child task k given parent positive (e.g. CVR on
                                           clicked rows); n == 0 for roots */
    double increase[RF_MAX_TASKS];      /* child task k: share of rows with p_k > p_parent
                                           (NaN for roots) - paper §3.3's monotonicity check */
    double loss;                        /* mean training objective on this set */
    size_t n;
    rf_reg_metrics reg;                 /* regression.target set: MSE, RMSE, MAE of the prediction
                                           (E(v), or the traditional head's output); else NaN */
} rf_eval_result;

/* Where the loop stands at a step boundary, and its early-stopping bookkeeping: with the
 * current parameters, the kept best parameters and the optimizer state, everything needed to
 * continue the run exactly (the row order is a function of (train.seed, epoch), so the data
 * position is the epoch and the batches of it done; there is no other random state). */
typedef struct {
    int epoch;             /* 0-based epoch in progress */
    long batch;            /* batches of that epoch done */
    long steps;            /* optimizer steps done in the whole run */
    long seen;             /* training rows seen */
    int bad_evals;         /* evaluations without improvement (patience) */
    int by_loss;           /* early stopping fell back to the validation loss */
    double best_score;     /* -INFINITY before the first evaluation */
    int best_epoch;        /* -1 before the first improvement */
    rf_eval_result best_valid;
} rf_train_pos;

/* What the step hook sees: the live model and optimizer (read only) and the kept best
 * parameters (the model's own arrays until an evaluation improved; sizes as the model's). */
typedef struct {
    rf_train_pos pos;
    const rf_model *model;
    const rf_optimizer *opt;
    const float *best_params, *best_buffers, *best_emb;
    int cancelled;         /* 1: the cancel callback asked to stop; this is the last call */
    double loss;           /* this step's training loss */
} rf_train_state;

/* Called at every step boundary (after the step's evaluation, if any) but one where training
 * stops early (train.max_steps reached, early stopping), e.g. to write a checkpoint (checkpoint.h). A status other than RF_OK stops training
 * with it, the best parameters (as at a normal end) restored in the model. */
typedef rf_status (*rf_step_hook)(void *ud, const rf_train_state *s, rf_error *err);

/* Polled at every step boundary; non-zero stops training there: the step hook is called once
 * more with cancelled = 1, the best parameters are restored as at a normal end, and rf_train
 * returns RF_OK with rf_train_summary.cancelled = 1. Must be cheap (e.g. read a flag set by a
 * signal handler of the caller). */
typedef int (*rf_cancel_fn)(void *ud);

/* Continue a run from a saved position: the caller has put the run's current parameters in the
 * model; rf_train restores the rest and goes on with batch pos.batch of epoch pos.epoch. The
 * squared-error heads are not re-initialised. */
typedef struct {
    rf_train_pos pos;
    const float *best_params, *best_buffers, *best_emb; /* the kept best (NULL: the model's) */
    const unsigned char *opt_state;                     /* rf_optimizer_save_state bytes */
    size_t opt_state_n;
} rf_train_resume;

/* Data parallelism (dist.h implements it over processes): this process computes only its rows
 * of each global batch, the gradient hook combines the processes' gradients, and the validation
 * set is evaluated over all processes. */
typedef struct {
    void *ud;
    /* The rows of the global batch (rows, B) this process computes, into out (room for B);
     * returns their count, which may be 0 (the step still takes part in the exchange). */
    int (*local_rows)(void *ud, const size_t *rows, int B, size_t *out);
    /* Sum v[0..n) over all processes in place (the logged training loss; the batch statistics
     * of synchronised BatchNorm, rf_ws_set_batch_sum in model.h). */
    rf_status (*sum)(void *ud, double *v, int n, rf_error *err);
    /* Evaluate ds over all processes; every process gets the whole result. */
    rf_status (*evaluate)(void *ud, const rf_model *m, const rf_dataset *ds, rf_eval_result *out,
                          rf_error *err);
} rf_train_dist;

/* What a caller can plug into training; every member may be NULL. */
typedef struct {
    rf_log_fn log;           /* progress lines */
    void *log_ud;
    rf_grad_hook grad_hook;  /* the seam between the backward pass and the optimizer */
    void *hook_ud;
    rf_optimizer *opt;       /* the optimizer (owned by the caller); NULL: Adam from the options */
} rf_train_hooks;

/* Control of a long run (rf_train_ex); every member may be NULL. */
typedef struct {
    rf_step_hook step_hook;  /* at step boundaries (checkpoints) */
    void *step_ud;
    rf_cancel_fn cancel;     /* stop at the next step boundary when it returns non-zero */
    void *cancel_ud;
    const rf_train_resume *resume; /* NULL: a new run */
    const rf_train_dist *dist; /* data-parallel: this process's part of each batch (dist.h's
                                  rf_dist_train_dist); NULL: one process */
} rf_train_ctl;


typedef struct {
    int epochs_run;
    long steps;
    double best_score;    /* monitored value of the kept model (higher is better; minus the
                             validation loss when the monitor was NaN and training fell back to it) */
    int best_epoch;
    double seconds;
    double samples_per_sec;
    int stopped_early;
    int cancelled;        /* stopped by the cancel callback (the best model so far is in m) */
    rf_eval_result best_valid;
} rf_train_summary;

/* One training step on a batch: forward, loss, backward into g, the hook (if not NULL), the
 * optimizer. Without a hook and with an optimizer whose sparse update is row-wise
 * (rf_optimizer_sparse_rowwise: Adam and the multi-task optimizers), the embedding part is
 * fused with the update (rf_model_backward_emb_each: each field's rows updated as soon as they
 * are summed, fields in parallel): the same arithmetic, bit for bit. The loss goes to *loss; a
 * non-finite loss returns RF_ENUMERIC without touching the model. */
RF_API rf_status rf_train_step(rf_model *m, rf_workspace *ws, rf_grads *g, rf_optimizer *opt,
                               const rf_batch *b, rf_grad_hook hook, void *hook_ud, double *loss,
                               rf_error *err) RF_WUR;

/* Map each task's label spec to a dataset label column. */
RF_API rf_status rf_resolve_labels(const rf_model *m, const rf_dataset *ds, int *label_col,
                                   rf_error *err);

/* Train m on train (early stopping on valid, which may be NULL) with the options opts (epochs,
 * batch size, optimizer settings, threads: OpenMP threads of this call, 0 = as the caller's)
 * and the caller's hooks (NULL: none, Adam). */
RF_API rf_status rf_train(rf_model *m, const rf_train_cfg *opts, const rf_train_hooks *hooks,
                          const rf_dataset *train, const rf_dataset *valid, rf_train_summary *out,
                          rf_error *err) RF_WUR;
/* rf_train as one of the processes of a data-parallel run (dist: rf_dist_hooks, dist.h; NULL is
 * rf_train). The summary's samples and loss are over all processes. */
RF_API rf_status rf_train_parallel(rf_model *m, const rf_train_cfg *opts, const rf_train_hooks *hooks,
                                   const rf_train_dist *dist, const rf_dataset *train,
                                   const rf_dataset *valid, rf_train_summary *out, rf_error *err) RF_WUR;
/* rf_train with a control block (NULL: as rf_train): checkpoints at step boundaries, a cancel
 * callback, resuming a saved run. */
RF_API rf_status rf_train_ex(rf_model *m, const rf_train_cfg *opts, const rf_train_hooks *hooks,
                             const rf_train_ctl *ctl, const rf_dataset *train, const rf_dataset *valid,
                             rf_train_summary *out, rf_error *err) RF_WUR;

/* How rows are scored: threads, the OpenMP threads of the call (0 = as the caller's), each
 * scoring whole batches of 512 rows, so the scores are the same for any thread count; precision
 * of the tower models' hidden-layer GEMMs (rf_precision): RF_PREC_FP32; RF_PREC_BF16 on a CPU
 * with AVX512-BF16 (operands rounded to bfloat16, sums in fp32; scores within bf16 rounding of
 * fp32's); RF_PREC_INT8 on a CPU with AVX512-VNNI (weights quantized per column, activations per
 * row, exact int32 sums; AUCs within 0.002 of fp32's). Both refused with RF_EUSAGE elsewhere and
 * for the zoo models, never a silent fp32 fallback. docs/performance.md, "Inference". */
typedef struct {
    int threads;
    int precision;
} rf_predict_opts;

/* probs (n, K) entire-space probabilities; cond (n, K) per-task conditional scores
 * (ESMM: sigmoid(s_k); other models: p_k / p_parent, p_k for roots) - either may be NULL.
 * o NULL: all defaults (fp32, the caller's threads). */
RF_API rf_status rf_predict_ex(const rf_model *m, const rf_dataset *ds, const rf_predict_opts *o, float *probs,
                               float *cond, rf_error *err);
/* rf_predict_ex in fp32 with these threads. */
RF_API rf_status rf_predict(const rf_model *m, const rf_dataset *ds, int threads, float *probs, float *cond,
                            rf_error *err);

/* The metrics of the scores of rf_predict_ex (rf_evaluate: fp32, these threads). */
RF_API rf_status rf_evaluate_ex(const rf_model *m, const rf_dataset *ds, const rf_predict_opts *o,
                                rf_eval_result *out, rf_error *err);
RF_API rf_status rf_evaluate(const rf_model *m, const rf_dataset *ds, int threads, rf_eval_result *out,
                             rf_error *err);
/* The metrics of rf_evaluate from given predictions of ds's rows: probs and cond (n, K) as
 * rf_predict writes them (e.g. gathered from the processes of a data-parallel run). */
RF_API rf_status rf_evaluate_probs(const rf_model *m, const rf_dataset *ds, const float *probs,
                                   const float *cond, rf_eval_result *out, rf_error *err);

/* The monitored score (higher is better) of an evaluation for a train.monitor value
 * ("mean_auc", "auc:<task>", "loss", "mse": -MSE). */
RF_API double rf_monitor_value(const rf_model *m, const char *monitor, const rf_eval_result *r);

#ifdef __cplusplus
}
#endif
#endif
