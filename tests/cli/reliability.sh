# issue #17 (docs/reliability.md): checked standard output, outputs that are not regular files
# refused, a symlinked output written through, -o equal to an input refused, the output checked
# before training, the writer's lock, stale temporaries of dead processes removed.
. tests/cli/_common.sh
TINY="--set synth.rows=3000 --set train.epochs=1 --set model.hidden=[8] --set train.batch_size=512"
expect_exit 0 "$RF" train $TINY -q -o "$T/m.rf"
cp "$T/m.rf" "$T/m.copy"

# 2. stdout on a full device: exit 3 (I/O) and a message, not 0 with a truncated output
# expect_full CMD...: run CMD with stdout on /dev/full, expect exit 3
expect_full() {
    "$@" >/dev/full 2>"$T/err"; got=$?
    [ "$got" = 3 ] || { cat "$T/err" >&2; fail "'$*' > /dev/full exited $got, expected 3"; }
    expect_err "cannot write the standard output"
}
if [ -c /dev/full ]; then
    expect_full "$RF" predict -m "$T/m.rf" -q
    expect_full "$RF" config -m "$T/m.rf"
    expect_full "$RF" config
    expect_full "$RF" eval -m "$T/m.rf" -q
    expect_full "$RF" --version
    expect_full "$RF" synth $TINY -q -o -
fi
# synth -o - writes the CSV to the standard output (it wrote a file named '-'), the same bytes
# as to a file
RFA="$(cd "$(dirname "$RF")" && pwd)/$(basename "$RF")"
(cd "$T" && "$RFA" synth $TINY -q -o - > "$T/s_out.csv") || fail "synth -o - failed"
[ -e "$T/-" ] && fail "synth -o - wrote a file named '-'"
expect_exit 0 "$RF" synth $TINY -q -o "$T/s_file.csv"
cmp -s "$T/s_out.csv" "$T/s_file.csv" || fail "synth -o - differs from synth -o FILE"

# 3. device node, FIFO: refused before anything is written, left as they were. As root a node
# of our own (a regression would replace the machine's /dev/null); otherwise /dev/null, which
# only root could replace.
DEV=/dev/null
[ "$(id -u)" = 0 ] && mknod "$T/null" c 1 3 2>/dev/null && DEV="$T/null"
expect_exit 3 "$RF" synth $TINY -q -o "$DEV"
expect_err "character device"
[ -c "$DEV" ] || fail "$DEV is no longer a character device"
expect_exit 3 "$RF" predict -m "$T/m.rf" -q -o "$DEV"
[ -c "$DEV" ] || fail "$DEV is no longer a character device"
mkfifo "$T/fifo"
expect_exit 3 timeout 60 "$RF" predict -m "$T/m.rf" -q -o "$T/fifo"
expect_err "FIFO"
[ -p "$T/fifo" ] || fail "the FIFO was replaced"
# a symlink to a regular file: written through, the link kept
echo old > "$T/p.tsv"
ln -s p.tsv "$T/link.tsv"
expect_exit 0 "$RF" predict -m "$T/m.rf" -q -o "$T/link.tsv"
[ -L "$T/link.tsv" ] || fail "the symlink was replaced"
[ "$(head -c 3 "$T/p.tsv")" = row ] || fail "the link's target was not written"
# -o equal to an input of the run (directly or through a link): refused, the input untouched
expect_exit 1 "$RF" predict -m "$T/m.rf" -q -o "$T/m.rf"
expect_err "also an input"
ln -s m.rf "$T/alias.rf"
expect_exit 1 "$RF" predict -m "$T/m.rf" -q -o "$T/alias.rf"
cmp -s "$T/m.rf" "$T/m.copy" || fail "predict overwrote its model"
expect_exit 0 "$RF" synth $TINY -q -o "$T/d.csv"
cp "$T/d.csv" "$T/d.copy"
expect_exit 1 "$RF" train $TINY -q --set data.source="$T/d.csv" -o "$T/d.csv"
expect_err "also an input"
expect_exit 1 "$RF" prepare $TINY -q --set data.source="$T/d.csv" -o "$T/d.csv"
cmp -s "$T/d.csv" "$T/d.copy" || fail "the training data was overwritten"

# 6. an output directory that does not exist: refused before the data is loaded (no epoch)
expect_exit 3 "$RF" train $TINY -o "$T/no-such-dir/m.rf"
expect_err "no-such-dir"
grep -q "^epoch" "$T/err" && fail "train ran before checking its output"

# 4. the lock: while another process holds it, a writer of the same path fails at once
# hold_lock FILE: a process holding flock on FILE (as another writer would), its pid in $holder
hold_lock() {
    ( exec 9>"$1"; flock 9 && exec sleep 60 ) &
    holder=$!
    i=0
    while flock -n "$1" true 2>/dev/null; do
        i=$((i + 1)); [ $i -lt 100 ] || fail "the lock holder did not start"; sleep 0.1
    done
}
hold_lock "$T/.locked.csv.lock"
holder1=$holder
expect_exit 3 "$RF" synth $TINY -q -o "$T/locked.csv"
expect_err "another resflow process is writing"
[ -e "$T/locked.csv" ] && fail "written despite the lock"
# train checks it before any work (no epoch run)
cp "$T/m.rf" "$T/locked.rf"
hold_lock "$T/.locked.rf.lock"
expect_exit 3 "$RF" train $TINY -o "$T/locked.rf"
expect_err "another resflow process is writing"
grep -q "^epoch" "$T/err" && fail "train ran before checking the lock"
cmp -s "$T/locked.rf" "$T/m.rf" || fail "the locked model was replaced"
kill "$holder1" "$holder"; wait "$holder1" "$holder" 2>/dev/null
expect_exit 0 "$RF" synth $TINY -q -o "$T/locked.csv"
# a training holds the lock of its -o for the whole run: a second training fails at once
# (the first is stopped while the second tries, so how fast it trains does not matter)
"$RF" train --set synth.rows=300000 --set train.epochs=2 --set model.hidden=[8] -q -o "$T/long.rf" >"$T/long.out" 2>"$T/long.err" &
first=$!
i=0
while [ ! -e "$T/.long.rf.lock" ]; do
    i=$((i + 1)); [ $i -lt 600 ] || fail "the first training did not start"; sleep 0.02
done
kill -STOP "$first"
expect_exit 3 "$RF" train $TINY -q -o "$T/long.rf"
expect_err "another resflow process is writing"
kill -CONT "$first"
wait "$first" || { cat "$T/long.err" >&2; fail "the first training failed"; }
[ -s "$T/long.rf" ] || fail "the first training's model is missing"
[ -e "$T/.long.rf.lock" ] && fail "the training left its lock file"
[ -e "$T/.locked.csv.lock" ] && fail "a lock file was left behind"

# 5. a temporary of a dead process is removed by the next writer; one of a live process stays
dead=$(sh -c 'echo $$')
: > "$T/.s.csv.tmp.$dead.1"
: > "$T/.s.csv.tmp.$$.1"
expect_exit 0 "$RF" synth $TINY -q -o "$T/s.csv"
[ -e "$T/.s.csv.tmp.$dead.1" ] && fail "the stale temporary was not removed"
[ -e "$T/.s.csv.tmp.$$.1" ] || fail "a live process's temporary was removed"
exit 0
