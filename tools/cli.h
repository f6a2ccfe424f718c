/* cli.h - shared pieces of the resflow command-line tool (tools/ only: may print and exit). */
#ifndef RESFLOW_CLI_H
#define RESFLOW_CLI_H

#include <jansson.h>
#include <stdio.h>

#include "resflow/config.h"
#include "resflow/metrics.h"
#include "resflow/modelfile.h"
#include "resflow/pipeline.h"
#include "resflow/regression.h"
#include "resflow/signif.h"
#include "resflow/train.h"

typedef struct {
    const char *config;
    const char *sets[128];
    int n_sets;
    const char *model, *data, *out, *json_path, *models;
    const char *report, *keep; /* --report DIR (train), --keep COLS (predict) */
    const char *baseline, *signif; /* compare: --baseline, --signif */
    int json, skip_bad, threads, keys, show_config;
    int precision; /* --precision (predict, eval): rf_precision, fp32 by default */
} opts;

extern int g_quiet, g_verbose;
/* The resolved configuration on stderr with -v or --show-config (else nothing). */
void show_config(const opts *o, const rf_config *cfg);

void log_line(void *ud, const char *line);
void note(const char *fmt, ...) RF_PRINTF(1, 2);
/* Print the error and return its status as the exit code. */
int die(const rf_error *e);
int usage_error(const char *cmd, const char *fmt, ...) RF_PRINTF(2, 3);
/* Before the work starts: refuse an output that is one of the run's inputs (inputs[0..n), NULL
 * or "" skipped; same device and inode) or that cannot be written (rf_afile_check), then hold
 * its writer's lock until exit (rf_afile_lock_take: another run writing it fails at once). 0 or
 * the exit code, the error printed. */
int check_output(const char *cmd, const char *out, const char *const *inputs, int n);
/* A --precision value of command cmd: "fp32", "bf16" or "int8" into *prec (rf_precision); else the
 * usage error's exit code. */
int parse_precision(const char *cmd, const char *s, int *prec);
/* Parse the common options; prints help and exits 0 on --help. */
int parse_opts(const char *cmd, int argc, char **argv, opts *o, const char *help);
/* defaults <- file <- --set, validated */
int load_config(const opts *o, rf_config *cfg);
/* The config's input files (data.source unless synth, data.valid, data.test, data.join.N.file;
 * not when a readable data.cache replaces them) are readable, else an error naming the absolute
 * path looked at (paths are relative to the working directory) and the path beside the config
 * file when one exists there. 0 or the exit code (RF_EIO). */
int check_data_paths(const opts *o, const rf_config *cfg);
/* The first log line: version, threads (train.threads: the library applies it per call), BLAS. */
void note_threads(const rf_config *cfg);
double dataset_mb(const rf_dataset *d);
const char *type_name(rf_model_type t);
/* The metrics of an evaluation, per task (names from the spec, parent[k] the parent task or -1). */
void print_metrics(FILE *fp, const rf_model_spec *sp, const int *parent, const rf_eval_result *r);
json_t *metrics_json(const rf_model_spec *sp, const int *parent, const rf_eval_result *r);
/* Load o->model and the data to score: o->data, or the model's own test split (cmd_eval.c). */
int model_and_data(const opts *o, rf_loaded_model *lm, rf_dataset **ds, int with_labels);
/* 1 when model type t is a chain model (ResFlow, ESMM) and no task of cfg has a parent: its links
 * are inactive and it reduces to NSE. */
int chain_links_inactive(const rf_config *cfg, rf_model_type t);
/* The note saying so under a results table (dataset: its name, or NULL). */
void print_chain_note(FILE *fp, const char *dataset);
/* mkdir -p (exp_runner.c). 0 or -1 (errno). */
int mkdirs(const char *path);
/* Write JSON to path (via path.tmp + rename) or stdout; consumes j. */
int write_json(json_t *j, const char *path);
/* The same with jansson's dump flags. */
int write_json_as(json_t *j, const char *path, size_t flags);

/* ---- significance columns (signif_cli.c) ---- */
enum { SIGNIF_NONE = 0, SIGNIF_DELONG = 1, SIGNIF_BOOTSTRAP = 2 };
typedef struct {
    int method, reps;
    uint64_t seed;
    double level;
} signif_opts;
/* "delong" (or NULL), "bootstrap", "bootstrap:REPS", "none"; 0 or -1. */
int signif_parse(const char *s, signif_opts *so);
/* The paired test of so on one cell: a - b on the rows kept by mask. */
rf_status signif_pair(const signif_opts *so, const float *a, size_t as, const float *b, size_t bs, const float *label,
                      size_t ls, const float *mask, size_t ms, const uint64_t *group, size_t n, int threads,
                      rf_auc_diff *d, rf_error *e);
/* "+0.0023 [+0.0005,+0.0041]*" (* = the interval excludes 0) */
const char *signif_cell(char *buf, size_t cap, const rf_auc_diff *d);
const char *signif_name(const signif_opts *so);
json_t *signif_json(const rf_auc_diff *d);

int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_predict(int argc, char **argv);
int cmd_compare(int argc, char **argv);
int cmd_synth(int argc, char **argv);
int cmd_config(int argc, char **argv);
int cmd_experiment(int argc, char **argv);
int cmd_sweep(int argc, char **argv);
int cmd_prepare(int argc, char **argv);
int cmd_fusion(int argc, char **argv);
int cmd_probe(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_index(int argc, char **argv);

#endif
