# The installed library as a user gets it: `make stage` installed this build into $BUILD/stage;
# examples/train_and_score.c is built there with pkg-config alone, must link the shared
# libresflow.so (not the archive) and must run (train, score, save, reload: exit 0).
. tests/cli/_common.sh
B="${BUILD:-build}"
STAGE="$(cd "$B" && pwd)/stage"
[ -f "$STAGE/lib/pkgconfig/resflow.pc" ] || fail "$STAGE not installed (make stage)"
for f in lib/libresflow.a lib/libresflow.so lib/libresflow.so.0 include/resflow/resflow.h bin/resflow; do
    [ -e "$STAGE/$f" ] || fail "make install did not install $f"
done
export PKG_CONFIG_PATH="$STAGE/lib/pkgconfig"
v=$(pkg-config --modversion resflow) || fail "pkg-config does not find resflow.pc"
expect_exit 0 "$STAGE/bin/resflow" --version
expect_out "$v"
# a sanitizer build's library needs its runtime in the program too
SAN=""
readelf -d "$STAGE/lib/libresflow.so" | grep -q 'libasan' && SAN="-fsanitize=address,undefined"
env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s -C examples O="$T" CFLAGS="-O2 -g -std=c11 -Wall -Wextra -Werror $SAN" \
    >"$T/build.log" 2>&1 || { cat "$T/build.log" >&2; fail "examples/ did not build with pkg-config"; }
EX="$T/train_and_score"
readelf -d "$EX" | grep -q 'NEEDED.*\[libresflow\.so\.0\]' || fail "the example does not link libresflow.so.0"
nm "$EX" | grep -q ' T rf_train$' && fail "the example contains rf_train: linked the archive"
LD_LIBRARY_PATH="$STAGE/lib" ldd "$EX" | grep -q "libresflow.so.0 => $STAGE/lib/libresflow.so.0" ||
    fail "libresflow.so.0 does not resolve to $STAGE/lib"
LD_LIBRARY_PATH="$STAGE/lib" "$EX" "$T/ex.model" >"$T/out" 2>"$T/err" || { cat "$T/out" "$T/err" >&2; fail "the example failed"; }
expect_out "identical scores"
exit 0
