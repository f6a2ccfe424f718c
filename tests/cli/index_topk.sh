# resflow index + serve --index: a twin-tower model trained on the simulator, its items indexed,
# a server on 127.0.0.1 (port chosen by the OS) answering POST /v1/topk: the k best items equal
# the best of /v1/score over every item with the same context (same scores), quantized = exact
# here, bad requests get 4xx naming the field, metrics count, a reload swaps model and index
# together (a model without its index is refused and the old pair keeps answering), SIGTERM
# stops it. Bounded: the whole script runs under `timeout 240`, every request has a timeout.
if [ -z "${INDEX_TOPK_SH_BOUNDED:-}" ]; then
    INDEX_TOPK_SH_BOUNDED=1 exec timeout -k 5 240 sh "$0" "$@"
fi
. tests/cli/_common.sh
SPID=""
trap '[ -n "$SPID" ] && kill -KILL "$SPID" 2>/dev/null; rm -rf "$T"' EXIT
TWIN="--set synth.preset=search --set synth.rows=20000 --set train.epochs=1 --set model.hidden=[32,16] --set train.batch_size=256 -q
      --set model.type=twin --set model.twin_dim=16
      --set model.item_fields=[item_id,item_cat,brand,shop,price_bucket]
      --set model.item_dense=[log_price,item_hist_ctr]"
expect_exit 0 "$RF" train $TWIN -o "$T/m.model"
expect_exit 0 "$RF" train $TWIN --set train.seed=7 -o "$T/m2.model"
expect_exit 0 "$RF" synth --set synth.preset=search --set synth.rows=2500 -q -o "$T/log.csv"

# resflow index: usage, a model that is not a twin, repeated ids, an unknown id column
expect_exit 0 "$RF" index --help
expect_out "resflow index -m MODEL --items FILE -o OUT.rfi"
expect_exit 1 "$RF" index -m "$T/m.model" -o "$T/x.rfi"
expect_err "are required"
expect_exit 0 "$RF" train --set synth.preset=search --set synth.rows=5000 --set train.epochs=1 --set model.hidden=[8] -q -o "$T/r.model"
expect_exit 1 "$RF" index -m "$T/r.model" --items "$T/log.csv" -o "$T/x.rfi"
expect_err "twin-tower model"
expect_exit 2 "$RF" index -m "$T/m.model" --items "$T/log.csv" -o "$T/x.rfi"
expect_err "log.csv:[0-9]*: item '.*' again"
expect_exit 1 "$RF" index -m "$T/m.model" --items "$T/log.csv" --id-column nosuch -o "$T/x.rfi"
expect_err "no column 'nosuch'"
[ -e "$T/x.rfi" ] && fail "a failed index left its output"
expect_exit 0 "$RF" index -m "$T/m.model" --items "$T/log.csv" --dedupe -o "$T/items.rfi"
expect_exit 0 "$RF" index -m "$T/m2.model" --items "$T/log.csv" --dedupe -o "$T/items2.rfi"

# a mismatched pair and a corrupt index are refused, naming the files
expect_exit 1 "$RF" serve -m "$T/m2.model" --index "$T/items.rfi" --port 0
expect_err "index $T/items.rfi was not built from model $T/m2.model"
head -c 3000 "$T/items.rfi" > "$T/cut.rfi"
expect_exit 6 "$RF" serve -m "$T/m.model" --index "$T/cut.rfi" --port 0
expect_err "cut.rfi: not a valid index file"

"$RF" serve -m "$T/m.model" --index "$T/items.rfi" --port 0 --threads 2 --max-k 50 --max-candidates 3000 \
    2>"$T/serr" &
SPID=$!
wait_server "$T/serr" "$SPID"

# CHECK: run the Python checks named by $1 (below) against the server
check() {
    python3 - "$PORT" "$T" "$1" <<'EOF' || fail "python checks '$1' failed"
import csv, json, sys, urllib.request, urllib.error
port, tmp, what = sys.argv[1], sys.argv[2], sys.argv[3]

def req(method, path, body=None):
    data = body if body is None or isinstance(body, bytes) else json.dumps(body).encode()
    r = urllib.request.Request('http://127.0.0.1:%s%s' % (port, path), data=data, method=method)
    try:
        with urllib.request.urlopen(r, timeout=20) as f:
            return f.status, f.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()

def expect(cond, msg):
    if not cond:
        print('FAIL:', msg, file=sys.stderr)
        sys.exit(1)

rows = list(csv.DictReader(open(tmp + '/log.csv')))
ctx = {c: rows[0][c] for c in ('user_id', 'user_segment', 'user_power', 'city_tier', 'query_id', 'query_cat',
                                'position', 'hour', 'device')}
if what == 'topk':
    st, b = req('POST', '/v1/topk', {'context': ctx, 'k': 10})
    expect(st == 200, 'topk status %d %s' % (st, b))
    ans = json.loads(b)
    res = ans['results']
    expect(len(res) == 10 and ans['mode'] == 'exact' and ans['tasks'] == ['ctr', 'ctcvr'], b)
    expect(all(res[i]['score'] >= res[i + 1]['score'] for i in range(9)), 'not sorted: ' + b)
    # every item of the index scored by /v1/score with the same context: the same best items, scores
    first = {}
    for r in rows:
        first.setdefault(r['item_id'], r)
    items = list(first.values())
    cols = ('item_id', 'item_cat', 'brand', 'shop', 'price_bucket', 'log_price', 'item_hist_ctr')
    st, b2 = req('POST', '/v1/score', {'context': ctx, 'candidates': [{c: r[c] for c in cols} for r in items]})
    expect(st == 200, 'score status %d %s' % (st, b2[:300]))
    sc = json.loads(b2)['results']
    best = {items[x['index']]['item_id']: x['score'] for x in sc}
    tenth = sc[9]['score']
    for x in res:
        s = best[x['id']]
        expect(abs(s - x['score']) <= 1e-5 * max(abs(s), 1e-12) + 1e-9, 'score of %s: %r vs %r' % (x['id'], x['score'], s))
        expect(x['score'] >= tenth - 1e-6 * abs(tenth), '%s is not among the 10 best' % x['id'])
    expect(res[0]['id'] == items[sc[0]['index']]['item_id'] or abs(res[0]['score'] - sc[0]['score']) < 1e-7, 'best')
    # quantized: the shortlist (1000) holds every item here, so the same answer
    st, b3 = req('POST', '/v1/topk', {'context': ctx, 'k': 10, 'mode': 'quantized', 'shortlist': 1000})
    expect(st == 200 and [x['id'] for x in json.loads(b3)['results']] == [x['id'] for x in res], b3)
    # k larger than the items: all of them
    st, b4 = req('POST', '/v1/topk', {'context': {}, 'k': 50})
    expect(st == 200 and len(json.loads(b4)['results']) == min(50, len(items)), b4[:200])
    print(json.dumps(res[:2]))
elif what == 'bad':
    cases = [({'context': ctx, 'k': 0}, 'k', 'bad_request'), ({'context': ctx, 'k': 51}, 'k', 'bad_request'),
             ({'context': ctx, 'k': 'x'}, 'k', 'bad_request'), ({'context': ctx, 'mode': 'fast'}, 'mode', 'bad_request'),
             ({'context': ctx, 'mode': 'quantized', 'shortlist': 10 ** 7}, 'shortlist', 'bad_request'),
             ({'context': {'item_id': '5'}}, 'context.item_id', 'bad_request'),
             ({'context': {'colour': 'red'}}, 'context.colour', 'unknown_column'),
             ({'context': {'city_tier': 'abc'}}, 'context.city_tier', 'bad_value'),
             ({'context': [1]}, 'context', 'bad_request'), ({'k': 3, 'top': 2}, 'top', 'bad_request')]
    for body, field, code in cases:
        st, b = req('POST', '/v1/topk', body)
        e = json.loads(b).get('error', {})
        expect(st == 400 and e.get('field') == field and e.get('code') == code, '%s -> %d %s' % (body, st, b))
    st, b = req('POST', '/v1/topk', b'{"k": 3,')
    expect(st == 400 and json.loads(b)['error']['code'] == 'bad_json', b)
    st, b = req('GET', '/v1/topk')
    expect(st == 405, b)
elif what == 'metrics':
    st, b = req('GET', '/metrics')
    expect('resflow_http_requests_total{endpoint="/v1/topk",code="200"} 3' in b, b)
    expect('resflow_http_requests_total{endpoint="/v1/topk",code="400"} 11' in b, b)
    expect('resflow_topk_duration_seconds_count 15' in b, b)
    expect('resflow_index_items ' in b, b)
elif what in ('before', 'after-bad', 'after-good'):
    st, b = req('POST', '/v1/topk', {'context': ctx, 'k': 5})
    expect(st == 200, b)
    print(b)
    st, m = req('GET', '/metrics')
    want = 'generation="2"' if what == 'after-good' else 'generation="1"'
    expect(want in m, m)
    if what == 'after-bad':
        expect('resflow_model_reloads_total{result="failed"} 1' in m, m)
EOF
}
check topk
check bad
check metrics
check before >"$T/before.json"
# a new model without its index: the reload is refused, the old pair keeps answering
cp "$T/m.model" "$T/m1.model"
mv "$T/m2.model" "$T/m.model"
kill -HUP "$SPID"
sleep 1
grep -q "reload of $T/m.model failed" "$T/serr" || { cat "$T/serr" >&2; fail "no failed reload logged"; }
check after-bad >"$T/after.json"
cmp -s "$T/before.json" "$T/after.json" || fail "the answers changed after a failed reload"
# the new model with its index: swapped together
mv "$T/items2.rfi" "$T/items.rfi"
kill -HUP "$SPID"
sleep 1
check after-good >"$T/new.json"
cmp -s "$T/before.json" "$T/new.json" && fail "the answers did not change with the new model and index"
kill -TERM "$SPID"
wait "$SPID" || fail "the server exited non-zero after SIGTERM"
SPID=""

# a server without an index answers /v1/topk with 404 no_index
"$RF" serve -m "$T/m1.model" --port 0 --max-requests 1 2>"$T/serr2" &
SPID=$!
wait_server "$T/serr2" "$SPID"
python3 - "$PORT" <<'EOF' || fail "no_index"
import sys, urllib.request, urllib.error
try:
    urllib.request.urlopen(urllib.request.Request('http://127.0.0.1:%s/v1/topk' % sys.argv[1], data=b'{}'), timeout=20)
    sys.exit(1)
except urllib.error.HTTPError as e:
    sys.exit(0 if e.code == 404 and b'no_index' in e.read() else 1)
EOF
wait "$SPID" || fail "the second server exited non-zero"
SPID=""
exit 0
