/* synth.c - simulated e-commerce search log (the embedded default dataset).
 *
 * The generative model is described in docs/simulator.md. In short: users, queries and
 * items are drawn with Zipf(-Mandelbrot) popularity; every request (user, query, hour,
 * device) shows a list of list_len items, mostly from the query's category, ranked by a
 * noisy engine score; click and purchase probabilities come from latent factors, with a
 * relevance part shared by both tasks and a purchase-only part (price vs. purchase power,
 * shop trust, an independent user x item interaction).
 *
 * Generation is deterministic for a seed: every random draw comes from an explicit-state
 * xoshiro256** generator; the world (entities) has its own stream and every chunk of lists
 * has two streams (features, labels) derived from (seed, chunk index), so the output does
 * not depend on the number of threads. Intercepts are calibrated by safeguarded Newton
 * iterations on a fixed-size leading sample of rows (single-threaded, deterministic).
 *
 * This file: the options, their checks and the search preset (its world and lists);
 * synth_presets.c: the kuairand and rating presets; synth_rows.c: the row making it shares with
 * the ecom preset (synth_ecom.c); synth_sample.c: alias tables, shuffles,
 * Zipf weights and calibration (shared declarations in synthint.h).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#endif
#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "core/bigmem.h"
#include "data/synthint.h"

/* ---- constants of the generative model (see docs/simulator.md) ----------------------- */
#define N_PBUCKET 10          /* price buckets (global deciles of log price) */
#define MAX_CAT 64

#define P_ON_CAT 0.85f        /* a listed item comes from the query's category */
#define P_QUERY_FAV 0.5f      /* the query comes from the user's favourite category */
#define P_MAIN_DEVICE 0.8f

/* click logit weights */
#define W_POS 0.3f            /* - W_POS * ln(position) */
#define W_UI 1.2f             /* user . item */
#define W_QI 1.5f             /* query . item */
#define W_QUAL_C 0.7f         /* item quality */
#define W_PRICE_C 0.15f       /* - W_PRICE_C * relative price */
#define SD_NOISE_C 0.3f
/* purchase (conditional on click) logit weights */
#define RHO 0.6f              /* shared relevance */
#define W_QUAL_O 0.2f
#define W_SHOP_O 0.6f
#define W_PRICE_O 0.3f        /* - W_PRICE_O * relative price */
#define W_OVER_O 0.8f         /* - W_OVER_O * max(0, relative price - tolerance(power)) */
#define TOL_PER_POWER 0.35f
#define W_ZW 1.4f             /* independent user x item purchase interaction */
#define SD_NOISE_O 0.3f
/* engine ranking score */
#define ENG_QI 1.2f
#define ENG_QUAL 0.5f
#define SD_ENG 1.0f

/* ---- the simulated world ---------------------------------------------------------------- */
typedef struct {
    float v[LAT];      /* relevance latent */
    float w[LAT];      /* purchase latent */
    float quality;     /* item quality (click and purchase) */
    float relprice;    /* log price minus its category's mean log price */
    float price_std;   /* standardised log price (dense feature) */
    float hist_ctr;    /* historical CTR estimate, log-odds scale, noisier for tail items */
    uint32_t cat, brand, shop, pbucket; /* 1-based ids */
} item_t;

typedef shopper_t user_t;

typedef struct {
    float q[LAT];
    uint32_t cat; /* 0-based */
} query_t;

typedef struct {
    uint32_t n_users, n_items, n_queries, n_cat, n_brand, n_shop;
    item_t *items;
    user_t *users;
    query_t *queries;
    float *shop_trust; /* (n_shop) */
    /* popularity */
    float *u_prob, *i_prob, *q_prob;
    uint32_t *u_alias, *i_alias, *q_alias;
    grouped_alias_t items_by_cat, queries_by_cat;
    daytime_t tm; /* time of day and device */
} world_t;

static void world_free(world_t *w)
{
    free(w->items);
    free(w->users);
    free(w->queries);
    free(w->shop_trust);
    free(w->u_prob);
    free(w->i_prob);
    free(w->q_prob);
    free(w->u_alias);
    free(w->i_alias);
    free(w->q_alias);
    rf_synth_grouped_free_(&w->items_by_cat);
    rf_synth_grouped_free_(&w->queries_by_cat);
}

static rf_status world_build(world_t *W, const rf_synth_opts *o, rf_error *err)
{
    memset(W, 0, sizeof *W);
    rng_t r;
    rng_seed(&r, o->seed, 0x5EEDull);
    uint32_t NU = o->n_users, NI = o->n_items, NQ = o->n_queries;
    W->n_users = NU;
    W->n_items = NI;
    W->n_queries = NQ;
    uint32_t nc = NI / 16;
    if (nc > MAX_CAT) nc = MAX_CAT;
    if (nc < 1) nc = 1;
    W->n_cat = nc;
    uint32_t bpc = NI / (nc * 50), spc = NI / (nc * 20); /* brands / shops per category */
    if (bpc < 1) bpc = 1;
    if (spc < 1) spc = 1;
    W->n_brand = nc * bpc;
    W->n_shop = nc * spc;

    uint32_t NMAX = NU > NI ? NU : NI;
    if (NQ > NMAX) NMAX = NQ;
    double *wts = malloc((size_t)NMAX * sizeof *wts);
    double *scaled = malloc((size_t)NMAX * sizeof *scaled);
    uint32_t *work = malloc(2 * (size_t)NMAX * sizeof *work);
    uint32_t *grp = malloc((size_t)NMAX * sizeof *grp);
    float *lp = malloc((size_t)NI * sizeof *lp);
    float *cat_vec = malloc((size_t)nc * LAT * sizeof *cat_vec);
    float *cat_mu = malloc((size_t)nc * sizeof *cat_mu);
    float *brand_vec = malloc((size_t)W->n_brand * LAT * sizeof *brand_vec);
    float *brand_wvec = malloc((size_t)W->n_brand * LAT * sizeof *brand_wvec);
    float *brand_prem = malloc((size_t)W->n_brand * sizeof *brand_prem);
    double *cat_cdf = malloc((size_t)nc * sizeof *cat_cdf);
    double *bcdf = malloc((size_t)bpc * sizeof *bcdf);
    double *scdf = malloc((size_t)spc * sizeof *scdf);
    float seg_vec[N_SEG][LAT], seg_zvec[N_SEG][LAT];
    W->items = malloc((size_t)NI * sizeof *W->items);
    W->users = malloc((size_t)NU * sizeof *W->users);
    W->queries = malloc((size_t)NQ * sizeof *W->queries);
    W->shop_trust = malloc((size_t)W->n_shop * sizeof *W->shop_trust);
    W->u_prob = malloc((size_t)NU * sizeof *W->u_prob);
    W->u_alias = malloc((size_t)NU * sizeof *W->u_alias);
    W->i_prob = malloc((size_t)NI * sizeof *W->i_prob);
    W->i_alias = malloc((size_t)NI * sizeof *W->i_alias);
    W->q_prob = malloc((size_t)NQ * sizeof *W->q_prob);
    W->q_alias = malloc((size_t)NQ * sizeof *W->q_alias);
    rf_status st = RF_OK;
    rf_advise_huge_(W->items, (size_t)NI * sizeof *W->items);
    rf_advise_huge_(W->users, (size_t)NU * sizeof *W->users);
    if (!wts || !scaled || !work || !grp || !lp || !cat_vec || !cat_mu || !brand_vec ||
        !brand_wvec || !brand_prem || !cat_cdf || !bcdf || !scdf || !W->items || !W->users ||
        !W->queries || !W->shop_trust || !W->u_prob || !W->u_alias || !W->i_prob ||
        !W->i_alias || !W->q_prob || !W->q_alias) {
        st = rf_errorf(err, RF_ENOMEM, "synth: out of memory building the simulated world");
        goto done;
    }

    /* categories: latent centre, mean log price, popularity by id (rank = id) */
    {
        double acc = 0;
        for (uint32_t c = 0; c < nc; c++) {
            float *cv = cat_vec + (size_t)c * LAT; /* unit norm: no category is "stronger" */
            rf_synth_randvec_(cv, &r, 1.0f);
            float nrm = sqrtf(dot(cv, cv));
            for (int k = 0; k < LAT; k++) cv[k] = nrm > 0 ? cv[k] / nrm : (k == 0);
            cat_mu[c] = 2.0f + 4.0f * rng_uf(&r); /* e^2 .. e^6 */
            acc += pow((double)c + 1.0, -ZIPF_CAT);
            cat_cdf[c] = acc;
        }
        acc = 0;
        for (uint32_t k = 0; k < bpc; k++) bcdf[k] = (acc += pow((double)k + 1.0, -ZIPF_SUB));
        acc = 0;
        for (uint32_t k = 0; k < spc; k++) scdf[k] = (acc += pow((double)k + 1.0, -ZIPF_SUB));
    }
    for (uint32_t b = 0; b < W->n_brand; b++) {
        rf_synth_randvec_(brand_vec + (size_t)b * LAT, &r, 1.0f / sqrtf((float)LAT));
        rf_synth_randvec_(brand_wvec + (size_t)b * LAT, &r, 1.0f / sqrtf((float)LAT));
        brand_prem[b] = 0.4f * rng_normal(&r);
    }
    for (uint32_t s = 0; s < W->n_shop; s++) W->shop_trust[s] = 0.4f * rng_normal(&r);
    for (int s = 0; s < N_SEG; s++) {
        rf_synth_randvec_(seg_vec[s], &r, 1.0f / sqrtf((float)LAT));
        rf_synth_randvec_(seg_zvec[s], &r, 1.0f / sqrtf((float)LAT));
    }

    /* items */
    if (rf_synth_zipf_weights_(wts, NI, ZIPF_ITEM, ZIPF_ITEM_OFF, &r)) goto oom;
    {
        double ml = 0, ml2 = 0;
        for (uint32_t i = 0; i < NI; i++) {
            double l = log(wts[i]);
            ml += l;
            ml2 += l * l;
        }
        ml /= NI;
        double sl = sqrt(fmax(ml2 / NI - ml * ml, 1e-12));
        for (uint32_t i = 0; i < NI; i++) {
            item_t *it = &W->items[i];
            uint32_t c = rf_synth_draw_cdf_(cat_cdf, nc, &r);
            /* make sure every category has at least one item when possible */
            if (i < nc) c = i;
            uint32_t b = c * bpc + rf_synth_draw_cdf_(bcdf, bpc, &r);
            uint32_t s = rng_uf(&r) < 0.85f ? c * spc + rf_synth_draw_cdf_(scdf, spc, &r)
                                            : rng_below(&r, W->n_shop);
            it->cat = c + 1;
            it->brand = b + 1;
            it->shop = s + 1;
            grp[i] = c;
            const float *cv = cat_vec + (size_t)c * LAT, *bv = brand_vec + (size_t)b * LAT,
                        *bw = brand_wvec + (size_t)b * LAT;
            for (int k = 0; k < LAT; k++) {
                it->v[k] =
                    0.8f * cv[k] + 0.35f * bv[k] + 0.45f / sqrtf((float)LAT) * rng_normal(&r);
                it->w[k] = 0.5f * bw[k] + 0.85f / sqrtf((float)LAT) * rng_normal(&r);
            }
            float popz = (float)((log(wts[i]) - ml) / sl);
            it->quality = 0.3f * popz + 0.45f * rng_normal(&r);
            float rel = brand_prem[b] + 0.5f * rng_normal(&r);
            lp[i] = cat_mu[c] + rel;
            it->relprice = rel;
            /* historical CTR estimate: noise shrinks with popularity (more impressions) */
            float tail = (float)(1.0 - (popz + 3.0) / 6.0);
            if (tail < 0) tail = 0;
            if (tail > 1) tail = 1;
            it->hist_ctr = W_QUAL_C * it->quality + (0.1f + 0.9f * tail) * rng_normal(&r);
        }
        rf_synth_alias_build_into_(W->i_prob, W->i_alias, wts, NI, work, scaled);
        /* centre the historical CTR feature on its impression-weighted mean */
        double hw = 0, hs = 0;
        for (uint32_t i = 0; i < NI; i++) {
            hw += wts[i];
            hs += wts[i] * W->items[i].hist_ctr;
        }
        for (uint32_t i = 0; i < NI; i++) W->items[i].hist_ctr -= (float)(hs / hw);
        /* price buckets: global deciles of log price; standardised log price */
        double m = 0, m2 = 0;
        for (uint32_t i = 0; i < NI; i++) {
            m += lp[i];
            m2 += (double)lp[i] * lp[i];
        }
        m /= NI;
        double sd = sqrt(fmax(m2 / NI - m * m, 1e-12));
        float *sorted = malloc((size_t)NI * sizeof *sorted);
        if (!sorted) goto oom;
        memcpy(sorted, lp, (size_t)NI * sizeof *sorted);
        qsort(sorted, NI, sizeof *sorted, rf_synth_cmp_float_);
        float cut[N_PBUCKET - 1];
        for (int k = 1; k < N_PBUCKET; k++) cut[k - 1] = sorted[(size_t)NI * (size_t)k / N_PBUCKET];
        free(sorted);
        for (uint32_t i = 0; i < NI; i++) {
            uint32_t bkt = 0;
            while (bkt < N_PBUCKET - 1 && lp[i] >= cut[bkt]) bkt++;
            W->items[i].pbucket = bkt + 1;
            W->items[i].price_std = (float)((lp[i] - m) / sd);
        }
        if (rf_synth_grouped_build_(&W->items_by_cat, grp, wts, NI, nc)) goto oom;
    }

    /* queries */
    if (rf_synth_zipf_weights_(wts, NQ, ZIPF_QUERY, ZIPF_QUERY_OFF, &r)) goto oom;
    for (uint32_t q = 0; q < NQ; q++) {
        query_t *qu = &W->queries[q];
        uint32_t c = rf_synth_draw_cdf_(cat_cdf, nc, &r);
        qu->cat = c;
        grp[q] = c;
        const float *cv = cat_vec + (size_t)c * LAT;
        for (int k = 0; k < LAT; k++)
            qu->q[k] = 0.9f * cv[k] + 0.45f / sqrtf((float)LAT) * rng_normal(&r);
    }
    rf_synth_alias_build_into_(W->q_prob, W->q_alias, wts, NQ, work, scaled);
    if (rf_synth_grouped_build_(&W->queries_by_cat, grp, wts, NQ, nc)) goto oom;

    /* users */
    if (rf_synth_zipf_weights_(wts, NU, ZIPF_USER, ZIPF_USER_OFF, &r)) goto oom;
    {
        for (uint32_t u = 0; u < NU; u++)
            rf_synth_shopper_(&W->users[u], cat_cdf, nc, cat_vec, LAT, &seg_vec[0][0], &seg_zvec[0][0], &r);
        rf_synth_alias_build_into_(W->u_prob, W->u_alias, wts, NU, work, scaled);
    }

    rf_synth_daytime_(&W->tm);
    goto done;
oom:
    st = rf_errorf(err, RF_ENOMEM, "synth: out of memory building the simulated world");
done:
    free(wts);
    free(scaled);
    free(work);
    free(grp);
    free(lp);
    free(cat_vec);
    free(cat_mu);
    free(brand_vec);
    free(brand_wvec);
    free(brand_prem);
    free(cat_cdf);
    free(bcdf);
    free(scdf);
    if (st != RF_OK) world_free(W);
    return st;
}

/* ---- rows ------------------------------------------------------------------------------- */
enum {
    F_USER, F_SEG, F_POWER, F_TIER, F_QUERY, F_QCAT, F_ITEM, F_ICAT, F_BRAND, F_SHOP,
    F_PBUCKET, F_POS, F_HOUR, F_DEVICE, N_FIELDS
};
static const char *const field_names[N_FIELDS] = {
    "user_id", "user_segment", "user_power", "city_tier", "query_id", "query_cat", "item_id",
    "item_cat", "brand", "shop", "price_bucket", "position", "hour", "device"};
enum { D_PRICE, D_HIST, N_DENSE };
static const char *const dense_names[N_DENSE] = {"log_price", "item_hist_ctr"};

/* Generate lists [l0, l1) into ds; truth columns receive the logit parts (no intercepts):
 * col 0 click, then (2 tasks) order|click or (3 tasks) cart|click, order|cart. */
static void gen_lists(const void *world, const rf_synth_opts *o, rf_dataset *ds, size_t l0,
                      size_t l1, rng_t *r, void *scratch)
{
    const world_t *W = world;
    slot_t *slots = scratch;
    const int F = ds->F, D = ds->D, K = ds->K, T = o->tasks, LL = o->list_len;
    for (size_t l = l0; l < l1; l++) {
        size_t row0 = l * (size_t)LL;
        int len = LL;
        if (row0 + (size_t)len > ds->n) len = (int)(ds->n - row0);
        uint32_t ui = alias_draw(W->u_prob, W->u_alias, W->n_users, r);
        const user_t *us = &W->users[ui];
        uint32_t qi;
        if (rng_uf(r) < P_QUERY_FAV && grouped_nonempty(&W->queries_by_cat, us->favcat))
            qi = grouped_draw(&W->queries_by_cat, us->favcat, r);
        else
            qi = alias_draw(W->q_prob, W->q_alias, W->n_queries, r);
        const query_t *qu = &W->queries[qi];
        uint32_t hour = alias_draw(W->tm.hour_prob, W->tm.hour_alias, N_HOUR, r);
        uint32_t dev = rng_uf(r) < P_MAIN_DEVICE ? us->device : 1 + rng_below(r, N_DEVICE);
        /* retrieve list_len items (no duplicates, bounded retries), score them by the engine */
        for (int j = 0; j < LL; j++) {
            uint32_t it = rf_synth_retrieve_(slots, j, &W->items_by_cat, qu->cat, P_ON_CAT, W->i_prob,
                                             W->i_alias, W->n_items, r);
            const item_t *ti = &W->items[it];
            slots[j].item = it;
            slots[j].score =
                ENG_QI * dot(qu->q, ti->v) + ENG_QUAL * ti->quality + SD_ENG * rng_normal(r);
        }
        rf_synth_rank_(slots, LL); /* by engine score */
        for (int j = 0; j < len; j++) {
            size_t i = row0 + (size_t)j;
            const item_t *ti = &W->items[slots[j].item];
            uint32_t *c = ds->cat + i * (size_t)F;
            c[F_USER] = ui + 1;
            c[F_SEG] = us->seg;
            c[F_POWER] = us->power;
            c[F_TIER] = us->tier;
            c[F_QUERY] = qi + 1;
            c[F_QCAT] = qu->cat + 1;
            c[F_ITEM] = slots[j].item + 1;
            c[F_ICAT] = ti->cat;
            c[F_BRAND] = ti->brand;
            c[F_SHOP] = ti->shop;
            c[F_PBUCKET] = ti->pbucket;
            c[F_POS] = (uint32_t)j + 1;
            c[F_HOUR] = hour + 1;
            c[F_DEVICE] = dev;
            if (D) {
                float *d = ds->dense + i * (size_t)D;
                d[D_PRICE] = ti->price_std;
                d[D_HIST] = ti->hist_ctr;
            }
            ds->group[i] = (uint64_t)l;

            float rel = W_UI * dot(us->u, ti->v) + W_QI * dot(qu->q, ti->v);
            float xc = rel - W_POS * logf((float)(j + 1)) + W_QUAL_C * ti->quality -
                       W_PRICE_C * ti->relprice + W->tm.hour_click[hour] +
                       W->tm.dev_click[dev] + SD_NOISE_C * rng_normal(r);
            float tol = TOL_PER_POWER * ((float)us->power - 3.0f);
            float over = ti->relprice - tol;
            float buy = W_SHOP_O * W->shop_trust[ti->shop - 1] - W_PRICE_O * ti->relprice -
                        W_OVER_O * (over > 0 ? over : 0) + W_ZW * dot(us->z, ti->w) +
                        W->tm.hour_order[hour] + W->tm.dev_order[dev];
            float *t = ds->truth + i * (size_t)K;
            t[0] = xc;
            if (T == 2) {
                t[1] = RHO * rel + W_QUAL_O * ti->quality + buy + SD_NOISE_O * rng_normal(r);
            } else {
                /* cart|click: mostly relevance and price; order|cart: the purchase part */
                t[1] = RHO * rel + W_QUAL_O * ti->quality + 0.5f * buy + SD_NOISE_O * rng_normal(r);
                t[2] = 0.3f * RHO * rel + 0.5f * W_QUAL_O * ti->quality + buy +
                       SD_NOISE_O * rng_normal(r);
            }
        }
    }
}

rf_synth_opts rf_synth_default(void)
{
    rf_synth_opts o;
    memset(&o, 0, sizeof o);
    o.rows = 1000000;
    o.seed = 1;
    o.tasks = 2;
    o.n_users = 50000;
    o.n_items = 100000;
    o.n_queries = 20000;
    o.ctr = 0.05f;
    o.cvr = 0.03f;
    o.cart_rate = 0.15f;
    o.list_len = 20;
    return o;
}

static int rate_ok(float x) { return x > 0.0f && x < 1.0f; }

static rf_status validate(const rf_synth_opts *o, rf_error *err)
{
    if (o->rows == 0) return rf_errorf(err, RF_EUSAGE, "synth: rows must be > 0");
    if (o->rows > ((size_t)1 << 40))
        return rf_errorf(err, RF_EUSAGE, "synth: rows %zu too large (max 2^40)", o->rows);
    if (o->preset < RF_SYNTH_SEARCH || o->preset > RF_SYNTH_ECOM)
        return rf_errorf(err, RF_EUSAGE, "synth: unknown preset %d", o->preset);
    int chain = o->preset == RF_SYNTH_SEARCH || o->preset == RF_SYNTH_ECOM;
    if (chain && o->tasks != 2 && o->tasks != 3)
        return rf_errorf(err, RF_EUSAGE, "synth: tasks must be 2 or 3 (got %d)", o->tasks);
    if (o->n_users == 0 || o->n_items == 0 || o->n_queries == 0)
        return rf_errorf(err, RF_EUSAGE,
                         "synth: n_users, n_items and n_queries must be > 0 (got %u, %u, %u)",
                         o->n_users, o->n_items, o->n_queries);
    if (o->n_users > (1u << 30) || o->n_items > (1u << 30) || o->n_queries > (1u << 30))
        return rf_errorf(err, RF_EUSAGE, "synth: n_users/n_items/n_queries must be <= 2^30");
    if (o->list_len <= 0 || o->list_len > MAX_LIST_LEN)
        return rf_errorf(err, RF_EUSAGE, "synth: list_len must be in [1, %d] (got %d)",
                         MAX_LIST_LEN, o->list_len);
    if (!rate_ok(o->ctr))
        return rf_errorf(err, RF_EUSAGE, "synth: ctr must be in (0, 1) (got %g)", (double)o->ctr);
    if (!rate_ok(o->cvr))
        return rf_errorf(err, RF_EUSAGE, "synth: cvr must be in (0, 1) (got %g)", (double)o->cvr);
    if (chain && o->tasks == 3) {
        if (!rate_ok(o->cart_rate))
            return rf_errorf(err, RF_EUSAGE, "synth: cart_rate must be in (0, 1) (got %g)",
                             (double)o->cart_rate);
        if (!(o->cvr < o->cart_rate))
            return rf_errorf(err, RF_EUSAGE,
                             "synth: with 3 tasks cvr (%g) must be < cart_rate (%g), since "
                             "order implies cart",
                             (double)o->cvr, (double)o->cart_rate);
    }
    return RF_OK;
}

rf_status rf_synth_generate(const rf_synth_opts *o, rf_dataset **out, rf_error *err)
{
    if (!out) return rf_errorf(err, RF_EUSAGE, "synth: out is NULL");
    *out = NULL;
    if (!o) return rf_errorf(err, RF_EUSAGE, "synth: options are NULL");
    rf_status st = validate(o, err);
    if (st != RF_OK) return st;

    if (o->preset == RF_SYNTH_KUAIRAND) return rf_synth_gen_kuairand_(o, out, err);
    if (o->preset == RF_SYNTH_RATING) return rf_synth_gen_rating_(o, out, err);
    if (o->preset == RF_SYNTH_ECOM) return rf_synth_gen_ecom_(o, out, err);
    /* labels: the T task labels, then (order_counts) order_count */
    const int T = o->tasks, K = T + (o->order_counts ? 1 : 0), F = N_FIELDS, D = N_DENSE;
    const size_t n = o->rows, LL = (size_t)o->list_len;
    world_t W;
    st = world_build(&W, o, err);
    if (st != RF_OK) return st;
    /* per item: mean extra units of an order (cheaper than its category buys in multiples) */
    float *item_lam = malloc((size_t)W.n_items * sizeof *item_lam);
    if (!item_lam) {
        world_free(&W);
        return rf_errorf(err, RF_ENOMEM, "synth: out of memory");
    }
    for (uint32_t i = 0; i < W.n_items; i++) item_lam[i] = rf_synth_order_lam_(W.items[i].relprice);

    rf_dataset *ds = rf_synth_rows_alloc_(n, F, D, K);
    if (!ds) {
        world_free(&W);
        free(item_lam);
        return rf_errorf(err, RF_ENOMEM, "synth: out of memory for %zu rows", n);
    }
    for (int f = 0; f < F; f++) {
        snprintf(ds->fields[f].name, RF_NAME_MAX, "%s", field_names[f]);
        ds->fields[f].multi = 0;
        ds->fields[f].pooling = RF_POOL_SUM;
        ds->fields[f].sep = 0;
    }
    ds->fields[F_USER].vocab = W.n_users + 1;
    ds->fields[F_SEG].vocab = N_SEG + 1;
    ds->fields[F_POWER].vocab = N_POWER + 1;
    ds->fields[F_TIER].vocab = N_TIER + 1;
    ds->fields[F_QUERY].vocab = W.n_queries + 1;
    ds->fields[F_QCAT].vocab = W.n_cat + 1;
    ds->fields[F_ITEM].vocab = W.n_items + 1;
    ds->fields[F_ICAT].vocab = W.n_cat + 1;
    ds->fields[F_BRAND].vocab = W.n_brand + 1;
    ds->fields[F_SHOP].vocab = W.n_shop + 1;
    ds->fields[F_PBUCKET].vocab = N_PBUCKET + 1;
    ds->fields[F_POS].vocab = (uint32_t)LL + 1;
    ds->fields[F_HOUR].vocab = N_HOUR + 1;
    ds->fields[F_DEVICE].vocab = N_DEVICE + 1;
    for (int d = 0; d < D; d++) snprintf(ds->dense_names[d], RF_NAME_MAX, "%s", dense_names[d]);
    if (K > T) snprintf(ds->label_names[T], RF_NAME_MAX, "order_count");
    if (T == 2) {
        snprintf(ds->label_names[0], RF_NAME_MAX, "click");
        snprintf(ds->label_names[1], RF_NAME_MAX, "order");
    } else {
        snprintf(ds->label_names[0], RF_NAME_MAX, "click");
        snprintf(ds->label_names[1], RF_NAME_MAX, "cart");
        snprintf(ds->label_names[2], RF_NAME_MAX, "order");
    }

    const size_t n_lists = (n + LL - 1) / LL;
    const size_t n_chunks = (n_lists + LISTS_PER_CHUNK - 1) / LISTS_PER_CHUNK;

    /* pass 1: features and logit parts */
    int oom = rf_synth_lists_(gen_lists, &W, o, ds, n_lists, 0x100000ull, LL * sizeof(slot_t));
    world_free(&W);
    if (oom) {
        rf_dataset_free(ds);
        free(item_lam);
        return rf_errorf(err, RF_ENOMEM, "synth: out of memory");
    }

    /* rf_synth_calibrate_ intercepts on the leading rows (lists are i.i.d.) */
    size_t m = n < CALIB_ROWS ? n : CALIB_ROWS;
    double b[3] = {0, 0, 0};
    double *wc = calloc(m, sizeof *wc);
    if (!wc) {
        rf_dataset_free(ds);
        free(item_lam);
        return rf_errorf(err, RF_ENOMEM, "synth: out of memory");
    }
    b[0] = rf_synth_calibrate_(ds->truth, (size_t)K, NULL, m, (double)o->ctr);
    for (size_t i = 0; i < m; i++) wc[i] = sigm(b[0] + ds->truth[i * (size_t)K]);
    rf_synth_calib_chain_(ds->truth, K, wc, m, o, b);
    free(wc);

    /* pass 2: true entire-space probabilities and labels (order counts on their own stream) */
    rf_synth_labels_(ds, T, b, NULL, 0, -1, K > T ? item_lam : NULL, F_ITEM, n_chunks, LISTS_PER_CHUNK * LL,
                     0x100001ull, 0x300000ull, o);
    free(item_lam);
    *out = ds;
    return RF_OK;
}

