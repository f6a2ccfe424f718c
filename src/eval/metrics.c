/* metrics.c - whole-set evaluation metrics: exact tie-aware (weighted) ROC AUC, log loss,
 * and the per-task summary rf_task_eval.
 *
 * AUC: each kept row's score becomes an order-preserving uint32 key; positive and negative
 * keys (with their weights, if any) are radix-sorted separately (core/sort.h; the digit
 * histograms counted while gathering the keys), then one merge walk over groups of
 * equal scores sums P_g * (N_below + N_tied / 2). O(N), scratch allocated once per call,
 * no global state.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "resflow/metrics.h"
#include "core/sort.h"

/* Shared AUC core: score[i*ss], label[i*ls], weight[i] (NULL = 1), rows kept where
 * mask[i*ms] > 0.5 (mask NULL = all). Weights must be finite and >= 0. Returns NaN with
 * RF_ENUMERIC on a NaN score or bad weight, NaN with RF_ENOMEM if scratch allocation
 * fails, NaN with RF_OK when a class is absent (zero total weight) or nothing is kept.
 * Positives are gathered at the front of the key buffer, negatives at the back; each class
 * is radix-sorted on its own and one merge walk sums P_g * (N_below + N_tied / 2). */
static double auc_core(const float *score, size_t ss, const float *label, size_t ls,
                       const float *weight, const float *mask, size_t ms, size_t n,
                       rf_status *st)
{
    rf_status s = RF_OK;
    double auc = NAN;
    size_t m = n;
    if (mask) {
        m = 0;
        for (size_t i = 0; i < n; i++) m += mask[i * ms] > 0.5f;
    }
    uint32_t *key = NULL;
    float *wb = NULL;
    size_t *h = NULL; /* histograms: h for positives, h + RF_SORT_HIST32 for negatives */
    if (m > 0 && (m > SIZE_MAX / (2 * sizeof *key) || !(key = malloc(2 * m * sizeof *key)) ||
                  (weight && !(wb = malloc(2 * m * sizeof *wb))) ||
                  !(h = calloc(2 * RF_SORT_HIST32, sizeof *h))))
        s = RF_ENOMEM;

    double wpos = 0, wneg = 0;
    size_t np = 0, nn = 0;
    for (size_t i = 0; i < n && m > 0 && s == RF_OK; i++) {
        if (mask && !(mask[i * ms] > 0.5f)) continue;
        float sc = score[i * ss], w = weight ? weight[i] : 1.0f;
        if (isnan(sc) || !(w >= 0.0f) || isinf(w)) { s = RF_ENUMERIC; break; }
        uint32_t kk = rf_sort_key_f32(sc);
        int pos = label[i * ls] > 0.5f;
        size_t o = pos ? np++ : m - 1 - nn++;
        key[o] = kk;
        if (wb) wb[o] = w;
        if (pos) wpos += w; else wneg += w;
        rf_sort_count32(h + (pos ? 0 : RF_SORT_HIST32), kk);
    }
    if (s == RF_OK && wpos > 0 && wneg > 0) {
        uint32_t *pk = key, *nk = key + np;
        float *pw = wb, *nw = wb ? wb + np : NULL;
        rf_radix_sort32_f32(&pk, &pw, key + m, wb ? wb + m : NULL, np, h);
        rf_radix_sort32_f32(&nk, &nw, key + m + np, wb ? wb + m + np : NULL, nn, h + RF_SORT_HIST32);
        double below = 0, acc = 0; /* below: negative weight with strictly lower score */
        for (size_t i = 0, j = 0; i < np;) {
            uint32_t kk = pk[i];
            double gp = 0, tie = 0;
            for (; i < np && pk[i] == kk; i++) gp += pw ? pw[i] : 1.0;
            for (; j < nn && nk[j] < kk; j++) below += nw ? nw[j] : 1.0;
            for (; j < nn && nk[j] == kk; j++) tie += nw ? nw[j] : 1.0;
            acc += gp * (below + 0.5 * tie);
            below += tie;
        }
        auc = acc / (wpos * wneg);
    }
    free(h);
    free(wb);
    free(key);
    if (st) *st = s;
    return auc;
}

/* Exact weighted AUC over all n rows (unit strides); see metrics.h. */
double rf_auc(const float *score, const float *label, const float *weight, size_t n,
              rf_status *st)
{
    return auc_core(score, 1, label, 1, weight, NULL, 0, n, st);
}

/* Exact unweighted AUC over strided rows kept by the optional mask; see metrics.h. */
double rf_auc_strided(const float *score, size_t sstride, const float *label, size_t lstride,
                      const float *mask, size_t mstride, size_t n, rf_status *st)
{
    return auc_core(score, sstride, label, lstride, NULL, mask, mstride, n, st);
}

/* One row's BCE with p clamped into [1e-7, 1-1e-7]; NaN p propagates. */
static double bce(float pf, int y)
{
    double p = pf;
    if (p < 1e-7) p = 1e-7;
    else if (p > 1 - 1e-7) p = 1 - 1e-7;
    return y ? -log(p) : -log1p(-p);
}

/* Mean BCE over n rows, labels binarized at 0.5; NaN when n == 0 or some p is NaN. */
double rf_logloss(const float *p, size_t pstride, const float *label, size_t lstride, size_t n)
{
    if (n == 0) return NAN;
    double sum = 0;
    for (size_t i = 0; i < n; i++) sum += bce(p[i * pstride], label[i * lstride] > 0.5f);
    return sum / (double)n;
}

/* Per-task summary over masked rows; all means NaN when no row is kept. AUC is NaN when
 * undefined or on a NaN score (its status is not reported here). */
rf_task_metrics rf_task_eval(const float *score, size_t sstride, const float *label,
                             size_t lstride, const float *mask, size_t mstride, size_t n)
{
    rf_task_metrics r = {NAN, NAN, NAN, NAN, NAN, 0, 0};
    double ll = 0, sp = 0;
    for (size_t i = 0; i < n; i++) {
        if (mask && !(mask[i * mstride] > 0.5f)) continue;
        float p = score[i * sstride];
        int y = label[i * lstride] > 0.5f;
        r.n++;
        r.positives += (size_t)y;
        sp += p;
        ll += bce(p, y);
    }
    if (r.n == 0) return r;
    r.auc = auc_core(score, sstride, label, lstride, NULL, mask, mstride, n, NULL);
    r.logloss = ll / (double)r.n;
    r.mean_pred = sp / (double)r.n;
    r.mean_label = (double)r.positives / (double)r.n;
    r.calib = r.positives ? r.mean_pred / r.mean_label : NAN;
    return r;
}

/* ---- regression ---------------------------------------------------------------------------- */

double rf_expected_value(const float *q, size_t qstride, int K, const float *v)
{
    double e = 0, prev = 1; /* Q_0 = 1 */
    for (int k = 0; k < K; k++) {
        double qk = q[(size_t)k * qstride], d = prev - qk;
        if (d > 0) e += v[k] * d;
        prev = qk;
    }
    return e + v[K] * prev;
}

rf_reg_metrics rf_reg_eval(const float *pred, size_t pstride, const float *target, size_t tstride, size_t n)
{
    rf_reg_metrics r = {NAN, NAN, NAN, n};
    if (!n) return r;
    double se = 0, ae = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)pred[i * pstride] - (double)target[i * tstride];
        se += d * d;
        ae += fabs(d);
    }
    r.mse = se / (double)n;
    r.rmse = sqrt(r.mse);
    r.mae = ae / (double)n;
    return r;
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

rf_status rf_quantile_thresholds(const float *x, size_t stride, size_t n, int K, float *v, int *nv)
{
    *nv = 0;
    if (K < 1) return RF_EUSAGE;
    float *s = malloc((n ? n : 1) * sizeof *s);
    if (!s) return RF_ENOMEM;
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (isfinite(x[i * stride])) s[m++] = x[i * stride];
    qsort(s, m, sizeof *s, cmp_float);
    int c = 0;
    for (int k = 0; k <= K && m; k++) {
        float q = s[(size_t)floor((double)k * (double)(m - 1) / K + 0.5)];
        if (c == 0 || q > v[c - 1]) v[c++] = q;
    }
    free(s);
    *nv = c;
    return c >= 2 ? RF_OK : RF_EDATA;
}
