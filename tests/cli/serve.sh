# resflow serve: a server on 127.0.0.1 (port chosen by the OS) answers /healthz, scores requests
# exactly as `resflow predict` scores the same rows, rejects bad requests with 4xx naming the
# field, counts everything in /metrics, reloads on SIGHUP and stops on SIGTERM with exit 0.
# Bounded: every client call has a timeout, and the whole script is run under `timeout 60`.
if [ -z "${SERVE_SH_BOUNDED:-}" ]; then
    SERVE_SH_BOUNDED=1 exec timeout -k 5 60 sh "$0" "$@"
fi
. tests/cli/_common.sh
SPID=""
trap '[ -n "$SPID" ] && kill -KILL "$SPID" 2>/dev/null; rm -rf "$T"' EXIT
expect_exit 0 "$RF" train $SMALL -o "$T/m.model"
expect_exit 0 "$RF" synth --set synth.preset=search --set synth.rows=40 -q -o "$T/d.csv"
expect_exit 0 "$RF" predict -m "$T/m.model" --data "$T/d.csv" -o "$T/p.tsv" -q
expect_exit 0 "$RF" serve --help
expect_out "POST /v1/score"
expect_exit 1 "$RF" serve --port 0
expect_err "model is required"

"$RF" serve -m "$T/m.model" --port 0 --threads 2 --max-body 16000 --max-candidates 45 2>"$T/serr" &
SPID=$!
wait_server "$T/serr" "$SPID"

# the client: python3's urllib (METHOD PATH [BODY-FILE]) -> prints the status, the body in $T/body
req() {
    python3 - "$PORT" "$@" >"$T/status" <<'EOF' || fail "client error: $*"
import os, sys, urllib.request, urllib.error
port, method, path = sys.argv[1], sys.argv[2], sys.argv[3]
data = open(sys.argv[4], 'rb').read() if len(sys.argv) > 4 else None
r = urllib.request.Request('http://127.0.0.1:%s%s' % (port, path), data=data, method=method)
try:
    with urllib.request.urlopen(r, timeout=10) as f:
        code, body = f.status, f.read()
except urllib.error.HTTPError as e:
    code, body = e.code, e.read()
open(os.environ['T'] + '/body', 'wb').write(body)
print(code)
EOF
}
export T
expect_status() { [ "$(cat "$T/status")" = "$1" ] || { cat "$T/body" >&2; fail "status $(cat "$T/status"), expected $1"; }; }
body_has() { grep -q -- "$1" "$T/body" || { cat "$T/body" >&2; fail "body lacks '$1'"; }; }

req GET /healthz; expect_status 200; body_has '"status":"ok"'
# the port is taken; a host that is not an IPv4 address
expect_exit 3 "$RF" serve -m "$T/m.model" --port "$PORT"
expect_err "cannot listen on 127.0.0.1:$PORT"
expect_exit 1 "$RF" serve -m "$T/m.model" --host localhost --port 0
expect_err "not an IPv4 address"

# the rows of d.csv as one request: every feature column of a row in its candidate, as the
# file's text (JSON strings: the loader reads the same characters)
python3 - "$T/d.csv" "$T/req.json" "$T/reqnum.json" <<'EOF'
import csv, json, sys
rows = list(csv.DictReader(open(sys.argv[1])))
drop = {'click', 'order', 'group', 'p_click', 'p_order'}
cands = [{k: v for k, v in r.items() if k not in drop} for r in rows]
json.dump({'candidates': cands}, open(sys.argv[2], 'w'))
num = [{k: (float(v) if '.' in v else int(v)) for k, v in c.items()} for c in cands]
json.dump({'context': {}, 'candidates': num, 'top': 5}, open(sys.argv[3], 'w'))
EOF
req POST /v1/score "$T/req.json"; expect_status 200; cp "$T/body" "$T/res1.json"
python3 - "$T/res1.json" "$T/p.tsv" <<'EOF' || fail "served scores differ from resflow predict"
import json, sys
d = json.load(open(sys.argv[1]))
assert d['tasks'] == ['ctr', 'ctcvr'], d['tasks']
assert d['score'] == 'ctcvr', d['score']
lines = [l.rstrip('\n').split('\t') for l in open(sys.argv[2])]
head, rows = lines[0], lines[1:]
res = d['results']
assert len(res) == len(rows) == 40, (len(res), len(rows))
assert sorted(r['index'] for r in res) == list(range(40))
for a, b in zip(res, res[1:]):
    assert a['score'] >= b['score'], 'not sorted by score'
for r in res:
    p = dict(zip(head, rows[r['index']]))
    for t in ('ctr', 'ctcvr'):
        assert '%.9g' % r[t] == '%.9g' % float(p[t]), (r['index'], t, r[t], p[t])
    assert r['score'] == r['ctcvr']
EOF
# the same rows as JSON numbers (%.17g to the loader: the same to 6 digits), top 5
req POST /v1/score "$T/reqnum.json"; expect_status 200
python3 - "$T/body" "$T/res1.json" <<'EOF' || fail "numbers as JSON numbers, or top"
import json, sys
d, e = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
assert len(d['results']) == 5
for a, b in zip(d['results'], e['results'][:5]):
    assert a['index'] == b['index'] and abs(a['ctr'] - b['ctr']) <= 1e-6 * abs(b['ctr']), (a, b)
EOF

# bad requests: 4xx naming the field, the server unharmed
printf '{"candidates": [\n  {"item_id": 1},\n  {"item_id" 2}]}' >"$T/bad.json"
req POST /v1/score "$T/bad.json"; expect_status 400; body_has '"code":"bad_json"'; body_has 'line 3, column'
echo '{"candidates": [{"item_id": "7", "colour": "red"}]}' >"$T/unk.json"
req POST /v1/score "$T/unk.json"; expect_status 400; body_has "unknown column 'colour'"; body_has '"field":"candidates\[0\].colour"'
echo '{"context": {"user_id": 3}}' >"$T/nocand.json"
req POST /v1/score "$T/nocand.json"; expect_status 400; body_has '"field":"candidates"'
echo '{"candidates": [{"item_id": "7"}, 3]}' >"$T/nonobj.json"
req POST /v1/score "$T/nonobj.json"; expect_status 400; body_has '"field":"candidates\[1\]"'
python3 -c "import json; d=json.load(open('$T/req.json')); c=d['candidates'][:2]; c[1]['log_price']='cheap'; json.dump({'candidates': c}, open('$T/badval.json', 'w'))"
req POST /v1/score "$T/badval.json"; expect_status 400; body_has '"code":"bad_value"'; body_has '"field":"candidates\[1\].log_price"'; body_has 'cheap'
echo '{"context": {"item_id": "1"}, "candidates": [{"item_id": "2"}]}' >"$T/both.json"
req POST /v1/score "$T/both.json"; expect_status 400; body_has '"code":"bad_request"'; body_has '"field":"candidates\[0\].item_id"'
python3 -c "import json; json.dump({'candidates': [{'item_id': '1'}] * 46}, open('$T/many.json', 'w'))"
req POST /v1/score "$T/many.json"; expect_status 400; body_has 'at most 45'
python3 -c "print('{\"candidates\": [' + ','.join(['{\"item_id\": \"12345\"}'] * 1000) + ']}')" >"$T/big.json"
req POST /v1/score "$T/big.json"; expect_status 413; body_has '"code":"too_large"'
req GET /nowhere; expect_status 404
req GET /v1/score; expect_status 405
req POST /healthz "$T/unk.json"; expect_status 405
req GET /healthz; expect_status 200

req GET /metrics; expect_status 200
body_has 'resflow_http_requests_total{endpoint="/v1/score",code="200"} 2'
body_has 'resflow_http_requests_total{endpoint="/v1/score",code="400"} 7'
body_has 'resflow_http_requests_total{endpoint="/v1/score",code="413"} 1'
body_has 'resflow_http_requests_total{endpoint="other",code="404"} 1'
body_has 'resflow_http_requests_total{endpoint="/healthz",code="200"} 2'
body_has 'resflow_http_requests_total{endpoint="/v1/score",code="405"} 1'
body_has 'resflow_http_errors_total 11'
body_has 'resflow_score_candidates_total 80'
body_has 'resflow_score_duration_seconds_count 11'
body_has 'resflow_score_duration_seconds_bucket{le="+Inf"} 11'
body_has "resflow_model_info{path=\"$T/m.model\",generation=\"1\""

# reload: another model (another seed) moved over the file, SIGHUP: the scores change
expect_exit 0 "$RF" train $SMALL --set train.seed=7 -o "$T/m2.tmp"
mv "$T/m2.tmp" "$T/m.model"
kill -HUP "$SPID"
for i in $(seq 50); do grep -q "model generation 2" "$T/serr" && break; sleep 0.1; done
grep -q "reloaded .* (model generation 2)" "$T/serr" || { cat "$T/serr" >&2; fail "no reload logged"; }
req POST /v1/score "$T/req.json"; expect_status 200
cmp -s "$T/body" "$T/res1.json" && fail "the scores did not change after the reload"
# a failed reload keeps the model and is counted
echo "not a model" >"$T/m.model.bad" && cp "$T/m.model" "$T/m.good" && mv "$T/m.model.bad" "$T/m.model"
kill -HUP "$SPID"
for i in $(seq 50); do grep -q "reload of .* failed" "$T/serr" && break; sleep 0.1; done
grep -q "reload of .* failed, the old model stays" "$T/serr" || { cat "$T/serr" >&2; fail "no failed reload logged"; }
req POST /v1/score "$T/req.json"; expect_status 200
cp "$T/body" "$T/res2.json"
mv "$T/m.good" "$T/m.model"
req POST /admin/reload "$T/unk.json"; expect_status 200; body_has '"generation":3'
req POST /v1/score "$T/req.json"; expect_status 200
cmp -s "$T/body" "$T/res2.json" || fail "the same model scores differently after /admin/reload"
# concurrent requests while the model is reloaded twice (the same file: every answer must be
# the same, complete and 200); bounded: 4 clients x 20 requests
python3 - "$PORT" "$SPID" "$T/req.json" "$T/res2.json" <<'EOF' || fail "concurrent requests during reloads"
import os, signal, sys, threading, time, urllib.request
port, pid, body, want = sys.argv[1], int(sys.argv[2]), open(sys.argv[3], 'rb').read(), open(sys.argv[4], 'rb').read()
bad = []
def client():
    for _ in range(20):
        r = urllib.request.Request('http://127.0.0.1:%s/v1/score' % port, data=body, method='POST')
        try:
            with urllib.request.urlopen(r, timeout=10) as f:
                got = f.read()
                if f.status != 200 or got != want: bad.append((f.status, got[:200]))
        except Exception as e:
            bad.append(repr(e))
ts = [threading.Thread(target=client) for _ in range(4)]
for t in ts: t.start()
for _ in range(2):
    time.sleep(0.05)
    os.kill(pid, signal.SIGHUP)
for t in ts: t.join()
assert not bad, bad[:3]
EOF
for i in $(seq 50); do grep -q "model generation 5" "$T/serr" && break; sleep 0.1; done
grep -q "model generation 5" "$T/serr" || { cat "$T/serr" >&2; fail "the reloads during requests were not logged"; }
req GET /metrics
body_has 'resflow_http_requests_total{endpoint="/v1/score",code="200"} 85'
body_has 'resflow_model_reloads_total{result="ok"} 4'
body_has 'resflow_model_reloads_total{result="failed"} 1'
body_has 'generation="5"'

kill -TERM "$SPID"
wait "$SPID"; rc=$?
SPID_DONE=$SPID; SPID=""
[ "$rc" = 0 ] || { cat "$T/serr" >&2; fail "the server exited $rc after SIGTERM"; }
kill -0 "$SPID_DONE" 2>/dev/null && fail "the server is still running"

# --max-requests: the server stops by itself
"$RF" serve -m "$T/m.model" --port 0 --max-requests 2 2>"$T/serr" &
SPID=$!
wait_server "$T/serr" "$SPID"
req GET /healthz; expect_status 200
req GET /healthz; expect_status 200
wait "$SPID"; rc=$?
SPID=""
[ "$rc" = 0 ] || { cat "$T/serr" >&2; fail "--max-requests: exit $rc"; }
grep -q "answered 2 requests" "$T/serr" || fail "--max-requests not logged"
exit 0
