/* balance_cagrad.c - CAGrad, conflict-averse gradient descent (Liu et al., NeurIPS'21) on the
 * balance interface, as the authors' code with c = 0.5 and rescale = 1: with g0 the mean
 * gradient and phi = c^2 |g0|^2, w on the simplex minimises
 *   F(w) = g_w' g0 + sqrt(phi) |g_w|,   g_w = sum_k w_k g_k,
 * and the shared update direction is d = (g0 + (sqrt(phi) / |g_w|) g_w) / (1 + c^2). Their
 * scipy SLSQP solve is replaced by Frank-Wolfe with a golden-section line search (F is convex).
 * The Gram matrix is first divided by its largest diagonal entry so the authors' 1e-8
 * safeguards are relative (d is then scaled back: it is linear in the gradients). Task-specific
 * parameters: the plain sum (wt = 1). */
#include <math.h>

#include "nn/balance_impl.h"

#define CAGRAD_C 0.5

typedef struct {
    const double *G;
    int K;
    double cn; /* sqrt(phi) */
} prob;

static double quad(const double *G, int K, const double *x, const double *y)
{
    double s = 0;
    for (int i = 0; i < K; i++)
        for (int j = 0; j < K; j++) s += x[i] * G[i * K + j] * y[j];
    return s;
}

static double F(const prob *p, const double *w)
{
    double b[RF_MAX_TASKS];
    for (int k = 0; k < p->K; k++) b[k] = 1.0 / p->K;
    return quad(p->G, p->K, w, b) + p->cn * sqrt(quad(p->G, p->K, w, w) + 1e-8);
}

static rf_status cagrad_coeffs(void *state, const rf_balance_ctx_ *ctx, const double *M, const double *loss,
                               int K, double *ws, double *wt, rf_error *err)
{
    (void)state;
    (void)ctx;
    (void)loss;
    (void)err;
    double dmax = 0, G[RF_MAX_TASKS * RF_MAX_TASKS];
    for (int k = 0; k < K; k++) {
        wt[k] = 1;
        dmax = fmax(dmax, M[k * K + k]);
    }
    if (!(dmax > 0)) { /* all gradients zero: the mean */
        for (int k = 0; k < K; k++) ws[k] = 1.0 / K;
        return RF_OK;
    }
    double mean = 0;
    for (int i = 0; i < K * K; i++) {
        G[i] = M[i] / dmax;
        mean += G[i];
    }
    mean /= (double)K * K; /* |g0|^2 */
    prob p = {G, K, CAGRAD_C * sqrt(mean + 1e-8) + 1e-8};
    double w[RF_MAX_TASKS];
    for (int k = 0; k < K; k++) w[k] = 1.0 / K;
    for (int it = 0; it < 300 && K > 1; it++) {
        double Gw[RF_MAX_TASKS], ww = quad(G, K, w, w), nw = sqrt(ww + 1e-8);
        int t = 0;
        for (int i = 0; i < K; i++) {
            Gw[i] = 0;
            double gb = 0;
            for (int j = 0; j < K; j++) {
                Gw[i] += G[i * K + j] * w[j];
                gb += G[i * K + j] / K;
            }
            Gw[i] = gb + p.cn * Gw[i] / nw; /* the gradient of F */
            if (Gw[i] < Gw[t]) t = i;
        }
        double dg = 0; /* the Frank-Wolfe gap */
        for (int i = 0; i < K; i++) dg += Gw[i] * w[i];
        dg -= Gw[t];
        if (dg < 1e-12) break;
        /* golden section on gamma in [0, 1] along w -> e_t */
        double lo = 0, hi = 1, x[RF_MAX_TASKS];
        const double r = 0.6180339887498949;
        for (int ls = 0; ls < 60; ls++) {
            double a = hi - r * (hi - lo), b = lo + r * (hi - lo), fa, fb;
            for (int i = 0; i < K; i++) x[i] = (1 - a) * w[i] + (i == t) * a;
            fa = F(&p, x);
            for (int i = 0; i < K; i++) x[i] = (1 - b) * w[i] + (i == t) * b;
            fb = F(&p, x);
            if (fa <= fb) hi = b;
            else lo = a;
        }
        double gam = 0.5 * (lo + hi);
        for (int i = 0; i < K; i++) w[i] = (1 - gam) * w[i] + (i == t) * gam;
    }
    double gw = sqrt(quad(G, K, w, w) + 1e-8), lam = p.cn / (gw + 1e-8);
    for (int k = 0; k < K; k++) ws[k] = (1.0 / K + w[k] * lam) / (1 + CAGRAD_C * CAGRAD_C);
    return RF_OK;
}

const rf_grad_method_ rf_balance_cagrad_ = {"cagrad", 0, cagrad_coeffs, 0, NULL, NULL};
