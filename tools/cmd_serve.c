/* cmd_serve.c - resflow serve: the HTTP/JSON scoring server (serve_http.h) in the foreground.
 * SIGHUP reloads the model file; SIGINT/SIGTERM stop it (exit 0). */
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "resflow/serve_http.h"

static const char *serve_help =
    "usage: resflow serve -m MODEL [--index ITEMS.rfi] [--host H] [--port P] [--threads N]\n"
    "                     [--max-body BYTES] [--max-candidates N] [--max-k N] [--max-connections N]\n"
    "                     [--timeout S] [--max-requests N] [--precision fp32|bf16|int8]\n"
    "\n"
    "Serve a model over HTTP/JSON (docs/serving.md): POST /v1/score scores a context and its\n"
    "candidates ({\"context\": {...}, \"candidates\": [{...}, ...], \"top\": N}) and answers the\n"
    "per-task probabilities and the ranking score, best first; with --index (a twin-tower\n"
    "model's item index, 'resflow index'), POST /v1/topk answers the k best items of the index\n"
    "for a context ({\"context\": {...}, \"k\": 10, \"mode\": \"exact\"|\"quantized\"}); GET /healthz; GET /metrics\n"
    "(Prometheus text); POST /admin/reload (loopback clients only) loads the model file again.\n"
    "Prints 'listening on http://HOST:PORT' on stderr once it accepts requests. SIGHUP reloads\n"
    "the model file (a failed reload keeps the old model); SIGINT/SIGTERM stop the server.\n"
    "\n"
    "  -m, --model FILE        model file written by 'resflow train'\n"
    "      --index FILE        item index of that model ('resflow index'): POST /v1/topk; a reload\n"
    "                          loads the model and the index again, together\n"
    "      --host H            IPv4 address to bind (default 127.0.0.1)\n"
    "      --port P            port (default 8080; 0 = the OS chooses)\n"
    "      --threads N         worker threads, each with its own scoring context (default 2)\n"
    "      --max-body BYTES    largest request body (default 1048576; larger: 413)\n"
    "      --max-candidates N  candidates per request (default 1000; more: 400)\n"
    "      --max-k N           k per /v1/topk request (default 1000; more: 400)\n"
    "      --max-connections N open connections (default 64)\n"
    "      --timeout S         seconds a connection may stay idle (default 10)\n"
    "      --max-requests N    exit after answering N requests (for tests)\n"
    "      --precision P       fp32 (default), bf16 or int8: score the model's GEMMs in bfloat16\n"
    "                          with fp32 sums (AVX512-BF16 CPUs) or a tower model's in int8\n"
    "                          (AVX512-VNNI CPUs), as 'resflow predict --precision'\n"
    "  -q, --quiet             no progress output\n"
    "  -h, --help              this help\n";

static int num(const char *opt, const char *s, long long lo, long long hi, long long *v)
{
    char *end;
    long long x = strtoll(s, &end, 10);
    if (end == s || *end || x < lo || x > hi)
        return usage_error("serve", "--%s must be an integer in %lld..%lld, not '%s'", opt, lo, hi, s);
    *v = x;
    return 0;
}

int cmd_serve(int argc, char **argv)
{
    static const struct option lo[] = {{"model", required_argument, 0, 'm'},
                                       {"host", required_argument, 0, 'H'},
                                       {"port", required_argument, 0, 'p'},
                                       {"threads", required_argument, 0, 't'},
                                       {"max-body", required_argument, 0, 'b'},
                                       {"max-candidates", required_argument, 0, 'c'},
                                       {"max-connections", required_argument, 0, 'C'},
                                       {"timeout", required_argument, 0, 'T'},
                                       {"max-requests", required_argument, 0, 'r'},
                                       {"index", required_argument, 0, 'I'},
                                       {"max-k", required_argument, 0, 'k'},
                                       {"precision", required_argument, 0, 'P'},
                                       {"quiet", no_argument, 0, 'q'},
                                       {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
    const char *model = NULL;
    rf_server_opts o = {.port = 8080};
    long long v = 0;
    int c, rc;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "m:qh", lo, NULL)) != -1) {
        switch (c) {
        case 'm': model = optarg; break;
        case 'H': o.host = optarg; break;
        case 'p': if ((rc = num("port", optarg, 0, 65535, &v))) return rc; o.port = (int)v; break;
        case 't': if ((rc = num("threads", optarg, 1, 256, &v))) return rc; o.threads = (int)v; break;
        case 'b': if ((rc = num("max-body", optarg, 1, 1LL << 32, &v))) return rc; o.max_body = (size_t)v; break;
        case 'c': if ((rc = num("max-candidates", optarg, 1, 1000000, &v))) return rc; o.max_candidates = (int)v; break;
        case 'C': if ((rc = num("max-connections", optarg, 1, 100000, &v))) return rc; o.max_connections = (int)v; break;
        case 'T': if ((rc = num("timeout", optarg, 1, 86400, &v))) return rc; o.timeout = (int)v; break;
        case 'I': o.index = optarg; break;
        case 'P': if ((rc = parse_precision("serve", optarg, &o.precision))) return rc; break;
        case 'k': if ((rc = num("max-k", optarg, 1, 100000, &v))) return rc; o.max_k = (int)v; break;
        case 'r': if ((rc = num("max-requests", optarg, 1, LONG_MAX, &v))) return rc; o.max_requests = (long)v; break;
        case 'q': g_quiet = 1; break;
        case 'h': fputs(serve_help, stdout); return 0;
        default: return usage_error("serve", "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc) return usage_error("serve", "unexpected argument '%s'", argv[optind]);
    if (!model) return usage_error("serve", "--model is required");
    o.log = log_line;

    /* the signals are taken by sigtimedwait below: blocked here, so the server's threads
     * (which inherit this mask) never run a handler */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    rf_server *srv;
    rf_error e;
    rf_error_clear(&e);
    if (rf_server_start(model, &o, &srv, &e)) return die(&e);
    fprintf(stderr, "listening on http://%s:%d\n", o.host ? o.host : "127.0.0.1", rf_server_port(srv));
    fflush(stderr);
    struct timespec tick = {0, 50 * 1000 * 1000};
    for (;;) {
        int sig = sigtimedwait(&set, NULL, &tick);
        if (sig == SIGINT || sig == SIGTERM) {
            note("%s: stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
            break;
        }
        if (sig == SIGHUP) {
            rf_error re;
            rf_error_clear(&re);
            if (rf_server_reload(srv, &re)) { /* logged and counted by the server */ }
        }
        if (rf_server_done(srv)) {
            note("answered %ld requests: stopping", o.max_requests);
            break;
        }
    }
    rf_server_stop(srv);
    return 0;
}
