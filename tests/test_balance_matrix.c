/* test_balance_matrix.c - every train.balance method trains every model type from a
 * configuration (issue #14: "usable with every model type and any number of tasks, never
 * producing NaN"), as `resflow train` does: a YAML configuration with --set overrides, the
 * simulator's data through the pipeline (rf_data_load), the model from the configuration
 * (rf_config_create_model), rf_train with the balancer, then the test split evaluated.
 *
 * 7 methods x 14 model types (resflow, nse, esmm, the zoo and twin) x 2 and 3 tasks, tiny widths and
 * 6 steps of batch 32 each. The last task (click -> order, or click -> cart -> order) is rare
 * enough that batches without one of its positives occur: the test checks, on the exact row
 * order rf_train uses (rf_row_order with train.seed), that the steps run include such a batch.
 * Asserted per run: training succeeds (a non-finite loss would be RF_ENUMERIC), the logged
 * task weights (train.log_every) are finite and non-negative, K of them per line, every
 * parameter finite, and on the test split a finite loss and a finite AUC for every task. */
#include "test_balance_util.h"

#include "resflow/balance.h"
#include "resflow/config.h"
#include "resflow/pipeline.h"
#include "resflow/train.h"

#define STEPS 6
#define BATCH 32

/* the log lines of one run: the count of weight lines, and whether every one was sound */
typedef struct {
    int K, lines, bad;
    char first_bad[256];
} weight_log;

static void on_log(void *ud, const char *line)
{
    weight_log *w = ud;
    const char *s = strstr(line, "| weights ");
    if (!s) return;
    w->lines++;
    int n = 0;
    for (s = strstr(s + 10, " | "); s; s = strstr(s + 3, " | ")) {
        char name[64];
        double v;
        if (sscanf(s + 3, "%63s %lf", name, &v) != 2 || !isfinite(v) || v < 0) {
            n = -1000;
            break;
        }
        n++;
    }
    if (n != w->K && !w->bad++) snprintf(w->first_bad, sizeof w->first_bad, "%s", line);
}

static void base_config(rf_config *c, int K)
{
    static const char *yaml2 =
        "data: {source: synth}\n"
        "synth: {preset: search, tasks: 2, rows: 2400, users: 300, items: 400, queries: 150, ctr: 0.15, cvr: 0.12}\n"
        "tasks:\n"
        "  - {name: ctr, label: click}\n"
        "  - {name: ctcvr, label: order, parent: ctr}\n";
    static const char *yaml3 =
        "data: {source: synth}\n"
        "synth: {preset: search, tasks: 3, rows: 2400, users: 300, items: 400, queries: 150, ctr: 0.15,\n"
        "        cart_rate: 0.3, cvr: 0.12}\n"
        "tasks:\n"
        "  - {name: ctr, label: click}\n"
        "  - {name: ctcart, label: cart, parent: ctr}\n"
        "  - {name: ctcvr, label: order, parent: ctcart}\n";
    static const char *sets[] = {"data.valid_frac=0.1", "data.test_frac=0.3", "model.hidden=[8]",
                                 "model.emb_dim=4", "train.batch_size=32", "train.epochs=1",
                                 "train.max_steps=6", "train.log_every=3", "train.threads=1",
                                 "train.balance_interval=2", "train.lr=0.01"};
    rf_error e;
    rf_config_default(c);
    const char *y = K == 2 ? yaml2 : yaml3;
    assert_int_equal(rf_config_load_string(c, y, strlen(y), "matrix.yaml", &e), RF_OK);
    for (size_t i = 0; i < sizeof sets / sizeof *sets; i++) assert_int_equal(rf_config_set(c, sets[i], &e), RF_OK);
    assert_int_equal(rf_config_validate(c, &e), RF_OK);
    rf_schema_from_tasks(c);
}

/* 1 when one of the first STEPS batches of rf_train's row order has no positive of label col */
static int batch_without_positive(const rf_dataset *tr, uint64_t seed, int col)
{
    rf_row_order *o = rf_row_order_create(tr, seed, BATCH);
    assert_non_null(o);
    rf_row_order_epoch(o, 0);
    int found = 0;
    for (int s = 0; s < STEPS; s++) {
        int nb = 0;
        const size_t *rows = rf_row_order_next(o, &nb);
        int pos = 0;
        for (int i = 0; i < nb; i++) pos += tr->labels[rows[i] * tr->K + col] > 0.5f;
        if (nb > 0 && pos == 0) found = 1;
    }
    rf_row_order_free(o);
    return found;
}

static void run_matrix(int K)
{
    rf_config base;
    base_config(&base, K);
    rf_splits sp;
    rf_error e;
    assert_int_equal(rf_data_load(&base, &sp, NULL, NULL, &e), RF_OK);
    int last = rf_dataset_label_index(sp.train, "order");
    assert_true(last >= 0);
    assert_true(batch_without_positive(sp.train, base.train.seed, last));
    int runs = 0;
    for (int t = 0; t <= RF_MODEL_TWIN; t++)
        for (int meth = RF_BALANCE_PUB; meth < RF_BALANCE_COUNT; meth++) {
            rf_config c = base;
            char set[96];
            snprintf(set, sizeof set, "model.type=%s", rf_model_type_name((rf_model_type)t));
            assert_int_equal(rf_config_set(&c, set, &e), RF_OK);
            if (t == RF_MODEL_TWIN) { /* the item side: the search preset's item columns */
                assert_int_equal(rf_config_set(&c, "model.item_fields=[item_id,item_cat,brand,shop,price_bucket]", &e), RF_OK);
                assert_int_equal(rf_config_set(&c, "model.item_dense=[log_price,item_hist_ctr]", &e), RF_OK);
                assert_int_equal(rf_config_set(&c, "model.twin_dim=4", &e), RF_OK);
            }
            snprintf(set, sizeof set, "train.balance=%s", rf_balance_name(meth));
            assert_int_equal(rf_config_set(&c, set, &e), RF_OK);
            assert_int_equal(rf_config_validate(&c, &e), RF_OK);
            rf_model *m = NULL;
            rf_status st = rf_config_create_model(&c, sp.train->F, sp.train->fields, sp.train->D, &m, &e);
            if (st) fprintf(stderr, "%s, %d tasks: %s\n", set, K, e.msg);
            assert_int_equal(st, RF_OK);
            weight_log wl = {K, 0, 0, ""};
            rf_train_hooks hk = {on_log, &wl, NULL, NULL, NULL};
            rf_train_summary s;
            st = rf_train(m, &c.train, &hk, sp.train, sp.valid, &s, &e);
            if (st) fprintf(stderr, "%s on %s, %d tasks: %s\n", rf_balance_name(meth), rf_model_type_name(t), K, e.msg);
            assert_int_equal(st, RF_OK);
            assert_int_equal(s.steps, STEPS);
            if (wl.bad) fprintf(stderr, "%s on %s: %s\n", rf_balance_name(meth), rf_model_type_name(t), wl.first_bad);
            assert_int_equal(wl.bad, 0);
            assert_int_equal(wl.lines, STEPS / 3);
            assert_true(bal_all_finite(m));
            rf_eval_result ev;
            assert_int_equal(rf_evaluate(m, sp.test, 1, &ev, &e), RF_OK);
            assert_true(isfinite(ev.loss));
            for (int k = 0; k < K; k++) {
                /* the test split has both classes of every task, so an AUC is a number */
                assert_true(ev.task[k].positives > 0 && ev.task[k].positives < ev.task[k].n);
                if (!isfinite(ev.task[k].auc))
                    fprintf(stderr, "%s on %s: task %d AUC %g\n", rf_balance_name(meth), rf_model_type_name(t), k,
                            ev.task[k].auc);
                assert_true(isfinite(ev.task[k].auc));
            }
            rf_model_free(m);
            runs++;
        }
    assert_int_equal(runs, (RF_MODEL_TWIN + 1) * (RF_BALANCE_COUNT - 1));
    rf_splits_free(&sp);
}

static void test_two_tasks(void **state)
{
    (void)state;
    run_matrix(2);
}

static void test_three_tasks(void **state)
{
    (void)state;
    run_matrix(3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_tasks),
        cmocka_unit_test(test_three_tasks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
