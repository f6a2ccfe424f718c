/* balance.c - PUB: the Nash-bargaining weight solve and the PUB optimizer (per-task Adam
 * updates of the shared parameters, balanced). See include/resflow/balance.h. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/bytes.h"
#include "nn/adam.h"
#include "nn/model_impl.h"
#include "nn/balance_impl.h"

/* ---- the weight solve ------------------------------------------------------------------- */

/* Solve (A) x = b in place for a symmetric positive definite n x n A (overwritten by its
 * Cholesky factor); 0 when A is not numerically positive definite. */
static int chol_solve(int n, double *A, double *b)
{
    for (int j = 0; j < n; j++) {
        double s = A[j * n + j];
        for (int k = 0; k < j; k++) s -= A[j * n + k] * A[j * n + k];
        if (!(s > 0) || !isfinite(s)) return 0;
        double d = sqrt(s);
        A[j * n + j] = d;
        for (int i = j + 1; i < n; i++) {
            double t = A[i * n + j];
            for (int k = 0; k < j; k++) t -= A[i * n + k] * A[j * n + k];
            A[i * n + j] = t / d;
        }
    }
    for (int i = 0; i < n; i++) {
        double t = b[i];
        for (int k = 0; k < i; k++) t -= A[i * n + k] * b[k];
        b[i] = t / A[i * n + i];
    }
    for (int i = n - 1; i >= 0; i--) {
        double t = b[i];
        for (int k = i + 1; k < n; k++) t -= A[k * n + i] * b[k];
        b[i] = t / A[i * n + i];
    }
    return 1;
}

/* f(a) = 1/2 a'(G + eps I)a - sum log a */
static double nash_f(int n, const double *G, double eps, const double *a)
{
    double f = 0;
    for (int i = 0; i < n; i++) {
        double t = eps * a[i];
        for (int j = 0; j < n; j++) t += G[i * n + j] * a[j];
        f += 0.5 * a[i] * t - log(a[i]);
    }
    return f;
}

/* Newton's method with a positivity-keeping backtracking line search on nash_f; a (n) receives
 * the solution. 1 when converged. */
static int nash_newton(int n, const double *G, double eps, double *a)
{
    double Ga[RF_MAX_TASKS], g[RF_MAX_TASKS], d[RF_MAX_TASKS], H[RF_MAX_TASKS * RF_MAX_TASKS],
        t[RF_MAX_TASKS];
    for (int i = 0; i < n; i++) a[i] = 1.0 / sqrt(G[i * n + i] + eps);
    double r_prev = INFINITY;
    for (int it = 0; it < 100; it++) {
        double r = 0;
        for (int i = 0; i < n; i++) {
            Ga[i] = eps * a[i];
            for (int j = 0; j < n; j++) Ga[i] += G[i * n + j] * a[j];
            double ri = fabs(a[i] * Ga[i] - 1);
            if (!(ri <= r)) r = ri; /* NaN propagates */
        }
        if (!isfinite(r)) return 0;
        if (r < 1e-12) return 1;
        if (r < 1e-8 && r >= 0.5 * r_prev) return 1; /* no progress: at the floor of rounding */
        r_prev = r;
        for (int i = 0; i < n; i++) {
            g[i] = Ga[i] - 1 / a[i];
            d[i] = -g[i];
            for (int j = 0; j < n; j++) H[i * n + j] = G[i * n + j];
            H[i * n + i] += eps + 1 / (a[i] * a[i]);
        }
        if (!chol_solve(n, H, d)) return 0;
        double rel = 0, gd = 0;
        for (int i = 0; i < n; i++) {
            rel = fmax(rel, fabs(d[i] / a[i]));
            gd += g[i] * d[i];
        }
        if (rel < 1e-13) return r < 1e-6; /* at the floor of rounding */
        double f0 = nash_f(n, G, eps, a), s = 1;
        int ok = 0;
        for (int ls = 0; ls < 80 && !ok; ls++, s *= 0.5) {
            int pos = 1;
            for (int i = 0; i < n; i++) {
                t[i] = a[i] + s * d[i];
                if (!(t[i] > 0)) pos = 0;
            }
            /* near the solution (quadratic convergence) the full step is taken: there the
             * decrease of f is below its rounding and Armijo's test would stall */
            if (pos && (r < 1e-4 || nash_f(n, G, eps, t) <= f0 + 1e-4 * s * gd)) ok = 1;
        }
        if (!ok) return r < 1e-6; /* no decrease possible: rounding */
        for (int i = 0; i < n; i++) {
            a[i] = t[i];
            if (!(a[i] < 1e150)) return 0; /* no solution: unbounded along a null direction */
        }
    }
    return 0;
}

rf_status rf_pub_weights(const double *M, int K, double *alpha, rf_error *err)
{
    if (K < 1 || K > RF_MAX_TASKS)
        return rf_errorf(err, RF_EUSAGE, "PUB weights: %d tasks (1..%d)", K, RF_MAX_TASKS);
    for (int i = 0; i < K; i++) alpha[i] = 1;
    double dmax = 0;
    for (int i = 0; i < K * K; i++)
        if (!isfinite(M[i])) return rf_errorf(err, RF_ENUMERIC, "PUB weights: non-finite Gram matrix");
    for (int i = 0; i < K; i++) {
        if (M[i * K + i] < 0) return rf_errorf(err, RF_EUSAGE, "PUB weights: negative diagonal (not a Gram matrix)");
        dmax = fmax(dmax, M[i * K + i]);
    }
    /* the tasks with a nonzero update, and G = sym(M) / dmax among them */
    int idx[RF_MAX_TASKS], n = 0;
    for (int i = 0; i < K; i++) {
        alpha[i] = 0;
        if (dmax > 0 && M[i * K + i] > 1e-30 * dmax) idx[n++] = i;
    }
    if (n == 0) return RF_OK;
    double G[RF_MAX_TASKS * RF_MAX_TASKS], a[RF_MAX_TASKS];
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++)
            G[i * n + j] = 0.5 * (M[idx[i] * K + idx[j]] + M[idx[j] * K + idx[i]]) / dmax;
    int ok = nash_newton(n, G, 0, a);
    for (double eps = 1e-12; !ok && eps <= 1.0; eps *= 100) ok = nash_newton(n, G, eps, a);
    if (!ok) { /* not reached for a finite PSD M (G + I is well conditioned); stay finite */
        for (int i = 0; i < n; i++) a[i] = 1.0 / sqrt(G[i * n + i]);
    }
    double sc = 1.0 / sqrt(dmax);
    for (int i = 0; i < n; i++) alpha[idx[i]] = a[i] * sc;
    return RF_OK;
}

/* ---- the PUB optimizer ------------------------------------------------------------------ */

typedef struct {
    rf_optimizer base;
    rf_train_cfg tc;
    int K, interval;
    long next_refresh;          /* the step at which alpha is solved for next */
    double alpha[RF_MAX_TASKS];
    rf_adam_moments_ s;         /* one Adam state per dense parameter and embedding float */
    unsigned char *shared;      /* (n) 1: a shared dense parameter */
    size_t n_shared;
    rf_grads *sum;              /* the summed per-task embedding rows of a step */
} pub;

static const rf_optimizer_ops pub_ops;

/* The step constants of step o->steps. */
typedef struct {
    float fb1, fb2, eps, wd, lr, step, sq2, ibc1;
} adam_k;

static adam_k consts(const pub *a)
{
    const rf_train_cfg *tc = &a->tc;
    double b1 = tc->beta1, b2 = tc->beta2, t = (double)a->base.steps;
    double bc1 = 1.0 - pow(b1, t), bc2 = 1.0 - pow(b2, t);
    adam_k c = {(float)b1, (float)b2, tc->eps, tc->weight_decay, tc->lr, (float)(tc->lr / bc1),
                (float)sqrt(bc2), (float)(1.0 / bc1)};
    return c;
}

/* Plain Adam (as rf_adam_create) on the summed gradient, all parameters. */
static void pub_update_dense(rf_optimizer *o, rf_model *mdl, const rf_grads *gr)
{
    pub *a = (pub *)o;
    rf_adam_dense_(&a->tc, o->steps, mdl->params, a->s.m, a->s.v, rf_grads_dense(gr, NULL), a->s.n);
}

/* Lazy row-sparse Adam (as rf_adam_create) on the embedding rows of gr. */
static void pub_update_sparse(rf_optimizer *o, rf_model *mdl, const rf_grads *gr)
{
    pub *a = (pub *)o;
    const uint32_t *rows;
    float *eg;
    size_t nr = rf_grads_emb(gr, &rows, &eg);
    rf_adam_sparse_(&a->tc, o->steps, mdl->emb, a->s.em, a->s.ev, mdl->E, rows, eg, nr);
}

rf_status rf_pub_step(rf_optimizer *o, rf_model *mdl, rf_grads *const *pt, int K, rf_error *err)
{
    if (!o || o->ops != &pub_ops) return rf_errorf(err, RF_EUSAGE, "rf_pub_step: not a PUB optimizer");
    pub *a = (pub *)o;
    if (K != a->K || K != mdl->K)
        return rf_errorf(err, RF_EUSAGE, "rf_pub_step: %d per-task gradients for a model of %d tasks", K, a->K);
    rf_status st = rf_balance_emb_combine_(a->sum, pt, K, NULL, err);
    if (st) return st;
    o->steps++;
    adam_k c = consts(a);
    const float *g[RF_MAX_TASKS];
    for (int k = 0; k < K; k++) g[k] = rf_grads_dense(pt[k], NULL);
    size_t n = a->s.n;
    const unsigned char *sh = a->shared;
    float *p = mdl->params, *m = a->s.m, *v = a->s.v;

    /* the weights: every `interval` steps, from the Gram matrix of the per-task updates */
    if (o->steps >= a->next_refresh) {
        double M[RF_MAX_TASKS * RF_MAX_TASKS] = {0}, al[RF_MAX_TASKS];
        for (size_t i = 0; i < n; i++) {
            if (!sh[i]) continue;
            double u[RF_MAX_TASKS];
            for (int k = 0; k < K; k++) {
                float gk = g[k][i];
                float mk = c.fb1 * m[i] + (1 - c.fb1) * gk, vk = c.fb2 * v[i] + (1 - c.fb2) * gk * gk;
                u[k] = (double)((mk * c.ibc1) / (sqrtf(vk) / c.sq2 + c.eps));
            }
            for (int k = 0; k < K; k++)
                for (int l = k; l < K; l++) M[k * K + l] += u[k] * u[l];
        }
        for (int k = 0; k < K; k++)
            for (int l = 0; l < k; l++) M[k * K + l] = M[l * K + k];
        if ((st = rf_pub_weights(M, K, al, err))) {
            o->steps--;
            rf_grads_emb_clear(a->sum);
            return st;
        }
        /* the bargaining fixes the direction (the ratios alpha_i / alpha_j); the scale is set
         * to sum alpha = K, the released code's alpha = 1 when the tasks are balanced */
        int zero = 0;
        double asum = 0;
        for (int k = 0; k < K; k++) asum += al[k];
        for (int k = 0; k < K; k++) {
            a->alpha[k] = asum > 0 ? al[k] * K / asum : 0;
            if (al[k] == 0) zero = 1;
        }
        a->next_refresh = zero ? o->steps + 1 : o->steps + a->interval;
    }

    float af[RF_MAX_TASKS];
    for (int k = 0; k < K; k++) af[k] = (float)a->alpha[k];
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) {
        if (sh[i]) {
            float du = 0, gh = 0, m0 = m[i], v0 = v[i];
            for (int k = 0; k < K; k++) {
                float gk = g[k][i];
                float mk = c.fb1 * m0 + (1 - c.fb1) * gk, vk = c.fb2 * v0 + (1 - c.fb2) * gk * gk;
                du += af[k] * ((mk * c.ibc1) / (sqrtf(vk) / c.sq2 + c.eps));
                gh += af[k] * gk;
            }
            p[i] -= c.lr * (c.wd * p[i] + du);
            m[i] = c.fb1 * m0 + (1 - c.fb1) * gh;
            v[i] = c.fb2 * v0 + (1 - c.fb2) * gh * gh;
        } else {
            float gi = 0;
            for (int k = 0; k < K; k++) gi += g[k][i];
            gi += c.wd * p[i];
            m[i] = c.fb1 * m[i] + (1 - c.fb1) * gi;
            v[i] = c.fb2 * v[i] + (1 - c.fb2) * gi * gi;
            p[i] -= c.step * m[i] / (sqrtf(v[i]) / c.sq2 + c.eps);
        }
    }
    pub_update_sparse(o, mdl, a->sum);
    rf_grads_emb_clear(a->sum);
    return RF_OK;
}

const double *rf_pub_alpha(const rf_optimizer *o)
{
    return o && o->ops == &pub_ops ? ((const pub *)o)->alpha : NULL;
}

/* body: u64 n | u64 ne | u32 K | u32 interval | u64 next_refresh | K f64 alpha |
 * m, v (n floats each) | em, ev (ne floats each), little-endian */
static size_t pub_state_size(const rf_optimizer *o)
{
    const pub *a = (const pub *)o;
    return 32 + 8 * (size_t)a->K + 4 * (2 * a->s.n + 2 * a->s.ne);
}

static void pub_save(const rf_optimizer *o, unsigned char *p)
{
    const pub *a = (const pub *)o;
    wr64(p, a->s.n);
    wr64(p + 8, a->s.ne);
    wr32(p + 16, (uint32_t)a->K);
    wr32(p + 20, (uint32_t)a->interval);
    wr64(p + 24, (uint64_t)a->next_refresh);
    rf_put_f64s_(p + 32, a->alpha, (size_t)a->K);
    rf_adam_moments_save_(&a->s, p + 32 + 8 * (size_t)a->K);
}

static rf_status pub_load(rf_optimizer *o, const unsigned char *p, size_t n, rf_error *err)
{
    pub *a = (pub *)o;
    if (n < 32 || rd64(p) != a->s.n || rd64(p + 8) != a->s.ne || rd32(p + 16) != (uint32_t)a->K)
        return rf_errorf(err, RF_EFORMAT, "optimizer state: PUB state of another model shape");
    if (rd32(p + 20) != (uint32_t)a->interval)
        return rf_errorf(err, RF_EFORMAT, "optimizer state: PUB update interval %u, this optimizer has %d",
                         (unsigned)rd32(p + 20), a->interval);
    a->next_refresh = (long)rd64(p + 24);
    rf_get_f64s_(a->alpha, p + 32, (size_t)a->K);
    rf_adam_moments_load_(&a->s, p + 32 + 8 * (size_t)a->K);
    return RF_OK;
}

static void pub_destroy(rf_optimizer *o)
{
    pub *a = (pub *)o;
    rf_adam_moments_free_(&a->s);
    free(a->shared);
    rf_grads_free(a->sum);
    free(a);
}

static const rf_optimizer_ops pub_ops = {"pub",    pub_update_dense, pub_update_sparse, pub_state_size,
                                         pub_save, pub_load,         pub_destroy, 1};

rf_optimizer *rf_pub_create(const rf_model *mdl, const rf_train_cfg *tc, int update_interval)
{
    pub *a = calloc(1, sizeof *a);
    if (!a) return NULL;
    a->base.ops = &pub_ops;
    a->tc = *tc;
    a->K = mdl->K;
    a->interval = update_interval < 1 ? 1 : update_interval;
    a->next_refresh = 1;
    for (int k = 0; k < RF_MAX_TASKS; k++) a->alpha[k] = 1;
    int moments = rf_adam_moments_alloc_(&a->s, mdl->n_params, mdl->emb_off[mdl->F] * (size_t)mdl->E);
    a->shared = rf_balance_shared_mask_(mdl, &a->n_shared);
    a->sum = rf_grads_create(mdl);
    if (moments || !a->shared || !a->sum) {
        pub_destroy(&a->base);
        return NULL;
    }
    return &a->base;
}

/* ---- the training step ------------------------------------------------------------------ */

rf_status rf_train_step_pub(rf_model *m, rf_workspace *ws, rf_grads *const *per_task, rf_optimizer *o,
                            const rf_batch *b, double *loss, rf_error *err)
{
    double lk[RF_MAX_TASKS];
    rf_status st = rf_balance_task_grads_(m, ws, b, per_task, lk, loss, err);
    return st ? st : rf_pub_step(o, m, per_task, m->K, err);
}
