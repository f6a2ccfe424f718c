# mpi.sh - data-parallel training over OpenMPI (docs/distributed.md), for an MPI build
# (make MPI=1 BUILD=build-mpi test-mpi; skipped otherwise):
# - 2 processes reproduce the 1-process run: the logged loss curve within float summation
#   tolerance (relative 1e-3), validation and test AUC within 0.001, on the simulator (also with
#   synchronised BatchNorm: model.bn: batch, and the zoo's single with BatchNorm) and on the AliExpress-format
#   config through a binary cache (if ../shared/data is there);
# - from a binary cache each process verifies only its rows (< 65% each for 2), and a byte damaged
#   in rank 1's shard is reported by rank 1 and stops every process;
# - only rank 0 prints the results and writes the model;
# - a configuration that differs between ranks, a bad row, and a rank that dies mid-training stop
#   every rank (bounded by timeout: no hang) with the failing rank's message and no model file.
. tests/cli/_common.sh
need_mpi mpi.sh

# same_run A B: the loss curves and validation AUCs (A.err, B.err) and the test AUCs (A.out,
# B.out) of two runs agree
same_run() {
    for f in "$1" "$2"; do
        sed -n 's/.* step \([0-9]*\) | loss \([0-9.e+-]*\) .*/loss \1 \2/p' "$f.err" >"$f.curve"
        sed -n 's/^epoch \([0-9]*\) valid | \(.*\) | loss.*/\2/p' "$f.err" | tr '|' '\n' |
            sed -n 's/.* auc \([0-9.]*\).*/valid \1/p' >>"$f.curve"
        awk '/^task  /{t=1; next} t && NF >= 7 && $2 ~ /^[0-9.]+$/ {print "test", $2}' "$f.out" >>"$f.curve"
    done
    n=$(grep -c '^loss' "$1.curve")
    [ "$n" -ge 5 ] || { cat "$1.err" >&2; fail "fewer than 5 loss lines in $1.err"; }
    grep -q '^test' "$1.curve" || { cat "$1.out" >&2; fail "no test metrics in $1.out"; }
    [ "$(wc -l <"$1.curve")" = "$(wc -l <"$2.curve")" ] || { paste "$1.curve" "$2.curve" >&2; fail "runs differ in length"; }
    paste "$1.curve" "$2.curve" | awk '
        function abs(x) { return x < 0 ? -x : x }
        $1 == "loss" { if ($2 != $5 || abs($3 - $6) > 1e-3 * abs($3) + 1e-5) { print "loss differs: " $0; bad = 1 } }
        $1 != "loss" { if (abs($2 - $4) > 0.001) { print $1 " AUC differs: " $0; bad = 1 } }
        END { exit bad }' >&2 || fail "the 2-process run is not the 1-process run"
}

# the simulator: 1 process (no mpirun) vs 2 processes
SIM="--set synth.rows=20000 --set train.epochs=2 --set model.hidden=[32,16] --set train.batch_size=256 --set train.log_every=10 --threads 1"
"$RF" train $SIM -o "$T/one.model" >"$T/one.out" 2>"$T/one.err" || { cat "$T/one.err" >&2; fail "1-process run failed"; }
$MPIRUN -np 2 "$RF" train $SIM -o "$T/two.model" >"$T/two.out" 2>"$T/two.err" ||
    { cat "$T/two.err" >&2; fail "2-process run failed"; }
same_run "$T/one" "$T/two"
[ -s "$T/two.model" ] || fail "no model from the 2-process run"
[ "$(grep -c '^test set' "$T/two.out")" = 1 ] || { cat "$T/two.out" >&2; fail "the results were not printed once (rank 0 only)"; }
grep -q 'data-parallel: 2 processes' "$T/two.err" || fail "no data-parallel note"
[ "$(grep -c 'model saved' "$T/two.err")" = 1 ] || fail "the model was not saved once"

# synchronised BatchNorm: a tower model with model.bn: batch, and a zoo (op-graph) model with
# BatchNorm (single: the zoo models that mix shared experts through gates, mmoe, ple, amplify
# float summation differences over many steps beyond 0.001 AUC; docs/distributed.md)
"$RF" train $SIM --set model.bn=batch -o "$T/bn1.model" >"$T/bn1.out" 2>"$T/bn1.err" ||
    { cat "$T/bn1.err" >&2; fail "1-process BatchNorm run failed"; }
$MPIRUN -np 2 "$RF" train $SIM --set model.bn=batch -o "$T/bn2.model" >"$T/bn2.out" 2>"$T/bn2.err" ||
    { cat "$T/bn2.err" >&2; fail "2-process BatchNorm run failed"; }
same_run "$T/bn1" "$T/bn2"
ZBN="--set synth.rows=40000 --set synth.ctr=0.1 --set synth.cvr=0.2 --set train.epochs=2 --set model.hidden=[32,16] --set train.batch_size=1024 --set train.log_every=2 --threads 1 --set model.bn=batch --set model.type=single"
"$RF" train $ZBN -o "$T/zb1.model" >"$T/zb1.out" 2>"$T/zb1.err" || { cat "$T/zb1.err" >&2; fail "1-process zoo+BN run failed"; }
$MPIRUN -np 2 "$RF" train $ZBN -o "$T/zb2.model" >"$T/zb2.out" 2>"$T/zb2.err" ||
    { cat "$T/zb2.err" >&2; fail "2-process zoo+BN run failed"; }
same_run "$T/zb1" "$T/zb2"

# each process verifies only its rows of a binary cache (its training shard, its slices of the
# validation and test rows): rank 0 prints what each verified
"$RF" synth --set synth.rows=30000 -o "$T/log.csv" >/dev/null 2>&1 || fail "synth failed"
CO="-c configs/csv.yaml --set data.source=$T/log.csv --set data.cache=$T/log.rfc --set train.epochs=1 --set train.max_steps=5 --set model.hidden=[16] --threads 1"
$MPIRUN -np 2 "$RF" train $CO -o "$T/c.model" >"$T/out" 2>"$T/err" || { cat "$T/err" >&2; fail "2-process run on a cache failed"; }
line=$(grep 'cache data verified per process' "$T/err") || { cat "$T/err" >&2; fail "no verified-bytes line"; }
for r in 0 1; do
    pct=$(echo "$line" | sed -n "s/.* rank $r [0-9.]* MB (\([0-9]*\)%).*/\1/p")
    [ -n "$pct" ] && [ "$pct" -lt 65 ] || fail "rank $r verified ${pct:-?}% of the cache (expected < 65%): $line"
done
# a byte damaged in rank 1's training shard (row 15000 of about 21000 training rows; 14 fields):
# rank 1 finds it, every process stops, no model
meta=$(od -An -t u8 -j 24 -N 8 "$T/log.rfc" | tr -d ' ')
catoff=$(od -An -t u8 -j $((meta + 25)) -N 8 "$T/log.rfc" | tr -d ' ')
off=$((catoff + 15000 * 14 * 4))
b=$(od -An -t u1 -j "$off" -N 1 "$T/log.rfc" | tr -d ' ')
printf "$(printf '\\%03o' $((b ^ 1)))" | dd of="$T/log.rfc" bs=1 seek="$off" conv=notrunc 2>/dev/null
$MPIRUN -np 2 "$RF" train $CO -o "$T/c2.model" >"$T/out" 2>"$T/err"
rc=$?
[ "$rc" != 0 ] && [ "$rc" != 124 ] || { cat "$T/err" >&2; fail "a damaged cache range: exit $rc"; }
grep -q 'rank 1: .*data checksum mismatch in chunk' "$T/err" || { cat "$T/err" >&2; fail "rank 1 did not report the damaged chunk"; }
[ -e "$T/c2.model" ] && fail "a model was written after a damaged cache range"

# the AliExpress-format config through a binary cache (rank 0 builds it, rank 1 maps it)
AE=../shared/data/aliexpress-us-sample/aliexpress_train_sample.csv
if [ -f "$AE" ]; then
    AEO="-c configs/aliexpress.yaml --set train.batch_size=8 --set train.log_every=2 --set train.epochs=2 --threads 1"
    "$RF" train $AEO -o "$T/ae1.model" >"$T/ae1.out" 2>"$T/ae1.err" || { cat "$T/ae1.err" >&2; fail "AliExpress 1-process run failed"; }
    $MPIRUN -np 2 "$RF" train $AEO --set data.cache="$T/ae.rfc" -o "$T/ae2.model" >"$T/ae2.out" 2>"$T/ae2.err" ||
        { cat "$T/ae2.err" >&2; fail "AliExpress 2-process run failed"; }
    same_run "$T/ae1" "$T/ae2"
    [ -s "$T/ae.rfc" ] || fail "the cache was not built"

    # a bad row: every rank stops with its file:line, printed once, exit 2, no model
    awk -F, -v OFS=, 'NR == 40 { $18 = "oops" } 1' "$AE" >"$T/bad.csv" # numerical_1 of line 40
    for cache in "" "$T/bad.rfc"; do # every rank parses the text; rank 0 builds the cache
        $MPIRUN -np 2 "$RF" train -c configs/aliexpress.yaml --set data.source="$T/bad.csv" --set data.cache="$cache" \
            -o "$T/bad.model" >"$T/out" 2>"$T/err"
        rc=$?
        [ "$rc" = 2 ] || { cat "$T/err" >&2; fail "a bad row (cache '$cache'): exit $rc, expected 2"; }
        [ "$(grep -c 'bad.csv:40:' "$T/err")" = 1 ] ||
            { cat "$T/err" >&2; fail "the bad row's file:line was not printed once (cache '$cache')"; }
        [ -e "$T/bad.model" ] && fail "a model was written after a bad row"
    done
else
    echo "mpi.sh: AliExpress sample not found ($AE): its 2-process check skipped"
fi

# a configuration that differs between the ranks
$MPIRUN -np 1 "$RF" train $SIM -o "$T/x.model" : -np 1 "$RF" train $SIM --set train.lr=0.01 -o "$T/x.model" \
    >"$T/out" 2>"$T/err"
rc=$?
[ "$rc" = 1 ] || { cat "$T/err" >&2; fail "a config mismatch: exit $rc, expected 1"; }
grep -q "rank 1's configuration differs from rank 0's" "$T/err" || { cat "$T/err" >&2; fail "no config-mismatch message"; }
[ -e "$T/x.model" ] && fail "a model was written after a config mismatch"

# a rank that dies during training: every rank stops, no hang, no model
LONG="--set synth.rows=100000 --set train.epochs=100 --set model.hidden=[32,16] --set train.batch_size=256 --set train.log_every=10 --threads 1"
$MPIRUN -np 2 "$RF" train $LONG -o "$T/k.model" >"$T/out" 2>"$T/err" &
mp=$!
i=0
while ! grep -q ' step ' "$T/err" 2>/dev/null && [ $i -lt 600 ]; do sleep 0.2; i=$((i + 1)); done
victim=""
for c in $(pgrep -P "$mp" 2>/dev/null) $(for p in $(pgrep -P "$mp" 2>/dev/null); do pgrep -P "$p"; done); do
    tr '\0' '\n' <"/proc/$c/environ" 2>/dev/null | grep -qx 'OMPI_COMM_WORLD_RANK=1' && victim=$c
done
[ -n "$victim" ] || { kill "$mp"; wait "$mp"; fail "rank 1 not found among mpirun's children"; }
kill -9 "$victim"
wait "$mp"
rc=$?
[ "$rc" != 0 ] || fail "mpirun succeeded after a rank was killed"
[ "$rc" != 124 ] || fail "the run hung after a rank was killed (timeout)"
[ -e "$T/k.model" ] && fail "a model was written after a rank died"
exit 0
