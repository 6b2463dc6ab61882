"""Thread policy for the compiled kernels.

Every parallel kernel takes an explicit thread count; the functional API passes
``get_num_threads()``. Unless ``set_num_threads`` chose a number, that is the OpenMP runtime's
own setting for the calling thread (``omp_get_max_threads``): ``OMP_NUM_THREADS`` at start-up,
else the CPUs available, and whatever ``threadpoolctl.threadpool_limits(n, user_api="openmp")``
sets from the main thread. Without OpenMP the kernels always run on one thread.
"""
import threading

from ._kernels import _threads

__all__ = ["set_num_threads", "get_num_threads", "openmp_enabled"]

_lock = threading.Lock()
_num_threads = None


def openmp_enabled():
    """Return True when convext's kernels were compiled with OpenMP support."""
    return _threads.openmp_enabled()


def _default_threads():
    # the OpenMP runtime's nthreads-var: OMP_NUM_THREADS at start-up, else the CPUs available;
    # changed by omp_set_num_threads (and so by threadpoolctl)
    return max(1, _threads.omp_max_threads())


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
