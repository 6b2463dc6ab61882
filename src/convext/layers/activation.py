"""Activation layers: elementwise functions from ``convext.functional``."""

from __future__ import annotations

from .. import functional
from .._typing import ArrayLike, FloatArray
from .._validation import _as_int, check_real
from .base import Layer
from .registry import register_layer

__all__ = [
    "ELU",
    "GELU",
    "Hardsigmoid",
    "Hardswish",
    "Hardtanh",
    "LeakyReLU",
    "LogSoftmax",
    "ReLU",
    "ReLU6",
    "SiLU",
    "Sigmoid",
    "Softmax",
    "Tanh",
]


class _OnInput(Layer):
    """An activation whose backward needs its input."""

    def __init__(self) -> None:
        super().__init__()
        self._x = None

    def forward(self, x: ArrayLike) -> FloatArray:
        y = self._f(x)
        self._x = x if self.training else None
        return y

    def backward(self, grad_out: ArrayLike, needs_input_grad: bool = True) -> FloatArray | None:
        if self._x is None:
            raise RuntimeError(
                f"{type(self).__name__}.backward needs a forward pass in training mode first"
            )
        g = self._b(grad_out, self._x)
        self._x = None
        return g


class _OnOutput(Layer):
    """An activation whose backward needs its output."""

    def __init__(self) -> None:
        super().__init__()
        self._y = None

    def forward(self, x: ArrayLike) -> FloatArray:
        y = self._f(x)
        self._y = y if self.training else None
        return y

    def backward(self, grad_out: ArrayLike, needs_input_grad: bool = True) -> FloatArray | None:
        if self._y is None:
            raise RuntimeError(
                f"{type(self).__name__}.backward needs a forward pass in training mode first"
            )
        g = self._b(grad_out, self._y)
        self._y = None
        return g


@register_layer
class ReLU(_OnInput):
    """``max(x, 0)``; the gradient at 0 is 0, as in torch."""

    def _f(self, x):
        return functional.relu(x)

    def _b(self, g, x):
        return functional.relu_backward(g, x)


@register_layer
class LeakyReLU(_OnInput):
    """``x if x > 0 else negative_slope * x``."""

    def __init__(self, negative_slope: float = 0.01) -> None:
        super().__init__()
        self.negative_slope = check_real("LeakyReLU: negative_slope", negative_slope)

    def _f(self, x):
        return functional.leaky_relu(x, self.negative_slope)

    def _b(self, g, x):
        return functional.leaky_relu_backward(g, x, self.negative_slope)

    def get_config(self):
        return dict(negative_slope=self.negative_slope)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}"


@register_layer
class ELU(_OnInput):
    """``x if x > 0 else alpha * (exp(x) - 1)``."""

    def __init__(self, alpha: float = 1.0) -> None:
        super().__init__()
        self.alpha = check_real("ELU: alpha", alpha)

    def _f(self, x):
        return functional.elu(x, self.alpha)

    def _b(self, g, x):
        return functional.elu_backward(g, x, self.alpha)

    def get_config(self):
        return dict(alpha=self.alpha)

    def extra_repr(self):
        return f"alpha={self.alpha}"


@register_layer
class Sigmoid(_OnOutput):
    """``1 / (1 + exp(-x))``, computed without overflow."""

    def _f(self, x):
        return functional.sigmoid(x)

    def _b(self, g, y):
        return functional.sigmoid_backward(g, y)


@register_layer
class Tanh(_OnOutput):
    def _f(self, x):
        return functional.tanh(x)

    def _b(self, g, y):
        return functional.tanh_backward(g, y)


class _AlongAxis(_OnOutput):
    def __init__(self, axis: int = 1) -> None:
        super().__init__()
        self.axis = _as_int(axis, f"{type(self).__name__}: axis")  # int(1.9) was 1

    def get_config(self):
        return dict(axis=self.axis)

    def extra_repr(self):
        return f"axis={self.axis}"


@register_layer
class Softmax(_AlongAxis):
    """Softmax along ``axis`` (default 1: the class/channel axis of (N, C) or (N, C, H, W))."""

    def _f(self, x):
        return functional.softmax(x, self.axis)

    def _b(self, g, y):
        return functional.softmax_backward(g, y, self.axis)


@register_layer
class LogSoftmax(_AlongAxis):
    """log(softmax(x)) along ``axis`` (default 1), computed stably."""

    def _f(self, x):
        return functional.log_softmax(x, self.axis)

    def _b(self, g, y):
        return functional.log_softmax_backward(g, y, self.axis)


@register_layer
class Hardtanh(_OnInput):
    """``clamp(x, min_val, max_val)`` (torch.nn.Hardtanh); the gradient is 0 outside the open
    interval and at both boundaries, as in torch."""

    def __init__(self, min_val: float = -1.0, max_val: float = 1.0) -> None:
        super().__init__()
        self.min_val = check_real("Hardtanh: min_val", min_val)
        self.max_val = check_real("Hardtanh: max_val", max_val)
        if self.min_val > self.max_val:
            raise ValueError(
                f"Hardtanh: min_val must be <= max_val, got {min_val!r} and {max_val!r}"
            )

    def _f(self, x):
        return functional.hardtanh(x, self.min_val, self.max_val)

    def _b(self, g, x):
        return functional.hardtanh_backward(g, x, self.min_val, self.max_val)

    def get_config(self):
        return dict(min_val=self.min_val, max_val=self.max_val)

    def extra_repr(self):
        return f"min_val={self.min_val}, max_val={self.max_val}"


@register_layer
class ReLU6(_OnInput):
    """``min(max(x, 0), 6)`` (torch.nn.ReLU6, MobileNetV2's activation); gradient 0 at 0 and
    6."""

    def _f(self, x):
        return functional.relu6(x)

    def _b(self, g, x):
        return functional.relu6_backward(g, x)


@register_layer
class SiLU(_OnInput):
    """``x * sigmoid(x)`` (torch.nn.SiLU, also called swish)."""

    def _f(self, x):
        return functional.silu(x)

    def _b(self, g, x):
        return functional.silu_backward(g, x)


@register_layer
class Hardswish(_OnInput):
    """``x * relu6(x + 3) / 6`` (torch.nn.Hardswish, MobileNetV3)."""

    def _f(self, x):
        return functional.hardswish(x)

    def _b(self, g, x):
        return functional.hardswish_backward(g, x)


@register_layer
class Hardsigmoid(_OnInput):
    """``relu6(x + 3) / 6`` (torch.nn.Hardsigmoid)."""

    def _f(self, x):
        return functional.hardsigmoid(x)

    def _b(self, g, x):
        return functional.hardsigmoid_backward(g, x)


@register_layer
class GELU(_OnInput):
    """``x * Phi(x)``, Phi the standard normal CDF (torch.nn.GELU); ``approximate='tanh'``
    uses torch's tanh approximation."""

    def __init__(self, approximate: str = "none") -> None:
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def _f(self, x):
        return functional.gelu(x, self.approximate)

    def _b(self, g, x):
        return functional.gelu_backward(g, x, self.approximate)

    def get_config(self):
        return dict(approximate=self.approximate)

    def extra_repr(self):
        return "" if self.approximate == "none" else f"approximate={self.approximate!r}"
