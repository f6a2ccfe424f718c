# issue #14, train.balance from the command line (docs/balance.md):
# - the task weights are logged and can be plotted: `train --json` carries the balancer's weight
#   history (K finite positive weights per train.log_every steps), `train --report` plots it
#   ("task weights", rendered in headless Chromium when it is installed);
# - every method checkpoints and resumes: a run stopped by SIGTERM and resumed ends with the
#   uninterrupted run's model, byte for byte (3 tasks, a weight interval of 3, so PCGrad's random
#   task order, Nash-MTL's cached weights and next solve, uncertainty's log-variances and PUB's
#   refresh step all cross the checkpoint).
. tests/cli/_common.sh
J="-c configs/synth_3task.yaml --set synth.preset=search --set synth.rows=4000 --set synth.ctr=0.15"
J="$J --set synth.cart_rate=0.3 --set synth.cvr=0.12 --set model.hidden=[8] --set model.emb_dim=4"
J="$J --set train.batch_size=64 --set train.epochs=2 --set train.log_every=5 --set train.balance_interval=3 --threads 2"

# --json: the weight history
expect_exit 0 "$RF" train $J --set train.balance=pub -q -o "$T/p.rf" --json --report "$T/rep"
python3 - "$T/out" <<'PY' || fail "train --json: the balance weight history"
import json, math, sys
d = json.load(open(sys.argv[1]))
b = d["balance"]
assert b["method"] == "pub", b["method"]
assert b["tasks"] == ["ctr", "ctcart", "ctcvr"], b["tasks"]
h = b["history"]
assert len(h) >= 8, f"{len(h)} points"
for i, p in enumerate(h):
    assert p["step"] == 5 * (i + 1), p
    assert p["epoch"] in (1, 2), p
    w = p["weights"]
    assert len(w) == 3 and all(math.isfinite(x) and x > 0 for x in w), p
    assert abs(sum(w) - 3) < 1e-3, p  # PUB's weights are scaled to sum to K
assert any(abs(x - 1) > 1e-4 for p in h for x in p["weights"]), "the weights never moved from 1"
PY
# without train.balance: no "balance" member
expect_exit 0 "$RF" train $J -q -o "$T/n.rf" --json
python3 -c 'import json,sys; assert "balance" not in json.load(sys.stdin)' <"$T/out" || fail "balance in a plain run's JSON"

# the report: a "task weights" figure beside the loss curves, one line per task
H="$T/rep/report.html"
python3 - "$H" <<'PY' || fail "report: the task weights chart"
import re, sys
h = open(sys.argv[1], encoding="utf-8").read()
figs = re.findall(r'<figure class="rf-fig">(.*?)</figure>', h, re.S)
w = [f for f in figs if "task weights" in f]
assert len(w) == 1, f"{len(w)} task-weight figures"
assert "train.balance: pub" in w[0]
for t in ("ctr", "ctcart", "ctcvr"):
    assert t in w[0], t
i = [k for k, f in enumerate(figs) if "validation AUC" in f]
assert i and figs.index(w[0]) == i[0] + 1, "the weights chart is not beside the curves"
PY
if command -v chromium >/dev/null 2>&1; then
    timeout 120 chromium --headless --disable-gpu --no-sandbox --user-data-dir="$T/chrome" --enable-logging=stderr \
        --v=0 --dump-dom "file://$H" >"$T/dom" 2>"$T/console" || { tail "$T/console" >&2; fail "chromium failed"; }
    grep -q "task weights" "$T/dom" || fail "rendered DOM: no task weights chart"
    [ "$(grep -o '<svg' "$T/dom" | wc -l)" = 6 ] || fail "rendered DOM: expected 6 svg (loss, AUC, weights, 3 calibration)"
    if grep -Ei 'CONSOLE|Uncaught|SyntaxError' "$T/console"; then fail "console errors"; fi
else
    echo "  [skip] chromium not installed: the report is not rendered" >&2
fi

# checkpoints and resume with every method: SIGTERM after step 20, --resume, cmp. No validation
# split, so the final model is the last step's (a kept best model could predate the stop). The
# log goes to a FIFO read line by line (until_line): the run can be at most a pipe buffer (64 KB,
# ~400 of these steps) ahead of the reader, so the signal lands long before its 880 steps end.
R="$J --set synth.rows=2000 --set data.valid_frac=0 --set train.epochs=40 --set train.log_every=1"
mkfifo "$T/fifo"
for m in pub uncertainty pcgrad mgda cagrad nash_mtl adatask; do
    expect_exit 0 "$RF" train $R --set train.balance=$m -q -o "$T/full_$m.rf"
    "$RF" train $R --set train.balance=$m -o "$T/s_$m.rf" 2>"$T/fifo" >/dev/null &
    pid=$!
    exec 3<"$T/fifo"
    until_line "step 20 " || fail "$m: the run ended before step 20"
    kill -TERM $pid
    cat <&3 >/dev/null; exec 3<&-
    wait $pid; got=$?
    [ "$got" = 143 ] || fail "$m: SIGTERM: exit $got, expected 143"
    [ -e "$T/s_$m.rf.ckpt" ] || fail "$m: no checkpoint after SIGTERM"
    expect_exit 0 "$RF" train --resume "$T/s_$m.rf.ckpt" -q -o "$T/s_$m.rf"
    cmp -s "$T/s_$m.rf" "$T/full_$m.rf" || fail "$m: the resumed model differs from the uninterrupted run's"
done
exit 0
