"""Saving and loading models: one ``.npz`` file, no pickle.

The file holds, next to the weights (one array per ``state_dict`` key), the key
``__convext_model__``: a 0-d unicode array with the architecture as JSON::

    {"format": "convext-model", "version": 1,
     "model": {"type": "Sequential", "config": {"layers": [{"type": "Conv2D", "config": {...}},
                                                          ...]}}}

``load`` reads it with ``np.load(allow_pickle=False)`` and rebuilds layers only from the
registered layer classes (``convext.layers.LAYERS``), so loading a file never runs code from it.
Anything that is not such a file raises ValueError.
"""
import json
import zipfile

import numpy as np

__all__ = ["load", "save", "layer_spec", "layer_from_spec"]

ARCH_KEY = "__convext_model__"
FORMAT = "convext-model"
VERSION = 1


def layer_spec(layer):
    """``{"type": class name, "config": constructor arguments}`` of a layer."""
    from .layers.base import LAYERS
    name = type(layer).__name__
    if LAYERS.get(name) is not type(layer):
        raise TypeError(f"cannot save a {name}: only the layer types in convext.layers.LAYERS "
                        f"can be saved")
    return {"type": name, "config": layer.get_config()}


def layer_from_spec(spec):
    from .layers.base import LAYERS
    if not isinstance(spec, dict) or not isinstance(spec.get("type"), str) \
            or not isinstance(spec.get("config", {}), dict):
        raise ValueError(f"invalid layer description in the model file: {spec!r:.200}")
    name = spec["type"]
    if name not in LAYERS:
        raise ValueError(f"unknown layer type {name!r} in the model file; known types: "
                         f"{', '.join(sorted(LAYERS))}")
    try:
        return LAYERS[name].from_config(spec.get("config", {}))
    except (TypeError, ValueError, KeyError) as e:
        raise ValueError(f"invalid configuration for layer {name} in the model file: {e}") \
            from None


def save(model, path):
    """Write ``model``'s architecture and weights to ``path`` (``np.savez``; like it, adds the
    ``.npz`` suffix when missing). ``path`` may also be a writable binary file object."""
    arch = json.dumps({"format": FORMAT, "version": VERSION, "model": layer_spec(model)})
    state = model.state_dict()
    if ARCH_KEY in state:
        raise ValueError(f"a parameter may not be named {ARCH_KEY!r}")
    np.savez(path, **{ARCH_KEY: np.array(arch)}, **state)


def load(path):
    """Rebuild a model written by ``save`` (or ``model.save``).

    Raises ValueError, naming the file, if it is not a readable convext model file (truncated,
    not an .npz, missing the architecture, unknown layer type, missing or mis-shaped weights).
    """
    from .layers.base import Layer
    what = f"{path!r}" if isinstance(path, (str, bytes)) or hasattr(path, "__fspath__") \
        else "the file"
    try:
        f = np.load(path, allow_pickle=False)
        if not isinstance(f, np.lib.npyio.NpzFile):
            raise ValueError("it holds a single array, not an .npz archive")
        with f:
            if ARCH_KEY not in f.files:
                raise ValueError(f"it has no {ARCH_KEY!r} entry (not written by convext's save)")
            arch = f[ARCH_KEY]
            if arch.dtype.kind != "U" or arch.ndim != 0:
                raise ValueError(f"its {ARCH_KEY!r} entry is not a JSON string")
            arrays = {k: f[k] for k in f.files if k != ARCH_KEY}
    except FileNotFoundError:
        raise
    except ValueError as e:
        raise ValueError(f"cannot load a convext model from {what}: {e}") from None
    except (OSError, EOFError, zipfile.BadZipFile, KeyError) as e:
        raise ValueError(f"cannot load a convext model from {what}: not a valid .npz file "
                         f"({type(e).__name__}: {e})") from None
    try:
        meta = json.loads(str(arch))
    except json.JSONDecodeError as e:
        raise ValueError(f"cannot load a convext model from {what}: the architecture is not "
                         f"valid JSON ({e})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError(f"cannot load a convext model from {what}: unknown format")
    if meta.get("version") != VERSION:
        raise ValueError(f"cannot load a convext model from {what}: format version "
                         f"{meta.get('version')!r} is not supported (this convext reads "
                         f"version {VERSION})")
    try:
        model = layer_from_spec(meta.get("model"))
        if not isinstance(model, Layer):
            raise ValueError("the architecture does not describe a layer")
        model.load_state_dict(arrays, strict=True)
    except ValueError as e:
        raise ValueError(f"cannot load a convext model from {what}: {e}") from None
    return model
