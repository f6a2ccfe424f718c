/* serve_http.h - an HTTP/JSON server over the scoring core (serve.h), on libmicrohttpd, and its
 * request parser. docs/serving.md describes the API (POST /v1/score, GET /healthz, GET /metrics,
 * POST /admin/reload).
 *
 *   rf_server *srv;
 *   rf_server_opts o = {.port = 0};                  (0 = the OS chooses; rf_server_port says)
 *   rf_server_start("m.model", &o, &srv, err);       (serves from its own threads)
 *   ... rf_server_reload(srv, err) on SIGHUP ...
 *   rf_server_stop(srv);
 *
 * Threads: libmicrohttpd's internal thread pool (opts.threads); every worker scores with a
 * rf_score_ctx of its own, taken from a pool of the current model. A reload loads the file
 * again and swaps the model atomically: requests already running finish with the old model,
 * which is freed after the last of them.
 */
#ifndef RESFLOW_SERVE_HTTP_H
#define RESFLOW_SERVE_HTTP_H

#include <stddef.h>

#include "serve.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- the request parser (no server needed: usable by a fuzz target) ------------------------ */

/* A parsed POST /v1/score body: {"context": {...}, "candidates": [{...}, ...], "top": N}. Values
 * are JSON strings or numbers (integers as integers, other numbers with %.17g: what the loader's
 * parser reads exactly); null is a missing value. */
typedef struct {
    rf_score_request req;  /* pointers into the parsed storage, valid until rf_serve_parsed_free;
                              a name may be the columns list's own pointer (keep it alive too) */
    int top;               /* "top" when given (>= 0), else -1 */
    char field[160];       /* on error: the field at fault ("candidates[3].price", "top"), or "" */
    void *priv_;           /* the storage */
} rf_serve_parsed;

/* Parse a request body of n bytes (need not be NUL-terminated): a one-pass tokenizer for
 * well-formed bodies, jansson for everything else (so every error below is jansson's and the
 * parser's, unchanged). columns (n_columns of them; NULL
 * = no check) are the columns a request may name: another name is an error. At most
 * max_candidates candidates (<= 0: no limit). Errors (out->field names the field; out holds
 * nothing to free):
 *   RF_EDATA   malformed JSON (err->line/col from jansson, and in the message), a body that is
 *              not an object, "context" not an object, "candidates" missing or not an array, a
 *              candidate not an object, a value neither a string, a number nor null, a bad "top";
 *   RF_EUSAGE  an unknown column, more than max_candidates candidates;
 *   RF_ENOMEM. */
RF_API rf_status rf_serve_parse_request(const char *body, size_t n, const char *const *columns,
                                        int n_columns, int max_candidates, rf_serve_parsed *out,
                                        rf_error *err) RF_WUR;
RF_API void rf_serve_parsed_free(rf_serve_parsed *p);

/* A parsed POST /v1/topk body: {"context": {...}, "k": N, "mode": "exact"|"quantized",
 * "shortlist": S}. */
typedef struct {
    rf_features context;   /* pointers into the parsed storage */
    int k;                 /* "k", 1..max_k (default 10) */
    int quantized;         /* "mode": "exact" (default) 0, "quantized" 1 */
    int shortlist;         /* "shortlist", 0..max_shortlist (0, the default: the scorer's rule) */
    char field[160];       /* on error: the field at fault ("k", "context.age"), or "" */
    void *priv_;
} rf_serve_topk_parsed;

/* Parse a /v1/topk body as rf_serve_parse_request does a /v1/score one (columns: the columns a
 * context may name). Errors: RF_EDATA malformed JSON, not an object, an unknown field, "context"
 * not an object, a bad value or "mode"; RF_EUSAGE an unknown column, "k" outside 1..max_k,
 * "shortlist" outside 0..max_shortlist (max <= 0: no limit); RF_ENOMEM. */
RF_API rf_status rf_serve_parse_topk(const char *body, size_t n, const char *const *columns, int n_columns,
                                     int max_k, int max_shortlist, rf_serve_topk_parsed *out,
                                     rf_error *err) RF_WUR;
RF_API void rf_serve_topk_parsed_free(rf_serve_topk_parsed *p);

/* ---- the server ------------------------------------------------------------------------------ */

typedef struct rf_server rf_server;

typedef struct {
    const char *host;     /* address to bind (NULL = "127.0.0.1"); an IPv4 address */
    int port;             /* 0 = the OS chooses (rf_server_port) */
    int threads;          /* worker threads (0 = 2) */
    size_t max_body;      /* request body bytes (0 = 1 MiB): more is 413 */
    int max_candidates;   /* candidates per request (0 = 1000): more is 400 */
    int max_connections;  /* open connections (0 = 64) */
    int timeout;          /* seconds a connection may stay idle (0 = 10) */
    const char *index;    /* an item index of the model (.rfi): POST /v1/topk; NULL = none */
    int max_k;            /* k per /v1/topk (0 = 1000): more is 400 */
    int precision;        /* of the scoring (rf_scorer_opts.precision): fp32 (0) or bf16 */
    long max_requests;    /* > 0: rf_server_done turns 1 after this many requests */
    rf_log_fn log;        /* reloads and their failures; NULL = silent */
    void *log_ud;
} rf_server_opts;

/* Open the model (rf_scorer_open, with opts->index) and start serving. opts NULL = defaults. A
 * reload opens the model and the index again and swaps both together. */
RF_API rf_status rf_server_start(const char *model_path, const rf_server_opts *opts, rf_server **out,
                                 rf_error *err) RF_WUR;
/* The port bound. */
RF_API int rf_server_port(const rf_server *s);
/* Load the model file again and swap it in; on failure the old model stays (and the failure is
 * counted in /metrics). Safe from any thread. */
RF_API rf_status rf_server_reload(rf_server *s, rf_error *err) RF_WUR;
/* 1 once opts.max_requests requests have been answered. */
RF_API int rf_server_done(const rf_server *s);
/* Stop serving (waits for the running requests), free everything. */
RF_API void rf_server_stop(rf_server *s);

#ifdef __cplusplus
}
#endif
#endif
