# OpenMP helpers that fall back to one thread when the build has no OpenMP.
cdef extern from "_openmp_helpers.h" nogil:
    int cvx_openmp_enabled()
    int cvx_omp_get_thread_num()
    int cvx_omp_get_max_threads()
