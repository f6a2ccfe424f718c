/* test_csv.c - vocabularies (rf_vocab_*), the CSV/TSV loader (rf_load_csv) and
 * rf_dataset_write_csv: round trips, quoting, CRLF, multi-valued fields, OOV, min_count,
 * label products, .gz input, exact number parsing, skip_bad_rows/max_rows, the golden corpus
 * of invalid inputs in tests/cases/csv/invalid, and the real-data samples in ../shared/data. */
#include "test_util.h"

#include <dirent.h>
#include <float.h>
#include <time.h>
#include <unistd.h>

#include <zlib.h>

#include "resflow/config.h"
#include "resflow/data.h"
#include "resflow/pipeline.h"

/* ---- helpers -------------------------------------------------------------------------- */

TEST_TMPDIR("csv")

static const char *write_bin(const char *name, const char *content, size_t len)
{
    const char *p = tmp_path(name);
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    fwrite(content, 1, len, f);
    fclose(f);
    return p;
}

static const char *write_tmp(const char *name, const char *content) { return write_bin(name, content, strlen(content)); }

static void schema_init(rf_schema *s)
{
    memset(s, 0, sizeof *s);
    s->delim = ',';
    s->min_count = 1;
}

static void add_cat(rf_schema *s, const char *name, int multi, int pooling, char sep)
{
    rf_cat_spec *c = &s->cat[s->F++];
    snprintf(c->name, sizeof c->name, "%s", name);
    c->multi = multi;
    c->pooling = pooling;
    c->sep = sep;
}

static void add_dense(rf_schema *s, const char *name)
{
    snprintf(s->dense[s->D++], RF_NAME_MAX, "%s", name);
}

static void add_label(rf_schema *s, const char *spec)
{
    snprintf(s->label[s->K++], sizeof s->label[0], "%s", spec);
}

static void print_err(const rf_error *e)
{
    char b[2048];
    fprintf(stderr, "  error: %s\n", rf_error_format(e, b, sizeof b));
}

/* Load expecting success. */
static rf_dataset *load_ok(const char *path, const rf_schema *s, rf_encoders **enc,
                           rf_load_opts *o)
{
    rf_dataset *ds = NULL;
    rf_error e;
    rf_error_clear(&e);
    rf_status st = rf_load_csv(path, s, enc, o, &ds, &e);
    if (st != RF_OK) print_err(&e);
    assert_int_equal(st, RF_OK);
    assert_non_null(ds);
    return ds;
}

/* Load expecting failure; returns the status and fills e. */
static rf_status load_fail(const char *path, const rf_schema *s, rf_encoders **enc,
                           rf_load_opts *o, rf_error *e)
{
    rf_dataset *ds = NULL;
    rf_error_clear(e);
    rf_status st = rf_load_csv(path, s, enc, o, &ds, e);
    assert_int_not_equal(st, RF_OK);
    assert_null(ds);
    return st;
}

static const char *key_of(const rf_encoders *enc, int f, uint32_t id)
{
    const char *k = rf_vocab_key(enc->vocab[f], id);
    return k ? k : "<oov>";
}

/* ---- vocabulary ----------------------------------------------------------------------- */

static void test_vocab_basic(void **state)
{
    (void)state;
    rf_vocab *v = rf_vocab_create();
    assert_non_null(v);
    const char *keys[] = {"b", "a", "b", "c", "a", "b", "", "d"};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
        assert_int_equal(rf_vocab_count(v, keys[i], strlen(keys[i])), RF_OK);
    /* counts: b3 a2 c1 ""1 d1; min_count 2 keeps b, a in first-seen order */
    rf_vocab_freeze(v, 2);
    assert_int_equal(rf_vocab_size(v), 3);
    assert_int_equal(rf_vocab_lookup(v, "b", 1), 1);
    assert_int_equal(rf_vocab_lookup(v, "a", 1), 2);
    assert_int_equal(rf_vocab_lookup(v, "c", 1), 0);
    assert_int_equal(rf_vocab_lookup(v, "zz", 2), 0);
    assert_string_equal(rf_vocab_key(v, 1), "b");
    assert_string_equal(rf_vocab_key(v, 2), "a");
    assert_null(rf_vocab_key(v, 0));
    assert_null(rf_vocab_key(v, 3));
    /* counting after freeze is a misuse */
    assert_int_not_equal(rf_vocab_count(v, "x", 1), RF_OK);
    /* keys are byte strings: length matters, embedded NULs are fine */
    rf_vocab_free(v);

    v = rf_vocab_create();
    assert_int_equal(rf_vocab_count(v, "a\0b", 3), RF_OK);
    assert_int_equal(rf_vocab_count(v, "a", 1), RF_OK);
    rf_vocab_freeze(v, 1);
    assert_int_equal(rf_vocab_size(v), 3);
    assert_int_equal(rf_vocab_lookup(v, "a\0b", 3), 1);
    assert_int_equal(rf_vocab_lookup(v, "a", 1), 2);
    assert_int_equal(rf_vocab_lookup(v, "a\0c", 3), 0);
    rf_vocab_free(v);
    rf_vocab_free(NULL);
}

static void test_vocab_add(void **state)
{
    (void)state;
    rf_vocab *v = rf_vocab_create();
    assert_int_equal(rf_vocab_size(v), 1);
    assert_int_equal(rf_vocab_lookup(v, "x", 1), 0);
    assert_int_equal(rf_vocab_add(v, "x", 1), RF_OK);
    assert_int_equal(rf_vocab_add(v, "yy", 2), RF_OK);
    assert_int_equal(rf_vocab_add(v, "x", 1), RF_EFORMAT); /* duplicate */
    assert_int_equal(rf_vocab_size(v), 3);
    assert_int_equal(rf_vocab_lookup(v, "x", 1), 1);
    assert_int_equal(rf_vocab_lookup(v, "yy", 2), 2);
    assert_string_equal(rf_vocab_key(v, 2), "yy");
    rf_vocab_free(v);
}

/* Millions of keys: count, freeze with min_count, look every key up. */
/* Integer keys go through the vocabulary's direct table: ids, counts, min_count and lookups
 * equal a plain first-seen reference for canonical, non-canonical ("07", "+7"), dense, sparse
 * and huge integers mixed with strings, through growth and freezing. */
static void test_vocab_integer_keys(void **state)
{
    (void)state;
    enum { N = 40000, MAXK = 40000 };
    char (*keys)[24] = calloc(MAXK, sizeof *keys);
    uint32_t *cnt = calloc(MAXK, sizeof *cnt), nk = 0;
    rf_vocab *v = rf_vocab_create();
    uint64_t r = 99;
    char k[24];
    for (int i = 0; i < N; i++) {
        r ^= r << 13;
        r ^= r >> 7;
        r ^= r << 17;
        int kind = (int)(r % 10);
        uint64_t x = r >> 20;
        if (kind < 5) snprintf(k, sizeof k, "%llu", (unsigned long long)(x % 20000));         /* dense ids */
        else if (kind == 5) snprintf(k, sizeof k, "%llu", (unsigned long long)(x % 5000000)); /* sparse */
        else if (kind == 6) snprintf(k, sizeof k, "0%llu", (unsigned long long)(x % 50));     /* "07" */
        else if (kind == 7) snprintf(k, sizeof k, "+%llu", (unsigned long long)(x % 50));
        else if (kind == 8) snprintf(k, sizeof k, "%llu", (unsigned long long)(x % 100000000000ULL));
        else snprintf(k, sizeof k, "s%llu", (unsigned long long)(x % 500));
        uint32_t j = 0;
        while (j < nk && strcmp(keys[j], k)) j++;
        if (j == nk) {
            assert_true(nk < MAXK);
            memcpy(keys[nk++], k, sizeof k);
        }
        cnt[j]++;
        assert_int_equal(rf_vocab_count(v, k, strlen(k)), RF_OK);
        if (i % 1000 == 0) assert_int_equal(rf_vocab_size(v), nk + 1);
    }
    rf_vocab_freeze(v, 2);
    uint32_t id = 0;
    for (uint32_t j = 0; j < nk; j++) {
        uint32_t want = cnt[j] >= 2 ? ++id : 0;
        assert_int_equal(rf_vocab_lookup(v, keys[j], strlen(keys[j])), want);
        if (want) assert_string_equal(rf_vocab_key(v, want), keys[j]);
    }
    assert_int_equal(rf_vocab_size(v), id + 1);
    assert_int_equal(rf_vocab_lookup(v, "4999999", 7), rf_vocab_lookup(v, "4999999", 7));
    assert_int_equal(rf_vocab_lookup(v, "", 0), 0);
    rf_vocab_free(v);
    free(keys);
    free(cnt);
}

static void test_vocab_millions(void **state)
{
    (void)state;
    const uint32_t N = 2000000;
    rf_vocab *v = rf_vocab_create();
    char k[32];
    clock_t t0 = clock();
    for (uint32_t i = 0; i < N; i++) {
        int n = snprintf(k, sizeof k, "key_%u", i);
        assert_int_equal(rf_vocab_count(v, k, (size_t)n), RF_OK);
        if (i % 2 == 0) assert_int_equal(rf_vocab_count(v, k, (size_t)n), RF_OK);
    }
    rf_vocab_freeze(v, 2); /* keeps the even keys */
    assert_int_equal(rf_vocab_size(v), N / 2 + 1);
    for (uint32_t i = 0; i < N; i++) {
        int n = snprintf(k, sizeof k, "key_%u", i);
        uint32_t id = rf_vocab_lookup(v, k, (size_t)n);
        if (i % 2) {
            assert_int_equal(id, 0);
        } else {
            assert_int_equal(id, i / 2 + 1);
        }
    }
    assert_string_equal(rf_vocab_key(v, 3), "key_4");
    double secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
    fprintf(stderr, "  vocab: %u keys counted x1.5, frozen, looked up in %.2f s\n", N, secs);
    rf_vocab_free(v);
}

/* ---- loading basics ------------------------------------------------------------------- */

static void test_basic_load(void **state)
{
    (void)state;
    const char *p = write_tmp("basic.csv", "id,user,item,price,age,click\n"
                                           "0,u1,i1,1.5,20,1\n"
                                           "1,u2,i1,-2,30,0\n"
                                           "2,u1,,3e2,40,0\n");
    rf_schema s;
    schema_init(&s);
    add_cat(&s, "item", 0, 0, 0);
    add_cat(&s, "user", 0, 0, 0);
    add_dense(&s, "price");
    add_dense(&s, "age");
    add_label(&s, "click");
    rf_encoders *enc = NULL;
    rf_dataset *ds = load_ok(p, &s, &enc, NULL);
    assert_non_null(enc);
    assert_int_equal(enc->F, 2);
    assert_int_equal(ds->n, 3);
    assert_int_equal(ds->F, 2);
    assert_int_equal(ds->D, 2);
    assert_int_equal(ds->K, 1);
    assert_string_equal(ds->fields[0].name, "item");
    assert_string_equal(ds->fields[1].name, "user");
    assert_int_equal(ds->fields[0].vocab, 2); /* OOV + i1 (empty value -> 0, not counted) */
    assert_int_equal(ds->fields[1].vocab, 3);
    assert_string_equal(ds->dense_names[1], "age");
    assert_string_equal(ds->label_names[0], "click");
    uint32_t cat[] = {1, 1, 1, 2, 0, 1};
    assert_memory_equal(ds->cat, cat, sizeof cat);
    float dense[] = {1.5f, 20, -2, 30, 300, 40};
    assert_memory_equal(ds->dense, dense, sizeof dense);
    float lab[] = {1, 0, 0};
    assert_memory_equal(ds->labels, lab, sizeof lab);
    assert_null(ds->weight);
    assert_null(ds->group);
    assert_null(ds->mv_off[0]);
    assert_string_equal(key_of(enc, 1, 2), "u2");
    rf_dataset_free(ds);
    rf_encoders_free(enc);
}

/* Dense values through the row-at-a-time batch and the field-by-field path agree: long and
 * short spellings, signs, exponents, and NA strings - also one that reads as a number ("-1",
 * which must then be missing, not -1) - fitted and with given (standardizing) encoders. */
static void test_dense_batch_paths(void **state)
{
    (void)state;
    const char *p = write_tmp("batch.csv", "a,b,c,y\n"
                                           "0.5,-12.25,1e3,1\n"
                                           "-1,0.66432800000000004,NA,0\n"
                                           "+7,.5,0.000000000000000000000001234,1\n"
                                           "123456789012345678,5.,-0.0,0\n");
    for (int numeric_na = 0; numeric_na < 2; numeric_na++) {
        rf_schema s;
        schema_init(&s);
        add_dense(&s, "a");
        add_dense(&s, "b");
        add_dense(&s, "c");
        add_label(&s, "y");
        s.fill = RF_FILL_ZERO;
        snprintf(s.na[s.nna++], RF_NA_LEN, "NA");
        if (numeric_na) snprintf(s.na[s.nna++], RF_NA_LEN, "-1");
        rf_encoders *enc = NULL;
        rf_dataset *ds = load_ok(p, &s, &enc, NULL);
        float want[] = {0.5f, -12.25f, 1000.0f, numeric_na ? 0.0f : -1.0f, (float)0.66432800000000004, 0.0f,
                        7.0f, 0.5f, (float)1.234e-24, (float)123456789012345678.0, 5.0f, -0.0f};
        assert_int_equal(ds->n, 4);
        assert_memory_equal(ds->dense, want, sizeof want);
        /* again with standardizing encoders fitted on it: (x - mean) / sd of the same values */
        rf_dataset_free(ds);
        rf_encoders_free(enc);
        s.norm = RF_NORM_STANDARD;
        enc = NULL;
        ds = load_ok(p, &s, &enc, NULL);
        rf_dataset *d2 = load_ok(p, &s, &enc, NULL); /* given encoders: applied while parsing */
        assert_memory_equal(d2->dense, ds->dense, sizeof want);
        assert_true(fabsf(ds->dense[0] - want[0]) > 1e-3f); /* really transformed */
        rf_dataset_free(d2);
        rf_dataset_free(ds);
        rf_encoders_free(enc);
    }
}

static void test_quoted_fields(void **state)
{
    (void)state;
    const char *p = write_tmp("quoted.csv", "\"user\",\"it,em\",x\n"
                                            "\"a,b\",\"say \"\"hi\"\"\",\"1.25\"\n"
                                            "\"multi\nline\",\"\",2\n"
                                            "plain\"quote,z,3\n"
                                            "\"a,b\",\"\"\"\",4\n");
    rf_schema s;
    schema_init(&s);
    add_cat(&s, "user", 0, 0, 0);
    add_cat(&s, "it,em", 0, 0, 0);
    add_label(&s, "x");
    rf_encoders *enc = NULL;
    rf_dataset *ds = load_ok(p, &s, &enc, NULL);
    assert_int_equal(ds->n, 4);
    assert_string_equal(key_of(enc, 0, ds->cat[0]), "a,b");
    assert_string_equal(key_of(enc, 1, ds->cat[1]), "say \"hi\"");
    assert_string_equal(key_of(enc, 0, ds->cat[2]), "multi\nline");
    assert_int_equal(ds->cat[3], 0); /* "" -> empty -> OOV */
    assert_string_equal(key_of(enc, 0, ds->cat[4]), "plain\"quote");
    assert_int_equal(ds->cat[6], ds->cat[0]);
    assert_string_equal(key_of(enc, 1, ds->cat[7]), "\"");
    float lab[] = {1.25f, 2, 3, 4};
    assert_memory_equal(ds->labels, lab, sizeof lab);
    rf_dataset_free(ds);
    rf_encoders_free(enc);

    /* a bad value after a multi-line quoted field reports the physical line */
    p = write_tmp("quoted_bad.csv", "u,x\n\"a\n\nb\",1\nc,zz\n");
    rf_schema s2;
    schema_init(&s2);
    add_cat(&s2, "u", 0, 0, 0);
    add_label(&s2, "x");
    rf_error e;
    enc = NULL;
    assert_int_equal(load_fail(p, &s2, &enc, NULL, &e), RF_EDATA);
    assert_null(enc);
    assert_int_equal(e.line, 5);
    assert_int_equal(e.col, 3);
    assert_string_equal(e.file, p);
}

static void test_crlf(void **state)
{
    (void)state;
    const char *p = write_tmp("crlf.csv", "a,b,c\r\nx,1,2\r\n\"y\",3,\"4\"\r\ny,5,6");
    rf_schema s;
    schema_init(&s);
    add_cat(&s, "a", 0, 0, 0);
    add_dense(&s, "b");
    add_label(&s, "c");
    rf_encoders *enc = NULL;
    rf_dataset *ds = load_ok(p, &s, &enc, NULL);
    assert_int_equal(ds->n, 3);
    uint32_t cat[] = {1, 2, 2};
    assert_memory_equal(ds->cat, cat, sizeof cat);
    float d[] = {1, 3, 5}, l[] = {2, 4, 6};
    assert_memory_equal(ds->dense, d, sizeof d);
    assert_memory_equal(ds->labels, l, sizeof l);
    assert_string_equal(key_of(enc, 0, 1), "x"); /* no stray '\r' */
    rf_dataset_free(ds);
    rf_encoders_free(enc);

    /* lone CR inside a field is data; UTF-8 BOM and blank lines are ignored */
    p = write_tmp("cr.csv", "\xEF\xBB\xBF" "a,c\n\nx\ry,1\n\n\nz,0\n\n");
    rf_schema s2;
    schema_init(&s2);
    add_cat(&s2, "a", 0, 0, 0);
    add_label(&s2, "c");
    enc = NULL;
    ds = load_ok(p, &s2, &enc, NULL);
    assert_int_equal(ds->n, 2);
    assert_string_equal(key_of(enc, 0, ds->cat[0]), "x\ry");
    rf_dataset_free(ds);
    rf_encoders_free(enc);
}

static void test_tsv(void **state)
{
    (void)state;
    const char *p = write_tmp("t.tsv", "a\tb,c\tl\nx\t1.5\t1\ny,z\t2\t0\n");
    rf_schema s;
    schema_init(&s);
    s.delim = '\t';
    add_cat(&s, "a", 0, 0, 0);
    add_dense(&s, "b,c");
    add_label(&s, "l");
    rf_encoders *enc = NULL;
    rf_dataset *ds = load_ok(p, &s, &enc, NULL);
    assert_int_equal(ds->n, 2);
    assert_string_equal(key_of(enc, 0, ds->cat[1]), "y,z");
    assert_true(ds->dense[1] == 2.0f);
    rf_dataset_free(ds);
    rf_encoders_free(enc);
}

static void test_multi_valued(void **state)
{
    (void)state;
    const char *p = write_tmp("multi.csv", "u,tags,cats,y\n"
                                           "a,x|y|z,p;q,1\n"
                                           "b,,q,0\n"
                                           "a,y||x|,\"p;p;r\",1\n");
    rf_schema s;
    schema_init(&s);
    add_cat(&s, "u", 0, 0, 0);
    add_cat(&s, "tags", 1, RF_POOL_SUM, '|');
    add_cat(&s, "cats", 1, RF_POOL_MEAN, ';');
    add_label(&s, "y");
    rf_encoders *enc = NULL;
    rf_dataset *ds = load_ok(p, &s, &enc, NULL);
    assert_int_equal(ds->n, 3);
    assert_int_equal(ds->fields[1].multi, 1);
    assert_int_equal(ds->fields[1].pooling, RF_POOL_SUM);
    assert_int_equal(ds->fields[1].sep, '|');
    assert_int_equal(ds->fields[2].pooling, RF_POOL_MEAN);
    assert_int_equal(ds->fields[2].sep, ';');
    assert_int_equal(ds->fields[0].multi, 0);
    assert_null(ds->mv_off[0]);
    /* tags: x y z | (empty bag) | y x  (empty pieces skipped) */
    uint64_t off1[] = {0, 3, 3, 5};
    uint32_t ids1[] = {1, 2, 3, 2, 1};
    assert_memory_equal(ds->mv_off[1], off1, sizeof off1);
    assert_memory_equal(ds->mv_ids[1], ids1, sizeof ids1);
    /* cats: p q | q | p p r */
    uint64_t off2[] = {0, 2, 3, 6};
    uint32_t ids2[] = {1, 2, 2, 1, 1, 3};
    assert_memory_equal(ds->mv_off[2], off2, sizeof off2);
    assert_memory_equal(ds->mv_ids[2], ids2, sizeof ids2);
    assert_int_equal(ds->fields[1].vocab, 4);
    assert_int_equal(ds->fields[2].vocab, 4);
    for (size_t i = 0; i < ds->n; i++) { /* multi-valued fields leave cat[] at 0 */
        assert_int_equal(ds->cat[i * 3 + 1], 0);
        assert_int_equal(ds->cat[i * 3 + 2], 0);
    }

    /* min_count counts every value of a multi-valued field: with min_count 2,
     * tags keeps x(2) y(2), drops z(1); cats keeps p(3) q(2), drops r */
    rf_dataset_free(ds);
    rf_encoders_free(enc);
    s.min_count = 2;
    enc = NULL;
    ds = load_ok(p, &s, &enc, NULL);
    uint32_t ids1b[] = {1, 2, 0, 2, 1};
    assert_memory_equal(ds->mv_ids[1], ids1b, sizeof ids1b);
    uint32_t ids2b[] = {1, 2, 2, 1, 1, 0};
    assert_memory_equal(ds->mv_ids[2], ids2b, sizeof ids2b);
    assert_int_equal(ds->fields[1].vocab, 3);
    /* u: a(2) kept, b(1) dropped */
    assert_int_equal(ds->cat[0], 1);
    assert_int_equal(ds->cat[3], 0);
    assert_int_equal(ds->cat[6], 1);
    rf_dataset_free(ds);
    rf_encoders_free(enc);
}

static void test_min_count(void **state)
{
    (void)state;
    const char *p = write_tmp("minc.csv", "c,y\nr,0\ns,0\nr,1\nt,0\ns,1\nr,0\nu,1\n");
    rf_schema s;
    schema_init(&s);
    add_cat(&s, "c", 0, 0, 0);
    add_label(&s, "y");
    for (uint32_t mc = 0; mc <= 4; mc++) {
        s.min_count = mc;
        rf_encoders *enc = NULL;
        rf_dataset *ds = load_ok(p, &s, &enc, NULL);
        /* counts r3 s2 t1 u1, first-seen order r s t u */
        uint32_t exp_size = mc <= 1 ? 5 : mc == 2 ? 3 : mc == 3 ? 2 : 1;
        assert_int_equal(ds->fields[0].vocab, exp_size);
        assert_int_equal(rf_vocab_size(enc->vocab[0]), exp_size);
        for (size_t i = 0; i < ds->n; i++) {
            const char *k = key_of(enc, 0, ds->cat[i]);
            if (ds->cat[i]) assert_true(strlen(k) == 1);
        }
        if (mc == 2) {
            uint32_t cat[] = {1, 2, 1, 0, 2, 1, 0};
            assert_memory_equal(ds->cat, cat, sizeof cat);
        }
        rf_dataset_free(ds);
        rf_encoders_free(enc);
    }
    /* a field's own min count overrides the schema's: the same column twice */
    add_cat(&s, "c", 0, 0, 0);
    s.min_count = 1;
    s.cat[1].min_count = 3;
    rf_encoders *enc = NULL;
    rf_dataset *ds = load_ok(p, &s, &enc, NULL);
    assert_int_equal(ds->fields[0].vocab, 5); /* r s t u */
    assert_int_equal(ds->fields[1].vocab, 2); /* r */
    rf_dataset_free(ds);
    rf_encoders_free(enc);
}

static void test_oov_given_encoders(void **state)
{
    (void)state;
    const char *tr = write_tmp("train.csv", "u,tags,y\na,x|y,1\nb,y,0\n");
    const char *te = write_tmp("test.csv", "y,tags,u\n1,y|new|x,b\n0,,zzz\n1,new,\n");
    rf_schema s;
    schema_init(&s);
    add_cat(&s, "u", 0, 0, 0);
    add_cat(&s, "tags", 1, RF_POOL_MEAN, '|');
    add_label(&s, "y");
    rf_encoders *enc = NULL;
    rf_dataset *a = load_ok(tr, &s, &enc, NULL);
    rf_encoders *keep = enc;
    rf_dataset *b = load_ok(te, &s, &enc, NULL);
    assert_ptr_equal(enc, keep);                       /* given encoders are not replaced */
    assert_int_equal(rf_vocab_size(enc->vocab[0]), 3); /* not refitted */
    assert_int_equal(b->n, 3);
    assert_int_equal(b->fields[0].vocab, a->fields[0].vocab);
    uint32_t cat[] = {2, 0, 0, 0, 0, 0}; /* b, zzz -> OOV, empty -> 0 */
    assert_memory_equal(b->cat, cat, sizeof cat);
    uint64_t off[] = {0, 3, 3, 4};
    uint32_t ids[] = {2, 0, 1, 0};
    assert_memory_equal(b->mv_off[1], off, sizeof off);
    assert_memory_equal(b->mv_ids[1], ids, sizeof ids);
    float lab[] = {1, 0, 1};
    assert_memory_equal(b->labels, lab, sizeof lab);
    rf_dataset_free(a);
    rf_dataset_free(b);

    /* encoders with the wrong number of fields are a usage error */
    rf_schema s1;
    schema_init(&s1);
    add_cat(&s1, "u", 0, 0, 0);
    add_label(&s1, "y");
    rf_error e;
    assert_int_equal(load_fail(te, &s1, &enc, NULL, &e), RF_EUSAGE);
    rf_encoders_free(enc);
}

static void test_label_product(void **state)
{
    (void)state;
    const char *p = write_tmp("prod.csv", "click,conversion,f\n1,1,a\n1,0,a\n0,1,b\n0,0,b\n");
    rf_schema s;
    schema_init(&s);
    add_cat(&s, "f", 0, 0, 0);
    add_label(&s, "click");
    add_label(&s, "click*conversion");
    rf_encoders *enc = NULL;
    rf_dataset *ds = load_ok(p, &s, &enc, NULL);
    float lab[] = {1, 1, 1, 0, 0, 0, 0, 0};
    assert_memory_equal(ds->labels, lab, sizeof lab);
    assert_string_equal(ds->label_names[1], "click*conversion");
    assert_int_equal(rf_dataset_label_index(ds, "click*conversion"), 1);
    rf_dataset_free(ds);

    /* a column literally named "a*b" takes precedence (files written by write_csv) */
    p = write_tmp("prod2.csv", "click,click*conversion,conversion,f\n1,0.5,1,a\n");
    ds = load_ok(p, &s, &enc, NULL);
    assert_true(ds->labels[1] == 0.5f);
    rf_dataset_free(ds);

    /* missing component column */
    p = write_tmp("prod3.csv", "click,conv,f\n1,1,a\n");
    rf_error e;
    assert_int_equal(load_fail(p, &s, &enc, NULL, &e), RF_EDATA);
    assert_non_null(strstr(e.msg, "'conversion'"));
    rf_encoders_free(enc);
}

static void test_gzip(void **state)
{
    (void)state;
    const char *p = tmp_path("data.csv.gz");
    gzFile gz = gzopen(p, "wb");
    assert_non_null(gz);
    gzprintf(gz, "u,x,y\n");
    for (int i = 0; i < 50000; i++) gzprintf(gz, "u%d,%d.25,%d\n", i % 100, i, i % 2);
    gzclose(gz);
    rf_schema s;
    schema_init(&s);
    add_cat(&s, "u", 0, 0, 0);
    add_dense(&s, "x");
    add_label(&s, "y");
    rf_encoders *enc = NULL;
    rf_dataset *ds = load_ok(p, &s, &enc, NULL);
    assert_int_equal(ds->n, 50000);
    assert_int_equal(ds->fields[0].vocab, 101);
    for (size_t i = 0; i < ds->n; i++) {
        assert_true(ds->dense[i] == (float)((double)i + 0.25));
        assert_int_equal(ds->cat[i], (uint32_t)(i % 100) + 1);
        assert_true(ds->labels[i] == (float)(i % 2));
    }
    rf_dataset_free(ds);
    rf_encoders_free(enc);

    /* truncated gzip stream is an error, not silently short data */
    FILE *f = fopen(p, "rb");
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)sz);
    assert_int_equal(fread(buf, 1, (size_t)sz, f), (size_t)sz);
    fclose(f);
    const char *p2 = tmp_path("trunc.csv.gz");
    f = fopen(p2, "wb");
    fwrite(buf, 1, (size_t)sz / 2, f);
    fclose(f);
    free(buf);
    enc = NULL;
    rf_error e;
    load_fail(p2, &s, &enc, NULL, &e);
    assert_null(enc);
}

/* One gzip member of text appended to buf at *n (capacity cap). */
static void gz_member(unsigned char *buf, size_t cap, size_t *n, const char *text, int level)
{
    z_stream z = {0};
    assert_int_equal(deflateInit2(&z, level, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
    z.next_in = (unsigned char *)text;
    z.avail_in = (uInt)strlen(text);
    z.next_out = buf + *n;
    z.avail_out = (uInt)(cap - *n);
    assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
    *n = cap - z.avail_out;
    deflateEnd(&z);
}

/* Concatenated gzip members are one stream; any other byte after the last member is an error
 * naming the file and the byte's offset (zlib's gzread ignored it: the rows before it loaded). */
static void test_gzip_trailing(void **state)
{
    (void)state;
    rf_schema s;
    schema_init(&s);
    add_cat(&s, "u", 0, 0, 0);
    add_label(&s, "y");
    size_t cap = (size_t)4 << 20, n = 0;
    unsigned char *buf = malloc(cap);
    char *big = malloc((size_t)3 << 20);
    assert_non_null(buf);
    assert_non_null(big);
    /* three members, the middle one empty and the last one over 1 MiB (several input reads) */
    size_t bl = 0;
    for (int i = 0; i < 200000; i++) bl += (size_t)sprintf(big + bl, "v%d,%d\n", i % 1000, i % 2);
    gz_member(buf, cap, &n, "u,y\na,1\nb,0\n", 6);
    gz_member(buf, cap, &n, "", 6);
    gz_member(buf, cap, &n, big, 0); /* stored blocks: as large compressed as plain */
    size_t whole = n;
    const char *p = write_bin("members.csv.gz", (const char *)buf, n);
    rf_encoders *enc = NULL;
    rf_dataset *ds = load_ok(p, &s, &enc, NULL);
    assert_int_equal(ds->n, 200002);
    assert_true(ds->labels[0] == 1.0f && ds->labels[1] == 0.0f && ds->labels[2] == 0.0f && ds->labels[3] == 1.0f);
    rf_dataset_free(ds);
    rf_encoders_free(enc);

    /* after the last member: text, one byte of a gzip magic, zero padding, a NUL-free line */
    static const struct {
        const char *tail;
        size_t len;
    } bad[] = {{"garbage\n", 8}, {"\x1f", 1}, {"\0\0\0\0", 4}, {"\x1f\x8bX", 3}};
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
        memcpy(buf + whole, bad[k].tail, bad[k].len);
        p = write_bin("trailing.csv.gz", (const char *)buf, whole + bad[k].len);
        rf_error e;
        enc = NULL;
        rf_status st = load_fail(p, &s, &enc, NULL, &e);
        assert_null(enc);
        assert_string_equal(e.file, p);
        if (k < 3) { /* not another member: named as garbage, at its offset */
            assert_int_equal(st, RF_EDATA);
            char want[64];
            snprintf(want, sizeof want, "at byte %zu ", whole);
            assert_non_null(strstr(e.msg, "garbage after the end of the gzip stream"));
            assert_non_null(strstr(e.msg, want));
        } else { /* a member that starts and is corrupt or cut short */
            assert_int_equal(st, RF_EDATA);
            assert_non_null(strstr(e.msg, "corrupt compressed data"));
        }
    }
    /* a member cut short is an error too (not the rows before the cut) */
    p = write_bin("cut.csv.gz", (const char *)buf, whole - 9);
    rf_error e;
    enc = NULL;
    assert_int_equal(load_fail(p, &s, &enc, NULL, &e), RF_EDATA);
    assert_non_null(strstr(e.msg, "ends inside a gzip member"));
    free(big);
    free(buf);
}

/* Numbers: every accepted spelling equals (float)strtod bit for bit. */
static void test_numbers_exact(void **state)
{
    (void)state;
    const char *p = tmp_path("nums.csv");
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    fprintf(f, "x\n");
    static const char *fixed[] = {
        "0", "-0", "+0", "0.0", "-0.0", "1", "-1", "+1.5", ".5", "5.", "-.5e1", "1e0", "1E+3",
        "1e-3", "0.1", "0.33557800000000004", "0.5726319999999999", "123456789012345678901234",
        "9007199254740993", "9007199254740993e-10", "3.4028235e38", "-3.4028235e38",
        "3.40282356e38", "1e-45", "1.4e-45", "7e-46", "1e-400", "0x1p3", "0x1.8p-1",
        "000123.4500", "0.000000000000000000000000000001", "1234567890123456789e-20",
        "4.9406564584124654e-324", "2.2250738585072014e-308", "3.4028235677e38",
        "0.1000000000000000055511151231257827", "100000000000000000000000", "1e22", "1e23",
        "8.589973e9", "16777217", "16777216.5", "33554431"};
    int nfixed = (int)(sizeof fixed / sizeof *fixed);
    for (int i = 0; i < nfixed; i++) fprintf(f, "%s\n", fixed[i]);
    uint64_t r = 0x9E3779B97F4A7C15ULL;
    char (*rnd)[40] = malloc(60000 * sizeof *rnd);
    for (int i = 0; i < 60000; i++) {
        r ^= r << 13;
        r ^= r >> 7;
        r ^= r << 17;
        double mant = (double)(r >> 11) * 0x1p-53;
        int kind = (int)(r % 4), ex = (int)((r >> 8) % 50) - 25, prec = (int)((r >> 20) % 19) + 1;
        double v = mant * pow(10.0, ex) * ((r >> 40) & 1 ? -1 : 1);
        if (kind == 0) snprintf(rnd[i], sizeof rnd[i], "%.*g", prec, v);
        else if (kind == 1) snprintf(rnd[i], sizeof rnd[i], "%.*e", prec, v);
        else if (kind == 2) snprintf(rnd[i], sizeof rnd[i], "%.*f", prec % 12, v * 1e-3);
        else snprintf(rnd[i], sizeof rnd[i], "%llue%d", (unsigned long long)(r % 10000000000000000000ULL), ex - 19);
        fprintf(f, "%s\n", rnd[i]);
    }
    fclose(f);
    rf_schema s;
    schema_init(&s);
    add_dense(&s, "x");
    add_label(&s, "x");
    rf_encoders *enc = NULL;
    rf_dataset *ds = load_ok(p, &s, &enc, NULL);
    assert_int_equal(ds->n, (size_t)nfixed + 60000);
    int bad = 0;
    for (size_t i = 0; i < ds->n; i++) {
        const char *txt = i < (size_t)nfixed ? fixed[i] : rnd[i - (size_t)nfixed];
        float want = (float)strtod(txt, NULL);
        if (memcmp(&want, &ds->dense[i], sizeof want) != 0) {
            if (bad++ < 5) fprintf(stderr, "  mismatch '%s': %.9g vs %.9g\n", txt, ds->dense[i], want);
        }
    }
    assert_int_equal(bad, 0);
    free(rnd);
    rf_dataset_free(ds);
    rf_encoders_free(enc);
}

/* ---- writing and round trips ---------------------------------------------------------- */

/* Encoders mapping the decimal text "k" to id k for k in 1..size-1 (what write_csv emits). */
static rf_encoders *identity_encoders(const rf_dataset *ds)
{
    rf_encoders *e = calloc(1, sizeof *e);
    e->F = ds->F;
    e->vocab = calloc((size_t)ds->F, sizeof *e->vocab);
    char k[24];
    for (int f = 0; f < ds->F; f++) {
        e->vocab[f] = rf_vocab_create();
        for (uint32_t id = 1; id < ds->fields[f].vocab; id++) {
            int n = snprintf(k, sizeof k, "%u", id);
            assert_int_equal(rf_vocab_add(e->vocab[f], k, (size_t)n), RF_OK);
        }
    }
    return e;
}

static void schema_of(const rf_dataset *ds, rf_schema *s)
{
    schema_init(s);
    for (int f = 0; f < ds->F; f++)
        add_cat(s, ds->fields[f].name, ds->fields[f].multi, ds->fields[f].pooling, ds->fields[f].sep);
    for (int d = 0; d < ds->D; d++) add_dense(s, ds->dense_names[d]);
    for (int k = 0; k < ds->K; k++) add_label(s, ds->label_names[k]);
    if (ds->weight) snprintf(s->weight, sizeof s->weight, "weight");
    if (ds->group) snprintf(s->group, sizeof s->group, "group");
}

static void assert_same_dataset(const rf_dataset *a, const rf_dataset *b)
{
    assert_int_equal(a->n, b->n);
    assert_int_equal(a->F, b->F);
    assert_int_equal(a->D, b->D);
    assert_int_equal(a->K, b->K);
    size_t n = a->n;
    for (int f = 0; f < a->F; f++) {
        assert_string_equal(a->fields[f].name, b->fields[f].name);
        assert_int_equal(a->fields[f].multi, b->fields[f].multi);
        assert_int_equal(a->fields[f].vocab, b->fields[f].vocab);
        if (a->fields[f].multi) {
            assert_int_equal(a->fields[f].pooling, b->fields[f].pooling);
            assert_int_equal(a->fields[f].sep, b->fields[f].sep);
            assert_memory_equal(a->mv_off[f], b->mv_off[f], (n + 1) * sizeof(uint64_t));
            assert_memory_equal(a->mv_ids[f], b->mv_ids[f], a->mv_off[f][n] * sizeof(uint32_t));
        }
    }
    assert_memory_equal(a->cat, b->cat, n * (size_t)a->F * sizeof(uint32_t));
    for (int d = 0; d < a->D; d++) assert_string_equal(a->dense_names[d], b->dense_names[d]);
    for (int k = 0; k < a->K; k++) assert_string_equal(a->label_names[k], b->label_names[k]);
    if (a->D) assert_memory_equal(a->dense, b->dense, n * (size_t)a->D * sizeof(float));
    assert_memory_equal(a->labels, b->labels, n * (size_t)a->K * sizeof(float));
    assert_true((a->weight == NULL) == (b->weight == NULL));
    if (a->weight) assert_memory_equal(a->weight, b->weight, n * sizeof(float));
    assert_true((a->group == NULL) == (b->group == NULL));
    if (a->group) { /* groups are re-hashed on load: compare the partition */
        for (size_t i = 1; i < n; i++) {
            assert_int_equal(a->group[i] == a->group[i - 1], b->group[i] == b->group[i - 1]);
            assert_int_equal(a->group[i] == a->group[0], b->group[i] == b->group[0]);
        }
    }
}

static void test_roundtrip_write(void **state)
{
    (void)state;
    const size_t N = 3000;
    rf_dataset *ds = rf_dataset_alloc(N, 3, 2, 2);
    assert_non_null(ds);
    snprintf(ds->fields[0].name, RF_NAME_MAX, "user");
    snprintf(ds->fields[1].name, RF_NAME_MAX, "tags");
    snprintf(ds->fields[2].name, RF_NAME_MAX, "item,with comma");
    ds->fields[0].vocab = 50;
    ds->fields[1].vocab = 20;
    ds->fields[1].multi = 1;
    ds->fields[1].pooling = RF_POOL_MEAN;
    ds->fields[1].sep = ','; /* same as the delimiter: must be quoted */
    ds->fields[2].vocab = 1000;
    snprintf(ds->dense_names[0], RF_NAME_MAX, "price");
    snprintf(ds->dense_names[1], RF_NAME_MAX, "say \"what\"");
    snprintf(ds->label_names[0], RF_NAME_MAX, "click");
    snprintf(ds->label_names[1], RF_NAME_MAX, "click*conversion");
    ds->weight = malloc(N * sizeof *ds->weight);
    ds->group = malloc(N * sizeof *ds->group);
    ds->mv_off[1] = malloc((N + 1) * sizeof(uint64_t));
    ds->mv_ids[1] = malloc(N * 4 * sizeof(uint32_t));
    uint64_t r = 12345;
    ds->mv_off[1][0] = 0;
    for (size_t i = 0; i < N; i++) {
        r = r * 6364136223846793005ULL + 1442695040888963407ULL;
        ds->cat[i * 3 + 0] = (uint32_t)((r >> 33) % 50);
        ds->cat[i * 3 + 2] = (uint32_t)((r >> 13) % 1000);
        uint64_t o = ds->mv_off[1][i];
        int m = (int)((r >> 50) % 4);
        for (int j = 0; j < m; j++) ds->mv_ids[1][o++] = (uint32_t)((r >> (20 + 3 * j)) % 20);
        ds->mv_off[1][i + 1] = o;
        uint32_t bits = (uint32_t)(r >> 17);
        float v;
        memcpy(&v, &bits, sizeof v);
        if (!isfinite(v)) v = 1.0f / 3.0f;
        ds->dense[i * 2] = v;
        ds->dense[i * 2 + 1] = (float)i * 0.1f - 7;
        ds->labels[i * 2] = (float)((r >> 60) & 1);
        ds->labels[i * 2 + 1] = ds->labels[i * 2] * (float)((r >> 61) & 1);
        ds->weight[i] = (float)(r % 7) * 0.5f;
        ds->group[i] = i / 10;
    }
    ds->dense[0] = -0.0f;
    ds->dense[2] = FLT_MAX;
    ds->dense[4] = FLT_TRUE_MIN;
    ds->dense[6] = 16777216.0f;
    const char *p = tmp_path("rt.csv");
    rf_error e;
    rf_error_clear(&e);
    rf_status st = rf_dataset_write_csv(ds, p, &e);
    if (st) print_err(&e);
    assert_int_equal(st, RF_OK);
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp", p);
    assert_int_equal(access(tmp, F_OK), -1); /* renamed into place */

    rf_schema s;
    schema_of(ds, &s);
    rf_encoders *enc = identity_encoders(ds);
    rf_dataset *back = load_ok(p, &s, &enc, NULL);
    assert_same_dataset(ds, back);

    /* fitting on the written file, writing again and reloading is stable too */
    rf_encoders *fit = NULL;
    rf_dataset *d2 = load_ok(p, &s, &fit, NULL);
    const char *p2 = tmp_path("rt2.csv");
    assert_int_equal(rf_dataset_write_csv(d2, p2, &e), RF_OK);
    rf_encoders *id2 = identity_encoders(d2);
    rf_dataset *d3 = load_ok(p2, &s, &id2, NULL);
    assert_same_dataset(d2, d3);

    /* unwritable destination */
    assert_int_equal(rf_dataset_write_csv(ds, "/nonexistent-dir/x.csv", &e), RF_EIO);

    rf_dataset_free(ds);
    rf_dataset_free(back);
    rf_dataset_free(d2);
    rf_dataset_free(d3);
    rf_encoders_free(enc);
    rf_encoders_free(fit);
    rf_encoders_free(id2);
}

/* ---- errors --------------------------------------------------------------------------- */

static void golden_schema(rf_schema *s)
{
    schema_init(s);
    add_cat(s, "user", 0, 0, 0);
    add_cat(s, "item", 0, 0, 0);
    add_cat(s, "tags", 1, RF_POOL_MEAN, '|');
    add_dense(s, "price");
    add_label(s, "click");
    snprintf(s->weight, sizeof s->weight, "w");
}

static const char *cases_dir(void)
{
    static char dir[512];
    const char *src = __FILE__; /* e.g. "tests/test_csv.c" */
    const char *slash = strrchr(src, '/');
    struct stat st;
    if (slash) {
        snprintf(dir, sizeof dir, "%.*s/cases/csv/invalid", (int)(slash - src), src);
        if (stat(dir, &st) == 0) return dir;
    }
    static const char *cands[] = {"tests/cases/csv/invalid", "../tests/cases/csv/invalid",
                                  "../../tests/cases/csv/invalid", NULL};
    for (int i = 0; cands[i]; i++)
        if (stat(cands[i], &st) == 0) return cands[i];
    return NULL;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void test_golden_invalid(void **state)
{
    (void)state;
    const char *dir = cases_dir();
    assert_non_null(dir);
    DIR *d = opendir(dir);
    assert_non_null(d);
    char *names[256];
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) && n < 256) {
        if (de->d_name[0] == '.') continue;
        char p[1024];
        struct stat st;
        snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        if (stat(p, &st) == 0 && S_ISDIR(st.st_mode)) names[n++] = strdup(de->d_name);
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof *names, cmp_str);
    assert_true(n >= 10);
    rf_schema s0;
    golden_schema(&s0);
    int failures = 0, with_config = 0;
    rf_config *cfg = malloc(sizeof *cfg);
    assert_non_null(cfg);
    for (int i = 0; i < n; i++) {
        char in[1024], ef[1024], cf[1024], want[1024] = "", got[2048];
        snprintf(in, sizeof in, "%s/%s/input.csv", dir, names[i]);
        snprintf(ef, sizeof ef, "%s/%s/error", dir, names[i]);
        snprintf(cf, sizeof cf, "%s/%s/config.yaml", dir, names[i]);
        /* a case may bring its own data configuration (config.yaml; "$CASE" = its directory) */
        rf_schema s = s0;
        FILE *cfp = fopen(cf, "rb");
        if (cfp) {
            char text[8192], sub[16384], casedir[1024];
            size_t tl = fread(text, 1, sizeof text - 1, cfp);
            fclose(cfp);
            text[tl] = '\0';
            snprintf(casedir, sizeof casedir, "%s/%s", dir, names[i]);
            size_t o = 0;
            for (const char *p = text; *p && o + strlen(casedir) + 2 < sizeof sub;) {
                if (!strncmp(p, "$CASE", 5)) {
                    o += (size_t)snprintf(sub + o, sizeof sub - o, "%s", casedir);
                    p += 5;
                } else {
                    sub[o++] = *p++;
                }
            }
            sub[o] = '\0';
            rf_error ce;
            rf_config_default(cfg);
            if (rf_config_load_string(cfg, sub, o, cf, &ce) || rf_config_validate(cfg, &ce)) {
                fprintf(stderr, "  case %s: bad config.yaml: %s\n", names[i], ce.msg);
                failures++;
                free(names[i]);
                continue;
            }
            rf_schema_from_tasks(cfg);
            s = cfg->data.schema;
            with_config++;
        }
        FILE *f = fopen(ef, "rb");
        assert_non_null(f);
        size_t m = fread(want, 1, sizeof want - 1, f);
        fclose(f);
        want[m] = '\0';
        while (m && (want[m - 1] == '\n' || want[m - 1] == '\r')) want[--m] = '\0';
        rf_encoders *enc = NULL;
        rf_dataset *ds = NULL;
        rf_error e;
        rf_error_clear(&e);
        rf_status st = rf_load_csv(in, &s, &enc, NULL, &ds, &e);
        const char *base = strrchr(e.file, '/');
        int ok = st == RF_EDATA && ds == NULL && enc == NULL && (cfp || strcmp(e.file, in) == 0);
        char shown[sizeof e.file]; /* input.csv or side.csv */
        snprintf(shown, sizeof shown, "%s", base ? base + 1 : e.file);
        memcpy(e.file, shown, sizeof shown);
        rf_error_format(&e, got, sizeof got);
        if (!ok || strcmp(got, want) != 0) {
            fprintf(stderr, "  case %s: status %d\n    want: %s\n    got:  %s\n", names[i], st, want,
                    got);
            failures++;
        }
        rf_dataset_free(ds);
        rf_encoders_free(enc);
        free(names[i]);
    }
    free(cfg);
    fprintf(stderr, "  %d invalid-input cases checked (%d with their own config)\n", n, with_config);
    assert_true(with_config >= 10);
    assert_int_equal(failures, 0);
}

/* issue #17 finding 1: a NUL byte inside a value (or anywhere) is a data error naming
 * file:line:column; before, "x\0y" was kept as a key the model file could not store. */
static void test_nul_byte(void **state)
{
    (void)state;
    static const char text[] = "a,b,c\nx,1,0\nx\0y,2,1\nz,3,0\n";
    const char *p = write_bin("nul.csv", text, sizeof text - 1);
    rf_schema s;
    schema_init(&s);
    add_cat(&s, "a", 0, 0, 0);
    add_dense(&s, "b");
    add_label(&s, "c");
    rf_encoders *enc = NULL;
    rf_error e;
    assert_int_equal(load_fail(p, &s, &enc, NULL, &e), RF_EDATA);
    assert_non_null(strstr(e.file, "nul.csv"));
    assert_int_equal(e.line, 3);
    assert_int_equal(e.col, 2);
    assert_non_null(strstr(e.msg, "NUL byte"));
    assert_null(enc);
    /* skipping bad rows does not let it through either */
    rf_load_opts o;
    memset(&o, 0, sizeof o);
    o.skip_bad_rows = 1;
    assert_int_equal(load_fail(p, &s, &enc, &o, &e), RF_EDATA);
    assert_null(enc);
    /* UTF-16 (a NUL after every ASCII byte): the first one, in the header */
    static const char u16[] = "\xFF\xFE" "a\0,\0c\0\n\0";
    p = write_bin("utf16.csv", u16, sizeof u16 - 1);
    assert_int_equal(load_fail(p, &s, &enc, NULL, &e), RF_EDATA);
    assert_int_equal(e.line, 1);
    assert_int_equal(e.col, 4);
    assert_non_null(strstr(e.msg, "UTF-16"));
}

static void test_io_errors(void **state)
{
    (void)state;
    rf_schema s;
    golden_schema(&s);
    rf_encoders *enc = NULL;
    rf_error e;
    assert_int_equal(load_fail(tmp_path("does-not-exist.csv"), &s, &enc, NULL, &e), RF_EIO);
    assert_non_null(strstr(e.msg, "No such file"));
    assert_null(enc);
    assert_int_equal(load_fail(g_tmp, &s, &enc, NULL, &e), RF_EIO); /* a directory */
    assert_null(enc);
}

static void test_skip_bad_rows(void **state)
{
    (void)state;
    const char *p = write_tmp("skip.csv", "user,item,tags,price,click,w\n"
                                          "u1,i1,a|b,1.5,1,1\n"      /* ok */
                                          "u2,i2,a,2.5,0\n"          /* field count */
                                          "u3,i3,c,abc,0,1\n"        /* bad number */
                                          "u4,i4,d,nan,0,1\n"        /* non-finite */
                                          "u5,\"i5\"x,e,1,0,1\n"     /* after quote */
                                          "u6,i6,f,1,0,-1\n"         /* negative weight */
                                          "u7,i7,g,,0,1\n"           /* empty */
                                          "u1,i1,b,2,1,0\n"          /* ok */
                                          "u8,i8,h,2,1,0,9\n"        /* field count */
                                          "\"u9\",\"i\"\"9\",b,3,0,2\n"); /* ok */
    rf_schema s;
    golden_schema(&s);
    rf_load_opts o = {.skip_bad_rows = 1};
    rf_encoders *enc = NULL;
    rf_dataset *ds = load_ok(p, &s, &enc, &o);
    assert_int_equal(o.bad_rows, 7);
    assert_int_equal(ds->n, 3);
    /* skipped rows do not feed the vocabularies */
    assert_int_equal(ds->fields[0].vocab, 3); /* u1, u9 */
    assert_int_equal(ds->fields[2].vocab, 3); /* a, b */
    assert_string_equal(key_of(enc, 1, ds->cat[2 * 3 + 1]), "i\"9");
    float w[] = {1, 0, 2};
    assert_memory_equal(ds->weight, w, sizeof w);
    rf_dataset_free(ds);
    rf_encoders_free(enc);

    /* strict mode stops at the first bad row */
    rf_error e;
    enc = NULL;
    assert_int_equal(load_fail(p, &s, &enc, NULL, &e), RF_EDATA);
    assert_int_equal(e.line, 3);
    rf_load_opts strict = {0};
    assert_int_equal(load_fail(p, &s, &enc, &strict, &e), RF_EDATA);

    /* structural errors still fail with skip_bad_rows */
    p = write_tmp("skip_unterm.csv", "user,item,tags,price,click,w\nu1,i1,a,1,0,1\nu2,\"i2,a,1,0,1\n");
    o.bad_rows = 99;
    assert_int_equal(load_fail(p, &s, &enc, &o, &e), RF_EDATA);
    assert_non_null(strstr(e.msg, "unterminated"));

    /* only bad rows: no data */
    p = write_tmp("skip_all.csv", "user,item,tags,price,click,w\nu1,i1,a,x,0,1\nu2\n");
    assert_int_equal(load_fail(p, &s, &enc, &o, &e), RF_EDATA);
    assert_int_equal(o.bad_rows, 2);
    assert_non_null(strstr(e.msg, "no data rows"));
}

static void test_max_rows(void **state)
{
    (void)state;
    const char *p = write_tmp("maxr.csv", "c,y\na,1\nb,0\nc,1\nd,0\n");
    rf_schema s;
    schema_init(&s);
    add_cat(&s, "c", 0, 0, 0);
    add_label(&s, "y");
    rf_load_opts o = {.max_rows = 2};
    rf_encoders *enc = NULL;
    rf_dataset *ds = load_ok(p, &s, &enc, &o);
    assert_int_equal(ds->n, 2);
    assert_int_equal(ds->fields[0].vocab, 3); /* fitted on the rows read only */
    rf_dataset_free(ds);
    rf_encoders_free(enc);
}

/* A larger generated file exercises buffer refills in the middle of rows and quoted fields. */
static void test_large_file_buffer_boundaries(void **state)
{
    (void)state;
    const char *p = tmp_path("large.csv");
    FILE *f = fopen(p, "wb");
    fprintf(f, "id,text,v,y\r\n");
    const int N = 120000;
    for (int i = 0; i < N; i++) {
        if (i % 7 == 0)
            fprintf(f, "k%d,\"multi \"\"q\"\"\nline %d\",%d.5,%d\r\n", i % 1000, i % 13, i, i & 1);
        else
            fprintf(f, "k%d,t%d,%d.5,%d\r\n", i % 1000, i % 13, i, i & 1);
    }
    fclose(f);
    rf_schema s;
    schema_init(&s);
    add_cat(&s, "id", 0, 0, 0);
    add_cat(&s, "text", 0, 0, 0);
    add_dense(&s, "v");
    add_label(&s, "y");
    rf_encoders *enc = NULL;
    rf_dataset *ds = load_ok(p, &s, &enc, NULL);
    assert_int_equal(ds->n, (size_t)N);
    assert_int_equal(ds->fields[0].vocab, 1001);
    for (int i = 0; i < N; i++) {
        char want[64];
        if (i % 7 == 0) snprintf(want, sizeof want, "multi \"q\"\nline %d", i % 13);
        else snprintf(want, sizeof want, "t%d", i % 13);
        assert_string_equal(key_of(enc, 1, ds->cat[(size_t)i * 2 + 1]), want);
        assert_true(ds->dense[i] == (float)(i + 0.5));
    }
    rf_dataset_free(ds);
    rf_encoders_free(enc);
}

/* The reader refills a 1 MiB buffer (READ_CHUNK in csv.c) (growing it for longer rows): put the buffer boundary on
 * every byte of some tricky rows (quotes, "" escapes, CRLF, quoted newlines), and make one
 * row longer than the buffer. */
static void test_refill_boundaries(void **state)
{
    (void)state;
    const char *p = tmp_path("boundary.csv");
    const char *hdr = "id,text,v,y,pad\r\n";
    const char *tricky[] = {"k1,\"a\"\"b\r\nc\",1.5,1,\r\n", "k2,\"\",2.5,0,\"\"\r\n",
                            "\"k3\",x\ry,3.5,1,\"p,q\"\r\n", "k4,t,4.5,0,z\r\n"};
    size_t base = (size_t)1 << 20;
    char *pad = malloc(base * 3);
    memset(pad, 'p', base * 3);
    rf_schema s;
    schema_init(&s);
    add_cat(&s, "id", 0, 0, 0);
    add_cat(&s, "text", 0, 0, 0);
    add_dense(&s, "v");
    add_label(&s, "y");
    size_t fixed = strlen(hdr) + strlen("k0,t,0.5,1,\r\n");
    for (int delta = 0; delta <= 96; delta++) {
        /* the first data row ends at byte base - 95 + delta: the boundary sweeps the next rows */
        size_t plen = base - 95 + (size_t)delta - fixed;
        if (delta == 96) plen = base * 2 + 17; /* one row longer than the buffer */
        FILE *f = fopen(p, "wb");
        fprintf(f, "%sk0,t,0.5,1,", hdr);
        fwrite(pad, 1, plen, f);
        fprintf(f, "\r\n");
        for (int r = 0; r < 3; r++)
            for (int i = 0; i < 4; i++) fputs(tricky[i], f);
        fclose(f);
        rf_encoders *enc = NULL;
        rf_dataset *ds = load_ok(p, &s, &enc, NULL);
        assert_int_equal(ds->n, 13);
        for (int r = 0; r < 3; r++) {
            const uint32_t *c = ds->cat + (size_t)(1 + 4 * r) * 2;
            assert_string_equal(key_of(enc, 0, c[0]), "k1");
            assert_string_equal(key_of(enc, 1, c[1]), "a\"b\r\nc");
            assert_int_equal(c[3], 0);
            assert_string_equal(key_of(enc, 0, c[4]), "k3");
            assert_string_equal(key_of(enc, 1, c[5]), "x\ry");
            assert_string_equal(key_of(enc, 1, c[7]), "t");
            for (int i = 0; i < 4; i++) assert_true(ds->dense[1 + 4 * r + i] == 1.5f + (float)i);
        }
        rf_dataset_free(ds);
        rf_encoders_free(enc);
    }
    free(pad);
}

/* ---- real data ------------------------------------------------------------------------ */

static double label_sum(const rf_dataset *ds, int k)
{
    double s = 0;
    for (size_t i = 0; i < ds->n; i++) s += ds->labels[i * (size_t)ds->K + (size_t)k];
    return s;
}

static void test_real_aliexpress(void **state)
{
    (void)state;
    const char *dd = test_data_dir();
    if (!dd) skip();
    char p[1024], pt[1024];
    snprintf(p, sizeof p, "%s/aliexpress-us-sample/aliexpress_train_sample.csv", dd);
    snprintf(pt, sizeof pt, "%s/aliexpress-us-sample/aliexpress_test_sample.csv", dd);
    rf_schema s;
    schema_init(&s);
    char nm[RF_NAME_MAX];
    for (int i = 1; i <= 16; i++) {
        snprintf(nm, sizeof nm, "categorical_%d", i);
        add_cat(&s, nm, 0, 0, 0);
    }
    for (int i = 1; i <= 63; i++) {
        snprintf(nm, sizeof nm, "numerical_%d", i);
        add_dense(&s, nm);
    }
    add_label(&s, "click");
    add_label(&s, "click*conversion");
    rf_encoders *enc = NULL;
    rf_dataset *ds = load_ok(p, &s, &enc, NULL);
    assert_int_equal(ds->n, 100);
    assert_int_equal(ds->F, 16);
    assert_int_equal(ds->D, 63);
    assert_true(label_sum(ds, 0) == 60);
    assert_true(label_sum(ds, 1) == 2);
    for (int f = 0; f < 16; f++) assert_true(ds->fields[f].vocab >= 2);
    /* first row, first dense value per the file: numerical_1 = 0.0 */
    assert_true(ds->dense[0] == 0.0f);
    fprintf(stderr, "  aliexpress: n=%zu clicks=%.0f ctcvr=%.0f vocab(categorical_1)=%u\n", ds->n,
            label_sum(ds, 0), label_sum(ds, 1), ds->fields[0].vocab);
    rf_dataset *te = load_ok(pt, &s, &enc, NULL);
    assert_true(te->n > 0);
    rf_dataset_free(te);
    rf_dataset_free(ds);
    rf_encoders_free(enc);
}

static void test_real_aliccp(void **state)
{
    (void)state;
    const char *dd = test_data_dir();
    if (!dd) skip();
    char p[1024];
    snprintf(p, sizeof p, "%s/ali-ccp-sample/ali_ccp_train_sample.csv", dd);
    static const char *sparse[] = {"101", "121", "122", "124", "125", "126", "127", "128",
                                   "129", "205", "206", "207", "210", "216", "508", "509",
                                   "702", "853", "301", "109_14", "110_14", "127_14", "150_14"};
    static const char *dense[] = {"D109_14", "D110_14", "D127_14", "D150_14",
                                  "D508",    "D509",    "D702",    "D853"};
    rf_schema s;
    schema_init(&s);
    for (int i = 0; i < 23; i++) add_cat(&s, sparse[i], 0, 0, 0);
    for (int i = 0; i < 8; i++) add_dense(&s, dense[i]);
    add_label(&s, "click");
    add_label(&s, "purchase");
    rf_encoders *enc = NULL;
    rf_dataset *ds = load_ok(p, &s, &enc, NULL);
    assert_int_equal(ds->n, 100);
    assert_true(label_sum(ds, 0) == 7);
    assert_true(label_sum(ds, 1) == 1);
    assert_int_equal(ds->fields[0].vocab, 2); /* field 101 is constant in this sample */
    fprintf(stderr, "  ali-ccp: n=%zu clicks=%.0f purchases=%.0f\n", ds->n, label_sum(ds, 0),
            label_sum(ds, 1));
    rf_dataset_free(ds);
    rf_encoders_free(enc);
}

/* Integer-id fields (encoders without a vocabulary): ids are used as they are, ids outside
 * [0, size) become the OOV id 0, a non-integer is a data error with its location; a
 * multi-valued id field works the same; binary labels reject anything but 0/1. */
static void test_id_encoders(void **state)
{
    (void)state;
    const char *p = write_tmp("ids.csv", "u,tags,y\n3,1|4,1\n9,2,0\n0,,1\n");
    rf_schema s;
    schema_init(&s);
    add_cat(&s, "u", 0, RF_POOL_SUM, 0);
    add_cat(&s, "tags", 1, RF_POOL_SUM, '|');
    add_label(&s, "y");
    uint32_t sizes[2] = {5, 3};
    rf_encoders *enc = rf_encoders_ids(2, sizes);
    rf_dataset *ds = load_ok(p, &s, &enc, NULL);
    assert_int_equal(ds->n, 3);
    assert_int_equal(ds->cat[0 * 2], 3);
    assert_int_equal(ds->cat[1 * 2], 0); /* 9 >= 5: OOV */
    assert_int_equal(ds->cat[2 * 2], 0);
    assert_int_equal(ds->fields[0].vocab, 5);
    assert_int_equal(ds->mv_off[1][1], 2);
    assert_int_equal(ds->mv_ids[1][0], 1);
    assert_int_equal(ds->mv_ids[1][1], 0); /* 4 >= 3: OOV */
    rf_dataset_free(ds);
    rf_error e;
    p = write_tmp("ids_bad.csv", "u,tags,y\n3,1,1\n4x,1,0\n");
    assert_int_equal(load_fail(p, &s, &enc, NULL, &e), RF_EDATA);
    assert_int_equal(e.line, 3);
    assert_int_equal(e.col, 1);
    assert_non_null(strstr(e.msg, "expected integer ids"));
    p = write_tmp("ids_bad_mv.csv", "u,tags,y\n3,1|x,1\n");
    assert_int_equal(load_fail(p, &s, &enc, NULL, &e), RF_EDATA);
    assert_int_equal(e.col, 3);
    s.labels_binary = 1;
    p = write_tmp("ids_lab.csv", "u,tags,y\n3,1,1\n3,1,0.5\n");
    assert_int_equal(load_fail(p, &s, &enc, NULL, &e), RF_EDATA);
    assert_int_equal(e.line, 3);
    assert_int_equal(e.col, 5);
    assert_non_null(strstr(e.msg, "not 0 or 1"));
    rf_encoders_free(enc);
}

/* The block tokenizer (unquoted rows) and the field-by-field one give the same rows: the same
 * random table written plain (LF and CRLF rows, rows longer than 64 and 128 bytes, 100 columns:
 * more than the initial span array, empty fields) and with every field quoted (always the
 * field-by-field path), loaded with each block scanner (AVX2, SSE2, none) with 1 and 3 threads
 * and small rounds. */
static void test_block_tokenizer_equivalence(void **state)
{
    (void)state;
    enum { COLS = 100, ROWS = 3000 };
    const char *pa = tmp_path("blk_plain.csv"), *pq = tmp_path("blk_quoted.csv");
    FILE *fa = fopen(pa, "wb"), *fq = fopen(pq, "wb");
    assert_non_null(fa);
    assert_non_null(fq);
    for (int c = 0; c < COLS; c++) {
        fprintf(fa, "%sc%d", c ? "," : "", c);
        fprintf(fq, "%s\"c%d\"", c ? "," : "", c);
    }
    fputs("\n", fa);
    fputs("\n", fq);
    uint64_t r = 12345;
    for (int i = 0; i < ROWS; i++) {
        const char *eol = i % 3 == 1 ? "\r\n" : "\n";
        for (int c = 0; c < COLS; c++) {
            r ^= r << 13;
            r ^= r >> 7;
            r ^= r << 17;
            char v[64];
            if (c < 4) /* categorical: short and long keys, sometimes empty */
                snprintf(v, sizeof v, "%s", r % 17 == 0 ? "" : r % 5 == 0 ? "a-rather-long-key-value-of-forty-chars!" : "k");
            else if (c == COLS - 1)
                snprintf(v, sizeof v, "%d", (int)(r % 2));
            else if (r % 7 == 0)
                snprintf(v, sizeof v, "%.17g", (double)(r >> 11) * 0x1p-53);
            else
                snprintf(v, sizeof v, "%u", (unsigned)(r % 1000));
            if (c < 4 && strlen(v) > 2) v[strlen(v) - (r % 3)] = 0; /* shorter keys */
            fprintf(fa, "%s%s", c ? "," : "", v);
            fprintf(fq, "%s\"%s\"", c ? "," : "", v);
        }
        fputs(eol, fa);
        fputs(eol, fq);
    }
    fclose(fa);
    fclose(fq);
    rf_schema s;
    schema_init(&s);
    char nm[16];
    for (int c = 0; c < 4; c++) {
        snprintf(nm, sizeof nm, "c%d", c);
        add_cat(&s, nm, 0, 0, 0);
    }
    for (int c = 4; c < COLS - 1; c++) {
        snprintf(nm, sizeof nm, "c%d", c);
        add_dense(&s, nm);
    }
    add_label(&s, "c99");
    rf_encoders *eq = NULL;
    rf_load_opts oq = {0};
    oq.threads = 1;
    rf_dataset *dq = load_ok(pq, &s, &eq, &oq);
    assert_int_equal(dq->n, ROWS);
    static const int paths[] = {RF_TOKENIZER_AUTO, RF_TOKENIZER_SSE2, RF_TOKENIZER_SCALAR}; /* AVX2 (if the CPU has it), SSE2, none */
    for (int run = 0; run < 6; run++) {
        int t = run % 2 ? 3 : 1;
        rf_encoders *ea = NULL;
        rf_load_opts oa = {0};
        oa.threads = t;
        oa.block_bytes = t == 1 ? 0 : 70000;
        oa.tokenizer = paths[run / 2];
        rf_dataset *da = load_ok(pa, &s, &ea, &oa);
        assert_same_dataset(da, dq);
        for (int f = 0; f < 4; f++) {
            assert_int_equal(rf_vocab_size(ea->vocab[f]), rf_vocab_size(eq->vocab[f]));
            for (uint32_t id = 1; id < rf_vocab_size(ea->vocab[f]); id++)
                assert_string_equal(rf_vocab_key(ea->vocab[f], id), rf_vocab_key(eq->vocab[f], id));
        }
        rf_dataset_free(da);
        rf_encoders_free(ea);
    }
    rf_dataset_free(dq);
    rf_encoders_free(eq);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vocab_basic),
        cmocka_unit_test(test_vocab_add),
        cmocka_unit_test(test_vocab_millions),
        cmocka_unit_test(test_vocab_integer_keys),
        cmocka_unit_test(test_basic_load),
        cmocka_unit_test(test_dense_batch_paths),
        cmocka_unit_test(test_quoted_fields),
        cmocka_unit_test(test_crlf),
        cmocka_unit_test(test_tsv),
        cmocka_unit_test(test_multi_valued),
        cmocka_unit_test(test_min_count),
        cmocka_unit_test(test_oov_given_encoders),
        cmocka_unit_test(test_label_product),
        cmocka_unit_test(test_gzip),
        cmocka_unit_test(test_gzip_trailing),
        cmocka_unit_test(test_numbers_exact),
        cmocka_unit_test(test_block_tokenizer_equivalence),
        cmocka_unit_test(test_roundtrip_write),
        cmocka_unit_test(test_golden_invalid),
        cmocka_unit_test(test_nul_byte),
        cmocka_unit_test(test_io_errors),
        cmocka_unit_test(test_skip_bad_rows),
        cmocka_unit_test(test_max_rows),
        cmocka_unit_test(test_large_file_buffer_boundaries),
        cmocka_unit_test(test_refill_boundaries),
        cmocka_unit_test(test_real_aliexpress),
        cmocka_unit_test(test_real_aliccp),
        cmocka_unit_test(test_id_encoders),
    };
    return cmocka_run_group_tests_name("csv", tests, group_setup, group_teardown);
}
