/* index.h - item index files (.rfi): every item's per-task vectors computed offline by a
 * twin-tower model's item towers, for top-K retrieval (serve.h rf_topk, docs/serving.md).
 *
 * Layout (little-endian, sections 64-byte aligned so the file is used in place through mmap):
 *   a 128-byte header: magic "RESFLOWI" | u32 version | u32 endian marker 0x01020304 |
 *   u64 model fingerprint | u64 N | u32 K | u32 d | u32 dq | u32 flags | u64 offsets of the id
 *   table, the id bytes, their length, the vectors, the biases, the quantizer, the codes |
 *   u64 file size | u64 XXH64(file[128:]) | u64 XXH64(header[0:120]);
 *   ids: (N + 1) u64 offsets into the id bytes, each id NUL-terminated;
 *   vectors: (N, K, d) f32; biases: (N, K) f32;
 *   the compact copy: per task and dimension an offset and a step (2 x (K, dq) f32, dq = d
 *   rounded up to 4) and 8-bit codes (v ~ offset + step * code) in blocks of 16 items.
 * The fingerprint ties the index to its model (rf_index_model_fingerprint): a scorer refuses a
 * pair that does not match, naming both files. Files are written atomically (afile.h); opening
 * verifies sizes, offsets, ids and both checksums, so a truncated or corrupt file is refused. */
#ifndef RESFLOW_INDEX_H
#define RESFLOW_INDEX_H

#include <stddef.h>
#include <stdint.h>

#include "modelfile.h"

#ifdef __cplusplus
extern "C" {
#endif

#define RF_INDEX_MAGIC "RESFLOWI"
#define RF_INDEX_VERSION 1

typedef struct rf_index rf_index;

/* A 64-bit hash of a model's shape and every parameter (dense, running statistics,
 * embeddings): equal for the same model file, different after any training step. */
RF_API uint64_t rf_index_model_fingerprint(const rf_model *m);

/* Write an index of n items: ids (n strings, none containing a NUL), v (n, K, d), vb (n, K;
 * NULL = zeros), tied to a model's fingerprint; the compact copy is computed here (threads:
 * OpenMP threads, 0 = the caller's default). Atomic and durable. */
RF_API rf_status rf_index_write(const char *path, uint64_t fingerprint, size_t n, int K, int d,
                                const char *const *ids, const float *v, const float *vb, int threads,
                                rf_error *err) RF_WUR;

/* Map an index file read-only and verify it (RF_EFORMAT naming the file and what is wrong;
 * RF_EIO when it cannot be read). */
RF_API rf_status rf_index_open(const char *path, rf_index **out, rf_error *err) RF_WUR;
RF_API void rf_index_close(rf_index *ix);

/* RF_EUSAGE naming both files when the index was not built from this model (fingerprint) or
 * its shape (K, d) is not the model's. */
RF_API rf_status rf_index_check_model(const rf_index *ix, const rf_model *m, const char *model_path,
                                      rf_error *err) RF_WUR;

RF_API const char *rf_index_path(const rf_index *ix);
RF_API size_t rf_index_size(const rf_index *ix);       /* N */
RF_API int rf_index_tasks(const rf_index *ix);         /* K */
RF_API int rf_index_dim(const rf_index *ix);           /* d */
RF_API uint64_t rf_index_fingerprint(const rf_index *ix);
RF_API const char *rf_index_id(const rf_index *ix, size_t i);
RF_API const float *rf_index_vectors(const rf_index *ix); /* (N, K, d) */
RF_API const float *rf_index_biases(const rf_index *ix);  /* (N, K) */

/* ---- building an index from raw item rows (resflow index) ---------------------------------- */

typedef struct rf_index_builder rf_index_builder;

/* A builder for a loaded twin-tower model (RF_EUSAGE for another model): item rows are encoded
 * with the model's encoders (rowenc.h) and run through its item towers (twin.h) in batches of
 * `batch` rows (0 = 4096); threads: OpenMP threads of the towers and the quantizer (0 = the
 * caller's default). */
RF_API rf_status rf_index_builder_create(const rf_loaded_model *lm, int batch, int threads,
                                         rf_index_builder **out, rf_error *err) RF_WUR;
RF_API void rf_index_builder_free(rf_index_builder *b);
/* 1 when the model reads column name on the item side, 0 otherwise (a user-side column, or one
 * the model does not read). */
RF_API int rf_index_builder_item_column(const rf_index_builder *b, const char *name);
/* Add one item: its id and n (name, value) pairs; pairs of columns the model does not read on
 * the item side are ignored (user-side columns: the item towers do not read them); item columns
 * not given are missing values. RF_EDATA names the item (id and its row number, 1-based) and
 * the column when a value cannot be encoded. */
RF_API rf_status rf_index_builder_add(rf_index_builder *b, const char *id, int n, const char *const *names,
                                      const char *const *values, rf_error *err) RF_WUR;
RF_API size_t rf_index_builder_count(const rf_index_builder *b);
/* Compute the last vectors and write the index to path (rf_index_write). */
RF_API rf_status rf_index_builder_write(rf_index_builder *b, const char *path, rf_error *err) RF_WUR;

#ifdef __cplusplus
}
#endif
#endif
