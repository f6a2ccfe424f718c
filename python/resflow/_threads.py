"""The library's concurrency contract, enforced for every Python thread of the process.

Debian's OpenMP build of OpenBLAS shares the buffers of its multi-threaded GEMMs between calls, so
two multi-threaded GEMMs from two threads at once can return wrong values (model.h, serve.h). The
library's contract is that concurrent callers each run with one OpenMP thread. This gate keeps it:

* a call that may run several OpenMP threads (``threads`` 0 = the model's ``train.threads``, or
  more than 1) runs with them only when no other library call is running; it then holds the gate
  alone, and calls that arrive meanwhile wait for it;
* otherwise it does not wait: it runs with ``threads=1`` beside the other one-thread calls
  (``downgrade``), or, when its thread count is fixed (training, a Scorer opened with threads > 1),
  it waits until it can run alone.

The results do not depend on the thread count (the library's predictions and metrics are the same
with 1 or N threads), so a downgraded call returns what it would have returned alone.
"""
import contextlib
import threading

_cv = threading.Condition()
_shared = 0          # one-thread calls running
_exclusive = False   # a multi-threaded call running
_local = threading.local()  # .depth: gate calls of this thread in progress (a log callback's
                            # call runs while its thread's call is paused: one thread, no wait)


@contextlib.contextmanager
def library_call(threads, downgrade=True):
    """Run one library call with ``threads`` OpenMP threads (0 = the library's default, which may
    be several). Yields the thread count to pass to the library."""
    global _shared, _exclusive
    if getattr(_local, "depth", 0):
        _local.depth += 1
        try:
            yield 1
        finally:
            _local.depth -= 1
        return
    multi = threads != 1
    with _cv:
        if multi and not downgrade:
            while _exclusive or _shared:
                _cv.wait()
            _exclusive = True
        elif multi and not _exclusive and not _shared:
            _exclusive = True
        else:
            multi, threads = False, 1
            while _exclusive:
                _cv.wait()
            _shared += 1
    _local.depth = 1
    try:
        yield threads
    finally:
        _local.depth = 0
        with _cv:
            if multi:
                _exclusive = False
            else:
                _shared -= 1
            _cv.notify_all()
