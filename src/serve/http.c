/* http.c - the HTTP/JSON server of serve_http.h on libmicrohttpd: POST /v1/score, GET /healthz,
 * GET /metrics (Prometheus text), POST /admin/reload (loopback clients only).
 *
 * Models: the current model is a generation {scorer, ctx pool, reference count}. A request takes
 * a reference and a ctx under the server's mutex, scores without it, and gives both back; a
 * reload makes a new generation and swaps the pointer under the mutex; the old generation is
 * freed by whoever drops its last reference. All mutable state is in the rf_server. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>

#include <jansson.h>
#include <microhttpd.h>

#include "resflow/serve_http.h"
#include "serve/respjson.h"

/* ---- model generations ------------------------------------------------------------------------ */

typedef struct gen {
    rf_scorer *scorer;
    long number;               /* 1, 2, ... per successful load */
    long long mtime;           /* the file's mtime at load */
    int refs;                  /* the server's own + one per request in flight */
    rf_score_ctx **pool;       /* idle ctxs */
    int n_pool, cap_pool;
    /* the /v1/score answer's fixed parts, as JSON text: the head object and each task's key */
    char *head;
    char *keys[RF_MAX_TASKS];
} gen;

static void gen_free(gen *g)
{
    if (!g) return;
    for (int i = 0; i < g->n_pool; i++) rf_score_ctx_free(g->pool[i]);
    free(g->pool);
    free(g->head);
    for (int k = 0; k < RF_MAX_TASKS; k++) free(g->keys[k]);
    rf_scorer_close(g->scorer);
    free(g);
}

/* ---- metrics ------------------------------------------------------------------------------------ */

enum { EP_SCORE, EP_TOPK, EP_HEALTHZ, EP_METRICS, EP_RELOAD, EP_OTHER, N_EP };
static const char *const EP_NAME[N_EP] = {"/v1/score", "/v1/topk", "/healthz", "/metrics", "/admin/reload", "other"};
static const int CODES[] = {200, 400, 403, 404, 405, 413, 500, 503};
#define N_CODES ((int)(sizeof CODES / sizeof CODES[0]))
static const double BUCKETS[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0};
#define N_BUCKETS ((int)(sizeof BUCKETS / sizeof BUCKETS[0]))

struct rf_server {
    struct MHD_Daemon *d;
    rf_server_opts o;
    char host[64];
    char *path, *index;
    int port;
    pthread_mutex_t mu;
    gen *cur;
    long generations;
    /* metrics (under mu) */
    unsigned long long req[N_EP][N_CODES + 1]; /* the last column: any other code */
    unsigned long long errors;
    unsigned long long lat_bucket[2][N_BUCKETS + 1], lat_count[2]; /* /v1/score, /v1/topk */
    double lat_sum[2];
    unsigned long long topk_items_total;
    unsigned long long reload_ok, reload_failed;
    unsigned long long candidates_total;
    long answered;
};

static void logf_(rf_server *s, const char *fmt, ...) RF_PRINTF(2, 3);
static void logf_(rf_server *s, const char *fmt, ...)
{
    if (!s->o.log) return;
    char line[1400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    s->o.log(s->o.log_ud, line);
}

/* The head of an answer: the model file, its tasks and what the score is. */
static json_t *answer_head(const rf_server *s, const char *const *tasks, int K, const char *score_name)
{
    json_t *j = json_object(), *jt = json_array();
    json_object_set_new(j, "model", json_string(s->path));
    for (int k = 0; k < K; k++) json_array_append_new(jt, json_string(tasks[k]));
    json_object_set_new(j, "tasks", jt);
    json_object_set_new(j, "score", json_string(score_name));
    return j;
}

static rf_status load_gen(rf_server *s, gen **out, rf_error *err)
{
    gen *g = calloc(1, sizeof *g);
    if (!g) return rf_errorf(err, RF_ENOMEM, "out of memory");
    struct stat sb;
    g->mtime = stat(s->path, &sb) == 0 ? (long long)sb.st_mtime : 0;
    rf_scorer_opts so = {.max_candidates = s->o.max_candidates, .threads = 1, .index = s->o.index, .max_k = s->o.max_k,
                         .precision = s->o.precision};
    rf_status st = rf_scorer_open(s->path, &so, &g->scorer, err);
    if (st) {
        free(g);
        return st;
    }
    const char *const *tasks;
    int K = rf_scorer_tasks(g->scorer, &tasks);
    json_t *h = answer_head(s, tasks, K, rf_scorer_score_name(g->scorer));
    g->head = h ? json_dumps(h, JSON_COMPACT) : NULL;
    json_decref(h);
    int ok = g->head != NULL && K <= RF_MAX_TASKS;
    for (int k = 0; ok && k < K; k++) {
        json_t *t = json_string(tasks[k]);
        g->keys[k] = t ? json_dumps(t, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
        json_decref(t);
        ok = g->keys[k] != NULL;
    }
    if (!ok) {
        gen_free(g);
        return rf_errorf(err, RF_ENOMEM, "out of memory (or a task name that is not UTF-8)");
    }
    g->refs = 1;
    *out = g;
    return RF_OK;
}

/* A reference to the current generation and a ctx of it (NULL ctx: out of memory). */
static gen *acquire(rf_server *s, rf_score_ctx **ctx)
{
    pthread_mutex_lock(&s->mu);
    gen *g = s->cur;
    g->refs++;
    *ctx = g->n_pool ? g->pool[--g->n_pool] : NULL;
    pthread_mutex_unlock(&s->mu);
    if (!*ctx) *ctx = rf_score_ctx_create(g->scorer);
    return g;
}

static void release(rf_server *s, gen *g, rf_score_ctx *ctx)
{
    int last = 0;
    pthread_mutex_lock(&s->mu);
    if (ctx) {
        if (g->n_pool == g->cap_pool) {
            int cap = g->cap_pool ? 2 * g->cap_pool : 8;
            rf_score_ctx **p = realloc(g->pool, (size_t)cap * sizeof *p);
            if (p) {
                g->pool = p;
                g->cap_pool = cap;
            }
        }
        if (g->n_pool < g->cap_pool) {
            g->pool[g->n_pool++] = ctx;
            ctx = NULL;
        }
    }
    last = --g->refs == 0;
    pthread_mutex_unlock(&s->mu);
    if (ctx) rf_score_ctx_free(ctx);
    if (last) gen_free(g);
}

rf_status rf_server_reload(rf_server *s, rf_error *err)
{
    if (!s) return rf_errorf(err, RF_EUSAGE, "rf_server_reload: NULL argument");
    gen *g = NULL;
    rf_status st = load_gen(s, &g, err);
    if (st) {
        pthread_mutex_lock(&s->mu);
        s->reload_failed++;
        pthread_mutex_unlock(&s->mu);
        char buf[1600];
        logf_(s, "reload of %s failed, the old model stays: %s", s->path, rf_error_format(err, buf, sizeof buf));
        return st;
    }
    pthread_mutex_lock(&s->mu);
    g->number = ++s->generations;
    gen *old = s->cur;
    s->cur = g;
    s->reload_ok++;
    int last = --old->refs == 0;
    pthread_mutex_unlock(&s->mu);
    if (last) gen_free(old);
    logf_(s, "reloaded %s (model generation %ld)", s->path, g->number);
    return RF_OK;
}

/* ---- responses ---------------------------------------------------------------------------------- */

typedef struct {
    char *body;
    size_t n, cap;
    int too_large;
    size_t dropped; /* body bytes read and dropped after too_large */
    struct timespec t0;
} conn;

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void count(rf_server *s, int ep, int code, double seconds, int ncand)
{
    int ci = N_CODES;
    for (int i = 0; i < N_CODES; i++)
        if (CODES[i] == code) ci = i;
    pthread_mutex_lock(&s->mu);
    s->req[ep][ci]++;
    if (code >= 400) s->errors++;
    if (ep == EP_SCORE || ep == EP_TOPK) {
        int b = N_BUCKETS, h = ep == EP_TOPK;
        for (int i = N_BUCKETS - 1; i >= 0 && seconds <= BUCKETS[i]; i--) b = i;
        s->lat_bucket[h][b]++;
        s->lat_count[h]++;
        s->lat_sum[h] += seconds;
        if (code == 200 && !h) s->candidates_total += (unsigned long long)ncand;
        if (code == 200 && h) s->topk_items_total += (unsigned long long)ncand;
    }
    pthread_mutex_unlock(&s->mu);
}

/* Queue body (malloc'd, taken) with the status and content type. */
static enum MHD_Result send_text(struct MHD_Connection *c, int code, char *body, const char *type)
{
    if (!body) {
        static const char oom[] = "{\"error\":{\"code\":\"internal\",\"message\":\"out of memory\",\"field\":null}}\n";
        body = malloc(sizeof oom);
        if (!body) return MHD_NO;
        memcpy(body, oom, sizeof oom);
        code = 500;
    }
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)code, r);
    MHD_destroy_response(r);
    return ret;
}

static char *dump(json_t *j)
{
    char *s = j ? json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(9)) : NULL;
    json_decref(j);
    if (!s) return NULL;
    size_t n = strlen(s);
    char *t = realloc(s, n + 2);
    if (!t) {
        free(s);
        return NULL;
    }
    t[n] = '\n';
    t[n + 1] = '\0';
    return t;
}

static char *error_json(const char *code, const char *message, const char *field, long line, long col)
{
    json_t *e = json_object();
    json_object_set_new(e, "code", json_string(code));
    json_object_set_new(e, "message", json_string(message));
    json_object_set_new(e, "field", field && field[0] ? json_string(field) : json_null());
    if (line > 0) {
        json_object_set_new(e, "line", json_integer(line));
        json_object_set_new(e, "column", json_integer(col));
    }
    json_t *j = json_object();
    json_object_set_new(j, "error", e);
    return dump(j);
}

static enum MHD_Result send_error(rf_server *s, struct MHD_Connection *c, int ep, double t0, int code,
                                  const char *ecode, const char *message, const char *field, long line, long col)
{
    count(s, ep, code, now_s() - t0, 0);
    return send_text(c, code, error_json(ecode, message, field, line, col), "application/json");
}

/* ---- endpoints ---------------------------------------------------------------------------------- */

/* A reference to the current generation and a ctx of it for endpoint ep; NULL when out of
 * memory (then the 503 is queued and *ret says how that went). */
static gen *take(rf_server *s, struct MHD_Connection *c, int ep, double t0, rf_score_ctx **ctx, enum MHD_Result *ret)
{
    gen *g = acquire(s, ctx);
    if (*ctx) return g;
    release(s, g, NULL);
    *ret = send_error(s, c, ep, t0, 503, "internal", "out of memory (score context)", NULL, 0, 0);
    return NULL;
}

static enum MHD_Result do_score(rf_server *s, struct MHD_Connection *c, const conn *cn, double t0)
{
    rf_score_ctx *ctx = NULL;
    enum MHD_Result ret;
    gen *g = take(s, c, EP_SCORE, t0, &ctx, &ret);
    if (!g) return ret;
    const char *const *cols;
    int ncols = rf_scorer_columns(g->scorer, &cols);
    rf_serve_parsed p;
    rf_error e;
    rf_error_clear(&e);
    rf_status st = rf_serve_parse_request(cn->body, cn->n, cols, ncols, rf_scorer_max_candidates(g->scorer), &p, &e);
    if (st) {
        release(s, g, ctx);
        const char *code = st == RF_ENOMEM ? "internal" : e.line > 0 ? "bad_json"
                           : strstr(e.msg, "unknown column") ? "unknown_column"
                           : strstr(e.msg, "per request") ? "too_many_candidates" : "bad_request";
        return send_error(s, c, EP_SCORE, t0, st == RF_ENOMEM ? 500 : 400, code, e.msg, p.field, e.line, e.col);
    }
    rf_score_result r;
    st = rf_score(ctx, &p.req, &r, &e);
    if (st) {
        rf_serve_parsed_free(&p);
        release(s, g, ctx);
        /* the scorer's message names the candidate ("candidate 3: ...") or the context */
        char field[160] = "";
        int ci;
        if (sscanf(e.msg, "candidate %d:", &ci) == 1) snprintf(field, sizeof field, "candidates[%d]", ci);
        else if (!strncmp(e.msg, "context", 7)) snprintf(field, sizeof field, "context");
        /* and the column, when the message names one: "... column 'price' ..." */
        const char *q = strstr(e.msg, "column '");
        if (field[0] && q) {
            q += 8;
            const char *qe = strchr(q, '\'');
            size_t fl = strlen(field);
            if (qe && qe - q < 100) snprintf(field + fl, sizeof field - fl, ".%.*s", (int)(qe - q), q);
        }
        int http = st == RF_ENOMEM || st == RF_EINTERNAL ? 500 : 400;
        const char *code = st == RF_EDATA ? "bad_value" : st == RF_ENUMERIC ? "numeric" : http == 500 ? "internal" : "bad_request";
        return send_error(s, c, EP_SCORE, t0, http, code, e.msg, field, 0, 0);
    }
    int n = r.n, top = p.top >= 0 && p.top < n ? p.top : n;
    char *body = rf_score_answer_(g->head, (const char *const *)g->keys, &r, top);
    rf_serve_parsed_free(&p);
    release(s, g, ctx);
    count(s, EP_SCORE, body ? 200 : 500, now_s() - t0, n);
    return send_text(c, 200, body, "application/json");
}

static enum MHD_Result do_topk(rf_server *s, struct MHD_Connection *c, const conn *cn, double t0)
{
    rf_score_ctx *ctx = NULL;
    enum MHD_Result ret;
    gen *g = take(s, c, EP_TOPK, t0, &ctx, &ret);
    if (!g) return ret;
    if (!rf_scorer_index(g->scorer)) {
        release(s, g, ctx);
        return send_error(s, c, EP_TOPK, t0, 404, "no_index",
                          "this server has no item index (start it with --index FILE.rfi)", NULL, 0, 0);
    }
    const char *const *cols, *const *tasks;
    int ncols = rf_scorer_columns(g->scorer, &cols);
    int K = rf_scorer_tasks(g->scorer, &tasks);
    rf_serve_topk_parsed p;
    rf_error e;
    rf_error_clear(&e);
    rf_status st = rf_serve_parse_topk(cn->body, cn->n, cols, ncols, rf_scorer_max_k(g->scorer),
                                       rf_scorer_max_shortlist(g->scorer), &p, &e);
    if (st) {
        release(s, g, ctx);
        const char *code = st == RF_ENOMEM ? "internal" : e.line > 0 ? "bad_json"
                           : strstr(e.msg, "unknown column") ? "unknown_column" : "bad_request";
        return send_error(s, c, EP_TOPK, t0, st == RF_ENOMEM ? 500 : 400, code, e.msg, p.field, e.line, e.col);
    }
    rf_topk_opts o = {p.quantized, p.shortlist};
    rf_topk_result r;
    st = rf_topk(ctx, &p.context, p.k, &o, &r, &e);
    if (st) {
        rf_serve_topk_parsed_free(&p);
        release(s, g, ctx);
        char field[160] = "context";
        const char *q = strstr(e.msg, "column '");
        if (q) {
            q += 8;
            const char *qe = strchr(q, '\'');
            if (qe && qe - q < 100) snprintf(field, sizeof field, "context.%.*s", (int)(qe - q), q);
        }
        int http = st == RF_ENOMEM || st == RF_EINTERNAL ? 500 : 400;
        const char *code = st == RF_EDATA ? "bad_value" : http == 500 ? "internal" : "bad_request";
        return send_error(s, c, EP_TOPK, t0, http, code, e.msg, field, 0, 0);
    }
    json_t *j = answer_head(s, tasks, K, r.score_name), *res = json_array();
    json_object_set_new(j, "index", json_string(s->index));
    json_object_set_new(j, "mode", json_string(p.quantized ? "quantized" : "exact"));
    for (int q = 0; q < r.n; q++) {
        json_t *o2 = json_object();
        json_object_set_new(o2, "id", json_string(r.id[q]));
        json_object_set_new(o2, "index", json_integer((json_int_t)r.item[q]));
        json_object_set_new(o2, "score", json_real(r.score[q]));
        for (int k = 0; k < r.K; k++) json_object_set_new(o2, tasks[k], json_real(r.probs[(size_t)q * r.K + k]));
        json_array_append_new(res, o2);
    }
    json_object_set_new(j, "results", res);
    int n = r.n;
    rf_serve_topk_parsed_free(&p);
    release(s, g, ctx);
    char *body = dump(j);
    count(s, EP_TOPK, body ? 200 : 500, now_s() - t0, n);
    return send_text(c, 200, body, "application/json");
}

/* Prometheus text exposition format. */
static char *metrics_text(rf_server *s)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&buf, &len);
    if (!fp) return NULL;
    pthread_mutex_lock(&s->mu);
    fprintf(fp, "# HELP resflow_http_requests_total HTTP requests answered, by endpoint and status code.\n"
                "# TYPE resflow_http_requests_total counter\n");
    for (int ep = 0; ep < N_EP; ep++)
        for (int ci = 0; ci <= N_CODES; ci++)
            if (s->req[ep][ci])
                fprintf(fp, "resflow_http_requests_total{endpoint=\"%s\",code=\"%s%d\"} %llu\n", EP_NAME[ep],
                        ci == N_CODES ? "other" : "", ci == N_CODES ? 0 : CODES[ci], s->req[ep][ci]);
    fprintf(fp, "# HELP resflow_http_errors_total Requests answered with a 4xx or 5xx status.\n"
                "# TYPE resflow_http_errors_total counter\nresflow_http_errors_total %llu\n", s->errors);
    fprintf(fp, "# HELP resflow_score_candidates_total Candidates scored.\n"
                "# TYPE resflow_score_candidates_total counter\nresflow_score_candidates_total %llu\n",
            s->candidates_total);
    for (int h = 0; h < 2; h++) {
        const char *nm = h ? "resflow_topk_duration_seconds" : "resflow_score_duration_seconds";
        fprintf(fp, "# HELP %s Time to answer POST %s.\n# TYPE %s histogram\n", nm, h ? "/v1/topk" : "/v1/score", nm);
        unsigned long long cum = 0;
        for (int b = 0; b < N_BUCKETS; b++) {
            cum += s->lat_bucket[h][b];
            fprintf(fp, "%s_bucket{le=\"%g\"} %llu\n", nm, BUCKETS[b], cum);
        }
        cum += s->lat_bucket[h][N_BUCKETS];
        fprintf(fp, "%s_bucket{le=\"+Inf\"} %llu\n", nm, cum);
        fprintf(fp, "%s_sum %.9f\n%s_count %llu\n", nm, s->lat_sum[h], nm, s->lat_count[h]);
    }
    fprintf(fp, "# HELP resflow_topk_items_total Items returned by POST /v1/topk.\n"
                "# TYPE resflow_topk_items_total counter\nresflow_topk_items_total %llu\n",
            s->topk_items_total);
    fprintf(fp, "# HELP resflow_model_reloads_total Model reloads, by result.\n"
                "# TYPE resflow_model_reloads_total counter\n"
                "resflow_model_reloads_total{result=\"ok\"} %llu\nresflow_model_reloads_total{result=\"failed\"} %llu\n",
            s->reload_ok, s->reload_failed);
    fprintf(fp, "# HELP resflow_model_info The model served: file, generation (1 + reloads), file mtime.\n"
                "# TYPE resflow_model_info gauge\n"
                "resflow_model_info{path=\"");
    for (const char *p = s->path; *p; p++) {
        if (*p == '\\' || *p == '"') fputc('\\', fp);
        if (*p == '\n') fputs("\\n", fp);
        else fputc(*p, fp);
    }
    fprintf(fp, "\",generation=\"%ld\",mtime=\"%lld\",version=\"%s\"} 1\n", s->cur->number, s->cur->mtime,
            rf_version());
    const rf_index *ix = rf_scorer_index(s->cur->scorer);
    if (ix)
        fprintf(fp, "# HELP resflow_index_items Items in the served item index.\n"
                    "# TYPE resflow_index_items gauge\nresflow_index_items %zu\n", rf_index_size(ix));
    pthread_mutex_unlock(&s->mu);
    if (fclose(fp)) {
        free(buf);
        return NULL;
    }
    return buf;
}

static int loopback(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (!ci || !ci->client_addr) return 0;
    if (ci->client_addr->sa_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)(const void *)ci->client_addr;
        return (ntohl(a->sin_addr.s_addr) >> 24) == 127;
    }
    if (ci->client_addr->sa_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)(const void *)ci->client_addr;
        return IN6_IS_ADDR_LOOPBACK(&a->sin6_addr);
    }
    return 0;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                               const char *version, const char *upload_data, size_t *upload_size, void **con_cls)
{
    (void)version;
    rf_server *s = cls;
    conn *cn = *con_cls;
    int post = !strcmp(method, "POST"), get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
    if (!cn) {
        cn = calloc(1, sizeof *cn);
        if (!cn) return MHD_NO;
        clock_gettime(CLOCK_MONOTONIC, &cn->t0);
        *con_cls = cn;
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (post && cl) {
            char *end;
            errno = 0;
            unsigned long long v = strtoull(cl, &end, 10);
            if (errno || end == cl || v > s->o.max_body) cn->too_large = 1;
        }
        return MHD_YES;
    }
    double t0 = (double)cn->t0.tv_sec + 1e-9 * (double)cn->t0.tv_nsec;
    if (*upload_size) { /* body data: keep up to max_body, drop the rest */
        size_t m = *upload_size;
        *upload_size = 0;
        if (cn->too_large || cn->n + m > s->o.max_body) {
            /* read and drop the rest, so the client reads the 413 (closing the socket on unread
             * data would reset the connection); a client that never stops is cut off */
            cn->too_large = 1;
            free(cn->body);
            cn->body = NULL;
            cn->n = cn->cap = 0;
            cn->dropped += m;
            return cn->dropped > s->o.max_body + ((size_t)64 << 20) ? MHD_NO : MHD_YES;
        }
        if (cn->n + m + 1 > cn->cap) {
            size_t cap = cn->cap ? cn->cap : 4096;
            while (cap < cn->n + m + 1) cap *= 2;
            char *b = realloc(cn->body, cap);
            if (!b) return MHD_NO;
            cn->body = b;
            cn->cap = cap;
        }
        memcpy(cn->body + cn->n, upload_data, m);
        cn->n += m;
        return MHD_YES;
    }
    /* the whole request is in */
    int ep = !strcmp(url, "/v1/score") ? EP_SCORE : !strcmp(url, "/v1/topk") ? EP_TOPK : !strcmp(url, "/healthz") ? EP_HEALTHZ
           : !strcmp(url, "/metrics") ? EP_METRICS : !strcmp(url, "/admin/reload") ? EP_RELOAD : EP_OTHER;
    if (ep == EP_OTHER) {
        char msg[200];
        snprintf(msg, sizeof msg, "no such path: %.150s", url);
        return send_error(s, c, ep, t0, 404, "not_found", msg, NULL, 0, 0);
    }
    int want_post = ep == EP_SCORE || ep == EP_TOPK || ep == EP_RELOAD;
    if (want_post ? !post : !get) {
        char msg[200];
        snprintf(msg, sizeof msg, "%s takes %s, not %.20s", EP_NAME[ep], want_post ? "POST" : "GET", method);
        enum MHD_Result ret;
        struct MHD_Response *r;
        char *body = error_json("method_not_allowed", msg, NULL, 0, 0);
        count(s, ep, 405, now_s() - t0, 0);
        if (!body) return MHD_NO;
        r = MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
        if (!r) {
            free(body);
            return MHD_NO;
        }
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, want_post ? "POST" : "GET");
        ret = MHD_queue_response(c, MHD_HTTP_METHOD_NOT_ALLOWED, r);
        MHD_destroy_response(r);
        return ret;
    }
    if (cn->too_large) {
        char msg[128];
        snprintf(msg, sizeof msg, "the body is larger than %zu bytes", s->o.max_body);
        return send_error(s, c, ep, t0, 413, "too_large", msg, NULL, 0, 0);
    }
    if (ep == EP_SCORE) return do_score(s, c, cn, t0);
    if (ep == EP_TOPK) return do_topk(s, c, cn, t0);
    if (ep == EP_HEALTHZ) {
        count(s, ep, 200, now_s() - t0, 0);
        return send_text(c, 200, strdup("{\"status\":\"ok\"}\n"), "application/json");
    }
    if (ep == EP_METRICS) {
        count(s, ep, 200, now_s() - t0, 0);
        return send_text(c, 200, metrics_text(s), "text/plain; version=0.0.4");
    }
    /* EP_RELOAD */
    if (!loopback(c)) return send_error(s, c, ep, t0, 403, "forbidden", "reload from loopback clients only", NULL, 0, 0);
    rf_error e;
    rf_error_clear(&e);
    if (rf_server_reload(s, &e)) {
        char buf[1600];
        return send_error(s, c, ep, t0, 500, "reload_failed", rf_error_format(&e, buf, sizeof buf), NULL, 0, 0);
    }
    long number;
    pthread_mutex_lock(&s->mu);
    number = s->cur->number;
    pthread_mutex_unlock(&s->mu);
    char *body = malloc(96);
    if (body) snprintf(body, 96, "{\"status\":\"reloaded\",\"generation\":%ld}\n", number);
    count(s, ep, 200, now_s() - t0, 0);
    return send_text(c, 200, body, "application/json");
}

/* After the response went out (or the connection broke): --max-requests counts here, so that
 * the last response is sent before the server stops. */
static void completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe)
{
    rf_server *s = cls;
    (void)c;
    (void)toe;
    conn *cn = *con_cls;
    pthread_mutex_lock(&s->mu);
    s->answered++;
    pthread_mutex_unlock(&s->mu);
    if (cn) {
        free(cn->body);
        free(cn);
    }
    *con_cls = NULL;
}

/* ---- start / stop --------------------------------------------------------------------------------- */

rf_status rf_server_start(const char *model_path, const rf_server_opts *opts, rf_server **out, rf_error *err)
{
    if (!model_path || !out) return rf_errorf(err, RF_EUSAGE, "rf_server_start: NULL argument");
    *out = NULL;
    rf_server_opts o = opts ? *opts : (rf_server_opts){0};
    if (o.port < 0 || o.port > 65535 || o.threads < 0 || o.max_candidates < 0 || o.max_connections < 0 ||
        o.timeout < 0 || o.max_requests < 0)
        return rf_errorf(err, RF_EUSAGE, "server: port 0..65535; threads, limits >= 0");
    if (!o.threads) o.threads = 2;
    if (!o.max_body) o.max_body = 1 << 20;
    if (!o.max_candidates) o.max_candidates = 1000;
    if (!o.max_connections) o.max_connections = 64;
    if (!o.timeout) o.timeout = 10;
    if (!o.max_k) o.max_k = 1000;
    rf_server *s = calloc(1, sizeof *s);
    if (!s) return rf_errorf(err, RF_ENOMEM, "out of memory");
    snprintf(s->host, sizeof s->host, "%s", o.host ? o.host : "127.0.0.1");
    o.host = s->host;
    s->o = o;
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)o.port);
    if (inet_pton(AF_INET, s->host, &sa.sin_addr) != 1) {
        rf_errorf(err, RF_EUSAGE, "server: --host '%s' is not an IPv4 address", s->host);
        free(s);
        return RF_EUSAGE;
    }
    s->path = strdup(model_path);
    s->index = o.index ? strdup(o.index) : NULL;
    s->o.index = s->index;
    if (!s->path || (o.index && !s->index) || pthread_mutex_init(&s->mu, NULL)) {
        free(s->path);
        free(s->index);
        free(s);
        return rf_errorf(err, RF_ENOMEM, "out of memory");
    }
    rf_status st = load_gen(s, &s->cur, err);
    if (st) {
        pthread_mutex_destroy(&s->mu);
        free(s->path);
        free(s->index);
        free(s);
        return st;
    }
    s->cur->number = s->generations = 1;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL;
    s->d = MHD_start_daemon(flags, 0, NULL, NULL, handler, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                            MHD_OPTION_THREAD_POOL_SIZE, (unsigned)o.threads, MHD_OPTION_CONNECTION_LIMIT,
                            (unsigned)o.max_connections, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)o.timeout,
                            MHD_OPTION_NOTIFY_COMPLETED, completed, s, MHD_OPTION_END);
    if (!s->d) {
        int e = errno;
        rf_errorf(err, RF_EIO, "server: cannot listen on %s:%d (%s)", s->host, o.port,
                  e ? strerror(e) : "libmicrohttpd failed");
        gen_free(s->cur);
        pthread_mutex_destroy(&s->mu);
        free(s->path);
        free(s->index);
        free(s);
        return RF_EIO;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? di->port : o.port;
    *out = s;
    return RF_OK;
}

int rf_server_port(const rf_server *s) { return s ? s->port : 0; }

int rf_server_done(const rf_server *s)
{
    if (!s || s->o.max_requests <= 0) return 0;
    rf_server *m = (rf_server *)s; /* the mutex only */
    pthread_mutex_lock(&m->mu);
    int done = m->answered >= s->o.max_requests;
    pthread_mutex_unlock(&m->mu);
    return done;
}

void rf_server_stop(rf_server *s)
{
    if (!s) return;
    MHD_stop_daemon(s->d);
    gen_free(s->cur); /* every request is done: the server's reference is the last */
    pthread_mutex_destroy(&s->mu);
    free(s->path);
    free(s->index);
    free(s);
}
