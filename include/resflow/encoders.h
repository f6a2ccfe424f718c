/* encoders.h - vocabularies and the fitted feature encoders (categorical: vocabulary, integer
 * ids, hashing, buckets; dense: fill and normaliser), and their serialised form. */
#ifndef RESFLOW_ENCODERS_H
#define RESFLOW_ENCODERS_H

#include "dataset.h"

#ifdef __cplusplus
extern "C" {
#endif

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

/* ---- Numeric features -------------------------------------------------------------------- */
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

#ifdef __cplusplus
}
#endif
#endif
