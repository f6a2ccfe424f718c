/* bench_score.c - the scoring core under load: requests of N raw candidates (the rows of a CSV
 * file, every column the model reads, as text) scored with rf_score by T threads at once, each
 * with its own context, for S seconds. Prints requests/s, candidates/s and the latency
 * percentiles of one request; optionally writes the request as the JSON body of POST /v1/score
 * (for bench/http_load.sh, which drives `resflow serve` with wrk).
 *
 * Usage: bench_score -m MODEL --data CSV [--candidates N] [--threads T] [--seconds S]
 *                    [--body FILE] [--shape FILE] [--json]
 * --shape writes the model's shape as JSON (tasks, fields and vocabulary sizes, dense columns,
 * embedding width, hidden widths) for bench/score_peer.py, the same model in PyTorch.
 * The CSV must be simple (no quoted fields): `resflow synth` writes one. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "resflow/pipeline.h"
#include "resflow/serve.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

static void die(const char *msg, const char *detail)
{
    fprintf(stderr, "bench_score: %s%s%s\n", msg, detail ? ": " : "", detail ? detail : "");
    exit(1);
}

/* Split line in place at commas; returns the number of fields (at most max). */
static int split(char *line, char **f, int max)
{
    int n = 0;
    line[strcspn(line, "\r\n")] = 0;
    for (char *p = line; n < max;) {
        f[n++] = p;
        char *c = strchr(p, ',');
        if (!c) break;
        *c = 0;
        p = c + 1;
    }
    return n;
}

typedef struct {
    const rf_scorer *s;
    const rf_score_request *req;
    double until;
    double *lat;  /* latencies (s) */
    double cpu;   /* the thread's CPU time (s) */
    size_t n, cap;
    int fail;
    char msg[1100];
} worker;

static void *run(void *arg)
{
    worker *w = arg;
    rf_score_ctx *ctx = rf_score_ctx_create(w->s);
    if (!ctx) {
        w->fail = 1;
        snprintf(w->msg, sizeof w->msg, "out of memory");
        return NULL;
    }
    while (now() < w->until) {
        rf_score_result r;
        rf_error e;
        double t0 = now();
        if (rf_score(ctx, w->req, &r, &e) != RF_OK) {
            w->fail = 1;
            snprintf(w->msg, sizeof w->msg, "%s", e.msg);
            break;
        }
        double dt = now() - t0;
        if (w->n == w->cap) {
            w->cap = w->cap ? 2 * w->cap : 4096;
            double *p = realloc(w->lat, w->cap * sizeof *p);
            if (!p) {
                w->fail = 1;
                snprintf(w->msg, sizeof w->msg, "out of memory");
                break;
            }
            w->lat = p;
        }
        w->lat[w->n++] = dt;
    }
    struct timespec ct;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ct);
    w->cpu = ct.tv_sec + 1e-9 * ct.tv_nsec;
    rf_score_ctx_free(ctx);
    return NULL;
}

static int cmpd(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Write s as a JSON string. */
static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') fputc('\\', f);
        if ((unsigned char)*s < 0x20) fprintf(f, "\\u%04x", *s);
        else fputc(*s, f);
    }
    fputc('"', f);
}

int main(int argc, char **argv)
{
    const char *model = NULL, *data = NULL, *body = NULL, *shape = NULL;
    int N = 1000, T = 2, json = 0;
    double secs = 5;
    for (int i = 1; i < argc; i++) {
        if ((!strcmp(argv[i], "-m") || !strcmp(argv[i], "--model")) && i + 1 < argc) model = argv[++i];
        else if (!strcmp(argv[i], "--data") && i + 1 < argc) data = argv[++i];
        else if (!strcmp(argv[i], "--candidates") && i + 1 < argc) N = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) T = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--seconds") && i + 1 < argc) secs = atof(argv[++i]);
        else if (!strcmp(argv[i], "--body") && i + 1 < argc) body = argv[++i];
        else if (!strcmp(argv[i], "--shape") && i + 1 < argc) shape = argv[++i];
        else if (!strcmp(argv[i], "--json")) json = 1;
        else die("usage: bench_score -m MODEL --data CSV [--candidates N] [--threads T] [--seconds S] [--body FILE] [--shape FILE] [--json]", NULL);
    }
    if (!model || !data || N < 1 || T < 1 || T > 64 || !(secs > 0)) die("bad arguments (see the usage)", NULL);

    rf_scorer *s;
    rf_error e;
    rf_scorer_opts so = {.max_candidates = N, .threads = 1};
    if (rf_scorer_open(model, &so, &s, &e) != RF_OK) die(model, e.msg);
    const char *const *cols;
    int nc = rf_scorer_columns(s, &cols);

    /* the first N rows of the file, the model's columns of each as text */
    FILE *f = fopen(data, "r");
    if (!f) die("cannot open", data);
    static char line[1 << 16];
    char *hf[512];
    if (!fgets(line, sizeof line, f)) die("empty file", data);
    char *header = strdup(line);
    int nh = split(header, hf, 512);
    int *pos = malloc((size_t)nc * sizeof *pos), nuse = 0;
    const char **names = malloc((size_t)nc * sizeof *names);
    for (int c = 0; c < nc; c++)
        for (int h = 0; h < nh; h++)
            if (!strcmp(cols[c], hf[h])) {
                pos[nuse] = h;
                names[nuse++] = cols[c];
                break;
            }
    if (!nuse) die("the file has none of the model's columns", data);
    rf_features *cand = calloc((size_t)N, sizeof *cand);
    const char **vals = calloc((size_t)N * nuse, sizeof *vals);
    int n = 0;
    while (n < N && fgets(line, sizeof line, f)) {
        char *fv[512];
        int k = split(line, fv, 512);
        if (k != nh) die("a row with another number of fields than the header", data);
        for (int u = 0; u < nuse; u++) vals[(size_t)n * nuse + u] = strdup(fv[pos[u]]);
        cand[n] = (rf_features){nuse, names, vals + (size_t)n * nuse};
        n++;
    }
    fclose(f);
    if (n < N) die("the file has fewer rows than --candidates", data);
    rf_score_request req = {{0, NULL, NULL}, N, cand};

    if (body) { /* the same request for POST /v1/score */
        FILE *b = fopen(body, "w");
        if (!b) die("cannot write", body);
        fputs("{\"candidates\":[", b);
        for (int i = 0; i < N; i++) {
            fputs(i ? ",{" : "{", b);
            for (int u = 0; u < nuse; u++) {
                if (u) fputc(',', b);
                json_str(b, names[u]);
                fputc(':', b);
                json_str(b, vals[(size_t)i * nuse + u]);
            }
            fputc('}', b);
        }
        fputs("],\"top\":100}\n", b);
        if (fclose(b)) die("cannot write", body);
    }

    if (shape) { /* the model's shape, for the PyTorch peer */
        const rf_model *m = rf_scorer_model(s)->model;
        const rf_model_info *in = rf_model_info_of(m);
        const rf_model_spec *sp = rf_model_spec_of(m);
        FILE *b = fopen(shape, "w");
        if (!b) die("cannot write", shape);
        fprintf(b, "{\"K\":%d,\"E\":%d,\"In\":%d,\"tower\":%d,\"H\":[", in->K, in->E, in->In, in->is_tower);
        for (int l = 0; l < in->L; l++) fprintf(b, "%s%d", l ? "," : "", in->H[l]);
        fputs("],\"fields\":[", b);
        for (int j = 0; j < sp->F; j++) {
            fputs(j ? ",[" : "[", b);
            json_str(b, sp->fields[j].name);
            fprintf(b, ",%u]", sp->fields[j].vocab);
        }
        fputs("],\"dense\":[", b);
        for (int c = sp->F; c < nc; c++) {
            if (c > sp->F) fputc(',', b);
            json_str(b, cols[c]);
        }
        fputs("]}\n", b);
        if (fclose(b)) die("cannot write", shape);
    }

    worker *w = calloc((size_t)T, sizeof *w);
    pthread_t *th = malloc((size_t)T * sizeof *th);
    double t0 = now();
    for (int t = 0; t < T; t++) {
        w[t] = (worker){.s = s, .req = &req, .until = t0 + secs};
        if (pthread_create(&th[t], NULL, run, &w[t])) die("cannot start a thread", NULL);
    }
    size_t total = 0;
    double cpu = 0;
    for (int t = 0; t < T; t++) {
        pthread_join(th[t], NULL);
        if (w[t].fail) die("rf_score", w[t].msg);
        total += w[t].n;
        cpu += w[t].cpu;
    }
    double cpu_ms = total ? 1e3 * cpu / (double)total : 0.0; /* load-robust: CPU time per request */
    double el = now() - t0;
    double *all = malloc((total ? total : 1) * sizeof *all);
    size_t k = 0;
    for (int t = 0; t < T; t++) {
        memcpy(all + k, w[t].lat, w[t].n * sizeof *all);
        k += w[t].n;
        free(w[t].lat);
    }
    qsort(all, total, sizeof *all, cmpd);
#define PCT(q) (total ? 1e3 * all[(size_t)((q) * (double)(total - 1))] : 0.0)
    double rps = total / el;
    if (json)
        printf("{\"candidates\":%d,\"threads\":%d,\"requests\":%zu,\"seconds\":%.3f,\"requests_per_s\":%.1f,"
               "\"candidates_per_s\":%.0f,\"p50_ms\":%.3f,\"p90_ms\":%.3f,\"p99_ms\":%.3f,\"max_ms\":%.3f,\"cpu_ms_per_request\":%.3f}\n",
               N, T, total, el, rps, rps * N, PCT(0.5), PCT(0.9), PCT(0.99), PCT(1.0), cpu_ms);
    else
        printf("score %d raw candidates, %d threads x %.0f s: %zu requests, %.1f requests/s (%.0f candidates/s); "
               "latency p50 %.3f ms, p90 %.3f ms, p99 %.3f ms, max %.3f ms; CPU %.3f ms per request\n",
               N, T, el, total, rps, rps * N, PCT(0.5), PCT(0.9), PCT(0.99), PCT(1.0), cpu_ms);
    free(all);
    free(w);
    free(th);
    for (size_t i = 0; i < (size_t)N * nuse; i++) free((void *)vals[i]);
    free(vals);
    free(cand);
    free(names);
    free(pos);
    free(header);
    rf_scorer_close(s);
    return 0;
}
