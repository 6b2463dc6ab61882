"""Loss objects for training: thin wrappers of the functional losses.

Calling a loss object returns ``(loss, grad)``: the loss (a float for ``reduction='mean'`` or
``'sum'``, an array for ``'none'``) and its gradient with respect to the input, which is what a
model's ``backward`` takes.
"""

from . import functional
from ._validation import check_reduction

__all__ = [
    "BCELoss",
    "BCEWithLogitsLoss",
    "CrossEntropyLoss",
    "L1Loss",
    "Loss",
    "MSELoss",
    "NLLLoss",
    "get",
]


class Loss:
    """A loss with its options; ``loss(input, target)`` returns ``(loss, grad)``."""

    _fn = None
    _options = ()  # (name, default) of the keyword options the functional loss takes

    def __init__(self, reduction="mean", **options):
        self.reduction = check_reduction(reduction)
        known = dict(self._options)
        for k in options:
            if k not in known:
                raise TypeError(f"{type(self).__name__}: unexpected option {k!r}")
        for k, default in self._options:
            setattr(self, k, options.get(k, default))

    def _kwargs(self):
        return {k: getattr(self, k) for k, _ in self._options}

    def __call__(self, input, target):
        return getattr(functional, self._fn)(
            input, target, reduction=self.reduction, **self._kwargs()
        )

    def __repr__(self):
        parts = [] if self.reduction == "mean" else [f"reduction={self.reduction!r}"]
        for k, default in self._options:
            v = getattr(self, k)
            if v is not default and not (type(v) is type(default) and v == default):
                parts.append(f"{k}={v!r}")
        return f"{type(self).__name__}({', '.join(parts)})"


class CrossEntropyLoss(Loss):
    """Softmax cross-entropy on logits (N, C, d1, ..., dk) or (C,); targets are class indices
    or class probabilities (functional.cross_entropy), with torch's options ``weight``,
    ``ignore_index`` and ``label_smoothing``."""

    _fn = "cross_entropy"
    _options = (("weight", None), ("ignore_index", -100), ("label_smoothing", 0.0))

    def __init__(self, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
        super().__init__(
            reduction, weight=weight, ignore_index=ignore_index, label_smoothing=label_smoothing
        )


class NLLLoss(Loss):
    """Negative log-likelihood of log-probabilities (functional.nll_loss), with ``weight`` and
    ``ignore_index``."""

    _fn = "nll_loss"
    _options = (("weight", None), ("ignore_index", -100))

    def __init__(self, weight=None, ignore_index=-100, reduction="mean"):
        super().__init__(reduction, weight=weight, ignore_index=ignore_index)


class MSELoss(Loss):
    _fn = "mse_loss"


class L1Loss(Loss):
    _fn = "l1_loss"


class BCELoss(Loss):
    """Binary cross-entropy of probabilities (functional.binary_cross_entropy), with an
    elementwise ``weight`` broadcast to the input's shape."""

    _fn = "binary_cross_entropy"
    _options = (("weight", None),)

    def __init__(self, weight=None, reduction="mean"):
        super().__init__(reduction, weight=weight)


class BCEWithLogitsLoss(Loss):
    """Binary cross-entropy on logits (functional.binary_cross_entropy_with_logits), with
    ``weight`` and ``pos_weight`` (broadcast over the input's shape: (C,) weighs the positive
    term of each class of the last axis)."""

    _fn = "binary_cross_entropy_with_logits"
    _options = (("weight", None), ("pos_weight", None))

    def __init__(self, weight=None, reduction="mean", pos_weight=None):
        super().__init__(reduction, weight=weight, pos_weight=pos_weight)


_BY_NAME = {
    "cross_entropy": CrossEntropyLoss,
    "nll": NLLLoss,
    "nll_loss": NLLLoss,
    "mse": MSELoss,
    "mse_loss": MSELoss,
    "l1": L1Loss,
    "l1_loss": L1Loss,
    "binary_cross_entropy": BCELoss,
    "bce": BCELoss,
    "binary_cross_entropy_with_logits": BCEWithLogitsLoss,
    "bce_with_logits": BCEWithLogitsLoss,
}


def get(loss):
    """A loss object from a name (``'cross_entropy'``, ``'mse'``, ...) or a callable returning
    ``(loss, grad)``."""
    if isinstance(loss, str):
        if loss not in _BY_NAME:
            raise ValueError(f"unknown loss {loss!r}; choose from {', '.join(sorted(_BY_NAME))}")
        return _BY_NAME[loss]()
    if not callable(loss):
        raise TypeError(f"loss must be a name or a callable returning (loss, grad), got {loss!r}")
    return loss
