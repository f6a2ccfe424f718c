/* twin.c - the twin-tower model (include/resflow/twin.h; paper §5.1, App. A.1, Table 13).
 *
 * The towers are an op graph (graph.h), one per side, the K task towers of a side side by side:
 *
 *   x_s     = the columns of x of side s (user: every field and dense feature not listed in
 *             model.item_fields / model.item_dense; item: those)
 *   layer l = act(x @ W + b) (+ BN) for all K towers (layer 0: one linear of width K*H_0 on the
 *             shared x_s; deeper: K independent blocks), then, with bit l of model.res_layers,
 *             the ResFlow link O_k += O_parent(k) (parents first, so the flow accumulates)
 *   top     = K independent linears H_{L-1} -> d + 1: the vector (d columns) and the bias
 *   before  = with model.twin_link before/both: u_k += u_parent(k), v_k += v_parent(k)
 *
 * Parameters are registered user side first, then item side, layer by layer in that order
 * (tests/ref/twin_ref.py builds the same slab). The graph's output per row is
 * [u (K*d) | v (K*d) | ub (K) | vb (K)]; the logit z_k = <u_k, v_k> + ub_k + vb_k is computed
 * here and the logit link after the dot product (twin_link after/both) by forward.c's
 * logit-link code, shared with the tower models (model_impl.h logit_link_on).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/model_impl.h"
#include "nn/twin_impl.h"
#include "resflow/twin.h"

int rf_twin_item_field(const rf_model_spec *s, int f)
{
    const rf_model_cfg *mc = &s->model;
    if (f < 0 || f >= s->F) return 0;
    for (int i = 0; i < mc->n_item_fields && i < RF_MAX_FIELDS; i++)
        if (!strcmp(mc->item_fields[i], s->fields[f].name)) return 1;
    return 0;
}

int rf_twin_item_dense(const rf_model_spec *s, int j)
{
    if (j < 0 || j >= s->D || j >= RF_MAX_TWIN_DENSE_IDX) return 0;
    return (int)(s->model.item_dense_mask[j / 64] >> (j % 64) & 1u);
}

typedef struct {
    rf_graph *g;
    const rf_model_spec *s;
    const int *parent, *order;
} tctx;

/* Block k of `to` = block k of `from` (+ block parent(k) of `to` when linked), parents first. */
static int link_blocks(tctx *c, rf_view from, int fw, int fc, rf_view to, int w, int linked)
{
    for (int i = 0; i < c->s->K; i++) {
        int k = c->order[i], p = c->parent[k];
        rf_view src = rf_sub(from, k * fw + fc, w), dst = rf_sub(to, k * w, w);
        if (linked && p >= 0 ? rf_g_add(c->g, src, rf_sub(to, p * w, w), dst) : rf_g_act(c->g, src, dst, -1, 0))
            return -1;
    }
    return 0;
}

/* The K towers of one side on its input columns idx (n of them); vectors and biases into out. */
static int side(tctx *c, rf_view x, const int *idx, int n, int s, int out_t)
{
    const rf_model_cfg *mc = &c->s->model;
    rf_graph *g = c->g;
    int K = c->s->K, d = mc->twin_dim;
    rf_view cur = rf_graph_whole(g, rf_graph_tensor(g, n));
    if (rf_g_cols(g, x, idx, cur)) return -1;
    for (int l = 0; l < mc->n_hidden; l++) {
        int H = mc->hidden[l];
        rf_view z = rf_graph_whole(g, rf_graph_tensor(g, K * H));
        rf_view a = rf_graph_whole(g, rf_graph_tensor(g, K * H));
        if (rf_g_glinear(g, cur, z, l == 0 ? 1 : K, 1) || rf_g_act(g, z, a, mc->act, mc->prelu_init)) return -1;
        if (mc->bn == RF_BN_BATCH) {
            rf_view y = rf_graph_whole(g, rf_graph_tensor(g, K * H));
            if (rf_g_bn(g, a, y, mc->bn_momentum, mc->bn_eps)) return -1;
            a = y;
        }
        if (mc->res_layers >> l & 1u) { /* ResFlow link behind hidden layer l */
            rf_view o = rf_graph_whole(g, rf_graph_tensor(g, K * H));
            if (link_blocks(c, a, H, 0, o, H, 1)) return -1;
            a = o;
        }
        cur = a;
    }
    rf_view top = rf_graph_whole(g, rf_graph_tensor(g, K * (d + 1)));
    if (rf_g_glinear(g, cur, top, K, 1)) return -1;
    rf_view out = rf_graph_whole(g, out_t);
    rf_view vec = rf_sub(out, s * K * d, K * d);
    if (mc->twin_link & RF_TWIN_BEFORE) { /* links on the vectors, then into the output */
        rf_view vl = rf_graph_whole(g, rf_graph_tensor(g, K * d));
        if (link_blocks(c, top, d + 1, 0, vl, d, 1) || link_blocks(c, vl, d, 0, vec, d, 0)) return -1;
    } else if (link_blocks(c, top, d + 1, 0, vec, d, 0)) {
        return -1;
    }
    return link_blocks(c, top, d + 1, d, rf_sub(out, 2 * K * d + s * K, K), 1, 0);
}

rf_graph *rf_twin_build(const rf_model_spec *s, int F, int E, int In, const int *parent, const int *order,
                        int *out_t, char *why, size_t why_n)
{
    const rf_model_cfg *mc = &s->model;
    int D = In - F * E;
    why[0] = '\0';
    if (mc->twin_dim < 1) return snprintf(why, why_n, "twin: model.twin_dim must be >= 1"), NULL;
    if (mc->dense_mode != RF_DENSE_CONCAT && s->D > 0)
        return snprintf(why, why_n, "twin: model.dense_mode must be concat (a projection would mix the sides)"), NULL;
    for (int i = 0; i < mc->n_item_fields && i < RF_MAX_FIELDS; i++) {
        int f = 0;
        while (f < F && strcmp(s->fields[f].name, mc->item_fields[i])) f++;
        if (f == F) {
            int n = snprintf(why, why_n, "twin: model.item_fields: no categorical field named \"%s\" (fields:",
                             mc->item_fields[i]);
            for (int j = 0; j < F && n > 0 && (size_t)n < why_n; j++)
                n += snprintf(why + n, why_n - (size_t)n, " %s", s->fields[j].name);
            if (n > 0 && (size_t)n < why_n) snprintf(why + n, why_n - (size_t)n, ")");
            return NULL;
        }
    }
    if (mc->item_dense_bad > 0 && mc->item_dense_bad <= mc->n_item_dense)
        return snprintf(why, why_n, "twin: model.item_dense: no dense feature named \"%s\"",
                        mc->item_dense[mc->item_dense_bad - 1]),
               NULL;
    int *idx[2] = {malloc((size_t)(In ? In : 1) * sizeof(int)), malloc((size_t)(In ? In : 1) * sizeof(int))};
    int n[2] = {0, 0};
    rf_graph *g = NULL;
    if (!idx[0] || !idx[1]) {
        snprintf(why, why_n, "out of memory");
        goto out;
    }
    for (int f = 0; f < F; f++) {
        int sd = rf_twin_item_field(s, f);
        for (int j = 0; j < E; j++) idx[sd][n[sd]++] = f * E + j;
    }
    for (int j = 0; j < D; j++) {
        int sd = rf_twin_item_dense(s, j);
        idx[sd][n[sd]++] = F * E + j;
    }
    if (!n[0] || !n[1]) {
        snprintf(why, why_n, "twin: the %s tower has no input (list the item side's fields in model.item_fields, "
                 "and leave at least one field or dense feature on the user side)", n[0] ? "item" : "user");
        goto out;
    }
    if (!(g = rf_graph_new(In))) {
        snprintf(why, why_n, "out of memory");
        goto out;
    }
    int K = s->K, d = mc->twin_dim;
    tctx c = {g, s, parent, order};
    *out_t = rf_graph_tensor(g, 2 * K * (d + 1));
    rf_view x = rf_graph_whole(g, 0);
    if (side(&c, x, idx[0], n[0], 0, *out_t) || side(&c, x, idx[1], n[1], 1, *out_t) ||
        rf_graph_finalize(g, *out_t)) {
        snprintf(why, why_n, "twin: cannot build the towers (shape error or out of memory)");
        rf_graph_free(g);
        g = NULL;
    }
out:
    free(idx[0]);
    free(idx[1]);
    return g;
}

void rf_twin_top_forward(const rf_model *m, rf_workspace *ws, int B)
{
    int K = m->K, d = m->spec.model.twin_dim, w = 2 * K * (d + 1);
    const float *o = rf_graph_val(ws->gws, m->graph_out);
    for (int b = 0; b < B; b++) {
        const float *r = o + (size_t)b * w, *u = r, *v = r + K * d, *ub = r + 2 * K * d, *vb = ub + K;
        for (int k = 0; k < K; k++) {
            float z = ub[k] + vb[k];
            for (int j = 0; j < d; j++) z += u[k * d + j] * v[k * d + j];
            ws->S[(size_t)b * K + k] = z;
        }
    }
}

void rf_twin_top_backward(const rf_model *m, rf_workspace *ws, int B, float *grads)
{
    int K = m->K, d = m->spec.model.twin_dim, w = 2 * K * (d + 1);
    const float *o = rf_graph_val(ws->gws, m->graph_out);
    float *go = rf_graph_grad(ws->gws, m->graph_out);
    for (int b = 0; b < B; b++) {
        const float *r = o + (size_t)b * w, *u = r, *v = r + K * d;
        float *gr = go + (size_t)b * w, *gu = gr, *gv = gr + K * d, *gub = gr + 2 * K * d, *gvb = gub + K;
        for (int k = 0; k < K; k++) {
            float ds = ws->dS[(size_t)b * K + k];
            for (int j = 0; j < d; j++) {
                gu[k * d + j] = ds * v[k * d + j];
                gv[k * d + j] = ds * u[k * d + j];
            }
            gub[k] = gvb[k] = ds;
        }
    }
    rf_graph_backward(m->graph, ws->gws, m->params, grads, B);
}

/* ---- public (twin.h) ------------------------------------------------------------------------ */

int rf_model_is_twin(const rf_model *m) { return m && m->spec.model.type == RF_MODEL_TWIN; }
int rf_twin_dim(const rf_model *m) { return rf_model_is_twin(m) ? m->spec.model.twin_dim : 0; }

int rf_twin_field_side(const rf_model *m, int f)
{
    if (!rf_model_is_twin(m) || f < 0 || f >= m->F) return -1;
    return rf_twin_item_field(&m->spec, f);
}

int rf_twin_dense_side(const rf_model *m, int j)
{
    if (!rf_model_is_twin(m) || j < 0 || j >= m->D) return -1;
    return rf_twin_item_dense(&m->spec, j);
}

/* Side s's vectors and biases of b's rows from an eval-mode forward. */
static rf_status vectors(const rf_model *m, rf_workspace *ws, const rf_batch *b, int s, float *vec, float *bias,
                        rf_error *err)
{
    if (!rf_model_is_twin(m))
        return rf_errorf(err, RF_EUSAGE, "model.type %s is not a twin-tower model", rf_model_type_name(m->spec.model.type));
    rf_status st = rf_model_forward(m, ws, b, 0, err);
    if (st) return st;
    int K = m->K, d = m->spec.model.twin_dim, w = 2 * K * (d + 1);
    const float *o = rf_graph_val(ws->gws, m->graph_out);
    for (int i = 0; i < b->B; i++) {
        const float *r = o + (size_t)i * w;
        memcpy(vec + (size_t)i * K * d, r + s * K * d, (size_t)K * d * sizeof(float));
        if (bias) memcpy(bias + (size_t)i * K, r + 2 * K * d + s * K, (size_t)K * sizeof(float));
    }
    return RF_OK;
}

rf_status rf_twin_item_vectors(const rf_model *m, rf_workspace *ws, const rf_batch *b, float *v, float *vb,
                               rf_error *err)
{
    return vectors(m, ws, b, 1, v, vb, err);
}

rf_status rf_twin_user_vectors(const rf_model *m, rf_workspace *ws, const rf_batch *b, float *u, float *ub,
                               rf_error *err)
{
    return vectors(m, ws, b, 0, u, ub, err);
}

void rf_twin_logits(const rf_model *m, const float *dot, const float *ub, const float *vb, float *z)
{
    int K = m->K;
    for (int k = 0; k < K; k++) z[k] = dot[k] + (ub ? ub[k] : 0.0f) + (vb ? vb[k] : 0.0f);
    if (!logit_link_on(m)) return;
    int m3 = m->spec.model.monotonic == RF_MONO_M3;
    for (int i = 0; i < K; i++) {
        int k = m->order[i], p = m->parent[k];
        if (p < 0) continue;
        if (m3 && z[k] > 0) z[k] = 0;
        z[k] += z[p];
    }
}
