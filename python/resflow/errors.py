"""Library errors as Python exceptions (rf_status + rf_error of resflow.h)."""


class ResflowError(Exception):
    """An error returned by libresflow: ``code`` (rf_status), ``status`` (its name), ``msg``
    (the reason), and for data errors the location ``file``, ``line``, ``col`` (1-based; ""/0 when
    unknown). ``str(e)`` is the library's "file:line:col: msg" form."""

    def __init__(self, code, status, msg, file="", line=0, col=0):
        self.code, self.status, self.msg = code, status, msg
        self.file, self.line, self.col = file, line, col
        loc = ""
        if file:
            loc = file + (":%d" % line if line else "") + (":%d" % col if col else "") + ": "
        super().__init__(loc + msg)

    @property
    def location(self):
        """"file:line:col" of a data error, or None."""
        if not self.file:
            return None
        return "%s:%d:%d" % (self.file, self.line, self.col)


class UsageError(ResflowError, ValueError):
    """RF_EUSAGE: a bad option, configuration key or argument."""


class DataError(ResflowError, ValueError):
    """RF_EDATA: malformed input data (carries file:line:column when read from a file)."""


class ResflowIOError(ResflowError, OSError):
    """RF_EIO: a file cannot be opened, read or written."""


class NumericError(ResflowError, ArithmeticError):
    """RF_ENUMERIC: a non-finite loss or value."""


class FormatError(ResflowError, ValueError):
    """RF_EFORMAT: a bad, corrupt or incompatible model or cache file."""


_BY_CODE = {1: UsageError, 2: DataError, 3: ResflowIOError, 4: NumericError, 6: FormatError,
            5: MemoryError}


def error_class(code):
    cls = _BY_CODE.get(code, ResflowError)
    if cls is MemoryError:
        return ResflowError
    return cls
