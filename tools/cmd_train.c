/* cmd_train.c - resflow train: train one model from a config and save it. */
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <omp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cblas.h>

#include "cli.h"
#include "progress.h"
#include "report_cli.h"

/* ---- train ------------------------------------------------------------------------------ */

static const char *train_help =
    "usage: resflow train [-c CONFIG.yaml] [--set KEY=VALUE]... [-o MODEL] [options]\n"
    "\n"
    "Train a model from a YAML experiment config (default: the built-in simulator config).\n"
    "Validation metrics are printed every epoch; training early-stops on the validation split\n"
    "(train.monitor, train.patience) and keeps the best model; test metrics are printed at the end.\n"
    "On a terminal progress is one line rewritten in place (percent of the epoch, ETA, samples/s,\n"
    "loss); in a pipe or file it is a plain line every train.log_every steps.\n"
    "\n"
    "  -c, --config FILE     YAML experiment config (see docs/config.md, configs/)\n"
    "      --set KEY=VALUE   override one key (repeatable; wins over the file), e.g.\n"
    "                        --set model.type=nse --set train.lr=5e-4 --set model.hidden=[256,128]\n"
    "  -o, --out FILE        model file to write (default resflow.model)\n"
    "      --skip-bad-rows   skip malformed input rows and count them (default: stop at the first)\n"
    "      --threads N       threads (default: all cores; same as --set train.threads=N)\n"
    "      --json[=FILE]     also write the final metrics as JSON (to FILE; without FILE stdout\n"
    "                        carries the JSON only and the table goes to stderr)\n"
    "      --report DIR      also write DIR/report.html: training curves, test metrics,\n"
    "                        calibration per task (one self-contained page; docs/report.md)\n"
    "      --show-config     print the resolved configuration (YAML) to stderr first (it is\n"
    "                        stored in the model either way: resflow config -m MODEL)\n"
    "  -q, --quiet           no progress output (warnings and errors only)\n"
    "  -v, --verbose         progress and the resolved configuration\n"
    "  -h, --help            this help\n";

int cmd_train(int argc, char **argv)
{
    opts o;
    int rc = parse_opts("train", argc, argv, &o, train_help);
    if (rc) return rc;
    rf_config cfg;
    if ((rc = load_config(&o, &cfg)) || (rc = check_data_paths(&o, &cfg))) return rc;
    const char *ins[] = {o.config, cfg.data.source, cfg.data.valid, cfg.data.test};
    if ((rc = check_output("train", o.out ? o.out : "resflow.model", ins, 4))) return rc;
    if (o.report && mkdirs(o.report)) {
        fprintf(stderr, "resflow: error: cannot create the report directory %s\n", o.report);
        return RF_EIO;
    }
    note_threads(&cfg);
    show_config(&o, &cfg);
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
    rf_train_summary ts;
    progress pg;
    progress_init(&pg, (sp.train->n + (size_t)cfg.train.batch_size - 1) / (size_t)cfg.train.batch_size, cfg.train.epochs,
                  cfg.train.eval_every, cfg.train.max_steps);
    rf_status st = rf_train(m, &cfg.train, &(rf_train_hooks){progress_log, &pg, NULL, NULL, NULL}, sp.train, sp.valid, &ts, &e);
    progress_end(&pg);
    const char *out = o.out ? o.out : "resflow.model";
    if (st) {
        die(&e);
        if (st == RF_ENUMERIC && ts.best_epoch >= 0) {
            rf_error e2;
            if (rf_model_save(m, &cfg, sp.enc, sp.train->dense_names, sp.train->label_names, out, &e2) == RF_OK)
                fprintf(stderr, "resflow: the last good model (epoch %d) was saved to %s\n", ts.best_epoch, out);
        }
        rf_model_free(m);
        rf_splits_free(&sp);
        progress_free(&pg);
        return (int)st;
    }
    note("trained %ld steps in %.1f s (%.0f samples/s)%s; best epoch %d", ts.steps, ts.seconds,
         ts.samples_per_sec, ts.stopped_early ? ", early-stopped" : "", ts.best_epoch);
    rf_eval_result te;
    if (sp.test->n > 0) {
        if (rf_evaluate(m, sp.test, cfg.train.threads, &te, &e)) {
            progress_free(&pg);
            return die(&e);
        }
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
    }
    if (!rc && o.report) {
        char path[4096];
        snprintf(path, sizeof path, "%s/report.html", o.report);
        rc = report_run(path, m, &cfg, sp.test, sp.test->n ? &te : NULL, &pg, &ts);
    }
    progress_free(&pg);
    if (!rc && o.json && sp.test->n > 0) rc = write_json(metrics_json(rf_model_spec_of(m), rf_model_info_of(m)->parent, &te), o.json_path);
    rf_model_free(m);
    rf_splits_free(&sp);
    return rc;
}

