#!/bin/sh
# bench/rank_table.sh - the ranking results table of docs/results-ranking.md: trains NSE, ESMM
# and ResFlow on the simulator, runs `resflow fusion` on each (search on the validation split,
# report on the test split) and prints a markdown table of metrics x fusion formulas x models,
# with the oracle (the simulator's true probabilities).
# Env: ROWS (5000000), K (5,10: the first is the search objective's), OBJ (wr), THREADS (2),
#      WEIGHT_BY (query_id,item_id), OUT (a directory to keep models and JSON; default temporary).
set -eu
BUILD=${BUILD:-build}
RF="$BUILD/resflow"
ROWS=${ROWS:-5000000}
K=${K:-5,10}
OBJ=${OBJ:-wr}
THREADS=${THREADS:-2}
WEIGHT_BY=${WEIGHT_BY:-query_id,item_id}
if [ -n "${OUT:-}" ]; then D=$OUT; mkdir -p "$D"; else D=$(mktemp -d /tmp/resflow-rank.XXXXXX); trap 'rm -rf "$D"' EXIT; fi
for m in nse esmm resflow; do
    if [ ! -s "$D/$m.model" ]; then
        echo "== train $m ($ROWS rows)" >&2
        "$RF" train --set synth.rows="$ROWS" --set model.type=$m --threads "$THREADS" -q -o "$D/$m.model" >&2
    fi
    echo "== fusion $m" >&2
    "$RF" fusion -m "$D/$m.model" --no-save --weight-by "$WEIGHT_BY" --k "$K" --objective "$OBJ" \
        --threads "$THREADS" -q --json="$D/$m.json" >&2
done
/usr/bin/python3 - "$D" "$ROWS" "$K" "$OBJ" "$WEIGHT_BY" <<'PY'
import json, sys
d, rows, ks, obj, wb = sys.argv[1:]
k = ks.split(',')[0]
models = [('NSE', 'nse'), ('ESMM', 'esmm'), ('ResFlow', 'resflow')]
J = {name: json.load(open(f'{d}/{f}.json')) for name, f in models}
first = J['ESMM']
base = [c for c in first['candidates'] if not c['oracle'] and c['name'].endswith('(baseline)')][0]
esmm_ctcvr = base['test'][f'{obj}@{k}']
print(f"Simulator: {rows} impressions (split by position: data.valid_frac, data.test_frac), lists of 20; "
      f"search set: validation split ({first['search_rows']} rows), reported on the test split "
      f"({first['test_rows']} rows). Relevance label: {first['label']}. W = {first['weight']}.")
g = first['test_groups']
print(f"\nTest lists: {g['total']}; WR@K uses {g['wr_used']} (W > 0), Recall/NDCG {g['positive_used']} "
      f"(a positive), List AUC/GAUC {g['auc_used']} (both classes).\n")
cols = [f'{obj}@{k}', f'wr_log@{k}', f'wr_sqrt@{k}', f'wr_square@{k}', f'recall@{k}', f'ndcg@{k}', 'list_auc', 'gauc']
head = ['model', 'formula (searched on valid)', f'valid {obj.upper()}@{k}', f'test {obj.upper()}@{k}',
        'vs ESMM ctcvr', f'WRlog@{k}', f'WRsqrt@{k}', f'WRsq@{k}', f'Recall@{k}', f'NDCG@{k}', 'List AUC', 'GAUC']
print('| ' + ' | '.join(head) + ' |')
print('|' + '|'.join(['---'] * 2 + ['---:'] * (len(head) - 2)) + '|')
def name_of(c):
    n = c['name'].replace('oracle ', '')
    return n.replace('*', '·').replace(' (baseline)', ' (= ctr¹·cvr¹)').replace('|', '\\|')  # Markdown cell
def row(model, c):
    t, v = c['test'], c['valid']
    up = (t[f'{obj}@{k}'] - esmm_ctcvr) / esmm_ctcvr * 100 if esmm_ctcvr else float('nan')
    cells = [model, name_of(c), f"{v[f'{obj}@{k}']:.4f}", f"{t[f'{obj}@{k}']:.4f}", f"{up:+.1f}%"]
    cells += [f"{t[x]:.4f}" if t[x] is not None else '-' for x in cols[1:]]
    print('| ' + ' | '.join(cells) + ' |')
for name, _ in models:
    for c in J[name]['candidates']:
        if not c['oracle']:
            row(name, c)
for c in first['candidates']:
    if c['oracle']:
        row('oracle', c)
print()
for name, _ in models:
    print(f"* {name}: chosen `{J[name]['chosen']}`")
PY
