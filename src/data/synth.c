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
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif
#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "resflow/data.h"

#include "core/bigmem.h"
#include "core/rng.h"

/* ---- constants of the generative model (see docs/simulator.md) ----------------------- */
#define LAT 8                 /* latent dimension */
#define N_SEG 12              /* user segments: 2 genders x 6 age buckets */
#define N_POWER 5             /* purchase-power levels */
#define N_TIER 5              /* city tiers */
#define N_PBUCKET 10          /* price buckets (global deciles of log price) */
#define N_HOUR 24
#define N_DEVICE 3            /* 1 ios, 2 android, 3 pc */
#define MAX_CAT 64
#define MAX_LIST_LEN 4096
#define LISTS_PER_CHUNK 512
#define CALIB_ROWS 262144

/* popularity (Zipf-Mandelbrot: weight(rank) = (rank + offset)^-exponent, rank from 1) */
#define ZIPF_USER 1.0
#define ZIPF_USER_OFF 10.0
#define ZIPF_ITEM 1.1
#define ZIPF_ITEM_OFF 5.0
#define ZIPF_QUERY 1.1
#define ZIPF_QUERY_OFF 5.0
#define ZIPF_CAT 0.9
#define ZIPF_SUB 1.0          /* brands/shops inside a category */

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
/* order counts: extra units ~ Poisson(LAM_ORDER * exp(-LAM_PRICE * relative price)) */
#define LAM_ORDER 0.35f
#define LAM_PRICE 0.8f

/* ---- RNG: the generator of core/rng.h, one stream per world and chunk ------------------- */
typedef struct {
    rf_rng g;
    rf_rng_spare sp; /* of rng_normal */
} rng_t;

static void rng_seed(rng_t *r, uint64_t seed, uint64_t stream)
{
    rf_rng_seed_stream(&r->g, seed, stream);
    r->sp.has = 0;
    r->sp.v = 0;
}
static inline uint64_t rng_next(rng_t *r) { return rf_rng_next(&r->g); }
static inline float rng_uf(rng_t *r) { return rf_rng_uniformf(&r->g); }
static inline uint32_t rng_below(rng_t *r, uint32_t n) { return rf_rng_below32(&r->g, n); }
static inline float rng_normal(rng_t *r) { return rf_rng_normalf(&r->g, &r->sp); }
static inline uint32_t rng_poisson(rng_t *r, float lam) { return rf_rng_poissonf(&r->g, lam); }

/* ---- Walker/Vose alias tables ----------------------------------------------------------- */
typedef struct {
    uint32_t n;
    float *prob;
    uint32_t *alias;
} alias_t;

/* Build into caller-provided prob/alias (n entries). w: weights (> 0 sum). work: 2n uint32. */
static void alias_build_into(float *prob, uint32_t *alias, const double *w, uint32_t n,
                             uint32_t *work, double *scaled)
{
    double sum = 0;
    for (uint32_t i = 0; i < n; i++) sum += w[i];
    uint32_t *small = work, *large = work + n;
    uint32_t ns = 0, nl = 0;
    for (uint32_t i = 0; i < n; i++) {
        scaled[i] = sum > 0 ? w[i] * n / sum : 1.0;
        if (scaled[i] < 1.0) small[ns++] = i;
        else large[nl++] = i;
    }
    while (ns && nl) {
        uint32_t s = small[--ns], l = large[nl - 1];
        prob[s] = (float)scaled[s];
        alias[s] = l;
        scaled[l] = (scaled[l] + scaled[s]) - 1.0;
        if (scaled[l] < 1.0) {
            nl--;
            small[ns++] = l;
        }
    }
    while (nl) {
        uint32_t l = large[--nl];
        prob[l] = 1.0f;
        alias[l] = l;
    }
    while (ns) {
        uint32_t s = small[--ns];
        prob[s] = 1.0f;
        alias[s] = s;
    }
}

static inline uint32_t alias_draw(const float *prob, const uint32_t *alias, uint32_t n, rng_t *r)
{
    uint64_t x = rng_next(r);
    uint32_t i = (uint32_t)(((x >> 32) * (uint64_t)n) >> 32);
    float u = (float)(x & 0xFFFFFF) * 0x1p-24f;
    return u < prob[i] ? i : alias[i];
}

/* A set of alias tables over disjoint groups of a population (e.g. items by category):
 * members[off[g] .. off[g+1]) are the indices of group g. */
typedef struct {
    uint32_t n_groups;
    uint32_t *off;     /* (n_groups + 1) */
    uint32_t *members; /* (n) */
    float *prob;       /* (n) */
    uint32_t *alias;   /* (n), local index within the group */
} grouped_alias_t;

static inline int grouped_nonempty(const grouped_alias_t *g, uint32_t grp)
{
    return g->off[grp + 1] > g->off[grp];
}

static inline uint32_t grouped_draw(const grouped_alias_t *g, uint32_t grp, rng_t *r)
{
    uint32_t o = g->off[grp], n = g->off[grp + 1] - o;
    return g->members[o + alias_draw(g->prob + o, g->alias + o, n, r)];
}

static void grouped_free(grouped_alias_t *g)
{
    free(g->off);
    free(g->members);
    free(g->prob);
    free(g->alias);
}

/* grp[i] in [0, n_groups) for i < n; w[i] weights. Returns 0 or -1 on OOM. */
static int grouped_build(grouped_alias_t *g, const uint32_t *grp, const double *w, uint32_t n,
                         uint32_t n_groups)
{
    memset(g, 0, sizeof *g);
    g->n_groups = n_groups;
    g->off = calloc((size_t)n_groups + 1, sizeof *g->off);
    g->members = malloc((size_t)n * sizeof *g->members);
    g->prob = malloc((size_t)n * sizeof *g->prob);
    g->alias = malloc((size_t)n * sizeof *g->alias);
    uint32_t *work = malloc(2 * (size_t)n * sizeof *work);
    double *scaled = malloc((size_t)n * sizeof *scaled);
    double *wl = malloc((size_t)n * sizeof *wl);
    uint32_t *fill = calloc((size_t)n_groups, sizeof *fill);
    int ok = g->off && g->members && g->prob && g->alias && work && scaled && wl && fill;
    if (ok) {
        for (uint32_t i = 0; i < n; i++) g->off[grp[i] + 1]++;
        for (uint32_t c = 0; c < n_groups; c++) g->off[c + 1] += g->off[c];
        for (uint32_t i = 0; i < n; i++) {
            uint32_t c = grp[i], p = g->off[c] + fill[c]++;
            g->members[p] = i;
            wl[p] = w[i];
        }
        for (uint32_t c = 0; c < n_groups; c++) {
            uint32_t o = g->off[c], m = g->off[c + 1] - o;
            if (m) alias_build_into(g->prob + o, g->alias + o, wl + o, m, work, scaled);
        }
    }
    free(work);
    free(scaled);
    free(wl);
    free(fill);
    if (!ok) {
        grouped_free(g);
        return -1;
    }
    return 0;
}


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

typedef struct {
    float u[LAT];
    float z[LAT];
    uint32_t seg, power, tier, favcat, device; /* 1-based ids (favcat 0-based) */
} user_t;

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
    float hour_prob[N_HOUR];
    uint32_t hour_alias[N_HOUR];
    float hour_click[N_HOUR], hour_order[N_HOUR];
    float dev_click[N_DEVICE + 1], dev_order[N_DEVICE + 1];
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
    grouped_free(&w->items_by_cat);
    grouped_free(&w->queries_by_cat);
}

static void randvec(float *x, rng_t *r, float sd)
{
    for (int k = 0; k < LAT; k++) x[k] = sd * rng_normal(r);
}

static inline float dot(const float *a, const float *b)
{
    float s = 0;
    for (int k = 0; k < LAT; k++) s += a[k] * b[k];
    return s;
}

static void shuffle_u32(uint32_t *a, uint32_t n, rng_t *r)
{
    for (uint32_t i = n; i > 1; i--) {
        uint32_t j = rng_below(r, i);
        uint32_t t = a[i - 1];
        a[i - 1] = a[j];
        a[j] = t;
    }
}

/* Zipf-Mandelbrot weights for a random assignment of ranks to n entities. */
static int zipf_weights(double *w, uint32_t n, double expo, double off, rng_t *r)
{
    uint32_t *perm = malloc((size_t)n * sizeof *perm);
    if (!perm) return -1;
    for (uint32_t i = 0; i < n; i++) perm[i] = i;
    shuffle_u32(perm, n, r);
    for (uint32_t i = 0; i < n; i++) w[i] = pow((double)perm[i] + 1.0 + off, -expo);
    free(perm);
    return 0;
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* Draw from a small discrete distribution given by cumulative weights (n entries). */
static uint32_t draw_cdf(const double *cdf, uint32_t n, rng_t *r)
{
    double u = (double)(rng_next(r) >> 11) * 0x1p-53 * cdf[n - 1];
    uint32_t i = 0;
    while (i + 1 < n && u >= cdf[i]) i++;
    return i;
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
            randvec(cv, &r, 1.0f);
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
        randvec(brand_vec + (size_t)b * LAT, &r, 1.0f / sqrtf((float)LAT));
        randvec(brand_wvec + (size_t)b * LAT, &r, 1.0f / sqrtf((float)LAT));
        brand_prem[b] = 0.4f * rng_normal(&r);
    }
    for (uint32_t s = 0; s < W->n_shop; s++) W->shop_trust[s] = 0.4f * rng_normal(&r);
    for (int s = 0; s < N_SEG; s++) {
        randvec(seg_vec[s], &r, 1.0f / sqrtf((float)LAT));
        randvec(seg_zvec[s], &r, 1.0f / sqrtf((float)LAT));
    }

    /* items */
    if (zipf_weights(wts, NI, ZIPF_ITEM, ZIPF_ITEM_OFF, &r)) goto oom;
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
            uint32_t c = draw_cdf(cat_cdf, nc, &r);
            /* make sure every category has at least one item when possible */
            if (i < nc) c = i;
            uint32_t b = c * bpc + draw_cdf(bcdf, bpc, &r);
            uint32_t s = rng_uf(&r) < 0.85f ? c * spc + draw_cdf(scdf, spc, &r)
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
        alias_build_into(W->i_prob, W->i_alias, wts, NI, work, scaled);
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
        qsort(sorted, NI, sizeof *sorted, cmp_float);
        float cut[N_PBUCKET - 1];
        for (int k = 1; k < N_PBUCKET; k++) cut[k - 1] = sorted[(size_t)NI * (size_t)k / N_PBUCKET];
        free(sorted);
        for (uint32_t i = 0; i < NI; i++) {
            uint32_t bkt = 0;
            while (bkt < N_PBUCKET - 1 && lp[i] >= cut[bkt]) bkt++;
            W->items[i].pbucket = bkt + 1;
            W->items[i].price_std = (float)((lp[i] - m) / sd);
        }
        if (grouped_build(&W->items_by_cat, grp, wts, NI, nc)) goto oom;
    }

    /* queries */
    if (zipf_weights(wts, NQ, ZIPF_QUERY, ZIPF_QUERY_OFF, &r)) goto oom;
    for (uint32_t q = 0; q < NQ; q++) {
        query_t *qu = &W->queries[q];
        uint32_t c = draw_cdf(cat_cdf, nc, &r);
        qu->cat = c;
        grp[q] = c;
        const float *cv = cat_vec + (size_t)c * LAT;
        for (int k = 0; k < LAT; k++)
            qu->q[k] = 0.9f * cv[k] + 0.45f / sqrtf((float)LAT) * rng_normal(&r);
    }
    alias_build_into(W->q_prob, W->q_alias, wts, NQ, work, scaled);
    if (grouped_build(&W->queries_by_cat, grp, wts, NQ, nc)) goto oom;

    /* users */
    if (zipf_weights(wts, NU, ZIPF_USER, ZIPF_USER_OFF, &r)) goto oom;
    {
        static const double tier_cdf[N_TIER] = {0.12, 0.35, 0.62, 0.84, 1.0};
        static const double dev_cdf[N_DEVICE] = {0.35, 0.85, 1.0};
        for (uint32_t u = 0; u < NU; u++) {
            user_t *us = &W->users[u];
            uint32_t seg = rng_below(&r, N_SEG);
            uint32_t tier = draw_cdf(tier_cdf, N_TIER, &r); /* 0 = tier 1 (richest) */
            int age = (int)(seg % 6); /* 0 youngest .. 5 oldest */
            float pw = 3.0f + 0.45f * (2.0f - (float)tier) + 0.25f * (float)(age >= 2 && age <= 4) -
                       0.4f * (float)(age == 0) + 0.9f * rng_normal(&r);
            int p = (int)lrintf(pw);
            if (p < 1) p = 1;
            if (p > N_POWER) p = N_POWER;
            uint32_t dev = draw_cdf(dev_cdf, N_DEVICE, &r);
            if (p >= 4 && rng_uf(&r) < 0.3f) dev = 0; /* affluent users lean ios */
            us->seg = seg + 1;
            us->power = (uint32_t)p;
            us->tier = tier + 1;
            us->device = dev + 1;
            us->favcat = draw_cdf(cat_cdf, nc, &r);
            const float *cv = cat_vec + (size_t)us->favcat * LAT;
            for (int k = 0; k < LAT; k++) {
                us->u[k] = 0.6f * cv[k] + 0.35f * seg_vec[seg][k] +
                           0.55f / sqrtf((float)LAT) * rng_normal(&r);
                us->z[k] = 0.5f * seg_zvec[seg][k] + 0.85f / sqrtf((float)LAT) * rng_normal(&r);
            }
        }
        alias_build_into(W->u_prob, W->u_alias, wts, NU, work, scaled);
    }

    /* time of day and device */
    {
        double hw[N_HOUR];
        uint32_t hwork[2 * N_HOUR];
        double hs[N_HOUR];
        for (int h = 0; h < N_HOUR; h++) {
            double x = 0.15 + 0.6 * exp(-(h - 12.5) * (h - 12.5) / 8.0) +
                       1.0 * exp(-(h - 21.0) * (h - 21.0) / 6.0) + 0.45 * (h >= 8 && h <= 23);
            hw[h] = x;
            W->hour_click[h] = (h >= 19 && h <= 23) ? 0.12f : (h <= 5 ? -0.1f : 0.0f);
            W->hour_order[h] = (h >= 20 && h <= 23) ? 0.15f : (h <= 5 ? -0.2f : 0.0f);
        }
        alias_build_into(W->hour_prob, W->hour_alias, hw, N_HOUR, hwork, hs);
        W->dev_click[0] = 0;
        W->dev_click[1] = 0.05f;
        W->dev_click[2] = 0.0f;
        W->dev_click[3] = -0.2f;
        W->dev_order[0] = 0;
        W->dev_order[1] = 0.15f;
        W->dev_order[2] = 0.0f;
        W->dev_order[3] = 0.1f;
    }
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

typedef struct {
    uint32_t item;
    float score;
} slot_t;

/* Generate lists [l0, l1) into ds; truth columns receive the logit parts (no intercepts):
 * col 0 click, then (2 tasks) order|click or (3 tasks) cart|click, order|cart. */
static void gen_lists(const world_t *W, const rf_synth_opts *o, rf_dataset *ds, size_t l0,
                      size_t l1, rng_t *r, slot_t *slots)
{
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
        uint32_t hour = alias_draw(W->hour_prob, W->hour_alias, N_HOUR, r);
        uint32_t dev = rng_uf(r) < P_MAIN_DEVICE ? us->device : 1 + rng_below(r, N_DEVICE);
        int on_ok = grouped_nonempty(&W->items_by_cat, qu->cat);
        /* retrieve list_len items (no duplicates, bounded retries), score them by the engine */
        for (int j = 0; j < LL; j++) {
            uint32_t it = 0;
            for (int tries = 0; tries < 32; tries++) {
                /* after 16 duplicates (a small category) fall back to the whole catalogue */
                if (on_ok && tries < 16 && rng_uf(r) < P_ON_CAT)
                    it = grouped_draw(&W->items_by_cat, qu->cat, r);
                else it = alias_draw(W->i_prob, W->i_alias, W->n_items, r);
                int dup = 0;
                for (int k = 0; k < j; k++)
                    if (slots[k].item == it) {
                        dup = 1;
                        break;
                    }
                if (!dup) break;
            }
            const item_t *ti = &W->items[it];
            slots[j].item = it;
            slots[j].score =
                ENG_QI * dot(qu->q, ti->v) + ENG_QUAL * ti->quality + SD_ENG * rng_normal(r);
        }
        /* rank by engine score, descending (insertion sort; ties keep draw order) */
        for (int j = 1; j < LL; j++) {
            slot_t s = slots[j];
            int k = j - 1;
            while (k >= 0 && slots[k].score < s.score) {
                slots[k + 1] = slots[k];
                k--;
            }
            slots[k + 1] = s;
        }
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
                       W_PRICE_C * ti->relprice + W->hour_click[hour] +
                       W->dev_click[dev] + SD_NOISE_C * rng_normal(r);
            float tol = TOL_PER_POWER * ((float)us->power - 3.0f);
            float over = ti->relprice - tol;
            float buy = W_SHOP_O * W->shop_trust[ti->shop - 1] - W_PRICE_O * ti->relprice -
                        W_OVER_O * (over > 0 ? over : 0) + W_ZW * dot(us->z, ti->w) +
                        W->hour_order[hour] + W->dev_order[dev];
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

static inline double sigm(double x) { return 1.0 / (1.0 + exp(-x)); }

/* Intercept b such that sum_i w_i sigm(b + x_i) / sum_i w_i = target (w NULL = 1), by a
 * safeguarded Newton iteration. x strided. */
static double calibrate(const float *x, size_t stride, const double *w, size_t m, double target)
{
    double lo = -40, hi = 40, b = log(target / (1 - target)), sw = 0;
    for (size_t i = 0; i < m; i++) sw += w ? w[i] : 1.0;
    if (!(sw > 0)) return b;
    for (int it = 0; it < 100; it++) {
        double f = 0, g = 0;
        for (size_t i = 0; i < m; i++) {
            double p = sigm(b + x[i * stride]), wi = w ? w[i] : 1.0;
            f += wi * p;
            g += wi * p * (1 - p);
        }
        f = f / sw - target;
        g /= sw;
        if (fabs(f) < 1e-9 * target) break;
        if (f > 0) hi = b;
        else lo = b;
        double nb = g > 0 ? b - f / g : 0.5 * (lo + hi);
        if (!(nb > lo && nb < hi)) nb = 0.5 * (lo + hi);
        if (hi - lo < 1e-12) break;
        b = nb;
    }
    return b;
}


/* ---- shared pieces of the kuairand and rating presets ------------------------------------ */

/* A popularity alias table over n entities with Zipf-Mandelbrot weights. */
typedef struct {
    uint32_t n;
    float *prob;
    uint32_t *alias;
} pop_t;

static void pop_free(pop_t *p)
{
    free(p->prob);
    free(p->alias);
}

static int pop_build(pop_t *p, uint32_t n, double expo, double off, rng_t *r, double *wts_out)
{
    p->n = n;
    p->prob = malloc((size_t)n * sizeof *p->prob);
    p->alias = malloc((size_t)n * sizeof *p->alias);
    double *w = malloc((size_t)n * sizeof *w), *sc = malloc((size_t)n * sizeof *sc);
    uint32_t *work = malloc(2 * (size_t)n * sizeof *work);
    int ok = p->prob && p->alias && w && sc && work && zipf_weights(w, n, expo, off, r) == 0;
    if (ok) {
        alias_build_into(p->prob, p->alias, w, n, work, sc);
        if (wts_out) memcpy(wts_out, w, (size_t)n * sizeof *w);
    }
    free(w);
    free(sc);
    free(work);
    if (!ok) pop_free(p);
    return ok ? 0 : -1;
}

static inline uint32_t pop_draw(const pop_t *p, rng_t *r) { return alias_draw(p->prob, p->alias, p->n, r); }

/* Standard logistic quantiles (i + 0.5) / 16: E[sigmoid(z + L)] for L ~ Logistic(0, 1) is the
 * mean of sigmoid(z + q_i) to about 1e-3. */
static double mean_sigmoid_logistic(double z)
{
    double s = 0;
    for (int i = 0; i < 16; i++) {
        double u = (i + 0.5) / 16.0;
        s += sigm(z + log(u / (1 - u)));
    }
    return s / 16.0;
}

/* ---- preset kuairand: a short-video feed ------------------------------------------------------ */

enum {
    KF_USER, KF_ACTIVE, KF_LIVE, KF_FOLLOW, KF_REGDAYS, KF_VIDEO, KF_AUTHOR, KF_VTYPE, KF_UPLOAD,
    KF_MUSIC, KF_TAG, KF_TAB, KF_HOUR, KF_POS, KN_FIELDS
};
static const char *const kf_names[KN_FIELDS] = {
    "user_id", "user_active_degree", "is_live_streamer", "follow_user_num_range", "register_days_range",
    "video_id", "author_id", "video_type", "upload_type", "music_type", "tag", "tab", "hour", "position"};
enum { KD_DUR, KD_HIST, KN_DENSE };
static const char *const kd_names[KN_DENSE] = {"log_duration", "video_hist_like"};
enum { KL_CLICK, KL_LONG, KL_LIKE, KL_FOLLOW, KL_COMMENT, KL_FORWARD, KL_PLAY, KN_LABELS };
static const char *const kl_names[KN_LABELS] = {"is_click", "long_view", "is_like", "is_follow",
                                                 "is_comment", "is_forward", "play_time_ms"};
#define K_TAGS 40
#define K_UPLOAD 10
#define K_MUSIC 5
#define K_TABS 6
/* conditional rates the intercepts are calibrated to (entire space: follow => like => long_view => click) */
#define KR_LONG 0.45  /* P(long_view | click), click-weighted */
#define KR_LIKE 0.06  /* P(like | long_view) */
#define KR_FOLLOW 0.08
#define KR_COMMENT 0.20
#define KR_FORWARD 0.08

typedef struct {
    float u[LAT], w[LAT], s[LAT]; /* interest, like taste, social */
    float act;                    /* activity effect */
    uint32_t active, live, follow, regdays, favtag;
} kuser_t;

typedef struct {
    float v[LAT], w[LAT];
    float q, dur_ms, logdur_z, hist;
    uint32_t author, vtype, upload, music, tag;
} kvideo_t;

typedef struct {
    uint32_t NU, NV, NA;
    kuser_t *users;
    kvideo_t *videos;
    float *author_a; /* (NA, LAT) */
    pop_t upop, vpop;
    grouped_alias_t by_tag;
    float hour_prob[N_HOUR];
    uint32_t hour_alias[N_HOUR];
} kworld_t;

static void kworld_free(kworld_t *W)
{
    free(W->users);
    free(W->videos);
    free(W->author_a);
    pop_free(&W->upop);
    pop_free(&W->vpop);
    grouped_free(&W->by_tag);
}

static rf_status kworld_build(kworld_t *W, const rf_synth_opts *o, rf_error *err)
{
    memset(W, 0, sizeof *W);
    rng_t r;
    rng_seed(&r, o->seed, 0xC0FFEEull);
    uint32_t NU = o->n_users, NV = o->n_items, NA = NV / 4 ? NV / 4 : 1;
    W->NU = NU;
    W->NV = NV;
    W->NA = NA;
    W->users = malloc((size_t)NU * sizeof *W->users);
    W->videos = malloc((size_t)NV * sizeof *W->videos);
    W->author_a = malloc((size_t)NA * LAT * sizeof *W->author_a);
    double *vw = malloc((size_t)NV * sizeof *vw), *aw = malloc((size_t)NA * sizeof *aw);
    uint32_t *grp = malloc((size_t)NV * sizeof *grp);
    float tagv[K_TAGS][LAT];
    double tag_cdf[K_TAGS], up_cdf[K_UPLOAD], acc = 0;
    rf_status st = RF_OK;
    if (!W->users || !W->videos || !W->author_a || !vw || !aw || !grp ||
        pop_build(&W->upop, NU, ZIPF_USER, ZIPF_USER_OFF, &r, NULL) ||
        pop_build(&W->vpop, NV, ZIPF_ITEM, ZIPF_ITEM_OFF, &r, vw)) {
        st = rf_errorf(err, RF_ENOMEM, "synth: out of memory building the simulated feed");
        goto done;
    }
    for (int t = 0; t < K_TAGS; t++) {
        randvec(tagv[t], &r, 1.0f);
        float nrm = sqrtf(dot(tagv[t], tagv[t]));
        for (int k = 0; k < LAT; k++) tagv[t][k] = nrm > 0 ? tagv[t][k] / nrm : (k == 0);
        tag_cdf[t] = (acc += pow(t + 1.0, -ZIPF_CAT));
    }
    acc = 0;
    for (int t = 0; t < K_UPLOAD; t++) up_cdf[t] = (acc += pow(t + 1.0, -1.2));
    /* authors: popularity (for drawing) and social latent */
    if (zipf_weights(aw, NA, 1.0, 5.0, &r)) {
        st = rf_errorf(err, RF_ENOMEM, "synth: out of memory");
        goto done;
    }
    for (uint32_t a = 0; a < NA; a++) randvec(W->author_a + (size_t)a * LAT, &r, 1.0f / sqrtf((float)LAT));
    double acdf_total = 0;
    for (uint32_t a = 0; a < NA; a++) acdf_total += aw[a];
    {
        double ml = 0;
        for (uint32_t i = 0; i < NV; i++) ml += log(vw[i]);
        ml /= NV;
        double sl = 0;
        for (uint32_t i = 0; i < NV; i++) sl += (log(vw[i]) - ml) * (log(vw[i]) - ml);
        sl = sqrt(fmax(sl / NV, 1e-12));
        for (uint32_t i = 0; i < NV; i++) {
            kvideo_t *v = &W->videos[i];
            uint32_t t = draw_cdf(tag_cdf, K_TAGS, &r);
            if (i < K_TAGS && i < NV) t = i;
            v->tag = t + 1;
            grp[i] = t;
            /* author: popular authors upload more (inverse-CDF draw on the author weights) */
            double u = rng_uf(&r) * acdf_total, c = 0;
            uint32_t a = 0;
            while (a + 1 < NA && (c += aw[a]) < u) a++;
            v->author = a + 1;
            v->vtype = rng_uf(&r) < 0.05f ? 2 : 1;
            v->upload = 1 + draw_cdf(up_cdf, K_UPLOAD, &r);
            v->music = 1 + rng_below(&r, K_MUSIC);
            for (int k = 0; k < LAT; k++) {
                v->v[k] = 0.8f * tagv[t][k] + 0.5f / sqrtf((float)LAT) * rng_normal(&r);
                v->w[k] = 0.9f / sqrtf((float)LAT) * rng_normal(&r);
            }
            float popz = (float)((log(vw[i]) - ml) / sl);
            v->q = 0.3f * popz + 0.5f * rng_normal(&r) - (v->vtype == 2 ? 0.6f : 0.0f);
            float ld = logf(30000.0f) + 0.8f * rng_normal(&r); /* ~30 s median */
            if (ld < logf(3000.0f)) ld = logf(3000.0f);
            if (ld > logf(600000.0f)) ld = logf(600000.0f);
            v->dur_ms = roundf(expf(ld));
            v->logdur_z = (ld - logf(30000.0f)) / 0.8f;
            float tail = (float)(1.0 - (popz + 3.0) / 6.0);
            tail = tail < 0 ? 0 : tail > 1 ? 1 : tail;
            v->hist = 0.8f * v->q + (0.1f + 0.9f * tail) * rng_normal(&r);
        }
    }
    if (grouped_build(&W->by_tag, grp, vw, NV, K_TAGS)) {
        st = rf_errorf(err, RF_ENOMEM, "synth: out of memory");
        goto done;
    }
    {
        static const double act_cdf[4] = {0.4, 0.7, 0.9, 1.0};
        for (uint32_t u = 0; u < NU; u++) {
            kuser_t *us = &W->users[u];
            us->active = 1 + draw_cdf(act_cdf, 4, &r);
            us->live = rng_uf(&r) < 0.1f ? 2 : 1;
            us->follow = 1 + rng_below(&r, 8);
            us->regdays = 1 + rng_below(&r, 7);
            us->favtag = draw_cdf(tag_cdf, K_TAGS, &r);
            us->act = 0.25f * (2.5f - (float)us->active);
            for (int k = 0; k < LAT; k++) {
                us->u[k] = 0.6f * tagv[us->favtag][k] + 0.6f / sqrtf((float)LAT) * rng_normal(&r);
                us->w[k] = 0.9f / sqrtf((float)LAT) * rng_normal(&r);
                us->s[k] = 0.9f / sqrtf((float)LAT) * rng_normal(&r);
            }
        }
    }
    {
        double hw[N_HOUR], hs[N_HOUR];
        uint32_t hwork[2 * N_HOUR];
        for (int h = 0; h < N_HOUR; h++) hw[h] = 0.3 + exp(-0.5 * pow((h - 21) / 2.5, 2)) + 0.6 * exp(-0.5 * pow((h - 12) / 1.5, 2));
        alias_build_into(W->hour_prob, W->hour_alias, hw, N_HOUR, hwork, hs);
    }
done:
    free(vw);
    free(aw);
    free(grp);
    if (st) kworld_free(W);
    return st;
}

/* Rows of requests [l0, l1): features, and in truth the logit parts (no intercepts) of click,
 * long view, like, follow, comment, forward, and the video duration (ms). */
static void kgen_lists(const kworld_t *W, const rf_synth_opts *o, rf_dataset *ds, size_t l0, size_t l1,
                       rng_t *r, uint32_t *slots)
{
    const int F = ds->F, D = ds->D, K = ds->K, LL = o->list_len;
    for (size_t l = l0; l < l1; l++) {
        size_t row0 = l * (size_t)LL;
        int len = LL;
        if (row0 + (size_t)len > ds->n) len = (int)(ds->n - row0);
        uint32_t ui = pop_draw(&W->upop, r);
        const kuser_t *us = &W->users[ui];
        uint32_t hour = alias_draw(W->hour_prob, W->hour_alias, N_HOUR, r);
        uint32_t tab = rng_uf(r) < 0.8f ? 1 : 2 + rng_below(r, K_TABS - 1);
        for (int j = 0; j < LL; j++) {
            uint32_t vi = 0;
            for (int tries = 0; tries < 32; tries++) {
                if (tries < 16 && rng_uf(r) < 0.5f && grouped_nonempty(&W->by_tag, us->favtag))
                    vi = grouped_draw(&W->by_tag, us->favtag, r);
                else
                    vi = pop_draw(&W->vpop, r);
                int dup = 0;
                for (int k = 0; k < j; k++) dup |= slots[k] == vi;
                if (!dup) break;
            }
            slots[j] = vi;
        }
        for (int j = 0; j < len; j++) {
            size_t i = row0 + (size_t)j;
            const kvideo_t *v = &W->videos[slots[j]];
            uint32_t *c = ds->cat + i * (size_t)F;
            c[KF_USER] = ui + 1;
            c[KF_ACTIVE] = us->active;
            c[KF_LIVE] = us->live;
            c[KF_FOLLOW] = us->follow;
            c[KF_REGDAYS] = us->regdays;
            c[KF_VIDEO] = slots[j] + 1;
            c[KF_AUTHOR] = v->author;
            c[KF_VTYPE] = v->vtype;
            c[KF_UPLOAD] = v->upload;
            c[KF_MUSIC] = v->music;
            c[KF_TAG] = v->tag;
            c[KF_TAB] = tab;
            c[KF_HOUR] = hour + 1;
            c[KF_POS] = (uint32_t)j + 1;
            float *d = ds->dense + i * (size_t)D;
            d[KD_DUR] = v->logdur_z;
            d[KD_HIST] = v->hist;
            ds->group[i] = (uint64_t)l;
            float uv = dot(us->u, v->v), ww = dot(us->w, v->w);
            const float *aa = W->author_a + (size_t)(v->author - 1) * LAT;
            float *t = ds->truth + i * (size_t)K;
            t[KL_CLICK] = 1.1f * uv + 0.5f * v->q - 0.15f * logf((float)(j + 1)) + (tab == 1 ? 0.1f : 0.0f) + us->act +
                          ((hour >= 19 && hour <= 23) ? 0.1f : 0.0f) + 0.3f * rng_normal(r);
            t[KL_LONG] = 1.0f * uv + 0.4f * v->q - 0.35f * v->logdur_z * 0.8f + 0.3f * rng_normal(r);
            t[KL_LIKE] = 0.8f * uv + 1.2f * ww + 0.3f * v->q + 0.3f * rng_normal(r);
            t[KL_FOLLOW] = 1.4f * dot(us->s, aa) + (us->live == 2 ? 0.3f : 0.0f) + 0.3f * rng_normal(r);
            t[KL_COMMENT] = 0.9f * dot(us->s, v->v) + 0.6f * us->act + 0.3f * rng_normal(r);
            t[KL_FORWARD] = 0.6f * uv + 0.9f * ww + 0.3f * rng_normal(r);
            t[KL_PLAY] = v->dur_ms;
        }
    }
}

static rf_status gen_kuairand(const rf_synth_opts *o, rf_dataset **out, rf_error *err)
{
    const int F = KN_FIELDS, D = KN_DENSE, K = KN_LABELS;
    const size_t n = o->rows, LL = (size_t)o->list_len;
    kworld_t W;
    rf_status st = kworld_build(&W, o, err);
    if (st) return st;
    rf_dataset *ds = rf_dataset_alloc(n, F, D, K);
    if (ds) {
        ds->group = malloc(n * sizeof *ds->group);
        ds->truth = malloc(n * (size_t)K * sizeof *ds->truth);
    }
    if (!ds || !ds->group || !ds->truth) {
        rf_dataset_free(ds);
        kworld_free(&W);
        return rf_errorf(err, RF_ENOMEM, "synth: out of memory for %zu rows", n);
    }
    for (int f = 0; f < F; f++) snprintf(ds->fields[f].name, RF_NAME_MAX, "%s", kf_names[f]);
    ds->fields[KF_USER].vocab = W.NU + 1;
    ds->fields[KF_ACTIVE].vocab = 5;
    ds->fields[KF_LIVE].vocab = 3;
    ds->fields[KF_FOLLOW].vocab = 9;
    ds->fields[KF_REGDAYS].vocab = 8;
    ds->fields[KF_VIDEO].vocab = W.NV + 1;
    ds->fields[KF_AUTHOR].vocab = W.NA + 1;
    ds->fields[KF_VTYPE].vocab = 3;
    ds->fields[KF_UPLOAD].vocab = K_UPLOAD + 1;
    ds->fields[KF_MUSIC].vocab = K_MUSIC + 1;
    ds->fields[KF_TAG].vocab = K_TAGS + 1;
    ds->fields[KF_TAB].vocab = K_TABS + 1;
    ds->fields[KF_HOUR].vocab = N_HOUR + 1;
    ds->fields[KF_POS].vocab = (uint32_t)LL + 1;
    for (int d = 0; d < D; d++) snprintf(ds->dense_names[d], RF_NAME_MAX, "%s", kd_names[d]);
    for (int k = 0; k < K; k++) snprintf(ds->label_names[k], RF_NAME_MAX, "%s", kl_names[k]);
    const size_t n_lists = (n + LL - 1) / LL, n_chunks = (n_lists + LISTS_PER_CHUNK - 1) / LISTS_PER_CHUNK;
    int oom = 0;
#ifdef _OPENMP
#pragma omp parallel
#endif
    {
        uint32_t *slots = malloc(LL * sizeof *slots);
        if (!slots) {
#ifdef _OPENMP
#pragma omp atomic write
#endif
            oom = 1;
        }
#ifdef _OPENMP
#pragma omp for schedule(dynamic, 1)
#endif
        for (size_t c = 0; c < n_chunks; c++) {
            if (!slots) continue;
            rng_t r;
            rng_seed(&r, o->seed, 2 * (uint64_t)c + 0x500000ull);
            size_t l0 = c * LISTS_PER_CHUNK, l1 = l0 + LISTS_PER_CHUNK > n_lists ? n_lists : l0 + LISTS_PER_CHUNK;
            kgen_lists(&W, o, ds, l0, l1, &r, slots);
        }
        free(slots);
    }
    kworld_free(&W);
    size_t m = n < CALIB_ROWS ? n : CALIB_ROWS;
    double *w = calloc(m ? m : 1, sizeof *w), *wl = calloc(m ? m : 1, sizeof *wl);
    if (oom || !w || !wl) {
        free(w);
        free(wl);
        rf_dataset_free(ds);
        return rf_errorf(err, RF_ENOMEM, "synth: out of memory");
    }
    /* intercepts along the chain: click, long view | click, like | long view, then the three
     * children of like */
    double b[KL_PLAY];
    b[KL_CLICK] = calibrate(ds->truth + KL_CLICK, (size_t)K, NULL, m, (double)o->ctr);
    for (size_t i = 0; i < m; i++) w[i] = sigm(b[KL_CLICK] + ds->truth[i * (size_t)K + KL_CLICK]);
    b[KL_LONG] = calibrate(ds->truth + KL_LONG, (size_t)K, w, m, KR_LONG);
    for (size_t i = 0; i < m; i++) w[i] *= sigm(b[KL_LONG] + ds->truth[i * (size_t)K + KL_LONG]);
    b[KL_LIKE] = calibrate(ds->truth + KL_LIKE, (size_t)K, w, m, KR_LIKE);
    for (size_t i = 0; i < m; i++) wl[i] = w[i] * sigm(b[KL_LIKE] + ds->truth[i * (size_t)K + KL_LIKE]);
    b[KL_FOLLOW] = calibrate(ds->truth + KL_FOLLOW, (size_t)K, wl, m, KR_FOLLOW);
    b[KL_COMMENT] = calibrate(ds->truth + KL_COMMENT, (size_t)K, wl, m, KR_COMMENT);
    b[KL_FORWARD] = calibrate(ds->truth + KL_FORWARD, (size_t)K, wl, m, KR_FORWARD);
    free(w);
    free(wl);
    const size_t rows_per_chunk = LISTS_PER_CHUNK * LL;
#ifdef _OPENMP
#pragma omp parallel for schedule(static)
#endif
    for (size_t c = 0; c < n_chunks; c++) {
        rng_t r;
        rng_seed(&r, o->seed, 2 * (uint64_t)c + 0x500001ull);
        size_t i0 = c * rows_per_chunk, i1 = i0 + rows_per_chunk > n ? n : i0 + rows_per_chunk;
        for (size_t i = i0; i < i1; i++) {
            float *t = ds->truth + i * (size_t)K, *y = ds->labels + i * (size_t)K;
            double dur = t[KL_PLAY], z = b[KL_LONG] + t[KL_LONG];
            double pc = sigm(b[KL_CLICK] + t[KL_CLICK]), pl = sigm(z), pk = sigm(b[KL_LIKE] + t[KL_LIKE]);
            double pf = sigm(b[KL_FOLLOW] + t[KL_FOLLOW]), pm = sigm(b[KL_COMMENT] + t[KL_COMMENT]),
                   pw = sigm(b[KL_FORWARD] + t[KL_FORWARD]);
            int click = rng_uf(&r) < (float)pc;
            /* watched fraction sigmoid(z + L), L ~ Logistic: long view iff the fraction >= 1/2 */
            float u = rng_uf(&r) * 0.999f + 0.0005f;
            double frac = sigm(z + log(u / (1.0f - u)));
            int lv = click && frac >= 0.5;
            int like = lv && rng_uf(&r) < (float)pk;
            float uf = rng_uf(&r), um = rng_uf(&r), uw = rng_uf(&r);
            y[KL_CLICK] = (float)click;
            y[KL_LONG] = (float)lv;
            y[KL_LIKE] = (float)like;
            y[KL_FOLLOW] = (float)(like && uf < (float)pf);
            y[KL_COMMENT] = (float)(like && um < (float)pm);
            y[KL_FORWARD] = (float)(like && uw < (float)pw);
            y[KL_PLAY] = click ? (float)round(frac * dur) : 0.0f;
            double plike = pc * pl * pk;
            t[KL_CLICK] = (float)pc;
            t[KL_LONG] = (float)(pc * pl);
            t[KL_LIKE] = (float)plike;
            t[KL_FOLLOW] = (float)(plike * pf);
            t[KL_COMMENT] = (float)(plike * pm);
            t[KL_FORWARD] = (float)(plike * pw);
            t[KL_PLAY] = (float)(pc * dur * mean_sigmoid_logistic(z));
        }
    }
    *out = ds;
    return RF_OK;
}

/* ---- preset rating: explicit movie ratings 1..5 ------------------------------------------------ */

enum { RF_USER_, RF_GENDER, RF_AGE, RF_OCC, RF_ITEM, RF_YEAR, RF_GENRES, RN_FIELDS };
static const char *const rf_names_[RN_FIELDS] = {"user_id", "gender", "age", "occupation",
                                                  "item_id", "year", "genres"};
enum { RD_POP, RN_DENSE };
#define R_GENRES 18
#define R_YEARS 8
#define R_OCC 21
#define R_LABELS 5 /* rating, rating_ge2 .. rating_ge5 */
/* marginal P(rating >= k), k = 2..5, as in MovieLens 100K */
static const double R_TARGET[4] = {0.939, 0.825, 0.554, 0.212};

typedef struct {
    float v[LAT];
    float bias, popz;
    uint32_t year, ng, genre[3];
} ritem_t;

typedef struct {
    float u[LAT];
    float bias;
    uint32_t gender, age, occ;
} ruser_t;

static rf_status gen_rating(const rf_synth_opts *o, rf_dataset **out, rf_error *err)
{
    const int F = RN_FIELDS, D = RN_DENSE, K = R_LABELS;
    const size_t n = o->rows, LL = (size_t)o->list_len;
    uint32_t NU = o->n_users, NI = o->n_items;
    rng_t r;
    rng_seed(&r, o->seed, 0x5A7E5ull);
    ruser_t *users = malloc((size_t)NU * sizeof *users);
    ritem_t *items = malloc((size_t)NI * sizeof *items);
    double *iw = malloc((size_t)NI * sizeof *iw);
    pop_t upop = {0}, ipop = {0};
    rf_dataset *ds = NULL;
    rf_status st = RF_OK;
    float gv[R_GENRES][LAT];
    double gcdf[R_GENRES], acc = 0;
    if (!users || !items || !iw || pop_build(&upop, NU, ZIPF_USER, ZIPF_USER_OFF, &r, NULL) ||
        pop_build(&ipop, NI, ZIPF_ITEM, ZIPF_ITEM_OFF, &r, iw)) {
        st = rf_errorf(err, RF_ENOMEM, "synth: out of memory");
        goto done;
    }
    for (int g = 0; g < R_GENRES; g++) {
        randvec(gv[g], &r, 1.0f / sqrtf((float)LAT));
        gcdf[g] = (acc += pow(g + 1.0, -0.8));
    }
    {
        double ml = 0, sl = 0;
        for (uint32_t i = 0; i < NI; i++) ml += log(iw[i]);
        ml /= NI;
        for (uint32_t i = 0; i < NI; i++) sl += (log(iw[i]) - ml) * (log(iw[i]) - ml);
        sl = sqrt(fmax(sl / NI, 1e-12));
        for (uint32_t i = 0; i < NI; i++) {
            ritem_t *it = &items[i];
            it->ng = 1 + rng_below(&r, 3);
            for (uint32_t k = 0; k < it->ng; k++) {
                uint32_t g;
                int dup;
                do {
                    g = draw_cdf(gcdf, R_GENRES, &r);
                    dup = 0;
                    for (uint32_t j = 0; j < k; j++) dup |= it->genre[j] == g + 1;
                } while (dup);
                it->genre[k] = g + 1;
            }
            it->year = 1 + rng_below(&r, R_YEARS);
            it->popz = (float)((log(iw[i]) - ml) / sl);
            it->bias = 0.25f * it->popz + 0.35f * rng_normal(&r);
            for (int k = 0; k < LAT; k++) {
                float m = 0;
                for (uint32_t j = 0; j < it->ng; j++) m += gv[it->genre[j] - 1][k];
                it->v[k] = 0.8f * m / (float)it->ng + 0.5f / sqrtf((float)LAT) * rng_normal(&r);
            }
        }
    }
    for (uint32_t u = 0; u < NU; u++) {
        ruser_t *us = &users[u];
        us->gender = 1 + (rng_uf(&r) < 0.3f);
        us->age = 1 + rng_below(&r, 7);
        us->occ = 1 + rng_below(&r, R_OCC);
        us->bias = 0.4f * rng_normal(&r) + 0.05f * ((float)us->age - 4.0f);
        uint32_t fav = draw_cdf(gcdf, R_GENRES, &r);
        for (int k = 0; k < LAT; k++) us->u[k] = 1.2f * gv[fav][k] + 0.7f / sqrtf((float)LAT) * rng_normal(&r);
    }
    ds = rf_dataset_alloc(n, F, D, K);
    if (ds) {
        ds->group = malloc(n * sizeof *ds->group);
        ds->truth = malloc(n * (size_t)K * sizeof *ds->truth);
        ds->mv_off[RF_GENRES] = malloc((n + 1) * sizeof *ds->mv_off[RF_GENRES]);
    }
    float *score = malloc(n * sizeof *score);
    if (!ds || !ds->group || !ds->truth || !ds->mv_off[RF_GENRES] || !score) {
        free(score);
        st = rf_errorf(err, RF_ENOMEM, "synth: out of memory for %zu rows", n);
        goto done;
    }
    for (int f = 0; f < F; f++) snprintf(ds->fields[f].name, RF_NAME_MAX, "%s", rf_names_[f]);
    ds->fields[RF_USER_].vocab = NU + 1;
    ds->fields[RF_GENDER].vocab = 3;
    ds->fields[RF_AGE].vocab = 8;
    ds->fields[RF_OCC].vocab = R_OCC + 1;
    ds->fields[RF_ITEM].vocab = NI + 1;
    ds->fields[RF_YEAR].vocab = R_YEARS + 1;
    ds->fields[RF_GENRES].vocab = R_GENRES + 1;
    ds->fields[RF_GENRES].multi = 1;
    ds->fields[RF_GENRES].pooling = RF_POOL_MEAN;
    ds->fields[RF_GENRES].sep = '|';
    snprintf(ds->dense_names[RD_POP], RF_NAME_MAX, "item_popularity");
    snprintf(ds->label_names[0], RF_NAME_MAX, "rating");
    for (int k = 1; k < K; k++) snprintf(ds->label_names[k], RF_NAME_MAX, "rating_ge%d", k + 1);
    const size_t n_lists = (n + LL - 1) / LL, n_chunks = (n_lists + LISTS_PER_CHUNK - 1) / LISTS_PER_CHUNK;
    const size_t rows_per_chunk = LISTS_PER_CHUNK * LL;
    int oom = 0;
    /* pass 1: who rates what (a list = one user's session of list_len distinct movies) */
#ifdef _OPENMP
#pragma omp parallel
#endif
    {
        uint32_t *slots = malloc(LL * sizeof *slots);
        if (!slots) {
#ifdef _OPENMP
#pragma omp atomic write
#endif
            oom = 1;
        }
#ifdef _OPENMP
#pragma omp for schedule(dynamic, 1)
#endif
        for (size_t c = 0; c < n_chunks; c++) {
            if (!slots) continue;
            rng_t rc;
            rng_seed(&rc, o->seed, 2 * (uint64_t)c + 0x700000ull);
            size_t l1 = (c + 1) * LISTS_PER_CHUNK > n_lists ? n_lists : (c + 1) * LISTS_PER_CHUNK;
            for (size_t l = c * LISTS_PER_CHUNK; l < l1; l++) {
                uint32_t ui = pop_draw(&upop, &rc);
                const ruser_t *us = &users[ui];
                size_t row0 = l * LL;
                size_t len = row0 + LL > n ? n - row0 : LL;
                for (size_t j = 0; j < len; j++) {
                    uint32_t ii = 0;
                    for (int tries = 0; tries < 32; tries++) {
                        ii = pop_draw(&ipop, &rc);
                        int dup = 0;
                        for (size_t k = 0; k < j; k++) dup |= slots[k] == ii;
                        if (!dup) break;
                    }
                    slots[j] = ii;
                    const ritem_t *it = &items[ii];
                    size_t i = row0 + j;
                    uint32_t *cr = ds->cat + i * (size_t)F;
                    cr[RF_USER_] = ui + 1;
                    cr[RF_GENDER] = us->gender;
                    cr[RF_AGE] = us->age;
                    cr[RF_OCC] = us->occ;
                    cr[RF_ITEM] = ii + 1;
                    cr[RF_YEAR] = it->year;
                    cr[RF_GENRES] = 0;
                    ds->dense[i * (size_t)D + RD_POP] = it->popz;
                    ds->group[i] = (uint64_t)l;
                    score[i] = us->bias + it->bias + 1.3f * dot(us->u, it->v) + 0.2f * rng_normal(&rc);
                }
            }
        }
        free(slots);
    }
    if (oom) {
        free(score);
        st = rf_errorf(err, RF_ENOMEM, "synth: out of memory");
        goto done;
    }
    /* genres (multi-valued): offsets, then ids */
    ds->mv_off[RF_GENRES][0] = 0;
    for (size_t i = 0; i < n; i++)
        ds->mv_off[RF_GENRES][i + 1] = ds->mv_off[RF_GENRES][i] + items[ds->cat[i * (size_t)F + RF_ITEM] - 1].ng;
    ds->mv_ids[RF_GENRES] = malloc((ds->mv_off[RF_GENRES][n] ? ds->mv_off[RF_GENRES][n] : 1) * sizeof(uint32_t));
    if (!ds->mv_ids[RF_GENRES]) {
        free(score);
        st = rf_errorf(err, RF_ENOMEM, "synth: out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        const ritem_t *it = &items[ds->cat[i * (size_t)F + RF_ITEM] - 1];
        for (uint32_t j = 0; j < it->ng; j++) ds->mv_ids[RF_GENRES][ds->mv_off[RF_GENRES][i] + j] = it->genre[j];
    }
    /* thresholds: P(rating >= k) = sigmoid(b_k + score), calibrated to the marginals */
    size_t m = n < CALIB_ROWS ? n : CALIB_ROWS;
    double b[4];
    for (int k = 0; k < 4; k++) b[k] = calibrate(score, 1, NULL, m, R_TARGET[k]);
#ifdef _OPENMP
#pragma omp parallel for schedule(static)
#endif
    for (size_t c = 0; c < n_chunks; c++) {
        rng_t rc;
        rng_seed(&rc, o->seed, 2 * (uint64_t)c + 0x700001ull);
        size_t i0 = c * rows_per_chunk, i1 = i0 + rows_per_chunk > n ? n : i0 + rows_per_chunk;
        for (size_t i = i0; i < i1; i++) {
            float *t = ds->truth + i * (size_t)K, *y = ds->labels + i * (size_t)K;
            float u = rng_uf(&rc);
            int rating = 1;
            double expect = 1;
            for (int k = 0; k < 4; k++) {
                double p = sigm(b[k] + score[i]);
                t[1 + k] = (float)p;
                expect += p;
                if (u < (float)p) rating = k + 2;
            }
            y[0] = (float)rating;
            for (int k = 0; k < 4; k++) y[1 + k] = (float)(rating >= k + 2);
            t[0] = (float)expect;
        }
    }
    free(score);
done:
    free(users);
    free(items);
    free(iw);
    pop_free(&upop);
    pop_free(&ipop);
    if (st) {
        rf_dataset_free(ds);
        return st;
    }
    *out = ds;
    return RF_OK;
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
    if (o->preset < RF_SYNTH_SEARCH || o->preset > RF_SYNTH_RATING)
        return rf_errorf(err, RF_EUSAGE, "synth: unknown preset %d", o->preset);
    if (o->preset == RF_SYNTH_SEARCH && o->tasks != 2 && o->tasks != 3)
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
    if (o->preset == RF_SYNTH_SEARCH && o->tasks == 3) {
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

    if (o->preset == RF_SYNTH_KUAIRAND) return gen_kuairand(o, out, err);
    if (o->preset == RF_SYNTH_RATING) return gen_rating(o, out, err);
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
    for (uint32_t i = 0; i < W.n_items; i++) {
        float lam = LAM_ORDER * expf(-LAM_PRICE * W.items[i].relprice);
        item_lam[i] = lam < 0.02f ? 0.02f : lam > 3.0f ? 3.0f : lam;
    }

    rf_dataset *ds = rf_dataset_alloc(n, F, D, K);
    if (ds) {
        ds->group = malloc(n * sizeof *ds->group);
        ds->truth = malloc(n * (size_t)K * sizeof *ds->truth);
    }
    if (!ds || !ds->group || !ds->truth) {
        rf_dataset_free(ds);
        world_free(&W);
        free(item_lam);
        return rf_errorf(err, RF_ENOMEM, "synth: out of memory for %zu rows", n);
    }
    rf_advise_huge_(ds->cat, n * (size_t)F * sizeof *ds->cat);
    rf_advise_huge_(ds->dense, n * (size_t)D * sizeof *ds->dense);
    rf_advise_huge_(ds->labels, n * (size_t)K * sizeof *ds->labels);
    rf_advise_huge_(ds->truth, n * (size_t)K * sizeof *ds->truth);
    rf_advise_huge_(ds->group, n * sizeof *ds->group);
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
    int oom = 0;

    /* pass 1: features and logit parts */
#ifdef _OPENMP
#pragma omp parallel
#endif
    {
        slot_t *slots = malloc(LL * sizeof *slots);
        if (!slots) {
#ifdef _OPENMP
#pragma omp atomic write
#endif
            oom = 1;
        }
#ifdef _OPENMP
#pragma omp for schedule(dynamic, 1)
#endif
        for (size_t c = 0; c < n_chunks; c++) {
            if (!slots) continue;
            rng_t r;
            rng_seed(&r, o->seed, 2 * (uint64_t)c + 0x100000ull);
            size_t l0 = c * LISTS_PER_CHUNK, l1 = l0 + LISTS_PER_CHUNK;
            if (l1 > n_lists) l1 = n_lists;
            gen_lists(&W, o, ds, l0, l1, &r, slots);
        }
        free(slots);
    }
    world_free(&W);
    if (oom) {
        rf_dataset_free(ds);
        free(item_lam);
        return rf_errorf(err, RF_ENOMEM, "synth: out of memory");
    }

    /* calibrate intercepts on the leading rows (lists are i.i.d.) */
    size_t m = n < CALIB_ROWS ? n : CALIB_ROWS;
    double b[3] = {0, 0, 0};
    double *wc = calloc(m, sizeof *wc);
    if (!wc) {
        rf_dataset_free(ds);
        free(item_lam);
        return rf_errorf(err, RF_ENOMEM, "synth: out of memory");
    }
    b[0] = calibrate(ds->truth, (size_t)K, NULL, m, (double)o->ctr);
    for (size_t i = 0; i < m; i++) wc[i] = sigm(b[0] + ds->truth[i * (size_t)K]);
    if (T == 2) {
        b[1] = calibrate(ds->truth + 1, (size_t)K, wc, m, (double)o->cvr);
    } else {
        b[1] = calibrate(ds->truth + 1, (size_t)K, wc, m, (double)o->cart_rate);
        double s0 = 0, s1 = 0;
        for (size_t i = 0; i < m; i++) {
            s0 += wc[i];
            wc[i] *= sigm(b[1] + ds->truth[i * (size_t)K + 1]);
            s1 += wc[i];
        }
        double cart = s0 > 0 ? s1 / s0 : (double)o->cart_rate;
        double tgt = (double)o->cvr / cart;
        if (tgt > 0.999) tgt = 0.999;
        b[2] = calibrate(ds->truth + 2, (size_t)K, wc, m, tgt);
    }
    free(wc);

    /* pass 2: true entire-space probabilities and labels */
#ifdef _OPENMP
#pragma omp parallel for schedule(static)
#endif
    for (size_t c = 0; c < n_chunks; c++) {
        rng_t r, rq;
        rng_seed(&r, o->seed, 2 * (uint64_t)c + 0x100001ull);
        rng_seed(&rq, o->seed, (uint64_t)c + 0x300000ull); /* order counts: own stream */
        size_t i0 = c * LISTS_PER_CHUNK * LL, i1 = i0 + LISTS_PER_CHUNK * LL;
        if (i1 > n) i1 = n;
        for (size_t i = i0; i < i1; i++) {
            float *t = ds->truth + i * (size_t)K, *y = ds->labels + i * (size_t)K;
            double p = sigm(b[0] + t[0]);
            int alive = rng_uf(&r) < (float)p;
            y[0] = (float)alive;
            t[0] = (float)p;
            for (int k = 1; k < T; k++) {
                double pk = sigm(b[k] + t[k]);
                p *= pk;
                float u = rng_uf(&r);
                alive = alive && u < (float)pk;
                y[k] = (float)alive;
                t[k] = (float)p;
            }
            if (K == T) continue;
            /* order count: 1 + Poisson(lambda_item) units when ordered, else 0 */
            float lam = item_lam[ds->cat[i * (size_t)F + F_ITEM] - 1];
            y[T] = alive ? (float)(1 + rng_poisson(&rq, lam)) : 0.0f;
            t[T] = (float)(p * (1.0 + (double)lam));
        }
    }
    free(item_lam);
    *out = ds;
    return RF_OK;
}
