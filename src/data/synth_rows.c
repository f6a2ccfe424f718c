/* synth_rows.c - the pieces of worlds and rows that the presets share: the parallel pass over
 * chunks of lists (every preset); for the search (synth.c) and ecom (synth_ecom.c) presets the
 * shoppers, time of day and device, retrieval of distinct items, the ranker's order, the
 * dataset's buffers, the intercepts and labels of the click -> (cart ->) order chain, the units
 * of an order. */
#include <stdlib.h>
#include <string.h>

#include "core/bigmem.h"
#include "core/omp.h"
#include "core/parfor.h"
#include "data/synthint.h"

typedef struct {
    synth_gen_fn gen;
    const void *world;
    const rf_synth_opts *o;
    rf_dataset *ds;
    size_t n_lists;
    uint64_t stream0;
} lists_ctx;

static void lists_chunk(void *ctx, void *scratch, size_t c)
{
    const lists_ctx *x = ctx;
    rng_t r;
    rng_seed(&r, x->o->seed, 2 * (uint64_t)c + x->stream0);
    size_t l0 = c * LISTS_PER_CHUNK, l1 = l0 + LISTS_PER_CHUNK;
    x->gen(x->world, x->o, x->ds, l0, l1 > x->n_lists ? x->n_lists : l1, &r, scratch);
}

int rf_synth_lists_(synth_gen_fn gen, const void *world, const rf_synth_opts *o, rf_dataset *ds, size_t n_lists,
                    uint64_t stream0, size_t scratch_bytes)
{
    lists_ctx x = {gen, world, o, ds, n_lists, stream0};
    size_t n_chunks = (n_lists + LISTS_PER_CHUNK - 1) / LISTS_PER_CHUNK;
    return rf_parfor_scratch_(o->threads, n_chunks, scratch_bytes, lists_chunk, &x);
}

uint32_t rf_synth_retrieve_(const slot_t *slots, int j, const grouped_alias_t *by_cat, uint32_t cat, float p_on,
                            const float *prob, const uint32_t *alias, uint32_t n, rng_t *r)
{
    const int on_ok = grouped_nonempty(by_cat, cat);
    uint32_t it = 0;
    for (int tries = 0; tries < 32; tries++) {
        /* after 16 duplicates (a small category) fall back to the whole catalogue */
        if (on_ok && tries < 16 && rng_uf(r) < p_on) it = grouped_draw(by_cat, cat, r);
        else it = alias_draw(prob, alias, n, r);
        int dup = 0;
        for (int k = 0; k < j && !dup; k++) dup = slots[k].item == it;
        if (!dup) break;
    }
    return it;
}

void rf_synth_rank_(slot_t *slots, int n)
{
    /* insertion sort, descending score; ties keep draw order */
    for (int j = 1; j < n; j++) {
        slot_t s = slots[j];
        int k = j - 1;
        while (k >= 0 && slots[k].score < s.score) {
            slots[k + 1] = slots[k];
            k--;
        }
        slots[k + 1] = s;
    }
}

void rf_synth_shopper_(shopper_t *us, const double *cat_cdf, uint32_t nc, const float *cvec, size_t cstride,
                       const float *segv, const float *segz, rng_t *r)
{
    static const double tier_cdf[N_TIER] = {0.12, 0.35, 0.62, 0.84, 1.0};
    static const double dev_cdf[N_DEVICE] = {0.35, 0.85, 1.0};
    uint32_t seg = rng_below(r, N_SEG);
    uint32_t tier = rf_synth_draw_cdf_(tier_cdf, N_TIER, r); /* 0 = tier 1 (richest) */
    int age = (int)(seg % 6);                                 /* 0 youngest .. 5 oldest */
    float pw = 3.0f + 0.45f * (2.0f - (float)tier) + 0.25f * (float)(age >= 2 && age <= 4) -
               0.4f * (float)(age == 0) + 0.9f * rng_normal(r);
    int p = (int)lrintf(pw);
    p = p < 1 ? 1 : p > N_POWER ? N_POWER : p;
    uint32_t dev = rf_synth_draw_cdf_(dev_cdf, N_DEVICE, r);
    if (p >= 4 && rng_uf(r) < 0.3f) dev = 0; /* affluent users lean ios */
    us->seg = seg + 1;
    us->power = (uint32_t)p;
    us->tier = tier + 1;
    us->device = dev + 1;
    us->favcat = rf_synth_draw_cdf_(cat_cdf, nc, r);
    const float *cv = cvec + (size_t)us->favcat * cstride, *sv = segv + (size_t)seg * LAT,
                *sz = segz + (size_t)seg * LAT;
    for (int k = 0; k < LAT; k++) {
        us->u[k] = 0.6f * cv[k] + 0.35f * sv[k] + 0.55f / sqrtf((float)LAT) * rng_normal(r);
        us->z[k] = 0.5f * sz[k] + 0.85f / sqrtf((float)LAT) * rng_normal(r);
    }
}

void rf_synth_daytime_(daytime_t *t)
{
    double hw[N_HOUR], hs[N_HOUR];
    uint32_t hwork[2 * N_HOUR];
    for (int h = 0; h < N_HOUR; h++) {
        hw[h] = 0.15 + 0.6 * exp(-(h - 12.5) * (h - 12.5) / 8.0) + 1.0 * exp(-(h - 21.0) * (h - 21.0) / 6.0) +
                0.45 * (h >= 8 && h <= 23);
        t->hour_click[h] = (h >= 19 && h <= 23) ? 0.12f : (h <= 5 ? -0.1f : 0.0f);
        t->hour_order[h] = (h >= 20 && h <= 23) ? 0.15f : (h <= 5 ? -0.2f : 0.0f);
    }
    rf_synth_alias_build_into_(t->hour_prob, t->hour_alias, hw, N_HOUR, hwork, hs);
    static const float dc[4] = {0, 0.05f, 0.0f, -0.2f}, dor[4] = {0, 0.15f, 0.0f, 0.1f};
    memcpy(t->dev_click, dc, sizeof dc);
    memcpy(t->dev_order, dor, sizeof dor);
}

rf_dataset *rf_synth_rows_alloc_(size_t n, int F, int D, int K)
{
    rf_dataset *ds = rf_dataset_alloc(n, F, D, K);
    if (!ds) return NULL;
    ds->group = malloc(n * sizeof *ds->group);
    ds->truth = malloc(n * (size_t)K * sizeof *ds->truth);
    if (!ds->group || !ds->truth) {
        rf_dataset_free(ds);
        return NULL;
    }
    rf_advise_huge_(ds->cat, n * (size_t)F * sizeof *ds->cat);
    rf_advise_huge_(ds->dense, n * (size_t)D * sizeof *ds->dense);
    rf_advise_huge_(ds->labels, n * (size_t)K * sizeof *ds->labels);
    rf_advise_huge_(ds->truth, n * (size_t)K * sizeof *ds->truth);
    rf_advise_huge_(ds->group, n * sizeof *ds->group);
    return ds;
}

void rf_synth_calib_chain_(const float *truth, int K, double *wc, size_t m, const rf_synth_opts *o, double *b)
{
    if (o->tasks == 2) {
        b[1] = rf_synth_calibrate_(truth + 1, (size_t)K, wc, m, (double)o->cvr);
        return;
    }
    b[1] = rf_synth_calibrate_(truth + 1, (size_t)K, wc, m, (double)o->cart_rate);
    double s0 = 0, s1 = 0;
    for (size_t i = 0; i < m; i++) {
        s0 += wc[i];
        wc[i] *= sigm(b[1] + truth[i * (size_t)K + 1]);
        s1 += wc[i];
    }
    double cart = s0 > 0 ? s1 / s0 : (double)o->cart_rate;
    double tgt = (double)o->cvr / cart;
    b[2] = rf_synth_calibrate_(truth + 2, (size_t)K, wc, m, tgt > 0.999 ? 0.999 : tgt);
}

void rf_synth_chain_row_(float *t, float *y, int T, const double *b, double p0, int cf, float lam, rng_t *r,
                         rng_t *rq)
{
    double p = p0;
    int alive = rng_uf(r) < (float)p;
    y[0] = (float)alive;
    t[0] = (float)p;
    for (int k = 1; k < T; k++) {
        double pk = sigm(b[k] + t[k]);
        int pot = rng_uf(r) < (float)pk; /* would pass this stage if it reached it */
        p *= pk;
        alive = alive && pot;
        y[k] = (float)alive;
        t[k] = (float)p;
        if (cf >= 0) {
            y[cf + k - 1] = (float)pot;
            t[cf + k - 1] = (float)pk;
        }
    }
    if (lam < 0) return;
    /* order count: 1 + Poisson(lam) units when ordered, else 0 */
    y[T] = alive ? (float)(1 + rng_poisson(rq, lam)) : 0.0f;
    t[T] = (float)(p * (1.0 + (double)lam));
}

/* extra units ~ Poisson(LAM_ORDER * exp(-LAM_PRICE * relative price)) */
#define LAM_ORDER 0.35f
#define LAM_PRICE 0.8f

float rf_synth_order_lam_(float relprice)
{
    float lam = LAM_ORDER * expf(-LAM_PRICE * relprice);
    return lam < 0.02f ? 0.02f : lam > 3.0f ? 3.0f : lam;
}

void rf_synth_labels_(rf_dataset *ds, int T, const double *b, float (*exam)(uint32_t), int pos_col, int cf,
                      const float *item_lam, int item_col, size_t n_chunks, size_t rows_per_chunk, uint64_t s_row,
                      uint64_t s_count, const rf_synth_opts *o)
{
    const size_t n = ds->n, F = (size_t)ds->F, K = (size_t)ds->K;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(rf_omp_threads(o->threads))
#endif
    for (size_t c = 0; c < n_chunks; c++) {
        rng_t r, rq;
        rng_seed(&r, o->seed, 2 * (uint64_t)c + s_row);
        rng_seed(&rq, o->seed, (uint64_t)c + s_count);
        size_t i0 = c * rows_per_chunk, i1 = i0 + rows_per_chunk;
        if (i1 > n) i1 = n;
        for (size_t i = i0; i < i1; i++) {
            float *t = ds->truth + i * K, *y = ds->labels + i * K;
            double p0 = sigm(b[0] + t[0]);
            if (exam) p0 = exam(ds->cat[i * F + (size_t)pos_col]) * p0;
            float lam = item_lam ? item_lam[ds->cat[i * F + (size_t)item_col] - 1] : -1.0f;
            rf_synth_chain_row_(t, y, T, b, p0, cf, lam, &r, &rq);
        }
    }
}
