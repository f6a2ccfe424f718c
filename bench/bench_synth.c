/* bench_synth.c - generation speed of the simulator (rows/s), streaming in parallel chunks.
 * usage: bench_synth [--rows N] [--preset ecom|search] [--threads LIST] [--reps R]
 * Prints the best of R generations per thread count: wall clock and CPU time (world build
 * included). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "resflow/data.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int main(int argc, char **argv)
{
    rf_synth_opts o = rf_synth_default();
    o.preset = RF_SYNTH_ECOM;
    o.ctr = 0.03f;
    o.cvr = 0.03f;
    o.rows = 5000000;
    const char *threads = "1,2";
    int reps = 3;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--rows")) o.rows = (size_t)strtoull(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--preset")) o.preset = strcmp(argv[i + 1], "search") ? RF_SYNTH_ECOM : RF_SYNTH_SEARCH;
        else if (!strcmp(argv[i], "--threads")) threads = argv[i + 1];
        else if (!strcmp(argv[i], "--reps")) reps = atoi(argv[i + 1]);
        else {
            fprintf(stderr, "usage: bench_synth [--rows N] [--preset ecom|search] [--threads LIST] [--reps R]\n");
            return 2;
        }
    }
    char buf[256];
    snprintf(buf, sizeof buf, "%s", threads);
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        o.threads = atoi(tok);
        double best = 1e30, best_cpu = 1e30;
        for (int r = 0; r < reps; r++) {
            rf_dataset *ds = NULL;
            rf_error e;
            double t0 = now();
            clock_t c0 = clock();
            if (rf_synth_generate(&o, &ds, &e)) {
                fprintf(stderr, "bench_synth: %s\n", e.msg);
                return 1;
            }
            double t = now() - t0, cpu = (double)(clock() - c0) / CLOCKS_PER_SEC;
            rf_dataset_free(ds);
            if (t < best) best = t;
            if (cpu < best_cpu) best_cpu = cpu;
        }
        /* CPU seconds too: on a shared machine the wall clock measures the other processes */
        printf("synth %s: %zu rows, %d thread(s): best of %d %.3f s wall = %.2f M rows/s; %.3f CPU s = %.2f M rows "
               "per CPU second\n",
               o.preset == RF_SYNTH_ECOM ? "ecom" : "search", o.rows, o.threads, reps, best, (double)o.rows / best / 1e6,
               best_cpu, (double)o.rows / best_cpu / 1e6);
    }
    return 0;
}
