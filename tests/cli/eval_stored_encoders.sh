# eval/predict without --data read the model's own test rows with the model's stored encoders
# (vocabularies, normalisers), never re-fitted: after the training file changes (its rows
# reversed: other first-seen vocabulary ids, other dense statistics), the same model gives the
# same predictions and metrics - with a separate data.test file and with the source's test split.
. tests/cli/_common.sh
expect_exit 0 "$RF" synth --set synth.rows=6000 -q -o "$T/all.csv"
{ head -1 "$T/all.csv"; sed -n 2,4801p "$T/all.csv"; } > "$T/train.csv"
{ head -1 "$T/all.csv"; sed -n '4802,$p' "$T/all.csv"; } > "$T/test.csv"
CFG="-c configs/csv.yaml --set data.group= --set data.dense=[log_price:standardize,item_hist_ctr] \
     --set train.epochs=1 --set model.hidden=[16] --set train.batch_size=256 -q"
reverse_rows() { { head -1 "$1"; tail -n +2 "$1" | tac; } > "$1.rev" && mv "$1.rev" "$1"; }
for mode in file split; do
    if [ $mode = file ]; then
        SRC="--set data.source=$T/train.csv --set data.test=$T/test.csv --set data.test_frac=0"
    else
        cp "$T/all.csv" "$T/src.csv"
        SRC="--set data.source=$T/src.csv --set data.test_frac=0.2"
    fi
    expect_exit 0 "$RF" train $CFG $SRC -o "$T/m.model"
    expect_exit 0 "$RF" eval -m "$T/m.model" --json
    cp "$T/out" "$T/before.json"
    expect_exit 0 "$RF" predict -m "$T/m.model" -o "$T/before.tsv"
    # the training rows change (the first 80% of the source reversed)
    if [ $mode = file ]; then
        reverse_rows "$T/train.csv"
    else
        { head -1 "$T/src.csv"; sed -n 2,4801p "$T/src.csv" | tac; sed -n '4802,$p' "$T/src.csv"; } > "$T/src2.csv"
        mv "$T/src2.csv" "$T/src.csv"
    fi
    expect_exit 0 "$RF" eval -m "$T/m.model" --json
    cmp -s "$T/out" "$T/before.json" || { diff "$T/before.json" "$T/out" | head >&2; fail "$mode: eval changed with the training file"; }
    expect_exit 0 "$RF" predict -m "$T/m.model" -o "$T/after.tsv"
    cmp -s "$T/before.tsv" "$T/after.tsv" || fail "$mode: predictions changed with the training file"
    [ "$(wc -l < "$T/after.tsv")" = 1201 ] || fail "$mode: expected 1200 test rows"
    # and a model re-trained on the changed file does differ (the check above has teeth)
    expect_exit 0 "$RF" train $CFG $SRC -o "$T/m2.model"
    expect_exit 0 "$RF" predict -m "$T/m2.model" -o "$T/other.tsv"
    cmp -s "$T/before.tsv" "$T/other.tsv" && fail "$mode: retraining on reversed rows changed nothing"
done
exit 0
