/* bench_gemm.c - the reference setup's GEMM shapes, one by one, as a training step runs them
 * (rf_gemm; the weight gradients, A^T B, through rf_gemm_tn with their K split between the
 * threads): GFLOP/s per CPU second of each (load-robust on a shared machine) and per wall second,
 * beside the measured fp32 peak of the same threads (peak.c). docs/performance.md quotes it.
 * usage: bench_gemm [--threads N] [--reps N] */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cblas.h>

#include "../tools/blas_env.h"
#include "nn/ops.h"
#include "peak.h"

static double clk(clockid_t id)
{
    struct timespec t;
    clock_gettime(id, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

typedef struct {
    const char *what;
    int ta, tb, M, N, K, lda, ldb, ldc, times; /* times: calls per training step */
    float beta;
} shape;

/* One GEMM as the training step runs it. */
static void step_gemm(rf_kpart *kp, const shape *s, const float *A, const float *Bm, float *C)
{
    if (s->ta && !s->tb) rf_gemm_tn(kp, s->M, s->N, s->K, 1.0f, A, s->lda, Bm, s->ldb, s->beta, C, s->ldc);
    else rf_gemm(s->ta, s->tb, s->M, s->N, s->K, 1.0f, A, s->lda, Bm, s->ldb, s->beta, C, s->ldc);
}

int main(int argc, char **argv)
{
    rf_blas_env_setup(argv);
    int threads = 1, reps = 20;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: bench_gemm [--threads N] [--reps N]\n");
            return 1;
        }
    }
    omp_set_num_threads(threads);
    openblas_set_num_threads(threads);
    const int B = 2048, In = 256, KH0 = 256, H0 = 128, H1 = 64, K = 2;
    /* the towers of the reference setup (bench_train.c): layer 0 for both towers in one GEMM,
     * layer 1 per tower on strided column blocks */
    shape sh[] = {
        {"fwd  L0  Z0 = X W0        (NN)", 0, 0, B, KH0, In, In, KH0, KH0, 1, 0.0f},
        {"fwd  L1  Z1_k = O0_k W1_k (NN)", 0, 0, B, H1, H0, K * H0, H1, K * H1, K, 0.0f},
        {"bwd  L1  dW1_k = O0_k' dZ1 (TN)", 1, 0, H0, H1, B, K * H0, K * H1, H1, K, 1.0f},
        {"bwd  L1  dO0_k = dZ1 W1_k' (NT)", 0, 1, B, H0, H1, K * H1, H1, K * H0, K, 0.0f},
        {"bwd  L0  dX = dZ0 W0'     (NT)", 0, 1, B, In, KH0, KH0, KH0, In, 1, 0.0f},
        {"bwd  L0  dW0 = X' dZ0     (TN)", 1, 0, In, KH0, B, In, KH0, KH0, 1, 1.0f},
    };
    int ns = sizeof sh / sizeof *sh;
    rf_peak pk;
    rf_peak_measure(threads, &pk);
    printf("%s, %d thread(s), fp32 peak %.1f GFLOP/s per CPU second x threads (%.1f wall)\n", pk.cpu, threads,
           pk.fp32_gflops, pk.fp32_wall);
    printf("%-32s %13s %9s %9s %7s %10s\n", "shape", "M x N x K", "GF/cpu-s", "GF/wall", "%peak", "MFLOP/step");
    double tot_f = 0, tot_c = 0;
    for (int i = 0; i < ns; i++) {
        shape *s = &sh[i];
        size_t na = (size_t)(s->ta ? s->K : s->M) * s->lda, nb = (size_t)(s->tb ? s->N : s->K) * s->ldb,
               nc = (size_t)s->M * s->ldc;
        float *A = malloc(na * 4), *Bm = malloc(nb * 4), *C = malloc(nc * 4);
        for (size_t j = 0; j < na; j++) A[j] = (float)(j % 7) * 0.1f;
        for (size_t j = 0; j < nb; j++) Bm[j] = (float)(j % 5) * 0.1f;
        memset(C, 0, nc * 4);
        rf_kpart kp = {0};
        step_gemm(&kp, s, A, Bm, C); /* warm */
        double w0 = clk(CLOCK_MONOTONIC), c0 = clk(CLOCK_PROCESS_CPUTIME_ID);
        for (int r = 0; r < reps; r++) step_gemm(&kp, s, A, Bm, C);
        double w = clk(CLOCK_MONOTONIC) - w0, c = clk(CLOCK_PROCESS_CPUTIME_ID) - c0;
        double f = 2.0 * s->M * s->N * s->K * reps;
        double gc = f / (c / threads) / 1e9;
        printf("%-32s %4dx%3dx%4d %9.1f %9.1f %6.0f%% %9.1f\n", s->what, s->M, s->N, s->K, gc, f / w / 1e9,
               100 * gc / pk.fp32_gflops, 2.0 * s->M * s->N * s->K * s->times / 1e6);
        tot_f += f * s->times;
        tot_c += c / threads * s->times;
        rf_kpart_free(&kp);
        free(A);
        free(Bm);
        free(C);
    }
    printf("all GEMMs of a step: %.1f GFLOP/s per CPU second (%.0f%% of peak)\n", tot_f / tot_c / 1e9,
           100 * tot_f / tot_c / 1e9 / pk.fp32_gflops);
    return 0;
}
