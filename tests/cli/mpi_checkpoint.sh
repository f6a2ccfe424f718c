# mpi_checkpoint.sh - checkpoints, resume and signals of a data-parallel run (docs/distributed.md,
# docs/reliability.md), for an MPI build (make MPI=1 BUILD=build-mpi test-mpi; skipped otherwise):
# - a 2-process run with --checkpoint-every, killed with SIGKILL after a checkpoint and resumed
#   with 2 processes, ends with the uninterrupted run's model, byte for byte; resumed with 1
#   process it ends with the same test AUCs (within float summation order);
# - SIGTERM to one rank only: every rank stops at the same step (they agree at every step), rank 0
#   writes the checkpoint and the best model so far, the run exits 143; the resumed run again
#   ends with the uninterrupted run's model.
. tests/cli/_common.sh
need_mpi mpi_checkpoint.sh
RUN="--set synth.preset=search --set synth.rows=30000 --set data.test_frac=0.2 --set train.epochs=3 --set model.hidden=[32,16] --set train.batch_size=128 --set train.log_every=20 --threads 1"

# wait_for FILE PID: until FILE exists (or the run ended / 60 s)
wait_for() {
    i=0
    while [ ! -e "$1" ] && kill -0 "$2" 2>/dev/null && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
}
# rank_pid MPIRUN_PID R: the pid of rank R among mpirun's descendants
rank_pid() {
    for c in $(pgrep -P "$1" 2>/dev/null) $(for p in $(pgrep -P "$1" 2>/dev/null); do pgrep -P "$p"; done); do
        tr '\0' '\n' <"/proc/$c/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$2" && echo "$c"
    done
}
test_aucs() { awk '/^task  /{t=1; next} t && NF >= 7 && $2 ~ /^[0-9.]+$/ {print $1, $2}' "$1"; }

# the uninterrupted 2-process run, with checkpoints (removed at the end)
$MPIRUN -np 2 "$RF" train $RUN --checkpoint-every 10 -o "$T/ref.model" >"$T/ref.out" 2>"$T/ref.err" ||
    { cat "$T/ref.err" >&2; fail "the uninterrupted 2-process run failed"; }
[ -e "$T/ref.model.ckpt" ] && fail "a checkpoint was left after a complete 2-process run"
grep -q "checkpoint $T/ref.model.ckpt removed" "$T/ref.err" || { cat "$T/ref.err" >&2; fail "no checkpoint was written"; }

# SIGKILL every process after the first checkpoint, resume with 2 processes: the same model
$MPIRUN -np 2 "$RF" train $RUN --checkpoint-every 10 -o "$T/k.model" >"$T/out" 2>"$T/err" &
mp=$!
wait_for "$T/k.model.ckpt" $mp
sleep 0.5
r0=$(rank_pid $mp 0)
r1=$(rank_pid $mp 1)
[ -n "$r0" ] && [ -n "$r1" ] || { kill $mp; wait $mp; cat "$T/err" >&2; fail "the run ended before it could be killed"; }
kill -9 $r0 $r1
wait $mp
[ -e "$T/k.model.ckpt" ] || fail "no checkpoint after the kill"
cp "$T/k.model.ckpt" "$T/k1.ckpt"
$MPIRUN -np 2 "$RF" train --resume "$T/k.model.ckpt" -o "$T/k.model" >"$T/k.out" 2>"$T/k.err" ||
    { cat "$T/k.err" >&2; fail "the 2-process resume failed"; }
grep -q "resuming" "$T/k.err" || fail "no resume note"
cmp -s "$T/ref.model" "$T/k.model" || fail "killed and resumed (2 processes): not the uninterrupted run's model"
[ -e "$T/k.model.ckpt" ] && fail "the checkpoint was left after the resumed run completed"

# the same checkpoint resumed by 1 process: the same test AUCs (summation order differs)
"$RF" train --resume "$T/k1.ckpt" -o "$T/k1.model" >"$T/k1.out" 2>"$T/k1.err" ||
    { cat "$T/k1.err" >&2; fail "the 1-process resume of a 2-process checkpoint failed"; }
test_aucs "$T/ref.out" >"$T/a.txt"
test_aucs "$T/k1.out" >"$T/b.txt"
[ -s "$T/a.txt" ] || { cat "$T/ref.out" >&2; fail "no test AUCs printed"; }
paste "$T/a.txt" "$T/b.txt" | awk 'function abs(x) { return x < 0 ? -x : x }
    { if ($1 != $3 || abs($2 - $4) > 0.001) { print "AUC differs: " $0; bad = 1 } } END { exit bad }' >&2 ||
    fail "a 2-process checkpoint resumed by 1 process: other test AUCs"

# SIGTERM to rank 1 only: all stop together, rank 0 writes the checkpoint and the model, exit 143
$MPIRUN -np 2 "$RF" train $RUN --checkpoint-every 10 -o "$T/s.model" >"$T/out" 2>"$T/s.err" &
mp=$!
wait_for "$T/s.model.ckpt" $mp
r1=$(rank_pid $mp 1)
[ -n "$r1" ] || { kill $mp; wait $mp; fail "rank 1 not found"; }
kill -TERM "$r1"
wait $mp
rc=$?
[ "$rc" = 143 ] || { cat "$T/s.err" >&2; fail "SIGTERM to rank 1: mpirun exited $rc, expected 143"; }
grep -q "stopped by SIGTERM" "$T/s.err" || { cat "$T/s.err" >&2; fail "no stop message from rank 0"; }
[ -e "$T/s.model" ] && [ -e "$T/s.model.ckpt" ] || fail "SIGTERM: the model or the checkpoint is missing"
$MPIRUN -np 2 "$RF" train --resume "$T/s.model.ckpt" -o "$T/s.model" >/dev/null 2>"$T/err" ||
    { cat "$T/err" >&2; fail "resume after SIGTERM failed"; }
cmp -s "$T/ref.model" "$T/s.model" || fail "stopped by SIGTERM and resumed: not the uninterrupted run's model"
exit 0
