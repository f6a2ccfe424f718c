/* optim.h - the optimizer interface, and Adam (dense) with row-sparse ("lazy") Adam
 * (embeddings) as its first implementation.
 *
 * An optimizer turns a gradient set (rf_grads: the dense slab and the row-sparse embedding
 * rows) into a parameter update. One step is begin (advance the step count), then the dense
 * update and the sparse update; after begin the two touch disjoint state, so the training step
 * may run them concurrently with the tail of the backward pass. Its whole state (step count,
 * moments) is saved to and restored from a byte buffer through the same interface, so a
 * checkpoint resumes exactly. New optimizers (PUB, the gradient-balancing methods) implement
 * rf_optimizer_ops; the per-task gradients they need come from rf_model_task_grads and the
 * parameter groups (shared / task k) from rf_model_param_groups (model.h).
 *
 * Adam, dense: exactly torch.optim.Adam (L2 weight decay added to the gradient):
 *   g += wd*p; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
 *   p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps)
 * Embeddings: torch.optim.SparseAdam semantics: only rows present in the batch update their
 * moments and values, with the global step t for bias correction:
 *   g += wd_emb*row; m_r = b1 m_r + (1-b1) g; v_r = b2 v_r + (1-b2) g^2;
 *   row -= lr_emb * sqrt(1-b2^t)/(1-b1^t) * m_r / (sqrt(v_r) + eps)
 * Rows absent from a batch are untouched (their moments do not decay), which is what makes
 * the update cost proportional to the batch and not to the vocabulary.
 */
#ifndef RESFLOW_OPTIM_H
#define RESFLOW_OPTIM_H

#include "model.h"
#include "trainopts.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rf_optimizer rf_optimizer;

/* What an optimizer implements. update_dense and update_sparse may run concurrently.
 * sparse_rowwise: 1 when update_sparse changes each embedding row from that row's gradient
 * alone (lazy Adam), so that it may be called on disjoint parts of a step's rows, concurrently
 * (rf_model_backward_emb_each); 0 when it needs the whole set at once. */
typedef struct {
    const char *name;
    void (*update_dense)(rf_optimizer *o, rf_model *m, const rf_grads *g);
    void (*update_sparse)(rf_optimizer *o, rf_model *m, const rf_grads *g);
    size_t (*state_size)(const rf_optimizer *o);
    void (*save)(const rf_optimizer *o, unsigned char *dst);
    rf_status (*load)(rf_optimizer *o, const unsigned char *src, size_t n, rf_error *err);
    void (*destroy)(rf_optimizer *o);
    int sparse_rowwise;
} rf_optimizer_ops;

/* Every optimizer starts with this header (implementations embed it as their first member). */
struct rf_optimizer {
    const rf_optimizer_ops *ops;
    long steps; /* updates begun so far (Adam's t) */
};

/* Adam over the dense slab and lazy Adam over the embedding rows, with tc's lr, emb_lr, betas,
 * eps and weight decays. NULL when out of memory. */
RF_API rf_optimizer *rf_adam_create(const rf_model *m, const rf_train_cfg *tc);
RF_API void rf_optimizer_free(rf_optimizer *o);
RF_API const char *rf_optimizer_name(const rf_optimizer *o);
RF_API long rf_optimizer_steps(const rf_optimizer *o);

/* One whole update: begin, dense, sparse. Does not clear the gradients. */
RF_API void rf_optimizer_step(rf_optimizer *o, rf_model *m, const rf_grads *g);
/* The step in parts, for callers that overlap them: begin first, then the dense and the
 * sparse update (independent; may run concurrently). */
RF_API void rf_optimizer_begin(rf_optimizer *o);
RF_API void rf_optimizer_update_dense(rf_optimizer *o, rf_model *m, const rf_grads *g);
RF_API void rf_optimizer_update_sparse(rf_optimizer *o, rf_model *m, const rf_grads *g);
/* The ops' sparse_rowwise: whether update_sparse may take a step's rows in parts. */
RF_API int rf_optimizer_sparse_rowwise(const rf_optimizer *o);

/* The optimizer's whole state as bytes: save writes rf_optimizer_state_size bytes to dst
 * (little-endian, with the optimizer's name and sizes, so a mismatched load is refused);
 * load restores it (RF_EFORMAT naming what does not match). */
RF_API size_t rf_optimizer_state_size(const rf_optimizer *o);
RF_API void rf_optimizer_save_state(const rf_optimizer *o, unsigned char *dst);
RF_API rf_status rf_optimizer_load_state(rf_optimizer *o, const unsigned char *src, size_t n,
                                         rf_error *err) RF_WUR;

#ifdef __cplusplus
}
#endif
#endif
