# issue #18, the HTML report: `train --report DIR` and `resflow report -m MODEL` write one
# self-contained page (curves, test table, calibration per task); rendered in headless Chromium,
# whose DOM must hold the table rows and the figures, with no console error and no external
# resource. Skips the rendering (not the page checks) when chromium is absent.
. tests/cli/_common.sh
O="--set synth.preset=search --set synth.rows=20000 --set train.epochs=2 --set model.hidden=[16,8] --set train.batch_size=256 --set train.log_every=10"
expect_exit 0 "$RF" train $O -o "$T/m.model" --report "$T/rep"
expect_err "report written to $T/rep/report.html"
H="$T/rep/report.html"
[ -s "$H" ] || fail "train --report wrote no report.html"
# self-contained: no script, no link, no external image or stylesheet
if grep -Eiq '<script|<link|<img|src=|@import|url\(' "$H" || grep -Eo 'https?://[^"]*' "$H" | grep -qv '^http://www.w3.org/'; then
    fail "the report loads something from outside"
fi
# the page as written: 2 curve plots + 2 calibration plots, one table row per task
python3 - "$H" <<'PY' || fail "report content"
import sys, html.parser
class P(html.parser.HTMLParser):
    def __init__(s):
        super().__init__(); s.svg = 0; s.rows = []; s.intable = 0; s.row = None; s.cell = None; s.text = []
    def handle_starttag(s, t, a):
        if t == "svg": s.svg += 1
        if t == "table" and ("class", "rf-table") in a: s.intable = 1
        if t == "tr" and s.intable: s.row = []
        if t in ("td", "th") and s.row is not None: s.cell = ""
    def handle_endtag(s, t):
        if t in ("td", "th") and s.cell is not None: s.row.append(s.cell.strip()); s.cell = None
        if t == "tr" and s.row is not None: s.rows.append(s.row); s.row = None
        if t == "table": s.intable = 0
    def handle_data(s, d):
        s.text.append(d)
        if s.cell is not None: s.cell += d
p = P(); p.feed(open(sys.argv[1], encoding="utf-8").read())
text = " ".join(p.text)
assert p.svg == 4, f"{p.svg} svg figures, expected 4 (loss, AUC, 2 calibration)"
assert p.rows[0][:3] == ["task", "parent", "AUC"], p.rows[0]
assert [r[0] for r in p.rows[1:]] == ["ctr", "ctcvr"], p.rows
assert p.rows[2][1] == "ctr", "ctcvr's parent"
auc = float(p.rows[1][2]); assert 0.5 < auc < 1, auc
for w in ("Training curves", "validation AUC", "calibration: ctr", "calibration: ctcvr", "best epoch"):
    assert w in text, w
PY
# the metrics table agrees with train --json on the same model
expect_exit 0 "$RF" eval -m "$T/m.model" --json
ctr_auc=$(python3 -c 'import json,sys; print("%.4f" % json.load(sys.stdin)["tasks"]["ctr"]["auc"])' <"$T/out")
grep -q "<td class=\"num\">$ctr_auc</td>" "$H" || fail "the report's ctr AUC is not eval's $ctr_auc"

# resflow report from a saved model: the same table and calibration, a note instead of curves
expect_exit 0 "$RF" report -m "$T/m.model" -o "$T/model.html" -q
grep -q "Training curves are recorded by" "$T/model.html" || fail "report -m: no note on the missing curves"
[ "$(grep -c '<svg' "$T/model.html")" = 2 ] || fail "report -m: expected 2 calibration figures"
grep -q "<td class=\"num\">$ctr_auc</td>" "$T/model.html" || fail "report -m: ctr AUC is not $ctr_auc"
expect_exit 1 "$RF" report -o "$T/x.html"
expect_err "--model is required"
expect_exit 1 "$RF" eval -m "$T/m.model" --report "$T/r"
expect_err "not an option of this command"

# an experiment's OUT/report.html: per dataset a table (one row per model) and an AUC plot
expect_exit 0 "$RF" experiment --models nse,resflow --seeds 1,2 --set synth.preset=search --set synth.rows=8000 --set train.epochs=1 \
    --set model.hidden=[8] --set train.batch_size=256 -o "$T/x" -q
X="$T/x/report.html"
[ -s "$X" ] || fail "experiment wrote no report.html"
python3 - "$X" <<'PY' || fail "experiment report content"
import sys, re
h = open(sys.argv[1], encoding="utf-8").read()
rows = re.findall(r"<tr>(.*?)</tr>", h, re.S)
cells = [re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", r) for r in rows]
assert cells[0] == ["model", "seeds", "ctr AUC", "ctcvr AUC"], cells[0]
assert [c[0] for c in cells[1:]] == ["nse", "resflow"], cells
assert all(c[1] == "2" and "±" in c[2] for c in cells[1:]), cells
assert h.count("<svg") == 1 and "synth: test AUC per model" in h
PY

# rendered by a browser
if ! command -v chromium >/dev/null 2>&1; then
    echo "  [skip] chromium not installed: the report is not rendered (apt-get install chromium)" >&2
    exit 0
fi
render() { # FILE -> $T/dom, $T/console
    timeout 120 chromium --headless --disable-gpu --no-sandbox --user-data-dir="$T/chrome" --enable-logging=stderr \
        --v=0 --dump-dom "file://$1" >"$T/dom" 2>"$T/console" || { tail "$T/console" >&2; fail "chromium failed on $1"; }
}
render "$H"
[ "$(grep -o '<svg' "$T/dom" | wc -l)" = 4 ] || fail "rendered DOM: expected 4 svg elements"
[ "$(grep -o '<tr>' "$T/dom" | wc -l)" = 3 ] || fail "rendered DOM: expected 3 table rows"
grep -q '<h1>resflow: ResFlow on synth</h1>' "$T/dom" || fail "rendered DOM: no title"
if grep -Ei 'CONSOLE|Uncaught|SyntaxError|ERR_FILE_NOT_FOUND' "$T/console"; then fail "console errors"; fi
timeout 120 chromium --headless --disable-gpu --no-sandbox --user-data-dir="$T/chrome" --window-size=1200,2400 \
    --screenshot="$T/shot.png" "file://$H" >/dev/null 2>&1 || fail "chromium screenshot"
python3 - "$T/shot.png" <<'PY' || fail "screenshot"
import sys, struct, zlib
b = open(sys.argv[1], "rb").read()
assert b[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
w, h = struct.unpack(">II", b[16:24]); assert (w, h) == (1200, 2400), (w, h)
PY
render "$X"
[ "$(grep -o '<tr>' "$T/dom" | wc -l)" = 3 ] || fail "rendered experiment report: expected 3 table rows"
render "$T/model.html"
[ "$(grep -o '<svg' "$T/dom" | wc -l)" = 2 ] || fail "rendered DOM of report -m: expected 2 svg elements"
exit 0
