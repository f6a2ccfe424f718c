/* rank.h - per-query ranking metrics and score fusion (paper §5.2-5.3; docs/ranking.md).
 *
 * Rows are grouped by a 64-bit query/list key (rf_dataset.group). Within each group the rows
 * are ranked by descending score and the following are computed, then averaged over groups:
 *
 *   WR@K   Weighted Recall@K = sum of f(W) over the top K / sum of f(W) over the group, for
 *          f(W) = W, log(1+W), sqrt(W), W^2 (W >= 0: the item's order count under the query,
 *          or any non-negative weight column). Groups whose total W is 0 are skipped.
 *   Recall@K  positives (label > 0.5) in the top K / positives in the group.
 *   NDCG@K    binary gain (label > 0.5), discount 1/log2(rank+1), normalised by the ideal
 *             DCG@K of the group. Recall and NDCG skip groups without a positive.
 *   List AUC  the AUC of the group's ranking (positives vs negatives), unweighted mean over
 *             the groups that have both classes.
 *   GAUC      the same per-group AUCs, mean weighted by the group's row count
 *             (impression-weighted); single-class groups skipped and counted.
 *
 * Ties: every metric is the EXPECTED value over a uniformly random order of tied scores (a tie
 * block straddling the cut-off contributes its mean; tied positive/negative pairs count 1/2 in
 * the AUCs). So the result never depends on the input row order. -0.0 ties with +0.0; +-inf
 * are ordinary scores; a NaN score is an error (RF_ENUMERIC).
 *
 * Cost: O(N log N) overall (O(m log m) per group of m rows), parallel over groups with OpenMP
 * (the caller sets the thread count); the result does not depend on the thread count.
 *
 * Score fusion: a formula over named score columns, either multiplicative
 * (prod_j s_j^c_j, e.g. ctr^a * cvr^b) or additive (sum_j c_j s_j, e.g. ctr + b*ctcvr + c*rel),
 * and a search for the coefficients that maximise a ranking objective (WR@K by default).
 */
#ifndef RESFLOW_RANK_H
#define RESFLOW_RANK_H

#include "data.h"
#include "resflow.h"

#ifdef __cplusplus
extern "C" {
#endif

#define RF_RANK_MAX_CUTS 8 /* cut-offs K per evaluation */

/* WR@K weight variants f(W). */
enum { RF_WR_W = 0, RF_WR_LOG = 1, RF_WR_SQRT = 2, RF_WR_SQUARE = 3, RF_WR_VARIANTS = 4 };
/* "wr", "wr_log", "wr_sqrt", "wr_square" */
RF_API const char *rf_wr_variant_name(int v);

/* ---- groups ------------------------------------------------------------------------------ */

/* The partition of n rows into groups by key. Rows of a group need not be consecutive (if
 * they are not, the rows are sorted by key once, stably). group NULL = one group of n rows. */
typedef struct rf_groups rf_groups;
RF_API rf_status rf_groups_create(const uint64_t *group, size_t n, rf_groups **out,
                                  rf_error *err) RF_WUR;
RF_API void rf_groups_free(rf_groups *g);
RF_API size_t rf_groups_count(const rf_groups *g);
RF_API size_t rf_groups_rows(const rf_groups *g);
RF_API size_t rf_groups_max_size(const rf_groups *g);

/* ---- metrics ----------------------------------------------------------------------------- */

typedef struct {
    int n_cuts;                   /* 1..RF_RANK_MAX_CUTS */
    int cut[RF_RANK_MAX_CUTS];    /* K values, each >= 1 */
    int threads;                  /* threads of the evaluation (0 = the caller's OpenMP default) */
} rf_rank_opts;

typedef struct {
    size_t rows, groups;
    size_t wr_groups;             /* groups with total W > 0 (used by WR@K) */
    size_t zero_weight_groups;    /* skipped by WR@K */
    size_t pos_groups;            /* groups with a positive (used by Recall@K, NDCG@K) */
    size_t no_pos_groups;         /* skipped by Recall@K and NDCG@K */
    size_t auc_groups;            /* groups with both classes (used by List AUC and GAUC) */
    size_t single_class_groups;   /* skipped by List AUC and GAUC */
    size_t auc_rows;              /* rows of the auc_groups (GAUC's total weight) */
    double wr[RF_WR_VARIANTS][RF_RANK_MAX_CUTS]; /* NaN when wr_groups == 0 */
    double recall[RF_RANK_MAX_CUTS];             /* NaN when pos_groups == 0 */
    double ndcg[RF_RANK_MAX_CUTS];
    double list_auc, gauc;                       /* NaN when auc_groups == 0 */
} rf_rank_result;

/* Evaluate score[i*sstride] against label[i*lstride] (positive when > 0.5) with weights
 * weight[i*wstride] (W for WR@K; weight NULL: W = label) over the groups g of n rows
 * (n == rf_groups_rows(g)). Errors: RF_ENUMERIC for a NaN score or label, RF_EDATA for a
 * negative or non-finite weight, RF_EUSAGE for bad options, RF_ENOMEM. */
RF_API rf_status rf_rank_eval(const rf_groups *g, const float *score, size_t sstride,
                              const float *label, size_t lstride, const float *weight,
                              size_t wstride, const rf_rank_opts *o, rf_rank_result *out,
                              rf_error *err) RF_WUR;

/* Order counts per (query, item): W[i] = sum of label[j*lstride] over the rows j with
 * key[j] == key[i] (key e.g. a hash of query id and item id), summed in row order. O(n) (radix sort). */
RF_API rf_status rf_rank_count_weights(const uint64_t *key, size_t n, const float *label,
                                       size_t lstride, float *W, rf_error *err) RF_WUR;

/* A ranking objective: one metric at one cut-off (the AUCs have none). */
typedef enum {
    RF_OBJ_WR = 0, RF_OBJ_WR_LOG, RF_OBJ_WR_SQRT, RF_OBJ_WR_SQUARE, RF_OBJ_RECALL, RF_OBJ_NDCG,
    RF_OBJ_LIST_AUC, RF_OBJ_GAUC
} rf_rank_objective;
/* "wr", "wr_log", "wr_sqrt", "wr_square", "recall", "ndcg", "list_auc", "gauc" */
RF_API const char *rf_rank_objective_name(rf_rank_objective o);
RF_API rf_status rf_rank_objective_parse(const char *s, rf_rank_objective *o, rf_error *err);
/* The objective's value in r at cut index ci (ignored by the AUCs). */
RF_API double rf_rank_value(const rf_rank_result *r, rf_rank_objective o, int ci);

/* ---- score fusion ------------------------------------------------------------------------ */

#define RF_FUSION_MAX_TERMS 4

typedef enum { RF_FUSION_NONE = 0, RF_FUSION_MUL = 1, RF_FUSION_ADD = 2 } rf_fusion_kind;

/* score = prod_j name_j ^ coef_j (MUL) or sum_j coef_j * name_j (ADD). A term name is a score
 * column; "a|b" names a column literally called so if there is one, else the ratio a / b
 * (e.g. "ctcvr|ctr" = CVR). The search provenance is informational. */
typedef struct {
    rf_fusion_kind kind;
    int n;                                          /* terms, 1..RF_FUSION_MAX_TERMS */
    char name[RF_FUSION_MAX_TERMS][RF_NAME_MAX];
    double coef[RF_FUSION_MAX_TERMS];
    /* provenance of a searched formula ("" / 0 if none) */
    char objective[32];                             /* e.g. "wr@5" */
    double value;                                   /* its value on the search set */
} rf_fusion;

/* The formula of one score column as it is ("add:NAME=1"), into f. */
RF_API void rf_fusion_single(rf_fusion *f, const char *name);
/* Parse "mul:ctr=0.9,ctcvr|ctr=1.1" or "add:ctr=1,ctcvr=20,rel=0.5". */
RF_API rf_status rf_fusion_parse(const char *spec, rf_fusion *f, rf_error *err) RF_WUR;
/* The spec form above (each coefficient in the shortest of %.15g..%.17g that reads back to
 * the same double, so it round-trips exactly); returns buf. */
RF_API const char *rf_fusion_spec(const rf_fusion *f, char *buf, size_t n);
/* A readable form: "ctr^0.9 * (ctcvr|ctr)^1.1", "ctr + 20*ctcvr"; returns buf. */
RF_API const char *rf_fusion_pretty(const rf_fusion *f, char *buf, size_t n);

/* A named score column: x[i*stride], i < n. */
typedef struct {
    const char *name;
    const float *x;
    size_t stride;
} rf_score_col;

/* The fused score of every row, computed in double and rounded to float once: ADD
 * sum_j c_j s_j; MUL exp(sum_j c_j log(max(s_j, 1e-30))), the product without intermediate
 * underflow (a product below ~1e-38 underflows to a float tie near 0, above ~3e38 to +inf).
 * Ratio terms "a|b" divide by max(b, 1e-30). An unknown name is RF_EUSAGE naming it; a NaN
 * result is RF_ENUMERIC. */
RF_API rf_status rf_fusion_apply(const rf_fusion *f, const rf_score_col *cols, int ncols,
                                 size_t n, float *out, rf_error *err) RF_WUR;

typedef struct {
    rf_fusion_kind kind;
    int n_terms;               /* MUL: exactly 2; ADD: 2..RF_FUSION_MAX_TERMS */
    char term[RF_FUSION_MAX_TERMS][RF_NAME_MAX]; /* term 0 is the reference (ADD: coef 1) */
    rf_rank_objective objective;
    int cut;                   /* K of the objective */
    int threads;               /* threads of each evaluation (0 = the caller's OpenMP default) */
} rf_fusion_search_opts;

/* Search the coefficients maximising the objective over groups g (labels/weights as in
 * rf_rank_eval). MUL: ctr^a * x^(2-a), a on a 0.1 grid over [0, 2], then a 0.01 grid around
 * the best (a = 1, i.e. the plain product, wins ties). ADD: term 0 has coefficient 1 and term
 * j >= 1 has coefficient r_j tan(theta_j), with r_j = mean|term 0| / mean|term j| and theta_j
 * on a pi/64 grid over (-pi/2, pi/2) (coordinate ascent, 2 rounds when there are 3+ terms),
 * then a pi/1024 grid around the best. *best gets the formula with its objective and value;
 * *evals (may be NULL) the number of evaluations. */
RF_API rf_status rf_fusion_search(const rf_fusion_search_opts *so, const rf_score_col *cols,
                                  int ncols, const rf_groups *g, const float *label,
                                  size_t lstride, const float *weight, size_t wstride,
                                  rf_fusion *best, int *evals, rf_error *err) RF_WUR;

/* ---- predictions files ------------------------------------------------------------------- */

/* Column names of a CSV/TSV file's header (plain or .gz). The delimiter is a tab if the header
 * line has one, else a comma; it goes to *delim. *names is one malloc'ed block (free it). */
RF_API rf_status rf_table_header(const char *path, char *delim, char ***names, int *ncols,
                                 rf_error *err) RF_WUR;

#ifdef __cplusplus
}
#endif
#endif
