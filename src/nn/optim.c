/* optim.c - the optimizer interface and Adam over the dense slab (torch.optim.Adam semantics)
 * with lazy row-sparse Adam over embedding rows (torch.optim.SparseAdam semantics). See
 * include/resflow/optim.h. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "core/bigmem.h"
#include "core/simd.h"
#include "core/bytes.h"
#include "nn/adam.h"
#include "nn/model_impl.h"
#include "resflow/optim.h"

/* ---- the interface ---------------------------------------------------------------------- */

void rf_optimizer_free(rf_optimizer *o)
{
    if (o) o->ops->destroy(o);
}
const char *rf_optimizer_name(const rf_optimizer *o) { return o->ops->name; }
long rf_optimizer_steps(const rf_optimizer *o) { return o->steps; }
void rf_optimizer_begin(rf_optimizer *o) { o->steps++; }
void rf_optimizer_update_dense(rf_optimizer *o, rf_model *m, const rf_grads *g) { o->ops->update_dense(o, m, g); }
void rf_optimizer_update_sparse(rf_optimizer *o, rf_model *m, const rf_grads *g) { o->ops->update_sparse(o, m, g); }
int rf_optimizer_sparse_rowwise(const rf_optimizer *o) { return o->ops->sparse_rowwise; }

void rf_optimizer_step(rf_optimizer *o, rf_model *m, const rf_grads *g)
{
    rf_optimizer_begin(o);
    rf_optimizer_update_dense(o, m, g);
    rf_optimizer_update_sparse(o, m, g);
}

/* State layout: "RFOPT\0\0\0" | name (16 bytes, NUL-padded) | u64 steps | u64 body bytes | body. */
#define OPT_HDR 40
size_t rf_optimizer_state_size(const rf_optimizer *o) { return OPT_HDR + o->ops->state_size(o); }

void rf_optimizer_save_state(const rf_optimizer *o, unsigned char *dst)
{
    memset(dst, 0, OPT_HDR);
    memcpy(dst, "RFOPT", 5);
    size_t nl = strlen(o->ops->name);
    memcpy(dst + 8, o->ops->name, nl < 15 ? nl : 15);
    wr64(dst + 24, (uint64_t)o->steps);
    wr64(dst + 32, (uint64_t)o->ops->state_size(o));
    o->ops->save(o, dst + OPT_HDR);
}

rf_status rf_optimizer_load_state(rf_optimizer *o, const unsigned char *src, size_t n, rf_error *err)
{
    if (n < OPT_HDR || memcmp(src, "RFOPT", 5) != 0)
        return rf_errorf(err, RF_EFORMAT, "optimizer state: not an optimizer state (%zu bytes)", n);
    char name[16] = {0};
    memcpy(name, src + 8, 15);
    if (strcmp(name, o->ops->name) != 0)
        return rf_errorf(err, RF_EFORMAT, "optimizer state: saved by optimizer %s, loading into %s", name,
                         o->ops->name);
    uint64_t body = rd64(src + 32), want = o->ops->state_size(o);
    if (body != want || n - OPT_HDR != body)
        return rf_errorf(err, RF_EFORMAT, "optimizer state: %llu bytes of state, this model needs %llu",
                         (unsigned long long)(n - OPT_HDR), (unsigned long long)want);
    rf_status st = o->ops->load(o, src + OPT_HDR, body, err);
    if (st == RF_OK) o->steps = (long)rd64(src + 24);
    return st;
}

/* ---- Adam ------------------------------------------------------------------------------- */

/* The shared kernels (adam.h); element-wise, so a portable build clones them per CPU. This file
 * is compiled with -fno-math-errno (Makefile): sqrtf's argument, a second moment, is never
 * negative, and without errno the loops vectorise (the same correctly rounded square roots,
 * several at a time; before, a scalar vsqrtss with a branch to errno per element). */
RF_HOT_CLONES
void rf_adam_dense_(const rf_train_cfg *tc, long t, float *p, float *m, float *v, const float *g, size_t n)
{
    double b1 = tc->beta1, b2 = tc->beta2;
    double bc1 = 1.0 - pow(b1, (double)t), bc2 = 1.0 - pow(b2, (double)t);
    float lr = tc->lr, eps = tc->eps, wd = tc->weight_decay;
    float step = (float)(lr / bc1), sq2 = (float)sqrt(bc2);
    float fb1 = (float)b1, fb2 = (float)b2;
#pragma omp parallel if (n > 65536)
    {
        int th = omp_get_thread_num(), nt = omp_get_num_threads();
        size_t i0 = n / 16 * th / nt * 16, i1 = th == nt - 1 ? n : n / 16 * (th + 1) / nt * 16;
        /* The weights were read by every thread in this step's GEMMs, so each of their lines is
         * shared with the other cores' caches, and the loop's stores waited, a few lines at a
         * time, for the other copies to be invalidated: a thread's lines are claimed first, one
         * store of the value already there per line, so that many such requests are in flight
         * (prefetchw did not help). A ResFlow step of the reference setup (AMD EPYC Zen 4): this
         * update 295 -> 106-110 us with the two vCPUs far apart (c2c ~330 ns), 75-89 -> 61-67 us
         * near (docs/performance.md, "Claiming the weights"). */
        volatile float *own = p;
        for (size_t i = i0; i < i1; i += 16) own[i] = own[i];
#pragma omp simd
        for (size_t i = i0; i < i1; i++) {
            float gi = g[i] + wd * p[i];
            m[i] = fb1 * m[i] + (1 - fb1) * gi;
            v[i] = fb2 * v[i] + (1 - fb2) * gi * gi;
            p[i] -= step * m[i] / (sqrtf(v[i]) / sq2 + eps);
        }
    }
}

/* The sparse update's rows are random lines of three tables much larger than the caches, three
 * per row. Fetched only into L1, 8 rows ahead, their 24 misses are about as many as one core
 * keeps in flight for L1, and the loop waited on memory; fetched into L2 32 rows ahead as
 * well (prefetcht1), many more are in flight, and the L1 fetch then waits on L2 only. A bf16
 * ResFlow step of the reference setup (bench_train, AMD EPYC Zen 4, near placement): the
 * embedding phase 0.69-0.76 -> 0.40-0.46 ms (docs/performance.md, "More misses in flight"). */
enum { ADAM_PF_L1 = 8, ADAM_PF_L2 = 32 };

RF_HOT_CLONES
void rf_adam_sparse_(const rf_train_cfg *tc, long t, float *emb, float *em, float *ev, int E, const uint32_t *rows,
                     const float *eg, size_t nr)
{
    double b1 = tc->beta1, b2 = tc->beta2;
    double bc1 = 1.0 - pow(b1, (double)t), bc2 = 1.0 - pow(b2, (double)t);
    float eps = tc->eps, fb1 = (float)b1, fb2 = (float)b2;
    float elr = tc->emb_lr > 0 ? tc->emb_lr : tc->lr, ewd = tc->emb_weight_decay;
    float estep = (float)(elr * sqrt(bc2) / bc1);
#pragma omp parallel for schedule(static) if (nr * (size_t)E > 65536)
    for (size_t i = 0; i < nr; i++) {
        size_t o2 = (size_t)rows[i] * E;
        if (i + ADAM_PF_L2 < nr) { /* rows are scattered: fetch ahead, into L2 first */
            size_t po = (size_t)rows[i + ADAM_PF_L2] * E;
            for (int j = 0; j < E; j += 16) {
                __builtin_prefetch(emb + po + j, 0, 2);
                __builtin_prefetch(em + po + j, 0, 2);
                __builtin_prefetch(ev + po + j, 0, 2);
            }
        }
        if (i + ADAM_PF_L1 < nr) {
            size_t po = (size_t)rows[i + ADAM_PF_L1] * E;
            for (int j = 0; j < E; j += 16) {
                __builtin_prefetch(emb + po + j, 1);
                __builtin_prefetch(em + po + j, 1);
                __builtin_prefetch(ev + po + j, 1);
            }
        }
        float *restrict pe = emb + o2, *restrict me = em + o2, *restrict ve = ev + o2;
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

int rf_adam_moments_alloc_(rf_adam_moments_ *s, size_t n, size_t ne)
{
    s->n = n;
    s->ne = ne;
    s->m = calloc(n ? n : 1, sizeof(float));
    s->v = calloc(n ? n : 1, sizeof(float));
    s->em = rf_big_calloc_(1, ne * sizeof(float));
    s->ev = rf_big_calloc_(1, ne * sizeof(float));
    return s->m && s->v && s->em && s->ev ? 0 : -1;
}

void rf_adam_moments_free_(rf_adam_moments_ *s)
{
    free(s->m);
    free(s->v);
    free(s->em);
    free(s->ev);
}

size_t rf_adam_moments_bytes_(const rf_adam_moments_ *s) { return 4 * (2 * s->n + 2 * s->ne); }

void rf_adam_moments_save_(const rf_adam_moments_ *s, unsigned char *p)
{
    rf_put_f32s(p, s->m, s->n);
    rf_put_f32s(p + 4 * s->n, s->v, s->n);
    rf_put_f32s(p + 8 * s->n, s->em, s->ne);
    rf_put_f32s(p + 8 * s->n + 4 * s->ne, s->ev, s->ne);
}

void rf_adam_moments_load_(rf_adam_moments_ *s, const unsigned char *p)
{
    rf_get_f32s(s->m, p, s->n);
    rf_get_f32s(s->v, p + 4 * s->n, s->n);
    rf_get_f32s(s->em, p + 8 * s->n, s->ne);
    rf_get_f32s(s->ev, p + 8 * s->n + 4 * s->ne, s->ne);
}

typedef struct {
    rf_optimizer base;
    rf_train_cfg tc;
    rf_adam_moments_ s;
} adam;

static void adam_update_dense(rf_optimizer *o, rf_model *mdl, const rf_grads *gr)
{
    adam *a = (adam *)o;
    rf_adam_dense_(&a->tc, o->steps, mdl->params, a->s.m, a->s.v, rf_grads_dense(gr, NULL), a->s.n);
}

static void adam_update_sparse(rf_optimizer *o, rf_model *mdl, const rf_grads *gr)
{
    /* embeddings: only the rows of this batch */
    adam *a = (adam *)o;
    const uint32_t *rows;
    float *eg;
    size_t nr = rf_grads_emb(gr, &rows, &eg);
    rf_adam_sparse_(&a->tc, o->steps, mdl->emb, a->s.em, a->s.ev, mdl->E, rows, eg, nr);
}

/* body: u64 n | u64 ne | the moments (adam.h) */
static size_t adam_state_size(const rf_optimizer *o) { return 16 + rf_adam_moments_bytes_(&((const adam *)o)->s); }

static void adam_save(const rf_optimizer *o, unsigned char *p)
{
    const adam *a = (const adam *)o;
    wr64(p, a->s.n);
    wr64(p + 8, a->s.ne);
    rf_adam_moments_save_(&a->s, p + 16);
}

static rf_status adam_load(rf_optimizer *o, const unsigned char *p, size_t n, rf_error *err)
{
    adam *a = (adam *)o;
    if (n < 16 || rd64(p) != a->s.n || rd64(p + 8) != a->s.ne)
        return rf_errorf(err, RF_EFORMAT, "optimizer state: Adam moments of another model shape");
    rf_adam_moments_load_(&a->s, p + 16);
    return RF_OK;
}

static void adam_destroy(rf_optimizer *o)
{
    adam *a = (adam *)o;
    rf_adam_moments_free_(&a->s);
    free(a);
}

static const rf_optimizer_ops adam_ops = {"adam",     adam_update_dense, adam_update_sparse, adam_state_size,
                                          adam_save, adam_load,         adam_destroy, 1};

rf_optimizer *rf_adam_create(const rf_model *mdl, const rf_train_cfg *tc)
{
    adam *a = calloc(1, sizeof *a);
    if (!a) return NULL;
    a->base.ops = &adam_ops;
    a->tc = *tc;
    if (rf_adam_moments_alloc_(&a->s, mdl->n_params, mdl->emb_off[mdl->F] * (size_t)mdl->E)) {
        adam_destroy(&a->base);
        return NULL;
    }
    return &a->base;
}
