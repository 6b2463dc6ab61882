"""Shared by the readers of ``convext.state_dict``: limits that keep memory proportional to the
file, dtype conversion to the arrays returned, and checked reading of zip members."""

from __future__ import annotations

import zipfile
import zlib

import numpy as np

# Limits that keep memory proportional to the file.
_UNZIP_SLACK = 16 * 2**20  # members may decompress to this much ...
_UNZIP_FACTOR = 32  # ... plus this many times the archive size
_DEFLATE_MAX_RATIO = 1100  # deflate cannot compress better than ~1032:1
_OUTPUT_SLACK = 64 * 2**20  # arrays returned may take this much ...
_OUTPUT_FACTOR = 4  # ... plus this many times the file size
_MAX_NDIM = 64  # numpy's limit


# ------------------------------------------------------------------------------ dtype helpers


def _storage_dtype(spec, big_endian=False):
    """numpy dtype of the raw elements for a spec from the tables above."""
    if spec == "bfloat16":
        return np.dtype(">u2" if big_endian else "<u2")
    if spec == "bool":
        return np.dtype("u1")
    dt = np.dtype(spec)
    return dt.newbyteorder(">") if big_endian and dt.itemsize > 1 else dt


def _output_itemsize(spec):
    if spec in ("bfloat16", "<f2"):
        return 4
    return 1 if spec == "bool" else np.dtype(spec).itemsize


def _to_output(raw, spec):
    """Native-order, C-contiguous, writeable array from raw elements (any layout) of ``spec``.
    Returns (array, widened)."""
    if spec == "bfloat16":
        # bfloat16 is the high half of a float32: shift the 16 bits up, exact.
        out = (raw.astype(np.uint32, order="C") << 16).view(np.float32)
        return np.ascontiguousarray(out), True
    if spec == "bool":
        return np.ascontiguousarray(raw != 0), False
    if spec == "<f2":
        return raw.astype(np.float32, order="C"), True
    if raw.dtype.isnative and raw.flags.c_contiguous and raw.flags.writeable and raw.flags.owndata:
        return raw, False  # already a fresh array of its own
    return np.array(raw, dtype=raw.dtype.newbyteorder("="), order="C", copy=True), False


# ----------------------------------------------------------------------------------- zip files


class _Budget:
    """Bytes that may still be allocated; ``take`` raises ValueError when exceeded."""

    def __init__(self, limit, what):
        self.left = limit
        self.what = what

    def take(self, nbytes, item):
        if nbytes > self.left:
            raise ValueError(
                f"{item} needs {nbytes} bytes, more than {self.what} allows "
                f"(at most {self.left} more bytes for a file of this size)"
            )
        self.left -= nbytes


def _check_member(info):
    """A zip member's compression and declared sizes, before any of it is read: stored or
    deflated only (zipfile inflates a bzip2 or lzma member a whole block at a time, past any
    size check), and a declared size a deflate stream can produce (zip bombs, forged sizes)."""
    name = info.filename
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise ValueError(
            f"zip member {name!r} uses zip compression method {info.compress_type}; only "
            f"stored and deflated are read"
        )
    if info.compress_type == zipfile.ZIP_STORED:
        if info.compress_size != info.file_size:
            raise ValueError(
                f"zip member {name!r} is stored uncompressed but declares "
                f"{info.file_size} bytes in {info.compress_size}"
            )
    elif info.file_size > _DEFLATE_MAX_RATIO * info.compress_size + 1024:
        raise ValueError(
            f"zip member {name!r} declares {info.file_size} bytes compressed into "
            f"{info.compress_size} (a zip bomb or a forged size)"
        )


def _read_member(zf, info, budget, expected=None):
    """The bytes of a zip member, after checking its declared size (zip bombs, forged sizes)."""
    name = info.filename
    if expected is not None and info.file_size != expected:
        raise ValueError(f"zip member {name!r} holds {info.file_size} bytes, expected {expected}")
    _check_member(info)
    budget.take(info.file_size, f"zip member {name!r}")
    try:
        with zf.open(info) as fp:
            data = fp.read(info.file_size + 1)
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, RuntimeError) as e:
        raise ValueError(f"zip member {name!r} is corrupt ({type(e).__name__}: {e})") from None
    if len(data) != info.file_size:
        raise ValueError(
            f"zip member {name!r} is truncated or forged: declares "
            f"{info.file_size} bytes, holds {len(data)}"
        )
    return data
