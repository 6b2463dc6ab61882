"""MobileNetV2 (Sandler et al. 2018) with torchvision's module names: ``mobilenet_v2``.

The layout is ``torchvision.models.mobilenetv2``, so its state_dict loads as it is::

    features.0        Conv2dNormActivation: 0 Conv2D 3x3/2 (no bias), 1 BatchNorm2D, 2 ReLU6
    features.1..17    InvertedResidual blocks, each with one child ``conv`` (a Sequential):
                      [0: expand 1x1 Conv2dNormActivation, when expand_ratio != 1]
                      then a depthwise 3x3 Conv2dNormActivation, a 1x1 Conv2D, a BatchNorm2D;
                      ``x + conv(x)`` when the stride is 1 and the channels are kept
    features.18       Conv2dNormActivation 1x1 to 1280 channels
    (adaptive average pool to 1x1 and flatten: functions, no modules, as torchvision)
    classifier        0 Dropout(dropout), 1 Dense(1280, num_classes)

A "Conv2dNormActivation" here is a Sequential of those three layers (the same keys).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import DTypeLike

from .. import functional
from ..layers import BatchNorm2D, Conv2D, Dense, Dropout, Layer, ReLU6, Sequential, register_layer
from ._common import building, check_int, conv_bn_act, flatten_batch, model_dtype, torchvision_init

__all__ = ["InvertedResidual", "MobileNetV2", "make_divisible", "mobilenet_v2"]

# t (expansion), c (channels), n (blocks), s (stride of the first block): the paper's Table 2
_SETTING = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)


def make_divisible(v, divisor=8, min_value=None):
    """torchvision's ``_make_divisible``: the nearest multiple of ``divisor`` (at least
    ``min_value``, default ``divisor``) that is not below 90 % of ``v``."""
    min_value = divisor if min_value is None else min_value
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


@register_layer
class InvertedResidual(Layer):
    """MobileNetV2's block: expand (1x1, ReLU6; skipped when ``expand_ratio`` is 1), depthwise
    3x3 (``stride``, ReLU6), project (1x1, linear), all with BatchNorm; the input is added back
    when ``stride == 1`` and ``in_channels == out_channels``. One child, ``conv``."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int,
        expand_ratio: int,
        dtype: DTypeLike = np.float32,
    ) -> None:
        super().__init__()
        self.in_channels = check_int(in_channels, "in_channels")
        self.out_channels = check_int(out_channels, "out_channels")
        self.stride = check_int(stride, "stride")
        if self.stride not in (1, 2):
            raise ValueError(f"InvertedResidual: stride must be 1 or 2, got {stride!r}")
        if (
            isinstance(expand_ratio, bool)
            or not isinstance(expand_ratio, (int, float))
            or not 0 < expand_ratio < float("inf")
        ):
            raise ValueError(
                f"InvertedResidual: expand_ratio must be a positive number, got {expand_ratio!r}"
            )
        self.expand_ratio = expand_ratio
        self.dtype = dt = model_dtype(dtype)
        hidden = int(round(self.in_channels * expand_ratio))
        if hidden < 1:
            raise ValueError(
                f"InvertedResidual: in_channels * expand_ratio rounds to {hidden} hidden channels"
            )
        self.use_res_connect = self.stride == 1 and self.in_channels == self.out_channels
        layers = []
        if expand_ratio != 1:
            layers.append(conv_bn_act(self.in_channels, hidden, 1, 1, 1, ReLU6, dt))
        layers += [
            conv_bn_act(hidden, hidden, 3, self.stride, hidden, ReLU6, dt),
            Conv2D(hidden, self.out_channels, 1, bias=False, dtype=dt),
            BatchNorm2D(self.out_channels, dtype=dt),
        ]
        self.conv = Sequential(*layers)

    def forward(self, x):
        y = self.conv(x)
        return x + y if self.use_res_connect else y

    def backward(self, grad_out, needs_input_grad=True):
        g = self.conv.backward(grad_out, needs_input_grad=needs_input_grad)
        if not needs_input_grad:
            return None
        return g + grad_out if self.use_res_connect else g

    def get_config(self):
        return dict(
            in_channels=self.in_channels,
            out_channels=self.out_channels,
            stride=self.stride,
            expand_ratio=self.expand_ratio,
            dtype=self.dtype.name,
        )

    def extra_repr(self):
        return (
            f"{self.in_channels}, {self.out_channels}, stride={self.stride}, "
            f"expand_ratio={self.expand_ratio}"
        )


@register_layer
class MobileNetV2(Layer):
    """torchvision's MobileNetV2. Input (N, 3, H, W), any H, W >= 1 (224 for ImageNet), output
    logits (N, num_classes). ``width_mult`` scales every channel count (rounded to multiples of
    8, the last one never below 1280); ``dropout`` is the classifier's. Initialised as
    torchvision from ``rng``."""

    def __init__(
        self,
        num_classes: int = 1000,
        width_mult: float = 1.0,
        dropout: float = 0.2,
        dtype: DTypeLike = np.float32,
        rng: np.random.Generator | int | None = None,
    ) -> None:
        super().__init__()
        self.num_classes = check_int(num_classes, "num_classes")
        if (
            isinstance(width_mult, bool)
            or not isinstance(width_mult, (int, float))
            or not 0 < width_mult < float("inf")
        ):
            raise ValueError(
                f"MobileNetV2: width_mult must be a positive number, got {width_mult!r}"
            )
        self.width_mult = float(width_mult)
        if (
            isinstance(dropout, bool)
            or not isinstance(dropout, (int, float))
            or not 0 <= dropout <= 1
        ):
            raise ValueError(f"MobileNetV2: dropout must be a number in [0, 1], got {dropout!r}")
        self.dropout = float(dropout)
        self.dtype = dt = model_dtype(dtype)
        channels = make_divisible(32 * self.width_mult)
        last = make_divisible(1280 * max(1.0, self.width_mult))
        with building(self, rng):
            features = [conv_bn_act(3, channels, 3, 2, 1, ReLU6, dt)]
            for t, c, n, s in _SETTING:
                out = make_divisible(c * self.width_mult)
                for i in range(n):
                    features.append(
                        InvertedResidual(channels, out, s if i == 0 else 1, t, dtype=dt)
                    )
                    channels = out
            features.append(conv_bn_act(channels, last, 1, 1, 1, ReLU6, dt))
            self.features = Sequential(*features)
            self.classifier = Sequential(
                Dropout(self.dropout), Dense(last, self.num_classes, dtype=dt)
            )
        self._shape = None

    def forward(self, x):
        x = self.features(x)
        self._shape = x.shape if self.training else None
        x = functional.global_avg_pool2d(x)
        return self.classifier(flatten_batch(x))

    def backward(self, grad_out, needs_input_grad=True):
        if self._shape is None:
            raise RuntimeError("MobileNetV2.backward needs a forward pass in training mode first")
        g = self.classifier.backward(grad_out)
        g = functional.global_avg_pool2d_backward(g.reshape(g.shape + (1, 1)), self._shape)
        self._shape = None
        return self.features.backward(g, needs_input_grad=needs_input_grad)

    def reset_parameters(self, rng=None):
        return torchvision_init(self, rng)

    def get_config(self):
        return dict(
            num_classes=self.num_classes,
            width_mult=self.width_mult,
            dropout=self.dropout,
            dtype=self.dtype.name,
        )


def mobilenet_v2(
    num_classes: int = 1000,
    width_mult: float = 1.0,
    dropout: float = 0.2,
    dtype: DTypeLike = np.float32,
    rng: np.random.Generator | int | None = None,
) -> MobileNetV2:
    """MobileNetV2 (3.5 M parameters at width 1.0 and 1000 classes), torchvision's layout and
    keys."""
    return MobileNetV2(num_classes, width_mult, dropout, dtype, rng)
