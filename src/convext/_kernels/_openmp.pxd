from libc.stdint cimport int64_t

# OpenMP helpers that fall back to one thread when the build has no OpenMP.
cdef extern from "_openmp_helpers.h" nogil:
    int cvx_openmp_enabled()
    int cvx_omp_get_thread_num()
    int cvx_omp_get_max_threads()
    enum: CVX_SCHED_THREADS
    ctypedef struct cvx_sched:
        pass
    void cvx_sched_init(cvx_sched *s, int64_t n, int threads)
    int64_t cvx_sched_next(cvx_sched *s, int tid)
    int64_t cvx_sched_after(const cvx_sched *s, int tid, int64_t it)
