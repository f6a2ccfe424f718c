/* zoo.h - the model zoo: builders of the op graph for every non-tower model (private).
 *
 * The graph's input is the model input x (B, In); its output tensor holds the task logits in
 * columns 0..K-1 and, for some models, extra outputs after them (documented per model in
 * zoo.c). Models whose tasks use their own embeddings (single-task, STEM) widen every
 * embedding row to mult*E columns: chunk k of a field's row is task k's embedding (chunk K is
 * STEM's shared one), sliced out of x with a column gather.
 */
#ifndef RESFLOW_ZOO_H
#define RESFLOW_ZOO_H

#include "graph.h"
#include "resflow/config.h"

/* 1 for the side-by-side tower models (resflow, nse, esmm) that model.c runs itself. */
int rf_zoo_is_tower(rf_model_type t);
/* Probabilities multiply along the task tree (ESMM semantics): esmm, escm2, dcmt. */
int rf_zoo_is_product(rf_model_type t);
/* Embedding row width multiplier (single: K, stem: K + 1, else 1). */
int rf_zoo_emb_mult(const rf_config *cfg);
/* Extra output columns after the K task logits. */
int rf_zoo_n_extra(const rf_config *cfg);

/* Build the graph of cfg's model. F fields of E columns per chunk, x has In columns of which
 * the first F*mult*E are embeddings and the rest dense features (dense_w columns, already
 * projected to mult*E when dense_mode is project). parent[k] is the parent task or -1.
 * Returns the finalized graph and its output tensor, or NULL with a message in why. */
rf_graph *rf_zoo_build(const rf_config *cfg, int F, int In, int dense_w, const int *parent, int *out_t,
                       char *why, size_t why_n);

#endif
