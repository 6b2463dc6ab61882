"""Training loop: ``fit``, ``evaluate`` and ``predict`` for a model made of convext layers.

``fit`` runs mini-batch gradient descent: for each batch, ``model.forward`` in training mode,
``loss(output, target)`` -> (loss, grad), ``optimizer.zero_grad()``, ``model.backward(grad)``,
``optimizer.step()``. Progress bars (epochs and batches) use tqdm when it is installed (the
``demo`` extra), otherwise a plain one-line counter on stderr; ``progress=False`` prints nothing.
"""
import math
import sys
import time
from collections.abc import Iterator

import numpy as np

from . import losses as _losses

__all__ = ["NonFiniteLossError", "evaluate", "fit", "predict"]


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
        raise TypeError(f"{name} must be an array (N, ...) of numbers, got {what}"
                        + (f" of dtype {arr.dtype}" if arr.ndim else "")
                        + ("; materialise an iterator first, e.g. np.stack(list(...))"
                           if isinstance(a, Iterator) else ""))
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
            raise TypeError(f"optimizer must have zero_grad() and step() (e.g. "
                            f"convext.optim.SGD(model, lr=0.1)), got {optimizer!r}")
    pairs = getattr(optimizer, "pairs", None)
    if pairs is None:  # not a convext optimizer: nothing to compare
        return
    params, grads = model.parameters(), model.grads()
    owner = {id(p): k for k, p in params.items()}
    if params and not pairs:
        raise ValueError("optimizer holds no arrays but the model has parameters "
                         f"({', '.join(params)}); build it with convext.optim.SGD(model, ...)")
    for i, (p, g) in enumerate(pairs):
        key = owner.get(id(p))
        if key is None:
            raise ValueError(f"optimizer: its array {i} (shape {p.shape}) is not a parameter "
                             "of this model, so the model would not train; build the optimizer "
                             "from this model (convext.optim.SGD(model, ...)) after any change "
                             "to its parameters")
        if g is not grads[key]:
            raise ValueError(f"optimizer: the gradient of array {i} is not the model's "
                             f"gradient array for {key!r}; build the optimizer from this model")


def _check_loss(loss_fn):
    if getattr(loss_fn, "reduction", "mean") == "none":
        raise ValueError(f"loss must reduce to one number per batch: got {loss_fn!r} with "
                         "reduction='none'; use reduction='mean'")


def _check_targets(model, X, y, loss_fn, batch_size, name="y"):
    """Every target is checked against the loss and the model's output shape before the first
    update: the loss is applied, batch by batch, to zeros of the output's shape (one eval-mode
    forward of one sample gives that shape; nothing in the model changes)."""
    was_training = model.training
    model.eval()
    try:
        out = np.asarray(model.forward(X[:1]))
    finally:
        model.train(was_training)
    if out.ndim == 0 or out.shape[0] != 1:
        raise ValueError(f"model must return one output per sample: X[:1] gave shape "
                         f"{out.shape}")
    zeros = np.zeros((min(batch_size, len(X)),) + out.shape[1:], dtype=out.dtype)
    for start in range(0, len(y), batch_size):
        yb = y[start:start + batch_size]
        try:
            with np.errstate(all="ignore"):
                res = loss_fn(zeros[:len(yb)], yb)
        except (ValueError, TypeError, IndexError) as e:
            raise (TypeError if isinstance(e, TypeError) else ValueError)(f"{name} does not fit the loss {loss_fn!r} for the model's outputs of "
                          f"shape (N, {', '.join(map(str, out.shape[1:]))}) (targets "
                          f"{name}[{start}:{start + len(yb)}]): {e}") from e
        if not (isinstance(res, tuple) and len(res) == 2):
            raise TypeError(f"loss must return a (loss, grad) pair, got {type(res).__name__}")
        if np.ndim(res[0]) != 0:
            raise ValueError(f"loss must return one number per batch (mean reduction), got a "
                             f"loss of shape {np.shape(res[0])}")
        if np.shape(res[1]) != zeros[:len(yb)].shape:
            raise ValueError(f"loss must return a gradient of the output's shape "
                             f"{zeros[:len(yb)].shape}, got {np.shape(res[1])}")


def _check_batch_size(batch_size):
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
            or batch_size < 1:
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
            self._tqdm = tqdm(total=total, desc=desc, leave=leave, unit="batch"
                              if not leave else "epoch", dynamic_ncols=True)

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
        raise TypeError("validation_data must be a pair (X_val, y_val), got "
                        f"{type(validation_data).__name__}")
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


def fit(model, X, y, loss, optimizer, epochs, batch_size, validation_data=None, shuffle=True,
        rng=None, progress=True, on_nan="raise"):
    """Train ``model`` on ``(X, y)`` and return the history.

    Parameters
    ----------
    model : a Layer (usually ``Sequential``), trained in place.
    X, y : inputs (N, ...) and targets (N, ...). X is cast to the model's parameter dtype.
    loss : a loss object (``convext.losses.CrossEntropyLoss()``), a name (``'cross_entropy'``,
        ``'mse'``...) or any callable ``(output, target) -> (loss, grad)`` with mean reduction.
    optimizer : an optimizer built on the model's parameters (``convext.optim.SGD(model, ...)``).
    epochs, batch_size : positive ints; the last batch of an epoch may be smaller.
    validation_data : optional ``(X_val, y_val)`` evaluated after every epoch.
    shuffle : reshuffle the samples every epoch, with ``rng`` (Generator or seed; None: fresh).
    progress : show progress bars (tqdm if installed); False prints nothing at all.
    on_nan : 'raise' (default): a NaN or infinite batch loss stops training with
        ``NonFiniteLossError`` (a ValueError) before that batch updates the model, which keeps
        the parameters of the last finite step; 'continue': train on regardless.

    Before the first update ``fit`` checks its arguments, so a mistake never costs a partial
    training run: X and y arrays of numbers with a sample axis and the same length, every
    target against the loss and the model's output shape (class indices in range, shapes), a
    loss that reduces each batch to one number (not reduction='none'), and an optimizer that
    holds this model's own parameter and gradient arrays.

    Returns
    -------
    dict of lists, one entry per epoch: ``loss`` (mean training loss over the epoch's batches,
    weighted by batch size), ``accuracy`` (classification only: outputs (N, C) and integer or
    one-hot targets), and ``val_loss`` / ``val_accuracy`` with validation data.
    """
    if y is None:
        raise ValueError("y must be the targets for X, got None (fit needs targets)")
    X, y = _prepare(model, X, y)
    batch_size = _check_batch_size(batch_size)
    if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 0:
        raise ValueError(f"epochs must be a non-negative int, got {epochs!r}")
    if not isinstance(on_nan, str) or on_nan not in ("raise", "continue"):
        raise ValueError(f"on_nan must be 'raise' or 'continue', got {on_nan!r}")
    loss_fn = _losses.get(loss)
    _check_loss(loss_fn)
    _check_optimizer(model, optimizer)
    rng = np.random.default_rng(rng)
    n = len(X)
    if n == 0:
        raise ValueError("fit needs at least one sample")
    _check_targets(model, X, y, loss_fn, batch_size)
    if validation_data is not None:
        validation_data = _check_validation_data(model, validation_data, loss_fn, batch_size)
    n_batches = math.ceil(n / batch_size)
    history = {"loss": [], "accuracy": []}
    if validation_data is not None:
        history.update(val_loss=[], val_accuracy=[])
    epoch_bar = _Bar(progress, epochs, "epochs", leave=True)
    try:
        for epoch in range(epochs):
            model.train()
            order = rng.permutation(n) if shuffle else np.arange(n)
            bar = _Bar(progress, n_batches, f"epoch {epoch + 1}/{epochs}", leave=False)
            total, correct, is_clf = 0.0, 0, True
            try:
                for b in range(n_batches):
                    idx = order[b * batch_size:(b + 1) * batch_size]
                    if shuffle:
                        xb, yb = X[idx], y[idx]
                    else:
                        xb, yb = X[idx[0]:idx[-1] + 1], y[idx[0]:idx[-1] + 1]
                    out = model.forward(xb)
                    value, grad = loss_fn(out, yb)
                    if on_nan == "raise" and not math.isfinite(float(value)):
                        raise NonFiniteLossError(
                            f"fit stopped: the training loss is {float(value)} at epoch "
                            f"{epoch + 1}, batch {b + 1} of {n_batches}; the model keeps the "
                            "parameters of the last finite step. Check X and y for NaN/inf or "
                            "lower the learning rate; on_nan='continue' trains on regardless")
                    optimizer.zero_grad()
                    model.backward(grad, needs_input_grad=False)
                    optimizer.step()
                    total += float(value) * len(idx)
                    c = _correct(out, yb) if is_clf else None
                    if c is None:
                        is_clf = False
                    else:
                        correct += c
                    bar.update({"loss": f"{float(value):.4f}"})
            finally:
                bar.close()
            history["loss"].append(total / n)
            if is_clf:
                history["accuracy"].append(correct / n)
            info = {"loss": f"{total / n:.4f}"}
            if is_clf:
                info["acc"] = f"{correct / n:.3f}"
            if validation_data is not None:
                res = evaluate(model, *validation_data, loss=loss_fn, batch_size=batch_size)
                history["val_loss"].append(res["loss"])
                info["val_loss"] = f"{res['loss']:.4f}"
                if "accuracy" in res:
                    history["val_accuracy"].append(res["accuracy"])
                    info["val_acc"] = f"{res['accuracy']:.3f}"
            epoch_bar.update(info)
            epoch_bar.write(f"epoch {epoch + 1}/{epochs}: "
                            + "  ".join(f"{k} {v}" for k, v in info.items()))
    finally:
        epoch_bar.close()
    return {k: v for k, v in history.items() if v or k in ("loss", "val_loss")}


def predict(model, X, batch_size=256):
    """The model's outputs on X, computed in eval mode batch by batch (the model's mode is
    restored afterwards)."""
    X, _ = _prepare(model, X)
    batch_size = _check_batch_size(batch_size)
    was_training = model.training
    model.eval()
    try:
        outs = [model.forward(X[i:i + batch_size]) for i in range(0, len(X), batch_size)]
    finally:
        model.train(was_training)
    if not outs:
        raise ValueError("predict needs at least one sample")
    return np.concatenate(outs)


def evaluate(model, X, y, loss, batch_size=256):
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
