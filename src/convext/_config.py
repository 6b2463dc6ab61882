"""Thread policy for the compiled kernels.

Every parallel kernel takes an explicit thread count; the functional API passes
``get_num_threads()``, the one function that decides how many threads reach the kernels.
Unless ``set_num_threads`` chose a number, that is the OpenMP runtime's own setting for the
calling thread (``omp_get_max_threads``): ``OMP_NUM_THREADS`` at start-up, else the CPUs
available, and whatever ``threadpoolctl.threadpool_limits(n, user_api="openmp")`` sets from the
main thread. Without OpenMP the kernels always run on one thread.

Upper bound: ``MAX_THREADS`` (1024). GNU OpenMP starts a team by writing one record per thread
on the calling thread's stack (``gomp_alloca`` in ``gomp_team_start``) and creating each
thread with ``pthread_create``; at 100000 threads the records overflow the stack (SIGSEGV)
and thread creation fails (abort), and past ``2**31 - 1`` the count no longer fits the
kernels' C ``int``. 1024 is far more threads than any CPU convext targets has cores (beyond the
core count extra threads only add overhead) and keeps the per-team stack use near 100 kB, well
inside the default thread stack. ``set_num_threads`` refuses more; a larger
``OMP_NUM_THREADS`` is clamped with a warning before the OpenMP runtime reads it (it reads the
variable once, when the first extension module loads it); a larger runtime setting
(threadpoolctl, another library calling ``omp_set_num_threads``) is clamped here too.

Fork: GNU OpenMP's worker threads do not survive ``os.fork()``; a child that enters a parallel
region with more than one thread waits forever for them. A fork handler therefore makes
``get_num_threads()`` return 1 in every forked child (``multiprocessing``'s "fork" start method
included). With one thread GNU OpenMP returns from ``gomp_team_start`` before it touches the
thread pool, so the child computes on its own thread; results are bitwise the same as with any
thread count. Processes started with "spawn" or "forkserver" are not forked from a warm pool
and keep the normal policy.

Threads, with or without the GIL (free-threaded CPython): the state here is one global,
``_num_threads``, written under ``_lock`` and read by ``get_num_threads`` in a single load (a
reader sees the old or the new value, never a mix), plus ``_forked_child``, set only in a new
child process before any of its threads exist. ``threads_for`` reads ``SERIAL_WORK``, which only
the ``bench serial`` tool rewrites. tests/reliability/test_concurrency.py changes the count from
one thread while eight others compute.
"""

import os
import threading
import warnings

__all__ = ["set_num_threads", "get_num_threads", "openmp_enabled", "MAX_THREADS"]

MAX_THREADS = 1024


def _clamp_omp_num_threads(environ=os.environ):
    """Clamp every entry of ``OMP_NUM_THREADS`` (a comma-separated list of positive integers)
    to MAX_THREADS, with a RuntimeWarning. Values that are not integers are left to the OpenMP
    runtime, which ignores them with its own message. Returns the new value or None."""
    value = environ.get("OMP_NUM_THREADS")
    if value is None:
        return None
    parts = value.split(",")
    clamped = []
    changed = False
    for part in parts:
        # what the OpenMP runtime reads as a number: blanks, an optional "+", decimal digits
        text = part.strip()
        text = text[1:] if text.startswith("+") else text
        if text.isascii() and text.isdigit() and int(text) > MAX_THREADS:
            clamped.append(str(MAX_THREADS))
            changed = True
        else:
            clamped.append(part)
    if not changed:
        return None
    new = ",".join(clamped)
    warnings.warn(
        f"OMP_NUM_THREADS={value!r} exceeds convext's limit of {MAX_THREADS} threads; "
        f"using OMP_NUM_THREADS={new!r}",
        RuntimeWarning,
        stacklevel=2,
    )
    environ["OMP_NUM_THREADS"] = new
    return new


# before the first extension module loads the OpenMP runtime, which reads OMP_NUM_THREADS once
_clamp_omp_num_threads()

from ._kernels import _threads  # noqa: E402

_lock = threading.Lock()
_num_threads = None
_forked_child = False


def _after_fork_in_child():
    # the parent's OpenMP worker threads do not exist in the child: stay on one thread
    global _forked_child
    _forked_child = True


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def openmp_enabled() -> bool:
    """Return True when convext's kernels were compiled with OpenMP support."""
    return _threads.openmp_enabled()


def _default_threads():
    # the OpenMP runtime's nthreads-var: OMP_NUM_THREADS at start-up, else the CPUs available;
    # changed by omp_set_num_threads (and so by threadpoolctl)
    return max(1, _threads.omp_max_threads())


def set_num_threads(n: int | None) -> None:
    """Set the number of threads convext's kernels use: an int from 1 to ``MAX_THREADS`` (1024).

    ``None`` restores the default (``OMP_NUM_THREADS`` or the CPU count, at most 1024). In a
    process created by ``os.fork()`` the kernels run on one thread whatever is set here (the
    OpenMP thread pool does not survive a fork); asking for more there gives a RuntimeWarning.
    """
    global _num_threads
    if n is not None:
        if isinstance(n, bool) or not isinstance(n, int) and not hasattr(n, "__index__"):
            raise TypeError(f"n must be a positive int or None, got {type(n).__name__}")
        n = int(n.__index__())
        if n < 1:
            raise ValueError(f"n must be a positive int, got {n}")
        if n > MAX_THREADS:
            raise ValueError(f"n must be at most {MAX_THREADS} (convext.MAX_THREADS), got {n}")
        if _forked_child and n > 1:
            warnings.warn(
                f"set_num_threads({n}) in a forked child process: convext's kernels "
                "run on 1 thread here (the OpenMP thread pool does not survive "
                "os.fork(); start workers with 'spawn' or 'forkserver')",
                RuntimeWarning,
                stacklevel=2,
            )
    with _lock:
        _num_threads = n


def get_num_threads() -> int:
    """The number of threads convext's kernels use: 1 without OpenMP and in a forked child,
    else ``set_num_threads``'s value or the OpenMP default, at most ``MAX_THREADS``."""
    if not _threads.openmp_enabled() or _forked_child:
        return 1
    n = _num_threads
    return min(n if n is not None else _default_threads(), MAX_THREADS)


# Serial-versus-parallel thresholds: below this much work a kernel runs on one thread, because
# waking the others costs more than they save (on a busy machine far more). Each is a measured
# break-even of one against two threads, re-measured by
#     python -m convext bench serial --threads 2
# which times a small problem of each kind at 1/8 ... 8 times its threshold on 1 and 2 threads
# and prints where 2 threads start to win. The thread count never changes a result, only the
# time.
#   "macs":        multiply-adds of a convolution or a linear layer (also the element count of
#                  conv2d's bias-gradient sum, which shares the convolution's figure); a
#                  linear layer also counts its weight's elements as "elements" and takes the
#                  larger count (functional.linear._linear_threads)
#   "elements":    elements a pooling, resampling, normalisation or pointwise kernel walks
#   "elementwise": elements of relu and the compiled select of the activations
SERIAL_WORK = {"macs": 1 << 19, "elements": 1 << 15, "elementwise": 1 << 16}


def threads_for(work, kind):
    """The thread count for a kernel call doing ``work`` units of ``kind`` (a key of
    SERIAL_WORK): 1 below the kind's threshold, else ``get_num_threads()``. The one place that
    decides serial against parallel; kernels only take the count they are given."""
    return 1 if work < SERIAL_WORK[kind] else get_num_threads()
