/* plot.c - SVG line plots with markers and error bars (include/resflow/lab/plot.h).
 *
 * The document is written with open_memstream; coordinates are printed with two decimals.
 * Layout (pixels): title band on top, y labels on the left, x labels below, the legend in a
 * column right of the plot area.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resflow/afile.h"
#include "resflow/lab/plot.h"
#include "lab/xml.h"

#define ML 78.0  /* left margin: y tick labels and the y label */
#define MR 180.0 /* right margin: the legend */
#define MT 44.0  /* top margin: the title */
#define MB 58.0  /* bottom margin: x tick labels and the x label */
#define DODGE 4.0

static const char *const PALETTE[] = {"#0072B2", "#D55E00", "#009E73", "#CC79A7",
                                      "#E69F00", "#56B4E9", "#000000", "#F0E442"};
#define N_COLORS (int)(sizeof PALETTE / sizeof *PALETTE)
#define N_MARKERS 6

/* ---- ticks ------------------------------------------------------------------------------------ */

/* The step among 1, 2, 5 x 10^k that cuts a range of width w into closest to 5 intervals. */
static double nice_step(double w)
{
    double p = pow(10.0, floor(log10(w / 5.0))), best = p;
    static const double f[] = {1, 2, 5, 10};
    for (int i = 1; i < 4; i++)
        if (fabs(w / (f[i] * p) - 5.0) < fabs(w / best - 5.0)) best = f[i] * p;
    return best;
}

static int linear_ticks(double lo, double hi, double *t, int cap)
{
    if (!(hi > lo)) {
        if (cap > 0) t[0] = lo;
        return cap > 0;
    }
    double step = nice_step(hi - lo);
    double eps = step * 1e-9;
    long i0 = (long)ceil((lo - eps) / step), i1 = (long)floor((hi + eps) / step);
    int n = 0;
    for (long i = i0; i <= i1 && n < cap; i++) {
        double v = (double)i * step;
        t[n++] = fabs(v) < eps ? 0.0 : v;
    }
    return n;
}

/* Powers of ten in [lo, hi], each times every multiplier in mult[0..nm). */
static int log_ticks_with(double lo, double hi, const double *mult, int nm, double *t, int cap)
{
    int n = 0;
    int k0 = (int)floor(log10(lo)) - 1, k1 = (int)ceil(log10(hi)) + 1;
    for (int k = k0; k <= k1; k++)
        for (int j = 0; j < nm; j++) {
            double v = mult[j] * pow(10.0, k);
            /* tolerance: 1e-4 must count as inside [1e-4, 1e-2] despite rounding */
            if (v >= lo * (1 - 1e-9) && v <= hi * (1 + 1e-9) && n < cap) t[n++] = v;
        }
    return n;
}

int rf_plot_ticks(double lo, double hi, int log_scale, double *ticks, int cap)
{
    if (cap <= 0 || !isfinite(lo) || !isfinite(hi) || lo > hi) return 0;
    if (!log_scale) return linear_ticks(lo, hi, ticks, cap);
    if (!(lo > 0)) return 0;
    static const double m1[] = {1}, m125[] = {1, 2, 5}, m1to9[] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    int n = log_ticks_with(lo, hi, m1, 1, ticks, cap);
    if (n < 3) n = log_ticks_with(lo, hi, m125, 3, ticks, cap);
    if (n < 2) n = log_ticks_with(lo, hi, m1to9, 9, ticks, cap);
    return n;
}

void rf_plot_format(double v, char *buf, size_t n)
{
    if (!n) return;
    if (!isfinite(v)) {
        snprintf(buf, n, "%s", isnan(v) ? "nan" : v > 0 ? "inf" : "-inf");
        return;
    }
    double a = fabs(v);
    if (a != 0 && (a < 1e-3 || a >= 1e6)) {
        /* "1e-04" -> "1e-4", "2.5e+06" -> "2.5e+6" */
        char t[64];
        snprintf(t, sizeof t, "%.5e", v);
        char *e = strchr(t, 'e');
        if (e) {
            char *m = e; /* trailing zeros of the mantissa, and a bare '.' */
            while (m > t && m[-1] == '0') m--;
            if (m > t && m[-1] == '.') m--;
            memmove(m, e, strlen(e) + 1);
            e = m;
            char *d = e + 2; /* leading zeros of the exponent */
            while (d[0] == '0' && d[1]) memmove(d, d + 1, strlen(d));
        }
        snprintf(buf, n, "%s", t);
        return;
    }
    snprintf(buf, n, "%.6g", v);
}

/* ---- drawing ---------------------------------------------------------------------------------- */

typedef struct {
    double x0, x1, y0, y1;     /* data range of the axes (x in log10 units on a log axis) */
    double px0, px1, py0, py1; /* plot area in pixels (py0 is the top) */
    int log_x;
} frame;

static double fx(const frame *f, double x)
{
    double u = f->log_x ? log10(x) : x;
    return f->px0 + (u - f->x0) / (f->x1 - f->x0) * (f->px1 - f->px0);
}

static double fy(const frame *f, double y) { return f->py1 - (y - f->y0) / (f->y1 - f->y0) * (f->py1 - f->py0); }

static void put_escaped(FILE *fp, const char *s)
{
    for (; s && *s; s++) {
        const char *r = xml_escape(*s);
        if (r) fputs(r, fp);
        else fputc(*s, fp);
    }
}

/* Marker m of size r centred at (x, y), as a path. */
static void marker(FILE *fp, int m, double x, double y, double r, const char *color, const char *cls)
{
    fprintf(fp, "<path class=\"%s\" fill=\"%s\" stroke=\"%s\" d=\"", cls, m == 4 ? "white" : color, color);
    switch (m % N_MARKERS) {
    case 0: /* circle */
        fprintf(fp, "M%.2f %.2fa%.2f %.2f 0 1 0 %.2f 0a%.2f %.2f 0 1 0 %.2f 0z", x - r, y, r, r, 2 * r, r, r, -2 * r);
        break;
    case 1: /* square */
        r *= 0.85;
        fprintf(fp, "M%.2f %.2fh%.2fv%.2fh%.2fz", x - r, y - r, 2 * r, 2 * r, -2 * r);
        break;
    case 2: /* triangle up */
        fprintf(fp, "M%.2f %.2fL%.2f %.2fL%.2f %.2fz", x, y - 1.2 * r, x + 1.1 * r, y + 0.8 * r, x - 1.1 * r, y + 0.8 * r);
        break;
    case 3: /* diamond */
        fprintf(fp, "M%.2f %.2fL%.2f %.2fL%.2f %.2fL%.2f %.2fz", x, y - 1.25 * r, x + r, y, x, y + 1.25 * r, x - r, y);
        break;
    case 4: /* open circle */
        fprintf(fp, "M%.2f %.2fa%.2f %.2f 0 1 0 %.2f 0a%.2f %.2f 0 1 0 %.2f 0z", x - r, y, r, r, 2 * r, r, r, -2 * r);
        break;
    default: /* triangle down */
        fprintf(fp, "M%.2f %.2fL%.2f %.2fL%.2f %.2fz", x, y + 1.2 * r, x + 1.1 * r, y - 0.8 * r, x - 1.1 * r, y - 0.8 * r);
    }
    fputc('"', fp);
}

static int point_ok(const rf_plot_series *s, int i)
{
    return isfinite(s->x[i]) && isfinite(s->y[i]);
}

static int has_bar(const rf_plot_series *s, int i) { return s->err && isfinite(s->err[i]) && s->err[i] > 0; }

static rf_status check_input(const rf_plot_opts *o, const rf_plot_series *s, int ns, rf_error *err)
{
    if (!o || ns < 0 || (ns > 0 && !s)) return rf_errorf(err, RF_EUSAGE, "plot: no options or series");
    int w = o->width ? o->width : 720, h = o->height ? o->height : 440;
    if (w < 200 || h < 150 || w > 100000 || h > 100000)
        return rf_errorf(err, RF_EUSAGE, "plot: size %d x %d out of range (200 x 150 .. 100000 x 100000)", w, h);
    if (o->n_xticks < 0 || o->n_xticks > RF_PLOT_MAX_TICKS || (o->n_xticks > 0 && !o->xtick))
        return rf_errorf(err, RF_EUSAGE, "plot: bad x ticks (0..%d, with positions)", RF_PLOT_MAX_TICKS);
    for (int j = 0; j < ns; j++) {
        const char *name = s[j].name ? s[j].name : "";
        if (s[j].n < 0 || (s[j].n > 0 && (!s[j].x || !s[j].y)))
            return rf_errorf(err, RF_EUSAGE, "plot: series %d (\"%s\"): no points", j, name);
        if (!o->log_x) continue;
        for (int i = 0; i < s[j].n; i++)
            if (point_ok(&s[j], i) && !(s[j].x[i] > 0))
                return rf_errorf(err, RF_EUSAGE,
                                 "plot: log x axis, but series \"%s\" has x = %g (every x must be > 0; use a "
                                 "linear axis)",
                                 name, s[j].x[i]);
    }
    for (int i = 0; i < o->n_xticks; i++) {
        if (!isfinite(o->xtick[i]) || (o->log_x && !(o->xtick[i] > 0)))
            return rf_errorf(err, RF_EUSAGE, "plot: x tick %g %s", o->xtick[i],
                             o->log_x ? "is not positive (log x axis)" : "is not finite");
    }
    return RF_OK;
}

/* Pad [*lo, *hi] by frac of its width on each side (a single value: by a fixed amount). */
static void pad(double *lo, double *hi, double frac)
{
    if (*hi > *lo) {
        double d = (*hi - *lo) * frac;
        *lo -= d;
        *hi += d;
    } else {
        double d = *lo != 0 ? fabs(*lo) * 0.05 : 1.0;
        *lo -= d;
        *hi += d;
    }
}

static void text(FILE *fp, double x, double y, const char *anchor, const char *cls, const char *extra, const char *s)
{
    fprintf(fp, "<text class=\"%s\" x=\"%.2f\" y=\"%.2f\" text-anchor=\"%s\"%s>", cls, x, y, anchor, extra ? extra : "");
    put_escaped(fp, s);
    fputs("</text>\n", fp);
}

static void draw_series(FILE *fp, const frame *f, const rf_plot_series *s, int j, int ns)
{
    const char *color = PALETTE[j % N_COLORS];
    double dx = ns > 1 ? ((double)j - (ns - 1) / 2.0) * DODGE : 0.0;
    fputs("<g class=\"series\" data-name=\"", fp);
    put_escaped(fp, s->name);
    fputs("\">\n", fp);
    /* the line: points in increasing x, broken at a missing point */
    int *ord = malloc((size_t)(s->n ? s->n : 1) * sizeof *ord);
    if (ord) {
        for (int i = 0; i < s->n; i++) ord[i] = i;
        for (int i = 1; i < s->n; i++) /* insertion sort by x; NaN x last */
            for (int k = i; k > 0; k--) {
                double a = s->x[ord[k - 1]], b = s->x[ord[k]];
                if (!(isnan(a) && !isnan(b)) && !(a > b)) break;
                int t = ord[k];
                ord[k] = ord[k - 1];
                ord[k - 1] = t;
            }
        int open = 0;
        for (int k = 0; k < s->n; k++) {
            int i = ord[k];
            if (!point_ok(s, i)) {
                if (open) fputs("\"/>\n", fp);
                open = 0;
                continue;
            }
            if (!open)
                fprintf(fp, "<path class=\"line\" fill=\"none\" stroke=\"%s\" stroke-width=\"1.8\" d=\"M", color);
            else
                fputc('L', fp);
            fprintf(fp, "%.2f %.2f", fx(f, s->x[i]) + dx, fy(f, s->y[i]));
            open = 1;
        }
        if (open) fputs("\"/>\n", fp);
        free(ord);
    }
    /* error bars, then markers on top */
    for (int i = 0; i < s->n; i++) {
        if (!point_ok(s, i) || !has_bar(s, i)) continue;
        double x = fx(f, s->x[i]) + dx, ya = fy(f, s->y[i] - s->err[i]), yb = fy(f, s->y[i] + s->err[i]);
        fprintf(fp,
                "<path class=\"err\" fill=\"none\" stroke=\"%s\" stroke-width=\"1.2\" "
                "d=\"M%.2f %.2fV%.2fM%.2f %.2fh%.2fM%.2f %.2fh%.2f\"/>\n",
                color, x, ya, yb, x - 3.5, ya, 7.0, x - 3.5, yb, 7.0);
    }
    for (int i = 0; i < s->n; i++) {
        if (!point_ok(s, i)) continue;
        marker(fp, j, fx(f, s->x[i]) + dx, fy(f, s->y[i]), 4.0, color, "pt");
        char xs[48], ys[48], es[48];
        rf_plot_format(s->x[i], xs, sizeof xs);
        snprintf(ys, sizeof ys, "%.4f", s->y[i]);
        fputs("><title>", fp);
        put_escaped(fp, s->name);
        fprintf(fp, ": x = %s, y = %s", xs, ys);
        if (has_bar(s, i)) {
            snprintf(es, sizeof es, "%.4f", s->err[i]);
            fprintf(fp, " &#177; %s", es);
        }
        fputs("</title></path>\n", fp);
    }
    fputs("</g>\n", fp);
}

static rf_status render(FILE *fp, const rf_plot_opts *o, const rf_plot_series *s, int ns)
{
    double W = o->width ? o->width : 720, H = o->height ? o->height : 440;
    frame f = {0, 0, 0, 0, ML, W - MR, MT, H - MB, o->log_x};
    /* data ranges (x of points and given ticks; y of points and bars) */
    double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
    int npts = 0;
    for (int j = 0; j < ns; j++)
        for (int i = 0; i < s[j].n; i++) {
            if (!point_ok(&s[j], i)) continue;
            double x = o->log_x ? log10(s[j].x[i]) : s[j].x[i], e = has_bar(&s[j], i) ? s[j].err[i] : 0;
            xlo = fmin(xlo, x), xhi = fmax(xhi, x);
            ylo = fmin(ylo, s[j].y[i] - e), yhi = fmax(yhi, s[j].y[i] + e);
            npts++;
        }
    for (int i = 0; i < o->n_xticks; i++) {
        double x = o->log_x ? log10(o->xtick[i]) : o->xtick[i];
        xlo = fmin(xlo, x), xhi = fmax(xhi, x);
    }
    if (!(xhi >= xlo)) xlo = 0, xhi = 1;
    if (!(yhi >= ylo)) ylo = 0, yhi = 1;
    if (o->log_x && !(xhi > xlo)) xlo -= 0.5, xhi += 0.5; /* one decade around a single x */
    pad(&xlo, &xhi, 0.06);
    pad(&ylo, &yhi, 0.06);
    f.x0 = xlo, f.x1 = xhi, f.y0 = ylo, f.y1 = yhi;

    fprintf(fp,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" "
            "font-family=\"Helvetica, Arial, sans-serif\" font-size=\"12\">\n"
            "<rect width=\"%.0f\" height=\"%.0f\" fill=\"white\"/>\n",
            W, H, W, H, W, H);
    if (o->title && *o->title) text(fp, (f.px0 + f.px1) / 2, 24, "middle", "title", " font-size=\"15\"", o->title);

    /* ticks and grid */
    double yt[RF_PLOT_MAX_TICKS], xt[RF_PLOT_MAX_TICKS];
    int nyt = rf_plot_ticks(ylo, yhi, 0, yt, RF_PLOT_MAX_TICKS), nxt;
    if (o->n_xticks > 0) {
        nxt = o->n_xticks;
        memcpy(xt, o->xtick, (size_t)nxt * sizeof *xt);
    } else {
        nxt = rf_plot_ticks(o->log_x ? pow(10.0, xlo) : xlo, o->log_x ? pow(10.0, xhi) : xhi, o->log_x, xt,
                            RF_PLOT_MAX_TICKS);
    }
    fputs("<g class=\"grid\" stroke=\"#e3e3e3\" stroke-width=\"1\">\n", fp);
    for (int i = 0; i < nyt; i++) fprintf(fp, "<path d=\"M%.2f %.2fH%.2f\"/>\n", f.px0, fy(&f, yt[i]), f.px1);
    for (int i = 0; i < nxt; i++) fprintf(fp, "<path d=\"M%.2f %.2fV%.2f\"/>\n", fx(&f, xt[i]), f.py0, f.py1);
    fputs("</g>\n<g class=\"axes\">\n", fp);
    fprintf(fp, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"none\" stroke=\"#333\"/>\n", f.px0,
            f.py0, f.px1 - f.px0, f.py1 - f.py0);
    char lab[64];
    for (int i = 0; i < nyt; i++) {
        double y = fy(&f, yt[i]);
        fprintf(fp, "<path class=\"tick\" stroke=\"#333\" d=\"M%.2f %.2fh-5\"/>\n", f.px0, y);
        rf_plot_format(yt[i], lab, sizeof lab);
        text(fp, f.px0 - 8, y + 4, "end", "ylab", NULL, lab);
    }
    for (int i = 0; i < nxt; i++) {
        double x = fx(&f, xt[i]);
        fprintf(fp, "<path class=\"tick\" stroke=\"#333\" d=\"M%.2f %.2fv5\"/>\n", x, f.py1);
        const char *l = o->n_xticks > 0 && o->xtick_label && o->xtick_label[i] ? o->xtick_label[i] : NULL;
        if (!l) rf_plot_format(xt[i], lab, sizeof lab), l = lab;
        text(fp, x, f.py1 + 19, "middle", "xlab", NULL, l);
    }
    if (o->xlabel && *o->xlabel) text(fp, (f.px0 + f.px1) / 2, H - 14, "middle", "xtitle", NULL, o->xlabel);
    if (o->ylabel && *o->ylabel) {
        char rot[96];
        double yc = (f.py0 + f.py1) / 2;
        snprintf(rot, sizeof rot, " transform=\"rotate(-90 18 %.2f)\"", yc);
        text(fp, 18, yc, "middle", "ytitle", rot, o->ylabel);
    }
    if (!npts) text(fp, (f.px0 + f.px1) / 2, (f.py0 + f.py1) / 2, "middle", "nodata", " fill=\"#888\"", "no data");
    fputs("</g>\n", fp);

    for (int j = 0; j < ns; j++) draw_series(fp, &f, &s[j], j, ns);

    /* legend */
    fputs("<g class=\"legend\">\n", fp);
    double ly = f.py0 + 10;
    for (int j = 0; j < ns; j++) {
        if (!s[j].name || !*s[j].name) continue;
        const char *color = PALETTE[j % N_COLORS];
        double lx = f.px1 + 16;
        fprintf(fp, "<path stroke=\"%s\" stroke-width=\"1.8\" d=\"M%.2f %.2fh24\"/>\n", color, lx, ly);
        marker(fp, j, lx + 12, ly, 4.0, color, "key");
        fputs("/>\n", fp);
        text(fp, lx + 32, ly + 4, "start", "name", NULL, s[j].name);
        ly += 20;
    }
    fputs("</g>\n</svg>\n", fp);
    return RF_OK;
}

rf_status rf_plot_svg(const rf_plot_opts *o, const rf_plot_series *s, int n_series, char **svg, rf_error *err)
{
    *svg = NULL;
    rf_status st = check_input(o, s, n_series, err);
    if (st) return st;
    char *buf = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&buf, &len);
    if (!fp) return rf_errorf(err, RF_ENOMEM, "plot: out of memory");
    st = render(fp, o, s, n_series);
    int bad = ferror(fp);
    if (fclose(fp) || bad || !buf) {
        free(buf);
        return rf_errorf(err, RF_ENOMEM, "plot: out of memory");
    }
    if (st) {
        free(buf);
        return st;
    }
    *svg = buf;
    return RF_OK;
}

rf_status rf_plot_svg_write(const rf_plot_opts *o, const rf_plot_series *s, int n_series, const char *path,
                            rf_error *err)
{
    char *svg = NULL;
    rf_status st = rf_plot_svg(o, s, n_series, &svg, err);
    if (st) return st;
    st = rf_write_atomic(path, svg, strlen(svg), err);
    free(svg);
    return st;
}
