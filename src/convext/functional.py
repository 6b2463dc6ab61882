"""The functional API: validated, NumPy-in, NumPy-out operations with explicit gradients.

Each function checks and normalises its arguments (raising ValueError/TypeError that names the
argument and the shapes), makes the inputs C-contiguous, allocates the outputs and calls a compiled
kernel from ``convext._kernels``. Nothing here loops over elements. Semantics, shapes and argument
names follow ``torch.nn.functional``; arrays are NCHW, float32 or float64, and the dtype of the
inputs is the dtype of the result.
"""
from typing import NamedTuple

import numpy as np

from ._config import get_num_threads
from ._kernels import _conv, _linear
from ._validation import (
    as_pair,
    check_alloc,
    check_array,
    check_extent,
    check_out,
    check_positive_int,
    check_same_dtype,
    contiguous,
    conv_output_size,
    window_geometry,
)

__all__ = [
    "conv2d",
    "conv2d_backward",
    "conv_output_size",
    "linear",
    "linear_backward",
]


# ---------------------------------------------------------------------------------------------
# helpers

def _shape_str(shape):
    return "(" + ", ".join(str(s) for s in shape) + ")"


def _into(out, result):
    """Copy a finished result into the caller's ``out`` (if any) and return what to give back."""
    if out is None:
        return result
    if result is not out:
        np.copyto(out, result)
    return out


def _buffer(out, shape, dtype, *inputs):
    """Where a kernel may write directly: ``out`` itself when it is C-contiguous, aligned and
    shares no memory with the inputs; otherwise a fresh array (copied into ``out`` at the end,
    so a caller's ``out`` is only written once everything succeeded)."""
    if (out is not None and out.flags.c_contiguous and out.flags.aligned
            and not any(a is not None and np.may_share_memory(out, a) for a in inputs)):
        return out
    return np.empty(shape, dtype=dtype)


# ---------------------------------------------------------------------------------------------
# fully connected

def _linear_setup(x, weight, fn):
    x = check_array(x, "x", range(1, 33))
    weight = check_array(weight, "weight", (2,))
    check_same_dtype(x=x, weight=weight)
    if x.shape[-1] != weight.shape[1]:
        raise ValueError(f"{fn}: x must have shape (..., {weight.shape[1]}) to match weight of "
                         f"shape {_shape_str(weight.shape)}, got {_shape_str(x.shape)}")
    return x, weight


def _gemm_threads(m, n, k):
    return 1 if m * n * k < _SERIAL_MACS else get_num_threads()


def linear(x, weight, bias=None):
    """``y = x @ weight.T + bias``, as ``torch.nn.functional.linear``.

    x: (..., in_features); weight: (out_features, in_features); bias: (out_features,) or None.
    Returns (..., out_features). Computed with convext's own GEMM and threads (not NumPy's
    BLAS, whose thread pool would compete with convext's for the cores).
    """
    x, weight = _linear_setup(x, weight, "linear")
    F_, K = weight.shape
    if bias is not None:
        bias = check_array(bias, "bias", (1,))
        check_same_dtype(x=x, bias=bias)
        if bias.shape != (F_,):
            raise ValueError(f"linear: bias must have shape ({F_},) to match weight of shape "
                             f"{_shape_str(weight.shape)}, got {_shape_str(bias.shape)}")
    x2 = contiguous(x.reshape(-1, K))
    y = np.empty((x2.shape[0], F_), x.dtype)
    if y.size and K:
        _linear.linear_forward(x2, contiguous(weight),
                               None if bias is None else contiguous(bias), y,
                               _gemm_threads(x2.shape[0], F_, K))
    elif y.size:
        y[...] = 0 if bias is None else bias
    return y.reshape(x.shape[:-1] + (F_,))


def linear_backward(grad_out, x, weight, needs_input_grad=True, needs_weight_grad=True,
                    needs_bias_grad=True):
    """Gradients of ``linear(x, weight, bias)``: ``(grad_x, grad_weight, grad_bias)`` =
    ``(grad_out @ weight, grad_out^T @ x, grad_out summed over all but the last axis)``, each
    None when not asked for (and not computed)."""
    fn = "linear_backward"
    x, weight = _linear_setup(x, weight, fn)
    F_, K = weight.shape
    gy = check_array(grad_out, "grad_out", range(1, 33))
    check_same_dtype(x=x, grad_out=gy)
    if gy.shape != x.shape[:-1] + (F_,):
        raise ValueError(f"{fn}: grad_out must have shape {_shape_str(x.shape[:-1] + (F_,))} "
                         f"for x of shape {_shape_str(x.shape)} and weight "
                         f"{_shape_str(weight.shape)}, got {_shape_str(gy.shape)}")
    gy2 = contiguous(gy.reshape(-1, F_))
    M = gy2.shape[0]
    threads = _gemm_threads(M, F_, K)
    gx = gw = gb = None
    if needs_input_grad:
        gx = np.zeros((M, K), x.dtype)
        if gx.size and F_:
            _linear.linear_grad_input(gy2, contiguous(weight), gx, threads)
        gx = gx.reshape(x.shape)
    if needs_weight_grad:
        gw = np.zeros(weight.shape, x.dtype)
        if gw.size and M:
            _linear.linear_grad_weight(gy2, contiguous(x.reshape(-1, K)), gw, threads)
    if needs_bias_grad:
        gb = gy2.sum(axis=0)
    return gx, gw, gb


# ---------------------------------------------------------------------------------------------
# convolution

class _ConvGeom(NamedTuple):
    stride: tuple
    pad_top: int
    pad_left: int
    dilation: tuple
    groups: int
    out_hw: tuple


def _conv_setup(x, weight, bias, stride, padding, dilation, groups, fn="conv2d"):
    """Validate conv2d arguments; return (x4, w, b, unbatched, geometry)."""
    x = check_array(x, "x", (3, 4))
    weight = check_array(weight, "weight", (4,))
    if bias is not None:
        bias = check_array(bias, "bias", (1,))
    check_same_dtype(x=x, weight=weight, bias=bias)
    groups = check_positive_int(groups, "groups")
    stride = as_pair(stride, "stride")
    dilation = as_pair(dilation, "dilation")
    unbatched = x.ndim == 3
    x4 = x[None] if unbatched else x
    N, C, H, W = x4.shape
    F, Cg, kh, kw = weight.shape
    if F % groups:
        raise ValueError(f"{fn}: groups={groups} must divide the weight's out_channels; "
                         f"got weight of shape {_shape_str(weight.shape)}")
    if C != Cg * groups:
        raise ValueError(f"{fn}: x has {C} channels but weight of shape "
                         f"{_shape_str(weight.shape)} with groups={groups} expects "
                         f"{Cg * groups}; x has shape {_shape_str(x.shape)}")
    if kh < 1 or kw < 1 or F < 1:
        raise ValueError(f"{fn}: weight must have at least one filter and a kernel of at least "
                         f"1x1, got shape {_shape_str(weight.shape)}")
    if (H == 0 or W == 0) and N * C:
        raise ValueError(f"{fn}: x must have a non-empty height and width (only the batch or "
                         f"the channels may be empty), got shape {_shape_str(x.shape)}")
    if bias is not None and bias.shape != (F,):
        raise ValueError(f"{fn}: bias must have shape ({F},) to match weight of shape "
                         f"{_shape_str(weight.shape)}, got {_shape_str(bias.shape)}")
    ekh, ekw = dilation[0] * (kh - 1) + 1, dilation[1] * (kw - 1) + 1
    if isinstance(padding, str):
        if padding == "valid":
            pads = ((0, 0), (0, 0))
        elif padding == "same":
            if stride != (1, 1):
                raise ValueError(f"{fn}: padding='same' is not supported with stride "
                                 f"{stride}; use stride=1 or explicit padding")
            # PyTorch's rule: total d*(k-1), the odd one on the bottom/right
            pads = tuple((t // 2, t - t // 2) for t in (ekh - 1, ekw - 1))
        else:
            raise ValueError(f"{fn}: padding must be an int, a pair of ints, 'valid' or 'same', "
                             f"got {padding!r}")
    else:
        ph, pw = as_pair(padding, "padding", allow_zero=True)
        pads = ((ph, ph), (pw, pw))
    (pt, pb), (pl, pr) = pads
    out_hw = window_geometry(
        fn, (H, W), (kh, kw), stride, pads, dilation,
        names=("weight", "stride", "padding", "dilation"),
        detail=f"; x has shape {_shape_str(x.shape)}, weight {_shape_str(weight.shape)}, "
               f"padding {padding!r}")
    return x4, weight, bias, unbatched, _ConvGeom(stride, pt, pl, dilation, groups, out_hw)


# Below this many multiply-adds a convolution or linear layer runs on one thread: waking a second thread
# costs more than it saves (and on a busy machine far more).
_SERIAL_MACS = 1 << 19


def _kernel_geom(g, x_shape, w_shape):
    """The kernels' geometry arguments, ending with the thread count for this problem size."""
    macs = x_shape[0] * w_shape[0] * g.out_hw[0] * g.out_hw[1] * int(np.prod(w_shape[1:]))
    threads = 1 if macs < _SERIAL_MACS else get_num_threads()
    return (g.stride[0], g.stride[1], g.pad_top, g.pad_left, g.dilation[0], g.dilation[1],
            g.groups, threads)


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *, out=None):
    """2-D convolution (cross-correlation, as in every deep-learning library).

    Parameters
    ----------
    x : array (N, C, H, W), or (C, H, W) for one unbatched image; float32 or float64.
    weight : array (F, C // groups, kH, kW), same dtype as x.
    bias : array (F,) or None.
    stride, dilation : int or (int, int), >= 1.
    padding : int or (int, int) >= 0 (zeros on both sides), ``'valid'`` (no padding) or
        ``'same'`` (output size = input size; stride must be 1; an even total padding
        ``dilation*(k-1)`` is split evenly, an odd one puts the extra row/column at the
        bottom/right, exactly as PyTorch does).
    groups : int dividing C and F. ``groups == C`` is a depthwise convolution.
    out : optional array of the output's shape and dtype to write into.

    Returns
    -------
    y : array (N, F, OH, OW), or (F, OH, OW) for unbatched x, with
        ``OH = floor((H + 2*pad_h - dilation_h*(kH - 1) - 1) / stride_h) + 1`` (likewise OW),
        ``y[n, f] = bias[f] + sum_{c, i, j} weight[f, c, i, j] * x_pad[n, g*C/groups + c,
        oh*stride + i*dilation, ow*stride + j*dilation]``.

    Notes
    -----
    Extra memory: per thread, one tile of unfolded input or one row-unfolded image (the direct
    route), about 1.5 MB together with the GEMM's packed panels; besides that, contiguous copies
    of inputs that are not C-contiguous.
    """
    x4, weight, bias, unbatched, g = _conv_setup(x, weight, bias, stride, padding, dilation,
                                                 groups)
    N, F = x4.shape[0], weight.shape[0]
    shape4 = (N, F) + g.out_hw
    shape = shape4[1:] if unbatched else shape4
    check_alloc(shape4, "conv2d: the output (from x, weight, stride, padding and dilation) of "
                "shape", x4.dtype.itemsize)
    check_out(out, shape, x4.dtype)
    y = _buffer(out, shape, x4.dtype, x, weight, bias)
    y4 = y.reshape(shape4)
    if y4.size == 0:
        pass
    elif x4.size == 0:  # no input channels: the output is the bias
        y4[...] = 0 if bias is None else bias[:, None, None]
    else:
        _conv.conv2d_forward(contiguous(x4), contiguous(weight),
                             None if bias is None else contiguous(bias), y4,
                             *_kernel_geom(g, x4.shape, weight.shape))
    return _into(out, y)


def conv2d_backward(grad_out, x, weight, stride=1, padding=0, dilation=1, groups=1,
                    needs_input_grad=True, needs_weight_grad=True, needs_bias_grad=True):
    """Gradients of ``conv2d(x, weight, bias, stride, padding, dilation, groups)``.

    Given ``grad_out`` = dL/dy (the shape of conv2d's output), returns
    ``(grad_x, grad_weight, grad_bias)``: dL/dx (shape of x), dL/dweight (shape of weight) and
    dL/dbias (shape (F,)). A gradient that is not asked for is None and is not computed.

    grad_x is the full correlation of grad_out (dilated by the stride) with the weight rotated
    by 180 degrees; grad_weight correlates x with grad_out; grad_bias sums grad_out over the
    batch and the pixels.

    Extra memory: one tile of unfolded input per thread, and for grad_weight up to 16 partial
    sums of the weight's size (they make the result independent of the thread count).
    """
    x4, weight, _, unbatched, g = _conv_setup(x, weight, None, stride, padding, dilation,
                                              groups, fn="conv2d_backward")
    gy = check_array(grad_out, "grad_out", (3, 4))
    check_same_dtype(x=x4, grad_out=gy)
    N, F = x4.shape[0], weight.shape[0]
    shape4 = (N, F) + g.out_hw
    if gy.shape != (shape4[1:] if unbatched else shape4):
        raise ValueError(f"conv2d_backward: grad_out must have the output's shape "
                         f"{_shape_str(shape4[1:] if unbatched else shape4)} for x of shape "
                         f"{_shape_str(x4.shape[1:] if unbatched else x4.shape)} and weight "
                         f"{_shape_str(weight.shape)}, got {_shape_str(gy.shape)}")
    # grad_out may be a broadcast view: its contiguous copy must fit in memory
    check_alloc(shape4, "conv2d_backward: grad_out of shape", x4.dtype.itemsize)
    gy4 = contiguous(gy.reshape(shape4))
    dtype = x4.dtype
    empty = gy4.size == 0 or x4.size == 0
    grad_x = grad_w = grad_b = None
    if needs_input_grad:
        grad_x = np.zeros(x4.shape, dtype) if empty else np.empty(x4.shape, dtype)
        if not empty:
            _conv.conv2d_grad_input(gy4, contiguous(weight), grad_x,
                                    *_kernel_geom(g, x4.shape, weight.shape))
        if unbatched:
            grad_x = grad_x[0]
    if needs_weight_grad:
        grad_w = np.zeros(weight.shape, dtype)
        if not empty:
            _conv.conv2d_grad_weight(gy4, contiguous(x4), grad_w,
                                     *_kernel_geom(g, x4.shape, weight.shape))
    if needs_bias_grad:
        grad_b = np.zeros(F, dtype)
        if gy4.size:
            threads = 1 if gy4.size < _SERIAL_MACS else get_num_threads()
            _conv.conv2d_grad_bias(gy4, grad_b, threads)
    return grad_x, grad_w, grad_b


# ---------------------------------------------------------------------------------------------
# pooling

from ._kernels import _pool  # noqa: E402
from ._validation import _as_int  # noqa: E402

__all__ += [
    "max_pool2d",
    "max_pool2d_backward",
    "avg_pool2d",
    "avg_pool2d_backward",
    "lp_pool2d",
    "lp_pool2d_backward",
    "global_avg_pool2d",
    "global_avg_pool2d_backward",
]


class _PoolGeom(NamedTuple):
    kernel: tuple
    stride: tuple
    padding: tuple
    dilation: tuple
    out_hw: tuple


def _check_bool(value, name):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__} {value!r}")
    return bool(value)


def _check_input_shape(input_shape, fn, itemsize):
    """A tuple of 3 or 4 non-negative ints: the shape of the pooled input, which the backward
    pass allocates (so it must fit the geometry bound and the machine's memory)."""
    if not isinstance(input_shape, (tuple, list)):
        raise TypeError(f"{fn}: input_shape must be a tuple of ints, got {input_shape!r}")
    shape = tuple(_as_int(s, "input_shape") for s in input_shape)
    if len(shape) not in (3, 4) or min(shape) < 0:
        raise ValueError(f"{fn}: input_shape must be (N, C, H, W) or (C, H, W) with "
                         f"non-negative sizes, got {input_shape!r}")
    return check_alloc(shape, f"{fn}: input_shape", itemsize)


def _pool_geom(shape, kernel_size, stride, padding, dilation, ceil_mode, fn, shape_name="x"):
    """Validate the pooling geometry for an input of ``shape``; return a _PoolGeom.

    Padding may be at most half the kernel (PyTorch's rule), and the (padded) input must hold at
    least one window."""
    kh, kw = as_pair(kernel_size, "kernel_size")
    sh, sw = (kh, kw) if stride is None else as_pair(stride, "stride")
    ph, pw = as_pair(padding, "padding", allow_zero=True)
    dh, dw = as_pair(dilation, "dilation")
    _check_bool(ceil_mode, "ceil_mode")
    if ph > kh // 2 or pw > kw // 2:
        raise ValueError(f"{fn}: padding ({ph}, {pw}) must be at most half of the kernel size "
                         f"({kh}, {kw})")
    if min(shape[-3:]) == 0:
        raise ValueError(f"{fn}: {shape_name} must have non-empty channels, height and width "
                         f"(only the batch may be empty), got shape {_shape_str(shape)}")
    oh, ow = window_geometry(
        fn, shape[-2:], (kh, kw), (sh, sw), ((ph, ph), (pw, pw)), (dh, dw), ceil_mode,
        detail=f"; {shape_name} has shape {_shape_str(shape)}, kernel_size {kernel_size!r}, "
               f"padding {padding!r}")
    return _PoolGeom((kh, kw), (sh, sw), (ph, pw), (dh, dw), (oh, ow))


# Below this many elements a pooling call runs on one thread: waking the others costs more.
_POOL_SERIAL_ELEMS = 1 << 15


def _pool_threads(shape):
    """Threads for a pooling kernel over an input of this shape."""
    return 1 if int(np.prod(shape)) < _POOL_SERIAL_ELEMS else get_num_threads()


def _planes(a4):
    """(N, C, H, W) -> C-contiguous (N*C, H, W) view or copy."""
    N, C, H, W = a4.shape
    return contiguous(a4).reshape(N * C, H, W)


def _pool_out_shape(shape, g):
    return tuple(shape[:-2]) + g.out_hw


def _as4(shape):
    return (1,) + tuple(shape) if len(shape) == 3 else tuple(shape)


def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """2-D max pooling, as ``torch.nn.functional.max_pool2d``.

    Parameters
    ----------
    x : array (N, C, H, W) or (C, H, W); float32 or float64; any memory layout.
    kernel_size : int or (int, int).
    stride : int or (int, int); default ``kernel_size``.
    padding : int or (int, int), at most half the kernel size. Padding acts as -inf: it is never
        the maximum, so an all-negative input never yields 0.
    dilation : int or (int, int), spacing between the window's taps.
    ceil_mode : bool. Use ceil instead of floor in the output size; a last window that would
        start in the bottom/right padding is dropped (PyTorch's rule).
    return_indices : bool. Also return the argmax mask.

    Returns
    -------
    y : array (N, C, OH, OW) (or (C, OH, OW)),
        ``OH = floor_or_ceil((H + 2*pad - dilation*(k - 1) - 1) / stride) + 1``.
    indices : int64 array of y's shape (when ``return_indices``): the flat index ``h * W + w``
        of the chosen element in its (H, W) input plane, exactly as torch returns them.

    Notes
    -----
    Ties go to the first maximum in row-major window order. A window holding NaN outputs NaN and
    its index is that of the LAST NaN in row-major window order (torch's CPU choice). A window
    that contains no input element at all (only possible with dilation) outputs -inf with index
    -1, which ``max_pool2d_backward`` skips.
    """
    x = check_array(x, "x", (3, 4))
    g = _pool_geom(x.shape, kernel_size, stride, padding, dilation, ceil_mode, "max_pool2d")
    return_indices = _check_bool(return_indices, "return_indices")
    x4 = x[None] if x.ndim == 3 else x
    N, C = x4.shape[:2]
    shape4 = (N, C) + g.out_hw
    y = np.empty(shape4, x.dtype)
    idx = np.empty(shape4, np.int64)
    if y.size:
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = g.kernel, g.stride, g.padding, g.dilation
        _pool.max_pool2d_forward(_planes(x4), y.reshape(N * C, *g.out_hw),
                                 idx.reshape(N * C, *g.out_hw), kh, kw, sh, sw, ph, pw, dh, dw,
                                 _pool_threads(x4.shape))
    if x.ndim == 3:
        y, idx = y[0], idx[0]
    return (y, idx) if return_indices else y


def max_pool2d_backward(grad_out, indices, input_shape):
    """Gradient of max_pool2d: ``grad_x`` of ``input_shape``, zero except where the mask points.

    Each ``grad_out`` element is added to the input element its index names (in its own plane);
    overlapping windows that chose the same element accumulate. ``indices`` is the int64 mask
    from ``max_pool2d(..., return_indices=True)``; an index of -1 (empty window) contributes
    nothing and any other index outside [0, H*W) is a ValueError. The result is the same for
    every thread count (one thread owns each (n, c) plane).
    """
    fn = "max_pool2d_backward"
    gy = check_array(grad_out, "grad_out", (3, 4))
    shape = _check_input_shape(input_shape, fn, gy.dtype.itemsize)
    idx = np.asarray(indices)
    if not np.issubdtype(idx.dtype, np.integer):
        raise TypeError(f"{fn}: indices must be an integer (int64) array, got {idx.dtype}")
    if idx.shape != gy.shape:
        raise ValueError(f"{fn}: indices must have grad_out's shape {_shape_str(gy.shape)}, "
                         f"got {_shape_str(idx.shape)}")
    if len(shape) != gy.ndim or shape[:-2] != gy.shape[:-2]:
        raise ValueError(f"{fn}: input_shape {_shape_str(shape)} does not match grad_out of "
                         f"shape {_shape_str(gy.shape)} (leading dimensions must agree)")
    shape4, gy4 = _as4(shape), gy.reshape(_as4(gy.shape))
    N, C, H, W = shape4
    if gy4.size and H * W == 0:
        raise ValueError(f"{fn}: input_shape {_shape_str(shape)} has empty (H, W) planes, but "
                         f"grad_out of shape {_shape_str(gy.shape)} and its indices point "
                         f"into them")
    if idx.dtype.kind == "u" and idx.size and int(idx.max()) > np.iinfo(np.int64).max:
        # a cast to int64 would wrap such an index to a negative one (-1 is skipped silently)
        raise ValueError(f"{fn}: indices hold {int(idx.max())}, beyond int64; indices must be "
                         f"flat positions in [0, H*W) (or -1)")
    if gy4.size == 0:
        return np.zeros(shape, gy.dtype)
    gx = np.empty(shape4, gy.dtype)
    bad = _pool.max_pool2d_backward(_planes(gy4),
                                    _planes(idx.reshape(gy4.shape).astype(np.int64, copy=False)),
                                    gx.reshape(N * C, H, W), _pool_threads(shape4))
    if bad:
        raise ValueError(f"{fn}: {bad} indices lie outside [0, H*W) = [0, {H * W}) for "
                         f"input_shape {_shape_str(shape)}")
    return gx.reshape(shape)


def _avg_args(g, count_include_pad, divisor_override, n_threads):
    count_include_pad = _check_bool(count_include_pad, "count_include_pad")
    if divisor_override is None:
        div = 0
    else:
        div = check_positive_int(divisor_override, "divisor_override")
    (kh, kw), (sh, sw), (ph, pw) = g.kernel, g.stride, g.padding
    # the kernels form the window area kh*kw as a divisor (the geometry bound)
    check_extent(kh * kw, "kernel_size", f"the window area {kh} x {kw}")
    return kh, kw, sh, sw, ph, pw, count_include_pad, div, n_threads


def avg_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """2-D average pooling, as ``torch.nn.functional.avg_pool2d``.

    Parameters as ``max_pool2d`` (no dilation); padding is zeros. The divisor of a window is
    ``divisor_override`` when given (a positive int); otherwise, with ``count_include_pad``, the
    number of window positions inside the input padded on all sides (a ceil_mode window hanging
    past the padding is clipped), and without it the number of real input elements in the
    window. A window with no input element outputs 0.
    """
    x = check_array(x, "x", (3, 4))
    g = _pool_geom(x.shape, kernel_size, stride, padding, 1, ceil_mode, "avg_pool2d")
    args = _avg_args(g, count_include_pad, divisor_override, _pool_threads(x.shape))
    x4 = x[None] if x.ndim == 3 else x
    N, C = x4.shape[:2]
    y = np.empty((N, C) + g.out_hw, x.dtype)
    if y.size:
        _pool.avg_pool2d_forward(_planes(x4), y.reshape(N * C, *g.out_hw), *args)
    return y[0] if x.ndim == 3 else y


def avg_pool2d_backward(grad_out, input_shape, kernel_size, stride=None, padding=0,
                        ceil_mode=False, count_include_pad=True, divisor_override=None):
    """Gradient of ``avg_pool2d`` with the same arguments: each ``grad_out`` element, divided by
    its window's divisor, is added to every input element of the window."""
    fn = "avg_pool2d_backward"
    gy = check_array(grad_out, "grad_out", (3, 4))
    shape = _check_input_shape(input_shape, fn, gy.dtype.itemsize)
    g = _pool_geom(shape, kernel_size, stride, padding, 1, ceil_mode, fn, "input_shape")
    args = _avg_args(g, count_include_pad, divisor_override, _pool_threads(shape))
    if gy.shape != _pool_out_shape(shape, g):
        raise ValueError(f"{fn}: grad_out must have shape "
                         f"{_shape_str(_pool_out_shape(shape, g))} for input_shape "
                         f"{_shape_str(shape)}, got {_shape_str(gy.shape)}")
    shape4, gy4 = _as4(shape), gy.reshape(_as4(gy.shape))
    N, C, H, W = shape4
    if gy4.size == 0:
        return np.zeros(shape, gy.dtype)
    gx = np.empty(shape4, gy.dtype)
    _pool.avg_pool2d_backward(_planes(gy4), gx.reshape(N * C, H, W), *args)
    return gx.reshape(shape)


def _check_norm_type(norm_type, fn):
    if isinstance(norm_type, (bool, np.bool_)) or not isinstance(norm_type, (int, float,
                                                                              np.number)):
        raise TypeError(f"{fn}: norm_type must be a number, got {type(norm_type).__name__}")
    p = float(norm_type)
    if np.isnan(p) or p <= 0:
        raise ValueError(f"{fn}: norm_type must be positive (or inf), got {norm_type!r}")
    return p


def lp_pool2d(x, norm_type, kernel_size, stride=None, ceil_mode=False):
    """Power-average pooling, as ``torch.nn.functional.lp_pool2d``:
    ``y = (kH*kW * avg_pool2d(x**p, kernel_size, stride, 0, ceil_mode)) ** (1/p)``.

    With p = 2 this is L2-norm pooling ``sqrt(sum x**2)``; p = inf is max pooling of ``|x|``.
    Like torch, a ceil_mode window clipped by the input edge is divided by its clipped size and
    then multiplied by the full kernel area; negative sums with an odd or fractional p give NaN.
    ``norm_type`` must be positive or inf.
    """
    fn = "lp_pool2d"
    x = contiguous(check_array(x, "x", (3, 4)))
    p = _check_norm_type(norm_type, fn)
    if p == np.inf:
        return max_pool2d(np.abs(x), kernel_size, stride, 0, 1, ceil_mode)
    kh, kw = as_pair(kernel_size, "kernel_size")
    s = avg_pool2d(x ** x.dtype.type(p), kernel_size, stride, 0, ceil_mode)
    s *= kh * kw
    with np.errstate(invalid="ignore"):
        return s ** x.dtype.type(1.0 / p)


def lp_pool2d_backward(grad_out, x, out, norm_type, kernel_size, stride=None, ceil_mode=False):
    """Gradient of ``lp_pool2d``; ``out`` is the forward result.

    ``grad_x = x**(p-1) * avg_pool2d_backward(grad_out * kH*kW * out**(1-p))``. Where ``out``
    is 0 (every element of the window is 0) the gradient through that window is defined as 0,
    as torch documents.
    """
    fn = "lp_pool2d_backward"
    x = contiguous(check_array(x, "x", (3, 4)))
    gy = contiguous(check_array(grad_out, "grad_out", (3, 4)))
    out = contiguous(check_array(out, "out", (3, 4)))
    check_same_dtype(x=x, grad_out=gy, out=out)
    p = _check_norm_type(norm_type, fn)
    g = _pool_geom(x.shape, kernel_size, stride, 0, 1, ceil_mode, fn)
    want = _pool_out_shape(x.shape, g)
    for name, a in (("grad_out", gy), ("out", out)):
        if a.shape != want:
            raise ValueError(f"{fn}: {name} must have shape {_shape_str(want)} for x of shape "
                             f"{_shape_str(x.shape)}, got {_shape_str(a.shape)}")
    if p == np.inf:
        _, idx = max_pool2d(np.abs(x), kernel_size, stride, 0, 1, ceil_mode,
                            return_indices=True)
        return max_pool2d_backward(gy, idx, x.shape) * np.sign(x)
    t = x.dtype.type
    kh, kw = g.kernel
    coef = np.zeros(want, x.dtype)
    nz = out != 0
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        coef[nz] = gy[nz] * t(kh * kw) * out[nz] ** t(1.0 - p)
        gx = avg_pool2d_backward(coef, x.shape, kernel_size, stride, 0, ceil_mode)
        if p != 1.0:
            gx *= x ** t(p - 1.0)
    return gx


def global_avg_pool2d(x):
    """Mean over each (H, W) plane, keeping the dims: (N, C, H, W) -> (N, C, 1, 1), or
    (C, H, W) -> (C, 1, 1); as ``torch.nn.functional.adaptive_avg_pool2d(x, 1)``."""
    x = contiguous(check_array(x, "x", (3, 4)))
    if x.shape[-1] == 0 or x.shape[-2] == 0:
        raise ValueError(f"global_avg_pool2d: x must have non-empty planes, got shape "
                         f"{_shape_str(x.shape)}")
    return x.mean(axis=(-2, -1), keepdims=True)


def global_avg_pool2d_backward(grad_out, input_shape):
    """Gradient of ``global_avg_pool2d``: ``grad_out / (H*W)`` spread over each plane."""
    fn = "global_avg_pool2d_backward"
    gy = check_array(grad_out, "grad_out", (3, 4))
    shape = _check_input_shape(input_shape, fn, gy.dtype.itemsize)
    if len(shape) != gy.ndim or gy.shape != shape[:-2] + (1, 1) or 0 in shape[-2:]:
        raise ValueError(f"{fn}: grad_out must have shape {_shape_str(shape[:-2] + (1, 1))} "
                         f"for input_shape {_shape_str(shape)} (non-empty planes), got "
                         f"{_shape_str(gy.shape)}")
    H, W = shape[-2:]
    return np.broadcast_to(gy / gy.dtype.type(H * W), shape).copy()


# ---------------------------------------------------------------------------------------------
# activations (any shape, float32 or float64, the result has the input's dtype). Vectorised
# NumPy, except relu's forward pass: a benchmark of compiled loops against NumPy (see
# _kernels/_activations.pyx) found only that one faster.

from ._kernels import _activations  # noqa: E402

__all__ += [
    "relu", "relu_backward",
    "leaky_relu", "leaky_relu_backward",
    "elu", "elu_backward",
    "sigmoid", "sigmoid_backward",
    "tanh", "tanh_backward",
    "softplus", "softplus_backward",
    "softmax", "softmax_backward",
    "log_softmax", "log_softmax_backward",
]


def _float_array(x, name):
    """A supported float array of any shape, C-contiguous (so that the result of NumPy's
    vectorised loops does not depend on the caller's memory layout, to the last bit)."""
    arr = np.asarray(x)
    return contiguous(check_array(arr, name, (arr.ndim,)))


def _grad_pair(grad_out, x, xname, fn):
    """grad_out and x (or y): float arrays of one dtype and one shape."""
    gy = _float_array(grad_out, "grad_out")
    x = _float_array(x, xname)
    check_same_dtype(grad_out=gy, **{xname: x})
    if gy.shape != x.shape:
        raise ValueError(f"{fn}: grad_out must have the shape of {xname} "
                         f"{_shape_str(x.shape)}, got {_shape_str(gy.shape)}")
    return gy, x


def _scalar(value, name, dtype):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__} {value!r}")
    return dtype.type(value)


# Below this many elements relu runs on one thread.
_ACT_SERIAL_ELEMS = 1 << 16


def _where(c, test, t, a, b):
    """``np.where(c > t, a, b)`` (test ``">"``) or ``np.where(c <= t, a, b)`` (``"<="``) for
    same-shape arrays, as a branch-free compiled select (NumPy's where is 25x slower on
    unpredictable masks)."""
    out = np.empty(c.shape, c.dtype)
    if c.size:
        _activations.select(c.reshape(-1), c.dtype.type(t), test == "<=",
                            contiguous(a).reshape(-1), contiguous(b).reshape(-1),
                            out.reshape(-1),
                            1 if c.size < _ACT_SERIAL_ELEMS else get_num_threads())
    return out


def relu(x):
    """``max(x, 0)`` elementwise (NaN stays NaN). A compiled loop: it beat ``np.maximum``."""
    x = _float_array(x, "x")
    y = np.empty(x.shape, x.dtype)
    if x.size:
        _activations.relu_forward(contiguous(x).reshape(-1), y.reshape(-1),
                                  1 if x.size < _ACT_SERIAL_ELEMS else get_num_threads())
    return y


def relu_backward(grad_out, x):
    """0 where ``x <= 0``, else ``grad_out`` (the subgradient at 0 is 0 and a NaN input passes
    the gradient through, as torch's threshold_backward)."""
    gy, x = _grad_pair(grad_out, x, "x", "relu_backward")
    gx = np.empty_like(x)
    if x.size:
        _activations.relu_backward(gy.reshape(-1), x.reshape(-1), gx.reshape(-1),
                                   1 if x.size < _ACT_SERIAL_ELEMS else get_num_threads())
    return gx


def leaky_relu(x, negative_slope=0.01):
    """``x`` where ``x > 0``, else ``negative_slope * x``."""
    x = _float_array(x, "x")
    a = _scalar(negative_slope, "negative_slope", x.dtype)
    return _where(x, ">", 0, x, x * a)


def leaky_relu_backward(grad_out, x, negative_slope=0.01):
    """``grad_out`` where ``x > 0``, else ``negative_slope * grad_out``."""
    gy, x = _grad_pair(grad_out, x, "x", "leaky_relu_backward")
    a = _scalar(negative_slope, "negative_slope", x.dtype)
    return _where(x, ">", 0, gy, gy * a)


def elu(x, alpha=1.0):
    """``x`` where ``x > 0``, else ``alpha * (exp(x) - 1)`` (computed with expm1)."""
    x = _float_array(x, "x")
    a = _scalar(alpha, "alpha", x.dtype)
    with np.errstate(under="ignore"):
        return _where(x, ">", 0, x, a * np.expm1(np.minimum(x, x.dtype.type(0))))


def elu_backward(grad_out, x, alpha=1.0):
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


def sigmoid(x):
    """``1 / (1 + exp(-x))``, computed without overflow for any x (no warning at +-1000)."""
    return _sigmoid(_float_array(x, "x"))


def sigmoid_backward(grad_out, y):
    """``grad_out * y * (1 - y)`` with ``y = sigmoid(x)`` the forward output."""
    gy, y = _grad_pair(grad_out, y, "y", "sigmoid_backward")
    return gy * y * (y.dtype.type(1) - y)


def tanh(x):
    """``tanh(x)`` elementwise."""
    return np.tanh(_float_array(x, "x"))


def tanh_backward(grad_out, y):
    """``grad_out * (1 - y**2)`` with ``y = tanh(x)`` the forward output."""
    gy, y = _grad_pair(grad_out, y, "y", "tanh_backward")
    return gy * (y.dtype.type(1) - y * y)


def softplus(x, beta=1.0, threshold=20.0):
    """``log(1 + exp(beta*x)) / beta``, and ``x`` itself where ``beta*x > threshold`` (torch's
    rule). Computed as ``(max(bx, 0) + log1p(exp(-|bx|))) / beta``: no overflow at any x."""
    x = _float_array(x, "x")
    b = _scalar(beta, "beta", x.dtype)
    th = _scalar(threshold, "threshold", x.dtype)
    bx = x * b
    with np.errstate(under="ignore"):
        soft = (np.maximum(bx, x.dtype.type(0)) + np.log1p(np.exp(-np.abs(bx)))) / b
    return _where(bx, ">", th, x, soft)


def softplus_backward(grad_out, x, beta=1.0, threshold=20.0):
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
    with np.errstate(under="ignore", invalid="ignore"):
        z = x - m
        return z - np.log(np.sum(np.exp(z), axis=axis, keepdims=True))


def softmax(x, axis=-1):
    """``exp(x) / sum(exp(x))`` along ``axis`` (shifted by the maximum: no overflow)."""
    x = _float_array(x, "x")
    axis = _axis(axis, x.ndim, "softmax")
    m = np.max(x, axis=axis, keepdims=True, initial=-np.inf)
    # as torch: NaN throughout a slice holding +inf, NaN or only -inf (see _log_softmax)
    with np.errstate(under="ignore", invalid="ignore"):
        e = np.exp(x - m)
        return e / np.sum(e, axis=axis, keepdims=True)


def softmax_backward(grad_out, y, axis=-1):
    """``y * (grad_out - sum(grad_out * y, axis))`` with ``y = softmax(x, axis)``."""
    gy, y = _grad_pair(grad_out, y, "y", "softmax_backward")
    axis = _axis(axis, y.ndim, "softmax_backward")
    return y * (gy - np.sum(gy * y, axis=axis, keepdims=True))


def log_softmax(x, axis=-1):
    """``x - logsumexp(x, axis)``, computed stably."""
    x = _float_array(x, "x")
    return _log_softmax(x, _axis(axis, x.ndim, "log_softmax"))


def log_softmax_backward(grad_out, y, axis=-1):
    """``grad_out - exp(y) * sum(grad_out, axis)`` with ``y = log_softmax(x, axis)``."""
    gy, y = _grad_pair(grad_out, y, "y", "log_softmax_backward")
    axis = _axis(axis, y.ndim, "log_softmax_backward")
    with np.errstate(under="ignore"):
        return gy - np.exp(y) * np.sum(gy, axis=axis, keepdims=True)


# ---------------------------------------------------------------------------------------------
# losses: each returns (loss, grad), grad = d(reduced loss)/d(input); for reduction='none'
# (loss elementwise / per sample) grad is the gradient of sum(loss).

__all__ += [
    "mse_loss", "msle_loss", "l1_loss", "l2_loss", "mape_loss",
    "binary_cross_entropy", "binary_cross_entropy_with_logits",
    "cross_entropy", "nll_loss",
]

_REDUCTIONS = ("mean", "sum", "none")


def _check_reduction(reduction, fn):
    if not isinstance(reduction, str) or reduction not in _REDUCTIONS:
        raise ValueError(f"{fn}: reduction must be one of 'mean', 'sum', 'none', "
                         f"got {reduction!r}")
    return reduction


def _loss_pair(input, target, fn):
    x = _float_array(input, "input")
    t = _float_array(target, "target")
    check_same_dtype(input=x, target=t)
    if x.shape != t.shape:
        raise ValueError(f"{fn}: target must have the shape of input {_shape_str(x.shape)}, "
                         f"got {_shape_str(t.shape)}")
    return x, t


def _reduce(loss, grad, reduction, count=None):
    """Reduce the unreduced ``loss``; ``grad`` is d(sum of loss)/d(input), divided by the count
    for 'mean' (count defaults to loss.size; the mean of nothing is NaN, as in torch)."""
    if reduction == "none":
        return loss, grad
    dtype = grad.dtype.type
    total = dtype(np.sum(loss, dtype=grad.dtype))
    if reduction == "sum":
        return total, grad
    n = loss.size if count is None else count
    if n == 0:
        return dtype(np.nan), grad
    return dtype(total / dtype(n)), grad / dtype(n)


def mse_loss(input, target, reduction="mean"):
    """Mean squared error: elementwise ``(input - target)**2`` reduced by ``reduction``."""
    x, t = _loss_pair(input, target, "mse_loss")
    reduction = _check_reduction(reduction, "mse_loss")
    d = x - t
    return _reduce(d * d, x.dtype.type(2) * d, reduction)


def msle_loss(input, target, reduction="mean"):
    """Mean squared logarithmic error: elementwise ``(log1p(input) - log1p(target))**2``.

    input and target must be > -1 (ValueError otherwise). Equals ``mse_loss`` of the log1p's.
    """
    x, t = _loss_pair(input, target, "msle_loss")
    reduction = _check_reduction(reduction, "msle_loss")
    for name, a in (("input", x), ("target", t)):
        if a.size and not np.all(a > -1):
            raise ValueError(f"msle_loss: every element of {name} must be > -1 "
                             f"(log1p), got minimum {np.min(a)!r}")
    d = np.log1p(x) - np.log1p(t)
    return _reduce(d * d, x.dtype.type(2) * d / (x.dtype.type(1) + x), reduction)


def l1_loss(input, target, reduction="mean"):
    """Mean absolute error: elementwise ``|input - target|``; gradient ``sign(input - target)``
    (0 where they are equal, as torch)."""
    x, t = _loss_pair(input, target, "l1_loss")
    reduction = _check_reduction(reduction, "l1_loss")
    d = x - t
    return _reduce(np.abs(d), np.sign(d), reduction)


def l2_loss(input, target, reduction="mean"):
    """L2 loss: the sum of squared errors of each sample.

    The first axis is the batch: ``loss[n] = sum((input[n] - target[n])**2)`` over all the
    other axes (for 1-D input each sample is one number). 'none' returns these per-sample sums
    (shape (N,)), 'sum' their total, 'mean' their mean over the batch (the total divided by N,
    not by the number of elements: that would be ``mse_loss``). input must have at least one
    dimension.
    """
    x, t = _loss_pair(input, target, "l2_loss")
    reduction = _check_reduction(reduction, "l2_loss")
    if x.ndim < 1:
        raise ValueError(f"l2_loss: input must have a batch axis, got shape {_shape_str(x.shape)}")
    d = x - t
    sq = d * d
    per_sample = np.sum(sq, axis=tuple(range(1, x.ndim)))
    return _reduce(per_sample, x.dtype.type(2) * d, reduction, count=x.shape[0])


_MAPE_EPS = 1e-7


def mape_loss(input, target, reduction="mean"):
    """Mean absolute percentage error: elementwise ``100 * |input - target| / max(|target|,
    1e-7)`` (the 1e-7 floor, as in Keras, keeps a zero target finite); gradient
    ``100 * sign(input - target) / max(|target|, 1e-7)``."""
    x, t = _loss_pair(input, target, "mape_loss")
    reduction = _check_reduction(reduction, "mape_loss")
    dt = x.dtype.type
    scale = dt(100) / np.maximum(np.abs(t), dt(_MAPE_EPS))
    d = x - t
    return _reduce(np.abs(d) * scale, np.sign(d) * scale, reduction)


def binary_cross_entropy(input, target, weight=None, reduction="mean"):
    """Binary cross-entropy of probabilities, as torch:
    ``-weight * (target*log(input) + (1 - target)*log(1 - input))`` with each log clamped at
    -100; gradient ``weight * (input - target) / max(input*(1 - input), 1e-12)`` (torch's
    formula, with its 1e-12 rounded to float32). Every input element must lie in [0, 1];
    weight broadcasts to input's shape.
    """
    fn = "binary_cross_entropy"
    x, t = _loss_pair(input, target, fn)
    reduction = _check_reduction(reduction, fn)
    if x.size and not np.all((x >= 0) & (x <= 1)):
        raise ValueError(f"{fn}: every element of input must be between 0 and 1")
    dt = x.dtype.type
    with np.errstate(divide="ignore"):
        lx = np.maximum(np.log(x), dt(-100))
        l1x = np.maximum(np.log(dt(1) - x), dt(-100))
    loss = -(t * lx + (dt(1) - t) * l1x)
    # torch's floor is the float32 constant 1e-12f, also for float64
    grad = (x - t) / np.maximum(x * (dt(1) - x), dt(np.float32(1e-12)))
    if weight is not None:
        w = _float_array(weight, "weight")
        check_same_dtype(input=x, weight=w)
        try:
            w = np.broadcast_to(w, x.shape)
        except ValueError:
            raise ValueError(f"{fn}: weight of shape {_shape_str(w.shape)} does not broadcast "
                             f"to input's shape {_shape_str(x.shape)}") from None
        loss = loss * w
        grad = grad * w
    return _reduce(loss, grad, reduction)


def binary_cross_entropy_with_logits(input, target, reduction="mean"):
    """Binary cross-entropy of ``sigmoid(input)``, computed from the logits without overflow:
    ``max(x, 0) - x*target + log1p(exp(-|x|))``; gradient ``sigmoid(x) - target``."""
    fn = "binary_cross_entropy_with_logits"
    x, t = _loss_pair(input, target, fn)
    reduction = _check_reduction(reduction, fn)
    with np.errstate(under="ignore"):
        loss = np.maximum(x, x.dtype.type(0)) - x * t + np.log1p(np.exp(-np.abs(x)))
    return _reduce(loss, _sigmoid(x) - t, reduction)


def _class_scores(x, name, fn):
    """A float array of per-class scores (N, C)."""
    x = _float_array(x, name)
    if x.ndim != 2:
        raise ValueError(f"{fn}: {name} must be 2-dimensional (N, C), got shape "
                         f"{_shape_str(x.shape)}")
    return x


def _class_target(target, N, C, fn):
    t = np.asarray(target)
    if not np.issubdtype(t.dtype, np.integer):
        raise TypeError(f"{fn}: class targets must be an integer array, got {t.dtype}")
    if t.shape != (N,):
        raise ValueError(f"{fn}: target must have shape ({N},) for input of shape ({N}, {C}), "
                         f"got {_shape_str(t.shape)}")
    if t.size and (t.min() < 0 or t.max() >= C):
        bad = t.min() if t.min() < 0 else t.max()
        raise ValueError(f"{fn}: target holds class index {bad}, outside [0, {C}) for input "
                         f"of shape ({N}, {C})")
    return t.astype(np.intp, copy=False)


def cross_entropy(logits, target, reduction="mean"):
    """Softmax cross-entropy, as ``torch.nn.functional.cross_entropy`` (no weights).

    logits : (N, C) float array. target : integer class indices (N,) in [0, C), or class
    probabilities (N, C) of the logits' dtype. ``loss[n] = -sum_c t[n, c] * log_softmax(
    logits)[n, c]`` (one-hot t for indices); 'mean' divides by N. log-sum-exp is shifted by the
    row maximum, so logits of +-1000 give the exact finite value. Gradient:
    ``softmax(logits) * sum_c t[n, c] - t`` (divided by N for 'mean').
    """
    fn = "cross_entropy"
    z = _class_scores(logits, "logits", fn)
    reduction = _check_reduction(reduction, fn)
    N, C = z.shape
    logp = _log_softmax(z, 1)
    with np.errstate(under="ignore"):
        p = np.exp(logp)
    tgt = np.asarray(target)
    if np.issubdtype(tgt.dtype, np.floating):
        t = _float_array(tgt, "target")
        check_same_dtype(logits=z, target=t)
        if t.shape != z.shape:
            raise ValueError(f"{fn}: probability targets must have the logits' shape "
                             f"{_shape_str(z.shape)}, got {_shape_str(t.shape)} (class "
                             f"indices must be an integer array)")
        with np.errstate(invalid="ignore"):  # 0 * -inf is NaN, as in torch
            loss = -np.sum(t * logp, axis=1)
            grad = p * np.sum(t, axis=1, keepdims=True) - t
    else:
        t = _class_target(tgt, N, C, fn)
        rows = np.arange(N)
        loss = -logp[rows, t]
        grad = p
        grad[rows, t] -= z.dtype.type(1)
    return _reduce(loss, grad, reduction)


def nll_loss(log_probs, target, reduction="mean"):
    """Negative log-likelihood, as ``torch.nn.functional.nll_loss`` (no weights):
    ``loss[n] = -log_probs[n, target[n]]`` for log_probs (N, C) and integer targets (N,);
    'mean' divides by N. Gradient: -1 at each target position (divided by N for 'mean')."""
    fn = "nll_loss"
    lp = _class_scores(log_probs, "log_probs", fn)
    reduction = _check_reduction(reduction, fn)
    N, C = lp.shape
    t = _class_target(target, N, C, fn)
    rows = np.arange(N)
    grad = np.zeros_like(lp)
    grad[rows, t] = lp.dtype.type(-1)
    return _reduce(-lp[rows, t], grad, reduction)
