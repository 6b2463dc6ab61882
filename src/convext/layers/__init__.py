"""Layers: objects that hold parameters and call ``convext.functional``.

Each layer has ``forward(x)`` (also ``layer(x)``), ``backward(grad_out)`` -> dL/dx (parameter
gradients are accumulated into ``grads()``), ``parameters()``, ``train()`` / ``eval()``,
``reset_parameters(rng)``, ``state_dict()`` / ``load_state_dict()`` with torch.nn's names and
shapes, and ``save(path)``. A layer type of your own is saved and loaded once registered
with ``register_layer`` (see ``convext.layers.registry``).
"""
from .activation import ELU, LeakyReLU, LogSoftmax, ReLU, Sigmoid, Softmax, Tanh
from .base import Layer
from .composite import Concat, Identity, Residual
from .container import LayerList, Sequential
from .conv import Conv2D
from .dense import Dense, Flatten
from .dropout import Dropout
from .graph import Add, Cat, Constant, Div, Graph, GraphBuilder, Mul, Pad, Reshape, Sub, Transpose
from .normalization import BatchNorm2D
from .pooling import AvgPool2D, GlobalAvgPool2D, LPPool2D, MaxPool2D
from .registry import LAYERS, register_layer

__all__ = ["Add", "Cat", "Constant", "Div", "Graph", "GraphBuilder", "Mul", "Pad", "Reshape",
           "Sub", "Transpose",
           "AvgPool2D", "BatchNorm2D", "Concat", "Conv2D", "Dense", "Dropout", "ELU", "Flatten",
           "GlobalAvgPool2D", "Identity", "LAYERS", "LPPool2D", "Layer", "LayerList", "LeakyReLU",
           "LogSoftmax", "MaxPool2D", "ReLU", "Residual", "Sequential", "Sigmoid", "Softmax",
           "Tanh", "register_layer"]
