/* fileio.c - atomic output files (contract in include/resflow/afile.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "resflow/afile.h"

struct rf_afile {
    char *path; /* as given (messages, rf_afile_path) */
    char *dest; /* what is replaced: path, or the target of a symlink to a regular file */
    char *tmp, *lock;
    int fd, lock_fd;
    FILE *fp;
    int err_no; /* first error seen (rf_afile_fail or a failed fdopen) */
};

static atomic_uint afile_counter; /* unique temp names within the process (no other state) */

static const char *file_kind(mode_t m)
{
    if (S_ISDIR(m)) return "a directory";
    if (S_ISCHR(m)) return "a character device";
    if (S_ISBLK(m)) return "a block device";
    if (S_ISFIFO(m)) return "a FIFO (named pipe)";
    if (S_ISSOCK(m)) return "a socket";
    return "not a regular file";
}

/* The file an output to path replaces, in *dest (malloc'ed): path itself when it does not exist
 * or is a regular file; the resolved target when path is a symlink to a regular file. Anything
 * else (device, FIFO, socket, directory, dangling link) is refused with RF_EIO. */
static rf_status resolve_dest(const char *path, char **dest, rf_error *err)
{
    *dest = NULL;
    if (!path || !*path) return rf_errorf(err, RF_EUSAGE, "empty output path");
    struct stat ls, st;
    if (lstat(path, &ls) != 0) {
        if (errno != ENOENT)
            return rf_errorf(err, RF_EIO, "cannot write %s: %s", path, strerror(errno));
        *dest = strdup(path);
        return *dest ? RF_OK : rf_errorf(err, RF_ENOMEM, "out of memory");
    }
    if (S_ISREG(ls.st_mode)) {
        *dest = strdup(path);
        return *dest ? RF_OK : rf_errorf(err, RF_ENOMEM, "out of memory");
    }
    if (!S_ISLNK(ls.st_mode))
        return rf_errorf(err, RF_EIO, "cannot write %s: it is %s (resflow replaces only regular files)", path,
                         file_kind(ls.st_mode));
    if (stat(path, &st) != 0)
        return rf_errorf(err, RF_EIO, "cannot write %s: it is a symbolic link to a missing file (%s)", path,
                         strerror(errno));
    if (!S_ISREG(st.st_mode))
        return rf_errorf(err, RF_EIO, "cannot write %s: it is a symbolic link to %s (resflow replaces only "
                         "regular files)", path, file_kind(st.st_mode));
    *dest = realpath(path, NULL);
    if (!*dest) return rf_errorf(err, RF_EIO, "cannot write %s: cannot resolve the link: %s", path, strerror(errno));
    return RF_OK;
}

/* The directory part of p (with its slash) has length *dlen; "" for the current directory. */
static int dir_len(const char *p)
{
    const char *slash = strrchr(p, '/');
    return slash ? (int)(slash - p + 1) : 0;
}

/* Remove "<dir>/.<base>.tmp.<pid>.*" left by processes that no longer exist. */
static void remove_stale_temps(const char *dest)
{
    int dlen = dir_len(dest);
    char dir[PATH_MAX], prefix[NAME_MAX + 8];
    if (dlen >= (int)sizeof dir) return;
    if (dlen) snprintf(dir, sizeof dir, "%.*s", dlen, dest);
    else snprintf(dir, sizeof dir, ".");
    int pl = snprintf(prefix, sizeof prefix, ".%s.tmp.", dest + dlen);
    if (pl <= 0 || pl >= (int)sizeof prefix) return;
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (strncmp(de->d_name, prefix, (size_t)pl) != 0) continue;
        char *end;
        long pid = strtol(de->d_name + pl, &end, 10);
        if (end == de->d_name + pl || *end != '.' || pid <= 0 || pid == (long)getpid()) continue;
        if (kill((pid_t)pid, 0) == -1 && errno == ESRCH) unlinkat(dirfd(d), de->d_name, 0);
    }
    closedir(d);
}

/* Take the writer's lock on lock_path (flock, exclusive, not waiting) into *fd. The holder
 * removes the file before releasing it, so a lock taken on a file that is no longer at that
 * path is retried. shown: the destination as the caller named it (messages). */
static rf_status take_lock(const char *lock_path, const char *shown, int *fd_out, rf_error *err)
{
    for (int tries = 0; tries < 100; tries++) {
        int fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
        if (fd < 0) return rf_errorf(err, RF_EIO, "cannot write %s: cannot create %s: %s", shown, lock_path, strerror(errno));
        if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
            int e = errno;
            close(fd);
            if (e == EWOULDBLOCK)
                return rf_errorf(err, RF_EIO, "cannot write %s: another resflow process is writing %s", shown, shown);
            return rf_errorf(err, RF_EIO, "cannot write %s: cannot lock %s: %s", shown, lock_path, strerror(e));
        }
        struct stat a, b;
        if (fstat(fd, &a) == 0 && stat(lock_path, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino) {
            *fd_out = fd;
            return RF_OK;
        }
        close(fd); /* the previous holder removed it meanwhile: take the new one */
    }
    return rf_errorf(err, RF_EIO, "cannot write %s: cannot lock %s", shown, lock_path);
}

static void drop_lock(const char *lock_path, int fd)
{
    if (fd >= 0) {
        unlink(lock_path); /* still held: nobody else can have locked this file */
        close(fd);
    }
}

/* "<dir>/.<base>.lock" for the destination dest (malloc'ed). */
static char *lock_name(const char *dest)
{
    size_t n = strlen(dest);
    char *l = malloc(n + 16);
    int dlen = dir_len(dest);
    if (l) snprintf(l, n + 16, "%.*s.%s.lock", dlen, dest, dest + dlen);
    return l;
}

/* Locks held for a whole run (rf_afile_lock_take): rf_afile_open of the same destination in
 * this process then writes under it instead of taking it again. */
struct rf_afile_lock {
    char *lock;
    int fd;
    pid_t pid; /* the taker: a forked child shares the lock but is another writer */
    struct rf_afile_lock *next;
};
static rf_afile_lock *held_locks;
static pthread_mutex_t held_mu = PTHREAD_MUTEX_INITIALIZER;

/* 1 when this process holds lock_path through rf_afile_lock_take. */
static int lock_held_here(const char *lock_path)
{
    struct stat ls, hs;
    int here = 0;
    if (stat(lock_path, &ls) != 0) return 0;
    pthread_mutex_lock(&held_mu);
    for (rf_afile_lock *h = held_locks; h && !here; h = h->next)
        here = h->pid == getpid() && fstat(h->fd, &hs) == 0 && hs.st_dev == ls.st_dev && hs.st_ino == ls.st_ino;
    pthread_mutex_unlock(&held_mu);
    return here;
}

rf_status rf_afile_lock_take(const char *path, rf_afile_lock **out, rf_error *err)
{
    *out = NULL;
    char *dest;
    rf_status st = resolve_dest(path, &dest, err);
    if (st) return st;
    rf_afile_lock *l = calloc(1, sizeof *l);
    if (!l || !(l->lock = lock_name(dest))) {
        free(l);
        free(dest);
        return rf_errorf(err, RF_ENOMEM, "out of memory");
    }
    free(dest);
    if ((st = take_lock(l->lock, path, &l->fd, err))) {
        free(l->lock);
        free(l);
        return st;
    }
    l->pid = getpid();
    pthread_mutex_lock(&held_mu);
    l->next = held_locks;
    held_locks = l;
    pthread_mutex_unlock(&held_mu);
    *out = l;
    return RF_OK;
}

void rf_afile_lock_release(rf_afile_lock *l)
{
    if (!l) return;
    pthread_mutex_lock(&held_mu);
    for (rf_afile_lock **p = &held_locks; *p; p = &(*p)->next)
        if (*p == l) {
            *p = l->next;
            break;
        }
    pthread_mutex_unlock(&held_mu);
    drop_lock(l->lock, l->fd);
    free(l->lock);
    free(l);
}

static void release_lock(rf_afile *f)
{
    drop_lock(f->lock, f->lock_fd);
    f->lock_fd = -1;
}

static void afile_free(rf_afile *f)
{
    release_lock(f);
    free(f->tmp);
    free(f->lock);
    free(f->dest);
    free(f->path);
    free(f);
}

rf_status rf_afile_open(const char *path, int open_flags, rf_afile **out, rf_error *err)
{
    *out = NULL;
    char *dest;
    rf_status st = resolve_dest(path, &dest, err);
    if (st) return st;
    rf_afile *f = calloc(1, sizeof *f);
    size_t n = strlen(dest);
    if (!f || !(f->path = strdup(path)) || !(f->tmp = malloc(n + 64)) || !(f->lock = lock_name(dest))) {
        if (f) {
            free(f->path);
            free(f->tmp);
        }
        free(f);
        free(dest);
        return rf_errorf(err, RF_ENOMEM, "out of memory");
    }
    f->dest = dest;
    f->fd = f->lock_fd = -1;
    int dlen = dir_len(dest);
    if (!lock_held_here(f->lock) && (st = take_lock(f->lock, path, &f->lock_fd, err))) {
        afile_free(f);
        return st;
    }
    remove_stale_temps(dest);
    for (int tries = 0;; tries++) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        unsigned c = atomic_fetch_add(&afile_counter, 1u);
        snprintf(f->tmp, n + 64, "%.*s.%s.tmp.%ld.%x%04lx", dlen, dest, dest + dlen, (long)getpid(), c,
                 (unsigned long)(ts.tv_nsec & 0xffff));
        f->fd = open(f->tmp, O_WRONLY | O_CREAT | O_EXCL | open_flags, 0666);
        if (f->fd >= 0) break;
        if (errno != EEXIST || tries > 100) {
            int e = errno;
            st = rf_errorf(err, RF_EIO, "cannot write %s: cannot create a file in %s%.*s: %s", path,
                           dlen ? "" : "the current directory", dlen, dest, strerror(e));
            afile_free(f);
            return st;
        }
    }
    *out = f;
    return RF_OK;
}

rf_status rf_afile_check(const char *path, rf_error *err)
{
    char *dest;
    rf_status st = resolve_dest(path, &dest, err);
    if (st) return st;
    int dlen = dir_len(dest);
    char dir[PATH_MAX];
    if (dlen >= (int)sizeof dir) {
        free(dest);
        return rf_errorf(err, RF_EIO, "cannot write %s: the path is too long", path);
    }
    if (dlen) snprintf(dir, sizeof dir, "%.*s", dlen > 1 ? dlen - 1 : 1, dest); /* without the slash */
    else snprintf(dir, sizeof dir, ".");
    free(dest);
    struct stat ds;
    if (stat(dir, &ds) != 0)
        return rf_errorf(err, RF_EIO, "cannot write %s: directory %s: %s", path, dir, strerror(errno));
    if (!S_ISDIR(ds.st_mode)) return rf_errorf(err, RF_EIO, "cannot write %s: %s is not a directory", path, dir);
    if (access(dir, W_OK | X_OK) != 0)
        return rf_errorf(err, RF_EIO, "cannot write %s: cannot create files in %s: %s", path, dir, strerror(errno));
    return RF_OK;
}

int rf_same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    if (!a || !b || !*a || !*b || stat(a, &sa) != 0 || stat(b, &sb) != 0) return 0;
    return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
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
    if (!e && rename(f->tmp, f->dest) != 0) e = errno ? errno : EIO;
    if (e) {
        unlink(f->tmp);
        rf_status st = rf_errorf(err, RF_EIO, "cannot write %s: %s", f->path, strerror(e));
        afile_free(f);
        return st;
    }
    if (flags & RF_AFILE_DURABLE) sync_dir(f->dest);
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
