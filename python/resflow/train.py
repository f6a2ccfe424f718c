"""Training: ``resflow.train(config) -> Model``, as ``resflow train`` does."""
import ctypes as C
import logging
import os
import re
import shutil
import tempfile

from ._lib import LOG_FN, EvalResult, TrainSummary, call, lib
from ._threads import library_call
from .config import as_config
from .model import Model

log = logging.getLogger("resflow")

_EPOCH = re.compile(r"^epoch (\d+)(?: step (\d+))? valid \| (.*?)( \*)? \(([\d.]+) s\)$")


def parse_valid_line(line):
    """A validation line of the training log ("epoch 2 valid | ctr auc 0.5301 | ... | loss 0.49")
    as a dict {"epoch": 2, "ctr_auc": 0.5301, ..., "loss": 0.49, "improved": True}, else None."""
    m = _EPOCH.match(line)
    if not m:
        return None
    rec = {"epoch": int(m.group(1)), "improved": bool(m.group(4))}
    for part in m.group(3).split(" | "):
        words = part.rsplit(" ", 1)
        if len(words) != 2:
            continue
        key = words[0].replace(" ", "_")
        try:
            rec[key] = float(words[1])
        except ValueError:
            rec[key] = float("nan")
    return rec


def simulate(config=None, overrides=None, path=None):
    """The simulator's log for a configuration's synth.* keys (``{"synth.rows": 50000}``), written
    as CSV to path (as ``resflow synth -o path``) and returned as a DataFrame (pandas). Without
    path, the file is temporary."""
    import pandas as pd
    cfg = as_config(config, overrides)
    tmp = None
    if path is None:
        tmp = tempfile.mkdtemp(prefix="resflow-")
        path = os.path.join(tmp, "log.csv")
    try:
        call(lib.rf_config_simulate, cfg._h, os.fspath(path).encode())
        return pd.read_csv(path)
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)


def train(config=None, overrides=None, out=None, callback=None, quiet=False):
    """Train a model from a configuration (a :class:`Config`, a YAML path, a dict or None for the
    defaults) with overrides (``{"train.epochs": 3}``), exactly as ``resflow train -c ... --set
    ... -o out``: the same data loading, early stopping and model file. Returns the :class:`Model`
    (loaded from the written file), with ``model.history`` (one dict per validation: epoch, each
    task's AUC, loss), ``model.test_metrics`` (``evaluate``'s dict on the test rows, or None) and
    ``model.summary``.

    Progress lines go to ``callback(line)`` when given, and to the logger "resflow" (INFO; lines
    starting with "warning: " at WARNING, whatever quiet says). ``out``: the model file to keep;
    without it the file is written to a temporary directory and removed once loaded."""
    cfg = as_config(config, overrides)
    history = []

    def on_line(_ud, raw):
        line = raw.decode("utf-8", "replace")
        rec = parse_valid_line(line)
        if rec:
            history.append(rec)
        if line.startswith("warning: "):
            log.warning("%s", line)
        elif not quiet:
            log.info("%s", line)
        if callback and not quiet:
            callback(line)

    cb = LOG_FN(on_line)
    tmp = None
    if out is None:
        tmp = tempfile.mkdtemp(prefix="resflow-")
        path = os.path.join(tmp, "model.resflow")
    else:
        path = os.fspath(out)
    try:
        summary, test = TrainSummary(), EvalResult()
        with library_call(0, downgrade=False):  # train.threads: alone (see _threads.py)
            call(lib.rf_train_to_file, cfg._h, path.encode(), cb, None, C.byref(summary), C.byref(test))
        model = Model.load(path)
        if tmp:
            model.path = None
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    model.history = history
    model.test_metrics = model._metrics(test) if test.n > 0 else None
    model.summary = {"epochs_run": summary.epochs_run, "steps": summary.steps, "best_epoch": summary.best_epoch,
                     "best_score": summary.best_score, "seconds": summary.seconds,
                     "samples_per_sec": summary.samples_per_sec, "stopped_early": bool(summary.stopped_early),
                     "best_valid": model._metrics(summary.best_valid)}
    return model
