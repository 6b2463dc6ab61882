"""The ceiling: the machine's float32 FMA peak, measured in the same run as the benchmarks.

The loop (src/convext/_kernels/isa/kernels.inc) runs independent vector FMA chains per thread (16,
or 12 where the ISA has only 16 vector registers: all must stay in registers),
with the instruction set every kernel uses (the active one: CONVEXT_ISA, else the best of
AVX-512F, AVX2+FMA, NEON, generic); at the generic level it is a multiply then an add, and the
figure is only an estimate of what the kernels can reach. Each figure is
the best of a few timed calls of about 20 ms of work per thread (8 ms with --quick): the peak is
a maximum, so the best call is the measurement, and a call disturbed by other load only lowers
it.
"""

import time

from .._kernels import _peak

NAMES = {"avx512": "AVX-512F", "avx2": "AVX2+FMA", "neon": "NEON", "generic": "generic (estimate)"}


def isa():
    """The name of the instruction set the FMA loop (and every kernel) runs."""
    name = _peak.fma_isa()
    return NAMES.get(name, name)


def chains():
    """Independent FMA chains per thread in the loop of the active instruction set."""
    return _peak.fma_chains()


def is_estimate():
    """True when the loop is not one fused multiply-add per step (the generic level)."""
    return not _peak.fma_fused()


def flops_per_step(threads):
    """Flops of one step of the loop on `threads` threads: chains x lanes x 2 (multiply + add)."""
    return _peak.fma_chains() * _peak.fma_lanes() * 2 * threads


def measure(threads, quick=False, repeats=None):
    """The FMA peak of `threads` threads, in GFLOP/s (best of `repeats` timed calls)."""
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads must be a positive int, got {threads!r}")
    target = 0.008 if quick else 0.02
    repeats = repeats or (3 if quick else 5)
    _peak.fma_loop(1, threads)  # start the OpenMP team
    # calibrate on one thread (a thread waiting for a busy core must not shorten the loop):
    # each thread then runs about `target` seconds of work
    iters = 1 << 12
    while True:
        t0 = time.perf_counter()
        _peak.fma_loop(iters, 1)
        dt = time.perf_counter() - t0
        if dt >= target or iters >= 1 << 36:
            break
        iters *= 2 if dt > target / 4 else 8
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        _peak.fma_loop(iters, threads)
        best = min(best, time.perf_counter() - t0)
    return flops_per_step(threads) * iters / best / 1e9


def thread_counts(threads):
    """1, 2, 4, ... up to `threads`, and `threads` itself."""
    counts, n = [], 1
    while n < threads:
        counts.append(n)
        n *= 2
    return counts + [threads]


def measure_table(threads, quick=False):
    """{thread count: GFLOP/s} for 1, 2, 4 ... `threads` threads."""
    return {n: measure(n, quick) for n in thread_counts(threads)}
