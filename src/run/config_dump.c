/* config_dump.c - rf_config_dump (the resolved configuration as YAML that loads back to the same
 * struct) and rf_config_describe (every key: type, default, help).
 */
#include <stdlib.h>

#include "run/config_int.h"

/* A YAML scalar: plain when unambiguous, else double-quoted with escapes. */
static void sb_scalar(sbuf *b, const char *s)
{
    static const char *const reserved[] = {"null", "~", "true", "false", "yes", "no", "on", "off", "y", "n"};
    int plain = *s && (isalnum((unsigned char)*s) || *s == '_' || *s == '/' || *s == '.');
    for (const char *p = s; plain && *p; p++)
        plain = isalnum((unsigned char)*p) || strchr("_-./+", *p);
    for (size_t i = 0; plain && i < sizeof reserved / sizeof *reserved; i++)
        if (ieq(s, reserved[i])) plain = 0;
    if (plain) {
        sb_puts(b, s);
        return;
    }
    sb_puts(b, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') sb_printf(b, "\\%c", *p);
        else if (*p == '\t') sb_puts(b, "\\t");
        else if (*p == '\n') sb_puts(b, "\\n");
        else if (*p < 0x20 || *p == 0x7f) sb_printf(b, "\\x%02X", *p);
        else sb_add(b, (const char *)p, 1);
    }
    sb_puts(b, "\"");
}

/* Shortest of %.6g..%.9g that reads back (strtof) to exactly f. */
static void fmt_float(char *buf, size_t n, float f)
{
    for (int prec = 6; prec <= 9; prec++) {
        snprintf(buf, n, "%.*g", prec, (double)f);
        if (strtof(buf, NULL) == f) return;
    }
}

static void fmt_task(sbuf *b, const rf_task_cfg *t);

static void fmt_value(sbuf *b, const void *base, const key_def *kd)
{
    const char *field = (const char *)base + kd->off;
    const rf_config *cfg = base;
    char tmp[64];
    switch (kd->type) {
    case T_INT: { int x; memcpy(&x, field, sizeof x); sb_printf(b, "%d", x); break; }
    case T_U32: { uint32_t x; memcpy(&x, field, sizeof x); sb_printf(b, "%lu", (unsigned long)x); break; }
    case T_U64: { uint64_t x; memcpy(&x, field, sizeof x); sb_printf(b, "%llu", (unsigned long long)x); break; }
    case T_SIZE: { size_t x; memcpy(&x, field, sizeof x); sb_printf(b, "%zu", x); break; }
    case T_FLOAT: { float x; memcpy(&x, field, sizeof x); fmt_float(tmp, sizeof tmp, x); sb_puts(b, tmp); break; }
    case T_BOOL: {
        int x;
        memcpy(&x, field, sizeof x);
        if (kd->flags & NEG) x = !x;
        sb_puts(b, x ? "true" : "false");
        break;
    }
    case T_STR: sb_scalar(b, field); break;
    case T_ENUM: {
        int x;
        memcpy(&x, field, sizeof x);
        if (*enum_name(kd->choices, x, tmp, sizeof tmp)) sb_puts(b, tmp);
        else sb_printf(b, "%d", x);
        break;
    }
    case T_HIDDEN:
        sb_puts(b, "[");
        for (int l = 0; l < cfg->model.n_hidden && l < RF_MAX_LAYERS; l++)
            sb_printf(b, "%s%d", l ? ", " : "", cfg->model.hidden[l]);
        sb_puts(b, "]");
        break;
    case T_WIDTHS: {
        rf_widths wd;
        memcpy(&wd, field, sizeof wd);
        sb_puts(b, "[");
        for (int l = 0; l < wd.n && l < RF_MAX_LAYERS; l++) sb_printf(b, "%s%d", l ? ", " : "", wd.w[l]);
        sb_puts(b, "]");
        break;
    }
    case T_RESLAYERS:
        if (cfg->model.res_layers == RES_ALL) sb_puts(b, "all");
        else if (cfg->model.res_layers == 0) sb_puts(b, "none");
        else {
            sb_puts(b, "[");
            for (int l = 0, first = 1; l < 32; l++)
                if (cfg->model.res_layers >> l & 1u) {
                    sb_printf(b, "%s%d", first ? "" : ", ", l);
                    first = 0;
                }
            sb_puts(b, "]");
        }
        break;
    case T_CATS:
        sb_puts(b, "[");
        for (int f = 0; f < cfg->data.schema.F && f < 64; f++) {
            const rf_cat_spec *c = &cfg->data.schema.cat[f];
            char item[RF_NAME_MAX + 48];
            int w;
            if (c->multi)
                w = snprintf(item, sizeof item, "%s:%c:%s", c->name, c->sep, c->pooling == RF_POOL_MEAN ? "mean" : "sum");
            else
                w = snprintf(item, sizeof item, "%s", c->name);
            if (w > 0 && (size_t)w < sizeof item && (c->hash || c->bucket))
                snprintf(item + w, sizeof item - (size_t)w, ":%s:%lu", c->hash ? "hash" : "bucket",
                         (unsigned long)(c->hash ? c->hash : c->bucket));
            if (w > 0 && (size_t)w < sizeof item && c->min_count)
                snprintf(item + strlen(item), sizeof item - strlen(item), ":min:%lu", (unsigned long)c->min_count);
            if (f) sb_puts(b, ", ");
            sb_scalar(b, item);
        }
        sb_puts(b, "]");
        break;
    case T_DENSE:
        sb_puts(b, "[");
        for (int d = 0; d < cfg->data.schema.D && d < 128; d++) {
            static const char *const norms[] = {"none", "standardize", "minmax"};
            int dn = cfg->data.schema.dense_norm[d];
            char item[RF_NAME_MAX + 16];
            if (dn >= 1 && dn <= 3) snprintf(item, sizeof item, "%s:%s", cfg->data.schema.dense[d], norms[dn - 1]);
            else snprintf(item, sizeof item, "%s", cfg->data.schema.dense[d]);
            if (d) sb_puts(b, ", ");
            sb_scalar(b, item);
        }
        sb_puts(b, "]");
        break;
    case T_DELIM: {
        char s[RF_DELIM_MAX];
        sb_scalar(b, rf_schema_delim(&cfg->data.schema, s));
        break;
    }
    case T_DSTR: sb_scalar(b, field[0] ? field : ","); break;
    case T_STRLIST: {
        int cnt;
        memcpy(&cnt, field, sizeof cnt);
        sb_puts(b, "[");
        for (int i = 0; i < cnt && i < (int)kd->hi; i++) {
            if (i) sb_puts(b, ", ");
            sb_scalar(b, field + sizeof(int) + (size_t)i * (size_t)kd->lo);
        }
        sb_puts(b, "]");
        break;
    }
    case T_FILL: {
        int fl;
        memcpy(&fl, field, sizeof fl);
        if (fl == RF_FILL_VALUE) {
            fmt_float(tmp, sizeof tmp, cfg->data.schema.fill_value);
            sb_puts(b, tmp);
        } else {
            sb_puts(b, fl == RF_FILL_ZERO ? "zero" : fl == RF_FILL_MEAN ? "mean" : "error");
        }
        break;
    }
    case T_JOINS:
        sb_puts(b, "[");
        for (int j = 0; j < cfg->data.schema.njoin && j < RF_MAX_JOINS; j++) {
            sb_puts(b, j ? ", {" : "{");
            for (size_t i = 0; i < N_JOIN_KEYS; i++) {
                sb_printf(b, "%s%s: ", i ? ", " : "", JOIN_KEYS[i].name);
                fmt_value(b, &cfg->data.schema.join[j], &JOIN_KEYS[i]);
            }
            sb_puts(b, "}");
        }
        sb_puts(b, "]");
        break;
    case T_FLOATS: {
        rf_floats fl;
        memcpy(&fl, field, sizeof fl);
        sb_puts(b, "[");
        for (int i = 0; i < fl.n && i < RF_MAX_THRESHOLDS; i++) {
            fmt_float(tmp, sizeof tmp, fl.v[i]);
            sb_printf(b, "%s%s", i ? ", " : "", tmp);
        }
        sb_puts(b, "]");
        break;
    }
    case T_TASKS:
        sb_puts(b, "[");
        for (int k = 0; k < clamp_k(cfg->K); k++) {
            if (k) sb_puts(b, ", ");
            fmt_task(b, &cfg->tasks[k]);
        }
        sb_puts(b, "]");
        break;
    }
}

/* Whether the dump writes key kd of base (the config cfg, or one of its tasks; cfg NULL: none
 * known): not when its flag (QUIET0: an int at 0 or an empty string, TWIN) leaves it out. */
static int dumped(const void *base, const key_def *kd, const rf_config *cfg)
{
    if ((kd->flags & QUIET0) && kd->type == T_STR) {
        if (!((const char *)base)[kd->off]) return 0;
    } else if (kd->flags & QUIET0) {
        int x;
        memcpy(&x, (const char *)base + kd->off, sizeof x);
        if (x == 0) return 0;
    }
    return !(kd->flags & TWIN) || (cfg && cfg->model.type == RF_MODEL_TWIN);
}

/* One task as a YAML flow mapping (a key left out is never the first: "{name: ..." leads). */
static void fmt_task(sbuf *b, const rf_task_cfg *t)
{
    sb_puts(b, "{");
    for (size_t i = 0; i < N_TASK_KEYS; i++) {
        if (!dumped(t, &TASK_KEYS[i], NULL)) continue;
        sb_printf(b, "%s%s: ", i ? ", " : "", TASK_KEYS[i].name);
        fmt_value(b, t, &TASK_KEYS[i]);
    }
    sb_puts(b, "}");
}

const char *rf_cfg_type_name_(const key_def *kd)
{
    switch (kd->type) {
    case T_INT: case T_U32: return "int";
    case T_U64: case T_SIZE: return "uint64";
    case T_FLOAT: return "float";
    case T_BOOL: return "bool";
    case T_STR: return "string";
    case T_ENUM: return kd->choices;
    case T_HIDDEN: return "int-list";
    case T_WIDTHS: return "int-list";
    case T_RESLAYERS: return "all|none|int-list";
    case T_CATS: case T_DENSE: return "string-list";
    case T_DELIM: case T_DSTR: return "string";
    case T_STRLIST: return "string-list";
    case T_FILL: return "error|zero|mean|float";
    case T_JOINS: return "join-list";
    case T_TASKS: return "task-list";
    case T_FLOATS: return "float-list";
    }
    return "?";
}

char *rf_config_dump(const rf_config *cfg)
{
    sbuf b = {NULL, 0, 0, 0};
    size_t prev = 0;
    const char *sec = "";
    sb_puts(&b, "# resflow resolved configuration\n");
    for (size_t i = 0; i < N_KEYS; i++) {
        const key_def *kd = &KEYS[i];
        size_t sl = section_len(kd->name);
        if (kd->type == T_TASKS) {
            int K = clamp_k(cfg->K);
            sb_puts(&b, K ? "tasks:\n" : "tasks: []\n");
            for (int k = 0; k < K; k++) {
                sb_puts(&b, "  - ");
                fmt_task(&b, &cfg->tasks[k]);
                sb_puts(&b, "\n");
            }
            sec = "";
            continue;
        }
        if (!dumped(cfg, kd, cfg)) continue;
        if (sl != prev || strncmp(sec, kd->name, sl)) sb_printf(&b, "%.*s:\n", (int)sl, kd->name);
        sec = kd->name;
        prev = sl;
        sb_printf(&b, "  %s: ", kd->name + sl + 1);
        fmt_value(&b, cfg, kd);
        sb_puts(&b, "\n");
    }
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    return b.p;
}

/* One line of describe: prefix + name, type, default (kd's value in base), help. */
static void describe_key(sbuf *b, const char *prefix, const void *base, const key_def *kd)
{
    char name[64];
    sbuf v = {NULL, 0, 0, 0};
    fmt_value(&v, base, kd);
    snprintf(name, sizeof name, "%s%s", prefix, kd->name);
    sb_printf(b, "%-22s %-18s %-14s ", name, rf_cfg_type_name_(kd), v.p ? v.p : "");
    sb_puts(b, kd->help);
    sb_puts(b, "\n");
    b->oom |= v.oom;
    free(v.p);
}

char *rf_config_describe(void)
{
    rf_config *d = malloc(sizeof *d);
    rf_task_cfg t;
    sbuf b = {NULL, 0, 0, 0};
    if (!d) return NULL;
    rf_config_default(d);
    rf_cfg_task_init_(&t);
    for (size_t i = 0; i < N_KEYS; i++) {
        describe_key(&b, "", d, &KEYS[i]);
        if (KEYS[i].type == T_JOINS) {
            rf_join_spec js;
            rf_cfg_join_init_(&js);
            for (size_t j = 0; j < N_JOIN_KEYS; j++) describe_key(&b, "data.join.N.", &js, &JOIN_KEYS[j]);
        }
        if (KEYS[i].type != T_TASKS) continue;
        for (size_t j = 0; j < N_TASK_KEYS; j++) describe_key(&b, "tasks.N.", &t, &TASK_KEYS[j]);
    }
    free(d);
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    return b.p;
}
