/* evalreport.c - what `resflow eval -m MODEL` computes (evalreport.h): rf_evaluate's metrics, the
 * simulator's oracle and entire-space AUCs, the ranking metrics per group of every score and
 * formula, each task's GAUC; and the report's JSON. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "resflow/evalreport.h"

/* ---- the scored set ---------------------------------------------------------------------- */

#define MAX_COLS 64

typedef struct {
    const float *label;
    size_t lstride;
    float *W; /* owned; NULL: W is the label */
    rf_score_col cols[MAX_COLS];
    char col_names[MAX_COLS][RF_NAME_MAX];
    int ncols;
    rf_score_col oracle[MAX_COLS];
    int n_oracle;
} scored;

static void add_col(scored *s, const char *name, const float *x, size_t stride)
{
    if (s->ncols == MAX_COLS) return;
    snprintf(s->col_names[s->ncols], RF_NAME_MAX, "%s", name);
    s->cols[s->ncols] = (rf_score_col){s->col_names[s->ncols], x, stride};
    s->ncols++;
}

static int task_depth(const rf_model *m, int k)
{
    int d = 0;
    while (rf_model_info_of(m)->parent[k] >= 0 && d <= RF_MAX_TASKS) {
        k = rf_model_info_of(m)->parent[k];
        d++;
    }
    return d;
}

rf_status rf_eval_target(const rf_model *m, const rf_dataset *ds, const int *lc, const char *opt, const char *label,
                         int *task, int *col, rf_error *err)
{
    const int K = rf_model_info_of(m)->K;
    int target = 0;
    for (int k = 0; k < K; k++)
        if (task_depth(m, k) >= task_depth(m, target)) target = k;
    *task = target;
    *col = lc[target];
    if (!label) return RF_OK;
    *col = rf_dataset_label_index(ds, label);
    for (int k = 0; k < K; k++)
        if (!strcmp(rf_model_spec_of(m)->tasks[k].name, label)) *col = lc[k];
    for (int k = 0; k < K && *col >= 0; k++)
        if (!strcmp(rf_model_spec_of(m)->tasks[k].name, label) || lc[k] == *col) {
            *task = k;
            break;
        }
    if (*col >= 0) return RF_OK;
    char have[1024] = "";
    for (int k = 0; k < K; k++) {
        size_t l = strlen(have);
        snprintf(have + l, sizeof have - l, "%s%s", k ? ", " : "", rf_model_spec_of(m)->tasks[k].name);
    }
    for (int j = 0; j < ds->K; j++) {
        size_t l = strlen(have);
        snprintf(have + l, sizeof have - l, ", %s", ds->label_names[j]);
    }
    return rf_errorf(err, RF_EUSAGE, "%s: no task or label named '%s' (known: %s)", opt, label, have);
}

rf_status rf_eval_weight_by(const rf_dataset *ds, const char *fields, const float *w, size_t wstride, float *W,
                            rf_error *err)
{
    int fidx[16], nf = 0;
    char list[512];
    snprintf(list, sizeof list, "%s", fields);
    for (char *save = NULL, *tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        int f = -1;
        for (int j = 0; j < ds->F; j++)
            if (!strcmp(ds->fields[j].name, tok)) f = j;
        if (f < 0) {
            char have[1024] = "";
            for (int j = 0; j < ds->F; j++) {
                size_t l = strlen(have);
                snprintf(have + l, sizeof have - l, "%s%s", j ? ", " : "", ds->fields[j].name);
            }
            return rf_errorf(err, RF_EUSAGE, "--weight-by: no categorical field '%s' (fields: %s)", tok, have);
        }
        if (ds->mv_off && ds->mv_off[f])
            return rf_errorf(err, RF_EUSAGE, "--weight-by: field '%s' is multi-valued", tok);
        if (nf == 16) return rf_errorf(err, RF_EUSAGE, "--weight-by: at most 16 fields");
        fidx[nf++] = f;
    }
    size_t n = ds->n;
    uint64_t *key = malloc((n ? n : 1) * sizeof *key);
    if (!key) return rf_errorf(err, RF_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        uint32_t ids[16];
        for (int j = 0; j < nf; j++) ids[j] = ds->cat[i * (size_t)ds->F + (size_t)fidx[j]];
        key[i] = XXH3_64bits(ids, (size_t)nf * sizeof ids[0]);
    }
    rf_status st = rf_rank_count_weights(key, n, w, wstride, W, err);
    free(key);
    return st;
}

/* W from the weight column (NULL: the label) and/or the weight-by fields of ds. */
static rf_status make_weights(const rf_eval_opts *o, const rf_dataset *ds, scored *s, const float *wcol,
                              size_t wstride, rf_eval_report *r, rf_error *err)
{
    size_t n = ds->n;
    if (!o->weight_by && !wcol) {
        snprintf(r->weight, sizeof r->weight, "the row's %s label", r->label);
        return RF_OK;
    }
    if (!(s->W = malloc((n ? n : 1) * sizeof *s->W))) return rf_errorf(err, RF_ENOMEM, "out of memory");
    if (!o->weight_by) {
        for (size_t i = 0; i < n; i++) s->W[i] = wcol[i * wstride];
        snprintf(r->weight, sizeof r->weight, "column %s", o->weight);
        return RF_OK;
    }
    rf_status st = rf_eval_weight_by(ds, o->weight_by, wcol ? wcol : s->label, wcol ? wstride : s->lstride, s->W, err);
    if (!st)
        snprintf(r->weight, sizeof r->weight, "sum of %s over the rows with the same %s in this set",
                 wcol ? o->weight : r->label, o->weight_by);
    return st;
}

/* The score columns (tasks, then child|parent conditionals), the oracle's, the label and W. */
static rf_status scored_set(const rf_loaded_model *lm, const rf_dataset *ds, const rf_eval_opts *o, const int *lc,
                            const float *P, const float *C, scored *s, rf_eval_report *r, rf_error *err)
{
    const rf_model *m = lm->model;
    const rf_model_spec *sp = rf_model_spec_of(m);
    const int K = rf_model_info_of(m)->K, *parent = rf_model_info_of(m)->parent;
    for (int k = 0; k < K; k++) add_col(s, sp->tasks[k].name, P + k, (size_t)K);
    for (int k = 0; k < K; k++) {
        if (parent[k] < 0) continue;
        char nm[2 * RF_NAME_MAX + 2];
        snprintf(nm, sizeof nm, "%s|%s", sp->tasks[k].name, sp->tasks[parent[k]].name);
        if (strlen(nm) < RF_NAME_MAX) add_col(s, nm, C + k, (size_t)K);
    }
    int truth = ds->truth && ds->n > 0; /* labels derived from expressions have none (NaN) */
    for (int k = 0; truth && k < K; k++) truth = !isnan(ds->truth[lc[k]]);
    if (truth && !o->no_oracle)
        for (int k = 0; k < K; k++) {
            s->oracle[k] = (rf_score_col){s->col_names[k], ds->truth + lc[k], (size_t)ds->K};
            s->n_oracle = k + 1;
        }
    int target, col, wc = -1;
    rf_status st = rf_eval_target(m, ds, lc, "--label", o->label, &target, &col, err);
    if (st) return st;
    snprintf(r->label, sizeof r->label, "%s", ds->label_names[col]);
    s->label = ds->labels + col;
    s->lstride = (size_t)ds->K;
    if (o->weight && (st = rf_eval_target(m, ds, lc, "--weight", o->weight, &target, &wc, err))) return st;
    return make_weights(o, ds, s, wc >= 0 ? ds->labels + wc : NULL, (size_t)ds->K, r, err);
}

/* ---- rows ---------------------------------------------------------------------------------- */

static void push_row(rf_eval_report *r, const char *title, const rf_fusion *f, int oracle)
{
    if (r->nrows == RF_EVAL_MAX_ROWS) return;
    rf_eval_rank_row *w = &r->row[r->nrows++];
    memset(w, 0, sizeof *w);
    snprintf(w->title, sizeof w->title, "%s%.150s", oracle ? "oracle " : "", title);
    w->f = *f;
    w->oracle = oracle;
}

/* Every score, the stored formula, the extra formulas; then the same on the oracle's scores. */
static void default_rows(const rf_loaded_model *lm, const scored *s, const rf_fusion *extra, int n_extra,
                         rf_eval_report *r)
{
    for (int o = 0; o < (s->n_oracle ? 2 : 1); o++) {
        /* the model's conditional scores are also ranked on the oracle side, as ratios of true
           probabilities */
        for (int i = 0; i < s->ncols; i++) {
            rf_fusion f;
            rf_fusion_single(&f, s->col_names[i]);
            push_row(r, s->col_names[i], &f, o);
        }
        char buf[300], pretty[256];
        if (lm->fusion.kind != RF_FUSION_NONE) {
            snprintf(buf, sizeof buf, "fusion: %s", rf_fusion_pretty(&lm->fusion, pretty, sizeof pretty));
            push_row(r, buf, &lm->fusion, o);
        }
        for (int i = 0; i < n_extra; i++) push_row(r, rf_fusion_pretty(&extra[i], pretty, sizeof pretty), &extra[i], o);
    }
}

static rf_status eval_row(const scored *s, const rf_groups *g, size_t n, const rf_rank_opts *cuts,
                          rf_eval_rank_row *row, float *buf, rf_error *err)
{
    const rf_score_col *cols = row->oracle ? s->oracle : s->cols;
    int nc = row->oracle ? s->n_oracle : s->ncols;
    rf_status st = rf_fusion_apply(&row->f, cols, nc, n, buf, err);
    if (!st) st = rf_rank_eval(g, buf, 1, s->label, s->lstride, s->W, s->W ? 1 : 0, cuts, &row->r, err);
    return st;
}

/* ---- the truth ----------------------------------------------------------------------------- */

static void truth_aucs(const rf_model *m, const rf_dataset *ds, const float *C, rf_eval_report *r)
{
    const rf_model_spec *sp = rf_model_spec_of(m);
    const int K = rf_model_info_of(m)->K, *parent = rf_model_info_of(m)->parent;
    const size_t TK = (size_t)ds->K, n = ds->n;
    r->has_truth = 1;
    for (int k = 0; k < K; k++) {
        int lc = rf_dataset_label_index(ds, sp->tasks[k].label);
        if (lc < 0) continue;
        r->oracle_set[k] = 1;
        r->oracle_auc[k] = rf_auc_strided(ds->truth + lc, TK, ds->labels + lc, TK, NULL, 0, n, NULL);
    }
    for (int k = 0; k < K; k++) {
        int cf = parent[k] >= 0 ? rf_dataset_cf_label_index(ds, sp->tasks[k].label) : -1;
        if (cf < 0) continue;
        r->es_set[k] = 1;
        r->es_auc[k] = rf_auc_strided(C + k, (size_t)K, ds->labels + cf, TK, NULL, 0, n, NULL);
        r->es_oracle[k] = rf_auc_strided(ds->truth + cf, TK, ds->labels + cf, TK, NULL, 0, n, NULL);
        snprintf(r->es_label[k], RF_NAME_MAX, "%s", ds->label_names[cf]);
    }
}

/* ---- the report ---------------------------------------------------------------------------- */

static rf_status ranking(const rf_loaded_model *lm, const rf_dataset *ds, const rf_eval_opts *o, const float *P,
                         const float *C, rf_eval_report *r, rf_error *err)
{
    const rf_model *m = lm->model;
    const int K = rf_model_info_of(m)->K;
    int lc[RF_MAX_TASKS];
    rf_fusion extra[RF_EVAL_MAX_FUSIONS];
    int n_extra = o->n_fusions < RF_EVAL_MAX_FUSIONS ? o->n_fusions : RF_EVAL_MAX_FUSIONS;
    rf_status st = rf_resolve_labels(m, ds, lc, err);
    for (int i = 0; !st && i < n_extra; i++) st = rf_fusion_parse(o->fusions[i], &extra[i], err);
    if (st) return st;
    scored *s = calloc(1, sizeof *s);
    float *buf = malloc((ds->n ? ds->n : 1) * sizeof *buf);
    rf_groups *g = NULL;
    if (!s || !buf) st = rf_errorf(err, RF_ENOMEM, "out of memory");
    if (!st) st = scored_set(lm, ds, o, lc, P, C, s, r, err);
    if (!st) st = rf_groups_create(ds->group, ds->n, &g, err);
    if (!st) default_rows(lm, s, extra, n_extra, r);
    for (int i = 0; !st && i < r->nrows; i++) st = eval_row(s, g, ds->n, &r->cuts, &r->row[i], buf, err);
    rf_rank_opts one = {1, {1}, r->cuts.threads}; /* each task's GAUC against its own label */
    for (int k = 0; !st && k < K; k++) {
        rf_rank_result t;
        st = rf_rank_eval(g, P + k, (size_t)K, ds->labels + lc[k], (size_t)ds->K, NULL, 0, &one, &t, err);
        r->task_gauc[k] = t.gauc;
        r->gauc_used[k] = t.auc_groups;
        r->gauc_skipped[k] = t.single_class_groups;
    }
    rf_groups_free(g);
    if (s) free(s->W);
    free(s);
    free(buf);
    return st;
}

rf_status rf_eval_report_run(const rf_loaded_model *lm, const rf_dataset *ds, const rf_eval_opts *opts,
                             rf_eval_report **out, rf_error *err)
{
    rf_eval_opts o0;
    memset(&o0, 0, sizeof o0);
    const rf_eval_opts *o = opts ? opts : &o0;
    *out = NULL;
    if (o->n_cuts < 0 || o->n_cuts > RF_RANK_MAX_CUTS)
        return rf_errorf(err, RF_EUSAGE, "eval: %d cut-offs (1..%d)", o->n_cuts, RF_RANK_MAX_CUTS);
    if (o->n_fusions < 0 || o->n_fusions > RF_EVAL_MAX_FUSIONS)
        return rf_errorf(err, RF_EUSAGE, "eval: %d formulas (at most %d)", o->n_fusions, RF_EVAL_MAX_FUSIONS);
    rf_eval_report *r = calloc(1, sizeof *r);
    if (!r) return rf_errorf(err, RF_ENOMEM, "out of memory");
    const rf_model *m = lm->model;
    const int K = rf_model_info_of(m)->K;
    int threads = o->threads ? o->threads : lm->cfg.train.threads;
    r->K = K;
    r->precision = o->precision;
    r->rows = ds->n;
    r->cuts.threads = threads;
    r->cuts.n_cuts = o->n_cuts ? o->n_cuts : 2;
    for (int c = 0; c < r->cuts.n_cuts; c++) r->cuts.cut[c] = o->n_cuts ? o->cut[c] : (c ? 10 : 5);
    for (int k = 0; k < K; k++) r->task_gauc[k] = NAN;
    int want_truth = ds->truth && ds->n > 0 && !o->no_oracle;
    /* the rows are scored once: the metrics, the oracle comparisons and the ranking share it */
    float *P = malloc((ds->n ? ds->n : 1) * (size_t)K * sizeof *P);
    float *C = malloc((ds->n ? ds->n : 1) * (size_t)K * sizeof *C);
    rf_status st = P && C ? rf_predict_ex(m, ds, &(rf_predict_opts){threads, o->precision}, P, C, err)
                          : rf_errorf(err, RF_ENOMEM, "out of memory");
    if (!st) st = rf_evaluate_probs(m, ds, P, C, &r->metrics, err);
    if (!st && want_truth) truth_aucs(m, ds, C, r);
    if (!st && ds->group) {
        r->ranked = 1;
        st = ranking(lm, ds, o, P, C, r, err);
    }
    free(P);
    free(C);
    if (st) {
        free(r);
        return st;
    }
    *out = r;
    return RF_OK;
}

void rf_eval_report_free(rf_eval_report *r) { free(r); }

/* ---- JSON ---------------------------------------------------------------------------------- */

/* A JSON number, or null when not finite (jansson rejects NaN/Inf). */
static json_t *num(double v) { return isfinite(v) ? json_real(v) : json_null(); }

static json_t *metrics_obj(const rf_model_spec *sp, const int *parent, const rf_eval_result *r)
{
    json_t *o = json_object(), *tasks = json_object();
    for (int k = 0; k < sp->K; k++) {
        const rf_task_metrics *t = &r->task[k];
        json_t *j = json_object();
        json_object_set_new(j, "auc", num(t->auc));
        json_object_set_new(j, "logloss", num(t->logloss));
        json_object_set_new(j, "mean_pred", num(t->mean_pred));
        json_object_set_new(j, "observed", num(t->mean_label));
        json_object_set_new(j, "calibration", num(t->calib));
        json_object_set_new(j, "n", json_integer((json_int_t)t->n));
        json_object_set_new(j, "positives", json_integer((json_int_t)t->positives));
        if (parent[k] >= 0) {
            json_object_set_new(j, "parent", json_string(sp->tasks[parent[k]].name));
            json_object_set_new(j, "conditional_auc", num(r->cond[k].auc));
            json_object_set_new(j, "conditional_n", json_integer((json_int_t)r->cond[k].n));
            json_object_set_new(j, "increase_share", num(r->increase[k]));
        }
        json_object_set_new(tasks, sp->tasks[k].name, j);
    }
    json_object_set_new(o, "tasks", tasks);
    json_object_set_new(o, "loss", num(r->loss));
    const rf_regression_cfg *rg = &sp->regression;
    if (rg->target[0]) {
        json_t *g = json_object(), *th = json_array();
        for (int i = 0; i < rg->thresholds.n; i++) json_array_append_new(th, json_real(rg->thresholds.v[i]));
        json_object_set_new(g, "target", json_string(rg->target));
        json_object_set_new(g, "head", json_string(rg->head == RF_REG_TRADITIONAL ? "traditional" : "progressive"));
        json_object_set_new(g, "thresholds", th);
        json_object_set_new(g, "mse", num(r->reg.mse));
        json_object_set_new(g, "rmse", num(r->reg.rmse));
        json_object_set_new(g, "mae", num(r->reg.mae));
        json_object_set_new(g, "n", json_integer((json_int_t)r->reg.n));
        json_object_set_new(o, "regression", g);
    }
    json_object_set_new(o, "rows", json_integer((json_int_t)r->n));
    return o;
}

static char *dump(json_t *j, int precision)
{
    if (precision < 1) precision = 1;
    if (precision > 17) precision = 17;
    char *s = j ? json_dumps(j, JSON_INDENT(2) | JSON_REAL_PRECISION(precision)) : NULL;
    json_decref(j);
    return s;
}

char *rf_eval_result_json(const rf_model_spec *sp, const int *parent, const rf_eval_result *r, int precision)
{
    return dump(metrics_obj(sp, parent, r), precision);
}

static json_t *rank_metrics(const rf_rank_opts *cuts, const rf_rank_result *r)
{
    json_t *m = json_object();
    for (int c = 0; c < cuts->n_cuts; c++) {
        char key[64];
        for (int v = 0; v < RF_WR_VARIANTS; v++) {
            snprintf(key, sizeof key, "%s@%d", rf_wr_variant_name(v), cuts->cut[c]);
            json_object_set_new(m, key, num(r->wr[v][c]));
        }
        snprintf(key, sizeof key, "recall@%d", cuts->cut[c]);
        json_object_set_new(m, key, num(r->recall[c]));
        snprintf(key, sizeof key, "ndcg@%d", cuts->cut[c]);
        json_object_set_new(m, key, num(r->ndcg[c]));
    }
    json_object_set_new(m, "list_auc", num(r->list_auc));
    json_object_set_new(m, "gauc", num(r->gauc));
    return m;
}

static json_t *ranking_obj(const rf_eval_report *r, const rf_model_spec *sp)
{
    json_t *j = json_object(), *cuts = json_array(), *arr = json_array(), *tg = json_object();
    json_object_set_new(j, "rows", json_integer((json_int_t)r->rows));
    json_object_set_new(j, "label", json_string(r->label));
    json_object_set_new(j, "weight", json_string(r->weight));
    for (int c = 0; c < r->cuts.n_cuts; c++) json_array_append_new(cuts, json_integer(r->cuts.cut[c]));
    json_object_set_new(j, "cutoffs", cuts);
    if (r->nrows) {
        const rf_rank_result *g = &r->row[0].r;
        json_object_set_new(j, "groups",
                            json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "total", (json_int_t)g->groups, "wr_used",
                                      (json_int_t)g->wr_groups, "zero_weight_skipped", (json_int_t)g->zero_weight_groups,
                                      "positive_used", (json_int_t)g->pos_groups, "no_positive_skipped",
                                      (json_int_t)g->no_pos_groups, "auc_used", (json_int_t)g->auc_groups,
                                      "single_class_skipped", (json_int_t)g->single_class_groups));
    }
    for (int i = 0; i < r->nrows; i++) {
        char spec[600];
        json_t *o = json_object();
        json_object_set_new(o, "name", json_string(r->row[i].title));
        json_object_set_new(o, "formula", json_string(rf_fusion_spec(&r->row[i].f, spec, sizeof spec)));
        json_object_set_new(o, "oracle", json_boolean(r->row[i].oracle));
        json_object_set_new(o, "metrics", rank_metrics(&r->cuts, &r->row[i].r));
        json_array_append_new(arr, o);
    }
    json_object_set_new(j, "scores", arr);
    for (int k = 0; k < r->K; k++)
        json_object_set_new(tg, sp->tasks[k].name,
                            json_pack("{s:o,s:I,s:I}", "gauc", isnan(r->task_gauc[k]) ? json_null() : json_real(r->task_gauc[k]),
                                      "groups_used", (json_int_t)r->gauc_used[k], "single_class_skipped",
                                      (json_int_t)r->gauc_skipped[k]));
    json_object_set_new(j, "task_gauc", tg);
    return j;
}

char *rf_eval_report_json(const rf_eval_report *r, const rf_loaded_model *lm, int precision)
{
    const rf_model_spec *sp = rf_model_spec_of(lm->model);
    json_t *j = metrics_obj(sp, rf_model_info_of(lm->model)->parent, &r->metrics);
    if (r->has_truth) {
        json_t *or = json_object(), *es = json_object();
        for (int k = 0; k < r->K; k++)
            if (r->oracle_set[k]) json_object_set_new(or, sp->tasks[k].name, json_real(r->oracle_auc[k]));
        for (int k = 0; k < r->K; k++)
            if (r->es_set[k])
                json_object_set_new(es, sp->tasks[k].name, json_pack("{s:f,s:f,s:s}", "auc", r->es_auc[k], "oracle",
                                                                     r->es_oracle[k], "label", r->es_label[k]));
        json_object_set_new(j, "oracle_auc", or);
        json_object_set_new(j, "es_conditional_auc", es);
    }
    if (r->ranked) json_object_set_new(j, "ranking", ranking_obj(r, sp));
    if (r->precision == RF_PREC_BF16 || r->precision == RF_PREC_INT8) /* fp32: absent */
        json_object_set_new(j, "precision", json_string(r->precision == RF_PREC_BF16 ? "bf16" : "int8"));
    return dump(j, precision);
}
