"""Model.evaluate against `resflow eval --json` (exact: the same dict), Scorer.topk against the
scores of every indexed item, and the concurrency contract (4 Python threads predicting at once
get the sequential predictions byte for byte)."""
import json
import threading

import pytest

from conftest import cli, np, pd, resflow


def rounded(x, digits=6):
    """x with every float as the CLI prints it (jansson's %.6g)."""
    if isinstance(x, dict):
        return {k: rounded(v, digits) for k, v in x.items()}
    if isinstance(x, list):
        return [rounded(v, digits) for v in x]
    if isinstance(x, float):
        return float("%.*g" % (digits, x))
    return x


EVAL_CASES = [
    [],
    ["--k", "3,7,20", "--fusion", "add:ctr=1,ctcvr=4", "--fusion", "mul:ctr=0.5,ctcvr|ctr=1.5"],
    ["--weight-by", "user,item", "--weight", "order", "--label", "click"],
]


def kwargs_of(args):
    kw, i = {"fusion": []}, 0
    while i < len(args):
        name, val = args[i][2:].replace("-", "_"), args[i + 1]
        if name == "k":
            kw["k"] = [int(x) for x in val.split(",")]
        elif name == "fusion":
            kw["fusion"].append(val)
        else:
            kw[name] = val
        i += 2
    return kw


@pytest.mark.parametrize("args", EVAL_CASES)
def test_evaluate_equals_cli_json(trained, log_csv, args):
    model, path, _ = trained
    j = json.loads(cli("eval", "-q", "-m", path, "-d", log_csv, "--json", *args).stdout)
    assert "ranking" in j and j["rows"] == 3000  # the log has a group column: ranking metrics
    kw = kwargs_of(args)
    assert model.evaluate(log_csv, precision=6, **kw) == j  # the same dict, every number equal
    full = model.evaluate(log_csv, **kw)                     # the exact doubles, rounded as printed
    assert rounded(full) == j and full != j


def test_evaluate_frame_and_errors(trained, log_csv):
    model, path, _ = trained
    j = json.loads(cli("eval", "-q", "-m", path, "-d", log_csv, "--json").stdout)
    got = model.evaluate(pd.read_csv(log_csv), precision=6)  # a frame has no group key: no ranking
    assert got == {k: v for k, v in j.items() if k != "ranking"}
    with pytest.raises(resflow.UsageError, match="--label: no task or label named 'nope'"):
        model.evaluate(log_csv, label="nope")
    with pytest.raises(resflow.UsageError, match="--weight-by: no categorical field 'nope'"):
        model.evaluate(log_csv, weight_by=["nope"])
    with pytest.raises(resflow.UsageError):
        model.evaluate(log_csv, fusion="add:zz=1")


def test_evaluate_simulator_model_with_oracle(workdir):
    out = str(workdir / "synth.model")
    m = resflow.train(None, {"synth.rows": 6000, "train.epochs": 1, "model.hidden": [8], "train.batch_size": 256,
                             "train.threads": 2}, out=out, quiet=True)
    j = json.loads(cli("eval", "-q", "-m", out, "--json").stdout)
    assert "oracle_auc" in j and any(s["oracle"] for s in j["ranking"]["scores"])
    assert m.evaluate(precision=6) == j
    j2 = json.loads(cli("eval", "-q", "-m", out, "--json", "--no-oracle").stdout)
    assert "oracle_auc" not in j2 and m.evaluate(precision=6, oracle=False) == j2


TWIN = {"synth.preset": "search", "synth.rows": 6000, "train.epochs": 1, "model.hidden": [16], "train.batch_size": 256,
        "model.type": "twin", "model.twin_dim": 8, "train.threads": 2,
        "model.item_fields": ["item_id", "item_cat", "brand", "shop", "price_bucket"],
        "model.item_dense": ["log_price", "item_hist_ctr"]}
ITEM_COLS = ["item_id", "item_cat", "brand", "shop", "price_bucket", "log_price", "item_hist_ctr"]
CTX_COLS = ["user_id", "user_segment", "user_power", "city_tier", "query_id", "query_cat", "position", "hour", "device"]


@pytest.fixture(scope="module")
def twin(workdir):
    model_path, log_path, index_path = (str(workdir / n) for n in ("twin.model", "items.csv", "items.rfi"))
    resflow.train(None, TWIN, out=model_path, quiet=True)
    log = resflow.simulate(overrides={"synth.preset": "search", "synth.rows": 2000, "synth.seed": 11}, path=log_path)
    cli("index", "-q", "-m", model_path, "--items", log_path, "--dedupe", "-o", index_path)
    items = pd.read_csv(log_path, dtype=str, keep_default_na=False).drop_duplicates("item_id")
    return model_path, index_path, log, items


def test_topk_equals_the_best_scores_of_every_item(twin):
    model_path, index_path, log, items = twin
    with resflow.Scorer(model_path, index=index_path, max_candidates=len(items), max_k=50,
                        max_shortlist=len(items)) as s:
        for row in (0, 7):
            ctx = {c: str(log[c].iloc[row]) for c in CTX_COLS}
            top = s.topk(ctx, k=10)
            assert list(top.columns) == ["id", "position", "score", "ctr", "ctcvr"] and len(top) == 10
            assert (np.diff(top["score"].to_numpy()) <= 0).all()
            every = s.score(items[ITEM_COLS].to_dict("records"), ctx)  # rf_score of every indexed item
            score_of = dict(zip(items["item_id"], every["score"]))
            probs_of = {t: dict(zip(items["item_id"], every[t])) for t in s.tasks}
            tenth = every["score"][every["order"][9]]
            for _, r in top.iterrows():
                assert r["score"] == pytest.approx(score_of[r["id"]], rel=1e-5, abs=1e-9)
                for t in s.tasks:
                    assert r[t] == pytest.approx(probs_of[t][r["id"]], rel=1e-5, abs=1e-9)
                assert r["score"] >= tenth - 1e-6 * abs(tenth)
            # the best items in the same order as the exact scores (up to float ties)
            best = [items["item_id"].iloc[i] for i in every["order"][:10]]
            assert [score_of[i] for i in top["id"]] == pytest.approx([score_of[i] for i in best], rel=1e-5)
            # positions: the same ids at the same positions whatever the mode; quantized with a
            # shortlist holding every item gives the exact answer
            q = s.topk(ctx, k=10, quantized=True, shortlist=len(items), as_frame=False)
            assert list(q["id"]) == list(top["id"]) and np.array_equal(q["position"], top["position"].to_numpy())
            assert np.array_equal(q["score"], top["score"].to_numpy())
        everything = s.topk({}, k=50, as_frame=False)
        assert len(everything["id"]) == min(50, len(items)) and len(set(everything["position"])) == len(everything["id"])
        with pytest.raises(resflow.UsageError, match="item_id"):
            s.topk({"item_id": "5"}, k=3)
        with pytest.raises(resflow.UsageError):
            s.topk(ctx, k=51)
        with pytest.raises(resflow.DataError, match="abc"):
            s.topk({"city_tier": "abc"}, k=3)


def test_concurrent_predictions_equal_sequential_byte_for_byte(trained, log_csv):
    model, _, _ = trained
    df = pd.read_csv(log_csv)
    frames = [pd.concat([df] * 10, ignore_index=True).sample(frac=1, random_state=s).reset_index(drop=True)
              for s in range(4)]
    seq = [model.predict(f) for f in frames]  # threads=0: the model's train.threads (2), one call at a time
    rounds, results, errors = 3, {}, []

    def work(i):
        try:
            for r in range(rounds):
                results[(i, r)] = model.predict(frames[i])
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    ts = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors
    for (i, r), got in results.items():
        for c in seq[i].columns:
            assert got[c].to_numpy().tobytes() == seq[i][c].to_numpy().tobytes(), (i, r, c)


def test_the_gate_runs_multithreaded_calls_alone():
    from resflow._threads import library_call
    inside, release, got = threading.Event(), threading.Event(), []

    def holder(threads):
        with library_call(threads) as n:
            got.append(("holder", n))
            inside.set()
            release.wait(10)

    def second():
        with library_call(0) as n:
            got.append(("second", n))

    def both(holder_threads, wait):
        """holder(holder_threads) inside the gate, then second(); second's thread after `wait` s."""
        inside.clear(), release.clear(), got.clear()
        t = threading.Thread(target=holder, args=(holder_threads,))
        t.start()
        assert inside.wait(10)
        u = threading.Thread(target=second)
        u.start()
        u.join(wait)
        alive = u.is_alive()
        release.set()
        t.join(10)
        u.join(10)
        return alive

    # a multi-threaded call (alone: it keeps its threads) makes the next call wait, then run with 1
    assert both(0, 0.3) and got == [("holder", 0), ("second", 1)]
    # beside a one-thread call, a call that wants several threads runs at once with one
    assert not both(1, 10) and got == [("holder", 1), ("second", 1)]
