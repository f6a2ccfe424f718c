/* test_train.c - the training step and loop: the fused, overlapped rf_train_step computes the
 * same update as the plain forward/loss/backward/Adam sequence (that sequence is what the
 * PyTorch fixtures check); training learns; a non-finite loss stops training and leaves
 * finite, restored parameters; early stopping keeps the best validated model. */
#include <omp.h>

#include "test_util.h"

#include "nn/model_impl.h"

#include "resflow/config.h"
#include "resflow/optim.h"
#include "resflow/train.h"

static rf_dataset *sim(size_t rows, uint64_t seed) { return test_sim(rows, seed, 2000, 3000, 500, 0.1f); }

/* One simulated world split by position into the first n_train rows and the rest (different
 * seeds are different worlds). */
static void split_sim(size_t rows, size_t n_train, uint64_t seed, rf_dataset **tr, rf_dataset **va)
{
    rf_dataset *all = sim(rows, seed);
    size_t *idx = malloc(all->n * sizeof *idx);
    for (size_t i = 0; i < all->n; i++) idx[i] = i;
    *tr = rf_dataset_slice(all, idx, n_train);
    *va = rf_dataset_slice(all, idx + n_train, rows - n_train);
    free(idx);
    rf_dataset_free(all);
}

static void small_cfg(rf_config *c, rf_model_type t)
{
    rf_config_default(c);
    c->model.type = t;
    c->model.emb_dim = 8;
    c->model.n_hidden = 2;
    c->model.hidden[0] = 48;
    c->model.hidden[1] = 16;
    c->train.batch_size = 256;
    c->train.log_every = 1000000;
}

static void test_step_matches_plain_api(void **state)
{
    (void)state;
    rf_dataset *ds = sim(4096, 3);
    for (int threads = 1; threads <= 2; threads++) {
        omp_set_num_threads(threads);
        for (int t = 0; t < 3; t++) {
            rf_config cfg;
            small_cfg(&cfg, (rf_model_type)t);
            cfg.model.bn = t == 0 ? RF_BN_BATCH : RF_BN_NONE;
            cfg.model.dense_mode = t == 1 ? RF_DENSE_PROJECT : RF_DENSE_CONCAT;
            rf_model *a = NULL, *b = NULL;
            rf_error e;
            assert_int_equal(rf_config_create_model(&cfg, ds->F, ds->fields, ds->D, &a, &e), RF_OK);
            assert_int_equal(rf_config_create_model(&cfg, ds->F, ds->fields, ds->D, &b, &e), RF_OK);
            rf_workspace *wa = rf_workspace_create(a, 256), *wb = rf_workspace_create(b, 256);
            rf_optimizer *oa = rf_adam_create(a, &cfg.train), *ob = rf_adam_create(b, &cfg.train);
            rf_grads *Ga = rf_grads_create(a), *Gb = rf_grads_create(b);
            int lc[2] = {0, 1};
            size_t rows[256];
            for (int s = 0; s < 6; s++) {
                for (int i = 0; i < 256; i++) rows[i] = (size_t)(s * 256 + i * 7) % ds->n;
                rf_batch bt = {ds, rows, 256, lc};
                double la, lb;
                assert_int_equal(rf_train_step(a, wa, Ga, oa, &bt, NULL, NULL, &la, &e), RF_OK);
                assert_int_equal(rf_model_forward(b, wb, &bt, 1, &e), RF_OK);
                lb = rf_model_loss(b, wb, &bt, NULL, NULL);
                rf_model_adopt_buffers(b, wb);
                rf_grads_zero(Gb);
                assert_int_equal(rf_model_backward(b, wb, &bt, Gb, &e), RF_OK);
                rf_optimizer_step(ob, b, Gb);
                rf_grads_emb_clear(Gb);
                assert_float_equal(la, lb, 1e-6 * fabs(lb));
            }
            assert_true(close_enough(a->params, b->params, a->n_params, 1e-6, 1e-4, "params after 6 steps"));
            assert_true(close_enough(a->emb, b->emb, a->emb_off[a->F] * a->E, 1e-6, 1e-4, "emb after 6 steps"));
            rf_optimizer_free(oa);
            rf_optimizer_free(ob);
            rf_grads_free(Ga);
            rf_grads_free(Gb);
            rf_workspace_free(wa);
            rf_workspace_free(wb);
            rf_model_free(a);
            rf_model_free(b);
        }
    }
    rf_dataset_free(ds);
}

static void test_learns_and_keeps_best(void **state)
{
    (void)state;
    rf_dataset *tr, *va;
    split_sim(80000, 60000, 5, &tr, &va);
    rf_config cfg;
    small_cfg(&cfg, RF_MODEL_RESFLOW);
    cfg.train.epochs = 3;
    rf_model *m = NULL;
    rf_error e;
    assert_int_equal(rf_config_create_model(&cfg, tr->F, tr->fields, tr->D, &m, &e), RF_OK);
    rf_eval_result before;
    assert_int_equal(rf_evaluate(m, va, 0, &before, &e), RF_OK);
    rf_train_summary s;
    assert_int_equal(rf_train(m, &cfg.train, NULL, tr, va, &s, &e), RF_OK);
    rf_eval_result after;
    assert_int_equal(rf_evaluate(m, va, 0, &after, &e), RF_OK);
    /* it learned: click AUC clearly above chance and above the untrained model */
    assert_true(after.task[0].auc > 0.62);
    assert_true(after.task[0].auc > before.task[0].auc + 0.05);
    /* the kept model is the best validated one: its score is what the summary reports */
    assert_float_equal(rf_monitor_value(m, cfg.train.monitor, &after), s.best_score, 1e-9);
    assert_true(s.best_epoch >= 1 && s.best_epoch <= 3);
    rf_model_free(m);
    rf_dataset_free(tr);
    rf_dataset_free(va);
}

static void test_nonfinite_loss_stops(void **state)
{
    (void)state;
    rf_dataset *tr = sim(8192, 7);
    rf_config cfg;
    small_cfg(&cfg, RF_MODEL_ESMM);
    cfg.train.lr = 1e30f;
    cfg.train.epochs = 3;
    rf_model *m = NULL;
    rf_error e;
    assert_int_equal(rf_config_create_model(&cfg, tr->F, tr->fields, tr->D, &m, &e), RF_OK);
    float *init = malloc(m->n_params * sizeof(float));
    memcpy(init, m->params, m->n_params * sizeof(float));
    rf_train_summary s;
    assert_int_equal(rf_train(m, &cfg.train, NULL, tr, NULL, &s, &e), RF_ENUMERIC);
    assert_non_null(strstr(e.msg, "non-finite training loss"));
    /* no validation set: the initial parameters are restored, and they are finite */
    assert_memory_equal(init, m->params, m->n_params * sizeof(float));
    for (size_t i = 0; i < m->emb_off[m->F] * m->E; i++) assert_true(isfinite(m->emb[i]));
    free(init);
    rf_model_free(m);
    rf_dataset_free(tr);
}

typedef struct {
    int warnings, nan_warnings;
} log_count;

static void count_log(void *ud, const char *line)
{
    log_count *c = ud;
    if (!strncmp(line, "warning:", 8)) c->warnings++;
    if (strstr(line, "warning: the validation mean_auc is NaN") && strstr(line, "one class") &&
        strstr(line, "falls back to the validation loss"))
        c->nan_warnings++;
}

/* A validation split with one class (every label 0): the AUCs are NaN. Training warns once, early
 * stopping uses the validation loss and the model kept is the best by it (issue #18: it was
 * "best epoch -1" and the last model, silently). */
static void test_nan_monitor_falls_back_to_loss(void **state)
{
    (void)state;
    rf_dataset *tr, *va;
    split_sim(24000, 20000, 9, &tr, &va);
    for (size_t i = 0; i < va->n * (size_t)va->K; i++) va->labels[i] = 0;
    rf_config cfg;
    small_cfg(&cfg, RF_MODEL_RESFLOW);
    cfg.train.epochs = 3;
    cfg.train.patience = 5;
    rf_model *m = NULL;
    rf_error e;
    assert_int_equal(rf_config_create_model(&cfg, tr->F, tr->fields, tr->D, &m, &e), RF_OK);
    log_count lc = {0, 0};
    rf_train_summary s;
    assert_int_equal(rf_train(m, &cfg.train, &(rf_train_hooks){count_log, &lc, NULL, NULL, NULL}, tr, va, &s, &e),
                     RF_OK);
    assert_int_equal(lc.nan_warnings, 1);
    assert_true(s.best_epoch >= 1 && s.best_epoch <= 3);
    rf_eval_result after;
    assert_int_equal(rf_evaluate(m, va, 0, &after, &e), RF_OK);
    assert_true(isnan(after.task[0].auc));
    assert_float_equal(-after.loss, s.best_score, 1e-9); /* the kept model is the best by loss */
    assert_float_equal(s.best_valid.loss, after.loss, 1e-9);
    rf_model_free(m);
    rf_dataset_free(tr);
    rf_dataset_free(va);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_step_matches_plain_api),
        cmocka_unit_test(test_learns_and_keeps_best),
        cmocka_unit_test(test_nonfinite_loss_stops),
        cmocka_unit_test(test_nan_monitor_falls_back_to_loss),
    };
    return cmocka_run_group_tests_name("train", tests, NULL, NULL);
}
