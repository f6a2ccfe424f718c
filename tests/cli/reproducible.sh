# the same config and seed give a byte-identical model file; another seed gives a different one
. tests/cli/_common.sh
expect_exit 0 "$RF" train $SMALL --threads 2 -o "$T/a.model"
expect_exit 0 "$RF" train $SMALL --threads 2 -o "$T/b.model"
cmp -s "$T/a.model" "$T/b.model" || fail "two runs with the same seed differ"
expect_exit 0 "$RF" train $SMALL --threads 2 --set train.seed=7 -o "$T/c.model"
cmp -s "$T/a.model" "$T/c.model" && fail "a different seed gave the same model"
exit 0
