/* test_checkpoint.c - rf_train_ex's step hook, cancel callback and resume, and checkpoint files
 * (issue #17): a run cancelled at a step, saved to a checkpoint, loaded and resumed ends with the
 * same parameters, bit for bit, as a run never stopped (across epochs, with validation and
 * early-stopping bookkeeping); damaged checkpoints are refused; the data fingerprint tells the
 * data apart and a checkpoint written for other data is refused. */
#include <xxhash.h>
#include <omp.h>

#include "test_util.h"

#include "resflow/checkpoint.h"
#include "resflow/config.h"

static rf_dataset *sim(size_t rows, uint64_t seed) { return test_sim(rows, seed, 300, 500, 100, 0.1f); }

typedef struct {
    long cancel_at;   /* cancel at this step (0: never) */
    long calls, last; /* step hook calls, step of the last call */
    const char *path; /* checkpoint written at the cancelled call */
    uint64_t data_hash; /* the fingerprint it records */
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
    if (s->cancelled) return rf_checkpoint_save(p->path, "model: {emb_dim: 4}\n", 2, p->data_hash, s, err);
    return RF_OK;
}

static rf_model *make_model(const rf_config *cfg, const rf_dataset *ds)
{
    rf_model *m = NULL;
    rf_error e;
    assert_int_equal(rf_config_create_model(cfg, ds->F, ds->fields, ds->D, &m, &e), RF_OK);
    return m;
}

/* A small model trained with 2 threads, batches of 128, for epochs epochs. */
static void small_config(rf_config *cfg, int epochs)
{
    rf_config_default(cfg);
    cfg->model.emb_dim = 4;
    cfg->model.n_hidden = 1;
    cfg->model.hidden[0] = 8;
    cfg->train.batch_size = 128;
    cfg->train.epochs = epochs;
    cfg->train.threads = 2;
}

/* A temporary directory (dir: a mkdtemp template) and path = dir/c.ckpt in it. */
static void tmp_ckpt(char *dir, char *path, size_t n)
{
    assert_non_null(mkdtemp(dir));
    snprintf(path, n, "%s/c.ckpt", dir);
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
    small_config(&cfg, 3);
    cfg.model.bn = RF_BN_BATCH;
    cfg.train.eval_every = 7;
    cfg.train.patience = 100;
    char dir[] = "/tmp/rf-ckpt-XXXXXX", path[300];
    tmp_ckpt(dir, path, sizeof path);
    rf_error e;
    rf_train_summary s_full, s_a, s_b;
    rf_model *full = make_model(&cfg, tr);
    probe pf = {0, 0, 0, path, 0};
    rf_train_ctl cf = {on_step, &pf, cancel_at, &pf, NULL, NULL};
    assert_int_equal(rf_train_ex(full, &cfg.train, NULL, &cf, tr, va, &s_full, &e), RF_OK);
    assert_int_equal(s_full.cancelled, 0);
    assert_int_equal(pf.calls, s_full.steps); /* every step boundary */
    const long stops[] = {1, 24, 30, 41}; /* inside epoch 1, its last batch, epoch 2, after evaluations */
    for (int i = 0; i < 4; i++) {
        rf_model *a = make_model(&cfg, tr);
        probe pa = {stops[i], 0, 0, path, 0};
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

static void put64le(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}

/* The fingerprint changes with any value training reads and only then; a checkpoint records it
 * and refuses other data; a version 1 checkpoint (none recorded) is still read. */
static void test_data_fingerprint(void **state)
{
    (void)state;
    omp_set_num_threads(2);
    rf_dataset *tr = sim(2000, 5), *va = sim(400, 6), *tr2 = sim(2000, 5);
    uint64_t h = rf_checkpoint_data_hash(tr, va, NULL);
    assert_true(h == rf_checkpoint_data_hash(tr, va, NULL));
    assert_true(h == rf_checkpoint_data_hash(tr2, va, NULL)); /* the same data made again */
    assert_true(h != rf_checkpoint_data_hash(va, tr, NULL));
    assert_true(h != rf_checkpoint_data_hash(tr, va, va));
    rf_dataset *cp = rf_dataset_range(tr, 0, tr->n); /* a copy: equal */
    assert_true(h == rf_checkpoint_data_hash(cp, va, NULL));
    rf_dataset *part = rf_dataset_range(tr, 0, tr->n - 1); /* one row fewer */
    assert_true(h != rf_checkpoint_data_hash(part, va, NULL));
    tr2->labels[tr2->n * (size_t)tr2->K - 1] = 1.0f - tr2->labels[tr2->n * (size_t)tr2->K - 1]; /* one label */
    assert_true(h != rf_checkpoint_data_hash(tr2, va, NULL));
    tr2->labels[tr2->n * (size_t)tr2->K - 1] = 1.0f - tr2->labels[tr2->n * (size_t)tr2->K - 1];
    assert_true(h == rf_checkpoint_data_hash(tr2, va, NULL));
    tr2->cat[7] ^= 1; /* one categorical id */
    assert_true(h != rf_checkpoint_data_hash(tr2, va, NULL));
    tr2->cat[7] ^= 1;
    if (tr2->D) {
        tr2->dense[3] += 1.0f; /* one dense value */
        assert_true(h != rf_checkpoint_data_hash(tr2, va, NULL));
        tr2->dense[3] -= 1.0f;
    }
    tr2->fields[0].vocab++; /* a vocabulary size alone */
    assert_true(h != rf_checkpoint_data_hash(tr2, va, NULL));
    tr2->fields[0].vocab--;
    assert_true(h == rf_checkpoint_data_hash(tr2, va, NULL));

    /* recorded in a checkpoint, checked against the data of a resume */
    rf_config cfg;
    small_config(&cfg, 1);
    char dir[] = "/tmp/rf-ckfp-XXXXXX", path[300];
    tmp_ckpt(dir, path, sizeof path);
    rf_model *a = make_model(&cfg, tr);
    probe pa = {3, 0, 0, path, h};
    rf_train_ctl ca = {on_step, &pa, cancel_at, &pa, NULL, NULL};
    rf_train_summary sa;
    rf_error e;
    assert_int_equal(rf_train_ex(a, &cfg.train, NULL, &ca, tr, va, &sa, &e), RF_OK);
    rf_checkpoint ck;
    assert_int_equal(rf_checkpoint_load(path, &ck, &e), RF_OK);
    assert_int_equal(ck.has_data_hash, 1);
    assert_true(ck.data_hash == h);
    assert_int_equal(rf_checkpoint_check_data(&ck, h, &e), RF_OK);
    assert_int_equal(rf_checkpoint_check_data(&ck, rf_checkpoint_data_hash(part, va, NULL), &e), RF_EDATA);
    assert_non_null(strstr(e.msg, "written for other training data"));
    size_t cl = strlen(ck.config);
    rf_checkpoint_free(&ck);

    /* the same checkpoint in format version 1 (no fingerprint): read, not checked */
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    size_t n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc(n);
    assert_int_equal(fread(buf, 1, n, f), n);
    fclose(f);
    size_t at = 8 + 4 + 4 + 8 + cl + 4; /* the fingerprint, after the thread count */
    memmove(buf + at, buf + at + 8, n - at - 8);
    n -= 8;
    buf[8] = 1;
    put64le(buf + n - 8, XXH64(buf, n - 8, 0));
    f = fopen(path, "wb");
    assert_int_equal(fwrite(buf, 1, n, f), n);
    fclose(f);
    assert_int_equal(rf_checkpoint_load(path, &ck, &e), RF_OK);
    assert_int_equal(ck.has_data_hash, 0);
    assert_int_equal(ck.pos.steps, 3);
    assert_int_equal(rf_checkpoint_check_data(&ck, 42, &e), RF_OK);
    rf_checkpoint_free(&ck);
    free(buf);
    unlink(path);
    rmdir(dir);
    rf_model_free(a);
    rf_dataset_free(cp);
    rf_dataset_free(part);
    rf_dataset_free(tr);
    rf_dataset_free(tr2);
    rf_dataset_free(va);
}

/* train.checkpoint_every's schedule text: steps, seconds/minutes/hours, none; the rest refused
 * with the outputs left alone, and the config validation uses the same parser. */
static void test_checkpoint_every(void **state)
{
    (void)state;
    rf_error e;
    long st;
    double sec;
    static const struct { const char *text; long steps; double sec; } ok[] = {
        {"", 0, 0}, {"500", 500, 0}, {"1", 1, 0}, {"30s", 0, 30}, {"10m", 0, 600}, {"2.5h", 0, 9000}, {"0.5s", 0, 0.5}};
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        st = -7, sec = -7;
        assert_int_equal(rf_checkpoint_every(ok[i].text, &st, &sec, &e), RF_OK);
        assert_int_equal(st, ok[i].steps);
        assert_true(sec == ok[i].sec);
    }
    static const char *const bad[] = {"0", "-3", "2.5", "5x", "10ms", "s", "inf", "nan", " 5", "5 ", "0s", "1e13"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        st = -7, sec = -7;
        rf_error_clear(&e);
        assert_int_equal(rf_checkpoint_every(bad[i], &st, &sec, &e), RF_EUSAGE);
        assert_true(st == -7 && sec == -7);
        assert_non_null(strstr(e.msg, "train.checkpoint_every"));
    }
    rf_config cfg;
    rf_config_default(&cfg);
    assert_int_equal(rf_config_set(&cfg, "train.checkpoint_every=10m", &e), RF_OK);
    assert_int_equal(rf_config_validate(&cfg, &e), RF_OK);
    assert_int_equal(rf_config_set(&cfg, "train.checkpoint_every=10x", &e), RF_OK); /* validation says */
    assert_int_equal(rf_config_validate(&cfg, &e), RF_EUSAGE);
    assert_non_null(strstr(e.msg, "\"10x\""));
    snprintf(cfg.train.checkpoint_every, sizeof cfg.train.checkpoint_every, "-1"); /* filled by code */
    assert_int_equal(rf_config_validate(&cfg, &e), RF_EUSAGE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_resume_exact), cmocka_unit_test(test_data_fingerprint),
                                       cmocka_unit_test(test_checkpoint_every)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
