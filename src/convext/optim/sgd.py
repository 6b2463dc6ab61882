"""Stochastic gradient descent with torch.optim.SGD's update rule."""

from __future__ import annotations

from .optimizer import Optimizer, Params, check_bool, check_real

__all__ = ["SGD"]


class SGD(Optimizer):
    """Stochastic gradient descent, as torch.optim.SGD (per parameter, per step)::

        g = -grad if maximize else grad
        g = g + weight_decay * p
        buf = g (first step), else momentum * buf + (1 - dampening) * g     (momentum != 0)
        g = g + momentum * buf if nesterov else buf                         (momentum != 0)
        p -= lr * g

    State per parameter (with momentum): ``'momentum_buffer'``.
    """

    _state_arrays = ("momentum_buffer",)

    def __init__(
        self,
        params: Params,
        lr: float = 1e-3,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
        *,
        maximize: bool = False,
    ) -> None:
        super().__init__(
            params,
            dict(
                lr=lr,
                momentum=momentum,
                dampening=dampening,
                weight_decay=weight_decay,
                nesterov=nesterov,
                maximize=maximize,
            ),
        )

    def _check_hyper(self, group, where):
        out = super()._check_hyper(group, where)
        out["lr"] = check_real(f"{where}lr", group["lr"], 0.0)
        out["momentum"] = check_real(f"{where}momentum", group["momentum"], 0.0)
        out["dampening"] = check_real(f"{where}dampening", group["dampening"])
        out["weight_decay"] = check_real(f"{where}weight_decay", group["weight_decay"], 0.0)
        out["nesterov"] = check_bool(f"{where}nesterov", group["nesterov"])
        out["maximize"] = check_bool(f"{where}maximize", group["maximize"])
        if out["nesterov"] and (out["momentum"] <= 0 or out["dampening"] != 0):
            raise ValueError(f"{where}nesterov momentum requires a momentum and zero dampening")
        return out

    def _required_state(self, group):
        return ("momentum_buffer",) if group["momentum"] else ()

    def _update(self, p, g, state, group):
        if group["maximize"]:
            g = -g
        if group["weight_decay"]:
            g = g + group["weight_decay"] * p
        momentum = group["momentum"]
        if momentum:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = g.copy()
            else:
                buf *= momentum
                buf += (1 - group["dampening"]) * g
            g = g + momentum * buf if group["nesterov"] else buf
        p -= group["lr"] * g
