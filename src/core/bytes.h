/* bytes.h - little-endian encoding shared by the binary formats (model files, the dataset
 * cache, the PREP section of fitted encoders): a growable write buffer and a bounds-checked
 * read cursor, so no input can make a parser read outside its buffer. Internal, not installed. */
#ifndef RESFLOW_BYTES_H
#define RESFLOW_BYTES_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resflow/dataset.h" /* RF_NAME_MAX */

static inline void wr32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static inline void wr64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static inline uint32_t rd32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t rd64(const unsigned char *p) { return (uint64_t)rd32(p + 4) << 32 | rd32(p); }

/* The marker every binary format stores, read back as this value on a little-endian host. */
#define RF_ENDIAN_MARK 0x01020304u
static inline int rf_host_le(void)
{
    const uint32_t x = 1;
    unsigned char c;
    memcpy(&c, &x, 1);
    return c == 1;
}
/* n floats, little-endian at src, into dst (host order); and back. */
static inline void rf_get_f32s(float *dst, const unsigned char *src, size_t n)
{
    if (rf_host_le()) {
        if (n) memcpy(dst, src, n * sizeof(float));
        return;
    }
    for (size_t i = 0; i < n; i++) {
        uint32_t u = rd32(src + 4 * i);
        memcpy(dst + i, &u, 4);
    }
}
static inline void rf_put_f32s(unsigned char *dst, const float *src, size_t n)
{
    if (rf_host_le()) {
        if (n) memcpy(dst, src, n * sizeof(float));
        return;
    }
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, src + i, 4);
        wr32(dst + 4 * i, u);
    }
}

/* Write buffer: appends never fail; the first allocation failure sets oom and later appends
 * are dropped, so the caller checks oom once at the end. */
typedef struct {
    unsigned char *p;
    size_t len, cap;
    int oom;
} bbuf;

static inline void bb_put(bbuf *b, const void *s, size_t n)
{
    if (b->oom || !n) return;
    if (b->len + n > b->cap) {
        size_t nc = b->cap ? 2 * b->cap : 256;
        while (nc < b->len + n) nc *= 2;
        unsigned char *q = realloc(b->p, nc);
        if (!q) {
            b->oom = 1;
            return;
        }
        b->p = q;
        b->cap = nc;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
}
static inline void bb_u8(bbuf *b, unsigned v)
{
    unsigned char c = (unsigned char)v;
    bb_put(b, &c, 1);
}
static inline void bb_u32(bbuf *b, uint32_t v)
{
    unsigned char c[4];
    wr32(c, v);
    bb_put(b, c, 4);
}
static inline void bb_u64(bbuf *b, uint64_t v)
{
    unsigned char c[8];
    wr64(c, v);
    bb_put(b, c, 8);
}
static inline void bb_f32(bbuf *b, float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    bb_u32(b, u);
}
/* A fixed RF_NAME_MAX record, NUL-padded. */
static inline void bb_name(bbuf *b, const char *s)
{
    char rec[RF_NAME_MAX];
    memset(rec, 0, sizeof rec);
    snprintf(rec, sizeof rec, "%s", s);
    bb_put(b, rec, sizeof rec);
}
/* u32 length, then the bytes. */
static inline void bb_bytes(bbuf *b, const void *p, uint32_t n)
{
    bb_u32(b, n);
    bb_put(b, p, n);
}

/* Read cursor over [p, p + n); every read returns -1 (and reads nothing) past the end. */
typedef struct {
    const unsigned char *p;
    size_t n, off;
} rcur;

static inline int rc_take(rcur *c, size_t n, const unsigned char **o)
{
    if (c->n - c->off < n) return -1;
    *o = c->p + c->off;
    c->off += n;
    return 0;
}
static inline int rc_u8(rcur *c, unsigned *v)
{
    const unsigned char *q;
    if (rc_take(c, 1, &q)) return -1;
    *v = q[0];
    return 0;
}
static inline int rc_u32(rcur *c, uint32_t *v)
{
    const unsigned char *q;
    if (rc_take(c, 4, &q)) return -1;
    *v = rd32(q);
    return 0;
}
static inline int rc_u64(rcur *c, uint64_t *v)
{
    const unsigned char *q;
    if (rc_take(c, 8, &q)) return -1;
    *v = rd64(q);
    return 0;
}
static inline int rc_f32(rcur *c, float *f)
{
    uint32_t u;
    if (rc_u32(c, &u)) return -1;
    memcpy(f, &u, 4);
    return 0;
}
static inline size_t rc_left(const rcur *c) { return c->n - c->off; }

#endif
