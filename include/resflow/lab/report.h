/* report.h - one self-contained HTML page of a training run or an experiment (`resflow train
 * --report DIR`, `resflow report`, `resflow experiment`'s OUT/report.html).
 *
 * A report is a title and a sequence of blocks, written in the order they are added: headings,
 * paragraphs, tables and figures. Figures are inline SVG (rf_plot_svg, lab/plot.h), so the page
 * needs no network, no script and no other file. Every text is HTML-escaped. The page carries
 * classes tests can find: <table class="rf-table"> (one <tr> per row), <figure class="rf-fig">
 * holding one <svg>, <p class="rf-note"> for notes.
 *
 * Calibration (rf_report_calibration): the rows sorted by predicted probability and cut into
 * `bins` groups of (nearly) equal count; one point per group at (mean prediction, observed rate)
 * with the diagonal y = x for reference: a calibrated model's points lie on it.
 *
 * Library code: no printing, no global state; appends report RF_ENOMEM, the page is written
 * atomically (afile.h).
 */
#ifndef RESFLOW_REPORT_H
#define RESFLOW_REPORT_H

#include <stddef.h>

#include "../resflow.h"
#include "plot.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rf_report rf_report;

/* An empty report titled title (NULL = "resflow report"); NULL when out of memory. */
RF_API rf_report *rf_report_create(const char *title);
RF_API void rf_report_free(rf_report *r);

/* A section heading (<h2>). */
RF_API rf_status rf_report_heading(rf_report *r, const char *text, rf_error *err);
/* A paragraph; note = 1 styles it as a note (class rf-note). */
RF_API rf_status rf_report_text(rf_report *r, const char *text, int note, rf_error *err);
/* A table: ncols header cells head[0..ncols), nrows rows of cells cell[i*ncols + j] (NULL = empty);
 * caption may be NULL. Cells that read as numbers are right-aligned. */
RF_API rf_status rf_report_table(rf_report *r, const char *caption, int ncols, const char *const *head, int nrows,
                                 const char *const *cell, rf_error *err);
/* A line plot (rf_plot_svg) as a figure with a caption (NULL = the plot's title). */
RF_API rf_status rf_report_plot(rf_report *r, const char *caption, const rf_plot_opts *o, const rf_plot_series *s,
                                int n_series, rf_error *err);
/* A calibration plot of probabilities p[i*pstride] against 0/1 labels y[i*ystride], i < n, in
 * bins (2..100) equal-count groups (see above); name titles it. n == 0: a note instead. */
RF_API rf_status rf_report_calibration(rf_report *r, const char *name, const float *p, size_t pstride,
                                       const float *y, size_t ystride, size_t n, int bins, rf_error *err);
/* The page as HTML text (malloc'ed; the caller frees), or write it to path atomically. */
RF_API rf_status rf_report_html(const rf_report *r, char **html, rf_error *err);
RF_API rf_status rf_report_write(const rf_report *r, const char *path, rf_error *err);

#ifdef __cplusplus
}
#endif
#endif
