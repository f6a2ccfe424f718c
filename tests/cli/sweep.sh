# resflow sweep: a tiny sweep trains, writes sweep.{csv,svg,md} and the experiment tables, and
# repeated trains nothing (an added value trains only its runs); a data-level key (a task's
# positive weight) gives one dataset per value; a plain config file works as -c; bad keys,
# values, metrics and conflicting --set fail with a message and exit code 1, writing nothing.
. tests/cli/_common.sh
TINY="--set synth.rows=3000 --set synth.users=300 --set synth.items=600 --set synth.queries=100
      --set synth.ctr=0.2 --set synth.cvr=0.2 --set train.epochs=1 --set train.batch_size=256
      --set model.hidden=[16]"
S="$RF sweep $TINY --models nse --seeds 2 --threads 2"
E="$T/emb"
expect_exit 0 $S --key model.emb_dim --values 4,8 --log-x -o $E
expect_err "4 runs; 0 finished, 4 to run"
for f in sweep.csv sweep.svg sweep.md results.md results.csv results.json; do
    [ -s "$E/$f" ] || fail "$f missing"
done
[ -f "$E/runs/synth/nse+model.emb_dim_8/seed-2.json" ] || fail "run results not under runs/"
grep -q "emb_dim: 8" "$E/runs/synth/nse+model.emb_dim_8/seed-1.yaml" || fail "the run config lacks the value"
# CSV: a header and one row per model and value, with both seeds' values
[ "$(wc -l < "$E/sweep.csv")" = 3 ] || fail "sweep.csv has $(wc -l < "$E/sweep.csv") lines"
head -1 "$E/sweep.csv" | grep -q "^key,dataset,model,value,x,metric,task,mean,std,n,runs,diverged,values$" ||
    fail "sweep.csv header"
grep -q "^model.emb_dim,synth,nse,4,4,auc,ctcvr,0\.[0-9]*,[0-9.e-]*,2,2,0,0\.[0-9]*;0\.[0-9]*$" "$E/sweep.csv" ||
    { cat "$E/sweep.csv" >&2; fail "sweep.csv row"; }
# the table on stdout; the plot: 2 points, 2 error bars, ticks at the values
expect_out "| model.emb_dim | nse |"
expect_out "^| 8 | .*0\.[0-9]* ± 0\.[0-9]*"
[ "$(grep -o 'class="pt"' "$E/sweep.svg" | wc -l)" = 2 ] || fail "sweep.svg: not 2 points"
[ "$(grep -o 'class="err"' "$E/sweep.svg" | wc -l)" = 2 ] || fail "sweep.svg: not 2 error bars"
grep -q '>8</text>' "$E/sweep.svg" || fail "sweep.svg: no tick at 8"
if command -v xmllint >/dev/null 2>&1; then
    xmllint --noout "$E/sweep.svg" || fail "sweep.svg is not well-formed XML"
fi
# again: nothing is trained and the outputs are the same
cp "$E/sweep.csv" "$T/csv.a"
cp "$E/sweep.svg" "$T/svg.a"
expect_exit 0 $S --key model.emb_dim --values 4,8 --log-x -o $E
expect_err "4 runs; 4 finished, 0 to run"
expect_err "(0 runs trained now, 4 reused)"
grep -q "^== \[" "$T/err" && fail "a run was trained again"
cmp -s "$E/sweep.csv" "$T/csv.a" || fail "sweep.csv changed"
cmp -s "$E/sweep.svg" "$T/svg.a" || fail "sweep.svg changed"
# one more value: only its runs
expect_exit 0 $S --key model.emb_dim --values 4,8,16 -o $E
expect_err "6 runs; 4 finished, 2 to run"
[ "$(wc -l < "$E/sweep.csv")" = 4 ] || fail "sweep.csv lacks the new value"
# --dry-run trains nothing
expect_exit 0 $S --key model.emb_dim --values 2 -o $E --dry-run
expect_out "nse+model.emb_dim_2 .* to run"
[ -e "$E/runs/synth/nse+model.emb_dim_2" ] && fail "--dry-run trained"
# a task's positive weight belongs to the data: one dataset per value
P="$T/pw"
expect_exit 0 $S --seeds 1 --key tasks.ctcvr.pos_weight --values 1,50 -o $P
grep -q "pos_weight: 50" "$P/runs/synth+tasks.ctcvr.pos_weight_50/nse/seed-1.yaml" ||
    fail "the positive weight is not in the run config"
grep -q "^tasks.ctcvr.pos_weight,synth,nse,50,50,auc,ctcvr," "$P/sweep.csv" || fail "pos_weight row"
# a plain config file as -c: the sweep's one dataset, named after the file
cat > "$T/small.yaml" <<'YAML'
synth: {rows: 3000, users: 300, items: 600, queries: 100, ctr: 0.2, cvr: 0.2}
train: {epochs: 1, batch_size: 256}
model: {hidden: [16]}
YAML
expect_exit 0 $RF sweep -c "$T/small.yaml" --models nse --seeds 1 --key train.lr --values 1e-3,1e-2 \
    --metric cond_auc:ctcvr -o "$T/cfg" -q
[ -f "$T/cfg/runs/small/nse+train.lr_1e-2/seed-1.json" ] || fail "config-file dataset"
grep -q ",cond_auc,ctcvr," "$T/cfg/sweep.csv" || fail "cond_auc metric"
# errors: exit 1, a message, nothing written
B="$T/bad"
expect_exit 1 $S --key model.emb_dimm --values 4,8 -o $B
expect_err 'unknown key "model.emb_dimm"'
expect_exit 1 $S --key model.emb_dim --values 4,abc -o $B
expect_err "model.emb_dim=abc"
expect_exit 1 $S --key model.emb_dim --values 4,,8 -o $B
expect_err "empty value"
expect_exit 1 $S --key model.emb_dim --values 4,4 -o $B
expect_err "listed twice"
expect_exit 1 $S --key model.type --values nse,esmm -o $B
expect_err "cannot be swept"
expect_exit 1 $S --key train.lr --values 0,1e-3 --log-x -o $B
expect_err "log x axis needs values > 0"
expect_exit 1 $S --key model.act --values relu,prelu --log-x -o $B
expect_err "log x axis needs numeric values"
expect_exit 1 $S --key model.emb_dim --values 4,8 --set model.emb_dim=16 -o $B
expect_err "also set by a later layer"
expect_exit 1 $S --key model.emb_dim --values 4,8 --metric auc:nope -o $B
expect_err 'no task "nope"'
expect_exit 1 $S --key model.emb_dim --values 4,8 --metric cond_auc:ctr -o $B
expect_err "has no parent"
expect_exit 1 $S --key model.emb_dim --values 4,8 --metric recall -o $B
expect_err "expected auc:TASK"
expect_exit 1 $S --values 4,8 -o $B
expect_err "\-\-key is required"
expect_exit 1 $S --key model.emb_dim -o $B
expect_err "\-\-values is required"
[ -e "$B" ] && fail "a failed sweep wrote output"
exit 0
