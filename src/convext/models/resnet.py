"""ResNet (He et al. 2015) with torchvision's module names: ``resnet18``, ``resnet34``,
``resnet50``.

The layout is torchvision's ``torchvision.models.resnet`` (ResNet v1.5: a Bottleneck strides in
its 3x3 convolution), so ``model.load_state_dict`` takes a torchvision state_dict as it is::

    conv1 (7x7/2) bn1 relu maxpool (3x3/2)
    layer1..layer4: Sequential of blocks; block 0 of layer2..4 strides 2 and has a
                    ``downsample`` (0: Conv2D 1x1, 1: BatchNorm2D) when its shape changes
    avgpool (AdaptiveAvgPool2D((1, 1))), flatten, fc (Dense)

BasicBlock: conv1 bn1 relu conv2 bn2 [downsample], ``relu(bn2(conv2(relu(bn1(conv1(x))))) +
shortcut(x))``; Bottleneck: conv1 (1x1) bn1 conv2 (3x3, stride) bn2 conv3 (1x1, 4x the
width) bn3 relu [downsample]. torchvision applies its one ``relu`` module two (three) times in a
block; convext layers keep their input for backward, so the ``relu`` child is the last
application and the inner ones are ``functional.relu`` calls whose inputs the block keeps.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import DTypeLike

from .. import functional
from ..layers import (
    AdaptiveAvgPool2D,
    BatchNorm2D,
    Conv2D,
    Dense,
    Layer,
    MaxPool2D,
    ReLU,
    Sequential,
    register_layer,
)
from ._common import building, check_int, flatten_batch, model_dtype, torchvision_init

__all__ = ["BasicBlock", "Bottleneck", "ResNet", "resnet18", "resnet34", "resnet50"]


class _Block(Layer):
    """The shared part of the two residual blocks: the shortcut and the saved activations."""

    expansion = 1

    def __init__(self, inplanes, planes, stride=1, dtype=np.float32):
        super().__init__()
        self.inplanes = check_int(inplanes, "inplanes")
        self.planes = check_int(planes, "planes")
        self.stride = check_int(stride, "stride")
        self.dtype = model_dtype(dtype)
        self._inner = None  # inputs of the inner relu applications (training mode)

    def _make_downsample(self):
        """torchvision's ``_make_layer`` rule: a 1x1 projection when the shape changes."""
        out = self.planes * self.expansion
        self.downsample = None
        if self.stride != 1 or self.inplanes != out:
            self.downsample = Sequential(
                Conv2D(self.inplanes, out, 1, self.stride, bias=False, dtype=self.dtype),
                BatchNorm2D(out, dtype=self.dtype),
            )

    def _shortcut(self, x):
        return x if self.downsample is None else self.downsample(x)

    def _shortcut_backward(self, g, needs_input_grad):
        if self.downsample is None:
            return g if needs_input_grad else None
        return self.downsample.backward(g, needs_input_grad=needs_input_grad)

    def _relu(self, t, kept):
        if self.training:
            kept.append(t)
        return functional.relu(t)

    def get_config(self):
        return dict(
            inplanes=self.inplanes, planes=self.planes, stride=self.stride, dtype=self.dtype.name
        )

    def extra_repr(self):
        return f"{self.inplanes}, {self.planes}" + (
            f", stride={self.stride}" if self.stride != 1 else ""
        )


@register_layer
class BasicBlock(_Block):
    """ResNet-18/34's block: two 3x3 convolutions (the first one strided) and the shortcut."""

    expansion = 1

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        dtype: DTypeLike = np.float32,
    ) -> None:
        super().__init__(inplanes, planes, stride, dtype)
        dt = self.dtype
        self.conv1 = Conv2D(inplanes, planes, 3, stride, 1, bias=False, dtype=dt)
        self.bn1 = BatchNorm2D(planes, dtype=dt)
        self.relu = ReLU()
        self.conv2 = Conv2D(planes, planes, 3, 1, 1, bias=False, dtype=dt)
        self.bn2 = BatchNorm2D(planes, dtype=dt)
        self._make_downsample()

    def forward(self, x):
        kept = []
        out = self._relu(self.bn1(self.conv1(x)), kept)
        out = self.bn2(self.conv2(out))
        self._inner = kept or None
        return self.relu(out + self._shortcut(x))

    def backward(self, grad_out, needs_input_grad=True):
        if self._inner is None:
            raise RuntimeError("BasicBlock.backward needs a forward pass in training mode first")
        (t1,), self._inner = self._inner, None
        g = self.relu.backward(grad_out)  # d(out + shortcut), shared by both terms
        g_short = self._shortcut_backward(g, needs_input_grad)
        g = self.conv2.backward(self.bn2.backward(g))
        g = self.bn1.backward(functional.relu_backward(g, t1))
        g_x = self.conv1.backward(g, needs_input_grad=needs_input_grad)
        return g_x + g_short if needs_input_grad else None


@register_layer
class Bottleneck(_Block):
    """ResNet-50's block: 1x1 (reduce), 3x3 (strided), 1x1 (expand 4x) and the shortcut."""

    expansion = 4

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        dtype: DTypeLike = np.float32,
    ) -> None:
        super().__init__(inplanes, planes, stride, dtype)
        dt, width = self.dtype, self.planes
        self.conv1 = Conv2D(inplanes, width, 1, bias=False, dtype=dt)
        self.bn1 = BatchNorm2D(width, dtype=dt)
        self.conv2 = Conv2D(width, width, 3, stride, 1, bias=False, dtype=dt)
        self.bn2 = BatchNorm2D(width, dtype=dt)
        self.conv3 = Conv2D(width, planes * 4, 1, bias=False, dtype=dt)
        self.bn3 = BatchNorm2D(planes * 4, dtype=dt)
        self.relu = ReLU()
        self._make_downsample()

    def forward(self, x):
        kept = []
        out = self._relu(self.bn1(self.conv1(x)), kept)
        out = self._relu(self.bn2(self.conv2(out)), kept)
        out = self.bn3(self.conv3(out))
        self._inner = kept or None
        return self.relu(out + self._shortcut(x))

    def backward(self, grad_out, needs_input_grad=True):
        if self._inner is None:
            raise RuntimeError("Bottleneck.backward needs a forward pass in training mode first")
        (t1, t2), self._inner = self._inner, None
        g = self.relu.backward(grad_out)
        g_short = self._shortcut_backward(g, needs_input_grad)
        g = self.conv3.backward(self.bn3.backward(g))
        g = self.conv2.backward(self.bn2.backward(functional.relu_backward(g, t2)))
        g = self.bn1.backward(functional.relu_backward(g, t1))
        g_x = self.conv1.backward(g, needs_input_grad=needs_input_grad)
        return g_x + g_short if needs_input_grad else None


_BLOCKS = {"basic": BasicBlock, "bottleneck": Bottleneck}


@register_layer
class ResNet(Layer):
    """torchvision's ResNet: ``block`` 'basic' or 'bottleneck', ``blocks`` the number of blocks
    in layer1..layer4 (resnet18: 'basic', [2, 2, 2, 2]; resnet34: 'basic', [3, 4, 6, 3];
    resnet50: 'bottleneck', [3, 4, 6, 3]). Input (N, 3, H, W), any H, W >= 1 (the adaptive
    average pool takes any size; 224 is ImageNet's), output logits (N, num_classes).
    Initialised as torchvision from ``rng``."""

    def __init__(
        self,
        block: str,
        blocks: list[int] | tuple[int, ...],
        num_classes: int = 1000,
        dtype: DTypeLike = np.float32,
        rng: np.random.Generator | int | None = None,
    ) -> None:
        super().__init__()
        if block not in _BLOCKS:
            raise ValueError(f"ResNet: block must be 'basic' or 'bottleneck', got {block!r}")
        if not isinstance(blocks, (list, tuple)) or len(blocks) != 4:
            raise ValueError(f"ResNet: blocks must be 4 block counts, got {blocks!r}")
        self.block = block
        self.blocks = [check_int(b, "blocks") for b in blocks]
        self.num_classes = check_int(num_classes, "num_classes")
        self.dtype = dt = model_dtype(dtype)
        cls = _BLOCKS[block]
        with building(self, rng, linear="default"):
            self.conv1 = Conv2D(3, 64, 7, 2, 3, bias=False, dtype=dt)
            self.bn1 = BatchNorm2D(64, dtype=dt)
            self.relu = ReLU()
            self.maxpool = MaxPool2D(3, 2, 1)
            inplanes = 64
            for i, (planes, n) in enumerate(zip((64, 128, 256, 512), self.blocks, strict=True), 1):
                stride = 1 if i == 1 else 2
                stage = [cls(inplanes, planes, stride, dtype=dt)]
                inplanes = planes * cls.expansion
                stage += [cls(inplanes, planes, dtype=dt) for _ in range(1, n)]
                setattr(self, f"layer{i}", Sequential(*stage))
            self.avgpool = AdaptiveAvgPool2D((1, 1))
            self.fc = Dense(512 * cls.expansion, self.num_classes, dtype=dt)
        self._pooled = None

    def _trunk(self):
        return [
            self.conv1,
            self.bn1,
            self.relu,
            self.maxpool,
            self.layer1,
            self.layer2,
            self.layer3,
            self.layer4,
            self.avgpool,
        ]

    def forward(self, x):
        for layer in self._trunk():
            x = layer(x)
        self._pooled = x.shape if self.training else None
        return self.fc(flatten_batch(x))

    def backward(self, grad_out, needs_input_grad=True):
        if self._pooled is None:
            raise RuntimeError("ResNet.backward needs a forward pass in training mode first")
        g = self.fc.backward(grad_out).reshape(self._pooled)
        self._pooled = None
        trunk = self._trunk()
        for layer in trunk[:0:-1]:
            g = layer.backward(g)
        return self.conv1.backward(g, needs_input_grad=needs_input_grad)

    def reset_parameters(self, rng=None):
        return torchvision_init(self, rng, linear="default")

    def get_config(self):
        return dict(
            block=self.block,
            blocks=list(self.blocks),
            num_classes=self.num_classes,
            dtype=self.dtype.name,
        )


def resnet18(
    num_classes: int = 1000,
    dtype: DTypeLike = np.float32,
    rng: np.random.Generator | int | None = None,
) -> ResNet:
    """ResNet-18 (11.7 M parameters at 1000 classes), torchvision's layout and keys."""
    return ResNet("basic", [2, 2, 2, 2], num_classes, dtype, rng)


def resnet34(
    num_classes: int = 1000,
    dtype: DTypeLike = np.float32,
    rng: np.random.Generator | int | None = None,
) -> ResNet:
    """ResNet-34 (21.8 M parameters), torchvision's layout and keys."""
    return ResNet("basic", [3, 4, 6, 3], num_classes, dtype, rng)


def resnet50(
    num_classes: int = 1000,
    dtype: DTypeLike = np.float32,
    rng: np.random.Generator | int | None = None,
) -> ResNet:
    """ResNet-50 (25.6 M parameters; v1.5: the 3x3 convolution strides), torchvision's layout
    and keys."""
    return ResNet("bottleneck", [3, 4, 6, 3], num_classes, dtype, rng)
