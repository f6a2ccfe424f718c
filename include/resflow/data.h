/* data.h - in-memory columnar datasets, vocabularies, CSV loading and the log simulator.
 *
 * Dimension letters used throughout resflow:
 *   N rows, F categorical fields, D dense (numeric) features, K tasks/labels, E embedding dim.
 *
 * A dataset holds, per row: F categorical ids (already mapped to dense ids in
 * [0, field.vocab)), D floats, K float labels, an optional per-row weight and an optional
 * 64-bit group (query) key. Multi-valued fields are stored CSR-style per field.
 * Id 0 of every vocabulary is reserved for OOV/missing (see rf_vocab).
 */
#ifndef RESFLOW_DATA_H
#define RESFLOW_DATA_H

#include "resflow.h"

#ifdef __cplusplus
extern "C" {
#endif

#define RF_NAME_MAX 64

typedef enum { RF_POOL_SUM = 0, RF_POOL_MEAN = 1 } rf_pooling;

typedef struct {
    char name[RF_NAME_MAX];
    int multi;       /* 0 single-valued, 1 multi-valued */
    int pooling;     /* rf_pooling, multi-valued fields only */
    char sep;        /* value separator of a multi-valued field in text input */
    uint32_t vocab;  /* ids are in [0, vocab); id 0 = OOV/missing */
} rf_field;

typedef struct rf_dataset {
    size_t n;          /* rows */
    int F, D, K;       /* categorical fields, dense features, labels */
    rf_field *fields;  /* (F) */
    char (*dense_names)[RF_NAME_MAX]; /* (D) */
    char (*label_names)[RF_NAME_MAX]; /* (K) */

    uint32_t *cat;     /* (N, F) ids of single-valued fields; entry unused (0) for multi-valued */
    uint64_t **mv_off; /* (F) NULL for single-valued fields, else (N+1) offsets into mv_ids[f] */
    uint32_t **mv_ids; /* (F) NULL for single-valued fields, else the concatenated ids */
    float *dense;      /* (N, D) or NULL if D == 0 */
    float *labels;     /* (N, K) */
    float *weight;     /* (N) per-row sample weight, or NULL (= all 1) */
    uint64_t *group;   /* (N) group/query key, or NULL */
    float *truth;      /* (N, K) true probabilities (simulator only), or NULL */
} rf_dataset;

/* Allocate an empty dataset with the given shape (all arrays zeroed; mv arrays NULL,
 * weight/group/truth NULL). Field/dense/label names empty. Returns NULL on OOM. */
RF_API rf_dataset *rf_dataset_alloc(size_t n, int F, int D, int K);
RF_API void rf_dataset_free(rf_dataset *ds);
/* The given rows (in that order) as a new dataset (deep copy). */
RF_API rf_dataset *rf_dataset_slice(const rf_dataset *ds, const size_t *rows, size_t n);
/* Index of a label by name, -1 if absent. */
RF_API int rf_dataset_label_index(const rf_dataset *ds, const char *name);

/* ---- Vocabulary: string -> id, 0 reserved for OOV ------------------------------------- */
typedef struct rf_vocab rf_vocab;
RF_API rf_vocab *rf_vocab_create(void);
RF_API void rf_vocab_free(rf_vocab *v);
/* Count one occurrence of key while fitting. */
RF_API rf_status rf_vocab_count(rf_vocab *v, const char *key, size_t len);
/* Freeze: keep keys with count >= min_count, assign ids 1..size-1 (in first-seen order). */
RF_API void rf_vocab_freeze(rf_vocab *v, uint32_t min_count);
/* Id of key after freeze (0 if unknown). */
RF_API uint32_t rf_vocab_lookup(const rf_vocab *v, const char *key, size_t len);
/* Number of ids including the OOV id 0. */
RF_API uint32_t rf_vocab_size(const rf_vocab *v);
/* Key of id (1..size-1); NULL for 0. */
RF_API const char *rf_vocab_key(const rf_vocab *v, uint32_t id);
/* Add a key with the next id directly (used when loading a model). */
RF_API rf_status rf_vocab_add(rf_vocab *v, const char *key, size_t len);

/* ---- Schema: which columns of a text file feed the model ------------------------------- */
typedef struct {
    char name[RF_NAME_MAX];
    int multi;
    int pooling;
    char sep;
} rf_cat_spec;

typedef struct {
    int F, D, K;
    rf_cat_spec cat[64];
    char dense[128][RF_NAME_MAX];
    /* label columns; a label spec "a*b" means the product of two columns (e.g. click*conversion) */
    char label[16][2 * RF_NAME_MAX + 2];
    char weight[RF_NAME_MAX]; /* optional per-row weight column, "" if none */
    char group[RF_NAME_MAX];  /* optional group/query key column, "" if none */
    char delim;               /* ',' or '\t' */
    uint32_t min_count;       /* vocabulary min-count */
    int labels_binary;        /* 1: every label must be 0 or 1 (binary tasks) */
} rf_schema;

/* Fitted feature encoders: one vocabulary per categorical field. A field whose vocab is NULL
 * holds integer ids used as they are: id_size[f] > 0 is its number of ids, and an id outside
 * [0, id_size[f]) maps to the OOV id 0 like an unknown string would. */
typedef struct {
    int F;
    rf_vocab **vocab;  /* (F) */
    uint32_t *id_size; /* (F) or NULL when every field has a vocabulary */
} rf_encoders;

/* Encoders for F integer-id fields with the given sizes (no vocabularies). */
RF_API rf_encoders *rf_encoders_ids(int F, const uint32_t *sizes);

RF_API void rf_encoders_free(rf_encoders *enc);

typedef struct {
    int skip_bad_rows;  /* 0: first bad row is an error; 1: skip and count */
    size_t bad_rows;    /* out: rows skipped */
    size_t max_rows;    /* 0 = all */
} rf_load_opts;

/* Load a CSV/TSV file with a header row. If *enc is NULL, vocabularies are fitted on this file
 * (two passes) and returned in *enc; otherwise the given encoders are used (unknown -> 0).
 * Errors name file:line:column. */
RF_API rf_status rf_load_csv(const char *path, const rf_schema *schema, rf_encoders **enc,
                             rf_load_opts *opts, rf_dataset **out, rf_error *err);

/* ---- Simulator ------------------------------------------------------------------------- */
typedef struct {
    size_t rows;          /* impressions */
    uint64_t seed;
    int tasks;            /* 2: click, ctcvr(order); 3: click, cart, order (entire-space labels) */
    uint32_t n_users, n_items, n_queries;
    float ctr;            /* target mean click rate, e.g. 0.04 */
    float cvr;            /* target mean P(order | click), e.g. 0.02 */
    float cart_rate;      /* 3-task: target mean P(cart | click) */
    int list_len;         /* items per query list (position bias) */
} rf_synth_opts;

RF_API rf_synth_opts rf_synth_default(void);
/* Generate a simulated e-commerce search log in memory; truth holds true probabilities,
 * group holds the query-list id. Labels are entire-space (ctcvr = click AND order). */
RF_API rf_status rf_synth_generate(const rf_synth_opts *o, rf_dataset **out, rf_error *err);
/* Write a dataset as CSV with a header (used by `resflow synth`). */
RF_API rf_status rf_dataset_write_csv(const rf_dataset *ds, const char *path, rf_error *err);

#ifdef __cplusplus
}
#endif
#endif
