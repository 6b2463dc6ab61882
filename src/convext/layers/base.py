"""The ``Layer`` base class.

A layer holds its parameters (name -> array) and their gradients (name -> array of the same
shape, allocated once so an optimizer can keep references to both), computes ``forward(x)``
through ``convext.functional`` and keeps only what its ``backward`` needs. ``backward(grad_out)``
*adds* the parameter gradients into ``grads()`` (as PyTorch accumulates into ``.grad``; an
optimizer's ``zero_grad()`` clears them) and returns the gradient with respect to the input.

Parameters and gradients are updated in place, never rebound: ``load_state_dict``,
``reset_parameters`` and the optimizers all write into the existing arrays.

Constructors allocate their arrays through ``_array``. Inside ``unallocated()`` (used by
``convext.load``) that returns a shape-and-dtype placeholder instead and no parameter is
initialised, so a model described by an untrusted file is built, with all the constructors'
checks, at no memory cost; ``Layer._allocate()`` then allocates the arrays once the file is
known to supply them.
"""

from __future__ import annotations

import contextlib
import math
import threading
import weakref
from typing import TYPE_CHECKING

import numpy as np

from .. import _archive, init
from .._typing import ArrayLike, FloatArray, PathOrFile
from .._validation import check_alloc

if TYPE_CHECKING:
    from collections.abc import Mapping

    from typing_extensions import Self
from .registry import layer_from_spec, layer_spec

__all__ = ["Layer"]

_local = threading.local()


class _Unallocated:
    """What a constructor would have allocated: shape, dtype, initial fill value (None: the
    array is initialised by ``reset_parameters``, or filled by the loader) and what the array
    is, for the error of an array too large (see ``_array``)."""

    __slots__ = ("shape", "dtype", "fill", "what")

    def __init__(self, shape, dtype, fill, what=None):
        self.shape, self.dtype, self.fill, self.what = shape, np.dtype(dtype), fill, what

    def allocate(self):
        check_alloc(self.shape, self.what or "an array of shape", self.dtype.itemsize)
        if self.fill == 0:
            return np.zeros(self.shape, self.dtype)
        a = np.empty(self.shape, self.dtype)
        if self.fill is not None:
            a.fill(self.fill)
        return a


@contextlib.contextmanager
def unallocated():
    """Layers built in this block (in this thread) allocate nothing and skip their random
    initialisation; their arrays are placeholders until ``_allocate()``."""
    before = getattr(_local, "unallocated", False)
    _local.unallocated = True
    try:
        yield
    finally:
        _local.unallocated = before


def _building_unallocated():
    return getattr(_local, "unallocated", False)


@contextlib.contextmanager
def eval_mode(layer):
    """``layer`` and every layer inside it in eval mode for the block; afterwards each of them
    is back in the mode it had (not the root's: a BatchNorm frozen in eval mode inside a model
    in training mode stays frozen). What ``predict``, ``summary`` and fit's checks run in."""
    modes = [(sub, sub.training) for _, sub in layer.named_layers()]
    layer.eval()
    try:
        yield layer
    finally:
        for sub, training in modes:
            sub.training = training


def _array(shape, dtype, fill=None, what=None):
    """A new array for a constructor: ``fill`` (None: uninitialised), or a placeholder inside
    ``unallocated()``. An array beyond the geometry bound or the machine's memory is a
    ValueError (``check_alloc``) when it is allocated, not a MemoryError: ``what`` names it and
    the constructor arguments its shape comes from (``"Dense: the weight (out_features,
    in_features) of shape"``)."""
    shape = tuple(shape)
    if _building_unallocated():
        return _Unallocated(shape, dtype, fill, what)
    return _Unallocated(shape, dtype, fill, what).allocate()


def _dtype(dtype):
    dt = np.dtype(dtype)
    if dt not in (np.float32, np.float64):
        raise TypeError(f"dtype must be float32 or float64, got {dt}")
    return dt


def _converted(key, value, dtype, where="load_state_dict"):
    """``value`` as an array of ``dtype`` (a same-kind conversion, checked by the caller), or a
    ValueError naming ``key`` (``where``: the caller) where a value does not fit: a finite float
    that overflows to infinity, an integer outside the range of ``dtype``."""
    if value.dtype.kind in "iu" and dtype.kind in "iu" and value.size:
        info = np.iinfo(dtype)
        lo, hi = int(value.min()), int(value.max())
        if lo < info.min or hi > info.max:
            raise ValueError(
                f"{where}: {key!r} holds integers in [{lo}, {hi}], outside the range "
                f"of the layer's {dtype}"
            )
    with np.errstate(over="ignore"):
        out = value.astype(dtype, copy=False)  # no second copy when the dtype is already right
    if value.dtype.kind == "f" and dtype.kind == "f" and value.size:
        overflow = np.isinf(out) & np.isfinite(value)
        if overflow.any():
            raise ValueError(
                f"{where}: {key!r} holds {int(overflow.sum())} finite value(s) beyond "
                f"the range of the layer's {dtype} (largest magnitude "
                f"{float(np.abs(value[overflow]).max()):.6g})"
            )
    return out


class Layer:
    """Base class of all layers.

    Subclasses set ``self._params`` / ``self._grads`` / ``self._buffers`` (dicts name -> array)
    in ``__init__``, implement ``forward`` and ``backward``, ``get_config`` (the constructor
    arguments, JSON-serialisable) and, if they have parameters, ``reset_parameters(rng)``.

    Composite layers: a layer assigned to an attribute (``self.conv1 = Conv2D(...)``, after
    ``super().__init__()``) or held by a ``LayerList`` / ``Sequential`` attribute is a child.
    ``parameters()``, ``grads()``, ``buffers()``, ``state_dict()``, ``load_state_dict()``,
    ``train()`` / ``eval()``, ``reset_parameters()``, ``zero_grad()``, ``repr`` and
    ``save`` / ``load`` recurse into the children, with torch.nn's dotted names in torch's
    order (a layer's own parameters, then its own buffers, then each child in the order it was
    assigned: ``layer1.0.conv1.weight``). The subclass writes ``forward`` and an explicit
    ``backward`` (see ``convext.layers.composite`` for a ResNet block); ``Residual``,
    ``Concat`` and ``Identity`` need none. A layer instance is part of one model once:
    assigning it a second time (to another attribute or container, or into another model
    still alive) is a ValueError, because it keeps its forward input for its backward; make a
    second instance instead. Call each child once per forward pass for the same reason
    (ReLU and the like hold no parameters: use one instance per use).

    Thread safety: a model in eval mode (``model.eval()``) may run inference (``model(x)``,
    ``convext.predict``) from several Python threads at once and each thread gets exactly the
    result of a serial call: eval-mode forward passes only read the parameters and buffers (the
    kernels release the GIL). Training one model instance from several threads is not supported:
    a train-mode forward keeps its inputs for ``backward`` (a second thread's forward replaces
    them), ``backward`` accumulates into the shared gradient arrays and the optimizers update
    the parameters in place. Train separate instances, or serialise the calls with a lock.
    """

    def __init__(self) -> None:
        object.__setattr__(self, "_children", {})
        object.__setattr__(self, "_parent", None)  # weak reference to the owning layer
        self.training = True
        self._params = {}
        self._grads = {}
        self._buffers = {}

    # -- children ---------------------------------------------------------------------------
    def __setattr__(self, name, value):
        children = self.__dict__.get("_children")
        if isinstance(value, Layer):
            if children is None:
                raise AttributeError(
                    f"cannot assign the layer {name!r} before "
                    f"Layer.__init__(): call super().__init__() first"
                )
            self._adopt(name, value)
        elif children is not None and name in children:
            self._release(name)
        object.__setattr__(self, name, value)

    def __delattr__(self, name):
        if name in self.__dict__.get("_children", ()):
            self._release(name)
        object.__delattr__(self, name)

    def _owner(self):
        ref = self.__dict__.get("_parent")
        return None if ref is None else ref()

    def _adopt(self, name, child):
        """Make ``child`` the child ``name`` (attribute assignment and containers call this)."""
        if self._children.get(name) is child:
            return
        ancestor = self
        while ancestor is not None:
            if ancestor is child:
                raise ValueError(
                    f"cannot make a {type(child).__name__} a child of itself or "
                    f"of a layer inside it (as {name!r})"
                )
            ancestor = ancestor._owner()
        owner = child._owner()
        if owner is not None:
            where = next((k for k, v in owner._children.items() if v is child), "?")
            raise ValueError(
                f"this {type(child).__name__} instance is already part of a model (child "
                f"{where!r} of a {type(owner).__name__}); a layer instance may appear only "
                f"once in a model (it keeps its forward input for backward): create a second "
                f"instance for {name!r}"
            )
        if name in self._children:
            self._release(name)
        self._children[name] = child
        object.__setattr__(child, "_parent", weakref.ref(self))

    def _release(self, name):
        child = self._children.pop(name)
        object.__setattr__(child, "_parent", None)

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_parent"] = None  # a weak reference is not copied; the owner relinks
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        for child in self.__dict__.get("_children", {}).values():
            object.__setattr__(child, "_parent", weakref.ref(self))

    def named_children(self):
        """(name, layer) for each direct child, in the order they were assigned."""
        return iter(list(self._children.items()))

    def children(self):
        return iter(list(self._children.values()))

    def named_layers(self, prefix=""):
        """(dotted name, layer) for this layer ("" or ``prefix``) and every layer inside it,
        depth first in assignment order (torch's ``named_modules``)."""
        yield prefix, self
        for name, child in self._children.items():
            yield from child.named_layers(f"{prefix}.{name}" if prefix else name)

    def _collect(self, attribute):
        out = {}
        for path, layer in self.named_layers():
            for k, v in getattr(layer, attribute).items():
                out[f"{path}.{k}" if path else k] = v
        return out

    # -- computation ------------------------------------------------------------------------
    def forward(self, x: ArrayLike) -> FloatArray:
        raise NotImplementedError(f"{type(self).__name__} does not define forward")

    def backward(self, grad_out: ArrayLike, needs_input_grad: bool = True) -> FloatArray | None:
        """Accumulate the parameter gradients and return dL/dx (None if ``needs_input_grad``
        is False and the layer can skip computing it)."""
        raise NotImplementedError(f"{type(self).__name__} does not define backward")

    def __call__(self, x: ArrayLike) -> FloatArray:
        return self.forward(x)

    # -- parameters and state ---------------------------------------------------------------
    def parameters(self) -> dict[str, FloatArray]:
        """The trainable arrays, dotted name -> array (the layers' own arrays, not copies),
        this layer's first, then each child's in assignment order."""
        return self._collect("_params")

    def grads(self):
        """The gradients of ``parameters()``, same names and shapes."""
        return self._collect("_grads")

    def buffers(self):
        """Non-trainable state saved with the model (e.g. BatchNorm's running statistics)."""
        return self._collect("_buffers")

    def _state_items(self, prefix):
        yield from ((prefix + k, v) for k, v in self._params.items())
        yield from ((prefix + k, v) for k, v in self._buffers.items())
        for name, child in self._children.items():
            yield from child._state_items(f"{prefix}{name}.")

    def state_dict(self) -> dict[str, FloatArray]:
        """Copies of the parameters and buffers, keyed and ordered as
        ``torch.nn.Module.state_dict``: each layer's parameters, then its buffers, then its
        children's, depth first in assignment order."""
        return {k: v.copy() for k, v in self._state_items("")}

    def load_state_dict(self, state_dict: Mapping[str, ArrayLike], strict: bool = True) -> Self:
        """Copy arrays (e.g. a torch state_dict converted with ``.numpy()``) into the layer.

        The shapes must match; numbers are converted to the layer's dtype within their kind
        (float64 -> float32, int -> float; ``np.can_cast(..., "same_kind")``), anything else
        (strings, objects, complex, datetimes, records; floats into ``num_batches_tracked``) is
        a TypeError. With ``strict`` the keys must be exactly those of ``state_dict()``.
        A value the layer's dtype cannot hold (a float64 beyond float32's range, a uint64
        beyond int64's) is a ValueError naming its key. Nothing is written if a check fails: every
        value is converted first, then copied.
        """
        own = self.parameters()
        own.update(self.buffers())
        given = {k: np.asarray(v) for k, v in state_dict.items()}
        missing = sorted(set(own) - set(given))
        unexpected = sorted(set(given) - set(own))
        if strict and (missing or unexpected):
            raise ValueError(
                f"load_state_dict: missing keys {missing}, unexpected keys {unexpected}"
            )
        for k in own.keys() & given.keys():
            if own[k].shape != given[k].shape:
                raise ValueError(
                    f"load_state_dict: {k!r} has shape {given[k].shape}, "
                    f"the layer expects {own[k].shape}"
                )
            if not np.can_cast(given[k].dtype, own[k].dtype, casting="same_kind"):
                raise TypeError(
                    f"load_state_dict: {k!r} has dtype {given[k].dtype}, which is "
                    f"not converted to the layer's {own[k].dtype} (strings, "
                    f"objects, complex numbers and the like are refused)"
                )
        converted = {k: _converted(k, given[k], own[k].dtype) for k in own.keys() & given.keys()}
        for k, v in converted.items():
            np.copyto(own[k], v)
        return self

    def reset_parameters(self, rng=None):
        """Re-initialise the parameters as torch.nn does (``rng``: a numpy Generator or seed);
        the base class resets each child in turn from one generator."""
        rng = np.random.default_rng(rng)
        for child in self._children.values():
            child.reset_parameters(rng)
        return self

    def _allocate(self):
        """Replace the placeholders left by a constructor run inside ``unallocated()`` with
        arrays (parameters and buffers uninitialised unless they have a fill value, gradients
        zero), in this layer and every layer inside it."""
        for _, layer in self.named_layers():
            for d in (layer._params, layer._grads, layer._buffers):
                for k, v in d.items():
                    if isinstance(v, _Unallocated):
                        d[k] = v.allocate()
        return self

    def zero_grad(self) -> None:
        for g in self.grads().values():
            g.fill(0)

    def train(self, mode: bool = True) -> Self:
        """Training mode (``mode=True``) or eval mode, for this layer and every layer inside
        it (BatchNorm then uses its running statistics, Dropout passes its input through)."""
        self.training = bool(mode)
        for child in self._children.values():
            child.train(mode)  # through the child's own train(), as torch does
        return self

    def eval(self) -> Self:
        return self.train(False)

    # -- description ------------------------------------------------------------------------
    def get_config(self):
        """Constructor arguments as a JSON-serialisable dict (used by ``save``)."""
        return {}

    @classmethod
    def from_config(cls, config):
        """Build a layer from ``get_config()``'s output."""
        return cls(**config)

    def extra_repr(self):
        """The settings shown in the repr: required ones, and optional ones that differ from
        their defaults."""
        return ""

    def __repr__(self):
        """torch.nn's nested style: ``Name(extra)`` or ``Name(\n  (child): ...\n)``."""
        extra = self.extra_repr()
        lines = extra.split("\n") if extra else []
        children = [f"({k}): " + repr(v).replace("\n", "\n  ") for k, v in self._children.items()]
        if len(lines) == 1 and not children:
            return f"{type(self).__name__}({lines[0]})"
        if not lines and not children:
            return f"{type(self).__name__}()"
        return f"{type(self).__name__}(\n  " + "\n  ".join(lines + children) + "\n)"

    def save(self, path: PathOrFile) -> None:
        """Write the architecture (JSON) and the weights to one ``.npz`` file, atomically; see
        ``convext.load``.

        ``path`` is used exactly as given (no ``.npz`` is appended) or may be a writable binary
        file object. The layer type, and every layer type inside it, must be registered
        (``convext.register_layer``). The description is first checked as ``load`` would check
        it (at no memory cost), so a file ``load`` would refuse is never written.
        """
        arch = _archive.architecture_json(layer_spec(self))
        try:  # never write a file that load would refuse (the checks cost no memory)
            with unallocated():
                layer_from_spec(_archive.parse_arch(arch)["model"])
        except ValueError as e:
            raise ValueError(f"cannot save this model: {e}") from None
        _archive.write(path, arch, self.state_dict())

    def summary(self, input_shape, dtype=None, print_fn=print):
        """A table of every layer (nested ones indented), its output shape and its number of
        parameters, as Keras' ``model.summary()`` / torchinfo print; printed with
        ``print_fn`` (None: not printed) and returned.

        ``input_shape`` is the full input shape with its batch axis, e.g. ``(1, 3, 32, 32)``:
        one eval-mode forward pass runs on zeros of that shape and ``dtype`` (default: the
        parameters' dtype, else float32), recording each layer's output shape; the mode is
        restored afterwards and nothing else changes. A layer's "Param #" counts its own
        parameters ("--" for a container without its own), so the column adds up to the
        total; a layer the forward pass did not call shows "--" as its shape.
        """
        try:
            shape = tuple(int(d) for d in input_shape)
        except TypeError:
            raise TypeError(
                f"input_shape must be a tuple of ints with the batch axis, e.g. "
                f"(1, 3, 32, 32), got {input_shape!r}"
            ) from None
        if not shape or min(shape) < 1 or math.prod(shape) > 2**31:
            raise ValueError(
                f"input_shape must hold positive sizes (batch first), at most "
                f"2**31 elements, got {input_shape!r}"
            )
        params = self.parameters()
        if dtype is None:
            dtype = next(iter(params.values())).dtype if params else np.float32
        layers = list(self.named_layers())
        shapes = {}

        def recording(name, forward):
            def forward_and_record(x):
                out = forward(x)
                shapes[name] = tuple(np.shape(out))
                return out

            return forward_and_record

        try:
            for name, layer in layers:
                object.__setattr__(layer, "forward", recording(name, layer.forward))
            with eval_mode(self):
                self.forward(np.zeros(shape, dtype))
        finally:
            for _, layer in layers:
                layer.__dict__.pop("forward", None)
        rows = []
        for name, layer in layers:
            depth = name.count(".") + 1 if name else 0
            label = (
                "  " * depth
                + (f"{name.rsplit('.', 1)[-1]} " if name else "")
                + f"({type(layer).__name__})"
                if name
                else type(layer).__name__
            )
            own = sum(p.size for p in layer._params.values())
            count = "--" if own == 0 and layer._children else f"{own:,}"
            rows.append((label, str(shapes[name]) if name in shapes else "--", count))
        header = ("Layer (type)", "Output shape", "Param #")
        w0 = max(len(r[0]) for r in rows + [header]) + 2
        w1 = max(len(r[1]) for r in rows + [header]) + 2
        width = w0 + w1 + max(len(r[2]) for r in rows + [header])
        lines = ["=" * width, f"{header[0]:<{w0}}{header[1]:<{w1}}{header[2]}", "=" * width]
        lines += [f"{a:<{w0}}{b:<{w1}}{c}" for a, b, c in rows]
        total = sum(p.size for p in params.values())
        nbytes = sum(p.nbytes for p in params.values())
        buffers = sum(b.size for b in self.buffers().values())
        lines += [
            "=" * width,
            f"Total params: {total:,} ({nbytes / 2**20:.2f} MiB)",
            f"Buffers (not trained): {buffers:,}",
            f"Input shape: {shape}, {np.dtype(dtype)}",
            "=" * width,
        ]
        text = "\n".join(lines)
        if print_fn is not None:
            print_fn(text)
        return text


def _fmt(v):
    return str(tuple(v)) if isinstance(v, list) else repr(v) if isinstance(v, str) else str(v)


def settings_repr(required, optional, defaults):
    """``'a, b, k=v'``: required values positionally, optional ones only when not default."""
    parts = [_fmt(v) for v in required]
    parts += [f"{k}={_fmt(v)}" for k, v in optional.items() if defaults.get(k, object()) != v]
    return ", ".join(parts)


class _WeightBias(Layer):
    """A layer with a ``weight`` whose first axis is the output and an optional ``bias`` of that
    length, initialised as torch.nn's Conv2d and Linear: ``kaiming_uniform(a=sqrt(5))`` for the
    weight and U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for the bias."""

    def _make_parameters(self, weight_shape, bias, rng, axes):
        """``axes``: the constructor arguments giving the weight's axes, for the error of a
        weight too large for the machine (``"out_features, in_features"``)."""
        what = f"{type(self).__name__}: the weight ({axes}) of shape"
        self._params["weight"] = _array(weight_shape, self.dtype, what=what)
        if bias:
            self._params["bias"] = _array((weight_shape[0],), self.dtype)
        self._grads = {k: _array(v.shape, v.dtype, 0) for k, v in self._params.items()}
        self._x = None
        if not _building_unallocated():
            self.reset_parameters(rng)

    @property
    def weight(self):
        return self._params["weight"]

    @property
    def bias(self):
        return self._params.get("bias")

    def _accumulate(self, grad_weight, grad_bias):
        """Add one backward pass's parameter gradients (torch's accumulation semantics)."""
        self._grads["weight"] += grad_weight
        if grad_bias is not None:
            self._grads["bias"] += grad_bias

    def reset_parameters(self, rng=None):
        rng = np.random.default_rng(rng)
        init.kaiming_uniform(self.weight, rng, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = init.fan_in_and_fan_out(self.weight.shape)[0]
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0.0
            init.uniform(self.bias, rng, -bound, bound)
        return self
