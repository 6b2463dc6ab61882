"""The ONNX importer: an untrusted ``.onnx`` file -> ``convext.layers.Graph``.

One pass over the nodes collects every problem (unsupported operator, attribute or input) and
reports them together in one ValueError before any layer runs. Constants (initializers,
Constant nodes and the Shape/Gather/Unsqueeze/Concat... chains that compute a Reshape's target)
are folded at import time; the batch size may stay symbolic (a target dimension equal to the
input's symbolic size becomes Reshape's 0, "copy").
"""

from __future__ import annotations

import math
import os
import re

import numpy as np
from numpy.typing import DTypeLike

from .. import layers as L
from ..layers.graph import MAX_GRAPH_NODES, Graph
from . import _ops as O

__all__ = ["load", "SUPPORTED_OPS", "DEFAULT_MAX_BYTES"]

DEFAULT_MAX_BYTES = 2**31 - 1  # protobuf's own limit for one message (2 GiB)
MIN_OPSET, MAX_OPSET = 11, 21
MAX_TENSOR_ELEMENTS = 2**34  # one initializer (64 GiB of float32), checked before reading


class _Unsupported(Exception):
    """One problem with one node (collected, then reported together)."""


def _onnx():
    try:
        import onnx
    except ImportError:  # pragma: no cover - the extra is installed in the test environment
        raise ImportError(
            "convext.onnx.load needs the onnx package to parse the file: "
            "pip install 'convext[onnx]' (running the imported graph does not)"
        ) from None
    return onnx


# -- reading the file ----------------------------------------------------------------------
def _read_source(source, max_bytes):
    """(bytes, folder of the model or None)."""
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes <= 0:
        raise TypeError(f"load: max_bytes must be a positive int, got {max_bytes!r}")
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        folder = None
    elif isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        size = os.stat(path).st_size  # FileNotFoundError as such
        if size > max_bytes:
            raise ValueError(
                f"cannot load an ONNX model from {path!r}: the file has {size} "
                f"bytes, more than max_bytes={max_bytes}"
            )
        with open(path, "rb") as f:
            data = f.read(max_bytes + 1)
        folder = os.path.dirname(os.path.abspath(path))
    else:
        raise TypeError(
            f"load: expected a path or the bytes of an ONNX model, got {type(source).__name__}"
        )
    if len(data) > max_bytes:
        raise ValueError(
            f"cannot load an ONNX model: {len(data)} bytes, more than max_bytes={max_bytes}"
        )
    return data, folder


def _parse(data):
    onnx = _onnx()
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except Exception as e:  # google.protobuf's DecodeError, RuntimeError of the C++ parser...
        raise ValueError(
            f"cannot load an ONNX model: malformed protobuf ({type(e).__name__}: {str(e)[:200]})"
        ) from None
    if not model.HasField("graph") or model.ir_version <= 0:
        raise ValueError(
            "cannot load an ONNX model: the data is not an ONNX model (no graph or IR version)"
        )
    _check_text(model)
    return model


def _check_text(model):
    """Every name the importer reads is a str (protobuf hands over invalid UTF-8 as bytes)."""
    g = model.graph
    texts = [g.name] + [o.domain for o in model.opset_import]
    texts += [v.name for v in (*g.input, *g.output, *g.value_info)]
    texts += [t.name for t in g.initializer]
    for node in g.node:
        texts += [node.name, node.op_type, node.domain, *node.input, *node.output]
        texts += [a.name for a in node.attribute]
    for t in texts:
        if not isinstance(t, str):
            raise ValueError(
                f"cannot load an ONNX model: malformed protobuf (the name "
                f"{t!r:.80} is not valid UTF-8)"
            )


def _external_path(folder, location):
    """The real path of an external-data file: relative, inside the model's own folder (no
    '..', no absolute path, no symlink leading out)."""
    if folder is None:
        raise ValueError(
            "the model refers to external data but was given as bytes: load it from its path"
        )
    if (
        not isinstance(location, str)
        or not location
        or "\0" in location
        or os.path.isabs(location)
        or location.startswith(("/", "\\"))
        or re.match(r"^[A-Za-z]:", location)
        or ".." in re.split(r"[\\/]", location)
    ):
        raise ValueError(
            f"external data location {location!r:.200} is not a plain relative "
            f"path inside the model's folder"
        )
    root = os.path.realpath(folder)
    real = os.path.realpath(os.path.join(root, location))
    if os.path.commonpath([root, real]) != root:
        raise ValueError(
            f"external data location {location!r:.200} leads out of the model's folder"
        )
    if not os.path.isfile(real):
        raise ValueError(f"external data file {location!r:.200} does not exist")
    return real


def _to_array(t, folder, budget):
    """A TensorProto as a numpy array, sizes checked before anything is read; external data
    only from the model's folder. ``budget``: a one-element list of bytes still allowed."""
    onnx = _onnx()
    from onnx import numpy_helper

    dims = [int(d) for d in t.dims]
    if any(d < 0 for d in dims):
        raise ValueError(f"tensor {t.name!r:.100} has a negative dimension {dims}")
    n = math.prod(dims)
    if n > MAX_TENSOR_ELEMENTS:
        raise ValueError(f"tensor {t.name!r:.100} declares {n} elements")
    try:
        dtype = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(t.data_type))
    except Exception:
        raise ValueError(
            f"tensor {t.name!r:.100} has the unsupported data type {t.data_type}"
        ) from None
    if dtype.kind not in "fiub" or dtype.itemsize > 8:
        raise ValueError(f"tensor {t.name!r:.100} has the unsupported data type {dtype}")
    nbytes = n * dtype.itemsize
    if nbytes > budget[0]:
        raise ValueError(
            f"tensor {t.name!r:.100} needs {nbytes} bytes, more than the max_bytes left"
        )
    budget[0] -= nbytes
    if t.data_location == onnx.TensorProto.EXTERNAL:
        info = {e.key: e.value for e in t.external_data}
        path = _external_path(folder, info.get("location"))
        try:
            offset = int(info.get("offset", 0))
            length = int(info.get("length", nbytes))
        except ValueError:
            raise ValueError(
                f"tensor {t.name!r:.100}: external data offset/length are not integers"
            ) from None
        if offset < 0 or length != nbytes:
            raise ValueError(
                f"tensor {t.name!r:.100}: external data length {length} "
                f"(offset {offset}); {nbytes} bytes expected"
            )
        if offset + nbytes > os.path.getsize(path):
            raise ValueError(
                f"tensor {t.name!r:.100}: external data past the end of "
                f"{info.get('location')!r:.100}"
            )
        with open(path, "rb") as f:
            f.seek(offset)
            raw = f.read(nbytes)
        return np.frombuffer(raw, dtype.newbyteorder("<")).astype(dtype).reshape(dims)
    if t.HasField("raw_data") and len(t.raw_data) != nbytes:
        raise ValueError(
            f"tensor {t.name!r:.100}: {len(t.raw_data)} bytes of data for shape {dims} of {dtype}"
        )
    try:
        a = numpy_helper.to_array(t)
    except Exception as e:
        raise ValueError(
            f"tensor {t.name!r:.100} cannot be read ({type(e).__name__}: {str(e)[:100]})"
        ) from None
    if a.shape != tuple(dims):
        raise ValueError(f"tensor {t.name!r:.100} holds {a.size} values for shape {dims}")
    return a


# -- the importer --------------------------------------------------------------------------
_SAFE = re.compile(r"[^A-Za-z0-9_]+")


def _attr_value(a):
    onnx = _onnx()
    v = onnx.helper.get_attribute_value(a)
    if a.type == onnx.AttributeProto.FLOAT:
        # float attributes are float32: take the shortest decimal that rounds to it (the value
        # the exporter was given, e.g. BatchNorm's eps 1e-5, not 9.99999974738e-06)
        return float(str(np.float32(v)))
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    if isinstance(v, list):
        return [e.decode("utf-8", "replace") if isinstance(e, bytes) else e for e in v]
    return v


class _Importer:
    def __init__(self, model, folder, dtype, max_bytes):
        self.model, self.folder, self.dtype = model, folder, np.dtype(dtype)
        self.budget = [max_bytes]
        self.nodes = []  # (name, layer, [graph tensor names])
        self.names = set()
        self.tensor = {}  # ONNX tensor name -> graph tensor name
        self.consts = {}  # ONNX tensor name -> numpy array (int entries may be str symbols)
        self.const_nodes = {}  # ONNX tensor name -> graph name of its Constant node
        self.shapes = {}  # ONNX tensor name -> [int | str | None]
        self.problems = []
        self.broken = set()
        self.opset = None

    # -- names and nodes ---------------------------------------------------------------------
    def unique(self, base):
        base = _SAFE.sub("_", base).strip("_")[:100] or "node"
        name, k = base, 2
        while name in self.names:
            name, k = f"{base}_{k}", k + 1
        self.names.add(name)
        return name

    def emit(self, base, layer, inputs):
        name = self.unique(base)
        self.nodes.append((name, layer, list(inputs)))
        return name

    def node_base(self, node, weight=None):
        if weight and weight.endswith(".weight"):
            return weight[: -len(".weight")]
        parts = [p for p in node.name.split("/") if p]
        if len(parts) >= 2 and node.name.startswith("/"):
            # torch's exporter names a node by its module scopes and the operator:
            # "/features/features.1/conv/conv.0/conv.0.2/Clip" is module features.1.conv.0.2
            path, prev = [], None
            for comp in parts[:-1]:
                if prev is not None and comp.startswith(prev + "."):
                    path.append(comp[len(prev) + 1 :])
                else:
                    path.append(comp)
                prev = comp
            return ".".join(path)
        return node.name.strip("/") or node.op_type.lower()

    # -- inputs ------------------------------------------------------------------------------
    def is_const(self, name):
        return name in self.consts

    def const(self, node, k, what=None, optional=False):
        if k >= len(node.input) or not node.input[k]:
            if optional:
                return None
            raise _Unsupported(f"input {k} ({what or 'a constant'}) is missing")
        name = node.input[k]
        if name not in self.consts:
            raise _Unsupported(
                f"input {k} ({what or name!r}) must be a constant (an "
                f"initializer or folded at import); it is computed at run time"
            )
        return self.consts[name]

    def float_const(self, value, what):
        if value.dtype == object:
            raise _Unsupported(f"{what} depends on a symbolic dimension")
        return np.asarray(value, dtype=self.dtype)

    def inp(self, node, k):
        """The graph tensor of input k (a Constant node for a constant)."""
        name = node.input[k]
        if name in self.tensor:
            return self.tensor[name]
        if name in self.consts:
            if name not in self.const_nodes:
                v = self.float_const(self.consts[name], f"constant {name!r}")
                self.const_nodes[name] = self.emit(
                    "const_" + name, L.Constant(list(v.shape), self.dtype, value=v), []
                )
            return self.const_nodes[name]
        raise _Unsupported(f"input {name!r} is unknown")

    def shape(self, name):
        return self.shapes.get(name)

    def out(self, node, graph_name):
        self.tensor[node.output[0]] = graph_name

    def attrs(self, node, allowed):
        """The node's attributes as a dict; an attribute not in ``allowed`` (name -> None: any
        value, or a predicate on the value, or a tuple of accepted values) is a problem."""
        out, bad = {}, []
        for a in node.attribute:
            v = _attr_value(a)
            check = allowed.get(a.name, False)
            if check is False:
                bad.append(f"attribute {a.name}={v!r:.60} is not supported")
            elif isinstance(check, tuple) and v not in check:
                bad.append(
                    f"attribute {a.name}={v!r:.60} is not supported (only "
                    f"{', '.join(map(repr, check))})"
                )
            elif callable(check) and not check(v):
                bad.append(f"attribute {a.name}={v!r:.60} is not supported")
            out[a.name] = v
        if bad:
            raise _Unsupported("; ".join(bad))
        return out

    # -- the pass ----------------------------------------------------------------------------
    def run(self):
        onnx = _onnx()
        m, g = self.model, self.model.graph
        for imp in m.opset_import:
            if imp.domain in ("", "ai.onnx"):
                self.opset = imp.version
        if self.opset is None or not MIN_OPSET <= self.opset <= MAX_OPSET:
            self.problems.append(
                f"the model uses opset {self.opset} of the default domain; "
                f"supported: {MIN_OPSET} to {MAX_OPSET}"
            )
            self.opset = self.opset or MAX_OPSET
        if len(g.node) > MAX_GRAPH_NODES:
            raise ValueError(f"the model has {len(g.node)} nodes, more than {MAX_GRAPH_NODES}")
        for t in g.initializer:
            self.consts[t.name] = _to_array(t, self.folder, self.budget)
        if len(g.sparse_initializer):
            self.problems.append("sparse initializers are not supported")
        try:
            inferred = onnx.shape_inference.infer_shapes(m, strict_mode=False)
            infos = (
                list(inferred.graph.value_info)
                + list(inferred.graph.input)
                + list(inferred.graph.output)
            )
        except Exception:
            infos = list(g.input) + list(g.output) + list(g.value_info)
        for vi in infos:
            tt = vi.type.tensor_type
            if tt.HasField("shape"):
                self.shapes[vi.name] = [
                    d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
                    for d in tt.shape.dim
                ]
        inputs = []
        for vi in g.input:
            if vi.name in self.consts:
                continue
            elem = vi.type.tensor_type.elem_type
            if elem not in (
                onnx.TensorProto.FLOAT,
                onnx.TensorProto.DOUBLE,
                onnx.TensorProto.FLOAT16,
            ):
                self.problems.append(
                    f"graph input {vi.name!r}: only float inputs are supported (elem_type {elem})"
                )
            name = self.unique(vi.name)
            self.tensor[vi.name] = name
            inputs.append((name, vi.name))
        consumers = {}
        for node in g.node:
            for i in node.input:
                consumers[i] = consumers.get(i, 0) + 1
        for o in g.output:
            consumers[o.name] = consumers.get(o.name, 0) + 1
        for k, node in enumerate(g.node):
            domain = node.domain + "." if node.domain else ""
            label = f"node {k} {node.name or '(unnamed)'!r:.100} ({domain}{node.op_type})"
            handler = _HANDLERS.get(node.op_type) if node.domain in ("", "ai.onnx") else None
            if handler is None:
                self.problems.append(f"{label}: operator {node.op_type!r} is not supported")
                self.broken.update(node.output)
                continue
            extra = [o for o in node.output[1:] if o and consumers.get(o)]
            try:
                if not node.output or not node.output[0]:
                    raise _Unsupported("it has no (first) output")
                if node.op_type != "Constant" and (not node.input or not node.input[0]):
                    raise _Unsupported("its first input is missing")
                if extra:
                    raise _Unsupported(
                        f"its output(s) {extra} beyond the first are used; only "
                        f"the first output is supported"
                    )
                if any(i in self.broken for i in node.input if i):
                    # a consequence of an earlier problem; still check the attributes
                    handler(self, node, check_only=True)
                    self.broken.update(node.output)
                    continue
                handler(self, node, check_only=False)
            except _Unsupported as e:
                self.problems.append(f"{label}: {e}")
                self.broken.update(node.output)
            except (ValueError, TypeError) as e:
                self.problems.append(f"{label}: {e}")
                self.broken.update(node.output)
            except (IndexError, KeyError) as e:  # a required input or attribute is missing
                self.problems.append(f"{label}: malformed node ({type(e).__name__}: {e})")
                self.broken.update(node.output)
        outputs = []
        for o in g.output:
            if o.name in self.broken:
                continue
            if o.name not in self.tensor:
                if o.name in self.consts:
                    self.problems.append(f"graph output {o.name!r} is a constant")
                else:
                    self.problems.append(f"graph output {o.name!r} is not computed")
                continue
            outputs.append(self.tensor[o.name])
        if self.problems:
            raise ValueError(
                f"cannot import this ONNX model: {len(self.problems)} "
                f"unsupported node(s) or feature(s):\n  " + "\n  ".join(self.problems)
            )
        graph = Graph([n for n, _ in inputs], self.nodes, outputs)
        graph.eval()
        graph.onnx_input_shapes = {n: self.shapes.get(o) for n, o in inputs}
        return graph


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
    w = imp.const(node, 1, "the weight")
    if w.ndim != 4:
        raise _Unsupported(f"only 2-D convolution is supported (weight shape {w.shape})")
    bias = imp.const(node, 2, "the bias", optional=True)
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
    w = imp.const(node, 1, "the weight")
    if w.ndim != 4:
        raise _Unsupported(f"only 2-D transposed convolution (weight shape {w.shape})")
    bias = imp.const(node, 2, "the bias", optional=True)
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


def _unary(make, allowed=None):
    def handler(imp, node, check_only):
        a = imp.attrs(node, allowed or {})
        if check_only:
            return
        if node.input[0] in imp.consts:
            raise _Unsupported("a constant input (not folded for this operator)")
        imp.out(node, imp.emit(imp.node_base(node), make(a), [imp.inp(node, 0)]))

    return handler


def _batchnorm(imp, node, check_only):
    a = imp.attrs(node, {"epsilon": None, "momentum": None, "training_mode": (0,)})
    if check_only:
        return
    scale, bias = imp.const(node, 1, "scale"), imp.const(node, 2, "B")
    mean, var = imp.const(node, 3, "mean"), imp.const(node, 4, "var")
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
    lo = imp.const(node, 1, "min", optional=True)
    hi = imp.const(node, 2, "max", optional=True)
    lo = None if lo is None else float(lo)
    hi = None if hi is None else float(hi)
    layer = L.ReLU() if lo == 0 and hi is None else O.OnnxClip(lo, hi)
    imp.out(node, imp.emit(imp.node_base(node), layer, [imp.inp(node, 0)]))


def _softmax(imp, node, check_only):
    a = imp.attrs(node, {"axis": None})
    if check_only:
        return
    axis = int(a.get("axis", -1 if imp.opset >= 13 else 1))
    if imp.opset < 13:
        shape = imp.shape(node.input[0])
        if shape is None or axis % len(shape) != len(shape) - 1:
            raise _Unsupported(
                f"opset {imp.opset} Softmax over axes {axis}.. (flattened) is "
                f"supported only on the last axis"
            )
    imp.out(node, imp.emit(imp.node_base(node), L.Softmax(axis), [imp.inp(node, 0)]))


_FOLD = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply}
_BINARY = {"Add": L.Add, "Sub": L.Sub, "Mul": L.Mul, "Div": L.Div}


def _binary(imp, node, check_only):
    imp.attrs(node, {})
    if check_only:
        return
    if all(i in imp.consts for i in node.input):
        a, b = (imp.consts[i] for i in node.input)
        if node.op_type == "Div":
            if a.dtype.kind in "iu" and b.dtype.kind in "iu":
                imp.consts[node.output[0]] = a // b
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
    axis = int(a["axis"]) if "axis" in a else 0
    if all(i in imp.consts for i in node.input):
        imp.consts[node.output[0]] = np.concatenate([imp.consts[i] for i in node.input], axis)
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
        imp.consts[node.output[0]] = v.reshape(int(np.prod(v.shape[:axis])), -1)
        return
    imp.out(node, imp.emit(imp.node_base(node), O.OnnxFlatten(axis), [imp.inp(node, 0)]))


def _gemm(imp, node, check_only):
    a = imp.attrs(node, {"alpha": None, "beta": None, "transA": (0,), "transB": (0, 1)})
    if check_only:
        return
    w = imp.const(node, 1, "B (the weight)")
    if w.ndim != 2:
        raise _Unsupported(f"B must be 2-D, got shape {w.shape}")
    w = w if a.get("transB", 0) else w.T
    alpha, beta = float(a.get("alpha", 1.0)), float(a.get("beta", 1.0))
    c = imp.const(node, 2, "C (the bias)", optional=True)
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
    w = imp.const(node, 1, "B (the weight)")
    if w.ndim != 2:
        raise _Unsupported(f"MatMul is supported with a constant 2-D B, got shape {w.shape}")
    layer = L.Dense(w.shape[0], w.shape[1], bias=False, dtype=imp.dtype)
    layer.weight[...] = w.T
    imp.out(node, imp.emit(imp.node_base(node, node.input[1]), layer, [imp.inp(node, 0)]))


def _reshape(imp, node, check_only):
    a = imp.attrs(node, {"allowzero": (0,)})
    if check_only:
        return
    target = imp.const(node, 1, "the shape")
    if node.input[0] in imp.consts:
        imp.consts[node.output[0]] = imp.consts[node.input[0]].reshape([int(v) for v in target])
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
    a = imp.attrs(node, {"axes": None})
    if check_only:
        return
    axes = a.get("axes") if imp.opset < 13 else _axes(imp, node)
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


def _upsample(imp, node, check_only):
    raise _Unsupported(
        "Upsample is deprecated since opset 10 and invalid in opsets 11 to 21 "
        "(onnx's checker and onnxruntime refuse it); torch's nn.Upsample "
        "exports as Resize, which is supported"
    )


def _resize(imp, node, check_only):
    a = imp.attrs(node, _RESIZE_ATTRS)
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
        )
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
            size=sz[2:], mode="nearest" if mode == "nearest" else "bilinear", align_corners=align
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
    imp.attrs(node, {"seed": None, "ratio": None})
    if check_only:
        return
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
    a = imp.attrs(node, {"start": None, "end": None})
    if check_only:
        return
    shape = imp.shape(node.input[0])
    if node.input[0] in imp.consts:
        shape = list(imp.consts[node.input[0]].shape)
    if shape is None or any(d is None for d in shape):
        raise _Unsupported("the shape of its input is not known at import time")
    shape = shape[a.get("start", 0) : a.get("end", len(shape))]
    dtype = np.int64 if all(isinstance(d, int) for d in shape) else object
    imp.consts[node.output[0]] = np.array(shape, dtype=dtype)


def _fold_only(fn, allowed):
    def handler(imp, node, check_only):
        a = imp.attrs(node, allowed)
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
    return np.asarray(
        np.take(data, idx.astype(np.int64), axis=int(a.get("axis", 0))), dtype=data.dtype
    )


def _slice(imp, node, a):
    data = imp.consts[node.input[0]]
    starts = imp.const(node, 1).reshape(-1)
    ends = imp.const(node, 2).reshape(-1)
    axes = imp.const(node, 3, optional=True)
    steps = imp.const(node, 4, optional=True)
    axes = range(len(starts)) if axes is None else axes.reshape(-1)
    steps = [1] * len(starts) if steps is None else steps.reshape(-1)
    sl = [slice(None)] * data.ndim
    for s, e, ax, st in zip(starts, ends, axes, steps, strict=True):
        sl[int(ax)] = slice(int(s), int(max(min(e, 2**62), -(2**62))), int(st))
    return data[tuple(sl)]


def _cast(imp, node, a):
    onnx = _onnx()
    return imp.consts[node.input[0]].astype(onnx.helper.tensor_dtype_to_np_dtype(a["to"]))


def _const_of_shape(imp, node, a):
    shape = [int(v) for v in imp.consts[node.input[0]].reshape(-1)]
    if math.prod(shape) > 1 << 24:
        raise _Unsupported(f"ConstantOfShape of {shape} is too large to fold")
    value = a.get("value")
    v = np.zeros(1, np.float32) if value is None else _to_array(value, imp.folder, imp.budget)
    return np.full(shape, v.reshape(-1)[0], v.dtype)


_HANDLERS = {
    "Conv": _conv,
    "ConvTranspose": _conv_transpose,
    "MaxPool": _maxpool,
    "AveragePool": _avgpool,
    "GlobalAveragePool": _unary(lambda a: L.GlobalAvgPool2D()),
    "GlobalMaxPool": _unary(lambda a: O.OnnxGlobalMaxPool()),
    "BatchNormalization": _batchnorm,
    "Relu": _unary(lambda a: L.ReLU()),
    "LeakyRelu": _unary(lambda a: L.LeakyReLU(float(a.get("alpha", 0.01))), {"alpha": None}),
    "Sigmoid": _unary(lambda a: L.Sigmoid()),
    "Tanh": _unary(lambda a: L.Tanh()),
    "HardSigmoid": _unary(
        lambda a: O.OnnxHardSigmoid(a.get("alpha", 0.2), a.get("beta", 0.5)),
        {"alpha": None, "beta": None},
    ),
    "HardSwish": _unary(lambda a: O.OnnxHardSwish()),
    "Clip": _clip,
    "Softmax": _softmax,
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
    "Cast": _fold_only(_cast, {"to": None, "saturate": None}),
    "ConstantOfShape": _fold_only(_const_of_shape, {"value": None}),
}

SUPPORTED_OPS = tuple(sorted(k for k, v in _HANDLERS.items() if v is not _upsample))


def load(
    source: str | os.PathLike[str] | bytes,
    *,
    dtype: DTypeLike = "float32",
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Graph:
    """Import an ONNX model (a path, or its bytes) as a trainable ``convext.layers.Graph``.

    Operators (default domain, opsets 11 to 21): Conv (2-D), ConvTranspose (2-D; pads,
    output_padding; no auto_pad SAME or output_shape), BatchNormalization (inference
    form), Gemm, MatMul (constant 2-D weight), Relu, Clip, LeakyRelu, Sigmoid, HardSigmoid,
    HardSwish, Tanh, Softmax, MaxPool (ceil_mode, dilations, pads, auto_pad), AveragePool
    (count_include_pad), GlobalAveragePool, GlobalMaxPool, Add, Sub, Mul, Div (broadcasting;
    constant operands become ``Constant`` nodes), Concat, Flatten, Reshape, Squeeze, Unsqueeze,
    Transpose, Pad (constant, reflect, edge), Resize (torch's nearest; linear with half_pixel
    or align_corners; Upsample is invalid in these opsets and refused), Identity, Dropout,
    Constant, and Shape/Gather/Slice/Cast/ConstantOfShape where they fold to constants. ONNX
    pads and auto_pad (SAME_UPPER, SAME_LOWER with any stride) are mapped exactly (see
    ``_padded``).

    Anything else (an operator, an attribute value, a second output that is used, a
    non-constant weight) makes a ValueError listing every such node, raised before anything
    runs. The file is untrusted: at most ``max_bytes`` (default and ceiling: protobuf's 2 GiB),
    initializers counted against the same budget before they are read, external data only
    from files inside the model's own folder (no absolute path, no '..', no symlink out), a
    malformed protobuf is a ValueError.

    ``dtype``: float32 (default) or float64, the dtype of every parameter. The graph is
    returned in eval mode (call ``train()`` to fine-tune); ``graph.onnx_input_shapes`` holds
    the input shapes declared by the model (symbolic sizes as strings).
    """
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"load: dtype must be float32 or float64, got {dtype}")
    data, folder = _read_source(source, max_bytes)
    model = _parse(data)
    del data
    return _Importer(model, folder, dtype, max_bytes).run()
