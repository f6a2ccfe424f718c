/* forward.c - the forward pass and the loss of the tower models (ResFlow, NSE, ESMM) and of the
 * op-graph zoo, on a caller-owned workspace; the model is only read (include/resflow/model.h).
 * Hidden layer l of every tower lives in one (B, K*H_l) matrix, so the first layer (shared
 * input) is a single GEMM and a residual link is a column-block add; tasks are visited parents
 * first. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/bigmem.h"
#include "core/omp.h"
#include "nn/epi.h"
#include "nn/gemm_bf16.h"
#include "nn/gemm_int8.h"
#include "nn/graph.h"
#include "nn/model_impl.h"
#include "nn/ops.h"
#include "nn/twin_impl.h"

/* ---------------------------------------------------------------------------------------- */

rf_workspace *rf_workspace_create(const rf_model *m, int maxB)
{
    rf_workspace *ws = calloc(1, sizeof *ws);
    if (!ws) return NULL;
    int K = m->K, ok = 1;
    size_t B = maxB > 0 ? (size_t)maxB : 1;
    ws->maxB = (int)B;
#define AL(p, n) do { (p) = rf_big_malloc_((n) * sizeof *(p)); ok &= (p) != NULL; } while (0)
    AL(ws->x, B * m->In);
    AL(ws->dx, B * m->In);
    int bn = m->spec.model.bn == RF_BN_BATCH;
    AL(ws->bufn, m->n_buffers ? m->n_buffers : 1);
    if (m->graph && !(ws->gws = rf_graph_ws_create(m->graph, (int)B))) ok = 0;
    if (m->graph) {
        ws->nx = rf_zoo_n_extra(&m->spec);
        AL(ws->X, B * (size_t)(ws->nx ? ws->nx : 1));
        AL(ws->dX, B * (size_t)(ws->nx ? ws->nx : 1));
        AL(ws->Y, B * K);
        AL(ws->RW, B);
    }
    for (int l = 0; l < (m->graph ? 0 : m->L); l++) {
        size_t KH = (size_t)K * m->H[l];
        AL(ws->Z[l], B * KH);
        AL(ws->O[l], B * KH);
        AL(ws->dO[l], B * KH);
        AL(ws->dZ[l], B * KH);
        if (bn) {
            AL(ws->A[l], B * KH);
            AL(ws->mean[l], KH);
            AL(ws->rstd[l], KH);
        } else {
            ws->A[l] = ws->O[l];
        }
    }
    AL(ws->S, B * K);
    AL(ws->P, B * K);
    AL(ws->C, B * K);
    AL(ws->dS, B * K);
    AL(ws->own, B * K);
    AL(ws->logp, B * K);
    AL(ws->lrow, B * K);
#undef AL
    if (!ok) {
        rf_workspace_free(ws);
        return NULL;
    }
    return ws;
}

void rf_workspace_free(rf_workspace *ws)
{
    if (!ws) return;
    rf_graph_ws_free(ws->gws);
    rf_kpart_free(&ws->kp);
    rf_bf16_scratch_free(ws->bf16);
    rf_bf16_acts_free(ws->pk);
    rf_bf16_wpack_free(ws->bf16w);
    rf_epi_links_free(ws->epi);
    rf_i8_ctx_free(ws->i8);
    free(ws->X);
    free(ws->dX);
    free(ws->Y);
    free(ws->RW);
    free(ws->fz.w);
    free(ws->x);
    free(ws->dx);
    for (int l = 0; l < RF_MAX_LAYERS; l++) {
        if (ws->A[l] != ws->O[l]) free(ws->A[l]);
        free(ws->Z[l]);
        free(ws->O[l]);
        free(ws->dO[l]);
        free(ws->dZ[l]);
        free(ws->mean[l]);
        free(ws->rstd[l]);
        free(ws->R[l]);
    }
    free(ws->S);
    free(ws->P);
    free(ws->C);
    free(ws->dS);
    free(ws->own);
    free(ws->logp);
    free(ws->lrow);
    free(ws->bufn);
    free(ws->bns.v);
    free(ws);
}

void rf_ws_set_batch_sum(rf_workspace *ws, rf_batch_sum_fn fn, void *ud)
{
    ws->bns.fn = fn;
    ws->bns.ud = ud;
    if (ws->gws) rf_graph_ws_sync(ws->gws, fn ? &ws->bns : NULL);
}

const float *rf_ws_logits(const rf_workspace *ws) { return ws->S; }
const float *rf_ws_probs(const rf_workspace *ws) { return ws->P; }
const float *rf_ws_cond(const rf_workspace *ws) { return ws->C; }
const float *rf_ws_extras(const rf_workspace *ws) { return ws->nx ? ws->X : NULL; }
const float *rf_ws_hidden(const rf_workspace *ws, int l) { return l >= 0 && l < RF_MAX_LAYERS ? ws->O[l] : NULL; }
const float *rf_ws_block(const rf_workspace *ws, int l) { return l >= 0 && l < RF_MAX_LAYERS ? ws->R[l] : NULL; }
const float *rf_ws_own_logits(const rf_workspace *ws) { return ws->own; }

rf_status rf_ws_keep_blocks(rf_workspace *ws, const rf_model *m, rf_error *err)
{
    if (m->graph)
        return rf_errorf(err, RF_EUSAGE, "model.type %s has no task towers to probe", rf_model_type_name(m->spec.model.type));
    for (int l = 0; l < m->L; l++)
        if (!ws->R[l] && !(ws->R[l] = malloc((size_t)ws->maxB * m->K * m->H[l] * sizeof(float))))
            return rf_errorf(err, RF_ENOMEM, "out of memory for the block outputs");
    return RF_OK;
}

int rf_model_link(const rf_model *m, int l)
{
    if (m->graph || l < 0 || l > m->L) return 0;
    return l == m->L ? logit_link_on(m) : link_on(m, l);
}

int rf_ws_freeze(rf_workspace *ws, const rf_model *m, int mode)
{
    if (!m->graph) return 0;
    if (mode != RF_FREEZE_OFF && !ws->fz.w &&
        !(ws->fz.w = calloc((size_t)ws->maxB * 2 * m->K, sizeof *ws->fz.w)))
        return -1;
    if (rf_graph_ws_freeze(m->graph, ws->gws, mode)) return -1;
    ws->fz.mode = mode;
    return 0;
}

/* ---------------------------------------------------------------------------------------- */

/* The gather's embedding rows are random lines, one per field of a batch row: fetched into L2
 * GATHER_PF_L2 batch rows ahead (prefetcht1: L2 keeps more misses in flight than L1) and into
 * L1 GATHER_PF_L1 ahead. Only into L1, 8 rows (128 lines) ahead, as before: 0.27-0.30 -> 0.16-0.19
 * ms per bf16 ResFlow step of the reference setup (docs/performance.md, "More misses in
 * flight"). */
enum { GATHER_PF_L1 = 2, GATHER_PF_L2 = 6 };

/* x (B, In): each row's embeddings (pooled for multi-valued fields) and dense values, and with
 * xpk (not NULL) its bf16 layouts too, two rows at a time (gemm_bf16.h). */
static rf_status embed_fwd(const rf_model *m, rf_workspace *ws, const rf_batch *bt, const rf_bf16_act *xpk,
                           rf_error *err)
{
    const rf_dataset *ds = bt->ds;
    int F = m->F, E = m->E, In = m->In, D = m->D, Ec = m->Ec, nc = E / Ec;
    size_t cs = (size_t)F * Ec; /* from one chunk of x to the next (rf_model_xcol) */
    int bad = -1;
    size_t bad_row = 0;
    uint64_t bad_id = 0;
#pragma omp parallel for schedule(static) if (bt->B * F * E > 32768)
    for (int q = 0; q < (bt->B + 1) / 2; q++) {
        for (int b = 2 * q; b < 2 * q + 2 && b < bt->B; b++) {
            size_t r = bt->rows[b];
            float *x = ws->x + (size_t)b * In;
            if (b + 16 < bt->B && ds->cat)
                __builtin_prefetch(ds->cat + bt->rows[b + 16] * ds->F); /* its ids, below */
            for (int f = 0; f < F; f++) {
                float *xf = x + f * Ec; /* chunk c of the field at xf + c * cs */
                if (m->pooling[f] < 0) {
                    uint32_t id = ds->cat[r * ds->F + f];
                    if (b + GATHER_PF_L2 < bt->B) { /* the rows needed a few batch rows on */
                        uint32_t pid = ds->cat[bt->rows[b + GATHER_PF_L2] * ds->F + f];
                        if (pid < m->vocab[f]) __builtin_prefetch(m->emb + (m->emb_off[f] + pid) * E, 0, 2);
                    }
                    if (b + GATHER_PF_L1 < bt->B) {
                        uint32_t pid = ds->cat[bt->rows[b + GATHER_PF_L1] * ds->F + f];
                        if (pid < m->vocab[f]) __builtin_prefetch(m->emb + (m->emb_off[f] + pid) * E);
                    }
                    if (id >= m->vocab[f]) {
#pragma omp critical
                        { bad = f; bad_row = r; bad_id = id; }
                        id = 0;
                    }
                    const float *src = m->emb + (m->emb_off[f] + id) * E;
                    if (Ec == 16)
                        for (int c = 0; c < nc; c++) /* one inlined vector move each */
                            memcpy(xf + c * cs, src + c * 16, 16 * sizeof(float));
                    else
                        for (int c = 0; c < nc; c++) memcpy(xf + c * cs, src + c * Ec, Ec * sizeof(float));
                } else {
                    for (int c = 0; c < nc; c++) memset(xf + c * cs, 0, Ec * sizeof(float));
                    uint64_t a = ds->mv_off[f][r], z = ds->mv_off[f][r + 1];
                    for (uint64_t i = a; i < z; i++) {
                        uint32_t id = ds->mv_ids[f][i];
                        if (id >= m->vocab[f]) {
#pragma omp critical
                            { bad = f; bad_row = r; bad_id = id; }
                            id = 0;
                        }
                        const float *e = m->emb + (m->emb_off[f] + id) * E;
                        for (int c = 0; c < nc; c++)
                            for (int j = 0; j < Ec; j++) xf[c * cs + j] += e[c * Ec + j];
                    }
                    if (m->pooling[f] == RF_POOL_MEAN && z - a > 1)
                        for (int c = 0; c < nc; c++)
                            for (int j = 0; j < Ec; j++) xf[c * cs + j] /= (float)(z - a);
                }
            }
            if (D > 0 && !m->Wd) memcpy(x + F * E, ds->dense + r * D, D * sizeof(float));
        }
        if (xpk)
            rf_bf16_act_put(xpk, bt->B, q, ws->x + (size_t)(2 * q) * In,
                            2 * q + 1 < bt->B ? ws->x + (size_t)(2 * q + 1) * In : NULL);
    }
    if (bad >= 0)
        return rf_errorf(err, RF_EDATA, "row %zu: id %llu of field %d (%s) is outside its vocabulary of %u",
                         bad_row, (unsigned long long)bad_id, bad, ds->fields[bad].name, m->vocab[bad]);
    if (D > 0 && m->Wd) {
        /* projected dense field: x[:, F*E:] = dense @ Wd + bd */
        for (int b = 0; b < bt->B; b++) {
            const float *dn = ds->dense + bt->rows[b] * D;
            float *xo = ws->x + (size_t)b * In + F * E;
            for (int j = 0; j < E; j++) xo[j] = m->bd[j];
            for (int i = 0; i < D; i++) {
                const float *w = m->Wd + (size_t)i * E;
                for (int j = 0; j < E; j++) xo[j] += dn[i] * w[j];
            }
        }
    }
    return RF_OK;
}

/* Layer l's GEMMs in a scoring workspace (int8, or bf16 with its weights packed once). In one
 * made by rf_ws_score_only, without BatchNorm or kept block outputs, the bias, activation and
 * links are fused into the GEMMs' write-back (epi.h), straight into A[l] (= O[l]; Z[l], for a
 * backward pass only, is not written): 1. Otherwise (or when the layer's links cannot be fused)
 * Z[l] is written: 0. */
static int score_gemms(const rf_model *m, rf_workspace *ws, int l, int B)
{
    int K = m->K, KH = K * m->H[l];
    int fuse = ws->epi && m->spec.model.bn != RF_BN_BATCH && !ws->R[l];
    for (int k = 0; k < (l == 0 ? 1 : K); k++) {
        int kin, n;
        const float *W = rf_tower_w(m, l, k, &kin, &n);
        int lda = l == 0 ? m->In : K * kin;
        const float *a = l == 0 ? ws->x : ws->O[l - 1] + k * kin;
        size_t off = l == 0 ? 0 : (size_t)k * n;
        rf_epi ep;
        if (fuse && !rf_epi_of(ws->epi, m, l, k, link_on(m, l), &ep) &&
            !(ws->i8 ? rf_gemm_i8_fused(ws->i8, l, k, B, a, lda, ws->A[l] + off, KH, &ep)
                     : rf_gemm_bf16_score(ws->bf16, ws->bf16w, m, l, k, B, a, lda, ws->A[l] + off, KH, &ep)))
            continue;
        fuse = 0; /* (k = 0: the answer is the layer's, the same for every tower) */
        if (ws->i8) rf_gemm_i8(ws->i8, l, k, B, a, lda, ws->Z[l] + off, KH);
        else if (rf_gemm_bf16_score(ws->bf16, ws->bf16w, m, l, k, B, a, lda, ws->Z[l] + off, KH, NULL))
            rf_gemm(0, 0, B, n, kin, 1.0f, a, lda, W, n, 0.0f, ws->Z[l] + off, KH);
    }
    return fuse;
}

rf_status rf_model_forward(const rf_model *m, rf_workspace *ws, const rf_batch *bt, int train,
                           rf_error *err)
{
    int B = bt->B, K = m->K, L = m->L;
    if (B > ws->maxB) return rf_errorf(err, RF_EINTERNAL, "batch %d exceeds workspace %d", B, ws->maxB);
    if (bt->ds->F != m->F || bt->ds->D != m->D)
        return rf_errorf(err, RF_EDATA, "dataset has %d fields / %d dense features, model expects %d / %d",
                         bt->ds->F, bt->ds->D, m->F, m->D);
    if (train && ws->i8)
        return rf_errorf(err, RF_EUSAGE, "precision int8 is for scoring: a training pass runs in fp32 or bf16");
    ws->B = B;
    ws->last_train = train;
    ws->bufn_valid = 0;
    if (train) {
        /* lay out one segment of the sparse gradient set per field (a field's distinct rows
         * are at most its occurrences in the batch, and at most its vocabulary) */
        size_t need = 0;
        for (int f = 0; f < m->F; f++) {
            size_t occ = (size_t)B;
            if (m->pooling[f] >= 0) {
                occ = 0;
                for (int b = 0; b < B; b++)
                    occ += bt->ds->mv_off[f][bt->rows[b] + 1] - bt->ds->mv_off[f][bt->rows[b]];
            }
            if (occ > m->vocab[f]) occ = m->vocab[f];
            ws->seg_off[f] = need;
            need += occ;
        }
        ws->seg_off[m->F] = need;
        /* running statistics are updated in a copy; rf_model_adopt_buffers takes them */
        memcpy(ws->bufn, m->buffers, m->n_buffers * sizeof(float));
        ws->bufn_valid = 1;
    }
    /* the layouts of this batch's activations are written as they are computed (gemm_bf16.h); x's
     * in the gather when it is final there (no projected dense field) */
    rf_bf16_acts *pk = ws->pk; /* (NULL in a scoring workspace: rf_ws_score_only) */
    if (pk) rf_bf16_acts_invalidate(pk);
    rf_bf16_act *xpk = pk && !m->Wd ? &pk->x : NULL;
    rf_status st = embed_fwd(m, ws, bt, xpk, err);
    if (st) return st;
    if (xpk) xpk->valid = 1;
    const rf_model_cfg *mc = &m->spec.model;
    if (m->graph) { /* model zoo: the op graph computes the logits */
        rf_graph_ws_input(ws->gws, ws->x, ws->dx);
        rf_graph_forward(m->graph, ws->gws, m->params, train ? ws->bufn : m->buffers, B, train);
        const float *o = rf_graph_val(ws->gws, m->graph_out);
        int nx = ws->nx, w = K + nx;
        if (mc->type == RF_MODEL_TWIN) rf_twin_top_forward(m, ws, B); /* the dot products */
        for (int b = 0; b < B && mc->type != RF_MODEL_TWIN; b++) {
            memcpy(ws->S + (size_t)b * K, o + (size_t)b * w, K * sizeof(float));
            if (nx) memcpy(ws->X + (size_t)b * nx, o + (size_t)b * w + K, nx * sizeof(float));
        }
        L = 0;
    }
    for (int l = 0; l < L; l++) {
        int H = m->H[l], KH = K * H;
        const rf_layer_params *lp = &m->layer[l];
        if (ws->i8 || (ws->bf16w && !train)) { /* a scoring workspace (int8, or bf16 with packed weights) */
            if (score_gemms(m, ws, l, B)) continue; /* A (= O) is final */
        } else if (l == 0) {
            rf_gemm_prec_pk(ws->bf16, 0, 0, B, KH, m->In, 1.0f, ws->x, m->In, pk ? &pk->x : NULL, lp->W, KH, NULL,
                            0.0f, ws->Z[0], KH);
        } else {
            int Hp = m->H[l - 1];
            for (int k = 0; k < K; k++)
                rf_gemm_prec_pk(ws->bf16, 0, 0, B, H, Hp, 1.0f, ws->O[l - 1] + k * Hp, K * Hp,
                                pk ? &pk->o[l - 1][k] : NULL, lp->W + (size_t)k * Hp * H, H, NULL, 0.0f,
                                ws->Z[l] + k * H, KH);
        }
        /* without BatchNorm or kept block outputs, the links join the bias + activation pass */
        int fuse = mc->bn != RF_BN_BATCH && !ws->R[l] && link_on(m, l);
        /* the pass writes the next layer's input in its bf16 layouts too when it is final: no
         * BatchNorm after it, no links added after it */
        rf_bf16_act *opk = pk && l < L - 1 && mc->bn != RF_BN_BATCH && (fuse || !link_on(m, l)) ? pk->o[l] : NULL;
        if (fuse)
            rf_bias_act_link_fwd(ws->Z[l], ws->A[l], B, K, H, lp->b, lp->alpha, m->order, m->parent, opk, K);
        else
            rf_bias_act_fwd(ws->Z[l], ws->A[l], B, KH, KH, lp->b, lp->alpha, opk, K);
        for (int k = 0; k < K && opk; k++) opk[k].valid = 1;
        if (mc->bn == RF_BN_BATCH) {
            if (train && ws->bns.fn) /* synchronised over processes (bnsync.h) */
                rf_bn_sync_fwd(&ws->bns, ws->A[l], ws->O[l], B, KH, KH, lp->gamma, lp->beta, ws->mean[l],
                               ws->rstd[l], ws->bufn + m->run_off[l], ws->bufn + m->run_off[l] + KH,
                               mc->bn_momentum, mc->bn_eps);
            else if (train)
                rf_bn_fwd_train(ws->A[l], ws->O[l], B, KH, KH, lp->gamma, lp->beta, ws->mean[l],
                                ws->rstd[l], ws->bufn + m->run_off[l], ws->bufn + m->run_off[l] + KH,
                                mc->bn_momentum, mc->bn_eps);
            else
                rf_bn_fwd_eval(ws->A[l], ws->O[l], B, KH, KH, lp->gamma, lp->beta, m->buffers + m->run_off[l],
                               m->buffers + m->run_off[l] + KH, mc->bn_eps);
        }
        if (ws->R[l]) memcpy(ws->R[l], ws->O[l], (size_t)B * KH * sizeof(float));
        if (link_on(m, l) && !fuse) {
#pragma omp parallel for schedule(static) if (rf_omp_worth((long)B * KH, 65536))
            for (int b = 0; b < B; b++) {
                float *o = ws->O[l] + (size_t)b * KH;
                for (int i = 0; i < K; i++) {
                    int k = m->order[i], p = m->parent[k];
                    if (p >= 0)
                        for (int j = 0; j < H; j++) o[k * H + j] += o[p * H + j];
                }
            }
        }
    }
    if (!m->graph) rf_logits(ws->O[L - 1], B, K, m->H[m->L - 1], m->Wout, m->bout, ws->S);
    int esmm = is_product(m);
    int logit_link = logit_link_on(m);
    int m3 = logit_link && mc->monotonic == RF_MONO_M3;
    memcpy(ws->own, ws->S, (size_t)B * K * sizeof(float));
    /* a sigmoid per logit costs ~30 cycles: on the threads from 2048 logits (a ResFlow step of the
     * reference setup, 4096 logits: 35 -> 22 us) */
#pragma omp parallel for schedule(static) if (rf_omp_worth((long)B * K, 2048))
    for (int b = 0; b < B; b++) {
        float *s = ws->S + (size_t)b * K, *pr = ws->P + (size_t)b * K, *c = ws->C + (size_t)b * K;
        double *lp = ws->logp + (size_t)b * K;
        for (int i = 0; i < K; i++) {
            int k = m->order[i], p = m->parent[k];
            if (logit_link && p >= 0) {
                if (m3 && s[k] > 0) s[k] = 0; /* M3: residual logit := min(r, 0) */
                s[k] += s[p];
            }
            c[k] = m->spec.tasks[k].loss == RF_LOSS_MSE ? s[k] : rf_sigmoidf(s[k]); /* mse: linear output */
            if (esmm) {
                /* log sigmoid(s) = -softplus(-s) */
                double ls = -(log1p(exp(-fabs((double)s[k]))) + (s[k] < 0 ? -(double)s[k] : 0.0));
                lp[k] = ls + (p >= 0 ? lp[p] : 0.0);
                pr[k] = (float)exp(lp[k]);
            } else {
                pr[k] = c[k];
            }
        }
    }
    return train && ws->bns.fn ? rf_bn_sync_take(&ws->bns, err) : RF_OK;
}

void rf_model_adopt_buffers(rf_model *m, const rf_workspace *ws)
{
    if (ws->bufn_valid) memcpy(m->buffers, ws->bufn, m->n_buffers * sizeof(float));
}

/* M1/M2 penalties (paper §3.3), each attributed to the child task (its task_scale applies):
 * M1: w * mean_b sum_child max(p_child - p_parent, 0), for models whose probabilities are
 *     sigmoids of their logits (product models never increase);
 * M2: w * mean_b sum_child max(r_child, 0) on the residual (own) logit of a logit-linked child.
 * Gradients are added to dS, the gradient of the final logits; for M2 the parent's share is
 * subtracted, because the logit link's backward passes dS_child on to the parent in full. */
static double monotonic_penalty(const rf_model *m, rf_workspace *ws, const rf_batch *bt, const float *task_scale)
{
    const rf_model_cfg *mc = &m->spec.model;
    int B = ws->B, K = m->K;
    int m1 = mc->monotonic == RF_MONO_M1 && !is_product(m), m2 = mc->monotonic == RF_MONO_M2 && logit_link_on(m);
    if (!m1 && !m2) return 0;
    double pen = 0;
    for (int b = 0; b < B; b++) {
        double rw = bt->ds->weight ? bt->ds->weight[bt->rows[b]] : 1.0;
        const float *P = ws->P + (size_t)b * K, *o = ws->own + (size_t)b * K;
        float *dS = ws->dS + (size_t)b * K;
        for (int k = 0; k < K; k++) {
            int p = m->parent[k];
            if (p < 0) continue;
            double g = mc->monotonic_weight * (task_scale ? task_scale[k] : 1.0) * rw / B;
            if (m1 && P[k] > P[p]) {
                pen += g * (P[k] - P[p]);
                dS[k] += (float)(g * P[k] * (1 - P[k]));
                dS[p] -= (float)(g * P[p] * (1 - P[p]));
            } else if (m2 && o[k] > 0) {
                pen += g * o[k];
                dS[k] += (float)g;
                dS[p] -= (float)g;
            }
        }
    }
    return pen;
}

double rf_model_loss(const rf_model *m, rf_workspace *ws, const rf_batch *bt, const float *task_scale,
                     double *per_task)
{
    int B = ws->B, K = m->K;
    const rf_dataset *ds = bt->ds;
    double tot = 0, pt[RF_MAX_TASKS] = {0};
    for (int k = 0; k < K; k++)
        ws->scale[k] = (task_scale ? task_scale[k] : 1.0) * m->spec.tasks[k].weight / B;
    if (m->graph && rf_zoo_has_loss(m->spec.model.type)) { /* the model's own objective (zoo.c) */
        double sc[RF_MAX_TASKS];
        for (int k = 0; k < K; k++) sc[k] = (task_scale ? task_scale[k] : 1.0) * m->spec.tasks[k].weight;
        for (int b = 0; b < B; b++) {
            size_t r = bt->rows[b];
            for (int k = 0; k < K; k++) ws->Y[(size_t)b * K + k] = ds->labels[r * ds->K + bt->label_col[k]];
            ws->RW[b] = ds->weight ? ds->weight[r] : 1.0f;
        }
        return rf_zoo_loss(&m->spec, m->parent, B, ws->S, ws->X, ws->Y, ws->RW, sc, ws->dS, ws->dX, per_task,
                           &ws->fz);
    }
    memset(ws->dS, 0, (size_t)B * K * sizeof(float));
    int esmm = is_product(m);
    /* the rows' terms on all threads, then summed in row order (the same sums at any thread count) */
#pragma omp parallel for schedule(static) if (rf_omp_worth((long)B * K, 2048))
    for (int b = 0; b < B; b++) {
        size_t r = bt->rows[b];
        double rw = ds->weight ? ds->weight[r] : 1.0;
        const float *s = ws->S + (size_t)b * K;
        float *dS = ws->dS + (size_t)b * K;
        for (int k = 0; k < K; k++) {
            float t = ds->labels[r * ds->K + bt->label_col[k]];
            float w = m->spec.tasks[k].pos_weight;
            double l;
            if (m->spec.tasks[k].loss == RF_LOSS_MSE) { /* squared error of the linear output */
                double d = (double)s[k] - t;
                l = d * d;
                dS[k] += (float)(2 * d * rw * ws->scale[k]);
            } else if (!esmm) {
                float g;
                l = rf_wbce_logit(s[k], t, w, &g);
                dS[k] += (float)(g * rw * ws->scale[k]);
            } else {
                /* BCE on p = exp(logp): -[w t logp + (1-t) log(1-p)], log(1-p) clamped at -100
                 * as torch.nn.BCELoss does; d/dlogp then flows to every logit on the chain */
                double lp = ws->logp[(size_t)b * K + k];
                double l1p = log(-expm1(lp)), dl;
                if (!(l1p >= -100.0)) {
                    l1p = -100.0;
                    dl = -w * t;
                } else {
                    double pp = exp(lp);
                    dl = -w * t + (1.0 - t) * pp / (1.0 - pp);
                }
                l = -(w * t * lp + (1.0 - t) * l1p);
                double gs = dl * rw * ws->scale[k];
                for (int j = k; j >= 0; j = m->parent[j])
                    dS[j] += (float)(gs * (1.0 - ws->C[(size_t)b * K + j])); /* dlogsig(s)/ds */
            }
            ws->lrow[(size_t)b * K + k] = l * rw;
        }
    }
    for (int b = 0; b < B; b++)
        for (int k = 0; k < K; k++) pt[k] += ws->lrow[(size_t)b * K + k];
    for (int k = 0; k < K; k++) {
        pt[k] /= B;
        tot += (task_scale ? task_scale[k] : 1.0) * m->spec.tasks[k].weight * pt[k];
        if (per_task) per_task[k] = pt[k];
    }
    return tot + monotonic_penalty(m, ws, bt, task_scale);
}
