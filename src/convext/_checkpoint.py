"""Training checkpoints: a model, its optimizer's and scheduler's state, the epoch, the history
and the shuffling generator's state, in one pickle-free file that resumes training exactly.

The file is a model file's sibling, written and read by the same machinery
(``convext._archive``: atomic write through a temporary file in the same directory, fsync and
``os.replace``; on reading, the bounded JSON and archive checks, member headers checked before
anything is allocated, streamed filling; ``convext.serialization.read_archive`` for opening and
error reporting). Its JSON member (``__convext_model__.npy``) holds::

    {"format": "convext-checkpoint", "version": 1,
     "model": <the layer description, as in a model file>,
     "epoch": completed epochs, "history": {name: [one value per epoch]},
     "optimizer": {"type": "Adam", "param_groups": [...], "scalars": {"0": {"step": 3.0}},
                   "arrays": {"0": [["exp_avg", [shape], "float32"], ...]}},
     "scheduler": null or {"type": "StepLR", "state": <its state_dict()>},
     "rng": null or <numpy bit generator state>}

and the arrays are members ``model.<state_dict key>`` and ``optimizer.<index>.<name>``.
Values JSON lacks are tagged: a non-finite float is ``{"__float__": "inf"}``, a
``collections.Counter`` (MultiStepLR's milestones) ``{"__counter__": [[key, count], ...]}``.
Nothing in the file is executed; the optimizer and scheduler states are checked by their own
``load_state_dict`` when training resumes.
"""

import json
import math
import numbers
from collections import Counter
from types import SimpleNamespace

import numpy as np

from . import _archive

__all__ = ["Checkpoint", "load_checkpoint", "save_checkpoint"]

VERSION = 1
_DTYPES = ("float32", "float64")


# -- JSON values ----------------------------------------------------------------------------
def _encode(v):
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, numbers.Integral):
        return int(v)
    if isinstance(v, numbers.Real):
        v = float(v)
        return v if math.isfinite(v) else {"__float__": repr(v)}
    if isinstance(v, str) or v is None:
        return v
    if isinstance(v, Counter):
        return {"__counter__": [[_encode(k), _encode(c)] for k, c in v.items()]}
    if isinstance(v, dict):
        return {str(k): _encode(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_encode(x) for x in v]
    if isinstance(v, np.ndarray) and v.ndim == 0:
        return _encode(v[()])
    raise TypeError(f"cannot write a {type(v).__name__} into a checkpoint")


def _decode(v, where):
    if isinstance(v, list):
        return [_decode(x, f"{where}[{i}]") for i, x in enumerate(v)]
    if isinstance(v, dict):
        if set(v) == {"__float__"}:
            if v["__float__"] not in ("inf", "-inf", "nan"):
                raise _archive.Refused(f"{where}: {v['__float__']!r:.50} is not a float")
            return float(v["__float__"])
        if set(v) == {"__counter__"}:
            pairs = v["__counter__"]
            if not isinstance(pairs, list) or not all(
                isinstance(p, list) and len(p) == 2 for p in pairs
            ):
                raise _archive.Refused(f"{where}: a counter must be a list of [key, count]")
            keys = [_decode(k, where) for k, _ in pairs]
            if not all(isinstance(k, (str, int, float, bool)) or k is None for k in keys):
                raise _archive.Refused(f"{where}: a counter's keys must be numbers or strings")
            return Counter({k: _decode(c, where) for k, (_, c) in zip(keys, pairs, strict=True)})
        return {k: _decode(x, f"{where}[{k!r}]") for k, x in v.items()}
    return v


def _int_keys(d, where):
    """{"0": x} -> {0: x} (JSON object keys are strings)."""
    if not isinstance(d, dict):
        raise _archive.Refused(f"{where} must be an object")
    out = {}
    for k, v in d.items():
        if not (isinstance(k, str) and k.isdigit() and len(k) < 12):
            raise _archive.Refused(f"{where}: {k!r:.50} is not a parameter index")
        out[int(k)] = v
    return out


# -- writing --------------------------------------------------------------------------------
def save_checkpoint(path, model, optimizer, scheduler=None, epoch=0, history=None, rng=None):
    """Write a checkpoint of a training run to ``path`` (used exactly as given), atomically.

    ``model``: a convext Layer of registered layer types (as for ``model.save``);
    ``optimizer``: a ``convext.optim`` optimizer (its ``state_dict()``); ``scheduler``: None or
    a ``convext.optim.lr_scheduler`` scheduler; ``epoch``: the number of completed epochs;
    ``history``: fit's history so far (dict of lists of numbers); ``rng``: the numpy Generator
    fit shuffles with (its state is saved) or None. ``fit(..., resume_from=path)`` continues
    the run; ``load_checkpoint`` reads it.
    """
    from .layers.registry import layer_spec
    from .optim.optimizer import Optimizer

    if not isinstance(optimizer, Optimizer):
        raise TypeError(
            f"optimizer must be a convext.optim optimizer to be checkpointed, got "
            f"{type(optimizer).__name__}"
        )
    epoch = int(epoch)
    if epoch < 0:
        raise ValueError(f"epoch must be >= 0, got {epoch}")
    sd = optimizer.state_dict()
    arrays = {f"model.{k}": v for k, v in model.state_dict().items()}
    scalars, names = {}, {}
    for i, entry in sd["state"].items():
        for name, value in entry.items():
            if isinstance(value, np.ndarray) and value.ndim > 0:
                arrays[f"optimizer.{i}.{name}"] = value
                names.setdefault(str(i), []).append([name, list(value.shape), str(value.dtype)])
            else:
                scalars.setdefault(str(i), {})[name] = _encode(value)
    meta = {
        "format": _archive.CHECKPOINT_FORMAT,
        "version": VERSION,
        "model": layer_spec(model),
        "epoch": epoch,
        "history": _encode(dict(history or {})),
        "optimizer": {
            "type": type(optimizer).__name__,
            "param_groups": _encode(sd["param_groups"]),
            "scalars": scalars,
            "arrays": names,
        },
        "scheduler": None
        if scheduler is None
        else {"type": type(scheduler).__name__, "state": _encode(scheduler.state_dict())},
        "rng": None if rng is None else _encode(rng.bit_generator.state),
    }
    text = json.dumps(meta, allow_nan=False)
    _archive.parse_arch(text, _archive.CHECKPOINT_FORMAT)  # never write what load refuses
    _archive.write(path, text, arrays)


# -- reading --------------------------------------------------------------------------------
class Checkpoint(SimpleNamespace):
    """What ``load_checkpoint`` returns: ``model`` (a rebuilt Layer with the saved weights),
    ``epoch`` (completed epochs), ``history``, ``optimizer_type`` and ``optimizer_state`` (a
    ``state_dict()`` for ``optimizer.load_state_dict``), ``scheduler_type`` and
    ``scheduler_state`` (None without a scheduler), ``rng_state`` (a numpy bit generator
    state, or None)."""


def _field(meta, key, kinds, where="the checkpoint"):
    if key not in meta:
        raise _archive.Refused(f"{where} has no {key!r}")
    v = meta[key]
    if not isinstance(v, kinds) or isinstance(v, bool) and bool not in kinds:
        raise _archive.Refused(f"{where}[{key!r}] has the wrong type {type(v).__name__}")
    return v


def _read(zf, archive_bytes):
    from .layers.base import Layer, unallocated
    from .layers.registry import layer_from_spec

    meta, members = _archive.read_members(zf, archive_bytes, _archive.CHECKPOINT_FORMAT)
    extra = set(meta) - {
        "format",
        "version",
        "model",
        "epoch",
        "history",
        "optimizer",
        "scheduler",
        "rng",
    }
    if extra:
        raise _archive.Refused(f"unexpected fields {sorted(extra)}")
    epoch = _field(meta, "epoch", (int,))
    if epoch < 0:
        raise _archive.Refused(f"epoch {epoch} is negative")
    history = _decode(_field(meta, "history", (dict,)), "history")
    for k, v in history.items():
        if not isinstance(v, list) or not all(
            isinstance(x, (int, float)) and not isinstance(x, bool) for x in v
        ):
            raise _archive.Refused(f"history[{k!r}] must be a list of numbers")
    opt = _field(meta, "optimizer", (dict,))
    opt_type = _field(opt, "type", (str,), "optimizer")
    groups = _decode(_field(opt, "param_groups", (list,), "optimizer"), "param_groups")
    scalars = _int_keys(_field(opt, "scalars", (dict,), "optimizer"), "optimizer scalars")
    declared = _int_keys(_field(opt, "arrays", (dict,), "optimizer"), "optimizer arrays")
    sched = _field(meta, "scheduler", (dict, type(None)))
    if sched is not None:
        _field(sched, "type", (str,), "scheduler")
        _field(sched, "state", (dict,), "scheduler")
    rng_state = _decode(_field(meta, "rng", (dict, type(None))), "rng")

    with unallocated():  # the constructors' checks, no memory, no random initialisation
        model = layer_from_spec(meta.get("model"))
    if not isinstance(model, Layer):
        raise _archive.Refused("the architecture does not describe a layer")
    own = {f"model.{k}": v for k, v in model.parameters().items()}
    own.update({f"model.{k}": v for k, v in model.buffers().items()})
    placeholders = {}
    for i, entries in declared.items():
        if not isinstance(entries, list):
            raise _archive.Refused(f"optimizer arrays[{i}] must be a list")
        for e in entries:
            if not (
                isinstance(e, list)
                and len(e) == 3
                and isinstance(e[0], str)
                and isinstance(e[1], list)
                and len(e[1]) <= 64
                and all(type(d) is int and 0 <= d <= 2**40 for d in e[1])
                and e[2] in _DTYPES
            ):
                raise _archive.Refused(
                    f"optimizer arrays[{i}]: {str(e)[:80]} is not [name, shape, float32|float64]"
                )
            placeholders[f"optimizer.{i}.{e[0]}"] = SimpleNamespace(
                shape=tuple(e[1]), dtype=np.dtype(e[2])
            )
    headers = _archive.read_arrays(zf, members, {**own, **placeholders})
    model._allocate()  # exactly what the checked file supplies
    arrays = {f"model.{k}": v for k, v in model.parameters().items()}
    arrays.update({f"model.{k}": v for k, v in model.buffers().items()})
    arrays.update({k: np.empty(p.shape, p.dtype) for k, p in placeholders.items()})
    _archive.fill(zf, headers, arrays)

    state = {}
    for i, entry in scalars.items():
        if not isinstance(entry, dict):
            raise _archive.Refused(f"optimizer scalars[{i}] must be an object")
        state.setdefault(i, {}).update(_decode(entry, f"optimizer scalars[{i}]"))
    for i, entries in declared.items():
        for name, _, _ in entries:
            state.setdefault(i, {})[name] = arrays[f"optimizer.{i}.{name}"]
    return Checkpoint(
        model=model,
        epoch=epoch,
        history=history,
        optimizer_type=opt_type,
        optimizer_state={"state": state, "param_groups": groups},
        scheduler_type=None if sched is None else sched["type"],
        scheduler_state=None if sched is None else _decode(sched["state"], "scheduler"),
        rng_state=rng_state,
    )


def load_checkpoint(path):
    """Read a checkpoint written by ``save_checkpoint`` / ``ModelCheckpoint`` (``path`` read
    exactly as given, or a binary file object) and return a ``Checkpoint``. The file is
    checked as a model file is (see ``convext.serialization``) before anything is allocated;
    anything else than a valid checkpoint is a ValueError naming the file."""
    from .serialization import read_archive

    return read_archive(path, _read, "a convext checkpoint")
