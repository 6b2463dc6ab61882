"""Resampling kernels: adaptive average/max pooling, nearest and bilinear interpolation and
max unpooling, forward and backward.

Contract (the functional layer checks it; these kernels trust it): the input is viewed as
P = N*C independent planes, every array is C-contiguous, floats share one dtype. The geometry
arrives as per-row and per-column tables the functional layer computed in Python integers
(window starts and ends, source indices, interpolation weights), all already inside the
plane. Max-unpool indices come from the caller and are NOT trusted: every one is checked
against the plane before it is used, bad ones are skipped and counted so the caller can raise.

Parallelism: one work item is one plane; a plane of the output (or of the gradient) is
written by exactly one thread in a fixed order, so results are bitwise the same for every
thread count and the scatters need no atomics.
"""
from cython.parallel cimport prange, threadid
from libc.stdint cimport int64_t
from libc.string cimport memset
from libc.math cimport INFINITY

import numpy as np

from ._types cimport floating, idx_t


# ---------------------------------------------------------------------------------------------
# adaptive pooling: window rows [hs[oh], he[oh]) x columns [ws[ow], we[ow])

def adaptive_avg_forward(const floating[:, :, ::1] x, floating[:, :, ::1] y,
                         const int64_t[::1] hs, const int64_t[::1] he, const int64_t[::1] ws,
                         const int64_t[::1] we, int n_threads):
    cdef idx_t P = x.shape[0], W = x.shape[2], OH = y.shape[1], OW = y.shape[2]
    cdef idx_t p, oh, ow, ih, iw
    cdef double acc
    cdef const floating *xp
    with nogil:
        for p in prange(P, num_threads=n_threads, schedule="static"):
            xp = &x[p, 0, 0]
            for oh in range(OH):
                for ow in range(OW):
                    acc = 0
                    for ih in range(hs[oh], he[oh]):
                        for iw in range(ws[ow], we[ow]):
                            acc = acc + xp[ih * W + iw]
                    y[p, oh, ow] = <floating>(acc / ((he[oh] - hs[oh]) * (we[ow] - ws[ow])))


def adaptive_avg_backward(const floating[:, :, ::1] gy, floating[:, :, ::1] gx,
                          const int64_t[::1] hs, const int64_t[::1] he,
                          const int64_t[::1] ws, const int64_t[::1] we, int n_threads):
    cdef idx_t P = gx.shape[0], H = gx.shape[1], W = gx.shape[2]
    cdef idx_t OH = gy.shape[1], OW = gy.shape[2], p, oh, ow, ih, iw
    cdef floating g
    cdef floating *gp
    with nogil:
        for p in prange(P, num_threads=n_threads, schedule="static"):
            gp = &gx[p, 0, 0]
            memset(gp, 0, H * W * sizeof(floating))
            for oh in range(OH):
                for ow in range(OW):
                    g = gy[p, oh, ow] / <floating>((he[oh] - hs[oh]) * (we[ow] - ws[ow]))
                    for ih in range(hs[oh], he[oh]):
                        for iw in range(ws[ow], we[ow]):
                            gp[ih * W + iw] = gp[ih * W + iw] + g


def adaptive_max_forward(const floating[:, :, ::1] x, floating[:, :, ::1] y,
                         int64_t[:, :, ::1] indices, const int64_t[::1] hs,
                         const int64_t[::1] he, const int64_t[::1] ws, const int64_t[::1] we,
                         int n_threads):
    """Row-major scan; a value replaces the maximum when greater or NaN (torch's CPU rule:
    ties go to the first maximum, a NaN window to its last NaN)."""
    cdef idx_t P = x.shape[0], W = x.shape[2], OH = y.shape[1], OW = y.shape[2]
    cdef idx_t p, oh, ow, ih, iw, best
    cdef floating m, v
    cdef const floating *xp
    with nogil:
        for p in prange(P, num_threads=n_threads, schedule="static"):
            xp = &x[p, 0, 0]
            for oh in range(OH):
                for ow in range(OW):
                    m = -INFINITY
                    best = hs[oh] * W + ws[ow]
                    for ih in range(hs[oh], he[oh]):
                        for iw in range(ws[ow], we[ow]):
                            v = xp[ih * W + iw]
                            if v > m or v != v:
                                m = v
                                best = ih * W + iw
                    y[p, oh, ow] = m
                    indices[p, oh, ow] = best


# ---------------------------------------------------------------------------------------------
# interpolation

def nearest_forward(const floating[:, :, ::1] x, floating[:, :, ::1] y,
                    const int64_t[::1] hi, const int64_t[::1] wi, int n_threads):
    """y[p, oh, ow] = x[p, hi[oh], wi[ow]]."""
    cdef idx_t P = x.shape[0], OH = y.shape[1], OW = y.shape[2], p, oh, ow
    cdef const floating *row
    cdef floating *out
    with nogil:
        for p in prange(P, num_threads=n_threads, schedule="static"):
            for oh in range(OH):
                row = &x[p, hi[oh], 0]
                out = &y[p, oh, 0]
                for ow in range(OW):
                    out[ow] = row[wi[ow]]


def nearest_backward(const floating[:, :, ::1] gy, floating[:, :, ::1] gx,
                     const int64_t[::1] hi, const int64_t[::1] wi, int n_threads):
    cdef idx_t P = gx.shape[0], H = gx.shape[1], W = gx.shape[2]
    cdef idx_t OH = gy.shape[1], OW = gy.shape[2], p, oh, ow
    cdef floating *row
    cdef const floating *g
    with nogil:
        for p in prange(P, num_threads=n_threads, schedule="static"):
            memset(&gx[p, 0, 0], 0, H * W * sizeof(floating))
            for oh in range(OH):
                row = &gx[p, hi[oh], 0]
                g = &gy[p, oh, 0]
                for ow in range(OW):
                    row[wi[ow]] = row[wi[ow]] + g[ow]


cdef void _bilinear_row(const floating *r, floating *t, const int64_t *w0, const int64_t *w1,
                        const floating *lw0, const floating *lw1, idx_t OW) noexcept nogil:
    """One input row r interpolated along the width: t[ow] = lw0 * r[w0] + lw1 * r[w1]."""
    cdef idx_t ow
    for ow in range(OW):
        t[ow] = lw0[ow] * r[w0[ow]] + lw1[ow] * r[w1[ow]]


def bilinear_forward(const floating[:, :, ::1] x, floating[:, :, ::1] y,
                     const int64_t[::1] h0, const int64_t[::1] h1, const floating[::1] lh0,
                     const floating[::1] lh1, const int64_t[::1] w0, const int64_t[::1] w1,
                     const floating[::1] lw0, const floating[::1] lw1, int n_threads):
    """y = lh0 * (lw0 * x[h0, w0] + lw1 * x[h0, w1]) + lh1 * (lw0 * x[h1, w0] + lw1 * x[h1, w1])
    (torch's order of operations). Each input row's interpolation along the width (the inner
    sums, _bilinear_row) is computed once into one of the thread's two row buffers and used
    by every consecutive output row that reads it (two at scale 2): the same expressions, one
    gather pass per input row instead of two per output row."""
    cdef idx_t P = x.shape[0], OH = y.shape[1], OW = y.shape[2], p, oh, ow
    cdef const floating *t0
    cdef const floating *t1
    cdef floating *out
    cdef floating *buf
    cdef int64_t ra, rb, a, b  # the input rows the two buffers hold (-1: none), the rows needed
    cdef int sa, sb  # the buffers holding rows a and b
    cdef floating a0, a1
    if P == 0 or OH == 0 or OW == 0:
        return
    cdef floating[::1] scratch = np.empty(
        2 * OW * max(n_threads, 1), dtype=np.float64 if floating is double else np.float32
    )
    with nogil:
        for p in prange(P, num_threads=n_threads, schedule="static"):
            buf = &scratch[2 * OW * threadid()]
            ra = -1
            rb = -1
            for oh in range(OH):
                a = h0[oh]
                b = h1[oh]
                sa = 0 if ra == a else (1 if rb == a else -1)
                sb = 0 if ra == b else (1 if rb == b else -1)
                if sa < 0:  # into the buffer that does not hold b
                    sa = 1 if sb == 0 else 0
                    _bilinear_row(&x[p, a, 0], buf + sa * OW, &w0[0], &w1[0], &lw0[0], &lw1[0],
                                  OW)
                    if sa == 0:
                        ra = a
                    else:
                        rb = a
                if sb < 0:
                    sb = sa if b == a else 1 - sa
                    if b != a:
                        _bilinear_row(&x[p, b, 0], buf + sb * OW, &w0[0], &w1[0], &lw0[0],
                                      &lw1[0], OW)
                        if sb == 0:
                            ra = b
                        else:
                            rb = b
                t0 = buf + sa * OW
                t1 = buf + sb * OW
                a0 = lh0[oh]
                a1 = lh1[oh]
                out = &y[p, oh, 0]
                for ow in range(OW):
                    out[ow] = a0 * t0[ow] + a1 * t1[ow]


def bilinear_backward(const floating[:, :, ::1] gy, floating[:, :, ::1] gx,
                      const int64_t[::1] h0, const int64_t[::1] h1, const floating[::1] lh0,
                      const floating[::1] lh1, const int64_t[::1] w0, const int64_t[::1] w1,
                      const floating[::1] lw0, const floating[::1] lw1, int n_threads):
    cdef idx_t P = gx.shape[0], H = gx.shape[1], W = gx.shape[2]
    cdef idx_t OH = gy.shape[1], OW = gy.shape[2], p, oh, ow
    cdef floating *r0
    cdef floating *r1
    cdef floating g, a0, a1
    with nogil:
        for p in prange(P, num_threads=n_threads, schedule="static"):
            memset(&gx[p, 0, 0], 0, H * W * sizeof(floating))
            for oh in range(OH):
                r0 = &gx[p, h0[oh], 0]
                r1 = &gx[p, h1[oh], 0]
                a0 = lh0[oh]
                a1 = lh1[oh]
                for ow in range(OW):
                    g = gy[p, oh, ow]
                    r0[w0[ow]] = r0[w0[ow]] + a0 * lw0[ow] * g
                    r0[w1[ow]] = r0[w1[ow]] + a0 * lw1[ow] * g
                    r1[w0[ow]] = r1[w0[ow]] + a1 * lw0[ow] * g
                    r1[w1[ow]] = r1[w1[ow]] + a1 * lw1[ow] * g


# ---------------------------------------------------------------------------------------------
# max unpooling (untrusted indices)

def max_unpool_forward(const floating[:, ::1] x, const int64_t[:, ::1] indices,
                       floating[:, ::1] y, int n_threads):
    """y[p] = 0, then y[p, indices[p, i]] = x[p, i] in order of i (a repeated index keeps the
    last value). Returns the number of indices outside [0, y.shape[1]) (skipped)."""
    cdef idx_t P = x.shape[0], L = x.shape[1], OL = y.shape[1], p, i
    cdef int64_t j
    cdef idx_t bad = 0
    with nogil:
        for p in prange(P, num_threads=n_threads, schedule="static"):
            memset(&y[p, 0], 0, OL * sizeof(floating))
            for i in range(L):
                j = indices[p, i]
                if 0 <= j < OL:
                    y[p, j] = x[p, i]
                else:
                    bad += 1
    return bad


def max_unpool_backward(const floating[:, ::1] gy, const int64_t[:, ::1] indices,
                        floating[:, ::1] gx, int n_threads):
    """gx[p, i] = gy[p, indices[p, i]]. Returns the number of indices outside
    [0, gy.shape[1]) (their gradient is set to 0)."""
    cdef idx_t P = gx.shape[0], L = gx.shape[1], OL = gy.shape[1], p, i
    cdef int64_t j
    cdef idx_t bad = 0
    with nogil:
        for p in prange(P, num_threads=n_threads, schedule="static"):
            for i in range(L):
                j = indices[p, i]
                if 0 <= j < OL:
                    gx[p, i] = gy[p, j]
                else:
                    gx[p, i] = 0
                    bad += 1
    return bad
