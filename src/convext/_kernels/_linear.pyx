"""Fully connected (linear) kernels on the GEMM of isa/kernels.inc: y = x @ w^T + b and its
gradients.

Contract (convext.functional.linear checks it): x (M, K), w (N, K), y (M, N), grad_out (M, N),
all C-contiguous, non-empty, one dtype. The work is cut into fixed blocks of rows and columns of
the result (never depending on the thread count), each one single-threaded GEMM call; every
element is one complete dot product, so results are bitwise the same for every thread count and
batch size. Using this GEMM
rather than NumPy's BLAS keeps a second thread pool (OpenBLAS's, which spins while waiting) from
competing with convext's OpenMP threads for the cores, which made a training step several times
slower on a small machine (docs/benchmarks.md, "Figures measured once").
Scratch: CVX_GEMM_WORK_ELEMS elements per thread.

Inference (optimize_for_inference): dense_pack packs w once into strips of its rows
(isa/kernels.inc, cvx_dense_pack), and dense_forward multiplies x by it with the bias added,
each element bitwise linear_forward's (kernels.inc says why); work items are strips of rows of w,
so a batch of one row still uses every thread, and the weight is read once per call.
"""
import numpy as np

from cython.parallel cimport parallel, prange

from ._openmp cimport cvx_omp_get_thread_num
from ._types cimport floating, idx_t

from ._gemm cimport CVX_GEMM_WORK_ELEMS, gemm
from ._isa cimport isa_table

DEF ROWS = 64  # rows of the result per work item
DEF COLS = 192  # columns of the result per work item (a multiple of every ISA's GEMM tile width)


cdef void _grid_gemm(idx_t M, idx_t N, idx_t K, const floating *A, idx_t rsa, idx_t csa,
                     const floating *B, idx_t rsb, idx_t csb, floating *C,
                     floating *scratch, idx_t ld_s, int nt) noexcept nogil:
    """C (M x N, C-contiguous) = A @ B, in blocks of ROWS rows x COLS columns of C.

    The GEMM gives every element of C the same arithmetic whatever sub-block it computes, so the
    blocks (fixed sizes, never the thread count) change only which thread does the work. Columns
    are split too so that a batch of one row still uses every thread, each packing only its own
    columns of B."""
    cdef idx_t item, n_col_blocks = (N + COLS - 1) // COLS
    cdef idx_t n_items = (M + ROWS - 1) // ROWS * n_col_blocks, r0, r1, c0, c1
    with parallel(num_threads=nt):
        for item in prange(n_items, schedule='static'):
            r0 = item // n_col_blocks * ROWS
            c0 = item % n_col_blocks * COLS
            r1 = r0 + ROWS
            if r1 > M:
                r1 = M
            c1 = c0 + COLS
            if c1 > N:
                c1 = N
            gemm(r1 - r0, c1 - c0, K, A + r0 * rsa, rsa, csa, B + c0 * csb, rsb, csb,
                 C + r0 * N + c0, N, 0, scratch + cvx_omp_get_thread_num() * ld_s)


cdef int _threads(idx_t rows, idx_t cols, int n_threads):
    """No more threads than work items."""
    cdef idx_t items = (rows + ROWS - 1) // ROWS * ((cols + COLS - 1) // COLS)
    return <int>max(1, min(<idx_t>n_threads, items))


def linear_forward(const floating[:, ::1] x, const floating[:, ::1] w, const floating[::1] b,
                   floating[:, ::1] y, int n_threads):
    """y = x @ w^T (+ b). Fills all of y."""
    cdef idx_t M = x.shape[0], K = x.shape[1], N = w.shape[0], i, j
    n_threads = _threads(M, N, n_threads)
    cdef floating[:, ::1] s = np.empty((n_threads, CVX_GEMM_WORK_ELEMS), np.asarray(y).dtype)
    with nogil:
        _grid_gemm(M, N, K, &x[0, 0], K, 1, &w[0, 0], 1, K, &y[0, 0], &s[0, 0], s.shape[1],
                   n_threads)
        if b is not None:
            for i in range(M):
                for j in range(N):
                    y[i, j] += b[j]


def linear_grad_input(const floating[:, ::1] gy, const floating[:, ::1] w, floating[:, ::1] gx,
                      int n_threads):
    """gx = gy @ w. Fills all of gx."""
    cdef idx_t M = gy.shape[0], N = gy.shape[1], K = w.shape[1]
    n_threads = _threads(M, K, n_threads)
    cdef floating[:, ::1] s = np.empty((n_threads, CVX_GEMM_WORK_ELEMS), np.asarray(gx).dtype)
    with nogil:
        _grid_gemm(M, K, N, &gy[0, 0], N, 1, &w[0, 0], K, 1, &gx[0, 0], &s[0, 0], s.shape[1],
                   n_threads)


def linear_grad_weight(const floating[:, ::1] gy, const floating[:, ::1] x, floating[:, ::1] gw,
                       int n_threads):
    """gw = gy^T @ x. Fills all of gw."""
    cdef idx_t M = gy.shape[0], N = gy.shape[1], K = x.shape[1]
    n_threads = _threads(N, K, n_threads)
    cdef floating[:, ::1] s = np.empty((n_threads, CVX_GEMM_WORK_ELEMS), np.asarray(gw).dtype)
    with nogil:
        _grid_gemm(N, K, M, &gy[0, 0], 1, N, &x[0, 0], K, 1, &gw[0, 0], &s[0, 0], s.shape[1],
                   n_threads)


cdef idx_t _dense_rows(bint is_double) noexcept nogil:
    return isa_table().ddense_rows if is_double else isa_table().sdense_rows


def dense_pack(const floating[:, ::1] w):
    """w (N, K), K >= 1, packed for dense_forward (a 1-D array of w's dtype)."""
    cdef idx_t N = w.shape[0], K = w.shape[1], n
    cdef floating[::1] wp
    if floating is float:
        n = isa_table().sdense_pack(N, K, &w[0, 0], NULL)
        wp = np.empty(n, np.float32)
        isa_table().sdense_pack(N, K, &w[0, 0], &wp[0])
    else:
        n = isa_table().ddense_pack(N, K, &w[0, 0], NULL)
        wp = np.empty(n, np.float64)
        isa_table().ddense_pack(N, K, &w[0, 0], &wp[0])
    return np.asarray(wp)


def dense_forward(const floating[:, ::1] x, const floating[::1] wp, const floating[::1] b,
                  floating[:, ::1] y, int n_threads):
    """y = x @ w^T (+ b) with w packed by dense_pack (under the same instruction set); y (M, N),
    x (M, K), K >= 1. Fills all of y, bitwise linear_forward's."""
    cdef idx_t M = x.shape[0], K = x.shape[1], N = y.shape[1]
    cdef idx_t dr = _dense_rows(floating is double)
    cdef idx_t ns = (N + dr - 1) // dr, s, n1
    cdef const floating *bp = NULL if b is None else &b[0]
    cdef int nt = <int>max(1, min(<idx_t>n_threads, ns))
    with nogil:
        for s in prange(ns, num_threads=nt, schedule='static'):
            n1 = s * dr + dr
            if n1 > N:
                n1 = N
            if floating is float:
                isa_table().sdense_pa(M, N, K, s * dr, n1, &wp[0], &x[0, 0], bp, &y[0, 0])
            else:
                isa_table().ddense_pa(M, N, K, s * dr, n1, &wp[0], &x[0, 0], bp, &y[0, 0])
