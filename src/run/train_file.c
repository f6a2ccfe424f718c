/* train_file.c - rf_train_to_file (handles.h): what `resflow train` does, without printing, for
 * bindings: data, model, training, test evaluation, the model file; with the checkpoints of
 * train.checkpoint_every written to OUT.ckpt (continued by `resflow train --resume OUT.ckpt`). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/logf.h"
#include "core/omp.h"
#include "resflow/checkpoint.h"
#include "resflow/handles.h"
#include "resflow/pipeline.h"
#include "resflow/regression.h"

/* The periodic checkpoints of a run (the step hook's state). */
typedef struct {
    char path[4096];
    const char *config; /* the configuration as given (regression tasks not yet resolved) */
    int threads;
    const rf_dataset *data[3];
    uint64_t data_hash;
    int hashed;
    long every_steps;
    double every_sec, last;
    long written;
} ckpt_run;

static double mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static rf_status ckpt_hook(void *ud, const rf_train_state *s, rf_error *err)
{
    ckpt_run *c = ud;
    int due = (c->every_steps > 0 && s->pos.steps % c->every_steps == 0) ||
              (c->every_sec > 0 && mono() - c->last >= c->every_sec);
    if (!due) return RF_OK;
    if (!c->hashed) { /* at the first checkpoint: a run that writes none pays nothing */
        c->data_hash = rf_checkpoint_data_hash(c->data[0], c->data[1], c->data[2]);
        c->hashed = 1;
    }
    rf_status st = rf_checkpoint_save(c->path, c->config, c->threads, c->data_hash, s, err);
    if (st) return st;
    c->last = mono();
    c->written++;
    return RF_OK;
}

rf_status rf_train_to_file(rf_config *cfg, const char *out_path, rf_log_fn log, void *ud, rf_train_summary *sum,
                           rf_eval_result *test, rf_error *err)
{
    rf_train_summary ts_;
    rf_eval_result te_;
    if (!sum) sum = &ts_;
    if (!test) test = &te_;
    memset(sum, 0, sizeof *sum);
    memset(test, 0, sizeof *test);
    sum->best_epoch = -1;
    if (!out_path || !*out_path) return rf_errorf(err, RF_EUSAGE, "no output model file");
    rf_status st = rf_config_validate(cfg, err);
    if (st) return st;
    ckpt_run ck = {.threads = rf_omp_threads(cfg->train.threads), .last = mono()};
    if ((st = rf_checkpoint_every(cfg->train.checkpoint_every, &ck.every_steps, &ck.every_sec, err))) return st;
    int ckpts = ck.every_steps > 0 || ck.every_sec > 0;
    rf_afile_lock *lock = NULL;
    char *dump = NULL;
    if (ckpts) {
        if (snprintf(ck.path, sizeof ck.path, "%s.ckpt", out_path) >= (int)sizeof ck.path)
            return rf_errorf(err, RF_EUSAGE, "the output path is too long");
        if ((st = rf_checkpoint_claim(ck.path, &lock, err))) return st;
        if (!(dump = rf_config_dump(cfg))) {
            rf_afile_lock_release(lock);
            return rf_errorf(err, RF_ENOMEM, "out of memory");
        }
        ck.config = dump;
    }
    rf_splits sp;
    if ((st = rf_data_load(cfg, &sp, log, ud, err))) goto out;
    logf_(log, ud, "split: train %zu | valid %zu | test %zu rows", sp.train->n, sp.valid->n, sp.test->n);
    if (sp.bad_rows) logf_(log, ud, "skipped %zu bad rows", sp.bad_rows);
    rf_model *m = NULL;
    if ((st = rf_regression_resolve(cfg, sp.train, err)) ||
        (st = rf_config_create_model(cfg, sp.train->F, sp.train->fields, sp.train->D, &m, err))) {
        rf_splits_free(&sp);
        goto out;
    }
    ck.data[0] = sp.train, ck.data[1] = sp.valid, ck.data[2] = sp.test;
    rf_train_cfg tc = cfg->train;
    tc.threads = ck.threads; /* the count the checkpoints record */
    rf_train_ctl ctl = {.step_hook = ckpts ? ckpt_hook : NULL, .step_ud = &ck};
    st = rf_train_ex(m, &tc, &(rf_train_hooks){log, ud, NULL, NULL, NULL}, &ctl, sp.train, sp.valid, sum, err);
    if (st == RF_OK && sp.test->n > 0) st = rf_evaluate(m, sp.test, tc.threads, test, err);
    if (st == RF_OK || (st == RF_ENUMERIC && sum->best_epoch >= 0)) {
        rf_error e2;
        rf_status s2 = rf_model_save(m, cfg, sp.enc, sp.train->dense_names, sp.train->label_names, out_path,
                                     st ? &e2 : err);
        if (s2 == RF_OK) logf_(log, ud, "%s saved to %s", st ? "the last good model" : "model", out_path);
        if (!st) st = s2;
    }
    if (st == RF_OK && ck.written && unlink(ck.path) == 0)
        logf_(log, ud, "checkpoint %s removed (the run is complete)", ck.path);
    rf_model_free(m);
    rf_splits_free(&sp);
out:
    free(dump);
    rf_afile_lock_release(lock);
    return st;
}
