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
SMALL="--set synth.rows=30000 --set train.epochs=1 --set model.hidden=[32,16] --set train.batch_size=512 -q"
