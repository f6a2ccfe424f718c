#!/bin/sh
# bench/http_load.sh - `resflow serve` under load: the in-process scoring core first
# (bench_score: requests of N raw candidates, T threads), then the HTTP server driven by wrk with
# C connections for S seconds, the same request as POST /v1/score. Prints requests/s, latency
# percentiles, non-2xx responses and socket errors, and the server's resident memory sampled
# every 5 s (flat = no leak). The CPU is named first.
#   N=1000 THREADS=2 CONNS=64 SECS=60 sh bench/http_load.sh      (make bench-http)
# Needs wrk (Debian package wrk). Binds 127.0.0.1 only; the server stops when the script ends.
set -eu
RF=${RF:-build/resflow}
BS=${BS:-build/bench_score}
N=${N:-1000}
THREADS=${THREADS:-2}
CONNS=${CONNS:-64}
SECS=${SECS:-60}
command -v wrk >/dev/null || { echo "http_load.sh: wrk is not installed (apt-get install wrk)" >&2; exit 1; }
T=$(mktemp -d)
SPID=""
trap '[ -n "$SPID" ] && kill "$SPID" 2>/dev/null; rm -rf "$T"' EXIT
echo "cpu: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores"
"$RF" train -q --set train.epochs=1 -o "$T/m.model" >/dev/null
"$RF" synth -q --set synth.rows=$((N * 2)) -o "$T/d.csv"
"$BS" -m "$T/m.model" --data "$T/d.csv" --candidates "$N" --threads "$THREADS" --seconds 10 --body "$T/body.json"

"$RF" serve -q -m "$T/m.model" --port 0 --threads "$THREADS" --max-connections $((CONNS + 16)) \
    --max-body 16000000 --max-candidates "$N" 2>"$T/serr" &
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
