/* probe.c - probing the learned residuals (paper §4.4, Fig. 4): group rows along a task path,
 * sample them deterministically, dump each tower's block outputs, layer outputs and residual
 * logits from one inference pass, summarise per group, and draw Fig. 4-style heatmaps.
 * Definitions are in include/resflow/lab/probe.h.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resflow/lab/probe.h"
#include "resflow/train.h"
#include "core/rng.h"

#define MAX_PROBE_ROWS (1 << 20)

rf_probe_opts rf_probe_default(void)
{
    rf_probe_opts o = {-1, 10, 1, 0};
    return o;
}

int rf_probe_group(const float *y, int depth)
{
    int pos = 0;
    while (pos < depth && y[pos] > 0.5f) pos++;
    for (int d = pos; d < depth; d++)
        if (y[d] > 0.5f) return -1;
    return depth - pos;
}

void rf_probe_free(rf_probe *p)
{
    if (!p) return;
    free(p->row);
    free(p->group);
    free(p->key);
    free(p->label);
    for (int l = 0; l < RF_MAX_LAYERS; l++) {
        free(p->block[l]);
        free(p->out[l]);
    }
    free(p->logit);
    free(p->residual);
    free(p->prob);
    free(p->mag);
    free(p->sep);
    free(p);
}

static int cmp_size(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return x < y ? -1 : x > y;
}

/* Choose k of the n values v[] (partial Fisher-Yates, in place): they end up in v[0..k), sorted. */
static void choose(size_t *v, size_t n, size_t k, rf_rng *r)
{
    for (size_t i = 0; i < k; i++) {
        size_t j = i + (size_t)rf_rng_below(r, n - i), t = v[i];
        v[i] = v[j];
        v[j] = t;
    }
    qsort(v, k, sizeof *v, cmp_size);
}

typedef struct {
    uint64_t key;
    size_t row;
} keyed;

static int cmp_keyed(const void *a, const void *b)
{
    const keyed *x = a, *y = b;
    if (x->key != y->key) return x->key < y->key ? -1 : 1;
    return x->row < y->row ? -1 : x->row > y->row;
}

static rf_probe_stat stat_of(const double *v, size_t n)
{
    rf_probe_stat s = {NAN, NAN, n};
    if (!n) return s;
    double m = 0, q = 0;
    for (size_t i = 0; i < n; i++) m += v[i];
    m /= (double)n;
    for (size_t i = 0; i < n; i++) q += (v[i] - m) * (v[i] - m);
    s.mean = m;
    s.std = sqrt(q / (double)n);
    return s;
}

/* Calinski-Harabasz index of n rows x (H columns at stride ld) in G groups of N rows each. */
static double ch_index(const float *x, size_t ld, int H, int G, int N, double *scratch /* (G+1)*H */)
{
    size_t n = (size_t)G * N;
    if (G < 2 || n <= (size_t)G) return NAN;
    double *c = scratch, *cg = scratch + H;
    memset(scratch, 0, (size_t)(G + 1) * H * sizeof *scratch);
    for (int g = 0; g < G; g++)
        for (int i = 0; i < N; i++) {
            const float *r = x + ((size_t)g * N + i) * ld;
            for (int j = 0; j < H; j++) cg[(size_t)g * H + j] += r[j];
        }
    for (int g = 0; g < G; g++)
        for (int j = 0; j < H; j++) {
            c[j] += cg[(size_t)g * H + j];
            cg[(size_t)g * H + j] /= N;
        }
    for (int j = 0; j < H; j++) c[j] /= (double)n;
    double between = 0, within = 0;
    for (int g = 0; g < G; g++) {
        for (int j = 0; j < H; j++) {
            double d = cg[(size_t)g * H + j] - c[j];
            between += N * d * d;
        }
        for (int i = 0; i < N; i++) {
            const float *r = x + ((size_t)g * N + i) * ld;
            for (int j = 0; j < H; j++) {
                double d = r[j] - cg[(size_t)g * H + j];
                within += d * d;
            }
        }
    }
    if (!(within > 0)) return NAN;
    return (between / (G - 1)) / (within / (double)(n - G));
}

/* Draw the rows (normal: N per group; per key: N keys, one row of each group per key). */
static rf_status sample(rf_probe *p, const rf_dataset *ds, const rf_probe_opts *o, const int8_t *grp, rf_error *err)
{
    int G = p->n_groups, N = p->per_group;
    rf_rng r;
    rf_rng_seed(&r, o->seed);
    if (!o->per_key) {
        size_t off[RF_PROBE_MAX_GROUPS + 1] = {0}, fill[RF_PROBE_MAX_GROUPS] = {0};
        for (int g = 0; g < G; g++) off[g + 1] = off[g] + p->available[g];
        for (int g = 0; g < G; g++)
            if (p->available[g] < (size_t)N)
                return rf_errorf(err, RF_EDATA,
                                 "group %s (%s) has %zu rows in the data, fewer than the %d asked for "
                                 "(ask for fewer rows per group, or use more data)",
                                 p->group_name[g], p->group_desc[g], p->available[g], N);
        size_t *cand = malloc((off[G] ? off[G] : 1) * sizeof *cand);
        if (!cand) return rf_errorf(err, RF_ENOMEM, "out of memory");
        for (size_t i = 0; i < ds->n; i++)
            if (grp[i] >= 0) cand[off[grp[i]] + fill[grp[i]]++] = i;
        for (int g = 0; g < G; g++) {
            choose(cand + off[g], p->available[g], (size_t)N, &r);
            memcpy(p->row + (size_t)g * N, cand + off[g], (size_t)N * sizeof *cand);
        }
        free(cand);
        return RF_OK;
    }
    size_t nc = 0;
    for (int g = 0; g < G; g++) nc += p->available[g];
    keyed *kr = malloc((nc ? nc : 1) * sizeof *kr);
    size_t *seg = malloc((nc + 1) * sizeof *seg); /* starts of the eligible keys' runs */
    if (!kr || !seg) {
        free(kr), free(seg);
        return rf_errorf(err, RF_ENOMEM, "out of memory");
    }
    nc = 0;
    for (size_t i = 0; i < ds->n; i++)
        if (grp[i] >= 0) kr[nc++] = (keyed){ds->group[i], i};
    qsort(kr, nc, sizeof *kr, cmp_keyed);
    size_t keys_with[RF_PROBE_MAX_GROUPS] = {0}, ne = 0;
    for (size_t a = 0; a < nc;) {
        size_t z = a, cnt[RF_PROBE_MAX_GROUPS] = {0};
        while (z < nc && kr[z].key == kr[a].key) cnt[grp[kr[z++].row]]++;
        int all = 1;
        for (int g = 0; g < G; g++) {
            keys_with[g] += cnt[g] > 0;
            all &= cnt[g] > 0;
        }
        if (all) seg[ne++] = a;
        a = z;
    }
    for (int g = 0; g < G; g++) p->available[g] = keys_with[g];
    p->eligible_keys = ne;
    if (ne < (size_t)N) {
        free(kr), free(seg);
        return rf_errorf(err, RF_EDATA,
                         "only %zu keys (data.group) have a row of every group (%s%s), fewer than the %d asked for",
                         ne, G > 2 ? "e.g. " : "", p->group_desc[0], N);
    }
    choose(seg, ne, (size_t)N, &r);
    for (int i = 0; i < N; i++) {
        size_t a = seg[i], z = a;
        while (z < nc && kr[z].key == kr[a].key) z++;
        for (int g = 0; g < G; g++) {
            size_t cnt = 0;
            for (size_t j = a; j < z; j++) cnt += grp[kr[j].row] == g;
            size_t t = (size_t)rf_rng_below(&r, cnt);
            for (size_t j = a; j < z; j++)
                if (grp[kr[j].row] == g && t-- == 0) {
                    p->row[(size_t)g * N + i] = kr[j].row;
                    break;
                }
        }
    }
    free(kr), free(seg);
    return RF_OK;
}

static void summarise(rf_probe *p, const rf_model *m, double *tmp, double *scratch)
{
    int G = p->n_groups, N = p->per_group, K = p->K, leaf = p->leaf, par = rf_model_info_of(m)->parent[leaf];
    for (int g = 0; g < G; g++) {
        size_t a = (size_t)g * N;
        for (int i = 0; i < N; i++) tmp[i] = p->residual[(a + i) * K + leaf];
        p->res[g] = stat_of(tmp, (size_t)N);
        for (int i = 0; i < N; i++) tmp[i] = par >= 0 ? p->logit[(a + i) * K + leaf] - p->logit[(a + i) * K + par] : 0;
        p->gap[g] = stat_of(tmp, par >= 0 ? (size_t)N : 0);
        for (int i = 0; i < N; i++) tmp[i] = p->prob[(a + i) * K + leaf];
        p->p[g] = stat_of(tmp, (size_t)N);
    }
    for (int l = 0; l < p->L; l++) {
        int H = p->H[l];
        size_t KH = (size_t)K * H;
        for (int d = 0; d < p->depth; d++)
            for (int kind = 0; kind < 2; kind++) {
                const float *x = (kind ? p->block[l] : p->out[l]) + (size_t)p->path[d] * H;
                size_t s = (size_t)(l * p->depth + d) * 2 + kind;
                for (int g = 0; g < G; g++) {
                    for (int i = 0; i < N; i++) {
                        const float *r = x + ((size_t)g * N + i) * KH;
                        double a = 0;
                        for (int j = 0; j < H; j++) a += fabs(r[j]);
                        tmp[i] = a / H;
                    }
                    p->mag[s * G + g] = stat_of(tmp, (size_t)N);
                }
                p->sep[s] = ch_index(x, KH, H, G, N, scratch);
            }
    }
}

rf_status rf_probe_run(rf_model *m, const rf_dataset *ds, const rf_probe_opts *o, rf_probe **out, rf_error *err)
{
    *out = NULL;
    if (!rf_model_info_of(m)->is_tower)
        return rf_errorf(err, RF_EUSAGE,
                         "model.type %s: probing needs a tower model (resflow, nse or esmm); the model zoo "
                         "has no per-task towers with residuals",
                         rf_model_type_name(rf_model_spec_of(m)->model.type));
    int K = rf_model_info_of(m)->K, leaf = o->leaf < 0 ? K - 1 : o->leaf;
    if (leaf >= K) return rf_errorf(err, RF_EUSAGE, "probe: task index %d, the model has %d tasks", leaf, K);
    if (o->rows < 1) return rf_errorf(err, RF_EUSAGE, "probe: %d rows per group (need at least 1)", o->rows);
    if (o->per_key && !ds->group)
        return rf_errorf(err, RF_EUSAGE, "probe: sampling per key needs a group key (data.group) in the data");
    int lc[RF_MAX_TASKS];
    rf_status st = rf_resolve_labels(m, ds, lc, err);
    if (st) return st;

    rf_probe *p = calloc(1, sizeof *p);
    if (!p) return rf_errorf(err, RF_ENOMEM, "out of memory");
    p->K = K;
    p->L = rf_model_info_of(m)->L;
    for (int l = 0; l < rf_model_info_of(m)->L; l++) p->H[l] = rf_model_info_of(m)->H[l];
    p->leaf = leaf;
    int rev[RF_MAX_TASKS], depth = 0;
    for (int k = leaf; k >= 0 && depth < RF_MAX_TASKS; k = rf_model_info_of(m)->parent[k]) rev[depth++] = k;
    p->depth = depth;
    for (int d = 0; d < depth; d++) p->path[d] = rev[depth - 1 - d];
    int G = p->n_groups = depth + 1;
    for (int g = 0; g < G; g++) {
        snprintf(p->group_name[g], sizeof p->group_name[g], "%c", 'A' + g);
        size_t w = 0;
        for (int d = 0; d < depth; d++)
            w += (size_t)snprintf(p->group_desc[g] + w, w < sizeof p->group_desc[g] ? sizeof p->group_desc[g] - w : 0,
                                  "%s%s=%d", d ? " " : "", rf_model_spec_of(m)->tasks[p->path[d]].name, d < depth - g);
    }
    for (int l = 0; l <= rf_model_info_of(m)->L; l++) p->link[l] = rf_model_link(m, l);
    int N = p->per_group = o->rows;
    p->per_key = o->per_key;
    if ((size_t)N * G > MAX_PROBE_ROWS) {
        rf_probe_free(p);
        return rf_errorf(err, RF_EUSAGE, "probe: %d rows per group x %d groups is too many (max %d rows)", N, G,
                         MAX_PROBE_ROWS);
    }
    size_t n = p->n = (size_t)N * G;

    /* groups of all rows */
    int8_t *grp = malloc(ds->n ? ds->n : 1);
    if (!grp) {
        rf_probe_free(p);
        return rf_errorf(err, RF_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < ds->n; i++) {
        float y[RF_MAX_TASKS];
        for (int d = 0; d < depth; d++) y[d] = ds->labels[i * ds->K + lc[p->path[d]]];
        grp[i] = (int8_t)rf_probe_group(y, depth);
        if (grp[i] < 0) p->inconsistent++;
        else p->available[grp[i]]++;
    }
    p->row = malloc(n * sizeof *p->row);
    p->group = malloc(n * sizeof *p->group);
    p->label = malloc(n * K * sizeof *p->label);
    p->logit = malloc(n * K * sizeof *p->logit);
    p->residual = malloc(n * K * sizeof *p->residual);
    p->prob = malloc(n * K * sizeof *p->prob);
    p->mag = malloc((size_t)rf_model_info_of(m)->L * depth * 2 * G * sizeof *p->mag);
    p->sep = malloc((size_t)rf_model_info_of(m)->L * depth * 2 * sizeof *p->sep);
    int ok = p->row && p->group && p->label && p->logit && p->residual && p->prob && p->mag && p->sep;
    if (ds->group) ok &= (p->key = malloc(n * sizeof *p->key)) != NULL;
    for (int l = 0; l < rf_model_info_of(m)->L; l++) {
        ok &= (p->block[l] = malloc(n * K * rf_model_info_of(m)->H[l] * sizeof(float))) != NULL;
        ok &= (p->out[l] = malloc(n * K * rf_model_info_of(m)->H[l] * sizeof(float))) != NULL;
    }
    if (!ok) {
        free(grp);
        rf_probe_free(p);
        return rf_errorf(err, RF_ENOMEM, "out of memory for %zu probed rows", n);
    }
    st = sample(p, ds, o, grp, err);
    free(grp);
    if (st) {
        rf_probe_free(p);
        return st;
    }
    for (size_t i = 0; i < n; i++) {
        p->group[i] = (int)(i / (size_t)N);
        if (p->key) p->key[i] = ds->group[p->row[i]];
        for (int k = 0; k < K; k++) p->label[i * K + k] = ds->labels[p->row[i] * ds->K + lc[k]];
    }

    /* one inference pass over the sampled rows */
    rf_workspace *ws = rf_workspace_create(m, (int)n);
    if (!ws) {
        rf_probe_free(p);
        return rf_errorf(err, RF_ENOMEM, "out of memory for the forward pass");
    }
    rf_batch bt = {ds, p->row, (int)n, lc};
    if ((st = rf_ws_keep_blocks(ws, m, err)) || (st = rf_model_forward(m, ws, &bt, 0, err))) {
        rf_workspace_free(ws);
        rf_probe_free(p);
        return st;
    }
    for (int l = 0; l < rf_model_info_of(m)->L; l++) {
        memcpy(p->block[l], rf_ws_block(ws, l), n * K * rf_model_info_of(m)->H[l] * sizeof(float));
        memcpy(p->out[l], rf_ws_hidden(ws, l), n * K * rf_model_info_of(m)->H[l] * sizeof(float));
    }
    memcpy(p->logit, rf_ws_logits(ws), n * K * sizeof(float));
    memcpy(p->prob, rf_ws_probs(ws), n * K * sizeof(float));
    const float *own = rf_ws_own_logits(ws);
    /* as the forward pass applies it: M3 clamps a logit-linked child's residual at 0 */
    int m3 = p->link[rf_model_info_of(m)->L] && rf_model_spec_of(m)->model.monotonic == RF_MONO_M3;
    for (size_t i = 0; i < n * K; i++) {
        int k = (int)(i % K);
        p->residual[i] = m3 && rf_model_info_of(m)->parent[k] >= 0 && own[i] > 0 ? 0.0f : own[i];
    }
    rf_workspace_free(ws);

    int Hmax = 1;
    for (int l = 0; l < rf_model_info_of(m)->L; l++)
        if (rf_model_info_of(m)->H[l] > Hmax) Hmax = rf_model_info_of(m)->H[l];
    double *tmp = malloc((size_t)N * sizeof *tmp), *scratch = malloc((size_t)(G + 1) * Hmax * sizeof *scratch);
    if (!tmp || !scratch) {
        free(tmp), free(scratch);
        rf_probe_free(p);
        return rf_errorf(err, RF_ENOMEM, "out of memory");
    }
    summarise(p, m, tmp, scratch);
    free(tmp), free(scratch);
    *out = p;
    return RF_OK;
}

/* ---- heatmaps ------------------------------------------------------------------------------ */

typedef struct {
    int G, r, R;                       /* groups, rows shown per group, rows in all */
    int band_start[RF_PROBE_MAX_GROUPS];
    char band_text[RF_PROBE_MAX_GROUPS][200];
    const char *band_label[RF_PROBE_MAX_GROUPS];
    char (*row_text)[24];
    const char **row_label;
} fig_rows;

static rf_status rows_setup(const rf_probe *p, int rows, fig_rows *f, rf_error *err)
{
    f->G = p->n_groups;
    f->r = rows > 0 && rows < p->per_group ? rows : p->per_group;
    f->R = f->G * f->r;
    f->row_text = malloc((size_t)f->R * sizeof *f->row_text);
    f->row_label = malloc((size_t)f->R * sizeof *f->row_label);
    if (!f->row_text || !f->row_label) {
        free(f->row_text), free(f->row_label);
        return rf_errorf(err, RF_ENOMEM, "out of memory");
    }
    for (int g = 0; g < f->G; g++) {
        f->band_start[g] = g * f->r;
        snprintf(f->band_text[g], sizeof f->band_text[g], "%s\n%s", p->group_name[g], p->group_desc[g]);
        f->band_label[g] = f->band_text[g];
        for (int i = 0; i < f->r; i++) {
            size_t src = (size_t)g * p->per_group + i;
            int at = g * f->r + i;
            if (p->per_key) snprintf(f->row_text[at], sizeof f->row_text[at], "key %llu", (unsigned long long)p->key[src]);
            else snprintf(f->row_text[at], sizeof f->row_text[at], "#%zu", p->row[src]);
            f->row_label[at] = f->row_text[at];
        }
    }
    return RF_OK;
}

static void rows_free(fig_rows *f)
{
    free(f->row_text);
    free(f->row_label);
}

/* Copy the shown rows of columns [c0, c0+u) of x (n, ld) into v (R, u). */
static void gather(const rf_probe *p, const fig_rows *f, const float *x, size_t ld, int c0, int u, float *v)
{
    for (int g = 0; g < f->G; g++)
        for (int i = 0; i < f->r; i++)
            memcpy(v + ((size_t)g * f->r + i) * u, x + ((size_t)g * p->per_group + i) * ld + c0, (size_t)u * sizeof *v);
}

rf_status rf_probe_svg_layer(const rf_probe *p, const rf_model *m, int l, int rows, int max_units, float limit,
                             const char *model_label, char **svg, rf_error *err)
{
    *svg = NULL;
    if (l < 0 || l >= p->L) return rf_errorf(err, RF_EUSAGE, "probe: hidden layer %d (the model has %d)", l, p->L);
    fig_rows f;
    rf_status st = rows_setup(p, rows, &f, err);
    if (st) return st;
    int H = p->H[l], u = max_units > 0 && max_units < H ? max_units : H;
    size_t KH = (size_t)p->K * H;
    rf_heat_panel pan[2 * RF_MAX_TASKS];
    char titles[2 * RF_MAX_TASKS][200];
    float *vals = malloc((size_t)2 * p->depth * f.R * u * sizeof *vals);
    if (!vals) {
        rows_free(&f);
        return rf_errorf(err, RF_ENOMEM, "out of memory");
    }
    int np = 0;
    for (int d = 0; d < p->depth; d++) {
        int k = p->path[d], par = rf_model_info_of(m)->parent[k];
        const char *kn = rf_model_spec_of(m)->tasks[k].name;
        int linked = p->link[l] && par >= 0;
        for (int kind = linked ? 1 : 0; kind >= 0; kind--) { /* the residual first, then the sum */
            float *v = vals + (size_t)np * f.R * u;
            gather(p, &f, kind ? p->block[l] : p->out[l], KH, k * H, u, v);
            if (kind)
                snprintf(titles[np], sizeof titles[np], "residual learned by the %s tower\nf_%s (before the link)", kn, kn);
            else if (linked)
                snprintf(titles[np], sizeof titles[np], "%s output, recovered by summation\no_%s = o_%s + f_%s", kn, kn,
                         rf_model_spec_of(m)->tasks[par].name, kn);
            else
                snprintf(titles[np], sizeof titles[np], "feature learned by the %s tower\no_%s", kn, kn);
            pan[np] = (rf_heat_panel){titles[np], v, u, (size_t)u, NULL, 0, 0};
            np++;
        }
    }
    char title[256], note[256];
    snprintf(title, sizeof title, "%s: hidden layer %d, dim=%d%s, %d rows per group", model_label ? model_label : "model",
             l + 1, H, u < H ? " (first units)" : "", f.r);
    snprintf(note, sizeof note, "f = %sact(W o_prev + b)%s, the tower's own block; links %s behind this layer; units %d of %d",
             rf_model_spec_of(m)->model.bn == RF_BN_BATCH ? "BN(" : "", rf_model_spec_of(m)->model.bn == RF_BN_BATCH ? ")" : "",
             p->link[l] ? "on" : "off", u, H);
    rf_heatmap h = {title, f.R, f.G, f.band_start, f.band_label, f.row_label, np, pan, limit,
                    "hidden feature value", note, 4, 6};
    st = rf_heatmap_svg(&h, svg, NULL, err);
    free(vals);
    rows_free(&f);
    return st;
}

rf_status rf_probe_svg_logits(const rf_probe *p, const rf_model *m, int rows, float limit, const char *model_label,
                              char **svg, rf_error *err)
{
    *svg = NULL;
    fig_rows f;
    rf_status st = rows_setup(p, rows, &f, err);
    if (st) return st;
    int ncol = 2 * p->depth - 1, K = p->K;
    float *v = malloc((size_t)f.R * ncol * sizeof *v);
    if (!v) {
        rows_free(&f);
        return rf_errorf(err, RF_ENOMEM, "out of memory");
    }
    char caps[2 * RF_MAX_TASKS][RF_NAME_MAX + 4];
    const char *cap[2 * RF_MAX_TASKS];
    for (int d = 0; d < p->depth; d++) {
        snprintf(caps[d], sizeof caps[d], "s_%s", rf_model_spec_of(m)->tasks[p->path[d]].name);
        if (d) snprintf(caps[p->depth + d - 1], sizeof caps[0], "r_%s", rf_model_spec_of(m)->tasks[p->path[d]].name);
    }
    for (int c = 0; c < ncol; c++) cap[c] = caps[c];
    for (int g = 0; g < f.G; g++)
        for (int i = 0; i < f.r; i++) {
            size_t src = (size_t)g * p->per_group + i;
            float *o = v + ((size_t)g * f.r + i) * ncol;
            for (int d = 0; d < p->depth; d++) {
                o[d] = p->logit[src * K + p->path[d]];
                if (d) o[p->depth + d - 1] = p->residual[src * K + p->path[d]];
            }
        }
    int cw = 0;
    for (int c = 0; c < ncol; c++)
        if ((int)strlen(cap[c]) * 6 + 6 > cw) cw = (int)strlen(cap[c]) * 6 + 6;
    if (cw < 40) cw = 40;
    rf_heat_panel pan = {"logits; r = residual logit (added to the parent's logit)", v, ncol, (size_t)ncol, cap, cw, 1};
    char title[256];
    snprintf(title, sizeof title, "%s: logits of the sampled rows", model_label ? model_label : "model");
    const char *note = p->link[p->L] ? "s_child = s_parent + r_child (logit link on)"
                                     : "no logit link: r is the tower's whole own logit";
    rf_heatmap h = {title, f.R, f.G, f.band_start, f.band_label, f.row_label, 1, &pan, limit, "logit", note, 4, 12};
    st = rf_heatmap_svg(&h, svg, NULL, err);
    free(v);
    rows_free(&f);
    return st;
}
