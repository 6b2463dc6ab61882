"""Weight initialisers with PyTorch's formulas (``torch.nn.init``) and an explicit random source.

Each function fills the given float array in place and returns it. ``rng`` is a
``numpy.random.Generator`` (or an int seed); the same generator state gives the same weights, so
runs are reproducible. ``None`` draws from a fresh, unseeded generator.

Fans follow torch: for a weight of shape ``(out, in, *kernel)``, ``fan_in = in * prod(kernel)``
and ``fan_out = out * prod(kernel)``.
"""

import math

import numpy as np

__all__ = [
    "calculate_gain",
    "kaiming_normal",
    "kaiming_uniform",
    "ones",
    "uniform",
    "normal",
    "xavier_normal",
    "xavier_uniform",
    "zeros",
    "fan_in_and_fan_out",
]


def _rng(rng):
    return np.random.default_rng(rng)


def fan_in_and_fan_out(shape):
    """``(fan_in, fan_out)`` of a weight shape, as
    ``torch.nn.init._calculate_fan_in_and_fan_out``."""
    shape = tuple(shape)
    if len(shape) < 2:
        raise ValueError(
            f"fan in and fan out need an array of at least 2 dimensions, got shape {shape}"
        )
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def calculate_gain(nonlinearity, param=None):
    """The recommended gain for a nonlinearity (torch.nn.init.calculate_gain)."""
    linear = (
        "linear",
        "conv1d",
        "conv2d",
        "conv3d",
        "conv_transpose1d",
        "conv_transpose2d",
        "conv_transpose3d",
        "sigmoid",
    )
    if nonlinearity in linear:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        if isinstance(slope, bool) or not isinstance(slope, (int, float)):
            raise ValueError(f"negative_slope {slope!r} is not a valid number")
        return math.sqrt(2.0 / (1 + slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(
        f"unsupported nonlinearity {nonlinearity!r}; choose from "
        f"{', '.join(linear + ('tanh', 'relu', 'leaky_relu', 'selu'))}"
    )


def _fan(shape, mode):
    fan_in, fan_out = fan_in_and_fan_out(shape)
    if mode == "fan_in":
        return fan_in
    if mode == "fan_out":
        return fan_out
    raise ValueError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}")


def uniform(array, rng=None, a=0.0, b=1.0):
    """Fill ``array`` with U(a, b)."""
    array[...] = _rng(rng).uniform(a, b, array.shape)
    return array


def normal(array, rng=None, mean=0.0, std=1.0):
    """Fill ``array`` with N(mean, std**2)."""
    array[...] = _rng(rng).normal(mean, std, array.shape)
    return array


def zeros(array):
    array.fill(0)
    return array


def ones(array):
    array.fill(1)
    return array


def kaiming_uniform(array, rng=None, a=0.0, mode="fan_in", nonlinearity="leaky_relu"):
    """He et al. (2015) uniform: U(-bound, bound), ``bound = gain * sqrt(3 / fan)``."""
    std = calculate_gain(nonlinearity, a) / math.sqrt(_fan(array.shape, mode))
    bound = math.sqrt(3.0) * std
    return uniform(array, rng, -bound, bound)


def kaiming_normal(array, rng=None, a=0.0, mode="fan_in", nonlinearity="leaky_relu"):
    """He et al. (2015) normal: N(0, std**2), ``std = gain / sqrt(fan)``."""
    std = calculate_gain(nonlinearity, a) / math.sqrt(_fan(array.shape, mode))
    return normal(array, rng, 0.0, std)


def xavier_uniform(array, rng=None, gain=1.0):
    """Glorot & Bengio (2010) uniform: ``bound = gain * sqrt(6 / (fan_in + fan_out))``."""
    fan_in, fan_out = fan_in_and_fan_out(array.shape)
    bound = math.sqrt(3.0) * gain * math.sqrt(2.0 / (fan_in + fan_out))
    return uniform(array, rng, -bound, bound)


def xavier_normal(array, rng=None, gain=1.0):
    """Glorot & Bengio (2010) normal: ``std = gain * sqrt(2 / (fan_in + fan_out))``."""
    fan_in, fan_out = fan_in_and_fan_out(array.shape)
    return normal(array, rng, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)))
