"""The scorer of serve.h: a model file opened read-only, raw candidates in, scores out."""
import ctypes as C
import os

import numpy as np

from ._closing import Closing
from ._lib import call, lib


class _Features(C.Structure):
    _fields_ = [("n", C.c_int), ("names", C.POINTER(C.c_char_p)), ("values", C.POINTER(C.c_char_p))]


class _Request(C.Structure):
    _fields_ = [("context", _Features), ("n_candidates", C.c_int), ("candidates", C.POINTER(_Features))]


class _Result(C.Structure):
    _fields_ = [("n", C.c_int), ("K", C.c_int), ("probs", C.POINTER(C.c_float)), ("cond", C.POINTER(C.c_float)),
                ("score", C.POINTER(C.c_float)), ("fused", C.c_int), ("score_name", C.c_char_p),
                ("expected", C.POINTER(C.c_float)), ("order", C.POINTER(C.c_int))]


class _Opts(C.Structure):
    _fields_ = [("max_candidates", C.c_int), ("threads", C.c_int)]


lib.rf_scorer_open.argtypes = [C.c_char_p, C.POINTER(_Opts), C.POINTER(C.c_void_p), lib.rf_model_open.argtypes[-1]]
lib.rf_score.restype = C.c_int
lib.rf_score.argtypes = [C.c_void_p, C.POINTER(_Request), C.POINTER(_Result), lib.rf_model_open.argtypes[-1]]
lib.rf_scorer_tasks.restype = C.c_int
lib.rf_scorer_tasks.argtypes = [C.c_void_p, C.POINTER(C.POINTER(C.c_char_p))]
lib.rf_scorer_score_name.restype = C.c_char_p
lib.rf_scorer_score_name.argtypes = [C.c_void_p]


def _features(d):
    items = [(k, v) for k, v in d.items()]
    names = (C.c_char_p * max(len(items), 1))(*[str(k).encode() for k, _ in items])
    values = (C.c_char_p * max(len(items), 1))(*[None if v is None else str(v).encode() for _, v in items])
    return _Features(len(items), names, values), (names, values)


class Scorer(Closing):
    """Scores requests as ``resflow serve`` does (serve.h): one context (dict column -> value)
    shared by every candidate (dicts), values as text or numbers. The scores are those of
    ``resflow predict`` bit for bit. One scorer per thread (its scratch is not shared); a Scorer
    can be opened several times on one file."""

    def __init__(self, path, max_candidates=1000, threads=1):
        h = C.c_void_p()
        call(lib.rf_scorer_open, os.fspath(path).encode(), C.byref(_Opts(max_candidates, threads)), C.byref(h))
        self._s = h.value
        self._ctx = lib.rf_score_ctx_create(self._s)
        if not self._ctx:
            lib.rf_scorer_close(self._s)
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
        call(lib.rf_score, self._ctx, C.byref(req), C.byref(res))
        n, K = res.n, res.K
        P = np.ctypeslib.as_array(res.probs, (n * K,)).reshape(n, K).copy() if n else np.empty((0, K), np.float32)
        out = {t: P[:, j] for j, t in enumerate(self.tasks)}
        out["score"] = np.ctypeslib.as_array(res.score, (n,)).copy() if n else np.empty(0, np.float32)
        if res.expected:
            out["expected"] = np.ctypeslib.as_array(res.expected, (n,)).copy() if n else np.empty(0, np.float32)
        out["order"] = np.ctypeslib.as_array(res.order, (n,)).copy() if n else np.empty(0, np.int32)
        return out

    def topk(self, *args, **kwargs):
        """The k best candidates of a large item set (the twin-tower index). Not available yet:
        another part of resflow adds it; it will live here, beside score()."""
        raise NotImplementedError("resflow: Scorer.topk is not available in this version (see docs/python.md)")

    def close(self):
        if getattr(self, "_ctx", None):
            lib.rf_score_ctx_free(self._ctx)
            self._ctx = None
        if getattr(self, "_s", None):
            lib.rf_scorer_close(self._s)
            self._s = None

