# predict / eval --precision: fp32 is the default (the same bytes as no option, for any thread
# count); bf16 on a CPU with AVX512-BF16 and int8 on a CPU with AVX512-VNNI score close to fp32
# (AUC within 0.002, each probability within 0.02; int8 the same bytes for 1 and 2 threads) and
# the eval JSON says "precision": "bf16" / "int8" (bf16 for a zoo model too, which also trains
# in bf16); refused with a clear error for int8 on a zoo model, a CPU without them
# (RESFLOW_BF16=off, RESFLOW_INT8=off; serve too, before listening), a bad value and other
# commands
. tests/cli/_common.sh
expect_exit 0 "$RF" train $SMALL -o "$T/m.rf"
expect_exit 0 "$RF" predict -m "$T/m.rf" -o "$T/a.tsv" -q --threads 1
expect_exit 0 "$RF" predict -m "$T/m.rf" -o "$T/b.tsv" -q --threads 2 --precision fp32
cmp -s "$T/a.tsv" "$T/b.tsv" || fail "--precision fp32 with 2 threads differs from the default with 1"
expect_exit 1 "$RF" predict -m "$T/m.rf" --precision fp16
expect_err "fp32, bf16 or int8"
expect_exit 1 "$RF" train $SMALL --precision bf16
expect_err "not an option of this command"
for p in bf16:BF16:AVX512-BF16 int8:INT8:AVX512-VNNI; do # as on a CPU without the instructions
    prec=${p%%:*}; rest=${p#*:}; var=RESFLOW_${rest%%:*}; isa=${rest#*:}
    expect_exit 1 env "$var=off" "$RF" predict -m "$T/m.rf" -o "$T/c.tsv" --precision "$prec"
    expect_err "$isa"
    [ -e "$T/c.tsv" ] && fail "a refused run left an output"
    expect_exit 1 env "$var=off" timeout 20 "$RF" serve -m "$T/m.rf" --port 0 --precision "$prec"
    expect_err "$isa"
done
expect_exit 1 "$RF" serve -m "$T/m.rf" --port 0 --precision fp8
expect_err "fp32, bf16 or int8"
expect_exit 1 "$RF" train $SMALL --set train.precision=int8 -o "$T/i.rf"
expect_err "fp32, bf16"
expect_exit 0 "$RF" train $SMALL --set model.type=mmoe -o "$T/z.rf"
expect_exit 1 "$RF" eval -m "$T/z.rf" --precision int8
expect_err "tower models"
# close_to A B NAME: every probability of B within 0.02 of A's, and not all equal
close_to() {
    python3 - "$1" "$2" <<'PY' || fail "$3 scores far from fp32's"
import sys
a = [l.split('\t') for l in open(sys.argv[1])][1:]
b = [l.split('\t') for l in open(sys.argv[2])][1:]
assert len(a) == len(b) == 6000, (len(a), len(b))
d = max(abs(float(x) - float(y)) for ra, rb in zip(a, b) for x, y in zip(ra[1:], rb[1:]))
assert 0 < d < 0.02, d
PY
}
# eval_json_close A B PREC: the eval JSON B says "precision": PREC, its AUCs within 0.002 of A's
eval_json_close() {
    python3 - "$1" "$2" "$3" <<'PY' || fail "eval --precision $3"
import json, sys
a, b = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
assert 'precision' not in a and b['precision'] == sys.argv[3]
for t in a['tasks']:
    assert abs(a['tasks'][t]['auc'] - b['tasks'][t]['auc']) <= 0.002, t
PY
}
expect_exit 0 "$RF" eval -m "$T/m.rf" -q --json="$T/e32.json"
if grep -q avx512_vnni /proc/cpuinfo; then
    expect_exit 0 "$RF" predict -m "$T/m.rf" -o "$T/i1.tsv" -q --precision int8 --threads 1
    expect_exit 0 "$RF" predict -m "$T/m.rf" -o "$T/i2.tsv" -q --precision int8 --threads 2
    cmp -s "$T/i1.tsv" "$T/i2.tsv" || fail "int8 scores differ between 1 and 2 threads"
    cmp -s "$T/a.tsv" "$T/i1.tsv" && fail "int8 scores are fp32's: int8 did not run"
    close_to "$T/a.tsv" "$T/i1.tsv" int8
    expect_exit 0 "$RF" eval -m "$T/m.rf" -q --json="$T/e8.json" --precision int8
    eval_json_close "$T/e32.json" "$T/e8.json" int8
    expect_exit 0 "$RF" eval -m "$T/m.rf" --precision int8
    expect_out "scored in int8"
else
    echo "precision.sh: int8 scoring skipped: no AVX512-VNNI on this CPU"
fi
if ! grep -q avx512_bf16 /proc/cpuinfo; then
    echo "precision.sh: bf16 scoring skipped: no AVX512-BF16 on this CPU"
    exit 0
fi
expect_exit 0 "$RF" predict -m "$T/m.rf" -o "$T/d.tsv" -q --precision bf16
cmp -s "$T/a.tsv" "$T/d.tsv" && fail "bf16 scores are fp32's: bf16 did not run"
close_to "$T/a.tsv" "$T/d.tsv" bf16
expect_exit 0 "$RF" eval -m "$T/m.rf" -q --json="$T/e16.json" --precision bf16
eval_json_close "$T/e32.json" "$T/e16.json" bf16
# a zoo model (op graph): scored in bf16 too, and trained in bf16
expect_exit 0 "$RF" predict -m "$T/z.rf" -o "$T/z32.tsv" -q
expect_exit 0 "$RF" predict -m "$T/z.rf" -o "$T/z16.tsv" -q --precision bf16
close_to "$T/z32.tsv" "$T/z16.tsv" "mmoe bf16"
expect_exit 0 "$RF" eval -m "$T/z.rf" -q --json="$T/z32.json"
expect_exit 0 "$RF" eval -m "$T/z.rf" -q --json="$T/z16.json" --precision bf16
eval_json_close "$T/z32.json" "$T/z16.json" bf16
expect_exit 0 "$RF" train $SMALL --set model.type=ple --set train.precision=bf16 -o "$T/zb.rf"
grep -a -q "precision: bf16" "$T/zb.rf" || fail "a bf16-trained PLE's file does not record train.precision"
exit 0
