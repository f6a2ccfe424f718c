/* cli.c - option parsing, config loading, logging and printing shared by the commands. */
#include <errno.h>
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

#include "resflow/afile.h"
#include "cli.h"
#include "resflow/evalreport.h"

int g_quiet;   /* tool-level flags (tools may have state; the library has none) */
int g_verbose; /* -v: also the resolved configuration on stderr */

void log_line(void *ud, const char *line)
{
    (void)ud; /* -q silences progress, not warnings */
    if (!g_quiet || !strncmp(line, "warning:", 8)) fprintf(stderr, "%s\n", line);
}

void note(const char *fmt, ...) RF_PRINTF(1, 2);
void note(const char *fmt, ...)
{
    if (g_quiet) return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* s with control characters (a value or path from the input) shown as \xNN, not sent raw to
 * the terminal (issue #17). */
static void put_clean(FILE *fp, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == 0x7f) fprintf(fp, "\\x%02x", *p);
        else fputc(*p, fp);
}

int die(const rf_error *e)
{
    char buf[2048];
    fputs("resflow: error: ", stderr);
    put_clean(stderr, rf_error_format(e, buf, sizeof buf));
    fputc('\n', stderr);
    return e->code ? (int)e->code : 1;
}

int usage_error(const char *cmd, const char *fmt, ...) RF_PRINTF(2, 3);
int usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char msg[2048];
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "resflow %s: ", cmd);
    put_clean(stderr, msg);
    fprintf(stderr, "\nTry 'resflow %s --help'.\n", cmd);
    return RF_EUSAGE;
}

static rf_afile_lock *g_run_lock;
static void release_run_lock(void) { rf_afile_lock_release(g_run_lock); }

int check_output(const char *cmd, const char *out, const char *const *inputs, int n)
{
    for (int i = 0; i < n; i++)
        if (inputs[i] && inputs[i][0] && rf_same_file(out, inputs[i]))
            return usage_error(cmd, "the output %s is also an input of this run (%s): it would be overwritten", out,
                               inputs[i]);
    rf_error e;
    if (rf_afile_check(out, &e)) return die(&e);
    /* the output's lock for the whole run: a second run writing it fails now, not after its
     * work (released at exit, its file removed) */
    if (!g_run_lock) {
        if (rf_afile_lock_take(out, &g_run_lock, &e)) return die(&e);
        atexit(release_run_lock);
    }
    return 0;
}

/* ---- shared option handling ------------------------------------------------------------ */

enum { O_SET = 1000, O_SKIP, O_JSON, O_THREADS, O_MODELS, O_KEYS, O_HELP, O_SHOWCFG, O_REPORT, O_KEEP, O_BASELINE, O_SIGNIF, O_PRECISION };

static const struct option long_opts[] = {
    {"config", required_argument, 0, 'c'}, {"set", required_argument, 0, O_SET},
    {"model", required_argument, 0, 'm'},  {"data", required_argument, 0, 'd'},
    {"out", required_argument, 0, 'o'},    {"json", optional_argument, 0, O_JSON},
    {"quiet", no_argument, 0, 'q'},        {"skip-bad-rows", no_argument, 0, O_SKIP},
    {"threads", required_argument, 0, O_THREADS}, {"models", required_argument, 0, O_MODELS},
    {"keys", no_argument, 0, O_KEYS},      {"help", no_argument, 0, 'h'},
    {"verbose", no_argument, 0, 'v'},      {"show-config", no_argument, 0, O_SHOWCFG},
    {"report", required_argument, 0, O_REPORT}, {"keep", required_argument, 0, O_KEEP},
    {"baseline", required_argument, 0, O_BASELINE}, {"signif", required_argument, 0, O_SIGNIF},
    {"precision", required_argument, 0, O_PRECISION},
    {0, 0, 0, 0}};

int parse_precision(const char *cmd, const char *s, int *prec)
{
    if (!strcmp(s, "fp32")) *prec = RF_PREC_FP32;
    else if (!strcmp(s, "bf16")) *prec = RF_PREC_BF16;
    else if (!strcmp(s, "int8")) *prec = RF_PREC_INT8;
    else return usage_error(cmd, "--precision wants fp32, bf16 or int8, got '%s'", s);
    return 0;
}

int parse_opts(const char *cmd, int argc, char **argv, opts *o, const char *help)
{
    memset(o, 0, sizeof *o);
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "c:m:d:o:qvh", long_opts, NULL)) != -1) {
        switch (c) {
        case 'c': o->config = optarg; break;
        case O_SET:
            if (o->n_sets == 128) return usage_error(cmd, "too many --set options");
            o->sets[o->n_sets++] = optarg;
            break;
        case 'm': o->model = optarg; break;
        case 'd': o->data = optarg; break;
        case 'o': o->out = optarg; break;
        case O_JSON: /* only where the help offers it: else stdout would not be the JSON asked for */
            if (!strstr(help, "--json")) return usage_error(cmd, "--json: this command has no JSON output");
            o->json = 1;
            o->json_path = optarg;
            break;
        case 'q': g_quiet = 1; break;
        case 'v': g_verbose = 1; break;
        case O_SHOWCFG: o->show_config = 1; break;
        case O_REPORT:
        case O_KEEP: /* only where the help offers them */
            if (!strstr(help, c == O_REPORT ? "--report" : "--keep"))
                return usage_error(cmd, "%s: not an option of this command", c == O_REPORT ? "--report" : "--keep");
            *(c == O_REPORT ? &o->report : &o->keep) = optarg;
            break;
        case O_SKIP: o->skip_bad = 1; break;
        case O_THREADS: {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*end || v < 0 || v > 1024) return usage_error(cmd, "--threads wants a number, got '%s'", optarg);
            o->threads = (int)v;
            break;
        }
        case O_PRECISION: { /* only where the help offers it (predict, eval) */
            if (!strstr(help, "--precision")) return usage_error(cmd, "--precision: not an option of this command");
            int rc = parse_precision(cmd, optarg, &o->precision);
            if (rc) return rc;
            break;
        }
        case O_MODELS: o->models = optarg; break;
        case O_KEYS: o->keys = 1; break;
        case O_BASELINE:
        case O_SIGNIF:
            if (!strstr(help, c == O_SIGNIF ? "--signif" : "--baseline"))
                return usage_error(cmd, "--%s: not an option of this command", c == O_SIGNIF ? "signif" : "baseline");
            if (c == O_SIGNIF) o->signif = optarg;
            else o->baseline = optarg;
            break;
        case 'h': fputs(help, stdout); exit(0);
        default: return usage_error(cmd, "unknown option");
        }
    }
    if (optind < argc) return usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    return 0;
}

/* defaults <- file <- --set, then validate */
int load_config(const opts *o, rf_config *cfg)
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

void note_threads(const rf_config *cfg)
{
    /* the library runs train.threads itself (each call sets its own OpenMP teams, which
     * OpenBLAS's OpenMP build follows); this only reports it */
    int t = cfg->train.threads > 0 ? cfg->train.threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (t < 1) t = 1;
    const char *was = getenv("RESFLOW_BLAS_WAS");
    note("resflow %s | threads %d | BLAS %s, %s kernels%s%s%s", rf_version(), t, "OpenBLAS",
         openblas_get_corename(), was ? " (environment forced " : "", was ? was : "",
         was ? "; dropped, see RESFLOW_BLAS_CORETYPE)" : "");
}

double dataset_mb(const rf_dataset *d)
{
    if (!d) return 0;
    double b = (double)d->n * (d->F * 4 + d->D * 4 + d->K * 4 + (d->weight ? 4 : 0) + (d->group ? 8 : 0) +
                               (d->truth ? d->K * 4 : 0));
    for (int f = 0; f < d->F; f++)
        if (d->mv_off[f]) b += 8.0 * (d->n + 1) + 4.0 * d->mv_off[f][d->n];
    return b / 1e6;
}

const char *type_name(rf_model_type t)
{
    static const char *const pretty[] = {"ResFlow", "NSE", "ESMM", "Single", "SharedBot", "MoE", "MMoE",
                                         "PLE", "AITM", "ESCM2-IPW", "ESCM2-DR", "DCMT", "STEM"};
    return (unsigned)t < sizeof pretty / sizeof *pretty ? pretty[t] : rf_model_type_name(t);
}

void print_metrics(FILE *fp, const rf_model_spec *sp, const int *parent, const rf_eval_result *r)
{
    int w = 16; /* the first column: as wide as the longest task or child|parent name */
    for (int k = 0; k < sp->K; k++) {
        int l = (int)strlen(sp->tasks[k].name) + (parent[k] >= 0 ? 1 + (int)strlen(sp->tasks[parent[k]].name) : 0);
        if (l > w) w = l;
    }
    fprintf(fp, "%-*s %8s %9s %10s %10s %8s %10s\n", w, "task", "AUC", "logloss", "mean pred", "observed",
            "calib", "positives");
    for (int k = 0; k < sp->K; k++) {
        const rf_task_metrics *t = &r->task[k];
        fprintf(fp, "%-*s %8.4f %9.5f %10.5f %10.5f %8.3f %10zu\n", w, sp->tasks[k].name, t->auc, t->logloss,
                t->mean_pred, t->mean_label, t->calib, t->positives);
    }
    for (int k = 0; k < sp->K; k++) {
        if (parent[k] < 0) continue;
        char name[160];
        snprintf(name, sizeof name, "%s|%s", sp->tasks[k].name, sp->tasks[parent[k]].name);
        fprintf(fp, "%-*s %8.4f   (conditional, on the %zu rows with %s positive; p_%s > p_%s on %.2f%% of rows)\n",
                w, name, r->cond[k].auc, r->cond[k].n, sp->tasks[parent[k]].name, sp->tasks[k].name,
                sp->tasks[parent[k]].name, 100 * r->increase[k]);
    }
    const rf_regression_cfg *rg = &sp->regression;
    if (rg->target[0])
        fprintf(fp, "regression: %s of %s, MSE %.5f, RMSE %.5f, MAE %.5f on %zu rows\n",
                rg->head == RF_REG_TRADITIONAL ? "traditional head" : "expected value E(v)", rg->target, r->reg.mse,
                r->reg.rmse, r->reg.mae, r->reg.n);
}


json_t *metrics_json(const rf_model_spec *sp, const int *parent, const rf_eval_result *r)
{
    char *text = rf_eval_result_json(sp, parent, r, 17); /* the library's form (evalreport.h) */
    json_t *j = text ? json_loads(text, 0, NULL) : NULL;
    free(text);
    return j ? j : json_object();
}

int write_json(json_t *j, const char *path) { return write_json_as(j, path, JSON_INDENT(2) | JSON_REAL_PRECISION(6)); }

int write_json_as(json_t *j, const char *path, size_t flags)
{
    int rc = 0;
    if (path) {
        char *text = json_dumps(j, flags);
        rf_error e;
        rc = text ? rf_write_atomic(path, text, strlen(text), &e) : rf_errorf(&e, RF_ENOMEM, "out of memory");
        if (rc) fprintf(stderr, "resflow: error: %s\n", e.msg);
        free(text);
    } else {
        json_dumpf(j, stdout, flags);
        fputc('\n', stdout);
    }
    json_decref(j);
    return rc;
}


int chain_links_inactive(const rf_config *cfg, rf_model_type t)
{
    if (t != RF_MODEL_RESFLOW && t != RF_MODEL_ESMM) return 0;
    for (int k = 0; k < cfg->K; k++)
        if (rf_config_task_index(cfg, cfg->tasks[k].parent) >= 0) return 0;
    return 1;
}

void print_chain_note(FILE *fp, const char *dataset)
{
    fprintf(fp,
            "note: %s%sno task has a parent (tasks[].parent), so the links of ResFlow and ESMM are inactive: with "
            "no parent tasks ResFlow and ESMM reduce to NSE (their rows are NSE's)\n",
            dataset ? dataset : "", dataset ? ": " : "");
}

void show_config(const opts *o, const rf_config *cfg)
{
    if (!o->show_config && !g_verbose) return;
    char *dump = rf_config_dump(cfg);
    if (dump) fprintf(stderr, "%s", dump);
    free(dump);
}

/* One input path of the config: readable, or an error naming the absolute path it looked at,
 * the rule (relative to the working directory) and, when the file exists beside the config file,
 * that path. */
static int check_one_path(const char *key, const char *path, const char *config)
{
    if (!path[0] || access(path, R_OK) == 0) return 0;
    int er = errno;
    char cwd[4096] = "?", abs[8300], msg[32768];
    size_t o = 0;
    if (!getcwd(cwd, sizeof cwd)) snprintf(cwd, sizeof cwd, "?");
    if (path[0] == '/') snprintf(abs, sizeof abs, "%s", path);
    else snprintf(abs, sizeof abs, "%s/%s", cwd, path);
    o += (size_t)snprintf(msg, sizeof msg, "%s: cannot read %s (looked at %s: %s)", key, path, abs, strerror(er));
    if (path[0] != '/' && o < sizeof msg)
        o += (size_t)snprintf(msg + o, sizeof msg - o,
                              "; relative paths in a config are resolved against the working directory (%s)", cwd);
    const char *slash = config ? strrchr(config, '/') : NULL;
    if (path[0] != '/' && slash && o < sizeof msg) {
        char beside[8300];
        snprintf(beside, sizeof beside, "%.*s/%s", (int)(slash - config), config, path);
        if (access(beside, R_OK) == 0)
            snprintf(msg + o, sizeof msg - o, "; %s exists beside the config file: run from there or write the path as %s",
                     beside, beside);
    }
    /* the paths come from the input: control characters are shown as \xNN (as die() does) */
    fputs("resflow: error: ", stderr);
    put_clean(stderr, msg);
    fputc('\n', stderr);
    return RF_EIO;
}

int check_data_paths(const opts *o, const rf_config *cfg)
{
    const rf_data_cfg *d = &cfg->data;
    if (d->schema.cache[0] && access(d->schema.cache, R_OK) == 0) return 0; /* the cache is read instead */
    int rc = 0;
    if (strcmp(d->source, "synth")) rc = check_one_path("data.source", d->source, o->config);
    if (!rc) rc = check_one_path("data.valid", d->valid, o->config);
    if (!rc) rc = check_one_path("data.test", d->test, o->config);
    for (int j = 0; j < d->schema.njoin && !rc; j++) {
        char key[32];
        snprintf(key, sizeof key, "data.join.%d.file", j);
        rc = check_one_path(key, d->schema.join[j].path, o->config);
    }
    return rc;
}
