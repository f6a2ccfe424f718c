#!/bin/sh
# bench/prepare_bench.sh - `resflow prepare` vs pandas.read_csv on the same file, in one run.
# The file is in the AliExpress layout (search_id, categorical_1..16, numerical_1..63, click,
# conversion; bench/gen_aliexpress.c imitates the public sample's values, ~560 bytes a row).
# resflow prepare parses it, fits the vocabularies and writes a new binary cache (the previous
# one is deleted before each run, outside the timing; the wall time of the whole process, start
# and configuration included, taken with date(1)); build/bench_load times
# the parse + fit alone (rf_load_csv, no cache). pandas.read_csv (Debian's python3-pandas, its
# C engine) only parses it into a DataFrame, timed inside Python without the interpreter start
# and import: once with its defaults (int64/float64 columns) and once with the numeric columns
# read as float32 like resflow's. Each runs REPS times, alternating, and the median is
# reported: the machine is shared and noisy. Env: ROWS (1000000), REPS (3), THREADS (2),
# KEEP (1: keep the file), GZ (1: also the same file gzip'ed - gzip -1 - read by both tools;
# ratios against pandas on the .gz).
set -eu
BUILD=${BUILD:-build}
ROWS=${ROWS:-1000000}
REPS=${REPS:-3}
THREADS=${THREADS:-2}
PY=/usr/bin/python3
D="$BUILD/bench-prepare"
mkdir -p "$D"
if ! $PY -c "import pandas" 2>/dev/null; then
    echo "bench: Debian's python3-pandas is not installed (apt-get install python3-pandas)" >&2
    exit 1
fi
F="$D/aliexpress_$ROWS.csv"
if [ ! -s "$F" ]; then
    ${CC:-cc} -O2 -o "$D/gen_aliexpress" bench/gen_aliexpress.c
    "$D/gen_aliexpress" "$ROWS" "$F"
fi
now() { date +%s.%N; }
: > "$D/times.txt"
CFG="-c configs/aliexpress.yaml --set data.source=$F --set data.test= --set data.valid_frac=0.1 --set data.test_frac=0.1"
PDF32="dtype={f'numerical_{i}': 'float32' for i in range(1, 64)}"
for r in $(seq "$REPS"); do
    for t in "$THREADS" 1; do
        rm -f "$D/cache.rfc"
        t0=$(now); "$BUILD/resflow" prepare $CFG -o "$D/cache.rfc" --threads "$t" -q >/dev/null; t1=$(now)
        echo "rf$t $t0 $t1" >> "$D/times.txt"
        "$BUILD/bench_load" configs/aliexpress.yaml "$F" "$t" | awk -v k="ld$t" '{print k, 0, $6}' >> "$D/times.txt"
    done
    $PY -c "import pandas, time; t = time.time(); df = pandas.read_csv('$F', engine='c'); print('pd', t, time.time())" >> "$D/times.txt"
    $PY -c "import pandas, time; t = time.time(); df = pandas.read_csv('$F', engine='c', $PDF32); print('pd32', t, time.time())" >> "$D/times.txt"
    if [ "${GZ:-0}" = 1 ]; then
        [ -s "$F.gz" ] || gzip -1 -c "$F" > "$F.gz"
        rm -f "$D/cache.rfc"
        t0=$(now); "$BUILD/resflow" prepare $CFG --set "data.source=$F.gz" -o "$D/cache.rfc" --threads "$THREADS" -q >/dev/null; t1=$(now)
        echo "rfgz $t0 $t1" >> "$D/times.txt"
        $PY -c "import pandas, time; t = time.time(); df = pandas.read_csv('$F.gz', engine='c'); print('pdgz', t, time.time())" >> "$D/times.txt"
    fi
done
$PY - "$F" "$ROWS" "$REPS" "$THREADS" "$D/times.txt" <<'PY'
import os, statistics, sys
import pandas
f, rows, reps, threads, tf = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
t = {}
for line in open(tf):
    k, a, b = line.split()
    t.setdefault(k, []).append(float(b) - float(a))
mb = os.path.getsize(f) / 1e6
print(f"file: {f}, {rows} rows, {mb:.1f} MB (median of {reps} runs; pandas {pandas.__version__}, C engine)\n")
print(f"{'tool':44s} {'seconds':>8s} {'MB/s':>10s} {'rows/s':>12s} {'vs pandas':>10s}")
pd = statistics.median(t["pd"])
rowsdef = [("pd", "pandas.read_csv (defaults)"), ("pd32", "pandas.read_csv (numerical_* as float32)"),
           ("rf1", "resflow prepare (1 thread)"), (f"rf{threads}", f"resflow prepare ({threads} threads)"),
           ("ld1", "parse + fit only, rf_load_csv (1 thread)"), (f"ld{threads}", f"parse + fit only ({threads} threads)")]
if "pdgz" in t:
    rowsdef += [("pdgz", "pandas.read_csv, .gz input (defaults)"), ("rfgz", f"resflow prepare, .gz input ({threads} threads)")]
seen = set()
for key, name in rowsdef:
    if key in seen or key not in t:
        continue
    seen.add(key)
    s = statistics.median(t[key])
    base = statistics.median(t["pdgz"]) if key.endswith("gz") else pd
    print(f"{name:44s} {s:8.2f} {mb / s:10.1f} {rows / s:12.0f} {base / s:9.2f}x")
PY
rm -f "$D/cache.rfc"
[ "${KEEP:-1}" = 1 ] || rm -f "$F" "$F.gz"
