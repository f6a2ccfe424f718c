# usage, config, data, numeric and model-file errors: clear messages and the documented exit codes
. tests/cli/_common.sh
expect_exit 1 "$RF" frobnicate
expect_exit 1 "$RF" train --no-such-option
printf 'model:\n  hiden: [4]\n' > "$T/bad.yaml"
expect_exit 1 "$RF" train -c "$T/bad.yaml"
expect_err "bad.yaml:2:3"
expect_err 'did you mean "model.hidden"'
expect_exit 1 "$RF" train --set train.lr=abc
expect_exit 1 "$RF" train --set tasks.1.parent=nosuch
expect_exit 3 "$RF" train -c "$T/missing.yaml"
# a CSV with a non-numeric dense value: file:line:column and exit 2
printf 'a,x,click,order\n1,0.5,0,0\n2,oops,1,0\n' > "$T/d.csv"
expect_exit 2 "$RF" train -q --set data.source="$T/d.csv" --set data.categorical=[a] --set data.dense=[x]
expect_err "d.csv:3:3"
# with --skip-bad-rows the row is skipped and counted
expect_exit 0 "$RF" train --skip-bad-rows --set data.source="$T/d.csv" --set data.categorical=[a] \
    --set data.dense=[x] --set data.valid_frac=0 --set data.test_frac=0 --set train.epochs=1 -o "$T/x.model"
expect_err "skipped 1 bad rows"
# predict and eval say which lines they skipped and why, as train does
expect_exit 0 "$RF" predict -m "$T/x.model" --data "$T/d.csv" --skip-bad-rows -o "$T/p.tsv"
expect_err "skipped 1 bad row of $T/d.csv (--skip-bad-rows): line 3 column 3"
expect_exit 0 "$RF" eval -m "$T/x.model" --data "$T/d.csv" --skip-bad-rows
expect_err "skipped 1 bad row of $T/d.csv (--skip-bad-rows): line 3 column 3"
# a non-finite loss stops training with exit 4 and a clear message
expect_exit 4 "$RF" train $SMALL --set train.lr=1e30 --set train.epochs=2 -o "$T/nan.model"
expect_err "non-finite training loss"
# model files: truncated, corrupted, not a model
expect_exit 0 "$RF" train $SMALL -o "$T/m.model"
head -c 100 "$T/m.model" > "$T/trunc.model"
expect_exit 6 "$RF" eval -m "$T/trunc.model"
expect_err "truncated"
cp "$T/m.model" "$T/flip.model"
printf '\377' | dd of="$T/flip.model" bs=1 seek=2000 conv=notrunc 2>/dev/null
expect_exit 6 "$RF" eval -m "$T/flip.model"
expect_err "checksum"
expect_exit 6 "$RF" eval -m "$T/bad.yaml"
expect_err "not a resflow model"
exit 0
