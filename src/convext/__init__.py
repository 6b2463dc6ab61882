"""convext: fast, exact CNN building blocks for NumPy.

Compiled Cython kernels for 2-D convolution, pooling, activations and losses with their
gradients, a validated functional API (``convext.functional``), and a small layer API.
"""
from ._version import __version__
from ._build_info import build_info, show_config
from ._config import get_num_threads, openmp_enabled, set_num_threads
from .functional import conv2d, conv2d_backward, conv_output_size

__all__ = [
    "__version__",
    "build_info",
    "conv2d",
    "conv2d_backward",
    "conv_output_size",
    "get_num_threads",
    "openmp_enabled",
    "set_num_threads",
    "show_config",
]
