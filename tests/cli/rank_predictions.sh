# ranking metrics of a hand-written predictions file (values computed by hand), its errors
. tests/cli/_common.sh
# group a (rows 1, 3, 5, 7 interleaved with group b): ranked by s: .9 (W 0) .8 (W 3, pos) .7 (0) .1 (W 1, pos)
# group b: .6 (neg) .6 (pos, W 2): a tie; group c: one negative row (skipped everywhere but counted)
printf 'group\ts\tlabel\tw\tq\n' > "$T/p.tsv"
printf 'a\t0.9\t0\t0\tx\nb\t0.6\t0\t0\ty\na\t0.8\t1\t3\tx\nb\t0.6\t1\t2\ty\na\t0.7\t0\t0\tx\nc\t0.5\t0\t0\tz\na\t0.1\t1\t1\tx\n' >> "$T/p.tsv"
expect_exit 0 "$RF" eval --predictions "$T/p.tsv" --label label --scores s --weight w --k 1,2 --json -q
python3 - "$T/out" <<'PY' || fail "hand-computed metrics"
import json, math, sys
d = json.load(open(sys.argv[1]))['ranking']
g = d['groups']
assert (g['total'], g['wr_used'], g['zero_weight_skipped']) == (3, 2, 1), g
assert (g['positive_used'], g['auc_used'], g['single_class_skipped']) == (2, 2, 1), g
m = d['scores'][0]['metrics']
D = lambda p: 1 / math.log2(p + 2)
want = {
    # group a: top-1 W 0 -> 0, top-2 3/4; group b: the tie puts the W=2 row in the top 1 half the time
    'wr@1': (0 + 0.5) / 2, 'wr@2': (0.75 + 1) / 2,
    'wr_square@2': (9 / 10 + 1) / 2, 'wr_log@2': (math.log(4) / (math.log(4) + math.log(2)) + 1) / 2,
    'recall@1': (0 + 0.5) / 2, 'recall@2': (0.5 + 1) / 2,
    'ndcg@2': (D(1) / (D(0) + D(1)) + (D(0) + D(1)) / 2 / D(0)) / 2,
    'list_auc': (0.25 + 0.5) / 2, 'gauc': (4 * 0.25 + 2 * 0.5) / 6,
}
for k, v in want.items():
    assert abs(m[k] - v) < 1e-6, (k, m[k], v)
PY
# the text table names every metric
expect_exit 0 "$RF" eval --predictions "$T/p.tsv" --label label --scores s --k 2 -q
expect_out "WRsqrt@2"
expect_out "1 single-class skipped"
# W from counts per column value: q groups rows by x/y/z: W = positives with the same q
expect_exit 0 "$RF" eval --predictions "$T/p.tsv" --label label --scores s --weight-by q --k 1 --json -q
python3 -c "import json; m=json.load(open('$T/out'))['ranking']['scores'][0]['metrics']; assert abs(m['wr@1']-(1/4+1/2)/2)<1e-6, m" \
    || fail "--weight-by on a predictions file"
# a ratio score and a fusion formula
expect_exit 0 "$RF" eval --predictions "$T/p.tsv" --label label --scores "s|w" --fusion add:s=1,w=-1 --k 2 -q
expect_out "s - w"
# errors: exit codes and messages
expect_exit 1 "$RF" eval --predictions "$T/p.tsv" --scores s
expect_err "needs --label"
expect_exit 1 "$RF" eval --predictions "$T/p.tsv" --label label
expect_err "needs --scores"
expect_exit 1 "$RF" eval --predictions "$T/p.tsv" --label label --scores nope
expect_err "no column 'nope'"
expect_exit 1 "$RF" eval --predictions "$T/p.tsv" --label label --scores s --k 0
expect_err "\-\-k wants"
expect_exit 1 "$RF" eval --predictions "$T/p.tsv" --label label --scores s --fusion pow:s=1
expect_err "mul:' or 'add:'"
expect_exit 1 "$RF" eval --predictions "$T/p.tsv" -m x.model --label label --scores s
expect_err "replaces --model"
expect_exit 2 "$RF" eval --predictions "$T/p.tsv" --label label --scores s --group grp
expect_err "group column .grp. not found"
printf 'group\ts\tlabel\tw\n1\t0.5\t1\t-1\n' > "$T/neg.tsv"
expect_exit 2 "$RF" eval --predictions "$T/neg.tsv" --label label --scores s --weight w
expect_err "neg.tsv:2:"
printf 'group\ts\tlabel\n1\tnan\t1\n' > "$T/nan.tsv"
expect_exit 2 "$RF" eval --predictions "$T/nan.tsv" --label label --scores s
expect_exit 3 "$RF" eval --predictions "$T/missing.tsv" --label label --scores s
# fusion on a predictions file: reports, stores nothing
printf 'group\tctr\tctcvr\torder\n' > "$T/f.tsv"
for g in 1 2 3 4; do printf '%s\t0.5\t0.01\t0\n%s\t0.2\t0.05\t1\n%s\t0.3\t0.001\t0\n' $g $g $g >> "$T/f.tsv"; done
expect_exit 0 "$RF" fusion --predictions "$T/f.tsv" --label order --ctr ctr --ctcvr ctcvr --k 1 -q
expect_out "chosen"
expect_exit 1 "$RF" fusion --predictions "$T/f.tsv" --label order --ctr ctr --ctcvr ctcvr -o "$T/x.model"
expect_exit 1 "$RF" fusion --predictions "$T/f.tsv" --label order
expect_err "needs --ctr and --ctcvr"
exit 0
