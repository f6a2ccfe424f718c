#!/bin/sh
# bench_mpi.sh - data-parallel training, 1 vs 2 processes on this host (make bench-mpi; needs an
# MPI build: make MPI=1 BUILD=build-mpi bench-mpi). The same simulator run (ROWS rows, the
# default ResFlow model, batch BATCH, STEPS optimizer steps) as 1 process x 2 threads, 1 process x
# 1 thread and 2 processes x 1 thread (the machine's cores split between the ranks); prints the
# training samples/s (all processes), the bytes rank 0 sent per step, its seconds in
# communication, and the ratio to the 1-process run. No peer is run (see docs/distributed.md).
set -eu
BUILD=${BUILD:-build-mpi}
RF=$BUILD/resflow
ROWS=${ROWS:-200000}
BATCH=${BATCH:-2048}
STEPS=${STEPS:-60}
ldd "$RF" | grep -q libmpi || { echo "bench_mpi: $RF is not an MPI build (make MPI=1 BUILD=build-mpi bench-mpi)"; exit 1; }
if [ "$(id -u)" = 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
T=$(mktemp -d /tmp/bench_mpi.XXXXXX)
trap 'rm -rf "$T"' EXIT
ARGS="--set synth.rows=$ROWS --set train.batch_size=$BATCH --set train.max_steps=$STEPS --set train.epochs=1 --set data.valid_frac=0.01 --set data.test_frac=0.01"
echo "CPU: $(lscpu | sed -n 's/^Model name: *//p') ($(nproc) cores online; load average $(cut -d' ' -f1-3 /proc/loadavg))"
echo "run: $ROWS simulator rows, batch $BATCH, $STEPS steps, default ResFlow model"
printf '%-26s %12s %8s %14s %14s %10s\n' setup samples/s ratio "KB sent/step" "emb rows/step" "comm s"
base=""
run() { # name nproc threads
    if [ "$2" = 1 ]; then
        "$RF" train $ARGS --threads "$3" -o "$T/m.model" >/dev/null 2>"$T/err"
    else
        timeout 600 mpirun --oversubscribe --bind-to none -np "$2" "$RF" train $ARGS --threads "$3" -o "$T/m.model" >/dev/null 2>"$T/err"
    fi
    sps=$(sed -n 's/^trained .*(\([0-9]*\) samples\/s).*/\1/p' "$T/err")
    kb=$(sed -n 's/^data-parallel: rank 0 sent .* (\([0-9.]*\) KB per step.*/\1/p' "$T/err")
    er=$(sed -n 's/^data-parallel: rank 0 sent .* KB per step, \([0-9]*\) embedding rows.*/\1/p' "$T/err")
    cs=$(sed -n 's/^data-parallel: rank 0 sent .*, \([0-9.]*\) s in communication/\1/p' "$T/err")
    [ -n "$base" ] || base=$sps
    printf '%-26s %12s %8s %14s %14s %10s\n' "$1" "$sps" "$(awk -v a="$sps" -v b="$base" 'BEGIN{printf "%.2f", a/b}')" \
        "${kb:--}" "${er:--}" "${cs:--}"
}
run "1 process x 2 threads" 1 2
run "1 process x 1 thread" 1 1
run "2 processes x 1 thread" 2 1
