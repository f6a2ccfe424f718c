/* optim.h - Adam for the dense slab and row-sparse ("lazy") Adam for embeddings.
 *
 * Dense: exactly torch.optim.Adam (L2 weight decay added to the gradient):
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

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rf_adam rf_adam;

RF_API rf_adam *rf_adam_create(const rf_model *m, const rf_train_cfg *tc);
RF_API void rf_adam_free(rf_adam *a);
/* One step: dense update from m->grads, sparse update from the workspace's embedding grads.
 * Does not clear gradients. */
RF_API void rf_adam_step(rf_adam *a, rf_model *m, const rf_workspace *ws);
RF_API long rf_adam_steps(const rf_adam *a);
/* rf_adam_step in parts, for callers that overlap them: advance the step counter, then the
 * dense update and the sparse embedding update (independent; may run concurrently). */
RF_API void rf_adam_begin(rf_adam *a);
RF_API void rf_adam_update_dense(rf_adam *a, rf_model *m);
RF_API void rf_adam_update_sparse(rf_adam *a, rf_model *m, const rf_workspace *ws);

#ifdef __cplusplus
}
#endif
#endif
