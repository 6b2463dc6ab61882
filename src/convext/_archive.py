"""The convext model file format, knowing nothing about layers.

A model file is a zip archive (``.npz``) of ``.npy`` members: one per ``state_dict`` key and
``__convext_model__.npy``, a 0-d unicode array holding the architecture as JSON
(``{"format": "convext-model", "version": 1, "model": <layer description>}``). This module
writes such a file atomically, parses and bounds the architecture text, and checks and streams
the members; what a layer description means is ``convext.layers.registry``'s business, and
``convext.serialization`` joins the two. It imports nothing from convext, so the layers can
write files (``Layer.save``) without importing serialization.
"""

import io
import json
import math
import os
import tempfile
import threading
import zipfile

import numpy as np
from numpy.lib import format as npformat

ARCH_KEY = "__convext_model__"
FORMAT = "convext-model"
VERSION = 1

# Limits of what ``load`` accepts (``save`` refuses to write a file ``load`` would refuse).
MAX_ARCH_CHARS = 1 << 20  # JSON text: a Conv2D description is ~200 characters, so ~5000
# conv layers (ResNet-152 has 155); bounds parsing time and memory
MAX_JSON_DEPTH = 128  # brackets: each nested container costs at most 3 ({spec {config
# [layers), so layers.registry.MAX_NESTING levels and a leaf fit
MAX_INFLATION = 100  # deflated data may expand at most 100x (real float weights
# compress < 2x; runs of zeros ~1000x, which is what bombs use) ...
INFLATION_FREE_BYTES = 64 << 20  # ... unless the deflated members total at most 64 MiB
_NPY_MAX_HEADER = 10000  # numpy's own default bound on a .npy header
_CHUNK = 1 << 20  # bytes decompressed at a time while filling the arrays


class Refused(ValueError):
    """A model file that is not accepted (the message says why)."""


# -- JSON --------------------------------------------------------------------------------------
def _json_depth(text, chunk=1 << 16):
    """Deepest bracket nesting of a JSON text, counted without parsing it, in linear time and
    a few MB (vectorised over chunks of ``chunk`` characters). Brackets inside strings do not
    count; a quote after an odd run of backslashes is escaped."""
    depth = deepest = 0
    inside = 0  # 1 inside a string at the start of the chunk
    run = 0  # backslashes ending the previous chunk
    for start in range(0, len(text), chunk):
        c = np.frombuffer(text[start : start + chunk].encode("utf-32-le", "surrogatepass"), "<u4")
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
        raise Refused("the architecture holds NaN")
    return float("inf") if name == "Infinity" else float("-inf")


# the other format written with this module's machinery: a training checkpoint (model, optimizer
# and scheduler state; ``convext.training.save_checkpoint``)
CHECKPOINT_FORMAT = "convext-checkpoint"
_NAMES = {
    FORMAT: "a convext model file (read it with convext.load)",
    CHECKPOINT_FORMAT: "a convext training checkpoint (read it with "
    "convext.training.load_checkpoint)",
}


def parse_arch(text, fmt=FORMAT):
    """The JSON metadata text of a file of format ``fmt``, parsed within the bounds above."""
    if len(text) > MAX_ARCH_CHARS:
        raise Refused(f"the architecture has {len(text)} characters, more than {MAX_ARCH_CHARS}")
    depth = _json_depth(text)
    if depth > MAX_JSON_DEPTH:
        raise Refused(f"the architecture nests {depth} brackets deep, more than {MAX_JSON_DEPTH}")
    try:
        meta = json.loads(text, parse_constant=_constant)
    except Refused:
        raise
    except (ValueError, RecursionError) as e:  # JSONDecodeError is a ValueError
        raise Refused(f"the architecture is not valid JSON ({e})") from None
    if not isinstance(meta, dict) or meta.get("format") != fmt:
        other = meta.get("format") if isinstance(meta, dict) else None
        if isinstance(other, str) and other in _NAMES:
            raise Refused(f"it is {_NAMES[other]}, not {_NAMES[fmt].split(' (')[0]}")
        raise Refused("unknown format")
    version = meta.get("version")
    if type(version) is not int or version != VERSION:
        raise Refused(
            f"format version {version!r:.50} is not supported (this convext reads "
            f"version {VERSION})"
        )
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


def architecture_json(model_spec):
    """The architecture text of a file holding the layer description ``model_spec``."""
    return json.dumps({"format": FORMAT, "version": VERSION, "model": model_spec})


def write(path, arch, state):
    """Write the architecture text ``arch`` and the arrays ``state`` (name -> array) to
    ``path``, atomically.

    ``path`` is used exactly as given (no ``.npz`` is appended). The data go to a temporary
    file in the same directory, which is flushed, fsynced and then renamed over ``path``
    (``os.replace``); on any failure the temporary file is removed and an existing ``path`` is
    untouched. ``path`` may also be a writable binary file object (then written in place, not
    atomically).
    """
    if ARCH_KEY in state:
        raise ValueError(f"a parameter may not be named {ARCH_KEY!r}")
    arrays = {ARCH_KEY: np.array(arch), **state}
    if not isinstance(path, (str, bytes, os.PathLike)):
        _write_npz(path, arrays)
        return
    path = os.fspath(path)
    if os.path.isdir(path):  # os.replace would fail only after the whole file was written
        raise ValueError(f"path {path!r:.200} is a folder, not a file")
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
    kinds = {
        "U": "strings",
        "S": "bytes",
        "O": "objects",
        "M": "datetimes",
        "m": "timedeltas",
        "c": "complex numbers",
        "b": "booleans",
    }
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
        with _HEADER_PARSE_LOCK:
            shape, fortran, dtype = _parse_header(head, version, key)
    except Refused:
        raise
    except (ValueError, SyntaxError, RecursionError, MemoryError, TypeError) as e:
        raise Refused(
            f"{key!r} is not a valid .npy array ({type(e).__name__}: {str(e)[:200]})"
        ) from None
    return shape, fortran, dtype, head.tell()


# numpy parses the header dict with ast.literal_eval. Some CPython releases (3.11.7 among them)
# keep the AST constructor's recursion depth in state that threads share, so two threads parsing
# at once can fail with "SystemError: AST constructor recursion depth mismatch".
# Headers are at most _NPY_MAX_HEADER bytes, so serialising their parse costs nothing.
_HEADER_PARSE_LOCK = threading.Lock()


def _parse_header(head, version, key):
    if version == (1, 0):
        return npformat.read_array_header_1_0(head, _NPY_MAX_HEADER)
    if version == (2, 0):
        return npformat.read_array_header_2_0(head, _NPY_MAX_HEADER)
    raise Refused(f"{key!r} has .npy format version {version}; 1.0 and 2.0 are read")


def _check_member(info, key, shape, dtype, hlen, want_shape, want_dtype):
    if (
        dtype.hasobject
        or dtype.names is not None
        or dtype.subdtype is not None
        or dtype.kind != want_dtype.kind
        or dtype.itemsize != want_dtype.itemsize
    ):
        raise Refused(
            f"{key!r} is stored as {_describe(dtype)}; the architecture needs "
            f"{want_dtype} (arrays are never cast)"
        )
    if tuple(shape) != tuple(want_shape):
        raise Refused(
            f"{key!r} has shape {tuple(shape)!r:.100}, the architecture needs {tuple(want_shape)}"
        )
    want = hlen + math.prod(want_shape) * dtype.itemsize
    if info.file_size != want:
        raise Refused(
            f"{key!r} declares {info.file_size} bytes; its header and shape "
            f"{tuple(want_shape)} {want_dtype} make {want}"
        )


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
                raise Refused(f"{key!r} is truncated")
            buf[pos : pos + len(data)] = np.frombuffer(data, np.uint8)
            pos += len(data)
    if target is not dest:
        np.copyto(dest, target)  # same kind and size: byte order or layout only


def _read_arch(zf, info):
    shape, fortran, dtype, hlen = _header(zf, info, ARCH_KEY)
    if dtype.kind != "U" or shape != () or dtype.itemsize > 4 * MAX_ARCH_CHARS:
        raise Refused(
            f"its {ARCH_KEY!r} entry is not a JSON string of at most "
            f"{MAX_ARCH_CHARS} characters (it is {_describe(dtype)}, shape "
            f"{shape!r:.50})"
        )
    if info.file_size != hlen + dtype.itemsize:
        raise Refused(
            f"its {ARCH_KEY!r} entry declares {info.file_size} bytes, its header "
            f"makes {hlen + dtype.itemsize}"
        )
    arch = np.empty((), dtype)
    _fill(zf, info, ARCH_KEY, hlen, arch, dtype, False)
    try:
        return str(arch)
    except UnicodeError as e:
        raise Refused(f"its {ARCH_KEY!r} entry is not valid unicode ({e})") from None


def _listing(keys, limit=10):
    keys = sorted(keys)
    more = f" and {len(keys) - limit} more" if len(keys) > limit else ""
    return "[" + ", ".join(repr(k)[:80] for k in keys[:limit]) + "]" + more


def read_members(zf, archive_bytes, fmt=FORMAT):
    """Check the archive (see ``convext.serialization``, steps 1-2) and return the parsed
    architecture (of format ``fmt``) and the members by name (the architecture member
    removed)."""
    infos = zf.infolist()
    members = {}
    if sum(i.compress_size for i in infos) > archive_bytes:
        raise Refused(
            f"its entries declare {sum(i.compress_size for i in infos)} compressed "
            f"bytes; the file has {archive_bytes}"
        )
    for info in infos:
        if info.filename in members:
            raise Refused(f"it holds {info.filename!r:.100} twice")
        if info.flag_bits & 0x1:
            raise Refused(f"{info.filename!r:.100} is encrypted")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise Refused(
                f"{info.filename!r:.100} uses zip compression method "
                f"{info.compress_type}; only stored and deflated are read"
            )
        if info.compress_type == zipfile.ZIP_STORED and info.compress_size != info.file_size:
            raise Refused(
                f"{info.filename!r:.100} is stored uncompressed in "
                f"{info.compress_size} bytes but declares {info.file_size}"
            )
        members[info.filename] = info
    arch_info = members.pop(ARCH_KEY + ".npy", None)
    if arch_info is None:
        raise Refused(f"it has no {ARCH_KEY!r} entry (not written by convext's save)")
    return parse_arch(_read_arch(zf, arch_info), fmt), members


def read_arrays(zf, members, own):
    """Check the members against ``own`` (name -> placeholder with ``shape`` and ``dtype``:
    what the architecture needs; steps 4-5) and return name -> (info, dtype, fortran, header
    length) for ``fill``. Nothing is allocated."""
    given = {name[:-4]: info for name, info in members.items() if name.endswith(".npy")}
    missing = set(own) - set(given)
    unexpected = set(given) - set(own) | {n for n in members if not n.endswith(".npy")}
    if missing or unexpected:
        raise Refused(
            f"its entries do not match the architecture: missing keys "
            f"{_listing(missing)}, unexpected keys {_listing(unexpected)}"
        )
    headers = {}
    for key, placeholder in own.items():
        info = given[key]
        shape, fortran, dtype, hlen = _header(zf, info, key)
        _check_member(info, key, shape, dtype, hlen, placeholder.shape, placeholder.dtype)
        headers[key] = (info, dtype, fortran, hlen)

    deflated = [i for i in zf.infolist() if i.compress_type == zipfile.ZIP_DEFLATED]
    inflated = sum(i.file_size for i in deflated)
    compressed = sum(i.compress_size for i in deflated)
    if inflated > max(INFLATION_FREE_BYTES, MAX_INFLATION * compressed):
        raise Refused(
            f"its deflated entries would expand {compressed} bytes to {inflated} "
            f"(more than {MAX_INFLATION} times, and more than "
            f"{INFLATION_FREE_BYTES >> 20} MiB)"
        )
    return headers


def fill(zf, headers, arrays):
    """Stream each checked member into its array (``arrays``: name -> allocated array)."""
    for key, (info, dtype, fortran, hlen) in headers.items():
        _fill(zf, info, key, hlen, arrays[key], dtype, fortran)
