"""Adam and AdamW with torch.optim.Adam's update rule."""

from __future__ import annotations

import numpy as np

from .optimizer import Optimizer, Params, check_bool, check_real

__all__ = ["Adam", "AdamW"]


def lerp_(a, b, weight):
    """a <- a + weight * (b - a) in place, evaluated as torch's lerp does (two formulas
    around weight 0.5, so that weight 1 gives b exactly)."""
    if abs(weight) < 0.5:
        a += weight * (b - a)
    else:
        a[...] = b - (b - a) * (1 - weight)


class Adam(Optimizer):
    """Adam (Kingma & Ba), as torch.optim.Adam; t counts this parameter's steps::

        g = -grad if maximize else grad
        g = g + weight_decay * p          (decoupled_weight_decay: p *= 1 - lr * weight_decay)
        m = lerp(m, g, 1 - beta1);  v = beta2 * v + (1 - beta2) * g * g
        vmax = max(vmax, v)                                                        (amsgrad)
        denom = sqrt(v or vmax) / sqrt(1 - beta2**t) + eps
        p -= lr / (1 - beta1**t) * m / denom

    State per parameter: ``'step'`` (a float; torch keeps a 0-d tensor), ``'exp_avg'``,
    ``'exp_avg_sq'`` and, with amsgrad, ``'max_exp_avg_sq'``.
    """

    _state_arrays = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")
    _state_scalars = ("step",)
    _state_nonnegative = ("exp_avg_sq", "max_exp_avg_sq")

    def __init__(
        self,
        params: Params,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
        decoupled_weight_decay: bool = False,
    ) -> None:
        super().__init__(
            params,
            dict(
                lr=lr,
                betas=betas,
                eps=eps,
                weight_decay=weight_decay,
                amsgrad=amsgrad,
                maximize=maximize,
                decoupled_weight_decay=decoupled_weight_decay,
            ),
        )

    def _check_hyper(self, group, where):
        out = super()._check_hyper(group, where)
        out["lr"] = check_real(f"{where}lr", group["lr"], 0.0)
        betas = group["betas"]
        if isinstance(betas, np.ndarray):
            betas = betas.tolist()
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"{where}betas must be a pair (beta1, beta2), got {betas!r}")
        out["betas"] = (
            check_real(f"{where}betas[0]", betas[0], 0.0, 1.0),
            check_real(f"{where}betas[1]", betas[1], 0.0, 1.0),
        )
        out["eps"] = check_real(f"{where}eps", group["eps"], 0.0)
        out["weight_decay"] = check_real(f"{where}weight_decay", group["weight_decay"], 0.0)
        for key in ("amsgrad", "maximize", "decoupled_weight_decay"):
            out[key] = check_bool(f"{where}{key}", group[key])
        return out

    def _required_state(self, group):
        return ("step", "exp_avg", "exp_avg_sq") + (("max_exp_avg_sq",) if group["amsgrad"] else ())

    def _update(self, p, g, state, group):
        lr, (b1, b2), wd = group["lr"], group["betas"], group["weight_decay"]
        if not state:
            state["step"] = 0.0
            state["exp_avg"] = np.zeros_like(p)
            state["exp_avg_sq"] = np.zeros_like(p)
        if group["amsgrad"] and "max_exp_avg_sq" not in state:
            state["max_exp_avg_sq"] = np.zeros_like(p)
        if group["maximize"]:
            g = -g
        state["step"] += 1
        t = state["step"]
        if wd:
            if group["decoupled_weight_decay"]:
                p *= 1 - lr * wd
            else:
                g = g + wd * p
        m, v = state["exp_avg"], state["exp_avg_sq"]
        lerp_(m, g, 1 - b1)
        v *= b2
        v += (1 - b2) * g * g
        if group["amsgrad"]:
            np.maximum(state["max_exp_avg_sq"], v, out=state["max_exp_avg_sq"])
            v = state["max_exp_avg_sq"]
        step_size = lr / (1 - b1**t)
        denom = np.sqrt(v)
        denom /= (1 - b2**t) ** 0.5
        denom += group["eps"]
        p -= step_size * (m / denom)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter), as torch.optim.AdamW: the
    parameters shrink by ``lr * weight_decay`` before the Adam step. Default weight_decay 0.01.
    """

    def __init__(
        self,
        params: Params,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
    ) -> None:
        super().__init__(
            params,
            lr,
            betas,
            eps,
            weight_decay,
            amsgrad,
            maximize=maximize,
            decoupled_weight_decay=True,
        )
