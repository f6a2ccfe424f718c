# issue #18 "First use": what a new user hits first. The default cache path of `prepare`,
# stdout carrying only JSON in every --json mode, the guard rails (NaN/single-class validation
# metrics, fusion's objective and group count, unscaled dense columns, too few optimizer steps)
# and the note when chain models reduce to NSE.
. tests/cli/_common.sh
isjson() { python3 -c 'import json,sys; json.load(sys.stdin)' <"$T/out" || { head -c 600 "$T/out" >&2; fail "stdout of '$1' is not JSON"; }; }

# 1. prepare without -o builds the config's data.cache
expect_exit 0 "$RF" synth --set synth.rows=5000 -o "$T/log.csv" -q
P="-c configs/csv.yaml --set data.source=$T/log.csv --set data.cache=$T/dflt.rfc"
expect_exit 0 "$RF" prepare $P -q
[ -s "$T/dflt.rfc" ] || fail "prepare without -o did not write data.cache"
expect_out "prepared $T/dflt.rfc"
expect_exit 0 "$RF" prepare $P --check
expect_out "fresh"
