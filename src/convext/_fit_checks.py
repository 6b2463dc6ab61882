"""Argument checks for ``convext.training.fit`` (and ``evaluate`` / ``predict``): X, y and
validation data as arrays of samples, targets against the loss and the model's outputs, the
optimizer's arrays, batch sizes, iterables of batches, schedulers, callbacks, validation_split
and checkpoints to resume from. Moved out of ``convext.training``, which re-exports them.
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Iterable, Iterator

import numpy as np

from ._validation import as_finite_float


def _model_dtype(model):
    for p in model.parameters().values():
        return p.dtype
    return None


def _as_data(a, name):
    """``a`` as an ndarray of samples (N, ...): numbers, at least 1-d. Iterators, generators
    and other non-array objects are refused (a generator is not a sequence of samples)."""
    arr = np.asarray(a)
    if arr.dtype.kind not in "biuf":
        what = "an array" if arr.ndim else type(a).__name__
        raise TypeError(
            f"{name} must be an array (N, ...) of numbers, got {what}"
            + (f" of dtype {arr.dtype}" if arr.ndim else "")
            + (
                "; materialise an iterator first, e.g. np.stack(list(...))"
                if isinstance(a, Iterator)
                else ""
            )
        )
    if arr.ndim == 0:
        raise ValueError(f"{name} must have a sample axis (N, ...), got a 0-d array")
    return arr


def _prepare(model, X, y=None):
    X = _as_data(X, "X")
    dt = _model_dtype(model)
    if dt is not None and X.dtype != dt:
        X = X.astype(dt)
    if y is not None:
        y = _as_data(y, "y")
        if len(y) != len(X):
            raise ValueError(f"X and y must have the same length, got {len(X)} and {len(y)}")
    return X, y


def _check_optimizer(model, optimizer):
    """The optimizer must update this model's own arrays: every (param, grad) pair it holds is
    one of the model's parameters with the model's gradient array for it (a subset is fine:
    frozen layers). Otherwise steps would change other arrays and the model would not train."""
    for attr in ("zero_grad", "step"):
        if not callable(getattr(optimizer, attr, None)):
            raise TypeError(
                f"optimizer must have zero_grad() and step() (e.g. "
                f"convext.optim.SGD(model, lr=0.1)), got {optimizer!r}"
            )
    pairs = getattr(optimizer, "pairs", None)
    if pairs is None:  # not a convext optimizer: nothing to compare
        return
    params, grads = model.parameters(), model.grads()
    owner = {id(p): k for k, p in params.items()}
    if params and not pairs:
        raise ValueError(
            "optimizer holds no arrays but the model has parameters "
            f"({', '.join(params)}); build it with convext.optim.SGD(model, ...)"
        )
    for i, (p, g) in enumerate(pairs):
        key = owner.get(id(p))
        if key is None:
            raise ValueError(
                f"optimizer: its array {i} (shape {p.shape}) is not a parameter "
                "of this model, so the model would not train; build the optimizer "
                "from this model (convext.optim.SGD(model, ...)) after any change "
                "to its parameters"
            )
        if g is not grads[key]:
            raise ValueError(
                f"optimizer: the gradient of array {i} is not the model's "
                f"gradient array for {key!r}; build the optimizer from this model"
            )


def _check_loss(loss_fn):
    if getattr(loss_fn, "reduction", "mean") == "none":
        raise ValueError(
            f"loss must reduce to one number per batch: got {loss_fn!r} with "
            "reduction='none'; use reduction='mean'"
        )


def _check_targets(model, X, y, loss_fn, batch_size, name="y"):
    """Every target is checked against the loss and the model's output shape before the first
    update: the loss is applied, batch by batch, to zeros of the output's shape (one eval-mode
    forward of one sample gives that shape; nothing in the model changes). Returns the
    output's shape per sample."""
    from .layers.base import eval_mode

    with eval_mode(model):
        out = np.asarray(model.forward(X[:1]))
    if out.ndim == 0 or out.shape[0] != 1:
        raise ValueError(f"model must return one output per sample: X[:1] gave shape {out.shape}")
    zeros = np.zeros((min(batch_size, len(X)),) + out.shape[1:], dtype=out.dtype)
    for start in range(0, len(y), batch_size):
        yb = y[start : start + batch_size]
        try:
            with np.errstate(all="ignore"):
                res = loss_fn(zeros[: len(yb)], yb)
        except (ValueError, TypeError, IndexError) as e:
            raise (TypeError if isinstance(e, TypeError) else ValueError)(
                f"{name} does not fit the loss {loss_fn!r} for the model's outputs of "
                f"shape (N, {', '.join(map(str, out.shape[1:]))}) (targets "
                f"{name}[{start}:{start + len(yb)}]): {e}"
            ) from e
        if not (isinstance(res, tuple) and len(res) == 2):
            raise TypeError(f"loss must return a (loss, grad) pair, got {type(res).__name__}")
        if np.ndim(res[0]) != 0:
            raise ValueError(
                f"loss must return one number per batch (mean reduction), got a "
                f"loss of shape {np.shape(res[0])}"
            )
        if np.shape(res[1]) != zeros[: len(yb)].shape:
            raise ValueError(
                f"loss must return a gradient of the output's shape "
                f"{zeros[: len(yb)].shape}, got {np.shape(res[1])}"
            )
    return out.shape[1:]


def _check_batch_size(batch_size):
    if (
        isinstance(batch_size, bool)
        or not isinstance(batch_size, (int, np.integer))
        or batch_size < 1
    ):
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    return int(batch_size)


def _check_validation_data(model, validation_data, loss_fn, batch_size):
    """(X_val, y_val) as arrays, checked like X and y, so a mistake there does not surface
    after the first epoch of training."""
    if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
        raise TypeError(
            f"validation_data must be a pair (X_val, y_val), got {type(validation_data).__name__}"
        )
    Xv, yv = validation_data
    if yv is None:
        raise ValueError("validation_data: y_val must be the targets for X_val, got None")
    try:
        Xv, yv = _prepare(model, Xv, yv)
    except (ValueError, TypeError) as e:
        raise type(e)(f"validation_data: {e}") from e
    if len(Xv) == 0:
        raise ValueError("validation_data: X_val holds no samples")
    _check_targets(model, Xv, yv, loss_fn, batch_size, name="y_val (validation_data)")
    return Xv, yv


def _is_batches(X, y):
    """True when X is an iterable of (X, y) batches: y is None and X is neither an array nor
    a number (nor a str/bytes/dict)."""
    if y is not None or X is None:
        return False
    if isinstance(X, (np.ndarray, np.generic, numbers.Number, str, bytes, dict)):
        return False
    if isinstance(X, (list, tuple)):  # nested lists of numbers are array data (y forgotten)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return np.asarray(X).dtype.kind not in "biuf"
        except (ValueError, TypeError):  # ragged: pairs of arrays of different shapes
            return True
    return isinstance(X, Iterable)


class _Batches:
    """An iterable of (X, y) batches, checked batch by batch before each batch's update: each
    is a pair of arrays of numbers of the same length; X's sample shape is the first batch's,
    and the targets fit the loss for the model's outputs (the first batch's check runs an
    eval-mode forward of one sample; later ones apply the loss to zeros)."""

    def __init__(self, source, model, loss_fn, epochs):
        self.source, self.model, self.loss_fn = source, model, loss_fn
        self.one_shot = iter(source) is source if isinstance(source, Iterator) else False
        if self.one_shot and epochs > 1:
            raise TypeError(
                f"X is a one-shot iterator ({type(source).__name__}) of batches: it can be "
                f"iterated once, so it cannot feed epochs={epochs}; pass a re-iterable object "
                "(a list of (X, y) pairs, a data loader whose __iter__ starts a fresh pass) or "
                "use epochs=1"
            )
        self.steps = len(source) if hasattr(source, "__len__") else None
        self.sample_shape = self.out_shape = None
        self.used = False

    def __iter__(self):
        if self.one_shot and self.used:
            raise TypeError("X is a one-shot iterator of batches and was already used")
        self.used = True
        return iter(self.source)

    def check(self, item, where):
        if not isinstance(item, (tuple, list)) or len(item) != 2:
            raise TypeError(
                f"X: {where} must be a pair (X, y) of arrays, got {type(item).__name__}"
            )
        xb, yb = item
        if yb is None:
            raise ValueError(f"X: {where} has no targets (y is None)")
        try:
            xb, yb = _prepare(self.model, xb, yb)
        except (ValueError, TypeError) as e:
            raise type(e)(f"X: {where}: {e}") from e
        if len(xb) == 0:
            raise ValueError(f"X: {where} holds no samples")
        if self.sample_shape is None:
            self.sample_shape = xb.shape[1:]
            self.out_shape = _check_targets(
                self.model, xb, yb, self.loss_fn, len(xb), name=f"y ({where})"
            )
            return xb, yb
        if xb.shape[1:] != self.sample_shape:
            raise ValueError(
                f"X: {where} has samples of shape {xb.shape[1:]}, the first "
                f"batch {self.sample_shape}"
            )
        zeros = np.zeros((len(yb),) + self.out_shape, dtype=_model_dtype(self.model) or xb.dtype)
        try:
            with np.errstate(all="ignore"):
                self.loss_fn(zeros, yb)
        except (ValueError, TypeError, IndexError) as e:
            raise (TypeError if isinstance(e, TypeError) else ValueError)(
                f"y ({where}) does not fit the loss {self.loss_fn!r} for the model's outputs "
                f"of shape (N, {', '.join(map(str, self.out_shape))}): {e}"
            ) from e
        return xb, yb


def _check_scheduler(scheduler, optimizer, scheduler_step):
    from .optim.lr_scheduler import LRScheduler, ReduceLROnPlateau

    if scheduler_step not in ("epoch", "batch"):
        raise ValueError(f"scheduler_step must be 'epoch' or 'batch', got {scheduler_step!r}")
    if scheduler is None:
        return False
    if not isinstance(scheduler, LRScheduler):
        raise TypeError(
            f"scheduler must be a convext.optim.lr_scheduler scheduler, got "
            f"{type(scheduler).__name__}"
        )
    if scheduler.optimizer is not optimizer:
        raise ValueError(
            "scheduler: it schedules another optimizer than fit's optimizer; "
            "build it on the same optimizer"
        )
    plateau = isinstance(scheduler, ReduceLROnPlateau)
    if plateau and scheduler_step == "batch":
        raise ValueError(
            "scheduler_step='batch' with ReduceLROnPlateau: it is stepped with "
            "the monitored epoch value; use scheduler_step='epoch'"
        )
    return plateau


def _check_callbacks(callbacks):
    from .callbacks import Callback

    if callbacks is None:
        return []
    if isinstance(callbacks, Callback):
        callbacks = [callbacks]
    try:
        callbacks = list(callbacks)
    except TypeError:
        raise TypeError(
            f"callbacks must be a list of convext.callbacks.Callback, got "
            f"{type(callbacks).__name__}"
        ) from None
    for i, cb in enumerate(callbacks):
        if not isinstance(cb, Callback):
            raise TypeError(
                f"callbacks[{i}] must be a convext.callbacks.Callback, got {type(cb).__name__}"
            )
    return callbacks


def _split(X, y, validation_split, validation_data):
    try:
        fraction = as_finite_float(validation_split, "validation_split")
    except (TypeError, ValueError):
        fraction = -1.0  # (an int too large for a float included)
    if not 0.0 <= fraction < 1.0:
        raise ValueError(
            f"validation_split must be a number in [0, 1), got {validation_split!r:.80}"
        )
    if not validation_split:
        return X, y, validation_data
    if validation_data is not None:
        raise ValueError("give validation_data or validation_split, not both")
    split_at = int(len(X) * (1.0 - fraction))
    if split_at == 0 or split_at == len(X):
        raise ValueError(
            f"validation_split={validation_split} of {len(X)} samples leaves "
            f"{split_at} for training and {len(X) - split_at} for validation; "
            "both need at least one"
        )
    return X[:split_at], y[:split_at], (X[split_at:], y[split_at:])


def _resume(path, model, optimizer, scheduler, rng, epochs):
    """Read and check a checkpoint for model, optimizer, scheduler and rng; return (epoch,
    history, apply), where ``apply()`` loads it into them. Nothing changes before ``apply``,
    which fit calls once every other argument and callback has been checked."""
    from ._checkpoint import load_checkpoint
    from .layers.registry import layer_spec
    from .optim.optimizer import Optimizer

    ckpt = load_checkpoint(path)
    where = f"resume_from={path!r}"
    if layer_spec(ckpt.model) != layer_spec(model):
        raise ValueError(f"{where}: the checkpoint's model has another architecture than model")
    if not isinstance(optimizer, Optimizer) or type(optimizer).__name__ != ckpt.optimizer_type:
        raise ValueError(
            f"{where}: the checkpoint holds the state of a "
            f"{ckpt.optimizer_type}, the optimizer is a "
            f"{type(optimizer).__name__}"
        )
    if (scheduler is None) != (ckpt.scheduler_state is None) or (
        scheduler is not None and type(scheduler).__name__ != ckpt.scheduler_type
    ):
        raise ValueError(
            f"{where}: the checkpoint holds "
            f"{ckpt.scheduler_type or 'no'} scheduler state, fit was given "
            f"{type(scheduler).__name__ if scheduler is not None else 'none'}"
        )
    if ckpt.epoch > epochs:
        raise ValueError(
            f"{where}: the checkpoint is at epoch {ckpt.epoch}, after "
            f"epochs={epochs} (epochs counts from the run's start)"
        )
    if rng is not None and ckpt.rng_state is not None:
        probe = np.random.default_rng(0)
        try:
            probe.bit_generator.state = ckpt.rng_state
        except (TypeError, ValueError, KeyError, OverflowError) as e:
            raise ValueError(f"{where}: its generator state does not fit fit's rng: {e}") from None

    def apply():
        opt_before = optimizer.state_dict()
        sched_before = None if scheduler is None else scheduler.state_dict()
        try:
            optimizer.load_state_dict(ckpt.optimizer_state)
            if scheduler is not None:
                scheduler.load_state_dict(ckpt.scheduler_state)
            model.load_state_dict(ckpt.model.state_dict())
        except BaseException:
            optimizer.load_state_dict(opt_before)
            if scheduler is not None:
                scheduler.load_state_dict(sched_before)
            raise
        if rng is not None and ckpt.rng_state is not None:
            rng.bit_generator.state = ckpt.rng_state

    return ckpt.epoch, ckpt.history, apply
