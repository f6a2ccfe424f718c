/* exp_plan.c - resolving an experiment's runs: the configuration of run (dataset, model,
 * seed), validating every run before anything trains, and a run's identity (rf_run_hash)
 * (contract in include/resflow/lab/exp_spec.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "resflow/lab/exp_spec.h"
#include "resflow/pipeline.h"
#include "core/sbuf.h"

/* ---- resolving runs ------------------------------------------------------------------------------ */

static rf_status apply_sets(const rf_experiment *x, rf_config *cfg, const rf_exp_set *s, int n, const char *what,
                            rf_error *err)
{
    for (int i = 0; i < n; i++) {
        rf_status st = rf_config_set(cfg, s[i].text, err);
        if (!st) continue;
        if (s[i].line > 0) { /* from the file: name the place of the value */
            char msg[sizeof err->msg];
            snprintf(msg, sizeof msg, "%s", err->msg);
            return rf_error_at(err, st, x->source, s[i].line, s[i].col, "%s %s", what, msg);
        }
        return st;
    }
    return RF_OK;
}

rf_status rf_experiment_config(const rf_experiment *x, int d, int m, int s, rf_config *cfg, rf_error *err)
{
    if (d < 0 || d >= x->n_datasets || m < 0 || m >= x->n_models || s < 0 || s >= x->n_seeds)
        return rf_errorf(err, RF_EINTERNAL, "run index out of range");
    const rf_exp_dataset *ds = &x->datasets[d];
    const rf_exp_model *md = &x->models[m];
    rf_config_default(cfg);
    rf_status st;
    char what[160];
    if (ds->config[0] && (st = rf_config_load_file(cfg, ds->config, err))) return st;
    snprintf(what, sizeof what, "dataset %s:", ds->name);
    if ((st = apply_sets(x, cfg, ds->sets, ds->n_sets, what, err))) return st;
    if ((st = apply_sets(x, cfg, x->sets, x->n_sets, "set:", err))) return st;
    if ((st = apply_sets(x, cfg, x->backbone, x->n_backbone, "backbone:", err))) return st;
    snprintf(what, sizeof what, "model %s:", md->name);
    if ((st = apply_sets(x, cfg, md->sets, md->n_sets, what, err))) return st;
    if ((st = apply_sets(x, cfg, x->extra, x->n_extra, "", err))) return st;
    cfg->model.type = md->type;
    cfg->train.seed = x->seeds[s];
    if ((st = rf_config_validate(cfg, err))) {
        char msg[sizeof err->msg];
        snprintf(msg, sizeof msg, "%s", err->msg);
        return rf_errorf(err, st, "dataset %s, model %s: %s", ds->name, md->name, msg);
    }
    rf_schema_from_tasks(cfg);
    return RF_OK;
}

rf_status rf_experiment_validate(const rf_experiment *x, rf_error *err)
{
    if (x->n_datasets < 1) return rf_errorf(err, RF_EUSAGE, "the experiment has no datasets");
    if (x->n_models < 1) return rf_errorf(err, RF_EUSAGE, "the experiment has no models");
    if (x->n_seeds < 1) return rf_errorf(err, RF_EUSAGE, "the experiment has no seeds");
    rf_config *cfg = malloc(sizeof *cfg);
    if (!cfg) return rf_errorf(err, RF_ENOMEM, "out of memory");
    rf_status st = RF_OK;
    for (int d = 0; d < x->n_datasets && !st; d++)
        for (int m = 0; m < x->n_models && !st; m++)
            for (int s = 0; s < x->n_seeds && !st; s++) st = rf_experiment_config(x, d, m, s, cfg, err);
    free(cfg);
    return st;
}

/* Append "section<TAB>line\n" for every line of a config dump (section: the last unindented
 * line, e.g. "model:"). */
static void qualified_lines(sbuf *b, const char *dump, int (*keep)(const char *sec, const char *line, void *ud),
                            void *ud)
{
    char sec[128] = "";
    for (const char *p = dump; *p;) {
        const char *e = strchr(p, '\n');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        char line[2048];
        if (n >= sizeof line) n = sizeof line - 1;
        memcpy(line, p, n);
        line[n] = '\0';
        if (line[0] && line[0] != ' ' && line[0] != '#') snprintf(sec, sizeof sec, "%.127s", line);
        if (keep(sec, line, ud)) {
            sb_puts(b, sec);
            sb_puts(b, "\t");
            sb_puts(b, line);
            sb_puts(b, "\n");
        }
        p = e ? e + 1 : p + n;
    }
}

static int keep_all(const char *sec, const char *line, void *ud)
{
    (void)sec, (void)line, (void)ud;
    return 1;
}

/* Keep a line unless the defaults' dump has it (the task list is always kept whole). */
static int keep_changed(const char *sec, const char *line, void *ud)
{
    const char *defaults = ud;
    if (!strcmp(sec, "tasks:")) return 1;
    char q[2300];
    snprintf(q, sizeof q, "\n%s\t%s\n", sec, line);
    return strstr(defaults, q) == NULL;
}

uint64_t rf_run_hash(const rf_config *cfg)
{
    rf_config *c = malloc(sizeof *c), *def = malloc(sizeof *def);
    if (!c || !def) {
        free(c);
        free(def);
        return 0;
    }
    *c = *cfg; /* how a run executes is not what it is: no threads, no log cadence */
    rf_config_default(def);
    c->train.threads = def->train.threads;
    c->train.log_every = def->train.log_every;
    char *d1 = rf_config_dump(c), *d0 = rf_config_dump(def);
    free(c);
    free(def);
    uint64_t h = 0;
    sbuf q0 = {0}, q1 = {0};
    if (d0 && d1) {
        sb_puts(&q0, "\n");
        qualified_lines(&q0, d0, keep_all, NULL);
        if (!q0.oom) qualified_lines(&q1, d1, keep_changed, q0.p);
        if (!q0.oom && !q1.oom) h = XXH64(q1.p ? q1.p : "", q1.len, 0);
    }
    free(d0);
    free(d1);
    free(q0.p);
    free(q1.p);
    return h;
}
