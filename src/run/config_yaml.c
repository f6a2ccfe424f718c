/* config_yaml.c - YAML configuration files (libyaml): the document is walked as a tree, nested
 * mappings flatten to dotted keys, `tasks:` and `data.join:` given as sequences replace their
 * lists. Loads are atomic: on error *cfg is unchanged.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "run/config_bounds.h"
#include "run/config_int.h"

static loc mark_loc(yaml_mark_t m)
{
    loc l = {(long)m.line + 1, (long)m.column + 1};
    return l;
}

static rf_status apply_node(const ctx *c, const char *key, yaml_node_t *node, loc kat);

static rf_status walk_map(const ctx *c, const char *prefix, yaml_node_t *map)
{
    yaml_node_pair_t *p0 = map->data.mapping.pairs.start, *top = map->data.mapping.pairs.top;
    for (yaml_node_pair_t *p = p0; p < top; p++) {
        yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
        yaml_node_t *v = yaml_document_get_node(c->doc, p->value);
        char full[KEY_MAX];
        if (!k || !v || k->type != YAML_SCALAR_NODE)
            return rf_cfg_fail_(c, mark_loc(k ? k->start_mark : map->start_mark), "mapping keys must be names");
        const char *ks = (const char *)k->data.scalar.value;
        if ((size_t)snprintf(full, sizeof full, "%s%s%s", prefix, *prefix ? "." : "", ks) >= sizeof full)
            return rf_cfg_fail_(c, mark_loc(k->start_mark), "key too long");
        for (yaml_node_pair_t *q = p0; q < p; q++) {
            yaml_node_t *kq = yaml_document_get_node(c->doc, q->key);
            if (kq && kq->type == YAML_SCALAR_NODE && !strcmp((const char *)kq->data.scalar.value, ks))
                return rf_cfg_fail_(c, mark_loc(k->start_mark), "duplicate key \"%s\" (first at line %lu)", full,
                            (unsigned long)kq->start_mark.line + 1);
        }
        rf_status st = apply_node(c, full, v, mark_loc(k->start_mark));
        if (st) return st;
    }
    return RF_OK;
}

/* `data.join:` as a sequence of mappings: replaces the side-table list. */
static rf_status replace_joins(const ctx *c, yaml_node_t *seq)
{
    rf_schema *sc = &c->cfg->data.schema;
    memset(sc->join, 0, sizeof sc->join);
    sc->njoin = 0;
    for (yaml_node_item_t *it = seq->data.sequence.items.start; it < seq->data.sequence.items.top; it++) {
        yaml_node_t *t = yaml_document_get_node(c->doc, *it);
        char prefix[32];
        if (!t || t->type != YAML_MAPPING_NODE)
            return rf_cfg_fail_(c, mark_loc(t ? t->start_mark : seq->start_mark),
                        "data.join: each entry must be a mapping like {file: users.csv, on: user_id}");
        if (sc->njoin >= RF_MAX_JOINS)
            return rf_cfg_fail_(c, mark_loc(t->start_mark), "data.join: at most %d side tables", RF_MAX_JOINS);
        rf_cfg_join_init_(&sc->join[sc->njoin]);
        snprintf(prefix, sizeof prefix, "data.join.%d", sc->njoin++);
        rf_status st = walk_map(c, prefix, t);
        if (st) return st;
    }
    return RF_OK;
}

/* `tasks:` as a sequence of mappings: replaces the task list. */
static rf_status replace_tasks(const ctx *c, yaml_node_t *seq)
{
    rf_config *cfg = c->cfg;
    memset(cfg->tasks, 0, sizeof cfg->tasks);
    cfg->K = 0;
    for (yaml_node_item_t *it = seq->data.sequence.items.start; it < seq->data.sequence.items.top; it++) {
        yaml_node_t *t = yaml_document_get_node(c->doc, *it);
        char prefix[32];
        if (!t || t->type != YAML_MAPPING_NODE)
            return rf_cfg_fail_(c, mark_loc(t ? t->start_mark : seq->start_mark),
                        "tasks: each entry must be a mapping like {name: ctr, label: click}");
        if (cfg->K >= RF_MAX_TASKS) return rf_cfg_fail_(c, mark_loc(t->start_mark), "tasks: at most %d tasks", RF_MAX_TASKS);
        rf_cfg_task_init_(&cfg->tasks[cfg->K]);
        snprintf(prefix, sizeof prefix, "tasks.%d", cfg->K++);
        rf_status st = walk_map(c, prefix, t);
        if (st) return st;
    }
    return RF_OK;
}

static rf_status apply_node(const ctx *c, const char *key, yaml_node_t *node, loc kat)
{
    char sel[KEY_MAX];
    const char *field;
    if (node->tag && strncmp((const char *)node->tag, "tag:yaml.org,2002:", 18) != 0) /* e.g. !foo */
        return rf_cfg_fail_(c, mark_loc(node->start_mark), "%s: unsupported YAML tag %.64s", key, (const char *)node->tag);
    if (node->type == YAML_MAPPING_NODE) {
        const key_def *kd = find_in(KEYS, N_KEYS, key);
        if (!kd && split_task_key(key, sel, sizeof sel, &field)) kd = find_in(TASK_KEYS, N_TASK_KEYS, field);
        if (kd && kd->type != T_TASKS)
            return rf_cfg_fail_(c, mark_loc(node->start_mark), "%s: expected %s, got a mapping", key, rf_cfg_type_name_(kd));
        if (!rf_cfg_is_section_(key)) return rf_cfg_unknown_key_(c, key, kat);
        return walk_map(c, key, node);
    }
    if (node->type == YAML_SEQUENCE_NODE && !strcmp(key, "tasks")) return replace_tasks(c, node);
    if (node->type == YAML_SEQUENCE_NODE && !strcmp(key, "data.join")) return replace_joins(c, node);
    val v;
    memset(&v, 0, sizeof v);
    v.at = mark_loc(node->start_mark);
    if (node->type == YAML_SCALAR_NODE) {
        v.plain = node->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
        v.n = 1;
        v.item[0] = (const char *)node->data.scalar.value;
    } else {
        v.seq = 1;
        for (yaml_node_item_t *it = node->data.sequence.items.start; it < node->data.sequence.items.top; it++) {
            yaml_node_t *x = yaml_document_get_node(c->doc, *it);
            if (!x || x->type != YAML_SCALAR_NODE)
                return rf_cfg_fail_(c, mark_loc(x ? x->start_mark : node->start_mark), "%s: list items must be scalars", key);
            if (v.n == MAX_ITEMS) return rf_cfg_fail_(c, v.at, "%s: too many items (at most %d)", key, MAX_ITEMS);
            v.item[v.n++] = (const char *)x->data.scalar.value;
        }
    }
    return rf_cfg_assign_(c, key, &v, kat);
}

static rf_status yaml_fail(const ctx *c, const yaml_parser_t *p)
{
    if (p->error == YAML_MEMORY_ERROR) return rf_errorf(c->err, RF_ENOMEM, "out of memory parsing YAML");
    if (p->error == YAML_READER_ERROR)
        return rf_error_at(c->err, RF_EUSAGE, c->file, 0, 0, "invalid YAML: %s (at byte %lu)",
                           p->problem ? p->problem : "?", (unsigned long)p->problem_offset);
    loc at = mark_loc(p->problem_mark);
    return rf_cfg_fail_(c, at, "invalid YAML: %s%s%s", p->problem ? p->problem : "syntax error",
                p->context ? " " : "", p->context ? p->context : "");
}

/* Parse text as one YAML document and call fn on its root (NULL root = empty document). */
rf_status rf_cfg_with_yaml_(ctx *c, const char *text, size_t len,
                           rf_status (*fn)(const ctx *, yaml_node_t *, const char *), const char *arg)
{
    yaml_parser_t p;
    yaml_document_t doc, doc2;
    rf_status st = RF_OK;
    if (!yaml_parser_initialize(&p)) return rf_errorf(c->err, RF_ENOMEM, "out of memory");
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
    if (!yaml_parser_load(&p, &doc)) {
        st = yaml_fail(c, &p);
    } else {
        c->doc = &doc;
        st = fn(c, yaml_document_get_root_node(&doc), arg);
        if (!st && yaml_document_get_root_node(&doc)) {
            if (!yaml_parser_load(&p, &doc2)) st = yaml_fail(c, &p);
            else {
                yaml_node_t *r2 = yaml_document_get_root_node(&doc2);
                if (r2) st = rf_cfg_fail_(c, mark_loc(r2->start_mark), "only one YAML document is supported");
                yaml_document_delete(&doc2);
            }
        }
        c->doc = NULL;
        yaml_document_delete(&doc);
    }
    yaml_parser_delete(&p);
    return st;
}

static rf_status apply_root(const ctx *c, yaml_node_t *root, const char *unused)
{
    (void)unused;
    if (!root) return RF_OK;
    if (root->type == YAML_MAPPING_NODE) return walk_map(c, "", root);
    if (root->type == YAML_SCALAR_NODE && root->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
        (!root->data.scalar.length || !strcmp((const char *)root->data.scalar.value, "~") ||
         ieq((const char *)root->data.scalar.value, "null")))
        return RF_OK;
    return rf_cfg_fail_(c, mark_loc(root->start_mark), "expected a mapping of keys at the top level");
}

rf_status rf_cfg_apply_set_value_(const ctx *c, yaml_node_t *root, const char *key)
{
    if (root) return apply_node(c, key, root, mark_loc(root->start_mark));
    val v = {0, 1, 0, {NULL}, {0, 0}};
    return rf_cfg_assign_(c, key, &v, v.at);
}

rf_status rf_config_load_string(rf_config *cfg, const char *text, size_t len, const char *name, rf_error *err)
{
    rf_status bst = rf_cfg_check_bounds_(text ? text : "", text ? len : 0, name ? name : "<string>", err);
    if (bst) return bst;
    rf_config *work = malloc(sizeof *work);
    if (!work) return rf_errorf(err, RF_ENOMEM, "out of memory");
    memcpy(work, cfg, sizeof *work);
    loc reg_at = {0, 0};
    ctx c = {work, name ? name : "<string>", err, NULL, 1, &reg_at};
    rf_status st = rf_cfg_with_yaml_(&c, text ? text : "", text ? len : 0, apply_root, NULL);
    const rf_regression_cfg *rg = &work->regression;
    if (!st && reg_at.line && !rg->target[0] && (rg->thresholds.n || rg->quantiles || rg->head != RF_REG_PROGRESSIVE))
        st = rf_cfg_fail_(&c, reg_at, "regression: regression.target is not set (the numeric column to predict)");
    if (!st) {
        rf_cfg_finalize_(work);
        memcpy(cfg, work, sizeof *cfg);
    }
    free(work);
    return st;
}

rf_status rf_config_load_file(rf_config *cfg, const char *path, rf_error *err)
{
    FILE *f = fopen(path, "rb");
    char *text = NULL;
    size_t len = 0, cap = 0;
    if (!f) return rf_error_at(err, RF_EIO, path, 0, 0, "cannot open: %s", strerror(errno));
    struct stat sb;
    if (fstat(fileno(f), &sb) == 0 && S_ISDIR(sb.st_mode)) {
        fclose(f);
        return rf_error_at(err, RF_EIO, path, 0, 0, "is a directory, not a YAML configuration file");
    }
    for (;;) {
        if (len > RF_CONFIG_MAX_BYTES) { /* e.g. -c /dev/zero: stop reading, bounded memory */
            free(text);
            fclose(f);
            return rf_error_at(err, RF_EUSAGE, path, 0, 0, "configuration too large: more than %u bytes",
                               RF_CONFIG_MAX_BYTES);
        }
        if (len == cap) {
            char *q = realloc(text, cap = cap ? cap * 2 : 16384);
            if (!q) {
                free(text);
                fclose(f);
                return rf_errorf(err, RF_ENOMEM, "out of memory reading %s", path);
            }
            text = q;
        }
        size_t got = fread(text + len, 1, cap - len, f);
        len += got;
        if (got == 0) break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(text);
        return rf_error_at(err, RF_EIO, path, 0, 0, "read error: %s", strerror(errno ? errno : EIO));
    }
    rf_status st = rf_config_load_string(cfg, text, len, path, err);
    free(text);
    return st;
}
