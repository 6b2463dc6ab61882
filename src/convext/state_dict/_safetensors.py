"""``.safetensors`` files (8-byte little-endian header length, a JSON header, raw buffers),
read without the safetensors package."""

from __future__ import annotations

import json
import math
import struct
import sys

import numpy as np

from ._common import _MAX_NDIM, _storage_dtype, _to_output

_MAX_SAFETENSORS_HEADER = 100 * 2**20  # bytes of JSON header

# safetensors dtype -> numpy dtype (the format is little-endian).
_SAFETENSORS_DTYPES = {
    "F64": "<f8",
    "F32": "<f4",
    "F16": "<f2",
    "BF16": "bfloat16",
    "I64": "<i8",
    "I32": "<i4",
    "I16": "<i2",
    "I8": "i1",
    "U8": "u1",
    "BOOL": "bool",
}


def _looks_like_safetensors(head, size):
    if len(head) < 9:
        return False
    n = struct.unpack("<Q", head[:8])[0]
    return head[8:9] == b"{" and 2 <= n <= size - 8


# ------------------------------------------------------------------------------ safetensors


def _no_duplicates(pairs):
    d = {}
    for k, v in pairs:
        if k in d:
            raise ValueError(f"its header names {k!r} twice")
        d[k] = v
    return d


def _read_safetensors(path, file_size):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        if n > _MAX_SAFETENSORS_HEADER:
            raise ValueError(
                f"its safetensors header declares {n} bytes, more than {_MAX_SAFETENSORS_HEADER}"
            )
        if n > file_size - 8:
            raise ValueError(
                f"its safetensors header declares {n} bytes but the file has "
                f"{file_size - 8} after the length"
            )
        text = f.read(n)
        if len(text) != n:
            raise ValueError("its safetensors header is truncated")
        try:
            header = json.loads(text.decode("utf-8"), object_pairs_hook=_no_duplicates)
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as e:
            raise ValueError(f"its safetensors header is not valid JSON ({e})") from None
        if not isinstance(header, dict):
            raise ValueError("its safetensors header is not a JSON object")
        meta = header.pop("__metadata__", None)
        if meta is not None and not (
            isinstance(meta, dict) and all(isinstance(v, str) for v in meta.values())
        ):
            raise ValueError("its safetensors __metadata__ is not an object of strings")
        data_start = 8 + n
        data_len = file_size - data_start
        entries = []
        for name, spec in header.items():
            entries.append((name, *_check_safetensors_entry(name, spec, data_len)))
        # The format requires the buffers to tile the data section: no overlap, no hole.
        end = 0
        for name, _spec, _shape, begin, stop in sorted(entries, key=lambda e: (e[3], e[4])):
            if begin != end:
                raise ValueError(
                    f"tensor {name!r} starts at byte {begin} of the data but the "
                    f"previous one ends at {end} (overlapping or a hole)"
                )
            end = stop
        if end != data_len:
            raise ValueError(f"the tensors cover {end} bytes of data but the file holds {data_len}")
        result, widened = {}, []
        for name, spec, shape, begin, stop in entries:
            dtype = _storage_dtype(spec)
            raw = np.empty(shape, dtype=dtype)
            if stop > begin:
                f.seek(data_start + begin)
                if f.readinto(memoryview(raw).cast("B")) != stop - begin:
                    raise ValueError(f"tensor {name!r} is truncated")
            arr, wide = _to_output(raw, spec)
            result[name] = arr
            if wide:
                widened.append(name)
    return result, widened


def _check_safetensors_entry(name, spec, data_len):
    if not isinstance(spec, dict) or set(spec) != {"dtype", "shape", "data_offsets"}:
        raise ValueError(f"tensor {name!r} is not described by dtype, shape and data_offsets")
    dt = spec["dtype"]
    if dt not in _SAFETENSORS_DTYPES:
        raise ValueError(
            f"tensor {name!r} has dtype {dt!r:.30}; supported: {', '.join(_SAFETENSORS_DTYPES)}"
        )
    shape = spec["shape"]
    if (
        not isinstance(shape, list)
        or len(shape) > _MAX_NDIM
        or not all(type(s) is int and 0 <= s <= sys.maxsize for s in shape)
    ):
        raise ValueError(f"tensor {name!r} has an invalid shape {shape!r:.100}")
    offsets = spec["data_offsets"]
    if not (
        isinstance(offsets, list) and len(offsets) == 2 and all(type(o) is int for o in offsets)
    ):
        raise ValueError(f"tensor {name!r} has invalid data_offsets {offsets!r:.100}")
    begin, stop = offsets
    if not 0 <= begin <= stop <= data_len:
        raise ValueError(
            f"tensor {name!r} has data_offsets {offsets} outside the {data_len} bytes of data"
        )
    fmt = _SAFETENSORS_DTYPES[dt]
    nbytes = math.prod(shape) * _storage_dtype(fmt).itemsize
    if nbytes != stop - begin:
        raise ValueError(
            f"tensor {name!r} of shape {tuple(shape)} and dtype {dt} needs "
            f"{nbytes} bytes but its data_offsets {offsets} span {stop - begin}"
        )
    return fmt, tuple(shape), begin, stop
