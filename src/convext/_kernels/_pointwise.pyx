"""Elementwise activations of modern CNNs, forward and backward: hardtanh (relu6 is
hardtanh(0, 6)), hardswish, hardsigmoid, silu, gelu (erf and tanh forms).

Compiled because NumPy has no erf and because each of these is several NumPy passes (a
temporary per operation) where one loop suffices. Formulas and the gradient conventions at the
kinks are torch's (aten/src/ATen/native/cpu/Activation.cpp, derivatives.yaml):
- hardtanh:  clamp(x, lo, hi) (NaN stays NaN); grad = g where lo < x < hi, else 0 (0 at the
             boundaries and for NaN: torch's vectorised loop; its scalar tail loop passes a
             NaN's gradient, so torch itself is inconsistent there).
- hardswish: x * min(max(x + 3, 0), 6) / 6; grad = g * (x/3 + 1/2) for -3 < x < 3, g for
             x >= 3, 0 for x <= -3 (so 0 at x == -3 and g at x == 3), NaN for NaN (torch's
             vectorised loop; its scalar tail loop passes g, as for hardtanh).
- hardsigmoid: min(max(x + 3, 0), 6) / 6; grad = g/6 for -3 < x < 3, else 0.
- silu:      x / (1 + exp(-x)); grad = g * s * (1 + x * (1 - s)), s = sigmoid(x).
- gelu:      x/2 * (1 + erf(x/sqrt(2))); grad = g * (cdf + x * pdf).
- gelu tanh: x/2 * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3))) and its exact derivative.
The transcendental ones are evaluated in double for both dtypes (then rounded once).

Contract: flat C-contiguous arrays of one length and dtype; the caller allocates the output.
Each element is computed alone, so results do not depend on the thread count.
"""
from cython.parallel cimport prange
from libc.math cimport erf, exp, tanh, M_SQRT1_2, M_SQRT2, M_2_SQRTPI

from ._types cimport floating, idx_t

cdef enum:
    OP_HARDTANH = 0
    OP_HARDSWISH = 1
    OP_HARDSIGMOID = 2
    OP_SILU = 3
    OP_GELU = 4
    OP_GELU_TANH = 5

# the op codes, for the Python caller
HARDTANH = OP_HARDTANH
HARDSWISH = OP_HARDSWISH
HARDSIGMOID = OP_HARDSIGMOID
SILU = OP_SILU
GELU = OP_GELU
GELU_TANH = OP_GELU_TANH

cdef double _KAPPA = 0.044715


def forward(int op, const floating[::1] x, floating[::1] y, double lo, double hi,
            int n_threads):
    cdef idx_t i, n = x.shape[0]
    cdef floating v, low = <floating>lo, high = <floating>hi, three = 3, six = 6, zero = 0, t
    cdef double d, beta = M_SQRT2 * M_2_SQRTPI * 0.5
    with nogil:
        if op == OP_HARDTANH:
            for i in prange(n, num_threads=n_threads, schedule="static"):
                v = x[i]
                v = low if v < low else v
                y[i] = high if v > high else v
        elif op == OP_HARDSWISH:
            for i in prange(n, num_threads=n_threads, schedule="static"):
                v = x[i]
                t = v + three
                t = zero if t < zero else t
                t = six if t > six else t
                y[i] = v * t / six
        elif op == OP_HARDSIGMOID:
            for i in prange(n, num_threads=n_threads, schedule="static"):
                t = x[i] + three
                t = zero if t < zero else t
                t = six if t > six else t
                y[i] = t / six
        elif op == OP_SILU:
            for i in prange(n, num_threads=n_threads, schedule="static"):
                d = x[i]
                y[i] = <floating>(d / (1.0 + exp(-d)))
        elif op == OP_GELU:
            for i in prange(n, num_threads=n_threads, schedule="static"):
                d = x[i]
                y[i] = <floating>(d * 0.5 * (1.0 + erf(d * M_SQRT1_2)))
        elif op == OP_GELU_TANH:
            for i in prange(n, num_threads=n_threads, schedule="static"):
                d = x[i]
                y[i] = <floating>(0.5 * d * (1.0 + tanh(beta * (d + _KAPPA * d * d * d))))


def backward(int op, const floating[::1] g, const floating[::1] x, floating[::1] gx,
             double lo, double hi, int n_threads):
    cdef idx_t i, n = x.shape[0]
    cdef floating v, gv, t, low = <floating>lo, high = <floating>hi, zero = 0, six = 6
    cdef floating three = 3, m3 = -3, half = 0.5
    cdef double d, s, th, beta = M_SQRT2 * M_2_SQRTPI * 0.5
    cdef double pdf_c = M_2_SQRTPI * M_SQRT1_2 * 0.5
    with nogil:
        if op == OP_HARDTANH:
            for i in prange(n, num_threads=n_threads, schedule="static"):
                v = x[i]
                gv = g[i]
                gx[i] = gv if (v > low and v < high) else zero
        elif op == OP_HARDSWISH:
            # the middle piece computed for every element: the choices are vector blends
            # (setup.py, -fno-trapping-math)
            for i in prange(n, num_threads=n_threads, schedule="static"):
                v = x[i]
                gv = g[i]
                t = gv * (v / three + half)
                t = gv if v >= three else t
                gx[i] = zero if v <= m3 else t
        elif op == OP_HARDSIGMOID:
            for i in prange(n, num_threads=n_threads, schedule="static"):
                v = x[i]
                t = g[i] / six
                gx[i] = t if (v > m3 and v < three) else zero
        elif op == OP_SILU:
            for i in prange(n, num_threads=n_threads, schedule="static"):
                d = x[i]
                s = 1.0 / (1.0 + exp(-d))
                gx[i] = <floating>(g[i] * (s * (1.0 + d * (1.0 - s))))
        elif op == OP_GELU:
            for i in prange(n, num_threads=n_threads, schedule="static"):
                d = x[i]
                s = 0.5 * (1.0 + erf(d * M_SQRT1_2))
                gx[i] = <floating>(g[i] * (s + d * exp(-0.5 * d * d) * pdf_c))
        elif op == OP_GELU_TANH:
            for i in prange(n, num_threads=n_threads, schedule="static"):
                d = x[i]
                th = tanh(beta * (d + _KAPPA * d * d * d))
                gx[i] = <floating>(g[i] * (0.5 * (1.0 + th) + 0.5 * d * (1.0 - th * th) * beta
                                           * (1.0 + 3.0 * _KAPPA * d * d)))
