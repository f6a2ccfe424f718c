# issue #17, findings 6 and 8: bounded configuration input (size, nesting, indentation), caps on
# numeric keys, unknown YAML tags, -c DIR, duplicate header names, control characters in
# messages, config -m --set; each a clear error at once, in bounded memory.
. tests/cli/_common.sh
# expect_fast SECONDS CODE NEEDLE CMD...: exit CODE within SECONDS, stderr containing NEEDLE
expect_fast() {
    s=$1; code=$2; needle=$3; shift 3
    expect_exit "$code" timeout "$s" "$@"
    expect_err "$needle"
}
awk 'BEGIN { printf "model: {hidden: "; for (i = 0; i < 30000; i++) printf "["; for (i = 0; i < 30000; i++) printf "]"; print "}" }' > "$T/brackets.yaml"
expect_fast 10 1 "nested too deeply" "$RF" config -c "$T/brackets.yaml"
awk 'BEGIN { print "model:"; for (i = 1; i < 400; i++) { for (j = 0; j < i; j++) printf " "; print "k" i ":" } }' > "$T/block.yaml"
expect_fast 10 1 "nested too deeply" "$RF" config -c "$T/block.yaml"
[ -r /dev/zero ] && expect_fast 10 1 "too large" "$RF" config -c /dev/zero
head -c 1100000 /dev/zero | tr '\0' '#' > "$T/big.yaml"
expect_fast 10 1 "too large" "$RF" train -c "$T/big.yaml" -o "$T/m.rf"
expect_fast 10 3 "is a directory" "$RF" config -c "$T"
printf 'train:\n  lr: !foo 0.1\n' > "$T/tag.yaml"
expect_fast 10 1 "unsupported YAML tag !foo" "$RF" config -c "$T/tag.yaml"
# numeric keys: absurd values refused by the config check, naming the key
expect_fast 10 1 "train.threads: 100000 is out of range" "$RF" config --set train.threads=100000
expect_fast 10 1 "model.hidden: 2000000 is out of range" "$RF" config --set model.hidden=[2000000]
expect_fast 10 1 "model.emb_dim" "$RF" config --set model.emb_dim=100000
expect_fast 10 1 "train.batch_size" "$RF" config --set train.batch_size=100000000
expect_fast 10 1 "synth.rows" "$RF" config --set synth.rows=10000000000000
expect_fast 10 1 "train.epochs" "$RF" config --set train.epochs=-1
# model.experts: 256 passed the check and failed at model creation naming model.type
expect_fast 10 1 "model.experts: 256 is out of range" "$RF" config --set model.type=mmoe --set model.experts=256
expect_fast 10 1 "experts per level" "$RF" config --set model.type=ple --set model.shared_experts=40 \
    --set model.specific_experts=20
# finding 8: a header naming a used column twice (was accepted, the first taken silently)
printf 'a,b,a,click\n1,2,3,1\n4,5,6,0\n' > "$T/dup.csv"
expect_exit 2 "$RF" train --set data.source="$T/dup.csv" --set data.categorical=[a] -q -o "$T/m.rf"
expect_err "ambiguous: the header has it twice (columns 1 and 3)"
# control characters of the input are not echoed raw (an escape sequence would reach the terminal)
esc=$(printf '\033')
expect_exit 3 "$RF" train --set "data.source=$T/${esc}[31mred.csv" -q -o "$T/m.rf"
grep -q "$esc" "$T/err" && fail "a control character was echoed raw"
expect_err 'x1b\[31mred.csv'
# config -m with --set: refused (the --set was silently ignored)
expect_exit 0 "$RF" train --set synth.rows=2000 --set train.epochs=1 --set model.hidden=[4] -q -o "$T/s.rf"
expect_exit 1 "$RF" config -m "$T/s.rf" --set train.lr=5
expect_err "cannot be combined"
# what still loads: the shipped configurations
for f in configs/*.yaml; do expect_exit 0 "$RF" config -c "$f"; done
exit 0
