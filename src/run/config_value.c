/* config_value.c - one value of the configuration: text (or a YAML list) parsed by the key's
 * type, range-checked and stored in its field; numbers read back for validation. Setters
 * clear whole fields (strings, lists) so the struct is a function of the resolved
 * configuration.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>

#include "run/config_int.h"

static int only_space(const char *s)
{
    while (isspace((unsigned char)*s)) s++;
    return *s == 0;
}

static const char *const BOOL_TRUE[] = {"true", "yes", "on", "1"};
static const char *const BOOL_FALSE[] = {"false", "no", "off", "0"};

static int parse_bool(const char *s)
{
    for (size_t i = 0; i < 4; i++) {
        if (ieq(s, BOOL_TRUE[i])) return 1;
        if (ieq(s, BOOL_FALSE[i])) return 0;
    }
    return -1;
}

/* Index of s in "a|b|c", -1 if absent. */
static int enum_index(const char *choices, const char *s)
{
    size_t n = strlen(s);
    for (int i = 0; *choices; i++) {
        size_t m = strcspn(choices, "|");
        if (m == n && strncmp(choices, s, n) == 0) return i;
        choices += m + (choices[m] == '|');
    }
    return -1;
}

double rf_cfg_get_num_(const void *base, const key_def *kd)
{
    const char *f = (const char *)base + kd->off;
    switch (kd->type) {
    case T_INT: case T_BOOL: case T_ENUM: { int x; memcpy(&x, f, sizeof x); return x; }
    case T_U32: { uint32_t x; memcpy(&x, f, sizeof x); return x; }
    case T_U64: { uint64_t x; memcpy(&x, f, sizeof x); return (double)x; }
    case T_SIZE: { size_t x; memcpy(&x, f, sizeof x); return (double)x; }
    case T_FLOAT: { float x; memcpy(&x, f, sizeof x); return x; }
    default: return 0;
    }
}

int rf_cfg_is_numeric_(const key_def *kd) { return kd->type <= T_FLOAT; }

/* 1 if x is within kd's range, else 0 with the rule in why. */
int rf_cfg_in_range_(const key_def *kd, double x, char *why, size_t wn)
{
    int lo_ok = kd->flags & LO_OPEN ? x > kd->lo : x >= kd->lo;
    int hi_ok = kd->flags & HI_OPEN ? x < kd->hi : x <= kd->hi;
    if (lo_ok && hi_ok && !isnan(x)) return 1;
    if (kd->hi == INF)
        snprintf(why, wn, "must be %s %.10g", kd->flags & LO_OPEN ? ">" : ">=", kd->lo);
    else
        snprintf(why, wn, "must be in %c%.10g, %.10g%c", kd->flags & LO_OPEN ? '(' : '[', kd->lo, kd->hi,
                 kd->flags & HI_OPEN ? ')' : ']');
    return 0;
}

/* Parse s as a number of type t with kd's range; store into dst. 1 ok, else 0 + why. */
static int parse_num(ktype t, const key_def *kd, const char *s, void *dst, char *why, size_t wn)
{
    char *end, rule[96];
    double x;
    while (isspace((unsigned char)*s)) s++;
    errno = 0;
    if (t == T_FLOAT) {
        double d = strtod(s, &end);
        if (end == s || !only_space(end)) {
            snprintf(why, wn, "expected a number, got \"%s\"", s);
            return 0;
        }
        if (!isfinite(d) || fabs(d) > FMAX) {
            snprintf(why, wn, "%s is not a finite float", s);
            return 0;
        }
        float f = strtof(s, NULL);
        x = f;
        if (!rf_cfg_in_range_(kd, x, rule, sizeof rule)) goto range;
        memcpy(dst, &f, sizeof f);
    } else if (t == T_U64 || t == T_SIZE) {
        unsigned long long u = *s == '-' ? 0 : strtoull(s, &end, 10);
        if (*s == '-' || end == s || !only_space(end)) {
            snprintf(why, wn, "expected a non-negative integer, got \"%s\"", s);
            return 0;
        }
        if (errno == ERANGE || (t == T_SIZE && u > SIZE_MAX)) {
            snprintf(why, wn, "%s is too large", s);
            return 0;
        }
        x = (double)u;
        if (!rf_cfg_in_range_(kd, x, rule, sizeof rule)) goto range;
        if (t == T_U64) { uint64_t v = u; memcpy(dst, &v, sizeof v); }
        else { size_t v = (size_t)u; memcpy(dst, &v, sizeof v); }
    } else { /* T_INT, T_U32 */
        long long l = strtoll(s, &end, 10);
        long long lo = t == T_U32 ? 0 : INT_MIN, hi = t == T_U32 ? (long long)UINT32_MAX : INT_MAX;
        if (end == s || !only_space(end)) {
            snprintf(why, wn, "expected an integer, got \"%s\"", s);
            return 0;
        }
        if (errno == ERANGE || l < lo || l > hi) {
            snprintf(why, wn, "%s is out of range (must be in [%lld, %lld])", s, lo, hi);
            return 0;
        }
        x = (double)l;
        if (!rf_cfg_in_range_(kd, x, rule, sizeof rule)) goto range;
        if (t == T_U32) { uint32_t v = (uint32_t)l; memcpy(dst, &v, sizeof v); }
        else { int v = (int)l; memcpy(dst, &v, sizeof v); }
    }
    return 1;
range:
    snprintf(why, wn, "%s is out of range (%s)", s, rule);
    return 0;
}

rf_status rf_cfg_fail_(const ctx *c, loc at, const char *fmt, ...)
{
    char msg[sizeof ((rf_error *)0)->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return rf_error_at(c->err, RF_EUSAGE, c->file, c->marks ? at.line : 0, c->marks ? at.col : 0, "%s", msg);
}

static int is_null(const val *v)
{
    const char *s = v->n ? v->item[0] : "";
    return !v->seq && (v->n == 0 || (v->plain && (!*s || !strcmp(s, "~") || ieq(s, "null"))));
}

/* Items of a list value: the sequence, or the scalar split at commas (empty = no items).
 * *owned gets a buffer to free. Returns the count (MAX_ITEMS + 1 = too many), -1 on OOM. */
static int list_items(const val *v, const char **items, char **owned)
{
    *owned = NULL;
    if (v->seq) {
        memcpy(items, v->item, (size_t)v->n * sizeof *items);
        return v->n;
    }
    if (is_null(v) || only_space(v->item[0])) return 0;
    char *s = *owned = malloc(strlen(v->item[0]) + 1);
    if (!s) return -1;
    strcpy(s, v->item[0]);
    int n = 0;
    for (char *tok = s;; n++) {
        char *comma = strchr(tok, ',');
        if (comma) *comma = 0;
        while (isspace((unsigned char)*tok)) tok++;
        for (char *e = tok + strlen(tok); e > tok && isspace((unsigned char)e[-1]);) *--e = 0;
        if (n == MAX_ITEMS) return MAX_ITEMS + 1;
        items[n] = tok;
        if (!comma) return n + 1;
        tok = comma + 1;
    }
}

/* "name", "name:SEP" / "name:SEP:POOL" (a multi-valued field, POOL sum|mean, default sum),
 * optionally followed by ":hash:N" (hash into N buckets) or ":min:N" (this vocabulary's min
 * count, overriding data.min_count); or "name:bucket:N" (a numeric column cut into N quantile
 * buckets). 1 ok, else 0 + why. */
static int parse_cat(const char *s, rf_cat_spec *c, char *why, size_t wn)
{
    const char *colon = strchr(s, ':');
    size_t n = colon ? (size_t)(colon - s) : strlen(s);
    memset(c, 0, sizeof *c);
    if (n == 0 || n >= RF_NAME_MAX) {
        snprintf(why, wn, "bad column name in \"%s\" (1..%d bytes)", s, RF_NAME_MAX - 1);
        return 0;
    }
    memcpy(c->name, s, n);
    const char *p = colon ? colon + 1 : NULL;
    while (p) {
        if (!strncmp(p, "min:", 4)) { /* this field's vocabulary min count */
            char *end;
            unsigned long v = (p[4] >= '0' && p[4] <= '9') ? strtoul(p + 4, &end, 10) : 0;
            if (!v || v > 1000000000ul || (*end && *end != ':') || c->min_count) {
                snprintf(why, wn, "\"%s\": expected :min:N with N in 1..1000000000", s);
                return 0;
            }
            c->min_count = (uint32_t)v;
            p = *end ? end + 1 : NULL;
            continue;
        }
        int is_hash = !strncmp(p, "hash:", 5), is_bucket = !strncmp(p, "bucket:", 7);
        if (is_hash || is_bucket) {
            const char *q = p + (is_hash ? 5 : 7);
            char *end;
            unsigned long v = (*q >= '0' && *q <= '9') ? strtoul(q, &end, 10) : 0;
            if (!v || v > (is_hash ? (1ul << 31) - 2 : 1ul << 20) || (*end && *end != ':') || c->hash || c->bucket) {
                snprintf(why, wn, "\"%s\": expected :%s:N with N in 1..%lu", s, is_hash ? "hash" : "bucket",
                         is_hash ? (1ul << 31) - 2 : 1ul << 20);
                return 0;
            }
            if (is_hash) c->hash = (uint32_t)v;
            else c->bucket = (uint32_t)v;
            p = *end ? end + 1 : NULL;
            continue;
        }
        if (c->multi || c->hash || c->bucket || !p[0] || (p[1] && p[1] != ':')) goto bad;
        c->multi = 1;
        c->sep = p[0];
        c->pooling = RF_POOL_SUM;
        if (!p[1]) break;
        const char *q = p + 2;
        if (!strncmp(q, "sum", 3) && (!q[3] || q[3] == ':')) p = q[3] ? q + 4 : NULL;
        else if (!strncmp(q, "mean", 4) && (!q[4] || q[4] == ':')) {
            c->pooling = RF_POOL_MEAN;
            p = q[4] ? q + 5 : NULL;
        } else if (!strncmp(q, "hash:", 5) || !strncmp(q, "min:", 4)) p = q;
        else goto bad;
    }
    if (c->bucket && c->multi) {
        snprintf(why, wn, "\"%s\": a bucketized column is a single number, not multi-valued", s);
        return 0;
    }
    if (c->min_count && (c->hash || c->bucket)) {
        snprintf(why, wn, "\"%s\": :min:N is a vocabulary threshold; a %s field has no vocabulary", s,
                 c->hash ? "hashed" : "bucketized");
        return 0;
    }
    return 1;
bad:
    snprintf(why, wn, "\"%s\": expected name or name:SEP:POOL (one-character SEP, POOL sum|mean), then optionally :hash:N or :min:N; or name:bucket:N", s);
    return 0;
}

/* A delimiter: "tab" or "\\t" for a tab, else 1..RF_DELIM_MAX-1 bytes without quotes or line
 * breaks. 1 ok (d filled, NUL-terminated), else 0. */
static int parse_delim(const char *s, char d[RF_DELIM_MAX])
{
    memset(d, 0, RF_DELIM_MAX);
    if (ieq(s, "tab") || !strcmp(s, "\\t")) {
        d[0] = '\t';
        return 1;
    }
    size_t n = strlen(s);
    if (n < 1 || n >= RF_DELIM_MAX || strpbrk(s, "\"\n\r")) return 0;
    memcpy(d, s, n);
    return 1;
}

/* Store v into key kd of base (an rf_config, or an rf_task_cfg for TASK_KEYS). */
rf_status rf_cfg_set_value_(const ctx *c, void *base, const key_def *kd, const char *key, const val *v)
{
    char *field = (char *)base + kd->off, why[400];
    rf_config *cfg = base;
    const char *s = v->n ? v->item[0] : "";
    const char *items[MAX_ITEMS];
    char *owned = NULL;
    int n = 0;
    rf_status st = RF_OK;

    if (v->seq && kd->type <= T_ENUM && kd->type != T_STR)
        return rf_cfg_fail_(c, v->at, "%s: expected %s, got a list", key, rf_cfg_type_name_(kd));
    if (v->seq && (kd->type == T_STR || kd->type == T_DELIM || kd->type == T_DSTR || kd->type == T_FILL))
        return rf_cfg_fail_(c, v->at, "%s: expected a string, got a list", key);
    if (((kd->type >= T_HIDDEN && kd->type <= T_DENSE) || kd->type == T_STRLIST || kd->type == T_FLOATS) &&
        !(kd->type == T_RESLAYERS && !v->seq && (ieq(s, "all") || ieq(s, "none")))) {
        n = list_items(v, items, &owned);
        if (n < 0) return rf_errorf(c->err, RF_ENOMEM, "out of memory");
    }
    switch (kd->type) {
    case T_INT: case T_U32: case T_U64: case T_SIZE: case T_FLOAT:
        if (!parse_num(kd->type, kd, s, field, why, sizeof why)) st = rf_cfg_fail_(c, v->at, "%s: %s", key, why);
        break;
    case T_BOOL: {
        int b = parse_bool(s);
        if (b < 0) st = rf_cfg_fail_(c, v->at, "%s: expected true/false (or yes/no, on/off, 1/0), got \"%s\"", key, s);
        else {
            if (kd->flags & NEG) b = !b;
            memcpy(field, &b, sizeof b);
        }
        break;
    }
    case T_STR:
        if (is_null(v)) s = "";
        if (strlen(s) >= kd->size)
            st = rf_cfg_fail_(c, v->at, "%s: value too long (%zu bytes, at most %zu)", key, strlen(s), kd->size - 1);
        else put_str(field, kd->size, s);
        break;
    case T_ENUM: {
        int e = enum_index(kd->choices, s);
        if (e < 0) {
            char allowed[128];
            size_t m = 0;
            for (const char *p = kd->choices; *p && m + 3 < sizeof allowed; p++) {
                allowed[m++] = *p == '|' ? ',' : *p;
                if (*p == '|') allowed[m++] = ' ';
            }
            allowed[m] = 0;
            st = rf_cfg_fail_(c, v->at, "%s: unknown value \"%s\" (allowed: %s)", key, s, allowed);
        } else memcpy(field, &e, sizeof e);
        break;
    }
    case T_WIDTHS: {
        rf_widths wd;
        memset(&wd, 0, sizeof wd);
        if (n > RF_MAX_LAYERS) {
            st = rf_cfg_fail_(c, v->at, "%s: expected at most %d widths, got %d", key, RF_MAX_LAYERS, n);
            break;
        }
        for (int l = 0; l < n && !st; l++)
            if (!parse_num(T_INT, kd, items[l], &wd.w[l], why, sizeof why)) st = rf_cfg_fail_(c, v->at, "%s: %s", key, why);
        if (st) break;
        wd.n = n;
        memcpy(field, &wd, sizeof wd);
        break;
    }
    case T_HIDDEN: {
        int w[RF_MAX_LAYERS];
        if (n < 1 || n > RF_MAX_LAYERS) {
            st = rf_cfg_fail_(c, v->at, "%s: expected 1 to %d layer widths, got %d", key, RF_MAX_LAYERS, n);
            break;
        }
        for (int l = 0; l < n && !st; l++)
            if (!parse_num(T_INT, kd, items[l], &w[l], why, sizeof why)) st = rf_cfg_fail_(c, v->at, "%s: %s", key, why);
        if (st) break;
        cfg->model.n_hidden = n;
        memset(cfg->model.hidden, 0, sizeof cfg->model.hidden);
        memcpy(cfg->model.hidden, w, (size_t)n * sizeof *w);
        break;
    }
    case T_RESLAYERS: {
        uint32_t mask = 0;
        if (!v->seq && ieq(s, "all")) mask = RES_ALL;
        else if (!v->seq && ieq(s, "none")) mask = 0;
        else if (n > MAX_ITEMS) st = rf_cfg_fail_(c, v->at, "%s: too many items", key);
        else
            for (int i = 0; i < n && !st; i++) {
                int l;
                if (!parse_num(T_INT, kd, items[i], &l, why, sizeof why))
                    st = rf_cfg_fail_(c, v->at, "%s: expected all, none or a list of hidden-layer indices: %s", key, why);
                else mask |= 1u << l;
            }
        if (!st) cfg->model.res_layers = mask;
        break;
    }
    case T_CATS: {
        rf_schema *sc = &cfg->data.schema;
        int cap = (int)(sizeof sc->cat / sizeof sc->cat[0]);
        rf_cat_spec cs[sizeof sc->cat / sizeof sc->cat[0]];
        if (n > cap) {
            st = rf_cfg_fail_(c, v->at, "%s: at most %d categorical columns", key, cap);
            break;
        }
        for (int f = 0; f < n && !st; f++)
            if (!parse_cat(items[f], &cs[f], why, sizeof why)) st = rf_cfg_fail_(c, v->at, "%s: %s", key, why);
        if (st) break;
        memset(sc->cat, 0, sizeof sc->cat);
        memcpy(sc->cat, cs, (size_t)n * sizeof *cs);
        sc->F = n;
        break;
    }
    case T_DENSE: {
        rf_schema *sc = &cfg->data.schema;
        int cap = (int)(sizeof sc->dense / sizeof sc->dense[0]);
        if (n > cap) {
            st = rf_cfg_fail_(c, v->at, "%s: at most %d dense columns", key, cap);
            break;
        }
        int dn[sizeof sc->dense / sizeof sc->dense[0]];
        char nm[sizeof sc->dense / sizeof sc->dense[0]][RF_NAME_MAX];
        for (int d = 0; d < n && !st; d++) {
            static const char *const norms[] = {"none", "standardize", "minmax"};
            const char *colon = strrchr(items[d], ':');
            size_t len = strlen(items[d]);
            dn[d] = 0;
            for (int k = 0; colon && k < 3; k++)
                if (!strcmp(colon + 1, norms[k])) {
                    dn[d] = k + 1;
                    len = (size_t)(colon - items[d]);
                }
            if (!len || len >= RF_NAME_MAX) {
                st = rf_cfg_fail_(c, v->at, "%s: bad column name \"%s\" (1..%d bytes)", key, items[d], RF_NAME_MAX - 1);
                break;
            }
            memset(nm[d], 0, RF_NAME_MAX);
            memcpy(nm[d], items[d], len);
        }
        if (st) break;
        memset(sc->dense, 0, sizeof sc->dense);
        memset(sc->dense_norm, 0, sizeof sc->dense_norm);
        for (int d = 0; d < n; d++) {
            memcpy(sc->dense[d], nm[d], RF_NAME_MAX);
            sc->dense_norm[d] = dn[d];
        }
        sc->D = n;
        break;
    }
    case T_DELIM: case T_DSTR: {
        char d[RF_DELIM_MAX];
        if (!parse_delim(s, d)) {
            st = rf_cfg_fail_(c, v->at, "%s: expected 1..%d characters without quotes or line breaks (\"\\t\" or tab for a tab), got \"%s\"",
                      key, RF_DELIM_MAX - 1, s);
        } else if (kd->type == T_DSTR) {
            put_str(field, kd->size, d);
        } else {
            cfg->data.schema.delim = d[0];
            memset(cfg->data.schema.delim_str, 0, sizeof cfg->data.schema.delim_str);
            if (d[1]) memcpy(cfg->data.schema.delim_str, d, strlen(d));
        }
        break;
    }
    case T_STRLIST: {
        int mx = (int)kd->hi;
        size_t es = (size_t)kd->lo;
        if (n > mx) {
            st = rf_cfg_fail_(c, v->at, "%s: at most %d items", key, mx);
            break;
        }
        for (int i = 0; i < n && !st; i++)
            if (strlen(items[i]) >= es) st = rf_cfg_fail_(c, v->at, "%s: item \"%s\" too long (at most %zu bytes)", key, items[i], es - 1);
        if (st) break;
        memset(field, 0, sizeof(int) + (size_t)mx * es);
        memcpy(field, &n, sizeof n);
        for (int i = 0; i < n; i++) memcpy(field + sizeof(int) + (size_t)i * es, items[i], strlen(items[i]));
        break;
    }
    case T_FILL: {
        rf_schema *sc = &cfg->data.schema;
        char *end;
        double x = strtod(s, &end);
        int fl = ieq(s, "error") ? RF_FILL_ERROR : ieq(s, "zero") ? RF_FILL_ZERO : ieq(s, "mean") ? RF_FILL_MEAN : -1;
        if (fl < 0 && (end == s || !only_space(end) || !isfinite(x) || fabs(x) > FMAX)) {
            st = rf_cfg_fail_(c, v->at, "%s: expected error, zero, mean or a number, got \"%s\"", key, s);
            break;
        }
        sc->fill = fl < 0 ? RF_FILL_VALUE : fl;
        sc->fill_value = fl < 0 ? (float)x : 0.0f;
        break;
    }
    case T_FLOATS: {
        rf_floats fl;
        memset(&fl, 0, sizeof fl);
        if (n > RF_MAX_THRESHOLDS || n == 1) {
            st = rf_cfg_fail_(c, v->at, "%s: expected 2..%d values (v_0 = the minimum ... v_K = the maximum) or [], got %d", key,
                      RF_MAX_THRESHOLDS, n);
            break;
        }
        for (int i = 0; i < n && !st; i++) {
            if (!parse_num(T_FLOAT, kd, items[i], &fl.v[i], why, sizeof why)) st = rf_cfg_fail_(c, v->at, "%s: %s", key, why);
            else if (i > 0 && !(fl.v[i] > fl.v[i - 1]))
                st = rf_cfg_fail_(c, v->at, "%s: values must be strictly ascending (%s after %s)", key, items[i], items[i - 1]);
        }
        if (st) break;
        fl.n = n;
        memcpy(field, &fl, sizeof fl);
        break;
    }
    case T_JOINS:
        st = rf_cfg_fail_(c, v->at, "%s: expected a list of mappings, e.g. [{file: users.csv, on: user_id}]", key);
        break;
    case T_TASKS:
        st = rf_cfg_fail_(c, v->at, "%s: expected a list of mappings, e.g. [{name: ctr, label: click}]", key);
        break;
    }
    free(owned);
    return st;
}
