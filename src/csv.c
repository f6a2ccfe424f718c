/* csv.c - CSV/TSV loading into an rf_dataset (rf_load_csv), fitted encoders, CSV writing.
 *
 * Reading: zlib gzopen/gzread (transparent for plain and .gz files) into one growable buffer;
 * rows are tokenized in place (RFC 4180 quotes with "" escapes, LF or CRLF line ends) into an
 * array of field spans, then only the columns named by the schema are converted. Nothing is
 * allocated per field: numbers are parsed straight from the buffer, quoted fields with ""
 * escapes are unescaped into one reusable scratch buffer. Rows are appended to growable column
 * arrays that become the dataset's arrays at the end (no final copy).
 *
 * Vocabulary fitting (when *enc == NULL) is single-pass: each categorical value is counted and
 * stored as its provisional id (first-seen index in the vocabulary being fitted); after the last
 * row the vocabularies are frozen with min_count and the stored ids are remapped through the
 * provisional -> final id table (0 for values dropped by min_count). This gives exactly the
 * result of "fit on the file, then encode the file" without parsing the file twice.
 *
 * Numbers: a hand-written parser handles plain decimals ([+-]digits[.digits][e[+-]digits]);
 * it is exact: results equal (float)strtod(s). Up to 19 significant digits with |exp10| <= 22
 * (mantissa <= 2^53) use one exact double operation (Clinger's fast path); with an x87 80-bit
 * long double, exponents up to 27 and any 19-digit mantissa use one long double operation
 * whose result is accepted only when the double rounding provably cannot differ. Everything
 * else (more digits, hex floats, inf/nan spellings, garbage) falls back to strtod on a
 * NUL-terminated copy. strtod assumes the "C" locale decimal point. Whitespace around numbers
 * is not accepted.
 *
 * Speed: unquoted fields are delimited with 16-byte SSE2 compares; each row's categorical values
 * are hashed first and their hash-table slots prefetched so the lookups' cache misses overlap;
 * the output arrays are pre-sized from the file size (plain files) and advised to use
 * transparent huge pages, since first-touch page faults are otherwise a large share of the load
 * time. Single-threaded.
 *
 * Conventions: completely empty lines are skipped (like pandas); a UTF-8 BOM at the start is
 * ignored; a '"' inside an unquoted field is literal; a lone CR inside a field is data.
 * A label spec "a*b" is the product of columns a and b, unless the header has a column literally
 * named "a*b" (as written by rf_dataset_write_csv), which is then used directly.
 * An empty multi-valued field is an empty bag (no ids); empty pieces ("x||y") are skipped;
 * a multi-valued field's separator defaults to '|' when the schema leaves it 0.
 * The group column's text is hashed with XXH3_64bits; the weight must be finite and >= 0.
 *
 * Errors: data errors are RF_EDATA at file:line:col (1-based physical line, 1-based byte column
 * where the offending field starts; a wrong field count points at the row's first column).
 * With opts->skip_bad_rows, rows with a wrong field count, a bad number/weight or characters
 * after a closing quote are skipped and counted (they never reach the vocabularies); an
 * unterminated quote, I/O errors, a bad header and "no data rows" still fail.
 */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <xxhash.h>
#include <zlib.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "resflow/data.h"

/* Internal vocabulary API, defined and documented in vocab.c (keep these prototypes in sync). */
uint64_t rf_vocab_hash_(const rf_vocab *v, const char *key, size_t len);
uint32_t rf_vocab_fit_id_(rf_vocab *v, const char *key, size_t len, uint64_t h);
uint32_t rf_vocab_lookup_h_(const rf_vocab *v, const char *key, size_t len, uint64_t h);
rf_status rf_vocab_freeze_remap_(rf_vocab *v, uint32_t min_count, uint32_t **remap);

/* ---- encoders ------------------------------------------------------------------------- */

rf_encoders *rf_encoders_ids(int F, const uint32_t *sizes)
{
    rf_encoders *e = calloc(1, sizeof *e);
    if (!e) return NULL;
    e->F = F;
    e->vocab = calloc(F > 0 ? (size_t)F : 1, sizeof *e->vocab);
    e->id_size = malloc((F > 0 ? (size_t)F : 1) * sizeof *e->id_size);
    if (!e->vocab || !e->id_size) {
        rf_encoders_free(e);
        return NULL;
    }
    for (int f = 0; f < F; f++) e->id_size[f] = sizes[f] ? sizes[f] : 1;
    return e;
}

void rf_encoders_free(rf_encoders *enc)
{
    if (!enc) return;
    for (int f = 0; f < enc->F && enc->vocab; f++) rf_vocab_free(enc->vocab[f]);
    free(enc->vocab);
    free(enc->id_size);
    free(enc);
}

static rf_encoders *encoders_new(int F)
{
    rf_encoders *e = calloc(1, sizeof *e);
    if (!e) return NULL;
    e->vocab = calloc(F > 0 ? (size_t)F : 1, sizeof *e->vocab);
    if (!e->vocab) {
        free(e);
        return NULL;
    }
    e->F = F;
    for (int f = 0; f < F; f++) {
        if (!(e->vocab[f] = rf_vocab_create())) {
            rf_encoders_free(e);
            return NULL;
        }
    }
    return e;
}

/* ---- number parsing ------------------------------------------------------------------- */

enum { NUM_OK = 0, NUM_EMPTY, NUM_BAD, NUM_NONFINITE };

static const double P10[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                               1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                               1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

#if LDBL_MANT_DIG == 64 && DBL_MANT_DIG == 53 && defined(__x86_64__)
#define HAVE_X87_FASTPATH 1
static const long double P10L[28] = {
    1e0L,  1e1L,  1e2L,  1e3L,  1e4L,  1e5L,  1e6L,  1e7L,  1e8L,  1e9L,
    1e10L, 1e11L, 1e12L, 1e13L, 1e14L, 1e15L, 1e16L, 1e17L, 1e18L, 1e19L,
    1e20L, 1e21L, 1e22L, 1e23L, 1e24L, 1e25L, 1e26L, 1e27L}; /* all exact: 5^27 < 2^64 */
#endif

static int parse_slow(const char *s, size_t n, double *out)
{
    char stack[128];
    char *b = n < sizeof stack ? stack : malloc(n + 1);
    if (!b) return NUM_BAD;
    memcpy(b, s, n);
    b[n] = '\0';
    int rc = NUM_OK;
    unsigned char c0 = (unsigned char)b[0];
    if (c0 == ' ' || (c0 >= '\t' && c0 <= '\r')) {
        rc = NUM_BAD;
    } else {
        char *end;
        double d = strtod(b, &end);
        if (end != b + n)
            rc = NUM_BAD;
        else if (!isfinite(d))
            rc = NUM_NONFINITE;
        else
            *out = d;
    }
    if (b != stack) free(b);
    return rc;
}

/* Parse s[0..n) as a double; exact (same result as strtod). */
static int parse_double(const char *s, size_t n, double *out)
{
    if (n == 0) return NUM_EMPTY;
    const char *p = s, *e = s + n;
    int neg = 0;
    if (*p == '-' || *p == '+') {
        neg = *p == '-';
        p++;
    }
    uint64_t m = 0;
    size_t nd;
    long ex = 0;
    unsigned inexact = 0;
    const char *ip = p;
    while (p < e && (unsigned)(*p - '0') < 10u) p++;
    const char *ipe = p, *fp = p, *fpe = p;
    if (p < e && *p == '.') {
        fp = ++p;
        while (p < e && (unsigned)(*p - '0') < 10u) p++;
        fpe = p;
    }
    nd = (size_t)(ipe - ip) + (size_t)(fpe - fp);
    if (nd <= 19) { /* common case: every digit fits in the 64-bit mantissa */
        for (const char *q = ip; q < ipe; q++) m = m * 10 + (unsigned)(*q - '0');
        for (const char *q = fp; q < fpe; q++) m = m * 10 + (unsigned)(*q - '0');
        ex = -(long)(fpe - fp);
    } else { /* keep the first 19 significant digits, remember if a dropped one is nonzero */
        int sig = 0;
        for (const char *q = ip; q < ipe; q++) {
            unsigned d = (unsigned)(*q - '0');
            if (sig < 19) {
                m = m * 10 + d;
                sig += m != 0;
            } else {
                ex++;
                inexact |= d;
            }
        }
        for (const char *q = fp; q < fpe; q++) {
            unsigned d = (unsigned)(*q - '0');
            if (sig < 19) {
                m = m * 10 + d;
                sig += m != 0;
                ex--;
            } else {
                inexact |= d;
            }
        }
    }
    if (!nd) return parse_slow(s, n, out);
    if (p < e && (*p == 'e' || *p == 'E')) {
        p++;
        int eneg = 0;
        if (p < e && (*p == '+' || *p == '-')) {
            eneg = *p == '-';
            p++;
        }
        if (p == e || (unsigned)(*p - '0') >= 10u) return parse_slow(s, n, out);
        long x = 0;
        while (p < e && (unsigned)(*p - '0') < 10u) {
            if (x < 100000) x = x * 10 + (*p - '0');
            p++;
        }
        ex += eneg ? -x : x;
    }
    if (p != e) return parse_slow(s, n, out);
    if (m == 0) {
        *out = neg ? -0.0 : 0.0;
        return NUM_OK;
    }
    if (!inexact) {
        if (m <= ((uint64_t)1 << 53) && ex >= -22 && ex <= 22) {
            double d = (double)m;
            d = ex < 0 ? d / P10[-ex] : d * P10[ex];
            *out = neg ? -d : d;
            return NUM_OK;
        }
#ifdef HAVE_X87_FASTPATH
        if (ex >= -27 && ex <= 27) {
            /* r = m*10^ex rounded once to 64 bits; x (exact) is within 0.5 ulp of r. Rounding r
             * to double equals rounding x unless r's 11 bits below double precision are
             * exactly the halfway pattern 0x400. */
            long double r = (long double)m;
            r = ex < 0 ? r / P10L[-ex] : r * P10L[ex];
            uint64_t mant;
            memcpy(&mant, &r, sizeof mant); /* x87 extended: 64-bit significand first */
            if ((mant & 0x7FF) != 0x400) {
                double d = (double)r;
                *out = neg ? -d : d;
                return NUM_OK;
            }
        }
#endif
    }
    return parse_slow(s, n, out);
}

/* double -> float; -1 if the value rounds outside the float range. */
static int to_float(double d, float *out)
{
    /* halfway between FLT_MAX and 2^128 rounds (to even) to infinity */
    static const double lim = (double)FLT_MAX + 0x1p103;
    if (!(fabs(d) < lim)) return -1;
    *out = (float)d;
    return 0;
}

/* ---- reader --------------------------------------------------------------------------- */

/* The read buffer has BUF_PAD bytes after buf[cap]: buf[len] is a '\n' sentinel and 16-byte
 * loads starting at or before it stay inside the allocation. */
#define BUF_PAD 32
/* Initial read buffer size (grows for rows longer than this); tests/test_csv.c assumes 1 MiB. */
#define READ_CHUNK ((size_t)1 << 20)
/* Longest row accepted (keeps field lengths within uint32_t). */
#define ROW_MAX ((size_t)1 << 31)

typedef struct {
    gzFile gz;
    char *buf;     /* cap + BUF_PAD bytes; buf[len] is a '\n' sentinel */
    size_t cap, len;
    size_t pos;    /* start of the next row */
    int eof;
    long line;     /* physical line of buf[pos] */
} reader;

typedef struct {
    const char *p;     /* content start */
    const char *start; /* where the field starts (opening quote for quoted fields) */
    uint32_t len;
    uint32_t esc;      /* contains "" escapes */
} span;

typedef struct {
    span *f;
    int n, cap;
    const char *next;   /* first byte after the row */
    long lines;         /* physical lines the row spans (newlines consumed) */
    const char *bad;    /* first char after a closing quote that is not delim/EOL, or NULL */
    const char *unterm; /* opening quote of an unterminated quoted field */
} tokens;

enum { TOK_ROW, TOK_MORE, TOK_EOF, TOK_UNTERM, TOK_NOMEM };

static rf_status rd_fill(reader *r, const char *path, rf_error *err)
{
    if (r->pos) {
        memmove(r->buf, r->buf + r->pos, r->len - r->pos);
        r->len -= r->pos;
        r->pos = 0;
    }
    if (r->len == r->cap) {
        size_t nc = r->cap * 2;
        if (nc > ROW_MAX)
            return rf_error_at(err, RF_EDATA, path, r->line, 1,
                               "row longer than %zu bytes (unterminated quote?)", ROW_MAX);
        char *nb = realloc(r->buf, nc + BUF_PAD);
        if (!nb) return rf_errorf(err, RF_ENOMEM, "out of memory reading %s", path);
        r->buf = nb;
        r->cap = nc;
    }
    size_t want = r->cap - r->len;
    if (want > ((size_t)1 << 30)) want = (size_t)1 << 30;
    int got = gzread(r->gz, r->buf + r->len, (unsigned)want);
    int zerr = Z_OK;
    const char *zmsg = NULL;
    if (got <= 0) zmsg = gzerror(r->gz, &zerr);
    if (got < 0 || (got == 0 && zerr != Z_OK && zerr != Z_STREAM_END)) {
        if (zerr == Z_ERRNO)
            return rf_error_at(err, RF_EIO, path, 0, 0, "read error: %s", strerror(errno));
        return rf_error_at(err, RF_EDATA, path, 0, 0, "corrupt compressed data: %s",
                           zmsg ? zmsg : "unknown zlib error");
    }
    if (got == 0) r->eof = 1;
    r->len += (size_t)got;
    r->buf[r->len] = '\n';
    memset(r->buf + r->len + 1, 0, BUF_PAD - 1); /* defined bytes for the 16-byte loads */
    return RF_OK;
}

/* First byte at or after q that is the delimiter, '\n' or '\r' (the sentinel bounds it). */
static inline const char *next_special(const unsigned char *cls, char delim, const char *q)
{
#if defined(__SSE2__)
    (void)cls;
    const __m128i vd = _mm_set1_epi8(delim), vn = _mm_set1_epi8('\n'), vr = _mm_set1_epi8('\r');
    for (;;) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)q);
        __m128i m = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, vd), _mm_cmpeq_epi8(x, vn)),
                                 _mm_cmpeq_epi8(x, vr));
        unsigned bits = (unsigned)_mm_movemask_epi8(m);
        if (bits) return q + __builtin_ctz(bits);
        q += 16;
    }
#else
    (void)delim;
    while (!cls[(unsigned char)*q]) q++;
    return q;
#endif
}

/* Scan an unquoted stretch from q: stops at delim, '\n', "\r\n" or the end of data.
 * Returns NULL if more data is needed to decide. */
static const char *scan_plain(const reader *r, const unsigned char *cls, char delim, const char *q)
{
    const char *end = r->buf + r->len;
    for (;;) {
        q = next_special(cls, delim, q); /* the sentinel stops this */
        if (q < end && *q == '\r') {
            if (q + 1 == end) {
                if (!r->eof) return NULL;
                return q + 1; /* trailing lone CR at EOF: data */
            }
            if (q[1] == '\n') return q;
            q++; /* lone CR: part of the field */
            continue;
        }
        return q;
    }
}

/* Tokenize the row at r->pos. */
static int tokenize(const reader *r, const unsigned char *cls, char delim, tokens *t)
{
    const char *p = r->buf + r->pos, *end = r->buf + r->len;
    if (p == end) return r->eof ? TOK_EOF : TOK_MORE;
    t->n = 0;
    t->lines = 0;
    t->bad = NULL;
    t->unterm = NULL;
    for (;;) {
        if (t->n == t->cap) {
            int nc = t->cap ? 2 * t->cap : 64;
            span *nf = realloc(t->f, (size_t)nc * sizeof *nf);
            if (!nf) return TOK_NOMEM;
            t->f = nf;
            t->cap = nc;
        }
        span *s = &t->f[t->n++];
        s->start = p;
        s->esc = 0;
        if (p < end && *p == '"') {
            const char *q = p + 1;
            for (;;) {
                const char *c = memchr(q, '"', (size_t)(end - q));
                if (!c) {
                    if (!r->eof) return TOK_MORE;
                    t->unterm = p;
                    return TOK_UNTERM;
                }
                if (c + 1 == end && !r->eof) return TOK_MORE;
                if (c + 1 < end && c[1] == '"') {
                    s->esc = 1;
                    q = c + 2;
                    continue;
                }
                s->p = p + 1;
                s->len = (uint32_t)(c - (p + 1));
                for (const char *nl = s->p; (nl = memchr(nl, '\n', (size_t)(c - nl))); nl++)
                    t->lines++;
                p = c + 1;
                break;
            }
            const char *q2 = scan_plain(r, cls, delim, p);
            if (!q2) return TOK_MORE;
            if (q2 != p && !t->bad) t->bad = p;
            p = q2;
        } else {
            const char *q = scan_plain(r, cls, delim, p);
            if (!q) return TOK_MORE;
            s->p = p;
            s->len = (uint32_t)(q - p);
            p = q;
        }
        if (p >= end) {
            if (!r->eof) return TOK_MORE;
            t->next = end;
            return TOK_ROW;
        }
        if (*p == delim) {
            p++;
            continue;
        }
        if (*p == '\r') p++; /* scan_plain guarantees "\r\n" here */
        p++;                 /* '\n' */
        t->lines++;
        t->next = p;
        return TOK_ROW;
    }
}

/* ---- loader --------------------------------------------------------------------------- */

typedef struct {
    const rf_schema *sc;
    const char *path;
    rf_error *err;
    int skip;
    char delim;
    reader rd;
    tokens t;
    unsigned char cls[256];
    char *scratch;
    size_t scratch_cap;
    /* column map */
    int ncols;
    int cat_col[64], dense_col[128], lab_a[16], lab_b[16], weight_col, group_col;
    char sep[64];
    /* encoders */
    rf_encoders *enc;
    int fitting;
    /* output columns */
    int F, D, K;
    size_t n, cap;
    size_t est_rows; /* initial row capacity (estimated from the file size), 0 = default */
    uint32_t *cat;
    float *dense, *labels, *weight;
    uint64_t *group;
    uint64_t *mv_off[64];
    uint32_t *mv_ids[64];
    size_t mv_len[64], mv_cap[64];
    size_t bad_rows;
} loader;

enum { ROW_OK = 0, ROW_SKIP = 1, ROW_FAIL = 2 };

/* Location of position at inside the current row (starting at the row's first line). */
static void locate(const loader *L, const char *at, long *line, long *col)
{
    const char *ls = L->rd.buf + L->rd.pos;
    long ln = L->rd.line;
    for (const char *q = ls; q < at; q++)
        if (*q == '\n') {
            ln++;
            ls = q + 1;
        }
    *line = ln;
    *col = (long)(at - ls) + 1;
}

/* A data error in the current row at position at: skip the row or fail. */
static int row_bad(loader *L, const char *at, const char *fmt, ...) RF_PRINTF(3, 4);
static int row_bad(loader *L, const char *at, const char *fmt, ...)
{
    if (L->skip) {
        L->bad_rows++;
        return ROW_SKIP;
    }
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    long line, col;
    locate(L, at, &line, &col);
    rf_error_at(L->err, RF_EDATA, L->path, line, col, "%s", msg);
    return ROW_FAIL;
}

/* Field text with "" escapes removed (into the scratch buffer if needed); NULL on OOM. */
static const char *field_text(loader *L, const span *s, size_t *len)
{
    if (!s->esc) {
        *len = s->len;
        return s->p;
    }
    if (L->scratch_cap < s->len + 1) {
        size_t nc = s->len + 1 > 2 * L->scratch_cap ? s->len + 1 : 2 * L->scratch_cap;
        char *nb = realloc(L->scratch, nc);
        if (!nb) return NULL;
        L->scratch = nb;
        L->scratch_cap = nc;
    }
    size_t o = 0;
    for (uint32_t i = 0; i < s->len; i++) {
        L->scratch[o++] = s->p[i];
        if (s->p[i] == '"') i++; /* inside a quoted field quotes come in pairs */
    }
    *len = o;
    return L->scratch;
}

#define SHOW_MAX 40

/* Report a bad numeric field (role: "column", "label column", ...; name: schema name). */
static int num_error(loader *L, const span *s, int rc, const char *role, const char *name)
{
    size_t n;
    const char *txt = field_text(L, s, &n);
    if (!txt) {
        rf_errorf(L->err, RF_ENOMEM, "out of memory");
        return ROW_FAIL;
    }
    int show = n > SHOW_MAX ? SHOW_MAX : (int)n;
    const char *ell = n > SHOW_MAX ? "..." : "";
    if (rc == NUM_EMPTY) return row_bad(L, s->start, "empty numeric value in %s '%s'", role, name);
    if (rc == NUM_NONFINITE)
        return row_bad(L, s->start, "non-finite value '%.*s%s' in %s '%s'", show, txt, ell, role,
                       name);
    return row_bad(L, s->start, "invalid number '%.*s%s' in %s '%s'", show, txt, ell, role, name);
}

/* Parse a numeric column into *out; returns ROW_*. */
static inline int num_field(loader *L, int col, const char *role, const char *name, double *out)
{
    const span *s = &L->t.f[col];
    int rc = parse_double(s->p, s->len, out);
    if (rc == NUM_OK && !s->esc) return ROW_OK;
    if (s->esc) { /* only possible with "" escapes inside a quoted number: never valid */
        size_t n;
        const char *txt = field_text(L, s, &n);
        if (!txt) return num_error(L, s, NUM_BAD, role, name);
        if ((rc = parse_double(txt, n, out)) == NUM_OK) return ROW_OK;
    }
    return num_error(L, s, rc, role, name);
}

/* Ask for transparent huge pages on the 2 MiB-aligned interior of a large array (Linux,
 * best effort). First-touch page faults dominate filling fresh output arrays otherwise (each
 * 4 KiB fault is expensive, especially in VMs), and huge pages also cut TLB misses when the
 * training loop reads random rows later. */
static void advise_huge(void *p, size_t bytes)
{
#ifdef MADV_HUGEPAGE
    const uintptr_t H = (uintptr_t)1 << 21;
    if (!p || bytes < 2 * H) return;
    uintptr_t a = ((uintptr_t)p + H - 1) & ~(H - 1), e = ((uintptr_t)p + bytes) & ~(H - 1);
    if (e > a) (void)madvise((void *)a, e - a, MADV_HUGEPAGE);
#else
    (void)p;
    (void)bytes;
#endif
}

/* realloc + advise_huge */
static void *grow(void *p, size_t bytes)
{
    void *q = realloc(p, bytes);
    advise_huge(q, bytes);
    return q;
}

static int grow_rows(loader *L)
{
    size_t nc = L->cap ? 2 * L->cap : L->est_rows ? L->est_rows : 1024;
    uint32_t *c = grow(L->cat, nc * (size_t)(L->F ? L->F : 1) * sizeof *c);
    if (!c) return -1;
    L->cat = c;
    if (L->D) {
        float *d = grow(L->dense, nc * (size_t)L->D * sizeof *d);
        if (!d) return -1;
        L->dense = d;
    }
    float *lb = grow(L->labels, nc * (size_t)(L->K ? L->K : 1) * sizeof *lb);
    if (!lb) return -1;
    L->labels = lb;
    if (L->weight_col >= 0) {
        float *w = grow(L->weight, nc * sizeof *w);
        if (!w) return -1;
        L->weight = w;
    }
    if (L->group_col >= 0) {
        uint64_t *g = grow(L->group, nc * sizeof *g);
        if (!g) return -1;
        L->group = g;
    }
    for (int f = 0; f < L->F; f++) {
        if (!L->sc->cat[f].multi) continue;
        uint64_t *o = grow(L->mv_off[f], (nc + 1) * sizeof *o);
        if (!o) return -1;
        if (!L->mv_off[f]) o[0] = 0;
        L->mv_off[f] = o;
    }
    L->cap = nc;
    return 0;
}

static int push_mv(loader *L, int f, uint32_t id)
{
    if (L->mv_len[f] == L->mv_cap[f]) {
        size_t nc = L->mv_cap[f] ? 2 * L->mv_cap[f] : 4096;
        uint32_t *ni = grow(L->mv_ids[f], nc * sizeof *ni);
        if (!ni) return -1;
        L->mv_ids[f] = ni;
        L->mv_cap[f] = nc;
    }
    L->mv_ids[f][L->mv_len[f]++] = id;
    return 0;
}

/* Integer-id field: the decimal value itself, 0 (OOV) when outside [0, size); *bad is set
 * when the text is not a non-negative integer. */
static uint32_t encode_id(const loader *L, int f, const char *s, size_t n, int *bad)
{
    uint64_t v = 0;
    if (n == 0 || n > 19) {
        *bad = n > 0;
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            *bad = 1;
            return 0;
        }
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    return v < L->enc->id_size[f] ? (uint32_t)v : 0;
}

/* Id (provisional while fitting) of value s[0..n) of field f, h = rf_vocab_hash_ of it. */
static inline uint32_t encode_h(loader *L, int f, const char *s, size_t n, uint64_t h, int *oom)
{
    if (n == 0) return 0;
    if (L->fitting) {
        uint32_t id = rf_vocab_fit_id_(L->enc->vocab[f], s, n, h);
        if (!id) *oom = 1;
        return id;
    }
    return rf_vocab_lookup_h_(L->enc->vocab[f], s, n, h);
}

static inline uint32_t encode(loader *L, int f, const char *s, size_t n, int *oom)
{
    if (n == 0) return 0;
    if (!L->enc->vocab[f]) {
        int bad = 0;
        uint32_t id = encode_id(L, f, s, n, &bad);
        if (bad) *oom = 2;
        return id;
    }
    return encode_h(L, f, s, n, rf_vocab_hash_(L->enc->vocab[f], s, n), oom);
}

/* Convert the tokenized current row into row L->n. */
static int process_row(loader *L)
{
    tokens *t = &L->t;
    if (t->bad) return row_bad(L, t->bad, "unexpected character after closing quote");
    if (t->n != L->ncols)
        return row_bad(L, L->rd.buf + L->rd.pos, "expected %d fields, found %d", L->ncols, t->n);
    if (L->n == L->cap && grow_rows(L)) goto oom;
    size_t r = L->n;
    const rf_schema *sc = L->sc;
    int rc;
    double x;
    /* numeric columns first: a rejected row must not touch the vocabularies */
    float *drow = L->D ? L->dense + r * (size_t)L->D : NULL;
    for (int d = 0; d < L->D; d++) {
        if ((rc = num_field(L, L->dense_col[d], "column", sc->dense[d], &x)) != ROW_OK) return rc;
        if (to_float(x, &drow[d]))
            return row_bad(L, t->f[L->dense_col[d]].start, "value out of float range in column '%s'",
                           sc->dense[d]);
    }
    for (int k = 0; k < L->K; k++) {
        double a, b = 1.0;
        if ((rc = num_field(L, L->lab_a[k], "label column", sc->label[k], &a)) != ROW_OK) return rc;
        if (L->lab_b[k] >= 0 &&
            (rc = num_field(L, L->lab_b[k], "label column", sc->label[k], &b)) != ROW_OK)
            return rc;
        if (to_float(a * b, &L->labels[r * (size_t)L->K + (size_t)k]))
            return row_bad(L, t->f[L->lab_a[k]].start, "value out of float range in label column '%s'",
                           sc->label[k]);
        if (sc->labels_binary && a * b != 0.0 && a * b != 1.0) {
            const span *bs = &t->f[(a != 0.0 && a != 1.0) || L->lab_b[k] < 0 ? L->lab_a[k] : L->lab_b[k]];
            return row_bad(L, bs->start, "label '%.*s' is not 0 or 1 in label column '%s'",
                           (int)(bs->len > SHOW_MAX ? SHOW_MAX : bs->len), bs->p, sc->label[k]);
        }
    }
    if (L->weight_col >= 0) {
        if ((rc = num_field(L, L->weight_col, "weight column", sc->weight, &x)) != ROW_OK) return rc;
        float v;
        if (to_float(x, &v))
            return row_bad(L, t->f[L->weight_col].start,
                           "value out of float range in weight column '%s'", sc->weight);
        if (v < 0) {
            const span *s = &t->f[L->weight_col];
            return row_bad(L, s->start, "negative weight '%.*s' in weight column '%s'",
                           (int)(s->len > SHOW_MAX ? SHOW_MAX : s->len), s->p, sc->weight);
        }
        L->weight[r] = v;
    }
    if (L->group_col >= 0) {
        size_t n;
        const char *s = field_text(L, &t->f[L->group_col], &n);
        if (!s) goto oom;
        L->group[r] = XXH3_64bits(s, n);
    }
    /* categorical columns: hash the single-valued ones first and prefetch their table slots,
     * so that the cache misses of the lookups overlap */
    int oom = 0;
    uint64_t hs[64];
    for (int f = 0; f < L->F; f++) {
        const span *sp = &t->f[L->cat_col[f]];
        if (!sc->cat[f].multi && !sp->esc && sp->len && L->enc->vocab[f])
            hs[f] = rf_vocab_hash_(L->enc->vocab[f], sp->p, sp->len);
    }
    uint32_t *crow = L->cat + r * (size_t)(L->F ? L->F : 1);
    for (int f = 0; f < L->F; f++) {
        const span *sp = &t->f[L->cat_col[f]];
        if (!sc->cat[f].multi && !sp->esc && L->enc->vocab[f]) {
            crow[f] = sp->len ? encode_h(L, f, sp->p, sp->len, hs[f], &oom) : 0;
            continue;
        }
        size_t n;
        const char *s = field_text(L, sp, &n);
        if (!s) goto oom;
        if (!sc->cat[f].multi) {
            crow[f] = encode(L, f, s, n, &oom);
            continue;
        }
        crow[f] = 0;
        const char *e = s + n;
        char sep = L->sep[f];
        while (s < e) {
            const char *q = memchr(s, sep, (size_t)(e - s));
            if (!q) q = e;
            if (q > s && push_mv(L, f, encode(L, f, s, (size_t)(q - s), &oom))) goto oom;
            s = q + 1;
        }
        L->mv_off[f][r + 1] = L->mv_len[f];
    }
    if (oom == 2) {
        for (int f = 0; f < L->F; f++)
            if (!L->enc->vocab[f]) {
                const span *sp = &t->f[L->cat_col[f]];
                int bad = 0;
                if (!sc->cat[f].multi) {
                    encode_id(L, f, sp->p, sp->len, &bad);
                } else {
                    for (const char *a = sp->p, *e = sp->p + sp->len; a < e && !bad;) {
                        const char *q = memchr(a, L->sep[f], (size_t)(e - a));
                        if (!q) q = e;
                        if (q > a) encode_id(L, f, a, (size_t)(q - a), &bad);
                        a = q + 1;
                    }
                }
                if (bad)
                    return row_bad(L, sp->start, "expected integer ids in column '%s', found '%.*s'",
                                   sc->cat[f].name, (int)(sp->len > SHOW_MAX ? SHOW_MAX : sp->len), sp->p);
            }
    }
    if (oom) goto oom;
    L->n++;
    return ROW_OK;
oom:
    rf_errorf(L->err, RF_ENOMEM, "out of memory loading %s", L->path);
    return ROW_FAIL;
}

/* Index of the header column named (name, len), -1 if absent. */
static int header_find(const loader *L, const char *const *names, const size_t *lens, const char *name)
{
    size_t n = strlen(name);
    for (int c = 0; c < L->ncols; c++)
        if (lens[c] == n && memcmp(names[c], name, n) == 0) return c;
    return -1;
}

static rf_status missing_column(loader *L, const char *const *names, const size_t *lens,
                                const char *name, const char *role)
{
    char list[320];
    size_t o = 0;
    list[0] = '\0';
    for (int c = 0; c < L->ncols; c++) {
        int w = snprintf(list + o, sizeof list - o, "%s%.*s", c ? ", " : "",
                         (int)(lens[c] > RF_NAME_MAX ? RF_NAME_MAX : lens[c]), names[c]);
        if (w < 0 || (size_t)w >= sizeof list - o) {
            memcpy(list + sizeof list - 5, "...", 4);
            break;
        }
        o += (size_t)w;
    }
    return rf_error_at(L->err, RF_EDATA, L->path, 1, 1,
                       "%s column '%s' not found in header (columns: %s)", role, name, list);
}

/* Map schema columns to header positions (header tokenized in L->t). */
static rf_status map_header(loader *L)
{
    const rf_schema *sc = L->sc;
    int nc = L->t.n;
    L->ncols = nc;
    const char **names = malloc((size_t)nc * sizeof *names);
    size_t *lens = malloc((size_t)nc * sizeof *lens);
    char *copy = NULL;
    size_t total = 0;
    for (int c = 0; c < nc; c++) total += L->t.f[c].len + 1;
    copy = malloc(total + 1);
    rf_status st = RF_OK;
    if (!names || !lens || !copy) {
        st = rf_errorf(L->err, RF_ENOMEM, "out of memory");
        goto done;
    }
    size_t o = 0;
    for (int c = 0; c < nc; c++) {
        size_t n;
        const char *s = field_text(L, &L->t.f[c], &n);
        if (!s) {
            st = rf_errorf(L->err, RF_ENOMEM, "out of memory");
            goto done;
        }
        memcpy(copy + o, s, n);
        copy[o + n] = '\0';
        names[c] = copy + o;
        lens[c] = n;
        o += n + 1;
    }
    for (int f = 0; f < sc->F; f++)
        if ((L->cat_col[f] = header_find(L, names, lens, sc->cat[f].name)) < 0) {
            st = missing_column(L, names, lens, sc->cat[f].name, "categorical");
            goto done;
        }
    for (int d = 0; d < sc->D; d++)
        if ((L->dense_col[d] = header_find(L, names, lens, sc->dense[d])) < 0) {
            st = missing_column(L, names, lens, sc->dense[d], "dense");
            goto done;
        }
    for (int k = 0; k < sc->K; k++) {
        const char *spec = sc->label[k];
        L->lab_b[k] = -1;
        if ((L->lab_a[k] = header_find(L, names, lens, spec)) >= 0) continue;
        const char *star = strchr(spec, '*');
        if (!star) {
            st = missing_column(L, names, lens, spec, "label");
            goto done;
        }
        char a[sizeof sc->label[0]], b[sizeof sc->label[0]];
        snprintf(a, sizeof a, "%.*s", (int)(star - spec), spec);
        snprintf(b, sizeof b, "%s", star + 1);
        if ((L->lab_a[k] = header_find(L, names, lens, a)) < 0) {
            st = missing_column(L, names, lens, a, "label");
            goto done;
        }
        if ((L->lab_b[k] = header_find(L, names, lens, b)) < 0) {
            st = missing_column(L, names, lens, b, "label");
            goto done;
        }
    }
    L->weight_col = L->group_col = -1;
    if (sc->weight[0] && (L->weight_col = header_find(L, names, lens, sc->weight)) < 0) {
        st = missing_column(L, names, lens, sc->weight, "weight");
        goto done;
    }
    if (sc->group[0] && (L->group_col = header_find(L, names, lens, sc->group)) < 0) {
        st = missing_column(L, names, lens, sc->group, "group");
        goto done;
    }
done:
    free(names);
    free(lens);
    free(copy);
    return st;
}

static rf_status check_schema(const rf_schema *sc, rf_error *err)
{
    if (sc->F < 0 || sc->F > 64 || sc->D < 0 || sc->D > 128 || sc->K < 0 || sc->K > 16)
        return rf_errorf(err, RF_EUSAGE, "schema: bad sizes F=%d D=%d K=%d", sc->F, sc->D, sc->K);
    char d = sc->delim ? sc->delim : ',';
    if (d == '"' || d == '\n' || d == '\r')
        return rf_errorf(err, RF_EUSAGE, "schema: invalid delimiter");
    for (int k = 0; k < sc->K; k++)
        if (strlen(sc->label[k]) >= RF_NAME_MAX)
            return rf_errorf(err, RF_EUSAGE, "schema: label spec '%s' longer than %d characters",
                             sc->label[k], RF_NAME_MAX - 1);
    for (int f = 0; f < sc->F; f++)
        if (sc->cat[f].multi && (sc->cat[f].sep == '\n' || sc->cat[f].sep == '\r'))
            return rf_errorf(err, RF_EUSAGE, "schema: invalid separator for field '%s'",
                             sc->cat[f].name);
    return RF_OK;
}

static void loader_free(loader *L)
{
    if (L->rd.gz) gzclose(L->rd.gz);
    free(L->rd.buf);
    free(L->t.f);
    free(L->scratch);
    free(L->cat);
    free(L->dense);
    free(L->labels);
    free(L->weight);
    free(L->group);
    for (int f = 0; f < 64; f++) {
        free(L->mv_off[f]);
        free(L->mv_ids[f]);
    }
}

/* Shrink a buffer to its used size (best effort). */
static void *shrink(void *p, size_t bytes)
{
    void *q = realloc(p, bytes ? bytes : 1);
    return q ? q : p;
}

/* Contract (see data.h): schema columns are picked by header name; *enc == NULL fits one
 * vocabulary per categorical field on this file (freeze with schema->min_count, 0 treated as 1)
 * and returns the encoders in *enc (the caller frees them with rf_encoders_free); otherwise the
 * given frozen encoders are used and unknown values map to 0. On failure *out is NULL and
 * *enc is unchanged (encoders fitted by this call are freed). opts may be NULL (strict, all
 * rows); opts->bad_rows is always written when opts is given. */
rf_status rf_load_csv(const char *path, const rf_schema *schema, rf_encoders **enc,
                      rf_load_opts *opts, rf_dataset **out, rf_error *err)
{
    if (!path || !schema || !enc || !out)
        return rf_errorf(err, RF_EINTERNAL, "rf_load_csv: NULL argument");
    *out = NULL;
    rf_status st = check_schema(schema, err);
    if (st) return st;
    if (*enc && ((*enc)->F != schema->F || (schema->F && !(*enc)->vocab)))
        return rf_errorf(err, RF_EUSAGE, "encoders have %d fields, schema has %d", (*enc)->F,
                         schema->F);
    for (int f = 0; *enc && f < schema->F; f++)
        if (!(*enc)->vocab[f] && !((*enc)->id_size && (*enc)->id_size[f] > 0))
            return rf_errorf(err, RF_EUSAGE, "field %d (%s) has neither a vocabulary nor an id range", f,
                             schema->cat[f].name);

    loader *L = calloc(1, sizeof *L);
    if (!L) return rf_errorf(err, RF_ENOMEM, "out of memory");
    L->sc = schema;
    L->path = path;
    L->err = err;
    L->skip = opts && opts->skip_bad_rows;
    L->delim = schema->delim ? schema->delim : ',';
    L->F = schema->F;
    L->D = schema->D;
    L->K = schema->K;
    L->weight_col = L->group_col = -1;
    for (int f = 0; f < L->F; f++) L->sep[f] = schema->cat[f].sep ? schema->cat[f].sep : '|';
    L->cls[(unsigned char)L->delim] = 1;
    L->cls['\n'] = 1;
    L->cls['\r'] = 1;
    if (opts) opts->bad_rows = 0;
    size_t max_rows = opts ? opts->max_rows : 0;
    rf_dataset *ds = NULL;
    uint32_t *maps[64] = {0};

    errno = 0;
    L->rd.gz = gzopen(path, "rb");
    if (!L->rd.gz) {
        st = rf_error_at(err, RF_EIO, path, 0, 0, "cannot open: %s",
                         errno ? strerror(errno) : "out of memory");
        goto fail;
    }
    gzbuffer(L->rd.gz, 1u << 16); /* reads of >= 2x this go straight into our buffer */
    L->rd.cap = READ_CHUNK;
    L->rd.buf = calloc(1, L->rd.cap + BUF_PAD);
    if (!L->rd.buf) {
        st = rf_errorf(err, RF_ENOMEM, "out of memory");
        goto fail;
    }
    L->rd.buf[0] = '\n';
    L->rd.line = 1;
    if ((st = rd_fill(&L->rd, path, err)) != RF_OK) goto fail;
    while (!L->rd.eof && L->rd.len < 3)
        if ((st = rd_fill(&L->rd, path, err)) != RF_OK) goto fail;
    if (L->rd.len >= 3 && memcmp(L->rd.buf, "\xEF\xBB\xBF", 3) == 0) L->rd.pos = 3;
    /* plain file: estimate the row count from the size and the first chunk's line length */
    struct stat fst;
    if (gzdirect(L->rd.gz) && !L->rd.eof && stat(path, &fst) == 0 && fst.st_size > 0) {
        size_t nl = 0;
        for (const char *q = L->rd.buf; (q = memchr(q, '\n', (size_t)(L->rd.buf + L->rd.len - q))); q++)
            nl++;
        if (nl > 1) {
            double est = (double)fst.st_size * (double)nl / (double)L->rd.len * 1.02 + 64;
            if (est < 1e12) L->est_rows = (size_t)est;
        }
    }
    if (max_rows && L->est_rows > max_rows) L->est_rows = max_rows;

    if (*enc) {
        L->enc = *enc;
    } else {
        if (!(L->enc = encoders_new(schema->F))) {
            st = rf_errorf(err, RF_ENOMEM, "out of memory");
            goto fail;
        }
        L->fitting = 1;
    }

    int have_header = 0;
    long header_line = 1;
    for (;;) {
        if (max_rows && L->n >= max_rows) break;
        int tk = tokenize(&L->rd, L->cls, L->delim, &L->t);
        if (tk == TOK_MORE) {
            if ((st = rd_fill(&L->rd, path, err)) != RF_OK) goto fail;
            continue;
        }
        if (tk == TOK_EOF) break;
        if (tk == TOK_NOMEM) {
            st = rf_errorf(err, RF_ENOMEM, "out of memory");
            goto fail;
        }
        if (tk == TOK_UNTERM) {
            long line, col;
            locate(L, L->t.unterm, &line, &col);
            st = rf_error_at(err, RF_EDATA, path, line, col, "unterminated quoted field");
            goto fail;
        }
        /* TOK_ROW */
        const span *f0 = &L->t.f[0];
        int blank = L->t.n == 1 && f0->len == 0 && f0->start == f0->p;
        if (!blank) {
            if (!have_header) {
                if (L->t.bad) {
                    long line, col;
                    locate(L, L->t.bad, &line, &col);
                    st = rf_error_at(err, RF_EDATA, path, line, col,
                                     "unexpected character after closing quote");
                    goto fail;
                }
                if ((st = map_header(L)) != RF_OK) goto fail;
                header_line = L->rd.line;
                have_header = 1;
            } else {
                int rc = process_row(L);
                if (rc == ROW_FAIL) {
                    st = err ? err->code : RF_EDATA;
                    if (st == RF_OK) st = RF_EDATA;
                    goto fail;
                }
            }
        }
        L->rd.pos = (size_t)(L->t.next - L->rd.buf);
        L->rd.line += L->t.lines;
    }
    if (!have_header) {
        st = rf_error_at(err, RF_EDATA, path, 1, 1, "empty file");
        goto fail;
    }
    if (L->n == 0) {
        if (L->bad_rows)
            st = rf_error_at(err, RF_EDATA, path, header_line + 1, 1,
                             "no data rows (%zu bad rows skipped)", L->bad_rows);
        else
            st = rf_error_at(err, RF_EDATA, path, header_line + 1, 1, "no data rows");
        goto fail;
    }

    /* fitted vocabularies: freeze and remap provisional ids */
    if (L->fitting) {
        uint32_t minc = schema->min_count ? schema->min_count : 1;
        for (int f = 0; f < L->F; f++)
            if (rf_vocab_freeze_remap_(L->enc->vocab[f], minc, &maps[f]) != RF_OK) {
                st = rf_errorf(err, RF_ENOMEM, "out of memory");
                goto fail;
            }
        for (size_t i = 0; i < L->n; i++) {
            uint32_t *row = L->cat + i * (size_t)L->F;
            for (int f = 0; f < L->F; f++) row[f] = maps[f][row[f]];
        }
        for (int f = 0; f < L->F; f++) {
            if (!schema->cat[f].multi) continue;
            for (size_t j = 0; j < L->mv_len[f]; j++) L->mv_ids[f][j] = maps[f][L->mv_ids[f][j]];
        }
    }

    /* assemble the dataset: hand over the column arrays */
    ds = rf_dataset_alloc(0, L->F, L->D, L->K);
    if (!ds) {
        st = rf_errorf(err, RF_ENOMEM, "out of memory");
        goto fail;
    }
    size_t n = L->n;
    ds->n = n;
    free(ds->cat);
    ds->cat = shrink(L->cat, n * (size_t)(L->F ? L->F : 1) * sizeof *L->cat);
    L->cat = NULL;
    free(ds->dense);
    ds->dense = L->D ? shrink(L->dense, n * (size_t)L->D * sizeof *L->dense) : NULL;
    L->dense = NULL;
    free(ds->labels);
    ds->labels = shrink(L->labels, n * (size_t)(L->K ? L->K : 1) * sizeof *L->labels);
    L->labels = NULL;
    if (L->weight) ds->weight = shrink(L->weight, n * sizeof *L->weight);
    L->weight = NULL;
    if (L->group) ds->group = shrink(L->group, n * sizeof *L->group);
    L->group = NULL;
    for (int f = 0; f < L->F; f++) {
        rf_field *fd = &ds->fields[f];
        snprintf(fd->name, sizeof fd->name, "%s", schema->cat[f].name);
        fd->multi = schema->cat[f].multi ? 1 : 0;
        fd->pooling = schema->cat[f].pooling;
        fd->sep = fd->multi ? L->sep[f] : schema->cat[f].sep;
        fd->vocab = L->enc->vocab[f] ? rf_vocab_size(L->enc->vocab[f]) : L->enc->id_size[f];
        if (fd->multi) {
            ds->mv_off[f] = shrink(L->mv_off[f], (n + 1) * sizeof *L->mv_off[f]);
            L->mv_off[f] = NULL;
            if (!L->mv_ids[f]) L->mv_ids[f] = malloc(sizeof *L->mv_ids[f]);
            ds->mv_ids[f] = L->mv_ids[f] ? shrink(L->mv_ids[f], L->mv_len[f] * sizeof *L->mv_ids[f])
                                         : NULL;
            L->mv_ids[f] = NULL;
            if (!ds->mv_ids[f]) {
                st = rf_errorf(err, RF_ENOMEM, "out of memory");
                goto fail;
            }
        }
    }
    for (int d = 0; d < L->D; d++)
        snprintf(ds->dense_names[d], RF_NAME_MAX, "%s", schema->dense[d]);
    for (int k = 0; k < L->K; k++)
        snprintf(ds->label_names[k], RF_NAME_MAX, "%s", schema->label[k]);

    if (opts) opts->bad_rows = L->bad_rows;
    if (L->fitting) *enc = L->enc;
    for (int f = 0; f < 64; f++) free(maps[f]);
    loader_free(L);
    free(L);
    *out = ds;
    return RF_OK;

fail:
    if (opts) opts->bad_rows = L->bad_rows;
    for (int f = 0; f < 64; f++) free(maps[f]);
    rf_dataset_free(ds);
    if (L->fitting) rf_encoders_free(L->enc);
    loader_free(L);
    free(L);
    return st ? st : RF_EINTERNAL;
}

/* ---- writer --------------------------------------------------------------------------- */

typedef struct {
    char *p;
    size_t len, cap;
    int oom;
} strbuf;

static void sb_reserve(strbuf *b, size_t extra)
{
    if (b->oom || b->len + extra <= b->cap) return;
    size_t nc = b->cap ? b->cap : 4096;
    while (nc < b->len + extra) nc *= 2;
    char *np = realloc(b->p, nc);
    if (!np) {
        b->oom = 1;
        return;
    }
    b->p = np;
    b->cap = nc;
}

static void sb_put(strbuf *b, const char *s, size_t n)
{
    sb_reserve(b, n);
    if (b->oom) return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

static void sb_char(strbuf *b, char c) { sb_put(b, &c, 1); }

/* A field, quoted (RFC 4180) if it contains the delimiter, a quote or a line break. */
static void sb_field(strbuf *b, const char *s, size_t n, char delim)
{
    int q = 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] == delim || s[i] == '"' || s[i] == '\n' || s[i] == '\r') q = 1;
    if (!q) {
        sb_put(b, s, n);
        return;
    }
    sb_char(b, '"');
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '"') sb_char(b, '"');
        sb_char(b, s[i]);
    }
    sb_char(b, '"');
}

static void sb_u64(strbuf *b, uint64_t v)
{
    char t[24];
    int i = 24;
    do {
        t[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    sb_put(b, t + i, (size_t)(24 - i));
}

/* %.9g (round-trips every float); small integers take a fast path with identical output. */
static void sb_float(strbuf *b, float f)
{
    if (f == f && fabsf(f) < 16777216.0f && f == (float)(int32_t)f && !(f == 0 && signbit(f))) {
        int32_t i = (int32_t)f;
        if (i < 0) sb_char(b, '-');
        sb_u64(b, (uint64_t)(i < 0 ? -(int64_t)i : i));
        return;
    }
    char t[32];
    int n = snprintf(t, sizeof t, "%.9g", (double)f);
    sb_put(b, t, (size_t)n);
}

/* Writer contract: comma-delimited, header = field names, dense names, label names, then
 * "weight" and "group" when present. Categorical ids are written as decimal integers (a
 * multi-valued field as its ids joined by the field's separator, quoted when that is ','), floats
 * with %.9g (exact float round trip), groups as decimal integers. Reloading with a schema built
 * from the dataset and encoders mapping the text "k" to id k reproduces cat/mv ids, dense,
 * labels and weight exactly; group keys are re-hashed on load, so only their partition of the
 * rows is preserved. truth is not written. The file is written to path + ".tmp" and renamed
 * into place, so readers never see a partial file. */
rf_status rf_dataset_write_csv(const rf_dataset *ds, const char *path, rf_error *err)
{
    if (!ds || !path) return rf_errorf(err, RF_EINTERNAL, "rf_dataset_write_csv: NULL argument");
    size_t pl = strlen(path);
    char *tmp = malloc(pl + 5);
    if (!tmp) return rf_errorf(err, RF_ENOMEM, "out of memory");
    memcpy(tmp, path, pl);
    memcpy(tmp + pl, ".tmp", 5);
    const char delim = ',';
    rf_status st = RF_OK;
    strbuf b = {0};
    FILE *fp = fopen(tmp, "wb");
    if (!fp) {
        st = rf_error_at(err, RF_EIO, tmp, 0, 0, "cannot create: %s", strerror(errno));
        free(tmp);
        return st;
    }
    /* header */
    int col = 0;
    for (int f = 0; f < ds->F; f++, col++) {
        if (col) sb_char(&b, delim);
        sb_field(&b, ds->fields[f].name, strlen(ds->fields[f].name), delim);
    }
    for (int d = 0; d < ds->D; d++, col++) {
        if (col) sb_char(&b, delim);
        sb_field(&b, ds->dense_names[d], strlen(ds->dense_names[d]), delim);
    }
    for (int k = 0; k < ds->K; k++, col++) {
        if (col) sb_char(&b, delim);
        sb_field(&b, ds->label_names[k], strlen(ds->label_names[k]), delim);
    }
    if (ds->weight) {
        if (col++) sb_char(&b, delim);
        sb_put(&b, "weight", 6);
    }
    if (ds->group) {
        if (col++) sb_char(&b, delim);
        sb_put(&b, "group", 5);
    }
    sb_char(&b, '\n');

    strbuf mv = {0};
    int werr = 0;
    for (size_t i = 0; i < ds->n && !b.oom && !mv.oom && !werr; i++) {
        col = 0;
        for (int f = 0; f < ds->F; f++, col++) {
            if (col) sb_char(&b, delim);
            if (!ds->fields[f].multi || !ds->mv_off || !ds->mv_off[f]) {
                sb_u64(&b, ds->cat[i * (size_t)ds->F + (size_t)f]);
                continue;
            }
            mv.len = 0;
            char sep = ds->fields[f].sep ? ds->fields[f].sep : '|';
            for (uint64_t j = ds->mv_off[f][i]; j < ds->mv_off[f][i + 1]; j++) {
                if (j > ds->mv_off[f][i]) sb_char(&mv, sep);
                sb_u64(&mv, ds->mv_ids[f][j]);
            }
            if (!mv.oom) sb_field(&b, mv.p ? mv.p : "", mv.len, delim);
        }
        for (int d = 0; d < ds->D; d++, col++) {
            if (col) sb_char(&b, delim);
            sb_float(&b, ds->dense[i * (size_t)ds->D + (size_t)d]);
        }
        for (int k = 0; k < ds->K; k++, col++) {
            if (col) sb_char(&b, delim);
            sb_float(&b, ds->labels[i * (size_t)ds->K + (size_t)k]);
        }
        if (ds->weight) {
            if (col++) sb_char(&b, delim);
            sb_float(&b, ds->weight[i]);
        }
        if (ds->group) {
            if (col++) sb_char(&b, delim);
            sb_u64(&b, ds->group[i]);
        }
        sb_char(&b, '\n');
        if (b.len >= ((size_t)1 << 20)) {
            if (fwrite(b.p, 1, b.len, fp) != b.len) werr = 1;
            b.len = 0;
        }
    }
    if (b.oom || mv.oom) {
        st = rf_errorf(err, RF_ENOMEM, "out of memory writing %s", path);
    } else if (werr || (b.len && fwrite(b.p, 1, b.len, fp) != b.len)) {
        st = rf_error_at(err, RF_EIO, tmp, 0, 0, "write error: %s", strerror(errno));
    } else if (ferror(fp)) {
        st = rf_error_at(err, RF_EIO, tmp, 0, 0, "write error: %s", strerror(errno));
    }
    if (fclose(fp) != 0 && st == RF_OK)
        st = rf_error_at(err, RF_EIO, tmp, 0, 0, "write error: %s", strerror(errno));
    if (st == RF_OK && rename(tmp, path) != 0)
        st = rf_error_at(err, RF_EIO, path, 0, 0, "cannot rename %s: %s", tmp, strerror(errno));
    if (st != RF_OK) remove(tmp);
    free(b.p);
    free(mv.p);
    free(tmp);
    return st;
}
