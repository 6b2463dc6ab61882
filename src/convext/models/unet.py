"""U-Net (Ronneberger et al. 2015) for segmentation, with the module names of the widely used
PyTorch implementation (milesial/Pytorch-UNet: ``inc``, ``down1``.., ``up1``.., ``outc``), so
its checkpoints of both variants load with ``load_state_dict``.

Layout for ``depth`` d and ``base_channels`` b (channel counts ``c_i = b * 2**i``)::

    inc        DoubleConv(in_channels -> c_0)
    down_i     i = 1..d: ``maxpool_conv`` = Sequential(0: MaxPool2D(2), 1: DoubleConv(c_(i-1)
               -> c_i)); with bilinear=True the last one outputs c_d // 2 (the bilinear decoder
               keeps the channel count when it upsamples, so the skip and the upsampled path
               have equal width)
    up_j       j = 1..d, decoding c_(d-j+1) channels (both inputs together):
               bilinear=False (default): ``up`` ConvTranspose2D(c_(d-j+1) -> c_(d-j+1) // 2,
               kernel 2, stride 2, with bias), then ``conv`` = DoubleConv(c_(d-j+1) -> c_(d-j));
               bilinear=True: ``up`` Upsample(scale_factor=2, 'bilinear', align_corners=True),
               then ``conv`` = DoubleConv(c_(d-j+1) -> c_(d-j) // 2, middle c_(d-j+1) // 2),
               the last one outputting c_0.
               In both the upsampled input is zero-padded to its skip's size and the two are
               concatenated as [skip, upsampled] on the channel axis before ``conv``
    outc       OutConv: ``conv`` Conv2D 1x1 (c_0 -> num_classes, with bias)

    DoubleConv: ``double_conv`` = Sequential(0 Conv2D 3x3 pad 1 (no bias), 1 BatchNorm2D,
                2 ReLU, 3 Conv2D 3x3 pad 1 (no bias), 4 BatchNorm2D, 5 ReLU)

Input (N, in_channels, H, W), output logits (N, num_classes, H, W). Any H, W >= 2**depth:
the poolings floor odd sizes and each decoder step pads the upsampled map (zeros, split as
evenly as possible, the extra row/column at the bottom/right) to the skip's size, as
Pytorch-UNet does; sizes divisible by 2**depth need no padding.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import DTypeLike

from ..layers import (
    BatchNorm2D,
    Conv2D,
    ConvTranspose2D,
    Layer,
    MaxPool2D,
    ReLU,
    Sequential,
    Upsample,
    register_layer,
)
from ..layers.registry import MAX_SIZE
from ._common import building, check_int, model_dtype, torchvision_init

__all__ = ["DoubleConv", "Down", "OutConv", "UNet", "Up", "unet"]


@register_layer
class DoubleConv(Layer):
    """(Conv2D 3x3 -> BatchNorm2D -> ReLU) twice; child ``double_conv`` (a Sequential)."""

    def __init__(self, in_channels, out_channels, mid_channels=None, dtype=np.float32):
        super().__init__()
        self.in_channels = check_int(in_channels, "in_channels")
        self.out_channels = check_int(out_channels, "out_channels")
        self.mid_channels = (
            self.out_channels if mid_channels is None else check_int(mid_channels, "mid_channels")
        )
        self.dtype = dt = model_dtype(dtype)
        mid = self.mid_channels
        self.double_conv = Sequential(
            Conv2D(self.in_channels, mid, 3, padding=1, bias=False, dtype=dt),
            BatchNorm2D(mid, dtype=dt),
            ReLU(),
            Conv2D(mid, self.out_channels, 3, padding=1, bias=False, dtype=dt),
            BatchNorm2D(self.out_channels, dtype=dt),
            ReLU(),
        )

    def forward(self, x):
        return self.double_conv(x)

    def backward(self, grad_out, needs_input_grad=True):
        return self.double_conv.backward(grad_out, needs_input_grad=needs_input_grad)

    def get_config(self):
        return dict(
            in_channels=self.in_channels,
            out_channels=self.out_channels,
            mid_channels=self.mid_channels,
            dtype=self.dtype.name,
        )


@register_layer
class Down(Layer):
    """MaxPool2D(2) then DoubleConv; child ``maxpool_conv`` (a Sequential)."""

    def __init__(self, in_channels, out_channels, dtype=np.float32):
        super().__init__()
        self.in_channels = check_int(in_channels, "in_channels")
        self.out_channels = check_int(out_channels, "out_channels")
        self.dtype = model_dtype(dtype)
        self.maxpool_conv = Sequential(
            MaxPool2D(2), DoubleConv(in_channels, out_channels, dtype=self.dtype)
        )

    def forward(self, x):
        return self.maxpool_conv(x)

    def backward(self, grad_out, needs_input_grad=True):
        return self.maxpool_conv.backward(grad_out, needs_input_grad=needs_input_grad)

    def get_config(self):
        return dict(
            in_channels=self.in_channels, out_channels=self.out_channels, dtype=self.dtype.name
        )


@register_layer
class Up(Layer):
    """A decoder step, called with two inputs: ``up(x, skip)``. ``x`` is upsampled 2x (child
    ``up``: bilinear, align_corners=True, keeping its channels; or with ``bilinear=False`` a
    ConvTranspose2D(in_channels -> in_channels // 2, kernel 2, stride 2)), zero-padded to
    ``skip``'s height and width, concatenated after ``skip`` on the channel axis and passed
    through the DoubleConv ``conv`` (``in_channels`` = both inputs' channels together; middle
    width ``in_channels // 2`` when bilinear, else ``out_channels``).
    ``backward(grad_out)`` returns ``(grad_x, grad_skip)``."""

    def __init__(self, in_channels, out_channels, bilinear=True, dtype=np.float32):
        super().__init__()
        self.in_channels = check_int(in_channels, "in_channels", lo=2)
        self.out_channels = check_int(out_channels, "out_channels")
        if not isinstance(bilinear, bool):
            raise TypeError(f"Up: bilinear must be a bool, got {bilinear!r}")
        self.bilinear = bilinear
        self.dtype = model_dtype(dtype)
        if bilinear:
            self.up = Upsample(scale_factor=2, mode="bilinear", align_corners=True)
            self.conv = DoubleConv(
                self.in_channels, self.out_channels, self.in_channels // 2, dtype=self.dtype
            )
        else:
            self.up = ConvTranspose2D(
                self.in_channels, self.in_channels // 2, 2, stride=2, dtype=self.dtype
            )
            self.conv = DoubleConv(self.in_channels, self.out_channels, dtype=self.dtype)
        self._geom = None

    def __call__(self, x, skip):
        return self.forward(x, skip)

    def forward(self, x, skip):
        joined, geom = self._join(np.asarray(skip), self.up(x))
        if self.training:
            self._geom = geom
        return self.conv(joined)

    def joined(self, skip, u):
        """``skip`` and the upsampled ``u`` zero-padded to its height and width, concatenated
        on the channel axis: the input of ``conv`` (optimize_for_inference runs this step on
        its own)."""
        return self._join(np.asarray(skip), u)[0]

    def _join(self, skip, u):
        """(joined, geometry of u in it for backward: skip's channels, top, left, height,
        width)."""
        if (
            skip.ndim != 4
            or u.shape[0] != skip.shape[0]
            or skip.shape[2] < u.shape[2]
            or skip.shape[3] < u.shape[3]
        ):
            raise ValueError(
                f"Up: skip of shape {skip.shape} does not fit the upsampled input "
                f"of shape {u.shape} (same batch, at least its height and width)"
            )
        dy, dx = skip.shape[2] - u.shape[2], skip.shape[3] - u.shape[3]
        top, left = dy // 2, dx // 2
        geom = (skip.shape[1], top, left, u.shape[2], u.shape[3])
        if dy or dx:
            u = np.pad(u, ((0, 0), (0, 0), (top, dy - top), (left, dx - left)))
        return np.concatenate([skip, u], axis=1), geom

    def backward(self, grad_out, needs_input_grad=True):
        if self._geom is None:
            raise RuntimeError("Up.backward needs a forward pass in training mode first")
        (cs, top, left, h, w), self._geom = self._geom, None
        g = self.conv.backward(grad_out)
        g_x = self.up.backward(np.ascontiguousarray(g[:, cs:, top : top + h, left : left + w]))
        return g_x, np.ascontiguousarray(g[:, :cs])

    def get_config(self):
        return dict(
            in_channels=self.in_channels,
            out_channels=self.out_channels,
            bilinear=self.bilinear,
            dtype=self.dtype.name,
        )


@register_layer
class OutConv(Layer):
    """The 1x1 output convolution (with bias); child ``conv``."""

    def __init__(self, in_channels, out_channels, dtype=np.float32):
        super().__init__()
        self.in_channels = check_int(in_channels, "in_channels")
        self.out_channels = check_int(out_channels, "out_channels")
        self.dtype = model_dtype(dtype)
        self.conv = Conv2D(in_channels, out_channels, 1, dtype=self.dtype)

    def forward(self, x):
        return self.conv(x)

    def backward(self, grad_out, needs_input_grad=True):
        return self.conv.backward(grad_out, needs_input_grad=needs_input_grad)

    def get_config(self):
        return dict(
            in_channels=self.in_channels, out_channels=self.out_channels, dtype=self.dtype.name
        )


@register_layer
class UNet(Layer):
    """U-Net with a transposed-convolution (default) or bilinear-upsampling decoder; layout in
    the module docstring. Initialised from ``rng`` as torchvision initialises its CNNs
    (convolutions ``kaiming_normal`` fan_out, BatchNorm 1/0; ConvTranspose2D torch.nn's
    default)."""

    def __init__(
        self,
        in_channels: int = 3,
        num_classes: int = 2,
        base_channels: int = 64,
        depth: int = 4,
        bilinear: bool = False,
        dtype: DTypeLike = np.float32,
        rng: np.random.Generator | int | None = None,
    ) -> None:
        super().__init__()
        self.in_channels = check_int(in_channels, "in_channels")
        self.num_classes = check_int(num_classes, "num_classes")
        self.base_channels = check_int(base_channels, "base_channels")
        self.depth = check_int(depth, "depth")
        if not isinstance(bilinear, bool):
            raise TypeError(f"UNet: bilinear must be a bool, got {bilinear!r}")
        if self.base_channels * 2**self.depth > MAX_SIZE:
            raise ValueError(
                f"UNet: base_channels * 2**depth must not exceed {MAX_SIZE}, got "
                f"{self.base_channels} * 2**{self.depth}"
            )
        self.bilinear = bilinear
        self.dtype = dt = model_dtype(dtype)
        c = [self.base_channels * 2**i for i in range(self.depth + 1)]
        factor = 2 if bilinear else 1
        with building(self, rng):
            self.inc = DoubleConv(self.in_channels, c[0], dtype=dt)
            for i in range(1, self.depth + 1):
                out = c[i] // factor if i == self.depth else c[i]
                setattr(self, f"down{i}", Down(c[i - 1], out, dtype=dt))
            for j in range(1, self.depth + 1):
                out = c[0] if j == self.depth else c[self.depth - j] // factor
                setattr(self, f"up{j}", Up(c[self.depth - j + 1], out, bilinear, dtype=dt))
            self.outc = OutConv(c[0], self.num_classes, dtype=dt)

    def checked_input(self, x):
        """x as an array, or a ValueError where the network cannot take its shape (the first
        step of forward; optimize_for_inference runs it on its own)."""
        x = np.asarray(x)
        if x.ndim != 4 or min(x.shape[2:]) < 2**self.depth:
            raise ValueError(
                f"UNet: x must have shape (N, {self.in_channels}, H, W) with H and "
                f"W >= 2**depth = {2**self.depth}, got {x.shape}"
            )
        return x

    def forward(self, x):
        skips = [self.inc(self.checked_input(x))]
        for i in range(1, self.depth + 1):
            skips.append(getattr(self, f"down{i}")(skips[-1]))
        y = skips.pop()
        for j in range(1, self.depth + 1):
            y = getattr(self, f"up{j}")(y, skips[self.depth - j])
        return self.outc(y)

    def backward(self, grad_out, needs_input_grad=True):
        g = self.outc.backward(grad_out)
        g_skips = [None] * self.depth
        for j in range(self.depth, 0, -1):
            g, g_skips[self.depth - j] = getattr(self, f"up{j}").backward(g)
        for i in range(self.depth, 0, -1):
            g = getattr(self, f"down{i}").backward(g) + g_skips[i - 1]
        return self.inc.backward(g, needs_input_grad=needs_input_grad)

    def reset_parameters(self, rng=None):
        return torchvision_init(self, rng)

    def get_config(self):
        return dict(
            in_channels=self.in_channels,
            num_classes=self.num_classes,
            base_channels=self.base_channels,
            depth=self.depth,
            bilinear=self.bilinear,
            dtype=self.dtype.name,
        )


def unet(
    in_channels: int = 3,
    num_classes: int = 2,
    base_channels: int = 64,
    depth: int = 4,
    bilinear: bool = False,
    dtype: DTypeLike = np.float32,
    rng: np.random.Generator | int | None = None,
) -> UNet:
    """U-Net (31.0 M parameters at the defaults: depth 4, 64 base channels, transposed
    convolutions; 17.3 M with bilinear=True); see ``UNet`` and the module docstring for the
    layout."""
    return UNet(in_channels, num_classes, base_channels, depth, bilinear, dtype, rng)
