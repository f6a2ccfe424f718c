/* bench_rank.c - speed of the per-query ranking metrics (rf_rank_eval) on a large synthetic
 * search log: N rows in lists of 1..2L-1 items (mean L), scores with ties, order labels and
 * order counts. Times, best of --reps runs each:
 *   groups    rf_groups_create on consecutive lists, and on rows shuffled across lists
 *   eval      rf_rank_eval with cut-offs 5, 10, 100 (every metric and WR variant at once)
 *   counts    rf_rank_count_weights (order counts per (query, item) key)
 *   fusion    rf_fusion_apply of an additive and a multiplicative formula
 * Usage: bench_rank [--rows N] [--list L] [--threads T] [--reps R] [--json]
 * `make bench-rank` runs it with 10M rows on 2 threads. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "resflow/rank.h"
#include "core/rng.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

static void check(rf_status st, const rf_error *e, const char *what)
{
    if (st) {
        fprintf(stderr, "bench_rank: %s: %s\n", what, e->msg);
        exit(1);
    }
}

int main(int argc, char **argv)
{
    size_t n = 10000000;
    int L = 20, threads = 2, reps = 3, json = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--rows") && i + 1 < argc) n = (size_t)strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--list") && i + 1 < argc) L = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--json")) json = 1;
        else {
            fprintf(stderr, "usage: bench_rank [--rows N] [--list L] [--threads T] [--reps R] [--json]\n");
            return 1;
        }
    }
    if (n < 1 || L < 1 || threads < 1 || reps < 1) {
        fprintf(stderr, "bench_rank: bad arguments\n");
        return 1;
    }
    omp_set_num_threads(threads);
    float *ctr = malloc(n * sizeof *ctr), *ctcvr = malloc(n * sizeof *ctcvr), *y = malloc(n * sizeof *y),
          *W = malloc(n * sizeof *W), *buf = malloc(n * sizeof *buf);
    uint64_t *g = malloc(n * sizeof *g), *gs = malloc(n * sizeof *gs), *key = malloc(n * sizeof *key);
    if (!ctr || !ctcvr || !y || !W || !buf || !g || !gs || !key) {
        fprintf(stderr, "bench_rank: out of memory\n");
        return 5;
    }
    rf_rng r;
    rf_rng_seed(&r, 1);
    size_t i = 0, lists = 0;
    while (i < n) {
        size_t m = 1 + (size_t)rf_rng_below(&r, (uint64_t)(2 * L - 1));
        uint64_t q = rf_rng_below(&r, 20000);
        for (size_t j = 0; j < m && i < n; j++, i++) {
            g[i] = lists;
            /* scores quantised to 1e-4 so that ties occur, as with real rounded scores */
            ctr[i] = (float)(floor(rf_rng_uniform(&r) * 1e4) / 1e4);
            ctcvr[i] = ctr[i] * (float)(floor(rf_rng_uniform(&r) * 1e3) / 1e4);
            y[i] = rf_rng_uniform(&r) < 0.02 ? 1.0f : 0.0f;
            key[i] = q * 1000003u + rf_rng_below(&r, 500);
        }
        lists++;
    }
    /* the same rows with the lists interleaved: shuffled group keys */
    memcpy(gs, g, n * sizeof *gs);
    for (size_t k = n - 1; k > 0; k--) {
        size_t j = (size_t)rf_rng_below(&r, k + 1);
        uint64_t t = gs[k];
        gs[k] = gs[j];
        gs[j] = t;
    }
    rf_error e;
    rf_groups *G = NULL, *GS = NULL;
    double t_grp = 1e30, t_grp_s = 1e30, t_eval = 1e30, t_eval_s = 1e30, t_cnt = 1e30, t_add = 1e30,
           t_mul = 1e30;
    rf_rank_opts o = {3, {5, 10, 100}, 0};
    rf_rank_result res;
    rf_fusion fa, fm;
    check(rf_fusion_parse("add:ctr=1,ctcvr=20", &fa, &e), &e, "parse");
    check(rf_fusion_parse("mul:ctr=0.9,ctcvr|ctr=1.1", &fm, &e), &e, "parse");
    rf_score_col cols[] = {{"ctr", ctr, 1}, {"ctcvr", ctcvr, 1}};
    for (int rep = 0; rep < reps; rep++) {
        double t0 = now();
        check(rf_rank_count_weights(key, n, y, 1, W, &e), &e, "counts");
        double t1 = now();
        rf_groups_free(G);
        check(rf_groups_create(g, n, &G, &e), &e, "groups");
        double t2 = now();
        check(rf_rank_eval(G, ctcvr, 1, y, 1, W, 1, &o, &res, &e), &e, "eval");
        double t3 = now();
        rf_groups_free(GS);
        check(rf_groups_create(gs, n, &GS, &e), &e, "groups (shuffled)");
        double t4 = now();
        check(rf_rank_eval(GS, ctcvr, 1, y, 1, W, 1, &o, &res, &e), &e, "eval (shuffled)");
        double t5 = now();
        check(rf_fusion_apply(&fa, cols, 2, n, buf, &e), &e, "fusion add");
        double t6 = now();
        check(rf_fusion_apply(&fm, cols, 2, n, buf, &e), &e, "fusion mul");
        double t7 = now();
        t_cnt = fmin(t_cnt, t1 - t0);
        t_grp = fmin(t_grp, t2 - t1);
        t_eval = fmin(t_eval, t3 - t2);
        t_grp_s = fmin(t_grp_s, t4 - t3);
        t_eval_s = fmin(t_eval_s, t5 - t4);
        t_add = fmin(t_add, t6 - t5);
        t_mul = fmin(t_mul, t7 - t6);
    }
    double total = t_grp + t_eval;
    if (json) {
        printf("{\"rows\": %zu, \"lists\": %zu, \"threads\": %d, \"groups_s\": %.4f, \"eval_s\": %.4f, "
               "\"rows_per_s\": %.0f, \"groups_shuffled_s\": %.4f, \"eval_shuffled_s\": %.4f, "
               "\"counts_s\": %.4f, \"fusion_add_s\": %.4f, \"fusion_mul_s\": %.4f, \"wr@10\": %.6f}\n",
               n, lists, threads, t_grp, t_eval, n / total, t_grp_s, t_eval_s, t_cnt, t_add, t_mul,
               res.wr[RF_WR_W][1]);
    } else {
        printf("%zu rows in %zu lists (mean %d items), %d threads, best of %d; cut-offs 5, 10, 100;\n"
               "every metric (WR@K x 4 weight variants, Recall@K, NDCG@K, List AUC, GAUC) in one pass\n\n",
               n, lists, L, threads, reps);
        printf("%-40s %8s %14s\n", "step", "seconds", "rows/s");
        printf("%-40s %8.3f %14.0f\n", "groups (consecutive lists)", t_grp, n / t_grp);
        printf("%-40s %8.3f %14.0f\n", "eval", t_eval, n / t_eval);
        printf("%-40s %8.3f %14.0f\n", "groups + eval", total, n / total);
        printf("%-40s %8.3f %14.0f\n", "groups (shuffled rows: radix sort)", t_grp_s, n / t_grp_s);
        printf("%-40s %8.3f %14.0f\n", "eval (shuffled rows)", t_eval_s, n / t_eval_s);
        printf("%-40s %8.3f %14.0f\n", "order counts per (query, item)", t_cnt, n / t_cnt);
        printf("%-40s %8.3f %14.0f\n", "fusion ctr + 20*ctcvr", t_add, n / t_add);
        printf("%-40s %8.3f %14.0f\n", "fusion ctr^0.9 * cvr^1.1", t_mul, n / t_mul);
        printf("\n(check: WR@10 = %.4f over %zu lists with orders)\n", res.wr[RF_WR_W][1], res.wr_groups);
    }
    rf_groups_free(G);
    rf_groups_free(GS);
    free(ctr);
    free(ctcvr);
    free(y);
    free(W);
    free(buf);
    free(g);
    free(gs);
    free(key);
    return 0;
}
