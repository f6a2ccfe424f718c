/* test_frame.c - a dataset from in-memory columns (frame.h) scores exactly as the same values
 * read from a file with the model's encoders; the handles of handles.h (train as the CLI does,
 * open, write, the model's columns); errors name the row and the column. */
#include "test_util.h"

#include "resflow/frame.h"
#include "resflow/handles.h"
#include "resflow/pipeline.h"

TEST_TMPDIR("frame")

#define N 1500

typedef struct {
    char user[N][8], tags[N][16];
    long long item[N];
    double price[N], age[N];
    float click[N], order[N];
} rows;

static rows *write_log(const char *path)
{
    static const char *const tg[] = {"a", "b|c", "", "c|c|d", "x|a", "b"};
    rows *R = calloc(1, sizeof *R);
    FILE *fp = fopen(path, "w");
    assert_non_null(R);
    assert_non_null(fp);
    fprintf(fp, "user,item,tags,price,age,click,order\n");
    unsigned s = 7;
    for (int i = 0; i < N; i++) {
        s = s * 1103515245u + 12345u;
        unsigned r = s >> 8;
        snprintf(R->user[i], 8, "u%u", r % 50);
        snprintf(R->tags[i], 16, "%s", tg[(r >> 3) % 6]);
        R->item[i] = (long long)((r >> 5) % 400);
        R->price[i] = (double)(r % 5000) / 100.0;
        R->age[i] = r % 11 == 0 ? NAN : 18 + (double)(r % 50);
        R->click[i] = (float)((r >> 7) % 5 == 0);
        R->order[i] = R->click[i] * (float)((r >> 9) % 3 == 0);
        char age[32] = "";
        if (!isnan(R->age[i])) snprintf(age, sizeof age, "%g", R->age[i]);
        fprintf(fp, "%s,%lld,%s,%.2f,%s,%g,%g\n", R->user[i], R->item[i], R->tags[i], R->price[i], age,
                (double)R->click[i], (double)R->order[i]);
    }
    fclose(fp);
    return R;
}

static char *pack(rows *R, int tags)
{
    char *b = malloc(N * 16), *p = b;
    for (int i = 0; i < N; i++) p += sprintf(p, "%s", tags ? R->tags[i] : R->user[i]) + 1;
    return b;
}

static void test_frame_equals_file(void **state)
{
    (void)state;
    const char *csv = tmp_path("log.csv"), *model = tmp_path("m.model"), *copy = tmp_path("copy.model");
    rows *R = write_log(csv);
    rf_config *cfg = rf_config_new();
    rf_error e;
    char yaml[1024];
    snprintf(yaml, sizeof yaml,
             "data: {source: %s, categorical: [user, 'item:hash:500', 'tags:|:mean', 'price:bucket:8'],\n"
             "       dense: [price, age], normalize: standardize, fill_na: mean}\n"
             "tasks: [{name: ctr, label: click}, {name: ctcvr, label: order, parent: ctr}]\n"
             "model: {emb_dim: 4, hidden: [8]}\ntrain: {epochs: 1, batch_size: 64, threads: 1}\n", csv);
    assert_int_equal(rf_config_load_string(cfg, yaml, strlen(yaml), "cfg", &e), RF_OK);
    rf_train_summary sum;
    rf_eval_result test;
    assert_int_equal(rf_train_to_file(cfg, model, NULL, NULL, &sum, &test, &e), RF_OK);
    assert_true(test.n > 0 && sum.epochs_run == 1);
    rf_loaded_model *lm;
    assert_int_equal(rf_model_open(model, &lm, &e), RF_OK);
    assert_int_equal(rf_model_ncolumns(lm), 6);
    assert_string_equal(rf_model_column(lm, 3), "price");
    assert_string_equal(rf_model_column(lm, 4), "price");
    int parent = 0;
    assert_string_equal(rf_model_task(lm, 1, &parent), "ctcvr");
    assert_int_equal(parent, 0);
    assert_int_equal(rf_model_write(lm, copy, &e), RF_OK);

    rf_dataset *fd = NULL, *md = NULL;
    assert_int_equal(rf_model_data(lm, csv, 1, 0, &fd, NULL, &e), RF_OK);
    char *users = pack(R, 0), *tags = pack(R, 1);
    /* price read through a strided view: every other double of an interleaved array */
    double *inter = malloc(2 * N * sizeof *inter);
    for (int i = 0; i < N; i++) inter[2 * i] = R->price[i], inter[2 * i + 1] = -1;
    rf_column cols[] = {{"user", RF_COL_TEXT, users, 0},       {"item", RF_COL_INT64, R->item, 0},
                        {"tags", RF_COL_TEXT, tags, 0},        {"price", RF_COL_FLOAT64, inter, 16},
                        {"age", RF_COL_FLOAT64, R->age, 0},    {"click", RF_COL_FLOAT32, R->click, 0},
                        {"order", RF_COL_FLOAT32, R->order, 0}};
    assert_int_equal(rf_frame_dataset(lm, cols, 7, N, 1, &md, &e), RF_OK);
    assert_int_equal(rf_dataset_rows(md), N);
    int K = rf_model_ntasks(lm);
    float *P1 = malloc(N * K * sizeof *P1), *P2 = malloc(N * K * sizeof *P2);
    assert_int_equal(rf_model_predict_all(lm, fd, 1, RF_PREC_FP32, P1, NULL, NULL, NULL, &e), RF_OK);
    assert_int_equal(rf_model_predict_all(lm, md, 1, RF_PREC_FP32, P2, NULL, NULL, NULL, &e), RF_OK);
    assert_memory_equal(P1, P2, N * K * sizeof *P1);
    rf_eval_result a, b;
    assert_int_equal(rf_evaluate(rf_model_of(lm), fd, 1, &a, &e), RF_OK);
    assert_int_equal(rf_evaluate(rf_model_of(lm), md, 1, &b, &e), RF_OK);
    assert_true(a.task[0].auc == b.task[0].auc && a.loss == b.loss && a.n == N);

    /* errors: a bad number names the row and the column; unknown columns; missing labels */
    rf_dataset *bad = NULL;
    char nums[] = "1.5\0zz\0";
    rf_column c1[] = {{"age", RF_COL_TEXT, nums, 0}};
    assert_int_equal(rf_frame_dataset(lm, c1, 1, 2, 0, &bad, &e), RF_EDATA);
    assert_non_null(strstr(e.msg, "row 1")), assert_non_null(strstr(e.msg, "'zz'"));
    assert_non_null(strstr(e.msg, "'age'"));
    rf_column c2[] = {{"nope", RF_COL_INT64, R->item, 0}};
    assert_int_equal(rf_frame_dataset(lm, c2, 1, 2, 0, &bad, &e), RF_EUSAGE);
    assert_non_null(strstr(e.msg, "nope"));
    assert_int_equal(rf_frame_dataset(lm, cols, 5, N, 1, &bad, &e), RF_EUSAGE);
    assert_non_null(strstr(e.msg, "click"));
    double huge[1] = {1e300};
    rf_column c3[] = {{"age", RF_COL_FLOAT64, huge, 0}};
    assert_int_equal(rf_frame_dataset(lm, c3, 1, 1, 0, &bad, &e), RF_EDATA);
    assert_null(bad);

    assert_true(rf_abi_sizeof("rf_eval_result") == sizeof(rf_eval_result) && rf_abi_sizeof("x") == 0);
    free(P1);
    free(P2);
    free(inter);
    free(users);
    free(tags);
    free(R);
    rf_dataset_free(fd);
    rf_dataset_free(md);
    rf_model_close(lm);
    rf_config_free(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_frame_equals_file)};
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
