"""Losses: each returns ``(loss, grad)`` with ``grad = d(reduced loss)/d(input)``; for
``reduction='none'`` (loss elementwise or per sample) grad is the gradient of ``sum(loss)``."""

from __future__ import annotations

import math
import numbers

import numpy as np

from .._typing import ArrayLike, FloatArray, LossValue, Reduction
from .._validation import check_reduction, check_same_dtype
from ._common import _float_array, _real, _shape_str
from .activations import _log_softmax, _sigmoid


def _loss_pair(input, target, fn):
    x = _float_array(input, "input")
    t = _float_array(target, "target")
    check_same_dtype(input=x, target=t)
    if x.shape != t.shape:
        raise ValueError(
            f"{fn}: target must have the shape of input {_shape_str(x.shape)}, "
            f"got {_shape_str(t.shape)}"
        )
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
            raise ValueError(
                f"msle_loss: every element of {name} must be > -1 "
                f"(log1p), got minimum {np.min(a)!r}"
            )
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
    w = _broadcast_weight(weight, "weight", x, fn)
    if w is not None:
        loss = loss * w
        grad = grad * w
    return _reduce(loss, grad, reduction)


def _broadcast_weight(w, name, x, fn):
    """An optional float array of x's dtype that broadcasts to x's shape (torch multiplies it
    into the elementwise loss in place, so it may not enlarge the result)."""
    if w is None:
        return None
    w = _float_array(w, name)
    check_same_dtype(input=x, **{name: w})
    try:
        return np.broadcast_to(w, x.shape)
    except ValueError:
        raise ValueError(
            f"{fn}: {name} of shape {_shape_str(w.shape)} does not broadcast to "
            f"input's shape {_shape_str(x.shape)}"
        ) from None


def binary_cross_entropy_with_logits(
    input: ArrayLike,
    target: ArrayLike,
    reduction: Reduction = "mean",
    *,
    weight: ArrayLike | None = None,
    pos_weight: ArrayLike | None = None,
) -> tuple[LossValue, FloatArray]:
    """Binary cross-entropy of ``sigmoid(input)``, computed from the logits without overflow,
    as ``torch.nn.functional.binary_cross_entropy_with_logits``.

    ``loss = weight * ((1 - target)*x - (1 + (pos_weight - 1)*target) * log_sigmoid(x))``,
    i.e. ``max(x, 0) - x*target + log1p(exp(-|x|))`` without pos_weight; gradient
    ``weight * ((1 + (pos_weight - 1)*target) * sigmoid(x) - pos_weight*target)``
    (``weight * (sigmoid(x) - target)`` without pos_weight). ``weight`` and ``pos_weight``
    (keyword-only, arrays of input's dtype) broadcast to input's shape: a pos_weight of shape
    (C,) weighs the positive term of class c over the last axis, as torch.
    """
    fn = "binary_cross_entropy_with_logits"
    x, t = _loss_pair(input, target, fn)
    reduction = check_reduction(reduction, fn)
    w = _broadcast_weight(weight, "weight", x, fn)
    pw = _broadcast_weight(pos_weight, "pos_weight", x, fn)
    dt = x.dtype.type
    with np.errstate(under="ignore"):
        soft = np.log1p(np.exp(-np.abs(x)))
    if pw is None:
        loss = np.maximum(x, dt(0)) - x * t + soft
        grad = _sigmoid(x) - t
    else:
        log_weight = (pw - dt(1)) * t + dt(1)
        log_sigmoid = np.minimum(x, dt(0)) - soft
        loss = (dt(1) - t) * x - log_weight * log_sigmoid
        pt = pw * t
        grad = (pt + dt(1) - t) * _sigmoid(x) - pt
    if w is not None:
        loss = loss * w
        grad = grad * w
    return _reduce(loss, grad, reduction)


def _class_scores(x, name, fn):
    """A float array of per-class scores: (C,) unbatched or (N, C, d1, ..., dk)."""
    x = _float_array(x, name)
    if x.ndim < 1:
        raise ValueError(
            f"{fn}: {name} must be (C,) or (N, C, d1, ..., dk), got shape {_shape_str(x.shape)}"
        )
    return x


def _rows(a):
    """(C,) -> (1, C); (N, C, d1..dk) -> (N*d1*..*dk, C), the class axis last."""
    if a.ndim == 1:
        return a[None]
    rows = a.shape[0] * math.prod(a.shape[2:])  # (not -1: no -1 with 0 classes)
    return np.ascontiguousarray(np.moveaxis(a, 1, -1)).reshape(rows, a.shape[1])


def _unrows(r, shape):
    """Inverse of _rows for an array of ``shape``."""
    if len(shape) == 1:
        return r.reshape(shape)
    moved = (shape[0],) + tuple(shape[2:]) + (shape[1],)
    return np.ascontiguousarray(np.moveaxis(r.reshape(moved), -1, 1))


def _target_shape(shape):
    return () if len(shape) == 1 else (shape[0],) + tuple(shape[2:])


def _class_weight(weight, C, x, fn):
    if weight is None:
        return None
    w = _float_array(weight, "weight")
    check_same_dtype(input=x, weight=w)
    if w.shape != (C,):
        raise ValueError(
            f"{fn}: weight must have shape ({C},), one value per class of input "
            f"of shape {_shape_str(x.shape)}, got {_shape_str(w.shape)}"
        )
    return w


def _class_target(target, shape, ignore_index, fn):
    """Integer class targets of shape (N, d1, ..., dk) (or () for unbatched input), each in
    [0, C) or equal to ignore_index; returned flat (intp) with the mask of counted ones."""
    t = np.asarray(target)
    if not np.issubdtype(t.dtype, np.integer):
        raise TypeError(f"{fn}: class targets must be an integer array, got {t.dtype}")
    want = _target_shape(shape)
    if t.shape != want:
        raise ValueError(
            f"{fn}: target must have shape {want} for input of shape "
            f"{_shape_str(shape)}, got {tuple(t.shape)}"
        )
    C = shape[0] if len(shape) == 1 else shape[1]
    t = t.reshape(-1)
    valid = t != ignore_index
    tv = t[valid]
    if tv.size and (tv.min() < 0 or tv.max() >= C):
        bad = tv.min() if tv.min() < 0 else tv.max()
        raise ValueError(
            f"{fn}: target holds class index {bad}, outside [0, {C}) for input "
            f"of shape {_shape_str(shape)} (ignore_index is {ignore_index})"
        )
    return np.where(valid, t, 0).astype(np.intp), valid


def _class_options(reduction, ignore_index, fn):
    reduction = check_reduction(reduction, fn)
    if isinstance(ignore_index, (bool, np.bool_)) or not isinstance(ignore_index, numbers.Integral):
        raise TypeError(
            f"{fn}: ignore_index must be an int, got {type(ignore_index).__name__} {ignore_index!r}"
        )
    return reduction, int(ignore_index)


def _nll_reduce(loss, grad_rows, valid, wt, reduction, shape, dtype, parts=None):
    """Reduce per-target losses (flat, 0 where ignored) as torch's nll_loss: 'mean' divides by
    the summed weight ``wt`` of the counted targets (NaN when it is 0, as torch).
    ``grad_rows(scale)`` gives d(scale * sum of loss)/d(input) as (rows, C), zero on ignored
    rows; it is brought back to input's layout. As torch, the scale ``1/sum(wt)`` multiplies the
    target weights before anything else (so a zero denominator gives NaN only where a counted
    target's weight meets it). ``parts``: for 'mean', the loss as terms (coefficient, flat
    losses), each divided by the denominator before they are added, as torch's label smoothing
    does (with no weight counted, 0/0 is NaN, where the sum over 0 would be an infinity)."""
    dt = dtype.type
    tshape = _target_shape(shape)
    if reduction == "none":
        return loss.reshape(tshape), _unrows(grad_rows(dt(1)), shape)
    total = dt(np.sum(loss, dtype=dtype))
    if reduction == "sum":
        return total, _unrows(grad_rows(dt(1)), shape)
    denom = dt(np.sum(wt[valid], dtype=dtype))
    with np.errstate(divide="ignore", invalid="ignore"):
        if parts is None:
            value = dt(total / denom)
        else:
            value = dt(sum(dt(c * dt(np.sum(part, dtype=dtype) / denom)) for c, part in parts))
        scale = dt(1) / denom
        grad = grad_rows(scale)
    return value, _unrows(grad, shape)


def cross_entropy(
    logits: ArrayLike,
    target: ArrayLike,
    reduction: Reduction = "mean",
    *,
    weight: ArrayLike | None = None,
    ignore_index: int = -100,
    label_smoothing: float = 0.0,
) -> tuple[LossValue, FloatArray]:
    """Softmax cross-entropy, as ``torch.nn.functional.cross_entropy``.

    logits : float array (N, C) or (N, C, d1, ..., dk) (e.g. a segmentation map), or (C,)
        unbatched; the classes are axis 1 (axis 0 unbatched).
    target : integer class indices of shape (N, d1, ..., dk) (a scalar for (C,)), each in
        [0, C) or equal to ``ignore_index``; or class probabilities of the logits' shape and
        dtype.
    reduction : 'mean', 'sum' or 'none' (per target position, shape (N, d1, ..., dk)).
    weight : optional (C,) array of the logits' dtype, the weight of each class.
    ignore_index : int (default -100); class-index targets equal to it count for nothing
        (loss and gradient 0, left out of the mean's denominator). With probability targets
        it must be negative (unused), as torch.
    label_smoothing : float in [0, 1]; the target becomes ``(1 - s) * one_hot + s / C``.

    With index targets, ``loss = (1 - s) * w[t] * -logp[t] + s / C * sum_c w[c] * -logp[c]``
    per position and 'mean' divides the sum by the summed ``w[t]`` of the non-ignored targets
    (the count when unweighted; NaN when nothing counts), as torch. With probability targets
    ``loss = -sum_c w[c] * t[c] * logp[c]`` and 'mean' divides by the number of positions
    (N * d1 * ... * dk). log-sum-exp is shifted by the maximum, so logits of +-1000 give the
    exact finite value. Gradient: ``softmax * sum_c q[c] - q`` for the effective target weights
    ``q`` (divided like the loss for 'mean').
    """
    fn = "cross_entropy"
    z = _class_scores(logits, "logits", fn)
    reduction, ignore_index = _class_options(reduction, ignore_index, fn)
    s = _real(label_smoothing, "label_smoothing")
    if not 0.0 <= s <= 1.0:
        raise ValueError(f"{fn}: label_smoothing must be between 0 and 1, got {label_smoothing!r}")
    shape = z.shape
    C = shape[0] if z.ndim == 1 else shape[1]
    w = _class_weight(weight, C, z, fn)
    dt = z.dtype.type
    zr = _rows(z)
    logp = _log_softmax(zr, 1)
    with np.errstate(under="ignore"):
        p = np.exp(logp)
    tgt = np.asarray(target)
    if np.issubdtype(tgt.dtype, np.floating):
        t = _float_array(tgt, "target")
        check_same_dtype(logits=z, target=t)
        if t.shape != shape:
            raise ValueError(
                f"{fn}: probability targets must have the logits' shape "
                f"{_shape_str(shape)}, got {_shape_str(t.shape)} (class "
                f"indices must be an integer array)"
            )
        if ignore_index >= 0:  # torch refuses it (a negative one is simply unused)
            raise ValueError(
                f"{fn}: ignore_index ({ignore_index}) is not supported for "
                f"probability targets (only class-index targets)"
            )
        q = _rows(t)
        if s > 0:
            q = q * dt(1 - s) + dt(s / C)
        if w is not None:
            q = q * w
        with np.errstate(invalid="ignore"):  # 0 * -inf is NaN, as in torch
            loss = -np.sum(q * logp, axis=1)
            grad = p * np.sum(q, axis=1, keepdims=True) - q
        tshape = _target_shape(shape)
        if reduction == "none":
            return loss.reshape(tshape), _unrows(grad, shape)
        loss, grad = _reduce(loss, grad, reduction)
        return loss, _unrows(grad, shape)
    t, valid = _class_target(tgt, shape, ignore_index, fn)
    rows = np.arange(t.size)
    wt = w[t] if w is not None else np.ones(t.size, z.dtype)
    wt = np.where(valid, wt, dt(0))
    # q: the weights of the effective (smoothed, weighted) target distribution of each row
    q = np.zeros_like(zr)
    q[rows, t] = wt * dt(1 - s)
    loss = -(logp[rows, t] * wt)
    if s > 0:
        cw = w if w is not None else np.ones(C, z.dtype)
        smooth_q = np.where(valid[:, None], cw * dt(s / C), dt(0))
        q = q + smooth_q
        with np.errstate(invalid="ignore"):
            smooth = np.where(valid, -np.sum(logp * cw, axis=1), dt(0))
        nll = np.where(valid, loss, dt(0))
        parts = [(dt(1 - s), nll), (dt(s / C), smooth)]
        loss = dt(1 - s) * loss + dt(s / C) * smooth
    else:
        parts = None
    loss = np.where(valid, loss, dt(0))

    def grad_rows(scale):
        qs = q * scale
        with np.errstate(invalid="ignore"):
            grad = p * np.sum(qs, axis=1, keepdims=True) - qs
        return np.where(valid[:, None], grad, dt(0))

    return _nll_reduce(loss, grad_rows, valid, wt, reduction, shape, z.dtype, parts)


def nll_loss(
    log_probs: ArrayLike,
    target: ArrayLike,
    reduction: Reduction = "mean",
    *,
    weight: ArrayLike | None = None,
    ignore_index: int = -100,
) -> tuple[LossValue, FloatArray]:
    """Negative log-likelihood, as ``torch.nn.functional.nll_loss``:
    ``loss = -w[t] * log_probs[t]`` per target position for log_probs (N, C, d1, ..., dk) or
    (C,) and integer targets (N, d1, ..., dk) (a scalar for (C,)), each in [0, C) or equal to
    ``ignore_index`` (default -100; such positions count for nothing). ``weight``: optional (C,)
    class weights of log_probs' dtype. 'mean' divides by the summed ``w[t]`` of the non-ignored
    targets (NaN when nothing counts), as torch. Gradient: ``-w[t]`` at each target position
    (divided like the loss for 'mean')."""
    fn = "nll_loss"
    lp = _class_scores(log_probs, "log_probs", fn)
    reduction, ignore_index = _class_options(reduction, ignore_index, fn)
    shape = lp.shape
    C = shape[0] if lp.ndim == 1 else shape[1]
    w = _class_weight(weight, C, lp, fn)
    dt = lp.dtype.type
    t, valid = _class_target(target, shape, ignore_index, fn)
    rows = np.arange(t.size)
    wt = w[t] if w is not None else np.ones(t.size, lp.dtype)
    wt = np.where(valid, wt, dt(0))
    lr = _rows(lp)
    loss = np.where(valid, -(lr[rows, t] * wt), dt(0))

    def grad_rows(scale):
        grad = np.zeros_like(lr)
        with np.errstate(invalid="ignore"):
            grad[rows[valid], t[valid]] = -(wt[valid] * scale)
        return grad

    return _nll_reduce(loss, grad_rows, valid, wt, reduction, shape, lp.dtype)
