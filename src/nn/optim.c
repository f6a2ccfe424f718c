/* optim.c - Adam over the dense slab (torch.optim.Adam semantics) and lazy row-sparse Adam
 * over embedding rows (torch.optim.SparseAdam semantics). See include/resflow/optim.h. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/bigalloc.h"
#include "resflow/optim.h"

struct rf_adam {
    rf_train_cfg tc;
    long t;
    float *m, *v;         /* (n_params) */
    float *em, *ev;       /* (emb rows, E) */
    size_t n, ne;
};

rf_adam *rf_adam_create(const rf_model *mdl, const rf_train_cfg *tc)
{
    rf_adam *a = calloc(1, sizeof *a);
    if (!a) return NULL;
    a->tc = *tc;
    a->n = mdl->n_params;
    a->ne = mdl->emb_off[mdl->F] * (size_t)mdl->E;
    a->m = calloc(a->n ? a->n : 1, sizeof(float));
    a->v = calloc(a->n ? a->n : 1, sizeof(float));
    a->em = rf_big_alloc(a->ne * sizeof(float), 1);
    a->ev = rf_big_alloc(a->ne * sizeof(float), 1);
    if (!a->m || !a->v || !a->em || !a->ev) {
        rf_adam_free(a);
        return NULL;
    }
    return a;
}

void rf_adam_free(rf_adam *a)
{
    if (!a) return;
    free(a->m);
    free(a->v);
    free(a->em);
    free(a->ev);
    free(a);
}

long rf_adam_steps(const rf_adam *a) { return a->t; }

void rf_adam_begin(rf_adam *a) { a->t++; }

void rf_adam_update_dense(rf_adam *a, rf_model *mdl)
{
    const rf_train_cfg *tc = &a->tc;
    double b1 = tc->beta1, b2 = tc->beta2;
    double bc1 = 1.0 - pow(b1, (double)a->t), bc2 = 1.0 - pow(b2, (double)a->t);
    float lr = tc->lr, eps = tc->eps, wd = tc->weight_decay;
    float step = (float)(lr / bc1), sq2 = (float)sqrt(bc2);
    float fb1 = (float)b1, fb2 = (float)b2;
    float *p = mdl->params, *g = mdl->grads, *m = a->m, *v = a->v;
    size_t n = a->n;
#pragma omp parallel for simd schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) {
        float gi = g[i] + wd * p[i];
        m[i] = fb1 * m[i] + (1 - fb1) * gi;
        v[i] = fb2 * v[i] + (1 - fb2) * gi * gi;
        p[i] -= step * m[i] / (sqrtf(v[i]) / sq2 + eps);
    }
}

void rf_adam_update_sparse(rf_adam *a, rf_model *mdl, const rf_workspace *ws)
{
    /* embeddings: only the rows of this batch */
    const rf_train_cfg *tc = &a->tc;
    double b1 = tc->beta1, b2 = tc->beta2;
    double bc1 = 1.0 - pow(b1, (double)a->t), bc2 = 1.0 - pow(b2, (double)a->t);
    float eps = tc->eps, fb1 = (float)b1, fb2 = (float)b2;
    const uint32_t *rows;
    float *eg;
    size_t nr = rf_ws_emb_grads(ws, &rows, &eg);
    int E = mdl->E;
    float elr = tc->emb_lr > 0 ? tc->emb_lr : tc->lr, ewd = tc->emb_weight_decay;
    float estep = (float)(elr * sqrt(bc2) / bc1);
#pragma omp parallel for schedule(static) if (nr * (size_t)E > 65536)
    for (size_t i = 0; i < nr; i++) {
        size_t o = (size_t)rows[i] * E;
        if (i + 8 < nr) { /* rows are scattered: fetch ahead */
            size_t po = (size_t)rows[i + 8] * E;
            __builtin_prefetch(mdl->emb + po, 1);
            __builtin_prefetch(a->em + po, 1);
            __builtin_prefetch(a->ev + po, 1);
        }
        float *restrict pe = mdl->emb + o, *restrict me = a->em + o, *restrict ve = a->ev + o;
        const float *restrict ge = eg + i * E;
#pragma omp simd
        for (int j = 0; j < E; j++) {
            float gi = ge[j] + ewd * pe[j];
            me[j] = fb1 * me[j] + (1 - fb1) * gi;
            ve[j] = fb2 * ve[j] + (1 - fb2) * gi * gi;
            pe[j] -= estep * me[j] / (sqrtf(ve[j]) + eps);
        }
    }
}

void rf_adam_step(rf_adam *a, rf_model *mdl, const rf_workspace *ws)
{
    rf_adam_begin(a);
    rf_adam_update_dense(a, mdl);
    rf_adam_update_sparse(a, mdl, ws);
}
