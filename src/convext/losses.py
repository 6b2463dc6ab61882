"""Loss objects for training: thin wrappers of the functional losses.

Calling a loss object returns ``(loss, grad)``: the loss (a float for ``reduction='mean'`` or
``'sum'``, an array for ``'none'``) and its gradient with respect to the input, which is what a
model's ``backward`` takes.
"""
from . import functional
from ._validation import check_reduction

__all__ = ["BCEWithLogitsLoss", "CrossEntropyLoss", "L1Loss", "Loss", "MSELoss", "NLLLoss",
           "get"]

class Loss:
    _fn = None

    def __init__(self, reduction="mean"):
        self.reduction = check_reduction(reduction)

    def __call__(self, input, target):
        return getattr(functional, self._fn)(input, target, reduction=self.reduction)

    def __repr__(self):
        r = "" if self.reduction == "mean" else f"reduction={self.reduction!r}"
        return f"{type(self).__name__}({r})"


class CrossEntropyLoss(Loss):
    """Softmax cross-entropy on logits (N, C); targets are class indices (N,) or class
    probabilities (N, C) (functional.cross_entropy)."""
    _fn = "cross_entropy"


class NLLLoss(Loss):
    """Negative log-likelihood of log-probabilities (functional.nll_loss)."""
    _fn = "nll_loss"


class MSELoss(Loss):
    _fn = "mse_loss"


class L1Loss(Loss):
    _fn = "l1_loss"


class BCEWithLogitsLoss(Loss):
    """Binary cross-entropy on logits (functional.binary_cross_entropy_with_logits)."""
    _fn = "binary_cross_entropy_with_logits"


_BY_NAME = {"cross_entropy": CrossEntropyLoss, "nll": NLLLoss, "nll_loss": NLLLoss,
            "mse": MSELoss, "mse_loss": MSELoss, "l1": L1Loss, "l1_loss": L1Loss,
            "binary_cross_entropy_with_logits": BCEWithLogitsLoss,
            "bce_with_logits": BCEWithLogitsLoss}


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
