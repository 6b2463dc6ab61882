"""The functional API: validated, NumPy-in, NumPy-out operations with explicit gradients.

Each function checks and normalises its arguments (raising ValueError/TypeError that names the
argument and the shapes), makes the inputs C-contiguous, allocates the outputs and calls a compiled
kernel from ``convext._kernels``. Nothing here loops over elements. Semantics, shapes and argument
names follow ``torch.nn.functional``; arrays are NCHW, float32 or float64, and the dtype of the
inputs is the dtype of the result.

One module per family: ``conv`` (and ``_routes``, which chooses the convolution's kernel),
``linear``, ``pooling``, ``resampling`` (adaptive pools, interpolation, unpooling),
``normalization``, ``activations``, ``losses``; ``_common`` holds the private helpers.
"""

from .._validation import conv_output_size
from .activations import (
    elu,
    elu_backward,
    gelu,
    gelu_backward,
    hardsigmoid,
    hardsigmoid_backward,
    hardswish,
    hardswish_backward,
    hardtanh,
    hardtanh_backward,
    leaky_relu,
    leaky_relu_backward,
    log_softmax,
    log_softmax_backward,
    relu,
    relu6,
    relu6_backward,
    relu_backward,
    sigmoid,
    sigmoid_backward,
    silu,
    silu_backward,
    softmax,
    softmax_backward,
    softplus,
    softplus_backward,
    tanh,
    tanh_backward,
)
from .conv import conv2d, conv2d_backward
from .linear import linear, linear_backward
from .losses import (
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    cross_entropy,
    l1_loss,
    l2_loss,
    mape_loss,
    mse_loss,
    msle_loss,
    nll_loss,
)
from .normalization import batch_norm, batch_norm_backward
from .pooling import (
    avg_pool2d,
    avg_pool2d_backward,
    global_avg_pool2d,
    global_avg_pool2d_backward,
    lp_pool2d,
    lp_pool2d_backward,
    max_pool2d,
    max_pool2d_backward,
)
from .resampling import (
    adaptive_avg_pool2d,
    adaptive_avg_pool2d_backward,
    adaptive_max_pool2d,
    adaptive_max_pool2d_backward,
    interpolate,
    interpolate_backward,
    max_unpool2d,
    max_unpool2d_backward,
)
from .transpose import conv_transpose2d, conv_transpose2d_backward

__all__ = [
    # convolution and fully connected
    "conv2d",
    "conv2d_backward",
    "conv_output_size",
    "conv_transpose2d",
    "conv_transpose2d_backward",
    "linear",
    "linear_backward",
    # pooling
    "max_pool2d",
    "max_pool2d_backward",
    "avg_pool2d",
    "avg_pool2d_backward",
    "lp_pool2d",
    "lp_pool2d_backward",
    "global_avg_pool2d",
    "global_avg_pool2d_backward",
    # resampling
    "adaptive_avg_pool2d",
    "adaptive_avg_pool2d_backward",
    "adaptive_max_pool2d",
    "adaptive_max_pool2d_backward",
    "interpolate",
    "interpolate_backward",
    "max_unpool2d",
    "max_unpool2d_backward",
    # normalisation
    "batch_norm",
    "batch_norm_backward",
    # activations
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
    "relu6",
    "relu6_backward",
    "hardtanh",
    "hardtanh_backward",
    "hardswish",
    "hardswish_backward",
    "hardsigmoid",
    "hardsigmoid_backward",
    "silu",
    "silu_backward",
    "gelu",
    "gelu_backward",
    # losses
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
