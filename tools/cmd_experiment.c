/* cmd_experiment.c - resflow experiment: models x datasets x seeds, mean ± std tables.
 *
 * The experiment (docs/experiments.md) comes from a YAML file and/or the command line. Every
 * run's resolved configuration and result go under OUT/runs/DATASET/MODEL/seed-S.{yaml,json};
 * a run whose result file holds the hash of its current configuration is not trained again.
 * At the end OUT/results.{md,csv,json} are written and the Markdown is printed.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "exp_runner.h"
#include "resflow/lab/experiment.h"

static const char *experiment_help =
    "usage: resflow experiment [-c EXPERIMENT.yaml] [-o DIR] [--models LIST] [--datasets LIST]\n"
    "                          [--seeds N|LIST] [--set KEY=VALUE]... [--force] [--dry-run]\n"
    "\n"
    "Train every model on every dataset with every seed (the same backbone sizes for all models),\n"
    "evaluate on each dataset's test split and write mean ± std tables like the paper's Table 4\n"
    "(AUC of every task, the conditional AUC of every child task, on simulator data with\n"
    "counterfactual labels its entire-space AUC ('es ctcvr|ctr'), and MSE/RMSE/MAE of runs with a\n"
    "regression target) to DIR/results.md, .csv and .json, and DIR/report.html (the tables and\n"
    "a plot per dataset on one HTML page, docs/report.md), with each run's resolved config and\n"
    "result under DIR/runs/DATASET/MODEL/seed-S.*.\n"
    "Runs whose result file matches their current resolved config (hash) are not redone, so an\n"
    "interrupted or extended experiment continues where it stopped. Format: docs/experiments.md.\n"
    "\n"
    "  -c, --config FILE     experiment file (YAML: name, out, seeds, models, datasets, set, backbone,\n"
    "                        baseline)\n"
    "  -o, --out DIR         output directory (default: the file's out:, else experiment-results)\n"
    "      --models LIST     models to run: names from the file, or model types (NAME=TYPE to rename);\n"
    "                        default: the file's list, else every implemented model.type\n"
    "      --datasets LIST   datasets to run: names from the file, or NAME=CONFIG.yaml; without a file\n"
    "                        a bare NAME is the built-in simulator (default: one dataset, 'synth')\n"
    "      --seeds N|LIST    N seeds (1..N) or a list of train.seed values (default: the file's, else 5)\n"
    "      --set KEY=VALUE   override a config key in every run (repeatable; wins over the file)\n"
    "      --baseline NAME   the model the others are compared with in the 'difference' table (paired\n"
    "                        by seed: mean and 95% t-interval, * = significant; default: the file's\n"
    "                        baseline:, else the first model)\n"
    "      --force           train every run again, even when its result is up to date\n"
    "      --dry-run         list the runs and whether each is done; train nothing\n"
    "      --threads N       threads per run (not part of a run's identity)\n"
    "  -q, --quiet           no progress output (warnings and errors only)\n"
    "  -h, --help            this help\n";

static const struct option xopts[] = {EXP_LONG_OPTIONS, {0, 0, 0, 0}};

/* The default model list: every model.type that builds, in the order of the paper's tables. */
static const char *const DEFAULT_ORDER[] = {"single", "nse", "shared_bottom", "moe", "mmoe", "ple", "aitm", "stem",
                                            "esmm", "escm2_ipw", "escm2_dr", "dcmt", "resflow"};

static int model_builds(const char *type)
{
    rf_config cfg;
    rf_config_default(&cfg);
    cfg.model.type = (rf_model_type)rf_model_type_parse(type);
    rf_field f;
    memset(&f, 0, sizeof f);
    snprintf(f.name, sizeof f.name, "f");
    f.vocab = 4;
    rf_model *m = NULL;
    rf_error e;
    int ok = (int)cfg.model.type >= 0 && rf_config_create_model(&cfg, 1, &f, 0, &m, &e) == RF_OK;
    rf_model_free(m);
    return ok;
}

/* Under the table: datasets whose tasks have no parent, where ResFlow and ESMM reduce to NSE. */
static void note_chains(const rf_experiment *x)
{
    rf_config *cfg = malloc(sizeof *cfg);
    if (!cfg) return;
    for (int d = 0; d < x->n_datasets; d++)
        for (int m = 0; m < x->n_models; m++) {
            rf_error e;
            if (rf_experiment_config(x, d, m, 0, cfg, &e) || !chain_links_inactive(cfg, cfg->model.type)) continue;
            fputc('\n', stdout);
            print_chain_note(stdout, x->datasets[d].name);
            break;
        }
    free(cfg);
}

int cmd_experiment(int argc, char **argv)
{
    exp_args a;
    memset(&a, 0, sizeof a);
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "c:o:qh", xopts, NULL)) != -1) {
        if (c == 'h') {
            fputs(experiment_help, stdout);
            exit(0);
        }
        int h = exp_parse_opt("experiment", c, optarg, &a);
        if (h < 0) return RF_EUSAGE;
        if (!h) return usage_error("experiment", "unknown option");
    }
    if (optind < argc) return usage_error("experiment", "unexpected argument '%s'", argv[optind]);

    rf_error e;
    rf_error_clear(&e);
    rf_experiment *x = rf_experiment_new();
    if (!x) {
        fprintf(stderr, "resflow: error: out of memory\n");
        return RF_ENOMEM;
    }
    int rc = 0;
    exp_runs runs;
    memset(&runs, 0, sizeof runs);
    char *md = NULL;
    char all[512] = ""; /* the default model list: every model.type that builds */
    for (size_t j = 0; j < sizeof DEFAULT_ORDER / sizeof *DEFAULT_ORDER; j++)
        if (model_builds(DEFAULT_ORDER[j]))
            snprintf(all + strlen(all), sizeof all - strlen(all), "%s%s", all[0] ? "," : "", DEFAULT_ORDER[j]);
    if (a.file && rf_experiment_load_file(x, a.file, &e)) goto fail;
    if (exp_apply_args(x, &a, all, "5", &e)) goto fail;
    const char *out = a.out ? a.out : x->out[0] ? x->out : "experiment-results";

    if (exp_run_all(x, out, a.force, a.dry, &runs, &e)) goto fail;
    if (a.dry) goto done;

    /* the tables */
    if (exp_write_tables(x, &runs, out, &md, &e)) goto fail;
    if (!g_quiet) fputc('\n', stderr);
    fputs(md, stdout);
    note_chains(x);
    note("\nwrote %s/results.md, results.csv, results.json, report.html (%d runs trained now, %d reused)", out, runs.ran,
         runs.n - runs.todo);
    goto done;
fail:
    rc = die(&e);
done:
    exp_runs_free(&runs);
    free(md);
    rf_experiment_free(x);
    return rc;
}
