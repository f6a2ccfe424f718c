"""Loading libresflow.so with ctypes and declaring the functions the package calls.

The library is looked up in this order: the environment variable RESFLOW_LIB (a path), the path
recorded when the package was built (``_libpath.py``, written by ``make python`` /
``make install-python``), then the system's search (``ctypes.util.find_library``).

ctypes releases the GIL around every call into a ``CDLL`` library, so long calls (training,
prediction, evaluation, loading data) let other Python threads run; the log callback takes the
GIL again while it runs.
"""
import ctypes as C
import ctypes.util
import os

from .errors import error_class

RF_NAME_MAX = 64
RF_MAX_TASKS = 16


class Error(C.Structure):
    _fields_ = [("code", C.c_int), ("file", C.c_char * 512), ("line", C.c_long), ("col", C.c_long),
                ("msg", C.c_char * 1024)]


class TaskMetrics(C.Structure):
    _fields_ = [("auc", C.c_double), ("logloss", C.c_double), ("mean_pred", C.c_double),
                ("mean_label", C.c_double), ("calib", C.c_double), ("n", C.c_size_t),
                ("positives", C.c_size_t)]


class RegMetrics(C.Structure):
    _fields_ = [("mse", C.c_double), ("rmse", C.c_double), ("mae", C.c_double), ("n", C.c_size_t)]


class EvalResult(C.Structure):
    _fields_ = [("task", TaskMetrics * RF_MAX_TASKS), ("cond", TaskMetrics * RF_MAX_TASKS),
                ("increase", C.c_double * RF_MAX_TASKS), ("loss", C.c_double), ("n", C.c_size_t),
                ("reg", RegMetrics)]


class EvalOpts(C.Structure):
    _fields_ = [("n_cuts", C.c_int), ("cut", C.c_int * 8), ("label", C.c_char_p), ("weight", C.c_char_p),
                ("weight_by", C.c_char_p), ("fusions", C.c_char_p * 16), ("n_fusions", C.c_int),
                ("no_oracle", C.c_int), ("threads", C.c_int)]


class TrainSummary(C.Structure):
    _fields_ = [("epochs_run", C.c_int), ("steps", C.c_long), ("best_score", C.c_double),
                ("best_epoch", C.c_int), ("seconds", C.c_double), ("samples_per_sec", C.c_double),
                ("stopped_early", C.c_int), ("cancelled", C.c_int), ("best_valid", EvalResult)]


class Column(C.Structure):
    _fields_ = [("name", C.c_char_p), ("type", C.c_int), ("data", C.c_void_p), ("stride", C.c_ssize_t)]


COL_TEXT, COL_INT64, COL_FLOAT64, COL_FLOAT32, COL_INT32 = 0, 1, 2, 3, 4

LOG_FN = C.CFUNCTYPE(None, C.c_void_p, C.c_char_p)

_P = C.c_void_p
_S = C.c_char_p
_E = C.POINTER(Error)
_F = C.POINTER(C.c_float)

# name: (restype, argtypes)
_SIGNATURES = {
    "rf_version": (_S, []),
    "rf_status_str": (_S, [C.c_int]),
    "rf_abi_sizeof": (C.c_size_t, [_S]),
    "rf_config_new": (_P, []),
    "rf_config_clone": (_P, [_P]),
    "rf_config_free": (None, [_P]),
    "rf_config_load_file": (C.c_int, [_P, _S, _E]),
    "rf_config_load_string": (C.c_int, [_P, _S, C.c_size_t, _S, _E]),
    "rf_config_set": (C.c_int, [_P, _S, _E]),
    "rf_config_validate": (C.c_int, [_P, _E]),
    "rf_config_dump": (C.c_void_p, [_P]),
    "rf_config_simulate": (C.c_int, [_P, _S, _E]),
    "rf_train_to_file": (C.c_int, [_P, _S, LOG_FN, _P, C.POINTER(TrainSummary), C.POINTER(EvalResult), _E]),
    "rf_model_open": (C.c_int, [_S, C.POINTER(_P), _E]),
    "rf_model_close": (None, [_P]),
    "rf_model_write": (C.c_int, [_P, _S, _E]),
    "rf_model_of": (_P, [_P]),
    "rf_model_config": (_P, [_P]),
    "rf_model_ntasks": (C.c_int, [_P]),
    "rf_model_task": (_S, [_P, C.c_int, C.POINTER(C.c_int)]),
    "rf_model_ncolumns": (C.c_int, [_P]),
    "rf_model_column": (_S, [_P, C.c_int]),
    "rf_model_nlabels": (C.c_int, [_P]),
    "rf_model_label": (_S, [_P, C.c_int]),
    "rf_model_regression": (_S, [_P, C.POINTER(C.c_int), C.POINTER(_F), C.POINTER(C.c_int)]),
    "rf_model_fusion_spec": (C.c_int, [_P, C.c_char_p, C.c_size_t]),
    "rf_model_data": (C.c_int, [_P, _S, C.c_int, C.c_int, C.POINTER(_P), C.POINTER(C.c_size_t), _E]),
    "rf_frame_dataset": (C.c_int, [_P, C.POINTER(Column), C.c_int, C.c_size_t, C.c_int, C.POINTER(_P), _E]),
    "rf_dataset_rows": (C.c_size_t, [_P]),
    "rf_dataset_free": (None, [_P]),
    "rf_model_predict_all": (C.c_int, [_P, _P, C.c_int, C.c_int, _F, _F, _F, _F, _E]),
    "rf_evaluate": (C.c_int, [_P, _P, C.c_int, C.POINTER(EvalResult), _E]),
    "rf_eval_report_run": (C.c_int, [_P, _P, C.POINTER(EvalOpts), C.POINTER(_P), _E]),
    "rf_eval_report_json": (C.c_void_p, [_P, _P, C.c_int]),
    "rf_eval_report_free": (None, [_P]),
    "rf_scorer_open": (C.c_int, [_S, _P, C.POINTER(_P), _E]),
    "rf_scorer_close": (None, [_P]),
    "rf_scorer_max_candidates": (C.c_int, [_P]),
    "rf_score_ctx_create": (_P, [_P]),
    "rf_score_ctx_free": (None, [_P]),
}

_STRUCTS = {"rf_error": Error, "rf_eval_result": EvalResult, "rf_train_summary": TrainSummary,
            "rf_task_metrics": TaskMetrics, "rf_column": Column, "rf_eval_opts": EvalOpts}


def _candidates():
    env = os.environ.get("RESFLOW_LIB")
    if env:
        return [env], "RESFLOW_LIB=" + env
    paths = []
    try:
        from ._libpath import LIBPATH
        paths.append(LIBPATH)
    except ImportError:
        pass
    found = ctypes.util.find_library("resflow")
    if found:
        paths.append(found)
    return paths, "the build-time path (python/resflow/_libpath.py) or the system's library path"


def _load():
    paths, where = _candidates()
    errors = []
    for p in paths:
        try:
            return C.CDLL(p), p
        except OSError as e:
            errors.append(str(e))
    raise ImportError("resflow: cannot load libresflow.so from %s%s; build it with `make python` or set "
                      "RESFLOW_LIB to its path" % (where, (" (" + "; ".join(errors) + ")") if errors else ""))


lib, path = _load()
for _name, (_res, _args) in _SIGNATURES.items():
    _fn = getattr(lib, _name)
    _fn.restype, _fn.argtypes = _res, _args
lib.free = C.CDLL(None).free
lib.free.argtypes, lib.free.restype = [C.c_void_p], None

for _name, _cls in _STRUCTS.items():
    if lib.rf_abi_sizeof(_name.encode()) != C.sizeof(_cls):
        raise ImportError("resflow: %s has %d bytes in %s, the package expects %d: the library and the package "
                          "do not match" % (_name, lib.rf_abi_sizeof(_name.encode()), path, C.sizeof(_cls)))


def new_error():
    return Error()


def raise_for(st, err):
    """Raise the exception of a non-zero status with err's message and location."""
    if st == 0:
        return
    msg = err.msg.decode("utf-8", "replace")
    status = lib.rf_status_str(st).decode()
    raise error_class(st)(st, status, msg, err.file.decode("utf-8", "replace"), err.line, err.col)


def precision_of(dtype):
    """rf_precision (model.h) of a dtype argument: "fp32" 0, "bf16" 1, "int8" 2; else ValueError."""
    prec = {"fp32": 0, "bf16": 1, "int8": 2}.get(dtype)
    if prec is None:
        raise ValueError("dtype must be 'fp32', 'bf16' or 'int8', not %r" % (dtype,))
    return prec


def call(fn, *args):
    """fn(*args, &err); raises on a non-zero status."""
    err = Error()
    st = fn(*args, C.byref(err))
    raise_for(st, err)


def take_string(p):
    """A malloc'ed C string as str (freed)."""
    if not p:
        raise MemoryError("resflow: out of memory")
    try:
        return C.string_at(p).decode("utf-8")
    finally:
        lib.free(p)
