/* numparse.c - exact decimal parsing (contract in numparse.h): the general parser for what the
 * inline fast path leaves (long mantissas, unusual spellings), and the Eisel-Lemire step.
 *
 * General parser: up to 19 significant digits with |exp10| <= 22 (mantissa <= 2^53) use one
 * exact double operation (Clinger's fast path); longer mantissas keep their first 19 digits and
 * remember whether a dropped one was nonzero; exact 19-digit mantissas go through Eisel-Lemire
 * and, with an x87 80-bit long double, exponents up to 27 use one long double operation whose
 * result is accepted only when the double rounding provably cannot differ. Everything else
 * falls back to strtod on a NUL-terminated copy ("C" locale decimal point). Whitespace around
 * numbers is not accepted.
 *
 * Eisel-Lemire (Lemire, "Number parsing at a gigabyte per second", 2021; the fast_float
 * library): w * 10^q for w < 2^64 is w normalised times the 128-bit truncated 5^q
 * (pow5_table.h); when the bits below the 55 kept are not all ones, the truncation error
 * cannot change the rounding, else a second 64-bit product refines it. Here every case that
 * fast_float resolves by an extra argument - all-ones bits after the refinement, a product
 * that may be exactly halfway, subnormal and infinite results, |q| > 300 - returns 0 and the
 * caller uses strtod instead, so results are always strtod's. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data/numparse.h"
#include "data/pow5_table.h"

int rf_num_eisel_lemire_(uint64_t w, long q, int neg, double *out)
{
    if (w == 0 || q < -300 || q > 300) return 0;
    int lz = __builtin_clzll(w);
    w <<= lz;
    const uint64_t *pw = &RF_POW5_128[2 * (q - RF_POW5_MIN)];
    unsigned __int128 p1 = (unsigned __int128)w * pw[0];
    uint64_t hi = (uint64_t)(p1 >> 64), lo = (uint64_t)p1;
    const uint64_t pmask = 0x1FF; /* bits below the 52 + 3 kept (plus the top bit) */
    if ((hi & pmask) == pmask) {
        unsigned __int128 p2 = (unsigned __int128)w * pw[1];
        uint64_t mid = (uint64_t)(p2 >> 64);
        lo += mid;
        if (mid > lo) hi++;
        if ((hi & pmask) == pmask && lo == UINT64_MAX) return 0; /* still undecided */
    }
    int upper = (int)(hi >> 63), shift = upper + 64 - 52 - 3;
    uint64_t mant = hi >> shift;
    long p2exp = ((152170L + 65536L) * q >> 16) + 63 + upper - lz + 1023; /* floor(q*log2(10)) + ... */
    if (p2exp <= 0) return 0;                                            /* subnormal */
    if (lo <= 1 && (mant & 3) == 1 && (mant << shift) == hi) return 0;   /* maybe a tie */
    mant += mant & 1;
    mant >>= 1;
    if (mant >= ((uint64_t)2 << 52)) {
        mant = (uint64_t)1 << 52;
        p2exp++;
    }
    mant &= ~((uint64_t)1 << 52);
    if (p2exp >= 0x7FF) return 0; /* infinite */
    uint64_t bits = mant | (uint64_t)p2exp << 52 | (uint64_t)(neg != 0) << 63;
    memcpy(out, &bits, sizeof bits);
    return 1;
}

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
    if (!b) return RF_NUM_BAD;
    memcpy(b, s, n);
    b[n] = '\0';
    int rc = RF_NUM_OK;
    unsigned char c0 = (unsigned char)b[0];
    if (c0 == ' ' || (c0 >= '\t' && c0 <= '\r')) {
        rc = RF_NUM_BAD;
    } else {
        char *end;
        double d = strtod(b, &end);
        if (end != b + n)
            rc = RF_NUM_BAD;
        else if (!isfinite(d))
            rc = RF_NUM_NONFINITE;
        else
            *out = d;
    }
    if (b != stack) free(b);
    return rc;
}

/* The general parser: exact (same result as strtod). */
int rf_parse_double_(const char *s, size_t n, double *out)
{
    if (n == 0) return RF_NUM_EMPTY;
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
    /* accumulate while scanning (wraps harmlessly when there are more than 19 digits: then m
     * is recomputed below) */
    for (unsigned d; p < e && (d = (unsigned)(*p - '0')) < 10u; p++) m = m * 10 + d;
    const char *ipe = p, *fp = p, *fpe = p;
    if (p < e && *p == '.') {
        fp = ++p;
        for (unsigned d; p < e && (d = (unsigned)(*p - '0')) < 10u; p++) m = m * 10 + d;
        fpe = p;
    }
    nd = (size_t)(ipe - ip) + (size_t)(fpe - fp);
    if (nd <= 19) { /* common case: every digit fits in the 64-bit mantissa */
        ex = -(long)(fpe - fp);
    } else { /* keep the first 19 significant digits, remember if a dropped one is nonzero */
        int sig = 0;
        m = 0;
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
        return RF_NUM_OK;
    }
    if (!inexact) {
        if (rf_num_eisel_lemire_(m, ex, neg, out)) return RF_NUM_OK;
        if (m <= ((uint64_t)1 << 53) && ex >= -22 && ex <= 22) {
            double d = (double)m;
            d = ex < 0 ? d / RF_NUM_P10[-ex] : d * RF_NUM_P10[ex];
            *out = neg ? -d : d;
            return RF_NUM_OK;
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
                return RF_NUM_OK;
            }
        }
#endif
    }
    return parse_slow(s, n, out);
}


#if defined(RF_NUM_X86) && !defined(RF_NUM_STATIC)
/* The batch parse of a baseline x86-64 build (make PORTABLE=1, sanitizer builds), chosen at run
 * time: one variant per instruction set, each the compile-time path of numparse.h. */
RF_NUM_T16 static void batch_sse41(rf_num_batch_ *b, float *out)
{
    for (int i = 0; i < b->cnt; i++) rf_num_lane16_(b, i, b->s[i], b->n[i]);
    rf_num_cvt_scalar_(b, out);
}

RF_NUM_TCV static void batch_avx512(rf_num_batch_ *b, float *out)
{
    for (int i = 0; i < b->cnt; i++) rf_num_lane16_(b, i, b->s[i], b->n[i]);
    rf_num_cvt512_(b, out);
}

RF_NUM_T32 static void batch_vbmi2(rf_num_batch_ *b, float *out)
{
    for (int i = 0; i < b->cnt; i++) rf_num_lane32_(b, i, b->s[i], b->n[i]);
    rf_num_cvt512_(b, out);
}

/* The variant is looked up on every call (a batch is up to 64 fields): __builtin_cpu_supports
 * reads libgcc's description of the CPU, filled once (__builtin_cpu_init is idempotent and makes
 * it safe before constructors have run). Nothing of ours is mutable, so nothing to race on. */
uint64_t rf_num_batch_run_(rf_num_batch_ *b, float *out)
{
    __builtin_cpu_init();
    int avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
                 __builtin_cpu_supports("avx512vl");
    if (avx512 && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vbmi") &&
        __builtin_cpu_supports("avx512vbmi2"))
        batch_vbmi2(b, out);
    else if (avx512)
        batch_avx512(b, out);
    else if (__builtin_cpu_supports("sse4.1"))
        batch_sse41(b, out);
    else
        return b->fail = b->cnt == 64 ? ~(uint64_t)0 : ((uint64_t)1 << b->cnt) - 1;
    return rf_num_cvt_big_(b, out);
}
#endif
