"""The context-manager and finaliser behaviour of the objects that own a library handle."""


class Closing:
    """``with obj:`` and garbage collection call ``obj.close()`` (which must be idempotent)."""

    def close(self):  # pragma: no cover - overridden
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        self.close()
