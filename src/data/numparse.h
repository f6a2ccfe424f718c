/* numparse.h - exact decimal number parsing for the text loader (internal; not installed).
 *
 * rf_parse_num_(s, n, &d) gives exactly strtod's double for s[0..n) (the "C" locale;
 * no surrounding whitespace), bit for bit, or says why not (RF_NUM_EMPTY, RF_NUM_BAD,
 * RF_NUM_NONFINITE). The common short forms - [+-]digits[.digits][(e|E)[+-]digits] with at
 * most 19 significant digits (leading zeros included) - are parsed inline, then
 *   - Clinger's fast path when the mantissa is at most 2^53 and |exp10| <= 22 (one exact
 *     double multiplication or division), or
 *   - the Eisel-Lemire algorithm (a 64x128-bit product with a table of powers of five, as in
 *     fast_float), falling back to strtod whenever its result could be ambiguous (a possible
 *     tie, an inexact product near a rounding boundary, subnormal or infinite results).
 * Everything else (more digits, hex floats, inf/nan spellings, garbage) goes to
 * rf_parse_double_, which handles long mantissas exactly and ends in strtod on a copy.
 * Nothing past s[n - 1] is ever read.
 *
 * The batch interface (rf_num_batch_init_/add_/finish_, rf_num_batch_f32_) converts the dense
 * fields of a row to floats when 32 bytes are readable at each field (the loader's buffer is
 * padded): plain decimals are parsed 16 or 32 bytes at once with SIMD, without branches on
 * their length, then converted 8 at a time; it reports the fields it left to the caller. */
#ifndef RESFLOW_NUMPARSE_H
#define RESFLOW_NUMPARSE_H

#include <float.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

enum { RF_NUM_OK = 0, RF_NUM_EMPTY, RF_NUM_BAD, RF_NUM_NONFINITE };

/* The general parser (exact; see above). */
int rf_parse_double_(const char *s, size_t n, double *out);
/* Eisel-Lemire: w * 10^q (w != 0) as a double in *out; 0 when the fast algorithm cannot
 * decide (the caller falls back). */
int rf_num_eisel_lemire_(uint64_t w, long q, int neg, double *out);

static const double RF_NUM_P10[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                      1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                      1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};


/* Digits at *pp (up to e) appended to *m; advances *pp. (Byte by byte: for the short runs of
 * typical fields this beats converting 8 digits at a time with SWAR, whose longer dependency
 * chain delays the resolution of the unpredictable loop exit; measured on AliExpress-like data.) */
static inline void rf_num_digits_(const char **pp, const char *e, uint64_t *m)
{
    const char *p = *pp;
    for (unsigned d; p < e && (d = (unsigned)(*p - '0')) < 10u; p++) *m = *m * 10 + d;
    *pp = p;
}

/* The inline fast path: RF_NUM_OK, or -1 when the general parser must decide. */
static inline int rf_num_fast_(const char *s, size_t n, double *out)
{
    const char *p = s, *e = s + n;
    if (!n) return -1;
    int neg = *p == '-';
    p += *p == '-' || *p == '+';
    uint64_t m = 0;
    const char *ip = p;
    rf_num_digits_(&p, e, &m);
    size_t nd = (size_t)(p - ip), nf = 0;
    if (p < e && *p == '.') {
        const char *fp = ++p;
        rf_num_digits_(&p, e, &m);
        nf = (size_t)(p - fp);
        nd += nf;
    }
    if (nd == 0 || nd > 19) return -1;
    long ex = -(long)nf;
    if (p < e) {
        if ((*p | 0x20) != 'e') return -1;
        p++;
        int eneg = 0;
        if (p < e && (*p == '+' || *p == '-')) eneg = *p++ == '-';
        const char *xp = p;
        long x = 0;
        /* x stops growing at 5 digits (more is refused just below): no overflow on long runs */
        for (unsigned d; p < e && (d = (unsigned)(*p - '0')) < 10u; p++)
            if (x < 100000) x = x * 10 + d;
        if (p != e || p == xp || p - xp > 4) return -1;
        ex += eneg ? -x : x;
    }
    if (m == 0) {
        *out = neg ? -0.0 : 0.0;
        return RF_NUM_OK;
    }
    if (m <= ((uint64_t)1 << 53) && ex >= -22 && ex <= 22) { /* Clinger: one exact operation */
        double d = (double)m;
        d = ex < 0 ? d / RF_NUM_P10[-ex] : d * RF_NUM_P10[ex];
        *out = neg ? -d : d;
        return RF_NUM_OK;
    }
    return rf_num_eisel_lemire_(m, ex, neg, out) ? RF_NUM_OK : -1;
}

/* ---- SIMD: chosen at compile time or at run time -------------------------------------------
 * The SIMD helpers below carry target attributes, so every x86-64 build has them. Which of them
 * run is decided
 *   - at compile time when the build targets SSE4.1 (-march=native, the default build): the
 *     batch functions inline them as they are called, per field (RF_NUM_STATIC);
 *   - at run time otherwise (a baseline x86-64 build: make PORTABLE=1, the sanitizer builds):
 *     rf_num_batch_add_ only records the field, and rf_num_batch_finish_ calls
 *     rf_num_batch_run_ (numparse.c), whose variants are compiled for SSE4.1, AVX-512 F/DQ/VL
 *     and AVX-512 VBMI2, and which picks one with __builtin_cpu_supports on every call: a pure
 *     function of the CPU (libgcc's cpu model), no state of ours, a few loads per batch of up
 *     to 64 fields. A CPU without SSE4.1 leaves every lane to the caller's field-by-field path.
 * All variants give the same floats (the same exact quotient, rounded once).
 * RF_NUM_HAVE_SIMD16: the batch path exists (x86-64); RF_NUM_HAVE_SIMD32: the 17-32 byte path
 * is compiled in unconditionally (AVX-512 VBMI2 at compile time). */
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define RF_NUM_X86 1
#define RF_NUM_HAVE_SIMD16 1
#define RF_NUM_T16 __attribute__((target("sse4.1")))
#define RF_NUM_TCV __attribute__((target("sse4.1,avx2,avx512f,avx512dq,avx512vl")))
#define RF_NUM_T32 __attribute__((target("sse4.1,avx2,avx512f,avx512dq,avx512vl,avx512bw,avx512vbmi,avx512vbmi2")))
#if defined(__SSE4_1__)
#define RF_NUM_STATIC 1
#if defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__AVX512VBMI__) && defined(__AVX512VBMI2__) && \
    defined(__AVX512DQ__)
#define RF_NUM_HAVE_SIMD32 1
#endif
#endif

/* The mantissa, fraction digit count and sign of s[0..n) when it has 1 to 16 bytes, all digits
 * but at most one '.' and an optional leading sign, and 16 bytes are readable at s (bytes past
 * s[n - 1] are loaded but ignored); 0 for anything else. The digits are classified and
 * converted 16 at a time, with no data-dependent branch on the length or the point's position
 * (the branches a byte loop mispredicts on columns of mixed lengths). */
RF_NUM_T16 static inline int rf_num_simd16_parts_(const char *s, size_t n, uint64_t *m, unsigned *nf, int *neg)
{
    if (n - 1 >= 16) return 0;
    const __m128i idx = _mm_setr_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    __m128i v = _mm_loadu_si128((const __m128i *)(const void *)s);
    __m128i d = _mm_sub_epi8(v, _mm_set1_epi8('0'));
    __m128i isdig = _mm_cmpeq_epi8(_mm_min_epu8(d, _mm_set1_epi8(9)), d);
    unsigned valid = (1u << n) - 1;
    unsigned dig = (unsigned)_mm_movemask_epi8(isdig) & valid;
    unsigned dot = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8('.'))) & valid;
    *neg = s[0] == '-';
    unsigned sg = (unsigned)(*neg | (s[0] == '+'));
    if ((dig | dot | sg) != valid || (dot & (dot - 1)) || !dig) return 0;
    /* digits only (sign and point become 0), the integer digits moved one place right over the
     * point, then right-aligned: byte 15 is the last digit, leading bytes are 0 */
    d = _mm_and_si128(d, isdig);
    int dp = dot ? __builtin_ctz(dot) : -1;
    __m128i left = _mm_cmpgt_epi8(_mm_set1_epi8((char)(dp + 1)), idx); /* i <= dp */
    d = _mm_blendv_epi8(d, _mm_slli_si128(d, 1), left);
    static const signed char ralign[32] = {-128, -128, -128, -128, -128, -128, -128, -128, -128, -128, -128,
                                           -128, -128, -128, -128, -128, 0,    1,    2,    3,    4,    5,
                                           6,    7,    8,    9,    10,   11,   12,   13,   14,   15};
    d = _mm_shuffle_epi8(d, _mm_loadu_si128((const __m128i *)(const void *)(ralign + n)));
    __m128i t = _mm_maddubs_epi16(d, _mm_setr_epi8(10, 1, 10, 1, 10, 1, 10, 1, 10, 1, 10, 1, 10, 1, 10, 1));
    t = _mm_madd_epi16(t, _mm_setr_epi16(100, 1, 100, 1, 100, 1, 100, 1));
    t = _mm_packus_epi32(t, t);
    t = _mm_madd_epi16(t, _mm_setr_epi16(10000, 1, 10000, 1, 10000, 1, 10000, 1));
    *m = (uint64_t)(uint32_t)_mm_cvtsi128_si32(t) * 100000000u + (uint32_t)_mm_extract_epi32(t, 1);
    *nf = dot ? (unsigned)(n - 1 - (unsigned)dp) : 0;
    return 1;
}
/* rf_num_simd16_parts_ for 17 to 32 bytes with at most 19 digits (32 bytes readable at s):
 * the digits are compressed together (VBMI2), right-aligned (VBMI) and converted as two
 * groups of 16. */
RF_NUM_T32 static inline int rf_num_simd32_parts_(const char *s, size_t n, uint64_t *m, unsigned *nf, int *neg)
{
    if (n - 17 >= 16) return 0;
    __m256i v = _mm256_loadu_si256((const __m256i *)(const void *)s);
    __m256i d = _mm256_sub_epi8(v, _mm256_set1_epi8('0'));
    uint32_t valid = n == 32 ? ~0u : (1u << n) - 1;
    uint32_t dig = (uint32_t)_mm256_cmple_epu8_mask(d, _mm256_set1_epi8(9)) & valid;
    uint32_t dot = (uint32_t)_mm256_cmpeq_epi8_mask(v, _mm256_set1_epi8('.')) & valid;
    *neg = s[0] == '-';
    uint32_t sg = (uint32_t)(*neg | (s[0] == '+'));
    int nd = __builtin_popcount(dig);
    if ((dig | dot | sg) != valid || (dot & (dot - 1)) || !dig || nd > 19) return 0;
    __m256i c = _mm256_maskz_compress_epi8(dig, d); /* the digits in bytes [0, nd) */
    const __m256i iota = _mm256_setr_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19,
                                          20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31);
    /* byte j (>= 32 - nd) takes digit j - 32 + nd: the last digit in byte 31 */
    c = _mm256_maskz_permutexvar_epi8(~0u << (32 - nd), _mm256_add_epi8(iota, _mm256_set1_epi8((char)nd)), c);
    __m256i t = _mm256_maddubs_epi16(c, _mm256_set1_epi16(0x010A));
    t = _mm256_madd_epi16(t, _mm256_set1_epi32(0x00010064));
    t = _mm256_packus_epi32(t, t);
    t = _mm256_madd_epi16(t, _mm256_set1_epi32(0x00012710));
    __m128i lo = _mm256_castsi256_si128(t), hi = _mm256_extracti128_si256(t, 1);
    uint64_t top = (uint64_t)(uint32_t)_mm_cvtsi128_si32(lo) * 100000000u + (uint32_t)_mm_extract_epi32(lo, 1);
    uint64_t low = (uint64_t)(uint32_t)_mm_cvtsi128_si32(hi) * 100000000u + (uint32_t)_mm_extract_epi32(hi, 1);
    *m = top * 10000000000000000u + low; /* top < 1000: at most 19 digits */
    *nf = dot ? (unsigned)__builtin_popcount(dig >> __builtin_ctz(dot)) : 0;
    return 1;
}
#endif

/* A batch of numbers as floats: out[i] = (float) of strtod's double for s[i][0..n[i]) (cnt <=
 * 64), for the plain decimals (at most one point, no exponent) of 1 to 16 bytes, and with
 * AVX-512 VBMI2 of up to 32 bytes and 19 digits; 32 bytes must be readable at every s[i].
 * Returns the lanes it did not convert (bit i; their out[i] is unspecified): the caller parses
 * those one by one. Parsing a whole row's numbers first and converting them after keeps the
 * division of Clinger's fast path off each field's dependency chain, so that the fields
 * overlap; mantissas over 2^53 go through Eisel-Lemire. */
typedef struct {
    uint64_t m[64], nf[64], sgn[64]; /* per lane: mantissa, fraction digits, sign bit */
    uint64_t fail, big;              /* lanes not parsed; lanes for Eisel-Lemire */
    int cnt;
#if defined(RF_NUM_X86) && !defined(RF_NUM_STATIC)
    const char *s[64]; /* the fields, parsed by rf_num_batch_run_ */
    size_t n[64];
#endif
} rf_num_batch_;

static inline void rf_num_batch_init_(rf_num_batch_ *b)
{
    b->fail = b->big = 0;
    b->cnt = 0;
}

#ifdef RF_NUM_X86
/* Lane i after its parse: ok, or failed (m = 0, nf = 0); big when Eisel-Lemire must convert it. */
static inline __attribute__((always_inline)) void rf_num_lane_set_(rf_num_batch_ *b, int i, int ok,
                                                                     unsigned f, int neg)
{
    if (!ok) {
        b->fail |= (uint64_t)1 << i;
        b->m[i] = 0;
        f = 0;
    } else if (b->m[i] > ((uint64_t)1 << 53) || f > 22) {
        b->big |= (uint64_t)1 << i;
    }
    b->nf[i] = f;
    b->sgn[i] = (uint64_t)neg << 63;
}

/* s[0..n) into lane i: 1 to 16 bytes (SSE4.1), or also 17 to 32 (AVX-512 VBMI2). */
RF_NUM_T16 static inline __attribute__((always_inline)) void rf_num_lane16_(rf_num_batch_ *b, int i,
                                                                            const char *s, size_t n)
{
    unsigned f = 0;
    int neg = 0, ok = rf_num_simd16_parts_(s, n, &b->m[i], &f, &neg);
    rf_num_lane_set_(b, i, ok, f, neg);
}
RF_NUM_T32 static inline __attribute__((always_inline)) void rf_num_lane32_(rf_num_batch_ *b, int i,
                                                                            const char *s, size_t n)
{
    unsigned f = 0;
    int neg = 0, ok = rf_num_simd16_parts_(s, n, &b->m[i], &f, &neg);
    if (!ok) ok = rf_num_simd32_parts_(s, n, &b->m[i], &f, &neg);
    rf_num_lane_set_(b, i, ok, f, neg);
}

/* out[i] for the parsed lanes but the big ones - exact: m <= 2^53 and 10^nf (nf <= 22) are
 * doubles, so m / 10^nf is correctly rounded. Scalar, or 8 lanes at a time with AVX-512 (which
 * writes the big and failed lanes too: overwritten or left to the caller). */
static inline __attribute__((always_inline)) void rf_num_cvt_scalar_(const rf_num_batch_ *b, float *out)
{
    for (int i = 0; i < b->cnt; i++) {
        if (b->big >> i & 1) continue; /* (nf may exceed the table) */
        double x = (double)b->m[i] / RF_NUM_P10[b->nf[i]];
        out[i] = (float)(b->sgn[i] ? -x : x);
    }
}
RF_NUM_TCV static inline __attribute__((always_inline)) void rf_num_cvt512_(const rf_num_batch_ *b, float *out)
{
    int cnt = b->cnt;
    const uint64_t *mm = b->m, *nf = b->nf, *sgn = b->sgn;
    const __m512d p10lo = _mm512_loadu_pd(RF_NUM_P10), p10hi = _mm512_loadu_pd(RF_NUM_P10 + 8),
                  p10top = _mm512_maskz_loadu_pd(0x7F, RF_NUM_P10 + 16);
    for (int i = 0; i < cnt; i += 8) {
        __mmask8 k = cnt - i >= 8 ? (__mmask8)0xFF : (__mmask8)((1u << (cnt - i)) - 1);
        __m512d x = _mm512_cvtepu64_pd(_mm512_maskz_loadu_epi64(k, mm + i));
        __m512i e = _mm512_maskz_loadu_epi64(k, nf + i);
        __m512d p = _mm512_permutex2var_pd(p10lo, e, p10hi); /* 10^nf: nf < 16 */
        p = _mm512_mask_permutexvar_pd(p, _mm512_cmpge_epu64_mask(e, _mm512_set1_epi64(16)), e, p10top); /* 16..22 */
        x = _mm512_div_pd(x, p);
        x = _mm512_castsi512_pd(_mm512_xor_si512(_mm512_castpd_si512(x), _mm512_maskz_loadu_epi64(k, sgn + i)));
        _mm256_mask_storeu_ps(out + i, k, _mm512_cvtpd_ps(x));
    }
}

/* The big lanes through Eisel-Lemire (those got a wrong quotient or none above); returns the
 * lanes left to the caller. */
static inline uint64_t rf_num_cvt_big_(rf_num_batch_ *b, float *out)
{
    for (uint64_t big = b->big; big; big &= big - 1) {
        int i = __builtin_ctzll(big);
        double x;
        if (rf_num_eisel_lemire_(b->m[i], -(long)b->nf[i], b->sgn[i] != 0, &x)) /* < 10^19: a float */
            out[i] = (float)x;
        else
            b->fail |= (uint64_t)1 << i;
    }
    return b->fail;
}
#endif

#if defined(RF_NUM_X86) && !defined(RF_NUM_STATIC)
/* The parse and conversion of the recorded lanes for this CPU (numparse.c); returns the lanes
 * left to the caller. */
uint64_t rf_num_batch_run_(rf_num_batch_ *b, float *out);
#endif

/* Parse s[0..n) into the next lane (at most 64). */
static inline void rf_num_batch_add_(rf_num_batch_ *b, const char *s, size_t n)
{
    int i = b->cnt++;
#if defined(RF_NUM_STATIC) && defined(RF_NUM_HAVE_SIMD32)
    rf_num_lane32_(b, i, s, n);
#elif defined(RF_NUM_STATIC)
    rf_num_lane16_(b, i, s, n);
#elif defined(RF_NUM_X86)
    b->s[i] = s;
    b->n[i] = n;
#else
    (void)s;
    (void)n;
    b->fail |= (uint64_t)1 << i;
#endif
}

/* Convert the parsed lanes into out[0..cnt); returns the lanes left to the caller. */
static inline uint64_t rf_num_batch_finish_(rf_num_batch_ *b, float *out)
{
#if defined(RF_NUM_STATIC) && defined(__AVX512F__) && defined(__AVX512DQ__) && defined(__AVX512VL__)
    rf_num_cvt512_(b, out);
    return rf_num_cvt_big_(b, out);
#elif defined(RF_NUM_STATIC)
    rf_num_cvt_scalar_(b, out);
    return rf_num_cvt_big_(b, out);
#elif defined(RF_NUM_X86)
    return rf_num_batch_run_(b, out);
#else
    (void)out;
    return b->fail;
#endif
}

/* The whole batch at once (s[i], n[i] for i < cnt <= 64). */
static inline uint64_t rf_num_batch_f32_(const char *const *s, const uint32_t *n, int cnt, float *out)
{
    rf_num_batch_ b;
    rf_num_batch_init_(&b);
    for (int i = 0; i < cnt; i++) rf_num_batch_add_(&b, s[i], n[i]);
    return rf_num_batch_finish_(&b, out);
}

/* Parse s[0..n) exactly like strtod: RF_NUM_OK with *out, or the reason it is not a finite
 * number. */
static inline int rf_parse_num_(const char *s, size_t n, double *out)
{
    if (rf_num_fast_(s, n, out) == RF_NUM_OK) return RF_NUM_OK;
    return rf_parse_double_(s, n, out);
}

/* A parsed number as a float, as the loader stores it: -1 when it is out of float range
 * (halfway between FLT_MAX and 2^128 rounds, to even, to infinity). */
static inline int rf_num_to_float_(double d, float *out)
{
    static const double lim = (double)FLT_MAX + 0x1p103;
    if (!(fabs(d) < lim)) return -1;
    *out = (float)d;
    return 0;
}

#endif
