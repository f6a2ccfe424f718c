"""A trained model (a model file loaded into memory): predict, evaluate, save."""
import ctypes as C
import json
import math
import os

import numpy as np

from ._closing import Closing
from ._lib import EvalOpts, call, lib, precision_of, take_string
from ._threads import library_call
from .frame import columns_of


def _num(x):
    return None if (x is None or math.isnan(x)) else float(x)


class Model(Closing):
    """A loaded model file. ``Model.load(path)``; ``model.save(path)``; ``model.predict(data)``;
    ``model.evaluate(data)``. Read-only once loaded: several threads may predict with one model at
    once (ctypes releases the GIL during the library's calls). A call runs with several OpenMP
    threads only while no other library call runs; calls that overlap run with one thread each
    (the library's contract, _threads.py), with the same results."""

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

    def predict(self, data=None, as_frame=True, threads=0, skip_bad_rows=False, dtype="fp32"):
        """Scores of every row of data (a DataFrame, a dict of numpy arrays, a file path, or None
        for the model's own test rows): one float32 column per task (entire-space probabilities),
        'score' (the stored fusion formula, when the model has one) and 'expected' (E(v), or the
        traditional head's output, for a regression model) - the columns of ``resflow predict``.
        A pandas DataFrame (as_frame) or a dict of numpy arrays. dtype "bf16" computes the model's
        GEMMs in bfloat16 with fp32 sums (``resflow predict --precision bf16``: about twice as fast
        on a CPU with AVX512-BF16, scores within bf16 rounding of fp32's), "int8" a tower model's
        (resflow, nse, esmm) in int8 (``--precision int8``: weights per column, activations per
        row, on a CPU with AVX512-VNNI; AUCs within 0.002 of fp32's); either is an error on a CPU
        without the instructions, int8 also for the zoo models."""
        prec = precision_of(dtype)
        ds = self._dataset(data, False, skip_bad_rows)
        try:
            n, K = lib.rf_dataset_rows(ds), len(self.tasks)
            P = np.empty((n, K), np.float32)
            S = np.empty(n, np.float32) if self.fusion else None
            EV = np.empty(n, np.float32) if self.regression else None
            fp = C.POINTER(C.c_float)

            def ptr(a):
                return a.ctypes.data_as(fp) if a is not None else None
            with library_call(int(threads)) as nt:
                call(lib.rf_model_predict_all, self._h, ds, nt, prec, ptr(P), None, ptr(S), ptr(EV))
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

    def evaluate(self, data=None, threads=0, skip_bad_rows=False, k=None, label=None, weight=None,
                 weight_by=None, fusion=(), oracle=True, precision=17):
        """What ``resflow eval -m MODEL --json`` prints, as a dict, on data with labels: None (the
        model's own test rows), a file path, or a DataFrame / dict with the model's label columns
        (``model.labels``). Per task AUC, logloss, calibration, conditional AUC; the loss;
        regression errors; the simulator's oracle AUCs; and when the rows have a group key (the
        configuration's ``data.group``; files and the model's own rows, not frames) "ranking": WR@K
        and its variants, Recall@K, NDCG@K, List AUC and GAUC of every score, formula and task.
        The options are eval's: ``k`` (cut-offs, default [5, 10]), ``label``, ``weight``,
        ``weight_by`` (a list or "a,b"), ``fusion`` (formulas), ``oracle=False`` (--no-oracle).
        Numbers have ``precision`` significant digits (17: the exact doubles; 6: as the CLI
        prints them, so the dict equals ``json.loads`` of its output)."""
        o = EvalOpts()
        cuts = [int(x) for x in ([k] if isinstance(k, int) else (k or []))]
        if len(cuts) > len(o.cut):
            raise ValueError("resflow: at most %d cut-offs" % len(o.cut))
        fusion = [fusion] if isinstance(fusion, str) else list(fusion)
        if len(fusion) > len(o.fusions):
            raise ValueError("resflow: at most %d formulas" % len(o.fusions))
        if not isinstance(weight_by, (str, type(None))):
            weight_by = ",".join(weight_by)
        o.n_cuts = len(cuts)
        for i, c in enumerate(cuts):
            o.cut[i] = c
        keep = [None if v is None else str(v).encode() for v in (label, weight, weight_by)] + \
            [str(f).encode() for f in fusion]
        o.label, o.weight, o.weight_by = keep[:3]
        for i, f in enumerate(keep[3:]):
            o.fusions[i] = f
        o.n_fusions = len(fusion)
        o.no_oracle = 0 if oracle else 1
        ds = self._dataset(data, True, skip_bad_rows)
        rep = C.c_void_p()
        try:
            with library_call(int(threads)) as nt:
                o.threads = nt
                call(lib.rf_eval_report_run, self._h, ds, C.byref(o), C.byref(rep))
            text = take_string(lib.rf_eval_report_json(rep, self._h, int(precision)))
        finally:
            lib.rf_eval_report_free(rep)
            lib.rf_dataset_free(ds)
        return json.loads(text)

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
