"""Facts about the compiled OpenMP runtime, for convext._config."""
from ._openmp cimport cvx_openmp_enabled, cvx_omp_get_max_threads


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
