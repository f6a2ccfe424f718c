/* rows.c - the rows of a piece of text into its output columns: tokenized, joined, filtered,
 * numbers parsed (the dense fields as a batch), categorical values encoded or fitted (see the
 * contract at the top of csv.c). */
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "core/bigmem.h"
#include "data/loader.h"
#include "data/numparse.h"

/* double -> float; -1 if the value rounds outside the float range. */
/* Location (piece-relative 0-based line, 1-based column) of position at in the current row. */
void rf_locate_(const piece *P, const char *at, long *line, long *col)
{
    const char *ls = P->row;
    long ln = P->row_line;
    if (!(at >= P->row && at <= P->row + ROW_MAX)) at = P->row; /* outside the buffer */
    for (const char *q = P->row; q < at; q++)
        if (*q == '\n') {
            ln++;
            ls = q + 1;
        }
    *line = ln;
    *col = (long)(at - ls) + 1;
}

static int row_bad(const loader *L, piece *P, const char *at, const char *fmt, ...) RF_PRINTF(4, 5);
static int row_bad(const loader *L, piece *P, const char *at, const char *fmt, ...)
{
    if (L->skip) {
        if (P->nshow < RF_BAD_SHOW) { /* where and why, for the summary (rf_load_opts.bad_first) */
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(P->show_msg[P->nshow], sizeof P->show_msg[0], fmt, ap);
            va_end(ap);
            rf_locate_(P, at, &P->show_line[P->nshow], &P->show_col[P->nshow]);
            P->nshow++;
        }
        P->bad++;
        return ROW_SKIP;
    }
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    long line, col;
    rf_locate_(P, at, &line, &col);
    rf_error_at(&P->err, RF_EDATA, L->path, line, col, "%s", msg);
    P->failed = 1;
    return ROW_FAIL;
}

static int row_oom(const loader *L, piece *P)
{
    rf_errorf(&P->err, RF_ENOMEM, "out of memory loading %s", L->path);
    P->failed = 2;
    return ROW_FAIL;
}

/* Field text with "" escapes removed (into the scratch buffer if needed); NULL on OOM. */
const char *rf_field_text_(piece *P, const span *s, size_t *len)
{
    if (s->esc != 1) {
        *len = s->len;
        return s->p;
    }
    if (P->scratch_cap < (size_t)s->len + 1) {
        size_t nc = (size_t)s->len + 1 > 2 * P->scratch_cap ? (size_t)s->len + 1 : 2 * P->scratch_cap;
        char *nb = realloc(P->scratch, nc + TEXT_PAD);
        if (!nb) return NULL;
        P->scratch = nb;
        P->scratch_cap = nc;
    }
    size_t o = 0;
    for (uint32_t i = 0; i < s->len; i++) {
        P->scratch[o++] = s->p[i];
        if (s->p[i] == '"') i++; /* inside a quoted field quotes come in pairs */
    }
    *len = o;
    return P->scratch;
}

/* Text of a categorical/string value: unescaped and, for ISO-8859-1 input, UTF-8. Values of
 * side tables are already converted. */
static const char *value_text(const loader *L, piece *P, const span *s, size_t *len)
{
    const char *t = rf_field_text_(P, s, len);
    if (!t || !L->latin1 || s->esc > 1 || !rf_has_high_(t, *len)) return t;
    long n = rf_latin1_to_utf8_(t, *len, &P->conv, &P->conv_cap);
    if (n < 0) return NULL;
    *len = (size_t)n;
    return P->conv;
}

/* Report a bad numeric field (role: "column", "label column", ...; name: schema name). */
static int num_error(const loader *L, piece *P, const span *s, int rc, const char *role, const char *name)
{
    size_t n;
    const char *txt = rf_field_text_(P, s, &n);
    if (!txt) return row_oom(L, P);
    int show = n > SHOW_MAX ? SHOW_MAX : (int)n;
    const char *ell = n > SHOW_MAX ? "..." : "";
    if (s->esc == JOIN_MISSING)
        return row_bad(L, P, s->start, "no row for this key in the joined file (needed for %s '%s')", role, name);
    if (rc == RF_NUM_EMPTY) return row_bad(L, P, s->start, "empty numeric value in %s '%s'", role, name);
    if (rc == RF_NUM_NONFINITE)
        return row_bad(L, P, s->start, "non-finite value '%.*s%s' in %s '%s'", show, txt, ell, role, name);
    return row_bad(L, P, s->start, "invalid number '%.*s%s' in %s '%s'", show, txt, ell, role, name);
}

/* Parse a numeric field into *out; returns ROW_*. */
static inline int num_span(const loader *L, piece *P, const span *s, const char *role, const char *name,
                           double *out)
{
    if (s->esc == JOIN_MISSING) return num_error(L, P, s, RF_NUM_EMPTY, role, name);
    int rc = rf_parse_num_(s->p, s->len, out);
    if (rc == RF_NUM_OK && s->esc != 1) return ROW_OK;
    if (s->esc == 1) { /* only possible with "" escapes inside a quoted number: never valid */
        size_t n;
        const char *txt = rf_field_text_(P, s, &n);
        if (!txt) return row_oom(L, P);
        if ((rc = rf_parse_num_(txt, n, out)) == RF_NUM_OK) return ROW_OK;
    }
    return num_error(L, P, s, rc, role, name);
}

/* Is the span a missing value (empty, a missing joined row, or one of the NA strings)? */
static int is_na(const loader *L, const span *s)
{
    if (s->esc == JOIN_MISSING || s->len == 0) return 1;
    const rf_schema *sc = L->sc;
    for (int i = 0; i < sc->nna; i++) {
        size_t n = strlen(sc->na[i]);
        if (n == s->len && memcmp(s->p, sc->na[i], n) == 0) return 1;
    }
    return 0;
}

int rf_grow_rows_(const loader *L, cols *c, size_t want)
{
    size_t nc = c->cap ? 2 * c->cap : want ? want : 1024;
    while (nc < want) nc *= 2;
    uint32_t *ct = rf_cgrow_(c, (void **)&c->cat, nc * (size_t)(L->F ? L->F : 1) * sizeof *ct);
    if (!ct) return -1;
    c->cat = ct;
    if (L->D && !(L->dense_stream && c == &L->out)) {
        float *d = rf_cgrow_(c, (void **)&c->dense, nc * (size_t)L->D * sizeof *d);
        if (!d) return -1;
        c->dense = d;
    }
    float *lb = rf_cgrow_(c, (void **)&c->labels, nc * (size_t)(L->K ? L->K : 1) * sizeof *lb);
    if (!lb) return -1;
    c->labels = lb;
    if (L->weight_col >= 0) {
        float *w = rf_cgrow_(c, (void **)&c->weight, nc * sizeof *w);
        if (!w) return -1;
        c->weight = w;
    }
    if (L->group_col >= 0) {
        uint64_t *g = rf_cgrow_(c, (void **)&c->group, nc * sizeof *g);
        if (!g) return -1;
        c->group = g;
    }
    for (int f = 0; f < L->F; f++) {
        if (!L->fp[f].multi) continue;
        uint64_t *o = rf_cgrow_(c, (void **)&c->mv_off[f], (nc + 1) * sizeof *o);
        if (!o) return -1;
        if (!c->mv_off[f]) o[0] = 0;
        c->mv_off[f] = o;
    }
    c->cap = nc;
    return 0;
}

static int push_mv(cols *c, int f, uint32_t id)
{
    if (c->mv_len[f] == c->mv_cap[f]) {
        size_t nc = c->mv_cap[f] ? 2 * c->mv_cap[f] : 4096;
        uint32_t *ni = rf_big_realloc_(c->mv_ids[f], nc * sizeof *ni);
        if (!ni) return -1;
        c->mv_ids[f] = ni;
        c->mv_cap[f] = nc;
    }
    c->mv_ids[f][c->mv_len[f]++] = id;
    return 0;
}

/* Integer-id value: the decimal value itself, 0 (OOV) when outside [0, size); *bad is set
 * when the text is not a non-negative integer. */
/* Id of a non-empty value of field f with hash h (= rf_vocab_hash_ for vocabularies). While
 * fitting: a provisional id (local vocabulary of the piece unless direct). *oom on failure. */
/* id, provisional in piece P's own vocabulary, as written to P's rows: tagged LOCAL_ID (and
 * field f noted for the remap); 0 with *oom set when id is 0 (out of memory) or too large. */
static inline uint32_t local_id(piece *P, int f, uint32_t id, int *oom)
{
    if (!id || id >= LOCAL_ID) {
        *oom = 1;
        return 0;
    }
    P->local |= (uint64_t)1 << f;
    return id | LOCAL_ID;
}

static inline uint32_t encode_vocab(const loader *L, piece *P, int f, const char *s, size_t n, uint64_t h,
                                    int *oom)
{
    const fplan *fp = &L->fp[f];
    if (L->fitting && L->direct) {
        uint32_t id = rf_vocab_fit_id_(fp->vocab, s, n, h);
        if (!id) *oom = 1;
        return id;
    }
    if (L->fitting) { /* a key the global vocabulary has (read-only while pieces are parsed) */
        uint32_t g = rf_vocab_find_h_(fp->vocab, s, n, h);
        return g ? g : local_id(P, f, rf_vocab_fit_id_(P->voc[f], s, n, h), oom);
    }
    uint32_t id = rf_vocab_lookup_h_(fp->vocab, s, n, h);
    return id ? id : fp->oov;
}

/* Id of the value s[0..n) of a non-bucket field; *bad: 1 OOM, 2 not an integer id. */
static inline uint32_t encode_value(const loader *L, piece *P, int f, const char *s, size_t n, int *bad)
{
    if (n == 0) return 0;
    const fplan *fp = &L->fp[f];
    switch (fp->kind) {
    case FK_HASH: return 1 + (uint32_t)(XXH3_64bits_withSeed(s, n, fp->seed) % (fp->size - 1));
    case FK_IDS: {
        int b = 0;
        uint32_t id = rf_encode_id_(fp->size, s, n, &b);
        if (b) *bad = 2;
        return id;
    }
    default: return encode_vocab(L, P, f, s, n, rf_vocab_hash_(fp->vocab, s, n), bad);
    }
}

/* Text of extended column c of the current row. */
static inline const span *colspan(const piece *P, int c) { return &P->t.f[c]; }

/* Evaluate a comparison expression on its column; *res 0/1; returns ROW_*. */
static int eval_cmp(const loader *L, piece *P, const expr *x, const span *s, const char *role,
                    const char *name, int *res)
{
    if (x->kind == X_NUM) {
        double v;
        int rc = num_span(L, P, s, role, name, &v);
        if (rc != ROW_OK) return rc;
        *res = cmp_num(x->op, v, x->v);
        return ROW_OK;
    }
    size_t n = 0;
    const char *t = s->esc == JOIN_MISSING ? "" : value_text(L, P, s, &n);
    if (!t) return row_oom(L, P);
    if (s->esc == JOIN_MISSING) n = 0;
    int eq = n == x->tlen && memcmp(t, x->text, n) == 0;
    *res = x->op == OP_EQ ? eq : !eq;
    return ROW_OK;
}

/* Fill the joined columns of the current row. */
static int join_row(const loader *L, piece *P)
{
    tokens *t = &P->t;
    for (int j = 0; j < L->nside; j++) {
        const side *s = &L->sides[j];
        int need = L->next;
        if (t->cap < need) {
            span *nf = realloc(t->f, (size_t)need * sizeof *nf);
            if (!nf) return row_oom(L, P);
            t->f = nf;
            t->cap = need;
        }
        const span *ks = &t->f[s->on_col];
        size_t kn;
        const char *k = value_text(L, P, ks, &kn);
        if (!k) return row_oom(L, P);
        long r = rf_side_find_(s, k, kn);
        for (int c = 0; c < s->ncols; c++) {
            span *o = &t->f[s->base + c];
            o->start = ks->start;
            if (r < 0) {
                o->p = "";
                o->len = 0;
                o->esc = JOIN_MISSING;
            } else {
                o->p = side_field(s, (size_t)r, c, &o->len);
                o->esc = SIDE_VALUE;
            }
        }
    }
    t->n = L->next;
    return ROW_OK;
}

/* The dense fields of the current row that are plain decimals, converted as a batch
 * (rf_num_batch_*, numparse.h) into drow, raw; slow gets the fields left to the field-by-field
 * path (all of them when an NA string reads as a number: see rf_make_plan_). */
static void dense_batch(const loader *L, const piece *P, float *drow, uint64_t *slow)
{
    rf_num_batch_ b;
    for (int d0 = 0; d0 < L->D; d0 += 64) {
        int cnt = L->D - d0 < 64 ? L->D - d0 : 64;
        if (!L->dense_batch) {
            slow[d0 >> 6] = cnt == 64 ? ~(uint64_t)0 : ((uint64_t)1 << cnt) - 1;
            continue;
        }
        rf_num_batch_init_(&b);
        for (int i = 0; i < cnt; i++) {
            const span *sp = colspan(P, L->dp[d0 + i].col);
            rf_num_batch_add_(&b, sp->p, sp->esc ? 0 : sp->len); /* only text of the read buffer (padded) */
        }
        slow[d0 >> 6] = rf_num_batch_finish_(&b, drow + d0);
    }
}

/* Convert the tokenized current row of piece P into its next output row. */
static int process_row(const loader *L, piece *P)
{
    tokens *t = &P->t;
    if (t->bad) return row_bad(L, P, t->bad, "unexpected character after closing quote");
    if (t->n != L->ncols) return row_bad(L, P, P->row, "expected %d fields, found %d", L->ncols, t->n);
    if (L->nside && join_row(L, P) != ROW_OK) return ROW_FAIL;
    const rf_schema *sc = L->sc;
    int rc;
    for (int i = 0; i < L->nflt; i++) {
        int keep = 0;
        if (L->flt[i].x.kind == X_NUM && is_na(L, colspan(P, L->flt[i].col))) {
            P->filtered++; /* a missing value passes no numeric filter */
            return ROW_FILTERED;
        }
        if ((rc = eval_cmp(L, P, &L->flt[i].x, colspan(P, L->flt[i].col), "filter column", L->flt[i].x.a,
                           &keep)) != ROW_OK)
            return rc;
        if (!keep) {
            P->filtered++;
            return ROW_FILTERED;
        }
    }
    cols *c = &P->c;
    if (c->n == c->cap && rf_grow_rows_(L, c, 0)) return row_oom(L, P);
    size_t r = c->n;
    double x;
    /* numeric columns first: a rejected row must not touch the vocabularies */
    float *drow = L->D ? c->dense + r * (size_t)L->D : NULL;
    uint64_t slow[(RF_MAX_DENSE + 63) / 64];
    dense_batch(L, P, drow, slow);
    /* the fields the batch left, in order */
    for (int w = 0; w < (L->D + 63) >> 6; w++)
        for (uint64_t left = slow[w]; left; left &= left - 1) {
            int d = w * 64 + __builtin_ctzll(left);
            const dplan *dp = &L->dp[d];
            const span *s = colspan(P, dp->col);
            if (dp->fill != RF_FILL_ERROR && is_na(L, s)) {
                drow[d] = L->fitting ? NAN : dp->fill_value;
                continue;
            }
            if (!(s->esc == 0 && rf_num_fast_(s->p, s->len, &x) == RF_NUM_OK) && /* inline: the common case */
                (rc = num_span(L, P, s, "column", sc->dense[d], &x)) != ROW_OK)
                return rc;
            if (rf_num_to_float_(x, &drow[d]))
                return row_bad(L, P, s->start, "value out of float range in column '%s'", sc->dense[d]);
        }
    if (!L->fitting && L->dense_enc) /* given encoders: the row's values (and fills) transformed */
        for (int d = 0; d < L->D; d++)
            if (L->dp[d].enc) drow[d] = dense_apply(drow[d], L->dp[d].enc);
    for (int k = 0; k < L->K; k++) {
        const lplan *lp = &L->lp[k];
        float *y = &c->labels[r * (size_t)L->K + (size_t)k];
        const span *sa = colspan(P, lp->ca);
        if (lp->x.kind == X_NUM || lp->x.kind == X_STR) {
            int v;
            if ((rc = eval_cmp(L, P, &lp->x, sa, "label column", sc->label[k], &v)) != ROW_OK) return rc;
            *y = (float)v;
            continue;
        }
        double a, b = 1.0;
        if ((rc = num_span(L, P, sa, "label column", sc->label[k], &a)) != ROW_OK) return rc;
        if (lp->cb >= 0 && (rc = num_span(L, P, colspan(P, lp->cb), "label column", sc->label[k], &b)) != ROW_OK)
            return rc;
        if (rf_num_to_float_(a * b, y))
            return row_bad(L, P, sa->start, "value out of float range in label column '%s'", sc->label[k]);
        if (lp->scaled) {
            double z = (a * b - lp->lo) / (lp->hi - lp->lo);
            *y = (float)(z < 0 ? 0 : z > 1 ? 1 : z);
        } else if (sc->labels_binary && !lp->numeric && a * b != 0.0 && a * b != 1.0) {
            const span *bs = (a != 0.0 && a != 1.0) || lp->cb < 0 ? sa : colspan(P, lp->cb);
            return row_bad(L, P, bs->start, "label '%.*s' is not 0 or 1 in label column '%s'",
                           (int)(bs->len > SHOW_MAX ? SHOW_MAX : bs->len), bs->p, sc->label[k]);
        }
    }
    if (L->weight_col >= 0) {
        const span *s = colspan(P, L->weight_col);
        if ((rc = num_span(L, P, s, "weight column", sc->weight, &x)) != ROW_OK) return rc;
        float v;
        if (rf_num_to_float_(x, &v))
            return row_bad(L, P, s->start, "value out of float range in weight column '%s'", sc->weight);
        if (v < 0)
            return row_bad(L, P, s->start, "negative weight '%.*s' in weight column '%s'",
                           (int)(s->len > SHOW_MAX ? SHOW_MAX : s->len), s->p, sc->weight);
        c->weight[r] = v;
    }
    if (L->group_col >= 0) {
        size_t n;
        const char *s = rf_field_text_(P, colspan(P, L->group_col), &n);
        if (!s) return row_oom(L, P);
        c->group[r] = XXH3_64bits(s, n);
    }
    uint32_t *crow = c->cat + r * (size_t)(L->F ? L->F : 1);
    /* bucket fields (numbers) before any vocabulary is touched */
    for (int f = 0; f < L->F; f++) {
        const fplan *fp = &L->fp[f];
        if (fp->kind != FK_BUCKET) continue;
        const span *s = colspan(P, fp->col);
        float v = NAN;
        if (!is_na(L, s)) {
            if ((rc = num_span(L, P, s, "column", sc->cat[f].name, &x)) != ROW_OK) return rc;
            if (rf_num_to_float_(x, &v))
                return row_bad(L, P, s->start, "value out of float range in column '%s'", sc->cat[f].name);
        }
        if (L->fitting) memcpy(&crow[f], &v, sizeof v);
        else crow[f] = rf_bucket_id_(fp->bounds, fp->nb, v);
    }
    /* integer-id fields: validate before any vocabulary is touched */
    for (int f = 0; f < L->F; f++) {
        const fplan *fp = &L->fp[f];
        if (fp->kind != FK_IDS) continue;
        const span *sp = colspan(P, fp->col);
        int bad = 0;
        if (!fp->multi) {
            crow[f] = rf_encode_id_(fp->size, sp->p, sp->esc == JOIN_MISSING ? 0 : sp->len, &bad);
        } else {
            for (const char *a = sp->p, *e = sp->p + sp->len; a < e && !bad;) {
                const char *q = memchr(a, fp->sep, (size_t)(e - a));
                if (!q) q = e;
                if (q > a) rf_encode_id_(fp->size, a, (size_t)(q - a), &bad);
                a = q + 1;
            }
        }
        if (bad)
            return row_bad(L, P, sp->start, "expected integer ids in column '%s', found '%.*s'", sc->cat[f].name,
                           (int)(sp->len > SHOW_MAX ? SHOW_MAX : sp->len), sp->p);
    }
    /* categorical columns: hash the plain single-valued vocabulary ones first and prefetch their
     * table slots, so that the cache misses of the lookups overlap */
    int oom = 0;
    uint64_t hs[RF_MAX_FIELDS], done = 0;
    for (int f = 0; f < L->F; f++) {
        const fplan *fp = &L->fp[f];
        const span *sp = colspan(P, fp->col);
        if (fp->kind == FK_VOCAB && !fp->multi && sp->esc != 1 && sp->esc != JOIN_MISSING && sp->len && !L->latin1) {
            /* an integer id: direct table (parallel fitting: the global vocabulary, read-only
             * while the pieces are parsed, knows most keys; the piece's own only new ones) */
            uint32_t id;
            if (L->fitting && !L->direct) {
                if (rf_vocab_small_(fp->vocab, sp->p, sp->len, 0, &id) && id) {
                    crow[f] = id;
                    done |= (uint64_t)1 << f;
                    continue;
                }
                if (rf_vocab_small_(P->voc[f], sp->p, sp->len, 1, &id)) {
                    crow[f] = local_id(P, f, id, &oom);
                    done |= (uint64_t)1 << f;
                    continue;
                }
            } else if (rf_vocab_small_(fp->vocab, sp->p, sp->len, L->fitting, &id)) {
                if (L->fitting && !id) oom = 1;
                crow[f] = id ? id : fp->oov;
                done |= (uint64_t)1 << f;
                continue;
            }
            hs[f] = rf_vocab_hash_(fp->vocab, sp->p, sp->len); /* (the global one is looked at first) */
        }
    }
    for (int f = 0; f < L->F; f++) {
        const fplan *fp = &L->fp[f];
        if (fp->kind == FK_BUCKET || (fp->kind == FK_IDS && !fp->multi) || (done >> f & 1)) continue;
        const span *sp = colspan(P, fp->col);
        if (fp->kind == FK_VOCAB && !fp->multi && sp->esc != 1 && sp->esc != JOIN_MISSING && !L->latin1) {
            crow[f] = sp->len ? encode_vocab(L, P, f, sp->p, sp->len, hs[f], &oom) : 0;
            continue;
        }
        size_t n;
        const char *s = value_text(L, P, sp, &n);
        if (!s) return row_oom(L, P);
        if (!fp->multi) {
            crow[f] = encode_value(L, P, f, s, n, &oom);
            continue;
        }
        crow[f] = 0;
        const char *e = s + n;
        while (s < e) {
            const char *q = memchr(s, fp->sep, (size_t)(e - s));
            if (!q) q = e;
            if (q > s && push_mv(c, f, encode_value(L, P, f, s, (size_t)(q - s), &oom))) return row_oom(L, P);
            s = q + 1;
        }
        c->mv_off[f][r + 1] = c->mv_len[f];
    }
    if (oom) return row_oom(L, P);
    c->n++;
    return ROW_OK;
}

/* Forget a piece's local vocabularies (after a parse from a wrong start: its keys may not
 * be the file's, nor in the file's order). */
void rf_piece_reset_vocab_(piece *P)
{
    for (int f = 0; f < RF_MAX_FIELDS; f++) {
        rf_vocab_free(P->voc[f]);
        P->voc[f] = NULL;
        P->mapped[f] = 0;
    }
}

/* Parse the rows of piece P starting at P->start, up to the first row starting at or after
 * P->hint. */
void rf_parse_piece_(const loader *L, piece *P)
{
    const char *p = P->start;
    P->lines = 0;
    P->more = 0;
    P->failed = 0;
    P->bad = P->filtered = 0;
    P->nshow = 0;
    P->c.n = 0;
    P->local = 0;
    for (int f = 0; f < L->F; f++) {
        P->c.mv_len[f] = 0;
        if (L->fitting && !L->direct && L->fp[f].kind == FK_VOCAB && !P->voc[f] &&
            !(P->voc[f] = rf_vocab_create())) {
            row_oom(L, P);
            P->end = p;
            return;
        }
    }
    while (p < P->hint) {
        P->row = p;
        P->row_line = P->lines;
        int tk = rf_tokenize_row_(&L->tx, p, &P->t);
        if (tk == TOK_MORE) {
            P->more = 1;
            break;
        }
        if (tk == TOK_EOF) break;
        if (tk == TOK_NOMEM) {
            row_oom(L, P);
            break;
        }
        if (tk == TOK_UNTERM) {
            long line, col;
            rf_locate_(P, P->t.unterm, &line, &col);
            rf_error_at(&P->err, RF_EDATA, L->path, line, col, "unterminated quoted field");
            P->failed = 1;
            break;
        }
        const span *f0 = &P->t.f[0];
        int blank = P->t.n == 1 && f0->len == 0 && f0->start == f0->p;
        if (!blank && process_row(L, P) == ROW_FAIL) break;
        p = P->t.next;
        P->lines += P->t.lines;
    }
    P->end = p;
}

void rf_piece_free_(piece *P)
{
    rf_cols_free_(&P->c);
    for (int f = 0; f < RF_MAX_FIELDS; f++) {
        rf_vocab_free(P->voc[f]);
        free(P->map[f]);
    }
    free(P->t.f);
    free(P->scratch);
    free(P->conv);
}
