"""read_state_dict without torch: torch zip files, safetensors files and hostile variations of
them written by hand (tests/state_dict_files.py), and convext's own .npz.

No torch here: tests/parity/test_state_dict_parity.py compares with files torch itself writes.
"""

import os
import pickle
import struct
import warnings
import zipfile

import numpy as np
import pytest

import convext as cx
from convext import layers as L
from convext.state_dict import read_state_dict
from state_dict_files import (
    BUILD,
    EMPTY_DICT,
    EMPTY_TUPLE,
    PROTO2,
    STOP,
    bfloat16_bits,
    call,
    get,
    glob,
    ordered_dict,
    prim,
    put,
    read_without_torch,
    state_dict_pickle,
    storage_ref,
    torch_tensor,
    tup,
    write_safetensors,
    write_torch_zip,
)

RNG = np.random.default_rng(0)


def _torch_file(tmp_path, arrays, name="m.pth", byteorder="little"):
    """A torch-format file holding each array as a contiguous tensor of its own storage."""
    types = {
        np.dtype(np.float32): "FloatStorage",
        np.dtype(np.float64): "DoubleStorage",
        np.dtype(np.int64): "LongStorage",
        np.dtype(np.int32): "IntStorage",
        np.dtype(np.int16): "ShortStorage",
        np.dtype(np.int8): "CharStorage",
        np.dtype(np.uint8): "ByteStorage",
        np.dtype(np.bool_): "BoolStorage",
        np.dtype(np.float16): "HalfStorage",
    }
    pairs, storages = [], {}
    for i, (key, a) in enumerate(arrays.items()):
        a = np.array(a, order="C")  # (ascontiguousarray would make 0-d arrays 1-d)
        stride = tuple(s // a.itemsize for s in a.strides) if a.size else (1,) * a.ndim
        order = "<" if byteorder == "little" else ">"
        storages[str(i)] = a.astype(a.dtype.newbyteorder(order)).tobytes()
        pairs.append(
            (key, torch_tensor(storage_ref(types[a.dtype], str(i), a.size), 0, a.shape, stride))
        )
    return write_torch_zip(
        tmp_path / name, state_dict_pickle(pairs), storages, byteorder=byteorder.encode()
    )


def _sample_arrays():
    return {
        "conv.weight": RNG.standard_normal((4, 3, 3, 2)).astype(np.float32),
        "conv.bias": RNG.standard_normal(4).astype(np.float32),
        "fc.weight": RNG.standard_normal((5, 7)),
        "bn.num_batches_tracked": np.array(12345678901, dtype=np.int64),
        "i32": np.array([-3, 7], dtype=np.int32),
        "i16": np.array([-300, 7], dtype=np.int16),
        "i8": np.array([-3, 7], dtype=np.int8),
        "u8": np.array([0, 255], dtype=np.uint8),
        "mask": np.array([True, False, True]),
        "empty": np.zeros((0, 3), dtype=np.float32),
    }


def _assert_same(got, expected):
    assert list(got) == list(expected)
    for k, a in expected.items():
        assert got[k].dtype == a.dtype, k
        assert got[k].shape == a.shape, k
        np.testing.assert_array_equal(got[k], a, err_msg=k)
        assert got[k].flags.c_contiguous and got[k].flags.writeable and got[k].dtype.isnative


# ----------------------------------------------------------------------------- torch zip files


@pytest.mark.parametrize("byteorder", ["little", "big"])
def test_torch_zip_dtypes_and_byteorder(tmp_path, byteorder):
    arrays = _sample_arrays()
    path = _torch_file(tmp_path, arrays, byteorder=byteorder)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _assert_same(read_state_dict(path), arrays)


def test_torch_zip_without_byteorder_record_is_little_endian(tmp_path):
    a = RNG.standard_normal((2, 3)).astype(np.float32)
    pairs = [("w", torch_tensor(storage_ref("FloatStorage", "0", 6), 0, (2, 3), (3, 1)))]
    path = write_torch_zip(
        tmp_path / "m.pth", state_dict_pickle(pairs), {"0": a.tobytes()}, byteorder=None
    )
    _assert_same(read_state_dict(path), {"w": a})


def test_torch_zip_bad_byteorder(tmp_path):
    pairs = [("w", torch_tensor(storage_ref("FloatStorage", "0", 1), 0, (1,), (1,)))]
    path = write_torch_zip(
        tmp_path / "m.pth", state_dict_pickle(pairs), {"0": b"\0" * 4}, byteorder=b"middle"
    )
    with pytest.raises(ValueError, match="byteorder"):
        read_state_dict(path)


def test_views_strides_offsets_and_shared_storage(tmp_path):
    base = RNG.standard_normal(60)
    x = base[:48].reshape(4, 12)
    s = storage_ref("DoubleStorage", "0", 60)
    pairs = [
        # the storage reference is memoised and reused (BINPUT/BINGET), as torch does
        ("t", torch_tensor(s + put(3), 0, (12, 4), (1, 12))),  # x.T
        ("row", torch_tensor(get(3), 13, (11,), (1,))),  # base[13:24]
        ("every3", torch_tensor(get(3), 2, (3, 5), (20, 3))),  # strided window
        ("expanded", torch_tensor(get(3), 7, (3, 4), (0, 1))),  # stride 0
        ("scalar", torch_tensor(get(3), 59, (), ())),
        ("empty", torch_tensor(get(3), 60, (0, 5), (5, 1))),
    ]
    path = write_torch_zip(tmp_path / "m.pth", state_dict_pickle(pairs), {"0": base.tobytes()})
    got = read_state_dict(path)
    expected = {
        "t": x.T,
        "row": base[13:24],
        "every3": np.array([[base[2 + 20 * i + 3 * j] for j in range(5)] for i in range(3)]),
        "expanded": np.array([base[7:11]] * 3),
        "scalar": np.array(base[59]),
        "empty": np.zeros((0, 5)),
    }
    _assert_same(got, expected)
    got["t"][0, 0] = 1e9  # every array is its own copy
    assert got["row"][0] == base[13] and got["expanded"][1, 0] == base[7]


def test_float16_and_bfloat16_widened_with_warning(tmp_path):
    h = RNG.standard_normal((3, 2)).astype(np.float16)
    b32, b16 = bfloat16_bits(RNG.standard_normal(5) * 1e3)
    b32[0], b16[0] = bfloat16_bits([np.inf])[0][0], bfloat16_bits([np.inf])[1][0]
    pairs = [
        ("h", torch_tensor(storage_ref("HalfStorage", "0", 6), 0, (3, 2), (1, 3))),
        ("b", torch_tensor(storage_ref("BFloat16Storage", "1", 5), 0, (5,), (1,))),
    ]
    path = write_torch_zip(
        tmp_path / "m.pth",
        state_dict_pickle(pairs),
        {"0": h.T.copy().tobytes(), "1": b16.tobytes()},
    )
    with pytest.warns(UserWarning, match=r"2 float16/bfloat16 .*widened to float32"):
        got = read_state_dict(path)
    _assert_same(got, {"h": h.astype(np.float32), "b": b32})


def test_parameters_and_legacy_rebuild(tmp_path):
    a = RNG.standard_normal(4).astype(np.float32)
    param = call(
        glob("torch._utils", "_rebuild_parameter"),
        torch_tensor(storage_ref("FloatStorage", "0", 4), 0, (4,), (1,)),
        prim(True),
        call(glob("collections", "OrderedDict")),
    )
    old = call(
        glob("torch._utils", "_rebuild_tensor"),
        storage_ref("FloatStorage", "0", 4),
        prim(1),
        prim((2,)),
        prim((2,)),
    )
    path = write_torch_zip(
        tmp_path / "m.pth", state_dict_pickle([("p", param), ("o", old)]), {"0": a.tobytes()}
    )
    _assert_same(read_state_dict(path), {"p": a, "o": a[1::2]})


def test_state_dict_metadata_attribute_is_accepted(tmp_path):
    # torch sets OrderedDict._metadata with a BUILD opcode
    a = np.arange(3, dtype=np.float32)
    body = ordered_dict([("w", torch_tensor(storage_ref("FloatStorage", "0", 3), 0, (3,), (1,)))])
    meta = EMPTY_DICT + prim("_metadata") + ordered_dict([("", prim({"version": 1}))]) + b"s"
    path = write_torch_zip(
        tmp_path / "m.pth", PROTO2 + body + meta + BUILD + STOP, {"0": a.tobytes()}
    )
    _assert_same(read_state_dict(path), {"w": a})


# ----------------------------------------------------------------- hostile pickles: no code runs


def _pickle_file(tmp_path, pickle_bytes, storages=None):
    return write_torch_zip(tmp_path / "evil.pth", pickle_bytes, storages or {})


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def _real_pickles(marker):
    """Pickles made by pickle itself that would run code with an unrestricted unpickler."""
    import builtins
    import subprocess

    evil = _Evil(marker)
    return {
        "__reduce__ to os.system (protocol 2)": (
            pickle.dumps({"w": evil}, protocol=2),
            f"{os.system.__module__}.system",
        ),
        "__reduce__ to os.system (protocol 4, STACK_GLOBAL)": (
            pickle.dumps({"w": evil}, protocol=4),
            f"{os.system.__module__}.system",
        ),
        # protocol 2 writes it as Python 2's __builtin__.eval
        "builtins.eval": (pickle.dumps(builtins.eval, protocol=2), "__builtin__.eval"),
        "builtins.exec (protocol 4)": (pickle.dumps(builtins.exec, protocol=4), "builtins.exec"),
        "subprocess.Popen": (pickle.dumps(subprocess.Popen, protocol=4), "subprocess.Popen"),
    }


@pytest.mark.parametrize("case", list(_real_pickles("x")))
def test_hostile_real_pickles_refused_without_running(tmp_path, case):
    marker = tmp_path / "ran"
    data, global_name = _real_pickles(marker)[case]
    path = _pickle_file(tmp_path, data)
    with pytest.raises(ValueError, match=global_name.replace(".", r"\.")):
        read_state_dict(path)
    assert not marker.exists()


@pytest.mark.parametrize(
    "module,name",
    [
        ("builtins", "exec"),
        ("builtins", "getattr"),
        ("__builtin__", "eval"),
        ("os", "system"),
        ("posix", "system"),
        ("collections", "namedtuple"),
        ("torch", "load"),
        ("torch._utils", "_rebuild_device_tensor_from_numpy"),
        ("torch.serialization", "load"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("torch", "ComplexFloatStorage"),
        ("torch", "QInt8Storage"),
        ("collections", "OrderedDict.fromkeys"),
    ],
)
def test_forbidden_globals_named(tmp_path, module, name):
    data = PROTO2 + call(glob(module, name), prim("echo pwned")) + STOP
    with pytest.raises(ValueError, match=f"'{module}.{name}'".replace(".", r"\.")):
        read_state_dict(_pickle_file(tmp_path, data))


def test_forbidden_global_inside_a_state_dict(tmp_path):
    a = np.zeros(2, dtype=np.float32)
    pairs = [
        ("w", torch_tensor(storage_ref("FloatStorage", "0", 2), 0, (2,), (1,))),
        ("x", call(glob("os", "system"), prim("echo pwned"))),
    ]
    with pytest.raises(ValueError, match=r"'os\.system'"):
        read_state_dict(_pickle_file(tmp_path, state_dict_pickle(pairs), {"0": a.tobytes()}))


@pytest.mark.parametrize(
    "case",
    [
        "build_on_storage_type",
        "build_on_tensor",
        "build_slots_on_tensor",
        "call_storage_type",
        "call_tensor",
        "persid_not_tuple",
        "persid_wrong_kind",
        "persid_no_type",
        "rebuild_from_int",
        "from_type_with_ordered_dict",
        "too_many_args",
    ],
)
def test_hostile_structures(tmp_path, case):
    s = storage_ref("FloatStorage", "0", 4)
    t = torch_tensor(s, 0, (4,), (1,))
    od = glob("collections", "OrderedDict")
    bodies = {
        "build_on_storage_type": glob("torch", "FloatStorage")
        + prim((None, {"spec": "O"}))
        + BUILD,
        "build_on_tensor": t + prim({"array": 1}) + BUILD,
        "build_slots_on_tensor": t + prim((None, {"array": "x"})) + BUILD,
        "call_storage_type": call(glob("torch", "FloatStorage"), prim(4)),
        "call_tensor": call(t, prim(1)),
        "persid_not_tuple": prim("0") + b"Q",
        "persid_wrong_kind": tup(
            prim("module"), glob("torch", "FloatStorage"), prim("0"), prim("cpu"), prim(4)
        )
        + b"Q",
        "persid_no_type": tup(prim("storage"), prim("x"), prim("0"), prim("cpu"), prim(4)) + b"Q",
        "rebuild_from_int": call(
            glob("torch._utils", "_rebuild_tensor_v2"),
            prim(1),
            prim(0),
            prim((1,)),
            prim((1,)),
            prim(False),
            call(od),
        ),
        "from_type_with_ordered_dict": call(
            glob("torch._tensor", "_rebuild_from_type_v2"),
            od,
            glob("torch", "Tensor"),
            prim(((1, 2),)),
            prim({}),
        ),
        "too_many_args": call(
            glob("torch._utils", "_rebuild_tensor"),
            s,
            prim(0),
            prim((4,)),
            prim((1,)),
            prim(1),
            prim(2),
            prim(3),
        ),
    }
    data = PROTO2 + ordered_dict([("w", bodies[case])]) + STOP
    with pytest.raises(ValueError, match="cannot read a state_dict"):
        read_state_dict(_pickle_file(tmp_path, data, {"0": b"\0" * 16}))


def test_huge_declared_bytes_in_pickle_refused_without_allocating(tmp_path):
    # BINBYTES8 declaring 2**60 bytes: refused by the opcode scan, nothing allocated
    data = PROTO2 + b"\x8e" + struct.pack("<Q", 2**60) + b"abc" + STOP
    with pytest.raises(ValueError, match="truncated|malformed"):
        read_state_dict(_pickle_file(tmp_path, data))


@pytest.mark.parametrize("memo_op", [b"r" + struct.pack("<I", 2**28), b"p268435456\n"])
def test_huge_memo_index_refused(tmp_path, memo_op):
    # LONG_BINPUT / PUT with index 2**28: the C unpickler would grow its memo table to it
    data = PROTO2 + prim(1) + memo_op + b"0" + ordered_dict([]) + STOP
    with pytest.raises(ValueError, match="memo index 268435456"):
        read_state_dict(_pickle_file(tmp_path, data))


def test_too_many_opcodes_refused(tmp_path, monkeypatch):
    from convext.state_dict import _torch as sd_module

    monkeypatch.setattr(sd_module, "_MAX_PICKLE_OPCODES", 1000)
    data = PROTO2 + b"]" * 2000 + b"0" * 1999 + STOP  # 2000 empty lists: no data, many objects
    with pytest.raises(ValueError, match="more than 1000 opcodes"):
        read_state_dict(_pickle_file(tmp_path, data))


@pytest.mark.parametrize(
    "payload,match",
    [
        (PROTO2 + prim([1, 2]) + STOP, "not a state_dict"),
        (PROTO2 + ordered_dict([("epoch", prim(3))]) + STOP, "'epoch' is a int"),
        (PROTO2 + ordered_dict([(prim(3), prim(3))]) + STOP, "key of type int"),
        (PROTO2 + b"\x8e", "malformed or truncated"),
        (b"not a pickle", "malformed"),
    ],
)
def test_not_a_state_dict(tmp_path, payload, match):
    with pytest.raises(ValueError, match=match):
        read_state_dict(_pickle_file(tmp_path, payload))


def test_checkpoint_dict_gets_a_hint(tmp_path):
    inner = ordered_dict([("w", torch_tensor(storage_ref("FloatStorage", "0", 1), 0, (1,), (1,)))])
    data = PROTO2 + ordered_dict([("model", inner), ("epoch", prim(3))]) + STOP
    with pytest.raises(ValueError, match="checkpoint whose entry 'model'"):
        read_state_dict(_pickle_file(tmp_path, data, {"0": b"\0" * 4}))


# --------------------------------------------------------- forged geometry and storage records


@pytest.mark.parametrize(
    "offset,size,stride,match",
    [
        (0, (5,), (1,), "reaches element 4 of storage '0', which has 4"),
        (4, (1,), (1,), "reaches element 4"),
        (1, (2, 2), (2, 1), "reaches element 4"),
        (0, (2,), (4,), "reaches element 4"),
        (0, (2**62, 2**62), (1, 1), "reaches element"),
        (5, (0,), (1,), "offset 5 is beyond"),
        (-1, (1,), (1,), "offset -1"),
        (0, (-1,), (1,), "negative"),
        (0, (2,), (-1,), "negative"),
        (0, (2, 1), (1,), "differ in length"),
        (0, (2.0,), (1,), "must hold ints"),
        (0, (True,), (1,), "must hold ints"),
        (0, [2], (1,), "must be a tuple"),
        (0, (1,) * 65, (1,) * 65, "more than 64"),
        (0.0, (1,), (1,), "offset"),
    ],
)
def test_forged_geometry(tmp_path, offset, size, stride, match):
    pairs = [("w", torch_tensor(storage_ref("FloatStorage", "0", 4), offset, size, stride))]
    path = _pickle_file(tmp_path, state_dict_pickle(pairs), {"0": b"\0" * 16})
    with pytest.raises(ValueError, match=match):
        read_state_dict(path)


@pytest.mark.parametrize(
    "numel,data,match",
    [
        (4, None, "storage '0' is missing"),
        (5, b"\0" * 16, "holds 16 bytes, expected 20"),
        (3, b"\0" * 16, "holds 16 bytes, expected 12"),
        (2**61, b"\0" * 16, "expected"),
        (-1, b"\0" * 16, "malformed storage reference"),
    ],
)
def test_forged_storage_records(tmp_path, numel, data, match):
    pairs = [("w", torch_tensor(storage_ref("FloatStorage", "0", numel), 0, (1,), (1,)))]
    path = _pickle_file(tmp_path, state_dict_pickle(pairs), {} if data is None else {"0": data})
    with pytest.raises(ValueError, match=match):
        read_state_dict(path)


def test_one_storage_with_two_types_refused(tmp_path):
    pairs = [
        ("a", torch_tensor(storage_ref("FloatStorage", "0", 4), 0, (4,), (1,))),
        ("b", torch_tensor(storage_ref("IntStorage", "0", 4), 0, (4,), (1,))),
    ]
    path = _pickle_file(tmp_path, state_dict_pickle(pairs), {"0": b"\0" * 16})
    with pytest.raises(ValueError, match="two types or sizes"):
        read_state_dict(path)


def test_storage_key_cannot_escape_the_archive(tmp_path):
    pairs = [("w", torch_tensor(storage_ref("FloatStorage", "../../etc/passwd", 1), 0, (1,), (1,)))]
    path = _pickle_file(tmp_path, state_dict_pickle(pairs), {"0": b"\0" * 4})
    with pytest.raises(ValueError, match="missing"):
        read_state_dict(path)


def test_many_views_of_one_storage_bounded(tmp_path):
    # 1 MB storage, 2000 tensors each viewing all of it through the memo: 2 GB if allowed
    n = 2**18
    s = storage_ref("FloatStorage", "0", n) + put(3)
    pairs = [(f"t{i}", torch_tensor(s if i == 0 else get(3), 0, (n,), (1,))) for i in range(2000)]
    path = _pickle_file(tmp_path, state_dict_pickle(pairs), {"0": b"\0" * (4 * n)})
    with pytest.raises(ValueError, match="more than the file's size allows"):
        read_state_dict(path)


def test_expanded_view_bounded(tmp_path):
    # a one-element storage viewed with stride 0 as 10**12 elements
    pairs = [("w", torch_tensor(storage_ref("FloatStorage", "0", 1), 0, (10**6, 10**6), (0, 0)))]
    path = _pickle_file(tmp_path, state_dict_pickle(pairs), {"0": b"\0" * 4})
    with pytest.raises(ValueError, match="more than the file's size allows"):
        read_state_dict(path)


# --------------------------------------------------------------------------- zip-level attacks


def _patch_central_sizes(path, member, compress_size=None, file_size=None):
    data = bytearray(path.read_bytes())
    name = member.encode()
    pos = 0
    while True:
        pos = data.index(b"PK\x01\x02", pos)
        n = struct.unpack_from("<H", data, pos + 28)[0]
        if data[pos + 46 : pos + 46 + n] == name:
            break
        pos += 4
    if compress_size is not None:
        struct.pack_into("<I", data, pos + 20, compress_size)
    if file_size is not None:
        struct.pack_into("<I", data, pos + 24, file_size)
    path.write_bytes(bytes(data))


def test_zip_bomb_member_refused(tmp_path):
    n = 48 * 2**20  # 48 MB of zeros deflate to about 48 kB
    pairs = [("w", torch_tensor(storage_ref("FloatStorage", "0", n // 4), 0, (n // 4,), (1,)))]
    path = write_torch_zip(
        tmp_path / "bomb.pth",
        state_dict_pickle(pairs),
        {"0": b"\0" * n},
        compression=zipfile.ZIP_DEFLATED,
    )
    assert path.stat().st_size < 2**20
    with pytest.raises(ValueError, match="more than the archive's size allows"):
        read_state_dict(path)


def test_forged_deflate_size_refused(tmp_path):
    pairs = [("w", torch_tensor(storage_ref("FloatStorage", "0", 2**28), 0, (1,), (1,)))]
    path = write_torch_zip(
        tmp_path / "m.pth",
        state_dict_pickle(pairs),
        {"0": b"\1" * 4096},
        compression=zipfile.ZIP_DEFLATED,
    )
    _patch_central_sizes(path, "archive/data/0", file_size=2**30)
    with pytest.raises(ValueError, match="zip bomb or a forged size"):
        read_state_dict(path)


@pytest.mark.parametrize(
    "file_size,match",
    [(32, "stored uncompressed but declares"), (8, "stored uncompressed but declares")],
)
def test_forged_stored_size_refused(tmp_path, file_size, match):
    pairs = [("w", torch_tensor(storage_ref("FloatStorage", "0", 4), 0, (4,), (1,)))]
    path = write_torch_zip(tmp_path / "m.pth", state_dict_pickle(pairs), {"0": b"\0" * 16})
    _patch_central_sizes(path, "archive/data/0", file_size=file_size)
    with pytest.raises(ValueError, match="holds|declares"):
        read_state_dict(path)


def test_corrupted_storage_crc(tmp_path):
    a = np.arange(4, dtype=np.float32)
    pairs = [("w", torch_tensor(storage_ref("FloatStorage", "0", 4), 0, (4,), (1,)))]
    path = write_torch_zip(tmp_path / "m.pth", state_dict_pickle(pairs), {"0": a.tobytes()})
    data = bytearray(path.read_bytes())
    pos = data.index(a.tobytes())
    data[pos] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="zip member 'archive/data/0' is corrupt.*CRC"):
        read_state_dict(path)


def test_truncated_torch_file(tmp_path):
    path = _torch_file(tmp_path, _sample_arrays())
    data = path.read_bytes()
    for cut in (len(data) // 3, len(data) - 30, 10):
        path.write_bytes(data[:cut])
        with pytest.raises(ValueError, match="cannot read a state_dict"):
            read_state_dict(path)


def test_torchscript_archive_refused(tmp_path):
    path = write_torch_zip(tmp_path / "m.pt", state_dict_pickle([]), {})
    with zipfile.ZipFile(path, "a") as zf:
        zf.writestr("archive/code/__torch__/m.py", "def forward(self, x): ...")
        zf.writestr("archive/constants.pkl", PROTO2 + EMPTY_TUPLE + STOP)
    with pytest.raises(ValueError, match="TorchScript"):
        read_state_dict(path)


def test_zip_with_other_members_or_empty(tmp_path):
    path = tmp_path / "x.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("readme.txt", "hello")
    with pytest.raises(ValueError, match="neither a PyTorch file"):
        read_state_dict(path)
    with zipfile.ZipFile(path, "w"):
        pass
    with pytest.raises(ValueError, match="empty zip"):
        read_state_dict(path)


# --------------------------------------------------------------------- detection, bad paths


def _legacy_file(path, main_pickle, storages, keys=None, little=True):
    """torch's legacy format: magic, version, sys_info, the state_dict, the sorted storage
    keys, then each storage as an int64 element count and its bytes."""
    order = "<" if little else ">"
    parts = [
        pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2),
        pickle.dumps(1001, protocol=2),
        pickle.dumps(
            {
                "protocol_version": 1001,
                "little_endian": little,
                "type_sizes": {"short": 2, "int": 4, "long": 4},
            },
            protocol=2,
        ),
        main_pickle,
        pickle.dumps(sorted(storages) if keys is None else keys, protocol=2),
    ]
    for key in sorted(storages):
        a = storages[key]
        parts.append(
            np.array([a.size], dtype=order + "i8").tobytes()
            + a.astype(a.dtype.newbyteorder(order)).tobytes()
        )
    path.write_bytes(b"".join(parts))
    return path


def _legacy_pair(key, stype, skey, numel, offset, size, stride):
    ref = (
        tup(prim("storage"), glob("torch", stype), prim(skey), prim("cpu"), prim(numel), b"N")
        + b"Q"
    )
    return key, torch_tensor(ref, offset, size, stride)


@pytest.mark.parametrize("little", [True, False])
def test_legacy_torch_format(tmp_path, little):
    w = RNG.standard_normal((3, 4)).astype(np.float32)
    n = np.array([7], dtype=np.int64)
    h = RNG.standard_normal(5).astype(np.float16)
    main = state_dict_pickle(
        [
            _legacy_pair("w", "FloatStorage", "140", 12, 0, (4, 3), (1, 4)),
            _legacy_pair("n", "LongStorage", "7", 1, 0, (), ()),
            _legacy_pair("h", "HalfStorage", "99", 5, 1, (2,), (2,)),
            _legacy_pair("w_row", "FloatStorage", "140", 12, 4, (4,), (1,)),
        ]
    )
    path = _legacy_file(
        tmp_path / "old.pth", main, {"140": w.ravel(), "7": n, "99": h}, little=little
    )
    with pytest.warns(UserWarning, match="1 float16"):
        got = read_state_dict(path)
    _assert_same(got, {"w": w.T, "n": np.array(7), "h": h[1::2].astype(np.float32), "w_row": w[1]})


def test_legacy_torch_format_malformed(tmp_path):
    w = np.arange(4, dtype=np.float32)
    main = state_dict_pickle([_legacy_pair("w", "FloatStorage", "1", 4, 0, (4,), (1,))])
    path = _legacy_file(tmp_path / "old.pth", main, {"1": w})
    data = path.read_bytes()
    for cut, match in (
        (len(data) - 3, "truncated"),
        (len(data) - 16, "truncated"),
        (len(data) - 20, "missing"),
        (60, "malformed or truncated"),
    ):
        path.write_bytes(data[:cut])
        with pytest.raises(ValueError, match=match):
            read_state_dict(path)
    _legacy_file(path, main, {"1": w}, keys=["1", "2"])
    with pytest.raises(ValueError, match="storage keys does not match"):
        read_state_dict(path)
    _legacy_file(path, main, {"1": w[:3]})
    with pytest.raises(ValueError, match="holds 3 elements, its reference says 4"):
        read_state_dict(path)
    evil = state_dict_pickle([("w", call(glob("os", "system"), prim("echo pwned")))])
    _legacy_file(path, evil, {})
    with pytest.raises(ValueError, match=r"'os\.system'"):
        read_state_dict(path)
    path.write_bytes(
        pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2)
        + pickle.dumps(1001, protocol=2)
        + pickle.dumps(_Evil("x"), protocol=2)
    )
    with pytest.raises(ValueError, match="only plain data"):
        read_state_dict(path)
    view = state_dict_pickle(
        [
            (
                "w",
                torch_tensor(
                    tup(
                        prim("storage"),
                        glob("torch", "FloatStorage"),
                        prim("1"),
                        prim("cpu"),
                        prim(4),
                        prim(("0", 0, 16)),
                    )
                    + b"Q",
                    0,
                    (4,),
                    (1,),
                ),
            )
        ]
    )
    _legacy_file(path, view, {"1": w})
    with pytest.raises(ValueError, match="storage view"):
        read_state_dict(path)


@pytest.mark.parametrize(
    "content",
    [b"", b"hello world", b"\x93NUMPY" + b"\0" * 50, pickle.dumps({"a": 1}), b"\xff" * 100],
)
def test_unknown_content(tmp_path, content):
    path = tmp_path / "f.bin"
    path.write_bytes(content)
    with pytest.raises(ValueError, match="neither a PyTorch zip file"):
        read_state_dict(path)


def test_exported():
    assert cx.read_state_dict is read_state_dict and "read_state_dict" in cx.__all__


def test_bad_path_arguments(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_state_dict(tmp_path / "missing.pth")
    with pytest.raises(TypeError, match="path must be"):
        read_state_dict(3)
    with pytest.raises(ValueError, match="not a regular file"):
        read_state_dict(tmp_path)


# -------------------------------------------------------------------------------- safetensors


def test_safetensors_by_hand(tmp_path):
    arrays = {k: v for k, v in _sample_arrays().items()}
    arrays["f16"] = RNG.standard_normal((2, 2)).astype(np.float16)
    b32, b16 = bfloat16_bits(RNG.standard_normal((3, 2)))
    tensors = dict(arrays, bf16=("BF16", [3, 2], b16.tobytes()))
    path = write_safetensors(tmp_path / "m.safetensors", tensors, metadata={"format": "pt"}, pad=5)
    with pytest.warns(UserWarning, match="2 float16/bfloat16"):
        got = read_state_dict(path)
    expected = dict(arrays, f16=arrays["f16"].astype(np.float32), bf16=b32)
    _assert_same(got, expected)


def test_safetensors_package_file(tmp_path):
    st = pytest.importorskip("safetensors.numpy")
    arrays = _sample_arrays()
    del arrays["empty"]  # older safetensors refuse empty tensors
    path = tmp_path / "m.safetensors"
    st.save_file(arrays, str(path), metadata={"a": "b"})
    got = read_state_dict(path)
    assert set(got) == set(arrays)
    _assert_same({k: got[k] for k in arrays}, arrays)


def _entry(dtype="F32", shape=(2,), offsets=(0, 8)):
    return {"dtype": dtype, "shape": list(shape), "data_offsets": list(offsets)}


@pytest.mark.parametrize(
    "header,match",
    [
        (b'{"a": ', "not valid JSON"),
        (b'{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "a": {}}', "twice"),
        (
            b'{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "\xff": 1}',
            "not valid JSON",
        ),
        ({"a": _entry(dtype="C64")}, "dtype 'C64'"),
        ({"a": _entry(dtype="F8_E4M3")}, "supported: F64"),
        ({"a": _entry(shape=(-2,))}, "invalid shape"),
        ({"a": _entry(shape=(2.0,))}, "invalid shape"),
        ({"a": _entry(shape=(True, 2))}, "invalid shape"),
        ({"a": _entry(offsets=(0, 12))}, "outside"),
        ({"a": _entry(offsets=(4, 0))}, "outside"),
        ({"a": _entry(offsets=(-8, 0))}, "outside"),
        ({"a": _entry(shape=(3,))}, "needs 12 bytes"),
        ({"a": _entry(shape=(2**40, 2**40))}, "needs"),
        ({"a": {"dtype": "F32", "shape": [2]}}, "dtype, shape and data_offsets"),
        ({"a": [1]}, "dtype, shape and data_offsets"),
        (
            {"a": _entry(shape=(1,), offsets=(0, 4)), "b": _entry(shape=(1,), offsets=(0, 4))},
            "overlapping or a hole",
        ),
        ({"a": _entry(shape=(1,), offsets=(4, 8))}, "overlapping or a hole"),
        ({"a": _entry(shape=(1,), offsets=(0, 4))}, "cover 4 bytes of data but the file holds 8"),
        ({"a": _entry(), "__metadata__": {"x": 1}}, "__metadata__"),
    ],
)
def test_safetensors_malformed_header(tmp_path, header, match):
    if isinstance(header, dict):
        header = __import__("json").dumps(header).encode()
    path = tmp_path / "m.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * 8)
    with pytest.raises(ValueError, match=match):
        read_state_dict(path)


def test_safetensors_header_length_bounds(tmp_path):
    path = tmp_path / "m.safetensors"
    # a header length beyond the file: not taken for safetensors at all
    path.write_bytes(struct.pack("<Q", 2**40) + b'{"a": 1}')
    with pytest.raises(ValueError, match="neither"):
        read_state_dict(path)
    from convext.state_dict import _safetensors as sd_module

    path.write_bytes(struct.pack("<Q", 20) + b"{}" + b" " * 18)
    assert read_state_dict(path) == {}
    old = sd_module._MAX_SAFETENSORS_HEADER
    sd_module._MAX_SAFETENSORS_HEADER = 10
    try:
        with pytest.raises(ValueError, match="more than 10"):
            read_state_dict(path)
    finally:
        sd_module._MAX_SAFETENSORS_HEADER = old


def test_safetensors_truncated(tmp_path):
    path = write_safetensors(tmp_path / "m.safetensors", {"a": np.arange(10, dtype=np.float32)})
    data = path.read_bytes()
    path.write_bytes(data[:-4])
    with pytest.raises(ValueError, match="outside"):
        read_state_dict(path)


# ----------------------------------------------------------------------------- convext .npz


def test_convext_model_file(tmp_path):
    model = L.Sequential(
        L.Conv2D(1, 3, 3, rng=0), L.BatchNorm2D(3), L.Flatten(), L.Dense(3 * 4 * 4, 2, rng=1)
    )
    model(np.ones((2, 1, 6, 6), dtype=np.float32))
    path = tmp_path / "m.npz"
    model.save(path)
    _assert_same(read_state_dict(path), model.state_dict())


def test_plain_npz_fortran_bigendian_compressed(tmp_path):
    a = np.asfortranarray(RNG.standard_normal((3, 4)))
    b = np.arange(5, dtype=">i4")
    h = np.arange(3, dtype=np.float16)
    path = tmp_path / "x.npz"
    np.savez_compressed(path, a=a, b=b, h=h)
    with pytest.warns(UserWarning, match="1 float16"):
        got = read_state_dict(path)
    _assert_same(
        got, {"a": np.ascontiguousarray(a), "b": b.astype(np.int32), "h": h.astype(np.float32)}
    )


def test_npz_object_and_string_entries_refused(tmp_path):
    path = tmp_path / "x.npz"
    np.savez(path, a=np.array([{"x": 1}], dtype=object))
    with pytest.raises(ValueError, match="not a numeric type"):
        read_state_dict(path)
    np.savez(path, a=np.array("text"))
    with pytest.raises(ValueError, match="not a numeric type"):
        read_state_dict(path)


@pytest.mark.parametrize(
    "shape,match",
    [((9,), "declares shape"), ((3,), "declares shape"), ((2**40, 2**40), "declares shape")],
)
def test_npz_forged_header_shape(tmp_path, shape, match):
    import io

    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.zeros(4))
    old, new = b"(4,), }", repr(shape).encode() + b", }"
    grow = len(new) - len(old)  # taken from the padding, so the header keeps its length
    npy = buf.getvalue().replace(old + b" " * max(grow, 0), new + b" " * max(-grow, 0))
    assert npy.index(b"\n") == 127
    path = tmp_path / "x.npz"
    with zipfile.ZipFile(path, "w") as zf:  # a valid CRC over the forged header
        zf.writestr("a.npy", npy)
    with pytest.raises(ValueError, match=match):
        read_state_dict(path)


def test_npz_forged_header_length_refused_before_reading_it(tmp_path, monkeypatch):
    """A .npy version 2.0 header declares its own length (up to 4 GiB): read from the member
    and decoded before numpy checks it, a 1 MB file of deflated spaces took 2 GB. Only the
    archive's header bound is read now (_archive._header, as for model files)."""
    path = tmp_path / "x.npz"
    declared = 50 << 20
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        with zf.open("a.npy", "w", force_zip64=True) as m:
            m.write(b"\x93NUMPY\x02\x00" + struct.pack("<I", declared))
            for _ in range(declared >> 20):
                m.write(b" " * (1 << 20))
    assert os.path.getsize(path) < declared // 100
    read = []
    real_read = zipfile.ZipExtFile.read

    def counted(self, n=-1):
        data = real_read(self, n)
        read.append(len(data))
        return data

    monkeypatch.setattr(zipfile.ZipExtFile, "read", counted)
    with pytest.raises(ValueError, match="'a' is not a valid .npy array"):
        read_state_dict(path)
    assert sum(read) < 1 << 20, f"{sum(read)} bytes decompressed"


# ------------------------------------------------------------------------- torch never imported


def test_never_imports_torch(tmp_path):
    arrays = _sample_arrays()
    torch_path = _torch_file(tmp_path, arrays)
    st_path = write_safetensors(tmp_path / "m.safetensors", arrays)
    evil = _pickle_file(tmp_path, pickle.dumps(_Evil(tmp_path / "ran"), protocol=2))
    report = read_without_torch(tmp_path, torch_path, st_path, evil)
    for p in (torch_path, st_path):
        _assert_same(report[str(p)]["arrays"], arrays)
    assert "system'" in report[str(evil)]["error"]
    assert not (tmp_path / "ran").exists()


# ------------------------------------------------- pickles that are small but costly to walk


def _nested_key_pickle(inner):
    """A state_dict {key: 0} whose key is the tuple that ``inner`` (pickle opcodes) builds."""
    return PROTO2 + EMPTY_DICT + inner + prim(0) + b"s" + STOP


@pytest.mark.parametrize(
    "inner, match",
    [
        # ((((...)))) a million deep: CPython's tuple hash recursed without a limit (SIGSEGV)
        (EMPTY_TUPLE + b"\x85" * 1_000_000, "nested more than 32 deep"),
        # t[i+1] = (t[i], t[i]) through the memo, 100 times: hashing it takes 2**100 steps
        (
            EMPTY_TUPLE + b"q\x00" + b"h\x00h\x00\x86q\x00" * 100 + b"h\x00",
            "more than .* parts",
        ),
    ],
    ids=["deep", "shared"],
)
def test_nested_and_shared_structures_refused_before_unpickling(tmp_path, inner, match):
    with pytest.raises(ValueError, match=match):
        read_state_dict(_pickle_file(tmp_path, _nested_key_pickle(inner)))


def test_opcodes_a_state_dict_never_holds_are_refused(tmp_path):
    """2**21 EMPTY_SET opcodes deflate to 2 kB and made 470 MB of sets before the opcode count
    refused them; a pickle may now hold a few opcodes per byte of its compressed member."""
    data = PROTO2 + b"\x8f" * 1000 + STOP
    with pytest.raises(ValueError, match="opcode EMPTY_SET"):
        read_state_dict(_pickle_file(tmp_path, data))
    lists = PROTO2 + b"]" * (2**20) + b"0" * (2**20 - 1) + STOP
    path = tmp_path / "lists.pth"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("archive/data.pkl", lists)
        zf.writestr("archive/byteorder", "little")
    assert path.stat().st_size < 20_000
    with pytest.raises(ValueError, match=r"more than \d+ opcodes"):
        read_state_dict(path)


def test_build_on_a_rebuild_function_changes_nothing(tmp_path):
    from convext.state_dict import _torch as sd_module

    before = dict(vars(sd_module._StateDictUnpickler._rebuild_tensor_v2))
    data = (
        PROTO2
        + ordered_dict(
            [("w", glob("torch._utils", "_rebuild_tensor_v2") + prim({"leak": "x"}) + BUILD)]
        )
        + STOP
    )
    with pytest.raises(ValueError, match="cannot read a state_dict"):
        read_state_dict(_pickle_file(tmp_path, data))
    assert dict(vars(sd_module._StateDictUnpickler._rebuild_tensor_v2)) == before


@pytest.mark.parametrize("method", [zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA])
def test_zip_members_other_than_stored_or_deflated_are_refused(tmp_path, method):
    """zipfile inflates a bzip2 (lzma) member a block at a time: a 1 kB file could take 2 GiB
    before the declared size was checked."""
    arrays = {"w": np.arange(4, dtype=np.float32)}
    npz = tmp_path / "w.npz"
    np.savez(npz, **arrays)
    for src, name in ((npz, "w.npz"), (_torch_file(tmp_path, arrays), "w.pth")):
        dst = tmp_path / f"re-{name}"
        with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", method) as zout:
            for info in zin.infolist():
                zout.writestr(info.filename, zin.read(info))
        with pytest.raises(ValueError, match=f"compression method {method}"):
            read_state_dict(dst)


def test_load_state_dict_values_out_of_range_are_refused_before_any_copy():
    model = L.Sequential(L.Conv2D(2, 2, 1), L.BatchNorm2D(2))
    before = {k: v.copy() for k, v in model.state_dict().items()}
    state = {k: v.astype(np.float64) if v.dtype.kind == "f" else v for k, v in before.items()}
    state["0.bias"] = np.array([1e39, 0.0])  # finite in float64, infinite in float32
    with pytest.raises(ValueError, match=r"'0.bias' holds 1 finite value.*float32"):
        model.load_state_dict(state)
    state = dict(before)
    state["1.num_batches_tracked"] = np.array(2**64 - 5, np.uint64)  # -5 after a same_kind cast
    with pytest.raises(ValueError, match="'1.num_batches_tracked' holds integers"):
        model.load_state_dict(state)
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v, before[k])
    state["1.num_batches_tracked"] = np.array(7, np.uint64)
    model.load_state_dict(state)
    assert model.state_dict()["1.num_batches_tracked"] == 7
