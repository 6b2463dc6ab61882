"""Saving and loading models: one ``.npz`` file, no pickle, and a loader that treats the file
as hostile until checked.

The file is a zip archive holding, next to the weights (one ``.npy`` member per
``state_dict`` key), the member ``__convext_model__.npy``: a 0-d unicode array with the
architecture as JSON::

    {"format": "convext-model", "version": 1,
     "model": {"type": "Sequential", "config": {"layers": [{"type": "Conv2D", "config": {...}},
                                                          ...]}}}

File names: ``save(model, path)`` writes exactly ``path`` and ``load(path)`` reads exactly
``path``; no suffix is added or guessed either way (so ``save(m, "ckpt")`` then
``load("ckpt")`` is the same file). ``save`` is atomic: it writes a temporary file in the same
directory, flushes and fsyncs it, then ``os.replace``-s it over ``path``; if anything fails
the temporary file is removed and an existing ``path`` is left as it was.

What ``load`` checks, in this order, before it allocates or decompresses anything sizeable
(anything wrong is a ValueError naming the file):

1. The archive: zip members only stored or deflated, not encrypted, no duplicate names; their
   compressed sizes add up to no more than the file holds, and a stored member's declared size
   is its stored size (so stored data must really be in the file).
2. The architecture member: a ``.npy`` header declaring a 0-d unicode array of at most
   ``MAX_ARCH_CHARS`` characters, whose declared size is exactly header + data; then the JSON:
   nesting at most ``MAX_JSON_DEPTH`` brackets (counted before parsing, so no RecursionError),
   no NaN, ``format`` and ``version``.
3. Each layer description: a registered layer type (``convext.layers.LAYERS``), only the
   fields its ``get_config`` writes, each of the right JSON type and range (sizes and
   geometry are ints in ``1..MAX_SIZE``, padding ``0..MAX_SIZE``, flags are JSON booleans,
   dtype is ``"float32"``/``"float64"``, floats are finite...), containers nested at most
   ``MAX_NESTING`` deep. The layers are then built by their own constructors (all their
   checks run) inside ``layers.base.unallocated()``: no array is allocated and nothing is
   randomly initialised; this gives the exact shape and dtype of every parameter and buffer.
4. The members: exactly one per ``state_dict`` key; each one's ``.npy`` header (read without
   the data) must declare exactly the expected shape and dtype: float32/float64 as the layer
   (int64 for BatchNorm's ``num_batches_tracked``), in either byte order; strings, objects,
   datetimes, structured, complex and other dtypes are refused, never cast. The member's
   declared uncompressed size must be exactly header + data.
5. Decompression: deflated members may not inflate in total to more than
   ``max(INFLATION_FREE_BYTES, MAX_INFLATION * compressed bytes)`` (a zip bomb; ``save``
   writes stored members, whose data is physically in the file).

Only then are the arrays allocated (exactly what the architecture needs, which the file has
just been checked to supply) and filled by streaming each member in chunks.
"""
import functools
import inspect
import io
import json
import math
import os
import tempfile
import threading
import zipfile
import zlib

import numpy as np
from numpy.lib import format as npformat

__all__ = ["load", "save", "layer_spec", "layer_from_spec"]

ARCH_KEY = "__convext_model__"
FORMAT = "convext-model"
VERSION = 1

# Limits of what ``load`` accepts (``save`` refuses to write a file ``load`` would refuse).
MAX_ARCH_CHARS = 1 << 20    # JSON text: a Conv2D description is ~200 characters, so ~5000
                            # conv layers (ResNet-152 has 155); bounds parsing time and memory
MAX_NESTING = 32            # Sequential inside Sequential
MAX_JSON_DEPTH = 128        # brackets: each nested Sequential costs 3 ({spec {config [layers),
                            # so MAX_NESTING Sequentials and a leaf fit with room to spare
MAX_SIZE = 2 ** 40          # any channel count, feature count or geometry value in a config:
                            # the geometry bound of the functional API (its MAX_EXTENT: index
                            # arithmetic in int64 keeps a 2**16 margin); far above any real
                            # network, and arrays are bounded by the file's contents anyway
MAX_AXIS = 64               # |axis|, |start_dim|, |end_dim|: numpy arrays have at most 64 dims
MAX_INFLATION = 100         # deflated data may expand at most 100x (real float weights
                            # compress < 2x; runs of zeros ~1000x, which is what bombs use) ...
INFLATION_FREE_BYTES = 64 << 20  # ... unless the deflated members total at most 64 MiB
_NPY_MAX_HEADER = 10000     # numpy's own default bound on a .npy header
_CHUNK = 1 << 20            # bytes decompressed at a time while filling the arrays


class _Refused(ValueError):
    pass


# -- describing and rebuilding layers ----------------------------------------------------------
def layer_spec(layer):
    """``{"type": class name, "config": constructor arguments}`` of a layer."""
    from .layers.base import LAYERS
    name = type(layer).__name__
    if LAYERS.get(name) is not type(layer):
        raise TypeError(f"cannot save a {name}: only the layer types in convext.layers.LAYERS "
                        f"can be saved")
    return {"type": name, "config": layer.get_config()}


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


_SIZE = (lambda v: _int(v, 1, MAX_SIZE), f"a positive int <= {MAX_SIZE}")
_PAIR = (lambda v: _pair_ok(v, 1), f"an int or a list of 1 or 2 ints, each in 1..{MAX_SIZE}")
_PAIR0 = (lambda v: _pair_ok(v, 0), f"an int or a list of 1 or 2 ints, each in 0..{MAX_SIZE}")
_BOOL = (lambda v: isinstance(v, bool), "true or false")
_FLOAT = (_finite, "a finite number")
_AXIS = (lambda v: _int(v, -MAX_AXIS, MAX_AXIS), f"an int in -{MAX_AXIS}..{MAX_AXIS}")

# field name -> (check, what it must be); the same name means the same thing in every layer
_FIELDS = {
    "in_channels": _SIZE, "out_channels": _SIZE, "in_features": _SIZE, "out_features": _SIZE,
    "num_features": _SIZE, "groups": _SIZE,
    "kernel_size": _PAIR, "dilation": _PAIR,
    "stride": (lambda v: v is None or _pair_ok(v, 1),
               f"null or an int or a list of 1 or 2 ints, each in 1..{MAX_SIZE}"),
    "padding": (lambda v: v in ("same", "valid") or _pair_ok(v, 0),
                f"'same', 'valid', or an int or a list of 1 or 2 ints, each in 0..{MAX_SIZE}"),
    "divisor_override": (lambda v: v is None or _int(v, 1, MAX_SIZE),
                         f"null or a positive int <= {MAX_SIZE}"),
    "bias": _BOOL, "ceil_mode": _BOOL, "count_include_pad": _BOOL, "affine": _BOOL,
    "track_running_stats": _BOOL,
    "dtype": (lambda v: v in ("float32", "float64"), "'float32' or 'float64'"),
    "negative_slope": _FLOAT, "alpha": _FLOAT,
    "eps": (lambda v: _finite(v) and v >= 0, "a finite number >= 0"),
    "momentum": (lambda v: v is None or _finite(v), "null or a finite number"),
    "p": (lambda v: _finite(v) and 0 <= v <= 1, "a number in 0..1"),
    "norm_type": (lambda v: _number(v) and v > 0, "a positive number (or Infinity)"),
    "axis": _AXIS, "start_dim": _AXIS, "end_dim": _AXIS,
}


def _generic_ok(v):
    """A field the table does not know (a user-registered layer): a JSON scalar or a short flat
    list of them; the constructor checks the rest."""
    def scalar(e):
        return (e is None or isinstance(e, bool) or _int(e, -MAX_SIZE, MAX_SIZE)
                or _finite(e) or (isinstance(e, str) and len(e) <= 100))
    return scalar(v) or (isinstance(v, list) and len(v) <= 8 and all(scalar(e) for e in v))


@functools.lru_cache(maxsize=None)
def _allowed_fields(cls):
    """The fields of a layer's config: its constructor's named arguments except ``rng``."""
    params = inspect.signature(cls.__init__).parameters
    return {n for n, p in params.items()
            if n not in ("self", "rng") and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def _check_spec(spec):
    """Validate one layer description (not its children); return (class, config)."""
    from .layers.base import LAYERS
    from .layers.container import Sequential
    if not isinstance(spec, dict) or not isinstance(spec.get("type"), str) \
            or not isinstance(spec.get("config", {}), dict) or set(spec) - {"type", "config"}:
        raise ValueError(f"invalid layer description in the model file: {spec!r:.200}")
    name = spec["type"]
    if name not in LAYERS:
        raise ValueError(f"unknown layer type {name!r:.100} in the model file; known types: "
                         f"{', '.join(sorted(LAYERS))}")
    cls, config = LAYERS[name], spec.get("config", {})
    if cls is Sequential:
        if set(config) != {"layers"} or not isinstance(config["layers"], list):
            raise ValueError("invalid configuration for layer Sequential in the model file: "
                             "it must be {\"layers\": [layer descriptions]}")
        return cls, config
    allowed = _allowed_fields(cls)
    unknown = sorted(set(config) - allowed)
    if unknown:
        raise ValueError(f"invalid configuration for layer {name} in the model file: unknown "
                         f"field(s) {', '.join(repr(k)[:50] for k in unknown[:5])}; "
                         f"{name} takes {', '.join(sorted(allowed)) or 'none'}")
    for k, v in config.items():
        check, what = _FIELDS.get(k, (_generic_ok, "a JSON scalar or a short list of them"))
        if not check(v):
            raise ValueError(f"invalid configuration for layer {name} in the model file: "
                             f"{k} must be {what}, got {v!r:.100}")
    return cls, config


_depth = threading.local()


def layer_from_spec(spec):
    """Build a layer from ``layer_spec``'s output, validating it first (see the module
    docstring); ValueError if the description is invalid."""
    from .layers.container import Sequential
    level = getattr(_depth, "level", 0)
    if level >= MAX_NESTING:
        raise ValueError(f"the model file nests layers more than {MAX_NESTING} deep")
    cls, config = _check_spec(spec)
    _depth.level = level + 1
    try:
        if cls is Sequential:  # its children report their own errors
            return cls.from_config(config)
        try:
            return cls.from_config(config)
        except (TypeError, ValueError, KeyError, OverflowError) as e:
            raise ValueError(f"invalid configuration for layer {spec['type']} in the model "
                             f"file: {e}") from None
    finally:
        _depth.level = level


# -- JSON --------------------------------------------------------------------------------------
def _json_depth(text, chunk=1 << 16):
    """Deepest bracket nesting of a JSON text, counted without parsing it, in linear time and
    a few MB (vectorised over chunks of ``chunk`` characters). Brackets inside strings do not
    count; a quote after an odd run of backslashes is escaped."""
    depth = deepest = 0
    inside = 0  # 1 inside a string at the start of the chunk
    run = 0     # backslashes ending the previous chunk
    for start in range(0, len(text), chunk):
        c = np.frombuffer(text[start:start + chunk].encode("utf-32-le", "surrogatepass"),
                          "<u4")
        i = np.arange(c.size, dtype=np.int64)
        backslash = c == ord("\\")
        # index of the last non-backslash at or before each position (the carried run sits
        # just before the chunk)
        last_other = np.maximum.accumulate(np.where(backslash, -1 - run, i))
        run_before = np.empty(c.size, np.int64)
        run_before[0] = run
        run_before[1:] = i[:-1] - last_other[:-1]
        quote = (c == ord('"')) & (run_before % 2 == 0)
        quotes = np.cumsum(quote)
        outside = (inside + quotes - quote) % 2 == 0
        step = ((c == ord("[")) | (c == ord("{"))).astype(np.int64)
        step -= (c == ord("]")) | (c == ord("}"))
        step *= outside
        levels = np.cumsum(step)
        deepest = max(deepest, depth + int(levels.max()))
        depth += int(levels[-1])
        inside = (inside + int(quotes[-1])) % 2
        run = int(c.size - 1 - last_other[-1])
    return deepest


def _constant(name):
    if name == "NaN":
        raise _Refused("the architecture holds NaN")
    return float("inf") if name == "Infinity" else float("-inf")


def _parse_arch(text):
    if len(text) > MAX_ARCH_CHARS:
        raise _Refused(f"the architecture has {len(text)} characters, more than "
                       f"{MAX_ARCH_CHARS}")
    depth = _json_depth(text)
    if depth > MAX_JSON_DEPTH:
        raise _Refused(f"the architecture nests {depth} brackets deep, more than "
                       f"{MAX_JSON_DEPTH}")
    try:
        meta = json.loads(text, parse_constant=_constant)
    except _Refused:
        raise
    except (ValueError, RecursionError) as e:  # JSONDecodeError is a ValueError
        raise _Refused(f"the architecture is not valid JSON ({e})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise _Refused("unknown format")
    version = meta.get("version")
    if not _int(version, VERSION, VERSION):
        raise _Refused(f"format version {version!r:.50} is not supported (this convext reads "
                       f"version {VERSION})")
    return meta


# -- writing -----------------------------------------------------------------------------------
def _write_npz(f, arrays):
    """Write ``arrays`` (name -> array) to the binary file ``f`` as an uncompressed .npz."""
    with zipfile.ZipFile(f, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for name, a in arrays.items():
            with zf.open(name + ".npy", mode="w", force_zip64=a.nbytes > (1 << 30)) as m:
                npformat.write_array(m, np.asanyarray(a), allow_pickle=False)


def _umask():
    try:  # Linux: read it without changing it (os.umask would, briefly, for every thread)
        with open("/proc/self/status") as f:
            return next(int(line.split()[1], 8) for line in f if line.startswith("Umask:"))
    except (OSError, StopIteration, ValueError, IndexError):
        mask = os.umask(0o22)
        os.umask(mask)
        return mask


def _fsync_dir(directory):
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # e.g. Windows: directories cannot be opened
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def save(model, path):
    """Write ``model``'s architecture and weights to ``path``, atomically.

    ``path`` is used exactly as given (no ``.npz`` is appended: ``load(path)`` reads the same
    file). The data go to a temporary file in the same directory, which is flushed, fsynced and
    then renamed over ``path`` (``os.replace``); on any failure the temporary file is removed
    and an existing ``path`` is untouched. ``path`` may also be a writable binary file object
    (then written in place, not atomically).
    """
    from .layers.base import unallocated
    arch = json.dumps({"format": FORMAT, "version": VERSION, "model": layer_spec(model)})
    try:  # never write a file that load would refuse (the checks cost no memory)
        with unallocated():
            layer_from_spec(_parse_arch(arch)["model"])
    except ValueError as e:
        raise ValueError(f"cannot save this model: {e}") from None
    state = model.state_dict()
    if ARCH_KEY in state:
        raise ValueError(f"a parameter may not be named {ARCH_KEY!r}")
    arrays = {ARCH_KEY: np.array(arch), **state}
    if not isinstance(path, (str, bytes, os.PathLike)):
        _write_npz(path, arrays)
        return
    path = os.fspath(path)
    directory, base = os.path.split(path)
    directory = directory or (b"." if isinstance(path, bytes) else ".")
    dot, tmp_suffix = (b".", b".tmp") if isinstance(base, bytes) else (".", ".tmp")
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=dot + base[:100] + dot, suffix=tmp_suffix)
    try:
        with os.fdopen(fd, "wb") as f:
            _write_npz(f, arrays)
            f.flush()
            os.fsync(f.fileno())
        try:  # mkstemp makes the file private; give it the mode a new file would have
            mode = os.stat(path).st_mode & 0o7777
        except FileNotFoundError:
            mode = 0o666 & ~_umask()
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_dir(directory)


# -- reading -----------------------------------------------------------------------------------
def _describe(dt):
    kinds = {"U": "strings", "S": "bytes", "O": "objects", "M": "datetimes",
             "m": "timedeltas", "c": "complex numbers", "b": "booleans"}
    if dt.names is not None or dt.subdtype is not None:
        return "a structured dtype"
    return f"{dt.str} ({kinds.get(dt.kind, dt.name)})"


def _header(zf, info, key):
    """The (shape, fortran_order, dtype, header length) of a .npy member, from its header
    only: at most ``_NPY_MAX_HEADER`` + a few bytes are decompressed (numpy's reader would
    read a version 2.0 header's declared length, up to 4 GiB, before checking it)."""
    with zf.open(info) as m:
        head = io.BytesIO(m.read(min(info.file_size, _NPY_MAX_HEADER + 16)))
    try:
        version = npformat.read_magic(head)
        if version == (1, 0):
            shape, fortran, dtype = npformat.read_array_header_1_0(head, _NPY_MAX_HEADER)
        elif version == (2, 0):
            shape, fortran, dtype = npformat.read_array_header_2_0(head, _NPY_MAX_HEADER)
        else:
            raise _Refused(f"{key!r} has .npy format version {version}; 1.0 and 2.0 are read")
    except _Refused:
        raise
    except (ValueError, SyntaxError, RecursionError, MemoryError, TypeError) as e:
        raise _Refused(f"{key!r} is not a valid .npy array ({type(e).__name__}: "
                       f"{str(e)[:200]})") from None
    return shape, fortran, dtype, head.tell()


def _check_member(info, key, shape, dtype, hlen, want_shape, want_dtype):
    if dtype.hasobject or dtype.names is not None or dtype.subdtype is not None \
            or dtype.kind != want_dtype.kind or dtype.itemsize != want_dtype.itemsize:
        raise _Refused(f"{key!r} is stored as {_describe(dtype)}; the architecture needs "
                       f"{want_dtype} (arrays are never cast)")
    if tuple(shape) != tuple(want_shape):
        raise _Refused(f"{key!r} has shape {tuple(shape)!r:.100}, the architecture needs "
                       f"{tuple(want_shape)}")
    want = hlen + math.prod(want_shape) * dtype.itemsize
    if info.file_size != want:
        raise _Refused(f"{key!r} declares {info.file_size} bytes; its header and shape "
                       f"{tuple(want_shape)} {want_dtype} make {want}")


def _fill(zf, info, key, hlen, dest, dtype, fortran):
    """Stream a member's data (after its header) into the array ``dest``."""
    if dtype == dest.dtype and not fortran:
        target = dest  # C-contiguous, allocated by the layer: fill it directly
    else:
        target = np.empty(dest.shape, dtype, order="F" if fortran else "C")
    buf = target.reshape(-1, order="A").view(np.uint8)
    with zf.open(info) as m:
        m.read(hlen)
        pos, n = 0, buf.size
        while pos < n:
            data = m.read(min(_CHUNK, n - pos))
            if not data:
                raise _Refused(f"{key!r} is truncated")
            buf[pos:pos + len(data)] = np.frombuffer(data, np.uint8)
            pos += len(data)
    if target is not dest:
        np.copyto(dest, target)  # same kind and size: byte order or layout only


def _read_arch(zf, info):
    shape, fortran, dtype, hlen = _header(zf, info, ARCH_KEY)
    if dtype.kind != "U" or shape != () or dtype.itemsize > 4 * MAX_ARCH_CHARS:
        raise _Refused(f"its {ARCH_KEY!r} entry is not a JSON string of at most "
                       f"{MAX_ARCH_CHARS} characters (it is {_describe(dtype)}, shape "
                       f"{shape!r:.50})")
    if info.file_size != hlen + dtype.itemsize:
        raise _Refused(f"its {ARCH_KEY!r} entry declares {info.file_size} bytes, its header "
                       f"makes {hlen + dtype.itemsize}")
    arch = np.empty((), dtype)
    _fill(zf, info, ARCH_KEY, hlen, arch, dtype, False)
    try:
        return str(arch)
    except UnicodeError as e:
        raise _Refused(f"its {ARCH_KEY!r} entry is not valid unicode ({e})") from None


def _listing(keys, limit=10):
    keys = sorted(keys)
    more = f" and {len(keys) - limit} more" if len(keys) > limit else ""
    return "[" + ", ".join(repr(k)[:80] for k in keys[:limit]) + "]" + more


def _read_model(zf, archive_bytes):
    from .layers.base import Layer, unallocated
    infos = zf.infolist()
    members = {}
    if sum(i.compress_size for i in infos) > archive_bytes:
        raise _Refused(f"its entries declare {sum(i.compress_size for i in infos)} compressed "
                       f"bytes; the file has {archive_bytes}")
    for info in infos:
        if info.filename in members:
            raise _Refused(f"it holds {info.filename!r:.100} twice")
        if info.flag_bits & 0x1:
            raise _Refused(f"{info.filename!r:.100} is encrypted")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise _Refused(f"{info.filename!r:.100} uses zip compression method "
                           f"{info.compress_type}; only stored and deflated are read")
        if info.compress_type == zipfile.ZIP_STORED and info.compress_size != info.file_size:
            raise _Refused(f"{info.filename!r:.100} is stored uncompressed in "
                           f"{info.compress_size} bytes but declares {info.file_size}")
        members[info.filename] = info
    arch_info = members.pop(ARCH_KEY + ".npy", None)
    if arch_info is None:
        raise _Refused(f"it has no {ARCH_KEY!r} entry (not written by convext's save)")
    meta = _parse_arch(_read_arch(zf, arch_info))

    with unallocated():  # the constructors' checks, no memory, no random initialisation
        model = layer_from_spec(meta.get("model"))
    if not isinstance(model, Layer):
        raise _Refused("the architecture does not describe a layer")
    own = model.parameters()
    own.update(model.buffers())

    given = {name[:-4]: info for name, info in members.items() if name.endswith(".npy")}
    missing = set(own) - set(given)
    unexpected = set(given) - set(own) | {n for n in members if not n.endswith(".npy")}
    if missing or unexpected:
        raise _Refused(f"its entries do not match the architecture: missing keys "
                       f"{_listing(missing)}, unexpected keys {_listing(unexpected)}")

    headers = {}
    for key, placeholder in own.items():
        info = given[key]
        shape, fortran, dtype, hlen = _header(zf, info, key)
        _check_member(info, key, shape, dtype, hlen, placeholder.shape, placeholder.dtype)
        headers[key] = (dtype, fortran, hlen)

    deflated = [i for i in infos if i.compress_type == zipfile.ZIP_DEFLATED]
    inflated = sum(i.file_size for i in deflated)
    compressed = sum(i.compress_size for i in deflated)
    if inflated > max(INFLATION_FREE_BYTES, MAX_INFLATION * compressed):
        raise _Refused(f"its deflated entries would expand {compressed} bytes to {inflated} "
                       f"(more than {MAX_INFLATION} times, and more than "
                       f"{INFLATION_FREE_BYTES >> 20} MiB)")

    model._allocate()  # exactly what the checked file supplies
    arrays = model.parameters()
    arrays.update(model.buffers())
    for key, (dtype, fortran, hlen) in headers.items():
        _fill(zf, given[key], key, hlen, arrays[key], dtype, fortran)
    return model


def load(path):
    """Rebuild a model written by ``save`` (or ``model.save``) from ``path`` (read exactly as
    given) or a binary file object.

    The file is untrusted: everything listed in the module docstring is checked before any
    array is allocated or any data decompressed, and the layers are built without random
    initialisation, their weights coming from the file. Anything else than a valid convext
    model file raises ValueError naming the file (FileNotFoundError if there is no file).
    """
    what = f"{path!r}" if isinstance(path, (str, bytes, os.PathLike)) else "the file"
    try:
        if isinstance(path, (str, bytes, os.PathLike)):
            f = open(path, "rb")
        else:
            f = path
        try:
            start = f.tell()
            magic = f.read(6)
            archive_bytes = f.seek(0, os.SEEK_END) - start
            f.seek(start)
            if magic == npformat.MAGIC_PREFIX:
                raise _Refused("it holds a single array, not an .npz archive")
            with zipfile.ZipFile(f) as zf:
                return _read_model(zf, archive_bytes)
        finally:
            if f is not path:
                f.close()
    except FileNotFoundError as e:
        if isinstance(path, (str, os.PathLike)) and not os.fspath(path).endswith(".npz") \
                and os.path.exists(os.fspath(path) + ".npz"):
            raise FileNotFoundError(
                f"{e}; there is {os.fspath(path) + '.npz'!r}: convext's save writes the name "
                f"it is given, and load reads it, neither adds '.npz'") from None
        raise
    except ValueError as e:  # ours, and the constructors' (already naming the layer)
        raise ValueError(f"cannot load a convext model from {what}: {e}") from None
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, KeyError,
            NotImplementedError, OverflowError) as e:
        raise ValueError(f"cannot load a convext model from {what}: not a valid .npz file "
                         f"({type(e).__name__}: {str(e)[:200]})") from None
    except (RecursionError, MemoryError) as e:
        raise ValueError(f"cannot load a convext model from {what}: {type(e).__name__} "
                         f"while reading it") from None
