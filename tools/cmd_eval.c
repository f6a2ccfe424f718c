/* cmd_eval.c - resflow eval / predict: score a saved model on data. */
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

/* ---- eval / predict ----------------------------------------------------------------------- */

static const char *eval_help =
    "usage: resflow eval -m MODEL [--data FILE] [--json[=FILE]] [--skip-bad-rows]\n"
    "\n"
    "Evaluate a trained model: per task AUC (exact, over the whole set), logloss, mean\n"
    "prediction, observed rate, calibration; for child tasks also the conditional AUC on rows\n"
    "whose parent label is positive (e.g. CVR AUC on clicked rows).\n"
    "Without --data the test split of the model's own data source is used.\n"
    "\n"
    "  -m, --model FILE      model file written by 'resflow train'\n"
    "  -d, --data FILE       CSV/TSV file with the model's columns and labels\n"
    "      --json[=FILE]     print metrics as JSON (to FILE if given)\n"
    "      --skip-bad-rows   skip malformed rows and count them\n"
    "      --threads N       threads\n"
    "  -q, --quiet           no progress output\n";

static const char *predict_help =
    "usage: resflow predict -m MODEL [--data FILE] [-o OUT.tsv]\n"
    "\n"
    "Write per-row scores: a header line, then one line per input row with the row index and\n"
    "one probability per task (tab-separated; ESMM/chain tasks are entire-space probabilities).\n"
    "Without --data the test split of the model's own data source is used; without -o, stdout.\n"
    "\n"
    "  -m, --model FILE      model file written by 'resflow train'\n"
    "  -d, --data FILE       CSV/TSV file with the model's feature columns (labels not needed)\n"
    "  -o, --out FILE        output file (written to FILE.tmp, then renamed)\n"
    "      --skip-bad-rows   skip malformed rows and count them\n"
    "      --threads N       threads\n"
    "  -q, --quiet           no progress output\n";

/* Load a model and the dataset to score (--data or the model's own test split). */
static int model_and_data(const opts *o, rf_loaded_model *lm, rf_dataset **ds, int with_labels)
{
    rf_error e;
    rf_error_clear(&e);
    if (!o->model) return RF_EUSAGE;
    if (rf_model_load(o->model, lm, &e)) return die(&e);
    rf_config cfg = lm->model->cfg;
    if (o->threads) cfg.train.threads = o->threads;
    setup_threads(&cfg);
    if (o->data) {
        size_t bad = 0;
        if (rf_data_load_for_model(lm, o->data, o->skip_bad || cfg.train.skip_bad_rows, with_labels, ds, &bad,
                                   &e))
            return die(&e);
        if (bad) note("skipped %zu bad rows", bad);
        note("data: %s, %zu rows", o->data, (*ds)->n);
    } else {
        rf_splits sp;
        if (rf_data_load(&cfg, &sp, log_line, NULL, &e)) return die(&e);
        *ds = sp.test;
        sp.test = NULL;
        rf_splits_free(&sp);
        note("data: test split of %s, %zu rows", cfg.data.source, (*ds)->n);
    }
    return 0;
}

int cmd_eval(int argc, char **argv)
{
    opts o;
    int rc = parse_opts("eval", argc, argv, &o, eval_help);
    if (rc) return rc;
    if (!o.model) return usage_error("eval", "--model is required");
    rf_loaded_model lm;
    memset(&lm, 0, sizeof lm);
    rf_dataset *ds = NULL;
    if ((rc = model_and_data(&o, &lm, &ds, 1))) {
        rf_loaded_model_free(&lm);
        return rc;
    }
    rf_error e;
    rf_eval_result r;
    if (rf_evaluate(lm.model, ds, &r, &e)) {
        rc = die(&e);
    } else if (o.json) {
        rc = write_json(metrics_json(lm.model, &r), o.json_path);
    } else {
        printf("%zu rows\n", ds->n);
        print_metrics(stdout, lm.model, &r);
    }
    rf_dataset_free(ds);
    rf_loaded_model_free(&lm);
    return rc;
}

int cmd_predict(int argc, char **argv)
{
    opts o;
    int rc = parse_opts("predict", argc, argv, &o, predict_help);
    if (rc) return rc;
    if (!o.model) return usage_error("predict", "--model is required");
    rf_loaded_model lm;
    memset(&lm, 0, sizeof lm);
    rf_dataset *ds = NULL;
    if ((rc = model_and_data(&o, &lm, &ds, 0))) {
        rf_loaded_model_free(&lm);
        return rc;
    }
    rf_model *m = lm.model;
    int K = m->K;
    float *P = malloc((ds->n ? ds->n : 1) * K * sizeof *P);
    rf_error e;
    if (!P) {
        rc = RF_ENOMEM;
        fprintf(stderr, "resflow: error: out of memory\n");
    } else if (rf_predict(m, ds, P, NULL, &e)) {
        rc = die(&e);
    } else {
        char tmp[4096];
        FILE *fp = stdout;
        if (o.out) {
            snprintf(tmp, sizeof tmp, "%s.tmp", o.out);
            fp = fopen(tmp, "w");
        }
        if (!fp) {
            fprintf(stderr, "resflow: error: cannot write %s\n", tmp);
            rc = RF_EIO;
        } else {
            fprintf(fp, "row");
            for (int k = 0; k < K; k++) fprintf(fp, "\t%s", m->cfg.tasks[k].name);
            fputc('\n', fp);
            for (size_t i = 0; i < ds->n; i++) {
                fprintf(fp, "%zu", i);
                for (int k = 0; k < K; k++) fprintf(fp, "\t%.6g", P[i * K + k]);
                fputc('\n', fp);
            }
            if (o.out) {
                if (fclose(fp) || rename(tmp, o.out)) {
                    fprintf(stderr, "resflow: error: cannot write %s\n", o.out);
                    rc = RF_EIO;
                } else {
                    note("wrote %zu rows x %d tasks to %s", ds->n, K, o.out);
                }
            }
        }
    }
    free(P);
    rf_dataset_free(ds);
    rf_loaded_model_free(&lm);
    return rc;
}

