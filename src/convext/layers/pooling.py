"""Pooling layers (torch.nn.MaxPool2d, AvgPool2d, LPPool2d, AdaptiveAvgPool2d(1)).

Like the conv layers they accept anything ``convext.functional`` converts (a nested Python
list of numbers becomes a float64 array); they keep the input's shape with ``np.shape``, which
works for both."""
import numpy as np

from .. import functional
from .base import Layer, settings_repr
from .registry import register_layer

__all__ = ["AvgPool2D", "GlobalAvgPool2D", "LPPool2D", "MaxPool2D"]


def _norm(v):
    """JSON/repr form of an int-or-pair setting."""
    return list(v) if isinstance(v, tuple) else v


@register_layer
class MaxPool2D(Layer):
    """Max pooling (torch.nn.MaxPool2d). ``stride`` defaults to ``kernel_size``; padding acts
    as -inf. Keeps the int64 argmax indices (and the input shape) for backward; ties send the
    gradient to the first position in row-major window order."""

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
        super().__init__()
        self.kernel_size = _norm(kernel_size)
        self.stride = _norm(stride)
        self.padding = _norm(padding)
        self.dilation = _norm(dilation)
        self.ceil_mode = bool(ceil_mode)
        self._indices = self._shape = None

    def _args(self):
        return self.kernel_size, self.stride, self.padding, self.dilation, self.ceil_mode

    def forward(self, x):
        if not self.training:
            self._indices = None
            return functional.max_pool2d(x, *self._args())
        y, self._indices = functional.max_pool2d(x, *self._args(), return_indices=True)
        self._shape = np.shape(x)
        return y

    def backward(self, grad_out, needs_input_grad=True):
        if self._indices is None:
            raise RuntimeError("MaxPool2D.backward needs a forward pass in training mode first")
        g = functional.max_pool2d_backward(grad_out, self._indices, self._shape)
        self._indices = None
        return g

    def get_config(self):
        return dict(kernel_size=self.kernel_size, stride=self.stride, padding=self.padding,
                    dilation=self.dilation, ceil_mode=self.ceil_mode)

    def extra_repr(self):
        c = self.get_config()
        return settings_repr([], c, {"stride": None, "padding": 0, "dilation": 1,
                                     "ceil_mode": False})


@register_layer
class AvgPool2D(Layer):
    """Average pooling (torch.nn.AvgPool2d). Keeps only the input shape for backward."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False,
                 count_include_pad=True, divisor_override=None):
        super().__init__()
        self.kernel_size = _norm(kernel_size)
        self.stride = _norm(stride)
        self.padding = _norm(padding)
        self.ceil_mode = bool(ceil_mode)
        self.count_include_pad = bool(count_include_pad)
        self.divisor_override = divisor_override
        self._shape = None

    def _args(self):
        return (self.kernel_size, self.stride, self.padding, self.ceil_mode,
                self.count_include_pad, self.divisor_override)

    def forward(self, x):
        y = functional.avg_pool2d(x, *self._args())
        self._shape = np.shape(x)
        return y

    def backward(self, grad_out, needs_input_grad=True):
        return functional.avg_pool2d_backward(grad_out, self._shape, *self._args())

    def get_config(self):
        return dict(kernel_size=self.kernel_size, stride=self.stride, padding=self.padding,
                    ceil_mode=self.ceil_mode, count_include_pad=self.count_include_pad,
                    divisor_override=self.divisor_override)

    def extra_repr(self):
        return settings_repr([], self.get_config(),
                             {"stride": None, "padding": 0, "ceil_mode": False,
                              "count_include_pad": True, "divisor_override": None})


@register_layer
class LPPool2D(Layer):
    """Power-average pooling (torch.nn.LPPool2d): ``(sum over the window of x**p) ** (1/p)``.
    Keeps the input and the output for backward."""

    def __init__(self, norm_type, kernel_size, stride=None, ceil_mode=False):
        super().__init__()
        self.norm_type = float(norm_type)
        self.kernel_size = _norm(kernel_size)
        self.stride = _norm(stride)
        self.ceil_mode = bool(ceil_mode)
        self._x = self._y = None

    def forward(self, x):
        y = functional.lp_pool2d(x, self.norm_type, self.kernel_size, self.stride, self.ceil_mode)
        if self.training:
            self._x, self._y = x, y
        return y

    def backward(self, grad_out, needs_input_grad=True):
        if self._x is None:
            raise RuntimeError("LPPool2D.backward needs a forward pass in training mode first")
        g = functional.lp_pool2d_backward(grad_out, self._x, self._y, self.norm_type,
                                          self.kernel_size, self.stride, self.ceil_mode)
        self._x = self._y = None
        return g

    def get_config(self):
        return dict(norm_type=self.norm_type, kernel_size=self.kernel_size, stride=self.stride,
                    ceil_mode=self.ceil_mode)

    def extra_repr(self):
        c = self.get_config()
        return settings_repr([c.pop("norm_type")], c, {"stride": None, "ceil_mode": False})


@register_layer
class GlobalAvgPool2D(Layer):
    """Mean over the whole spatial extent: (N, C, H, W) -> (N, C, 1, 1)
    (torch.nn.AdaptiveAvgPool2d(1))."""

    def __init__(self):
        super().__init__()
        self._shape = None

    def forward(self, x):
        y = functional.global_avg_pool2d(x)
        self._shape = np.shape(x)
        return y

    def backward(self, grad_out, needs_input_grad=True):
        return functional.global_avg_pool2d_backward(grad_out, self._shape)
