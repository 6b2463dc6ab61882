"""convext's own ``.npz`` files (``model.save``/``convext.save``): the weights, without the
architecture entry."""

from __future__ import annotations

import math

import numpy as np

from .._archive import _header as _npy_header
from ._common import _check_member, _to_output

# ------------------------------------------------------------------------------------- .npz


def _read_npz(zf, infos, unzip, output):
    from ..serialization import ARCH_KEY

    result, widened = {}, []
    for info in infos:
        key = info.filename[: -len(".npy")]
        if key == ARCH_KEY:
            continue
        if key in result:
            raise ValueError(f"it holds the entry {key!r} twice")
        _check_member(info)
        # the header read as the model archive reads it: at most numpy's header bound
        # decompressed (numpy's reader would read a 2.0 header's declared length, up to 4 GiB,
        # before checking it)
        shape, fortran, dtype, header_len = _npy_header(zf, info, key)
        with zf.open(info) as fp:
            fp.read(header_len)
            if dtype.fields is not None or dtype.subdtype is not None or dtype.kind not in "biuf":
                raise ValueError(f"entry {key!r} has dtype {dtype}, not a numeric type")
            if dtype.kind == "f" and dtype.itemsize not in (2, 4, 8):
                raise ValueError(f"entry {key!r} has dtype {dtype}, not float16/32/64")
            nbytes = math.prod(shape) * dtype.itemsize
            if header_len + nbytes != info.file_size:
                raise ValueError(
                    f"entry {key!r} declares shape {shape} of {dtype} "
                    f"({nbytes} bytes) but its member holds "
                    f"{info.file_size - header_len}"
                )
            unzip.take(info.file_size, f"entry {key!r}")
            spec = (
                "<f2"
                if dtype.kind == "f" and dtype.itemsize == 2
                else ("bool" if dtype.kind == "b" else None)
            )
            output.take(nbytes * (2 if spec == "<f2" else 1), f"entry {key!r}")
            data = fp.read(nbytes)
            if len(data) != nbytes:
                raise ValueError(f"entry {key!r} is truncated")
        raw = np.frombuffer(data, dtype=dtype if spec != "bool" else np.uint8)
        raw = raw.reshape(shape, order="F" if fortran else "C")
        if spec == "<f2":
            raw = raw.astype(dtype.newbyteorder("="))
        arr, wide = _to_output(raw, spec or dtype.str)
        result[key] = arr
        if wide:
            widened.append(key)
    return result, widened
