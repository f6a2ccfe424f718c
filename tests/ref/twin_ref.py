#!/usr/bin/python3
"""twin_ref.py - PyTorch reference of the twin-tower model (model.type twin, src/nn/twin.c).

Writes tests/fixtures/twin_*.bin in torch_ref.py's format (tests/ref/README.md), which
tests/test_reference.c replays against the C engine like the model-zoo fixtures: one
training-mode forward + loss + backward, 10 Adam steps, an eval-mode forward.

    /usr/bin/python3 tests/ref/twin_ref.py tests/fixtures

It reuses torch_ref.py (data, initial state, loss, optimizers, file format) and only adds the
network, as a ZooNet whose parameters are registered in the order src/nn/twin.c builds its op
graph: the user side, then the item side; per side, hidden layer l of the K task towers (layer
0 one linear of width K*H_0 on the side's columns, deeper layers K blocks), PReLU slopes, BN;
then the top, K blocks H_{L-1} -> d + 1 (the vector and the bias column).

    u_k, ub_k = user tower k;  v_k, vb_k = item tower k   (behind hidden layer l with bit l of
                 res_layers: O_k += O_parent(k), parents first)
    before link: u_k += u_parent(k), v_k += v_parent(k)
    z_k = <u_k, v_k> + ub_k + vb_k;  after link: z_k += z_parent(k)
"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_ref as R  # noqa: E402

LINKS = {"none": 0, "before": 1, "after": 2, "both": 3}
FIELDS = [("single", 40, 38), ("single", 7, 7), ("mean", 12, 11), ("sum", 9, 9)]

# item side: fields f1 and f3, dense d1; user side: f0, f2 (multi-valued) and d0
FIXTURES = [
    dict(name="twin_both_3task", type="twin", E=4, hidden=[6, 4], act="prelu", bn=True,
         res_layers=[0, 1], res_logit=True, dense_mode="concat", D=2,
         zoo=dict(twin_dim=3, twin_link="both", item_fields=["f1", "f3"], item_dense=["d1"]),
         fields=FIELDS,
         tasks=[("click", None, 1.0, 1.0), ("cart", "click", 1.0, 3.0), ("order", "cart", 2.0, 8.0)],
         lr="0.01", emb_lr="0", wd="0", emb_wd="0", seed=1311),
    dict(name="twin_before_2task", type="twin", E=4, hidden=[5], act="relu", bn=False,
         res_layers=None, res_logit=False, dense_mode="concat", D=2,
         zoo=dict(twin_dim=4, twin_link="before", item_fields=["f1", "f3"], item_dense=["d1"]),
         fields=FIELDS,
         tasks=[("ctr", None, 1.0, 1.0), ("ctcvr", "ctr", 2.0, 5.0)],
         lr="0.01", emb_lr="0.02", wd="0.001", emb_wd="0", seed=1302),
]

_base_yaml = R.config_yaml


def twin_yaml(fx):
    """The fixture's configuration; the dense columns are named so item_dense resolves."""
    return _base_yaml(fx) + "data:\n  dense: [%s]\n" % ", ".join("d%d" % j for j in range(fx["D"]))


class TwinNet(R.ZooNet):
    def logits(self, x):
        spec, c = self.spec, self.cfg
        K, E, D, F, d = spec.K, spec.E, spec.D, spec.F, int(c["twin_dim"])
        link = LINKS[c["twin_link"]]
        item_f = [int(n[1:]) for n in c["item_fields"]]
        item_d = [int(n[1:]) for n in c["item_dense"]]
        sides = []
        for s in (0, 1):
            cols = [f * E + j for f in range(F) if (f in item_f) == bool(s) for j in range(E)]
            cols += [F * E + j for j in range(D) if (j in item_d) == bool(s)]
            h = x[:, cols]
            for l, H in enumerate(spec.H):
                h = self.layer("side%d.L%d" % (s, l), h, K * H, 1 if l == 0 else K)
                if (spec.res_mask >> l) & 1:
                    blocks = list(h.split(H, 1))
                    for k in spec.order:
                        p = spec.parent[k]
                        if p >= 0:
                            blocks[k] = blocks[k] + blocks[p]
                    h = torch.cat(blocks, 1)
            t = self.linear("side%d.top" % s, h, K * (d + 1), K)
            vec = [t[:, k * (d + 1):k * (d + 1) + d] for k in range(K)]
            bias = [t[:, k * (d + 1) + d] for k in range(K)]
            if link & 1:
                for k in spec.order:
                    p = spec.parent[k]
                    if p >= 0:
                        vec[k] = vec[k] + vec[p]
            sides.append((vec, bias))
        (u, ub), (v, vb) = sides
        z = [(u[k] * v[k]).sum(1) + ub[k] + vb[k] for k in range(K)]
        if link & 2:
            for k in spec.order:
                p = spec.parent[k]
                if p >= 0:
                    z[k] = z[k] + z[p]
        return torch.stack(z, 1)


def main():
    outdir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "fixtures")
    os.makedirs(outdir, exist_ok=True)
    R.ZOO_TYPES = R.ZOO_TYPES + ("twin",)
    R.ZooNet = TwinNet
    R.config_yaml = twin_yaml
    torch.manual_seed(0)
    torch.set_num_threads(2)
    for fx in FIXTURES:
        R.build(fx, outdir)


if __name__ == "__main__":
    main()
