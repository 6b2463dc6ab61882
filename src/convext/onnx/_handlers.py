"""The per-operator ONNX handlers (other than convolution and pooling, in ``_conv``), the
import-time constant folding (Shape/Gather/Slice/Cast/ConstantOfShape/Mod) and the table
``_HANDLERS`` mapping each operator to its handler."""

from __future__ import annotations

import math

import numpy as np

from .. import layers as L
from . import _ops as O
from ._conv import _avgpool, _conv, _conv_transpose, _maxpool
from ._proto import _attr_value, _onnx, _reserve, _to_array, _Unsupported


def _unary(make, allowed=None, unknown_rank=None, since=None):
    """A one-input node as the layer ``make(attributes)``. With ``unknown_rank`` (the global
    pools: their layers pool (H, W) and would read a valid 3-D (N, C, L) input as one unbatched
    image), the input must be 4-D: another known rank is refused, and an unknown one gets
    ``unknown_rank(attributes)``, a layer that checks the rank when it runs. With ``since``,
    the opset that introduced the operator: a model importing an earlier one is refused (as
    onnxruntime refuses it: the operator does not exist there)."""

    def handler(imp, node, check_only):
        a = imp.attrs(node, allowed or {})
        early = since is not None and imp.too_early(f"the operator {node.op_type}", since)
        if early:
            raise _Unsupported(early)
        if check_only:
            return
        if node.input[0] in imp.consts:
            raise _Unsupported("a constant input (not folded for this operator)")
        build = make
        if unknown_rank is not None:
            shape = imp.shape(node.input[0])
            if shape is not None and len(shape) != 4:
                raise _Unsupported(
                    f"only 4-D input (N, C, H, W) is supported, got rank {len(shape)}"
                )
            build = make if shape is not None else unknown_rank
        imp.out(node, imp.emit(imp.node_base(node), build(a), [imp.inp(node, 0)]))

    return handler


def _batchnorm(imp, node, check_only):
    a = imp.attrs(
        node,
        {"epsilon": None, "momentum": None, "training_mode": (0,)},
        since={"training_mode": 14},
    )
    if check_only:
        return
    # the type parameters of X, scale, B, input_mean, input_var: T for all five before opset
    # 14; T (X, scale, B) and U (the statistics) in 14; from 15 X its own, T1 and T2
    if imp.opset < 14:
        imp.check_one_type(node)
    else:
        scale_b = ((0, 1, 2), "X, scale and B") if imp.opset == 14 else ((1, 2), "scale and B")
        imp.check_one_type(node, *scale_b)
        imp.check_one_type(node, (3, 4), "input_mean and input_var")
    scale, bias = imp.param(node, 1, "scale"), imp.param(node, 2, "B")
    mean, var = imp.param(node, 3, "mean"), imp.param(node, 4, "var")
    shape = imp.shape(node.input[0])
    if shape is not None and len(shape) != 4:
        raise _Unsupported(f"only 4-D input (N, C, H, W) is supported, got rank {len(shape)}")
    layer = L.BatchNorm2D(
        scale.shape[0],
        eps=float(a.get("epsilon", 1e-5)),
        momentum=float(str(np.float32(1.0 - a.get("momentum", 0.9)))),
        dtype=imp.dtype,
    )
    for key, v in (("weight", scale), ("bias", bias)):
        layer._params[key][...] = v
    layer._buffers["running_mean"][...] = mean
    layer._buffers["running_var"][...] = var
    base = imp.node_base(node, node.input[1])
    imp.out(node, imp.emit(base, layer, [imp.inp(node, 0)]))


def _clip(imp, node, check_only):
    imp.attrs(node, {})
    if check_only:
        return
    imp.check_one_type(node)
    lo = imp.const(node, 1, "min", optional=True)
    hi = imp.const(node, 2, "max", optional=True)
    lo = None if lo is None else float(lo)
    hi = None if hi is None else float(hi)
    layer = L.ReLU() if lo == 0 and hi is None else O.OnnxClip(lo, hi)
    imp.out(node, imp.emit(imp.node_base(node), layer, [imp.inp(node, 0)]))


# the layer of each softmax-like operator: from opset 13 along its axis, before it over all the
# axes from axis on (whatever the rank at run time)
_SOFTMAX_LAYERS = {
    "Softmax": (L.Softmax, O.OnnxFlatSoftmax),
    "LogSoftmax": (L.LogSoftmax, O.OnnxFlatLogSoftmax),
}


def _softmax(imp, node, check_only):
    a = imp.attrs(node, {"axis": None})
    if check_only:
        return
    axis = int(a.get("axis", -1 if imp.opset >= 13 else 1))
    shape = imp.shape(node.input[0])
    if shape is not None and not -len(shape) <= axis < len(shape):
        raise _Unsupported(f"axis {axis} is out of range for an input of rank {len(shape)}")
    along_axis, flat = _SOFTMAX_LAYERS[node.op_type]
    layer = along_axis(axis) if imp.opset >= 13 else flat(axis)
    imp.out(node, imp.emit(imp.node_base(node), layer, [imp.inp(node, 0)]))


def _reserve_fold(imp, shape, dtype):
    """Count a constant about to be folded (computed from other constants at import time)
    against max_bytes: a model small on disk must not fold into gigabytes."""
    _reserve(imp.budget, shape, dtype, f"the folded constant of shape {tuple(shape)}")


def _reserve_copy(imp, v):
    """A reshape of a constant copies it where it is not contiguous (a folded Transpose)."""
    if not v.flags.c_contiguous:
        _reserve_fold(imp, v.shape, v.dtype)


def _int_div(a, b):
    """ONNX integer Div: the quotient truncated toward zero (-7 / 2 = -3, as C and
    onnxruntime), not numpy's floor division; a zero divisor is refused (undefined)."""
    if (np.asarray(b) == 0).any():
        raise _Unsupported("integer division by zero in a folded constant")
    q = a // b
    inexact = (q * b != a) & ((a < 0) != (b < 0))
    return np.where(inexact, q + 1, q).astype(q.dtype)


def _numbers(v, what):
    """A constant about to be folded by arithmetic, as numbers. A Shape of an input with
    symbolic sizes folds to an object array of Python ints and the symbols' names: numpy's
    arithmetic on it grows the ints without bound (Mul squaring one 26 times took minutes) and
    repeats the names into gigabytes of text; its ints become int64 (wrapping as onnxruntime's),
    a name is _Unsupported."""
    if v.dtype != object:
        return v
    symbols = [e for e in v.reshape(-1).tolist() if not isinstance(e, int)]
    if symbols:
        raise _Unsupported(f"{what} depends on the symbolic dimension {symbols[0]!r:.60}")
    return v.astype(np.int64)


_FOLD = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply}
_BINARY = {"Add": L.Add, "Sub": L.Sub, "Mul": L.Mul, "Div": L.Div}


def _binary(imp, node, check_only):
    imp.attrs(node, {})
    if check_only:
        return
    imp.check_one_type(node)
    if all(i in imp.consts for i in node.input):
        a, b = (_numbers(imp.consts[i], f"input {i!r:.100}") for i in node.input)
        _reserve_fold(imp, np.broadcast_shapes(a.shape, b.shape), np.result_type(a, b))
        if node.op_type == "Div":
            if a.dtype.kind in "iu" and b.dtype.kind in "iu":
                imp.consts[node.output[0]] = _int_div(a, b)
            else:
                imp.consts[node.output[0]] = a / b
        else:
            imp.consts[node.output[0]] = _FOLD[node.op_type](a, b)
        return
    ins = [imp.inp(node, 0), imp.inp(node, 1)]
    imp.out(node, imp.emit(imp.node_base(node), _BINARY[node.op_type](), ins))


def _concat(imp, node, check_only):
    a = imp.attrs(node, {"axis": None})
    if check_only:
        return
    imp.check_one_type(node)
    axis = int(a["axis"]) if "axis" in a else 0
    if all(i in imp.consts for i in node.input):
        parts = [imp.consts[i] for i in node.input]
        _reserve_fold(imp, (sum(v.size for v in parts),), np.result_type(*parts))
        imp.consts[node.output[0]] = np.concatenate(parts, axis)
        return
    ins = [imp.inp(node, k) for k in range(len(node.input))]
    imp.out(node, imp.emit(imp.node_base(node), L.Cat(axis), ins))


def _flatten(imp, node, check_only):
    a = imp.attrs(node, {"axis": None})
    if check_only:
        return
    axis = int(a.get("axis", 1))
    if node.input[0] in imp.consts:
        v = imp.consts[node.input[0]]
        _reserve_copy(imp, v)
        imp.consts[node.output[0]] = v.reshape(math.prod(v.shape[:axis]), -1)
        return
    imp.out(node, imp.emit(imp.node_base(node), O.OnnxFlatten(axis), [imp.inp(node, 0)]))


def _gemm(imp, node, check_only):
    a = imp.attrs(node, {"alpha": None, "beta": None, "transA": (0,), "transB": (0, 1)})
    if check_only:
        return
    imp.check_one_type(node)
    w = imp.param(node, 1, "B (the weight)")
    if w.ndim != 2:
        raise _Unsupported(f"B must be 2-D, got shape {w.shape}")
    w = w if a.get("transB", 0) else w.T
    alpha, beta = float(a.get("alpha", 1.0)), float(a.get("beta", 1.0))
    c = imp.param(node, 2, "C (the bias)", optional=True)
    if c is not None:
        if c.size not in (1, w.shape[0]) or (c.ndim == 2 and c.shape[0] != 1) or c.ndim > 2:
            raise _Unsupported(f"C of shape {c.shape}: only a bias of shape (N,) or (1, N)")
        c = np.broadcast_to(c.reshape(-1), (w.shape[0],)) * beta
    layer = L.Dense(w.shape[1], w.shape[0], bias=c is not None, dtype=imp.dtype)
    layer.weight[...] = w * alpha if alpha != 1 else w
    if c is not None:
        layer.bias[...] = c
    imp.out(node, imp.emit(imp.node_base(node, node.input[1]), layer, [imp.inp(node, 0)]))


def _matmul(imp, node, check_only):
    imp.attrs(node, {})
    if check_only:
        return
    imp.check_one_type(node)
    w = imp.param(node, 1, "B (the weight)")
    if w.ndim != 2:
        raise _Unsupported(f"MatMul is supported with a constant 2-D B, got shape {w.shape}")
    layer = L.Dense(w.shape[0], w.shape[1], bias=False, dtype=imp.dtype)
    layer.weight[...] = w.T
    imp.out(node, imp.emit(imp.node_base(node, node.input[1]), layer, [imp.inp(node, 0)]))


def _reshape(imp, node, check_only):
    a = imp.attrs(node, {"allowzero": (0,)}, since={"allowzero": 14})
    if check_only:
        return
    target = imp.const(node, 1, "the shape")
    if node.input[0] in imp.consts:
        src = imp.consts[node.input[0]]
        _reserve_copy(imp, src)
        # ONNX's rule (allowzero 0): a 0 copies the input's dimension at its index, which NumPy
        # would take as a length 0; -1 is the one inferred length
        dims = [int(v) for v in target.reshape(-1)]
        dims = [src.shape[k] if v == 0 and k < src.ndim else v for k, v in enumerate(dims)]
        try:
            imp.consts[node.output[0]] = src.reshape(dims)
        except ValueError as e:
            raise _Unsupported(
                f"the target shape {target.reshape(-1).tolist()} does not fit a constant of "
                f"shape {list(src.shape)}"
            ) from e
        return
    in_shape = imp.shape(node.input[0]) or []
    shape = []
    for k, v in enumerate(target.reshape(-1).tolist()):
        if isinstance(v, str):
            if k < len(in_shape) and in_shape[k] == v:
                v = 0
            else:
                raise _Unsupported(
                    f"the target shape {target.tolist()} depends on a dimension "
                    f"that is not known at import time"
                )
        shape.append(int(v))
    del a
    imp.out(node, imp.emit(imp.node_base(node), L.Reshape(shape), [imp.inp(node, 0)]))


def _axes(imp, node):
    if imp.opset >= 13:
        v = imp.const(node, 1, "axes", optional=True)
        return None if v is None else [int(e) for e in v.reshape(-1)]
    return None


def _squeeze(imp, node, check_only):
    a = imp.attrs(node, {"axes": None}, until={"axes": 13})
    if check_only:
        return
    axes = a.get("axes") if imp.opset < 13 else _axes(imp, node)
    if node.op_type == "Squeeze" and axes is not None and len(axes) == 0:
        # the spec leaves it open: onnxruntime squeezes every dimension of size 1, onnx's
        # reference implementation none (and this function's two paths differed)
        raise _Unsupported("Squeeze with an empty axes list (undefined by the spec)")
    if node.input[0] in imp.consts:
        v = imp.consts[node.input[0]]
        if node.op_type == "Squeeze":
            imp.consts[node.output[0]] = np.squeeze(v, tuple(axes) if axes else None)
        else:
            imp.consts[node.output[0]] = np.expand_dims(v, tuple(axes))
        return
    if axes is None:
        raise _Unsupported("Squeeze without axes (data-dependent) is not supported")
    cls = O.OnnxSqueeze if node.op_type == "Squeeze" else O.OnnxUnsqueeze
    imp.out(node, imp.emit(imp.node_base(node), cls(list(axes)), [imp.inp(node, 0)]))


def _transpose(imp, node, check_only):
    a = imp.attrs(node, {"perm": None})
    if check_only:
        return
    if node.input[0] in imp.consts:
        imp.consts[node.output[0]] = np.transpose(imp.consts[node.input[0]], a.get("perm"))
        return
    perm = a.get("perm")
    if perm is None:
        shape = imp.shape(node.input[0])
        if shape is None:
            raise _Unsupported("Transpose without perm of an input of unknown rank")
        perm = list(range(len(shape)))[::-1]
    imp.out(node, imp.emit(imp.node_base(node), L.Transpose(list(perm)), [imp.inp(node, 0)]))


def _pad(imp, node, check_only):
    a = imp.attrs(node, {"mode": ("constant", "reflect", "edge")})
    if check_only:
        return
    imp.check_one_type(node, (0, 2), "data and constant_value")
    pads = [int(v) for v in imp.const(node, 1, "pads").reshape(-1)]
    value = imp.const(node, 2, "constant_value", optional=True)
    if len(node.input) > 3 and node.input[3]:
        raise _Unsupported("the axes input is not supported")
    if any(p < 0 for p in pads) or len(pads) % 2:
        raise _Unsupported(f"pads {pads}: only non-negative padding is supported")
    n = len(pads) // 2
    per_axis = [(pads[i], pads[i + n]) for i in range(n)]
    while per_axis and per_axis[0] == (0, 0):
        per_axis.pop(0)
    flat = [v for pair in per_axis for v in pair]
    layer = L.Pad(
        flat,
        a.get("mode", "constant"),
        0.0 if value is None else float(np.asarray(value).reshape(-1)[0]),
    )
    imp.out(node, imp.emit(imp.node_base(node), layer, [imp.inp(node, 0)]))


_RESIZE_ATTRS = {
    "mode": ("nearest", "linear"),
    "coordinate_transformation_mode": None,
    "nearest_mode": None,
    "cubic_coeff_a": None,
    "exclude_outside": (0,),
    "extrapolation_value": None,
    "antialias": (0,),
    "keep_aspect_ratio_policy": ("stretch",),
}
_RESIZE_SINCE = {"antialias": 18, "keep_aspect_ratio_policy": 18}


def _upsample(imp, node, check_only):
    raise _Unsupported(
        "Upsample is deprecated since opset 10 and invalid in opsets 11 to 21 "
        "(onnx's checker and onnxruntime refuse it); torch's nn.Upsample "
        "exports as Resize, which is supported"
    )


def _resized_shape(imp, node, scales):
    """The output shape of a Resize by ``scales`` (H, W) as the run computes it (float32, as
    onnxruntime: O._resized_length). Where onnx's inference gave another size for an axis of
    known length (its product in float64: 6 * 5/3 rows are 9 there, 10 here), the tensors
    after it have inferred shapes that are not the run's either: they are dropped
    (_Importer.unsure_shapes). An axis inference left unknown gets the run's length."""
    out, shape, inferred = node.output[0], imp.shape(node.input[0]), imp.shape(node.output[0])
    if shape is None or inferred is None or len(shape) != 4 or len(inferred) != 4:
        return
    run, wrong = list(inferred), False
    for k, s in zip((2, 3), scales, strict=True):
        if isinstance(shape[k], int):
            run[k] = O._resized_length(shape[k], s, None)
            # (an axis inference left unknown says nothing wrong about later shapes)
            wrong = wrong or (isinstance(inferred[k], int) and inferred[k] != run[k])
    imp.shapes[out] = run
    if wrong:
        imp.unsure_shapes.add(out)


def _resize(imp, node, check_only):
    a = imp.attrs(node, _RESIZE_ATTRS, _RESIZE_SINCE)
    if check_only:
        return
    mode = a.get("mode", "nearest")
    ctm = a.get("coordinate_transformation_mode", "half_pixel")
    if mode == "nearest":
        if ctm != "asymmetric" or a.get("nearest_mode", "round_prefer_floor") != "floor":
            raise _Unsupported(
                f"nearest mode with coordinate_transformation_mode={ctm!r}, "
                f"nearest_mode={a.get('nearest_mode', 'round_prefer_floor')!r}: "
                f"only 'asymmetric' with 'floor' (torch's nearest)"
            )
        align = False
    else:
        if ctm not in ("half_pixel", "pytorch_half_pixel", "align_corners"):
            raise _Unsupported(
                f"linear mode with coordinate_transformation_mode={ctm!r}: only "
                f"'half_pixel', 'pytorch_half_pixel' or 'align_corners'"
            )
        align = ctm == "align_corners"
    scales = imp.const(node, 2, "scales", optional=True)
    sizes = imp.const(node, 3, "sizes", optional=True)
    if scales is not None and scales.size == 0:
        scales = None
    if (scales is None) == (sizes is None or sizes.size == 0):
        raise _Unsupported("exactly one of scales and sizes must be given (as constants)")
    if scales is not None:
        sc = [float(v) for v in scales.reshape(-1)]
        if len(sc) != 4 or sc[:2] != [1.0, 1.0]:
            raise _Unsupported(f"scales {sc}: only the (H, W) planes of 4-D input are resized")
        layer = O.OnnxResize(
            scale_factor=sc[2:],
            mode="nearest" if mode == "nearest" else "bilinear",
            align_corners=align,
            pytorch_half_pixel=ctm == "pytorch_half_pixel",
        )
        _resized_shape(imp, node, sc[2:])
    else:
        sz = sizes.reshape(-1).tolist()
        shape = imp.shape(node.input[0]) or [None, None]
        if (
            len(sz) != 4
            or not all(isinstance(v, int) for v in sz[2:])
            or any(
                isinstance(n, int) and isinstance(m, int) and n != m
                for n, m in zip(shape[:2], sz[:2], strict=True)
            )
        ):
            raise _Unsupported(f"sizes {sz}: only the (H, W) planes of 4-D input are resized")
        layer = O.OnnxResize(
            size=sz[2:],
            mode="nearest" if mode == "nearest" else "bilinear",
            align_corners=align,
            pytorch_half_pixel=ctm == "pytorch_half_pixel",
        )
    imp.out(node, imp.emit(imp.node_base(node), layer, [imp.inp(node, 0)]))


def _identity(imp, node, check_only):
    imp.attrs(node, {})
    if check_only:
        return
    src = node.input[0]
    if src in imp.consts:
        imp.consts[node.output[0]] = imp.consts[src]
    else:
        imp.out(node, imp.inp(node, 0))


def _dropout(imp, node, check_only):
    imp.attrs(node, {"seed": None, "ratio": None}, since={"seed": 12}, until={"ratio": 12})
    if check_only:
        return
    if len(node.input) > 2 and node.input[2]:
        # training_mode (opset 12 on): true makes the node a random dropout, which an imported
        # graph (an inference graph) does not compute; only a constant false is the identity
        mode = imp.const(node, 2, "training_mode")
        if np.asarray(mode).size != 1 or bool(np.asarray(mode).reshape(-1)[0]):
            raise _Unsupported("training_mode true (a random dropout at inference)")
    ratio = imp.const(node, 1, "ratio", optional=True)
    p = (
        float(ratio)
        if ratio is not None
        else float(next((_attr_value(x) for x in node.attribute if x.name == "ratio"), 0.5))
    )
    imp.out(node, imp.emit(imp.node_base(node), L.Dropout(p), [imp.inp(node, 0)]))


def _constant(imp, node, check_only):
    a = imp.attrs(
        node,
        {
            "value": None,
            "value_float": None,
            "value_floats": None,
            "value_int": None,
            "value_ints": None,
        },
    )
    if check_only:
        return
    if "value" in a:
        imp.consts[node.output[0]] = _to_array(a["value"], imp.folder, imp.budget)
    else:
        ((k, v),) = a.items()
        imp.consts[node.output[0]] = np.asarray(v, np.float32 if "float" in k else np.int64)


def _shape(imp, node, check_only):
    a = imp.attrs(node, {"start": None, "end": None}, since={"start": 15, "end": 15})
    if check_only:
        return
    shape = imp.shape(node.input[0])
    if node.input[0] in imp.consts:
        shape = list(imp.consts[node.input[0]].shape)
    if shape is None or any(d is None for d in shape):
        raise _Unsupported("the shape of its input is not known at import time")
    if node.input[0] not in imp.consts and any(isinstance(d, int) for d in shape):
        imp.size_dependent.append(f"Shape of {node.input[0]!r:.100} folded to {shape}")
    shape = shape[a.get("start", 0) : a.get("end", len(shape))]
    dtype = np.int64 if all(isinstance(d, int) for d in shape) else object
    imp.consts[node.output[0]] = np.array(shape, dtype=dtype)


def _fold_only(fn, allowed, since=None):
    def handler(imp, node, check_only):
        a = imp.attrs(node, allowed, since)
        if check_only:
            return
        if not all(i in imp.consts for i in node.input if i):
            raise _Unsupported(
                "supported only where it folds to a constant at import time "
                "(its inputs are computed at run time)"
            )
        imp.consts[node.output[0]] = fn(imp, node, a)

    return handler


def _gather(imp, node, a):
    data, idx = imp.consts[node.input[0]], imp.consts[node.input[1]]
    axis = int(a.get("axis", 0))
    if not -data.ndim <= axis < data.ndim:
        raise ValueError(f"axis {axis} is out of range for data of rank {data.ndim}")
    axis %= data.ndim
    # the output's own shape (an empty gather axis does not make the other axes empty)
    _reserve_fold(imp, data.shape[:axis] + idx.shape + data.shape[axis + 1 :], data.dtype)
    return np.asarray(np.take(data, idx.astype(np.int64), axis=axis), dtype=data.dtype)


def _slice(imp, node, a):
    imp.check_one_type(node, (1, 2, 3, 4), "starts, ends, axes and steps")
    data = imp.consts[node.input[0]]
    starts = imp.const(node, 1).reshape(-1)
    ends = imp.const(node, 2).reshape(-1)
    axes = imp.const(node, 3, optional=True)
    steps = imp.const(node, 4, optional=True)
    axes = range(len(starts)) if axes is None else axes.reshape(-1)
    steps = [1] * len(starts) if steps is None else steps.reshape(-1)
    sl = [slice(None)] * data.ndim
    for s, e, ax, st in zip(starts, ends, axes, steps, strict=True):
        ax = int(ax)
        sl[ax] = _slice_bounds(int(s), int(e), int(st), data.shape[ax])
    return data[tuple(sl)]


def _slice_bounds(start, end, step, dim):
    """ONNX Slice's bounds on an axis of ``dim`` elements as a Python slice: a negative start or
    end counts from the end (+dim), then both are clamped, to [0, dim] for a positive step and
    to [0, dim - 1] (start) and [-1, dim - 1] (end) for a negative one, where end -1 means
    'through element 0' (not Python's 'the last element')."""
    if step == 0:
        raise _Unsupported("a step of 0")
    start, end = start + dim if start < 0 else start, end + dim if end < 0 else end
    if step > 0:
        return slice(min(max(start, 0), dim), min(max(end, 0), dim), step)
    start, end = min(max(start, 0), dim - 1), min(max(end, -1), dim - 1)
    return slice(start, None if end < 0 else end, step)


def _cast(imp, node, a):
    onnx = _onnx()
    v = _numbers(imp.consts[node.input[0]], "its input")
    dtype = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(a["to"]))
    if dtype.kind not in "fiub":
        raise _Unsupported(f"Cast to {dtype} is not supported (only numbers fold)")
    _reserve_fold(imp, v.shape, dtype)
    return v.astype(dtype)


def _mod(imp, node, a):
    """ONNX Mod of two constants: fmod=0 (integers only in these opsets) takes the divisor's
    sign (numpy's mod), fmod=1 the dividend's (C's fmod, numpy's fmod); an integer zero
    divisor is refused, as onnxruntime refuses it."""
    imp.check_one_type(node)
    fmod = int(a.get("fmod", 0))
    if fmod not in (0, 1):
        raise ValueError(f"fmod must be 0 or 1, got {fmod}")
    x, y = (_numbers(imp.consts[i], f"input {i!r:.100}") for i in node.input)
    integers = x.dtype.kind in "iu" and y.dtype.kind in "iu"
    if not integers and not fmod:
        raise ValueError("fmod must be 1 for floating-point inputs (the spec before opset 28)")
    if integers and (y == 0).any():
        raise _Unsupported("integer modulo by zero in a folded constant")
    _reserve_fold(imp, np.broadcast_shapes(x.shape, y.shape), np.result_type(x, y))
    return np.fmod(x, y) if fmod else np.mod(x, y)


def _const_of_shape(imp, node, a):
    shape = [int(v) for v in imp.consts[node.input[0]].reshape(-1)]
    if math.prod(shape) > 1 << 24:
        raise _Unsupported(f"ConstantOfShape of {shape} is too large to fold")
    value = a.get("value")
    v = np.zeros(1, np.float32) if value is None else _to_array(value, imp.folder, imp.budget)
    _reserve_fold(imp, shape, v.dtype)
    return np.full(shape, v.reshape(-1)[0], v.dtype)


_HANDLERS = {
    "Conv": _conv,
    "ConvTranspose": _conv_transpose,
    "MaxPool": _maxpool,
    "AveragePool": _avgpool,
    "GlobalAveragePool": _unary(
        lambda a: L.GlobalAvgPool2D(), unknown_rank=lambda a: O.OnnxGlobalAvgPool()
    ),
    "GlobalMaxPool": _unary(
        lambda a: O.OnnxGlobalMaxPool(), unknown_rank=lambda a: O.OnnxGlobalMaxPool()
    ),
    "BatchNormalization": _batchnorm,
    "Relu": _unary(lambda a: L.ReLU()),
    "LeakyRelu": _unary(lambda a: L.LeakyReLU(float(a.get("alpha", 0.01))), {"alpha": None}),
    "Sigmoid": _unary(lambda a: L.Sigmoid()),
    "Tanh": _unary(lambda a: L.Tanh()),
    "HardSigmoid": _unary(
        lambda a: O.OnnxHardSigmoid(a.get("alpha", 0.2), a.get("beta", 0.5)),
        {"alpha": None, "beta": None},
    ),
    "HardSwish": _unary(lambda a: O.OnnxHardSwish(), since=14),
    "Clip": _clip,
    "Softmax": _softmax,
    "LogSoftmax": _softmax,
    "Add": _binary,
    "Sub": _binary,
    "Mul": _binary,
    "Div": _binary,
    "Concat": _concat,
    "Flatten": _flatten,
    "Gemm": _gemm,
    "MatMul": _matmul,
    "Reshape": _reshape,
    "Squeeze": _squeeze,
    "Unsqueeze": _squeeze,
    "Transpose": _transpose,
    "Pad": _pad,
    "Resize": _resize,
    "Upsample": _upsample,
    "Identity": _identity,
    "Dropout": _dropout,
    "Constant": _constant,
    "Shape": _shape,
    "Gather": _fold_only(_gather, {"axis": None}),
    "Slice": _fold_only(_slice, {}),
    "Cast": _fold_only(_cast, {"to": None, "saturate": None}, since={"saturate": 19}),
    "Mod": _fold_only(_mod, {"fmod": None}),
    "ConstantOfShape": _fold_only(_const_of_shape, {"value": None}),
}
