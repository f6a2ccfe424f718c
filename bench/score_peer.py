#!/usr/bin/python3
"""The PyTorch peer of bench_score: the same ResFlow ranking model scoring requests of raw
candidates, as a Python service would (what a user of PyTorch would pick): the request's string
values encoded with dict vocabularies (the categorical fields) and float() (the dense columns),
one forward pass under inference_mode, sigmoids, and the candidates sorted by the last task.

The model: bench/torch_bench.py's Towers (per-task Linear+PReLU towers, ResFlow's residual links),
its input widened by the dense columns (concat, as resflow's default dense_mode), with the
shapes of the model file (bench_score --shape: fields and vocabulary sizes, dense columns,
embedding width, hidden widths, tasks); random weights (the speed does not depend on them).
Prints one JSON line: requests/s, latency p50/p99, and the forward pass alone.

  /usr/bin/python3 bench/score_peer.py --shape shape.json --body body.json [--seconds 10]
"""
import argparse
import json
import os
import sys
import time

import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_bench import Towers  # noqa: E402


class DenseTowers(Towers):
    """Towers over [field embeddings, dense columns]."""

    def __init__(self, n_fields, n_dense, vocab, emb, hidden, tasks):
        super().__init__("resflow", n_fields, vocab, emb, hidden, tasks, False)
        for k in range(tasks):
            self.layers[k][0] = nn.Linear(n_fields * emb + n_dense, hidden[0])

    def forward(self, ids, dense):
        x = torch.cat([self.emb(ids + self.offsets).reshape(ids.shape[0], -1), dense], 1)
        prev, logits = None, []
        for k in range(self.K):
            h, outs = x, []
            for l, (lin, act) in enumerate(zip(self.layers[k], self.acts[k])):
                h = act(lin(h))
                if prev is not None:
                    h = h + prev[l]
                outs.append(h)
            s = self.out[k](h).squeeze(1)
            if prev is not None:
                s = s + logits[-1]
            logits.append(s)
            prev = outs
        return torch.stack(logits, 1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shape", required=True)
    ap.add_argument("--body", required=True)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    shape = json.load(open(a.shape))
    cands = json.load(open(a.body))["candidates"]
    fields = [f[0] for f in shape["fields"]]
    vsize = max(f[1] for f in shape["fields"])
    dense = shape["dense"]
    hidden = shape["H"] or [128, 64]
    model = DenseTowers(len(fields), len(dense), vsize, shape["E"], hidden, shape["K"]).eval()
    # the vocabularies: every value of the request's fields, ids 1.. (0: missing / unseen)
    vocab = [{} for _ in fields]
    for c in cands:
        for j, f in enumerate(fields):
            v = c.get(f)
            if v is not None and v not in vocab[j]:
                vocab[j][v] = 1 + len(vocab[j]) % (vsize - 1)

    def score(req):
        ids = torch.tensor([[vocab[j].get(c.get(f), 0) for j, f in enumerate(fields)] for c in req],
                           dtype=torch.long)
        dn = torch.tensor([[float(c.get(d) or 0.0) for d in dense] for c in req], dtype=torch.float32)
        with torch.inference_mode():
            p = torch.sigmoid(model(ids, dn))
            order = torch.argsort(p[:, -1], descending=True, stable=True)
        return p, order

    score(cands)  # warm-up
    lat, t0 = [], time.perf_counter()
    c0 = time.process_time()
    while time.perf_counter() - t0 < a.seconds:
        t = time.perf_counter()
        score(cands)
        lat.append(time.perf_counter() - t)
    el = time.perf_counter() - t0
    cpu = time.process_time() - c0
    ids = torch.zeros((len(cands), len(fields)), dtype=torch.long)
    dn = torch.zeros((len(cands), len(dense)))
    fw = []
    for _ in range(20):
        t = time.perf_counter()
        with torch.inference_mode():
            torch.sigmoid(model(ids, dn))
        fw.append(time.perf_counter() - t)
    lat.sort()
    fw.sort()
    pct = lambda q: 1e3 * lat[int(q * (len(lat) - 1))]
    print(json.dumps({"peer": "pytorch %s" % torch.__version__, "threads": a.threads, "candidates": len(cands),
                      "requests": len(lat), "requests_per_s": round(len(lat) / el, 1), "p50_ms": round(pct(0.5), 3),
                      "p99_ms": round(pct(0.99), 3), "cpu_ms_per_request": round(1e3 * cpu / len(lat), 3),
                      "forward_only_p50_ms": round(1e3 * fw[len(fw) // 2], 3)}, separators=(",", ":")))


if __name__ == "__main__":
    main()
