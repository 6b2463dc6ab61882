"""PyTorch files (``torch.save``), zip and legacy formats, read without torch through a
restricted unpickler whose only globals are stand-ins written here."""

from __future__ import annotations

import collections
import io
import math
import pickle
import pickletools
import sys

import numpy as np

from ._common import (
    _MAX_NDIM,
    _OUTPUT_FACTOR,
    _OUTPUT_SLACK,
    _Budget,
    _output_itemsize,
    _read_member,
    _storage_dtype,
    _to_output,
)

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


def _looks_like_legacy_torch(head):
    """The legacy format starts with pickle.dump(MAGIC_NUMBER, f, protocol): PROTO, maybe a
    FRAME, then LONG1 with the magic number's 10 bytes."""
    if head[:1] != b"\x80":
        return False
    magic = b"\x8a\x0a" + _LEGACY_TORCH_MAGIC.to_bytes(10, "little")
    return magic in head[:32]


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


class _Rebuild(_Frozen):
    """Stand-in for one of torch's rebuild functions: calls the unpickler's check of it. A
    bound method in its place would let a BUILD opcode write into the function's __dict__,
    which outlives the load."""

    __slots__ = ("fn",)

    def __call__(self, *args):
        return self.fn(*args)


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
        rebuild = {
            name: _Rebuild(fn=getattr(self, name))
            for name in (
                "_rebuild_tensor_v2",
                "_rebuild_tensor",
                "_rebuild_parameter",
                "_rebuild_parameter_with_state",
                "_rebuild_from_type_v2",
            )
        }
        self._tensor_rebuilds = (rebuild["_rebuild_tensor_v2"], rebuild["_rebuild_tensor"])
        self._globals = {
            ("collections", "OrderedDict"): collections.OrderedDict,
            **{("torch._utils", name): rebuild[name] for name in list(rebuild)[:4]},
            ("torch._tensor", "_rebuild_from_type_v2"): rebuild["_rebuild_from_type_v2"],
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
            not any(func is f for f in self._tensor_rebuilds)
            or not isinstance(new_type, _TensorClass)
            or not isinstance(args, tuple)
        ):
            raise ValueError(
                "_rebuild_from_type_v2 is used with something other than a "
                "tensor rebuild and torch.Tensor/Parameter"
            )
        return func(*args)


# What _prescan lets a pickle build. A state_dict nests about 10 deep (a checkpoint's dict of
# dicts of parameter tensors rebuilt from storages); the weight (objects, counting each memo
# reference again) bounds what hashing or printing the result can walk: a pickle of a few
# hundred bytes can build a tuple of nested tuples shared through its memo whose hash takes
# 2**100 steps, and a tuple nested a million deep crashes CPython's tuple hash.
_MAX_PICKLE_DEPTH = 32
# opcodes a state_dict never holds: sets and bytearrays (fat objects for one opcode byte),
# out-of-band buffers, the extension registry. (Classes reach the stack only through find_class,
# which names a refused one: the message a whole pickled model gets.)
_REFUSED_OPCODES = frozenset(
    "EMPTY_SET ADDITEMS FROZENSET BYTEARRAY8 NEXT_BUFFER READONLY_BUFFER EXT1 EXT2 EXT4".split()
)


def _stack_effects():
    """opcode name -> (takes a mark and what is above it, plain entries it takes below that,
    entries it pushes, or -1: pushes a mark), from pickletools' descriptions."""
    effects = {}
    for op in pickletools.opcodes:
        before = list(op.stack_before)
        marked = pickletools.markobject in before
        below = before.index(pickletools.markobject) if marked else len(before)
        pushes = -1 if op.stack_after == [pickletools.markobject] else len(op.stack_after)
        effects[op.name] = (marked, below, pushes)
    return effects


_STACK_EFFECTS = _stack_effects()


def _prescan(data, start=0, max_opcodes=_MAX_PICKLE_OPCODES):
    """Walk the pickle starting at ``data[start]`` once, before unpickling it, and return where
    it ends. A truncated pickle or an argument longer than the data fails here (the C unpickler
    would first allocate the declared length), and so does a memo index beyond the number of
    opcodes (the C unpickler grows its memo table to the index: a 12-byte pickle could make it
    allocate and clear gigabytes), an opcode a state_dict never holds, more than
    ``max_opcodes`` opcodes, or objects nested deeper than _MAX_PICKLE_DEPTH or heavier than
    4 * max_opcodes. The walk keeps (depth, weight) for each entry of the unpickler's stack and
    memo, and where the marks are: what an opcode builds is one deeper than the deepest entry
    it takes and one heavier than all of them together."""
    f = io.BytesIO(data)
    f.seek(start)
    stack, marks, memo, max_weight = [], [], {}, 4 * max_opcodes
    try:
        for count, (op, arg, _) in enumerate(pickletools.genops(f)):
            if count >= max_opcodes:
                raise ValueError(
                    f"more than {max_opcodes} opcodes (a state_dict takes about 30 per tensor)"
                )
            name = op.name
            if name in _REFUSED_OPCODES:
                raise ValueError(f"opcode {name} at {count}, which a state_dict never holds")
            floor = marks[-1] + 1 if marks else 0  # the first entry above the last mark
            if name in ("PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE"):
                index = len(memo) if name == "MEMOIZE" else int(arg)
                if not 0 <= index <= count or len(stack) <= floor:
                    raise ValueError(f"memo index {arg} at opcode {count}")
                memo[index] = stack[-1]
                continue
            if name in ("GET", "BINGET", "LONG_BINGET", "DUP"):
                if name == "DUP" and len(stack) <= floor:
                    raise ValueError(f"DUP at opcode {count} finds the stack empty")
                top = stack[-1] if name == "DUP" else memo.get(int(arg))
                if top is None:
                    raise ValueError(f"memo index {arg} read before it is written")
                stack.append(top)
                continue
            marked, below, pushes = _STACK_EFFECTS[name]
            taken = []
            if marked:
                if not marks:
                    raise ValueError(f"{name} at opcode {count} without a mark")
                taken = stack[marks[-1] + 1 :]
                del stack[marks.pop() :]
                floor = marks[-1] + 1 if marks else 0
            if below:
                if len(stack) - below < floor:
                    raise ValueError(f"{name} at opcode {count} finds the stack empty")
                taken += stack[-below:]
                del stack[-below:]
            depth = 1 + max((d for d, _ in taken), default=-1)
            weight = 1 + sum(w for _, w in taken)
            if depth > _MAX_PICKLE_DEPTH:
                raise ValueError(
                    f"objects nested more than {_MAX_PICKLE_DEPTH} deep at opcode {count} (a "
                    f"state_dict nests about 10 deep)"
                )
            if weight > max_weight:
                raise ValueError(
                    f"an object of more than {max_weight} parts (counting shared ones each "
                    f"time) at opcode {count}"
                )
            if pushes < 0:
                marks.append(len(stack))
                stack.append(None)
            else:
                stack.extend([(depth, weight)] * pushes)
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
    # a pickle's opcodes are at most its bytes; a deflated one may hold a few per byte of the
    # file, not the millions a small file of repeated opcodes inflates to
    _prescan(data, max_opcodes=min(_MAX_PICKLE_OPCODES, 4096 + 8 * pkl_info.compress_size))
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
