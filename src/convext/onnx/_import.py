"""The ONNX importer: an untrusted ``.onnx`` file -> ``convext.layers.Graph``.

One pass over the nodes collects every problem (unsupported operator, attribute or input) and
reports them together in one ValueError before any layer runs. Constants (initializers,
Constant nodes and the Shape/Gather/Unsqueeze/Concat... chains that compute a Reshape's target)
are folded at import time; the batch size may stay symbolic (a target dimension equal to the
input's symbolic size becomes Reshape's 0, "copy").
"""

from __future__ import annotations

import os
import re

import numpy as np
from numpy.typing import DTypeLike

from .. import layers as L
from ..layers.graph import MAX_GRAPH_NODES, Graph
from ..layers.registry import MAX_AXIS
from . import _ops as O
from ._handlers import _HANDLERS, _upsample
from ._proto import (
    _PLAIN_ATTRIBUTES,
    DEFAULT_MAX_BYTES,
    MAX_OPSET,
    MIN_OPSET,
    _attr_value,
    _onnx,
    _parse,
    _read_source,
    _reserve,
    _to_array,
    _Unsupported,
)

__all__ = ["load", "SUPPORTED_OPS", "DEFAULT_MAX_BYTES"]


def _declared_shape_problem(declared):
    """What makes a graph input's declared shape (per axis an int, a symbol's name or None)
    impossible for an array, or None."""
    if len(declared) > MAX_AXIS:
        return f"the declared rank {len(declared)} exceeds numpy's {MAX_AXIS} dimensions"
    for d in declared:
        if isinstance(d, int) and d < 0:
            return f"the declared shape has the negative size {d}"
        if d is not None and not isinstance(d, (int, str)):
            return f"the declared shape has the size name {d!r:.60}, which is not valid UTF-8"
    return None


# -- the importer --------------------------------------------------------------------------
_SAFE = re.compile(r"[^A-Za-z0-9_]+")
# what a malformed node raises in its handler (the pass reports it as that node's problem)
_NODE_ERRORS = (ValueError, TypeError, IndexError, KeyError, ArithmeticError)


class _Importer:
    def __init__(self, model, folder, dtype, max_bytes):
        self.model, self.folder, self.dtype = model, folder, np.dtype(dtype)
        self.budget = [max_bytes]
        self.nodes = []  # (name, layer, [graph tensor names])
        self.names = set()
        self.next_suffix = {}  # base -> the k its next "base_k" is tried from
        self.tensor = {}  # ONNX tensor name -> graph tensor name
        self.consts = {}  # ONNX tensor name -> numpy array (int entries may be str symbols)
        self.const_nodes = {}  # id of a constant array -> graph name of its Constant node
        # id of a constant's memory (the array owning it) -> [that array, bytes of copies it
        # still covers]: see copy_of
        self.copied = {}
        self.shapes = {}  # ONNX tensor name -> [int | str | None]
        # ONNX tensor name -> numpy dtype of its elements, where known: the graph inputs' and
        # what onnx's inference gives (constants: their arrays' dtypes; see elem_type)
        self.types = {}
        self.problems = []
        self.broken = set()
        # tensors whose shape onnx's inference gets wrong (a Resize by scales: its length in
        # float64, onnxruntime's in float32), and every tensor after them: their shapes are
        # dropped, so nothing fixes a padding or folds a Shape from them
        self.unsure_shapes = set()
        self.opset = None
        # what the import fixed from the declared input sizes; non-empty: the graph checks them
        self.size_dependent = []

    # -- names and nodes ---------------------------------------------------------------------
    def unique(self, base):
        """A graph name from ``base`` not given before: ``base``, else ``base_k`` from the
        lowest k not yet tried for this base (each name is skipped at most once over the
        whole import: linear in the nodes, where counting from 2 every time was quadratic
        in nodes of one name)."""
        base = _SAFE.sub("_", base).strip("_")[:100] or "node"
        name = base
        if name in self.names:
            k = self.next_suffix.get(base, 2)
            while f"{base}_{k}" in self.names:
                k += 1
            name, self.next_suffix[base] = f"{base}_{k}", k + 1
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

    def param(self, node, k, what, optional=False):
        """Input k, a constant a layer is about to copy into its parameters (``copy_of``)."""
        v = self.const(node, k, what, optional)
        return None if v is None else self.copy_of(v, f"input {k} ({what})")

    def copy_of(self, v, what):
        """Count a copy of constant ``v`` at the importer's dtype, about to be made (a layer's
        parameter, a Constant node), against max_bytes. The bytes counted when a constant's
        memory was read or folded cover its first copy; the copies beyond them (aliases of it
        through Identity, Reshape, Squeeze, Transpose or Slice, each its own Constant node, or
        one initializer shared by several layers) are counted: a 1.7 KB model with 40 aliases
        of a 64 MiB constant held 2.7 GB. ``v``, unchanged."""
        root = v
        while isinstance(root.base, np.ndarray):
            root = root.base
        entry = self.copied.setdefault(id(root), [root, root.nbytes])
        nbytes = v.size * self.dtype.itemsize
        covered = min(nbytes, entry[1])
        entry[1] -= covered
        if nbytes > covered:
            _reserve(self.budget, (nbytes - covered,), np.uint8, f"{what:.150}: its copy")
        return v

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
            value = self.consts[name]  # one node for the names of one array (Identity's)
            if id(value) not in self.const_nodes:
                v = self.float_const(
                    self.copy_of(value, f"constant {name!r}"), f"constant {name!r}"
                )
                self.const_nodes[id(value)] = self.emit(
                    "const_" + name, L.Constant(list(v.shape), self.dtype, value=v), []
                )
            return self.const_nodes[id(value)]
        raise _Unsupported(f"input {name!r} is unknown")

    def shape(self, name):
        return self.shapes.get(name)

    def elem_type(self, name):
        """The element type (a numpy dtype) of tensor ``name``: a constant's array's (a Shape
        folded with symbolic sizes is int64), else the graph input's or onnx's inference's;
        None where unknown."""
        if name in self.consts:
            v = self.consts[name]
            return np.dtype(np.int64) if v.dtype == object else v.dtype
        return self.types.get(name)

    def check_one_type(self, node, inputs=None, names=None):
        """Inputs bound to one type parameter must have one element type, as ONNX requires and
        onnxruntime checks: all the node's (T of Add, Sub, Mul, Div, Concat, Mod, Clip, Gemm,
        MatMul, Conv, ConvTranspose), or those at the indices ``inputs``, ONNX's ``names`` of
        them (Pad's data and constant_value, Slice's starts, ends, axes and steps,
        BatchNormalization's). _Unsupported naming the two types where both are known (a
        float32 tensor with an int64 constant was computed, a float64 weight copied,
        converted)."""
        if inputs is not None:
            node_inputs = [node.input[k] for k in inputs if k < len(node.input)]
        else:
            node_inputs = node.input
        known = [t for t in (self.elem_type(i) for i in node_inputs if i) if t is not None]
        if any(t != known[0] for t in known):
            other = next(t for t in known if t != known[0])
            which = "its inputs" if names is None else f"its inputs {names}"
            raise _Unsupported(
                f"{which} have different element types, {known[0]} and {other}: "
                f"{node.op_type} takes them of one type"
            )

    def out(self, node, graph_name):
        self.tensor[node.output[0]] = graph_name

    def too_early(self, what, since):
        """The problem with ``what`` (an operator, an attribute) that exists from opset
        ``since`` on, in a model importing an earlier opset of the default domain (the operator
        is not there, or its version there lacks the attribute: onnxruntime refuses the model);
        None from ``since`` on. The one rule for operators (``_unary``'s ``since``) and
        attributes (``attrs``'s)."""
        if self.opset >= since:
            return None
        return (
            f"{what} exists from opset {since} on; the model imports opset {self.opset} of "
            f"the default domain"
        )

    def too_late(self, what, until):
        """The problem with ``what`` (an attribute) that the operator's version of opset
        ``until`` dropped (made an input), in a model importing that opset or a later one
        (onnxruntime refuses the model); None before ``until``."""
        if self.opset < until:
            return None
        return (
            f"{what} exists up to opset {until - 1} (an input from {until} on); the model "
            f"imports opset {self.opset} of the default domain"
        )

    def attrs(self, node, allowed, since=None, until=None):
        """The node's attributes as a dict; an attribute not in ``allowed`` (name -> None: any
        value, or a predicate on the value, or a tuple of accepted values) is a problem, and so
        is one in ``since`` (name -> the opset that introduced it) before that opset, or one in
        ``until`` (name -> the opset that dropped it) from that opset on."""
        out, bad = {}, []
        for a in node.attribute:
            if a.type not in _PLAIN_ATTRIBUTES:
                bad.append(
                    f"attribute {a.name} of AttributeProto type {a.type} is not supported (only "
                    f"numbers, strings and tensors)"
                )
                continue
            v = _attr_value(a)
            check = allowed.get(a.name, False)
            first, last = (since or {}).get(a.name), (until or {}).get(a.name)
            early = first is not None and self.too_early(f"attribute {a.name}", first)
            late = last is not None and self.too_late(f"attribute {a.name}", last)
            if early or late:
                bad.append(early or late)
            elif check is False:
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

    # -- the checks of a node that need no input values -----------------------------------------
    @staticmethod
    def handler(node):
        """The node's handler; None for an operator convext does not support (or another
        domain's)."""
        return _HANDLERS.get(node.op_type) if node.domain in ("", "ai.onnx") else None

    def check_form(self, node, handler):
        """The node's outputs, first input and attributes (its handler's check_only pass);
        _Unsupported naming the problem."""
        if not node.output or not node.output[0]:
            raise _Unsupported("it has no (first) output")
        if node.op_type != "Constant" and (not node.input or not node.input[0]):
            raise _Unsupported("its first input is missing")
        handler(self, node, check_only=True)

    def shape_inference_may_run(self):
        """Whether onnx's shape inference may see the model: only when every node is a
        supported operator whose form ``check_form`` accepted, and there are no model-local
        functions and no problem yet (the opset). onnx's C++ crashes the process (SIGSEGV,
        abort) on some operators convext does not support (EyeLike with a missing input,
        RegexFullMatch, Split with more outputs than num_outputs) and expands nested local
        functions exponentially; without it the declared shapes are used, and the pass
        reports the problems as usual."""
        if self.problems or len(self.model.functions):
            return False
        for node in self.model.graph.node:
            handler = self.handler(node)
            if handler is None:
                return False
            try:
                self.check_form(node, handler)
            except (_Unsupported, *_NODE_ERRORS):
                return False
        return True

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
        if len(m.functions):
            names = ", ".join(f"{f.domain}.{f.name}" for f in m.functions[:5])
            self.problems.append(
                f"the model defines {len(m.functions)} local function(s) ({names:.200}); "
                f"model-local functions are not supported"
            )
        # the shapes the import relies on (a folded Shape, auto_pad SAME's padding) come from
        # the inputs (checked at run time) through onnx's inference, never from the shapes the
        # file declares for intermediate tensors and outputs, which nothing checks; inference
        # runs only on nodes convext has checked (shape_inference_may_run: onnx's C++ crashed
        # on some others)
        del g.value_info[:]
        for o in g.output:
            o.type.tensor_type.ClearField("shape")
        infos = list(g.input)
        if self.shape_inference_may_run():
            try:
                inferred = onnx.shape_inference.infer_shapes(m, strict_mode=False)
                infos = (
                    list(inferred.graph.value_info)
                    + list(inferred.graph.input)
                    + list(inferred.graph.output)
                )
            except Exception:
                pass
        graph_outputs = {o.name for o in g.output}  # their element types: the file's word
        for vi in infos:
            tt = vi.type.tensor_type
            if tt.elem_type and vi.name not in graph_outputs:
                try:
                    self.types[vi.name] = np.dtype(
                        onnx.helper.tensor_dtype_to_np_dtype(tt.elem_type)
                    )
                except Exception:  # a type numpy cannot name: unknown
                    pass
            if tt.HasField("shape"):
                self.shapes[vi.name] = [
                    d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
                    for d in tt.shape.dim
                ]
        inputs, checks = [], {}  # checks: the OnnxInputShape node of an input -> the input
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
            declared = self.shapes.get(vi.name)
            problem = None if declared is None else _declared_shape_problem(declared)
            if problem:
                self.problems.append(f"graph input {vi.name!r:.100}: {problem}")
            elif declared is not None:
                check = self.emit(name + "_shape", O.OnnxInputShape(vi.name, declared), [name])
                checks[check] = name
                self.tensor[vi.name] = check
        assigned = set(self.consts) | {vi.name for vi in g.input}
        for k, node in enumerate(g.node):
            for o in node.output:
                if o in assigned:  # "" (an unused optional output) is never assigned
                    self.problems.append(
                        f"node {k} {node.name or '(unnamed)'!r:.100}: its output {o!r:.100} is "
                        f"already a graph input, an initializer or another node's output (ONNX "
                        f"assigns each name once)"
                    )
                elif o:
                    assigned.add(o)
        consumers = {}
        for node in g.node:
            for i in node.input:
                consumers[i] = consumers.get(i, 0) + 1
        for o in g.output:
            consumers[o.name] = consumers.get(o.name, 0) + 1
        for k, node in enumerate(g.node):
            domain = node.domain + "." if node.domain else ""
            label = f"node {k} {node.name or '(unnamed)'!r:.100} ({domain}{node.op_type})"
            handler = self.handler(node)
            if handler is None:
                self.problems.append(f"{label}: operator {node.op_type!r} is not supported")
                self.broken.update(node.output)
                continue
            extra = [o for o in node.output[1:] if o and consumers.get(o)]
            try:
                self.check_form(node, handler)
                if extra:
                    raise _Unsupported(
                        f"its output(s) {extra} beyond the first are used; only "
                        f"the first output is supported"
                    )
                if any(i in self.broken for i in node.input if i):
                    # a consequence of an earlier problem (its attributes are checked)
                    self.broken.update(node.output)
                    continue
                if any(i in self.unsure_shapes for i in node.input if i):
                    for o in node.output:
                        self.shapes.pop(o, None)
                    self.unsure_shapes.update(node.output)
                handler(self, node, check_only=False)
            except (_Unsupported, ValueError, TypeError) as e:
                self.problems.append(f"{label}: {e}")
                self.broken.update(node.output)
            except (IndexError, KeyError, ArithmeticError) as e:
                # a required input or attribute is missing; an infinite or zero-sized operand
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
        if not self.size_dependent:  # the checks are not needed: any input size works
            self.nodes = [
                (n, layer, [checks.get(i, i) for i in ins])
                for n, layer, ins in self.nodes
                if n not in checks
            ]
            outputs = [checks.get(o, o) for o in outputs]
        graph = Graph([n for n, _ in inputs], self.nodes, outputs)
        graph.eval()
        graph.onnx_input_shapes = {n: self.shapes.get(o) for n, o in inputs}
        return graph


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
    HardSwish (opset 14 on), Tanh, Softmax, LogSoftmax, MaxPool (ceil_mode, dilations, pads,
    auto_pad), AveragePool (count_include_pad), GlobalAveragePool and GlobalMaxPool (4-D input:
    a 3-D one is refused, not read as one image), Add, Sub, Mul, Div (broadcasting; constant
    operands become ``Constant`` nodes), Concat, Flatten, Reshape, Squeeze, Unsqueeze,
    Transpose, Pad (constant, reflect, edge), Resize (torch's nearest; linear with half_pixel or
    align_corners; Upsample is invalid in these opsets and refused), Identity, Dropout
    (training_mode absent or a constant false), Constant, and
    Shape/Gather/Slice/Cast/ConstantOfShape/Mod where they fold to constants. Inputs an
    operator binds to one type parameter (both of Add's, Sub's, Mul's, Div's and Mod's, all of
    Concat's, Clip's, Gemm's, MatMul's, Conv's and ConvTranspose's: a weight of the input's;
    Pad's data and constant_value, Slice's starts, ends, axes and steps, BatchNormalization's
    per opset) must have one element type, as onnxruntime requires. ONNX pads and auto_pad
    (SAME_UPPER, SAME_LOWER with any stride) are mapped exactly (see ``_padded``).

    Anything else (an operator, an attribute value, an attribute the operator gains at a later
    opset than the model's, such as Shape's start and end before 15, or one an opset made an
    input, such as Squeeze's axes from 13, a second output that is used, a non-constant weight)
    makes a ValueError listing every such node, raised before anything runs. The file is
    untrusted: at most ``max_bytes`` (default and ceiling: protobuf's 2 GiB), initializers, the
    constants folded from them and each copy of one beyond its first (an alias's Constant node,
    a weight shared by several layers) counted against the same budget before they are read,
    computed or copied, external data only from files inside the model's own folder (no
    absolute path, no '..', no symlink out), a malformed protobuf is a ValueError, and so is a
    name assigned twice.

    Where the import fixes something from the input sizes the model declares (the padding of
    auto_pad SAME, a Shape folded to a constant), the graph starts with an ``OnnxInputShape``
    check per input: an input whose size differs from a declared one is a ValueError at run
    time (as in onnxruntime), not a result computed with the wrong padding.

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
