/* twin_impl.h - the twin-tower model's pieces used by model.c, forward.c and backward.c
 * (private; the public side is include/resflow/twin.h, the model in src/nn/twin.c). */
#ifndef RESFLOW_TWIN_IMPL_H
#define RESFLOW_TWIN_IMPL_H

#include "nn/graph.h"
#include "resflow/spec.h"

struct rf_model;
struct rf_workspace;

/* The op graph of a twin model: both towers of every task up to the vectors (after the links
 * before the dot product). Its output tensor holds, per row, [u_0..u_{K-1} | v_0..v_{K-1} |
 * ub_0..ub_{K-1} | vb_0..vb_{K-1}] (2K(d+1) columns). F fields of E columns, x has In columns
 * (dense features concatenated after the embeddings), parent/order the task tree (parents first).
 * NULL with a message in why. */
rf_graph *rf_twin_build(const rf_model_spec *s, int F, int E, int In, const int *parent, const int *order,
                        int *out_t, char *why, size_t why_n);
/* 1 when categorical field f / dense feature j of spec s is on the item side. */
int rf_twin_item_field(const rf_model_spec *s, int f);
int rf_twin_item_dense(const rf_model_spec *s, int j);
/* After the graph's forward: the raw logits ws->S = <u_k, v_k> + ub_k + vb_k (the logit link is
 * applied by forward.c with the other tower models'). */
void rf_twin_top_forward(const struct rf_model *m, struct rf_workspace *ws, int B);
/* The backward of the top from ws->dS (the logit links already folded in), then the graph's. */
void rf_twin_top_backward(const struct rf_model *m, struct rf_workspace *ws, int B, float *grads);

#endif
