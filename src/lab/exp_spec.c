/* exp_spec.c - building an experiment in memory: the object, its models, datasets, seeds and
 * overrides, picking models and datasets by name (contract in include/resflow/lab/exp_spec.h).
 * The object owns every rf_exp_set text (freed by rf_experiment_free and when a pick drops an
 * item).
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lab/exp_int.h"
#include "resflow/model.h"

/* ---- small helpers ------------------------------------------------------------------------ */

static int valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= RF_EXP_NAME_MAX || s[0] == '.' || s[0] == '-') return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && !strchr("_.+-", s[i])) return 0;
    return 1;
}

rf_status rf_exp_push_set_(rf_exp_set **arr, int *n, const char *text, long line, long col, rf_error *err)
{
    rf_exp_set *a = realloc(*arr, (size_t)(*n + 1) * sizeof *a);
    if (!a) return rf_errorf(err, RF_ENOMEM, "out of memory");
    *arr = a;
    size_t len = strlen(text);
    char *t = malloc(len + 1);
    if (!t) return rf_errorf(err, RF_ENOMEM, "out of memory");
    memcpy(t, text, len + 1);
    a[*n] = (rf_exp_set){t, line, col};
    (*n)++;
    return RF_OK;
}

static void free_sets(rf_exp_set *a, int n)
{
    for (int i = 0; i < n; i++) free(a[i].text);
    free(a);
}

/* Key of "key=value" into buf (trimmed). */
static void set_key(const char *text, char *buf, size_t n)
{
    const char *eq = strchr(text, '=');
    size_t len = eq ? (size_t)(eq - text) : strlen(text);
    while (len && isspace((unsigned char)text[len - 1])) len--;
    while (len && isspace((unsigned char)*text)) text++, len--;
    if (len >= n) len = n - 1;
    memcpy(buf, text, len);
    buf[len] = '\0';
}

static int has_prefix(const char *s, const char *p) { return strncmp(s, p, strlen(p)) == 0; }

/* Keys that no override may set (the experiment decides them), and keys only datasets may set. */
const char *rf_exp_forbidden_key_(const char *text, int dataset_level)
{
    char key[256];
    set_key(text, key, sizeof key);
    if (!strcmp(key, "model.type")) return "model.type is set by the experiment's models: list";
    if (!strcmp(key, "train.seed")) return "train.seed is set by the experiment's seeds: list";
    if (!dataset_level && (has_prefix(key, "data.") || !strcmp(key, "data") || has_prefix(key, "synth.") ||
                           !strcmp(key, "synth") || has_prefix(key, "tasks")))
        return "data.*, synth.* and tasks belong to a dataset (every run of a dataset shares its data)";
    if (!dataset_level && has_prefix(key, "regression.") && strcmp(key, "regression.head"))
        return "regression.target, .thresholds and .quantiles belong to a dataset (its labels); models may set regression.head";
    return NULL;
}

/* ---- experiment object ------------------------------------------------------------------------ */

rf_experiment *rf_experiment_new(void) { return calloc(1, sizeof(rf_experiment)); }

void rf_experiment_free(rf_experiment *x)
{
    if (!x) return;
    for (int i = 0; i < x->n_datasets; i++) free_sets(x->datasets[i].sets, x->datasets[i].n_sets);
    for (int i = 0; i < x->n_models; i++) free_sets(x->models[i].sets, x->models[i].n_sets);
    free_sets(x->sets, x->n_sets);
    free_sets(x->backbone, x->n_backbone);
    free_sets(x->extra, x->n_extra);
    free(x);
}

rf_status rf_exp_add_model_(rf_experiment *x, const char *name, const char *type, rf_error *err)
{
    int t = rf_model_type_parse(type);
    if (t < 0) return rf_errorf(err, RF_EUSAGE, "unknown model type \"%s\" (see model.type in docs/config.md)", type);
    if (!valid_name(name))
        return rf_errorf(err, RF_EUSAGE, "bad model name \"%s\" (1..%d characters of A-Z a-z 0-9 _ . + -)", name,
                         RF_EXP_NAME_MAX - 1);
    if (x->n_models == RF_EXP_MAX_ITEMS) return rf_errorf(err, RF_EUSAGE, "more than %d models", RF_EXP_MAX_ITEMS);
    for (int i = 0; i < x->n_models; i++)
        if (!strcmp(x->models[i].name, name)) return rf_errorf(err, RF_EUSAGE, "model \"%s\" is listed twice", name);
    rf_exp_model *m = &x->models[x->n_models++];
    memset(m, 0, sizeof *m);
    snprintf(m->name, sizeof m->name, "%s", name);
    m->type = (rf_model_type)t;
    return RF_OK;
}

rf_status rf_experiment_add_model(rf_experiment *x, const char *spec, rf_error *err)
{
    const char *eq = strchr(spec, '=');
    if (!eq) return rf_exp_add_model_(x, spec, spec, err);
    char name[RF_EXP_NAME_MAX];
    size_t n = (size_t)(eq - spec);
    if (n >= sizeof name) return rf_errorf(err, RF_EUSAGE, "model name too long in \"%s\"", spec);
    memcpy(name, spec, n);
    name[n] = '\0';
    return rf_exp_add_model_(x, name, eq + 1, err);
}

rf_status rf_experiment_add_dataset(rf_experiment *x, const char *name, const char *config, rf_error *err)
{
    if (!valid_name(name))
        return rf_errorf(err, RF_EUSAGE, "bad dataset name \"%s\" (1..%d characters of A-Z a-z 0-9 _ . + -)", name,
                         RF_EXP_NAME_MAX - 1);
    if (x->n_datasets == RF_EXP_MAX_ITEMS) return rf_errorf(err, RF_EUSAGE, "more than %d datasets", RF_EXP_MAX_ITEMS);
    for (int i = 0; i < x->n_datasets; i++)
        if (!strcmp(x->datasets[i].name, name)) return rf_errorf(err, RF_EUSAGE, "dataset \"%s\" is listed twice", name);
    if (config && strlen(config) >= sizeof x->datasets[0].config)
        return rf_errorf(err, RF_EUSAGE, "dataset %s: config path too long", name);
    rf_exp_dataset *d = &x->datasets[x->n_datasets++];
    memset(d, 0, sizeof *d);
    snprintf(d->name, sizeof d->name, "%s", name);
    snprintf(d->config, sizeof d->config, "%s", config ? config : "");
    return RF_OK;
}

static rf_status parse_u64(const char *s, uint64_t *v)
{
    if (!*s || !isdigit((unsigned char)*s)) return RF_EUSAGE;
    errno = 0;
    char *end;
    unsigned long long u = strtoull(s, &end, 10);
    if (errno || *end) return RF_EUSAGE;
    *v = (uint64_t)u;
    return RF_OK;
}

rf_status rf_experiment_set_seeds(rf_experiment *x, const char *spec, rf_error *err)
{
    uint64_t v;
    if (!strchr(spec, ',') && parse_u64(spec, &v) == RF_OK) {
        if (v < 1 || v > RF_EXP_MAX_SEEDS)
            return rf_errorf(err, RF_EUSAGE, "seeds: %s runs (want 1..%d, or a list of seeds)", spec, RF_EXP_MAX_SEEDS);
        x->n_seeds = (int)v;
        for (int i = 0; i < x->n_seeds; i++) x->seeds[i] = (uint64_t)i + 1;
        return RF_OK;
    }
    char buf[1024];
    if (strlen(spec) >= sizeof buf) return rf_errorf(err, RF_EUSAGE, "seeds: list too long");
    snprintf(buf, sizeof buf, "%s", spec);
    int n = 0;
    uint64_t s[RF_EXP_MAX_SEEDS];
    char *save = NULL;
    for (char *tok = strtok_r(buf, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
        if (n == RF_EXP_MAX_SEEDS) return rf_errorf(err, RF_EUSAGE, "seeds: more than %d", RF_EXP_MAX_SEEDS);
        if (parse_u64(tok, &s[n])) return rf_errorf(err, RF_EUSAGE, "seeds: \"%s\" is not a non-negative integer", tok);
        for (int i = 0; i < n; i++)
            if (s[i] == s[n]) return rf_errorf(err, RF_EUSAGE, "seeds: %s is listed twice", tok);
        n++;
    }
    if (!n) return rf_errorf(err, RF_EUSAGE, "seeds: empty list");
    x->n_seeds = n;
    memcpy(x->seeds, s, (size_t)n * sizeof *s);
    return RF_OK;
}

rf_status rf_experiment_add_override(rf_experiment *x, const char *assignment, rf_error *err)
{
    if (!strchr(assignment, '=')) return rf_errorf(err, RF_EUSAGE, "--set \"%s\": expected key=value", assignment);
    const char *why = rf_exp_forbidden_key_(assignment, 1);
    if (why) return rf_errorf(err, RF_EUSAGE, "--set \"%s\": %s", assignment, why);
    return rf_exp_push_set_(&x->extra, &x->n_extra, assignment, 0, 0, err);
}

rf_status rf_experiment_pick_models(rf_experiment *x, const char *list, rf_error *err)
{
    char buf[4096];
    if (strlen(list) >= sizeof buf) return rf_errorf(err, RF_EUSAGE, "model list too long");
    snprintf(buf, sizeof buf, "%s", list);
    rf_exp_model *old = malloc(sizeof x->models);
    if (!old) return rf_errorf(err, RF_ENOMEM, "out of memory");
    int n_old = x->n_models, used[RF_EXP_MAX_ITEMS] = {0};
    memcpy(old, x->models, sizeof x->models);
    x->n_models = 0;
    rf_status st = RF_OK;
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok && !st; tok = strtok_r(NULL, ",", &save)) {
        int i = 0;
        while (i < n_old && strcmp(old[i].name, tok)) i++;
        if (i < n_old && !used[i]) { /* a model defined in the experiment, with its overrides */
            if (x->n_models == RF_EXP_MAX_ITEMS) st = rf_errorf(err, RF_EUSAGE, "more than %d models", RF_EXP_MAX_ITEMS);
            else x->models[x->n_models++] = old[i], used[i] = 1;
        } else if (i < n_old) {
            st = rf_errorf(err, RF_EUSAGE, "model \"%s\" is listed twice", tok);
        } else {
            st = rf_experiment_add_model(x, tok, err);
        }
    }
    if (!st && !x->n_models) st = rf_errorf(err, RF_EUSAGE, "empty model list");
    for (int i = 0; i < n_old; i++)
        if (!used[i]) free_sets(old[i].sets, old[i].n_sets);
    free(old);
    return st;
}

rf_status rf_experiment_pick_datasets(rf_experiment *x, const char *list, rf_error *err)
{
    char buf[8192];
    if (strlen(list) >= sizeof buf) return rf_errorf(err, RF_EUSAGE, "dataset list too long");
    snprintf(buf, sizeof buf, "%s", list);
    rf_exp_dataset *old = malloc(sizeof x->datasets);
    if (!old) return rf_errorf(err, RF_ENOMEM, "out of memory");
    int n_old = x->n_datasets, used[RF_EXP_MAX_ITEMS] = {0}, from_file = x->source[0] != '\0';
    memcpy(old, x->datasets, sizeof x->datasets);
    x->n_datasets = 0;
    rf_status st = RF_OK;
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok && !st; tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');
        if (eq) { /* NAME=CONFIG.yaml */
            *eq = '\0';
            st = rf_experiment_add_dataset(x, tok, eq + 1, err);
            continue;
        }
        int i = 0;
        while (i < n_old && strcmp(old[i].name, tok)) i++;
        if (i < n_old && !used[i]) {
            if (x->n_datasets == RF_EXP_MAX_ITEMS) st = rf_errorf(err, RF_EUSAGE, "more than %d datasets", RF_EXP_MAX_ITEMS);
            else x->datasets[x->n_datasets++] = old[i], used[i] = 1;
        } else if (i < n_old) {
            st = rf_errorf(err, RF_EUSAGE, "dataset \"%s\" is listed twice", tok);
        } else if (from_file) {
            st = rf_errorf(err, RF_EUSAGE, "no dataset named \"%s\" in %s (NAME=CONFIG.yaml defines one)", tok, x->source);
        } else {
            st = rf_experiment_add_dataset(x, tok, NULL, err); /* the built-in defaults */
        }
    }
    if (!st && !x->n_datasets) st = rf_errorf(err, RF_EUSAGE, "empty dataset list");
    for (int i = 0; i < n_old; i++)
        if (!used[i]) free_sets(old[i].sets, old[i].n_sets);
    free(old);
    return st;
}

