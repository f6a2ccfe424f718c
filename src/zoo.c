/* zoo.c - the paper's peers as op graphs (see zoo.h, docs/models.md, methods.md §3-§4).
 *
 *   single         one model per task: its own embedding chunk and tower (methods.md §4.2)
 *   shared_bottom  x -> bottom MLP -> one tower per task (§4.3)
 *   moe            N expert MLPs, one softmax gate shared by all tasks (§4.4)
 *   mmoe           N expert MLPs, one softmax gate per task (§4.5)
 *   ple            stacked CGC levels: per-task and shared one-layer experts, task gates over
 *                  [own, shared] experts, a shared gate over all experts between levels (§4.6)
 *
 * Gates are single linear layers with a bias followed by a softmax (MTReclib). Experts and
 * towers use model.act and model.bn like the tower models. Output: K task logits.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "zoo.h"

int rf_zoo_is_tower(rf_model_type t)
{
    return t == RF_MODEL_RESFLOW || t == RF_MODEL_NSE || t == RF_MODEL_ESMM;
}

int rf_zoo_is_product(rf_model_type t)
{
    return t == RF_MODEL_ESMM || t == RF_MODEL_ESCM2_IPW || t == RF_MODEL_ESCM2_DR || t == RF_MODEL_DCMT;
}

int rf_zoo_emb_mult(const rf_config *cfg)
{
    if (cfg->model.type == RF_MODEL_SINGLE) return cfg->K;
    if (cfg->model.type == RF_MODEL_STEM) return cfg->K + 1;
    return 1;
}

int rf_zoo_n_extra(const rf_config *cfg)
{
    (void)cfg;
    return 0;
}

typedef struct {
    rf_graph *g;
    const rf_config *cfg;
    int out_t;
    char *why;
    size_t why_n;
} ctx;

static int mlp(ctx *c, rf_view in, const rf_widths *w, rf_view *out)
{
    const rf_model_cfg *m = &c->cfg->model;
    if (w->n == 0) {
        *out = in;
        return 0;
    }
    return rf_g_mlp(c->g, in, w->w, w->n, m->act, m->prelu_init, m->bn == RF_BN_BATCH, m->bn_momentum,
                    m->bn_eps, out);
}

/* Task k's tower (model.hidden) on `in`, its logit written to output column k. */
static int tower(ctx *c, rf_view in, int k)
{
    rf_widths w = {c->cfg->model.n_hidden, {0}};
    memcpy(w.w, c->cfg->model.hidden, sizeof w.w);
    rf_view h;
    if (mlp(c, in, &w, &h)) return -1;
    return rf_g_linear(c->g, h, (rf_view){c->out_t, k, 1}, 1);
}

/* n experts side by side: each an MLP of widths w on `in`. The first layer of all experts is one
 * GEMM, deeper layers block-diagonal. Returns a tensor of n*w_last columns (expert e owns the
 * block [e*w_last, (e+1)*w_last)). */
static int experts(ctx *c, rf_view in, int n, const rf_widths *w, rf_view *out)
{
    const rf_model_cfg *m = &c->cfg->model;
    rf_graph *g = c->g;
    rf_view cur = in;
    for (int l = 0; l < w->n; l++) {
        rf_view z = rf_graph_whole(g, rf_graph_tensor(g, n * w->w[l]));
        rf_view a = rf_graph_whole(g, rf_graph_tensor(g, n * w->w[l]));
        int G = l == 0 ? 1 : n;
        if (rf_g_glinear(g, cur, z, G, 1) || rf_g_act(g, z, a, m->act, m->prelu_init)) return -1;
        if (m->bn == RF_BN_BATCH) {
            rf_view y = rf_graph_whole(g, rf_graph_tensor(g, n * w->w[l]));
            if (rf_g_bn(g, a, y, m->bn_momentum, m->bn_eps)) return -1;
            a = y;
        }
        cur = a;
    }
    *out = cur;
    return 0;
}

/* A softmax gate on `in` over the n experts `ex`, mixed into out. */
static int gate_mix(ctx *c, rf_view in, const rf_view *ex, const int *stopgrad, int n, rf_view out)
{
    rf_view gl = rf_graph_whole(c->g, rf_graph_tensor(c->g, n));
    if (rf_g_linear(c->g, in, gl, 1)) return -1;
    return rf_g_mix(c->g, gl, ex, stopgrad, n, out);
}

static int build_single(ctx *c, rf_view x, int F, int dense_w)
{
    int K = c->cfg->K, E = c->cfg->model.emb_dim, mult = K;
    int proj = c->cfg->model.dense_mode == RF_DENSE_PROJECT && dense_w > 0;
    int w = F * E + (dense_w > 0 ? (proj ? E : dense_w) : 0);
    int *idx = malloc((size_t)w * sizeof *idx);
    if (!idx) return -1;
    for (int k = 0; k < K; k++) {
        int n = 0;
        for (int f = 0; f < F; f++)
            for (int j = 0; j < E; j++) idx[n++] = f * mult * E + k * E + j;
        if (proj)
            for (int j = 0; j < E; j++) idx[n++] = F * mult * E + k * E + j;
        else
            for (int j = 0; j < dense_w; j++) idx[n++] = F * mult * E + j;
        rf_view xk = rf_graph_whole(c->g, rf_graph_tensor(c->g, w));
        if (rf_g_cols(c->g, x, idx, xk) || tower(c, xk, k)) {
            free(idx);
            return -1;
        }
    }
    free(idx);
    return 0;
}

static int build_shared_bottom(ctx *c, rf_view x)
{
    rf_view h;
    if (mlp(c, x, &c->cfg->model.bottom, &h)) return -1;
    for (int k = 0; k < c->cfg->K; k++)
        if (tower(c, h, k)) return -1;
    return 0;
}

static int build_moe(ctx *c, rf_view x, int per_task)
{
    const rf_model_cfg *m = &c->cfg->model;
    int K = c->cfg->K, N = m->experts;
    if (m->expert_hidden.n < 1) return snprintf(c->why, c->why_n, "model.expert_hidden is empty"), -1;
    int H = m->expert_hidden.w[m->expert_hidden.n - 1];
    rf_view E;
    if (experts(c, x, N, &m->expert_hidden, &E)) return -1;
    rf_view ex[64];
    if (N > 64) return snprintf(c->why, c->why_n, "at most 64 experts"), -1;
    for (int e = 0; e < N; e++) ex[e] = rf_sub(E, e * H, H);
    int ng = per_task ? K : 1;
    rf_view h = rf_graph_whole(c->g, rf_graph_tensor(c->g, ng * H));
    for (int k = 0; k < ng; k++)
        if (gate_mix(c, x, ex, NULL, N, rf_sub(h, k * H, H))) return -1;
    for (int k = 0; k < K; k++)
        if (tower(c, rf_sub(h, per_task ? k * H : 0, H), k)) return -1;
    return 0;
}

static int build_ple(ctx *c, rf_view x)
{
    const rf_model_cfg *m = &c->cfg->model;
    int K = c->cfg->K, Nsp = m->specific_experts, Nsh = m->shared_experts, L = m->expert_hidden.n;
    if (L < 1) return snprintf(c->why, c->why_n, "model.expert_hidden is empty (one width per PLE level)"), -1;
    if (K * Nsp + Nsh > 64) return snprintf(c->why, c->why_n, "at most 64 experts per level"), -1;
    rf_view xt[RF_MAX_TASKS], xs = x;
    for (int k = 0; k < K; k++) xt[k] = x;
    for (int l = 0; l < L; l++) {
        int H = m->expert_hidden.w[l], last = l == L - 1;
        rf_widths one = {1, {H}};
        rf_view spec[RF_MAX_TASKS], sh = {0, 0, 0};
        for (int k = 0; k < K; k++)
            if (experts(c, xt[k], Nsp, &one, &spec[k])) return -1;
        if (Nsh > 0 && experts(c, xs, Nsh, &one, &sh)) return -1;
        rf_view nt = rf_graph_whole(c->g, rf_graph_tensor(c->g, K * H)); /* next task inputs */
        for (int k = 0; k < K; k++) {
            rf_view ex[64];
            int n = 0;
            for (int e = 0; e < Nsp; e++) ex[n++] = rf_sub(spec[k], e * H, H);
            for (int e = 0; e < Nsh; e++) ex[n++] = rf_sub(sh, e * H, H);
            if (gate_mix(c, xt[k], ex, NULL, n, rf_sub(nt, k * H, H))) return -1;
        }
        rf_view ns = xs;
        if (!last) { /* the shared gate mixes every expert of the level */
            rf_view ex[64];
            int n = 0;
            for (int k = 0; k < K; k++)
                for (int e = 0; e < Nsp; e++) ex[n++] = rf_sub(spec[k], e * H, H);
            for (int e = 0; e < Nsh; e++) ex[n++] = rf_sub(sh, e * H, H);
            ns = rf_graph_whole(c->g, rf_graph_tensor(c->g, H));
            if (gate_mix(c, xs, ex, NULL, n, ns)) return -1;
        }
        for (int k = 0; k < K; k++) xt[k] = rf_sub(nt, k * H, H);
        xs = ns;
    }
    for (int k = 0; k < K; k++)
        if (tower(c, xt[k], k)) return -1;
    return 0;
}

rf_graph *rf_zoo_build(const rf_config *cfg, int F, int In, int dense_w, const int *parent, int *out_t,
                       char *why, size_t why_n)
{
    (void)parent;
    why[0] = '\0';
    rf_graph *g = rf_graph_new(In);
    if (!g) return snprintf(why, why_n, "out of memory"), NULL;
    ctx c = {g, cfg, -1, why, why_n};
    c.out_t = rf_graph_tensor(g, cfg->K + rf_zoo_n_extra(cfg));
    rf_view x = rf_graph_whole(g, 0);
    int rc;
    switch (cfg->model.type) {
    case RF_MODEL_SINGLE: rc = build_single(&c, x, F, dense_w); break;
    case RF_MODEL_SHARED_BOTTOM: rc = build_shared_bottom(&c, x); break;
    case RF_MODEL_MOE: rc = build_moe(&c, x, 0); break;
    case RF_MODEL_MMOE: rc = build_moe(&c, x, 1); break;
    case RF_MODEL_PLE: rc = build_ple(&c, x); break;
    default:
        snprintf(why, why_n, "model.type %d is not implemented yet", (int)cfg->model.type);
        rc = -1;
    }
    if (!rc && rf_graph_finalize(g, c.out_t)) rc = -1;
    if (rc) {
        if (!why[0]) snprintf(why, why_n, "cannot build the model graph (shape error or out of memory)");
        rf_graph_free(g);
        return NULL;
    }
    *out_t = c.out_t;
    return g;
}
