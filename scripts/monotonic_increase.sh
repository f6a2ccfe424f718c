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
printf '| variant | 2nd task (cart): share above its parent | 3rd task (order): share above its parent | 3rd task AUC |\n|---|---|---|---|\n'
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
mid, last = runs[0]["tasks"][1]["name"], runs[0]["tasks"][2]["name"]  # the chain's 2nd and 3rd tasks
print("| %s | %s | %s | %s |" % (v, fmt(col(mid, "increase_share"), 100, " %"),
      fmt(col(last, "increase_share"), 100, " %"), fmt(col(last, "auc"), 1, "", 4)))
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
mid, last = list(t)[1], list(t)[2]  # the chain's 2nd and 3rd tasks, in the model's order
print("| %s (seed 1, retrained) | %s | %s | %.4f |" % (sys.argv[2], pct(t[mid].get("increase_share")),
      pct(t[last].get("increase_share")), t[last]["auc"]))
PY
    fi
done
