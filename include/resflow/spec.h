/* spec.h - a model specification: everything rf_model_create needs and nothing else -
 * the architecture (model family, widths, links, ...), the task tree with each task's loss, the
 * output semantics of a regression model, the input schema (fields with their vocabulary
 * sizes, the number of dense features) and the initialisation seed. It is independent of the
 * experiment configuration (config.h), which builds one with rf_config_model_spec.
 */
#ifndef RESFLOW_SPEC_H
#define RESFLOW_SPEC_H

#include "dataset.h"
#include "resflow.h"

#ifdef __cplusplus
extern "C" {
#endif

#define RF_MAX_TASKS 16
#define RF_MAX_LAYERS 8

/* Model families. The first three are "tower" models (model.c's side-by-side towers with
 * optional residual links); the rest are built from the op graph of src/zoo.c. Append only. */
typedef enum {
    RF_MODEL_RESFLOW = 0,
    RF_MODEL_NSE = 1,
    RF_MODEL_ESMM = 2,
    RF_MODEL_SINGLE = 3,        /* one model per task: own embeddings and tower */
    RF_MODEL_SHARED_BOTTOM = 4, /* shared bottom MLP, towers on top */
    RF_MODEL_MOE = 5,           /* experts + one gate shared by all tasks */
    RF_MODEL_MMOE = 6,          /* experts + one gate per task */
    RF_MODEL_PLE = 7,           /* stacked CGC levels: task-specific + shared experts */
    RF_MODEL_AITM = 8,          /* adaptive information transfer + calibrator */
    RF_MODEL_ESCM2_IPW = 9,     /* ESMM + inverse-propensity counterfactual risk */
    RF_MODEL_ESCM2_DR = 10,     /* ESMM + doubly-robust counterfactual risk (imputation tower) */
    RF_MODEL_DCMT = 11,         /* factual + counterfactual CVR towers */
    RF_MODEL_STEM = 12,         /* shared + task-specific embeddings, AFTB gates */
    RF_MODEL_TWIN = 13          /* twin towers per task: score_k = <u_k, v_k> + biases (twin.h) */
} rf_model_type;

/* A list of layer widths. */
typedef struct {
    int n;
    int w[RF_MAX_LAYERS];
} rf_widths;
typedef enum { RF_ACT_RELU = 0, RF_ACT_PRELU = 1 } rf_act;
typedef enum { RF_BN_NONE = 0, RF_BN_BATCH = 1 } rf_bn;
typedef enum { RF_DENSE_CONCAT = 0, RF_DENSE_PROJECT = 1 } rf_dense_mode;
/* Non-increasing probabilities along a chain (ResFlow paper §3.3): none; M1 penalty on
 * max(p_child - p_parent, 0); M2 penalty on max(residual logit, 0); M3 residual logit clamped
 * to min(r, 0); M4 ESMM-style product p_child = p_parent * sigmoid(s_child) with feature links. */
typedef enum { RF_MONO_NONE = 0, RF_MONO_M1 = 1, RF_MONO_M2 = 2, RF_MONO_M3 = 3, RF_MONO_M4 = 4 } rf_monotonic;

/* Per-task loss: binary cross-entropy on sigmoid(logit) (every classification task), or the
 * squared error of the linear output (the traditional regression head; tower models only). */
typedef enum { RF_LOSS_BCE = 0, RF_LOSS_MSE = 1 } rf_loss;

/* Twin-tower model: where the ResFlow link at the top sits (paper Table 13), a bitmask:
 * before the dot product (u_k += u_parent, v_k += v_parent), after it (z_k += z_parent), both. */
typedef enum { RF_TWIN_NONE = 0, RF_TWIN_BEFORE = 1, RF_TWIN_AFTER = 2, RF_TWIN_BOTH = 3 } rf_twin_link;
#define RF_MAX_TWIN_DENSE 64 /* dense features named in model.item_dense */
#define RF_MAX_TWIN_DENSE_IDX 128 /* item_dense_mask covers dense features 0..127 */

typedef struct {
    char name[RF_NAME_MAX];   /* task name, e.g. "ctr" */
    char label[2 * RF_NAME_MAX + 2]; /* label column, or "a*b" for a product of two columns */
    char parent[RF_NAME_MAX]; /* name of the parent task ("" = root) */
    float weight;             /* loss weight w_k */
    float pos_weight;         /* weight of positive rows in the BCE (negatives: 1) */
    rf_loss loss;             /* bce (default) or mse */
} rf_task_cfg;

typedef struct {
    rf_model_type type;
    int emb_dim;                 /* E */
    int n_hidden;                /* number of hidden layers per tower */
    int hidden[RF_MAX_LAYERS];   /* widths */
    rf_act act;
    float prelu_init;            /* initial PReLU slope */
    rf_bn bn;                    /* BatchNorm after each hidden activation */
    float bn_momentum;           /* running-stat momentum (PyTorch convention) */
    float bn_eps;
    rf_dense_mode dense_mode;    /* numeric features: concatenated or projected to one field */
    uint32_t res_layers;         /* ResFlow: bit l set = residual link behind hidden layer l */
    int res_logit;               /* ResFlow: residual link on the logit */
    float emb_init;              /* embeddings ~ U(-emb_init, emb_init) */
    /* model zoo (see docs/models.md) */
    rf_widths bottom;            /* shared_bottom: bottom MLP widths */
    rf_widths expert_hidden;     /* moe/mmoe/stem: each expert's MLP widths; ple: per-level width */
    int experts;                 /* moe/mmoe: number of experts */
    int shared_experts;          /* ple/stem: shared experts per level */
    int specific_experts;        /* ple/stem: task-specific experts per task and level */
    float aitm_alpha;            /* aitm: weight of the behavioural-expectation calibrator */
    float cf_weight;             /* escm2: weight of the counterfactual risk (lambda_c) */
    float global_weight;         /* escm2/dcmt: weight of the CTCVR (global) loss */
    float ips_clip;              /* escm2/dcmt: inverse propensities clipped to at most this */
    /* ResFlow studies (paper §3.3, Table 5, Table 11) */
    int esmm_links;              /* esmm: also apply res_layers/res_logit links (ESMM + FR [+ LR]) */
    rf_monotonic monotonic;      /* non-increasing probabilities along the task chain */
    float monotonic_weight;      /* weight of the M1/M2 penalties */
    /* twin-tower model (model.type twin, include/resflow/twin.h); every other field is user side */
    int twin_dim;                /* d: width of the user and item vectors of every task */
    int twin_link;               /* rf_twin_link */
    int n_item_fields;           /* categorical fields of the item tower, by name */
    char item_fields[RF_MAX_FIELDS][RF_NAME_MAX];
    int n_item_dense;            /* dense features of the item tower, by name */
    char item_dense[RF_MAX_TWIN_DENSE][RF_NAME_MAX];
    /* item_dense resolved to dense-feature indices (rf_config_model_spec does it from the data's
     * column names; a caller building a spec by hand sets it): bit j%64 of word j/64 = dense
     * feature j is item side. item_dense_bad = 1 + the index of a name that is no dense feature. */
    uint64_t item_dense_mask[RF_MAX_TWIN_DENSE_IDX / 64];
    int item_dense_bad;
} rf_model_cfg;


/* Regression as progressive multi-task (paper §4.6, docs/regression.md): a numeric target v,
 * thresholds v_0 < v_1 < ... < v_K (explicit, or the training target's quantiles), one binary
 * task Q(v >= v_k) per k = 1..K chained k -> k+1, and the expected value
 * E(v) = sum_{k<K} v_k max(Q_k - Q_{k+1}, 0) + v_K Q_K as the prediction; or the traditional
 * head, one task with a squared-error loss on a linear output. */
typedef enum { RF_REG_PROGRESSIVE = 0, RF_REG_TRADITIONAL = 1 } rf_reg_head;
#define RF_MAX_THRESHOLDS 16 /* v_0..v_K: K <= 15 tasks (the target is one more label column) */

typedef struct {
    int n;
    float v[RF_MAX_THRESHOLDS];
} rf_floats;

typedef struct {
    char target[RF_NAME_MAX]; /* numeric column ("" = no regression) */
    rf_floats thresholds;     /* v_0..v_K, strictly ascending (n = 0: from quantiles) */
    int quantiles;            /* K: thresholds from the training target's quantiles */
    rf_reg_head head;
} rf_regression_cfg;

/* The model specification. The member names follow the experiment configuration's (model.*,
 * tasks.N.*, regression.*), so rf_config_model_spec is a plain copy. */
typedef struct {
    rf_model_cfg model;               /* architecture */
    int K;                            /* tasks */
    rf_task_cfg tasks[RF_MAX_TASKS];  /* task tree (parents by name) and per-task loss */
    rf_regression_cfg regression;     /* regression.target set: the tasks are thresholds of it */
    uint64_t seed;                    /* parameter initialisation */
    int F;                            /* categorical fields */
    rf_field fields[RF_MAX_FIELDS];   /* names, multi-valued flags, vocabulary sizes */
    int D;                            /* dense features */
} rf_model_spec;

/* Index of the task named name, -1 if absent. */
RF_API int rf_spec_task_index(const rf_model_spec *s, const char *name);

#ifdef __cplusplus
}
#endif
#endif
