/* test_data.c - the data pipeline beyond plain CSV: delimiters of several bytes, headerless
 * files, ISO-8859-1, gzip/zstd, joined side tables, label expressions and numeric labels, row
 * filters, encoders fitted on the training rows only (min-count, own OOV id, hashing, quantile
 * buckets, fill-NA, standardize/min-max), applying given encoders, the PREP section of model
 * files, thread-count invariance of the parallel parser, derived labels and split points. */
#include "test_util.h"

#include "nn/model_impl.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <xxhash.h>
#include <zlib.h>
#include <zstd.h>

#include "resflow/config.h"
#include "resflow/data.h"
#include "resflow/modelfile.h"
#include "resflow/pipeline.h"

TEST_TMPDIR("data")

static const char *write_bytes(const char *name, const void *data, size_t n)
{
    const char *p = tmp_path(name);
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    fclose(f);
    return p;
}

static const char *write_tmp(const char *name, const char *content)
{
    return write_bytes(name, content, strlen(content));
}

/* A schema from YAML data/tasks text (through the configuration, as the CLI builds it). */
static void schema_from_yaml(const char *yaml, rf_schema *out)
{
    rf_config *c = malloc(sizeof *c);
    assert_non_null(c);
    rf_config_default(c);
    rf_error e;
    rf_status st = rf_config_load_string(c, yaml, strlen(yaml), "test.yaml", &e);
    if (st) fprintf(stderr, "  config: %s\n", e.msg);
    assert_int_equal(st, RF_OK);
    st = rf_config_validate(c, &e);
    if (st) fprintf(stderr, "  config: %s\n", e.msg);
    assert_int_equal(st, RF_OK);
    rf_schema_from_tasks(c);
    *out = c->data.schema;
    free(c);
}

static rf_dataset *load_opts(const char *path, const rf_schema *s, rf_encoders **enc, rf_load_opts *o)
{
    rf_dataset *ds = NULL;
    rf_error e;
    rf_error_clear(&e);
    rf_status st = rf_load_csv(path, s, enc, o, &ds, &e);
    if (st) {
        char b[2048];
        fprintf(stderr, "  load error: %s\n", rf_error_format(&e, b, sizeof b));
    }
    assert_int_equal(st, RF_OK);
    assert_non_null(ds);
    return ds;
}

static rf_dataset *load(const char *path, const rf_schema *s, rf_encoders **enc)
{
    return load_opts(path, s, enc, NULL);
}

static rf_status load_err(const char *path, const rf_schema *s, rf_encoders **enc, rf_error *e)
{
    rf_dataset *ds = NULL;
    rf_error_clear(e);
    rf_status st = rf_load_csv(path, s, enc, NULL, &ds, e);
    assert_null(ds);
    return st;
}

static const char *key(const rf_encoders *enc, int f, uint32_t id)
{
    const char *k = rf_vocab_key(enc->vocab[f], id);
    return k ? k : "<none>";
}

static int field_index(const rf_dataset *ds, const char *name)
{
    for (int f = 0; f < ds->F; f++)
        if (!strcmp(ds->fields[f].name, name)) return f;
    fail_msg("no field %s", name);
    return -1;
}

/* ---- formats ---------------------------------------------------------------------------- */

static void test_headerless_multibyte_latin1(void **state)
{
    (void)state;
    /* MovieLens .dat style: "::" separators, no header, ISO-8859-1 ("Am\xe9lie"), a single ':'
     * inside a value is data */
    const char *p = write_tmp("movies.dat", "1::Am\xe9lie (2001)::Comedy|Romance::4\n"
                                            "2::Toy Story (1995)::Animation::5\n"
                                            "3::Ratio 2:1 (1999)::Drama::2\n");
    rf_schema s;
    schema_from_yaml("data: {delim: \"::\", header: false, encoding: latin1,\n"
                     "  columns: [movie_id, title, genres, rating],\n"
                     "  categorical: [movie_id, title, \"genres:|:mean\"]}\n"
                     "tasks: [{name: good, label: \"rating>=4\"}]\n",
                     &s);
    assert_string_equal(s.delim_str, "::");
    rf_encoders *enc = NULL;
    rf_dataset *ds = load(p, &s, &enc);
    assert_int_equal(ds->n, 3);
    assert_string_equal(key(enc, 1, ds->cat[0 * 3 + 1]), "Am\xc3\xa9lie (2001)"); /* UTF-8 */
    assert_string_equal(key(enc, 1, ds->cat[2 * 3 + 1]), "Ratio 2:1 (1999)");
    assert_true(ds->labels[0] == 1 && ds->labels[1] == 1 && ds->labels[2] == 0);
    assert_int_equal(ds->mv_off[2][1], 2); /* Comedy|Romance */
    assert_int_equal(ds->mv_off[2][3], 4);
    rf_dataset_free(ds);
    rf_encoders_free(enc);

    /* census style ", " separator with values that contain spaces and a trailing '.' */
    p = write_tmp("census.txt", "38, Private, Never married, - 50000.\n"
                                "52, Self-employed, Married-civilian spouse present, 50000+.\n");
    schema_from_yaml("data: {delim: \", \", header: false, columns: [age, cls, marital, income],\n"
                     "  categorical: [cls], dense: [age]}\n"
                     "tasks: [{name: rich, label: \"income==50000+.\"}, {name: single, label: \"marital==Never married\"}]\n",
                     &s);
    enc = NULL;
    ds = load(p, &s, &enc);
    assert_int_equal(ds->n, 2);
    assert_true(ds->dense[0] == 38 && ds->dense[1] == 52);
    assert_true(ds->labels[0] == 0 && ds->labels[1] == 1); /* row 0: rich, single */
    assert_true(ds->labels[2] == 1 && ds->labels[3] == 0);
    assert_string_equal(key(enc, 0, ds->cat[1]), "Self-employed");
    rf_dataset_free(ds);
    rf_encoders_free(enc);
}

static void test_compressed(void **state)
{
    (void)state;
    char text[65536];
    size_t o = (size_t)snprintf(text, sizeof text, "u,x,click\n");
    for (int i = 0; i < 2000; i++) o += (size_t)snprintf(text + o, sizeof text - o, "u%d,%d.25,%d\n", i % 37, i, i % 3 == 0);
    const char *plain = write_bytes("c.csv", text, o);
    /* gzip */
    const char *gzp = tmp_path("c.csv.gz");
    gzFile g = gzopen(gzp, "wb");
    assert_non_null(g);
    assert_int_equal(gzwrite(g, text, (unsigned)o), (int)o);
    gzclose(g);
    /* zstd, written as two frames (concatenated frames are one stream) */
    size_t cap = ZSTD_compressBound(o) * 2 + 64;
    char *z = malloc(cap);
    assert_non_null(z);
    size_t z1 = ZSTD_compress(z, cap, text, o / 2, 3);
    assert_false(ZSTD_isError(z1));
    size_t z2 = ZSTD_compress(z + z1, cap - z1, text + o / 2, o - o / 2, 3);
    assert_false(ZSTD_isError(z2));
    const char *zp = write_bytes("c.csv.zst", z, z1 + z2);
    rf_schema s;
    schema_from_yaml("data: {categorical: [u], dense: [x]}\ntasks: [{name: ctr, label: click}]\n", &s);
    rf_encoders *e1 = NULL, *e2 = NULL, *e3 = NULL;
    rf_dataset *a = load(plain, &s, &e1), *b = load(gzp, &s, &e2), *c = load(zp, &s, &e3);
    assert_int_equal(a->n, 2000);
    assert_int_equal(b->n, 2000);
    assert_int_equal(c->n, 2000);
    assert_memory_equal(a->cat, b->cat, 2000 * sizeof *a->cat);
    assert_memory_equal(a->cat, c->cat, 2000 * sizeof *a->cat);
    assert_memory_equal(a->dense, c->dense, 2000 * sizeof *a->dense);
    assert_memory_equal(a->labels, c->labels, 2000 * sizeof *a->labels);
    assert_true(a->dense[1999] == 1999.25f);
    rf_dataset_free(a);
    rf_dataset_free(b);
    rf_dataset_free(c);
    rf_encoders_free(e1);
    rf_encoders_free(e2);
    rf_encoders_free(e3);
    /* a truncated zstd stream and a damaged one are data errors */
    rf_error e;
    rf_encoders *en = NULL;
    const char *zt = write_bytes("t.csv.zst", z, z1 + z2 - 7);
    assert_int_equal(load_err(zt, &s, &en, &e), RF_EDATA);
    assert_non_null(strstr(e.msg, "corrupt compressed data"));
    z[z1 + 20] ^= 0x5a;
    z[z1 + 21] ^= 0x33;
    const char *zc = write_bytes("x.csv.zst", z, z1 + z2);
    assert_int_equal(load_err(zc, &s, &en, &e), RF_EDATA);
    assert_non_null(strstr(e.msg, "corrupt compressed data"));
    free(z);
}

/* ---- joins -------------------------------------------------------------------------------- */

static void test_join(void **state)
{
    (void)state;
    const char *users = write_tmp("users.csv", "uid,age,city\n"
                                               "u1,31,paris\n"
                                               "u2,,berlin\n"
                                               "u1,99,dup\n"); /* the first row of a key wins */
    const char *videos = write_tmp("videos.txt", "v1|\"20,43\"|NORMAL\n" /* quoted multi-valued tag */
                                                 "v2|7|AD\n");
    const char *main_ = write_tmp("log.csv", "uid,vid,click\n"
                                             "u1,v1,1\n"
                                             "u2,v2,0\n"
                                             "u3,v1,1\n" /* no such user */
                                             "u1,v9,0\n"); /* no such video */
    char yaml[2048];
    snprintf(yaml, sizeof yaml,
             "data:\n"
             "  categorical: [uid, city, vtype, \"tag:,:sum\"]\n"
             "  dense: [age]\n"
             "  fill_na: -1\n"
             "  join:\n"
             "    - {file: %s, on: uid}\n"
             "    - {file: %s, on: vid, key: video, delim: \"|\", header: false, columns: [video, tag, vtype]}\n"
             "tasks: [{name: ctr, label: click}]\n",
             users, videos);
    rf_schema s;
    schema_from_yaml(yaml, &s);
    assert_int_equal(s.njoin, 2);
    rf_encoders *enc = NULL;
    rf_dataset *ds = load(main_, &s, &enc);
    assert_int_equal(ds->n, 4);
    int fc = field_index(ds, "city"), fv = field_index(ds, "vtype"), ft = field_index(ds, "tag");
    const uint32_t *c = ds->cat;
    const int F = ds->F;
    assert_string_equal(key(enc, fc, c[0 * F + fc]), "paris");
    assert_string_equal(key(enc, fc, c[1 * F + fc]), "berlin");
    assert_int_equal(c[2 * F + fc], 0); /* missing user: the PAD id */
    assert_string_equal(key(enc, fv, c[0 * F + fv]), "NORMAL");
    assert_string_equal(key(enc, fv, c[1 * F + fv]), "AD");
    assert_int_equal(c[3 * F + fv], 0);
    /* tags: "20,43" -> two ids, "7" -> one, missing video -> empty bag */
    assert_int_equal(ds->mv_off[ft][1] - ds->mv_off[ft][0], 2);
    assert_string_equal(key(enc, ft, ds->mv_ids[ft][1]), "43");
    assert_int_equal(ds->mv_off[ft][2] - ds->mv_off[ft][1], 1);
    assert_int_equal(ds->mv_off[ft][4] - ds->mv_off[ft][3], 0);
    /* ages: 31; empty -> fill -1; missing user -> fill -1; duplicate key ignored */
    assert_true(ds->dense[0] == 31 && ds->dense[1] == -1 && ds->dense[2] == -1 && ds->dense[3] == 31);
    rf_dataset_free(ds);
    rf_encoders_free(enc);
    /* without a fill value a missing joined number is an error at the join key */
    s.fill = RF_FILL_ERROR;
    rf_error e;
    enc = NULL;
    assert_int_equal(load_err(main_, &s, &enc, &e), RF_EDATA);
    assert_int_equal(e.line, 3); /* u2's age is empty */
    assert_non_null(strstr(e.msg, "empty numeric value in column 'age'"));
}

/* ---- labels and filters ------------------------------------------------------------------ */

static void test_label_expressions(void **state)
{
    (void)state;
    const char *p = write_tmp("lab.csv", "u,click,conv,rating,play,tab,status\n"
                                         "a,1,1,5,1200,1,ok\n"
                                         "b,1,0,3,99999,1,bad\n"
                                         "c,0,0,1,-5,2,ok\n"
                                         "d,1,0,4,30000,1,ok\n");
    rf_schema s;
    schema_from_yaml("data:\n  categorical: [u]\n  filter: [\"tab==1\"]\n"
                     "  numeric_labels: [\"play:0:60000\", rating]\n"
                     "tasks:\n"
                     "  - {name: a, label: \"click*conv\"}\n"
                     "  - {name: b, label: \"rating>=4\"}\n"
                     "  - {name: c, label: \"rating<4\"}\n"
                     "  - {name: d, label: \"rating!=5\"}\n"
                     "  - {name: e, label: \"status==ok\"}\n"
                     "  - {name: f, label: \"status!=ok\"}\n"
                     "  - {name: g, label: play}\n"
                     "  - {name: h, label: rating}\n"
                     "  - {name: i, label: \"rating>3\"}\n"
                     "  - {name: j, label: \"rating<=3\"}\n",
                     &s);
    rf_load_opts o;
    memset(&o, 0, sizeof o);
    rf_encoders *enc = NULL;
    rf_dataset *ds = load_opts(p, &s, &enc, &o);
    assert_int_equal(ds->n, 3); /* row c filtered out (tab 2) */
    assert_int_equal(o.filtered_rows, 1);
    const float want[3][10] = {
        {1, 1, 0, 0, 1, 0, 0.02f, 5, 1, 0},
        {0, 0, 1, 1, 0, 1, 1, 3, 0, 1}, /* play clamped to 1 */
        {0, 1, 0, 1, 1, 0, 0.5f, 4, 1, 0},
    };
    for (int i = 0; i < 3; i++)
        for (int k = 0; k < 10; k++) {
            if (fabsf(ds->labels[i * 10 + k] - want[i][k]) > 1e-6f)
                fprintf(stderr, "  row %d label %d (%s): %g, want %g\n", i, k, ds->label_names[k],
                        ds->labels[i * 10 + k], want[i][k]);
            assert_true(fabsf(ds->labels[i * 10 + k] - want[i][k]) <= 1e-6f);
        }
    assert_string_equal(ds->label_names[1], "rating>=4");
    rf_dataset_free(ds);
    rf_encoders_free(enc);
    /* a plain label that is not listed as numeric must be 0/1 */
    schema_from_yaml("data: {categorical: [u]}\ntasks: [{name: r, label: rating}]\n", &s);
    rf_error e;
    enc = NULL;
    assert_int_equal(load_err(p, &s, &enc, &e), RF_EDATA);
    assert_non_null(strstr(e.msg, "is not 0 or 1"));
    /* a text comparison cannot use >= */
    schema_from_yaml("data: {categorical: [u]}\ntasks: [{name: r, label: \"status>=ok\"}]\n", &s);
    assert_int_equal(load_err(p, &s, &enc, &e), RF_EUSAGE);
    assert_non_null(strstr(e.msg, "needs a number"));
}

static void test_filter_missing(void **state)
{
    (void)state;
    const char *p = write_tmp("flt.csv", "u,play,click\na,10,1\nb,,0\nc,0,1\nd,5,0\n");
    rf_schema s;
    schema_from_yaml("data: {categorical: [u], filter: [\"play>0\"]}\ntasks: [{name: ctr, label: click}]\n", &s);
    rf_load_opts o;
    memset(&o, 0, sizeof o);
    rf_encoders *enc = NULL;
    rf_dataset *ds = load_opts(p, &s, &enc, &o);
    assert_int_equal(ds->n, 2); /* a and d; b (missing) and c (0) fail "play>0" */
    assert_int_equal(o.filtered_rows, 2);
    assert_string_equal(key(enc, 0, ds->cat[1]), "d");
    rf_dataset_free(ds);
    rf_encoders_free(enc);
}

/* ---- fitting on the training rows ----------------------------------------------------------- */

/* 10 rows: 6 training rows (valid_frac 0.2, test_frac 0.2 -> rows 6..9 held out). */
static const char *fit_file(void)
{
    return write_tmp("fit.csv", "u,x,y,age,click,w\n"
                                "a,1,10,20,1,s1\n"
                                "a,2,,30,0,s2\n"
                                "b,3,20,40,1,s1\n"
                                "c,4,30,50,0,s3\n"
                                "a,5,40,60,1,s1\n"
                                "b,6,50,70,0,s2\n"
                                "z,1000,1000,1000,1,s9\n" /* held out: never fitted on */
                                "z,1000,1000,1000,0,s9\n"
                                "c,-1000,-1000,-1000,1,s1\n"
                                "q,,,,0,s1\n");
}

static void test_fit_training_rows_only(void **state)
{
    (void)state;
    const char *p = fit_file();
    rf_schema s;
    schema_from_yaml("data: {categorical: [u, \"age:bucket:3\"], dense: [x, \"y:minmax\"], normalize: standardize,\n"
                     "  fill_na: mean, min_count: 2, valid_frac: 0.2, test_frac: 0.2}\n"
                     "tasks: [{name: ctr, label: click}]\n",
                     &s);
    assert_int_equal(s.oov, RF_OOV_OWN);
    rf_load_opts o;
    memset(&o, 0, sizeof o);
    o.valid_frac = 0.2f;
    o.test_frac = 0.2f;
    rf_encoders *enc = NULL;
    rf_dataset *ds = load_opts(p, &s, &enc, &o);
    assert_int_equal(o.fit_rows, 6);
    /* vocabulary: a (3x) and b (2x) pass min_count 2 in the training rows; c (1x) and z (held
     * out only) do not: ids a=1, b=2, OOV=3 (own), size 4 */
    assert_int_equal(rf_vocab_size(enc->vocab[0]), 3);
    assert_int_equal(enc->field[0].kind, RF_ENC_VOCAB);
    assert_int_equal(enc->field[0].oov, 3);
    assert_int_equal(ds->fields[0].vocab, 4);
    const uint32_t wantu[10] = {1, 1, 2, 3, 1, 2, 3, 3, 3, 3};
    for (int i = 0; i < 10; i++) assert_int_equal(ds->cat[i * 2], wantu[i]);
    /* x standardised with the mean/sd of 1..6 (3.5, sqrt(35/12)) */
    double sd = sqrt(35.0 / 12.0);
    assert_true(fabs(enc->dense[0].shift - 3.5) < 1e-6);
    assert_true(fabs(enc->dense[0].scale - 1.0 / sd) < 1e-6);
    assert_true(fabs(ds->dense[0 * 2] - (1 - 3.5) / sd) < 1e-5);
    assert_true(fabs(ds->dense[6 * 2] - (1000 - 3.5) / sd) < 1e-3);
    /* y min-max over the training values 10..50 (the empty one excluded); the missing one is
     * filled with the training mean 30 -> 0.5 */
    assert_int_equal(enc->dense[1].norm, RF_NORM_MINMAX);
    assert_true(fabs(enc->dense[1].shift - 10) < 1e-6 && fabs(enc->dense[1].scale - 1.0 / 40) < 1e-7);
    assert_true(fabs(enc->dense[1].fill_value - 30) < 1e-6);
    assert_true(fabs(ds->dense[1 * 2 + 1] - 0.5) < 1e-6);
    assert_true(fabs(ds->dense[9 * 2 + 1] - 0.5) < 1e-6); /* held-out missing: same fill */
    assert_true(fabs(ds->dense[9 * 2 + 0] - 0) < 1e-6);   /* x missing -> mean -> 0 standardised */
    /* age buckets from the training ages 20..70: 3 buckets -> 2 boundaries, no held-out value */
    int fa = 1;
    assert_int_equal(enc->field[fa].kind, RF_ENC_BUCKET);
    assert_int_equal(enc->field[fa].nbounds, 2);
    assert_true(enc->field[fa].bounds[0] == 40 && enc->field[fa].bounds[1] == 60);
    assert_int_equal(ds->fields[fa].vocab, 4);
    const uint32_t wanta[10] = {1, 1, 2, 2, 3, 3, 3, 3, 1, 0};
    for (int i = 0; i < 10; i++) assert_int_equal(ds->cat[i * 2 + fa], wanta[i]);
    rf_dataset_free(ds);

    /* the same encoders applied to a new file give the same values (and unknowns map to OOV) */
    const char *q = write_tmp("apply.csv", "u,x,y,age,click,w\nb,3.5,30,45,1,s1\nnew,,NaN,,0,s2\n");
    rf_dataset *t = load(q, &s, &enc);
    assert_int_equal(t->cat[0], 2);
    assert_int_equal(t->cat[2], 3); /* unknown -> OOV */
    assert_int_equal(t->cat[1], 2); /* 45: one boundary (40) <= 45 */
    assert_int_equal(t->cat[3], 0); /* missing age -> PAD */
    assert_true(fabs(t->dense[0]) < 1e-6);
    assert_true(fabs(t->dense[1] - 0.5) < 1e-6);
    assert_true(fabs(t->dense[2]) < 1e-6 && fabs(t->dense[3] - 0.5) < 1e-6); /* both filled */
    rf_dataset_free(t);
    rf_encoders_free(enc);

    /* oov: zero puts unknown values on id 0 (shared with missing ones) */
    s.oov = RF_OOV_ZERO;
    enc = NULL;
    ds = load_opts(p, &s, &enc, &o);
    assert_int_equal(ds->fields[0].vocab, 3);
    assert_int_equal(ds->cat[3 * 2], 0);
    rf_dataset_free(ds);
    rf_encoders_free(enc);
}

static void test_hash_fields(void **state)
{
    (void)state;
    const char *p = write_tmp("hash.csv", "u,tags,click\nalice,x|y,1\nbob,,0\nalice,y,1\n");
    rf_schema s;
    schema_from_yaml("data: {categorical: [\"u:hash:1000\", \"tags:|:sum:hash:50\"], hash_seed: 77}\n"
                     "tasks: [{name: ctr, label: click}]\n",
                     &s);
    assert_int_equal(s.cat[0].hash, 1000);
    assert_int_equal(s.cat[1].hash, 50);
    assert_int_equal(s.cat[1].multi, 1);
    rf_encoders *enc = NULL;
    rf_dataset *ds = load(p, &s, &enc);
    assert_int_equal(ds->fields[0].vocab, 1001);
    assert_int_equal(enc->field[0].kind, RF_ENC_HASH);
    assert_true(enc->field[0].seed == 77);
    assert_null(enc->vocab[0]);
    uint32_t ha = 1 + (uint32_t)(XXH3_64bits_withSeed("alice", 5, 77) % 1000);
    uint32_t hb = 1 + (uint32_t)(XXH3_64bits_withSeed("bob", 3, 77) % 1000);
    assert_int_equal(ds->cat[0], ha);
    assert_int_equal(ds->cat[2], hb);
    assert_int_equal(ds->cat[4], ha);
    assert_int_equal(ds->mv_ids[1][0], 1 + (uint32_t)(XXH3_64bits_withSeed("x", 1, 77) % 50));
    assert_int_equal(ds->mv_off[1][2], 2); /* bob: empty bag */
    rf_dataset_free(ds);
    rf_encoders_free(enc);
    /* another seed, other ids */
    s.hash_seed = 78;
    enc = NULL;
    ds = load(p, &s, &enc);
    assert_int_equal(ds->cat[0], 1 + (uint32_t)(XXH3_64bits_withSeed("alice", 5, 78) % 1000));
    rf_dataset_free(ds);
    rf_encoders_free(enc);
}

/* ---- model files keep the encoders -------------------------------------------------------- */

static void test_model_keeps_encoders(void **state)
{
    (void)state;
    const char *p = fit_file();
    char yaml[1024];
    snprintf(yaml, sizeof yaml,
             "data: {source: %s, categorical: [u, \"age:bucket:3\", \"w:hash:64\"], dense: [x, \"y:minmax\"],\n"
             "  normalize: standardize, fill_na: mean, valid_frac: 0.2, test_frac: 0.2, min_count: 2}\n"
             "tasks: [{name: ctr, label: click}]\nmodel: {hidden: [4], emb_dim: 2}\n",
             p);
    rf_config *cfg = malloc(sizeof *cfg);
    assert_non_null(cfg);
    rf_config_default(cfg);
    rf_error e;
    assert_int_equal(rf_config_load_string(cfg, yaml, strlen(yaml), "t", &e), RF_OK);
    assert_int_equal(rf_config_validate(cfg, &e), RF_OK);
    rf_splits sp;
    rf_status st = rf_data_load(cfg, &sp, NULL, NULL, &e);
    if (st) fprintf(stderr, "  %s\n", e.msg);
    assert_int_equal(st, RF_OK);
    assert_int_equal(sp.train->n, 6);
    assert_int_equal(sp.valid->n, 2);
    assert_int_equal(sp.test->n, 2);
    rf_model *m = NULL;
    assert_int_equal(rf_config_create_model(cfg, sp.train->F, sp.train->fields, sp.train->D, &m, &e), RF_OK);
    const char *mp = tmp_path("enc.model");
    assert_int_equal(rf_model_save(m, cfg, sp.enc, sp.train->dense_names, sp.train->label_names, mp, &e), RF_OK);
    rf_loaded_model lm;
    st = rf_model_load(mp, &lm, &e);
    if (st) fprintf(stderr, "  %s\n", e.msg);
    assert_int_equal(st, RF_OK);
    assert_non_null(lm.enc);
    assert_non_null(lm.enc->field);
    for (int f = 0; f < 3; f++) {
        assert_int_equal(lm.enc->field[f].kind, sp.enc->field[f].kind);
        assert_int_equal(lm.enc->field[f].size, sp.enc->field[f].size);
        assert_int_equal(lm.enc->field[f].oov, sp.enc->field[f].oov);
    }
    assert_int_equal(lm.enc->field[1].nbounds, sp.enc->field[1].nbounds);
    assert_memory_equal(lm.enc->field[1].bounds, sp.enc->field[1].bounds, sp.enc->field[1].nbounds * sizeof(float));
    assert_int_equal(lm.enc->D, 2);
    assert_memory_equal(lm.enc->dense, sp.enc->dense, 2 * sizeof *lm.enc->dense);
    /* scoring a file with the loaded model encodes it exactly as training did */
    rf_dataset *again = NULL;
    st = rf_data_load_for_model(&lm, p, 0, 1, &again, NULL, &e);
    if (st) fprintf(stderr, "  %s\n", e.msg);
    assert_int_equal(st, RF_OK);
    assert_int_equal(again->n, 10);
    assert_memory_equal(again->cat, sp.train->cat, 6 * 3 * sizeof(uint32_t));
    assert_memory_equal(again->dense, sp.train->dense, 6 * 2 * sizeof(float));
    assert_memory_equal(again->cat + 8 * 3, sp.test->cat, 2 * 3 * sizeof(uint32_t));
    assert_memory_equal(again->dense + 8 * 2, sp.test->dense, 2 * 2 * sizeof(float));
    rf_dataset_free(again);
    rf_loaded_model_free(&lm);

    /* a damaged PREP section is a format error (flip the hash algorithm id) */
    FILE *f = fopen(mp, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc((size_t)sz);
    assert_int_equal(fread(buf, 1, (size_t)sz, f), (size_t)sz);
    fclose(f);
    unsigned char *at = NULL;
    for (long i = 64; i + 4 < sz; i++)
        if (!memcmp(buf + i, "PREP", 4)) at = buf + i;
    assert_non_null(at);
    rf_encoders_free(NULL);
    unsigned char *prep = at + 12;
    uint64_t plen = 0;
    for (int i = 7; i >= 0; i--) plen = plen << 8 | at[4 + i];
    rf_encoders *tmpe = calloc(1, sizeof *tmpe);
    assert_non_null(tmpe);
    tmpe->F = 3;
    tmpe->vocab = calloc(3, sizeof *tmpe->vocab);
    tmpe->vocab[0] = rf_vocab_create();
    rf_vocab_add(tmpe->vocab[0], "a", 1);
    rf_vocab_add(tmpe->vocab[0], "b", 1);
    st = rf_encoders_prep_parse(tmpe, 3, 2, prep, (size_t)plen, "x", &e);
    if (st) fprintf(stderr, "  prep: %s\n", e.msg);
    assert_int_equal(st, RF_OK);
    unsigned char *bad = malloc((size_t)plen);
    memcpy(bad, prep, (size_t)plen);
    bad[4] = 9; /* hash algorithm */
    assert_int_equal(rf_encoders_prep_parse(tmpe, 3, 2, bad, (size_t)plen, "x", &e), RF_EFORMAT);
    assert_non_null(strstr(e.msg, "unknown hash algorithm"));
    memcpy(bad, prep, (size_t)plen);
    assert_int_equal(rf_encoders_prep_parse(tmpe, 3, 2, bad, (size_t)plen - 3, "x", &e), RF_EFORMAT);
    assert_int_equal(rf_encoders_prep_parse(tmpe, 4, 2, bad, (size_t)plen, "x", &e), RF_EFORMAT);
    assert_non_null(strstr(e.msg, "3 fields"));
    free(bad);
    rf_encoders_free(tmpe);
    free(buf);
    rf_model_free(m);
    rf_splits_free(&sp);
    free(cfg);
}

/* ---- parallel parsing ------------------------------------------------------------------------ */

static void check_same(const rf_dataset *a, const rf_encoders *ea, const rf_dataset *b, const rf_encoders *eb)
{
    assert_int_equal(a->n, b->n);
    assert_memory_equal(a->cat, b->cat, a->n * (size_t)a->F * sizeof *a->cat);
    assert_memory_equal(a->dense, b->dense, a->n * (size_t)a->D * sizeof *a->dense);
    assert_memory_equal(a->labels, b->labels, a->n * (size_t)a->K * sizeof *a->labels);
    for (int f = 0; f < a->F; f++) {
        assert_int_equal(a->fields[f].vocab, b->fields[f].vocab);
        if (a->mv_off[f]) {
            assert_memory_equal(a->mv_off[f], b->mv_off[f], (a->n + 1) * sizeof(uint64_t));
            assert_memory_equal(a->mv_ids[f], b->mv_ids[f], a->mv_off[f][a->n] * sizeof(uint32_t));
        }
        if (!ea->vocab[f]) continue;
        uint32_t n = rf_vocab_size(ea->vocab[f]);
        assert_int_equal(n, rf_vocab_size(eb->vocab[f]));
        for (uint32_t i = 1; i < n; i++) assert_string_equal(rf_vocab_key(ea->vocab[f], i), rf_vocab_key(eb->vocab[f], i));
    }
}

static void test_thread_invariance(void **state)
{
    (void)state;
    /* quoted fields with delimiters and line breaks, "" escapes, CRLF, blank lines and - in
     * the second file - a literal quote in an unquoted field, which defeats the quote-parity
     * guess of row starts and forces the pieces to be parsed again */
    for (int variant = 0; variant < 2; variant++) {
        const char *p = tmp_path(variant ? "par2.csv" : "par1.csv");
        FILE *f = fopen(p, "wb");
        assert_non_null(f);
        /* num: integer ids (the vocabularies' direct tables), new ones appearing all along */
        fprintf(f, "id,text,tags,v,click,num\r\n");
        for (int i = 0; i < 40000; i++) {
            int num = (int)(((unsigned)i * 7919u) % (300u + (unsigned)i / 4));
            if (i % 11 == 0)
                fprintf(f, "k%d,\"multi, \"\"q\"\"\nline %d\",a|b%d,%d.5,%d,%d\r\n", i % 977, i % 13, i % 7, i, i & 1,
                        num);
            else if (variant && i % 97 == 0)
                fprintf(f, "k%d,5\" screen,c,%d,%d,%d\n", i % 977, i, i & 1, num);
            else
                fprintf(f, "k%d,t%d,%s,%d,%d,%d\n", i % 977, i % 101, i % 5 ? "x|y" : "", i, i & 1, num);
            if (i % 1000 == 999) fprintf(f, "\n");
        }
        fclose(f);
        rf_schema s;
        schema_from_yaml("data: {categorical: [id, text, \"tags:|:sum\", num], dense: [v], min_count: 2}\n"
                         "tasks: [{name: ctr, label: click}]\n",
                         &s);
        rf_load_opts o1;
        memset(&o1, 0, sizeof o1);
        o1.threads = 1;
        o1.valid_frac = 0.1f;
        rf_encoders *e1 = NULL;
        rf_dataset *a = load_opts(p, &s, &e1, &o1);
        assert_int_equal(a->n, 40000);
        /* (5 threads x 100000 bytes: rounds read by concurrent preads, csv.c tb_read_par) */
        const int threads[] = {2, 3, 5, 8};
        const size_t blocks[] = {4096, 65536, 100000, 0};
        for (int t = 0; t < 4; t++) {
            rf_load_opts o;
            memset(&o, 0, sizeof o);
            o.threads = threads[t];
            o.block_bytes = blocks[t];
            o.valid_frac = 0.1f;
            rf_encoders *e2 = NULL;
            rf_dataset *b = load_opts(p, &s, &e2, &o);
            check_same(a, e1, b, e2);
            rf_dataset_free(b);
            rf_encoders_free(e2);
        }
        rf_dataset_free(a);
        rf_encoders_free(e1);
    }
}

/* an error is reported at its place whichever piece (thread) finds it */
static void test_parallel_error_location(void **state)
{
    (void)state;
    const char *p = tmp_path("perr.csv");
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    fprintf(f, "u,v,click\n");
    for (int i = 0; i < 30000; i++) {
        if (i == 21000) fprintf(f, "\"u%d\nx\",1,1\n", i); /* a row on two lines */
        if (i == 25000) fprintf(f, "u%d,oops,1\n", i);
        else fprintf(f, "u%d,%d,0\n", i, i);
    }
    fclose(f);
    rf_schema s;
    schema_from_yaml("data: {categorical: [u], dense: [v]}\ntasks: [{name: ctr, label: click}]\n", &s);
    for (int t = 1; t <= 4; t++) {
        rf_load_opts o;
        memset(&o, 0, sizeof o);
        o.threads = t;
        o.block_bytes = 8192;
        rf_dataset *ds = NULL;
        rf_encoders *enc = NULL;
        rf_error e;
        assert_int_equal(rf_load_csv(p, &s, &enc, &o, &ds, &e), RF_EDATA);
        /* header, 21000 rows, the 2-line row, rows up to 25000: line 25000 + 1 + 2 + 1 */
        assert_int_equal(e.line, 25004);
        assert_int_equal(e.col, 8);
        assert_non_null(strstr(e.msg, "invalid number 'oops'"));
        assert_null(ds);
        assert_null(enc);
    }
}

/* Loading into spill files (what rf_cache_build does): the same data, held by a mapping; views
 * share it; nothing is left in the directory. */
static void test_spill(void **state)
{
    (void)state;
    const char *p = tmp_path("spill.csv");
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    fprintf(f, "u,tags,x,click\n");
    for (int i = 0; i < 50000; i++) fprintf(f, "u%d,%s,%d.5,%d\n", i % 333, i % 4 ? "a|b" : "", i % 100, i % 3 == 0);
    fclose(f);
    rf_schema s;
    schema_from_yaml("data: {categorical: [u, \"tags:|:sum\"], dense: [\"x:minmax\"]}\ntasks: [{name: ctr, label: click}]\n",
                     &s);
    char dir[512];
    snprintf(dir, sizeof dir, "%s/spill", g_tmp);
    assert_int_equal(mkdir(dir, 0700), 0);
    rf_load_opts o;
    memset(&o, 0, sizeof o);
    o.valid_frac = 0.1f;
    rf_encoders *e1 = NULL, *e2 = NULL;
    rf_dataset *a = load_opts(p, &s, &e1, &o);
    o.spill_dir = dir;
    o.threads = 2;
    o.block_bytes = 65536;
    rf_dataset *b = load_opts(p, &s, &e2, &o);
    assert_null(a->map);
    assert_non_null(b->map);
    check_same(a, e1, b, e2);
    rf_dataset *v = rf_dataset_range(b, 45000, 50000);
    assert_true(v->map == b->map);
    assert_memory_equal(v->cat, a->cat + 45000 * 2, 5000 * 2 * sizeof(uint32_t));
    rf_dataset_free(b); /* the view keeps the mapping alive */
    assert_true(v->dense[4999] == a->dense[49999]);
    rf_dataset_free(v);
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *de;
    int left = 0;
    while ((de = readdir(d)))
        if (de->d_name[0] != '.' || strstr(de->d_name, "spill")) left += strstr(de->d_name, "spill") != NULL;
    closedir(d);
    assert_int_equal(left, 0); /* spill files are unlinked at once */
    rmdir(dir);
    rf_dataset_free(a);
    rf_encoders_free(e1);
    rf_encoders_free(e2);
    /* a spill directory that does not exist: an error, not a crash */
    snprintf(dir, sizeof dir, "%s/no/such/dir", g_tmp);
    o.spill_dir = dir;
    rf_dataset *ds = NULL;
    rf_encoders *en = NULL;
    rf_error e;
    assert_int_not_equal(rf_load_csv(p, &s, &en, &o, &ds, &e), RF_OK);
    assert_null(ds);
    assert_null(en);
}

/* ---- derived labels, split points ------------------------------------------------------------ */

static void test_derived_labels(void **state)
{
    (void)state;
    rf_synth_opts so = rf_synth_default();
    so.rows = 2000;
    so.order_counts = 1;
    rf_dataset *ds = NULL;
    rf_error e;
    assert_int_equal(rf_synth_generate(&so, &ds, &e), RF_OK);
    char specs[4][RF_SPEC_MAX] = {"click", "click*order", "order_count>=2", "click*order"};
    assert_int_equal(rf_dataset_derive_labels(ds, (const char (*)[RF_SPEC_MAX])specs, 4, &e), RF_OK);
    assert_int_equal(ds->K, 5);
    int kp = rf_dataset_label_index(ds, "click*order"), kc = rf_dataset_label_index(ds, "order_count>=2");
    assert_int_equal(kp, 3);
    assert_int_equal(kc, 4);
    for (size_t i = 0; i < ds->n; i++) {
        const float *y = ds->labels + i * 5;
        assert_true(y[kp] == y[0] * y[1]);
        assert_true(y[kc] == (float)(y[2] >= 2));
        assert_true(isnan(ds->truth[i * 5 + 3]));
    }
    char bad[1][RF_SPEC_MAX] = {"nosuch"};
    assert_int_equal(rf_dataset_derive_labels(ds, (const char (*)[RF_SPEC_MAX])bad, 1, &e), RF_EUSAGE);
    assert_non_null(strstr(e.msg, "not in the data"));
    rf_dataset_free(ds);
}

static void test_split_points(void **state)
{
    (void)state;
    size_t a, b;
    rf_split_points(NULL, 100, 0.1f, 0.2f, &a, &b);
    assert_int_equal(a, 70);
    assert_int_equal(b, 80);
    uint64_t g[10] = {1, 1, 1, 2, 2, 2, 2, 3, 3, 4};
    rf_split_points(g, 10, 0.2f, 0.2f, &a, &b); /* 6 and 8 move to group starts 7 and 9 */
    assert_int_equal(a, 7);
    assert_int_equal(b, 9);
    rf_split_points(g, 10, 0, 0, &a, &b);
    assert_int_equal(a, 10);
    assert_int_equal(b, 10);
}

/* data.split: random - the roles from a seeded hash of the key: fractions in expectation, a group's
 * rows together, the same roles for the same seed; the loader fits the encoders on role 0 only */
static void test_split_roles(void **state)
{
    (void)state;
    enum { N = 100000 };
    uint8_t *r = malloc(N), *r2 = malloc(N);
    uint64_t *g = malloc(N * sizeof *g);
    assert_non_null(r);
    assert_non_null(r2);
    assert_non_null(g);
    rf_split_roles(NULL, N, 7, 0.1f, 0.2f, r);
    size_t c[3] = {0, 0, 0};
    for (size_t i = 0; i < N; i++) c[r[i]]++;
    assert_true(fabs(c[1] / (double)N - 0.1) < 0.01 && fabs(c[2] / (double)N - 0.2) < 0.01);
    /* spread over the whole file: the first tenth holds its share of held-out rows */
    size_t early = 0;
    for (size_t i = 0; i < N / 10; i++) early += r[i] != 0;
    assert_true(early > N / 10 * 0.25 && early < N / 10 * 0.35);
    rf_split_roles(NULL, N, 7, 0.1f, 0.2f, r2);
    assert_memory_equal(r, r2, N);
    rf_split_roles(NULL, N, 8, 0.1f, 0.2f, r2);
    assert_true(memcmp(r, r2, N) != 0);
    for (size_t i = 0; i < N; i++) g[i] = 1000 + i / 7; /* groups of 7 rows */
    rf_split_roles(g, N, 7, 0.1f, 0.2f, r);
    size_t held = 0;
    for (size_t i = 0; i < N; i++) {
        if (i % 7) assert_int_equal(r[i], r[i - 1]);
        held += r[i] != 0;
    }
    assert_true(fabs(held / (double)N - 0.3) < 0.02);
    rf_split_roles(g, N, 7, 0, 0, r); /* nothing held out */
    for (size_t i = 0; i < N; i++) assert_int_equal(r[i], 0);
    /* the loader: encoders fitted on the role-0 rows (x = row index: its mean over them) */
    char *text = malloc(32 * 1000 + 64);
    assert_non_null(text);
    size_t o = (size_t)sprintf(text, "x,click\n");
    for (int i = 0; i < 1000; i++) o += (size_t)sprintf(text + o, "%d,%d\n", i, i & 1);
    const char *p = write_tmp("split.csv", text);
    free(text);
    rf_schema s;
    schema_from_yaml("data: {dense: [x], normalize: standardize}\ntasks: [{name: ctr, label: click}]\n", &s);
    rf_load_opts lo;
    memset(&lo, 0, sizeof lo);
    lo.valid_frac = 0.2f;
    lo.test_frac = 0.2f;
    lo.split_random = 1;
    lo.split_seed = 11;
    rf_encoders *enc = NULL;
    rf_dataset *ds = load_opts(p, &s, &enc, &lo);
    rf_split_roles(NULL, 1000, 11, 0.2f, 0.2f, r);
    double sum = 0;
    size_t nt = 0;
    for (int i = 0; i < 1000; i++)
        if (!r[i]) sum += i, nt++;
    assert_int_equal(lo.fit_rows, nt);
    assert_true(nt > 500 && nt < 700);
    assert_true(fabs(enc->dense[0].shift - sum / (double)nt) < 1e-3);
    rf_dataset_free(ds);
    rf_encoders_free(enc);
    free(r);
    free(r2);
    free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_headerless_multibyte_latin1),
        cmocka_unit_test(test_compressed),
        cmocka_unit_test(test_join),
        cmocka_unit_test(test_label_expressions),
        cmocka_unit_test(test_filter_missing),
        cmocka_unit_test(test_fit_training_rows_only),
        cmocka_unit_test(test_hash_fields),
        cmocka_unit_test(test_model_keeps_encoders),
        cmocka_unit_test(test_thread_invariance),
        cmocka_unit_test(test_parallel_error_location),
        cmocka_unit_test(test_spill),
        cmocka_unit_test(test_derived_labels),
        cmocka_unit_test(test_split_points),
        cmocka_unit_test(test_split_roles),
    };
    return cmocka_run_group_tests_name("data", tests, group_setup, group_teardown);
}
