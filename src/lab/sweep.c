/* sweep.c - parameter sweeps as experiments (include/resflow/lab/sweep.h): expanding the models or
 * datasets once per value, collecting one curve per base item, writing CSV, Markdown and SVG.
 *
 * Expansion edits the experiment's public item arrays. It follows exp_spec.c's ownership
 * rules: an item's sets array and each set's text are malloc'ed and owned by the experiment
 * (rf_experiment_free frees them with free()).
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resflow/afile.h"
#include "resflow/lab/plot.h"
#include "resflow/lab/sweep.h"

static void trim_copy(char *dst, size_t n, const char *s, size_t len)
{
    while (len && isspace((unsigned char)*s)) s++, len--;
    while (len && isspace((unsigned char)s[len - 1])) len--;
    if (len >= n) len = n - 1;
    memcpy(dst, s, len);
    dst[len] = '\0';
}

static int has_prefix(const char *s, const char *p) { return strncmp(s, p, strlen(p)) == 0; }

rf_status rf_sweep_init(rf_sweep *sw, const char *key, const char *values, rf_error *err)
{
    memset(sw, 0, sizeof *sw);
    if (!key || strlen(key) >= sizeof sw->key) return rf_errorf(err, RF_EUSAGE, "sweep: no key, or a key too long");
    trim_copy(sw->key, sizeof sw->key, key, strlen(key));
    if (!sw->key[0]) return rf_errorf(err, RF_EUSAGE, "sweep: empty key (e.g. --key model.emb_dim)");
    for (const char *p = sw->key; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '.' && *p != '_')
            return rf_errorf(err, RF_EUSAGE, "sweep: bad key \"%s\" (a config key like model.emb_dim)", sw->key);
    if (!strcmp(sw->key, "model.type"))
        return rf_errorf(err, RF_EUSAGE, "sweep: model.type cannot be swept (list the models instead: --models)");
    if (!strcmp(sw->key, "train.seed"))
        return rf_errorf(err, RF_EUSAGE, "sweep: train.seed cannot be swept (it is the experiment's seeds: --seeds)");
    sw->data_level = has_prefix(sw->key, "data.") || !strcmp(sw->key, "data") || has_prefix(sw->key, "synth.") ||
                     !strcmp(sw->key, "synth") || has_prefix(sw->key, "tasks");
    if (!values) return rf_errorf(err, RF_EUSAGE, "sweep: no values (e.g. --values 4,8,16)");
    sw->numeric = 1;
    const char *p = values;
    for (;;) {
        const char *c = strchr(p, ',');
        size_t len = c ? (size_t)(c - p) : strlen(p);
        if (sw->n_values == RF_SWEEP_MAX_VALUES)
            return rf_errorf(err, RF_EUSAGE, "sweep: more than %d values", RF_SWEEP_MAX_VALUES);
        char *v = sw->value[sw->n_values];
        trim_copy(v, RF_SWEEP_VALUE_MAX, p, len);
        if (!v[0]) return rf_errorf(err, RF_EUSAGE, "sweep: empty value in \"%s\"", values);
        if (len >= RF_SWEEP_VALUE_MAX)
            return rf_errorf(err, RF_EUSAGE, "sweep: value \"%.*s\" longer than %d characters", (int)len, p,
                             RF_SWEEP_VALUE_MAX - 1);
        for (int i = 0; i < sw->n_values; i++)
            if (!strcmp(sw->value[i], v)) return rf_errorf(err, RF_EUSAGE, "sweep: value %s is listed twice", v);
        char *end;
        errno = 0;
        double x = strtod(v, &end);
        sw->x[sw->n_values] = (!*end && !errno && isfinite(x)) ? x : NAN;
        if (isnan(sw->x[sw->n_values])) sw->numeric = 0;
        sw->n_values++;
        if (!c) break;
        p = c + 1;
    }
    return RF_OK;
}

rf_status rf_sweep_set_metric(rf_sweep *sw, const char *spec, rf_error *err)
{
    static const char *const names[] = {"auc", "cond_auc", "logloss", "mse"};
    const char *colon = strchr(spec, ':');
    size_t n = colon ? (size_t)(colon - spec) : strlen(spec);
    if (!strcmp(spec, "mse")) { /* the regression target's test MSE: no task */
        sw->metric = RF_SWEEP_MSE;
        sw->task[0] = '\0';
        return RF_OK;
    }
    for (int i = 0; i < 3; i++) {
        if (strlen(names[i]) != n || strncmp(spec, names[i], n)) continue;
        const char *task = colon ? colon + 1 : "";
        if (strlen(task) >= sizeof sw->task) return rf_errorf(err, RF_EUSAGE, "--metric: task name too long");
        sw->metric = (rf_sweep_metric)i;
        snprintf(sw->task, sizeof sw->task, "%s", task);
        return RF_OK;
    }
    return rf_errorf(err, RF_EUSAGE, "--metric \"%s\": expected auc:TASK, cond_auc:TASK, logloss:TASK or mse", spec);
}

void rf_sweep_metric_label(const rf_sweep *sw, char *buf, size_t n)
{
    const char *t = sw->task[0] ? sw->task : "last task";
    if (sw->metric == RF_SWEEP_MSE) snprintf(buf, n, "test MSE of the regression target");
    else if (sw->metric == RF_SWEEP_AUC) snprintf(buf, n, "%s AUC", t);
    else if (sw->metric == RF_SWEEP_COND_AUC) snprintf(buf, n, "%s conditional AUC", t);
    else snprintf(buf, n, "%s logloss", t);
}

/* ---- expansion ---------------------------------------------------------------------------------- */

/* The items being expanded, model or dataset, seen through their common fields. */
typedef struct {
    unsigned char *items; /* x->models or x->datasets */
    size_t size, off_n_sets, off_sets;
    int *n;
} items_ref;

_Static_assert(offsetof(rf_exp_model, name) == 0 && offsetof(rf_exp_dataset, name) == 0, "names first");

static char *item_name(const items_ref *r, int i) { return (char *)(r->items + (size_t)i * r->size); }
static int *item_n_sets(const items_ref *r, int i) { return (int *)(r->items + (size_t)i * r->size + r->off_n_sets); }
static rf_exp_set **item_sets(const items_ref *r, int i)
{
    return (rf_exp_set **)(r->items + (size_t)i * r->size + r->off_sets);
}

static void free_sets(rf_exp_set *s, int n)
{
    for (int i = 0; i < n; i++) free(s[i].text);
    free(s);
}

/* The copy's name: BASE+KEY_VALUE (or BASE+LEAF_VALUE when that is too long), characters
 * outside [A-Za-z0-9_.+-] as '_'. */
static rf_status copy_name(char *out, const char *base, const char *key, const char *value, rf_error *err)
{
    const char *leaf = strrchr(key, '.');
    leaf = leaf ? leaf + 1 : key;
    char buf[512];
    snprintf(buf, sizeof buf, "%s+%s_%s", base, key, value);
    if (strlen(buf) >= RF_EXP_NAME_MAX) snprintf(buf, sizeof buf, "%s+%s_%s", base, leaf, value);
    if (strlen(buf) >= RF_EXP_NAME_MAX)
        return rf_errorf(err, RF_EUSAGE, "sweep: the name \"%s\" is longer than %d characters (shorter names or values)",
                         buf, RF_EXP_NAME_MAX - 1);
    for (char *p = buf; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("_.+-", *p)) *p = '_';
    memcpy(out, buf, strlen(buf) + 1); /* < RF_EXP_NAME_MAX: checked above */
    return RF_OK;
}

/* Item i's overrides followed by "key=value". */
static rf_status sets_plus(const rf_exp_set *src, int n, const char *assignment, rf_exp_set **out, rf_error *err)
{
    rf_exp_set *a = calloc((size_t)n + 1, sizeof *a);
    if (!a) return rf_errorf(err, RF_ENOMEM, "out of memory");
    for (int i = 0; i <= n; i++) {
        const char *t = i < n ? src[i].text : assignment;
        a[i].text = malloc(strlen(t) + 1);
        if (!a[i].text) {
            free_sets(a, i);
            return rf_errorf(err, RF_ENOMEM, "out of memory");
        }
        strcpy(a[i].text, t);
        if (i < n) a[i].line = src[i].line, a[i].col = src[i].col;
    }
    *out = a;
    return RF_OK;
}

static rf_status expand_items(const items_ref *r, rf_sweep *sw, rf_error *err)
{
    int nb = *r->n, nn = nb * sw->n_values;
    if (nn > RF_EXP_MAX_ITEMS)
        return rf_errorf(err, RF_EUSAGE, "sweep: %d %s x %d values = %d, more than %d", nb,
                         sw->data_level ? "datasets" : "models", sw->n_values, nn, RF_EXP_MAX_ITEMS);
    unsigned char *fresh = calloc((size_t)nn, r->size);
    if (!fresh) return rf_errorf(err, RF_ENOMEM, "out of memory");
    items_ref f = {fresh, r->size, r->off_n_sets, r->off_sets, NULL};
    rf_status st = RF_OK;
    int made = 0;
    for (int b = 0; b < nb && !st; b++)
        for (int v = 0; v < sw->n_values && !st; v++, made++) {
            char assignment[sizeof sw->key + RF_SWEEP_VALUE_MAX + 2];
            snprintf(assignment, sizeof assignment, "%s=%s", sw->key, sw->value[v]);
            memcpy(fresh + (size_t)made * r->size, r->items + (size_t)b * r->size, r->size);
            *item_sets(&f, made) = NULL;
            *item_n_sets(&f, made) = 0;
            st = copy_name(item_name(&f, made), item_name(r, b), sw->key, sw->value[v], err);
            for (int i = 0; i < made && !st; i++)
                if (!strcmp(item_name(&f, i), item_name(&f, made)))
                    st = rf_errorf(err, RF_EUSAGE, "sweep: two copies are both named \"%s\" (values too alike)",
                                   item_name(&f, i));
            if (!st) st = sets_plus(*item_sets(r, b), *item_n_sets(r, b), assignment, item_sets(&f, made), err);
            if (!st) *item_n_sets(&f, made) = *item_n_sets(r, b) + 1;
        }
    if (st) {
        for (int i = 0; i < made; i++) free_sets(*item_sets(&f, i), *item_n_sets(&f, i));
        free(fresh);
        return st;
    }
    sw->n_base = nb;
    for (int b = 0; b < nb; b++) {
        snprintf(sw->base[b], RF_EXP_NAME_MAX, "%s", item_name(r, b));
        free_sets(*item_sets(r, b), *item_n_sets(r, b));
    }
    memcpy(r->items, fresh, (size_t)nn * r->size);
    *r->n = nn;
    free(fresh);
    return RF_OK;
}

/* Index of (base dataset bd, base model bm, value v) in the expanded experiment. */
static void run_index(const rf_experiment *x, const rf_sweep *sw, int bd, int bm, int v, int *d, int *m)
{
    (void)x;
    *d = sw->data_level ? bd * sw->n_values + v : bd;
    *m = sw->data_level ? bm : bm * sw->n_values + v;
}

static int n_base_datasets(const rf_experiment *x, const rf_sweep *sw)
{
    return sw->data_level ? sw->n_base : x->n_datasets;
}

static int n_base_models(const rf_experiment *x, const rf_sweep *sw) { return sw->data_level ? x->n_models : sw->n_base; }

static rf_status check_task(const rf_config *cfg, const rf_sweep *sw, const char *dataset, rf_error *err)
{
    if (sw->metric == RF_SWEEP_MSE) {
        if (!cfg->regression.target[0])
            return rf_errorf(err, RF_EUSAGE, "sweep --metric mse: dataset %s has no regression target (regression.target)",
                             dataset);
        return RF_OK;
    }
    int k = rf_config_task_index(cfg, sw->task);
    if (k < 0) {
        char list[512] = "";
        for (int i = 0; i < cfg->K; i++)
            snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "", cfg->tasks[i].name);
        return rf_errorf(err, RF_EUSAGE, "sweep --metric: no task \"%s\" in dataset %s (tasks: %s)", sw->task, dataset,
                         list);
    }
    if (sw->metric == RF_SWEEP_COND_AUC && !cfg->tasks[k].parent[0])
        return rf_errorf(err, RF_EUSAGE, "sweep --metric cond_auc:%s: task %s has no parent", sw->task, sw->task);
    return RF_OK;
}

/* Before the expansion: base configuration of every base item (seed 0, first item of the other
 * axis) with key=value applied last, validated. want[b * n_values + v] receives its dump. */
static rf_status expected_dumps(const rf_experiment *x, rf_sweep *sw, rf_config *cfg, char **want, rf_error *err)
{
    int nb = sw->data_level ? x->n_datasets : x->n_models;
    for (int b = 0; b < nb; b++)
        for (int v = 0; v < sw->n_values; v++) {
            rf_status st = rf_experiment_config(x, sw->data_level ? b : 0, sw->data_level ? 0 : b, 0, cfg, err);
            char assignment[sizeof sw->key + RF_SWEEP_VALUE_MAX + 2];
            snprintf(assignment, sizeof assignment, "%s=%s", sw->key, sw->value[v]);
            if (!st) st = rf_config_set(cfg, assignment, err);
            if (!st) st = rf_config_validate(cfg, err);
            if (st) {
                char msg[sizeof err->msg];
                snprintf(msg, sizeof msg, "%s", err ? err->msg : "");
                return rf_errorf(err, st, "sweep %s=%s: %s", sw->key, sw->value[v], msg);
            }
            rf_schema_from_tasks(cfg);
            if (!sw->task[0] && sw->metric != RF_SWEEP_MSE) snprintf(sw->task, sizeof sw->task, "%s", cfg->tasks[cfg->K - 1].name);
            want[b * sw->n_values + v] = rf_config_dump(cfg);
            if (!want[b * sw->n_values + v]) return rf_errorf(err, RF_ENOMEM, "out of memory");
        }
    return RF_OK;
}

rf_status rf_sweep_expand(rf_experiment *x, rf_sweep *sw, rf_error *err)
{
    if (sw->expanded) return rf_errorf(err, RF_EINTERNAL, "sweep: already expanded");
    if (sw->n_values < 1) return rf_errorf(err, RF_EUSAGE, "sweep: no values");
    rf_status st = rf_experiment_validate(x, err); /* the experiment itself first: its own errors */
    if (st) return st;
    int nb = sw->data_level ? x->n_datasets : x->n_models, nw = nb * sw->n_values;
    rf_config *cfg = malloc(sizeof *cfg);
    char **want = calloc((size_t)nw, sizeof *want);
    if (!cfg || !want) {
        st = rf_errorf(err, RF_ENOMEM, "out of memory");
        goto out;
    }
    if ((st = expected_dumps(x, sw, cfg, want, err))) goto out;
    items_ref r = sw->data_level ? (items_ref){(unsigned char *)x->datasets, sizeof x->datasets[0],
                                               offsetof(rf_exp_dataset, n_sets), offsetof(rf_exp_dataset, sets),
                                               &x->n_datasets}
                                 : (items_ref){(unsigned char *)x->models, sizeof x->models[0],
                                               offsetof(rf_exp_model, n_sets), offsetof(rf_exp_model, sets),
                                               &x->n_models};
    if ((st = expand_items(&r, sw, err))) goto out;
    sw->expanded = 1;
    if ((st = rf_experiment_validate(x, err))) goto out;
    /* no later layer undoes the swept value, and the metric's task exists everywhere */
    for (int b = 0; b < nb && !st; b++)
        for (int v = 0; v < sw->n_values && !st; v++) {
            int d, m;
            run_index(x, sw, sw->data_level ? b : 0, sw->data_level ? 0 : b, v, &d, &m);
            if ((st = rf_experiment_config(x, d, m, 0, cfg, err))) break;
            char *got = rf_config_dump(cfg);
            if (!got) {
                st = rf_errorf(err, RF_ENOMEM, "out of memory");
                break;
            }
            if (strcmp(got, want[b * sw->n_values + v]))
                st = rf_errorf(err, RF_EUSAGE,
                               "sweep: %s is also set by a later layer of the experiment (its set:, backbone:, a "
                               "model's set or --set), which would undo the sweep; remove it there",
                               sw->key);
            free(got);
        }
    for (int d = 0; d < x->n_datasets && !st; d++) {
        if ((st = rf_experiment_config(x, d, 0, 0, cfg, err))) break;
        st = check_task(cfg, sw, x->datasets[d].name, err);
    }
out:
    for (int i = 0; want && i < nw; i++) free(want[i]);
    free(want);
    free(cfg);
    return st;
}

/* ---- results ------------------------------------------------------------------------------------ */

static double metric_of(const rf_run_result *r, const rf_sweep *sw)
{
    if (!r || r->status != RF_OK) return NAN;
    if (sw->metric == RF_SWEEP_MSE) return r->mse;
    for (int k = 0; k < r->K; k++) {
        if (strcmp(r->task[k], sw->task)) continue;
        return sw->metric == RF_SWEEP_AUC ? r->auc[k] : sw->metric == RF_SWEEP_COND_AUC ? r->cond_auc[k] : r->logloss[k];
    }
    return NAN;
}

rf_status rf_sweep_collect(const rf_experiment *x, const rf_sweep *sw, const rf_run_result *const *res,
                           rf_sweep_series **out, int *n_out, rf_error *err)
{
    *out = NULL;
    *n_out = 0;
    if (!sw->expanded) return rf_errorf(err, RF_EINTERNAL, "sweep: not expanded");
    int nbd = n_base_datasets(x, sw), nbm = n_base_models(x, sw), n = nbd * nbm;
    rf_sweep_series *s = calloc((size_t)n, sizeof *s);
    if (!s) return rf_errorf(err, RF_ENOMEM, "out of memory");
    for (int bd = 0; bd < nbd; bd++)
        for (int bm = 0; bm < nbm; bm++) {
            rf_sweep_series *c = &s[bd * nbm + bm];
            int d, m;
            run_index(x, sw, bd, bm, 0, &d, &m);
            snprintf(c->dataset, sizeof c->dataset, "%s", sw->data_level ? sw->base[bd] : x->datasets[bd].name);
            snprintf(c->model, sizeof c->model, "%s", sw->data_level ? x->models[bm].name : sw->base[bm]);
            if (nbd > 1) snprintf(c->label, sizeof c->label, "%s (%s)", c->model, c->dataset);
            else snprintf(c->label, sizeof c->label, "%s", c->model);
            for (int v = 0; v < sw->n_values; v++) {
                run_index(x, sw, bd, bm, v, &d, &m);
                for (int k = 0; k < x->n_seeds; k++) {
                    const rf_run_result *r = res[((size_t)d * x->n_models + m) * x->n_seeds + k];
                    c->v[v][k] = metric_of(r, sw);
                    if (r) c->runs[v]++, c->diverged[v] += r->status == RF_ENUMERIC;
                }
                c->stat[v] = rf_stat_of(c->v[v], x->n_seeds);
            }
        }
    *out = s;
    *n_out = n;
    return RF_OK;
}

static rf_status write_text(const char *dir, const char *name, const char *text, size_t len, rf_error *err)
{
    char path[4096];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, name) >= sizeof path)
        return rf_errorf(err, RF_EIO, "path too long: %s", dir);
    return rf_write_atomic(path, text, len, err);
}

static void csv(FILE *fp, const rf_experiment *x, const rf_sweep *sw, const rf_sweep_series *s, int n)
{
    static const char *const mname[] = {"auc", "cond_auc", "logloss", "mse"};
    fputs("key,dataset,model,value,x,metric,task,mean,std,n,runs,diverged,values\n", fp);
    for (int j = 0; j < n; j++)
        for (int v = 0; v < sw->n_values; v++) {
            const rf_stat *st = &s[j].stat[v];
            fprintf(fp, "%s,%s,%s,%s,%.17g,%s,%s,%.17g,%.17g,%d,%d,%d,", sw->key, s[j].dataset, s[j].model, sw->value[v],
                    sw->numeric ? sw->x[v] : (double)v, mname[sw->metric], sw->task, st->mean, st->std, st->n,
                    s[j].runs[v], s[j].diverged[v]);
            for (int k = 0; k < x->n_seeds; k++) fprintf(fp, "%s%.17g", k ? ";" : "", s[j].v[v][k]);
            fputc('\n', fp);
        }
}

static void md(FILE *fp, const rf_experiment *x, const rf_sweep *sw, const rf_sweep_series *s, int n)
{
    char label[128];
    rf_sweep_metric_label(sw, label, sizeof label);
    fprintf(fp, "%s (test split) against %s: mean ± std over %d seed%s; best mean of each column in bold.\n\n", label,
            sw->key, x->n_seeds, x->n_seeds == 1 ? "" : "s");
    fprintf(fp, "| %s |", sw->key);
    for (int j = 0; j < n; j++) fprintf(fp, " %s |", s[j].label);
    fputs("\n|---|", fp);
    for (int j = 0; j < n; j++) fputs("---|", fp);
    fputc('\n', fp);
    for (int v = 0; v < sw->n_values; v++) {
        fprintf(fp, "| %s |", sw->value[v]);
        for (int j = 0; j < n; j++) {
            const rf_stat *st = &s[j].stat[v];
            int best = st->n > 0;
            for (int u = 0; u < sw->n_values && best; u++) {
                const rf_stat *o = &s[j].stat[u];
                if (o->n > 0 && (sw->metric == RF_SWEEP_LOGLOSS || sw->metric == RF_SWEEP_MSE ? o->mean < st->mean : o->mean > st->mean)) best = 0;
            }
            if (!st->n) {
                if (s[j].diverged[v]) fprintf(fp, " NaN (%d/%d diverged) |", s[j].diverged[v], x->n_seeds);
                else fputs(" - |", fp);
                continue;
            }
            fprintf(fp, " %s%.4f", best ? "**" : "", st->mean);
            if (st->n >= 2) fprintf(fp, " ± %.4f", st->std);
            fputs(best ? "**" : "", fp);
            if (st->n < x->n_seeds) fprintf(fp, " (%d/%d)", st->n, x->n_seeds);
            fputs(" |", fp);
        }
        fputc('\n', fp);
    }
    if (sw->n_values < 2) return;
    /* each value against the first, paired by seed (exp_paired.c) */
    fprintf(fp, "\nDifference to %s = %s, paired by seed: mean [95 %% Student-t interval over the seeds]; "
                "`*` = the interval excludes 0 (significant).\n\n| %s |", sw->key, sw->value[0], sw->key);
    for (int j = 0; j < n; j++) fprintf(fp, " %s |", s[j].label);
    fputs("\n|---|", fp);
    for (int j = 0; j < n; j++) fputs("---|", fp);
    fputc('\n', fp);
    for (int v = 1; v < sw->n_values; v++) {
        fprintf(fp, "| %s |", sw->value[v]);
        for (int j = 0; j < n; j++) {
            char b[96];
            rf_paired_diff pd = rf_paired_seed_diff(s[j].v[v], s[j].v[0], x->n_seeds);
            rf_paired_diff_format(b, sizeof b, &pd);
            fprintf(fp, " %s |", b);
        }
        fputc('\n', fp);
    }
}

static rf_status plot(const rf_experiment *x, const rf_sweep *sw, const rf_sweep_series *s, int n, const char *dir,
                      int log_x, rf_error *err)
{
    double xs[RF_SWEEP_MAX_VALUES];
    const char *labels[RF_SWEEP_MAX_VALUES];
    for (int v = 0; v < sw->n_values; v++) {
        xs[v] = sw->numeric ? sw->x[v] : (double)v;
        labels[v] = sw->value[v];
    }
    double *ys = malloc(sizeof(double) * 2 * RF_SWEEP_MAX_VALUES * (size_t)(n ? n : 1));
    rf_plot_series *ps = calloc((size_t)(n ? n : 1), sizeof *ps);
    if (!ys || !ps) {
        free(ys);
        free(ps);
        return rf_errorf(err, RF_ENOMEM, "out of memory");
    }
    for (int j = 0; j < n; j++) {
        double *y = ys + (size_t)j * 2 * RF_SWEEP_MAX_VALUES, *e = y + RF_SWEEP_MAX_VALUES;
        for (int v = 0; v < sw->n_values; v++) y[v] = s[j].stat[v].mean, e[v] = s[j].stat[v].std;
        ps[j] = (rf_plot_series){s[j].label, sw->n_values, xs, y, e};
    }
    char label[128], title[512], xlabel[300], ylabel[200];
    rf_sweep_metric_label(sw, label, sizeof label);
    snprintf(title, sizeof title, "%s against %s", label, sw->key);
    snprintf(xlabel, sizeof xlabel, "%s%s", sw->key, log_x ? " (log scale)" : "");
    snprintf(ylabel, sizeof ylabel, "%s: mean ± std over %d seed%s", label, x->n_seeds, x->n_seeds == 1 ? "" : "s");
    rf_plot_opts o = {title, xlabel, ylabel, log_x, 0, 0, 0, NULL, NULL};
    if (!sw->numeric || sw->n_values <= 12) o.n_xticks = sw->n_values, o.xtick = xs, o.xtick_label = labels;
    char path[4096];
    snprintf(path, sizeof path, "%s/sweep.svg", dir);
    rf_status st = rf_plot_svg_write(&o, ps, n, path, err);
    free(ys);
    free(ps);
    return st;
}

rf_status rf_sweep_check_log_x(const rf_sweep *sw, rf_error *err)
{
    if (!sw->numeric) return rf_errorf(err, RF_EUSAGE, "sweep: a log x axis needs numeric values");
    for (int v = 0; v < sw->n_values; v++)
        if (!(sw->x[v] > 0)) return rf_errorf(err, RF_EUSAGE, "sweep: a log x axis needs values > 0, got %s", sw->value[v]);
    return RF_OK;
}

rf_status rf_sweep_write(const rf_experiment *x, const rf_sweep *sw, const rf_sweep_series *s, int n,
                         const char *dir, int log_x, char **md_out, rf_error *err)
{
    if (md_out) *md_out = NULL;
    rf_status lst = log_x ? rf_sweep_check_log_x(sw, err) : RF_OK;
    if (lst) return lst;
    char *text[2] = {NULL, NULL};
    size_t len[2] = {0, 0};
    rf_status st = RF_OK;
    for (int i = 0; i < 2 && !st; i++) {
        FILE *fp = open_memstream(&text[i], &len[i]);
        if (!fp) {
            st = rf_errorf(err, RF_ENOMEM, "out of memory");
            break;
        }
        if (i == 0) csv(fp, x, sw, s, n);
        else md(fp, x, sw, s, n);
        if (fclose(fp) || !text[i]) st = rf_errorf(err, RF_ENOMEM, "out of memory");
    }
    if (!st) st = write_text(dir, "sweep.csv", text[0], len[0], err);
    if (!st) st = write_text(dir, "sweep.md", text[1], len[1], err);
    if (!st) st = plot(x, sw, s, n, dir, log_x, err);
    free(text[0]);
    if (!st && md_out) *md_out = text[1];
    else free(text[1]);
    return st;
}
