/* twin.h - the twin-tower model (model.type twin; paper §5.1, App. A.1, Table 13): per task k a
 * user/query tower over the user-side fields and dense features and an item tower over the
 * item-side ones (model.item_fields, model.item_dense), each an MLP on model.hidden ending in a
 * d-wide vector plus one bias column (d = model.twin_dim):
 *
 *     z_k = <u_k, v_k> + ub_k + vb_k   (+ z_parent(k) with the logit link after the dot product)
 *
 * ResFlow links between the task towers: behind hidden layer l of both towers (model.res_layers),
 * on the vectors before the dot product (u_k += u_parent, v_k += v_parent) and/or on the logit
 * after it (model.twin_link: none|before|after|both). The item vectors can be computed offline
 * and indexed; the user vector online; the K logits of a pair from the K dot products.
 *
 * The vector calls run the model's eval-mode forward on an encoded batch (both towers; only
 * the side asked for is returned, so the other side's inputs may hold any valid id, e.g. 0).
 * b->B rows at most the workspace's capacity. Thread-safe on a const model with a workspace
 * per thread.
 */
#ifndef RESFLOW_TWIN_H
#define RESFLOW_TWIN_H

#include "model.h"

#ifdef __cplusplus
extern "C" {
#endif

/* 1 when m is a twin-tower model (model.type twin), else 0. */
RF_API int rf_model_is_twin(const rf_model *m);
/* d: the vector width (the same for every task); 0 for another model. */
RF_API int rf_twin_dim(const rf_model *m);
/* Categorical field f: 0 = user/query/context side, 1 = item side (-1 out of range or not twin). */
RF_API int rf_twin_field_side(const rf_model *m, int f);
/* Dense feature j: 0 user side, 1 item side (-1 out of range or not twin). */
RF_API int rf_twin_dense_side(const rf_model *m, int j);
/* Item side, for the n = b->B rows of b: v (n, K, d) row-major [i][k][0..d), after the links
 * before the dot product; vb (n, K) the item bias of each task. vb may be NULL. */
RF_API rf_status rf_twin_item_vectors(const rf_model *m, rf_workspace *ws, const rf_batch *b, float *v, float *vb,
                                      rf_error *err);
/* User side, the same for u (n, K, d) and ub (n, K) (ub may be NULL). */
RF_API rf_status rf_twin_user_vectors(const rf_model *m, rf_workspace *ws, const rf_batch *b, float *u, float *ub,
                                      rf_error *err);
/* The K logits of one (user, item) pair from its K dot products dot[k] = <u_k, v_k>:
 * z_k = dot[k] + ub[k] + vb[k] (+ z_parent(k) when the logit link after the dot product is on;
 * with model.monotonic m3 the residual part is clamped to min(r, 0) first, as in the forward
 * pass). Probabilities are sigmoid(z_k). For every row, rf_model_forward's eval-mode logits equal
 * these (within float rounding). */
RF_API void rf_twin_logits(const rf_model *m, const float *dot, const float *ub, const float *vb, float *z);

#ifdef __cplusplus
}
#endif
#endif
