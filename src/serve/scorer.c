/* scorer.c - the transport-free scoring core (serve.h): a read-only scorer per model file, a
 * per-thread ctx with every buffer reserved up front, and rf_score, which encodes the request's
 * rows, runs the forward pass and fuses the scores exactly as rf_predict and `resflow predict`
 * do. The library code on the rf_score path calls no malloc (see serve.h for the one exception). */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resflow/pipeline.h"
#include "resflow/regression.h"
#include "resflow/serve.h"

#include "serve/scorer_impl.h"

void rf_scorer_close(rf_scorer *s)
{
    if (!s) return;
    rf_index_close(s->ix);
    rf_row_encoder_free(s->enc);
    rf_loaded_model_free(&s->lm);
    free(s);
}

rf_status rf_scorer_open(const char *path, const rf_scorer_opts *opts, rf_scorer **out, rf_error *err)
{
    if (!out || !path) return rf_errorf(err, RF_EUSAGE, "rf_scorer_open: NULL argument");
    *out = NULL;
    rf_scorer_opts o = {0};
    if (opts) o = *opts;
    if (o.max_candidates < 0 || o.threads < 0 || o.max_k < 0 || o.max_shortlist < 0)
        return rf_errorf(err, RF_EUSAGE, "scorer: max_candidates, threads, max_k and max_shortlist must be >= 0");
    rf_scorer *s = calloc(1, sizeof *s);
    if (!s) return rf_errorf(err, RF_ENOMEM, "out of memory");
    s->max_cand = o.max_candidates ? o.max_candidates : 1000;
    s->threads = o.threads ? o.threads : 1;
    rf_status st = rf_model_load(path, &s->lm, err);
    if (st) {
        free(s);
        return st;
    }
    if ((st = rf_row_encoder_for_model(&s->lm, &s->enc, err))) goto fail;
    s->ncols = rf_row_encoder_columns(s->enc, &s->cols);
    if (s->ncols > MAX_COLS) {
        st = rf_errorf(err, RF_EINTERNAL, "scorer: %d columns", s->ncols);
        goto fail;
    }
    const rf_model *m = s->lm.model;
    const rf_model_info *in = rf_model_info_of(m);
    const rf_model_spec *sp = rf_model_spec_of(m);
    s->K = in->K;
    s->product = rf_model_is_product(m);
    for (int k = 0; k < s->K; k++) {
        s->task[k] = sp->tasks[k].name;
        s->parent[k] = in->parent[k];
    }
    s->regression = sp->regression.target[0] != '\0';
    s->fused = s->lm.fusion.kind != RF_FUSION_NONE;
    /* as cmd_predict: the task probabilities, then "child|parent" conditionals whose name fits */
    for (int k = 0; k < s->K; k++) {
        snprintf(s->fc_name[s->nfc], RF_NAME_MAX, "%s", s->task[k]);
        s->fc_task[s->nfc] = k;
        s->fc_cond[s->nfc++] = 0;
    }
    for (int k = 0; k < s->K; k++) {
        if (s->parent[k] < 0) continue;
        char nm[2 * RF_NAME_MAX + 2];
        snprintf(nm, sizeof nm, "%s|%s", s->task[k], s->task[s->parent[k]]);
        if (strlen(nm) >= RF_NAME_MAX) continue;
        snprintf(s->fc_name[s->nfc], RF_NAME_MAX, "%.63s", nm);
        s->fc_task[s->nfc] = k;
        s->fc_cond[s->nfc++] = 1;
    }
    if (s->fused) {
        /* resolve the formula's terms now: a formula the model cannot give fails here */
        rf_score_col cols[2 * RF_MAX_TASKS];
        float dummy = 0;
        for (int j = 0; j < s->nfc; j++) cols[j] = (rf_score_col){s->fc_name[j], &dummy, 1};
        if ((st = rf_fusion_apply(&s->lm.fusion, cols, s->nfc, 0, &dummy, err))) goto fail;
        rf_fusion_spec(&s->lm.fusion, s->fusion_spec, sizeof s->fusion_spec);
        s->score_name = s->fusion_spec;
    } else {
        s->score_name = s->K ? s->task[s->K - 1] : "";
    }
    if (o.index && (st = rf_scorer_open_index_(s, path, &o, err))) goto fail;
    if (o.precision != RF_PREC_FP32) { /* refused here, not at the first context */
        rf_workspace *ws = rf_workspace_create(m, 1);
        st = ws ? rf_ws_set_precision(ws, m, (rf_precision)o.precision, err) : rf_errorf(err, RF_ENOMEM, "out of memory");
        rf_workspace_free(ws);
        if (st) goto fail;
        s->precision = o.precision;
    }
    *out = s;
    return RF_OK;
fail:
    rf_scorer_close(s);
    return st;
}

const rf_loaded_model *rf_scorer_model(const rf_scorer *s) { return &s->lm; }

int rf_scorer_tasks(const rf_scorer *s, const char *const **names)
{
    if (names) *names = s->task;
    return s->K;
}

int rf_scorer_columns(const rf_scorer *s, const char *const **names)
{
    if (names) *names = s->cols;
    return s->ncols;
}

int rf_scorer_has_fusion(const rf_scorer *s) { return s->fused; }
const char *rf_scorer_fusion_spec(const rf_scorer *s) { return s->fused ? s->fusion_spec : ""; }
const char *rf_scorer_score_name(const rf_scorer *s) { return s->score_name; }
int rf_scorer_is_regression(const rf_scorer *s) { return s->regression; }
int rf_scorer_max_candidates(const rf_scorer *s) { return s->max_cand; }

void rf_score_ctx_free(rf_score_ctx *c)
{
    if (!c) return;
    rf_row_batch_free(c->b);
    rf_workspace_free(c->ws);
    free(c->rows);
    free(c->P);
    free(c->C);
    free(c->S);
    free(c->EV);
    free(c->order);
    free(c->tmp);
    rf_topk_ctx_free_(c->tk);
    free(c);
}

rf_score_ctx *rf_score_ctx_create(const rf_scorer *s)
{
    rf_score_ctx *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->s = s;
    size_t n = (size_t)s->max_cand, K = (size_t)(s->K ? s->K : 1);
    c->b = rf_row_batch_create(s->enc, n);
    c->ws = rf_workspace_create(s->lm.model, s->max_cand);
    c->rows = malloc(n * sizeof *c->rows);
    c->P = malloc(n * K * sizeof *c->P);
    c->C = malloc(n * K * sizeof *c->C);
    c->S = malloc(n * sizeof *c->S);
    c->EV = s->regression ? malloc(n * sizeof *c->EV) : NULL;
    c->order = malloc(n * sizeof *c->order);
    c->tmp = malloc(n * sizeof *c->tmp);
    c->tk = s->ix ? rf_topk_ctx_create_(s) : NULL;
    rf_error e;
    if (c->ws && s->precision &&
        (rf_ws_set_precision(c->ws, s->lm.model, (rf_precision)s->precision, &e) ||
         rf_ws_score_only(c->ws, s->lm.model, &e))) {
        rf_workspace_free(c->ws); /* out of memory: checked at open otherwise */
        c->ws = NULL;
    }
    if (!c->b || !c->ws || !c->rows || !c->P || !c->C || !c->S || (s->regression && !c->EV) || !c->order ||
        !c->tmp || (s->ix && !c->tk)) {
        rf_score_ctx_free(c);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) c->rows[i] = i;
    for (int j = 0; j < MAX_COLS; j++) c->guess[j] = -1;
    for (int j = 0; j < s->nfc; j++)
        c->cols[j] = (rf_score_col){s->fc_name[j], (s->fc_cond[j] ? c->C : c->P) + s->fc_task[j], K};
    return c;
}

int rf_scorer_column_(const rf_scorer *s, const char *name) { return rf_row_encoder_find(s->enc, name); }

/* The column of the j-th name of an object: first the one named j-th last time, matched by
 * pointer (the HTTP parser passes the scorer's own column names) or by strcmp, then the
 * encoder's sorted lookup. */
static int column_at(rf_score_ctx *c, const char *name, int j)
{
    const rf_scorer *s = c->s;
    int g = c->guess[j];
    if (g >= 0 && name && (name == s->cols[g] || !strcmp(name, s->cols[g]))) return g;
    int col = rf_row_encoder_find(s->enc, name);
    if (col >= 0) c->guess[j] = col;
    return col;
}

static rf_status unknown_column(const rf_scorer *s, rf_error *err, const char *who, const char *name)
{
    char list[512] = "";
    for (int j = 0; j < s->ncols; j++) {
        size_t l = strlen(list);
        if (l + 4 >= sizeof list) break;
        snprintf(list + l, sizeof list - l, "%s%s", j ? ", " : "", s->cols[j]);
    }
    return rf_errorf(err, RF_EUSAGE, "%s: unknown column '%s' (the model reads: %s)", who,
                     name ? name : "(null)", list);
}

/* Stable merge sort of idx[0..n) by score descending (ties keep index order); tmp (n). */
static void sort_desc(const float *sc, int *idx, int *tmp, int n)
{
    int *a = idx, *b = tmp;
    for (int w = 1; w < n; w *= 2) {
        for (int lo = 0; lo < n; lo += 2 * w) {
            int mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
            int i = lo, j = mid, o = lo;
            while (i < mid && j < hi) b[o++] = sc[a[j]] > sc[a[i]] ? a[j++] : a[i++];
            while (i < mid) b[o++] = a[i++];
            while (j < hi) b[o++] = a[j++];
        }
        int *t = a;
        a = b;
        b = t;
    }
    if (a != idx) memcpy(idx, a, (size_t)n * sizeof *idx);
}

/* Encode the request's rows into the ctx's batch (cleared first). */
static rf_status encode_rows(rf_score_ctx *c, const rf_score_request *req, rf_error *err)
{
    const rf_scorer *s = c->s;
    const rf_features *cx = &req->context;
    memset(c->seen, 0, (size_t)s->ncols * sizeof *c->seen);
    rf_row_batch_clear(c->b);
    if (cx->n < 0 || (cx->n > 0 && (!cx->names || !cx->values)))
        return rf_errorf(err, RF_EUSAGE, "context: bad feature list (n = %d)", cx->n);
    for (int j = 0; j < cx->n; j++) {
        int col = rf_scorer_column_(s, cx->names[j]);
        if (col < 0) return unknown_column(s, err, "context", cx->names[j]);
        if (c->seen[col]) return rf_errorf(err, RF_EUSAGE, "context: column '%s' given twice", cx->names[j]);
        c->seen[col] = -1;
        c->cidx[j] = col;
        c->values[j] = cx->values[j];
    }
    for (int i = 0; i < req->n_candidates; i++) {
        const rf_features *cd = &req->candidates[i];
        if (cd->n < 0 || (cd->n > 0 && (!cd->names || !cd->values)))
            return rf_errorf(err, RF_EUSAGE, "candidate %d: bad feature list (n = %d)", i, cd->n);
        int n = cx->n;
        char who[32];
        for (int j = 0; j < cd->n; j++) {
            /* (n < ncols here: a name past the model's columns is unknown or repeated) */
            int col = j < MAX_COLS ? column_at(c, cd->names[j], j) : rf_scorer_column_(s, cd->names[j]);
            if (col < 0) {
                snprintf(who, sizeof who, "candidate %d", i);
                return unknown_column(s, err, who, cd->names[j]);
            }
            if (c->seen[col] == -1)
                return rf_errorf(err, RF_EUSAGE, "candidate %d: column '%s' given in both the context and the candidate",
                                 i, cd->names[j]);
            if (c->seen[col] == i + 1)
                return rf_errorf(err, RF_EUSAGE, "candidate %d: column '%s' given twice", i, cd->names[j]);
            c->seen[col] = i + 1;
            c->cidx[n] = col;
            c->values[n++] = cd->values[j];
        }
        rf_error sub;
        rf_status st = rf_row_encode_cols(s->enc, c->b, n, c->cidx, c->values, &sub);
        if (st) {
            /* a context column's bad value fails with the first candidate: say which it is */
            const char *where = "";
            for (int j = 0; j < cx->n && !where[0]; j++) {
                char tail[RF_NAME_MAX + 16];
                snprintf(tail, sizeof tail, "in column '%s'", cx->names[j]);
                if (strstr(sub.msg, tail)) where = " (a context column)";
            }
            return rf_errorf(err, st, "candidate %d: %s%s", i, sub.msg, where);
        }
    }
    return RF_OK;
}

void rf_scorer_cond_(const rf_scorer *s, const float *P, const float *Cf, int n, float *C)
{
    int K = s->K;
    for (int i = 0; i < n; i++)
        for (int k = 0; k < K; k++) {
            int p = s->parent[k];
            size_t ik = (size_t)i * K + k;
            C[ik] = s->product || p < 0 ? Cf[ik] : P[ik] / fmaxf(P[(size_t)i * K + p], 1e-30f);
        }
}

static rf_status score_rows(rf_score_ctx *c, int n, rf_error *err)
{
    const rf_scorer *s = c->s;
    const rf_model *m = s->lm.model;
    int K = s->K;
    rf_batch bt = {rf_row_batch_dataset(c->b), c->rows, n, NULL};
    rf_status st = rf_model_forward(m, c->ws, &bt, 0, err);
    if (st) return st;
    const float *P = rf_ws_probs(c->ws), *C = rf_ws_cond(c->ws);
    memcpy(c->P, P, (size_t)n * K * sizeof *c->P);
    rf_scorer_cond_(s, P, C, n, c->C);
    if (s->fused) {
        if ((st = rf_fusion_apply(&s->lm.fusion, c->cols, s->nfc, (size_t)n, c->S, err))) return st;
    } else {
        for (int i = 0; i < n; i++) c->S[i] = c->P[(size_t)i * K + K - 1];
    }
    if (s->regression && (st = rf_regression_predict(rf_model_spec_of(m), c->P, (size_t)n, c->EV, err))) return st;
    return RF_OK;
}

rf_status rf_score(rf_score_ctx *c, const rf_score_request *req, rf_score_result *res, rf_error *err)
{
    if (!c || !req || !res) return rf_errorf(err, RF_EUSAGE, "rf_score: NULL argument");
    const rf_scorer *s = c->s;
    int n = req->n_candidates;
    if (n < 0 || n > s->max_cand)
        return rf_errorf(err, RF_EUSAGE, "%d candidates: at most %d per request (rf_scorer_opts.max_candidates)", n,
                         s->max_cand);
    if (n > 0 && !req->candidates) return rf_errorf(err, RF_EUSAGE, "%d candidates and no candidate list", n);
    rf_status st = encode_rows(c, req, err);
    if (st) return st;
    if (n > 0) {
        int omp_was = omp_get_max_threads();
        omp_set_num_threads(s->threads);
        st = score_rows(c, n, err);
        omp_set_num_threads(omp_was);
        if (st) return st;
    }
    for (int i = 0; i < n; i++) c->order[i] = i;
    sort_desc(c->S, c->order, c->tmp, n);
    *res = (rf_score_result){.n = n,
                             .K = s->K,
                             .probs = c->P,
                             .cond = c->C,
                             .score = c->S,
                             .fused = s->fused,
                             .score_name = s->score_name,
                             .expected = s->regression ? c->EV : NULL,
                             .order = c->order};
    return RF_OK;
}
