/* test_checkpoint.c - rf_train_ex's step hook, cancel callback and resume, and checkpoint files
 * (issue #17): a run cancelled at a step, saved to a checkpoint, loaded and resumed ends with the
 * same parameters, bit for bit, as a run never stopped (across epochs, with validation and
 * early-stopping bookkeeping); damaged checkpoints are refused. */
#include <omp.h>

#include "test_util.h"

#include "resflow/checkpoint.h"
#include "resflow/config.h"

static rf_dataset *sim(size_t rows, uint64_t seed) { return test_sim(rows, seed, 300, 500, 100, 0.1f); }

typedef struct {
    long cancel_at;   /* cancel at this step (0: never) */
    long calls, last; /* step hook calls, step of the last call */
    const char *path; /* checkpoint written at the cancelled call */
} probe;

static int cancel_at(void *ud)
{
    const probe *p = ud;
    return p->cancel_at > 0 && p->calls + 1 >= p->cancel_at;
}

static rf_status on_step(void *ud, const rf_train_state *s, rf_error *err)
{
    probe *p = ud;
    p->calls++;
    p->last = s->pos.steps;
    if (s->cancelled) return rf_checkpoint_save(p->path, "model: {emb_dim: 4}\n", 2, s, err);
    return RF_OK;
}

static rf_model *make_model(const rf_config *cfg, const rf_dataset *ds)
{
    rf_model *m = NULL;
    rf_error e;
    assert_int_equal(rf_config_create_model(cfg, ds->F, ds->fields, ds->D, &m, &e), RF_OK);
    return m;
}

static int same_params(const rf_model *a, const rf_model *b)
{
    const rf_model_info *i = rf_model_info_of(a);
    return !memcmp(rf_model_params(a), rf_model_params(b), i->n_params * sizeof(float)) &&
           !memcmp(rf_model_buffers(a), rf_model_buffers(b), i->n_buffers * sizeof(float)) &&
           !memcmp(rf_model_emb(a), rf_model_emb(b), i->n_emb_rows * (size_t)i->E * sizeof(float));
}

static void test_resume_exact(void **state)
{
    (void)state;
    omp_set_num_threads(2);
    rf_dataset *tr = sim(3000, 5), *va = sim(600, 6);
    rf_config cfg;
    rf_config_default(&cfg);
    cfg.model.emb_dim = 4;
    cfg.model.n_hidden = 1;
    cfg.model.hidden[0] = 8;
    cfg.model.bn = RF_BN_BATCH;
    cfg.train.batch_size = 128;
    cfg.train.epochs = 3;
    cfg.train.eval_every = 7;
    cfg.train.patience = 100;
    cfg.train.threads = 2;
    char dir[] = "/tmp/rf-ckpt-XXXXXX", path[300];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/c.ckpt", dir);
    rf_error e;
    rf_train_summary s_full, s_a, s_b;
    rf_model *full = make_model(&cfg, tr);
    probe pf = {0, 0, 0, path};
    rf_train_ctl cf = {on_step, &pf, cancel_at, &pf, NULL, NULL};
    assert_int_equal(rf_train_ex(full, &cfg.train, NULL, &cf, tr, va, &s_full, &e), RF_OK);
    assert_int_equal(s_full.cancelled, 0);
    assert_int_equal(pf.calls, s_full.steps); /* every step boundary */
    const long stops[] = {1, 24, 30, 41}; /* inside epoch 1, its last batch, epoch 2, after evaluations */
    for (int i = 0; i < 4; i++) {
        rf_model *a = make_model(&cfg, tr);
        probe pa = {stops[i], 0, 0, path};
        rf_train_ctl ca = {on_step, &pa, cancel_at, &pa, NULL, NULL};
        assert_int_equal(rf_train_ex(a, &cfg.train, NULL, &ca, tr, va, &s_a, &e), RF_OK);
        assert_int_equal(s_a.cancelled, 1);
        assert_int_equal(s_a.steps, stops[i]);
        rf_checkpoint ck;
        assert_int_equal(rf_checkpoint_load(path, &ck, &e), RF_OK);
        assert_int_equal(ck.pos.steps, stops[i]);
        assert_int_equal(ck.threads, 2);
        assert_string_equal(ck.config, "model: {emb_dim: 4}\n");
        rf_model *b = make_model(&cfg, tr);
        rf_train_resume rs;
        assert_int_equal(rf_checkpoint_resume(&ck, b, &rs, &e), RF_OK);
        rf_train_ctl cb = {NULL, NULL, NULL, NULL, &rs, NULL};
        assert_int_equal(rf_train_ex(b, &cfg.train, NULL, &cb, tr, va, &s_b, &e), RF_OK);
        assert_int_equal(s_b.steps, s_full.steps);
        assert_int_equal(s_b.best_epoch, s_full.best_epoch);
        assert_true(s_b.best_score == s_full.best_score);
        assert_true(same_params(b, full));
        rf_checkpoint_free(&ck);
        rf_model_free(a);
        rf_model_free(b);
    }
    /* damaged files: refused with the reason; a checkpoint of another model shape too */
    size_t n;
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc(n);
    assert_int_equal(fread(buf, 1, n, f), n);
    fclose(f);
    buf[n / 2] ^= 1;
    f = fopen(path, "wb");
    assert_int_equal(fwrite(buf, 1, n, f), n);
    fclose(f);
    rf_checkpoint ck;
    assert_int_equal(rf_checkpoint_load(path, &ck, &e), RF_EFORMAT);
    assert_non_null(strstr(e.msg, "checksum"));
    f = fopen(path, "wb");
    assert_int_equal(fwrite(buf, 1, 20, f), 20);
    fclose(f);
    assert_int_equal(rf_checkpoint_load(path, &ck, &e), RF_EFORMAT);
    free(buf);
    unlink(path);
    rmdir(dir);
    rf_model_free(full);
    rf_dataset_free(tr);
    rf_dataset_free(va);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_resume_exact)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
