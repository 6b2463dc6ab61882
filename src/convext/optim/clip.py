"""Gradient clipping, in place, with torch.nn.utils.clip_grad_norm_ / clip_grad_value_ semantics.

Both take the gradients of a model (a Layer: its ``grads()``), of an optimizer (every group's),
a list of ``(param, grad)`` pairs, or a list of gradient arrays (a single array too), and
change those arrays in place.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from .optimizer import Params

__all__ = ["clip_grad_norm", "clip_grad_value"]


def _grads(parameters):
    from ..layers.base import Layer
    from .optimizer import Optimizer

    if isinstance(parameters, Layer):
        grads = list(parameters.grads().values())
    elif isinstance(parameters, Optimizer):
        grads = [g for _, g in parameters.pairs]
    elif isinstance(parameters, np.ndarray):
        grads = [parameters]
    else:
        try:
            items = list(parameters)
        except TypeError:
            raise TypeError(
                "parameters must be a Layer, an Optimizer, an array or a list of "
                f"arrays or (param, grad) pairs, got {type(parameters).__name__}"
            ) from None
        grads = [it[1] if isinstance(it, tuple) and len(it) == 2 else it for it in items]
    for i, g in enumerate(grads):
        if not isinstance(g, np.ndarray) or g.dtype.kind != "f":
            raise TypeError(
                f"parameters[{i}]: the gradient must be a float numpy array, got "
                f"{type(g).__name__} {getattr(g, 'dtype', '')}".rstrip()
            )
        if not g.flags.writeable:
            raise ValueError(f"parameters[{i}]: the gradient array is read-only")
    return grads


def _vector_norm(x, p):
    """torch.linalg.vector_norm(x, p) of a float64 array (p may be inf, -inf or 0)."""
    a = np.abs(x)
    if p == math.inf:
        return float(a.max()) if a.size else 0.0
    if p == -math.inf:
        return float(a.min()) if a.size else math.inf
    if p == 0:
        return float(np.count_nonzero(a))
    if p == 1:
        return float(a.sum())
    if p == 2:
        return math.sqrt(float(np.sum(a * a)))  # pairwise, the same for any thread count
    with np.errstate(divide="ignore", over="ignore"):
        return float(np.sum(a**p) ** (1.0 / p))


def clip_grad_norm(
    parameters: Params,
    max_norm: float,
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
) -> float:
    """Scale the gradients in place so that their total norm is at most ``max_norm``.

    As torch.nn.utils.clip_grad_norm_: the total norm is the ``norm_type``-norm of the
    per-array norms (i.e. of all gradients as one vector; ``norm_type`` may be any real number
    or ``inf``); every gradient is multiplied by ``min(1, max_norm / (total_norm + 1e-6))``.
    Returns the total norm before clipping (a float, computed in float64). A total norm that is
    NaN or infinite raises ValueError with ``error_if_nonfinite`` (torch raises RuntimeError);
    otherwise, as in torch, the gradients are multiplied by the resulting factor.
    """
    grads = _grads(parameters)
    if isinstance(max_norm, bool) or not isinstance(max_norm, numbers.Real) or not max_norm >= 0:
        raise ValueError(f"max_norm must be a non-negative number, got {max_norm!r}")
    try:
        p = float(norm_type)
    except (TypeError, ValueError):
        raise TypeError(f"norm_type must be a number or 'inf', got {norm_type!r}") from None
    if math.isnan(p) or isinstance(norm_type, bool):
        raise ValueError(f"norm_type must be a number or inf, got {norm_type!r}")
    if not grads:
        return 0.0
    norms = np.array([_vector_norm(g.astype(np.float64, copy=False).ravel(), p) for g in grads])
    total = _vector_norm(norms, p)
    if error_if_nonfinite and not math.isfinite(total):
        raise ValueError(
            f"the total norm of order {p} of the gradients is {total}, so they "
            "cannot be clipped (error_if_nonfinite=True)"
        )
    coef = min(float(max_norm) / (total + 1e-6), 1.0) if not math.isnan(total) else math.nan
    with np.errstate(invalid="ignore"):  # inf * 0 is NaN, as in torch
        for g in grads:
            g *= coef
    return total


def clip_grad_value(parameters: Params, clip_value: float) -> None:
    """Clamp the gradients in place to ``[-clip_value, clip_value]`` (as
    torch.nn.utils.clip_grad_value_; NaN stays NaN)."""
    grads = _grads(parameters)
    if (
        isinstance(clip_value, bool)
        or not isinstance(clip_value, numbers.Real)
        or not clip_value >= 0
    ):
        raise ValueError(f"clip_value must be a non-negative number, got {clip_value!r}")
    c = float(clip_value)
    for g in grads:
        np.clip(g, -c, c, out=g)
