"""Composite layers: children assigned to attributes or held in containers are owned (state,
modes, repr, save/load recurse with torch's dotted names); Residual, Concat and Identity need
no hand-written backward; a layer instance appears once in a model. No torch here (the torch
comparison is tests/parity/test_parity_composite.py)."""

import numpy as np
import pytest

import convext as cx
from convext import layers as L
from convext.layers import registry
from reference import numerical_grad


@cx.register_layer(name="test_composite.BasicBlock")
class BasicBlock(cx.Layer):
    """ResNet's basic block with torchvision's attribute names (relu1/relu2: one instance per
    use; ReLU has no state, so the keys are torchvision's)."""

    def __init__(self, in_channels, channels, stride=1, dtype="float64"):
        super().__init__()
        self.in_channels, self.channels, self.stride = in_channels, channels, stride
        self.dtype = np.dtype(dtype)
        self.conv1 = L.Conv2D(in_channels, channels, 3, stride, 1, bias=False, dtype=dtype)
        self.bn1 = L.BatchNorm2D(channels, dtype=dtype)
        self.relu1 = L.ReLU()
        self.conv2 = L.Conv2D(channels, channels, 3, 1, 1, bias=False, dtype=dtype)
        self.bn2 = L.BatchNorm2D(channels, dtype=dtype)
        self.relu2 = L.ReLU()
        self.downsample = None
        if stride != 1 or in_channels != channels:
            self.downsample = L.Sequential(
                L.Conv2D(in_channels, channels, 1, stride, bias=False, dtype=dtype),
                L.BatchNorm2D(channels, dtype=dtype),
            )

    def get_config(self):
        return dict(
            in_channels=self.in_channels,
            channels=self.channels,
            stride=self.stride,
            dtype=self.dtype.name,
        )

    def forward(self, x):
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu2(out + shortcut)

    def backward(self, grad_out, needs_input_grad=True):
        g = self.relu2.backward(grad_out)
        g_shortcut = g if self.downsample is None else self.downsample.backward(g)
        g_mid = self.relu1.backward(self.conv2.backward(self.bn2.backward(g)))
        g_x = self.conv1.backward(self.bn1.backward(g_mid))
        return g_x + g_shortcut


@cx.register_layer(name="test_composite.Net")
class Net(cx.Layer):
    def __init__(self, dtype="float64"):
        super().__init__()
        self.dtype = np.dtype(dtype)
        self.conv1 = L.Conv2D(2, 4, 3, padding=1, bias=False, dtype=dtype)
        self.bn1 = L.BatchNorm2D(4, dtype=dtype)
        self.relu = L.ReLU()
        self.layer1 = L.Sequential(
            BasicBlock(4, 4, dtype=dtype), BasicBlock(4, 6, stride=2, dtype=dtype)
        )
        self.pool = L.GlobalAvgPool2D()
        self.flatten = L.Flatten()
        self.fc = L.Dense(6, 3, dtype=dtype)

    def get_config(self):
        return {"dtype": self.dtype.name}

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        return self.fc(self.flatten(self.pool(self.layer1(x))))

    def backward(self, grad_out, needs_input_grad=True):
        g = self.pool.backward(self.flatten.backward(self.fc.backward(grad_out)))
        g = self.layer1.backward(g)
        return self.conv1.backward(
            self.bn1.backward(self.relu.backward(g)), needs_input_grad=needs_input_grad
        )


def _x(shape=(3, 2, 6, 6), seed=0, dtype=np.float64):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def _check_gradients(model, x, params=("conv1.weight",), eps=1e-7, tol=1e-6):
    """backward against central differences of L = sum(model(x) * w), for x and some params
    (train mode; BatchNorm's batch statistics are part of the function)."""
    w = np.random.default_rng(9).standard_normal(model(x).shape)

    def loss():
        return float(np.sum(model(x_var) * w))

    x_var = x.copy()
    model.zero_grad()
    model(x_var)
    gx = model.backward(w)
    grads = {k: v.copy() for k, v in model.grads().items()}

    def f_x(v):
        x_var[...] = v
        return loss()

    np.testing.assert_allclose(gx, numerical_grad(f_x, x.copy(), eps), rtol=tol, atol=tol)
    x_var[...] = x
    for name in params:
        p = model.parameters()[name]

        def f_p(v, p=p):
            p[...] = v
            return loss()

        num = numerical_grad(f_p, p.copy(), eps)
        np.testing.assert_allclose(grads[name], num, rtol=tol, atol=tol)


def test_children_are_owned_with_torch_names_and_order():
    net = Net().reset_parameters(0)
    keys = list(net.state_dict())
    # torch's order: a layer's own parameters, its buffers, then its children in assignment
    # order, depth first
    assert keys[:6] == [
        "conv1.weight",
        "bn1.weight",
        "bn1.bias",
        "bn1.running_mean",
        "bn1.running_var",
        "bn1.num_batches_tracked",
    ]
    assert keys[6:12] == [
        "layer1.0.conv1.weight",
        "layer1.0.bn1.weight",
        "layer1.0.bn1.bias",
        "layer1.0.bn1.running_mean",
        "layer1.0.bn1.running_var",
        "layer1.0.bn1.num_batches_tracked",
    ]
    assert "layer1.1.downsample.1.running_var" in keys
    assert keys[-2:] == ["fc.weight", "fc.bias"]
    # parameters: the same order without the buffers; grads: the same names
    assert list(net.parameters()) == [k for k in keys if k in net.parameters()]
    assert list(net.grads()) == list(net.parameters())
    assert set(net.buffers()) == {k for k in keys if "running" in k or "num_batches" in k}
    # the arrays are the layers' own
    assert net.parameters()["layer1.1.conv2.weight"] is net.layer1[1].conv2.weight
    names = [n for n, _ in net.named_layers()]
    assert names[:4] == ["", "conv1", "bn1", "relu"]
    assert "layer1.1.downsample.0" in names


def test_basic_block_backward_matches_finite_differences():
    block = BasicBlock(3, 5, stride=2).reset_parameters(1)
    _check_gradients(
        block,
        _x((2, 3, 6, 5), 1),
        ("conv1.weight", "bn2.weight", "downsample.0.weight", "downsample.1.bias"),
    )
    same = BasicBlock(4, 4).reset_parameters(2)
    _check_gradients(same, _x((2, 4, 5, 5), 2), ("conv2.weight", "bn1.bias"))


def test_nested_model_backward_matches_finite_differences():
    net = Net().reset_parameters(3)
    _check_gradients(
        net,
        _x((2, 2, 6, 6), 3),
        ("conv1.weight", "layer1.0.conv2.weight", "layer1.1.bn1.weight", "fc.bias"),
        tol=2e-6,
    )


def test_eval_reaches_every_nested_batchnorm():
    net = Net().reset_parameters(4)
    x = _x((6, 2, 6, 6), 4)
    for _ in range(3):  # running statistics move away from their initial values
        net(x + 1)
    bns = [m for _, m in net.named_layers() if isinstance(m, L.BatchNorm2D)]
    assert len(bns) == 6
    assert all(int(b.buffers()["num_batches_tracked"]) == 3 for b in bns)
    net.eval()
    assert all(not m.training for _, m in net.named_layers())
    full = net(x)
    # eval outputs of a sample do not depend on the rest of the batch
    np.testing.assert_array_equal(net(x[:2]), full[:2])
    np.testing.assert_array_equal(net(x[3:4]), full[3:4])
    before = {k: v.copy() for k, v in net.buffers().items()}
    net(x)
    for k, v in net.buffers().items():  # eval leaves the running statistics alone
        np.testing.assert_array_equal(v, before[k])
    net.train()
    assert all(m.training for _, m in net.named_layers())
    assert not np.array_equal(net(x[:2]), full[:2])  # batch statistics again


def test_state_dict_round_trip_strict_and_reset():
    a, b = Net().reset_parameters(5), Net().reset_parameters(6)
    a(_x(seed=5))  # running stats
    sd = a.state_dict()
    assert sd["layer1.0.bn1.num_batches_tracked"].dtype == np.int64
    b.load_state_dict(sd)
    for k, v in b.state_dict().items():
        np.testing.assert_array_equal(v, sd[k])
    a.eval(), b.eval()
    np.testing.assert_array_equal(a(_x(seed=7)), b(_x(seed=7)))
    missing = dict(sd)
    del missing["layer1.1.downsample.1.running_var"]
    with pytest.raises(ValueError, match="layer1.1.downsample.1.running_var"):
        b.load_state_dict(missing)
    with pytest.raises(ValueError, match="unexpected keys.*extra"):
        b.load_state_dict({**sd, "extra": np.zeros(1)})
    # reset_parameters recurses: same seed, same weights
    c, d = Net().reset_parameters(8), Net().reset_parameters(8)
    for k, v in c.state_dict().items():
        np.testing.assert_array_equal(v, d.state_dict()[k])
    assert not np.array_equal(c.layer1[0].conv1.weight, a.layer1[0].conv1.weight)


def test_zero_grad_recurses():
    net = Net().reset_parameters(9)
    net(_x(seed=9))
    net.backward(np.ones((3, 3)))
    assert any(np.any(g) for g in net.grads().values())
    net.zero_grad()
    assert not any(np.any(g) for g in net.grads().values())


def test_repr_is_torch_style():
    block = BasicBlock(2, 3, dtype="float32")
    text = repr(block)
    assert text.startswith("BasicBlock(\n  (conv1): Conv2D(2, 3, kernel_size=(3, 3), padding=")
    assert "\n  (downsample): Sequential(\n    (0): Conv2D(2, 3, kernel_size=(1, 1)" in text
    assert text.endswith("\n  )\n)")
    assert repr(L.Identity()) == "Identity()"


def test_a_layer_instance_appears_once_in_a_model():
    relu = L.ReLU()
    with pytest.raises(ValueError, match="only once in a model"):
        L.Sequential(relu, relu)
    conv = L.Conv2D(2, 2, 1)
    model = L.Sequential(conv)
    with pytest.raises(ValueError, match=r"already part of a model \(child '0' of a Sequential"):
        L.Residual(conv)
    block = BasicBlock(2, 2)
    with pytest.raises(ValueError, match="create a second instance for 'relu2'"):
        block.relu2 = block.relu1
    with pytest.raises(ValueError, match="child of itself"):
        block.conv1 = block
    outer = L.Sequential(block)
    with pytest.raises(ValueError, match="child of itself"):
        block.extra = outer
    assert len(model) == 1 and len(block.state_dict()) == 12  # nothing half-registered
    # reassigning an attribute releases the old child, which can then be used elsewhere
    old = block.relu2
    block.relu2 = L.ReLU()
    L.Sequential(old)
    del model
    L.Sequential(conv)  # its container is gone


def test_assignments_that_are_not_layers_unregister():
    block = BasicBlock(2, 3)
    assert "downsample.0.weight" in block.state_dict()
    block.downsample = None
    assert not any(k.startswith("downsample") for k in block.state_dict())
    with pytest.raises(AttributeError, match="super\\(\\).__init__\\(\\) first"):

        class Early(cx.Layer):
            def __init__(self):
                self.conv = L.Conv2D(1, 1, 1)

        Early()


def test_layer_list_owns_its_layers():
    class Tower(cx.Layer):
        def __init__(self):
            super().__init__()
            self.blocks = L.LayerList([L.Conv2D(2, 2, 1, dtype=np.float64) for _ in range(3)])
            self.blocks.append(L.BatchNorm2D(2, dtype=np.float64))

        def forward(self, x):
            for b in self.blocks:
                x = b(x)
            return x

    t = Tower().reset_parameters(0)
    assert list(t.state_dict())[:3] == ["blocks.0.weight", "blocks.0.bias", "blocks.1.weight"]
    assert "blocks.3.running_var" in t.state_dict()
    t.eval()
    assert not t.blocks[3].training
    with pytest.raises(NotImplementedError, match="LayerList has no forward"):
        t.blocks(_x())
    with pytest.raises(TypeError, match="LayerList: argument 0 is not a Layer"):
        L.LayerList([3])


def test_residual_concat_identity_gradients():
    res = L.Residual(L.Sequential(L.Conv2D(3, 3, 3, padding=1, dtype=np.float64), L.Tanh()))
    res.reset_parameters(0)
    _check_gradients(res, _x((2, 3, 4, 5), 10), ("body.0.weight", "body.0.bias"))
    res2 = L.Residual(
        L.Conv2D(3, 4, 3, padding=1, dtype=np.float64), shortcut=L.Conv2D(3, 4, 1, dtype=np.float64)
    ).reset_parameters(1)
    _check_gradients(res2, _x((2, 3, 4, 5), 11), ("body.weight", "shortcut.weight"))
    cat = L.Concat(
        L.Conv2D(2, 3, 1, dtype=np.float64),
        L.Identity(),
        L.Sequential(L.Conv2D(2, 1, 3, padding=1, dtype=np.float64), L.Sigmoid()),
    )
    cat.reset_parameters(2)
    assert cat(_x((2, 2, 4, 4))).shape == (2, 6, 4, 4)
    _check_gradients(cat, _x((2, 2, 4, 4), 12), ("0.weight", "2.0.weight"))
    last = L.Concat(L.Dense(3, 2, dtype=np.float64), L.Dense(3, 4, dtype=np.float64), axis=-1)
    last.reset_parameters(3)
    _check_gradients(last, _x((5, 3), 13), ("1.weight",))
    x = _x((2, 3))
    assert L.Identity()(x) is x
    # a tensor used twice: the identity shortcut's gradient is added to the body's
    ident = L.Residual(L.Identity())
    ident(x)
    np.testing.assert_array_equal(ident.backward(np.ones_like(x)), np.full_like(x, 2.0))


def test_graph_layers_refuse_bad_input():
    with pytest.raises(TypeError, match="Residual: body is not a Layer"):
        L.Residual(3)
    with pytest.raises(TypeError, match="Residual: shortcut is not a Layer"):
        L.Residual(L.ReLU(), "x")
    with pytest.raises(ValueError, match="at least one branch"):
        L.Concat()
    with pytest.raises(TypeError, match="axis must be an int"):
        L.Concat(L.ReLU(), axis=1.5)
    with pytest.raises(ValueError, match="gives"):
        L.Residual(L.Conv2D(2, 3, 1, dtype=np.float64))(_x((1, 2, 3, 3)))
    with pytest.raises(ValueError, match="differ outside axis 1"):
        L.Concat(L.Identity(), L.MaxPool2D(2))(_x((1, 2, 4, 4)))
    with pytest.raises(ValueError, match="out of range"):
        L.Concat(L.Identity(), axis=4)(_x((1, 2, 4, 4)))


def test_composites_save_and_load(tmp_path):
    net = Net().reset_parameters(11)
    net(_x(seed=11))
    net.eval()
    net.save(tmp_path / "net.npz")
    back = cx.load(tmp_path / "net.npz")
    assert type(back) is Net and list(back.state_dict()) == list(net.state_dict())
    back.eval()
    np.testing.assert_array_equal(back(_x(seed=12)), net(_x(seed=12)))

    graph = L.Sequential(
        L.Residual(
            L.Sequential(L.Conv2D(2, 2, 3, padding=1, dtype=np.float64), L.ReLU()), L.Identity()
        ),
        L.Concat(L.Conv2D(2, 3, 1, dtype=np.float64), L.Identity(), axis=1),
        BasicBlock(5, 5),
    ).reset_parameters(12)
    graph.eval()
    graph.save(tmp_path / "graph.npz")
    again = cx.load(tmp_path / "graph.npz").eval()
    assert repr(again) == repr(graph)
    np.testing.assert_array_equal(again(_x((2, 2, 5, 5), 13)), graph(_x((2, 2, 5, 5), 13)))


def test_unregistered_or_unconfigured_composites_say_how(tmp_path):
    class Block(cx.Layer):
        def __init__(self):
            super().__init__()
            self.conv = L.Conv2D(1, 1, 1)

    with pytest.raises(TypeError, match="not registered.*register_layer"):
        L.Sequential(Block()).save(tmp_path / "a.npz")

    @cx.register_layer(name="test_composite.Wide")
    class Wide(cx.Layer):
        def __init__(self, width=2):
            super().__init__()
            self.conv = L.Conv2D(1, width, 1)

    try:
        with pytest.raises(TypeError, match="takes width but it has no get_config"):
            Wide(3).save(tmp_path / "w.npz")
    finally:
        del L.LAYERS["test_composite.Wide"]
    assert not list(tmp_path.iterdir())


def _load_arch(tmp_path, model_spec):
    from convext import _archive

    path = tmp_path / "arch.npz"
    with open(path, "wb") as f:
        _archive._write_npz(
            f, {_archive.ARCH_KEY: np.array(_archive.architecture_json(model_spec))}
        )
    return lambda: cx.load(path)


def test_nested_descriptions_are_validated_under_the_same_bounds(tmp_path):
    leaf = {"type": "ReLU", "config": {}}
    spec = leaf
    for _ in range(registry.MAX_NESTING):
        spec = {"type": "Residual", "config": {"body": spec, "shortcut": None}}
    with pytest.raises(ValueError, match=f"more than {registry.MAX_NESTING} deep"):
        _load_arch(tmp_path, spec)()
    spec = {"type": "Concat", "config": {"branches": [leaf] * 40, "axis": 1}}
    spec = {"type": "Residual", "config": {"body": spec}}
    model = _load_arch(tmp_path, spec)()
    assert isinstance(model.body, L.Concat) and len(model.body._children) == 40
    bad = [
        (
            {
                "type": "Residual",
                "config": {
                    "body": {
                        "type": "Conv2D",
                        "config": {"in_channels": -1, "out_channels": 1, "kernel_size": 1},
                    }
                },
            },
            "layer Conv2D.*in_channels must be",
        ),
        (
            {"type": "Residual", "config": {"body": {"type": "os.system", "config": {}}}},
            "unknown layer type 'os.system'.*register_layer",
        ),
        ({"type": "Residual", "config": {"body": 5}}, "layer Residual.*body is not a Layer"),
        (
            {"type": "Concat", "config": {"branches": {"type": "ReLU"}}},
            "branches must be a list of layer descriptions",
        ),
        (
            {"type": "Concat", "config": {"branches": [leaf, 3]}},
            "branches must be a list of layer descriptions",
        ),
        ({"type": "Concat", "config": {"branches": [leaf], "axis": 10**9}}, "axis must be"),
        ({"type": "Residual", "config": {"body": leaf, "extra": leaf}}, "unknown field"),
        ({"type": "LayerList", "config": {"layers": "x"}}, "layers must be a list"),
    ]
    for spec, match in bad:
        with pytest.raises(ValueError, match=match):
            _load_arch(tmp_path, spec)()


def test_the_docstring_block_is_the_tested_block():
    """The BasicBlock shown in convext.layers.composite's docstring runs and its backward
    matches finite differences."""
    import textwrap

    from convext.layers import composite

    doc = composite.__doc__
    code = textwrap.dedent(doc[doc.index("::\n") + 3 : doc.index("\nThe backward runs")])
    code = code.replace("@convext.register_layer\n", "")  # do not register it a second time
    namespace = {"convext": cx, "np": np, **{n: getattr(L, n) for n in L.__all__}}
    exec(compile(code, "composite docstring", "exec"), namespace)
    block = namespace["BasicBlock"](3, 4, stride=2, dtype="float64").reset_parameters(4)
    assert list(block.state_dict())[:2] == ["conv1.weight", "bn1.weight"]
    _check_gradients(block, _x((2, 3, 5, 5), 14), ("conv1.weight", "downsample.0.weight"))
