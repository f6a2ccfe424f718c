"""A trained model (a model file loaded into memory): predict, evaluate, save."""
import ctypes as C
import math
import os

import numpy as np

from ._closing import Closing
from ._lib import EvalResult, call, lib, take_string
from .frame import columns_of


def _num(x):
    return None if (x is None or math.isnan(x)) else float(x)


class Model(Closing):
    """A loaded model file. ``Model.load(path)``; ``model.save(path)``; ``model.predict(data)``;
    ``model.evaluate(data)``. Read-only once loaded: several threads may predict with one model at
    once (ctypes releases the GIL during the library's calls)."""

    def __init__(self, handle, path=None):
        self._h = handle
        self.path = path
        self.history = []        # per validation: {"epoch", "<task>_auc"..., "loss"} (after train)
        self.test_metrics = None  # metrics on the test rows (after train), as evaluate() returns
        self.summary = None       # training summary (after train)
        K = lib.rf_model_ntasks(handle)
        self.tasks, self.parents = [], []
        for k in range(K):
            p = C.c_int(-1)
            self.tasks.append(lib.rf_model_task(handle, k, C.byref(p)).decode())
            self.parents.append(p.value)
        self.columns = [lib.rf_model_column(handle, i).decode() for i in range(lib.rf_model_ncolumns(handle))]
        self.labels = [lib.rf_model_label(handle, j).decode() for j in range(lib.rf_model_nlabels(handle))]
        trad, thr, nthr = C.c_int(0), C.POINTER(C.c_float)(), C.c_int(0)
        target = lib.rf_model_regression(handle, C.byref(trad), C.byref(thr), C.byref(nthr)).decode()
        self.regression = None
        if target:
            self.regression = {"target": target, "head": "traditional" if trad.value else "progressive",
                               "thresholds": [float(thr[i]) for i in range(nthr.value)]}
        buf = C.create_string_buffer(1024)
        self.fusion = buf.value.decode() if lib.rf_model_fusion_spec(handle, buf, len(buf)) else None

    # ---- files ---------------------------------------------------------------------------------
    @classmethod
    def load(cls, path):
        """Load and verify a model file (``resflow.FormatError`` when it is corrupt)."""
        path = os.fspath(path)
        h = C.c_void_p()
        call(lib.rf_model_open, path.encode(), C.byref(h))
        return cls(h.value, path)

    def save(self, path):
        """Write the model file to path (atomically: a temporary file, then a rename)."""
        self._check()
        call(lib.rf_model_write, self._h, os.fspath(path).encode())

    def config_yaml(self):
        """The resolved configuration the model was trained with (YAML)."""
        self._check()
        return take_string(lib.rf_config_dump(lib.rf_model_config(self._h)))

    def close(self):
        h, self._h = getattr(self, "_h", None), None
        if h:
            lib.rf_model_close(h)


    def __repr__(self):
        return "resflow.Model(%s, tasks=%s)" % (repr(self.path) if self.path else "", self.tasks)

    def _check(self):
        if not self._h:
            raise ValueError("resflow: the model is closed")

    # ---- data ----------------------------------------------------------------------------------
    def _dataset(self, data, with_labels, skip_bad_rows=False):
        """An rf_dataset handle for data: None (the model's own test rows), a file path, a pandas
        DataFrame or a dict of arrays."""
        self._check()
        ds = C.c_void_p()
        if data is None or isinstance(data, (str, os.PathLike)):
            path = None if data is None else os.fspath(data).encode()
            bad = C.c_size_t(0)
            call(lib.rf_model_data, self._h, path, int(with_labels), int(skip_bad_rows), C.byref(ds), C.byref(bad))
        else:
            cols = columns_of(data, self.columns + (self.labels if with_labels else []))
            call(lib.rf_frame_dataset, self._h, cols.array, cols.count, cols.n, int(with_labels), C.byref(ds))
        return ds.value

    def predict(self, data=None, as_frame=True, threads=0, skip_bad_rows=False):
        """Scores of every row of data (a DataFrame, a dict of numpy arrays, a file path, or None
        for the model's own test rows): one float32 column per task (entire-space probabilities),
        'score' (the stored fusion formula, when the model has one) and 'expected' (E(v), or the
        traditional head's output, for a regression model) - the columns of ``resflow predict``.
        A pandas DataFrame (as_frame) or a dict of numpy arrays."""
        ds = self._dataset(data, False, skip_bad_rows)
        try:
            n, K = lib.rf_dataset_rows(ds), len(self.tasks)
            P = np.empty((n, K), np.float32)
            S = np.empty(n, np.float32) if self.fusion else None
            EV = np.empty(n, np.float32) if self.regression else None
            fp = C.POINTER(C.c_float)

            def ptr(a):
                return a.ctypes.data_as(fp) if a is not None else None
            call(lib.rf_model_predict_all, self._h, ds, int(threads), ptr(P), None, ptr(S), ptr(EV))
        finally:
            lib.rf_dataset_free(ds)
        out = {t: P[:, k] for k, t in enumerate(self.tasks)}
        if S is not None:
            out["score"] = S
        if EV is not None:
            out["expected"] = EV
        if as_frame:
            import pandas as pd
            return pd.DataFrame(out)
        return out

    def evaluate(self, data=None, threads=0, skip_bad_rows=False):
        """The metrics of ``resflow eval --json`` (its "tasks", "loss", "regression" and "rows"
        parts) on data with labels: None (the model's own test rows), a file path, or a DataFrame /
        dict with the model's label columns (``model.labels``)."""
        ds = self._dataset(data, True, skip_bad_rows)
        try:
            r = EvalResult()
            call(lib.rf_evaluate, lib.rf_model_of(self._h), ds, int(threads), C.byref(r))
        finally:
            lib.rf_dataset_free(ds)
        return self._metrics(r)

    def _metrics(self, r):
        tasks = {}
        for k, name in enumerate(self.tasks):
            t = r.task[k]
            d = {"auc": _num(t.auc), "logloss": _num(t.logloss), "mean_pred": _num(t.mean_pred),
                 "observed": _num(t.mean_label), "calibration": _num(t.calib), "n": int(t.n),
                 "positives": int(t.positives)}
            p = self.parents[k]
            if p >= 0:
                d.update({"parent": self.tasks[p], "conditional_auc": _num(r.cond[k].auc),
                          "conditional_n": int(r.cond[k].n), "increase_share": _num(r.increase[k])})
            tasks[name] = d
        out = {"tasks": tasks, "loss": _num(r.loss)}
        if self.regression:
            g = dict(self.regression)
            g.update({"mse": _num(r.reg.mse), "rmse": _num(r.reg.rmse), "mae": _num(r.reg.mae), "n": int(r.reg.n)})
            out["regression"] = g
        out["rows"] = int(r.n)
        return out
