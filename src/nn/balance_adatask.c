/* balance_adatask.c - AdaTask (Yang et al., "AdaTask: A Task-Aware Adaptive Learning Rate
 * Approach to Multi-Task Learning", AAAI'23), the update-manipulation method of train.balance:
 * Adam whose moments of each shared dense parameter are kept per task,
 *   m_k = b1 m_k + (1-b1) g_k,  v_k = b2 v_k + (1-b2) g_k^2,
 *   p <- p - lr*wd*p - lr * sum_k (m_k/(1-b1^t)) / (sqrt(v_k/(1-b2^t)) + eps)
 * (weight decay decoupled and applied once, as PUB here), so no task's gradient scale sets
 * another task's step size. Task-specific dense parameters: Adam (as rf_adam_create) on the
 * summed gradient; embeddings: lazy Adam on the summed rows. Extra memory: 2 (K - 1) floats
 * per shared dense parameter. State saves and loads through the optimizer interface. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/bytes.h"
#include "nn/adam.h"
#include "nn/balance_impl.h"
#include "nn/model_impl.h"

typedef struct {
    rf_optimizer base;
    rf_train_cfg tc;
    int K;
    rf_adam_moments_ s;  /* task-specific dense and embedding moments (shared entries unused) */
    size_t ns, *idx;     /* the shared dense parameters */
    float *mk, *vk;      /* (K, ns) per-task moments */
} adatask;

static const rf_optimizer_ops adatask_ops;

/* through the plain interface: Adam on the summed gradient */
static void at_dense(rf_optimizer *o, rf_model *mdl, const rf_grads *g)
{
    adatask *a = (adatask *)o;
    rf_adam_dense_(&a->tc, o->steps, mdl->params, a->s.m, a->s.v, rf_grads_dense(g, NULL), a->s.n);
}

static void at_sparse(rf_optimizer *o, rf_model *mdl, const rf_grads *g)
{
    adatask *a = (adatask *)o;
    const uint32_t *rows;
    float *eg;
    size_t nr = rf_grads_emb(g, &rows, &eg);
    rf_adam_sparse_(&a->tc, o->steps, mdl->emb, a->s.em, a->s.ev, mdl->E, rows, eg, nr);
}

rf_status rf_adatask_step_(rf_optimizer *o, rf_model *mdl, rf_grads *const *pt, int K, const rf_grads *sum,
                           rf_error *err)
{
    if (!o || o->ops != &adatask_ops) return rf_errorf(err, RF_EUSAGE, "AdaTask step: not an AdaTask optimizer");
    adatask *a = (adatask *)o;
    if (K != a->K) return rf_errorf(err, RF_EUSAGE, "AdaTask step: %d per-task gradients for %d tasks", K, a->K);
    o->steps++;
    const rf_train_cfg *tc = &a->tc;
    double t = (double)o->steps;
    float fb1 = tc->beta1, fb2 = tc->beta2, eps = tc->eps, lr = tc->lr, wd = tc->weight_decay;
    float ibc1 = (float)(1 / (1 - pow(tc->beta1, t))), sq2 = (float)sqrt(1 - pow(tc->beta2, t));
    float *p = mdl->params;
    /* task-specific (and shared, overwritten below from their saved values) by plain Adam */
    const float *gs = rf_grads_dense(sum, NULL);
    float *save = malloc((a->ns ? a->ns : 1) * sizeof *save);
    if (!save) {
        o->steps--;
        return rf_errorf(err, RF_ENOMEM, "AdaTask step: out of memory");
    }
    for (size_t j = 0; j < a->ns; j++) save[j] = p[a->idx[j]];
    rf_adam_dense_(tc, o->steps, p, a->s.m, a->s.v, gs, a->s.n);
#pragma omp parallel for schedule(static) if (a->ns > 65536)
    for (size_t j = 0; j < a->ns; j++) {
        size_t i = a->idx[j];
        float p0 = save[j], du = 0;
        for (int k = 0; k < K; k++) {
            float g = rf_grads_dense(pt[k], NULL)[i];
            float *m = a->mk + (size_t)k * a->ns + j, *v = a->vk + (size_t)k * a->ns + j;
            *m = fb1 * *m + (1 - fb1) * g;
            *v = fb2 * *v + (1 - fb2) * g * g;
            du += (*m * ibc1) / (sqrtf(*v) / sq2 + eps);
        }
        p[i] = p0 - lr * (wd * p0 + du);
    }
    free(save);
    at_sparse(o, mdl, sum);
    return RF_OK;
}

/* body: u64 n | u64 ne | u64 ns | u32 K | u32 0 | m, v | em, ev | mk, vk (K ns each) */
static size_t at_size(const rf_optimizer *o)
{
    const adatask *a = (const adatask *)o;
    return 32 + rf_adam_moments_bytes_(&a->s) + 8 * (size_t)a->K * a->ns;
}

static void at_save(const rf_optimizer *o, unsigned char *p)
{
    const adatask *a = (const adatask *)o;
    memset(p, 0, 32);
    wr64(p, a->s.n);
    wr64(p + 8, a->s.ne);
    wr64(p + 16, a->ns);
    wr32(p + 24, (uint32_t)a->K);
    p += 32;
    rf_adam_moments_save_(&a->s, p);
    p += rf_adam_moments_bytes_(&a->s);
    size_t q = (size_t)a->K * a->ns;
    rf_put_f32s(p, a->mk, q);
    rf_put_f32s(p + 4 * q, a->vk, q);
}

static rf_status at_load(rf_optimizer *o, const unsigned char *p, size_t n, rf_error *err)
{
    adatask *a = (adatask *)o;
    if (n < 32 || rd64(p) != a->s.n || rd64(p + 8) != a->s.ne || rd64(p + 16) != a->ns ||
        rd32(p + 24) != (uint32_t)a->K)
        return rf_errorf(err, RF_EFORMAT, "optimizer state: AdaTask state of another model shape");
    p += 32;
    rf_adam_moments_load_(&a->s, p);
    p += rf_adam_moments_bytes_(&a->s);
    size_t q = (size_t)a->K * a->ns;
    rf_get_f32s(a->mk, p, q);
    rf_get_f32s(a->vk, p + 4 * q, q);
    return RF_OK;
}

static void at_destroy(rf_optimizer *o)
{
    adatask *a = (adatask *)o;
    rf_adam_moments_free_(&a->s);
    free(a->idx);
    free(a->mk);
    free(a->vk);
    free(a);
}

static const rf_optimizer_ops adatask_ops = {"adatask", at_dense, at_sparse, at_size, at_save, at_load, at_destroy, 1};

rf_optimizer *rf_adatask_create_(const rf_model *mdl, const rf_train_cfg *tc)
{
    adatask *a = calloc(1, sizeof *a);
    if (!a) return NULL;
    a->base.ops = &adatask_ops;
    a->tc = *tc;
    a->K = mdl->K;
    int bad = rf_adam_moments_alloc_(&a->s, mdl->n_params, mdl->emb_off[mdl->F] * (size_t)mdl->E);
    unsigned char *sh = bad ? NULL : rf_balance_shared_mask_(mdl, &a->ns);
    if (sh) {
        a->idx = malloc((a->ns ? a->ns : 1) * sizeof *a->idx);
        a->mk = calloc((size_t)a->K * a->ns + 1, sizeof(float));
        a->vk = calloc((size_t)a->K * a->ns + 1, sizeof(float));
    }
    if (!sh || !a->idx || !a->mk || !a->vk) {
        free(sh);
        at_destroy(&a->base);
        return NULL;
    }
    for (size_t i = 0, j = 0; i < mdl->n_params; i++)
        if (sh[i]) a->idx[j++] = i;
    free(sh);
    return &a->base;
}
