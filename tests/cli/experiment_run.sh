# resflow experiment from a file: two datasets (the simulator's 2- and 3-task presets), two
# models (one with its own override), two seeds. Checks every output file, that the tables'
# mean ± std are those of the per-run results, and that a run is exactly `resflow train` of
# its resolved config.
. tests/cli/_common.sh
cat > "$T/exp.yaml" <<'YAML'
name: tiny zoo
seeds: [1, 2]
models:
  - nse
  - {name: mm, type: mmoe, set: {model.experts: 3}}
datasets:
  - two
  - name: three
    set:
      synth.tasks: 3
      synth.cart_rate: 0.4
      tasks: [{name: click}, {name: cart, parent: click}, {name: order, parent: cart}]
set:
  synth: {rows: 3000, users: 300, items: 600, queries: 100, ctr: 0.2, cvr: 0.2}
  train: {epochs: 1, batch_size: 256, threads: 2}
backbone: {hidden: [16], expert_hidden: [16], emb_dim: 8, experts: 2}
YAML
expect_exit 0 "$RF" experiment -c "$T/exp.yaml" -o "$T/res" -q
expect_out "^# tiny zoo"
expect_out "^| three   | order.|cart AUC"
expect_out "^| two     | ctcvr.|ctr AUC"
# the entire-space CVR AUC against the simulator's counterfactual labels, with its oracle
expect_out "^| two     | es ctcvr.|ctr AUC .* | 0\.[0-9][0-9][0-9][0-9] |$"
expect_out "^| three   | es order.|cart AUC"
expect_out "^| two     | diff es ctcvr.|ctr AUC"
for f in results.md results.csv results.json; do [ -s "$T/res/$f" ] || fail "no $f"; done
cmp -s "$T/res/results.md" "$T/out" || fail "stdout is not results.md"
for d in two three; do for m in nse mm; do for s in 1 2; do
    [ -s "$T/res/runs/$d/$m/seed-$s.yaml" ] || fail "no resolved config for $d/$m/$s"
    [ -s "$T/res/runs/$d/$m/seed-$s.json" ] || fail "no result for $d/$m/$s"
done; done; done
find "$T/res" -name '*.tmp' | grep -q . && fail "temporary files left behind"
# the resolved configs: type, seed, the model's and the dataset's overrides, the backbone
y="$T/res/runs/three/mm/seed-2.yaml"
grep -q "^  type: mmoe" "$y" && grep -q "^  seed: 2" "$y" && grep -q "^  experts: 3" "$y" \
    && grep -q "^  hidden: \[16\]" "$y" && grep -q "name: order, label: order, parent: cart" "$y" \
    || { cat "$y" >&2; fail "resolved config of three/mm/seed-2"; }
grep -q "^  experts: 2" "$T/res/runs/two/nse/seed-1.yaml" || fail "the backbone is missing, or the model override leaked into another model"
# mean and sample std in CSV, JSON and Markdown are those of the per-run result files
python3 - "$T/res" <<'PY' || fail "tables do not match the run results"
import csv, json, math, os, re, sys
out = sys.argv[1]
rows = list(csv.DictReader(open(os.path.join(out, "results.csv"))))
js = json.load(open(os.path.join(out, "results.json")))
md = open(os.path.join(out, "results.md")).read()
assert js["seeds"] == [1, 2], js["seeds"]
checked = es = 0
for row in rows:
    if row["metric"] not in ("auc", "cond_auc", "es_auc"):
        continue
    vals = []
    for s in (1, 2):
        r = json.load(open(os.path.join(out, "runs", row["dataset"], row["model"], "seed-%d.json" % s)))
        assert r["status"] == "ok"
        t = {x["name"]: x for x in r["tasks"]}
        name = row["task"].split("|")[0]
        vals.append(t[name][row["metric"]])
    vals = [v for v in vals if v is not None]
    if len(vals) < 2:
        continue
    mean = sum(vals) / len(vals)
    std = math.sqrt(sum((v - mean) ** 2 for v in vals) / (len(vals) - 1))
    assert abs(float(row["mean"]) - mean) < 1e-12 and abs(float(row["std"]) - std) < 1e-12, (row, mean, std)
    assert [float(v) for v in row["values"].split(";")] == vals, (row["values"], vals)
    ds = [d for d in js["datasets"] if d["name"] == row["dataset"]][0]
    mj = [m for m in ds["models"] if m["name"] == row["model"]][0]
    sj = mj["summary"][row["metric"]][row["task"]]
    assert abs(sj["mean"] - mean) < 1e-12 and abs(sj["std"] - std) < 1e-12 and sj["n"] == 2
    cell = "%.4f ± %.4f" % (mean, std)
    pre = "es " if row["metric"] == "es_auc" else ""
    line = [l for l in md.splitlines() if l.startswith("| %-7s | %s " % (row["dataset"], pre + row["task"].replace("|", "\\|") + " AUC"))]
    assert len(line) == 1 and cell in line[0], (line, cell)
    checked += 1
    es += row["metric"] == "es_auc"
assert checked >= 8 and es >= 4, (checked, es)
PY
# a run is `resflow train` of its resolved config: the same test AUCs
expect_exit 0 "$RF" train -c "$T/res/runs/three/mm/seed-2.yaml" --json="$T/train.json" -q -o "$T/m.model"
python3 - "$T/train.json" "$T/res/runs/three/mm/seed-2.json" <<'PY' || fail "experiment run differs from resflow train"
import json, sys
a, b = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
for t in b["tasks"]:
    x = a["tasks"][t["name"]]
    assert abs(x["auc"] - t["auc"]) < 1e-6, (t["name"], x["auc"], t["auc"])  # train --json has 6 digits
    if t["parent"]:
        assert abs(x["conditional_auc"] - t["cond_auc"]) < 1e-6
        assert abs(x["increase_share"] - t["increase_share"]) < 1e-6, (x, t)  # paper Table 11
PY
exit 0
