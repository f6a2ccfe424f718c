# every model type trains, saves, reloads and evaluates to exactly the metrics printed at the
# end of training (the model file holds everything the model needs, e.g. per-task embeddings)
. tests/cli/_common.sh
for t in resflow nse esmm single shared_bottom moe mmoe ple aitm escm2_ipw escm2_dr dcmt stem; do
    expect_exit 0 "$RF" train -q --set model.type=$t --set synth.rows=8000 --set train.epochs=1 \
        --set model.hidden=[16,8] --set model.expert_hidden=[16] --set model.bottom=[16] \
        --set model.emb_dim=4 --set train.batch_size=512 -o "$T/$t.model" --json="$T/$t.train.json"
    expect_exit 0 "$RF" eval -q -m "$T/$t.model" --json
    python3 -c "import json; a=json.load(open('$T/$t.train.json')); b=json.load(open('$T/out')); \
assert all(a['tasks'][k]['auc']==b['tasks'][k]['auc'] or (a['tasks'][k]['auc'] is None and b['tasks'][k]['auc'] is None) for k in ('ctr','ctcvr')), ('$t', a, b)" \
        || fail "$t: metrics after reload differ"
done
exit 0
