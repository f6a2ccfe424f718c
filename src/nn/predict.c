/* predict.c - scoring rows with a trained model (rf_predict_ex) and the evaluation built on it
 * (rf_evaluate, rf_evaluate_probs).
 *
 * Prediction is data-parallel over fixed batches of PREDICT_BATCH rows: each OpenMP thread
 * takes whole batches with its own workspace, and every GEMM and elementwise pass of a batch runs
 * on that one thread. So there is no synchronisation inside a batch (the per-layer glue of the
 * forward pass, serial when the threads split each GEMM, runs on all threads at once), a batch's
 * activations stay in the core's L2 (512 rows x 256 fp32 = 512 KiB per layer; 4096-row batches
 * spilled to L3: docs/performance.md, "Inference"), and the scores do not depend on the number of
 * threads: a row's batch and its place in it are the same for any thread count.
 */
#include <limits.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "nn/model_impl.h"
#include "resflow/regression.h"
#include "resflow/train.h"

#define PREDICT_BATCH 512

/* One batch's scores into probs / cond (rows o .. o + nb). */
static void put_scores(const rf_model *m, const rf_workspace *ws, size_t o, int nb, float *probs, float *cond)
{
    int K = m->K;
    const float *P = rf_ws_probs(ws), *C = rf_ws_cond(ws);
    if (probs) memcpy(probs + o * K, P, (size_t)nb * K * sizeof(float));
    if (cond)
        for (int i = 0; i < nb; i++)
            for (int k = 0; k < K; k++) {
                int p = m->parent[k];
                float v;
                if (rf_model_is_product(m) || p < 0)
                    v = C[(size_t)i * K + k];
                else
                    v = P[(size_t)i * K + k] / fmaxf(P[(size_t)i * K + p], 1e-30f);
                cond[(o + i) * K + k] = v;
            }
}

/* Batches taken one at a time from *next (shared by the team) until none is left or an
 * earlier batch failed; the first failing batch's error wins (*fail_batch), and a thread whose
 * set-up failed (out of memory, a precision refused) counts as batch -1, before every batch. */
static void predict_team(const rf_model *m, const rf_dataset *ds, rf_precision prec, float *probs, float *cond,
                         long nbatch, long *next, long *fail_batch, rf_status *fail_st, rf_error *fail_err)
{
    rf_error e;
    rf_error_clear(&e);
    rf_status st = RF_OK;
    rf_workspace *ws = rf_workspace_create(m, PREDICT_BATCH);
    size_t *rows = malloc(PREDICT_BATCH * sizeof *rows);
    long bi = -1;
    if (!ws || !rows) st = rf_errorf(&e, RF_ENOMEM, "out of memory");
    else st = rf_ws_set_precision(ws, m, prec, &e);
    if (!st) st = rf_ws_score_only(ws, m, &e); /* m does not change while it scores */
    while (!st) {
#pragma omp atomic capture
        bi = (*next)++;
        long fb;
#pragma omp atomic read
        fb = *fail_batch;
        if (bi >= nbatch || bi > fb) break;
        size_t o = (size_t)bi * PREDICT_BATCH;
        int nb = (int)(ds->n - o < (size_t)PREDICT_BATCH ? ds->n - o : (size_t)PREDICT_BATCH);
        for (int i = 0; i < nb; i++) rows[i] = o + (size_t)i;
        rf_batch bt = {ds, rows, nb, NULL};
        if (!(st = rf_model_forward(m, ws, &bt, 0, &e))) put_scores(m, ws, o, nb, probs, cond);
    }
    if (st) {
#pragma omp critical(rf_predict_fail)
        if (bi < *fail_batch) {
            *fail_batch = bi;
            *fail_st = st;
            if (fail_err) *fail_err = e;
        }
    }
    free(rows);
    rf_workspace_free(ws);
}

rf_status rf_predict_ex(const rf_model *m, const rf_dataset *ds, const rf_predict_opts *o, float *probs,
                        float *cond, rf_error *err)
{
    rf_predict_opts def = {0, RF_PREC_FP32};
    if (!o) o = &def;
    int omp_was = omp_get_max_threads();
    if (o->threads > 0) omp_set_num_threads(o->threads);
    long nbatch = (long)((ds->n + PREDICT_BATCH - 1) / PREDICT_BATCH), next = 0, fail_batch = LONG_MAX;
    int nt = omp_in_parallel() ? 1 : omp_get_max_threads();
    if (nt > nbatch) nt = nbatch > 0 ? (int)nbatch : 1;
    if (nt == 1) omp_set_num_threads(1); /* one batch: its GEMMs on one thread too, as in a team */
    rf_status st = RF_OK;
#pragma omp parallel num_threads(nt) if (nt > 1)
    predict_team(m, ds, (rf_precision)o->precision, probs, cond, nbatch, &next, &fail_batch, &st, err);
    omp_set_num_threads(omp_was);
    return st;
}

rf_status rf_predict(const rf_model *m, const rf_dataset *ds, int threads, float *probs, float *cond, rf_error *err)
{
    rf_predict_opts o = {threads, RF_PREC_FP32};
    return rf_predict_ex(m, ds, &o, probs, cond, err);
}

rf_status rf_evaluate(const rf_model *m, const rf_dataset *ds, int threads, rf_eval_result *out, rf_error *err)
{
    rf_predict_opts o = {threads, RF_PREC_FP32};
    return rf_evaluate_ex(m, ds, &o, out, err);
}

rf_status rf_evaluate_ex(const rf_model *m, const rf_dataset *ds, const rf_predict_opts *o, rf_eval_result *out,
                         rf_error *err)
{
    int K = m->K;
    size_t n = ds->n;
    float *P = malloc((n ? n : 1) * K * sizeof *P), *C = malloc((n ? n : 1) * K * sizeof *C);
    rf_status st;
    if (!P || !C) st = rf_errorf(err, RF_ENOMEM, "out of memory");
    else if (!(st = rf_predict_ex(m, ds, o, P, C, err))) st = rf_evaluate_probs(m, ds, P, C, out, err);
    free(P);
    free(C);
    return st;
}

rf_status rf_evaluate_probs(const rf_model *m, const rf_dataset *ds, const float *P, const float *C,
                            rf_eval_result *out, rf_error *err)
{
    int K = m->K;
    memset(out, 0, sizeof *out);
    int lc[RF_MAX_TASKS];
    rf_status st = rf_resolve_labels(m, ds, lc, err);
    if (st) return st;
    size_t n = ds->n;
    double loss = 0;
    for (int k = 0; k < K; k++) {
        const float *lab = ds->labels + lc[k];
        if (m->spec.tasks[k].loss == RF_LOSS_MSE) { /* a value, not a probability: no AUC */
            rf_reg_metrics rm = rf_reg_eval(P + k, K, lab, ds->K, n);
            rf_task_metrics tm = {NAN, NAN, NAN, NAN, NAN, n, 0};
            double sp = 0, sl = 0;
            for (size_t i = 0; i < n; i++) sp += P[i * K + k], sl += lab[i * ds->K];
            tm.mean_pred = n ? sp / n : NAN;
            tm.mean_label = n ? sl / n : NAN;
            out->task[k] = tm;
            out->increase[k] = NAN;
            loss += m->spec.tasks[k].weight * (n ? rm.mse : 0);
            continue;
        }
        out->task[k] = rf_task_eval(P + k, K, lab, ds->K, NULL, 0, n);
        int p = m->parent[k];
        out->increase[k] = NAN;
        if (p >= 0) {
            size_t up = 0;
            for (size_t i = 0; i < n; i++) up += P[i * K + k] > P[i * K + p];
            out->increase[k] = n ? (double)up / n : NAN;
            out->cond[k] = rf_task_eval(C + k, K, lab, ds->K, ds->labels + lc[p], ds->K, n);
            if (!rf_model_is_product(m)) out->cond[k].logloss = NAN; /* ratio, not a probability */
        }
        /* training objective: weighted BCE with the task's positive weight */
        double lk = 0, w = m->spec.tasks[k].pos_weight;
        for (size_t i = 0; i < n; i++) {
            double pi = fmin(fmax(P[i * K + k], 1e-7), 1 - 1e-7), t = lab[i * ds->K];
            lk -= w * t * log(pi) + (1 - t) * log(1 - pi);
        }
        loss += m->spec.tasks[k].weight * lk / (n ? n : 1);
    }
    out->loss = loss;
    out->n = n;
    out->reg = (rf_reg_metrics){NAN, NAN, NAN, 0};
    int tc = m->spec.regression.target[0] ? rf_dataset_label_index(ds, m->spec.regression.target) : -1;
    if (tc >= 0) { /* the regression prediction against the target */
        float *E = malloc((n ? n : 1) * sizeof *E);
        if (!E) st = rf_errorf(err, RF_ENOMEM, "out of memory");
        else if (!(st = rf_regression_predict(&m->spec, P, n, E, err)))
            out->reg = rf_reg_eval(E, 1, ds->labels + tc, ds->K, n);
        free(E);
    }
    return st;
}
