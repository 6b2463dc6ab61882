"""2-D transposed convolution: ``conv_transpose2d`` and its gradients, computed by the
convolution's kernels (no kernel of its own).

A transposed convolution is the adjoint of ``conv2d`` with the same weight, stride, padding and
dilation: its forward pass is conv2d's input gradient (the ``grad_input`` kernels), its input
gradient is conv2d's forward pass, and its weight gradient is conv2d's weight gradient with the
roles of input and output swapped. The route of each pass is chosen by ``_routes`` on the
geometry of that convolution, exactly as for ``conv2d``.
"""

from __future__ import annotations

import numpy as np

from .._config import threads_for
from .._kernels import _conv
from .._typing import ArrayLike, FloatArray, Grads, IntPair
from .._validation import (
    as_pair,
    check_alloc,
    check_array,
    check_out,
    check_positive_int,
    check_same_dtype,
    contiguous,
    transpose_geometry,
)
from ._common import Window, _buffer, _check_grad_flags, _into, _shape_str
from ._routes import conv_shape, resolve_route
from .conv import _kernel, _kernel_geom, _kernel_geoms


def _transpose_setup(x, weight, bias, stride, padding, output_padding, groups, dilation, fn):
    """Validate the arguments; return (x4, weight, bias, unbatched, out_shape4, conv_shape4,
    Window of the adjoint convolution). ``out_shape4`` is the transposed convolution's output
    (the adjoint convolution's input); ``conv_shape4`` is that convolution's output, which is
    x's shape except when output_padding >= stride (then it has extra rows/columns beyond x)."""
    x = check_array(x, "x", (3, 4))
    weight = check_array(weight, "weight", (4,))
    if bias is not None:
        bias = check_array(bias, "bias", (1,))
    check_same_dtype(x=x, weight=weight, bias=bias)
    groups = check_positive_int(groups, "groups")
    stride = as_pair(stride, "stride")
    dilation = as_pair(dilation, "dilation")
    padding = as_pair(padding, "padding", allow_zero=True)
    output_padding = as_pair(output_padding, "output_padding", allow_zero=True)
    unbatched = x.ndim == 3
    x4 = x[None] if unbatched else x
    N, C, H, W = x4.shape
    c_in, cg_out, kh, kw = weight.shape
    if c_in % groups:
        raise ValueError(
            f"{fn}: groups={groups} must divide the weight's in_channels (its "
            f"first axis); got weight of shape {_shape_str(weight.shape)}"
        )
    if C != c_in:
        raise ValueError(
            f"{fn}: x has {C} channels but weight of shape "
            f"{_shape_str(weight.shape)} expects {c_in} (its first axis); x has "
            f"shape {_shape_str(x.shape)}"
        )
    if kh < 1 or kw < 1 or cg_out < 1:
        raise ValueError(
            f"{fn}: weight must have at least one output channel and a kernel of "
            f"at least 1x1, got shape {_shape_str(weight.shape)}"
        )
    if (H == 0 or W == 0) and N * C:
        raise ValueError(
            f"{fn}: x must have a non-empty height and width (only the batch or "
            f"the channels may be empty), got shape {_shape_str(x.shape)}"
        )
    c_out = cg_out * groups
    if bias is not None and bias.shape != (c_out,):
        raise ValueError(
            f"{fn}: bias must have shape ({c_out},) (out_channels = weight.shape[1]"
            f" * groups), got {_shape_str(bias.shape)}"
        )
    out_hw, conv_hw = transpose_geometry(
        fn,
        (max(H, 1), max(W, 1)),
        (kh, kw),
        stride,
        padding,
        output_padding,
        dilation,
        detail=f"; x has shape {_shape_str(x.shape)}, weight {_shape_str(weight.shape)}",
    )
    g = Window((kh, kw), stride, tuple((p, p) for p in padding), dilation, conv_hw, groups)
    return x4, weight, bias, unbatched, (N, c_out) + out_hw, (N, c_in) + conv_hw, g


def _padded(a4, shape4):
    """``a4`` (N, C, H, W) zero-extended at the bottom/right to ``shape4`` (no copy when equal)."""
    if a4.shape == shape4:
        return contiguous(a4)
    p = np.zeros(shape4, a4.dtype)
    p[:, :, : a4.shape[2], : a4.shape[3]] = a4
    return p


def conv_transpose2d(
    x: ArrayLike,
    weight: ArrayLike,
    bias: ArrayLike | None = None,
    stride: IntPair = 1,
    padding: IntPair = 0,
    output_padding: IntPair = 0,
    groups: int = 1,
    dilation: IntPair = 1,
    *,
    out: FloatArray | None = None,
    _route: str | None = None,
) -> FloatArray:
    """2-D transposed convolution (the gradient of conv2d with respect to its input), as
    ``torch.nn.functional.conv_transpose2d``.

    Parameters
    ----------
    x : array (N, C_in, H, W), or (C_in, H, W) for one unbatched image; float32 or float64.
    weight : array (C_in, C_out // groups, kH, kW) (torch's layout), same dtype as x.
    bias : array (C_out,) or None.
    stride, dilation : int or (int, int), >= 1.
    padding : int or (int, int) >= 0: ``dilation*(k-1) - padding`` zeros are implicitly added
        on both sides of the input, i.e. ``padding`` rows/columns are cropped from each side of
        the full output.
    output_padding : int or (int, int) >= 0, smaller than the stride or the dilation: extra
        rows/columns on the bottom/right of the output.
    groups : int dividing C_in; C_out = weight.shape[1] * groups.
    out : optional array of the output's shape and dtype to write into.

    Returns
    -------
    y : array (N, C_out, OH, OW) (or (C_out, OH, OW) for unbatched x), with
        ``OH = (H - 1)*stride_h - 2*padding_h + dilation_h*(kH - 1) + output_padding_h + 1``
        (likewise OW), ``y[n, g*C_out/groups + o, h*stride - padding + i*dilation,
        w*stride - padding + j*dilation] += x[n, c, h, w] * weight[c, o, i, j]`` over the
        input channels c of group g, plus ``bias``.

    The forward pass runs conv2d's input-gradient kernel (a scatter, no new kernel); the
    private ``_route`` (tests only) forces its route, as ``conv2d``'s does.
    """
    fn = "conv_transpose2d"
    x4, weight, bias, unbatched, shape4, conv4, g = _transpose_setup(
        x, weight, bias, stride, padding, output_padding, groups, dilation, fn
    )
    route = resolve_route(_route, "grad_input", conv_shape(shape4, weight.shape, g), fn)
    shape = shape4[1:] if unbatched else shape4
    check_alloc(
        shape4,
        f"{fn}: the output (from x, weight, stride, padding, output_padding and dilation) of shape",
        x4.dtype.itemsize,
    )
    check_alloc(conv4, f"{fn}: x extended by output_padding to shape", x4.dtype.itemsize)
    check_out(out, shape, x4.dtype)
    y = _buffer(out, shape, x4.dtype, x, weight, bias)
    y4 = y.reshape(shape4)
    if y4.size and x4.size:
        _kernel("grad_input", route)(
            _padded(x4, conv4),
            contiguous(weight),
            y4,
            *_kernel_geom(g, shape4, weight.shape, route, x4.dtype.itemsize, fn),
        )
    elif y4.size:
        y4[...] = 0
    if bias is not None and y4.size:
        y4 += bias[:, None, None]
    return _into(out, y)


def conv_transpose2d_backward(
    grad_out: ArrayLike,
    x: ArrayLike,
    weight: ArrayLike,
    stride: IntPair = 1,
    padding: IntPair = 0,
    output_padding: IntPair = 0,
    groups: int = 1,
    dilation: IntPair = 1,
    needs_input_grad: bool = True,
    needs_weight_grad: bool = True,
    needs_bias_grad: bool = True,
    *,
    _route: str | dict[str, str] | None = None,
) -> Grads:
    """Gradients of ``conv_transpose2d(x, weight, bias, stride, padding, output_padding,
    groups, dilation)``.

    Given ``grad_out`` = dL/dy (the shape of the output), returns ``(grad_x, grad_weight,
    grad_bias)`` (shapes of x, weight and (C_out,)); a gradient not asked for is None and is not
    computed. grad_x is ``conv2d(grad_out, weight, None, stride, padding, dilation, groups)``
    (conv2d's forward kernels), grad_weight is conv2d's weight gradient with grad_out as the
    convolution's input and x as its output gradient, grad_bias sums grad_out over the batch
    and the pixels.

    The private ``_route`` (tests only) forces the kernel routes: a route name for both, or a
    dict ``{'grad_input': ..., 'grad_weight': ...}`` (grad_input runs conv2d's forward kernels).
    """
    fn = "conv_transpose2d_backward"
    needs_input_grad, needs_weight_grad, needs_bias_grad = _check_grad_flags(
        needs_input_grad, needs_weight_grad, needs_bias_grad
    )
    x4, weight, _, unbatched, shape4, conv4, g = _transpose_setup(
        x, weight, None, stride, padding, output_padding, groups, dilation, fn
    )
    s = conv_shape(shape4, weight.shape, g)
    forced = _route if isinstance(_route, dict) else {"grad_input": _route, "grad_weight": _route}
    if set(forced) - {"grad_input", "grad_weight"}:
        raise ValueError(
            f"{fn}: _route keys must be 'grad_input' and 'grad_weight', got {sorted(forced)}"
        )
    routes = {
        p: resolve_route(forced.get(p), k, s, fn)
        for p, k, needed in (
            ("grad_input", "forward", needs_input_grad),
            ("grad_weight", "grad_weight", needs_weight_grad),
        )
        if needed
    }
    gy = check_array(grad_out, "grad_out", (3, 4))
    check_same_dtype(x=x4, grad_out=gy)
    if gy.shape != (shape4[1:] if unbatched else shape4):
        raise ValueError(
            f"{fn}: grad_out must have the output's shape "
            f"{_shape_str(shape4[1:] if unbatched else shape4)} for x of shape "
            f"{_shape_str(x4.shape[1:] if unbatched else x4.shape)} and weight "
            f"{_shape_str(weight.shape)}, got {_shape_str(gy.shape)}"
        )
    check_alloc(shape4, f"{fn}: grad_out of shape", x4.dtype.itemsize)
    check_alloc(conv4, f"{fn}: x extended by output_padding to shape", x4.dtype.itemsize)
    gy4 = contiguous(gy.reshape(shape4))
    dtype = x4.dtype
    empty = gy4.size == 0 or x4.size == 0
    grad_x = grad_w = grad_b = None
    # both passes' geometry (and memory checks) before either runs
    geoms = {} if empty else _kernel_geoms(g, shape4, weight.shape, routes, dtype.itemsize, fn)
    if needs_input_grad:
        if empty:
            grad_x = np.zeros(x4.shape, dtype)
        else:
            gx = np.empty(conv4, dtype)
            geom = geoms["grad_input"]
            _kernel("forward", routes["grad_input"])(gy4, contiguous(weight), None, gx, *geom)
            grad_x = (
                gx
                if conv4 == x4.shape
                else np.ascontiguousarray(gx[:, :, : x4.shape[2], : x4.shape[3]])
            )
        if unbatched:
            grad_x = grad_x[0]
    if needs_weight_grad:
        grad_w = np.zeros(weight.shape, dtype)
        if not empty:
            geom = geoms["grad_weight"]
            _kernel("grad_weight", routes["grad_weight"])(_padded(x4, conv4), gy4, grad_w, *geom)
    if needs_bias_grad:
        grad_b = np.zeros(shape4[1], dtype)
        if gy4.size:
            _conv.conv2d_grad_bias(gy4, grad_b, threads_for(gy4.size, "macs"))
    return grad_x, grad_w, grad_b
