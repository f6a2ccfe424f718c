/* graph_plan.c - the op graph's backward plan (graph.h), made once by rf_graph_finalize: which
 * use of a tensor's block sets its gradient and which accumulate, which tensors are zeroed
 * first, and the backward passes that run inside a neighbour's instead of on their own (an
 * activation's in its consumer's GEMM or mix, an add's in its consumer's GEMM). */
#include <stdlib.h>

#include "nn/graph_impl.h"

typedef struct {
    int c, w;
} block;

/* The tensor a linear op reads whole as its only reader, setting its gradient (not the graph's
 * output, not zeroed first), or -1: the pass that wrote it may then run in the op's backward. */
static int sole_input(const rf_graph *g, const op *o)
{
    if ((o->k != OP_LINEAR && o->k != OP_GLINEAR) || o->nograd[0] || o->acc[0]) return -1;
    int t = o->in[0].t, users = 0;
    for (int q = 0; q < g->nops; q++)
        for (int j = 0; j < g->ops[q].nin; j++) users += g->ops[q].in[j].t == t;
    if (users != 1 || t == g->out_t || g->zero_first[t] || o->in[0].c != 0 || o->in[0].w != g->width[t]) return -1;
    return t;
}

int rf_graph_finalize(rf_graph *g, int out_t)
{
    if (g->err) return -1;
    g->out_t = out_t;
    free(g->zero_first);
    g->zero_first = calloc((size_t)g->nt, sizeof *g->zero_first);
    block **bl = calloc((size_t)g->nt, sizeof *bl);
    int *nbl = calloc((size_t)g->nt, sizeof *nbl);
    if (!g->zero_first || !bl || !nbl) {
        free(bl);
        free(nbl);
        return -1;
    }
    int rc = 0;
    /* visit uses in backward order: the first use of a block sets its gradient */
    for (int i = g->nops - 1; i >= 0 && !rc; i--) {
        op *o = &g->ops[i];
        for (int j = 0; j < o->nin; j++) {
            if (o->nograd[j]) continue;
            rf_view v = o->in[j];
            if (v.t == out_t || o->k == OP_COLS) { /* caller-set output; scatter: zero first */
                g->zero_first[v.t] = v.t != out_t;
                o->acc[j] = 1;
                continue;
            }
            int same = 0, overlap = 0;
            for (int b = 0; b < nbl[v.t]; b++) {
                block k = bl[v.t][b];
                if (k.c == v.c && k.w == v.w) same = 1;
                else if (v.c < k.c + k.w && k.c < v.c + v.w) overlap = 1;
            }
            if (overlap) g->zero_first[v.t] = 1;
            if (same || overlap) {
                o->acc[j] = 1;
                continue;
            }
            block *nb = realloc(bl[v.t], (size_t)(nbl[v.t] + 1) * sizeof *nb);
            if (!nb) {
                rc = -1;
                break;
            }
            bl[v.t] = nb;
            bl[v.t][nbl[v.t]++] = (block){v.c, v.w};
            o->acc[j] = 0;
        }
    }
    /* tensors whose used blocks do not cover them (or tensor 0, whose gradient dx is read
     * whole) get zeroed first; then every use accumulates */
    for (int t = 0; t < g->nt && !rc; t++) {
        int cover = 0;
        for (int b = 0; b < nbl[t]; b++) cover += bl[t][b].w;
        if (t != out_t && nbl[t] && cover != g->width[t]) g->zero_first[t] = 1;
        if (t == 0 && cover != g->width[0]) g->zero_first[0] = 1;
    }
    for (int i = 0; i < g->nops; i++) {
        op *o = &g->ops[i];
        for (int j = 0; j < o->nin; j++)
            if (g->zero_first[o->in[j].t]) o->acc[j] = 1;
        /* act and bn kernels set their input gradient: they must be its only writer */
        if ((o->k == OP_ACT || o->k == OP_BN) && o->acc[0]) rc = -1;
    }
    for (int t = 0; t < g->nt; t++) free(bl[t]);
    free(bl);
    free(nbl);
    for (int i = 0; i < g->nops; i++) { /* the fusions below, none yet */
        op *o = &g->ops[i];
        o->actin = o->addin = o->inlinear = o->inmix = 0;
        for (int j = 0; j < MAX_IN; j++) o->mixact[j] = 0;
    }
    /* the pass that writes a linear op's input, when the op is its only reader (sole_input):
     * a ReLU's / PReLU's backward in the op's input-gradient GEMM (the gradient at the
     * activation's output is then never stored); or an add's (a STEM gate's x_k + x_s) just
     * before it: the GEMM adds its product into each of the add's inputs' gradients in turn, as
     * the add's backward would have right after it (the same bits), and the gradient at the sum
     * is never stored */
    for (int i = 0; i < g->nops && !rc; i++) {
        op *o = &g->ops[i], *ad = i > 0 ? &g->ops[i - 1] : NULL;
        int t = sole_input(g, o), a = -1;
        if (t < 0) continue;
        for (int q = 0; q < g->nops; q++)
            if (g->ops[q].out.t == t && g->ops[q].k == OP_ACT) a = q;
        op *ac = a >= 0 ? &g->ops[a] : NULL;
        if (ac && ac->act >= 0 && ac->out.c == 0 && ac->out.w == g->width[t] && !ac->acc[0] && !ac->nograd[0]) {
            o->actin = a + 1;
            ac->inlinear = 1;
        } else if (ad && ad->k == OP_ADD && ad->out.t == t && ad->out.c == 0 && ad->out.w == g->width[t]) {
            o->addin = i;
            ad->inlinear = 1;
        }
    }
    /* a ReLU / PReLU whose output only mixes read (as experts): its backward in the mix that
     * writes the output's gradient last (the first reader in forward order, taking every other
     * reader's part with its own), when that mix's views with gradient cover the output once */
    for (int a = 0; a < g->nops && !rc; a++) {
        op *ac = &g->ops[a];
        int t = ac->out.t, last = -1;
        if (ac->k != OP_ACT || ac->act < 0 || ac->inlinear || ac->acc[0] || ac->nograd[0] || t == out_t ||
            ac->out.c != 0 || ac->out.w != g->width[t])
            continue;
        int ok = 1;
        for (int q = 0; q < g->nops && ok; q++)
            for (int j = 0; j < g->ops[q].nin; j++) {
                if (g->ops[q].in[j].t != t) continue;
                if (g->ops[q].k != OP_MIX || j == 0) ok = 0;
                else if (!g->ops[q].nograd[j] && last < 0) last = q;
            }
        if (!ok || last < 0) continue;
        op *m = &g->ops[last];
        int cover = 0;
        for (int j = 1; j < m->nin && ok; j++) {
            rf_view v = m->in[j];
            if (v.t != t || m->nograd[j]) continue;
            cover += v.w;
            for (int k = 1; k < j; k++) {
                rf_view u = m->in[k];
                if (u.t == t && !m->nograd[k] && v.c < u.c + u.w && u.c < v.c + v.w) ok = 0;
            }
        }
        if (!ok || cover != g->width[t]) continue;
        for (int j = 1; j < m->nin; j++)
            if (m->in[j].t == t && !m->nograd[j]) m->mixact[j] = a + 1;
        ac->inmix = 1;
    }
    return rc;
}
