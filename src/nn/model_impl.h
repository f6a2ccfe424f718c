/* model_impl.h - the model's internals, shared by the files of the nn wing (model.c, train.c,
 * optim.c) and white-box tests. Everything else goes through include/resflow/model.h. */
#ifndef RESFLOW_MODEL_IMPL_H
#define RESFLOW_MODEL_IMPL_H

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

    /* embeddings */
    uint32_t vocab[RF_MAX_FIELDS]; /* rows per field */
    size_t emb_off[RF_MAX_FIELDS + 1]; /* first row of field f; emb_off[F] = total rows */
    float *emb;         /* (emb_off[F], E) */
};

#endif
