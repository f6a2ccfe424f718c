/* synth_presets.c - the simulator's kuairand (short-video feed) and rating (movie ratings)
 * presets (docs/simulator.md); deterministic for a seed like the search preset (synth.c). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "core/omp.h"
#include "core/bigmem.h"
#include "data/synthint.h"

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
    rf_synth_pop_free_(&W->upop);
    rf_synth_pop_free_(&W->vpop);
    rf_synth_grouped_free_(&W->by_tag);
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
        rf_synth_pop_build_(&W->upop, NU, ZIPF_USER, ZIPF_USER_OFF, &r, NULL) ||
        rf_synth_pop_build_(&W->vpop, NV, ZIPF_ITEM, ZIPF_ITEM_OFF, &r, vw)) {
        st = rf_errorf(err, RF_ENOMEM, "synth: out of memory building the simulated feed");
        goto done;
    }
    for (int t = 0; t < K_TAGS; t++) {
        rf_synth_randvec_(tagv[t], &r, 1.0f);
        float nrm = sqrtf(dot(tagv[t], tagv[t]));
        for (int k = 0; k < LAT; k++) tagv[t][k] = nrm > 0 ? tagv[t][k] / nrm : (k == 0);
        tag_cdf[t] = (acc += pow(t + 1.0, -ZIPF_CAT));
    }
    acc = 0;
    for (int t = 0; t < K_UPLOAD; t++) up_cdf[t] = (acc += pow(t + 1.0, -1.2));
    /* authors: popularity (for drawing) and social latent */
    if (rf_synth_zipf_weights_(aw, NA, 1.0, 5.0, &r)) {
        st = rf_errorf(err, RF_ENOMEM, "synth: out of memory");
        goto done;
    }
    for (uint32_t a = 0; a < NA; a++) rf_synth_randvec_(W->author_a + (size_t)a * LAT, &r, 1.0f / sqrtf((float)LAT));
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
            uint32_t t = rf_synth_draw_cdf_(tag_cdf, K_TAGS, &r);
            if (i < K_TAGS && i < NV) t = i;
            v->tag = t + 1;
            grp[i] = t;
            /* author: popular authors upload more (inverse-CDF draw on the author weights) */
            double u = rng_uf(&r) * acdf_total, c = 0;
            uint32_t a = 0;
            while (a + 1 < NA && (c += aw[a]) < u) a++;
            v->author = a + 1;
            v->vtype = rng_uf(&r) < 0.05f ? 2 : 1;
            v->upload = 1 + rf_synth_draw_cdf_(up_cdf, K_UPLOAD, &r);
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
    if (rf_synth_grouped_build_(&W->by_tag, grp, vw, NV, K_TAGS)) {
        st = rf_errorf(err, RF_ENOMEM, "synth: out of memory");
        goto done;
    }
    {
        static const double act_cdf[4] = {0.4, 0.7, 0.9, 1.0};
        for (uint32_t u = 0; u < NU; u++) {
            kuser_t *us = &W->users[u];
            us->active = 1 + rf_synth_draw_cdf_(act_cdf, 4, &r);
            us->live = rng_uf(&r) < 0.1f ? 2 : 1;
            us->follow = 1 + rng_below(&r, 8);
            us->regdays = 1 + rng_below(&r, 7);
            us->favtag = rf_synth_draw_cdf_(tag_cdf, K_TAGS, &r);
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
        rf_synth_alias_build_into_(W->hour_prob, W->hour_alias, hw, N_HOUR, hwork, hs);
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
static void kgen_lists(const void *world, const rf_synth_opts *o, rf_dataset *ds, size_t l0, size_t l1,
                       rng_t *r, void *scratch)
{
    const kworld_t *W = world;
    uint32_t *slots = scratch;
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

rf_status rf_synth_gen_kuairand_(const rf_synth_opts *o, rf_dataset **out, rf_error *err)
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
    int oom = rf_synth_lists_(kgen_lists, &W, o, ds, n_lists, 0x500000ull, LL * sizeof(uint32_t));
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
    b[KL_CLICK] = rf_synth_calibrate_(ds->truth + KL_CLICK, (size_t)K, NULL, m, (double)o->ctr);
    for (size_t i = 0; i < m; i++) w[i] = sigm(b[KL_CLICK] + ds->truth[i * (size_t)K + KL_CLICK]);
    b[KL_LONG] = rf_synth_calibrate_(ds->truth + KL_LONG, (size_t)K, w, m, KR_LONG);
    for (size_t i = 0; i < m; i++) w[i] *= sigm(b[KL_LONG] + ds->truth[i * (size_t)K + KL_LONG]);
    b[KL_LIKE] = rf_synth_calibrate_(ds->truth + KL_LIKE, (size_t)K, w, m, KR_LIKE);
    for (size_t i = 0; i < m; i++) wl[i] = w[i] * sigm(b[KL_LIKE] + ds->truth[i * (size_t)K + KL_LIKE]);
    b[KL_FOLLOW] = rf_synth_calibrate_(ds->truth + KL_FOLLOW, (size_t)K, wl, m, KR_FOLLOW);
    b[KL_COMMENT] = rf_synth_calibrate_(ds->truth + KL_COMMENT, (size_t)K, wl, m, KR_COMMENT);
    b[KL_FORWARD] = rf_synth_calibrate_(ds->truth + KL_FORWARD, (size_t)K, wl, m, KR_FORWARD);
    free(w);
    free(wl);
    const size_t rows_per_chunk = LISTS_PER_CHUNK * LL;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(rf_omp_threads(o->threads))
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
            t[KL_PLAY] = (float)(pc * dur * rf_synth_mean_sigmoid_logistic_(z));
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

typedef struct {
    const ruser_t *users;
    const ritem_t *items;
    const pop_t *upop, *ipop;
    float *score; /* (rows) the latent rating score */
} rworld_t;

/* Rows of sessions [l0, l1): a list is one user's session of list_len distinct movies. */
static void rgen_lists(const void *world, const rf_synth_opts *o, rf_dataset *ds, size_t l0, size_t l1,
                       rng_t *rc, void *scratch)
{
    const rworld_t *W = world;
    uint32_t *slots = scratch;
    const int F = ds->F, D = ds->D;
    const size_t n = ds->n, LL = (size_t)o->list_len;
    for (size_t l = l0; l < l1; l++) {
        uint32_t ui = pop_draw(W->upop, rc);
        const ruser_t *us = &W->users[ui];
        size_t row0 = l * LL;
        size_t len = row0 + LL > n ? n - row0 : LL;
        for (size_t j = 0; j < len; j++) {
            uint32_t ii = 0;
            for (int tries = 0; tries < 32; tries++) {
                ii = pop_draw(W->ipop, rc);
                int dup = 0;
                for (size_t k = 0; k < j; k++) dup |= slots[k] == ii;
                if (!dup) break;
            }
            slots[j] = ii;
            const ritem_t *it = &W->items[ii];
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
            W->score[i] = us->bias + it->bias + 1.3f * dot(us->u, it->v) + 0.2f * rng_normal(rc);
        }
    }
}

rf_status rf_synth_gen_rating_(const rf_synth_opts *o, rf_dataset **out, rf_error *err)
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
    if (!users || !items || !iw || rf_synth_pop_build_(&upop, NU, ZIPF_USER, ZIPF_USER_OFF, &r, NULL) ||
        rf_synth_pop_build_(&ipop, NI, ZIPF_ITEM, ZIPF_ITEM_OFF, &r, iw)) {
        st = rf_errorf(err, RF_ENOMEM, "synth: out of memory");
        goto done;
    }
    for (int g = 0; g < R_GENRES; g++) {
        rf_synth_randvec_(gv[g], &r, 1.0f / sqrtf((float)LAT));
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
                    g = rf_synth_draw_cdf_(gcdf, R_GENRES, &r);
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
        uint32_t fav = rf_synth_draw_cdf_(gcdf, R_GENRES, &r);
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
    /* pass 1: who rates what */
    const rworld_t RW = {users, items, &upop, &ipop, score};
    if (rf_synth_lists_(rgen_lists, &RW, o, ds, n_lists, 0x700000ull, LL * sizeof(uint32_t))) {
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
    for (int k = 0; k < 4; k++) b[k] = rf_synth_calibrate_(score, 1, NULL, m, R_TARGET[k]);
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(rf_omp_threads(o->threads))
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
    rf_synth_pop_free_(&upop);
    rf_synth_pop_free_(&ipop);
    if (st) {
        rf_dataset_free(ds);
        return st;
    }
    *out = ds;
    return RF_OK;
}

