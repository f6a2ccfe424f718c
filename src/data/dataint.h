/* dataint.h - internal interfaces shared by the data-pipeline sources (vocab.c, encoders.c,
 * csv.c, dataset.c, pipeline.c, cache.c, synth.c). Not installed; not part of the API. */
#ifndef RESFLOW_DATAINT_H
#define RESFLOW_DATAINT_H

#include "resflow/data.h"

/* vocab.c (contracts next to their definitions) */
uint64_t rf_vocab_hash_(const rf_vocab *v, const char *key, size_t len);
uint32_t rf_vocab_fit_id_(rf_vocab *v, const char *key, size_t len, uint64_t h);
uint32_t rf_vocab_lookup_h_(const rf_vocab *v, const char *key, size_t len, uint64_t h);
uint32_t rf_vocab_find_h_(const rf_vocab *v, const char *key, size_t len, uint64_t h);
rf_status rf_vocab_freeze_remap_(rf_vocab *v, uint32_t min_count, uint32_t **remap);
rf_status rf_vocab_freeze_counts_(rf_vocab *v, const uint32_t *counts, uint32_t min_count,
                                  uint32_t **remap);
uint32_t rf_vocab_entries_(const rf_vocab *v);
const char *rf_vocab_key_len_(const rf_vocab *v, uint32_t id, size_t *len);
int rf_vocab_small_(rf_vocab *v, const char *key, size_t len, int add, uint32_t *id);

/* encoders.c */
/* Encoders for F fields and D dense features with every array allocated (field kinds 0 =
 * vocabulary without one yet, dense: no normalisation). */
rf_encoders *rf_encoders_new_(int F, int D);
/* Quantile boundaries of the non-NaN values x[i*stride], i < n, for at most nb buckets
 * (duplicates dropped); *bounds malloc'ed (NULL if none). RF_ENOMEM on failure. */
rf_status rf_bucket_fit_(const float *x, size_t stride, size_t n, uint32_t nb, float **bounds,
                         uint32_t *nbounds);
uint32_t rf_bucket_id_(const float *bounds, uint32_t nb, float x);
/* Fill values and normalisers of the D dense columns of x (n rows, row-major) from their
 * non-NaN values; norm[d] is each column's rf_norm. RF_ENOMEM on failure. */
rf_status rf_dense_fit_all_(const float *x, size_t n, int D, const int *norm, int fill, float fill_value,
                            rf_dense_enc *out);

/* csv.c: rf_load_csv with hooks for the cache builder (NULL hooks = rf_load_csv).
 * dense_sink: when set, and the dense values are final as parsed (given encoders, or fitting
 * with fill_na error and no normalisation), the accepted rows' dense values are handed to it in
 * row order, n rows of D floats at a time, instead of being kept: the dataset then has D
 * columns but dense == NULL. A non-zero return aborts the load
 * (the sink has set err). want_hash: hash a plain (uncompressed) input as it is read; when the
 * whole file was read, input_hash is its XXH3-64 and hashed is 1. */
typedef struct {
    int (*dense_sink)(void *ud, const float *x, size_t n, int D, rf_error *err);
    void *ud;
    int want_hash;
    int hashed;         /* out */
    uint64_t input_hash; /* out */
} rf_load_hooks_;
rf_status rf_load_csv_hooked_(const char *path, const rf_schema *schema, rf_encoders **enc, rf_load_opts *opts,
                              rf_load_hooks_ *hooks, rf_dataset **out, rf_error *err);

/* A read-only file mapping shared by the datasets that point into it (cache.c creates it). */
struct rf_mapping {
    void *base;
    size_t len;
    int refs; /* atomic */
    int nextra; /* more regions unmapped with it (spilled loader arrays) */
    struct rf_region {
        void *p;
        size_t n;
    } *extra;
};

/* dataset.c: reference counting of a mapping (the last release unmaps it). */
void rf_mapping_release_(struct rf_mapping *m);
void rf_mapping_retain_(struct rf_mapping *m);
/* Hand the anonymous mapping p (n bytes) to m: unmapped with it (labels derived for a mapped
 * dataset). Not thread-safe. 0, or -1 out of memory. */
int rf_mapping_add_region_(struct rf_mapping *m, void *p, size_t n);
/* madvise the rows [r0, r1) of every array of a mapped dataset (no-op otherwise):
 * advice 1 = will need, 0 = done (drop from memory). */
void rf_dataset_advise_(const rf_dataset *ds, size_t r0, size_t r1, int advice);

/* A field value as an integer id (fields without a vocabulary): 1..19 decimal digits, the number
 * when below size, else 0; *bad set for anything else that is not empty. */
static inline uint32_t rf_encode_id_(uint32_t size, const char *s, size_t n, int *bad)
{
    uint64_t v = 0;
    if (n == 0 || n > 19) {
        *bad = n > 0;
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            *bad = 1;
            return 0;
        }
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    return v < size ? (uint32_t)v : 0;
}

#endif
