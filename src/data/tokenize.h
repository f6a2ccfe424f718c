/* tokenize.h - rows of delimited text into field spans (tokenize.c). Internal to src/data/. */
#ifndef RESFLOW_DATA_TOKENIZE_H
#define RESFLOW_DATA_TOKENIZE_H

#include <stddef.h>
#include <stdint.h>

/* ---- tokenizer --------------------------------------------------------------------------- */

typedef struct {
    const char *p;     /* content start */
    const char *start; /* where the field starts (opening quote for quoted fields) */
    uint32_t len;
    uint32_t esc;      /* 1: contains "" escapes; JOIN_MISSING, SIDE_VALUE: joined values */
} span;

#define JOIN_MISSING 2u /* esc: value of a side-table row that does not exist (empty) */
#define SIDE_VALUE 3u   /* esc: value taken from a side table (already unescaped/converted) */

typedef struct {
    span *f;
    int n, cap;
    const char *next;   /* first byte after the row */
    long lines;         /* physical lines the row spans (newlines consumed) */
    const char *bad;    /* first char after a closing quote that is not delim/EOL, or NULL */
    const char *unterm; /* opening quote of an unterminated quoted field */
} tokens;

enum { TOK_ROW, TOK_MORE, TOK_EOF, TOK_UNTERM, TOK_NOMEM };

/* What the tokenizer needs to know about the text and the format. */
typedef struct {
    const char *buf; /* text [buf, end), *end == '\n' (sentinel) */
    const char *end;
    int eof;
    char d0;         /* first delimiter byte */
    int dl;          /* delimiter length */
    const char *dstr;
    int quote;       /* 1: RFC 4180 quoting */
    const unsigned char *cls; /* 1 for d0, '\n', '\r' */
    int simd;        /* block scanner of rf_tokenize_row_: 2 AVX2, 1 SSE2, 0 none (byte loop) */
    const char *pad_end; /* 64-byte loads may start at or before this (end, for the read buffer) */
} tokctx;

/* Tokenize the row at p: the block tokenizer when it applies, else the byte-wise RFC 4180 one. */
int rf_tokenize_row_(const tokctx *x, const char *p, tokens *t);
/* Number of '"' in [p, p + n). */
size_t rf_count_quotes_(const char *p, size_t n);
/* tokenizer: rf_tokenizer (rf_load_opts.tokenizer) */
void rf_tokctx_init_(tokctx *x, unsigned char *cls, const char *dstr, int quote, int tokenizer);

#endif
