"""The experiment configuration (config.h): a YAML file or a dict, plus key=value overrides."""
import ctypes as C
import json
import os

from ._lib import call, lib, take_string


def _scalar(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (list, tuple)):
        return "[" + ",".join(_scalar(x) for x in v) + "]"
    if isinstance(v, float):
        return repr(v)
    return str(v)


class Config:
    """An experiment configuration: the built-in defaults, then a YAML file (``path``) or a nested
    dict (``data``, the same structure as the YAML), then the overrides (dotted keys as for
    ``resflow train --set``: ``{"model.type": "nse", "model.hidden": [128, 64]}``), which win.

    >>> cfg = Config("configs/default.yaml", {"train.epochs": 2})
    >>> cfg.set("model.type", "nse")

    Unknown keys and bad values raise :class:`resflow.UsageError` naming file:line:column (or the
    override)."""

    def __init__(self, source=None, overrides=None):
        self._h = lib.rf_config_new()
        if not self._h:
            raise MemoryError("resflow: out of memory")
        self.path = None
        if isinstance(source, dict):
            self.load_dict(source)
        elif source is not None:
            self.load_file(source)
        if overrides:
            self.update(overrides)

    @classmethod
    def from_dict(cls, data, overrides=None):
        return cls(dict(data), overrides)

    def load_file(self, path):
        path = os.fspath(path)
        call(lib.rf_config_load_file, self._h, path.encode())
        self.path = path
        return self

    def load_yaml(self, text, name="<string>"):
        b = text.encode()
        call(lib.rf_config_load_string, self._h, b, len(b), name.encode())
        return self

    def load_dict(self, data, name="<dict>"):
        # JSON is YAML: the nested dict goes through the same parser and key table as a file.
        return self.load_yaml(json.dumps(data, indent=1), name)

    def set(self, key, value):
        """One override, as ``--set key=value`` (value: a scalar or a list)."""
        call(lib.rf_config_set, self._h, ("%s=%s" % (key, _scalar(value))).encode())
        return self

    def update(self, overrides):
        items = overrides.items() if isinstance(overrides, dict) else (a.split("=", 1) for a in overrides)
        for k, v in items:
            self.set(k, v)
        return self

    def validate(self):
        call(lib.rf_config_validate, self._h)
        return self

    def to_yaml(self):
        """The fully resolved configuration as YAML (what a model file stores)."""
        return take_string(lib.rf_config_dump(self._h))

    def copy(self):
        c = Config.__new__(Config)
        c._h = lib.rf_config_clone(self._h)
        if not c._h:
            raise MemoryError("resflow: out of memory")
        c.path = self.path
        return c

    def __repr__(self):
        return "resflow.Config(%s)" % (repr(self.path) if self.path else "")

    def __del__(self):
        h, self._h = getattr(self, "_h", None), None
        if h:
            lib.rf_config_free(h)


def as_config(config, overrides=None):
    """A Config from a Config (copied), a path, a dict or None (the defaults), with overrides."""
    if isinstance(config, Config):
        c = config.copy()
        return c.update(overrides) if overrides else c
    return Config(config, overrides)
