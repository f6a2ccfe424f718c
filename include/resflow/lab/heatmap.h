/* heatmap.h - self-contained SVG heatmaps (no dependencies), e.g. the hidden features and
 * residual logits of sampled rows (paper Fig. 4, `resflow probe`).
 *
 * A figure is one or more panels side by side that share their rows and one diverging colour
 * scale (blue < 0 < red, white at 0, clipped to [-limit, limit]); rows may be split into labelled
 * bands (e.g. the groups A, B, C), drawn with a gap between them. Colours are quantised to
 * RF_HEAT_LEVELS levels; each level is one <path> whose cells are merged into horizontal runs,
 * which keeps a 30 x 64 panel around 15 KB. NaN/Inf cells are grey. SVG 1.1, UTF-8.
 */
#ifndef RESFLOW_HEATMAP_H
#define RESFLOW_HEATMAP_H

#include <stddef.h>

#include "../resflow.h"

#ifdef __cplusplus
extern "C" {
#endif

#define RF_HEAT_LEVELS 33 /* colour levels (odd: the middle one is 0) */

typedef struct {
    const char *title;             /* above the panel; '\n' breaks lines; may be NULL */
    const float *v;                /* (rows, cols) values, row stride ld (>= cols) */
    int cols;
    size_t ld;
    const char *const *col_labels; /* (cols) column captions, or NULL */
    int cell_w;                    /* cell width in pixels; 0 = the figure's */
    int annotate;                  /* 1: print each value ("%.2f") in its cell */
} rf_heat_panel;

typedef struct {
    const char *title;              /* figure title; may be NULL */
    int rows;                       /* rows of every panel (>= 1) */
    int n_bands;                    /* row bands (0 = none) */
    const int *band_start;          /* (n_bands) first row of each band, strictly ascending, [0] = 0 */
    const char *const *band_label;  /* (n_bands) labels left of the bands ('\n' breaks lines) */
    const char *const *row_label;   /* (rows) labels left of each row, or NULL (8 px text: on rows
                                       lower than 9 px every k-th row, so labels never overlap) */
    int n_panels;                   /* >= 1 */
    const rf_heat_panel *panels;
    float limit;                    /* colour scale [-limit, limit]; <= 0: the largest finite |v| */
    const char *scale_label;        /* legend caption, or NULL */
    const char *note;               /* footnote under the legend, or NULL */
    int cell_w, cell_h;             /* pixels; 0 = 4 x 8 */
} rf_heatmap;

typedef struct {
    size_t cells;     /* cells drawn (rows x total columns) */
    size_t nan_cells; /* of which not finite (grey) */
    float limit;      /* the colour scale used */
    int width, height;
} rf_heatmap_info;

/* The SVG document as a NUL-terminated string (*svg, free() it). info may be NULL. */
RF_API rf_status rf_heatmap_svg(const rf_heatmap *h, char **svg, rf_heatmap_info *info, rf_error *err) RF_WUR;
/* The colour of value v on the scale [-limit, limit] as "#rrggbb" (out: 8 bytes). */
RF_API void rf_heat_colour(float v, float limit, char out[8]);

#ifdef __cplusplus
}
#endif
#endif
