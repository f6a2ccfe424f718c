/* rank_cli.h - ranking evaluation and score fusion in the resflow tool (eval, predict, fusion):
 * options, the scored set (from a model + dataset or from a predictions file), report rows,
 * tables and JSON. Implemented in cmd_fusion.c. tools/ only (may print and exit). */
#ifndef RESFLOW_RANK_CLI_H
#define RESFLOW_RANK_CLI_H

#include "cli.h"
#include "resflow/rank.h"

#define RCLI_MAX_COLS 64
#define RCLI_MAX_ROWS 32

typedef struct {
    rf_rank_opts cuts;        /* --k */
    const char *label;        /* --label: target label (task or label/column name) */
    const char *weight;       /* --weight: W column (label/column name) */
    const char *weight_by;    /* --weight-by: W = label counts per value of these fields */
    const char *predictions;  /* eval --predictions FILE */
    const char *group;        /* --group COLUMN (predictions files) */
    const char *scores;       /* --scores LIST (predictions files) */
    const char *fusions[16];  /* --fusion SPEC (repeatable) */
    int n_fusions;
    const char *objective;    /* fusion: --objective */
    const char *kind;         /* fusion: --kind mul|add|both */
    const char *ctr, *ctcvr;  /* fusion: term names */
    const char *extra[2];     /* fusion: --extra NAME (additive terms) */
    int n_extra;
    const char *test;         /* fusion: --test FILE */
    int no_save;              /* fusion: --no-save */
    int with_labels;          /* predict: --with-labels */
    int no_oracle;            /* --no-oracle */
    int allow_no_group;       /* eval --predictions: a file without a group column is scored
                                 per row (AUC, logloss), rank_set.groups NULL */
} rank_opts;

/* Remove the ranking options named in `allowed` (space-separated long names without "--")
 * from argv (both "--name value" and "--name=value"), filling ro. Returns 0 or an exit code. */
int rank_extract_opts(const char *cmd, int *argc, char **argv, rank_opts *ro, const char *allowed);

/* A set of rows to rank: groups, the target label, W, and named score columns. */
typedef struct {
    size_t n;
    rf_dataset *ds;        /* owned */
    rf_groups *groups;     /* owned */
    const float *label;
    size_t lstride;
    char label_name[RF_NAME_MAX];
    float *W;              /* owned; NULL = W is the label */
    size_t wstride;
    char wdesc[256];       /* what W is */
    rf_score_col cols[RCLI_MAX_COLS];
    char col_names[RCLI_MAX_COLS][RF_NAME_MAX];
    int ncols;
    rf_score_col oracle[RCLI_MAX_COLS]; /* the simulator's true probabilities, same names */
    int n_oracle;
    float *P, *C;          /* owned model outputs (n, K) */
    int has_fusion;        /* the model's stored formula */
    rf_fusion fusion;
    char ctr[RF_NAME_MAX], ctcvr[RF_NAME_MAX]; /* default fusion terms */
} rank_set;

/* From a loaded model and a dataset (takes ownership of ds). Returns 0 or an exit code;
 * *skip is set (and 0 returned) when the data have no group key. */
int rank_set_from_model(const rank_opts *ro, rf_loaded_model *lm, rf_dataset *ds, rank_set *rs,
                        int *skip);
/* From a predictions file. */
int rank_set_from_file(const rank_opts *ro, const char *path, int skip_bad, rank_set *rs);
void rank_set_free(rank_set *rs);

/* One report row: a formula (a plain score is "add:NAME=1") on the model or the oracle. */
typedef struct {
    char title[160];
    rf_fusion f;
    int oracle;
    rf_rank_result r;
} rank_row;

/* The default rows of `resflow eval`: every score, the stored formula, --fusion formulas,
 * the oracle's. */
int rank_default_rows(const rank_opts *ro, const rank_set *rs, rank_row *rows, int *nrows);
/* Evaluate one row on the set. Returns 0 or an exit code. */
int rank_eval_row(const rank_opts *ro, const rank_set *rs, rank_row *row);
/* Text tables (one per K) and a groups line. */
void rank_print(FILE *fp, const rank_opts *ro, const rank_set *rs, const rank_row *rows, int n);
json_t *rank_json(const rank_opts *ro, const rank_set *rs, const rank_row *rows, int n);
json_t *rank_result_json(const rank_opts *ro, const rf_rank_result *r);

#endif
