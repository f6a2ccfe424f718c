/* test_cache.c - the binary dataset cache: build/open round trip (identical to parsing the
 * text), splits as views of the mapping, staleness (inputs and configuration), damaged files
 * (magic, version, truncation, checksums), the block-shuffle row order, training from a
 * cache with bounded resident memory, version 2's per-chunk checksums (rows verified alone, a
 * data-parallel process's shard), and version-1 files. */
#include "test_util.h"

#include "core/bytes.h"
#include "data/dataint.h"
#include "nn/model_impl.h"

#include <xxhash.h>

#include <dirent.h>
#include <unistd.h>
#include <utime.h>
#include <zlib.h>

#include "resflow/cache.h"
#include "resflow/config.h"
#include "resflow/pipeline.h"
#include "resflow/train.h"

TEST_TMPDIR("cache")

/* A log with a multi-valued field, a weight, a group and a hashed and a bucketized field. */
static const char *write_log(const char *name, int rows, int variant)
{
    const char *p = tmp_path(name);
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    fprintf(f, "q,u,tags,price,w,click,order\n");
    for (int i = 0; i < rows; i++)
        fprintf(f, "q%d,u%d,%s,%d.5,%d,%d,%d\n", i / 10, (i * 7) % 301, i % 3 ? "a|b" : "c", i % 97,
                1 + i % 2, (i + variant) % 4 == 0, i % 12 == 0); /* variant: same size, other labels */
    fclose(f);
    return p;
}

static rf_config *make_cfg_norm(const char *source, const char *cache, const char *norm)
{
    rf_config *c = malloc(sizeof *c);
    assert_non_null(c);
    rf_config_default(c);
    char yaml[2048];
    snprintf(yaml, sizeof yaml,
             "data: {source: %s, cache: %s, group: q, weight: w, valid_frac: 0.1, test_frac: 0.2,\n"
             "  categorical: [u, \"tags:|:mean\", \"q:hash:100\", \"price:bucket:5\"], dense: [price],\n"
             "  normalize: %s}\n"
             "tasks: [{name: ctr, label: click}, {name: ctcvr, label: \"click*order\", parent: ctr}]\n"
             "model: {hidden: [8], emb_dim: 4}\ntrain: {epochs: 1, batch_size: 64, log_every: 1}\n",
             source, cache, norm);
    rf_error e;
    rf_status st = rf_config_load_string(c, yaml, strlen(yaml), "test", &e);
    if (!st) st = rf_config_validate(c, &e);
    if (st) fprintf(stderr, "  config: %s\n", e.msg);
    assert_int_equal(st, RF_OK);
    rf_schema_from_tasks(c);
    return c;
}

static rf_config *make_cfg(const char *source, const char *cache) { return make_cfg_norm(source, cache, "standardize"); }

static void same_data(const rf_dataset *a, const rf_dataset *b)
{
    assert_int_equal(a->n, b->n);
    assert_int_equal(a->F, b->F);
    assert_int_equal(a->D, b->D);
    assert_int_equal(a->K, b->K);
    size_t n = a->n;
    assert_memory_equal(a->cat, b->cat, n * (size_t)a->F * 4);
    assert_memory_equal(a->dense, b->dense, n * (size_t)a->D * 4);
    assert_memory_equal(a->labels, b->labels, n * (size_t)a->K * 4);
    assert_memory_equal(a->weight, b->weight, n * 4);
    assert_memory_equal(a->group, b->group, n * 8);
    for (int f = 0; f < a->F; f++) {
        assert_int_equal(a->fields[f].vocab, b->fields[f].vocab);
        assert_string_equal(a->fields[f].name, b->fields[f].name);
        if (!a->mv_off[f]) continue;
        for (size_t i = 0; i < n; i++) { /* offsets may be absolute in a view: compare bags */
            uint64_t la = a->mv_off[f][i + 1] - a->mv_off[f][i], lb = b->mv_off[f][i + 1] - b->mv_off[f][i];
            assert_int_equal(la, lb);
            assert_memory_equal(a->mv_ids[f] + a->mv_off[f][i], b->mv_ids[f] + b->mv_off[f][i], la * 4);
        }
    }
    for (int k = 0; k < a->K; k++) assert_string_equal(a->label_names[k], b->label_names[k]);
}

static void test_round_trip(void **state)
{
    (void)state;
    const char *src = write_log("log.csv", 5000, 0), *cp = tmp_path("log.rfc");
    rf_config *cfg = make_cfg(src, cp);
    rf_error e;
    rf_cache_info info;
    rf_status st = rf_cache_build_cfg(cfg, cp, NULL, NULL, &info, &e);
    if (st) fprintf(stderr, "  %s\n", e.msg);
    assert_int_equal(st, RF_OK);
    assert_int_equal(info.rows[0], 5000);
    assert_int_equal(info.fit_rows, 3500);
    assert_int_equal(rf_cache_check_cfg(cfg, cp, &e), RF_OK);
    /* the splits from the cache equal those parsed from the text */
    rf_config *plain = make_cfg(src, "");
    rf_splits a, b;
    assert_int_equal(rf_data_load(plain, &a, NULL, NULL, &e), RF_OK);
    st = rf_data_load(cfg, &b, NULL, NULL, &e);
    if (st) fprintf(stderr, "  %s\n", e.msg);
    assert_int_equal(st, RF_OK);
    assert_non_null(b.train->map); /* views of the mapping, no copy */
    assert_true(b.train->map == b.test->map);
    assert_true(b.train->shuffle_block > 0); /* auto: block shuffle for a cache */
    assert_int_equal(a.train->shuffle_block, 0);
    same_data(a.train, b.train);
    same_data(a.valid, b.valid);
    same_data(a.test, b.test);
    for (int f = 0; f < a.enc->F; f++) {
        assert_int_equal(a.enc->field[f].kind, b.enc->field[f].kind);
        assert_int_equal(a.enc->field[f].size, b.enc->field[f].size);
        if (!a.enc->vocab[f]) continue;
        uint32_t n = rf_vocab_size(a.enc->vocab[f]);
        assert_int_equal(n, rf_vocab_size(b.enc->vocab[f]));
        for (uint32_t i = 1; i < n; i++) assert_string_equal(rf_vocab_key(a.enc->vocab[f], i), rf_vocab_key(b.enc->vocab[f], i));
    }
    assert_memory_equal(a.enc->dense, b.enc->dense, sizeof *a.enc->dense);
    /* training on either gives the same model (the same row order with data.shuffle: full) */
    cfg->data.schema.shuffle = RF_SHUFFLE_FULL;
    rf_splits c;
    assert_int_equal(rf_data_load(cfg, &c, NULL, NULL, &e), RF_OK);
    assert_int_equal(c.train->shuffle_block, 0);
    rf_model *ma = NULL, *mc = NULL;
    assert_int_equal(rf_config_create_model(plain, a.train->F, a.train->fields, a.train->D, &ma, &e), RF_OK);
    assert_int_equal(rf_config_create_model(plain, c.train->F, c.train->fields, c.train->D, &mc, &e), RF_OK);
    assert_int_equal(rf_train(ma, &plain->train, NULL, a.train, a.valid, NULL, &e), RF_OK);
    assert_int_equal(rf_train(mc, &plain->train, NULL, c.train, c.valid, NULL, &e), RF_OK);
    assert_memory_equal(ma->params, mc->params, ma->n_params * sizeof(float));
    assert_memory_equal(ma->emb, mc->emb, ma->emb_off[ma->F] * (size_t)ma->E * sizeof(float));
    rf_model_free(ma);
    rf_model_free(mc);
    rf_splits_free(&a);
    rf_splits_free(&b);
    rf_splits_free(&c);
    free(plain);
    free(cfg);
}

static void test_separate_files(void **state)
{
    (void)state;
    const char *src = write_log("tr.csv", 800, 0), *va = write_log("va.csv", 100, 1), *te = write_log("te.csv", 120, 2);
    const char *cp = tmp_path("sep.rfc");
    rf_config *cfg = make_cfg(src, cp);
    cfg->data.schema.cache_spill = 1; /* built through spill files: the same content */
    snprintf(cfg->data.valid, sizeof cfg->data.valid, "%s", va);
    snprintf(cfg->data.test, sizeof cfg->data.test, "%s", te);
    rf_config *plain = make_cfg(src, "");
    snprintf(plain->data.valid, sizeof plain->data.valid, "%s", va);
    snprintf(plain->data.test, sizeof plain->data.test, "%s", te);
    rf_splits a, b;
    rf_error e;
    assert_int_equal(rf_data_load(plain, &a, NULL, NULL, &e), RF_OK);
    assert_int_equal(rf_data_load(cfg, &b, NULL, NULL, &e), RF_OK); /* builds it on first use */
    assert_int_equal(b.train->n, 800);
    assert_int_equal(b.valid->n, 100);
    assert_int_equal(b.test->n, 120);
    same_data(a.train, b.train);
    same_data(a.valid, b.valid);
    same_data(a.test, b.test);
    rf_splits_free(&a);
    rf_splits_free(&b);
    /* the validation file is an input: changing it makes the cache stale */
    write_log("va.csv", 101, 1);
    assert_int_equal(rf_cache_check_cfg(cfg, cp, &e), RF_EFORMAT);
    assert_non_null(strstr(e.msg, "stale"));
    assert_non_null(strstr(e.msg, "va.csv"));
    free(plain);
    free(cfg);
}

static long file_size(const char *p)
{
    FILE *f = fopen(p, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fclose(f);
    return n;
}

static void copy_file(const char *from, const char *to, long keep)
{
    FILE *a = fopen(from, "rb"), *b = fopen(to, "wb");
    assert_non_null(a);
    assert_non_null(b);
    char buf[65536];
    long left = keep;
    size_t n;
    while (left > 0 && (n = fread(buf, 1, left < (long)sizeof buf ? (size_t)left : sizeof buf, a)) > 0) {
        fwrite(buf, 1, n, b);
        left -= (long)n;
    }
    fclose(a);
    fclose(b);
}

static void flip(const char *p, long at)
{
    FILE *f = fopen(p, "r+b");
    assert_non_null(f);
    fseek(f, at, SEEK_SET);
    int c = fgetc(f);
    fseek(f, at, SEEK_SET);
    fputc(c ^ 0x41, f);
    fclose(f);
}

static void expect_bad(const rf_config *cfg, const char *p, rf_status want, const char *msg)
{
    rf_error e;
    rf_dataset *s = NULL, *v = NULL, *t = NULL;
    rf_encoders *enc = NULL;
    rf_status st = rf_cache_open(p, &s, &v, &t, &enc, &e);
    if (st != want || !strstr(e.msg, msg)) fprintf(stderr, "  open %s: status %d, message: %s (want %s)\n", p, st, e.msg, msg);
    assert_int_equal(st, want);
    assert_non_null(strstr(e.msg, msg));
    assert_null(s);
    assert_null(enc);
    /* the staleness check reads only header and metadata but rejects them alike */
    if (!strstr(msg, "data checksum") && !strstr(msg, "out of range")) assert_int_equal(rf_cache_check_cfg(cfg, p, &e), want);
}

/* The data wing's own API: a source description and plain options, no configuration; the
 * configuration hash is the caller's key, and the cache is the one the configuration builds. */
static void test_data_api(void **state)
{
    (void)state;
    const char *src = write_log("da.csv", 2000, 0), *cp = tmp_path("da.rfc"), *cq = tmp_path("da2.rfc");
    rf_config *cfg = make_cfg(src, cp);
    rf_data_cfg data;
    rf_cache_opts o;
    rf_cache_args(cfg, &data, &o);
    assert_string_equal(data.schema.label[0], cfg->tasks[0].label);
    rf_error e;
    assert_int_equal(rf_cache_check(&data, &o, cp, &e), RF_EIO);
    assert_int_equal(rf_cache_build(&data, &o, cp, NULL, NULL, NULL, &e), RF_OK);
    assert_int_equal(rf_cache_check(&data, &o, cp, &e), RF_OK);
    assert_int_equal(rf_cache_check_cfg(cfg, cp, &e), RF_OK);
    rf_cache_opts other = o;
    other.config_hash ^= 1;
    assert_int_equal(rf_cache_check(&data, &other, cp, &e), RF_EFORMAT);
    assert_non_null(strstr(e.msg, "configuration changed"));
    other = o;
    other.threads = o.threads == 1 ? 2 : 1; /* not part of the key, nor of the content */
    assert_int_equal(rf_cache_check(&data, &other, cp, &e), RF_OK);
    assert_int_equal(rf_cache_build_cfg(cfg, cq, NULL, NULL, NULL, &e), RF_OK);
    long n = file_size(cp);
    assert_int_equal(file_size(cq), n);
    FILE *a = fopen(cp, "rb"), *b = fopen(cq, "rb");
    assert_non_null(a);
    assert_non_null(b);
    for (int ca = 0, cb = 0; ca != EOF || cb != EOF;) {
        ca = fgetc(a);
        cb = fgetc(b);
        assert_int_equal(ca, cb);
    }
    fclose(a);
    fclose(b);
    free(cfg);
}

static void test_stale_and_damaged(void **state)
{
    (void)state;
    const char *src = write_log("st.csv", 3000, 0), *cp = tmp_path("st.rfc");
    rf_config *cfg = make_cfg(src, cp);
    rf_error e;
    assert_int_equal(rf_cache_check_cfg(cfg, cp, &e), RF_EIO); /* missing */
    assert_int_equal(rf_cache_build_cfg(cfg, cp, NULL, NULL, NULL, &e), RF_OK);
    assert_int_equal(rf_cache_check_cfg(cfg, cp, &e), RF_OK);
    /* a new modification time alone (same content) keeps it fresh */
    struct utimbuf ut = {1000000000, 1000000000};
    assert_int_equal(utime(src, &ut), 0);
    assert_int_equal(rf_cache_check_cfg(cfg, cp, &e), RF_OK);
    /* the same size, other content: stale */
    write_log("st.csv", 3000, 5);
    assert_int_equal(rf_cache_check_cfg(cfg, cp, &e), RF_EFORMAT);
    assert_non_null(strstr(e.msg, "changed (content)"));
    write_log("st.csv", 3001, 0);
    assert_int_equal(rf_cache_check_cfg(cfg, cp, &e), RF_EFORMAT);
    assert_non_null(strstr(e.msg, "changed (size"));
    /* loading the splits rebuilds a stale cache, which is then fresh */
    rf_splits sp;
    assert_int_equal(rf_data_load(cfg, &sp, NULL, NULL, &e), RF_OK);
    assert_int_equal(sp.train->n + sp.valid->n + sp.test->n, 3001);
    rf_splits_free(&sp);
    assert_int_equal(rf_cache_check_cfg(cfg, cp, &e), RF_OK);
    /* the data configuration is part of the key; the shuffle settings are not */
    cfg->data.schema.shuffle_window = 3;
    assert_int_equal(rf_cache_check_cfg(cfg, cp, &e), RF_OK);
    cfg->data.schema.min_count = 2;
    assert_int_equal(rf_cache_check_cfg(cfg, cp, &e), RF_EFORMAT);
    assert_non_null(strstr(e.msg, "configuration changed"));
    cfg->data.schema.min_count = 1;
    snprintf(cfg->tasks[1].label, sizeof cfg->tasks[1].label, "order");
    assert_int_equal(rf_cache_check_cfg(cfg, cp, &e), RF_EFORMAT);
    snprintf(cfg->tasks[1].label, sizeof cfg->tasks[1].label, "click*order");
    assert_int_equal(rf_cache_check_cfg(cfg, cp, &e), RF_OK);

    /* damaged copies */
    long n = file_size(cp);
    const char *d = tmp_path("damaged.rfc");
    copy_file(cp, d, n / 2);
    expect_bad(cfg, d, RF_EFORMAT, "truncated");
    copy_file(cp, d, 100);
    expect_bad(cfg, d, RF_EFORMAT, "truncated");
    copy_file(cp, d, n);
    flip(d, 0);
    expect_bad(cfg, d, RF_EFORMAT, "not a resflow dataset cache");
    copy_file(cp, d, n);
    flip(d, 8); /* version */
    expect_bad(cfg, d, RF_EFORMAT, "version");
    copy_file(cp, d, n);
    flip(d, 200); /* reserved header byte */
    expect_bad(cfg, d, RF_EFORMAT, "header checksum");
    copy_file(cp, d, n);
    flip(d, 4096 + 10); /* an id of the first array: out of range */
    expect_bad(cfg, d, RF_EFORMAT, "out of range");
    copy_file(cp, d, n);
    flip(d, 4096 + 3001 * 4 * 4 + 4096 + 40); /* a dense value (the second array) */
    expect_bad(cfg, d, RF_EFORMAT, "data checksum");
    copy_file(cp, d, n);
    flip(d, n - 5); /* metadata */
    expect_bad(cfg, d, RF_EFORMAT, "metadata checksum");
    FILE *f = fopen(d, "wb");
    fputs("search_id,click\n", f);
    fclose(f);
    expect_bad(cfg, d, RF_EFORMAT, "not a resflow dataset cache");
    /* the simulator is not cached */
    rf_config *syn = make_cfg("synth", cp);
    assert_int_equal(rf_cache_build_cfg(syn, cp, NULL, NULL, NULL, &e), RF_EUSAGE);
    free(syn);
    free(cfg);
}

/* Dense values final as parsed (no normalisation) are written into the cache while the text is
 * read, ahead of every other array; the result equals the text load, through spill files too,
 * and a compressed input (hashed apart from the load) stays fresh when only touched. */
static void test_streamed_dense(void **state)
{
    (void)state;
    const char *src = write_log("sd.csv", 4000, 0), *cp = tmp_path("sd.rfc");
    for (int spill = 0; spill < 2; spill++) {
        rf_config *cfg = make_cfg_norm(src, cp, "none"), *plain = make_cfg_norm(src, "", "none");
        cfg->data.schema.cache_spill = spill ? 1 : 2;
        rf_error e;
        rf_status st = rf_cache_build_cfg(cfg, cp, NULL, NULL, NULL, &e);
        if (st) fprintf(stderr, "  %s\n", e.msg);
        assert_int_equal(st, RF_OK);
        rf_splits a, b;
        assert_int_equal(rf_data_load(plain, &a, NULL, NULL, &e), RF_OK);
        assert_int_equal(rf_data_load(cfg, &b, NULL, NULL, &e), RF_OK);
        assert_non_null(b.train->map);
        same_data(a.train, b.train);
        same_data(a.valid, b.valid);
        same_data(a.test, b.test);
        /* the dense array is the first one: its first value sits right after the header page */
        float first;
        FILE *f = fopen(cp, "rb");
        assert_non_null(f);
        assert_int_equal(fseek(f, 4096, SEEK_SET), 0);
        assert_int_equal(fread(&first, sizeof first, 1, f), 1);
        fclose(f);
        assert_true(first == a.train->dense[0]);
        assert_true(first == 0.5f); /* price of row 0: "0.5" */
        rf_splits_free(&a);
        rf_splits_free(&b);
        free(plain);
        free(cfg);
    }
    /* a gzip input */
    char *gzp = strdup(tmp_path("sd.csv.gz"));
    {
        FILE *in = fopen(src, "rb");
        gzFile out = gzopen(gzp, "wb");
        assert_non_null(in);
        assert_non_null(out);
        char buf[4096];
        size_t n;
        while ((n = fread(buf, 1, sizeof buf, in)) > 0) assert_int_equal(gzwrite(out, buf, (unsigned)n), (int)n);
        fclose(in);
        assert_int_equal(gzclose(out), Z_OK);
    }
    rf_config *gz = make_cfg_norm(gzp, cp, "none");
    rf_error e;
    assert_int_equal(rf_cache_build_cfg(gz, cp, NULL, NULL, NULL, &e), RF_OK);
    struct utimbuf ut = {1000000000, 1000000000};
    assert_int_equal(utime(gzp, &ut), 0);
    assert_int_equal(rf_cache_check_cfg(gz, cp, &e), RF_OK);
    rf_splits c;
    assert_int_equal(rf_data_load(gz, &c, NULL, NULL, &e), RF_OK);
    assert_int_equal(c.train->n + c.valid->n + c.test->n, 4000);
    rf_splits_free(&c);
    free(gz);
    free(gzp);
}

/* Regression with quantile thresholds: the threshold labels are derived after the split, also
 * on the views of a mapped cache (a label array handed to the mapping); the same labels as from
 * the text. */
static void test_quantile_labels_on_cache(void **state)
{
    (void)state;
    const char *src = tmp_path("rt.csv"), *cp = tmp_path("rt.rfc");
    FILE *f = fopen(src, "wb");
    assert_non_null(f);
    fprintf(f, "u,i,x,rating\n");
    for (int i = 0; i < 3000; i++) fprintf(f, "u%d,i%d,%d.25,%d\n", i % 97, i % 31, i % 13, 1 + (i * 7 + i / 11) % 5);
    fclose(f);
    rf_splits sp[2];
    for (int c = 0; c < 2; c++) {
        rf_config *cfg = malloc(sizeof *cfg);
        assert_non_null(cfg);
        rf_config_default(cfg);
        char yaml[1024];
        snprintf(yaml, sizeof yaml,
                 "data: {source: %s, cache: \"%s\", categorical: [u, i], dense: [x]}\n"
                 "regression: {target: rating, quantiles: 3}\n"
                 "tasks: [{name: r, label: rating}]\ntrain: {monitor: mse}\n",
                 src, c ? cp : "");
        rf_error e;
        rf_status st = rf_config_load_string(cfg, yaml, strlen(yaml), "test", &e);
        if (!st) st = rf_config_validate(cfg, &e);
        if (!st) st = rf_data_load(cfg, &sp[c], NULL, NULL, &e);
        if (st) fprintf(stderr, "  %s\n", e.msg);
        assert_int_equal(st, RF_OK);
        assert_true((sp[c].train->map != NULL) == c);
        free(cfg);
    }
    rf_dataset *a[3] = {sp[0].train, sp[0].valid, sp[0].test}, *b[3] = {sp[1].train, sp[1].valid, sp[1].test};
    for (int i = 0; i < 3; i++) {
        assert_true(a[i]->K > 1); /* rating + the threshold labels */
        assert_int_equal(a[i]->K, b[i]->K);
        assert_int_equal(a[i]->n, b[i]->n);
        for (int k = 0; k < a[i]->K; k++) assert_string_equal(a[i]->label_names[k], b[i]->label_names[k]);
        assert_memory_equal(a[i]->labels, b[i]->labels, a[i]->n * (size_t)a[i]->K * sizeof(float));
    }
    rf_splits_free(&sp[0]);
    rf_splits_free(&sp[1]); /* the derived label arrays go with the mapping (ASan checks) */
}

/* ---- the row order ------------------------------------------------------------------------------ */

static void test_block_order(void **state)
{
    (void)state;
    rf_dataset *ds = rf_dataset_alloc(10000, 1, 0, 1);
    assert_non_null(ds);
    ds->shuffle_block = 300;
    ds->shuffle_window = 3;
    const int B = 128;
    unsigned char *seen = calloc(ds->n, 1);
    size_t *first = malloc(ds->n * sizeof *first);
    assert_non_null(seen);
    assert_non_null(first);
    for (int run = 0; run < 2; run++) {
        rf_row_order *o = rf_row_order_create(ds, 99, B);
        assert_non_null(o);
        for (int ep = 0; ep < 3; ep++) {
            rf_row_order_epoch(o, ep);
            memset(seen, 0, ds->n);
            size_t pos = 0, batches = 0;
            int nb;
            const size_t *r;
            size_t win_rows = 0, in_window = 0, blocks_seen = 0;
            size_t window_blocks[3] = {0};
            while ((r = rf_row_order_next(o, &nb)) && nb > 0) {
                assert_true(nb == B || pos + (size_t)nb == ds->n); /* full batches but the last */
                for (int i = 0; i < nb; i++) {
                    assert_true(r[i] < ds->n);
                    assert_int_equal(seen[r[i]], 0);
                    seen[r[i]] = 1;
                    if (run == 0 && ep == 0) first[pos] = r[i];
                    if (run == 1 && ep == 0) assert_int_equal(first[pos], r[i]); /* deterministic */
                    pos++;
                }
                batches++;
            }
            (void)win_rows;
            (void)in_window;
            (void)blocks_seen;
            (void)window_blocks;
            assert_int_equal(pos, ds->n);
            assert_int_equal(batches, (ds->n + B - 1) / B);
        }
        rf_row_order_free(o);
    }
    /* locality: the first 900 - 127 rows come from 3 blocks only (one window) */
    rf_row_order *o = rf_row_order_create(ds, 99, B);
    rf_row_order_epoch(o, 0);
    size_t blocks[64], nbk = 0, taken = 0;
    int nb;
    const size_t *r;
    while (taken + B <= 900 - B && (r = rf_row_order_next(o, &nb)) && nb > 0) {
        for (int i = 0; i < nb; i++) {
            size_t b = r[i] / 300, k;
            for (k = 0; k < nbk && blocks[k] != b; k++) {}
            if (k == nbk) blocks[nbk++] = b;
        }
        taken += (size_t)nb;
    }
    assert_int_equal(nbk, 3);
    /* another epoch is another order */
    rf_row_order_epoch(o, 1);
    r = rf_row_order_next(o, &nb);
    int differs = 0;
    for (int i = 0; i < nb; i++) differs |= r[i] != first[i];
    assert_true(differs);
    rf_row_order_free(o);
    /* without blocks: the full shuffle (a permutation per epoch) */
    ds->shuffle_block = 0;
    o = rf_row_order_create(ds, 99, B);
    rf_row_order_epoch(o, 0);
    memset(seen, 0, ds->n);
    size_t total = 0;
    while ((r = rf_row_order_next(o, &nb)) && nb > 0)
        for (int i = 0; i < nb; i++, total++) {
            assert_int_equal(seen[r[i]], 0);
            seen[r[i]] = 1;
        }
    assert_int_equal(total, ds->n);
    rf_row_order_free(o);
    free(seen);
    free(first);
    rf_dataset_free(ds);
}

/* ---- bounded memory ----------------------------------------------------------------------------- */

typedef struct {
    char path[512];
    double max_kb;
    int samples;
} rss_probe;

/* Resident kB of the mapping of the file path in this process (/proc/self/smaps). */
static double mapped_rss_kb(const char *path)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    if (!f) return -1;
    char line[1024];
    int in = 0;
    double kb = 0;
    while (fgets(line, sizeof line, f)) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = 0;
        if (strchr(line, '-') && strchr(line, ' ') && ((line[0] >= '0' && line[0] <= '9') || (line[0] >= 'a' && line[0] <= 'f'))) {
            size_t n = strlen(line), m = strlen(path);
            in = n >= m && !strcmp(line + n - m, path);
            continue;
        }
        double v;
        if (in && sscanf(line, "Rss: %lf kB", &v) == 1) kb += v;
    }
    fclose(f);
    return kb;
}

static void probe(void *ud, const char *line)
{
    (void)line;
    rss_probe *p = ud;
    double kb = mapped_rss_kb(p->path);
    if (kb > p->max_kb) p->max_kb = kb;
    if (getenv("RESFLOW_TEST_VERBOSE")) fprintf(stderr, "  [%s] %.0f kB\n", line, kb);
    p->samples++;
}

static void test_bounded_memory(void **state)
{
    (void)state;
    /* 500k rows x 40 dense features: about 80 MB of arrays in the cache */
    const char *src = tmp_path("big.csv"), *cp = tmp_path("big.rfc");
    FILE *f = fopen(src, "wb");
    assert_non_null(f);
    fprintf(f, "u");
    for (int d = 0; d < 40; d++) fprintf(f, ",x%d", d);
    fprintf(f, ",click\n");
    for (int i = 0; i < 500000; i++) {
        fprintf(f, "u%d", i % 1000);
        for (int d = 0; d < 40; d++) fprintf(f, ",%d", (i + d) % 7);
        fprintf(f, ",%d\n", (i % 7) < 2);
    }
    fclose(f);
    rf_config *c = malloc(sizeof *c);
    assert_non_null(c);
    rf_config_default(c);
    char yaml[4096];
    int o = snprintf(yaml, sizeof yaml, "data: {source: %s, cache: %s, categorical: [u], valid_frac: 0.01, test_frac: 0.01,\n"
                                        "  shuffle_block: 4096, shuffle_window: 2, dense: [", src, cp);
    for (int d = 0; d < 40; d++) o += snprintf(yaml + o, sizeof yaml - (size_t)o, "%sx%d", d ? ", " : "", d);
    snprintf(yaml + o, sizeof yaml - (size_t)o,
             "]}\ntasks: [{name: ctr, label: click}]\nmodel: {hidden: [8], emb_dim: 4, type: nse}\n"
             "train: {epochs: 1, batch_size: 512, log_every: 20}\n");
    rf_error e;
    assert_int_equal(rf_config_load_string(c, yaml, strlen(yaml), "t", &e), RF_OK);
    assert_int_equal(rf_config_validate(c, &e), RF_OK);
    rf_schema_from_tasks(c);
    rf_splits sp;
    rf_status st = rf_data_load(c, &sp, NULL, NULL, &e);
    if (st) fprintf(stderr, "  %s\n", e.msg);
    assert_int_equal(st, RF_OK);
    double total_kb = rf_dataset_bytes(sp.train) / 1024.0;
    rf_model *m = NULL;
    assert_int_equal(rf_config_create_model(c, sp.train->F, sp.train->fields, sp.train->D, &m, &e), RF_OK);
    rss_probe pr = {{0}, 0, 0};
    char *rp = realpath(cp, NULL);
    assert_non_null(rp);
    snprintf(pr.path, sizeof pr.path, "%s", rp);
    free(rp);
    assert_int_equal(rf_train(m, &c->train, &(rf_train_hooks){probe, &pr, NULL, NULL, NULL}, sp.train, sp.valid, NULL, &e), RF_OK);
    /* window: 2 blocks of 4096 rows of 41 values, about 1.3 MB; reading them also maps some
     * neighbouring pages (fault-around, large page-cache folios of up to 2 MiB), and the
     * validation rows are read at the end: still far below the data */
    fprintf(stderr, "  training data %.0f kB; largest resident part of the mapping %.0f kB (%d samples)\n", total_kb,
            pr.max_kb, pr.samples);
    assert_true(pr.samples > 5);
    assert_true(pr.max_kb > 0);
    assert_true(pr.max_kb < total_kb / 4);
    rf_model_free(m);
    rf_splits_free(&sp);
    free(c);
}

/* Version 2's chunk checksums: rows [lo, hi) verify only the chunks that hold them (each once),
 * a damaged chunk outside the requested rows is not read (whoever reads those rows finds it), one
 * inside them is reported with its chunk; the whole verification finds both. */
static void test_chunks(void **state)
{
    (void)state;
    const char *src = write_log("ck.csv", 40000, 0), *cp = tmp_path("ck.rfc");
    rf_config *cfg = make_cfg(src, cp);
    rf_error e;
    assert_int_equal(rf_cache_build_cfg(cfg, cp, NULL, NULL, NULL, &e), RF_OK);
    rf_cache *c;
    assert_int_equal(rf_cache_map(cp, &c, &e), RF_OK);
    size_t n = rf_cache_part_rows(c, 0);
    assert_int_equal(n, 40000);
    assert_int_equal(rf_cache_part_rows(c, 1), 0);
    uint64_t v, v1, total;
    rf_cache_verified(c, &v, &total);
    assert_int_equal(v, 0);
    assert_int_equal(rf_cache_verify_rows(c, 0, 0, n / 2, &e), RF_OK);
    rf_cache_verified(c, &v1, NULL);
    assert_true(v1 > total * 0.4 && v1 < total * 0.6);
    assert_int_equal(rf_cache_verify_rows(c, 0, 1000, 2000, &e), RF_OK); /* verified already: nothing read */
    rf_cache_verified(c, &v, NULL);
    assert_int_equal(v, v1);
    assert_int_equal(rf_cache_verify_rows(c, 0, 0, n + 1, &e), RF_EUSAGE);
    assert_int_equal(rf_cache_verify_rows(c, 1, 0, 1, &e), RF_EUSAGE);
    rf_dataset *s, *va, *te;
    rf_encoders *enc;
    assert_int_equal(rf_cache_datasets(c, &s, &va, &te, &enc, &e), RF_OK);
    assert_null(va);
    const char *base = (const char *)s->map->base;
    size_t r3 = 3 * n / 4, r1 = n / 4;
    long late = (long)((const char *)(s->cat + r3 * (size_t)s->F) - base);
    long early = (long)((const char *)(s->cat + r1 * (size_t)s->F) - base);
    long late_tag = (long)((const char *)(s->mv_ids[1] + s->mv_off[1][r3]) - base); /* a multi-value id */
    rf_dataset_free(s);
    rf_encoders_free(enc);
    rf_cache_close(c);
    assert_int_equal(rf_cache_map(cp, &c, &e), RF_OK);
    assert_int_equal(rf_cache_verify(c, &e), RF_OK);
    rf_cache_verified(c, &v, NULL);
    assert_int_equal(v, total);
    rf_cache_close(c);

    const char *d = tmp_path("ck_damaged.rfc");
    long size = file_size(cp);
    long at[2] = {late, late_tag};
    for (int i = 0; i < 2; i++) {
        copy_file(cp, d, size);
        flip(d, at[i]);
        assert_int_equal(rf_cache_map(d, &c, &e), RF_OK);
        assert_int_equal(rf_cache_verify_rows(c, 0, 0, n / 2, &e), RF_OK); /* not read */
        rf_cache_verified(c, &v, NULL);
        assert_int_equal(v, v1);
        assert_int_equal(rf_cache_verify_rows(c, 0, r3, r3 + 1, &e), RF_EFORMAT);
        assert_non_null(strstr(e.msg, "data checksum mismatch in chunk"));
        rf_cache_close(c);
        rf_dataset *s2, *v2, *t2;
        rf_encoders *e2;
        assert_int_equal(rf_cache_open(d, &s2, &v2, &t2, &e2, &e), RF_EFORMAT); /* the whole read: an id or the chunk */
        assert_non_null(strstr(e.msg, "the cache is corrupted"));
    }
    copy_file(cp, d, size);
    flip(d, early);
    assert_int_equal(rf_cache_map(d, &c, &e), RF_OK);
    assert_int_equal(rf_cache_verify_rows(c, 0, 0, n / 2, &e), RF_EFORMAT);
    assert_non_null(strstr(e.msg, "data checksum mismatch in chunk"));
    rf_cache_close(c);
    free(cfg);
}

/* The processes of a data-parallel run each verify their shard of the training rows and their
 * slices of the validation and test rows: well under the whole each, the same datasets; a damaged
 * byte in rank 1's shard stops rank 1 only (rank 0 never reads it). */
static void test_shards(void **state)
{
    (void)state;
    const char *src = write_log("sh.csv", 40000, 0), *cp = tmp_path("sh.rfc");
    rf_config *cfg = make_cfg(src, cp);
    rf_error e;
    rf_splits w, p[2];
    assert_int_equal(rf_data_load(cfg, &w, NULL, NULL, &e), RF_OK); /* builds it, verifies it whole */
    assert_true(w.cache_bytes > 0);
    assert_int_equal(w.cache_verified, w.cache_bytes);
    for (int r = 0; r < 2; r++) {
        assert_int_equal(rf_data_load_shard(cfg, r, 2, &p[r], NULL, NULL, &e), RF_OK);
        assert_int_equal(p[r].cache_bytes, w.cache_bytes);
        assert_true(p[r].cache_verified < 0.65 * w.cache_bytes);
        assert_true(p[r].cache_verified > 0.35 * w.cache_bytes);
        same_data(p[r].train, w.train);
        same_data(p[r].valid, w.valid);
        same_data(p[r].test, w.test);
    }
    assert_true(p[0].cache_verified + p[1].cache_verified >= 0.95 * w.cache_bytes);
    rf_splits none;
    assert_int_equal(rf_data_load_shard(cfg, 2, 2, &none, NULL, NULL, &e), RF_EUSAGE);
    /* a damaged byte at 3/4 of the training rows: rank 1's shard */
    size_t row = 3 * w.train->n / 4;
    long at = (long)((const char *)(w.train->cat + row * (size_t)w.train->F) - (const char *)w.train->map->base);
    for (int r = 0; r < 2; r++) rf_splits_free(&p[r]);
    rf_splits_free(&w);
    flip(cp, at);
    assert_int_equal(rf_data_load_shard(cfg, 0, 2, &p[0], NULL, NULL, &e), RF_OK);
    assert_int_equal(rf_data_load_shard(cfg, 1, 2, &p[1], NULL, NULL, &e), RF_EFORMAT);
    assert_non_null(strstr(e.msg, "data checksum mismatch in chunk"));
    assert_null(p[1].train);
    rf_splits_free(&p[0]);
    free(cfg);
}

/* A version-1 cache (one checksum over the data region, no chunk table; made here from a
 * version-2 file) still opens, verified whole also when rows are asked for; training finds it
 * stale (an older format) and builds it again. */
static void test_version1(void **state)
{
    (void)state;
    const char *src = write_log("v1.csv", 3000, 0), *cp = tmp_path("v1src.rfc"), *d = tmp_path("v1.rfc");
    rf_config *cfg = make_cfg(src, cp);
    rf_error e;
    assert_int_equal(rf_cache_build_cfg(cfg, cp, NULL, NULL, NULL, &e), RF_OK);
    long size = file_size(cp);
    unsigned char *b = malloc((size_t)size);
    FILE *f = fopen(cp, "rb");
    assert_int_equal(fread(b, 1, (size_t)size, f), (size_t)size);
    fclose(f);
    assert_int_equal(rd32(b + 8), 2);
    uint64_t meta_off = rd64(b + 24), meta_len = rd64(b + 32), sh = rd32(b + 64);
    uint64_t nck = (meta_off - 4096 + ((uint64_t)1 << sh) - 1) >> sh, len1 = meta_len - 8 - 8 * nck;
    assert_int_equal(rd64(b + meta_off + len1), nck); /* the table ends the metadata */
    wr32(b + 8, 1);
    wr32(b + 64, 0);
    wr64(b + 16, meta_off + len1);
    wr64(b + 32, len1);
    wr64(b + 40, XXH64(b + meta_off, (size_t)len1, 0));
    wr64(b + 4088, XXH64(b, 4088, 0));
    f = fopen(d, "wb");
    assert_int_equal(fwrite(b, 1, (size_t)(meta_off + len1), f), (size_t)(meta_off + len1));
    fclose(f);
    rf_dataset *s[2], *v[2], *t[2];
    rf_encoders *enc[2];
    assert_int_equal(rf_cache_open(cp, &s[0], &v[0], &t[0], &enc[0], &e), RF_OK);
    assert_int_equal(rf_cache_open(d, &s[1], &v[1], &t[1], &enc[1], &e), RF_OK);
    same_data(s[0], s[1]);
    for (int i = 0; i < 2; i++) {
        rf_dataset_free(s[i]);
        rf_encoders_free(enc[i]);
    }
    rf_cache *c;
    uint64_t ver, total;
    assert_int_equal(rf_cache_map(d, &c, &e), RF_OK);
    assert_int_equal(rf_cache_verify_rows(c, 0, 0, 10, &e), RF_OK);
    rf_cache_verified(c, &ver, &total);
    assert_int_equal(ver, total); /* no chunks: all of it */
    rf_cache_close(c);
    assert_int_equal(rf_cache_check_cfg(cfg, d, &e), RF_EFORMAT);
    assert_non_null(strstr(e.msg, "older cache format version 1"));
    flip(d, 4096 + 3000 * 4 * 4 + 4096 + 40); /* a dense value: the one checksum */
    expect_bad(cfg, d, RF_EFORMAT, "data checksum mismatch: the cache");
    free(b);
    free(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_separate_files),
        cmocka_unit_test(test_data_api),
        cmocka_unit_test(test_stale_and_damaged),
        cmocka_unit_test(test_streamed_dense),
        cmocka_unit_test(test_quantile_labels_on_cache),
        cmocka_unit_test(test_block_order),
        cmocka_unit_test(test_bounded_memory),
        cmocka_unit_test(test_chunks),
        cmocka_unit_test(test_shards),
        cmocka_unit_test(test_version1),
    };
    return cmocka_run_group_tests_name("cache", tests, group_setup, group_teardown);
}
