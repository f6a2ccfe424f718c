#!/usr/bin/python3
"""torch_ref.py - PyTorch reference of resflow's model, loss and optimizers.

Writes one small binary fixture per configuration (tests/fixtures/*.bin) that
tests/test_reference.c replays against the C engine, so CI checks the C math without torch.

    /usr/bin/python3 tests/ref/torch_ref.py tests/fixtures      (or: make fixtures)

Needs torch (Debian's python3-torch, 1.13) and numpy. Everything is float32 except the loss,
which the C code accumulates in double (and the ESMM log-probability chain, also double in C).
The math mirrors src/nn/model.c, src/nn/ops.c and src/nn/optim.c, and for the model zoo (MMoE, PLE,
AITM) src/nn/zoo.c and src/nn/graph.c (class ZooNet); see tests/ref/README.md for the file format and what
each fixture covers.
"""
import os
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as Fn

MAGIC = b"RFREF001"
VERSION = 1
DT_F32, DT_F64, DT_I32, DT_U8 = 1, 2, 3, 4
NP_DT = {DT_F32: "<f4", DT_F64: "<f8", DT_I32: "<i4", DT_U8: "u1"}

N_ROWS = 48     # dataset rows
BATCH = 32      # rows per batch
STEPS = 10      # Adam steps of the training curve


def f32(x):
    """x rounded to float32 (what the C config parser stores), as a Python float."""
    return float(np.float32(x))


# ---- fixture definitions -------------------------------------------------------------------
# fields: (kind, vocab, max id used + 1); kind single | mean | sum. Ids beyond "used" are never
# drawn, so those embedding rows stay untouched (zero gradient, no lazy-Adam update).
# tasks: (name, parent or None, loss weight, pos_weight)
FIXTURES = [
    dict(name="resflow_2task", type="resflow", E=4, hidden=[16, 8], act="prelu", bn=True,
         res_layers=[0, 1], res_logit=True, dense_mode="concat", D=3,
         fields=[("single", 40, 38), ("single", 7, 7), ("mean", 12, 11)],
         tasks=[("ctr", None, 1.0, 1.0), ("ctcvr", "ctr", 2.0, 5.0)],
         lr="0.01", emb_lr="0", wd="0", emb_wd="0", seed=101),
    # task list deliberately not in topological order (t2 names t1 before t1 is declared)
    dict(name="resflow_tree", type="resflow", E=4, hidden=[8, 4], act="relu", bn=False,
         res_layers=[1], res_logit=True, dense_mode="project", D=3,
         fields=[("single", 40, 38), ("single", 7, 7), ("mean", 12, 11)],
         tasks=[("t0", None, 1.0, 1.0), ("t2", "t1", 0.5, 3.0), ("t1", "t0", 1.0, 2.0),
                ("t3", "t1", 1.5, 4.0)],
         lr="0.01", emb_lr="0.03", wd="0.001", emb_wd="0.001", seed=202),
    dict(name="esmm_3task", type="esmm", E=4, hidden=[8], act="prelu", bn=False,
         res_layers=None, res_logit=True, dense_mode="concat", D=2,
         fields=[("single", 40, 38), ("single", 7, 7), ("mean", 12, 11)],
         tasks=[("click", None, 1.0, 1.0), ("cart", "click", 1.0, 3.0),
                ("order", "cart", 2.0, 10.0)],
         lr="0.01", emb_lr="0.02", wd="0", emb_wd="0", seed=303),
    # NSE: ReLU + BN, no dense features, a second (sum-pooled) multi-valued field
    dict(name="nse_2task", type="nse", E=4, hidden=[8, 4], act="relu", bn=True,
         res_layers=None, res_logit=False, dense_mode="concat", D=0,
         fields=[("single", 40, 38), ("sum", 7, 7), ("mean", 12, 11)],
         tasks=[("ctr", None, 1.0, 1.0), ("cvr", None, 0.5, 4.0)],
         lr="0.01", emb_lr="0", wd="0.01", emb_wd="0", seed=404),
    # ---- model zoo (src/nn/zoo.c, an op graph): towers on gated mixtures of experts ----
    # MMoE: 3 two-layer experts (the first layer of all experts is one linear, the second
    # block-diagonal), one softmax gate per task, PReLU + BN everywhere, dense concatenated
    dict(name="mmoe_2task", type="mmoe", E=4, hidden=[6, 4], act="prelu", bn=True,
         res_layers=None, res_logit=False, dense_mode="concat", D=3,
         zoo=dict(experts=3, expert_hidden=[8, 6]),
         fields=[("single", 40, 38), ("single", 7, 7), ("mean", 12, 11)],
         tasks=[("ctr", None, 1.0, 1.0), ("ctcvr", "ctr", 2.0, 5.0)],
         lr="0.01", emb_lr="0", wd="0", emb_wd="0", seed=505),
    # PLE: 2 CGC levels (widths 8, 6), 2 specific experts per task + 2 shared, 3 tasks, a shared
    # gate between the levels, ReLU, no BN, dense projected, weight decay
    dict(name="ple_3task", type="ple", E=4, hidden=[5], act="relu", bn=False,
         res_layers=None, res_logit=False, dense_mode="project", D=3,
         zoo=dict(shared_experts=2, specific_experts=2, expert_hidden=[8, 6]),
         fields=[("single", 40, 38), ("single", 7, 7), ("mean", 12, 11)],
         tasks=[("click", None, 1.0, 1.0), ("cart", "click", 1.0, 3.0),
                ("order", "cart", 2.0, 10.0)],
         lr="0.01", emb_lr="0.02", wd="0.001", emb_wd="0", seed=606),
    # AITM: a 3-task chain listed out of topological order (the graph is built parents first),
    # ReLU + BN towers, info layers and 2-item attention, a strong calibrator (alpha 2)
    dict(name="aitm_3task", type="aitm", E=4, hidden=[6, 4], act="relu", bn=True,
         res_layers=None, res_logit=False, dense_mode="concat", D=2,
         zoo=dict(aitm_alpha="2"),
         fields=[("single", 40, 38), ("single", 7, 7), ("mean", 12, 11)],
         tasks=[("click", None, 1.0, 1.0), ("order", "cart", 2.0, 6.0),
                ("cart", "click", 1.0, 3.0)],
         lr="0.01", emb_lr="0", wd="0", emb_wd="0", seed=707),
]

ZOO_TYPES = ("mmoe", "ple", "aitm")  # the zoo models with a reference here (class ZooNet)

BETA1, BETA2, EPS = "0.9", "0.999", "1e-8"
BN_MOMENTUM, BN_EPS = "0.1", "1e-5"


def config_yaml(fx):
    """The fixture's configuration, applied by the C test on top of rf_config_default()."""
    rl = fx["res_layers"]
    rl = "none" if not rl else "[" + ", ".join(str(x) for x in rl) + "]"
    lines = [
        "model:",
        "  type: %s" % fx["type"],
        "  emb_dim: %d" % fx["E"],
        "  hidden: [%s]" % ", ".join(str(h) for h in fx["hidden"]),
        "  act: %s" % fx["act"],
        "  bn: %s" % ("batch" if fx["bn"] else "none"),
        "  bn_momentum: %s" % BN_MOMENTUM,
        "  bn_eps: %s" % BN_EPS,
        "  dense_mode: %s" % fx["dense_mode"],
        "  res_layers: %s" % rl,
        "  res_logit: %s" % ("true" if fx["res_logit"] else "false"),
    ]
    for key, val in sorted(fx.get("zoo", {}).items()):
        if isinstance(val, list):
            val = "[" + ", ".join(str(v) for v in val) + "]"
        lines.append("  %s: %s" % (key, val))
    lines += [
        "tasks:",
    ]
    for k, (name, parent, w, pw) in enumerate(fx["tasks"]):
        par = ", parent: %s" % parent if parent else ""
        lines.append("  - {name: %s, label: y%d%s, weight: %r, pos_weight: %r}" % (name, k, par, w, pw))
    lines += [
        "train:",
        "  batch_size: %d" % BATCH,
        "  lr: %s" % fx["lr"],
        "  emb_lr: %s" % fx["emb_lr"],
        "  beta1: %s" % BETA1,
        "  beta2: %s" % BETA2,
        "  eps: %s" % EPS,
        "  weight_decay: %s" % fx["wd"],
        "  emb_weight_decay: %s" % fx["emb_wd"],
    ]
    return "\n".join(lines) + "\n"


# ---- model structure -------------------------------------------------------------------------
class Spec:
    def __init__(self, fx):
        self.fx = fx
        self.K = len(fx["tasks"])
        self.E = fx["E"]
        self.D = fx["D"]
        self.H = list(fx["hidden"])
        self.L = len(self.H)
        self.F = len(fx["fields"])
        self.esmm = fx["type"] == "esmm"
        self.aitm_alpha = f32(fx.get("zoo", {}).get("aitm_alpha", "0.6")) if fx["type"] == "aitm" else None
        self.resflow = fx["type"] == "resflow"
        self.prelu = fx["act"] == "prelu"
        self.bn = fx["bn"]
        self.project = self.D > 0 and fx["dense_mode"] == "project"
        self.In = self.F * self.E + (self.D and (self.E if self.project else self.D))
        names = [t[0] for t in fx["tasks"]]
        self.parent = [names.index(t[1]) if t[1] else -1 for t in fx["tasks"]]
        # topological order, same algorithm as rf_model_create
        done, self.order = [False] * self.K, []
        while len(self.order) < self.K:
            for k in range(self.K):
                if not done[k] and (self.parent[k] < 0 or done[self.parent[k]]):
                    done[k] = True
                    self.order.append(k)
        self.res_mask = 0
        for l in fx["res_layers"] or []:
            self.res_mask |= 1 << l
        self.res_logit = self.resflow and fx["res_logit"]
        self.tw = [f32(t[2]) for t in fx["tasks"]]
        self.pw = [f32(t[3]) for t in fx["tasks"]]
        self.vocab = [f[1] for f in fx["fields"]]
        self.emb_off = [0]
        for v in self.vocab:
            self.emb_off.append(self.emb_off[-1] + v)
        # dense slab layout (must match rf_model_create exactly)
        self.slab = []  # (name, shape, offset)
        self.zoo = fx["type"] in ZOO_TYPES
        self.fans = {}      # zoo: Xavier (fan_in, fan_out) of every linear weight
        self.bn_sizes = []  # width of every BN op, in buffer-slab order (running mean, var)
        n = 0

        def add(name, shape):
            nonlocal n
            size = int(np.prod(shape))
            self.slab.append((name, tuple(shape), n))
            n += size

        K = self.K
        if self.zoo:
            # the op graph's parameters come first, in the order src/nn/zoo.c registers them
            # (op-construction order); running the network once in registering mode records it
            self.bn_index = {}

            def reg(name, shape, fans):
                add(name, shape)
                if fans:
                    self.fans[name] = fans

            def reg_bn(name, w):
                self.bn_index[name] = len(self.bn_sizes)
                self.bn_sizes.append(w)

            ZooNet(self, register=(reg, reg_bn)).logits(torch.zeros(2, self.In))
            if self.project:
                add("Wd", (self.D, self.E))
                add("bd", (self.E,))
            self.n_params = n
            self.n_buffers = 2 * sum(self.bn_sizes)
            return
        if self.bn:
            self.bn_sizes = [K * h for h in self.H]
        for l in range(self.L):
            inp = self.In if l == 0 else self.H[l - 1]
            KH = K * self.H[l]
            add("L%d.W" % l, (inp, KH) if l == 0 else (K, inp, self.H[l]))
            add("L%d.b" % l, (KH,))
            if self.prelu:
                add("L%d.alpha" % l, (KH,))
            if self.bn:
                add("L%d.gamma" % l, (KH,))
                add("L%d.beta" % l, (KH,))
        add("Wout", (K, self.H[-1]))
        add("bout", (K,))
        if self.project:
            add("Wd", (self.D, self.E))
            add("bd", (self.E,))
        self.n_params = n
        self.n_buffers = 2 * K * sum(self.H) if self.bn else 0

    def link_on(self, l):
        return self.resflow and (self.res_mask >> l) & 1

    def views(self, P):
        """Named views into the flat parameter slab (gradients land in P.grad in slab order)."""
        return {name: P[o:o + int(np.prod(shape))].view(shape) for name, shape, o in self.slab}


class ZooNet:
    """The model zoo's networks (src/nn/zoo.c; methods.md §4.5-§4.7), from named parameters.

    Run in one of two modes. Registering (register=(reg, reg_bn)): every parameter is recorded,
    with its shape and Xavier fans, in the order zoo.c's builders register them in the op graph,
    which is the order the ops are constructed; BN ops record their running-statistics buffers.
    That order is the C parameter slab's, so writing the network once in zoo.c's construction
    order gives the layout. Computing (V = slab views, bufs = BN buffers): the forward pass.
    Conventions (zoo.c): linear weights (in, out), Xavier over the whole linear (the first
    layer of all experts is ONE linear of fan_out n*H; deeper expert layers are n independent
    blocks); gates are linear + bias then softmax; every MLP layer is linear + bias, ReLU or
    per-unit PReLU, then BN if on; a tower is an MLP on model.hidden and a linear to 1 logit."""

    def __init__(self, spec, V=None, bufs=None, train=True, register=None):
        self.spec, self.V, self.bufs, self.train, self.register = spec, V, bufs, train, register
        self.cfg = spec.fx.get("zoo", {})

    def param(self, name, shape, fans=None):
        if self.register:
            self.register[0](name, shape, fans)
            return torch.zeros(shape)
        return self.V[name]

    def linear(self, name, x, out_w, G=1, bias=True):
        in_w = x.shape[1]
        iw, ow = in_w // G, out_w // G
        if G == 1:
            z = x @ self.param(name + ".W", (in_w, out_w), (in_w, out_w))
        else:  # G independent maps side by side: block j of the slab is W_j (iw, ow)
            W = self.param(name + ".W", (G, iw, ow), (iw, ow))
            z = torch.cat([x[:, j * iw:(j + 1) * iw] @ W[j] for j in range(G)], 1)
        return z + self.param(name + ".b", (out_w,)) if bias else z

    def act(self, name, z):
        if self.spec.prelu:
            return Fn.prelu(z, self.param(name + ".alpha", (z.shape[1],)))
        return Fn.relu(z)

    def bn(self, name, a):
        if not self.spec.bn:
            return a
        w = a.shape[1]
        gamma = self.param(name + ".gamma", (w,))
        beta = self.param(name + ".beta", (w,))
        if self.register:
            self.register[1](name, w)
            rm, rv = torch.zeros(w), torch.ones(w)
        else:
            rm, rv = self.bufs[self.spec.bn_index[name]]
        return Fn.batch_norm(a, rm, rv, gamma, beta, training=self.train, momentum=f32(BN_MOMENTUM),
                             eps=f32(BN_EPS))

    def layer(self, name, x, out_w, G=1):
        return self.bn(name, self.act(name, self.linear(name, x, out_w, G)))

    def mlp(self, name, x, widths):
        for l, w in enumerate(widths):
            x = self.layer("%s.L%d" % (name, l), x, w)
        return x

    def experts(self, name, x, n, widths):
        """n expert MLPs side by side; returns the list of their (B, widths[-1]) outputs."""
        for l, w in enumerate(widths):
            x = self.layer("%s.L%d" % (name, l), x, n * w, 1 if l == 0 else n)
        w = widths[-1]
        return [x[:, e * w:(e + 1) * w] for e in range(n)]

    def gate_mix(self, name, x, ex):
        g = torch.softmax(self.linear(name, x, len(ex)), 1)
        out = g[:, 0:1] * ex[0]
        for e in range(1, len(ex)):
            out = out + g[:, e:e + 1] * ex[e]
        return out

    def tower(self, k, x):
        h = self.mlp("tower%d" % k, x, self.spec.H)
        return self.linear("tower%d.out" % k, h, 1)[:, 0]

    def logits(self, x):
        t, K, c = self.spec.fx["type"], self.spec.K, self.cfg
        if t == "mmoe":  # §4.5: shared experts, one gate per task
            ex = self.experts("experts", x, c["experts"], c["expert_hidden"])
            h = [self.gate_mix("gate%d" % k, x, ex) for k in range(K)]
            s = [self.tower(k, h[k]) for k in range(K)]
        elif t == "ple":  # §4.6: stacked CGC levels, one width per level, one-layer experts
            xt, xs = [x] * K, x
            L = len(c["expert_hidden"])
            for l, H in enumerate(c["expert_hidden"]):
                spec_ex = [self.experts("ple%d.task%d" % (l, k), xt[k], c["specific_experts"], [H])
                           for k in range(K)]
                sh = (self.experts("ple%d.shared" % l, xs, c["shared_experts"], [H])
                      if c["shared_experts"] > 0 else [])
                nt = [self.gate_mix("ple%d.gate%d" % (l, k), xt[k], spec_ex[k] + sh) for k in range(K)]
                if l < L - 1:  # the shared gate mixes every expert of the level
                    xs = self.gate_mix("ple%d.gate_shared" % l, xs, [e for k in range(K) for e in spec_ex[k]] + sh)
                xt = nt
            s = [self.tower(k, xt[k]) for k in range(K)]
        elif t == "aitm":  # §4.7: per-task towers; a child attends over [its q, info of its parent]
            H, z, s = self.spec.H[-1], [None] * K, [None] * K
            for k in self.spec.order:  # parents first, as the graph is built
                p = self.spec.parent[k]
                q = self.mlp("tower%d" % k, x, self.spec.H)
                if p < 0:
                    z[k] = q
                else:
                    info = Fn.relu(self.linear("info%d" % k, z[p], H))
                    z[k] = self.attn2("attn%d" % k, q, info)
                s[k] = self.linear("out%d" % k, z[k], 1)[:, 0]
        else:
            raise ValueError("no reference for model type " + t)
        return torch.stack(s, 1)

    def attn2(self, name, q, p):
        """AITM's attention over the two items u in {q, p}: Q, K, V = u Wq, u Wk, u Wv (no bias);
        weights softmax_u(<Q_u, K_u> / sqrt(H)); output sum_u w_u V_u."""
        H = q.shape[1]
        Wq, Wk, Wv = (self.param("%s.%s" % (name, w), (H, H), (H, H)) for w in ("Wq", "Wk", "Wv"))
        sc = torch.stack([((u @ Wq) * (u @ Wk)).sum(1) for u in (q, p)], 1) / np.sqrt(H)
        w = torch.softmax(sc, 1)
        return w[:, 0:1] * (q @ Wv) + w[:, 1:2] * (p @ Wv)


# ---- data ------------------------------------------------------------------------------------
def make_data(spec, rng):
    fx, K = spec.fx, spec.K
    d = {"cat": np.zeros((N_ROWS, spec.F), np.int32), "mv_off": {}, "mv_ids": {}}
    for f, (kind, vocab, used) in enumerate(fx["fields"]):
        if kind == "single":
            d["cat"][:, f] = rng.randint(0, used, N_ROWS)
        else:
            counts = rng.choice([0, 1, 2, 3, 4], N_ROWS, p=[0.2, 0.25, 0.25, 0.15, 0.15])
            counts[:2] = [0, 3]  # at least one empty and one 3-valued row
            off = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
            d["mv_off"][f] = off
            d["mv_ids"][f] = rng.randint(0, used, int(off[-1])).astype(np.int32)
    d["dense"] = rng.randn(N_ROWS, spec.D).astype(np.float32)
    # entire-space labels: a child is positive only if its parent is
    lab = np.zeros((N_ROWS, K), np.float32)
    for k in spec.order:
        p = spec.parent[k]
        pos = rng.rand(N_ROWS) < (0.45 if p < 0 else 0.6)
        lab[:, k] = pos * (lab[:, p] if p >= 0 else 1.0)
    d["labels"] = lab
    d["weight"] = rng.uniform(0.5, 2.0, N_ROWS).astype(np.float32)
    d["batch"] = rng.permutation(N_ROWS)[:BATCH].astype(np.int32)
    d["train_rows"] = np.stack([rng.permutation(N_ROWS)[:BATCH] for _ in range(STEPS)]).astype(np.int32)
    for k in range(K):
        assert lab[d["batch"], k].sum() >= 2, "too few positives; change the seed"
    return d


def init_state(spec, rng):
    P = np.zeros(spec.n_params, np.float32)
    for name, shape, o in spec.slab:
        n = int(np.prod(shape))
        kind = name.split(".")[-1]
        if name in spec.fans:  # zoo linear weights: Xavier-uniform over the whole linear
            fan_in, fan_out = spec.fans[name]
            lim = np.sqrt(6.0 / (fan_in + fan_out))
            v = rng.uniform(-lim, lim, n)
        elif kind == "W":
            fan_in, fan_out = (shape[0], spec.H[0]) if len(shape) == 2 else (shape[1], shape[2])
            lim = np.sqrt(6.0 / (fan_in + fan_out))
            v = rng.uniform(-lim, lim, n)
        elif name == "Wout":
            lim = np.sqrt(6.0 / (shape[1] + 1))
            v = rng.uniform(-lim, lim, n)
        elif name == "Wd":
            lim = np.sqrt(6.0 / (shape[0] + shape[1]))
            v = rng.uniform(-lim, lim, n)
        elif kind == "alpha":
            v = 0.25 + rng.uniform(-0.1, 0.1, n)
        elif kind == "gamma":
            v = 1.0 + rng.uniform(-0.2, 0.2, n)
        else:  # b, beta, bout, bd
            v = rng.uniform(-0.1, 0.1, n)
        P[o:o + n] = v
    emb = rng.uniform(-0.5, 0.5, (spec.emb_off[-1], spec.E)).astype(np.float32)
    bufs = []
    for w in spec.bn_sizes:
        bufs.append(rng.uniform(-0.1, 0.1, w))   # running mean
        bufs.append(rng.uniform(0.8, 1.5, w))    # running var
    buf = np.concatenate(bufs).astype(np.float32) if bufs else np.zeros(0, np.float32)
    return P, emb, buf


# ---- the model -------------------------------------------------------------------------------
def forward(spec, P, EMB, bufs, data, rows, train):
    """Returns logits S (B,K) f32, probs (B,K) f32, cond (B,K) f32, logp list (ESMM, f64).
    bufs: list of per-layer (run_mean, run_var) tensors, updated in place when train."""
    fx = spec.fx
    V = spec.views(P)
    B = len(rows)
    parts = []
    for f, (kind, vocab, used) in enumerate(fx["fields"]):
        off = spec.emb_off[f]
        if kind == "single":
            ids = torch.from_numpy(data["cat"][rows, f].astype(np.int64) + off)
            parts.append(Fn.embedding(ids, EMB, sparse=True))
        else:
            mo, mi = data["mv_off"][f], data["mv_ids"][f]
            ids, offsets = [], []
            for r in rows:
                offsets.append(len(ids))
                ids.extend(int(i) + off for i in mi[mo[r]:mo[r + 1]])
            parts.append(Fn.embedding_bag(torch.tensor(ids, dtype=torch.int64), EMB,
                                          torch.tensor(offsets, dtype=torch.int64), mode=kind,
                                          sparse=True))
    if spec.D:
        dense = torch.from_numpy(data["dense"][rows])
        parts.append(dense @ V["Wd"] + V["bd"] if spec.project else dense)
    x = torch.cat(parts, 1)
    K = spec.K
    if spec.zoo:
        S = ZooNet(spec, V, bufs, train).logits(x)
        cond = torch.sigmoid(S)
        return S, cond, cond, None
    towers = None
    for l in range(spec.L):
        H = spec.H[l]
        if l == 0:
            Z = x @ V["L0.W"] + V["L0.b"]
        else:
            W = V["L%d.W" % l]
            Z = torch.cat([towers[k] @ W[k] for k in range(K)], 1) + V["L%d.b" % l]
        A = Fn.prelu(Z, V["L%d.alpha" % l]) if spec.prelu else Fn.relu(Z)
        if spec.bn:
            rm, rv = bufs[l]
            A = Fn.batch_norm(A, rm, rv, V["L%d.gamma" % l], V["L%d.beta" % l], training=train,
                              momentum=f32(BN_MOMENTUM), eps=f32(BN_EPS))
        towers = list(A.split(H, 1))
        if spec.link_on(l):
            for k in spec.order:
                p = spec.parent[k]
                if p >= 0:
                    towers[k] = towers[k] + towers[p]
    Wout, bout = V["Wout"], V["bout"]
    s = [(towers[k] * Wout[k]).sum(1) + bout[k] for k in range(K)]
    if spec.res_logit:
        for k in spec.order:
            p = spec.parent[k]
            if p >= 0:
                s[k] = s[k] + s[p]
    S = torch.stack(s, 1)
    cond = torch.sigmoid(S)
    logp = None
    if spec.esmm:
        logp = [None] * K
        for k in spec.order:
            p = spec.parent[k]
            lp = Fn.logsigmoid(S[:, k].double())
            logp[k] = lp + logp[p] if p >= 0 else lp
        probs = torch.exp(torch.stack(logp, 1)).float()
    else:
        probs = cond
    return S, probs, cond, logp


def loss_fn(spec, S, logp, data, rows):
    """sum_k w_k * (1/B) sum_b rw_b * WBCE_k, in float64 (as rf_model_loss)."""
    t = torch.from_numpy(data["labels"][rows].astype(np.float64))
    rw = torch.from_numpy(data["weight"][rows].astype(np.float64))
    B, K = S.shape
    per = []
    for k in range(K):
        w = spec.pw[k]
        if spec.esmm:
            lp = logp[k]
            l1p = torch.clamp(torch.log(-torch.expm1(lp)), min=-100.0)
            lk = -(w * t[:, k] * lp + (1.0 - t[:, k]) * l1p)
        else:
            lk = Fn.binary_cross_entropy_with_logits(
                S[:, k].double(), t[:, k], pos_weight=torch.tensor(w, dtype=torch.float64),
                reduction="none")
        p = spec.parent[k]
        if spec.aitm_alpha is not None and p >= 0:
            # AITM's behavioural-expectation calibrator: the child's probability should not
            # exceed its parent's; attributed to the child task (and its loss weight)
            c = torch.sigmoid(S.double())
            lk = lk + spec.aitm_alpha * torch.relu(c[:, k] - c[:, p])
        per.append((lk * rw).sum() / B)
    per = torch.stack(per)
    return (torch.tensor(spec.tw, dtype=torch.float64) * per).sum(), per


def to_bufs(spec, buf):
    out, o = [], 0
    for w in spec.bn_sizes:
        out.append((buf[o:o + w].clone(), buf[o + w:o + 2 * w].clone()))
        o += 2 * w
    return out


def flat_bufs(bufs):
    if not bufs:
        return np.zeros(0, np.float32)
    return torch.cat([t for pair in bufs for t in pair]).numpy().copy()


def hyper(fx):
    lr = f32(fx["lr"])
    elr = f32(fx["emb_lr"]) or lr
    return dict(lr=lr, elr=elr, b1=f32(BETA1), b2=f32(BETA2), eps=f32(EPS), wd=f32(fx["wd"]),
                ewd=f32(fx["emb_wd"]))


class LazyAdam:
    """Row-sparse Adam written out (src/nn/optim.c): torch.optim.SparseAdam plus the optional L2
    on touched rows (SparseAdam has no weight decay)."""

    def __init__(self, EMB, hp):
        self.EMB, self.hp, self.t = EMB, hp, 0
        self.m = torch.zeros_like(EMB)
        self.v = torch.zeros_like(EMB)

    @torch.no_grad()
    def step(self):
        hp = self.hp
        self.t += 1
        g = self.EMB.grad.coalesce()
        idx = g.indices()[0]
        gv = g.values() + hp["ewd"] * self.EMB[idx]
        m = self.m[idx] * hp["b1"] + (1 - hp["b1"]) * gv
        v = self.v[idx] * hp["b2"] + (1 - hp["b2"]) * gv * gv
        self.m[idx], self.v[idx] = m, v
        step = hp["elr"] * np.sqrt(1 - hp["b2"] ** self.t) / (1 - hp["b1"] ** self.t)
        self.EMB[idx] -= step * m / (v.sqrt() + hp["eps"])


def train(spec, P0, E0, B0, data, torch_sparse):
    hp = hyper(spec.fx)
    P = torch.from_numpy(P0.copy()).requires_grad_()
    EMB = torch.from_numpy(E0.copy()).requires_grad_()
    bufs = to_bufs(spec, torch.from_numpy(B0.copy()))
    opt = torch.optim.Adam([P], lr=hp["lr"], betas=(hp["b1"], hp["b2"]), eps=hp["eps"],
                           weight_decay=hp["wd"])
    if torch_sparse:
        assert hp["ewd"] == 0
        eopt = torch.optim.SparseAdam([EMB], lr=hp["elr"], betas=(hp["b1"], hp["b2"]), eps=hp["eps"])
    else:
        eopt = LazyAdam(EMB, hp)
    losses = []
    for s in range(STEPS):
        rows = data["train_rows"][s]
        P.grad = None
        EMB.grad = None
        S, _, _, logp = forward(spec, P, EMB, bufs, data, rows, True)
        loss, _ = loss_fn(spec, S, logp, data, rows)
        loss.backward()
        losses.append(loss.item())
        opt.step()
        eopt.step()
    with torch.no_grad():
        S, probs, _, _ = forward(spec, P, EMB, bufs, data, data["batch"], False)
    return (np.array(losses), P.detach().numpy().copy(), EMB.detach().numpy().copy(),
            flat_bufs(bufs), S.numpy().copy(), probs.numpy().copy())


# ---- file format -----------------------------------------------------------------------------
def write_fixture(path, tensors):
    """magic "RFREF001", u32 version, u32 count, then per tensor: u32 name length, name,
    u32 dtype (1 f32, 2 f64, 3 i32, 4 u8), u32 ndim, u32 dims[ndim], data (little-endian)."""
    with open(path, "wb") as fh:
        fh.write(MAGIC)
        fh.write(struct.pack("<II", VERSION, len(tensors)))
        for name, dt, arr in tensors:
            arr = np.ascontiguousarray(arr, dtype=NP_DT[dt])
            nb = name.encode()
            fh.write(struct.pack("<I", len(nb)) + nb)
            fh.write(struct.pack("<II", dt, arr.ndim))
            fh.write(struct.pack("<%dI" % arr.ndim, *arr.shape))
            fh.write(arr.tobytes())


def build(fx, outdir):
    spec = Spec(fx)
    rng = np.random.RandomState(fx["seed"])
    data = make_data(spec, rng)
    P0, E0, B0 = init_state(spec, rng)
    yaml = config_yaml(fx)

    # one training-mode forward + loss + backward on the check batch
    P = torch.from_numpy(P0.copy()).requires_grad_()
    EMB = torch.from_numpy(E0.copy()).requires_grad_()
    bufs = to_bufs(spec, torch.from_numpy(B0.copy()))
    rows = data["batch"]
    S, probs, cond, logp = forward(spec, P, EMB, bufs, data, rows, True)
    loss, per = loss_fn(spec, S, logp, data, rows)
    loss.backward()
    if spec.aitm_alpha is not None:  # the calibrator must be active on some rows, not all
        c = torch.sigmoid(S.detach())
        for k, p in enumerate(spec.parent):
            if p >= 0:
                n = int((c[:, k] > c[:, p]).sum())
                assert 0 < n < len(rows), "calibrator of task %d active on %d rows; change the seed" % (k, n)
    eg = EMB.grad.coalesce()
    touched = np.zeros(spec.emb_off[-1], np.int32)
    touched[eg.indices()[0].numpy()] = 1
    assert touched.sum() < len(touched), "every row touched: the lazy update is not exercised"

    # 10 Adam steps; cross-check the written-out lazy Adam against torch.optim.SparseAdam
    curve = train(spec, P0, E0, B0, data, torch_sparse=False)
    if f32(fx["emb_wd"]) == 0:
        ref = train(spec, P0, E0, B0, data, torch_sparse=True)
        for a, b in zip(curve, ref):
            assert np.allclose(a, b, rtol=1e-5, atol=1e-6), "LazyAdam != torch.optim.SparseAdam"
    losses, P1, E1, B1, eval_logits, eval_probs = curve

    t = [("config", DT_U8, np.frombuffer(yaml.encode(), np.uint8)),
         ("fields.vocab", DT_I32, spec.vocab),
         ("fields.pooling", DT_I32, [{"single": -1, "sum": 0, "mean": 1}[f[0]] for f in fx["fields"]]),
         ("data.cat", DT_I32, data["cat"])]
    for f in sorted(data["mv_off"]):
        t.append(("data.mv_off.%d" % f, DT_I32, data["mv_off"][f]))
        t.append(("data.mv_ids.%d" % f, DT_I32, data["mv_ids"][f]))
    t += [("data.dense", DT_F32, data["dense"]),
          ("data.labels", DT_F32, data["labels"]),
          ("data.weight", DT_F32, data["weight"]),
          ("batch.rows", DT_I32, data["batch"]),
          ("train.rows", DT_I32, data["train_rows"]),
          ("init.params", DT_F32, P0),
          ("init.emb", DT_F32, E0),
          ("init.buffers", DT_F32, B0),
          ("fwd.logits", DT_F32, S.detach().numpy()),
          ("fwd.probs", DT_F32, probs.detach().numpy()),
          ("fwd.cond", DT_F32, cond.detach().numpy()),
          ("fwd.loss", DT_F64, [loss.item()]),
          ("fwd.per_task", DT_F64, per.detach().numpy()),
          ("fwd.buffers", DT_F32, flat_bufs(bufs)),
          ("grad.params", DT_F32, P.grad.numpy()),
          ("grad.emb", DT_F32, eg.to_dense().numpy()),
          ("grad.touched", DT_I32, touched),
          ("train.loss", DT_F64, losses),
          ("final.params", DT_F32, P1),
          ("final.emb", DT_F32, E1),
          ("final.buffers", DT_F32, B1),
          ("final.eval_logits", DT_F32, eval_logits),
          ("final.eval_probs", DT_F32, eval_probs)]
    if spec.zoo:  # the op graph's slab has no named views in C: name its segments here
        t += [("slab.names", DT_U8, np.frombuffer("\n".join(nm for nm, _, _ in spec.slab).encode(), np.uint8)),
              ("slab.offsets", DT_I32, [o for _, _, o in spec.slab] + [spec.n_params])]
    path = os.path.join(outdir, fx["name"] + ".bin")
    write_fixture(path, t)
    print("%s: %d params, %d emb rows, %d buffers, loss %.6f -> %.6f, %d bytes"
          % (path, spec.n_params, spec.emb_off[-1], spec.n_buffers, losses[0], losses[-1],
             os.path.getsize(path)))


def main():
    outdir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "fixtures")
    os.makedirs(outdir, exist_ok=True)
    torch.manual_seed(0)
    torch.set_num_threads(1)
    for fx in FIXTURES:
        build(fx, outdir)


if __name__ == "__main__":
    main()
