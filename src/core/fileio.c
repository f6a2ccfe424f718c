/* fileio.c - atomic output files (contract in include/resflow/afile.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "resflow/afile.h"

struct rf_afile {
    char *path, *tmp;
    int fd;
    FILE *fp;
    int err_no; /* first error seen (rf_afile_fail or a failed fdopen) */
};

static atomic_uint afile_counter; /* unique temp names within the process (no other state) */

rf_status rf_afile_open(const char *path, int open_flags, rf_afile **out, rf_error *err)
{
    *out = NULL;
    if (!path || !*path) return rf_errorf(err, RF_EUSAGE, "empty output path");
    rf_afile *f = calloc(1, sizeof *f);
    size_t n = strlen(path);
    if (!f || !(f->path = malloc(n + 1)) || !(f->tmp = malloc(n + 64))) {
        if (f) free(f->path);
        free(f);
        return rf_errorf(err, RF_ENOMEM, "out of memory");
    }
    memcpy(f->path, path, n + 1);
    const char *slash = strrchr(path, '/');
    int dlen = slash ? (int)(slash - path + 1) : 0;
    for (int tries = 0;; tries++) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        unsigned c = atomic_fetch_add(&afile_counter, 1u);
        snprintf(f->tmp, n + 64, "%.*s.%s.tmp.%ld.%x%04lx", dlen, path, path + dlen, (long)getpid(), c,
                 (unsigned long)(ts.tv_nsec & 0xffff));
        f->fd = open(f->tmp, O_WRONLY | O_CREAT | O_EXCL | open_flags, 0666);
        if (f->fd >= 0) break;
        if (errno != EEXIST || tries > 100) {
            int e = errno;
            rf_status st = rf_errorf(err, RF_EIO, "cannot write %s: cannot create a file in %s%.*s: %s", path,
                                     dlen ? "" : "the current directory", dlen, path, strerror(e));
            free(f->tmp);
            free(f->path);
            free(f);
            return st;
        }
    }
    *out = f;
    return RF_OK;
}

int rf_afile_fd(const rf_afile *f) { return f->fd; }
const char *rf_afile_tmp_path(const rf_afile *f) { return f->tmp; }
const char *rf_afile_path(const rf_afile *f) { return f->path; }

FILE *rf_afile_fp(rf_afile *f)
{
    if (!f->fp) {
        f->fp = fdopen(f->fd, "wb");
        if (!f->fp && !f->err_no) f->err_no = errno ? errno : ENOMEM;
    }
    return f->fp;
}

void rf_afile_fail(rf_afile *f, int e)
{
    if (f && !f->err_no) f->err_no = e ? e : EIO;
}

static void afile_free(rf_afile *f)
{
    free(f->tmp);
    free(f->path);
    free(f);
}

void rf_afile_abort(rf_afile *f)
{
    if (!f) return;
    if (f->fp) fclose(f->fp);
    else if (f->fd >= 0) close(f->fd);
    unlink(f->tmp);
    afile_free(f);
}

/* fsync the directory holding path, so the rename itself survives a crash. */
static void sync_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    char dir[4096];
    if (!slash) snprintf(dir, sizeof dir, ".");
    else if (slash == path) snprintf(dir, sizeof dir, "/");
    else snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

rf_status rf_afile_commit(rf_afile *f, int flags, rf_error *err)
{
    int e = f->err_no;
    if (f->fp) {
        if (!e && fflush(f->fp) != 0) e = errno ? errno : EIO;
        if (!e && ferror(f->fp)) e = EIO;
    }
    if (!e && (flags & RF_AFILE_DURABLE) && fsync(f->fd) != 0) e = errno ? errno : EIO;
    int ce = f->fp ? fclose(f->fp) : close(f->fd);
    if (ce != 0 && !e) e = errno ? errno : EIO;
    f->fp = NULL;
    f->fd = -1;
    if (!e && rename(f->tmp, f->path) != 0) e = errno ? errno : EIO;
    if (e) {
        unlink(f->tmp);
        rf_status st = rf_errorf(err, RF_EIO, "cannot write %s: %s", f->path, strerror(e));
        afile_free(f);
        return st;
    }
    if (flags & RF_AFILE_DURABLE) sync_dir(f->path);
    afile_free(f);
    return RF_OK;
}

rf_status rf_write_atomic(const char *path, const char *data, size_t len, rf_error *err)
{
    rf_afile *f;
    rf_status st = rf_afile_open(path, O_CLOEXEC, &f, err);
    if (st) return st;
    const char *p = data;
    size_t left = len;
    while (left) {
        ssize_t w = write(f->fd, p, left);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            rf_afile_fail(f, w < 0 ? errno : EIO);
            break;
        }
        p += w;
        left -= (size_t)w;
    }
    return rf_afile_commit(f, RF_AFILE_DURABLE, err);
}
