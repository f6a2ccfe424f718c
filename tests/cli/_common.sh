# common.sh - helpers for the CLI tests (sourced). Each test exits non-zero on failure.
set -u
RF="${BUILD:-build}/resflow"
T=$(mktemp -d /tmp/resflow-cli.XXXXXX)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
# expect_exit CODE CMD... : run CMD, check its exit code, keep stderr in $T/err
expect_exit() {
    want=$1; shift
    "$@" >"$T/out" 2>"$T/err"; got=$?
    [ "$got" = "$want" ] || { cat "$T/err" >&2; fail "'$*' exited $got, expected $want"; }
}
expect_err() { grep -q -- "$1" "$T/err" || { cat "$T/err" >&2; fail "stderr lacks '$1'"; }; }
expect_out() { grep -q -- "$1" "$T/out" || { cat "$T/out" >&2; fail "stdout lacks '$1'"; }; }
# the CLI tests train briefly on the simulator's older search preset and split (70/10/20): 23 steps
# learn it, while the ecom default needs more data than a quick test (test_synth.c covers ecom)
SMALL="--set synth.preset=search --set synth.ctr=0.05 --set data.test_frac=0.2 --set synth.rows=30000 --set train.epochs=1 --set model.hidden=[32,16] --set train.batch_size=512 -q"
# need_mpi NAME: exit 0 (skipped, saying so) unless $RF is an MPI build and mpirun is there;
# else set MPIRUN (bounded by timeout, oversubscribed, unbound) and allow mpirun as root
need_mpi() {
    if ! command -v mpirun >/dev/null 2>&1 || ! ldd "$RF" 2>/dev/null | grep -q libmpi; then
        echo "$1: skipped: $RF is not an MPI build (make MPI=1 BUILD=build-mpi test-mpi)"
        exit 0
    fi
    if [ "$(id -u)" = 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
    MPIRUN="timeout 300 mpirun --oversubscribe --bind-to none"
}
# until_line PATTERN [LOG]: a run's log lines from fd 3 (a FIFO the run writes its log to) into LOG
# (default: dropped) until one contains PATTERN; 1 if the run ended first. Reading the log from a
# FIFO line by line keeps the run at most a pipe buffer (64 KB) ahead of the reader, so a signal
# sent at a line lands while it runs, however fast the CPU (a polled log file does not).
until_line() {
    while read -r _line <&3; do
        [ -n "${2:-}" ] && echo "$_line" >>"$2"
        case "$_line" in *"$1"*) return 0 ;; esac
    done
    return 1
}
# wait_server LOG PID: wait (up to 20 s) for the server PID to print "listening on
# http://127.0.0.1:PORT" into LOG and set PORT; fail if it exits first or never says so
wait_server() {
    PORT=""
    for _i in $(seq 200); do
        PORT=$(sed -n 's|^listening on http://127\.0\.0\.1:\([0-9]*\)$|\1|p' "$1")
        [ -n "$PORT" ] && return 0
        kill -0 "$2" 2>/dev/null || { cat "$1" >&2; fail "the server exited before listening"; }
        sleep 0.1
    done
    cat "$1" >&2; fail "no 'listening on' line from the server in $1"
}
