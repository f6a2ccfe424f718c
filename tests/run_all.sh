#!/bin/sh
# Runs every test program given as argument plus tests/cli/*.sh; each cmocka program prints
# its own results. Prints the total as "N passed, N failed" and exits non-zero on failure.
passed=0; failed=0; failed_names=""
for t in "$@"; do
    out=$("$t" 2>&1); rc=$?
    printf '%s\n' "$out"
    p=$(printf '%s\n' "$out" | sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' | tail -1)
    f=$(printf '%s\n' "$out" | sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' | tail -1)
    passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0}))
    if [ $rc -ne 0 ] && [ -z "$f" ]; then failed=$((failed + 1)); fi
    [ $rc -ne 0 ] && failed_names="$failed_names $(basename "$t")"
done
for s in tests/cli/[!_]*.sh; do
    [ -f "$s" ] || continue
    if BUILD=${BUILD:-build} sh "$s"; then passed=$((passed + 1)); echo "[ cli ok ] $s"
    else failed=$((failed + 1)); failed_names="$failed_names $s"; echo "[ cli FAIL ] $s"; fi
done
[ -n "$failed_names" ] && echo "failing:$failed_names"
echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
