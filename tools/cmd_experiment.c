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
#include "resflow/experiment.h"

static const char *experiment_help =
    "usage: resflow experiment [-c EXPERIMENT.yaml] [-o DIR] [--models LIST] [--datasets LIST]\n"
    "                          [--seeds N|LIST] [--set KEY=VALUE]... [--force] [--dry-run]\n"
    "\n"
    "Train every model on every dataset with every seed (the same backbone sizes for all models),\n"
    "evaluate on each dataset's test split and write mean ± std tables like the paper's Table 4\n"
    "(AUC of every task, the conditional AUC of every child task, and MSE/RMSE/MAE of runs with a\n"
    "regression target) to DIR/results.md, .csv and\n"
    ".json, with each run's resolved config and result under DIR/runs/DATASET/MODEL/seed-S.*.\n"
    "Runs whose result file matches their current resolved config (hash) are not redone, so an\n"
    "interrupted or extended experiment continues where it stopped. Format: docs/experiments.md.\n"
    "\n"
    "  -c, --config FILE     experiment file (YAML: name, out, seeds, models, datasets, set, backbone)\n"
    "  -o, --out DIR         output directory (default: the file's out:, else experiment-results)\n"
    "      --models LIST     models to run: names from the file, or model types (NAME=TYPE to rename);\n"
    "                        default: the file's list, else every implemented model.type\n"
    "      --datasets LIST   datasets to run: names from the file, or NAME=CONFIG.yaml; without a file\n"
    "                        a bare NAME is the built-in simulator (default: one dataset, 'synth')\n"
    "      --seeds N|LIST    N seeds (1..N) or a list of train.seed values (default: the file's, else 5)\n"
    "      --set KEY=VALUE   override a config key in every run (repeatable; wins over the file)\n"
    "      --force           train every run again, even when its result is up to date\n"
    "      --dry-run         list the runs and whether each is done; train nothing\n"
    "      --threads N       threads per run (not part of a run's identity)\n"
    "  -q, --quiet           no progress output\n";

enum { X_MODELS = 1000, X_DATASETS, X_SEEDS, X_SET, X_FORCE, X_DRY, X_THREADS };

static const struct option xopts[] = {
    {"config", required_argument, 0, 'c'}, {"out", required_argument, 0, 'o'},
    {"models", required_argument, 0, X_MODELS}, {"datasets", required_argument, 0, X_DATASETS},
    {"seeds", required_argument, 0, X_SEEDS}, {"set", required_argument, 0, X_SET},
    {"force", no_argument, 0, X_FORCE}, {"dry-run", no_argument, 0, X_DRY},
    {"threads", required_argument, 0, X_THREADS}, {"quiet", no_argument, 0, 'q'},
    {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};

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
    int ok = (int)cfg.model.type >= 0 && rf_model_create(&cfg, 1, &f, 0, &m, &e) == RF_OK;
    rf_model_free(m);
    return ok;
}

int mkdirs(const char *path)
{
    char buf[4096];
    if (strlen(path) >= sizeof buf) return -1;
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(buf, 0777) && errno != EEXIST) return -1;
        *p = '/';
    }
    if (mkdir(buf, 0777) && errno != EEXIST) return -1;
    struct stat st;
    return stat(buf, &st) == 0 && S_ISDIR(st.st_mode) ? 0 : -1;
}

int write_file(const char *path, const char *text)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *fp = fopen(tmp, "wb");
    if (!fp) return -1;
    size_t n = strlen(text);
    int bad = fwrite(text, 1, n, fp) != n;
    bad |= fclose(fp) != 0;
    if (bad || rename(tmp, path)) {
        remove(tmp);
        return -1;
    }
    return 0;
}

typedef struct {
    int d, m, s;
    uint64_t hash;
    int done;          /* result up to date */
    rf_run_result *r;  /* NULL until there is a result */
} run_t;

static void run_path(char *buf, size_t n, const char *out, const rf_experiment *x, const run_t *r, const char *ext)
{
    snprintf(buf, n, "%s/runs/%s/%s/seed-%" PRIu64 ".%s", out, x->datasets[r->d].name, x->models[r->m].name,
             x->seeds[r->s], ext);
}

/* "ctcvr AUC 0.8061, ctcvr|ctr 0.6422" for the progress line */
static void summary_line(char *buf, size_t n, const rf_run_result *r)
{
    if (r->status != RF_OK) {
        snprintf(buf, n, "diverged (%s)", r->error);
        return;
    }
    int o = 0;
    for (int k = 0; k < r->K && o >= 0 && (size_t)o < n; k++)
        if (!r->task_mse[k]) o += snprintf(buf + o, n - (size_t)o, "%s%s %.4f", o ? ", " : "AUC ", r->task[k], r->auc[k]);
    for (int k = 0; k < r->K && o >= 0 && (size_t)o < n; k++)
        if (r->parent[k] >= 0)
            o += snprintf(buf + o, n - (size_t)o, ", %s|%s %.4f", r->task[k], r->task[r->parent[k]], r->cond_auc[k]);
    if (r->target[0] && o >= 0 && (size_t)o < n) o += snprintf(buf + o, n - (size_t)o, ", MSE %.4f", r->mse);
    if (o >= 0 && (size_t)o < n) snprintf(buf + o, n - (size_t)o, " (%.1f s)", r->seconds);
}

int cmd_experiment(int argc, char **argv)
{
    const char *file = NULL, *out = NULL, *models = NULL, *datasets = NULL, *seeds = NULL;
    const char *sets[128];
    int n_sets = 0, force = 0, dry = 0, threads = 0;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "c:o:qh", xopts, NULL)) != -1) {
        switch (c) {
        case 'c': file = optarg; break;
        case 'o': out = optarg; break;
        case X_MODELS: models = optarg; break;
        case X_DATASETS: datasets = optarg; break;
        case X_SEEDS: seeds = optarg; break;
        case X_SET:
            if (n_sets == 128) return usage_error("experiment", "too many --set options");
            sets[n_sets++] = optarg;
            break;
        case X_FORCE: force = 1; break;
        case X_DRY: dry = 1; break;
        case X_THREADS: {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*end || v < 0 || v > 1024) return usage_error("experiment", "--threads wants a number, got '%s'", optarg);
            threads = (int)v;
            break;
        }
        case 'q': g_quiet = 1; break;
        case 'h': fputs(experiment_help, stdout); exit(0);
        default: return usage_error("experiment", "unknown option");
        }
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
    run_t *runs = NULL;
    rf_run_result **res = NULL;
    rf_config *cfg = malloc(sizeof *cfg);
    char *md = NULL;
    int nr = 0, todo = 0, i = 0, ran = 0;
    if (!cfg) {
        rf_errorf(&e, RF_ENOMEM, "out of memory");
        goto fail;
    }
    if (file && rf_experiment_load_file(x, file, &e)) goto fail;
    if (models) {
        if (rf_experiment_pick_models(x, models, &e)) goto fail;
    } else if (!x->n_models) {
        for (size_t j = 0; j < sizeof DEFAULT_ORDER / sizeof *DEFAULT_ORDER; j++)
            if (model_builds(DEFAULT_ORDER[j]) && rf_experiment_add_model(x, DEFAULT_ORDER[j], &e)) goto fail;
    }
    if (datasets) {
        if (rf_experiment_pick_datasets(x, datasets, &e)) goto fail;
    } else if (!x->n_datasets && rf_experiment_add_dataset(x, "synth", NULL, &e)) {
        goto fail;
    }
    if (seeds) {
        if (rf_experiment_set_seeds(x, seeds, &e)) goto fail;
    } else if (!x->n_seeds && rf_experiment_set_seeds(x, "5", &e)) {
        goto fail;
    }
    for (int j = 0; j < n_sets; j++)
        if (rf_experiment_add_override(x, sets[j], &e)) goto fail;
    if (threads) {
        char t[32];
        snprintf(t, sizeof t, "train.threads=%d", threads);
        if (rf_experiment_add_override(x, t, &e)) goto fail;
    }
    if (rf_experiment_validate(x, &e)) goto fail;
    if (!out) out = x->out[0] ? x->out : "experiment-results";

    /* every run: its configuration hash, and whether an up-to-date result exists */
    nr = x->n_datasets * x->n_models * x->n_seeds;
    runs = calloc((size_t)nr, sizeof *runs);
    res = calloc((size_t)nr, sizeof *res);
    if (!runs || !res) {
        rf_errorf(&e, RF_ENOMEM, "out of memory");
        goto fail;
    }
    for (int d = 0; d < x->n_datasets; d++)
        for (int m = 0; m < x->n_models; m++)
            for (int s = 0; s < x->n_seeds; s++, i++) {
                run_t *r = &runs[i];
                *r = (run_t){d, m, s, 0, 0, NULL};
                if (rf_experiment_config(x, d, m, s, cfg, &e)) goto fail;
                r->hash = rf_run_hash(cfg);
                char path[4096];
                run_path(path, sizeof path, out, x, r, "json");
                struct stat st;
                if (!force && stat(path, &st) == 0) {
                    rf_run_result *rr = malloc(sizeof *rr);
                    rf_error re;
                    if (!rr) {
                        rf_errorf(&e, RF_ENOMEM, "out of memory");
                        goto fail;
                    }
                    if (rf_run_result_read(rr, path, &re)) {
                        char eb[1600];
                        note("%s: unreadable (%s); running it again", path, rf_error_format(&re, eb, sizeof eb));
                        free(rr);
                    } else if (rr->config_hash != r->hash || (rr->status != RF_OK && rr->status != RF_ENUMERIC)) {
                        note("%s: configuration changed; running it again", path);
                        free(rr);
                    } else {
                        r->done = 1;
                        r->r = rr;
                    }
                }
                todo += !r->done;
            }
    note("experiment%s%s: %d dataset(s) x %d model(s) x %d seed(s) = %d runs; %d finished, %d to run; output in %s",
         x->name[0] ? " " : "", x->name, x->n_datasets, x->n_models, x->n_seeds, nr, nr - todo, todo, out);
    if (dry) {
        printf("%-16s %-16s %8s  %-16s %s\n", "dataset", "model", "seed", "config hash", "status");
        for (i = 0; i < nr; i++)
            printf("%-16s %-16s %8" PRIu64 "  %016" PRIx64 " %s\n", x->datasets[runs[i].d].name,
                   x->models[runs[i].m].name, x->seeds[runs[i].s], runs[i].hash,
                   runs[i].done ? (runs[i].r->status == RF_OK ? "done" : "done (diverged)") : "to run");
        goto done;
    }

    /* train what is missing, one dataset at a time (its data loaded once) */
    for (int d = 0; d < x->n_datasets; d++) {
        int first = -1;
        for (i = 0; i < nr && first < 0; i++)
            if (runs[i].d == d && !runs[i].done) first = i;
        if (first < 0) continue;
        if (rf_experiment_config(x, d, runs[first].m, runs[first].s, cfg, &e)) goto fail;
        setup_threads(cfg);
        note("\n== dataset %s ==", x->datasets[d].name);
        rf_splits sp;
        memset(&sp, 0, sizeof sp);
        if (rf_data_load(cfg, &sp, log_line, NULL, &e)) goto fail;
        note("split: train %zu | valid %zu | test %zu rows", sp.train->n, sp.valid->n, sp.test->n);
        for (i = first; i < nr; i++) {
            run_t *r = &runs[i];
            if (r->d != d || r->done) continue;
            char dir[4096], path[4096];
            snprintf(dir, sizeof dir, "%s/runs/%s/%s", out, x->datasets[d].name, x->models[r->m].name);
            if (mkdirs(dir)) {
                rf_splits_free(&sp);
                rf_errorf(&e, RF_EIO, "cannot create directory %s: %s", dir, strerror(errno));
                goto fail;
            }
            if (rf_experiment_config(x, d, r->m, r->s, cfg, &e)) {
                rf_splits_free(&sp);
                goto fail;
            }
            char *dump = rf_config_dump(cfg);
            run_path(path, sizeof path, out, x, r, "yaml");
            if (!dump || write_file(path, dump)) {
                free(dump);
                rf_splits_free(&sp);
                rf_errorf(&e, RF_EIO, "cannot write %s", path);
                goto fail;
            }
            free(dump);
            ran++;
            note("\n== [%d/%d] dataset %s, model %s (%s), seed %" PRIu64 " ==", ran, todo, x->datasets[d].name,
                 x->models[r->m].name, rf_model_type_name(x->models[r->m].type), x->seeds[r->s]);
            r->r = malloc(sizeof *r->r);
            if (!r->r) {
                rf_splits_free(&sp);
                rf_errorf(&e, RF_ENOMEM, "out of memory");
                goto fail;
            }
            if (rf_experiment_run(cfg, &sp, log_line, NULL, r->r, &e)) {
                rf_splits_free(&sp);
                goto fail;
            }
            run_path(path, sizeof path, out, x, r, "json");
            if (rf_run_result_write(r->r, path, &e)) {
                rf_splits_free(&sp);
                goto fail;
            }
            char line[1024];
            summary_line(line, sizeof line, r->r);
            note("result: %s", line);
        }
        rf_splits_free(&sp);
    }

    /* the tables */
    if (mkdirs(out)) {
        rf_errorf(&e, RF_EIO, "cannot create directory %s: %s", out, strerror(errno));
        goto fail;
    }
    for (i = 0; i < nr; i++) res[i] = runs[i].r;
    if (rf_experiment_write_tables(x, (const rf_run_result *const *)res, out, &md, &e)) goto fail;
    if (!g_quiet) fputc('\n', stderr);
    fputs(md, stdout);
    note("\nwrote %s/results.md, results.csv, results.json (%d runs trained now, %d reused)", out, ran, nr - todo);
    goto done;
fail:
    rc = die(&e);
done:
    for (i = 0; runs && i < nr; i++) free(runs[i].r);
    free(runs);
    free(res);
    free(md);
    free(cfg);
    rf_experiment_free(x);
    return rc;
}
