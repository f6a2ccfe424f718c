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
 *    alpha = rf_pub_weights(M) refreshed, then rescaled to sum_k alpha_k = K (see Scale below);
 *    in between the cached alpha is used. A refresh that
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
 * Scale: the raw solution alpha_i (M alpha)_i = 1 makes |sum_k alpha_k u_k| about sqrt(K)
 * whatever the number P of shared parameters, i.e. a per-coordinate step of about
 * lr sqrt(K/P), where Adam's is about lr: with P = 10^5 PUB moved ~300x slower than Adam at the
 * same lr. The bargaining only fixes the direction (alpha_i/alpha_j is invariant to scaling
 * M), so the step uses alpha * K / sum(alpha): unit weights when the tasks are balanced, which
 * is exactly the authors' released behaviour (their solver never runs, alpha stays 1, §2.7.1;
 * Table II was produced that way) and keeps train.lr comparable with Adam's. rf_pub_weights
 * itself returns the raw solution; rf_pub_alpha the rescaled weights in use.
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


/* ---- train.balance: the method set of the PUB paper's comparison ------------------------
 *
 * rf_train with tc->balance != RF_BALANCE_NONE takes each step through a balancer: the
 * training forward pass, the K per-task losses and gradients (rf_model_task_grads), then
 *  - gradient-level methods combine the per-task gradients into one gradient set and give it
 *    to Adam (rf_adam_create): on the shared parameters (rf_model_param_groups: dense groups
 *    reached by more than one task, and the embeddings) sum_k ws_k g_k, on the task-specific
 *    ones sum_k wt_k g_k, the coefficients from the K x K Gram matrix of the shared gradients
 *    (dense and embedding rows, in double) and the losses:
 *      uncertainty  Kendall et al. (CVPR'18): learned s_k (log sigma^2, Adam at train.lr),
 *                   loss sum_k exp(-s_k) l_k + s_k/2; ws = wt = exp(-s_k)
 *      pcgrad       Yu et al. (NeurIPS'20): each g_i projected off every g_j (random order,
 *                   seeded by train.seed) it conflicts with (<g_i, g_j> < 0); ws = the sum of
 *                   the projected gradients' coefficients; wt = 1
 *      mgda         Sener & Koltun (NeurIPS'18), MGDA without the upper bound: the minimum-norm
 *                   point of the convex hull (Frank-Wolfe); ws = wt = its simplex weights
 *      cagrad       Liu et al. (NeurIPS'21), c = 0.5: d = (g0 + sqrt(phi)/|g_w| g_w)/(1 + c^2),
 *                   g0 the mean gradient, w minimising g_w'g0 + sqrt(phi)|g_w| on the simplex,
 *                   phi = c^2 |g0|^2; ws = its coefficients, wt = 1
 *      nash_mtl     Navon et al. (ICML'22): alpha_i (M alpha)_i = 1 (rf_pub_weights on the
 *                   gradient Gram matrix), refreshed every train.balance_interval steps
 *                   (default 1); wt = alpha, ws = alpha scaled so |sum alpha_k g_k| <= 1
 *                   (their max_norm 1 clip of the shared gradient)
 *  - update-level methods are optimizers that take the per-task gradients:
 *      pub          rf_pub_step, weights refreshed every train.balance_interval steps (10)
 *      adatask      Yang et al. (AAAI'23): Adam with per-task moments of the shared dense
 *                   parameters, update sum_k m^_k/(sqrt(v^_k) + eps)
 * Degenerate cases stay finite: zero gradients (all or one task, e.g. a task with no
 * positives and a zero-gradient loss), a singular Gram matrix (identical or opposite
 * gradients), one task (every method is then plain Adam on that task). */
typedef enum {
    RF_BALANCE_NONE,
    RF_BALANCE_PUB,
    RF_BALANCE_UNCERTAINTY,
    RF_BALANCE_PCGRAD,
    RF_BALANCE_MGDA,
    RF_BALANCE_CAGRAD,
    RF_BALANCE_NASH_MTL,
    RF_BALANCE_ADATASK,
    RF_BALANCE_COUNT
} rf_balance_method;
/* The config names in enum order (train.balance). */
#define RF_BALANCE_NAMES "none|pub|uncertainty|pcgrad|mgda|cagrad|nash_mtl|adatask"
/* The method's config name ("?" when out of range). */
RF_API const char *rf_balance_name(int method);

/* The coefficients of a gradient-level method (uncertainty, pcgrad, mgda, cagrad, nash_mtl) at
 * its first step, from the Gram matrix M (K x K, row-major) of the per-task gradients and the
 * losses (K; NULL = all 1): ws (shared) and wt (task-specific), K each. PCGrad's task order
 * comes from seed. RF_EUSAGE for another method or K outside 1..RF_MAX_TASKS; RF_ENUMERIC for
 * a non-finite M or loss. For tests and for callers that hold their own gradients. */
RF_API rf_status rf_balance_coeffs(int method, const double *M, const double *loss, int K, uint64_t seed,
                                   double *ws, double *wt, rf_error *err) RF_WUR;

typedef struct rf_balancer rf_balancer;
/* A balancer of `method` (not none) for model m with tc's optimizer settings, balance_interval
 * and seed. NULL when out of memory or method is out of range. */
RF_API rf_balancer *rf_balancer_create(const rf_model *m, const rf_train_cfg *tc, int method);
RF_API void rf_balancer_free(rf_balancer *b);
/* One update from the K per-task gradients (read, not changed) and losses (K; used by
 * uncertainty). RF_ENUMERIC (model untouched) for a non-finite Gram matrix or loss. */
RF_API rf_status rf_balancer_step(rf_balancer *b, rf_model *m, rf_grads *const *per_task, const double *loss_k,
                                  rf_error *err) RF_WUR;
/* The task weights of the last step into w (K): the shared coefficients ws of a gradient-level
 * method, PUB's alpha, all 1 for AdaTask and before the first step. Returns K. */
RF_API int rf_balancer_weights(const rf_balancer *b, double *w);
/* The optimizer underneath (PUB, AdaTask, or for a gradient-level method Adam, named
 * "adam+balance", whose state also holds the method's: uncertainty's log-variances and their
 * moments, Nash-MTL's weights and next solve, PCGrad's random state, the last weights): its
 * steps and state. Saving and loading that state (a checkpoint) resumes the balancer exactly. */
RF_API rf_optimizer *rf_balancer_optimizer(const rf_balancer *b);
/* A balanced training step on a batch: forward, per-task losses and gradients into per_task
 * (K sets), BatchNorm statistics adopted, rf_balancer_step. The summed loss to *loss; a
 * non-finite loss returns RF_ENUMERIC without touching the model. */
RF_API rf_status rf_train_step_balanced(rf_model *m, rf_workspace *ws, rf_grads *const *per_task, rf_balancer *b,
                                        const rf_batch *bt, double *loss, rf_error *err) RF_WUR;

#ifdef __cplusplus
}
#endif
#endif
