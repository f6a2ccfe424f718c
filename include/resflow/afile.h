/* afile.h - every output of resflow is written through this: a temporary file created next to
 * the destination with a unique name and O_EXCL, written, then (optionally fsync'ed) renamed
 * over the destination and the directory entry made durable. A reader never sees a partial
 * file; on any error, or on rf_afile_abort, the temporary file is removed and an existing
 * destination is kept as it was.
 *
 *   rf_afile *f;
 *   if (rf_afile_open(path, 0, &f, err)) return err->code;
 *   fprintf(rf_afile_fp(f), ...);            or write(rf_afile_fd(f), ...)
 *   return rf_afile_commit(f, RF_AFILE_DURABLE, err);   (frees f, also on failure)
 *
 * Temporary names are "<dir>/.<base>.tmp.<pid>.<n>" (n a per-process counter mixed with the
 * clock), so two writers of the same destination never collide; rf_afile_open removes those of
 * processes that no longer exist (kill(pid, 0) fails with ESRCH).
 *
 * What stands at the destination (docs/reliability.md):
 *   - nothing or a regular file: replaced at commit;
 *   - a symbolic link to a regular file: written through, i.e. the link's (fully resolved)
 *     target is replaced, in the target's directory, and the link is kept;
 *   - anything else (device node, FIFO, socket, directory, a link to one of those or a dangling
 *     link): refused with RF_EIO naming what it is; nothing is created.
 * A writer holds an exclusive advisory lock (flock) on "<dir>/.<base>.lock" from open to
 * commit/abort (the file is removed when released): a second writer of the same destination,
 * in this or another process, fails at once with RF_EIO "another resflow process is writing".
 */
#ifndef RESFLOW_AFILE_H
#define RESFLOW_AFILE_H

#include <stdio.h>

#include "resflow.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rf_afile rf_afile;

/* Commit flags. DURABLE: fsync the data before the rename and the directory after it (model
 * files, checkpoints); without it the rename alone is atomic but may be lost in a power cut
 * (derived data that is verified and rebuilt when torn, e.g. the dataset cache). */
#define RF_AFILE_DURABLE 1

/* Check the destination, take the lock, remove stale temporaries, create the temporary file for
 * path. open_flags are added to O_WRONLY|O_CREAT|O_EXCL (e.g. O_CLOEXEC; 0 for none). RF_EIO
 * names the file and the reason (not a regular file, see above; no such directory; no
 * permission; locked by another writer). */
RF_API rf_status rf_afile_open(const char *path, int open_flags, rf_afile **out, rf_error *err) RF_WUR;
/* What rf_afile_open would refuse, checked without writing anything (before a long run): the
 * destination is not a regular file, its directory is missing or not writable (RF_EIO; the
 * lock is not taken). */
RF_API rf_status rf_afile_check(const char *path, rf_error *err) RF_WUR;
/* 1 when a and b both exist and are the same file (device and inode, links followed), else 0:
 * for the tools to refuse an output that is one of the run's inputs. */
RF_API int rf_same_file(const char *a, const char *b);
/* The temporary file's descriptor, and a stdio stream on it (created on first call; do not
 * mix the two without fflush). */
RF_API int rf_afile_fd(const rf_afile *f);
RF_API FILE *rf_afile_fp(rf_afile *f);
RF_API const char *rf_afile_tmp_path(const rf_afile *f);
RF_API const char *rf_afile_path(const rf_afile *f);
/* Mark the file as failed (e.g. a write error seen by the caller, with errno e): commit will
 * then abort and report it. */
RF_API void rf_afile_fail(rf_afile *f, int e);
/* Flush, check every write (stdio's error flag included), close, rename over the destination.
 * Frees f whatever happens; on failure the temporary is removed and RF_EIO names the
 * destination and the reason. */
RF_API rf_status rf_afile_commit(rf_afile *f, int flags, rf_error *err) RF_WUR;
/* Give up: close and remove the temporary file, free f (NULL is a no-op). */
RF_API void rf_afile_abort(rf_afile *f);

/* The writer's lock of path (the one rf_afile_open takes) held for a whole run, e.g. from the
 * start of a training to its save: another process (or another rf_afile_lock_take) then fails
 * at once with RF_EIO "another resflow process is writing", while rf_afile_open of the same
 * destination in this process writes under it. Checks the destination as rf_afile_open does. */
typedef struct rf_afile_lock rf_afile_lock;
RF_API rf_status rf_afile_lock_take(const char *path, rf_afile_lock **out, rf_error *err) RF_WUR;
/* Release it and remove its file (NULL is a no-op). */
RF_API void rf_afile_lock_release(rf_afile_lock *l);

/* The whole of data[0..len) to path, atomically and durably (a convenience over the above). */
RF_API rf_status rf_write_atomic(const char *path, const char *data, size_t len, rf_error *err) RF_WUR;

#ifdef __cplusplus
}
#endif
#endif
