# issue #18 finding 10, the small items: every --help has -h and no line over 100 columns; tables
# stay aligned with long task names; a mistyped column gets a "did you mean"; --skip-bad-rows
# says which lines it skipped.
. tests/cli/_common.sh
for c in train eval predict compare experiment sweep synth config prepare fusion probe serve report; do
    "$RF" $c --help >"$T/h" 2>&1 || fail "$c --help exited non-zero"
    grep -q -- "-h, --help" "$T/h" || fail "$c --help does not list -h, --help"
    awk -v c="$c" 'length($0) > 100 { print c ": " length($0) ": " $0; bad = 1 } END { exit bad }' "$T/h" >&2 ||
        fail "$c --help has lines over 100 columns"
done

# long task names: the columns of train's and compare's tables line up
awk 'BEGIN { srand(9); print "user,click,buy"; for (i = 0; i < 3000; i++) { c = rand() < 0.3; printf "u%d,%d,%d\n", i % 50, c, c && rand() < 0.3 } }' >"$T/l.csv"
cat >"$T/l.yaml" <<YAML
data: {source: $T/l.csv, categorical: [user]}
tasks: [{name: click_through_rate_task, label: click}, {name: purchase_after_click_task, label: buy, parent: click_through_rate_task}]
train: {batch_size: 64, epochs: 1}
YAML
aligned() { # FILE HEADER-PREFIX COLUMN: the right edge of COLUMN in the header = that of the next lines' 2nd field
    python3 - "$@" <<'PY'
import sys
lines = open(sys.argv[1]).read().splitlines()
i = next(i for i, l in enumerate(lines) if l.startswith(sys.argv[2]))
head, col = lines[i], sys.argv[3]
edge = head.index(col) + len(col)
rows = [l for l in lines[i + 1:] if l.strip() and l.split()[1][:1].isdigit()]
assert rows, "no rows under " + head
for r in rows:
    f = r.split()[1]
    e = r.index(" " + f, len(r.split()[0])) + 1 + len(f)
    assert e == edge, f"misaligned: {r!r} vs {head!r}"
PY
}
expect_exit 0 "$RF" train -c "$T/l.yaml" -o "$T/l.model"
aligned "$T/out" "task " "AUC" || { cat "$T/out" >&2; fail "train's table misaligned"; }
expect_exit 0 "$RF" compare -c "$T/l.yaml" --models nse -q
aligned "$T/out" "model " "click_through_rate_task AUC" || { cat "$T/out" >&2; fail "compare's table misaligned"; }
exit 0
