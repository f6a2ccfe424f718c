/* reqfast.c - the fast path of the POST /v1/score parser (reqparse_impl.h): one pass over the
 * body, no tree, no allocation per value. It takes only the request schema (an object with
 * "context", "candidates" and "top"; objects of strings, numbers and nulls) and only bodies the
 * jansson parser accepts, and gives exactly what that parser gives (the same strings, integers as
 * %lld, other numbers with %.17g, null as missing, pairs in document order); anything else (every
 * error, and the rare body it cannot be sure about) returns 0 and reqparse.c parses it with
 * jansson, which says what is wrong. tests/test_serve_http.c and fuzz/fuzz_request.c compare the
 * two.
 *
 * Memory: one block sized from the body (a copy of it, in which strings are decoded in place,
 * never longer than their JSON form, and NUL-terminated; the (name, value) arrays sized by its
 * ':' count; the candidates by its '{' count), and a second one for %.17g numbers when there are
 * any. Column names are found by the one sorted lookup (core/names.h), after a guess: the column
 * at the same position in the previous object (requests list columns in one order). A name is
 * returned as the caller's columns[c] pointer, so the scorer can match it without a strcmp. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/names.h"
#include "serve/reqparse_impl.h"

#define REALBUF 32 /* one %.17g number */

typedef struct {
    const char *b, *end; /* the body */
    const char *p;       /* the position */
    char *cp;            /* the copy: cp[i] mirrors b[i] */
    /* columns */
    const char *const *cols;
    int ncols;
    const int *by;
    const size_t *clen;
    int *stamp;          /* per column: the object that last named it */
    int obj;             /* the current object's number (1, 2, ...) */
    int *guess;          /* per position in an object: the column named there last time */
    /* output */
    const char **names, **values;
    size_t np, cap_pairs;
    /* numbers written with %.17g: reals (n, cap) and which pair each is */
    char *reals;
    size_t nreal, cap_real;
    size_t *real_pair;
} lx;

static void ws(lx *x)
{
    while (x->p < x->end && (*x->p == ' ' || *x->p == '\n' || *x->p == '\r' || *x->p == '\t')) x->p++;
}

static int hex4(const char *s, unsigned *v)
{
    unsigned r = 0;
    for (int i = 0; i < 4; i++) {
        char c = s[i];
        r <<= 4;
        if (c >= '0' && c <= '9') r |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f') r |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') r |= (unsigned)(c - 'A' + 10);
        else return 0;
    }
    *v = r;
    return 1;
}

/* The length of a valid UTF-8 sequence at s (s < end, *s >= 0x80), else 0 (overlong forms,
 * surrogates and code points above U+10FFFF are invalid, as jansson has them). */
static int utf8_len(const unsigned char *s, const unsigned char *end)
{
    unsigned c = s[0], cp;
    int n;
    if (c >= 0xC2 && c <= 0xDF) n = 2, cp = c & 0x1F;
    else if (c >= 0xE0 && c <= 0xEF) n = 3, cp = c & 0x0F;
    else if (c >= 0xF0 && c <= 0xF4) n = 4, cp = c & 0x07;
    else return 0;
    if (end - s < n) return 0;
    for (int i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return n;
}

/* A JSON string at x->p (the opening quote): decoded in place into the copy and NUL-terminated.
 * *out its start in the copy, *len its length. 0: not a string jansson would take without a NUL. */
static int string(lx *x, char **out, size_t *len)
{
    if (x->p >= x->end || *x->p != '"') return 0;
    const char *s = ++x->p;
    char *o = x->cp + (s - x->b), *o0 = o;
    /* the common case first: a run of plain ASCII, already in the copy */
    while (s < x->end && *s != '"' && *s != '\\' && (unsigned char)*s >= 0x20 && (unsigned char)*s < 0x80) s++;
    o += s - x->p;
    while (s < x->end && *s != '"') {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20) return 0;
        if (c >= 0x80) {
            int k = utf8_len((const unsigned char *)s, (const unsigned char *)x->end);
            if (!k) return 0;
            memmove(o, s, (size_t)k);
            o += k;
            s += k;
            continue;
        }
        if (c != '\\') {
            *o++ = (char)c;
            s++;
            continue;
        }
        if (x->end - s < 2) return 0;
        char e = s[1];
        s += 2;
        switch (e) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '/': *o++ = '/'; break;
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case 'n': *o++ = '\n'; break;
        case 'r': *o++ = '\r'; break;
        case 't': *o++ = '\t'; break;
        case 'u': {
            unsigned u, lo;
            if (x->end - s < 4 || !hex4(s, &u)) return 0;
            s += 4;
            if (u == 0 || (u >= 0xDC00 && u <= 0xDFFF)) return 0;
            if (u >= 0xD800 && u <= 0xDBFF) { /* a surrogate pair: 12 bytes for 4 */
                if (x->end - s < 6 || s[0] != '\\' || s[1] != 'u' || !hex4(s + 2, &lo) || lo < 0xDC00 || lo > 0xDFFF)
                    return 0;
                s += 6;
                u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
            }
            if (u < 0x80) *o++ = (char)u; /* 6 bytes of JSON for at most 4 of UTF-8 */
            else if (u < 0x800) *o++ = (char)(0xC0 | (u >> 6)), *o++ = (char)(0x80 | (u & 0x3F));
            else if (u < 0x10000)
                *o++ = (char)(0xE0 | (u >> 12)), *o++ = (char)(0x80 | ((u >> 6) & 0x3F)), *o++ = (char)(0x80 | (u & 0x3F));
            else
                *o++ = (char)(0xF0 | (u >> 18)), *o++ = (char)(0x80 | ((u >> 12) & 0x3F)),
                *o++ = (char)(0x80 | ((u >> 6) & 0x3F)), *o++ = (char)(0x80 | (u & 0x3F));
            break;
        }
        default: return 0;
        }
    }
    if (s >= x->end) return 0;
    *o = '\0'; /* at most at the closing quote's place */
    x->p = s + 1;
    *out = o0;
    *len = (size_t)(o - o0);
    return 1;
}

/* A JSON number at x->p: *is_int, and its extent [*a, x->p). 0: not a number as JSON has it. */
static int number(lx *x, const char **a, int *is_int)
{
    const char *s = x->p, *e = x->end;
    *a = s;
    *is_int = 1;
    if (s < e && *s == '-') s++;
    if (s >= e) return 0;
    if (*s == '0') s++;
    else if (*s >= '1' && *s <= '9')
        while (s < e && *s >= '0' && *s <= '9') s++;
    else return 0;
    if (s < e && *s == '.') {
        *is_int = 0;
        s++;
        if (s >= e || *s < '0' || *s > '9') return 0;
        while (s < e && *s >= '0' && *s <= '9') s++;
    }
    if (s < e && (*s == 'e' || *s == 'E')) {
        *is_int = 0;
        s++;
        if (s < e && (*s == '+' || *s == '-')) s++;
        if (s >= e || *s < '0' || *s > '9') return 0;
        while (s < e && *s >= '0' && *s <= '9') s++;
    }
    x->p = s;
    return 1;
}

/* One value of an object: a string, a number or null, into values[k]. 0: anything else. */
static int value(lx *x, size_t k)
{
    if (x->p >= x->end) return 0;
    char c = *x->p;
    if (c == '"') {
        char *s;
        size_t len;
        if (!string(x, &s, &len)) return 0;
        x->values[k] = s;
        return 1;
    }
    if (c == 'n') {
        if (x->end - x->p < 4 || memcmp(x->p, "null", 4)) return 0;
        x->p += 4;
        x->values[k] = NULL;
        return 1;
    }
    const char *a;
    int is_int;
    if (!number(x, &a, &is_int) || x->p >= x->end) return 0; /* a value is followed by ',' or '}' */
    char *t = x->cp + (a - x->b);
    size_t len = (size_t)(x->p - a);
    if (is_int) {
        if (len - (*a == '-') > 18) return 0; /* may not fit json_int_t: jansson decides */
        t[len] = '\0';                        /* over the delimiter's copy */
        x->values[k] = len == 2 && a[0] == '-' && a[1] == '0' ? t + 1 : t; /* -0 is the integer 0 */
        return 1;
    }
    char tmp[400];
    if (len >= sizeof tmp) return 0;
    memcpy(tmp, a, len);
    tmp[len] = '\0';
    double v = strtod(tmp, NULL);
    if (isinf(v)) return 0; /* jansson: real number overflow */
    if (x->nreal == x->cap_real) {
        size_t cap = x->cap_real ? 2 * x->cap_real : 64;
        char *r = realloc(x->reals, cap * REALBUF);
        size_t *rp = realloc(x->real_pair, cap * sizeof *rp);
        if (r) x->reals = r;
        if (rp) x->real_pair = rp;
        if (!r || !rp) return 0;
        x->cap_real = cap;
    }
    snprintf(x->reals + x->nreal * REALBUF, REALBUF, "%.17g", v);
    x->real_pair[x->nreal++] = k;
    x->values[k] = NULL; /* set when the buffer stops moving */
    return 1;
}

/* The column named key (len bytes, NUL-terminated), guessing the one at position j last time. */
static int column(lx *x, const char *key, size_t len, int j)
{
    int g = x->guess[j];
    if (g >= 0 && x->clen[g] == len && !memcmp(x->cols[g], key, len)) return g;
    int c = rf_names_find(x->cols, x->by, x->ncols, key);
    if (c >= 0) x->guess[j] = c;
    return c;
}

/* An object of (column, scalar) pairs at x->p, appended to names/values. 0: anything else, an
 * unknown column, a column twice. */
static int object(lx *x, size_t *first, int *npairs)
{
    if (x->p >= x->end || *x->p != '{') return 0;
    x->p++;
    x->obj++;
    *first = x->np;
    int j = 0;
    ws(x);
    if (x->p < x->end && *x->p == '}') {
        x->p++;
        *npairs = 0;
        return 1;
    }
    for (;;) {
        char *key;
        size_t len;
        if (!string(x, &key, &len)) return 0;
        if (j >= x->ncols) return 0; /* then a column is named twice */
        int c = column(x, key, len, j);
        if (c < 0 || x->stamp[c] == x->obj) return 0;
        x->stamp[c] = x->obj;
        ws(x);
        if (x->p >= x->end || *x->p != ':') return 0;
        x->p++;
        ws(x);
        if (x->np >= x->cap_pairs) return 0;
        x->names[x->np] = x->cols[c];
        if (!value(x, x->np)) return 0;
        x->np++;
        j++;
        ws(x);
        if (x->p >= x->end) return 0;
        if (*x->p == '}') {
            x->p++;
            *npairs = j;
            return 1;
        }
        if (*x->p != ',') return 0;
        x->p++;
        ws(x);
    }
}

/* Upper bounds from the raw bytes: pairs <= ':' count, objects <= '{' count. */
static void bounds(const char *b, size_t n, size_t *colons, size_t *braces)
{
    size_t c = 0, o = 0;
    for (size_t i = 0; i < n; i++) {
        c += b[i] == ':';
        o += b[i] == '{';
    }
    *colons = c;
    *braces = o;
}

static int take(const char *body, size_t n, const char *const *columns, int n_columns, int max_candidates,
                rf_serve_parsed *out, rf_req_storage_ *st, lx *x)
{
    size_t colons, braces;
    bounds(body, n, &colons, &braces);
    size_t nc = (size_t)n_columns;
    /* one block: names, values, candidates, by, stamp, guess, clen, then the body's copy */
    size_t sz_pairs = (colons ? colons : 1) * sizeof(const char *);
    size_t sz_cands = (braces ? braces : 1) * sizeof(rf_features);
    size_t sz_ints = nc * sizeof(int), sz_clen = nc * sizeof(size_t);
    size_t total = 2 * sz_pairs + sz_cands + 3 * sz_ints + sz_clen + n + 1 + 64;
    char *blk = malloc(total);
    if (!blk) return 0;
    st->nums = blk;
    x->names = (const char **)(void *)blk;
    x->values = (const char **)(void *)(blk + sz_pairs);
    rf_features *cands = (rf_features *)(void *)(blk + 2 * sz_pairs); /* st->names etc. stay NULL: one block */
    size_t off = 2 * sz_pairs + sz_cands;
    off = (off + 7) & ~(size_t)7;
    size_t *clen = (size_t *)(void *)(blk + off);
    off += sz_clen;
    int *by = (int *)(void *)(blk + off), *stamp = by + nc, *guess = stamp + nc;
    off += 3 * sz_ints;
    x->cp = blk + off;
    memcpy(x->cp, body, n);
    x->cp[n] = '\0';
    x->b = body;
    x->end = body + n;
    x->p = body;
    x->cols = columns;
    x->ncols = n_columns;
    x->cap_pairs = colons;
    rf_names_sort(columns, n_columns, by);
    for (int c = 0; c < n_columns; c++) {
        clen[c] = strlen(columns[c]);
        stamp[c] = 0;
        guess[c] = -1;
    }
    x->by = by;
    x->clen = clen;
    x->stamp = stamp;
    x->guess = guess;

    int have_cx = 0, have_cands = 0, have_top = 0, ncand = 0;
    size_t cx_first = 0;
    int cx_n = 0;
    ws(x);
    if (x->p >= x->end || *x->p != '{') return 0;
    x->p++;
    ws(x);
    if (x->p < x->end && *x->p == '}') return 0; /* no "candidates" */
    for (;;) {
        char *key;
        size_t len;
        if (!string(x, &key, &len)) return 0;
        ws(x);
        if (x->p >= x->end || *x->p != ':') return 0;
        x->p++;
        ws(x);
        if (!strcmp(key, "context") && len == 7) {
            if (have_cx++) return 0;
            if (x->end - x->p >= 4 && !memcmp(x->p, "null", 4)) x->p += 4;
            else if (!object(x, &cx_first, &cx_n)) return 0;
        } else if (!strcmp(key, "candidates") && len == 10) {
            if (have_cands++) return 0;
            if (x->p >= x->end || *x->p != '[') return 0;
            x->p++;
            ws(x);
            if (x->p < x->end && *x->p == ']') {
                x->p++;
            } else {
                for (;;) {
                    size_t first;
                    int np;
                    if ((size_t)ncand >= braces || !object(x, &first, &np)) return 0;
                    cands[ncand++] = (rf_features){np, x->names + first, x->values + first};
                    if (max_candidates > 0 && ncand > max_candidates) return 0;
                    ws(x);
                    if (x->p >= x->end) return 0;
                    if (*x->p == ']') {
                        x->p++;
                        break;
                    }
                    if (*x->p != ',') return 0;
                    x->p++;
                    ws(x);
                }
            }
        } else if (!strcmp(key, "top") && len == 3) {
            if (have_top++) return 0;
            if (x->end - x->p >= 4 && !memcmp(x->p, "null", 4)) {
                x->p += 4;
            } else {
                const char *a;
                int is_int;
                if (!number(x, &a, &is_int) || !is_int || *a == '-' || x->p - a > 10) return 0;
                long v = 0;
                for (const char *d = a; d < x->p; d++) v = 10 * v + (*d - '0');
                if (v > 1000000000) return 0;
                out->top = (int)v;
            }
        } else {
            return 0;
        }
        ws(x);
        if (x->p >= x->end) return 0;
        if (*x->p == '}') {
            x->p++;
            break;
        }
        if (*x->p != ',') return 0;
        x->p++;
        ws(x);
    }
    ws(x);
    if (x->p != x->end || !have_cands) return 0;
    for (size_t i = 0; i < x->nreal; i++) x->values[x->real_pair[i]] = x->reals + i * REALBUF;
    st->reals = x->reals;
    x->reals = NULL;
    out->req.context = (rf_features){cx_n, cx_n ? x->names + cx_first : x->names, cx_n ? x->values + cx_first : x->values};
    out->req.n_candidates = ncand;
    out->req.candidates = cands;
    return 1;
}

int rf_req_fast_(const char *body, size_t n, const char *const *columns, int n_columns, int max_candidates,
                 rf_serve_parsed *out)
{
    memset(out, 0, sizeof *out);
    out->top = -1;
    /* the fast path needs the column list (names are matched against it) */
    if (!body || !n || !columns || n_columns <= 0) return 0;
    rf_req_storage_ *st = calloc(1, sizeof *st);
    if (!st) return 0;
    lx x;
    memset(&x, 0, sizeof x);
    int ok = take(body, n, columns, n_columns, max_candidates, out, st, &x);
    free(x.reals);
    free(x.real_pair);
    if (!ok) {
        rf_req_storage_free_(st);
        memset(out, 0, sizeof *out);
        out->top = -1;
        return 0;
    }
    out->priv_ = st;
    return 1;
}

static int same_str(const char *a, const char *b) { return a == b || (a && b && !strcmp(a, b)); }

static int same_features(const rf_features *a, const rf_features *b)
{
    if (a->n != b->n) return 0;
    for (int j = 0; j < a->n; j++)
        if (!same_str(a->names[j], b->names[j]) || !same_str(a->values[j], b->values[j])) return 0;
    return 1;
}

int rf_req_same_(const rf_serve_parsed *a, const rf_serve_parsed *b)
{
    if (a->top != b->top || a->req.n_candidates != b->req.n_candidates) return 0;
    if (!same_features(&a->req.context, &b->req.context)) return 0;
    for (int i = 0; i < a->req.n_candidates; i++)
        if (!same_features(&a->req.candidates[i], &b->req.candidates[i])) return 0;
    return 1;
}
