/* synth_ecom.c - the simulator's ecom preset: an e-commerce search log written from the
 * generative story of docs/simulator.md ("The ecom preset: the story"): a catalogue, users,
 * queries with intent and scope, retrieval and a production ranker (exposure and position bias),
 * click and conversion from different mixes with unobserved session terms, counterfactual
 * conversion labels (cf_*) with their true probabilities. Deterministic for a seed and
 * bit-identical for any thread count (per-chunk random streams). The constants below are the
 * story's; they were fixed before any model was trained on this log. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#endif

#include "data/synthint.h"

#define E_PBUCKET 10
#define E_MAXCAT 64
#define E_AGEB 6
#define E_SHARD 16
#define E_THEME 4
#define E_ACT 5
#define E_QLEN 5

typedef struct {
    float v[LAT], w[LAT];
    float q, a, rp, nov, popz, trust, rep, kcat;
    float price_std, hist_ctr, hist_cvr, reviews;
    uint32_t cat, brand, shop, pbucket, agebkt, stars; /* 1-based ids (cat 0-based) */
} eitem_t;

typedef struct {
    shopper_t s;
    float cu, ou, su, hist_orders;
    uint32_t act;
} euser_t;

typedef struct {
    float q[LAT];
    uint32_t cat, specific, intent, qlen; /* intent 0 browse, 1 compare, 2 buy */
} equery_t;

typedef struct {
    uint32_t NU, NI, NQ, NC, NB, NS;
    eitem_t *items;
    euser_t *users;
    equery_t *queries;
    pop_t upop, ipop, qpop;
    grouped_alias_t items_by_cat, queries_by_cat;
    daytime_t tm; /* time of day and device (as the search preset) */
} eworld_t;

static const float intent_c[3] = {0.15f, 0.0f, -0.1f};
static const float intent_o[3] = {-0.8f, 0.0f, 0.9f};

static void eworld_free(eworld_t *W)
{
    free(W->items);
    free(W->users);
    free(W->queries);
    rf_synth_pop_free_(&W->upop);
    rf_synth_pop_free_(&W->ipop);
    rf_synth_pop_free_(&W->qpop);
    rf_synth_grouped_free_(&W->items_by_cat);
    rf_synth_grouped_free_(&W->queries_by_cat);
}

static float sd_l(float s) { return s / sqrtf((float)LAT); }

/* standardised log weights */
static void log_z(const double *w, uint32_t n, float *z)
{
    double m = 0, m2 = 0;
    for (uint32_t i = 0; i < n; i++) {
        double l = log(w[i]);
        m += l;
        m2 += l * l;
    }
    m /= n;
    double sd = sqrt(fmax(m2 / n - m * m, 1e-12));
    for (uint32_t i = 0; i < n; i++) z[i] = (float)((log(w[i]) - m) / sd);
}

static rf_status eworld_build(eworld_t *W, const rf_synth_opts *o, rf_error *err)
{
    memset(W, 0, sizeof *W);
    rng_t r;
    rng_seed(&r, o->seed, 0xEC0Dull);
    const uint32_t NU = o->n_users, NI = o->n_items, NQ = o->n_queries;
    uint32_t nc = NI / 16;
    if (nc > E_MAXCAT) nc = E_MAXCAT;
    if (nc < 1) nc = 1;
    uint32_t bpc = NI / (nc * 50), spc = NI / (nc * 20);
    if (bpc < 1) bpc = 1;
    if (spc < 1) spc = 1;
    W->NU = NU, W->NI = NI, W->NQ = NQ, W->NC = nc, W->NB = nc * bpc, W->NS = nc * spc;
    uint32_t NMAX = NU > NI ? NU : NI;
    if (NQ > NMAX) NMAX = NQ;
    double *wts = malloc((size_t)NMAX * sizeof *wts);
    float *z = malloc((size_t)NMAX * sizeof *z), *lp = malloc((size_t)NI * sizeof *lp);
    uint32_t *grp = malloc((size_t)NMAX * sizeof *grp);
    float *cvec = malloc((size_t)nc * (LAT + 2) * sizeof *cvec); /* centre, mu, k */
    float *bvec = malloc((size_t)W->NB * (2 * LAT + 2) * sizeof *bvec); /* B, W, premium, rep */
    float *strust = malloc((size_t)W->NS * sizeof *strust);
    double *ccdf = malloc((size_t)nc * sizeof *ccdf), *bcdf = malloc((size_t)bpc * sizeof *bcdf),
           *scdf = malloc((size_t)spc * sizeof *scdf);
    W->items = malloc((size_t)NI * sizeof *W->items);
    W->users = malloc((size_t)NU * sizeof *W->users);
    W->queries = malloc((size_t)NQ * sizeof *W->queries);
    rf_status st = RF_OK;
    if (!wts || !z || !lp || !grp || !cvec || !bvec || !strust || !ccdf || !bcdf || !scdf || !W->items ||
        !W->users || !W->queries)
        goto oom;
    float segv[N_SEG][LAT], segz[N_SEG][LAT];
    double acc = 0;
    for (uint32_t c = 0; c < nc; c++) {
        float *cv = cvec + (size_t)c * (LAT + 2);
        rf_synth_randvec_(cv, &r, 1.0f);
        float nrm = sqrtf(dot(cv, cv));
        for (int k = 0; k < LAT; k++) cv[k] = nrm > 0 ? cv[k] / nrm : (k == 0);
        cv[LAT] = 2.0f + 4.0f * rng_uf(&r);
        cv[LAT + 1] = 0.3f * rng_normal(&r);
        ccdf[c] = (acc += pow((double)c + 1.0, -ZIPF_CAT));
    }
    acc = 0;
    for (uint32_t k = 0; k < bpc; k++) bcdf[k] = (acc += pow((double)k + 1.0, -ZIPF_SUB));
    acc = 0;
    for (uint32_t k = 0; k < spc; k++) scdf[k] = (acc += pow((double)k + 1.0, -ZIPF_SUB));
    for (uint32_t b = 0; b < W->NB; b++) {
        float *bv = bvec + (size_t)b * (2 * LAT + 2);
        rf_synth_randvec_(bv, &r, sd_l(1.0f));
        rf_synth_randvec_(bv + LAT, &r, sd_l(1.0f));
        bv[2 * LAT] = 0.4f * rng_normal(&r);
        bv[2 * LAT + 1] = 0.3f * rng_normal(&r);
    }
    for (uint32_t s = 0; s < W->NS; s++) strust[s] = 0.5f * rng_normal(&r);
    for (int s = 0; s < N_SEG; s++) {
        rf_synth_randvec_(segv[s], &r, sd_l(1.0f));
        rf_synth_randvec_(segz[s], &r, sd_l(1.0f));
    }

    /* items */
    if (rf_synth_pop_build_(&W->ipop, NI, ZIPF_ITEM, ZIPF_ITEM_OFF, &r, wts)) goto oom;
    log_z(wts, NI, z);
    double hw = 0, hs = 0, hs2 = 0;
    for (uint32_t i = 0; i < NI; i++) {
        eitem_t *it = &W->items[i];
        uint32_t c = i < nc ? i : rf_synth_draw_cdf_(ccdf, nc, &r);
        uint32_t b = c * bpc + rf_synth_draw_cdf_(bcdf, bpc, &r);
        uint32_t s = rng_uf(&r) < 0.85f ? c * spc + rf_synth_draw_cdf_(scdf, spc, &r) : rng_below(&r, W->NS);
        const float *cv = cvec + (size_t)c * (LAT + 2), *bv = bvec + (size_t)b * (2 * LAT + 2);
        it->cat = c;
        it->brand = b + 1;
        it->shop = s + 1;
        grp[i] = c;
        for (int k = 0; k < LAT; k++) {
            it->v[k] = 0.8f * cv[k] + 0.35f * bv[k] + sd_l(0.45f) * rng_normal(&r);
            it->w[k] = 0.5f * bv[LAT + k] + sd_l(0.85f) * rng_normal(&r);
        }
        it->popz = z[i];
        it->rep = bv[2 * LAT + 1];
        it->q = 0.3f * z[i] + 0.5f * it->rep + 0.45f * rng_normal(&r);
        it->a = 0.3f * it->q + 0.6f * rng_normal(&r);
        it->rp = bv[2 * LAT] + 0.5f * rng_normal(&r);
        lp[i] = cv[LAT] + it->rp;
        it->kcat = cv[LAT + 1];
        it->trust = strust[s];
        float st_ = 3.0f + 2.0f * (it->trust + 0.3f * rng_normal(&r));
        int stars = (int)lrintf(st_);
        it->stars = (uint32_t)(stars < 1 ? 1 : stars > 5 ? 5 : stars);
        float u = rng_uf(&r);
        float age = floorf(730.0f * u * u);
        it->nov = expf(-age / 30.0f);
        it->agebkt = age < 7 ? 1 : age < 30 ? 2 : age < 90 ? 3 : age < 180 ? 4 : age < 365 ? 5 : 6;
        float matur = fminf(1.0f, (age + 1.0f) / 180.0f);
        it->reviews = logf(1.0f + expf(1.2f * z[i] + 2.0f) * matur) + 0.2f * rng_normal(&r);
        /* head and older items have more past impressions: less noisy statistics */
        float exposure = (float)sigm(-1.5 * z[i]) * (1.0f + it->nov);
        it->hist_ctr = 0.8f * it->a + 0.2f * it->q + 0.4f * it->nov + (0.1f + 0.9f * fminf(1.0f, exposure)) * rng_normal(&r);
        it->hist_cvr = 0.8f * it->q + 0.6f * it->trust + (0.3f + 1.2f * fminf(1.0f, exposure)) * rng_normal(&r);
        hw += wts[i];
        hs += wts[i] * it->hist_ctr;
        hs2 += wts[i] * it->hist_cvr;
    }
    {
        double m = 0, m2 = 0;
        for (uint32_t i = 0; i < NI; i++) {
            m += lp[i];
            m2 += (double)lp[i] * lp[i];
            W->items[i].hist_ctr -= (float)(hs / hw);
            W->items[i].hist_cvr -= (float)(hs2 / hw);
        }
        m /= NI;
        double sd = sqrt(fmax(m2 / NI - m * m, 1e-12));
        memcpy(z, lp, (size_t)NI * sizeof *z);
        qsort(z, NI, sizeof *z, rf_synth_cmp_float_);
        float cut[E_PBUCKET - 1];
        for (int k = 1; k < E_PBUCKET; k++) cut[k - 1] = z[(size_t)NI * (size_t)k / E_PBUCKET];
        for (uint32_t i = 0; i < NI; i++) {
            uint32_t bkt = 0;
            while (bkt < E_PBUCKET - 1 && lp[i] >= cut[bkt]) bkt++;
            W->items[i].pbucket = bkt + 1;
            W->items[i].price_std = (float)((lp[i] - m) / sd);
        }
    }
    if (rf_synth_grouped_build_(&W->items_by_cat, grp, wts, NI, nc)) goto oom;

    /* queries */
    if (rf_synth_pop_build_(&W->qpop, NQ, ZIPF_QUERY, ZIPF_QUERY_OFF, &r, wts)) goto oom;
    for (uint32_t q = 0; q < NQ; q++) {
        equery_t *qu = &W->queries[q];
        qu->cat = rf_synth_draw_cdf_(ccdf, nc, &r);
        grp[q] = qu->cat;
        qu->specific = rng_uf(&r) < 0.4f;
        float u = rng_uf(&r);
        qu->intent = u < 0.45f ? 0 : u < 0.8f ? 1 : 2;
        qu->qlen = 1 + 2 * qu->specific + rng_below(&r, 3);
        const float *cv = cvec + (size_t)qu->cat * (LAT + 2);
        float sd = sd_l(qu->specific ? 0.3f : 0.6f);
        for (int k = 0; k < LAT; k++) qu->q[k] = 0.9f * cv[k] + sd * rng_normal(&r);
    }
    if (rf_synth_grouped_build_(&W->queries_by_cat, grp, wts, NQ, nc)) goto oom;

    /* users */
    if (rf_synth_pop_build_(&W->upop, NU, ZIPF_USER, ZIPF_USER_OFF, &r, wts)) goto oom;
    log_z(wts, NU, z);
    {
        /* activity level: quintiles of the standardised log activity */
        float *srt = malloc((size_t)NU * sizeof *srt);
        if (!srt) goto oom;
        memcpy(srt, z, (size_t)NU * sizeof *srt);
        qsort(srt, NU, sizeof *srt, rf_synth_cmp_float_);
        float acut[E_ACT - 1];
        for (int k = 1; k < E_ACT; k++) acut[k - 1] = srt[(size_t)NU * (size_t)k / E_ACT];
        free(srt);
        for (uint32_t ui = 0; ui < NU; ui++) {
            euser_t *us = &W->users[ui];
            rf_synth_shopper_(&us->s, ccdf, nc, cvec, LAT + 2, &segv[0][0], &segz[0][0], &r);
            uint32_t a = 0;
            while (a < E_ACT - 1 && z[ui] >= acut[a]) a++;
            us->act = a + 1;
            us->cu = 0.4f * rng_normal(&r);
            us->ou = 0.3f * us->cu + 0.6f * rng_normal(&r);
            us->su = expf(0.4f * rng_normal(&r)) * (1.0f + 0.15f * (3.0f - (float)us->s.power));
            us->hist_orders = logf(1.0f + (float)rng_poisson(&r, 3.0f * expf(us->ou)));
        }
    }

    rf_synth_daytime_(&W->tm);
    goto done;
oom:
    st = rf_errorf(err, RF_ENOMEM, "synth: out of memory building the simulated world");
done:
    free(wts);
    free(z);
    free(lp);
    free(grp);
    free(cvec);
    free(bvec);
    free(strust);
    free(ccdf);
    free(bcdf);
    free(scdf);
    if (st != RF_OK) eworld_free(W);
    return st;
}

enum {
    EF_USER, EF_SEG, EF_POWER, EF_TIER, EF_ACT, EF_QUERY, EF_QCAT, EF_QLEN, EF_ITEM, EF_ICAT, EF_BRAND,
    EF_SHOP, EF_STARS, EF_PBUCKET, EF_AGE, EF_POS, EF_HOUR, EF_DEVICE, EF_SHARD, EF_THEME, EN_FIELDS
};
static const char *const ef_names[EN_FIELDS] = {
    "user_id", "user_segment", "user_power", "city_tier", "user_activity", "query_id", "query_cat",
    "query_len", "item_id", "item_cat", "brand", "shop", "shop_rating", "price_bucket", "item_age",
    "position", "hour", "device", "request_shard", "ui_theme"};
enum { ED_PRICE, ED_HCTR, ED_HCVR, ED_REV, ED_UORD, ED_NOISE, EN_DENSE };
static const char *const ed_names[EN_DENSE] = {"log_price", "item_hist_ctr", "item_hist_cvr", "item_reviews",
                                               "user_hist_orders", "noise"};

/* Requests [l0, l1): features, and the logit parts (no intercepts) of click|exam (col 0) and
 * the T-1 stages below it (cols 1..T-1) into truth. */
static void gen_requests(const void *world, const rf_synth_opts *o, rf_dataset *ds, size_t l0, size_t l1,
                         rng_t *r, void *scratch)
{
    const eworld_t *W = world;
    slot_t *slots = scratch; /* 2 list_len candidates */
    const int F = ds->F, D = ds->D, K = ds->K, T = o->tasks, LL = o->list_len, M = 2 * LL;
    for (size_t l = l0; l < l1; l++) {
        size_t row0 = l * (size_t)LL;
        int len = LL;
        if (row0 + (size_t)len > ds->n) len = (int)(ds->n - row0);
        uint32_t ui = pop_draw(&W->upop, r);
        const euser_t *us = &W->users[ui];
        uint32_t qi = rng_uf(r) < 0.5f && grouped_nonempty(&W->queries_by_cat, us->s.favcat)
                          ? grouped_draw(&W->queries_by_cat, us->s.favcat, r)
                          : pop_draw(&W->qpop, r);
        const equery_t *qu = &W->queries[qi];
        uint32_t hour = alias_draw(W->tm.hour_prob, W->tm.hour_alias, N_HOUR, r);
        uint32_t dev = rng_uf(r) < 0.8f ? us->s.device : 1 + rng_below(r, N_DEVICE);
        float ec = 0.3f * rng_normal(r), eo = 0.5f * rng_normal(r); /* unobserved session terms */
        uint32_t shard = 1 + rng_below(r, E_SHARD), theme = 1 + rng_below(r, E_THEME);
        float p_on = qu->specific ? 0.95f : 0.75f;
        /* retrieval: M distinct candidates; the production ranker's score */
        for (int j = 0; j < M; j++) {
            uint32_t it = rf_synth_retrieve_(slots, j, &W->items_by_cat, qu->cat, p_on, W->ipop.prob, W->ipop.alias,
                                             W->ipop.n, r);
            const eitem_t *ti = &W->items[it];
            slots[j].item = it;
            slots[j].score = dot(qu->q, ti->v) + 0.4f * ti->hist_ctr + 0.3f * ti->popz + 0.8f * rng_normal(r);
        }
        rf_synth_rank_(slots, M); /* the top list_len are shown, best first */
        for (int j = 0; j < len; j++) {
            size_t i = row0 + (size_t)j;
            const eitem_t *ti = &W->items[slots[j].item];
            uint32_t *c = ds->cat + i * (size_t)F;
            c[EF_USER] = ui + 1;
            c[EF_SEG] = us->s.seg;
            c[EF_POWER] = us->s.power;
            c[EF_TIER] = us->s.tier;
            c[EF_ACT] = us->act;
            c[EF_QUERY] = qi + 1;
            c[EF_QCAT] = qu->cat + 1;
            c[EF_QLEN] = qu->qlen;
            c[EF_ITEM] = slots[j].item + 1;
            c[EF_ICAT] = ti->cat + 1;
            c[EF_BRAND] = ti->brand;
            c[EF_SHOP] = ti->shop;
            c[EF_STARS] = ti->stars;
            c[EF_PBUCKET] = ti->pbucket;
            c[EF_AGE] = ti->agebkt;
            c[EF_POS] = (uint32_t)j + 1;
            c[EF_HOUR] = hour + 1;
            c[EF_DEVICE] = dev;
            c[EF_SHARD] = shard;
            c[EF_THEME] = theme;
            float *d = ds->dense + i * (size_t)D;
            d[ED_PRICE] = ti->price_std;
            d[ED_HCTR] = ti->hist_ctr;
            d[ED_HCVR] = ti->hist_cvr;
            d[ED_REV] = ti->reviews;
            d[ED_UORD] = us->hist_orders;
            d[ED_NOISE] = rng_normal(r);
            ds->group[i] = (uint64_t)l;

            float rel = dot(us->s.u, ti->v) + 1.3f * dot(qu->q, ti->v);
            float over = ti->rp - 0.35f * ((float)us->s.power - 3.0f);
            float buy = us->ou + intent_o[qu->intent] + 0.8f * ti->q + 0.3f * ti->rep + 0.6f * ti->trust + ti->kcat -
                        0.4f * ti->a - us->su * (0.3f * ti->rp + 0.8f * (over > 0 ? over : 0)) +
                        1.2f * dot(us->s.z, ti->w) + W->tm.hour_order[hour] + W->tm.dev_order[dev] + eo;
            float *t = ds->truth + i * (size_t)K;
            t[0] = us->cu + rel + 0.8f * ti->a + 0.2f * ti->q - 0.2f * us->su * ti->rp + 0.4f * ti->nov +
                   intent_c[qu->intent] + W->tm.hour_click[hour] + W->tm.dev_click[dev] + ec + 0.3f * rng_normal(r);
            if (T == 2) {
                t[1] = 0.5f * rel + buy + 0.3f * rng_normal(r);
            } else {
                t[1] = 0.5f * rel + 0.5f * buy + 0.3f * rng_normal(r);
                t[2] = 0.15f * rel + buy + 0.3f * rng_normal(r);
            }
        }
    }
}

static float exam_at(uint32_t pos) { return powf((float)pos, -0.6f); }

rf_status rf_synth_gen_ecom_(const rf_synth_opts *o, rf_dataset **out, rf_error *err)
{
    /* labels: T task labels, (order_counts) order_count, then T-1 counterfactual labels */
    const int T = o->tasks, OC = o->order_counts ? 1 : 0, K = T + OC + (T - 1), F = EN_FIELDS, D = EN_DENSE;
    const int CF = T + OC; /* first counterfactual column */
    const size_t n = o->rows, LL = (size_t)o->list_len;
    eworld_t W;
    rf_status st = eworld_build(&W, o, err);
    if (st != RF_OK) return st;
    rf_dataset *ds = rf_synth_rows_alloc_(n, F, D, K);
    float *item_lam = malloc((size_t)W.NI * sizeof *item_lam);
    if (!ds || !item_lam) {
        rf_dataset_free(ds);
        eworld_free(&W);
        free(item_lam);
        return rf_errorf(err, RF_ENOMEM, "synth: out of memory for %zu rows", n);
    }
    for (uint32_t i = 0; i < W.NI; i++) item_lam[i] = rf_synth_order_lam_(W.items[i].rp);
    const uint32_t vocab[EN_FIELDS] = {W.NU + 1, N_SEG + 1, N_POWER + 1, N_TIER + 1, E_ACT + 1, W.NQ + 1, W.NC + 1,
                                       E_QLEN + 1, W.NI + 1, W.NC + 1, W.NB + 1, W.NS + 1, 6, E_PBUCKET + 1,
                                       E_AGEB + 1, (uint32_t)LL + 1, N_HOUR + 1, N_DEVICE + 1, E_SHARD + 1,
                                       E_THEME + 1};
    for (int f = 0; f < F; f++) {
        snprintf(ds->fields[f].name, RF_NAME_MAX, "%s", ef_names[f]);
        ds->fields[f].vocab = vocab[f];
    }
    for (int d = 0; d < D; d++) snprintf(ds->dense_names[d], RF_NAME_MAX, "%s", ed_names[d]);
    static const char *const l2[2] = {"click", "order"}, *const l3[3] = {"click", "cart", "order"};
    for (int k = 0; k < T; k++) {
        const char *nm = T == 2 ? l2[k] : l3[k];
        snprintf(ds->label_names[k], RF_NAME_MAX, "%s", nm);
        if (k) snprintf(ds->label_names[CF + k - 1], RF_NAME_MAX, "cf_%s", nm);
    }
    if (OC) snprintf(ds->label_names[T], RF_NAME_MAX, "order_count");

    const size_t n_lists = (n + LL - 1) / LL, n_chunks = (n_lists + LISTS_PER_CHUNK - 1) / LISTS_PER_CHUNK;
    int oom = rf_synth_lists_(gen_requests, &W, o, ds, n_lists, 0xEC00000ull, 2 * LL * sizeof(slot_t));
    eworld_free(&W);
    size_t m = n < CALIB_ROWS ? n : CALIB_ROWS;
    double *wc = oom ? NULL : malloc(m * sizeof *wc);
    if (!wc) {
        rf_dataset_free(ds);
        free(item_lam);
        return rf_errorf(err, RF_ENOMEM, "synth: out of memory");
    }
    /* calibration: P(click) = exam(p) sigma(b_c + x): weighted by exam, target ctr * m / sum exam */
    double se = 0;
    for (size_t i = 0; i < m; i++) se += wc[i] = exam_at(ds->cat[i * (size_t)F + EF_POS]);
    double tc = (double)o->ctr * (double)m / se;
    double b[3] = {rf_synth_calibrate_(ds->truth, (size_t)K, wc, m, tc > 0.999 ? 0.999 : tc), 0, 0};
    for (size_t i = 0; i < m; i++) wc[i] *= sigm(b[0] + ds->truth[i * (size_t)K]);
    rf_synth_calib_chain_(ds->truth, K, wc, m, o, b);
    free(wc);

    /* labels and truth: potential outcomes of every stage on every row */
    rf_synth_labels_(ds, T, b, exam_at, EF_POS, CF, OC ? item_lam : NULL, EF_ITEM, n_chunks, LISTS_PER_CHUNK * LL,
                     0xEC00001ull, 0xEC80000ull, o);
    free(item_lam);
    *out = ds;
    return RF_OK;
}
