"""The machine's float32 FMA peak, the ceiling of ``python -m convext bench`` (isa/kernels.inc).

fma_loop(iters, n_threads) runs the active ISA's fma_chains() independent FMA chains (as many as
fit in its vector registers: 16 or 12) for ``iters`` steps on each of ``n_threads`` OpenMP threads
(one chain set per thread) and returns a checksum; the caller times it and counts
``2 * fma_chains() * fma_lanes() * iters * n_threads`` flops. The instruction set is
the one every kernel uses (convext._kernels._isa.active(), chosen at import, CONVEXT_ISA); at the
generic level the loop is a multiply then an add (fma_fused() is False), whose figure is only an
estimate of what the kernels can reach.

Contract (convext.bench.peak checks it): iters >= 1, n_threads >= 1.
"""
from cython.parallel cimport parallel, prange

from ._isa cimport cvx_kernel_table, isa_table


def fma_isa():
    """The name of the instruction set the FMA loop runs (the active one: 'avx512', ...)."""
    return isa_table().name.decode()


def fma_lanes():
    """float32 lanes per vector of the active instruction set."""
    return isa_table().f32_lanes


def fma_fused():
    """True when one step of a chain is a fused multiply-add (False: a multiply then an add)."""
    return bool(isa_table().fma_fused)


def fma_chains():
    """Independent FMA chains per thread."""
    return isa_table().fma_chain_count


def fma_loop(long long iters, int n_threads):
    """Run the FMA chains for ``iters`` steps on each of ``n_threads`` threads; the checksum."""
    cdef double total = 0.0
    cdef int _t
    # m = 1 - 2^-20, c = 2^-20: the values converge to 1 and stay normal
    cdef float m = 1.0 - 9.5367431640625e-07, c = 9.5367431640625e-07
    cdef const cvx_kernel_table *table = isa_table()
    with nogil, parallel(num_threads=n_threads):
        for _t in prange(n_threads, schedule='static', chunksize=1):
            total += table.fma_chains(iters, m, c)
    return total
