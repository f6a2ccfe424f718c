/* model.c - multi-task tower models: ResFlow (residual links between corresponding layers of
 * task towers, KDD'24 eq. 3-4), NSE (independent towers on a shared embedding) and ESMM
 * (product of probabilities along the task chain, SIGIR'18).
 *
 * Layout and shapes are documented in include/resflow/model.h. The forward pass runs the
 * towers of all tasks side by side: hidden layer l of every tower lives in one (B, K*H_l)
 * matrix, so the first layer (shared input) is a single GEMM and a residual link is a
 * column-block add. Tasks are visited in topological order (parents first) in the forward
 * pass and in reverse in the backward pass, so a parent's gradient is complete before it is
 * propagated.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/bigalloc.h"
#include "nn/graph.h"
#include "nn/ops.h"
#include "nn/zoo.h"
#include "nn/model_impl.h"
#include "core/rng.h"

struct rf_workspace {
    int maxB, B;
    int last_train;
    float *x, *dx;                                  /* (B, In) */
    float *Z[RF_MAX_LAYERS], *A[RF_MAX_LAYERS];     /* (B, K*H_l); A aliases O without BN */
    float *O[RF_MAX_LAYERS], *dO[RF_MAX_LAYERS];
    float *dZ[RF_MAX_LAYERS];
    float *mean[RF_MAX_LAYERS], *rstd[RF_MAX_LAYERS];
    float *R[RF_MAX_LAYERS];                        /* (B, K*H_l) block outputs before the links,
                                                       kept only after rf_ws_keep_blocks (probing) */
    float *S, *P, *C, *dS;                          /* (B, K) logits, probs, conditionals */
    float *own;                                     /* (B, K) each tower's own logit (before links) */
    double *logp;                                   /* (B, K) ESMM log-probabilities */
    double scale[RF_MAX_TASKS];                     /* loss scale used by the last rf_model_loss */
    float *bufn;         /* (n_buffers) running statistics after the last training forward */
    int bufn_valid;
    size_t seg_off[RF_MAX_FIELDS + 1]; /* field f's segment of a sparse gradient set in the last
                                          training batch: at most seg_off[f+1] - seg_off[f] rows */
    rf_graph_ws *gws;    /* model zoo: the graph's tensors */
    int nx;              /* model zoo: extra output columns after the logits */
    float *X, *dX;       /* (B, nx) extra outputs and their gradients */
    float *Y, *RW;       /* (B, K) labels and (B) row weights of the last zoo loss */
    rf_zoo_frozen fz;    /* stop-gradient weights held fixed (rf_ws_freeze) */
};

/* Row-sparse embedding gradient and the dense gradient slab (rf_grads). */
struct rf_grads {
    float *dense;
    size_t n_dense;
    int E;
    size_t emb_rows;
    int32_t *slot;  /* (emb_rows) index into rows/g, or -1 */
    uint32_t *rows;
    float *g;
    size_t n_rows, cap;
    size_t seg_n[RF_MAX_FIELDS]; /* rows of field f in its segment during backward */
};

/* ---------------------------------------------------------------------------------------- */

/* Which models have ResFlow links: resflow, and esmm with model.esmm_links (ESMM + FR [+ LR]). */
static int has_links(const rf_model *m)
{
    const rf_model_cfg *mc = &m->spec.model;
    return mc->type == RF_MODEL_RESFLOW || (mc->type == RF_MODEL_ESMM && mc->esmm_links);
}
static int link_on(const rf_model *m, int l) { return has_links(m) && (m->spec.model.res_layers >> l & 1u); }
/* M4 replaces the logit link by the ESMM product */
static int logit_link_on(const rf_model *m)
{
    const rf_model_cfg *mc = &m->spec.model;
    return has_links(m) && mc->res_logit && !(mc->type == RF_MODEL_RESFLOW && mc->monotonic == RF_MONO_M4);
}
static int is_product(const rf_model *m)
{
    const rf_model_cfg *mc = &m->spec.model;
    return rf_zoo_is_product(mc->type) || (mc->type == RF_MODEL_RESFLOW && mc->monotonic == RF_MONO_M4);
}

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
    m->emb = rf_big_alloc(m->emb_off[F] * (size_t)m->E * sizeof(float), 0);
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
    GROUP("emb", 0, m->emb_off[m->F], (size_t)m->E, (size_t)m->E, -1, all);
    if (out && n <= max) out[n - 1].emb = 1;
    if (m->graph) { /* the zoo's op graph: its parameters are not attributed to towers yet */
        GROUP("graph", 0, 1, rf_graph_n_params(m->graph), rf_graph_n_params(m->graph), -1, all);
    } else {
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
                uint32_t t = reach_mask(m, k, up);
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
            uint32_t t = reach_mask(m, k, up_out);
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
    free(m->params);
    free(m->buffers);
    free(m->emb);
    free(m);
}

static const char *const type_names[] = {"resflow", "nse", "esmm", "single", "shared_bottom", "moe", "mmoe",
                                         "ple", "aitm", "escm2_ipw", "escm2_dr", "dcmt", "stem"};

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

rf_workspace *rf_workspace_create(const rf_model *m, int maxB)
{
    rf_workspace *ws = calloc(1, sizeof *ws);
    if (!ws) return NULL;
    int K = m->K, ok = 1;
    size_t B = maxB > 0 ? (size_t)maxB : 1;
    ws->maxB = (int)B;
#define AL(p, n) do { (p) = malloc((n) * sizeof *(p)); ok &= (p) != NULL; } while (0)
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
    free(ws->bufn);
    free(ws);
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

/* Embedding lookup + pooling + dense features into x (B, In). */
static rf_status embed_fwd(const rf_model *m, rf_workspace *ws, const rf_batch *bt, rf_error *err)
{
    const rf_dataset *ds = bt->ds;
    int F = m->F, E = m->E, In = m->In, D = m->D;
    int bad = -1;
    size_t bad_row = 0;
    uint64_t bad_id = 0;
#pragma omp parallel for schedule(static) if (bt->B * F * E > 32768)
    for (int b = 0; b < bt->B; b++) {
        size_t r = bt->rows[b];
        float *x = ws->x + (size_t)b * In;
        for (int f = 0; f < F; f++) {
            float *xf = x + f * E;
            if (m->pooling[f] < 0) {
                uint32_t id = ds->cat[r * ds->F + f];
                if (b + 4 < bt->B) { /* the row we will need 4 iterations from now */
                    uint32_t pid = ds->cat[bt->rows[b + 4] * ds->F + f];
                    if (pid < m->vocab[f]) __builtin_prefetch(m->emb + (m->emb_off[f] + pid) * E);
                }
                if (id >= m->vocab[f]) {
#pragma omp critical
                    { bad = f; bad_row = r; bad_id = id; }
                    id = 0;
                }
                memcpy(xf, m->emb + (m->emb_off[f] + id) * E, E * sizeof(float));
            } else {
                memset(xf, 0, E * sizeof(float));
                uint64_t a = ds->mv_off[f][r], z = ds->mv_off[f][r + 1];
                for (uint64_t i = a; i < z; i++) {
                    uint32_t id = ds->mv_ids[f][i];
                    if (id >= m->vocab[f]) {
#pragma omp critical
                        { bad = f; bad_row = r; bad_id = id; }
                        id = 0;
                    }
                    const float *e = m->emb + (m->emb_off[f] + id) * E;
                    for (int j = 0; j < E; j++) xf[j] += e[j];
                }
                if (m->pooling[f] == RF_POOL_MEAN && z - a > 1)
                    for (int j = 0; j < E; j++) xf[j] /= (float)(z - a);
            }
        }
        if (D > 0 && !m->Wd) memcpy(x + F * E, ds->dense + r * D, D * sizeof(float));
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

rf_status rf_model_forward(const rf_model *m, rf_workspace *ws, const rf_batch *bt, int train,
                           rf_error *err)
{
    int B = bt->B, K = m->K, L = m->L;
    if (B > ws->maxB) return rf_errorf(err, RF_EINTERNAL, "batch %d exceeds workspace %d", B, ws->maxB);
    if (bt->ds->F != m->F || bt->ds->D != m->D)
        return rf_errorf(err, RF_EDATA, "dataset has %d fields / %d dense features, model expects %d / %d",
                         bt->ds->F, bt->ds->D, m->F, m->D);
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
    rf_status st = embed_fwd(m, ws, bt, err);
    if (st) return st;
    const rf_model_cfg *mc = &m->spec.model;
    if (m->graph) { /* model zoo: the op graph computes the logits */
        rf_graph_ws_input(ws->gws, ws->x, ws->dx);
        rf_graph_forward(m->graph, ws->gws, m->params, train ? ws->bufn : m->buffers, B, train);
        const float *o = rf_graph_val(ws->gws, m->graph_out);
        int nx = ws->nx, w = K + nx;
        for (int b = 0; b < B; b++) {
            memcpy(ws->S + (size_t)b * K, o + (size_t)b * w, K * sizeof(float));
            if (nx) memcpy(ws->X + (size_t)b * nx, o + (size_t)b * w + K, nx * sizeof(float));
        }
        L = 0;
    }
    for (int l = 0; l < L; l++) {
        int H = m->H[l], KH = K * H;
        const rf_layer_params *lp = &m->layer[l];
        if (l == 0) {
            rf_gemm(0, 0, B, KH, m->In, 1.0f, ws->x, m->In, lp->W, KH, 0.0f, ws->Z[0], KH);
        } else {
            int Hp = m->H[l - 1];
            for (int k = 0; k < K; k++)
                rf_gemm(0, 0, B, H, Hp, 1.0f, ws->O[l - 1] + k * Hp, K * Hp,
                        lp->W + (size_t)k * Hp * H, H, 0.0f, ws->Z[l] + k * H, KH);
        }
        rf_bias_act_fwd(ws->Z[l], ws->A[l], B, KH, KH, lp->b, lp->alpha);
        if (mc->bn == RF_BN_BATCH) {
            if (train)
                rf_bn_fwd_train(ws->A[l], ws->O[l], B, KH, KH, lp->gamma, lp->beta, ws->mean[l],
                                ws->rstd[l], ws->bufn + m->run_off[l], ws->bufn + m->run_off[l] + KH,
                                mc->bn_momentum, mc->bn_eps);
            else
                rf_bn_fwd_eval(ws->A[l], ws->O[l], B, KH, KH, lp->gamma, lp->beta, m->buffers + m->run_off[l],
                               m->buffers + m->run_off[l] + KH, mc->bn_eps);
        }
        if (ws->R[l]) memcpy(ws->R[l], ws->O[l], (size_t)B * KH * sizeof(float));
        if (link_on(m, l)) {
            for (int i = 0; i < K; i++) {
                int k = m->order[i], p = m->parent[k];
                if (p < 0) continue;
                for (int b = 0; b < B; b++) {
                    float *o = ws->O[l] + (size_t)b * KH;
                    for (int j = 0; j < H; j++) o[k * H + j] += o[p * H + j];
                }
            }
        }
    }
    /* logits */
    int HL = m->H[m->L - 1];
    for (int b = 0; b < B && !m->graph; b++) {
        const float *o = ws->O[L - 1] + (size_t)b * K * HL;
        for (int k = 0; k < K; k++) {
            const float *w = m->Wout + (size_t)k * HL, *ok = o + k * HL;
            float s = m->bout[k];
            for (int j = 0; j < HL; j++) s += ok[j] * w[j];
            ws->S[(size_t)b * K + k] = s;
        }
    }
    int esmm = is_product(m);
    int logit_link = logit_link_on(m);
    int m3 = logit_link && mc->monotonic == RF_MONO_M3;
    memcpy(ws->own, ws->S, (size_t)B * K * sizeof(float));
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
    return RF_OK;
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
            pt[k] += l * rw;
        }
    }
    for (int k = 0; k < K; k++) {
        pt[k] /= B;
        tot += (task_scale ? task_scale[k] : 1.0) * m->spec.tasks[k].weight * pt[k];
        if (per_task) per_task[k] = pt[k];
    }
    return tot + monotonic_penalty(m, ws, bt, task_scale);
}

/* ---------------------------------------------------------------------------------------- */

/* Add scale*v to the gradient of embedding row `row` of field f (segment f of the set). */
static void emb_accum(rf_grads *gr, const rf_workspace *ws, int f, size_t row, const float *v, float scale, int E)
{
    int32_t s = gr->slot[row];
    if (s < 0) {
        s = (int32_t)(ws->seg_off[f] + gr->seg_n[f]++);
        gr->slot[row] = s;
        gr->rows[s] = (uint32_t)row;
        memset(gr->g + (size_t)s * E, 0, E * sizeof(float));
    }
    float *d = gr->g + (size_t)s * E;
    for (int j = 0; j < E; j++) d[j] += scale * v[j];
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
    rf_gemm(1, 0, m->In, KH, ws->B, 1.0f, ws->x, m->In, ws->dZ[0], KH, 1.0f, dW0, KH);
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
    if (m->graph) { /* model zoo: logit gradients into the graph's output, then its backward */
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
    /* logit layer */
    int HL = m->H[m->L - 1];
    if (!m->graph) {
        float *dWout = GRAD(m->Wout), *dbout = GRAD(m->bout);
        float *dO = ws->dO[L - 1];
        const float *O = ws->O[L - 1];
        for (int b = 0; b < B; b++) {
            const float *ob = O + (size_t)b * K * HL;
            float *db = dO + (size_t)b * K * HL;
            for (int k = 0; k < K; k++) {
                float d = ws->dS[(size_t)b * K + k];
                const float *w = m->Wout + (size_t)k * HL;
                float *dw = dWout + (size_t)k * HL;
                dbout[k] += d;
                for (int j = 0; j < HL; j++) {
                    dw[j] += d * ob[k * HL + j];
                    db[k * HL + j] = d * w[j];
                }
            }
        }
    }
    for (int l = L - 1; l >= 0; l--) {
        int H = m->H[l], KH = K * H;
        const rf_layer_params *lp = &m->layer[l];
        float *dO = ws->dO[l];
        if (link_on(m, l))
            for (int i = K - 1; i >= 0; i--) {
                int k = m->order[i], p = m->parent[k];
                if (p < 0) continue;
                for (int b = 0; b < B; b++) {
                    float *d = dO + (size_t)b * KH;
                    for (int j = 0; j < H; j++) d[p * H + j] += d[k * H + j];
                }
            }
        if (mc->bn == RF_BN_BATCH) /* in place: dO becomes the gradient of the activation */
            rf_bn_bwd(ws->A[l], dO, dO, B, KH, KH, lp->gamma, ws->mean[l], ws->rstd[l],
                      GRAD(lp->gamma), GRAD(lp->beta));
        const float *dA = dO;
        rf_act_bias_bwd(ws->Z[l], dA, ws->dZ[l], B, KH, KH, lp->alpha, GRAD(lp->b),
                        lp->alpha ? GRAD(lp->alpha) : NULL);
        if (l == 0) { /* the weight gradient of layer 0 is rf_model_backward_w0 */
            rf_gemm(0, 1, B, m->In, KH, 1.0f, ws->dZ[0], KH, lp->W, KH, 0.0f, ws->dx, m->In);
        } else {
            int Hp = m->H[l - 1];
            for (int k = 0; k < K; k++) {
                const float *W = lp->W + (size_t)k * Hp * H;
                rf_gemm(1, 0, Hp, H, B, 1.0f, ws->O[l - 1] + k * Hp, K * Hp, ws->dZ[l] + k * H, KH,
                        1.0f, GRAD(W), H);
                rf_gemm(0, 1, B, Hp, H, 1.0f, ws->dZ[l] + k * H, KH, W, H, 0.0f,
                        ws->dO[l - 1] + k * Hp, K * Hp);
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
    return RF_OK;
}

void rf_model_backward_emb(const rf_model *m, rf_workspace *ws, const rf_batch *bt, rf_grads *gr)
{
    int B = ws->B;
    /* embeddings (row-sparse): fields in parallel, each into its own segment, then the
     * segments are compacted into one list */
    const rf_dataset *ds = bt->ds;
    int F = m->F, E = m->E, In = m->In;
#pragma omp parallel for schedule(dynamic, 1) if (B * F * E > 65536)
    for (int f = 0; f < F; f++) {
        gr->seg_n[f] = 0;
        for (int b = 0; b < B; b++) {
            size_t r = bt->rows[b];
            const float *dx = ws->dx + (size_t)b * In + f * E;
            if (m->pooling[f] < 0) {
                uint32_t id = ds->cat[r * ds->F + f];
                emb_accum(gr, ws, f, m->emb_off[f] + (id < m->vocab[f] ? id : 0), dx, 1.0f, E);
            } else {
                uint64_t a = ds->mv_off[f][r], z = ds->mv_off[f][r + 1];
                float sc = m->pooling[f] == RF_POOL_MEAN && z - a > 1 ? 1.0f / (float)(z - a) : 1.0f;
                for (uint64_t i = a; i < z; i++) {
                    uint32_t id = ds->mv_ids[f][i];
                    emb_accum(gr, ws, f, m->emb_off[f] + (id < m->vocab[f] ? id : 0), dx, sc, E);
                }
            }
        }
    }
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
