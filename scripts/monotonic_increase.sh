#!/bin/sh
# scripts/monotonic_increase.sh - the share of test rows whose predicted probability rises along
# the chain (p_child > p_parent), for the seed-1 model of every variant of
# configs/experiments/monotonic.yaml (paper §3.3, Table 11). Run the experiment first; this
# retrains each variant's seed-1 run from its resolved config and evaluates it.
#   scripts/monotonic_increase.sh [EXPERIMENT_OUT (default results/monotonic)]
set -eu
OUT=${1:-results/monotonic}
BIN=${BIN:-./build/resflow}
T=$(mktemp -d /tmp/resflow-mono.XXXXXX)
trap 'rm -rf "$T"' EXIT
printf '| variant | cart: share p_cart > p_click | order: share p_order > p_cart | order AUC |\n|---|---|---|---|\n'
for v in wo m1 m2 m3 m4; do
    cfg="$OUT/runs/synth-3task/$v/seed-1.yaml"
    [ -f "$cfg" ] || { echo "missing $cfg (run: resflow experiment -c configs/experiments/monotonic.yaml)" >&2; exit 1; }
    "$BIN" train -q -c "$cfg" --threads 1 -o "$T/$v.bin" >"$T/log" 2>&1 || { cat "$T/log" >&2; exit 1; }
    "$BIN" eval -m "$T/$v.bin" --json="$T/$v.json" >"$T/log" 2>&1 || { cat "$T/log" >&2; exit 1; }
    /usr/bin/env python3 - "$T/$v.json" "$v" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
t = d["tasks"]
def pct(x):
    return "-" if x is None else "%.3f %%" % (100 * x)
print("| %s | %s | %s | %.4f |" % (sys.argv[2], pct(t["cart"].get("increase_share")),
      pct(t["order"].get("increase_share")), t["order"]["auc"]))
PY
done
