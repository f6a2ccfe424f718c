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

# 2. every --json mode: stdout is JSON only (the human table goes to stderr)
expect_exit 0 "$RF" train $SMALL -o "$T/m.model" --json
isjson "train --json"
expect_exit 0 "$RF" train $SMALL -o "$T/m.model" --json="$T/train.json"
expect_out "test set"
python3 -c "import json; json.load(open('$T/train.json'))" || fail "train --json=FILE"
expect_exit 0 "$RF" compare $SMALL --models nse,resflow --json
isjson "compare --json"
expect_exit 0 "$RF" compare $SMALL --set synth.rows=5000 --models nse --json
isjson "compare --json (quiet)"
expect_exit 0 "$RF" eval -m "$T/m.model" --json
isjson "eval --json"
expect_exit 0 "$RF" fusion -m "$T/m.model" --no-save --kind mul --json
isjson "fusion --json"
