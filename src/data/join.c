/* join.c - side tables joined to every row of the main file: read whole, their fields
 * converted (unescaped, ISO-8859-1 -> UTF-8) into one text, indexed by their key column. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "core/bigmem.h"
#include "data/loader.h"


void rf_side_free_(side *s)
{
    free(s->names);
    free(s->text);
    free(s->off);
    free(s->slots);
}


long rf_side_find_(const side *s, const char *k, size_t n)
{
    uint64_t h = XXH3_64bits(k, n);
    for (size_t i = (size_t)h & s->mask;; i = (i + 1) & s->mask) {
        uint32_t r = s->slots[i];
        if (!r) return -1;
        uint32_t l;
        const char *t = side_field(s, r - 1, s->key_col, &l);
        if (l == n && memcmp(t, k, n) == 0) return (long)r - 1;
    }
}

/* ISO-8859-1 -> UTF-8 of s[0..n) into *buf (grown); returns the length. -1 on OOM. */
long rf_latin1_to_utf8_(const char *s, size_t n, char **buf, size_t *cap)
{
    if (*cap < 2 * n + 1) {
        size_t nc = 2 * n + 64;
        char *nb = realloc(*buf, nc);
        if (!nb) return -1;
        *buf = nb;
        *cap = nc;
    }
    char *o = *buf;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x80) *o++ = (char)c;
        else {
            *o++ = (char)(0xC0 | (c >> 6));
            *o++ = (char)(0x80 | (c & 0x3F));
        }
    }
    return (long)(o - *buf);
}

int rf_has_high_(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] >= 0x80) return 1;
    return 0;
}

/* Read a side table completely. */
rf_status rf_load_side_(const rf_join_spec *js, side *s, int tokenizer, rf_error *err)
{
    memset(s, 0, sizeof *s);
    snprintf(s->path, sizeof s->path, "%s", js->path);
    const char *path = js->path;
    textbuf b = {0};
    tokens t = {0};
    unsigned char cls[256];
    tokctx x;
    char dstr[RF_DELIM_MAX];
    snprintf(dstr, sizeof dstr, "%s", js->delim[0] ? js->delim : ",");
    rf_tokctx_init_(&x, cls, dstr, 1, tokenizer);
    char *conv = NULL, *scr = NULL;
    size_t conv_cap = 0, scr_cap = 0;
    rf_status st = rf_in_open_(&b.in, path, err);
    if (st) return st;
    b.cap = (size_t)1 << 20;
    b.buf = rf_big_realloc_(NULL, b.cap + BUF_PAD);
    if (!b.buf) {
        rf_in_close_(&b.in);
        return rf_errorf(err, RF_ENOMEM, "out of memory");
    }
    b.line = 1;
    int have_header = js->no_header;
    if (js->no_header) {
        s->ncols = js->ncols;
        s->names = calloc((size_t)s->ncols, sizeof *s->names);
        if (!s->names) {
            st = rf_errorf(err, RF_ENOMEM, "out of memory");
            goto done;
        }
        for (int c = 0; c < s->ncols; c++) memcpy(s->names[c], js->cols[c], RF_NAME_MAX);
    }
    if ((st = rf_tb_fill_(&b, path, err))) goto done;
    if (b.len >= 3 && memcmp(b.buf, "\xEF\xBB\xBF", 3) == 0) b.pos = 3;
    for (;;) {
        tokctx_set(&x, &b);
        int tk = rf_tokenize_row_(&x, b.buf + b.pos, &t);
        if (tk == TOK_MORE) {
            if ((st = rf_tb_fill_(&b, path, err))) goto done;
            continue;
        }
        if (tk == TOK_EOF) break;
        if (tk == TOK_NOMEM) {
            st = rf_errorf(err, RF_ENOMEM, "out of memory");
            goto done;
        }
        if (tk == TOK_UNTERM) {
            st = rf_error_at(err, RF_EDATA, path, b.line, 0, "unterminated quoted field");
            goto done;
        }
        const span *f0 = &t.f[0];
        int blank = t.n == 1 && f0->len == 0 && f0->start == f0->p;
        if (!blank) {
            if (t.bad) {
                st = rf_error_at(err, RF_EDATA, path, b.line, (long)(t.bad - (b.buf + b.pos)) + 1,
                                 "unexpected character after closing quote");
                goto done;
            }
            if (!have_header) {
                s->ncols = t.n;
                s->names = calloc((size_t)t.n, sizeof *s->names);
                if (!s->names) {
                    st = rf_errorf(err, RF_ENOMEM, "out of memory");
                    goto done;
                }
                for (int c = 0; c < t.n; c++) {
                    size_t n = t.f[c].len < RF_NAME_MAX ? t.f[c].len : RF_NAME_MAX - 1;
                    memcpy(s->names[c], t.f[c].p, n); /* header names: no "" escapes expected */
                }
                have_header = 1;
            } else {
                if (t.n != s->ncols) {
                    st = rf_error_at(err, RF_EDATA, path, b.line, 1, "expected %d fields, found %d", s->ncols, t.n);
                    goto done;
                }
                if (s->rows == s->rows_cap) {
                    size_t nc = s->rows_cap ? 2 * s->rows_cap : 1024;
                    size_t *no = realloc(s->off, (nc * (size_t)s->ncols + 1) * sizeof *no);
                    if (!no) {
                        st = rf_errorf(err, RF_ENOMEM, "out of memory");
                        goto done;
                    }
                    s->off = no;
                    s->rows_cap = nc;
                }
                for (int c = 0; c < t.n; c++) {
                    const span *sp = &t.f[c];
                    const char *v = sp->p;
                    size_t n = sp->len;
                    if (sp->esc) {
                        if (scr_cap < n + 1) {
                            char *ns = realloc(scr, n + 64);
                            if (!ns) {
                                st = rf_errorf(err, RF_ENOMEM, "out of memory");
                                goto done;
                            }
                            scr = ns;
                            scr_cap = n + 64;
                        }
                        size_t o = 0;
                        for (size_t i = 0; i < n; i++) {
                            scr[o++] = v[i];
                            if (v[i] == '"') i++;
                        }
                        v = scr;
                        n = o;
                    }
                    if (js->latin1 && rf_has_high_(v, n)) {
                        long m = rf_latin1_to_utf8_(v, n, &conv, &conv_cap);
                        if (m < 0) {
                            st = rf_errorf(err, RF_ENOMEM, "out of memory");
                            goto done;
                        }
                        v = conv;
                        n = (size_t)m;
                    }
                    if (s->text_len + n + 1 > s->text_cap) {
                        size_t nc = s->text_cap ? 2 * s->text_cap : 65536;
                        while (nc < s->text_len + n + 1) nc *= 2;
                        char *nt = realloc(s->text, nc + TEXT_PAD);
                        if (!nt) {
                            st = rf_errorf(err, RF_ENOMEM, "out of memory");
                            goto done;
                        }
                        memset(nt + s->text_len, 0, nc + TEXT_PAD - s->text_len);
                        s->text = nt;
                        s->text_cap = nc;
                    }
                    s->off[s->rows * (size_t)s->ncols + (size_t)c] = s->text_len;
                    memcpy(s->text + s->text_len, v, n);
                    s->text_len += n;
                }
                s->rows++;
                s->off[s->rows * (size_t)s->ncols] = s->text_len;
            }
        }
        b.pos = (size_t)(t.next - b.buf);
        b.line += t.lines;
    }
    if (!have_header || !s->ncols) {
        st = rf_error_at(err, RF_EDATA, path, 1, 1, "empty file");
        goto done;
    }
    if (!s->text && !(s->text = calloc(1, 1 + TEXT_PAD))) {
        st = rf_errorf(err, RF_ENOMEM, "out of memory");
        goto done;
    }
    if (!s->off && !(s->off = calloc(1, sizeof *s->off))) {
        st = rf_errorf(err, RF_ENOMEM, "out of memory");
        goto done;
    }
    s->key_col = -1;
    const char *key = js->key[0] ? js->key : js->on;
    for (int c = 0; c < s->ncols; c++)
        if (!strcmp(s->names[c], key)) s->key_col = c;
    if (s->key_col < 0) {
        st = rf_error_at(err, RF_EDATA, path, 1, 1, "join key column '%s' not found", key);
        goto done;
    }
    if (s->rows >= UINT32_MAX / 2) {
        st = rf_error_at(err, RF_EDATA, path, 0, 0, "too many rows for a joined table");
        goto done;
    }
    size_t size = 64;
    while (size < 2 * s->rows + 2) size *= 2;
    s->slots = calloc(size, sizeof *s->slots);
    if (!s->slots) {
        st = rf_errorf(err, RF_ENOMEM, "out of memory");
        goto done;
    }
    s->mask = size - 1;
    for (size_t r = 0; r < s->rows; r++) {
        uint32_t l;
        const char *k = side_field(s, r, s->key_col, &l);
        if (rf_side_find_(s, k, l) >= 0) continue; /* the first row of a key wins */
        uint64_t h = XXH3_64bits(k, l);
        size_t i = (size_t)h & s->mask;
        while (s->slots[i]) i = (i + 1) & s->mask;
        s->slots[i] = (uint32_t)r + 1;
    }
done:
    rf_in_close_(&b.in);
    free(b.buf);
    free(t.f);
    free(conv);
    free(scr);
    if (st) rf_side_free_(s);
    return st;
}
