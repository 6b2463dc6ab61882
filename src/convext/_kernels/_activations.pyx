"""Elementwise activation kernels, only where they beat vectorised NumPy (measured).

Only relu is here, forward and backward: NumPy's ``maximum`` carries NaN-propagation machinery
that makes it slower than this loop, and ``np.where(x <= 0, 0, g)`` is far slower than torch's
threshold_backward (a masked multiply would turn 0 * inf into NaN). The piecewise activations
(leaky_relu, elu, sigmoid, softplus and their gradients) compute their pieces with NumPy's
vectorised ufuncs (exp, expm1, log1p) and choose between them with ``select``, far faster than
``np.where``: as a branch its condition mispredicts half the time; here every load is
unconditional, so it is a vector blend. The figures: docs/benchmarks.md, "Figures measured
once".

Contract: the arrays are flat, C-contiguous, the same length and dtype; the caller allocates
the output.
"""
from cython.parallel cimport prange

from ._types cimport floating, idx_t


def relu_forward(const floating[::1] x, floating[::1] y, int n_threads):
    """y = 0 where x <= 0, else x (so NaN stays NaN, as torch)."""
    cdef idx_t i, n = x.shape[0]
    with nogil:
        for i in prange(n, num_threads=n_threads, schedule="static"):
            y[i] = 0 if x[i] <= 0 else x[i]


def relu_backward(const floating[::1] g, const floating[::1] x, floating[::1] gx, int n_threads):
    """gx = 0 where x <= 0, else g (a NaN input passes the gradient, as torch)."""
    cdef idx_t i, n = x.shape[0]
    cdef floating v
    with nogil:
        for i in prange(n, num_threads=n_threads, schedule="static"):
            v = g[i]  # loaded unconditionally, so the select below vectorises (no branch)
            gx[i] = 0 if x[i] <= 0 else v


def select(const floating[::1] c, floating t, bint le, const floating[::1] a,
           const floating[::1] b, floating[::1] out, int n_threads):
    """out = a where c > t (or c <= t when le), else b; NaN in c fails either test and selects
    b, like np.where."""
    cdef idx_t i, n = c.shape[0]
    cdef floating va, vb
    with nogil:
        if le:
            for i in prange(n, num_threads=n_threads, schedule="static"):
                va = a[i]
                vb = b[i]
                out[i] = va if c[i] <= t else vb
        else:
            for i in prange(n, num_threads=n_threads, schedule="static"):
                va = a[i]
                vb = b[i]
                out[i] = va if c[i] > t else vb
