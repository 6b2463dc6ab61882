"""convext: fast, exact CNN building blocks for NumPy.

Compiled Cython kernels for 2-D convolution, pooling, activations and losses with their
gradients, a validated functional API (``convext.functional``), and a small layer API
(``convext.layers``) with optimizers (``convext.optim``), a training loop (``fit``) and
saving/loading (``model.save(path)``, ``convext.load(path)``).
"""
from ._version import __version__
# _config first: it clamps OMP_NUM_THREADS before an extension module loads the OpenMP runtime
from ._config import MAX_THREADS, get_num_threads, openmp_enabled, set_num_threads
from ._build_info import build_info, show_config
from . import functional
from .functional import *  # noqa: F401,F403  (every name in functional.__all__)
from . import init, layers, losses, optim
from .layers import (
    ELU,
    AvgPool2D,
    BatchNorm2D,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    GlobalAvgPool2D,
    Layer,
    LeakyReLU,
    LogSoftmax,
    LPPool2D,
    MaxPool2D,
    ReLU,
    Sequential,
    Sigmoid,
    Softmax,
    Tanh,
)
from .serialization import load, save
from .state_dict import read_state_dict
from .training import NonFiniteLossError, evaluate, fit, predict

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
    "optim",
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
