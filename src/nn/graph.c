/* graph.c - the op graph executor of graph.h: building, workspaces, forward, backward (the
 * backward plan: graph_plan.c). */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/bigmem.h"
#include "core/omp.h"
#include "core/rng.h"
#include "core/simd.h"
#include "nn/graph_impl.h"
#include "resflow/spec.h"

/* ---- building ------------------------------------------------------------------------------ */

#define GROW(arr, n, cap)                                                              \
    do {                                                                               \
        if ((n) == (cap)) {                                                            \
            int nc_ = (cap) ? 2 * (cap) : 16;                                          \
            void *p_ = realloc((arr), (size_t)nc_ * sizeof *(arr));                    \
            if (!p_) return -1;                                                        \
            (arr) = p_;                                                                \
            (cap) = nc_;                                                               \
        }                                                                              \
    } while (0)

static int add_tensor(rf_graph *g, int w)
{
    GROW(g->width, g->nt, g->cap_t);
    g->width[g->nt] = w;
    return g->nt++;
}

rf_graph *rf_graph_new(int input_width)
{
    rf_graph *g = calloc(1, sizeof *g);
    if (!g || add_tensor(g, input_width) != 0) {
        free(g);
        return NULL;
    }
    g->out_t = -1;
    return g;
}

void rf_graph_free(rf_graph *g)
{
    if (!g) return;
    for (int i = 0; i < g->nops; i++) {
        free(g->ops[i].idx);
        free(g->ops[i].run);
    }
    free(g->ops);
    free(g->width);
    free(g->init);
    free(g->zero_first);
    free(g);
}

int rf_graph_tensor(rf_graph *g, int width)
{
    int t = add_tensor(g, width);
    if (t < 0) g->err = 1;
    return t;
}

rf_view rf_graph_whole(const rf_graph *g, int t) { return (rf_view){t, 0, g->width[t]}; }

static size_t reg(rf_graph *g, size_t n, initkind kind, int fi, int fo, float value, int buffer)
{
    if (g->ninit == g->cap_init) {
        int nc = g->cap_init ? 2 * g->cap_init : 32;
        initspec *p = realloc(g->init, (size_t)nc * sizeof *p);
        if (!p) {
            g->err = 1;
            return NONE;
        }
        g->init = p;
        g->cap_init = nc;
    }
    size_t off = buffer ? g->n_buffers : g->n_params;
    g->init[g->ninit++] = (initspec){off, n, kind, fi, fo, value, buffer};
    if (buffer) g->n_buffers += n;
    else g->n_params += n;
    return off;
}

static int valid(const rf_graph *g, rf_view v)
{
    return v.t >= 0 && v.t < g->nt && v.c >= 0 && v.w > 0 && v.c + v.w <= g->width[v.t];
}

static op *new_op(rf_graph *g, opkind k, rf_view out)
{
    if (g->nops == g->cap_ops) {
        int nc = g->cap_ops ? 2 * g->cap_ops : 32;
        op *p = realloc(g->ops, (size_t)nc * sizeof *p);
        if (!p) {
            g->err = 1;
            return NULL;
        }
        g->ops = p;
        g->cap_ops = nc;
    }
    op *o = &g->ops[g->nops++];
    memset(o, 0, sizeof *o);
    o->k = k;
    o->out = out;
    o->W = o->b = o->alpha = o->gamma = o->beta = o->Wk = o->Wv = o->rmean = o->rvar = NONE;
    o->scratch = -1;
    return o;
}

int rf_g_cols(rf_graph *g, rf_view in, const int *idx, rf_view out)
{
    if (!valid(g, in) || !valid(g, out)) return g->err = 1, -1;
    for (int j = 0; j < out.w; j++)
        if (idx[j] < 0 || idx[j] >= in.w) return g->err = 1, -1;
    op *o = new_op(g, OP_COLS, out);
    if (!o) return -1;
    o->in[0] = in;
    o->nin = 1;
    o->idx = malloc((size_t)out.w * sizeof *o->idx);
    o->run = malloc((size_t)(out.w + 1) * sizeof *o->run);
    if (!o->idx || !o->run) return g->err = 1, -1;
    memcpy(o->idx, idx, (size_t)out.w * sizeof *idx);
    /* the columns as runs of consecutive inputs (an embedding field's E values): copied and, in
     * the backward, added a run at a time instead of one indexed element at a time */
    o->nrun = 0;
    for (int j = 0; j < out.w; j++)
        if (j == 0 || idx[j] != idx[j - 1] + 1) o->run[o->nrun++] = j;
    o->run[o->nrun] = out.w;
    return 0;
}

int rf_g_linear(rf_graph *g, rf_view in, rf_view out, int bias)
{
    return rf_g_glinear(g, in, out, 1, bias);
}

int rf_g_glinear(rf_graph *g, rf_view in, rf_view out, int G, int bias)
{
    if (!valid(g, in) || !valid(g, out) || G < 1 || in.w % G || out.w % G) return g->err = 1, -1;
    op *o = new_op(g, G == 1 ? OP_LINEAR : OP_GLINEAR, out);
    if (!o) return -1;
    o->in[0] = in;
    o->nin = 1;
    o->G = G;
    int iw = in.w / G, ow = out.w / G;
    o->W = reg(g, (size_t)in.w * ow, INIT_XAVIER, iw, ow, 0, 0);
    if (bias) o->b = reg(g, (size_t)out.w, INIT_ZERO, 0, 0, 0, 0);
    return g->err ? -1 : 0;
}

int rf_g_act(rf_graph *g, rf_view in, rf_view out, int act, float prelu_init)
{
    if (!valid(g, in) || !valid(g, out) || in.w != out.w) return g->err = 1, -1;
    op *o = new_op(g, OP_ACT, out);
    if (!o) return -1;
    o->in[0] = in;
    o->nin = 1;
    o->act = act;
    if (act == RF_ACT_PRELU) o->alpha = reg(g, (size_t)in.w, INIT_CONST, 0, 0, prelu_init, 0);
    return g->err ? -1 : 0;
}

int rf_g_bn(rf_graph *g, rf_view in, rf_view out, float momentum, float eps)
{
    /* the kernels take one leading dimension: whole tensors of equal width */
    if (!valid(g, in) || !valid(g, out) || in.c || out.c || in.w != g->width[in.t] ||
        out.w != g->width[out.t] || in.w != out.w)
        return g->err = 1, -1;
    op *o = new_op(g, OP_BN, out);
    if (!o) return -1;
    o->in[0] = in;
    o->nin = 1;
    o->mom = momentum;
    o->eps = eps;
    o->gamma = reg(g, (size_t)in.w, INIT_CONST, 0, 0, 1.0f, 0);
    o->beta = reg(g, (size_t)in.w, INIT_ZERO, 0, 0, 0, 0);
    o->rmean = reg(g, (size_t)in.w, INIT_ZERO, 0, 0, 0, 1);
    o->rvar = reg(g, (size_t)in.w, INIT_CONST, 0, 0, 1.0f, 1);
    int sc = add_tensor(g, 2 * in.w); /* row 0: mean | rstd */
    if (sc < 0) return g->err = 1, -1;
    g->ops[g->nops - 1].scratch = sc;
    return g->err ? -1 : 0;
}

int rf_g_add(rf_graph *g, rf_view a, rf_view b, rf_view out)
{
    if (!valid(g, a) || !valid(g, b) || !valid(g, out) || a.w != out.w || b.w != out.w)
        return g->err = 1, -1;
    op *o = new_op(g, OP_ADD, out);
    if (!o) return -1;
    o->in[0] = a;
    o->in[1] = b;
    o->nin = 2;
    return 0;
}

int rf_g_mix(rf_graph *g, rf_view gate, const rf_view *experts, const int *stopgrad, int n, rf_view out)
{
    if (n < 1 || n > MAX_IN - 1 || !valid(g, gate) || gate.w != n || !valid(g, out)) return g->err = 1, -1;
    for (int i = 0; i < n; i++)
        if (!valid(g, experts[i]) || experts[i].w != out.w) return g->err = 1, -1;
    op *o = new_op(g, OP_MIX, out);
    if (!o) return -1;
    o->in[0] = gate;
    for (int i = 0; i < n; i++) {
        o->in[1 + i] = experts[i];
        o->nograd[1 + i] = stopgrad ? stopgrad[i] != 0 : 0;
    }
    o->nin = 1 + n;
    int sc = add_tensor(g, n); /* softmax weights per row */
    if (sc < 0) return g->err = 1, -1;
    g->ops[g->nops - 1].scratch = sc;
    return 0;
}

int rf_g_attn2(rf_graph *g, rf_view q, rf_view p, rf_view out)
{
    int H = out.w;
    if (!valid(g, q) || !valid(g, p) || !valid(g, out) || q.w != H || p.w != H) return g->err = 1, -1;
    op *o = new_op(g, OP_ATTN2, out);
    if (!o) return -1;
    o->in[0] = q;
    o->in[1] = p;
    o->nin = 2;
    o->W = reg(g, (size_t)H * H, INIT_NORMAL, 0, 0, 0.01f, 0); /* Wq */
    o->Wk = reg(g, (size_t)H * H, INIT_NORMAL, 0, 0, 0.01f, 0);
    o->Wv = reg(g, (size_t)H * H, INIT_NORMAL, 0, 0, 0.01f, 0);
    /* internals: Q_q K_q V_q Q_p K_p V_p (H each) then w_q w_p */
    int sc = add_tensor(g, 6 * H + 2);
    if (sc < 0) return g->err = 1, -1;
    g->ops[g->nops - 1].scratch = sc;
    return g->err ? -1 : 0;
}

int rf_g_mlp(rf_graph *g, rf_view in, const int *widths, int n, int act, float prelu_init, int bn,
             float bn_momentum, float bn_eps, rf_view *out)
{
    rf_view cur = in;
    for (int l = 0; l < n; l++) {
        rf_view z = rf_graph_whole(g, rf_graph_tensor(g, widths[l]));
        rf_view a = rf_graph_whole(g, rf_graph_tensor(g, widths[l]));
        if (g->err || rf_g_linear(g, cur, z, 1) || rf_g_act(g, z, a, act, prelu_init)) return -1;
        if (bn) {
            rf_view y = rf_graph_whole(g, rf_graph_tensor(g, widths[l]));
            if (g->err || rf_g_bn(g, a, y, bn_momentum, bn_eps)) return -1;
            a = y;
        }
        cur = a;
    }
    *out = cur;
    return 0;
}

size_t rf_graph_n_params(const rf_graph *g) { return g->n_params; }
size_t rf_graph_n_buffers(const rf_graph *g) { return g->n_buffers; }

void rf_graph_init(const rf_graph *g, float *params, float *buffers, uint64_t seed)
{
    rf_rng r;
    rf_rng_seed(&r, seed);
    for (int i = 0; i < g->ninit; i++) {
        const initspec *s = &g->init[i];
        float *p = (s->buffer ? buffers : params) + s->off;
        switch (s->kind) {
        case INIT_XAVIER: {
            double lim = sqrt(6.0 / (s->fan_in + s->fan_out));
            for (size_t j = 0; j < s->n; j++) p[j] = (float)((2 * rf_rng_uniform(&r) - 1) * lim);
            break;
        }
        case INIT_ZERO: memset(p, 0, s->n * sizeof *p); break;
        case INIT_CONST:
            for (size_t j = 0; j < s->n; j++) p[j] = s->value;
            break;
        case INIT_NORMAL:
            for (size_t j = 0; j < s->n; j++) {
                double u1 = rf_rng_uniform(&r) + 1e-12, u2 = rf_rng_uniform(&r);
                p[j] = (float)(s->value * sqrt(-2 * log(u1)) * cos(2 * M_PI * u2));
            }
            break;
        }
    }
}

/* ---- workspace ------------------------------------------------------------------------------ */

rf_graph_ws *rf_graph_ws_create(const rf_graph *g, int maxB)
{
    rf_graph_ws *w = calloc(1, sizeof *w);
    if (!w) return NULL;
    w->maxB = maxB;
    w->nt = g->nt;
    w->nops = g->nops;
    w->val = calloc((size_t)g->nt, sizeof *w->val);
    w->grad = calloc((size_t)g->nt, sizeof *w->grad);
    w->frozen = calloc((size_t)(g->nops ? g->nops : 1), sizeof *w->frozen);
    if (!w->val || !w->grad || !w->frozen) goto oom;
    for (int t = 1; t < g->nt; t++) {
        w->val[t] = rf_big_malloc_((size_t)maxB * g->width[t] * sizeof(float));
        w->grad[t] = rf_big_malloc_((size_t)maxB * g->width[t] * sizeof(float));
        if (!w->val[t] || !w->grad[t]) goto oom;
    }
    size_t wc = 0;
    for (int i = 0; i < g->nops; i++)
        if (g->ops[i].k == OP_ATTN2 && (size_t)3 * g->ops[i].out.w * g->ops[i].out.w > wc)
            wc = (size_t)3 * g->ops[i].out.w * g->ops[i].out.w;
    if (wc && !(w->wcat = malloc(wc * sizeof(float)))) goto oom;
    size_t sl = 0; /* the widest mix completing a PReLU: its n H slope sums per thread */
    for (int i = 0; i < g->nops; i++) {
        const op *o = &g->ops[i];
        for (int j = 1; j < o->nin && o->k == OP_MIX; j++)
            if (o->mixact[j] && g->ops[o->mixact[j] - 1].alpha != NONE &&
                (size_t)(o->nin - 1) * o->out.w > sl)
                sl = (size_t)(o->nin - 1) * o->out.w;
    }
    w->slope_nt = omp_get_max_threads() > omp_get_num_procs() ? omp_get_max_threads() : omp_get_num_procs();
    if (sl && !(w->slope = malloc((size_t)w->slope_nt * sl * sizeof(float)))) goto oom;
    return w;
oom:
    rf_graph_ws_free(w);
    return NULL;
}

void rf_graph_ws_free(rf_graph_ws *w)
{
    if (!w) return;
    for (int t = 1; t < w->nt; t++) {
        if (w->val) free(w->val[t]);
        if (w->grad) free(w->grad[t]);
    }
    if (w->frozen)
        for (int i = 0; i < w->nops; i++) free(w->frozen[i]);
    free(w->frozen);
    free(w->wcat);
    free(w->slope);
    rf_kpart_free(&w->kp);
    free(w->val);
    free(w->grad);
    free(w);
}

void rf_graph_ws_input(rf_graph_ws *w, float *x, float *dx)
{
    w->val[0] = x;
    w->grad[0] = dx;
}

void rf_graph_ws_sync(rf_graph_ws *w, struct rf_bn_sync *s) { w->sync = s; }
void rf_graph_ws_bf16(rf_graph_ws *w, rf_bf16_scratch *s) { w->bf16 = s; }

void rf_graph_bf16_need(const rf_graph *g, int B, size_t *an, size_t *bn)
{
    for (int i = 0; i < g->nops; i++) {
        const op *o = &g->ops[i];
        int M, N, K; /* forward C(M,N) = A(M,K) W(K,N); backward dW = A^T dC, dA = dC W^T */
        if (o->k == OP_LINEAR || o->k == OP_GLINEAR) {
            M = B;
            K = o->in[0].w / o->G;
            N = o->out.w / o->G;
        } else if (o->k == OP_ATTN2) { /* Q, K and V of an input in one GEMM (wcat_put); the
                                        * input gradient's room below covers its three K = H GEMMs */
            M = B;
            K = o->out.w;
            N = 3 * K;
        } else {
            continue;
        }
        rf_bf16_scratch_need(0, 0, M, N, K, an, bn);
        rf_bf16_scratch_need(1, 0, K, N, M, an, bn);
        rf_bf16_scratch_need(0, 1, M, K, N, an, bn);
    }
}

void rf_graph_bn_idle(const rf_graph *g, rf_graph_ws *w, const float *P, float *buf, float *Gp)
{
    for (int pass = 0; pass < 2; pass++)
        for (int k = 0; k < g->nops; k++) {
            const op *o = &g->ops[pass ? g->nops - 1 - k : k];
            if (o->k != OP_BN || !w->sync || !w->sync->fn) continue;
            int n = o->in[0].w;
            float *mean = w->val[o->scratch], *rstd = mean + n;
            if (!pass)
                rf_bn_sync_fwd(w->sync, NULL, NULL, 0, n, n, P + o->gamma, P + o->beta, mean, rstd, buf + o->rmean,
                               buf + o->rvar, o->mom, o->eps);
            else
                rf_bn_sync_bwd(w->sync, NULL, NULL, NULL, 0, n, n, P + o->gamma, mean, rstd, Gp + o->gamma,
                               Gp + o->beta);
        }
}

static int mix_has_stopgrad(const op *o)
{
    if (o->k != OP_MIX) return 0;
    for (int j = 1; j < o->nin; j++)
        if (o->nograd[j]) return 1;
    return 0;
}

int rf_graph_ws_freeze(const rf_graph *g, rf_graph_ws *w, int mode)
{
    w->freeze = RF_FREEZE_OFF;
    if (mode == RF_FREEZE_OFF) return 0;
    for (int i = 0; i < g->nops; i++) {
        const op *o = &g->ops[i];
        if (!mix_has_stopgrad(o) || w->frozen[i]) continue;
        w->frozen[i] = calloc((size_t)w->maxB * (o->nin - 1) * o->out.w, sizeof(float));
        if (!w->frozen[i]) return -1;
    }
    w->freeze = mode;
    return 0;
}

float *rf_graph_val(rf_graph_ws *w, int t) { return w->val[t]; }
float *rf_graph_grad(rf_graph_ws *w, int t) { return w->grad[t]; }

/* ---- forward --------------------------------------------------------------------------------- */

#define V(v) (w->val[(v).t] + (v).c)
#define GR(v) (w->grad[(v).t] + (v).c)
#define LD(v) (g->width[(v).t])

/* A linear op whose output is read by the next op alone, an activation (not identity) over
 * exactly that view: the forward adds the bias and applies the activation in one pass
 * (rf_bias_act_fwd keeps z = xW + b in the linear's output for the backward, as the two ops
 * leave it). */
static int fuses_act(const rf_graph *g, const op *o, const op *nx)
{
    return nx && nx->k == OP_ACT && nx->act >= 0 && nx->in[0].t == o->out.t && nx->in[0].c == o->out.c &&
           nx->in[0].w == o->out.w && nx->out.w == o->out.w && g->width[nx->out.t] == g->width[o->out.t];
}

/* attn2's three H x H weights (or their gradients) side by side, Wc = [W0 | W1 | W2] (H x 3H), so
 * that Q, K and V of an input are one GEMM (each column of a product is its own sum over k: the
 * same bits as three GEMMs, one barrier instead of three); wcat_take copies Wc back. */
static void wcat_put(float *Wc, const float *const Wm[3], int H)
{
    for (int r = 0; r < H; r++)
        for (int m = 0; m < 3; m++) memcpy(Wc + (size_t)r * 3 * H + m * H, Wm[m] + (size_t)r * H, H * sizeof(float));
}

static void wcat_take(const float *Wc, float *const Wm[3], int H)
{
    for (int r = 0; r < H; r++)
        for (int m = 0; m < 3; m++) memcpy(Wm[m] + (size_t)r * H, Wc + (size_t)r * 3 * H + m * H, H * sizeof(float));
}

/* D = X + Y, B rows of N (each matrix its own row stride); compiled per CPU in a portable build. */
RF_HOT_CLONES static void add_rows(const float *X, int ldx, const float *Y, int ldy, float *D, int ldd, int B, int N)
{
#pragma omp parallel for schedule(static) if (rf_omp_worth((long)B * N, 65536))
    for (int b = 0; b < B; b++) {
        const float *x = X + (size_t)b * ldx, *y = Y + (size_t)b * ldy;
        float *d = D + (size_t)b * ldd;
#pragma omp simd
        for (int j = 0; j < N; j++) d[j] = x[j] + y[j];
    }
}

void rf_graph_forward(const rf_graph *g, rf_graph_ws *w, const float *P, float *buf, int B, int train)
{
    for (int i = 0; i < g->nops; i++) {
        const op *o = &g->ops[i];
        rf_view in = o->in[0], out = o->out;
        switch (o->k) {
        case OP_COLS:
#pragma omp parallel for schedule(static) if (B * out.w > 65536)
            for (int b = 0; b < B; b++) {
                const float *s = V(in) + (size_t)b * LD(in);
                float *d = V(out) + (size_t)b * LD(out);
                for (int r = 0; r < o->nrun; r++)
                    memcpy(d + o->run[r], s + o->idx[o->run[r]], (size_t)(o->run[r + 1] - o->run[r]) * sizeof *d);
            }
            break;
        case OP_LINEAR:
        case OP_GLINEAR: {
            int G = o->G, iw = in.w / G, ow = out.w / G;
            for (int j = 0; j < G; j++)
                rf_gemm_prec(w->bf16, 0, 0, B, ow, iw, 1.0f, V(in) + j * iw, LD(in), P + o->W + (size_t)j * iw * ow, ow,
                        0.0f, V(out) + j * ow, LD(out));
            const op *nx = i + 1 < g->nops ? &g->ops[i + 1] : NULL;
            if (o->b != NONE && fuses_act(g, o, nx)) { /* z += b and the activation in one pass */
                rf_bias_act_fwd(V(out), V(nx->out), B, out.w, LD(out), P + o->b,
                                nx->alpha != NONE ? P + nx->alpha : NULL, NULL, 0);
                i++;
            } else if (o->b != NONE) {
                rf_bias_fwd(V(out), B, out.w, LD(out), P + o->b);
            }
            break;
        }
        case OP_ACT:
            if (o->act < 0) {
#pragma omp parallel for schedule(static) if (rf_omp_worth((long)B * out.w, 65536))
                for (int b = 0; b < B; b++)
                    memcpy(V(out) + (size_t)b * LD(out), V(in) + (size_t)b * LD(in), out.w * sizeof(float));
            } else if (LD(in) == LD(out)) {
                rf_act_fwd(V(in), V(out), B, out.w, LD(in), o->alpha != NONE ? P + o->alpha : NULL);
            } else { /* two row strides: row by row */
                for (int b = 0; b < B; b++)
                    rf_act_fwd(V(in) + (size_t)b * LD(in), V(out) + (size_t)b * LD(out), 1, out.w, out.w,
                               o->alpha != NONE ? P + o->alpha : NULL);
            }
            break;
        case OP_BN: {
            float *mean = w->val[o->scratch], *rstd = mean + in.w;
            if (train && w->sync && w->sync->fn)
                rf_bn_sync_fwd(w->sync, V(in), V(out), B, in.w, in.w, P + o->gamma, P + o->beta, mean, rstd,
                               buf + o->rmean, buf + o->rvar, o->mom, o->eps);
            else if (train)
                rf_bn_fwd_train(V(in), V(out), B, in.w, in.w, P + o->gamma, P + o->beta, mean, rstd,
                                buf + o->rmean, buf + o->rvar, o->mom, o->eps);
            else
                rf_bn_fwd_eval(V(in), V(out), B, in.w, in.w, P + o->gamma, P + o->beta, buf + o->rmean,
                               buf + o->rvar, o->eps);
            break;
        }
        case OP_ADD: {
            rf_view a = o->in[0], c = o->in[1];
            add_rows(V(a), LD(a), V(c), LD(c), V(out), LD(out), B, out.w);
            break;
        }
        case OP_MIX: {
            int n = o->nin - 1, H = out.w;
            float *A = w->val[o->scratch];
            float *fz = w->freeze != RF_FREEZE_OFF ? w->frozen[i] : NULL; /* rf_graph_ws_freeze */
            if (fz) {
                if (w->freeze == RF_FREEZE_RECORD)
                    for (int b = 0; b < B; b++)
                        for (int e = 0; e < n; e++)
                            if (o->nograd[1 + e])
                                memcpy(fz + ((size_t)b * n + e) * H, V(o->in[1 + e]) + (size_t)b * LD(o->in[1 + e]),
                                       H * sizeof(float));
                if (w->freeze != RF_FREEZE_USE) fz = NULL;
            }
#pragma omp parallel for schedule(static) if (B * n * H > 65536)
            for (int b = 0; b < B; b++) {
                const float *gl = V(in) + (size_t)b * LD(in);
                float *a = A + (size_t)b * n, mx = gl[0], s = 0;
                for (int e = 1; e < n; e++) mx = gl[e] > mx ? gl[e] : mx;
                for (int e = 0; e < n; e++) s += a[e] = expf(gl[e] - mx);
                for (int e = 0; e < n; e++) a[e] /= s;
                float *d = V(out) + (size_t)b * LD(out);
                memset(d, 0, H * sizeof(float));
                for (int e = 0; e < n; e++) {
                    const float *x = fz && o->nograd[1 + e] ? fz + ((size_t)b * n + e) * H
                                                            : V(o->in[1 + e]) + (size_t)b * LD(o->in[1 + e]);
                    float ae = a[e];
#pragma omp simd
                    for (int j = 0; j < H; j++) d[j] += ae * x[j];
                }
            }
            break;
        }
        case OP_ATTN2: {
            int H = out.w, S = 6 * H + 2;
            float *I = w->val[o->scratch];
            rf_view u[2] = {o->in[0], o->in[1]};
            const float *Wm[3] = {P + o->W, P + o->Wk, P + o->Wv};
            wcat_put(w->wcat, Wm, H);
            for (int k = 0; k < 2; k++) /* Q K V of input k: I's columns 3kH .. 3kH + 3H */
                rf_gemm_prec(w->bf16, 0, 0, B, 3 * H, H, 1.0f, V(u[k]), LD(u[k]), w->wcat, 3 * H, 0.0f, I + 3 * k * H, S);
            float sc = 1.0f / sqrtf((float)H);
#pragma omp parallel for schedule(static) if (rf_omp_worth((long)B * H, 65536))
            for (int b = 0; b < B; b++) {
                float *r = I + (size_t)b * S, s[2];
                for (int k = 0; k < 2; k++) {
                    float d = 0;
                    for (int j = 0; j < H; j++) d += r[3 * k * H + j] * r[(3 * k + 1) * H + j];
                    s[k] = d * sc;
                }
                float mx = s[0] > s[1] ? s[0] : s[1];
                float e0 = expf(s[0] - mx), e1 = expf(s[1] - mx);
                r[6 * H] = e0 / (e0 + e1);
                r[6 * H + 1] = e1 / (e0 + e1);
                float *d = V(out) + (size_t)b * LD(out);
                for (int j = 0; j < H; j++) d[j] = r[6 * H] * r[2 * H + j] + r[6 * H + 1] * r[5 * H + j];
            }
            break;
        }
        }
    }
}

/* ---- backward --------------------------------------------------------------------------------- */

/* ga[e] = sum_j go[j] * xs[e][j], each sum over j in order with each product rounded (C11: no
 * contraction), as one sum at a time would be, but four experts' side by side so that their add
 * chains overlap: one at a time, a 256-long sum waits on its adds (PLE's mixes' backward 3.2-3.6
 * -> 2.6-2.9 ms a step, docs/performance.md). Past the last expert, go itself (the sum unused). */
static inline __attribute__((always_inline)) void mix_dots(const float *go, const float *const *xs, int n, int H,
                                                           float *ga)
{
    for (int q = 0; q < n; q += 4) {
        const float *x0 = xs[q], *x1 = q + 1 < n ? xs[q + 1] : go, *x2 = q + 2 < n ? xs[q + 2] : go,
                    *x3 = q + 3 < n ? xs[q + 3] : go;
        float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        for (int j = 0; j < H; j++) {
            float gj = go[j];
            s0 += gj * x0[j];
            s1 += gj * x1[j];
            s2 += gj * x2[j];
            s3 += gj * x3[j];
        }
        const float sq[4] = {s0, s1, s2, s3};
        for (int e = q; e < n && e < q + 4; e++) ga[e] = sq[e - q];
    }
}

/* Row b of a mix's expert e whose input is a ReLU's / PReLU's output (o->mixact): the gradient
 * at that output (the mix's part, ae go, added to what the later readers wrote when the mix
 * accumulates) goes straight through the activation's backward into the gradient at its input,
 * as rf_act_bwd computes it; the slopes' terms (PReLU) are added in row order to sl (H). */
static inline __attribute__((always_inline)) void mix_act_row(const rf_graph *g, const rf_graph_ws *w, const float *P,
                                                              const op *o, int e, int b, float ae, const float *go,
                                                              float *sl)
{
    const op *ac = &g->ops[o->mixact[1 + e] - 1];
    rf_view v = o->in[1 + e], zv = ac->in[0];
    int H = v.w, off = v.c - ac->out.c; /* the expert's columns in the act's input */
    const float *d = GR(v) + (size_t)b * LD(v), *z = V(zv) + (size_t)b * LD(zv) + off;
    const float *al = ac->alpha != NONE ? P + ac->alpha + off : NULL;
    float *dz = GR(zv) + (size_t)b * LD(zv) + off;
    int acc = o->acc[1 + e];
    for (int j = 0; j < H; j++) {
        float gv = acc ? d[j] + ae * go[j] : ae * go[j], u = z[j];
        dz[j] = u > 0 ? gv : (al ? al[j] * gv : 0.0f);
        if (sl) sl[j] += u > 0 ? 0.0f : gv * u;
    }
}

/* An attention op's backward through its softmax and its weighted sum, row by row: from the
 * gradient at its output (go, ldo apart) and its internals I (per row: Q_q K_q V_q Q_p K_p V_p and
 * the two weights; S = 6 H + 2 apart) the gradients of Q, K and V into gI. Compiled per CPU in a
 * portable build (RF_HOT_CLONES). */
RF_HOT_CLONES static void attn_rows_bwd(const float *I, float *gI, const float *GO, int ldo, int B, int H)
{
    int S = 6 * H + 2;
    float sc = 1.0f / sqrtf((float)H);
#pragma omp parallel for schedule(static) if (rf_omp_worth((long)B * H, 65536))
    for (int b = 0; b < B; b++) {
        const float *r = I + (size_t)b * S, *go = GO + (size_t)b * ldo;
        float *gr = gI + (size_t)b * S;
        float wv[2] = {r[6 * H], r[6 * H + 1]}, gw[2];
        for (int k = 0; k < 2; k++) {
            float s = 0;
            for (int j = 0; j < H; j++) {
                s += go[j] * r[(3 * k + 2) * H + j];
                gr[(3 * k + 2) * H + j] = wv[k] * go[j];
            }
            gw[k] = s;
        }
        float dot = wv[0] * gw[0] + wv[1] * gw[1];
        for (int k = 0; k < 2; k++) {
            float gs = wv[k] * (gw[k] - dot) * sc;
            for (int j = 0; j < H; j++) {
                gr[3 * k * H + j] = gs * r[(3 * k + 1) * H + j];
                gr[(3 * k + 1) * H + j] = gs * r[3 * k * H + j];
            }
        }
    }
}

/* A mix's backward (op i, o): the gradients at its weights and its experts' outputs (or through
 * their activations, mixact), rows on the threads. Compiled per CPU in a portable build
 * (RF_HOT_CLONES): its sums in baseline x86-64 code took ~3 % of a MoE step more than the native
 * build's. */
RF_HOT_CLONES static void mix_bwd(const rf_graph *g, rf_graph_ws *w, const float *P, float *Gp, int i, int B)
{
    const op *o = &g->ops[i];
    rf_view in = o->in[0], out = o->out;
    int n = o->nin - 1, H = out.w, slopes = 0;
    const float *A = w->val[o->scratch];
    const float *fz = w->freeze == RF_FREEZE_USE ? w->frozen[i] : NULL;
    for (int e = 0; e < n; e++) slopes |= o->mixact[1 + e] && g->ops[o->mixact[1 + e] - 1].alpha != NONE;
    int nth = rf_omp_worth((long)B * n * H, 65536) ? omp_get_max_threads() : 1;
    if (nth > w->slope_nt) nth = w->slope_nt;
    if (slopes) memset(w->slope, 0, (size_t)nth * n * H * sizeof(float));
#pragma omp parallel num_threads(nth) if (nth > 1)
    {
        float *sl = slopes ? w->slope + (size_t)omp_get_thread_num() * n * H : NULL; /* this thread's */
#pragma omp for schedule(static)
        for (int b = 0; b < B; b++) {
            const float *a = A + (size_t)b * n, *go = GR(out) + (size_t)b * LD(out), *xs[MAX_IN];
            float ga[MAX_IN], dot = 0;
            for (int e = 0; e < n; e++)
                xs[e] = fz && o->nograd[1 + e] ? fz + ((size_t)b * n + e) * H
                                               : V(o->in[1 + e]) + (size_t)b * LD(o->in[1 + e]);
            mix_dots(go, xs, n, H, ga);
            for (int e = 0; e < n; e++) dot += a[e] * ga[e];
            if (!o->nograd[0]) {
                float *gg = GR(in) + (size_t)b * LD(in);
                for (int e = 0; e < n; e++) {
                    float v = a[e] * (ga[e] - dot);
                    gg[e] = o->acc[0] ? gg[e] + v : v;
                }
            }
            for (int e = 0; e < n; e++) {
                if (o->nograd[1 + e]) continue;
                float *d = GR(o->in[1 + e]) + (size_t)b * LD(o->in[1 + e]), ae = a[e];
                if (o->mixact[1 + e]) {
                    mix_act_row(g, w, P, o, e, b, ae, go, sl ? sl + (size_t)e * H : NULL);
                    continue;
                }
                if (o->acc[1 + e])
                    for (int j = 0; j < H; j++) d[j] += ae * go[j];
                else
                    for (int j = 0; j < H; j++) d[j] = ae * go[j];
            }
        }
    }
    for (int t = 0; t < nth && slopes; t++) /* the threads' slope sums, in thread order */
        for (int e = 0; e < n; e++) {
            const op *ac = o->mixact[1 + e] ? &g->ops[o->mixact[1 + e] - 1] : NULL;
            if (!ac || ac->alpha == NONE) continue;
            float *dal = Gp + ac->alpha + (o->in[1 + e].c - ac->out.c);
            const float *st = w->slope + ((size_t)t * n + e) * H;
            for (int j = 0; j < H; j++) dal[j] += st[j];
        }
}

void rf_graph_backward(const rf_graph *g, rf_graph_ws *w, const float *P, float *Gp, int B)
{
    const int fuse_act = !w->bf16; /* actin / inlinear pairs: in fp32 the linear does the act's backward */
    for (int t = 0; t < g->nt; t++)
        if (g->zero_first[t] && t != g->out_t) {
#pragma omp parallel for schedule(static) if (rf_omp_worth((long)B * g->width[t], 65536))
            for (int b = 0; b < B; b++) memset(w->grad[t] + (size_t)b * g->width[t], 0, g->width[t] * sizeof(float));
        }
    for (int i = g->nops - 1; i >= 0; i--) {
        const op *o = &g->ops[i];
        rf_view in = o->in[0], out = o->out;
        switch (o->k) {
        case OP_COLS:
            if (o->nograd[0]) break;
#pragma omp parallel for schedule(static) if (rf_omp_worth((long)B * out.w, 65536))
            for (int b = 0; b < B; b++) {
                float *d = GR(in) + (size_t)b * LD(in);
                const float *s = GR(out) + (size_t)b * LD(out);
                for (int r = 0; r < o->nrun; r++) { /* runs in order: a repeated column sums as before */
                    float *dr = d + o->idx[o->run[r]];
                    const float *sr = s + o->run[r];
                    for (int j = 0; j < o->run[r + 1] - o->run[r]; j++) dr[j] += sr[j];
                }
            }
            break;
        case OP_LINEAR:
        case OP_GLINEAR: {
            int G = o->G, iw = in.w / G, ow = out.w / G;
            for (int j = 0; j < G; j++) {
                rf_gemm_prec_tn(w->bf16, &w->kp, iw, ow, B, 1.0f, V(in) + j * iw, LD(in), NULL, GR(out) + j * ow,
                                LD(out), NULL, 1.0f, Gp + o->W + (size_t)j * iw * ow, ow);
                if (o->actin && fuse_act) { /* dZ of the activation before, straight from the product */
                    const op *a = &g->ops[o->actin - 1];
                    rf_view z = a->in[0];
                    rf_gemm_act_bwd(1, B, iw, ow, GR(out) + j * ow, LD(out), P + o->W + (size_t)j * iw * ow, ow,
                                    GR(z) + j * iw, LD(z), V(z) + j * iw,
                                    a->alpha != NONE ? P + a->alpha + j * iw : NULL,
                                    a->alpha != NONE ? Gp + a->alpha + j * iw : NULL);
                } else if (o->addin) { /* the add before: into its inputs' gradients, in its order */
                    const op *ad = &g->ops[o->addin - 1];
                    for (int k = 0; k < 2; k++)
                        if (!ad->nograd[k])
                            rf_gemm_prec(w->bf16, 0, 1, B, iw, ow, 1.0f, GR(out) + j * ow, LD(out),
                                         P + o->W + (size_t)j * iw * ow, ow, ad->acc[k] ? 1.0f : 0.0f,
                                         GR(ad->in[k]) + j * iw, LD(ad->in[k]));
                } else if (!o->nograd[0])
                    rf_gemm_prec(w->bf16, 0, 1, B, iw, ow, 1.0f, GR(out) + j * ow, LD(out), P + o->W + (size_t)j * iw * ow, ow,
                            o->acc[0] ? 1.0f : 0.0f, GR(in) + j * iw, LD(in));
            }
            if (o->b != NONE) rf_bias_bwd(GR(out), B, out.w, LD(out), Gp + o->b);
            break;
        }
        case OP_ACT: {
            if ((o->inlinear && fuse_act) || o->inmix) break; /* done in its consumer's GEMM (actin) or mix (mixact) */
            if (o->act < 0) {
#pragma omp parallel for schedule(static) if (rf_omp_worth((long)B * out.w, 65536))
                for (int b = 0; b < B; b++)
                    memcpy(GR(in) + (size_t)b * LD(in), GR(out) + (size_t)b * LD(out), out.w * sizeof(float));
                break;
            }
            const float *al = o->alpha != NONE ? P + o->alpha : NULL;
            float *dal = o->alpha != NONE ? Gp + o->alpha : NULL;
            if (LD(in) == LD(out)) { /* one row stride: the vectorised, row-parallel kernel */
                rf_act_bwd(V(in), GR(out), GR(in), B, out.w, LD(in), al, dal);
                break;
            }
            for (int b = 0; b < B; b++) { /* the same, with two strides */
                const float *z = V(in) + (size_t)b * LD(in), *go = GR(out) + (size_t)b * LD(out);
                float *gi = GR(in) + (size_t)b * LD(in);
                for (int j = 0; j < out.w; j++) {
                    float v = z[j], gg = go[j];
                    if (dal) dal[j] += v > 0 ? 0.0f : gg * v;
                    gi[j] = v > 0 ? gg : (al ? al[j] * gg : 0.0f);
                }
            }
            break;
        }
        case OP_BN: {
            const float *mean = w->val[o->scratch], *rstd = mean + in.w;
            if (w->sync && w->sync->fn)
                rf_bn_sync_bwd(w->sync, V(in), GR(out), GR(in), B, in.w, in.w, P + o->gamma, mean, rstd,
                               Gp + o->gamma, Gp + o->beta);
            else
                rf_bn_bwd(V(in), GR(out), GR(in), B, in.w, in.w, P + o->gamma, mean, rstd, Gp + o->gamma,
                          Gp + o->beta);
            break;
        }
        case OP_ADD:
            for (int k = 0; k < 2 && !o->inlinear; k++) { /* (inlinear: done in its consumer's GEMM, addin) */
                rf_view a = o->in[k];
                if (o->nograd[k]) continue;
#pragma omp parallel for schedule(static) if (rf_omp_worth((long)B * out.w, 65536))
                for (int b = 0; b < B; b++) {
                    const float *s = GR(out) + (size_t)b * LD(out);
                    float *d = GR(a) + (size_t)b * LD(a);
                    if (o->acc[k])
                        for (int j = 0; j < out.w; j++) d[j] += s[j];
                    else
                        memcpy(d, s, out.w * sizeof(float));
                }
            }
            break;
        case OP_MIX:
            mix_bwd(g, w, P, Gp, i, B);
            break;
        case OP_ATTN2: {
            int H = out.w, S = 6 * H + 2;
            const float *I = w->val[o->scratch];
            float *gI = w->grad[o->scratch]; /* gradients of Q_q K_q V_q Q_p K_p V_p */
            attn_rows_bwd(I, gI, GR(out), LD(out), B, H);
            rf_view u[2] = {o->in[0], o->in[1]};
            size_t Wm[3] = {o->W, o->Wk, o->Wv};
            float *const dW[3] = {Gp + o->W, Gp + o->Wk, Gp + o->Wv};
            wcat_put(w->wcat, (const float *const *)dW, H); /* the three gradients summed into side by side */
            for (int k = 0; k < 2; k++) {
                rf_gemm_prec_tn(w->bf16, &w->kp, H, 3 * H, B, 1.0f, V(u[k]), LD(u[k]), NULL, gI + 3 * k * H, S, NULL,
                                1.0f, w->wcat, 3 * H);
                for (int m = 0; m < 3 && !o->nograd[k]; m++) /* K = H each, summed in this order */
                    rf_gemm_prec(w->bf16, 0, 1, B, H, H, 1.0f, gI + (3 * k + m) * H, S, P + Wm[m], H,
                                 (m == 0 && !o->acc[k]) ? 0.0f : 1.0f, GR(u[k]), LD(u[k]));
            }
            wcat_take(w->wcat, dW, H);
            break;
        }
        }
    }
}

/* ---- which output columns reach which parameters ------------------------------------------- */

int rf_graph_reach(const rf_graph *g, const uint32_t *out_mask, uint32_t *pmask, uint32_t *xmask)
{
    size_t *base = malloc((size_t)g->nt * sizeof *base), tot = 0;
    if (!base) return -1;
    for (int t = 0; t < g->nt; t++) base[t] = tot, tot += (size_t)g->width[t];
    uint32_t *tm = calloc(tot ? tot : 1, sizeof *tm);
    if (!tm) {
        free(base);
        return -1;
    }
    memset(pmask, 0, g->n_params * sizeof *pmask);
    memcpy(tm + base[g->out_t], out_mask, (size_t)g->width[g->out_t] * sizeof *tm);
#define TM(v, j) tm[base[(v).t] + (size_t)(v).c + (size_t)(j)]
    for (int i = g->nops - 1; i >= 0; i--) {
        const op *o = &g->ops[i];
        rf_view ov = o->out;
        uint32_t all = 0;
        for (int j = 0; j < ov.w; j++) all |= TM(ov, j);
        switch (o->k) {
        case OP_COLS:
            if (!o->nograd[0])
                for (int j = 0; j < ov.w; j++) TM(o->in[0], o->idx[j]) |= TM(ov, j);
            break;
        case OP_LINEAR:
        case OP_GLINEAR: {
            int G = o->G, iw = o->in[0].w / G, ow = ov.w / G;
            for (int gi = 0; gi < G; gi++) {
                uint32_t gm = 0;
                for (int j = 0; j < ow; j++) {
                    uint32_t mj = TM(ov, gi * ow + j);
                    gm |= mj;
                    for (int r = 0; r < iw; r++) pmask[o->W + (size_t)gi * iw * ow + (size_t)r * ow + j] |= mj;
                    if (o->b != NONE) pmask[o->b + (size_t)gi * ow + j] |= mj;
                }
                if (!o->nograd[0])
                    for (int r = 0; r < iw; r++) TM(o->in[0], gi * iw + r) |= gm;
            }
            break;
        }
        case OP_ACT:
        case OP_BN:
        case OP_ADD:
            for (int j = 0; j < ov.w; j++) {
                uint32_t mj = TM(ov, j);
                for (int a = 0; a < o->nin; a++)
                    if (!o->nograd[a]) TM(o->in[a], j) |= mj;
                if (o->alpha != NONE) pmask[o->alpha + j] |= mj;
                if (o->gamma != NONE) pmask[o->gamma + j] |= mj, pmask[o->beta + j] |= mj;
            }
            break;
        case OP_MIX: /* the gate sees every output column; expert i column j feeds column j */
            for (int j = 0; j < o->in[0].w; j++) TM(o->in[0], j) |= all;
            for (int a = 1; a < o->nin; a++)
                if (!o->nograd[a])
                    for (int j = 0; j < ov.w; j++) TM(o->in[a], j) |= TM(ov, j);
            break;
        case OP_ATTN2: { /* attention mixes every column of both items */
            int H = ov.w;
            for (int a = 0; a < 2; a++)
                if (!o->nograd[a])
                    for (int j = 0; j < H; j++) TM(o->in[a], j) |= all;
            for (size_t e = 0; e < (size_t)H * H; e++)
                pmask[o->W + e] |= all, pmask[o->Wk + e] |= all, pmask[o->Wv + e] |= all;
            break;
        }
        }
    }
#undef TM
    memcpy(xmask, tm, (size_t)g->width[0] * sizeof *xmask);
    free(tm);
    free(base);
    return 0;
}

int rf_graph_param_blocks(const rf_graph *g, rf_graph_block *out, int max)
{
    int n = 0;
#define BLOCK(i, nm, o_, r_, c_)                                                                       \
    do {                                                                                             \
        if (out && n < max) {                                                                        \
            snprintf(out[n].name, sizeof out[n].name, "op%d.%.24s", (i), (nm));                           \
            out[n].off = (o_), out[n].rows = (size_t)(r_), out[n].cols = (size_t)(c_);               \
        }                                                                                            \
        n++;                                                                                         \
    } while (0)
    static const char *const kind[] = {"cols", "linear", "glinear", "act", "bn", "add", "mix", "attn2"};
    for (int i = 0; i < g->nops; i++) {
        const op *o = &g->ops[i];
        char nm[40];
        int w = o->out.w;
        switch (o->k) {
        case OP_LINEAR:
        case OP_GLINEAR: {
            int G = o->G, iw = o->in[0].w / G, ow = w / G;
            for (int gi = 0; gi < G; gi++) {
                if (G > 1) snprintf(nm, sizeof nm, "%s%d.W", kind[o->k], gi);
                else snprintf(nm, sizeof nm, "%s.W", kind[o->k]);
                BLOCK(i, nm, o->W + (size_t)gi * iw * ow, iw, ow);
            }
            if (o->b != NONE) BLOCK(i, G > 1 ? "glinear.b" : "linear.b", o->b, 1, w);
            break;
        }
        case OP_ACT:
            if (o->alpha != NONE) BLOCK(i, "prelu", o->alpha, 1, w);
            break;
        case OP_BN:
            BLOCK(i, "bn_gamma", o->gamma, 1, w);
            BLOCK(i, "bn_beta", o->beta, 1, w);
            break;
        case OP_ATTN2:
            BLOCK(i, "attn.Wq", o->W, w, w);
            BLOCK(i, "attn.Wk", o->Wk, w, w);
            BLOCK(i, "attn.Wv", o->Wv, w, w);
            break;
        default:
            break;
        }
    }
#undef BLOCK
    return n;
}
