/* balance_step.c - the balancer behind train.balance: one step from the per-task gradients
 * through a gradient-level method (coefficients from the Gram matrix, the combined gradient to
 * Adam) or an update-level optimizer (PUB, AdaTask). See include/resflow/balance.h.
 *
 * A gradient-level method's optimizer is Adam whose saved state also carries the balancer's
 * (the method's state, e.g. uncertainty's log-variances and their moments or Nash-MTL's cached
 * weights and next solve; PCGrad's random state; the last weights), so a checkpoint of a
 * balanced run (rf_optimizer_save_state of rf_balancer_optimizer) resumes it bit for bit. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn/adam.h"
#include "nn/balance_impl.h"
#include "nn/model_impl.h"

struct rf_balancer {
    int method, K;
    const rf_grad_method_ *gm; /* NULL: an update-level optimizer */
    rf_optimizer *opt;
    rf_grads *comb;            /* the combined (or summed) gradient */
    unsigned char *shared;
    size_t n;
    void *state;
    uint64_t rng;
    double w[RF_MAX_TASKS];
    rf_train_cfg tc;
};

static const char *const names[RF_BALANCE_COUNT] = {"none", "pub", "uncertainty", "pcgrad",
                                                     "mgda", "cagrad", "nash_mtl", "adatask"};

const char *rf_balance_name(int method)
{
    return method >= 0 && method < RF_BALANCE_COUNT ? names[method] : "?";
}

static const rf_grad_method_ *grad_method(int method)
{
    switch (method) {
    case RF_BALANCE_UNCERTAINTY: return &rf_balance_uncertainty_;
    case RF_BALANCE_PCGRAD: return &rf_balance_pcgrad_;
    case RF_BALANCE_MGDA: return &rf_balance_mgda_;
    case RF_BALANCE_CAGRAD: return &rf_balance_cagrad_;
    case RF_BALANCE_NASH_MTL: return &rf_balance_nash_mtl_;
    default: return NULL;
    }
}

static int all_finite(const double *x, int n)
{
    for (int i = 0; i < n; i++)
        if (!isfinite(x[i])) return 0;
    return 1;
}

/* The method's coefficients, checked finite. */
static rf_status coeffs(const rf_grad_method_ *gm, void *state, const rf_balance_ctx_ *ctx, const double *M,
                        const double *loss, int K, double *ws, double *wt, rf_error *err)
{
    if (!all_finite(M, K * K)) return rf_errorf(err, RF_ENUMERIC, "balance %s: non-finite gradient Gram matrix", gm->name);
    if (loss && !all_finite(loss, K)) return rf_errorf(err, RF_ENUMERIC, "balance %s: non-finite task loss", gm->name);
    rf_status st = gm->coeffs(state, ctx, M, loss, K, ws, wt, err);
    if (st) return st;
    if (!all_finite(ws, K) || !all_finite(wt, K))
        return rf_errorf(err, RF_ENUMERIC, "balance %s: non-finite task weights", gm->name);
    return RF_OK;
}

rf_status rf_balance_coeffs(int method, const double *M, const double *loss, int K, uint64_t seed, double *ws,
                            double *wt, rf_error *err)
{
    const rf_grad_method_ *gm = grad_method(method);
    if (!gm) return rf_errorf(err, RF_EUSAGE, "rf_balance_coeffs: %s is not a gradient-level method", rf_balance_name(method));
    if (K < 1 || K > RF_MAX_TASKS) return rf_errorf(err, RF_EUSAGE, "rf_balance_coeffs: %d tasks (1..%d)", K, RF_MAX_TASKS);
    void *state = calloc(1, gm->state_size + 1);
    if (!state) return rf_errorf(err, RF_ENOMEM, "rf_balance_coeffs: out of memory");
    rf_train_cfg tc;
    memset(&tc, 0, sizeof tc);
    tc.lr = 1e-3f;
    tc.beta1 = 0.9f;
    tc.beta2 = 0.999f;
    tc.eps = 1e-8f;
    rf_balance_ctx_ ctx = {&tc, 1, &seed};
    rf_status st = coeffs(gm, state, &ctx, M, loss, K, ws, wt, err);
    free(state);
    return st;
}

/* ---- the optimizer of a gradient-level method: Adam + the balancer's state ---------------- */

typedef struct {
    rf_optimizer base;
    rf_adam_moments_ s;
    rf_balancer *b; /* the owner */
} gadam;

static void gadam_dense(rf_optimizer *o, rf_model *mdl, const rf_grads *gr)
{
    gadam *a = (gadam *)o;
    rf_adam_dense_(&a->b->tc, o->steps, mdl->params, a->s.m, a->s.v, rf_grads_dense(gr, NULL), a->s.n);
}

static void gadam_sparse(rf_optimizer *o, rf_model *mdl, const rf_grads *gr)
{
    gadam *a = (gadam *)o;
    const uint32_t *rows;
    float *eg;
    size_t nr = rf_grads_emb(gr, &rows, &eg);
    rf_adam_sparse_(&a->b->tc, o->steps, mdl->emb, a->s.em, a->s.ev, mdl->E, rows, eg, nr);
}

/* body: u64 n | u64 ne | u32 method | u32 K | u64 rng | K f64 weights | u64 bytes of the
 * method's state | the method's state | the moments (adam.h) */
static size_t gadam_size(const rf_optimizer *o)
{
    const gadam *a = (const gadam *)o;
    return 40 + 8 * (size_t)a->b->K + a->b->gm->saved_size + rf_adam_moments_bytes_(&a->s);
}

static void gadam_save(const rf_optimizer *o, unsigned char *p)
{
    const gadam *a = (const gadam *)o;
    const rf_balancer *b = a->b;
    wr64(p, a->s.n);
    wr64(p + 8, a->s.ne);
    wr32(p + 16, (uint32_t)b->method);
    wr32(p + 20, (uint32_t)b->K);
    wr64(p + 24, b->rng);
    rf_put_f64s_(p + 32, b->w, (size_t)b->K);
    p += 32 + 8 * (size_t)b->K;
    wr64(p, b->gm->saved_size);
    if (b->gm->save) b->gm->save(b->state, p + 8);
    rf_adam_moments_save_(&a->s, p + 8 + b->gm->saved_size);
}

static rf_status gadam_load(rf_optimizer *o, const unsigned char *p, size_t n, rf_error *err)
{
    gadam *a = (gadam *)o;
    rf_balancer *b = a->b;
    if (n != gadam_size(o) || rd64(p) != a->s.n || rd64(p + 8) != a->s.ne || rd32(p + 20) != (uint32_t)b->K)
        return rf_errorf(err, RF_EFORMAT, "optimizer state: balance state of another model shape");
    if (rd32(p + 16) != (uint32_t)b->method)
        return rf_errorf(err, RF_EFORMAT, "optimizer state: saved by train.balance %s, loading into %s",
                         rf_balance_name((int)rd32(p + 16)), rf_balance_name(b->method));
    const unsigned char *q = p + 32 + 8 * (size_t)b->K;
    if (rd64(q) != b->gm->saved_size)
        return rf_errorf(err, RF_EFORMAT, "optimizer state: %s state of %llu bytes, expected %zu", b->gm->name,
                         (unsigned long long)rd64(q), b->gm->saved_size);
    b->rng = rd64(p + 24);
    rf_get_f64s_(b->w, p + 32, (size_t)b->K);
    if (b->gm->load) b->gm->load(b->state, q + 8);
    rf_adam_moments_load_(&a->s, q + 8 + b->gm->saved_size);
    return RF_OK;
}

static void gadam_destroy(rf_optimizer *o)
{
    gadam *a = (gadam *)o;
    rf_adam_moments_free_(&a->s);
    free(a);
}

static const rf_optimizer_ops gadam_ops = {"adam+balance", gadam_dense,   gadam_sparse, gadam_size,
                                           gadam_save,     gadam_load,    gadam_destroy, 1};

static rf_optimizer *gadam_create(rf_balancer *b, const rf_model *mdl)
{
    gadam *a = calloc(1, sizeof *a);
    if (!a) return NULL;
    a->base.ops = &gadam_ops;
    a->b = b;
    if (rf_adam_moments_alloc_(&a->s, mdl->n_params, mdl->emb_off[mdl->F] * (size_t)mdl->E)) {
        gadam_destroy(&a->base);
        return NULL;
    }
    return &a->base;
}

void rf_balancer_free(rf_balancer *b)
{
    if (!b) return;
    rf_optimizer_free(b->opt);
    rf_grads_free(b->comb);
    free(b->shared);
    free(b->state);
    free(b);
}

rf_balancer *rf_balancer_create(const rf_model *m, const rf_train_cfg *tc, int method)
{
    if (method <= RF_BALANCE_NONE || method >= RF_BALANCE_COUNT) return NULL;
    rf_balancer *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    b->method = method;
    b->K = m->K;
    b->tc = *tc;
    b->n = m->n_params;
    b->rng = tc->seed ^ 0x7063677261640000ull;
    for (int k = 0; k < RF_MAX_TASKS; k++) b->w[k] = 1;
    b->gm = grad_method(method);
    if (method == RF_BALANCE_PUB) b->opt = rf_pub_create(m, tc, tc->balance_interval > 0 ? tc->balance_interval : 10);
    else if (method == RF_BALANCE_ADATASK) b->opt = rf_adatask_create_(m, tc);
    else b->opt = gadam_create(b, m);
    b->comb = rf_grads_create(m);
    b->shared = rf_balance_shared_mask_(m, NULL);
    b->state = calloc(1, (b->gm ? b->gm->state_size : 0) + 1);
    if (!b->opt || !b->comb || !b->shared || !b->state) {
        rf_balancer_free(b);
        return NULL;
    }
    return b;
}

int rf_balancer_weights(const rf_balancer *b, double *w)
{
    const double *a = b->method == RF_BALANCE_PUB ? rf_pub_alpha(b->opt) : b->w; /* PUB: as loaded too */
    for (int k = 0; k < b->K; k++) w[k] = a[k];
    return b->K;
}

rf_optimizer *rf_balancer_optimizer(const rf_balancer *b) { return b->opt; }

/* comb's dense slab := sum_k c_k g_k with c = ws on shared parameters, wt elsewhere */
static void combine_dense(rf_balancer *b, rf_grads *const *pt, int K, const double *ws, const double *wt)
{
    float *d = rf_grads_dense(b->comb, NULL);
    const float *g[RF_MAX_TASKS];
    float fs[RF_MAX_TASKS], ft[RF_MAX_TASKS];
    for (int k = 0; k < K; k++) {
        g[k] = rf_grads_dense(pt[k], NULL);
        fs[k] = (float)ws[k];
        ft[k] = (float)wt[k];
    }
    const unsigned char *sh = b->shared;
    size_t n = b->n;
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) {
        const float *c = sh[i] ? fs : ft;
        float s = 0;
        for (int k = 0; k < K; k++) s += c[k] * g[k][i];
        d[i] = s;
    }
}

rf_status rf_balancer_step(rf_balancer *b, rf_model *m, rf_grads *const *pt, const double *loss, rf_error *err)
{
    int K = b->K;
    if (m->K != K) return rf_errorf(err, RF_EUSAGE, "balance: a model of %d tasks for a balancer of %d", m->K, K);
    rf_status st;
    if (b->method == RF_BALANCE_PUB) {
        if ((st = rf_pub_step(b->opt, m, pt, K, err))) return st;
        memcpy(b->w, rf_pub_alpha(b->opt), (size_t)K * sizeof *b->w);
        return RF_OK;
    }
    double ws[RF_MAX_TASKS], wt[RF_MAX_TASKS];
    for (int k = 0; k < K; k++) ws[k] = wt[k] = 1;
    if (b->gm) {
        double M[RF_MAX_TASKS * RF_MAX_TASKS] = {0};
        const float *g[RF_MAX_TASKS];
        for (int k = 0; k < K; k++) g[k] = rf_grads_dense(pt[k], NULL);
        for (size_t i = 0; i < b->n; i++) { /* serial: the same sums whatever the thread count */
            if (!b->shared[i]) continue;
            for (int k = 0; k < K; k++)
                for (int l = k; l < K; l++) M[k * K + l] += (double)g[k][i] * g[l][i];
        }
        for (int k = 0; k < K; k++)
            for (int l = 0; l < k; l++) M[k * K + l] = M[l * K + k];
        rf_balance_emb_gram_(pt, K, M);
        rf_balance_ctx_ ctx = {&b->tc, b->opt->steps + 1, &b->rng};
        if ((st = coeffs(b->gm, b->state, &ctx, M, loss, K, ws, wt, err))) return st;
    }
    combine_dense(b, pt, K, ws, wt);
    if ((st = rf_balance_emb_combine_(b->comb, pt, K, ws, err))) return st;
    if (b->method == RF_BALANCE_ADATASK) st = rf_adatask_step_(b->opt, m, pt, K, b->comb, err);
    else rf_optimizer_step(b->opt, m, b->comb);
    rf_grads_emb_clear(b->comb);
    if (st) return st;
    memcpy(b->w, ws, (size_t)K * sizeof *b->w);
    return RF_OK;
}

rf_status rf_balance_task_grads_(rf_model *m, rf_workspace *ws, const rf_batch *bt, rf_grads *const *per_task,
                                 double *loss_k, double *loss, rf_error *err)
{
    rf_status st = rf_model_forward(m, ws, bt, 1, err);
    if (st) return st;
    double l = 0;
    if ((st = rf_model_task_grads(m, ws, bt, per_task, loss_k, err))) return st;
    for (int k = 0; k < m->K; k++) l += loss_k[k];
    if (loss) *loss = l;
    if (!isfinite(l)) return rf_errorf(err, RF_ENUMERIC, "non-finite training loss (%g)", l);
    rf_model_adopt_buffers(m, ws);
    return RF_OK;
}

rf_status rf_train_step_balanced(rf_model *m, rf_workspace *ws, rf_grads *const *per_task, rf_balancer *b,
                                 const rf_batch *bt, double *loss, rf_error *err)
{
    double lk[RF_MAX_TASKS];
    rf_status st = rf_balance_task_grads_(m, ws, bt, per_task, lk, loss, err);
    return st ? st : rf_balancer_step(b, m, per_task, lk, err);
}
