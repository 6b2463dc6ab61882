"""ONNX convolution and pooling handlers (Conv, ConvTranspose, MaxPool, AveragePool) and the
ONE place where ONNX pads and auto_pad become convext padding."""

from __future__ import annotations

from .. import layers as L
from . import _ops as O
from ._proto import _Unsupported


# -- padding: the ONE place where ONNX pads and auto_pad become convext padding ----------
def _resolve_pads(imp, node, a, kernel, stride, dilation):
    """ONNX pads (x1_begin, x2_begin, x1_end, x2_end) or auto_pad -> (top, bottom, left,
    right), exactly as ONNX defines them (SAME_UPPER puts the odd extra at the end,
    SAME_LOWER at the beginning, for any stride)."""
    auto = a.get("auto_pad", "NOTSET")
    if auto == "NOTSET":
        p = list(a.get("pads", [0, 0, 0, 0]))
        if len(p) != 4 or any(v < 0 for v in p):
            raise _Unsupported(f"pads {p}: only 4 non-negative values (2-D) are supported")
        return p[0], p[2], p[1], p[3]
    if auto == "VALID":
        return 0, 0, 0, 0
    shape = imp.shape(node.input[0])
    if shape is None or len(shape) != 4 or not all(isinstance(s, int) and s > 0 for s in shape[2:]):
        raise _Unsupported(
            f"auto_pad={auto} needs the input's height and width known in the "
            f"model (got shape {shape})"
        )
    imp.size_dependent.append(f"auto_pad={auto} padding for {shape[2]}x{shape[3]} planes")
    out = []
    for n, k, s, d in zip(shape[2:], kernel, stride, dilation, strict=True):
        total = max(0, (-(-n // s) - 1) * s + (k - 1) * d + 1 - n)
        small, big = total // 2, total - total // 2
        out.append((small, big) if auto == "SAME_UPPER" else (big, small))
    return out[0][0], out[0][1], out[1][0], out[1][1]


def _padded(imp, base, x, kind, pads, kernel, ceil_mode, make):
    """Build ``make(x, padding)`` for per-side ``pads`` (top, bottom, left, right).

    conv2d takes any per-side padding, and the pools any padding of at most half the kernel on
    each side (their rule): those go to the layer's ``padding`` argument as they are (a pair
    when symmetric, else the 4-tuple), with ``ceil_mode`` (the last window must start inside
    the input or its top/left padding, as ONNX defines it). ONNX also allows larger pool pads,
    which the pools cannot express; the exact fallback for those (without ceil_mode) is an
    explicit ``Pad`` node (-inf before a max pool, zeros before an average pool counting the
    padding) and padding 0, and for an average pool not counting the padding
    ``OnnxAvgPoolExcludePad`` (returned as None: the caller builds it).
    """
    top, bottom, left, right = pads
    if kind == "conv" or (
        max(top, bottom) <= kernel[0] // 2 and max(left, right) <= kernel[1] // 2
    ):
        if top == bottom and left == right:
            return make(x, (top, left))
        return make(x, (top, bottom, left, right))
    if ceil_mode:
        raise _Unsupported(
            f"ceil_mode with pads {list(pads)} larger than half the kernel "
            f"{list(kernel)} is not supported"
        )
    if kind == "avg_exclude":
        return None  # the caller builds OnnxAvgPoolExcludePad
    value = float("-inf") if kind == "max" else 0.0
    xp = imp.emit(base + "_pad", L.Pad([top, bottom, left, right], "constant", value), [x])
    return make(xp, (0, 0))


def _ints2(a, key, default):
    v = list(a.get(key, default))
    if len(v) != 2:
        raise _Unsupported(f"{key}={v}: only 2-D (two values) is supported")
    return v


_PAD_ATTRS = {
    "auto_pad": ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"),
    "pads": None,
    "strides": None,
    "kernel_shape": None,
    "dilations": None,
}


def _conv(imp, node, check_only):
    a = imp.attrs(node, {**_PAD_ATTRS, "group": None})
    if check_only:
        return
    imp.check_one_type(node)
    w = imp.param(node, 1, "the weight")
    if w.ndim != 4:
        raise _Unsupported(f"only 2-D convolution is supported (weight shape {w.shape})")
    bias = imp.param(node, 2, "the bias", optional=True)
    groups = int(a.get("group", 1))
    k = _ints2(a, "kernel_shape", w.shape[2:])
    if tuple(k) != w.shape[2:]:
        raise _Unsupported(f"kernel_shape {k} does not match the weight {w.shape}")
    s, d = _ints2(a, "strides", [1, 1]), _ints2(a, "dilations", [1, 1])
    pads = _resolve_pads(imp, node, a, k, s, d)
    base = imp.node_base(node, node.input[1])
    x = imp.inp(node, 0)

    def make(xin, padding):
        layer = L.Conv2D(
            w.shape[1] * groups,
            w.shape[0],
            tuple(k),
            tuple(s),
            padding,
            tuple(d),
            groups,
            bias=bias is not None,
            dtype=imp.dtype,
        )
        layer.weight[...] = w
        if bias is not None:
            layer.bias[...] = bias
        return imp.emit(base, layer, [xin])

    imp.out(node, _padded(imp, base, x, "conv", pads, k, False, make))


def _conv_transpose(imp, node, check_only):
    a = imp.attrs(
        node, {**_PAD_ATTRS, "auto_pad": ("NOTSET", "VALID"), "group": None, "output_padding": None}
    )
    if check_only:
        return
    imp.check_one_type(node)
    w = imp.param(node, 1, "the weight")
    if w.ndim != 4:
        raise _Unsupported(f"only 2-D transposed convolution (weight shape {w.shape})")
    bias = imp.param(node, 2, "the bias", optional=True)
    groups = int(a.get("group", 1))
    k = _ints2(a, "kernel_shape", w.shape[2:])
    if tuple(k) != w.shape[2:]:
        raise _Unsupported(f"kernel_shape {k} does not match the weight {w.shape}")
    s, d = _ints2(a, "strides", [1, 1]), _ints2(a, "dilations", [1, 1])
    op = _ints2(a, "output_padding", [0, 0])
    pads = _resolve_pads(imp, node, a, k, s, d)
    # per-side pads crop the full output inside the layer (exact for any pads)
    layer = O.OnnxConvTranspose(
        w.shape[0],
        w.shape[1] * groups,
        k,
        s,
        list(pads),
        op,
        d,
        groups,
        bias=bias is not None,
        dtype=imp.dtype,
    )
    layer.weight[...] = w
    if bias is not None:
        layer.bias[...] = bias
    imp.out(node, imp.emit(imp.node_base(node, node.input[1]), layer, [imp.inp(node, 0)]))


def _maxpool(imp, node, check_only):
    a = imp.attrs(node, {**_PAD_ATTRS, "ceil_mode": (0, 1), "storage_order": (0, 1)})
    if check_only:
        return
    k = _ints2(a, "kernel_shape", [])
    s, d = _ints2(a, "strides", [1, 1]), _ints2(a, "dilations", [1, 1])
    ceil = bool(a.get("ceil_mode", 0))
    pads = _resolve_pads(imp, node, a, k, s, d)
    base = imp.node_base(node)

    def make(xin, padding):
        return imp.emit(base, L.MaxPool2D(tuple(k), tuple(s), padding, tuple(d), ceil), [xin])

    imp.out(node, _padded(imp, base, imp.inp(node, 0), "max", pads, k, ceil, make))


def _avgpool(imp, node, check_only):
    a = imp.attrs(
        node,
        {
            **_PAD_ATTRS,
            "ceil_mode": (0, 1),
            "count_include_pad": (0, 1),
            "dilations": lambda v: list(v) == [1, 1],
        },
        since={"dilations": 19},
    )
    if check_only:
        return
    k = _ints2(a, "kernel_shape", [])
    s = _ints2(a, "strides", [1, 1])
    ceil = bool(a.get("ceil_mode", 0))
    include = bool(a.get("count_include_pad", 0))
    pads = _resolve_pads(imp, node, a, k, s, [1, 1])
    base = imp.node_base(node)
    x = imp.inp(node, 0)

    def make(xin, padding):
        return imp.emit(base, L.AvgPool2D(tuple(k), tuple(s), padding, ceil, include), [xin])

    y = _padded(imp, base, x, "avg" if include else "avg_exclude", pads, k, ceil, make)
    if y is None:
        y = imp.emit(base, O.OnnxAvgPoolExcludePad(k, s, list(pads)), [x])
    imp.out(node, y)
