/* graph.h - a small op graph with forward and backward, for the model zoo (private).
 *
 * A graph is a list of ops over tensors. Every tensor is a (B, w) row-major matrix with a
 * gradient of the same shape; tensor 0 is the model input x (embeddings + dense features).
 * Ops read and write *views*: column blocks [c, c+w) of a tensor, so experts or towers can sit
 * side by side in one tensor (one GEMM for all of them) and a gate can read any expert block.
 * Parameters are registered into the model's flat parameter slab (offsets), BN statistics into
 * its buffer slab, so the optimiser, model files and snapshots need to know nothing about the
 * graph. Backward runs the ops in reverse; the first op (in backward order) that writes the
 * gradient of a block sets it and later ones accumulate, so no gradient is zeroed in bulk
 * (a tensor whose blocks overlap partially, or are not all covered, is zeroed first).
 *
 * Conventions follow ops.h: row-major, weights (in, out), parameter gradients accumulate.
 */
#ifndef RESFLOW_GRAPH_H
#define RESFLOW_GRAPH_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    int t; /* tensor */
    int c; /* first column */
    int w; /* width */
} rf_view;

typedef struct rf_graph rf_graph;

rf_graph *rf_graph_new(int input_width);
void rf_graph_free(rf_graph *g);
/* New tensor of the given width; returns its id. */
int rf_graph_tensor(rf_graph *g, int width);
rf_view rf_graph_whole(const rf_graph *g, int t);
static inline rf_view rf_sub(rf_view v, int c, int w) { return (rf_view){v.t, v.c + c, w}; }

/* ---- ops (each returns 0, or -1 on a shape error / out of memory) ---------------------- */
/* out[:, j] = in[:, idx[j]] (a column gather; backward scatters). */
int rf_g_cols(rf_graph *g, rf_view in, const int *idx, rf_view out);
/* out = in @ W (+ b): W (in.w, out.w) Xavier-uniform, b zero. */
int rf_g_linear(rf_graph *g, rf_view in, rf_view out, int bias);
/* G independent linear maps side by side: block j of out = block j of in @ W_j (+ b_j). */
int rf_g_glinear(rf_graph *g, rf_view in, rf_view out, int G, int bias);
/* out = relu(in) / prelu(in; per-column slope initialised to prelu_init) / in (act < 0). */
int rf_g_act(rf_graph *g, rf_view in, rf_view out, int act, float prelu_init);
/* BatchNorm1d over the batch (training: batch statistics; eval: running statistics). */
int rf_g_bn(rf_graph *g, rf_view in, rf_view out, float momentum, float eps);
/* out = a + b */
int rf_g_add(rf_graph *g, rf_view a, rf_view b, rf_view out);
/* out = sum_i softmax(gate)_i * experts[i]; gate has n columns, every expert out.w columns.
 * stopgrad[i] != 0 blocks the gradient into expert i (STEM's task-specific backward). */
int rf_g_mix(rf_graph *g, rf_view gate, const rf_view *experts, const int *stopgrad, int n, rf_view out);
/* AITM's attention over two items u in {q, p}: Q=uWq, K=uWk, V=uWv (no bias, W ~ N(0, 0.01)),
 * weights softmax_u(<Q_u, K_u>/sqrt(H)), out = sum_u w_u V_u. q, p, out all H wide. */
int rf_g_attn2(rf_graph *g, rf_view q, rf_view p, rf_view out);

/* An MLP: for each width, linear + act (+ BN). Returns the last view (a new tensor). */
int rf_g_mlp(rf_graph *g, rf_view in, const int *widths, int n, int act, float prelu_init, int bn,
             float bn_momentum, float bn_eps, rf_view *out);

/* ---- building and running ---------------------------------------------------------------- */
/* Prepare the backward plan. Call once after the last op; out_t is the output tensor, whose
 * gradient the caller sets before rf_graph_backward. */
int rf_graph_finalize(rf_graph *g, int out_t);
size_t rf_graph_n_params(const rf_graph *g);
size_t rf_graph_n_buffers(const rf_graph *g);
/* Initialise the parameters and buffers it registered (Xavier, zeros, PReLU slopes, BN). */
void rf_graph_init(const rf_graph *g, float *params, float *buffers, uint64_t seed);

typedef struct rf_graph_ws rf_graph_ws;
/* Scratch for up to max_batch rows. The input tensor's value and gradient are the caller's
 * (x and dx), set with rf_graph_ws_input. */
rf_graph_ws *rf_graph_ws_create(const rf_graph *g, int max_batch);
void rf_graph_ws_free(rf_graph_ws *w);
void rf_graph_ws_input(rf_graph_ws *w, float *x, float *dx);
/* bf16 GEMMs (train.precision: bf16, --precision bf16; gemm_bf16.h): every GEMM of the graph's
 * linear and attention ops packs into s (the caller's, sized by rf_graph_bf16_need; NULL: fp32). */
struct rf_bf16_scratch;
void rf_graph_ws_bf16(rf_graph_ws *w, struct rf_bf16_scratch *s);
/* Grows *a_need / *b_need (rf_bf16_scratch_need) to the packing room of every GEMM of g's
 * forward and backward at batch B. */
void rf_graph_bf16_need(const rf_graph *g, int B, size_t *a_need, size_t *b_need);

/* Stop-gradient values held fixed, for finite-difference checks of models with stop-gradients
 * (tests). RF_FREEZE_OFF: normal. RF_FREEZE_RECORD: every forward also stores the value of each
 * stop-gradient input of a mix op. RF_FREEZE_USE: forwards (and backwards) read those stored
 * values instead of the live ones, so a perturbed forward sees them as the constants that the
 * backward pass assumes. Returns -1 when out of memory. */
enum { RF_FREEZE_OFF = 0, RF_FREEZE_RECORD = 1, RF_FREEZE_USE = 2 };
int rf_graph_ws_freeze(const rf_graph *g, rf_graph_ws *w, int mode);
float *rf_graph_val(rf_graph_ws *w, int t);
float *rf_graph_grad(rf_graph_ws *w, int t);

void rf_graph_forward(const rf_graph *g, rf_graph_ws *w, const float *params, float *buffers, int B,
                      int train);
/* Synchronised BatchNorm (bnsync.h): training forwards and backwards of w's BN ops take their
 * statistics over the processes through s (NULL: local). */
struct rf_bn_sync;
void rf_graph_ws_sync(rf_graph_ws *w, struct rf_bn_sync *s);
/* A process with no row of a step: every BN op's sums of a training forward (running statistics
 * into buffers), then of a backward (in reverse order), with zero rows - as rf_graph_forward and
 * rf_graph_backward make them. */
void rf_graph_bn_idle(const rf_graph *g, rf_graph_ws *w, const float *params, float *buffers, float *grads);
/* The gradient of the output tensor must be set by the caller first. Fills parameter
 * gradients (accumulating) and the input gradient dx (set). */
void rf_graph_backward(const rf_graph *g, rf_graph_ws *w, const float *params, float *grads, int B);

/* ---- attribution --------------------------------------------------------------------------- */
/* Which output columns' gradients reach which parameters (exact, from the ops' structure):
 * out_mask holds a bitmask per column of the output tensor (e.g. the tasks whose loss has a
 * gradient there); pmask (n_params) receives, per parameter, the OR of the masks that reach it,
 * xmask (the input's width) the same per input column. Stop-gradients are honoured. -1 when out
 * of memory. */
int rf_graph_reach(const rf_graph *g, const uint32_t *out_mask, uint32_t *pmask, uint32_t *xmask);
/* The registered parameter blocks, each a (rows, cols) row-major matrix at off in the slab
 * (a vector is one row), named "op<i>.<what>"; out may be NULL to count. Together they cover
 * every parameter exactly once. */
typedef struct {
    char name[40];
    size_t off, rows, cols;
} rf_graph_block;
int rf_graph_param_blocks(const rf_graph *g, rf_graph_block *out, int max);

#endif
