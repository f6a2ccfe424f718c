/* data.h - in-memory columnar datasets, vocabularies, feature encoders, the text loader
 * (CSV/TSV and other delimited formats, joins, .gz/.zst) and the log simulator.
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
#ifndef RESFLOW_DATA_H
#define RESFLOW_DATA_H

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
/* Bytes held by the dataset's arrays (mapped or not). */
RF_API double rf_dataset_bytes(const rf_dataset *ds);

/* Split points of the position split used everywhere (pipeline, encoder fitting, cache):
 * train = [0, *a), valid = [*a, *b), test = [*b, n) with n_test = floor(test_frac * n),
 * n_valid = floor(valid_frac * n); both points move forward to the next group boundary (when
 * group is not NULL) so a query's rows stay together. */
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

/* ---- Schema: which columns of a text file feed the model, and how ---------------------- */
typedef enum {
    RF_NORM_NONE = 0,     /* raw value */
    RF_NORM_STANDARD = 1, /* (x - mean) / sd, fitted on the training rows */
    RF_NORM_MINMAX = 2    /* (x - min) / (max - min), fitted on the training rows */
} rf_norm;

typedef enum {
    RF_FILL_ERROR = 0, /* a missing numeric value is a data error */
    RF_FILL_ZERO = 1,  /* missing -> 0 (raw scale) */
    RF_FILL_MEAN = 2,  /* missing -> the training mean */
    RF_FILL_VALUE = 3  /* missing -> schema.fill_value (raw scale) */
} rf_fill;

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

/* ---- Fitted feature encoders ------------------------------------------------------------ */
typedef enum {
    RF_ENC_VOCAB = 0,  /* vocabulary (vocab[f]) */
    RF_ENC_IDS = 1,    /* integer ids used as they are; outside [0, size) -> 0 */
    RF_ENC_HASH = 2,   /* id = 1 + XXH3_64bits_withSeed(value, seed) % (size - 1) */
    RF_ENC_BUCKET = 3  /* numeric: id = 1 + number of bounds <= x; missing -> 0 */
} rf_enc_kind;

typedef struct {
    int kind;          /* rf_enc_kind */
    uint32_t size;     /* ids are in [0, size) (embedding rows) */
    uint32_t oov;      /* RF_ENC_VOCAB: id of unknown values (0 or size - 1) */
    uint64_t seed;     /* RF_ENC_HASH */
    uint32_t nbounds;  /* RF_ENC_BUCKET: ascending bucket boundaries */
    float *bounds;
} rf_field_enc;

typedef struct {
    int norm;          /* RF_NORM_NONE, RF_NORM_STANDARD or RF_NORM_MINMAX */
    int fill;          /* rf_fill: RF_FILL_ERROR, or missing values take fill_value */
    float fill_value;  /* raw scale */
    float shift, scale;/* x' = (x - shift) * scale */
} rf_dense_enc;

/* Fitted encoders: per categorical field a vocabulary, hash, bucket boundaries or integer-id
 * range; per dense feature a fill value and normaliser. Legacy form (field == NULL): a field
 * whose vocab is NULL holds integer ids used as they are: id_size[f] > 0 is its number of
 * ids, and an id outside [0, id_size[f]) maps to 0 like an unknown string would; dense values
 * are used raw. Fitted on training rows only; stored in model files and caches. */
typedef struct {
    int F;
    rf_vocab **vocab;    /* (F) */
    uint32_t *id_size;   /* (F) or NULL when every field has a vocabulary */
    rf_field_enc *field; /* (F) or NULL (legacy) */
    int D;
    rf_dense_enc *dense; /* (D) or NULL: raw values */
} rf_encoders;

/* Encoders for F integer-id fields with the given sizes (no vocabularies). */
RF_API rf_encoders *rf_encoders_ids(int F, const uint32_t *sizes);

RF_API void rf_encoders_free(rf_encoders *enc);

/* Serialise encoders (field kinds, hash seeds, bucket boundaries, OOV ids, dense fill and
 * normalisers; not the vocabulary keys) as the body of a model-file/cache section, and back.
 * The bytes are little-endian; see docs/formats.md ("PREP"). rf_encoders_prep_parse fills
 * enc->field/enc->dense of an existing enc with enc->F == F (vocabularies untouched). */
RF_API rf_status rf_encoders_prep_write(const rf_encoders *enc, unsigned char **out, size_t *len,
                                        rf_error *err);
RF_API rf_status rf_encoders_prep_parse(rf_encoders *enc, int F, int D, const unsigned char *p,
                                        size_t len, const char *path, rf_error *err);

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

/* ---- Simulator ------------------------------------------------------------------------- */
typedef enum {
    RF_SYNTH_SEARCH = 0,   /* e-commerce search log: click -> (cart ->) order, order counts */
    RF_SYNTH_KUAIRAND = 1, /* short-video feed: click -> long_view -> like -> follow/comment/forward,
                              play time */
    RF_SYNTH_RATING = 2    /* movie ratings 1..5 (bounded regression) and rating >= k labels */
} rf_synth_preset;

typedef struct {
    size_t rows;          /* impressions */
    uint64_t seed;
    int tasks;            /* search: 2 (click, order) or 3 (click, cart, order), entire-space */
    uint32_t n_users, n_items, n_queries;
    float ctr;            /* target mean click rate, e.g. 0.04 */
    float cvr;            /* target mean P(order | click), e.g. 0.02 */
    float cart_rate;      /* 3-task: target mean P(cart | click) */
    int list_len;         /* items per query list (position bias) */
    int preset;           /* rf_synth_preset */
    int order_counts;     /* search: also the label order_count (units ordered, 0 if none) */
} rf_synth_opts;

RF_API rf_synth_opts rf_synth_default(void);
/* Generate a simulated log in memory (docs/simulator.md); truth holds true probabilities
 * (expected values for count/numeric labels), group holds the list/request id. */
RF_API rf_status rf_synth_generate(const rf_synth_opts *o, rf_dataset **out, rf_error *err);
/* Write a dataset as CSV with a header (used by `resflow synth`): categorical ids, dense
 * values, labels, weight, group, then one column p_<label> per label with the truth. */
RF_API rf_status rf_dataset_write_csv(const rf_dataset *ds, const char *path, rf_error *err);

#ifdef __cplusplus
}
#endif
#endif
