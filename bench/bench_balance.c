/* bench_balance.c - the cost of train.balance: time per training step of every method next to
 * plain Adam (rf_train_step) on the reference setup of bench_train.c (16 fields x emb 16, 250k
 * embedding rows, towers 128-64 x 2 tasks, batch 2048), and the memory each adds (optimizer
 * state beyond Adam's, plus the K per-task gradient sets and the combined one). Methods run
 * interleaved, REPS rounds, median per method. --plot FILE.svg [--method M] also trains the
 * simulator-free reference data for --steps steps with method M (default pub) and plots the task
 * weights per step (include/resflow/lab/plot.h).
 *
 * Each step is timed in wall time and in process CPU time (all threads; steadier than wall time
 * on a shared machine, the same work on a quiet one).
 *
 * usage: bench_balance [--model TYPE] [--steps N] [--reps N] [--threads N] [--plot FILE.svg]
 *                      [--method M] [--peer]
 * The ratio reported is to resflow's own Adam step, the target of issue #14 (PUB <= 2x with 2
 * tasks). --peer also runs bench/pub_torch.py (/usr/bin/python3; skipped with a message when
 * torch is missing): one PUB step written in PyTorch on the same shapes (ResFlow, the setup
 * above; the Nash solve in numpy) and a PyTorch Adam step, and prints resflow's PUB step over
 * PyTorch's. The other methods have no PyTorch peer here (the authors' code needs cvxpy). */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cblas.h>

#include "../tools/blas_env.h"
#include "bench_data.h"
#include "resflow/balance.h"
#include "resflow/config.h"
#include "resflow/lab/plot.h"
#include "resflow/train.h"

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

/* The number after "key": in a one-line JSON object, or -1. */
static double json_num(const char *line, const char *key)
{
    char k[64];
    snprintf(k, sizeof k, "\"%s\": ", key);
    const char *p = strstr(line, k);
    return p ? atof(p + strlen(k)) : -1;
}

/* bench/pub_torch.py on the same shapes: PyTorch's PUB and Adam steps beside resflow's. */
static void run_peer(int threads, long steps, double pub_ms, double pub_cpu, double adam_ms, double adam_cpu)
{
    const char *script = "bench/pub_torch.py";
    char cmd[512], line[1024] = "";
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s --threads %d --steps %ld", script, threads, steps);
    FILE *p = popen(cmd, "r");
    if (!p || !fgets(line, sizeof line, p)) line[0] = 0;
    int rc = p ? pclose(p) : -1;
    double tp = json_num(line, "pub_ms"), tpc = json_num(line, "pub_cpu_ms"), ta = json_num(line, "adam_ms"),
           tac = json_num(line, "adam_cpu_ms");
    if (rc != 0 || tp <= 0 || ta <= 0) {
        printf("peer: skipped (%s did not run: python3-torch missing? see its message above)\n", script);
        return;
    }
    printf("peer: PyTorch %s (%s): Adam %.2f ms/step (%.2f CPU ms), PUB %.2f ms/step (%.2f CPU ms), PUB/Adam %.2fx\n",
           script, cmd, ta, tac, tp, tpc, tp / ta);
    printf("peer: resflow / PyTorch: PUB step %.3fx wall, %.3fx CPU; Adam step %.3fx wall, %.3fx CPU\n", pub_ms / tp,
           pub_cpu / tpc, adam_ms / ta, adam_cpu / tac);
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    rf_blas_env_setup(argv);
    const char *model = "resflow", *plot = NULL, *pmethod = "pub";
    long rows = 262144, steps = 20;
    int threads = 2, reps = 3, F = 16, E = 16, B = 2048, peer = 0;
    uint32_t vocab = 15625;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--model") && i + 1 < argc) model = argv[++i];
        else if (!strcmp(argv[i], "--steps") && i + 1 < argc) steps = atol(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--plot") && i + 1 < argc) plot = argv[++i];
        else if (!strcmp(argv[i], "--method") && i + 1 < argc) pmethod = argv[++i];
        else if (!strcmp(argv[i], "--peer")) peer = 1;
        else {
            fprintf(stderr, "usage: bench_balance [--model M] [--steps N] [--reps N] [--threads N] "
                            "[--plot FILE.svg] [--method M] [--peer]\n");
            return 1;
        }
    }
    omp_set_num_threads(threads);
    openblas_set_num_threads(threads);
    /* the click depends on the first field's id parity, so the tasks have something to learn */
    rf_dataset *ds = bench_ref_data(rows, F, vocab, 0.02, 0.08);
    if (!ds) return 5;
    rf_config cfg;
    rf_config_default(&cfg);
    char set[256];
    snprintf(set, sizeof set, "model.type=%s", model);
    rf_error e;
    if (rf_config_set(&cfg, set, &e) || rf_config_set(&cfg, "model.hidden=128,64", &e)) return 1;
    cfg.model.emb_dim = E;
    cfg.train.batch_size = B;
    int lc[2] = {0, 1};
    size_t *perm = malloc(rows * sizeof *perm);
    for (long i = 0; i < rows; i++) perm[i] = (size_t)i;
    long nb = rows / B;
    int nm = RF_BALANCE_COUNT;
    rf_model *m[RF_BALANCE_COUNT];
    rf_workspace *ws[RF_BALANCE_COUNT];
    rf_grads *g[RF_BALANCE_COUNT][2], *sumg[RF_BALANCE_COUNT];
    rf_optimizer *adam = NULL;
    rf_balancer *bal[RF_BALANCE_COUNT] = {0};
    for (int k = 0; k < nm; k++) {
        if (rf_config_create_model(&cfg, F, ds->fields, 0, &m[k], &e)) {
            fprintf(stderr, "%s\n", e.msg);
            return 1;
        }
        ws[k] = rf_workspace_create(m[k], B);
        g[k][0] = rf_grads_create(m[k]);
        g[k][1] = rf_grads_create(m[k]);
        sumg[k] = rf_grads_create(m[k]);
        if (k == 0) adam = rf_adam_create(m[k], &cfg.train);
        else bal[k] = rf_balancer_create(m[k], &cfg.train, k);
    }
    const rf_model_info *mi = rf_model_info_of(m[0]);
    double grad_mb = (mi->n_params * 4.0 + (double)B * F * (4 + 4.0 * E)) / 1e6; /* one gradient set, full batch */
    double *ms = calloc((size_t)nm * reps, sizeof *ms), *cs = calloc((size_t)nm * reps, sizeof *cs);
    double loss;
    long s0 = 0;
    for (int rep = 0; rep < reps; rep++)
        for (int k = 0; k < nm; k++) {
            for (long s = 0; s < steps + 2; s++) {
                if (s == 2) s0 = 0;
                rf_batch bt = {ds, perm + ((rep * steps + s) % nb) * B, B, lc};
                double a = now(), ca = cpu_now();
                rf_status st = k == 0 ? rf_train_step(m[k], ws[k], sumg[k], adam, &bt, NULL, NULL, &loss, &e)
                                      : rf_train_step_balanced(m[k], ws[k], g[k], bal[k], &bt, &loss, &e);
                if (st) {
                    fprintf(stderr, "%s: %s\n", rf_balance_name(k), e.msg);
                    return 1;
                }
                if (s >= 2) {
                    ms[k * reps + rep] += (now() - a) * 1e3 / steps;
                    cs[k * reps + rep] += (cpu_now() - ca) * 1e3 / steps;
                }
                s0++;
            }
        }
    printf("%-12s %10s %8s %12s %8s %14s %14s\n", "method", "ms/step", "x Adam", "CPU ms/step", "x Adam",
           "state +MB", "grads +MB");
    double adam_ms = 0, adam_cpu = 0, pub_ms = 0, pub_cpu = 0;
    size_t adam_state = rf_optimizer_state_size(adam);
    for (int k = 0; k < nm; k++) {
        qsort(ms + k * reps, (size_t)reps, sizeof *ms, cmp_d);
        qsort(cs + k * reps, (size_t)reps, sizeof *cs, cmp_d);
        double med = ms[k * reps + reps / 2], cmed = cs[k * reps + reps / 2];
        if (k == 0) adam_ms = med, adam_cpu = cmed;
        if (k == RF_BALANCE_PUB) pub_ms = med, pub_cpu = cmed;
        double st = k == 0 ? 0 : (double)(rf_optimizer_state_size(rf_balancer_optimizer(bal[k])) - adam_state) / 1e6;
        /* balanced steps hold K per-task sets and the combined one, Adam one set */
        printf("%-12s %10.2f %7.2fx %12.2f %7.2fx %14.1f %14.1f\n", k == 0 ? "none (Adam)" : rf_balance_name(k), med,
               med / adam_ms, cmed, cmed / adam_cpu, st, k == 0 ? 0.0 : grad_mb * 2);
    }
    char cpu[256] = "?";
    FILE *fp = fopen("/proc/cpuinfo", "r");
    for (char line[512]; fp && fgets(line, sizeof line, fp);)
        if (!strncmp(line, "model name", 10)) {
            char *c = strchr(line, ':');
            snprintf(cpu, sizeof cpu, "%.200s", c ? c + 2 : line);
            cpu[strcspn(cpu, "\n")] = 0;
            break;
        }
    if (fp) fclose(fp);
    printf("setup: %s, 16 fields x emb 16 (250k rows), towers 128-64 x 2 tasks, batch 2048, %d threads, %ld "
           "steps, median of %d | %s | OpenBLAS %s\n",
           model, threads, steps, reps, cpu, openblas_get_corename());
    if (peer) {
        fflush(stdout);
        run_peer(threads, steps, pub_ms, pub_cpu, adam_ms, adam_cpu);
    }
    if (plot) { /* the task weights of one method per step */
        int meth = -1;
        for (int k = 1; k < nm; k++)
            if (!strcmp(rf_balance_name(k), pmethod)) meth = k;
        if (meth < 1) {
            fprintf(stderr, "unknown method %s\n", pmethod);
            return 1;
        }
        rf_model *pm;
        if (rf_config_create_model(&cfg, F, ds->fields, 0, &pm, &e)) return 1;
        rf_balancer *pb = rf_balancer_create(pm, &cfg.train, meth);
        rf_workspace *pw = rf_workspace_create(pm, B);
        rf_grads *pg[2] = {rf_grads_create(pm), rf_grads_create(pm)};
        long n = nb;
        double *x = malloc(n * sizeof *x), *y = malloc(2 * n * sizeof *y), w[2];
        for (long s = 0; s < n; s++) {
            rf_batch bt = {ds, perm + s * B, B, lc};
            if (rf_train_step_balanced(pm, pw, pg, pb, &bt, &loss, &e)) return 1;
            rf_balancer_weights(pb, w);
            x[s] = (double)(s + 1);
            y[s] = w[0];
            y[n + s] = w[1];
        }
        rf_plot_series ser[2] = {{"click task", (int)n, x, y, NULL}, {"order task", (int)n, x, y + n, NULL}};
        char title[128];
        snprintf(title, sizeof title, "%s task weights per step (%s, bench data, one epoch)", pmethod, model);
        rf_plot_opts po = {title, "step", "weight", 0, 0, 0, 0, NULL, NULL};
        if (rf_plot_svg_write(&po, ser, 2, plot, &e)) {
            fprintf(stderr, "%s\n", e.msg);
            return 1;
        }
        printf("plot: %s (%ld steps, last weights %.4f %.4f)\n", plot, n, w[0], w[1]);
        free(x);
        free(y);
        rf_grads_free(pg[0]);
        rf_grads_free(pg[1]);
        rf_workspace_free(pw);
        rf_balancer_free(pb);
        rf_model_free(pm);
    }
    for (int k = 0; k < nm; k++) {
        rf_balancer_free(bal[k]);
        rf_grads_free(g[k][0]);
        rf_grads_free(g[k][1]);
        rf_grads_free(sumg[k]);
        rf_workspace_free(ws[k]);
        rf_model_free(m[k]);
    }
    rf_optimizer_free(adam);
    free(ms);
    free(cs);
    free(perm);
    rf_dataset_free(ds);
    return 0;
}
