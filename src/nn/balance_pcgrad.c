/* balance_pcgrad.c - PCGrad, gradient surgery (Yu et al., NeurIPS'20) on the balance interface.
 * For each task i, its gradient is projected off the other tasks' ORIGINAL gradients g_j, in a
 * random order, whenever they conflict: g_i <- g_i - (<g_i, g_j> / |g_j|^2) g_j if
 * <g_i, g_j> < 0 (the authors' code: the projection uses the running g_i and the original
 * g_j). The shared gradient is the sum of the projected ones. In coefficient form (each
 * projected g_i is a combination c_i of the originals, <c_i, g_j> = (c_i' M)_j) it needs only
 * the Gram matrix. Task-specific parameters get the plain sum (wt = 1). */
#include "nn/balance_impl.h"

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static rf_status pcgrad_coeffs(void *state, const rf_balance_ctx_ *ctx, const double *M, const double *loss,
                               int K, double *ws, double *wt, rf_error *err)
{
    (void)state;
    (void)loss;
    (void)err;
    for (int k = 0; k < K; k++) ws[k] = 0, wt[k] = 1;
    for (int i = 0; i < K; i++) {
        int order[RF_MAX_TASKS], n = 0;
        for (int j = 0; j < K; j++)
            if (j != i) order[n++] = j;
        for (int a = n - 1; a > 0; a--) { /* Fisher-Yates */
            int b = (int)(splitmix(ctx->rng) % (uint64_t)(a + 1)), t = order[a];
            order[a] = order[b];
            order[b] = t;
        }
        double c[RF_MAX_TASKS] = {0};
        c[i] = 1;
        for (int q = 0; q < n; q++) {
            int j = order[q];
            double njj = M[j * K + j], dot = 0;
            for (int l = 0; l < K; l++) dot += c[l] * M[l * K + j];
            if (dot < 0 && njj > 0) c[j] -= dot / njj;
        }
        for (int l = 0; l < K; l++) ws[l] += c[l];
    }
    return RF_OK;
}

const rf_grad_method_ rf_balance_pcgrad_ = {"pcgrad", 0, pcgrad_coeffs, 0, NULL, NULL};
