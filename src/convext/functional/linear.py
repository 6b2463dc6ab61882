"""Fully connected layers: ``linear`` and its gradients, on convext's own GEMM."""

from __future__ import annotations

import math

import numpy as np

from .._config import threads_for
from .._kernels import _linear
from .._typing import ArrayLike, FloatArray, Grads
from .._validation import check_alloc, check_array, check_same_dtype, contiguous
from ._common import _check_grad_flags, _shape_str


def _linear_setup(x, weight, fn):
    x = check_array(x, "x", range(1, 33))
    weight = check_array(weight, "weight", (2,))
    check_same_dtype(x=x, weight=weight)
    if x.shape[-1] != weight.shape[1]:
        raise ValueError(
            f"{fn}: x must have shape (..., {weight.shape[1]}) to match weight of "
            f"shape {_shape_str(weight.shape)}, got {_shape_str(x.shape)}"
        )
    return x, weight


def _linear_threads(rows, n_out, K):
    """The thread count of a linear layer's kernels on `rows` rows: its multiply-adds counted
    as a convolution's ("macs"), but its weight's elements as a pointwise kernel's ("elements"),
    whichever asks for more. On few rows each weight element is read for a multiply-add or two
    and the time is the weight's read: on an Intel Xeon VM (float32, batch 1, the packed
    forward, weights cold as in a network, medians of 360 alternated calls, one / two threads)
    512 -> 1000 (resnet's classifier, 0.5 M multiply-adds, under "macs"'s threshold) 77.7 /
    41.0 us, 256 -> 512 20.8 / 11.7 us, 64 -> 1000 8.8 / 5.6 us."""
    return max(threads_for(rows * n_out * K, "macs"), threads_for(n_out * K, "elements"))


def linear(x: ArrayLike, weight: ArrayLike, bias: ArrayLike | None = None) -> FloatArray:
    """``y = x @ weight.T + bias``, as ``torch.nn.functional.linear``.

    x: (..., in_features); weight: (out_features, in_features); bias: (out_features,) or None.
    Returns (..., out_features). Computed with convext's own GEMM and threads (not NumPy's
    BLAS, whose thread pool would compete with convext's for the cores).
    """
    x, weight = _linear_setup(x, weight, "linear")
    n_out, K = weight.shape
    if bias is not None:
        bias = check_array(bias, "bias", (1,))
        check_same_dtype(x=x, bias=bias)
        if bias.shape != (n_out,):
            raise ValueError(
                f"linear: bias must have shape ({n_out},) to match weight of shape "
                f"{_shape_str(weight.shape)}, got {_shape_str(bias.shape)}"
            )
    rows = math.prod(x.shape[:-1])  # (not reshape(-1, K): no -1 when K is 0)
    check_alloc((rows, n_out), "linear: the output (from x and weight) of shape", x.itemsize)
    x2 = contiguous(x.reshape(rows, K))
    y = np.empty((rows, n_out), x.dtype)
    if y.size and K:
        _linear.linear_forward(
            x2,
            contiguous(weight),
            None if bias is None else contiguous(bias),
            y,
            _linear_threads(x2.shape[0], n_out, K),
        )
    elif y.size:
        y[...] = 0 if bias is None else bias
    return y.reshape(x.shape[:-1] + (n_out,))


def linear_backward(
    grad_out: ArrayLike,
    x: ArrayLike,
    weight: ArrayLike,
    needs_input_grad: bool = True,
    needs_weight_grad: bool = True,
    needs_bias_grad: bool = True,
) -> Grads:
    """Gradients of ``linear(x, weight, bias)``: ``(grad_x, grad_weight, grad_bias)`` =
    ``(grad_out @ weight, grad_out^T @ x, grad_out summed over all but the last axis)``, each
    None when not asked for (and not computed)."""
    fn = "linear_backward"
    needs_input_grad, needs_weight_grad, needs_bias_grad = _check_grad_flags(
        needs_input_grad, needs_weight_grad, needs_bias_grad
    )
    x, weight = _linear_setup(x, weight, fn)
    n_out, K = weight.shape
    gy = check_array(grad_out, "grad_out", range(1, 33))
    check_same_dtype(x=x, grad_out=gy)
    if gy.shape != x.shape[:-1] + (n_out,):
        raise ValueError(
            f"{fn}: grad_out must have shape {_shape_str(x.shape[:-1] + (n_out,))} "
            f"for x of shape {_shape_str(x.shape)} and weight "
            f"{_shape_str(weight.shape)}, got {_shape_str(gy.shape)}"
        )
    M = math.prod(x.shape[:-1])  # (not reshape(-1, n): no -1 when n is 0)
    gy2 = contiguous(gy.reshape(M, n_out))
    threads = _linear_threads(M, n_out, K)
    gx = gw = gb = None
    if needs_input_grad:
        gx = np.zeros((M, K), x.dtype)
        if gx.size and n_out:
            _linear.linear_grad_input(gy2, contiguous(weight), gx, threads)
        gx = gx.reshape(x.shape)
    if needs_weight_grad:
        gw = np.zeros(weight.shape, x.dtype)
        if gw.size and M:
            _linear.linear_grad_weight(gy2, contiguous(x.reshape(M, K)), gw, threads)
    if needs_bias_grad:
        gb = gy2.sum(axis=0)
    return gx, gw, gb
