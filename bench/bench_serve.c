/* bench_serve.c - top-K retrieval speed (src/serve/topk.c) against FAISS on the same vectors, in
 * the same run: top-k of n items x d by inner product, exact fp32 and quantized (8-bit codes +
 * exact re-rank of a shortlist), vs FAISS IndexFlatIP and IndexScalarQuantizer QT_8bit
 * (bench/faiss_bench.py, run with /usr/bin/python3 on the file this program writes).
 * Two data sets: "random" (i.i.d. N(0,1) items and queries) and "clustered" (1000 Gaussian
 * centres, items and queries = a centre + noise of 0.5 per dimension).
 * Figures: latency p50/p99 of single queries (one at a time, --threads threads), throughput of a
 * batch of --batch queries, recall@k against our exact fp32 search; our exact search is checked
 * against FAISS flat's answers (their overlap). Ratios: FAISS time / ours.
 * Usage: bench_serve [--n N] [--d D] [--k K] [--single Q] [--batch B] [--threads T]
 *                    [--shortlist S] [--dir DIR] [--no-faiss] [--kind random|clustered|both]
 *                    [--fused-only | --no-fused]
 * The bf16 copy (vdpbf16ps) is measured beside the 8-bit one, each with and without the exact
 * re-rank. Fused: K = 2 and 3 tasks at n items (random, 10 single queries, batches of 16), ranked
 * by a fusion formula through the per-item formula (float sigmoid + rf_fusion_apply in double)
 * or the fast block path (topk_fuse.c), exact and 8-bit + re-rank; recall against the exact
 * per-item search.
 * `make bench-serve` runs it with 1,000,000 x 64, top-100, 2 threads. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/rng.h"
#include "resflow/spec.h" /* RF_MAX_TASKS */
#include "serve/topk.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static double cpu_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmpd(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(double *x, int n, double p)
{
    qsort(x, (size_t)n, sizeof *x, cmpd);
    int i = (int)ceil(p / 100.0 * n) - 1;
    return x[i < 0 ? 0 : i >= n ? n - 1 : i];
}

static float gauss(rf_rng *r)
{
    double u = rf_rng_uniform(r), v = rf_rng_uniform(r);
    return (float)(sqrt(-2.0 * log(u > 1e-300 ? u : 1e-300)) * cos(6.283185307179586 * v));
}

static void gen(int clustered, size_t n, int d, int nq, float *x, float *qv)
{
    int C = 1000;
    float *cent = malloc((size_t)C * d * sizeof *cent);
    rf_rng r;
    rf_rng_seed(&r, clustered ? 7 : 3);
    for (size_t i = 0; i < (size_t)C * d; i++) cent[i] = gauss(&r);
    size_t total = n + (size_t)nq;
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < total; i++) {
        rf_rng ri;
        rf_rng_seed_stream(&ri, clustered ? 11 : 13, i);
        float *o = i < n ? x + i * d : qv + (i - n) * d;
        const float *c = cent + rf_rng_below(&ri, (uint64_t)C) * d;
        for (int j = 0; j < d; j++) o[j] = clustered ? c[j] + 0.5f * gauss(&ri) : gauss(&ri);
    }
    free(cent);
}

typedef struct {
    double p50, p99, qps, recall, cpu;
} figures;

/* the share of a's k ids per query found among b's */
static double overlap(const uint32_t *a, const uint32_t *b, int nq, int k)
{
    double hit = 0;
    for (int q = 0; q < nq; q++)
        for (int i = 0; i < k; i++)
            for (int j = 0; j < k; j++)
                if (a[(size_t)q * k + i] == b[(size_t)q * k + j]) {
                    hit++;
                    break;
                }
    return hit / ((double)nq * k);
}

/* the figures of one method; ids of the exact search in gt (nq, k) when exact */
static figures measure_fn(const rf_tk_items *it, const float *qv, int nq, int single, int batch, int k, int threads,
                          int quantized, int shortlist, uint32_t *gt, int set_gt, rf_tk_score_fn score,
                          rf_tk_score_fn approx, void *ud, rf_tk_scratch *s1, rf_tk_scratch *sb)
{
    figures f = {0};
    rf_tk_opts o = {.k = k, .quantized = quantized, .shortlist = shortlist, .threads = threads, .score = score,
                    .approx = approx, .ud = ud};
    uint32_t *idx = malloc((size_t)nq * k * sizeof *idx);
    float *sc = malloc((size_t)nq * k * sizeof *sc);
    int *nout = malloc((size_t)nq * sizeof *nout);
    double *lat = malloc((size_t)single * sizeof *lat);
    rf_error e;
    int d = it->d * it->K;
    double c0 = cpu_now();
    for (int q = 0; q < single; q++) {
        double t0 = now();
        if (rf_tk_search(it, qv + (size_t)q * d, 1, &o, s1, idx + (size_t)q * k, sc, NULL, nout, &e)) {
            fprintf(stderr, "bench_serve: %s\n", e.msg);
            exit(1);
        }
        lat[q] = (now() - t0) * 1e3;
    }
    f.cpu = (cpu_now() - c0) * 1e3 / single;
    f.p50 = pct(lat, single, 50);
    f.p99 = pct(lat, single, 99);
    double t0 = now();
    for (int q0 = 0; q0 < nq; q0 += batch) {
        int nb = nq - q0 < batch ? nq - q0 : batch;
        if (rf_tk_search(it, qv + (size_t)q0 * d, nb, &o, sb, idx + (size_t)q0 * k, sc + (size_t)q0 * k, NULL,
                         nout + q0, &e)) {
            fprintf(stderr, "bench_serve: %s\n", e.msg);
            exit(1);
        }
    }
    f.qps = nq / (now() - t0);
    if (set_gt) memcpy(gt, idx, (size_t)nq * k * sizeof *gt);
    f.recall = overlap(idx, gt, nq, k);
    free(idx), free(sc), free(nout), free(lat);
    return f;
}

static figures measure(const rf_tk_items *it, const float *qv, int nq, int single, int batch, int k, int threads,
                       int quantized, int shortlist, uint32_t *gt, rf_tk_scratch *s1, rf_tk_scratch *sb)
{
    return measure_fn(it, qv, nq, single, batch, k, threads, quantized, shortlist, gt, !quantized, NULL, NULL, NULL, s1,
                      sb);
}

/* ---- the fused multi-task case: K tasks, p_t = sigmoid(dot_t + vb_t), conditionals
 * t_j|t_{j-1} = p_j / max(p_{j-1}, 1e-30), ranked by a fusion formula ------------------------- */

typedef struct {
    int K, per;
    rf_fusion f;
    float *P, *C; /* per thread: (per, K) each */
    rf_tk_fuse plan;
    float *work;  /* per thread: (per, K + 1) */
} fused;

static void fz_cols(int K, char names[][32], const char **np, rf_tk_fuse_col *cols)
{
    for (int t = 0; t < K; t++) {
        snprintf(names[t], 32, "t%d", t);
        cols[t] = (rf_tk_fuse_col){t, -1};
        if (t) {
            snprintf(names[K + t - 1], 32, "t%d|t%d", t, t - 1);
            cols[K + t - 1] = (rf_tk_fuse_col){t, t - 1};
        }
    }
    for (int j = 0; j < 2 * K - 1; j++) np[j] = names[j];
}

/* the per-item formula: float probabilities, rf_fusion_apply in double (what rf_topk did per item) */
static void fz_exact(void *ud, int q, int thread, const float *dots, const float *vb, int n, float *out)
{
    (void)q;
    fused *z = ud;
    int K = z->K;
    float *P = z->P + (size_t)thread * z->per * K, *C = z->C + (size_t)thread * z->per * K;
    for (int i = 0; i < n; i++)
        for (int t = 0; t < K; t++) {
            P[i * K + t] = 1.0f / (1.0f + expf(-(dots[i * K + t] + (vb ? vb[i * K + t] : 0))));
            C[i * K + t] = t ? P[i * K + t] / fmaxf(P[i * K + t - 1], 1e-30f) : P[i * K];
        }
    char names[2 * RF_MAX_TASKS][32];
    const char *np[2 * RF_MAX_TASKS];
    rf_tk_fuse_col cols[2 * RF_MAX_TASKS];
    fz_cols(K, names, np, cols);
    rf_score_col sc[2 * RF_MAX_TASKS];
    for (int t = 0; t < K; t++) sc[t] = (rf_score_col){np[t], P + t, (size_t)K};
    for (int t = 1; t < K; t++) sc[K + t - 1] = (rf_score_col){np[K + t - 1], C + t, (size_t)K};
    rf_error e;
    if (rf_fusion_apply(&z->f, sc, 2 * K - 1, (size_t)n, out, &e)) {
        fprintf(stderr, "bench_serve: %s\n", e.msg);
        exit(1);
    }
}

static void fz_fast(void *ud, int q, int thread, const float *dots, const float *vb, int n, float *out)
{
    (void)q;
    fused *z = ud;
    rf_tk_fuse_block(&z->plan, NULL, dots, vb, n, z->work + (size_t)thread * z->per * (z->K + 1), out);
}

static void bench_fused(size_t n, int d, int k, int K, const char *spec, int single, int batch, int threads, int sl)
{
    int nq = batch > single ? batch : single;
    float *x = malloc((n + (size_t)nq) * K * d * sizeof *x), *qv = x + n * K * d;
    rf_rng r;
    rf_rng_seed(&r, 17 + (uint64_t)K);
    for (size_t i = 0; i < (n + (size_t)nq) * K * d; i++) x[i] = 0.35f * gauss(&r);
    int dq = rf_tk_dq(d);
    float *qa = malloc((size_t)K * dq * sizeof *qa), *qb = malloc((size_t)K * dq * sizeof *qb);
    uint8_t *codes = malloc(rf_tk_codes_bytes(n, K, d));
    rf_tk_quantize(n, K, d, x, qa, qb, codes, threads);
    rf_tk_items it = {n, K, d, x, NULL, dq, qa, qb, codes, NULL};
    fused z = {.K = K, .per = sl > RF_TK_BLOCK ? sl : RF_TK_BLOCK};
    rf_error e;
    char names[2 * RF_MAX_TASKS][32];
    const char *np[2 * RF_MAX_TASKS];
    rf_tk_fuse_col cols[2 * RF_MAX_TASKS];
    fz_cols(K, names, np, cols);
    if (rf_fusion_parse(spec, &z.f, &e) || rf_tk_fuse_plan(&z.plan, K, &z.f, np, cols, 2 * K - 1, &e)) {
        fprintf(stderr, "bench_serve: %s\n", e.msg);
        exit(1);
    }
    size_t per = (size_t)threads * z.per * K;
    z.P = malloc(per * sizeof *z.P), z.C = malloc(per * sizeof *z.C), z.work = malloc(per / K * (K + 1) * sizeof *z.work);
    rf_tk_scratch *s1 = rf_tk_scratch_create(K, d, 1, k, sl, threads);
    rf_tk_scratch *sb = rf_tk_scratch_create(K, d, batch, k, sl, threads);
    uint32_t *gt = malloc((size_t)nq * k * sizeof *gt);
    figures f[4];
    f[0] = measure_fn(&it, qv, nq, single, batch, k, threads, 0, 0, gt, 1, fz_exact, NULL, &z, s1, sb);
    f[1] = measure_fn(&it, qv, nq, single, batch, k, threads, 0, 0, gt, 0, fz_exact, fz_fast, &z, s1, sb);
    f[2] = measure_fn(&it, qv, nq, single, batch, k, threads, RF_TK_INT8, sl, gt, 0, fz_exact, NULL, &z, s1, sb);
    f[3] = measure_fn(&it, qv, nq, single, batch, k, threads, RF_TK_INT8, sl, gt, 0, fz_exact, fz_fast, &z, s1, sb);
    const char *nm[4] = {"exact, per-item formula", "exact, fast fused", "int8+rerank, per-item", "int8+rerank, fast"};
    printf("  [fused K=%d %s] %-24s %9s %9s %11s %9s %11s\n", K, spec, "method", "p50 ms", "p99 ms", "batch q/s",
           "recall", "cpu ms/q");
    for (int m = 0; m < 4; m++)
        printf("  [fused K=%d %s] %-24s %9.3f %9.3f %11.1f %9.4f %11.3f\n", K, spec, nm[m], f[m].p50, f[m].p99, f[m].qps,
               f[m].recall, f[m].cpu);
    printf("  [fused K=%d] fast / per-item CPU per query: exact %.1fx, int8+rerank %.1fx faster\n", K,
           f[0].cpu / f[1].cpu, f[2].cpu / f[3].cpu);
    fflush(stdout);
    rf_tk_scratch_free(s1), rf_tk_scratch_free(sb);
    free(gt), free(z.P), free(z.C), free(z.work), free(qa), free(qb), free(codes), free(x);
}

int main(int argc, char **argv)
{
    size_t n = 1000000;
    int d = 64, k = 100, single = 50, batch = 128, threads = 2, shortlist = 0, faiss = 1, fused_only = 0, no_fused = 0;
    const char *dir = "/tmp", *kinds = "both";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--n") && i + 1 < argc) n = (size_t)strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--d") && i + 1 < argc) d = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--k") && i + 1 < argc) k = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--single") && i + 1 < argc) single = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--batch") && i + 1 < argc) batch = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--shortlist") && i + 1 < argc) shortlist = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--dir") && i + 1 < argc) dir = argv[++i];
        else if (!strcmp(argv[i], "--kind") && i + 1 < argc) kinds = argv[++i];
        else if (!strcmp(argv[i], "--no-faiss")) faiss = 0;
        else if (!strcmp(argv[i], "--fused-only")) fused_only = 1;
        else if (!strcmp(argv[i], "--no-fused")) no_fused = 1;
        else {
            fprintf(stderr, "usage: bench_serve [--n N] [--d D] [--k K] [--single Q] [--batch B] [--threads T]\n"
                            "                   [--shortlist S] [--dir DIR] [--no-faiss] [--kind random|clustered|both]\n"
                            "                   [--fused-only | --no-fused]\n");
            return 1;
        }
    }
    if (n < 1 || d < 1 || k < 1 || single < 1 || batch < 1 || threads < 1) {
        fprintf(stderr, "bench_serve: bad arguments\n");
        return 1;
    }
    omp_set_num_threads(threads);
    int nq = batch > single ? batch : single;
    printf("bench_serve: top-%d of %zu x %d by inner product, %d threads, %d single queries, batches of %d\n", k, n,
           d, threads, single, batch);
    fflush(stdout);
    for (int clustered = 0; clustered < 2 && !fused_only; clustered++) {
        const char *kind = clustered ? "clustered" : "random";
        if (strcmp(kinds, "both") && strcmp(kinds, kind)) continue;
        float *x = malloc((n * d + (size_t)nq * d) * sizeof *x), *qv = x + n * d;
        if (!x) {
            fprintf(stderr, "bench_serve: out of memory\n");
            return 5;
        }
        gen(clustered, n, d, nq, x, qv);
        char path[1024], cmd[1400];
        snprintf(path, sizeof path, "%s/resflow_bench_serve_%s.f32", dir, kind);
        double ff[2][6] = {{0}};
        int have_faiss = 0;
        uint32_t *flat = NULL;
        if (faiss) {
            FILE *fp = fopen(path, "wb");
            int32_t hdr[3] = {(int32_t)n, d, nq};
            if (!fp || fwrite(hdr, 4, 3, fp) != 3 || fwrite(x, sizeof *x, n * d + (size_t)nq * d, fp) != n * d + (size_t)nq * d ||
                fclose(fp)) {
                fprintf(stderr, "bench_serve: cannot write %s\n", path);
                return 3;
            }
            snprintf(cmd, sizeof cmd, "/usr/bin/python3 bench/faiss_bench.py %s %d %d %d", path, k, threads, single);
            FILE *pp = popen(cmd, "r");
            char line[512];
            while (pp && fgets(line, sizeof line, pp)) {
                char m[32], fig[32];
                double v;
                if (sscanf(line, "faiss %31s %31s %lf", m, fig, &v) == 3) {
                    int mi = !strcmp(m, "sq8");
                    int fi = !strcmp(fig, "p50_ms") ? 0 : !strcmp(fig, "p99_ms") ? 1 : !strcmp(fig, "batch_qps") ? 2
                           : !strcmp(fig, "recall") ? 3 : !strcmp(fig, "cpu_ms") ? 4 : 5;
                    ff[mi][fi] = v;
                    have_faiss = 1;
                }
                printf("  [%s] %s", kind, line);
            }
            if (!pp || pclose(pp)) {
                fprintf(stderr, "bench_serve: '%s' failed (python3-faiss missing? --no-faiss skips it)\n", cmd);
                have_faiss = 0;
            }
            char fp2[1100];
            snprintf(fp2, sizeof fp2, "%s.flat_ids", path);
            FILE *fi = have_faiss ? fopen(fp2, "rb") : NULL;
            if (fi) {
                int64_t *t = malloc((size_t)nq * k * sizeof *t);
                flat = malloc((size_t)nq * k * sizeof *flat);
                if (fread(t, sizeof *t, (size_t)nq * k, fi) == (size_t)nq * k)
                    for (size_t j = 0; j < (size_t)nq * k; j++) flat[j] = (uint32_t)t[j];
                else
                    free(flat), flat = NULL;
                free(t);
                fclose(fi);
            }
            remove(fp2);
            remove(path);
        }
        double t0 = now();
        int dq = rf_tk_dq(d);
        float *qa = malloc((size_t)dq * sizeof *qa), *qb = malloc((size_t)dq * sizeof *qb);
        uint8_t *codes = malloc(rf_tk_codes_bytes(n, 1, d));
        uint16_t *bf = malloc(rf_tk_bf16_bytes(n, 1, d));
        rf_tk_quantize(n, 1, d, x, qa, qb, codes, threads);
        double tq = now() - t0;
        rf_tk_to_bf16(n, 1, d, x, bf, threads);
        rf_tk_items it = {n, 1, d, x, NULL, dq, qa, qb, codes, bf};
        int sl = shortlist > 0 ? shortlist : (10 * k > 1000 ? 10 * k : 1000);
        rf_tk_scratch *s1 = rf_tk_scratch_create(1, d, 1, k, sl, threads);
        rf_tk_scratch *sb = rf_tk_scratch_create(1, d, batch, k, sl, threads);
        uint32_t *gt = malloc((size_t)nq * k * sizeof *gt);
        figures fe = measure(&it, qv, nq, single, batch, k, threads, 0, 0, gt, s1, sb);
        /* the compact copies: 8-bit and bf16, each with the exact re-rank of the shortlist and
         * without it (shortlist = k: the approximate top-k, its recall before the re-rank) */
        figures fq[2][2];
        for (int m = 0; m < 2; m++)
            for (int rr = 0; rr < 2; rr++)
                fq[m][rr] = measure(&it, qv, nq, single, batch, k, threads, m ? RF_TK_BF16 : RF_TK_INT8, rr ? sl : k, gt,
                                    s1, sb);
        if (flat)
            printf("  [%s] our exact top-%d vs FAISS flat's: overlap %.4f\n", kind, k, overlap(gt, flat, nq, k));
        printf("  [%s] quantizing %zu x %d: %.2f s\n", kind, n, d, tq);
        printf("  [%s] %-24s %9s %9s %11s %9s %11s\n", kind, "method", "p50 ms", "p99 ms", "batch q/s", "recall",
               "cpu ms/q");
        printf("  [%s] %-24s %9.3f %9.3f %11.1f %9.4f %11.3f\n", kind, "resflow exact fp32", fe.p50, fe.p99, fe.qps,
               fe.recall, fe.cpu);
        figures fqm = fq[0][1];
        for (int m = 0; m < 2; m++)
            for (int rr = 1; rr >= 0; rr--) {
                char nm[64];
                if (rr) snprintf(nm, sizeof nm, "resflow %s+rerank%d", m ? "bf16" : "int8", sl);
                else snprintf(nm, sizeof nm, "resflow %s, no rerank", m ? "bf16" : "int8");
                figures g = fq[m][rr];
                printf("  [%s] %-24s %9.3f %9.3f %11.1f %9.4f %11.3f\n", kind, nm, g.p50, g.p99, g.qps, g.recall, g.cpu);
            }
        if (have_faiss) {
            printf("  [%s] %-24s %9.3f %9.3f %11.1f %9.4f %11.3f\n", kind, "faiss IndexFlatIP", ff[0][0], ff[0][1], ff[0][2],
                   ff[0][3], ff[0][4]);
            printf("  [%s] %-24s %9.3f %9.3f %11.1f %9.4f %11.3f\n", kind, "faiss SQ8", ff[1][0], ff[1][1], ff[1][2],
                   ff[1][3], ff[1][4]);
            printf("  [%s] ratios (faiss / resflow): flat/exact p50 %.1fx, batch %.1fx; SQ8/quantized p50 %.1fx, "
                   "batch %.1fx; flat/quantized p50 %.1fx\n",
                   kind, ff[0][0] / fe.p50, fe.qps / ff[0][2], ff[1][0] / fqm.p50, fqm.qps / ff[1][2], ff[0][0] / fqm.p50);
        }
        fflush(stdout);
        rf_tk_scratch_free(s1), rf_tk_scratch_free(sb);
        free(gt), free(flat), free(qa), free(qb), free(codes), free(bf), free(x);
    }
    if (!no_fused) {
        int sl = shortlist > 0 ? shortlist : (10 * k > 1000 ? 10 * k : 1000);
        int fs = single < 10 ? single : 10, fb = batch < 16 ? batch : 16;
        bench_fused(n, d, k, 2, "mul:t0=0.9,t1|t0=1.1", fs, fb, threads, sl);
        bench_fused(n, d, k, 3, "add:t0=1,t1|t0=2,t2=0.5", fs, fb, threads, sl);
    }
    return 0;
}
