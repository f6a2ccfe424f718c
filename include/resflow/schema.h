/* schema.h - the text schema (which columns of a delimited file feed the model, and how) and the
 * text loader rf_load_csv (CSV/TSV and other delimited formats, joins, .gz/.zst). */
#ifndef RESFLOW_SCHEMA_H
#define RESFLOW_SCHEMA_H

#include "dataset.h"
#include "encoders.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Schema: which columns of a text file feed the model, and how ---------------------- */
typedef enum {
    RF_OOV_ZERO = 0, /* unknown values share id 0 with missing ones */
    RF_OOV_OWN = 1   /* unknown values (unseen in training or below min_count) get their own
                        id, the last one of the field */
} rf_oov;

typedef enum { RF_SHUFFLE_AUTO = 0, RF_SHUFFLE_FULL = 1, RF_SHUFFLE_BLOCK = 2 } rf_shuffle;

typedef struct {
    char name[RF_NAME_MAX];
    int multi;
    int pooling;
    char sep;
    uint32_t hash;   /* > 0: values hashed into ids 1..hash (XXH3-64 with schema.hash_seed) */
    uint32_t bucket; /* > 0: the column is numeric, cut into at most `bucket` quantile buckets
                        fitted on the training rows (ids 1.., 0 = missing) */
    uint32_t min_count; /* > 0: this field's vocabulary threshold (overrides schema.min_count) */
} rf_cat_spec;

/* A side table joined to every row of the main file: the row of this file whose column `key`
 * equals the main file's column `on`; its other columns become columns of the main row. */
typedef struct {
    char path[RF_PATH_MAX];
    char on[RF_NAME_MAX];      /* column of the main file */
    char key[RF_NAME_MAX];     /* column of this file ("" = the same name as on) */
    char delim[RF_DELIM_MAX];  /* delimiter (1..7 bytes) */
    int no_header;             /* 1: no header row, names in cols */
    int latin1;                /* 1: ISO-8859-1 text (converted to UTF-8) */
    int ncols;
    char cols[RF_MAX_COLS][RF_NAME_MAX];
} rf_join_spec;

typedef struct {
    int F, D, K;
    rf_cat_spec cat[RF_MAX_FIELDS];
    char dense[RF_MAX_DENSE][RF_NAME_MAX];
    /* label columns: "col", "a*b" (product of two columns), "col>=v" (also >, <=, <, ==, !=
     * with a number: 1 if the comparison holds, else 0), "col==text" / "col!=text" */
    char label[RF_MAX_LABELS][RF_SPEC_MAX];
    char weight[RF_NAME_MAX]; /* optional per-row weight column, "" if none */
    char group[RF_NAME_MAX];  /* optional group/query key column, "" if none */
    char delim;               /* first byte of the delimiter (',' or '\t' ...) */
    uint32_t min_count;       /* vocabulary min-count (a field's cat[f].min_count overrides it) */
    int labels_binary;        /* 1: every plain/product label must be 0 or 1 (binary tasks) */

    /* text format (all zero = CSV with a header, UTF-8, delimiter `delim`) */
    char delim_str[RF_DELIM_MAX]; /* the whole delimiter when it is longer than one byte */
    int no_header;                /* 1: no header row; column names in cols */
    int ncols;
    char cols[RF_MAX_COLS][RF_NAME_MAX];
    int latin1;                   /* 1: text is ISO-8859-1 (values converted to UTF-8) */
    int njoin;
    rf_join_spec join[RF_MAX_JOINS];
    int nfilter;                  /* rows kept only if every expression holds (label syntax) */
    char filter[RF_MAX_FILTERS][RF_SPEC_MAX];

    /* numeric features and labels */
    int nna;                      /* strings meaning "missing" (with fill != RF_FILL_ERROR) */
    char na[RF_MAX_NA][RF_NA_LEN];
    int fill;                     /* rf_fill */
    float fill_value;             /* RF_FILL_VALUE */
    int norm;                     /* rf_norm of dense columns without their own */
    int dense_norm[RF_MAX_DENSE]; /* per dense column: 0 = norm, else its rf_norm + 1 */
    int nnumeric;                 /* labels read as numbers, not checked to be 0/1: "name" or
                                     "name:lo:hi" (scaled to (x-lo)/(hi-lo), clamped to [0,1]) */
    char numeric[RF_MAX_LABELS][RF_SPEC_MAX];

    /* categorical encoding */
    int oov;                      /* rf_oov */
    uint64_t hash_seed;

    /* binary cache and streaming (see cache.h) */
    char cache[RF_PATH_MAX];      /* "" = no cache */
    int cache_spill;              /* building it: 0 auto (spill when the inputs exceed a quarter
                                     of the RAM), 1 always, 2 never */
    int shuffle;                  /* rf_shuffle */
    uint32_t shuffle_block;       /* rows per block (block shuffle) */
    int shuffle_window;           /* blocks shuffled together */
} rf_schema;

/* The delimiter of a schema as a string (delim_str, or the one byte delim; "," if none). */
RF_API const char *rf_schema_delim(const rf_schema *s, char buf[RF_DELIM_MAX]);


typedef enum { RF_TOKENIZER_AUTO = 0, RF_TOKENIZER_SSE2 = 1, RF_TOKENIZER_SCALAR = 2 } rf_tokenizer;

typedef struct {
    int skip_bad_rows;  /* 0: first bad row is an error; 1: skip and count */
    size_t bad_rows;    /* out: rows skipped */
    size_t max_rows;    /* 0 = all */
    /* fitting (*enc == NULL): encoders are fitted on the rows before the held-out tail given
     * by these fractions (rf_split_points; 0 and 0 = all rows) */
    float valid_frac, test_frac;
    size_t fit_rows;      /* out: rows the encoders were fitted on */
    size_t filtered_rows; /* out: rows dropped by the schema's filters */
    int threads;          /* parser threads (0 = OpenMP's default) */
    size_t block_bytes;   /* text per parser thread and round (0 = default) */
    /* non-NULL: the dataset's arrays live in unlinked temporary files in this directory,
     * mapped shared (the kernel writes them back and evicts them as needed, so loading a file
     * larger than RAM works); the dataset then holds a mapping (rf_dataset.map) */
    const char *spill_dir;
    int tokenizer;        /* rf_tokenizer: the row scanner (RF_TOKENIZER_AUTO = the fastest this
                             CPU has; the others force a smaller one: tests cover every path) */
    char bad_first[480];  /* out: where and why the first skipped rows were bad, e.g.
                             "line 12 column 4: label 'x' is not 0 or 1 ...; line 40 ..." */
    int split_random;     /* 1: the training rows the encoders are fitted on are those that
                             rf_split_roles(group, n, split_seed, valid_frac, test_frac) gives
                             role 0, not the leading rows */
    uint64_t split_seed;
} rf_load_opts;

/* Load a delimited text file (CSV/TSV, headerless, multi-byte delimiters, ISO-8859-1, .gz and
 * .zst read transparently, side tables joined) with the schema. If *enc is NULL, encoders are
 * fitted on this file's training rows (see rf_load_opts) and returned in *enc; otherwise the
 * given encoders are used (unknown -> OOV). Errors name file:line:column. */
RF_API rf_status rf_load_csv(const char *path, const rf_schema *schema, rf_encoders **enc,
                             rf_load_opts *opts, rf_dataset **out, rf_error *err);

/* Label columns for expressions the dataset lacks: for every spec in specs (n of them) that is
 * not already a label name, evaluate it on the label columns ("a*b", "col>=v" ...) and append
 * the result as a label named spec (truth NaN). Used for simulator data. */
RF_API rf_status rf_dataset_derive_labels(rf_dataset *ds, const char (*specs)[RF_SPEC_MAX], int n,
                                          rf_error *err);


#ifdef __cplusplus
}
#endif
#endif
