/* rowenc.h - one raw row (values by column name, as text) into a model's inputs, with the
 * stored encoders, exactly as the loader encodes a row of a file: the same vocabularies and
 * out-of-vocabulary id, hash seeds, quantile buckets, integer ids, multi-valued separators,
 * missing-value strings and fills, normalisers, and the same number parser. A server or a
 * binding scores raw requests with it; `rf_row_encoder_for_model` (pipeline.h) makes one for a
 * loaded model file.
 *
 *   rf_row_encoder *enc;  rf_row_batch *b;
 *   rf_row_encoder_create(&schema, encoders, &enc, err);
 *   b = rf_row_batch_create(enc, 1000);
 *   for each candidate: rf_row_encode(enc, b, n, names, values, err);
 *   rf_model_forward(m, ws, &(rf_batch){rf_row_batch_dataset(b), rows, n, NULL}, 0, err);
 *   rf_row_batch_clear(b);
 *
 * Values are UTF-8 text (NULL = missing, as an empty field); a column the encoder does not read
 * is an error naming it (so a misspelt field is not silently scored as missing). An encoder is
 * read-only after creation: many threads may encode with one, each into its own batch.
 */
#ifndef RESFLOW_ROWENC_H
#define RESFLOW_ROWENC_H

#include "data.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rf_row_encoder rf_row_encoder;
typedef struct rf_row_batch rf_row_batch;

/* An encoder for the schema's categorical fields and dense columns (sc->F, sc->D; labels,
 * joins and filters are not read) with the fitted encoders enc (enc->F == sc->F; enc->dense
 * may be NULL: raw dense values). The encoder keeps pointers to enc's vocabularies and bucket
 * boundaries, which must outlive it; everything else is copied. */
RF_API rf_status rf_row_encoder_create(const rf_schema *sc, const rf_encoders *enc, rf_row_encoder **out,
                                       rf_error *err) RF_WUR;
RF_API void rf_row_encoder_free(rf_row_encoder *e);
/* The columns it reads: the F categorical fields, then the D dense columns (names[i] valid
 * while the encoder lives). */
RF_API int rf_row_encoder_columns(const rf_row_encoder *e, const char *const **names);

/* The column named name: its index in rf_row_encoder_columns' order (for a name read twice, a
 * field that is also a dense column: the first), or -1. A binary search. */
RF_API int rf_row_encoder_find(const rf_row_encoder *e, const char *name);

/* Room for up to max_rows encoded rows (a dataset with the encoder's F fields, D dense
 * features and no labels). NULL when out of memory. */
RF_API rf_row_batch *rf_row_batch_create(const rf_row_encoder *e, size_t max_rows);
RF_API void rf_row_batch_free(rf_row_batch *b);
/* Forget the rows (keeps the memory). */
RF_API void rf_row_batch_clear(rf_row_batch *b);
/* The rows encoded so far, as a dataset (ds->n rows) to score. */
RF_API const rf_dataset *rf_row_batch_dataset(const rf_row_batch *b);

/* Append one row given n (name, value) pairs. Columns not given are missing; a name read as a
 * categorical field and as a dense column feeds both, as the loader does. RF_EDATA names the
 * column and the value when a value cannot be encoded (not a number, not an integer id, a
 * missing value where no fill is configured); RF_EUSAGE for an unknown or repeated column or a
 * full batch. On error the batch is unchanged. */
RF_API rf_status rf_row_encode(const rf_row_encoder *e, rf_row_batch *b, int n, const char *const *names,
                               const char *const *values, rf_error *err) RF_WUR;
/* The same with the columns given by index (cols[i] from rf_row_encoder_find; values[i] its
 * value): no name lookup. RF_EUSAGE for an index out of range or given twice. */
RF_API rf_status rf_row_encode_cols(const rf_row_encoder *e, rf_row_batch *b, int n, const int *cols,
                                    const char *const *values, rf_error *err) RF_WUR;

#ifdef __cplusplus
}
#endif
#endif
