# issue #18 finding 6: data.split: position | random. A file sorted by user split by position
# holds out its last users only; random assigns each group (or row) by a seeded hash of its key.
# The model's own test split (eval/predict without --data) is the same rows as in training.
. tests/cli/_common.sh
awk 'BEGIN { srand(5); print "user,item,x,click"; for (u = 0; u < 200; u++) for (j = 0; j < 10; j++)
    printf "u%d,i%d,%.3f,%d\n", u, int(rand() * 50), rand(), rand() < 0.3 }' >"$T/sorted.csv"
cat >"$T/s.yaml" <<YAML
data: {source: $T/sorted.csv, categorical: [user, item], dense: [x], group: user, valid_frac: 0.1, test_frac: 0.2}
tasks: [{name: ctr, label: click}]
train: {batch_size: 64, epochs: 1}
YAML
# the default is position, and is not written into the resolved config (model files unchanged)
expect_exit 0 "$RF" config -c "$T/s.yaml"
if grep -q "split:" "$T/out"; then fail "data.split: position written into the resolved config"; fi
expect_exit 0 "$RF" config -c "$T/s.yaml" --set data.split=random
expect_out "  split: random"
expect_exit 1 "$RF" config -c "$T/s.yaml" --set data.split=shuffled
expect_err "data.split"
# random: groups (users) kept together, held out from the whole file, the test rows of eval = training's
expect_exit 0 "$RF" train -c "$T/s.yaml" --set data.split=random -o "$T/r.model"
line=$(grep "^split: train" "$T/err") || fail "no split line"
set -- $(echo "$line" | tr -dc '0-9 ' | tr -s ' ')
tr=$1 va=$2 te=$3
[ $((tr + va + te)) = 2000 ] || fail "split counts $line"
[ $((tr % 10)) = 0 ] && [ $((va % 10)) = 0 ] && [ $((te % 10)) = 0 ] || fail "a user's 10 rows were cut apart: $line"
[ "$te" -gt 200 ] && [ "$te" -lt 600 ] && [ "$va" -gt 60 ] && [ "$va" -lt 400 ] || fail "fractions far off: $line"
expect_exit 0 "$RF" eval -m "$T/r.model" -q --json
python3 -c "import json,sys; j=json.load(sys.stdin); assert j['rows'] == $te, j['rows']" <"$T/out" || fail "eval's test rows are not training's ($te)"
# predict without --data scores the same test rows
expect_exit 0 "$RF" predict -m "$T/r.model" -q
[ "$(($(wc -l <"$T/out") - 1))" = "$te" ] || fail "predict: test rows"
# position: the last 20 % of rows = the last 40 users
expect_exit 0 "$RF" train -c "$T/s.yaml" -o "$T/p.model" -q
expect_exit 0 "$RF" eval -m "$T/p.model" -q --json
python3 -c "import json,sys; j=json.load(sys.stdin); assert j['rows'] == 400, j['rows']" <"$T/out" || fail "position split test rows"
# the hashes differ from the position split's: a model of each differs
cmp -s "$T/r.model" "$T/p.model" && fail "random and position splits gave the same model"
# a cache holds the position split: random with data.cache is refused
expect_exit 1 "$RF" train -c "$T/s.yaml" --set data.split=random --set data.cache="$T/c.rfc" -o "$T/x.model"
expect_err "data.split: random is not available with data.cache"
exit 0
