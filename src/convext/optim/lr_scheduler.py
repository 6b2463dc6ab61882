"""Learning-rate schedulers with torch.optim.lr_scheduler's names, arguments and sequences.

Call ``scheduler.step()`` after ``optimizer.step()`` (once per epoch, or once per batch for a
per-step schedule such as OneCycleLR). Each scheduler sets ``param_group['lr']`` of every
group of its optimizer; ``get_last_lr()`` lists them. The learning rates are computed with
the same floating-point formulas, in the same order, as torch 2.13 (several are recursive,
each lr from the previous one), so the sequences equal torch's exactly.

``state_dict()`` holds the same keys as torch's; ``load_state_dict`` checks every value (its
type, and the constructor's rules) before anything changes. As in torch, build the scheduler
before loading the optimizer's state when resuming, so the loaded learning rates stay.
Not reproduced: torch's warnings about the call order and the deprecated ``step(epoch)``.
"""

import copy
import math
import numbers
from bisect import bisect_right
from collections import Counter

from .._validation import _as_int
from .optimizer import Optimizer, check_bool, check_real

__all__ = [
    "CosineAnnealingLR",
    "ExponentialLR",
    "LRScheduler",
    "LinearLR",
    "MultiStepLR",
    "OneCycleLR",
    "ReduceLROnPlateau",
    "SequentialLR",
    "StepLR",
]


# step counts, periods and milestones: exact in a float, so every formula of a schedule stays
# finite (a milestone counted 2**63 times made gamma ** count an OverflowError)
_MAX_COUNT = 2**53


def _int(name, value, low):
    v = _as_int(value, name)
    if not low <= v <= _MAX_COUNT:
        raise ValueError(f"{name} must be in [{low}, 2**53], got {v}")
    return v


def _like(ref, value, where, nullable=False):
    """``value`` normalised to the structure of ``ref`` (our own state_dict value); None only
    where ``nullable``."""
    if isinstance(ref, bool):
        return check_bool(where, value)
    if isinstance(ref, int) and not isinstance(ref, bool):
        return _int(where, value, -_MAX_COUNT)
    if isinstance(ref, float) or ref is None:
        if value is None and (nullable or ref is None):
            return None
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or value != value:
            raise TypeError(f"{where} must be a real number, got {value!r:.80}")
        try:
            return float(value)  # an infinity is a value here (ReduceLROnPlateau's best)
        except OverflowError:
            raise ValueError(f"{where} is an int too large for a float") from None
    if isinstance(ref, str):
        if not isinstance(value, str):
            raise TypeError(f"{where} must be a str, got {type(value).__name__}")
        return value
    if isinstance(ref, Counter):
        if not isinstance(value, dict):
            raise TypeError(f"{where} must be a dict {{milestone: count}}")
        return Counter({_int(where, k, -_MAX_COUNT): _int(where, v, 1) for k, v in value.items()})
    if isinstance(ref, dict):
        if not isinstance(value, dict) or set(value) != set(ref):
            raise ValueError(f"{where} must be a dict with the keys {sorted(ref)}")
        return {k: _like(ref[k], value[k], f"{where}[{k!r}]") for k in ref}
    if isinstance(ref, (list, tuple)):
        if not isinstance(value, (list, tuple)):
            raise TypeError(f"{where} must be a list, got {type(value).__name__}")
        if not ref:
            if value:
                raise ValueError(f"{where} must be empty")
            return []
        return [_like(ref[min(i, len(ref) - 1)], v, f"{where}[{i}]") for i, v in enumerate(value)]
    raise TypeError(f"{where}: cannot restore a {type(ref).__name__}")  # pragma: no cover


def _per_group(name, optimizer, value, check):
    n = len(optimizer.param_groups)
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise ValueError(f"{name} must have one value per param group ({n}), got {len(value)}")
        return [check(f"{name}[{i}]", v) for i, v in enumerate(value)]
    return [check(name, value)] * n


class LRScheduler:
    """Base class (torch.optim.lr_scheduler.LRScheduler). Subclasses set their settings,
    check them in ``_check()``, and compute ``get_lr()`` for ``last_epoch``."""

    _nullable = ()  # state_dict keys that may hold None
    # the settings that multiply the learning rate step after step: a step whose learning rate
    # would not be finite (gamma=1e300, or gamma > 1 stepped long enough) is a ValueError
    # naming them, raised before anything changes (torch would set an infinite lr)
    _lr_factors = ()

    def __init__(self, optimizer, last_epoch=-1):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(
                f"optimizer must be a convext.optim optimizer, got {type(optimizer).__name__}"
            )
        self.optimizer = optimizer
        last_epoch = _int("last_epoch", last_epoch, -1)
        if last_epoch == -1:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        else:
            for i, group in enumerate(optimizer.param_groups):
                if "initial_lr" not in group:
                    raise ValueError(
                        f"last_epoch={last_epoch}: param_groups[{i}] has no "
                        "'initial_lr'; load the optimizer's state first"
                    )
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self._initial_step()

    def _initial_step(self):
        self._step_count = 0
        self._is_initial = True
        try:
            self.step()
        finally:
            self._is_initial = False

    def get_last_lr(self):
        """The learning rates (one per param group) set by the last ``step()``."""
        return list(self._last_lr)

    def get_lr(self):
        """The learning rates for ``last_epoch`` (called by ``step``; read ``get_last_lr()``)."""
        raise NotImplementedError

    def step(self):
        """Advance one epoch (or batch) and set the optimizer's learning rates (a ValueError,
        and nothing changed, if one would not be finite)."""
        self._step_count += 1
        try:
            self._update_lr()
        except BaseException:
            self._step_count -= 1
            raise

    def _update_lr(self, epoch=None):
        saved = self.last_epoch
        self._get_lr_called_within_step = True
        try:
            if epoch is None:
                self.last_epoch += 1
                values = self._finite(self.get_lr)
            else:
                self.last_epoch = epoch
                closed = getattr(self, "_get_closed_form_lr", None)
                values = self._finite(closed if closed is not None else self.get_lr)
        except BaseException:
            self.last_epoch = saved
            raise
        finally:
            self._get_lr_called_within_step = False
        for group, lr in zip(self.optimizer.param_groups, values, strict=True):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def _finite(self, get_lr):
        """``get_lr()``, or a ValueError naming the settings in ``_lr_factors`` if a learning
        rate would not be finite (a float ``gamma ** count`` beyond the float range is an
        OverflowError in Python: the same error)."""
        try:
            values = get_lr()
            bad = next(((i, v) for i, v in enumerate(values) if not math.isfinite(v)), None)
        except OverflowError:
            bad = (None, "beyond the float range")
        if bad is None:
            return values
        i, v = bad
        group = "" if i is None else f" of param group {i}"
        settings = ", ".join(f"{k}={getattr(self, k)!r}" for k in self._lr_factors)
        raise ValueError(
            f"{type(self).__name__}: step {self.last_epoch} would make the learning rate"
            f"{group} {v} (not finite): "
            + (f"{settings} makes it overflow" if settings else "check the schedule's settings")
            + "; nothing was changed"
        )

    # -- state ---------------------------------------------------------------------------------
    def state_dict(self):
        """Every setting and counter (torch's keys), not the optimizer; plain Python values."""
        return self._own_state()

    def _own_state(self):
        return {
            k: copy.deepcopy(v)
            for k, v in vars(self).items()
            if k not in ("optimizer", "_schedulers")
        }

    def load_state_dict(self, state_dict):
        """Restore ``state_dict()``; every value is checked first (ValueError/TypeError naming
        the key), and nothing changes on error."""
        if not isinstance(state_dict, dict):
            raise TypeError(f"state_dict must be a dict, got {type(state_dict).__name__}")
        current = self._own_state()
        for key in current:
            if key not in state_dict:
                raise ValueError(f"state_dict has no {key!r}")
        for key in state_dict:
            if key not in current:
                raise ValueError(f"state_dict: unexpected key {key!r}")
        new = {
            k: _like(current[k], state_dict[k], f"state_dict[{k!r}]", k in self._nullable)
            for k in current
        }
        old = dict(vars(self))
        vars(self).update(new)
        try:
            self._check_state()
        except BaseException:
            vars(self).clear()
            vars(self).update(old)
            raise

    def _check_state(self):
        self._check()
        n = len(self.optimizer.param_groups)
        for key in ("base_lrs", "_last_lr"):
            values = getattr(self, key)
            if len(values) != n:
                raise ValueError(
                    f"state_dict[{key!r}] has {len(values)} values, the optimizer {n} param groups"
                )
            for i, v in enumerate(values):
                check_real(f"state_dict[{key!r}][{i}]", v, 0.0)
        _int("state_dict['last_epoch']", self.last_epoch, -1)
        _int("state_dict['_step_count']", self._step_count, 0)

    def _check(self):
        pass

    def _group_lrs(self):
        return [group["lr"] for group in self.optimizer.param_groups]

    def __repr__(self):
        return f"{type(self).__name__}(last_epoch={self.last_epoch}, lr={self._last_lr})"


class StepLR(LRScheduler):
    """lr = initial_lr * gamma ** (epoch // step_size) (torch.optim.lr_scheduler.StepLR)."""

    _lr_factors = ("gamma",)

    def __init__(self, optimizer, step_size, gamma=0.1, last_epoch=-1):
        self.step_size, self.gamma = step_size, gamma
        self._check()
        super().__init__(optimizer, last_epoch)

    def _check(self):
        self.step_size = _int("step_size", self.step_size, 1)
        self.gamma = check_real("gamma", self.gamma, 0.0)

    def get_lr(self):
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return self._group_lrs()
        return [lr * self.gamma for lr in self._group_lrs()]

    def _get_closed_form_lr(self):
        return [b * self.gamma ** (self.last_epoch // self.step_size) for b in self.base_lrs]


class MultiStepLR(LRScheduler):
    """lr = initial_lr * gamma ** (number of milestones <= epoch) (torch's MultiStepLR; a
    milestone given twice counts twice)."""

    _lr_factors = ("gamma",)

    def __init__(self, optimizer, milestones, gamma=0.1, last_epoch=-1):
        if isinstance(milestones, (str, bytes)) or not hasattr(milestones, "__iter__"):
            raise TypeError(f"milestones must be a list of ints, got {milestones!r}")
        self.milestones = Counter(_int("milestones", m, -_MAX_COUNT) for m in milestones)
        self.gamma = gamma
        self._check()
        super().__init__(optimizer, last_epoch)

    def _check(self):
        self.gamma = check_real("gamma", self.gamma, 0.0)

    def get_lr(self):
        if self.last_epoch not in self.milestones:
            return self._group_lrs()
        return [lr * self.gamma ** self.milestones[self.last_epoch] for lr in self._group_lrs()]

    def _get_closed_form_lr(self):
        milestones = sorted(self.milestones.elements())
        return [b * self.gamma ** bisect_right(milestones, self.last_epoch) for b in self.base_lrs]


class ExponentialLR(LRScheduler):
    """lr = initial_lr * gamma ** epoch, recursively (torch's ExponentialLR)."""

    _lr_factors = ("gamma",)

    def __init__(self, optimizer, gamma, last_epoch=-1):
        self.gamma = gamma
        self._check()
        super().__init__(optimizer, last_epoch)

    def _check(self):
        self.gamma = check_real("gamma", self.gamma, 0.0)

    def get_lr(self):
        if self._is_initial:
            return self._group_lrs()
        return [lr * self.gamma for lr in self._group_lrs()]

    def _get_closed_form_lr(self):
        return [b * self.gamma**self.last_epoch for b in self.base_lrs]


class CosineAnnealingLR(LRScheduler):
    """A half cosine from initial_lr down to eta_min over T_max steps (then back up), in
    torch's recursive form (torch.optim.lr_scheduler.CosineAnnealingLR)::

        lr_t = eta_min + (initial_lr - eta_min) * (1 + cos(pi * t / T_max)) / 2
    """

    def __init__(self, optimizer, T_max, eta_min=0.0, last_epoch=-1):
        self.T_max, self.eta_min = T_max, eta_min
        self._check()
        super().__init__(optimizer, last_epoch)

    def _check(self):
        self.T_max = _int("T_max", self.T_max, 1)
        self.eta_min = check_real("eta_min", self.eta_min, 0.0)

    def get_lr(self):
        t, T, lo = self.last_epoch, self.T_max, self.eta_min
        if self._is_initial:
            return self._group_lrs()
        if self._step_count == 1 and t > 0:
            return [lo + (b - lo) * (1 + math.cos(t * math.pi / T)) / 2 for b in self.base_lrs]
        if (t - 1 - T) % (2 * T) == 0:
            return [
                lr + (b - lo) * (1 - math.cos(math.pi / T)) / 2
                for b, lr in zip(self.base_lrs, self._group_lrs(), strict=True)
            ]
        return [
            (1 + math.cos(math.pi * t / T)) / (1 + math.cos(math.pi * (t - 1) / T)) * (lr - lo) + lo
            for lr in self._group_lrs()
        ]

    def _get_closed_form_lr(self):
        return [
            self.eta_min
            + (b - self.eta_min) * (1 + math.cos(math.pi * self.last_epoch / self.T_max)) / 2
            for b in self.base_lrs
        ]


class LinearLR(LRScheduler):
    """The factor of initial_lr goes linearly from start_factor to end_factor over total_iters
    steps, recursively (torch's LinearLR)."""

    def __init__(
        self, optimizer, start_factor=1.0 / 3, end_factor=1.0, total_iters=5, last_epoch=-1
    ):
        self.start_factor, self.end_factor = start_factor, end_factor
        self.total_iters = total_iters
        self._check()
        super().__init__(optimizer, last_epoch)

    def _check(self):
        self.start_factor = check_real(
            "start_factor", self.start_factor, 0.0, 1.0, low_open=True, high_open=False
        )
        self.end_factor = check_real("end_factor", self.end_factor, 0.0, 1.0, high_open=False)
        self.total_iters = _int("total_iters", self.total_iters, 1)

    def get_lr(self):
        s, e, n, t = self.start_factor, self.end_factor, self.total_iters, self.last_epoch
        if t == 0:
            return [lr * s for lr in self._group_lrs()]
        if self._is_initial or t > n:
            return self._group_lrs()
        return [lr * (1.0 + (e - s) / (n * s + (t - 1) * (e - s))) for lr in self._group_lrs()]

    def _get_closed_form_lr(self):
        s, e, n = self.start_factor, self.end_factor, self.total_iters
        return [b * (s + (e - s) * min(n, self.last_epoch) / n) for b in self.base_lrs]


class SequentialLR(LRScheduler):
    """``schedulers[i]`` runs from ``milestones[i-1]`` on, each restarted at its milestone
    (torch's SequentialLR)."""

    def __init__(self, optimizer, schedulers, milestones, last_epoch=-1):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(
                f"optimizer must be a convext.optim optimizer, got {type(optimizer).__name__}"
            )
        schedulers = list(schedulers)
        if not schedulers:
            raise ValueError("schedulers must hold at least one scheduler")
        for i, s in enumerate(schedulers):
            if not isinstance(s, LRScheduler) or isinstance(s, ReduceLROnPlateau):
                raise TypeError(
                    f"schedulers[{i}] must be a scheduler other than "
                    f"ReduceLROnPlateau, got {type(s).__name__}"
                )
            if s.optimizer is not optimizer:
                raise ValueError(f"schedulers[{i}] belongs to another optimizer")
        milestones = [_int("milestones", m, -_MAX_COUNT) for m in milestones]
        if len(milestones) != len(schedulers) - 1:
            raise ValueError(
                f"milestones must hold len(schedulers) - 1 = "
                f"{len(schedulers) - 1} values, got {len(milestones)}"
            )
        self._schedulers = schedulers
        self._milestones = milestones
        self._check()
        self.last_epoch = _int("last_epoch", last_epoch, -1) + 1
        self.optimizer = optimizer
        for group in optimizer.param_groups:
            group["lr"] = group["initial_lr"]
        self._undo(self)
        idx = bisect_right(self._milestones, 0)
        self._schedulers[idx]._initial_step()
        self._last_lr = self._schedulers[idx].get_last_lr()

    def _check(self):
        if any(b < a for a, b in zip(self._milestones[:-1], self._milestones[1:], strict=True)):
            raise ValueError(f"milestones must be sorted, got {self._milestones}")

    def _undo(self, sched):
        if hasattr(sched, "_schedulers"):
            for s in sched._schedulers:
                self._undo(s)
        else:
            sched.last_epoch -= 1

    def step(self):
        self.last_epoch += 1
        idx = bisect_right(self._milestones, self.last_epoch)
        scheduler = self._schedulers[idx]
        try:
            if idx > 0 and self._milestones[idx - 1] == self.last_epoch:
                scheduler._update_lr(0)
            else:
                scheduler.step()
        except BaseException:  # the scheduler changed nothing (a non-finite lr): neither here
            self.last_epoch -= 1
            raise
        self._last_lr = scheduler.get_last_lr()

    def state_dict(self):
        out = self._own_state()
        out["_schedulers"] = [s.state_dict() for s in self._schedulers]
        return out

    def load_state_dict(self, state_dict):
        if not isinstance(state_dict, dict):
            raise TypeError(f"state_dict must be a dict, got {type(state_dict).__name__}")
        subs = state_dict.get("_schedulers")
        if not isinstance(subs, (list, tuple)) or len(subs) != len(self._schedulers):
            raise ValueError(
                f"state_dict['_schedulers'] must hold {len(self._schedulers)} state dicts"
            )
        before = [s.state_dict() for s in self._schedulers]
        own = {k: v for k, v in state_dict.items() if k != "_schedulers"}
        try:
            for s, d in zip(self._schedulers, subs, strict=True):
                s.load_state_dict(d)
            LRScheduler.load_state_dict(self, own)
        except BaseException:
            for s, d in zip(self._schedulers, before, strict=True):
                s.load_state_dict(d)
            raise

    def _check_state(self):
        self._check()
        if len(self._milestones) != len(self._schedulers) - 1:
            raise ValueError(
                f"state_dict['_milestones'] must hold {len(self._schedulers) - 1} values"
            )
        _int("state_dict['last_epoch']", self.last_epoch, 0)
        if len(self._last_lr) != len(self.optimizer.param_groups):
            raise ValueError("state_dict['_last_lr'] must hold one lr per param group")


# in their own files for length; they build on the helpers above
from ._one_cycle import OneCycleLR  # noqa: E402
from ._plateau import ReduceLROnPlateau  # noqa: E402
