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
import sys
from typing import TYPE_CHECKING, Any

import numpy as np

from . import losses as _losses
from ._checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from ._fit_checks import (  # noqa: F401  (re-exported: importable from convext.training)
    _as_data,
    _Batches,
    _check_batch_size,
    _check_callbacks,
    _check_loss,
    _check_optimizer,
    _check_scheduler,
    _check_targets,
    _check_validation_data,
    _is_batches,
    _model_dtype,
    _prepare,
    _resume,
    _split,
)
from ._progress import _Bar, _verbosity
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


class NonFiniteLossError(FloatingPointError, ValueError):
    """``fit`` stopped because the training loss was NaN or infinite (``on_nan='raise'``)."""


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
    epochs : int >= 0, the last epoch of the run (counted from its start, also when
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
    from .inference import InferenceModel

    if isinstance(model, InferenceModel):
        model.train()  # raises: an optimized model is eval-only
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
    if not isinstance(shuffle, (bool, np.bool_)):
        raise TypeError(f"shuffle must be a bool, got {type(shuffle).__name__} {shuffle!r:.40}")
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
        try:
            rng = np.random.default_rng(rng)
        except (TypeError, ValueError) as e:
            raise type(e)(f"rng must be a numpy Generator, a seed >= 0 or None: {e}") from None
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
    apply_resume = None
    if resume_from is not None:
        initial_epoch, saved, apply_resume = _resume(
            resume_from, model, optimizer, scheduler, rng, epochs
        )
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
    if apply_resume is not None:  # the model changes only once every check has passed
        try:
            apply_resume()
        except BaseException:
            for begun in callbacks:
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
    """The model's outputs on X, computed in eval mode batch by batch (afterwards every layer
    inside the model is back in the mode it had: a BatchNorm frozen in eval mode inside a
    model in training mode stays in eval mode)."""
    from .layers.base import eval_mode

    X, _ = _prepare(model, X)
    batch_size = _check_batch_size(batch_size)
    with eval_mode(model):
        outs = [model.forward(X[i : i + batch_size]) for i in range(0, len(X), batch_size)]
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
