/* train_and_score.c - resflow as a library, through its installed headers only.
 *
 * The built-in simulator (a few thousand rows of a search log: click -> order), a small ResFlow
 * model trained for one epoch, test-set scores and AUC, then the model saved, loaded again and
 * checked to score the test rows identically. Exits 0 when all of that works, 1 otherwise.
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
#include <resflow/resflow.h>
#include <resflow/train.h>

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
    if (rf_model_create(&cfg, sp.train->F, sp.train->fields, sp.train->D, &m, &e)) {
        failed("model", &e);
        goto out;
    }
    rf_train_summary ts;
    if (rf_train(m, sp.train, sp.valid, NULL, NULL, &ts, &e)) {
        failed("train", &e);
        goto out;
    }
    if (rf_predict(m, sp.test, p1, NULL, &e)) {
        failed("predict", &e);
        goto out;
    }
    rf_eval_result ev;
    if (rf_evaluate(m, sp.test, &ev, &e)) {
        failed("evaluate", &e);
        goto out;
    }
    for (int k = 0; k < cfg.K; k++) printf("%-8s test AUC %.4f  (%zu rows)\n", cfg.tasks[k].name, ev.task[k].auc, n);
    if (!isfinite(ev.task[0].auc) || ev.task[0].auc <= 0.5) {
        fprintf(stderr, "train_and_score: %s AUC %g is not > 0.5\n", cfg.tasks[0].name, ev.task[0].auc);
        goto out;
    }

    /* save, load, and score the same rows again: bit for bit the same */
    if (rf_model_save(m, sp.enc, sp.train->dense_names, sp.train->label_names, path, &e)) {
        failed("save", &e);
        goto out;
    }
    if (rf_model_load(path, &lm, &e)) {
        failed("load", &e);
        goto out;
    }
    if (rf_predict(lm.model, sp.test, p2, NULL, &e)) {
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
