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
    "usage: resflow synth [-c CONFIG.yaml] [--set synth.KEY=VALUE]... -o OUT.csv|-\n"
    "\n"
    "Write a simulated log (see docs/simulator.md) as CSV with a header: the categorical ids,\n"
    "the numeric features, the labels, the request/list id (group) and, per label, its true\n"
    "probability or expectation (p_<label>; the oracle of every metric). Presets (synth.preset):\n"
    "  ecom      (default) e-commerce search log from docs/simulator.md's story: catalogue,\n"
    "            users, queries, retrieval and a production ranker, position and exposure bias;\n"
    "            click -> order (synth.tasks 2) or click -> cart -> order (3), and the\n"
    "            counterfactual labels cf_order (cf_cart): would order if clicked, on every row\n"
    "  search    the older e-commerce search log: click -> order (synth.tasks 2) or click -> cart ->\n"
    "            order (3), position bias, Zipf popularity; synth.order_counts adds the units\n"
    "            ordered per row (order_count), the weight of Weighted Recall@K\n"
    "  kuairand  short-video feed: is_click -> long_view -> is_like -> is_follow/is_comment/\n"
    "            is_forward, play_time_ms (configs/synth_kuairand.yaml)\n"
    "  rating    movie ratings 1..5 and rating_ge2..5 (configs/synth_rating.yaml)\n"
    "Keys: synth.rows, synth.seed, synth.users/items/queries, synth.ctr, synth.cvr,\n"
    "synth.cart_rate, synth.list_len (`resflow config --keys`). The same options and seed give\n"
    "the same file.\n"
    "\n"
    "  -c, --config FILE     YAML config (its synth.* keys)\n"
    "      --set KEY=VALUE   override one key (repeatable)\n"
    "  -o, --out FILE        the CSV to write (required; - = the standard output)\n"
    "  -q, --quiet           no progress output (warnings and errors only)\n"
    "  -h, --help            this help\n";

int cmd_synth(int argc, char **argv)
{
    opts o;
    int rc = parse_opts("synth", argc, argv, &o, synth_help);
    if (rc) return rc;
    if (!o.out) return usage_error("synth", "--out is required");
    int to_stdout = !strcmp(o.out, "-");
    rf_config cfg;
    if ((rc = load_config(&o, &cfg))) return rc;
    if (!to_stdout && (rc = check_output("synth", o.out, (const char *[]){o.config}, 1))) return rc;
    rf_error e;
    rf_dataset *ds = NULL;
    cfg.data.synth.threads = cfg.train.threads;
    if (rf_synth_generate(&cfg.data.synth, &ds, &e)) return die(&e);
    if (to_stdout ? rf_dataset_write_csv_stream(ds, stdout, &e) : rf_dataset_write_csv(ds, o.out, &e)) rc = die(&e);
    else note("wrote %zu rows to %s", ds->n, to_stdout ? "the standard output" : o.out);
    rf_dataset_free(ds);
    return rc;
}

static const char *config_help =
    "usage: resflow config [-c CONFIG.yaml] [--set KEY=VALUE]... | --keys | -m MODEL\n"
    "\n"
    "Print the resolved configuration (defaults <- file <- --set) as YAML, every known key\n"
    "with its type, default and meaning (--keys), or the configuration stored in a model file.\n"
    "\n"
    "  -c, --config FILE     YAML experiment config\n"
    "      --set KEY=VALUE   override one key (repeatable)\n"
    "      --keys            every key: type, default, meaning\n"
    "  -m, --model FILE      the configuration stored in this model file\n"
    "  -h, --help            this help\n";

int cmd_config(int argc, char **argv)
{
    opts o;
    int rc = parse_opts("config", argc, argv, &o, config_help);
    if (rc) return rc;
    char *s;
    if (o.keys) {
        s = rf_config_describe();
    } else if (o.model) {
        if (o.config || o.n_sets) /* issue #17: --set was silently ignored */
            return usage_error("config", "-m prints the configuration stored in the model file as it is; "
                                         "-c and --set cannot be combined with it");
        rf_loaded_model lm;
        rf_error e;
        if (rf_model_load(o.model, &lm, &e)) return die(&e);
        s = rf_config_dump(&lm.cfg);
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

