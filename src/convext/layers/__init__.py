"""Layers: objects that hold parameters and call ``convext.functional``.

Each layer has ``forward(x)`` (also ``layer(x)``), ``backward(grad_out)`` -> dL/dx (parameter
gradients are accumulated into ``grads()``), ``parameters()``, ``train()`` / ``eval()``,
``reset_parameters(rng)``, ``state_dict()`` / ``load_state_dict()`` with torch.nn's names and
shapes, and ``save(path)``. A layer type of your own is saved and loaded once registered
with ``register_layer`` (see ``convext.layers.registry``).
"""

from .activation import (
    ELU,
    GELU,
    Hardsigmoid,
    Hardswish,
    Hardtanh,
    LeakyReLU,
    LogSoftmax,
    ReLU,
    ReLU6,
    Sigmoid,
    SiLU,
    Softmax,
    Tanh,
)
from .base import Layer
from .composite import Concat, Identity, Residual
from .container import LayerList, Sequential
from .conv import Conv2D, ConvTranspose2D
from .dense import Dense, Flatten
from .dropout import Dropout, Dropout2D
from .graph import Add, Cat, Constant, Div, Graph, GraphBuilder, Mul, Pad, Reshape, Sub, Transpose
from .normalization import BatchNorm2D
from .pooling import (
    AdaptiveAvgPool2D,
    AdaptiveMaxPool2D,
    AvgPool2D,
    GlobalAvgPool2D,
    LPPool2D,
    MaxPool2D,
    MaxUnpool2D,
    Upsample,
)
from .registry import LAYERS, register_layer

__all__ = [
    "AdaptiveAvgPool2D",
    "AdaptiveMaxPool2D",
    "Add",
    "AvgPool2D",
    "BatchNorm2D",
    "Cat",
    "Concat",
    "Constant",
    "Conv2D",
    "ConvTranspose2D",
    "Dense",
    "Div",
    "Dropout",
    "Dropout2D",
    "ELU",
    "Flatten",
    "GELU",
    "GlobalAvgPool2D",
    "Graph",
    "GraphBuilder",
    "Hardsigmoid",
    "Hardswish",
    "Hardtanh",
    "Identity",
    "LAYERS",
    "LPPool2D",
    "Layer",
    "LayerList",
    "LeakyReLU",
    "LogSoftmax",
    "MaxPool2D",
    "MaxUnpool2D",
    "Mul",
    "Pad",
    "ReLU",
    "ReLU6",
    "Reshape",
    "Residual",
    "Sequential",
    "SiLU",
    "Sigmoid",
    "Softmax",
    "Sub",
    "Tanh",
    "Transpose",
    "Upsample",
    "register_layer",
]
