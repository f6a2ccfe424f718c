/* model.c - a model from its specification: ResFlow (residual links between corresponding
 * layers of task towers, KDD'24 eq. 3-4), NSE (independent towers on a shared embedding), ESMM
 * (product of probabilities along the task chain, SIGIR'18) and the op-graph zoo (zoo.c): the
 * task tree, the parameter slab and its views, the embedding tables, the seeded initialisation,
 * the parameter groups and the accessors. Layout and shapes are documented in
 * include/resflow/model.h; the passes are in forward.c and backward.c.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/bigmem.h"
#include "core/rng.h"
#include "nn/graph.h"
#include "nn/model_impl.h"
#include "nn/twin_impl.h"

static void xavier(rf_rng *r, float *W, size_t n, int fan_in, int fan_out)
{
    double lim = sqrt(6.0 / (fan_in + fan_out));
    for (size_t i = 0; i < n; i++) W[i] = (float)((2 * rf_rng_uniform(r) - 1) * lim);
}

int rf_spec_task_index(const rf_model_spec *s, const char *name)
{
    for (int k = 0; k < s->K; k++)
        if (strcmp(s->tasks[k].name, name) == 0) return k;
    return -1;
}

static int zoo_groups_make(rf_model *m);

rf_status rf_model_create(const rf_model_spec *spec, rf_model **out, rf_error *err)
{
    *out = NULL;
    const rf_model_spec *cfg = spec; /* the spec's members are named as the config's */
    int F = spec->F, D = spec->D;
    const rf_field *fields = spec->fields;
    if (F < 0 || F > RF_MAX_FIELDS) return rf_errorf(err, RF_EUSAGE, "%d categorical fields (max %d)", F, RF_MAX_FIELDS);
    if (D < 0) return rf_errorf(err, RF_EUSAGE, "%d dense features", D);
    if (F == 0 && D == 0) return rf_errorf(err, RF_EUSAGE, "the model has no input features");
    const rf_model_cfg *mc = &cfg->model;
    if (cfg->K < 1 || cfg->K > RF_MAX_TASKS) return rf_errorf(err, RF_EUSAGE, "bad task count %d", cfg->K);
    if (mc->n_hidden < 1 || mc->n_hidden > RF_MAX_LAYERS)
        return rf_errorf(err, RF_EUSAGE, "model.hidden must have 1..%d layers", RF_MAX_LAYERS);
    rf_model *m = calloc(1, sizeof *m);
    if (!m) return rf_errorf(err, RF_ENOMEM, "out of memory");
    m->spec = *spec;
    m->K = cfg->K;
    m->F = F;
    m->D = D;
    m->E = mc->emb_dim;
    m->L = mc->n_hidden;
    for (int l = 0; l < m->L; l++) m->H[l] = mc->hidden[l];
    int zoo = !rf_zoo_is_tower(mc->type);
    for (int k = 0; k < cfg->K; k++)
        if (cfg->tasks[k].loss == RF_LOSS_MSE && ((mc->type != RF_MODEL_RESFLOW && mc->type != RF_MODEL_NSE) ||
                                                  cfg->tasks[k].parent[0])) {
            rf_model_free(m);
            return rf_errorf(err, RF_EUSAGE, "task %s: loss mse needs model.type resflow or nse and a root task",
                             cfg->tasks[k].name);
        }
    if (zoo) m->E = mc->emb_dim * rf_zoo_emb_mult(cfg); /* per-task embedding chunks */
    m->Ec = zoo ? mc->emb_dim : m->E;
    m->In = F * m->E + (D > 0 ? (mc->dense_mode == RF_DENSE_PROJECT ? m->E : D) : 0);

    /* task tree: parents and a topological order */
    for (int k = 0; k < m->K; k++) {
        m->parent[k] = -1;
        if (cfg->tasks[k].parent[0]) {
            m->parent[k] = rf_spec_task_index(cfg, cfg->tasks[k].parent);
            if (m->parent[k] < 0 || m->parent[k] == k) {
                rf_model_free(m);
                return rf_errorf(err, RF_EUSAGE, "task %s: unknown parent %s", cfg->tasks[k].name,
                                 cfg->tasks[k].parent);
            }
        }
    }
    {
        int done[RF_MAX_TASKS] = {0}, n = 0;
        while (n < m->K) {
            int progress = 0;
            for (int k = 0; k < m->K; k++)
                if (!done[k] && (m->parent[k] < 0 || done[m->parent[k]])) {
                    done[k] = 1;
                    m->order[n++] = k;
                    progress = 1;
                }
            if (!progress) {
                rf_model_free(m);
                return rf_errorf(err, RF_EUSAGE, "the task tree has a cycle");
            }
        }
    }

    /* dense slab sizes */
    int K = m->K, L = m->L;
    size_t n = 0;
    size_t off_W[RF_MAX_LAYERS], off_b[RF_MAX_LAYERS], off_a[RF_MAX_LAYERS], off_g[RF_MAX_LAYERS],
        off_be[RF_MAX_LAYERS];
    if (zoo) { /* the dense part is an op graph (src/nn/zoo.c); its parameters come first */
        char why[256];
        if (mc->type == RF_MODEL_TWIN)
            m->graph = rf_twin_build(cfg, F, m->E, m->In, m->parent, m->order, &m->graph_out, why, sizeof why);
        else
            m->graph = rf_zoo_build(cfg, F, m->In, D > 0 ? (mc->dense_mode == RF_DENSE_PROJECT ? m->E : D) : 0,
                                    m->parent, &m->graph_out, why, sizeof why);
        if (!m->graph) {
            rf_model_free(m);
            return rf_errorf(err, RF_EUSAGE, "model.type: %s", why);
        }
        n = rf_graph_n_params(m->graph);
        L = 0; /* no side-by-side towers */
    }
    for (int l = 0; l < L; l++) {
        int in = l == 0 ? m->In : m->H[l - 1];
        size_t KH = (size_t)K * m->H[l];
        off_W[l] = n; n += (size_t)in * KH;
        off_b[l] = n; n += KH;
        off_a[l] = n; if (mc->act == RF_ACT_PRELU) n += KH;
        off_g[l] = n; if (mc->bn == RF_BN_BATCH) n += KH;
        off_be[l] = n; if (mc->bn == RF_BN_BATCH) n += KH;
    }
    size_t off_Wout = n, off_bout = n;
    if (!zoo) {
        off_Wout = n; n += (size_t)K * m->H[L - 1];
        off_bout = n; n += K;
    }
    size_t off_Wd = n, off_bd = n;
    if (D > 0 && mc->dense_mode == RF_DENSE_PROJECT) {
        off_Wd = n; n += (size_t)D * m->E;
        off_bd = n; n += m->E;
    }
    m->n_params = n;
    size_t nb = zoo ? rf_graph_n_buffers(m->graph) : 0;
    if (mc->bn == RF_BN_BATCH)
        for (int l = 0; l < L; l++) nb += 2 * (size_t)K * m->H[l];
    m->n_buffers = nb;
    m->params = calloc(n ? n : 1, sizeof(float));
    m->buffers = calloc(nb ? nb : 1, sizeof(float));

    /* embeddings */
    m->emb_off[0] = 0;
    for (int f = 0; f < F; f++) {
        m->vocab[f] = fields[f].vocab ? fields[f].vocab : 1;
        m->pooling[f] = fields[f].multi ? fields[f].pooling : -1;
        m->emb_off[f + 1] = m->emb_off[f] + m->vocab[f];
    }
    m->emb = rf_big_malloc_(m->emb_off[F] * (size_t)m->E * sizeof(float));
    if (!m->params || !m->buffers || !m->emb) {
        rf_model_free(m);
        return rf_errorf(err, RF_ENOMEM, "out of memory for %zu parameters", n);
    }

    /* views */
    float *p = m->params;
    size_t bo = 0;
    for (int l = 0; l < L; l++) {
        m->layer[l].W = p + off_W[l];
        m->layer[l].b = p + off_b[l];
        m->layer[l].alpha = mc->act == RF_ACT_PRELU ? p + off_a[l] : NULL;
        m->layer[l].gamma = mc->bn == RF_BN_BATCH ? p + off_g[l] : NULL;
        m->layer[l].beta = mc->bn == RF_BN_BATCH ? p + off_be[l] : NULL;
        if (mc->bn == RF_BN_BATCH) {
            size_t KH = (size_t)K * m->H[l];
            m->run_off[l] = bo; bo += 2 * KH; /* running mean, then running variance */
        }
    }
    if (!zoo) {
        m->Wout = p + off_Wout;
        m->bout = p + off_bout;
    }
    if (D > 0 && mc->dense_mode == RF_DENSE_PROJECT) {
        m->Wd = p + off_Wd;
        m->bd = p + off_bd;
    }

    /* initialisation (deterministic from train.seed): Xavier-uniform weights per tower,
     * zero biases, PReLU slopes prelu_init, BN gamma 1 beta 0, embeddings U(-a, a) */
    rf_rng r;
    rf_rng_seed(&r, spec->seed);
    for (int l = 0; l < L; l++) {
        int in = l == 0 ? m->In : m->H[l - 1], H = m->H[l];
        size_t KH = (size_t)K * H;
        if (l == 0) {
            /* (In, K*H0): tower k owns columns [k*H0, (k+1)*H0) */
            double lim = sqrt(6.0 / (in + H));
            for (size_t i = 0; i < (size_t)in * KH; i++)
                m->layer[0].W[i] = (float)((2 * rf_rng_uniform(&r) - 1) * lim);
        } else {
            xavier(&r, m->layer[l].W, (size_t)in * KH, in, H);
        }
        if (m->layer[l].alpha)
            for (size_t j = 0; j < KH; j++) m->layer[l].alpha[j] = mc->prelu_init;
        if (m->layer[l].gamma)
            for (size_t j = 0; j < KH; j++) {
                m->layer[l].gamma[j] = 1;
                m->buffers[m->run_off[l] + KH + j] = 1;
            }
    }
    if (zoo) rf_graph_init(m->graph, m->params, m->buffers, spec->seed * 0x9e3779b97f4a7c15ULL + 1);
    else xavier(&r, m->Wout, (size_t)K * m->H[L - 1], m->H[L - 1], 1);
    if (m->Wd) xavier(&r, m->Wd, (size_t)D * m->E, D, m->E);
    for (size_t i = 0; i < m->emb_off[F] * (size_t)m->E; i++)
        m->emb[i] = (float)((2 * rf_rng_uniform(&r) - 1) * mc->emb_init);
    rf_model_info *in = &m->info;
    in->K = m->K, in->F = m->F, in->D = m->D, in->E = m->E, in->L = m->L, in->In = m->In;
    memcpy(in->H, m->H, sizeof in->H);
    memcpy(in->parent, m->parent, sizeof in->parent);
    memcpy(in->order, m->order, sizeof in->order);
    in->n_params = m->n_params;
    in->n_buffers = m->n_buffers;
    in->n_emb_rows = m->emb_off[F];
    in->is_tower = !zoo;
    if (zoo && zoo_groups_make(m)) {
        rf_model_free(m);
        return rf_errorf(err, RF_ENOMEM, "out of memory (parameter groups)");
    }
    *out = m;
    return RF_OK;
}

const rf_model_spec *rf_model_spec_of(const rf_model *m) { return &m->spec; }
const rf_model_info *rf_model_info_of(const rf_model *m) { return &m->info; }
float *rf_model_params(const rf_model *m) { return m->params; }
float *rf_model_buffers(const rf_model *m) { return m->buffers; }
float *rf_model_emb(const rf_model *m) { return m->emb; }
size_t rf_model_emb_offset(const rf_model *m, int f) { return f >= 0 && f <= m->F ? m->emb_off[f] : 0; }

/* Bitmask of task k and every task whose loss reaches k's tower: its descendants, when the
 * residual links or the probability product pass their gradients up the tree. */
static uint32_t reach_mask(const rf_model *m, int k, int up)
{
    uint32_t mask = 1u << k;
    if (!up) return mask;
    for (int j = 0; j < m->K; j++)
        for (int a = m->parent[j]; a >= 0; a = m->parent[a])
            if (a == k) mask |= 1u << j;
    return mask;
}

/* The children of k when the M1 penalty (on models whose probabilities are their logits'
 * sigmoids) passes a child's loss to its parent's logit, else 0. */
static uint32_t m1_children(const rf_model *m, int k)
{
    uint32_t mask = 0;
    if (m->spec.model.monotonic != RF_MONO_M1 || is_product(m)) return 0;
    for (int j = 0; j < m->K; j++)
        if (m->parent[j] == k) mask |= 1u << j;
    return mask;
}

/* ---- parameter groups ------------------------------------------------------------------- */

struct rf_param_group_list {
    int n;
    rf_param_group g[];
};

static int owner_of(uint32_t t) { return t && !(t & (t - 1)) ? __builtin_ctz(t) : -1; }

/* Append the column runs of equal mask of a (rows, cols) block at off (row stride ld) whose
 * column c has mask cm[c]: one group per run. */
static int add_runs(rf_param_group *out, int n, int max, const char *name, size_t off, size_t rows,
                    size_t cols, size_t ld, int emb, const uint32_t *cm)
{
    for (size_t c0 = 0; c0 < cols;) {
        size_t c1 = c0 + 1;
        while (c1 < cols && cm[c1] == cm[c0]) c1++;
        if (out && n < max) {
            rf_param_group *g = &out[n];
            memset(g, 0, sizeof *g);
            if (c0 == 0 && c1 == cols) snprintf(g->name, sizeof g->name, "%s", name);
            else snprintf(g->name, sizeof g->name, "%.20s[%u:%u]", name, (unsigned)c0, (unsigned)c1);
            g->off = off + c0, g->rows = rows, g->cols = c1 - c0, g->ld = ld, g->emb = emb;
            g->tasks = cm[c0], g->owner = owner_of(cm[c0]);
        }
        n++;
        c0 = c1;
    }
    return n;
}

/* The op graph's groups, exact: which tasks' losses reach each parameter, from the graph's
 * structure (rf_graph_reach) and the loss's columns (rf_zoo_out_masks); the embeddings and the
 * dense projection split by the columns of x they feed (STEM's and single's per-task chunks). */
static int zoo_groups(const rf_model *m, rf_param_group *out, int max)
{
    const rf_graph *gr = m->graph;
    int nx = rf_zoo_n_extra(&m->spec), nb = rf_graph_param_blocks(gr, NULL, 0), n = -1;
    size_t np = rf_graph_n_params(gr);
    int ow = rf_graph_whole(gr, m->graph_out).w;
    uint32_t *omask = malloc((size_t)ow * sizeof *omask);
    uint32_t *pm = malloc((np ? np : 1) * sizeof *pm), *xm = malloc((size_t)m->In * sizeof *xm),
             *cm = calloc((size_t)(m->E > 0 ? m->E : 1), sizeof *cm);
    rf_graph_block *bl = malloc((size_t)(nb ? nb : 1) * sizeof *bl);
    uint32_t *rowm = NULL;
    if (!omask || !pm || !xm || !cm || !bl) goto done;
    if (m->spec.model.type == RF_MODEL_TWIN) {
        /* [u_k (d) ... | v_k (d) ... | ub_k ... | vb_k ...]: all of task k's logit z_k, which the
         * logit link after the dot product passes on to k's descendants */
        int K = m->K, d = (ow / K - 2) / 2;
        for (int k = 0; k < K; k++) {
            uint32_t t = reach_mask(m, k, logit_link_on(m)) | m1_children(m, k);
            for (int j = 0; j < d; j++) omask[k * d + j] = omask[K * d + k * d + j] = t;
            omask[2 * K * d + k] = omask[2 * K * d + K + k] = t;
        }
    } else {
        if (ow != m->K + nx) goto done;
        rf_zoo_out_masks(&m->spec, m->parent, omask);
    }
    if (rf_graph_reach(gr, omask, pm, xm)) goto done;
    rf_graph_param_blocks(gr, bl, nb);
    n = 0;
    for (int f = 0; f < m->F; f++)
        for (int c = 0; c < m->E; c++) cm[c] |= xm[rf_model_xcol(m, f, c)];
    n = add_runs(out, n, max, "emb", 0, m->emb_off[m->F], (size_t)m->E, (size_t)m->E, 1, cm);
    size_t maxc = 0;
    for (int i = 0; i < nb; i++) maxc = bl[i].cols > maxc ? bl[i].cols : maxc;
    if (!(rowm = malloc((maxc ? maxc : 1) * sizeof *rowm))) {
        n = -1;
        goto done;
    }
    for (int i = 0; i < nb; i++) {
        /* a parameter's mask depends on its column only (rf_graph_reach) */
        for (size_t c = 0; c < bl[i].cols; c++) rowm[c] = pm[bl[i].off + c];
        n = add_runs(out, n, max, bl[i].name, bl[i].off, bl[i].rows, bl[i].cols, bl[i].cols, 0, rowm);
    }
    if (m->Wd) { /* projected dense features: x's columns after the embeddings */
        const uint32_t *dm = xm + (size_t)m->F * m->E;
        n = add_runs(out, n, max, "dense_proj.W", (size_t)(m->Wd - m->params), (size_t)m->D, (size_t)m->E,
                     (size_t)m->E, 0, dm);
        n = add_runs(out, n, max, "dense_proj.b", (size_t)(m->bd - m->params), 1, (size_t)m->E, (size_t)m->E, 0,
                     dm);
    }
done:
    free(omask);
    free(rowm);
    free(bl);
    free(cm);
    free(xm);
    free(pm);
    return n;
}

/* Computed once when the model is created (the graph is fixed from then on). */
static int zoo_groups_make(rf_model *m)
{
    int n = zoo_groups(m, NULL, 0);
    if (n < 0) return -1;
    struct rf_param_group_list *l = malloc(sizeof *l + (size_t)(n ? n : 1) * sizeof l->g[0]);
    if (!l) return -1;
    l->n = zoo_groups(m, l->g, n);
    if (l->n != n) {
        free(l);
        return -1;
    }
    m->zgroups = l;
    return 0;
}

int rf_model_param_groups(const rf_model *m, rf_param_group *out, int max)
{
    int n = 0, K = m->K;
    uint32_t all = K >= 32 ? 0xffffffffu : (1u << K) - 1;
#define GROUP(nm, o, r, c, l, ow, t)                                                                       \
    do {                                                                                                   \
        if (out && n < max) {                                                                              \
            rf_param_group *g_ = &out[n];                                                                  \
            memset(g_, 0, sizeof *g_);                                                                     \
            snprintf(g_->name, sizeof g_->name, "%s", nm);                                                 \
            g_->off = (o), g_->rows = (r), g_->cols = (c), g_->ld = (l), g_->owner = (ow), g_->tasks = (t); \
        }                                                                                                  \
        n++;                                                                                               \
    } while (0)
    if (m->graph) { /* the zoo's op graph: attributed when the model was made (zoo_groups) */
        int ng = m->zgroups->n;
        for (int i = 0; out && i < ng && i < max; i++) out[i] = m->zgroups->g[i];
        return ng;
    }
    GROUP("emb", 0, m->emb_off[m->F], (size_t)m->E, (size_t)m->E, -1, all);
    if (out && n <= max) out[n - 1].emb = 1;
    {
        /* a descendant's gradient reaches its ancestors' layer l through the product, the logit
         * link, or a residual link behind layer l or a later one */
        int up_out = is_product(m) || logit_link_on(m);
        char nm[48];
        for (int l = 0; l < m->L; l++) {
            const rf_layer_params *lp = &m->layer[l];
            int up = up_out;
            for (int j = l; j < m->L; j++) up |= link_on(m, j);
            int H = m->H[l], in = l == 0 ? m->In : m->H[l - 1];
            for (int k = 0; k < K; k++) {
                uint32_t t = reach_mask(m, k, up) | m1_children(m, k);
                size_t o = (size_t)(lp->W - m->params);
                snprintf(nm, sizeof nm, "tower%d.layer%d.W", k, l);
                if (l == 0) GROUP(nm, o + (size_t)k * H, (size_t)in, (size_t)H, (size_t)K * H, k, t);
                else GROUP(nm, o + (size_t)k * in * H, (size_t)in, (size_t)H, (size_t)H, k, t);
                snprintf(nm, sizeof nm, "tower%d.layer%d.b", k, l);
                GROUP(nm, (size_t)(lp->b - m->params) + (size_t)k * H, 1, (size_t)H, (size_t)H, k, t);
                if (lp->alpha) {
                    snprintf(nm, sizeof nm, "tower%d.layer%d.prelu", k, l);
                    GROUP(nm, (size_t)(lp->alpha - m->params) + (size_t)k * H, 1, (size_t)H, (size_t)H, k, t);
                }
                if (lp->gamma) {
                    snprintf(nm, sizeof nm, "tower%d.layer%d.bn_gamma", k, l);
                    GROUP(nm, (size_t)(lp->gamma - m->params) + (size_t)k * H, 1, (size_t)H, (size_t)H, k, t);
                    snprintf(nm, sizeof nm, "tower%d.layer%d.bn_beta", k, l);
                    GROUP(nm, (size_t)(lp->beta - m->params) + (size_t)k * H, 1, (size_t)H, (size_t)H, k, t);
                }
            }
        }
        int HL = m->H[m->L - 1];
        for (int k = 0; k < K; k++) {
            uint32_t t = reach_mask(m, k, up_out) | m1_children(m, k);
            snprintf(nm, sizeof nm, "tower%d.out.W", k);
            GROUP(nm, (size_t)(m->Wout - m->params) + (size_t)k * HL, 1, (size_t)HL, (size_t)HL, k, t);
            snprintf(nm, sizeof nm, "tower%d.out.b", k);
            GROUP(nm, (size_t)(m->bout - m->params) + (size_t)k, 1, 1, 1, k, t);
        }
    }
    if (m->Wd) {
        GROUP("dense_proj.W", (size_t)(m->Wd - m->params), (size_t)m->D, (size_t)m->E, (size_t)m->E, -1, all);
        GROUP("dense_proj.b", (size_t)(m->bd - m->params), 1, (size_t)m->E, (size_t)m->E, -1, all);
    }
#undef GROUP
    return n;
}

void rf_model_free(rf_model *m)
{
    if (!m) return;
    rf_graph_free(m->graph);
    free(m->zgroups);
    free(m->params);
    free(m->buffers);
    free(m->emb);
    free(m);
}

static const char *const type_names[] = {"resflow", "nse", "esmm", "single", "shared_bottom", "moe", "mmoe",
                                         "ple", "aitm", "escm2_ipw", "escm2_dr", "dcmt", "stem", "twin"};

const char *rf_model_type_name(rf_model_type t)
{
    return (unsigned)t < sizeof type_names / sizeof *type_names ? type_names[t] : "?";
}

int rf_model_type_parse(const char *name)
{
    for (size_t i = 0; i < sizeof type_names / sizeof *type_names; i++)
        if (strcmp(name, type_names[i]) == 0) return (int)i;
    return -1;
}

int rf_model_is_product(const rf_model *m) { return is_product(m); }
int rf_model_emb_width(const rf_model_spec *s) { return s->model.emb_dim * (rf_zoo_is_tower(s->model.type) ? 1 : rf_zoo_emb_mult(s)); }
int rf_model_type_is_tower(rf_model_type t) { return rf_zoo_is_tower(t); }
