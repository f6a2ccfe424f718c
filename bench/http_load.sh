#!/bin/sh
# bench/http_load.sh - `resflow serve` under load: the in-process scoring core first
# (bench_score: requests of N raw candidates, T threads) beside the same model in PyTorch
# (bench/score_peer.py: requests/s, p50, p99, the ratio), then the HTTP cost of one request: for
# each size in SIZES, rf_score alone on one thread (CPU ms per request) and the server on one
# connection for SSECS seconds (requests/s and the server's CPU ms per request, from
# /proc/PID/stat: load-robust), and the difference, the HTTP layer's CPU per request; then the
# HTTP server driven by wrk with C connections for S seconds (SECS=0 skips it), the same
# request as POST /v1/score. Prints requests/s, latency percentiles, non-2xx responses and
# socket errors, and the server's resident memory sampled every 5 s (flat = no leak). The CPU is
# named first.
#   N=1000 THREADS=2 CONNS=64 SECS=60 SIZES="10 200 1000" SSECS=5 sh bench/http_load.sh  (make bench-http)
# MODEL=FILE scores that model instead of training the default one.
# Needs wrk (Debian package wrk). Binds 127.0.0.1 only; the server stops when the script ends.
set -eu
RF=${RF:-build/resflow}
BS=${BS:-build/bench_score}
N=${N:-1000}
THREADS=${THREADS:-2}
CONNS=${CONNS:-64}
SECS=${SECS:-60}
SIZES=${SIZES:-10 200 1000}
SSECS=${SSECS:-5}
command -v wrk >/dev/null || { echo "http_load.sh: wrk is not installed (apt-get install wrk)" >&2; exit 1; }
T=$(mktemp -d)
SPID=""
trap '[ -n "$SPID" ] && kill "$SPID" 2>/dev/null; rm -rf "$T"' EXIT
echo "cpu: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores"
if [ -n "${MODEL:-}" ]; then cp "$MODEL" "$T/m.model"; else "$RF" train -q --set train.epochs=1 -o "$T/m.model" >/dev/null; fi
MAXN=$N
for n in $SIZES; do [ "$n" -gt "$MAXN" ] && MAXN=$n; done
"$RF" synth -q --set synth.rows=$((MAXN * 2)) -o "$T/d.csv"
# the scoring core against its peer, the same model in PyTorch (bench/score_peer.py), N raw
# candidates per request, each on 2 cores: rf_score on THREADS threads, torch with 2 threads
"$BS" -m "$T/m.model" --data "$T/d.csv" --candidates "$N" --threads "$THREADS" --seconds "$SSECS" \
    --body "$T/body.json" --shape "$T/shape.json" --json >"$T/core"
if /usr/bin/python3 -c 'import torch' 2>/dev/null; then
    /usr/bin/python3 "$(dirname "$0")/score_peer.py" --shape "$T/shape.json" --body "$T/body.json" \
        --seconds "$SSECS" --threads 2 >"$T/peer"
    awk -v N="$N" -v TH="$THREADS" 'NR == FNR { c = $0; next } { p = $0 }
        function f(s, k) { return match(s, "\"" k "\":[0-9.]*") ? substr(s, RSTART + length(k) + 3, RLENGTH - length(k) - 3) : "?" }
        END { printf "score %d raw candidates per request: resflow rf_score (%d threads) %s requests/s, p50 %s ms, p99 %s ms," \
                     " CPU %s ms/request; PyTorch (2 threads, dict encoding + forward + sort) %s requests/s, p50 %s ms, p99 %s ms," \
                     " CPU %s ms/request (forward alone p50 %s ms); requests/s ratio resflow/PyTorch %.2f\n", N, TH,
                     f(c, "requests_per_s"), f(c, "p50_ms"), f(c, "p99_ms"), f(c, "cpu_ms_per_request"),
                     f(p, "requests_per_s"), f(p, "p50_ms"), f(p, "p99_ms"), f(p, "cpu_ms_per_request"),
                     f(p, "forward_only_p50_ms"), f(c, "requests_per_s") / f(p, "requests_per_s") }' "$T/core" "$T/peer"
else
    echo "score_peer: /usr/bin/python3 has no torch (Debian python3-torch): the PyTorch peer is skipped"
    cat "$T/core"
fi

"$RF" serve -q -m "$T/m.model" --port 0 --threads "$THREADS" --max-connections $((CONNS + 16)) \
    --max-body 16000000 --max-candidates "$MAXN" 2>"$T/serr" &
SPID=$!
PORT=""
for i in $(seq 200); do
    PORT=$(sed -n 's|^listening on http://127\.0\.0\.1:\([0-9]*\)$|\1|p' "$T/serr")
    [ -n "$PORT" ] && break
    kill -0 "$SPID" 2>/dev/null || { cat "$T/serr" >&2; exit 1; }
    sleep 0.1
done
[ -n "$PORT" ] || { echo "http_load.sh: the server did not start" >&2; exit 1; }
cat >"$T/post.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = assert(io.open(os.getenv("BODY"), "rb"))
wrk.body = f:read("*a")
f:close()
LUA
rss() { awk '$1 == "VmRSS:" {print $2}' "/proc/$SPID/status"; }
cputicks() { awk '{print $14 + $15}' "/proc/$SPID/stat"; }
HZ=$(getconf CLK_TCK)
# one connection, one request at a time: the HTTP layer's CPU per request beside rf_score's
for n in $SIZES; do
    "$BS" -m "$T/m.model" --data "$T/d.csv" --candidates "$n" --threads 1 --seconds "$SSECS" --body "$T/b$n.json" \
        --json >"$T/bs$n"
    sc=$(sed 's/.*"cpu_ms_per_request":\([0-9.]*\).*/\1/' "$T/bs$n")
    srps=$(sed 's/.*"requests_per_s":\([0-9.]*\).*/\1/' "$T/bs$n")
    BODY="$T/b$n.json" wrk -t1 -c1 -d1s -s "$T/post.lua" "http://127.0.0.1:$PORT/v1/score" >/dev/null
    c0=$(cputicks)
    BODY="$T/b$n.json" wrk -t1 -c1 -d"${SSECS}s" --latency -s "$T/post.lua" "http://127.0.0.1:$PORT/v1/score" >"$T/w$n"
    c1=$(cputicks)
    reqs=$(sed -n 's/^ *\([0-9]*\) requests in.*/\1/p' "$T/w$n")
    rps=$(sed -n 's/^Requests\/sec: *//p' "$T/w$n")
    p50=$(awk '$1 == "50%" {print $2}' "$T/w$n")
    bytes=$(wc -c <"$T/b$n.json")
    awk -v n="$n" -v b="$bytes" -v r="$rps" -v p="$p50" -v q="$reqs" -v d=$((c1 - c0)) -v hz="$HZ" -v sc="$sc" -v sr="$srps" 'BEGIN {
        cpu = q > 0 ? 1000 * d / hz / q : 0
        printf "one connection, %d candidates (%d-byte body): %s requests/s, p50 %s; server CPU %.3f ms per request;" \
               " rf_score alone %.3f ms CPU (%s requests/s); HTTP layer %.3f ms CPU per request\n", n, b, r, p, cpu, sc, sr, cpu - sc }'
done
[ "$SECS" -gt 0 ] || exit 0
# one warm-up request so the first sample sees the server's steady buffers
BODY="$T/body.json" wrk -t1 -c1 -d2s -s "$T/post.lua" "http://127.0.0.1:$PORT/v1/score" >/dev/null
(
    while kill -0 "$SPID" 2>/dev/null; do
        rss
        sleep 5
    done
) >"$T/rss" &
RPID=$!
BODY="$T/body.json" wrk -t2 -c"$CONNS" -d"${SECS}s" --timeout 10s --latency -s "$T/post.lua" \
    "http://127.0.0.1:$PORT/v1/score" >"$T/wrk"
kill "$RPID" 2>/dev/null || true
rps=$(sed -n 's/^Requests\/sec: *//p' "$T/wrk")
p50=$(awk '$1 == "50%" {print $2}' "$T/wrk")
p99=$(awk '$1 == "99%" {print $2}' "$T/wrk")
non2xx=$(sed -n 's/^ *Non-2xx or 3xx responses: *//p' "$T/wrk")
sockerr=$(sed -n 's/^ *Socket errors: *//p' "$T/wrk")
errs=$(curl -s "http://127.0.0.1:$PORT/metrics" | awk '$1 == "resflow_http_errors_total" {print $2}')
echo "http: POST /v1/score with $N candidates, $CONNS connections, ${SECS} s, server threads $THREADS:" \
    "$rps requests/s, latency p50 $p50, p99 $p99, non-2xx ${non2xx:-0}, socket errors ${sockerr:-none}," \
    "4xx/5xx in /metrics $errs"
echo "server resident memory (kB, every 5 s): $(tr '\n' ' ' <"$T/rss")"
