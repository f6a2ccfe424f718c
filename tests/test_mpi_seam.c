/* test_mpi_seam.c - the data-parallel seam (dist.h) in one process, in either build (the MPI
 * build's two-process runs are tests/cli/mpi.sh):
 * - training through rf_dist's hooks (rf_train_parallel: the batch filter, the gradient hook,
 *   the evaluation over processes) gives the parameters of plain rf_train bit for bit, and the
 *   same validation result, also with BatchNorm (synchronised through the seam's sum: a tower
 *   model with model.bn: batch and mmoe with BatchNorm);
 * - rf_dist_evaluate gives rf_evaluate's metrics; rf_evaluate_probs of rf_predict's scores too;
 * - rf_grads_emb_add merges rows as the exchange needs (new rows appended, known rows summed in
 *   order, a row outside the tables refused);
 * - a step on no rows (a process without rows in a batch) still counts as an optimizer step
 *   and, with a zero gradient and no weight decay, leaves the parameters where they were;
 * - agreement and the same-bytes check in one process. */
#include "test_util.h"

#include "resflow/config.h"
#include "resflow/dist.h"
#include "resflow/optim.h"

static rf_dataset *sim(size_t rows, uint64_t seed) { return test_sim(rows, seed, 500, 1000, 200, 0.2f); }

static rf_model *model_for(const rf_dataset *ds, rf_config *cfg, rf_model_type type, rf_bn bn)
{
    rf_config_default(cfg);
    cfg->model.type = type;
    cfg->model.bn = bn;
    cfg->model.emb_dim = 8;
    cfg->model.n_hidden = 2;
    cfg->model.hidden[0] = 32;
    cfg->model.hidden[1] = 16;
    cfg->train.batch_size = 100;
    cfg->train.epochs = 2;
    cfg->train.threads = 2;
    cfg->train.log_every = 7;
    rf_model *m = NULL;
    rf_error e;
    assert_int_equal(rf_config_create_model(cfg, ds->F, ds->fields, ds->D, &m, &e), RF_OK);
    return m;
}

static int same_model(const rf_model *a, const rf_model *b)
{
    const rf_model_info *i = rf_model_info_of(a);
    return !memcmp(rf_model_params(a), rf_model_params(b), i->n_params * sizeof(float)) &&
           !memcmp(rf_model_buffers(a), rf_model_buffers(b), i->n_buffers * sizeof(float)) &&
           !memcmp(rf_model_emb(a), rf_model_emb(b), i->n_emb_rows * (size_t)i->E * sizeof(float));
}

/* One communicator for the whole program (the MPI build cannot start MPI twice). */
static int setup(void **state)
{
    rf_comm *c = NULL;
    rf_error e;
    if (rf_comm_create(&c, &e) != RF_OK) return -1;
    *state = c;
    return 0;
}

static int teardown(void **state)
{
    rf_comm_free(*state);
    return 0;
}

static void one_process_is_rf_train(rf_comm *c, rf_model_type type, rf_bn bn)
{
    rf_dataset *tr = sim(3000, 3), *va = sim(800, 4);
    rf_config cfg;
    rf_model *a = model_for(tr, &cfg, type, bn), *b = model_for(tr, &cfg, type, bn);
    assert_true(same_model(a, b));
    rf_error e;
    rf_train_summary sa, sb;
    assert_int_equal(rf_train(a, &cfg.train, NULL, tr, va, &sa, &e), RF_OK);
    assert_int_equal(rf_comm_size(c), 1);
    assert_int_equal(rf_dist_check_model(c, b, &e), RF_OK);
    rf_dist *d = rf_dist_create(c, b, tr->n, 2);
    assert_non_null(d);
    rf_train_hooks h = {0};
    rf_dist_hooks(d, &h);
    assert_non_null(h.grad_hook);
    assert_int_equal(rf_train_parallel(b, &cfg.train, &h, rf_dist_train_dist(d), tr, va, &sb, &e), RF_OK);
    assert_true(same_model(a, b));
    assert_int_equal(sa.steps, sb.steps);
    assert_true(sa.best_score == sb.best_score);
    long steps = 0;
    rf_dist_stats(d, NULL, &steps);
    assert_int_equal(steps, sb.steps); /* every step went through the exchange */
    assert_int_equal(rf_dist_check_params(d, b, &e), RF_OK);

    /* evaluation over the processes, and from given scores, is rf_evaluate's */
    rf_eval_result r1, r2, r3;
    assert_int_equal(rf_evaluate(b, va, 2, &r1, &e), RF_OK);
    assert_int_equal(rf_dist_evaluate(d, b, va, &r2, &e), RF_OK);
    int K = rf_model_info_of(b)->K;
    float *P = malloc(va->n * K * sizeof *P), *C = malloc(va->n * K * sizeof *C);
    assert_int_equal(rf_predict(b, va, 2, P, C, &e), RF_OK);
    assert_int_equal(rf_evaluate_probs(b, va, P, C, &r3, &e), RF_OK);
    for (int k = 0; k < K; k++) {
        assert_true(r1.task[k].auc == r2.task[k].auc && r1.task[k].auc == r3.task[k].auc);
        if (bn == RF_BN_NONE) assert_true(r1.task[k].auc > 0.5); /* BatchNorm learns slower here */
    }
    assert_true(r1.loss == r2.loss && r1.loss == r3.loss);
    free(P);
    free(C);
    rf_dist_free(d);
    rf_model_free(a);
    rf_model_free(b);
    rf_dataset_free(tr);
    rf_dataset_free(va);
}

static void test_one_process_is_rf_train(void **state) { one_process_is_rf_train(*state, RF_MODEL_RESFLOW, RF_BN_NONE); }

/* BatchNorm through the seam: its statistics go through the (one-process) sum, bit for bit */
static void test_one_process_bn(void **state)
{
    one_process_is_rf_train(*state, RF_MODEL_RESFLOW, RF_BN_BATCH);
    one_process_is_rf_train(*state, RF_MODEL_MMOE, RF_BN_BATCH);
}

static void test_emb_add(void **state)
{
    (void)state;
    rf_dataset *ds = sim(200, 5);
    rf_config cfg;
    rf_model *m = model_for(ds, &cfg, RF_MODEL_RESFLOW, RF_BN_NONE);
    rf_grads *g = rf_grads_create(m);
    int E = rf_model_info_of(m)->E;
    float v[3 * 64];
    for (int i = 0; i < 3 * E; i++) v[i] = (float)(i + 1);
    uint32_t r1[2] = {3, 5}, r2[2] = {5, 7};
    rf_error e;
    assert_int_equal(rf_grads_emb_add(g, r1, v, 2, &e), RF_OK);
    assert_int_equal(rf_grads_emb_add(g, r2, v + E, 2, &e), RF_OK);
    const uint32_t *rows;
    float *vals;
    assert_int_equal(rf_grads_emb(g, &rows, &vals), 3);
    assert_int_equal(rows[0], 3);
    assert_int_equal(rows[1], 5);
    assert_int_equal(rows[2], 7);
    for (int j = 0; j < E; j++) {
        assert_true(vals[j] == v[j]);
        assert_true(vals[E + j] == v[E + j] + v[E + j]); /* row 5 from both lists */
        assert_true(vals[2 * E + j] == v[2 * E + j]);
    }
    uint32_t bad = (uint32_t)rf_model_info_of(m)->n_emb_rows;
    assert_int_equal(rf_grads_emb_add(g, &bad, v, 1, &e), RF_EUSAGE);
    rf_grads_emb_clear(g);
    assert_int_equal(rf_grads_emb(g, &rows, &vals), 0);
    /* a step on no rows: an optimizer step with a zero gradient */
    rf_optimizer *o = rf_adam_create(m, &cfg.train);
    rf_workspace *ws = rf_workspace_create(m, 8);
    size_t n_params = rf_model_info_of(m)->n_params;
    float *before = malloc(n_params * sizeof *before);
    memcpy(before, rf_model_params(m), n_params * sizeof *before);
    rf_batch b = {ds, NULL, 0, NULL};
    double loss = -1;
    assert_int_equal(rf_train_step(m, ws, g, o, &b, NULL, NULL, &loss, &e), RF_OK);
    assert_true(loss == 0);
    assert_int_equal(rf_optimizer_steps(o), 1);
    assert_memory_equal(before, rf_model_params(m), n_params * sizeof *before);
    free(before);
    rf_workspace_free(ws);
    rf_optimizer_free(o);
    rf_grads_free(g);
    rf_model_free(m);
    rf_dataset_free(ds);
}

static void test_agree_one_process(void **state)
{
    rf_comm *c = *state;
    rf_error e;
    assert_int_equal(rf_comm_agree(c, RF_OK, &e), RF_OK);
    rf_errorf(&e, RF_EDATA, "bad row");
    assert_int_equal(rf_comm_agree(c, RF_EDATA, &e), RF_EDATA);
    assert_string_equal(e.msg, "bad row");
    assert_int_equal(rf_comm_check_same(c, "abc", 3, "configuration", &e), RF_OK);
    double v[2] = {1.5, 2};
    assert_int_equal(rf_comm_sum_f64(c, v, 2, &e), RF_OK);
    assert_true(v[0] == 1.5 && v[1] == 2);
    assert_int_equal(rf_comm_barrier(c, &e), RF_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_process_is_rf_train),
        cmocka_unit_test(test_one_process_bn),
        cmocka_unit_test(test_emb_add),
        cmocka_unit_test(test_agree_one_process),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
