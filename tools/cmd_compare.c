/* cmd_compare.c - resflow compare: several models on the same data, a Table-4 style table. */
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

/* ---- compare: the paper's Table 4 on one dataset ---------------------------------------- */

static const char *compare_help =
    "usage: resflow compare [-c CONFIG.yaml] [--set KEY=VALUE]... [--models LIST] [--json[=FILE]]\n"
    "\n"
    "Train several models on the same data and splits (default: the built-in simulator and\n"
    "nse,esmm,resflow) and print a test-set AUC table like the paper's Table 4 (with\n"
    "regression.target set, the MSE and MAE of the predicted value too). With the\n"
    "simulator, an 'oracle' row scores the true probabilities (the best achievable AUC).\n"
    "Without -c (the demo) the losses are set as in the paper and its official code: task loss\n"
    "weights ctr 2, ctcvr 1 and positive-row weights ctr 1, ctcvr 500 (paper Fig. 3's best on\n"
    "AE-RU); --set tasks.N.weight=... / tasks.N.pos_weight=... override them.\n"
    "\n"
    "  -c, --config FILE     YAML experiment config (the model.type key is set per model)\n"
    "      --set KEY=VALUE   override one key (repeatable)\n"
    "      --models LIST     comma-separated model types (default nse,esmm,resflow; any model.type:\n"
    "                        single, shared_bottom, moe, mmoe, ple, ...; see docs/models.md)\n"
    "      --json[=FILE]     also write the table as JSON (to FILE; without FILE stdout carries\n"
    "                        the JSON only and the table goes to stderr)\n"
    "      --threads N       threads\n"
    "  -q, --quiet           no progress output\n"
    "  -h, --help            this help\n";

/* The demo's loss settings (no -c): applied before the user's --set, stated on stderr. */
static const char *const demo_sets[] = {"tasks.0.weight=2", "tasks.1.weight=1", "tasks.0.pos_weight=1",
                                        "tasks.1.pos_weight=500"};
#define N_DEMO (int)(sizeof demo_sets / sizeof *demo_sets)

int cmd_compare(int argc, char **argv)
{
    opts o;
    int rc = parse_opts("compare", argc, argv, &o, compare_help);
    if (rc) return rc;
    rf_config cfg;
    int demo = !o.config;
    if (demo) { /* the demo's settings first, so that --set wins */
        if (o.n_sets + N_DEMO > 128) return usage_error("compare", "too many --set options");
        memmove(o.sets + N_DEMO, o.sets, (size_t)o.n_sets * sizeof *o.sets);
        for (int i = 0; i < N_DEMO; i++) o.sets[i] = demo_sets[i];
        o.n_sets += N_DEMO;
    }
    if ((rc = load_config(&o, &cfg)) || (rc = check_data_paths(&o, &cfg))) return rc;
    note_threads(&cfg);
    if (demo && cfg.K >= 2)
        fprintf(stderr, /* stated also under -q: it is what the table means */
                "demo: the simulator with the paper's loss settings: task weights %s %g, %s %g; positive-row "
                "weights %s %g, %s %g (official code and paper Fig. 3; override with --set tasks.N.weight / "
                "tasks.N.pos_weight)\n",
                cfg.tasks[0].name, cfg.tasks[0].weight, cfg.tasks[1].name, cfg.tasks[1].weight, cfg.tasks[0].name,
                cfg.tasks[0].pos_weight, cfg.tasks[1].name, cfg.tasks[1].pos_weight);
    rf_error e;
    rf_error_clear(&e);
    const char *list = o.models ? o.models : "nse,esmm,resflow";
    rf_model_type types[16];
    int nt = 0;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", list);
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        if (nt == 16) return usage_error("compare", "too many models");
        int t = rf_model_type_parse(tok);
        if (t < 0) return usage_error("compare", "unknown model '%s' (see 'resflow config --keys', model.type)", tok);
        types[nt++] = (rf_model_type)t;
    }
    rf_splits sp;
    if (rf_data_load(&cfg, &sp, log_line, NULL, &e)) return die(&e);
    note("split: train %zu | valid %zu | test %zu rows", sp.train->n, sp.valid->n, sp.test->n);
    if (rf_regression_resolve(&cfg, sp.train, &e)) { /* thresholds and tasks (regression.h) */
        rf_splits_free(&sp);
        return die(&e);
    }
    int K = cfg.K;
    rf_eval_result res[16];
    rf_train_summary sums[16];
    for (int i = 0; i < nt; i++) {
        rf_config c = cfg;
        c.model.type = types[i];
        note("\n== %s ==", type_name(types[i]));
        rf_model *m = NULL;
        if (rf_config_create_model(&c, sp.train->F, sp.train->fields, sp.train->D, &m, &e) ||
            rf_train(m, &c.train, &(rf_train_hooks){log_line, NULL, NULL, NULL, NULL}, sp.train, sp.valid, &sums[i], &e) ||
            rf_evaluate(m, sp.test, c.train.threads, &res[i], &e)) {
            rf_model_free(m);
            rf_splits_free(&sp);
            return die(&e);
        }
        rf_model_free(m);
    }
    /* the table: on stdout, or on stderr (not with -q) when stdout carries the JSON */
    FILE *hout = o.json && !o.json_path ? (g_quiet ? fopen("/dev/null", "w") : stderr) : stdout;
    if (!hout) hout = stderr;
    int lc[RF_MAX_TASKS];
    for (int k = 0; k < K; k++) lc[k] = rf_dataset_label_index(sp.test, cfg.tasks[k].label);
    fprintf(hout, "\nTest set: %zu rows", sp.test->n);
    for (int k = 0; k < K; k++) {
        double pos = 0;
        for (size_t r = 0; r < sp.test->n; r++) pos += sp.test->labels[r * sp.test->K + lc[k]] > 0.5;
        fprintf(hout, ", %s rate %.3f%% (%.0f)", cfg.tasks[k].name, 100.0 * pos / (sp.test->n ? sp.test->n : 1), pos);
    }
    /* columns as wide as their headers (long task names stay aligned) */
    int wa[RF_MAX_TASKS], wc[RF_MAX_TASKS];
    fprintf(hout, "\n\n%-10s", "model");
    for (int k = 0; k < K; k++) {
        snprintf(buf, sizeof buf, "%s AUC", cfg.tasks[k].name);
        wa[k] = strlen(buf) > 10 ? (int)strlen(buf) : 10;
        fprintf(hout, " %*s", wa[k], buf);
    }
    for (int k = 0; k < K; k++)
        if (rf_config_task_index(&cfg, cfg.tasks[k].parent) >= 0) {
            snprintf(buf, sizeof buf, "%s|%s", cfg.tasks[k].name, cfg.tasks[k].parent);
            wc[k] = strlen(buf) > 14 ? (int)strlen(buf) : 14;
            fprintf(hout, " %*s", wc[k], buf);
        }
    int reg = cfg.regression.target[0] != 0; /* regression: the prediction's test error too */
    if (reg) fprintf(hout, " %8s %8s", "MSE", "MAE");
    fprintf(hout, " %8s %7s %10s\n", "best ep", "train s", "samples/s");
    for (int i = 0; i < nt; i++) {
        fprintf(hout, "%-10s", type_name(types[i]));
        for (int k = 0; k < K; k++) fprintf(hout, " %*.4f", wa[k], res[i].task[k].auc);
        for (int k = 0; k < K; k++)
            if (rf_config_task_index(&cfg, cfg.tasks[k].parent) >= 0) fprintf(hout, " %*.4f", wc[k], res[i].cond[k].auc);
        if (reg) fprintf(hout, " %8.4f %8.4f", res[i].reg.mse, res[i].reg.mae);
        fprintf(hout, " %8d %7.1f %10.0f\n", sums[i].best_epoch, sums[i].seconds, sums[i].samples_per_sec);
    }
    double oracle[RF_MAX_TASKS];
    if (sp.test->truth) {
        fprintf(hout, "%-10s", "oracle");
        for (int k = 0; k < K; k++) {
            oracle[k] = rf_auc_strided(sp.test->truth + lc[k], sp.test->K, sp.test->labels + lc[k], sp.test->K,
                                       NULL, 0, sp.test->n, NULL);
            fprintf(hout, " %*.4f", wa[k], oracle[k]);
        }
        fprintf(hout, "   (true probabilities of the simulator)\n");
    }
    for (int i = 0; i < nt; i++)
        if (chain_links_inactive(&cfg, types[i])) {
            fprintf(hout, "\n");
            print_chain_note(hout, NULL);
            break;
        }
    if (o.json) {
        json_t *j = json_object();
        json_object_set_new(j, "test_rows", json_integer((json_int_t)sp.test->n));
        json_t *rows = json_array();
        for (int i = 0; i < nt; i++) {
            rf_model_spec spec;
            int parent[RF_MAX_TASKS];
            rf_config_model_spec(&cfg, 0, NULL, 0, &spec);
            for (int k = 0; k < K; k++) parent[k] = rf_config_task_index(&cfg, cfg.tasks[k].parent);
            json_t *r = metrics_json(&spec, parent, &res[i]);
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
    if (hout != stdout && hout != stderr) fclose(hout);
    rf_splits_free(&sp);
    return rc;
}

