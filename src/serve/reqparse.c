/* reqparse.c - the JSON body of POST /v1/score into a rf_score_request (serve_http.h). Kept apart
 * from the server so a fuzz target can call it alone. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/names.h"
#include "serve/reqparse_impl.h"

#define NUMBUF 32 /* one formatted number: %.17g or an integer */

/* Here: root is jansson's tree; names, values (context's pairs, then every candidate's), cands
 * and nums (NUMBUF bytes per pair) are allocations of their own. */
typedef rf_req_storage_ storage;

void rf_req_storage_free_(rf_req_storage_ *st)
{
    if (!st) return;
    if (st->root) json_decref(st->root);
    free(st->names);
    free(st->values);
    free(st->cands);
    free(st->nums);
    free(st->reals);
    free(st);
}

static void st_free(storage *st) { rf_req_storage_free_(st); }

/* An error naming field (copied into fbuf, 160 bytes); the storage is freed. */
static rf_status fail_at(char *fbuf, storage *st, rf_error *err, rf_status code, const char *field, const char *msg)
{
    snprintf(fbuf, 160, "%s", field);
    st_free(st);
    return rf_errorf(err, code, "%s%s%s", field, field[0] ? ": " : "", msg);
}

static rf_status fail(rf_serve_parsed *out, storage *st, rf_error *err, rf_status code, const char *field,
                      const char *msg)
{
    out->priv_ = NULL;
    memset(&out->req, 0, sizeof out->req);
    return fail_at(out->field, st, err, code, field, msg);
}

/* The columns a request may name, sorted for the one lookup (core/names.h). */
typedef struct {
    const char *const *names;
    int n;
    int *by;
} colset;

/* One object's pairs into names/values from slot *k on. where = "context" or "candidates[i]". */
static rf_status take_object(char *fbuf, storage *st, json_t *obj, const char *where, size_t *k,
                             const colset *cs, rf_error *err)
{
    const char *const *columns = cs->names;
    const char *key;
    json_t *v;
    char field[160], msg[300];
    json_object_foreach(obj, key, v) {
        if (columns && rf_names_find(columns, cs->by, cs->n, key) < 0) {
            snprintf(field, sizeof field, "%s.%.100s", where, key);
            snprintf(msg, sizeof msg, "unknown column '%.100s'", key);
            return fail_at(fbuf, st, err, RF_EUSAGE, field, msg);
        }
        const char *val;
        char *nb = st->nums + *k * NUMBUF;
        if (json_is_string(v)) {
            val = json_string_value(v);
            if (strlen(val) != json_string_length(v)) {
                snprintf(field, sizeof field, "%s.%.100s", where, key);
                return fail_at(fbuf, st, err, RF_EDATA, field, "a string with a NUL character");
            }
        } else if (json_is_integer(v)) {
            snprintf(nb, NUMBUF, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
            val = nb;
        } else if (json_is_real(v)) {
            snprintf(nb, NUMBUF, "%.17g", json_real_value(v));
            val = nb;
        } else if (json_is_null(v)) {
            val = NULL;
        } else {
            snprintf(field, sizeof field, "%s.%.100s", where, key);
            return fail_at(fbuf, st, err, RF_EDATA, field, "a value must be a string, a number or null");
        }
        st->names[*k] = key;
        st->values[*k] = val;
        (*k)++;
    }
    return RF_OK;
}

/* The body's JSON object into a new storage (errors: malformed JSON with line and column, not
 * an object). */
static rf_status load_root(const char *body, size_t n, storage **out, char *fbuf, rf_error *err)
{
    *out = NULL;
    fbuf[0] = '\0';
    if (!body && n) return fail_at(fbuf, NULL, err, RF_EUSAGE, "", "NULL body");
    storage *st = calloc(1, sizeof *st);
    if (!st) return fail_at(fbuf, NULL, err, RF_ENOMEM, "", "out of memory");
    json_error_t je;
    st->root = json_loadb(body ? body : "", n, JSON_REJECT_DUPLICATES, &je);
    if (!st->root) {
        st_free(st);
        return rf_error_at(err, RF_EDATA, "", je.line, je.column, "malformed JSON at line %d, column %d: %s",
                           je.line, je.column, je.text);
    }
    if (!json_is_object((json_t *)st->root)) return fail_at(fbuf, st, err, RF_EDATA, "", "the body must be a JSON object");
    *out = st;
    return RF_OK;
}

/* The column list sorted (cs->by NULL: out of memory; no columns: nothing to sort). */
static colset colset_make(const char *const *columns, int n_columns)
{
    colset cs = {columns, columns ? n_columns : 0, NULL};
    if (!columns) return cs;
    cs.by = malloc((size_t)(cs.n > 0 ? cs.n : 1) * sizeof *cs.by);
    if (cs.by) rf_names_sort(columns, cs.n, cs.by);
    return cs;
}

rf_status rf_req_slow_(const char *body, size_t n, const char *const *columns, int n_columns, int max_candidates,
                       rf_serve_parsed *out, rf_error *err)
{
    if (!out) return rf_errorf(err, RF_EUSAGE, "rf_serve_parse_request: NULL argument");
    memset(out, 0, sizeof *out);
    out->top = -1;
    storage *st;
    rf_status rc0 = load_root(body, n, &st, out->field, err);
    if (rc0) return rc0;
    json_t *root = st->root;
    json_t *cx = json_object_get(root, "context");
    if (cx && json_is_null(cx)) cx = NULL;
    if (cx && !json_is_object(cx)) return fail(out, st, err, RF_EDATA, "context", "must be an object");
    json_t *cands = json_object_get(root, "candidates");
    if (!cands) return fail(out, st, err, RF_EDATA, "candidates", "missing (an array of objects)");
    if (!json_is_array(cands)) return fail(out, st, err, RF_EDATA, "candidates", "must be an array of objects");
    size_t nc = json_array_size(cands);
    if (max_candidates > 0 && nc > (size_t)max_candidates) {
        char msg[128];
        snprintf(msg, sizeof msg, "%zu candidates: at most %d per request", nc, max_candidates);
        return fail(out, st, err, RF_EUSAGE, "candidates", msg);
    }
    json_t *top = json_object_get(root, "top");
    if (top && !json_is_null(top)) {
        if (!json_is_integer(top) || json_integer_value(top) < 0 || json_integer_value(top) > 1000000000)
            return fail(out, st, err, RF_EDATA, "top", "must be an integer >= 0");
        out->top = (int)json_integer_value(top);
    }
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v) {
        if (strcmp(key, "context") && strcmp(key, "candidates") && strcmp(key, "top")) {
            char field[160];
            snprintf(field, sizeof field, "%.100s", key);
            return fail(out, st, err, RF_EDATA, field, "unknown field (context, candidates, top)");
        }
    }
    size_t pairs = cx ? json_object_size(cx) : 0;
    for (size_t i = 0; i < nc; i++) {
        json_t *c = json_array_get(cands, i);
        if (!json_is_object(c)) {
            char field[64];
            snprintf(field, sizeof field, "candidates[%zu]", i);
            return fail(out, st, err, RF_EDATA, field, "a candidate must be an object");
        }
        pairs += json_object_size(c);
    }
    size_t np = pairs ? pairs : 1;
    st->names = malloc(np * sizeof *st->names);
    st->values = malloc(np * sizeof *st->values);
    st->nums = malloc(np * NUMBUF);
    st->cands = malloc((nc ? nc : 1) * sizeof *st->cands);
    if (!st->names || !st->values || !st->nums || !st->cands)
        return fail(out, st, err, RF_ENOMEM, "", "out of memory");
    colset cs = colset_make(columns, n_columns);
    if (columns && !cs.by) return fail(out, st, err, RF_ENOMEM, "", "out of memory");
    size_t k = 0;
    rf_status rc = RF_OK;
    if (cx && (rc = take_object(out->field, st, cx, "context", &k, &cs, err))) goto done;
    out->req.context = (rf_features){(int)k, st->names, st->values};
    for (size_t i = 0; i < nc; i++) {
        char where[64];
        snprintf(where, sizeof where, "candidates[%zu]", i);
        size_t k0 = k;
        if ((rc = take_object(out->field, st, json_array_get(cands, i), where, &k, &cs, err))) goto done;
        st->cands[i] = (rf_features){(int)(k - k0), st->names + k0, st->values + k0};
    }
done:
    free(cs.by);
    if (rc) {
        out->priv_ = NULL;
        memset(&out->req, 0, sizeof out->req);
        return rc;
    }
    out->req.n_candidates = (int)nc;
    out->req.candidates = st->cands;
    out->priv_ = st;
    return RF_OK;
}

rf_status rf_serve_parse_request(const char *body, size_t n, const char *const *columns, int n_columns,
                                 int max_candidates, rf_serve_parsed *out, rf_error *err)
{
    if (out && rf_req_fast_(body, n, columns, n_columns, max_candidates, out)) return RF_OK;
    return rf_req_slow_(body, n, columns, n_columns, max_candidates, out, err);
}

void rf_serve_parsed_free(rf_serve_parsed *p)
{
    if (!p) return;
    st_free(p->priv_);
    p->priv_ = NULL;
    memset(&p->req, 0, sizeof p->req);
}

/* An integer field of the top-K body in lo..hi, or def when absent or null. */
static rf_status int_field(json_t *root, const char *name, long lo, long hi, int def, int *v, char *fbuf, storage *st,
                           rf_error *err)
{
    json_t *j = json_object_get(root, name);
    *v = def;
    if (!j || json_is_null(j)) return RF_OK;
    if (!json_is_integer(j) || json_integer_value(j) < lo || json_integer_value(j) > hi) {
        char msg[96];
        snprintf(msg, sizeof msg, "must be an integer in %ld..%ld", lo, hi);
        return fail_at(fbuf, st, err, RF_EUSAGE, name, msg);
    }
    *v = (int)json_integer_value(j);
    return RF_OK;
}

rf_status rf_serve_parse_topk(const char *body, size_t n, const char *const *columns, int n_columns, int max_k,
                              int max_shortlist, rf_serve_topk_parsed *out, rf_error *err)
{
    if (!out) return rf_errorf(err, RF_EUSAGE, "rf_serve_parse_topk: NULL argument");
    memset(out, 0, sizeof *out);
    storage *st;
    rf_status rc = load_root(body, n, &st, out->field, err);
    if (rc) return rc;
    json_t *root = st->root, *v;
    const char *key;
    json_object_foreach(root, key, v) {
        if (strcmp(key, "context") && strcmp(key, "k") && strcmp(key, "mode") && strcmp(key, "shortlist")) {
            char field[160];
            snprintf(field, sizeof field, "%.100s", key);
            return fail_at(out->field, st, err, RF_EDATA, field, "unknown field (context, k, mode, shortlist)");
        }
    }
    json_t *cx = json_object_get(root, "context");
    if (cx && json_is_null(cx)) cx = NULL;
    if (cx && !json_is_object(cx)) return fail_at(out->field, st, err, RF_EDATA, "context", "must be an object");
    if ((rc = int_field(root, "k", 1, max_k > 0 ? max_k : 1000000, 10, &out->k, out->field, st, err))) return rc;
    if ((rc = int_field(root, "shortlist", 0, max_shortlist > 0 ? max_shortlist : 100000000, 0, &out->shortlist,
                        out->field, st, err)))
        return rc;
    json_t *mode = json_object_get(root, "mode");
    if (mode && !json_is_null(mode)) {
        const char *m = json_is_string(mode) ? json_string_value(mode) : "";
        if (!strcmp(m, "quantized")) out->quantized = 1;
        else if (strcmp(m, "exact"))
            return fail_at(out->field, st, err, RF_EDATA, "mode", "must be \"exact\" or \"quantized\"");
    }
    size_t np = cx && json_object_size(cx) ? json_object_size(cx) : 1;
    st->names = malloc(np * sizeof *st->names);
    st->values = malloc(np * sizeof *st->values);
    st->nums = malloc(np * NUMBUF);
    if (!st->names || !st->values || !st->nums) return fail_at(out->field, st, err, RF_ENOMEM, "", "out of memory");
    size_t k = 0;
    colset cs = colset_make(columns, n_columns);
    if (columns && !cs.by) return fail_at(out->field, st, err, RF_ENOMEM, "", "out of memory");
    rc = cx ? take_object(out->field, st, cx, "context", &k, &cs, err) : RF_OK;
    free(cs.by);
    if (rc) return rc;
    out->context = (rf_features){(int)k, st->names, st->values};
    out->priv_ = st;
    return RF_OK;
}

void rf_serve_topk_parsed_free(rf_serve_topk_parsed *p)
{
    if (!p) return;
    st_free(p->priv_);
    p->priv_ = NULL;
    memset(&p->context, 0, sizeof p->context);
}
