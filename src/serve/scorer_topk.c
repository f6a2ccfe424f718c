/* scorer_topk.c - rf_topk (serve.h): one context's user vectors from the twin model, the top-K
 * kernels (topk.c) over the scorer's item index, per-task probabilities and the fused score of
 * the winners. Everything per call lives in the ctx's rf_topk_ctx, made with the ctx. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "resflow/twin.h"
#include "serve/scorer_impl.h"

struct rf_topk_ctx {
    const rf_scorer *s;
    rf_tk_scratch *tk;
    float *u, *ub;                    /* (K, d), (K) the context's user vectors and biases */
    uint32_t *idx;                    /* (max_k) */
    float *sc, *dots, *P, *C;         /* (max_k), (max_k, K) x 3 */
    const char **ids;                 /* (max_k) */
    size_t per;                       /* rows of a score call: max(RF_TK_BLOCK, max_shortlist) */
    float *tP, *tC;                   /* per OpenMP thread: (per, K) each */
    rf_score_col *tcols;              /* per thread: 2 K fusion columns over its tP, tC */
    rf_tk_fuse plan;                  /* the ranking score in float per block (topk_fuse.c) */
    float *work;                      /* per thread: (per, K + 1), its scratch */
    int has_plan;
    const char *names[MAX_COLS], *values[MAX_COLS];
};

rf_status rf_scorer_open_index_(rf_scorer *s, const char *model_path, const rf_scorer_opts *o, rf_error *err)
{
    const rf_model *m = s->lm.model;
    if (!rf_model_is_twin(m))
        return rf_errorf(err, RF_EUSAGE, "model %s is not a twin-tower model (model.type: twin): it has no item index",
                         model_path);
    rf_status st = rf_index_open(o->index, &s->ix, err);
    if (st) return st;
    if ((st = rf_index_check_model(s->ix, m, model_path, err))) return st;
    if (rf_index_dim(s->ix) != rf_twin_dim(m))
        return rf_errorf(err, RF_EUSAGE, "index %s has vectors of width %d, model %s of %d", o->index,
                         rf_index_dim(s->ix), model_path, rf_twin_dim(m));
    rf_index_items(s->ix, &s->items);
    s->d = rf_twin_dim(m);
    s->max_k = o->max_k ? o->max_k : 1000;
    s->max_sl = o->max_shortlist ? o->max_shortlist : (10 * s->max_k > 1000 ? 10 * s->max_k : 1000);
    if (s->max_sl < s->max_k) s->max_sl = s->max_k;
    int F = rf_model_info_of(m)->F;
    for (int c = 0; c < s->ncols; c++)
        s->item_col[c] = (c < F ? rf_twin_field_side(m, c) : rf_twin_dense_side(m, c - F)) == 1;
    return RF_OK;
}

const rf_index *rf_scorer_index(const rf_scorer *s) { return s->ix; }
int rf_scorer_max_k(const rf_scorer *s) { return s->ix ? s->max_k : 0; }
int rf_scorer_max_shortlist(const rf_scorer *s) { return s->ix ? s->max_sl : 0; }

void rf_topk_ctx_free_(rf_topk_ctx *t)
{
    if (!t) return;
    rf_tk_scratch_free(t->tk);
    free(t->u), free(t->ub), free(t->idx), free(t->sc), free(t->dots), free(t->P), free(t->C);
    free(t->ids), free(t->tP), free(t->tC), free(t->tcols), free(t->work);
    free(t);
}

static void twin_logits(const void *m, const float *dot, const float *ub, const float *vb, float *z)
{
    rf_twin_logits(m, dot, ub, vb, z);
}

/* The fast plan of the scorer's ranking score: its fusion formula over the probability and
 * conditional columns, or the last task's probability; the model's logits function only when
 * its logit links change the logits (probed: dots of 1 stay 1 without links). 0 when the
 * formula does not resolve (the search then scores with the exact formula alone). */
static int fuse_plan(const rf_scorer *s, rf_tk_fuse *p)
{
    int K = s->K;
    if (s->fused) {
        const char *names[2 * RF_MAX_TASKS];
        rf_tk_fuse_col cols[2 * RF_MAX_TASKS];
        for (int j = 0; j < s->nfc; j++) {
            int task = s->fc_task[j];
            names[j] = s->fc_name[j];
            cols[j] = (rf_tk_fuse_col){task, s->fc_cond[j] && !s->product ? s->parent[task] : -1};
        }
        rf_error e;
        if (rf_tk_fuse_plan(p, K, &s->lm.fusion, names, cols, s->nfc, &e)) return 0;
    } else {
        *p = (rf_tk_fuse){.K = K, .mul = 0, .n = 1, .a = {{K - 1, -1}}, .b = {{-1, -1}}, .coef = {1.0f}};
    }
    float one[RF_MAX_TASKS], z[RF_MAX_TASKS];
    for (int k = 0; k < K; k++) one[k] = 1.0f;
    rf_twin_logits(s->lm.model, one, NULL, NULL, z);
    for (int k = 0; k < K; k++)
        if (z[k] != 1.0f) p->logits = twin_logits, p->m = s->lm.model;
    return 1;
}

rf_topk_ctx *rf_topk_ctx_create_(const rf_scorer *s)
{
    rf_topk_ctx *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    size_t K = (size_t)s->K, mk = (size_t)s->max_k, nt = (size_t)s->threads;
    t->s = s;
    t->per = (size_t)(RF_TK_BLOCK > s->max_sl ? RF_TK_BLOCK : s->max_sl);
    if (t->per < mk) t->per = mk;
    t->tk = rf_tk_scratch_create(s->K, s->d, 1, s->max_k, s->max_sl, s->threads);
    t->u = malloc(K * (size_t)s->d * sizeof *t->u);
    t->ub = malloc(K * sizeof *t->ub);
    t->idx = malloc(mk * sizeof *t->idx);
    t->sc = malloc(mk * sizeof *t->sc);
    t->dots = malloc(mk * K * sizeof *t->dots);
    t->P = malloc(mk * K * sizeof *t->P);
    t->C = malloc(mk * K * sizeof *t->C);
    t->ids = malloc(mk * sizeof *t->ids);
    t->tP = malloc(nt * t->per * K * sizeof *t->tP);
    t->tC = malloc(nt * t->per * K * sizeof *t->tC);
    t->tcols = malloc(nt * 2 * RF_MAX_TASKS * sizeof *t->tcols);
    t->work = malloc(nt * t->per * (K + 1) * sizeof *t->work);
    if (!t->tk || !t->u || !t->ub || !t->idx || !t->sc || !t->dots || !t->P || !t->C || !t->ids || !t->tP ||
        !t->tC || !t->tcols || !t->work) {
        rf_topk_ctx_free_(t);
        return NULL;
    }
    t->has_plan = fuse_plan(s, &t->plan);
    for (size_t th = 0; th < nt; th++)
        for (int j = 0; j < s->nfc; j++)
            t->tcols[th * 2 * RF_MAX_TASKS + (size_t)j] =
                (rf_score_col){s->fc_name[j], (s->fc_cond[j] ? t->tC : t->tP) + th * t->per * K + s->fc_task[j], K};
    return t;
}

/* Probabilities P, conditionals C and the ranking score out of n items from their dots (n, K)
 * and biases vb (n, K; NULL = 0); cols: the fusion plan over P and C. */
static void score_items(const rf_scorer *s, const float *ub, const float *dots, const float *vb, int n, float *P,
                        float *C, const rf_score_col *cols, float *out)
{
    const rf_model *m = s->lm.model;
    int K = s->K;
    float zero[RF_MAX_TASKS] = {0}, z[RF_MAX_TASKS];
    for (int i = 0; i < n; i++) {
        rf_twin_logits(m, dots + (size_t)i * K, ub, vb ? vb + (size_t)i * K : zero, z);
        for (int k = 0; k < K; k++) P[(size_t)i * K + k] = 1.0f / (1.0f + expf(-z[k]));
    }
    rf_scorer_cond_(s, P, P, n, C);
    rf_error e;
    if (s->fused) {
        if (rf_fusion_apply(&s->lm.fusion, cols, s->nfc, (size_t)n, out, &e))
            for (int i = 0; i < n; i++) out[i] = isnan(out[i]) ? -INFINITY : out[i];
    } else {
        for (int i = 0; i < n; i++) out[i] = P[(size_t)i * K + K - 1];
    }
}

/* rf_tk_score_fn over the ctx's per-thread buffers */
static void score_fn(void *ud, int q, int thread, const float *dots, const float *vb, int n, float *out)
{
    (void)q;
    rf_topk_ctx *t = ud;
    size_t off = (size_t)thread * t->per * (size_t)t->s->K;
    score_items(t->s, t->ub, dots, vb, n, t->tP + off, t->tC + off, t->tcols + (size_t)thread * 2 * RF_MAX_TASKS,
                out);
}

/* rf_tk_score_fn: the fast ranking score (the scan's; the exact one re-ranks what it keeps) */
static void fast_fn(void *ud, int q, int thread, const float *dots, const float *vb, int n, float *out)
{
    (void)q;
    rf_topk_ctx *t = ud;
    rf_tk_fuse_block(&t->plan, t->ub, dots, vb, n, t->work + (size_t)thread * t->per * (size_t)(t->s->K + 1), out);
}

/* The context's row: its columns (no item-side one), plus 0 for item-side dense columns. */
static rf_status context_row(rf_score_ctx *c, const rf_features *cx, int *m, rf_error *err)
{
    const rf_scorer *s = c->s;
    rf_topk_ctx *t = c->tk;
    if (cx->n < 0 || (cx->n > 0 && (!cx->names || !cx->values)))
        return rf_errorf(err, RF_EUSAGE, "context: bad feature list (n = %d)", cx->n);
    memset(c->seen, 0, (size_t)s->ncols * sizeof *c->seen);
    int n = 0;
    for (int j = 0; j < cx->n; j++) {
        int col = rf_scorer_column_(s, cx->names[j]);
        if (col < 0)
            return rf_errorf(err, RF_EUSAGE, "context: unknown column '%s'", cx->names[j] ? cx->names[j] : "(null)");
        if (s->item_col[col])
            return rf_errorf(err, RF_EUSAGE,
                             "context: column '%s' is an item-side column (top-K ranks the items of the index)",
                             cx->names[j]);
        if (c->seen[col]) return rf_errorf(err, RF_EUSAGE, "context: column '%s' given twice", cx->names[j]);
        c->seen[col] = 1;
        t->names[n] = cx->names[j];
        t->values[n++] = cx->values[j];
    }
    int F = rf_model_info_of(s->lm.model)->F;
    for (int col = F; col < s->ncols; col++)
        if (s->item_col[col]) t->names[n] = s->cols[col], t->values[n++] = "0";
    *m = n;
    return RF_OK;
}

rf_status rf_topk(rf_score_ctx *c, const rf_features *context, int k, const rf_topk_opts *opts, rf_topk_result *res,
                  rf_error *err)
{
    if (!c || !context || !res) return rf_errorf(err, RF_EUSAGE, "rf_topk: NULL argument");
    const rf_scorer *s = c->s;
    rf_topk_ctx *t = c->tk;
    if (!s->ix || !t) return rf_errorf(err, RF_EUSAGE, "top-k: the scorer has no item index (rf_scorer_opts.index)");
    if (k < 1 || k > s->max_k) return rf_errorf(err, RF_EUSAGE, "k %d: must be in 1..%d", k, s->max_k);
    rf_topk_opts o = opts ? *opts : (rf_topk_opts){0};
    rf_tk_opts ko = {.k = k, .quantized = o.quantized != 0, .shortlist = o.shortlist, .threads = s->threads,
                     .score = s->K == 1 && !s->fused ? NULL : score_fn, .ud = t};
    if (ko.score && t->has_plan) ko.approx = fast_fn;
    if (o.shortlist < 0 || rf_tk_shortlist(&ko) > s->max_sl)
        return rf_errorf(err, RF_EUSAGE, "shortlist %d: must be in 0..%d", o.shortlist, s->max_sl);
    int m = 0;
    rf_status st = context_row(c, context, &m, err);
    if (st) return st;
    rf_row_batch_clear(c->b);
    rf_error sub;
    if ((st = rf_row_encode(s->enc, c->b, m, t->names, t->values, &sub)))
        return rf_errorf(err, st, "context: %s", sub.msg);
    size_t row0 = 0;
    rf_batch bt = {rf_row_batch_dataset(c->b), &row0, 1, NULL};
    int omp_was = omp_get_max_threads();
    omp_set_num_threads(s->threads);
    st = rf_twin_user_vectors(s->lm.model, c->ws, &bt, t->u, t->ub, err);
    int n = 0;
    if (!st)
        st = rf_tk_search(&s->items, t->u, 1, &ko, t->tk, t->idx, t->sc, t->dots, &n, err);
    omp_set_num_threads(omp_was);
    if (st) return st;
    /* the winners' probabilities and exact scores (the kernel ranked K == 1 by its logit) */
    float *vb = t->tP; /* gather the winners' biases into the thread-0 buffer (per >= max_k) */
    for (int j = 0; j < n; j++)
        memcpy(vb + (size_t)j * s->K, s->items.vb + (size_t)t->idx[j] * s->K, (size_t)s->K * sizeof *vb);
    rf_score_col cols[2 * RF_MAX_TASKS];
    for (int j = 0; j < s->nfc; j++)
        cols[j] = (rf_score_col){s->fc_name[j], (s->fc_cond[j] ? t->C : t->P) + s->fc_task[j], (size_t)s->K};
    score_items(s, t->ub, t->dots, vb, n, t->P, t->C, cols, t->sc);
    for (int j = 0; j < n; j++) t->ids[j] = rf_index_id(s->ix, t->idx[j]);
    *res = (rf_topk_result){.n = n,
                            .K = s->K,
                            .item = t->idx,
                            .id = t->ids,
                            .score = t->sc,
                            .probs = t->P,
                            .fused = s->fused,
                            .score_name = s->score_name};
    return RF_OK;
}
