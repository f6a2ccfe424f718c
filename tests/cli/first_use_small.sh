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

# a mistyped column: "did you mean" the closest header name (not for a name with nothing close)
printf 'data: {source: %s, categorical: [usr]}\ntasks: [{name: ctr, label: click}]\n' "$T/l.csv" >"$T/typo.yaml"
expect_exit 2 "$RF" train -c "$T/typo.yaml" -o "$T/x.model"
expect_err "categorical column 'usr' not found in header (columns: user, click, buy); did you mean 'user'?"
printf 'data: {source: %s, categorical: [user]}\ntasks: [{name: ctr, label: Click}]\n' "$T/l.csv" >"$T/typo.yaml"
expect_exit 2 "$RF" train -c "$T/typo.yaml" -o "$T/x.model"
expect_err "did you mean 'click'?"
printf 'data: {source: %s, categorical: [zzzzzz]}\ntasks: [{name: ctr, label: click}]\n' "$T/l.csv" >"$T/typo.yaml"
expect_exit 2 "$RF" train -c "$T/typo.yaml" -o "$T/x.model"
if grep -q "did you mean" "$T/err"; then fail "a suggestion for a name with nothing close"; fi

# --skip-bad-rows names the lines it skipped (file line numbers, across the parallel parser's
# pieces: a file of several MB with bad rows near its start and end)
awk 'BEGIN { print "user,click"; for (i = 1; i <= 400000; i++) {
    if (i == 5) print "u1,x"; else if (i == 399990) print "u2,1,extra"; else printf "u%d,%d\n", i % 97, i % 3 == 0 } }' >"$T/bad.csv"
printf 'data: {source: %s, categorical: [user]}\ntasks: [{name: ctr, label: click}]\ntrain: {epochs: 1, max_steps: 5, batch_size: 256}\n' "$T/bad.csv" >"$T/bad.yaml"
expect_exit 0 "$RF" train -c "$T/bad.yaml" --skip-bad-rows --threads 2 -o "$T/x.model"
expect_err "skipped 2 bad rows of $T/bad.csv (--skip-bad-rows): line 6 column 4: invalid number 'x' in label column 'click'; line 399991 column 1: expected 2 fields, found 3"
exit 0
