"""Helpers for the read_state_dict tests: files in torch's zip format and in the safetensors
format written by hand (no torch, no safetensors package), and a subprocess where importing
torch fails.

The pickle pieces below are opcodes of protocol 2 written out explicitly, so a test can build
exactly the stream torch writes (see ``torch_tensor``) or any hostile variation of it.
"""

import json
import pickle
import struct
import subprocess
import sys
import textwrap
import zipfile

import numpy as np

PROTO2 = b"\x80\x02"
STOP = b"."
MARK = b"("
TUPLE = b"t"
REDUCE = b"R"
BINPERSID = b"Q"
SETITEMS = b"u"
BUILD = b"b"
NEWFALSE = b"\x89"
EMPTY_TUPLE = b")"
EMPTY_DICT = b"}"


def glob(module, name):
    """GLOBAL opcode: pushes module.name (found through find_class)."""
    return b"c" + f"{module}\n{name}\n".encode()


def prim(value):
    """Opcodes pushing a primitive (int, str, bytes, float, tuple of those), from pickle itself."""
    return pickle.dumps(value, protocol=2)[2:-1]


def tup(*items):
    return MARK + b"".join(items) + TUPLE


def call(fn, *args):
    return fn + tup(*args) + REDUCE


def put(i):
    return b"q" + bytes([i])


def get(i):
    return b"h" + bytes([i])


def ordered_dict(pairs):
    """An OrderedDict built the way torch's pickle builds it: OrderedDict() then SETITEMS."""
    body = b"".join((prim(k) if not isinstance(k, bytes) else k) + v for k, v in pairs)
    return call(glob("collections", "OrderedDict")) + MARK + body + SETITEMS


def storage_ref(storage_type, key, numel, location="cpu"):
    return (
        tup(prim("storage"), glob("torch", storage_type), prim(key), prim(location), prim(numel))
        + BINPERSID
    )


def torch_tensor(storage, offset, size, stride, rebuild="_rebuild_tensor_v2"):
    """The opcodes torch writes for a tensor: _rebuild_tensor_v2(storage, offset, size, stride,
    requires_grad=False, backward_hooks=OrderedDict())."""
    return call(
        glob("torch._utils", rebuild),
        storage,
        prim(offset),
        prim(size),
        prim(stride),
        NEWFALSE,
        call(glob("collections", "OrderedDict")),
    )


def state_dict_pickle(pairs):
    return PROTO2 + ordered_dict(pairs) + STOP


def write_torch_zip(
    path,
    pickle_bytes,
    storages,
    byteorder=b"little",
    prefix="archive",
    compression=zipfile.ZIP_STORED,
):
    """A torch >= 1.6 style zip: <prefix>/data.pkl, <prefix>/data/<key>, byteorder, version."""
    with zipfile.ZipFile(path, "w", compression) as zf:
        zf.writestr(f"{prefix}/data.pkl", pickle_bytes)
        if byteorder is not None:
            zf.writestr(f"{prefix}/byteorder", byteorder)
        for key, data in storages.items():
            zf.writestr(f"{prefix}/data/{key}", data)
        zf.writestr(f"{prefix}/version", b"3\n")
    return path


_ST_DTYPES = {
    np.dtype("<f8"): "F64",
    np.dtype("<f4"): "F32",
    np.dtype("<f2"): "F16",
    np.dtype("<i8"): "I64",
    np.dtype("<i4"): "I32",
    np.dtype("<i2"): "I16",
    np.dtype("i1"): "I8",
    np.dtype("u1"): "U8",
    np.dtype("bool"): "BOOL",
}


def write_safetensors(path, tensors, metadata=None, header_override=None, pad=0):
    """The safetensors format by hand. ``tensors``: name -> ndarray, or name -> (dtype string,
    shape, raw bytes) for dtypes numpy lacks (BF16). ``header_override`` replaces the JSON."""
    header, chunks, offset = {}, [], 0
    for name, value in tensors.items():
        if isinstance(value, tuple):
            dtype, shape, raw = value
        else:
            value = np.array(value, order="C")
            dtype, shape = (
                _ST_DTYPES[
                    value.dtype.newbyteorder("<") if value.dtype.itemsize > 1 else value.dtype
                ],
                list(value.shape),
            )
            raw = value.astype(value.dtype.newbyteorder("<")).tobytes()
        header[name] = {
            "dtype": dtype,
            "shape": list(shape),
            "data_offsets": [offset, offset + len(raw)],
        }
        chunks.append(raw)
        offset += len(raw)
    if metadata is not None:
        header["__metadata__"] = metadata
    text = header_override if header_override is not None else json.dumps(header).encode()
    text += b" " * pad
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(chunks))
    return path


def bfloat16_bits(values):
    """(float32 values exactly representable in bfloat16, their 16-bit patterns)."""
    v = np.asarray(values, dtype=np.float32)
    hi = (v.view(np.uint32) >> 16).astype(np.uint16)
    exact = (hi.astype(np.uint32) << 16).view(np.float32)
    return exact, hi


_READER = textwrap.dedent("""
    import importlib.abc, json, sys, warnings
    attempts = []

    class BlockTorch(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("torch", "safetensors"):
                attempts.append(name)
                raise ImportError(f"importing {name} is blocked in this test")
            return None

    sys.meta_path.insert(0, BlockTorch())
    try:
        import torch
    except ImportError:
        pass
    else:
        raise SystemExit("torch imported despite the blocker")
    attempts.clear()
    import numpy as np
    import convext
    report = {}
    for i, path in enumerate(sys.argv[2:]):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                sd = convext.read_state_dict(path)
            except ValueError as e:
                report[path] = {"error": str(e)}
                continue
        np.savez(f"{sys.argv[1]}_{i}.npz", **sd)
        report[path] = {"keys": list(sd), "warnings": [str(w.message) for w in caught],
                        "native": all(a.dtype.isnative for a in sd.values()),
                        "contiguous": all(a.flags.c_contiguous for a in sd.values())}
    report["__attempts__"] = attempts
    report["__torch_loaded__"] = "torch" in sys.modules
    print(json.dumps(report))
""")


def read_without_torch(tmp_path, *paths):
    """Run read_state_dict on each path in a fresh interpreter where importing torch fails.

    Returns {path: {"keys", "arrays", "warnings"} or {"error": message}} and checks that
    convext never tried to import torch."""
    out = str(tmp_path / "out")
    proc = subprocess.run(
        [sys.executable, "-c", _READER, out, *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report.pop("__attempts__") == [], "convext tried to import torch"
    assert report.pop("__torch_loaded__") is False
    for i, p in enumerate(map(str, paths)):
        entry = report[p]
        if "keys" in entry:
            with np.load(f"{out}_{i}.npz", allow_pickle=False) as f:
                entry["arrays"] = {k: f[k] for k in entry["keys"]}
    return {p: report[p] for p in map(str, paths)}
