#!/bin/sh
# probe_study.sh - reproduces docs/results-probe.md (paper §4.4, Fig. 4) from a fresh clone:
# builds resflow, trains NSE and ResFlow on the built-in simulator (the default ecom log, 5M impressions; default
# config: towers 128-64, PReLU, no BN), probes both (and the untrained NSE network) on 250 test
# rows per group A/B/C, and copies the heatmaps (10 rows per group, 64 units) and the printed
# summaries into docs/img/probe/. Models and full dumps (probe.json) stay in build/probe-study/.
# Takes about 6 minutes on 2 cores.  Usage: scripts/probe_study.sh [OUTDIR]   (default docs/img/probe)
set -eu
cd "$(dirname "$0")/.."
OUT=${1:-docs/img/probe}
W=build/probe-study
RF=./build/resflow
make -j2 >/dev/null
mkdir -p "$W" "$OUT"
for t in nse resflow; do
    if [ ! -s "$W/$t.model" ]; then
        echo "training $t ..." >&2
        $RF train -q --set model.type=$t -o "$W/$t.model" > "$W/$t.train.txt"
    fi
done
PROBE="--rows 250 --show 10 --units 64 --seed 1"
LIM="--limit 1.25,3" # the same colour scale per layer for NSE and ResFlow
probe() { # name, then resflow probe options
    name=$1; shift
    $RF probe -q "$@" -o "$W/$name" > "$W/$name.txt"
    mkdir -p "$OUT/$name"
    for f in $FIGS; do cp "$W/$name/$f.svg" "$OUT/$name/"; done
    cp "$W/$name.txt" "$OUT/$name/summary.txt"
    echo "== $name"; cat "$W/$name.txt"; echo
}
FIGS="layer1 layer2 logits"
probe resflow -m "$W/resflow.model" $PROBE $LIM --label ResFlow
probe nse -m "$W/nse.model" $PROBE $LIM --label NSE
FIGS="layer1 layer2"
# the untrained network (its own colour scale: its features are ~20x smaller)
probe nse-init -m "$W/nse.model" $PROBE --init --label "NSE, initial weights"
# the paper's layout: 10 queries (lists) with one row of each group
FIGS="logits"
probe resflow-per-query -m "$W/resflow.model" --rows 10 --per-key --seed 1 --label "ResFlow, per query"
# within-query comparison of the groups on 150 queries (paired differences of r_ctcvr)
$RF probe -q -m "$W/resflow.model" --rows 150 --per-key --seed 1 --no-features -o "$W/resflow-150q" > "$W/resflow-150q.txt"
python3 - "$W/resflow-150q/probe.json" <<'PY' | tee "$OUT/resflow-per-query/paired.txt"
import json, statistics as st, sys
j = json.load(open(sys.argv[1]))
r = {g: [x["residual_logit"]["ctcvr"] for x in j["rows"] if x["group"] == g] for g in "ABC"}
print("%d queries with a row of each group; residual logit r_ctcvr, paired within a query:" % j["rows_per_group"])
for a, b in (("B", "A"), ("C", "B")):
    d = [y - x for x, y in zip(r[b], r[a])]
    print("  r_%s - r_%s: mean %.3f ± %.3f (s.e.), negative in %.0f%% of queries"
          % (a, b, st.mean(d), st.pstdev(d) / len(d) ** 0.5, 100.0 * sum(v < 0 for v in d) / len(d)))
allr = r["A"] + r["B"] + r["C"]
print("  all %d residual logits negative: %s (largest %.3f)" % (len(allr), all(v < 0 for v in allr), max(allr)))
PY
