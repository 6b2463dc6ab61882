"""convext.onnx.load on models it refuses, and on hostile files: every unsupported node is
listed in one ValueError before anything runs; malformed protobuf, oversized input, external
data outside the model's folder are ValueErrors. No torch here (onnx builds the models)."""

import os

import numpy as np
import pytest

if os.environ.get("CONVEXT_ASAN") == "1":
    # the onnx package (protobuf) and onnxruntime report errors with C++ exceptions, which
    # abort the process under ASan's __cxa_throw interceptor (inside them, not convext); the
    # normal and debug runs cover this file
    pytest.skip("onnx's C++ exceptions abort under AddressSanitizer", allow_module_level=True)
onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import convext  # noqa: E402
import convext.onnx  # noqa: E402

W = np.arange(2 * 2 * 3 * 3, dtype=np.float32).reshape(2, 2, 3, 3) / 10


def model(nodes, inits=(), opset=13, x_shape=(None, 2, 6, 6)):
    g = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape and list(x_shape))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        initializer=list(inits),
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    return m


def test_every_unsupported_node_is_listed_before_anything_runs():
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["a"], kernel_shape=[3, 3], pads=[1] * 4),
        helper.make_node("Erf", ["a"], ["b"], name="my_erf"),
        helper.make_node("Relu", ["b"], ["c"]),  # after a problem
        helper.make_node("LeakyRelu", ["c"], ["d"], alpha=0.2, bogus=3),
        helper.make_node("Resize", ["d", "", "s"], ["e"], mode="cubic"),
        helper.make_node("MaxPool", ["e"], ["f", "idx"], kernel_shape=[2, 2]),
        helper.make_node("Add", ["f", "idx"], ["g"]),
        helper.make_node("Gemm", ["g", "x"], ["y"], transA=1),
        helper.make_node("CustomOp", ["y"], ["z"], domain="com.example"),
    ]
    m = model(
        nodes,
        [
            numpy_helper.from_array(W, "w"),
            numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "s"),
        ],
    )
    with pytest.raises(ValueError) as e:
        convext.onnx.load(m.SerializeToString())
    msg = str(e.value)
    for part in [
        "'my_erf' (Erf): operator 'Erf' is not supported",
        "(LeakyRelu): attribute bogus=3 is not supported",
        "(Resize): attribute mode='cubic' is not supported",
        "(MaxPool): its output(s) ['idx'] beyond the first are used",
        "(Gemm): attribute transA=1 is not supported",
        "(com.example.CustomOp): operator 'CustomOp' is not supported",
    ]:
        assert part in msg, (part, msg)
    assert "6 unsupported" in msg


@pytest.mark.parametrize(
    "node, inits, match",
    [
        (helper.make_node("Conv", ["x", "x"], ["y"]), [], "must be a constant"),
        (
            helper.make_node("Conv", ["x", "w"], ["y"], auto_pad="SAME_UPPER"),
            ["w"],
            "needs the input's height and width",
        ),
        (
            helper.make_node(
                "MaxPool", ["x"], ["y"], kernel_shape=[3, 3], pads=[0, 0, 2, 1], ceil_mode=1
            ),
            [],
            "ceil_mode with pads .* larger than half the kernel",
        ),
        (
            helper.make_node("AveragePool", ["x"], ["y"], kernel_shape=[2, 2], dilations=[2, 2]),
            [],
            "dilations",
        ),
        (helper.make_node("Pad", ["x", "p"], ["y"], mode="wrap"), ["p"], "mode='wrap'"),
        (
            helper.make_node(
                "BatchNormalization", ["x", "s", "s", "s", "s"], ["y"], training_mode=1
            ),
            ["s"],
            "training_mode=1",
        ),
        (helper.make_node("Reshape", ["x", "x"], ["y"]), [], "must be a constant"),
        (helper.make_node("Gather", ["x", "i"], ["y"]), ["i"], "folds to a constant"),
        (helper.make_node("MatMul", ["x", "x"], ["y"]), [], "must be a constant"),
    ],
)
def test_unsupported_forms(node, inits, match):
    arrays = {
        "w": numpy_helper.from_array(W, "w"),
        "p": numpy_helper.from_array(np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64), "p"),
        "s": numpy_helper.from_array(np.ones(2, np.float32), "s"),
        "i": numpy_helper.from_array(np.array([0], np.int64), "i"),
    }
    x_shape = (None, 2, None, None) if "auto_pad" in str(node) else (None, 2, 6, 6)
    opset = 14 if "training_mode" in str(node) else 13  # the attribute exists from 14 on
    m = model([node], [arrays[k] for k in inits], x_shape=x_shape, opset=opset)
    with pytest.raises(ValueError, match=match):
        convext.onnx.load(m.SerializeToString())


@pytest.mark.parametrize("opset", [9, 22])
def test_opset_out_of_range(opset):
    m = model([helper.make_node("Relu", ["x"], ["y"])], opset=opset)
    with pytest.raises(ValueError, match=f"opset {opset}"):
        convext.onnx.load(m.SerializeToString())


@pytest.mark.parametrize(
    "data",
    [b"", b"\x00" * 10, b"\xff" * 100, b"garbage that is not onnx", b"\x0a\xff\xff\xff\xff\x0f"],
)
def test_malformed_protobuf(data):
    with pytest.raises(ValueError, match="ONNX model"):
        convext.onnx.load(data)


def test_truncated_model_file(tmp_path):
    m = model(
        [helper.make_node("Conv", ["x", "w"], ["y"], kernel_shape=[3, 3])],
        [numpy_helper.from_array(W, "w")],
    )
    data = m.SerializeToString()
    for cut in (len(data) // 3, len(data) - 5):
        with pytest.raises(ValueError, match="ONNX model|tensor|unsupported"):
            convext.onnx.load(data[:cut])


def test_size_bound_and_argument_types(tmp_path):
    m = model([helper.make_node("Relu", ["x"], ["y"])])
    data = m.SerializeToString()
    with pytest.raises(ValueError, match="max_bytes"):
        convext.onnx.load(data, max_bytes=len(data) - 1)
    path = tmp_path / "m.onnx"
    path.write_bytes(data)
    with pytest.raises(ValueError, match="max_bytes"):
        convext.onnx.load(path, max_bytes=10)
    assert isinstance(convext.onnx.load(path), convext.layers.Graph)
    with pytest.raises(TypeError, match="max_bytes"):
        convext.onnx.load(path, max_bytes=-1)
    with pytest.raises(TypeError, match="path or the bytes"):
        convext.onnx.load(12)
    with pytest.raises(TypeError, match="dtype"):
        convext.onnx.load(path, dtype="int32")
    with pytest.raises(FileNotFoundError):
        convext.onnx.load(tmp_path / "missing.onnx")


def _raw_tensor(dims, raw):
    t = onnx.TensorProto()
    t.name, t.data_type = "w", TensorProto.FLOAT
    t.dims.extend(dims)
    t.raw_data = raw
    return t


def test_weights_declaring_more_than_the_budget():
    t = _raw_tensor([2, 2, 3, 3], b"\0" * 8)
    m = model([helper.make_node("Conv", ["x", "w"], ["y"], kernel_shape=[3, 3])], [t])
    with pytest.raises(ValueError, match="bytes of data"):
        convext.onnx.load(m.SerializeToString())
    big = _raw_tensor([1 << 20, 1 << 20, 1 << 10], b"")
    m = model([helper.make_node("Conv", ["x", "w"], ["y"], kernel_shape=[3, 3])], [big])
    with pytest.raises(ValueError, match="elements|bytes"):
        convext.onnx.load(m.SerializeToString())
    huge = _raw_tensor([1 << 14, 1 << 14], b"")  # 1 GiB declared: more than max_bytes allows
    m = model([helper.make_node("Conv", ["x", "w"], ["y"], kernel_shape=[3, 3])], [huge])
    with pytest.raises(ValueError, match="max_bytes"):
        convext.onnx.load(m.SerializeToString(), max_bytes=1 << 20)


def _external_model(location, offset=0, length=None):
    t = onnx.TensorProto()
    t.name, t.data_type = "w", TensorProto.FLOAT
    t.dims.extend(W.shape)
    t.data_location = TensorProto.EXTERNAL
    entries = {"location": location, "offset": str(offset)}
    if length is not None:
        entries["length"] = str(length)
    for k, v in entries.items():
        e = t.external_data.add()
        e.key, e.value = k, v
    return model([helper.make_node("Conv", ["x", "w"], ["y"], kernel_shape=[3, 3])], [t])


def test_external_data_from_the_models_folder(tmp_path):
    (tmp_path / "weights.bin").write_bytes(b"\0" * 16 + W.tobytes())
    path = tmp_path / "m.onnx"
    path.write_bytes(_external_model("weights.bin", offset=16).SerializeToString())
    g = convext.onnx.load(path)
    np.testing.assert_array_equal(g.node("conv").weight, W)
    # the same model as bytes has no folder to read from
    with pytest.raises(ValueError, match="external data"):
        convext.onnx.load(path.read_bytes())


@pytest.mark.parametrize(
    "location",
    [
        "../secret.bin",
        "sub/../../secret.bin",
        "/etc/passwd",
        "link.bin",
        "missing.bin",
        "",
        "sub\\..\\..\\secret.bin",
    ],
)
def test_external_data_escapes_are_refused(tmp_path, location):
    outside = tmp_path / "secret.bin"
    outside.write_bytes(W.tobytes())
    folder = tmp_path / "model"
    (folder / "sub").mkdir(parents=True)
    os.symlink(outside, folder / "link.bin")
    path = folder / "m.onnx"
    path.write_bytes(_external_model(location).SerializeToString())
    with pytest.raises(ValueError, match="external data"):
        convext.onnx.load(path)


@pytest.mark.parametrize("offset, length", [(0, 8), (100, None), (-4, None)])
def test_external_data_bad_ranges(tmp_path, offset, length):
    (tmp_path / "weights.bin").write_bytes(W.tobytes())
    path = tmp_path / "m.onnx"
    path.write_bytes(_external_model("weights.bin", offset, length).SerializeToString())
    with pytest.raises(ValueError, match="external data"):
        convext.onnx.load(path)


def test_cli_prints_the_graph(tmp_path, capsys):
    from convext.__main__ import main

    m = model(
        [
            helper.make_node("Conv", ["x", "w"], ["c"], kernel_shape=[3, 3], pads=[1] * 4),
            helper.make_node("Relu", ["c"], ["y"]),
        ],
        [numpy_helper.from_array(W, "w")],
    )
    path = tmp_path / "m.onnx"
    path.write_bytes(m.SerializeToString())
    assert main(["onnx", str(path), "--repeat", "2"]) == 0
    out = capsys.readouterr().out
    assert "conv" in out and "(1, 2, 6, 6)" in out and "parameters: 36" in out
    assert "ms" in out


# -- README examples (an ONNX classifier written with onnx.helper; no torch) ------------------
def _classifier():
    rng = np.random.default_rng(0)
    w = (rng.standard_normal((8, 3, 3, 3)) * 0.2).astype(np.float32)
    fc = (rng.standard_normal((10, 8)) * 0.2).astype(np.float32)
    nodes = [
        helper.make_node(
            "Conv", ["x", "conv.weight"], ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], name="conv"
        ),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("GlobalAveragePool", ["r"], ["p"]),
        helper.make_node("Flatten", ["p"], ["f"]),
        helper.make_node("Gemm", ["f", "fc.weight", "fc.bias"], ["y"], transB=1),
    ]
    g = helper.make_graph(
        nodes,
        "classifier",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 32, 32])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 10])],
        initializer=[
            numpy_helper.from_array(w, "conv.weight"),
            numpy_helper.from_array(fc, "fc.weight"),
            numpy_helper.from_array(np.zeros(10, np.float32), "fc.bias"),
        ],
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m.SerializeToString()


def test_readme_onnx_examples(tmp_path, monkeypatch):
    import re

    readme = os.path.join(os.path.dirname(__file__), "..", "..", "README.md")
    if not os.path.exists(readme):
        pytest.skip("README.md is not next to the tests (installed-wheel run)")
    text = open(readme, encoding="utf-8").read()
    start = text.index("## Run an ONNX model")
    end = text.index("\n## ", text.index("## Fine-tune an ONNX model"))
    blocks = re.findall(r"```python\n(.*?)```", text[start:end], re.S)
    assert len(blocks) == 2
    monkeypatch.chdir(tmp_path)
    (tmp_path / "model.onnx").write_bytes(_classifier())
    ns = {}
    for code in blocks:
        exec(compile(code, "README.md", "exec"), ns)
    assert ns["logits"].shape == (4, 10) and np.isfinite(ns["loss"])
    before = convext.onnx.load("model.onnx").state_dict()
    after = convext.load("finetuned.npz").state_dict()
    assert list(after) == ["conv.weight", "fc.weight", "fc.bias"]
    assert not np.array_equal(before["fc.weight"], after["fc.weight"])  # it trained


def test_upsample_is_refused_with_the_reason():
    scales = numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "s")
    m = model([helper.make_node("Upsample", ["x", "s"], ["y"], mode="nearest")], [scales])
    with pytest.raises(ValueError, match="Upsample is deprecated since opset 10.*Resize"):
        convext.onnx.load(m.SerializeToString())


def test_corrupted_models_are_value_errors_or_load():
    """Random byte changes and truncations of a valid model: a Graph or a ValueError, never
    another exception."""
    data = bytearray(_classifier())
    rng = np.random.default_rng(1)  # this seed once found invalid UTF-8 names, empty inputs
    outcomes = {"graph": 0, "refused": 0}
    for _ in range(1000):
        bad = bytearray(data)
        for _ in range(int(rng.integers(1, 4))):
            bad[int(rng.integers(0, len(bad)))] = int(rng.integers(0, 256))
        if rng.random() < 0.3:
            bad = bad[: int(rng.integers(0, len(bad)))]
        try:
            convext.onnx.load(bytes(bad))
            outcomes["graph"] += 1
        except ValueError:
            outcomes["refused"] += 1
    assert outcomes["refused"] > 0 and sum(outcomes.values()) == 1000


def _load(m):
    return convext.onnx.load(m.SerializeToString())


@pytest.mark.parametrize(
    "nodes, inits, opset, x_shape, match",
    [
        # a rank-0 input declared for an opset-12 Softmax (its axis is taken modulo the rank)
        ([helper.make_node("Softmax", ["x"], ["y"])], [], 12, [], "Softmax"),
        # attributes that must be tensors, given as ints
        (
            [
                helper.make_node("Constant", [], ["c"], value=5),
                helper.make_node("Add", ["x", "c"], ["y"]),
            ],
            [],
            13,
            (None, 2, 6, 6),
            "a tensor was expected",
        ),
        (
            [
                helper.make_node("ConstantOfShape", ["s"], ["c"], value=5),
                helper.make_node("Add", ["x", "c"], ["y"]),
            ],
            [numpy_helper.from_array(np.array([2], np.int64), "s")],
            13,
            (None, 2, 6, 6),
            "a tensor was expected",
        ),
        # infinite shapes, pads and slice bounds (float initializers)
        (
            [helper.make_node("Reshape", ["x", "s"], ["y"])],
            [numpy_helper.from_array(np.array([1, np.inf], np.float32), "s")],
            13,
            (None, 2, 6, 6),
            "OverflowError",
        ),
        (
            [helper.make_node("Pad", ["x", "p"], ["y"])],
            [numpy_helper.from_array(np.array([0, 0, np.inf, 0] * 2, np.float32), "p")],
            13,
            (None, 2, 6, 6),
            "OverflowError",
        ),
    ],
)
def test_forged_attributes_and_infinite_constants_are_problems(nodes, inits, opset, x_shape, match):
    with pytest.raises(ValueError, match=match):
        _load(model(nodes, inits, opset=opset, x_shape=x_shape))


def _add_fold(n):
    """Two small initializers (n, 1) and (1, n) whose folded sum has n * n elements."""
    inits = [
        numpy_helper.from_array(np.ones((n, 1), np.float32), "a"),
        numpy_helper.from_array(np.ones((1, n), np.float32), "b"),
    ]
    nodes = [
        helper.make_node("Add", ["a", "b"], ["c"]),
        helper.make_node("Add", ["x", "c"], ["y"]),
    ]
    return model(nodes, inits, x_shape=(n, n))


def test_constant_folding_counts_against_max_bytes():
    """A 256 kB file whose folded constants would take 4 GiB is refused before any of it is
    computed; the same fold within max_bytes is computed exactly."""
    with pytest.raises(ValueError, match=r"folded constant of shape \(32768, 32768\)"):
        _load(_add_fold(1 << 15))
    m = _add_fold(64)
    with pytest.raises(ValueError, match="max_bytes"):
        convext.onnx.load(m.SerializeToString(), max_bytes=2 * 64 * 4 + 64 * 64 * 4 - 1)
    g = convext.onnx.load(m.SerializeToString(), max_bytes=2 * 64 * 4 + 64 * 64 * 4)
    x = np.arange(64 * 64, dtype=np.float32).reshape(64, 64)
    np.testing.assert_array_equal(g(x), x + 2)
    # doubling a constant by Concat, and Gather with many indices, are bounded the same way
    big = numpy_helper.from_array(np.ones(1 << 20, np.float32), "a")
    nodes = [helper.make_node("Concat", ["a", "a"], ["c0"], axis=0)]
    for k in range(1, 12):
        nodes.append(helper.make_node("Concat", [f"c{k - 1}", f"c{k - 1}"], [f"c{k}"], axis=0))
    nodes.append(helper.make_node("Add", ["x", "c11"], ["y"]))
    with pytest.raises(ValueError, match="folded constant"):
        _load(model(nodes, [big], x_shape=(1 << 32,)))
    idx = numpy_helper.from_array(np.zeros(1 << 15, np.int64), "i")
    data = numpy_helper.from_array(np.ones((1, 1 << 15), np.float32), "d")
    nodes = [
        helper.make_node("Gather", ["d", "i"], ["c"], axis=0),
        helper.make_node("Add", ["x", "c"], ["y"]),
    ]
    with pytest.raises(ValueError, match="folded constant"):
        _load(model(nodes, [data, idx], x_shape=(1 << 15, 1 << 15)))
    # an empty gather axis: the output is the indices' size by the other axes, not empty (this
    # counted 0 bytes, then numpy's MemoryError for 4 EiB)
    empty = helper.make_tensor("d", TensorProto.FLOAT, [0, 1 << 40], [])
    with pytest.raises(ValueError, match=r"folded constant of shape \(32768, 1099511627776\)"):
        _load(model(nodes, [empty, idx], x_shape=(1,)))


def test_a_name_assigned_twice_is_refused():
    twice = [
        helper.make_node("Relu", ["x"], ["y"]),
        helper.make_node("Sigmoid", ["x"], ["y"]),
    ]
    with pytest.raises(ValueError, match="'y' is already"):
        _load(model(twice))
    shadow = [
        helper.make_node("Relu", ["x"], ["w"]),
        helper.make_node("Conv", ["w", "w"], ["y"], kernel_shape=[3, 3]),
    ]
    with pytest.raises(ValueError, match="'w' is already"):
        _load(model(shadow, [numpy_helper.from_array(W, "w")]))


def test_sizes_fixed_at_import_are_checked_at_run_time():
    """auto_pad SAME pads for the declared plane: another plane (which would get the wrong
    padding) is refused, as onnxruntime refuses it; the declared plane computes as before, and
    a model whose import fixed nothing from the sizes takes any plane."""
    pool = [
        helper.make_node(
            "MaxPool", ["x"], ["y"], kernel_shape=[3, 3], auto_pad="SAME_UPPER", strides=[2, 2]
        )
    ]
    rng = np.random.default_rng(0)
    x6 = rng.standard_normal((1, 1, 6, 6)).astype(np.float32)
    x7 = rng.standard_normal((3, 1, 7, 7)).astype(np.float32)
    g7 = _load(model(pool, x_shape=("N", 1, 7, 7)))
    with pytest.raises(ValueError, match=r"input 'x' has shape \(1, 1, 6, 6\).*\('\?', 1, 7, 7\)"):
        g7(x6)
    # SAME_UPPER at 7x7, stride 2, kernel 3: 4x4 outputs, one row and column of padding a side
    padded = np.pad(x7, ((0, 0), (0, 0), (1, 1), (1, 1)), constant_values=-np.inf)
    want = np.max(
        [padded[:, :, i : i + 7 : 2, j : j + 7 : 2] for i in range(3) for j in range(3)], axis=0
    )
    np.testing.assert_array_equal(g7(x7), want)
    relu = _load(model([helper.make_node("Relu", ["x"], ["y"])], x_shape=(1, 1, 7, 7)))
    np.testing.assert_array_equal(relu(x6), np.maximum(x6, 0))


@pytest.mark.parametrize(
    "args, message",
    [
        (["--shape", "1000,1000,1000,1000"], "bytes, more than this machine"),
        (["--batch", "1000000000000"], "elements, more than the 2**40"),
        (["--shape", "1,2,7,7"], "input 'x' has shape (1, 2, 7, 7)"),
    ],
)
def test_cli_refuses_inputs_the_model_cannot_take(tmp_path, capsys, args, message):
    from convext.__main__ import main

    same = helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[3, 3], auto_pad="SAME_UPPER")
    path = tmp_path / "m.onnx"
    path.write_bytes(model([same]).SerializeToString())
    try:
        status = main(["onnx", str(path), *args])
    except SystemExit as e:
        status = e.code
    assert status not in (0, None)
    captured = capsys.readouterr()
    assert message in captured.err + str(status)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--shape", "abc"], "argument --shape: 'abc' is not sizes >= 1 separated by commas"),
        (["--shape", "1,,6,6"], "argument --shape: '1,,6,6' is not sizes >= 1"),
        (["--shape=-1,2,6,6"], "argument --shape: '-1,2,6,6' is not sizes >= 1"),
        (["--shape", "1,2,0,6"], "argument --shape: '1,2,0,6' is not sizes >= 1"),
        (["--batch", "0"], "argument --batch: 0 is not >= 1"),
        (["--repeat", "0"], "argument --repeat: 0 is not in [1, 10000]"),
        (["--repeat", "100000000000"], "argument --repeat: 100000000000 is not in [1, 10000]"),
        (
            ["--batch", "3", "--shape", "1,2,6,6"],
            "argument --shape: not allowed with argument --batch",
        ),
        (
            ["--shape", "1,2,6,6", "--batch", "1"],
            "argument --batch: not allowed with argument --shape",
        ),
    ],
)
def test_cli_refuses_bad_arguments_with_a_usage_error(tmp_path, capsys, monkeypatch, args, message):
    """A malformed option is argparse's usage error naming it (exit status 2, the CLI's prefix),
    as the demo's: --shape abc was a bare SystemExit message with status 1. --batch beside
    --shape (which gives the batch size too) is refused naming both; it was ignored. --repeat
    had no upper bound (10**11 timed runs). All before the model is read."""
    from convext.__main__ import main

    def no_load(*a, **k):
        raise AssertionError("read the model before checking the arguments")

    monkeypatch.setattr(convext.onnx, "load", no_load)
    path = tmp_path / "m.onnx"
    path.write_bytes(model([helper.make_node("Relu", ["x"], ["y"])]).SerializeToString())
    with pytest.raises(SystemExit) as e:
        main(["onnx", str(path), *args])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "python -m convext onnx: error: " in err and message in err


@pytest.mark.parametrize(
    "x_shape, message",
    [
        (None, "the model does not declare its input shape: give --shape"),
        (("N", "C", 6, 6), "dimension 1 of the input is 'C', not fixed: give --shape"),
    ],
)
def test_cli_without_a_fixed_input_shape_asks_for_shape(tmp_path, capsys, x_shape, message):
    """A model whose input size is not fixed, without --shape: the CLI's error line and status
    2, as for an input the model cannot take (was a bare SystemExit message, status 1)."""
    from convext.__main__ import main

    path = tmp_path / "m.onnx"
    path.write_bytes(
        model([helper.make_node("Relu", ["x"], ["y"])], x_shape=x_shape).SerializeToString()
    )
    assert main(["onnx", str(path)]) == 2
    assert capsys.readouterr().err == f"python -m convext onnx: {message}\n"
    assert main(["onnx", str(path), "--shape", "1,2,6,6", "--repeat", "1"]) == 0


def _refuse_shape_inference(monkeypatch):
    """onnx's shape inference, replaced by a failure: the calls it would have had."""
    calls = []

    def infer_shapes(m, *args, **kwargs):
        calls.append(m)
        raise AssertionError("shape inference ran on a model convext has not checked")

    monkeypatch.setattr(onnx.shape_inference, "infer_shapes", infer_shapes)
    return calls


@pytest.mark.parametrize(
    "node, opset, match",
    [
        # each of these made onnx's C++ shape inference crash the process (SIGSEGV, SIGABRT)
        (
            helper.make_node("EyeLike", [""], ["y"], dtype=TensorProto.INT64),
            13,
            "operator 'EyeLike' is not supported",
        ),
        (helper.make_node("RegexFullMatch", [""], ["y"]), 21, "'RegexFullMatch' is not supported"),
        (
            helper.make_node("Split", ["x"], ["y", "z"], num_outputs=1),
            21,
            "operator 'Split' is not supported",
        ),
        # a supported operator with a graph attribute
        (
            helper.make_node("Relu", ["x"], ["y"], body=helper.make_graph([], "b", [], [])),
            13,
            "attribute body of AttributeProto type 5",
        ),
    ],
)
def test_shape_inference_never_sees_an_unsupported_node(monkeypatch, node, opset, match):
    calls = _refuse_shape_inference(monkeypatch)
    with pytest.raises(ValueError, match=match):
        _load(model([node], opset=opset))
    assert calls == []


def test_model_local_functions_are_refused_before_shape_inference(monkeypatch):
    """Functions calling each other twice made shape inference expand 2**depth calls."""
    calls = _refuse_shape_inference(monkeypatch)
    opsets = [helper.make_opsetid("", 13), helper.make_opsetid("local", 1)]
    relu = helper.make_node("Relu", ["a"], ["b"])
    twice = [
        helper.make_node("F0", ["a"], ["t"], domain="local"),
        helper.make_node("F0", ["t"], ["b"], domain="local"),
    ]
    functions = [
        helper.make_function("local", "F0", ["a"], ["b"], [relu], opsets),
        helper.make_function("local", "F1", ["a"], ["b"], twice, opsets),
    ]
    m = model([helper.make_node("Relu", ["x"], ["y"])])
    m.functions.extend(functions)
    with pytest.raises(ValueError, match=r"2 local function\(s\) \(local.F0, local.F1\)"):
        _load(m)
    assert calls == []
    # the same graph without them runs shape inference once
    del m.functions[:]
    calls.clear()
    _load(m)  # (the failure of the replaced inference is caught: the declared shapes are used)
    assert len(calls) == 1


class _CountingSet(set):
    def __init__(self):
        super().__init__()
        self.lookups = 0

    def __contains__(self, item):
        self.lookups += 1
        return super().__contains__(item)


def test_unique_names_take_linear_lookups():
    """Unnamed nodes all start from the same base: each new name was found by trying base_2,
    base_3, ... again (100,000 unnamed Relu nodes took minutes to import)."""
    from convext.onnx._import import _Importer

    imp = _Importer(model([]), None, np.float32, 1 << 20)
    imp.names = _CountingSet()
    imp.names.add("relu_5")  # a name given explicitly, which the numbering skips
    names = [imp.unique("relu") for _ in range(2000)]
    assert names[:6] == ["relu", "relu_2", "relu_3", "relu_4", "relu_6", "relu_7"]
    assert len(set(names)) == 2000 and "relu_5" not in names
    assert imp.names.lookups <= 2 * 2000 + 1
    assert imp.unique("relu_2") == "relu_2_2"


def _shape_product(first, second, x_shape):
    """y = Reshape(x, [Shape(x)[first] * Shape(x)[second]]), the product folded at import."""
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Gather", ["s", "i"], ["a"], axis=0),
        helper.make_node("Gather", ["s", "j"], ["b"], axis=0),
        helper.make_node("Mul", ["a", "b"], ["c"]),
        helper.make_node("Reshape", ["x", "c"], ["y"]),
    ]
    inits = [
        numpy_helper.from_array(np.array([first], np.int64), "i"),
        numpy_helper.from_array(np.array([second], np.int64), "j"),
    ]
    return model(nodes, inits, x_shape=x_shape)


def test_folding_refuses_symbols_and_computes_in_int64():
    """A Shape with a symbolic size folds to an object array: Mul repeated the symbol's name
    (a 208-byte model built gigabytes of text) and squared Python ints without bound."""
    from convext.onnx._import import _Importer

    with pytest.raises(
        ValueError, match=r"\(Mul\): input 'a' depends on the symbolic dimension 'N'"
    ):
        _load(_shape_product(0, 1, ("N", 3)))
    imp = _Importer(_shape_product(1, 1, ("N", 3, 3)), None, np.float32, 1 << 20)
    g = imp.run()
    assert imp.consts["c"].dtype == np.int64 and imp.consts["c"].tolist() == [9]
    np.testing.assert_array_equal(g(np.ones((1, 3, 3), np.float32)), np.ones(9, np.float32))
    cast = [
        helper.make_node("Cast", ["i"], ["t"], to=TensorProto.STRING),
        helper.make_node("Add", ["x", "t"], ["y"]),
    ]
    with pytest.raises(ValueError, match=r"\(Cast\): Cast to object is not supported"):
        _load(model(cast, [numpy_helper.from_array(np.array([7], np.int64), "i")]))


def _aliases(op, k):
    """y = x + c_1 + ... + c_k, each c_i = op(c) of one 1 KiB initializer c."""
    nodes, prev = [], "x"
    for i in range(k):
        nodes.append(
            helper.make_node(op, ["c", "minus1"][: 2 if op == "Reshape" else 1], [f"c{i}"])
        )
        out = "y" if i == k - 1 else f"t{i}"
        nodes.append(helper.make_node("Add", [prev, f"c{i}"], [out]))
        prev = out
    inits = [
        numpy_helper.from_array(np.arange(256, dtype=np.float32), "c"),
        numpy_helper.from_array(np.array([-1], np.int64), "minus1"),
    ]
    return model(nodes, inits, x_shape=(1, 256)).SerializeToString()


def _max_bytes_needed(data, at_most):
    """The smallest max_bytes (at most ``at_most``) that loads ``data``."""
    convext.onnx.load(data, max_bytes=at_most)
    with pytest.raises(ValueError, match="its copy needs 1024 bytes, more than the max_bytes"):
        convext.onnx.load(data, max_bytes=at_most - 1)
    return at_most


def test_copies_of_one_constant_count_against_max_bytes():
    """A 1.7 KB model held 2.7 GB: each alias of a folded constant, and each layer sharing one
    initializer, copied it uncounted. Identity's aliases (the same array) now share one Constant
    node; every copy beyond the first is counted."""
    x = np.ones((1, 256), np.float32)
    data = _aliases("Identity", 5)
    g = convext.onnx.load(data, max_bytes=2048)  # (the initializers: 1032 bytes)
    assert sum(isinstance(n, convext.layers.Constant) for n in g._children.values()) == 1
    np.testing.assert_array_equal(g(x)[0], 1 + 5 * np.arange(256, dtype=np.float32))
    # views of it (Reshape here; Squeeze, Transpose, Slice alike): a Constant node each
    _max_bytes_needed(_aliases("Reshape", 4), 1024 + 8 + 3 * 1024)
    # one weight shared by three MatMul layers
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["a"]),
        helper.make_node("MatMul", ["a", "w"], ["b"]),
        helper.make_node("MatMul", ["b", "w"], ["y"]),
    ]
    w = numpy_helper.from_array(np.eye(16, dtype=np.float32), "w")
    _max_bytes_needed(model(nodes, [w], x_shape=(1, 16)).SerializeToString(), 3 * 1024)
