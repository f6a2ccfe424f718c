/* dataset.c - allocation, slicing and lookup for in-memory columnar datasets. */
#include <stdlib.h>
#include <string.h>

#include "resflow/data.h"

rf_dataset *rf_dataset_alloc(size_t n, int F, int D, int K)
{
    rf_dataset *ds = calloc(1, sizeof *ds);
    if (!ds) return NULL;
    ds->n = n;
    ds->F = F;
    ds->D = D;
    ds->K = K;
    size_t n1 = n ? n : 1;
    ds->fields = calloc(F > 0 ? (size_t)F : 1, sizeof *ds->fields);
    ds->dense_names = calloc(D > 0 ? (size_t)D : 1, sizeof *ds->dense_names);
    ds->label_names = calloc(K > 0 ? (size_t)K : 1, sizeof *ds->label_names);
    ds->cat = calloc(n1 * (F > 0 ? (size_t)F : 1), sizeof *ds->cat);
    ds->mv_off = calloc(F > 0 ? (size_t)F : 1, sizeof *ds->mv_off);
    ds->mv_ids = calloc(F > 0 ? (size_t)F : 1, sizeof *ds->mv_ids);
    ds->dense = D > 0 ? calloc(n1 * (size_t)D, sizeof *ds->dense) : NULL;
    ds->labels = calloc(n1 * (K > 0 ? (size_t)K : 1), sizeof *ds->labels);
    if (!ds->fields || !ds->dense_names || !ds->label_names || !ds->cat || !ds->mv_off ||
        !ds->mv_ids || (D > 0 && !ds->dense) || !ds->labels) {
        rf_dataset_free(ds);
        return NULL;
    }
    return ds;
}

void rf_dataset_free(rf_dataset *ds)
{
    if (!ds) return;
    for (int f = 0; f < ds->F && ds->mv_off; f++) {
        free(ds->mv_off[f]);
        if (ds->mv_ids) free(ds->mv_ids[f]);
    }
    free(ds->mv_off);
    free(ds->mv_ids);
    free(ds->fields);
    free(ds->dense_names);
    free(ds->label_names);
    free(ds->cat);
    free(ds->dense);
    free(ds->labels);
    free(ds->weight);
    free(ds->group);
    free(ds->truth);
    free(ds);
}

rf_dataset *rf_dataset_slice(const rf_dataset *src, const size_t *rows, size_t n)
{
    rf_dataset *ds = rf_dataset_alloc(n, src->F, src->D, src->K);
    if (!ds) return NULL;
    int F = src->F, D = src->D, K = src->K;
    memcpy(ds->fields, src->fields, (size_t)F * sizeof *ds->fields);
    if (D) memcpy(ds->dense_names, src->dense_names, (size_t)D * sizeof *ds->dense_names);
    memcpy(ds->label_names, src->label_names, (size_t)K * sizeof *ds->label_names);
    if (src->weight && !(ds->weight = malloc((n ? n : 1) * sizeof *ds->weight))) goto oom;
    if (src->group && !(ds->group = malloc((n ? n : 1) * sizeof *ds->group))) goto oom;
    if (src->truth && !(ds->truth = malloc((n ? n : 1) * (size_t)K * sizeof *ds->truth))) goto oom;
    for (size_t i = 0; i < n; i++) {
        size_t r = rows[i];
        memcpy(ds->cat + i * F, src->cat + r * F, (size_t)F * sizeof *ds->cat);
        if (D) memcpy(ds->dense + i * D, src->dense + r * D, (size_t)D * sizeof *ds->dense);
        memcpy(ds->labels + i * K, src->labels + r * K, (size_t)K * sizeof *ds->labels);
        if (ds->weight) ds->weight[i] = src->weight[r];
        if (ds->group) ds->group[i] = src->group[r];
        if (ds->truth) memcpy(ds->truth + i * K, src->truth + r * K, (size_t)K * sizeof *ds->truth);
    }
    for (int f = 0; f < F; f++) {
        if (!src->mv_off[f]) continue;
        uint64_t total = 0;
        for (size_t i = 0; i < n; i++) total += src->mv_off[f][rows[i] + 1] - src->mv_off[f][rows[i]];
        ds->mv_off[f] = malloc((n + 1) * sizeof **ds->mv_off);
        ds->mv_ids[f] = malloc((total ? total : 1) * sizeof **ds->mv_ids);
        if (!ds->mv_off[f] || !ds->mv_ids[f]) goto oom;
        uint64_t o = 0;
        ds->mv_off[f][0] = 0;
        for (size_t i = 0; i < n; i++) {
            uint64_t a = src->mv_off[f][rows[i]], b = src->mv_off[f][rows[i] + 1];
            memcpy(ds->mv_ids[f] + o, src->mv_ids[f] + a, (b - a) * sizeof **ds->mv_ids);
            o += b - a;
            ds->mv_off[f][i + 1] = o;
        }
    }
    return ds;
oom:
    rf_dataset_free(ds);
    return NULL;
}

int rf_dataset_label_index(const rf_dataset *ds, const char *name)
{
    for (int k = 0; k < ds->K; k++)
        if (strcmp(ds->label_names[k], name) == 0) return k;
    return -1;
}
