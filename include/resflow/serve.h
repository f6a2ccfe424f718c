/* serve.h - score raw requests with a model file: one context (e.g. the user and query fields)
 * and N candidate items, each as (column name, value) text pairs, into per-task probabilities,
 * the fused ranking score of the model's stored formula and the candidates in ranking order.
 * Transport-free: a server or a binding wraps it (docs/serving.md).
 *
 *   rf_scorer *s;  rf_score_ctx *ctx;  rf_score_result r;
 *   rf_scorer_open("m.model", NULL, &s, err);          (once; read-only afterwards)
 *   ctx = rf_score_ctx_create(s);                      (once per thread)
 *   rf_score(ctx, &req, &r, err);                      (per request)
 *   for (int j = 0; j < r.n; j++) item r.order[j] has score r.score[r.order[j]]
 *   rf_score_ctx_free(ctx);  rf_scorer_close(s);
 *
 * Threads: a scorer is read-only after rf_scorer_open, so any number of threads may score with
 * one scorer at once, each with its own rf_score_ctx (a ctx is used by one thread at a time).
 *
 * Memory: a ctx reserves everything a request of up to max_candidates needs when it is created
 * (the encoded row batch, the model's workspace, row indices, outputs, the sort's scratch);
 * the library's code on the rf_score path calls no malloc (OpenMP and OpenBLAS keep their own
 * buffers after first use). One exception, inherited from the row encoder: a multi-valued
 * field reserves 4 ids per row, and a request with more grows that buffer once (the memory is
 * kept for later requests).
 *
 * Scores are those of the batch tools, bit for bit: the probabilities are rf_predict's, the
 * fused score is what `resflow predict` writes in its column 'score' (rf_fusion_apply over the
 * task probabilities and the child|parent conditionals).
 */
#ifndef RESFLOW_SERVE_H
#define RESFLOW_SERVE_H

#include "index.h"
#include "modelfile.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rf_scorer rf_scorer;
typedef struct rf_score_ctx rf_score_ctx;

typedef struct {
    int max_candidates; /* candidates per request (0 = 1000) */
    int threads;        /* OpenMP threads per request (0 = 1); the calling thread's setting is
                           restored after each request. More than 1 only when one thread scores
                           at a time: concurrent multi-threaded GEMMs are unsafe in Debian's
                           OpenMP OpenBLAS (model.h, rf_workspace) */
    const char *index;  /* an item index (.rfi) built from this model by `resflow index`, for
                           rf_topk (a twin-tower model only); NULL = none */
    int max_k;          /* results per rf_topk (0 = 1000) */
    int max_shortlist;  /* shortlist of a quantized rf_topk (0 = max(10 max_k, 1000)) */
    int precision;      /* rf_score's GEMMs (rf_precision, model.h): RF_PREC_FP32 (0), or
                           RF_PREC_BF16 / RF_PREC_INT8 for a tower model on a CPU with
                           AVX512-BF16 / AVX512-VNNI (as rf_predict_opts; refused at open
                           elsewhere). Scores are then those of `resflow predict --precision
                           bf16|int8` (a row's score does not depend on its batch), not fp32's */
} rf_scorer_opts;

/* Open a model file read-only: load and verify it, make its row encoder, resolve the stored
 * fusion formula against the model's tasks (an unresolvable formula is an error here, not per
 * request). opts NULL = defaults. With opts->index, also map the item index and check that it
 * was built from this model (RF_EUSAGE naming both files otherwise; RF_EFORMAT for a corrupt
 * index). */
RF_API rf_status rf_scorer_open(const char *path, const rf_scorer_opts *opts, rf_scorer **out,
                                rf_error *err) RF_WUR;
RF_API void rf_scorer_close(rf_scorer *s);

/* The loaded model file (model, configuration, encoders, fusion), read-only. */
RF_API const rf_loaded_model *rf_scorer_model(const rf_scorer *s);
/* Task names in the model's order (the columns of rf_score_result.probs); returns K. */
RF_API int rf_scorer_tasks(const rf_scorer *s, const char *const **names);
/* The raw columns a request may give: the categorical fields, then the dense columns. */
RF_API int rf_scorer_columns(const rf_scorer *s, const char *const **names);
/* 1 when the model file has a fusion formula; its spec form (rf_fusion_spec, e.g.
 * "mul:ctr=0.9,ctcvr|ctr=1.1"), or "" when there is none. */
RF_API int rf_scorer_has_fusion(const rf_scorer *s);
RF_API const char *rf_scorer_fusion_spec(const rf_scorer *s);
/* What rf_score_result.score is: the fusion spec, or the last task's name when there is no
 * formula. */
RF_API const char *rf_scorer_score_name(const rf_scorer *s);
/* 1 for a regression model (regression.target): results carry E(v). */
RF_API int rf_scorer_is_regression(const rf_scorer *s);
RF_API int rf_scorer_max_candidates(const rf_scorer *s);

/* The item index (NULL when opened without one), rf_topk's limits. */
RF_API const rf_index *rf_scorer_index(const rf_scorer *s);
RF_API int rf_scorer_max_k(const rf_scorer *s);
RF_API int rf_scorer_max_shortlist(const rf_scorer *s);

/* Per-thread scratch for requests of up to max_candidates; NULL when out of memory. Free it
 * before its scorer. */
RF_API rf_score_ctx *rf_score_ctx_create(const rf_scorer *s);
RF_API void rf_score_ctx_free(rf_score_ctx *ctx);

/* n (name, value) pairs; a value NULL (or "") is missing, as an empty field of a file. */
typedef struct {
    int n;
    const char *const *names;
    const char *const *values;
} rf_features;

/* One request: the context's columns are shared by every candidate; candidate i's row is the
 * context's pairs plus its own. A column must not be given in both. Columns given nowhere are
 * missing values (filled or id 0, as the loader does). */
typedef struct {
    rf_features context;
    int n_candidates;               /* 0 .. max_candidates */
    const rf_features *candidates;  /* (n_candidates) */
} rf_score_request;

/* The result: pointers into the ctx, valid until its next rf_score or rf_score_ctx_free. */
typedef struct {
    int n, K;                 /* candidates, tasks */
    const float *probs;       /* (n, K) entire-space probabilities (rf_predict's probs) */
    const float *cond;        /* (n, K) conditionals (rf_predict's cond: p_k / p_parent, ESMM's
                                 sigmoid(s_k); p_k for roots) */
    const float *score;       /* (n) the ranking score: the stored fusion formula, or the last
                                 task's probability when the model has none */
    int fused;                /* 1: score is the stored formula; 0: the last task's probability */
    const char *score_name;   /* the formula's spec, or that task's name */
    const float *expected;    /* (n) E(v) of a regression model (rf_regression_predict); NULL
                                 for other models */
    const int *order;         /* (n) candidate indices by score, descending; ties keep the
                                 request's order */
} rf_score_result;

/* Score a request. Errors (the ctx stays usable, *res is not filled):
 *   RF_EUSAGE  more than max_candidates, an unknown column, a column given twice or in both the
 *              context and a candidate: the message names the candidate ("candidate 3: ...",
 *              or "context: ...") and the column;
 *   RF_EDATA   a value that cannot be encoded (not a number, ...): names the candidate, the
 *              column and the value (a bad context value fails at candidate 0 and says so);
 *   RF_ENUMERIC a NaN fused score. */
RF_API rf_status rf_score(rf_score_ctx *ctx, const rf_score_request *req, rf_score_result *res,
                          rf_error *err) RF_WUR;

/* ---- top-K over the item index (twin-tower models) ------------------------------------------ */

typedef struct {
    int quantized;   /* 0: exact fp32 dot products of every item; 1: the index's 8-bit copy scores
                        every item, the best `shortlist` are re-ranked with the exact vectors */
    int shortlist;   /* 0 = max(10 k, 1000), at most the scorer's max_shortlist */
} rf_topk_opts;

/* Pointers into the ctx, valid until its next rf_topk or rf_score_ctx_free. */
typedef struct {
    int n, K;                 /* results (min(k, items)), tasks */
    const uint32_t *item;     /* (n) positions in the index, best first */
    const char *const *id;    /* (n) the items' ids */
    const float *score;       /* (n) the ranking score, as rf_score_result.score */
    const float *probs;       /* (n, K) per-task probabilities sigmoid(z_k) */
    int fused;
    const char *score_name;
} rf_topk_result;

/* The k best items of the index for one context (the user/query/context columns; item-side
 * columns are refused), by the fused score of the per-task probabilities sigmoid(z_k), z_k =
 * <u_k, v_k> + ub_k + vb_k (+ the parent's logit with the after-dot-product link). The user
 * vectors are computed once per call; ties rank by index position. opts NULL = exact. Errors:
 * RF_EUSAGE no index, k outside 1..max_k, a shortlist above max_shortlist, an unknown or
 * item-side column ("context: ..."); RF_EDATA a value that cannot be encoded. Re-entrant with a
 * ctx per thread; no allocation. */
RF_API rf_status rf_topk(rf_score_ctx *ctx, const rf_features *context, int k, const rf_topk_opts *opts,
                         rf_topk_result *res, rf_error *err) RF_WUR;

#ifdef __cplusplus
}
#endif
#endif
