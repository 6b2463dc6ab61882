"""convext.onnx.load computes what the ONNX spec and onnxruntime compute, where NumPy's or
torch's conventions differ from ONNX's (integer division, Slice bounds, Resize sizes and
coordinates, opset-11 Softmax and LogSoftmax, shapes declared in the file): small hand-built
graphs, each against the spec's value, and against onnxruntime where it is installed. No torch
here."""

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

import convext.onnx  # noqa: E402


def model(nodes, inits=(), x_shape=(1, 1), opset=13, value_info=()):
    g = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x_shape))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        initializer=[numpy_helper.from_array(np.asarray(v), k) for k, v in inits],
        value_info=list(value_info),
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    return m.SerializeToString()


def run(data, x):
    """convext's output, checked against onnxruntime's where onnxruntime is installed."""
    got = convext.onnx.load(data)(x)
    try:
        import onnxruntime as ort
    except ImportError:
        return got
    sess = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    want = sess.run(None, {"x": x})[0]
    assert got.shape == want.shape, (got.shape, want.shape)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    return got


def _refused_by_both(data, ours, theirs):
    """convext.onnx.load refuses the model with a ValueError matching ``ours``, and
    onnxruntime (where installed) refuses it with an error matching ``theirs``."""
    with pytest.raises(ValueError, match=ours):
        convext.onnx.load(data)
    try:
        import onnxruntime as ort
    except ImportError:
        return
    with pytest.raises(Exception, match=theirs):
        ort.InferenceSession(data, providers=["CPUExecutionProvider"])


def _folded_plus_x(nodes, inits, c_shape):
    """nodes compute the int64 constant 'c'; the graph returns x + float(c)."""
    nodes = nodes + [
        helper.make_node("Cast", ["c"], ["f"], to=TensorProto.FLOAT),
        helper.make_node("Add", ["x", "f"], ["y"]),
    ]
    return model(nodes, inits, x_shape=c_shape)


def test_integer_div_truncates_toward_zero():
    p = np.array([-7, 7, -7, 7, -6, 0], np.int64)
    q = np.array([2, -2, -2, 2, 3, -5], np.int64)
    data = _folded_plus_x([helper.make_node("Div", ["p", "q"], ["c"])], [("p", p), ("q", q)], [6])
    y = run(data, np.zeros(6, np.float32))
    np.testing.assert_array_equal(y, [-3, -3, 3, 3, -2, 0])


def test_integer_div_by_zero_is_refused():
    p, q = np.array([1], np.int64), np.array([0], np.int64)
    data = _folded_plus_x([helper.make_node("Div", ["p", "q"], ["c"])], [("p", p), ("q", q)], [1])
    with pytest.raises(ValueError, match="division by zero"):
        convext.onnx.load(data)


@pytest.mark.parametrize(
    "fmod, p, q, want",
    [
        # fmod=0: the remainder takes the divisor's sign; fmod=1: the dividend's (C's fmod)
        (0, [-7, 7, -7, 7, 6, -(2**63)], [2, -2, -2, 2, 3, -1], [1, -1, -1, 1, 0, 0]),
        (1, [-7, 7, -7, 7, 6, -(2**63)], [2, -2, -2, 2, 3, -1], [-1, 1, -1, 1, 0, 0]),
    ],
)
def test_folded_integer_mod_follows_fmod(fmod, p, q, want):
    inits = [("p", np.array(p, np.int64)), ("q", np.array(q, np.int64))]
    node = helper.make_node("Mod", ["p", "q"], ["c"], fmod=fmod)
    y = run(_folded_plus_x([node], inits, [len(want)]), np.zeros(len(want), np.float32))
    np.testing.assert_array_equal(y, want)


def test_folded_float_mod_and_its_refusals():
    """fmod=1 on floats is C's fmod (-7.5 mod 2 = -1.5); fmod=0 on floats is invalid before
    opset 28 and a zero integer divisor is undefined: both refused at import, naming Mod."""
    inits = [("p", np.array([-7.5, 7.5], np.float32)), ("q", np.array([2.0, -2.0], np.float32))]
    node = helper.make_node("Mod", ["p", "q"], ["f"], fmod=1)
    data = model([node, helper.make_node("Add", ["x", "f"], ["y"])], inits, x_shape=[2])
    np.testing.assert_array_equal(run(data, np.zeros(2, np.float32)), [-1.5, 1.5])
    bad = [
        (1, [("p", np.array([5], np.int64)), ("q", np.array([0], np.int64))], "modulo by zero"),
        (0, inits, "fmod must be 1 for floating-point"),
        (2, inits, "fmod must be 0 or 1"),
    ]
    for fmod, consts, match in bad:
        node = helper.make_node("Mod", ["p", "q"], ["c"], fmod=fmod)
        with pytest.raises(ValueError, match=rf"\(Mod\).*{match}"):
            convext.onnx.load(_folded_plus_x([node], consts, [1]))


def test_mod_of_a_run_time_input_is_refused():
    node = helper.make_node("Mod", ["x", "q"], ["y"], fmod=1)
    data = model([node], [("q", np.array([2.0], np.float32))], x_shape=[1])
    with pytest.raises(ValueError, match=r"\(Mod\).*folds to a constant"):
        convext.onnx.load(data)


@pytest.mark.parametrize(
    "start, end, step, want",
    [
        # negative bounds count from the end (+4), then the step's sign clamps them: start to
        # [0, 3] and end to [-1, 3] (-1: through element 0) for a negative step
        (-5, -10, -1, [0]),
        (10, -10, -1, [3, 2, 1, 0]),
        (3, -1, -1, []),  # end -1 is element 3 (counted from the end), not 'through 0'
        (-1, -5, -2, [3, 1]),
        (5, -(2**63), -3, [3, 0]),
        # [0, 4] for a positive step
        (-7, 10, 1, [0, 1, 2, 3]),
        (2, 2**63 - 1, 1, [2, 3]),
        (-2, -9, 1, []),
    ],
)
def test_folded_slice_clamps_as_onnx(start, end, step, want):
    inits = [
        ("d", np.arange(4, dtype=np.int64)),
        ("s", np.array([start], np.int64)),
        ("e", np.array([end], np.int64)),
        ("a", np.array([0], np.int64)),
        ("t", np.array([step], np.int64)),
    ]
    node = helper.make_node("Slice", ["d", "s", "e", "a", "t"], ["c"])
    y = run(_folded_plus_x([node], inits, [len(want)]), np.zeros(len(want), np.float32))
    np.testing.assert_array_equal(y, want)


@pytest.mark.parametrize("where", ["value_info", "output"])
def test_shapes_declared_for_intermediates_are_not_trusted(where):
    """The file declares Relu's output 'r' (2, 8) for a (4, 4) input, in value_info or as a
    graph output: Shape(r) folds to what the input gives, (4, 4), as onnxruntime runs it."""
    nodes = [
        helper.make_node("Relu", ["x"], ["r"]),
        helper.make_node("Shape", ["r"], ["s"]),
        helper.make_node("Reshape", ["x", "s"], ["y"]),
    ]
    forged = helper.make_tensor_value_info("r", TensorProto.FLOAT, [2, 8])
    m = onnx.load_from_string(model(nodes, x_shape=(4, 4)))
    if where == "value_info":
        m.graph.value_info.append(forged)
    else:
        m.graph.output.insert(0, forged)
    x = np.arange(16, dtype=np.float32).reshape(4, 4)
    if where == "value_info":
        np.testing.assert_array_equal(run(m.SerializeToString(), x), x)
    else:
        r, y = convext.onnx.load(m.SerializeToString())(x)
        np.testing.assert_array_equal(y, x)


@pytest.mark.parametrize(
    "shape, match",
    [
        ([-1, 3], "negative size -1"),
        ([1] * 65, "rank 65 exceeds"),
        (["QQQQ", 3], "not valid UTF-8"),
    ],
)
def test_impossible_declared_input_shapes_are_value_errors(shape, match):
    data = model([helper.make_node("Relu", ["x"], ["y"])], x_shape=shape)
    data = data.replace(b"QQQQ", b"\xff\xfe\xfd\xfc")
    with pytest.raises(ValueError, match=f"graph input 'x': .*{match}"):
        convext.onnx.load(data)


@pytest.mark.parametrize("opset", [11, 12])
@pytest.mark.parametrize("axis, shape", [(None, (2, 3, 2, 2)), (-2, (2, 3, 4)), (0, (3, 2))])
def test_softmax_before_opset_13_is_over_the_axes_from_axis_on(opset, axis, shape):
    """The model declares a rank-2 input (any rank runs); opset 11/12's Softmax is over the
    input coerced to 2-D at axis (default 1): each row of the flattened input sums to 1."""
    attrs = {} if axis is None else {"axis": axis}
    data = model(
        [helper.make_node("Softmax", ["x"], ["y"], **attrs)], x_shape=("N", 3), opset=opset
    )
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    y = convext.onnx.load(data)(x)
    at = 1 if axis is None else axis % len(shape)
    rows = x.reshape(int(np.prod(shape[:at])), -1).astype(np.float64)
    want = np.exp(rows) / np.exp(rows).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(y, want.reshape(shape), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("opset", [11, 12, 13])
@pytest.mark.parametrize("axis, shape", [(None, (2, 3, 2, 2)), (-2, (2, 3, 4)), (0, (3, 2))])
def test_log_softmax_over_the_opsets_axes(opset, axis, shape):
    """LogSoftmax as Softmax: before opset 13 over the input coerced to 2-D at axis (default
    1), from opset 13 along axis (default -1); the log of each row's (or slice's) softmax,
    computed in float64 here."""
    attrs = {} if axis is None else {"axis": axis}
    data = model(
        [helper.make_node("LogSoftmax", ["x"], ["y"], **attrs)],
        x_shape=("N",) + shape[1:],
        opset=opset,
    )
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32) * 20
    y = convext.onnx.load(data)(x)
    v = x.astype(np.float64)
    if opset < 13:
        at = 1 if axis is None else axis % len(shape)
        rows = v.reshape(int(np.prod(shape[:at])), -1)
        m = rows.max(axis=1, keepdims=True)
        want = (rows - m - np.log(np.exp(rows - m).sum(axis=1, keepdims=True))).reshape(shape)
    else:
        at = -1 if axis is None else axis
        m = v.max(axis=at, keepdims=True)
        want = v - m - np.log(np.exp(v - m).sum(axis=at, keepdims=True))
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)
    run(data, x)


@pytest.mark.parametrize("name", ["OnnxFlatSoftmax", "OnnxFlatLogSoftmax"])
def test_flat_softmax_gradient(name):
    from convext.onnx import _ops
    from reference import numerical_grad

    layer = getattr(_ops, name)(1).train()
    x = np.random.default_rng(1).standard_normal((2, 3, 2))
    w = np.random.default_rng(2).standard_normal(x.shape)
    layer(x)
    gx = layer.backward(w)
    np.testing.assert_allclose(
        gx, numerical_grad(lambda v: float((w * layer(v)).sum()), x), rtol=1e-6, atol=1e-8
    )


def _resize(attrs, scales=None, sizes=None, x_shape=(1, 1, None, None)):
    if sizes is None:
        ins, inits = ["x", "", "s"], [("s", np.array(scales, np.float32))]
    else:
        ins, inits = ["x", "", "", "z"], [("z", np.array(sizes, np.int64))]
    return model([helper.make_node("Resize", ins, ["y"], **attrs)], inits, x_shape=x_shape)


NEAREST = dict(mode="nearest", coordinate_transformation_mode="asymmetric", nearest_mode="floor")


def test_resize_output_size_from_float32_scales():
    """torch's nn.Upsample(scale_factor=5/3) exports the float32 scale 1.6666666: 3 * 1.6666666
    is 5 in float32 (onnxruntime), 4.9999998 in float64; rows floor(i / 1.6666666)."""
    x = np.arange(9, dtype=np.float32).reshape(1, 1, 3, 3)
    y = run(_resize(NEAREST, scales=[1, 1, 5 / 3, 5 / 3]), x)
    rows = [0, 0, 1, 1, 2]
    np.testing.assert_array_equal(y, x[:, :, rows][:, :, :, rows])
    linear = dict(mode="linear", coordinate_transformation_mode="half_pixel")
    assert run(_resize(linear, scales=[1, 1, 5 / 3, 5 / 3]), x).shape == (1, 1, 5, 5)


def test_resize_nearest_reads_floor_of_i_over_scale_in_float32():
    """Scale 1/7 (float32 0.14285715) on 28 rows: row i reads floor(i / 0.14285715) in float32
    (6.9999997, 13.999999, and 20.999999 which rounds to 21.0), as onnxruntime; torch's
    floor(i * float32(7.0)) reads rows 7, 14, 21."""
    x = np.arange(28, dtype=np.float32).reshape(1, 1, 28, 1)
    y = run(_resize(NEAREST, scales=[1, 1, 1 / 7, 1]), x)
    np.testing.assert_array_equal(y.ravel(), [0, 6, 13, 21])


@pytest.mark.parametrize("mode", [NEAREST, dict(mode="linear")])
def test_resize_to_the_same_size_is_the_input(mode):
    """Scale 1.0833334 keeps 3 rows and columns: onnxruntime returns the input unchanged."""
    x = np.random.default_rng(0).standard_normal((1, 1, 3, 3)).astype(np.float32)
    np.testing.assert_array_equal(run(_resize(mode, scales=[1, 1, 1.0833334, 1.0833334]), x), x)


@pytest.mark.parametrize("sizes", [[1, 1, 1, 1], [1, 1, 1, 3], [1, 1, 5, 1]])
def test_resize_pytorch_half_pixel_to_length_1_reads_the_first_element(sizes):
    """pytorch_half_pixel maps an output axis of length 1 to source 0 (the spec), where
    half_pixel reads the middle (7.5 for a 4x4 arange)."""
    attrs = dict(mode="linear", coordinate_transformation_mode="pytorch_half_pixel")
    x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    y = run(_resize(attrs, sizes=sizes), x)
    if sizes[2] == 1:
        np.testing.assert_array_equal(
            y[0, 0, 0], run(_resize(attrs, sizes=[1, 1, 4, sizes[3]]), x)[0, 0, 0]
        )
    if sizes[3] == 1:
        np.testing.assert_array_equal(
            y[..., 0], run(_resize(attrs, sizes=[1, 1, sizes[2], 4]), x)[..., 0]
        )
    if sizes[2:] == [1, 1]:
        assert y.ravel().tolist() == [0.0]


@pytest.mark.parametrize("scale", [2.0, 5 / 3, 1 / 7, 3.0])
def test_resize_nearest_gradient_is_the_adjoint_of_its_forward(scale):
    """Nearest Resize's gradient sends each output element's back to the element it read (a
    loop over the rows and columns _nearest_source names), on the compiled path (integer
    scales, whose rows are functional's) and on the gather (the others): the adjoint of the
    forward, sum(g * forward(x)) == sum(backward(g) * x), exact on small integers."""
    from convext.onnx._ops import OnnxResize, _nearest_source

    rng = np.random.default_rng(0)
    x = rng.integers(-8, 8, (2, 3, 14, 11)).astype(np.float64)
    layer = OnnxResize(scale_factor=[scale, scale], mode="nearest")
    layer.train(True)
    y = layer.forward(x)
    rows = _nearest_source(14, y.shape[2], scale)
    cols = _nearest_source(11, y.shape[3], scale)
    np.testing.assert_array_equal(y, x[:, :, rows][:, :, :, cols])
    g = rng.integers(-8, 8, y.shape).astype(np.float64)
    gx = layer.backward(g)
    want = np.zeros(x.shape)  # each output element's gradient back to the element it read
    for i, r in enumerate(rows):
        for j, c in enumerate(cols):
            want[:, :, r, c] += g[:, :, i, j]
    np.testing.assert_array_equal(gx, want)
    assert np.sum(g * y) == np.sum(gx * x)


@pytest.mark.parametrize("side", [6, 3])
def test_same_padding_after_a_resize_uses_the_resized_size_of_the_run(side):
    """onnx's shape inference makes a Resize by 5/3 of 6 rows 9 (its product in float64); the
    run (as onnxruntime) makes 10. A Conv with auto_pad SAME right after it takes its padding
    from the run's size; a second one, whose input shape came from that inference, cannot be
    padded from a trusted size and is refused (it was padded for 9 rows: silently wrong)."""
    rng = np.random.default_rng(0)
    w = rng.standard_normal((1, 1, 3, 3)).astype(np.float32)
    resize = helper.make_node(
        "Resize",
        ["x", "", "sc"],
        ["r"],
        mode="nearest",
        coordinate_transformation_mode="asymmetric",
        nearest_mode="floor",
    )
    conv = dict(auto_pad="SAME_UPPER", strides=[2, 2], kernel_shape=[3, 3])
    inits = [("sc", np.array([1, 1, 5 / 3, 5 / 3], np.float32)), ("w", w)]
    x = rng.standard_normal((1, 1, side, side)).astype(np.float32)
    one = model([resize, helper.make_node("Conv", ["r", "w"], ["y"], **conv)], inits, x.shape)
    y = run(one, x)
    assert y.shape[-1] == -(-int(np.float32(side) * np.float32(5 / 3)) // 2)
    two = model(
        [
            resize,
            helper.make_node("Conv", ["r", "w"], ["c"], **conv),
            helper.make_node("Conv", ["c", "w"], ["y"], **conv),
        ],
        inits,
        x.shape,
    )
    with pytest.raises(ValueError, match="auto_pad"):
        convext.onnx.load(two)


def _no_shape_model(nodes, inits=(), opset=13):
    """A graph whose input declares no shape: the importer cannot know its rank."""
    g = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, None)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        initializer=[numpy_helper.from_array(np.asarray(v), k) for k, v in inits],
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    return m.SerializeToString()


@pytest.mark.parametrize("op", ["GlobalAveragePool", "GlobalMaxPool"])
def test_global_pools_take_only_4d_input(op):
    """ONNX's global pools take (N, C, D1, ...); convext's pool (H, W) of (N, C, H, W). A 3-D
    (N, C, L) input was read as one unbatched (C, H, W) image ((2, 3, 1) gave (2, 1, 1)): it is
    refused where the rank is declared, and when it arrives where it was not."""
    node = helper.make_node(op, ["x"], ["y"])
    with pytest.raises(ValueError, match=rf"\({op}\).*only 4-D input.*rank 3"):
        convext.onnx.load(model([node], x_shape=[2, 3, 1]))
    loaded = convext.onnx.load(_no_shape_model([node]))
    with pytest.raises(ValueError, match=rf"{op}: only 4-D input"):
        loaded(np.arange(6, dtype=np.float32).reshape(2, 3, 1))
    x = np.random.default_rng(3).standard_normal((2, 3, 4, 5)).astype(np.float32)
    want = run(model([node], x_shape=[2, 3, 4, 5]), x)  # declared 4-D: against onnxruntime
    np.testing.assert_array_equal(loaded(x), want)  # the run-time checked layer, same values
    np.testing.assert_allclose(
        want,
        (x.mean if op == "GlobalAveragePool" else x.max)(axis=(2, 3), keepdims=True),
        rtol=1e-6,
    )


def test_dropout_in_training_mode_is_refused():
    """Dropout's training_mode (opset 12 on) true makes it a random dropout: refused (it was
    the identity); a constant false is the identity, as onnxruntime computes it."""
    inits = [("r", np.float32(0.5)), ("t", np.array(True))]
    node = helper.make_node("Dropout", ["x", "r", "t"], ["y"])
    with pytest.raises(ValueError, match=r"\(Dropout\).*training_mode true"):
        convext.onnx.load(model([node], inits, x_shape=[8]))
    inits[1] = ("t", np.array(False))
    x = np.arange(8, dtype=np.float32)
    np.testing.assert_array_equal(run(model([node], inits, x_shape=[8]), x), x)


def test_folded_reshape_copies_a_dimension_for_0():
    """Reshape of a constant: a 0 in the target copies the input's dimension at its index
    (ONNX, allowzero 0), where NumPy's reshape took it as a length 0 and refused (2, 3) ->
    [0, 3]; a target that does not fit is a ValueError naming the node."""
    inits = [("d", np.arange(6, dtype=np.int64).reshape(2, 3)), ("s", np.array([0, 3]))]
    nodes = [helper.make_node("Reshape", ["d", "s"], ["c"])]
    x = np.zeros((2, 3), np.float32)
    np.testing.assert_array_equal(run(_folded_plus_x(nodes, inits, [2, 3]), x), inits[0][1])
    inits[1] = ("s", np.array([0, 4]))
    with pytest.raises(ValueError, match=r"\(Reshape\).*does not fit a constant of shape"):
        convext.onnx.load(_folded_plus_x(nodes, inits, [2, 3]))


def test_squeeze_with_empty_axes_is_refused():
    """Squeeze-13 with an empty axes input: the spec leaves it open (onnxruntime squeezes every
    1, onnx's reference none) and the folded and run-time paths differed: refused."""
    node = helper.make_node("Squeeze", ["x", "a"], ["y"])
    data = model([node], [("a", np.zeros(0, np.int64))], x_shape=[1, 3, 1])
    with pytest.raises(ValueError, match=r"\(Squeeze\).*empty axes"):
        convext.onnx.load(data)


@pytest.mark.parametrize("opset", [11, 13, 21])
@pytest.mark.parametrize("lo, hi", [(2.0, 1.0), (0.5, -0.5), (6.0, 0.0)])
def test_clip_with_min_above_max_gives_max(opset, lo, hi):
    """ONNX's Clip is min(max(x, min), max): with min > max every output is max (NaN stays
    NaN), as onnxruntime computes in every opset convext imports; the import refused it. Also
    after a convolution, whose epilogue computes the clip in optimize_for_inference."""
    inits = [("lo", np.float32(lo)), ("hi", np.float32(hi))]
    x = np.array([-np.inf, -3, -1, 0, 0.5, 1, 1.5, 2, 5, np.inf, np.nan, 7], np.float32)
    x = x.reshape(1, 1, 2, 6)
    want = np.where(np.isnan(x), np.nan, np.float32(hi))
    clip = helper.make_node("Clip", ["x", "lo", "hi"], ["y"])
    y = run(model([clip], inits, x_shape=x.shape, opset=opset), x)
    np.testing.assert_array_equal(y, want)
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], kernel_shape=[1, 1]),
        helper.make_node("Clip", ["c", "lo", "hi"], ["y"]),
    ]
    data = model(nodes, inits + [("w", np.ones((1, 1, 1, 1), np.float32))], x.shape, opset)
    np.testing.assert_array_equal(run(data, x), want)
    np.testing.assert_array_equal(convext.optimize_for_inference(convext.onnx.load(data))(x), want)


@pytest.mark.parametrize("opset", [11, 13, 14, 21])
def test_hardswish_is_an_operator_from_opset_14(opset):
    """HardSwish exists from opset 14: a model importing an earlier opset is refused naming the
    operator and the opsets, as onnxruntime refuses it (it was imported); from 14 it computes
    what onnxruntime computes."""
    data = model([helper.make_node("HardSwish", ["x"], ["y"])], x_shape=[8], opset=opset)
    x = np.linspace(-4, 4, 8, dtype=np.float32)
    if opset >= 14:
        np.testing.assert_allclose(run(data, x), x * np.clip(x + 3, 0, 6) / 6, rtol=1e-6)
        return
    ours = rf"\(HardSwish\): .*from opset 14.*opset {opset}"
    _refused_by_both(data, ours, "No Op registered for HardSwish")


@pytest.mark.parametrize("attr", ["start", "end"])
@pytest.mark.parametrize("opset", [11, 14, 15, 21])
def test_shape_start_and_end_are_attributes_from_opset_15(opset, attr):
    """Shape's start and end exist from opset 15: a model importing an earlier opset is refused
    naming the node, the attribute and the opsets, as onnxruntime refuses it (they were
    applied); from 15 the slice of the shape is what onnxruntime computes."""
    nodes = [
        helper.make_node("Shape", ["x"], ["s"], **{attr: 1 if attr == "start" else -1}),
        helper.make_node("Cast", ["s"], ["f"], to=TensorProto.FLOAT),
        helper.make_node("Add", ["x", "f"], ["y"]),
    ]
    data = model(nodes, x_shape=[3, 3], opset=opset)
    x = np.zeros((3, 3), np.float32)
    if opset >= 15:
        np.testing.assert_array_equal(run(data, x), np.full((3, 3), 3))
        return
    match = rf"node 0 '\(unnamed\)' \(Shape\): attribute {attr} exists from opset 15 on; the model "
    theirs = f"Unrecognized attribute: {attr} for operator Shape"
    _refused_by_both(data, match + f"imports opset {opset}", theirs)


_NEAREST = {
    "mode": "nearest",
    "coordinate_transformation_mode": "asymmetric",
    "nearest_mode": "floor",
}
_SCALES = [("s", np.array([1, 1, 2, 2], np.float32))]


@pytest.mark.parametrize(
    "nodes, inits, x_shape, attr, since",
    [
        (
            [helper.make_node("AveragePool", ["x"], ["y"], kernel_shape=[1, 1], dilations=[1, 1])],
            [],
            [1, 1, 2, 2],
            "dilations",
            19,
        ),
        (
            [helper.make_node("BatchNormalization", list("xsbmv"), ["y"], training_mode=0)],
            [(k, np.ones(1, np.float32)) for k in "sbmv"],
            [1, 1, 2, 2],
            "training_mode",
            14,
        ),
        (
            [
                helper.make_node("Cast", ["c"], ["f"], to=TensorProto.FLOAT, saturate=1),
                helper.make_node("Add", ["x", "f"], ["y"]),
            ],
            [("c", np.ones(1, np.int64))],
            [1],
            "saturate",
            19,
        ),
        ([helper.make_node("Dropout", ["x"], ["y"], seed=1)], [], [1], "seed", 12),
        (
            [helper.make_node("Reshape", ["x", "t"], ["y"], allowzero=0)],
            [("t", np.array([1], np.int64))],
            [1],
            "allowzero",
            14,
        ),
        (
            [helper.make_node("Resize", ["x", "", "s"], ["y"], antialias=0, **_NEAREST)],
            _SCALES,
            [1, 1, 2, 2],
            "antialias",
            18,
        ),
        (
            [
                helper.make_node(
                    "Resize", ["x", "", "s"], ["y"], keep_aspect_ratio_policy="stretch", **_NEAREST
                )
            ],
            _SCALES,
            [1, 1, 2, 2],
            "keep_aspect_ratio_policy",
            18,
        ),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_attributes_from_a_later_opset_are_refused_before_it(nodes, inits, x_shape, attr, since):
    """An attribute the operator gained at opset ``since`` (with a value convext computes) is
    refused in a model of the opset before, naming the node, the attribute and the opsets, as
    onnxruntime refuses it (it was read); from ``since`` on the model imports."""
    convext.onnx.load(model(nodes, inits, x_shape, since))
    data = model(nodes, inits, x_shape, since - 1)
    op = nodes[0].op_type
    match = rf"\({op}\): attribute {attr} exists from opset {since} on; the model imports opset "
    _refused_by_both(
        data, match + str(since - 1), f"Unrecognized attribute: {attr} for operator {op}"
    )


@pytest.mark.parametrize(
    "nodes, x_shape, attr, until",
    [
        ([helper.make_node("Squeeze", ["x"], ["y"], axes=[0])], [1, 3], "axes", 13),
        ([helper.make_node("Unsqueeze", ["x"], ["y"], axes=[0])], [3], "axes", 13),
        ([helper.make_node("Dropout", ["x"], ["y"], ratio=0.5)], [3], "ratio", 12),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_attributes_an_opset_dropped_are_refused_from_it(nodes, x_shape, attr, until):
    """An attribute the operator's version of opset ``until`` turned into an input is refused
    from that opset on, naming the node, the attribute and the opsets, as onnxruntime refuses
    it (Squeeze and Unsqueeze said "without axes", Dropout read its ratio); before ``until``
    the model imports."""
    convext.onnx.load(model(nodes, x_shape=x_shape, opset=until - 1))
    data = model(nodes, x_shape=x_shape, opset=until)
    op = nodes[0].op_type
    # (onnxruntime names the attribute, or, for Unsqueeze, first the missing axes input)
    refused = (
        rf"Unrecognized attribute: {attr} for operator {op}|schema\(::{op}:{until}\) has input"
    )
    match = (
        rf"\({op}\): attribute {attr} exists up to opset {until - 1} \(an input from {until} "
        rf"on\); the model imports opset {until}"
    )
    _refused_by_both(data, match, refused)


_I64, _F64 = np.array([2], np.int64), np.array([2.0], np.float64)


@pytest.mark.parametrize(
    "nodes, inits, op, types",
    [
        # a run-time float input and a constant of another type, either side
        ([helper.make_node("Add", ["x", "c"], ["y"])], [("c", _I64)], "Add", "float32 and int64"),
        ([helper.make_node("Mul", ["c", "x"], ["y"])], [("c", _I64)], "Mul", "int64 and float32"),
        (
            [helper.make_node("Sub", ["x", "c"], ["y"])],
            [("c", _F64)],
            "Sub",
            "float32 and float64",
        ),
        # a tensor whose type onnx's inference gives, and a folded Shape (int64)
        (
            [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Div", ["r", "c"], ["y"])],
            [("c", _I64)],
            "Div",
            "float32 and int64",
        ),
        (
            [helper.make_node("Shape", ["x"], ["s"]), helper.make_node("Add", ["x", "s"], ["y"])],
            [],
            "Add",
            "float32 and int64",
        ),
        # two constants, which the import folds
        (
            [
                helper.make_node("Mul", ["f", "c"], ["s"]),
                helper.make_node("Add", ["x", "s"], ["y"]),
            ],
            [("f", np.array([1.5], np.float32)), ("c", _I64)],
            "Mul",
            "float32 and int64",
        ),
        # Concat binds all its inputs to T: run-time, constant, and folded (a Shape's int64
        # with an int32 constant); Mod both of its (folded) inputs
        (
            [helper.make_node("Concat", ["x", "c"], ["y"], axis=0)],
            [("c", _F64)],
            "Concat",
            "float32 and float64",
        ),
        (
            [
                helper.make_node("Shape", ["x"], ["s"]),
                helper.make_node("Concat", ["s", "c"], ["t"], axis=0),
                helper.make_node("Reshape", ["x", "t"], ["y"]),
            ],
            [("c", np.array([1], np.int32))],
            "Concat",
            "int64 and int32",
        ),
        (
            [
                helper.make_node("Mod", ["c", "d"], ["m"], fmod=1),
                helper.make_node("Add", ["x", "m"], ["y"]),
            ],
            [("c", np.array([1.5], np.float32)), ("d", _F64)],
            "Mod",
            "float32 and float64",
        ),
        (
            [
                helper.make_node("Mod", ["c", "d"], ["m"]),
                helper.make_node("Cast", ["m"], ["f"], to=TensorProto.FLOAT),
                helper.make_node("Add", ["x", "f"], ["y"]),
            ],
            [("c", _I64), ("d", np.array([2], np.int32))],
            "Mod",
            "int64 and int32",
        ),
    ],
)
def test_ops_take_inputs_of_one_type(nodes, inits, op, types):
    """Add, Sub, Mul, Div, Concat and Mod bind all their inputs to one type T: a float32 tensor
    with an int64 or float64 one (or int64 with int32) is refused naming the node and both
    types, as onnxruntime refuses the model (the import computed it, converting one)."""
    _refused_for_two_types(model(nodes, inits, x_shape=[1]), op, types)


def _refused_for_two_types(data, op, types, param="T", inputs="its inputs"):
    """The model's node of ``op`` is refused naming ``inputs`` and the two ``types``, and
    onnxruntime refuses it for type parameter ``param``."""
    match = rf"node \d '\(unnamed\)' \({op}\): {inputs} have different element types, {types}"
    _refused_by_both(data, match, rf"Type parameter \({param}\) of Optype \({op}\) bound to")


_W64 = np.ones((1, 1, 1, 1), np.float64)


@pytest.mark.parametrize(
    "node, inits, x_shape",
    [
        # Clip's input, min and max are all T
        (helper.make_node("Clip", ["x", "lo"], ["y"]), [("lo", np.float64(0))], [1]),
        (
            helper.make_node("Clip", ["x", "lo", "hi"], ["y"]),
            [("lo", np.float32(0)), ("hi", np.float64(6))],
            [1],
        ),
        # the weight, or the bias, of another type than the input: the import converted it
        (
            helper.make_node("Gemm", ["x", "w"], ["y"], transB=1),
            [("w", np.ones((2, 1)))],
            [1, 1],
        ),
        (
            helper.make_node("Gemm", ["x", "w", "b"], ["y"], transB=1),
            [("w", np.ones((2, 1), np.float32)), ("b", np.ones(2))],
            [1, 1],
        ),
        (helper.make_node("MatMul", ["x", "w"], ["y"]), [("w", np.ones((1, 2)))], [1, 1]),
        (helper.make_node("Conv", ["x", "w"], ["y"]), [("w", _W64)], [1, 1, 2, 2]),
        (
            helper.make_node("Conv", ["x", "w", "b"], ["y"]),
            [("w", _W64.astype(np.float32)), ("b", np.ones(1))],
            [1, 1, 2, 2],
        ),
        (helper.make_node("ConvTranspose", ["x", "w"], ["y"]), [("w", _W64)], [1, 1, 2, 2]),
    ],
    ids=["Clip-min", "Clip-max", "Gemm-B", "Gemm-C", "MatMul", "Conv-W", "Conv-B", "ConvTranspose"],
)
def test_layer_ops_take_inputs_of_one_type(node, inits, x_shape):
    """Clip, Gemm, MatMul, Conv and ConvTranspose bind all their inputs to one type T: a float32
    input with a float64 min, max, weight or bias is refused naming the node and both types, as
    onnxruntime refuses the model (the import converted the constant)."""
    data = model([node], inits, x_shape=x_shape)
    _refused_for_two_types(data, node.op_type, "float32 and float64")


_BN_INPUTS = {k: np.ones(1, np.float32) for k in ("s", "b", "m", "v")}
_BN = helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"])


@pytest.mark.parametrize(
    "nodes, inits, opset, param, names",
    [
        # Pad's data and constant_value are T (its pads int64)
        (
            [helper.make_node("Pad", ["x", "p", "v"], ["y"])],
            {"p": np.array([0, 0, 0, 0, 0, 0, 1, 1], np.int64), "v": np.float64(0)},
            13,
            "T",
            "data and constant_value",
        ),
        # Slice's starts, ends, axes and steps are Tind (int32 or int64; its data T), folded
        (
            [
                helper.make_node("Slice", ["d", "s", "e"], ["c"]),
                helper.make_node("Add", ["x", "c"], ["y"]),
            ],
            {
                "d": np.ones(1, np.float32),
                "s": np.array([0], np.int32),
                "e": np.array([1], np.int64),
            },
            13,
            "Tind",
            "starts, ends, axes and steps",
        ),
        # BatchNormalization: all five T before opset 14; X, scale, B T and mean, var U in 14;
        # from 15 scale, B T1 and mean, var T2 (X its own T)
        ([_BN], {**_BN_INPUTS, "v": np.ones(1)}, 13, "T", ""),
        ([_BN], {**_BN_INPUTS, "b": np.ones(1)}, 14, "T", "X, scale and B"),
        ([_BN], {**_BN_INPUTS, "v": np.ones(1)}, 14, "U", "input_mean and input_var"),
        ([_BN], {**_BN_INPUTS, "b": np.ones(1)}, 15, "T1", "scale and B"),
        ([_BN], {**_BN_INPUTS, "v": np.ones(1)}, 21, "T2", "input_mean and input_var"),
    ],
    ids=["Pad", "Slice", "BN-13-T", "BN-14-T", "BN-14-U", "BN-15-T1", "BN-21-T2"],
)
def test_some_inputs_take_one_type(nodes, inits, opset, param, names):
    """Inputs an operator binds to one type parameter, beside others of their own types, must
    have one element type: refused naming those inputs and both types, as onnxruntime refuses
    the model (the import converted the constant, or sliced with it)."""
    data = model(nodes, list(inits.items()), x_shape=[1, 1, 1, 1], opset=opset)
    types = "float32 and float64" if param != "Tind" else "int32 and int64"
    _refused_for_two_types(data, nodes[0].op_type, types, param, f"its inputs {names}".strip())


def test_inputs_of_other_type_parameters_still_load():
    """The groups are the spec's, not "every input": Pad's int64 pads beside float32 data,
    Slice's int32 bounds on float32 data, and (opset 15) float64 scale, B, mean and var of a
    float32 X import and compute (onnxruntime has no kernel for those BatchNormalization
    types: against the formula)."""
    x = np.array([[[[2.0]]]], np.float32)
    nodes = [
        helper.make_node("Slice", ["d", "s", "e"], ["c"]),
        helper.make_node("Pad", ["x", "p", "v"], ["q"]),
        helper.make_node("Add", ["q", "c"], ["z"]),
        helper.make_node("BatchNormalization", ["z", "s2", "b2", "m2", "v2"], ["y"]),
    ]
    inits = {
        "d": np.array([5.0, 7.0], np.float32),
        "s": np.array([1], np.int32),
        "e": np.array([2], np.int32),
        "p": np.array([0, 0, 0, 0, 0, 0, 0, 1], np.int64),
        "v": np.float32(-1),
        "s2": np.array([2.0]),
        "b2": np.array([1.0]),
        "m2": np.array([3.0]),
        "v2": np.array([4.0]),
    }
    data = model(nodes, list(inits.items()), x_shape=x.shape, opset=15)
    y = convext.onnx.load(data)(x)
    want = (np.array([[[[2.0 + 7, -1 + 7]]]]) - 3) / np.sqrt(4 + 1e-5) * 2 + 1
    np.testing.assert_allclose(y, want, rtol=1e-6)
