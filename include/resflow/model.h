/* model.h - multi-task tower models (ResFlow, NSE, ESMM): forward, backward, parameters.
 *
 * Shapes (row-major): B batch, F fields, E embedding dim, D dense features,
 * In = F*E + (concat ? D : E if D > 0), K tasks, H_l width of hidden layer l.
 *
 *   x            (B, In)       field embeddings (sum/mean pooled) then dense features
 *   Z_l, A_l, O_l (B, K*H_l)   pre-activation, post-activation, layer output; tower k owns
 *                              the column block [k*H_l, (k+1)*H_l)
 *   s            (B, K)        logits; p (B, K) probabilities
 *
 * ResFlow (paper eq. 3-4): O_k^l = BN(act(Z_k^l)) + O_parent(k)^l when the link behind layer l
 * is on; logit s_k = w_k . O_k^{L-1} + b_k + s_parent(k) when the logit link is on.
 * NSE: no links. ESMM: p_k = p_parent(k) * sigmoid(s_k) (product along the task chain).
 *
 * All dense parameters live in one flat slab (and their gradients in a mirror slab), so a
 * gradient all-reduce is one call. Embedding tables live in a second slab, one table per
 * field (field f's rows start at emb_off[f]); their gradients are row-sparse.
 */
#ifndef RESFLOW_MODEL_H
#define RESFLOW_MODEL_H

#include "config.h"
#include "data.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    /* views into the dense slab */
    float *W;     /* layer 0: (In, K*H0) all towers side by side; layer l>0: K blocks (H_{l-1}, H_l) */
    float *b;     /* (K*H_l) */
    float *alpha; /* (K*H_l) PReLU slopes, or NULL */
    float *gamma; /* (K*H_l) BN scale, or NULL */
    float *beta;  /* (K*H_l) BN shift, or NULL */
} rf_layer_params;

typedef struct rf_model {
    rf_config cfg;      /* copy of the configuration it was built from */
    int K, F, D, E, L;  /* tasks, fields, dense, emb dim, hidden layers */
    int In;             /* tower input width */
    int H[RF_MAX_LAYERS];
    int parent[RF_MAX_TASKS]; /* -1 for a root */
    int order[RF_MAX_TASKS];  /* topological order (parents first) */
    int pooling[64];          /* per field: -1 single-valued, else rf_pooling */

    /* dense parameter slab */
    size_t n_params;
    float *params;
    float *grads;
    rf_layer_params layer[RF_MAX_LAYERS];
    float *Wout;        /* (K, H_{L-1}) logit weights */
    float *bout;        /* (K) */
    float *Wd;          /* (D, E) dense projection, or NULL */
    float *bd;          /* (E) */
    float *run_mean[RF_MAX_LAYERS]; /* (K*H_l) BN running statistics (not trained), or NULL */
    float *run_var[RF_MAX_LAYERS];
    size_t n_buffers;   /* floats of running statistics (stored after params in the file) */
    float *buffers;

    /* model zoo: the dense part as an op graph (src/zoo.c), NULL for the tower models */
    struct rf_graph *graph;
    int graph_out; /* its output tensor: K logits, then model-specific extras */

    /* embeddings */
    rf_field fields[64]; /* the input schema (names, multi-valued flags, vocabularies) */
    uint32_t vocab[64]; /* rows per field */
    size_t emb_off[65]; /* first row of field f; emb_off[F] = total rows */
    float *emb;         /* (emb_off[F], E) */
} rf_model;

/* Build a model for the given configuration and dataset shape (fields/vocab sizes from ds
 * schema; vocab[f] rows for field f). Parameters initialised from cfg->train.seed. */
RF_API rf_status rf_model_create(const rf_config *cfg, int F, const rf_field *fields, int D,
                                 rf_model **out, rf_error *err) RF_WUR;
RF_API void rf_model_free(rf_model *m);

/* Names of model.type values ("resflow", "mmoe", ...) and back (-1 if unknown). */
RF_API const char *rf_model_type_name(rf_model_type t);
RF_API int rf_model_type_parse(const char *name);
/* 1 when probabilities multiply along the task tree (esmm, escm2_*, dcmt): then a child's
 * conditional output (rf_ws_cond) is its own tower's sigmoid, e.g. pCVR. */
RF_API int rf_model_is_product(const rf_model *m);

/* Per-batch scratch (activations, gradients) for up to max_batch rows. */
typedef struct rf_workspace rf_workspace;
RF_API rf_workspace *rf_workspace_create(const rf_model *m, int max_batch);
RF_API void rf_workspace_free(rf_workspace *ws);

/* A batch is a list of row indices into a dataset. label_col[k] is the dataset label column
 * of task k (only needed for the loss). */
typedef struct {
    const rf_dataset *ds;
    const size_t *rows;    /* (B) */
    int B;
    const int *label_col;  /* (K) */
} rf_batch;

/* Forward pass. train != 0 uses batch statistics in BN (and updates running stats).
 * Outputs valid until the next call on ws. */
RF_API rf_status rf_model_forward(rf_model *m, rf_workspace *ws, const rf_batch *b, int train,
                                  rf_error *err);
/* Logits (B, K) and probabilities (B, K) of the last forward. For ESMM, prob[k] is the
 * chained product; rf_ws_cond() gives sigmoid(s_k) (the conditional, e.g. pCVR). */
RF_API const float *rf_ws_logits(const rf_workspace *ws);
RF_API const float *rf_ws_probs(const rf_workspace *ws);
RF_API const float *rf_ws_cond(const rf_workspace *ws);

/* Probing (tower models: resflow, nse, esmm). Hidden layer l of the last forward: the layer
 * outputs O_l (B, K*H_l), i.e. after BN and after the residual links. rf_ws_block gives each
 * tower's own block output f_k^l = BN(act(Z_k^l)) before the link adds O_parent(k)^l (so
 * O_k^l = f_k^l + O_parent(k)^l, bit for bit, where the link is on); it is kept only after
 * rf_ws_keep_blocks (else NULL). rf_ws_own_logits (B, K): each tower's own logit
 * w_k . O_k^{L-1} + b_k before the logit link adds s_parent(k) (and before M3's clamp).
 * rf_model_link: 1 if the link behind hidden layer l (0 <= l < L) or, for l == L, the logit
 * link is on. rf_ws_keep_blocks fails with RF_EUSAGE for the model zoo. */
RF_API const float *rf_ws_hidden(const rf_workspace *ws, int l);
RF_API const float *rf_ws_block(const rf_workspace *ws, int l);
RF_API const float *rf_ws_own_logits(const rf_workspace *ws);
RF_API rf_status rf_ws_keep_blocks(rf_workspace *ws, const rf_model *m, rf_error *err) RF_WUR;
RF_API int rf_model_link(const rf_model *m, int l);

/* Loss of the last forward: sum_k task_scale[k] * w_k * L_k (task_scale NULL = 1), where L_k is
 * mean_B WBCE_k, plus for the models with their own objective (aitm, escm2_*, dcmt) the extra
 * terms attributed to task k (docs/models.md). Per-task losses L_k (unscaled by w_k) go to
 * per_task (K) if not NULL. Uses labels of b. */
RF_API double rf_model_loss(const rf_model *m, rf_workspace *ws, const rf_batch *b,
                            const float *task_scale, double *per_task);

/* Backward of that loss (rf_model_loss must be called first with the same task_scale).
 * Dense gradients are ACCUMULATED into m->grads; embedding gradients into the workspace's
 * row-sparse buffer (see rf_ws_emb_grads). Passing a one-hot task_scale gives one task's
 * gradient of the shared parameters (what PUB needs). */
RF_API void rf_model_backward(rf_model *m, rf_workspace *ws, const rf_batch *b);

/* The same backward pass in three parts, for callers that overlap them:
 * rf_model_backward = _dense (all dense gradients except layer 0's weights, and the input
 * gradient) + _w0 (layer 0's weight gradient, the largest GEMM) + _emb (row-sparse embedding
 * gradients from the input gradient). After _dense, _w0 and _emb touch disjoint state and may
 * run concurrently. */
RF_API void rf_model_backward_dense(rf_model *m, rf_workspace *ws, const rf_batch *b);
RF_API void rf_model_backward_w0(rf_model *m, rf_workspace *ws);
RF_API void rf_model_backward_emb(rf_model *m, rf_workspace *ws, const rf_batch *b);

/* Row-sparse embedding gradient of the last backward: n_rows distinct global rows
 * (indices into m->emb rows) and their (n_rows, E) gradients. */
RF_API size_t rf_ws_emb_grads(const rf_workspace *ws, const uint32_t **rows, float **grads);
/* Clear the sparse embedding gradient (after the optimizer consumed it). */
RF_API void rf_ws_emb_grads_clear(rf_workspace *ws);
RF_API void rf_model_zero_grad(rf_model *m);

#ifdef __cplusplus
}
#endif
#endif
