"""What the model zoo's architectures share: building the layers without allocating twice, and
torchvision's weight initialisation."""

import contextlib
import math

import numpy as np

from .. import init
from ..layers import BatchNorm2D, Conv2D, ConvTranspose2D, Dense, Dropout
from ..layers.base import _building_unallocated, _dtype, unallocated

__all__ = [
    "building",
    "check_int",
    "conv_bn_act",
    "flatten_batch",
    "model_dtype",
    "torchvision_init",
]


def flatten_batch(x):
    """(N, ...) -> (N, product of the rest), the classifier's input: also for a batch of 0
    (numpy's reshape(0, -1) cannot infer the -1)."""
    return x.reshape(x.shape[0], math.prod(x.shape[1:]))


def model_dtype(dtype):
    """float32 or float64 (TypeError otherwise) as a numpy dtype."""
    return _dtype(dtype)


@contextlib.contextmanager
def building(model, rng, linear="normal"):
    """Build ``model``'s layers inside this block without allocating or initialising them, then
    (unless the model itself is being built inside ``unallocated()``, as ``convext.load`` does)
    allocate every array once and initialise it with ``torchvision_init``: the layers'
    own default initialisation is skipped, so a large model is initialised once."""
    outer = _building_unallocated()
    with unallocated():
        yield
    if not outer:
        model._allocate()
        torchvision_init(model, rng, linear)


def torchvision_init(model, rng=None, linear="normal"):
    """torchvision's initialisation: convolution weights ``kaiming_normal(mode='fan_out',
    nonlinearity='relu')`` and biases zero; BatchNorm weight 1, bias 0, running statistics
    reset; Dense ``normal(0, 0.01)`` and bias zero (``linear='normal'``: VGG, MobileNetV2) or
    torch.nn.Linear's default (``linear='default'``: ResNet's fc); Dropout masks re-seeded;
    ConvTranspose2D torch.nn's default initialisation.
    ``rng``: a numpy Generator or seed."""
    rng = np.random.default_rng(rng)
    for _, layer in model.named_layers():
        if isinstance(layer, Conv2D):
            init.kaiming_normal(layer.weight, rng, mode="fan_out", nonlinearity="relu")
            if layer.bias is not None:
                layer.bias.fill(0)
        elif isinstance(layer, ConvTranspose2D):  # torch.nn's default, as Pytorch-UNet has
            layer.reset_parameters(rng)
        elif isinstance(layer, BatchNorm2D):
            layer.reset_parameters()
        elif isinstance(layer, Dense):
            if linear == "normal":
                init.normal(layer.weight, rng, 0.0, 0.01)
                if layer.bias is not None:
                    layer.bias.fill(0)
            else:
                layer.reset_parameters(rng)
        elif isinstance(layer, Dropout):
            layer.reset_parameters(rng)
    return model


def conv_bn_act(in_channels, out_channels, kernel_size, stride, groups, activation, dtype):
    """torchvision's Conv2dNormActivation: children ``0`` (Conv2D, no bias, padding
    ``(kernel_size - 1) // 2``), ``1`` (BatchNorm2D), ``2`` (the activation)."""
    from ..layers import Sequential

    return Sequential(
        Conv2D(
            in_channels,
            out_channels,
            kernel_size,
            stride,
            (kernel_size - 1) // 2,
            groups=groups,
            bias=False,
            dtype=dtype,
        ),
        BatchNorm2D(out_channels, dtype=dtype),
        activation(),
    )


def check_int(value, name, lo=1):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if value < lo:
        raise ValueError(f"{name} must be >= {lo}, got {value!r}")
    return int(value)
