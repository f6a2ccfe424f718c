/* report.c - self-contained HTML reports: headings, notes, tables and inline SVG figures
 * (include/resflow/lab/report.h). The body is built in a text buffer; the page is the head (title,
 * a small stylesheet), the body and the footer.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/sbuf.h"
#include "lab/xml.h"
#include "resflow/afile.h"
#include "resflow/lab/report.h"

struct rf_report {
    char *title;
    sbuf body;
};

static const char *const STYLE =
    "body{font-family:system-ui,-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;margin:24px auto;"
    "max-width:1200px;color:#222;line-height:1.4}\n"
    "h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.25em;margin-top:1.6em;border-bottom:1px solid #ddd}\n"
    "table.rf-table{border-collapse:collapse;margin:.6em 0 1em;font-variant-numeric:tabular-nums}\n"
    "table.rf-table caption{text-align:left;font-weight:600;padding:.3em 0}\n"
    "table.rf-table th,table.rf-table td{border:1px solid #ccc;padding:3px 9px}\n"
    "table.rf-table th{background:#f3f3f3}td.num{text-align:right}\n"
    "figure.rf-fig{display:inline-block;margin:.5em 1em 1em 0;vertical-align:top}\n"
    "figure.rf-fig figcaption{font-size:.9em;color:#444}\n"
    "p.rf-note{background:#fff8e1;border-left:4px solid #f0b400;padding:.4em .8em}\n";

static void esc(sbuf *b, const char *s)
{
    for (; s && *s; s++) {
        const char *e = xml_escape(*s);
        if (e)
            sb_puts(b, e);
        else
            sb_char(b, *s);
    }
}

static rf_status oom(const rf_report *r, rf_error *err)
{
    return r->body.oom ? rf_errorf(err, RF_ENOMEM, "out of memory building the report") : RF_OK;
}

rf_report *rf_report_create(const char *title)
{
    rf_report *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->title = strdup(title ? title : "resflow report");
    if (!r->title) {
        free(r);
        return NULL;
    }
    return r;
}

void rf_report_free(rf_report *r)
{
    if (!r) return;
    free(r->title);
    free(r->body.p);
    free(r);
}

rf_status rf_report_heading(rf_report *r, const char *text, rf_error *err)
{
    sb_puts(&r->body, "<h2>");
    esc(&r->body, text);
    sb_puts(&r->body, "</h2>\n");
    return oom(r, err);
}

rf_status rf_report_text(rf_report *r, const char *text, int note, rf_error *err)
{
    sb_puts(&r->body, note ? "<p class=\"rf-note\">" : "<p>");
    esc(&r->body, text);
    sb_puts(&r->body, "</p>\n");
    return oom(r, err);
}

/* A cell reads as a number: strtod takes it whole (NaN and "0.71 ± 0.01" count too). */
static int numeric(const char *s)
{
    if (!s || !*s) return 0;
    char *end;
    strtod(s, &end);
    return end != s && (*end == '\0' || *end == ' ');
}

rf_status rf_report_table(rf_report *r, const char *caption, int ncols, const char *const *head, int nrows,
                          const char *const *cell, rf_error *err)
{
    if (ncols <= 0 || nrows < 0 || !head || (nrows > 0 && !cell))
        return rf_errorf(err, RF_EUSAGE, "rf_report_table: bad shape (%d columns, %d rows)", ncols, nrows);
    sbuf *b = &r->body;
    sb_puts(b, "<table class=\"rf-table\">\n");
    if (caption) {
        sb_puts(b, "<caption>");
        esc(b, caption);
        sb_puts(b, "</caption>\n");
    }
    sb_puts(b, "<thead><tr>");
    for (int j = 0; j < ncols; j++) {
        sb_puts(b, "<th>");
        esc(b, head[j]);
        sb_puts(b, "</th>");
    }
    sb_puts(b, "</tr></thead>\n<tbody>\n");
    for (int i = 0; i < nrows; i++) {
        sb_puts(b, "<tr>");
        for (int j = 0; j < ncols; j++) {
            const char *c = cell[(size_t)i * ncols + j];
            sb_puts(b, numeric(c) ? "<td class=\"num\">" : "<td>");
            esc(b, c);
            sb_puts(b, "</td>");
        }
        sb_puts(b, "</tr>\n");
    }
    sb_puts(b, "</tbody></table>\n");
    return oom(r, err);
}

/* An SVG document as a figure: the XML declaration dropped (not allowed inside HTML). */
static void figure(sbuf *b, const char *svg, const char *caption)
{
    const char *s = strstr(svg, "<svg");
    sb_puts(b, "<figure class=\"rf-fig\">\n");
    sb_puts(b, s ? s : svg);
    if (caption && *caption) {
        sb_puts(b, "<figcaption>");
        esc(b, caption);
        sb_puts(b, "</figcaption>");
    }
    sb_puts(b, "</figure>\n");
}

rf_status rf_report_plot(rf_report *r, const char *caption, const rf_plot_opts *o, const rf_plot_series *s,
                         int n_series, rf_error *err)
{
    char *svg = NULL;
    rf_status st = rf_plot_svg(o, s, n_series, &svg, err);
    if (st) return st;
    figure(&r->body, svg, caption);
    free(svg);
    return oom(r, err);
}

typedef struct {
    float p, y;
} pred_label;

static int by_p(const void *a, const void *b)
{
    float x = ((const pred_label *)a)->p, y = ((const pred_label *)b)->p;
    return (x > y) - (x < y);
}

rf_status rf_report_calibration(rf_report *r, const char *name, const float *p, size_t pstride, const float *y,
                                size_t ystride, size_t n, int bins, rf_error *err)
{
    if (bins < 2 || bins > 100) return rf_errorf(err, RF_EUSAGE, "rf_report_calibration: bins %d not in 2..100", bins);
    char title[160];
    snprintf(title, sizeof title, "calibration: %s", name ? name : "");
    if (n == 0) {
        char t[200];
        snprintf(t, sizeof t, "%s: no rows to plot", title);
        return rf_report_text(r, t, 1, err);
    }
    pred_label *v = malloc(n * sizeof *v);
    if (!v) return rf_errorf(err, RF_ENOMEM, "out of memory");
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        float pi = p[i * pstride], yi = y[i * ystride];
        if (isfinite(pi) && isfinite(yi)) v[m++] = (pred_label){pi, yi};
    }
    qsort(v, m, sizeof *v, by_p);
    if ((size_t)bins > m) bins = m > 1 ? (int)m : 1;
    double x[100], obs[100], diag_x[2], diag_y[2];
    double lo = 1, hi = 0;
    for (int k = 0; k < bins; k++) {
        size_t a = m * (size_t)k / (size_t)bins, e = m * (size_t)(k + 1) / (size_t)bins;
        double sp = 0, sy = 0;
        for (size_t i = a; i < e; i++) {
            sp += v[i].p;
            sy += v[i].y;
        }
        x[k] = e > a ? sp / (double)(e - a) : NAN;
        obs[k] = e > a ? sy / (double)(e - a) : NAN;
        if (isfinite(x[k])) {
            lo = fmin(lo, fmin(x[k], obs[k]));
            hi = fmax(hi, fmax(x[k], obs[k]));
        }
    }
    free(v);
    if (!(hi > lo)) {
        lo = lo > 0.05 ? lo - 0.05 : 0;
        hi = lo + 0.1;
    }
    diag_x[0] = diag_y[0] = lo;
    diag_x[1] = diag_y[1] = hi;
    rf_plot_series s[2] = {{"observed rate", bins, x, obs, NULL}, {"y = x (calibrated)", 2, diag_x, diag_y, NULL}};
    rf_plot_opts o = {title, "mean predicted probability (equal-count bins)", "observed rate", 0, 560, 380, 0, NULL,
                      NULL};
    return rf_report_plot(r, NULL, &o, s, 2, err);
}

rf_status rf_report_html(const rf_report *r, char **html, rf_error *err)
{
    sbuf b = {0};
    sb_puts(&b, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>");
    esc(&b, r->title);
    sb_printf(&b, "</title>\n<style>\n%s</style>\n</head>\n<body>\n<h1>", STYLE);
    esc(&b, r->title);
    sb_puts(&b, "</h1>\n");
    if (r->body.p) sb_puts(&b, r->body.p);
    sb_printf(&b, "<footer><p><small>resflow %s</small></p></footer>\n</body>\n</html>\n", rf_version());
    if (b.oom || r->body.oom) {
        free(b.p);
        return rf_errorf(err, RF_ENOMEM, "out of memory building the report");
    }
    *html = b.p;
    return RF_OK;
}

rf_status rf_report_write(const rf_report *r, const char *path, rf_error *err)
{
    char *html = NULL;
    rf_status st = rf_report_html(r, &html, err);
    if (st) return st;
    st = rf_write_atomic(path, html, strlen(html), err);
    free(html);
    return st;
}
