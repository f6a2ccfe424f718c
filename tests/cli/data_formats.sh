# every shipped data config trains end to end (the real-data ones skip without ../shared/data),
# the KuaiRand and MovieLens-1M layouts on logs written in their formats, the simulator presets,
# and resflow prepare: build, up to date, stale, damaged, training from the cache
. tests/cli/_common.sh
FAST="--set train.epochs=1 --set train.max_steps=30 -q"
D=../shared/data
if [ -d "$D" ]; then
    for c in aliexpress aliccp census movielens100k kuairand_sample; do
        expect_exit 0 "$RF" train -c configs/$c.yaml $FAST -o "$T/$c.model"
        expect_out "test set"
        expect_exit 0 "$RF" eval -m "$T/$c.model" -q
    done
    # eval --data reads a file in the model's own format (headerless ", "-separated .gz)
    expect_exit 0 "$RF" eval -m "$T/census.model" --data $D/census-income-kdd/census-income.test.gz --json -q
    python3 -c "import json; d=json.load(open('$T/out')); assert d['rows']==99762 and d['tasks']['income']['positives']==6186 \
        and d['tasks']['never_married']['positives']==43143, d" || fail "census counts"
    # MovieLens-1M layout: ratings written as ratings.dat ("::"), joined with users.dat/movies.dat
    awk -F'\t' '{print $1"::"$2"::"$3"::"$4}' $D/movielens-100k/u.data > "$T/ratings.dat"
    expect_exit 0 "$RF" train -c configs/movielens1m.yaml --set data.source="$T/ratings.dat" $FAST -o "$T/ml1m.model"
    # KuaiRand-Pure: a simulated log in the KuaiRand columns, joined with the real feature tables
    expect_exit 0 "$RF" synth -c configs/synth_kuairand.yaml --set synth.rows=20000 -o "$T/klog.csv" -q
    expect_exit 0 "$RF" train -c configs/kuairand.yaml --set data.source="$T/klog.csv" $FAST -o "$T/kr.model"
    expect_out "follow|like"
else
    echo "  [skip] $D not found: real-data configs not exercised" >&2
fi
# the generic CSV config on the simulator's CSV (with true probabilities in p_* columns)
expect_exit 0 "$RF" synth --set synth.rows=20000 --set synth.order_counts=true -o "$T/log.csv" -q
# (the default preset ecom: labels, order counts, the counterfactual label, then their truth)
head -1 "$T/log.csv" | grep -q "click,order,order_count,cf_order,group,p_click,p_order,p_order_count,p_cf_order" ||
    fail "synth header: $(head -1 "$T/log.csv")"
expect_exit 0 "$RF" synth --set synth.preset=search --set synth.rows=2000 --set synth.order_counts=true -o "$T/slog.csv" -q
head -1 "$T/slog.csv" | grep -q "order_count,group,p_click,p_order,p_order_count" || fail "search header: $(head -1 "$T/slog.csv")"
expect_exit 0 "$RF" train -c configs/csv.yaml --set data.source="$T/log.csv" $FAST -o "$T/csv.model"
# simulator presets
for c in synth_3task synth_kuairand synth_rating; do
    expect_exit 0 "$RF" train -c configs/$c.yaml --set synth.rows=20000 $FAST -o "$T/$c.model"
done
expect_out "r5|r4"
# prepare: build, up to date, train from it, stale, damaged
P="-c configs/csv.yaml --set data.source=$T/log.csv"
expect_exit 1 "$RF" prepare $P -q
expect_err "no cache file"
expect_exit 3 "$RF" prepare $P -o "$T/log.rfc" --check
expect_exit 0 "$RF" prepare $P -o "$T/log.rfc"
expect_out "rows/s"
expect_out "MB/s"
expect_exit 0 "$RF" prepare $P -o "$T/log.rfc"
expect_err "up to date"
expect_exit 0 "$RF" prepare $P -o "$T/log.rfc" --check
expect_exit 6 "$RF" prepare $P --set data.min_count=3 -o "$T/log.rfc" --check
expect_err "stale: the data configuration changed"
expect_exit 0 "$RF" train $P --set data.cache="$T/log.rfc" --set train.epochs=1 --set train.max_steps=30 -o "$T/c.model"
expect_err "data: cache"
expect_err "resident data about"
printf 'x' | dd of="$T/log.rfc" bs=1 seek=5000 conv=notrunc 2>/dev/null
expect_exit 6 "$RF" prepare $P -o "$T/log.rfc" --check
expect_err "the cache is corrupted"
expect_exit 0 "$RF" train $P --set data.cache="$T/log.rfc" --set train.epochs=1 --set train.max_steps=10 -o "$T/c2.model"
expect_err "building it"
expect_exit 0 "$RF" prepare --help
expect_out "--check"
exit 0
