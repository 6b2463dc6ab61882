"""Losses: each returns ``(loss, grad)`` with ``grad = d(reduced loss)/d(input)``; for
``reduction='none'`` (loss elementwise or per sample) grad is the gradient of ``sum(loss)``."""
from __future__ import annotations

import numpy as np

from .._typing import ArrayLike, FloatArray, LossValue, Reduction
from .._validation import check_reduction, check_same_dtype
from ._common import _float_array, _shape_str
from .activations import _log_softmax, _sigmoid


def _loss_pair(input, target, fn):
    x = _float_array(input, "input")
    t = _float_array(target, "target")
    check_same_dtype(input=x, target=t)
    if x.shape != t.shape:
        raise ValueError(f"{fn}: target must have the shape of input {_shape_str(x.shape)}, "
                         f"got {_shape_str(t.shape)}")
    return x, t


def _reduce(loss, grad, reduction, count=None):
    """Reduce the unreduced ``loss``; ``grad`` is d(sum of loss)/d(input), divided by the count
    for 'mean' (count defaults to loss.size; the mean of nothing is NaN, as in torch)."""
    if reduction == "none":
        return loss, grad
    dtype = grad.dtype.type
    total = dtype(np.sum(loss, dtype=grad.dtype))
    if reduction == "sum":
        return total, grad
    n = loss.size if count is None else count
    if n == 0:
        return dtype(np.nan), grad
    return dtype(total / dtype(n)), grad / dtype(n)


def mse_loss(
    input: ArrayLike,
    target: ArrayLike,
    reduction: Reduction = "mean",
) -> tuple[LossValue, FloatArray]:
    """Mean squared error: elementwise ``(input - target)**2`` reduced by ``reduction``."""
    x, t = _loss_pair(input, target, "mse_loss")
    reduction = check_reduction(reduction, "mse_loss")
    d = x - t
    return _reduce(d * d, x.dtype.type(2) * d, reduction)


def msle_loss(
    input: ArrayLike,
    target: ArrayLike,
    reduction: Reduction = "mean",
) -> tuple[LossValue, FloatArray]:
    """Mean squared logarithmic error: elementwise ``(log1p(input) - log1p(target))**2``.

    input and target must be > -1 (ValueError otherwise). Equals ``mse_loss`` of the log1p's.
    """
    x, t = _loss_pair(input, target, "msle_loss")
    reduction = check_reduction(reduction, "msle_loss")
    for name, a in (("input", x), ("target", t)):
        if a.size and not np.all(a > -1):
            raise ValueError(f"msle_loss: every element of {name} must be > -1 "
                             f"(log1p), got minimum {np.min(a)!r}")
    d = np.log1p(x) - np.log1p(t)
    return _reduce(d * d, x.dtype.type(2) * d / (x.dtype.type(1) + x), reduction)


def l1_loss(
    input: ArrayLike,
    target: ArrayLike,
    reduction: Reduction = "mean",
) -> tuple[LossValue, FloatArray]:
    """Mean absolute error: elementwise ``|input - target|``; gradient ``sign(input - target)``
    (0 where they are equal, as torch)."""
    x, t = _loss_pair(input, target, "l1_loss")
    reduction = check_reduction(reduction, "l1_loss")
    d = x - t
    return _reduce(np.abs(d), np.sign(d), reduction)


def l2_loss(
    input: ArrayLike,
    target: ArrayLike,
    reduction: Reduction = "mean",
) -> tuple[LossValue, FloatArray]:
    """L2 loss: the sum of squared errors of each sample.

    The first axis is the batch: ``loss[n] = sum((input[n] - target[n])**2)`` over all the
    other axes (for 1-D input each sample is one number). 'none' returns these per-sample sums
    (shape (N,)), 'sum' their total, 'mean' their mean over the batch (the total divided by N,
    not by the number of elements: that would be ``mse_loss``). input must have at least one
    dimension.
    """
    x, t = _loss_pair(input, target, "l2_loss")
    reduction = check_reduction(reduction, "l2_loss")
    if x.ndim < 1:
        raise ValueError(f"l2_loss: input must have a batch axis, got shape {_shape_str(x.shape)}")
    d = x - t
    sq = d * d
    per_sample = np.sum(sq, axis=tuple(range(1, x.ndim)))
    return _reduce(per_sample, x.dtype.type(2) * d, reduction, count=x.shape[0])


_MAPE_EPS = 1e-7


def mape_loss(
    input: ArrayLike,
    target: ArrayLike,
    reduction: Reduction = "mean",
) -> tuple[LossValue, FloatArray]:
    """Mean absolute percentage error: elementwise ``100 * |input - target| / max(|target|,
    1e-7)`` (the 1e-7 floor, as in Keras, keeps a zero target finite); gradient
    ``100 * sign(input - target) / max(|target|, 1e-7)``."""
    x, t = _loss_pair(input, target, "mape_loss")
    reduction = check_reduction(reduction, "mape_loss")
    dt = x.dtype.type
    scale = dt(100) / np.maximum(np.abs(t), dt(_MAPE_EPS))
    d = x - t
    return _reduce(np.abs(d) * scale, np.sign(d) * scale, reduction)


def binary_cross_entropy(
    input: ArrayLike,
    target: ArrayLike,
    weight: ArrayLike | None = None,
    reduction: Reduction = "mean",
) -> tuple[LossValue, FloatArray]:
    """Binary cross-entropy of probabilities, as torch:
    ``-weight * (target*log(input) + (1 - target)*log(1 - input))`` with each log clamped at
    -100; gradient ``weight * (input - target) / max(input*(1 - input), 1e-12)`` (torch's
    formula, with its 1e-12 rounded to float32). Every input element must lie in [0, 1];
    weight broadcasts to input's shape.
    """
    fn = "binary_cross_entropy"
    x, t = _loss_pair(input, target, fn)
    reduction = check_reduction(reduction, fn)
    if x.size and not np.all((x >= 0) & (x <= 1)):
        raise ValueError(f"{fn}: every element of input must be between 0 and 1")
    dt = x.dtype.type
    with np.errstate(divide="ignore"):
        lx = np.maximum(np.log(x), dt(-100))
        l1x = np.maximum(np.log(dt(1) - x), dt(-100))
    loss = -(t * lx + (dt(1) - t) * l1x)
    # torch's floor is the float32 constant 1e-12f, also for float64
    grad = (x - t) / np.maximum(x * (dt(1) - x), dt(np.float32(1e-12)))
    if weight is not None:
        w = _float_array(weight, "weight")
        check_same_dtype(input=x, weight=w)
        try:
            w = np.broadcast_to(w, x.shape)
        except ValueError:
            raise ValueError(f"{fn}: weight of shape {_shape_str(w.shape)} does not broadcast "
                             f"to input's shape {_shape_str(x.shape)}") from None
        loss = loss * w
        grad = grad * w
    return _reduce(loss, grad, reduction)


def binary_cross_entropy_with_logits(
    input: ArrayLike,
    target: ArrayLike,
    reduction: Reduction = "mean",
) -> tuple[LossValue, FloatArray]:
    """Binary cross-entropy of ``sigmoid(input)``, computed from the logits without overflow:
    ``max(x, 0) - x*target + log1p(exp(-|x|))``; gradient ``sigmoid(x) - target``."""
    fn = "binary_cross_entropy_with_logits"
    x, t = _loss_pair(input, target, fn)
    reduction = check_reduction(reduction, fn)
    with np.errstate(under="ignore"):
        loss = np.maximum(x, x.dtype.type(0)) - x * t + np.log1p(np.exp(-np.abs(x)))
    return _reduce(loss, _sigmoid(x) - t, reduction)


def _class_scores(x, name, fn):
    """A float array of per-class scores (N, C)."""
    x = _float_array(x, name)
    if x.ndim != 2:
        raise ValueError(f"{fn}: {name} must be 2-dimensional (N, C), got shape "
                         f"{_shape_str(x.shape)}")
    return x


def _class_target(target, N, C, fn):
    t = np.asarray(target)
    if not np.issubdtype(t.dtype, np.integer):
        raise TypeError(f"{fn}: class targets must be an integer array, got {t.dtype}")
    if t.shape != (N,):
        raise ValueError(f"{fn}: target must have shape ({N},) for input of shape ({N}, {C}), "
                         f"got {_shape_str(t.shape)}")
    if t.size and (t.min() < 0 or t.max() >= C):
        bad = t.min() if t.min() < 0 else t.max()
        raise ValueError(f"{fn}: target holds class index {bad}, outside [0, {C}) for input "
                         f"of shape ({N}, {C})")
    return t.astype(np.intp, copy=False)


def cross_entropy(
    logits: ArrayLike,
    target: ArrayLike,
    reduction: Reduction = "mean",
) -> tuple[LossValue, FloatArray]:
    """Softmax cross-entropy, as ``torch.nn.functional.cross_entropy`` (no weights).

    logits : (N, C) float array. target : integer class indices (N,) in [0, C), or class
    probabilities (N, C) of the logits' dtype. ``loss[n] = -sum_c t[n, c] * log_softmax(
    logits)[n, c]`` (one-hot t for indices); 'mean' divides by N. log-sum-exp is shifted by the
    row maximum, so logits of +-1000 give the exact finite value. Gradient:
    ``softmax(logits) * sum_c t[n, c] - t`` (divided by N for 'mean').
    """
    fn = "cross_entropy"
    z = _class_scores(logits, "logits", fn)
    reduction = check_reduction(reduction, fn)
    N, C = z.shape
    logp = _log_softmax(z, 1)
    with np.errstate(under="ignore"):
        p = np.exp(logp)
    tgt = np.asarray(target)
    if np.issubdtype(tgt.dtype, np.floating):
        t = _float_array(tgt, "target")
        check_same_dtype(logits=z, target=t)
        if t.shape != z.shape:
            raise ValueError(f"{fn}: probability targets must have the logits' shape "
                             f"{_shape_str(z.shape)}, got {_shape_str(t.shape)} (class "
                             f"indices must be an integer array)")
        with np.errstate(invalid="ignore"):  # 0 * -inf is NaN, as in torch
            loss = -np.sum(t * logp, axis=1)
            grad = p * np.sum(t, axis=1, keepdims=True) - t
    else:
        t = _class_target(tgt, N, C, fn)
        rows = np.arange(N)
        loss = -logp[rows, t]
        grad = p
        grad[rows, t] -= z.dtype.type(1)
    return _reduce(loss, grad, reduction)


def nll_loss(
    log_probs: ArrayLike,
    target: ArrayLike,
    reduction: Reduction = "mean",
) -> tuple[LossValue, FloatArray]:
    """Negative log-likelihood, as ``torch.nn.functional.nll_loss`` (no weights):
    ``loss[n] = -log_probs[n, target[n]]`` for log_probs (N, C) and integer targets (N,);
    'mean' divides by N. Gradient: -1 at each target position (divided by N for 'mean')."""
    fn = "nll_loss"
    lp = _class_scores(log_probs, "log_probs", fn)
    reduction = check_reduction(reduction, fn)
    N, C = lp.shape
    t = _class_target(target, N, C, fn)
    rows = np.arange(N)
    grad = np.zeros_like(lp)
    grad[rows, t] = lp.dtype.type(-1)
    return _reduce(-lp[rows, t], grad, reduction)
