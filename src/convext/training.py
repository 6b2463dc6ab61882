"""Training loop: ``fit``, ``evaluate`` and ``predict`` for a model made of convext layers.

``fit`` runs mini-batch gradient descent: for each batch, ``model.forward`` in training mode,
``loss(output, target)`` -> (loss, grad), ``optimizer.zero_grad()``, ``model.backward(grad)``,
``optimizer.step()`` (then a per-batch scheduler step). Progress bars (epochs and batches) use
tqdm when it is installed (the ``demo`` extra), otherwise a plain one-line counter on stderr;
they are shown only when stderr is a terminal (``verbose='auto'``): elsewhere (a log file, a
pipe) fit writes one plain line per epoch; ``verbose=0`` prints nothing. Callbacks
(``convext.callbacks``) and checkpoints (``save_checkpoint`` / ``load_checkpoint``,
``fit(..., resume_from=path)``) build on the loop.
"""

from __future__ import annotations

import math
import numbers
import sys
import time
import warnings
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from . import losses as _losses
from ._checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from ._typing import ArrayLike, FloatArray

__all__ = [
    "Checkpoint",
    "NonFiniteLossError",
    "evaluate",
    "fit",
    "load_checkpoint",
    "predict",
    "save_checkpoint",
]

if TYPE_CHECKING:
    from .layers import Layer
    from .optim import Optimizer


def _model_dtype(model):
    for p in model.parameters().values():
        return p.dtype
    return None


class NonFiniteLossError(FloatingPointError, ValueError):
    """``fit`` stopped because the training loss was NaN or infinite (``on_nan='raise'``)."""


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
    was_training = model.training
    model.eval()
    try:
        out = np.asarray(model.forward(X[:1]))
    finally:
        model.train(was_training)
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


def _correct(out, y):
    """Number of correct class predictions, or None when this is not classification."""
    if out.ndim != 2 or out.shape[1] < 2:
        return None
    if y.ndim == 1 and y.dtype.kind in "iu":
        labels = y
    elif y.ndim == 2 and y.shape == out.shape:
        labels = y.argmax(axis=1)
    else:
        return None
    return int(np.count_nonzero(out.argmax(axis=1) == labels))


class _Bar:
    """A progress bar: tqdm when available, else a minimal stderr counter; silent if disabled."""

    def __init__(self, enabled, total, desc, leave):
        self.enabled, self.total, self.desc, self.n = enabled, total, desc, 0
        self._tqdm = None
        self._last = 0.0
        if not enabled:
            return
        try:
            from tqdm.auto import tqdm
        except ImportError:
            tqdm = None
        if tqdm is not None:
            self._tqdm = tqdm(
                total=total,
                desc=desc,
                leave=leave,
                unit="batch" if not leave else "epoch",
                dynamic_ncols=True,
            )

    def update(self, postfix=None):
        self.n += 1
        if not self.enabled:
            return
        if self._tqdm is not None:
            if postfix:
                self._tqdm.set_postfix(postfix, refresh=False)
            self._tqdm.update(1)
            return
        now = time.monotonic()
        if now - self._last > 0.2 or self.n == self.total:
            self._last = now
            info = "  ".join(f"{k} {v}" for k, v in (postfix or {}).items())
            sys.stderr.write(f"\r{self.desc}: {self.n}/{self.total}  {info}   ")
            sys.stderr.flush()

    def write(self, line):
        if not self.enabled:
            return
        if self._tqdm is not None:
            self._tqdm.write(line, file=sys.stderr)
        else:
            sys.stderr.write("\r" + line + "\n")
            sys.stderr.flush()

    def close(self):
        if self._tqdm is not None:
            self._tqdm.close()
        elif self.enabled and self.n and self.total:
            sys.stderr.write("\r" + " " * 79 + "\r")
            sys.stderr.flush()


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


def _verbosity(verbose, progress):
    """0 silent, 1 progress bars, 2 one line per epoch (no cursor codes)."""
    if progress is not None:  # the older spelling: progress=True/False
        if not isinstance(progress, (bool, np.bool_)):
            raise TypeError(f"progress must be True or False, got {progress!r}")
        if verbose != "auto" and bool(verbose) != bool(progress):
            raise ValueError(
                f"progress={progress!r} contradicts verbose={verbose!r}; give verbose only"
            )
        return 1 if progress else 0
    if verbose == "auto":
        isatty = getattr(sys.stderr, "isatty", None)
        try:
            return 1 if isatty is not None and isatty() else 2
        except (ValueError, OSError):  # a closed stream
            return 2
    if isinstance(verbose, (bool, np.bool_)):
        return int(verbose)
    if isinstance(verbose, (int, np.integer)) and verbose in (0, 1, 2):
        return int(verbose)
    raise ValueError(
        f"verbose must be 'auto', 0 (silent), 1 (progress bars) or 2 (one line "
        f"per epoch), got {verbose!r}"
    )


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
    if (
        isinstance(validation_split, (bool, np.bool_))
        or not isinstance(validation_split, numbers.Real)
        or not 0.0 <= float(validation_split) < 1.0
    ):
        raise ValueError(f"validation_split must be a number in [0, 1), got {validation_split!r}")
    if not validation_split:
        return X, y, validation_data
    if validation_data is not None:
        raise ValueError("give validation_data or validation_split, not both")
    split_at = int(len(X) * (1.0 - float(validation_split)))
    if split_at == 0 or split_at == len(X):
        raise ValueError(
            f"validation_split={validation_split} of {len(X)} samples leaves "
            f"{split_at} for training and {len(X) - split_at} for validation; "
            "both need at least one"
        )
    return X[:split_at], y[:split_at], (X[split_at:], y[split_at:])


def _resume(path, model, optimizer, scheduler, rng, epochs):
    """Load a checkpoint into model, optimizer, scheduler and rng; return (epoch, history).
    Everything is checked before anything changes."""
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
        except (TypeError, ValueError, KeyError) as e:
            raise ValueError(f"{where}: its generator state does not fit fit's rng: {e}") from None
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
    return ckpt.epoch, ckpt.history


def fit(
    model: Layer,
    X: Any,
    y: ArrayLike | None = None,
    loss: Any = None,
    optimizer: Optimizer | None = None,
    epochs: int = 1,
    batch_size: int | None = None,
    validation_data: Any = None,
    shuffle: bool = True,
    rng: np.random.Generator | int | None = None,
    progress: Any = None,
    on_nan: str = "raise",
    *,
    validation_split: float = 0.0,
    scheduler: Any = None,
    scheduler_step: str = "epoch",
    scheduler_monitor: str | None = None,
    callbacks: Any = None,
    verbose: Any = "auto",
    resume_from: Any = None,
) -> dict[str, list[float]]:
    """Train ``model`` on ``(X, y)`` (or on an iterable of batches) and return the history.

    Parameters
    ----------
    model : a Layer (usually ``Sequential``), trained in place.
    X, y : the data, in one of two forms:

        - arrays: inputs (N, ...) and targets (N, ...); X is cast to the model's parameter
          dtype, split into batches of ``batch_size`` (default 32), reshuffled every epoch
          with ``rng`` when ``shuffle``;
        - an iterable of ``(X_batch, y_batch)`` pairs as X, with y None (a list, a data
          loader, a generator...). A re-iterable object (``iter()`` gives a fresh pass) is
          iterated once per epoch; a one-shot iterator (a generator) feeds epochs=1 only
          (TypeError naming X otherwise). Batches, their size and their order are the
          iterable's: ``batch_size`` then only sets the validation batch size, ``shuffle``
          and ``validation_split`` do not apply. Each batch is checked before it updates the
          model (pair of arrays, same length, X's sample shape the first batch's, targets that
          fit the loss); the first batch before the first update.

        An iterator or generator passed as X *with* a y is refused (TypeError): arrays are
        expected then.
    loss : a loss object (``convext.losses.CrossEntropyLoss()``), a name (``'cross_entropy'``,
        ``'mse'``...) or any callable ``(output, target) -> (loss, grad)`` with mean reduction.
    optimizer : an optimizer built on the model's parameters (``convext.optim.SGD(model, ...)``).
    epochs : positive int, the last epoch of the run (counted from its start, also when
        resuming); the last batch of an epoch may be smaller.
    validation_data : optional ``(X_val, y_val)`` evaluated after every epoch.
    shuffle : reshuffle the samples every epoch, with ``rng`` (Generator or seed; None: fresh).
    progress : the older spelling of ``verbose`` (True: 1, False: 0).
    on_nan : 'raise' (default): a NaN or infinite batch loss stops training with
        ``NonFiniteLossError`` (a ValueError) before that batch updates the model, which keeps
        the parameters of the last finite step; 'continue': train on regardless.
    validation_split : a fraction in [0, 1): the *last* ``int(N * (1 - validation_split))``..N
        samples (taken before any shuffling, as Keras does) are held out as validation data.
    scheduler : a ``convext.optim.lr_scheduler`` scheduler on ``optimizer``, stepped after every
        epoch (``scheduler_step='epoch'``) or after every optimizer step ('batch').
        ReduceLROnPlateau is stepped once per epoch with the monitored value
        ``scheduler_monitor`` (default 'val_loss' with validation data, else 'loss').
    callbacks : a list of ``convext.callbacks.Callback`` (protocol in that module):
        EarlyStopping, ModelCheckpoint, TerminateOnNaN, CSVLogger, JSONLogger...
    verbose : 'auto' (default): progress bars when stderr is a terminal, otherwise one plain
        line per epoch (no cursor codes in log files); 0 silent; 1 progress bars (tqdm if
        installed); 2 one line per epoch.
    resume_from : a checkpoint written by ``ModelCheckpoint`` / ``save_checkpoint``: the model's
        weights, the optimizer's and the scheduler's state, the shuffling generator's state
        and the history are restored, and training continues at the epoch after the saved
        one, up to ``epochs``. The result equals an uninterrupted run bitwise (as long as all
        the randomness is fit's shuffling). The model's architecture, the optimizer's and the
        scheduler's types must be the checkpoint's.

    Before the first update ``fit`` checks its arguments, so a mistake never costs a partial
    training run: X and y arrays of numbers with a sample axis and the same length, every
    target against the loss and the model's output shape (class indices in range, shapes), a
    loss that reduces each batch to one number (not reduction='none'), an optimizer that
    holds this model's own parameter and gradient arrays, the scheduler, the callbacks' monitored
    names, and the checkpoint to resume from.

    Returns
    -------
    dict of lists, one entry per epoch: ``loss`` (mean training loss over the epoch's batches,
    weighted by batch size), ``accuracy`` (classification only: outputs (N, C) and integer or
    one-hot targets), ``val_loss`` / ``val_accuracy`` with validation data, and ``lr`` (the
    first param group's learning rate of the epoch's last update) with a scheduler.
    """
    batches = _is_batches(X, y)
    if y is None and not batches:
        raise ValueError(
            "y must be the targets for X, got None (fit needs targets; or pass "
            "an iterable of (X, y) batches as X)"
        )
    if loss is None:
        raise TypeError("fit needs a loss (a name such as 'cross_entropy', or a loss object)")
    if optimizer is None:
        raise TypeError("fit needs an optimizer (e.g. convext.optim.SGD(model, lr=0.1))")
    if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 0:
        raise ValueError(f"epochs must be a non-negative int, got {epochs!r}")
    epochs = int(epochs)
    if batch_size is None:
        batch_size = 32 if not batches else 256
    batch_size = _check_batch_size(batch_size)
    if not isinstance(on_nan, str) or on_nan not in ("raise", "continue"):
        raise ValueError(f"on_nan must be 'raise' or 'continue', got {on_nan!r}")
    level = _verbosity(verbose, progress)
    loss_fn = _losses.get(loss)
    _check_loss(loss_fn)
    _check_optimizer(model, optimizer)
    plateau = _check_scheduler(scheduler, optimizer, scheduler_step)
    callbacks = _check_callbacks(callbacks)
    if batches:
        if validation_split:
            raise ValueError(
                "validation_split needs arrays X, y; with an iterable of batches "
                "give validation_data"
            )
        data = _Batches(X, model, loss_fn, epochs)
        n_batches, rng = data.steps, None
    else:
        X, y = _prepare(model, X, y)
        if len(X) == 0:
            raise ValueError("fit needs at least one sample")
        X, y, validation_data = _split(X, y, validation_split, validation_data)
        rng = np.random.default_rng(rng)
        n = len(X)
        _check_targets(model, X, y, loss_fn, batch_size)
        n_batches = math.ceil(n / batch_size)
    if validation_data is not None:
        validation_data = _check_validation_data(model, validation_data, loss_fn, batch_size)
    has_val = validation_data is not None
    if scheduler_monitor is None:
        scheduler_monitor = "val_loss" if has_val else "loss"
    elif plateau and scheduler_monitor not in ("loss", "accuracy", "val_loss", "val_accuracy"):
        raise ValueError(
            f"scheduler_monitor must be 'loss', 'accuracy', 'val_loss' or "
            f"'val_accuracy', got {scheduler_monitor!r}"
        )
    if plateau and scheduler_monitor.startswith("val_") and not has_val:
        raise ValueError(
            f"scheduler_monitor={scheduler_monitor!r} needs validation_data or validation_split"
        )

    initial_epoch, history = 0, {"loss": [], "accuracy": []}
    if has_val:
        history.update(val_loss=[], val_accuracy=[])
    if scheduler is not None:
        history["lr"] = []
    if resume_from is not None:
        initial_epoch, saved = _resume(resume_from, model, optimizer, scheduler, rng, epochs)
        for k, v in saved.items():
            history.setdefault(k, [])[:] = v
    metrics = (
        ["loss", "accuracy"]
        + (["val_loss", "val_accuracy"] if has_val else [])
        + (["lr"] if scheduler is not None else [])
    )
    params = {
        "epochs": epochs,
        "initial_epoch": initial_epoch,
        "steps": n_batches,
        "metrics": metrics,
    }
    for cb in callbacks:
        cb.model, cb.optimizer, cb.scheduler = model, optimizer, scheduler
        cb.history, cb.rng, cb.params = history, rng, params
        cb.stop_training = False
    for i, cb in enumerate(callbacks):
        try:
            cb.on_train_begin({})
        except BaseException:  # let the callbacks already begun close their files
            for begun in callbacks[:i]:
                begun.on_train_end({})
            raise

    epoch_bar = _Bar(level == 1, epochs - initial_epoch, "epochs", leave=True)
    stop = False
    try:
        for epoch in range(initial_epoch, epochs):
            for cb in callbacks:
                cb.on_epoch_begin(epoch, {})
            model.train()
            bar = _Bar(level == 1, n_batches, f"epoch {epoch + 1}/{epochs}", leave=False)
            total, seen, correct, is_clf = 0.0, 0, 0, True
            if batches:
                source = enumerate(data)
            else:
                order = rng.permutation(n) if shuffle else np.arange(n)
                source = (
                    (b, order[b * batch_size : (b + 1) * batch_size]) for b in range(n_batches)
                )
            try:
                for b, item in source:
                    where = f"batch {b + 1} of epoch {epoch + 1}"
                    if batches:
                        xb, yb = data.check(item, where)
                    elif shuffle:
                        xb, yb = X[item], y[item]
                    else:
                        xb, yb = X[item[0] : item[-1] + 1], y[item[0] : item[-1] + 1]
                    out = model.forward(xb)
                    value, grad = loss_fn(out, yb)
                    if on_nan == "raise" and not math.isfinite(float(value)):
                        raise NonFiniteLossError(
                            f"fit stopped: the training loss is {float(value)} at epoch "
                            f"{epoch + 1}, batch {b + 1}"
                            + (f" of {n_batches}" if n_batches else "")
                            + "; the model keeps the parameters of the last finite step. Check "
                            "X and y for NaN/inf or lower the learning rate; on_nan='continue' "
                            "trains on regardless"
                        )
                    optimizer.zero_grad()
                    model.backward(grad, needs_input_grad=False)
                    optimizer.step()
                    if scheduler is not None:
                        lr = float(optimizer.param_groups[0]["lr"])
                        if scheduler_step == "batch":
                            scheduler.step()
                    total += float(value) * len(xb)
                    seen += len(xb)
                    c = _correct(out, yb) if is_clf else None
                    if c is None:
                        is_clf = False
                    else:
                        correct += c
                    bar.update({"loss": f"{float(value):.4f}"})
                    for cb in callbacks:
                        cb.on_batch_end(b, {"loss": float(value), "size": len(xb)})
                    if any(cb.stop_training for cb in callbacks):
                        stop = True
                        break
            finally:
                bar.close()
            if seen == 0:
                raise ValueError(f"X: epoch {epoch + 1} yielded no batches")
            logs = {"loss": total / seen}
            if is_clf:
                logs["accuracy"] = correct / seen
            if has_val:
                res = evaluate(model, *validation_data, loss=loss_fn, batch_size=batch_size)
                logs["val_loss"] = res["loss"]
                if "accuracy" in res:
                    logs["val_accuracy"] = res["accuracy"]
            if scheduler is not None:
                logs["lr"] = lr
                if plateau:
                    if scheduler_monitor not in logs:
                        raise ValueError(
                            f"scheduler_monitor={scheduler_monitor!r} is not "
                            f"logged (this fit logs {sorted(logs)})"
                        )
                    scheduler.step(logs[scheduler_monitor])
                elif scheduler_step == "epoch":
                    scheduler.step()
            for k, v in logs.items():
                history.setdefault(k, []).append(v)
            info = {"loss": f"{logs['loss']:.4f}"}
            if "accuracy" in logs:
                info["acc"] = f"{logs['accuracy']:.3f}"
            if "val_loss" in logs:
                info["val_loss"] = f"{logs['val_loss']:.4f}"
            if "val_accuracy" in logs:
                info["val_acc"] = f"{logs['val_accuracy']:.3f}"
            line = f"epoch {epoch + 1}/{epochs}: " + "  ".join(f"{k} {v}" for k, v in info.items())
            epoch_bar.update(info)
            if level == 1:
                epoch_bar.write(line)
            elif level == 2:
                sys.stderr.write(line + "\n")
                sys.stderr.flush()
            for cb in callbacks:
                cb.on_epoch_end(epoch, dict(logs))
            if stop or any(cb.stop_training for cb in callbacks):
                break
    finally:
        epoch_bar.close()
        for cb in callbacks:
            cb.on_train_end({})
    return {k: v for k, v in history.items() if v or k in ("loss", "val_loss")}


def predict(model: Layer, X: ArrayLike, batch_size: int = 256) -> FloatArray:
    """The model's outputs on X, computed in eval mode batch by batch (the model's mode is
    restored afterwards)."""
    X, _ = _prepare(model, X)
    batch_size = _check_batch_size(batch_size)
    was_training = model.training
    model.eval()
    try:
        outs = [model.forward(X[i : i + batch_size]) for i in range(0, len(X), batch_size)]
    finally:
        model.train(was_training)
    if not outs:
        raise ValueError("predict needs at least one sample")
    return np.concatenate(outs)


def evaluate(
    model: Layer, X: ArrayLike, y: ArrayLike, loss: Any, batch_size: int = 256
) -> dict[str, float]:
    """``{'loss': mean loss, 'accuracy': fraction correct}`` on (X, y) in eval mode
    (``accuracy`` only for classification)."""
    X, y = _prepare(model, X, y)
    out = predict(model, X, batch_size)
    value, _ = _losses.get(loss)(out, y)
    res = {"loss": float(np.mean(value))}
    c = _correct(out, y)
    if c is not None:
        res["accuracy"] = c / len(X)
    return res
