/* graph_impl.h - the op graph's internals (graph.h), shared by its executor (graph.c) and its
 * backward plan (graph_plan.c). Private to nn/. */
#ifndef RESFLOW_GRAPH_IMPL_H
#define RESFLOW_GRAPH_IMPL_H

#include <stddef.h>

#include "nn/bnsync.h"
#include "nn/gemm_bf16.h"
#include "nn/graph.h"
#include "nn/ops.h"

#define NONE ((size_t)-1)
#define MAX_IN 65 /* mix: gate + up to 64 experts */

typedef enum { OP_COLS, OP_LINEAR, OP_GLINEAR, OP_ACT, OP_BN, OP_ADD, OP_MIX, OP_ATTN2 } opkind;
typedef enum { INIT_XAVIER, INIT_ZERO, INIT_CONST, INIT_NORMAL } initkind;

typedef struct {
    size_t off, n;
    initkind kind;
    int fan_in, fan_out;
    float value;
    int buffer; /* 1: in the buffer slab */
} initspec;

typedef struct {
    opkind k;
    rf_view out;
    rf_view in[MAX_IN];
    int nin;
    int nograd[MAX_IN]; /* stop-gradient into input i */
    int acc[MAX_IN];    /* backward: accumulate into input i's gradient (else set it) */
    int G, act;
    size_t W, b, alpha, gamma, beta, Wk, Wv; /* parameter offsets */
    size_t rmean, rvar;                     /* buffer offsets */
    float mom, eps;
    int *idx;      /* cols */
    int *run, nrun; /* cols: runs of consecutive idx, output columns [run[r], run[r + 1]) */
    int scratch;   /* helper tensor (mix weights, bn mean|rstd, attn internals) */
    int actin;     /* linear: 1 + the act op whose backward runs in this op's input-gradient GEMM
                    * in fp32 (rf_gemm_act_bwd), 0: none (set by finalize) */
    int addin;     /* linear: 1 + the add op just before it, whose backward runs in this op's
                    * input-gradient GEMM: the product into each of the add's inputs' gradients
                    * (set by finalize), 0: none */
    int inlinear;  /* act: its backward runs in its consumer's GEMM in fp32; add: in its
                    * consumer's (addin) */
    int mixact[MAX_IN]; /* mix: 1 + the act op whose output input i views and whose backward
                         * this op completes (set by finalize), 0: none */
    int inmix;          /* act: its backward runs in the mix that writes its gradient last */
} op;

struct rf_graph {
    int *width; /* per tensor */
    int nt, cap_t;
    op *ops;
    int nops, cap_ops;
    initspec *init;
    int ninit, cap_init;
    size_t n_params, n_buffers;
    int *zero_first; /* per tensor, set by finalize */
    int out_t;
    int err;
};

struct rf_graph_ws {
    int maxB, nt, nops;
    float **val, **grad;
    int freeze;     /* RF_FREEZE_* */
    float **frozen; /* per op (mix with stop-gradient inputs): (maxB, n, H) recorded inputs */
    rf_bn_sync *sync; /* synchronised BatchNorm (bnsync.h), or NULL */
    rf_bf16_scratch *bf16; /* the model workspace's bf16 packing room (bf16 GEMMs), or NULL */
    float *wcat;           /* attn2: [Wq | Wk | Wv] side by side (H x 3H), or their gradients */
    rf_kpart kp;           /* the weight gradients' partial sums (rf_gemm_tn, ops.h) */
    float *slope;          /* mixes completing a PReLU's backward: per thread, its slopes' sums */
    int slope_nt;          /* threads slope has room for */
};

#endif
