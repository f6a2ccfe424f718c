/* sbuf.h - a growing text buffer (internal; not installed): the configuration dump, the
 * experiment tables, the SVG heatmaps and the CSV writer build their text in it. Appends never
 * fail: the first allocation failure sets oom and later appends are dropped, so the caller
 * checks oom once at the end. p is NUL-terminated whenever it is not NULL. */
#ifndef RESFLOW_SBUF_H
#define RESFLOW_SBUF_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resflow/resflow.h" /* RF_PRINTF */

typedef struct {
    char *p;
    size_t len, cap;
    int oom;
} sbuf;

/* Room for extra more bytes and the NUL; 0, or -1 (oom set). */
static inline int sb_reserve(sbuf *b, size_t extra)
{
    if (b->oom) return -1;
    if (b->len + extra + 1 <= b->cap) return 0;
    size_t nc = b->cap ? 2 * b->cap : 256;
    while (nc < b->len + extra + 1) nc *= 2;
    char *q = realloc(b->p, nc);
    if (!q) {
        b->oom = 1;
        return -1;
    }
    b->p = q;
    b->cap = nc;
    return 0;
}

static inline void sb_add(sbuf *b, const char *s, size_t n)
{
    if (sb_reserve(b, n)) return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static inline void sb_puts(sbuf *b, const char *s) { sb_add(b, s, strlen(s)); }

static inline void sb_char(sbuf *b, char c) { sb_add(b, &c, 1); }

/* Formatted straight into the buffer, growing it as needed (never truncated). */
static inline void sb_printf(sbuf *b, const char *fmt, ...) RF_PRINTF(2, 3);
static inline void sb_printf(sbuf *b, const char *fmt, ...)
{
    for (;;) {
        if (sb_reserve(b, 0)) return;
        va_list ap;
        va_start(ap, fmt);
        int w = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (w < 0) {
            b->p[b->len] = '\0';
            b->oom = 1;
            return;
        }
        if (b->len + (size_t)w < b->cap) {
            b->len += (size_t)w;
            return;
        }
        b->p[b->len] = '\0'; /* drop the truncated attempt */
        if (sb_reserve(b, (size_t)w)) return;
    }
}

#endif
