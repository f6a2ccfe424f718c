/* trainopts.h - the options of a training run (rf_train) and of its Adam optimizer. They are
 * the experiment configuration's train.* keys (config.h), but a caller of the library can fill
 * them directly (rf_config_default's cfg.train holds the documented defaults). */
#ifndef RESFLOW_TRAINOPTS_H
#define RESFLOW_TRAINOPTS_H

#include <stdint.h>

#include "dataset.h" /* RF_NAME_MAX */

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int epochs;
    int batch_size;
    float lr;          /* dense parameters */
    float emb_lr;      /* embeddings (0 = same as lr) */
    float beta1, beta2, eps;
    float weight_decay;     /* L2 on dense weights (added to the gradient, as torch Adam) */
    float emb_weight_decay; /* L2 on embedding rows touched in a batch */
    uint64_t seed;
    int threads;            /* 0 = all cores */
    int patience;           /* early stopping: epochs without improvement */
    char monitor[RF_NAME_MAX]; /* "auc:<task>" or "mean_auc" or "loss" */
    int eval_every;         /* evaluate validation every N steps (0 = once per epoch) */
    int log_every;          /* progress line every N steps */
    int skip_bad_rows;
    int max_steps;          /* 0 = no limit (stops inside an epoch; tests and benches) */
    int balance;            /* rf_balance_method (balance.h): 0 = none, plain summed losses */
    int balance_interval;   /* pub / nash_mtl: steps between weight solves (0 = the method's default) */
    int precision;          /* rf_precision (model.h): 0 = fp32, 1 = bf16 tower GEMMs */
    char checkpoint_every[24]; /* periodic checkpoints of resflow train: "" none, "N" steps or
                                * "Ns"/"Nm"/"Nh" (rf_checkpoint_every, checkpoint.h); rf_train
                                * itself does not read it */
} rf_train_cfg;

#ifdef __cplusplus
}
#endif
#endif
