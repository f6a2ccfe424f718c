/* test_rowenc.c - one raw row into a model's inputs (rowenc.h): every row of a test file,
 * encoded one at a time by column name with a saved model's encoders, equals what the loader
 * makes of the whole file with the same model (rf_data_load_for_model) and what training made
 * of it (ids, multi-valued ids, dense values bit for bit; then the scores) - for fitted
 * vocabularies with an own OOV id, hashed and bucketed fields, multi-valued mean-pooled tags,
 * NA strings with mean fill and standardisation, min-max columns, and for a simulator model's
 * integer ids; and the errors name the column. */
#include "test_util.h"

#include "resflow/config.h"
#include "resflow/modelfile.h"
#include "resflow/pipeline.h"
#include "resflow/rowenc.h"
#include "resflow/train.h"

TEST_TMPDIR("rowenc")

static const char *HEADER = "q,user,item,price,tags,age,score,click,order";

/* A row of the log: a few users and items, unseen ones in the test file, missing values. */
static void write_rows(FILE *fp, int n, int seed, int test)
{
    static const char *const tags[] = {"a", "b|c", "", "c|c|d", "x|a", "b"};
    static const char *const nas[] = {"NA", "?", ""};
    fprintf(fp, "%s\n", HEADER);
    unsigned s = (unsigned)seed;
    for (int i = 0; i < n; i++) {
        s = s * 1103515245u + 12345u;
        unsigned r = s >> 8;
        int user = (int)(r % (test ? 60 : 40)); /* test: users 40..59 unseen in training */
        char age[32], score[32];
        if (r % 11 == 0) snprintf(age, sizeof age, "%s", nas[r % 3]);
        else snprintf(age, sizeof age, "%d", 18 + (int)(r % 50));
        if (r % 13 == 0) snprintf(score, sizeof score, "NA");
        else snprintf(score, sizeof score, "%.3f", (double)(r % 1000) / 7.0 - 40.0);
        char price[32];
        if (r % 17 == 0) price[0] = '\0';
        else snprintf(price, sizeof price, "%.2f", (double)(r % 5000) / 100.0);
        fprintf(fp, "q%d,u%d,item%d,%s,%s,%s,%s,%d,%d\n", i / 8, user, (int)(r >> 5) % 300, price,
                tags[(r >> 3) % 6], age, score, (int)(r >> 7) % 5 == 0, (int)(r >> 9) % 17 == 0);
    }
}

static const char *write_file(const char *name, int n, int seed, int test)
{
    const char *p = tmp_path(name);
    FILE *fp = fopen(p, "w");
    assert_non_null(fp);
    write_rows(fp, n, seed, test);
    fclose(fp);
    return p;
}

/* Split a CSV line (no quoting in these files) into at most max fields. */
static int split(char *line, char **f, int max)
{
    int n = 0;
    line[strcspn(line, "\n")] = '\0';
    for (char *p = line; n < max;) {
        f[n++] = p;
        char *c = strchr(p, ',');
        if (!c) break;
        *c = '\0';
        p = c + 1;
    }
    return n;
}

/* Encode every row of path with enc (only the columns it reads) into a batch. */
static rf_row_batch *encode_file(const rf_row_encoder *enc, const char *path, size_t rows)
{
    const char *const *cols;
    int nc = rf_row_encoder_columns(enc, &cols);
    rf_row_batch *b = rf_row_batch_create(enc, rows);
    assert_non_null(b);
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    char line[1024], hdr[1024];
    char *hf[32], *vf[32];
    assert_non_null(fgets(hdr, sizeof hdr, fp));
    int nh = split(hdr, hf, 32);
    while (fgets(line, sizeof line, fp)) {
        int nv = split(line, vf, 32);
        assert_int_equal(nv, nh);
        const char *names[32], *vals[32];
        int n = 0;
        for (int i = 0; i < nh; i++)
            for (int c = 0; c < nc; c++)
                if (!strcmp(hf[i], cols[c])) {
                    names[n] = hf[i];
                    vals[n++] = vf[i];
                }
        rf_error e;
        rf_status st = rf_row_encode(enc, b, n, names, vals, &e);
        if (st) fail_msg("row %zu: %s", rf_row_batch_dataset(b)->n, e.msg);
    }
    fclose(fp);
    return b;
}

/* The model inputs of two datasets are the same, bit for bit. */
static void same_inputs(const rf_dataset *a, const rf_dataset *b)
{
    assert_int_equal(a->n, b->n);
    assert_int_equal(a->F, b->F);
    assert_int_equal(a->D, b->D);
    for (size_t i = 0; i < a->n; i++) {
        for (int f = 0; f < a->F; f++) {
            if (!a->mv_off[f]) {
                assert_non_null(!b->mv_off[f] ? (void *)1 : NULL);
                if (a->cat[i * a->F + f] != b->cat[i * b->F + f])
                    fail_msg("row %zu field %s: id %u vs %u", i, a->fields[f].name, a->cat[i * a->F + f],
                             b->cat[i * b->F + f]);
                continue;
            }
            assert_non_null(b->mv_off[f]);
            uint64_t na = a->mv_off[f][i + 1] - a->mv_off[f][i], nb = b->mv_off[f][i + 1] - b->mv_off[f][i];
            assert_int_equal(na, nb);
            for (uint64_t j = 0; j < na; j++)
                assert_int_equal(a->mv_ids[f][a->mv_off[f][i] + j], b->mv_ids[f][b->mv_off[f][i] + j]);
        }
        if (a->D) assert_memory_equal(a->dense + i * a->D, b->dense + i * b->D, (size_t)a->D * sizeof(float));
    }
}

static void scores_equal(const rf_model *m, const rf_dataset *a, const rf_dataset *b)
{
    int K = rf_model_info_of(m)->K;
    float *pa = malloc(a->n * (size_t)K * sizeof *pa), *pb = malloc(b->n * (size_t)K * sizeof *pb);
    rf_error e;
    assert_int_equal(rf_predict(m, a, 1, pa, NULL, &e), RF_OK);
    assert_int_equal(rf_predict(m, b, 1, pb, NULL, &e), RF_OK);
    assert_memory_equal(pa, pb, a->n * (size_t)K * sizeof *pa);
    free(pa);
    free(pb);
}

static void test_fitted_encoders(void **state)
{
    (void)state;
    const char *train = write_file("train.csv", 3000, 1, 0), *test = write_file("test.csv", 700, 2, 1);
    char yaml[2048];
    snprintf(yaml, sizeof yaml,
             "data:\n  source: %s\n  test: %s\n  valid_frac: 0.1\n  group: q\n"
             "  categorical: [user, \"item:hash:50\", \"price:bucket:4\", \"tags:|:mean\"]\n"
             "  dense: [age, \"score:minmax\"]\n  normalize: standardize\n  fill_na: mean\n"
             "  na_values: [\"\", NA, \"?\"]\n  oov: own\n  min_count: 2\n"
             "tasks: [{name: ctr, label: click}, {name: ctcvr, label: \"click*order\", parent: ctr}]\n"
             "model: {type: resflow, emb_dim: 4, hidden: [8]}\ntrain: {epochs: 1, batch_size: 128, threads: 1}\n",
             train, test);
    rf_config cfg;
    rf_config_default(&cfg);
    rf_error e;
    if (rf_config_load_string(&cfg, yaml, strlen(yaml), "test.yaml", &e)) fail_msg("%s", e.msg);
    assert_int_equal(rf_config_validate(&cfg, &e), RF_OK);
    rf_schema_from_tasks(&cfg);
    rf_splits sp;
    if (rf_data_load(&cfg, &sp, NULL, NULL, &e)) fail_msg("%s", e.msg);
    rf_model *m = NULL;
    assert_int_equal(rf_config_create_model(&cfg, sp.train->F, sp.train->fields, sp.train->D, &m, &e), RF_OK);
    assert_int_equal(rf_train(m, &cfg.train, NULL, sp.train, sp.valid, NULL, &e), RF_OK);
    const char *mp = tmp_path("m.model");
    assert_int_equal(rf_model_save(m, &cfg, sp.enc, sp.train->dense_names, sp.train->label_names, mp, &e), RF_OK);
    rf_loaded_model lm;
    assert_int_equal(rf_model_load(mp, &lm, &e), RF_OK);

    /* the encoder straight from the training-time schema and encoders */
    rf_row_encoder *direct;
    assert_int_equal(rf_row_encoder_create(&cfg.data.schema, sp.enc, &direct, &e), RF_OK);
    const char *const *cols;
    assert_int_equal(rf_row_encoder_columns(direct, &cols), 6);
    assert_string_equal(cols[0], "user");
    assert_string_equal(cols[5], "score");
    rf_row_batch *b0 = encode_file(direct, test, 1000);
    same_inputs(rf_row_batch_dataset(b0), sp.test);

    /* the encoder of the saved model, against the loader with the same model */
    rf_row_encoder *enc;
    assert_int_equal(rf_row_encoder_for_model(&lm, &enc, &e), RF_OK);
    rf_row_batch *b = encode_file(enc, test, 1000);
    rf_dataset *ds = NULL;
    assert_int_equal(rf_data_load_for_model(&lm, test, 0, 0, &ds, NULL, &e), RF_OK);
    same_inputs(rf_row_batch_dataset(b), ds);
    scores_equal(lm.model, rf_row_batch_dataset(b), ds);
    scores_equal(m, rf_row_batch_dataset(b), sp.test);
    /* the test file does hold what the rules are about */
    const rf_dataset *rb = rf_row_batch_dataset(b);
    size_t oov = 0, missing_price = 0;
    uint32_t user_rows = rb->fields[0].vocab;
    for (size_t i = 0; i < rb->n; i++) {
        oov += rb->cat[i * rb->F] == user_rows - 1;
        missing_price += rb->cat[i * rb->F + 2] == 0;
    }
    assert_true(oov > 0);
    assert_true(missing_price > 0);

    /* errors name the column; the batch is unchanged after one */
    const char *nm[3] = {"user", "age", "colour"}, *vl[3] = {"u1", "31", "red"};
    rf_row_batch *one = rf_row_batch_create(enc, 1);
    assert_int_equal(rf_row_encode(enc, one, 2, nm, vl, &e), RF_OK);
    assert_int_equal(rf_row_encode(enc, one, 2, nm, vl, &e), RF_EUSAGE); /* full */
    assert_non_null(strstr(e.msg, "full"));
    rf_row_batch_free(one);
    rf_row_batch_clear(b);
    assert_int_equal(rf_row_encode(enc, b, 3, nm, vl, &e), RF_EUSAGE);
    assert_non_null(strstr(e.msg, "colour"));
    vl[1] = "thirty";
    assert_int_equal(rf_row_encode(enc, b, 2, nm, vl, &e), RF_EDATA);
    assert_non_null(strstr(e.msg, "age"));
    assert_non_null(strstr(e.msg, "thirty"));
    vl[1] = "1e999";
    assert_int_equal(rf_row_encode(enc, b, 2, nm, vl, &e), RF_EDATA);
    const char *dup[2] = {"user", "user"};
    assert_int_equal(rf_row_encode(enc, b, 2, dup, vl, &e), RF_EUSAGE);
    assert_int_equal(rf_row_batch_dataset(b)->n, 0);
    /* missing columns are missing values: filled (age, score) or id 0 / PAD (the rest) */
    assert_int_equal(rf_row_encode(enc, b, 0, NULL, NULL, &e), RF_OK);
    assert_int_equal(rf_row_batch_dataset(b)->n, 1);
    assert_int_equal(rf_row_batch_dataset(b)->cat[0], 0);

    rf_row_batch_free(b);
    rf_row_batch_free(b0);
    rf_row_encoder_free(enc);
    rf_row_encoder_free(direct);
    rf_dataset_free(ds);
    rf_loaded_model_free(&lm);
    rf_model_free(m);
    rf_splits_free(&sp);
}

static void test_simulator_ids(void **state)
{
    (void)state;
    rf_config cfg;
    rf_config_default(&cfg);
    cfg.data.synth.rows = 3000;
    cfg.model.n_hidden = 1;
    cfg.model.hidden[0] = 8;
    cfg.train.threads = 1;
    rf_error e;
    rf_splits sp;
    if (rf_data_load(&cfg, &sp, NULL, NULL, &e)) fail_msg("%s", e.msg);
    rf_model *m = NULL;
    assert_int_equal(rf_config_create_model(&cfg, sp.train->F, sp.train->fields, sp.train->D, &m, &e), RF_OK);
    const char *mp = tmp_path("s.model"), *csv = tmp_path("s.csv");
    assert_int_equal(rf_model_save(m, &cfg, NULL, sp.train->dense_names, sp.train->label_names, mp, &e), RF_OK);
    assert_int_equal(rf_dataset_write_csv(sp.test, csv, &e), RF_OK);
    rf_loaded_model lm;
    assert_int_equal(rf_model_load(mp, &lm, &e), RF_OK);
    rf_row_encoder *enc;
    assert_int_equal(rf_row_encoder_for_model(&lm, &enc, &e), RF_OK);
    rf_row_batch *b = encode_file(enc, csv, sp.test->n);
    rf_dataset *ds = NULL;
    assert_int_equal(rf_data_load_for_model(&lm, csv, 0, 0, &ds, NULL, &e), RF_OK);
    same_inputs(rf_row_batch_dataset(b), ds);
    same_inputs(rf_row_batch_dataset(b), sp.test);
    scores_equal(lm.model, rf_row_batch_dataset(b), sp.test);
    /* an integer-id field given text */
    const char *const *cols;
    int nc = rf_row_encoder_columns(enc, &cols);
    rf_row_batch_clear(b);
    const char *vl[64];
    for (int c = 0; c < nc; c++) vl[c] = "0";
    assert_int_equal(rf_row_encode(enc, b, nc, cols, vl, &e), RF_OK);
    vl[0] = "u17";
    assert_int_equal(rf_row_encode(enc, b, nc, cols, vl, &e), RF_EDATA);
    if (!strstr(e.msg, "integer ids")) fail_msg("%s", e.msg);
    rf_row_batch_free(b);
    rf_row_encoder_free(enc);
    rf_dataset_free(ds);
    rf_loaded_model_free(&lm);
    rf_model_free(m);
    rf_splits_free(&sp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fitted_encoders),
        cmocka_unit_test(test_simulator_ids),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
