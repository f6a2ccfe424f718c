/* checkpoint.h - training checkpoints: everything rf_train needs to continue a run so that it
 * ends with the same model, byte for byte, as a run that was never interrupted (same data,
 * configuration and thread count): the configuration, the thread count, the loop position and
 * early-stopping bookkeeping (rf_train_pos), the current and the kept best parameters
 * (dense, BatchNorm statistics, embeddings) and the optimizer state.
 *
 * Written through the atomic writer (afile.h, durable: fsync, rename, directory fsync), so a
 * crash at any moment leaves the previous checkpoint or the new one whole. Layout
 * (little-endian): "RESFLOWC" | u32 version | u32 endian marker 0x01020304 | u64 length +
 * config text | u32 threads | u64 data fingerprint (version 2; version 1 files, without it,
 * are still read) | the position | u64 sizeof(rf_eval_result) + its bytes (the best
 * validation result, host layout) | u64 floats of params, buffers, embeddings | current
 * params, buffers, embeddings | best params, buffers, embeddings | u64 length + optimizer
 * state | u64 XXH64 of everything before it. */
#ifndef RESFLOW_CHECKPOINT_H
#define RESFLOW_CHECKPOINT_H

#include "afile.h"
#include "dataset.h"
#include "train.h"

#ifdef __cplusplus
extern "C" {
#endif

#define RF_CKPT_MAGIC "RESFLOWC"
#define RF_CKPT_VERSION 2

typedef struct {
    char *config;                        /* the run's configuration (YAML), NUL-terminated */
    int threads;                         /* the thread count the run trained with */
    uint64_t data_hash;                  /* rf_checkpoint_data_hash of the run's data */
    int has_data_hash;                   /* 0: a version 1 checkpoint (no fingerprint) */
    rf_train_pos pos;
    size_t n_params, n_buffers, n_emb;   /* floats of each array */
    float *params, *buffers, *emb;       /* the current parameters */
    float *best_params, *best_buffers, *best_emb; /* the kept best */
    unsigned char *opt_state;            /* rf_optimizer_save_state bytes */
    size_t opt_state_n;
} rf_checkpoint;

/* The fingerprint of the data a run trains on: XXH3-64 of the train, validation and test sets
 * as rf_train reads them (shapes, field descriptions, the encoded ids, dense values, labels,
 * weights, groups). Given the configuration and thread count (stored in the checkpoint), the
 * run's course is a function of exactly these arrays, so equal fingerprints mean a resumed
 * run ends as an uninterrupted run on the same data would; it costs one pass over the arrays
 * in memory (no file is read again). NULL sets are allowed. */
RF_API uint64_t rf_checkpoint_data_hash(const rf_dataset *train, const rf_dataset *valid, const rf_dataset *test);
/* Write the state a step hook sees (train.h) with the run's configuration text, thread count
 * and data fingerprint to path, atomically and durably. */
RF_API rf_status rf_checkpoint_save(const char *path, const char *config, int threads, uint64_t data_hash,
                                    const rf_train_state *s, rf_error *err) RF_WUR;
/* Read and verify (magic, version, sizes, checksum, finite parameters): RF_EFORMAT names what
 * is wrong. */
RF_API rf_status rf_checkpoint_load(const char *path, rf_checkpoint *out, rf_error *err) RF_WUR;
/* RF_EDATA naming both fingerprints when the checkpoint was written for other data than the
 * fingerprint data_hash (rf_checkpoint_data_hash); RF_OK for a version 1 checkpoint, which has
 * none (c->has_data_hash == 0: the caller may say that the data is not checked). */
RF_API rf_status rf_checkpoint_check_data(const rf_checkpoint *c, uint64_t data_hash, rf_error *err) RF_WUR;
/* Prepare m (created from the checkpoint's configuration on the same data) to continue the
 * run: checks that the shapes match (RF_EFORMAT otherwise), copies the current parameters into
 * m and fills r (pointing into c: keep c until rf_train returns). */
RF_API rf_status rf_checkpoint_resume(const rf_checkpoint *c, rf_model *m, rf_train_resume *r,
                                      rf_error *err) RF_WUR;
RF_API void rf_checkpoint_free(rf_checkpoint *c);
/* Make path the checkpoint file of a run: refused (RF_EUSAGE) when something that is not a
 * checkpoint stands there (it would be overwritten), else its writer lock (afile.h) is taken
 * into *lock, to release when the run ends (RF_EIO when another process writes it). */
RF_API rf_status rf_checkpoint_claim(const char *path, rf_afile_lock **lock, rf_error *err) RF_WUR;
/* The schedule text of train.checkpoint_every (or resflow train --checkpoint-every): "" (none:
 * both 0), "N" steps (N a positive integer: *steps = N) or a time "Ns", "Nm", "Nh" (N > 0, a
 * decimal number: *seconds). RF_EUSAGE naming the text and what is expected otherwise, with
 * *steps and *seconds unchanged. */
RF_API rf_status rf_checkpoint_every(const char *text, long *steps, double *seconds, rf_error *err) RF_WUR;

#ifdef __cplusplus
}
#endif
#endif
