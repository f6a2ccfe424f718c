#!/usr/bin/python3
"""balance_ref.py - PyTorch references for train.balance (tests/test_balance_methods.c).

Writes tests/fixtures/balance_ref.txt: gradient sets (K tasks x P coordinates, float64) and,
computed independently of resflow's C code,
  pub    - the per-task Adam updates u_k (torch.optim.Adam stepped on a copy, one task's gradient
           at a time, from the given moments), the Nash-bargaining weights alpha (alpha_i (M alpha)_i
           = 1, M = U U^T; minimised by L-BFGS over log alpha), the rescaled weights (sum = K) and
           PUB's joint update sum_k alpha_k u_k;
  pcgrad - PCGrad's shared gradient (the authors' projection loop on the vectors; K = 2, where the
           random order does not matter);
  mgda   - the minimum-norm point of the convex hull of the gradients (projected gradient descent
           on the simplex, 20000 iterations).
Usage: /usr/bin/python3 tests/ref/balance_ref.py tests/fixtures   (deterministic output)
"""
import sys

import torch

torch.set_num_threads(2)
torch.manual_seed(14)
D = torch.float64


def adam_update(p0, g, m, v, t, b1=0.9, b2=0.999, eps=1e-8):
    """the update direction torch.optim.Adam takes at step t from moments m, v with gradient g"""
    p = torch.nn.Parameter(p0.clone())
    opt = torch.optim.Adam([p], lr=1.0, betas=(b1, b2), eps=eps)
    opt.state[p] = {"step": torch.tensor(float(t - 1)), "exp_avg": m.clone(), "exp_avg_sq": v.clone()}
    p.grad = g.clone()
    opt.step()
    return (p0 - p.detach())  # lr = 1


def nash_weights(M):
    K = M.shape[0]
    s = M.diagonal().max()
    G = M / s
    z = torch.zeros(K, dtype=D, requires_grad=True)
    opt = torch.optim.LBFGS([z], lr=1, max_iter=500, tolerance_grad=1e-15, tolerance_change=1e-18,
                            line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        a = z.exp()
        f = 0.5 * a @ G @ a - z.sum()
        f.backward()
        return f

    for _ in range(5):
        opt.step(closure)
    return z.detach().exp() / s.sqrt()


def pcgrad(g):
    out = []
    for i in range(g.shape[0]):
        gi = g[i].clone()
        for j in range(g.shape[0]):
            if j == i:
                continue
            d = gi @ g[j]
            if d < 0:
                gi = gi - d / (g[j] @ g[j]) * g[j]
        out.append(gi)
    return torch.stack(out).sum(0)


def proj_simplex(w):
    u, _ = torch.sort(w, descending=True)
    css = u.cumsum(0) - 1
    idx = torch.arange(1, w.numel() + 1, dtype=D)
    rho = (u - css / idx > 0).nonzero().max()
    return (w - css[rho] / (rho + 1)).clamp(min=0)


def min_norm(g):
    K = g.shape[0]
    M = g @ g.T
    w = torch.full((K,), 1.0 / K, dtype=D)
    L = torch.linalg.eigvalsh(M).max().item() * 2 + 1e-300
    for _ in range(20000):
        w = proj_simplex(w - (2 * M @ w) / L)
    return w @ g


def vec(x):
    return " ".join("%.17g" % float(v) for v in x)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures"
    lines = []
    # PUB: K = 2 and 3, fresh and warm moments, one ill-conditioned (nearly parallel updates)
    cases = [(2, 40, 1, 0.0), (2, 40, 5, 0.0), (3, 60, 3, 0.0), (2, 40, 4, 1e-3)]
    for K, P, t, near in cases:
        p0 = torch.randn(P, dtype=D)
        g = torch.randn(K, P, dtype=D) * torch.tensor([1.0, 0.1, 3.0][:K], dtype=D)[:, None]
        if near:
            g[1] = 0.3 * g[0] + near * torch.randn(P, dtype=D)
        m = torch.zeros(P, dtype=D) if t == 1 else 0.01 * torch.randn(P, dtype=D)
        v = torch.zeros(P, dtype=D) if t == 1 else 1e-4 * torch.rand(P, dtype=D)
        U = torch.stack([adam_update(p0, g[k], m, v, t) for k in range(K)])
        M = U @ U.T
        a = nash_weights(M)
        an = a * K / a.sum()
        lines.append("pub %d %d %d" % (K, P, t))
        lines.append(vec(m))
        lines.append(vec(v))
        for k in range(K):
            lines.append(vec(g[k]))
        lines.append(vec(a))
        lines.append(vec(an))
        lines.append(vec(an @ U))
    # PCGrad and MGDA: conflicting, aligned, one dominant, random
    sets = []
    P = 30
    base = torch.randn(P, dtype=D)
    sets.append(torch.stack([base, -0.5 * base + torch.randn(P, dtype=D)]))   # conflicting
    sets.append(torch.stack([base, 2 * base + 0.1 * torch.randn(P, dtype=D)]))  # aligned
    sets.append(torch.stack([100 * base, torch.randn(P, dtype=D)]))          # one dominant
    sets.append(torch.randn(2, P, dtype=D))
    for g in sets:
        lines.append("pcgrad 2 %d" % P)
        for k in range(2):
            lines.append(vec(g[k]))
        lines.append(vec(pcgrad(g)))
    sets.append(torch.randn(3, P, dtype=D))
    sets.append(torch.stack([base, -base + 0.01 * torch.randn(P, dtype=D), torch.randn(P, dtype=D)]))
    for g in sets:
        K = g.shape[0]
        lines.append("mgda %d %d" % (K, P))
        for k in range(K):
            lines.append(vec(g[k]))
        lines.append(vec(min_norm(g)))
    with open(out + "/balance_ref.txt", "w") as f:
        f.write("\n".join(lines) + "\nend\n")


if __name__ == "__main__":
    main()
