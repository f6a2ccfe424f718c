/* bench_train.c - training and inference throughput of the C engine on the reference setup.
 *
 * Reference setup (issue #2): 16 categorical fields, embedding 16, ~250k embedding rows in all
 * (16 fields x 15625 ids), towers 256(input)-128-64-1 per task, 2 tasks (ResFlow, links on every
 * layer and the logit), batch 2048. Ids are drawn uniformly from a fixed seed; labels with
 * 5% / 0.5% rates. The same data is written for the PyTorch reference (bench/torch_ref.py)
 * when --dump DIR is given, so both sides train on identical batches.
 *
 * Any model.type works (--model); the zoo models use resflow's default zoo sizes (experts and
 * bottom 256-128, 4 experts; PLE 1 specific + 2 shared experts per level) with the same towers.
 *
 * usage: bench_train [--model TYPE] [--rows N] [--steps N] [--threads N]
 *                    [--hidden 128,64] [--precision fp32|bf16|int8] [--dump DIR] [--json]
 *        bench_train --peak [--threads N] [--json]
 *        bench_train --c2c [--threads N]
 * Prints samples/s for training (forward+backward+Adam) and inference (rf_predict over the
 * rows, the path `resflow predict` takes), GFLOP/s of the dense part, and the peak RSS. Each
 * rate comes twice: per wall second, and per CPU second x threads (CLOCK_PROCESS_CPUTIME_ID;
 * load-robust on a shared machine, equal to the wall figure on a quiet one). --peak measures
 * the machine's fp32 and bf16 limit on the threads used (peak.c); bench/run.sh prints each
 * model's GFLOP/s as a share of it, and --c2c the core-to-core round trip alone (ns; where the
 * host put the vCPUs, peak.h) between its runs. --precision sets train.precision and the scoring's precision
 * (fp32 is the default and sets nothing); int8 is a scoring precision only: training in fp32,
 * inference in int8.
 */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <cblas.h>

#include "../tools/blas_env.h"
#include "peak.h"
#include "resflow/config.h"
#include "resflow/optim.h"
#include "resflow/train.h"
#include "bench_data.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static double cpu_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    rf_blas_env_setup(argv);
    const char *model = "resflow", *dump = NULL, *hidden = "128,64", *precision = "fp32", *only = "";
    long rows = 262144, steps = 60;
    int threads = 2, json = 0, peak = 0, F = 16, E = 16, B = 2048;
    uint32_t vocab = 15625;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--model") && i + 1 < argc) model = argv[++i];
        else if (!strcmp(argv[i], "--rows") && i + 1 < argc) rows = atol(argv[++i]);
        else if (!strcmp(argv[i], "--steps") && i + 1 < argc) steps = atol(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--hidden") && i + 1 < argc) hidden = argv[++i];
        else if (!strcmp(argv[i], "--dump") && i + 1 < argc) dump = argv[++i];
        else if (!strcmp(argv[i], "--precision") && i + 1 < argc) precision = argv[++i];
        else if (!strcmp(argv[i], "--peak")) peak = 1;
        else if (!strcmp(argv[i], "--c2c")) peak = 2;
        else if (!strcmp(argv[i], "--only") && i + 1 < argc) only = argv[++i]; /* for profiling */
        else if (!strcmp(argv[i], "--json")) json = 1;
        else {
            fprintf(stderr, "usage: bench_train [--model M] [--rows N] [--steps N] [--threads N] "
                            "[--hidden LIST] [--precision fp32|bf16|int8] [--dump DIR] [--json] [--only train|infer]\n"
                            "       bench_train --peak [--threads N] [--json]\n"
                            "       bench_train --c2c [--threads N]\n");
            return 1;
        }
    }
    omp_set_num_threads(threads);
    openblas_set_num_threads(threads);
    if (peak == 2) { /* where the host put the vCPUs, between two runs (bench/run.sh) */
        printf("%.0f\n", rf_peak_c2c(threads));
        return 0;
    }
    if (peak) {
        rf_peak pk;
        rf_peak_measure(threads, &pk);
        if (json)
            printf("{\"cpu\": \"%s\", \"isa\": \"%s\", \"threads\": %d, \"fp32_gflops\": %.1f, "
                   "\"fp32_wall_gflops\": %.1f, \"bf16_gflops\": %.1f, \"bf16_wall_gflops\": %.1f, "
                   "\"int8_gops\": %.1f, \"int8_wall_gops\": %.1f, \"c2c_ns\": %.1f}\n",
                   pk.cpu, pk.isa, threads, pk.fp32_gflops, pk.fp32_wall, pk.bf16_gflops, pk.bf16_wall, pk.int8_gops,
                   pk.int8_wall, pk.c2c_ns);
        else
            printf("%s, %d threads: fp32 peak %.1f GFLOP/s (%s FMA; %.1f per wall second), bf16 peak %.1f "
                   "GFLOP/s (%s; %.1f per wall second), int8 peak %.1f GOP/s (%s; %.1f per wall second); "
                   "core-to-core round trip %.0f ns\n",
                   pk.cpu, threads, pk.fp32_gflops, pk.isa, pk.fp32_wall, pk.bf16_gflops,
                   pk.bf16_gflops > 0 ? "vdpbf16ps" : "no AVX512-BF16", pk.bf16_wall, pk.int8_gops,
                   pk.int8_gops > 0 ? "vpdpbusd" : "no AVX512-VNNI", pk.int8_wall, pk.c2c_ns);
        return 0;
    }

    rf_dataset *ds = bench_ref_data(rows, F, vocab, 0.05, 0.05);
    if (!ds) return 5;
    if (dump) {
        char p[1024];
        snprintf(p, sizeof p, "%s/bench_ids.bin", dump);
        FILE *fp = fopen(p, "wb");
        if (!fp || fwrite(ds->cat, sizeof(uint32_t), (size_t)rows * F, fp) != (size_t)rows * F) return 3;
        fclose(fp);
        snprintf(p, sizeof p, "%s/bench_labels.bin", dump);
        fp = fopen(p, "wb");
        if (!fp || fwrite(ds->labels, sizeof(float), (size_t)rows * 2, fp) != (size_t)rows * 2) return 3;
        fclose(fp);
    }

    rf_config cfg;
    rf_config_default(&cfg);
    char set[256];
    snprintf(set, sizeof set, "model.type=%s", model);
    rf_error e;
    if (rf_config_set(&cfg, set, &e)) return 1;
    snprintf(set, sizeof set, "model.hidden=%s", hidden);
    if (rf_config_set(&cfg, set, &e)) return 1;
    int int8 = !strcmp(precision, "int8"); /* scoring only: the training runs in fp32 */
    if (strcmp(precision, "fp32") != 0 && !int8) { /* the one place a precision enters the benchmark */
        snprintf(set, sizeof set, "train.precision=%s", precision);
        if (rf_config_set(&cfg, set, &e)) {
            fprintf(stderr, "bench_train: --precision %s: %s\n", precision, e.msg);
            return 1;
        }
    }
    cfg.model.emb_dim = E;
    cfg.train.batch_size = B;
    rf_model *m = NULL;
    if (rf_config_create_model(&cfg, F, ds->fields, 0, &m, &e)) {
        fprintf(stderr, "%s\n", e.msg);
        return 1;
    }
    rf_workspace *ws = rf_workspace_create(m, B);
    if (!ws || rf_ws_set_precision(ws, m, (rf_precision)cfg.train.precision, &e)) { /* as rf_train does */
        fprintf(stderr, "bench_train: %s\n", ws ? e.msg : "out of memory");
        return 1;
    }
    rf_optimizer *opt = rf_adam_create(m, &cfg.train);
    rf_grads *grads = rf_grads_create(m);
    size_t *perm = malloc(rows * sizeof *perm);
    for (long i = 0; i < rows; i++) perm[i] = (size_t)i;
    int lc[2] = {0, 1};
    long nb = rows / B, warm = 5;
    double t0 = 0, c0 = 0, loss = 0, ph[1] = {0};
    for (long s = 0; s < (strcmp(only, "infer") ? steps + warm : 0); s++) {
        if (s == warm) {
            t0 = now();
            c0 = cpu_now();
            memset(ph, 0, sizeof ph);
        }
        rf_batch bt = {ds, perm + (s % nb) * B, B, lc};
        double a = now();
        if (rf_train_step(m, ws, grads, opt, &bt, NULL, NULL, &loss, &e)) return 1;
        ph[0] += now() - a;
    }
    double tt = now() - t0, ct = cpu_now() - c0;
    if (getenv("RESFLOW_BENCH_PHASES"))
        fprintf(stderr, "per step: %.2f ms\n", ph[0] / steps * 1e3);
    double train_sps = steps * B / tt, train_cpu_sps = steps * B / ct * threads;
    /* dense MACs per sample (x3 for fwd + both backward GEMMs): the towers exactly; for the
     * op-graph models every dense parameter counts as one multiply-add (biases and PReLU
     * slopes, under 1% of them, included) */
    double macs = 0;
    int in = F * E;
    const rf_model_info *mi = rf_model_info_of(m);
    if (!mi->is_tower) {
        macs = (double)mi->n_params;
    } else {
        for (int l = 0; l < mi->L; l++) {
            macs += (double)in * mi->H[l] * mi->K;
            in = mi->H[l];
        }
        macs += (double)in * mi->K;
    }
    double gflops = train_sps * macs * 2 * 3 / 1e9, gflops_cpu = train_cpu_sps * macs * 2 * 3 / 1e9;
    /* inference: rf_predict over the rows, as `resflow predict` scores a file (its batches,
     * its threads), about as many rows as the training figure saw twice over */
    long ipass = strcmp(only, "train") ? (steps * 2 * B + rows - 1) / rows : 0;
    float *probs = malloc((size_t)rows * 2 * sizeof *probs);
    rf_predict_opts po = {threads, int8 ? RF_PREC_INT8 : cfg.train.precision}; /* bf16: bf16 inference too */
    if (!probs || (ipass && rf_predict_ex(m, ds, &po, probs, NULL, &e))) return 1; /* warm-up (not with --only train) */
    double ti = now(), ci = cpu_now();
    for (long s = 0; s < ipass; s++)
        if (rf_predict_ex(m, ds, &po, probs, NULL, &e)) return 1;
    double infer_sps = ipass * rows / (now() - ti), infer_cpu_sps = ipass * rows / (cpu_now() - ci) * threads;
    free(probs);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    if (json)
        printf("{\"engine\": \"resflow\", \"model\": \"%s\", \"train_samples_per_sec\": %.0f, "
               "\"infer_samples_per_sec\": %.0f, \"gflops\": %.1f, \"train_cpu_samples_per_sec\": %.0f, "
               "\"infer_cpu_samples_per_sec\": %.0f, \"gflops_cpu\": %.1f, \"peak_rss_mb\": %.1f, "
               "\"threads\": %d, \"precision\": \"%s\", \"blas_core\": \"%s\", \"final_loss\": %.5f}\n",
               model, train_sps, infer_sps, gflops, train_cpu_sps, infer_cpu_sps, gflops_cpu, ru.ru_maxrss / 1024.0,
               threads, precision, openblas_get_corename(), loss);
    else
        printf("resflow %-8s train %9.0f samples/s (%5.1f GFLOP/s) | infer %9.0f samples/s | per CPU second x "
               "threads: train %9.0f (%5.1f GFLOP/s), infer %9.0f | peak RSS %.0f MB | %d threads, %s, %s kernels\n",
               model, train_sps, gflops, infer_sps, train_cpu_sps, gflops_cpu, infer_cpu_sps, ru.ru_maxrss / 1024.0,
               threads, precision, openblas_get_corename());
    free(perm);
    rf_optimizer_free(opt);
    rf_grads_free(grads);
    rf_workspace_free(ws);
    rf_model_free(m);
    rf_dataset_free(ds);
    return 0;
}
