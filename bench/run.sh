#!/bin/sh
# bench/run.sh - resflow vs PyTorch on the reference setup, in one run, on the same data.
# Each engine runs REPS times, alternating, and the median is reported (the machine is shared
# and noisy). Both engines get the same OpenBLAS kernel choice (see tools/blas_env.c).
# Every model.type in MODELS is benchmarked; a model resflow cannot build yet is skipped, and
# one without a PyTorch reference in bench/torch_bench.py gets "-" in the torch columns.
# First the machine's limit: the CPU model and its measured fp32 and bf16 peak on THREADS threads
# (the best of five runs of bench_train --peak, bench/peak.c); "%peak" is each model's training GFLOP/s per CPU second x
# threads as a share of the fp32 peak (per CPU second too; both equal the wall figures when quiet). "cpu ratio" compares samples per CPU second of both engines (steadier than wall time
# on a shared machine; the same as "ratio" on a quiet one).
# Env: MODELS (default: the tower models, then the zoo), REPS (3), STEPS (60), THREADS (2),
# PRECISION (fp32; passed to bench_train --precision, which sets train.precision).
# PORTABLE_BUILD (unset): a PORTABLE=1 build directory; each model is then also run from it,
# alternating with the native build, and the two are compared per CPU second.
set -eu
BUILD=${BUILD:-build}
MODELS=${MODELS:-"resflow nse esmm single shared_bottom moe mmoe ple aitm stem escm2_ipw escm2_dr dcmt"}
REPS=${REPS:-3}
STEPS=${STEPS:-60}
THREADS=${THREADS:-2}
PRECISION=${PRECISION:-fp32}
PY=/usr/bin/python3
D=$(mktemp -d /tmp/resflow-bench.XXXXXX)
trap 'rm -rf "$D"' EXIT
if ! $PY -c "import torch" 2>/dev/null; then
    echo "bench: Debian's python3-torch is not installed (scripts/install-deps.sh --with-torch)" >&2
    exit 1
fi
# same kernels for PyTorch as resflow picks for itself
TORCH_ENV=""
if [ "${RESFLOW_BLAS_CORETYPE:-auto}" = auto ] && [ -n "${OPENBLAS_CORETYPE:-}" ] && grep -q avx512f /proc/cpuinfo; then
    case "$OPENBLAS_CORETYPE" in Haswell|Zen|Sandybridge) TORCH_ENV="-u OPENBLAS_CORETYPE" ;; esac
fi
"$BUILD/bench_train" --dump "$D" --steps 1 >/dev/null
# the peak: the best of five runs of bench_train --peak, field by field. A peak is a maximum, and on a
# shared VM one run in a few measures half of it (seen: fp32 118.5 GFLOP/s against 231-234 in the
# runs just after, bf16 and int8 unaffected), which would double every %peak below; it is measured
# again after the runs ("peak after the runs", last line)
for i in 1 2 3 4 5; do "$BUILD/bench_train" --peak --threads "$THREADS" --json; done > "$D/peaks.txt"
best_peak() { # the best of the JSON lines of file $1, field by field (cpu, isa, threads, c2c_ns: the first's)
    $PY -c 'import json,sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
best = dict(rows[0])
for r in rows[1:]:
    for k, v in r.items():
        if k not in ("cpu", "isa", "threads", "c2c_ns"): best[k] = max(best[k], v)
print(json.dumps(best))' "$1"
}
best_peak "$D/peaks.txt" > "$D/peak.txt"
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
# the core-to-core round trip before each repetition and after the last ("c2c ns": lowest-highest):
# 50-80 ns when the host has the two vCPUs near each other, 320-370 ns when far apart, where a
# two-thread step runs 10-30 % slower (docs/performance.md, "Rows stay on their core")
c2c() { "$BUILD/bench_train" --c2c --threads "$THREADS" >> "$D/x.txt"; }
c2cspan() { sort -n "$D/x.txt" | awk '{a[NR]=$1} END {printf "%d-%d", a[1], a[NR]}'; }
field() { $PY -c "import json,sys; print(json.loads(sys.stdin.readline())['$1'])"; }
peak=$(field fp32_gflops < "$D/peak.txt")
echo "CPU: $(field cpu < "$D/peak.txt"); measured peak on $THREADS threads:" \
    "fp32 $peak GFLOP/s ($(field isa < "$D/peak.txt") FMA), bf16 $(field bf16_gflops < "$D/peak.txt") GFLOP/s" \
    "(vdpbf16ps; 0 = none), int8 $(field int8_gops < "$D/peak.txt") GOP/s (vpdpbusd; 0 = none); per CPU second of each thread"
printf '%-13s %14s %14s %7s %9s %6s %14s %14s %7s %9s %9s %10s %10s %8s\n' model "resflow tr/s" "torch tr/s" ratio \
    "GFLOP/s" "%peak" "resflow inf/s" "torch inf/s" ratio "cpu ratio" "(infer)" "rf RSS MB" "pt RSS MB" "c2c ns"
for m in $MODELS; do
    if ! "$BUILD/bench_train" --model "$m" --steps 1 --rows 4096 --threads "$THREADS" >/dev/null 2>&1; then
        echo "$m: not implemented in this build, skipped" >&2
        continue
    fi
    : > "$D/c.txt"; : > "$D/t.txt"; : > "$D/x.txt"
    for r in $(seq "$REPS"); do
        c2c
        "$BUILD/bench_train" --model "$m" --steps "$STEPS" --threads "$THREADS" --precision "$PRECISION" \
            --json >> "$D/c.txt"
        env $TORCH_ENV $PY bench/torch_bench.py --data "$D" --model "$m" --steps "$STEPS" \
            --threads "$THREADS" >> "$D/t.txt"
    done
    c2c
    ct=$(while read -r l; do echo "$l" | field train_samples_per_sec; done < "$D/c.txt" | median)
    ci=$(while read -r l; do echo "$l" | field infer_samples_per_sec; done < "$D/c.txt" | median)
    gf=$(while read -r l; do echo "$l" | field gflops; done < "$D/c.txt" | median)
    cm=$(while read -r l; do echo "$l" | field peak_rss_mb; done < "$D/c.txt" | median)
    cc=$(while read -r l; do echo "$l" | field train_cpu_samples_per_sec; done < "$D/c.txt" | median)
    cic=$(while read -r l; do echo "$l" | field infer_cpu_samples_per_sec; done < "$D/c.txt" | median)
    gc=$(while read -r l; do echo "$l" | field gflops_cpu; done < "$D/c.txt" | median)
    pp=$(echo "$gc $peak" | awk '{printf "%.0f%%", 100 * $1 / $2}')
    if grep -q '"error"' "$D/t.txt"; then   # no PyTorch reference of this model
        printf '%-13s %14.0f %14s %7s %9.1f %6s %14.0f %14s %7s %9s %9s %10.0f %10s %8s\n' "$m" "$ct" - - "$gf" "$pp" \
            "$ci" - - - - "$cm" - "$(c2cspan)"
        continue
    fi
    tt=$(while read -r l; do echo "$l" | field train_samples_per_sec; done < "$D/t.txt" | median)
    ti=$(while read -r l; do echo "$l" | field infer_samples_per_sec; done < "$D/t.txt" | median)
    tm=$(while read -r l; do echo "$l" | field peak_rss_mb; done < "$D/t.txt" | median)
    tc=$(while read -r l; do echo "$l" | field train_cpu_samples_per_sec; done < "$D/t.txt" | median)
    tic=$(while read -r l; do echo "$l" | field infer_cpu_samples_per_sec; done < "$D/t.txt" | median)
    printf '%-13s %14.0f %14.0f %6.2fx %9.1f %6s %14.0f %14.0f %6.2fx %8.2fx %8.2fx %10.0f %10.0f %8s\n' "$m" "$ct" "$tt" \
        "$(echo "$ct $tt" | awk '{print $1/$2}')" "$gf" "$pp" "$ci" "$ti" "$(echo "$ci $ti" | awk '{print $1/$2}')" \
        "$(echo "$cc $tc" | awk '{print $1/$2}')" "$(echo "$cic $tic" | awk '{print $1/$2}')" "$cm" "$tm" "$(c2cspan)"
done
if [ -n "${PORTABLE_BUILD:-}" ]; then
    printf '\n%-13s %14s %14s %7s %14s %14s %7s   (samples per CPU second x threads)\n' model "native tr/s" \
        "portable tr/s" ratio "native inf/s" "portable inf/s" ratio
    for m in $MODELS; do
        : > "$D/n.txt"; : > "$D/p.txt"
        for r in $(seq "$REPS"); do
            for b in "$BUILD:n" "$PORTABLE_BUILD:p"; do
                "${b%:*}/bench_train" --model "$m" --steps "$STEPS" --threads "$THREADS" --json >> "$D/${b##*:}.txt" ||
                    continue 3
            done
        done
        nt=$(while read -r l; do echo "$l" | field train_cpu_samples_per_sec; done < "$D/n.txt" | median)
        ni=$(while read -r l; do echo "$l" | field infer_cpu_samples_per_sec; done < "$D/n.txt" | median)
        pt=$(while read -r l; do echo "$l" | field train_cpu_samples_per_sec; done < "$D/p.txt" | median)
        pi=$(while read -r l; do echo "$l" | field infer_cpu_samples_per_sec; done < "$D/p.txt" | median)
        printf '%-13s %14.0f %14.0f %6.2fx %14.0f %14.0f %6.2fx\n' "$m" "$nt" "$pt" "$(echo "$pt $nt" | awk '{print $1/$2}')" \
            "$ni" "$pi" "$(echo "$pi $ni" | awk '{print $1/$2}')"
    done
fi
echo "setup: 16 fields x emb 16 (250k rows), towers 256-128-64-1 x 2 tasks, batch 2048, $THREADS threads, $STEPS steps, median of $REPS, $PRECISION"
echo "inference: resflow = rf_predict over the rows (resflow predict's path, probabilities), torch = the model's forward on batches of 2048"
echo "zoo (resflow's defaults): bottom and experts 256-128, 4 experts (moe/mmoe), PLE 2 levels (256, 128) x (1 specific + 2 shared); towers as above on their outputs"
# train.precision: bf16 (the GEMMs in bf16 with fp32 accumulation, AVX512-BF16; docs/performance.md,
# "bf16 training") against PyTorch fp32 in the same run, alternating; only on a CPU with
# AVX512-BF16; int8 scoring for the tower models (resflow, nse, esmm). BF16=0 leaves it out.
if [ "${BF16:-1}" != 0 ] && "$BUILD/bench_train" --precision bf16 --steps 1 --rows 4096 >/dev/null 2>&1; then
    I8=0; "$BUILD/bench_train" --precision int8 --only infer --steps 1 --rows 4096 >/dev/null 2>&1 && I8=1
    printf '\n%-13s %14s %14s %7s %9s %6s %9s %14s %14s %14s %7s %14s %7s %8s   (bf16, int8 vs PyTorch fp32)\n' model \
        "bf16 tr/s" "torch tr/s" ratio "GFLOP/s" "%peak" "cpu ratio" "fp32 tr/s" "bf16 inf/s" "torch inf/s" ratio \
        "int8 inf/s" ratio "c2c ns"
    for m in $MODELS; do
        M8=$I8; case "$m" in resflow|nse|esmm) ;; *) M8=0 ;; esac
        : > "$D/b.txt"; : > "$D/f.txt"; : > "$D/t.txt"; : > "$D/i.txt"; : > "$D/x.txt"
        for r in $(seq "$REPS"); do
            c2c
            "$BUILD/bench_train" --model "$m" --steps "$STEPS" --threads "$THREADS" --precision bf16 \
                --json >> "$D/b.txt"
            [ $M8 = 1 ] && "$BUILD/bench_train" --model "$m" --steps "$STEPS" --threads "$THREADS" --precision int8 \
                --only infer --json >> "$D/i.txt"
            "$BUILD/bench_train" --model "$m" --steps "$STEPS" --threads "$THREADS" --json >> "$D/f.txt"
            env $TORCH_ENV $PY bench/torch_bench.py --data "$D" --model "$m" --steps "$STEPS" \
                --threads "$THREADS" >> "$D/t.txt"
        done
        c2c
        med() { while read -r l; do echo "$l" | field "$1"; done < "$D/$2.txt" | median; } # FIELD FILE
        bt=$(med train_samples_per_sec b); bc=$(med train_cpu_samples_per_sec b); bg=$(med gflops_cpu b)
        ft=$(med train_samples_per_sec f); tt=$(med train_samples_per_sec t); tc=$(med train_cpu_samples_per_sec t)
        bi=$(med infer_samples_per_sec b); ti=$(med infer_samples_per_sec t)
        ii=-; ir=-
        if [ $M8 = 1 ]; then ii=$(med infer_samples_per_sec i); ir=$(echo "$ii $ti" | awk '{printf "%.2fx", $1/$2}'); fi
        printf '%-13s %14.0f %14.0f %6.2fx %9.1f %6s %8.2fx %14.0f %14.0f %14.0f %6.2fx %14s %7s %8s\n' "$m" "$bt" "$tt" \
            "$(echo "$bt $tt" | awk '{print $1/$2}')" "$bg" "$(echo "$bg $peak" | awk '{printf "%.0f%%", 100 * $1 / $2}')" \
            "$(echo "$bc $tc" | awk '{print $1/$2}')" "$ft" "$bi" "$ti" "$(echo "$bi $ti" | awk '{print $1/$2}')" "$ii" "$ir" \
            "$(c2cspan)"
    done
    echo "bf16: %peak is of the fp32 peak above (bf16's is twice it); bf16 inf/s = rf_predict_ex in bf16 (resflow"
    echo "predict --precision bf16), int8 inf/s = in int8 (--precision int8, AVX512-VNNI; - = none or a zoo model),"
    echo "both against PyTorch's fp32 forward in the same run; the zoo's gates and logit layers (< 16 columns) stay fp32"
fi
for i in 1 2 3; do "$BUILD/bench_train" --peak --threads "$THREADS" --json; done > "$D/peaks2.txt"
best_peak "$D/peaks2.txt" > "$D/peak2.txt"
echo "peak after the runs (best of 3): fp32 $(field fp32_gflops < "$D/peak2.txt") GFLOP/s, bf16 $(field bf16_gflops < "$D/peak2.txt")," \
    "int8 $(field int8_gops < "$D/peak2.txt") GOP/s (%peak above: of the one before the runs)"
