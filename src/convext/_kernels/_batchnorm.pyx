"""Batch normalisation kernels: per-channel statistics, the affine transform, the backward pass.

Contract (the functional layer checks it; these kernels trust it): x, y, grad_out and grad_x
are C-contiguous (N, C, L) arrays of one dtype (L = H*W, or 1 for (N, C) input), with N*L > 0
for the reductions; per-channel vectors are C-contiguous of length C.

Determinism: a per-channel reduction is done by one thread, over n in order and, inside a
plane, in 8 fixed lanes (so the compiler can vectorise it) combined in a fixed tree; every sum
is accumulated in double. The elementwise passes are parallel over the N*C planes and each
element is computed alone. So every result is bitwise identical for every thread count, and in
eval mode (running statistics) each sample's output does not depend on the rest of the batch.
"""
from cython.parallel cimport prange

from ._types cimport floating, idx_t


cdef inline double _plane_sum(const floating *p, idx_t L) noexcept nogil:
    cdef double a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = 0, a5 = 0, a6 = 0, a7 = 0, t = 0
    cdef idx_t i = 0, L8 = L - L % 8
    while i < L8:
        a0 += p[i]
        a1 += p[i + 1]
        a2 += p[i + 2]
        a3 += p[i + 3]
        a4 += p[i + 4]
        a5 += p[i + 5]
        a6 += p[i + 6]
        a7 += p[i + 7]
        i += 8
    while i < L:
        t += p[i]
        i += 1
    return (((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7))) + t


cdef inline double _plane_sqdev(const floating *p, idx_t L, double m) noexcept nogil:
    """sum((p - m)**2)"""
    cdef double a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = 0, a5 = 0, a6 = 0, a7 = 0, t = 0, d
    cdef idx_t i = 0, L8 = L - L % 8
    while i < L8:
        a0 += (p[i] - m) * (p[i] - m)
        a1 += (p[i + 1] - m) * (p[i + 1] - m)
        a2 += (p[i + 2] - m) * (p[i + 2] - m)
        a3 += (p[i + 3] - m) * (p[i + 3] - m)
        a4 += (p[i + 4] - m) * (p[i + 4] - m)
        a5 += (p[i + 5] - m) * (p[i + 5] - m)
        a6 += (p[i + 6] - m) * (p[i + 6] - m)
        a7 += (p[i + 7] - m) * (p[i + 7] - m)
        i += 8
    while i < L:
        d = p[i] - m
        t += d * d
        i += 1
    return (((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7))) + t


cdef inline double _plane_dot_dev(const floating *g, const floating *p, idx_t L,
                                  double m) noexcept nogil:
    """sum(g * (p - m))"""
    cdef double a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = 0, a5 = 0, a6 = 0, a7 = 0, t = 0
    cdef idx_t i = 0, L8 = L - L % 8
    while i < L8:
        a0 += g[i] * (p[i] - m)
        a1 += g[i + 1] * (p[i + 1] - m)
        a2 += g[i + 2] * (p[i + 2] - m)
        a3 += g[i + 3] * (p[i + 3] - m)
        a4 += g[i + 4] * (p[i + 4] - m)
        a5 += g[i + 5] * (p[i + 5] - m)
        a6 += g[i + 6] * (p[i + 6] - m)
        a7 += g[i + 7] * (p[i + 7] - m)
        i += 8
    while i < L:
        t += g[i] * (p[i] - m)
        i += 1
    return (((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7))) + t


def batch_stats(const floating[:, :, ::1] x, double[::1] mean, double[::1] var, int n_threads):
    """Per channel c: mean[c] = mean of x[:, c, :], var[c] = biased variance (two passes)."""
    cdef idx_t N = x.shape[0], C = x.shape[1], L = x.shape[2], c, n
    cdef double s, m, cnt = <double>(N * L)
    with nogil:
        for c in prange(C, num_threads=n_threads, schedule="static"):
            s = 0
            for n in range(N):
                s = s + _plane_sum(&x[n, c, 0], L)
            m = s / cnt
            s = 0
            for n in range(N):
                s = s + _plane_sqdev(&x[n, c, 0], L, m)
            mean[c] = m
            var[c] = s / cnt


def affine(const floating[:, :, ::1] x, floating[:, :, ::1] y, const floating[::1] scale,
           const floating[::1] shift, int n_threads):
    """y[n, c, :] = x[n, c, :] * scale[c] + shift[c]."""
    cdef idx_t N = x.shape[0], C = x.shape[1], L = x.shape[2], p, i
    cdef floating a, b
    cdef const floating *xp
    cdef floating *yp
    with nogil:
        for p in prange(N * C, num_threads=n_threads, schedule="static"):
            a = scale[p % C]
            b = shift[p % C]
            xp = &x[p // C, p % C, 0]
            yp = &y[p // C, p % C, 0]
            for i in range(L):
                yp[i] = xp[i] * a + b


def scale_only(const floating[:, :, ::1] x, floating[:, :, ::1] y, const floating[::1] scale,
               int n_threads):
    """y[n, c, :] = x[n, c, :] * scale[c]."""
    cdef idx_t N = x.shape[0], C = x.shape[1], L = x.shape[2], p, i
    cdef floating a
    cdef const floating *xp
    cdef floating *yp
    with nogil:
        for p in prange(N * C, num_threads=n_threads, schedule="static"):
            a = scale[p % C]
            xp = &x[p // C, p % C, 0]
            yp = &y[p // C, p % C, 0]
            for i in range(L):
                yp[i] = xp[i] * a


def backward_reduce(const floating[:, :, ::1] g, const floating[:, :, ::1] x,
                    const double[::1] mean, double[::1] sum_g, double[::1] sum_gxc,
                    int n_threads):
    """Per channel c: sum_g[c] = sum of g[:, c, :]; sum_gxc[c] = sum of g * (x - mean[c])."""
    cdef idx_t N = x.shape[0], C = x.shape[1], L = x.shape[2], c, n
    cdef double s, d, m
    with nogil:
        for c in prange(C, num_threads=n_threads, schedule="static"):
            m = mean[c]
            s = 0
            d = 0
            for n in range(N):
                s = s + _plane_sum(&g[n, c, 0], L)
                d = d + _plane_dot_dev(&g[n, c, 0], &x[n, c, 0], L, m)
            sum_g[c] = s
            sum_gxc[c] = d


def backward_input_train(const floating[:, :, ::1] g, const floating[:, :, ::1] x,
                         floating[:, :, ::1] gx, const floating[::1] mean,
                         const floating[::1] grad_mean, const floating[::1] k,
                         const floating[::1] scale, int n_threads):
    """gx = (g - grad_mean[c] - (x - mean[c]) * k[c]) * scale[c] (torch's formula, with
    grad_mean = sum(g)/n, k = sum(g*(x-mean)) * invstd**2 / n, scale = invstd * weight)."""
    cdef idx_t N = x.shape[0], C = x.shape[1], L = x.shape[2], p, i
    cdef floating m, gm, kk, a
    cdef const floating *xp
    cdef const floating *gp
    cdef floating *op
    with nogil:
        for p in prange(N * C, num_threads=n_threads, schedule="static"):
            m = mean[p % C]
            gm = grad_mean[p % C]
            kk = k[p % C]
            a = scale[p % C]
            xp = &x[p // C, p % C, 0]
            gp = &g[p // C, p % C, 0]
            op = &gx[p // C, p % C, 0]
            for i in range(L):
                op[i] = (gp[i] - gm - (xp[i] - m) * kk) * a
