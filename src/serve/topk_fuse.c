/* topk_fuse.c - the fused ranking score of topk.h in float over blocks of items: logits,
 * sigmoid, conditionals and the fusion formula (its log for MUL), with exp and log as
 * polynomials (Cephes' single-precision ones) written as branch-free loops the compiler
 * vectorises. */
#include <stdio.h>
#include <string.h>

#include "resflow/spec.h" /* RF_MAX_TASKS */
#include "serve/topk.h"

static int find_col(const char *nm, size_t len, const char *const *name, int ncols)
{
    for (int j = 0; j < ncols; j++)
        if (name[j] && strlen(name[j]) == len && !memcmp(name[j], nm, len)) return j;
    return -1;
}

rf_status rf_tk_fuse_plan(rf_tk_fuse *p, int K, const rf_fusion *f, const char *const *name, const rf_tk_fuse_col *col,
                          int ncols, rf_error *err)
{
    if (!f || (f->kind != RF_FUSION_MUL && f->kind != RF_FUSION_ADD) || f->n < 1 || f->n > RF_FUSION_MAX_TERMS)
        return rf_errorf(err, RF_EUSAGE, "fusion: no formula");
    memset(p, 0, sizeof *p);
    p->K = K;
    p->mul = f->kind == RF_FUSION_MUL;
    p->n = f->n;
    for (int t = 0; t < f->n; t++) {
        const char *nm = f->name[t], *bar = strchr(nm, '|');
        int a = find_col(nm, strlen(nm), name, ncols), b = -1;
        if (a < 0 && bar) {
            a = find_col(nm, (size_t)(bar - nm), name, ncols);
            b = find_col(bar + 1, strlen(bar + 1), name, ncols);
            if (b < 0) a = -1;
        }
        if (a < 0) return rf_errorf(err, RF_EUSAGE, "fusion: no score named '%s'", nm);
        p->a[t] = col[a];
        p->b[t] = b >= 0 ? col[b] : (rf_tk_fuse_col){-1, -1};
        p->coef[t] = (float)f->coef[t];
    }
    return RF_OK;
}

static inline float bits_f(uint32_t b)
{
    float x;
    memcpy(&x, &b, 4);
    return x;
}
static inline uint32_t f_bits(float x)
{
    uint32_t b;
    memcpy(&b, &x, 4);
    return b;
}

/* e^x within 2 ulp for |x| <= 87; clamped beyond (NaN stays NaN) */
static inline float fexp(float x)
{
    x = x > 88.0f ? 88.0f : x;
    x = x < -87.0f ? -87.0f : x;
    float fn = (x * 1.44269504f + 12582912.0f) - 12582912.0f; /* round to nearest */
    float r = x - fn * 0.693359375f + fn * 2.12194440e-4f;
    float q = 1.9875691500e-4f;
    q = q * r + 1.3981999507e-3f;
    q = q * r + 8.3334519073e-3f;
    q = q * r + 4.1665795894e-2f;
    q = q * r + 1.6666665459e-1f;
    q = q * r + 5.0000001201e-1f;
    float y = q * r * r + r + 1.0f;
    return bits_f(f_bits(y) + ((uint32_t)(int32_t)fn << 23));
}

/* ln x for normal x > 0 */
static inline float flog(float x)
{
    /* x = 2^e * (1 + m), 1 + m in [sqrt(1/2), sqrt(2)): integer arithmetic only */
    int32_t i = (int32_t)f_bits(x) - 0x3f3504f3;
    int32_t ei = i >> 23;
    float e = (float)ei;
    float m = bits_f((uint32_t)((int32_t)f_bits(x) - (int32_t)((uint32_t)ei << 23))) - 1.0f;
    float z = m * m;
    float y = 7.0376836292e-2f;
    y = y * m - 1.1514610310e-1f;
    y = y * m + 1.1676998740e-1f;
    y = y * m - 1.2420140846e-1f;
    y = y * m + 1.4249322787e-1f;
    y = y * m - 1.6668057665e-1f;
    y = y * m + 2.0000714765e-1f;
    y = y * m - 2.4999993993e-1f;
    y = y * m + 3.3333331174e-1f;
    y = y * m * z;
    y += e * -2.12194440e-4f;
    y += -0.5f * z;
    return m + y + e * 0.693359375f;
}

static inline float floor_(float x) { return x > RF_TK_FUSE_FLOOR ? x : RF_TK_FUSE_FLOOR; }

void rf_tk_fuse_block(const rf_tk_fuse *p, const float *ub, const float *dots, const float *vb, int n, float *work,
                      float *out)
{
    int K = p->K;
    /* work: (K, n) probabilities, task-major so every loop below runs over contiguous items */
    if (p->logits) {
        float z[RF_MAX_TASKS], zero[RF_MAX_TASKS] = {0};
        for (int i = 0; i < n; i++) {
            p->logits(p->m, dots + (size_t)i * K, ub ? ub : zero, vb ? vb + (size_t)i * K : zero, z);
            for (int k = 0; k < K; k++) work[(size_t)k * n + i] = z[k];
        }
    } else {
        for (int k = 0; k < K; k++) {
            float *w = work + (size_t)k * n, c = ub ? ub[k] : 0.0f;
            if (vb)
                for (int i = 0; i < n; i++) w[i] = dots[(size_t)i * K + k] + c + vb[(size_t)i * K + k];
            else
                for (int i = 0; i < n; i++) w[i] = dots[(size_t)i * K + k] + c;
        }
    }
    for (int k = 0; k < K; k++) {
        float *w = work + (size_t)k * n;
#pragma omp simd
        for (int i = 0; i < n; i++) w[i] = 1.0f / (1.0f + fexp(-w[i]));
    }
    /* the terms, one branch-free loop at a time (tmp: the term's value) */
    float *tmp = work + (size_t)K * n;
    for (int i = 0; i < n; i++) out[i] = 0.0f;
    for (int t = 0; t < p->n; t++) {
        const float *a = work + (size_t)p->a[t].task * n;
        float c = p->coef[t];
        if (p->a[t].parent >= 0) {
            const float *ap = work + (size_t)p->a[t].parent * n;
#pragma omp simd
            for (int i = 0; i < n; i++) tmp[i] = a[i] / floor_(ap[i]);
        } else {
            for (int i = 0; i < n; i++) tmp[i] = a[i];
        }
        if (p->b[t].task >= 0) {
            const float *b = work + (size_t)p->b[t].task * n;
            if (p->b[t].parent >= 0) {
                const float *bp = work + (size_t)p->b[t].parent * n;
#pragma omp simd
                for (int i = 0; i < n; i++) tmp[i] /= floor_(b[i] / floor_(bp[i]));
            } else {
#pragma omp simd
                for (int i = 0; i < n; i++) tmp[i] /= floor_(b[i]);
            }
        }
        if (p->mul) {
            for (int i = 0; i < n; i++) tmp[i] = floor_(tmp[i]); /* apart: GCC 12 does not vectorise */
#pragma omp simd                                                  /* a select feeding the bit cast */
            for (int i = 0; i < n; i++) out[i] += c * flog(tmp[i]);
        } else {
#pragma omp simd
            for (int i = 0; i < n; i++) out[i] += c * tmp[i];
        }
    }
}
