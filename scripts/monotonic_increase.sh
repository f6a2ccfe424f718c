#!/bin/sh
# scripts/monotonic_increase.sh - the share of test rows whose predicted probability rises along
# the chain (p_child > p_parent) for every variant of configs/experiments/monotonic.yaml (paper
# §3.3, Table 11): mean ± std over the seeds, read from the experiment's run results
# (increase_share). Results written by versions without it are retrained from their resolved
# config and evaluated (seed 1 only).
#   scripts/monotonic_increase.sh [EXPERIMENT_OUT (default results/monotonic)]
set -eu
OUT=${1:-results/monotonic}
BIN=${BIN:-./build/resflow}
T=$(mktemp -d /tmp/resflow-mono.XXXXXX)
trap 'rm -rf "$T"' EXIT
printf '| variant | cart: share p_cart > p_click | order: share p_order > p_cart | order AUC |\n|---|---|---|---|\n'
for v in wo m1 m2 m3 m4; do
    dir="$OUT/runs/synth-3task/$v"
    [ -f "$dir/seed-1.json" ] || { echo "missing $dir/seed-1.json (run: resflow experiment -c configs/experiments/monotonic.yaml)" >&2; exit 1; }
    if ! /usr/bin/env python3 - "$dir" "$v" <<'PY'
import glob, json, math, statistics, sys
d, v = sys.argv[1], sys.argv[2]
runs = [json.load(open(p)) for p in sorted(glob.glob(d + "/seed-*.json"))]
runs = [r for r in runs if r["status"] == "ok"]
def col(task, key):
    xs = [next(t for t in r["tasks"] if t["name"] == task).get(key) for r in runs]
    if not xs or any(x is None or (isinstance(x, float) and math.isnan(x)) for x in xs):
        sys.exit(1)  # an older result without increase_share
    return xs
def fmt(xs, scale, unit, dig=3):
    m, f = statistics.mean(xs) * scale, "%%.%df" % dig
    return (f + " ± " + f + "%s") % (m, statistics.stdev(xs) * scale, unit) if len(xs) > 1 else (f + "%s") % (m, unit)
print("| %s | %s | %s | %s |" % (v, fmt(col("cart", "increase_share"), 100, " %"),
      fmt(col("order", "increase_share"), 100, " %"), fmt(col("order", "auc"), 1, "", 4)))
PY
    then
        "$BIN" train -q -c "$dir/seed-1.yaml" --threads 1 -o "$T/$v.bin" >"$T/log" 2>&1 || { cat "$T/log" >&2; exit 1; }
        "$BIN" eval -m "$T/$v.bin" --json="$T/$v.json" >"$T/log" 2>&1 || { cat "$T/log" >&2; exit 1; }
        /usr/bin/env python3 - "$T/$v.json" "$v" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
t = d["tasks"]
def pct(x):
    return "-" if x is None else "%.3f %%" % (100 * x)
print("| %s (seed 1, retrained) | %s | %s | %.4f |" % (sys.argv[2], pct(t["cart"].get("increase_share")),
      pct(t["order"].get("increase_share")), t["order"]["auc"]))
PY
    fi
done
