# a trained model reads files with its own schema: a simulator model scores a `resflow synth`
# CSV (integer ids) exactly as it scores the in-memory data; predict needs no label columns;
# labels outside {0,1} are rejected with file:line:column
. tests/cli/_common.sh
expect_exit 0 "$RF" train $SMALL -o "$T/m.model"
# the same simulator rows written to CSV: the test split is the last 20% of rows
expect_exit 0 "$RF" synth $SMALL -o "$T/all.csv"
{ head -1 "$T/all.csv"; tail -n 6000 "$T/all.csv"; } > "$T/test.csv"
expect_exit 0 "$RF" eval -m "$T/m.model" --json -q
cp "$T/out" "$T/mem.json"
expect_exit 0 "$RF" eval -m "$T/m.model" --data "$T/test.csv" --json -q
python3 -c "import json; a=json.load(open('$T/mem.json')); b=json.load(open('$T/out')); \
assert all(abs(a['tasks'][t]['auc']-b['tasks'][t]['auc'])<1e-6 for t in ('ctr','ctcvr')), (a,b)" \
    || fail "metrics on the CSV copy differ from the in-memory test split"
# predict without label columns
cut -d, -f1-16 "$T/test.csv" > "$T/nolabels.csv"
expect_exit 0 "$RF" predict -m "$T/m.model" --data "$T/nolabels.csv" -o "$T/p.tsv" -q
[ "$(wc -l < "$T/p.tsv")" = 6001 ] || fail "predict rows"
# a label of 2 (CSV-trained model)
printf 'a,b,click,order\nx,u,1,0\ny,v,2,0\n' > "$T/lab.csv"
expect_exit 2 "$RF" train -q --set data.source="$T/lab.csv" --set data.categorical=[a,b]
expect_err "lab.csv:3:5: label '2' is not 0 or 1"
exit 0
