/* bnsync.h - synchronised BatchNorm (private): the batch statistics of a training forward pass
 * and the two per-feature sums of its backward pass taken over every process's rows of the
 * global batch through a sum callback (rf_batch_sum_fn, model.h), for data-parallel training
 * (dist.h). Without a callback the BN kernels of ops.h run as they are.
 *
 * Every process calls the same sums in the same order: one sum of (rows, sum x) and one of
 * sum (x - mean)^2 per BN layer in the forward pass (two-pass, in double: the one-process values
 * up to the order of summation), one of (sum dy, sum dy*xhat) per BN layer in the backward pass.
 * A process with no row of a batch joins them all with zeros (rf_model_bn_idle_). With one
 * process the results are bit for bit those of rf_bn_fwd_train / rf_bn_bwd.
 */
#ifndef RESFLOW_NN_BNSYNC_H
#define RESFLOW_NN_BNSYNC_H

#include "resflow/model.h"

typedef struct rf_bn_sync {
    rf_batch_sum_fn fn; /* NULL: the batch is local */
    void *ud;
    rf_status st;       /* the first failed sum (or RF_ENOMEM); the pass fails with it */
    rf_error err;
    double rows;        /* rows of the global batch (from the last forward sum) */
    double *v;          /* scratch */
    size_t cap;
} rf_bn_sync;

/* rf_bn_fwd_train over the global batch; B (this process's rows) may be 0 (X, Y unused). */
void rf_bn_sync_fwd(rf_bn_sync *s, const float *X, float *Y, int B, int N, int ld, const float *gamma,
                    const float *beta, float *mean, float *rstd, float *run_mean, float *run_var, float momentum,
                    float eps);
/* rf_bn_bwd over the global batch: dgamma, dbeta get this process's sums (the gradient hook
 * combines them like every parameter gradient); dX uses the global sums. Each process's dY is of
 * its own batch mean loss (1/B_r), so its sums are scaled by B_r/B before they are added. */
void rf_bn_sync_bwd(rf_bn_sync *s, const float *X, const float *dY, float *dX, int B, int N, int ld,
                    const float *gamma, const float *mean, const float *rstd, float *dgamma, float *dbeta);

/* A process with no row of a training step (rf_train_step): joins every sum of the forward and
 * backward passes with zeros, in their order, and takes the new running statistics into ws (for
 * rf_model_adopt_buffers) - the same values as every other process. Adds zeros to g. */
rf_status rf_model_bn_idle_(const rf_model *m, rf_workspace *ws, rf_grads *g, rf_error *err);

/* The status of the last pass (and clear it): RF_OK or the first failure, with its message. */
rf_status rf_bn_sync_take(rf_bn_sync *s, rf_error *err);

#endif
