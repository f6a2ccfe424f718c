/* peak.h - the machine's measured arithmetic limit, for bench_train (see peak.c). */
#ifndef RESFLOW_BENCH_PEAK_H
#define RESFLOW_BENCH_PEAK_H

typedef struct {
    char cpu[128];       /* cpuid brand string (what lscpu calls "Model name"), then its core and family/model */
    const char *isa;     /* the fp32 FMA kernel measured: "avx512f", "avx2" or "scalar" */
    int threads;         /* threads measured on, one per core used */
    double fp32_gflops;  /* sum over threads of flops / thread CPU time (load-robust) */
    double fp32_wall;    /* flops / wall time of the slowest thread (meaningful when quiet) */
    double bf16_gflops;  /* AVX512-BF16 vdpbf16ps, 0 when the CPU lacks it */
    double bf16_wall;
    double int8_gops;    /* AVX512-VNNI vpdpbusd (int8 products, an add and a multiply each = 2
                            ops), 0 when the CPU lacks it */
    double int8_wall;
    double c2c_ns;       /* a cache line's round trip between the first two threads (0: one
                            thread); on this project's 2-vCPU VMs 50-80 ns or 320-370 ns, as the
                            host places the two vCPUs near or far apart (docs/performance.md) */
} rf_peak;

/* Runs FMA loops with enough independent accumulators to fill the pipes on `threads` OpenMP
 * threads (about 0.2-0.4 s per precision, best of 3). */
void rf_peak_measure(int threads, rf_peak *out);
/* The core-to-core round trip alone (ns; 0 with one thread), 200k exchanges of one line. */
double rf_peak_c2c(int threads);

#endif
