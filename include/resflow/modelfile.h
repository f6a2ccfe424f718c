/* modelfile.h - self-contained model files: configuration, feature schema, vocabularies and
 * weights, with magic, format version and an XXH64 checksum; written to a temporary file in
 * the same directory, fsync'ed and renamed, so an existing file is never half-overwritten.
 *
 * Layout (little-endian): a 64-byte header
 *   magic "RESFLOWM" | u32 version | u32 flags | u64 payload bytes | u64 XXH64(payload) |
 *   u32 section count | u32 endian marker 0x01020304 | reserved (zero) | u64 XXH64(header[0:56])
 * then sections, each: 4-byte tag | u64 length | bytes:
 *   CONF resolved YAML config, FLDS field schema, DNAM dense names, LNAM label names,
 *   VOCB vocabularies (optional), PARM dense parameters, BUFF BN running statistics,
 *   EMBD embedding tables. Unknown tags are skipped (forward compatible within a version).
 *   Optional: FUSN the ranking score-fusion formula (text, see rf_model_set_fusion).
 *   Optional: PREP the fitted feature encoders besides the vocabularies: per field its
 *   encoding (vocabulary with its OOV id, integer ids, XXH3 hash with seed, quantile bucket
 *   boundaries) and per dense feature its fill value and normaliser (rf_encoders_prep_write).
 */
#ifndef RESFLOW_MODELFILE_H
#define RESFLOW_MODELFILE_H

#include "config.h"
#include "model.h"
#include "rank.h"

#ifdef __cplusplus
extern "C" {
#endif

#define RF_MODEL_MAGIC "RESFLOWM"
#define RF_MODEL_VERSION 1

/* Save m with the experiment configuration it was trained with (stored as CONF: the data
 * format and options a scorer needs to read raw rows) and, if not NULL, the encoders mapping
 * raw values to ids (enc->vocab[f] may be NULL for fields whose values are integer ids used as
 * they are). dense/label names are taken from names arrays (D and K entries; may be NULL). */
RF_API rf_status rf_model_save(const rf_model *m, const rf_config *cfg, const rf_encoders *enc,
                               const char (*dense_names)[RF_NAME_MAX],
                               const char (*label_names)[RF_NAME_MAX], const char *path,
                               rf_error *err);

/* Everything a model file holds, loaded. */
typedef struct {
    rf_model *model;
    rf_config cfg;                  /* the configuration it was trained with (section CONF) */
    rf_encoders *enc;               /* NULL if the file has no vocabularies */
    rf_field *fields;               /* (F) */
    char (*dense_names)[RF_NAME_MAX]; /* (D) */
    char (*label_names)[RF_NAME_MAX]; /* (K) may be NULL */
    int F, D, K_labels;
    rf_fusion fusion;               /* score-fusion formula (section FUSN); kind
                                       RF_FUSION_NONE when the file has none */
} rf_loaded_model;

/* Load and verify (magic, version, sizes, checksum). A truncated, corrupted or
 * wrong-version file gives RF_EFORMAT with a message saying which. */
RF_API rf_status rf_model_load(const char *path, rf_loaded_model *out, rf_error *err);
RF_API void rf_loaded_model_free(rf_loaded_model *lm);

/* Copy the model file in_path to out_path (may be the same path; written to a temporary file
 * and renamed) with its score-fusion section FUSN set to f (f NULL or kind RF_FUSION_NONE:
 * removed). Every other section is copied byte for byte. The FUSN body is text:
 * "formula: <rf_fusion_spec>\nobjective: <name>\nvalue: <%.17g>\n". */
RF_API rf_status rf_model_set_fusion(const char *in_path, const char *out_path,
                                     const rf_fusion *f, rf_error *err);

#ifdef __cplusplus
}
#endif
#endif
