/* exp_runner.h - the run loop shared by `resflow experiment` and `resflow sweep` (tools/ only:
 * prints progress with note()). */
#ifndef RESFLOW_EXP_RUNNER_H
#define RESFLOW_EXP_RUNNER_H

#include <getopt.h>

#include "resflow/lab/experiment.h"

/* The options that `experiment` and `sweep` share. */
typedef struct {
    const char *file, *out, *models, *datasets, *seeds, *baseline;
    const char *sets[128];
    int n_sets, force, dry, threads;
} exp_args;

enum { XO_MODELS = 1000, XO_DATASETS, XO_SEEDS, XO_SET, XO_FORCE, XO_DRY, XO_THREADS, XO_BASELINE, XO_NEXT };

#define EXP_LONG_OPTIONS                                                                                       \
    {"config", required_argument, 0, 'c'}, {"out", required_argument, 0, 'o'},                                \
        {"models", required_argument, 0, XO_MODELS}, {"datasets", required_argument, 0, XO_DATASETS},         \
        {"seeds", required_argument, 0, XO_SEEDS}, {"set", required_argument, 0, XO_SET},                     \
        {"force", no_argument, 0, XO_FORCE}, {"dry-run", no_argument, 0, XO_DRY},                             \
        {"threads", required_argument, 0, XO_THREADS}, {"quiet", no_argument, 0, 'q'},                        \
        {"baseline", required_argument, 0, XO_BASELINE},                                                       \
        {"help", no_argument, 0, 'h'}

/* Handle getopt's result c when it is a shared option (-h excepted): 1 handled, 0 not a shared
 * option, -1 bad value (the message is printed; exit with RF_EUSAGE). */
int exp_parse_opt(const char *cmd, int c, const char *arg, exp_args *a);
/* Apply --models (else, when x has none, default_models), --datasets (else one dataset
 * "synth" when x has none), --seeds (else default_seeds when x has none), --set and --threads,
 * then validate the experiment. */
rf_status exp_apply_args(rf_experiment *x, const exp_args *a, const char *default_models, const char *default_seeds,
                         rf_error *e);

typedef struct {
    int n;               /* runs: n_datasets * n_models * n_seeds */
    int todo, ran;       /* runs without an up-to-date result at the start; trained now */
    uint64_t *hash;      /* rf_run_hash of every run */
    rf_run_result **res; /* res[(d * n_models + m) * n_seeds + s]; NULL = no result */
} exp_runs;

/* Create a directory and its parents; 0 or -1 (errno set). */
int mkdirs(const char *path);
/* Read the up-to-date results under OUT/runs (none with force), then train the missing runs one
 * dataset at a time (its data loaded once), writing OUT/runs/D/M/seed-S.{yaml,json}. With dry,
 * list every run with its hash and status on stdout and train nothing. *r is filled even on
 * failure (free it with exp_runs_free). */
rf_status exp_run_all(const rf_experiment *x, const char *out, int force, int dry, exp_runs *r, rf_error *e);
/* OUT/results.{md,csv,json}; *md receives the Markdown (malloc'ed). */
rf_status exp_write_tables(const rf_experiment *x, const exp_runs *r, const char *out, char **md, rf_error *e);
/* OUT/report.html: per dataset the test metrics (mean ± std over seeds) as a table and a plot
 * (exp_report.c). */
rf_status exp_write_report(const rf_experiment *x, const exp_runs *r, const char *out, rf_error *e);
void exp_runs_free(exp_runs *r);

#endif
