"""The Python package against the CLI: same predictions byte for byte, same metrics, errors as
exceptions with file:line:column, arrays passed in place, the GIL released in long calls."""
import json
import os
import threading
import time

import pytest

from conftest import CLI, CONFIG, REPO, cli, np, pd, resflow


def tsv(pred):
    """A prediction as `resflow predict` writes it."""
    cols = list(pred.columns)
    lines = ["\t".join(["row"] + cols)]
    arrs = [pred[c].to_numpy() for c in cols]
    for i in range(len(pred)):
        lines.append("\t".join([str(i)] + ["%.9g" % float(a[i]) for a in arrs]))
    return "\n".join(lines) + "\n"


def same_text(a, b):
    """a == b, reporting the first differing line (pytest's diff of long texts takes minutes)."""
    if a == b:
        return True
    la, lb = a.split("\n"), b.split("\n")
    for i, (x, y) in enumerate(zip(la, lb)):
        if x != y:
            raise AssertionError("line %d differs:\n  %s\n  %s" % (i, x, y))
    raise AssertionError("%d lines vs %d" % (len(la), len(lb)))


def test_train_progress_history_and_test_metrics(trained):
    model, path, lines = trained
    assert model.tasks == ["ctr", "ctcvr"] and model.parents == [-1, 0]
    assert any(l.startswith("epoch 1 valid") for l in lines)
    assert [h["epoch"] for h in model.history] == [1, 2]
    assert 0 <= model.history[-1]["ctr_auc"] <= 1 and model.history[-1]["loss"] > 0
    assert model.test_metrics["rows"] == 600 and set(model.test_metrics["tasks"]) == {"ctr", "ctcvr"}
    assert os.path.getsize(path) > 0 and model.path == path


def test_checkpoint_every_resumed_by_the_cli(workdir, log_csv):
    """train.checkpoint_every: resflow.train writes OUT.ckpt as `resflow train` does (removed when
    the model is saved); one taken in the middle of the run, continued by `resflow train
    --resume`, ends with the model resflow.train wrote, byte for byte."""
    cfg = dict(CONFIG, data=dict(CONFIG["data"], source=log_csv))
    cfg["train"] = dict(CONFIG["train"], epochs=3, batch_size=64, log_every=5, checkpoint_every=3)
    out, saved = str(workdir / "ck.model"), str(workdir / "saved.ckpt")
    seen = []

    def on_line(line):
        if not seen and os.path.exists(out + ".ckpt") and line.startswith("epoch 2"):
            with open(out + ".ckpt", "rb") as f:  # mid-run: as a run killed now would leave it
                seen.append(f.read())

    resflow.train(cfg, out=out, callback=on_line)
    assert seen and seen[0][:8] == b"RESFLOWC", "no checkpoint during the run"
    assert not os.path.exists(out + ".ckpt"), "the checkpoint was left after the model was saved"
    with open(saved, "wb") as f:
        f.write(seen[0])
    cli("train", "-q", "--resume", saved, "-o", str(workdir / "resumed.model"))
    assert open(str(workdir / "resumed.model"), "rb").read() == open(out, "rb").read()
    with pytest.raises(resflow.ResflowError, match="checkpoint_every"):
        resflow.train(cfg, overrides={"train.checkpoint_every": "5x"}, out=out)


def test_predict_file_equals_cli_byte_for_byte(trained, log_csv, workdir):
    model, path, _ = trained
    out = str(workdir / "cli.tsv")
    cli("predict", "-q", "-m", path, "-d", log_csv, "-o", out)
    cli_text = open(out).read()
    assert same_text(tsv(model.predict(log_csv)), cli_text)
    # the same values from a DataFrame (read by pandas) and from a dict of numpy arrays
    df = pd.read_csv(log_csv, keep_default_na=False, na_values=[""])
    assert same_text(tsv(model.predict(df)), cli_text)
    d = {c: df[c].to_numpy() for c in df.columns}
    assert same_text(tsv(model.predict(d)), cli_text)
    # the model's own test rows (no data): as `resflow predict -m` without --data
    own = str(workdir / "own.tsv")
    cli("predict", "-q", "-m", path, "-o", own)
    assert same_text(tsv(model.predict()), open(own).read())


@pytest.mark.parametrize("dtype,flag,isa", [("bf16", "avx512_bf16", "AVX512-BF16"), ("int8", "avx512_vnni", "AVX512-VNNI")])
def test_predict_low_precision_like_cli(trained, log_csv, workdir, dtype, flag, isa):
    """dtype="bf16" / "int8" is `resflow predict --precision bf16|int8`: the same bytes; close to
    fp32's; the Scorer in that dtype scores as predict does."""
    model, path, _ = trained
    with pytest.raises(ValueError, match="fp32"):
        model.predict(log_csv, dtype="fp16")
    if flag not in open("/proc/cpuinfo").read():
        with pytest.raises(resflow.UsageError, match=isa):
            model.predict(log_csv, dtype=dtype)
        return
    out = str(workdir / (dtype + ".tsv"))
    cli("predict", "-q", "-m", path, "-d", log_csv, "-o", out, "--precision", dtype)
    p = model.predict(log_csv, dtype=dtype)
    assert same_text(tsv(p), open(out).read())
    f = model.predict(log_csv)
    d = np.abs(p[model.tasks].to_numpy() - f[model.tasks].to_numpy()).max()
    assert 0 < d < 0.02
    df = pd.read_csv(log_csv, dtype=str, keep_default_na=False).iloc[:50]
    with resflow.Scorer(path, dtype=dtype) as s:
        r = s.score(df[model.columns].to_dict("records"))
    assert np.array_equal(r["ctr"], p["ctr"].to_numpy()[:50]) and np.array_equal(r["ctcvr"], p["ctcvr"].to_numpy()[:50])


def test_a_column_read_twice_feeds_both(workdir, log_csv):
    """A column that is both a bucketized field and a dense feature (as files feed both)."""
    from conftest import CONFIG
    cfg = dict(CONFIG, data=dict(CONFIG["data"], source=log_csv,
                                 categorical=["user", "price:bucket:8"], dense=["price", "age"]))
    out = str(workdir / "twice.model")
    m = resflow.train(cfg, {"train.epochs": 1}, out=out, quiet=True)
    assert m.columns == ["user", "price", "price", "age"]
    cli_out = str(workdir / "twice.tsv")
    cli("predict", "-q", "-m", out, "-d", log_csv, "-o", cli_out)
    df = pd.read_csv(log_csv)
    assert same_text(tsv(m.predict(df)), open(cli_out).read())
    d = {"user": df["user"].to_numpy(), "price": df["price"].astype(str).to_numpy(), "age": df["age"].to_numpy()}
    assert same_text(tsv(m.predict(d)), open(cli_out).read())


def test_numeric_arrays_are_passed_in_place():
    from resflow.frame import Columns
    a = np.arange(10, dtype=np.float64)
    m = np.zeros((10, 3), np.float32)  # a strided column of a 2-D array
    df = pd.DataFrame({"x": np.linspace(0, 1, 10), "y": np.arange(10)})
    cols = Columns([("a", a), ("m", m[:, 1]), ("x", df["x"]), ("y", df["y"])])
    assert cols.array[0].data == a.ctypes.data and cols.array[0].stride == 8
    assert cols.array[1].data == m[:, 1].ctypes.data and cols.array[1].stride == 12
    assert np.shares_memory(df["x"].to_numpy(), df["x"].values)
    assert cols.array[2].data == df["x"].to_numpy().ctypes.data


def test_save_load_round_trip(trained, log_csv, workdir):
    model, path, _ = trained
    copy = str(workdir / "copy.model")
    model.save(copy)
    assert open(copy, "rb").read() == open(path, "rb").read()
    with resflow.Model.load(copy) as m2:
        assert same_text(tsv(m2.predict(log_csv)), tsv(model.predict(log_csv)))
        assert "normalize: standardize" in m2.config_yaml()


def test_errors_carry_message_and_location(trained, workdir):
    model, path, _ = trained
    with pytest.raises(resflow.UsageError, match="unknown key"):
        resflow.Config({}, {"train.nope": 1})
    bad_yaml = workdir / "bad.yaml"
    bad_yaml.write_text("train:\n  epochs: 2\n  lrr: 0.1\n")
    with pytest.raises(resflow.UsageError) as e:
        resflow.Config(str(bad_yaml))
    assert e.value.file.endswith("bad.yaml") and e.value.line == 3 and e.value.col > 0
    assert str(e.value).startswith(str(bad_yaml) + ":3:")
    bad = workdir / "bad.csv"
    bad.write_text("user,item,tags,pb,price,age,device,group\nu1,3,t1,2.5,2.5,40,ios,1\nu2,4,t2,2.5,2.5,forty,ios,1\n")
    with pytest.raises(resflow.DataError) as e:
        model.predict(str(bad))
    assert e.value.file == str(bad) and e.value.line == 3 and e.value.col > 0 and "forty" in e.value.msg
    with pytest.raises(resflow.DataError, match="row 1: invalid number 'forty' in column 'age'"):
        model.predict({"user": ["u1", "u2"], "age": ["40", "forty"]})
    with pytest.raises(resflow.UsageError, match="label column 'click' is missing"):
        model.evaluate({"user": ["u1"]})
    broken = workdir / "broken.model"
    data = bytearray(open(path, "rb").read())
    data[200] ^= 0xFF
    broken.write_bytes(bytes(data))
    with pytest.raises(resflow.FormatError):
        resflow.Model.load(str(broken))
    with pytest.raises(resflow.ResflowIOError):
        resflow.Model.load(str(workdir / "missing.model"))


def test_config_dict_file_and_overrides(workdir):
    c = resflow.Config({"model": {"type": "nse", "hidden": [32, 16]}}, {"train.lr": 0.005, "model.emb_dim": 4})
    y = c.to_yaml()
    assert "type: nse" in y and "emb_dim: 4" in y and "lr: 0.005" in y
    f = workdir / "c.yaml"
    f.write_text(y)
    assert resflow.Config(str(f)).to_yaml() == y


def test_long_calls_release_the_gil_and_threads_agree(trained, log_csv):
    model, _, _ = trained
    df = pd.read_csv(log_csv)
    reps = 100  # 300k rows of numeric columns only: nearly all the time is spent in the library
    d = {c: np.tile(df[c].to_numpy(), reps) for c in ("item", "pb", "price", "age")}
    ref = model.predict({c: v[:3000] for c, v in d.items()})
    results, windows, ticks = [None, None], [], []

    def work(i):
        t0 = time.perf_counter()
        results[i] = model.predict(d)
        windows.append((t0, time.perf_counter()))

    ts = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in ts:
        t.start()
    while any(t.is_alive() for t in ts):  # runs only while the library does not hold the GIL
        ticks.append(time.perf_counter())
        time.sleep(0.001)
    for t in ts:
        t.join()
    inside = [t for t in ticks if any(a < t < b for a, b in windows)]
    assert len(inside) >= 10, "the main thread could not run during the library's calls (%d ticks)" % len(inside)
    assert results[0].equals(results[1])
    assert results[0].iloc[:3000].equals(ref)


def test_scorer_equals_predict(trained, log_csv):
    model, path, _ = trained
    df = pd.read_csv(log_csv, dtype=str, keep_default_na=False).iloc[:50]
    with resflow.Scorer(path) as s:
        r = s.score(df[model.columns].to_dict("records"))
        with pytest.raises(resflow.UsageError, match="index"):
            s.topk({}, k=5)  # opened without an item index
    p = model.predict(log_csv).iloc[:50]
    assert np.array_equal(r["ctr"], p["ctr"].to_numpy()) and np.array_equal(r["ctcvr"], p["ctcvr"].to_numpy())
    assert np.array_equal(r["order"], np.argsort(-r["score"], kind="stable"))


def test_regression_model_predicts_expected_value_like_cli(workdir):
    out = str(workdir / "rating.model")
    m = resflow.train(None, {"synth.preset": "rating", "synth.rows": 4000, "synth.users": 500, "synth.items": 300,
                             "train.epochs": 1, "model.hidden": [8], "train.batch_size": 128,
                             "train.monitor": "mse", "regression.target": "rating",
                             "regression.thresholds": [1, 2, 3, 4, 5], "train.threads": 2}, out=out, quiet=True)
    assert m.regression["head"] == "progressive" and len(m.regression["thresholds"]) >= 2
    p = m.predict()
    assert "expected" in p.columns
    own = str(workdir / "rating.tsv")
    cli("predict", "-q", "-m", out, "-o", own)
    assert same_text(tsv(p), open(own).read())
    ev = m.evaluate()
    assert ev["regression"]["n"] == ev["rows"] > 0 and ev["regression"]["rmse"] > 0
