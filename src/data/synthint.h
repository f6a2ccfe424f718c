/* synthint.h - declarations shared by the simulator's files (synth.c: options, the search
 * preset; synth_ecom.c: the ecom preset; synth_presets.c: the kuairand and rating presets;
 * synth_sample.c: samplers and calibration; synth_rows.c: what the presets share to make
 * worlds and rows).
 * Internal to src/data/. */
#ifndef RESFLOW_DATA_SYNTHINT_H
#define RESFLOW_DATA_SYNTHINT_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "core/rng.h"
#include "resflow/data.h"

#define LAT 8                 /* latent dimension */
#define MAX_LIST_LEN 4096
#define LISTS_PER_CHUNK 512
#define CALIB_ROWS 262144
#define N_HOUR 24

/* popularity (Zipf-Mandelbrot: weight(rank) = (rank + offset)^-exponent, rank from 1) */
#define ZIPF_USER 1.0
#define ZIPF_USER_OFF 10.0
#define ZIPF_ITEM 1.1
#define ZIPF_ITEM_OFF 5.0
#define ZIPF_QUERY 1.1
#define ZIPF_QUERY_OFF 5.0
#define ZIPF_CAT 0.9
#define ZIPF_SUB 1.0          /* brands/shops inside a category */

/* ---- RNG: the generator of core/rng.h, one stream per world and chunk ------------------- */
typedef struct {
    rf_rng g;
    rf_rng_spare sp; /* of rng_normal */
} rng_t;

static inline void rng_seed(rng_t *r, uint64_t seed, uint64_t stream)
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
void rf_synth_alias_build_into_(float *prob, uint32_t *alias, const double *w, uint32_t n, uint32_t *work, double *sc);
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

void rf_synth_grouped_free_(grouped_alias_t *g);
int rf_synth_grouped_build_(grouped_alias_t *g, const uint32_t *grp, const double *w, uint32_t n, uint32_t n_groups);

/* ---- vectors, shuffles, Zipf weights, small distributions ------------------------------------ */
void rf_synth_randvec_(float *x, rng_t *r, float sd);
static inline float dot(const float *a, const float *b)
{
    float s = 0;
    for (int k = 0; k < LAT; k++) s += a[k] * b[k];
    return s;
}

void rf_synth_shuffle_u32_(uint32_t *a, uint32_t n, rng_t *r);
/* Zipf-Mandelbrot weights for a random assignment of ranks to n entities. */
int rf_synth_zipf_weights_(double *w, uint32_t n, double expo, double off, rng_t *r);
int rf_synth_cmp_float_(const void *a, const void *b);
/* Draw from a small discrete distribution given by cumulative weights (n entries). */
uint32_t rf_synth_draw_cdf_(const double *cdf, uint32_t n, rng_t *r);

/* ---- calibration ------------------------------------------------------------------------------ */
static inline double sigm(double x) { return 1.0 / (1.0 + exp(-x)); }

/* Intercept b such that sum_i w_i sigm(b + x_i) / sum_i w_i = target (w NULL = 1), by a
 * safeguarded Newton iteration. x strided. */
double rf_synth_calibrate_(const float *x, size_t stride, const double *w, size_t m, double target);
/* Standard logistic quantiles (i + 0.5) / 16: E[sigmoid(z + L)] for L ~ Logistic(0, 1) is the
 * mean of sigmoid(z + q_i) to about 1e-3. */
double rf_synth_mean_sigmoid_logistic_(double z);

/* ---- shared pieces of the kuairand and rating presets ------------------------------------ */
/* A popularity alias table over n entities with Zipf-Mandelbrot weights. */
typedef struct {
    uint32_t n;
    float *prob;
    uint32_t *alias;
} pop_t;
void rf_synth_pop_free_(pop_t *p);
int rf_synth_pop_build_(pop_t *p, uint32_t n, double expo, double off, rng_t *r, double *wts_out);
static inline uint32_t pop_draw(const pop_t *p, rng_t *r) { return alias_draw(p->prob, p->alias, p->n, r); }

/* ---- world and row making shared by the search and ecom presets (synth_rows.c) -------------- */
/* A retrieved item and the production ranker's score of it. */
typedef struct {
    uint32_t item;
    float score;
} slot_t;
/* Retrieve an item not among slots[0, j): from category cat's group (by_cat) with probability
 * p_on while the group is non-empty, else from the catalogue's alias table (prob, alias, n);
 * after 16 duplicates only from the catalogue, and the 32nd draw stands. */
uint32_t rf_synth_retrieve_(const slot_t *slots, int j, const grouped_alias_t *by_cat, uint32_t cat, float p_on,
                            const float *prob, const uint32_t *alias, uint32_t n, rng_t *r);
/* A shopper of the search and ecom worlds. */
#define N_SEG 12    /* user segments: 2 genders x 6 age buckets */
#define N_POWER 5   /* purchase-power levels */
#define N_TIER 5    /* city tiers */
#define N_DEVICE 3  /* 1 ios, 2 android, 3 pc */
typedef struct {
    float u[LAT];      /* relevance latent */
    float z[LAT];      /* purchase latent */
    uint32_t seg, power, tier, favcat, device; /* 1-based ids (favcat 0-based) */
} shopper_t;
/* Draw one: segment, city tier, purchase power, main device (affluent users lean ios), the
 * favourite category (cat_cdf over nc), and the latents around that category's centre (cvec +
 * favcat * cstride) and the segment's vectors (segv, segz: N_SEG x LAT). */
void rf_synth_shopper_(shopper_t *us, const double *cat_cdf, uint32_t nc, const float *cvec, size_t cstride,
                       const float *segv, const float *segz, rng_t *r);
/* Time of day and device: the hours' popularity (an alias table), the click and order effects of
 * every hour and of every device (1 ios, 2 android, 3 pc; 0 unused). */
typedef struct {
    float hour_prob[N_HOUR];
    uint32_t hour_alias[N_HOUR];
    float hour_click[N_HOUR], hour_order[N_HOUR];
    float dev_click[4], dev_order[4];
} daytime_t;
void rf_synth_daytime_(daytime_t *t);
/* Order slots[0, n) by score, descending (stable: ties keep draw order). */
void rf_synth_rank_(slot_t *slots, int n);
/* A dataset of n rows with group and truth columns (huge pages asked for); NULL out of memory. */
rf_dataset *rf_synth_rows_alloc_(size_t n, int F, int D, int K);
/* The intercepts b[1..tasks-1] of order|click (2 tasks) or cart|click, order|cart (3) on the m
 * leading rows of truth (stride K, logit parts), given wc[i] = P(click) of row i (overwritten). */
void rf_synth_calib_chain_(const float *truth, int K, double *wc, size_t m, const rf_synth_opts *o, double *b);
/* One row's labels y and truths t along the chain of T stages: stage 0 passes with probability
 * p0, stage k >= 1 (if reached) with sigm(b[k] + t[k]); on return t holds the entire-space
 * probabilities. cf >= 0: stage k's potential outcome and its probability also into column
 * cf + k - 1. lam >= 0: the order count into column T (1 + Poisson(lam) units, stream rq). */
void rf_synth_chain_row_(float *t, float *y, int T, const double *b, double p0, int cf, float lam, rng_t *r,
                         rng_t *rq);
/* Pass 1 of a preset: gen(world, o, ds, l0, l1, r, scratch) over the n_lists lists in chunks of
 * LISTS_PER_CHUNK, in parallel (o->threads), chunk c with the random stream (o->seed,
 * stream0 + 2 c) and its thread's scratch of scratch_bytes. Returns 0, or -1 out of memory. */
typedef void (*synth_gen_fn)(const void *world, const rf_synth_opts *o, rf_dataset *ds, size_t l0, size_t l1,
                             rng_t *r, void *scratch);
int rf_synth_lists_(synth_gen_fn gen, const void *world, const rf_synth_opts *o, rf_dataset *ds, size_t n_lists,
                    uint64_t stream0, size_t scratch_bytes);
/* Pass 2 of a search-log preset: every row's entire-space truths and labels
 * (rf_synth_chain_row_ with the intercepts b), rows_per_chunk rows per chunk in parallel
 * (o->threads), chunk c on the streams (o->seed, s_row + 2 c) and (o->seed, s_count + c). The
 * root stage passes with exam(position column pos_col) * sigm(b[0] + t[0]) (exam NULL: 1);
 * cf as rf_synth_chain_row_; item_lam (NULL: no order counts) is read at item id - 1 of column
 * item_col. */
void rf_synth_labels_(rf_dataset *ds, int T, const double *b, float (*exam)(uint32_t), int pos_col, int cf,
                      const float *item_lam, int item_col, size_t n_chunks, size_t rows_per_chunk, uint64_t s_row,
                      uint64_t s_count, const rf_synth_opts *o);
/* Mean extra units of an order of an item of this relative price (cheaper buys in multiples). */
float rf_synth_order_lam_(float relprice);

/* ---- the presets of synth_presets.c (options validated) ----------------------------------- */
rf_status rf_synth_gen_kuairand_(const rf_synth_opts *o, rf_dataset **out, rf_error *err);
rf_status rf_synth_gen_ecom_(const rf_synth_opts *o, rf_dataset **out, rf_error *err);
rf_status rf_synth_gen_rating_(const rf_synth_opts *o, rf_dataset **out, rf_error *err);

#endif
