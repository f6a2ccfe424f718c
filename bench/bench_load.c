/* bench_load.c - time rf_load_csv alone (parse + fit the encoders, no cache written) on a file
 * with a config's schema: the parser's own speed, without the cache's write and fsync.
 * usage: bench_load CONFIG.yaml FILE [THREADS] [REPS] */
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>

#include "resflow/pipeline.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s CONFIG.yaml FILE [THREADS] [REPS]\n", argv[0]);
        return 1;
    }
    int threads = argc > 3 ? atoi(argv[3]) : 1, reps = argc > 4 ? atoi(argv[4]) : 1;
    rf_config cfg;
    rf_error err;
    rf_config_default(&cfg);
    if (rf_config_load_file(&cfg, argv[1], &err)) {
        fprintf(stderr, "config: %s\n", err.msg);
        return 1;
    }
    rf_schema_from_tasks(&cfg);
    struct stat st;
    if (stat(argv[2], &st)) return 1;
    for (int r = 0; r < reps; r++) {
        rf_load_opts lo = {0};
        lo.threads = threads;
        lo.valid_frac = 0.1f;
        lo.test_frac = 0.1f;
        rf_encoders *enc = NULL;
        rf_dataset *ds = NULL;
        double t0 = now();
        if (rf_load_csv(argv[2], &cfg.data.schema, &enc, &lo, &ds, &err)) {
            fprintf(stderr, "load: %s:%ld:%ld: %s\n", err.file, err.line, err.col, err.msg);
            return 1;
        }
        double s = now() - t0;
        printf("threads %d: %zu rows in %.3f s: %.1f MB/s, %.0f rows/s\n", threads, ds->n, s,
               (double)st.st_size / 1e6 / s, (double)ds->n / s);
        rf_dataset_free(ds);
        rf_encoders_free(enc);
    }
    return 0;
}
