/* exp_file.c - reading an experiment file (YAML, docs/experiments.md) into an experiment
 * (contract in include/resflow/lab/exp_spec.h).
 *
 * The experiment file is read with libyaml's document API. Overrides (`set:`, a dataset's or
 * a model's `set:`, `backbone:`) become "key=value" strings applied with rf_config_set, so they
 * mean exactly what `--set` means: nested mappings flatten to dotted keys, sequences and
 * mappings below a key are written back as YAML flow text, plain scalars are passed literally.
 * Each string keeps the file:line:column of its value for error messages.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "lab/exp_int.h"
#include "core/sbuf.h"

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
            const char *why = rf_exp_forbidden_key_(s, dataset_level);
            if (why) return at(c, v, "%s: %s", s, why);
            rf_status st = rf_exp_push_set_(arr, cnt, s, (long)v->start_mark.line + 1, (long)v->start_mark.column + 1, c->err);
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
        const char *why = rf_exp_forbidden_key_(b.p, dataset_level);
        if (why) {
            free(b.p);
            return at(c, k, "%s: %s", key, why);
        }
        st = rf_exp_push_set_(arr, cnt, b.p, (long)v->start_mark.line + 1, (long)v->start_mark.column + 1, c->err);
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
        if ((st = rf_exp_add_model_(x, nn ? name : type, type, c->err))) return at(c, nn ? nn : tn, "%s", c->err->msg);
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
    static const char *const keys[] = {"name", "out", "seeds", "models", "datasets", "set", "backbone", "baseline", NULL};
    kv p[9];
    int np;
    rf_status st = pairs(c, root, keys, p, &np);
    if (st) return st;
    rf_experiment *x = c->x;
    for (int i = 0; i < np; i++) {
        const char *k = p[i].key, *s;
        const yaml_node_t *v = p[i].val;
        if (!strcmp(k, "name") || !strcmp(k, "out") || !strcmp(k, "baseline")) {
            if ((st = want_scalar(c, v, k, &s))) return st;
            char *dst = !strcmp(k, "name") ? x->name : !strcmp(k, "out") ? x->out : x->baseline;
            size_t cap = !strcmp(k, "name") ? sizeof x->name : !strcmp(k, "out") ? sizeof x->out : sizeof x->baseline;
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
