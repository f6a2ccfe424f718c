/* dist.h - data-parallel training over processes (MPI), docs/distributed.md.
 *
 * A communicator (rf_comm) is the whole world of processes started together (`mpirun -np N`).
 * The MPI build (`make MPI=1`) implements it over OpenMPI; the default build has a one-process
 * implementation with the same functions, so callers have no #ifdefs: with one process every
 * collective is a copy or nothing.
 *
 * Data parallelism (rf_dist) plugs into rf_train's hooks (train.h): every process holds the same
 * model (same seed, same updates) and visits the same global batches (the row order is seeded
 * the same everywhere); process r computes only the rows of a batch that fall in its shard, the
 * row range [r*n/N, (r+1)*n/N) of the training set, so it reads only those rows (a mapped cache
 * pages in only its range). Its gradients are scaled by B_r/B (its rows over the batch's), the
 * dense ones are summed over the processes as one flat buffer, the embedding rows are exchanged
 * sparsely (each process's touched rows and values gathered everywhere, then merged in rank
 * order, so every process has the same sum) and every process applies the same optimizer step.
 * The result is the one-process result up to the order of float summation. Evaluation predicts
 * each process's slice of the set and gathers the scores, then computes exact metrics over the
 * whole set (every process gets the same result, so early stopping decides alike everywhere).
 * Batch-dependent layers (model.bn: batch, zoo models with BatchNorm) are synchronised: each
 * BatchNorm takes its statistics over the global batch (rf_train_dist's sum, rf_ws_set_batch_sum).
 */
#ifndef RESFLOW_DIST_H
#define RESFLOW_DIST_H

#include <stdint.h>

#include "train.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rf_comm rf_comm;

/* The world communicator; initialises MPI in the MPI build when nobody has (finalised by
 * rf_comm_free then: MPI cannot start again, so a later rf_comm_create in the same process
 * fails with RF_EUSAGE). One process without MPI. */
RF_API rf_status rf_comm_create(rf_comm **out, rf_error *err) RF_WUR;
RF_API void rf_comm_free(rf_comm *c);
/* "mpi" or "single": what this build implements. */
RF_API const char *rf_comm_kind(void);
RF_API int rf_comm_rank(const rf_comm *c);
RF_API int rf_comm_size(const rf_comm *c);
/* Processes of the world on this node (threads per process: cores / this). */
RF_API int rf_comm_local_size(const rf_comm *c);
/* Sum n values over all processes, in place (every process gets the same sums). */
RF_API rf_status rf_comm_sum_f32(rf_comm *c, float *v, size_t n, rf_error *err) RF_WUR;
RF_API rf_status rf_comm_sum_f64(rf_comm *c, double *v, size_t n, rf_error *err) RF_WUR;
/* Every process's bytes (bytes each, the same on all) into all (size * bytes), in rank order. */
RF_API rf_status rf_comm_allgather(rf_comm *c, const void *mine, size_t bytes, void *all, rf_error *err) RF_WUR;
/* The same with counts[r] bytes from process r (counts known everywhere). */
RF_API rf_status rf_comm_allgatherv(rf_comm *c, const void *mine, void *all, const size_t *counts,
                                    rf_error *err) RF_WUR;
RF_API rf_status rf_comm_barrier(rf_comm *c, rf_error *err) RF_WUR;
/* Ends every process of the world (MPI_Abort) with code; the caller prints its message first.
 * One process: returns (the caller exits). Only tools call it. */
RF_API void rf_comm_abort(rf_comm *c, int code);
/* Bytes this process sent and seconds it spent in collectives, since creation. */
RF_API void rf_comm_stats(const rf_comm *c, uint64_t *bytes, double *seconds);

/* Agreement at a phase boundary that every process reaches: each gives its status; if any
 * failed, every process returns the status and message of the lowest failing rank, the message
 * prefixed with "rank R: " when there are several processes. */
RF_API rf_status rf_comm_agree(rf_comm *c, rf_status st, rf_error *err) RF_WUR;
/* RF_EUSAGE on every process when the n bytes (e.g. the configuration's dump) differ between
 * processes (an XXH3 hash is compared), naming the first rank that differs from rank 0 and what. */
RF_API rf_status rf_comm_check_same(rf_comm *c, const void *bytes, size_t n, const char *what,
                                    rf_error *err) RF_WUR;

/* Data-parallel training state for model m over a training set of n_train rows; threads: of
 * the evaluation (0 = as the caller's). NULL when out of memory. Train with
 * rf_dist_hooks(d, &hooks) and rf_train_parallel(m, opts, &hooks, rf_dist_train_dist(d), ...). */
typedef struct rf_dist rf_dist;
RF_API rf_dist *rf_dist_create(rf_comm *c, const rf_model *m, size_t n_train, int threads);
RF_API void rf_dist_free(rf_dist *d);
/* RF_EUSAGE when m cannot be trained data-parallel over several processes; every model can
 * today (BatchNorm is synchronised), so RF_OK. */
RF_API rf_status rf_dist_check_model(const rf_comm *c, const rf_model *m, rf_error *err) RF_WUR;
/* Fill the gradient hook of h (the rest untouched); the data-parallel part of rf_train_parallel. */
RF_API void rf_dist_hooks(rf_dist *d, rf_train_hooks *h);
RF_API const rf_train_dist *rf_dist_train_dist(const rf_dist *d);
/* Evaluate ds over all processes (each predicts its slice; exact metrics over the whole set). */
RF_API rf_status rf_dist_evaluate(rf_dist *d, const rf_model *m, const rf_dataset *ds, rf_eval_result *out,
                                  rf_error *err) RF_WUR;
/* RF_EINTERNAL on every process unless the parameters, buffers and embeddings are bitwise the
 * same on all processes (an XXH3 hash of them is compared). */
RF_API rf_status rf_dist_check_params(rf_dist *d, const rf_model *m, rf_error *err) RF_WUR;
/* Communication so far: sparse rows sent by this process, optimizer steps exchanged. */
RF_API void rf_dist_stats(const rf_dist *d, uint64_t *emb_rows_sent, long *steps);

#ifdef __cplusplus
}
#endif
#endif
