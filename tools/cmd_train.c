/* cmd_train.c - resflow train: train one model from a config and save it. */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <omp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <unistd.h>

#include <cblas.h>

#include "cli.h"
#include "train_ckpt.h"

static int train_run(const opts *op, train_ckpt *x, rf_checkpoint *ck, rf_config *cfgp);
static int train_body(const opts *op, train_ckpt *x, rf_checkpoint *ck, rf_config *cfgp, const char *out);

/* ---- train ------------------------------------------------------------------------------ */

static const char *train_help =
    "usage: resflow train [-c CONFIG.yaml] [--set KEY=VALUE]... [-o MODEL] [options]\n"
    "\n"
    "Train a model from a YAML experiment config (default: the built-in simulator config).\n"
    "Validation metrics are printed every epoch; training early-stops on the validation split\n"
    "(train.monitor, train.patience) and keeps the best model; test metrics are printed at the end.\n"
    "\n"
    "  -c, --config FILE     YAML experiment config (see docs/config.md, configs/)\n"
    "      --set KEY=VALUE   override one key (repeatable; wins over the file), e.g.\n"
    "                        --set model.type=nse --set train.lr=5e-4 --set model.hidden=[256,128]\n"
    "  -o, --out FILE        model file to write (default resflow.model)\n"
    "      --skip-bad-rows   skip malformed input rows and count them (default: stop at the first)\n"
    "      --threads N       threads (default: all cores; same as --set train.threads=N)\n"
    "      --json[=FILE]     also write the final metrics as JSON (to FILE; without FILE stdout\n"
    "                        carries the JSON only and the table goes to stderr)\n"
    "      --checkpoint FILE  where checkpoints go (default MODEL.ckpt); removed when the model is saved\n"
    "      --checkpoint-every N|Ns|Nm|Nh\n"
    "                        write a checkpoint every N steps or every N seconds/minutes/hours\n"
    "      --resume FILE     continue the run of checkpoint FILE (its configuration and thread count;\n"
    "                        -c and --set are refused): same final model, byte for byte, as a run\n"
    "                        that was never stopped, given the same data\n"
    "      --init-model FILE warm start: begin from the parameters of model file FILE (same\n"
    "                        architecture and vocabulary sizes; a fresh optimizer)\n"
    "  -q, --quiet           no progress output\n"
    "  -h, --help            this help\n"
    "\n"
    "SIGINT or SIGTERM stops the training at the end of the current step, writes a checkpoint and\n"
    "the best model so far, and exits 130 (SIGINT) or 143 (SIGTERM); a second signal kills at once.\n"
    "A diverged run (non-finite loss or parameters) exits 4 and never saves a model as if fine.\n";

/* The run's configuration: from -c/--set, or from the checkpoint being resumed. */
static int run_config(const opts *o, train_ckpt *x, rf_checkpoint *ck, rf_config *cfg)
{
    if (!x->resume) return load_config(o, cfg);
    if (o->config || o->n_sets || o->threads || o->skip_bad)
        return usage_error("train", "--resume takes the configuration and thread count from the checkpoint; "
                                    "-c, --set, --threads and --skip-bad-rows cannot be combined with it");
    rf_error e;
    rf_error_clear(&e);
    if (rf_checkpoint_load(x->resume, ck, &e)) return die(&e);
    rf_config_default(cfg);
    if (rf_config_load_string(cfg, ck->config, strlen(ck->config), x->resume, &e) || rf_config_validate(cfg, &e))
        return die(&e);
    rf_schema_from_tasks(cfg);
    note("resuming %s: epoch %d, step %ld", x->resume, ck->pos.epoch + 1, ck->pos.steps);
    return 0;
}

int cmd_train(int argc, char **argv)
{
    opts o;
    train_ckpt x = {0};
    int rc = train_ckpt_opts(&argc, argv, &x);
    if (rc || (rc = parse_opts("train", argc, argv, &o, train_help))) return rc;
    rf_config cfg;
    rf_checkpoint ck = {0};
    if ((rc = run_config(&o, &x, &ck, &cfg))) return rc;
    rc = train_run(&o, &x, &ck, &cfg);
    rf_checkpoint_free(&ck);
    rf_afile_lock_release(x.lock);
    return rc;
}

/* 1 when path does not exist or is a checkpoint (starts with its magic). */
static int ckpt_or_absent(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return errno == ENOENT;
    char m[8];
    int ok = fread(m, 1, 8, f) == 8 && memcmp(m, RF_CKPT_MAGIC, 8) == 0;
    fclose(f);
    return ok;
}

static int train_run(const opts *op, train_ckpt *x, rf_checkpoint *ck, rf_config *cfgp)
{
    opts o = *op;
    rf_config cfg = *cfgp;
    int rc;
    const char *ins[] = {o.config, cfg.data.source, cfg.data.valid, cfg.data.test, x->init_model};
    const char *out = o.out ? o.out : "resflow.model";
    if ((rc = check_output("train", out, ins, 5))) return rc;
    char ckdef[4096];
    if (!x->path) {
        if (x->resume) x->path = x->resume;
        else if (snprintf(ckdef, sizeof ckdef, "%s.ckpt", out) < (int)sizeof ckdef) x->path = ckdef;
        else return usage_error("train", "the output path is too long");
    }
    rf_error e;
    rf_error_clear(&e);
    if (rf_same_file(x->path, out)) return usage_error("train", "the checkpoint %s is the model output", x->path);
    for (int i = 0; i < 5; i++)
        if (ins[i] && ins[i][0] && rf_same_file(x->path, ins[i]))
            return usage_error("train", "the checkpoint %s is also an input of this run (%s)", x->path, ins[i]);
    if (!ckpt_or_absent(x->path))
        return usage_error("train", "%s exists and is not a resflow checkpoint: it would be overwritten", x->path);
    if (rf_afile_lock_take(x->path, &x->lock, &e)) return die(&e);
    note_threads(&cfg);
    char *dump = rf_config_dump(&cfg);
    if (!dump) return die((rf_errorf(&e, RF_ENOMEM, "out of memory"), &e));
    if (!g_quiet) fprintf(stderr, "%s", dump);
    /* what a checkpoint stores: the configuration as resumed, and the thread count it ran with */
    x->config = x->resume ? ck->config : dump;
    x->threads = x->resume ? ck->threads : cfg.train.threads > 0 ? cfg.train.threads : omp_get_max_threads();
    rc = train_body(&o, x, ck, &cfg, out);
    free(dump);
    return rc;
}

static int train_body(const opts *op, train_ckpt *x, rf_checkpoint *ck, rf_config *cfgp, const char *out)
{
    opts o = *op;
    rf_config cfg = *cfgp;
    int rc = 0;
    rf_error e;
    rf_error_clear(&e);
    rf_splits sp;
    if (rf_data_load(&cfg, &sp, log_line, NULL, &e)) return die(&e);
    note("split: train %zu | valid %zu | test %zu rows%s", sp.train->n, sp.valid->n, sp.test->n,
         sp.bad_rows ? " (some bad rows skipped)" : "");
    if (sp.bad_rows) note("skipped %zu bad rows", sp.bad_rows);
    if (rf_regression_resolve(&cfg, sp.train, &e)) { /* thresholds and tasks (regression.h) */
        rf_splits_free(&sp);
        return die(&e);
    }
    rf_model *m = NULL;
    if (rf_config_create_model(&cfg, sp.train->F, sp.train->fields, sp.train->D, &m, &e)) {
        rf_splits_free(&sp);
        return die(&e);
    }
    double emb_mb = rf_model_info_of(m)->n_emb_rows * (double)rf_model_info_of(m)->E * 4 / 1e6;
    double est = dataset_mb(sp.train) + dataset_mb(sp.valid) + dataset_mb(sp.test) + 3 * emb_mb * 2 +
                 4.0 * rf_model_info_of(m)->n_params * 4 / 1e6 +
                 cfg.train.batch_size * 4.0 * (rf_model_info_of(m)->In * 2 + 6.0 * rf_model_info_of(m)->K * rf_model_info_of(m)->H[0]) / 1e6;
    note("model: %s, %d tasks, %zu dense parameters, %zu embedding rows x %d; memory estimate %.0f MB",
         type_name(cfg.model.type), rf_model_info_of(m)->K, rf_model_info_of(m)->n_params, rf_model_info_of(m)->n_emb_rows, rf_model_info_of(m)->E, est);
    rf_train_resume rs;
    if (x->resume && rf_checkpoint_resume(ck, m, &rs, &e)) rc = die(&e);
    if (!rc && x->init_model) rc = train_warm_start(x->init_model, m);
    if (rc) {
        rf_model_free(m);
        rf_splits_free(&sp);
        return rc;
    }
    rf_train_cfg tcfg = cfg.train; /* the thread count of the run (a resumed run: the checkpoint's) */
    tcfg.threads = x->threads;
    train_signals_install();
    rf_train_summary ts;
    rf_train_hooks hk = {log_line, NULL, NULL, NULL, NULL};
    rf_train_ctl ctl = {train_step_hook, x, train_cancel, NULL, x->resume ? &rs : NULL};
    rf_status st = rf_train_ex(m, &tcfg, &hk, &ctl, sp.train, sp.valid, &ts, &e);
    if (!st && ts.cancelled) {
        int sig = train_signal_seen();
        rc = 128 + sig;
        if (rf_model_save(m, &cfg, sp.enc, sp.train->dense_names, sp.train->label_names, out, &e) == RF_OK)
            fprintf(stderr, "resflow: stopped by %s after %ld steps; the best model so far was saved to %s; "
                            "continue with: resflow train --resume %s -o %s\n",
                    sig == SIGINT ? "SIGINT" : "SIGTERM", ts.steps, out, x->path, out);
        else
            die(&e);
        rf_model_free(m);
        rf_splits_free(&sp);
        return rc;
    }
    if (st) {
        die(&e);
        if (st == RF_ENUMERIC) { /* diverged: never saved as the model; the last good one beside it */
            char lg[4096];
            rf_error e2;
            int saved = ts.best_epoch >= 0 && snprintf(lg, sizeof lg, "%s.lastgood", out) < (int)sizeof lg &&
                        rf_model_save(m, &cfg, sp.enc, sp.train->dense_names, sp.train->label_names, lg, &e2) == RF_OK;
            fprintf(stderr, "resflow: %s was not written (the run diverged)", out);
            if (saved) fprintf(stderr, "; the best validated model before it (epoch %d) was saved to %s", ts.best_epoch, lg);
            fputc('\n', stderr);
        }
        rf_model_free(m);
        rf_splits_free(&sp);
        return (int)st;
    }
    note("trained %ld steps in %.1f s (%.0f samples/s)%s; best epoch %d", ts.steps, ts.seconds,
         ts.samples_per_sec, ts.stopped_early ? ", early-stopped" : "", ts.best_epoch);
    rf_eval_result te;
    if (sp.test->n > 0) {
        if (rf_evaluate(m, sp.test, cfg.train.threads, &te, &e)) return die(&e);
        /* --json to stdout: stdout is the JSON only, the table goes to stderr (not with -q) */
        FILE *hout = o.json && !o.json_path ? (g_quiet ? NULL : stderr) : stdout;
        if (hout) {
            fprintf(hout, "test set: %zu rows\n", sp.test->n);
            print_metrics(hout, rf_model_spec_of(m), rf_model_info_of(m)->parent, &te);
        }
    }
    if (rf_model_save(m, &cfg, sp.enc, sp.train->dense_names, sp.train->label_names, out, &e)) {
        rc = die(&e);
    } else {
        note("model saved to %s", out);
        if ((x->written || x->resume) && unlink(x->path) == 0) note("checkpoint %s removed (the run is complete)", x->path);
    }
    if (!rc && o.json && sp.test->n > 0) rc = write_json(metrics_json(rf_model_spec_of(m), rf_model_info_of(m)->parent, &te), o.json_path);
    rf_model_free(m);
    rf_splits_free(&sp);
    return rc;
}

