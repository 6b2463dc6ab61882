"""Dropout."""

from __future__ import annotations

import numpy as np

from .._typing import ArrayLike, FloatArray
from .._validation import check_real
from .base import Layer
from .registry import register_layer

__all__ = ["Dropout", "Dropout2D"]


@register_layer
class Dropout(Layer):
    """In training mode, zero each element with probability ``p`` and scale the others by
    ``1 / (1 - p)`` (torch.nn.Dropout); identity in eval mode.

    ``rng``: a numpy Generator or seed for the masks, so runs are reproducible (None: a fresh
    unseeded generator). ``reset_parameters(rng)`` re-seeds it from the given generator.
    Keeps the scaled mask for backward.
    """

    def __init__(self, p: float = 0.5, rng: np.random.Generator | int | None = None) -> None:
        super().__init__()
        self.p = check_real(f"{type(self).__name__}: p", p, 0.0, 1.0, high_open=False)
        self.rng = np.random.default_rng(rng)
        self._mask = None

    def reset_parameters(self, rng=None):
        if rng is not None:
            self.rng = np.random.default_rng(np.random.default_rng(rng).integers(2**63))
        return self

    def forward(self, x: ArrayLike) -> FloatArray:
        x = np.asarray(x)
        if not self.training or self.p == 0.0:
            self._mask = None
            return x
        dtype = x.dtype if x.dtype.kind == "f" else np.float64
        if self.p == 1.0:
            self._mask = np.zeros(x.shape, dtype)
        else:
            keep = (
                self.rng.random(x.shape, dtype=np.float64 if dtype == np.float64 else np.float32)
                >= self.p
            )
            self._mask = keep.astype(dtype) * dtype.type(1.0 / (1.0 - self.p))
        return x * self._mask

    def backward(self, grad_out: ArrayLike, needs_input_grad: bool = True) -> FloatArray | None:
        if self._mask is None:
            return np.asarray(grad_out)
        g = np.asarray(grad_out) * self._mask
        self._mask = None
        return g

    def get_config(self):
        return dict(p=self.p)

    def extra_repr(self):
        return f"p={self.p}"


@register_layer
class Dropout2D(Dropout):
    """Channel dropout (torch.nn.Dropout2d): in training mode each whole channel ``x[n, c]`` of
    (N, C, H, W) input is zeroed with probability ``p`` and the others are scaled by
    ``1 / (1 - p)``; identity in eval mode. ``rng`` as in Dropout. Keeps the (N, C, 1, 1)
    scaled mask for backward."""

    def forward(self, x: ArrayLike) -> FloatArray:
        x = np.asarray(x)
        if x.ndim != 4:
            raise ValueError(f"Dropout2D: x must have shape (N, C, H, W), got {x.shape}")
        if not self.training or self.p == 0.0:
            self._mask = None
            return x
        dtype = x.dtype if x.dtype.kind == "f" else np.float64
        shape = x.shape[:2] + (1, 1)
        if self.p == 1.0:
            self._mask = np.zeros(shape, dtype)
        else:
            keep = (
                self.rng.random(shape, dtype=np.float64 if dtype == np.float64 else np.float32)
                >= self.p
            )
            self._mask = keep.astype(dtype) * dtype.type(1.0 / (1.0 - self.p))
        return x * self._mask
