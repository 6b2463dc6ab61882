"""Activation layers: elementwise functions from ``convext.functional``."""
from .. import functional
from .base import Layer
from .registry import register_layer

__all__ = ["ELU", "LeakyReLU", "LogSoftmax", "ReLU", "Sigmoid", "Softmax", "Tanh"]


class _OnInput(Layer):
    """An activation whose backward needs its input."""

    def __init__(self):
        super().__init__()
        self._x = None

    def forward(self, x):
        y = self._f(x)
        self._x = x if self.training else None
        return y

    def backward(self, grad_out, needs_input_grad=True):
        if self._x is None:
            raise RuntimeError(f"{type(self).__name__}.backward needs a forward pass in "
                               f"training mode first")
        g = self._b(grad_out, self._x)
        self._x = None
        return g


class _OnOutput(Layer):
    """An activation whose backward needs its output."""

    def __init__(self):
        super().__init__()
        self._y = None

    def forward(self, x):
        y = self._f(x)
        self._y = y if self.training else None
        return y

    def backward(self, grad_out, needs_input_grad=True):
        if self._y is None:
            raise RuntimeError(f"{type(self).__name__}.backward needs a forward pass in "
                               f"training mode first")
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

    def __init__(self, negative_slope=0.01):
        super().__init__()
        self.negative_slope = float(negative_slope)

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

    def __init__(self, alpha=1.0):
        super().__init__()
        self.alpha = float(alpha)

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
    def __init__(self, axis=1):
        super().__init__()
        self.axis = int(axis)

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
