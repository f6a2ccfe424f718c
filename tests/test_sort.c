/* test_sort.c - the radix sort of core/sort.h against qsort of (key, position) pairs (so a
 * stable result is the only right one): 32- and 64-bit keys; random keys, many duplicates,
 * all-equal keys, keys that differ only in high or only in low digits, n = 0 and 1; payloads
 * of 0, 4, 8, 12 and 3 bytes; histograms counted by the caller or by the sort; the float key
 * map's order. */
#include <stdint.h>

#include "test_util.h"

#include "core/rng.h"
#include "core/sort.h"

typedef struct {
    uint64_t key;
    size_t pos;
} ref;

static int cmp_ref(const void *a, const void *b)
{
    const ref *x = a, *y = b;
    if (x->key != y->key) return x->key < y->key ? -1 : 1;
    return (x->pos > y->pos) - (x->pos < y->pos);
}

enum { RANDOM, FEW, EQUAL, HIGH, LOW, NKINDS };

static uint64_t make_key(rf_rng *r, int kind, int bits)
{
    uint64_t u = rf_rng_next(r), mask = bits == 32 ? 0xffffffffu : ~(uint64_t)0;
    switch (kind) {
    case FEW: return (u % 7) * 0x0101010101010101ull & mask;
    case EQUAL: return 0x00c0ffee12345678ull & mask;
    case HIGH: return (u << (bits - 5)) & mask; /* only the top 5 bits vary */
    case LOW: return u & 0x3f;                  /* only the low 6 bits vary */
    default: return u & mask;
    }
}

typedef struct {
    unsigned char b[12];
} p12;
typedef struct {
    unsigned char b[3];
} p3;

/* Sort n keys of the given kind with a payload of vsize bytes (each payload holds its row's
 * position), check keys and payloads against the stable reference. */
static void check(int bits, int kind, size_t n, size_t vsize, int own_hist, uint64_t seed)
{
    rf_rng r;
    rf_rng_seed(&r, seed);
    ref *e = malloc((n + 1) * sizeof *e);
    unsigned char *k = malloc((n + 1) * 8), *kt = malloc((n + 1) * 8);
    unsigned char *v = malloc((n + 1) * 16), *vt = malloc((n + 1) * 16);
    size_t *h = calloc(RF_SORT_HIST64, sizeof *h);
    assert_non_null(e);
    assert_non_null(k);
    assert_non_null(kt);
    assert_non_null(v);
    assert_non_null(vt);
    assert_non_null(h);
    for (size_t i = 0; i < n; i++) {
        e[i].key = make_key(&r, kind, bits);
        e[i].pos = i;
        if (bits == 32) {
            ((uint32_t *)k)[i] = (uint32_t)e[i].key;
            if (own_hist) rf_sort_count32(h, (uint32_t)e[i].key);
        } else {
            ((uint64_t *)k)[i] = e[i].key;
            if (own_hist) rf_sort_count64(h, e[i].key);
        }
        uint32_t p32 = (uint32_t)i;
        for (size_t b = 0; b < vsize; b++) v[i * vsize + b] = (unsigned char)(p32 >> (8 * (b % 4)) ^ b);
    }
    qsort(e, n, sizeof *e, cmp_ref);
    void *kk = k, *vv = vsize ? v : NULL;
    int rc = bits == 32 ? rf_radix_sort32_((uint32_t **)&kk, &vv, (uint32_t *)kt, vt, vsize, n, own_hist ? h : NULL)
                        : rf_radix_sort64_((uint64_t **)&kk, &vv, (uint64_t *)kt, vt, vsize, n, own_hist ? h : NULL);
    assert_int_equal(rc, 0);
    assert_true(kk == k || kk == kt);
    for (size_t i = 0; i < n; i++) {
        uint64_t got = bits == 32 ? ((uint32_t *)kk)[i] : ((uint64_t *)kk)[i];
        if (got != e[i].key) {
            fprintf(stderr, "  bits %d kind %d n %zu vsize %zu: key %zu differs\n", bits, kind, n, vsize, i);
            fail();
        }
        uint32_t p32 = (uint32_t)e[i].pos;
        for (size_t b = 0; b < vsize; b++)
            if (((unsigned char *)vv)[i * vsize + b] != (unsigned char)(p32 >> (8 * (b % 4)) ^ b)) {
                fprintf(stderr, "  bits %d kind %d n %zu vsize %zu: payload %zu not stable\n", bits, kind, n, vsize, i);
                fail();
            }
    }
    free(e);
    free(k);
    free(kt);
    free(v);
    free(vt);
    free(h);
}

static void test_against_qsort(void **state)
{
    (void)state;
    static const size_t sizes[] = {0, 1, 2, 17, 1000, 70001};
    static const size_t vsizes[] = {0, 4, 8, 12, 3};
    uint64_t seed = 1;
    for (int bits = 32; bits <= 64; bits += 32)
        for (int kind = 0; kind < NKINDS; kind++)
            for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++)
                for (size_t p = 0; p < sizeof vsizes / sizeof *vsizes; p++)
                    for (int own = 0; own < 2; own++) check(bits, kind, sizes[s], vsizes[p], own, seed++);
}

RF_SORT_DEFINE(sort_p12, 32, p12)
RF_SORT_DEFINE(sort_p3, 64, p3)

/* The typed wrappers: float and size_t payloads, a struct payload, no payload (NULL). */
static void test_wrappers(void **state)
{
    (void)state;
    enum { N = 5000 };
    static uint32_t k[N], kt[N];
    static uint64_t k64[N], kt64[N];
    static float w[N], wt[N];
    static size_t ix[N], it[N];
    static p12 a[N], at[N];
    static p3 b[N], bt[N];
    rf_rng r;
    rf_rng_seed(&r, 99);
    for (size_t i = 0; i < N; i++) {
        k[i] = (uint32_t)(rf_rng_next(&r) % 1000);
        k64[i] = rf_rng_next(&r) % 1000 << 40;
        w[i] = (float)i;
        ix[i] = i;
        memset(&a[i], 0, sizeof a[i]);
        memcpy(a[i].b, &i, sizeof(uint32_t));
        memcpy(b[i].b, &i, sizeof b[i].b);
    }
    uint32_t *pk = k;
    float *pw = w;
    assert_int_equal(rf_radix_sort32_f32(&pk, &pw, kt, wt, N, NULL), 0);
    for (size_t i = 1; i < N; i++) {
        assert_true(pk[i - 1] <= pk[i]);
        if (pk[i - 1] == pk[i]) assert_true(pw[i - 1] < pw[i]); /* stable */
    }
    uint64_t *pk64 = k64;
    size_t *pi = ix;
    assert_int_equal(rf_radix_sort64_zu(&pk64, &pi, kt64, it, N, NULL), 0);
    for (size_t i = 1; i < N; i++) {
        assert_true(pk64[i - 1] <= pk64[i]);
        if (pk64[i - 1] == pk64[i]) assert_true(pi[i - 1] < pi[i]);
    }
    for (size_t i = 0; i < N; i++) k[i] = (uint32_t)(rf_rng_next(&r) % 1000), k64[i] = k[i];
    pk = k;
    p12 *pa = a;
    assert_int_equal(sort_p12(&pk, &pa, kt, at, N, NULL), 0);
    pk64 = k64;
    p3 *pb = b;
    assert_int_equal(sort_p3(&pk64, &pb, kt64, bt, N, NULL), 0);
    for (size_t i = 1; i < N; i++) {
        uint32_t x = 0, y = 0, u = 0, v = 0;
        memcpy(&x, pa[i - 1].b, 4);
        memcpy(&y, pa[i].b, 4);
        memcpy(&u, pb[i - 1].b, 3);
        memcpy(&v, pb[i].b, 3);
        assert_true(pk[i - 1] <= pk[i] && pk64[i - 1] <= pk64[i]);
        if (pk[i - 1] == pk[i]) assert_true(x < y);
        if (pk64[i - 1] == pk64[i]) assert_true(u < v);
        assert_int_equal(pk[i], pk64[i]); /* same keys, same order */
    }
    /* no payload: v NULL, or *v NULL */
    for (size_t i = 0; i < N; i++) k[i] = (uint32_t)rf_rng_next(&r);
    pk = k;
    assert_int_equal(rf_radix_sort32_f32(&pk, NULL, kt, NULL, N, NULL), 0);
    for (size_t i = 1; i < N; i++) assert_true(pk[i - 1] <= pk[i]);
    for (size_t i = 0; i < N; i++) k[i] = (uint32_t)rf_rng_next(&r);
    pk = k;
    pw = NULL;
    assert_int_equal(rf_radix_sort32_f32(&pk, &pw, kt, NULL, N, NULL), 0);
    assert_null(pw);
    for (size_t i = 1; i < N; i++) assert_true(pk[i - 1] <= pk[i]);
}

/* rf_sort_key_f32 orders floats as < does, and -0.0 == +0.0. */
static void test_float_keys(void **state)
{
    (void)state;
    const float f[] = {-INFINITY, -3e38f, -1.5f, -1e-45f, -0.0f, 0.0f, 1e-45f, 1e-30f, 0.5f, 1.0f, 3e38f, INFINITY};
    size_t n = sizeof f / sizeof *f;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++) {
            uint32_t a = rf_sort_key_f32(f[i]), b = rf_sort_key_f32(f[j]);
            assert_int_equal(f[i] < f[j], a < b);
            assert_int_equal(f[i] == f[j], a == b);
        }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_against_qsort),
        cmocka_unit_test(test_wrappers),
        cmocka_unit_test(test_float_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
