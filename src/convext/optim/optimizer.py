"""The optimizer base class: parameter groups, ``step``, ``zero_grad`` and torch's state_dict.

An optimizer holds ``param_groups``, a list of dicts like torch.optim's: each has ``'params'``
(a list of ``(param, grad)`` array pairs) and that group's hyperparameters (``'lr'``,
``'weight_decay'``, ...). ``state`` holds one dict per parameter, in the order of the groups
(the index used by ``state_dict()``). Subclasses declare their hyperparameters and update one
parameter in ``_update``; everything else (argument checks, groups, saving and loading) lives
here, once.
"""

from __future__ import annotations

import inspect
import numbers
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeAlias

import numpy as np

from .._validation import check_real

__all__ = ["Optimizer"]

# Keys that torch's learning-rate schedulers add to a param group (ours too): kept and saved.
SCHEDULER_KEYS = ("initial_lr", "max_lr", "min_lr", "max_momentum", "base_momentum")
# Keys of torch's param groups that select an implementation, not a result: accepted by
# load_state_dict only with torch's default value, and not saved.
_TORCH_ONLY = {"foreach": None, "differentiable": False, "fused": None, "capturable": False}


def _pairs(params, where):
    """A Layer (its parameters() and grads()) or an iterable of (param, grad) pairs -> list."""
    from ..layers.base import Layer

    if isinstance(params, Layer):
        p, g = params.parameters(), params.grads()
        pairs = [(p[k], g[k]) for k in p]
    elif isinstance(params, np.ndarray) or isinstance(params, (str, bytes, dict)):
        raise TypeError(
            f"{where} must be a Layer or an iterable of (param, grad) pairs of "
            f"arrays, got {type(params).__name__}"
        )
    else:
        try:
            pairs = [tuple(pg) for pg in params]
        except TypeError:
            raise TypeError(
                f"{where} must be a Layer or an iterable of (param, grad) pairs of "
                f"arrays, got {type(params).__name__}"
            ) from None
    for i, pg in enumerate(pairs):
        if len(pg) != 2:
            raise TypeError(f"{where}[{i}] must be a (param, grad) pair of arrays")
        p, g = pg
        if not (isinstance(p, np.ndarray) and isinstance(g, np.ndarray)):
            raise TypeError(f"{where}[{i}]: param and grad must be numpy arrays")
        if p.shape != g.shape or p.dtype != g.dtype or p.dtype.kind != "f":
            raise ValueError(
                f"{where}[{i}]: param {p.shape} {p.dtype} and grad {g.shape} "
                f"{g.dtype} must be float arrays of the same shape and dtype"
            )
        if not p.flags.writeable:
            raise ValueError(f"{where}[{i}]: the parameter array is read-only")
    return pairs


def check_bool(name, value):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__} {value!r}")
    return bool(value)


if TYPE_CHECKING:
    from numpy.typing import NDArray

    from ..layers import Layer

#: what an optimizer updates: a Layer, (param, grad) array pairs, or param-group dicts
Params: TypeAlias = (
    "Layer | Iterable[tuple[NDArray[np.floating[Any]], NDArray[np.floating[Any]]]]"
    " | Iterable[dict[str, Any]]"
)


class Optimizer:
    """Base class: ``Optimizer(params, defaults)``.

    ``params`` is a Layer (its parameters and gradients), an iterable of ``(param, grad)``
    array pairs, or a list of param-group dicts whose ``'params'`` is either of those and whose
    other keys override ``defaults`` for that group (torch's API).
    """

    #: names of the per-parameter state arrays (shaped like the parameter) and scalars
    _state_arrays = ()
    _state_scalars = ()
    # the state arrays that are sums or averages of squares: never negative
    _state_nonnegative = ()

    def __init__(self, params: Params, defaults: Mapping[str, Any]) -> None:
        self.defaults = self._check_hyper(dict(defaults), "")
        self.param_groups = []
        self.state = []
        if (
            isinstance(params, (list, tuple))
            and params
            and all(isinstance(g, dict) for g in params)
        ):
            for i, group in enumerate(params):
                self._add_group(group, f"params[{i}]")
        else:
            self._add_group({"params": params}, "params")

    # -- groups -----------------------------------------------------------------------------
    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group ``{'params': Layer or (param, grad) pairs, 'lr': ..., ...}``; missing
        hyperparameters take the constructor's values."""
        self._add_group(param_group, "param_group")

    def _add_group(self, param_group, where):
        if not isinstance(param_group, dict):
            raise TypeError(f"{where} must be a dict, got {type(param_group).__name__}")
        if "params" not in param_group:
            raise ValueError(f"{where} has no 'params'")
        pairs = _pairs(param_group["params"], f"{where}['params']")
        group = {k: v for k, v in param_group.items() if k != "params"}
        for key in group:
            if key not in self.defaults and key not in SCHEDULER_KEYS:
                raise ValueError(
                    f"{where}: unknown hyperparameter {key!r} (allowed: {', '.join(self.defaults)})"
                )
        group = self._check_hyper({**self.defaults, **group}, f"{where}: ")
        seen = {id(p) for p, _ in self.pairs}
        for i, (p, _) in enumerate(pairs):
            if id(p) in seen:
                raise ValueError(
                    f"{where}['params'][{i}]: this parameter array is already "
                    "in the optimizer (each array may appear once)"
                )
            seen.add(id(p))
        group["params"] = pairs
        self.param_groups.append(group)
        self.state.extend(self._initial_state(p, group) for p, _ in pairs)

    def _initial_state(self, p, group):
        return {}

    @property
    def pairs(self):
        """Every ``(param, grad)`` pair of every group, in state_dict order."""
        return [pg for group in self.param_groups for pg in group["params"]]

    @property
    def lr(self):
        """The learning rate of every group (an AttributeError if the groups differ: read
        ``param_groups`` then). Assigning sets it in every group."""
        lrs = {g["lr"] for g in self.param_groups}
        if len(lrs) != 1:
            raise AttributeError(
                f"lr: the param groups have different learning rates "
                f"{[g['lr'] for g in self.param_groups]}; read "
                "param_groups[i]['lr']"
            )
        return lrs.pop()

    @lr.setter
    def lr(self, value):
        value = check_real("lr", value, 0.0)
        for g in self.param_groups:
            g["lr"] = value

    # -- the update ---------------------------------------------------------------------------
    def zero_grad(self) -> None:
        """Set every gradient array to 0 (in place)."""
        for _, g in self.pairs:
            g.fill(0)

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Update every parameter in place from its gradient. ``closure``, if given, is
        called first (it may recompute the gradients) and its result returned."""
        loss = None if closure is None else closure()
        # the hyperparameters may have been changed (by a scheduler, by hand) since: every
        # group is checked before any parameter changes
        checked = [
            self._check_hyper(g, f"param_groups[{j}]: ") for j, g in enumerate(self.param_groups)
        ]
        index = 0
        for group, hyper in zip(self.param_groups, checked, strict=True):
            group.update(hyper)
            for p, g in group["params"]:
                self._update(p, g, self.state[index], group)
                index += 1
        return loss

    def _update(self, p, g, state, group):
        raise NotImplementedError

    def _check_hyper(self, group, where):
        """Validate and normalise the hyperparameters in ``group`` (returns a new dict with
        every key of ``group``; scheduler keys are checked as real numbers)."""
        out = dict(group)
        for key in SCHEDULER_KEYS:
            if key in out and key != "max_momentum" and key != "base_momentum":
                out[key] = check_real(f"{where}{key}", out[key], 0.0)
            elif key in out:
                out[key] = check_real(f"{where}{key}", out[key])
        return out

    def __repr__(self):
        sig = {k: v.default for k, v in inspect.signature(type(self).__init__).parameters.items()}
        groups = []
        for g in self.param_groups:
            items = ", ".join(
                f"{k}={g[k]!r}"
                for k in self.defaults
                if k in sig and (k == "lr" or len(self.param_groups) > 1 or g[k] != sig[k])
            )
            groups.append(items)
        if len(groups) == 1:
            return f"{type(self).__name__}({groups[0]})"
        return f"{type(self).__name__}(" + "; ".join(f"[{s}]" for s in groups) + ")"

    # -- saving and loading ---------------------------------------------------------------------
    def state_dict(self):
        """``{'state': {index: {name: array or number}}, 'param_groups': [{..., 'params':
        [indices]}]}`` in torch's layout and names; the arrays are copies. ``'step'`` is a
        Python float (torch keeps a 0-d float32 tensor)."""
        state = {
            i: {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in s.items()}
            for i, s in enumerate(self.state)
            if s
        }
        groups, index = [], 0
        for g in self.param_groups:
            d = {k: v for k, v in g.items() if k != "params"}
            d["params"] = list(range(index, index + len(g["params"])))
            index += len(g["params"])
            groups.append(d)
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        """Restore ``state_dict()`` (ours, or torch's with its tensors turned into arrays).

        Everything is checked before anything changes: the number of groups and of parameters
        per group, every hyperparameter, and every state entry's name, shape and dtype (it must
        be the parameter's). A ValueError or TypeError names the offending key.
        """
        if not isinstance(state_dict, dict):
            raise TypeError(f"state_dict must be a dict, got {type(state_dict).__name__}")
        for key in ("state", "param_groups"):
            if key not in state_dict:
                raise ValueError(f"state_dict has no {key!r}")
        extra = set(state_dict) - {"state", "param_groups"}
        if extra:
            raise ValueError(f"state_dict: unexpected keys {sorted(map(str, extra))}")
        saved, state = state_dict["param_groups"], state_dict["state"]
        if not isinstance(saved, (list, tuple)):
            raise TypeError("state_dict['param_groups'] must be a list of dicts")
        if not isinstance(state, dict):
            raise TypeError("state_dict['state'] must be a dict {index: dict}")
        if len(saved) != len(self.param_groups):
            raise ValueError(
                f"state_dict['param_groups'] has {len(saved)} groups, this "
                f"optimizer {len(self.param_groups)}"
            )
        new_groups, position, flat = [], {}, 0
        for j, (s, ours) in enumerate(zip(saved, self.param_groups, strict=True)):
            where = f"state_dict['param_groups'][{j}]"
            if not isinstance(s, dict):
                raise TypeError(f"{where} must be a dict, got {type(s).__name__}")
            ids = s.get("params")
            if not isinstance(ids, (list, tuple)):
                raise ValueError(f"{where}['params'] must be a list of parameter indices")
            if len(ids) != len(ours["params"]):
                raise ValueError(
                    f"{where}['params'] has {len(ids)} parameters, this "
                    f"optimizer's group {len(ours['params'])}"
                )
            for i in ids:
                if isinstance(i, (bool, np.bool_)) or not isinstance(i, numbers.Integral):
                    raise TypeError(f"{where}['params'] must hold int indices, got {i!r}")
                if int(i) in position:
                    raise ValueError(f"{where}['params']: index {int(i)} appears twice")
                position[int(i)] = flat
                flat += 1
            group = {}
            for key, value in s.items():
                if key == "params":
                    continue
                if key in _TORCH_ONLY:
                    if value != _TORCH_ONLY[key]:
                        raise ValueError(
                            f"{where}[{key!r}] = {value!r} is not supported "
                            f"(only {_TORCH_ONLY[key]!r})"
                        )
                    continue
                if key not in self.defaults and key not in SCHEDULER_KEYS:
                    raise ValueError(f"{where}: unexpected key {key!r}")
                group[key] = value
            for key in self.defaults:
                if key not in group:
                    raise ValueError(f"{where}: missing {key!r}")
            group = self._check_hyper(group, f"{where}: ")
            group["params"] = ours["params"]
            new_groups.append(group)
        pairs = [pg for g in new_groups for pg in g["params"]]
        groups_of = [g for g in new_groups for _ in g["params"]]
        new_state = [{} for _ in pairs]
        for i, entry in state.items():
            where = f"state_dict['state'][{i!r}]"
            if (
                isinstance(i, (bool, np.bool_))
                or not isinstance(i, numbers.Integral)
                or int(i) not in position
            ):
                raise ValueError(f"{where}: not an index of param_groups' 'params'")
            k = position[int(i)]
            new_state[k] = self._check_state(entry, pairs[k][0], groups_of[k], where)
        self.param_groups = new_groups
        self.state = new_state

    def _check_state(self, entry, p, group, where):
        if not isinstance(entry, dict):
            raise TypeError(f"{where} must be a dict, got {type(entry).__name__}")
        out = {}
        for key, value in entry.items():
            w = f"{where}[{key!r}]"
            if key in self._state_arrays:
                if value is None and key == "momentum_buffer":
                    continue  # older torch saved None when there is no momentum
                if not isinstance(value, np.ndarray):
                    raise TypeError(f"{w} must be a numpy array, got {type(value).__name__}")
                if value.shape != p.shape:
                    raise ValueError(f"{w} has shape {value.shape}, the parameter {p.shape}")
                if value.dtype != p.dtype:
                    raise ValueError(f"{w} has dtype {value.dtype}, the parameter {p.dtype}")
                if not np.isfinite(value).all():
                    raise ValueError(f"{w} holds NaN or infinite values")
                if key in self._state_nonnegative and (value < 0).any():
                    raise ValueError(f"{w} holds negative values (it is a sum of squares)")
                out[key] = np.array(value, order="C", copy=True)
            elif key in self._state_scalars:
                if isinstance(value, np.ndarray) and value.shape == ():
                    value = value[()]
                step = check_real(w, value, 0.0)
                if step != int(step):
                    raise ValueError(f"{w} must be a whole number of steps, got {step}")
                out[key] = step
            else:
                raise ValueError(
                    f"{where}: unexpected key {key!r} (allowed: "
                    f"{', '.join(self._state_arrays + self._state_scalars)})"
                )
        missing = [k for k in self._required_state(group) if k not in out]
        if out and missing:
            raise ValueError(f"{where}: missing {missing[0]!r}")
        return out

    def _required_state(self, group):
        return self._state_scalars
