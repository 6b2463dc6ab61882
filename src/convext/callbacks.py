"""Callbacks for ``convext.fit``: a small protocol and the usual ones.

The protocol (every method is optional; the base class's do nothing)::

    class Callback:
        def on_train_begin(self, logs): ...            # before the first epoch
        def on_epoch_begin(self, epoch, logs): ...     # epoch: 0-based index
        def on_batch_end(self, batch, logs): ...       # logs: {'loss': batch loss, 'size': n}
        def on_epoch_end(self, epoch, logs): ...       # logs: this epoch's history entries
        def on_train_end(self, logs): ...              # after the last epoch (also when stopped)

Before ``on_train_begin``, fit sets on every callback: ``model``, ``optimizer``,
``scheduler`` (or None), ``history`` (the dict of lists fit returns, filled as epochs end),
``rng`` (the Generator fit shuffles with; None for an iterable of batches) and ``params``
(``{'epochs', 'initial_epoch', 'steps' (batches per epoch, None if unknown), 'metrics'}``:
the names the epoch logs will hold). A callback stops training by setting
``self.stop_training = True``: fit stops after the current batch (in ``on_batch_end``) or
epoch; ``on_epoch_end`` and ``on_train_end`` still run. ``on_epoch_end`` logs hold ``loss``
(and ``accuracy`` for classification), ``val_loss`` / ``val_accuracy`` with validation data,
``lr`` with a scheduler; callbacks run in the order given, after the epoch's scheduler step.
"""

import csv
import json
import math
import os
import re
import string

import numpy as np

from ._validation import as_finite_float

__all__ = [
    "CSVLogger",
    "Callback",
    "EarlyStopping",
    "JSONLogger",
    "ModelCheckpoint",
    "TerminateOnNaN",
]


class Callback:
    """Base class: override the hooks you need (see the module docstring)."""

    stop_training = False

    def on_train_begin(self, logs=None):
        pass

    def on_train_end(self, logs=None):
        pass

    def on_epoch_begin(self, epoch, logs=None):
        pass

    def on_epoch_end(self, epoch, logs=None):
        pass

    def on_batch_end(self, batch, logs=None):
        pass


def _check_destination(path, what):
    """A file a callback will write during fit: checked in on_train_begin, before anything is
    trained or any file touched, so a bad path fails fit at once: not a folder, not a symbolic
    link (writing through a link planted in a shared folder would overwrite its target), inside
    an existing folder that can be written to."""
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.islink(path):
        raise ValueError(
            f"{what} {path!r:.200} is a symbolic link; convext does not write through links: "
            f"give the target's path"
        )
    if os.path.isdir(path):
        raise ValueError(f"{what} {path!r:.200} is a folder, not a file")
    if not os.path.isdir(folder):
        raise ValueError(f"{what} {path!r:.200}: the folder {folder!r:.200} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ValueError(f"{what} {path!r:.200}: the folder {folder!r:.200} is not writable")


def _open_log(path, append, what, **kwargs):
    """A log file opened for writing ("a" or "w") without following a symbolic link (one
    planted after ``_check_destination`` is refused too, where the system has O_NOFOLLOW)."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC)
    try:
        fd = os.open(path, flags | getattr(os, "O_NOFOLLOW", 0), 0o666)
    except OSError:
        if os.path.islink(path):
            raise ValueError(f"{what} {path!r:.200} is a symbolic link") from None
        raise
    return os.fdopen(fd, "a" if append else "w", **kwargs)


_MAX_FORMAT_WIDTH = 64  # of a field in ModelCheckpoint's filepath ({epoch:03d})


def _mode(mode, monitor):
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
    if mode == "auto":
        return "max" if "acc" in monitor else "min"
    return mode


def _check_monitor(owner, monitor, params):
    if monitor not in params["metrics"]:
        raise ValueError(
            f"{owner}: monitor={monitor!r} is not logged by this fit; it logs "
            f"{params['metrics']}"
            + (
                " (val_* needs validation_data or validation_split)"
                if monitor.startswith("val_")
                else ""
            )
        )


class _Monitor(Callback):
    """Shared by EarlyStopping and ModelCheckpoint: the best value of ``monitor`` so far."""

    def __init__(self, monitor, mode, min_delta=0.0):
        if not isinstance(monitor, str):
            raise TypeError(f"monitor must be a str, got {type(monitor).__name__}")
        self.monitor = monitor
        self.mode = _mode(mode, monitor)
        min_delta = as_finite_float(min_delta, "min_delta")
        if min_delta < 0:
            raise ValueError(f"min_delta must be a finite number >= 0, got {min_delta}")
        self.min_delta = min_delta
        self.best = math.inf if self.mode == "min" else -math.inf

    def _improved(self, value):
        if not math.isfinite(value):
            return False
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta


class EarlyStopping(_Monitor):
    """Stop when ``monitor`` has not improved by more than ``min_delta`` for ``patience``
    epochs. ``mode``: 'min', 'max', or 'auto' ('max' for names containing 'acc').
    ``restore_best_weights``: at the end of training the model gets the weights (parameters and
    buffers) of its best epoch. After training: ``best``, ``best_epoch`` (0-based),
    ``stopped_epoch`` (0-based, None if not stopped)."""

    def __init__(
        self, monitor="val_loss", patience=0, min_delta=0.0, mode="auto", restore_best_weights=False
    ):
        super().__init__(monitor, mode, min_delta)
        if (
            isinstance(patience, bool)
            or not isinstance(patience, (int, np.integer))
            or patience < 0
        ):
            raise ValueError(f"patience must be an int >= 0, got {patience!r}")
        self.patience = int(patience)
        self.restore_best_weights = bool(restore_best_weights)

    def on_train_begin(self, logs=None):
        _check_monitor("EarlyStopping", self.monitor, self.params)
        self.best = math.inf if self.mode == "min" else -math.inf
        self.wait, self.best_epoch, self.stopped_epoch = 0, None, None
        self.best_weights = None
        self.stop_training = False

    def on_epoch_end(self, epoch, logs=None):
        value = float(logs[self.monitor])
        if self._improved(value):
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if self.restore_best_weights:
                self.best_weights = self.model.state_dict()
            return
        self.wait += 1
        if self.wait > self.patience:
            self.stopped_epoch = epoch
            self.stop_training = True

    def on_train_end(self, logs=None):
        if self.restore_best_weights and self.best_weights is not None:
            self.model.load_state_dict(self.best_weights)


class ModelCheckpoint(_Monitor):
    """Save a checkpoint (model, optimizer and scheduler state, epoch, history, the shuffling
    generator's state) at the end of every epoch, atomically (a temporary file in the same
    directory, fsynced, then renamed over ``filepath``): a crash never leaves a half-written
    checkpoint. ``filepath`` may hold ``str.format`` fields: ``{epoch}`` (1-based) and the
    epoch's logs (``'ckpt-{epoch:02d}-{val_loss:.3f}.npz'``). ``save_best_only``: save only
    when ``monitor`` improves (``mode`` as EarlyStopping's). Resume with
    ``fit(..., resume_from=filepath)``; read with ``convext.training.load_checkpoint``.
    Resuming is exact (bitwise) for models whose randomness is all in fit's shuffling (Dropout
    layers keep their own generators, which are not saved). The state of other callbacks
    (EarlyStopping's counters, a logger's file) is not part of the checkpoint."""

    def __init__(self, filepath, monitor="val_loss", save_best_only=False, mode="auto"):
        if not isinstance(filepath, (str, os.PathLike)):
            raise TypeError(f"filepath must be a str or path, got {type(filepath).__name__}")
        super().__init__(monitor, mode)
        self.filepath = os.fspath(filepath)
        self.save_best_only = bool(save_best_only)
        self.last_saved = None

    def on_train_begin(self, logs=None):
        from .layers.registry import layer_spec
        from .optim.optimizer import Optimizer

        if not isinstance(self.optimizer, Optimizer):
            raise TypeError(
                f"ModelCheckpoint needs a convext.optim optimizer (it saves its "
                f"state_dict), got {type(self.optimizer).__name__}"
            )
        try:
            layer_spec(self.model)  # a model save can describe (registered layer types)
        except TypeError as e:
            raise TypeError(f"ModelCheckpoint: {e}") from None
        if self.save_best_only:
            _check_monitor("ModelCheckpoint", self.monitor, self.params)
        try:
            for _, field, spec, _ in string.Formatter().parse(self.filepath):
                widths = [int(n) for n in re.findall(r"\d+", spec or "")]
                if field is not None and (
                    "{" in (spec or "") or max(widths, default=0) > _MAX_FORMAT_WIDTH
                ):
                    raise ValueError(
                        f"the format {spec!r:.40} of field {field!r:.40} is nested or wider "
                        f"than {_MAX_FORMAT_WIDTH}"
                    )
            first = self.filepath.format(epoch=1, **{k: 0.0 for k in self.params["metrics"]})
        except (KeyError, IndexError, ValueError) as e:
            raise ValueError(
                f"ModelCheckpoint: filepath {self.filepath!r:.200} has a field that "
                f"is not {{epoch}} or one of {self.params['metrics']}: {e}"
            ) from None
        _check_destination(first, "ModelCheckpoint: filepath")

    def on_epoch_end(self, epoch, logs=None):
        from ._checkpoint import save_checkpoint

        if self.save_best_only:
            value = float(logs[self.monitor])
            if not self._improved(value):
                return
            self.best = value
        path = self.filepath.format(epoch=epoch + 1, **logs)
        save_checkpoint(
            path, self.model, self.optimizer, self.scheduler, epoch + 1, self.history, self.rng
        )
        self.last_saved = path


class TerminateOnNaN(Callback):
    """Stop training after a batch whose loss is NaN or infinite. fit's default
    ``on_nan='raise'`` already stops *before* such a batch updates the model, with an error;
    with ``on_nan='continue'`` this callback ends training quietly instead (after that batch's
    update, as Keras does)."""

    def on_batch_end(self, batch, logs=None):
        if not math.isfinite(float(logs["loss"])):
            self.stop_training = True


def _plain(v):
    v = float(v)
    return v if math.isfinite(v) else repr(v)


class CSVLogger(Callback):
    """Write one row per epoch (``epoch`` 1-based, then the logs) to ``filename``, flushed
    every epoch. ``append=True`` continues an existing file (when resuming) without
    repeating the header. A ``filename`` that is a symbolic link is refused (ValueError), as
    by every callback that writes a file: convext does not write through links."""

    def __init__(self, filename, separator=",", append=False):
        if not isinstance(separator, str) or len(separator) != 1 or separator in '\r\n"':
            raise ValueError(
                f"separator must be one character (not a quote or line break), got "
                f"{separator!r:.40}"
            )
        self.filename, self.separator, self.append = os.fspath(filename), separator, append
        self._file = self._writer = None

    def on_train_begin(self, logs=None):
        _check_destination(self.filename, "CSVLogger: filename")
        self._file = self._writer = None  # opened at the first epoch's end: an existing file
        # stays as it is if fit stops before

    def on_epoch_end(self, epoch, logs=None):
        keys = list(logs)
        if self._file is None:
            exists = (
                self.append and os.path.exists(self.filename) and os.path.getsize(self.filename) > 0
            )
            self._file = _open_log(self.filename, self.append, "CSVLogger: filename", newline="")
            self._keys = None if not exists else "from file"
        if self._writer is None:
            self._writer = csv.writer(self._file, delimiter=self.separator)
            if self._keys is None:
                self._writer.writerow(["epoch", *keys])
        self._writer.writerow([epoch + 1, *(_plain(logs[k]) for k in keys)])
        self._file.flush()

    def on_train_end(self, logs=None):
        if self._file is not None:
            self._file.close()
            self._file = self._writer = None


class JSONLogger(Callback):
    """Write one JSON object per epoch (``{"epoch": 1-based, ...logs}``, JSON Lines) to
    ``filename``, flushed every epoch; non-finite numbers are written as the strings "nan",
    "inf", "-inf". ``append=True`` continues an existing file."""

    def __init__(self, filename, append=False):
        self.filename, self.append = os.fspath(filename), append
        self._file = None

    def on_train_begin(self, logs=None):
        _check_destination(self.filename, "JSONLogger: filename")
        self._file = None  # opened at the first epoch's end, as CSVLogger's

    def on_epoch_end(self, epoch, logs=None):
        if self._file is None:
            self._file = _open_log(self.filename, self.append, "JSONLogger: filename")
        row = {"epoch": epoch + 1, **{k: _plain(v) for k, v in logs.items()}}
        self._file.write(json.dumps(row) + "\n")
        self._file.flush()

    def on_train_end(self, logs=None):
        if self._file is not None:
            self._file.close()
            self._file = None
