"""VGG-11 (Simonyan & Zisserman 2014, configuration "A") with torchvision's module names.

The layout is ``torchvision.models.vgg11``::

    features    Sequential: Conv2D 3x3 pad 1 + ReLU per entry of [64, M, 128, M, 256, 256, M,
                512, 512, M, 512, 512, M] (M: MaxPool2D(2, 2)); convolutions at indices
                0, 3, 6, 8, 11, 13, 16, 18
    avgpool     AdaptiveAvgPool2D((7, 7))
    (flatten)
    classifier  Sequential: 0 Dense(25088, 4096), 1 ReLU, 2 Dropout, 3 Dense(4096, 4096),
                4 ReLU, 5 Dropout, 6 Dense(4096, num_classes)
"""

from __future__ import annotations

import numpy as np
from numpy.typing import DTypeLike

from ..layers import (
    AdaptiveAvgPool2D,
    Conv2D,
    Dense,
    Dropout,
    Layer,
    MaxPool2D,
    ReLU,
    Sequential,
    register_layer,
)
from ._common import building, check_int, flatten_batch, model_dtype, torchvision_init

__all__ = ["VGG", "vgg11"]

_CFG_A = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M")


@register_layer
class VGG(Layer):
    """torchvision's VGG-11 (configuration "A", no batch norm; 132.9 M parameters at 1000
    classes, 507 MB in float32). Input (N, 3, H, W) with H, W >= 32 (five 2x2 poolings; the
    adaptive pool takes any remaining size, 224 for ImageNet), output (N, num_classes).
    ``dropout`` is the classifier's. Initialised as torchvision from ``rng``."""

    def __init__(
        self,
        num_classes: int = 1000,
        dropout: float = 0.5,
        dtype: DTypeLike = np.float32,
        rng: np.random.Generator | int | None = None,
    ) -> None:
        super().__init__()
        self.num_classes = check_int(num_classes, "num_classes")
        if (
            isinstance(dropout, bool)
            or not isinstance(dropout, (int, float))
            or not 0 <= dropout <= 1
        ):
            raise ValueError(f"VGG: dropout must be a number in [0, 1], got {dropout!r}")
        self.dropout = float(dropout)
        self.dtype = dt = model_dtype(dtype)
        with building(self, rng):
            features, channels = [], 3
            for v in _CFG_A:
                if v == "M":
                    features.append(MaxPool2D(2, 2))
                else:
                    features += [Conv2D(channels, v, 3, padding=1, dtype=dt), ReLU()]
                    channels = v
            self.features = Sequential(*features)
            self.avgpool = AdaptiveAvgPool2D((7, 7))
            self.classifier = Sequential(
                Dense(512 * 7 * 7, 4096, dtype=dt),
                ReLU(),
                Dropout(self.dropout),
                Dense(4096, 4096, dtype=dt),
                ReLU(),
                Dropout(self.dropout),
                Dense(4096, self.num_classes, dtype=dt),
            )
        self._pooled = None

    def forward(self, x):
        x = self.avgpool(self.features(x))
        self._pooled = x.shape if self.training else None
        return self.classifier(flatten_batch(x))

    def backward(self, grad_out, needs_input_grad=True):
        if self._pooled is None:
            raise RuntimeError("VGG.backward needs a forward pass in training mode first")
        g = self.classifier.backward(grad_out).reshape(self._pooled)
        self._pooled = None
        return self.features.backward(self.avgpool.backward(g), needs_input_grad=needs_input_grad)

    def reset_parameters(self, rng=None):
        return torchvision_init(self, rng)

    def get_config(self):
        return dict(num_classes=self.num_classes, dropout=self.dropout, dtype=self.dtype.name)


def vgg11(
    num_classes: int = 1000,
    dropout: float = 0.5,
    dtype: DTypeLike = np.float32,
    rng: np.random.Generator | int | None = None,
) -> VGG:
    """VGG-11 with torchvision's layout and keys (see ``VGG``)."""
    return VGG(num_classes, dropout, dtype, rng)
