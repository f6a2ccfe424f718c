/* cmd_synth.c - resflow synth / config: write the simulated log; print configurations. */
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

/* ---- synth / config ------------------------------------------------------------------------ */

static const char *synth_help =
    "usage: resflow synth [-c CONFIG.yaml] [--set synth.KEY=VALUE]... -o OUT.csv\n"
    "\n"
    "Write the simulated e-commerce search log (see docs/simulator.md) as CSV: categorical ids,\n"
    "labels, the query-list id and the true probabilities. Keys: synth.rows, synth.seed,\n"
    "synth.tasks (2 or 3), synth.ctr, synth.cvr, synth.users/items/queries, synth.list_len.\n";

int cmd_synth(int argc, char **argv)
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

int cmd_config(int argc, char **argv)
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

