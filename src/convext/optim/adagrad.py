"""Adagrad with torch.optim.Adagrad's update rule."""

from __future__ import annotations

import numpy as np

from .optimizer import Optimizer, Params, check_bool, check_real

__all__ = ["Adagrad"]


class Adagrad(Optimizer):
    """Adagrad (Duchi et al.), as torch.optim.Adagrad; t counts this parameter's steps::

        g = -grad if maximize else grad
        g = g + weight_decay * p
        s += g * g                       (s starts at initial_accumulator_value)
        p -= lr / (1 + (t - 1) * lr_decay) * g / (sqrt(s) + eps)

    State per parameter, created with the optimizer as torch does: ``'step'`` (a float) and
    ``'sum'``. As in torch, the accumulator starts at the constructor's
    ``initial_accumulator_value`` for every group.
    """

    _state_arrays = ("sum",)
    _state_scalars = ("step",)
    _state_nonnegative = ("sum",)

    def __init__(
        self,
        params: Params,
        lr: float = 1e-2,
        lr_decay: float = 0.0,
        weight_decay: float = 0.0,
        initial_accumulator_value: float = 0.0,
        eps: float = 1e-10,
        *,
        maximize: bool = False,
    ) -> None:
        super().__init__(
            params,
            dict(
                lr=lr,
                lr_decay=lr_decay,
                eps=eps,
                weight_decay=weight_decay,
                initial_accumulator_value=initial_accumulator_value,
                maximize=maximize,
            ),
        )

    def _check_hyper(self, group, where):
        out = super()._check_hyper(group, where)
        for key in ("lr", "lr_decay", "eps", "weight_decay", "initial_accumulator_value"):
            out[key] = check_real(f"{where}{key}", group[key], 0.0)
        out["maximize"] = check_bool(f"{where}maximize", group["maximize"])
        return out

    def _initial_state(self, p, group):
        return {"step": 0.0, "sum": np.full_like(p, self.defaults["initial_accumulator_value"])}

    def _required_state(self, group):
        return ("step", "sum")

    def _update(self, p, g, state, group):
        if not state:
            state.update(self._initial_state(p, group))
        state["step"] += 1
        if group["maximize"]:
            g = -g
        if group["weight_decay"]:
            g = g + group["weight_decay"] * p
        clr = group["lr"] / (1 + (state["step"] - 1) * group["lr_decay"])
        s = state["sum"]
        s += g * g
        std = np.sqrt(s)
        std += group["eps"]
        p -= clr * (g / std)
