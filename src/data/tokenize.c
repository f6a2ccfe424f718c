/* tokenize.c - rows of delimited text into field spans, in place: RFC 4180 quotes with ""
 * escapes unless quoting is off, LF or CRLF line ends, a delimiter of 1..7 bytes. Rows without
 * quotes are split with 64-byte bitmaps of their delimiters and line ends (AVX2 when the CPU
 * has it, else SSE2), other rows field by field (16-byte SSE2 scans between quotes). */
#include <stdlib.h>
#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "data/tokenize.h"
#include "resflow/schema.h" /* rf_tokenizer */


/* First byte at or after q that is d0, '\n' or '\r' (the sentinel bounds it). */
static inline const char *next_special(const tokctx *x, const char *q)
{
#if defined(__SSE2__)
    const __m128i vd = _mm_set1_epi8(x->d0), vn = _mm_set1_epi8('\n'), vr = _mm_set1_epi8('\r');
    for (;;) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)q);
        __m128i m = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, vd), _mm_cmpeq_epi8(v, vn)),
                                 _mm_cmpeq_epi8(v, vr));
        unsigned bits = (unsigned)_mm_movemask_epi8(m);
        if (bits) return q + __builtin_ctz(bits);
        q += 16;
    }
#else
    while (!x->cls[(unsigned char)*q]) q++;
    return q;
#endif
}

/* Is there a whole delimiter at q (*q == d0)? -1: undecided (needs more data). */
static inline int at_delim(const tokctx *x, const char *q)
{
    if (x->dl == 1) return 1;
    if (q + x->dl > x->end) {
        if (!x->eof && memcmp(q, x->dstr, (size_t)(x->end - q)) == 0) return -1;
        return 0;
    }
    return memcmp(q, x->dstr, (size_t)x->dl) == 0;
}

/* Scan an unquoted stretch from q: stops at a delimiter, '\n', "\r\n" or the end of data.
 * Returns NULL if more data is needed to decide. */
static const char *scan_plain(const tokctx *x, const char *q)
{
    const char *end = x->end;
    for (;;) {
        q = next_special(x, q); /* the sentinel stops this */
        if (q < end && *q == '\r') {
            if (q + 1 == end) {
                if (!x->eof) return NULL;
                return q + 1; /* trailing lone CR at EOF: data */
            }
            if (q[1] == '\n') return q;
            q++; /* lone CR: part of the field */
            continue;
        }
        if (q < end && *q == x->d0 && *q != '\n' && *q != '\r') {
            int d = at_delim(x, q);
            if (d < 0) return NULL;
            if (!d) {
                q++;
                continue;
            }
        }
        return q;
    }
}

/* Tokenize the row at p. */
static int tokenize(const tokctx *x, const char *p, tokens *t)
{
    const char *end = x->end;
    if (p == end) return x->eof ? TOK_EOF : TOK_MORE;
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
        if (x->quote && p < end && *p == '"') {
            const char *q = p + 1;
            for (;;) {
                const char *c = memchr(q, '"', (size_t)(end - q));
                if (!c) {
                    if (!x->eof) return TOK_MORE;
                    t->unterm = p;
                    return TOK_UNTERM;
                }
                if (c + 1 == end && !x->eof) return TOK_MORE;
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
            const char *q2 = scan_plain(x, p);
            if (!q2) return TOK_MORE;
            if (q2 != p && !t->bad) t->bad = p;
            p = q2;
        } else {
            const char *q = scan_plain(x, p);
            if (!q) return TOK_MORE;
            s->p = p;
            s->len = (uint32_t)(q - p);
            p = q;
        }
        if (p >= end) {
            if (!x->eof) return TOK_MORE;
            t->next = end;
            return TOK_ROW;
        }
        if (*p == x->d0 && *p != '\n' && *p != '\r') { /* scan_plain stopped at a delimiter */
            p += x->dl;
            continue;
        }
        if (*p == '\r') p++; /* scan_plain guarantees "\r\n" here */
        p++;                 /* '\n' */
        t->lines++;
        t->next = p;
        return TOK_ROW;
    }
}

/* Number of '"' in [p, p + n). */
size_t rf_count_quotes_(const char *p, size_t n)
{
    size_t c = 0, i = 0;
#if defined(__SSE2__)
    const __m128i vq = _mm_set1_epi8('"');
    for (; i + 16 <= n; i += 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(p + i));
        c += (size_t)__builtin_popcount((unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, vq)));
    }
#endif
    for (; i < n; i++) c += p[i] == '"';
    return c;
}

/* ---- block tokenizer ----------------------------------------------------------------------
 * The common row - a one-byte delimiter, no quotes, LF or CRLF line end - is split with a bitmap
 * of its structural bytes (delimiter, '\n', '\r', '"') computed 64 bytes at a time with AVX2
 * (chosen at run time with __builtin_cpu_supports) or SSE2; each set bit is a field end. Any
 * quote, a lone CR, a row with more fields than the span array holds, or a buffer without the
 * 64-byte padding goes to tokenize(), which handles everything (RFC 4180); both give the same
 * spans for the rows the block tokenizer accepts. */

enum { TOK_SLOW = -1 };

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HAVE_BLOCK_TOK 1
/* The block scanners: for the 64 bytes at q, the delimiter bits (*md) and the bits of the
 * bytes that end or complicate a row: '\n', '\r', '"' (*ms). */
__attribute__((target("avx2"), always_inline)) static inline void mask64_avx2(const char *q, char d0, uint64_t *md,
                                                                              uint64_t *ms)
{
    const __m256i vd = _mm256_set1_epi8(d0), vn = _mm256_set1_epi8('\n'), vr = _mm256_set1_epi8('\r'),
                  vq = _mm256_set1_epi8('"');
    __m256i a = _mm256_loadu_si256((const __m256i *)(const void *)q);
    __m256i b = _mm256_loadu_si256((const __m256i *)(const void *)(q + 32));
    __m256i sa = _mm256_or_si256(_mm256_cmpeq_epi8(a, vn), _mm256_or_si256(_mm256_cmpeq_epi8(a, vr), _mm256_cmpeq_epi8(a, vq)));
    __m256i sb = _mm256_or_si256(_mm256_cmpeq_epi8(b, vn), _mm256_or_si256(_mm256_cmpeq_epi8(b, vr), _mm256_cmpeq_epi8(b, vq)));
    *md = (uint64_t)(uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(a, vd)) |
          (uint64_t)(uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(b, vd)) << 32;
    *ms = (uint64_t)(uint32_t)_mm256_movemask_epi8(sa) | (uint64_t)(uint32_t)_mm256_movemask_epi8(sb) << 32;
}

static inline void mask64_sse2(const char *q, char d0, uint64_t *md, uint64_t *ms)
{
    const __m128i vd = _mm_set1_epi8(d0), vn = _mm_set1_epi8('\n'), vr = _mm_set1_epi8('\r'), vq = _mm_set1_epi8('"');
    uint64_t d = 0, m = 0;
    for (int i = 0; i < 4; i++) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(q + 16 * i));
        __m128i c = _mm_or_si128(_mm_cmpeq_epi8(v, vn), _mm_or_si128(_mm_cmpeq_epi8(v, vr), _mm_cmpeq_epi8(v, vq)));
        d |= (uint64_t)(uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(v, vd)) << (16 * i);
        m |= (uint64_t)(uint32_t)_mm_movemask_epi8(c) << (16 * i);
    }
    *md = d;
    *ms = m;
}

/* Room for at least want spans. */
static int tok_reserve(tokens *t, int want)
{
    if (want <= t->cap) return 0;
    int nc = t->cap ? 2 * t->cap : 64;
    while (nc < want) nc *= 2;
    span *nf = realloc(t->f, (size_t)nc * sizeof *nf);
    if (!nf) return -1;
    t->f = nf;
    t->cap = nc;
    return 0;
}

/* One span per bit of ends (field ends at q + bit; the first field starts at *fs); *fs moves
 * past the last. Up to TOK_UNROLL fields are written unconditionally (spans past the last one
 * are scratch: the caller reserved room), so the loop exit does not depend on the data. */
#define TOK_UNROLL 12
static inline span *tok_emit(span *f, const char *q, uint64_t ends, const char **fs)
{
    int cnt = __builtin_popcountll(ends);
    const char *s = *fs;
    if (cnt <= TOK_UNROLL) {
        uint64_t e = ends;
        for (int k = 0; k < TOK_UNROLL; k++) {
            const char *c = q + __builtin_ctzll(e | (uint64_t)1 << 63); /* e == 0: scratch */
            f[k].p = f[k].start = s;
            f[k].len = (uint32_t)(c - s);
            f[k].esc = 0;
            s = c + 1;
            e &= e - 1;
        }
    } else {
        span *sp = f;
        for (uint64_t e = ends; e; e &= e - 1, sp++) {
            const char *c = q + __builtin_ctzll(e);
            sp->p = sp->start = s;
            sp->len = (uint32_t)(c - s);
            sp->esc = 0;
            s = c + 1;
        }
    }
    if (ends) *fs = q + 64 - __builtin_clzll(ends);
    return f + cnt;
}

/* The row at p (p < x->end) as spans, or TOK_SLOW: one function per block scanner (a macro, so
 * that the AVX2 one is compiled for AVX2 as a whole, whatever the build's -march). In a block,
 * the delimiters before the first special byte are all field ends. */
#define TOK_BLOCK_FN(NAME, ATTR, MASK)                                                             \
    ATTR static int NAME(const tokctx *x, const char *p, tokens *t)                                \
    {                                                                                              \
        const char *end = x->end, *fs = p;                                                         \
        const char d0 = x->d0;                                                                     \
        int n = 0;                                                                                 \
        for (const char *q = p;; q += 64) {                                                        \
            if (q > x->pad_end) return TOK_SLOW;                                                   \
            uint64_t md, ms;                                                                       \
            MASK(q, d0, &md, &ms);                                                                 \
            uint64_t stop = ms & (0 - ms); /* the first special byte, if any */                    \
            uint64_t ends = stop ? md & (stop - 1) : md;                                           \
            if (tok_reserve(t, n + 65 + TOK_UNROLL)) return TOK_NOMEM;                             \
            n = (int)(tok_emit(t->f + n, q, ends, &fs) - t->f);                                    \
            if (!stop) continue;                                                                   \
            const char *c = q + __builtin_ctzll(stop);                                             \
            span *s = &t->f[n++];                                                                  \
            s->p = s->start = fs;                                                                  \
            s->len = (uint32_t)(c - fs);                                                           \
            s->esc = 0;                                                                            \
            t->n = n;                                                                              \
            t->bad = t->unterm = NULL;                                                             \
            if (*c == '\n') {                                                                      \
                if (c == end) { /* the sentinel */                                                 \
                    if (!x->eof) return TOK_MORE;                                                  \
                    t->next = end;                                                                 \
                    t->lines = 0;                                                                  \
                } else {                                                                           \
                    t->next = c + 1;                                                               \
                    t->lines = 1;                                                                  \
                }                                                                                  \
                return TOK_ROW;                                                                    \
            }                                                                                      \
            if (*c == '\r' && c + 1 < end && c[1] == '\n') {                                       \
                t->next = c + 2;                                                                   \
                t->lines = 1;                                                                      \
                return TOK_ROW;                                                                    \
            }                                                                                      \
            return TOK_SLOW; /* a quote or a lone CR */                                            \
        }                                                                                          \
    }

TOK_BLOCK_FN(tok_block_avx2, __attribute__((target("avx2"))), mask64_avx2)
TOK_BLOCK_FN(tok_block_sse2, , mask64_sse2)
#endif

/* Tokenize the row at p: the block tokenizer when it applies, else tokenize(). */
int rf_tokenize_row_(const tokctx *x, const char *p, tokens *t)
{
#ifdef HAVE_BLOCK_TOK
    if (x->simd && x->dl == 1 && p < x->end && p <= x->pad_end) {
        int r = x->simd == 2 ? tok_block_avx2(x, p, t) : tok_block_sse2(x, p, t);
        if (r != TOK_SLOW) return r;
    }
#endif
    return tokenize(x, p, t);
}

/* The block scanner this CPU supports (once per load; force = RF_TOKENIZER_SSE2 or
 * RF_TOKENIZER_SCALAR (rf_load_opts.tokenizer) forces a smaller one: tests cover every path on
 * any machine). */
static int simd_level(int force)
{
    if (force == RF_TOKENIZER_SCALAR) return 0;
#ifdef HAVE_BLOCK_TOK
    if (force == RF_TOKENIZER_SSE2) return 1;
    return __builtin_cpu_supports("avx2") ? 2 : 1;
#else
    return 0;
#endif
}

void rf_tokctx_init_(tokctx *x, unsigned char *cls, const char *dstr, int quote, int tokenizer)
{
    memset(cls, 0, 256);
    x->dstr = dstr;
    x->dl = (int)strlen(dstr);
    x->d0 = dstr[0];
    x->quote = quote;
    cls[(unsigned char)x->d0] = 1;
    cls['\n'] = 1;
    cls['\r'] = 1;
    x->cls = cls;
    x->simd = simd_level(tokenizer);
    x->pad_end = NULL;
}
