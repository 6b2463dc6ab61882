"""ONNX import against onnxruntime (and torch): small torch models exported with
torch.onnx.export that together use every supported operator, hand-built graphs for what torch
does not emit (auto_pad SAME_UPPER/SAME_LOWER with a stride, asymmetric pads on every pool,
Pad reflect/edge, Resize), batch 1 and 4 within float32 tolerance; and training an imported
model: the Graph's gradients equal torch autograd's on the original model (float64)."""

import io
import os
import warnings

import numpy as np
import pytest

if os.environ.get("CONVEXT_ASAN") == "1":
    # the onnx package (protobuf) and onnxruntime report errors with C++ exceptions, which
    # abort the process under ASan's __cxa_throw interceptor (inside them, not convext); the
    # normal and debug runs cover this file
    pytest.skip("onnx's C++ exceptions abort under AddressSanitizer", allow_module_level=True)
torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import convext  # noqa: E402
import convext.onnx  # noqa: E402

nn = torch.nn
TF = torch.nn.functional
RTOL, ATOL = 1e-4, 2e-5


def export(model, shape, opset=13, **kw):
    f = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model.eval(),
            torch.zeros(shape, dtype=torch.float32),
            f,
            dynamo=False,
            opset_version=opset,
            input_names=["x"],
            output_names=["y"],
            dynamic_axes={"x": {0: "N"}, "y": {0: "N"}},
            do_constant_folding=False,
            training=torch.onnx.TrainingMode.PRESERVE,
            **kw,
        )
    return f.getvalue()


def compare(data, shape, batches=(1, 4)):
    graph = convext.onnx.load(data)
    sess = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(7)
    for n in batches:
        x = rng.standard_normal((n,) + tuple(shape[1:])).astype(np.float32)
        want = sess.run(None, {sess.get_inputs()[0].name: x})[0]
        got = graph(x)
        assert got.shape == want.shape and got.dtype == np.float32
        np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)
    return graph


class Decoder(nn.Module):
    """ConvTranspose (stride, padding, output_padding, groups, dilation) and a U-Net skip."""

    def __init__(self):
        super().__init__()
        self.down = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.up = nn.ConvTranspose2d(8, 4, 3, stride=2, padding=1, output_padding=1)
        self.up2 = nn.ConvTranspose2d(7, 6, 2, stride=1, padding=0, groups=1, dilation=2)
        self.up3 = nn.ConvTranspose2d(
            6, 4, 3, stride=3, padding=2, output_padding=2, groups=2, bias=False
        )

    def forward(self, x):
        y = TF.relu(self.up(TF.relu(self.down(x))))
        y = self.up2(torch.cat([y, x], 1))
        return self.up3(y)


def test_conv_transpose_matches_onnxruntime_and_torch_gradients():
    torch.manual_seed(4)
    m = Decoder()
    data = export(m, (1, 3, 8, 6))
    compare(data, (1, 3, 8, 6))
    graph = convext.onnx.load(data, dtype="float64").train()
    m = m.double()
    x = np.random.default_rng(2).standard_normal((2, 3, 8, 6))
    xt = torch.tensor(x, requires_grad=True)
    out = m(xt)
    w = np.random.default_rng(3).standard_normal(tuple(out.shape))
    (out * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(graph(x), out.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(graph.backward(w), xt.grad.numpy(), rtol=1e-9, atol=1e-12)
    grads = graph.grads()
    for name, p in m.named_parameters():
        np.testing.assert_allclose(grads[name], p.grad.numpy(), rtol=1e-9, atol=1e-12, err_msg=name)


def test_conv_transpose_asymmetric_pads():
    wt = RNG.standard_normal((3, 2, 3, 2)).astype(np.float32)
    node = helper.make_node(
        "ConvTranspose",
        ["x", "w"],
        ["y"],
        kernel_shape=[3, 2],
        strides=[2, 3],
        pads=[0, 1, 2, 0],
        output_padding=[1, 0],
    )
    compare(_model([node], [None, 3, 5, 4], inits=[("w", wt)]), (1, 3, 5, 4))


class Convs(nn.Module):
    """Conv (bias, groups, dilation, stride), BatchNorm, ReLU6 (Clip), LeakyReLU, MaxPool
    (ceil_mode, dilation), AvgPool (count_include_pad both ways), hardswish, hardsigmoid,
    sigmoid, tanh, Concat, GlobalAveragePool, Flatten, Gemm, Softmax."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 8, 3, stride=2, padding=2, dilation=2, groups=4, bias=False)
        self.bn2 = nn.BatchNorm2d(8)
        self.conv3 = nn.Conv2d(16, 6, 1)
        self.fc = nn.Linear(6, 5)

    def forward(self, x):
        x = TF.relu6(self.bn1(self.conv1(x)))
        a = TF.leaky_relu(self.bn2(self.conv2(x)), 0.1)
        b = TF.max_pool2d(x, 3, 2, 1, dilation=1, ceil_mode=True)
        b = TF.hardswish(b)
        b = TF.avg_pool2d(b, 3, 1, 1, count_include_pad=False)
        a = torch.sigmoid(a) * TF.hardsigmoid(a) + torch.tanh(TF.avg_pool2d(a, 3, 1, 1))
        y = self.conv3(torch.cat([a, b], 1))
        y = TF.max_pool2d(y, 2, 1, 0, dilation=2)
        y = torch.flatten(TF.adaptive_avg_pool2d(y, 1), 1)
        return torch.softmax(self.fc(y), dim=1)


class ShapesNoMean(nn.Module):
    """Add/Sub/Mul/Div with constants broadcast per channel, Shape/Gather/Concat/Reshape
    (x.view(x.size(0), -1)), squeeze/unsqueeze, permute, matmul with a constant weight,
    Resize (nearest, bilinear both ways), Pad (constant, reflect, replicate), global max
    pooling (torch drops Dropout and Identity from an eval-mode export)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, padding=1)
        self.register_buffer("scale", torch.linspace(0.5, 2.0, 4).reshape(4, 1, 1))
        self.register_buffer("w", torch.randn(12, 3))
        self.drop = nn.Dropout(0.3)
        self.ident = nn.Identity()

    def forward(self, x):
        y = self.conv(x) * self.scale - 0.25
        y = (y + x) / 3.0
        u = TF.interpolate(y, scale_factor=2, mode="nearest")
        u = TF.pad(u, (1, 2, 0, 1), mode="reflect")
        v = TF.interpolate(y, scale_factor=2, mode="bilinear", align_corners=False)
        v = TF.pad(v, (1, 2, 0, 1), mode="replicate")
        w = TF.interpolate(y, size=(13, 12), mode="bilinear", align_corners=True)
        z = torch.cat([u, v, TF.pad(w, (1, 0, 0, 0), value=1.5)], 1)
        g = TF.adaptive_max_pool2d(z, 1)
        g = g.squeeze(3).squeeze(2).unsqueeze(1)
        g = self.ident(self.drop(g))
        h = (g @ self.w).permute(0, 2, 1)
        return h.reshape(h.size(0), -1)


@pytest.mark.parametrize("opset", [11, 13, 17])
def test_convs_model_matches_onnxruntime(opset):
    torch.manual_seed(0)
    m = Convs()
    with torch.no_grad():  # non-trivial running statistics
        for bn in (m.bn1, m.bn2):
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
    graph = compare(export(m, (1, 3, 15, 15), opset), (1, 3, 15, 15))
    ops = {type(layer).__name__ for _, layer, _ in graph.nodes}
    if opset >= 14:  # HardSwish is an operator from opset 14 (before: HardSigmoid and Mul)
        assert "OnnxHardSwish" in ops
    assert {
        "Conv2D",
        "BatchNorm2D",
        "OnnxClip",
        "LeakyReLU",
        "MaxPool2D",
        "AvgPool2D",
        "OnnxHardSigmoid",
        "Sigmoid",
        "Tanh",
        "Cat",
        "GlobalAvgPool2D",
        "OnnxFlatten",
        "Dense",
        "Softmax" if opset >= 13 else "OnnxFlatSoftmax",
        "Mul",
        "Add",
    } <= ops


class LogSoftmaxNet(nn.Module):
    """The classifier head of torch's MNIST example: log_softmax over the classes."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, stride=2)
        self.fc = nn.Linear(4 * 6 * 6, 10)

    def forward(self, x):
        y = torch.flatten(TF.relu(self.conv(x)), 1)
        return TF.log_softmax(self.fc(y), dim=1)


@pytest.mark.parametrize("opset", [11, 13, 17])
def test_log_softmax_classifier_matches_onnxruntime_and_torch(opset):
    torch.manual_seed(3)
    m = LogSoftmaxNet().eval()
    graph = compare(export(m, (1, 1, 14, 14), opset), (1, 1, 14, 14))
    ops = {type(layer).__name__ for _, layer, _ in graph.nodes}
    assert ("LogSoftmax" if opset >= 13 else "OnnxFlatLogSoftmax") in ops
    x = np.random.default_rng(4).standard_normal((3, 1, 14, 14)).astype(np.float32)
    with torch.no_grad():
        want = m(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(graph(x), want, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("opset", [11, 13, 18, 21])
def test_shape_ops_model_matches_onnxruntime(opset):
    torch.manual_seed(1)
    graph = compare(export(ShapesNoMean(), (1, 4, 6, 5), opset), (1, 4, 6, 5))
    ops = {type(layer).__name__ for _, layer, _ in graph.nodes}
    assert {
        "Mul",
        "Sub",
        "Add",
        "Div",
        "Constant",
        "OnnxResize",
        "Pad",
        "Cat",
        "OnnxGlobalMaxPool",
        "OnnxSqueeze",
        "OnnxUnsqueeze",
        "Dense",
        "Transpose",
        "Reshape",
    } <= ops


# -- hand-built graphs -------------------------------------------------------------------
def _model(nodes, x_shape, y_shape=(None, None, None, None), inits=(), opset=13):
    g = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, list(y_shape))],
        initializer=[numpy_helper.from_array(v, k) for k, v in inits],
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    return m.SerializeToString()


RNG = np.random.default_rng(3)
W = RNG.standard_normal((4, 3, 3, 3)).astype(np.float32)
B = RNG.standard_normal(4).astype(np.float32)


@pytest.mark.parametrize(
    "attrs",
    [
        dict(auto_pad="SAME_UPPER", strides=[2, 2]),
        dict(auto_pad="SAME_LOWER", strides=[2, 2]),
        dict(auto_pad="SAME_UPPER", strides=[3, 2]),  # (onnxruntime refuses SAME with dilation)
        dict(auto_pad="VALID", strides=[2, 1]),
        dict(pads=[0, 1, 2, 1], strides=[1, 2]),
        dict(pads=[1, 1, 1, 1]),
        dict(auto_pad="SAME_LOWER", strides=[3, 2]),
        dict(auto_pad="SAME_UPPER", strides=[1, 1]),
        dict(pads=[3, 0, 0, 4], strides=[2, 3]),
        dict(pads=[2, 1, 0, 0], dilations=[2, 1]),
    ],
)
def test_conv_pads_and_auto_pad(attrs):
    node = helper.make_node("Conv", ["x", "w", "b"], ["y"], kernel_shape=[3, 3], **attrs)
    data = _model([node], [None, 3, 11, 10], inits=[("w", W), ("b", B)])
    graph = compare(data, (1, 3, 11, 10))
    # auto_pad SAME pads for the declared 11x10 plane, so the graph checks its input first
    same = attrs.get("auto_pad", "").startswith("SAME")
    want = ["OnnxInputShape", "Conv2D"] if same else ["Conv2D"]
    assert [type(layer).__name__ for _, layer, _ in graph.nodes] == want


@pytest.mark.parametrize(
    "op, attrs",
    [
        ("MaxPool", dict(kernel_shape=[3, 3], strides=[2, 2], auto_pad="SAME_UPPER")),
        ("MaxPool", dict(kernel_shape=[2, 3], strides=[2, 2], auto_pad="SAME_LOWER")),
        ("MaxPool", dict(kernel_shape=[3, 3], pads=[0, 1, 2, 0])),
        ("MaxPool", dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1)),
        ("MaxPool", dict(kernel_shape=[2, 2], dilations=[2, 2], pads=[1, 0, 1, 0])),
        ("AveragePool", dict(kernel_shape=[3, 3], strides=[2, 2], auto_pad="SAME_UPPER")),
        (
            "AveragePool",
            dict(kernel_shape=[3, 3], strides=[2, 2], auto_pad="SAME_UPPER", count_include_pad=1),
        ),
        ("AveragePool", dict(kernel_shape=[3, 2], pads=[2, 0, 0, 1], count_include_pad=0)),
        ("AveragePool", dict(kernel_shape=[3, 2], pads=[2, 0, 0, 1], count_include_pad=1)),
        ("AveragePool", dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1], count_include_pad=0)),
        (
            "AveragePool",
            dict(
                kernel_shape=[3, 3],
                strides=[2, 2],
                pads=[1, 1, 1, 1],
                ceil_mode=1,
                count_include_pad=0,
            ),
        ),
        (
            "AveragePool",
            dict(
                kernel_shape=[3, 3],
                strides=[2, 2],
                pads=[1, 1, 1, 1],
                ceil_mode=1,
                count_include_pad=1,
            ),
        ),
        ("AveragePool", dict(kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1)),
        ("MaxPool", dict(kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1)),
        # per-side pads within half the kernel go straight to the pools (with ceil_mode too)
        ("MaxPool", dict(kernel_shape=[3, 3], strides=[2, 2], pads=[0, 1, 1, 0], ceil_mode=1)),
        (
            "MaxPool",
            dict(
                kernel_shape=[3, 2],
                strides=[2, 3],
                pads=[1, 0, 0, 1],
                ceil_mode=1,
                dilations=[2, 1],
            ),
        ),
        ("MaxPool", dict(kernel_shape=[4, 4], strides=[3, 3], pads=[2, 0, 1, 2])),
        (
            "AveragePool",
            dict(
                kernel_shape=[3, 3],
                strides=[2, 2],
                pads=[1, 0, 0, 1],
                ceil_mode=1,
                count_include_pad=0,
            ),
        ),
        (
            "AveragePool",
            dict(
                kernel_shape=[3, 3],
                strides=[2, 2],
                pads=[1, 0, 0, 1],
                ceil_mode=1,
                count_include_pad=1,
            ),
        ),
        (
            "AveragePool",
            dict(kernel_shape=[4, 3], strides=[3, 2], pads=[0, 2, 1, 0], count_include_pad=1),
        ),
        (
            "AveragePool",
            dict(kernel_shape=[4, 3], strides=[3, 2], pads=[0, 2, 1, 0], count_include_pad=0),
        ),
        ("MaxPool", dict(kernel_shape=[3, 2], strides=[2, 3], auto_pad="SAME_LOWER", ceil_mode=1)),
        (
            "AveragePool",
            dict(kernel_shape=[4, 3], strides=[3, 2], auto_pad="SAME_LOWER", count_include_pad=0),
        ),
        # pads beyond half the kernel: the exact fallback (explicit Pad node, or
        # OnnxAvgPoolExcludePad)
        ("MaxPool", dict(kernel_shape=[3, 3], strides=[2, 1], pads=[2, 0, 0, 2])),
        (
            "AveragePool",
            dict(kernel_shape=[3, 3], strides=[1, 2], pads=[0, 2, 2, 1], count_include_pad=0),
        ),
        ("GlobalMaxPool", {}),
        ("GlobalAveragePool", {}),
    ],
)
def test_pools_pads_and_auto_pad(op, attrs):
    node = helper.make_node(op, ["x"], ["y"], **attrs)
    graph = compare(_model([node], [None, 2, 9, 8]), (1, 2, 9, 8))
    # per-side pads go to the pool itself; only pads beyond half the kernel (which the pools
    # cannot express) need the explicit Pad node or OnnxAvgPoolExcludePad
    pads, k = attrs.get("pads", [0, 0, 0, 0]), attrs.get("kernel_shape", [1, 1])
    beyond = any(p > k[i % 2] // 2 for i, p in enumerate(pads))
    kinds = {type(layer).__name__ for _, layer, _ in graph.nodes}
    assert bool(kinds & {"Pad", "OnnxAvgPoolExcludePad"}) == beyond, kinds


@pytest.mark.parametrize("mode", ["constant", "reflect", "edge"])
def test_pad_modes(mode):
    pads = np.array([0, 0, 1, 2, 0, 0, 2, 1], np.int64)
    inits = [("pads", pads)]
    ins = ["x", "pads"]
    if mode == "constant":
        inits.append(("v", np.array(0.75, np.float32)))
        ins.append("v")
    node = helper.make_node("Pad", ins, ["y"], mode=mode)
    compare(_model([node], [None, 2, 5, 4], inits=inits), (1, 2, 5, 4))


@pytest.mark.parametrize(
    "attrs, scales",
    [
        (
            dict(mode="nearest", coordinate_transformation_mode="asymmetric", nearest_mode="floor"),
            [1, 1, 2, 3],
        ),
        (dict(mode="linear", coordinate_transformation_mode="half_pixel"), [1, 1, 2, 2]),
        (dict(mode="linear", coordinate_transformation_mode="pytorch_half_pixel"), [1, 1, 3, 2]),
    ],
)
def test_resize(attrs, scales):
    inits = [("roi", np.zeros(0, np.float32)), ("scales", np.array(scales, np.float32))]
    node = helper.make_node("Resize", ["x", "roi", "scales"], ["y"], **attrs)
    compare(_model([node], [None, 2, 4, 5], inits=inits), (1, 2, 4, 5))


def test_resize_sizes_align_corners_and_softmax_hardsigmoid():
    inits = [("roi", np.zeros(0, np.float32)), ("sizes", np.array([1, 2, 7, 9], np.int64))]
    nodes = [
        helper.make_node(
            "Resize",
            ["x", "roi", "", "sizes"],
            ["r"],
            mode="linear",
            coordinate_transformation_mode="align_corners",
        ),
        helper.make_node("HardSigmoid", ["r"], ["h"], alpha=0.3, beta=0.4),
        helper.make_node("Softmax", ["h"], ["y"], axis=2),
    ]
    compare(_model(nodes, [1, 2, 4, 5], inits=inits), (1, 2, 4, 5), batches=(1,))


def test_dropout_identity_constant_and_arithmetic_nodes():
    c = np.array([0.5, -1.0], np.float32).reshape(2, 1, 1)
    nodes = [
        helper.make_node("Constant", [], ["c"], value=numpy_helper.from_array(c)),
        helper.make_node("Dropout", ["x", "ratio"], ["d", "mask"]),
        helper.make_node("Identity", ["d"], ["i"]),
        helper.make_node("Sub", ["c", "i"], ["s"]),
        helper.make_node("Div", ["s", "two"], ["q"]),
        helper.make_node("Mul", ["q", "i"], ["m"]),
        helper.make_node("GlobalMaxPool", ["m"], ["g"]),
        helper.make_node("Add", ["g", "m"], ["y"]),
    ]
    inits = [("ratio", np.array(0.25, np.float32)), ("two", np.array([2.0], np.float32))]
    graph = compare(_model(nodes, [None, 2, 3, 4], inits=inits), (1, 2, 3, 4))
    assert graph.node("dropout").p == 0.25 and not graph.training


# -- training an imported model: gradients equal torch's (float64) --------------------------
class Res(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(6)
        self.conv2 = nn.Conv2d(6, 6, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(6)
        self.short = nn.Conv2d(3, 6, 1)
        self.fc = nn.Linear(6 * 4 * 4, 5)

    def forward(self, x):
        y = TF.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y)) + self.short(x)
        y = TF.max_pool2d(TF.relu6(y), 2)
        return self.fc(y.view(y.size(0), -1))


def test_graph_backward_equals_torch_autograd_float64():
    torch.manual_seed(5)
    m = Res()
    graph = convext.onnx.load(export(m, (1, 3, 8, 8)), dtype="float64")
    assert {k: tuple(v.shape) for k, v in graph.parameters().items()} == {
        k: tuple(v.shape) for k, v in m.named_parameters()
    }
    m = m.double().train()
    graph.train()
    rng = np.random.default_rng(11)
    x = rng.standard_normal((4, 3, 8, 8))
    w = rng.standard_normal((4, 5))
    xt = torch.tensor(x, requires_grad=True)
    out = m(xt)
    (out * torch.tensor(w)).sum().backward()
    y = graph(x)
    np.testing.assert_allclose(y, out.detach().numpy(), rtol=1e-10, atol=1e-12)
    gx = graph.backward(w)
    np.testing.assert_allclose(gx, xt.grad.numpy(), rtol=1e-9, atol=1e-12)
    grads = graph.grads()
    for name, p in m.named_parameters():
        np.testing.assert_allclose(grads[name], p.grad.numpy(), rtol=1e-9, atol=1e-12, err_msg=name)
    # the running statistics were updated as torch's
    sd = graph.state_dict()
    for name, b in m.named_buffers():
        np.testing.assert_allclose(sd[name], b.numpy(), rtol=1e-6, atol=1e-7, err_msg=name)


@pytest.mark.parametrize(
    "make, shape", [(ShapesNoMean, (1, 4, 6, 5)), (Decoder, (1, 3, 8, 6)), (Convs, (1, 3, 15, 15))]
)
def test_imported_graph_saves_and_loads(tmp_path, make, shape):
    torch.manual_seed(2)
    data = export(make(), shape, opset=17)
    graph = convext.onnx.load(data)
    graph.save(tmp_path / "m.npz")
    again = convext.load(tmp_path / "m.npz").eval()
    x = np.random.default_rng(0).standard_normal((2,) + shape[1:]).astype(np.float32)
    np.testing.assert_array_equal(again(x), graph(x))


# -- real architectures: torchvision's resnet18 and mobilenet_v2 (module names as torchvision;
# torchvision itself does not import beside this torch build) ----------------------------------
class BasicBlock(nn.Module):
    def __init__(self, cin, c, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, c, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(c, c, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)
        self.downsample = None
        if stride != 1 or cin != c:
            self.downsample = nn.Sequential(
                nn.Conv2d(cin, c, 1, stride, bias=False), nn.BatchNorm2d(c)
            )

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + (x if self.downsample is None else self.downsample(x)))


class ResNet18(nn.Module):
    def __init__(self, num_classes=1000):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        cin = 64
        for i, c in enumerate((64, 128, 256, 512)):
            s = 1 if i == 0 else 2
            setattr(
                self, f"layer{i + 1}", nn.Sequential(BasicBlock(cin, c, s), BasicBlock(c, c, 1))
            )
            cin = c
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512, num_classes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def conv_bn(cin, cout, k, s, groups=1):
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, s, (k - 1) // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU6(inplace=True),
    )


class InvertedResidual(nn.Module):
    def __init__(self, cin, cout, s, t):
        super().__init__()
        hidden = cin * t
        self.use_res = s == 1 and cin == cout
        layers = [conv_bn(cin, hidden, 1, 1)] if t != 1 else []
        layers += [
            conv_bn(hidden, hidden, 3, s, groups=hidden),
            nn.Conv2d(hidden, cout, 1, 1, 0, bias=False),
            nn.BatchNorm2d(cout),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.conv(x) if self.use_res else self.conv(x)


class MobileNetV2(nn.Module):
    def __init__(self, num_classes=1000, dropout=0.2):
        super().__init__()
        cfg = [
            (1, 16, 1, 1),
            (6, 24, 2, 2),
            (6, 32, 3, 2),
            (6, 64, 4, 2),
            (6, 96, 3, 1),
            (6, 160, 3, 2),
            (6, 320, 1, 1),
        ]
        feats, cin = [conv_bn(3, 32, 3, 2)], 32
        for t, c, n, s in cfg:
            for i in range(n):
                feats.append(InvertedResidual(cin, c, s if i == 0 else 1, t))
                cin = c
        feats.append(conv_bn(cin, 1280, 1, 1))
        self.features = nn.Sequential(*feats)
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(1280, num_classes))

    def forward(self, x):
        x = TF.adaptive_avg_pool2d(self.features(x), 1)
        return self.classifier(torch.flatten(x, 1))


def double_conv(cin, cout):
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class UNet(nn.Module):
    """A U-Net of depth 2: max-pool encoder, one transposed-convolution and one bilinear
    upsampling decoder step, concatenated skips."""

    def __init__(self, num_classes=2, c=8):
        super().__init__()
        self.inc = double_conv(3, c)
        self.down1 = double_conv(c, 2 * c)
        self.down2 = double_conv(2 * c, 4 * c)
        self.up1 = nn.ConvTranspose2d(4 * c, 2 * c, 2, stride=2)
        self.conv1 = double_conv(4 * c, 2 * c)
        self.conv2 = double_conv(3 * c, c)
        self.outc = nn.Conv2d(c, num_classes, 1)

    def forward(self, x):
        x1 = self.inc(x)
        x2 = self.down1(TF.max_pool2d(x1, 2))
        x3 = self.down2(TF.max_pool2d(x2, 2))
        y = self.conv1(torch.cat([x2, self.up1(x3)], 1))
        y = TF.interpolate(y, scale_factor=2, mode="bilinear", align_corners=True)
        return self.outc(self.conv2(torch.cat([x1, y], 1)))


def _randomise_bn(m):
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.2, 0.2)
                mod.running_var.uniform_(0.5, 1.5)
                mod.weight.uniform_(0.5, 1.5)
                mod.bias.uniform_(-0.2, 0.2)
    return m


def graph_key(torch_name):
    """The imported graph's name of a torch parameter: node names have no dots."""
    module, param = torch_name.rsplit(".", 1)
    return module.replace(".", "_") + "." + param


@pytest.mark.parametrize("make", [ResNet18, MobileNetV2, UNet])
def test_zoo_architectures_match_onnxruntime(make):
    torch.manual_seed(0)
    m = _randomise_bn(make(num_classes=10))
    graph = compare(export(m, (1, 3, 64, 64)), (1, 3, 64, 64))
    assert {graph_key(k) for k, _ in m.named_parameters()} == set(graph.parameters())


def test_sgd_steps_on_imported_mobilenet_v2_match_torch():
    # 64x64 input: the last blocks still normalise 2x2 planes (4x4 values per channel); at
    # 32x32 they normalise 4 values and train-mode BatchNorm amplifies float64 rounding
    # (the projection BNs' bias gradients are mathematically 0 and numerically ~1e-14)
    torch.manual_seed(1)
    m = _randomise_bn(MobileNetV2(num_classes=5, dropout=0.0))
    graph = convext.onnx.load(export(m, (1, 3, 64, 64)), dtype="float64").train()
    m = m.double().train()
    opt_t = torch.optim.SGD(m.parameters(), lr=0.05, momentum=0.9)
    opt_c = convext.optim.SGD(graph, lr=0.05, momentum=0.9)
    rng = np.random.default_rng(5)
    for _ in range(3):
        x = rng.standard_normal((4, 3, 64, 64))
        labels = rng.integers(0, 5, 4)
        opt_t.zero_grad()
        loss_t = TF.cross_entropy(m(torch.tensor(x)), torch.tensor(labels))
        loss_t.backward()
        opt_t.step()
        opt_c.zero_grad()
        loss_c, g = convext.functional.cross_entropy(graph(x), labels)
        graph.backward(g)
        opt_c.step()
        np.testing.assert_allclose(loss_c, loss_t.item(), rtol=1e-9)
    params = graph.parameters()
    for name, p in m.named_parameters():  # parameters of scale ~1 after 3 steps: agree to ~1e-10
        np.testing.assert_allclose(
            params[graph_key(name)], p.detach().numpy(), rtol=1e-8, atol=1e-9, err_msg=name
        )
