/* train_and_score.c - resflow as a library, through its installed headers only.
 *
 * The built-in simulator (20,000 rows of a search log: click -> order), a small ResFlow model
 * built from its specification and trained for one epoch with a gradient hook that watches
 * every step (the seam where a caller clips or all-reduces gradients), test-set scores and AUC,
 * then the model saved, loaded again and checked to score the test rows identically. Exits 0
 * when all of that works, 1 otherwise.
 *
 *   make -C examples            (uses pkg-config --cflags --libs resflow)
 *   examples/train_and_score [MODEL_PATH]     (default: train_and_score.model)
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <resflow/config.h>
#include <resflow/model.h>
#include <resflow/modelfile.h>
#include <resflow/pipeline.h>
#include <resflow/optim.h>
#include <resflow/resflow.h>
#include <resflow/train.h>

/* The gradient hook: sees each step's gradients (dense slab + sparse embedding rows) before the
 * optimizer. Here it only records the largest dense gradient norm. */
typedef struct {
    long steps;
    double max_norm;
} watch;

static rf_status watch_grads(void *ud, const rf_model *m, rf_grads *g, rf_error *err)
{
    (void)m;
    (void)err;
    watch *w = ud;
    size_t n;
    const float *d = rf_grads_dense(g, &n);
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)d[i] * d[i];
    w->steps++;
    if (sqrt(s) > w->max_norm) w->max_norm = sqrt(s);
    return RF_OK;
}

static int failed(const char *what, const rf_error *e)
{
    char buf[2048];
    fprintf(stderr, "train_and_score: %s: %s\n", what, e ? rf_error_format(e, buf, sizeof buf) : "check failed");
    return 1;
}

/* Train, score, save, reload, rescore; 0 on success. */
static int run(const char *path)
{
    rf_error e;
    rf_error_clear(&e);

    /* the defaults (simulator, 2 tasks ctr -> ctcvr, ResFlow), made small */
    rf_config cfg;
    rf_config_default(&cfg);
    cfg.data.synth.rows = 20000;
    /* the older search preset and its 70/10/20 split: 27 steps on it learn something; the ecom
     * default (docs/simulator.md) needs more data than a quick example */
    cfg.data.synth.preset = RF_SYNTH_SEARCH;
    cfg.data.synth.ctr = 0.05f;
    cfg.data.test_frac = 0.2f;
    cfg.train.epochs = 1;
    cfg.train.batch_size = 512;
    cfg.train.threads = 1;
    cfg.model.n_hidden = 2;
    cfg.model.hidden[0] = 32;
    cfg.model.hidden[1] = 16;
    if (rf_config_validate(&cfg, &e)) return failed("config", &e);

    rf_splits sp;
    if (rf_data_load(&cfg, &sp, NULL, NULL, &e)) return failed("data", &e);
    int rc = 1;
    rf_model *m = NULL;
    rf_loaded_model lm;
    memset(&lm, 0, sizeof lm);
    size_t n = sp.test->n, K = (size_t)cfg.K;
    float *p1 = malloc(n * K * sizeof *p1), *p2 = malloc(n * K * sizeof *p2);
    if (!p1 || !p2) {
        failed("out of memory", NULL);
        goto out;
    }
    /* the model from its specification: architecture, tasks and the data's input schema */
    rf_model_spec spec;
    rf_config_model_spec(&cfg, sp.train->F, sp.train->fields, sp.train->D, &spec);
    if (rf_model_create(&spec, &m, &e)) {
        failed("model", &e);
        goto out;
    }
    const rf_model_info *info = rf_model_info_of(m);
    printf("model: %d tasks, %zu dense parameters, %zu embedding rows x %d\n", info->K, info->n_params,
           info->n_emb_rows, info->E);
    watch w = {0, 0};
    rf_train_hooks hooks = {NULL, NULL, watch_grads, &w, NULL}; /* no log, the hook, Adam */
    rf_train_summary ts;
    if (rf_train(m, &cfg.train, &hooks, sp.train, sp.valid, &ts, &e)) {
        failed("train", &e);
        goto out;
    }
    printf("trained %ld steps; the hook saw %ld, largest gradient norm %.3g\n", ts.steps, w.steps, w.max_norm);
    if (w.steps != ts.steps || !(w.max_norm > 0)) {
        fprintf(stderr, "train_and_score: the gradient hook did not see every step\n");
        goto out;
    }
    if (rf_predict(m, sp.test, 1, p1, NULL, &e)) {
        failed("predict", &e);
        goto out;
    }
    rf_eval_result ev;
    if (rf_evaluate(m, sp.test, 1, &ev, &e)) {
        failed("evaluate", &e);
        goto out;
    }
    for (int k = 0; k < cfg.K; k++) printf("%-8s test AUC %.4f  (%zu rows)\n", cfg.tasks[k].name, ev.task[k].auc, n);
    if (!isfinite(ev.task[0].auc) || ev.task[0].auc <= 0.5) {
        fprintf(stderr, "train_and_score: %s AUC %g is not > 0.5\n", cfg.tasks[0].name, ev.task[0].auc);
        goto out;
    }

    /* save, load, and score the same rows again: bit for bit the same */
    if (rf_model_save(m, &cfg, sp.enc, sp.train->dense_names, sp.train->label_names, path, &e)) {
        failed("save", &e);
        goto out;
    }
    if (rf_model_load(path, &lm, &e)) {
        failed("load", &e);
        goto out;
    }
    if (rf_predict(lm.model, sp.test, 1, p2, NULL, &e)) {
        failed("predict (reloaded)", &e);
        goto out;
    }
    if (memcmp(p1, p2, n * K * sizeof *p1) != 0) {
        fprintf(stderr, "train_and_score: the reloaded model scores differently\n");
        goto out;
    }
    printf("saved %s, reloaded: identical scores\n", path);
    rc = 0;
out:
    rf_loaded_model_free(&lm);
    rf_model_free(m);
    rf_splits_free(&sp);
    free(p1);
    free(p2);
    return rc;
}

int main(int argc, char **argv)
{
    printf("resflow %s\n", rf_version());
    return run(argc > 1 ? argv[1] : "train_and_score.model");
}
