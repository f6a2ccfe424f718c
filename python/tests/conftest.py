"""Shared fixtures: the repository's paths, the CLI, a small generated log and a model trained on
it (with every kind of encoder: vocabulary, hash, bucket, multi-valued, integer ids, normalised
dense columns with a fill for missing values)."""
import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "python"))
BUILD = os.environ.get("BUILD", "build")
CLI = os.path.join(REPO, BUILD, "resflow")
SHARED = os.path.join(REPO, "..", "shared", "data")

np = pytest.importorskip("numpy", reason="python3-numpy is not installed")
pd = pytest.importorskip("pandas", reason="python3-pandas is not installed")

import resflow  # noqa: E402


def cli(*args, **kw):
    return subprocess.run([CLI] + list(args), cwd=kw.get("cwd", REPO), capture_output=True, text=True,
                          check=kw.get("check", True))


def write_log(path, n=3000, seed=7):
    """A log with string, multi-valued, integer and numeric columns, some values missing."""
    rng = np.random.default_rng(seed)
    user = rng.integers(0, 200, n)
    item = rng.integers(0, 500, n)
    price = np.round(rng.lognormal(3, 1, n), 3)
    age = rng.integers(15, 70, n).astype(float)
    tags = ["|".join("t%d" % t for t in rng.choice(12, rng.integers(0, 4), replace=False)) for _ in range(n)]
    logit = -2.5 + 0.02 * (user % 7) + 0.8 * np.sin(item) - 0.1 * np.log(price) + 0.3 * (np.array([len(t) for t in tags]) > 3)
    click = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    order = click * (rng.random(n) < 0.3 + 0.2 * np.cos(item)).astype(int)
    df = pd.DataFrame({"user": ["u%d" % u for u in user], "item": item, "tags": tags, "price": price, "pb": price,
                       "age": age, "device": rng.choice(["ios", "android", "web"], n), "click": click,
                       "order": order, "group": np.arange(n) // 10})
    df.loc[rng.random(n) < 0.05, "age"] = np.nan  # missing -> the fill (the training mean)
    df.to_csv(path, index=False)
    return df


CONFIG = {
    "data": {"categorical": ["user", "item:hash:1000", "tags:|:mean", "pb:bucket:8", "device"],
             "dense": ["price", "age"], "normalize": "standardize", "fill_na": "mean",
             "group": "group", "valid_frac": 0.2, "test_frac": 0.2},
    "tasks": [{"name": "ctr", "label": "click"}, {"name": "ctcvr", "label": "order", "parent": "ctr"}],
    "model": {"type": "resflow", "emb_dim": 8, "hidden": [16, 8]},
    "train": {"epochs": 2, "batch_size": 128, "threads": 2},
}


@pytest.fixture(scope="session")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("resflow-py")


@pytest.fixture(scope="session")
def log_csv(workdir):
    path = str(workdir / "log.csv")
    write_log(path)
    return path


@pytest.fixture(scope="session")
def trained(workdir, log_csv):
    cfg = dict(CONFIG, data=dict(CONFIG["data"], source=log_csv))
    out = str(workdir / "m.model")
    lines = []
    model = resflow.train(cfg, out=out, callback=lines.append)
    return model, out, lines
