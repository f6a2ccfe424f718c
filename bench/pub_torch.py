#!/usr/bin/python3
"""PyTorch peer of one PUB training step (bench/bench_balance.c runs it with --peer).

The same shapes as bench_balance's reference setup: 16 fields x embedding 16 (15625 ids each,
250k rows), ResFlow towers 128-64 x 2 tasks (tests/../bench/torch_bench.py's Towers), batch 2048,
the same label law (click rate 2% / 8% by the parity of field 0's id, order 10% of clicks). One
PUB step as src/nn/balance.c takes it (include/resflow/balance.h):

  forward; each task's loss and its gradient (torch.autograd.grad, the graph kept between
  tasks); for the shared dense parameters (ResFlow: the parent task's tower, which the child's
  residual links reach) each task's Adam update u_k from the one shared Adam state, the Gram
  matrix M_ij = <u_i, u_j>, the Nash-bargaining weights alpha_i (M alpha)_i = 1 (Newton on
  1/2 a'Ga - sum log a, as rf_pub_weights), rescaled to sum K, p -= lr (wd p + sum alpha_k u_k),
  the moments updated with sum alpha_k g_k; the child's tower: Adam on its gradient; the
  embeddings: the summed gradient to Adam or SparseAdam (both tried, the faster kept).

Also a plain Adam step of the same model (summed loss, one backward). Prints one JSON line:
ms per step of both, wall and process CPU (all threads). Exit 2 with a message when torch is missing.
Run with Debian's interpreter: /usr/bin/python3 bench/pub_torch.py --threads 2
"""
import argparse
import json
import os
import sys
import time

try:
    import numpy as np
    import torch
    import torch.nn.functional as Fn
except ImportError as e:  # the caller prints this and goes on
    print(f"pub_torch: {e}: install python3-torch (scripts/install-deps.sh --with-torch)", file=sys.stderr)
    sys.exit(2)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_bench import Towers  # noqa: E402


def nash_weights(M):
    """alpha > 0 with alpha_i (M alpha)_i = 1 (rf_pub_weights' Newton, regularised when singular)."""
    K = M.shape[0]
    d = max(np.diag(M).max(), 1e-300)
    G = M / d
    for eps in [0.0] + [10.0 ** e for e in range(-12, 1, 2)]:
        A = G + eps * np.eye(K)
        a = 1 / np.sqrt(np.maximum(np.diag(A), 1e-300))
        for _ in range(100):
            r = A @ a - 1 / a
            if np.max(np.abs(a * (A @ a) - 1)) < 1e-12:
                return a / np.sqrt(d)
            H = A + np.diag(1 / a ** 2)
            step = np.linalg.solve(H, r)
            t = 1.0
            while np.any(a - t * step <= 0):
                t /= 2
            a = a - t * step
    return np.ones(K)


def data(rows, fields, vocab, seed=12345):
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, vocab, size=(rows, fields), dtype=np.int64)
    p = np.where(ids[:, 0] % 2 == 1, 0.08, 0.02)
    click = (rng.random(rows) < p).astype(np.float32)
    order = click * (rng.random(rows) < 0.1)
    return torch.from_numpy(ids), torch.from_numpy(np.stack([click, order], 1).astype(np.float32))


def run(args, sparse, pub, ids, labels):
    torch.manual_seed(0)
    net = Towers("resflow", args.fields, args.vocab, args.emb, [128, 64], 2, sparse)
    shared = list(net.layers[0].parameters()) + list(net.acts[0].parameters()) + list(net.out[0].parameters())
    own = list(net.layers[1].parameters()) + list(net.acts[1].parameters()) + list(net.out[1].parameters())
    lr, b1, b2, eps, wd = 1e-3, 0.9, 0.999, 1e-8, 0.0
    opt = torch.optim.Adam(own if pub else shared + own, lr=lr)
    eopt = (torch.optim.SparseAdam if sparse else torch.optim.Adam)([net.emb.weight], lr=lr)
    ms = [torch.zeros_like(p) for p in shared]
    vs = [torch.zeros_like(p) for p in shared]
    B, K = args.batch, 2
    nb = ids.shape[0] // B
    warm, t = 3, 0
    for s in range(args.steps + warm):
        if s == warm:
            t0, c0 = time.perf_counter(), time.process_time()
        i = (s % nb) * B
        y = labels[i:i + B]
        out = net(ids[i:i + B])
        opt.zero_grad(set_to_none=True)
        eopt.zero_grad(set_to_none=True)
        if not pub:
            Fn.binary_cross_entropy_with_logits(out, y, reduction="none").mean(0).sum().backward()
            opt.step()
            eopt.step()
            continue
        params = shared + own + [net.emb.weight]
        g = []
        for k in range(K):
            lk = Fn.binary_cross_entropy_with_logits(out[:, k], y[:, k])
            g.append(torch.autograd.grad(lk, params, retain_graph=k < K - 1, allow_unused=True))
        t += 1
        bc1, bc2 = 1 - b1 ** t, 1 - b2 ** t
        with torch.no_grad():
            u = [[None] * len(shared) for _ in range(K)]
            M = np.zeros((K, K))
            for j, p in enumerate(shared):
                for k in range(K):
                    gk = g[k][j] if g[k][j] is not None else torch.zeros_like(p)
                    mk = b1 * ms[j] + (1 - b1) * gk
                    vk = b2 * vs[j] + (1 - b2) * gk * gk
                    u[k][j] = (mk / bc1) / (vk.sqrt() / bc2 ** 0.5 + eps)
                for a in range(K):
                    for c in range(a, K):
                        M[a, c] += float((u[a][j].double() * u[c][j].double()).sum())
            M = np.triu(M) + np.triu(M, 1).T
            al = nash_weights(M)
            al = al * K / al.sum()
            for j, p in enumerate(shared):
                du = sum(float(al[k]) * u[k][j] for k in range(K))
                gh = sum(float(al[k]) * (g[k][j] if g[k][j] is not None else 0) for k in range(K))
                p.sub_(lr * (wd * p + du))
                ms[j].mul_(b1).add_((1 - b1) * gh)
                vs[j].mul_(b2).add_((1 - b2) * gh * gh)
            n_sh = len(shared)
            for j, p in enumerate(own):
                gs = [g[k][n_sh + j] for k in range(K) if g[k][n_sh + j] is not None]
                p.grad = sum(gs[1:], gs[0])
            ge = [g[k][-1] for k in range(K)]
            net.emb.weight.grad = (ge[0] + ge[1]).coalesce() if sparse else ge[0] + ge[1]
        opt.step()
        eopt.step()
    wall = (time.perf_counter() - t0) * 1e3 / args.steps
    cpu = (time.process_time() - c0) * 1e3 / args.steps
    return wall, cpu


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=262144)
    ap.add_argument("--fields", type=int, default=16)
    ap.add_argument("--vocab", type=int, default=15625)
    ap.add_argument("--emb", type=int, default=16)
    ap.add_argument("--batch", type=int, default=2048)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    ids, labels = data(args.rows, args.fields, args.vocab)
    res = {"engine": "pytorch", "version": torch.__version__, "threads": args.threads, "steps": args.steps}
    for name, pub in (("adam", False), ("pub", True)):
        best = None
        for sparse in (True, False):
            wall, cpu = run(args, sparse, pub, ids, labels)
            if best is None or wall < best[0]:
                best = (wall, cpu, sparse)
        res[f"{name}_ms"] = round(best[0], 3)
        res[f"{name}_cpu_ms"] = round(best[1], 3)
        res[f"{name}_sparse_embedding"] = best[2]
    print(json.dumps(res))


if __name__ == "__main__":
    main()
