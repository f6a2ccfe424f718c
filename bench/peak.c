/* peak.c - measure the fp32 (FMA), bf16 (vdpbf16ps) and int8 (vpdpbusd) arithmetic peak on the
 * cores used.
 *
 * Each OpenMP thread runs a loop of independent vector multiply-adds: 16 accumulators, more
 * than latency x throughput on Zen 4 (4 x 1 zmm FMA/cycle) and Sapphire Rapids (4 x 2), so the
 * FMA pipes, not the dependency chains, are the limit. The kernel is picked at run time
 * (__builtin_cpu_supports), so a PORTABLE=1 build measures the same peak as a native one.
 * Under load a thread's wall time includes time it was descheduled, so the figure reported
 * first divides each thread's flops by its own CPU time (CLOCK_THREAD_CPUTIME_ID) and sums
 * them; the wall figure (flops of all threads / wall time of the slowest) is printed beside it.
 * The core-to-core round trip (two threads passing one cache line back and forth) tells where
 * the host put the vCPUs: a two-thread training step reads data the other thread wrote, and is
 * 10-30 % slower when that trip is long (docs/performance.md). */
#include <cpuid.h>
#include <immintrin.h>
#include <omp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "peak.h"

#define ITERS (1L << 24) /* x 16 accumulators x 16 lanes x 2 flops = 8.6 GFLOP per thread */

static double clk(clockid_t id)
{
    struct timespec t;
    clock_gettime(id, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

/* distinct starting values, so the compiler cannot merge the accumulators */
#define ACC16(T, INIT) T a0 = INIT(0), a1 = INIT(1), a2 = INIT(2), a3 = INIT(3), a4 = INIT(4), a5 = INIT(5), \
    a6 = INIT(6), a7 = INIT(7), a8 = INIT(8), a9 = INIT(9), a10 = INIT(10), a11 = INIT(11), a12 = INIT(12), \
    a13 = INIT(13), a14 = INIT(14), a15 = INIT(15)
#define STEP16(OP) do { a0 = OP(a0); a1 = OP(a1); a2 = OP(a2); a3 = OP(a3); a4 = OP(a4); a5 = OP(a5); \
    a6 = OP(a6); a7 = OP(a7); a8 = OP(a8); a9 = OP(a9); a10 = OP(a10); a11 = OP(a11); a12 = OP(a12); \
    a13 = OP(a13); a14 = OP(a14); a15 = OP(a15); } while (0)
#define SUM16 (a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11 + a12 + a13 + a14 + a15)

/* each returns the flops done; *sink keeps the result alive. One FMA kernel per vector width:
 * 16 chains of fmadd(a, x, y), the asm keeping the compiler from folding iterations. */
#define FMA_KERNEL(name, tgt, T, set1, fmadd, reg, lanes, hsum)                                         \
    __attribute__((target(tgt))) static double name(long n, float *sink)                               \
    {                                                                                                  \
        T x = set1(0.999999f), y = set1(1e-7f);                                                        \
        ACC16(T, I);                                                                                   \
        for (long i = 0; i < n; i++) {                                                                 \
            STEP16(OP);                                                                                \
            __asm__ volatile("" : "+" reg(a0), "+" reg(a8));                                           \
        }                                                                                              \
        *sink = hsum(SUM16);                                                                           \
        return (double)n * 16 * (lanes) * 2;                                                           \
    }

static inline __attribute__((target("avx2"))) float hsum256(__m256 v)
{
    float t[8];
    _mm256_storeu_ps(t, v);
    return t[0] + t[7];
}

#define I(i) _mm512_set1_ps(1.0f + (i) * 1e-3f)
#define OP(a) _mm512_fmadd_ps(a, x, y)
FMA_KERNEL(fma512, "avx512f", __m512, _mm512_set1_ps, _mm512_fmadd_ps, "v", 16, _mm512_reduce_add_ps)
#undef I
#undef OP
#define I(i) _mm256_set1_ps(1.0f + (i) * 1e-3f)
#define OP(a) _mm256_fmadd_ps(a, x, y)
FMA_KERNEL(fma256, "avx2,fma", __m256, _mm256_set1_ps, _mm256_fmadd_ps, "x", 8, hsum256)
#undef I
#undef OP

static double fma_scalar(long n, float *sink)
{
    #define I(i) (1.0f + (i) * 1e-3f)
    ACC16(float, I);
#undef I
#define OP(a) ((a) * 0.999999f + 1e-7f)
    for (long i = 0; i < n; i++) STEP16(OP);
#undef OP
    *sink = SUM16;
    return (double)n * 16 * 2;
}

/* vdpbf16ps: 16 lanes x 2 bf16 products added into fp32 = 64 flops per instruction */
__attribute__((target("avx512f,avx512bf16"))) static double dp512bf16(long n, float *sink)
{
    __m512bh x = (__m512bh)_mm512_set1_epi16(0x3f80), y = (__m512bh)_mm512_set1_epi16(0x3380); /* 1, ~6e-8 */
    #define I(i) _mm512_set1_ps((i) * 1e-3f)
    ACC16(__m512, I);
#undef I
#define OP(a) _mm512_dpbf16_ps(a, x, y)
    for (long i = 0; i < n; i++) {
        STEP16(OP);
        __asm__ volatile("" : "+v"(a0), "+v"(a8));
    }
#undef OP
    *sink = _mm512_reduce_add_ps(SUM16);
    return (double)n * 16 * 16 * 2 * 2;
}

/* vpdpbusd: 16 lanes x 4 int8 products added into int32 = 128 ops per instruction (the int8
 * scoring kernel's instruction, src/nn/gemm_int8.c) */
__attribute__((target("avx512f,avx512bw,avx512vnni"))) static double dp512i8(long n, float *sink)
{
    __m512i x = _mm512_set1_epi8(1), y = _mm512_set1_epi8(2);
    #define I(i) _mm512_set1_epi32(i)
    ACC16(__m512i, I);
#undef I
    /* in assembly: GCC 12 keeps _mm512_dpbusd_epi32's accumulators on the stack (gemm_int8.c) */
#define OP(a) ({ __m512i t_ = (a); __asm__("vpdpbusd %2, %1, %0" : "+v"(t_) : "v"(x), "v"(y)); t_; })
    for (long i = 0; i < n; i++) {
        STEP16(OP);
        __asm__ volatile("" : "+v"(a0), "+v"(a8));
    }
#undef OP
    __m512i s = _mm512_add_epi32(_mm512_add_epi32(_mm512_add_epi32(a0, a1), _mm512_add_epi32(a2, a3)),
                                 _mm512_add_epi32(_mm512_add_epi32(a4, a5), _mm512_add_epi32(a6, a7)));
    s = _mm512_add_epi32(s, _mm512_add_epi32(_mm512_add_epi32(_mm512_add_epi32(a8, a9), _mm512_add_epi32(a10, a11)),
                                             _mm512_add_epi32(_mm512_add_epi32(a12, a13), _mm512_add_epi32(a14, a15))));
    *sink = (float)_mm512_reduce_add_epi32(s);
    return (double)n * 16 * 16 * 4 * 2;
}

typedef double (*kern)(long, float *);

/* best of 3: sum over threads of flops / thread CPU time, and total flops / wall */
static void run(kern k, long n, int threads, double *cpu_gf, double *wall_gf)
{
    *cpu_gf = *wall_gf = 0;
    for (int rep = 0; rep < 3; rep++) {
        double rate = 0, flops = 0, w0 = 0, w1 = 0;
#pragma omp parallel num_threads(threads) reduction(+ : rate, flops)
        {
            float sink;
#pragma omp barrier
#pragma omp master
            w0 = clk(CLOCK_MONOTONIC);
            double c0 = clk(CLOCK_THREAD_CPUTIME_ID);
            double f = k(n, &sink);
            double c1 = clk(CLOCK_THREAD_CPUTIME_ID);
#pragma omp barrier
#pragma omp master
            w1 = clk(CLOCK_MONOTONIC);
            __asm__ volatile("" : : "r"(&sink) : "memory");
            rate += f / (c1 - c0);
            flops += f;
        }
        if (rate / 1e9 > *cpu_gf) *cpu_gf = rate / 1e9;
        if (flops / (w1 - w0) / 1e9 > *wall_gf) *wall_gf = flops / (w1 - w0) / 1e9;
    }
}

/* The core behind a family/model (a VM's brand string often hides it: "AMD EPYC"), where known. */
static const char *core_name(int vendor_amd, unsigned fam, unsigned model)
{
    if (vendor_amd && fam == 0x19)
        return (model >= 0x10 && model <= 0x1f) || (model >= 0x60 && model <= 0x7f) || (model >= 0xa0 && model <= 0xaf)
                   ? "Zen 4"
                   : "Zen 3";
    if (vendor_amd && fam == 0x1a) return "Zen 5";
    if (!vendor_amd && fam == 6) {
        if (model == 0x8f) return "Sapphire Rapids";
        if (model == 0xcf) return "Emerald Rapids";
        if (model == 0xad || model == 0xae) return "Granite Rapids";
        if (model == 0x6a || model == 0x6c) return "Ice Lake";
        if (model == 0x55) return "Skylake/Cascade Lake";
    }
    return NULL;
}

static void brand(char *out, size_t n)
{
    unsigned r[12] = {0}, a = 0, b = 0, c = 0, d = 0;
    char s[49] = "";
    if (__get_cpuid_max(0x80000000, NULL) >= 0x80000004) {
        for (unsigned i = 0; i < 3; i++) __get_cpuid(0x80000002 + i, &r[4 * i], &r[4 * i + 1], &r[4 * i + 2], &r[4 * i + 3]);
        memcpy(s, r, 48);
        s[48] = 0;
    }
    char *p = s;
    while (*p == ' ') p++;
    size_t l = strlen(p);
    while (l && p[l - 1] == ' ') p[--l] = 0;
    if (!l) p = "unknown CPU";
    if (!__get_cpuid(0, &a, &b, &c, &d)) {
        snprintf(out, n, "%s", p);
        return;
    }
    int amd = b == 0x68747541; /* "Auth"enticAMD */
    __get_cpuid(1, &a, &b, &c, &d);
    unsigned fam = (a >> 8) & 0xf, model = (a >> 4) & 0xf;
    if (fam == 0xf) fam += (a >> 20) & 0xff;
    if (fam == 0xf || fam == 6 || fam > 0xf) model |= ((a >> 16) & 0xf) << 4;
    const char *core = core_name(amd, fam, model);
    snprintf(out, n, "%s (%s%sfamily %u model %u)", p, core ? core : "", core ? ", " : "", fam, model);
}

double rf_peak_c2c(int threads)
{
    enum { TRIPS = 200000 };
    if (threads < 2) return 0;
    struct {
        _Alignas(64) atomic_int turn;
    } line;
    atomic_init(&line.turn, 0);
    double dt = 0;
    int ok = 0;
#pragma omp parallel num_threads(2)
    {
        if (omp_get_num_threads() == 2) {
            if (omp_get_thread_num() == 0) {
                double t0 = clk(CLOCK_MONOTONIC);
                for (int i = 0; i < TRIPS; i++) {
                    atomic_store_explicit(&line.turn, 2 * i + 1, memory_order_release);
                    while (atomic_load_explicit(&line.turn, memory_order_acquire) != 2 * i + 2) {}
                }
                dt = clk(CLOCK_MONOTONIC) - t0;
                ok = 1;
            } else {
                for (int i = 0; i < TRIPS; i++) {
                    while (atomic_load_explicit(&line.turn, memory_order_acquire) != 2 * i + 1) {}
                    atomic_store_explicit(&line.turn, 2 * i + 2, memory_order_release);
                }
            }
        }
    }
    return ok ? dt / TRIPS * 1e9 : 0;
}

void rf_peak_measure(int threads, rf_peak *out)
{
    memset(out, 0, sizeof *out);
    brand(out->cpu, sizeof out->cpu);
    out->threads = threads;
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) {
        out->isa = "avx512f";
        run(fma512, ITERS, threads, &out->fp32_gflops, &out->fp32_wall);
    } else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        out->isa = "avx2";
        run(fma256, ITERS, threads, &out->fp32_gflops, &out->fp32_wall);
    } else {
        out->isa = "scalar";
        run(fma_scalar, ITERS / 4, threads, &out->fp32_gflops, &out->fp32_wall);
    }
    if (__builtin_cpu_supports("avx512bf16"))
        run(dp512bf16, ITERS, threads, &out->bf16_gflops, &out->bf16_wall);
    if (__builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512bw"))
        run(dp512i8, ITERS, threads, &out->int8_gops, &out->int8_wall);
    out->c2c_ns = rf_peak_c2c(threads);
}
