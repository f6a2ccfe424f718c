/* bnsync.c - synchronised BatchNorm over the processes of a data-parallel step (bnsync.h). The
 * arithmetic per process is that of rf_bn_fwd_train / rf_bn_bwd (ops.c), with the per-feature
 * sums taken over the global batch in between; with one process, bit for bit the same. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn/bnsync.h"
#include "nn/graph.h"
#include "nn/model_impl.h"

static double *scratch(rf_bn_sync *s, size_t n)
{
    if (s->st) return NULL; /* a failed sum earlier in this pass: the pass fails */
    if (n > s->cap) {
        double *p = realloc(s->v, n * sizeof *p);
        if (!p) {
            s->st = rf_errorf(&s->err, RF_ENOMEM, "out of memory for the BatchNorm statistics");
            return NULL;
        }
        s->v = p;
        s->cap = n;
    }
    return s->v;
}

static int sum(rf_bn_sync *s, double *v, int n)
{
    rf_status st = s->fn(s->ud, v, n, &s->err);
    if (st) s->st = st;
    return st == RF_OK;
}

void rf_bn_sync_fwd(rf_bn_sync *s, const float *X, float *Y, int B, int N, int ld, const float *gamma,
                    const float *beta, float *mean, float *rstd, float *run_mean, float *run_var, float momentum,
                    float eps)
{
    double *v = scratch(s, 2 * (size_t)N + 1);
    if (!v) return;
    double *mu = v + 1, *q = v + 1 + N;
    memset(v, 0, (2 * (size_t)N + 1) * sizeof *v);
    v[0] = B;
    for (int b = 0; b < B; b++) {
        const float *x = X + (size_t)b * ld;
        for (int j = 0; j < N; j++) mu[j] += x[j];
    }
    if (!sum(s, v, N + 1)) return;
    double Bg = v[0];
    s->rows = Bg;
    if (Bg < 1) Bg = 1; /* no rows anywhere: never in a training step */
    for (int j = 0; j < N; j++) mu[j] /= Bg;
    for (int b = 0; b < B; b++) {
        const float *x = X + (size_t)b * ld;
        for (int j = 0; j < N; j++) {
            double d = x[j] - mu[j];
            q[j] += d * d;
        }
    }
    if (!sum(s, q, N)) return;
    for (int j = 0; j < N; j++) {
        double var = q[j] / Bg;
        mean[j] = (float)mu[j];
        rstd[j] = (float)(1.0 / sqrt(var + eps));
        double unb = Bg > 1 ? q[j] / (Bg - 1) : var;
        run_mean[j] = (float)((1 - momentum) * run_mean[j] + momentum * mu[j]);
        run_var[j] = (float)((1 - momentum) * run_var[j] + momentum * unb);
    }
#pragma omp parallel for schedule(static) if ((long)B * N > 65536)
    for (int b = 0; b < B; b++) {
        const float *x = X + (size_t)b * ld;
        float *y = Y + (size_t)b * ld;
#pragma omp simd
        for (int j = 0; j < N; j++) y[j] = (x[j] - mean[j]) * rstd[j] * gamma[j] + beta[j];
    }
}

void rf_bn_sync_bwd(rf_bn_sync *s, const float *X, const float *dY, float *dX, int B, int N, int ld,
                    const float *gamma, const float *mean, const float *rstd, float *dgamma, float *dbeta)
{
    double *v = scratch(s, 2 * (size_t)N);
    if (!v) return;
    double *sd = v, *sdx = v + N;
    memset(v, 0, 2 * (size_t)N * sizeof *v);
    for (int b = 0; b < B; b++) {
        const float *x = X + (size_t)b * ld, *dy = dY + (size_t)b * ld;
        for (int j = 0; j < N; j++) {
            float xh = (x[j] - mean[j]) * rstd[j];
            sd[j] += dy[j];
            sdx[j] += (double)dy[j] * xh;
        }
    }
    for (int j = 0; j < N; j++) {
        dgamma[j] += (float)sdx[j];
        dbeta[j] += (float)sd[j];
    }
    /* dY here is (B_global / B) times the global batch's: scaled by B / B_global the sums are
     * the global batch's, and divided by B below they give this process's dX in its own scale */
    double scale = s->rows > 0 ? B / s->rows : 0;
    if (scale != 1.0)
        for (int j = 0; j < 2 * N; j++) v[j] *= scale;
    if (!sum(s, v, 2 * N)) return;
    for (int b = 0; b < B; b++) {
        const float *x = X + (size_t)b * ld, *dy = dY + (size_t)b * ld;
        float *dx = dX + (size_t)b * ld;
        for (int j = 0; j < N; j++) {
            float r = rstd[j];
            float xh = (x[j] - mean[j]) * r;
            dx[j] = gamma[j] * r * (dy[j] - (float)(sd[j] / B) - xh * (float)(sdx[j] / B));
        }
    }
}

rf_status rf_bn_sync_take(rf_bn_sync *s, rf_error *err)
{
    rf_status st = s->st;
    if (st && err) *err = s->err;
    s->st = RF_OK;
    return st;
}

rf_status rf_model_bn_idle_(const rf_model *m, rf_workspace *ws, rf_grads *g, rf_error *err)
{
    rf_bn_sync *s = &ws->bns;
    if (!s->fn || !m->n_buffers) return RF_OK;
    memcpy(ws->bufn, m->buffers, m->n_buffers * sizeof(float));
    ws->bufn_valid = 1;
    float *gp = rf_grads_dense(g, NULL);
    if (m->graph) {
        rf_graph_bn_idle(m->graph, ws->gws, m->params, ws->bufn, gp);
        return rf_bn_sync_take(s, err);
    }
    const rf_model_cfg *mc = &m->spec.model;
    if (mc->bn != RF_BN_BATCH) return RF_OK;
    for (int l = 0; l < m->L; l++) {
        int KH = m->K * m->H[l];
        const rf_layer_params *lp = &m->layer[l];
        rf_bn_sync_fwd(s, NULL, NULL, 0, KH, KH, lp->gamma, lp->beta, ws->mean[l], ws->rstd[l],
                       ws->bufn + m->run_off[l], ws->bufn + m->run_off[l] + KH, mc->bn_momentum, mc->bn_eps);
    }
    for (int l = m->L - 1; l >= 0; l--) {
        int KH = m->K * m->H[l];
        const rf_layer_params *lp = &m->layer[l];
        rf_bn_sync_bwd(s, NULL, NULL, NULL, 0, KH, KH, lp->gamma, ws->mean[l], ws->rstd[l],
                       gp + (lp->gamma - m->params), gp + (lp->beta - m->params));
    }
    return rf_bn_sync_take(s, err);
}
