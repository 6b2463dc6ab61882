"""ReduceLROnPlateau (convext.optim.lr_scheduler.ReduceLROnPlateau), torch's rules."""

import math
import numbers

import numpy as np

from .lr_scheduler import LRScheduler, _int, _per_group
from .optimizer import Optimizer, check_real

__all__ = ["ReduceLROnPlateau"]


class ReduceLROnPlateau(LRScheduler):
    """Multiply the learning rates by ``factor`` when a metric has stopped improving for more
    than ``patience`` calls of ``step(metric)`` (torch.optim.lr_scheduler.ReduceLROnPlateau).

    ``mode`` 'min' or 'max'; improvement means below ``best * (1 - threshold)`` ('rel') or
    ``best - threshold`` ('abs') in 'min' mode (mirrored in 'max'); after a reduction,
    ``cooldown`` calls are ignored; no lr goes below ``min_lr`` (a number or one per group), and
    a reduction smaller than ``eps`` is not made.
    """

    _nullable = ("default_min_lr",)

    def __init__(
        self,
        optimizer,
        mode="min",
        factor=0.1,
        patience=10,
        threshold=1e-4,
        threshold_mode="rel",
        cooldown=0,
        min_lr=0.0,
        eps=1e-8,
    ):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(
                f"optimizer must be a convext.optim optimizer, got {type(optimizer).__name__}"
            )
        self.factor = factor
        self.optimizer = optimizer
        check = lambda n, v: check_real(n, v, 0.0)  # noqa: E731
        if isinstance(min_lr, (list, tuple)):
            self.default_min_lr = None
            self.min_lrs = _per_group("min_lr", optimizer, min_lr, check)
        else:
            self.default_min_lr = check("min_lr", min_lr)
            self.min_lrs = [self.default_min_lr] * len(optimizer.param_groups)
        self.patience, self.cooldown, self.eps = patience, cooldown, eps
        self.last_epoch = 0
        self._last_lr = self._group_lrs()
        self.mode, self.threshold, self.threshold_mode = mode, threshold, threshold_mode
        self._check()
        self.mode_worse = math.inf if mode == "min" else -math.inf
        self.best = self.mode_worse
        self.cooldown_counter = 0
        self.num_bad_epochs = 0

    def _check(self):
        self.factor = check_real("factor", self.factor, 0.0, 1.0)
        self.patience = _int("patience", self.patience, 0)
        self.cooldown = _int("cooldown", self.cooldown, 0)
        self.eps = check_real("eps", self.eps, 0.0)
        self.threshold = check_real("threshold", self.threshold, 0.0)
        if self.mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {self.mode!r}")
        if self.threshold_mode not in ("rel", "abs"):
            raise ValueError(f"threshold_mode must be 'rel' or 'abs', got {self.threshold_mode!r}")

    def _check_state(self):
        self._check()
        self.mode_worse = math.inf if self.mode == "min" else -math.inf
        for key in ("last_epoch", "cooldown_counter", "num_bad_epochs"):
            _int(f"state_dict[{key!r}]", getattr(self, key), 0)
        if self.default_min_lr is not None:
            check_real("state_dict['default_min_lr']", self.default_min_lr, 0.0)
        for i, v in enumerate(self.min_lrs):
            check_real(f"state_dict['min_lrs'][{i}]", v, 0.0)

    @property
    def in_cooldown(self):
        return self.cooldown_counter > 0

    def _is_better(self, a, best):
        if self.mode == "min" and self.threshold_mode == "rel":
            return a < best * (1.0 - self.threshold)
        if self.mode == "min":
            return a < best - self.threshold
        if self.threshold_mode == "rel":
            return a > best * (self.threshold + 1.0)
        return a > best + self.threshold

    def step(self, metrics):
        """Record ``metrics`` (a number: the validation loss, say) for one epoch."""
        if isinstance(metrics, np.ndarray) and metrics.size == 1:
            metrics = metrics.reshape(())[()]
        if isinstance(metrics, (bool, np.bool_)) or not isinstance(metrics, numbers.Real):
            raise TypeError(f"metrics must be a number, got {type(metrics).__name__}")
        try:
            current = float(metrics)  # NaN and the infinities compare as in torch
        except OverflowError:
            raise ValueError(
                f"metrics is an int too large for a float ({metrics.bit_length()} bits)"
            ) from None
        self.last_epoch += 1
        if self._is_better(current, self.best):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.in_cooldown:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            self._reduce_lr()
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        self._last_lr = self._group_lrs()

    def _reduce_lr(self):
        n = len(self.optimizer.param_groups)
        if len(self.min_lrs) != n:
            if self.default_min_lr is None:
                raise ValueError(
                    f"min_lrs has {len(self.min_lrs)} values but the optimizer "
                    f"now has {n} param groups; set min_lrs"
                )
            self.min_lrs = [self.default_min_lr] * n
        for i, group in enumerate(self.optimizer.param_groups):
            old_lr = float(group["lr"])
            new_lr = max(old_lr * self.factor, self.min_lrs[i])
            if old_lr - new_lr > self.eps:
                group["lr"] = new_lr
