"""2-D convolution: ``conv2d`` and its gradients. Validates and normalises the arguments,
chooses the thread count and the route (``_routes``), allocates and calls the kernels."""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import numpy as np

from .. import _recycle, _validation
from .._config import threads_for
from .._kernels import _conv
from .._typing import ArrayLike, FloatArray, Grads, IntPair, Padding
from .._validation import (
    as_pair,
    check_alloc,
    check_array,
    check_out,
    check_padding,
    check_positive_int,
    check_same_dtype,
    contiguous,
    copies_that_fit,
    keep_plain_results,
    side_pads,
    window_geometry,
)
from ._common import Window, _buffer, _check_grad_flags, _into, _shape_str
from ._routes import conv_shape, resolve_route


def _conv_setup(x, weight, bias, stride, padding, dilation, groups, fn="conv2d"):
    """Validate conv2d arguments; return (x4, w, b, unbatched, geometry)."""
    x, weight, bias = _conv_arrays(x, weight, bias)
    b_shape = None if bias is None else bias.shape
    g = _conv_window(x.shape, weight.shape, b_shape, stride, padding, dilation, groups, fn)
    return (x[None] if x.ndim == 3 else x), weight, bias, x.ndim == 3, g


def _conv_arrays(x, weight, bias):
    """conv2d's arrays checked (check_array) and of one dtype: (x, weight, bias)."""
    x = check_array(x, "x", (3, 4))
    weight = check_array(weight, "weight", (4,))
    if bias is not None:
        bias = check_array(bias, "bias", (1,))
    dtype = x.dtype
    if weight.dtype is not dtype or (bias is not None and bias.dtype is not dtype):
        check_same_dtype(x=x, weight=weight, bias=bias)  # (equal dtype objects pass too)
    return x, weight, bias


@keep_plain_results(shapes=3)
def _forward_plan(x_shape, w_shape, b_shape, itemsize, stride, padding, dilation, groups, forced):
    """What conv2d decides from the shapes and its arguments alone, kept per geometry (as
    _conv_window's checks: a network calls it with the same few on every step): the Window, the
    route (``forced``: conv2d's ``_route``), the output's 4-d shape and the kernel's
    _KernelLimits. Nothing in it depends on the machine's memory: the call checks that."""
    g = _conv_window(x_shape, w_shape, b_shape, stride, padding, dilation, groups, "conv2d")
    x4_shape = x_shape if len(x_shape) == 4 else (1, *x_shape)
    route = resolve_route(forced, "forward", conv_shape(x4_shape, w_shape, g), "conv2d")
    shape4 = (x4_shape[0], w_shape[0]) + g.out_hw
    return route, shape4, _kernel_limits(g, x4_shape, w_shape, route, itemsize)


@keep_plain_results(shapes=3)
def _conv_window(x_shape, w_shape, b_shape, stride, padding, dilation, groups, fn):
    """The geometry checks of conv2d, on shapes and the window arguments alone: the ``Window``
    (ValueError or TypeError naming the argument)."""
    groups = check_positive_int(groups, "groups")
    stride = as_pair(stride, "stride")
    dilation = as_pair(dilation, "dilation")
    N, C, H, W = x_shape if len(x_shape) == 4 else (1, *x_shape)
    n_filters, Cg, kh, kw = w_shape
    if n_filters % groups:
        raise ValueError(
            f"{fn}: groups={groups} must divide the weight's out_channels; "
            f"got weight of shape {_shape_str(w_shape)}"
        )
    if C != Cg * groups:
        raise ValueError(
            f"{fn}: x has {C} channels but weight of shape "
            f"{_shape_str(w_shape)} with groups={groups} expects "
            f"{Cg * groups}; x has shape {_shape_str(x_shape)}"
        )
    if kh < 1 or kw < 1 or n_filters < 1:
        raise ValueError(
            f"{fn}: weight must have at least one filter and a kernel of at least "
            f"1x1, got shape {_shape_str(w_shape)}"
        )
    if (H == 0 or W == 0) and N * C:
        raise ValueError(
            f"{fn}: x must have a non-empty height and width (only the batch or "
            f"the channels may be empty), got shape {_shape_str(x_shape)}"
        )
    if b_shape is not None and b_shape != (n_filters,):
        raise ValueError(
            f"{fn}: bias must have shape ({n_filters},) to match weight of shape "
            f"{_shape_str(w_shape)}, got {_shape_str(b_shape)}"
        )
    ekh, ekw = dilation[0] * (kh - 1) + 1, dilation[1] * (kw - 1) + 1
    padding_arg = padding
    padding = check_padding(padding, stride, fn)
    if padding == "valid":
        pads = ((0, 0), (0, 0))
    elif padding == "same":
        # PyTorch's rule: total dilation*(k-1), the odd one on the bottom/right
        pads = tuple((t // 2, t - t // 2) for t in (ekh - 1, ekw - 1))
    else:
        pads = side_pads(padding)
    out_hw = window_geometry(
        fn,
        (H, W),
        (kh, kw),
        stride,
        pads,
        dilation,
        names=("weight", "stride", "padding", "dilation"),
        detail=lambda: (
            f"; x has shape {_shape_str(x_shape)}, weight "
            f"{_shape_str(w_shape)}, padding {padding_arg!r}"
        ),
    )
    return Window((kh, kw), stride, pads, dilation, out_hw, groups)


def _kernel_geom(g, x_shape, w_shape, route, itemsize, fn):
    """The kernels' geometry arguments, ending with the thread count for this problem size
    (_with_threads)."""
    return _with_threads(
        _kernel_limits(g, x_shape, w_shape, route, itemsize), w_shape, itemsize, fn
    )


class _KernelLimits(NamedTuple):
    """What _kernel_geom takes from the shapes alone (_kernel_limits)."""

    fixed: tuple  # the kernels' geometry arguments but the thread count
    work: int  # threads_for's amount ...
    kind: str  # ... and kind
    tile: tuple | None  # the GEMM route's tile of unfolded input (_unfolded_tile), else None


def _with_threads(limits, w_shape, itemsize, fn):
    """The kernel's geometry arguments (``limits``, a _KernelLimits) with the thread count at
    the end: threads_for's (read on every call: set_num_threads may change it), on the GEMM
    route at most as many as the threads whose tiles of unfolded input fit in memory
    (_unfolded_threads; the ValueError names the call, ``fn``, where not even one's do)."""
    n_threads = threads_for(limits.work, limits.kind)
    if limits.tile is not None:
        n_threads = _unfolded_threads(limits.tile, w_shape, n_threads, itemsize, fn)
    return limits.fixed + (n_threads,)


@functools.lru_cache(maxsize=1024)
def _kernel_limits(g, x_shape, w_shape, route, itemsize):
    """The _KernelLimits of a call, kept per geometry: its arguments are already checked and
    normalised, and a network calls it with the same few on every step. The depthwise route
    does a few multiply-adds per element it moves, so its size is counted in elements (input
    and output planes) rather than in multiply-adds."""
    if route == "depthwise":
        work = math.prod(x_shape) + x_shape[0] * w_shape[0] * g.out_hw[0] * g.out_hw[1]
        kind = "elements"
    else:
        work = x_shape[0] * w_shape[0] * g.out_hw[0] * g.out_hw[1] * math.prod(w_shape[1:])
        kind = "macs"
    tile = _unfolded_tile(g, x_shape[0], w_shape, itemsize) if route == "gemm" else None
    pad_top, pad_left = g.pad_top_left
    fixed = (
        g.stride[0],
        g.stride[1],
        pad_top,
        pad_left,
        g.dilation[0],
        g.dilation[1],
        g.groups,
    )
    return _KernelLimits(fixed, work, kind, tile)


def _kernel_geoms(g, x_shape, w_shape, routes, itemsize, fn):
    """_kernel_geom of each pass in ``routes`` ({pass: route}), all computed (and their memory
    checked) before any of them runs: a refused second pass wastes no first."""
    return {p: _kernel_geom(g, x_shape, w_shape, r, itemsize, fn) for p, r in routes.items()}


def _unfolded_tile(g, batch, w_shape, itemsize):
    """One tile of unfolded input of the GEMM route (_unfolded_threads): (K, columns)."""
    K = w_shape[1] * w_shape[2] * w_shape[3]
    return K, _conv.unfolded_tile_columns(K, g.out_hw[0] * g.out_hw[1], batch, itemsize)


def _unfolded_threads(tile, w_shape, n_threads, itemsize, fn):
    """The GEMM route's thread count: n_threads, or fewer where only fewer threads' tiles of
    unfolded input fit in memory. Each thread of the GEMM route (every pass, and the
    transposed convolution's) unfolds a tile of its input: the weight's channels x taps per
    filter (K rows) by a tile of output pixels (_conv.tile_pixels: about TILE_BYTES, but at
    least 192 pixels or the whole plane; on small planes several of the batch's images side
    by side), packed in strips of the widest GEMM micro-tile (_conv.unfolded_tile_columns: 48
    columns even for a plane of 3 pixels); where the threads share a packed B (few work
    items), fewer than two tiles per thread more: at most 3 * n_threads tiles (an upper bound:
    one per thread at batch 16). For a huge kernel these exceed any memory (a 576x576 kernel
    over 96 channels: 29 GB per tile). Where one thread's three tiles fit but n_threads' do
    not, the call runs on as many threads as fit (the kernels give the same bits on any
    number, so whether a call is refused does not depend on the thread count); where not even
    one thread's fit, a ValueError naming the call and the weight, before anything is
    allocated, instead of a MemoryError or a machine driven into swap (check_alloc's rule).
    Kept per argument and amount of physical memory (what check_alloc reads): a network asks
    the same few on every step, and working it out took a microsecond of a small call's
    time; an error is raised again on every call."""
    return _unfolded_threads_kept(
        tile, w_shape, n_threads, itemsize, fn, _validation._physical_memory()
    )


@functools.lru_cache(maxsize=1024)
def _unfolded_threads_kept(tile, w_shape, n_threads, itemsize, fn, memory):
    """_unfolded_threads's answer (``memory``: the physical memory it was computed for)."""
    K, columns = tile
    n_threads = copies_that_fit((3, K, columns), itemsize, n_threads)
    check_alloc(
        (3 * n_threads, K, columns),
        lambda: (
            f"{fn}: the GEMM route's tiles of unfolded input for weight of shape "
            f"{_shape_str(w_shape)} (tiles, channels x kernel taps, columns)"
        ),
        itemsize,
    )
    return n_threads


def _kernel(pass_, route):
    """The kernel of ``convext._kernels._conv`` that runs this pass on this route (looked up
    at call time)."""
    return getattr(_conv, f"conv2d_{pass_}_{route}")


def conv2d(
    x: ArrayLike,
    weight: ArrayLike,
    bias: ArrayLike | None = None,
    stride: IntPair = 1,
    padding: Padding = 0,
    dilation: IntPair = 1,
    groups: int = 1,
    *,
    out: FloatArray | None = None,
    _route: str | None = None,
) -> FloatArray:
    """2-D convolution (cross-correlation, as in every deep-learning library).

    Parameters
    ----------
    x : array (N, C, H, W), or (C, H, W) for one unbatched image; float32 or float64.
    weight : array (F, C // groups, kH, kW), same dtype as x.
    bias : array (F,) or None.
    stride, dilation : int or (int, int), >= 1.
    padding : int or (int, int) >= 0 (zeros on both sides), a 4-tuple (top, bottom, left,
        right) of ints >= 0 (zeros on each side as given: exactly ``np.pad`` of x with zeros,
        then padding 0; ONNX's asymmetric ``pads``), ``'valid'`` (no padding) or ``'same'``
        (output size = input size; stride must be 1; an even total padding
        ``dilation*(k-1)`` is split evenly, an odd one puts the extra row/column at the
        bottom/right, exactly as PyTorch does).
    groups : int dividing C and F. ``groups == C`` is a depthwise convolution.
    out : optional array of the output's shape and dtype to write into.

    Returns
    -------
    y : array (N, F, OH, OW), or (F, OH, OW) for unbatched x, with
        ``OH = floor((H + pad_top + pad_bottom - dilation_h*(kH - 1) - 1) / stride_h) + 1``
        (likewise OW),
        ``y[n, f] = bias[f] + sum_{c, i, j} weight[f, c, i, j] * x_pad[n, g*C/groups + c,
        oh*stride + i*dilation, ow*stride + j*dilation]``.

    Notes
    -----
    Extra memory: per thread, one tile of unfolded input or one row-unfolded image and a packed
    copy of one group's weights (the direct route), about 1.5 MB together with the GEMM's packed
    panels; besides that, contiguous copies of inputs that are not C-contiguous. The GEMM
    route's tile is the weight's channels x taps per filter by at least 192 output pixels (or
    the whole plane), so it outgrows that with a kernel of thousands of taps; tiles of more
    bytes than the machine has are a ValueError.

    The private ``_route`` ('gemm', 'direct' or 'depthwise'; tests only) forces a kernel
    route; a route that cannot compute this geometry is a ValueError. By default
    ``functional._routes.choose_route`` picks it.
    """
    x, weight, bias = _conv_arrays(x, weight, bias)
    route, shape4, limits = _forward_plan(
        x.shape,
        weight.shape,
        None if bias is None else bias.shape,
        x.dtype.itemsize,
        stride,
        padding,
        dilation,
        groups,
        _route,
    )
    unbatched = x.ndim == 3
    x4 = x[None] if unbatched else x
    shape = shape4[1:] if unbatched else shape4
    check_alloc(
        shape4,
        "conv2d: the output (from x, weight, stride, padding and dilation) of shape",
        x4.dtype.itemsize,
    )
    check_out(out, shape, x4.dtype)
    y = _buffer(out, shape, x4.dtype, x, weight, bias)
    y4 = y.reshape(shape4) if unbatched else y
    if y4.size == 0:
        pass
    elif x4.size == 0:  # no input channels: the output is the bias
        y4[...] = 0 if bias is None else bias[:, None, None]
    else:
        _kernel("forward", route)(
            contiguous(x4),
            contiguous(weight),
            None if bias is None else contiguous(bias),
            y4,
            *_with_threads(limits, weight.shape, x4.dtype.itemsize, "conv2d"),
        )
    return _into(out, y)


def conv2d_backward(
    grad_out: ArrayLike,
    x: ArrayLike,
    weight: ArrayLike,
    stride: IntPair = 1,
    padding: Padding = 0,
    dilation: IntPair = 1,
    groups: int = 1,
    needs_input_grad: bool = True,
    needs_weight_grad: bool = True,
    needs_bias_grad: bool = True,
    *,
    _route: str | None = None,
) -> Grads:
    """Gradients of ``conv2d(x, weight, bias, stride, padding, dilation, groups)``.

    ``padding`` as in ``conv2d`` (a 4-tuple (top, bottom, left, right) included).
    Given ``grad_out`` = dL/dy (the shape of conv2d's output), returns
    ``(grad_x, grad_weight, grad_bias)``: dL/dx (shape of x), dL/dweight (shape of weight) and
    dL/dbias (shape (F,)). A gradient that is not asked for is None and is not computed.

    grad_x is the full correlation of grad_out (dilated by the stride) with the weight rotated
    by 180 degrees; grad_weight correlates x with grad_out; grad_bias sums grad_out over the
    batch and the pixels.

    Extra memory: one tile of unfolded input per thread (as in ``conv2d``: a ValueError where
    the tiles would take more bytes than the machine has), a packed or rotated copy of the weight
    for grad_x, and for grad_weight up to 16 partial sums of the weight's size, at most 8 MB of
    them unless one is larger (they make the result independent of the thread count).

    The private ``_route`` (tests only) forces the kernel routes: a route name for both
    gradients, or a dict ``{'grad_input': ..., 'grad_weight': ...}``; as in ``conv2d``.
    """
    fn = "conv2d_backward"
    needs_input_grad, needs_weight_grad, needs_bias_grad = _check_grad_flags(
        needs_input_grad, needs_weight_grad, needs_bias_grad
    )
    x4, weight, _, unbatched, g = _conv_setup(
        x, weight, None, stride, padding, dilation, groups, fn=fn
    )
    shape = conv_shape(x4.shape, weight.shape, g)
    forced = _route if isinstance(_route, dict) else {"grad_input": _route, "grad_weight": _route}
    if set(forced) - {"grad_input", "grad_weight"}:
        raise ValueError(
            f"{fn}: _route keys must be 'grad_input' and 'grad_weight', got {sorted(forced)}"
        )
    routes = {
        p: resolve_route(forced.get(p), p, shape, fn)
        for p, needed in (("grad_input", needs_input_grad), ("grad_weight", needs_weight_grad))
        if needed
    }
    gy = check_array(grad_out, "grad_out", (3, 4))
    check_same_dtype(x=x4, grad_out=gy)
    N, n_filters = x4.shape[0], weight.shape[0]
    shape4 = (N, n_filters) + g.out_hw
    if gy.shape != (shape4[1:] if unbatched else shape4):
        raise ValueError(
            f"{fn}: grad_out must have the output's shape "
            f"{_shape_str(shape4[1:] if unbatched else shape4)} for x of shape "
            f"{_shape_str(x4.shape[1:] if unbatched else x4.shape)} and weight "
            f"{_shape_str(weight.shape)}, got {_shape_str(gy.shape)}"
        )
    # grad_out may be a broadcast view: its contiguous copy must fit in memory
    check_alloc(shape4, f"{fn}: grad_out of shape", x4.dtype.itemsize)
    gy4 = contiguous(gy.reshape(shape4))
    dtype = x4.dtype
    empty = gy4.size == 0 or x4.size == 0
    grad_x = grad_w = grad_b = None
    # both passes' geometry (and memory checks) before either runs
    geoms = {} if empty else _kernel_geoms(g, x4.shape, weight.shape, routes, dtype.itemsize, fn)
    # both gradients on the depthwise route: one pass over grad_out where the kernel's channel
    # blocks take both (the same bits as the two passes; nothing written when it does not run)
    both = (
        needs_input_grad
        and needs_weight_grad
        and not empty
        and routes["grad_input"] == routes["grad_weight"] == "depthwise"
    )
    if both:
        grad_x = _recycle.empty(x4.shape, dtype)
        grad_w = np.zeros(weight.shape, dtype)
        both = _conv.conv2d_grad_depthwise(
            gy4,
            contiguous(x4),
            contiguous(weight),
            grad_x,
            grad_w,
            *geoms["grad_input"],  # the depthwise route's, as both passes take it
        )
    if needs_input_grad:
        if grad_x is None:
            grad_x = np.zeros(x4.shape, dtype) if empty else _recycle.empty(x4.shape, dtype)
        if not empty and not both:
            _kernel("grad_input", routes["grad_input"])(
                gy4,
                contiguous(weight),
                grad_x,
                *geoms["grad_input"],
            )
        if unbatched:
            grad_x = grad_x[0]
    if needs_weight_grad:
        if grad_w is None:
            grad_w = np.zeros(weight.shape, dtype)
        if not empty and not both:
            _kernel("grad_weight", routes["grad_weight"])(
                gy4,
                contiguous(x4),
                grad_w,
                *geoms["grad_weight"],
            )
    if needs_bias_grad:
        grad_b = np.zeros(n_filters, dtype)
        if gy4.size:
            _conv.conv2d_grad_bias(gy4, grad_b, threads_for(gy4.size, "macs"))
    return grad_x, grad_w, grad_b
