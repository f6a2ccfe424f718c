# issue #17: checkpoints, resume byte for byte after SIGKILL at random points, SIGTERM/SIGINT
# (stop at a step boundary, checkpoint + best model, exit 143/130), resume on other data (the data
# fingerprint), --init-model, bad checkpoints.
. tests/cli/_common.sh
C="--set synth.rows=6000 --set train.epochs=3 --set model.hidden=[8] --set model.emb_dim=4"
C="$C --set train.batch_size=128 --set train.log_every=5 --threads 2"
expect_exit 0 "$RF" train $C -q -o "$T/full.rf"
[ -e "$T/full.rf.ckpt" ] && fail "a checkpoint was left after a complete run"

# wait_for FILE PATTERN: until FILE exists (PATTERN "") or contains PATTERN; at most 60 s
wait_for() {
    i=0
    while [ $i -lt 600 ]; do
        if [ -z "$2" ]; then [ -e "$1" ] && return 0; else grep -q -- "$2" "$1" 2>/dev/null && return 0; fi
        sleep 0.1; i=$((i + 1))
    done
    fail "timed out waiting for $1 $2"
}
rnd() { echo $(( $(od -An -N2 -tu2 /dev/urandom) % $1 )); }

# SIGKILL at random points after the first checkpoint, then --resume (twice killed in round 2):
# the final model is the uninterrupted run's, byte for byte
for round in 1 2 3; do
    out="$T/k$round.rf"
    "$RF" train $C -q -o "$out" --checkpoint-every 3 2>/dev/null &
    pid=$!
    wait_for "$out.ckpt" ""
    sleep "0.$(rnd 10)"; kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
    if [ "$round" = 2 ] && [ -e "$out.ckpt" ]; then
        "$RF" train --resume "$out.ckpt" -q -o "$out" --checkpoint-every 2 2>/dev/null &
        pid=$!
        sleep "0.$(rnd 10)"; kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
    fi
    if [ -e "$out.ckpt" ]; then
        expect_exit 0 "$RF" train --resume "$out.ckpt" -q -o "$out"
    fi
    cmp -s "$out" "$T/full.rf" || fail "round $round: the resumed model differs from the uninterrupted run's"
    [ -e "$out.ckpt" ] && fail "round $round: checkpoint left after the resumed run completed"
done

# SIGTERM and SIGINT: stop at a step boundary, checkpoint + best model so far, 143 / 130;
# the resumed run ends with the same model. The log goes to a FIFO read line by line (until_line),
# so the run can be at most a pipe buffer (~650 of these one-step lines) ahead of the reader when
# it sends the signal after "step 10": the signal lands long before the 1140 steps end, however
# fast the CPU (a log file polled every 0.1 s missed it on an AMD EPYC Zen 5, where the whole run
# takes 0.1 s: exit 0, expected 143).
S="$C --set train.epochs=60 --set train.patience=0 --set train.log_every=1"
expect_exit 0 "$RF" train $S -q -o "$T/full_s.rf"
mkfifo "$T/fifo"
for sig in TERM INT; do
    out="$T/s$sig.rf"
    : >"$T/log"
    "$RF" train $S -o "$out" 2>"$T/fifo" &
    pid=$!
    exec 3<"$T/fifo"
    until_line "step 10 " "$T/log" || fail "SIG$sig: the run ended before step 10"
    kill -$sig $pid
    cat <&3 >>"$T/log"; exec 3<&-
    wait $pid; got=$?
    want=143; [ $sig = INT ] && want=130
    [ "$got" = $want ] || { cat "$T/log" >&2; fail "SIG$sig: exit $got, expected $want"; }
    grep -q "stopped by SIG$sig" "$T/log" || { cat "$T/log" >&2; fail "SIG$sig: no message"; }
    [ -e "$out" ] && [ -e "$out.ckpt" ] || fail "SIG$sig: the model or the checkpoint is missing"
    expect_exit 0 "$RF" predict -m "$out" -q -o "$T/p.tsv" # the saved model is whole
    expect_exit 0 "$RF" train --resume "$out.ckpt" -q -o "$out"
    cmp -s "$out" "$T/full_s.rf" || fail "SIG$sig: the resumed model differs"
done

# the config key train.checkpoint_every: the same checkpoints as --checkpoint-every, kept by the
# resumed run (its configuration is the checkpoint's): a run killed, resumed, killed again after
# the resumed run wrote a checkpoint of its own (the file replaced: another inode), resumed again,
# ends with the uninterrupted run's model; --checkpoint-every overrides the key
K="$S --set train.checkpoint_every=3"
expect_exit 0 "$RF" train $K -q -o "$T/full_k.rf"
"$RF" train $K -q -o "$T/k.rf" 2>/dev/null &
pid=$!
wait_for "$T/k.rf.ckpt" ""
kill -9 $pid; wait $pid 2>/dev/null
ino=$(stat -c %i "$T/k.rf.ckpt")
"$RF" train --resume "$T/k.rf.ckpt" -q -o "$T/k.rf" 2>/dev/null &
pid=$!
i=0
while [ "$(stat -c %i "$T/k.rf.ckpt" 2>/dev/null)" = "$ino" ] && kill -0 $pid 2>/dev/null && [ $i -lt 600 ]; do
    sleep 0.05; i=$((i + 1))
done
kill -9 $pid 2>/dev/null || fail "train.checkpoint_every: the resumed run ended before it wrote a checkpoint"
wait $pid 2>/dev/null
[ -e "$T/k.rf.ckpt" ] && [ "$(stat -c %i "$T/k.rf.ckpt")" != "$ino" ] || fail "train.checkpoint_every: the resumed run wrote no checkpoint"
expect_exit 0 "$RF" train --resume "$T/k.rf.ckpt" -q -o "$T/k.rf"
cmp -s "$T/k.rf" "$T/full_k.rf" || fail "train.checkpoint_every: the resumed model differs from the uninterrupted run's"
expect_exit 0 "$RF" config -m "$T/k.rf"
expect_out "checkpoint_every: 3"
for ov in "3:1000h:absent" "1h:3:present"; do # key:flag:checkpoint by step 10
    key=${ov%%:*}; rest=${ov#*:}; flag=${rest%%:*}; want=${rest#*:}
    rm -f "$T/o.rf.ckpt"; : >"$T/log"
    "$RF" train $S --set train.checkpoint_every=$key --checkpoint-every $flag -o "$T/o.rf" 2>"$T/fifo" &
    pid=$!
    exec 3<"$T/fifo"
    until_line "step 10 " "$T/log" || fail "key $key, --checkpoint-every $flag: the run ended before step 10"
    got=absent; [ -e "$T/o.rf.ckpt" ] && got=present
    kill -TERM $pid
    cat <&3 >/dev/null; exec 3<&-
    wait $pid
    [ $got = $want ] || fail "key $key, --checkpoint-every $flag: checkpoint $got by step 10, expected $want"
    rm -f "$T/o.rf.ckpt"
done
for bad in 0 -3 2.5 5x 10ms; do
    expect_exit 1 "$RF" train $C --set train.checkpoint_every=$bad -o "$T/b.rf"
    expect_err "train.checkpoint_every"
done
[ -e "$T/b.rf" ] && fail "a model was written with a bad train.checkpoint_every"

# the data fingerprint: a checkpoint resumed on other data of the same shapes (one dense value
# changed: the same rows, columns and vocabularies) is refused, the model and checkpoint kept;
# on the original data again, the run resumes
expect_exit 0 "$RF" synth -q --set synth.rows=3000 -o "$T/d.csv"
D="--set data.source=$T/d.csv --set data.categorical=[user_id,item_id,brand] --set data.dense=[log_price]"
D="$D --set model.hidden=[8] --set model.emb_dim=4 --set train.batch_size=128 --set train.log_every=5"
D="$D --set train.epochs=2000 --set train.patience=0 --threads 2" # long: it is stopped by SIGTERM
rm -f "$T/log"
"$RF" train $D -o "$T/d.rf" 2>"$T/log" &
pid=$!
wait_for "$T/log" "step 10 "
kill -TERM $pid; wait $pid
[ -e "$T/d.rf.ckpt" ] && [ -e "$T/d.rf" ] || fail "fingerprint: no checkpoint or model after SIGTERM"
cp "$T/d.csv" "$T/d.orig"; cp "$T/d.rf" "$T/d.rf.orig"; cp "$T/d.rf.ckpt" "$T/d.ckpt.orig"
awk -F, -v OFS=, 'NR == 2 { $21 = $21 + 1 } { print }' "$T/d.orig" > "$T/d.csv"
cmp -s "$T/d.csv" "$T/d.orig" && fail "fingerprint: the data was not changed"
expect_exit 2 "$RF" train --resume "$T/d.rf.ckpt" -o "$T/d.rf"
expect_err "written for other training data"
cmp -s "$T/d.rf" "$T/d.rf.orig" && cmp -s "$T/d.rf.ckpt" "$T/d.ckpt.orig" || fail "fingerprint: a refused resume changed files"
cp "$T/d.orig" "$T/d.csv"
expect_exit 0 "$RF" train --resume "$T/d.rf.ckpt" -q -o "$T/d.rf"

# bad checkpoints and options: clear errors, nothing trained
"$RF" train $C -q -o "$T/b.rf" --checkpoint-every 2 2>/dev/null &
pid=$!; wait_for "$T/b.rf.ckpt" ""; kill -9 $pid; wait $pid 2>/dev/null
cp "$T/b.rf.ckpt" "$T/good.ckpt"
sz=$(wc -c < "$T/good.ckpt")
head -c $((sz / 2)) "$T/good.ckpt" > "$T/trunc.ckpt"
expect_exit 6 "$RF" train --resume "$T/trunc.ckpt" -o "$T/b.rf"
expect_err "checksum mismatch"
printf 'X' | dd of="$T/b.rf.ckpt" bs=1 seek=200 conv=notrunc 2>/dev/null
expect_exit 6 "$RF" train --resume "$T/b.rf.ckpt" -o "$T/b.rf"
expect_err "corrupted"
expect_exit 6 "$RF" train --resume "$T/full.rf" -o "$T/b.rf"
expect_err "not a resflow checkpoint"
expect_exit 1 "$RF" train --resume "$T/good.ckpt" $C -o "$T/b.rf"
expect_err "cannot be combined"
expect_exit 1 "$RF" train $C --checkpoint-every 5x -o "$T/b.rf"
expect_err "checkpoint-every"
expect_exit 1 "$RF" train $C --checkpoint "$T/full.rf" -o "$T/b.rf"
expect_err "not a resflow checkpoint"

# --init-model: a warm start from a model of the same architecture trains from its weights
expect_exit 0 "$RF" train $C -q --set train.epochs=1 --init-model "$T/full.rf" -o "$T/warm.rf"
expect_exit 0 "$RF" train $C -q --set train.epochs=1 -o "$T/cold.rf"
cmp -s "$T/warm.rf" "$T/cold.rf" && fail "--init-model changed nothing"
expect_exit 1 "$RF" train $C -q --set model.hidden=[4] --init-model "$T/full.rf" -o "$T/w2.rf"
expect_err "does not fit"
[ -e "$T/w2.rf" ] && fail "a model was written after a refused --init-model"
exit 0
