# resflow probe end to end on tiny simulator models: files, well-formed SVGs, JSON contents,
# the printed group table, determinism, --init, and the errors (unknown task, zoo model, too few
# rows in a group, missing options)
. tests/cli/_common.sh
TINY="--set synth.rows=20000 --set synth.cvr=0.3 --set train.epochs=1 --set model.hidden=[16,8] --set model.emb_dim=4 --set train.batch_size=512"
for t in resflow nse; do
    expect_exit 0 "$RF" train -q $TINY --set model.type=$t -o "$T/$t.model"
done
expect_exit 0 "$RF" probe -q -m "$T/resflow.model" --rows 6 --show 4 -o "$T/p/resflow"
for f in probe.json layer1.svg layer2.svg logits.svg; do [ -s "$T/p/resflow/$f" ] || fail "missing $f"; done
expect_out "residual logit r_ctcvr = s_ctcvr - s_ctr"
expect_out "^A .*ctr=1 ctcvr=1"
expect_out "^B .*ctr=1 ctcvr=0"
expect_out "^C .*ctr=0 ctcvr=0"
expect_out "f residual"
cp "$T/out" "$T/first.txt"
if command -v xmllint >/dev/null 2>&1; then
    xmllint --noout "$T"/p/resflow/*.svg || fail "SVG not well-formed"
fi
python3 - "$T/p/resflow/probe.json" <<'PY' || fail "probe.json contents"
import json, sys
j = json.load(open(sys.argv[1]))
assert j["path"] == ["ctr", "ctcvr"] and j["task"] == "ctcvr" and j["logit_link"] is True
assert [g["name"] for g in j["groups"]] == ["A", "B", "C"]
rows = j["rows"]
assert len(rows) == 18
for r in rows:
    res, lg = r["residual_logit"]["ctcvr"], r["logit"]
    assert abs(res - (lg["ctcvr"] - lg["ctr"])) < 1e-4 * (1 + abs(lg["ctcvr"])), r
    f, o, op = r["layers"][0]["ctcvr"]["block"], r["layers"][0]["ctcvr"]["out"], r["layers"][0]["ctr"]["out"]
    assert len(f) == 16 and all(abs(a + b - c) < 1e-5 * (1 + abs(c)) for a, b, c in zip(f, op, o))
for g in j["groups"]:
    mine = [r["residual_logit"]["ctcvr"] for r in rows if r["group"] == g["name"]]
    assert abs(sum(mine) / len(mine) - g["residual_logit"]["mean"]) < 1e-4
PY
# the same seed gives the same output; another seed other rows
expect_exit 0 "$RF" probe -q -m "$T/resflow.model" --rows 6 --show 4 -o "$T/p/again"
cmp -s "$T/p/resflow/probe.json" "$T/p/again/probe.json" || fail "probe is not deterministic"
cmp -s "$T/out" "$T/first.txt" || fail "printed summary differs between identical runs"
expect_exit 0 "$RF" probe -q -m "$T/resflow.model" --rows 6 --seed 9 --no-features -o "$T/p/seed9"
cmp -s "$T/p/resflow/probe.json" "$T/p/seed9/probe.json" && fail "--seed has no effect"
grep -q '"layers"' "$T/p/seed9/probe.json" && fail "--no-features still dumps the features"
# NSE: no links, one panel per tower; --init: the untrained network
expect_exit 0 "$RF" probe -q -m "$T/nse.model" --rows 5 --units 8 --limit 0.5,2 -o "$T/p/nse"
grep -q ">-0.5<" "$T/p/nse/layer1.svg" && grep -q ">2<" "$T/p/nse/layer2.svg" || fail "--limit per layer"
expect_out "own logit r_ctcvr of the ctcvr tower"
grep -q "feature learned by the ctcvr tower" "$T/p/nse/layer1.svg" || fail "NSE panel title"
expect_exit 0 "$RF" probe -q -m "$T/nse.model" --rows 5 --init -o "$T/p/init"
expect_out "NSE (initial weights)"
cmp -s "$T/p/nse/probe.json" "$T/p/init/probe.json" && fail "--init probed the trained weights"
# --task on the root: one-task path, groups A (click) and B (none)
expect_exit 0 "$RF" probe -q -m "$T/resflow.model" --task ctr --rows 5 -o "$T/p/ctr"
expect_out "^B .*ctr=0"
# errors
expect_exit 1 "$RF" probe -q -m "$T/resflow.model" --task nosuch -o "$T/p/x"
expect_err "no such task (tasks: ctr, ctcvr)"
expect_exit 2 "$RF" probe -q -m "$T/resflow.model" --rows 5000 -o "$T/p/x"
expect_err "group A (ctr=1 ctcvr=1) has"
expect_exit 1 "$RF" probe -q -m "$T/resflow.model"
expect_err "--out DIR is required"
expect_exit 1 "$RF" probe -q -o "$T/p/x"
expect_err "--model is required"
expect_exit 1 "$RF" probe -q -m "$T/resflow.model" --rows 0 -o "$T/p/x"
expect_exit 1 "$RF" probe -q -m "$T/resflow.model" --limit 1,x -o "$T/p/x"
expect_exit 0 "$RF" train -q $TINY --set model.type=mmoe --set model.expert_hidden=[8] -o "$T/mmoe.model"
expect_exit 1 "$RF" probe -q -m "$T/mmoe.model" -o "$T/p/x"
expect_err "probing needs a tower model"
expect_exit 0 "$RF" probe --help
expect_out "usage: resflow probe"
exit 0
