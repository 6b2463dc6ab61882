"""Weights from other tools, read without them: ``read_state_dict(path)``.

Three formats, recognised by their content (never by the file name):

- a PyTorch file written by ``torch.save(model.state_dict(), path)``: the zip format of
  torch >= 1.6 (``<name>/data.pkl`` holds a pickle of the dict, ``<name>/data/<key>`` the raw
  storages, ``<name>/byteorder`` their byte order) or the legacy format before it (pickles and
  raw storages one after the other, see ``_read_legacy_torch``). torch is never imported. The
  pickle is read by ``_StateDictUnpickler``, which admits only the globals a state_dict holds
  (``collections.OrderedDict``, torch's tensor rebuild functions, and torch's storage types of
  real numeric dtypes) and replaces each of them by a stand-in written here: no code from the
  file runs. Tensors are rebuilt with numpy from (storage, offset, size, stride) after checking
  that every element they address lies inside their storage.
- a ``.safetensors`` file (8-byte little-endian header length, a JSON header, raw buffers),
  read by this module (no dependency).
- convext's own ``.npz`` (``model.save``/``convext.save``): its weights, without the
  architecture entry. Array headers are read and checked against the zip member before any
  data is read; ``allow_pickle`` is never on.

A file is hostile until checked. Everything malformed (wrong magic, truncated data, bad JSON,
a forbidden pickle global, a storage missing or of the wrong size, a view pointing outside its
storage, a zip member whose declared size is out of proportion to the file) is a ValueError
naming the file. Memory is bounded by the file: zip members are read only after their declared
size is checked against a budget proportional to the archive's size; the arrays returned may
take at most ``_OUTPUT_SLACK`` plus ``_OUTPUT_FACTOR`` times the file's size (a file that
views one storage many times over, or expands a small storage with stride 0, is refused
beyond that); a pickle may have at most ``_MAX_PICKLE_OPCODES`` opcodes.
"""

from __future__ import annotations

import collections
import io
import json
import math
import os
import pickle
import pickletools
import stat
import struct
import sys
import warnings
import zipfile
import zlib
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = ["read_state_dict"]

# Limits that keep memory proportional to the file.
_MAX_SAFETENSORS_HEADER = 100 * 2**20  # bytes of JSON header
_UNZIP_SLACK = 16 * 2**20  # members may decompress to this much ...
_UNZIP_FACTOR = 32  # ... plus this many times the archive size
_DEFLATE_MAX_RATIO = 1100  # deflate cannot compress better than ~1032:1
_OUTPUT_SLACK = 64 * 2**20  # arrays returned may take this much ...
_OUTPUT_FACTOR = 4  # ... plus this many times the file size
_MAX_NDIM = 64  # numpy's limit
_MAX_PICKLE_OPCODES = 2**21  # ~70,000 tensors; objects the pickle can create

_LEGACY_TORCH_MAGIC = 0x1950A86A20F9469CFC6C

# torch storage type -> numpy dtype of its elements (little-endian; swapped for 'big' files).
_TORCH_STORAGES = {
    "DoubleStorage": "<f8",
    "FloatStorage": "<f4",
    "HalfStorage": "<f2",
    "BFloat16Storage": "bfloat16",
    "LongStorage": "<i8",
    "IntStorage": "<i4",
    "ShortStorage": "<i2",
    "CharStorage": "i1",
    "ByteStorage": "u1",
    "BoolStorage": "bool",
    "UntypedStorage": "u1",
}

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


def read_state_dict(path: str | os.PathLike[str]) -> dict[str, NDArray[Any]]:
    """Read the weights in a PyTorch, safetensors or convext file as numpy arrays.

    Parameters
    ----------
    path : str or os.PathLike
        A file written by ``torch.save(model.state_dict(), path)`` (the zip format of
        torch >= 1.6, or the legacy format before it), a ``.safetensors`` file, or a convext
        model file (``model.save(path)``). The format is recognised from the content.

    Returns
    -------
    dict
        ``{name: numpy.ndarray}`` in the file's order, every array C-contiguous, writeable and
        in native byte order. float32 and float64 stay as they are; float16 and bfloat16 are
        widened (exactly) to float32, with a ``UserWarning`` listing them; integer tensors keep
        their type (BatchNorm's ``num_batches_tracked`` is int64) and bool stays bool.

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    ValueError
        The file is not one of the formats above, or is malformed, truncated or hostile: a
        pickle naming any global other than those a state_dict holds (the message names it),
        a tensor view outside its storage, sizes out of proportion to the file, a TorchScript
        archive (``torch.jit.save``: it holds code) or a whole pickled model
        (``torch.save(model)``).

    Notes
    -----
    torch is never imported and nothing in the file is executed: the pickle inside a PyTorch
    file is read by a restricted unpickler whose only globals are stand-ins written in numpy.
    """
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
    path = os.fspath(path)
    what = repr(path)
    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):
            raise ValueError("it is not a regular file")
        size = st.st_size
        with open(path, "rb") as f:
            head = f.read(64)
        if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
            with zipfile.ZipFile(path) as zf:
                result, widened = _read_zip(zf, size)
        elif _looks_like_safetensors(head, size):
            result, widened = _read_safetensors(path, size)
        elif _looks_like_legacy_torch(head):
            result, widened = _read_legacy_torch(path, size)
        else:
            raise ValueError(
                "it is neither a PyTorch zip file (torch.save), a .safetensors "
                f"file nor a convext .npz file (it starts with {head[:8]!r})"
            )
    except (FileNotFoundError, PermissionError):
        raise
    except ValueError as e:
        raise ValueError(f"cannot read a state_dict from {what}: {e}") from None
    except (
        OSError,
        EOFError,
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        zlib.error,
        KeyError,
        struct.error,
        UnicodeDecodeError,
        NotImplementedError,
        RuntimeError,
    ) as e:
        # RuntimeError: zipfile's "compression method not supported" / encrypted members
        raise ValueError(
            f"cannot read a state_dict from {what}: malformed file ({type(e).__name__}: {e})"
        ) from None
    if widened:
        shown = ", ".join(repr(k) for k in widened[:5]) + (", ..." if len(widened) > 5 else "")
        warnings.warn(
            f"read_state_dict: {len(widened)} float16/bfloat16 tensor(s) in {what} "
            f"widened to float32 ({shown})",
            UserWarning,
            stacklevel=2,
        )
    return result


# --------------------------------------------------------------------------------- detection


def _looks_like_safetensors(head, size):
    if len(head) < 9:
        return False
    n = struct.unpack("<Q", head[:8])[0]
    return head[8:9] == b"{" and 2 <= n <= size - 8


def _looks_like_legacy_torch(head):
    """The legacy format starts with pickle.dump(MAGIC_NUMBER, f, protocol): PROTO, maybe a
    FRAME, then LONG1 with the magic number's 10 bytes."""
    if head[:1] != b"\x80":
        return False
    magic = b"\x8a\x0a" + _LEGACY_TORCH_MAGIC.to_bytes(10, "little")
    return magic in head[:32]


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


def _read_member(zf, info, budget, expected=None):
    """The bytes of a zip member, after checking its declared size (zip bombs, forged sizes)."""
    name = info.filename
    if expected is not None and info.file_size != expected:
        raise ValueError(f"zip member {name!r} holds {info.file_size} bytes, expected {expected}")
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


def _read_zip(zf, file_size):
    infos = zf.infolist()
    if not infos:
        raise ValueError("it is an empty zip archive")
    unzip = _Budget(_UNZIP_SLACK + _UNZIP_FACTOR * file_size, "the archive's size")
    output = _Budget(_OUTPUT_SLACK + _OUTPUT_FACTOR * file_size, "the file's size")
    pickles = [i for i in infos if i.filename.endswith("/data.pkl") and i.filename.count("/") == 1]
    if pickles:
        if len({i.filename for i in pickles}) > 1:
            raise ValueError(
                f"the archive holds several pickles "
                f"({', '.join(sorted({i.filename for i in pickles}))})"
            )
        return _read_torch_zip(zf, pickles[-1], unzip, output)
    if all(i.filename.endswith(".npy") for i in infos):
        return _read_npz(zf, infos, unzip, output)
    raise ValueError(
        "it is a zip archive but neither a PyTorch file (no '<name>/data.pkl') "
        "nor an .npz (members other than .npy)"
    )


# ---------------------------------------------------------------------- PyTorch zip: unpickler


class _Frozen:
    """Base of the stand-ins: read-only, so a BUILD opcode cannot alter them."""

    __slots__ = ()

    def __init__(self, **fields):
        for name, value in fields.items():
            object.__setattr__(self, name, value)

    def __setattr__(self, name, value):
        raise AttributeError(f"{type(self).__name__} is read-only")

    __delattr__ = __setattr__


class _StorageType(_Frozen):
    """Stand-in for ``torch.<X>Storage``: only names an element type."""

    __slots__ = ("name", "spec")


class _Storage(_Frozen):
    """A storage: its raw elements (a 1-D array; None while only collecting references)."""

    __slots__ = ("key", "spec", "numel", "elements")


class _Tensor(_Frozen):
    """A rebuilt tensor (its own copy of the data)."""

    __slots__ = ("array", "widened")


class _TensorClass(_Frozen):
    """Stand-in for ``torch.Tensor`` / ``torch.nn.Parameter`` as _rebuild_from_type_v2's type."""

    __slots__ = ("name",)


def _as_index_tuple(value, name):
    if not isinstance(value, tuple):
        raise ValueError(f"tensor {name} must be a tuple, got {type(value).__name__}")
    if len(value) > _MAX_NDIM:
        raise ValueError(f"tensor {name} has {len(value)} dimensions, more than {_MAX_NDIM}")
    for v in value:
        if type(v) is not int:
            raise ValueError(f"tensor {name} must hold ints, got {type(v).__name__}")
        if v < 0:
            raise ValueError(f"tensor {name} {value} has a negative entry")
        if v > sys.maxsize:
            raise ValueError(f"tensor {name} {value} has an entry beyond {sys.maxsize}")
    return value


class _StateDictUnpickler(pickle.Unpickler):
    """Unpickles the state_dict pickle of a torch file, admitting only what a state_dict holds.

    ``load_storage(key, spec, numel)`` returns the storage's raw elements (a 1-D array of
    exactly ``numel``), or None in a first pass that only collects the storage references
    (the legacy format, whose storages follow the pickle): then tensors are checked for their
    types but not built."""

    def __init__(self, data, load_storage, output):
        super().__init__(io.BytesIO(data))
        self._load_storage = load_storage
        self._output = output
        self._storages = {}
        self._globals = {
            ("collections", "OrderedDict"): collections.OrderedDict,
            ("torch._utils", "_rebuild_tensor_v2"): self._rebuild_tensor_v2,
            ("torch._utils", "_rebuild_tensor"): self._rebuild_tensor,
            ("torch._utils", "_rebuild_parameter"): self._rebuild_parameter,
            ("torch._utils", "_rebuild_parameter_with_state"): self._rebuild_parameter_with_state,
            ("torch._tensor", "_rebuild_from_type_v2"): self._rebuild_from_type_v2,
            ("torch", "Tensor"): _TensorClass(name="torch.Tensor"),
            ("torch.nn.parameter", "Parameter"): _TensorClass(name="torch.nn.parameter.Parameter"),
        }
        for name, spec in _TORCH_STORAGES.items():
            self._globals[("torch", name)] = _StorageType(name=name, spec=spec)

    def find_class(self, module, name):
        try:
            return self._globals[(module, name)]
        except (KeyError, TypeError):
            raise ValueError(
                f"its pickle names the global '{module}.{name}', which a "
                f"state_dict does not hold (refused: only tensors, storages of "
                f"numeric types and ordered dicts are read)"
            ) from None

    def persistent_load(self, pid):
        # zip format: ('storage', type, key, location, numel);
        # legacy format: the same and view_metadata, None since torch 0.4
        if not (
            isinstance(pid, tuple) and len(pid) in (5, 6) and pid[0] in ("storage", b"storage")
        ):
            raise ValueError(f"its pickle holds an unknown persistent id {pid!r:.100}")
        if len(pid) == 6 and pid[5] is not None:
            raise ValueError("its pickle holds a storage view (torch < 0.4), which is not read")
        stype, key, location, numel = pid[1:5]
        if isinstance(key, bytes):
            key = key.decode("ascii")
        if not isinstance(stype, _StorageType):
            raise ValueError(f"storage {key!r:.50} has no storage type")
        if (
            not isinstance(key, str)
            or not isinstance(location, (str, bytes))
            or type(numel) is not int
            or numel < 0
        ):
            raise ValueError(f"its pickle holds a malformed storage reference {pid!r:.100}")
        known = self._storages.get(key)
        if known is not None:
            if known.spec != stype.spec or known.numel != numel:
                raise ValueError(f"storage {key!r} is referenced with two types or sizes")
            return known
        storage = _Storage(
            key=key,
            spec=stype.spec,
            numel=numel,
            elements=self._load_storage(key, stype.spec, numel),
        )
        self._storages[key] = storage
        return storage

    # --- stand-ins for torch's rebuild functions (called by REDUCE with the pickle's args) ---
    def _rebuild_tensor_v2(
        self,
        storage,
        storage_offset,
        size,
        stride,
        requires_grad=False,
        backward_hooks=None,
        metadata=None,
    ):
        return self._rebuild_tensor(storage, storage_offset, size, stride)

    def _rebuild_tensor(self, storage, storage_offset, size, stride):
        if not isinstance(storage, _Storage):
            raise ValueError(
                f"a tensor is rebuilt from a {type(storage).__name__}, not from a storage"
            )
        if type(storage_offset) is not int or storage_offset < 0:
            raise ValueError(f"tensor storage offset {storage_offset!r:.50} is not an int >= 0")
        size = _as_index_tuple(size, "size")
        stride = _as_index_tuple(stride, "stride")
        if len(size) != len(stride):
            raise ValueError(f"tensor size {size} and stride {stride} differ in length")
        elements = storage.elements
        n = storage.numel
        numel = math.prod(size)
        if elements is None:
            return _Tensor(array=None, widened=False)  # collecting storage references only
        if numel == 0:
            if storage_offset > n:
                raise ValueError(
                    f"tensor storage offset {storage_offset} is beyond its "
                    f"storage {storage.key!r} of {n} elements"
                )
            raw = np.empty(size, dtype=elements.dtype)
        else:
            last = storage_offset + sum((s - 1) * st for s, st in zip(size, stride, strict=True))
            if last >= n:
                raise ValueError(
                    f"tensor (offset {storage_offset}, size {size}, stride "
                    f"{stride}) reaches element {last} of storage "
                    f"{storage.key!r}, which has {n}"
                )
            self._output.take(numel * _output_itemsize(storage.spec), f"a tensor of size {size}")
            item = elements.dtype.itemsize
            raw = np.lib.stride_tricks.as_strided(
                elements[storage_offset:],
                shape=size,
                strides=[st * item for st in stride],
                writeable=False,
            )
        array, widened = _to_output(raw, storage.spec)
        return _Tensor(array=array, widened=widened)

    def _rebuild_parameter(self, data, requires_grad, backward_hooks):
        if not isinstance(data, _Tensor):
            raise ValueError(f"a parameter wraps a {type(data).__name__}, not a tensor")
        return data

    def _rebuild_parameter_with_state(self, data, requires_grad, backward_hooks, state):
        return self._rebuild_parameter(data, requires_grad, backward_hooks)

    def _rebuild_from_type_v2(self, func, new_type, args, state):
        if (
            func not in (self._rebuild_tensor_v2, self._rebuild_tensor)
            or not isinstance(new_type, _TensorClass)
            or not isinstance(args, tuple)
        ):
            raise ValueError(
                "_rebuild_from_type_v2 is used with something other than a "
                "tensor rebuild and torch.Tensor/Parameter"
            )
        return func(*args)


def _prescan(data, start=0):
    """Walk the pickle starting at ``data[start]`` once, before unpickling it, and return where
    it ends. A truncated pickle or an argument longer than the data fails here (the C unpickler
    would first allocate the declared length), and so does a memo index beyond the number of
    opcodes (the C unpickler grows its memo table to the index: a 12-byte pickle could make it
    allocate and clear gigabytes)."""
    f = io.BytesIO(data)
    f.seek(start)
    try:
        for count, (op, arg, _) in enumerate(pickletools.genops(f)):
            if count >= _MAX_PICKLE_OPCODES:
                raise ValueError(
                    f"more than {_MAX_PICKLE_OPCODES} opcodes (a state_dict "
                    f"takes about 30 per tensor)"
                )
            if op.name in ("PUT", "BINPUT", "LONG_BINPUT") and not 0 <= int(arg) <= count:
                raise ValueError(f"memo index {arg} at opcode {count}")
    except (ValueError, EOFError) as e:
        raise ValueError(f"its pickle is malformed or truncated ({e})") from None
    return f.tell()


class _PrimitivesUnpickler(pickle.Unpickler):
    """For the legacy format's small pickles (magic number, version, sys_info, storage keys):
    plain data only, no globals, no persistent ids."""

    def find_class(self, module, name):
        raise ValueError(
            f"its pickle names the global '{module}.{name}' where only plain data belongs"
        )

    def persistent_load(self, pid):
        raise ValueError("its pickle holds a persistent id where only plain data belongs")


def _unpickle(unpickler):
    try:
        return unpickler.load()
    except ValueError:
        raise
    except Exception as e:  # whatever a hostile stream makes the unpickler or a stand-in raise
        raise ValueError(f"its pickle is malformed ({type(e).__name__}: {e})") from None


def _read_torch_zip(zf, pkl_info, unzip, output):
    prefix = pkl_info.filename[: -len("data.pkl")]
    names = set(zf.namelist())
    if prefix + "constants.pkl" in names or any(n.startswith(prefix + "code/") for n in names):
        raise ValueError(
            "it is a TorchScript archive (torch.jit.save), which holds code; "
            "save the weights with torch.save(model.state_dict(), path)"
        )
    big_endian = False
    try:
        order_info = zf.getinfo(prefix + "byteorder")
    except KeyError:
        order_info = None  # written before torch recorded it: little-endian
    if order_info is not None:
        if order_info.file_size > 16:
            raise ValueError("its byteorder record is malformed")
        order = _read_member(zf, order_info, unzip).decode("ascii", "replace").strip()
        if order not in ("little", "big"):
            raise ValueError(f"its byteorder record says {order!r}, not 'little' or 'big'")
        big_endian = order == "big"

    def load_storage(key, spec, numel):
        name = f"{prefix}data/{key}"
        try:
            info = zf.getinfo(name)
        except KeyError:
            raise ValueError(f"storage {key!r} is missing (no zip member {name!r})") from None
        dtype = _storage_dtype(spec, big_endian)
        raw = _read_member(zf, info, unzip, expected=numel * dtype.itemsize)
        return np.frombuffer(raw, dtype=dtype)

    data = _read_member(zf, pkl_info, unzip)
    _prescan(data)
    return _state_dict_from(_unpickle(_StateDictUnpickler(data, load_storage, output)))


def _read_legacy_torch(path, file_size):
    """The format of torch < 1.6 (and of ``_use_new_zipfile_serialization=False``): five
    pickles one after the other (magic number, protocol version 1001, sys_info, the state_dict
    with storage references, the sorted storage keys), then each storage as an int64 element
    count and the raw elements, in the order of the keys."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) != file_size:
        raise ValueError("the file changed while it was read")
    output = _Budget(_OUTPUT_SLACK + _OUTPUT_FACTOR * file_size, "the file's size")

    def small_pickle(start):
        end = _prescan(data, start)
        return _unpickle(_PrimitivesUnpickler(io.BytesIO(data[start:end]))), end

    magic, pos = small_pickle(0)
    version, pos = small_pickle(pos)
    sys_info, pos = small_pickle(pos)
    if magic != _LEGACY_TORCH_MAGIC or version != 1001:
        raise ValueError(
            f"its legacy header (magic {magic!r:.40}, version {version!r:.40}) is not torch's"
        )
    if not isinstance(sys_info, dict) or not isinstance(sys_info.get("little_endian"), bool):
        raise ValueError("its legacy sys_info record is malformed")
    big_endian = not sys_info["little_endian"]
    main_start, main_end = pos, _prescan(data, pos)
    main = data[main_start:main_end]
    keys, pos = small_pickle(main_end)

    # First pass: which storages, of which type and size (tensors are not built).
    wanted = {}

    def collect(key, spec, numel):
        wanted[key] = (spec, numel)
        return None

    _unpickle(_StateDictUnpickler(main, collect, output))
    if not (
        isinstance(keys, list)
        and all(isinstance(k, str) for k in keys)
        and len(set(keys)) == len(keys)
        and set(keys) == set(wanted)
    ):
        raise ValueError(
            "its list of storage keys does not match the storages its state_dict references"
        )
    storages = {}
    count_dtype = np.dtype(">i8" if big_endian else "<i8")
    for key in keys:
        spec, numel = wanted[key]
        dtype = _storage_dtype(spec, big_endian)
        if pos + 8 > len(data):
            raise ValueError(f"storage {key!r} is missing (the file ends at byte {len(data)})")
        stored = int(np.frombuffer(data, dtype=count_dtype, count=1, offset=pos)[0])
        if stored != numel:
            raise ValueError(f"storage {key!r} holds {stored} elements, its reference says {numel}")
        pos += 8
        nbytes = numel * dtype.itemsize
        if pos + nbytes > len(data):
            raise ValueError(f"storage {key!r} is truncated")
        storages[key] = np.frombuffer(data, dtype=dtype, count=numel, offset=pos)
        pos += nbytes

    # Second pass: the tensors, from the storages.
    return _state_dict_from(
        _unpickle(_StateDictUnpickler(main, lambda key, spec, numel: storages[key], output))
    )


def _state_dict_from(obj):
    """The (name -> array, widened names) of the unpickled object, which must be a dict of
    tensors."""
    if not isinstance(obj, dict):
        raise ValueError(f"it holds a {type(obj).__name__}, not a state_dict (a dict of tensors)")
    result, widened = {}, []
    for key, value in obj.items():
        if not isinstance(key, str):
            raise ValueError(f"its state_dict has a key of type {type(key).__name__}: {key!r:.50}")
        if not isinstance(value, _Tensor):
            hint = ""
            if (
                isinstance(value, dict)
                and value
                and all(isinstance(v, _Tensor) for v in value.values())
            ):
                hint = (
                    f"; the file looks like a checkpoint whose entry {key!r} is the "
                    f"state_dict: save that entry alone with torch.save"
                )
            raise ValueError(f"its entry {key!r} is a {type(value).__name__}, not a tensor{hint}")
        result[key] = value.array
        if value.widened:
            widened.append(key)
    return result, widened


# ------------------------------------------------------------------------------------- .npz


def _read_npz(zf, infos, unzip, output):
    from .serialization import ARCH_KEY

    fmt = np.lib.format
    result, widened = {}, []
    for info in infos:
        key = info.filename[: -len(".npy")]
        if key == ARCH_KEY:
            continue
        if key in result:
            raise ValueError(f"it holds the entry {key!r} twice")
        if info.compress_type == zipfile.ZIP_STORED:
            if info.compress_size != info.file_size:
                raise ValueError(
                    f"zip member {info.filename!r} is stored uncompressed but "
                    f"declares {info.file_size} bytes in {info.compress_size}"
                )
        elif info.file_size > _DEFLATE_MAX_RATIO * info.compress_size + 1024:
            raise ValueError(
                f"zip member {info.filename!r} declares {info.file_size} bytes "
                f"compressed into {info.compress_size} (a zip bomb or a forged "
                f"size)"
            )
        with zf.open(info) as fp:
            version = fmt.read_magic(fp)
            if version == (1, 0):
                shape, fortran, dtype = fmt.read_array_header_1_0(fp)
            elif version == (2, 0):
                shape, fortran, dtype = fmt.read_array_header_2_0(fp)
            else:
                raise ValueError(f"entry {key!r} has .npy format version {version}, not 1.0 or 2.0")
            header_len = fp.tell()
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
