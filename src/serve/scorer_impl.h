/* scorer_impl.h - the scorer and its per-thread ctx (serve.h), shared by the scoring core
 * (scorer.c) and top-K retrieval over an item index (scorer_topk.c). Internal. */
#ifndef RESFLOW_SERVE_SCORER_IMPL_H
#define RESFLOW_SERVE_SCORER_IMPL_H

#include "resflow/index.h"
#include "resflow/pipeline.h"
#include "resflow/serve.h"
#include "serve/topk.h"

#define MAX_COLS (RF_MAX_FIELDS + RF_MAX_DENSE)

typedef struct rf_topk_ctx rf_topk_ctx;

struct rf_scorer {
    rf_loaded_model lm;
    rf_row_encoder *enc;
    const char *const *cols;          /* the encoder's columns */
    int ncols;
    int K;
    const char *task[RF_MAX_TASKS];
    int parent[RF_MAX_TASKS];
    int product;                      /* rf_model_is_product */
    int fused, regression;
    char fusion_spec[512];
    const char *score_name;
    int max_cand, threads;
    int precision;                    /* rf_scorer_opts.precision, of every ctx's workspace */
    /* the fusion plan: the score columns `resflow predict` offers the formula (the task
     * probabilities, then the child|parent conditionals), as (name, task, from cond) */
    int nfc;
    char fc_name[2 * RF_MAX_TASKS][RF_NAME_MAX];
    int fc_task[2 * RF_MAX_TASKS], fc_cond[2 * RF_MAX_TASKS];
    /* top-K over an item index (rf_scorer_opts.index; scorer_topk.c) */
    rf_index *ix;
    rf_tk_items items;
    int d, max_k, max_sl;
    int item_col[MAX_COLS];           /* 1: an item-side column of the twin model */
};

struct rf_score_ctx {
    const rf_scorer *s;
    rf_row_batch *b;
    rf_workspace *ws;
    size_t *rows;                     /* 0, 1, ..., max_cand - 1 (constant) */
    float *P, *C, *S, *EV;            /* (max, K), (max, K), (max), (max) or NULL */
    int *order, *tmp;                 /* (max) each: the ranking and the merge sort's scratch */
    rf_score_col cols[2 * RF_MAX_TASKS]; /* the fusion plan over P and C */
    const char *names[MAX_COLS], *values[MAX_COLS];
    int cidx[MAX_COLS];               /* the columns of values[] (rf_row_encode_cols) */
    int guess[MAX_COLS];              /* per position in a candidate: the column named there last */
    int seen[MAX_COLS];               /* -1: context; i + 1: candidate i */
    rf_topk_ctx *tk;                  /* top-K scratch (scorer_topk.c), NULL without an index */
};

/* The column index of name among the scorer's columns, or -1. */
int rf_scorer_column_(const rf_scorer *s, const char *name);
/* The conditionals of n rows exactly as rf_predict gives them, from the probabilities P and the
 * forward pass's conditionals Cf (n, K) each (p_k / p_parent, or Cf for roots and ESMM). */
void rf_scorer_cond_(const rf_scorer *s, const float *P, const float *Cf, int n, float *C);

/* Open s->ix from opts->index and check it against the model (both files named on error). */
rf_status rf_scorer_open_index_(rf_scorer *s, const char *model_path, const rf_scorer_opts *o, rf_error *err);
/* The ctx's top-K scratch (NULL: out of memory); its free. */
rf_topk_ctx *rf_topk_ctx_create_(const rf_scorer *s);
void rf_topk_ctx_free_(rf_topk_ctx *t);

#endif
