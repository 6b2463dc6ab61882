"""Training loop: ``fit``, ``evaluate`` and ``predict`` for a model made of convext layers.

``fit`` runs mini-batch gradient descent: for each batch, ``model.forward`` in training mode,
``loss(output, target)`` -> (loss, grad), ``optimizer.zero_grad()``, ``model.backward(grad)``,
``optimizer.step()``. Progress bars (epochs and batches) use tqdm when it is installed (the
``demo`` extra), otherwise a plain one-line counter on stderr; ``progress=False`` prints nothing.
"""
import math
import sys
import time

import numpy as np

from . import losses as _losses

__all__ = ["evaluate", "fit", "predict"]


def _model_dtype(model):
    for p in model.parameters().values():
        return p.dtype
    return None


def _prepare(model, X, y=None):
    X = np.asarray(X)
    dt = _model_dtype(model)
    if dt is not None and X.dtype != dt:
        X = X.astype(dt)
    if y is not None:
        y = np.asarray(y)
        if len(y) != len(X):
            raise ValueError(f"X and y must have the same length, got {len(X)} and {len(y)}")
    return X, y


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


def fit(model, X, y, loss, optimizer, epochs, batch_size, validation_data=None, shuffle=True,
        rng=None, progress=True):
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

    Returns
    -------
    dict of lists, one entry per epoch: ``loss`` (mean training loss over the epoch's batches,
    weighted by batch size), ``accuracy`` (classification only: outputs (N, C) and integer or
    one-hot targets), and ``val_loss`` / ``val_accuracy`` with validation data.
    """
    X, y = _prepare(model, X, y)
    batch_size = _check_batch_size(batch_size)
    if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 0:
        raise ValueError(f"epochs must be a non-negative int, got {epochs!r}")
    loss_fn = _losses.get(loss)
    rng = np.random.default_rng(rng)
    n = len(X)
    if n == 0:
        raise ValueError("fit needs at least one sample")
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
                    optimizer.zero_grad()
                    model.backward(grad, input_grad=False)
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
