/* experiment.c - experiments: models x datasets x seeds (contract in
 * include/resflow/experiment.h, file format in docs/experiments.md).
 *
 * The experiment file is read with libyaml's document API. Overrides (`set:`, a dataset's or
 * a model's `set:`, `backbone:`) become "key=value" strings applied with rf_config_set, so they
 * mean exactly what `--set` means: nested mappings flatten to dotted keys, sequences and
 * mappings below a key are written back as YAML flow text, plain scalars are passed literally.
 * Each string keeps the file:line:column of its value for error messages.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>
#include <yaml.h>

#include "resflow/afile.h"
#include "resflow/experiment.h"
#include "resflow/metrics.h"
#include "resflow/model.h"
#include "resflow/regression.h"
#include "core/sbuf.h"

/* ---- small helpers ------------------------------------------------------------------------ */

static int valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= RF_EXP_NAME_MAX || s[0] == '.' || s[0] == '-') return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && !strchr("_.+-", s[i])) return 0;
    return 1;
}

static rf_status push_set(rf_exp_set **arr, int *n, const char *text, long line, long col, rf_error *err)
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
static const char *forbidden_key(const char *text, int dataset_level)
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

static rf_status add_model(rf_experiment *x, const char *name, const char *type, rf_error *err)
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
    if (!eq) return add_model(x, spec, spec, err);
    char name[RF_EXP_NAME_MAX];
    size_t n = (size_t)(eq - spec);
    if (n >= sizeof name) return rf_errorf(err, RF_EUSAGE, "model name too long in \"%s\"", spec);
    memcpy(name, spec, n);
    name[n] = '\0';
    return add_model(x, name, eq + 1, err);
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
    const char *why = forbidden_key(assignment, 1);
    if (why) return rf_errorf(err, RF_EUSAGE, "--set \"%s\": %s", assignment, why);
    return push_set(&x->extra, &x->n_extra, assignment, 0, 0, err);
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

/* ---- the experiment file ---------------------------------------------------------------------- */

typedef struct {
    rf_experiment *x;
    yaml_document_t *doc;
    const char *name; /* file name for messages */
    rf_error *err;
} ctx;

static rf_status at(const ctx *c, const yaml_node_t *n, const char *fmt, ...) RF_PRINTF(3, 4);
static rf_status at(const ctx *c, const yaml_node_t *n, const char *fmt, ...)
{
    char msg[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return rf_error_at(c->err, RF_EUSAGE, c->name, n ? (long)n->start_mark.line + 1 : 0,
                       n ? (long)n->start_mark.column + 1 : 0, "%s", msg);
}

static const char *scalar(const yaml_node_t *n)
{
    return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

/* A plain scalar that YAML flow text can carry unquoted. */
static int plain_ok(const char *s)
{
    if (!*s) return 0;
    for (const char *p = s; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("_.+-/", *p)) return 0;
    return 1;
}

static void flow_scalar(sbuf *b, const char *s)
{
    sb_puts(b, "\"");
    for (const char *p = s; *p; p++) {
        if (*p == '"' || *p == '\\') sb_add(b, "\\", 1);
        if (*p == '\n') {
            sb_puts(b, "\\n");
            continue;
        }
        sb_add(b, p, 1);
    }
    sb_puts(b, "\"");
}

/* A node as YAML flow text (for the value of "key=value"). */
static void flow(const ctx *c, const yaml_node_t *n, sbuf *b)
{
    switch (n->type) {
    case YAML_SCALAR_NODE: {
        const char *s = scalar(n);
        if (plain_ok(s)) sb_puts(b, s);
        else flow_scalar(b, s);
        break;
    }
    case YAML_SEQUENCE_NODE: {
        sb_puts(b, "[");
        int first = 1;
        for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
            if (!first) sb_puts(b, ", ");
            first = 0;
            flow(c, yaml_document_get_node(c->doc, *it), b);
        }
        sb_puts(b, "]");
        break;
    }
    case YAML_MAPPING_NODE: {
        sb_puts(b, "{");
        int first = 1;
        for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
            if (!first) sb_puts(b, ", ");
            first = 0;
            flow(c, yaml_document_get_node(c->doc, p->key), b);
            sb_puts(b, ": ");
            flow(c, yaml_document_get_node(c->doc, p->value), b);
        }
        sb_puts(b, "}");
        break;
    }
    default: sb_puts(b, "\"\"");
    }
}

/* The value of a key as the text rf_config_set reads: plain scalars literally (like --set),
 * quoted scalars quoted, collections as flow text. */
static void value_text(const ctx *c, const yaml_node_t *v, sbuf *b)
{
    if (v->type == YAML_SCALAR_NODE && v->data.scalar.style == YAML_PLAIN_SCALAR_STYLE) sb_puts(b, scalar(v));
    else flow(c, v, b);
}

/* Overrides from a mapping (nested mappings flatten to dotted keys) or from a list of
 * "key=value" strings. prefix is prepended to every key ("model." for backbone). */
static rf_status collect_sets(const ctx *c, const yaml_node_t *n, const char *prefix, int dataset_level,
                              rf_exp_set **arr, int *cnt)
{
    if (n->type == YAML_SCALAR_NODE && scalar(n)[0] == '\0') return RF_OK; /* "set:" with nothing */
    if (n->type == YAML_SEQUENCE_NODE) {
        if (prefix[0]) return at(c, n, "expected a mapping of keys");
        for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
            const yaml_node_t *v = yaml_document_get_node(c->doc, *it);
            const char *s = scalar(v);
            if (!s || !strchr(s, '=')) return at(c, v, "expected \"key=value\"");
            const char *why = forbidden_key(s, dataset_level);
            if (why) return at(c, v, "%s: %s", s, why);
            rf_status st = push_set(arr, cnt, s, (long)v->start_mark.line + 1, (long)v->start_mark.column + 1, c->err);
            if (st) return st;
        }
        return RF_OK;
    }
    if (n->type != YAML_MAPPING_NODE) return at(c, n, "expected a mapping of keys (or a list of key=value)");
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        const yaml_node_t *k = yaml_document_get_node(c->doc, p->key), *v = yaml_document_get_node(c->doc, p->value);
        const char *ks = scalar(k);
        if (!ks || !*ks) return at(c, k, "expected a key");
        char key[512];
        if ((size_t)snprintf(key, sizeof key, "%s%s", prefix, ks) >= sizeof key) return at(c, k, "key too long");
        rf_status st;
        if (v->type == YAML_MAPPING_NODE) {
            char sub[520];
            snprintf(sub, sizeof sub, "%s.", key);
            if ((st = collect_sets(c, v, sub, dataset_level, arr, cnt))) return st;
            continue;
        }
        sbuf b = {0};
        sb_puts(&b, key);
        sb_puts(&b, "=");
        value_text(c, v, &b);
        if (b.oom) {
            free(b.p);
            return rf_errorf(c->err, RF_ENOMEM, "out of memory");
        }
        const char *why = forbidden_key(b.p, dataset_level);
        if (why) {
            free(b.p);
            return at(c, k, "%s: %s", key, why);
        }
        st = push_set(arr, cnt, b.p, (long)v->start_mark.line + 1, (long)v->start_mark.column + 1, c->err);
        free(b.p);
        if (st) return st;
    }
    return RF_OK;
}

typedef struct {
    const char *key;
    const yaml_node_t *val;
} kv;

/* The pairs of a mapping, checking that every key is one of `allowed` and none repeats. */
static rf_status pairs(const ctx *c, const yaml_node_t *n, const char *const *allowed, kv *out, int *nout)
{
    *nout = 0;
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        const yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
        const char *ks = scalar(k);
        if (!ks) return at(c, k, "expected a key");
        int ok = 0;
        for (int i = 0; allowed[i]; i++) ok |= !strcmp(allowed[i], ks);
        if (!ok) {
            char list[256] = "";
            for (int i = 0; allowed[i]; i++)
                snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "", allowed[i]);
            return at(c, k, "unknown key \"%s\" (allowed: %s)", ks, list);
        }
        for (int i = 0; i < *nout; i++)
            if (!strcmp(out[i].key, ks)) return at(c, k, "duplicate key \"%s\"", ks);
        out[(*nout)++] = (kv){ks, yaml_document_get_node(c->doc, p->value)};
    }
    return RF_OK;
}

static const yaml_node_t *get(const kv *p, int n, const char *key)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(p[i].key, key)) return p[i].val;
    return NULL;
}

static rf_status want_scalar(const ctx *c, const yaml_node_t *n, const char *what, const char **out)
{
    *out = scalar(n);
    if (!*out) return at(c, n, "%s: expected a single value", what);
    return RF_OK;
}

static rf_status load_models(const ctx *c, const yaml_node_t *n)
{
    rf_experiment *x = c->x;
    if (n->type != YAML_SEQUENCE_NODE) return at(c, n, "models: expected a list");
    for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
        const yaml_node_t *v = yaml_document_get_node(c->doc, *it);
        rf_status st;
        if (v->type == YAML_SCALAR_NODE) {
            if ((st = rf_experiment_add_model(x, scalar(v), c->err))) return at(c, v, "%s", c->err->msg);
            continue;
        }
        if (v->type != YAML_MAPPING_NODE) return at(c, v, "models: expected a model type or {name, type, set}");
        static const char *const keys[] = {"name", "type", "set", NULL};
        kv p[3];
        int np;
        if ((st = pairs(c, v, keys, p, &np))) return st;
        const yaml_node_t *tn = get(p, np, "type"), *nn = get(p, np, "name"), *sn = get(p, np, "set");
        const char *type, *name;
        if (!tn) return at(c, v, "model: \"type\" is required");
        if ((st = want_scalar(c, tn, "type", &type))) return st;
        if (nn && (st = want_scalar(c, nn, "name", &name))) return st;
        if ((st = add_model(x, nn ? name : type, type, c->err))) return at(c, nn ? nn : tn, "%s", c->err->msg);
        rf_exp_model *m = &x->models[x->n_models - 1];
        if (sn && (st = collect_sets(c, sn, "", 0, &m->sets, &m->n_sets))) return st;
    }
    return RF_OK;
}

static rf_status load_datasets(const ctx *c, const yaml_node_t *n)
{
    rf_experiment *x = c->x;
    if (n->type != YAML_SEQUENCE_NODE) return at(c, n, "datasets: expected a list");
    for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
        const yaml_node_t *v = yaml_document_get_node(c->doc, *it);
        rf_status st;
        if (v->type == YAML_SCALAR_NODE) {
            if ((st = rf_experiment_add_dataset(x, scalar(v), NULL, c->err))) return at(c, v, "%s", c->err->msg);
            continue;
        }
        if (v->type != YAML_MAPPING_NODE) return at(c, v, "datasets: expected a name or {name, config, set}");
        static const char *const keys[] = {"name", "config", "set", NULL};
        kv p[3];
        int np;
        if ((st = pairs(c, v, keys, p, &np))) return st;
        const yaml_node_t *nn = get(p, np, "name"), *cn = get(p, np, "config"), *sn = get(p, np, "set");
        const char *name, *config = NULL;
        if (!nn) return at(c, v, "dataset: \"name\" is required");
        if ((st = want_scalar(c, nn, "name", &name))) return st;
        if (cn && (st = want_scalar(c, cn, "config", &config))) return st;
        if ((st = rf_experiment_add_dataset(x, name, config, c->err))) return at(c, nn, "%s", c->err->msg);
        rf_exp_dataset *d = &x->datasets[x->n_datasets - 1];
        if (sn && (st = collect_sets(c, sn, "", 1, &d->sets, &d->n_sets))) return st;
    }
    return RF_OK;
}

static rf_status load_seeds(const ctx *c, const yaml_node_t *n)
{
    rf_status st;
    if (n->type == YAML_SCALAR_NODE) {
        if ((st = rf_experiment_set_seeds(c->x, scalar(n), c->err))) return at(c, n, "%s", c->err->msg);
        return RF_OK;
    }
    if (n->type != YAML_SEQUENCE_NODE) return at(c, n, "seeds: expected a count or a list of seeds");
    sbuf b = {0};
    for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
        const yaml_node_t *v = yaml_document_get_node(c->doc, *it);
        if (!scalar(v)) {
            free(b.p);
            return at(c, v, "seeds: expected integers");
        }
        sb_printf(&b, "%s%s", b.len ? "," : "", scalar(v));
    }
    if (b.oom) {
        free(b.p);
        return rf_errorf(c->err, RF_ENOMEM, "out of memory");
    }
    /* a one-element list is a seed, not a count */
    if (b.p && !strchr(b.p, ',')) sb_puts(&b, ",");
    st = rf_experiment_set_seeds(c->x, b.p ? b.p : "", c->err);
    free(b.p);
    return st ? at(c, n, "%s", c->err->msg) : RF_OK;
}

static rf_status load_root(ctx *c, const yaml_node_t *root)
{
    if (!root) return rf_error_at(c->err, RF_EUSAGE, c->name, 0, 0, "empty experiment file");
    if (root->type != YAML_MAPPING_NODE) return at(c, root, "expected a mapping (name, seeds, models, datasets, ...)");
    static const char *const keys[] = {"name", "out", "seeds", "models", "datasets", "set", "backbone", NULL};
    kv p[8];
    int np;
    rf_status st = pairs(c, root, keys, p, &np);
    if (st) return st;
    rf_experiment *x = c->x;
    for (int i = 0; i < np; i++) {
        const char *k = p[i].key, *s;
        const yaml_node_t *v = p[i].val;
        if (!strcmp(k, "name") || !strcmp(k, "out")) {
            if ((st = want_scalar(c, v, k, &s))) return st;
            char *dst = !strcmp(k, "name") ? x->name : x->out;
            size_t cap = !strcmp(k, "name") ? sizeof x->name : sizeof x->out;
            if (strlen(s) >= cap) return at(c, v, "%s: too long", k);
            snprintf(dst, cap, "%s", s);
        } else if (!strcmp(k, "seeds")) {
            st = load_seeds(c, v);
        } else if (!strcmp(k, "models")) {
            st = load_models(c, v);
        } else if (!strcmp(k, "datasets")) {
            st = load_datasets(c, v);
        } else if (!strcmp(k, "set")) {
            st = collect_sets(c, v, "", 1, &x->sets, &x->n_sets);
        } else { /* backbone: model.* keys */
            if (v->type != YAML_MAPPING_NODE) return at(c, v, "backbone: expected a mapping of model keys");
            st = collect_sets(c, v, "model.", 0, &x->backbone, &x->n_backbone);
        }
        if (st) return st;
    }
    return RF_OK;
}

rf_status rf_experiment_load_string(rf_experiment *x, const char *text, size_t len, const char *name, rf_error *err)
{
    yaml_parser_t parser;
    yaml_document_t doc;
    if (!yaml_parser_initialize(&parser)) return rf_errorf(err, RF_ENOMEM, "out of memory");
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    rf_status st = RF_OK;
    if (!yaml_parser_load(&parser, &doc)) {
        st = rf_error_at(err, RF_EUSAGE, name, (long)parser.problem_mark.line + 1, (long)parser.problem_mark.column + 1,
                         "YAML: %s", parser.problem ? parser.problem : "parse error");
        yaml_parser_delete(&parser);
        return st;
    }
    ctx c = {x, &doc, name, err};
    st = load_root(&c, yaml_document_get_root_node(&doc));
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    if (!st) snprintf(x->source, sizeof x->source, "%s", name);
    return st;
}

rf_status rf_experiment_load_file(rf_experiment *x, const char *path, rf_error *err)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) return rf_errorf(err, RF_EIO, "cannot open %s: %s", path, strerror(errno));
    sbuf b = {0};
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, fp)) > 0) sb_add(&b, chunk, n);
    int bad = ferror(fp);
    fclose(fp);
    if (bad || b.oom) {
        free(b.p);
        return bad ? rf_errorf(err, RF_EIO, "cannot read %s", path) : rf_errorf(err, RF_ENOMEM, "out of memory");
    }
    rf_status st = rf_experiment_load_string(x, b.p ? b.p : "", b.len, path, err);
    free(b.p);
    return st;
}

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

/* ---- one run ---------------------------------------------------------------------------------- */

static rf_status run_resolved(const rf_config *cfg, const rf_splits *sp, rf_log_fn log, void *ud, rf_run_result *out,
                               rf_error *err);

rf_status rf_experiment_run(const rf_config *cfg, const rf_splits *sp, rf_log_fn log, void *ud, rf_run_result *out,
                            rf_error *err)
{
    memset(out, 0, sizeof *out);
    out->config_hash = rf_run_hash(cfg); /* of the configuration as given */
    rf_config *rc = malloc(sizeof *rc);
    if (!rc) return rf_errorf(err, RF_ENOMEM, "out of memory");
    *rc = *cfg;
    rf_status st = rf_regression_resolve(rc, sp->train, err); /* thresholds, tasks (regression.h) */
    if (!st) st = run_resolved(rc, sp, log, ud, out, err);
    free(rc);
    return st;
}

static rf_status run_resolved(const rf_config *cfg, const rf_splits *sp, rf_log_fn log, void *ud, rf_run_result *out,
                              rf_error *err)
{
    snprintf(out->model_type, sizeof out->model_type, "%s", rf_model_type_name(cfg->model.type));
    out->seed = cfg->train.seed;
    out->K = cfg->K;
    for (int k = 0; k < cfg->K; k++) {
        snprintf(out->task[k], RF_NAME_MAX, "%s", cfg->tasks[k].name);
        out->parent[k] = rf_config_task_index(cfg, cfg->tasks[k].parent);
        out->auc[k] = out->cond_auc[k] = out->logloss[k] = out->oracle_auc[k] = out->increase[k] = NAN;
        out->task_mse[k] = cfg->tasks[k].loss == RF_LOSS_MSE;
    }
    snprintf(out->target, sizeof out->target, "%s", cfg->regression.target);
    out->mse = out->rmse = out->mae = out->oracle_mse = NAN;
    out->valid_score = out->seconds = out->samples_per_sec = NAN;
    out->test_rows = sp->test->n;
    rf_model *m = NULL;
    rf_status st = rf_config_create_model(cfg, sp->train->F, sp->train->fields, sp->train->D, &m, err);
    if (st) return st;
    const rf_model_info *mi = rf_model_info_of(m);
    out->dense_params = mi->n_params;
    out->emb_params = mi->n_emb_rows * (size_t)mi->E;
    const rf_dataset *t = sp->test;
    int lc[RF_MAX_TASKS];
    if ((st = rf_resolve_labels(m, t, lc, err))) {
        rf_model_free(m);
        return st;
    }
    for (int k = 0; k < cfg->K && t->truth; k++) /* the data's own ceiling, whatever the model does */
        if (!out->task_mse[k])
            out->oracle_auc[k] =
                rf_auc_strided(t->truth + lc[k], (size_t)t->K, t->labels + lc[k], (size_t)t->K, NULL, 0, t->n, NULL);
    int tc = out->target[0] && t->truth ? rf_dataset_label_index(t, out->target) : -1;
    if (tc >= 0) /* the simulator's expected target: the noise floor of the MSE */
        out->oracle_mse = rf_reg_eval(t->truth + tc, (size_t)t->K, t->labels + tc, (size_t)t->K, t->n).mse;
    rf_train_summary sum;
    memset(&sum, 0, sizeof sum);
    st = rf_train(m, &cfg->train, &(rf_train_hooks){log, ud, NULL, NULL, NULL}, sp->train, sp->valid, &sum, err);
    if (st == RF_ENUMERIC) { /* diverged: a result, not a failure of the experiment */
        out->status = RF_ENUMERIC;
        snprintf(out->error, sizeof out->error, "%.500s", err ? err->msg : "non-finite loss");
        rf_model_free(m);
        rf_error_clear(err);
        return RF_OK;
    }
    rf_eval_result ev;
    if (!st) st = rf_evaluate(m, t, 0, &ev, err);
    if (st) {
        rf_model_free(m);
        return st;
    }
    out->status = RF_OK;
    out->valid_score = sum.best_score;
    out->best_epoch = sum.best_epoch;
    out->epochs_run = sum.epochs_run;
    out->seconds = sum.seconds;
    out->samples_per_sec = sum.samples_per_sec;
    for (int k = 0; k < cfg->K; k++) {
        out->auc[k] = ev.task[k].auc;
        out->logloss[k] = ev.task[k].logloss;
        if (out->parent[k] >= 0) {
            out->cond_auc[k] = ev.cond[k].auc;
            out->increase[k] = ev.increase[k];
        }
    }
    if (out->target[0]) {
        out->mse = ev.reg.mse;
        out->rmse = ev.reg.rmse;
        out->mae = ev.reg.mae;
    }
    rf_model_free(m);
    return RF_OK;
}

/* ---- run results on disk ------------------------------------------------------------------------ */

static json_t *num(double v) { return isfinite(v) ? json_real(v) : json_null(); }

static double get_num(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

rf_status rf_run_result_write(const rf_run_result *r, const char *path, rf_error *err)
{
    json_t *j = json_object(), *tasks = json_array();
    char hash[32];
    snprintf(hash, sizeof hash, "%016" PRIx64, r->config_hash);
    json_object_set_new(j, "format", json_string("resflow-run-1"));
    json_object_set_new(j, "config_hash", json_string(hash));
    json_object_set_new(j, "status", json_string(r->status == RF_OK ? "ok" : r->status == RF_ENUMERIC ? "diverged" : "failed"));
    if (r->status != RF_OK) json_object_set_new(j, "error", json_string(r->error));
    json_object_set_new(j, "model_type", json_string(r->model_type));
    json_object_set_new(j, "seed", json_integer((json_int_t)r->seed));
    for (int k = 0; k < r->K; k++) {
        json_t *t = json_object();
        json_object_set_new(t, "name", json_string(r->task[k]));
        json_object_set_new(t, "parent", r->parent[k] >= 0 ? json_string(r->task[r->parent[k]]) : json_null());
        json_object_set_new(t, "auc", num(r->auc[k]));
        json_object_set_new(t, "cond_auc", num(r->cond_auc[k]));
        json_object_set_new(t, "increase_share", num(r->increase[k]));
        json_object_set_new(t, "logloss", num(r->logloss[k]));
        json_object_set_new(t, "oracle_auc", num(r->oracle_auc[k]));
        if (r->task_mse[k]) json_object_set_new(t, "loss", json_string("mse"));
        json_array_append_new(tasks, t);
    }
    json_object_set_new(j, "tasks", tasks);
    if (r->target[0])
        json_object_set_new(j, "regression", json_pack("{s:s,s:o,s:o,s:o,s:o}", "target", r->target, "mse", num(r->mse),
                                                       "rmse", num(r->rmse), "mae", num(r->mae), "oracle_mse",
                                                       num(r->oracle_mse)));
    json_object_set_new(j, "valid_score", num(r->valid_score));
    json_object_set_new(j, "best_epoch", json_integer(r->best_epoch));
    json_object_set_new(j, "epochs_run", json_integer(r->epochs_run));
    json_object_set_new(j, "train_seconds", num(r->seconds));
    json_object_set_new(j, "samples_per_sec", num(r->samples_per_sec));
    json_object_set_new(j, "dense_params", json_integer((json_int_t)r->dense_params));
    json_object_set_new(j, "emb_params", json_integer((json_int_t)r->emb_params));
    json_object_set_new(j, "test_rows", json_integer((json_int_t)r->test_rows));
    char tmp[4096];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", path) >= sizeof tmp) {
        json_decref(j);
        return rf_errorf(err, RF_EIO, "path too long: %s", path);
    }
    int bad = json_dump_file(j, tmp, JSON_INDENT(2) | JSON_REAL_PRECISION(17));
    json_decref(j);
    if (bad || rename(tmp, path)) {
        remove(tmp);
        return rf_errorf(err, RF_EIO, "cannot write %s", path);
    }
    return RF_OK;
}

rf_status rf_run_result_read(rf_run_result *r, const char *path, rf_error *err)
{
    memset(r, 0, sizeof *r);
    json_error_t je;
    json_t *j = json_load_file(path, 0, &je);
    if (!j) return rf_error_at(err, RF_EFORMAT, path, je.line > 0 ? je.line : 0, je.column > 0 ? je.column : 0, "%s", je.text);
    rf_status st = RF_OK;
    const char *fmt = json_string_value(json_object_get(j, "format"));
    const char *hash = json_string_value(json_object_get(j, "config_hash"));
    const char *status = json_string_value(json_object_get(j, "status"));
    const char *type = json_string_value(json_object_get(j, "model_type"));
    const json_t *tasks = json_object_get(j, "tasks");
    char *end = NULL;
    if (!fmt || strcmp(fmt, "resflow-run-1") || !hash || !status || !type || !json_is_array(tasks) ||
        json_array_size(tasks) < 1 || json_array_size(tasks) > RF_MAX_TASKS) {
        st = rf_errorf(err, RF_EFORMAT, "%s: not a resflow run result", path);
        goto done;
    }
    errno = 0;
    r->config_hash = (uint64_t)strtoull(hash, &end, 16);
    if (errno || !*hash || *end) {
        st = rf_errorf(err, RF_EFORMAT, "%s: bad config_hash", path);
        goto done;
    }
    r->status = !strcmp(status, "ok") ? RF_OK : !strcmp(status, "diverged") ? RF_ENUMERIC : RF_EINTERNAL;
    const char *e = json_string_value(json_object_get(j, "error"));
    snprintf(r->error, sizeof r->error, "%s", e ? e : "");
    snprintf(r->model_type, sizeof r->model_type, "%s", type);
    r->seed = (uint64_t)json_integer_value(json_object_get(j, "seed"));
    r->K = (int)json_array_size(tasks);
    for (int k = 0; k < r->K; k++) {
        const json_t *t = json_array_get(tasks, (size_t)k);
        const char *nm = json_string_value(json_object_get(t, "name"));
        if (!nm || strlen(nm) >= RF_NAME_MAX) {
            st = rf_errorf(err, RF_EFORMAT, "%s: bad task %d", path, k);
            goto done;
        }
        snprintf(r->task[k], RF_NAME_MAX, "%s", nm);
        r->auc[k] = get_num(t, "auc");
        r->cond_auc[k] = get_num(t, "cond_auc");
        r->increase[k] = get_num(t, "increase_share"); /* NaN in results of older versions */
        r->logloss[k] = get_num(t, "logloss");
        r->oracle_auc[k] = get_num(t, "oracle_auc");
        const char *loss = json_string_value(json_object_get(t, "loss"));
        r->task_mse[k] = loss && !strcmp(loss, "mse");
    }
    /* regression (absent in results of older versions and of classification runs: NaN) */
    const json_t *rg = json_object_get(j, "regression");
    const char *tg = json_string_value(json_object_get(rg, "target"));
    snprintf(r->target, sizeof r->target, "%s", tg && strlen(tg) < RF_NAME_MAX ? tg : "");
    r->mse = get_num(rg, "mse");
    r->rmse = get_num(rg, "rmse");
    r->mae = get_num(rg, "mae");
    r->oracle_mse = get_num(rg, "oracle_mse");
    for (int k = 0; k < r->K; k++) { /* parents by name, after all names are known */
        const char *p = json_string_value(json_object_get(json_array_get(tasks, (size_t)k), "parent"));
        r->parent[k] = -1;
        for (int i = 0; p && i < r->K; i++)
            if (!strcmp(r->task[i], p)) r->parent[k] = i;
    }
    r->valid_score = get_num(j, "valid_score");
    r->best_epoch = (int)json_integer_value(json_object_get(j, "best_epoch"));
    r->epochs_run = (int)json_integer_value(json_object_get(j, "epochs_run"));
    r->seconds = get_num(j, "train_seconds");
    r->samples_per_sec = get_num(j, "samples_per_sec");
    r->dense_params = (size_t)json_integer_value(json_object_get(j, "dense_params"));
    r->emb_params = (size_t)json_integer_value(json_object_get(j, "emb_params"));
    r->test_rows = (size_t)json_integer_value(json_object_get(j, "test_rows"));
done:
    json_decref(j);
    return st;
}

/* ---- statistics ------------------------------------------------------------------------------------ */

rf_stat rf_stat_of(const double *v, int n)
{
    rf_stat s = {NAN, NAN, 0};
    double sum = 0;
    for (int i = 0; i < n; i++)
        if (isfinite(v[i])) sum += v[i], s.n++;
    if (!s.n) return s;
    s.mean = sum / s.n;
    if (s.n < 2) return s;
    double ss = 0;
    for (int i = 0; i < n; i++)
        if (isfinite(v[i])) ss += (v[i] - s.mean) * (v[i] - s.mean);
    s.std = sqrt(ss / (s.n - 1));
    return s;
}

/* ---- tables ------------------------------------------------------------------------------------------ */

/* One metric of a dataset: the AUC of a task, the conditional AUC of a child task, a task's
 * logloss, training seconds, best epoch, or the regression errors. Tasks are named (models of a
 * dataset may have different tasks). */
typedef struct {
    int kind, k;
    char label[2 * RF_NAME_MAX + 16]; /* "ctcvr AUC", "ctcvr|ctr AUC" */
    char task[2 * RF_NAME_MAX + 2];   /* "ctcvr", "ctcvr|ctr" ("" for the run-level ones) */
} metric;

enum { M_AUC, M_COND, M_LOGLOSS, M_SECONDS, M_EPOCH, M_MSE, M_RMSE, M_MAE };
static const char *const KIND_NAME[] = {"auc", "cond_auc", "logloss", "train_seconds", "best_epoch", "mse", "rmse", "mae"};
static int lower_better(int kind) { return kind >= M_MSE; }

#define RES(x, res, d, m, s) ((res)[((size_t)(d) * (x)->n_models + (m)) * (x)->n_seeds + (s)])

/* The first result of dataset d (its tasks), or NULL. */
static const rf_run_result *first_result(const rf_experiment *x, const rf_run_result *const *res, int d)
{
    for (int m = 0; m < x->n_models; m++)
        for (int s = 0; s < x->n_seeds; s++)
            if (RES(x, res, d, m, s)) return RES(x, res, d, m, s);
    return NULL;
}

#define MAX_METRICS (4 * RF_MAX_TASKS + 8)

/* "task" or "task|parent" of task k of r */
static void task_key(const rf_run_result *r, int k, int cond, char *buf, size_t n)
{
    if (cond) snprintf(buf, n, "%s|%s", r->task[k], r->task[r->parent[k]]);
    else snprintf(buf, n, "%s", r->task[k]);
}

/* Append a metric unless the list has it. */
static void add_metric(metric *out, int *n, int kind, const char *task, const char *label)
{
    for (int i = 0; i < *n; i++)
        if (out[i].kind == kind && !strcmp(out[i].task, task)) return;
    if (*n >= MAX_METRICS) return;
    out[*n] = (metric){kind, 0, "", ""};
    snprintf(out[*n].task, sizeof out[*n].task, "%s", task);
    snprintf(out[*n].label, sizeof out[*n].label, "%s", label);
    (*n)++;
}

/* The Table-4 metrics of dataset d over all its results: the AUC of every classification task,
 * the conditional AUC of every child task, and the MSE when runs have a regression target. */
static int dataset_metrics(const rf_experiment *x, const rf_run_result *const *res, int d, metric *out)
{
    int n = 0, reg = 0;
    for (int pass = 0; pass < 2; pass++)
        for (int m = 0; m < x->n_models; m++)
            for (int s = 0; s < x->n_seeds; s++) {
                const rf_run_result *r = RES(x, res, d, m, s);
                for (int k = 0; r && k < r->K; k++) {
                    char t[2 * RF_NAME_MAX + 2], l[2 * RF_NAME_MAX + 16];
                    if (r->task_mse[k] || (pass && r->parent[k] < 0)) continue;
                    task_key(r, k, pass, t, sizeof t);
                    snprintf(l, sizeof l, "%s AUC", t);
                    add_metric(out, &n, pass ? M_COND : M_AUC, t, l);
                }
                reg |= r && r->target[0];
            }
    if (reg) add_metric(out, &n, M_MSE, "", "MSE");
    return n;
}

static double metric_value(const rf_run_result *r, const metric *mt)
{
    if (!r) return NAN;
    if (mt->kind == M_SECONDS) return r->status == RF_OK ? r->seconds : NAN;
    if (mt->kind == M_EPOCH) return r->status == RF_OK ? r->best_epoch : NAN;
    if (r->status != RF_OK) return NAN;
    if (mt->kind >= M_MSE) return mt->kind == M_MSE ? r->mse : mt->kind == M_RMSE ? r->rmse : r->mae;
    for (int k = 0; k < r->K; k++) {
        char t[2 * RF_NAME_MAX + 2];
        if (mt->kind == M_COND && r->parent[k] < 0) continue;
        task_key(r, k, mt->kind == M_COND, t, sizeof t);
        if (strcmp(t, mt->task)) continue;
        return mt->kind == M_AUC ? r->auc[k] : mt->kind == M_COND ? r->cond_auc[k] : r->logloss[k];
    }
    return NAN;
}

/* The simulator's ceiling for a metric of dataset d (the oracle column), NaN when none. */
static double oracle_value(const rf_experiment *x, const rf_run_result *const *res, int d, const metric *mt)
{
    for (int m = 0; m < x->n_models; m++)
        for (int s = 0; s < x->n_seeds; s++) {
            const rf_run_result *r = RES(x, res, d, m, s);
            if (!r) continue;
            if (mt->kind == M_MSE && isfinite(r->oracle_mse)) return r->oracle_mse;
            for (int k = 0; mt->kind == M_AUC && k < r->K; k++)
                if (!strcmp(r->task[k], mt->task) && isfinite(r->oracle_auc[k])) return r->oracle_auc[k];
        }
    return NAN;
}

typedef struct {
    rf_stat st;
    int runs, diverged; /* results present; of those diverged */
    double v[RF_EXP_MAX_SEEDS];
} cell;

static cell cell_of(const rf_experiment *x, const rf_run_result *const *res, int d, int m, const metric *mt)
{
    cell c;
    memset(&c, 0, sizeof c);
    for (int s = 0; s < x->n_seeds; s++) {
        const rf_run_result *r = RES(x, res, d, m, s);
        c.v[s] = metric_value(r, mt);
        if (r) c.runs++, c.diverged += r->status == RF_ENUMERIC;
    }
    c.st = rf_stat_of(c.v, x->n_seeds);
    return c;
}

/* "0.7236 ± 0.0011", with "(n/N)" when some seeds are missing; "NaN (k diverged)"; "-". */
static void fmt_cell(char *buf, size_t n, const cell *c, int n_seeds, int digits)
{
    if (!c->st.n) {
        if (c->diverged) snprintf(buf, n, "NaN (%d/%d diverged)", c->diverged, n_seeds);
        else snprintf(buf, n, "-");
        return;
    }
    int o = c->st.n >= 2 ? snprintf(buf, n, "%.*f ± %.*f", digits, c->st.mean, digits, c->st.std)
                         : snprintf(buf, n, "%.*f", digits, c->st.mean);
    if (c->st.n < n_seeds && o > 0 && (size_t)o < n) {
        if (c->diverged) snprintf(buf + o, n - (size_t)o, " (%d/%d; %d diverged)", c->st.n, n_seeds, c->diverged);
        else snprintf(buf + o, n - (size_t)o, " (%d/%d)", c->st.n, n_seeds);
    }
}

/* A Markdown table with padded columns: the first nc columns of cells[r * stride + c]. */
static void md_table(sbuf *b, char (*cells)[96], int nr, int nc, int stride)
{
    int w[RF_EXP_MAX_ITEMS + MAX_METRICS + 8] = {0};
    if (nc > RF_EXP_MAX_ITEMS + MAX_METRICS + 8) nc = RF_EXP_MAX_ITEMS + MAX_METRICS + 8;
    for (int c = 0; c < nc; c++)
        for (int r = 0; r < nr; r++) {
            /* display width: count UTF-8 lead bytes */
            int len = 0;
            for (const unsigned char *p = (const unsigned char *)cells[r * stride + c]; *p; p++) len += (*p & 0xC0) != 0x80;
            if (len > w[c]) w[c] = len;
        }
    for (int r = 0; r < nr; r++) {
        sb_puts(b, "|");
        for (int c = 0; c < nc; c++) {
            const char *s = cells[r * stride + c];
            int len = 0;
            for (const unsigned char *p = (const unsigned char *)s; *p; p++) len += (*p & 0xC0) != 0x80;
            sb_printf(b, " %s%*s |", s, w[c] - len, "");
        }
        sb_puts(b, "\n");
        if (r == 0) {
            sb_puts(b, "|");
            for (int c = 0; c < nc; c++) {
                sb_puts(b, " ");
                for (int i = 0; i < (w[c] > 3 ? w[c] : 3); i++) sb_puts(b, "-");
                sb_puts(b, " |");
            }
            sb_puts(b, "\n");
        }
    }
}

/* Markdown cell text: escape the '|' of "ctcvr|ctr". */
static void md_escape(char *dst, size_t n, const char *s)
{
    size_t o = 0;
    for (; *s && o + 2 < n; s++) {
        if (*s == '|') dst[o++] = '\\';
        dst[o++] = *s;
    }
    dst[o] = '\0';
}

static void csv_field(sbuf *b, const char *s)
{
    if (!strpbrk(s, ",\"\n")) {
        sb_puts(b, s);
        return;
    }
    sb_puts(b, "\"");
    for (; *s; s++) {
        if (*s == '"') sb_puts(b, "\"");
        sb_add(b, s, 1);
    }
    sb_puts(b, "\"");
}

static rf_status write_text(const char *dir, const char *name, const char *text, rf_error *err)
{
    char path[4096];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, name) >= sizeof path)
        return rf_errorf(err, RF_EIO, "path too long: %s", dir);
    return rf_write_atomic(path, text, strlen(text), err);
}

rf_status rf_experiment_write_tables(const rf_experiment *x, const rf_run_result *const *res, const char *dir, char **md,
                                     rf_error *err)
{
    const int nd = x->n_datasets, nm = x->n_models, ns = x->n_seeds;
    sbuf M = {0}, C = {0};
    json_t *J = json_object();
    rf_status st = RF_OK;
    /* the Table-4 view: one row per (dataset, AUC metric), one column per model */
    int nrow = 1;
    int has_oracle = 0;
    for (int d = 0; d < nd; d++) {
        metric mt[MAX_METRICS];
        int nmt = dataset_metrics(x, res, d, mt);
        nrow += nmt;
        for (int i = 0; i < nmt; i++) has_oracle |= isfinite(oracle_value(x, res, d, &mt[i]));
    }
    int ncol = 2 + nm + 1;
    char (*cells)[96] = calloc((size_t)(nrow > nm + 2 ? nrow : nm + 2) * (size_t)(ncol > MAX_METRICS + 8 ? ncol : MAX_METRICS + 8), 96);
    if (!cells) {
        json_decref(J);
        return rf_errorf(err, RF_ENOMEM, "out of memory");
    }
    sb_printf(&M, "# %s\n\n", x->name[0] ? x->name : "Experiment results");
    sb_printf(&M, "Test-split metrics, mean ± sample standard deviation (n - 1) over the seeds ");
    for (int s = 0; s < ns; s++) sb_printf(&M, "%s%" PRIu64, s ? ", " : "", x->seeds[s]);
    sb_puts(&M, " (train.seed). `(n/N)` marks cells where only n of N runs have a result; a diverged run "
                "(non-finite loss) counts as no result and is reported. The best mean of each row is in bold.\n\n");
    sb_puts(&M, "## AUC (higher is better) and regression MSE (lower is better) by dataset and model\n\n");
    {
        int r = 0;
        snprintf(cells[0], 96, "dataset");
        snprintf(cells[1], 96, "metric");
        for (int m = 0; m < nm; m++) snprintf(cells[2 + m], 96, "%s", x->models[m].name);
        snprintf(cells[2 + nm], 96, "oracle");
        r = 1;
        for (int d = 0; d < nd; d++) {
            metric mt[MAX_METRICS];
            int nmt = dataset_metrics(x, res, d, mt);
            for (int i = 0; i < nmt; i++, r++) {
                char (*row)[96] = cells + (size_t)r * ncol;
                snprintf(row[0], 96, "%s", x->datasets[d].name);
                md_escape(row[1], 96, mt[i].label);
                int low = lower_better(mt[i].kind);
                double best = low ? INFINITY : -INFINITY;
                cell cs[RF_EXP_MAX_ITEMS];
                for (int m = 0; m < nm; m++) {
                    cs[m] = cell_of(x, res, d, m, &mt[i]);
                    if (cs[m].st.n && (low ? cs[m].st.mean < best : cs[m].st.mean > best)) best = cs[m].st.mean;
                }
                for (int m = 0; m < nm; m++) {
                    char t[80];
                    fmt_cell(t, sizeof t, &cs[m], ns, 4);
                    int bold = cs[m].st.n && nm > 1 && floor(cs[m].st.mean * 1e4 + 0.5) == floor(best * 1e4 + 0.5);
                    snprintf(row[2 + m], 96, bold ? "**%s**" : "%s", t);
                }
                double orc = oracle_value(x, res, d, &mt[i]);
                if (isfinite(orc)) snprintf(row[2 + nm], 96, "%.4f", orc);
                else snprintf(row[2 + nm], 96, "-");
            }
        }
        md_table(&M, cells, r, has_oracle ? ncol : ncol - 1, ncol);
        if (has_oracle)
            sb_puts(&M, "\n`oracle`: the simulator's true probabilities (for MSE: its expected target) on the same test rows "
                        "(the best any model can do).\n");
    }

    /* per dataset: one row per model */
    sb_puts(&C, "dataset,model,model_type,metric,task,mean,std,n,runs,diverged,values\n");
    json_t *jds = json_array();
    for (int d = 0; d < nd; d++) {
        const rf_run_result *r0 = first_result(x, res, d);
        json_t *jd = json_object();
        json_object_set_new(jd, "name", json_string(x->datasets[d].name));
        json_object_set_new(jd, "config", json_string(x->datasets[d].config));
        json_array_append_new(jds, jd);
        if (!r0) continue;
        metric mt[MAX_METRICS + 3];
        int nauc = dataset_metrics(x, res, d, mt), nmt = nauc, last_ll = -1;
        for (int i = 0; i < nauc; i++)
            if (mt[i].kind == M_MSE) {
                add_metric(mt, &nmt, M_RMSE, "", "RMSE");
                add_metric(mt, &nmt, M_MAE, "", "MAE");
            }
        int nshown = nmt; /* the Table-4 metrics, RMSE, MAE */
        for (int i = 0; i < nauc; i++) {
            if (mt[i].kind != M_AUC) continue;
            char l[2 * RF_NAME_MAX + 16];
            snprintf(l, sizeof l, "%s logloss", mt[i].task);
            last_ll = nmt;
            add_metric(mt, &nmt, M_LOGLOSS, mt[i].task, l);
        }
        mt[nmt++] = (metric){M_SECONDS, 0, "train s", ""};
        mt[nmt++] = (metric){M_EPOCH, 0, "best epoch", ""};
        json_t *jt = json_array(), *jo = json_object();
        for (int k = 0; k < r0->K; k++) {
            json_array_append_new(jt, json_pack("{s:s,s:o}", "name", r0->task[k], "parent",
                                                r0->parent[k] >= 0 ? json_string(r0->task[r0->parent[k]]) : json_null()));
            json_object_set_new(jo, r0->task[k], num(r0->oracle_auc[k]));
        }
        json_object_set_new(jd, "tasks", jt);
        json_object_set_new(jd, "test_rows", json_integer((json_int_t)r0->test_rows));
        json_object_set_new(jd, "oracle_auc", jo);
        if (r0->target[0]) {
            metric mo = {M_MSE, 0, "", ""};
            json_object_set_new(jd, "regression_target", json_string(r0->target));
            json_object_set_new(jd, "oracle_mse", num(oracle_value(x, res, d, &mo)));
        }
        sb_printf(&M, "\n## %s\n\n", x->datasets[d].name);
        sb_printf(&M, "Config: %s", x->datasets[d].config[0] ? x->datasets[d].config : "built-in defaults");
        for (int i = 0; i < x->datasets[d].n_sets; i++) sb_printf(&M, "%s`%s`", i ? ", " : " + ", x->datasets[d].sets[i].text);
        sb_printf(&M, ". Test rows: %zu.\n\n", r0->test_rows);
        /* the Markdown table: AUCs, logloss of the last task, params, time */
        int show[MAX_METRICS + 3], nshow = 0;
        for (int i = 0; i < nshown; i++) show[nshow++] = i;
        if (last_ll >= 0) show[nshow++] = last_ll; /* logloss of the last task */
        show[nshow++] = nmt - 2;          /* train s */
        show[nshow++] = nmt - 1;          /* best epoch */
        int nc = 1 + nshow + 2;
        snprintf(cells[0], 96, "model");
        for (int i = 0; i < nshow; i++) md_escape(cells[1 + i], 96, mt[show[i]].label);
        snprintf(cells[1 + nshow], 96, "dense params");
        snprintf(cells[2 + nshow], 96, "emb params");
        json_t *jms = json_array();
        for (int m = 0; m < nm; m++) {
            char (*row)[96] = cells + (size_t)(m + 1) * nc;
            snprintf(row[0], 96, "%s", x->models[m].name);
            size_t dp = 0, ep = 0;
            for (int s = 0; s < ns; s++) {
                const rf_run_result *r = RES(x, res, d, m, s);
                if (r && r->dense_params) dp = r->dense_params, ep = r->emb_params;
            }
            json_t *jm = json_object(), *jsum = json_object(), *jruns = json_array();
            json_object_set_new(jm, "name", json_string(x->models[m].name));
            json_object_set_new(jm, "type", json_string(rf_model_type_name(x->models[m].type)));
            json_object_set_new(jm, "dense_params", json_integer((json_int_t)dp));
            json_object_set_new(jm, "emb_params", json_integer((json_int_t)ep));
            int diverged = 0, missing = 0;
            for (int i = 0; i < nmt; i++) {
                cell c = cell_of(x, res, d, m, &mt[i]);
                diverged = c.diverged;
                missing = ns - c.runs;
                for (int j = 0; j < nshow; j++)
                    if (show[j] == i) fmt_cell(row[1 + j], 96, &c, ns, mt[i].kind == M_SECONDS ? 1 : mt[i].kind == M_EPOCH ? 1 : 4);
                /* CSV row */
                csv_field(&C, x->datasets[d].name);
                sb_puts(&C, ",");
                csv_field(&C, x->models[m].name);
                sb_printf(&C, ",%s,%s,", rf_model_type_name(x->models[m].type), KIND_NAME[mt[i].kind]);
                csv_field(&C, mt[i].task);
                if (c.st.n) sb_printf(&C, ",%.17g", c.st.mean);
                else sb_puts(&C, ",");
                if (c.st.n >= 2) sb_printf(&C, ",%.17g", c.st.std);
                else sb_puts(&C, ",");
                sb_printf(&C, ",%d,%d,%d,", c.st.n, c.runs, c.diverged);
                for (int s = 0; s < ns; s++) {
                    if (s) sb_puts(&C, ";");
                    if (isfinite(c.v[s])) sb_printf(&C, "%.17g", c.v[s]);
                    else sb_puts(&C, "nan");
                }
                sb_puts(&C, "\n");
                /* JSON summary */
                json_t *sj = json_pack("{s:o,s:o,s:i}", "mean", num(c.st.mean), "std", num(c.st.std), "n", c.st.n);
                json_t *kj = json_object_get(jsum, KIND_NAME[mt[i].kind]);
                if (mt[i].task[0]) {
                    if (!kj) json_object_set_new(jsum, KIND_NAME[mt[i].kind], kj = json_object());
                    json_object_set_new(kj, mt[i].task, sj);
                } else {
                    json_object_set_new(jsum, KIND_NAME[mt[i].kind], sj);
                }
            }
            snprintf(row[1 + nshow], 96, "%zu", dp);
            snprintf(row[2 + nshow], 96, "%zu", ep);
            for (int s = 0; s < ns; s++) {
                const rf_run_result *r = RES(x, res, d, m, s);
                if (!r) {
                    json_array_append_new(jruns, json_null());
                    continue;
                }
                char hash[32];
                snprintf(hash, sizeof hash, "%016" PRIx64, r->config_hash);
                json_t *rj = json_object(), *auc = json_object(), *cond = json_object(), *ll = json_object(),
                       *inc = json_object();
                json_object_set_new(rj, "seed", json_integer((json_int_t)x->seeds[s]));
                json_object_set_new(rj, "status", json_string(r->status == RF_OK ? "ok" : r->status == RF_ENUMERIC ? "diverged" : "failed"));
                if (r->status != RF_OK) json_object_set_new(rj, "error", json_string(r->error));
                json_object_set_new(rj, "config_hash", json_string(hash));
                for (int k = 0; k < r->K; k++) {
                    json_object_set_new(auc, r->task[k], num(r->status == RF_OK ? r->auc[k] : NAN));
                    json_object_set_new(ll, r->task[k], num(r->status == RF_OK ? r->logloss[k] : NAN));
                    if (r->parent[k] >= 0) {
                        char nmk[2 * RF_NAME_MAX + 2];
                        snprintf(nmk, sizeof nmk, "%s|%s", r->task[k], r->task[r->parent[k]]);
                        json_object_set_new(cond, nmk, num(r->status == RF_OK ? r->cond_auc[k] : NAN));
                        json_object_set_new(inc, nmk, num(r->status == RF_OK ? r->increase[k] : NAN));
                    }
                }
                json_object_set_new(rj, "auc", auc);
                json_object_set_new(rj, "cond_auc", cond);
                json_object_set_new(rj, "increase_share", inc);
                json_object_set_new(rj, "logloss", ll);
                if (r->target[0]) {
                    json_object_set_new(rj, "mse", num(r->status == RF_OK ? r->mse : NAN));
                    json_object_set_new(rj, "rmse", num(r->status == RF_OK ? r->rmse : NAN));
                    json_object_set_new(rj, "mae", num(r->status == RF_OK ? r->mae : NAN));
                }
                json_object_set_new(rj, "train_seconds", num(r->status == RF_OK ? r->seconds : NAN));
                json_object_set_new(rj, "best_epoch", json_integer(r->best_epoch));
                json_array_append_new(jruns, rj);
            }
            json_object_set_new(jm, "runs", jruns);
            json_object_set_new(jm, "summary", jsum);
            json_object_set_new(jm, "diverged", json_integer(diverged));
            json_object_set_new(jm, "missing", json_integer(missing));
            json_array_append_new(jms, jm);
        }
        json_object_set_new(jd, "models", jms);
        md_table(&M, cells, nm + 1, nc, nc);
    }
    free(cells);
    json_t *jseeds = json_array();
    for (int s = 0; s < ns; s++) json_array_append_new(jseeds, json_integer((json_int_t)x->seeds[s]));
    json_object_set_new(J, "format", json_string("resflow-experiment-1"));
    json_object_set_new(J, "name", json_string(x->name));
    json_object_set_new(J, "source", json_string(x->source));
    json_object_set_new(J, "seeds", jseeds);
    json_object_set_new(J, "std", json_string("sample standard deviation (n - 1) over the finished runs"));
    json_object_set_new(J, "datasets", jds);
    char *js = json_dumps(J, JSON_INDENT(2) | JSON_REAL_PRECISION(17));
    json_decref(J);
    if (M.oom || C.oom || !js) st = rf_errorf(err, RF_ENOMEM, "out of memory");
    if (!st) st = write_text(dir, "results.md", M.p, err);
    if (!st) st = write_text(dir, "results.csv", C.p, err);
    if (!st) {
        size_t n = strlen(js);
        char *js2 = malloc(n + 2);
        if (!js2) st = rf_errorf(err, RF_ENOMEM, "out of memory");
        else {
            memcpy(js2, js, n);
            js2[n] = '\n';
            js2[n + 1] = '\0';
            st = write_text(dir, "results.json", js2, err);
            free(js2);
        }
    }
    free(js);
    free(C.p);
    if (!st && md) *md = M.p;
    else free(M.p);
    return st;
}
