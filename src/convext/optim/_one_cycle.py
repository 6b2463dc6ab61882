"""OneCycleLR (convext.optim.lr_scheduler.OneCycleLR), torch's rules."""

import math
import numbers

from .lr_scheduler import LRScheduler, _int, _per_group
from .optimizer import Optimizer, check_bool, check_real

__all__ = ["OneCycleLR"]

_LR_KEYS = ("initial_lr", "max_lr", "min_lr")
_MOMENTUM_KEYS = ("max_momentum", "base_momentum")


class OneCycleLR(LRScheduler):
    """The 1cycle policy (Smith & Topin), per batch, as torch's OneCycleLR: lr rises from
    max_lr / div_factor to max_lr over pct_start of total_steps, then anneals ('cos' or
    'linear') to max_lr / div_factor / final_div_factor; with cycle_momentum, SGD's momentum or
    Adam's beta1 moves the opposite way between base_momentum and max_momentum. three_phase
    as in torch. Stepping past total_steps is a ValueError."""

    def __init__(
        self,
        optimizer,
        max_lr,
        total_steps=None,
        epochs=None,
        steps_per_epoch=None,
        pct_start=0.3,
        anneal_strategy="cos",
        cycle_momentum=True,
        base_momentum=0.85,
        max_momentum=0.95,
        div_factor=25.0,
        final_div_factor=1e4,
        three_phase=False,
        last_epoch=-1,
    ):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(
                f"optimizer must be a convext.optim optimizer, got {type(optimizer).__name__}"
            )
        if total_steps is not None:
            self.total_steps = _int("total_steps", total_steps, 1)
        elif epochs is not None and steps_per_epoch is not None:
            self.total_steps = _int("epochs", epochs, 1) * _int(
                "steps_per_epoch", steps_per_epoch, 1
            )
        else:
            raise ValueError("give total_steps, or epochs and steps_per_epoch")
        pct_start = check_real("pct_start", pct_start, 0.0, 1.0, high_open=False)
        div_factor = check_real("div_factor", div_factor, 0.0, low_open=True)
        final_div_factor = check_real("final_div_factor", final_div_factor, 0.0, low_open=True)
        three_phase = check_bool("three_phase", three_phase)
        first = {
            "end_step": float(pct_start * self.total_steps) - 1,
            "start_lr": "initial_lr",
            "end_lr": "max_lr",
            "start_momentum": "max_momentum",
            "end_momentum": "base_momentum",
        }
        if three_phase:
            self._schedule_phases = [
                first,
                {
                    "end_step": float(2 * pct_start * self.total_steps) - 2,
                    "start_lr": "max_lr",
                    "end_lr": "initial_lr",
                    "start_momentum": "base_momentum",
                    "end_momentum": "max_momentum",
                },
                {
                    "end_step": self.total_steps - 1,
                    "start_lr": "initial_lr",
                    "end_lr": "min_lr",
                    "start_momentum": "max_momentum",
                    "end_momentum": "max_momentum",
                },
            ]
        else:
            self._schedule_phases = [
                first,
                {
                    "end_step": self.total_steps - 1,
                    "start_lr": "max_lr",
                    "end_lr": "min_lr",
                    "start_momentum": "base_momentum",
                    "end_momentum": "max_momentum",
                },
            ]
        self._anneal_func_type = anneal_strategy
        self.cycle_momentum = check_bool("cycle_momentum", cycle_momentum)
        self._check()
        max_lrs = _per_group("max_lr", optimizer, max_lr, lambda n, v: check_real(n, v, 0.0))
        if _int("last_epoch", last_epoch, -1) == -1:
            for m, group in zip(max_lrs, optimizer.param_groups, strict=True):
                group["initial_lr"] = m / div_factor
                group["max_lr"] = m
                group["min_lr"] = group["initial_lr"] / final_div_factor
        if self.cycle_momentum:
            if "momentum" not in optimizer.defaults and "betas" not in optimizer.defaults:
                raise ValueError(
                    "cycle_momentum: the optimizer has neither momentum nor betas "
                    "(pass cycle_momentum=False)"
                )
            self.use_beta1 = "betas" in optimizer.defaults
            maxs = _per_group("max_momentum", optimizer, max_momentum, check_real)
            bases = _per_group("base_momentum", optimizer, base_momentum, check_real)
            if last_epoch == -1:
                for m, b, group in zip(maxs, bases, optimizer.param_groups, strict=True):
                    if self.use_beta1:
                        group["betas"] = (m, *group["betas"][1:])
                    else:
                        group["momentum"] = m
                    group["max_momentum"] = m
                    group["base_momentum"] = b
        super().__init__(optimizer, last_epoch)

    def _check(self):
        if self._anneal_func_type not in ("cos", "linear"):
            raise ValueError(
                f"anneal_strategy must be 'cos' or 'linear', got {self._anneal_func_type!r}"
            )
        self.total_steps = _int("total_steps", self.total_steps, 1)
        if len(self._schedule_phases) not in (2, 3):
            raise ValueError("_schedule_phases must hold 2 or 3 phases")
        for i, phase in enumerate(self._schedule_phases):
            for key, allowed in (
                ("start_lr", _LR_KEYS),
                ("end_lr", _LR_KEYS),
                ("start_momentum", _MOMENTUM_KEYS),
                ("end_momentum", _MOMENTUM_KEYS),
            ):
                if phase[key] not in allowed:
                    raise ValueError(
                        f"_schedule_phases[{i}][{key!r}] must be one of "
                        f"{allowed}, got {phase[key]!r}"
                    )
            if isinstance(phase["end_step"], bool) or not isinstance(
                phase["end_step"], numbers.Real
            ):
                raise TypeError(f"_schedule_phases[{i}]['end_step'] must be a number")

    def _check_state(self):
        super()._check_state()
        keys = _LR_KEYS + (_MOMENTUM_KEYS if self.cycle_momentum else ())
        for i, group in enumerate(self.optimizer.param_groups):
            for key in keys:
                if key not in group:
                    raise ValueError(
                        f"param_groups[{i}] has no {key!r}: load the "
                        "optimizer's state of this schedule first"
                    )

    def _anneal(self, start, end, pct):
        if self._anneal_func_type == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
        return (end - start) * pct + start

    def get_lr(self):
        step_num = self.last_epoch
        if step_num > self.total_steps:
            raise ValueError(
                f"OneCycleLR: stepped {step_num} times, total_steps is {self.total_steps}"
            )
        lrs = []
        for group in self.optimizer.param_groups:
            start_step = 0.0
            for i, phase in enumerate(self._schedule_phases):
                end_step = phase["end_step"]
                if step_num <= end_step or i == len(self._schedule_phases) - 1:
                    pct = (step_num - start_step) / (end_step - start_step)
                    lr = self._anneal(group[phase["start_lr"]], group[phase["end_lr"]], pct)
                    if self.cycle_momentum:
                        momentum = self._anneal(
                            group[phase["start_momentum"]], group[phase["end_momentum"]], pct
                        )
                    break
                start_step = phase["end_step"]
            lrs.append(lr)
            if self.cycle_momentum:
                if self.use_beta1:
                    group["betas"] = (momentum, *group["betas"][1:])
                else:
                    group["momentum"] = momentum
        return lrs
