"""Functional forms of the ops modern CNNs need (torch.nn.functional semantics): batch
normalisation, relu6/hardtanh/hardswish/hardsigmoid/silu/gelu, adaptive average and max
pooling, nearest/bilinear interpolation and max unpooling, each with its backward pass.

Like ``convext.functional``: every function validates and normalises its arguments (ValueError
or TypeError naming the argument), makes the inputs C-contiguous, allocates the outputs and
calls a compiled kernel; geometry (window bounds, source indices, interpolation weights) is
computed here in Python integers, so the kernels never do size arithmetic that could overflow.
Arrays are float32 or float64 and the result has the input's dtype.
"""
import math
import numbers

import numpy as np

from ._config import get_num_threads
from ._kernels import _batchnorm, _pointwise, _pool, _resample
from ._validation import _as_int, as_pair, check_array, check_out, check_same_dtype, contiguous
from .functional import _buffer, _into

__all__ = [
    "batch_norm", "batch_norm_backward",
    "relu6", "relu6_backward", "hardtanh", "hardtanh_backward",
    "hardswish", "hardswish_backward", "hardsigmoid", "hardsigmoid_backward",
    "silu", "silu_backward", "gelu", "gelu_backward",
    "adaptive_avg_pool2d", "adaptive_avg_pool2d_backward",
    "adaptive_max_pool2d", "adaptive_max_pool2d_backward",
    "interpolate", "interpolate_backward",
    "max_unpool2d", "max_unpool2d_backward",
]

# Below this many elements a kernel runs on one thread: waking the others costs more.
_SERIAL_ELEMS = 1 << 15
# Every size, extent and index the kernels see stays far below 2**63.
_MAX_ELEMS = 1 << 48


def _threads(n):
    return 1 if n < _SERIAL_ELEMS else get_num_threads()


def _shape_str(shape):
    return "(" + ", ".join(str(s) for s in shape) + ")"


def _check_bool(value, name):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__} {value!r}")
    return bool(value)


def _real(value, name, allow_none=False):
    """A finite real number as a Python float."""
    if value is None and allow_none:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {type(value).__name__} {value!r}")
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return v


def _check_size(shape, name, fn):
    if math.prod(shape) > _MAX_ELEMS:
        raise ValueError(f"{fn}: {name} of shape {_shape_str(shape)} is too large")


# ---------------------------------------------------------------------------------------------
# batch normalisation

def _channel_vector(v, name, C, dtype, fn, writable=False):
    if v is None:
        return None
    if writable and not isinstance(v, np.ndarray):
        raise TypeError(f"{fn}: {name} must be a numpy.ndarray (it is updated in place), got "
                        f"{type(v).__name__}")
    arr = check_array(v, name, (1,))
    if arr.shape != (C,):
        raise ValueError(f"{fn}: {name} must have shape ({C},) for x with {C} channels, got "
                         f"{_shape_str(arr.shape)}")
    if arr.dtype != dtype:
        raise TypeError(f"{fn}: {name} must have x's dtype {dtype}, got {arr.dtype}")
    if writable and (arr is not v or not v.flags.writeable):
        raise ValueError(f"{fn}: {name} must be a writable native-byte-order array (it is "
                         f"updated in place)")
    return arr


def _bn_x(x, name="x"):
    """(N, C, *spatial) -> C-contiguous (N, C, L) view or copy."""
    x = check_array(x, name, (2, 3, 4, 5))
    N, C = x.shape[:2]
    _check_size(x.shape, name, "batch_norm")
    return x, contiguous(x).reshape(N, C, math.prod(x.shape[2:]))


def batch_norm(x, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5, return_stats=False, *, out=None):
    """Batch normalisation over the channel axis, as ``torch.nn.functional.batch_norm``.

    ``y = (x - mean) * invstd * weight + bias`` per channel, ``invstd = 1/sqrt(var + eps)``.

    Parameters
    ----------
    x : array (N, C), (N, C, L), (N, C, H, W) or (N, C, D, H, W); float32 or float64.
    running_mean, running_var : arrays (C,) of x's dtype, or None. In eval mode
        (``training=False``) they are the statistics used (both required). In training mode the
        batch's statistics are used and, when given, these are updated IN PLACE:
        ``running_mean = (1 - momentum) * running_mean + momentum * batch_mean`` and
        ``running_var = (1 - momentum) * running_var + momentum * batch_var * n / (n - 1)``
        (the unbiased batch variance; ``n = N * H * W``), as torch.
    weight, bias : arrays (C,) of x's dtype, or None (no scaling / no shift).
    training : bool.
    momentum : float.
    eps : float, > 0.
    return_stats : bool. Also return ``(mean, invstd)``, the per-channel statistics used (the
        batch's in training mode, the running ones in eval mode), as ``batch_norm_backward``
        takes them.
    out : array of x's shape and dtype, optional: written with y (and returned). It may be x
        itself (in-place normalisation); it is only written once everything succeeded.

    Returns
    -------
    y : array of x's shape and dtype; ``(y, mean, invstd)`` with ``return_stats``.

    Notes
    -----
    Statistics are accumulated in double, per channel in a fixed order: the result is bitwise
    the same for every thread count, and in eval mode each sample's output does not depend on
    the rest of the batch. Training needs more than one value per channel (``n > 1``).
    """
    fn = "batch_norm"
    x, x3 = _bn_x(x)
    N, C, L = x3.shape
    dtype = x.dtype
    training = _check_bool(training, "training")
    return_stats = _check_bool(return_stats, "return_stats")
    momentum = _real(momentum, "momentum")
    eps = _real(eps, "eps")
    if eps <= 0:
        raise ValueError(f"{fn}: eps must be positive, got {eps!r}")
    check_out(out, x.shape, dtype)
    rm = _channel_vector(running_mean, "running_mean", C, dtype, fn, writable=training)
    rv = _channel_vector(running_var, "running_var", C, dtype, fn, writable=training)
    w = _channel_vector(weight, "weight", C, dtype, fn)
    b = _channel_vector(bias, "bias", C, dtype, fn)
    if (rm is None) != (rv is None):
        raise ValueError(f"{fn}: running_mean and running_var must both be arrays or both None")
    if rm is not None and training and np.may_share_memory(rm, rv):
        raise ValueError(f"{fn}: running_mean and running_var must not share memory")
    n = N * L
    nt = _threads(x3.size)
    if training:
        if n <= 1:
            raise ValueError(f"{fn}: expected more than 1 value per channel when training, "
                             f"got x of shape {_shape_str(x.shape)}")
        mean64 = np.empty(C, np.float64)
        var64 = np.empty(C, np.float64)
        _batchnorm.batch_stats(x3, mean64, var64, nt)
        mean = mean64.astype(dtype)
        invstd = (1.0 / np.sqrt(var64 + eps)).astype(dtype)
        if rm is not None:  # written at the end, once y is done
            new_m = (momentum * mean64 + (1.0 - momentum) * rm.astype(np.float64)).astype(dtype)
            new_v = (momentum * var64 * (n / (n - 1)) + (1.0 - momentum)
                     * rv.astype(np.float64)).astype(dtype)
    else:
        if rm is None:
            raise ValueError(f"{fn}: running_mean and running_var are required in eval mode "
                             f"(training=False)")
        mean = rm.copy()
        with np.errstate(invalid="ignore", divide="ignore"):
            invstd = (1.0 / np.sqrt(rv.astype(np.float64) + eps)).astype(dtype)
    # torch's transform: y = x * alpha + beta, alpha = invstd * weight, beta = bias - mean*alpha
    alpha = invstd * w if w is not None else invstd
    beta = (b if b is not None else np.zeros(C, dtype)) - mean * alpha
    # the transform is elementwise, so writing over x itself (the very same array) is safe;
    # any other overlap with x gets a fresh buffer
    same = out is x and x.flags.c_contiguous
    y = _buffer(out, x.shape, dtype, w, b, rm, rv, None if same else x)
    if y.size:
        _batchnorm.affine(x3, y.reshape(N, C, L), contiguous(alpha), contiguous(beta), nt)
    y = _into(out, y)
    if training and rm is not None:
        rm[...] = new_m
        rv[...] = new_v
    return (y, mean, invstd) if return_stats else y


def batch_norm_backward(grad_out, x, mean, invstd, weight=None, training=False,
                        needs_input_grad=True, needs_weight_grad=True, needs_bias_grad=True):
    """Gradients of ``batch_norm``: ``(grad_x, grad_weight, grad_bias)``.

    ``mean`` and ``invstd`` are the statistics the forward pass used (``return_stats=True``).
    In training mode they depend on x, and ``grad_x`` is torch's
    ``(g - mean(g) - (x - mean) * invstd**2 * mean(g * (x - mean))) * invstd * weight``; in
    eval mode they are constants and ``grad_x = g * invstd * weight``. ``grad_weight =
    sum(g * (x - mean) * invstd)`` and ``grad_bias = sum(g)`` over (N, spatial). A gradient not
    asked for (or grad_weight/grad_bias when ``weight`` is None, i.e. no affine) is None.
    Reductions are in double, per channel in a fixed order (thread-count independent).
    """
    fn = "batch_norm_backward"
    x, x3 = _bn_x(x)
    gy = check_array(grad_out, "grad_out", (2, 3, 4, 5))
    check_same_dtype(x=x, grad_out=gy)
    if gy.shape != x.shape:
        raise ValueError(f"{fn}: grad_out must have x's shape {_shape_str(x.shape)}, got "
                         f"{_shape_str(gy.shape)}")
    N, C, L = x3.shape
    dtype = x.dtype
    mean = _channel_vector(mean, "mean", C, dtype, fn)
    invstd = _channel_vector(invstd, "invstd", C, dtype, fn)
    if mean is None or invstd is None:
        raise TypeError(f"{fn}: mean and invstd must be arrays (from batch_norm(..., "
                        f"return_stats=True))")
    w = _channel_vector(weight, "weight", C, dtype, fn)
    training = _check_bool(training, "training")
    need_x = _check_bool(needs_input_grad, "needs_input_grad")
    need_w = _check_bool(needs_weight_grad, "needs_weight_grad") and w is not None
    need_b = _check_bool(needs_bias_grad, "needs_bias_grad") and w is not None
    g3 = contiguous(gy).reshape(N, C, L)
    n = N * L
    nt = _threads(x3.size)
    scale = invstd * w if w is not None else invstd
    gx = gw = gb = None
    if training or need_w or need_b:
        sum_g = np.zeros(C, np.float64)
        sum_gxc = np.zeros(C, np.float64)
        if n:
            _batchnorm.backward_reduce(g3, x3, mean.astype(np.float64), sum_g, sum_gxc, nt)
        if need_w:
            gw = (sum_gxc * invstd.astype(np.float64)).astype(dtype)
        if need_b:
            gb = sum_g.astype(dtype)
    if need_x:
        gx = np.empty(x.shape, dtype)
        if gx.size:
            if training:
                inv64 = invstd.astype(np.float64)
                grad_mean = (sum_g / n).astype(dtype)
                k = (sum_gxc * inv64 * inv64 / n).astype(dtype)
                _batchnorm.backward_input_train(g3, x3, gx.reshape(N, C, L), contiguous(mean),
                                                grad_mean, k, contiguous(scale), nt)
            else:
                _batchnorm.scale_only(g3, gx.reshape(N, C, L), contiguous(scale), nt)
    return gx, gw, gb


# ---------------------------------------------------------------------------------------------
# activations (any shape)

def _float_array(x, name):
    if x is None:
        raise TypeError(f"{name} must be an array, got None")
    arr = np.asarray(x)
    return contiguous(check_array(arr, name, (arr.ndim,)))


def _pw_forward(op, x, lo=0.0, hi=0.0):
    x = _float_array(x, "x")
    y = np.empty(x.shape, x.dtype)
    if x.size:
        _pointwise.forward(op, x.reshape(-1), y.reshape(-1), lo, hi, _threads(x.size))
    return y


def _pw_backward(op, grad_out, x, fn, lo=0.0, hi=0.0):
    gy = _float_array(grad_out, "grad_out")
    x = _float_array(x, "x")
    check_same_dtype(grad_out=gy, x=x)
    if gy.shape != x.shape:
        raise ValueError(f"{fn}: grad_out must have the shape of x {_shape_str(x.shape)}, got "
                         f"{_shape_str(gy.shape)}")
    gx = np.empty(x.shape, x.dtype)
    if x.size:
        _pointwise.backward(op, gy.reshape(-1), x.reshape(-1), gx.reshape(-1), lo, hi,
                            _threads(x.size))
    return gx


def _bounds(min_val, max_val, fn):
    lo = _real(min_val, "min_val")
    hi = _real(max_val, "max_val")
    if lo > hi:
        raise ValueError(f"{fn}: min_val ({lo}) must not exceed max_val ({hi})")
    return lo, hi


def hardtanh(x, min_val=-1.0, max_val=1.0):
    """``clamp(x, min_val, max_val)`` (NaN stays NaN), as torch."""
    lo, hi = _bounds(min_val, max_val, "hardtanh")
    return _pw_forward(_pointwise.HARDTANH, x, lo, hi)


def hardtanh_backward(grad_out, x, min_val=-1.0, max_val=1.0):
    """``grad_out`` where ``min_val < x < max_val``, else 0 (0 at both boundaries, as torch,
    and 0 for a NaN input, as torch's vectorised loop; its scalar tail loop differs)."""
    lo, hi = _bounds(min_val, max_val, "hardtanh_backward")
    return _pw_backward(_pointwise.HARDTANH, grad_out, x, "hardtanh_backward", lo, hi)


def relu6(x):
    """``min(max(x, 0), 6)``: hardtanh(x, 0, 6)."""
    return _pw_forward(_pointwise.HARDTANH, x, 0.0, 6.0)


def relu6_backward(grad_out, x):
    """``grad_out`` where ``0 < x < 6``, else 0 (0 at x == 0 and x == 6 as torch; 0 for NaN)."""
    return _pw_backward(_pointwise.HARDTANH, grad_out, x, "relu6_backward", 0.0, 6.0)


def hardswish(x):
    """``x * min(max(x + 3, 0), 6) / 6``."""
    return _pw_forward(_pointwise.HARDSWISH, x)


def hardswish_backward(grad_out, x):
    """0 for ``x <= -3``, ``grad_out * (x/3 + 1/2)`` for ``-3 < x < 3``, else ``grad_out``
    (torch's convention at the kinks: 0 at x == -3, grad_out at x == 3; a NaN input passes
    grad_out)."""
    return _pw_backward(_pointwise.HARDSWISH, grad_out, x, "hardswish_backward")


def hardsigmoid(x):
    """``min(max(x + 3, 0), 6) / 6``."""
    return _pw_forward(_pointwise.HARDSIGMOID, x)


def hardsigmoid_backward(grad_out, x):
    """``grad_out / 6`` where ``-3 < x < 3``, else 0 (0 at both kinks, as torch)."""
    return _pw_backward(_pointwise.HARDSIGMOID, grad_out, x, "hardsigmoid_backward")


def silu(x):
    """``x * sigmoid(x)`` (= ``x / (1 + exp(-x))``; no overflow warning at any x)."""
    return _pw_forward(_pointwise.SILU, x)


def silu_backward(grad_out, x):
    """``grad_out * s * (1 + x * (1 - s))`` with ``s = sigmoid(x)``."""
    return _pw_backward(_pointwise.SILU, grad_out, x, "silu_backward")


def _approximate(approximate, fn):
    if approximate not in ("none", "tanh"):
        raise ValueError(f"{fn}: approximate must be 'none' or 'tanh', got {approximate!r}")
    return _pointwise.GELU if approximate == "none" else _pointwise.GELU_TANH


def gelu(x, approximate="none"):
    """``x * Phi(x)`` with Phi the standard normal CDF (``approximate='none'``, via erf), or
    torch's tanh approximation ``x/2 * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x**3)))``."""
    return _pw_forward(_approximate(approximate, "gelu"), x)


def gelu_backward(grad_out, x, approximate="none"):
    """The exact derivative of the chosen ``gelu`` form times ``grad_out``."""
    return _pw_backward(_approximate(approximate, "gelu_backward"), grad_out, x,
                        "gelu_backward")


# ---------------------------------------------------------------------------------------------
# adaptive pooling

def _plane_input(x, name, fn):
    """(N, C, H, W) or (C, H, W) with non-empty planes -> (x, C-contiguous (P, H, W))."""
    x = check_array(x, name, (3, 4))
    if x.shape[-1] == 0 or x.shape[-2] == 0 or x.shape[-3] == 0:
        raise ValueError(f"{fn}: {name} must have non-empty channels, height and width (only "
                         f"the batch may be empty), got shape {_shape_str(x.shape)}")
    _check_size(x.shape, name, fn)
    H, W = x.shape[-2:]
    return x, contiguous(x).reshape(-1, H, W)


def _adaptive_size(output_size, H, W, fn):
    """output_size: int, or a pair whose entries are ints or None (None keeps the input's)."""
    if isinstance(output_size, (tuple, list)):
        if len(output_size) != 2:
            raise ValueError(f"{fn}: output_size must be an int or a pair, got {output_size!r}")
        pair = tuple(d if v is None else _as_int(v, "output_size")
                     for v, d in zip(output_size, (H, W)))
    elif output_size is None:
        raise TypeError(f"{fn}: output_size must be an int or a pair, got None")
    else:
        v = _as_int(output_size, "output_size")
        pair = (v, v)
    if min(pair) < 0 or pair[0] * H >= _MAX_ELEMS or pair[1] * W >= _MAX_ELEMS:
        raise ValueError(f"{fn}: output_size must be non-negative (and not absurdly large), got "
                         f"{output_size!r} for input planes of size ({H}, {W})")
    return pair


def _windows(size, out):
    """torch's adaptive windows: [floor(i*size/out), ceil((i+1)*size/out)) (exact: every product
    stays below 2**63, checked in Python ints by the caller)."""
    k = np.arange(out, dtype=np.int64)
    return (k * size) // out, -((-(k + 1) * size) // out)


def _adaptive_geom(shape, output_size, fn):
    H, W = shape[-2:]
    OH, OW = _adaptive_size(output_size, H, W, fn)
    _check_size(tuple(shape[:-2]) + (OH, OW), "the output", fn)
    return (OH, OW) + _windows(H, OH) + _windows(W, OW)


def adaptive_avg_pool2d(x, output_size):
    """Adaptive average pooling, as ``torch.nn.functional.adaptive_avg_pool2d``.

    Output (.., OH, OW) from ``output_size`` (an int, or a pair with None meaning "the input's
    size"); output row i averages input rows ``floor(i*H/OH) <= h < ceil((i+1)*H/OH)`` (likewise
    columns). Sums are accumulated in double.
    """
    fn = "adaptive_avg_pool2d"
    x, x3 = _plane_input(x, "x", fn)
    OH, OW, hs, he, ws, we = _adaptive_geom(x.shape, output_size, fn)
    y = np.empty(x.shape[:-2] + (OH, OW), x.dtype)
    if y.size:
        _resample.adaptive_avg_forward(x3, y.reshape(-1, OH, OW), hs, he, ws, we,
                                       _threads(x.size))
    return y


def _grad_for_shape(grad_out, input_shape, fn):
    gy = check_array(grad_out, "grad_out", (3, 4))
    if not isinstance(input_shape, (tuple, list)):
        raise TypeError(f"{fn}: input_shape must be a tuple of ints, got {input_shape!r}")
    shape = tuple(_as_int(s, "input_shape") for s in input_shape)
    if len(shape) != gy.ndim or shape[:-2] != gy.shape[:-2] or min(shape[-3:]) < 1:
        raise ValueError(f"{fn}: input_shape {_shape_str(shape)} does not match grad_out of "
                         f"shape {_shape_str(gy.shape)} (leading dimensions must agree, planes "
                         f"non-empty)")
    _check_size(shape, "input_shape", fn)
    return gy, shape


def adaptive_avg_pool2d_backward(grad_out, input_shape):
    """Gradient of ``adaptive_avg_pool2d``: each ``grad_out`` element spread evenly over its
    window of an input of ``input_shape``."""
    fn = "adaptive_avg_pool2d_backward"
    gy, shape = _grad_for_shape(grad_out, input_shape, fn)
    OH, OW, hs, he, ws, we = _adaptive_geom(shape, gy.shape[-2:], fn)
    H, W = shape[-2:]
    gx = np.empty(shape, gy.dtype)
    if gx.size:
        _resample.adaptive_avg_backward(contiguous(gy).reshape(-1, OH, OW),
                                        gx.reshape(-1, H, W), hs, he, ws, we,
                                        _threads(gx.size))
    return gx


def adaptive_max_pool2d(x, output_size, return_indices=False):
    """Adaptive max pooling, as ``torch.nn.functional.adaptive_max_pool2d`` (windows as
    ``adaptive_avg_pool2d``).

    Returns y, and with ``return_indices`` the int64 flat index ``h * W + w`` of each maximum in
    its plane. Ties go to the first maximum in row-major window order; a window holding NaN
    outputs NaN with the index of its last NaN (torch's CPU rule).
    """
    fn = "adaptive_max_pool2d"
    x, x3 = _plane_input(x, "x", fn)
    return_indices = _check_bool(return_indices, "return_indices")
    OH, OW, hs, he, ws, we = _adaptive_geom(x.shape, output_size, fn)
    y = np.empty(x.shape[:-2] + (OH, OW), x.dtype)
    idx = np.empty(y.shape, np.int64)
    if y.size:
        _resample.adaptive_max_forward(x3, y.reshape(-1, OH, OW), idx.reshape(-1, OH, OW),
                                       hs, he, ws, we, _threads(x.size))
    return (y, idx) if return_indices else y


def _indices(indices, shape, fn):
    idx = np.asarray(indices)
    if not np.issubdtype(idx.dtype, np.integer):
        raise TypeError(f"{fn}: indices must be an integer (int64) array, got {idx.dtype}")
    if idx.shape != tuple(shape):
        raise ValueError(f"{fn}: indices must have shape {_shape_str(shape)}, got "
                         f"{_shape_str(idx.shape)}")
    if idx.dtype.itemsize > 8 or (idx.dtype.kind == "u" and idx.dtype.itemsize == 8):
        if idx.size and (idx.max() > np.iinfo(np.int64).max):
            raise ValueError(f"{fn}: indices hold values beyond int64")
    return contiguous(idx.astype(np.int64, copy=False))


def adaptive_max_pool2d_backward(grad_out, indices, input_shape):
    """Gradient of ``adaptive_max_pool2d``: each ``grad_out`` element added to the input element
    its index names (in its own plane). An index outside [0, H*W) is a ValueError."""
    fn = "adaptive_max_pool2d_backward"
    gy, shape = _grad_for_shape(grad_out, input_shape, fn)
    idx = _indices(indices, gy.shape, fn)
    H, W = shape[-2:]
    OH, OW = gy.shape[-2:]
    gx = np.empty(shape, gy.dtype)
    if gx.size == 0:
        return gx
    if idx.size and (idx.min() < 0 or idx.max() >= H * W):
        raise ValueError(f"{fn}: indices must lie in [0, H*W) = [0, {H * W}) for input_shape "
                         f"{_shape_str(shape)}")
    if gy.size == 0:
        gx.fill(0)
        return gx
    _pool.max_pool2d_backward(contiguous(gy).reshape(-1, OH, OW), idx.reshape(-1, OH, OW),
                              gx.reshape(-1, H, W), _threads(gx.size))
    return gx


# ---------------------------------------------------------------------------------------------
# interpolation

_MODES = ("nearest", "bilinear")


def _interp_args(shape, size, scale_factor, mode, align_corners, recompute_scale_factor, fn):
    """-> (OH, OW, scales) with scales the (h, w) scale factors torch passes to its kernel
    (None: use in/out)."""
    if not isinstance(mode, str) or mode not in _MODES:
        raise ValueError(f"{fn}: mode must be one of {', '.join(map(repr, _MODES))}, got "
                         f"{mode!r}")
    if mode == "nearest":
        if align_corners is not None:
            raise ValueError(f"{fn}: align_corners can only be set with mode 'bilinear', got "
                             f"align_corners={align_corners!r} with mode 'nearest'")
    elif align_corners is not None:
        _check_bool(align_corners, "align_corners")
    if recompute_scale_factor is not None:
        _check_bool(recompute_scale_factor, "recompute_scale_factor")
    H, W = shape[-2:]
    if (size is None) == (scale_factor is None):
        raise ValueError(f"{fn}: exactly one of size and scale_factor must be given, got "
                         f"size={size!r}, scale_factor={scale_factor!r}")
    if size is not None:
        if recompute_scale_factor:
            raise ValueError(f"{fn}: recompute_scale_factor needs scale_factor, not size")
        OH, OW = as_pair(size, "size", allow_zero=True)
        scales = (None, None)
    else:
        if isinstance(scale_factor, (tuple, list)):
            if len(scale_factor) != 2:
                raise ValueError(f"{fn}: scale_factor must be a number or a pair, got "
                                 f"{scale_factor!r}")
            sf = tuple(_real(s, "scale_factor") for s in scale_factor)
        else:
            s = _real(scale_factor, "scale_factor")
            sf = (s, s)
        if min(sf) <= 0:
            raise ValueError(f"{fn}: scale_factor must be positive, got {scale_factor!r}")
        if max(sf) * max(H, W) > _MAX_ELEMS:
            raise ValueError(f"{fn}: scale_factor {scale_factor!r} is too large for input of "
                             f"shape {_shape_str(shape)}")
        OH, OW = math.floor(H * sf[0]), math.floor(W * sf[1])
        scales = (None, None) if recompute_scale_factor else sf
    if OH < 1 or OW < 1:
        raise ValueError(f"{fn}: the output size ({OH}, {OW}) must be positive (size "
                         f"{size!r}, scale_factor {scale_factor!r}, input {_shape_str(shape)})")
    _check_size(tuple(shape[:-2]) + (OH, OW), "the output", fn)
    return OH, OW, scales


def _nearest_table(n_in, n_out, scale):
    """torch's nearest_idx, in float32 arithmetic as torch computes it."""
    o = np.arange(n_out, dtype=np.int64)
    if n_out == n_in:
        return o
    if n_out == 2 * n_in:
        return o >> 1
    f = np.float32(1.0 / scale) if scale is not None and scale > 0 else (
        np.float32(n_in) / np.float32(n_out))
    src = np.floor(o.astype(np.float32) * f).astype(np.int64)
    return np.minimum(src, n_in - 1)


def _linear_table(n_in, n_out, scale, align_corners, dtype):
    """torch's linear source indices and weights: (i0, i1, l0, l1)."""
    ft = np.float32 if dtype == np.float32 else np.float64
    o = np.arange(n_out, dtype=np.int64)
    if align_corners:
        s = ft(n_in - 1) / ft(n_out - 1) if n_out > 1 else ft(0)
        real = (s * o.astype(ft)).astype(ft)
    else:
        s = ft(1.0 / scale) if scale is not None and scale > 0 else ft(n_in) / ft(n_out)
        real = (np.float64(s) * (o + 0.5) - 0.5).astype(ft)
        real = np.where(real < 0, ft(0), real).astype(ft)
    i0 = np.minimum(np.floor(real).astype(np.int64), n_in - 1)
    l1 = np.minimum(np.maximum(real - i0.astype(ft), ft(0)), ft(1)).astype(ft)
    l0 = (ft(1) - l1).astype(ft)
    i1 = i0 + (i0 < n_in - 1)
    return i0, i1, l0.astype(dtype), l1.astype(dtype)


def _interp_tables(shape, OH, OW, scales, mode, align_corners, dtype):
    H, W = shape[-2:]
    if mode == "nearest":
        return _nearest_table(H, OH, scales[0]), _nearest_table(W, OW, scales[1])
    h0, h1, lh0, lh1 = _linear_table(H, OH, scales[0], bool(align_corners), dtype)
    w0, w1, lw0, lw1 = _linear_table(W, OW, scales[1], bool(align_corners), dtype)
    return h0, h1, lh0, lh1, w0, w1, lw0, lw1


def interpolate(x, size=None, scale_factor=None, mode="nearest", align_corners=None,
                recompute_scale_factor=None):
    """Resize the (H, W) planes of (N, C, H, W) or (C, H, W) input, as
    ``torch.nn.functional.interpolate`` for modes 'nearest' and 'bilinear'.

    Give exactly one of ``size`` (int or pair) and ``scale_factor`` (number or pair; the output
    is ``floor(H * scale_factor)``). 'nearest': output row i reads input row
    ``min(floor(i * scale), H - 1)`` with ``scale = 1/scale_factor`` when a scale factor is given
    (and ``recompute_scale_factor`` is not set), else ``H/OH``, in float32 as torch.
    'bilinear': ``align_corners=True`` maps corner pixel centres onto each other
    (``src = i * (H-1)/(OH-1)``); otherwise (the default, False) ``src = (i + 0.5) * scale - 0.5``
    clamped at 0, as torch.
    """
    fn = "interpolate"
    x, x3 = _plane_input(x, "x", fn)
    OH, OW, scales = _interp_args(x.shape, size, scale_factor, mode, align_corners,
                                  recompute_scale_factor, fn)
    t = _interp_tables(x.shape, OH, OW, scales, mode, align_corners, x.dtype)
    y = np.empty(x.shape[:-2] + (OH, OW), x.dtype)
    if y.size:
        kern = _resample.nearest_forward if mode == "nearest" else _resample.bilinear_forward
        kern(x3, y.reshape(-1, OH, OW), *t, _threads(y.size))
    return y


def interpolate_backward(grad_out, input_shape, size=None, scale_factor=None, mode="nearest",
                         align_corners=None, recompute_scale_factor=None):
    """Gradient of ``interpolate`` (same arguments) for an input of ``input_shape``: each output
    gradient is added back to the input elements it was read from, with the same weights."""
    fn = "interpolate_backward"
    gy, shape = _grad_for_shape(grad_out, input_shape, fn)
    OH, OW, scales = _interp_args(shape, size, scale_factor, mode, align_corners,
                                  recompute_scale_factor, fn)
    if gy.shape[-2:] != (OH, OW):
        raise ValueError(f"{fn}: grad_out must have spatial size ({OH}, {OW}) for these "
                         f"arguments, got {_shape_str(gy.shape)}")
    t = _interp_tables(shape, OH, OW, scales, mode, align_corners, gy.dtype)
    H, W = shape[-2:]
    gx = np.empty(shape, gy.dtype)
    if gx.size:
        kern = _resample.nearest_backward if mode == "nearest" else _resample.bilinear_backward
        kern(contiguous(gy).reshape(-1, OH, OW), gx.reshape(-1, H, W), *t, _threads(gy.size))
    return gx


# ---------------------------------------------------------------------------------------------
# max unpooling

def _unpool_size(shape, kernel_size, stride, padding, output_size, fn):
    kh, kw = as_pair(kernel_size, "kernel_size")
    sh, sw = (kh, kw) if stride is None else as_pair(stride, "stride")
    ph, pw = as_pair(padding, "padding", allow_zero=True)
    H, W = shape[-2:]
    default = ((H - 1) * sh - 2 * ph + kh, (W - 1) * sw - 2 * pw + kw)
    if output_size is None:
        out = default
    else:
        if not isinstance(output_size, (tuple, list)):
            raise TypeError(f"{fn}: output_size must be a tuple of ints, got {output_size!r}")
        os_ = tuple(_as_int(v, "output_size") for v in output_size)
        if len(os_) == len(shape) and len(shape) > 2:
            os_ = os_[-2:]
        if len(os_) != 2:
            raise ValueError(f"{fn}: output_size must have 2 entries (or the full output "
                             f"shape), got {output_size!r}")
        for d, (o, s) in enumerate(zip(default, (sh, sw))):
            if not default[d] - s < os_[d] < default[d] + s:
                raise ValueError(f"{fn}: output_size {output_size!r} is invalid: entry {d} must "
                                 f"lie strictly between {default[d] - s} and {default[d] + s} "
                                 f"for input {_shape_str(shape)}")
        out = os_
    if min(out) < 1:
        raise ValueError(f"{fn}: the output size {out} must be positive (kernel_size "
                         f"{kernel_size!r}, stride {stride!r}, padding {padding!r}, input "
                         f"{_shape_str(shape)})")
    _check_size(tuple(shape[:-2]) + tuple(out), "the output", fn)
    return tuple(out)


def max_unpool2d(x, indices, kernel_size, stride=None, padding=0, output_size=None):
    """Partial inverse of ``max_pool2d``, as ``torch.nn.functional.max_unpool2d``: a zero
    output of spatial size ``(H - 1) * stride - 2 * padding + kernel_size`` (or
    ``output_size``) into whose plane each x element is put at its index (flat ``h * OW + w``;
    a repeated index keeps the last value in row-major order). ``indices`` must have x's shape
    and lie in [0, OH*OW): anything else is a ValueError (nothing is written out of bounds).
    """
    fn = "max_unpool2d"
    x = check_array(x, "x", (3, 4))
    _check_size(x.shape, "x", fn)
    idx = _indices(indices, x.shape, fn)
    OH, OW = _unpool_size(x.shape, kernel_size, stride, padding, output_size, fn)
    y = np.empty(x.shape[:-2] + (OH, OW), x.dtype)
    if y.size:
        P = math.prod(x.shape[:-2])
        bad = _resample.max_unpool_forward(contiguous(x).reshape(P, -1), idx.reshape(P, -1),
                                           y.reshape(P, -1), _threads(y.size))
        if bad:
            raise ValueError(f"{fn}: {bad} indices lie outside [0, OH*OW) = [0, {OH * OW}) "
                             f"for the output of spatial size ({OH}, {OW})")
    return y


def max_unpool2d_backward(grad_out, indices, input_shape):
    """Gradient of ``max_unpool2d``: ``grad_x`` of ``input_shape`` (x's shape) gathers
    ``grad_out`` at the indices. An index outside the output plane is a ValueError."""
    fn = "max_unpool2d_backward"
    gy = check_array(grad_out, "grad_out", (3, 4))
    if not isinstance(input_shape, (tuple, list)):
        raise TypeError(f"{fn}: input_shape must be a tuple of ints, got {input_shape!r}")
    shape = tuple(_as_int(s, "input_shape") for s in input_shape)
    if len(shape) != gy.ndim or shape[:-2] != gy.shape[:-2] or min(shape) < 0:
        raise ValueError(f"{fn}: input_shape {_shape_str(shape)} does not match grad_out of "
                         f"shape {_shape_str(gy.shape)} (leading dimensions must agree)")
    _check_size(shape, "input_shape", fn)
    idx = _indices(indices, shape, fn)
    gx = np.empty(shape, gy.dtype)
    if gx.size == 0:
        return gx
    P = math.prod(shape[:-2])
    if gy.size == 0:
        raise ValueError(f"{fn}: indices lie outside the empty output planes of grad_out "
                         f"{_shape_str(gy.shape)}")
    bad = _resample.max_unpool_backward(contiguous(gy).reshape(P, -1), idx.reshape(P, -1),
                                        gx.reshape(P, -1), _threads(gx.size))
    if bad:
        OL = gy.shape[-1] * gy.shape[-2]
        raise ValueError(f"{fn}: {bad} indices lie outside [0, OH*OW) = [0, {OL}) for grad_out "
                         f"of shape {_shape_str(gy.shape)}")
    return gx
