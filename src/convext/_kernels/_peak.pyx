"""The machine's float32 FMA peak, the ceiling of ``python -m convext bench`` (see _peak.h).

fma_loop(iters, n_threads) runs _peak.h's 16 independent FMA chains for ``iters`` steps on each
of ``n_threads`` OpenMP threads (one chain set per thread) and returns a checksum; the caller
times it and counts ``32 * fma_lanes() * iters * n_threads`` flops. The instruction set is the
one the GEMM micro-kernels use on this CPU (fma_level(): 2 = AVX-512F, 1 = AVX2+FMA,
0 = generic C, whose figure is only an estimate).

Contract (convext.bench.peak checks it): iters >= 1, n_threads >= 1.
"""
from cython.parallel cimport parallel, prange

cdef extern from "_peak.h" nogil:
    double cvx_fma_chains(long long iters, float m, float c)
    int cvx_peak_level()
    int cvx_peak_lanes()
    int CVX_PEAK_CHAINS


def fma_level():
    """The instruction-set level of the FMA loop: 2 = AVX-512F, 1 = AVX2+FMA, 0 = generic."""
    return cvx_peak_level()


def fma_lanes():
    """float32 lanes per vector at fma_level() (1 for the generic loop)."""
    return cvx_peak_lanes()


def fma_chains():
    """Independent FMA chains per thread."""
    return CVX_PEAK_CHAINS


def fma_loop(long long iters, int n_threads):
    """Run the FMA chains for ``iters`` steps on each of ``n_threads`` threads; the checksum."""
    cdef double total = 0.0
    cdef int _t
    # m = 1 - 2^-20, c = 2^-20: the values converge to 1 and stay normal
    cdef float m = 1.0 - 9.5367431640625e-07, c = 9.5367431640625e-07
    with nogil, parallel(num_threads=n_threads):
        for _t in prange(n_threads, schedule='static', chunksize=1):
            total += cvx_fma_chains(iters, m, c)
    return total
