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

#include "data.h"
#include "spec.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The model: opaque. Its specification and shape are read through rf_model_spec_of and
 * rf_model_info_of; its parameters through rf_model_params / _buffers / _emb. */
typedef struct rf_model rf_model;

/* Derived shape of a model (read-only). */
typedef struct {
    int K, F, D, E, L;        /* tasks, fields, dense features, embedding width, hidden layers
                                 (L counts the side-by-side tower layers; 0 for the zoo) */
    int In;                   /* tower input width */
    int H[RF_MAX_LAYERS];     /* hidden widths per tower */
    int parent[RF_MAX_TASKS]; /* -1 for a root */
    int order[RF_MAX_TASKS];  /* topological order (parents first) */
    size_t n_params;          /* floats of the dense parameter slab */
    size_t n_buffers;         /* floats of running statistics (BN), not trained */
    size_t n_emb_rows;        /* embedding rows of all fields (each E floats) */
    int is_tower;             /* 1: resflow/nse/esmm side-by-side towers; 0: op-graph zoo model */
} rf_model_info;

/* Build a model from its specification; parameters initialised from spec->seed. */
RF_API rf_status rf_model_create(const rf_model_spec *spec, rf_model **out, rf_error *err) RF_WUR;
RF_API void rf_model_free(rf_model *m);
RF_API const rf_model_spec *rf_model_spec_of(const rf_model *m);
RF_API const rf_model_info *rf_model_info_of(const rf_model *m);

/* The parameters, for serialisation, copying and communication: the dense slab (n_params
 * floats), the running statistics (n_buffers) and the embedding tables (n_emb_rows x E,
 * field f's rows first at rf_model_emb_offset(m, f)). The pointers are the model's own. */
RF_API float *rf_model_params(const rf_model *m);
RF_API float *rf_model_buffers(const rf_model *m);
RF_API float *rf_model_emb(const rf_model *m);
RF_API size_t rf_model_emb_offset(const rf_model *m, int f);

/* Parameter groups: which task's loss reaches which parameters. Each group is a 2-D block of
 * the dense slab (rows x cols floats, row stride ld, starting at off) or, with emb = 1, a
 * column block of the embedding tables (off is then the first column of each row). tasks is the
 * bitmask of the tasks whose loss has a gradient there; owner is the task whose tower it is, or
 * -1 for parameters of no single tower. A group is shared (PUB's sense) when more than one bit of
 * tasks is set: the input embeddings, and with ResFlow links or ESMM products a parent's tower,
 * which its descendants' losses reach too. Tower models (resflow, nse, esmm) have a group per
 * tower layer and parameter; op-graph zoo models a group per op parameter block and per run of
 * columns with one mask, derived exactly from the graph's structure and the model's objective
 * (MMoE's experts are shared, its gates and towers a task's own; STEM's per-task embedding
 * chunks and experts, behind their stop-gradients, are their task's; owner is then the single
 * task of the mask, or -1). */
typedef struct {
    char name[48];  /* e.g. "tower1.layer0.W", "emb" */
    size_t off, rows, cols, ld;
    int emb;
    int owner;
    uint32_t tasks;
} rf_param_group;
/* Fill up to max groups (out may be NULL to count); returns the number of groups. The dense
 * groups cover every dense parameter exactly once, the embedding groups every column. */
RF_API int rf_model_param_groups(const rf_model *m, rf_param_group *out, int max);

/* The embedding row width a model of this specification has: model.emb_dim, times K for
 * single-task models and K + 1 for STEM (a chunk per task, and STEM's shared one). */
RF_API int rf_model_emb_width(const rf_model_spec *s);
/* 1 for the side-by-side tower families (resflow, nse, esmm), 0 for the op-graph zoo. */
RF_API int rf_model_type_is_tower(rf_model_type t);

/* Names of model.type values ("resflow", "mmoe", ...) and back (-1 if unknown). */
RF_API const char *rf_model_type_name(rf_model_type t);
RF_API int rf_model_type_parse(const char *name);
/* 1 when probabilities multiply along the task tree (esmm, escm2_*, dcmt): then a child's
 * conditional output (rf_ws_cond) is its own tower's sigmoid, e.g. pCVR. */
RF_API int rf_model_is_product(const rf_model *m);

/* Per-batch scratch (activations and their gradients) for up to max_batch rows, owned by the
 * caller: one per thread, so many threads can score with one const model at once. Concurrent
 * callers must each run with one OpenMP thread (omp_set_num_threads(1), or threads = 1 in
 * rf_predict / rf_scorer_opts): Debian's OpenMP build of OpenBLAS shares the buffers of its
 * multi-threaded GEMMs between calls (built with NUM_PARALLEL=1), so two multi-threaded GEMMs
 * from two threads at once can return wrong values (seen in test_seam: a whole row off). */
typedef struct rf_workspace rf_workspace;
RF_API rf_workspace *rf_workspace_create(const rf_model *m, int max_batch);
RF_API void rf_workspace_free(rf_workspace *ws);

/* The precision of a workspace's tower GEMMs (train.precision): fp32 (a new workspace), or bf16
 * for the tower models (resflow, nse, esmm): the forward GEMMs and both backward GEMMs of the
 * hidden layers round their operands to bfloat16 and accumulate in fp32 (AVX512-BF16); the
 * parameters, gradients, optimizer state and every other step stay fp32. bf16 fails with
 * RF_EUSAGE on a CPU without AVX512-BF16 (no silent fallback) and for the op-graph zoo models,
 * RF_ENOMEM if its packing buffers cannot be had. docs/performance.md, "bf16 training". */
/* int8 is for scoring only (rf_predict_opts, rf_scorer_opts; not train.precision): the hidden
 * layers' weights are quantized per output column when the precision is set (so the workspace
 * scores the model as it was then), each batch's activations per row, and AVX512-VNNI sums the
 * int8 products exactly in int32 (docs/performance.md, "int8 scoring"). It fails with RF_EUSAGE
 * on a CPU without AVX512-VNNI, for the op-graph zoo models, and when the workspace then runs a
 * training forward pass. */
typedef enum { RF_PREC_FP32 = 0, RF_PREC_BF16 = 1, RF_PREC_INT8 = 2 } rf_precision;
RF_API rf_status rf_ws_set_precision(rf_workspace *ws, const rf_model *m, rf_precision p, rf_error *err) RF_WUR;
/* Make ws (its precision set) a scoring workspace of m as m is now: in bf16 the hidden layers'
 * weights are packed once for every later pass with train = 0 (they are packed per GEMM
 * otherwise), and in bf16 and int8 such passes fuse bias, activation and links into the GEMMs'
 * write-back (the same scores; the pre-activations, for a backward pass, are then not kept).
 * fp32 and the zoo models: nothing to do. rf_predict_ex and rf_scorer do this; a workspace that
 * trains must not (m changes). */
RF_API rf_status rf_ws_score_only(rf_workspace *ws, const rf_model *m, rf_error *err) RF_WUR;
/* 1 if this CPU runs bf16 training (AVX512-BF16); RESFLOW_BF16=off in the environment says 0. */
RF_API int rf_bf16_supported(void);
/* 1 if this CPU runs int8 scoring (AVX512-VNNI); RESFLOW_INT8=off in the environment says 0. */
RF_API int rf_int8_supported(void);

/* Synchronised BatchNorm (data-parallel training, dist.h): with a batch sum set, the training
 * forward passes on ws normalise with the statistics of the global batch of which ws sees one
 * process's rows, and the backward passes combine BN's per-feature gradient sums likewise. fn
 * sums v[0..n) over every process of the step, in place (the same order of calls everywhere; a
 * process with no row of a step joins them through rf_train_step). The running statistics come
 * from the global values, so they stay the same on every process. NULL (the default): the batch
 * is local. With one process the results are bit for bit those without a sum. */
typedef rf_status (*rf_batch_sum_fn)(void *ud, double *v, int n, rf_error *err);
RF_API void rf_ws_set_batch_sum(rf_workspace *ws, rf_batch_sum_fn fn, void *ud);

/* A batch is a list of row indices into a dataset. label_col[k] is the dataset label column
 * of task k (only needed for the loss). */
typedef struct {
    const rf_dataset *ds;
    const size_t *rows;    /* (B) */
    int B;
    const int *label_col;  /* (K) */
} rf_batch;

/* Forward pass; the model is only read. train != 0 uses batch statistics in BN and computes
 * the updated running statistics into ws (rf_model_adopt_buffers moves them into the model)
 * and lays out ws for a backward pass. Outputs valid until the next call on ws. */
RF_API rf_status rf_model_forward(const rf_model *m, rf_workspace *ws, const rf_batch *b, int train,
                                  rf_error *err);
/* After a training forward: make its running statistics (BN) the model's. */
RF_API void rf_model_adopt_buffers(rf_model *m, const rf_workspace *ws);
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

/* Gradients: the dense slab's mirror (n_params floats, the same layout as rf_model_params,
 * so an all-reduce is one call) and the row-sparse embedding gradients (distinct global rows and
 * their E floats each). One per training thread; several to keep per-task gradients apart. */
typedef struct rf_grads rf_grads;
RF_API rf_grads *rf_grads_create(const rf_model *m);
RF_API void rf_grads_free(rf_grads *g);
/* Zero the dense gradient and clear the sparse rows. */
RF_API void rf_grads_zero(rf_grads *g);
RF_API float *rf_grads_dense(const rf_grads *g, size_t *n);
/* n_rows distinct global embedding rows and their (n_rows, E) gradients. */
RF_API size_t rf_grads_emb(const rf_grads *g, const uint32_t **rows, float **vals);
/* Clear the sparse rows only (after an optimizer consumed them). */
RF_API void rf_grads_emb_clear(rf_grads *g);
/* Add n embedding rows' gradients (rows[i] and its E floats at vals + i*E) into g's sparse set:
 * a row already there is summed (in the order given), a new one is appended. RF_EUSAGE for a
 * row outside the tables, RF_ENOMEM when the set cannot grow. For merging the rows of several
 * processes (dist.h). */
RF_API rf_status rf_grads_emb_add(rf_grads *g, const uint32_t *rows, const float *vals, size_t n,
                                  rf_error *err) RF_WUR;

/* Backward of the last loss (rf_model_loss must be called first; its task_scale applies):
 * dense gradients are ACCUMULATED into g, embedding rows added to g's sparse set. A one-hot
 * task_scale gives one task's gradient of every parameter (rf_model_task_grads). RF_ENOMEM
 * when the sparse set cannot grow. */
RF_API rf_status rf_model_backward(const rf_model *m, rf_workspace *ws, const rf_batch *b, rf_grads *g,
                                   rf_error *err) RF_WUR;

/* The same backward pass in three parts, for callers that overlap them:
 * rf_model_backward = _dense (all dense gradients except layer 0's weights, and the input
 * gradient; reserves the sparse set) + _w0 (layer 0's weight gradient, the largest GEMM) +
 * _emb (row-sparse embedding gradients from the input gradient). After _dense, _w0 and _emb
 * touch disjoint state and may run concurrently. */
RF_API rf_status rf_model_backward_dense(const rf_model *m, rf_workspace *ws, const rf_batch *b, rf_grads *g,
                                         rf_error *err) RF_WUR;
RF_API void rf_model_backward_w0(const rf_model *m, rf_workspace *ws, rf_grads *g);
RF_API void rf_model_backward_emb(const rf_model *m, rf_workspace *ws, const rf_batch *b, rf_grads *g);
/* _emb fused with its consumer, for an update that treats each row on its own (lazy Adam: see
 * rf_optimizer_sparse_rowwise): the fields' rows are built in parallel, and each field's rows,
 * once complete, are passed to apply(ud, rows) as a read-only gradient set of that field only
 * (rf_grads_emb on it; the dense part is g's), then cleared from g. apply runs concurrently for
 * different fields. Faster than _emb and one update: no list of the whole batch is built, and
 * a field's gradients are still in cache when they are used. */
RF_API void rf_model_backward_emb_each(const rf_model *m, rf_workspace *ws, const rf_batch *b, rf_grads *g,
                                       void (*apply)(void *ud, const rf_grads *rows), void *ud);

/* Each task's gradient on its own, from one forward: per_task[k] (K gradient sets, zeroed
 * here) receives the gradient of task k's loss (task_scale one-hot at k). Their sum is the
 * joint gradient. The loss per task goes to loss_k (K) when not NULL. */
RF_API rf_status rf_model_task_grads(const rf_model *m, rf_workspace *ws, const rf_batch *b,
                                     rf_grads *const *per_task, double *loss_k, rf_error *err) RF_WUR;

#ifdef __cplusplus
}
#endif
#endif
