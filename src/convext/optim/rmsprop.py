"""RMSprop with torch.optim.RMSprop's update rule."""

from __future__ import annotations

import numpy as np

from .adam import lerp_
from .optimizer import Optimizer, Params, check_bool, check_real

__all__ = ["RMSprop"]


class RMSprop(Optimizer):
    """RMSprop (Hinton), as torch.optim.RMSprop::

        g = -grad if maximize else grad
        g = g + weight_decay * p
        v = alpha * v + (1 - alpha) * g * g
        avg = sqrt(v - ga * ga) + eps, with ga = lerp(ga, g, 1 - alpha)   (centered)
        avg = sqrt(v) + eps                                               (otherwise)
        buf = momentum * buf + g / avg;  p -= lr * buf                    (momentum > 0)
        p -= lr * g / avg                                                 (otherwise)

    State per parameter: ``'step'`` (a float), ``'square_avg'``, with momentum
    ``'momentum_buffer'``, centered ``'grad_avg'``.
    """

    _state_arrays = ("square_avg", "momentum_buffer", "grad_avg")
    _state_scalars = ("step",)
    _state_nonnegative = ("square_avg",)

    def __init__(
        self,
        params: Params,
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum: float = 0.0,
        centered: bool = False,
        *,
        maximize: bool = False,
    ) -> None:
        super().__init__(
            params,
            dict(
                lr=lr,
                momentum=momentum,
                alpha=alpha,
                eps=eps,
                centered=centered,
                weight_decay=weight_decay,
                maximize=maximize,
            ),
        )

    def _check_hyper(self, group, where):
        out = super()._check_hyper(group, where)
        for key in ("lr", "momentum", "alpha", "eps", "weight_decay"):
            out[key] = check_real(f"{where}{key}", group[key], 0.0)
        for key in ("centered", "maximize"):
            out[key] = check_bool(f"{where}{key}", group[key])
        return out

    def _required_state(self, group):
        return (
            ("step", "square_avg")
            + (("momentum_buffer",) if group["momentum"] > 0 else ())
            + (("grad_avg",) if group["centered"] else ())
        )

    def _update(self, p, g, state, group):
        alpha, momentum = group["alpha"], group["momentum"]
        if not state:
            state["step"] = 0.0
            state["square_avg"] = np.zeros_like(p)
        # created when first needed (torch creates them with the state; a scheduler may turn
        # momentum on later)
        if momentum > 0 and "momentum_buffer" not in state:
            state["momentum_buffer"] = np.zeros_like(p)
        if group["centered"] and "grad_avg" not in state:
            state["grad_avg"] = np.zeros_like(p)
        if group["maximize"]:
            g = -g
        state["step"] += 1
        if group["weight_decay"]:
            g = g + group["weight_decay"] * p
        v = state["square_avg"]
        v *= alpha
        v += (1 - alpha) * g * g
        if group["centered"]:
            ga = state["grad_avg"]
            lerp_(ga, g, 1 - alpha)
            avg = v - ga * ga
            np.sqrt(avg, out=avg)
        else:
            avg = np.sqrt(v)
        avg += group["eps"]
        if momentum > 0:
            buf = state["momentum_buffer"]
            buf *= momentum
            buf += g / avg
            p -= group["lr"] * buf
        else:
            p -= group["lr"] * (g / avg)
