"""resflow: multi-task ranking models (ResFlow and its peers) from Python, over libresflow.so.

    import resflow
    model = resflow.train({"model": {"type": "resflow"}}, {"train.epochs": 2})
    scores = model.predict(df)              # DataFrame: one column per task (+ score, expected)
    metrics = model.evaluate("test.csv")    # the metrics of `resflow eval --json`
    model.save("m.model"); resflow.Model.load("m.model")

See docs/python.md."""
from ._lib import lib as _lib
from ._lib import path as library_path
from .config import Config
from .errors import (DataError, FormatError, NumericError, ResflowError, ResflowIOError,
                     UsageError)
from .model import Model
from .scorer import Scorer
from .train import simulate, train

__version__ = _lib.rf_version().decode()


def load(path):
    """Model.load(path)."""
    return Model.load(path)


__all__ = ["Config", "Model", "Scorer", "train", "simulate", "load", "ResflowError", "UsageError", "DataError",
           "ResflowIOError", "NumericError", "FormatError", "library_path", "__version__"]
