/* test_rank.c - ranking metrics and score fusion: hand-computed cases for every metric and WR
 * variant (ties, degenerate groups), an O(m^2) reference and an all-permutations reference of
 * the tie rule, properties (perfect ranking, row-order and thread-count invariance), order
 * counts, fusion formulas and search, the model file's FUSN section, predictions headers. */
#include <omp.h>
#include <unistd.h>

#include <xxhash.h>

#include "test_util.h"

#include "nn/model_impl.h"

#include "resflow/modelfile.h"
#include "resflow/rank.h"
#include "core/rng.h"

#define EPS 1e-12

static int near(double a, double b, double tol) { return fabs(a - b) <= tol; }

#define ASSERT_NEAR(a, b)                                                                \
    do {                                                                                 \
        double a_ = (a), b_ = (b);                                                       \
        if (!near(a_, b_, 1e-12)) {                                                      \
            fprintf(stderr, "  %s = %.17g, expected %.17g\n", #a, a_, b_);               \
            fail();                                                                      \
        }                                                                                \
    } while (0)

/* Evaluate one (score, label, weight) set with the given groups and cut-offs. */
static rf_status eval_rows(const float *s, const float *y, const float *w, const uint64_t *grp,
                           size_t n, const int *cuts, int nc, rf_rank_result *r)
{
    rf_groups *g = NULL;
    rf_error err;
    rf_status st = rf_groups_create(grp, n, &g, &err);
    if (st) return st;
    rf_rank_opts o = {nc, {0}, 0};
    for (int c = 0; c < nc; c++) o.cut[c] = cuts[c];
    st = rf_rank_eval(g, s, 1, y, 1, w, 1, &o, r, &err);
    rf_groups_free(g);
    return st;
}

static double D(int p) /* DCG discount of 0-based rank p */
{
    return 1.0 / log2(p + 2.0);
}

/* ---- hand-computed cases ------------------------------------------------------------------ */

/* One list of 4 items, distinct scores. Ranked: A(.9) B(.8) C(.7) E(.1);
 * labels 0 1 0 1, order counts W 0 3 0 1. */
static void test_hand_distinct(void **state)
{
    (void)state;
    const float s[] = {0.7f, 0.9f, 0.1f, 0.8f}; /* C A E B: input order is irrelevant */
    const float y[] = {0, 0, 1, 1};
    const float w[] = {0, 0, 1, 3};
    const int cuts[] = {1, 2, 3, 4, 10};
    rf_rank_result r;
    assert_int_equal(eval_rows(s, y, w, NULL, 4, cuts, 5, &r), RF_OK);
    assert_int_equal(r.groups, 1);
    assert_int_equal(r.wr_groups, 1);
    assert_int_equal(r.pos_groups, 1);
    assert_int_equal(r.auc_groups, 1);
    /* WR@1: top-1 is A (W 0) -> 0; WR@2 adds B (W 3) -> 3/4; WR@3 (C, 0) 3/4; WR@4 1 */
    ASSERT_NEAR(r.wr[RF_WR_W][0], 0.0);
    ASSERT_NEAR(r.wr[RF_WR_W][1], 3.0 / 4.0);
    ASSERT_NEAR(r.wr[RF_WR_W][2], 3.0 / 4.0);
    ASSERT_NEAR(r.wr[RF_WR_W][3], 1.0);
    ASSERT_NEAR(r.wr[RF_WR_W][4], 1.0); /* K larger than the list */
    /* variants at K=2: f(3) / (f(3) + f(1)) */
    ASSERT_NEAR(r.wr[RF_WR_LOG][1], log(4.0) / (log(4.0) + log(2.0)));
    ASSERT_NEAR(r.wr[RF_WR_SQRT][1], sqrt(3.0) / (sqrt(3.0) + 1.0));
    ASSERT_NEAR(r.wr[RF_WR_SQUARE][1], 9.0 / 10.0);
    /* Recall: positives B (rank 2) and E (rank 4) */
    ASSERT_NEAR(r.recall[0], 0.0);
    ASSERT_NEAR(r.recall[1], 0.5);
    ASSERT_NEAR(r.recall[3], 1.0);
    /* NDCG@2 = D(1) / (D(0) + D(1)); NDCG@4 = (D(1) + D(3)) / (D(0) + D(1)) */
    ASSERT_NEAR(r.ndcg[0], 0.0);
    ASSERT_NEAR(r.ndcg[1], D(1) / (D(0) + D(1)));
    ASSERT_NEAR(r.ndcg[3], (D(1) + D(3)) / (D(0) + D(1)));
    ASSERT_NEAR(r.ndcg[4], r.ndcg[3]);
    /* AUC: B beats C only, E beats nothing: 1 of 4 pairs */
    ASSERT_NEAR(r.list_auc, 0.25);
    ASSERT_NEAR(r.gauc, 0.25);
}

/* Ties: scores .5 .5 .5 .2, labels 1 0 0 1, W 2 0 0 1. The tied block of 3 straddles K. */
static void test_hand_ties(void **state)
{
    (void)state;
    const float s[] = {0.5f, 0.5f, 0.5f, 0.2f};
    const float y[] = {1, 0, 0, 1};
    const float w[] = {2, 0, 0, 1};
    const int cuts[] = {1, 2, 3};
    rf_rank_result r;
    assert_int_equal(eval_rows(s, y, w, NULL, 4, cuts, 3, &r), RF_OK);
    /* the W=2 item is in the top K with probability K/3 */
    ASSERT_NEAR(r.wr[RF_WR_W][0], (2.0 / 3.0) / 3.0);
    ASSERT_NEAR(r.wr[RF_WR_W][1], (4.0 / 3.0) / 3.0);
    ASSERT_NEAR(r.wr[RF_WR_W][2], 2.0 / 3.0);
    ASSERT_NEAR(r.wr[RF_WR_SQUARE][0], (4.0 / 3.0) / 5.0);
    ASSERT_NEAR(r.recall[0], (1.0 / 3.0) / 2.0);
    ASSERT_NEAR(r.recall[2], 1.0 / 2.0);
    /* the tied positive sits at rank 0, 1 or 2 with probability 1/3 each */
    ASSERT_NEAR(r.ndcg[0], (D(0) / 3.0) / D(0));
    ASSERT_NEAR(r.ndcg[1], ((D(0) + D(1)) / 3.0) / (D(0) + D(1)));
    ASSERT_NEAR(r.ndcg[2], ((D(0) + D(1) + D(2)) / 3.0) / (D(0) + D(1)));
    /* AUC: tied positive vs two tied negatives 1/2 + 1/2, the .2 positive loses both: 1/4 */
    ASSERT_NEAR(r.list_auc, 0.25);
    /* all scores tied: every metric is its chance level */
    const float s2[] = {1, 1, 1, 1, 1};
    const float y2[] = {1, 0, 1, 0, 0};
    const float w2[] = {4, 0, 1, 0, 0};
    const int k2[] = {2};
    assert_int_equal(eval_rows(s2, y2, w2, NULL, 5, k2, 1, &r), RF_OK);
    ASSERT_NEAR(r.wr[RF_WR_W][0], 2.0 / 5.0);
    ASSERT_NEAR(r.recall[0], 2.0 / 5.0);
    ASSERT_NEAR(r.ndcg[0], (2.0 * (D(0) + D(1)) / 5.0) / (D(0) + D(1)));
    ASSERT_NEAR(r.list_auc, 0.5);
    /* -0.0 ties with +0.0 */
    const float s3[] = {-0.0f, 0.0f};
    const float y3[] = {1, 0};
    const int k3[] = {1};
    assert_int_equal(eval_rows(s3, y3, NULL, NULL, 2, k3, 1, &r), RF_OK);
    ASSERT_NEAR(r.recall[0], 0.5);
    ASSERT_NEAR(r.list_auc, 0.5);
}

/* Several groups: means over groups, skips and their counts, GAUC vs List AUC weighting. */
static void test_hand_groups(void **state)
{
    (void)state;
    /* g1 (3 rows): scores .9 .5 .1, labels 0 1 0 -> AUC 1/2, recall@1 0, W = label
     * g2 (2 rows): no positive, W 0          -> skipped by everything
     * g3 (1 row):  positive                  -> WR/recall/NDCG 1, AUC skipped (one class)
     * g4 (5 rows): scores 5 4 3 2 1, labels 1 1 0 0 0 -> AUC 1, recall@1 1/2 */
    const float s[] = {.9f, .5f, .1f, .3f, .3f, .7f, 5, 4, 3, 2, 1};
    const float y[] = {0, 1, 0, 0, 0, 1, 1, 1, 0, 0, 0};
    const uint64_t g[] = {10, 10, 10, 20, 20, 30, 40, 40, 40, 40, 40};
    const int cuts[] = {1, 2};
    rf_rank_result r;
    assert_int_equal(eval_rows(s, y, NULL, g, 11, cuts, 2, &r), RF_OK);
    assert_int_equal(r.rows, 11);
    assert_int_equal(r.groups, 4);
    assert_int_equal(r.wr_groups, 3);
    assert_int_equal(r.zero_weight_groups, 1);
    assert_int_equal(r.pos_groups, 3);
    assert_int_equal(r.no_pos_groups, 1);
    assert_int_equal(r.auc_groups, 2);
    assert_int_equal(r.single_class_groups, 2);
    assert_int_equal(r.auc_rows, 8);
    /* W = label: WR@K equals Recall@K */
    ASSERT_NEAR(r.recall[0], (0.0 + 1.0 + 0.5) / 3.0);
    ASSERT_NEAR(r.recall[1], (1.0 + 1.0 + 1.0) / 3.0);
    ASSERT_NEAR(r.wr[RF_WR_W][0], r.recall[0]);
    ASSERT_NEAR(r.wr[RF_WR_LOG][1], r.recall[1]);
    ASSERT_NEAR(r.ndcg[0], (0.0 + 1.0 + 1.0) / 3.0);
    ASSERT_NEAR(r.ndcg[1], (D(1) / D(0) + 1.0 + 1.0) / 3.0);
    ASSERT_NEAR(r.list_auc, (0.5 + 1.0) / 2.0);
    ASSERT_NEAR(r.gauc, (3 * 0.5 + 5 * 1.0) / 8.0);
}

static void test_degenerate(void **state)
{
    (void)state;
    rf_rank_result r;
    const int cuts[] = {3};
    /* nothing at all */
    assert_int_equal(eval_rows(NULL, NULL, NULL, NULL, 0, cuts, 1, &r), RF_OK);
    assert_int_equal(r.groups, 0);
    assert_true(isnan(r.wr[0][0]) && isnan(r.recall[0]) && isnan(r.ndcg[0]));
    assert_true(isnan(r.list_auc) && isnan(r.gauc));
    /* only negatives and zero weights: every group skipped, counted, NaN metrics */
    const float s[] = {.1f, .2f, .3f}, y[] = {0, 0, 0};
    const uint64_t g[] = {1, 1, 2};
    assert_int_equal(eval_rows(s, y, NULL, g, 3, cuts, 1, &r), RF_OK);
    assert_int_equal(r.groups, 2);
    assert_int_equal(r.zero_weight_groups, 2);
    assert_int_equal(r.no_pos_groups, 2);
    assert_int_equal(r.single_class_groups, 2);
    assert_true(isnan(r.wr[RF_WR_SQRT][0]) && isnan(r.ndcg[0]) && isnan(r.gauc));
    /* weights without positives: WR defined, recall not */
    const float w[] = {2, 0, 0}; /* group 1: the W=2 item (.1) ranks below .2 */
    assert_int_equal(eval_rows(s, y, w, g, 3, (const int[]){1}, 1, &r), RF_OK);
    assert_int_equal(r.wr_groups, 1);
    assert_int_equal(r.zero_weight_groups, 1);
    ASSERT_NEAR(r.wr[RF_WR_W][0], 0.0);
    assert_int_equal(eval_rows(s, y, w, g, 3, (const int[]){2}, 1, &r), RF_OK);
    ASSERT_NEAR(r.wr[RF_WR_W][0], 1.0);
    assert_true(isnan(r.recall[0]));
    /* all positives */
    const float y1[] = {1, 1, 1};
    assert_int_equal(eval_rows(s, y1, NULL, NULL, 3, (const int[]){2}, 1, &r), RF_OK);
    ASSERT_NEAR(r.recall[0], 2.0 / 3.0);
    ASSERT_NEAR(r.ndcg[0], 1.0);
    assert_int_equal(r.single_class_groups, 1);
}

static void test_errors(void **state)
{
    (void)state;
    rf_groups *g = NULL;
    rf_error err;
    assert_int_equal(rf_groups_create(NULL, 3, &g, &err), RF_OK);
    rf_rank_result r;
    const float y[] = {1, 0, 0}, s_nan[] = {0.1f, NAN, 0.2f}, s[] = {1, 2, 3};
    rf_rank_opts o = {1, {2}, 0};
    assert_int_equal(rf_rank_eval(g, s_nan, 1, y, 1, NULL, 0, &o, &r, &err), RF_ENUMERIC);
    assert_non_null(strstr(err.msg, "row 1"));
    const float y_nan[] = {1, NAN, 0};
    assert_int_equal(rf_rank_eval(g, s, 1, y_nan, 1, NULL, 0, &o, &r, &err), RF_ENUMERIC);
    const float w_neg[] = {1, -1, 0}, w_inf[] = {INFINITY, 0, 0};
    assert_int_equal(rf_rank_eval(g, s, 1, y, 1, w_neg, 1, &o, &r, &err), RF_EDATA);
    assert_int_equal(rf_rank_eval(g, s, 1, y, 1, w_inf, 1, &o, &r, &err), RF_EDATA);
    rf_rank_opts bad = {1, {0}, 0};
    assert_int_equal(rf_rank_eval(g, s, 1, y, 1, NULL, 0, &bad, &r, &err), RF_EUSAGE);
    bad.n_cuts = 0;
    assert_int_equal(rf_rank_eval(g, s, 1, y, 1, NULL, 0, &bad, &r, &err), RF_EUSAGE);
    bad.n_cuts = RF_RANK_MAX_CUTS + 1;
    assert_int_equal(rf_rank_eval(g, s, 1, y, 1, NULL, 0, &bad, &r, &err), RF_EUSAGE);
    /* +-inf are ordinary scores */
    const float s_inf[] = {-INFINITY, INFINITY, 0};
    assert_int_equal(rf_rank_eval(g, s_inf, 1, y, 1, NULL, 0, &o, &r, &err), RF_OK);
    ASSERT_NEAR(r.list_auc, 0.0); /* the positive is -inf */
    rf_groups_free(g);
}

/* ---- references --------------------------------------------------------------------------- */

typedef struct {
    double wr[RF_WR_VARIANTS], recall, ndcg, auc;
    int has_w, has_pos, has_auc;
} gref;

static double fvar(int v, double w)
{
    return v == RF_WR_LOG ? log(1 + w) : v == RF_WR_SQRT ? sqrt(w) : v == RF_WR_SQUARE ? w * w : w;
}

/* O(m^2) reference of one group: the rank range of item i is [a, a+e) with a = #items
 * scoring strictly higher, e = #items tied with it; P(rank = p) = 1/e on that range. */
static gref ref_group(const float *s, const float *y, const float *w, int m, int K)
{
    gref g;
    memset(&g, 0, sizeof g);
    double tot[RF_WR_VARIANTS] = {0}, top[RF_WR_VARIANTS] = {0}, hits = 0, dcg = 0;
    int P = 0, N = 0;
    for (int i = 0; i < m; i++) *(y[i] > 0.5f ? &P : &N) += 1;
    double aucn = 0;
    for (int i = 0; i < m; i++) {
        int a = 0, e = 0;
        for (int j = 0; j < m; j++) {
            a += s[j] > s[i];
            e += s[j] == s[i];
        }
        double pin = 0, disc = 0;
        for (int p = a; p < a + e; p++)
            if (p < K) {
                pin += 1.0 / e;
                disc += D(p) / e;
            }
        for (int v = 0; v < RF_WR_VARIANTS; v++) {
            tot[v] += fvar(v, w[i]);
            top[v] += fvar(v, w[i]) * pin;
        }
        if (y[i] > 0.5f) {
            hits += pin;
            dcg += disc;
            for (int j = 0; j < m; j++)
                if (!(y[j] > 0.5f)) aucn += s[i] > s[j] ? 1.0 : s[i] == s[j] ? 0.5 : 0.0;
        }
    }
    g.has_w = tot[0] > 0;
    for (int v = 0; v < RF_WR_VARIANTS; v++) g.wr[v] = g.has_w ? top[v] / tot[v] : 0;
    g.has_pos = P > 0;
    if (P) {
        double idcg = 0;
        for (int p = 0; p < P && p < K; p++) idcg += D(p);
        g.recall = hits / P;
        g.ndcg = dcg / idcg;
    }
    g.has_auc = P > 0 && N > 0;
    if (g.has_auc) g.auc = aucn / ((double)P * N);
    return g;
}

/* Metrics of one fixed order (perm gives the ranking, best first). */
static gref fixed_order(const int *perm, const float *y, const float *w, int m, int K)
{
    gref g;
    memset(&g, 0, sizeof g);
    double tot[RF_WR_VARIANTS] = {0}, top[RF_WR_VARIANTS] = {0}, hits = 0, dcg = 0, aucn = 0;
    int P = 0, N = 0, neg_below;
    for (int i = 0; i < m; i++) *(y[i] > 0.5f ? &P : &N) += 1;
    neg_below = N;
    for (int p = 0; p < m; p++) {
        int i = perm[p];
        for (int v = 0; v < RF_WR_VARIANTS; v++) {
            tot[v] += fvar(v, w[i]);
            if (p < K) top[v] += fvar(v, w[i]);
        }
        if (y[i] > 0.5f) {
            if (p < K) {
                hits += 1;
                dcg += D(p);
            }
            aucn += neg_below;
        } else {
            neg_below--;
        }
    }
    g.has_w = tot[0] > 0;
    for (int v = 0; v < RF_WR_VARIANTS; v++) g.wr[v] = g.has_w ? top[v] / tot[v] : 0;
    g.has_pos = P > 0;
    if (P) {
        double idcg = 0;
        for (int p = 0; p < P && p < K; p++) idcg += D(p);
        g.recall = hits / P;
        g.ndcg = dcg / idcg;
    }
    g.has_auc = P > 0 && N > 0;
    if (g.has_auc) g.auc = aucn / ((double)P * N);
    return g;
}

static int next_perm(int *a, int n)
{
    int i = n - 2;
    while (i >= 0 && a[i] >= a[i + 1]) i--;
    if (i < 0) return 0;
    int j = n - 1;
    while (a[j] <= a[i]) j--;
    int t = a[i];
    a[i] = a[j];
    a[j] = t;
    for (int l = i + 1, r = n - 1; l < r; l++, r--) {
        t = a[l];
        a[l] = a[r];
        a[r] = t;
    }
    return 1;
}

/* The tie rule is the expectation over random orders of tied items: average the metrics of
 * every permutation that sorts the scores (non-strictly) descending. */
static void test_ties_are_expectations(void **state)
{
    (void)state;
    rf_rng rng;
    rf_rng_seed(&rng, 11);
    for (int trial = 0; trial < 300; trial++) {
        int m = 1 + (int)rf_rng_below(&rng, 7), K = 1 + (int)rf_rng_below(&rng, 6);
        float s[8], y[8], w[8];
        for (int i = 0; i < m; i++) {
            s[i] = (float)rf_rng_below(&rng, 3); /* many ties */
            y[i] = rf_rng_uniform(&rng) < 0.4 ? 1.0f : 0.0f;
            w[i] = (float)rf_rng_below(&rng, 4);
        }
        int perm[8];
        for (int i = 0; i < m; i++) perm[i] = i;
        double sum_wr[RF_WR_VARIANTS] = {0}, sum_r = 0, sum_n = 0, sum_a = 0;
        int cnt = 0;
        gref last;
        memset(&last, 0, sizeof last);
        do {
            int ok = 1;
            for (int p = 1; p < m; p++) ok &= s[perm[p - 1]] >= s[perm[p]];
            if (!ok) continue;
            last = fixed_order(perm, y, w, m, K);
            for (int v = 0; v < RF_WR_VARIANTS; v++) sum_wr[v] += last.wr[v];
            sum_r += last.recall;
            sum_n += last.ndcg;
            sum_a += last.auc;
            cnt++;
        } while (next_perm(perm, m));
        assert_true(cnt > 0);
        rf_rank_result r;
        assert_int_equal(eval_rows(s, y, w, NULL, (size_t)m, &K, 1, &r), RF_OK);
        if (last.has_w)
            for (int v = 0; v < RF_WR_VARIANTS; v++) ASSERT_NEAR(r.wr[v][0], sum_wr[v] / cnt);
        else
            assert_int_equal(r.wr_groups, 0);
        if (last.has_pos) {
            ASSERT_NEAR(r.recall[0], sum_r / cnt);
            ASSERT_NEAR(r.ndcg[0], sum_n / cnt);
        } else {
            assert_int_equal(r.pos_groups, 0);
        }
        if (last.has_auc) ASSERT_NEAR(r.list_auc, sum_a / cnt);
        else assert_int_equal(r.auc_groups, 0);
    }
}

/* Random groups of all sizes (insertion sort, qsort and radix sort paths), rows shuffled across
 * groups, against the O(m^2) reference. */
static void test_against_reference(void **state)
{
    (void)state;
    rf_rng rng;
    rf_rng_seed(&rng, 5);
    const int sizes[] = {1, 2, 3, 7, 16, 17, 40, 300, 1024, 1025, 3000};
    const int NG = (int)(sizeof sizes / sizeof sizes[0]);
    size_t n = 0;
    for (int i = 0; i < NG; i++) n += (size_t)sizes[i];
    float *s = malloc(n * sizeof *s), *y = malloc(n * sizeof *y), *w = malloc(n * sizeof *w);
    uint64_t *g = malloc(n * sizeof *g);
    size_t *perm = malloc(n * sizeof *perm);
    float *s2 = malloc(n * sizeof *s2), *y2 = malloc(n * sizeof *y2), *w2 = malloc(n * sizeof *w2);
    uint64_t *g2 = malloc(n * sizeof *g2);
    assert_true(s && y && w && g && perm && s2 && y2 && w2 && g2);
    size_t o = 0;
    for (int gi = 0; gi < NG; gi++)
        for (int i = 0; i < sizes[gi]; i++, o++) {
            /* coarse scores (ties), some negative, some exactly zero */
            s[o] = (float)((int)rf_rng_below(&rng, 50) - 10) / 7.0f;
            y[o] = rf_rng_uniform(&rng) < 0.3 ? 1.0f : 0.0f;
            w[o] = rf_rng_uniform(&rng) < 0.5 ? 0.0f : (float)rf_rng_below(&rng, 9) * 0.5f;
            g[o] = 1000003u * (uint64_t)gi + 17;
        }
    const int cuts[] = {1, 5, 20, 100, 2000};
    rf_rank_result r;
    assert_int_equal(eval_rows(s, y, w, g, n, cuts, 5, &r), RF_OK);
    assert_int_equal(r.groups, (size_t)NG);
    for (int c = 0; c < 5; c++) {
        double swr[RF_WR_VARIANTS] = {0}, sr = 0, sn = 0, sa = 0, sga = 0;
        size_t nw = 0, np = 0, na = 0, nar = 0;
        size_t off = 0;
        for (int gi = 0; gi < NG; gi++) {
            gref q = ref_group(s + off, y + off, w + off, sizes[gi], cuts[c]);
            if (q.has_w) {
                nw++;
                for (int v = 0; v < RF_WR_VARIANTS; v++) swr[v] += q.wr[v];
            }
            if (q.has_pos) {
                np++;
                sr += q.recall;
                sn += q.ndcg;
            }
            if (q.has_auc) {
                na++;
                nar += (size_t)sizes[gi];
                sa += q.auc;
                sga += sizes[gi] * q.auc;
            }
            off += (size_t)sizes[gi];
        }
        assert_int_equal(r.wr_groups, nw);
        assert_int_equal(r.pos_groups, np);
        assert_int_equal(r.auc_groups, na);
        for (int v = 0; v < RF_WR_VARIANTS; v++) ASSERT_NEAR(r.wr[v][c], swr[v] / nw);
        ASSERT_NEAR(r.recall[c], sr / np);
        ASSERT_NEAR(r.ndcg[c], sn / np);
        ASSERT_NEAR(r.list_auc, sa / na);
        ASSERT_NEAR(r.gauc, sga / nar);
    }
    /* row-order invariance: shuffle all rows (groups become non-contiguous) */
    for (size_t i = 0; i < n; i++) perm[i] = i;
    for (size_t i = n - 1; i > 0; i--) {
        size_t j = (size_t)rf_rng_below(&rng, i + 1), t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    for (size_t i = 0; i < n; i++) {
        s2[i] = s[perm[i]];
        y2[i] = y[perm[i]];
        w2[i] = w[perm[i]];
        g2[i] = g[perm[i]];
    }
    rf_groups *gg = NULL;
    rf_error err;
    assert_int_equal(rf_groups_create(g2, n, &gg, &err), RF_OK);
    assert_int_equal(rf_groups_count(gg), (size_t)NG);
    assert_int_equal(rf_groups_max_size(gg), 3000);
    rf_groups_free(gg);
    rf_rank_result r2;
    assert_int_equal(eval_rows(s2, y2, w2, g2, n, cuts, 5, &r2), RF_OK);
    assert_int_equal(r2.groups, r.groups);
    for (int c = 0; c < 5; c++) {
        for (int v = 0; v < RF_WR_VARIANTS; v++) ASSERT_NEAR(r2.wr[v][c], r.wr[v][c]);
        ASSERT_NEAR(r2.recall[c], r.recall[c]);
        ASSERT_NEAR(r2.ndcg[c], r.ndcg[c]);
    }
    ASSERT_NEAR(r2.list_auc, r.list_auc);
    ASSERT_NEAR(r2.gauc, r.gauc);
    free(s);
    free(y);
    free(w);
    free(g);
    free(perm);
    free(s2);
    free(y2);
    free(w2);
    free(g2);
}

/* The same rows laid out contiguously, as interleaved runs of a few rows (sorted by runs) and
 * fully interleaved (sorted by rows): the same groups and exactly comparable results. */
static void test_group_layouts(void **state)
{
    (void)state;
    rf_rng rng;
    rf_rng_seed(&rng, 77);
    enum { G = 50, M = 12, N = G * M };
    float s[N], y[N], w[N], s2[N], y2[N], w2[N];
    uint64_t g[N], g2[N];
    for (int i = 0; i < N; i++) {
        g[i] = 0xABCDEF0000000000ULL + (uint64_t)(i / M) * 7919u; /* large keys: all digits vary */
        s[i] = (float)rf_rng_below(&rng, 6);
        y[i] = rf_rng_uniform(&rng) < 0.3 ? 1.0f : 0.0f;
        w[i] = (float)rf_rng_below(&rng, 3);
    }
    const int cuts[] = {2, 5};
    rf_rank_result ref, r;
    assert_int_equal(eval_rows(s, y, w, g, N, cuts, 2, &ref), RF_OK);
    /* layout 2: each group split into 3 runs of 4 rows, runs of different groups interleaved
     * (run j of every group, then run j+1 ...): 150 runs for 600 rows */
    int o = 0;
    for (int part = 0; part < 3; part++)
        for (int gi = G - 1; gi >= 0; gi--)
            for (int j = 0; j < 4; j++, o++) {
                int i = gi * M + part * 4 + j;
                s2[o] = s[i];
                y2[o] = y[i];
                w2[o] = w[i];
                g2[o] = g[i];
            }
    rf_groups *gg = NULL;
    rf_error err;
    assert_int_equal(rf_groups_create(g2, N, &gg, &err), RF_OK);
    assert_int_equal(rf_groups_count(gg), G);
    assert_int_equal(rf_groups_max_size(gg), M);
    rf_groups_free(gg);
    assert_int_equal(eval_rows(s2, y2, w2, g2, N, cuts, 2, &r), RF_OK);
    for (int c = 0; c < 2; c++) {
        for (int v = 0; v < RF_WR_VARIANTS; v++) ASSERT_NEAR(r.wr[v][c], ref.wr[v][c]);
        ASSERT_NEAR(r.recall[c], ref.recall[c]);
        ASSERT_NEAR(r.ndcg[c], ref.ndcg[c]);
    }
    ASSERT_NEAR(r.list_auc, ref.list_auc);
    assert_int_equal(r.wr_groups, ref.wr_groups);
    assert_int_equal(r.auc_groups, ref.auc_groups);
    /* layout 3: row i of every group in turn (every run is one row) */
    o = 0;
    for (int j = 0; j < M; j++)
        for (int gi = 0; gi < G; gi++, o++) {
            int i = gi * M + j;
            s2[o] = s[i];
            y2[o] = y[i];
            w2[o] = w[i];
            g2[o] = g[i];
        }
    assert_int_equal(eval_rows(s2, y2, w2, g2, N, cuts, 2, &r), RF_OK);
    for (int c = 0; c < 2; c++) ASSERT_NEAR(r.wr[RF_WR_SQUARE][c], ref.wr[RF_WR_SQUARE][c]);
    ASSERT_NEAR(r.gauc, ref.gauc);
    assert_int_equal(r.groups, ref.groups);
    /* all keys distinct, each row its own group */
    for (int i = 0; i < N; i++) g2[i] = (uint64_t)(N - i) << 40;
    assert_int_equal(rf_groups_create(g2, N, &gg, &err), RF_OK);
    assert_int_equal(rf_groups_count(gg), N);
    assert_int_equal(rf_groups_max_size(gg), 1);
    rf_groups_free(gg);
}

/* Perfect rankings score 1 (where 1 is attainable) and beat any other ranking; results do not
 * depend on the thread count (bitwise). */
static void test_perfect_and_threads(void **state)
{
    (void)state;
    rf_rng rng;
    rf_rng_seed(&rng, 99);
    const size_t n = 200000;
    float *y = malloc(n * sizeof *y), *w = malloc(n * sizeof *w), *perfect = malloc(n * sizeof *perfect),
          *noisy = malloc(n * sizeof *noisy);
    uint64_t *g = malloc(n * sizeof *g);
    assert_true(y && w && perfect && noisy && g);
    size_t i = 0;
    uint64_t gid = 0;
    while (i < n) {
        size_t m = 1 + (size_t)rf_rng_below(&rng, 30);
        for (size_t j = 0; j < m && i < n; j++, i++) {
            g[i] = gid;
            /* at most 3 items with an order in a list, so WR@3 of the perfect ranking is 1 */
            y[i] = j < 3 && rf_rng_uniform(&rng) < 0.3 ? 1.0f : 0.0f;
            w[i] = y[i] > 0 ? (float)(1 + rf_rng_below(&rng, 5)) : 0.0f;
            perfect[i] = w[i] + y[i]; /* orders W first, positives before negatives */
            noisy[i] = perfect[i] + (float)rf_rng_uniform(&rng) * 4.0f;
        }
        gid++;
    }
    const int cuts[] = {3, 10};
    rf_rank_result p, q;
    assert_int_equal(eval_rows(perfect, y, w, g, n, cuts, 2, &p), RF_OK);
    assert_int_equal(eval_rows(noisy, y, w, g, n, cuts, 2, &q), RF_OK);
    assert_true(p.wr_groups > 1000);
    for (int c = 0; c < 2; c++) {
        for (int v = 0; v < RF_WR_VARIANTS; v++) {
            ASSERT_NEAR(p.wr[v][c], 1.0);
            assert_true(q.wr[v][c] < p.wr[v][c]);
        }
        ASSERT_NEAR(p.recall[c], 1.0);
        ASSERT_NEAR(p.ndcg[c], 1.0);
        assert_true(q.ndcg[c] < 1.0);
    }
    ASSERT_NEAR(p.list_auc, 1.0);
    ASSERT_NEAR(p.gauc, 1.0);
    assert_true(q.list_auc < 1.0 && q.gauc < 1.0);
    /* the reversed ranking scores 0 AUC */
    for (size_t k = 0; k < n; k++) noisy[k] = -perfect[k];
    assert_int_equal(eval_rows(noisy, y, w, g, n, cuts, 2, &q), RF_OK);
    ASSERT_NEAR(q.list_auc, 0.0);
    /* thread count: bitwise identical */
    for (size_t k = 0; k < n; k++) noisy[k] = perfect[k] + (float)rf_rng_uniform(&rng);
    int saved = omp_get_max_threads();
    omp_set_num_threads(1);
    assert_int_equal(eval_rows(noisy, y, w, g, n, cuts, 2, &p), RF_OK);
    omp_set_num_threads(3);
    assert_int_equal(eval_rows(noisy, y, w, g, n, cuts, 2, &q), RF_OK);
    omp_set_num_threads(saved);
    assert_memory_equal(&p, &q, sizeof p);
    free(y);
    free(w);
    free(perfect);
    free(noisy);
    free(g);
}

/* ---- order counts ------------------------------------------------------------------------- */

static void test_count_weights(void **state)
{
    (void)state;
    const uint64_t key[] = {5, 7, 5, 9, 7, 5};
    const float lab[] = {1, 0, 1, 0, 1, 0};
    float W[6];
    rf_error err;
    assert_int_equal(rf_rank_count_weights(key, 6, lab, 1, W, &err), RF_OK);
    const float want[] = {2, 1, 2, 0, 1, 2};
    assert_memory_equal(W, want, sizeof want);
    const float bad[] = {1, NAN, 0, 0, 0, 0};
    assert_int_equal(rf_rank_count_weights(key, 6, bad, 1, W, &err), RF_ENUMERIC);
    /* many keys (table growth) against a brute-force count */
    rf_rng rng;
    rf_rng_seed(&rng, 3);
    const size_t n = 50000;
    uint64_t *k = malloc(n * sizeof *k), *ids = malloc(n * sizeof *ids);
    float *y = malloc(2 * n * sizeof *y), *w = malloc(n * sizeof *w);
    int *cnt = calloc(8000, sizeof *cnt);
    assert_true(k && ids && y && w && cnt);
    for (size_t i = 0; i < n; i++) {
        uint64_t id = rf_rng_below(&rng, 8000);
        ids[i] = id;
        k[i] = id * 0x9E3779B97F4A7C15ULL; /* spread (odd multiplier: distinct), key 0 too */
        y[2 * i] = 0;
        y[2 * i + 1] = rf_rng_uniform(&rng) < 0.2 ? 1.0f : 0.0f; /* strided label */
        cnt[id] += y[2 * i + 1] > 0;
    }
    assert_int_equal(rf_rank_count_weights(k, n, y + 1, 2, w, &err), RF_OK);
    for (size_t i = 0; i < n; i++) assert_true(w[i] == (float)cnt[ids[i]]);
    free(k);
    free(ids);
    free(y);
    free(w);
    free(cnt);
}

/* ---- fusion ------------------------------------------------------------------------------- */

static void test_fusion_parse(void **state)
{
    (void)state;
    rf_fusion f;
    rf_error err;
    char buf[512], pretty[512];
    assert_int_equal(rf_fusion_parse("add:ctr=1,ctcvr=20,rel=-0.5", &f, &err), RF_OK);
    assert_int_equal(f.kind, RF_FUSION_ADD);
    assert_int_equal(f.n, 3);
    assert_string_equal(f.name[1], "ctcvr");
    assert_true(f.coef[1] == 20 && f.coef[2] == -0.5);
    assert_string_equal(rf_fusion_pretty(&f, pretty, sizeof pretty), "ctr + 20*ctcvr - 0.5*rel");
    assert_int_equal(rf_fusion_parse("mul:ctr=0.9,ctcvr|ctr=1.1", &f, &err), RF_OK);
    assert_string_equal(rf_fusion_pretty(&f, pretty, sizeof pretty), "ctr^0.9 * (ctcvr|ctr)^1.1");
    /* the spec form round-trips exactly */
    f.coef[0] = 0.1 + 0.2;
    f.coef[1] = 1.0 / 3.0;
    rf_fusion g;
    assert_int_equal(rf_fusion_parse(rf_fusion_spec(&f, buf, sizeof buf), &g, &err), RF_OK);
    assert_true(g.coef[0] == f.coef[0] && g.coef[1] == f.coef[1]);
    assert_string_equal(g.name[1], "ctcvr|ctr");
    static const char *const bad[] = {"", "ctr=1", "sum:ctr=1", "add:", "add:ctr", "add:=1",
                                      "add:ctr=", "add:ctr=x", "add:ctr=1,", "add:ctr=1,ctr=2",
                                      "add:a=1,b=1,c=1,d=1,e=1", "add:ctr=inf", "mul:ctr=nan"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err.code = RF_OK;
        if (rf_fusion_parse(bad[i], &f, &err) != RF_EUSAGE) {
            fprintf(stderr, "  accepted bad formula '%s'\n", bad[i]);
            fail();
        }
        assert_int_equal(err.code, RF_EUSAGE);
    }
}

static void test_fusion_apply(void **state)
{
    (void)state;
    const float P[] = {0.1f, 0.01f, 0.5f, 0.05f, 0.2f, 0.0f}; /* (3 rows, ctr ctcvr) */
    const float rel[] = {1, 2, 3};
    rf_score_col cols[] = {{"ctr", P, 2}, {"ctcvr", P + 1, 2}, {"rel", rel, 1}};
    rf_fusion f;
    rf_error err;
    float out[3];
    assert_int_equal(rf_fusion_parse("add:ctr=1,ctcvr=20,rel=-0.5", &f, &err), RF_OK);
    assert_int_equal(rf_fusion_apply(&f, cols, 3, 3, out, &err), RF_OK);
    for (int i = 0; i < 3; i++)
        assert_true(out[i] == (float)((double)P[2 * i] + 20.0 * P[2 * i + 1] - 0.5 * rel[i]));
    /* mul: ctr^0.9 * (ctcvr/ctr)^1.1, rounded to float once; a zero ctcvr is floored at 1e-30 */
    assert_int_equal(rf_fusion_parse("mul:ctr=0.9,ctcvr|ctr=1.1", &f, &err), RF_OK);
    assert_int_equal(rf_fusion_apply(&f, cols, 3, 3, out, &err), RF_OK);
    for (int i = 0; i < 3; i++) {
        double c = P[2 * i], t = P[2 * i + 1];
        double want = pow(c, 0.9) * pow(fmax(t / c, 1e-30), 1.1);
        assert_true(fabs(out[i] - want) <= 1e-6 * fabs(want));
    }
    assert_true(out[2] > 0 && out[2] < 1e-30f); /* 0.2^0.9 * 1e-30^1.1: tiny, not 0 */
    /* ctr^1 * (ctcvr|ctr)^1 is ctcvr itself, to the float */
    assert_int_equal(rf_fusion_parse("mul:ctr=1,ctcvr|ctr=1", &f, &err), RF_OK);
    assert_int_equal(rf_fusion_apply(&f, cols, 3, 2, out, &err), RF_OK);
    assert_true(out[0] == P[1] && out[1] == P[3]);
    /* a literal column named "a|b" wins over the ratio */
    const float lit[] = {7, 8, 9};
    rf_score_col cols2[] = {{"ctr", P, 2}, {"ctcvr", P + 1, 2}, {"ctcvr|ctr", lit, 1}};
    assert_int_equal(rf_fusion_parse("add:ctcvr|ctr=2", &f, &err), RF_OK);
    assert_int_equal(rf_fusion_apply(&f, cols2, 3, 3, out, &err), RF_OK);
    assert_true(out[0] == 14 && out[2] == 18);
    /* unknown names, NaN */
    assert_int_equal(rf_fusion_parse("add:ctr=1,cart=2", &f, &err), RF_OK);
    assert_int_equal(rf_fusion_apply(&f, cols, 3, 3, out, &err), RF_EUSAGE);
    assert_non_null(strstr(err.msg, "cart"));
    assert_int_equal(rf_fusion_parse("add:cart|ctr=1", &f, &err), RF_OK);
    assert_int_equal(rf_fusion_apply(&f, cols, 3, 3, out, &err), RF_EUSAGE);
    const float Pn[] = {0.1f, NAN};
    rf_score_col cn[] = {{"ctr", Pn, 1}};
    assert_int_equal(rf_fusion_parse("mul:ctr=1", &f, &err), RF_OK);
    assert_int_equal(rf_fusion_apply(&f, cn, 1, 2, out, &err), RF_ENUMERIC);
    assert_non_null(strstr(err.msg, "row 1"));
}

/* Data whose order counts follow a known formula: the search must recover it. */
static void test_fusion_search(void **state)
{
    (void)state;
    rf_rng rng;
    rf_rng_seed(&rng, 21);
    const size_t n = 40000;
    float *x = malloc(n * sizeof *x), *z = malloc(n * sizeof *z), *y = malloc(n * sizeof *y),
          *w = malloc(n * sizeof *w), *tmp = malloc(n * sizeof *tmp);
    uint64_t *g = malloc(n * sizeof *g);
    assert_true(x && z && y && w && tmp && g);
    /* additive truth: utility u = x + 30 z (z ~ 30x smaller than x); W = 1 for the best 2 items
     * of each list of 20 by u */
    for (size_t i = 0; i < n; i++) {
        g[i] = i / 20;
        x[i] = (float)rf_rng_uniform(&rng);
        z[i] = (float)rf_rng_uniform(&rng) / 30.0f;
        tmp[i] = x[i] + 30.0f * z[i];
    }
    for (size_t l = 0; l < n; l += 20)
        for (size_t i = l; i < l + 20; i++) {
            int better_cnt = 0;
            for (size_t j = l; j < l + 20; j++) better_cnt += tmp[j] > tmp[i];
            y[i] = w[i] = better_cnt < 2 ? 1.0f : 0.0f;
        }
    rf_groups *gg = NULL;
    rf_error err;
    assert_int_equal(rf_groups_create(g, n, &gg, &err), RF_OK);
    rf_score_col cols[] = {{"x", x, 1}, {"z", z, 1}};
    rf_fusion_search_opts so;
    memset(&so, 0, sizeof so);
    so.kind = RF_FUSION_ADD;
    so.n_terms = 2;
    strcpy(so.term[0], "x");
    strcpy(so.term[1], "z");
    so.objective = RF_OBJ_WR;
    so.cut = 2;
    rf_fusion best;
    int evals = 0;
    assert_int_equal(rf_fusion_search(&so, cols, 2, gg, y, 1, w, 1, &best, &evals, &err), RF_OK);
    assert_true(evals > 50);
    assert_int_equal(best.kind, RF_FUSION_ADD);
    assert_true(best.coef[0] == 1.0);
    assert_true(best.coef[1] > 20 && best.coef[1] < 45); /* truth: 30 */
    assert_string_equal(best.objective, "wr@2");
    /* its stored value is what evaluating it gives, and it beats both single scores */
    rf_rank_opts o = {1, {2}, 0};
    rf_rank_result r;
    assert_int_equal(rf_fusion_apply(&best, cols, 2, n, tmp, &err), RF_OK);
    assert_int_equal(rf_rank_eval(gg, tmp, 1, y, 1, w, 1, &o, &r, &err), RF_OK);
    ASSERT_NEAR(best.value, r.wr[RF_WR_W][0]);
    assert_true(best.value > 0.97);
    assert_int_equal(rf_rank_eval(gg, x, 1, y, 1, w, 1, &o, &r, &err), RF_OK);
    assert_true(r.wr[RF_WR_W][0] < best.value - 0.05);

    /* multiplicative truth: u = x^0.5 * z^1.5 -> a = 0.5 (b = 1.5) */
    for (size_t i = 0; i < n; i++) tmp[i] = sqrtf(x[i]) * powf(z[i], 1.5f);
    for (size_t l = 0; l < n; l += 20)
        for (size_t i = l; i < l + 20; i++) {
            int better_cnt = 0;
            for (size_t j = l; j < l + 20; j++) better_cnt += tmp[j] > tmp[i];
            y[i] = w[i] = better_cnt < 2 ? 1.0f : 0.0f;
        }
    so.kind = RF_FUSION_MUL;
    assert_int_equal(rf_fusion_search(&so, cols, 2, gg, y, 1, w, 1, &best, &evals, &err), RF_OK);
    assert_int_equal(best.kind, RF_FUSION_MUL);
    assert_true(fabs(best.coef[0] - 0.5) <= 0.051);
    ASSERT_NEAR(best.coef[0] + best.coef[1], 2.0);
    assert_true(best.value > 0.97);
    /* bad options */
    so.n_terms = 3;
    assert_int_equal(rf_fusion_search(&so, cols, 2, gg, y, 1, w, 1, &best, NULL, &err), RF_EUSAGE);
    so.kind = RF_FUSION_ADD;
    strcpy(so.term[2], "nope");
    assert_int_equal(rf_fusion_search(&so, cols, 2, gg, y, 1, w, 1, &best, NULL, &err), RF_EUSAGE);
    rf_groups_free(gg);
    free(x);
    free(z);
    free(y);
    free(w);
    free(tmp);
    free(g);
}

static void test_objectives(void **state)
{
    (void)state;
    rf_rank_objective o;
    rf_error err;
    for (int i = 0; i <= RF_OBJ_GAUC; i++) {
        assert_int_equal(rf_rank_objective_parse(rf_rank_objective_name((rf_rank_objective)i), &o, &err), RF_OK);
        assert_int_equal((int)o, i);
    }
    assert_int_equal(rf_rank_objective_parse("auc", &o, &err), RF_EUSAGE);
    rf_rank_result r;
    memset(&r, 0, sizeof r);
    r.wr[RF_WR_SQRT][1] = 0.25;
    r.ndcg[1] = 0.5;
    r.gauc = 0.75;
    assert_true(rf_rank_value(&r, RF_OBJ_WR_SQRT, 1) == 0.25);
    assert_true(rf_rank_value(&r, RF_OBJ_NDCG, 1) == 0.5);
    assert_true(rf_rank_value(&r, RF_OBJ_GAUC, 5) == 0.75);
    assert_true(isnan(rf_rank_value(&r, RF_OBJ_WR, RF_RANK_MAX_CUTS)));
}

/* ---- model file section FUSN ------------------------------------------------------------------ */

static char g_dir[256];

static rf_model *small_model(rf_config *cp)
{
    rf_config_default(cp);
    rf_config c = *cp;
    c.model.emb_dim = 4;
    c.model.n_hidden = 1;
    c.model.hidden[0] = 4;
    rf_field fields[2];
    memset(fields, 0, sizeof fields);
    strcpy(fields[0].name, "query_id");
    fields[0].vocab = 5;
    strcpy(fields[1].name, "item_id");
    fields[1].vocab = 7;
    rf_model *m = NULL;
    rf_error err;
    assert_int_equal(rf_config_create_model(&c, 2, fields, 1, &m, &err), RF_OK);
    *cp = c;
    return m;
}

static unsigned char *slurp(const char *path, size_t *n)
{
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    fseek(fp, 0, SEEK_END);
    long l = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)l + 1);
    assert_non_null(b);
    assert_int_equal(fread(b, 1, (size_t)l, fp), (size_t)l);
    fclose(fp);
    *n = (size_t)l;
    return b;
}

static void spit(const char *path, const unsigned char *b, size_t n)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(b, 1, n, fp), n);
    fclose(fp);
}

static void put32(unsigned char *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> 8 * i); }
static void put64(unsigned char *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> 8 * i); }
static uint32_t get32(const unsigned char *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }

/* Append a section to a model image and fix count and checksums. */
static unsigned char *add_section(const unsigned char *img, size_t n, const char *tag, const char *body,
                                  size_t *out_n)
{
    size_t bl = strlen(body), m = n + 12 + bl;
    unsigned char *b = malloc(m);
    assert_non_null(b);
    memcpy(b, img, n);
    memcpy(b + n, tag, 4);
    put64(b + n + 4, bl);
    memcpy(b + n + 12, body, bl);
    put64(b + 16, m - 64);
    put32(b + 32, get32(b + 32) + 1);
    put64(b + 24, XXH64(b + 64, m - 64, 0));
    put64(b + 56, XXH64(b, 56, 0));
    *out_n = m;
    return b;
}

static void test_modelfile_fusion(void **state)
{
    (void)state;
    char path[512], out[512], odd[512];
    snprintf(path, sizeof path, "%s/m.model", g_dir);
    snprintf(out, sizeof out, "%s/f.model", g_dir);
    snprintf(odd, sizeof odd, "%s/odd.model", g_dir);
    rf_config c;
    rf_model *m = small_model(&c);
    rf_error err;
    assert_int_equal(rf_model_save(m, &c, NULL, NULL, NULL, path, &err), RF_OK);
    rf_loaded_model lm;
    assert_int_equal(rf_model_load(path, &lm, &err), RF_OK);
    assert_int_equal(lm.fusion.kind, RF_FUSION_NONE);
    rf_loaded_model_free(&lm);

    rf_fusion f;
    assert_int_equal(rf_fusion_parse("add:ctr=1,ctcvr=20.5", &f, &err), RF_OK);
    f.coef[1] = 1.0 / 7.0; /* full precision survives */
    strcpy(f.objective, "wr@5");
    f.value = 0.123456789012345;
    assert_int_equal(rf_model_set_fusion(path, out, &f, &err), RF_OK);
    assert_int_equal(rf_model_load(out, &lm, &err), RF_OK);
    assert_int_equal(lm.fusion.kind, RF_FUSION_ADD);
    assert_int_equal(lm.fusion.n, 2);
    assert_string_equal(lm.fusion.name[1], "ctcvr");
    assert_true(lm.fusion.coef[1] == 1.0 / 7.0);
    assert_string_equal(lm.fusion.objective, "wr@5");
    assert_true(lm.fusion.value == f.value);
    /* the weights are untouched */
    assert_int_equal(lm.model->n_params, m->n_params);
    assert_memory_equal(lm.model->params, m->params, m->n_params * sizeof(float));
    assert_memory_equal(lm.model->emb, m->emb, m->emb_off[m->F] * (size_t)m->E * sizeof(float));
    rf_loaded_model_free(&lm);

    /* replace in place (one FUSN only), then remove */
    assert_int_equal(rf_fusion_parse("mul:ctr=0.8,ctcvr|ctr=1.2", &f, &err), RF_OK);
    assert_int_equal(rf_model_set_fusion(out, out, &f, &err), RF_OK);
    assert_int_equal(rf_model_load(out, &lm, &err), RF_OK);
    assert_int_equal(lm.fusion.kind, RF_FUSION_MUL);
    assert_true(lm.fusion.coef[0] == 0.8);
    rf_loaded_model_free(&lm);
    assert_int_equal(rf_model_set_fusion(out, out, NULL, &err), RF_OK);
    size_t n1, n2;
    unsigned char *a = slurp(path, &n1), *b = slurp(out, &n2);
    assert_int_equal(n1, n2); /* back to the plain file, byte for byte */
    assert_memory_equal(a, b, n1);
    free(b);

    /* unknown sections (another writer's) are kept; a bad FUSN is a format error */
    size_t nx;
    unsigned char *x = add_section(a, n1, "XTRA", "payload of a later version", &nx);
    spit(odd, x, nx);
    free(x);
    assert_int_equal(rf_model_set_fusion(odd, out, &f, &err), RF_OK);
    b = slurp(out, &n2);
    int found = 0;
    for (size_t i = 0; i + 26 <= n2; i++) found |= !memcmp(b + i, "payload of a later version", 26);
    assert_true(found);
    free(b);
    assert_int_equal(rf_model_load(out, &lm, &err), RF_OK);
    assert_int_equal(lm.fusion.kind, RF_FUSION_MUL);
    rf_loaded_model_free(&lm);
    static const char *const bad[] = {"objective: wr@5\n", "formula: sum:ctr=1\n",
                                      "formula: add:ctr=1\nvalue: x\n", "no colon here\n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        x = add_section(a, n1, "FUSN", bad[i], &nx);
        spit(odd, x, nx);
        free(x);
        assert_int_equal(rf_model_load(odd, &lm, &err), RF_EFORMAT);
        assert_non_null(strstr(err.msg, "FUSN"));
        assert_int_equal(rf_model_set_fusion(odd, out, &f, &err), RF_EFORMAT);
    }
    /* two FUSN sections */
    x = add_section(a, n1, "FUSN", "formula: add:ctr=1\n", &nx);
    unsigned char *x2 = add_section(x, nx, "FUSN", "formula: add:ctr=2\n", &n2);
    spit(odd, x2, n2);
    free(x);
    free(x2);
    assert_int_equal(rf_model_load(odd, &lm, &err), RF_EFORMAT);
    assert_non_null(strstr(err.msg, "twice"));
    /* unknown keys in FUSN are ignored */
    x = add_section(a, n1, "FUSN", "formula: add:ctr=1,ctcvr=3\nnote: later key\n", &nx);
    spit(odd, x, nx);
    free(x);
    assert_int_equal(rf_model_load(odd, &lm, &err), RF_OK);
    assert_true(lm.fusion.coef[1] == 3);
    rf_loaded_model_free(&lm);
    free(a);
    /* not a model: nothing written */
    spit(odd, (const unsigned char *)"hello", 5);
    assert_int_equal(rf_model_set_fusion(odd, out, &f, &err), RF_EFORMAT);
    rf_model_free(m);
}

/* ---- predictions-file header -------------------------------------------------------------- */

static void test_table_header(void **state)
{
    (void)state;
    char path[512];
    snprintf(path, sizeof path, "%s/p.tsv", g_dir);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs("\xEF\xBB\xBFgroup\tctr\t\"a \"\"q\"\"\"\tctcvr|ctr\r\n1\t2\t3\t4\n", fp);
    fclose(fp);
    char d = 0, **names = NULL;
    int n = 0;
    rf_error err;
    assert_int_equal(rf_table_header(path, &d, &names, &n, &err), RF_OK);
    assert_int_equal(d, '\t');
    assert_int_equal(n, 4);
    assert_string_equal(names[0], "group");
    assert_string_equal(names[2], "a \"q\"");
    assert_string_equal(names[3], "ctcvr|ctr");
    free(names);
    fp = fopen(path, "w");
    fputs("a,b\n", fp);
    fclose(fp);
    assert_int_equal(rf_table_header(path, &d, &names, &n, &err), RF_OK);
    assert_int_equal(d, ',');
    assert_int_equal(n, 2);
    free(names);
    fp = fopen(path, "w");
    fclose(fp);
    assert_int_equal(rf_table_header(path, &d, &names, &n, &err), RF_EDATA);
    snprintf(path, sizeof path, "%s/missing.tsv", g_dir);
    assert_int_equal(rf_table_header(path, &d, &names, &n, &err), RF_EIO);
}

static int setup_dir(void **state)
{
    (void)state;
    snprintf(g_dir, sizeof g_dir, "/tmp/resflow-test-rank.XXXXXX");
    return mkdtemp(g_dir) ? 0 : -1;
}

static int teardown_dir(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hand_distinct),
        cmocka_unit_test(test_hand_ties),
        cmocka_unit_test(test_hand_groups),
        cmocka_unit_test(test_degenerate),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_ties_are_expectations),
        cmocka_unit_test(test_against_reference),
        cmocka_unit_test(test_group_layouts),
        cmocka_unit_test(test_perfect_and_threads),
        cmocka_unit_test(test_count_weights),
        cmocka_unit_test(test_fusion_parse),
        cmocka_unit_test(test_fusion_apply),
        cmocka_unit_test(test_fusion_search),
        cmocka_unit_test(test_objectives),
        cmocka_unit_test(test_modelfile_fusion),
        cmocka_unit_test(test_table_header),
    };
    return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
