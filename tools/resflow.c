/* resflow.c - the command-line tool: train, eval, predict, compare, synth, config, fusion, probe.
 *
 * Thin layer over libresflow: parses options (getopt_long), loads the configuration, calls the
 * library and prints. The only place that exits. Exit codes are rf_status values:
 * 0 ok, 1 usage/config, 2 data, 3 I/O, 4 numeric, 5 memory, 6 file format.
 * Progress and logs go to stderr; results (tables, JSON, predictions) to stdout or files.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <cblas.h>

#include "blas_env.h"
#include "cli.h"

/* ---- main ----------------------------------------------------------------------------------- */

static const char *main_help =
    "usage: resflow COMMAND [options]      (resflow COMMAND --help for details)\n"
    "\n"
    "Multi-task ranking models for search and recommendation: ResFlow (KDD'24), NSE, ESMM.\n"
    "\n"
    "commands:\n"
    "  compare   train several models on the same data, print a Table-4 style AUC table\n"
    "            (with no options: the built-in simulator, NSE vs ESMM vs ResFlow)\n"
    "  experiment  models x datasets x seeds: mean ± std AUC tables (Markdown, CSV, JSON);\n"
    "            finished runs are reused when the command is repeated\n"
    "  sweep     one config key over a list of values (x models x seeds): a test metric against\n"
    "            the value, plotted with error bars (SVG, CSV, Markdown; paper Fig. 3)\n"
    "  train     train one model from a YAML config (+ --set overrides), save it\n"
    "  eval      evaluate a saved model (per-task AUC, logloss, calibration; ranking metrics\n"
    "            WR@K, Recall@K, NDCG@K, List AUC, GAUC per query) or a predictions file\n"
    "  report    one self-contained HTML page about a model: test metrics, calibration per task\n"
    "            (training curves too with 'resflow train --report DIR')\n"
    "  predict   write per-task scores (and the stored fused score) for every row\n"
    "  fusion    search score-fusion weights maximising WR@K on validation, store them in the model\n"
    "  probe     dump hidden features, learned residuals and residual logits of rows grouped\n"
    "            A/B/C along the task chain; Fig. 4-style SVG heatmaps\n"
    "  serve     serve a model over HTTP/JSON: score a context and its candidates per request\n"
    "  index     a twin-tower model's item vectors for top-K serving (an .rfi item index)\n"
    "  synth     write a simulated log (search, short-video feed or ratings) as CSV\n"
    "  prepare   parse, join and encode the data once into a binary cache (data.cache)\n"
    "  config    print the resolved config, all keys (--keys), or a model's config\n"
    "\n"
    "  --version  print the version\n"
    "\n"
    "exit codes: 0 ok, 1 usage/config, 2 data, 3 I/O, 4 numeric (non-finite loss), 5 memory,\n"
    "            6 bad model file\n";

static int run(int argc, char **argv)
{
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
    if (!strcmp(cmd, "experiment")) return cmd_experiment(argc, argv);
    if (!strcmp(cmd, "sweep")) return cmd_sweep(argc, argv);
    if (!strcmp(cmd, "synth")) return cmd_synth(argc, argv);
    if (!strcmp(cmd, "config")) return cmd_config(argc, argv);
    if (!strcmp(cmd, "prepare")) return cmd_prepare(argc, argv);
    if (!strcmp(cmd, "fusion")) return cmd_fusion(argc, argv);
    if (!strcmp(cmd, "probe")) return cmd_probe(argc, argv);
    if (!strcmp(cmd, "serve")) return cmd_serve(argc, argv);
    if (!strcmp(cmd, "report")) return cmd_report(argc, argv);
    if (!strcmp(cmd, "index")) return cmd_index(argc, argv);
    fprintf(stderr, "resflow: unknown command '%s'\n\n%s", cmd, main_help);
    return RF_EUSAGE;
}

int main(int argc, char **argv)
{
    rf_blas_env_setup(argv);
    int rc = run(argc, argv);
    /* Every result printed on stdout was buffered: a full disk or a closed pipe shows here (the
     * stream's error flag is sticky, so a failed write in the middle is seen too). */
    errno = 0;
    int bad = fflush(stdout) != 0 || ferror(stdout);
    int e = errno;
    if (fclose(stdout) != 0 && !bad) {
        bad = 1;
        e = errno;
    }
    if (bad) {
        fprintf(stderr, "resflow: error: cannot write the standard output: %s\n", e ? strerror(e) : "write error");
        if (!rc) rc = RF_EIO;
    }
    return rc;
}
