/* balance_nashmtl.c - Nash-MTL (Navon et al., ICML'22) on the balance interface: the
 * Nash-bargaining weights alpha_i (M alpha)_i = 1 of the per-task GRADIENTS (rf_pub_weights,
 * which solves the same equations for PUB's updates; the authors use cvxpy's CCP), refreshed
 * every train.balance_interval steps (their update_weights_every, default 1) and reused in
 * between. The weights multiply the task losses (wt = alpha), and the shared gradient is
 * clipped to norm 1 as the authors' max_norm = 1 (ws = alpha * min(1, 1/|sum alpha_k g_k|)). */
#include <math.h>

#include "nn/balance_impl.h"

typedef struct {
    double alpha[RF_MAX_TASKS];
    long next; /* the step of the next solve (0: the first step) */
} nash_state;

static rf_status nash_coeffs(void *state, const rf_balance_ctx_ *ctx, const double *M, const double *loss, int K,
                             double *ws, double *wt, rf_error *err)
{
    (void)loss;
    nash_state *s = state;
    if (ctx->step >= s->next) {
        rf_status st = rf_pub_weights(M, K, s->alpha, err);
        if (st) return st;
        int every = ctx->tc->balance_interval > 0 ? ctx->tc->balance_interval : 1;
        s->next = ctx->step + every;
    }
    double n2 = 0;
    for (int i = 0; i < K; i++)
        for (int j = 0; j < K; j++) n2 += s->alpha[i] * M[i * K + j] * s->alpha[j];
    double clip = n2 > 1 ? 1 / sqrt(n2) : 1;
    for (int k = 0; k < K; k++) {
        wt[k] = s->alpha[k];
        ws[k] = s->alpha[k] * clip;
    }
    return RF_OK;
}

/* saved: alpha (RF_MAX_TASKS f64) | u64 next */
static void nash_save(const void *state, unsigned char *p)
{
    const nash_state *s = state;
    rf_put_f64s_(p, s->alpha, RF_MAX_TASKS);
    wr64(p + 8 * RF_MAX_TASKS, (uint64_t)s->next);
}

static void nash_load(void *state, const unsigned char *p)
{
    nash_state *s = state;
    rf_get_f64s_(s->alpha, p, RF_MAX_TASKS);
    s->next = (long)rd64(p + 8 * RF_MAX_TASKS);
}

const rf_grad_method_ rf_balance_nash_mtl_ = {"nash_mtl", sizeof(nash_state), nash_coeffs,
                                              8 * RF_MAX_TASKS + 8, nash_save, nash_load};
