"""The parameterless op layers (``Add``, ``Sub``, ``Mul``, ``Div``, ``Cat``, ``Reshape``,
``Transpose``, ``Pad``, ``Constant``) that join tensors inside a ``Graph`` (see
``convext.layers.graph``), and their helpers.

Op layers declare ``n_inputs`` (``Add``: 2, ``Cat``: any number >= 1, ``Constant``: 0) and their
backward returns one gradient per input.
"""

from __future__ import annotations

import numpy as np

from .._typing import ArrayLike, FloatArray
from .._validation import check_alloc
from .base import Layer, _array, _building_unallocated, _converted, _dtype
from .registry import MAX_AXIS, MAX_SIZE, register_layer

__all__ = ["Add", "Cat", "Constant", "Div", "Mul", "Pad", "Reshape", "Sub", "Transpose"]


# -- parameterless op layers ---------------------------------------------------------------
def _unbroadcast(g, shape):
    """Sum ``g`` down to ``shape`` (the gradient of numpy broadcasting)."""
    if g.shape == tuple(shape):
        return g
    extra = g.ndim - len(shape)
    g = g.sum(axis=tuple(range(extra))) if extra > 0 else g
    axes = tuple(k for k, n in enumerate(shape) if n == 1 and g.shape[k] != 1)
    return g.sum(axis=axes, keepdims=True) if axes else g


class _Op(Layer):
    """A parameterless node op: keeps what backward needs in training mode only (eval-mode
    forward passes only read, see ``Layer``)."""

    n_inputs = 1
    _saved = None

    def __call__(self, *xs):
        return self.forward(*xs)

    def _keep(self, value):
        self._saved = value if self.training else None

    def _take(self):
        if self._saved is None:
            raise RuntimeError(
                f"{type(self).__name__}.backward needs a forward pass in training mode first"
            )
        saved, self._saved = self._saved, None
        return saved


def _float_pair(a, b, fn):
    a, b = np.asarray(a), np.asarray(b)
    for k, v in (("a", a), ("b", b)):
        if v.dtype not in (np.float32, np.float64):
            raise TypeError(f"{fn}: input {k} must be float32 or float64, got {v.dtype}")
    if a.dtype != b.dtype:
        raise TypeError(f"{fn}: the inputs have dtypes {a.dtype} and {b.dtype}; they must match")
    try:
        shape = np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise ValueError(f"{fn}: shapes {a.shape} and {b.shape} do not broadcast") from None
    check_alloc(shape, f"{fn}: the broadcast result of shape", a.dtype.itemsize)
    return a, b


class _Binary(_Op):
    n_inputs = 2

    def forward(self, a, b):
        a, b = _float_pair(a, b, type(self).__name__)
        self._keep((a, b))
        return self._apply(a, b)

    def backward(self, grad_out: ArrayLike, needs_input_grad: bool = True) -> FloatArray | None:
        a, b = self._take()
        if not needs_input_grad:
            return None, None
        ga, gb = self._grads_of(np.asarray(grad_out), a, b)
        return _unbroadcast(ga, a.shape), _unbroadcast(gb, b.shape)


@register_layer
class Add(_Binary):
    """``a + b`` with numpy (ONNX) broadcasting; a node with two inputs."""

    def _apply(self, a, b):
        return a + b

    def _grads_of(self, g, a, b):
        return g, g


@register_layer
class Sub(_Binary):
    """``a - b`` with broadcasting."""

    def _apply(self, a, b):
        return a - b

    def _grads_of(self, g, a, b):
        return g, -g


@register_layer
class Mul(_Binary):
    """``a * b`` with broadcasting."""

    def _apply(self, a, b):
        return a * b

    def _grads_of(self, g, a, b):
        return g * b, g * a


@register_layer
class Div(_Binary):
    """``a / b`` with broadcasting."""

    def _apply(self, a, b):
        return a / b

    def _grads_of(self, g, a, b):
        gb = -g * a / (b * b)
        return g / b, gb


def _check_axis(axis, what):
    if (
        isinstance(axis, bool)
        or not isinstance(axis, (int, np.integer))
        or not -MAX_AXIS <= axis <= MAX_AXIS
    ):
        raise TypeError(f"{what} must be an int in -{MAX_AXIS}..{MAX_AXIS}, got {axis!r}")
    return int(axis)


def _norm_axis(axis, ndim, what):
    if not -ndim <= axis < ndim:
        raise ValueError(f"{what} {axis} is out of range for {ndim} dimensions")
    return axis % ndim


@register_layer
class Cat(_Op):
    """Its inputs concatenated along ``axis`` (``torch.cat``); any number of inputs."""

    n_inputs = None

    def __init__(self, axis: int = 1) -> None:
        super().__init__()
        self.axis = _check_axis(axis, "Cat: axis")

    def forward(self, *xs):
        if not xs:
            raise TypeError("Cat: xs must hold at least one input (the arrays to join), got none")
        xs = [np.asarray(x) for x in xs]
        ndim = xs[0].ndim
        axis = _norm_axis(self.axis, max(ndim, 1), "Cat: axis")
        shapes = [x.shape for x in xs]
        if any(
            len(s) != ndim or s[:axis] + s[axis + 1 :] != shapes[0][:axis] + shapes[0][axis + 1 :]
            for s in shapes
        ):
            raise ValueError(f"Cat: the inputs' shapes {shapes} differ outside axis {self.axis}")
        if len({x.dtype for x in xs}) != 1:
            raise TypeError(
                f"Cat: the inputs have different dtypes {sorted({str(x.dtype) for x in xs})}"
            )
        out = list(shapes[0])
        if out:
            out[axis] = sum(s[axis] for s in shapes)
        check_alloc(out, "Cat: the joined output of shape", xs[0].dtype.itemsize)
        self._keep((axis, [s[axis] for s in shapes]))
        return np.concatenate(xs, axis=axis)

    def backward(self, grad_out: ArrayLike, needs_input_grad: bool = True) -> FloatArray | None:
        axis, sizes = self._take()
        if not needs_input_grad:
            return (None,) * len(sizes)
        return tuple(np.split(np.asarray(grad_out), np.cumsum(sizes)[:-1], axis=axis))

    def get_config(self):
        return {"axis": self.axis}

    def extra_repr(self):
        return f"axis={self.axis}"


def _int_list(v, what, lo, hi, max_len):
    if (
        not isinstance(v, (list, tuple))
        or len(v) > max_len
        or not all(
            isinstance(e, (int, np.integer)) and not isinstance(e, bool) and lo <= e <= hi
            for e in v
        )
    ):
        raise ValueError(
            f"{what} must be a list of at most {max_len} ints in {lo}..{hi}, got {v!r:.140}"
        )
    return [int(e) for e in v]


@register_layer
class Reshape(_Op):
    """``x.reshape(shape)`` with ONNX's conventions: an entry 0 copies the input's size at that
    position (so ``[0, -1]`` keeps the batch and flattens the rest), one entry -1 is inferred."""

    def __init__(self, shape):
        super().__init__()
        self.shape = _int_list(shape, "Reshape: shape", -1, MAX_SIZE, MAX_AXIS)
        if self.shape.count(-1) > 1:
            raise ValueError(f"Reshape: shape {self.shape} has more than one -1")

    def target(self, in_shape):
        out = []
        for k, s in enumerate(self.shape):
            if s == 0:
                if k >= len(in_shape):
                    raise ValueError(
                        f"Reshape: shape {self.shape} copies dimension {k} of an "
                        f"input with {len(in_shape)} dimensions"
                    )
                s = in_shape[k]
            out.append(s)
        return tuple(out)

    def forward(self, x: ArrayLike) -> FloatArray:
        x = np.asarray(x)
        shape = self.target(x.shape)
        if not x.flags.c_contiguous:  # (a broadcast view of a few bytes is copied whole)
            check_alloc(x.shape, "Reshape: the copy of its input, of shape", x.dtype.itemsize)
        try:
            y = x.reshape(shape)
        except ValueError:
            raise ValueError(f"Reshape: cannot reshape {x.shape} to {list(shape)}") from None
        self._keep(x.shape)
        return y

    def backward(self, grad_out: ArrayLike, needs_input_grad: bool = True) -> FloatArray | None:
        shape = self._take()
        return np.asarray(grad_out).reshape(shape) if needs_input_grad else None

    def get_config(self):
        return {"shape": list(self.shape)}

    def extra_repr(self):
        return f"shape={tuple(self.shape)}"


@register_layer
class Transpose(_Op):
    """``x.transpose(perm)``."""

    def __init__(self, perm):
        super().__init__()
        self.perm = _int_list(perm, "Transpose: perm", 0, MAX_AXIS - 1, MAX_AXIS)
        if sorted(self.perm) != list(range(len(self.perm))):
            raise ValueError(f"Transpose: perm {self.perm} is not a permutation")

    def forward(self, x: ArrayLike) -> FloatArray:
        x = np.asarray(x)
        if x.ndim != len(self.perm):
            raise ValueError(f"Transpose: perm {self.perm} for an input with {x.ndim} dimensions")
        check_alloc(x.shape, "Transpose: the output (its input permuted) of shape", x.itemsize)
        self._keep(True)
        return np.ascontiguousarray(x.transpose(self.perm))

    def backward(self, grad_out: ArrayLike, needs_input_grad: bool = True) -> FloatArray | None:
        self._take()
        if not needs_input_grad:
            return None
        return np.ascontiguousarray(np.asarray(grad_out).transpose(np.argsort(self.perm)))

    def get_config(self):
        return {"perm": list(self.perm)}

    def extra_repr(self):
        return f"perm={tuple(self.perm)}"


_PAD_MODES = {"constant": "constant", "reflect": "reflect", "edge": "edge"}


@register_layer
class Pad(_Op):
    """Pads the last ``len(pads) // 2`` axes: ``pads`` lists, for those axes in order, the
    (before, after) amounts, all >= 0 (``[top, bottom, left, right]`` for the last two).
    ``mode``: ``'constant'`` (with ``value``), ``'reflect'`` (mirror without repeating the
    edge) or ``'edge'`` (repeat the edge), as ONNX's Pad and numpy's modes of those names."""

    def __init__(self, pads, mode="constant", value=0.0):
        super().__init__()
        self.pads = _int_list(pads, "Pad: pads", 0, MAX_SIZE, 2 * MAX_AXIS)
        if len(self.pads) % 2:
            raise ValueError(f"Pad: pads must have an even length, got {self.pads}")
        if mode not in _PAD_MODES:
            raise ValueError(f"Pad: mode must be 'constant', 'reflect' or 'edge', got {mode!r:.50}")
        self.mode = mode
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float, str, np.number))
            or (isinstance(value, str) and value not in ("inf", "-inf"))
        ):
            raise TypeError(f"Pad: value must be a number, got {value!r:.50}")
        self.value = float(value)  # -inf: the padding of a max pooling
        if np.isnan(self.value):
            raise ValueError("Pad: value is NaN")

    def _widths(self, ndim):
        k = len(self.pads) // 2
        if k > ndim:
            raise ValueError(f"Pad: {k} padded axes for an input with {ndim} dimensions")
        return [(0, 0)] * (ndim - k) + [(self.pads[2 * i], self.pads[2 * i + 1]) for i in range(k)]

    def forward(self, x: ArrayLike) -> FloatArray:
        x = np.asarray(x)
        widths = self._widths(x.ndim)
        if self.mode == "reflect" and any(
            max(b, a) >= n and (b or a) for (b, a), n in zip(widths, x.shape, strict=True)
        ):
            raise ValueError(
                f"Pad: reflect padding {self.pads} needs each padded axis longer "
                f"than its padding, the input is {x.shape}"
            )
        if self.mode == "edge" and any(
            (b or a) and n == 0 for (b, a), n in zip(widths, x.shape, strict=True)
        ):
            raise ValueError(f"Pad: edge padding of an empty axis, input {x.shape}")
        padded = tuple(n + b + a for (b, a), n in zip(widths, x.shape, strict=True))
        check_alloc(padded, "Pad: the padded output of shape", x.dtype.itemsize)
        self._keep((x.shape, widths))
        if self.mode == "constant":
            return np.pad(x, widths, mode="constant", constant_values=self.value)
        return np.pad(x, widths, mode=self.mode)

    def backward(self, grad_out: ArrayLike, needs_input_grad: bool = True) -> FloatArray | None:
        shape, widths = self._take()
        if not needs_input_grad:
            return None
        g = np.asarray(grad_out)
        inner = tuple(slice(b, b + n) for (b, a), n in zip(widths, shape, strict=True))
        gx = g[inner].copy()
        if self.mode == "constant":
            return gx
        # reflect/edge: each padded element's gradient goes to the input element it copies;
        # handled one axis at a time, last axis first (np.pad pads axis by axis in order)
        return _pad_copy_backward(g, shape, widths, self.mode)

    def get_config(self):
        v = self.value
        return {
            "pads": list(self.pads),
            "mode": self.mode,
            "value": v if np.isfinite(v) else ("inf" if v > 0 else "-inf"),
        }

    def extra_repr(self):
        return f"pads={tuple(self.pads)}, mode={self.mode!r}" + (
            f", value={self.value}" if self.value else ""
        )


def _pad_copy_backward(g, shape, widths, mode):
    """Adjoint of ``np.pad(mode=reflect|edge)``: np.pad pads axis 0 first, then axis 1... so
    the adjoint folds the last axis first."""
    for ax in reversed(range(len(shape))):
        b, a = widths[ax]
        if not (b or a):
            continue
        n = shape[ax]
        idx = np.arange(-b, n + a)
        if mode == "edge":
            src = np.clip(idx, 0, n - 1)
        else:  # reflect without the edge: period 2(n-1)
            period = 2 * (n - 1)
            m = np.mod(idx, period) if period else np.zeros_like(idx)
            src = np.where(m < n, m, period - m)
        out_shape = list(g.shape)
        out_shape[ax] = n
        out = np.zeros(out_shape, g.dtype)
        gm = np.moveaxis(g, ax, 0)
        om = np.moveaxis(out, ax, 0)
        np.add.at(om, src, gm)
        g = out
    return g


@register_layer
class Constant(_Op):
    """A node with no input that outputs its buffer ``value`` (shape ``shape``, float
    ``dtype``): a constant operand of ``Add``, ``Mul``... (a per-channel scale is shape
    ``[C, 1, 1]``). Saved with the model; not trained."""

    n_inputs = 0

    def __init__(self, shape, dtype=np.float32, value=None):
        super().__init__()
        self.shape = _int_list(shape, "Constant: shape", 0, MAX_SIZE, MAX_AXIS)
        self.dtype = _dtype(dtype)
        self._buffers = {"value": _array(tuple(self.shape), self.dtype, 0, "Constant: shape")}
        if value is not None and not _building_unallocated():
            v = np.asarray(value)
            if v.shape != tuple(self.shape):
                raise ValueError(
                    f"Constant: value has shape {v.shape}, expected {tuple(self.shape)}"
                )
            if not np.can_cast(v.dtype, self.dtype, casting="same_kind"):
                raise TypeError(
                    f"Constant: value has dtype {v.dtype}, which is not converted to {self.dtype}"
                )
            # a finite float64 beyond float32's range is a ValueError, not an inf
            np.copyto(self._buffers["value"], _converted("value", v, self.dtype, "Constant"))

    @classmethod
    def from_config(cls, config):
        return cls(config["shape"], config.get("dtype", "float32"))

    _config_fields = ("shape", "dtype")

    @property
    def value(self):
        return self._buffers["value"]

    def forward(self):
        # a read-only view: a graph output (or a view of one, through Reshape) that is this
        # value would otherwise let `out += 1` change the model's saved constant
        v = self._buffers["value"].view()
        v.flags.writeable = False
        return v

    def backward(self, grad_out: ArrayLike, needs_input_grad: bool = True) -> FloatArray | None:
        return ()

    def get_config(self):
        return {"shape": list(self.shape), "dtype": self.dtype.name}

    def extra_repr(self):
        return f"shape={tuple(self.shape)}"
