"""Facts about the compiled OpenMP runtime, for convext._config; the helper thread of
convext._team; and a check of the kernels' work-sharing schedule (cvx_sched) for the tests."""
from cython.parallel cimport parallel
from libc.stdint cimport int64_t

cimport numpy as cnp
import numpy as np

from ._openmp cimport (CVX_SCHED_THREADS, cvx_omp_get_max_threads, cvx_omp_get_thread_num,
                       cvx_openmp_enabled, cvx_sched, cvx_sched_init, cvx_sched_next)

cnp.import_array()


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
    double cvx_sched_test_clock()


def sched_counts(Py_ssize_t n, int threads, double hold=0.0):
    """The items [0, n) that cvx_sched (_openmp_helpers.h) hands each of ``threads`` threads in
    one parallel region, thread 0 starting ``hold`` seconds late (so that the others run out
    first and take over its share): an (threads, n) array of how many times each thread got
    each item (tests: every item exactly once, on some thread)."""
    if not 1 <= threads <= CVX_SCHED_THREADS or n < 0:
        raise ValueError(f"threads must be in [1, {CVX_SCHED_THREADS}] and n >= 0")
    counts_arr = np.zeros((threads, max(n, 1)), np.int64)
    cdef int64_t[:, ::1] counts = counts_arr
    cdef cvx_sched sched
    cdef int64_t it = 0
    cdef int tid = 0
    cdef double end
    cvx_sched_init(&sched, n, threads)
    with nogil, parallel(num_threads=threads):
        tid = cvx_omp_get_thread_num()
        if tid == 0 and hold > 0:
            end = cvx_sched_test_clock() + hold
            while cvx_sched_test_clock() < end:
                pass
        it = cvx_sched_next(&sched, tid)
        while it >= 0:
            counts[tid, it] += 1
            it = cvx_sched_next(&sched, tid)
    return counts_arr[:, :n]
