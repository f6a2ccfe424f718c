/* cmd_sweep.c - resflow sweep: one config key over a list of values, models x seeds, and a plot
 * of a test metric against the value (the paper's Fig. 3).
 *
 * The sweep is an experiment (include/resflow/lab/sweep.h expands its models, or its datasets for
 * data.* / synth.* / tasks keys, once per value), run by the same loop as `resflow experiment`
 * (exp_runner.c): runs are stored under OUT/runs and reused when repeated. Writes
 * OUT/sweep.{svg,csv,md} and the experiment tables OUT/results.{md,csv,json}; prints sweep.md.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "exp_runner.h"
#include "resflow/lab/sweep.h"

static const char *sweep_help =
    "usage: resflow sweep --key KEY --values V1,V2,... [-c EXPERIMENT_OR_CONFIG.yaml] [-o DIR]\n"
    "                     [--models LIST] [--datasets LIST] [--seeds N|LIST] [--metric auc:TASK]\n"
    "                     [--log-x] [--set KEY=VALUE]... [--force] [--dry-run] [--threads N] [-q]\n"
    "\n"
    "Train every model with every value of one config key and every seed, evaluate on the test\n"
    "split and plot a metric against the value (the paper's Fig. 3): DIR/sweep.svg (one line per\n"
    "model, error bars = mean ± sample std over seeds), DIR/sweep.csv and DIR/sweep.md (printed),\n"
    "and the experiment tables DIR/results.{md,csv,json} with every metric of every run.\n"
    "Runs are stored and reused like `resflow experiment`'s (docs/experiments.md): repeating a\n"
    "sweep trains nothing, an added value or seed trains only its runs. Keys of data.*, synth.*\n"
    "and tasks (e.g. tasks.ctcvr.pos_weight) give one dataset per value. docs/results-sweeps.md.\n"
    "\n"
    "      --key KEY         the config key to sweep: model.emb_dim, train.lr,\n"
    "                        tasks.ctcvr.pos_weight, ...\n"
    "      --values LIST     comma-separated values: 4,8,16,32,64 or 1e-4,1e-3,1e-2 (or words:\n"
    "                        relu,prelu)\n"
    "      --metric M        what to plot: auc:TASK, cond_auc:TASK, logloss:TASK, or mse (the test MSE\n"
    "                        of the regression target; docs/regression.md) (default: the AUC of the\n"
    "                        last task, e.g. ctcvr)\n"
    "      --log-x           log-scale x axis (every value must be a number > 0)\n"
    "  -c, --config FILE     an experiment file (models, datasets, seeds, set, backbone), or a plain\n"
    "                        config file: then the sweep's one dataset\n"
    "  -o, --out DIR         output directory (default: the experiment file's out:, else sweep-results)\n"
    "      --models LIST     models: names from the file, or model types (default: the file's,\n"
    "                        else resflow)\n"
    "      --datasets LIST   datasets: names from the file, or NAME=CONFIG.yaml (default: the file's,\n"
    "                        else the built-in simulator)\n"
    "      --seeds N|LIST    N seeds (1..N) or a list of train.seed values (default: the file's, else 3)\n"
    "      --set KEY=VALUE   override a config key in every run (repeatable; not the swept key)\n"
    "      --force           train every run again, even when its result is up to date\n"
    "                        (the table also gives each value's difference to the first value,\n"
    "                        paired by seed, with a 95% t-interval; * = significant)\n"
    "      --dry-run         list the runs and whether each is done; train nothing\n"
    "      --threads N       threads per run (not part of a run's identity)\n"
    "  -q, --quiet           no progress output (warnings and errors only)\n"
    "  -h, --help            this help\n";

enum { S_KEY = XO_NEXT, S_VALUES, S_METRIC, S_LOGX };

static const struct option sopts[] = {EXP_LONG_OPTIONS,
                                      {"key", required_argument, 0, S_KEY},
                                      {"values", required_argument, 0, S_VALUES},
                                      {"metric", required_argument, 0, S_METRIC},
                                      {"log-x", no_argument, 0, S_LOGX},
                                      {0, 0, 0, 0}};

/* -c FILE: an experiment file, or else a plain config file (the sweep's one dataset, named after
 * the file). */
static rf_status load_file(rf_experiment **xp, const exp_args *a, rf_error *e)
{
    rf_error ex, ce;
    if (!rf_experiment_load_file(*xp, a->file, &ex)) return RF_OK;
    if (ex.code == RF_EIO) return *e = ex, ex.code;
    rf_experiment_free(*xp); /* start again from an empty experiment */
    rf_experiment *x = *xp = rf_experiment_new();
    if (!x) return rf_errorf(e, RF_ENOMEM, "out of memory");
    rf_config *cfg = malloc(sizeof *cfg);
    if (!cfg) return rf_errorf(e, RF_ENOMEM, "out of memory");
    rf_config_default(cfg);
    rf_status st = rf_config_load_file(cfg, a->file, &ce);
    free(cfg);
    char b1[1600], b2[1600];
    if (st)
        return rf_errorf(e, RF_EUSAGE, "%s is neither an experiment file nor a config file:\n  as an experiment: %s\n"
                                       "  as a config: %s",
                         a->file, rf_error_format(&ex, b1, sizeof b1), rf_error_format(&ce, b2, sizeof b2));
    if (a->datasets)
        return rf_errorf(e, RF_EUSAGE, "--datasets with a config file (%s): list datasets in an experiment file",
                         a->file);
    char name[RF_EXP_NAME_MAX];
    const char *base = strrchr(a->file, '/');
    snprintf(name, sizeof name, "%s", base ? base + 1 : a->file);
    char *dot = strrchr(name, '.');
    if (dot && dot != name) *dot = '\0';
    for (char *p = name; *p; p++)
        if (!strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.+-", *p)) *p = '_';
    if (name[0] == '.' || name[0] == '-' || !name[0]) name[0] = 'd';
    return rf_experiment_add_dataset(x, name, a->file, e);
}

int cmd_sweep(int argc, char **argv)
{
    exp_args a;
    memset(&a, 0, sizeof a);
    const char *key = NULL, *values = NULL, *metric = NULL;
    int log_x = 0;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "c:o:qh", sopts, NULL)) != -1) {
        switch (c) {
        case 'h': fputs(sweep_help, stdout); exit(0);
        case S_KEY: key = optarg; break;
        case S_VALUES: values = optarg; break;
        case S_METRIC: metric = optarg; break;
        case S_LOGX: log_x = 1; break;
        default: {
            int h = exp_parse_opt("sweep", c, optarg, &a);
            if (h < 0) return RF_EUSAGE;
            if (!h) return usage_error("sweep", "unknown option");
        }
        }
    }
    if (optind < argc) return usage_error("sweep", "unexpected argument '%s'", argv[optind]);
    if (!key) return usage_error("sweep", "--key is required (e.g. --key model.emb_dim)");
    if (!values) return usage_error("sweep", "--values is required (e.g. --values 4,8,16,32,64)");

    rf_error e;
    rf_error_clear(&e);
    rf_sweep *sw = calloc(1, sizeof *sw);
    rf_experiment *x = rf_experiment_new();
    exp_runs runs;
    memset(&runs, 0, sizeof runs);
    rf_sweep_series *series = NULL;
    char *md = NULL, *tables = NULL;
    int rc = 0, n_series = 0;
    if (!sw || !x) {
        rf_errorf(&e, RF_ENOMEM, "out of memory");
        goto fail;
    }
    if (rf_sweep_init(sw, key, values, &e)) goto fail;
    if (metric && rf_sweep_set_metric(sw, metric, &e)) goto fail;
    if (log_x && rf_sweep_check_log_x(sw, &e)) goto fail;
    if (a.file && load_file(&x, &a, &e)) goto fail;
    if (exp_apply_args(x, &a, "resflow", "3", &e)) goto fail;
    if (rf_sweep_expand(x, sw, &e)) goto fail;
    const char *out = a.out ? a.out : x->out[0] ? x->out : "sweep-results";
    note("sweep %s over %d value(s): %s", sw->key, sw->n_values, values);

    if (exp_run_all(x, out, a.force, a.dry, &runs, &e)) goto fail;
    if (a.dry) goto done;
    if (exp_write_tables(x, &runs, out, &tables, &e)) goto fail;
    if (rf_sweep_collect(x, sw, (const rf_run_result *const *)runs.res, &series, &n_series, &e)) goto fail;
    if (rf_sweep_write(x, sw, series, n_series, out, log_x, &md, &e)) goto fail;
    if (!g_quiet) fputc('\n', stderr);
    fputs(md, stdout);
    note("\nwrote %s/sweep.svg, sweep.csv, sweep.md and results.md, .csv, .json, report.html (%d runs trained now, %d reused)", out,
         runs.ran, runs.n - runs.todo);
    goto done;
fail:
    rc = die(&e);
done:
    exp_runs_free(&runs);
    free(series);
    free(md);
    free(tables);
    rf_experiment_free(x);
    free(sw);
    return rc;
}
