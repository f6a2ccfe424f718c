/* dataset.h - in-memory columnar datasets: fields, rows, the position split, the training row
 * order, CSV output. (data.h includes every data header.)
 *
 * Dimension letters used throughout resflow:
 *   N rows, F categorical fields, D dense (numeric) features, K tasks/labels, E embedding dim.
 *
 * A dataset holds, per row: F categorical ids (already mapped to dense ids in
 * [0, field.vocab)), D floats, K float labels, an optional per-row weight and an optional
 * 64-bit group (query) key. Multi-valued fields are stored CSR-style per field.
 * Id 0 of every field is reserved for PAD/missing (an empty value); values unknown to a
 * fitted vocabulary map to the field's OOV id (0, or a reserved last id: see rf_field_enc).
 * The full data-pipeline contract is in docs/data.md.
 */
#ifndef RESFLOW_DATASET_H
#define RESFLOW_DATASET_H

#include <stdio.h>

#include "resflow.h"

#ifdef __cplusplus
extern "C" {
#endif

#define RF_NAME_MAX 64
#define RF_MAX_FIELDS 64   /* categorical fields */
#define RF_MAX_DENSE 128   /* dense features */
#define RF_MAX_LABELS 16   /* label columns read from text */
#define RF_MAX_COLS 64     /* column names of a headerless file */
#define RF_MAX_JOINS 4     /* side tables joined to the main file */
#define RF_MAX_FILTERS 8   /* row filters */
#define RF_MAX_NA 16       /* strings that mean "missing" */
#define RF_NA_LEN 16
#define RF_DELIM_MAX 8     /* delimiter string (up to 7 bytes) */
#define RF_PATH_MAX 512
#define RF_SPEC_MAX (2 * RF_NAME_MAX + 2) /* a label or filter expression */

typedef enum { RF_POOL_SUM = 0, RF_POOL_MEAN = 1 } rf_pooling;

typedef struct {
    char name[RF_NAME_MAX];
    int multi;       /* 0 single-valued, 1 multi-valued */
    int pooling;     /* rf_pooling, multi-valued fields only */
    char sep;        /* value separator of a multi-valued field in text input */
    uint32_t vocab;  /* ids are in [0, vocab); id 0 = PAD/missing */
} rf_field;

struct rf_mapping; /* a memory-mapped cache file (cache.h) */

typedef struct rf_dataset {
    size_t n;          /* rows */
    int F, D, K;       /* categorical fields, dense features, labels */
    rf_field *fields;  /* (F) */
    char (*dense_names)[RF_NAME_MAX]; /* (D) */
    char (*label_names)[RF_NAME_MAX]; /* (K) */

    uint32_t *cat;     /* (N, F) ids of single-valued fields; entry unused (0) for multi-valued */
    uint64_t **mv_off; /* (F) NULL for single-valued fields, else (N+1) offsets into mv_ids[f]
                          (offsets may start above 0 in a view of a larger dataset) */
    uint32_t **mv_ids; /* (F) NULL for single-valued fields, else the concatenated ids */
    float *dense;      /* (N, D) or NULL if D == 0 */
    float *labels;     /* (N, K) */
    float *weight;     /* (N) per-row sample weight, or NULL (= all 1) */
    uint64_t *group;   /* (N) group/query key, or NULL */
    float *truth;      /* (N, K) true probabilities/expectations (simulator only), or NULL;
                          NaN where unknown (labels derived from expressions) */

    /* Storage. NULL: the arrays above are malloc'ed and owned. Otherwise cat, mv_off[f],
     * mv_ids[f], dense, labels, weight, group and truth point into this read-only mapping
     * (a cache file, see cache.h) and rf_dataset_free releases one reference to it. */
    struct rf_mapping *map;
    /* Row order for training (rf_row_order): 0 = shuffle all rows every epoch; > 0 = shuffle
     * blocks of shuffle_block consecutive rows, shuffle_window blocks at a time (bounded
     * resident memory for a mapped dataset larger than RAM). */
    size_t shuffle_block;
    int shuffle_window;
} rf_dataset;

/* Allocate an empty dataset with the given shape (all arrays zeroed; mv arrays NULL,
 * weight/group/truth NULL). Field/dense/label names empty. Returns NULL on OOM. */
RF_API rf_dataset *rf_dataset_alloc(size_t n, int F, int D, int K);
RF_API void rf_dataset_free(rf_dataset *ds);
/* The given rows (in that order) as a new dataset (deep copy, always malloc'ed). */
RF_API rf_dataset *rf_dataset_slice(const rf_dataset *ds, const size_t *rows, size_t n);
/* Rows [lo, hi) as a dataset: a view sharing the mapping for a mapped dataset (no copy),
 * a deep copy otherwise. */
RF_API rf_dataset *rf_dataset_range(const rf_dataset *ds, size_t lo, size_t hi);
/* Index of a label by name, -1 if absent. */
RF_API int rf_dataset_label_index(const rf_dataset *ds, const char *name);
/* Index of the simulator's counterfactual label of a child task's label: cf_<label> (e.g.
 * cf_order, "would order if clicked", on every row), -1 if absent or label is a product "a*b". */
RF_API int rf_dataset_cf_label_index(const rf_dataset *ds, const char *label);
/* Bytes held by the dataset's arrays (mapped or not). */
RF_API double rf_dataset_bytes(const rf_dataset *ds);

/* Split points of the position split used everywhere (pipeline, encoder fitting, cache):
 * train = [0, *a), valid = [*a, *b), test = [*b, n) with n_test = floor(test_frac * n),
 * n_valid = floor(valid_frac * n); both points move forward to the next group boundary (when
 * group is not NULL) so a query's rows stay together. */
/* The random split (data.split: random): role[i] = 0 train, 1 validation, 2 test for each of the
 * n rows, from a seeded hash of the row's key (group[i], or the row index i when group is NULL)
 * mapped to u in [0, 1): test when u < test_frac, validation when u < test_frac + valid_frac.
 * Rows of one group share their role; the fractions hold in expectation. */
RF_API void rf_split_roles(const uint64_t *group, size_t n, uint64_t seed, float valid_frac, float test_frac,
                           uint8_t *role);
RF_API void rf_split_points(const uint64_t *group, size_t n, float valid_frac, float test_frac,
                            size_t *a, size_t *b);

/* ---- Training row order ---------------------------------------------------------------- */
/* Per-epoch order of the rows of a training set, deterministic for (seed, epoch). With
 * ds->shuffle_block == 0 every epoch applies a Fisher-Yates shuffle to the previous
 * epoch's permutation (seeded by seed * 1000003 + epoch + 1). Otherwise the blocks of
 * shuffle_block rows are visited in a shuffled order, shuffle_window blocks at a time, and
 * the rows of those blocks are shuffled together: memory for the order is O(window), and
 * for a mapped dataset the blocks of a window are prefetched (MADV_WILLNEED) and dropped
 * from memory (MADV_DONTNEED) once consumed, so resident memory stays bounded. */
typedef struct rf_row_order rf_row_order;
RF_API rf_row_order *rf_row_order_create(const rf_dataset *ds, uint64_t seed, int batch);
RF_API void rf_row_order_free(rf_row_order *o);
/* Start epoch ep (0-based). */
RF_API void rf_row_order_epoch(rf_row_order *o, int ep);
/* Rows of the next batch of the epoch (batch rows, fewer for the last one); *nb gets the
 * count, 0 at the end of the epoch. Valid until the next call. */
RF_API const size_t *rf_row_order_next(rf_row_order *o, int *nb);

/* Write a dataset as CSV with a header (used by `resflow synth`): categorical ids, dense
 * values, labels, weight, group, then one column p_<label> per label with the truth. */
RF_API rf_status rf_dataset_write_csv(const rf_dataset *ds, const char *path, rf_error *err);
/* The same CSV to an open stream (e.g. stdout: `resflow synth -o -`), flushed; RF_EIO when a
 * write fails. The stream is not closed. */
RF_API rf_status rf_dataset_write_csv_stream(const rf_dataset *ds, FILE *fp, rf_error *err);

#ifdef __cplusplus
}
#endif
#endif
