/* rank.c - per-query ranking metrics (WR@K and variants, Recall@K, NDCG@K, List AUC, GAUC),
 * order-count weights, score fusion and its search, predictions-file headers.
 * Contract in include/resflow/rank.h; definitions and their rationale in docs/ranking.md.
 *
 * Groups: the rows are cut into runs of equal keys and the runs (or, when most runs are single
 * rows, the rows) are radix-sorted by key (core/sort.h: stable, 6 passes of 11 bits, constant
 * digits skipped). When every key has one run (the simulator, most logs) the groups are the runs in
 * input order; otherwise a group is the rows of all runs of its key, in input order, through a
 * row permutation.
 *
 * Evaluation: groups are processed in fixed chunks of CHUNK groups in parallel (OpenMP,
 * dynamic schedule); each chunk sums its groups into its own accumulator and the chunks are
 * added in chunk order at the end, so the result does not depend on the thread count. Per
 * group: the rows are gathered into (score, label, weight) items and sorted by descending
 * score (insertion sort up to 16 rows, qsort up to 1024, the radix sort of core/sort.h on
 * the float keys above), then one walk over blocks of tied scores accumulates every metric: a block
 * [a, b) that overlaps the top K contributes (its sum) * |[a,b) n [0,K)| / (b - a), i.e. the
 * expectation over a random order of the tied rows; NDCG uses the mean discount of the
 * block's positions inside the top K; the AUC counts tied pairs 1/2.
 *
 * Order counts: (key, row) pairs radix-sorted by key, each run of equal keys summed in row
 * order. The large scratch arrays are 2 MiB-aligned and advised as huge pages (bigmem.h):
 * on this VM first-touch page faults otherwise cost more than the sorts themselves.
 */
#include <errno.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "core/omp.h"
#include "core/bigmem.h"
#include "core/sort.h"
#include "resflow/rank.h"

#define CHUNK 256          /* groups per accumulation chunk */
#define SMALL_SORT 16      /* insertion sort up to this size */
#define QSORT_MAX 1024     /* qsort up to this size, radix sort above */
#define SCORE_FLOOR 1e-30  /* floor of ratios and of log() in multiplicative fusion */

const char *rf_wr_variant_name(int v)
{
    static const char *const names[RF_WR_VARIANTS] = {"wr", "wr_log", "wr_sqrt", "wr_square"};
    return v >= 0 && v < RF_WR_VARIANTS ? names[v] : "?";
}

/* ---- groups ------------------------------------------------------------------------------ */

struct rf_groups {
    size_t n, G, max_size;
    size_t *off;  /* (G + 1) boundaries in the row order */
    size_t *perm; /* (n) the row order, or NULL for 0..n-1 */
};

rf_status rf_groups_create(const uint64_t *group, size_t n, rf_groups **out, rf_error *err)
{
    if (!out) return rf_errorf(err, RF_EINTERNAL, "rf_groups_create: no output");
    *out = NULL;
    rf_groups *g = calloc(1, sizeof *g);
    if (!g) return rf_errorf(err, RF_ENOMEM, "out of memory");
    g->n = n;
    if (!group || n == 0) {
        g->G = n ? 1 : 0;
        g->off = malloc(2 * sizeof *g->off);
        if (!g->off) goto oom;
        g->off[0] = 0;
        g->off[1] = n;
        g->max_size = n;
        *out = g;
        return RF_OK;
    }
    /* runs of equal keys. Sort the runs by key (stable) or, when most runs are single rows
     * (interleaved groups), the rows themselves: distinct sorted keys = contiguous groups. */
    size_t runs = 1;
    for (size_t i = 1; i < n; i++) runs += group[i] != group[i - 1];
    int by_rows = runs > n / 2;
    size_t m = by_rows ? n : runs;
    uint64_t *rk = rf_big_malloc_(m * sizeof *rk), *rt = rf_big_malloc_(m * sizeof *rt);
    size_t *ri = rf_big_malloc_(m * sizeof *ri), *rit = rf_big_malloc_(m * sizeof *rit);
    size_t *rs = by_rows ? NULL : rf_big_malloc_((runs + 1) * sizeof *rs);
    if (!rk || !rt || !ri || !rit || (!by_rows && !rs)) {
        free(rk);
        free(rt);
        free(ri);
        free(rit);
        free(rs);
        goto oom;
    }
    if (by_rows) {
        memcpy(rk, group, n * sizeof *rk);
        for (size_t i = 0; i < n; i++) ri[i] = i;
    } else {
        size_t r = 0;
        rs[0] = 0;
        rk[0] = group[0];
        ri[0] = 0;
        for (size_t i = 1; i < n; i++)
            if (group[i] != group[i - 1]) {
                rs[++r] = i;
                rk[r] = group[i];
                ri[r] = r;
            }
        rs[runs] = n;
    }
    uint64_t *ks = rk;
    size_t *is = ri;
    int sorted_ok = rf_radix_sort64_zu(&ks, &is, rt, rit, m, NULL) == 0;
    size_t G = m;
    for (size_t i = 1; sorted_ok && i < m; i++) G -= ks[i] == ks[i - 1];
    g->G = G;
    g->off = sorted_ok ? malloc((G + 1) * sizeof *g->off) : NULL;
    if (g->off && G < runs && !by_rows) g->perm = rf_big_malloc_(n * sizeof *g->perm);
    if (!g->off || (G < runs && !by_rows && !g->perm)) {
        free(rk);
        free(rt);
        free(ri);
        free(rit);
        free(rs);
        goto oom;
    }
    if (G == runs) { /* every key in one run: the groups are the runs, in input order */
        size_t r = 0;
        g->off[r++] = 0;
        for (size_t i = 1; i < n; i++)
            if (group[i] != group[i - 1]) g->off[r++] = i;
        g->off[r] = n;
    } else if (by_rows) { /* the sorted row order is the permutation */
        size_t gi = 0;
        for (size_t i = 0; i < n; i++)
            if (i == 0 || ks[i] != ks[i - 1]) g->off[gi++] = i;
        g->off[gi] = n;
        g->perm = is;
        if (is == ri) ri = NULL;
        else rit = NULL;
    } else { /* rows of the runs of each key, key by key, in input order within a key */
        size_t o = 0, gi = 0;
        for (size_t i = 0; i < runs; i++) {
            if (i == 0 || ks[i] != ks[i - 1]) g->off[gi++] = o;
            for (size_t r = rs[is[i]]; r < rs[is[i] + 1]; r++) g->perm[o++] = r;
        }
        g->off[gi] = n;
    }
    free(rk);
    free(rt);
    free(ri);
    free(rit);
    free(rs);
    for (size_t i = 0; i < g->G; i++)
        if (g->off[i + 1] - g->off[i] > g->max_size) g->max_size = g->off[i + 1] - g->off[i];
    *out = g;
    return RF_OK;
oom:
    rf_groups_free(g);
    return rf_errorf(err, RF_ENOMEM, "out of memory grouping %zu rows", n);
}

void rf_groups_free(rf_groups *g)
{
    if (!g) return;
    free(g->off);
    free(g->perm);
    free(g);
}
size_t rf_groups_count(const rf_groups *g) { return g ? g->G : 0; }
size_t rf_groups_rows(const rf_groups *g) { return g ? g->n : 0; }
size_t rf_groups_max_size(const rf_groups *g) { return g ? g->max_size : 0; }

/* ---- per-group evaluation ---------------------------------------------------------------- */

typedef struct {
    float s, y, w;
} item;

typedef struct {
    size_t groups, wr_groups, pos_groups, auc_groups, auc_rows;
    double wr[RF_WR_VARIANTS][RF_RANK_MAX_CUTS];
    double recall[RF_RANK_MAX_CUTS], ndcg[RF_RANK_MAX_CUTS];
    double list_auc, gauc;
    size_t bad_row;  /* first bad row of the chunk, SIZE_MAX if none */
    rf_status bad;
} acc;

/* Order-preserving map of a non-NaN float to uint32, descending (-0.0 == +0.0). */
/* Descending order of scores as ascending keys. */
static uint32_t desc_key(float s) { return ~rf_sort_key_f32(s); }

RF_SORT_DEFINE(radix_sort_items, 32, item)

static int cmp_item_desc(const void *a, const void *b)
{
    float x = ((const item *)a)->s, y = ((const item *)b)->s;
    return (x < y) - (x > y);
}

typedef struct {
    item *it, *tmp;
    uint32_t *key, *ktmp;
    size_t *hist; /* RF_SORT_HIST32 */
} scratch;

/* Sort it[0..m) by descending score. */
static void sort_items(scratch *sc, size_t m)
{
    item *it = sc->it;
    if (m <= SMALL_SORT) {
        for (size_t i = 1; i < m; i++) {
            item x = it[i];
            size_t j = i;
            while (j > 0 && it[j - 1].s < x.s) {
                it[j] = it[j - 1];
                j--;
            }
            it[j] = x;
        }
        return;
    }
    if (m <= QSORT_MAX) {
        qsort(it, m, sizeof *it, cmp_item_desc);
        return;
    }
    /* radix sort on the keys (core/sort.h), carrying the items */
    uint32_t *k = sc->key;
    item *a = it;
    for (size_t i = 0; i < m; i++) k[i] = desc_key(it[i].s);
    memset(sc->hist, 0, RF_SORT_HIST32 * sizeof *sc->hist);
    rf_sort_hist32(sc->hist, k, m);
    radix_sort_items(&k, &a, sc->ktmp, sc->tmp, m, sc->hist);
    if (a != it) memcpy(it, a, m * sizeof *it);
}

static inline double wvar(int v, double w)
{
    switch (v) {
    case RF_WR_LOG: return log1p(w);
    case RF_WR_SQRT: return sqrt(w);
    case RF_WR_SQUARE: return w * w;
    default: return w;
    }
}

/* One group of m sorted items into a. D[p] = sum_{q<p} 1/log2(q+2), p <= dmax. */
static void eval_group(const item *it, size_t m, const rf_rank_opts *o, const double *D,
                       size_t dmax, acc *a)
{
    double totW[RF_WR_VARIANTS] = {0}, topW[RF_WR_VARIANTS][RF_RANK_MAX_CUTS];
    double hits[RF_RANK_MAX_CUTS], dcg[RF_RANK_MAX_CUTS];
    memset(topW, 0, sizeof topW);
    memset(hits, 0, sizeof hits);
    memset(dcg, 0, sizeof dcg);
    size_t P = 0, N = 0;
    for (size_t i = 0; i < m; i++) {
        if (it[i].y > 0.5f) P++;
        else N++;
    }
    double auc_num = 0, neg_above = 0;
    size_t a0 = 0;
    while (a0 < m) {
        size_t b0 = a0 + 1;
        while (b0 < m && it[b0].s == it[a0].s) b0++;
        double bw[RF_WR_VARIANTS] = {0};
        size_t pb = 0;
        for (size_t i = a0; i < b0; i++) {
            double w = it[i].w;
            if (w != 0)
                for (int v = 0; v < RF_WR_VARIANTS; v++) bw[v] += wvar(v, w);
            pb += it[i].y > 0.5f;
        }
        size_t nb = (b0 - a0) - pb;
        double len = (double)(b0 - a0);
        for (int v = 0; v < RF_WR_VARIANTS; v++) totW[v] += bw[v];
        for (int c = 0; c < o->n_cuts; c++) {
            size_t K = (size_t)o->cut[c];
            if (a0 >= K) continue;
            size_t hi = b0 < K ? b0 : K;
            double frac = (double)(hi - a0) / len;
            for (int v = 0; v < RF_WR_VARIANTS; v++) topW[v][c] += bw[v] * frac;
            if (pb) {
                hits[c] += (double)pb * frac;
                size_t h2 = hi < dmax ? hi : dmax, l2 = a0 < dmax ? a0 : dmax;
                dcg[c] += (double)pb * (D[h2] - D[l2]) / len;
            }
        }
        /* positives of this block beat the negatives below it and tie with its negatives */
        auc_num += (double)pb * ((double)N - neg_above - (double)nb + 0.5 * (double)nb);
        neg_above += (double)nb;
        a0 = b0;
    }
    a->groups++;
    if (totW[RF_WR_W] > 0) {
        a->wr_groups++;
        for (int v = 0; v < RF_WR_VARIANTS; v++)
            for (int c = 0; c < o->n_cuts; c++)
                a->wr[v][c] += totW[v] > 0 ? topW[v][c] / totW[v] : 0;
    }
    if (P > 0) {
        a->pos_groups++;
        for (int c = 0; c < o->n_cuts; c++) {
            size_t K = (size_t)o->cut[c], ip = P < K ? P : K;
            if (ip > dmax) ip = dmax;
            a->recall[c] += hits[c] / (double)P;
            a->ndcg[c] += dcg[c] / D[ip];
        }
    }
    if (P > 0 && N > 0) {
        double auc = auc_num / ((double)P * (double)N);
        a->auc_groups++;
        a->auc_rows += m;
        a->list_auc += auc;
        a->gauc += (double)m * auc;
    }
}

rf_status rf_rank_eval(const rf_groups *g, const float *score, size_t sstride, const float *label,
                       size_t lstride, const float *weight, size_t wstride, const rf_rank_opts *o,
                       rf_rank_result *out, rf_error *err)
{
    if (!g || !o || !out || (g->n && (!score || !label)))
        return rf_errorf(err, RF_EINTERNAL, "rf_rank_eval: NULL argument");
    if (o->n_cuts < 1 || o->n_cuts > RF_RANK_MAX_CUTS)
        return rf_errorf(err, RF_EUSAGE, "ranking: %d cut-offs (1..%d)", o->n_cuts,
                         RF_RANK_MAX_CUTS);
    int kmax = 0;
    for (int c = 0; c < o->n_cuts; c++) {
        if (o->cut[c] < 1) return rf_errorf(err, RF_EUSAGE, "ranking: cut-off K=%d (must be >= 1)", o->cut[c]);
        if (o->cut[c] > kmax) kmax = o->cut[c];
    }
    if (!weight) {
        weight = label;
        wstride = lstride;
    }
    memset(out, 0, sizeof *out);
    out->rows = g->n;
    size_t dmax = (size_t)kmax < g->max_size ? (size_t)kmax : g->max_size;
    double *D = malloc((dmax + 1) * sizeof *D);
    size_t nchunks = (g->G + CHUNK - 1) / CHUNK;
    acc *parts = calloc(nchunks ? nchunks : 1, sizeof *parts);
    if (!D || !parts) {
        free(D);
        free(parts);
        return rf_errorf(err, RF_ENOMEM, "out of memory");
    }
    D[0] = 0;
    for (size_t p = 0; p < dmax; p++) D[p + 1] = D[p] + 1.0 / log2((double)p + 2.0);
    int oom = 0;
#pragma omp parallel num_threads(rf_omp_threads(o->threads))
    {
        size_t ms = g->max_size ? g->max_size : 1;
        scratch sc = {0};
        sc.it = malloc(ms * sizeof *sc.it);
        if (ms > QSORT_MAX) {
            sc.tmp = malloc(ms * sizeof *sc.tmp);
            sc.key = malloc(ms * sizeof *sc.key);
            sc.ktmp = malloc(ms * sizeof *sc.ktmp);
            sc.hist = malloc(RF_SORT_HIST32 * sizeof *sc.hist);
        }
        int ok = sc.it && (ms <= QSORT_MAX || (sc.tmp && sc.key && sc.ktmp && sc.hist));
        if (!ok) {
#pragma omp atomic write
            oom = 1;
        }
#pragma omp for schedule(dynamic, 4)
        for (size_t ch = 0; ch < nchunks; ch++) {
            acc *a = &parts[ch];
            a->bad_row = SIZE_MAX;
            if (!ok) continue;
            size_t g1 = (ch + 1) * CHUNK < g->G ? (ch + 1) * CHUNK : g->G;
            for (size_t gi = ch * CHUNK; gi < g1 && a->bad == RF_OK; gi++) {
                size_t lo = g->off[gi], m = g->off[gi + 1] - lo;
                for (size_t j = 0; j < m; j++) {
                    size_t r = g->perm ? g->perm[lo + j] : lo + j;
                    float s = score[r * sstride], y = label[r * lstride], w = weight[r * wstride];
                    if (isnan(s) || isnan(y)) {
                        a->bad = RF_ENUMERIC;
                        a->bad_row = r;
                        break;
                    }
                    if (!(w >= 0) || isinf(w)) {
                        a->bad = RF_EDATA;
                        a->bad_row = r;
                        break;
                    }
                    sc.it[j].s = s;
                    sc.it[j].y = y;
                    sc.it[j].w = w;
                }
                if (a->bad) break;
                sort_items(&sc, m);
                eval_group(sc.it, m, o, D, dmax, a);
            }
        }
        free(sc.it);
        free(sc.tmp);
        free(sc.key);
        free(sc.ktmp);
        free(sc.hist);
    }
    rf_status st = RF_OK;
    if (oom) st = rf_errorf(err, RF_ENOMEM, "out of memory (ranking scratch)");
    for (size_t ch = 0; ch < nchunks && !st; ch++) {
        const acc *a = &parts[ch];
        if (a->bad) {
            size_t r = a->bad_row;
            if (a->bad == RF_ENUMERIC)
                st = rf_errorf(err, RF_ENUMERIC, "ranking: row %zu has a NaN %s", r,
                               isnan(score[r * sstride]) ? "score" : "label");
            else
                st = rf_errorf(err, RF_EDATA, "ranking: row %zu has weight %g (must be finite and >= 0)",
                               r, (double)weight[r * wstride]);
            break;
        }
        out->groups += a->groups;
        out->wr_groups += a->wr_groups;
        out->pos_groups += a->pos_groups;
        out->auc_groups += a->auc_groups;
        out->auc_rows += a->auc_rows;
        for (int c = 0; c < o->n_cuts; c++) {
            for (int v = 0; v < RF_WR_VARIANTS; v++) out->wr[v][c] += a->wr[v][c];
            out->recall[c] += a->recall[c];
            out->ndcg[c] += a->ndcg[c];
        }
        out->list_auc += a->list_auc;
        out->gauc += a->gauc;
    }
    free(D);
    free(parts);
    if (st) {
        memset(out, 0, sizeof *out);
        return st;
    }
    out->zero_weight_groups = out->groups - out->wr_groups;
    out->no_pos_groups = out->groups - out->pos_groups;
    out->single_class_groups = out->groups - out->auc_groups;
    for (int c = 0; c < RF_RANK_MAX_CUTS; c++) {
        for (int v = 0; v < RF_WR_VARIANTS; v++)
            out->wr[v][c] = c < o->n_cuts && out->wr_groups ? out->wr[v][c] / (double)out->wr_groups : NAN;
        out->recall[c] = c < o->n_cuts && out->pos_groups ? out->recall[c] / (double)out->pos_groups : NAN;
        out->ndcg[c] = c < o->n_cuts && out->pos_groups ? out->ndcg[c] / (double)out->pos_groups : NAN;
    }
    out->list_auc = out->auc_groups ? out->list_auc / (double)out->auc_groups : NAN;
    out->gauc = out->auc_rows ? out->gauc / (double)out->auc_rows : NAN;
    return RF_OK;
}

/* ---- order-count weights ----------------------------------------------------------------- */

rf_status rf_rank_count_weights(const uint64_t *key, size_t n, const float *label, size_t lstride,
                                float *W, rf_error *err)
{
    if (n && (!key || !label || !W))
        return rf_errorf(err, RF_EINTERNAL, "rf_rank_count_weights: NULL argument");
    for (size_t i = 0; i < n; i++)
        if (!isfinite(label[i * lstride]))
            return rf_errorf(err, RF_ENUMERIC, "order counts: row %zu has label %g", i,
                             (double)label[i * lstride]);
    if (!n) return RF_OK;
    /* sort (key, row) by key, then sum each run of equal keys and write it to its rows */
    uint64_t *k = rf_big_malloc_(n * sizeof *k), *kt = rf_big_malloc_(n * sizeof *kt);
    size_t *ix = rf_big_malloc_(n * sizeof *ix), *it = rf_big_malloc_(n * sizeof *it);
    rf_status st = RF_OK;
    if (!k || !kt || !ix || !it) {
        st = rf_errorf(err, RF_ENOMEM, "out of memory counting orders of %zu rows", n);
        goto done;
    }
    memcpy(k, key, n * sizeof *k);
    for (size_t i = 0; i < n; i++) ix[i] = i;
    uint64_t *ks = k;
    size_t *is = ix;
    if (rf_radix_sort64_zu(&ks, &is, kt, it, n, NULL)) {
        st = rf_errorf(err, RF_ENOMEM, "out of memory counting orders of %zu rows", n);
        goto done;
    }
    for (size_t a = 0; a < n;) {
        size_t b = a + 1;
        double sum = label[is[a] * lstride];
        while (b < n && ks[b] == ks[a]) sum += label[is[b++] * lstride];
        for (size_t i = a; i < b; i++) W[is[i]] = (float)sum;
        a = b;
    }
done:
    free(k);
    free(kt);
    free(ix);
    free(it);
    return st;
}

/* ---- objectives -------------------------------------------------------------------------- */

static const char *const obj_names[] = {"wr", "wr_log", "wr_sqrt", "wr_square",
                                        "recall", "ndcg", "list_auc", "gauc"};
#define N_OBJ ((int)(sizeof obj_names / sizeof obj_names[0]))

const char *rf_rank_objective_name(rf_rank_objective o)
{
    return (int)o >= 0 && (int)o < N_OBJ ? obj_names[o] : "?";
}

rf_status rf_rank_objective_parse(const char *s, rf_rank_objective *o, rf_error *err)
{
    for (int i = 0; s && i < N_OBJ; i++)
        if (!strcmp(s, obj_names[i])) {
            *o = (rf_rank_objective)i;
            return RF_OK;
        }
    return rf_errorf(err, RF_EUSAGE,
                     "unknown ranking objective '%s' (known: wr, wr_log, wr_sqrt, wr_square, "
                     "recall, ndcg, list_auc, gauc)", s ? s : "");
}

double rf_rank_value(const rf_rank_result *r, rf_rank_objective o, int ci)
{
    if (ci < 0 || ci >= RF_RANK_MAX_CUTS) return NAN;
    switch (o) {
    case RF_OBJ_WR: return r->wr[RF_WR_W][ci];
    case RF_OBJ_WR_LOG: return r->wr[RF_WR_LOG][ci];
    case RF_OBJ_WR_SQRT: return r->wr[RF_WR_SQRT][ci];
    case RF_OBJ_WR_SQUARE: return r->wr[RF_WR_SQUARE][ci];
    case RF_OBJ_RECALL: return r->recall[ci];
    case RF_OBJ_NDCG: return r->ndcg[ci];
    case RF_OBJ_LIST_AUC: return r->list_auc;
    case RF_OBJ_GAUC: return r->gauc;
    }
    return NAN;
}

/* ---- fusion formulas --------------------------------------------------------------------- */

rf_status rf_fusion_parse(const char *spec, rf_fusion *f, rf_error *err)
{
    memset(f, 0, sizeof *f);
    if (!spec) return rf_errorf(err, RF_EUSAGE, "fusion: empty formula");
    if (!strncmp(spec, "mul:", 4)) f->kind = RF_FUSION_MUL;
    else if (!strncmp(spec, "add:", 4)) f->kind = RF_FUSION_ADD;
    else
        return rf_errorf(err, RF_EUSAGE,
                         "fusion '%s': must start with 'mul:' or 'add:' (e.g. add:ctr=1,ctcvr=20)",
                         spec);
    const char *p = spec + 4;
    while (*p) {
        const char *comma = strchr(p, ','), *end = comma ? comma : p + strlen(p);
        const char *eq = memchr(p, '=', (size_t)(end - p));
        if (!eq || eq == p)
            return rf_errorf(err, RF_EUSAGE, "fusion '%s': term '%.*s' is not NAME=COEF", spec,
                             (int)(end - p), p);
        if (f->n == RF_FUSION_MAX_TERMS)
            return rf_errorf(err, RF_EUSAGE, "fusion '%s': more than %d terms", spec,
                             RF_FUSION_MAX_TERMS);
        size_t nl = (size_t)(eq - p);
        if (nl >= RF_NAME_MAX)
            return rf_errorf(err, RF_EUSAGE, "fusion '%s': name longer than %d characters", spec,
                             RF_NAME_MAX - 1);
        char num[64];
        size_t ln = (size_t)(end - eq - 1);
        if (ln == 0 || ln >= sizeof num)
            return rf_errorf(err, RF_EUSAGE, "fusion '%s': bad coefficient in '%.*s'", spec,
                             (int)(end - p), p);
        memcpy(num, eq + 1, ln);
        num[ln] = '\0';
        char *ep;
        errno = 0;
        double c = strtod(num, &ep);
        if (*ep || !isfinite(c))
            return rf_errorf(err, RF_EUSAGE, "fusion '%s': bad coefficient '%s'", spec, num);
        memcpy(f->name[f->n], p, nl);
        f->name[f->n][nl] = '\0';
        for (int j = 0; j < f->n; j++)
            if (!strcmp(f->name[j], f->name[f->n]))
                return rf_errorf(err, RF_EUSAGE, "fusion '%s': term '%s' appears twice", spec,
                                 f->name[j]);
        f->coef[f->n++] = c;
        if (!comma) break;
        p = comma + 1;
        if (!*p) return rf_errorf(err, RF_EUSAGE, "fusion '%s': trailing comma", spec);
    }
    if (f->n == 0) return rf_errorf(err, RF_EUSAGE, "fusion '%s': no terms", spec);
    return RF_OK;
}

void rf_fusion_single(rf_fusion *f, const char *name)
{
    memset(f, 0, sizeof *f);
    f->kind = RF_FUSION_ADD;
    f->n = 1;
    snprintf(f->name[0], RF_NAME_MAX, "%s", name);
    f->coef[0] = 1;
}

const char *rf_fusion_spec(const rf_fusion *f, char *buf, size_t n)
{
    size_t o = 0;
    if (!n) return buf;
    buf[0] = '\0';
#define APP(...)                                                                 \
    do {                                                                         \
        if (o < n) {                                                             \
            int w_ = snprintf(buf + o, n - o, __VA_ARGS__);                      \
            if (w_ > 0) o += (size_t)w_;                                         \
        }                                                                        \
    } while (0)
    APP("%s:", f->kind == RF_FUSION_MUL ? "mul" : f->kind == RF_FUSION_ADD ? "add" : "none");
    for (int j = 0; j < f->n; j++) {
        /* the shortest of %.15g..%.17g that reads back to the same double */
        char num[40];
        for (int prec = 15; prec <= 17; prec++) {
            snprintf(num, sizeof num, "%.*g", prec, f->coef[j]);
            if (strtod(num, NULL) == f->coef[j]) break;
        }
        APP("%s%s=%s", j ? "," : "", f->name[j], num);
    }
    return buf;
}

const char *rf_fusion_pretty(const rf_fusion *f, char *buf, size_t n)
{
    size_t o = 0;
    if (!n) return buf;
    buf[0] = '\0';
    if (f->kind == RF_FUSION_MUL) {
        for (int j = 0; j < f->n; j++) {
            int paren = strpbrk(f->name[j], "|*+-^/ ") != NULL;
            APP("%s%s%s%s^%.3g", j ? " * " : "", paren ? "(" : "", f->name[j], paren ? ")" : "",
                f->coef[j]);
        }
    } else if (f->kind == RF_FUSION_ADD) {
        int first = 1;
        for (int j = 0; j < f->n; j++) {
            double c = f->coef[j];
            if (c == 0) continue;
            const char *sign = c < 0 ? (first ? "-" : " - ") : (first ? "" : " + ");
            double a = fabs(c);
            if (a == 1) APP("%s%s", sign, f->name[j]);
            else APP("%s%.3g*%s", sign, a, f->name[j]);
            first = 0;
        }
        if (first) APP("0");
    } else {
        APP("(none)");
    }
#undef APP
    return buf;
}

/* A term: column a, or a / max(b, floor) when b != NULL. */
typedef struct {
    const float *a, *b;
    size_t sa, sb;
} term_src;

static rf_status resolve_term(const char *name, const rf_score_col *cols, int ncols, term_src *t,
                              rf_error *err)
{
    memset(t, 0, sizeof *t);
    for (int i = 0; i < ncols; i++)
        if (cols[i].name && !strcmp(cols[i].name, name)) {
            t->a = cols[i].x;
            t->sa = cols[i].stride;
            return RF_OK;
        }
    const char *bar = strchr(name, '|');
    if (bar) {
        char an[RF_NAME_MAX];
        snprintf(an, sizeof an, "%.*s", (int)(bar - name), name);
        term_src ta, tb;
        rf_error sub;
        if (!resolve_term(an, cols, ncols, &ta, &sub) && !ta.b &&
            !resolve_term(bar + 1, cols, ncols, &tb, &sub) && !tb.b) {
            t->a = ta.a;
            t->sa = ta.sa;
            t->b = tb.a;
            t->sb = tb.sa;
            return RF_OK;
        }
    }
    char known[512];
    size_t o = 0;
    known[0] = '\0';
    for (int i = 0; i < ncols && o < sizeof known; i++) {
        int w = snprintf(known + o, sizeof known - o, "%s%s", i ? ", " : "", cols[i].name);
        if (w > 0) o += (size_t)w;
    }
    return rf_errorf(err, RF_EUSAGE, "fusion: no score named '%s' (known: %s%s)", name, known,
                     bar ? "; 'a|b' is the ratio a/b of two known scores" : "");
}

static inline double term_value(const term_src *t, size_t i)
{
    double v = t->a[i * t->sa];
    if (t->b) v /= fmax((double)t->b[i * t->sb], SCORE_FLOOR);
    return v;
}

rf_status rf_fusion_apply(const rf_fusion *f, const rf_score_col *cols, int ncols, size_t n,
                          float *out, rf_error *err)
{
    if (!f || (n && !out)) return rf_errorf(err, RF_EINTERNAL, "rf_fusion_apply: NULL argument");
    if (f->kind != RF_FUSION_MUL && f->kind != RF_FUSION_ADD)
        return rf_errorf(err, RF_EUSAGE, "fusion: no formula");
    if (f->n < 1 || f->n > RF_FUSION_MAX_TERMS)
        return rf_errorf(err, RF_EUSAGE, "fusion: %d terms", f->n);
    term_src t[RF_FUSION_MAX_TERMS];
    for (int j = 0; j < f->n; j++) {
        rf_status st = resolve_term(f->name[j], cols, ncols, &t[j], err);
        if (st) return st;
    }
    int mul = f->kind == RF_FUSION_MUL;
    size_t bad = SIZE_MAX;
#pragma omp parallel for schedule(static) reduction(min : bad)
    for (size_t i = 0; i < n; i++) {
        double s = 0;
        int nan_in = 0;
        for (int j = 0; j < f->n; j++) {
            double v = term_value(&t[j], i);
            if (isnan(v)) nan_in = 1;
            s += mul ? f->coef[j] * log(fmax(v, SCORE_FLOOR)) : f->coef[j] * v;
        }
        if (nan_in || isnan(s)) {
            if (i < bad) bad = i;
            s = 0;
        }
        /* a product is formed in log space (no intermediate underflow), in double, then
         * rounded once to float: as exact as the float inputs */
        out[i] = (float)(mul ? exp(s) : s);
    }
    if (bad != SIZE_MAX)
        return rf_errorf(err, RF_ENUMERIC, "fusion: row %zu: a term or the fused score is NaN",
                         bad);
    return RF_OK;
}

/* ---- fusion search ----------------------------------------------------------------------- */

typedef struct {
    const rf_fusion_search_opts *so;
    const rf_score_col *cols;
    int ncols;
    const rf_groups *g;
    const float *label, *weight;
    size_t ls, ws;
    float *buf;
    int evals;
} search_ctx;

static rf_status evaluate(search_ctx *c, const rf_fusion *f, double *value, rf_error *err)
{
    rf_status st = rf_fusion_apply(f, c->cols, c->ncols, c->g->n, c->buf, err);
    if (st) return st;
    rf_rank_opts o = {1, {c->so->cut}, c->so->threads};
    rf_rank_result r;
    if ((st = rf_rank_eval(c->g, c->buf, 1, c->label, c->ls, c->weight, c->ws, &o, &r, err)))
        return st;
    c->evals++;
    *value = rf_rank_value(&r, c->so->objective, 0);
    return RF_OK;
}

/* Better when strictly greater; a NaN value never wins (and loses to any number). */
static int better(double v, double best) { return !isnan(v) && (isnan(best) || v > best); }

static rf_status search_mul(search_ctx *c, rf_fusion *best, double *bv, rf_error *err)
{
    rf_fusion f;
    memset(&f, 0, sizeof f);
    f.kind = RF_FUSION_MUL;
    f.n = 2;
    snprintf(f.name[0], RF_NAME_MAX, "%s", c->so->term[0]);
    snprintf(f.name[1], RF_NAME_MAX, "%s", c->so->term[1]);
    int best_i = 100; /* a = best_i / 100 */
    double v;
    rf_status st;
    *bv = NAN;
    /* coarse: a = 1, then outward in steps of 0.1; then fine: steps of 0.01 around the best */
    for (int pass = 0; pass < 2; pass++) {
        int step = pass ? 1 : 10, span = pass ? 9 : 10, center = best_i;
        for (int d = 0; d <= span; d++) {
            for (int sgn = (d ? -1 : 1); sgn <= 1; sgn += 2) {
                int ai = center + sgn * d * step;
                if (ai < 0 || ai > 200 || (pass && d == 0)) continue;
                f.coef[0] = ai / 100.0;
                f.coef[1] = (200 - ai) / 100.0;
                if ((st = evaluate(c, &f, &v, err))) return st;
                if (better(v, *bv)) {
                    *bv = v;
                    best_i = ai;
                }
            }
        }
    }
    f.coef[0] = best_i / 100.0;
    f.coef[1] = (200 - best_i) / 100.0;
    *best = f;
    return RF_OK;
}

static double mean_abs(const search_ctx *c, const char *name, rf_error *err, rf_status *st)
{
    term_src t;
    *st = resolve_term(name, c->cols, c->ncols, &t, err);
    if (*st) return NAN;
    double s = 0;
    for (size_t i = 0; i < c->g->n; i++) s += fabs(term_value(&t, i));
    return c->g->n ? s / (double)c->g->n : 0;
}

static rf_status search_add(search_ctx *c, rf_fusion *best, double *bv, rf_error *err)
{
    const rf_fusion_search_opts *so = c->so;
    int T = so->n_terms;
    rf_fusion f;
    memset(&f, 0, sizeof f);
    f.kind = RF_FUSION_ADD;
    f.n = T;
    double ratio[RF_FUSION_MAX_TERMS] = {1, 1, 1, 1};
    rf_status st;
    double m0 = mean_abs(c, so->term[0], err, &st);
    if (st) return st;
    for (int j = 0; j < T; j++) {
        snprintf(f.name[j], RF_NAME_MAX, "%s", so->term[j]);
        if (j == 0) continue;
        double mj = mean_abs(c, so->term[j], err, &st);
        if (st) return st;
        ratio[j] = (m0 > 0 && mj > 0 && isfinite(m0) && isfinite(mj)) ? m0 / mj : 1.0;
    }
    /* theta_j = idx[j] * pi / 1024; coarse steps 16 (pi/64), |idx| <= 496 (31 pi / 64) */
    int idx[RF_FUSION_MAX_TERMS] = {0};
    const int COARSE = 16, LIM = 496, FINE_SPAN = 16;
    double v;
    f.coef[0] = 1;
#define SET_COEF()                                                                       \
    for (int jj = 1; jj < T; jj++) f.coef[jj] = ratio[jj] * tan(idx[jj] * (M_PI / 1024.0))
    SET_COEF();
    *bv = NAN;
    if ((st = evaluate(c, &f, bv, err))) return st;
    /* coarse passes (coordinate ascent over the terms), then one fine pass */
    int rounds = T > 2 ? 2 : 1;
    for (int pass = 0; pass <= rounds; pass++) {
        int fine = pass == rounds;
        int step = fine ? 1 : COARSE, span = fine ? FINE_SPAN - 1 : 2 * LIM / COARSE;
        int lim = fine ? 511 : LIM;
        for (int j = 1; j < T; j++) {
            int center = idx[j], bi = idx[j];
            for (int d = 1; d <= span; d++) {
                for (int sgn = 1; sgn >= -1; sgn -= 2) {
                    int cand = center + sgn * d * step;
                    if (cand < -lim || cand > lim) continue;
                    idx[j] = cand;
                    SET_COEF();
                    if ((st = evaluate(c, &f, &v, err))) return st;
                    if (better(v, *bv)) {
                        *bv = v;
                        bi = cand;
                    }
                }
            }
            idx[j] = bi;
            SET_COEF();
        }
    }
    SET_COEF();
#undef SET_COEF
    *best = f;
    return RF_OK;
}

rf_status rf_fusion_search(const rf_fusion_search_opts *so, const rf_score_col *cols, int ncols,
                           const rf_groups *g, const float *label, size_t lstride,
                           const float *weight, size_t wstride, rf_fusion *best, int *evals,
                           rf_error *err)
{
    if (!so || !g || !best || !label)
        return rf_errorf(err, RF_EINTERNAL, "rf_fusion_search: NULL argument");
    if (so->kind == RF_FUSION_MUL && so->n_terms != 2)
        return rf_errorf(err, RF_EUSAGE, "multiplicative fusion search: exactly 2 terms (got %d)",
                         so->n_terms);
    if (so->kind == RF_FUSION_ADD && (so->n_terms < 2 || so->n_terms > RF_FUSION_MAX_TERMS))
        return rf_errorf(err, RF_EUSAGE, "additive fusion search: 2..%d terms (got %d)",
                         RF_FUSION_MAX_TERMS, so->n_terms);
    if (so->kind != RF_FUSION_MUL && so->kind != RF_FUSION_ADD)
        return rf_errorf(err, RF_EUSAGE, "fusion search: kind must be mul or add");
    if (so->cut < 1) return rf_errorf(err, RF_EUSAGE, "fusion search: K=%d", so->cut);
    if (g->n == 0) return rf_errorf(err, RF_EDATA, "fusion search: no rows");
    search_ctx c = {so, cols, ncols, g, label, weight, lstride, wstride, NULL, 0};
    c.buf = malloc(g->n * sizeof *c.buf);
    if (!c.buf) return rf_errorf(err, RF_ENOMEM, "out of memory");
    double bv = NAN;
    rf_status st = so->kind == RF_FUSION_MUL ? search_mul(&c, best, &bv, err)
                                             : search_add(&c, best, &bv, err);
    free(c.buf);
    if (evals) *evals = c.evals;
    if (st) return st;
    if (so->objective == RF_OBJ_LIST_AUC || so->objective == RF_OBJ_GAUC)
        snprintf(best->objective, sizeof best->objective, "%s", rf_rank_objective_name(so->objective));
    else
        snprintf(best->objective, sizeof best->objective, "%s@%d",
                 rf_rank_objective_name(so->objective), so->cut);
    best->value = bv;
    return RF_OK;
}

/* ---- predictions-file header ------------------------------------------------------------- */

rf_status rf_table_header(const char *path, char *delim, char ***names, int *ncols, rf_error *err)
{
    *names = NULL;
    *ncols = 0;
    errno = 0;
    gzFile gz = gzopen(path, "rb");
    if (!gz)
        return rf_error_at(err, RF_EIO, path, 0, 0, "cannot open: %s",
                           errno ? strerror(errno) : "out of memory");
    size_t cap = 4096, len = 0;
    char *line = malloc(cap);
    if (!line) {
        gzclose(gz);
        return rf_errorf(err, RF_ENOMEM, "out of memory");
    }
    int c;
    while ((c = gzgetc(gz)) != -1 && c != '\n') {
        if (len + 2 > cap) {
            char *nl = cap < ((size_t)1 << 24) ? realloc(line, cap * 2) : NULL;
            if (!nl) {
                free(line);
                gzclose(gz);
                return rf_error_at(err, RF_EDATA, path, 1, 0, "header line too long");
            }
            line = nl;
            cap *= 2;
        }
        line[len++] = (char)c;
    }
    int gerr;
    const char *gmsg = gzerror(gz, &gerr);
    if (gerr != Z_OK && gerr != Z_STREAM_END) {
        rf_status st = rf_error_at(err, RF_EIO, path, 0, 0, "cannot read: %s", gmsg);
        free(line);
        gzclose(gz);
        return st;
    }
    gzclose(gz);
    if (len && line[len - 1] == '\r') len--;
    line[len] = '\0';
    char *h = line;
    if (len >= 3 && !memcmp(h, "\xEF\xBB\xBF", 3)) h += 3;
    if (!*h) {
        free(line);
        return rf_error_at(err, RF_EDATA, path, 1, 1, "no header line");
    }
    char d = strchr(h, '\t') ? '\t' : ',';
    int n = 1;
    for (char *p = h; *p; p++) n += *p == d;
    size_t hl = strlen(h);
    char **out = malloc((size_t)n * sizeof *out + hl + 1);
    if (!out) {
        free(line);
        return rf_errorf(err, RF_ENOMEM, "out of memory");
    }
    char *text = (char *)(out + n);
    memcpy(text, h, hl + 1);
    free(line);
    int i = 0;
    char *p = text;
    for (;;) {
        char *e = strchr(p, d);
        if (e) *e = '\0';
        size_t l = strlen(p);
        if (l >= 2 && p[0] == '"' && p[l - 1] == '"') { /* a quoted name: unquote "" */
            char *w = p;
            for (size_t r = 1; r + 1 < l; r++) {
                *w++ = p[r];
                if (p[r] == '"' && p[r + 1] == '"') r++;
            }
            *w = '\0';
        }
        out[i++] = p;
        if (!e) break;
        p = e + 1;
    }
    *delim = d;
    *names = out;
    *ncols = i;
    return RF_OK;
}
