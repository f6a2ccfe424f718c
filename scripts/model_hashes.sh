#!/bin/sh
# model_hashes.sh - train every shipped config (and every model type on the simulator) briefly
# and print one "sha256  name" line per model file, with the predictions' hash beside it.
# Used to check that a refactoring keeps behaviour: run it with the old and the new build and
# diff the two outputs.  Usage: [THREADS=n] scripts/model_hashes.sh [BUILD_DIR] > hashes.txt
# (THREADS: the training runs' thread count, 2 by default; the bits depend on it, docs/design.md).
# Configs whose data is missing (../shared/data absent) are reported as "skipped".
set -u
B="${1:-build}/resflow"
T=$(mktemp -d /tmp/rf-hashes.XXXXXX)
trap 'rm -rf "$T"' EXIT
Q="-q --threads ${THREADS:-2}"
one() { # name, then train args
    name=$1; shift
    if "$B" train $Q "$@" -o "$T/$name.model" >/dev/null 2>"$T/$name.err"; then
        m=$(sha256sum <"$T/$name.model" | cut -c1-16)
        if "$B" predict -m "$T/$name.model" -q \
                -o "$T/$name.pred" >/dev/null 2>&1; then
            p=$(sha256sum <"$T/$name.pred" | cut -c1-16)
        else p=no-predict; fi
        echo "$m $p  $name"
    else
        if grep -q "No such file\|not found\|cannot open" "$T/$name.err"; then echo "skipped  $name"
        else echo "FAILED($?)  $name: $(head -c 200 "$T/$name.err")"; fi
    fi
}
SMALL="--set synth.rows=20000 --set train.epochs=1 --set model.hidden=[32,16] --set train.batch_size=512"
for c in configs/*.yaml; do
    n=$(basename "$c" .yaml)
    case "$n" in
    default|synth_*) one "$n" -c "$c" $SMALL ;;
    *) one "$n" -c "$c" --set train.epochs=1 --set train.max_steps=40 ;;
    esac
done
for t in resflow nse esmm single shared_bottom moe mmoe ple aitm escm2_ipw escm2_dr dcmt stem; do
    one "zoo_$t" $SMALL --set model.type=$t
    one "zoo3_$t" -c configs/synth_3task.yaml $SMALL --set model.type=$t
done
one "bn_prelu" $SMALL --set model.bn=batch --set model.act=prelu
one "mono_m1" $SMALL --set model.monotonic=m1
one "project" $SMALL --set model.dense_mode=project
