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
    "nse,esmm,resflow) and print a test-set AUC table like the paper's Table 4, with the paired\n"
    "difference of every AUC to a baseline model and its 95% confidence interval (with\n"
    "regression.target set, the MSE and MAE of the predicted value too). With the\n"
    "simulator, an 'oracle' row scores the true probabilities (the best achievable AUC).\n"
    "Without -c (the demo) the losses and epochs are set as in the paper and its official code:\n"
    "task loss weights ctr 2, ctcvr 1, positive-row weights ctr 1, ctcvr 500 (paper Fig. 3's\n"
    "best on AE-RU) and one epoch; --set tasks.N.weight=... / tasks.N.pos_weight=... /\n"
    "train.epochs=... override them.\n"
    "\n"
    "  -c, --config FILE     YAML experiment config (the model.type key is set per model)\n"
    "      --set KEY=VALUE   override one key (repeatable)\n"
    "      --models LIST     comma-separated model types (default nse,esmm,resflow; any model.type:\n"
    "                        single, shared_bottom, moe, mmoe, ple, ...; see docs/models.md)\n"
    "      --json[=FILE]     also write the table as JSON (to FILE; without FILE stdout carries\n"
    "                        the JSON only and the table goes to stderr)\n"
    "      --baseline MODEL  the model every other one is compared with (default: the first)\n"
    "      --signif METHOD   the paired test of each AUC difference to the baseline on the same test\n"
    "                        rows: delong (default), bootstrap[:REPS] (over queries/lists, 200\n"
    "                        replicates) or none; printed as diff [95% CI], * = CI excludes 0\n"
    "      --threads N       threads\n"
    "  -q, --quiet           no progress output\n"
    "  -h, --help            this help\n"
    "\n"
    "With the simulator's ecom preset an 'es cvr' column gives each child task's conditional\n"
    "AUC over the entire exposure space, against the counterfactual labels cf_<label> (would\n"
    "convert if clicked, known for unclicked rows too; docs/simulator.md).\n";

/* The demo's loss settings (no -c): applied before the user's --set, stated on stderr. */
static const char *const demo_sets[] = {"tasks.0.weight=2", "tasks.1.weight=1", "tasks.0.pos_weight=1",
                                        "tasks.1.pos_weight=500", "train.epochs=1"};
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
    if (cfg.train.checkpoint_every[0])
        fprintf(stderr, "warning: train.checkpoint_every is for resflow train: compare writes no checkpoints\n");
    note_threads(&cfg);
    if (demo && cfg.K >= 2)
        fprintf(stderr, /* stated also under -q: it is what the table means */
                "demo: the simulator with the paper's loss settings: task weights %s %g, %s %g; positive-row "
                "weights %s %g, %s %g; %d epoch%s (official code and paper Fig. 3; override with --set "
                "tasks.N.weight / tasks.N.pos_weight / train.epochs)\n",
                cfg.tasks[0].name, cfg.tasks[0].weight, cfg.tasks[1].name, cfg.tasks[1].weight, cfg.tasks[0].name,
                cfg.tasks[0].pos_weight, cfg.tasks[1].name, cfg.tasks[1].pos_weight, cfg.train.epochs,
                cfg.train.epochs == 1 ? "" : "s");
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
    signif_opts so;
    if (signif_parse(o.signif, &so)) return usage_error("compare", "--signif wants delong, bootstrap[:REPS] or none, got '%s'", o.signif);
    int base = 0;
    if (o.baseline) {
        int bt = rf_model_type_parse(o.baseline);
        base = -1;
        for (int i = 0; i < nt && base < 0; i++)
            if ((int)types[i] == bt) base = i;
        if (base < 0) return usage_error("compare", "--baseline %s is not one of the models", o.baseline);
    }
    rf_eval_result res[16];
    rf_train_summary sums[16];
    float *prob[16] = {0}, *cond[16] = {0};
    const size_t nte = sp.test->n;
    for (int i = 0; i < nt; i++) {
        rf_config c = cfg;
        c.model.type = types[i];
        note("\n== %s ==", type_name(types[i]));
        rf_model *m = NULL;
        prob[i] = malloc((nte ? nte : 1) * (size_t)K * sizeof *prob[i]);
        cond[i] = malloc((nte ? nte : 1) * (size_t)K * sizeof *cond[i]);
        if (!prob[i] || !cond[i]) {
            rf_errorf(&e, RF_ENOMEM, "compare: out of memory for the test predictions");
            rc = die(&e);
            goto out;
        }
        if (rf_config_create_model(&c, sp.train->F, sp.train->fields, sp.train->D, &m, &e) ||
            rf_train(m, &c.train, &(rf_train_hooks){log_line, NULL, NULL, NULL, NULL}, sp.train, sp.valid, &sums[i], &e) ||
            rf_predict(m, sp.test, c.train.threads, prob[i], cond[i], &e) || /* once: the metrics */
            rf_evaluate_probs(m, sp.test, prob[i], cond[i], &res[i], &e)) {    /* and the tests share it */
            rf_model_free(m);
            rc = die(&e);
            goto out;
        }
        rf_model_free(m);
    }
    /* the table: on stdout, or on stderr (not with -q) when stdout carries the JSON */
    FILE *hout = o.json && !o.json_path ? (g_quiet ? fopen("/dev/null", "w") : stderr) : stdout;
    if (!hout) hout = stderr;
    int lc[RF_MAX_TASKS], pk[RF_MAX_TASKS], cf[RF_MAX_TASKS];
    const rf_dataset *te = sp.test;
    const size_t TK = (size_t)te->K;
    for (int k = 0; k < K; k++) {
        lc[k] = rf_dataset_label_index(te, cfg.tasks[k].label);
        pk[k] = rf_config_task_index(&cfg, cfg.tasks[k].parent);
        cf[k] = pk[k] >= 0 && lc[pk[k]] >= 0 ? rf_dataset_cf_label_index(te, cfg.tasks[k].label) : -1;
    }
    fprintf(hout, "\nTest set: %zu rows", nte);
    for (int k = 0; k < K; k++) {
        double pos = 0;
        if (lc[k] >= 0)
            for (size_t r = 0; r < nte; r++) pos += te->labels[r * TK + lc[k]] > 0.5;
        fprintf(hout, ", %s rate %.3f%% (%.0f)", cfg.tasks[k].name, 100.0 * pos / (nte ? nte : 1), pos);
    }
    /* columns: per task AUC, per child its AUC on the parent's positives, per child with a
     * counterfactual label its entire-space conditional AUC; each with its paired test */
    int ncol = 0, ck[3 * RF_MAX_TASKS], ct[3 * RF_MAX_TASKS]; /* task, type 0 AUC / 1 cond / 2 es */
    for (int k = 0; k < K; k++) ck[ncol] = k, ct[ncol++] = 0;
    for (int k = 0; k < K; k++)
        if (pk[k] >= 0) ck[ncol] = k, ct[ncol++] = 1;
    for (int k = 0; k < K; k++)
        if (cf[k] >= 0) ck[ncol] = k, ct[ncol++] = 2;
    char head[3 * RF_MAX_TASKS][2 * RF_NAME_MAX + 8];
    double val[16][3 * RF_MAX_TASKS], orc[3 * RF_MAX_TASKS];
    rf_auc_diff dif[16][3 * RF_MAX_TASKS];
    for (int j = 0; j < ncol; j++) {
        int k = ck[j];
        if (ct[j] == 0) snprintf(head[j], sizeof head[j], "%s AUC", cfg.tasks[k].name);
        else snprintf(head[j], sizeof head[j], "%s%s|%s", ct[j] == 2 ? "es " : "", cfg.tasks[k].name,
                      cfg.tasks[pk[k]].name);
        for (int i = 0; i < nt; i++) {
            const float *sc = ct[j] == 0 ? prob[i] + k : cond[i] + k;
            const float *lab = te->labels + (ct[j] == 2 ? cf[k] : lc[k]);
            const float *mask = ct[j] == 1 ? te->labels + lc[pk[k]] : NULL;
            val[i][j] = ct[j] == 0 ? res[i].task[k].auc : ct[j] == 1 ? res[i].cond[k].auc
                                   : rf_auc_strided(sc, (size_t)K, lab, TK, NULL, 0, nte, NULL);
            dif[i][j].diff = NAN;
            if (i == base || so.method == SIGNIF_NONE || lc[k] < 0) continue;
            const float *bsc = (ct[j] == 0 ? prob[base] : cond[base]) + k;
            rf_error e2;
            if (signif_pair(&so, sc, (size_t)K, bsc, (size_t)K, lab, TK, mask, TK, te->group, nte, cfg.train.threads,
                            &dif[i][j], &e2))
                dif[i][j].diff = NAN; /* a class absent: no test, the cell says n/a */
        }
        orc[j] = NAN;
        if (te->truth && lc[k] >= 0) {
            if (ct[j] == 0)
                orc[j] = rf_auc_strided(te->truth + lc[k], TK, te->labels + lc[k], TK, NULL, 0, nte, NULL);
            else if (ct[j] == 2)
                orc[j] = rf_auc_strided(te->truth + cf[k], TK, te->labels + cf[k], TK, NULL, 0, nte, NULL);
            else if (lc[pk[k]] >= 0) { /* the true conditional truth_k / truth_parent on the parent's positives */
                float *ratio = malloc((nte ? nte : 1) * sizeof *ratio);
                for (size_t r = 0; ratio && r < nte; r++) {
                    float tp = te->truth[r * TK + lc[pk[k]]];
                    ratio[r] = tp > 0 ? te->truth[r * TK + lc[k]] / tp : 0;
                }
                if (ratio)
                    orc[j] = rf_auc_strided(ratio, 1, te->labels + lc[k], TK, te->labels + lc[pk[k]], TK, nte, NULL);
                free(ratio);
            }
        }
    }
    /* columns as wide as their headers (long task names stay aligned) */
    int w[3 * RF_MAX_TASKS];
    for (int j = 0; j < ncol; j++) w[j] = strlen(head[j]) > 14 ? (int)strlen(head[j]) : 14;
    fprintf(hout, "\n\n%-10s", "model");
    for (int j = 0; j < ncol; j++) fprintf(hout, " %*s", w[j], head[j]);
    int reg = cfg.regression.target[0] != 0; /* regression: the prediction's test error too */
    if (reg) fprintf(hout, " %8s %8s", "MSE", "MAE");
    fprintf(hout, " %8s %7s %10s\n", "best ep", "train s", "samples/s");
    for (int i = 0; i < nt; i++) {
        fprintf(hout, "%-10s", type_name(types[i]));
        for (int j = 0; j < ncol; j++) fprintf(hout, " %*.4f", w[j], val[i][j]);
        if (reg) fprintf(hout, " %8.4f %8.4f", res[i].reg.mse, res[i].reg.mae);
        fprintf(hout, " %8d %7.1f %10.0f\n", sums[i].best_epoch, sums[i].seconds, sums[i].samples_per_sec);
    }
    if (te->truth) {
        fprintf(hout, "%-10s", "oracle");
        for (int j = 0; j < ncol; j++)
            if (isnan(orc[j])) fprintf(hout, " %*s", w[j], "-");
            else fprintf(hout, " %*.4f", w[j], orc[j]);
        fprintf(hout, "   (true probabilities of the simulator)\n");
    }
    if (so.method != SIGNIF_NONE && nt > 1) {
        char cell[64];
        fprintf(hout, "\nDifference to %s on the same test rows, [95%% CI] (%s; * = significant):\n%-10s",
                type_name(types[base]), signif_name(&so), "model");
        for (int j = 0; j < ncol; j++) fprintf(hout, " %26s", head[j]);
        fprintf(hout, "\n");
        for (int i = 0; i < nt; i++) {
            if (i == base) continue;
            fprintf(hout, "%-10s", type_name(types[i]));
            for (int j = 0; j < ncol; j++)
                fprintf(hout, " %26s", isnan(dif[i][j].diff) ? "n/a" : signif_cell(cell, sizeof cell, &dif[i][j]));
            fprintf(hout, "\n");
        }
    }
    for (int i = 0; i < nt; i++)
        if (chain_links_inactive(&cfg, types[i])) {
            fprintf(hout, "\n");
            print_chain_note(hout, NULL);
            break;
        }
    if (o.json) {
        json_t *j = json_object();
        json_object_set_new(j, "test_rows", json_integer((json_int_t)nte));
        json_object_set_new(j, "baseline", json_string(type_name(types[base])));
        json_object_set_new(j, "signif", json_string(so.method == SIGNIF_NONE ? "none" : signif_name(&so)));
        json_t *rows = json_array();
        for (int i = 0; i < nt; i++) {
            rf_model_spec spec;
            rf_config_model_spec(&cfg, 0, NULL, 0, &spec);
            json_t *r = metrics_json(&spec, pk, &res[i]);
            json_object_set_new(r, "model", json_string(type_name(types[i])));
            json_object_set_new(r, "train_seconds", json_real(sums[i].seconds));
            json_object_set_new(r, "samples_per_sec", json_real(sums[i].samples_per_sec));
            json_t *es = json_object(), *vs = json_object();
            for (int c = 0; c < ncol; c++) {
                if (ct[c] == 2) json_object_set_new(es, cfg.tasks[ck[c]].name, json_real(val[i][c]));
                if (i != base && !isnan(dif[i][c].diff)) json_object_set_new(vs, head[c], signif_json(&dif[i][c]));
            }
            json_object_set_new(r, "es_conditional_auc", es);
            if (i != base) json_object_set_new(r, "vs_baseline", vs);
            else json_decref(vs); /* the baseline has no differences */
            json_array_append_new(rows, r);
        }
        json_object_set_new(j, "models", rows);
        if (te->truth) {
            json_t *or = json_object();
            for (int c = 0; c < ncol; c++)
                if (!isnan(orc[c])) json_object_set_new(or, ct[c] ? head[c] : cfg.tasks[ck[c]].name, json_real(orc[c]));
            json_object_set_new(j, "oracle_auc", or);
        }
        rc = write_json(j, o.json_path);
    }
    if (hout != stdout && hout != stderr) fclose(hout);
out:
    for (int i = 0; i < nt; i++) {
        free(prob[i]);
        free(cond[i]);
    }
    rf_splits_free(&sp);
    return rc;
}
