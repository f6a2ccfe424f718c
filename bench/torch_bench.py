#!/usr/bin/python3
"""PyTorch reference for bench/bench_train.c: the same model, data and batches.

Reads the ids/labels that `bench_train --dump DIR` wrote, builds the model in PyTorch (one
embedding table per field, stored as a single nn.Embedding with per-field offsets), trains with
Adam on the dense parameters and Adam or SparseAdam on the embeddings, and prints one JSON line
with training and inference samples/s (per wall second, and per CPU second x threads). Models:

  resflow, nse, esmm   towers Linear+PReLU per task; ResFlow's residual links as in the paper
  single               one embedding chunk and one tower per task (no sharing)
  shared_bottom        bottom MLP, towers on it
  moe, mmoe            experts (the first layer of all experts as one Linear, deeper layers one
                       Linear per expert), softmax gate(s) Linear+softmax, towers on the mixtures
  ple                  CGC levels of one-layer experts (one Linear per expert group), task gates
                       over [own, shared], a shared gate between levels, towers
  aitm                 per-task tower MLPs q_k; the child's info layer ReLU(Linear(z_parent)) and
                       2-item self-attention (Wq, Wk, Wv, no bias) over [q_k, info]; logit from
                       z_k; loss + alpha * max(p_child - p_parent, 0) (alpha 0.6)
  escm2_ipw, escm2_dr  ESMM towers; the child's loss lambda_g * entire-space BCE + lambda_c * the
                       IPW (or DR, with one imputation tower) risk, detached clipped 1/p_parent
  dcmt                 ESMM towers + a counterfactual CVR tower; factual and counterfactual
                       inverse-propensity BCEs, 1e-3 |r + r* - 1| prior, lambda_g CTCVR BCE
  stem                 (K+1) embedding chunks; one specific expert MLP per task on its chunk, 2
                       shared ones on the shared chunk; task gate on x_k + x_s over every
                       expert, the other tasks' specific experts detached (AFTB); towers

with resflow's defaults for the zoo (bench_train passes no other model keys): PReLU, expert and
bottom MLPs 256-128, 4 experts, PLE and STEM 1 specific + 2 shared experts, aitm_alpha 0.6,
cf_weight 0.5, global_weight 0.5, ips_clip 15; the task tree is a chain (ctr -> ctcvr). The
objectives follow src/nn/zoo.c's rf_zoo_loss in float32 (resflow: float64, per row). Tuned for this
machine: torch.set_num_threads(threads) (torch sees one core otherwise); both embedding-gradient
modes are tried and the faster one is reported (`--sparse auto`), so the reference is PyTorch at
its best here, not a strawman.

Run with Debian's interpreter: /usr/bin/python3 bench/torch_bench.py --data DIR
"""
import argparse
import json
import resource
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as Fn


class Towers(nn.Module):
    def __init__(self, model, n_fields, vocab, emb, hidden, tasks, sparse):
        super().__init__()
        self.model, self.F, self.E = model, n_fields, emb
        self.emb = nn.Embedding(n_fields * vocab, emb, sparse=sparse)
        nn.init.uniform_(self.emb.weight, -0.05, 0.05)
        self.register_buffer("offsets", torch.arange(n_fields) * vocab)
        self.layers = nn.ModuleList()
        self.acts = nn.ModuleList()
        for _ in range(tasks):
            dims = [n_fields * emb] + hidden
            self.layers.append(nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:])))
            self.acts.append(nn.ModuleList(nn.PReLU(b) for b in hidden))
        self.out = nn.ModuleList(nn.Linear(hidden[-1], 1) for _ in range(tasks))
        self.K = tasks

    def forward(self, ids):
        x = self.emb(ids + self.offsets).reshape(ids.shape[0], -1)
        prev, logits = None, []
        for k in range(self.K):
            h, outs = x, []
            for l, (lin, act) in enumerate(zip(self.layers[k], self.acts[k])):
                h = act(lin(h))
                if self.model == "resflow" and prev is not None:
                    h = h + prev[l]
                outs.append(h)
            s = self.out[k](h).squeeze(1)
            if self.model == "resflow" and prev is not None:
                s = s + logits[-1]
            logits.append(s)
            prev = outs
        return torch.stack(logits, 1)


def mlp(dims):
    """Linear + PReLU per layer (resflow's default act), as an nn.Sequential."""
    layers = []
    for a, b in zip(dims[:-1], dims[1:]):
        layers += [nn.Linear(a, b), nn.PReLU(b)]
    return nn.Sequential(*layers)


class Experts(nn.Module):
    """n expert MLPs: the first layer of all of them is one Linear (one GEMM), deeper layers one
    Linear per expert. Returns the list of expert outputs."""

    def __init__(self, n, inp, widths):
        super().__init__()
        self.n = n
        self.first = nn.Linear(inp, n * widths[0])
        self.act0 = nn.PReLU(n * widths[0])
        self.rest = nn.ModuleList(mlp(widths) for _ in range(n)) if len(widths) > 1 else None
        self.w0 = widths[0]

    def forward(self, x):
        h = self.act0(self.first(x))
        outs = list(h.split(self.w0, 1))
        if self.rest is not None:
            outs = [f(o) for f, o in zip(self.rest, outs)]
        return outs


def mix(gate_logits, experts):
    g = torch.softmax(gate_logits, 1)
    return (torch.stack(experts, 2) * g.unsqueeze(1)).sum(2)


class Zoo(nn.Module):
    """The model zoo (src/nn/zoo.c) with resflow's default sizes."""

    def __init__(self, model, n_fields, vocab, emb, hidden, tasks, sparse, bottom=(256, 128),
                 expert_hidden=(256, 128), experts=4, shared=2, specific=1):
        super().__init__()
        self.model, self.F, self.E, self.K = model, n_fields, emb, tasks
        mult = {"single": tasks, "stem": tasks + 1}.get(model, 1)
        self.emb = nn.Embedding(n_fields * vocab, mult * emb, sparse=sparse)
        nn.init.uniform_(self.emb.weight, -0.05, 0.05)
        self.register_buffer("offsets", torch.arange(n_fields) * vocab)
        inp = n_fields * emb
        bottom, expert_hidden = list(bottom), list(expert_hidden)
        n_extra = 0
        if model in ("single", "escm2_ipw", "escm2_dr", "dcmt"):
            top = inp
            n_extra = tasks - 1 if model in ("escm2_dr", "dcmt") else 0  # one per child task
        elif model == "aitm":  # the towers' hidden layers are q_k; the output layers below
            H = hidden[-1]
            self.q = nn.ModuleList(mlp([inp] + hidden) for _ in range(tasks))
            self.info = nn.ModuleList(nn.Linear(H, H) for _ in range(tasks - 1))
            self.attn = nn.ParameterList(nn.Parameter(torch.randn(3, H, H) * 0.01)
                                         for _ in range(tasks - 1))  # Wq, Wk, Wv of each child
            self.out = nn.ModuleList(nn.Linear(H, 1) for _ in range(tasks))
        elif model == "stem":
            self.spec = nn.ModuleList(Experts(specific, inp, expert_hidden) for _ in range(tasks))
            self.shared = Experts(shared, inp, expert_hidden)
            self.gates = nn.ModuleList(nn.Linear(inp, tasks * specific + shared) for _ in range(tasks))
            top = expert_hidden[-1]
        elif model == "shared_bottom":
            self.bottom = mlp([inp] + bottom)
            top = bottom[-1]
        elif model in ("moe", "mmoe"):
            self.experts = Experts(experts, inp, expert_hidden)
            self.gates = nn.ModuleList(nn.Linear(inp, experts) for _ in range(tasks if model == "mmoe" else 1))
            top = expert_hidden[-1]
        elif model == "ple":
            self.levels = nn.ModuleList()
            w = inp
            for l, H in enumerate(expert_hidden):
                last = l == len(expert_hidden) - 1
                lv = nn.Module()
                lv.spec = nn.ModuleList(Experts(specific, w, [H]) for _ in range(tasks))
                lv.shared = Experts(shared, w, [H])
                lv.gates = nn.ModuleList(nn.Linear(w, specific + shared) for _ in range(tasks))
                lv.gate_s = None if last else nn.Linear(w, tasks * specific + shared)
                self.levels.append(lv)
                w = H
            top = w
        else:
            raise ValueError("no PyTorch reference for " + model)
        if model != "aitm":  # task towers, then the extra ones (imputation / counterfactual)
            self.towers = nn.ModuleList(nn.Sequential(mlp([top] + hidden), nn.Linear(hidden[-1], 1))
                                        for _ in range(tasks + n_extra))

    def forward(self, ids):
        B, K = ids.shape[0], self.K
        e = self.emb(ids + self.offsets)  # (B, F, mult*E)
        if self.model == "aitm":  # task k's parent is k - 1 (a chain, parents first)
            x, z, s = e.reshape(B, -1), [], []
            for k in range(K):
                q = self.q[k](x)
                if k > 0:
                    i = torch.relu(self.info[k - 1](z[k - 1]))
                    Wq, Wk, Wv = self.attn[k - 1]
                    sc = torch.stack([((u @ Wq) * (u @ Wk)).sum(1) for u in (q, i)], 1) / q.shape[1] ** 0.5
                    a = torch.softmax(sc, 1)
                    q = a[:, 0:1] * (q @ Wv) + a[:, 1:2] * (i @ Wv)
                z.append(q)
                s.append(self.out[k](q))
            return torch.cat(s, 1)
        if self.model in ("single", "stem"):
            ins = [e[:, :, k * self.E:(k + 1) * self.E].reshape(B, -1) for k in range(len(self.towers))]
            if self.model == "stem":  # chunk K is the shared one
                xs = e[:, :, K * self.E:].reshape(B, -1)
                sp = [self.spec[k](ins[k]) for k in range(K)]
                sh = self.shared(xs)
                ins = [mix(self.gates[k](ins[k] + xs),
                           [o if u == k else o.detach() for u in range(K) for o in sp[u]] + sh)
                       for k in range(K)]
        elif self.model in ("escm2_ipw", "escm2_dr", "dcmt"):
            ins = [e.reshape(B, -1)] * len(self.towers)
        else:
            x = e.reshape(B, -1)
            if self.model == "shared_bottom":
                ins = [self.bottom(x)] * K
            elif self.model in ("moe", "mmoe"):
                ex = self.experts(x)
                h = [mix(g(x), ex) for g in self.gates]
                ins = h if self.model == "mmoe" else h * K
            else:
                xt, xs = [x] * K, x
                for lv in self.levels:
                    sp = [lv.spec[k](xt[k]) for k in range(K)]
                    sh = lv.shared(xs)
                    nt = [mix(lv.gates[k](xt[k]), sp[k] + sh) for k in range(K)]
                    if lv.gate_s is not None:
                        xs = mix(lv.gate_s(xs), [o for k in range(K) for o in sp[k]] + sh)
                    xt = nt
                ins = xt
        return torch.cat([t(i) for t, i in zip(self.towers, ins)], 1)


def loss_fn(model, s, y, pos_w, alpha=0.6, lc=0.5, lg=0.5, clip=15.0):
    """src/nn/zoo.c's rf_zoo_loss (and the plain BCEs) on a chain; s = K logits then the extras."""
    K = y.shape[1]
    if model == "aitm":
        c = torch.sigmoid(s)
        bce = Fn.binary_cross_entropy_with_logits(s, y, pos_weight=pos_w, reduction="none")
        return (bce.sum(1) + alpha * torch.relu(c[:, 1:] - c[:, :-1]).sum(1)).mean()
    if model in ("esmm", "escm2_ipw", "escm2_dr", "dcmt"):
        logp = torch.cumsum(Fn.logsigmoid(s[:, :K]), 1)
        l1p = torch.log(-torch.expm1(logp)).clamp(min=-100)
        es = -(pos_w * y * logp + (1 - y) * l1p)
        if model == "esmm":
            return es.mean(0).sum()
        loss = es[:, 0]  # the root: L_CTR
        for k in range(1, K):  # child k, parent k - 1: lambda_g L_CTCVR + lambda_c R
            o, sk = y[:, k - 1], s[:, k]
            lpp = logp[:, k - 1].detach()  # propensity weights carry no gradient
            w1 = o * (1 / lpp.exp().clamp(min=1e-6)).clamp(max=clip)
            dlt = Fn.binary_cross_entropy_with_logits(sk, y[:, k], pos_weight=pos_w[k], reduction="none")
            if model == "escm2_ipw":
                R = w1 * dlt
            elif model == "escm2_dr":
                dh = torch.sigmoid(s[:, K + k - 1])
                err = dlt - dh
                R = dh + w1 * err + w1 * err * err
            else:
                t = s[:, K + k - 1]
                w0 = (1 - o) * (1 / (-torch.expm1(lpp)).clamp(min=1e-6)).clamp(max=clip)
                dcf = Fn.binary_cross_entropy_with_logits(t, 1 - y[:, k], reduction="none")
                R = w1 * dlt + w0 * dcf + 1e-3 * (torch.sigmoid(sk) + torch.sigmoid(t) - 1).abs()
            loss = loss + lg * es[:, k] + lc * R
        return loss.mean()
    return Fn.binary_cross_entropy_with_logits(s, y, pos_weight=pos_w, reduction="none").mean(0).sum()


def run(args, sparse, ids, labels):
    torch.manual_seed(0)
    hidden = [int(h) for h in args.hidden.split(",")]
    if args.model in ("resflow", "nse", "esmm"):
        net = Towers(args.model, args.fields, args.vocab, args.emb, hidden, 2, sparse)
    else:
        net = Zoo(args.model, args.fields, args.vocab, args.emb, hidden, 2, sparse)
    dense = [p for n, p in net.named_parameters() if not n.startswith("emb.")]
    n_dense = sum(p.numel() for p in dense)
    opt = torch.optim.Adam(dense, lr=1e-3)
    eopt = (torch.optim.SparseAdam if sparse else torch.optim.Adam)([net.emb.weight], lr=1e-3)
    pos_w = torch.tensor([1.0, 1.0])
    B = args.batch
    nb = ids.shape[0] // B
    warm = 5
    t0 = time.perf_counter()
    c0 = time.process_time()
    for s in range(args.steps + warm):
        if s == warm:
            t0 = time.perf_counter()
            c0 = time.process_time()
        i = (s % nb) * B
        out = net(ids[i:i + B])
        loss = loss_fn(args.model, out, labels[i:i + B], pos_w)
        opt.zero_grad(set_to_none=True)
        eopt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        eopt.step()
    train = args.steps * B / (time.perf_counter() - t0)
    train_cpu = args.steps * B / (time.process_time() - c0) * args.threads
    net.eval()
    with torch.no_grad():
        t1 = time.perf_counter()
        c1 = time.process_time()
        for s in range(args.steps * 2):
            i = (s % nb) * B
            net(ids[i:i + B])
        infer = args.steps * 2 * B / (time.perf_counter() - t1)
        infer_cpu = args.steps * 2 * B / (time.process_time() - c1) * args.threads
    return train, infer, float(loss), n_dense, train_cpu, infer_cpu


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--model", default="resflow")
    ap.add_argument("--rows", type=int, default=262144)
    ap.add_argument("--fields", type=int, default=16)
    ap.add_argument("--vocab", type=int, default=15625)
    ap.add_argument("--emb", type=int, default=16)
    ap.add_argument("--hidden", default="128,64")
    ap.add_argument("--batch", type=int, default=2048)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--sparse", default="auto", choices=["auto", "0", "1"])
    args = ap.parse_args()
    if args.model not in ("resflow", "nse", "esmm", "single", "shared_bottom", "moe", "mmoe", "ple",
                          "aitm", "stem", "escm2_ipw", "escm2_dr", "dcmt"):
        print(json.dumps({"engine": "pytorch", "model": args.model, "error": "no PyTorch reference"}))
        return
    torch.set_num_threads(args.threads)
    ids = torch.from_numpy(np.fromfile(f"{args.data}/bench_ids.bin", dtype=np.uint32)
                           .astype(np.int64).reshape(args.rows, args.fields))
    labels = torch.from_numpy(np.fromfile(f"{args.data}/bench_labels.bin", dtype=np.float32)
                              .reshape(args.rows, 2))
    modes = [True, False] if args.sparse == "auto" else [args.sparse == "1"]
    best = None
    for sp in modes:
        tr, inf, loss, n_dense, trc, infc = run(args, sp, ids, labels)
        if best is None or tr > best[1]:
            best = (sp, tr, inf, loss, trc, infc)
    print(json.dumps({
        "engine": "pytorch", "version": torch.__version__, "model": args.model,
        "train_samples_per_sec": round(best[1]), "infer_samples_per_sec": round(best[2]),
        "train_cpu_samples_per_sec": round(best[4]), "infer_cpu_samples_per_sec": round(best[5]),
        "sparse_embedding": best[0], "threads": args.threads, "final_loss": round(best[3], 5),
        "dense_params": n_dense,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}))


if __name__ == "__main__":
    main()
