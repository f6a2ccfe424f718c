/* backward.c - gradient sets (dense slab + row-sparse embedding rows) and the backward pass of
 * the last loss into one: tasks children first, so a parent's gradient is complete (own loss +
 * its children's links) before it propagates; embedding rows accumulated per field in parallel.
 * See include/resflow/model.h. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/simd.h"
#include "core/omp.h"
#include "nn/gemm_bf16.h"
#include "nn/graph.h"
#include "nn/model_impl.h"
#include "nn/ops.h"

/* 16 floats as one value (GCC's vector extension: one zmm, or narrower vectors in a portable
 * build); the same lane-wise multiplies and adds as a loop over an array. */
typedef float v16f __attribute__((vector_size(64)));
#include "nn/twin_impl.h"

rf_grads *rf_grads_create(const rf_model *m)
{
    rf_grads *g = calloc(1, sizeof *g);
    if (!g) return NULL;
    g->n_dense = m->n_params;
    g->E = m->E;
    g->emb_rows = m->emb_off[m->F];
    g->dense = calloc(g->n_dense ? g->n_dense : 1, sizeof(float));
    g->slot = malloc((g->emb_rows ? g->emb_rows : 1) * sizeof *g->slot);
    if (!g->dense || !g->slot) {
        rf_grads_free(g);
        return NULL;
    }
    for (size_t i = 0; i < g->emb_rows; i++) g->slot[i] = -1;
    return g;
}

void rf_grads_free(rf_grads *g)
{
    if (!g) return;
    free(g->dense);
    free(g->slot);
    free(g->rows);
    free(g->g);
    free(g);
}

float *rf_grads_dense(const rf_grads *g, size_t *n)
{
    if (n) *n = g->n_dense;
    return g->dense;
}

size_t rf_grads_emb(const rf_grads *g, const uint32_t **rows, float **vals)
{
    *rows = g->rows;
    *vals = g->g;
    return g->n_rows;
}

void rf_grads_emb_clear(rf_grads *g)
{
    for (size_t i = 0; i < g->n_rows; i++) g->slot[g->rows[i]] = -1;
    g->n_rows = 0;
}

rf_status rf_grads_emb_add(rf_grads *g, const uint32_t *rows, const float *vals, size_t n, rf_error *err)
{
    int E = g->E;
    for (size_t i = 0; i < n; i++) {
        uint32_t r = rows[i];
        if (r >= g->emb_rows)
            return rf_errorf(err, RF_EUSAGE, "embedding row %u outside the tables (%zu rows)", r, g->emb_rows);
        int32_t s = g->slot[r];
        const float *v = vals + i * (size_t)E;
        if (s >= 0) {
            float *d = g->g + (size_t)s * E;
            for (int e = 0; e < E; e++) d[e] += v[e];
            continue;
        }
        if (g->n_rows == g->cap) {
            size_t cap = g->cap ? g->cap * 2 : 1024;
            uint32_t *nr = realloc(g->rows, cap * sizeof *nr);
            if (nr) g->rows = nr;
            float *ng = nr ? realloc(g->g, cap * (size_t)E * sizeof *ng) : NULL;
            if (!nr || !ng) return rf_errorf(err, RF_ENOMEM, "out of memory for embedding gradients");
            g->g = ng;
            g->cap = cap;
        }
        s = (int32_t)g->n_rows++;
        g->slot[r] = s;
        g->rows[s] = r;
        memcpy(g->g + (size_t)s * E, v, (size_t)E * sizeof(float));
    }
    return RF_OK;
}

void rf_grads_zero(rf_grads *g)
{
    memset(g->dense, 0, g->n_dense * sizeof(float));
    rf_grads_emb_clear(g);
}

/* Room for the segments of the last training batch (ws->seg_off) in g's sparse set; the set
 * must be empty (rows are compacted per backward). */
static rf_status grads_reserve(rf_grads *g, const rf_workspace *ws, int F, rf_error *err)
{
    size_t need = ws->seg_off[F];
    if (g->n_rows)
        return rf_errorf(err, RF_EINTERNAL, "sparse gradients of an earlier backward were not cleared");
    if (need <= g->cap && g->rows) return RF_OK;
    need = need > g->cap * 2 ? need : g->cap * 2;
    uint32_t *nr = realloc(g->rows, (need ? need : 1) * sizeof *nr);
    if (nr) g->rows = nr;
    float *ng = nr ? realloc(g->g, (need ? need : 1) * (size_t)g->E * sizeof *ng) : NULL;
    if (!nr || !ng) return rf_errorf(err, RF_ENOMEM, "out of memory for embedding gradients");
    g->g = ng;
    g->cap = need;
    return RF_OK;
}

/* ---------------------------------------------------------------------------------------- */

/* Add scale*v to the gradient of embedding row `row` of field f (segment f of the set). A new
 * row is written as 0 + scale*v (the sum from zero, signed zeros included) without reading it:
 * zeroing it first and adding made each new row's load wait on the zeroing stores (most rows
 * of a batch are new). */
static inline __attribute__((always_inline)) void emb_accum(rf_grads *gr, const rf_workspace *ws, int f, size_t *n, size_t row, const float *v, float scale, int E, int Ec, size_t cs)
{
    int32_t s = gr->slot[row];
    if (s < 0) {
        s = (int32_t)(ws->seg_off[f] + (*n)++);
        gr->slot[row] = s;
        gr->rows[s] = (uint32_t)row;
        float *d = gr->g + (size_t)s * E;
        if (Ec == E) /* one chunk (the tower models): one loop */
            for (int j = 0; j < E; j++) d[j] = 0.0f + scale * v[j];
        else
            for (int c = 0; c < E; c += Ec, v += cs)
                for (int j = 0; j < Ec; j++) d[c + j] = 0.0f + scale * v[j];
        return;
    }
    float *d = gr->g + (size_t)s * E;
    if (Ec == E)
        for (int j = 0; j < E; j++) d[j] += scale * v[j];
    else
        for (int c = 0; c < E; c += Ec, v += cs)
            for (int j = 0; j < Ec; j++) d[c + j] += scale * v[j];
}

rf_status rf_model_backward(const rf_model *m, rf_workspace *ws, const rf_batch *bt, rf_grads *g, rf_error *err)
{
    rf_status st = rf_model_backward_dense(m, ws, bt, g, err);
    if (st) return st;
    rf_model_backward_w0(m, ws, g);
    rf_model_backward_emb(m, ws, bt, g);
    return RF_OK;
}

rf_status rf_model_task_grads(const rf_model *m, rf_workspace *ws, const rf_batch *bt, rf_grads *const *per_task,
                              double *loss_k, rf_error *err)
{
    for (int k = 0; k < m->K; k++) {
        float scale[RF_MAX_TASKS] = {0};
        scale[k] = 1;
        rf_grads_zero(per_task[k]);
        double l = rf_model_loss(m, ws, bt, scale, NULL);
        if (loss_k) loss_k[k] = l;
        rf_status st = rf_model_backward(m, ws, bt, per_task[k], err);
        if (st) return st;
    }
    return RF_OK;
}

void rf_model_backward_w0(const rf_model *m, rf_workspace *ws, rf_grads *g)
{
    if (m->graph) return; /* the graph's backward did everything */
    int KH = m->K * m->H[0];
    float *dW0 = g->dense + (m->layer[0].W - m->params);
    rf_bf16_acts *pk = ws->pk;
    rf_gemm_prec_tn(ws->bf16, &ws->kp, m->In, KH, ws->B, 1.0f, ws->x, m->In, pk ? &pk->x : NULL, ws->dZ[0], KH,
                    pk ? &pk->dz[0][0] : NULL, 1.0f, dW0, KH);
}

/* The logit layer's weight and bias gradients: each (k, 16-column) piece of dWout by one thread,
 * summed over the rows in order (the same sums whatever the thread count). This and the two
 * passes below are compiled per CPU in a portable build (RF_HOT_CLONES): in baseline x86-64 code
 * they took 2-3 % of a ResFlow step more than the native build's (AMD EPYC Zen 5). */
RF_HOT_CLONES static void logit_wgrad(const float *dS, const float *O, int B, int K, int HL, float *dWout,
                                      float *dbout)
{
    int nc = (HL + 15) / 16;
#pragma omp parallel for schedule(static) if (rf_omp_worth((long)B * K * HL, 65536))
    for (int t = 0; t < K * nc; t++) {
        int k = t / nc, j0 = t % nc * 16, nj = HL - j0 < 16 ? HL - j0 : 16;
        float *dw = dWout + (size_t)k * HL + j0, db = dbout[k];
        const float *ob = O + (size_t)k * HL + j0;
        if (nj == 16) { /* the 16 sums in one vector variable: an array would live in memory */
            v16f acc;
            memcpy(&acc, dw, sizeof acc);
            for (int b = 0; b < B; b++, ob += (size_t)K * HL) {
                float d = dS[(size_t)b * K + k];
                v16f o;
                memcpy(&o, ob, sizeof o);
                db += d;
                acc += d * o;
            }
            memcpy(dw, &acc, sizeof acc);
        } else {
            for (int b = 0; b < B; b++, ob += (size_t)K * HL) {
                float d = dS[(size_t)b * K + k];
                db += d;
                for (int j = 0; j < nj; j++) dw[j] += d * ob[j];
            }
        }
        if (j0 == 0) dbout[k] = db;
    }
}

/* The gradient at the last hidden layer's output: dO[b, k block] = dS[b, k] Wout[k block]. */
RF_HOT_CLONES static void logit_dO(const float *dS, const float *Wout, int B, int K, int HL, float *dO)
{
#pragma omp parallel for schedule(static) if (rf_omp_worth((long)B * K * HL, 65536))
    for (int b = 0; b < B; b++) {
        float *db = dO + (size_t)b * K * HL;
        for (int k = 0; k < K; k++) {
            float d = dS[(size_t)b * K + k];
            const float *w = Wout + (size_t)k * HL;
            for (int j = 0; j < HL; j++) db[k * HL + j] = d * w[j];
        }
    }
}

/* The layer links backward: each child's block of dO added into its parent's, children first. */
RF_HOT_CLONES static void links_bwd(float *dO, int B, int K, int H, const int *order, const int *parent)
{
    int KH = K * H;
#pragma omp parallel for schedule(static) if (rf_omp_worth((long)B * KH, 65536))
    for (int b = 0; b < B; b++) {
        float *d = dO + (size_t)b * KH;
        for (int i = K - 1; i >= 0; i--) {
            int k = order[i], p = parent[k];
            if (p >= 0)
                for (int j = 0; j < H; j++) d[p * H + j] += d[k * H + j];
        }
    }
}

rf_status rf_model_backward_dense(const rf_model *m, rf_workspace *ws, const rf_batch *bt, rf_grads *g,
                                  rf_error *err)
{
    if (!ws->last_train) return rf_errorf(err, RF_EUSAGE, "backward needs a training forward pass");
    rf_status st = grads_reserve(g, ws, m->F, err);
    if (st) return st;
    int B = ws->B, K = m->K, L = m->L;
    const rf_model_cfg *mc = &m->spec.model;
    int logit_link = logit_link_on(m);
    float *gp = g->dense;
#define GRAD(ptr) (gp + ((ptr) - m->params))
    int twin = mc->type == RF_MODEL_TWIN; /* its graph's backward follows the logit links */
    if (m->graph && !twin) { /* model zoo: logit gradients into the graph's output, then its backward */
        int nx = ws->nx, w = K + nx, own = rf_zoo_has_loss(mc->type);
        float *go = rf_graph_grad(ws->gws, m->graph_out);
        for (int b = 0; b < B; b++) {
            memcpy(go + (size_t)b * w, ws->dS + (size_t)b * K, K * sizeof(float));
            if (own) memcpy(go + (size_t)b * w + K, ws->dX + (size_t)b * nx, (size_t)nx * sizeof(float));
            else memset(go + (size_t)b * w + K, 0, (size_t)nx * sizeof(float));
        }
        rf_graph_backward(m->graph, ws->gws, m->params, g->dense, B);
        L = 0;
    }
    /* logit links: child's logit gradient flows into its parent's logit */
    if (logit_link)
        for (int i = K - 1; i >= 0; i--) {
            int k = m->order[i], p = m->parent[k];
            if (p < 0) continue;
            for (int b = 0; b < B; b++) ws->dS[(size_t)b * K + p] += ws->dS[(size_t)b * K + k];
        }
    if (logit_link && mc->monotonic == RF_MONO_M3) /* a clamped residual logit has no gradient */
        for (int k = 0; k < K; k++)
            if (m->parent[k] >= 0)
                for (int b = 0; b < B; b++)
                    if (ws->own[(size_t)b * K + k] > 0) ws->dS[(size_t)b * K + k] = 0;
    if (twin) {
        rf_twin_top_backward(m, ws, B, g->dense);
        L = 0;
    }
    /* logit layer */
    int HL = m->H[m->L - 1];
    if (!m->graph) {
        float *dWout = GRAD(m->Wout), *dbout = GRAD(m->bout);
        float *dO = ws->dO[L - 1];
        const float *O = ws->O[L - 1];
        logit_wgrad(ws->dS, O, B, K, HL, dWout, dbout);
        logit_dO(ws->dS, m->Wout, B, K, HL, dO);
    }
    for (int l = L - 1; l >= 0; l--) {
        int H = m->H[l], KH = K * H;
        const rf_layer_params *lp = &m->layer[l];
        float *dO = ws->dO[l];
        if (link_on(m, l)) links_bwd(dO, B, K, H, m->order, m->parent);
        if (mc->bn == RF_BN_BATCH && ws->bns.fn) /* synchronised over processes (bnsync.h) */
            rf_bn_sync_bwd(&ws->bns, ws->A[l], dO, dO, B, KH, KH, lp->gamma, ws->mean[l], ws->rstd[l],
                           GRAD(lp->gamma), GRAD(lp->beta));
        else if (mc->bn == RF_BN_BATCH) /* in place: dO becomes the gradient of the activation */
            rf_bn_bwd(ws->A[l], dO, dO, B, KH, KH, lp->gamma, ws->mean[l], ws->rstd[l],
                      GRAD(lp->gamma), GRAD(lp->beta));
        const float *dA = dO;
        /* dZ also in its bf16 layouts (gemm_bf16.h): layer 0's one unit, a later layer's towers */
        rf_bf16_act *dzpk = ws->pk ? ws->pk->dz[l] : NULL;
        int ndz = l == 0 ? 1 : K;
        rf_act_bias_bwd(ws->Z[l], dA, ws->dZ[l], B, KH, KH, lp->alpha, GRAD(lp->b),
                        lp->alpha ? GRAD(lp->alpha) : NULL, dzpk, ndz);
        for (int k = 0; k < ndz && dzpk; k++) dzpk[k].valid = 1;
        if (l == 0) { /* the weight gradient of layer 0 is rf_model_backward_w0 */
            rf_gemm_prec_pk(ws->bf16, 0, 1, B, m->In, KH, 1.0f, ws->dZ[0], KH, dzpk, lp->W, KH, NULL, 0.0f, ws->dx,
                            m->In);
        } else {
            int Hp = m->H[l - 1];
            for (int k = 0; k < K; k++) {
                const float *W = lp->W + (size_t)k * Hp * H;
                rf_gemm_prec_tn(ws->bf16, &ws->kp, Hp, H, B, 1.0f, ws->O[l - 1] + k * Hp, K * Hp,
                                ws->pk ? &ws->pk->o[l - 1][k] : NULL, ws->dZ[l] + k * H, KH, dzpk ? &dzpk[k] : NULL,
                                1.0f, GRAD(W), H);
                rf_gemm_prec_pk(ws->bf16, 0, 1, B, Hp, H, 1.0f, ws->dZ[l] + k * H, KH, dzpk ? &dzpk[k] : NULL, W, H,
                                NULL, 0.0f, ws->dO[l - 1] + k * Hp, K * Hp);
            }
        }
    }
    /* dense projection of numeric features (reads dx; kept here so that everything after this
     * function touches disjoint state: layer-0 weight gradient vs embedding gradients) */
    const rf_dataset *ds = bt->ds;
    int F = m->F, E = m->E, In = m->In;
    if (m->Wd) {
        float *dWd = GRAD(m->Wd), *dbd = GRAD(m->bd);
        int D = m->D;
        for (int b = 0; b < B; b++) {
            const float *dn = ds->dense + bt->rows[b] * D, *dx = ws->dx + (size_t)b * In + F * E;
            for (int j = 0; j < E; j++) dbd[j] += dx[j];
            for (int i = 0; i < D; i++)
                for (int j = 0; j < E; j++) dWd[(size_t)i * E + j] += dn[i] * dx[j];
        }
    }
#undef GRAD
    return ws->bns.fn ? rf_bn_sync_take(&ws->bns, err) : RF_OK;
}

/* Embeddings (row-sparse) in groups of EMB_GROUP fields, a group at a time per thread, each
 * field into its own segment of gr (seg_off; seg_n rows). In a group, row by row: a batch row's
 * data and its dx columns are read once, in order, and the slots of the rows PF_SLOT ahead, the
 * ids and dx columns (into L2) of the row PF_DATA ahead and its dx columns (into L1) PF_DX ahead
 * are fetched while this one accumulates (the same sums in the same order as field by field: a
 * field's rows are still visited in batch order). Its dx lines only into L1, 16 rows ahead,
 * were 64 misses at once, more than L1 keeps in flight (docs/performance.md, "More misses in
 * flight"). */
enum { EMB_GROUP = 4, PF_SLOT = 8, PF_DATA = 16, PF_DX = 4 };

RF_HOT_CLONES /* the row accumulation is element-wise */
static void emb_group(const rf_model *m, const rf_workspace *ws, const rf_batch *bt, rf_grads *gr, int f0, int f1)
{
    const rf_dataset *ds = bt->ds;
    int B = ws->B, E = m->E, In = m->In, Ec = m->Ec;
    size_t cs = (size_t)m->F * Ec; /* a field's embedding chunks in dx (rf_model_xcol) */
    size_t n[EMB_GROUP] = {0}; /* the group's row counts (seg_n is shared by the threads) */
    for (int b = 0; b < B; b++) {
        size_t r = bt->rows[b];
        if (b + PF_DATA < B) { /* its ids, and its dx columns into L2: half the rows come from the other core */
            if (ds->cat) __builtin_prefetch(ds->cat + bt->rows[b + PF_DATA] * ds->F + f0);
            const float *nx = ws->dx + (size_t)(b + PF_DATA) * In + f0 * Ec;
            for (int c = 0; c < E; c += Ec, nx += cs)
                for (int j = 0; j < (f1 - f0) * Ec; j += 16) __builtin_prefetch(nx + j, 0, 2);
        }
        if (b + PF_DX < B) { /* the dx columns into L1 */
            const float *nx = ws->dx + (size_t)(b + PF_DX) * In + f0 * Ec;
            for (int c = 0; c < E; c += Ec, nx += cs)
                for (int j = 0; j < (f1 - f0) * Ec; j += 16) __builtin_prefetch(nx + j);
        }
        if (b + PF_SLOT < B) {
            const uint32_t *ca = ds->cat + bt->rows[b + PF_SLOT] * ds->F;
            for (int f = f0; f < f1; f++)
                if (m->pooling[f] < 0)
                    __builtin_prefetch(gr->slot + m->emb_off[f] + (ca[f] < m->vocab[f] ? ca[f] : 0));
        }
        for (int f = f0; f < f1; f++) {
            const float *dx = ws->dx + (size_t)b * In + f * Ec;
            if (m->pooling[f] < 0) {
                uint32_t id = ds->cat[r * ds->F + f];
                emb_accum(gr, ws, f, &n[f - f0], m->emb_off[f] + (id < m->vocab[f] ? id : 0), dx, 1.0f, E, Ec, cs);
            } else {
                uint64_t a = ds->mv_off[f][r], z = ds->mv_off[f][r + 1];
                float sc = m->pooling[f] == RF_POOL_MEAN && z - a > 1 ? 1.0f / (float)(z - a) : 1.0f;
                for (uint64_t i = a; i < z; i++) {
                    uint32_t id = ds->mv_ids[f][i];
                    emb_accum(gr, ws, f, &n[f - f0], m->emb_off[f] + (id < m->vocab[f] ? id : 0), dx, sc, E, Ec, cs);
                }
            }
        }
    }
    for (int f = f0; f < f1; f++) gr->seg_n[f] = n[f - f0];
}

/* The fields' segments, groups of fields in parallel; with apply, each field's rows are passed
 * on as soon as its group is summed, then cleared (rf_model_backward_emb_each). The groups go to
 * the threads in the same way every step, so a group's slots and gradient rows stay in one
 * core's caches (dynamic scheduling moved them between cores: 15-20 % slower when the two cores
 * are far apart, docs/performance.md). */
static void emb_fields(const rf_model *m, const rf_workspace *ws, const rf_batch *bt, rf_grads *gr,
                       void (*apply)(void *ud, const rf_grads *rows), void *ud)
{
    int F = m->F, E = m->E, ng = (F + EMB_GROUP - 1) / EMB_GROUP;
#pragma omp parallel for schedule(static) if (ws->B * F * E > 65536)
    for (int gi = 0; gi < ng; gi++) {
        int f0 = gi * EMB_GROUP, f1 = f0 + EMB_GROUP < F ? f0 + EMB_GROUP : F;
        emb_group(m, ws, bt, gr, f0, f1);
        for (int f = f0; f < f1 && apply; f++) { /* the field's rows while they are in cache */
            size_t o = ws->seg_off[f], n = gr->seg_n[f];
            rf_grads view = *gr;
            view.rows = gr->rows + o;
            view.g = gr->g + o * E;
            view.n_rows = view.cap = n;
            apply(ud, &view);
            for (size_t i = 0; i < n; i++) gr->slot[gr->rows[o + i]] = -1;
            gr->seg_n[f] = 0;
        }
    }
}

void rf_model_backward_emb_each(const rf_model *m, rf_workspace *ws, const rf_batch *bt, rf_grads *gr,
                                void (*apply)(void *ud, const rf_grads *rows), void *ud)
{
    emb_fields(m, ws, bt, gr, apply, ud);
}

void rf_model_backward_emb(const rf_model *m, rf_workspace *ws, const rf_batch *bt, rf_grads *gr)
{
    /* fields in parallel, each into its own segment, then the segments compacted into one list */
    emb_fields(m, ws, bt, gr, NULL, NULL);
    int F = m->F, E = m->E;
    size_t w = 0;
    for (int f = 0; f < F; f++) {
        size_t o = ws->seg_off[f], n = gr->seg_n[f];
        if (o != w && n) {
            memmove(gr->rows + w, gr->rows + o, n * sizeof *gr->rows);
            memmove(gr->g + w * E, gr->g + o * E, n * E * sizeof *gr->g);
            for (size_t i = 0; i < n; i++) gr->slot[gr->rows[w + i]] = (int32_t)(w + i);
        }
        w += n;
    }
    gr->n_rows = w;
}
