"""Thread policy for the compiled kernels.

Every parallel kernel takes an explicit thread count; the functional API passes
``get_num_threads()``. The default is ``OMP_NUM_THREADS`` when it is set, otherwise the number of
CPUs this process may run on. Without OpenMP the kernels always run on one thread.
"""
import os
import threading

from ._kernels import _threads

__all__ = ["set_num_threads", "get_num_threads", "openmp_enabled"]

_lock = threading.Lock()
_num_threads = None


def openmp_enabled():
    """Return True when convext's kernels were compiled with OpenMP support."""
    return _threads.openmp_enabled()


def _default_threads():
    env = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    if env.isdigit() and int(env) > 0:
        return int(env)
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def set_num_threads(n):
    """Set the number of threads convext's kernels use (a positive int).

    ``None`` restores the default (``OMP_NUM_THREADS`` or the CPU count).
    """
    global _num_threads
    if n is not None:
        if isinstance(n, bool) or not isinstance(n, int) and not hasattr(n, "__index__"):
            raise TypeError(f"n must be a positive int or None, got {type(n).__name__}")
        n = int(n.__index__())
        if n < 1:
            raise ValueError(f"n must be a positive int, got {n}")
    with _lock:
        _num_threads = n


def get_num_threads():
    """The number of threads convext's kernels use (1 when built without OpenMP)."""
    if not _threads.openmp_enabled():
        return 1
    n = _num_threads
    return n if n is not None else _default_threads()
