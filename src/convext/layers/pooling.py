"""Pooling and resampling layers (torch.nn.MaxPool2d, AvgPool2d, LPPool2d, AdaptiveAvgPool2d,
AdaptiveMaxPool2d, MaxUnpool2d, Upsample).

Like the conv layers they accept anything ``convext.functional`` converts (a nested Python
list of numbers becomes a float64 array); they keep the input's shape with ``np.shape``, which
works for both."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .. import functional
from .._typing import ArrayLike, FloatArray, IntPair, Padding
from .._validation import check_positive_int, check_real
from ..functional.pooling import _check_norm_type
from .base import Layer, settings_repr
from .registry import register_layer

__all__ = [
    "AdaptiveAvgPool2D",
    "AdaptiveMaxPool2D",
    "AvgPool2D",
    "GlobalAvgPool2D",
    "LPPool2D",
    "MaxPool2D",
    "MaxUnpool2D",
    "Upsample",
]


def _norm(v):
    """JSON/repr form of an int-or-pair setting."""
    return list(v) if isinstance(v, tuple) else v


@register_layer
class MaxPool2D(Layer):
    """Max pooling (torch.nn.MaxPool2d). ``stride`` defaults to ``kernel_size``; padding (an
    int, a pair or a 4-tuple (top, bottom, left, right)) acts as -inf. Keeps the int64 argmax
    indices (and the input shape) for backward; ties send the
    gradient to the first position in row-major window order. With ``return_indices`` the
    layer returns ``(y, indices)`` (flat ``h * W + w`` in each input plane), as torch, for a
    ``MaxUnpool2D`` later in the network (SegNet); its backward still takes dL/dy only."""

    def __init__(
        self,
        kernel_size: IntPair,
        stride: IntPair | None = None,
        padding: Padding = 0,
        dilation: IntPair = 1,
        ceil_mode: bool = False,
        return_indices: bool = False,
    ) -> None:
        super().__init__()
        self.kernel_size = _norm(kernel_size)
        self.stride = _norm(stride)
        self.padding = _norm(padding)
        self.dilation = _norm(dilation)
        self.ceil_mode = bool(ceil_mode)
        if not isinstance(return_indices, bool):
            raise TypeError(f"MaxPool2D: return_indices must be a bool, got {return_indices!r}")
        self.return_indices = return_indices
        self._indices = self._shape = None

    def _args(self):
        return self.kernel_size, self.stride, self.padding, self.dilation, self.ceil_mode

    def forward(self, x: ArrayLike) -> FloatArray:
        if not self.training and not self.return_indices:
            self._indices = None
            return functional.max_pool2d(x, *self._args())
        y, indices = functional.max_pool2d(x, *self._args(), return_indices=True)
        if self.training:
            self._indices, self._shape = indices, np.shape(x)
        else:
            self._indices = None
        return (y, indices) if self.return_indices else y

    def backward(self, grad_out: ArrayLike, needs_input_grad: bool = True) -> FloatArray | None:
        if self._indices is None:
            raise RuntimeError("MaxPool2D.backward needs a forward pass in training mode first")
        g = functional.max_pool2d_backward(grad_out, self._indices, self._shape)
        self._indices = None
        return g

    def get_config(self):
        config = dict(
            kernel_size=self.kernel_size,
            stride=self.stride,
            padding=self.padding,
            dilation=self.dilation,
            ceil_mode=self.ceil_mode,
        )
        if self.return_indices:  # written only when set: files of earlier versions stay valid
            config["return_indices"] = True
        return config

    def extra_repr(self):
        c = self.get_config()
        return settings_repr(
            [],
            c,
            {
                "stride": None,
                "padding": 0,
                "dilation": 1,
                "ceil_mode": False,
                "return_indices": False,
            },
        )


@register_layer
class AvgPool2D(Layer):
    """Average pooling (torch.nn.AvgPool2d); ``padding`` may also be a 4-tuple (top, bottom,
    left, right). Keeps only the input shape for backward."""

    def __init__(
        self,
        kernel_size: IntPair,
        stride: IntPair | None = None,
        padding: Padding = 0,
        ceil_mode: bool = False,
        count_include_pad: bool = True,
        divisor_override: int | None = None,
    ) -> None:
        super().__init__()
        self.kernel_size = _norm(kernel_size)
        self.stride = _norm(stride)
        self.padding = _norm(padding)
        self.ceil_mode = bool(ceil_mode)
        self.count_include_pad = bool(count_include_pad)
        self.divisor_override = divisor_override
        self._shape = None

    def _args(self):
        return (
            self.kernel_size,
            self.stride,
            self.padding,
            self.ceil_mode,
            self.count_include_pad,
            self.divisor_override,
        )

    def forward(self, x: ArrayLike) -> FloatArray:
        y = functional.avg_pool2d(x, *self._args())
        self._shape = np.shape(x)
        return y

    def backward(self, grad_out: ArrayLike, needs_input_grad: bool = True) -> FloatArray | None:
        return functional.avg_pool2d_backward(grad_out, self._shape, *self._args())

    def get_config(self):
        return dict(
            kernel_size=self.kernel_size,
            stride=self.stride,
            padding=self.padding,
            ceil_mode=self.ceil_mode,
            count_include_pad=self.count_include_pad,
            divisor_override=self.divisor_override,
        )

    def extra_repr(self):
        return settings_repr(
            [],
            self.get_config(),
            {
                "stride": None,
                "padding": 0,
                "ceil_mode": False,
                "count_include_pad": True,
                "divisor_override": None,
            },
        )


@register_layer
class LPPool2D(Layer):
    """Power-average pooling (torch.nn.LPPool2d): ``(sum over the window of x**p) ** (1/p)``.
    Keeps the input and the output for backward. ``padding`` (zeros; not in torch) is as in
    ``functional.lp_pool2d``."""

    def __init__(
        self,
        norm_type: float,
        kernel_size: IntPair,
        stride: IntPair | None = None,
        ceil_mode: bool = False,
        padding: Padding = 0,
    ) -> None:
        super().__init__()
        self.norm_type = _check_norm_type(norm_type, "LPPool2D")  # functional's rule
        self.kernel_size = _norm(kernel_size)
        self.stride = _norm(stride)
        self.ceil_mode = bool(ceil_mode)
        self.padding = _norm(padding)
        self._x = self._y = None

    def forward(self, x: ArrayLike) -> FloatArray:
        y = functional.lp_pool2d(
            x, self.norm_type, self.kernel_size, self.stride, self.ceil_mode, self.padding
        )
        if self.training:
            self._x, self._y = x, y
        return y

    def backward(self, grad_out: ArrayLike, needs_input_grad: bool = True) -> FloatArray | None:
        if self._x is None:
            raise RuntimeError("LPPool2D.backward needs a forward pass in training mode first")
        g = functional.lp_pool2d_backward(
            grad_out,
            self._x,
            self._y,
            self.norm_type,
            self.kernel_size,
            self.stride,
            self.ceil_mode,
            self.padding,
        )
        self._x = self._y = None
        return g

    def get_config(self):
        config = dict(
            norm_type=self.norm_type,
            kernel_size=self.kernel_size,
            stride=self.stride,
            ceil_mode=self.ceil_mode,
        )
        if self.padding != 0:  # written only when set: files of earlier versions stay valid
            config["padding"] = self.padding
        return config

    def extra_repr(self):
        c = self.get_config()
        return settings_repr(
            [c.pop("norm_type")], c, {"stride": None, "ceil_mode": False, "padding": 0}
        )


@register_layer
class GlobalAvgPool2D(Layer):
    """Mean over the whole spatial extent: (N, C, H, W) -> (N, C, 1, 1)
    (torch.nn.AdaptiveAvgPool2d(1))."""

    def __init__(self) -> None:
        super().__init__()
        self._shape = None

    def forward(self, x: ArrayLike) -> FloatArray:
        y = functional.global_avg_pool2d(x)
        self._shape = np.shape(x)
        return y

    def backward(self, grad_out: ArrayLike, needs_input_grad: bool = True) -> FloatArray | None:
        return functional.global_avg_pool2d_backward(grad_out, self._shape)


def _output_size(output_size):
    """JSON form of an adaptive output size: an int, or a pair whose entries are ints or None
    (None: the input's size along that axis). The values are checked by the functional op."""
    if isinstance(output_size, (tuple, list)):
        if len(output_size) != 2:
            raise ValueError(f"output_size must be an int or a pair, got {output_size!r}")
        return [None if v is None else _size_int(v, "output_size") for v in output_size]
    return _size_int(output_size, "output_size")


def _size_int(v, name):
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise TypeError(f"{name} must be an int (or None in a pair), got {v!r}")
    if v < 1:
        raise ValueError(f"{name} must be positive, got {v!r}")
    return int(v)


@register_layer
class AdaptiveAvgPool2D(Layer):
    """Adaptive average pooling to ``output_size`` (torch.nn.AdaptiveAvgPool2d): output row i
    averages input rows ``floor(i*H/OH) <= h < ceil((i+1)*H/OH)`` (likewise columns), for any
    input size. ``output_size``: an int or a pair (an entry None keeps the input's size).
    Keeps only the input shape for backward."""

    def __init__(self, output_size: int | Sequence[int | None]) -> None:
        super().__init__()
        self.output_size = _output_size(output_size)
        self._shape = None

    def forward(self, x: ArrayLike) -> FloatArray:
        y = functional.adaptive_avg_pool2d(x, self.output_size)
        self._shape = np.shape(x) if self.training else None
        return y

    def backward(self, grad_out: ArrayLike, needs_input_grad: bool = True) -> FloatArray | None:
        if self._shape is None:
            raise RuntimeError(
                "AdaptiveAvgPool2D.backward needs a forward pass in training mode first"
            )
        g = functional.adaptive_avg_pool2d_backward(grad_out, self._shape)
        self._shape = None
        return g

    def get_config(self):
        return dict(output_size=self.output_size)

    def extra_repr(self):
        return f"output_size={_fmt_size(self.output_size)}"


def _fmt_size(v):
    return str(tuple(v)) if isinstance(v, list) else str(v)


@register_layer
class AdaptiveMaxPool2D(Layer):
    """Adaptive max pooling to ``output_size`` (torch.nn.AdaptiveMaxPool2d; windows as
    AdaptiveAvgPool2D). Ties go to the first maximum in row-major window order. Keeps the int64
    argmax indices for backward."""

    def __init__(self, output_size: int | Sequence[int | None]) -> None:
        super().__init__()
        self.output_size = _output_size(output_size)
        self._indices = self._shape = None

    def forward(self, x: ArrayLike) -> FloatArray:
        if not self.training:
            self._indices = None
            return functional.adaptive_max_pool2d(x, self.output_size)
        y, self._indices = functional.adaptive_max_pool2d(x, self.output_size, return_indices=True)
        self._shape = np.shape(x)
        return y

    def backward(self, grad_out: ArrayLike, needs_input_grad: bool = True) -> FloatArray | None:
        if self._indices is None:
            raise RuntimeError(
                "AdaptiveMaxPool2D.backward needs a forward pass in training mode first"
            )
        g = functional.adaptive_max_pool2d_backward(grad_out, self._indices, self._shape)
        self._indices = None
        return g

    def get_config(self):
        return dict(output_size=self.output_size)

    def extra_repr(self):
        return f"output_size={_fmt_size(self.output_size)}"


@register_layer
class MaxUnpool2D(Layer):
    """Partial inverse of max pooling (torch.nn.MaxUnpool2d, SegNet's decoder): called as
    ``unpool(x, indices, output_size=None)`` with the indices of ``functional.max_pool2d(...,
    return_indices=True)``; each x value goes to its index in a zero plane of spatial size
    ``(H - 1) * stride - 2 * padding + kernel_size`` (or ``output_size``). Backward returns the
    gradient with respect to x (gathered at the indices), which it keeps."""

    def __init__(
        self,
        kernel_size: IntPair,
        stride: IntPair | None = None,
        padding: Padding = 0,
    ) -> None:
        super().__init__()
        self.kernel_size = _norm(kernel_size)
        self.stride = _norm(stride)
        self.padding = _norm(padding)
        self._indices = self._shape = None

    def __call__(self, x, indices, output_size=None):
        return self.forward(x, indices, output_size)

    def forward(self, x, indices, output_size=None):
        y = functional.max_unpool2d(
            x, indices, self.kernel_size, self.stride, self.padding, output_size
        )
        if self.training:
            self._indices, self._shape = np.array(indices, np.int64), np.shape(x)
        return y

    def backward(self, grad_out: ArrayLike, needs_input_grad: bool = True) -> FloatArray | None:
        if self._indices is None:
            raise RuntimeError("MaxUnpool2D.backward needs a forward pass in training mode first")
        g = functional.max_unpool2d_backward(grad_out, self._indices, self._shape)
        self._indices = self._shape = None
        return g

    def get_config(self):
        return dict(kernel_size=self.kernel_size, stride=self.stride, padding=self.padding)

    def extra_repr(self):
        c = self.get_config()
        return settings_repr([], c, {"stride": None, "padding": 0})


_UPSAMPLE_MODES = ("nearest", "bilinear")


@register_layer
class Upsample(Layer):
    """Resize the (H, W) planes (torch.nn.Upsample) to ``size`` or by ``scale_factor`` (exactly
    one of them), ``mode`` 'nearest' or 'bilinear' (``align_corners``: only with 'bilinear';
    True maps the corner pixels onto each other, as in U-Net's decoder). Keeps only the input
    shape for backward."""

    def __init__(
        self,
        size: int | Sequence[int] | None = None,
        scale_factor: float | Sequence[float] | None = None,
        mode: str = "nearest",
        align_corners: bool | None = None,
    ) -> None:
        super().__init__()
        if mode not in _UPSAMPLE_MODES:
            raise ValueError(
                f"Upsample: mode must be one of "
                f"{', '.join(map(repr, _UPSAMPLE_MODES))}, got {mode!r}"
            )
        if (size is None) == (scale_factor is None):
            raise ValueError(
                f"Upsample: exactly one of size and scale_factor must be given, "
                f"got size={size!r}, scale_factor={scale_factor!r}"
            )
        if align_corners is not None and not isinstance(align_corners, bool):
            raise TypeError(
                f"Upsample: align_corners must be None or a bool, got {align_corners!r}"
            )
        if mode == "nearest" and align_corners is not None:
            raise ValueError("Upsample: align_corners can only be set with mode 'bilinear'")
        if size is not None:  # checked here, not first at forward or save
            pair = isinstance(size, (tuple, list))
            if pair and not 1 <= len(size) <= 2:
                raise ValueError(f"Upsample: size must be a positive int or a pair, got {size!r}")
            size = (
                tuple(check_positive_int(v, "Upsample: size") for v in size)
                if pair
                else check_positive_int(size, "Upsample: size")
            )
        self.size = _norm(size)
        if scale_factor is not None:
            pair = isinstance(scale_factor, (tuple, list))
            if pair and not 1 <= len(scale_factor) <= 2:
                raise ValueError(
                    f"Upsample: scale_factor must be a positive finite number or "
                    f"a pair of them, got {scale_factor!r}"
                )
            factors = [
                check_real("Upsample: scale_factor", s, 0.0, low_open=True)
                for s in (scale_factor if pair else [scale_factor])
            ]
            scale_factor = factors if pair else factors[0]
        self.scale_factor = scale_factor
        self.mode = mode
        self.align_corners = align_corners
        self._shape = None

    def _args(self):
        sf = self.scale_factor
        return dict(
            size=self.size,
            scale_factor=tuple(sf) if isinstance(sf, list) else sf,
            mode=self.mode,
            align_corners=self.align_corners,
        )

    def forward(self, x: ArrayLike) -> FloatArray:
        y = functional.interpolate(x, **self._args())
        self._shape = np.shape(x) if self.training else None
        return y

    def backward(self, grad_out: ArrayLike, needs_input_grad: bool = True) -> FloatArray | None:
        if self._shape is None:
            raise RuntimeError("Upsample.backward needs a forward pass in training mode first")
        g = functional.interpolate_backward(grad_out, self._shape, **self._args())
        self._shape = None
        return g

    def get_config(self):
        return dict(
            size=self.size,
            scale_factor=self.scale_factor,
            mode=self.mode,
            align_corners=self.align_corners,
        )

    def extra_repr(self):
        c = self.get_config()
        return settings_repr([], c, {"size": None, "scale_factor": None, "align_corners": None})
