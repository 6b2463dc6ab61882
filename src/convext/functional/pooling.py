"""Max, average, power-average and global average pooling over (H, W) planes, with their
gradients (torch.nn.functional semantics)."""

from __future__ import annotations

import math
from typing import Literal, overload

import numpy as np

from .. import _recycle
from .._config import threads_for
from .._kernels import _pool
from .._typing import ArrayLike, FloatArray, IndexArray, IntPair, Padding, Shape
from .._validation import (
    _as_int,
    as_padding,
    as_pair,
    check_array,
    check_extent,
    check_same_dtype,
    contiguous,
    keep_plain_results,
    side_pads,
    window_geometry,
)
from ._common import Window, _check_bool, _check_input_shape, _shape_str


@keep_plain_results
def _pool_geom(shape, kernel_size, stride, padding, dilation, ceil_mode, fn, shape_name="x"):
    """Validate the pooling geometry for an input of ``shape``; return a Window.

    ``padding`` is an int, a pair or a 4-tuple (top, bottom, left, right). Each side's padding
    may be at most half the kernel along its axis (PyTorch's rule, per side), and the (padded)
    input must hold at least one window. As torch, a one-element sequence stands for both sides
    and an empty stride sequence for the default (the kernel size)."""
    if isinstance(stride, (tuple, list)) and len(stride) == 0:
        stride = None
    kernel_size, stride, padding = (
        v[0] if isinstance(v, (tuple, list)) and len(v) == 1 else v
        for v in (kernel_size, stride, padding)
    )
    kh, kw = as_pair(kernel_size, "kernel_size")
    sh, sw = (kh, kw) if stride is None else as_pair(stride, "stride")
    pads = side_pads(as_padding(padding))
    dil_h, dil_w = as_pair(dilation, "dilation")
    _check_bool(ceil_mode, "ceil_mode")
    if max(pads[0]) > kh // 2 or max(pads[1]) > kw // 2:
        raise ValueError(
            f"{fn}: padding {padding!r} must be at most half of the kernel size "
            f"({kh}, {kw}) on each side"
        )
    if min(shape[-3:]) == 0:
        raise ValueError(
            f"{fn}: {shape_name} must have non-empty channels, height and width "
            f"(only the batch may be empty), got shape {_shape_str(shape)}"
        )
    oh, ow = window_geometry(
        fn,
        shape[-2:],
        (kh, kw),
        (sh, sw),
        pads,
        (dil_h, dil_w),
        ceil_mode,
        detail=f"; {shape_name} has shape {_shape_str(shape)}, kernel_size {kernel_size!r}, "
        f"padding {padding!r}",
    )
    return Window((kh, kw), (sh, sw), pads, (dil_h, dil_w), (oh, ow))


def _pool_threads(shape):
    """Threads for a pooling kernel over an input of this shape."""
    return threads_for(math.prod(shape), "elements")


def _planes(a4):
    """(N, C, H, W) -> C-contiguous (N*C, H, W) view or copy."""
    N, C, H, W = a4.shape
    return contiguous(a4).reshape(N * C, H, W)


def _pool_out_shape(shape, g):
    return tuple(shape[:-2]) + g.out_hw


def _as4(shape):
    return (1,) + tuple(shape) if len(shape) == 3 else tuple(shape)


@overload
def max_pool2d(
    x: ArrayLike,
    kernel_size: IntPair,
    stride: IntPair | None = ...,
    padding: Padding = ...,
    dilation: IntPair = ...,
    ceil_mode: bool = ...,
    return_indices: Literal[False] = ...,
) -> FloatArray: ...


@overload
def max_pool2d(
    x: ArrayLike,
    kernel_size: IntPair,
    stride: IntPair | None,
    padding: Padding,
    dilation: IntPair,
    ceil_mode: bool,
    return_indices: Literal[True],
) -> tuple[FloatArray, IndexArray]: ...


@overload
def max_pool2d(
    x: ArrayLike,
    kernel_size: IntPair,
    stride: IntPair | None = ...,
    padding: Padding = ...,
    dilation: IntPair = ...,
    ceil_mode: bool = ...,
    *,
    return_indices: Literal[True],
) -> tuple[FloatArray, IndexArray]: ...


@overload
def max_pool2d(
    x: ArrayLike,
    kernel_size: IntPair,
    stride: IntPair | None = ...,
    padding: Padding = ...,
    dilation: IntPair = ...,
    ceil_mode: bool = ...,
    return_indices: bool = ...,
) -> FloatArray | tuple[FloatArray, IndexArray]: ...


def max_pool2d(
    x: ArrayLike,
    kernel_size: IntPair,
    stride: IntPair | None = None,
    padding: Padding = 0,
    dilation: IntPair = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> FloatArray | tuple[FloatArray, IndexArray]:
    """2-D max pooling, as ``torch.nn.functional.max_pool2d``.

    Parameters
    ----------
    x : array (N, C, H, W) or (C, H, W); float32 or float64; any memory layout.
    kernel_size : int or (int, int).
    stride : int or (int, int); default ``kernel_size``.
    padding : int, (int, int) (both sides) or a 4-tuple (top, bottom, left, right); each side at
        most half the kernel size along its axis. Padding acts as -inf: it is never the maximum,
        so an all-negative input never yields 0 (a 4-tuple is exactly padding x with -inf on
        those sides, then pooling with padding 0; only the indices differ, as they name
        positions in the unpadded plane).
    dilation : int or (int, int), spacing between the window's taps.
    ceil_mode : bool. Use ceil instead of floor in the output size; a last window that would
        start in the bottom/right padding is dropped (PyTorch's rule; with a 4-tuple too: the
        last window must start inside the input or its top/left padding).
    return_indices : bool. Also return the argmax mask.

    Returns
    -------
    y : array (N, C, OH, OW) (or (C, OH, OW)),
        ``OH = floor_or_ceil((H + pad_top + pad_bottom - dilation*(k - 1) - 1) / stride) + 1``.
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
    y = _recycle.empty(shape4, x.dtype)
    # without return_indices the kernel writes the values only (the same y)
    idx = _recycle.empty(shape4, np.int64) if return_indices else None
    if y.size:
        (kh, kw), (sh, sw), (dil_h, dil_w) = g.kernel, g.stride, g.dilation
        ph, pw = g.pad_top_left
        _pool.max_pool2d_forward(
            _planes(x4),
            y.reshape(N * C, *g.out_hw),
            None if idx is None else idx.reshape(N * C, *g.out_hw),
            kh,
            kw,
            sh,
            sw,
            ph,
            pw,
            dil_h,
            dil_w,
            _pool_threads(x4.shape),
        )
    if x.ndim == 3:
        y = y[0]
        idx = None if idx is None else idx[0]
    return y if idx is None else (y, idx)


def max_pool2d_backward(grad_out: ArrayLike, indices: ArrayLike, input_shape: Shape) -> FloatArray:
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
        raise ValueError(
            f"{fn}: indices must have grad_out's shape {_shape_str(gy.shape)}, "
            f"got {_shape_str(idx.shape)}"
        )
    if len(shape) != gy.ndim or shape[:-2] != gy.shape[:-2]:
        raise ValueError(
            f"{fn}: input_shape {_shape_str(shape)} does not match grad_out of "
            f"shape {_shape_str(gy.shape)} (leading dimensions must agree)"
        )
    shape4, gy4 = _as4(shape), gy.reshape(_as4(gy.shape))
    N, C, H, W = shape4
    if gy4.size and H * W == 0:
        raise ValueError(
            f"{fn}: input_shape {_shape_str(shape)} has empty (H, W) planes, but "
            f"grad_out of shape {_shape_str(gy.shape)} and its indices point "
            f"into them"
        )
    if idx.dtype.kind == "u" and idx.size and int(idx.max()) > np.iinfo(np.int64).max:
        # a cast to int64 would wrap such an index to a negative one (-1 is skipped silently)
        raise ValueError(
            f"{fn}: indices hold {int(idx.max())}, beyond int64; indices must be "
            f"flat positions in [0, H*W) (or -1)"
        )
    if gy4.size == 0:
        return np.zeros(shape, gy.dtype)
    gx = _recycle.empty(shape4, gy.dtype)
    bad = _pool.max_pool2d_backward(
        _planes(gy4),
        _planes(idx.reshape(gy4.shape).astype(np.int64, copy=False)),
        gx.reshape(N * C, H, W),
        _pool_threads(shape4),
    )
    if bad:
        raise ValueError(
            f"{fn}: {bad} indices lie outside [0, H*W) = [0, {H * W}) for "
            f"input_shape {_shape_str(shape)}"
        )
    return gx.reshape(shape)


def _avg_args(g, count_include_pad, divisor_override, n_threads):
    count_include_pad = _check_bool(count_include_pad, "count_include_pad")
    if divisor_override is None:
        div = 0
    else:
        # torch accepts any non-zero int, negative ones too (they flip the sign)
        div = _as_int(divisor_override, "divisor_override")
        if div == 0:
            raise ValueError("divisor_override must be a non-zero int, got 0")
        check_extent(abs(div), "divisor_override")
    (kh, kw), (sh, sw), ((pt, pb), (pl, pr)) = g.kernel, g.stride, g.padding
    # the kernels form the window area kh*kw as a divisor (the geometry bound)
    check_extent(kh * kw, "kernel_size", f"the window area {kh} x {kw}")
    return kh, kw, sh, sw, pt, pl, pb, pr, count_include_pad, div, n_threads


def avg_pool2d(
    x: ArrayLike,
    kernel_size: IntPair,
    stride: IntPair | None = None,
    padding: Padding = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> FloatArray:
    """2-D average pooling, as ``torch.nn.functional.avg_pool2d``.

    Parameters as ``max_pool2d`` (no dilation; ``padding`` an int, a pair or a 4-tuple (top,
    bottom, left, right), each side at most half the kernel); padding is zeros. The divisor of
    a window is ``divisor_override`` when given (a non-zero int, negative too, as torch);
    otherwise, with ``count_include_pad``, the number of window positions inside the padded
    input (a ceil_mode window hanging past the padding is clipped), and without it the number
    of real input elements in the window. A window with no input element outputs 0. So a
    4-tuple is exactly ``np.pad`` of x with zeros on those sides, then padding 0 (with
    ``count_include_pad``), and without ``count_include_pad`` the padded zeros are left out of
    the divisor.
    """
    x = check_array(x, "x", (3, 4))
    g = _pool_geom(x.shape, kernel_size, stride, padding, 1, ceil_mode, "avg_pool2d")
    args = _avg_args(g, count_include_pad, divisor_override, _pool_threads(x.shape))
    x4 = x[None] if x.ndim == 3 else x
    N, C = x4.shape[:2]
    y = _recycle.empty((N, C) + g.out_hw, x.dtype)
    if y.size:
        _pool.avg_pool2d_forward(_planes(x4), y.reshape(N * C, *g.out_hw), *args)
    return y[0] if x.ndim == 3 else y


def avg_pool2d_backward(
    grad_out: ArrayLike,
    input_shape: Shape,
    kernel_size: IntPair,
    stride: IntPair | None = None,
    padding: Padding = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> FloatArray:
    """Gradient of ``avg_pool2d`` with the same arguments: each ``grad_out`` element, divided by
    its window's divisor, is added to every input element of the window."""
    fn = "avg_pool2d_backward"
    gy = check_array(grad_out, "grad_out", (3, 4))
    shape = _check_input_shape(input_shape, fn, gy.dtype.itemsize)
    g = _pool_geom(shape, kernel_size, stride, padding, 1, ceil_mode, fn, "input_shape")
    args = _avg_args(g, count_include_pad, divisor_override, _pool_threads(shape))
    if gy.shape != _pool_out_shape(shape, g):
        raise ValueError(
            f"{fn}: grad_out must have shape "
            f"{_shape_str(_pool_out_shape(shape, g))} for input_shape "
            f"{_shape_str(shape)}, got {_shape_str(gy.shape)}"
        )
    shape4, gy4 = _as4(shape), gy.reshape(_as4(gy.shape))
    N, C, H, W = shape4
    if gy4.size == 0:
        return np.zeros(shape, gy.dtype)
    gx = _recycle.empty(shape4, gy.dtype)
    _pool.avg_pool2d_backward(_planes(gy4), gx.reshape(N * C, H, W), *args)
    return gx.reshape(shape)


def _check_norm_type(norm_type, fn):
    if isinstance(norm_type, (bool, np.bool_)) or not isinstance(
        norm_type, (int, float, np.number)
    ):
        raise TypeError(f"{fn}: norm_type must be a number, got {type(norm_type).__name__}")
    p = float(norm_type)
    if np.isnan(p) or p <= 0:
        raise ValueError(f"{fn}: norm_type must be positive (or inf), got {norm_type!r}")
    return p


def lp_pool2d(
    x: ArrayLike,
    norm_type: float,
    kernel_size: IntPair,
    stride: IntPair | None = None,
    ceil_mode: bool = False,
    padding: Padding = 0,
) -> FloatArray:
    """Power-average pooling, as ``torch.nn.functional.lp_pool2d``:
    ``y = (kH*kW * avg_pool2d(x**p, kernel_size, stride, padding, ceil_mode)) ** (1/p)``.

    ``padding`` (not in torch; default 0) is an int, a pair or a 4-tuple (top, bottom, left,
    right), each side at most half the kernel: exactly ``np.pad`` of x with zeros on those
    sides, then ``lp_pool2d`` without padding.

    With p = 2 this is L2-norm pooling ``sqrt(sum x**2)``; p = inf is max pooling of ``|x|``.
    Like torch, a ceil_mode window clipped by the input edge is divided by its clipped size and
    then multiplied by the full kernel area; negative sums with an odd or fractional p give NaN.
    ``norm_type`` must be positive or inf.
    """
    fn = "lp_pool2d"
    x = contiguous(check_array(x, "x", (3, 4)))
    p = _check_norm_type(norm_type, fn)
    if p == np.inf:
        # every window holds a real element (padding <= half the kernel, no dilation), and
        # |x| >= 0, so -inf padding and zero padding give the same maximum
        return max_pool2d(np.abs(x), kernel_size, stride, padding, 1, ceil_mode)
    kh, kw = as_pair(kernel_size, "kernel_size")
    s = avg_pool2d(x ** x.dtype.type(p), kernel_size, stride, padding, ceil_mode)
    s *= kh * kw
    with np.errstate(invalid="ignore"):
        return s ** x.dtype.type(1.0 / p)


def lp_pool2d_backward(
    grad_out: ArrayLike,
    x: ArrayLike,
    out: ArrayLike,
    norm_type: float,
    kernel_size: IntPair,
    stride: IntPair | None = None,
    ceil_mode: bool = False,
    padding: Padding = 0,
) -> FloatArray:
    """Gradient of ``lp_pool2d`` (same ``padding``); ``out`` is the forward result.

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
    g = _pool_geom(x.shape, kernel_size, stride, padding, 1, ceil_mode, fn)
    want = _pool_out_shape(x.shape, g)
    for name, a in (("grad_out", gy), ("out", out)):
        if a.shape != want:
            raise ValueError(
                f"{fn}: {name} must have shape {_shape_str(want)} for x of shape "
                f"{_shape_str(x.shape)}, got {_shape_str(a.shape)}"
            )
    if p == np.inf:
        _, idx = max_pool2d(
            np.abs(x), kernel_size, stride, padding, 1, ceil_mode, return_indices=True
        )
        return max_pool2d_backward(gy, idx, x.shape) * np.sign(x)
    t = x.dtype.type
    kh, kw = g.kernel
    coef = np.zeros(want, x.dtype)
    nz = out != 0
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        coef[nz] = gy[nz] * t(kh * kw) * out[nz] ** t(1.0 - p)
        gx = avg_pool2d_backward(coef, x.shape, kernel_size, stride, padding, ceil_mode)
        if p != 1.0:
            gx *= x ** t(p - 1.0)
    return gx


def global_avg_pool2d(x: ArrayLike) -> FloatArray:
    """Mean over each (H, W) plane, keeping the dims: (N, C, H, W) -> (N, C, 1, 1), or
    (C, H, W) -> (C, 1, 1); as ``torch.nn.functional.adaptive_avg_pool2d(x, 1)``, and the
    same bits as convext's ``adaptive_avg_pool2d(x, 1)`` (each plane summed in double, in
    memory order, divided by H*W, then rounded to the dtype)."""
    x = check_array(x, "x", (3, 4))
    if x.shape[-1] == 0 or x.shape[-2] == 0:
        raise ValueError(
            f"global_avg_pool2d: x must have non-empty planes, got shape {_shape_str(x.shape)}"
        )
    return _global_avg(x)


def _global_avg(x: FloatArray) -> FloatArray:
    """The mean of each non-empty (H, W) plane of a validated x, keeping the dims."""
    H, W = x.shape[-2:]
    y = _recycle.empty(x.shape[:-2] + (1, 1), x.dtype)
    if y.size:
        _pool.global_avg_forward(
            contiguous(x).reshape(-1, H * W), y.reshape(-1), _pool_threads(x.shape)
        )
    return y


# --- prepared calls (optimize_for_inference) ---------------------------------------------------
# The validation of a call above done once for one input shape and dtype; the returned
# run(x, y) then only calls the kernel: x a C-contiguous array of that shape and dtype, y a
# C-contiguous array of the returned output shape and dtype (the caller's buffer), which run
# fills with exactly the bits the functional call returns.


def _prepared_input(shape, dtype, fn):
    shape = tuple(int(d) for d in shape)
    if len(shape) != 4 or 0 in shape or np.dtype(dtype) not in (np.float32, np.float64):
        raise ValueError(f"{fn}: a prepared call takes a non-empty 4-D float32/float64 input")
    return shape


def _prepared_max_pool2d(
    shape, dtype, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False
):
    """(run, out_shape) of ``max_pool2d(x, ...)`` (values only) for x of ``shape`` and
    ``dtype``, validated once (the same errors as the call)."""
    shape = N, C, H, W = _prepared_input(shape, dtype, "max_pool2d")
    g = _pool_geom(shape, kernel_size, stride, padding, dilation, ceil_mode, "max_pool2d")
    (kh, kw), (sh, sw), (dil_h, dil_w) = g.kernel, g.stride, g.dilation
    args = (kh, kw, sh, sw, *g.pad_top_left, dil_h, dil_w, _pool_threads(shape))
    xs, ys = (N * C, H, W), (N * C, *g.out_hw)
    kernel = _pool.max_pool2d_forward

    def run(x, y):
        kernel(x.reshape(xs), y.reshape(ys), None, *args)

    return run, (N, C) + g.out_hw


def _prepared_avg_pool2d(
    shape,
    dtype,
    kernel_size,
    stride=None,
    padding=0,
    ceil_mode=False,
    count_include_pad=True,
    divisor_override=None,
):
    """(run, out_shape) of ``avg_pool2d(x, ...)`` for x of ``shape`` and ``dtype``."""
    shape = N, C, H, W = _prepared_input(shape, dtype, "avg_pool2d")
    g = _pool_geom(shape, kernel_size, stride, padding, 1, ceil_mode, "avg_pool2d")
    args = _avg_args(g, count_include_pad, divisor_override, _pool_threads(shape))
    xs, ys = (N * C, H, W), (N * C, *g.out_hw)
    kernel = _pool.avg_pool2d_forward

    def run(x, y):
        kernel(x.reshape(xs), y.reshape(ys), *args)

    return run, (N, C) + g.out_hw


def _prepared_global_avg(shape, dtype):
    """(run, out_shape) of ``global_avg_pool2d(x)`` (and ``adaptive_avg_pool2d(x, 1)``, the same
    bits) for x of ``shape`` and ``dtype``."""
    N, C, H, W = _prepared_input(shape, dtype, "global_avg_pool2d")
    n_threads = _pool_threads(shape)
    xs, ys = (N * C, H * W), (N * C,)
    kernel = _pool.global_avg_forward

    def run(x, y):
        kernel(x.reshape(xs), y.reshape(ys), n_threads)

    return run, (N, C, 1, 1)


def global_avg_pool2d_backward(grad_out: ArrayLike, input_shape: Shape) -> FloatArray:
    """Gradient of ``global_avg_pool2d``: ``grad_out / (H*W)`` spread over each plane."""
    fn = "global_avg_pool2d_backward"
    gy = check_array(grad_out, "grad_out", (3, 4))
    shape = _check_input_shape(input_shape, fn, gy.dtype.itemsize)
    if len(shape) != gy.ndim or gy.shape != shape[:-2] + (1, 1) or 0 in shape[-2:]:
        raise ValueError(
            f"{fn}: grad_out must have shape {_shape_str(shape[:-2] + (1, 1))} "
            f"for input_shape {_shape_str(shape)} (non-empty planes), got "
            f"{_shape_str(gy.shape)}"
        )
    H, W = shape[-2:]
    gx = _recycle.empty(shape, gy.dtype)
    np.copyto(gx, np.broadcast_to(gy / gy.dtype.type(H * W), shape))
    return gx
