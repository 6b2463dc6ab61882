"""Optimizers with PyTorch's update rules (torch.optim.SGD, Adam, AdamW).

An optimizer holds references to the parameter arrays and to their gradient arrays; ``step()``
updates the parameters in place from the gradients, ``zero_grad()`` sets the gradients to 0.
Build one from a model (``SGD(model, lr=0.1)``: its ``parameters()`` and ``grads()``) or from
an iterable of ``(param, grad)`` array pairs. The learning rate may be changed between steps
(``opt.lr = ...``).
"""
import math

import numpy as np

__all__ = ["Adam", "AdamW", "Optimizer", "SGD"]


def _pairs(params):
    from .layers.base import Layer
    if isinstance(params, Layer):
        p, g = params.parameters(), params.grads()
        pairs = [(p[k], g[k]) for k in p]
    else:
        pairs = [tuple(pg) for pg in params]
    for i, pg in enumerate(pairs):
        if len(pg) != 2:
            raise TypeError(f"params[{i}] must be a (param, grad) pair of arrays")
        p, g = pg
        if not (isinstance(p, np.ndarray) and isinstance(g, np.ndarray)):
            raise TypeError(f"params[{i}]: param and grad must be numpy arrays")
        if p.shape != g.shape or p.dtype != g.dtype or p.dtype.kind != "f":
            raise ValueError(f"params[{i}]: param {p.shape} {p.dtype} and grad {g.shape} "
                             f"{g.dtype} must be float arrays of the same shape and dtype")
        if not p.flags.writeable:
            raise ValueError(f"params[{i}]: the parameter array is read-only")
    return pairs


def _check(name, value, low=0.0, high=None):
    value = float(value)
    if not value >= low or (high is not None and not value < high):
        rng = f">= {low}" if high is None else f"in [{low}, {high})"
        raise ValueError(f"{name} must be {rng}, got {value}")
    return value


class Optimizer:
    def __init__(self, params, lr):
        self.pairs = _pairs(params)
        self.lr = _check("lr", lr)
        self.state = [{} for _ in self.pairs]

    def zero_grad(self):
        for _, g in self.pairs:
            g.fill(0)

    def step(self):
        for (p, g), state in zip(self.pairs, self.state):
            self._update(p, g, state)

    def __repr__(self):
        return f"{type(self).__name__}({self._settings()})"


class SGD(Optimizer):
    """Stochastic gradient descent, as torch.optim.SGD::

        g = grad + weight_decay * p
        buf = g (first step), else momentum * buf + (1 - dampening) * g
        g = g + momentum * buf if nesterov else buf          (when momentum != 0)
        p -= lr * g
    """

    def __init__(self, params, lr=1e-3, momentum=0.0, dampening=0.0, nesterov=False,
                 weight_decay=0.0):
        super().__init__(params, lr)
        self.momentum = _check("momentum", momentum)
        self.dampening = float(dampening)
        self.nesterov = bool(nesterov)
        self.weight_decay = _check("weight_decay", weight_decay)
        if self.nesterov and (self.momentum <= 0 or self.dampening != 0):
            raise ValueError("nesterov momentum requires a momentum and zero dampening")

    def _update(self, p, g, state):
        if self.weight_decay:
            g = g + self.weight_decay * p
        if self.momentum:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = g.copy()
            else:
                buf *= self.momentum
                buf += (1 - self.dampening) * g
            g = g + self.momentum * buf if self.nesterov else buf
        p -= self.lr * g

    def _settings(self):
        s = f"lr={self.lr}"
        for k, d in (("momentum", 0.0), ("dampening", 0.0), ("nesterov", False),
                     ("weight_decay", 0.0)):
            if getattr(self, k) != d:
                s += f", {k}={getattr(self, k)}"
        return s


class Adam(Optimizer):
    """Adam (Kingma & Ba), as torch.optim.Adam::

        g = grad + weight_decay * p                 (AdamW instead: p *= 1 - lr * weight_decay)
        m += (1 - beta1) * (g - m);  v = beta2 * v + (1 - beta2) * g * g
        vmax = max(vmax, v)                          (amsgrad)
        denom = sqrt(v or vmax) / sqrt(1 - beta2**t) + eps
        p -= lr / (1 - beta1**t) * m / denom
    """
    _decoupled = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 amsgrad=False):
        super().__init__(params, lr)
        b1, b2 = betas
        self.betas = (_check("betas[0]", b1, 0.0, 1.0), _check("betas[1]", b2, 0.0, 1.0))
        self.eps = _check("eps", eps)
        self.weight_decay = _check("weight_decay", weight_decay)
        self.amsgrad = bool(amsgrad)

    def _update(self, p, g, state):
        b1, b2 = self.betas
        if not state:
            state["step"] = 0
            state["exp_avg"] = np.zeros_like(p)
            state["exp_avg_sq"] = np.zeros_like(p)
            if self.amsgrad:
                state["max_exp_avg_sq"] = np.zeros_like(p)
        state["step"] += 1
        t = state["step"]
        if self.weight_decay:
            if self._decoupled:
                p *= 1 - self.lr * self.weight_decay
            else:
                g = g + self.weight_decay * p
        m, v = state["exp_avg"], state["exp_avg_sq"]
        m += (1 - b1) * (g - m)
        v *= b2
        v += (1 - b2) * (g * g)
        if self.amsgrad:
            np.maximum(state["max_exp_avg_sq"], v, out=state["max_exp_avg_sq"])
            v = state["max_exp_avg_sq"]
        step_size = self.lr / (1 - b1 ** t)
        denom = np.sqrt(v)
        denom /= math.sqrt(1 - b2 ** t)
        denom += self.eps
        p -= step_size * (m / denom)

    def _settings(self):
        s = f"lr={self.lr}, betas={self.betas}, eps={self.eps}, weight_decay={self.weight_decay}"
        return s + (", amsgrad=True" if self.amsgrad else "")


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter), as torch.optim.AdamW: the
    parameters shrink by ``lr * weight_decay`` before the Adam step. Default weight_decay 0.01."""
    _decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 amsgrad=False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad)
