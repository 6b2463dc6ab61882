"""Facts about the compiled OpenMP runtime, for convext._config."""
from ._openmp cimport cvx_openmp_enabled, cvx_omp_get_max_threads


def openmp_enabled():
    """True when the kernels were compiled with OpenMP."""
    return bool(cvx_openmp_enabled())


def omp_max_threads():
    """The OpenMP runtime's default team size (1 without OpenMP)."""
    return cvx_omp_get_max_threads()
