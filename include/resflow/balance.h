/* balance.h - multi-task update balancing: PUB (Parameter Update Balancing, Yuan et al.,
 * ICDM'24; ../shared/spec/methods.md §2) on the optimizer interface.
 *
 * The weight solve. rf_pub_weights finds the Nash-bargaining weights of a K x K Gram matrix M
 * (symmetric positive semi-definite: M_ij = <u_i, u_j>): alpha > 0 with alpha_i (M alpha)_i = 1.
 * This replaces the authors' cvxpy convex-concave procedure (which, as released, never runs:
 * methods.md §2.7) by its equivalent convex problem, solved exactly:
 *   minimise f(a) = 1/2 a'Ga - sum_i log a_i over a > 0,  G = M / max_i M_ii,
 * whose gradient Ga - 1/a vanishes exactly where a_i (Ga)_i = 1; then alpha = a / sqrt(max M_ii).
 * f is strictly convex when G is positive definite; the method is Newton's (Hessian
 * G + diag(1/a^2), always positive definite, Cholesky) with a backtracking line search that keeps
 * a > 0 and decreases f, from a_i = 1/sqrt(G_ii), to max_i |a_i (Ga)_i - 1| < 1e-12.
 * Degenerate matrices (never NaN out):
 *  - a task whose update is zero (M_ii <= 1e-30 max_j M_jj, or exactly 0) is left out of the
 *    solve and gets alpha_i = 0 (its update contributes nothing whatever its weight); the
 *    others are solved among themselves. All tasks zero: alpha = 0.
 *  - when the equations have no positive solution (singular M with a non-negative null vector,
 *    e.g. u_2 = -u_1) or Newton does not converge in 100 iterations, M is regularised to
 *    G + eps I with eps = 1e-12, 1e-10, ..., 1 (relative to max M_ii) until it converges; the
 *    returned alpha then solves the regularised equations. An ill-conditioned but definite M
 *    is solved without regularisation.
 *  - a non-finite or negative-diagonal M, or K outside 1..RF_MAX_TASKS: RF_EUSAGE (RF_ENUMERIC
 *    for non-finite entries) with alpha set to 1.
 *
 * The PUB optimizer (rf_pub_create) implements rf_optimizer_ops and adds rf_pub_step, the step
 * with per-task gradients (the standard interface only sees the summed gradient). Per step t
 * (betas b1, b2, eps, lr from the training options):
 *  - shared dense parameters (rf_model_param_groups: more than one bit in tasks) keep one Adam
 *    state (m, v) as in the authors' code (§2.4); task k's update is the step Adam would take if
 *    g_k alone arrived:  m~_k = b1 m + (1-b1) g_k, v~_k = b2 v + (1-b2) g_k^2,
 *    u_k = (m~_k/(1-b1^t)) / (sqrt(v~_k)/sqrt(1-b2^t) + eps);
 *    every `update_interval` steps (at t = 1, 1+interval, ...) the Gram matrix
 *    M_ij = <u_i, u_j> over all shared dense parameters (in double) is formed and the weights
 *    alpha = rf_pub_weights(M) refreshed; in between the cached alpha is used. A refresh that
 *    gives some task alpha = 0 (a zero update) is repeated at the next step instead of being
 *    cached for the interval. The parameters move by
 *      p <- p - lr*wd*p - lr * sum_k alpha_k u_k
 *    (decoupled weight decay, applied ONCE per step: the authors' code applies it once per task,
 *    §2.7.3), and the state by the weighted gradient g^ = sum_k alpha_k g_k:
 *    m <- b1 m + (1-b1) g^, v <- b2 v + (1-b2) g^2.
 *    Differences from the authors' code, deliberately: the Gram matrix is built from the shared
 *    parameters only (their code includes the task-specific ones, §2.7.2), with the step count
 *    t of the update being taken (theirs uses the previous one), and the first step solves for
 *    alpha too (theirs starts from alpha = 1).
 *    Which parameters are shared comes from rf_model_param_groups alone, exact for every
 *    model: for the tower models per tower (ResFlow, ESMM: the parent's tower; NSE: none), for
 *    the zoo's op-graph models per op parameter block, from the graph's structure (MMoE's and
 *    PLE's shared experts are shared; gates, task experts and towers belong to one task, as
 *    methods.md §2.4 specifies).
 *  - task-specific dense parameters (one or no bit in tasks): ordinary Adam (as rf_adam_create:
 *    L2 weight decay added to the gradient) on the sum of the per-task gradients, which there is
 *    the owning task's gradient.
 *  - the embeddings are NOT balanced: they get lazy row-sparse Adam (as rf_adam_create) on the
 *    summed per-task gradient. PUB balances the dense shared parameters only; per-task moments
 *    of the embedding rows would cost K times the table.
 * Scale: alpha_i (M alpha)_i = 1 makes |sum_k alpha_k u_k| about sqrt(K), independent of the
 * number of shared parameters (plain Adam's step is about sqrt(P) per lr); this is the
 * specified (§2.3/2.4) behaviour, so lr for PUB is not comparable with Adam's.
 * Through the plain interface (rf_optimizer_step with a summed gradient, e.g. rf_train_step) the
 * PUB optimizer is plain Adam on every parameter (no per-task gradients, nothing to balance).
 * Its state (steps, Adam moments, alpha, the next refresh step) saves and loads through
 * rf_optimizer_save_state / rf_optimizer_load_state.
 */
#ifndef RESFLOW_BALANCE_H
#define RESFLOW_BALANCE_H

#include "optim.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Nash-bargaining weights of the K x K Gram matrix M (row-major, symmetric PSD): alpha (K) with
 * alpha_i (M alpha)_i = 1, alpha >= 0 (0 exactly for zero-update tasks). See above. */
RF_API rf_status rf_pub_weights(const double *M, int K, double *alpha, rf_error *err) RF_WUR;

/* The PUB optimizer for model m with tc's lr, emb_lr, betas, eps and weight decays; weights
 * refreshed every update_interval steps (methods.md §2.5: 10; < 1 means 1). NULL when out of
 * memory. Free with rf_optimizer_free. */
RF_API rf_optimizer *rf_pub_create(const rf_model *m, const rf_train_cfg *tc, int update_interval);

/* One PUB step with the K per-task gradients per_task[0..K-1] (from rf_model_task_grads; K must
 * be the model's task count): begins the step (the step count advances), then the updates
 * above. The gradients are only read. RF_EUSAGE when pub is not a PUB optimizer or K does not
 * match; RF_ENOMEM; RF_ENUMERIC (the model and the state untouched, the step count restored)
 * when, on a refresh step, the Gram matrix of the per-task updates is not finite (between
 * refreshes the gradients are not checked, as in Adam). */
RF_API rf_status rf_pub_step(rf_optimizer *pub, rf_model *m, rf_grads *const *per_task, int K,
                             rf_error *err) RF_WUR;

/* The current task weights (K of them; all 1 before the first step), or NULL when o is not a
 * PUB optimizer. */
RF_API const double *rf_pub_alpha(const rf_optimizer *o);

/* A PUB training step on a batch: the training forward pass, the per-task losses and gradients
 * (rf_model_task_grads into per_task, K = the model's task count), BatchNorm statistics adopted,
 * rf_pub_step. The summed loss goes to *loss; a non-finite loss returns RF_ENUMERIC without
 * touching the model. */
RF_API rf_status rf_train_step_pub(rf_model *m, rf_workspace *ws, rf_grads *const *per_task,
                                   rf_optimizer *pub, const rf_batch *b, double *loss,
                                   rf_error *err) RF_WUR;

#ifdef __cplusplus
}
#endif
#endif
