/* exp_runner.c - the run loop of `resflow experiment` and `resflow sweep`: which runs have an
 * up-to-date result under OUT/runs (same configuration hash), training the others one dataset
 * at a time, and the tables. docs/experiments.md describes the layout and the reuse rules.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "resflow/afile.h"
#include "cli.h"
#include "exp_runner.h"

int exp_parse_opt(const char *cmd, int c, const char *arg, exp_args *a)
{
    switch (c) {
    case 'c': a->file = arg; return 1;
    case 'o': a->out = arg; return 1;
    case XO_MODELS: a->models = arg; return 1;
    case XO_DATASETS: a->datasets = arg; return 1;
    case XO_SEEDS: a->seeds = arg; return 1;
    case XO_BASELINE: a->baseline = arg; return 1;
    case XO_SET:
        if (a->n_sets == 128) return usage_error(cmd, "too many --set options"), -1;
        a->sets[a->n_sets++] = arg;
        return 1;
    case XO_FORCE: a->force = 1; return 1;
    case XO_DRY: a->dry = 1; return 1;
    case XO_THREADS: {
        char *end;
        long v = strtol(arg, &end, 10);
        if (*end || v < 0 || v > 1024) return usage_error(cmd, "--threads wants a number, got '%s'", arg), -1;
        a->threads = (int)v;
        return 1;
    }
    case 'q': g_quiet = 1; return 1;
    default: return 0;
    }
}

rf_status exp_apply_args(rf_experiment *x, const exp_args *a, const char *default_models, const char *default_seeds,
                         rf_error *e)
{
    rf_status st = RF_OK;
    if (a->models) st = rf_experiment_pick_models(x, a->models, e);
    else if (!x->n_models) st = rf_experiment_pick_models(x, default_models, e);
    if (st) return st;
    if (a->datasets) st = rf_experiment_pick_datasets(x, a->datasets, e);
    else if (!x->n_datasets) st = rf_experiment_add_dataset(x, "synth", NULL, e);
    if (st) return st;
    if (a->seeds) st = rf_experiment_set_seeds(x, a->seeds, e);
    else if (!x->n_seeds) st = rf_experiment_set_seeds(x, default_seeds, e);
    if (!st && a->baseline) snprintf(x->baseline, sizeof x->baseline, "%s", a->baseline);
    if (!st && x->baseline[0]) { /* the baseline of the difference tables names a model of the run */
        int found = 0;
        for (int m = 0; m < x->n_models; m++) found |= !strcmp(x->models[m].name, x->baseline);
        if (!found) st = rf_errorf(e, RF_EUSAGE, "baseline '%s' is not one of the experiment's models", x->baseline);
    }
    for (int j = 0; j < a->n_sets && !st; j++) st = rf_experiment_add_override(x, a->sets[j], e);
    if (!st && a->threads) {
        char t[32];
        snprintf(t, sizeof t, "train.threads=%d", a->threads);
        st = rf_experiment_add_override(x, t, e);
    }
    return st ? st : rf_experiment_validate(x, e);
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

/* run i = (d * n_models + m) * n_seeds + s */
static void run_dms(const rf_experiment *x, int i, int *d, int *m, int *s)
{
    *s = i % x->n_seeds;
    *m = (i / x->n_seeds) % x->n_models;
    *d = i / (x->n_seeds * x->n_models);
}

static void run_path(char *buf, size_t n, const char *out, const rf_experiment *x, int i, const char *ext)
{
    int d, m, s;
    run_dms(x, i, &d, &m, &s);
    snprintf(buf, n, "%s/runs/%s/%s/seed-%" PRIu64 ".%s", out, x->datasets[d].name, x->models[m].name, x->seeds[s],
             ext);
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

/* The result of run i when its file is present, readable and of the current configuration. */
static rf_status find_result(const rf_experiment *x, const char *out, int i, uint64_t hash, rf_run_result **res,
                             rf_error *e)
{
    char path[4096];
    run_path(path, sizeof path, out, x, i, "json");
    struct stat st;
    if (stat(path, &st) != 0) return RF_OK;
    rf_run_result *rr = malloc(sizeof *rr);
    rf_error re;
    if (!rr) return rf_errorf(e, RF_ENOMEM, "out of memory");
    if (rf_run_result_read(rr, path, &re)) {
        char eb[1600];
        note("%s: unreadable (%s); running it again", path, rf_error_format(&re, eb, sizeof eb));
        free(rr);
    } else if (rr->config_hash != hash || (rr->status != RF_OK && rr->status != RF_ENUMERIC)) {
        note("%s: configuration changed; running it again", path);
        free(rr);
    } else {
        *res = rr;
    }
    return RF_OK;
}

/* Train run i on the loaded splits; write its config and result. */
static rf_status train_one(const rf_experiment *x, const char *out, int i, const rf_splits *sp, rf_config *cfg,
                           exp_runs *r, rf_error *e)
{
    int d, m, s;
    run_dms(x, i, &d, &m, &s);
    char dir[4096], path[4096];
    snprintf(dir, sizeof dir, "%s/runs/%s/%s", out, x->datasets[d].name, x->models[m].name);
    if (mkdirs(dir)) return rf_errorf(e, RF_EIO, "cannot create directory %s: %s", dir, strerror(errno));
    rf_status st = rf_experiment_config(x, d, m, s, cfg, e);
    if (st) return st;
    char *dump = rf_config_dump(cfg);
    run_path(path, sizeof path, out, x, i, "yaml");
    st = dump ? rf_write_atomic(path, dump, strlen(dump), e) : rf_errorf(e, RF_ENOMEM, "out of memory");
    if (st) {
        free(dump);
        return st;
    }
    free(dump);
    r->ran++;
    note("\n== [%d/%d] dataset %s, model %s (%s), seed %" PRIu64 " ==", r->ran, r->todo, x->datasets[d].name,
         x->models[m].name, rf_model_type_name(x->models[m].type), x->seeds[s]);
    r->res[i] = malloc(sizeof *r->res[i]);
    if (!r->res[i]) return rf_errorf(e, RF_ENOMEM, "out of memory");
    if ((st = rf_experiment_run(cfg, sp, log_line, NULL, r->res[i], e))) return st;
    run_path(path, sizeof path, out, x, i, "json");
    if ((st = rf_run_result_write(r->res[i], path, e))) return st;
    char line[1024];
    summary_line(line, sizeof line, r->res[i]);
    note("result: %s", line);
    return RF_OK;
}

rf_status exp_run_all(const rf_experiment *x, const char *out, int force, int dry, exp_runs *r, rf_error *e)
{
    memset(r, 0, sizeof *r);
    r->n = x->n_datasets * x->n_models * x->n_seeds;
    r->hash = calloc((size_t)r->n, sizeof *r->hash);
    r->res = calloc((size_t)r->n, sizeof *r->res);
    rf_config *cfg = malloc(sizeof *cfg);
    rf_status st = RF_OK;
    if (!r->hash || !r->res || !cfg) {
        st = rf_errorf(e, RF_ENOMEM, "out of memory");
        goto done;
    }
    /* every run: its configuration hash, and whether an up-to-date result exists */
    int ckpt_key = 0;
    for (int i = 0; i < r->n; i++) {
        int d, m, s;
        run_dms(x, i, &d, &m, &s);
        if ((st = rf_experiment_config(x, d, m, s, cfg, e))) goto done;
        ckpt_key |= cfg->train.checkpoint_every[0] != 0;
        r->hash[i] = rf_run_hash(cfg);
        if (!force && (st = find_result(x, out, i, r->hash[i], &r->res[i], e))) goto done;
        r->todo += !r->res[i];
    }
    note("experiment%s%s: %d dataset(s) x %d model(s) x %d seed(s) = %d runs; %d finished, %d to run; output in %s",
         x->name[0] ? " " : "", x->name, x->n_datasets, x->n_models, x->n_seeds, r->n, r->n - r->todo, r->todo, out);
    if (ckpt_key)
        fprintf(stderr, "warning: train.checkpoint_every is for resflow train: an experiment writes no checkpoints "
                        "within a run (run it again and it continues with the runs not finished)\n");
    if (dry) {
        printf("%-16s %-16s %8s  %-16s %s\n", "dataset", "model", "seed", "config hash", "status");
        for (int i = 0; i < r->n; i++) {
            int d, m, s;
            run_dms(x, i, &d, &m, &s);
            printf("%-16s %-16s %8" PRIu64 "  %016" PRIx64 " %s\n", x->datasets[d].name, x->models[m].name,
                   x->seeds[s], r->hash[i],
                   r->res[i] ? (r->res[i]->status == RF_OK ? "done" : "done (diverged)") : "to run");
        }
        goto done;
    }
    /* train what is missing, one dataset at a time (its data loaded once) */
    int per_dataset = x->n_models * x->n_seeds;
    for (int d = 0; d < x->n_datasets; d++) {
        int first = -1;
        for (int i = d * per_dataset; i < (d + 1) * per_dataset && first < 0; i++)
            if (!r->res[i]) first = i;
        if (first < 0) continue;
        int dd, m, s;
        run_dms(x, first, &dd, &m, &s);
        if ((st = rf_experiment_config(x, d, m, s, cfg, e))) goto done;
        note_threads(cfg);
        note("\n== dataset %s ==", x->datasets[d].name);
        rf_splits sp;
        memset(&sp, 0, sizeof sp);
        if ((st = rf_data_load(cfg, &sp, log_line, NULL, e))) goto done;
        note("split: train %zu | valid %zu | test %zu rows", sp.train->n, sp.valid->n, sp.test->n);
        for (int i = first; i < (d + 1) * per_dataset && !st; i++)
            if (!r->res[i]) st = train_one(x, out, i, &sp, cfg, r, e);
        rf_splits_free(&sp);
        if (st) goto done;
    }
done:
    free(cfg);
    return st;
}

rf_status exp_write_tables(const rf_experiment *x, const exp_runs *r, const char *out, char **md, rf_error *e)
{
    if (mkdirs(out)) return rf_errorf(e, RF_EIO, "cannot create directory %s: %s", out, strerror(errno));
    rf_status st = rf_experiment_write_tables(x, (const rf_run_result *const *)r->res, out, md, e);
    return st ? st : exp_write_report(x, r, out, e);
}

void exp_runs_free(exp_runs *r)
{
    for (int i = 0; r->res && i < r->n; i++) free(r->res[i]);
    free(r->res);
    free(r->hash);
    memset(r, 0, sizeof *r);
}
