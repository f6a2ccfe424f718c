#!/bin/sh
# The test AUCs of train.precision: bf16 beside fp32's, for every model (issue #19: "the bf16
# runs' AUCs beside the fp32 ones"): each model trained twice on the same simulated data with
# the same seed, once per precision, then `resflow eval` of both files. Not part of CI (about
# 25 min for every model at the default ROWS on 2 cores).
#
#   sh bench/bf16_auc.sh                 # every model, 1M simulated rows
#   MODELS="resflow mmoe" ROWS=200000 THREADS=1 sh bench/bf16_auc.sh
set -eu
BUILD=${BUILD:-build}
RF="$BUILD/resflow"
MODELS=${MODELS:-"resflow nse esmm single shared_bottom moe mmoe ple aitm stem escm2_ipw escm2_dr dcmt"}
ROWS=${ROWS:-1000000}
THREADS=${THREADS:-2}
[ -x "$RF" ] || { echo "bf16_auc.sh: build first (make)" >&2; exit 1; }
if ! grep -q avx512_bf16 /proc/cpuinfo; then
    echo "bf16_auc.sh: this CPU has no AVX512-BF16: nothing to compare" >&2
    exit 0
fi
D=$(mktemp -d /tmp/resflow-bf16auc.XXXXXX)
trap 'rm -rf "$D"' EXIT
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'); simulator, synth.rows=$ROWS, $THREADS threads"
printf '%-14s %-10s %9s %9s %8s\n' model task fp32 bf16 diff
for m in $MODELS; do
    for p in fp32 bf16; do
        "$RF" train -q --threads "$THREADS" --set synth.rows="$ROWS" --set model.type="$m" \
            --set train.precision="$p" -o "$D/$m.$p.rf" >/dev/null
        "$RF" eval -q --threads "$THREADS" -m "$D/$m.$p.rf" --no-oracle --json="$D/$m.$p.json" >/dev/null
    done
    python3 - "$m" "$D/$m.fp32.json" "$D/$m.bf16.json" <<'PY'
import json, sys
m, a, b = sys.argv[1], json.load(open(sys.argv[2])), json.load(open(sys.argv[3]))
for t in a['tasks']:
    x, y = a['tasks'][t]['auc'], b['tasks'][t]['auc']
    print('%-14s %-10s %9.4f %9.4f %+8.4f' % (m, t, x, y, y - x))
PY
done
