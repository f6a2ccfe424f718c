/* heatmap.c - self-contained SVG heatmaps (include/resflow/lab/heatmap.h).
 *
 * Layout, top to bottom: figure title, panel titles (and column captions), the cells (bands of
 * rows separated by a gap, band and row labels on the left), the colour legend, a footnote.
 * Cells are quantised to RF_HEAT_LEVELS colours; all cells of one level form one <path> of
 * horizontal strokes as wide as a cell is high, one per run of equal levels along a row.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resflow/lab/heatmap.h"
#include "core/sbuf.h"
#include "lab/xml.h"

/* ---- text ---------------------------------------------------------------------------------- */

/* Text content with XML escapes, up to a newline or the end (returns the rest, or NULL). */
static const char *sb_text(sbuf *b, const char *s)
{
    for (; *s && *s != '\n'; s++) {
        const char *r = xml_escape(*s);
        if (r) sb_puts(b, r);
        else sb_char(b, *s);
    }
    return *s == '\n' ? s + 1 : NULL;
}

/* <text> of one or more lines ('\n'), first baseline at y, line height lh. */
static void sb_label(sbuf *b, double x, double y, double lh, const char *attrs, const char *s)
{
    if (!s || !*s) return;
    sb_printf(b, "<text x=\"%.1f\" y=\"%.1f\" %s>", x, y, attrs);
    int first = 1;
    while (s) {
        sb_printf(b, "<tspan x=\"%.1f\" dy=\"%.1f\">", x, first ? 0.0 : lh);
        s = sb_text(b, s);
        sb_printf(b, "</tspan>");
        first = 0;
    }
    sb_printf(b, "</text>\n");
}

static int n_lines(const char *s)
{
    if (!s || !*s) return 0;
    int n = 1;
    for (; *s; s++) n += *s == '\n';
    return n;
}

static int longest_line(const char *s)
{
    int best = 0, cur = 0;
    for (; s && *s; s++) {
        if (*s == '\n') cur = 0;
        else if (((unsigned char)*s & 0xC0) != 0x80 && ++cur > best) best = cur; /* UTF-8 characters */
    }
    return best;
}

/* ---- colours ----------------------------------------------------------------------------- */

/* ColorBrewer RdBu (11 classes), from blue (-1) through white (0) to red (+1). */
static const unsigned char rdbu[11][3] = {
    {0x05, 0x30, 0x61}, {0x21, 0x66, 0xac}, {0x43, 0x93, 0xc3}, {0x92, 0xc5, 0xde},
    {0xd1, 0xe5, 0xf0}, {0xf7, 0xf7, 0xf7}, {0xfd, 0xdb, 0xc7}, {0xf4, 0xa5, 0x82},
    {0xd6, 0x60, 0x4d}, {0xb2, 0x18, 0x2b}, {0x67, 0x00, 0x1f}};

void rf_heat_colour(float v, float limit, char out[8])
{
    double t = limit > 0 && isfinite(v) ? v / limit : 0.0;
    if (!isfinite(v)) {
        snprintf(out, 8, "#999999");
        return;
    }
    if (t < -1) t = -1;
    if (t > 1) t = 1;
    double u = (t + 1) / 2 * 10;
    int i = (int)u;
    if (i > 9) i = 9;
    double f = u - i;
    int c[3];
    for (int j = 0; j < 3; j++) c[j] = (int)lround(rdbu[i][j] + f * (rdbu[i + 1][j] - rdbu[i][j]));
    snprintf(out, 8, "#%02x%02x%02x", c[0], c[1], c[2]);
}

/* Level in [0, RF_HEAT_LEVELS) of v, -1 when not finite; and the value at a level's centre. */
static int level_of(float v, float limit)
{
    if (!isfinite(v)) return -1;
    double t = v / limit;
    if (t < -1) t = -1;
    if (t > 1) t = 1;
    return (int)lround((t + 1) / 2 * (RF_HEAT_LEVELS - 1));
}
static float level_value(int lev, float limit) { return (float)((2.0 * lev / (RF_HEAT_LEVELS - 1) - 1) * limit); }

/* ---- the figure --------------------------------------------------------------------------- */

static rf_status check(const rf_heatmap *h, rf_error *err)
{
    if (h->rows < 1) return rf_errorf(err, RF_EUSAGE, "heatmap: %d rows", h->rows);
    if (h->n_panels < 1 || !h->panels) return rf_errorf(err, RF_EUSAGE, "heatmap: no panels");
    for (int i = 0; i < h->n_panels; i++) {
        const rf_heat_panel *p = &h->panels[i];
        if (p->cols < 1 || !p->v || p->ld < (size_t)p->cols || p->cell_w < 0)
            return rf_errorf(err, RF_EUSAGE, "heatmap: panel %d has %d columns, stride %zu%s", i, p->cols, p->ld,
                             p->v ? "" : " and no values");
    }
    if (h->n_bands < 0 || (h->n_bands > 0 && (!h->band_start || h->band_start[0] != 0)))
        return rf_errorf(err, RF_EUSAGE, "heatmap: the first band must start at row 0");
    for (int i = 1; i < h->n_bands; i++)
        if (h->band_start[i] <= h->band_start[i - 1] || h->band_start[i] >= h->rows)
            return rf_errorf(err, RF_EUSAGE, "heatmap: band %d starts at row %d (rows %d, previous band at %d)", i,
                             h->band_start[i], h->rows, h->band_start[i - 1]);
    if (h->cell_w < 0 || h->cell_h < 0) return rf_errorf(err, RF_EUSAGE, "heatmap: negative cell size");
    return RF_OK;
}

rf_status rf_heatmap_svg(const rf_heatmap *h, char **svg, rf_heatmap_info *info, rf_error *err)
{
    *svg = NULL;
    rf_status st = check(h, err);
    if (st) return st;
    int cw = h->cell_w ? h->cell_w : 4, ch = h->cell_h ? h->cell_h : 8, R = h->rows;
    int gap = h->n_bands > 1 ? 6 : 0;
    const double fw = 6.2; /* approximate width of a character at font-size 11 */

    /* colour scale */
    float lim = h->limit;
    if (!(lim > 0)) {
        lim = 0;
        for (int i = 0; i < h->n_panels; i++) {
            const rf_heat_panel *p = &h->panels[i];
            for (int r = 0; r < R; r++)
                for (int c = 0; c < p->cols; c++) {
                    float v = fabsf(p->v[(size_t)r * p->ld + c]);
                    if (isfinite(v) && v > lim) lim = v;
                }
        }
        if (!(lim > 0)) lim = 1;
    }

    /* geometry */
    int band_w = 0, row_w = 0, title_lines = 0, caps = 0;
    for (int i = 0; i < h->n_bands; i++)
        if (h->band_label && longest_line(h->band_label[i]) * fw > band_w) band_w = (int)(longest_line(h->band_label[i]) * fw);
    for (int r = 0; h->row_label && r < R; r++)
        if (longest_line(h->row_label[r]) * 5 > row_w) row_w = longest_line(h->row_label[r]) * 5;
    for (int i = 0; i < h->n_panels; i++) {
        if (n_lines(h->panels[i].title) > title_lines) title_lines = n_lines(h->panels[i].title);
        if (h->panels[i].col_labels) caps = 1;
    }
    int left = 8 + (band_w ? band_w + 8 : 0) + (row_w ? row_w + 4 : 0);
    int y_title = h->title && *h->title ? 20 : 0;
    int y0 = (y_title ? 32 : 8) + title_lines * 13 + caps * 12 + 4;
    int data_h = R * ch + (h->n_bands > 1 ? (h->n_bands - 1) * gap : 0);
    int *px = malloc((size_t)h->n_panels * sizeof *px), *pw = malloc((size_t)h->n_panels * sizeof *pw);
    int *ry = malloc((size_t)R * sizeof *ry);
    if (!px || !pw || !ry) {
        free(px), free(pw), free(ry);
        return rf_errorf(err, RF_ENOMEM, "heatmap: out of memory");
    }
    int x = left;
    for (int i = 0; i < h->n_panels; i++) {
        const rf_heat_panel *p = &h->panels[i];
        pw[i] = p->cols * (p->cell_w ? p->cell_w : cw);
        px[i] = x;
        int slot = pw[i], tw = (int)(longest_line(p->title) * fw) + 4;
        if (tw > slot) slot = tw;
        x += slot + 16;
    }
    for (int r = 0, band = 0; r < R; r++) {
        while (band + 1 < h->n_bands && r >= h->band_start[band + 1]) band++;
        ry[r] = y0 + r * ch + band * gap;
    }
    int y_leg = y0 + data_h + 16, leg_w = RF_HEAT_LEVELS * 6;
    int width = x - 16 + 8;
    if (left + leg_w + 260 > width) width = left + leg_w + 260;
    if (h->title && (int)(longest_line(h->title) * 7.5) + 16 > width) width = (int)(longest_line(h->title) * 7.5) + 16;
    int height = y_leg + 10 + 16 + (h->note && *h->note ? 14 * n_lines(h->note) : 0) + 8;

    sbuf b = {0};
    sb_printf(&b,
              "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
              "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"%d\" height=\"%d\" "
              "viewBox=\"0 0 %d %d\" font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\">\n"
              "<rect width=\"%d\" height=\"%d\" fill=\"#ffffff\"/>\n",
              width, height, width, height, width, height);
    if (y_title) sb_label(&b, 8, y_title, 15, "font-size=\"14\" font-weight=\"bold\"", h->title);

    /* band and row labels */
    int x_end = px[h->n_panels - 1] + pw[h->n_panels - 1];
    for (int i = 0; i < h->n_bands; i++) {
        int r0 = h->band_start[i], r1 = i + 1 < h->n_bands ? h->band_start[i + 1] : R;
        double mid = (ry[r0] + ry[r1 - 1] + ch) / 2.0;
        const char *lab = h->band_label ? h->band_label[i] : NULL;
        sb_label(&b, 8, mid - (n_lines(lab) - 1) * 6.5 + 4, 13, "font-size=\"11\"", lab);
        if (i > 0) /* separator in the gap, across the panels */
            sb_printf(&b, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#444444\" stroke-width=\"1\"/>\n",
                      8, ry[r0] - gap / 2.0, x_end, ry[r0] - gap / 2.0);
    }
    /* row labels at a readable 8 px: on rows lower than 9 px only every step-th row is labelled
     * (the first of each band always), so that labels never overlap */
    int step = ch >= 9 ? 1 : (9 + ch - 1) / ch, since = step;
    for (int r = 0; h->row_label && r < R; r++) {
        int band_start = r == 0 || (r > 0 && ry[r] - ry[r - 1] > ch + 0.5);
        if (band_start) since = step;
        if (since++ < step) continue;
        since = 1;
        sb_label(&b, left - 4, ry[r] + ch / 2.0 + 3, 0, "font-size=\"8\" text-anchor=\"end\"", h->row_label[r]);
    }

    /* panel titles and column captions */
    for (int i = 0; i < h->n_panels; i++) {
        const rf_heat_panel *p = &h->panels[i];
        int nl = n_lines(p->title);
        sb_label(&b, px[i], y0 - caps * 12 - 4 - (nl - 1) * 13 - 2, 13, "font-size=\"11\"", p->title);
        int pcw = p->cell_w ? p->cell_w : cw;
        for (int c = 0; p->col_labels && c < p->cols; c++)
            sb_label(&b, px[i] + c * pcw + pcw / 2.0, y0 - 5, 0, "font-size=\"9\" text-anchor=\"middle\"",
                     p->col_labels[c]);
    }

    /* cells: one path per colour level; a run of equal levels along a row is one horizontal
     * stroke of width ch (butt caps: an exact rectangle), "M x y h w", the next run on the same
     * row relative to the end of the previous one, "m dx 0 h w" */
    size_t cells = 0, nan_cells = 0;
    for (int lev = -1; lev < RF_HEAT_LEVELS; lev++) {
        int opened = 0;
        for (int i = 0; i < h->n_panels; i++) {
            const rf_heat_panel *p = &h->panels[i];
            int pcw = p->cell_w ? p->cell_w : cw;
            for (int r = 0; r < R; r++) {
                const float *v = p->v + (size_t)r * p->ld;
                int at = -1; /* x where the pen is on this row, -1 = not on this row yet */
                for (int c = 0; c < p->cols;) {
                    if (level_of(v[c], lim) != lev) {
                        c++;
                        continue;
                    }
                    int c1 = c + 1;
                    while (c1 < p->cols && level_of(v[c1], lim) == lev) c1++;
                    if (!opened) {
                        char col[8];
                        if (lev < 0) snprintf(col, sizeof col, "#999999");
                        else rf_heat_colour(level_value(lev, lim), lim, col);
                        sb_printf(&b, "<path class=\"%s\" stroke=\"%s\" stroke-width=\"%d\" fill=\"none\" "
                                  "shape-rendering=\"crispEdges\" d=\"", lev < 0 ? "nan" : "cells", col, ch);
                        opened = 1;
                    }
                    int x0 = px[i] + c * pcw, w = (c1 - c) * pcw;
                    if (at < 0) sb_printf(&b, "M%d %gh%d", x0, ry[r] + ch / 2.0, w);
                    else sb_printf(&b, "m%d 0h%d", x0 - at, w);
                    at = x0 + w;
                    cells += (size_t)(c1 - c);
                    if (lev < 0) nan_cells += (size_t)(c1 - c);
                    c = c1;
                }
            }
        }
        if (opened) sb_printf(&b, "\"/>\n");
    }
    /* values written in annotated panels */
    for (int i = 0; i < h->n_panels; i++) {
        const rf_heat_panel *p = &h->panels[i];
        if (!p->annotate) continue;
        int pcw = p->cell_w ? p->cell_w : cw;
        int fs = ch - 2 < 9 ? (ch - 2 > 4 ? ch - 2 : 4) : 9;
        for (int r = 0; r < R; r++)
            for (int c = 0; c < p->cols; c++) {
                float v = p->v[(size_t)r * p->ld + c];
                char txt[32], attrs[96];
                if (isfinite(v)) snprintf(txt, sizeof txt, "%.2f", v);
                else snprintf(txt, sizeof txt, "%s", isnan(v) ? "NaN" : v > 0 ? "Inf" : "-Inf");
                int dark = isfinite(v) && fabsf(v) > 0.6f * lim;
                snprintf(attrs, sizeof attrs, "font-size=\"%d\" text-anchor=\"middle\" fill=\"%s\"", fs,
                         dark ? "#ffffff" : "#000000");
                sb_label(&b, px[i] + c * pcw + pcw / 2.0, ry[r] + ch / 2.0 + fs / 2.8, 0, attrs, txt);
            }
    }
    /* panel frames */
    for (int i = 0; i < h->n_panels; i++)
        sb_printf(&b, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"#888888\" stroke-width=\"0.5\"/>\n",
                  px[i], y0, pw[i], data_h);

    /* legend: one swatch per level, ticks at -limit, 0, +limit */
    sb_printf(&b, "<g class=\"legend\">\n");
    for (int lev = 0; lev < RF_HEAT_LEVELS; lev++) {
        char col[8];
        rf_heat_colour(level_value(lev, lim), lim, col);
        sb_printf(&b, "<rect x=\"%d\" y=\"%d\" width=\"6\" height=\"10\" fill=\"%s\"/>", left + lev * 6, y_leg, col);
    }
    sb_printf(&b, "\n");
    char tick[48];
    snprintf(tick, sizeof tick, "%.3g", -lim);
    sb_label(&b, left, y_leg + 22, 0, "font-size=\"9\" text-anchor=\"middle\"", tick);
    sb_label(&b, left + leg_w / 2.0, y_leg + 22, 0, "font-size=\"9\" text-anchor=\"middle\"", "0");
    snprintf(tick, sizeof tick, "%.3g", lim);
    sb_label(&b, left + leg_w, y_leg + 22, 0, "font-size=\"9\" text-anchor=\"middle\"", tick);
    int lx = left + leg_w + 10;
    if (nan_cells) {
        sb_printf(&b, "<rect x=\"%d\" y=\"%d\" width=\"10\" height=\"10\" fill=\"#999999\"/>", lx, y_leg);
        sb_label(&b, lx + 13, y_leg + 9, 0, "font-size=\"9\"", "not finite");
        lx += 70;
    }
    if (h->scale_label) sb_label(&b, lx, y_leg + 9, 0, "font-size=\"10\"", h->scale_label);
    sb_printf(&b, "</g>\n");
    if (h->note && *h->note) sb_label(&b, 8, y_leg + 38, 14, "font-size=\"10\" fill=\"#333333\"", h->note);
    sb_printf(&b, "</svg>\n");
    free(px), free(pw), free(ry);
    if (b.oom) {
        free(b.p);
        return rf_errorf(err, RF_ENOMEM, "heatmap: out of memory");
    }
    if (info) {
        info->cells = cells;
        info->nan_cells = nan_cells;
        info->limit = lim;
        info->width = width;
        info->height = height;
    }
    *svg = b.p;
    return RF_OK;
}
