# Every shipped configuration loads and validates: the data configs (resflow config), the
# experiment files and the tuning sweeps under configs/experiments/ (every run resolved, nothing
# trained: --dry-run). The tuned configs say how they were tuned, the public samples that they
# were not (issue #18 §3, docs/tuning.md), and the regression experiment runs exactly the
# settings that won on validation. Reads no data (a dry run does not load it).
. tests/cli/_common.sh
n=0
for f in configs/*.yaml; do expect_exit 0 "$RF" config -c "$f"; n=$((n + 1)); done
[ "$n" -ge 10 ] || fail "only $n configs under configs/"
for f in configs/experiments/*.yaml configs/experiments/tune/*.yaml; do
    expect_exit 0 "$RF" experiment -c "$f" --dry-run -o "$T/dry"
    expect_out " to run"
done
for c in movielens100k census synth_rating; do
    grep -q "^# Tuned on the validation split only" configs/$c.yaml || fail "$c.yaml: no tuning note"
    grep -q "configs/experiments/tune/" configs/$c.yaml || fail "$c.yaml: no tuning command"
done
for c in aliexpress aliccp kuairand_sample movielens1m; do
    grep -q "^# Not tuned" configs/$c.yaml || fail "$c.yaml: does not say it is not tuned"
done
# the regression experiment's runs on MovieLens-100K are the tuning runs that won (same
# configuration hash): progressive ResFlow = res-emb64-wd1e-4, traditional = trad-base
hash_of() { # file dataset model seed: the run's configuration hash from a dry run
    "$RF" experiment -c "$1" --dry-run -o "$T/dry" 2>/dev/null | awk -v d="$2" -v m="$3" -v s="$4" '$1 == d && $2 == m && $3 == s { print $4 }'
}
T2=configs/experiments/tune/movielens100k-2.yaml R=configs/experiments/regression.yaml
a=$(hash_of $R movielens-100k prog-resflow 1) b=$(hash_of $T2 ml100k res-emb64-wd1e-4 1)
[ -n "$a" ] && [ "$a" = "$b" ] || fail "regression.yaml's prog-resflow ($a) is not the tuned run ($b)"
a=$(hash_of $R movielens-100k traditional 2) b=$(hash_of $T2 ml100k trad-base 2)
[ -n "$a" ] && [ "$a" = "$b" ] || fail "regression.yaml's traditional ($a) is not the tuned run ($b)"
exit 0
