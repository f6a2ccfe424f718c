/* synth_sample.c - the simulator's samplers: Walker/Vose alias tables (grouped, and over a
 * Zipf-Mandelbrot popularity), shuffles, small discrete distributions, latent vectors, and the
 * calibration of intercepts to target rates. */
#include <stdlib.h>
#include <string.h>

#include "data/synthint.h"


/* Build into caller-provided prob/alias (n entries). w: weights (> 0 sum). work: 2n uint32. */
void rf_synth_alias_build_into_(float *prob, uint32_t *alias, const double *w, uint32_t n,
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

void rf_synth_grouped_free_(grouped_alias_t *g)
{
    free(g->off);
    free(g->members);
    free(g->prob);
    free(g->alias);
}

/* grp[i] in [0, n_groups) for i < n; w[i] weights. Returns 0 or -1 on OOM. */
int rf_synth_grouped_build_(grouped_alias_t *g, const uint32_t *grp, const double *w, uint32_t n,
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
            if (m) rf_synth_alias_build_into_(g->prob + o, g->alias + o, wl + o, m, work, scaled);
        }
    }
    free(work);
    free(scaled);
    free(wl);
    free(fill);
    if (!ok) {
        rf_synth_grouped_free_(g);
        return -1;
    }
    return 0;
}


void rf_synth_randvec_(float *x, rng_t *r, float sd)
{
    for (int k = 0; k < LAT; k++) x[k] = sd * rng_normal(r);
}

void rf_synth_shuffle_u32_(uint32_t *a, uint32_t n, rng_t *r)
{
    for (uint32_t i = n; i > 1; i--) {
        uint32_t j = rng_below(r, i);
        uint32_t t = a[i - 1];
        a[i - 1] = a[j];
        a[j] = t;
    }
}

/* Zipf-Mandelbrot weights for a random assignment of ranks to n entities. */
int rf_synth_zipf_weights_(double *w, uint32_t n, double expo, double off, rng_t *r)
{
    uint32_t *perm = malloc((size_t)n * sizeof *perm);
    if (!perm) return -1;
    for (uint32_t i = 0; i < n; i++) perm[i] = i;
    rf_synth_shuffle_u32_(perm, n, r);
    for (uint32_t i = 0; i < n; i++) w[i] = pow((double)perm[i] + 1.0 + off, -expo);
    free(perm);
    return 0;
}

int rf_synth_cmp_float_(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* Draw from a small discrete distribution given by cumulative weights (n entries). */
uint32_t rf_synth_draw_cdf_(const double *cdf, uint32_t n, rng_t *r)
{
    double u = (double)(rng_next(r) >> 11) * 0x1p-53 * cdf[n - 1];
    uint32_t i = 0;
    while (i + 1 < n && u >= cdf[i]) i++;
    return i;
}

/* Intercept b such that sum_i w_i sigm(b + x_i) / sum_i w_i = target (w NULL = 1), by a
 * safeguarded Newton iteration. x strided. */
double rf_synth_calibrate_(const float *x, size_t stride, const double *w, size_t m, double target)
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




void rf_synth_pop_free_(pop_t *p)
{
    free(p->prob);
    free(p->alias);
}

int rf_synth_pop_build_(pop_t *p, uint32_t n, double expo, double off, rng_t *r, double *wts_out)
{
    p->n = n;
    p->prob = malloc((size_t)n * sizeof *p->prob);
    p->alias = malloc((size_t)n * sizeof *p->alias);
    double *w = malloc((size_t)n * sizeof *w), *sc = malloc((size_t)n * sizeof *sc);
    uint32_t *work = malloc(2 * (size_t)n * sizeof *work);
    int ok = p->prob && p->alias && w && sc && work && rf_synth_zipf_weights_(w, n, expo, off, r) == 0;
    if (ok) {
        rf_synth_alias_build_into_(p->prob, p->alias, w, n, work, sc);
        if (wts_out) memcpy(wts_out, w, (size_t)n * sizeof *w);
    }
    free(w);
    free(sc);
    free(work);
    if (!ok) rf_synth_pop_free_(p);
    return ok ? 0 : -1;
}


/* Standard logistic quantiles (i + 0.5) / 16: E[sigmoid(z + L)] for L ~ Logistic(0, 1) is the
 * mean of sigmoid(z + q_i) to about 1e-3. */
double rf_synth_mean_sigmoid_logistic_(double z)
{
    double s = 0;
    for (int i = 0; i < 16; i++) {
        double u = (i + 0.5) / 16.0;
        s += sigm(z + log(u / (1 - u)));
    }
    return s / 16.0;
}

