"""Fully connected layer and Flatten."""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import DTypeLike

from .. import functional
from .._typing import ArrayLike, FloatArray
from .._validation import _as_int, check_positive_int
from .base import Layer, _dtype, _WeightBias, settings_repr
from .registry import register_layer

__all__ = ["Dense", "Flatten"]


@register_layer
class Dense(_WeightBias):
    """``y = x @ weight.T + bias``, as ``torch.nn.Linear``.

    Parameters: ``weight`` (out_features, in_features) and ``bias`` (out_features,), initialised
    like torch (``kaiming_uniform(a=sqrt(5))``, bias U(-1/sqrt(in_features), 1/sqrt(in_features)))
    from ``rng``. Shape: (..., in_features) -> (..., out_features). The products run on
    convext's GEMM (``functional.linear``). Keeps the input for backward.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        dtype: DTypeLike = np.float32,
        rng: np.random.Generator | int | None = None,
    ) -> None:
        super().__init__()
        self.in_features = check_positive_int(in_features, "in_features")
        self.out_features = check_positive_int(out_features, "out_features")
        self.dtype = _dtype(dtype)
        self._make_parameters(
            (self.out_features, self.in_features), bias, rng, "out_features, in_features"
        )

    def forward(self, x: ArrayLike) -> FloatArray:
        x = np.asarray(x)
        if x.ndim < 1 or x.shape[-1] != self.in_features:
            raise ValueError(f"Dense: x must have shape (..., {self.in_features}), got {x.shape}")
        if x.dtype != self.dtype:
            raise TypeError(
                f"Dense: x has dtype {x.dtype} but the layer's parameters are "
                f"{self.dtype}; convert x or build the layer with dtype={x.dtype}"
            )
        y = functional.linear(x, self.weight, self.bias)
        self._x = x if self.training else None
        return y

    def backward(self, grad_out: ArrayLike, needs_input_grad: bool = True) -> FloatArray | None:
        if self._x is None:
            raise RuntimeError("Dense.backward needs a forward pass in training mode first")
        g = np.asarray(grad_out)
        x = self._x
        if g.shape != x.shape[:-1] + (self.out_features,):
            raise ValueError(
                f"Dense.backward: grad_out must have shape "
                f"{x.shape[:-1] + (self.out_features,)}, got {g.shape}"
            )
        gx, gw, gb = functional.linear_backward(
            g,
            x,
            self.weight,
            needs_input_grad=needs_input_grad,
            needs_bias_grad=self.bias is not None,
        )
        self._accumulate(gw, gb)
        self._x = None
        return gx

    def get_config(self):
        return dict(
            in_features=self.in_features,
            out_features=self.out_features,
            bias=self.bias is not None,
            dtype=self.dtype.name,
        )

    def extra_repr(self):
        return (
            f"in_features={self.in_features}, out_features={self.out_features}"
            + ("" if self.bias is not None else ", bias=False")
            + ("" if self.dtype == np.float32 else f", dtype={self.dtype.name}")
        )


@register_layer
class Flatten(Layer):
    """Flatten dimensions ``start_dim..end_dim`` into one (torch.nn.Flatten; default keeps the
    batch dimension: (N, C, H, W) -> (N, C*H*W))."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        super().__init__()
        self.start_dim = _as_int(start_dim, "Flatten: start_dim")  # int(1.5) was 1
        self.end_dim = _as_int(end_dim, "Flatten: end_dim")
        self._shape = None

    def forward(self, x: ArrayLike) -> FloatArray:
        x = np.asarray(x)
        s, e = self.start_dim % max(x.ndim, 1), self.end_dim % max(x.ndim, 1)
        if x.ndim == 0 or s > e:
            raise ValueError(
                f"Flatten: cannot flatten dimensions {self.start_dim}..{self.end_dim}"
                f" of an array of shape {x.shape}"
            )
        self._shape = x.shape
        return x.reshape(x.shape[:s] + (math.prod(x.shape[s : e + 1]),) + x.shape[e + 1 :])

    def backward(self, grad_out: ArrayLike, needs_input_grad: bool = True) -> FloatArray | None:
        shape, self._shape = self._shape, None
        return np.asarray(grad_out).reshape(shape)

    def get_config(self):
        return dict(start_dim=self.start_dim, end_dim=self.end_dim)

    def extra_repr(self):
        return settings_repr([], self.get_config(), {"start_dim": 1, "end_dim": -1})
