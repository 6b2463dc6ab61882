"""``Graph``: named layers wired as a directed acyclic graph, and the parameterless op layers
(``Add``, ``Sub``, ``Mul``, ``Div``, ``Cat``, ``Reshape``, ``Transpose``, ``Pad``,
``Constant``...) that join tensors inside it.

A graph has named inputs, named nodes (each a layer applied to one or more named tensors; a
node's output tensor has the node's name) and named outputs. Build one with ``GraphBuilder``::

    from convext.layers import Add, BatchNorm2D, Conv2D, GraphBuilder, ReLU

    g = GraphBuilder()
    x = g.input("x")
    y = g.add_node("conv1", Conv2D(16, 16, 3, padding=1, bias=False), x)
    y = g.add_node("bn1", BatchNorm2D(16), y)
    y = g.add_node("relu1", ReLU(), y)
    y = g.add_node("conv2", Conv2D(16, 16, 3, padding=1, bias=False), y)
    y = g.add_node("bn2", BatchNorm2D(16), y)
    y = g.add_node("add", Add(), y, x)          # x is used twice: its gradients are summed
    g.output(g.add_node("relu2", ReLU(), y))
    block = g.build()                            # a Graph: a Layer like any other

``add_node(name, layer, *inputs)`` returns the name of the node's output (a ``str``), so it
can be passed on as an input. Names are 1 to 128 characters of letters, digits and ``_``,
unique among inputs and nodes. The node layers are the Graph's children under their node
names, so ``state_dict`` keys read ``conv1.weight``, ``bn1.running_mean``...

Semantics: ``forward(*inputs)`` runs the nodes in a topological order (the order they were
added when that is one) and returns the output (a tuple if there are several);
``backward(grad_out)`` (a tuple for several outputs) runs them in the reverse order, summing
the gradients of a tensor consumed by several nodes (or twice by one), and returns dL/d(input)
(a tuple for several inputs). A node whose output reaches no graph output is still run by
forward but gets no backward. Ordinary layers take one input; op layers declare
``n_inputs`` (``Add``: 2, ``Cat``: any number >= 1, ``Constant``: 0) and their backward returns
one gradient per input.

Saving: ``get_config`` describes the node layers (``nodes``) and the wiring (``wiring``: a
list of ``[name, [input names]]``); the loader checks every name, reference and bound (unknown
tensor names, duplicate names, cycles, arity, at most ``MAX_GRAPH_NODES`` nodes) before any
layer is built into the graph.
"""

from __future__ import annotations

import heapq
import re

import numpy as np

from .._typing import ArrayLike, FloatArray
from .base import Layer
from .container import _check_layer
from .graph_ops import (  # the op layers and helpers live in graph_ops; re-exported here
    Add,
    Cat,
    Constant,
    Div,
    Mul,
    Pad,
    Reshape,
    Sub,
    Transpose,
)
from .graph_ops import _int_list as _int_list
from .graph_ops import _Op as _Op
from .registry import MAX_GRAPH_NODES, MAX_NODE_INPUTS, register_layer

__all__ = [
    "Add",
    "Cat",
    "Constant",
    "Div",
    "Graph",
    "GraphBuilder",
    "Mul",
    "Pad",
    "Reshape",
    "Sub",
    "Transpose",
    "MAX_GRAPH_NODES",
    "MAX_NODE_INPUTS",
]

_NAME = re.compile(r"[A-Za-z0-9_]{1,128}\Z")


def _n_inputs(layer):
    """(minimum, maximum or None) number of inputs a node layer takes."""
    n = getattr(layer, "n_inputs", 1)
    if n is None:
        return 1, None
    return n, n


def check_name(name, what):
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"{what} must be 1 to 128 letters, digits or '_', got {name!r:.140}")
    return name


def _topological_order(input_names, wiring):
    """Check the wiring and return the node names in a topological order (the given order when
    it is one); ValueError for duplicate or malformed names, unknown references, cycles."""
    if len(input_names) > MAX_GRAPH_NODES or len(wiring) > MAX_GRAPH_NODES:
        raise ValueError(f"Graph: more than {MAX_GRAPH_NODES} inputs or nodes")
    seen = set()
    for name in input_names:
        check_name(name, "Graph: an input name")
        if name in seen:
            raise ValueError(f"Graph: duplicate input name {name!r}")
        seen.add(name)
    for name, _ in wiring:
        check_name(name, "Graph: a node name")
        if name in seen:
            raise ValueError(
                f"Graph: duplicate name {name!r} (names of inputs and nodes must be unique)"
            )
        seen.add(name)
    for name, ins in wiring:
        if len(ins) > MAX_NODE_INPUTS:
            raise ValueError(f"Graph: node {name!r} has more than {MAX_NODE_INPUTS} inputs")
        for i in ins:
            if not isinstance(i, str) or i not in seen:
                raise ValueError(f"Graph: node {name!r} takes the unknown tensor {i!r:.140}")
    # Kahn's algorithm in O(nodes + edges), stable: among the ready nodes, the first given
    index = {name: k for k, (name, _) in enumerate(wiring)}
    missing = [sum(1 for i in ins if i in index) for _, ins in wiring]
    users = {}
    for k, (_, ins) in enumerate(wiring):
        for i in ins:
            if i in index:
                users.setdefault(i, []).append(k)
    ready = [k for k, m in enumerate(missing) if m == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        k = heapq.heappop(ready)
        order.append(wiring[k][0])
        for u in users.get(wiring[k][0], ()):
            missing[u] -= 1
            if missing[u] == 0:
                heapq.heappush(ready, u)
    if len(order) != len(wiring):
        done = set(order)
        names = ", ".join(repr(n) for n, _ in wiring if n not in done)
        raise ValueError(f"Graph: the nodes {names[:400]} form a cycle (or depend on one)")
    return order


def _accumulate(grads, name, g):
    """Sum the gradients of a tensor used several times (a new array: ``g`` may be shared)."""
    old = grads.get(name)
    grads[name] = g if old is None else old + g


@register_layer
class Graph(Layer):
    """Named layers wired as a directed acyclic graph (see the module docstring).

    Parameters
    ----------
    input_names : list of str, the graph's inputs (at least one).
    nodes : list of ``(name, layer, input_names)``; ``input_names`` are names of graph inputs or
        other nodes (any order as long as there is no cycle).
    output_names : list of str (at least one), names of inputs or nodes.
    """

    _config_fields = ("input_names", "output_names", "nodes", "wiring")
    _layer_list_fields = ("nodes",)

    def __init__(self, input_names, nodes, output_names):
        super().__init__()
        input_names = list(input_names) if isinstance(input_names, (list, tuple)) else None
        if not input_names:
            raise ValueError("Graph: input_names must be a non-empty list of names")
        output_names = list(output_names) if isinstance(output_names, (list, tuple)) else None
        if not output_names:
            raise ValueError("Graph: output_names must be a non-empty list of names")
        if not isinstance(nodes, (list, tuple)):
            raise TypeError("Graph: nodes must be a list of (name, layer, input_names)")
        wiring, layers = [], []
        for k, node in enumerate(nodes):
            if (
                not isinstance(node, (list, tuple))
                or len(node) != 3
                or not isinstance(node[2], (list, tuple))
            ):
                raise TypeError(
                    f"Graph: node {k} must be (name, layer, input_names), got {node!r:.100}"
                )
            name, layer, ins = node
            layers.append(_check_layer(layer, f"Graph: the layer of node {name!r:.140}"))
            wiring.append((name, list(ins)))
        self._order = _topological_order(input_names, wiring)
        known = set(input_names) | {n for n, _ in wiring}
        for o in output_names:
            if not isinstance(o, str) or o not in known:
                raise ValueError(f"Graph: the output {o!r:.140} is not an input or a node")
        for (name, ins), layer in zip(wiring, layers, strict=True):
            lo, hi = _n_inputs(layer)
            if len(ins) < lo or (hi is not None and len(ins) > hi):
                want = f"{lo}" if lo == hi else f"at least {lo}"
                raise ValueError(
                    f"Graph: node {name!r} ({type(layer).__name__}) takes {want} "
                    f"input(s), it is given {len(ins)}"
                )
        self.input_names = input_names
        self.output_names = output_names
        self._inputs = dict(wiring)
        for (name, _), layer in zip(wiring, layers, strict=True):
            self._adopt(name, layer)
        self._input_meta = None

    @classmethod
    def from_config(cls, config):
        nodes, wiring = config.get("nodes"), config.get("wiring")
        if not isinstance(nodes, list) or not isinstance(wiring, list) or len(nodes) != len(wiring):
            raise ValueError("Graph: nodes and wiring must be lists of the same length")
        return cls(
            config.get("input_names"),
            [(n, layer, ins) for (n, ins), layer in zip(wiring, nodes, strict=True)],
            config.get("output_names"),
        )

    def get_config(self):
        return {
            "input_names": list(self.input_names),
            "output_names": list(self.output_names),
            "nodes": list(self._children.values()),
            "wiring": [[name, list(self._inputs[name])] for name in self._children],
        }

    @property
    def n_inputs(self):
        """A graph used as a node of another graph takes one tensor per input."""
        return len(self.input_names)

    @property
    def nodes(self):
        """``(name, layer, input_names)`` for each node, in the order they were given."""
        return [(n, layer, list(self._inputs[n])) for n, layer in self._children.items()]

    def node(self, name):
        """The layer of node ``name``."""
        if name not in self._children:
            raise KeyError(f"Graph has no node {name!r}")
        return self._children[name]

    def __call__(self, *inputs):
        return self.forward(*inputs)

    def run(self, *inputs, keep=()):
        """Forward pass returning ``{tensor name: array}`` for the outputs and every name in
        ``keep`` (for inspection)."""
        if len(inputs) != len(self.input_names):
            raise ValueError(
                f"Graph: expected {len(self.input_names)} input(s) "
                f"({', '.join(self.input_names)}), got {len(inputs)}"
            )
        if not isinstance(keep, (list, tuple)) or not all(
            isinstance(k, str) and (k in self._children or k in self.input_names) for k in keep
        ):
            raise ValueError(
                f"Graph.run: keep must be a list of node or input names, got {keep!r:.100}"
            )
        env = dict(zip(self.input_names, inputs, strict=True))
        if self.training:
            self._input_meta = [(np.shape(x), np.asarray(x).dtype) for x in inputs]
        wanted = set(self.output_names) | set(keep)
        remaining = {}
        for name in self._order:
            for i in self._inputs[name]:
                remaining[i] = remaining.get(i, 0) + 1
        for name in self._order:
            layer, ins = self._children[name], self._inputs[name]
            try:
                env[name] = (
                    layer(*[env[i] for i in ins])
                    if getattr(layer, "n_inputs", 1) != 1
                    else layer(env[ins[0]])
                )
            except (ValueError, TypeError) as e:
                if type(e) not in (ValueError, TypeError):
                    raise
                raise type(e)(f"Graph node {name!r} ({type(layer).__name__}): {e}") from None
            if isinstance(env[name], tuple) and remaining.get(name):
                # a node's value feeds its consumers as one array: numpy would stack a tuple
                raise ValueError(
                    f"Graph node {name!r} ({type(layer).__name__}) returns "
                    f"{len(env[name])} outputs; a node that other nodes read must return one "
                    f"array"
                )
            for i in ins:  # free intermediate tensors as soon as their last consumer ran
                remaining[i] -= 1
                if remaining[i] == 0 and i not in wanted:
                    env.pop(i, None)
        return {k: env[k] for k in wanted}

    def forward(self, *inputs):
        env = self.run(*inputs)
        outs = tuple(env[o] for o in self.output_names)
        return outs[0] if len(outs) == 1 else outs

    def _needs_grad(self, needs_input_grad):
        """Tensor name -> whether a gradient has to flow into it: graph inputs when
        ``needs_input_grad``, nodes with parameters, and everything downstream of either."""
        need = {n: bool(needs_input_grad) for n in self.input_names}
        for name in self._order:
            layer = self._children[name]
            need[name] = bool(layer.parameters()) or any(need[i] for i in self._inputs[name])
        return need

    def backward(self, grad_out: ArrayLike, needs_input_grad: bool = True) -> FloatArray | None:
        if len(self.output_names) == 1:
            grad_out = (grad_out,)
        elif not isinstance(grad_out, (list, tuple)) or len(grad_out) != len(self.output_names):
            raise ValueError(
                f"Graph.backward: grad_out must be a tuple of "
                f"{len(self.output_names)} gradients (one per output)"
            )
        if self._input_meta is None:
            raise RuntimeError("Graph.backward needs a forward pass in training mode first")
        need = self._needs_grad(needs_input_grad)
        grads = {}
        for o, g in zip(self.output_names, grad_out, strict=True):
            if g is not None:
                _accumulate(grads, o, np.asarray(g))
        for name in reversed(self._order):
            g = grads.pop(name, None)
            if g is None or not need[name]:
                continue
            layer, ins = self._children[name], self._inputs[name]
            wants = any(need[i] for i in ins)
            if getattr(layer, "n_inputs", 1) == 1:
                gx = layer.backward(g, needs_input_grad=wants)
                gxs = (gx,)
            else:
                gxs = layer.backward(g, needs_input_grad=wants)
            if wants:
                for i, gi in zip(ins, gxs, strict=True):
                    if need[i] and gi is not None:
                        _accumulate(grads, i, gi)
        if not needs_input_grad:
            return None
        out = []
        for name, (shape, dtype) in zip(self.input_names, self._input_meta, strict=True):
            g = grads.get(name)
            out.append(np.zeros(shape, dtype) if g is None else g)
        return out[0] if len(out) == 1 else tuple(out)

    def extra_repr(self):
        ins = ", ".join(self.input_names)
        outs = ", ".join(self.output_names)
        return f"inputs=({ins}), outputs=({outs})"

    def __repr__(self):
        lines = [f"inputs: {', '.join(self.input_names)}"]
        for name, layer in self._children.items():
            r = repr(layer).replace("\n", "\n  ")
            lines.append(f"({name}): {r} <- {', '.join(self._inputs[name]) or '()'}")
        lines.append(f"outputs: {', '.join(self.output_names)}")
        return "Graph(\n  " + "\n  ".join(lines) + "\n)"


class GraphBuilder:
    """Builds a ``Graph`` step by step: ``input(name)``, ``add_node(name, layer, *inputs)``
    (returns the output's name), ``output(*names)``, ``build()``."""

    def __init__(self) -> None:
        self._inputs, self._nodes, self._outputs, self._names = [], [], [], set()

    def _new_name(self, name, what):
        check_name(name, what)
        if name in self._names:
            raise ValueError(f"GraphBuilder: the name {name!r} is taken")
        self._names.add(name)
        return name

    def input(self, name="x"):
        """Declare a graph input; returns its name."""
        self._inputs.append(self._new_name(name, "GraphBuilder.input: name"))
        return name

    def add_node(self, name, layer, *inputs):
        """Add ``layer`` applied to the tensors ``inputs`` (names); returns the node's output
        name (``name``)."""
        _check_layer(layer, f"GraphBuilder.add_node: the layer of {name!r:.140}")
        for i in inputs:
            if i not in self._names:
                raise ValueError(f"GraphBuilder.add_node: {name!r}: unknown input {i!r:.140}")
        self._nodes.append(
            (self._new_name(name, "GraphBuilder.add_node: name"), layer, list(inputs))
        )
        return name

    def output(self, *names):
        """Declare graph output(s), in order."""
        for n in names:
            if n not in self._names:
                raise ValueError(f"GraphBuilder.output: unknown tensor {n!r:.140}")
            self._outputs.append(n)

    def build(self):
        return Graph(self._inputs, self._nodes, self._outputs)
