/* evalreport.h - everything `resflow eval -m MODEL` computes on a dataset, as one call: the
 * metrics of rf_evaluate, the simulator's oracle AUCs and entire-space conditional AUCs, and,
 * when the rows have a group (query/list) key, the ranking metrics per group (rank.h: WR@K and
 * its variants, Recall@K, NDCG@K, List AUC, GAUC) of every task score, every child|parent
 * conditional, the model's stored fusion formula, extra formulas and the oracle's scores, plus
 * each task's GAUC against its own label. The tool prints the report; bindings take its JSON
 * (`resflow eval --json` prints exactly rf_eval_report_json(r, 6)).
 *
 *   rf_eval_report *r;
 *   rf_eval_report_run(lm, ds, &opts, &r, err);      (opts NULL = the tool's defaults)
 *   char *json = rf_eval_report_json(r, 17);         (malloc'ed; free it)
 *   rf_eval_report_free(r);
 */
#ifndef RESFLOW_EVALREPORT_H
#define RESFLOW_EVALREPORT_H

#include "modelfile.h"
#include "rank.h"
#include "train.h"

#ifdef __cplusplus
extern "C" {
#endif

#define RF_EVAL_MAX_FUSIONS 16
#define RF_EVAL_MAX_ROWS 32 /* ranking rows of a report (more are dropped) */

typedef struct {
    int n_cuts;                 /* cut-offs K (0 = 5 and 10) */
    int cut[RF_RANK_MAX_CUTS];
    const char *label;          /* relevance label: a task or label name (NULL = the deepest
                                   task's label, the last of equals) */
    const char *weight;         /* W of WR@K: a task or label name (NULL = the relevance label) */
    const char *weight_by;      /* W = the sum of the label (or weight) over the rows with the same
                                   values of these comma-separated categorical fields (NULL = off) */
    const char *fusions[RF_EVAL_MAX_FUSIONS]; /* extra formulas to rank by (rf_fusion_parse) */
    int n_fusions;
    int no_oracle;              /* no oracle AUCs, entire-space AUCs nor oracle ranking rows */
    int threads;                /* OpenMP threads (0 = the model's train.threads) */
    int precision;              /* of the scoring (rf_predict_opts): RF_PREC_FP32 (0), RF_PREC_BF16 or RF_PREC_INT8 */
} rf_eval_opts;

/* One ranking row: a formula (a plain score is "add:NAME=1") on the model's scores or on the
 * simulator's true probabilities (oracle). */
typedef struct {
    char title[160];
    rf_fusion f;
    int oracle;
    rf_rank_result r;
} rf_eval_rank_row;

typedef struct {
    rf_eval_result metrics;     /* rf_evaluate */
    int K;
    int precision;              /* the scoring's (rf_eval_opts.precision) */
    /* the simulator's truth (has_truth: the rows carry it, and !no_oracle) */
    int has_truth;
    int oracle_set[RF_MAX_TASKS];          /* task k has a label in the rows */
    double oracle_auc[RF_MAX_TASKS];
    int es_set[RF_MAX_TASKS];              /* child task k has a counterfactual label cf_<label> */
    double es_auc[RF_MAX_TASKS], es_oracle[RF_MAX_TASKS];
    char es_label[RF_MAX_TASKS][RF_NAME_MAX];
    /* ranking (ranked: the rows have a group key) */
    int ranked;
    size_t rows;
    char label[RF_NAME_MAX];               /* the relevance label */
    char weight[256];                      /* what W is */
    rf_rank_opts cuts;
    int nrows;
    rf_eval_rank_row row[RF_EVAL_MAX_ROWS];
    double task_gauc[RF_MAX_TASKS];        /* each task's score vs its own label (NaN: none) */
    size_t gauc_used[RF_MAX_TASKS], gauc_skipped[RF_MAX_TASKS];
} rf_eval_report;

/* Evaluate lm's model on ds (rows with labels). Errors: RF_EUSAGE for an unknown label, weight
 * or weight-by field or a bad formula (naming it), the errors of rf_evaluate and rf_rank_eval. */
RF_API rf_status rf_eval_report_run(const rf_loaded_model *lm, const rf_dataset *ds, const rf_eval_opts *opts,
                                    rf_eval_report **out, rf_error *err) RF_WUR;
RF_API void rf_eval_report_free(rf_eval_report *r);

/* The report as `resflow eval --json` prints it (2-space indent), numbers with `precision`
 * significant digits (1..17; 17 reads back to the same doubles), NaN and infinities as null;
 * "ranking" only when ranked. Malloc'ed (free it); NULL when out of memory. */
RF_API char *rf_eval_report_json(const rf_eval_report *r, const rf_loaded_model *lm, int precision);

/* Pieces of the ranking evaluation that `resflow fusion` shares:
 * the relevance label: *col its label column of ds (lc: rf_resolve_labels' columns of the tasks),
 * *task the deepest task (the last of equals), or with label (a task or label name) the label's
 * column and the first task named so or built from that column (else the deepest). RF_EUSAGE
 * naming the known tasks and labels ("<opt>: no task or label named ..."). */
RF_API rf_status rf_eval_target(const rf_model *m, const rf_dataset *ds, const int *lc, const char *opt,
                                const char *label, int *task, int *col, rf_error *err) RF_WUR;
/* W of WR@K per value of categorical fields (--weight-by): W[i] = the sum of w[j * wstride] over
 * the rows j with the same ids as row i in the comma-separated fields of ds (at most 16, not
 * multi-valued; RF_EUSAGE naming an unknown one and the fields there are). */
RF_API rf_status rf_eval_weight_by(const rf_dataset *ds, const char *fields, const float *w, size_t wstride,
                                   float *W, rf_error *err) RF_WUR;

/* The metrics of one rf_eval_result ({"tasks", "loss", "regression", "rows"}) in the same form. */
RF_API char *rf_eval_result_json(const rf_model_spec *sp, const int *parent, const rf_eval_result *r,
                                 int precision);

#ifdef __cplusplus
}
#endif
#endif
