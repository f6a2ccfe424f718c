/* resflow.c - the command-line tool: train, eval, predict, compare, synth, config.
 *
 * Thin layer over libresflow: parses options (getopt_long), loads the configuration, calls the
 * library and prints. The only place that exits. Exit codes are rf_status values:
 * 0 ok, 1 usage/config, 2 data, 3 I/O, 4 numeric, 5 memory, 6 file format.
 * Progress and logs go to stderr; results (tables, JSON, predictions) to stdout or files.
 */
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <omp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cblas.h>

#include "blas_env.h"
#include "resflow/config.h"
#include "resflow/metrics.h"
#include "resflow/modelfile.h"
#include "resflow/pipeline.h"
#include "resflow/train.h"

static int g_quiet; /* tool-level flag (tools may have state; the library has none) */

static void log_line(void *ud, const char *line)
{
    (void)ud;
    if (!g_quiet) fprintf(stderr, "%s\n", line);
}

static void note(const char *fmt, ...) RF_PRINTF(1, 2);
static void note(const char *fmt, ...)
{
    if (g_quiet) return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static int die(const rf_error *e)
{
    char buf[2048];
    fprintf(stderr, "resflow: error: %s\n", rf_error_format(e, buf, sizeof buf));
    return e->code ? (int)e->code : 1;
}

static int usage_error(const char *cmd, const char *fmt, ...) RF_PRINTF(2, 3);
static int usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "resflow %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry 'resflow %s --help'.\n", cmd);
    return RF_EUSAGE;
}

/* ---- shared option handling ------------------------------------------------------------ */

typedef struct {
    const char *config;
    const char *sets[128];
    int n_sets;
    const char *model, *data, *out, *json_path, *models;
    int json, skip_bad, threads, keys;
} opts;

enum { O_SET = 1000, O_SKIP, O_JSON, O_THREADS, O_MODELS, O_KEYS, O_HELP };

static const struct option long_opts[] = {
    {"config", required_argument, 0, 'c'}, {"set", required_argument, 0, O_SET},
    {"model", required_argument, 0, 'm'},  {"data", required_argument, 0, 'd'},
    {"out", required_argument, 0, 'o'},    {"json", optional_argument, 0, O_JSON},
    {"quiet", no_argument, 0, 'q'},        {"skip-bad-rows", no_argument, 0, O_SKIP},
    {"threads", required_argument, 0, O_THREADS}, {"models", required_argument, 0, O_MODELS},
    {"keys", no_argument, 0, O_KEYS},      {"help", no_argument, 0, 'h'},
    {0, 0, 0, 0}};

static int parse_opts(const char *cmd, int argc, char **argv, opts *o, const char *help)
{
    memset(o, 0, sizeof *o);
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "c:m:d:o:qh", long_opts, NULL)) != -1) {
        switch (c) {
        case 'c': o->config = optarg; break;
        case O_SET:
            if (o->n_sets == 128) return usage_error(cmd, "too many --set options");
            o->sets[o->n_sets++] = optarg;
            break;
        case 'm': o->model = optarg; break;
        case 'd': o->data = optarg; break;
        case 'o': o->out = optarg; break;
        case O_JSON: o->json = 1; o->json_path = optarg; break;
        case 'q': g_quiet = 1; break;
        case O_SKIP: o->skip_bad = 1; break;
        case O_THREADS: {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*end || v < 0 || v > 1024) return usage_error(cmd, "--threads wants a number, got '%s'", optarg);
            o->threads = (int)v;
            break;
        }
        case O_MODELS: o->models = optarg; break;
        case O_KEYS: o->keys = 1; break;
        case 'h': fputs(help, stdout); exit(0);
        default: return usage_error(cmd, "unknown option");
        }
    }
    if (optind < argc) return usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    return 0;
}

/* defaults <- file <- --set, then validate */
static int load_config(const opts *o, rf_config *cfg)
{
    rf_error e;
    rf_error_clear(&e);
    rf_config_default(cfg);
    if (o->config && rf_config_load_file(cfg, o->config, &e)) return die(&e);
    for (int i = 0; i < o->n_sets; i++)
        if (rf_config_set(cfg, o->sets[i], &e)) return die(&e);
    if (o->skip_bad) cfg->train.skip_bad_rows = 1;
    if (o->threads) cfg->train.threads = o->threads;
    if (rf_config_validate(cfg, &e)) return die(&e);
    rf_schema_from_tasks(cfg);
    return 0;
}

static void setup_threads(const rf_config *cfg)
{
    int t = cfg->train.threads > 0 ? cfg->train.threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (t < 1) t = 1;
    omp_set_num_threads(t);
    openblas_set_num_threads(t);
    const char *was = getenv("RESFLOW_BLAS_WAS");
    note("resflow %s | threads %d | BLAS %s, %s kernels%s%s%s", rf_version(), t, "OpenBLAS",
         openblas_get_corename(), was ? " (environment forced " : "", was ? was : "",
         was ? "; dropped, see RESFLOW_BLAS_CORETYPE)" : "");
}

static double dataset_mb(const rf_dataset *d)
{
    if (!d) return 0;
    double b = (double)d->n * (d->F * 4 + d->D * 4 + d->K * 4 + (d->weight ? 4 : 0) + (d->group ? 8 : 0) +
                               (d->truth ? d->K * 4 : 0));
    for (int f = 0; f < d->F; f++)
        if (d->mv_off[f]) b += 8.0 * (d->n + 1) + 4.0 * d->mv_off[f][d->n];
    return b / 1e6;
}

static const char *type_name(rf_model_type t)
{
    return t == RF_MODEL_RESFLOW ? "ResFlow" : t == RF_MODEL_NSE ? "NSE" : "ESMM";
}

static void print_metrics(FILE *fp, const rf_model *m, const rf_eval_result *r)
{
    fprintf(fp, "%-16s %8s %9s %10s %10s %8s %10s\n", "task", "AUC", "logloss", "mean pred", "observed",
            "calib", "positives");
    for (int k = 0; k < m->K; k++) {
        const rf_task_metrics *t = &r->task[k];
        fprintf(fp, "%-16s %8.4f %9.5f %10.5f %10.5f %8.3f %10zu\n", m->cfg.tasks[k].name, t->auc, t->logloss,
                t->mean_pred, t->mean_label, t->calib, t->positives);
    }
    for (int k = 0; k < m->K; k++) {
        if (m->parent[k] < 0) continue;
        char name[160];
        snprintf(name, sizeof name, "%s|%s", m->cfg.tasks[k].name, m->cfg.tasks[m->parent[k]].name);
        fprintf(fp, "%-16s %8.4f   (conditional, on the %zu rows with %s positive)\n", name, r->cond[k].auc,
                r->cond[k].n, m->cfg.tasks[m->parent[k]].name);
    }
}

static json_t *metrics_json(const rf_model *m, const rf_eval_result *r)
{
    json_t *o = json_object();
    json_t *tasks = json_object();
    for (int k = 0; k < m->K; k++) {
        const rf_task_metrics *t = &r->task[k];
        json_t *j = json_pack("{s:f,s:f,s:f,s:f,s:I,s:I}", "auc", t->auc, "logloss", t->logloss,
                              "mean_pred", t->mean_pred, "observed", t->mean_label, "n", (json_int_t)t->n,
                              "positives", (json_int_t)t->positives);
        json_object_set_new(j, "calibration", isfinite(t->calib) ? json_real(t->calib) : json_null());
        if (!isfinite(t->auc)) json_object_set_new(j, "auc", json_null());
        if (m->parent[k] >= 0) {
            json_object_set_new(j, "parent", json_string(m->cfg.tasks[m->parent[k]].name));
            json_object_set_new(j, "conditional_auc",
                                isfinite(r->cond[k].auc) ? json_real(r->cond[k].auc) : json_null());
            json_object_set_new(j, "conditional_n", json_integer((json_int_t)r->cond[k].n));
        }
        json_object_set_new(tasks, m->cfg.tasks[k].name, j);
    }
    json_object_set_new(o, "tasks", tasks);
    json_object_set_new(o, "loss", json_real(r->loss));
    json_object_set_new(o, "rows", json_integer((json_int_t)r->n));
    return o;
}

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
    "      --json[=FILE]     also write the final metrics as JSON (stdout if no FILE)\n"
    "  -q, --quiet           no progress output\n"
    "  -h, --help            this help\n";

static int write_json(json_t *j, const char *path)
{
    int rc = 0;
    if (path) {
        char tmp[4096];
        snprintf(tmp, sizeof tmp, "%s.tmp", path);
        if (json_dump_file(j, tmp, JSON_INDENT(2) | JSON_REAL_PRECISION(6)) || rename(tmp, path)) {
            fprintf(stderr, "resflow: error: cannot write %s\n", path);
            rc = RF_EIO;
        }
    } else {
        json_dumpf(j, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(6));
        fputc('\n', stdout);
    }
    json_decref(j);
    return rc;
}

static int cmd_train(int argc, char **argv)
{
    opts o;
    int rc = parse_opts("train", argc, argv, &o, train_help);
    if (rc) return rc;
    rf_config cfg;
    if ((rc = load_config(&o, &cfg))) return rc;
    setup_threads(&cfg);
    char *dump = rf_config_dump(&cfg);
    if (!g_quiet && dump) fprintf(stderr, "%s", dump);
    free(dump);
    rf_error e;
    rf_error_clear(&e);
    rf_splits sp;
    if (rf_data_load(&cfg, &sp, log_line, NULL, &e)) return die(&e);
    note("split: train %zu | valid %zu | test %zu rows%s", sp.train->n, sp.valid->n, sp.test->n,
         sp.bad_rows ? " (some bad rows skipped)" : "");
    if (sp.bad_rows) note("skipped %zu bad rows", sp.bad_rows);
    rf_model *m = NULL;
    if (rf_model_create(&cfg, sp.train->F, sp.train->fields, sp.train->D, &m, &e)) {
        rf_splits_free(&sp);
        return die(&e);
    }
    double emb_mb = m->emb_off[m->F] * (double)m->E * 4 / 1e6;
    double est = dataset_mb(sp.train) + dataset_mb(sp.valid) + dataset_mb(sp.test) + 3 * emb_mb * 2 +
                 4.0 * m->n_params * 4 / 1e6 +
                 cfg.train.batch_size * 4.0 * (m->In * 2 + 6.0 * m->K * m->H[0]) / 1e6;
    note("model: %s, %d tasks, %zu dense parameters, %zu embedding rows x %d; memory estimate %.0f MB",
         type_name(cfg.model.type), m->K, m->n_params, m->emb_off[m->F], m->E, est);
    rf_train_summary ts;
    rf_status st = rf_train(m, sp.train, sp.valid, log_line, NULL, &ts, &e);
    const char *out = o.out ? o.out : "resflow.model";
    if (st) {
        die(&e);
        if (st == RF_ENUMERIC && ts.best_epoch >= 0) {
            rf_error e2;
            if (rf_model_save(m, sp.enc, sp.train->dense_names, sp.train->label_names, out, &e2) == RF_OK)
                fprintf(stderr, "resflow: the last good model (epoch %d) was saved to %s\n", ts.best_epoch, out);
        }
        rf_model_free(m);
        rf_splits_free(&sp);
        return (int)st;
    }
    note("trained %ld steps in %.1f s (%.0f samples/s)%s; best epoch %d", ts.steps, ts.seconds,
         ts.samples_per_sec, ts.stopped_early ? ", early-stopped" : "", ts.best_epoch);
    rf_eval_result te;
    if (sp.test->n > 0) {
        if (rf_evaluate(m, sp.test, &te, &e)) return die(&e);
        printf("test set: %zu rows\n", sp.test->n);
        print_metrics(stdout, m, &te);
    }
    if (rf_model_save(m, sp.enc, sp.train->dense_names, sp.train->label_names, out, &e)) {
        rc = die(&e);
    } else {
        note("model saved to %s", out);
    }
    if (!rc && o.json && sp.test->n > 0) rc = write_json(metrics_json(m, &te), o.json_path);
    rf_model_free(m);
    rf_splits_free(&sp);
    return rc;
}

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

static int cmd_eval(int argc, char **argv)
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

static int cmd_predict(int argc, char **argv)
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

/* ---- compare: the paper's Table 4 on one dataset ---------------------------------------- */

static const char *compare_help =
    "usage: resflow compare [-c CONFIG.yaml] [--set KEY=VALUE]... [--models LIST] [--json[=FILE]]\n"
    "\n"
    "Train several models on the same data and splits (default: the built-in simulator and\n"
    "nse,esmm,resflow) and print a test-set AUC table like the paper's Table 4. With the\n"
    "simulator, an 'oracle' row scores the true probabilities (the best achievable AUC).\n"
    "\n"
    "  -c, --config FILE     YAML experiment config (the model.type key is set per model)\n"
    "      --set KEY=VALUE   override one key (repeatable)\n"
    "      --models LIST     comma-separated model types (nse, esmm, resflow)\n"
    "      --json[=FILE]     also write the table as JSON\n"
    "      --threads N       threads\n"
    "  -q, --quiet           no progress output\n";

static int cmd_compare(int argc, char **argv)
{
    opts o;
    int rc = parse_opts("compare", argc, argv, &o, compare_help);
    if (rc) return rc;
    rf_config cfg;
    if ((rc = load_config(&o, &cfg))) return rc;
    setup_threads(&cfg);
    rf_error e;
    rf_error_clear(&e);
    const char *list = o.models ? o.models : "nse,esmm,resflow";
    rf_model_type types[8];
    int nt = 0;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", list);
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        if (nt == 8) return usage_error("compare", "too many models");
        if (!strcmp(tok, "nse")) types[nt++] = RF_MODEL_NSE;
        else if (!strcmp(tok, "esmm")) types[nt++] = RF_MODEL_ESMM;
        else if (!strcmp(tok, "resflow")) types[nt++] = RF_MODEL_RESFLOW;
        else return usage_error("compare", "unknown model '%s' (known: nse, esmm, resflow)", tok);
    }
    rf_splits sp;
    if (rf_data_load(&cfg, &sp, log_line, NULL, &e)) return die(&e);
    note("split: train %zu | valid %zu | test %zu rows", sp.train->n, sp.valid->n, sp.test->n);
    int K = cfg.K;
    rf_eval_result res[8];
    rf_train_summary sums[8];
    for (int i = 0; i < nt; i++) {
        rf_config c = cfg;
        c.model.type = types[i];
        note("\n== %s ==", type_name(types[i]));
        rf_model *m = NULL;
        if (rf_model_create(&c, sp.train->F, sp.train->fields, sp.train->D, &m, &e) ||
            rf_train(m, sp.train, sp.valid, log_line, NULL, &sums[i], &e) ||
            rf_evaluate(m, sp.test, &res[i], &e)) {
            rf_model_free(m);
            rf_splits_free(&sp);
            return die(&e);
        }
        rf_model_free(m);
    }
    /* the table */
    int lc[RF_MAX_TASKS];
    for (int k = 0; k < K; k++) lc[k] = rf_dataset_label_index(sp.test, cfg.tasks[k].label);
    printf("\nTest set: %zu rows", sp.test->n);
    for (int k = 0; k < K; k++) {
        double pos = 0;
        for (size_t r = 0; r < sp.test->n; r++) pos += sp.test->labels[r * sp.test->K + lc[k]] > 0.5;
        printf(", %s rate %.3f%% (%.0f)", cfg.tasks[k].name, 100.0 * pos / (sp.test->n ? sp.test->n : 1), pos);
    }
    printf("\n\n%-9s", "model");
    for (int k = 0; k < K; k++) printf(" %10s", strcat(strcpy(buf, cfg.tasks[k].name), " AUC"));
    for (int k = 0; k < K; k++)
        if (rf_config_task_index(&cfg, cfg.tasks[k].parent) >= 0)
            printf(" %14s", strcat(strcat(strcpy(buf, cfg.tasks[k].name), "|"), cfg.tasks[k].parent));
    printf(" %8s %7s %10s\n", "epochs", "train s", "samples/s");
    for (int i = 0; i < nt; i++) {
        printf("%-9s", type_name(types[i]));
        for (int k = 0; k < K; k++) printf(" %10.4f", res[i].task[k].auc);
        for (int k = 0; k < K; k++)
            if (rf_config_task_index(&cfg, cfg.tasks[k].parent) >= 0) printf(" %14.4f", res[i].cond[k].auc);
        printf(" %8d %7.1f %10.0f\n", sums[i].best_epoch, sums[i].seconds, sums[i].samples_per_sec);
    }
    double oracle[RF_MAX_TASKS];
    if (sp.test->truth) {
        printf("%-9s", "oracle");
        for (int k = 0; k < K; k++) {
            oracle[k] = rf_auc_strided(sp.test->truth + lc[k], sp.test->K, sp.test->labels + lc[k], sp.test->K,
                                       NULL, 0, sp.test->n, NULL);
            printf(" %10.4f", oracle[k]);
        }
        printf("   (true probabilities of the simulator)\n");
    }
    if (o.json) {
        json_t *j = json_object();
        json_object_set_new(j, "test_rows", json_integer((json_int_t)sp.test->n));
        json_t *rows = json_array();
        for (int i = 0; i < nt; i++) {
            rf_model tmp;
            memset(&tmp, 0, sizeof tmp);
            tmp.cfg = cfg;
            tmp.K = K;
            for (int k = 0; k < K; k++) tmp.parent[k] = rf_config_task_index(&cfg, cfg.tasks[k].parent);
            json_t *r = metrics_json(&tmp, &res[i]);
            json_object_set_new(r, "model", json_string(type_name(types[i])));
            json_object_set_new(r, "train_seconds", json_real(sums[i].seconds));
            json_object_set_new(r, "samples_per_sec", json_real(sums[i].samples_per_sec));
            json_array_append_new(rows, r);
        }
        json_object_set_new(j, "models", rows);
        if (sp.test->truth) {
            json_t *or = json_object();
            for (int k = 0; k < K; k++) json_object_set_new(or, cfg.tasks[k].name, json_real(oracle[k]));
            json_object_set_new(j, "oracle_auc", or);
        }
        rc = write_json(j, o.json_path);
    }
    rf_splits_free(&sp);
    return rc;
}

/* ---- synth / config ------------------------------------------------------------------------ */

static const char *synth_help =
    "usage: resflow synth [-c CONFIG.yaml] [--set synth.KEY=VALUE]... -o OUT.csv\n"
    "\n"
    "Write the simulated e-commerce search log (see docs/simulator.md) as CSV: categorical ids,\n"
    "labels, the query-list id and the true probabilities. Keys: synth.rows, synth.seed,\n"
    "synth.tasks (2 or 3), synth.ctr, synth.cvr, synth.users/items/queries, synth.list_len.\n";

static int cmd_synth(int argc, char **argv)
{
    opts o;
    int rc = parse_opts("synth", argc, argv, &o, synth_help);
    if (rc) return rc;
    if (!o.out) return usage_error("synth", "--out is required");
    rf_config cfg;
    if ((rc = load_config(&o, &cfg))) return rc;
    rf_error e;
    rf_dataset *ds = NULL;
    if (rf_synth_generate(&cfg.data.synth, &ds, &e)) return die(&e);
    if (rf_dataset_write_csv(ds, o.out, &e)) rc = die(&e);
    else note("wrote %zu rows to %s", ds->n, o.out);
    rf_dataset_free(ds);
    return rc;
}

static const char *config_help =
    "usage: resflow config [-c CONFIG.yaml] [--set KEY=VALUE]... | --keys | -m MODEL\n"
    "\n"
    "Print the resolved configuration (defaults <- file <- --set) as YAML, every known key\n"
    "with its type, default and meaning (--keys), or the configuration stored in a model file.\n";

static int cmd_config(int argc, char **argv)
{
    opts o;
    int rc = parse_opts("config", argc, argv, &o, config_help);
    if (rc) return rc;
    char *s;
    if (o.keys) {
        s = rf_config_describe();
    } else if (o.model) {
        rf_loaded_model lm;
        rf_error e;
        if (rf_model_load(o.model, &lm, &e)) return die(&e);
        s = rf_config_dump(&lm.model->cfg);
        rf_loaded_model_free(&lm);
    } else {
        rf_config cfg;
        if ((rc = load_config(&o, &cfg))) return rc;
        s = rf_config_dump(&cfg);
    }
    if (s) fputs(s, stdout);
    free(s);
    return 0;
}

/* ---- main ----------------------------------------------------------------------------------- */

static const char *main_help =
    "usage: resflow COMMAND [options]      (resflow COMMAND --help for details)\n"
    "\n"
    "Multi-task ranking models for search and recommendation: ResFlow (KDD'24), NSE, ESMM.\n"
    "\n"
    "commands:\n"
    "  compare   train several models on the same data, print a Table-4 style AUC table\n"
    "            (with no options: the built-in simulator, NSE vs ESMM vs ResFlow)\n"
    "  train     train one model from a YAML config (+ --set overrides), save it\n"
    "  eval      evaluate a saved model (per-task AUC, logloss, calibration; --json)\n"
    "  predict   write per-task scores for every row\n"
    "  synth     write the simulated e-commerce log as CSV\n"
    "  config    print the resolved config, all keys (--keys), or a model's config\n"
    "\n"
    "  --version  print the version\n"
    "\n"
    "exit codes: 0 ok, 1 usage/config, 2 data, 3 I/O, 4 numeric (non-finite loss), 5 memory,\n"
    "            6 bad model file\n";

int main(int argc, char **argv)
{
    rf_blas_env_setup(argv);
    if (argc < 2) {
        fputs(main_help, stderr);
        return RF_EUSAGE;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        fputs(main_help, stdout);
        return 0;
    }
    if (!strcmp(cmd, "--version")) {
        printf("resflow %s (OpenBLAS %s)\n", rf_version(), openblas_get_config());
        return 0;
    }
    argc--;
    argv++;
    if (!strcmp(cmd, "train")) return cmd_train(argc, argv);
    if (!strcmp(cmd, "eval")) return cmd_eval(argc, argv);
    if (!strcmp(cmd, "predict")) return cmd_predict(argc, argv);
    if (!strcmp(cmd, "compare")) return cmd_compare(argc, argv);
    if (!strcmp(cmd, "synth")) return cmd_synth(argc, argv);
    if (!strcmp(cmd, "config")) return cmd_config(argc, argv);
    fprintf(stderr, "resflow: unknown command '%s'\n\n%s", cmd, main_help);
    return RF_EUSAGE;
}
