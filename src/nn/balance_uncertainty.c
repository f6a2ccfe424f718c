/* balance_uncertainty.c - uncertainty weighting (Kendall, Gal, Cipolla, CVPR'18) on the
 * balance interface: learned s_k = log sigma_k^2, total loss sum_k exp(-s_k) l_k + s_k / 2,
 * s trained by its own Adam (train.lr, betas, eps) on d/ds_k = 1/2 - exp(-s_k) l_k. The weights
 * exp(-s_k) of this step are taken before s moves. */
#include <math.h>

#include "nn/balance_impl.h"

typedef struct {
    double s[RF_MAX_TASKS], m[RF_MAX_TASKS], v[RF_MAX_TASKS];
    long t;
} uw_state;

static rf_status uw_coeffs(void *state, const rf_balance_ctx_ *ctx, const double *M, const double *loss, int K,
                           double *ws, double *wt, rf_error *err)
{
    (void)M;
    (void)err;
    uw_state *u = state;
    const rf_train_cfg *tc = ctx->tc;
    u->t++;
    double b1 = tc->beta1, b2 = tc->beta2, bc1 = 1 - pow(b1, (double)u->t), bc2 = 1 - pow(b2, (double)u->t);
    for (int k = 0; k < K; k++) {
        double w = exp(-u->s[k]);
        ws[k] = wt[k] = w;
        double l = loss ? loss[k] : 1.0;
        double g = 0.5 - w * l;
        u->m[k] = b1 * u->m[k] + (1 - b1) * g;
        u->v[k] = b2 * u->v[k] + (1 - b2) * g * g;
        double s = u->s[k] - tc->lr * (u->m[k] / bc1) / (sqrt(u->v[k] / bc2) + tc->eps);
        /* exp(-s) stays a finite positive weight: |s| <= 30 */
        u->s[k] = s > 30 ? 30 : s < -30 ? -30 : s;
    }
    return RF_OK;
}

/* saved: s, m, v (RF_MAX_TASKS f64 each) | u64 t */
#define UW_SAVED (3 * RF_MAX_TASKS * 8 + 8)

static void uw_save(const void *state, unsigned char *p)
{
    const uw_state *u = state;
    rf_put_f64s_(p, u->s, RF_MAX_TASKS);
    rf_put_f64s_(p + 8 * RF_MAX_TASKS, u->m, RF_MAX_TASKS);
    rf_put_f64s_(p + 16 * RF_MAX_TASKS, u->v, RF_MAX_TASKS);
    wr64(p + 24 * RF_MAX_TASKS, (uint64_t)u->t);
}

static void uw_load(void *state, const unsigned char *p)
{
    uw_state *u = state;
    rf_get_f64s_(u->s, p, RF_MAX_TASKS);
    rf_get_f64s_(u->m, p + 8 * RF_MAX_TASKS, RF_MAX_TASKS);
    rf_get_f64s_(u->v, p + 16 * RF_MAX_TASKS, RF_MAX_TASKS);
    u->t = (long)rd64(p + 24 * RF_MAX_TASKS);
}

const rf_grad_method_ rf_balance_uncertainty_ = {"uncertainty", sizeof(uw_state), uw_coeffs,
                                                 UW_SAVED,      uw_save,          uw_load};
