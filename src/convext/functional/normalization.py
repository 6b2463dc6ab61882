"""Batch normalisation over the channel axis and its gradients."""

from __future__ import annotations

import math
from typing import Literal, overload

import numpy as np

from .._config import threads_for
from .._kernels import _batchnorm
from .._typing import ArrayLike, FloatArray, Grads
from .._validation import check_array, check_out, check_same_dtype, contiguous
from ._common import _buffer, _check_bool, _check_grad_flags, _check_size, _into, _real, _shape_str


def _channel_vector(v, name, C, dtype, fn, writable=False):
    if v is None:
        return None
    if writable and not isinstance(v, np.ndarray):
        raise TypeError(
            f"{fn}: {name} must be a numpy.ndarray (it is updated in place), got {type(v).__name__}"
        )
    arr = check_array(v, name, (1,))
    if arr.shape != (C,):
        raise ValueError(
            f"{fn}: {name} must have shape ({C},) for x with {C} channels, got "
            f"{_shape_str(arr.shape)}"
        )
    if arr.dtype != dtype:
        raise TypeError(f"{fn}: {name} must have x's dtype {dtype}, got {arr.dtype}")
    if writable and (arr is not v or not v.flags.writeable):
        raise ValueError(
            f"{fn}: {name} must be a writable native-byte-order array (it is updated in place)"
        )
    return arr


def _bn_x(x, name="x"):
    """(N, C, *spatial) -> C-contiguous (N, C, L) view or copy."""
    x = check_array(x, name, (2, 3, 4, 5))
    N, C = x.shape[:2]
    _check_size(x.shape, name, "batch_norm", x.dtype.itemsize)
    return x, contiguous(x).reshape(N, C, math.prod(x.shape[2:]))


@overload
def batch_norm(
    x: ArrayLike,
    running_mean: ArrayLike,
    running_var: ArrayLike,
    weight: ArrayLike | None = ...,
    bias: ArrayLike | None = ...,
    training: bool = ...,
    momentum: float = ...,
    eps: float = ...,
    return_stats: Literal[False] = ...,
    *,
    out: FloatArray | None = ...,
) -> FloatArray: ...


@overload
def batch_norm(
    x: ArrayLike,
    running_mean: ArrayLike,
    running_var: ArrayLike,
    weight: ArrayLike | None,
    bias: ArrayLike | None,
    training: bool,
    momentum: float,
    eps: float,
    return_stats: Literal[True],
    *,
    out: FloatArray | None = ...,
) -> tuple[FloatArray, FloatArray, FloatArray]: ...


@overload
def batch_norm(
    x: ArrayLike,
    running_mean: ArrayLike,
    running_var: ArrayLike,
    weight: ArrayLike | None = ...,
    bias: ArrayLike | None = ...,
    training: bool = ...,
    momentum: float = ...,
    eps: float = ...,
    *,
    return_stats: Literal[True],
    out: FloatArray | None = ...,
) -> tuple[FloatArray, FloatArray, FloatArray]: ...


@overload
def batch_norm(
    x: ArrayLike,
    running_mean: ArrayLike,
    running_var: ArrayLike,
    weight: ArrayLike | None = ...,
    bias: ArrayLike | None = ...,
    training: bool = ...,
    momentum: float = ...,
    eps: float = ...,
    return_stats: bool = ...,
    *,
    out: FloatArray | None = ...,
) -> FloatArray | tuple[FloatArray, FloatArray, FloatArray]: ...


def batch_norm(
    x: ArrayLike,
    running_mean: ArrayLike,
    running_var: ArrayLike,
    weight: ArrayLike | None = None,
    bias: ArrayLike | None = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
    return_stats: bool = False,
    *,
    out: FloatArray | None = None,
) -> FloatArray | tuple[FloatArray, FloatArray, FloatArray]:
    """Batch normalisation over the channel axis, as ``torch.nn.functional.batch_norm``.

    ``y = (x - mean) * invstd * weight + bias`` per channel, ``invstd = 1/sqrt(var + eps)``.

    Parameters
    ----------
    x : array (N, C), (N, C, L), (N, C, H, W) or (N, C, D, H, W); float32 or float64.
    running_mean, running_var : arrays (C,) of x's dtype, or None. In eval mode
        (``training=False``) they are the statistics used (both required). In training mode the
        batch's statistics are used and, when given, these are updated IN PLACE:
        ``running_mean = (1 - momentum) * running_mean + momentum * batch_mean`` and
        ``running_var = (1 - momentum) * running_var + momentum * batch_var * n / (n - 1)``
        (the unbiased batch variance; ``n = N * H * W``), as torch.
    weight, bias : arrays (C,) of x's dtype, or None (no scaling / no shift).
    training : bool.
    momentum : float.
    eps : float, > 0.
    return_stats : bool. Also return ``(mean, invstd)``, the per-channel statistics used (the
        batch's in training mode, the running ones in eval mode), as ``batch_norm_backward``
        takes them.
    out : array of x's shape and dtype, optional: written with y (and returned). It may be x
        itself (in-place normalisation); it is only written once everything succeeded.

    Returns
    -------
    y : array of x's shape and dtype; ``(y, mean, invstd)`` with ``return_stats``.

    Notes
    -----
    Statistics are accumulated in double, per channel in a fixed order: the result is bitwise
    the same for every thread count, and in eval mode each sample's output does not depend on
    the rest of the batch. Training needs more than one value per channel (``n > 1``), or
    none at all: an empty x (``n == 0``, e.g. a batch of 0) gives an empty y and leaves the
    running statistics unchanged, as torch (the returned statistics are then zeros).
    """
    fn = "batch_norm"
    x, x3 = _bn_x(x)
    N, C, L = x3.shape
    dtype = x.dtype
    training = _check_bool(training, "training")
    return_stats = _check_bool(return_stats, "return_stats")
    momentum = _real(momentum, "momentum")
    eps = _real(eps, "eps")
    if eps <= 0:
        raise ValueError(f"{fn}: eps must be positive, got {eps!r}")
    check_out(out, x.shape, dtype)
    rm = _channel_vector(running_mean, "running_mean", C, dtype, fn, writable=training)
    rv = _channel_vector(running_var, "running_var", C, dtype, fn, writable=training)
    w = _channel_vector(weight, "weight", C, dtype, fn)
    b = _channel_vector(bias, "bias", C, dtype, fn)
    if (rm is None) != (rv is None):
        raise ValueError(f"{fn}: running_mean and running_var must both be arrays or both None")
    if rm is not None and training:
        # they are written after y: inside out they would overwrite the result (inside x
        # alone they are only written after y is computed from it, as torch does)
        pairs = [("running_mean", rm, "running_var", rv)]
        if out is not None:
            pairs += [(n, r, "out", out) for n, r in (("running_mean", rm), ("running_var", rv))]
        for r_name, r, a_name, a in pairs:
            if np.may_share_memory(r, a):
                raise ValueError(f"{fn}: {r_name} and {a_name} must not share memory")
    n = N * L
    nt = threads_for(x3.size, "elements")
    if training and n == 0:
        # torch: an empty batch normalises nothing and leaves the running statistics alone
        mean = np.zeros(C, dtype)
        invstd = np.zeros(C, dtype)
        rm = None
    elif training:
        if n == 1:
            raise ValueError(
                f"{fn}: expected more than 1 value per channel when training, "
                f"got x of shape {_shape_str(x.shape)}"
            )
        mean64 = np.empty(C, np.float64)
        var64 = np.empty(C, np.float64)
        _batchnorm.batch_stats(x3, mean64, var64, nt)
        mean = mean64.astype(dtype)
        invstd = (1.0 / np.sqrt(var64 + eps)).astype(dtype)
        if rm is not None:  # written at the end, once y is done
            new_m = (momentum * mean64 + (1.0 - momentum) * rm.astype(np.float64)).astype(dtype)
            new_v = (
                momentum * var64 * (n / (n - 1)) + (1.0 - momentum) * rv.astype(np.float64)
            ).astype(dtype)
    else:
        if rm is None:
            raise ValueError(
                f"{fn}: running_mean and running_var are required in eval mode (training=False)"
            )
        mean = rm.copy()
        with np.errstate(invalid="ignore", divide="ignore"):
            invstd = (1.0 / np.sqrt(rv.astype(np.float64) + eps)).astype(dtype)
    # torch's transform: y = x * alpha + beta, alpha = invstd * weight, beta = bias - mean*alpha
    alpha = invstd * w if w is not None else invstd
    beta = (b if b is not None else np.zeros(C, dtype)) - mean * alpha
    # the transform is elementwise, so writing over x itself (the very same array) is safe;
    # any other overlap with x gets a fresh buffer
    same = out is x and x.flags.c_contiguous
    y = _buffer(out, x.shape, dtype, w, b, rm, rv, None if same else x)
    if y.size:
        _batchnorm.affine(x3, y.reshape(N, C, L), contiguous(alpha), contiguous(beta), nt)
    y = _into(out, y)
    if training and rm is not None:
        rm[...] = new_m
        rv[...] = new_v
    return (y, mean, invstd) if return_stats else y


def batch_norm_backward(
    grad_out: ArrayLike,
    x: ArrayLike,
    mean: ArrayLike,
    invstd: ArrayLike,
    weight: ArrayLike | None = None,
    training: bool = False,
    needs_input_grad: bool = True,
    needs_weight_grad: bool = True,
    needs_bias_grad: bool = True,
) -> Grads:
    """Gradients of ``batch_norm``: ``(grad_x, grad_weight, grad_bias)``.

    ``mean`` and ``invstd`` are the statistics the forward pass used (``return_stats=True``).
    In training mode they depend on x, and ``grad_x`` is torch's
    ``(g - mean(g) - (x - mean) * invstd**2 * mean(g * (x - mean))) * invstd * weight``; in
    eval mode they are constants and ``grad_x = g * invstd * weight``. ``grad_weight =
    sum(g * (x - mean) * invstd)`` and ``grad_bias = sum(g)`` over (N, spatial). A gradient not
    asked for (or grad_weight/grad_bias when ``weight`` is None, i.e. no affine) is None.
    Reductions are in double, per channel in a fixed order (thread-count independent).
    """
    fn = "batch_norm_backward"
    x, x3 = _bn_x(x)
    gy = check_array(grad_out, "grad_out", (2, 3, 4, 5))
    check_same_dtype(x=x, grad_out=gy)
    if gy.shape != x.shape:
        raise ValueError(
            f"{fn}: grad_out must have x's shape {_shape_str(x.shape)}, got {_shape_str(gy.shape)}"
        )
    N, C, L = x3.shape
    dtype = x.dtype
    mean = _channel_vector(mean, "mean", C, dtype, fn)
    invstd = _channel_vector(invstd, "invstd", C, dtype, fn)
    if mean is None or invstd is None:
        raise TypeError(
            f"{fn}: mean and invstd must be arrays (from batch_norm(..., return_stats=True))"
        )
    w = _channel_vector(weight, "weight", C, dtype, fn)
    training = _check_bool(training, "training")
    need_x, need_w, need_b = _check_grad_flags(needs_input_grad, needs_weight_grad, needs_bias_grad)
    need_w = need_w and w is not None
    need_b = need_b and w is not None
    g3 = contiguous(gy).reshape(N, C, L)
    n = N * L
    nt = threads_for(x3.size, "elements")
    scale = invstd * w if w is not None else invstd
    gx = gw = gb = None
    if training or need_w or need_b:
        sum_g = np.zeros(C, np.float64)
        sum_gxc = np.zeros(C, np.float64)
        if n:
            _batchnorm.backward_reduce(g3, x3, mean.astype(np.float64), sum_g, sum_gxc, nt)
        if need_w:
            gw = (sum_gxc * invstd.astype(np.float64)).astype(dtype)
        if need_b:
            gb = sum_g.astype(dtype)
    if need_x:
        gx = np.empty(x.shape, dtype)
        if gx.size:
            if training:
                inv64 = invstd.astype(np.float64)
                grad_mean = (sum_g / n).astype(dtype)
                k = (sum_gxc * inv64 * inv64 / n).astype(dtype)
                _batchnorm.backward_input_train(
                    g3,
                    x3,
                    gx.reshape(N, C, L),
                    contiguous(mean),
                    grad_mean,
                    k,
                    contiguous(scale),
                    nt,
                )
            else:
                _batchnorm.scale_only(g3, gx.reshape(N, C, L), contiguous(scale), nt)
    return gx, gw, gb
