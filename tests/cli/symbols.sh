# The shared library exports exactly the symbols in tests/symbols.txt (sorted, one a line), all
# of them rf_*, and every RF_API function of the installed headers ($BUILD/stage, see `make
# stage`) is among them. After a deliberate API change: `make symbols` rewrites the list.
# (sh tests/cli/symbols.sh --list LIB.so prints the list of LIB.so.)
set -u
exported() { nm -D --defined-only "$1" | awk 'NF == 3 { print $3 }' | LC_ALL=C sort -u; }
if [ "${1:-}" = "--list" ]; then exported "$2"; exit; fi
. tests/cli/_common.sh
SO="${BUILD:-build}/libresflow.so"
STAGE="${BUILD:-build}/stage"
[ -f "$SO" ] || fail "$SO not built"
exported "$SO" > "$T/got"
[ -s "$T/got" ] || fail "nm found no exported symbols in $SO"
grep -v '^rf_' "$T/got" > "$T/bad" && { cat "$T/bad" >&2; fail "exported symbols without the rf_ prefix"; }
if ! diff -u tests/symbols.txt "$T/got" > "$T/diff"; then
    cat "$T/diff" >&2
    fail "exported symbols differ from tests/symbols.txt ('-' listed only, '+' exported only; make symbols after a deliberate change)"
fi
[ -d "$STAGE/include/resflow" ] || fail "$STAGE/include/resflow missing (make stage)"
# the function name on each RF_API line of the installed headers
cat "$STAGE"/include/resflow/*.h | grep 'RF_API' | sed 's/(.*//' | grep -o 'rf_[A-Za-z0-9_]*$' |
    LC_ALL=C sort -u > "$T/decl"
[ -s "$T/decl" ] || fail "no RF_API declarations found in $STAGE/include/resflow"
LC_ALL=C comm -23 "$T/decl" "$T/got" > "$T/missing"
[ -s "$T/missing" ] && { cat "$T/missing" >&2; fail "RF_API functions of the installed headers not exported"; }
exit 0
