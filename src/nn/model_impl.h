/* model_impl.h - the model's internals, shared by the files of the nn wing (model.c, train.c,
 * optim.c) and white-box tests. Everything else goes through include/resflow/model.h. */
#ifndef RESFLOW_MODEL_IMPL_H
#define RESFLOW_MODEL_IMPL_H

#include "nn/bnsync.h"
#include "nn/ops.h"
#include "nn/zoo.h"
#include "resflow/model.h"

typedef struct {
    /* views into the dense slab */
    float *W;     /* layer 0: (In, K*H0) all towers side by side; layer l>0: K blocks (H_{l-1}, H_l) */
    float *b;     /* (K*H_l) */
    float *alpha; /* (K*H_l) PReLU slopes, or NULL */
    float *gamma; /* (K*H_l) BN scale, or NULL */
    float *beta;  /* (K*H_l) BN shift, or NULL */
} rf_layer_params;

struct rf_model {
    rf_model_spec spec; /* what it was built from */
    rf_model_info info; /* derived shape (rf_model_info_of) */
    int K, F, D, E, L;  /* copies of info's, for the kernels' brevity */
    int In;
    int Ec; /* an embedding row's chunk in x: E (one chunk), or the zoo's per-task chunks of
             * emb_dim, laid out chunk by chunk (rf_model_xcol) */
    int H[RF_MAX_LAYERS];
    int parent[RF_MAX_TASKS]; /* -1 for a root */
    int order[RF_MAX_TASKS];  /* topological order (parents first) */
    int pooling[RF_MAX_FIELDS]; /* per field: -1 single-valued, else rf_pooling */

    /* dense parameter slab */
    size_t n_params;
    float *params;
    rf_layer_params layer[RF_MAX_LAYERS];
    float *Wout;        /* (K, H_{L-1}) logit weights */
    float *bout;        /* (K) */
    float *Wd;          /* (D, E) dense projection, or NULL */
    float *bd;          /* (E) */
    size_t n_buffers;   /* floats of running statistics (stored after params in the file) */
    size_t run_off[RF_MAX_LAYERS]; /* BN layer l: running mean at buffers + run_off[l], then the
                                      running variance (K*H_l each) */
    float *buffers;

    /* model zoo: the dense part as an op graph (src/nn/zoo.c), NULL for the tower models */
    struct rf_graph *graph;
    int graph_out; /* its output tensor: K logits, then model-specific extras */
    struct rf_param_group_list *zgroups; /* its parameter groups (rf_model_param_groups) */

    /* embeddings */
    uint32_t vocab[RF_MAX_FIELDS]; /* rows per field */
    size_t emb_off[RF_MAX_FIELDS + 1]; /* first row of field f; emb_off[F] = total rows */
    float *emb;         /* (emb_off[F], E) */
};

/* The column of x (the model's input row) that holds column c of field f's embedding row. The
 * zoo's per-task chunks (STEM's K + 1, Single's K) are laid out chunk by chunk: chunk t of every
 * field, then chunk t + 1, so that a task's chunk is a plain view of x, not a copy
 * (docs/performance.md, "The embedding chunks as views"). */
static inline int rf_model_xcol(const struct rf_model *m, int f, int c)
{
    return c / m->Ec * m->F * m->Ec + f * m->Ec + c % m->Ec;
}

/* Per-batch scratch of forward and backward (forward.c, backward.c). */
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
    double *lrow;                                   /* (B, K) each row's weighted loss terms */
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
    rf_kpart kp;         /* the weight gradients' partial sums (rf_gemm_tn, ops.h) */
    struct rf_bf16_scratch *bf16; /* train.precision bf16: packing room of the tower GEMMs
                                     (gemm_bf16.h); NULL = fp32 */
    struct rf_bf16_acts *pk;      /* bf16, the tower models: the activations written by their
                                     passes in the GEMMs' layouts (gemm_bf16.h); NULL: none,
                                     and in a scoring workspace (rf_ws_score_only) */
    struct rf_bf16_wpack *bf16w;  /* bf16 scoring (rf_ws_score_only): the weights packed once;
                                     used by passes with train = 0 */
    struct rf_epi_links *epi;     /* a scoring workspace (rf_ws_score_only): the links of the
                                     fused write-back (epi.h); NULL: no fused passes */
    struct rf_i8_ctx *i8;         /* int8 scoring: the quantized weights and the activation
                                     scratch (gemm_int8.h); NULL = not int8 */
    rf_bn_sync bns;      /* synchronised BatchNorm (rf_ws_set_batch_sum); bns.fn NULL: local */
};

/* A gradient set (backward.c). */
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

/* Which models have ResFlow links: resflow, and esmm with model.esmm_links (ESMM + FR [+ LR]). */
static inline int has_links(const rf_model *m)
{
    const rf_model_cfg *mc = &m->spec.model;
    return mc->type == RF_MODEL_RESFLOW || (mc->type == RF_MODEL_ESMM && mc->esmm_links);
}
static inline int link_on(const rf_model *m, int l) { return has_links(m) && (m->spec.model.res_layers >> l & 1u); }
/* M4 replaces the logit link by the ESMM product; twin: model.twin_link after/both */
static inline int logit_link_on(const rf_model *m)
{
    const rf_model_cfg *mc = &m->spec.model;
    if (mc->type == RF_MODEL_TWIN) return (mc->twin_link & RF_TWIN_AFTER) != 0; /* after the dot product */
    return has_links(m) && mc->res_logit && !(mc->type == RF_MODEL_RESFLOW && mc->monotonic == RF_MONO_M4);
}
/* The weights of layer l's GEMM of the tower models: layer 0 all towers side by side (k
 * ignored), a later layer task k's block; *kin rows x *n columns, row stride *n. */
static inline const float *rf_tower_w(const rf_model *m, int l, int k, int *kin, int *n)
{
    *kin = l == 0 ? m->In : m->H[l - 1];
    *n = l == 0 ? m->K * m->H[0] : m->H[l];
    return m->layer[l].W + (l == 0 ? 0 : (size_t)k * *kin * *n);
}
static inline int is_product(const rf_model *m)
{
    const rf_model_cfg *mc = &m->spec.model;
    return rf_zoo_is_product(mc->type) || (mc->type == RF_MODEL_RESFLOW && mc->monotonic == RF_MONO_M4);
}

#endif
