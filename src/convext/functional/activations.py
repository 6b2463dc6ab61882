"""Activations (any shape, float32 or float64; the result has the input's dtype) and their
gradients. relu, the select of the piecewise ones and the newer pointwise ops (relu6,
hardtanh, hardswish, hardsigmoid, silu, gelu) are compiled loops; the rest is vectorised NumPy
(compiled loops were kept only where they measured faster than NumPy: docs/benchmarks.md,
"Figures measured once")."""

from __future__ import annotations

import numpy as np

from .. import _recycle
from .._config import threads_for
from .._kernels import _activations, _pointwise
from .._typing import ArrayLike, FloatArray
from .._validation import _as_int, check_same_dtype, contiguous
from ._common import _float_array, _grad_pair, _real, _scalar, _shape_str


def _where(c, test, t, a, b):
    """``np.where(c > t, a, b)`` (test ``">"``) or ``np.where(c <= t, a, b)`` (``"<="``) for
    same-shape arrays, as a branch-free compiled select (NumPy's where branches, and is far
    slower on unpredictable masks: docs/benchmarks.md, "Figures measured once")."""
    out = _recycle.empty(c.shape, c.dtype)
    if c.size:
        _activations.select(
            c.reshape(-1),
            c.dtype.type(t),
            test == "<=",
            contiguous(a).reshape(-1),
            contiguous(b).reshape(-1),
            out.reshape(-1),
            threads_for(c.size, "elementwise"),
        )
    return out


def relu(x: ArrayLike) -> FloatArray:
    """``max(x, 0)`` elementwise (NaN stays NaN). A compiled loop: it beat ``np.maximum``."""
    x = _float_array(x, "x")
    y = _recycle.empty(x.shape, x.dtype)
    if x.size:
        _activations.relu_forward(
            contiguous(x).reshape(-1), y.reshape(-1), threads_for(x.size, "elementwise")
        )
    return y


def relu_backward(grad_out: ArrayLike, x: ArrayLike) -> FloatArray:
    """0 where ``x <= 0``, else ``grad_out`` (the subgradient at 0 is 0 and a NaN input passes
    the gradient through, as torch's threshold_backward)."""
    gy, x = _grad_pair(grad_out, x, "x", "relu_backward")
    gx = _recycle.empty(x.shape, x.dtype)
    if x.size:
        _activations.relu_backward(
            gy.reshape(-1), x.reshape(-1), gx.reshape(-1), threads_for(x.size, "elementwise")
        )
    return gx


def leaky_relu(x: ArrayLike, negative_slope: float = 0.01) -> FloatArray:
    """``x`` where ``x > 0``, else ``negative_slope * x``."""
    x = _float_array(x, "x")
    a = _scalar(negative_slope, "negative_slope", x.dtype)
    return _where(x, ">", 0, x, x * a)


def leaky_relu_backward(
    grad_out: ArrayLike,
    x: ArrayLike,
    negative_slope: float = 0.01,
) -> FloatArray:
    """``grad_out`` where ``x > 0``, else ``negative_slope * grad_out``."""
    gy, x = _grad_pair(grad_out, x, "x", "leaky_relu_backward")
    a = _scalar(negative_slope, "negative_slope", x.dtype)
    return _where(x, ">", 0, gy, gy * a)


def elu(x: ArrayLike, alpha: float = 1.0) -> FloatArray:
    """``x`` where ``x > 0``, else ``alpha * (exp(x) - 1)`` (computed with expm1)."""
    x = _float_array(x, "x")
    a = _scalar(alpha, "alpha", x.dtype)
    with np.errstate(under="ignore"):
        return _where(x, ">", 0, x, a * np.expm1(np.minimum(x, x.dtype.type(0))))


def elu_backward(grad_out: ArrayLike, x: ArrayLike, alpha: float = 1.0) -> FloatArray:
    """``grad_out * alpha * exp(x)`` where ``x <= 0``, else ``grad_out`` (x is the input)."""
    gy, x = _grad_pair(grad_out, x, "x", "elu_backward")
    a = _scalar(alpha, "alpha", x.dtype)
    with np.errstate(under="ignore"):
        return _where(x, "<=", 0, gy * a * np.exp(np.minimum(x, x.dtype.type(0))), gy)


def _sigmoid(x):
    """1 / (1 + exp(-x)) without overflow: exp only ever sees -|x|."""
    with np.errstate(under="ignore"):
        e = np.exp(-np.abs(x))
    one = x.dtype.type(1)
    # at x == 0 both pieces are 1/2, so x > 0 selects like x >= 0
    return _where(x, ">", 0, one / (one + e), e / (one + e))


def sigmoid(x: ArrayLike) -> FloatArray:
    """``1 / (1 + exp(-x))``, computed without overflow for any x (no warning at +-1000)."""
    return _sigmoid(_float_array(x, "x"))


def sigmoid_backward(grad_out: ArrayLike, y: ArrayLike) -> FloatArray:
    """``grad_out * y * (1 - y)`` with ``y = sigmoid(x)`` the forward output."""
    gy, y = _grad_pair(grad_out, y, "y", "sigmoid_backward")
    return gy * y * (y.dtype.type(1) - y)


def tanh(x: ArrayLike) -> FloatArray:
    """``tanh(x)`` elementwise."""
    return np.tanh(_float_array(x, "x"))


def tanh_backward(grad_out: ArrayLike, y: ArrayLike) -> FloatArray:
    """``grad_out * (1 - y**2)`` with ``y = tanh(x)`` the forward output."""
    gy, y = _grad_pair(grad_out, y, "y", "tanh_backward")
    return gy * (y.dtype.type(1) - y * y)


def softplus(x: ArrayLike, beta: float = 1.0, threshold: float = 20.0) -> FloatArray:
    """``log(1 + exp(beta*x)) / beta``, and ``x`` itself where ``beta*x > threshold`` (torch's
    rule). Computed as ``(max(bx, 0) + log1p(exp(-|bx|))) / beta``: no overflow at any x."""
    x = _float_array(x, "x")
    b = _scalar(beta, "beta", x.dtype)
    th = _scalar(threshold, "threshold", x.dtype)
    bx = x * b
    with np.errstate(under="ignore"):
        soft = (np.maximum(bx, x.dtype.type(0)) + np.log1p(np.exp(-np.abs(bx)))) / b
    return _where(bx, ">", th, x, soft)


def softplus_backward(
    grad_out: ArrayLike,
    x: ArrayLike,
    beta: float = 1.0,
    threshold: float = 20.0,
) -> FloatArray:
    """``grad_out * sigmoid(beta*x)``, and ``grad_out`` where ``beta*x > threshold``."""
    gy, x = _grad_pair(grad_out, x, "x", "softplus_backward")
    b = _scalar(beta, "beta", x.dtype)
    th = _scalar(threshold, "threshold", x.dtype)
    bx = x * b
    return _where(bx, ">", th, gy, gy * _sigmoid(bx))


def _axis(axis, ndim, fn):
    a = _as_int(axis, "axis")
    if not -max(ndim, 1) <= a < max(ndim, 1):
        raise ValueError(f"{fn}: axis {a} is out of range for an array of {ndim} dimensions")
    return a if ndim else None


def _log_softmax(x, axis):
    """x - logsumexp(x) along axis, shifted by the maximum (exact for logits of +-1000).

    As torch: a slice holding +inf, NaN or only -inf gives NaN everywhere in that slice (the
    shift x - max is then inf - inf or NaN); -inf next to finite values gives -inf."""
    m = np.max(x, axis=axis, keepdims=True, initial=-np.inf)
    # (the sum is 0 only over an empty axis, whose log(0) meets no element)
    with np.errstate(under="ignore", invalid="ignore", divide="ignore"):
        z = x - m
        return z - np.log(np.sum(np.exp(z), axis=axis, keepdims=True))


def softmax(x: ArrayLike, axis: int = -1) -> FloatArray:
    """``exp(x) / sum(exp(x))`` along ``axis`` (shifted by the maximum: no overflow)."""
    x = _float_array(x, "x")
    axis = _axis(axis, x.ndim, "softmax")
    m = np.max(x, axis=axis, keepdims=True, initial=-np.inf)
    # as torch: NaN throughout a slice holding +inf, NaN or only -inf (see _log_softmax)
    with np.errstate(under="ignore", invalid="ignore"):
        e = np.exp(x - m)
        return e / np.sum(e, axis=axis, keepdims=True)


def softmax_backward(grad_out: ArrayLike, y: ArrayLike, axis: int = -1) -> FloatArray:
    """``y * (grad_out - sum(grad_out * y, axis))`` with ``y = softmax(x, axis)``."""
    gy, y = _grad_pair(grad_out, y, "y", "softmax_backward")
    axis = _axis(axis, y.ndim, "softmax_backward")
    return y * (gy - np.sum(gy * y, axis=axis, keepdims=True))


def log_softmax(x: ArrayLike, axis: int = -1) -> FloatArray:
    """``x - logsumexp(x, axis)``, computed stably."""
    x = _float_array(x, "x")
    return _log_softmax(x, _axis(axis, x.ndim, "log_softmax"))


def log_softmax_backward(grad_out: ArrayLike, y: ArrayLike, axis: int = -1) -> FloatArray:
    """``grad_out - exp(y) * sum(grad_out, axis)`` with ``y = log_softmax(x, axis)``."""
    gy, y = _grad_pair(grad_out, y, "y", "log_softmax_backward")
    axis = _axis(axis, y.ndim, "log_softmax_backward")
    with np.errstate(under="ignore"):
        return gy - np.exp(y) * np.sum(gy, axis=axis, keepdims=True)


def _pw_forward(op, x, lo=0.0, hi=0.0):
    x = _float_array(x, "x")
    y = _recycle.empty(x.shape, x.dtype)
    if x.size:
        _pointwise.forward(
            op, x.reshape(-1), y.reshape(-1), lo, hi, threads_for(x.size, "elements")
        )
    return y


def _pw_backward(op, grad_out, x, fn, lo=0.0, hi=0.0):
    gy = _float_array(grad_out, "grad_out")
    x = _float_array(x, "x")
    check_same_dtype(grad_out=gy, x=x)
    if gy.shape != x.shape:
        raise ValueError(
            f"{fn}: grad_out must have the shape of x {_shape_str(x.shape)}, got "
            f"{_shape_str(gy.shape)}"
        )
    gx = _recycle.empty(x.shape, x.dtype)
    if x.size:
        _pointwise.backward(
            op,
            gy.reshape(-1),
            x.reshape(-1),
            gx.reshape(-1),
            lo,
            hi,
            threads_for(x.size, "elements"),
        )
    return gx


def _bounds(min_val, max_val, fn):
    lo = _real(min_val, "min_val")
    hi = _real(max_val, "max_val")
    if lo > hi:
        raise ValueError(f"{fn}: min_val ({lo}) must not exceed max_val ({hi})")
    return lo, hi


def hardtanh(x: ArrayLike, min_val: float = -1.0, max_val: float = 1.0) -> FloatArray:
    """``clamp(x, min_val, max_val)`` (NaN stays NaN), as torch."""
    lo, hi = _bounds(min_val, max_val, "hardtanh")
    return _pw_forward(_pointwise.HARDTANH, x, lo, hi)


def hardtanh_backward(
    grad_out: ArrayLike,
    x: ArrayLike,
    min_val: float = -1.0,
    max_val: float = 1.0,
) -> FloatArray:
    """``grad_out`` where ``min_val < x < max_val``, else 0 (0 at both boundaries, as torch,
    and 0 for a NaN input, as torch's vectorised loop; its scalar tail loop differs)."""
    lo, hi = _bounds(min_val, max_val, "hardtanh_backward")
    return _pw_backward(_pointwise.HARDTANH, grad_out, x, "hardtanh_backward", lo, hi)


def relu6(x: ArrayLike) -> FloatArray:
    """``min(max(x, 0), 6)``: hardtanh(x, 0, 6)."""
    return _pw_forward(_pointwise.HARDTANH, x, 0.0, 6.0)


def relu6_backward(grad_out: ArrayLike, x: ArrayLike) -> FloatArray:
    """``grad_out`` where ``0 < x < 6``, else 0 (0 at x == 0 and x == 6 as torch; 0 for NaN)."""
    return _pw_backward(_pointwise.HARDTANH, grad_out, x, "relu6_backward", 0.0, 6.0)


def hardswish(x: ArrayLike) -> FloatArray:
    """``x * min(max(x + 3, 0), 6) / 6``."""
    return _pw_forward(_pointwise.HARDSWISH, x)


def hardswish_backward(grad_out: ArrayLike, x: ArrayLike) -> FloatArray:
    """0 for ``x <= -3``, ``grad_out * (x/3 + 1/2)`` for ``-3 < x < 3``, else ``grad_out``
    (torch's convention at the kinks: 0 at x == -3, grad_out at x == 3; a NaN input gives NaN,
    as torch's vectorised loop does)."""
    return _pw_backward(_pointwise.HARDSWISH, grad_out, x, "hardswish_backward")


def hardsigmoid(x: ArrayLike) -> FloatArray:
    """``min(max(x + 3, 0), 6) / 6``."""
    return _pw_forward(_pointwise.HARDSIGMOID, x)


def hardsigmoid_backward(grad_out: ArrayLike, x: ArrayLike) -> FloatArray:
    """``grad_out / 6`` where ``-3 < x < 3``, else 0 (0 at both kinks, as torch)."""
    return _pw_backward(_pointwise.HARDSIGMOID, grad_out, x, "hardsigmoid_backward")


def silu(x: ArrayLike) -> FloatArray:
    """``x * sigmoid(x)`` (= ``x / (1 + exp(-x))``; no overflow warning at any x)."""
    return _pw_forward(_pointwise.SILU, x)


def silu_backward(grad_out: ArrayLike, x: ArrayLike) -> FloatArray:
    """``grad_out * s * (1 + x * (1 - s))`` with ``s = sigmoid(x)``."""
    return _pw_backward(_pointwise.SILU, grad_out, x, "silu_backward")


def _approximate(approximate, fn):
    if approximate not in ("none", "tanh"):
        raise ValueError(f"{fn}: approximate must be 'none' or 'tanh', got {approximate!r}")
    return _pointwise.GELU if approximate == "none" else _pointwise.GELU_TANH


def gelu(x: ArrayLike, approximate: str = "none") -> FloatArray:
    """``x * Phi(x)`` with Phi the standard normal CDF (``approximate='none'``, via erf), or
    torch's tanh approximation ``x/2 * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x**3)))``."""
    return _pw_forward(_approximate(approximate, "gelu"), x)


def gelu_backward(grad_out: ArrayLike, x: ArrayLike, approximate: str = "none") -> FloatArray:
    """The exact derivative of the chosen ``gelu`` form times ``grad_out``."""
    return _pw_backward(_approximate(approximate, "gelu_backward"), grad_out, x, "gelu_backward")
