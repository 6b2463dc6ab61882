"""Reading an untrusted ``.onnx`` file for the importer: size limits, protobuf parsing, text
checks, initializers (external data only from inside the model's folder) and attribute values.
"""

from __future__ import annotations

import math
import os
import re

import numpy as np

DEFAULT_MAX_BYTES = 2**31 - 1  # protobuf's own limit for one message (2 GiB)
MIN_OPSET, MAX_OPSET = 11, 21
MAX_TENSOR_ELEMENTS = 2**34  # one initializer (64 GiB of float32), checked before reading


class _Unsupported(Exception):
    """One problem with one node (collected, then reported together)."""


def _onnx():
    try:
        import onnx
    except ImportError:  # pragma: no cover - the extra is installed in the test environment
        raise ImportError(
            "convext.onnx.load needs the onnx package to parse the file: "
            "pip install 'convext[onnx]' (running the imported graph does not)"
        ) from None
    return onnx


# -- reading the file ----------------------------------------------------------------------
def _read_source(source, max_bytes):
    """(bytes, folder of the model or None)."""
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes <= 0:
        raise TypeError(f"load: max_bytes must be a positive int, got {max_bytes!r}")
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        folder = None
    elif isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        size = os.stat(path).st_size  # FileNotFoundError as such
        if size > max_bytes:
            raise ValueError(
                f"cannot load an ONNX model from {path!r}: the file has {size} "
                f"bytes, more than max_bytes={max_bytes}"
            )
        with open(path, "rb") as f:
            data = f.read(max_bytes + 1)
        folder = os.path.dirname(os.path.abspath(path))
    else:
        raise TypeError(
            f"load: expected a path or the bytes of an ONNX model, got {type(source).__name__}"
        )
    if len(data) > max_bytes:
        raise ValueError(
            f"cannot load an ONNX model: {len(data)} bytes, more than max_bytes={max_bytes}"
        )
    return data, folder


def _parse(data):
    onnx = _onnx()
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except Exception as e:  # google.protobuf's DecodeError, RuntimeError of the C++ parser...
        raise ValueError(
            f"cannot load an ONNX model: malformed protobuf ({type(e).__name__}: {str(e)[:200]})"
        ) from None
    if not model.HasField("graph") or model.ir_version <= 0:
        raise ValueError(
            "cannot load an ONNX model: the data is not an ONNX model (no graph or IR version)"
        )
    _check_text(model)
    return model


def _check_text(model):
    """Every name the importer reads is a str (protobuf hands over invalid UTF-8 as bytes)."""
    g = model.graph
    texts = [g.name] + [o.domain for o in model.opset_import]
    texts += [v.name for v in (*g.input, *g.output, *g.value_info)]
    texts += [t.name for t in g.initializer]
    for node in g.node:
        texts += [node.name, node.op_type, node.domain, *node.input, *node.output]
        texts += [a.name for a in node.attribute]
    for t in texts:
        if not isinstance(t, str):
            raise ValueError(
                f"cannot load an ONNX model: malformed protobuf (the name "
                f"{t!r:.80} is not valid UTF-8)"
            )


def _external_path(folder, location):
    """The real path of an external-data file: relative, inside the model's own folder (no
    '..', no absolute path, no symlink leading out)."""
    if folder is None:
        raise ValueError(
            "the model refers to external data but was given as bytes: load it from its path"
        )
    if (
        not isinstance(location, str)
        or not location
        or "\0" in location
        or os.path.isabs(location)
        or location.startswith(("/", "\\"))
        or re.match(r"^[A-Za-z]:", location)
        or ".." in re.split(r"[\\/]", location)
    ):
        raise ValueError(
            f"external data location {location!r:.200} is not a plain relative "
            f"path inside the model's folder"
        )
    root = os.path.realpath(folder)
    real = os.path.realpath(os.path.join(root, location))
    if os.path.commonpath([root, real]) != root:
        raise ValueError(
            f"external data location {location!r:.200} leads out of the model's folder"
        )
    if not os.path.isfile(real):
        raise ValueError(f"external data file {location!r:.200} does not exist")
    return real


def _reserve(budget, shape, dtype, what):
    """Count an array of ``shape`` and ``dtype`` that the import is about to hold (an
    initializer, or a constant folded from others) against ``budget``, a one-element list of
    the bytes of max_bytes still allowed; a ValueError naming ``what`` beyond it. The bytes."""
    n = math.prod(shape)
    if n > MAX_TENSOR_ELEMENTS:
        raise ValueError(f"{what} declares {n} elements")
    nbytes = n * np.dtype(dtype).itemsize
    if nbytes > budget[0]:
        raise ValueError(f"{what} needs {nbytes} bytes, more than the max_bytes left")
    budget[0] -= nbytes
    return nbytes


def _to_array(t, folder, budget):
    """A TensorProto as a numpy array, sizes checked before anything is read; external data
    only from the model's folder. ``budget``: a one-element list of bytes still allowed."""
    onnx = _onnx()
    from onnx import numpy_helper

    if not isinstance(t, onnx.TensorProto):
        raise TypeError(f"a tensor was expected, got {type(t).__name__} {t!r:.60}")
    dims = [int(d) for d in t.dims]
    if any(d < 0 for d in dims):
        raise ValueError(f"tensor {t.name!r:.100} has a negative dimension {dims}")
    try:
        dtype = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(t.data_type))
    except Exception:
        raise ValueError(
            f"tensor {t.name!r:.100} has the unsupported data type {t.data_type}"
        ) from None
    if dtype.kind not in "fiub" or dtype.itemsize > 8:
        raise ValueError(f"tensor {t.name!r:.100} has the unsupported data type {dtype}")
    nbytes = _reserve(budget, dims, dtype, f"tensor {t.name!r:.100}")
    if t.data_location == onnx.TensorProto.EXTERNAL:
        info = {e.key: e.value for e in t.external_data}
        path = _external_path(folder, info.get("location"))
        try:
            offset = int(info.get("offset", 0))
            length = int(info.get("length", nbytes))
        except ValueError:
            raise ValueError(
                f"tensor {t.name!r:.100}: external data offset/length are not integers"
            ) from None
        if offset < 0 or length != nbytes:
            raise ValueError(
                f"tensor {t.name!r:.100}: external data length {length} "
                f"(offset {offset}); {nbytes} bytes expected"
            )
        if offset + nbytes > os.path.getsize(path):
            raise ValueError(
                f"tensor {t.name!r:.100}: external data past the end of "
                f"{info.get('location')!r:.100}"
            )
        with open(path, "rb") as f:
            f.seek(offset)
            raw = f.read(nbytes)
        return np.frombuffer(raw, dtype.newbyteorder("<")).astype(dtype).reshape(dims)
    if t.HasField("raw_data") and len(t.raw_data) != nbytes:
        raise ValueError(
            f"tensor {t.name!r:.100}: {len(t.raw_data)} bytes of data for shape {dims} of {dtype}"
        )
    try:
        a = numpy_helper.to_array(t)
    except Exception as e:
        raise ValueError(
            f"tensor {t.name!r:.100} cannot be read ({type(e).__name__}: {str(e)[:100]})"
        ) from None
    if a.shape != tuple(dims):
        raise ValueError(f"tensor {t.name!r:.100} holds {a.size} values for shape {dims}")
    return a


# the AttributeProto types whose values the handlers read: FLOAT, INT, STRING, TENSOR, FLOATS,
# INTS, STRINGS (not graphs, sparse tensors, lists of tensors or types)
_PLAIN_ATTRIBUTES = frozenset((1, 2, 3, 4, 6, 7, 8))


def _attr_value(a):
    onnx = _onnx()
    v = onnx.helper.get_attribute_value(a)
    if a.type == onnx.AttributeProto.FLOAT:
        # float attributes are float32: take the shortest decimal that rounds to it (the value
        # the exporter was given, e.g. BatchNorm's eps 1e-5, not 9.99999974738e-06)
        return float(str(np.float32(v)))
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    if isinstance(v, list):
        return [e.decode("utf-8", "replace") if isinstance(e, bytes) else e for e in v]
    return v
