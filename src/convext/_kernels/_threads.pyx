"""Facts about the compiled OpenMP runtime, for convext._config; the helper thread of
convext._team; and a check of the kernels' work-sharing schedule (cvx_sched) for the tests."""
from cython.parallel cimport parallel
from libc.stdint cimport int64_t

import numpy as np

from ._openmp cimport (CVX_SCHED_THREADS, cvx_omp_get_max_threads, cvx_omp_get_thread_num,
                       cvx_openmp_enabled, cvx_sched, cvx_sched_init, cvx_sched_next)


def openmp_enabled():
    """True when the kernels were compiled with OpenMP."""
    return bool(cvx_openmp_enabled())


def omp_max_threads():
    """The OpenMP runtime's default team size (1 without OpenMP)."""
    return cvx_omp_get_max_threads()


cdef extern from "_team.h" nogil:
    void cvx_team_reset()
    void cvx_team_release()
    int cvx_team_is_awake()
    void cvx_team_hold(double seconds)
    int cvx_team_wait_awake(double seconds)


# The helper thread of convext._team (its design is there). The waits run without the GIL:
# the helper needs it to return from its event wait, the caller holds it between steps.

def team_reset():
    """Lower the helper's awake flag and its release (before waking it)."""
    cvx_team_reset()


def team_release():
    """Let a holding helper stop."""
    cvx_team_release()


def team_is_awake():
    """True once the helper has run since the last team_reset."""
    return bool(cvx_team_is_awake())


def team_hold(double seconds):
    """The helper's turn: raise the awake flag, then stay (yielding the CPU) until
    team_release or for at most ``seconds``."""
    with nogil:
        cvx_team_hold(seconds)


def team_wait_awake(double seconds):
    """Wait (yielding the CPU) at most ``seconds`` for the helper's awake flag; the flag."""
    cdef int awake
    with nogil:
        awake = cvx_team_wait_awake(seconds)
    return bool(awake)


cdef extern from "_openmp_helpers.h" nogil:
    int64_t cvx_sched_left(const cvx_sched *s, int t)
    double cvx_sched_clock()


def sched_counts(Py_ssize_t n, int threads, int team=0, double wait=0.0):
    """The items [0, n) that cvx_sched (_openmp_helpers.h) hands each of ``threads`` threads in
    one parallel region of ``team`` threads (0: ``threads``; fewer leaves shares without an
    owner, as when OpenMP gives a region fewer threads than asked), thread 0 waiting, before
    its first claim, up to ``wait`` seconds for another thread to take over a unit of its share
    (so that the test sees one taken over): an (threads, n) array of how many times each thread
    got each item (tests: every item exactly once, on some thread)."""
    if not 1 <= threads <= CVX_SCHED_THREADS or not 0 <= team <= threads or n < 0:
        raise ValueError(f"threads must be in [1, {CVX_SCHED_THREADS}], team in [0, threads] "
                         f"and n >= 0")
    counts_arr = np.zeros((threads, max(n, 1)), np.int64)
    cdef int64_t[:, ::1] counts = counts_arr
    cdef cvx_sched sched
    cdef int64_t it = 0, units = 0
    cdef int tid = 0
    cdef double end = 0
    cvx_sched_init(&sched, n, threads)
    units = cvx_sched_left(&sched, 0)
    with nogil, parallel(num_threads=team or threads):
        tid = cvx_omp_get_thread_num()
        if tid == 0 and wait > 0 and units > 0 and cvx_openmp_enabled():
            end = cvx_sched_clock() + wait
            while cvx_sched_left(&sched, 0) == units and cvx_sched_clock() < end:
                pass
        it = cvx_sched_next(&sched, tid)
        while it >= 0:
            counts[tid, it] += 1
            it = cvx_sched_next(&sched, tid)
    return counts_arr[:, :n]
