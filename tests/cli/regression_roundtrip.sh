# regression as progressive multi-task (docs/regression.md): train -> eval on the saved model
# gives the same MSE; predict writes E(v); the traditional head; config errors with file:line:col
. tests/cli/_common.sh
REG="--set synth.preset=rating --set synth.rows=20000 --set synth.users=2000 --set synth.items=1000
     --set train.epochs=1 --set model.hidden=[16] --set train.batch_size=512 --set train.monitor=mse
     --set regression.target=rating -q"
expect_exit 0 "$RF" train $REG --set 'regression.thresholds=[1, 2, 3, 4, 5]' -o "$T/p.model" --json="$T/train.json"
expect_out "regression: expected value E(v) of rating, MSE"
expect_exit 0 "$RF" eval -m "$T/p.model" --json -q
python3 - "$T/train.json" "$T/out" <<'PY' || fail "eval of the saved model differs from the MSE at the end of training"
import json, sys
a, b = (json.load(open(p))['regression'] for p in sys.argv[1:3])
assert a['thresholds'] == [1, 2, 3, 4, 5] and a['head'] == 'progressive', a
assert 0.5 < a['mse'] < 2 and abs(a['mse'] - b['mse']) < 1e-12 and a['n'] == b['n'] == 10000, (a, b)  # the 50 % test split
PY
# predict: the column 'expected' is E(v) of the task columns; its MSE against the labels
expect_exit 0 "$RF" predict -m "$T/p.model" --with-labels -o "$T/p.tsv" -q
python3 - "$T/p.tsv" "$T/train.json" <<'PY' || fail "predict: expected column"
import csv, json, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter='\t'))
c = list(rows[0])
assert c[c.index('ge2'):c.index('ge2') + 5] == ['ge2', 'ge3', 'ge4', 'ge5', 'expected'], c
v = [1, 2, 3, 4, 5]
se = 0
for r in rows:
    q = [1] + [float(r[t]) for t in ('ge2', 'ge3', 'ge4', 'ge5')]
    e = sum(v[k] * max(q[k] - q[k + 1], 0) for k in range(4)) + v[4] * q[4]
    assert abs(e - float(r['expected'])) < 1e-5, (e, r)
    se += (float(r['expected']) - float(r['rating'])) ** 2
mse = json.load(open(sys.argv[2]))['regression']['mse']
assert abs(se / len(rows) - mse) < 1e-5, (se / len(rows), mse)
PY
# quantile thresholds are fitted on the training rows and stored with the model
expect_exit 0 "$RF" train $REG --set regression.quantiles=2 -o "$T/q.model"
expect_exit 0 "$RF" config -m "$T/q.model"
expect_out "thresholds: \[1, "
# the traditional head: one squared-error task, the same MSE after a reload
expect_exit 0 "$RF" train $REG --set 'regression.thresholds=[1, 5]' --set regression.head=traditional \
    --set model.type=nse -o "$T/t.model" --json="$T/t.json"
expect_out "regression: traditional head of rating"
expect_exit 0 "$RF" eval -m "$T/t.model" --json -q
python3 -c "import json; a=json.load(open('$T/t.json'))['regression']; b=json.load(open('$T/out'))['regression']; assert abs(a['mse']-b['mse'])<1e-12 and a['head']=='traditional', (a,b)" \
    || fail "traditional head: eval differs"
# errors: thresholds not ascending (file:line:col), no target, a head the model cannot have
printf 'regression:\n  target: rating\n  thresholds: [1, 3, 2]\n' > "$T/bad.yaml"
expect_exit 1 "$RF" train -c "$T/bad.yaml" -q
expect_err "bad.yaml:3:15: regression.thresholds: values must be strictly ascending (2 after 3)"
printf 'regression:\n  thresholds: [1, 5]\n' > "$T/bad2.yaml"
expect_exit 1 "$RF" train -c "$T/bad2.yaml" -q
expect_err "bad2.yaml:2:3: regression: regression.target is not set"
expect_exit 1 "$RF" train $REG --set 'regression.thresholds=[1, 5]' --set regression.head=traditional --set model.type=esmm
expect_err "loss: mse is implemented for model.type resflow and nse"
# a target the data do not have
expect_exit 1 "$RF" train $REG --set regression.target=stars --set 'regression.thresholds=[1, 5]'
expect_err "stars"
exit 0
# compare shows the test MSE and MAE next to the AUCs; its JSON carries the same MSE
expect_exit 0 "$RF" compare $REG --set 'regression.thresholds=[1, 2, 3, 4, 5]' --models nse,resflow --json="$T/cmp.json"
expect_out " MSE      MAE"
python3 - "$T/out" "$T/cmp.json" <<'PY' || fail "compare: MSE column"
import json, sys
out = open(sys.argv[1]).read().splitlines()
models = json.load(open(sys.argv[2]))['models']
for m in models:
    line = next(l for l in out if l.startswith(m['model'] + ' '))
    assert '%.4f' % m['regression']['mse'] in line.split(), (line, m['regression'])
PY
