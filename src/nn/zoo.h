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

#include "nn/graph.h"
#include "resflow/spec.h"

/* 1 for the side-by-side tower models (resflow, nse, esmm) that model.c runs itself. */
int rf_zoo_is_tower(rf_model_type t);
/* Probabilities multiply along the task tree (ESMM semantics): esmm, escm2, dcmt. */
int rf_zoo_is_product(rf_model_type t);
/* Embedding row width multiplier (single: K, stem: K + 1, else 1). */
int rf_zoo_emb_mult(const rf_model_spec *cfg);
/* Extra output columns after the K task logits: escm2_dr one imputation logit, dcmt one
 * counterfactual CVR logit per child task (a task with a parent), in task order; else 0. */
int rf_zoo_n_extra(const rf_model_spec *cfg);
/* The extra column (0-based, after the logits) of child task k, or -1. */
int rf_zoo_extra_col(const rf_model_spec *cfg, int k);
/* 1 when the model has its own objective (rf_zoo_loss): aitm, escm2_ipw, escm2_dr, dcmt. The
 * other models use model.c's sum of per-task weighted BCEs. */
int rf_zoo_has_loss(rf_model_type t);

/* Which tasks' losses have a gradient at each output column (K logits, then the extras):
 * mask[c] bit k. A logit is its task's; a product model's chain takes the losses of the
 * parent's descendants too, AITM's calibrator a child's, an M1 monotonic penalty the
 * child's; an extra column is its child task's. */
void rf_zoo_out_masks(const rf_model_spec *cfg, const int *parent, uint32_t *mask);

/* Stop-gradient weights of the last rf_zoo_loss (propensity weights), kept for finite-difference
 * checks: mode is RF_FREEZE_* (graph.h); w holds (maxB, 2K) floats. */
typedef struct {
    int mode;
    float *w;
} rf_zoo_frozen;

/* The objective of an rf_zoo_has_loss model on a batch of B rows (docs/models.md):
 *   L = sum_k scale[k] * L_k,  L_k = (1/B) sum_b rw_b * l_bk
 * where l_bk is task k's BCE plus the model's terms attributed to task k (AITM: the calibrator
 * of the pair parent(k) -> k; ESCM2: lambda_g * CTCVR BCE + lambda_c * counterfactual risk of k;
 * DCMT: its factual/counterfactual CVR terms + lambda_g * CTCVR BCE), scale[k] = task scale times
 * the task weight. S (B, K) logits, X (B, n_extra) extra outputs, Y (B, K) labels, rw (B) row
 * weights or NULL. Writes (sets) dS (B, K) and dX (B, n_extra), and per_task[k] = L_k (if not
 * NULL). Propensity weights are stop-gradient: they come from the parent's probability but no
 * gradient flows back through them. fz may be NULL. */
double rf_zoo_loss(const rf_model_spec *cfg, const int *parent, int B, const float *S, const float *X,
                   const float *Y, const float *rw, const double *scale, float *dS, float *dX,
                   double *per_task, rf_zoo_frozen *fz);

/* Build the graph of cfg's model. F fields of E columns per chunk, x has In columns of which
 * the first F*mult*E are embeddings and the rest dense features (dense_w columns, already
 * projected to mult*E when dense_mode is project). parent[k] is the parent task or -1.
 * Returns the finalized graph and its output tensor, or NULL with a message in why. */
rf_graph *rf_zoo_build(const rf_model_spec *cfg, int F, int In, int dense_w, const int *parent, int *out_t,
                       char *why, size_t why_n);

/* Tests: hold stop-gradient values fixed (mode RF_FREEZE_*, graph.h) in the model's graph and
 * loss, so finite differences see what the backward pass assumes. Returns -1 when out of
 * memory. */
struct rf_workspace;
struct rf_model;
int rf_ws_freeze(struct rf_workspace *ws, const struct rf_model *m, int mode);
/* The extra outputs (B, n_extra) of the last forward (NULL without extras). */
const float *rf_ws_extras(const struct rf_workspace *ws);

#endif
