/* test_topk.c - the top-K kernels (src/serve/topk.c) and item index files (index.h).
 *
 * - Exact search equals a brute force (dots in double, sorted by score then index) on integer
 *   vectors (exact in float), with duplicated items (ties: lower index first), widths that are
 *   not multiples of 16, item biases, k > n, 1 and 3 threads, single and batched queries.
 * - A multi-task score function (not monotone in any one dot) ranks as the brute force does.
 * - Quantized search: recall@10 >= 0.95 with a shortlist of 200 on Gaussian vectors, and the
 *   exact answer when the shortlist holds every item; the SIMD and portable code agree with it.
 * - Index files round-trip (ids, vectors, biases); a flipped byte, a truncated file, another
 *   magic are refused; an index is refused for a model other than the one it was built from.
 * - Four threads search one item set at once, each with its own scratch, and get the
 *   single-thread answers (under ThreadSanitizer in make tsan).
 * - The /v1/topk body parser: its fields, limits and errors naming the field, every prefix of a
 *   good body refused with nothing left allocated (under ASan in make asan).
 */
#include "test_util.h"

#include <omp.h>
#include <pthread.h>

#include "core/rng.h"
#include "resflow/config.h"
#include "resflow/index.h"
#include "resflow/serve_http.h"
#include "serve/topk.h"

TEST_TMPDIR("topk")

/* n OpenMP threads, or 1 when OMP_NUM_THREADS=1 (make tsan: Debian's libgomp is not instrumented,
 * so a team of its threads gives only false reports there) */
static int team(int n) { return omp_get_max_threads() > 1 ? n : 1; }

typedef struct {
    double s;
    uint32_t i;
} ref_ent;

static int ref_cmp(const void *a, const void *b)
{
    const ref_ent *x = a, *y = b;
    if (x->s != y->s) return x->s > y->s ? -1 : 1;
    return x->i < y->i ? -1 : x->i > y->i;
}

/* integer vectors in -4..4 (every dot exact in float), every 7th item a copy of an earlier one */
static float *int_vectors(size_t n, int K, int d, uint64_t seed)
{
    float *v = malloc(n * K * d * sizeof *v);
    rf_rng r;
    rf_rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++) {
        if (i >= 7 && i % 7 == 0) {
            memcpy(v + i * K * d, v + (i / 2) * K * d, (size_t)K * d * sizeof *v);
            continue;
        }
        for (int j = 0; j < K * d; j++) v[i * K * d + j] = (float)((int)rf_rng_below(&r, 9) - 4);
    }
    return v;
}

static double ref_dot(const float *a, const float *b, int d)
{
    double s = 0;
    for (int j = 0; j < d; j++) s += (double)a[j] * b[j];
    return s;
}

/* brute force top-k for K == 1 with biases: m results into idx */
static int brute_k1(const rf_tk_items *it, const float *u, int k, uint32_t *idx)
{
    ref_ent *e = malloc(it->n * sizeof *e);
    for (size_t i = 0; i < it->n; i++)
        e[i] = (ref_ent){ref_dot(u, it->v + i * it->d, it->d) + (it->vb ? it->vb[i] : 0), (uint32_t)i};
    qsort(e, it->n, sizeof *e, ref_cmp);
    int m = (size_t)k < it->n ? k : (int)it->n;
    for (int j = 0; j < m; j++) idx[j] = e[j].i;
    free(e);
    return m;
}

static void test_exact_brute(void **state)
{
    (void)state;
    size_t ns[] = {1000, 37, 5};
    int ds[] = {20, 64, 3};
    for (int t = 0; t < 3; t++) {
        size_t n = ns[t];
        int d = ds[t], Q = 5, k = 50;
        float *v = int_vectors(n, 1, d, 11 + t), *u = int_vectors(Q, 1, d, 99 + t);
        float *vb = malloc(n * sizeof *vb);
        for (size_t i = 0; i < n; i++) vb[i] = (float)(i % 3);
        for (int withb = 0; withb < 2; withb++) {
            rf_tk_items it = {n, 1, d, v, withb ? vb : NULL, 0, NULL, NULL, NULL, NULL};
            rf_tk_scratch *s = rf_tk_scratch_create(1, d, Q, k, 0, 3);
            assert_non_null(s);
            uint32_t idx[5 * 50], ref[50];
            float sc[5 * 50];
            int nout[5];
            for (int threads = 1; threads <= 3; threads += 2)
                for (int batch = 0; batch < 2; batch++) {
                    rf_tk_opts o = {.k = k, .threads = team(threads)};
                    rf_error e;
                    if (batch) {
                        assert_int_equal(rf_tk_search(&it, u, Q, &o, s, idx, sc, NULL, nout, &e), RF_OK);
                    } else {
                        for (int q = 0; q < Q; q++)
                            assert_int_equal(
                                rf_tk_search(&it, u + q * d, 1, &o, s, idx + q * k, sc + q * k, NULL, nout + q, &e),
                                RF_OK);
                    }
                    for (int q = 0; q < Q; q++) {
                        int m = brute_k1(&it, u + q * d, k, ref);
                        assert_int_equal(nout[q], m);
                        for (int j = 0; j < m; j++) assert_int_equal(idx[q * k + j], ref[j]);
                        for (int j = 1; j < m; j++) assert_true(sc[q * k + j] <= sc[q * k + j - 1]);
                    }
                }
            rf_tk_scratch_free(s);
        }
        free(v), free(u), free(vb);
    }
}

/* a 3-task score not monotone in any single dot: d0 - 2 d1 + 0.1 d2^2 + the biases' sum */
static void score3(void *ud, int q, int thread, const float *dots, const float *vb, int n, float *out)
{
    (void)ud, (void)q, (void)thread;
    for (int i = 0; i < n; i++) {
        const float *x = dots + 3 * i;
        out[i] = x[0] - 2 * x[1] + 0.1f * x[2] * x[2] + (vb ? vb[3 * i] + vb[3 * i + 1] + vb[3 * i + 2] : 0);
    }
}

/* a 2-task score: d0 + 0.5 d1 + vb0 */
static void score2(void *ud, int q, int thread, const float *dots, const float *vb, int n, float *out)
{
    (void)ud, (void)q, (void)thread;
    for (int i = 0; i < n; i++) out[i] = dots[2 * i] + 0.5f * dots[2 * i + 1] + (vb ? vb[2 * i] : 0);
}

static void test_multitask(void **state)
{
    (void)state;
    size_t n = 2000;
    int K = 3, d = 17, k = 25;
    float *v = int_vectors(n, K, d, 5), *u = int_vectors(1, K, d, 6), *vb = malloc(n * K * sizeof *vb);
    for (size_t i = 0; i < n * K; i++) vb[i] = (float)(i % 5);
    rf_tk_items it = {n, K, d, v, vb, 0, NULL, NULL, NULL, NULL};
    ref_ent *e = malloc(n * sizeof *e);
    for (size_t i = 0; i < n; i++) {
        float dots[3];
        for (int t = 0; t < K; t++) dots[t] = (float)ref_dot(u + t * d, v + (i * K + t) * d, d);
        float s;
        score3(NULL, 0, 0, dots, vb + i * K, 1, &s);
        e[i] = (ref_ent){s, (uint32_t)i};
    }
    qsort(e, n, sizeof *e, ref_cmp);
    rf_tk_scratch *s = rf_tk_scratch_create(K, d, 1, k, 0, 2);
    uint32_t idx[25];
    float sc[25], dots[25 * 3];
    int nout;
    rf_error err;
    rf_tk_opts o = {.k = k, .threads = team(2), .score = score3};
    assert_int_equal(rf_tk_search(&it, u, 1, &o, s, idx, sc, dots, &nout, &err), RF_OK);
    assert_int_equal(nout, k);
    for (int j = 0; j < k; j++) {
        assert_int_equal(idx[j], e[j].i);
        for (int t = 0; t < K; t++)
            assert_float_equal(dots[j * K + t], ref_dot(u + t * d, v + ((size_t)idx[j] * K + t) * d, d), 0);
    }
    /* without a score function several tasks are refused */
    o.score = NULL;
    assert_int_equal(rf_tk_search(&it, u, 1, &o, s, idx, sc, dots, &nout, &err), RF_EUSAGE);
    rf_tk_scratch_free(s);
    free(e), free(v), free(u), free(vb);
}

static float gauss(rf_rng *r)
{
    double a = rf_rng_uniform(r), b = rf_rng_uniform(r);
    return (float)(sqrt(-2.0 * log(a > 1e-300 ? a : 1e-300)) * cos(6.283185307179586 * b));
}

static void test_quantized(void **state)
{
    (void)state;
    size_t n = 20000;
    int d = 30, k = 10, Q = 20;
    rf_rng r;
    rf_rng_seed(&r, 42);
    float *v = malloc(n * d * sizeof *v), *u = malloc((size_t)Q * d * sizeof *u);
    for (size_t i = 0; i < n * d; i++) v[i] = gauss(&r);
    for (int i = 0; i < Q * d; i++) u[i] = gauss(&r);
    int dq = rf_tk_dq(d);
    float qa[32], qb[32];
    uint8_t *codes = malloc(rf_tk_codes_bytes(n, 1, d));
    rf_tk_quantize(n, 1, d, v, qa, qb, codes, team(2));
    /* every code reconstructs its value within half a step */
    for (size_t i = 0; i < n; i += 97)
        for (int j = 0; j < d; j++) {
            size_t b = i / 16, l = i % 16;
            uint8_t c = codes[b * dq * 16 + (size_t)(j / 4) * 64 + l * 4 + (size_t)(j % 4)];
            assert_true(fabsf(qa[j] + qb[j] * c - v[i * d + j]) <= 0.5001f * qb[j]);
        }
    rf_tk_items it = {n, 1, d, v, NULL, dq, qa, qb, codes, NULL};
    rf_tk_scratch *s = rf_tk_scratch_create(1, d, Q, k, (int)n, 2);
    uint32_t ex[20 * 10], qi[20 * 10];
    float sc[20 * 10];
    int nout[20];
    rf_error e;
    rf_tk_opts o = {.k = k, .threads = team(2)};
    assert_int_equal(rf_tk_search(&it, u, Q, &o, s, ex, sc, NULL, nout, &e), RF_OK);
    o.quantized = 1;
    o.shortlist = 200;
    assert_int_equal(rf_tk_search(&it, u, Q, &o, s, qi, sc, NULL, nout, &e), RF_OK);
    int hit = 0;
    for (int q = 0; q < Q; q++)
        for (int a = 0; a < k; a++)
            for (int b = 0; b < k; b++) hit += qi[q * k + a] == ex[q * k + b];
    print_message("quantized recall@%d with a shortlist of 200 of %zu: %.3f\n", k, n, (double)hit / (Q * k));
    assert_true(hit >= 0.95 * Q * k);
    /* a shortlist of every item re-ranks everything exactly */
    o.shortlist = (int)n;
    assert_int_equal(rf_tk_search(&it, u, Q, &o, s, qi, sc, NULL, nout, &e), RF_OK);
    for (int j = 0; j < Q * k; j++) assert_int_equal(qi[j], ex[j]);
    /* limits: a shortlist beyond the scratch, no compact copy */
    o.shortlist = (int)n + 1;
    assert_int_equal(rf_tk_search(&it, u, Q, &o, s, qi, sc, NULL, nout, &e), RF_EUSAGE);
    it.codes = NULL;
    o.shortlist = 100;
    assert_int_equal(rf_tk_search(&it, u, Q, &o, s, qi, sc, NULL, nout, &e), RF_EUSAGE);
    /* the bf16 copy: every value within bf16 rounding (2^-9 relative), the same recall bar, and
     * a full shortlist equals the exact search */
    uint16_t *bf = malloc(rf_tk_bf16_bytes(n, 1, d));
    rf_tk_to_bf16(n, 1, d, v, bf, team(2));
    for (size_t i = 0; i < n; i += 89)
        for (int j = 0; j < d; j++) {
            size_t b = i / 16, l = i % 16;
            uint32_t bits = (uint32_t)bf[b * dq * 16 + (size_t)(j / 2) * 32 + l * 2 + (size_t)(j % 2)] << 16;
            float x;
            memcpy(&x, &bits, 4);
            assert_true(fabsf(x - v[i * d + j]) <= fabsf(v[i * d + j]) * (1.0f / 256));
        }
    it.bf = bf;
    o.quantized = RF_TK_BF16;
    assert_int_equal(rf_tk_search(&it, u, Q, &o, s, qi, sc, NULL, nout, &e), RF_OK);
    hit = 0;
    for (int q = 0; q < Q; q++)
        for (int a = 0; a < k; a++)
            for (int b = 0; b < k; b++) hit += qi[q * k + a] == ex[q * k + b];
    print_message("bf16 recall@%d with a shortlist of 100 of %zu: %.3f\n", k, n, (double)hit / (Q * k));
    assert_true(hit >= 0.95 * Q * k);
    o.shortlist = (int)n;
    assert_int_equal(rf_tk_search(&it, u, Q, &o, s, qi, sc, NULL, nout, &e), RF_OK);
    for (int j = 0; j < Q * k; j++) assert_int_equal(qi[j], ex[j]);
    it.bf = NULL;
    assert_int_equal(rf_tk_search(&it, u, Q, &o, s, qi, sc, NULL, nout, &e), RF_EUSAGE);
    o.quantized = 3;
    assert_int_equal(rf_tk_search(&it, u, Q, &o, s, qi, sc, NULL, nout, &e), RF_EUSAGE);
    rf_tk_scratch_free(s);
    free(v), free(u), free(codes), free(bf);
}

/* ---- the fused score's fast path (topk_fuse.c) against the per-item formula ---------------- */

#define FZ_K 3
#define FZ_MAXN 4096
typedef struct {
    const rf_fusion *f;
    float ub[FZ_K];
    float P[2][FZ_MAXN * FZ_K], C[2][FZ_MAXN]; /* per thread */
} fz_ud;

/* the exact formula per item: p = sigmoid(dot + ub + vb), cond b|a = p1 / max(p0, 1e-30), then
 * rf_fusion_apply (double) over columns a, b, c, b|a */
static void fz_exact(void *ud, int q, int thread, const float *dots, const float *vb, int n, float *out)
{
    (void)q;
    fz_ud *z = ud;
    float *P = z->P[thread], *C = z->C[thread];
    for (int i = 0; i < n; i++) {
        for (int k = 0; k < FZ_K; k++)
            P[i * FZ_K + k] = 1.0f / (1.0f + expf(-(dots[i * FZ_K + k] + z->ub[k] + (vb ? vb[i * FZ_K + k] : 0))));
        C[i] = P[i * FZ_K + 1] / fmaxf(P[i * FZ_K], 1e-30f);
    }
    rf_score_col cols[4] = {{"a", P, FZ_K}, {"b", P + 1, FZ_K}, {"c", P + 2, FZ_K}, {"b|a", C, 1}};
    rf_error e;
    assert_int_equal(rf_fusion_apply(z->f, cols, 4, (size_t)n, out, &e), RF_OK);
}

typedef struct {
    fz_ud *z;
    rf_tk_fuse plan;
    float work[2][FZ_MAXN * (FZ_K + 1)];
} fz_fast;

static void fz_approx(void *ud, int q, int thread, const float *dots, const float *vb, int n, float *out)
{
    (void)q;
    fz_fast *f = ud;
    rf_tk_fuse_block(&f->plan, f->z->ub, dots, vb, n, f->work[thread], out);
}

static void fz_exact_via_fast(void *ud, int q, int thread, const float *dots, const float *vb, int n, float *out)
{
    fz_exact(((fz_fast *)ud)->z, q, thread, dots, vb, n, out);
}

static void test_fused(void **state)
{
    (void)state;
    size_t n = 30000;
    int d = 16, k = 50, Q = 4;
    rf_rng r;
    rf_rng_seed(&r, 77);
    float *v = malloc(n * FZ_K * d * sizeof *v), *vb = malloc(n * FZ_K * sizeof *vb), u[4 * FZ_K * 16];
    for (size_t i = 0; i < n * FZ_K * d; i++) v[i] = 0.4f * gauss(&r);
    for (size_t i = 0; i < n * FZ_K; i++) vb[i] = 0.5f * gauss(&r);
    for (int i = 0; i < Q * FZ_K * d; i++) u[i] = 0.5f * gauss(&r);
    int dq = rf_tk_dq(d);
    float qa[FZ_K * 16], qb[FZ_K * 16];
    uint8_t *codes = malloc(rf_tk_codes_bytes(n, FZ_K, d));
    rf_tk_quantize(n, FZ_K, d, v, qa, qb, codes, team(2));
    rf_tk_items it = {n, FZ_K, d, v, vb, dq, qa, qb, codes, NULL};
    const char *specs[] = {"mul:a=0.9,b|a=1.1", "mul:a=1,c|b=0.5", "add:a=1,b=20,c=0.5", "mul:c=1"};
    const char *names[4] = {"a", "b", "c", "b|a"};
    rf_tk_fuse_col cols[4] = {{0, -1}, {1, -1}, {2, -1}, {1, 0}};
    static fz_ud z;
    static fz_fast fast;
    rf_error e;
    for (int f = 0; f < 4; f++) {
        rf_fusion fu;
        assert_int_equal(rf_fusion_parse(specs[f], &fu, &e), RF_OK);
        z.f = &fu;
        for (int t = 0; t < FZ_K; t++) z.ub[t] = 0.3f * (float)(t - 1);
        fast.z = &z;
        assert_int_equal(rf_tk_fuse_plan(&fast.plan, FZ_K, &fu, names, cols, 4, &e), RF_OK);
        /* per block: the fast score is the formula (ADD) or its log (MUL) within float rounding */
        float dots[256 * FZ_K], ex[256], ap[256];
        for (int i = 0; i < 256; i++)
            for (int t = 0; t < FZ_K; t++) dots[i * FZ_K + t] = 3.0f * gauss(&r);
        fz_exact(&z, 0, 0, dots, vb, 256, ex);
        fz_approx(&fast, 0, 0, dots, vb, 256, ap);
        for (int i = 0; i < 256; i++) {
            double want = fu.kind == RF_FUSION_MUL ? log(ex[i]) : ex[i];
            assert_true(fabs(ap[i] - want) <= 2e-6 * (1 + fabs(want)) * 8);
        }
        /* searches: exact and quantized with the fast score in the scan equal those without it */
        rf_tk_scratch *s = rf_tk_scratch_create(FZ_K, d, Q, k, 500, 2);
        uint32_t i0[4 * 50], i1[4 * 50];
        float s0[4 * 50], s1[4 * 50];
        int n0[4], n1[4];
        for (int quant = 0; quant < 2; quant++) {
            rf_tk_opts o = {.k = k, .quantized = quant, .shortlist = 500, .threads = team(2), .score = fz_exact,
                            .ud = &z};
            assert_int_equal(rf_tk_search(&it, u, Q, &o, s, i0, s0, NULL, n0, &e), RF_OK);
            o.approx = fz_approx;
            o.ud = &fast;
            o.score = fz_exact_via_fast;
            assert_int_equal(rf_tk_search(&it, u, Q, &o, s, i1, s1, NULL, n1, &e), RF_OK);
            int same = 0;
            for (int q = 0; q < Q; q++) {
                assert_int_equal(n0[q], k);
                assert_int_equal(n1[q], k);
                for (int j = 0; j < k; j++) same += i0[q * k + j] == i1[q * k + j];
            }
            for (int j = 0; j < Q * k; j++) assert_float_equal(s0[j], s1[j], 0);
            assert_int_equal(same, Q * k);
        }
        rf_tk_scratch_free(s);
    }
    free(v), free(vb), free(codes);
}

static rf_model *small_model(uint64_t seed)
{
    rf_config cfg;
    rf_config_default(&cfg);
    cfg.train.seed = seed;
    rf_field f[2] = {{.name = "a", .vocab = 10}, {.name = "b", .vocab = 20}};
    rf_model *m = NULL;
    rf_error e;
    assert_int_equal(rf_config_create_model(&cfg, 2, f, 1, &m, &e), RF_OK);
    return m;
}

static void test_index_file(void **state)
{
    (void)state;
    size_t n = 300;
    int K = 2, d = 7;
    float *v = int_vectors(n, K, d, 3), *vb = malloc(n * K * sizeof *vb);
    for (size_t i = 0; i < n * K; i++) vb[i] = 0.25f * (float)i;
    char **ids = malloc(n * sizeof *ids);
    for (size_t i = 0; i < n; i++) {
        ids[i] = malloc(24);
        snprintf(ids[i], 24, "item-%zu%s", i, i % 2 ? "x" : "");
    }
    rf_model *m1 = small_model(1), *m2 = small_model(2);
    uint64_t fp = rf_index_model_fingerprint(m1);
    assert_true(fp == rf_index_model_fingerprint(m1));
    assert_true(fp != rf_index_model_fingerprint(m2));
    const char *path = tmp_path("i.rfi");
    rf_error e;
    assert_int_equal(rf_index_write(path, fp, n, K, d, (const char *const *)ids, v, vb, 1, &e), RF_OK);
    rf_index *ix;
    assert_int_equal(rf_index_open(path, &ix, &e), RF_OK);
    assert_int_equal(rf_index_size(ix), n);
    assert_int_equal(rf_index_tasks(ix), K);
    assert_int_equal(rf_index_dim(ix), d);
    assert_true(rf_index_fingerprint(ix) == fp);
    for (size_t i = 0; i < n; i++) assert_string_equal(rf_index_id(ix, i), ids[i]);
    assert_null(rf_index_id(ix, n));
    assert_memory_equal(rf_index_vectors(ix), v, n * K * d * sizeof *v);
    assert_memory_equal(rf_index_biases(ix), vb, n * K * sizeof *vb);
    assert_int_equal(rf_index_check_model(ix, m1, "m1.model", &e), RF_OK);
    assert_int_equal(rf_index_check_model(ix, m2, "m2.model", &e), RF_EUSAGE);
    assert_non_null(strstr(e.msg, path));
    assert_non_null(strstr(e.msg, "m2.model"));
    /* the exact and quantized searches over the mapped index equal the one over the arrays */
    rf_tk_items a = {n, K, d, v, vb, 0, NULL, NULL, NULL, NULL}, b;
    rf_index_items(ix, &b);
    float u[2 * 7] = {1, -2, 3, 0, 1, 1, -1, 2, 2, -1, 0, 1, 3, 1};
    rf_tk_scratch *s = rf_tk_scratch_create(K, d, 1, 20, (int)n, 1);
    uint32_t ia[20], ib[20];
    float sa[20], sb[20];
    int na, nb;
    rf_tk_opts o = {.k = 20, .threads = 1, .score = score2};
    assert_int_equal(rf_tk_search(&a, u, 1, &o, s, ia, sa, NULL, &na, &e), RF_OK);
    assert_int_equal(rf_tk_search(&b, u, 1, &o, s, ib, sb, NULL, &nb, &e), RF_OK);
    assert_int_equal(na, 20);
    assert_int_equal(nb, 20);
    assert_memory_equal(ia, ib, sizeof ia);
    o.quantized = 1;
    o.shortlist = (int)n;
    assert_int_equal(rf_tk_search(&b, u, 1, &o, s, ib, sb, NULL, &nb, &e), RF_OK);
    assert_memory_equal(ia, ib, sizeof ia);
    rf_tk_scratch_free(s);
    rf_index_close(ix);

    /* corruption: a flipped byte in the payload, then in the header; a truncated file */
    FILE *fp2 = fopen(path, "rb");
    fseek(fp2, 0, SEEK_END);
    long len = ftell(fp2);
    fseek(fp2, 0, SEEK_SET);
    unsigned char *bytes = malloc((size_t)len);
    assert_int_equal(fread(bytes, 1, (size_t)len, fp2), (size_t)len);
    fclose(fp2);
    const char *bad = tmp_path("bad.rfi");
    long at[] = {len - 3, 200, 20, 0};
    const char *want[] = {"checksum", "checksum", "header checksum", "magic"};
    for (int c = 0; c < 4; c++) {
        bytes[at[c]] ^= 0x40;
        FILE *w = fopen(bad, "wb");
        fwrite(bytes, 1, (size_t)len, w);
        fclose(w);
        bytes[at[c]] ^= 0x40;
        assert_int_equal(rf_index_open(bad, &ix, &e), RF_EFORMAT);
        assert_non_null(strstr(e.msg, want[c]));
        assert_non_null(strstr(e.msg, bad));
    }
    FILE *w = fopen(bad, "wb");
    fwrite(bytes, 1, (size_t)len - 100, w);
    fclose(w);
    assert_int_equal(rf_index_open(bad, &ix, &e), RF_EFORMAT);
    assert_non_null(strstr(e.msg, "truncated"));
    w = fopen(bad, "wb");
    fwrite(bytes, 1, 50, w);
    fclose(w);
    assert_int_equal(rf_index_open(bad, &ix, &e), RF_EFORMAT);
    assert_int_equal(rf_index_open(tmp_path("none.rfi"), &ix, &e), RF_EIO);
    free(bytes);
    rf_model_free(m1), rf_model_free(m2);
    for (size_t i = 0; i < n; i++) free(ids[i]);
    free(ids), free(v), free(vb);
}

typedef struct {
    const rf_tk_items *it;
    const float *u;
    int Q, k, quantized;
    uint32_t idx[8 * 30];
    int rc;
} job;

static void *worker(void *p)
{
    job *j = p;
    rf_tk_scratch *s = rf_tk_scratch_create(1, j->it->d, 1, j->k, 300, 1);
    float sc[30];
    int nout;
    rf_error e;
    rf_tk_opts o = {.k = j->k, .quantized = j->quantized, .shortlist = 300, .threads = 1};
    for (int rep = 0; rep < 3; rep++)
        for (int q = 0; q < j->Q; q++)
            j->rc |= rf_tk_search(j->it, j->u + (size_t)q * j->it->d, 1, &o, s, j->idx + q * j->k, sc, NULL, &nout, &e);
    rf_tk_scratch_free(s);
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    size_t n = 5000;
    int d = 24, Q = 8, k = 30;
    float *v = int_vectors(n, 1, d, 21), *u = int_vectors(Q, 1, d, 22);
    int dq = rf_tk_dq(d);
    float qa[24], qb[24];
    uint8_t *codes = malloc(rf_tk_codes_bytes(n, 1, d));
    rf_tk_quantize(n, 1, d, v, qa, qb, codes, 1);
    rf_tk_items it = {n, 1, d, v, NULL, dq, qa, qb, codes, NULL};
    job ref[2], jobs[4];
    for (int qz = 0; qz < 2; qz++) {
        ref[qz] = (job){&it, u, Q, k, qz, {0}, 0};
        worker(&ref[qz]);
        assert_int_equal(ref[qz].rc, 0);
    }
    pthread_t th[4];
    for (int t = 0; t < 4; t++) {
        jobs[t] = (job){&it, u, Q, k, t % 2, {0}, 0};
        assert_int_equal(pthread_create(&th[t], NULL, worker, &jobs[t]), 0);
    }
    for (int t = 0; t < 4; t++) {
        pthread_join(th[t], NULL);
        assert_int_equal(jobs[t].rc, 0);
        assert_memory_equal(jobs[t].idx, ref[t % 2].idx, (size_t)Q * k * sizeof(uint32_t));
    }
    free(v), free(u), free(codes);
}

/* the /v1/topk body parser: fields, limits naming the field, and every prefix of a good body */
static void test_parse_topk(void **state)
{
    (void)state;
    const char *cols[] = {"user_id", "city_tier"};
    const char *good = "{\"context\": {\"user_id\": \"u1\", \"city_tier\": 3}, \"k\": 7, \"mode\": \"quantized\", "
                       "\"shortlist\": 500}";
    rf_serve_topk_parsed p;
    rf_error e;
    assert_int_equal(rf_serve_parse_topk(good, strlen(good), cols, 2, 100, 1000, &p, &e), RF_OK);
    assert_int_equal(p.k, 7);
    assert_int_equal(p.quantized, 1);
    assert_int_equal(p.shortlist, 500);
    assert_int_equal(p.context.n, 2);
    assert_string_equal(p.context.values[1], "3");
    rf_serve_topk_parsed_free(&p);
    struct {
        const char *body, *field;
        rf_status st;
    } bad[] = {{"{\"k\": 101}", "k", RF_EUSAGE},          {"{\"k\": 0}", "k", RF_EUSAGE},
               {"{\"mode\": 3}", "mode", RF_EDATA},       {"{\"shortlist\": 1001}", "shortlist", RF_EUSAGE},
               {"{\"context\": {\"x\": 1}}", "context.x", RF_EUSAGE}, {"{\"top\": 1}", "top", RF_EDATA},
               {"{\"context\": 1}", "context", RF_EDATA}, {"[]", "", RF_EDATA}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(rf_serve_parse_topk(bad[i].body, strlen(bad[i].body), cols, 2, 100, 1000, &p, &e), bad[i].st);
        assert_string_equal(p.field, bad[i].field);
    }
    assert_int_equal(rf_serve_parse_topk("{}", 2, cols, 2, 100, 1000, &p, &e), RF_OK);
    assert_int_equal(p.k, 10);
    assert_int_equal(p.quantized, 0);
    rf_serve_topk_parsed_free(&p);
    for (size_t n = 0; n < strlen(good); n++) {
        rf_status st = rf_serve_parse_topk(good, n, cols, 2, 100, 1000, &p, &e);
        assert_int_not_equal(st, RF_OK);
        assert_null(p.priv_);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exact_brute), cmocka_unit_test(test_multitask), cmocka_unit_test(test_quantized), cmocka_unit_test(test_fused),
        cmocka_unit_test(test_index_file), cmocka_unit_test(test_threads), cmocka_unit_test(test_parse_topk),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
