/* frame.h - a dataset from in-memory columns (a pandas DataFrame, a dict of numpy arrays),
 * encoded with a loaded model's encoders exactly as `resflow predict` encodes a file of the same
 * values: the row encoder's rules (rowenc.h: vocabularies and OOV ids, hashes, buckets, integer
 * ids, multi-valued separators, NA strings and fills, normalisers).
 *
 * The library reads the caller's arrays in place (no copy is made of them): a column is a base
 * pointer and a stride in bytes, so a column of a 2-D array or of a DataFrame block is read
 * where it lies. Numbers are taken as the exact values of the arrays:
 *   dense column     FLOAT64/FLOAT32/INT64/INT32 value (NaN = missing: the fill value, an error
 *                    without one) -> float (an error when out of float range) -> the normaliser;
 *                    TEXT as the loader parses text.
 *   categorical      TEXT: the value as in a file; INT64/INT32: the decimal text of the number
 *                    (what a file holds: an id for integer-id fields, a key for vocabulary and
 *                    hash fields, a number for bucket fields); FLOAT64/FLOAT32: NaN = missing,
 *                    an integral value as an integer, otherwise its shortest exact decimal form.
 *   label            any numeric type, as float.
 * Errors name the column, the row (0-based, "row 12") and the value.
 */
#ifndef RESFLOW_FRAME_H
#define RESFLOW_FRAME_H

#include <stddef.h>

#include "modelfile.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    RF_COL_TEXT = 0,    /* data: n NUL-terminated UTF-8 strings back to back ("" = missing) */
    RF_COL_INT64 = 1,
    RF_COL_FLOAT64 = 2,
    RF_COL_FLOAT32 = 3,
    RF_COL_INT32 = 4
} rf_col_type;

typedef struct {
    const char *name;
    int type;          /* rf_col_type */
    const void *data;  /* value of row i at (char *)data + i * stride (TEXT: see above) */
    ptrdiff_t stride;  /* bytes between consecutive values; 0 = the type's size (packed) */
} rf_column;

/* The n rows of the given columns as a dataset for lm's model: its categorical fields and dense
 * features (columns the model does not read are an error; fields or dense columns not given
 * are missing in every row) and, with with_labels, the model's label columns (lm->label_names,
 * each required, numeric). The dataset is the caller's (rf_dataset_free). */
RF_API rf_status rf_frame_dataset(const rf_loaded_model *lm, const rf_column *cols, int ncols, size_t n,
                                  int with_labels, rf_dataset **out, rf_error *err) RF_WUR;

#ifdef __cplusplus
}
#endif
#endif
