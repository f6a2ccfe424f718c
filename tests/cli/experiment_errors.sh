# resflow experiment: bad experiment files and options fail before anything trains, with the
# place of the problem and the documented exit code.
. tests/cli/_common.sh
printf 'seeds: 2\nmodels: [nse]\ndatasetz: [a]\n' > "$T/e1.yaml"
expect_exit 1 "$RF" experiment -c "$T/e1.yaml" -o "$T/res"
expect_err "e1.yaml:3:1: unknown key \"datasetz\""
printf 'models: [nse, mmoe]\ndatasets: [a]\nbackbone:\n  hidden: [16, x]\n' > "$T/e2.yaml"
expect_exit 1 "$RF" experiment -c "$T/e2.yaml" -o "$T/res"
expect_err "e2.yaml:4:11: backbone: "
expect_err "model.hidden"
printf 'models:\n  - {type: mmoe, set: {synth.rows: 10}}\n' > "$T/e3.yaml"
expect_exit 1 "$RF" experiment -c "$T/e3.yaml" -o "$T/res"
expect_err "e3.yaml:2:24: synth.rows: data.\*, synth.\* and tasks belong to a dataset"
printf 'datasets: [{name: d, config: %s/missing.yaml}]\n' "$T" > "$T/e4.yaml"
expect_exit 3 "$RF" experiment -c "$T/e4.yaml" -o "$T/res"
expect_err "missing.yaml"
expect_exit 1 "$RF" experiment --models nse,resflw -o "$T/res"
expect_err "unknown model type \"resflw\""
expect_exit 1 "$RF" experiment --datasets a --set model.hiden=[8] -o "$T/res"
expect_err "model.hiden"
expect_exit 1 "$RF" experiment --set model.type=ple -o "$T/res"
expect_err "models: list"
expect_exit 1 "$RF" experiment --seeds 0 -o "$T/res"
expect_exit 1 "$RF" experiment --frobnicate
expect_exit 1 "$RF" experiment -c "$T/e1.yaml" --datasets nosuch -o "$T/res"
[ -e "$T/res" ] && fail "a failed experiment created its output directory"
# an output directory that cannot be created: an I/O error
: > "$T/file"
expect_exit 3 "$RF" experiment --datasets a --models nse --seeds 1 -o "$T/file/res" $SMALL
expect_err "cannot create directory"
expect_exit 0 "$RF" experiment --help
expect_out "usage: resflow experiment"
exit 0
