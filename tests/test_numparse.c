/* test_numparse.c - the loader's number parser (src/data/numparse.h) gives strtod's double bit for
 * bit (or the same refusal) on edge cases and millions of random strings: short decimals (the
 * inline byte loop and the 16-byte SIMD path, Clinger, Eisel-Lemire), long mantissas, halfway and near-halfway values,
 * huge and tiny exponents, subnormals, overflow, and garbage; both in their own allocation (ASan
 * catches any read past the end) and followed by more digits (which must not be looked at). */
#include "test_util.h"

#include <errno.h>
#include <stdint.h>

#include "data/numparse.h"

static uint64_t rs = 0x9E3779B97F4A7C15ULL;
static uint64_t rnd(void)
{
    rs ^= rs << 13;
    rs ^= rs >> 7;
    rs ^= rs << 17;
    return rs;
}

static long fails, batch_hits;

/* Compare the parser with strtod on txt (in its own allocation, and followed by more digits). */
static void check(const char *txt)
{
    size_t n = strlen(txt);
    char *end;
    errno = 0;
    double want = strtod(txt, &end);
    int want_ok = n && end == txt + n && isfinite(want) && !(txt[0] == ' ' || (txt[0] >= '\t' && txt[0] <= '\r'));
    /* pad = 1: the field is followed by more digits and an exponent in the same buffer */
    char buf[160];
    if (n + 24 > sizeof buf) return;
    memcpy(buf, txt, n);
    memcpy(buf + n, "12345678e+99.5123456789", 24);
    /* the loader's batch path for padded text: a lane it converts is (float) of strtod */
    float f = -12345.0f;
    const char *sp = buf;
    uint32_t n32 = (uint32_t)n;
    if (!rf_num_batch_f32_(&sp, &n32, 1, &f)) {
        batch_hits++;
        float fw = (float)want;
        if (!want_ok || memcmp(&f, &fw, sizeof f) != 0) {
            if (fails++ < 10) fprintf(stderr, "  batch mismatch '%s': got %.9g, want %.9g (ok %d)\n", txt, f, fw, want_ok);
        }
    }
    for (int pad = 0; pad < 2; pad++) {
        double got = -12345.0;
        int rc;
        if (pad) {
            rc = rf_parse_num_(buf, n, &got);
        } else { /* exactly n bytes in their own allocation: ASan catches any over-read */
            char *h = malloc(n ? n : 1);
            memcpy(h, txt, n);
            rc = rf_parse_num_(h, n, &got);
            free(h);
        }
        int ok = rc == RF_NUM_OK;
        if (ok != want_ok || (ok && memcmp(&got, &want, sizeof got) != 0)) {
            if (fails++ < 10)
                fprintf(stderr, "  mismatch '%s' (padded %d): rc %d got %.17g, strtod %.17g (ok %d)\n", txt, pad, rc,
                        got, want, want_ok);
        }
    }
}

static void test_edge_cases(void **state)
{
    (void)state;
    static const char *cases[] = {
        "0", "-0", "+0", "0.0", "-0.0", "00", "1", "-1", "+1.5", ".5", "5.", "-.5e1", "1e0", "1E+3", "1e-3",
        "0.1", "0.2", "0.3", "0.33557800000000004", "0.5726319999999999", "0.123456", "0.12345678",
        "0.123456789", "12345678", "123456789", "1234567890123456789", "12345678901234567890",
        "9223372036854775807", "9223372036854775808", "18446744073709551615", "18446744073709551616",
        "9007199254740992", "9007199254740993", "9007199254740994", "9007199254740995",
        "18014398509481986", "18014398509481987", "9007199254740993e-10", "9007199254740993e10",
        "3.4028235e38", "-3.4028235e38", "3.40282356e38", "1e-45", "1.4e-45", "7e-46", "1e-400", "1e400",
        "1e308", "1.7976931348623157e308", "1.7976931348623158e308", "1.7976931348623159e308", "2e308",
        "4.9406564584124654e-324", "2.4703282292062327e-324", "2.4703282292062328e-324",
        "2.2250738585072011e-308", "2.2250738585072014e-308", "2.225073858507201e-308",
        "1e22", "1e23", "1e-22", "1e-23", "8.589973e9", "16777217", "16777216.5", "33554431",
        "0x1p3", "0x1.8p-1", "inf", "-inf", "nan", "Infinity", "1e", "1e+", "e5", ".", "-", "+", "", " 1",
        "1 ", "1,5", "1.2.3", "--1", "1e5.5", "1e0005", "1e00005", "1e-0005", "000123.4500",
        "0.000000000000000000000000000001", "1234567890123456789e-20", "100000000000000000000000",
        "0.1000000000000000055511151231257827", "7.2057594037927933e16", "5e-324", "3e-324", "2e-324",
        "1.00000000000000011102230246251565404236316680908203125",
        "1.00000000000000011102230246251565404236316680908203124", "0.000001", "0.0000001",
        "123.456e-5", "1.5E-10", "-0.0e5", "0e999", "1e-999"};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) check(cases[i]);
    assert_int_equal(fails, 0);
}

static void test_random_short(void **state)
{
    (void)state;
    char t[96];
    for (int i = 0; i < 1500000; i++) {
        uint64_t r = rnd();
        int kind = (int)(r % 8);
        double mant = (double)(rnd() >> 11) * 0x1p-53;
        int ex = (int)(rnd() % 64) - 32, prec = (int)(rnd() % 19) + 1;
        double v = mant * pow(10.0, ex) * ((r >> 40) & 1 ? -1 : 1);
        switch (kind) {
        case 0: snprintf(t, sizeof t, "%.*g", prec, v); break;
        case 1: snprintf(t, sizeof t, "%.*e", prec, v); break;
        case 2: snprintf(t, sizeof t, "%.*f", prec % 12, v * 1e-3); break;
        case 3: snprintf(t, sizeof t, "0.%06u", (unsigned)(rnd() % 1000000)); break;
        case 4: snprintf(t, sizeof t, "0.%06u00000000004", (unsigned)(rnd() % 1000000)); break;
        case 5: snprintf(t, sizeof t, "%.17g", v); break; /* round-trip representations */
        case 6: { /* random digit strings with a random point and exponent */
            int nd = (int)(rnd() % 19) + 1, pt = (int)(rnd() % (unsigned)(nd + 1)), o = 0;
            for (int k = 0; k < nd; k++) {
                if (k == pt) t[o++] = '.';
                t[o++] = (char)('0' + rnd() % 10);
            }
            if (rnd() % 2) o += snprintf(t + o, sizeof t - (size_t)o, "e%d", (int)(rnd() % 700) - 350);
            t[o] = '\0';
            break;
        }
        default: snprintf(t, sizeof t, "%llue%d", (unsigned long long)(rnd() % 10000000000000000000ULL),
                          (int)(rnd() % 660) - 340);
        }
        check(t);
    }
    assert_int_equal(fails, 0);
}

/* Halfway and near-halfway values with at most 19 digits: (2M+1) * 2^k written out as an
 * integer (exactly between two doubles), and the neighbours one unit away in the last digit. */
static void test_halfway(void **state)
{
    (void)state;
    char t[64];
    for (int i = 0; i < 300000; i++) {
        uint64_t M = ((uint64_t)1 << 52) | (rnd() & (((uint64_t)1 << 52) - 1));
        int k = (int)(rnd() % 10);
        unsigned __int128 x = ((unsigned __int128)(2 * M + 1)) << k;
        if (x >= (unsigned __int128)10000000000000000000ULL) continue;
        uint64_t y = (uint64_t)x;
        for (int d = -1; d <= 1; d++) {
            snprintf(t, sizeof t, "%llu", (unsigned long long)(y + (uint64_t)(int64_t)d));
            check(t);
            /* the same digits with a decimal exponent shift: x * 10^e for small e */
            int e = (int)(rnd() % 7) - 3;
            snprintf(t, sizeof t, "%llue%d", (unsigned long long)(y + (uint64_t)(int64_t)d), e);
            check(t);
        }
        /* negative powers of two: (2M+1) * 2^-k = (2M+1) * 5^k / 10^k, when it fits 19 digits */
        unsigned __int128 z = 2 * M + 1;
        int kk = (int)(rnd() % 4);
        for (int j = 0; j < kk; j++) z *= 5;
        if (z < (unsigned __int128)10000000000000000000ULL) {
            snprintf(t, sizeof t, "%llue-%d", (unsigned long long)z, kk);
            check(t);
        }
    }
    assert_int_equal(fails, 0);
}

/* Whole rows of fields through the batch converter (as the loader calls it: up to 64 fields of
 * one padded buffer): every lane it converts equals (float) of strtod, and the lanes it leaves
 * are exactly those outside its domain (so the caller's slow path sees them). */
static void test_batch_rows(void **state)
{
    (void)state;
    char text[64 * 32 + 64];
    const char *sp[64];
    uint32_t nn[64];
    float out[64];
    long conv = 0;
    for (int row = 0; row < 100000; row++) {
        int cnt = (int)(rnd() % 64) + 1, o = 0;
        for (int i = 0; i < cnt; i++) {
            char t[32];
            uint64_t r = rnd();
            switch (r % 6) {
            case 0: snprintf(t, sizeof t, "0.0"); break;
            case 1: snprintf(t, sizeof t, "0.%06u", (unsigned)(rnd() % 1000000)); break;
            case 2: snprintf(t, sizeof t, "0.%06u00000000004", (unsigned)(rnd() % 1000000)); break;
            case 3: snprintf(t, sizeof t, "%s%llu", rnd() % 2 ? "-" : "+", (unsigned long long)(rnd() % 100000000000000000ULL)); break;
            case 4: { /* random digits with a point anywhere (or none), sometimes a sign */
                int nd = (int)(rnd() % 24) + 1, pt = (int)(rnd() % (unsigned)(nd + 2)), k = 0;
                if (rnd() % 4 == 0) t[k++] = '-';
                for (int j = 0; j < nd; j++) {
                    if (j == pt) t[k++] = '.';
                    t[k++] = (char)('0' + rnd() % 10);
                }
                t[k] = '\0';
                break;
            }
            default: snprintf(t, sizeof t, "%.*g", (int)(rnd() % 9) + 1, (double)(rnd() >> 11) * 0x1p-40);
            }
            size_t len = strlen(t);
            memcpy(text + o, t, len);
            sp[i] = text + o;
            nn[i] = (uint32_t)len;
            o += (int)len;
            text[o++] = ',';
        }
        memset(text + o, '9', 32); /* what follows the last field must not matter */
        uint64_t slow = rf_num_batch_f32_(sp, nn, cnt, out);
        for (int i = 0; i < cnt; i++) {
            char t[32], *end;
            memcpy(t, sp[i], nn[i]);
            t[nn[i]] = '\0';
            double want = strtod(t, &end);
            int plain = nn[i] <= 32 && strspn(t + (t[0] == '-' || t[0] == '+'), "0123456789.") ==
                                           nn[i] - (t[0] == '-' || t[0] == '+') &&
                        strchr(t, '.') == strrchr(t, '.') && strpbrk(t, "0123456789") && end == t + nn[i];
            if (slow >> i & 1) {
#ifdef RF_NUM_HAVE_SIMD16
                /* left only outside the domain: not plain, too long, or (rarely) a mantissa over
                 * 2^53 that Eisel-Lemire cannot decide */
                size_t nd = strlen(t) - strspn(t, "+-") - (strchr(t, '.') != NULL);
#ifdef RF_NUM_HAVE_SIMD32
                size_t lim = 32;
#else
                size_t lim = 16;
#endif
                if (plain && nd <= 15 && strlen(t) <= lim && fails++ < 10) fprintf(stderr, "  batch left '%s'\n", t);
#endif
                continue;
            }
            conv++;
            float fw = (float)want;
            if (!plain || memcmp(&out[i], &fw, sizeof fw) != 0) {
                if (fails++ < 10) fprintf(stderr, "  batch lane '%s': got %.9g want %.9g\n", t, out[i], fw);
            }
        }
    }
    assert_int_equal(fails, 0);
#ifdef RF_NUM_HAVE_SIMD16
    assert_true(conv > 1000000); /* the fast path is really taken */
    assert_true(batch_hits > 100000);
#endif
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_edge_cases),
        cmocka_unit_test(test_random_short),
        cmocka_unit_test(test_halfway),
        cmocka_unit_test(test_batch_rows),
    };
    return cmocka_run_group_tests_name("numparse", tests, NULL, NULL);
}
