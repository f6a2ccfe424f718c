"""In-memory columns -> rf_column array for rf_frame_dataset (frame.h), without copying numbers.

A numeric numpy array of float64, float32, int64 or int32 is handed to the library as its base
pointer and stride: no copy, whatever the stride (a DataFrame's column, a column of a 2-D array).
Other numeric types (bool, small or unsigned integers, pandas nullable integers) are converted
once to int64/float64; text (object, string, categorical) is packed into one buffer of
NUL-terminated UTF-8 strings (None and NaN are missing values)."""
import ctypes as C
import math

import numpy as np

from ._lib import COL_FLOAT32, COL_FLOAT64, COL_INT32, COL_INT64, COL_TEXT, Column

_NUMERIC = {np.dtype(np.float64): COL_FLOAT64, np.dtype(np.float32): COL_FLOAT32,
            np.dtype(np.int64): COL_INT64, np.dtype(np.int32): COL_INT32}


def _text(values):
    out = []
    for v in values:
        if v is None or (isinstance(v, float) and math.isnan(v)):
            out.append(b"")
        elif isinstance(v, bytes):
            out.append(v)
        else:
            out.append(str(v).encode("utf-8"))
    if any(b"\0" in s for s in out):
        raise ValueError("resflow: a text value contains a NUL character")
    return b"\0".join(out) + b"\0"


def _array(v):
    """A column as a 1-D numpy array (numeric) or a list of values (text)."""
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - numpy-only use
        pd = None
    if pd is not None and isinstance(v, pd.Series):
        if isinstance(v.dtype, pd.CategoricalDtype) or v.dtype == object or pd.api.types.is_string_dtype(v.dtype):
            return list(v.astype(object))
        if pd.api.types.is_extension_array_dtype(v.dtype):  # nullable Int64/Float64/boolean
            kind = np.float64 if (v.isna().any() or pd.api.types.is_float_dtype(v.dtype)) else np.int64
            return v.to_numpy(dtype=kind, na_value=np.nan if kind is np.float64 else 0)
        return v.to_numpy()
    a = np.asarray(v)
    if a.ndim != 1:
        raise ValueError("resflow: a column must be one-dimensional, got shape %s" % (a.shape,))
    return a


class Columns:
    """The rf_column array of named columns (kept alive with the arrays it points into)."""

    def __init__(self, items):
        self.keep, cols, n = [], [], None
        for name, v in items:
            a = _array(v)
            if n is None:
                n = len(a)
            elif len(a) != n:
                raise ValueError("resflow: column '%s' has %d rows, the others %d" % (name, len(a), n))
            if isinstance(a, np.ndarray) and a.dtype.kind in "fiub":
                if a.dtype not in _NUMERIC:
                    a = a.astype(np.float64 if a.dtype.kind == "f" else np.int64)
                self.keep.append(a)
                cols.append(Column(name.encode(), _NUMERIC[a.dtype], a.ctypes.data if len(a) else
                                   C.cast(C.create_string_buffer(8), C.c_void_p).value, a.strides[0]))
                if not len(a):
                    self.keep.append(cols[-1])
            else:
                buf = C.create_string_buffer(_text(a), None)
                self.keep.append(buf)
                cols.append(Column(name.encode(), COL_TEXT, C.cast(buf, C.c_void_p).value, 0))
        self.n = n or 0
        self.array = (Column * max(len(cols), 1))(*cols)
        self.count = len(cols)


def columns_of(data, wanted):
    """The columns of a DataFrame or a dict of arrays that are in ``wanted`` (names, in the data's
    order); other columns are ignored."""
    keys = list(data.keys()) if isinstance(data, dict) else list(data.columns)
    want = set(wanted)
    return Columns([(str(k), data[k]) for k in keys if str(k) in want])
