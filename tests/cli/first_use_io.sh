# issue #18, pipes and files (finding 8) and the log (finding 9): predict --keep passes raw
# columns through, the group's value (not its hash) with --with-labels, '-' for the standard
# input and output; eval --predictions without a group column; progress lines with percent and
# ETA in a pipe (no terminal control codes), no resolved config by default (--show-config, -v).
. tests/cli/_common.sh
awk 'BEGIN { srand(3); print "query,user,price,click"; for (i = 0; i < 3000; i++) {
    p = rand(); printf "q%d,u%d,%.3f,%d\n", i / 10, i % 40, p, rand() < (p > 0.5 ? 0.4 : 0.1) } }' >"$T/d.csv"
cat >"$T/d.yaml" <<YAML
data: {source: $T/d.csv, categorical: [user], dense: [price], group: query}
tasks: [{name: ctr, label: click}]
train: {batch_size: 64, epochs: 1, log_every: 5}
YAML
expect_exit 0 "$RF" train -c "$T/d.yaml" -o "$T/m.model"
# 9. no config dump by default; progress lines in a pipe carry percent and ETA, no escape codes
if grep -q "^model:$\|^train:$\|batch_size: 64" "$T/err"; then fail "the resolved config is printed by default"; fi
expect_err "% of epoch 1/1 | ETA "
if grep -q "$(printf '\033')" "$T/err"; then fail "terminal control codes in a pipe"; fi
expect_exit 0 "$RF" train -c "$T/d.yaml" -o "$T/m.model" --show-config -q
expect_err "batch_size: 64"
if grep -q "% of epoch" "$T/err"; then fail "-q printed progress"; fi
expect_exit 0 "$RF" train -c "$T/d.yaml" -o "$T/m.model" -v
expect_err "batch_size: 64"
expect_err "% of epoch"

# a live line on a terminal (script(1) gives the run a pseudo-terminal): rewritten in place with \r
if command -v script >/dev/null 2>&1; then
    script -qec "$RF train -c $T/d.yaml -o $T/m.model 2>&1" /dev/null >"$T/tty" </dev/null || fail "train under script"
    grep -q "$(printf '\r')$(printf '\033')\[Kepoch 1/1 .*% | step .* | ETA " "$T/tty" || { cat -v "$T/tty" | head >&2; fail "no live progress line on a terminal"; }
else
    echo "  [skip] script(1) not found: the terminal progress line not exercised" >&2
fi

# 9. a relative data path that is not found: the error names the absolute path and the rule, and
# points at the file beside the config when there is one
mkdir -p "$T/cfgdir"
cp "$T/d.csv" "$T/cfgdir/own.csv"
printf 'data: {source: own.csv, categorical: [user]}\ntasks: [{name: ctr, label: click}]\n' >"$T/cfgdir/own.yaml"
expect_exit 3 "$RF" train -c "$T/cfgdir/own.yaml" -o "$T/x.model"
expect_err "data.source: cannot read own.csv (looked at $(pwd)/own.csv"
expect_err "resolved against the working directory ($(pwd))"
expect_err "$T/cfgdir/own.csv exists beside the config file"
RFABS="$(cd "$(dirname "$RF")" && pwd)/resflow"
(cd "$T/cfgdir" && "$RFABS" train -c own.yaml -o "$T/x.model" -q) >/dev/null 2>"$T/err" || { cat "$T/err" >&2; fail "train from the config's directory"; }

# 8. --keep: raw columns as typed, in input order; the group's value with --with-labels
expect_exit 0 "$RF" predict -m "$T/m.model" --data "$T/d.csv" --keep user,price --with-labels -o "$T/p.tsv" -q
head -1 "$T/p.tsv" | grep -q "^row	user	price	group	ctr	click$" || { head -2 "$T/p.tsv" >&2; fail "--keep header"; }
sed -n 2p "$T/p.tsv" | grep -q "^0	u0	$(sed -n 2p "$T/d.csv" | cut -d, -f3)	q0	" || { sed -n 2p "$T/p.tsv" >&2; fail "--keep values"; }
[ "$(wc -l <"$T/p.tsv")" = 3001 ] || fail "--keep: rows"
[ "$(cut -f4 "$T/p.tsv" | sed -n 3002p)" = "" ] && [ "$(cut -f4 "$T/p.tsv" | tail -1)" = q299 ] || fail "group values"
expect_exit 1 "$RF" predict -m "$T/m.model" --data "$T/d.csv" --keep user,nope
expect_err "has no column 'nope'; its columns: query, user, price, click"
expect_exit 1 "$RF" predict -m "$T/m.model" --keep user
expect_err "--keep needs --data"
# '-' for the standard input and output: the same scores as from the file
expect_exit 0 "$RF" predict -m "$T/m.model" --data "$T/d.csv" -o "$T/f.tsv" -q
"$RF" predict -m "$T/m.model" --data - -o - -q <"$T/d.csv" >"$T/s.tsv" 2>"$T/err" || { cat "$T/err" >&2; fail "predict - -"; }
cmp -s "$T/f.tsv" "$T/s.tsv" || fail "predict from stdin to stdout differs from the file run"

# eval --predictions without a group column: AUC and logloss per score (JSON parses)
awk -F'\t' 'BEGIN { OFS = "," } { print $5, $6 }' "$T/p.tsv" >"$T/nogroup.csv"
expect_exit 0 "$RF" eval --predictions "$T/nogroup.csv" --scores ctr --label click
expect_out "^ctr  "
expect_out "no group column: no ranking metrics"
expect_err "no group column"
expect_exit 0 "$RF" eval -m "$T/m.model" --data "$T/d.csv" --json
model_auc=$(python3 -c 'import json,sys; print("%.4f" % json.load(sys.stdin)["tasks"]["ctr"]["auc"])' <"$T/out")
expect_exit 0 "$RF" eval --predictions "$T/nogroup.csv" --scores ctr --label click --json
python3 - "$T/out" "$model_auc" <<'PY' || fail "eval --predictions --json without a group"
import json, sys
j = json.load(open(sys.argv[1])); a = j["scores"]["ctr"]["auc"]
assert j["rows"] == 3000 and abs(a - float(sys.argv[2])) < 1e-4, (j["rows"], a, sys.argv[2])
PY
# an explicit --group that is missing stays an error
expect_exit 2 "$RF" eval --predictions "$T/nogroup.csv" --scores ctr --label click --group query
expect_err "group column .query. not found"

# 7. the demo (compare without -c) trains with the paper's loss settings and one epoch and says so (also under
# -q); --set overrides them; a config of one's own is not changed
D="--set synth.rows=5000 --set model.hidden=[8] --set train.batch_size=256 --models nse -q"
expect_exit 0 "$RF" compare $D
expect_err "demo: the simulator with the paper's loss settings: task weights ctr 2, ctcvr 1; positive-row weights ctr 1, ctcvr 500; 1 epoch "
expect_exit 0 "$RF" compare $D --set tasks.1.pos_weight=50 --set train.epochs=2
expect_err "positive-row weights ctr 1, ctcvr 50; 2 epochs "
expect_exit 0 "$RF" compare -c configs/default.yaml $D
if grep -q "^demo:" "$T/err"; then fail "the demo settings applied to a config file"; fi
exit 0
