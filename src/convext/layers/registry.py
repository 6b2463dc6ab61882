"""The layer registry: layer types by name, and layers described as JSON.

``convext.load`` rebuilds a model from the description ``save`` wrote: for every layer
``{"type": <registered name>, "config": <its get_config()>}``. A layer type is known by name
once registered::

    @convext.register_layer
    class Scale(convext.Layer):
        def __init__(self, factor=2.0):
            super().__init__()
            self.factor = float(factor)

        def get_config(self):              # the constructor arguments, JSON values
            return {"factor": self.factor}

        def forward(self, x):
            return x * self.factor

        def backward(self, grad_out, needs_input_grad=True):
            return grad_out * self.factor

A layer whose constructor takes arguments must define ``get_config()`` returning them (JSON
values: numbers, strings, booleans, None, short lists; a Layer, or a list of Layers, for an
argument that is a layer: it is described recursively). Layers it creates itself in
``__init__`` (``self.conv1 = Conv2D(...)``) need no description: the constructor builds them
again, and their weights come from the file.

Descriptions read from a file are untrusted: ``layer_from_spec`` accepts only registered types,
only the fields the constructor takes, each of the right JSON type and range (``_FIELDS``), and
nested layer descriptions at most ``MAX_NESTING`` deep, before any constructor runs. This module
imports no other part of convext but the geometry bound of ``_validation`` (``MAX_SIZE`` is
its ``MAX_EXTENT``).
"""

import functools
import inspect
import math
import threading

from .._validation import MAX_EXTENT

__all__ = [
    "LAYERS",
    "register_layer",
    "layer_spec",
    "layer_from_spec",
    "MAX_NESTING",
    "MAX_SIZE",
    "MAX_AXIS",
]

# name -> class, used by convext.load to rebuild a model from its JSON architecture. Written
# only by register_layer, under _LAYERS_LOCK (its check and its write are one step, also on
# free-threaded CPython); read through one lookup or a copy (_layers()), never iterated live,
# so a registration in another thread cannot break a save or a load in progress.
LAYERS = {}
_LAYERS_LOCK = threading.Lock()

MAX_NESTING = 32  # layers inside layers (a Sequential inside a Sequential...)
# any channel count, feature count or geometry value in a config: the geometry bound of the
# functional API (index arithmetic in int64 keeps a 2**16 margin); far above any real network,
# and arrays are bounded by the file's contents anyway
MAX_SIZE = MAX_EXTENT
MAX_GRAPH_NODES = 100_000  # nodes (or inputs) of one Graph (the JSON size bound comes first)
MAX_NODE_INPUTS = 4096  # inputs of one Graph node (a concatenation of many branches)
MAX_AXIS = 64  # |axis|, |start_dim|, |end_dim|: numpy arrays have at most 64 dims
MAX_SCALE = 2**16  # Upsample's scale_factor (the functional op bounds the output size)
MAX_DEPTH = 32  # U-Net levels (each one halves the planes: 2**32 is past any image)
MAX_BLOCKS = 256  # residual blocks per ResNet stage (torchvision's deepest has 36)
MAX_WIDTH_MULT = 64.0  # MobileNetV2's width multiplier and a block's expansion ratio


def register_layer(cls=None, *, name=None):
    """Make a layer type known to ``convext.load`` under ``name`` (default: the class name).

    Use as a decorator (``@register_layer`` or ``@register_layer(name="MyBlock")``) or call it
    (``register_layer(MyBlock)``); returns the class. Registering a different class under a
    taken name is a ValueError (re-registering the same class is allowed).
    """

    def add(layer_cls):
        if not isinstance(layer_cls, type) or not callable(getattr(layer_cls, "forward", None)):
            raise TypeError(f"register_layer: expected a Layer subclass, got {layer_cls!r}")
        key = layer_cls.__name__ if name is None else name
        if not isinstance(key, str) or not key:
            raise TypeError(f"register_layer: name must be a non-empty string, got {key!r}")
        with _LAYERS_LOCK:
            old = LAYERS.get(key)
            if (
                old is not None
                and old is not layer_cls
                and (old.__module__, old.__qualname__)
                != (layer_cls.__module__, layer_cls.__qualname__)
            ):
                raise ValueError(
                    f"register_layer: the name {key!r} is taken by "
                    f"{old.__module__}.{old.__qualname__}"
                )
            LAYERS[key] = layer_cls
        return layer_cls

    return add if cls is None else add(cls)


def _layers():
    """A snapshot of LAYERS (dict.copy is one step, with or without the GIL)."""
    return LAYERS.copy()


def _registered_name(cls):
    for key, value in _layers().items():
        if value is cls:
            return key
    return None


def _is_layer(value):
    # duck-typed so that this module needs no import of the Layer class
    return callable(getattr(value, "get_config", None)) and hasattr(value, "_params")


def _describe_value(value):
    if _is_layer(value):
        return layer_spec(value)
    if isinstance(value, (list, tuple)) and any(_is_layer(v) for v in value):
        return [layer_spec(v) for v in value]
    return value


def layer_spec(layer):
    """``{"type": registered name, "config": get_config()}`` of a layer, the layers among its
    config values described the same way."""
    cls = type(layer)
    name = _registered_name(cls)
    if name is None:
        raise TypeError(
            f"cannot save a {cls.__name__}: its type is not registered; decorate "
            f"the class with @convext.register_layer (or call "
            f"convext.register_layer({cls.__name__})) so that load can rebuild it"
        )
    if cls.get_config is _base_get_config(cls) and _allowed_fields(cls):
        raise TypeError(
            f"cannot save a {cls.__name__}: its constructor takes "
            f"{', '.join(sorted(_allowed_fields(cls)))} but it has no "
            f"get_config() returning them"
        )
    return {"type": name, "config": {k: _describe_value(v) for k, v in layer.get_config().items()}}


def _base_get_config(cls):
    """The Layer base class's get_config (the last one in the MRO)."""
    for klass in reversed(cls.__mro__):
        if "get_config" in vars(klass):
            return vars(klass)["get_config"]
    return None


def _int(v, lo, hi):
    return isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi


def _pair_ok(v, lo):
    if isinstance(v, list):
        return len(v) in (1, 2) and all(_int(e, lo, MAX_SIZE) for e in v)
    return _int(v, lo, MAX_SIZE)


def _number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _finite(v):
    return _number(v) and math.isfinite(v)


def _scale_ok(v):
    return _finite(v) and 0 < v <= MAX_SCALE


_SIZE = (lambda v: _int(v, 1, MAX_SIZE), f"a positive int <= {MAX_SIZE}")
_PAIR = (lambda v: _pair_ok(v, 1), f"an int or a list of 1 or 2 ints, each in 1..{MAX_SIZE}")
_PAIR0 = (lambda v: _pair_ok(v, 0), f"an int or a list of 1 or 2 ints, each in 0..{MAX_SIZE}")
_BOOL = (lambda v: isinstance(v, bool), "true or false")
_FLOAT = (_finite, "a finite number")
_AXIS = (lambda v: _int(v, -MAX_AXIS, MAX_AXIS), f"an int in -{MAX_AXIS}..{MAX_AXIS}")

# field name -> (check, what it must be); the same name means the same thing in every layer
_FIELDS = {
    "in_channels": _SIZE,
    "out_channels": _SIZE,
    "in_features": _SIZE,
    "out_features": _SIZE,
    "num_features": _SIZE,
    "groups": _SIZE,
    "kernel_size": _PAIR,
    "dilation": _PAIR,
    "stride": (
        lambda v: v is None or _pair_ok(v, 1),
        f"null or an int or a list of 1 or 2 ints, each in 1..{MAX_SIZE}",
    ),
    "padding": (
        lambda v: (
            v in ("same", "valid")
            or _pair_ok(v, 0)
            or (isinstance(v, list) and len(v) == 4 and all(_int(e, 0, MAX_SIZE) for e in v))
        ),
        f"'same', 'valid', or an int or a list of 1, 2 or 4 (top, bottom, left, "
        f"right) ints, each in 0..{MAX_SIZE}",
    ),
    "divisor_override": (
        lambda v: v is None or _int(v, 1, MAX_SIZE),
        f"null or a positive int <= {MAX_SIZE}",
    ),
    "bias": _BOOL,
    "ceil_mode": _BOOL,
    "count_include_pad": _BOOL,
    "affine": _BOOL,
    "track_running_stats": _BOOL,
    "return_indices": _BOOL,
    "dtype": (lambda v: v in ("float32", "float64"), "'float32' or 'float64'"),
    "negative_slope": _FLOAT,
    "alpha": _FLOAT,
    "eps": (lambda v: _finite(v) and v >= 0, "a finite number >= 0"),
    "momentum": (lambda v: v is None or (_finite(v) and 0 <= v <= 1), "null or a number in 0..1"),
    "p": (lambda v: _finite(v) and 0 <= v <= 1, "a number in 0..1"),
    "norm_type": (lambda v: _number(v) and v > 0, "a positive number (or Infinity)"),
    "axis": _AXIS,
    "start_dim": _AXIS,
    "end_dim": _AXIS,
    "min_val": _FLOAT,
    "max_val": _FLOAT,
    "approximate": (lambda v: v in ("none", "tanh"), "'none' or 'tanh'"),
    "output_size": (
        lambda v: (
            _int(v, 1, MAX_SIZE)
            or (
                isinstance(v, list)
                and len(v) == 2
                and all(e is None or _int(e, 1, MAX_SIZE) for e in v)
            )
        ),
        f"an int in 1..{MAX_SIZE} or a list of 2 such ints or nulls",
    ),
    "size": (
        lambda v: v is None or _pair_ok(v, 1),
        f"null or an int or a list of 1 or 2 ints, each in 1..{MAX_SIZE}",
    ),
    "scale_factor": (
        lambda v: (
            v is None
            or _scale_ok(v)
            or (isinstance(v, list) and len(v) in (1, 2) and all(_scale_ok(e) for e in v))
        ),
        f"null, or a number in (0, {MAX_SCALE}] or a list of 1 or 2 of them",
    ),
    # Upsample's and Pad's modes: the field table is per name, the constructor checks its own
    "mode": (
        lambda v: v in ("nearest", "bilinear", "constant", "reflect", "edge"),
        "'nearest', 'bilinear', 'constant', 'reflect' or 'edge'",
    ),
    "align_corners": (lambda v: v is None or isinstance(v, bool), "null, true or false"),
    # the model zoo (convext.models)
    "num_classes": _SIZE,
    "inplanes": _SIZE,
    "planes": _SIZE,
    "base_channels": _SIZE,
    "depth": (lambda v: _int(v, 1, MAX_DEPTH), f"an int in 1..{MAX_DEPTH}"),
    "block": (lambda v: v in ("basic", "bottleneck"), "'basic' or 'bottleneck'"),
    "blocks": (
        lambda v: isinstance(v, list) and len(v) == 4 and all(_int(e, 1, MAX_BLOCKS) for e in v),
        f"a list of 4 ints, each in 1..{MAX_BLOCKS}",
    ),
    "width_mult": (
        lambda v: _finite(v) and 0 < v <= MAX_WIDTH_MULT,
        f"a number in (0, {MAX_WIDTH_MULT}]",
    ),
    "expand_ratio": (
        lambda v: _finite(v) and 0 < v <= MAX_WIDTH_MULT,
        f"a number in (0, {MAX_WIDTH_MULT}]",
    ),
    "dropout": (lambda v: _finite(v) and 0 <= v <= 1, "a number in 0..1"),
    "bilinear": _BOOL,
    "mid_channels": _SIZE,
    # Graph (convext.layers.graph): names and wiring; references are checked by Graph itself
    "input_names": (lambda v: _names_ok(v), f"a list of 1..{MAX_GRAPH_NODES} tensor names"),
    "output_names": (lambda v: _names_ok(v), f"a list of 1..{MAX_GRAPH_NODES} tensor names"),
    "wiring": (
        lambda v: (
            isinstance(v, list)
            and len(v) <= MAX_GRAPH_NODES
            and all(
                isinstance(e, list)
                and len(e) == 2
                and _name_ok(e[0])
                and isinstance(e[1], list)
                and len(e[1]) <= MAX_NODE_INPUTS
                and all(_name_ok(i) for i in e[1])
                for e in v
            )
        ),
        "a list of [node name, [input names]]",
    ),
    # graph op layers
    "shape": (lambda v: _ints_ok(v, -1, MAX_AXIS), f"a list of at most {MAX_AXIS} ints >= -1"),
    "perm": (lambda v: _ints_ok(v, 0, MAX_AXIS), f"a list of at most {MAX_AXIS} ints >= 0"),
    # OnnxInputShape: an imported input's name and declared shape (sizes, None, symbols)
    "input_name": (lambda v: isinstance(v, str) and len(v) <= 128, "a string of <= 128 chars"),
    "declared": (
        lambda v: (
            isinstance(v, list)
            and len(v) <= MAX_AXIS
            and all(
                e is None or _int(e, 0, MAX_SIZE) or (isinstance(e, str) and len(e) <= 100)
                for e in v
            )
        ),
        f"a list of at most {MAX_AXIS} sizes (ints >= 0, null or names)",
    ),
    "pads": (lambda v: _ints_ok(v, 0, 2 * MAX_AXIS), f"a list of at most {2 * MAX_AXIS} ints >= 0"),
    "output_padding": (
        lambda v: _pair_ok(v, 0),
        f"an int or a list of 1 or 2 ints, each in 0..{MAX_SIZE}",
    ),
    "value": (lambda v: _finite(v) or v in ("inf", "-inf"), "a finite number, 'inf' or '-inf'"),
}


def _name_ok(v):
    return isinstance(v, str) and 0 < len(v) <= 128


def _names_ok(v):
    return isinstance(v, list) and 0 < len(v) <= MAX_GRAPH_NODES and all(_name_ok(e) for e in v)


def _ints_ok(v, lo, max_len):
    return isinstance(v, list) and len(v) <= max_len and all(_int(e, lo, MAX_SIZE) for e in v)


def _generic_ok(v):
    """A field the table does not know (a user-registered layer): a JSON scalar or a short flat
    list of them; the constructor checks the rest."""

    def scalar(e):
        return (
            e is None
            or isinstance(e, bool)
            or _int(e, -MAX_SIZE, MAX_SIZE)
            or _finite(e)
            or (isinstance(e, str) and len(e) <= 100)
        )

    return scalar(v) or (isinstance(v, list) and len(v) <= 8 and all(scalar(e) for e in v))


@functools.cache
def _allowed_fields(cls):
    """The fields of a layer's config: ``cls._config_fields`` if the class sets it (a
    constructor taking ``*layers``), else its constructor's named arguments except ``rng``."""
    fields = getattr(cls, "_config_fields", None)
    if fields is not None:
        return frozenset(fields)
    params = inspect.signature(cls.__init__).parameters
    return frozenset(
        n
        for n, p in params.items()
        if n not in ("self", "rng") and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    )


def _nested(key, value):
    """0: not a layer description; 1: one (a JSON object); 2: a list of them. The fields of
    ``_FIELDS`` never hold layers."""
    if key in _FIELDS:
        return 0
    if isinstance(value, list) and not value:
        return 2
    if isinstance(value, dict):
        return 1
    if isinstance(value, list) and value and any(isinstance(e, dict) for e in value):
        return 2
    return 0


def _check_spec(spec):
    """Validate one layer description (its nested descriptions are checked when built);
    return (class, config)."""
    if (
        not isinstance(spec, dict)
        or not isinstance(spec.get("type"), str)
        or not isinstance(spec.get("config", {}), dict)
        or set(spec) - {"type", "config"}
    ):
        raise ValueError(f"invalid layer description in the model file: {spec!r:.200}")
    name = spec["type"]
    cls = LAYERS.get(name)
    if cls is None:
        raise ValueError(
            f"unknown layer type {name!r:.100} in the model file; known types: "
            f"{', '.join(sorted(_layers()))} (a layer type of your own must be "
            f"registered with convext.register_layer before load)"
        )
    config = spec.get("config", {})
    allowed = _allowed_fields(cls)
    unknown = sorted(set(config) - allowed)
    if unknown:
        raise ValueError(
            f"invalid configuration for layer {name} in the model file: unknown "
            f"field(s) {', '.join(repr(k)[:50] for k in unknown[:5])}; "
            f"{name} takes {', '.join(sorted(allowed)) or 'none'}"
        )
    for k in getattr(cls, "_layer_list_fields", ()):
        if not isinstance(config.get(k), list) or not all(isinstance(e, dict) for e in config[k]):
            raise ValueError(
                f"invalid configuration for layer {name} in the model file: {k} "
                f"must be a list of layer descriptions, got "
                f"{config.get(k)!r:.100}"
            )
    for k, v in config.items():
        kind = _nested(k, v)
        if kind == 2 and not all(isinstance(e, dict) for e in v):
            raise ValueError(
                f"invalid configuration for layer {name} in the model file: "
                f"{k} mixes layer descriptions and other values"
            )
        if kind:
            continue  # layer descriptions: checked by layer_from_spec, one level deeper
        check, what = _FIELDS.get(k, (_generic_ok, "a JSON scalar or a short list of them"))
        if not check(v):
            raise ValueError(
                f"invalid configuration for layer {name} in the model file: "
                f"{k} must be {what}, got {v!r:.100}"
            )
    return cls, config


_depth = threading.local()


def layer_from_spec(spec):
    """Build a layer from ``layer_spec``'s output, validating it first (registered type, known
    fields of the right type and range, nesting at most ``MAX_NESTING`` deep); ValueError if
    the description is invalid. Nested descriptions are built first (depth first, each one
    validated the same way) and passed to ``from_config`` as layers."""
    level = getattr(_depth, "level", 0)
    if level >= MAX_NESTING:
        raise ValueError(f"the model file nests layers more than {MAX_NESTING} deep")
    cls, config = _check_spec(spec)
    _depth.level = level + 1
    try:
        built = {}
        for k, v in config.items():
            kind = _nested(k, v)
            built[k] = (
                layer_from_spec(v)
                if kind == 1
                else [layer_from_spec(e) for e in v]
                if kind == 2
                else v
            )
        try:
            return cls.from_config(built)
        except (TypeError, ValueError, KeyError, OverflowError) as e:
            raise ValueError(
                f"invalid configuration for layer {spec['type']} in the model file: {e}"
            ) from None
    finally:
        _depth.level = level
