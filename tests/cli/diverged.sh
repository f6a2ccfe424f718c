# issue #17, finding 4: a diverged run (exploding or non-finite loss) never replaces the model
# file: exit 4, a clear message, the existing model byte for byte as it was.
. tests/cli/_common.sh
C="--set synth.rows=8000 --set train.epochs=2 --set model.hidden=[8] --set train.batch_size=256 --threads 2 -q"
expect_exit 0 "$RF" train $C -o "$T/good.rf"
cp "$T/good.rf" "$T/good.copy"
# lr 100: the loss explodes (finite): before, saved over the good model with exit 0
expect_exit 4 "$RF" train $C --set train.lr=100 -o "$T/good.rf"
expect_err "training diverged"
expect_err "was not written"
cmp -s "$T/good.rf" "$T/good.copy" || fail "a diverged model replaced the good one"
# lr 1e30: a non-finite loss
expect_exit 4 "$RF" train $C --set train.lr=1e30 -o "$T/good.rf"
expect_err "non-finite\|diverged"
cmp -s "$T/good.rf" "$T/good.copy" || fail "a diverged model replaced the good one"
# a fresh output: nothing written at the model's path
expect_exit 4 "$RF" train $C --set train.lr=100 -o "$T/new.rf"
[ -e "$T/new.rf" ] && fail "a diverged model was saved"
exit 0
