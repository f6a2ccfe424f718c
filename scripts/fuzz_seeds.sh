#!/bin/sh
# Regenerate the fuzzers' seed corpora in fuzz/corpus/<target>/ (small, made here with the
# resflow tool and printf: no copies of external data). Usage: scripts/fuzz_seeds.sh [BUILD]
set -eu
B=${1:-build}
RF="$B/resflow"
C=fuzz/corpus
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
# regress-* files are inputs that once failed (kept as regression seeds): never removed here
[ -d "$C" ] && find "$C" -type f ! -name 'regress-*' -delete
mkdir -p "$C/fuzz_csv" "$C/fuzz_config" "$C/fuzz_model" "$C/fuzz_cache" "$C/fuzz_request"
# CSV: the first byte picks the options (fuzz/fuzz_csv.c), the rest is the file
printf '\001u1,i1,0.5,1,0\nu2,i2,1.5,0,0\nu1,i3,,1,1\nu3,i1,2e3,0,0\nu2,i1,-1,1,0\n' > "$C/fuzz_csv/plain"
printf '\005u1\ti1\t0.5\t1\t0\nu2\ti2\t1.5\t0\t0\nu1\ti3\tNA\t1\t1\n' > "$C/fuzz_csv/tsv"
printf '\011"a|b",i1,1,1,0\n"c",i2,2,0,0\n"a|c|d",i3,3,1,1\n"",i1,4,0,0\n' > "$C/fuzz_csv/multi"
printf '\003u1,i1,x,1,0\nu2,"i""2",1,0\nu3,i3,1,1,1,9\nu4,i4,1e999,0,0\n' > "$C/fuzz_csv/bad_rows"
printf '\000a,b,x,click,buy\r\nu1,i1,1,1,0\r\n"u\n2",i2,2,0,0\r\n' > "$C/fuzz_csv/crlf"
# bits 4-5 of the first byte: the harness gzips the text (1), as two members (2), zstd (3)
P='u1,i1,0.5,1,0\nu2,i2,1.5,0,0\nu1,i3,,1,1\n'
printf "\\021$P" > "$C/fuzz_csv/gzip"
printf "\\041$P" > "$C/fuzz_csv/gzip2"
printf "\\061$P" > "$C/fuzz_csv/zstd"
# longer than one 4 KiB read round
awk 'BEGIN { printf "\001"; for (i = 0; i < 400; i++) printf "u%d,i%d,%d.5,%d,%d\n", i % 7, i % 13, i, i % 2, i % 5 == 0 }' \
    > "$C/fuzz_csv/rounds"
# YAML configurations
"$RF" config > "$C/fuzz_config/default.yaml"
printf 'model: {type: mmoe, experts: 4, hidden: [8, 4]}\ntasks:\n  - {name: ctr, label: click}\n  - {name: cvr, label: buy, parent: ctr}\n' > "$C/fuzz_config/flow.yaml"
printf 'data:\n  source: d.csv\n  categorical: ["tags:|:mean", "user:min:5", "price:bucket:8"]\n  dense: [x]\n  filter: ["x > 3"]\n  join: [{file: u.csv, on: user}]\nregression: {target: v, quantiles: 3}\n' > "$C/fuzz_config/data.yaml"
printf 'train:\n  lr: !!float 1e-3\n  epochs: &e 3\n  patience: *e\n---\n' > "$C/fuzz_config/anchors.yaml"
# a small model file and a small dataset cache (tiny-v1.cache, a version-1 cache kept from before
# version 2, is not regenerated)
S="--set synth.rows=400 --set synth.users=30 --set synth.items=40 --set synth.queries=10 -q"
M="--set model.emb_dim=2 --set model.hidden=[2] --set train.epochs=1 --set train.batch_size=64"
"$RF" train $S $M -o "$C/fuzz_model/tiny.rf" >/dev/null
"$RF" train $S $M --set model.type=mmoe --set model.experts=2 --set model.expert_hidden=[2] \
    --set model.bn=batch -o "$C/fuzz_model/mmoe.rf" >/dev/null
"$RF" synth $S --set synth.rows=60 -o "$T/d.csv"
"$RF" prepare -q --set data.source="$T/d.csv" --set data.categorical=[user_id,item_id,brand] --set data.dense=[log_price] --set data.valid_frac=0.2 --set data.test_frac=0.2 \
    -o "$C/fuzz_cache/tiny.cache"
# serving requests
printf '{"context": {"user": "u1", "query": 3}, "candidates": [{"item": "i1", "price": 1.5}, {"item": null}], "top": 1}' \
    > "$C/fuzz_request/ok.json"
printf '{"candidates": [{"item": "\\u00e9\\n", "price": -1e308}, {}], "top": 0}' > "$C/fuzz_request/escapes.json"
printf '{"context": [], "candidates": {}}' > "$C/fuzz_request/bad.json"
du -sh "$C"
