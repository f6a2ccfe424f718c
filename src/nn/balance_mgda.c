/* balance_mgda.c - MGDA (Sener & Koltun, NeurIPS'18; Desideri's multiple-gradient descent) on
 * the balance interface: the weights are the minimum-norm point of the convex hull of the
 * per-task gradients, min_w |sum_k w_k g_k|^2 over the simplex, found by Frank-Wolfe with an
 * exact line search (the authors' MinNormSolver; closed form for K = 2). The gradient-norm
 * normalisation of their MGDA-UB variants is not applied ("none"). The weights multiply the
 * task losses, so ws = wt = w (their code backpropagates sum_k w_k l_k). */
#include <math.h>

#include "nn/balance_impl.h"

/* the gamma in [0, 1] minimising |(1 - gamma) a + gamma b|^2 given aa, ab, bb */
static double line_min(double aa, double ab, double bb)
{
    double den = aa + bb - 2 * ab;
    if (!(den > 1e-300 * (aa + bb))) return 0; /* a == b (or both zero): nothing to gain */
    double gam = (aa - ab) / den;
    return gam < 0 ? 0 : gam > 1 ? 1 : gam;
}

void rf_balance_min_norm_(const double *M, int K, double *w)
{
    for (int k = 0; k < K; k++) w[k] = 1.0 / K;
    if (K == 1) return;
    if (K == 2) {
        double gam = line_min(M[3], M[1], M[0]); /* a = g_2, b = g_1 */
        if (M[0] + M[3] - 2 * M[1] > 1e-300 * (M[0] + M[3])) {
            w[0] = gam;
            w[1] = 1 - gam;
        }
        return;
    }
    /* start from the best pair (as MinNormSolver), then Frank-Wolfe over all K */
    double best = INFINITY;
    for (int i = 0; i < K; i++)
        for (int j = i + 1; j < K; j++) {
            double gam = line_min(M[j * K + j], M[i * K + j], M[i * K + i]); /* a = g_j, b = g_i */
            double v = (1 - gam) * (1 - gam) * M[j * K + j] + 2 * gam * (1 - gam) * M[i * K + j] + gam * gam * M[i * K + i];
            if (v < best) {
                best = v;
                for (int k = 0; k < K; k++) w[k] = 0;
                w[i] = gam;
                w[j] = 1 - gam;
            }
        }
    for (int it = 0; it < 10000; it++) {
        double Mw[RF_MAX_TASKS] = {0}, ww = 0;
        for (int i = 0; i < K; i++) {
            Mw[i] = 0;
            for (int j = 0; j < K; j++) Mw[i] += M[i * K + j] * w[j];
            ww += w[i] * Mw[i];
        }
        int t = 0;
        for (int i = 1; i < K; i++)
            if (Mw[i] < Mw[t]) t = i;
        double gam = line_min(ww, Mw[t], M[t * K + t]);
        if (gam <= 1e-12) break;
        for (int i = 0; i < K; i++) w[i] *= 1 - gam;
        w[t] += gam;
    }
}

static rf_status mgda_coeffs(void *state, const rf_balance_ctx_ *ctx, const double *M, const double *loss, int K,
                             double *ws, double *wt, rf_error *err)
{
    (void)state;
    (void)ctx;
    (void)loss;
    (void)err;
    rf_balance_min_norm_(M, K, ws);
    for (int k = 0; k < K; k++) wt[k] = ws[k];
    return RF_OK;
}

const rf_grad_method_ rf_balance_mgda_ = {"mgda", 0, mgda_coeffs, 0, NULL, NULL};
