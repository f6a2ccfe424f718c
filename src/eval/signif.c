/* signif.c - paired significance of AUC differences (signif.h): DeLong's test from placement
 * values, and a paired bootstrap over groups.
 *
 * Both start from the kept rows, each score column radix-sorted once (core/sort.h) into its
 * ascending order with the keys beside it. DeLong: one walk over equal-score blocks gives every
 * positive its placement V10 = (negatives below + ties / 2) / n0 and every negative
 * V01 = (positives above + ties / 2) / n1; the AUC is the mean V10 and
 * Var(A - B) = S10 / n1 + S01 / n0 with S the sample variances of the placement differences.
 * Bootstrap: a replicate gives every group a multiplicity (G uniform draws of groups) and the
 * weighted AUC of each column is one walk over its sorted order - no re-sort per replicate.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "resflow/signif.h"
#include "core/parfor.h"
#include "core/rng.h"
#include "core/sort.h"

RF_SORT_DEFINE(sort_rows32, 32, uint32_t)

double rf_normal_quantile(double p)
{
    /* Acklam's rational approximation (relative error < 1.2e-9), one Newton step on erfc */
    static const double a[6] = {-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02,
                                1.383577518672690e+02,  -3.066479806614716e+01, 2.506628277459239e+00};
    static const double b[5] = {-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
                                6.680131188771972e+01,  -1.328068155288572e+01};
    static const double c[6] = {-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
                                -2.549732539343734e+00, 4.374664141464968e+00,  2.938163982698783e+00};
    static const double d[4] = {7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00,
                                3.754408661907416e+00};
    if (!(p > 0 && p < 1)) return NAN;
    double q, x;
    if (p < 0.02425) {
        q = sqrt(-2 * log(p));
        x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
            ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
    } else if (p > 1 - 0.02425) {
        q = sqrt(-2 * log(1 - p));
        x = -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
            ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
    } else {
        q = p - 0.5;
        double r = q * q;
        x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
            (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
    }
    double e = 0.5 * erfc(-x / sqrt(2.0)) - p;
    double u = e * sqrt(2 * M_PI) * exp(x * x / 2);
    return x - u / (1 + x * u / 2);
}

int rf_auc_diff_significant(const rf_auc_diff *d)
{
    return d && (d->lo > 0 || d->hi < 0);
}

/* The kept rows of two score columns: scores sorted (keys + row index into the kept rows). */
typedef struct {
    size_t m, n1, n0;
    uint8_t *y;            /* (m) label of kept row */
    uint32_t *key[2];      /* (m) sorted keys of column a, b */
    uint32_t *ord[2];      /* (m) kept-row index in that order */
    uint32_t *buf;         /* one allocation behind key/ord and the sort scratch */
} paired_t;

static void paired_free(paired_t *P)
{
    free(P->y);
    free(P->buf);
}

static rf_status paired_build(paired_t *P, const float *s[2], const size_t ss[2], const float *label, size_t ls,
                              const float *mask, size_t ms, size_t n, rf_error *err)
{
    memset(P, 0, sizeof *P);
    size_t m = 0;
    for (size_t i = 0; i < n; i++) m += !mask || mask[i * ms] > 0.5f;
    if (m > UINT32_MAX) return rf_errorf(err, RF_EUSAGE, "signif: more than 2^32 rows");
    P->m = m;
    P->y = malloc(m ? m : 1);
    P->buf = malloc((6 * m + 1) * sizeof *P->buf);
    if (!P->y || !P->buf) {
        paired_free(P);
        return rf_errorf(err, RF_ENOMEM, "signif: out of memory for %zu rows", m);
    }
    uint32_t *kt = P->buf + 4 * m, *vt = P->buf + 5 * m;
    for (int c = 0; c < 2; c++) {
        uint32_t *k = P->buf + 2 * (size_t)c * m, *v = k + m;
        size_t j = 0;
        for (size_t i = 0; i < n; i++) {
            if (mask && !(mask[i * ms] > 0.5f)) continue;
            float x = s[c][i * ss[c]];
            if (isnan(x)) {
                paired_free(P);
                return rf_errorf(err, RF_ENUMERIC, "signif: NaN score in row %zu", i);
            }
            if (c == 0) {
                P->y[j] = label[i * ls] > 0.5f;
                P->n1 += P->y[j];
            }
            k[j] = rf_sort_key_f32(x);
            v[j] = (uint32_t)j;
            j++;
        }
        if (sort_rows32(&k, &v, kt, vt, m, NULL)) {
            paired_free(P);
            return rf_errorf(err, RF_ENOMEM, "signif: out of memory");
        }
        /* the result may sit in the scratch: move it home so the scratch is free again */
        uint32_t *hk = P->buf + 2 * (size_t)c * m, *hv = hk + m;
        if (k != hk) memcpy(hk, k, m * sizeof *k);
        if (v != hv) memcpy(hv, v, m * sizeof *v);
        P->key[c] = hk;
        P->ord[c] = hv;
    }
    P->n0 = m - P->n1;
    if (P->n1 == 0 || P->n0 == 0) {
        paired_free(P);
        return rf_errorf(err, RF_EDATA, "signif: %s on the %zu kept rows", P->n1 ? "no negatives" : "no positives", m);
    }
    return RF_OK;
}

/* Placement values of column c into pl (kept-row order); returns the AUC. */
static double placements(const paired_t *P, int c, double *pl)
{
    const uint32_t *k = P->key[c], *o = P->ord[c];
    const uint8_t *y = P->y;
    double pos_below = 0, neg_below = 0, acc = 0;
    for (size_t i = 0; i < P->m;) {
        size_t e = i;
        double pt = 0, nt = 0;
        for (; e < P->m && k[e] == k[i]; e++) {
            if (y[o[e]]) pt++;
            else nt++;
        }
        for (size_t j = i; j < e; j++) {
            uint32_t r = o[j];
            pl[r] = y[r] ? (neg_below + 0.5 * nt) / (double)P->n0
                         : ((double)P->n1 - pos_below - 0.5 * pt) / (double)P->n1;
        }
        acc += pt * (neg_below + 0.5 * nt);
        pos_below += pt;
        neg_below += nt;
        i = e;
    }
    return acc / ((double)P->n1 * (double)P->n0);
}

static rf_status check_args(const float *a, const float *b, const float *label, double level, rf_auc_diff *out,
                            rf_error *err)
{
    if (!a || !b || !label || !out) return rf_errorf(err, RF_EUSAGE, "signif: NULL argument");
    if (!(level > 0 && level < 1)) return rf_errorf(err, RF_EUSAGE, "signif: level %g outside (0, 1)", level);
    return RF_OK;
}

rf_status rf_auc_delong(const float *a, size_t astride, const float *b, size_t bstride, const float *label,
                        size_t lstride, const float *mask, size_t mstride, size_t n, double level, rf_auc_diff *out,
                        rf_error *err)
{
    rf_status st = check_args(a, b, label, level, out, err);
    if (st) return st;
    memset(out, 0, sizeof *out);
    paired_t P;
    const float *s[2] = {a, b};
    const size_t ss[2] = {astride, bstride};
    if ((st = paired_build(&P, s, ss, label, lstride, mask, mstride, n, err))) return st;
    double *pa = malloc(2 * P.m * sizeof *pa);
    if (!pa) {
        paired_free(&P);
        return rf_errorf(err, RF_ENOMEM, "signif: out of memory");
    }
    double *pb = pa + P.m;
    double A = placements(&P, 0, pa), B = placements(&P, 1, pb);
    /* sample variance of the placement differences, per class (pairs: Var a + Var b - 2 Cov) */
    double m1 = 0, m0 = 0, v1 = 0, v0 = 0;
    for (size_t r = 0; r < P.m; r++) {
        double d = pa[r] - pb[r];
        if (P.y[r]) m1 += d;
        else m0 += d;
    }
    m1 /= (double)P.n1;
    m0 /= (double)P.n0;
    for (size_t r = 0; r < P.m; r++) {
        double d = pa[r] - pb[r];
        if (P.y[r]) v1 += (d - m1) * (d - m1);
        else v0 += (d - m0) * (d - m0);
    }
    v1 = P.n1 > 1 ? v1 / (double)(P.n1 - 1) : 0;
    v0 = P.n0 > 1 ? v0 / (double)(P.n0 - 1) : 0;
    double var = v1 / (double)P.n1 + v0 / (double)P.n0;
    out->auc_a = A;
    out->auc_b = B;
    out->diff = A - B;
    out->se = sqrt(var);
    double z = rf_normal_quantile(0.5 + level / 2);
    out->lo = out->diff - z * out->se;
    out->hi = out->diff + z * out->se;
    out->p = out->se > 0 ? erfc(fabs(out->diff) / out->se / sqrt(2.0)) : (out->diff == 0 ? 1.0 : 0.0);
    out->n = P.m;
    out->positives = P.n1;
    free(pa);
    paired_free(&P);
    return RF_OK;
}

/* Weighted AUC of column c with kept-row weights w. */
static double weighted_auc(const paired_t *P, int c, const float *w, double *w1, double *w0)
{
    const uint32_t *k = P->key[c], *o = P->ord[c];
    double below = 0, acc = 0, pos = 0;
    for (size_t i = 0; i < P->m;) {
        uint32_t kk = k[i];
        double pw = 0, nw = 0;
        for (; i < P->m && k[i] == kk; i++) {
            uint32_t r = o[i];
            if (P->y[r]) pw += w[r];
            else nw += w[r];
        }
        acc += pw * (below + 0.5 * nw);
        below += nw;
        pos += pw;
    }
    *w1 = pos;
    *w0 = below;
    return pos > 0 && below > 0 ? acc / (pos * below) : NAN;
}

static int cmp_double(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

/* Quantile (type 7, linear interpolation) of sorted v[0..n). */
static double quantile(const double *v, int n, double q)
{
    double h = (n - 1) * q;
    int lo = (int)floor(h);
    if (lo >= n - 1) return v[n - 1];
    return v[lo] + (h - lo) * (v[lo + 1] - v[lo]);
}

/* The bootstrap's replicates: each gives every group a multiplicity (G uniform draws of groups,
 * its own random stream) and records the difference of the weighted AUCs. */
typedef struct {
    const paired_t *P;
    const uint32_t *gid; /* dense group id of every kept row */
    size_t G, m;
    uint64_t seed;
    double *diffs; /* (reps) */
} boot_ctx;

/* Replicate rep; scratch: G counts, then m row weights. */
static void boot_rep(void *ctx, void *scratch, size_t rep)
{
    const boot_ctx *c = ctx;
    const size_t G = c->G, m = c->m;
    uint32_t *cnt = scratch;
    float *w = (float *)(cnt + G);
    rf_rng g;
    rf_rng_seed_stream(&g, c->seed, (uint64_t)rep);
    double d = NAN;
    for (int attempt = 0; attempt < 100 && isnan(d); attempt++) {
        memset(cnt, 0, G * sizeof *cnt);
        for (size_t i = 0; i < G; i++) cnt[rf_rng_below32(&g, (uint32_t)G)]++;
        for (size_t r = 0; r < m; r++) w[r] = (float)cnt[c->gid[r]];
        double x1, x0;
        d = weighted_auc(c->P, 0, w, &x1, &x0) - weighted_auc(c->P, 1, w, &x1, &x0);
    }
    c->diffs[rep] = d;
}

rf_status rf_auc_bootstrap(const float *a, size_t astride, const float *b, size_t bstride, const float *label,
                           size_t lstride, const float *mask, size_t mstride, const uint64_t *group, size_t n,
                           int reps, uint64_t seed, int threads, double level, rf_auc_diff *out, rf_error *err)
{
    rf_status st = check_args(a, b, label, level, out, err);
    if (st) return st;
    if (reps < 10) return rf_errorf(err, RF_EUSAGE, "signif: bootstrap needs at least 10 replicates (got %d)", reps);
    memset(out, 0, sizeof *out);
    paired_t P;
    const float *s[2] = {a, b};
    const size_t ss[2] = {astride, bstride};
    if ((st = paired_build(&P, s, ss, label, lstride, mask, mstride, n, err))) return st;
    const size_t m = P.m;
    /* dense group ids of the kept rows */
    uint32_t *gid = malloc(m * sizeof *gid);
    double *diffs = malloc((size_t)reps * sizeof *diffs);
    float *ones = malloc(m * sizeof *ones);
    size_t G = m;
    if (!gid || !diffs || !ones) goto oom;
    for (size_t r = 0; r < m; r++) ones[r] = 1.0f;
    if (group) {
        uint64_t *gk = malloc(2 * m * sizeof *gk);
        size_t *gv = malloc(2 * m * sizeof *gv);
        if (!gk || !gv) {
            free(gk);
            free(gv);
            goto oom;
        }
        size_t j = 0;
        for (size_t i = 0; i < n; i++) {
            if (mask && !(mask[i * mstride] > 0.5f)) continue;
            gk[j] = group[i];
            gv[j] = j;
            j++;
        }
        uint64_t *k = gk;
        size_t *v = gv;
        int bad = rf_radix_sort64_zu(&k, &v, gk + m, gv + m, m, NULL);
        G = 0;
        for (size_t i = 0; i < m && !bad; i++) {
            if (i > 0 && k[i] != k[i - 1]) G++;
            gid[v[i]] = (uint32_t)G;
        }
        G++;
        free(gk);
        free(gv);
        if (bad) goto oom;
        if (G > UINT32_MAX) {
            st = rf_errorf(err, RF_EUSAGE, "signif: more than 2^32 groups");
            goto done;
        }
    } else {
        for (size_t r = 0; r < m; r++) gid[r] = (uint32_t)r;
    }
    double w1, w0;
    out->auc_a = weighted_auc(&P, 0, ones, &w1, &w0);
    out->auc_b = weighted_auc(&P, 1, ones, &w1, &w0);
    boot_ctx bc = {&P, gid, G, m, seed, diffs};
    if (rf_parfor_scratch_(threads, (size_t)reps, G * sizeof(uint32_t) + m * sizeof(float), boot_rep, &bc)) goto oom;
    int ok = 0;
    for (int r = 0; r < reps; r++)
        if (!isnan(diffs[r])) diffs[ok++] = diffs[r];
    if (ok < 10) {
        st = rf_errorf(err, RF_EDATA, "signif: too few groups with both classes to bootstrap");
        goto done;
    }
    qsort(diffs, (size_t)ok, sizeof *diffs, cmp_double);
    double mean = 0, var = 0;
    int below = 0, above = 0;
    for (int r = 0; r < ok; r++) {
        mean += diffs[r];
        below += diffs[r] <= 0;
        above += diffs[r] >= 0;
    }
    mean /= ok;
    for (int r = 0; r < ok; r++) var += (diffs[r] - mean) * (diffs[r] - mean);
    out->diff = out->auc_a - out->auc_b;
    out->se = sqrt(var / (ok - 1));
    out->lo = quantile(diffs, ok, (1 - level) / 2);
    out->hi = quantile(diffs, ok, (1 + level) / 2);
    double tail = (below < above ? below : above) / (double)ok;
    out->p = fmin(1.0, fmax(2 * tail, 1.0 / ok));
    out->n = m;
    out->positives = P.n1;
    out->groups = G;
    out->reps = ok;
    goto done;
oom:
    st = rf_errorf(err, RF_ENOMEM, "signif: out of memory");
done:
    free(gid);
    free(diffs);
    free(ones);
    paired_free(&P);
    return st;
}
