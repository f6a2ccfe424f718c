# The Python package (python/, docs/python.md): its pytest suite, with the library of this build
# (RESFLOW_LIB) and Debian's python3. Skipped, with a message, without numpy, pandas or pytest, and
# for sanitizer builds (a Python process cannot load an ASan/TSan library without preloading it).
. tests/cli/_common.sh
PY=/usr/bin/python3
SO="${BUILD:-build}/libresflow.so"
[ -x "$PY" ] || { echo "python.sh: skipped ($PY not found)"; exit 0; }
if ! "$PY" -c "import numpy, pandas, pytest" 2>/dev/null; then
    echo "python.sh: skipped (python3-numpy, python3-pandas or python3-pytest not installed: scripts/install-deps.sh)"
    exit 0
fi
if ldd "$SO" | grep -q 'libasan\|libtsan\|libubsan'; then echo "python.sh: skipped (sanitizer build)"; exit 0; fi
RESFLOW_LIB="$(cd "$(dirname "$SO")" && pwd)/$(basename "$SO")" BUILD="${BUILD:-build}" \
    "$PY" -m pytest -q -p no:cacheprovider python/tests ${PYTEST_ARGS:-} > "$T/out" 2>&1 || { cat "$T/out" >&2; fail "pytest python/tests"; }
tail -1 "$T/out"
# installed as `make install install-python` installs it (into the test suite's stage, make stage):
# the package finds the staged library by the path recorded at install time
STAGE="$(cd "${BUILD:-build}" && pwd)/stage"
if [ -f "$STAGE/lib/libresflow.so" ]; then
    env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL ${MAKE:-make} --no-print-directory install-python PREFIX="$STAGE" DESTDIR= >/dev/null || fail "make install-python"
    got=$(cd "$T" && env -u RESFLOW_LIB PYTHONPATH="$STAGE/lib/python3/dist-packages" "$PY" -c \
        "import resflow; print(resflow.library_path, resflow.__version__)") || fail "import of the installed package"
    case "$got" in "$STAGE/lib/libresflow.so."*) ;; *) fail "installed package loads '$got', not the staged library" ;; esac
fi
