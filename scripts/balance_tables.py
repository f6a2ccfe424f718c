#!/usr/bin/env python3
"""balance_tables.py RESULTS.csv - docs/results-balance.md's tables from the experiment runner's
results.csv (configs/experiments/balance.yaml): per dataset, one row per train.balance method and
one column per backbone x task (mean +- std over the seeds), then each method's paired difference
to its own backbone with plain Adam (per seed, the mean of the task AUCs), mean and 95 % Student-t
interval over the seeds, * where the interval excludes 0. Standard library only."""
import csv, math, sys
from statistics import mean, stdev

T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}
BACKBONES = ["mmoe", "ple", "resflow"]
METHODS = ["none", "pub", "uncertainty", "pcgrad", "mgda", "cagrad", "nash_mtl", "adatask"]

rows = list(csv.DictReader(open(sys.argv[1])))
auc = {}  # (dataset, model, task) -> [values per seed]
tasks = {}
for r in rows:
    if r["metric"] != "auc":
        continue
    auc[(r["dataset"], r["model"], r["task"])] = [float(v) for v in r["values"].split(";")]
    tasks.setdefault(r["dataset"], [])
    if r["task"] not in tasks[r["dataset"]]:
        tasks[r["dataset"]].append(r["task"])

def name(b, m):
    return b if m == "none" else b + "+" + m

def cell(v):
    return "%.4f ± %.4f" % (mean(v), stdev(v)) if len(v) > 1 else "%.4f" % v[0]

for ds, ts in tasks.items():
    print("### %s (%d seeds)\n" % (ds, len(auc[(ds, "mmoe", ts[0])])))
    head = ["method"] + ["%s %s" % (b, t) for b in BACKBONES for t in ts]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for m in METHODS:
        print("| " + " | ".join([m] + [cell(auc[(ds, name(b, m), t)]) for b in BACKBONES for t in ts]) + " |")
    print("\nMean task AUC, difference to the same backbone with plain Adam, paired by seed [95 % CI]:\n")
    print("| method | " + " | ".join(BACKBONES) + " |")
    print("|" + "---|" * (len(BACKBONES) + 1))
    for m in METHODS[1:]:
        out = []
        for b in BACKBONES:
            n = len(auc[(ds, b, ts[0])])
            base = [mean(auc[(ds, b, t)][s] for t in ts) for s in range(n)]
            meth = [mean(auc[(ds, name(b, m), t)][s] for t in ts) for s in range(n)]
            d = [x - y for x, y in zip(meth, base)]
            h = T975[n - 1] * stdev(d) / math.sqrt(n)
            sig = "*" if mean(d) - h > 0 or mean(d) + h < 0 else ""
            out.append("%+.4f [%+.4f, %+.4f]%s" % (mean(d), mean(d) - h, mean(d) + h, sig))
        print("| %s | %s |" % (m, " | ".join(out)))
    print()
