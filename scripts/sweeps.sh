#!/bin/sh
# Reproduces docs/results-sweeps.md (the paper's Fig. 3 on the simulator): embedding dimension,
# learning rate, CTR and CTCVR positive weights, ResFlow and NSE, 3 seeds each, 1M simulated rows
# (every other setting at its default).
# Writes the runs and tables under $OUT (default results/sweeps) and copies the plots and CSVs
# to docs/img/sweeps/; prints the tables. Repeating it reuses every finished run.
#   scripts/install-deps.sh && make && scripts/sweeps.sh
# Env: OUT (output directory), RF (the resflow binary), THREADS (per run; default 1, as for
# the documented numbers: results depend slightly on the thread count), SEEDS
# (default 3; a smaller run first, then the full one, trains each run once), ROWS (simulated
# impressions, default 300000).
set -eu
cd "$(dirname "$0")/.."
RF=${RF:-./build/resflow}
OUT=${OUT:-results/sweeps}
THREADS=${THREADS:-1}
SEEDS=${SEEDS:-3}
ROWS=${ROWS:-1000000}
[ -x "$RF" ] || make -j2
COMMON="--models resflow,nse --seeds $SEEDS --set synth.rows=$ROWS --threads $THREADS -q"
mkdir -p docs/img/sweeps
run() { # NAME KEY VALUES
    "$RF" sweep $COMMON --key "$2" --values "$3" --log-x -o "$OUT/$1"
    cp "$OUT/$1/sweep.svg" "docs/img/sweeps/$1.svg"
    cp "$OUT/$1/sweep.csv" "docs/img/sweeps/$1.csv"
    echo
}
run emb_dim model.emb_dim 4,8,16,32,64
run lr train.lr 1e-4,3e-4,1e-3,3e-3,1e-2
run pos_weight_ctr tasks.ctr.pos_weight 1,20,50,100,200,1000
run pos_weight_ctcvr tasks.ctcvr.pos_weight 1,10,50,100,500
