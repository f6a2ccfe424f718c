#!/usr/bin/python3
"""delong_ref.py - reference values for rf_auc_delong (src/eval/signif.c).

Brute force from the definition (DeLong, DeLong & Clarke-Pearson 1988): the psi matrix over
all positive x negative pairs (1 above, 1/2 tied, 0 below), placements V10 / V01 as its row /
column means, the 2x2 covariance matrices S10, S01 (denominator n-1), and
Var(A - B) = (S10_aa + S10_bb - 2 S10_ab) / n1 + (S01_aa + S01_bb - 2 S01_ab) / n0.
Independent of the C code's sort-based placements. Writes tests/fixtures/delong.txt:
per case a line "case N", N lines "a b y", then "expect aucA aucB diff se p".
Run: /usr/bin/python3 tests/ref/delong_ref.py  (numpy only).
"""
import math
import os
import numpy as np


def delong(a, b, y):
    pos, neg = y > 0.5, y <= 0.5
    out = []
    v10, v01 = [], []
    for s in (a, b):
        x, z = s[pos][:, None], s[neg][None, :]
        psi = (x > z) + 0.5 * (x == z)
        out.append(psi.mean())
        v10.append(psi.mean(axis=1))
        v01.append(psi.mean(axis=0))
    s10, s01 = np.cov(np.array(v10)), np.cov(np.array(v01))
    n1, n0 = pos.sum(), neg.sum()
    var = (s10[0, 0] + s10[1, 1] - 2 * s10[0, 1]) / n1 + (s01[0, 0] + s01[1, 1] - 2 * s01[0, 1]) / n0
    se = math.sqrt(var)
    d = out[0] - out[1]
    p = math.erfc(abs(d) / se / math.sqrt(2)) if se > 0 else 1.0
    return out[0], out[1], d, se, p


def main():
    rng = np.random.default_rng(20)
    here = os.path.dirname(os.path.abspath(__file__))
    path = os.path.join(here, "..", "fixtures", "delong.txt")
    lines = []
    for n, prev, rho, grid in ((200, 0.3, 0.6, 0.0), (300, 0.1, 0.9, 0.05), (150, 0.5, 0.0, 0.25)):
        y = (rng.random(n) < prev).astype(float)
        t = rng.normal(size=n) + 1.0 * y
        a = t + rng.normal(size=n)
        b = rho * a + math.sqrt(1 - rho * rho) * rng.normal(size=n) + 0.5 * y
        if grid > 0:  # ties
            a, b = np.round(a / grid) * grid, np.round(b / grid) * grid
        a, b = a.astype(np.float32).astype(float), b.astype(np.float32).astype(float)
        lines.append("case %d" % n)
        lines += ["%.9g %.9g %d" % (a[i], b[i], y[i]) for i in range(n)]
        lines.append("expect %.15g %.15g %.15g %.15g %.15g" % delong(a, b, y))
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
