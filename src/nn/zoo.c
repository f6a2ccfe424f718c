/* zoo.c - the paper's peers as op graphs (see zoo.h, docs/models.md, methods.md §3-§4).
 *
 *   single         one model per task: its own embedding chunk and tower (methods.md §4.2)
 *   shared_bottom  x -> bottom MLP -> one tower per task (§4.3)
 *   moe            N expert MLPs, one softmax gate shared by all tasks (§4.4)
 *   mmoe           N expert MLPs, one softmax gate per task (§4.5)
 *   ple            stacked CGC levels: per-task and shared one-layer experts, task gates over
 *                  [own, shared] experts, a shared gate over all experts between levels (§4.6)
 *   aitm           per-task towers; a child's tower output q_k and the info p = ReLU(W z_parent + b)
 *                  of its parent go through a 2-item self-attention (z_k); logit from z_k (root:
 *                  from q); loss + alpha * mean max(p_child - p_parent, 0) per pair (§4.7)
 *   escm2_ipw/_dr  ESMM towers (p_k = p_parent * sigmoid(s_k)) + a counterfactual risk on every
 *                  child task with the parent's probability as propensity; dr adds one
 *                  imputation tower per child (extra output column) (§4.9)
 *   dcmt           ESMM towers + one counterfactual CVR tower per child (extra column), factual
 *                  and counterfactual inverse-propensity CVR losses and a soft r + r* = 1 prior
 *                  (§4.10)
 *   stem           (K+1) embedding chunks (task k, shared); per-task experts on chunk k, shared
 *                  experts on the shared chunk; task gate k on (x_k + x_s) over [all tasks'
 *                  specific experts, the others' with stop-gradient, shared experts] (§3)
 *
 * Gates are single linear layers with a bias followed by a softmax (MTReclib). Experts and
 * towers use model.act and model.bn like the tower models. Output: K task logits, then the
 * extra columns of rf_zoo_n_extra. The objectives of aitm, escm2 and dcmt are rf_zoo_loss.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/zoo.h"

int rf_zoo_is_tower(rf_model_type t)
{
    return t == RF_MODEL_RESFLOW || t == RF_MODEL_NSE || t == RF_MODEL_ESMM;
}

int rf_zoo_is_product(rf_model_type t)
{
    return t == RF_MODEL_ESMM || t == RF_MODEL_ESCM2_IPW || t == RF_MODEL_ESCM2_DR || t == RF_MODEL_DCMT;
}

int rf_zoo_emb_mult(const rf_model_spec *cfg)
{
    if (cfg->model.type == RF_MODEL_SINGLE) return cfg->K;
    if (cfg->model.type == RF_MODEL_STEM) return cfg->K + 1;
    return 1;
}

static int has_extra(rf_model_type t) { return t == RF_MODEL_ESCM2_DR || t == RF_MODEL_DCMT; }

int rf_zoo_n_extra(const rf_model_spec *cfg)
{
    if (!has_extra(cfg->model.type)) return 0;
    int n = 0;
    for (int k = 0; k < cfg->K; k++) n += cfg->tasks[k].parent[0] != '\0';
    return n;
}

int rf_zoo_extra_col(const rf_model_spec *cfg, int k)
{
    if (!has_extra(cfg->model.type) || k < 0 || k >= cfg->K || !cfg->tasks[k].parent[0]) return -1;
    int n = 0;
    for (int j = 0; j < k; j++) n += cfg->tasks[j].parent[0] != '\0';
    return n;
}

int rf_zoo_has_loss(rf_model_type t)
{
    return t == RF_MODEL_AITM || t == RF_MODEL_ESCM2_IPW || t == RF_MODEL_ESCM2_DR || t == RF_MODEL_DCMT;
}

typedef struct {
    rf_graph *g;
    const rf_model_spec *cfg;
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

static rf_widths tower_widths(const ctx *c)
{
    rf_widths w = {c->cfg->model.n_hidden, {0}};
    memcpy(w.w, c->cfg->model.hidden, sizeof w.w);
    return w;
}

/* A tower (model.hidden) on `in`, its logit written to output column col (k: task k's logit,
 * K + j: extra column j). */
static int tower(ctx *c, rf_view in, int col)
{
    rf_widths w = tower_widths(c);
    rf_view h;
    if (mlp(c, in, &w, &h)) return -1;
    return rf_g_linear(c->g, h, (rf_view){c->out_t, col, 1}, 1);
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

/* Embedding chunk `chunk` (of rf_zoo_emb_mult's) of every field, then the dense part (projected:
 * the same chunk of the projection; concatenated: all dense columns), as a view of x: the chunks
 * are laid out chunk by chunk (rf_model_xcol), so without dense columns a chunk is a plain view,
 * with them a column selection into a tensor of its own. */
static int chunk_view(ctx *c, rf_view x, int F, int chunk, int dense_w, rf_view *out)
{
    int E = c->cfg->model.emb_dim, mult = rf_zoo_emb_mult(c->cfg);
    int proj = c->cfg->model.dense_mode == RF_DENSE_PROJECT && dense_w > 0;
    if (dense_w == 0) {
        *out = rf_sub(x, chunk * F * E, F * E);
        return 0;
    }
    int w = F * E + (proj ? E : dense_w), n = 0;
    int *idx = malloc((size_t)w * sizeof *idx);
    if (!idx) return -1;
    for (int j = 0; j < F * E; j++) idx[n++] = chunk * F * E + j;
    if (proj)
        for (int j = 0; j < E; j++) idx[n++] = F * mult * E + chunk * E + j;
    else
        for (int j = 0; j < dense_w; j++) idx[n++] = F * mult * E + j;
    *out = rf_graph_whole(c->g, rf_graph_tensor(c->g, w));
    int rc = rf_g_cols(c->g, x, idx, *out);
    free(idx);
    return rc;
}

static int build_single(ctx *c, rf_view x, int F, int dense_w)
{
    for (int k = 0; k < c->cfg->K; k++) {
        rf_view xk;
        if (chunk_view(c, x, F, k, dense_w, &xk) || tower(c, xk, k)) return -1;
    }
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

/* AITM (methods.md §4.7, official TF AITM.py): tasks visited parents first. Task k: q_k =
 * tower hidden layers on x (H = last width). Root: z_k = q_k. Child of p: info
 * i_k = ReLU(z_p W_i + b_i) (H x H), z_k = attn2(q_k, i_k) (Wq, Wk, Wv: H x H, no bias).
 * Logit s_k = z_k w_k + b_k. Parameters are registered in that order per task. */
static int build_aitm(ctx *c, rf_view x, const int *parent, const int *order)
{
    int K = c->cfg->K;
    rf_widths w = tower_widths(c);
    int H = w.w[w.n - 1];
    rf_view z[RF_MAX_TASKS];
    for (int i = 0; i < K; i++) {
        int k = order[i], p = parent[k];
        rf_view q;
        if (mlp(c, x, &w, &q)) return -1;
        if (p < 0) {
            z[k] = q;
        } else {
            rf_view il = rf_graph_whole(c->g, rf_graph_tensor(c->g, H));
            rf_view ia = rf_graph_whole(c->g, rf_graph_tensor(c->g, H));
            z[k] = rf_graph_whole(c->g, rf_graph_tensor(c->g, H));
            if (rf_g_linear(c->g, z[p], il, 1) || rf_g_act(c->g, il, ia, RF_ACT_RELU, 0) ||
                rf_g_attn2(c->g, q, ia, z[k]))
                return -1;
        }
        if (rf_g_linear(c->g, z[k], (rf_view){c->out_t, k, 1}, 1)) return -1;
    }
    return 0;
}

/* ESMM-style towers for escm2/dcmt: one tower per task on x (task order), then for escm2_dr /
 * dcmt one more tower per child task (imputation / counterfactual CVR) into the extra columns. */
static int build_esmm_towers(ctx *c, rf_view x)
{
    int K = c->cfg->K;
    for (int k = 0; k < K; k++)
        if (tower(c, x, k)) return -1;
    for (int k = 0; k < K; k++) {
        int e = rf_zoo_extra_col(c->cfg, k);
        if (e >= 0 && tower(c, x, K + e)) return -1;
    }
    return 0;
}

/* STEM-Net (methods.md §3.2, one STEM layer): x_t = chunk t (t < K), x_s = chunk K. Specific
 * experts E_t = Nsp expert MLPs on x_t, shared experts S = Nsh expert MLPs on x_s. Task gate t:
 * softmax(Linear(x_t + x_s)) over [E_0.., E_1.., ..., E_{K-1}.., S..] where every E_t' with
 * t' != t enters with a stop-gradient (AFTB); o_t = the mixture; tower t on o_t. The shared
 * gate of the reference code only feeds a next STEM layer, so one layer has none. */
static int build_stem(ctx *c, rf_view x, int F, int dense_w)
{
    const rf_model_cfg *m = &c->cfg->model;
    int K = c->cfg->K, Nsp = m->specific_experts, Nsh = m->shared_experts;
    if (m->expert_hidden.n < 1) return snprintf(c->why, c->why_n, "model.expert_hidden is empty"), -1;
    if (K * Nsp + Nsh > 64) return snprintf(c->why, c->why_n, "stem: at most 64 experts per gate"), -1;
    int H = m->expert_hidden.w[m->expert_hidden.n - 1];
    rf_view xt[RF_MAX_TASKS + 1], spec[RF_MAX_TASKS], sh = {0, 0, 0};
    for (int t = 0; t <= K; t++)
        if (chunk_view(c, x, F, t, dense_w, &xt[t])) return -1;
    for (int t = 0; t < K; t++)
        if (experts(c, xt[t], Nsp, &m->expert_hidden, &spec[t])) return -1;
    if (Nsh > 0 && experts(c, xt[K], Nsh, &m->expert_hidden, &sh)) return -1;
    rf_view o = rf_graph_whole(c->g, rf_graph_tensor(c->g, K * H));
    for (int t = 0; t < K; t++) {
        rf_view gin = rf_graph_whole(c->g, rf_graph_tensor(c->g, xt[K].w));
        if (rf_g_add(c->g, xt[t], xt[K], gin)) return -1;
        rf_view ex[64];
        int sg[64], n = 0;
        for (int u = 0; u < K; u++)
            for (int e = 0; e < Nsp; e++) {
                sg[n] = u != t;
                ex[n++] = rf_sub(spec[u], e * H, H);
            }
        for (int e = 0; e < Nsh; e++) {
            sg[n] = 0;
            ex[n++] = rf_sub(sh, e * H, H);
        }
        if (gate_mix(c, gin, ex, sg, n, rf_sub(o, t * H, H))) return -1;
    }
    for (int t = 0; t < K; t++)
        if (tower(c, rf_sub(o, t * H, H), t)) return -1;
    return 0;
}

rf_graph *rf_zoo_build(const rf_model_spec *cfg, int F, int In, int dense_w, const int *parent, int *out_t,
                       char *why, size_t why_n)
{
    why[0] = '\0';
    int order[RF_MAX_TASKS], n = 0, done[RF_MAX_TASKS] = {0};
    if (cfg->K < 1 || cfg->K > RF_MAX_TASKS) return snprintf(why, why_n, "bad task count %d", cfg->K), NULL;
    while (n < cfg->K) { /* topological order of the task tree (parents first) */
        int progress = 0;
        for (int k = 0; k < cfg->K; k++)
            if (!done[k] && (parent[k] < 0 || done[parent[k]])) {
                done[k] = 1;
                order[n++] = k;
                progress = 1;
            }
        if (!progress) return snprintf(why, why_n, "the task tree has a cycle"), NULL;
    }
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
    case RF_MODEL_AITM: rc = build_aitm(&c, x, parent, order); break;
    case RF_MODEL_ESCM2_IPW:
    case RF_MODEL_ESCM2_DR:
    case RF_MODEL_DCMT: rc = build_esmm_towers(&c, x); break;
    case RF_MODEL_STEM: rc = build_stem(&c, x, F, dense_w); break;
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

void rf_zoo_out_masks(const rf_model_spec *cfg, const int *parent, uint32_t *mask)
{
    int K = cfg->K, nx = rf_zoo_n_extra(cfg);
    rf_model_type t = cfg->model.type;
    /* a child's loss reaching its parent's logit: AITM's calibrator, M1 on models with the
     * common objective (M2 needs a logit link, which the zoo has not) */
    int up = t == RF_MODEL_AITM || (cfg->model.monotonic == RF_MONO_M1 && !rf_zoo_has_loss(t));
    for (int c = 0; c < K + nx; c++) mask[c] = 0;
    for (int k = 0; k < K; k++) {
        mask[k] |= 1u << k;
        if (rf_zoo_is_product(t))
            for (int a = parent[k]; a >= 0; a = parent[a]) mask[a] |= 1u << k;
        else if (up && parent[k] >= 0)
            mask[parent[k]] |= 1u << k;
        int e = rf_zoo_extra_col(cfg, k);
        if (e >= 0) mask[K + e] |= 1u << k;
    }
}

/* ---- objectives of aitm, escm2, dcmt ------------------------------------------------------ */

#define PROP_EPS 1e-6 /* propensities are floored here before inverting (PaddleRec) */
#define DCMT_CONS 1e-3 /* weight of DCMT's |r + r* - 1| prior (third-party DCMT code) */

static double sigmoid_d(double s) { return s >= 0 ? 1.0 / (1.0 + exp(-s)) : exp(s) / (1.0 + exp(s)); }
static double log_sigmoid_d(double s) { return -(log1p(exp(-fabs(s))) + (s < 0 ? -s : 0.0)); }

/* -[w t log sigmoid(s) + (1 - t) log(1 - sigmoid(s))] from the logit; *g = d/ds. */
static double wbce(double s, double t, double w, double *g)
{
    double c = sigmoid_d(s);
    *g = (1.0 - t) * c - w * t * (1.0 - c);
    return -(w * t * log_sigmoid_d(s) + (1.0 - t) * log_sigmoid_d(-s));
}

/* The same BCE on a probability given by its log lp (ESMM products), log(1 - p) clamped at -100
 * as torch.nn.BCELoss (and model.c's ESMM) does; *dl = d/dlp. */
static double bce_logp(double lp, double t, double w, double *dl)
{
    double q = -expm1(lp); /* 1 - p */
    double l1p = log(q);
    if (!(l1p >= -100.0)) {
        l1p = -100.0;
        *dl = -w * t;
    } else {
        *dl = -w * t + (1.0 - t) * exp(lp) / q;
    }
    return -(w * t * lp + (1.0 - t) * l1p);
}

double rf_zoo_loss(const rf_model_spec *cfg, const int *parent, int B, const float *S, const float *X,
                   const float *Y, const float *rw, const double *scale, float *dS, float *dX,
                   double *per_task, rf_zoo_frozen *fz)
{
    const rf_model_cfg *m = &cfg->model;
    rf_model_type type = m->type;
    int K = cfg->K, nx = rf_zoo_n_extra(cfg);
    int aitm = type == RF_MODEL_AITM;
    double alpha = m->aitm_alpha, lc = m->cf_weight, lg = m->global_weight, clip = m->ips_clip;
    int col[RF_MAX_TASKS];
    for (int k = 0; k < K; k++) col[k] = rf_zoo_extra_col(cfg, k);
    int rec = fz && fz->w && fz->mode == RF_FREEZE_RECORD, use = fz && fz->w && fz->mode == RF_FREEZE_USE;
    double pt[RF_MAX_TASKS] = {0};
    for (int b = 0; b < B; b++) {
        const float *s = S + (size_t)b * K, *y = Y + (size_t)b * K, *xe = nx ? X + (size_t)b * nx : NULL;
        float *ds = dS + (size_t)b * K, *dx = nx ? dX + (size_t)b * nx : NULL;
        double r = rw ? rw[b] : 1.0;
        double c[RF_MAX_TASKS], cn[RF_MAX_TASKS], lp[RF_MAX_TASKS], g[RF_MAX_TASKS] = {0},
               gx[RF_MAX_TASKS] = {0};
        for (int k = 0; k < K; k++) {
            c[k] = sigmoid_d(s[k]);
            cn[k] = sigmoid_d(-s[k]); /* 1 - c[k] without cancellation (c[k] rounds to 1 for s > 37) */
            lp[k] = 0; /* log of the entire-space probability (product models) */
            for (int j = k; j >= 0; j = parent[j]) lp[k] += log_sigmoid_d(s[j]);
        }
        for (int k = 0; k < K; k++) {
            int p = parent[k];
            double f = scale[k] * r / B, pw = cfg->tasks[k].pos_weight, t = y[k], l, gs;
            if (aitm) {
                l = wbce(s[k], t, pw, &gs);
                g[k] += f * gs;
                if (p >= 0) { /* behavioural-expectation calibrator: p_k should not exceed p_parent */
                    double d = c[k] - c[p];
                    if (d > 0) {
                        l += alpha * d;
                        g[k] += f * alpha * c[k] * cn[k];
                        g[p] -= f * alpha * c[p] * cn[p];
                    }
                }
                pt[k] += r * l;
                continue;
            }
            /* product models: entire-space BCE on p_k = prod sigmoid along the chain (the root's
             * is L_CTR with weight 1, a child's the global CTCVR loss with weight lambda_g) */
            double wg = p >= 0 ? lg : 1.0, dl;
            l = wg * bce_logp(lp[k], t, pw, &dl);
            for (int j = k; j >= 0; j = parent[j]) g[j] += f * wg * dl * cn[j];
            if (p < 0) {
                pt[k] += r * l;
                continue;
            }
            /* counterfactual / causal CVR terms of child k: selection o = parent's label,
             * propensity = parent's entire-space probability; the inverse-propensity weights
             * are clipped and carry no gradient */
            double o = y[p], w1, w0;
            float *fw = fz && fz->w ? fz->w + ((size_t)b * K + k) * 2 : NULL;
            if (use) {
                w1 = fw[0];
                w0 = fw[1];
            } else {
                double ph = exp(lp[p]), qh = -expm1(lp[p]); /* p_parent, 1 - p_parent */
                w1 = o * fmin(1.0 / fmax(ph, PROP_EPS), clip);
                w0 = (1.0 - o) * fmin(1.0 / fmax(qh, PROP_EPS), clip);
                if (rec) {
                    fw[0] = (float)w1;
                    fw[1] = (float)w0;
                    w1 = fw[0]; /* the recorded (float) values, so USE reproduces this call */
                    w0 = fw[1];
                }
            }
            double gd, dlt = wbce(s[k], t, pw, &gd); /* delta: CVR loss of sigmoid(s_k) */
            double R, gr, gxe = 0;                      /* risk, dR/ds_k, dR/dx_extra */
            int e = col[k];
            if (type == RF_MODEL_ESCM2_IPW) {
                R = w1 * dlt;
                gr = w1 * gd;
            } else if (type == RF_MODEL_ESCM2_DR) { /* PaddleRec static: imputed error + IPS-corrected
                                                       error + IPS-weighted imputation loss */
                double dh = sigmoid_d(xe[e]), err = dlt - dh, a = w1 * (1.0 + 2.0 * err);
                R = dh + w1 * err + w1 * err * err;
                gr = a * gd;
                gxe = (1.0 - a) * dh * (1.0 - dh);
            } else { /* DCMT: factual IPS CVR loss + counterfactual (1 - label) loss on the
                        non-selected rows + soft prior r + r* = 1 */
                double gc, cs = sigmoid_d(xe[e]), dcf = wbce(xe[e], 1.0 - t, 1.0, &gc);
                double cons = c[k] + cs - 1.0, sg = cons > 0 ? 1.0 : cons < 0 ? -1.0 : 0.0;
                R = w1 * dlt + w0 * dcf + DCMT_CONS * fabs(cons);
                gr = w1 * gd + DCMT_CONS * sg * c[k] * (1.0 - c[k]);
                gxe = w0 * gc + DCMT_CONS * sg * cs * (1.0 - cs);
            }
            l += lc * R;
            g[k] += f * lc * gr;
            if (e >= 0) gx[e] += f * lc * gxe;
            pt[k] += r * l;
        }
        for (int k = 0; k < K; k++) ds[k] = (float)g[k];
        for (int e = 0; e < nx; e++) dx[e] = (float)gx[e];
    }
    double tot = 0;
    for (int k = 0; k < K; k++) {
        pt[k] /= B;
        tot += scale[k] * pt[k];
        if (per_task) per_task[k] = pt[k];
    }
    return tot;
}
