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

#include "model.h"

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

#ifdef __cplusplus
}
#endif
#endif
