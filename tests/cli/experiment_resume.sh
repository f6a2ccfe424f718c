# resflow experiment, repeated: finished runs (result file present, same config hash) are not
# trained again; a changed config, a missing or corrupt result, more seeds and --force are.
. tests/cli/_common.sh
TINY="--set synth.rows=3000 --set synth.users=300 --set synth.items=600 --set synth.queries=100
      --set synth.ctr=0.2 --set synth.cvr=0.2 --set train.epochs=1 --set train.batch_size=256
      --set model.hidden=[16] --set model.expert_hidden=[16] --set model.bottom=[16]"
X="$RF experiment $TINY --models nse,mmoe --seeds 2 -o $T/res --threads 2"
R="$T/res/runs/synth"
snap() { for f in "$R"/*/seed-*.json; do cksum "$f"; done > "$T/$1"; }
expect_exit 0 $X
expect_err "4 runs; 0 finished, 4 to run"
snap a
cp "$T/res/results.csv" "$T/csv.a.full"
grep -v train_seconds "$T/res/results.csv" > "$T/csv.a" # all but the timings
same_tables() { grep -v train_seconds "$T/res/results.csv" | cmp -s - "$T/csv.a"; }
# again: nothing is trained, every result file is untouched, the tables are the same
expect_exit 0 $X
expect_err "4 runs; 4 finished, 0 to run"
expect_err "(0 runs trained now, 4 reused)"
grep -q "^== \[" "$T/err" && fail "a run was trained again"
snap b
cmp -s "$T/a" "$T/b" || fail "result files changed although nothing was to run"
cmp -s "$T/res/results.csv" "$T/csv.a.full" || fail "tables changed"
# the thread count is not part of a run's identity
expect_exit 0 $X --threads 1
expect_err "4 finished, 0 to run"
# --dry-run lists the runs and trains nothing
rm "$R/mmoe/seed-2.json"
expect_exit 0 $X --dry-run
expect_out "synth            mmoe                    2  [0-9a-f]\{16\} to run"
expect_out "synth            nse                     1  [0-9a-f]\{16\} done"
[ -e "$R/mmoe/seed-2.json" ] && fail "--dry-run trained"
# a missing result: only that run
expect_exit 0 $X
expect_err "3 finished, 1 to run"
expect_err "model mmoe (mmoe), seed 2"
snap c
[ "$(grep -v mmoe/seed-2 "$T/a")" = "$(grep -v mmoe/seed-2 "$T/c")" ] || fail "other results were rewritten"
same_tables || fail "the same run gave another result"
# a corrupt result, and a result of another configuration (hash): those runs again
echo '{"format": "resflow-run-1", "config' > "$R/nse/seed-1.json"
sed -i 's/"config_hash": "[0-9a-f]*"/"config_hash": "0000000000000001"/' "$R/nse/seed-2.json"
expect_exit 0 $X
expect_err "nse/seed-1.json: unreadable"
expect_err "nse/seed-2.json: configuration changed"
expect_err "2 finished, 2 to run"
same_tables || fail "rerun runs differ"
# another setting changes every run's hash
expect_exit 0 $X --set train.lr=0.002
expect_err "0 finished, 4 to run"
same_tables && fail "a changed config gave the same tables"
# more seeds: only the new ones; the table now has 3 values per cell
expect_exit 0 $X --set train.lr=0.002 --seeds 3
expect_err "4 finished, 2 to run"
expect_out "± [0-9.]*"
grep -q ",3,3,0,[^;]*;[^;]*;[^;]*$" "$T/res/results.csv" || fail "3-seed rows missing in the CSV"
# --force: all of them
expect_exit 0 $X --set train.lr=0.002 --seeds 3 --force
expect_err "6 runs; 0 finished, 6 to run"
exit 0
