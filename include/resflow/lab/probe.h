/* probe.h - probing the learned residuals of a tower model (paper §4.4, Fig. 4).
 *
 * Rows are grouped along the task path root -> leaf (e.g. ctr -> ctcvr): group A has every
 * path task positive, B all but the leaf, ..., the last group none (for ctr -> ctcvr: A click
 * and order, B click without order, C no click). Rows whose labels are not monotone along the
 * path (a task positive below a negative one) belong to no group and are counted. N rows per
 * group are drawn deterministically from a seed (or, with per_key, N group keys - queries or
 * users - that have a row of every group, and one row of each group per key, like the paper's
 * 10 users x 3 items). One inference forward pass (BN with its running statistics) then gives,
 * per tower k and hidden layer l:
 *
 *   block f_k^l = BN(act(W_k^l o_k^{l-1} + b_k^l))       the tower's own block output; with a
 *                                                       link behind l this is the learned residual
 *   out   o_k^l = f_k^l + o_parent(k)^l  (link on)     the layer output the next layer reads
 *         o_k^l = f_k^l                  (link off, NSE)
 *
 * and per task the final logit s_k, the residual logit r_k (what tower k adds to s_parent(k):
 * w_k . o_k^{L-1} + b_k, clamped at 0 under M3; = s_k - s_parent(k) up to rounding) and the
 * probability. Without a logit link (NSE, ESMM, M4) r_k is the tower's whole own logit
 * (ESMM/M4: the conditional logit, e.g. of pCVR). Works for resflow, nse and esmm; the model
 * zoo is rejected with RF_EUSAGE.
 */
#ifndef RESFLOW_PROBE_H
#define RESFLOW_PROBE_H

#include <stdint.h>

#include "heatmap.h"
#include "../model.h"

#ifdef __cplusplus
extern "C" {
#endif

#define RF_PROBE_MAX_GROUPS (RF_MAX_TASKS + 1)

typedef struct {
    int leaf;      /* task index of the path's end; -1 = the last task */
    int rows;      /* rows per group (N >= 1); with per_key, keys */
    uint64_t seed; /* sampling seed */
    int per_key;   /* 1: N keys (ds->group) with a row of every group, one row of each group per key */
} rf_probe_opts;

RF_API rf_probe_opts rf_probe_default(void); /* last task, 10 rows, seed 1, per_key 0 */

typedef struct {
    double mean, std; /* std: population standard deviation; NaN when n == 0 */
    size_t n;
} rf_probe_stat;

typedef struct {
    int K, L, H[RF_MAX_LAYERS];
    int leaf, depth;               /* probed task; tasks on the path */
    int path[RF_MAX_TASKS];        /* path task indices, root first, path[depth-1] = leaf */
    int n_groups;                  /* depth + 1; group g: the first depth - g path tasks positive */
    char group_name[RF_PROBE_MAX_GROUPS][8];    /* "A", "B", ... */
    char group_desc[RF_PROBE_MAX_GROUPS][160];  /* e.g. "ctr=1 ctcvr=0" */
    size_t available[RF_PROBE_MAX_GROUPS];      /* rows (per_key: keys) of each group in the data */
    size_t eligible_keys;                       /* per_key: keys with a row of every group */
    size_t inconsistent;           /* rows in no group (non-monotone labels along the path) */
    int per_group;                 /* N */
    int per_key;                   /* sampled per key (rf_probe_opts.per_key) */
    size_t n;                      /* n_groups * N rows, group-major (per_key: same key order in every group) */
    size_t *row;                   /* (n) dataset rows */
    int *group;                    /* (n) */
    uint64_t *key;                 /* (n) group key of each row, or NULL when ds has none */
    float *label;                  /* (n, K) task labels */
    int link[RF_MAX_LAYERS + 1];   /* link behind hidden layer l; [L] the logit link */
    float *block[RF_MAX_LAYERS];   /* (n, K*H_l) f_k^l, tower k in columns [k*H_l, (k+1)*H_l) */
    float *out[RF_MAX_LAYERS];     /* (n, K*H_l) o_k^l */
    float *logit;                  /* (n, K) s_k */
    float *residual;               /* (n, K) r_k */
    float *prob;                   /* (n, K) p_k (ESMM: the entire-space product) */

    /* summaries over the N rows of each group g */
    rf_probe_stat res[RF_PROBE_MAX_GROUPS];  /* r_leaf */
    rf_probe_stat gap[RF_PROBE_MAX_GROUPS];  /* s_leaf - s_parent(leaf) (n = 0 for a root leaf) */
    rf_probe_stat p[RF_PROBE_MAX_GROUPS];    /* p_leaf */
    /* per hidden layer l, path position d (task path[d]), kind 0 = out, 1 = block:
     * mag[((l*depth + d)*2 + kind)*n_groups + g] = mean over rows of mean_j |x_j| (with std),
     * sep[(l*depth + d)*2 + kind] = Calinski-Harabasz index of the groups in that feature space
     * (between-group over within-group variance, each per degree of freedom; higher = groups
     * further apart relative to their spread; NaN when undefined) */
    rf_probe_stat *mag;
    double *sep;
} rf_probe;

/* Group of one row from the labels of the path tasks y[0..depth) (root first; > 0.5 is
 * positive): 0 when all are positive ... depth when none is; -1 when not monotone. */
RF_API int rf_probe_group(const float *y, int depth);

/* Sample, run the forward pass and summarise (see above). ds needs the tasks' labels.
 * Errors: a zoo model or unknown leaf (RF_EUSAGE), a group with fewer than N rows or keys
 * (RF_EDATA, naming the group and its count), per_key without ds->group (RF_EUSAGE). */
RF_API rf_status rf_probe_run(rf_model *m, const rf_dataset *ds, const rf_probe_opts *o, rf_probe **out,
                              rf_error *err) RF_WUR;
RF_API void rf_probe_free(rf_probe *p);

/* Heatmaps of the first `rows` rows of each group (<= N; 0 = all), at most max_units units
 * per tower (0 = all):
 * rf_probe_svg_layer: hidden layer l, one panel per path task - the root's output o^l, then for
 *   each child on the path its block f^l ("residual" when the link is on) and, when the link is
 *   on, its output o^l ("recovered by summation"); NSE gives one panel per tower.
 * rf_probe_svg_logits: columns s_k of every path task and r_k of every child, annotated.
 * model_label names the model in the titles (e.g. "ResFlow"); limit is the colour scale
 * (<= 0: the largest |value| shown). *svg is malloc'ed. */
RF_API rf_status rf_probe_svg_layer(const rf_probe *p, const rf_model *m, int l, int rows, int max_units,
                                    float limit, const char *model_label, char **svg, rf_error *err) RF_WUR;
RF_API rf_status rf_probe_svg_logits(const rf_probe *p, const rf_model *m, int rows, float limit,
                                     const char *model_label, char **svg, rf_error *err) RF_WUR;

#ifdef __cplusplus
}
#endif
#endif
