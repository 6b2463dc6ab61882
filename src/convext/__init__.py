"""convext: fast, exact CNN building blocks for NumPy.

Compiled Cython kernels for 2-D convolution, pooling, activations and losses with their
gradients, a validated functional API (``convext.functional``), and a small layer API
(``convext.layers``) with optimizers (``convext.optim``), a training loop (``fit``) and
saving/loading (``model.save(path)``, ``convext.load(path)``).
"""
import importlib

from . import callbacks, functional, init, layers, losses, models, onnx, optim
from ._build_info import build_info, show_config

# _config first: it clamps OMP_NUM_THREADS before an extension module loads the OpenMP runtime
from ._config import MAX_THREADS, get_num_threads, openmp_enabled, set_num_threads
from ._version import __version__
from .functional import *  # noqa: F401,F403  (every name in functional.__all__)
from .layers import (
    ELU,
    GELU,
    AdaptiveAvgPool2D,
    AdaptiveMaxPool2D,
    AvgPool2D,
    BatchNorm2D,
    Concat,
    Conv2D,
    ConvTranspose2D,
    Dense,
    Dropout,
    Dropout2D,
    Flatten,
    GlobalAvgPool2D,
    Hardsigmoid,
    Hardswish,
    Hardtanh,
    Graph,
    GraphBuilder,
    Identity,
    Layer,
    LayerList,
    LeakyReLU,
    LogSoftmax,
    LPPool2D,
    MaxPool2D,
    MaxUnpool2D,
    ReLU,
    ReLU6,
    Residual,
    Sequential,
    Sigmoid,
    SiLU,
    Softmax,
    Tanh,
    Upsample,
    register_layer,
)
from .state_dict import read_state_dict
from .training import NonFiniteLossError, evaluate, fit, predict


def __getattr__(name):
    # load and save come from convext.serialization, imported on first use: it imports the
    # layers, and importing convext (or convext.layers) never imports it
    if name in ("load", "save"):
        return getattr(importlib.import_module(".serialization", __name__), name)
    raise AttributeError(f"module 'convext' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | {"load", "save"})

__all__ = [
    "__version__",
    "build_info",
    "show_config",
    "get_num_threads",
    "MAX_THREADS",
    "openmp_enabled",
    "set_num_threads",
    "functional",
    "init",
    "layers",
    "losses",
    "models",
    "onnx",
    "optim",
    "callbacks",
    "load",
    "save",
    "read_state_dict",
    "fit",
    "NonFiniteLossError",
    "evaluate",
    "predict",
    *(name for name in layers.__all__ if name != "LAYERS"),
    *functional.__all__,
]
