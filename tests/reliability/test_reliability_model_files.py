"""Model files are untrusted input (issue 9): convext.load refuses hostile files quickly and in
little memory, never casts stored arrays, and save is atomic.

Each hostile file is built here, in tmp_path. "Quickly and in little memory" is measured: the
wall time of ``load`` and its tracemalloc peak (numpy reports its array allocations to
tracemalloc), and for the two largest declared sizes the peak RSS of a fresh process.
"""

import io
import json
import os
import struct
import subprocess
import sys
import textwrap
import time
import tracemalloc
import zipfile
import zlib

import numpy as np
import pytest
from numpy.lib import format as npformat

import convext as cx
from convext import layers as L
from convext import serialization as ser

ARCH = "__convext_model__.npy"
GiB = 1 << 30


def _arch_text(model_spec):
    return json.dumps({"format": "convext-model", "version": 1, "model": model_spec})


def _npy(a):
    f = io.BytesIO()
    npformat.write_array(f, np.asanyarray(a), allow_pickle=False)
    return f.getvalue()


def _npy_header(shape, descr="<f4", fortran=False):
    f = io.BytesIO()
    npformat.write_array_header_1_0(
        f, {"descr": descr, "fortran_order": fortran, "shape": tuple(shape)}
    )
    return f.getvalue()


def _write_zip(path, members, compression=zipfile.ZIP_STORED):
    """members: name -> bytes, written with zipfile."""
    with zipfile.ZipFile(path, "w", compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)


def _raw_zip(path, entries):
    """A zip written byte by byte, so that entries may lie: each entry is (name, stored bytes,
    method (0 stored, 8 deflated), crc, declared uncompressed size)."""
    out, central = bytearray(), bytearray()
    for name, data, method, crc, size in entries:
        n = name.encode()
        central += (
            struct.pack(
                "<IHHHHHHIIIHHHHHII",
                0x02014B50,
                20,
                20,
                0,
                method,
                0,
                0x21,
                crc,
                len(data),
                size,
                len(n),
                0,
                0,
                0,
                0,
                0,
                len(out),
            )
            + n
        )
        out += (
            struct.pack(
                "<IHHHHHIIIHH", 0x04034B50, 20, 0, method, 0, 0x21, crc, len(data), size, len(n), 0
            )
            + n
            + data
        )
    cd_offset = len(out)
    out += central + struct.pack(
        "<IHHHHIIH", 0x06054B50, 0, 0, len(entries), len(entries), len(central), cd_offset, 0
    )
    with open(path, "wb") as f:
        f.write(out)


def _zeros_bomb(prefix, n_zero_mib):
    """(deflate stream, crc) of ``prefix`` followed by n MiB of zeros, built in milliseconds:
    after a full flush the compressor restarts, so every 1 MiB block of zeros compresses to
    the same ~1 kB, and the block is repeated."""
    zero = bytes(1 << 20)
    co = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = co.compress(prefix) + co.flush(zlib.Z_FULL_FLUSH)
    block = co.compress(zero) + co.flush(zlib.Z_FULL_FLUSH)
    assert co.compress(zero) + co.flush(zlib.Z_FULL_FLUSH) == block
    tail = co.flush()
    crc = zlib.crc32(prefix)
    for _ in range(n_zero_mib):
        crc = zlib.crc32(zero, crc)
    return head + block * n_zero_mib + tail, crc


def _dense_spec(n_in, n_out):
    return {
        "type": "Dense",
        "config": {"in_features": n_in, "out_features": n_out, "bias": True, "dtype": "float32"},
    }


def _good_members(model):
    """name -> .npy bytes of a valid file for ``model``."""
    members = {ARCH: _npy(np.array(_arch_text(ser.layer_spec(model))))}
    members.update({k + ".npy": _npy(v) for k, v in model.state_dict().items()})
    return members


def _measured_load(path, match):
    """Load ``path`` expecting ValueError(match); return (seconds, tracemalloc peak bytes)."""
    tracemalloc.start()
    t = time.perf_counter()
    try:
        with pytest.raises(ValueError, match=match):
            cx.load(path)
        return time.perf_counter() - t, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _assert_cheap(path, match, seconds=1.0, peak=8 << 20):
    took, top = _measured_load(path, match)
    assert took < seconds, f"load took {took:.3f} s"
    assert top < peak, f"load peaked at {top / 2**20:.1f} MiB"
    return took, top


# -- the hostile files of the issue ------------------------------------------------------------
def test_architecture_without_weights_is_refused_before_building(tmp_path):
    # 792 bytes declaring Dense(50000, 50000): today builds and initialises 9.3 GB
    path = tmp_path / "big_dense.npz"
    _write_zip(path, {ARCH: _npy(np.array(_arch_text(_dense_spec(50000, 50000))))})
    assert path.stat().st_size < 1000
    _assert_cheap(path, r"missing keys \['bias', 'weight'\]")


def test_many_large_layers_without_weights_are_refused_before_building(tmp_path):
    # 200 x Dense(4000, 4000) in a few tens of kB: today 12.8 GB
    spec = {"type": "Sequential", "config": {"layers": [_dense_spec(4000, 4000)] * 200}}
    path = tmp_path / "many_dense.npz"
    _write_zip(path, {ARCH: _npy(np.array(_arch_text(spec)))}, zipfile.ZIP_DEFLATED)
    assert path.stat().st_size < 60_000
    _assert_cheap(path, r"missing keys \['0.bias', '0.weight', .*\] and 390 more")


def test_zip_bomb_under_an_unexpected_key(tmp_path):
    # 1 MB of deflate that expands to 1 GiB, next to a valid model
    model = L.Dense(3, 2, rng=0)
    members = _good_members(model)
    bomb, crc = _zeros_bomb(b"", 1024)
    path = tmp_path / "bomb.npz"
    _raw_zip(
        path,
        [(k, v, 0, zlib.crc32(v), len(v)) for k, v in members.items()]
        + [("junk.npy", bomb, 8, crc, GiB)],
    )
    assert path.stat().st_size < 1.2e6
    _assert_cheap(path, r"unexpected keys \['junk'\]")


def test_zip_bomb_under_an_expected_key(tmp_path):
    # the bomb sits where the weight goes, with a valid header for the shape the architecture
    # needs (16384 x 16384 float32 = 1 GiB): refused as a bomb before anything is allocated
    arch = _npy(np.array(_arch_text(_dense_spec(16384, 16384))))
    header = _npy_header((16384, 16384))
    bomb, crc = _zeros_bomb(header, 1024)
    bias = _npy(np.zeros(16384, np.float32))
    path = tmp_path / "bomb_weight.npz"
    _raw_zip(
        path,
        [
            (ARCH, arch, 0, zlib.crc32(arch), len(arch)),
            ("weight.npy", bomb, 8, crc, len(header) + GiB),
            ("bias.npy", bias, 0, zlib.crc32(bias), len(bias)),
        ],
    )
    _assert_cheap(path, "would expand")


def test_member_declaring_more_than_its_header_is_refused(tmp_path):
    # the right header but a declared size of 1 GiB more: refused before decompressing
    model = L.Dense(3, 2, rng=0)
    members = _good_members(model)
    bomb, crc = _zeros_bomb(members["weight.npy"], 1024)
    size = len(members["weight.npy"]) + GiB
    path = tmp_path / "oversized.npz"
    _raw_zip(
        path,
        [(k, v, 0, zlib.crc32(v), len(v)) for k, v in members.items() if k != "weight.npy"]
        + [("weight.npy", bomb, 8, crc, size)],
    )
    _assert_cheap(path, f"'weight' declares {size} bytes")


def test_header_declaring_512_gb(tmp_path):
    # an .npy header declaring 2**37 float32 (512 GiB) under the key the model needs
    model = L.Dense(3, 2, rng=0)
    members = _good_members(model)
    members["weight.npy"] = _npy_header((2**19, 2**18)) + bytes(16)
    path = tmp_path / "huge_header.npz"
    _write_zip(path, members)
    _assert_cheap(path, r"'weight' has shape \(524288, 262144\), the architecture needs \(2, 3\)")

    # the same with an architecture that does need it: the declared member size gives it away
    members[ARCH] = _npy(np.array(_arch_text(_dense_spec(2**18, 2**19))))
    members["bias.npy"] = _npy(np.zeros(2**19, np.float32))
    _write_zip(path, members)
    need = len(_npy_header((2**19, 2**18))) + 2**39
    _assert_cheap(
        path,
        r"'weight' declares \d+ bytes; its header and shape "
        rf"\(524288, 262144\) float32 make {need}",
    )

    # a lone .npy file with that header
    lone = tmp_path / "huge.npy"
    lone.write_bytes(_npy_header((2**19, 2**18)) + bytes(16))
    _assert_cheap(lone, "single array, not an .npz")


_RSS_SCRIPT = textwrap.dedent("""
    import sys, time
    import convext

    def status(key):  # KiB
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith(key))

    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset the peak RSS (VmHWM) to the current RSS
    before = status("VmRSS")
    t = time.perf_counter()
    try:
        convext.load(sys.argv[1])
    except ValueError:
        pass
    else:
        raise SystemExit("loaded")
    took = time.perf_counter() - t
    print(took, (status("VmHWM") - before) * 1024)
""")


@pytest.mark.skipif(
    not os.path.exists("/proc/self/clear_refs"),
    reason="needs Linux's resettable peak RSS (/proc/self/clear_refs)",
)
def test_rss_of_loading_the_bomb_and_the_512_gb_header(tmp_path):
    bomb_path = tmp_path / "bomb.npz"
    arch = _npy(np.array(_arch_text(_dense_spec(16384, 16384))))
    header = _npy_header((16384, 16384))
    bomb, crc = _zeros_bomb(header, 1024)
    bias = _npy(np.zeros(16384, np.float32))
    _raw_zip(
        bomb_path,
        [
            (ARCH, arch, 0, zlib.crc32(arch), len(arch)),
            ("weight.npy", bomb, 8, crc, len(header) + GiB),
            ("bias.npy", bias, 0, zlib.crc32(bias), len(bias)),
        ],
    )
    header_path = tmp_path / "huge_header.npz"
    members = _good_members(L.Dense(3, 2, rng=0))
    members["weight.npy"] = _npy_header((2**19, 2**18)) + bytes(16)
    _write_zip(header_path, members)
    for path in (bomb_path, header_path):
        r = subprocess.run(
            [sys.executable, "-c", _RSS_SCRIPT, str(path)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert r.returncode == 0, r.stderr
        took, grew = map(float, r.stdout.split())
        assert took < 1.0, (path.name, took)
        assert grew < 16 << 20, (path.name, grew)  # peak RSS grew by less than 16 MiB


# -- stored arrays: float32/float64 as the layer, never cast -----------------------------------
@pytest.mark.parametrize(
    "bad, what",
    [
        (np.array([["1e30"] * 3] * 2), "strings"),
        (np.array([[b"1e30"] * 3] * 2), "bytes"),
        (np.zeros((2, 3), "datetime64[s]"), "datetimes"),
        (np.zeros((2, 3), "timedelta64[s]"), "timedeltas"),
        (np.zeros((2, 3), np.complex64), "complex"),
        (np.zeros((2, 3), [("a", np.float32)]), "structured"),
        (np.zeros((2, 3), np.float16), "float16"),
        (np.zeros((2, 3), np.float64), "float64"),  # the layer is float32: not cast either
        (np.zeros((2, 3), np.int32), "int32"),
        (np.zeros((2, 3), bool), "booleans"),
    ],
)
def test_stored_dtype_must_be_the_layers(tmp_path, bad, what):
    members = _good_members(L.Dense(3, 2, rng=0))
    members["weight.npy"] = _npy(bad)
    path = tmp_path / "dtype.npz"
    _write_zip(path, members)
    with pytest.raises(ValueError, match=f"'weight' is stored as .*{what}.* needs float32"):
        cx.load(path)


def test_object_arrays_are_refused_without_unpickling(tmp_path):
    members = _good_members(L.Dense(3, 2, rng=0))
    f = io.BytesIO()
    npformat.write_array(f, np.array([[1.0] * 3] * 2, dtype=object), allow_pickle=True)
    members["weight.npy"] = f.getvalue()
    path = tmp_path / "object.npz"
    _write_zip(path, members)
    with pytest.raises(ValueError, match="'weight' is stored as .*objects"):
        cx.load(path)


def test_num_batches_tracked_must_be_int64(tmp_path):
    model = L.BatchNorm2D(3)
    members = _good_members(model)
    members["num_batches_tracked.npy"] = _npy(np.array(2.0))
    path = tmp_path / "bn.npz"
    _write_zip(path, members)
    with pytest.raises(ValueError, match="'num_batches_tracked' is stored as <f8.* needs int64"):
        cx.load(path)


def test_byte_order_and_fortran_order_load_exactly(tmp_path):
    model = L.Sequential(L.Conv2D(2, 3, (3, 2), rng=0, dtype=np.float64), L.BatchNorm2D(3))
    members = _good_members(model)
    sd = model.state_dict()
    members["0.weight.npy"] = _npy(np.asfortranarray(sd["0.weight"]))
    members["0.bias.npy"] = _npy(sd["0.bias"].astype(">f8"))
    members["1.num_batches_tracked.npy"] = _npy(np.array(7, ">i8"))
    path = tmp_path / "orders.npz"
    _write_zip(path, members, zipfile.ZIP_DEFLATED)
    loaded = cx.load(path)
    sd2 = loaded.state_dict()
    sd["1.num_batches_tracked"][()] = 7
    for k in sd:
        assert sd2[k].dtype == sd[k].dtype and sd2[k].dtype.isnative
        assert sd2[k].flags.c_contiguous
        np.testing.assert_array_equal(sd2[k], sd[k])


# -- the architecture --------------------------------------------------------------------------
def _arch_only(tmp_path, text):
    path = tmp_path / "arch.npz"
    _write_zip(path, {ARCH: _npy(np.array(text))})
    return path


@pytest.mark.parametrize(
    "layer, config, match",
    [
        ("Conv2D", dict(in_channels=1, out_channels=1, kernel_size=2**62), "kernel_size must be"),
        (
            "Conv2D",
            dict(in_channels=1, out_channels=1, kernel_size=3, stride=[1, 2**62]),
            "stride must be",
        ),
        (
            "Conv2D",
            dict(in_channels=1, out_channels=1, kernel_size=3, padding=2**40 + 1),
            "padding must be",
        ),
        (
            "Conv2D",
            dict(in_channels=1, out_channels=1, kernel_size=3, dilation=-1),
            "dilation must be",
        ),
        (
            "Conv2D",
            dict(in_channels=2, out_channels=2, kernel_size=3, groups=3),
            "groups=3 must divide",
        ),  # the constructor's own check
        (
            "Conv2D",
            dict(in_channels=1, out_channels=1, kernel_size=3, stride=2, padding="same"),
            "padding='same' is not supported",
        ),
        ("Conv2D", dict(in_channels=1, out_channels=1, kernel_size=3, bias="yes"), "bias must be"),
        ("Conv2D", dict(in_channels=1, out_channels=1, kernel_size=[3, [3]]), "kernel_size must"),
        ("Conv2D", dict(in_channels=1.5, out_channels=1, kernel_size=3), "in_channels must be"),
        ("Conv2D", dict(in_channels=True, out_channels=1, kernel_size=3), "in_channels must be"),
        (
            "Conv2D",
            dict(in_channels=1, out_channels=1, kernel_size=3, dtype="object"),
            "dtype must be",
        ),
        ("Conv2D", dict(in_channels=1, out_channels=1, kernel_size=3, rng=0), "unknown field"),
        ("Dense", dict(in_features=2**40 + 1, out_features=1), "in_features must be"),
        ("Dense", dict(in_features=2), "missing 1 required positional argument"),
        ("MaxPool2D", dict(kernel_size=2**62), "kernel_size must be"),
        ("MaxPool2D", dict(kernel_size={"a": 1}), "kernel_size must be"),
        ("MaxPool2D", dict(kernel_size=2, ceil_mode="no"), "ceil_mode must be"),
        ("AvgPool2D", dict(kernel_size=2, divisor_override=0), "divisor_override must be"),
        ("AvgPool2D", dict(kernel_size=2, padding=[1, 2**63]), "padding must be"),
        ("LPPool2D", dict(norm_type=-2, kernel_size=2), "norm_type must be"),
        ("LPPool2D", dict(norm_type="2", kernel_size=2), "norm_type must be"),
        ("BatchNorm2D", dict(num_features=3, eps=-1.0), "eps must be"),
        ("BatchNorm2D", dict(num_features=3, momentum="0.1"), "momentum must be"),
        ("Dropout", dict(p=1.5), "p must be"),
        ("Flatten", dict(start_dim="1"), "start_dim must be"),
        ("Softmax", dict(axis=10**6), "axis must be"),
        ("LeakyReLU", dict(negative_slope=1e400), "negative_slope must be"),  # json: Infinity
    ],
)
def test_invalid_config_fields(tmp_path, layer, config, match):
    path = _arch_only(tmp_path, _arch_text({"type": layer, "config": config}))
    _assert_cheap(path, f"invalid configuration for layer {layer}.*{match}")


def test_nan_and_unknown_types_and_extra_keys(tmp_path):
    text = _arch_text(_dense_spec(2, 2)).replace('"in_features": 2', '"in_features": NaN')
    _assert_cheap(_arch_only(tmp_path, text), "NaN")
    _assert_cheap(
        _arch_only(tmp_path, _arch_text({"type": "Layer", "config": {}})),
        "unknown layer type 'Layer'",
    )
    _assert_cheap(
        _arch_only(tmp_path, _arch_text({"type": "__import__", "config": {}})), "unknown layer type"
    )
    _assert_cheap(
        _arch_only(tmp_path, _arch_text({"type": "ReLU", "config": {}, "code": "x"})),
        "invalid layer description",
    )
    _assert_cheap(
        _arch_only(tmp_path, _arch_text({"type": "Sequential", "config": {"layers": {}}})),
        "invalid configuration for layer Sequential",
    )
    _assert_cheap(
        _arch_only(
            tmp_path,
            json.dumps({"format": "convext-model", "version": True, "model": _dense_spec(2, 2)}),
        ),
        "version True",
    )


def test_deep_nesting_is_a_value_error(tmp_path):
    # bracket nesting far past the recursion limit: counted before json parses it
    deep = (
        '{"format": "convext-model", "version": 1, "model": ' + "[" * 200_000 + "]" * 200_000 + "}"
    )
    _assert_cheap(_arch_only(tmp_path, deep), "nests 200001 brackets deep")
    # brackets inside strings do not count
    text = _arch_text({"type": "ReLU", "config": {}})[:-1] + ', "note": "' + "[" * 500 + '"}'
    loaded = cx.load(_arch_only(tmp_path, text))
    assert isinstance(loaded, L.ReLU)
    # Sequentials nested past MAX_NESTING
    spec = {"type": "ReLU", "config": {}}
    for _ in range(ser.MAX_NESTING + 1):
        spec = {"type": "Sequential", "config": {"layers": [spec]}}
    _assert_cheap(_arch_only(tmp_path, _arch_text(spec)), "nests layers more than")
    # and through the public layer_from_spec, without any file, far past the recursion limit
    for _ in range(3000):
        spec = {"type": "Sequential", "config": {"layers": [spec]}}
    with pytest.raises(ValueError, match="nests layers more than"):
        ser.layer_from_spec(spec)


def test_nesting_at_the_limit_loads(tmp_path):
    spec = {"type": "ReLU", "config": {}}
    for _ in range(ser.MAX_NESTING - 1):
        spec = {"type": "Sequential", "config": {"layers": [spec]}}
    path = tmp_path / "nested.npz"
    _write_zip(path, {ARCH: _npy(np.array(_arch_text(spec)))})
    assert isinstance(cx.load(path), L.Sequential)


def test_oversized_architecture_is_refused_from_its_header(tmp_path):
    # a header declaring a 400 MB unicode scalar: refused before reading it
    path = tmp_path / "big_arch.npz"
    _write_zip(path, {ARCH: _npy_header((), "<U100000000")})
    _assert_cheap(path, "not a JSON string of at most")
    # a JSON text just over the limit
    text = _arch_text({"type": "ReLU", "config": {}})
    text = text[:-1] + ', "pad": "' + "x" * (ser.MAX_ARCH_CHARS - len(text)) + '"}'
    assert len(text) > ser.MAX_ARCH_CHARS
    _assert_cheap(_arch_only(tmp_path, text), "not a JSON string of at most 1048576 characters")


def test_archive_tricks(tmp_path):
    members = _good_members(L.Dense(3, 2, rng=0))
    entries = [(k, v, 0, zlib.crc32(v), len(v)) for k, v in members.items()]
    path = tmp_path / "dup.npz"
    _raw_zip(path, entries + [entries[1]])
    _assert_cheap(path, "twice")
    # a stored member whose declared size is not its stored size
    w = members["weight.npy"]
    _raw_zip(
        path,
        [e for e in entries if e[0] != "weight.npy"]
        + [("weight.npy", w, 0, zlib.crc32(w[:-4]), len(w) - 4)],
    )
    _assert_cheap(path, r"'weight.npy' is stored uncompressed in \d+ bytes but declares")
    # corrupted data: the CRC check fails while filling
    bad = w[:-4] + b"\xff\xff\xff\xff"
    _raw_zip(
        path,
        [e for e in entries if e[0] != "weight.npy"]
        + [("weight.npy", bad, 0, zlib.crc32(w), len(w))],
    )
    _assert_cheap(path, "not a valid .npz file")
    # bzip2 members are not read
    with zipfile.ZipFile(path, "w", zipfile.ZIP_BZIP2) as zf:
        for k, v in members.items():
            zf.writestr(k, v)
    _assert_cheap(path, "compression method 12")


# -- round trips -------------------------------------------------------------------------------
def _every_layer_model(dtype):
    return L.Sequential(
        L.Conv2D(1, 4, 3, padding="same", rng=0, dtype=dtype),
        L.BatchNorm2D(4, dtype=dtype),
        L.LeakyReLU(0.1),
        L.MaxPool2D(2, ceil_mode=True),
        L.Conv2D(4, 6, (3, 2), stride=2, groups=2, bias=False, rng=1, dtype=dtype),
        L.ELU(),
        L.AvgPool2D(2, padding=1, count_include_pad=False),
        L.LPPool2D(float("inf"), 1),
        L.Dropout(0.25),
        L.GlobalAvgPool2D(),
        L.Flatten(),
        L.Dense(6, 5, dtype=dtype, rng=2),
        L.Sigmoid(),
        L.Sequential(L.Dense(5, 3, rng=3, dtype=dtype), L.Tanh()),
        L.LogSoftmax(1),
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_round_trip_is_exact(tmp_path, dtype):
    model = _every_layer_model(dtype)
    x = np.random.default_rng(0).standard_normal((3, 1, 12, 12)).astype(dtype)
    model(x)
    model(x)  # running statistics and num_batches_tracked = 2
    model.eval()
    path = tmp_path / "ckpt"
    model.save(path)
    loaded = cx.load(path)
    assert repr(loaded) == repr(model)
    sd, sd2 = model.state_dict(), loaded.state_dict()
    assert list(sd) == list(sd2) and sd2["1.num_batches_tracked"] == 2
    for k in sd:
        assert sd2[k].dtype == sd[k].dtype
        np.testing.assert_array_equal(sd2[k], sd[k])
    loaded.eval()
    np.testing.assert_array_equal(loaded(x), model(x))
    # the loaded layers own ordinary, writable, zeroed gradient arrays
    assert all(g.flags.writeable and not g.any() for g in loaded.grads().values())


def test_loading_does_not_draw_random_weights(tmp_path, monkeypatch):
    model = L.Sequential(L.Conv2D(2, 3, 3, rng=0), L.Dense(4, 2, rng=1))
    path = tmp_path / "m.npz"
    model.save(path)

    def no_init(*a, **k):
        raise AssertionError("reset_parameters called while loading")

    monkeypatch.setattr(L.Conv2D, "reset_parameters", no_init)
    monkeypatch.setattr(L.Dense, "reset_parameters", no_init)
    cx.load(path)


# -- file names and atomic save ----------------------------------------------------------------
def test_save_and_load_use_the_same_name(tmp_path):
    model = L.Dense(3, 2, rng=0)
    for name in ("ckpt", "ckpt.npz", "weights.bin"):
        model.save(tmp_path / name)
        assert (tmp_path / name).is_file()
        np.testing.assert_array_equal(cx.load(tmp_path / name).weight, model.weight)
        np.testing.assert_array_equal(cx.load(str(tmp_path / name)).weight, model.weight)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt", "ckpt.npz", "weights.bin"]
    # a file saved under a name with .npz is not found without it, and the error says so
    model.save(tmp_path / "other.npz")
    with pytest.raises(FileNotFoundError, match="other.npz"):
        cx.load(tmp_path / "other")


def test_saving_onto_a_folder_is_a_value_error_and_leaves_it_alone(tmp_path):
    from convext._checkpoint import save_checkpoint
    from convext.optim import SGD

    model = L.Dense(3, 2, rng=0)
    folder = tmp_path / "weights"
    folder.mkdir()
    (folder / "inside.txt").write_text("kept")
    with pytest.raises(ValueError, match="is a folder"):
        model.save(folder)
    with pytest.raises(ValueError, match="is a folder"):
        save_checkpoint(folder, model, SGD(model, lr=0.1))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["weights"]  # no temporary file left
    assert (folder / "inside.txt").read_text() == "kept"


def test_save_to_a_file_object_and_load_from_one():
    model = L.Dense(3, 2, rng=0)
    f = io.BytesIO()
    model.save(f)
    f.seek(0)
    np.testing.assert_array_equal(cx.load(f).weight, model.weight)


def _leftovers(directory):
    return sorted(p.name for p in directory.iterdir())


@pytest.mark.parametrize("error", [OSError(28, "No space left on device"), KeyboardInterrupt])
def test_failed_save_keeps_the_old_file(tmp_path, monkeypatch, error):
    old = L.Dense(3, 2, rng=0)
    path = tmp_path / "model.npz"
    old.save(path)
    before = path.read_bytes()
    real = ser._write_npz

    def fail_half_way(f, arrays):
        real(f, dict(list(arrays.items())[:2]))  # some bytes reach the temporary file
        f.flush()
        assert f.tell() > 0
        raise error

    monkeypatch.setattr(cx._archive, "_write_npz", fail_half_way)  # where save writes
    with pytest.raises(type(error) if isinstance(error, BaseException) else error):
        L.Dense(3, 2, rng=1).save(path)
    assert path.read_bytes() == before
    assert _leftovers(tmp_path) == ["model.npz"]
    monkeypatch.undo()
    np.testing.assert_array_equal(cx.load(path).weight, old.weight)


def test_failed_rename_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "model.npz"
    L.Dense(3, 2, rng=0).save(path)
    before = path.read_bytes()

    def no_replace(src, dst):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "replace", no_replace)
    with pytest.raises(PermissionError):
        L.Dense(3, 2, rng=1).save(path)
    assert path.read_bytes() == before
    assert _leftovers(tmp_path) == ["model.npz"]


def test_save_syncs_before_replacing(tmp_path, monkeypatch):
    calls = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(
        os, "replace", lambda a, b: (calls.append("replace"), real_replace(a, b))[1]
    )
    L.Dense(3, 2, rng=0).save(tmp_path / "m.npz")
    assert calls[:2] == ["fsync", "replace"]
    assert _leftovers(tmp_path) == ["m.npz"]


def test_saved_file_has_the_usual_permissions(tmp_path):
    path = tmp_path / "m.npz"
    L.Dense(3, 2, rng=0).save(path)
    mask = os.umask(0)
    os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask
    os.chmod(path, 0o640)
    L.Dense(3, 2, rng=1).save(path)  # replacing keeps the existing file's mode
    assert path.stat().st_mode & 0o777 == 0o640


def test_save_refuses_what_load_would_refuse(tmp_path):
    model = L.Sequential(*[L.ReLU() for _ in range(ser.MAX_ARCH_CHARS // 30)])
    with pytest.raises(ValueError, match="characters, more than"):
        model.save(tmp_path / "m.npz")
    assert _leftovers(tmp_path) == []


def test_npy_v2_header_declaring_4_gib_of_header(tmp_path):
    # numpy's own reader reads a 2.0 header's declared length before checking it; here the
    # length field says 4 GiB and the member is a deflate bomb of 1 GiB of spaces
    members = _good_members(L.Dense(3, 2, rng=0))
    prefix = npformat.magic(2, 0) + struct.pack("<I", 2**32 - 1)
    zero = b" " * (1 << 20)
    co = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = co.compress(prefix) + co.flush(zlib.Z_FULL_FLUSH)
    block = co.compress(zero) + co.flush(zlib.Z_FULL_FLUSH)
    stream = head + block * 1024 + co.flush()
    crc = zlib.crc32(prefix)
    for _ in range(1024):
        crc = zlib.crc32(zero, crc)
    path = tmp_path / "v2.npz"
    _raw_zip(
        path,
        [(k, v, 0, zlib.crc32(v), len(v)) for k, v in members.items() if k != "weight.npy"]
        + [("weight.npy", stream, 8, crc, len(prefix) + GiB)],
    )
    _assert_cheap(path, "'weight' is not a valid .npy array")


def test_empty_and_odd_architecture_entries(tmp_path):
    for arch, match in [
        (np.array(""), "not valid JSON"),
        (np.array("null"), "unknown format"),
        (np.array(["{}"]), "not a JSON string"),
        (np.array(b"{}"), "not a JSON string"),
        (np.array(3.0), "not a JSON string"),
    ]:
        path = tmp_path / "odd.npz"
        _write_zip(path, {ARCH: _npy(arch)})
        _assert_cheap(path, match)


def test_save_refuses_a_config_load_would_refuse(tmp_path):
    with pytest.raises(ValueError, match="cannot save this model.*kernel_size must be"):
        L.Sequential(L.MaxPool2D(2**41)).save(tmp_path / "m")
    with pytest.raises(ValueError, match="cannot save this model.*nests layers"):
        model = L.ReLU()
        for _ in range(ser.MAX_NESTING):
            model = L.Sequential(model)
        model.save(tmp_path / "m")
    assert _leftovers(tmp_path) == []


def test_bytes_and_long_names(tmp_path):
    model = L.Dense(3, 2, rng=0)
    name = os.fsencode(tmp_path / "ckpt")
    model.save(name)
    np.testing.assert_array_equal(cx.load(name).weight, model.weight)
    long = tmp_path / ("m" * 250)
    model.save(long)
    np.testing.assert_array_equal(cx.load(long).weight, model.weight)
    assert _leftovers(tmp_path) == sorted(["ckpt", "m" * 250])


def test_stored_sizes_must_be_in_the_file(tmp_path):
    # the architecture needs 1 GiB and the headers say so, but the file holds a few bytes
    arch = _npy(np.array(_arch_text(_dense_spec(16384, 16384))))
    header = _npy_header((16384, 16384))
    bias = _npy(np.zeros(16384, np.float32))
    path = tmp_path / "short.npz"
    entries = [
        (ARCH, arch, 0, zlib.crc32(arch), len(arch)),
        ("bias.npy", bias, 0, zlib.crc32(bias), len(bias)),
    ]
    _raw_zip(path, entries + [("weight.npy", header, 0, 0, len(header) + GiB)])
    _assert_cheap(path, "stored uncompressed in .* bytes but declares")
    # a deflated member claiming more compressed bytes than the file has
    z = zlib.compressobj(9, zlib.DEFLATED, -15)
    stream = z.compress(header) + z.flush()
    _raw_zip(path, entries + [("weight.npy", stream, 8, 0, len(header) + GiB)])
    data = bytearray(path.read_bytes())
    cd = data.rindex(b"PK\x01\x02")  # the last central directory entry: weight.npy
    struct.pack_into("<I", data, cd + 20, 2**32 - 2)  # its compressed size
    path.write_bytes(bytes(data))
    _assert_cheap(path, "compressed bytes; the file has")


@pytest.mark.parametrize(
    "bad",
    [
        np.array([["1e30"] * 3] * 2),
        np.zeros((2, 3), np.complex128),
        np.zeros((2, 3), "datetime64[s]"),
        np.zeros((2, 3), [("a", np.float32)]),
        np.array([[1.0] * 3] * 2, dtype=object),
    ],
)
def test_load_state_dict_refuses_non_numbers(bad):
    layer = L.Dense(3, 2, rng=0)
    before = layer.state_dict()
    with pytest.raises(TypeError, match="'weight' has dtype"):
        layer.load_state_dict({"weight": bad, "bias": np.ones(2)})
    for k, v in layer.state_dict().items():  # nothing written
        np.testing.assert_array_equal(v, before[k])
    bn = L.BatchNorm2D(2)
    state = bn.state_dict()
    state["num_batches_tracked"] = np.array(3.5)
    with pytest.raises(TypeError, match="'num_batches_tracked' has dtype float64"):
        bn.load_state_dict(state)
    # numbers within their kind still convert, as torch's copy_ does
    layer.load_state_dict({"weight": np.ones((2, 3)), "bias": np.arange(2)})
    assert layer.weight.dtype == np.float32 and layer.bias[1] == 1
