"""Convolution layer."""

from __future__ import annotations

import numpy as np
from numpy.typing import DTypeLike

from .. import functional
from .._typing import ArrayLike, FloatArray, IntPair, Padding
from .._validation import as_pair, check_padding, check_positive_int
from .base import _array, _building_unallocated, _dtype, _WeightBias, settings_repr
from .registry import register_layer

__all__ = ["Conv2D", "ConvTranspose2D"]


@register_layer
class Conv2D(_WeightBias):
    """2-D convolution over NCHW input, as ``torch.nn.Conv2d``.

    Parameters: ``weight`` (out_channels, in_channels // groups, kH, kW) and ``bias``
    (out_channels,), initialised like torch: ``kaiming_uniform(a=sqrt(5))`` for the weight and
    U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for the bias, drawn from ``rng`` (Generator or seed).

    Shape: (N, in_channels, H, W) -> (N, out_channels, OH, OW) with
    ``OH = floor((H + 2*padding - dilation*(kH - 1) - 1) / stride) + 1`` (likewise OW).
    ``padding`` may also be a 4-tuple (top, bottom, left, right), ``'same'`` or ``'valid'``.
    Keeps the input for backward.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: IntPair,
        stride: IntPair = 1,
        padding: Padding = 0,
        dilation: IntPair = 1,
        groups: int = 1,
        bias: bool = True,
        dtype: DTypeLike = np.float32,
        rng: np.random.Generator | int | None = None,
    ) -> None:
        super().__init__()
        self.in_channels = check_positive_int(in_channels, "in_channels")
        self.out_channels = check_positive_int(out_channels, "out_channels")
        self.kernel_size = as_pair(kernel_size, "kernel_size")
        self.stride = as_pair(stride, "stride")
        self.dilation = as_pair(dilation, "dilation")
        self.groups = check_positive_int(groups, "groups")
        self.padding = check_padding(padding, self.stride)
        if self.in_channels % self.groups or self.out_channels % self.groups:
            raise ValueError(
                f"groups={self.groups} must divide in_channels={in_channels} and "
                f"out_channels={out_channels}"
            )
        self.dtype = _dtype(dtype)
        shape = (self.out_channels, self.in_channels // self.groups) + self.kernel_size
        self._make_parameters(shape, bias, rng, "out_channels, in_channels // groups, *kernel_size")

    def _geom(self):
        return self.stride, self.padding, self.dilation, self.groups

    def forward(self, x: ArrayLike) -> FloatArray:
        y = functional.conv2d(x, self.weight, self.bias, *self._geom())
        self._x = x if self.training else None
        return y

    def backward(self, grad_out: ArrayLike, needs_input_grad: bool = True) -> FloatArray | None:
        if self._x is None:
            raise RuntimeError("Conv2D.backward needs a forward pass in training mode first")
        gx, gw, gb = functional.conv2d_backward(
            grad_out,
            self._x,
            self.weight,
            *self._geom(),
            needs_input_grad=needs_input_grad,
            needs_bias_grad=self.bias is not None,
        )
        self._accumulate(gw, gb)
        self._x = None
        return gx

    def get_config(self):
        return dict(
            in_channels=self.in_channels,
            out_channels=self.out_channels,
            kernel_size=list(self.kernel_size),
            stride=list(self.stride),
            padding=self.padding if isinstance(self.padding, str) else list(self.padding),
            dilation=list(self.dilation),
            groups=self.groups,
            bias=self.bias is not None,
            dtype=self.dtype.name,
        )

    def extra_repr(self):
        c = self.get_config()
        s = settings_repr(
            [self.in_channels, self.out_channels], {"kernel_size": c["kernel_size"]}, {}
        )
        rest = settings_repr(
            [],
            {k: c[k] for k in ("stride", "padding", "dilation", "groups", "bias", "dtype")},
            {
                "stride": [1, 1],
                "padding": [0, 0],
                "dilation": [1, 1],
                "groups": 1,
                "bias": True,
                "dtype": "float32",
            },
        )
        return s + (", " + rest if rest else "")


@register_layer
class ConvTranspose2D(_WeightBias):
    """2-D transposed convolution over NCHW input, as ``torch.nn.ConvTranspose2d``.

    Parameters: ``weight`` (in_channels, out_channels // groups, kH, kW) (torch's layout) and
    ``bias`` (out_channels,), initialised like torch: ``kaiming_uniform(a=sqrt(5))`` for the
    weight and U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for the bias, with torch's fan_in of this
    layout, ``out_channels // groups * kH * kW``; drawn from ``rng`` (Generator or seed).

    Shape: (N, in_channels, H, W) -> (N, out_channels, OH, OW) with
    ``OH = (H - 1)*stride - 2*padding + dilation*(kH - 1) + output_padding + 1`` (likewise
    OW); output_padding must be smaller than the stride or the dilation. Keeps the input for
    backward. See ``functional.conv_transpose2d``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: IntPair,
        stride: IntPair = 1,
        padding: IntPair = 0,
        output_padding: IntPair = 0,
        groups: int = 1,
        bias: bool = True,
        dilation: IntPair = 1,
        dtype: DTypeLike = np.float32,
        rng: np.random.Generator | int | None = None,
    ) -> None:
        super().__init__()
        self.in_channels = check_positive_int(in_channels, "in_channels")
        self.out_channels = check_positive_int(out_channels, "out_channels")
        self.kernel_size = as_pair(kernel_size, "kernel_size")
        self.stride = as_pair(stride, "stride")
        self.padding = as_pair(padding, "padding", allow_zero=True)
        self.output_padding = as_pair(output_padding, "output_padding", allow_zero=True)
        self.dilation = as_pair(dilation, "dilation")
        self.groups = check_positive_int(groups, "groups")
        if self.in_channels % self.groups or self.out_channels % self.groups:
            raise ValueError(
                f"groups={self.groups} must divide in_channels={in_channels} and "
                f"out_channels={out_channels}"
            )
        if any(
            op >= s and op >= d
            for op, s, d in zip(self.output_padding, self.stride, self.dilation, strict=True)
        ):
            raise ValueError(
                f"output_padding {self.output_padding} must be smaller than "
                f"either the stride {self.stride} or the dilation {self.dilation}"
            )
        self.dtype = _dtype(dtype)
        shape = (self.in_channels, self.out_channels // self.groups) + self.kernel_size
        self._make_parameters(shape, bias, rng, "in_channels, out_channels // groups, *kernel_size")

    def _make_parameters(self, weight_shape, bias, rng, axes):
        # as _WeightBias's, but the bias has out_channels entries (weight.shape[1] * groups)
        what = f"{type(self).__name__}: the weight ({axes}) of shape"
        self._params["weight"] = _array(weight_shape, self.dtype, what=what)
        if bias:
            self._params["bias"] = _array((self.out_channels,), self.dtype)
        self._grads = {k: _array(v.shape, v.dtype, 0) for k, v in self._params.items()}
        self._x = None
        if not _building_unallocated():
            self.reset_parameters(rng)

    def _geom(self):
        return self.stride, self.padding, self.output_padding, self.groups, self.dilation

    def forward(self, x: ArrayLike) -> FloatArray:
        y = functional.conv_transpose2d(x, self.weight, self.bias, *self._geom())
        self._x = x if self.training else None
        return y

    def backward(self, grad_out: ArrayLike, needs_input_grad: bool = True) -> FloatArray | None:
        if self._x is None:
            raise RuntimeError(
                "ConvTranspose2D.backward needs a forward pass in training mode first"
            )
        gx, gw, gb = functional.conv_transpose2d_backward(
            grad_out,
            self._x,
            self.weight,
            *self._geom(),
            needs_input_grad=needs_input_grad,
            needs_bias_grad=self.bias is not None,
        )
        self._accumulate(gw, gb)
        self._x = None
        return gx

    def get_config(self):
        return dict(
            in_channels=self.in_channels,
            out_channels=self.out_channels,
            kernel_size=list(self.kernel_size),
            stride=list(self.stride),
            padding=list(self.padding),
            output_padding=list(self.output_padding),
            groups=self.groups,
            bias=self.bias is not None,
            dilation=list(self.dilation),
            dtype=self.dtype.name,
        )

    def extra_repr(self):
        c = self.get_config()
        s = settings_repr(
            [self.in_channels, self.out_channels], {"kernel_size": c["kernel_size"]}, {}
        )
        rest = settings_repr(
            [],
            {
                k: c[k]
                for k in (
                    "stride",
                    "padding",
                    "output_padding",
                    "dilation",
                    "groups",
                    "bias",
                    "dtype",
                )
            },
            {
                "stride": [1, 1],
                "padding": [0, 0],
                "output_padding": [0, 0],
                "dilation": [1, 1],
                "groups": 1,
                "bias": True,
                "dtype": "float32",
            },
        )
        return s + (", " + rest if rest else "")
