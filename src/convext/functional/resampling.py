"""Resampling of (H, W) planes: adaptive average and max pooling, nearest and bilinear
interpolation, max unpooling, with their gradients (torch.nn.functional semantics).

Geometry (window bounds, source indices, interpolation weights) is computed here in Python
integers, so the kernels never do size arithmetic that could overflow.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal, overload

import numpy as np

from .. import _recycle
from .._config import threads_for
from .._kernels import _pool, _resample
from .._typing import ArrayLike, FloatArray, IndexArray, IntPair, Padding, Shape
from .._validation import MAX_EXTENT, _as_int, as_pair, check_alloc, check_array, contiguous
from ._common import _check_bool, _check_size, _real, _shape_str
from .pooling import _global_avg


def _plane_input(x, name, fn):
    """(N, C, H, W) or (C, H, W) with non-empty planes -> (x, C-contiguous (P, H, W))."""
    x = check_array(x, name, (3, 4))
    if x.shape[-1] == 0 or x.shape[-2] == 0 or x.shape[-3] == 0:
        raise ValueError(
            f"{fn}: {name} must have non-empty channels, height and width (only "
            f"the batch may be empty), got shape {_shape_str(x.shape)}"
        )
    _check_size(x.shape, name, fn, x.dtype.itemsize)
    H, W = x.shape[-2:]
    return x, contiguous(x).reshape(-1, H, W)


def _adaptive_size(output_size, H, W, fn):
    """output_size: int, or a pair whose entries are ints or None (None keeps the input's)."""
    if isinstance(output_size, (tuple, list)):
        if len(output_size) != 2:
            raise ValueError(f"{fn}: output_size must be an int or a pair, got {output_size!r}")
        pair = tuple(
            d if v is None else _as_int(v, "output_size")
            for v, d in zip(output_size, (H, W), strict=True)
        )
    elif output_size is None:
        raise TypeError(f"{fn}: output_size must be an int or a pair, got None")
    else:
        v = _as_int(output_size, "output_size")
        pair = (v, v)
    if min(pair) < 0 or pair[0] * H >= MAX_EXTENT or pair[1] * W >= MAX_EXTENT:
        raise ValueError(
            f"{fn}: output_size must be non-negative (and not absurdly large), got "
            f"{output_size!r} for input planes of size ({H}, {W})"
        )
    return pair


def _windows(size, out):
    """torch's adaptive windows: [floor(i*size/out), ceil((i+1)*size/out)) (exact: every product
    stays below 2**63, checked in Python ints by the caller)."""
    k = np.arange(out, dtype=np.int64)
    return (k * size) // out, -((-(k + 1) * size) // out)


def _adaptive_geom(shape, output_size, fn, itemsize):
    H, W = shape[-2:]
    OH, OW = _adaptive_size(output_size, H, W, fn)
    _check_size(tuple(shape[:-2]) + (OH, OW), "the output", fn, itemsize)
    _check_tables(OH, OW, itemsize, fn)
    return (OH, OW) + _windows(H, OH) + _windows(W, OW)


def adaptive_avg_pool2d(x: ArrayLike, output_size: int | Sequence[int | None]) -> FloatArray:
    """Adaptive average pooling, as ``torch.nn.functional.adaptive_avg_pool2d``.

    Output (.., OH, OW) from ``output_size`` (an int, or a pair with None meaning "the input's
    size"); output row i averages input rows ``floor(i*H/OH) <= h < ceil((i+1)*H/OH)`` (likewise
    columns). Sums are accumulated in double (with a 1x1 output, as ``global_avg_pool2d``).
    """
    fn = "adaptive_avg_pool2d"
    x, x3 = _plane_input(x, "x", fn)
    if _adaptive_size(output_size, *x.shape[-2:], fn) == (1, 1):
        # one window, the whole plane: the same sums, several planes side by side
        return _global_avg(x)
    OH, OW, hs, he, ws, we = _adaptive_geom(x.shape, output_size, fn, x.dtype.itemsize)
    y = _recycle.empty(x.shape[:-2] + (OH, OW), x.dtype)
    if y.size:
        _resample.adaptive_avg_forward(
            x3, y.reshape(-1, OH, OW), hs, he, ws, we, threads_for(x.size, "elements")
        )
    return y


def _grad_for_shape(grad_out, input_shape, fn):
    gy = check_array(grad_out, "grad_out", (3, 4))
    if not isinstance(input_shape, (tuple, list)):
        raise TypeError(f"{fn}: input_shape must be a tuple of ints, got {input_shape!r}")
    shape = tuple(_as_int(s, "input_shape") for s in input_shape)
    if len(shape) != gy.ndim or shape[:-2] != gy.shape[:-2] or min(shape[-3:]) < 1:
        raise ValueError(
            f"{fn}: input_shape {_shape_str(shape)} does not match grad_out of "
            f"shape {_shape_str(gy.shape)} (leading dimensions must agree, planes "
            f"non-empty)"
        )
    _check_size(shape, "input_shape", fn, gy.dtype.itemsize)
    return gy, shape


def adaptive_avg_pool2d_backward(grad_out: ArrayLike, input_shape: Shape) -> FloatArray:
    """Gradient of ``adaptive_avg_pool2d``: each ``grad_out`` element spread evenly over its
    window of an input of ``input_shape``."""
    fn = "adaptive_avg_pool2d_backward"
    gy, shape = _grad_for_shape(grad_out, input_shape, fn)
    OH, OW, hs, he, ws, we = _adaptive_geom(shape, gy.shape[-2:], fn, gy.dtype.itemsize)
    H, W = shape[-2:]
    if gy.size == 0:  # an output of no rows or no columns (as torch allows): nothing to spread
        return np.zeros(shape, gy.dtype)
    gx = _recycle.empty(shape, gy.dtype)
    if gx.size:
        _resample.adaptive_avg_backward(
            contiguous(gy).reshape(-1, OH, OW),
            gx.reshape(-1, H, W),
            hs,
            he,
            ws,
            we,
            threads_for(gx.size, "elements"),
        )
    return gx


@overload
def adaptive_max_pool2d(
    x: ArrayLike,
    output_size: int | Sequence[int | None],
    return_indices: Literal[False] = ...,
) -> FloatArray: ...


@overload
def adaptive_max_pool2d(
    x: ArrayLike,
    output_size: int | Sequence[int | None],
    return_indices: Literal[True],
) -> tuple[FloatArray, IndexArray]: ...


@overload
def adaptive_max_pool2d(
    x: ArrayLike,
    output_size: int | Sequence[int | None],
    *,
    return_indices: Literal[True],
) -> tuple[FloatArray, IndexArray]: ...


@overload
def adaptive_max_pool2d(
    x: ArrayLike,
    output_size: int | Sequence[int | None],
    return_indices: bool = ...,
) -> FloatArray | tuple[FloatArray, IndexArray]: ...


def adaptive_max_pool2d(
    x: ArrayLike,
    output_size: int | Sequence[int | None],
    return_indices: bool = False,
) -> FloatArray | tuple[FloatArray, IndexArray]:
    """Adaptive max pooling, as ``torch.nn.functional.adaptive_max_pool2d`` (windows as
    ``adaptive_avg_pool2d``).

    Returns y, and with ``return_indices`` the int64 flat index ``h * W + w`` of each maximum in
    its plane. Ties go to the first maximum in row-major window order; a window holding NaN
    outputs NaN with the index of its last NaN (torch's CPU rule).
    """
    fn = "adaptive_max_pool2d"
    x, x3 = _plane_input(x, "x", fn)
    return_indices = _check_bool(return_indices, "return_indices")
    OH, OW, hs, he, ws, we = _adaptive_geom(x.shape, output_size, fn, x.dtype.itemsize)
    y = _recycle.empty(x.shape[:-2] + (OH, OW), x.dtype)
    idx = _recycle.empty(y.shape, np.int64)
    if y.size:
        _resample.adaptive_max_forward(
            x3,
            y.reshape(-1, OH, OW),
            idx.reshape(-1, OH, OW),
            hs,
            he,
            ws,
            we,
            threads_for(x.size, "elements"),
        )
    return (y, idx) if return_indices else y


def _indices(indices, shape, fn):
    idx = np.asarray(indices)
    if not np.issubdtype(idx.dtype, np.integer):
        raise TypeError(f"{fn}: indices must be an integer (int64) array, got {idx.dtype}")
    if idx.shape != tuple(shape):
        raise ValueError(
            f"{fn}: indices must have shape {_shape_str(shape)}, got {_shape_str(idx.shape)}"
        )
    if idx.dtype.itemsize > 8 or (idx.dtype.kind == "u" and idx.dtype.itemsize == 8):
        if idx.size and (idx.max() > np.iinfo(np.int64).max):
            raise ValueError(f"{fn}: indices hold values beyond int64")
    return contiguous(idx.astype(np.int64, copy=False))


def adaptive_max_pool2d_backward(
    grad_out: ArrayLike,
    indices: ArrayLike,
    input_shape: Shape,
) -> FloatArray:
    """Gradient of ``adaptive_max_pool2d``: each ``grad_out`` element added to the input element
    its index names (in its own plane). An index outside [0, H*W) is a ValueError."""
    fn = "adaptive_max_pool2d_backward"
    gy, shape = _grad_for_shape(grad_out, input_shape, fn)
    idx = _indices(indices, gy.shape, fn)
    H, W = shape[-2:]
    OH, OW = gy.shape[-2:]
    if math.prod(shape) and idx.size and (idx.min() < 0 or idx.max() >= H * W):
        raise ValueError(
            f"{fn}: indices must lie in [0, H*W) = [0, {H * W}) for input_shape {_shape_str(shape)}"
        )
    gx = _recycle.empty(shape, gy.dtype)
    if gx.size == 0:
        return gx
    if gy.size == 0:
        gx.fill(0)
        return gx
    _pool.max_pool2d_backward(
        contiguous(gy).reshape(-1, OH, OW),
        idx.reshape(-1, OH, OW),
        gx.reshape(-1, H, W),
        threads_for(gx.size, "elements"),
    )
    return gx


_MODES = ("nearest", "bilinear")


def _interp_args(shape, options, fn, itemsize):
    """-> (OH, OW, scales) with scales the (h, w) scale factors torch passes to its kernel
    (None: use in/out), from ``options`` = (size, scale_factor, mode, align_corners,
    recompute_scale_factor), for an input of ``shape`` and elements of ``itemsize`` bytes."""
    size, scale_factor, mode, align_corners, recompute_scale_factor = options
    if not isinstance(mode, str) or mode not in _MODES:
        raise ValueError(f"{fn}: mode must be one of {', '.join(map(repr, _MODES))}, got {mode!r}")
    if mode == "nearest":
        if align_corners is not None:
            raise ValueError(
                f"{fn}: align_corners can only be set with mode 'bilinear', got "
                f"align_corners={align_corners!r} with mode 'nearest'"
            )
    elif align_corners is not None:
        _check_bool(align_corners, "align_corners")
    if recompute_scale_factor is not None:
        _check_bool(recompute_scale_factor, "recompute_scale_factor")
    H, W = shape[-2:]
    if (size is None) == (scale_factor is None):
        raise ValueError(
            f"{fn}: exactly one of size and scale_factor must be given, got "
            f"size={size!r}, scale_factor={scale_factor!r}"
        )
    if size is not None:
        if recompute_scale_factor:
            raise ValueError(f"{fn}: recompute_scale_factor needs scale_factor, not size")
        OH, OW = as_pair(size, "size", allow_zero=True)
        scales = (None, None)
    else:
        if isinstance(scale_factor, (tuple, list)):
            if len(scale_factor) != 2:
                raise ValueError(
                    f"{fn}: scale_factor must be a number or a pair, got {scale_factor!r}"
                )
            sf = tuple(_real(s, "scale_factor") for s in scale_factor)
        else:
            s = _real(scale_factor, "scale_factor")
            sf = (s, s)
        if min(sf) <= 0:
            raise ValueError(f"{fn}: scale_factor must be positive, got {scale_factor!r}")
        if max(sf) * max(H, W) > MAX_EXTENT:
            raise ValueError(
                f"{fn}: scale_factor {scale_factor!r} is too large for input of "
                f"shape {_shape_str(shape)}"
            )
        OH, OW = math.floor(H * sf[0]), math.floor(W * sf[1])
        scales = (None, None) if recompute_scale_factor else sf
    if OH < 1 or OW < 1:
        raise ValueError(
            f"{fn}: the output size ({OH}, {OW}) must be positive (size "
            f"{size!r}, scale_factor {scale_factor!r}, input {_shape_str(shape)})"
        )
    _check_size(tuple(shape[:-2]) + (OH, OW), "the output", fn, itemsize)
    _check_tables(OH, OW, itemsize, fn)
    return OH, OW, scales


def _check_tables(OH, OW, itemsize, fn):
    """The index and weight tables of interpolate and the adaptive pools are per output row
    and column (_interp_tables, _windows): on a plane one pixel wide they outweigh the output
    itself, ten times over. They must fit in memory too (check_alloc)."""
    check_alloc(
        (OH + OW,),
        f"{fn}: the index and weight tables, one entry per output row and column, of shape",
        _table_bytes(itemsize),
    )


def _table_bytes(itemsize):
    """Bytes the tables and their temporaries take per output row or column at their peak,
    measured with tracemalloc on outputs of 2**22 x 1: interpolate's bilinear 40 (float32) and
    56 (float64) forward, 48 and 64 backward; nearest 20; the adaptive pools' windows 20."""
    return 32 + 4 * itemsize


def _nearest_table(n_in, n_out, scale):
    """torch's nearest_idx, in float32 arithmetic as torch computes it."""
    o = np.arange(n_out, dtype=np.int64)
    if n_out == n_in:
        return o
    if n_out == 2 * n_in:
        return o >> 1
    f = (
        np.float32(1.0 / scale)
        if scale is not None and scale > 0
        else (np.float32(n_in) / np.float32(n_out))
    )
    src = np.floor(o.astype(np.float32) * f).astype(np.int64)
    return np.minimum(src, n_in - 1)


def _linear_table(n_in, n_out, scale, align_corners, dtype):
    """torch's linear source indices and weights: (i0, i1, l0, l1)."""
    ft = np.float32 if dtype == np.float32 else np.float64
    o = np.arange(n_out, dtype=np.int64)
    if n_out == n_in:
        # torch copies an axis whose size does not change, whatever the scale factor (1.1 on
        # 2..9 rows, 1.4 on 2): output i is input i alone, not a blend at i / scale
        return o, o, np.ones(n_out, dtype), np.zeros(n_out, dtype)
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


def interpolate(
    x: ArrayLike,
    size: int | Sequence[int] | None = None,
    scale_factor: float | Sequence[float] | None = None,
    mode: str = "nearest",
    align_corners: bool | None = None,
    recompute_scale_factor: bool | None = None,
) -> FloatArray:
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
    options = (size, scale_factor, mode, align_corners, recompute_scale_factor)
    OH, OW, scales = _interp_args(x.shape, options, fn, x.dtype.itemsize)
    t = _interp_tables(x.shape, OH, OW, scales, mode, align_corners, x.dtype)
    y = _recycle.empty(x.shape[:-2] + (OH, OW), x.dtype)
    if y.size:
        kern = _resample.nearest_forward if mode == "nearest" else _resample.bilinear_forward
        kern(x3, y.reshape(-1, OH, OW), *t, threads_for(y.size, "elements"))
    return y


def interpolate_backward(
    grad_out: ArrayLike,
    input_shape: Shape,
    size: int | Sequence[int] | None = None,
    scale_factor: float | Sequence[float] | None = None,
    mode: str = "nearest",
    align_corners: bool | None = None,
    recompute_scale_factor: bool | None = None,
) -> FloatArray:
    """Gradient of ``interpolate`` (same arguments) for an input of ``input_shape``: each output
    gradient is added back to the input elements it was read from, with the same weights."""
    fn = "interpolate_backward"
    gy, shape = _grad_for_shape(grad_out, input_shape, fn)
    options = (size, scale_factor, mode, align_corners, recompute_scale_factor)
    OH, OW, scales = _interp_args(shape, options, fn, gy.dtype.itemsize)
    if gy.shape[-2:] != (OH, OW):
        raise ValueError(
            f"{fn}: grad_out must have spatial size ({OH}, {OW}) for these "
            f"arguments, got {_shape_str(gy.shape)}"
        )
    t = _interp_tables(shape, OH, OW, scales, mode, align_corners, gy.dtype)
    H, W = shape[-2:]
    gx = _recycle.empty(shape, gy.dtype)
    if gx.size:
        kern = _resample.nearest_backward if mode == "nearest" else _resample.bilinear_backward
        kern(
            contiguous(gy).reshape(-1, OH, OW),
            gx.reshape(-1, H, W),
            *t,
            threads_for(gy.size, "elements"),
        )
    return gx


def _unpool_size(shape, kernel_size, stride, padding, output_size, fn, itemsize):
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
            raise ValueError(
                f"{fn}: output_size must have 2 entries (or the full output "
                f"shape), got {output_size!r}"
            )
        for d, s in enumerate((sh, sw)):
            if not default[d] - s < os_[d] < default[d] + s:
                raise ValueError(
                    f"{fn}: output_size {output_size!r} is invalid: entry {d} must "
                    f"lie strictly between {default[d] - s} and {default[d] + s} "
                    f"for input {_shape_str(shape)}"
                )
        out = os_
    if min(out) < 1:
        raise ValueError(
            f"{fn}: the output size {out} must be positive (kernel_size "
            f"{kernel_size!r}, stride {stride!r}, padding {padding!r}, input "
            f"{_shape_str(shape)})"
        )
    _check_size(tuple(shape[:-2]) + tuple(out), "the output", fn, itemsize)
    return tuple(out)


def max_unpool2d(
    x: ArrayLike,
    indices: ArrayLike,
    kernel_size: IntPair,
    stride: IntPair | None = None,
    padding: Padding = 0,
    output_size: int | Sequence[int | None] = None,
) -> FloatArray:
    """Partial inverse of ``max_pool2d``, as ``torch.nn.functional.max_unpool2d``: a zero
    output of spatial size ``(H - 1) * stride - 2 * padding + kernel_size`` (or
    ``output_size``) into whose plane each x element is put at its index (flat ``h * OW + w``;
    a repeated index keeps the last value in row-major order). ``indices`` must have x's shape
    and lie in [0, OH*OW): anything else is a ValueError (nothing is written out of bounds).
    """
    fn = "max_unpool2d"
    x = check_array(x, "x", (3, 4))
    _check_size(x.shape, "x", fn, x.dtype.itemsize)
    idx = _indices(indices, x.shape, fn)
    OH, OW = _unpool_size(x.shape, kernel_size, stride, padding, output_size, fn, x.dtype.itemsize)
    y = _recycle.empty(x.shape[:-2] + (OH, OW), x.dtype)
    if y.size:
        P = math.prod(x.shape[:-2])
        bad = _resample.max_unpool_forward(
            contiguous(x).reshape(P, -1),
            idx.reshape(P, -1),
            y.reshape(P, -1),
            threads_for(y.size, "elements"),
        )
        if bad:
            raise ValueError(
                f"{fn}: {bad} indices lie outside [0, OH*OW) = [0, {OH * OW}) "
                f"for the output of spatial size ({OH}, {OW})"
            )
    return y


def max_unpool2d_backward(
    grad_out: ArrayLike,
    indices: ArrayLike,
    input_shape: Shape,
) -> FloatArray:
    """Gradient of ``max_unpool2d``: ``grad_x`` of ``input_shape`` (x's shape) gathers
    ``grad_out`` at the indices. An index outside the output plane is a ValueError."""
    fn = "max_unpool2d_backward"
    gy = check_array(grad_out, "grad_out", (3, 4))
    if not isinstance(input_shape, (tuple, list)):
        raise TypeError(f"{fn}: input_shape must be a tuple of ints, got {input_shape!r}")
    shape = tuple(_as_int(s, "input_shape") for s in input_shape)
    if len(shape) != gy.ndim or shape[:-2] != gy.shape[:-2] or min(shape) < 0:
        raise ValueError(
            f"{fn}: input_shape {_shape_str(shape)} does not match grad_out of "
            f"shape {_shape_str(gy.shape)} (leading dimensions must agree)"
        )
    _check_size(shape, "input_shape", fn, gy.dtype.itemsize)
    idx = _indices(indices, shape, fn)
    if math.prod(shape) == 0:
        return _recycle.empty(shape, gy.dtype)
    if gy.size == 0:
        raise ValueError(
            f"{fn}: indices lie outside the empty output planes of grad_out {_shape_str(gy.shape)}"
        )
    gx = _recycle.empty(shape, gy.dtype)
    P = math.prod(shape[:-2])
    bad = _resample.max_unpool_backward(
        contiguous(gy).reshape(P, -1),
        idx.reshape(P, -1),
        gx.reshape(P, -1),
        threads_for(gx.size, "elements"),
    )
    if bad:
        OL = gy.shape[-1] * gy.shape[-2]
        raise ValueError(
            f"{fn}: {bad} indices lie outside [0, OH*OW) = [0, {OL}) for grad_out "
            f"of shape {_shape_str(gy.shape)}"
        )
    return gx
