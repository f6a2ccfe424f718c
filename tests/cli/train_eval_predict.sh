# train -> eval -> predict round trip on a small simulated log; JSON output; config from model
. tests/cli/_common.sh
expect_exit 0 "$RF" train $SMALL -o "$T/m.model" --json="$T/train.json"
expect_out "ctcvr|ctr"
[ -s "$T/m.model" ] || fail "no model written"
ls "$T" | grep -q tmp && fail "temporary file left behind"
expect_exit 0 "$RF" eval -m "$T/m.model" --json -q
python3 -c "import json,sys; d=json.load(open('$T/out')); a=d['tasks']['ctr']['auc']; assert 0.55<a<1, a; assert d['tasks']['ctcvr']['parent']=='ctr'" \
    || fail "eval --json output"
# eval on the held-out split must agree with the metrics printed at the end of training
python3 -c "import json; a=json.load(open('$T/train.json')); b=json.load(open('$T/out')); assert abs(a['tasks']['ctr']['auc']-b['tasks']['ctr']['auc'])<1e-9" \
    || fail "eval of the saved model differs from the metrics at the end of training"
expect_exit 0 "$RF" predict -m "$T/m.model" -o "$T/p.tsv" -q
[ "$(head -1 "$T/p.tsv")" = "$(printf 'row\tctr\tctcvr')" ] || fail "predict header"
[ "$(wc -l < "$T/p.tsv")" = 6001 ] || fail "predict rows: $(wc -l < "$T/p.tsv")"
expect_exit 0 "$RF" config -m "$T/m.model"
expect_out "hidden: \[32, 16\]"
exit 0
