/* plot.h - a self-contained SVG line plot: one series per model, markers, error bars.
 *
 * What is drawn (docs/results-sweeps.md shows examples):
 *   - one polyline per series through its points in increasing x, broken where a point is
 *     missing (non-finite x or y: the point is skipped, not drawn and not joined across);
 *   - a marker at every point (shape and colour per series: circle, square, triangle, diamond,
 *     ... over a colour-blind-safe palette), with a <title> tooltip "name: x = X, y = Y ± E";
 *   - an error bar y ± err[i] with caps where err is given and err[i] is finite and > 0.
 *     What err means is the caller's choice; resflow's sweeps pass the sample standard
 *     deviation over seeds (n - 1), i.e. the bar spans mean ± std;
 *   - with several series, series i is shifted horizontally by (i - (S-1)/2) * 4 pixels so
 *     that error bars at the same x stay apart (the x value itself is unchanged);
 *   - a linear or log10 x axis, a linear y axis covering every bar, light grid lines at the
 *     ticks, axis labels, a title and a legend to the right of the plot area.
 *
 * Ticks (rf_plot_ticks): linear axes get multiples of a step 1, 2 or 5 x 10^k, the one
 * closest to 5 intervals over the range; log axes
 * get the powers of ten inside the range, and 2x and 5x of them when that gives fewer than 3,
 * and every integer multiple when still fewer than 2. A caller may give the x ticks itself
 * (e.g. at the swept values, labelled as typed: "1e-4").
 *
 * The output is UTF-8 XML with every text escaped; the elements carry classes (pt, err, line,
 * key, tick) so tests and stylesheets can find them. Library code: no printing, no global state.
 */
#ifndef RESFLOW_PLOT_H
#define RESFLOW_PLOT_H

#include <stddef.h>

#include "../resflow.h"

#ifdef __cplusplus
extern "C" {
#endif

#define RF_PLOT_MAX_TICKS 64

typedef struct {
    const char *name;  /* legend label (NULL or "" = no legend entry) */
    int n;             /* points */
    const double *x, *y;
    const double *err; /* error-bar half-lengths (y ± err[i]); NULL = no bars */
} rf_plot_series;

typedef struct {
    const char *title, *xlabel, *ylabel; /* NULL = none */
    int log_x;                           /* log10 x axis: every drawn x (and tick) must be > 0 */
    int width, height;                   /* pixels; 0 = 720 x 440 */
    /* x ticks given by the caller: n_xticks > 0 positions xtick[i], labelled xtick_label[i]
     * (NULL labels, or a NULL entry: the number). 0 = automatic (rf_plot_ticks). */
    int n_xticks;
    const double *xtick;
    const char *const *xtick_label;
} rf_plot_opts;

/* Tick positions for an axis over [lo, hi] (lo <= hi, finite; for a log axis 0 < lo), in
 * increasing order, written to ticks[0..cap); returns how many (at most cap). */
RF_API int rf_plot_ticks(double lo, double hi, int log_scale, double *ticks, int cap);

/* A number as a short tick label: "0.805", "16", "1e-4", "2.5e+06". */
RF_API void rf_plot_format(double v, char *buf, size_t n);

/* The plot as an SVG document (malloc'ed, NUL-terminated; the caller frees *svg).
 * Errors: RF_EUSAGE for a non-positive x (of a drawn point or a tick) on a log axis, a negative
 * point count, NULL arrays, or a size below 200 x 150; RF_ENOMEM. */
RF_API rf_status rf_plot_svg(const rf_plot_opts *o, const rf_plot_series *s, int n_series, char **svg,
                             rf_error *err);
/* The same, written to path (via path.tmp, then renamed). */
RF_API rf_status rf_plot_svg_write(const rf_plot_opts *o, const rf_plot_series *s, int n_series, const char *path,
                                   rf_error *err);

#ifdef __cplusplus
}
#endif
#endif
