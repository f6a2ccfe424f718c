/* test_fileio.c - atomic output files: the whole file or nothing, and a named error. */
#include "test_util.h"

#include <dirent.h>
#include <errno.h>

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

/* Entries of dir whose name contains ".tmp." (temporary files left behind). */
static int count_tmp(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));) n += strstr(e->d_name, ".tmp.") != NULL;
    if (d) closedir(d);
    return n;
}

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
    /* the target is a directory: the rename fails, the old content stays, no temporary file */
    const char *dir = tmp_path("d");
    assert_int_equal(mkdir(dir, 0777), 0);
    assert_int_equal(rf_write_atomic(dir, "x", 1, &e), RF_EIO);
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
    /* two writers of one destination at once: distinct temporary files, last commit wins */
    rf_afile *a, *b;
    assert_int_equal(rf_afile_open(p, 0, &a, &e), RF_OK);
    assert_int_equal(rf_afile_open(p, 0, &b, &e), RF_OK);
    assert_string_not_equal(rf_afile_tmp_path(a), rf_afile_tmp_path(b));
    fprintf(rf_afile_fp(a), "from %s", "a");
    fprintf(rf_afile_fp(b), "from b");
    assert_string_equal(slurp(p), "old"); /* nothing visible before the commit */
    assert_int_equal(rf_afile_commit(a, RF_AFILE_DURABLE, &e), RF_OK);
    assert_string_equal(slurp(p), "from a");
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_write_atomic),
        cmocka_unit_test(test_afile_stream),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
