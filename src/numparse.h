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
 * Nothing past s[n - 1] is ever read. */
#ifndef RESFLOW_NUMPARSE_H
#define RESFLOW_NUMPARSE_H

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
        for (unsigned d; p < e && (d = (unsigned)(*p - '0')) < 10u; p++) x = x * 10 + d;
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

/* Parse s[0..n) exactly like strtod: RF_NUM_OK with *out, or the reason it is not a finite
 * number. */
static inline int rf_parse_num_(const char *s, size_t n, double *out)
{
    if (rf_num_fast_(s, n, out) == RF_NUM_OK) return RF_NUM_OK;
    return rf_parse_double_(s, n, out);
}

#endif
