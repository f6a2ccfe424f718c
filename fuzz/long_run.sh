#!/bin/sh
# The long fuzz run of one target (docs/reliability.md, "Fuzzing"): runs build-fuzz/TARGET
# (make fuzz) at nice 19 for RUNS executions on a copy of its seed corpus, keeping the logs,
# the grown corpus and any crashing input under LOGDIR/TARGET/. The binary is copied first,
# so a rebuild does not change a run in progress. Run again, it continues from the grown corpus
# (a new log.N.txt; runs.txt has one start and one end line per run, with its executions).
#   [NICE=N] fuzz/long_run.sh TARGET [RUNS [LOGDIR]]     (defaults: 10000000, /work/fuzzlogs, nice 19)
set -eu
T=$1
RUNS=${2:-10000000}
L=${3:-/work/fuzzlogs}/$T
[ -x "build-fuzz/$T" ] || { echo "long_run: build-fuzz/$T missing (make fuzz)" >&2; exit 2; }
mkdir -p "$L/corpus" "$L/artifacts"
cp "build-fuzz/$T" "$L/$T"
cp -n fuzz/corpus/"$T"/* "$L/corpus/" 2>/dev/null || true
n=$(( $(grep -c ' start ' "$L/runs.txt" 2>/dev/null || true) + 1 ))
LOG="$L/log.$n.txt"
echo "$(date -u +%FT%TZ) start $T runs=$RUNS rev=$(git rev-parse --short HEAD 2>/dev/null || echo ?)" >> "$L/runs.txt"
start=$(date +%s)
rc=0
ASAN_OPTIONS=detect_leaks=1 OMP_NUM_THREADS=1 nice -n "${NICE:-19}" "$L/$T" -runs="$RUNS" -rss_limit_mb=2048 -timeout=10 \
    -print_final_stats=1 -artifact_prefix="$L/artifacts/" "$L/corpus" > "$LOG" 2>&1 || rc=$?
end=$(date +%s)
echo "$(date -u +%FT%TZ) end $T rc=$rc wall=$((end - start))s executions=$(grep -o 'number_of_executed_units: *[0-9]*' "$LOG" | grep -o '[0-9]*$') $(grep -o 'cov: [0-9]*' "$LOG" | tail -1)" >> "$L/runs.txt"
tail -1 "$L/runs.txt"
