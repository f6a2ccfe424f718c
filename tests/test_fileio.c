/* test_fileio.c - rf_write_atomic: the whole file or nothing, and a named error. */
#include "test_util.h"

#include "resflow/resflow.h"

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
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_write_atomic),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
