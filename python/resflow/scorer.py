"""The scorer of serve.h: a model file opened read-only, raw candidates in, scores out."""
import ctypes as C
import os
import threading

import numpy as np

from ._closing import Closing
from ._lib import call, lib, precision_of
from ._threads import library_call


class _Features(C.Structure):
    _fields_ = [("n", C.c_int), ("names", C.POINTER(C.c_char_p)), ("values", C.POINTER(C.c_char_p))]


class _Request(C.Structure):
    _fields_ = [("context", _Features), ("n_candidates", C.c_int), ("candidates", C.POINTER(_Features))]


class _Result(C.Structure):
    _fields_ = [("n", C.c_int), ("K", C.c_int), ("probs", C.POINTER(C.c_float)), ("cond", C.POINTER(C.c_float)),
                ("score", C.POINTER(C.c_float)), ("fused", C.c_int), ("score_name", C.c_char_p),
                ("expected", C.POINTER(C.c_float)), ("order", C.POINTER(C.c_int))]


class _Opts(C.Structure):
    _fields_ = [("max_candidates", C.c_int), ("threads", C.c_int), ("index", C.c_char_p), ("max_k", C.c_int),
                ("max_shortlist", C.c_int), ("precision", C.c_int)]


class _TopkOpts(C.Structure):
    _fields_ = [("quantized", C.c_int), ("shortlist", C.c_int)]


class _TopkResult(C.Structure):
    _fields_ = [("n", C.c_int), ("K", C.c_int), ("item", C.POINTER(C.c_uint32)), ("id", C.POINTER(C.c_char_p)),
                ("score", C.POINTER(C.c_float)), ("probs", C.POINTER(C.c_float)), ("fused", C.c_int),
                ("score_name", C.c_char_p)]


lib.rf_scorer_open.argtypes = [C.c_char_p, C.POINTER(_Opts), C.POINTER(C.c_void_p), lib.rf_model_open.argtypes[-1]]
lib.rf_score.restype = C.c_int
lib.rf_score.argtypes = [C.c_void_p, C.POINTER(_Request), C.POINTER(_Result), lib.rf_model_open.argtypes[-1]]
lib.rf_scorer_tasks.restype = C.c_int
lib.rf_scorer_tasks.argtypes = [C.c_void_p, C.POINTER(C.POINTER(C.c_char_p))]
lib.rf_scorer_score_name.restype = C.c_char_p
lib.rf_scorer_score_name.argtypes = [C.c_void_p]
lib.rf_topk.restype = C.c_int
lib.rf_topk.argtypes = [C.c_void_p, C.POINTER(_Features), C.c_int, C.POINTER(_TopkOpts), C.POINTER(_TopkResult),
                        lib.rf_model_open.argtypes[-1]]
lib.rf_scorer_index.restype = C.c_void_p
lib.rf_scorer_index.argtypes = [C.c_void_p]


def _features(d):
    items = [(k, v) for k, v in d.items()]
    names = (C.c_char_p * max(len(items), 1))(*[str(k).encode() for k, _ in items])
    values = (C.c_char_p * max(len(items), 1))(*[None if v is None else str(v).encode() for _, v in items])
    return _Features(len(items), names, values), (names, values)


class Scorer(Closing):
    """Scores requests as ``resflow serve`` does (serve.h): one context (dict column -> value)
    shared by every candidate (dicts), values as text or numbers. The scores are those of
    ``resflow predict`` bit for bit. With ``index`` (an item index built from this twin-tower
    model by ``resflow index``), ``topk`` finds the best items of the index for a context, as
    ``/v1/topk`` of ``resflow serve --index`` does.

    A Scorer has one scratch: its calls from several Python threads take turns (a lock); open one
    Scorer per thread to score in parallel. ``threads`` (OpenMP threads per request, default 1):
    with more than 1 a request waits until no other library call runs (_threads.py). ``dtype``
    "bf16" (any model) or "int8" (a tower model) scores in that precision, as ``resflow serve --precision`` (the
    scores are then those of ``Model.predict(dtype=...)``)."""

    def __init__(self, path, max_candidates=1000, threads=1, index=None, max_k=0, max_shortlist=0, dtype="fp32"):
        h = C.c_void_p()
        self.threads = int(threads)
        prec = precision_of(dtype)
        self._opts = _Opts(max_candidates, self.threads, None if index is None else os.fspath(index).encode(),
                           max_k, max_shortlist, prec)
        call(lib.rf_scorer_open, os.fspath(path).encode(), C.byref(self._opts), C.byref(h))
        self._s = h.value
        self._lock = threading.Lock()
        self._ctx = lib.rf_score_ctx_create(self._s)
        if not self._ctx:
            lib.rf_scorer_close(self._s)
            self._s = None
            raise MemoryError("resflow: out of memory")
        names = C.POINTER(C.c_char_p)()
        K = lib.rf_scorer_tasks(self._s, C.byref(names))
        self.tasks = [names[k].decode() for k in range(K)]
        self.score_name = lib.rf_scorer_score_name(self._s).decode()

    def score(self, candidates, context=None):
        """Score candidates (a list of dicts, or a DataFrame: one row per candidate) under a
        context (dict). Returns a dict: one float32 array per task, 'score' (the ranking score),
        'expected' (regression models) and 'order' (candidate indices by score, descending)."""
        if hasattr(candidates, "to_dict"):
            candidates = candidates.to_dict("records")
        keep = []
        ctx, k = _features(context or {})
        keep.append(k)
        arr = (_Features * max(len(candidates), 1))()
        for i, c in enumerate(candidates):
            arr[i], k = _features(c)
            keep.append(k)
        req = _Request(ctx, len(candidates), arr)
        res = _Result()
        with self._lock, library_call(self.threads, downgrade=False):
            self._check()
            call(lib.rf_score, self._ctx, C.byref(req), C.byref(res))
            return self._score_out(res)

    def _score_out(self, res):
        n, K = res.n, res.K
        P = np.ctypeslib.as_array(res.probs, (n * K,)).reshape(n, K).copy() if n else np.empty((0, K), np.float32)
        out = {t: P[:, j] for j, t in enumerate(self.tasks)}
        out["score"] = np.ctypeslib.as_array(res.score, (n,)).copy() if n else np.empty(0, np.float32)
        if res.expected:
            out["expected"] = np.ctypeslib.as_array(res.expected, (n,)).copy() if n else np.empty(0, np.float32)
        out["order"] = np.ctypeslib.as_array(res.order, (n,)).copy() if n else np.empty(0, np.int32)
        return out

    def topk(self, context=None, k=10, quantized=False, shortlist=0, as_frame=True):
        """The k best items of the index (``Scorer(path, index=...)``) for one context (a dict of
        the user/query/context columns; item-side columns are refused), by the ranking score of
        the per-task probabilities. ``quantized``: the index's 8-bit copy scores every item and the
        best ``shortlist`` (0 = max(10 k, 1000)) are re-ranked exactly. Returns a DataFrame
        (as_frame) or a dict of numpy arrays, best first: 'id' (the item ids), 'position' (in the
        index), 'score', and one float32 column per task."""
        ctx, _keep = _features(context or {})
        res = _TopkResult()
        with self._lock, library_call(self.threads, downgrade=False):
            self._check()
            call(lib.rf_topk, self._ctx, C.byref(ctx), int(k), C.byref(_TopkOpts(int(bool(quantized)), int(shortlist))),
                 C.byref(res))
            n, K = res.n, res.K
            out = {"id": np.array([res.id[i].decode() for i in range(n)], dtype=object),
                   "position": np.ctypeslib.as_array(res.item, (n,)).copy() if n else np.empty(0, np.uint32),
                   "score": np.ctypeslib.as_array(res.score, (n,)).copy() if n else np.empty(0, np.float32)}
            P = np.ctypeslib.as_array(res.probs, (n * K,)).reshape(n, K).copy() if n else np.empty((0, K), np.float32)
        for j, t in enumerate(self.tasks):
            out[t] = P[:, j]
        if as_frame:
            import pandas as pd
            return pd.DataFrame(out)
        return out

    def _check(self):
        if not getattr(self, "_ctx", None):
            raise ValueError("resflow: the scorer is closed")

    def close(self):
        lock = getattr(self, "_lock", None)
        if lock is not None:
            lock.acquire()
        try:
            if getattr(self, "_ctx", None):
                lib.rf_score_ctx_free(self._ctx)
                self._ctx = None
            if getattr(self, "_s", None):
                lib.rf_scorer_close(self._s)
                self._s = None
        finally:
            if lock is not None:
                lock.release()

