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

from .functional import (  # noqa: E402  pooling, activations, losses
    max_pool2d,
    max_pool2d_backward,
    avg_pool2d,
    avg_pool2d_backward,
    lp_pool2d,
    lp_pool2d_backward,
    global_avg_pool2d,
    global_avg_pool2d_backward,
    relu,
    relu_backward,
    leaky_relu,
    leaky_relu_backward,
    elu,
    elu_backward,
    sigmoid,
    sigmoid_backward,
    tanh,
    tanh_backward,
    softplus,
    softplus_backward,
    softmax,
    softmax_backward,
    log_softmax,
    log_softmax_backward,
    mse_loss,
    msle_loss,
    l1_loss,
    l2_loss,
    mape_loss,
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    cross_entropy,
    nll_loss,
)

__all__ += [
    "max_pool2d",
    "max_pool2d_backward",
    "avg_pool2d",
    "avg_pool2d_backward",
    "lp_pool2d",
    "lp_pool2d_backward",
    "global_avg_pool2d",
    "global_avg_pool2d_backward",
    "relu",
    "relu_backward",
    "leaky_relu",
    "leaky_relu_backward",
    "elu",
    "elu_backward",
    "sigmoid",
    "sigmoid_backward",
    "tanh",
    "tanh_backward",
    "softplus",
    "softplus_backward",
    "softmax",
    "softmax_backward",
    "log_softmax",
    "log_softmax_backward",
    "mse_loss",
    "msle_loss",
    "l1_loss",
    "l2_loss",
    "mape_loss",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "cross_entropy",
    "nll_loss",
]
