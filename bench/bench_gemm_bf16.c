/* bench_gemm_bf16.c - the six tower GEMMs of the reference setup (batch 2048, input 256, towers
 * 2 x 128 -> 64): resflow's bf16 kernel (src/nn/gemm_bf16.c, packing included) against the fp32
 * path (rf_gemm), both as a training step runs them (the weight gradients, A^T B, with their K
 * split between the threads: rf_gemm_bf16_tn, rf_gemm_tn), and, in a build with DNNL=1, oneDNN's bf16 matmul (inputs already in bf16,
 * so its figure leaves out the conversion our kernel includes).
 *
 * Each figure is the best of --reps timings of --iters calls; "cpu" GFLOP/s is over the
 * process's CPU time (robust when other jobs share the cores), "wall" over elapsed time.
 * It first checks every kernel against a double-precision product of the bf16-rounded inputs.
 *
 * usage: bench_gemm_bf16 [--threads N] [--iters N] [--reps N]
 */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cblas.h>

#include "../tools/blas_env.h"
#include "nn/gemm_bf16.h"
#include "nn/ops.h"

#ifdef RF_WITH_DNNL
#include <oneapi/dnnl/dnnl.h>
#endif

typedef struct {
    const char *name;
    int ta, tb, M, N, K, lda, ldb, ldc;
    float beta;
} shape;

/* The calls of forward.c / backward.c for In = 256, K*H0 = 256, H0 = 128, H1 = 64, B = 2048. */
static const shape SHAPES[] = {
    {"fwd  l0  x.W0      ", 0, 0, 2048, 256, 256, 256, 256, 256, 0},
    {"fwd  l1  O0k.W1k   ", 0, 0, 2048, 64, 128, 256, 64, 128, 0},
    {"bwd  dW1k O0k^T.dZ ", 1, 0, 128, 64, 2048, 256, 128, 64, 1},
    {"bwd  dO0k dZ.W1k^T ", 0, 1, 2048, 128, 64, 128, 64, 256, 0},
    {"bwd  dx  dZ0.W0^T  ", 0, 1, 2048, 256, 256, 256, 256, 256, 0},
    {"bwd  dW0 x^T.dZ0   ", 1, 0, 256, 256, 2048, 256, 256, 256, 1},
};

/* seconds on a clock: CLOCK_MONOTONIC (wall) or CLOCK_PROCESS_CPUTIME_ID (all threads' CPU) */
static double secs(clockid_t c)
{
    struct timespec t;
    return clock_gettime(c, &t) ? 0 : t.tv_sec + t.tv_nsec * 1e-9;
}

static float bf16r(float x) /* round to nearest even bf16, as vcvtne2ps2bf16 */
{
    uint32_t u;
    memcpy(&u, &x, 4);
    u += 0x7fff + ((u >> 16) & 1);
    u &= 0xffff0000u;
    memcpy(&x, &u, 4);
    return x;
}

static double max_rel_err(const shape *s, const float *A, const float *B, const float *C0, const float *C)
{
    double worst = 0;
    for (int i = 0; i < s->M; i++)
        for (int j = 0; j < s->N; j++) {
            double r = s->beta * C0[(size_t)i * s->ldc + j], mag = fabs(r);
            for (int k = 0; k < s->K; k++) {
                double a = bf16r(s->ta ? A[(size_t)k * s->lda + i] : A[(size_t)i * s->lda + k]);
                double b = bf16r(s->tb ? B[(size_t)j * s->ldb + k] : B[(size_t)k * s->ldb + j]);
                r += a * b;
                mag += fabs(a * b);
            }
            double e = fabs(C[(size_t)i * s->ldc + j] - r) / (mag > 0 ? mag : 1);
            if (e > worst) worst = e;
        }
    return worst;
}

typedef struct {
    double cpu_gf, wall_gf;
} fig;

#define TIME(label, call)                                                                     \
    do {                                                                                      \
        double bc = 1e30, bw = 1e30;                                                          \
        for (int r = 0; r < reps; r++) {                                                      \
            double c0 = secs(CLOCK_PROCESS_CPUTIME_ID), w0 = secs(CLOCK_MONOTONIC);                                                   \
            for (int it = 0; it < iters; it++) { call; }                                      \
            double dc = secs(CLOCK_PROCESS_CPUTIME_ID) - c0, dw = secs(CLOCK_MONOTONIC) - w0;                                         \
            if (dc < bc) bc = dc;                                                             \
            if (dw < bw) bw = dw;                                                             \
        }                                                                                     \
        label.cpu_gf = flop * iters / bc / 1e9 * threads;                                     \
        label.wall_gf = flop * iters / bw / 1e9;                                              \
    } while (0)

int main(int argc, char **argv)
{
    rf_blas_env_setup(argv);
    int threads = 2, iters = 20, reps = 5;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--iters") && i + 1 < argc) iters = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: bench_gemm_bf16 [--threads N] [--iters N] [--reps N]\n");
            return 1;
        }
    }
    if (!rf_bf16_cpu_ok()) {
        fprintf(stderr, "bench_gemm_bf16: this CPU has no AVX512-BF16\n");
        return 2;
    }
    omp_set_num_threads(threads);
    openblas_set_num_threads(threads);
    size_t an = 0, bn = 0;
    for (size_t s = 0; s < sizeof SHAPES / sizeof *SHAPES; s++)
        rf_bf16_scratch_need(SHAPES[s].ta, SHAPES[s].tb, SHAPES[s].M, SHAPES[s].N, SHAPES[s].K, &an, &bn);
    rf_bf16_scratch *sc = rf_bf16_scratch_create(an, bn);
    size_t big = (size_t)2048 * 2048;
    float *A = malloc(big * 4), *B = malloc(big * 4), *C = malloc(big * 4), *C0 = malloc(big * 4);
    if (!sc || !A || !B || !C || !C0) return 3;
    srand(7);
    for (size_t i = 0; i < big; i++) {
        A[i] = (float)rand() / RAND_MAX - 0.5f;
        B[i] = (float)rand() / RAND_MAX - 0.5f;
        C0[i] = (float)rand() / RAND_MAX - 0.5f;
    }
    /* "cpu" GFLOP/s counts process CPU time: a thread's share, times the thread count, i.e. the
     * figure the team would reach if it had its cores to itself */
    printf("GFLOP/s (cpu | wall), %d thread%s, best of %d x %d calls\n", threads, threads > 1 ? "s" : "", reps, iters);
    printf("%-20s %5s %5s %5s  %17s  %17s  %17s  %9s\n", "gemm", "M", "N", "K", "fp32 rf_gemm", "resflow bf16",
           "onednn bf16", "bf16 err");
#ifdef RF_WITH_DNNL
    dnnl_engine_t eng;
    dnnl_stream_t stream;
    if (dnnl_engine_create(&eng, dnnl_cpu, 0) || dnnl_stream_create(&stream, eng, dnnl_stream_default_flags)) return 4;
    uint16_t *Ab = malloc(big * 2), *Bb = malloc(big * 2);
    for (size_t i = 0; i < big; i++) {
        float a = bf16r(A[i]), b = bf16r(B[i]);
        uint32_t ua, ub;
        memcpy(&ua, &a, 4);
        memcpy(&ub, &b, 4);
        Ab[i] = (uint16_t)(ua >> 16);
        Bb[i] = (uint16_t)(ub >> 16);
    }
#endif
    for (size_t si = 0; si < sizeof SHAPES / sizeof *SHAPES; si++) {
        const shape *s = &SHAPES[si];
        double flop = 2.0 * s->M * s->N * s->K;
        memcpy(C, C0, big * 4);
        rf_kpart kp = {0};
        int tn = s->ta && !s->tb;
#define OWN()                                                                                                     \
    (tn ? rf_gemm_bf16_tn(sc, &kp, s->M, s->N, s->K, 1.0f, A, s->lda, NULL, B, s->ldb, NULL, s->beta, C, s->ldc)   \
        : rf_gemm_bf16(sc, s->ta, s->tb, s->M, s->N, s->K, 1.0f, A, s->lda, B, s->ldb, s->beta, C, s->ldc))
#define F32()                                                                                                     \
    (tn ? rf_gemm_tn(&kp, s->M, s->N, s->K, 1.0f, A, s->lda, B, s->ldb, s->beta, C, s->ldc)                        \
        : rf_gemm(s->ta, s->tb, s->M, s->N, s->K, 1.0f, A, s->lda, B, s->ldb, s->beta, C, s->ldc))
        OWN();
        double err = max_rel_err(s, A, B, C0, C);
        fig f32, own, dn = {0, 0};
        TIME(f32, F32());
        TIME(own, OWN());
#ifdef RF_WITH_DNNL
        dnnl_memory_desc_t amd, bmd, cmd;
        dnnl_dims_t ad = {s->M, s->K}, bd = {s->K, s->N}, cd = {s->M, s->N};
        dnnl_dims_t as = {s->ta ? 1 : s->lda, s->ta ? s->lda : 1}, bs = {s->tb ? 1 : s->ldb, s->tb ? s->ldb : 1},
                    cs = {s->ldc, 1};
        dnnl_memory_desc_init_by_strides(&amd, 2, ad, dnnl_bf16, as);
        dnnl_memory_desc_init_by_strides(&bmd, 2, bd, dnnl_bf16, bs);
        dnnl_memory_desc_init_by_strides(&cmd, 2, cd, dnnl_f32, cs);
        dnnl_matmul_desc_t md;
        dnnl_primitive_attr_t attr;
        dnnl_post_ops_t po;
        dnnl_primitive_attr_create(&attr);
        dnnl_post_ops_create(&po);
        if (s->beta != 0) dnnl_post_ops_append_sum(po, s->beta);
        dnnl_primitive_attr_set_post_ops(attr, po);
        dnnl_primitive_desc_t pd;
        dnnl_primitive_t prim;
        dnnl_memory_t am, bm, cm;
        if (dnnl_matmul_desc_init(&md, &amd, &bmd, NULL, &cmd) ||
            dnnl_primitive_desc_create(&pd, &md, attr, eng, NULL) || dnnl_primitive_create(&prim, pd) ||
            dnnl_memory_create(&am, &amd, eng, Ab) || dnnl_memory_create(&bm, &bmd, eng, Bb) ||
            dnnl_memory_create(&cm, &cmd, eng, C)) {
            fprintf(stderr, "oneDNN: cannot build the matmul\n");
            return 4;
        }
        const char *impl = NULL;
        dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl);
        dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, am}, {DNNL_ARG_WEIGHTS, bm}, {DNNL_ARG_DST, cm}};
        TIME(dn, dnnl_primitive_execute(prim, stream, 3, args); dnnl_stream_wait(stream));
        if (si == 0) fprintf(stderr, "oneDNN implementation: %s\n", impl ? impl : "?");
        dnnl_primitive_destroy(prim);
        dnnl_primitive_desc_destroy(pd);
        dnnl_post_ops_destroy(po);
        dnnl_primitive_attr_destroy(attr);
        dnnl_memory_destroy(am);
        dnnl_memory_destroy(bm);
        dnnl_memory_destroy(cm);
#endif
        printf("%-20s %5d %5d %5d  %7.1f | %7.1f  %7.1f | %7.1f  %7.1f | %7.1f  %9.2e\n", s->name, s->M, s->N, s->K,
               f32.cpu_gf, f32.wall_gf, own.cpu_gf, own.wall_gf, dn.cpu_gf, dn.wall_gf, err);
        rf_kpart_free(&kp);
#undef OWN
#undef F32
    }
    rf_bf16_scratch_free(sc);
    free(A);
    free(B);
    free(C);
    free(C0);
    return 0;
}
