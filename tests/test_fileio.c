/* test_fileio.c - atomic output files: the whole file or nothing, and a named error. */
#include "test_util.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>

#include "resflow/afile.h"

TEST_TMPDIR("fileio")

static char *slurp(const char *p)
{
    FILE *f = fopen(p, "rb");
    if (!f) return NULL;
    static char buf[256];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* Entries of dir whose name contains sub. */
static int count_named(const char *dir, const char *sub)
{
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));) n += strstr(e->d_name, sub) != NULL;
    if (d) closedir(d);
    return n;
}

/* Temporary files left behind in dir. */
static int count_tmp(const char *dir) { return count_named(dir, ".tmp."); }

static void test_write_atomic(void **state)
{
    (void)state;
    const char *p = tmp_path("a.txt");
    rf_error e;
    assert_int_equal(rf_write_atomic(p, "hello\n", 6, &e), RF_OK);
    assert_string_equal(slurp(p), "hello\n");
    assert_int_equal(rf_write_atomic(p, "bye", 3, &e), RF_OK); /* replaces */
    assert_string_equal(slurp(p), "bye");
    char tmp[512];
    snprintf(tmp, sizeof tmp, "%s.tmp", p);
    assert_int_not_equal(access(tmp, F_OK), 0); /* nothing left behind */
    /* a directory that does not exist: RF_EIO naming the file, nothing written */
    const char *bad = tmp_path("no-such-dir/b.txt");
    assert_int_equal(rf_write_atomic(bad, "x", 1, &e), RF_EIO);
    assert_non_null(strstr(e.msg, "no-such-dir/b.txt"));
    /* the target is a directory: refused before anything is created, no temporary file */
    const char *dir = tmp_path("d");
    assert_int_equal(mkdir(dir, 0777), 0);
    assert_int_equal(rf_write_atomic(dir, "x", 1, &e), RF_EIO);
    assert_non_null(strstr(e.msg, "a directory"));
    snprintf(tmp, sizeof tmp, "%s.tmp", dir);
    assert_int_not_equal(access(tmp, F_OK), 0);
    rmdir(dir);
    assert_int_equal(rf_write_atomic(p, "", 0, NULL), RF_OK); /* empty, no error struct */
    assert_string_equal(slurp(p), "");
    assert_int_equal(count_tmp(tmp_path("")), 0); /* no temporary file of any name left */
}

static void test_afile_stream(void **state)
{
    (void)state;
    const char *p = tmp_path("s.txt");
    rf_error e;
    assert_int_equal(rf_write_atomic(p, "old", 3, &e), RF_OK);
    /* one writer at a time: a second open of the destination fails at once (the lock), the
     * first commits; then the next writer may open it */
    rf_afile *a, *b;
    assert_int_equal(rf_afile_open(p, 0, &a, &e), RF_OK);
    assert_int_equal(rf_afile_open(p, 0, &b, &e), RF_EIO);
    assert_non_null(strstr(e.msg, "another resflow process is writing"));
    assert_non_null(strstr(e.msg, "s.txt"));
    fprintf(rf_afile_fp(a), "from %s", "a");
    assert_string_equal(slurp(p), "old"); /* nothing visible before the commit */
    assert_int_equal(rf_afile_commit(a, RF_AFILE_DURABLE, &e), RF_OK);
    assert_string_equal(slurp(p), "from a");
    assert_int_equal(rf_afile_open(p, 0, &b, &e), RF_OK);
    fprintf(rf_afile_fp(b), "from b");
    assert_int_equal(rf_afile_commit(b, 0, &e), RF_OK);
    assert_string_equal(slurp(p), "from b");
    /* abort: the destination is untouched, the temporary gone */
    assert_int_equal(rf_afile_open(p, 0, &a, &e), RF_OK);
    fputs("partial", rf_afile_fp(a));
    rf_afile_abort(a);
    assert_string_equal(slurp(p), "from b");
    /* a failure seen by the caller (e.g. a short write): commit reports it, keeps the old file */
    assert_int_equal(rf_afile_open(p, 0, &a, &e), RF_OK);
    fputs("half", rf_afile_fp(a));
    rf_afile_fail(a, ENOSPC);
    assert_int_equal(rf_afile_commit(a, RF_AFILE_DURABLE, &e), RF_EIO);
    assert_non_null(strstr(e.msg, "s.txt"));
    assert_non_null(strstr(e.msg, strerror(ENOSPC)));
    assert_string_equal(slurp(p), "from b");
    assert_int_equal(count_tmp(tmp_path("")), 0);
}

/* issue #17 finding 5: the lock is held against other processes too, and released at commit
 * and abort (its file removed). */
static void test_afile_lock(void **state)
{
    (void)state;
    const char *p = tmp_path("l.txt");
    rf_error e;
    rf_afile *a;
    assert_int_equal(rf_afile_open(p, 0, &a, &e), RF_OK);
    assert_int_equal(count_named(g_tmp, ".l.txt.lock"), 1);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) { /* another process: refused at once, with the reason */
        rf_afile *c;
        rf_error ce;
        int st = rf_afile_open(p, 0, &c, &ce);
        _exit(st == RF_EIO && strstr(ce.msg, "another resflow process is writing") ? 0 : 1);
    }
    int ws;
    assert_int_equal(waitpid(pid, &ws, 0), pid);
    assert_true(WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
    rf_afile_abort(a);
    assert_int_equal(count_named(g_tmp, ".l.txt.lock"), 0);
    assert_int_equal(rf_write_atomic(p, "x", 1, &e), RF_OK); /* free again */
    assert_int_equal(count_named(g_tmp, ".l.txt.lock"), 0);
    /* other destinations in the same directory are not locked */
    assert_int_equal(rf_afile_open(p, 0, &a, &e), RF_OK);
    assert_int_equal(rf_write_atomic(tmp_path("l2.txt"), "y", 1, &e), RF_OK);
    assert_int_equal(rf_afile_commit(a, 0, &e), RF_OK);
    /* held for a whole run: this process writes under it (twice), another process and another
     * run lock fail; released with its file */
    rf_afile_lock *run, *run2;
    assert_int_equal(rf_afile_lock_take(p, &run, &e), RF_OK);
    assert_int_equal(rf_afile_lock_take(p, &run2, &e), RF_EIO);
    assert_non_null(strstr(e.msg, "another resflow process is writing"));
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        rf_error ce;
        _exit(rf_write_atomic(p, "child", 5, &ce) == RF_EIO ? 0 : 1);
    }
    assert_int_equal(waitpid(pid, &ws, 0), pid);
    assert_true(WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
    assert_int_equal(rf_write_atomic(p, "run", 3, &e), RF_OK);
    assert_int_equal(rf_write_atomic(p, "run2", 4, &e), RF_OK);
    assert_string_equal(slurp(p), "run2");
    assert_int_equal(count_named(g_tmp, ".l.txt.lock"), 1); /* still held */
    rf_afile_lock_release(run);
    assert_int_equal(count_named(g_tmp, ".l.txt.lock"), 0);
    rf_afile_lock_release(NULL);
    assert_int_equal(rf_afile_lock_take("/dev/null", &run, &e), RF_EIO); /* checks the destination */
}

/* issue #17 finding 3: what stands at the destination. */
static void test_afile_refuses(void **state)
{
    (void)state;
    rf_error e;
    rf_afile *a;
    struct stat st;
    /* a device node: refused, left as it was (as root the rename used to replace it). As root,
     * a node of our own (a regression must not replace the machine's /dev/null); otherwise
     * /dev/null, which only root could replace. */
    const char *dev = "/dev/null";
    if (geteuid() == 0 && mknod(tmp_path("null"), S_IFCHR | 0666, makedev(1, 3)) == 0) dev = tmp_path("null");
    assert_int_equal(rf_afile_open(dev, 0, &a, &e), RF_EIO);
    assert_non_null(strstr(e.msg, dev));
    assert_non_null(strstr(e.msg, "character device"));
    assert_int_equal(rf_write_atomic(dev, "x", 1, &e), RF_EIO);
    assert_int_equal(stat(dev, &st), 0);
    assert_true(S_ISCHR(st.st_mode));
    assert_int_equal(rf_afile_check(dev, &e), RF_EIO);
    if (strcmp(dev, "/dev/null")) unlink(dev);
    /* a FIFO */
    const char *fifo = tmp_path("fifo");
    assert_int_equal(mkfifo(fifo, 0666), 0);
    assert_int_equal(rf_write_atomic(fifo, "x", 1, &e), RF_EIO);
    assert_non_null(strstr(e.msg, "FIFO"));
    assert_int_equal(lstat(fifo, &st), 0);
    assert_true(S_ISFIFO(st.st_mode));
    /* a symlink to a regular file: written through, the link kept */
    const char *target = tmp_path("target.txt"), *link = tmp_path("link.txt");
    assert_int_equal(rf_write_atomic(target, "old", 3, &e), RF_OK);
    assert_int_equal(symlink("target.txt", link), 0);
    assert_int_equal(rf_write_atomic(link, "new", 3, &e), RF_OK);
    assert_int_equal(lstat(link, &st), 0);
    assert_true(S_ISLNK(st.st_mode));
    assert_string_equal(slurp(target), "new");
    /* a symlink to a FIFO, a dangling symlink: refused */
    const char *lf = tmp_path("link-fifo"), *ld = tmp_path("link-none");
    assert_int_equal(symlink("fifo", lf), 0);
    assert_int_equal(rf_write_atomic(lf, "x", 1, &e), RF_EIO);
    assert_non_null(strstr(e.msg, "symbolic link to a FIFO"));
    assert_int_equal(symlink("none.txt", ld), 0);
    assert_int_equal(rf_write_atomic(ld, "x", 1, &e), RF_EIO);
    assert_non_null(strstr(e.msg, "missing file"));
    assert_int_not_equal(access(tmp_path("none.txt"), F_OK), 0);
    /* rf_afile_check: a missing directory (RF_EIO, named), a good path (nothing created) */
    assert_int_equal(rf_afile_check(tmp_path("no-dir/m.rf"), &e), RF_EIO);
    assert_non_null(strstr(e.msg, "no-dir"));
    assert_int_equal(rf_afile_check(tmp_path("fresh.rf"), &e), RF_OK);
    assert_int_not_equal(access(tmp_path("fresh.rf"), F_OK), 0);
    assert_int_equal(rf_afile_check(target, &e), RF_OK);
    assert_int_equal(rf_afile_check(link, &e), RF_OK);
    /* rf_same_file: links followed, missing files never the same */
    assert_int_equal(rf_same_file(link, target), 1);
    assert_int_equal(rf_same_file(target, fifo), 0);
    assert_int_equal(rf_same_file(target, tmp_path("none.txt")), 0);
    assert_int_equal(count_tmp(g_tmp), 0);
    unlink(fifo);
    unlink(lf);
    unlink(ld);
    unlink(link);
}

/* issue #17 finding 5: temporaries of dead processes are removed; those of live ones stay. */
static void test_afile_stale(void **state)
{
    (void)state;
    pid_t dead = fork();
    assert_true(dead >= 0);
    if (dead == 0) _exit(0);
    int ws;
    assert_int_equal(waitpid(dead, &ws, 0), dead);
    char stale[512], mine[512], parent[512], other[512];
    snprintf(stale, sizeof stale, "%s/.x.txt.tmp.%ld.1", g_tmp, (long)dead);
    snprintf(mine, sizeof mine, "%s/.x.txt.tmp.%ld.1", g_tmp, (long)getpid());
    snprintf(parent, sizeof parent, "%s/.x.txt.tmp.%ld.1", g_tmp, (long)getppid());
    snprintf(other, sizeof other, "%s/.y.txt.tmp.%ld.1", g_tmp, (long)dead); /* another file's */
    const char *all[] = {stale, mine, parent, other};
    for (int i = 0; i < 4; i++) {
        FILE *f = fopen(all[i], "w");
        assert_non_null(f);
        fclose(f);
    }
    rf_error e;
    assert_int_equal(rf_write_atomic(tmp_path("x.txt"), "x", 1, &e), RF_OK);
    assert_int_not_equal(access(stale, F_OK), 0);
    assert_int_equal(access(mine, F_OK), 0);
    assert_int_equal(access(parent, F_OK), 0);
    assert_int_equal(access(other, F_OK), 0);
    for (int i = 1; i < 4; i++) unlink(all[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_write_atomic),
        cmocka_unit_test(test_afile_stream),
        cmocka_unit_test(test_afile_lock),
        cmocka_unit_test(test_afile_refuses),
        cmocka_unit_test(test_afile_stale),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
