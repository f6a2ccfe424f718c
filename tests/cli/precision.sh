# predict / eval --precision: fp32 is the default (the same bytes as no option, for any thread
# count); bf16 on a CPU with AVX512-BF16 scores close to fp32 (AUC within 0.002, each
# probability within 0.02) and the eval JSON says "precision": "bf16"; refused with a clear
# error for a zoo model, a CPU without it (RESFLOW_BF16=off; serve too, before listening), a bad
# value and other commands
. tests/cli/_common.sh
expect_exit 0 "$RF" train $SMALL -o "$T/m.rf"
expect_exit 0 "$RF" predict -m "$T/m.rf" -o "$T/a.tsv" -q --threads 1
expect_exit 0 "$RF" predict -m "$T/m.rf" -o "$T/b.tsv" -q --threads 2 --precision fp32
cmp -s "$T/a.tsv" "$T/b.tsv" || fail "--precision fp32 with 2 threads differs from the default with 1"
expect_exit 1 "$RF" predict -m "$T/m.rf" --precision fp16
expect_err "fp32 or bf16"
expect_exit 1 "$RF" train $SMALL --precision bf16
expect_err "not an option of this command"
RESFLOW_BF16=off expect_exit 1 "$RF" predict -m "$T/m.rf" -o "$T/c.tsv" --precision bf16
expect_err "AVX512-BF16"
[ -e "$T/c.tsv" ] && fail "a refused run left an output"
RESFLOW_BF16=off expect_exit 1 timeout 20 "$RF" serve -m "$T/m.rf" --port 0 --precision bf16
expect_err "AVX512-BF16"
expect_exit 1 "$RF" serve -m "$T/m.rf" --port 0 --precision fp8
expect_err "fp32 or bf16"
expect_exit 0 "$RF" train $SMALL --set model.type=mmoe -o "$T/z.rf"
expect_exit 1 "$RF" eval -m "$T/z.rf" --precision bf16
expect_err "tower models"
if ! grep -q avx512_bf16 /proc/cpuinfo; then
    echo "precision.sh: bf16 scoring skipped: no AVX512-BF16 on this CPU"
    exit 0
fi
expect_exit 0 "$RF" predict -m "$T/m.rf" -o "$T/d.tsv" -q --precision bf16
cmp -s "$T/a.tsv" "$T/d.tsv" && fail "bf16 scores are fp32's: bf16 did not run"
python3 - "$T/a.tsv" "$T/d.tsv" <<'PY' || fail "bf16 scores far from fp32's"
import sys
a = [l.split('\t') for l in open(sys.argv[1])][1:]
b = [l.split('\t') for l in open(sys.argv[2])][1:]
assert len(a) == len(b) == 6000, (len(a), len(b))
d = max(abs(float(x) - float(y)) for ra, rb in zip(a, b) for x, y in zip(ra[1:], rb[1:]))
assert 0 < d < 0.02, d
PY
expect_exit 0 "$RF" eval -m "$T/m.rf" -q --json="$T/e32.json"
expect_exit 0 "$RF" eval -m "$T/m.rf" -q --json="$T/e16.json" --precision bf16
python3 - "$T/e32.json" "$T/e16.json" <<'PY' || fail "eval --precision bf16"
import json, sys
a, b = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
assert 'precision' not in a and b['precision'] == 'bf16'
for t in a['tasks']:
    assert abs(a['tasks'][t]['auc'] - b['tasks'][t]['auc']) <= 0.002, t
PY
exit 0
