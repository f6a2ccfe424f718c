/* balance_impl.h - the one small interface behind train.balance's gradient-level methods
 * (uncertainty, pcgrad, mgda, cagrad, nash_mtl: one file each, src/nn/balance_<name>.c), the
 * embedding-gradient helpers they share, and the update-level AdaTask optimizer. Internal.
 *
 * A gradient-level method sees only the K x K Gram matrix M of the per-task gradients on the
 * shared parameters (M_ij = <g_i, g_j>) and the K losses, and returns two coefficient vectors:
 * the combined gradient is sum_k ws[k] g_k on the shared parameters (dense and embeddings) and
 * sum_k wt[k] g_k on the task-specific ones. Every method of the PUB paper's comparison is such a
 * linear combination (PCGrad's projections too: each projected gradient is a combination of the
 * originals), so no method needs the K gradient vectors themselves, and its cost is K^2 dot
 * products over the shared parameters plus the combination. */
#ifndef RESFLOW_NN_BALANCE_IMPL_H
#define RESFLOW_NN_BALANCE_IMPL_H

#include <stdint.h>
#include <string.h>

#include "core/bytes.h"
#include "resflow/balance.h"

/* n doubles as little-endian IEEE bits at dst, and back (the methods' and PUB's saved state). */
static inline void rf_put_f64s_(unsigned char *dst, const double *x, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint64_t b;
        memcpy(&b, x + i, 8);
        wr64(dst + 8 * i, b);
    }
}
static inline void rf_get_f64s_(double *x, const unsigned char *src, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint64_t b = rd64(src + 8 * i);
        memcpy(x + i, &b, 8);
    }
}

typedef struct {
    const rf_train_cfg *tc;
    long step;      /* this step, 1-based */
    uint64_t *rng;  /* the balancer's random state (splitmix64), for PCGrad's task order */
} rf_balance_ctx_;

typedef struct {
    const char *name;
    size_t state_size; /* bytes of zero-initialised per-run state */
    /* ws, wt: K coefficients each (wt may be set equal to ws). Never NaN for a finite PSD M. */
    rf_status (*coeffs)(void *state, const rf_balance_ctx_ *ctx, const double *M, const double *loss, int K,
                        double *ws, double *wt, rf_error *err);
    /* The state's byte form (little-endian, saved_size bytes) for checkpoints: the balancer's
     * optimizer state carries it (balance_step.c). 0 / NULL for a method without state. */
    size_t saved_size;
    void (*save)(const void *state, unsigned char *dst);
    void (*load)(void *state, const unsigned char *src);
} rf_grad_method_;

extern const rf_grad_method_ rf_balance_uncertainty_, rf_balance_pcgrad_, rf_balance_mgda_, rf_balance_cagrad_,
    rf_balance_nash_mtl_;

/* Add to M (K x K, row-major, both triangles) the dot products of the per-task embedding row
 * gradients (rows present in both sets). */
void rf_balance_emb_gram_(rf_grads *const *pt, int K, double *M);
/* out's sparse set := sum_k w[k] * (task k's embedding row gradients), w NULL meaning all 1;
 * rows in order of first appearance over k = 0..K-1, each row's terms added in task order.
 * out's set must be empty; RF_ENOMEM when it cannot grow. */
rf_status rf_balance_emb_combine_(rf_grads *out, rf_grads *const *pt, int K, const double *w, rf_error *err);
/* The shared-parameter mask of m (1: more than one task reaches the dense parameter; see
 * rf_model_param_groups), n = m's dense parameter count; NULL when out of memory. */
unsigned char *rf_balance_shared_mask_(const rf_model *m, size_t *n_shared);

/* The training forward pass, the per-task losses (loss_k, K) and gradients, their sum to *loss,
 * BatchNorm statistics adopted; RF_ENUMERIC (model untouched) for a non-finite loss. */
rf_status rf_balance_task_grads_(rf_model *m, rf_workspace *ws, const rf_batch *bt, rf_grads *const *per_task,
                                 double *loss_k, double *loss, rf_error *err);

/* Minimum-norm point of the convex hull of K vectors with Gram matrix M (Frank-Wolfe with exact
 * line search, as Sener & Koltun's MinNormSolver): w on the simplex minimising w'Mw. */
void rf_balance_min_norm_(const double *M, int K, double *w);

/* AdaTask (Yang et al., AAAI'23): Adam whose moments of the shared dense parameters are kept
 * per task; the update is sum_k m^_k / (sqrt(v^_k) + eps). Task-specific parameters: Adam on
 * the summed gradient; embeddings: lazy Adam on the summed rows (as PUB). */
rf_optimizer *rf_adatask_create_(const rf_model *m, const rf_train_cfg *tc);
/* sum: the summed gradient set (dense and embedding rows) of the per-task ones. */
rf_status rf_adatask_step_(rf_optimizer *o, rf_model *m, rf_grads *const *per_task, int K, const rf_grads *sum,
                           rf_error *err);

#endif
