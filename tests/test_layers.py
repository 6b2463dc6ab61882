"""Layers: torch.nn parity (names, shapes, init, outputs, gradients), gradchecks, state."""
import math

import numpy as np
import pytest

import convext as cx
from convext import layers as L
from reference import numerical_grad


def lenet(dtype=np.float32, rng=0):
    return L.Sequential(
        L.Conv2D(1, 6, 5, padding=2, dtype=dtype), L.ReLU(), L.MaxPool2D(2),
        L.Conv2D(6, 16, 5, dtype=dtype), L.ReLU(), L.MaxPool2D(2), L.Flatten(),
        L.Dense(400, 120, dtype=dtype), L.ReLU(), L.Dense(120, 84, dtype=dtype), L.ReLU(),
        L.Dense(84, 10, dtype=dtype)).reset_parameters(rng)


def torch_lenet(torch):
    nn = torch.nn
    return nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
                         nn.Linear(84, 10))


def assert_close32(got, ref64):
    ref64 = np.asarray(ref64, np.float64)
    tol = 1e-5 * max(1.0, float(np.max(np.abs(ref64))))
    assert got.shape == ref64.shape
    assert float(np.max(np.abs(got.astype(np.float64) - ref64))) <= tol


def assert_close64(got, ref):
    ref = np.asarray(ref, np.float64)
    assert got.dtype == np.float64 and got.shape == ref.shape
    assert float(np.max(np.abs(got - ref))) <= 1e-10 * max(1.0, float(np.max(np.abs(ref))))


# -- LeNet against torch.nn ---------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_lenet_matches_torch(dtype):
    """Same weights (a torch state_dict loads one to one): same output, loss, every parameter
    gradient and weights after one SGD step (momentum, weight decay). The oracle is torch in
    float64; convext float32 is held to float32 rounding, float64 to 1e-10."""
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    tm = torch_lenet(torch).double()
    model = lenet(dtype)
    assert list(model.state_dict()) == list(tm.state_dict())
    model.load_state_dict({k: v.numpy() for k, v in tm.state_dict().items()})
    rng = np.random.default_rng(1)
    x = rng.standard_normal((16, 1, 28, 28))
    y = rng.integers(0, 10, 16)
    close = assert_close32 if dtype == np.float32 else assert_close64

    topt = torch.optim.SGD(tm.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-3)
    tx = torch.from_numpy(x)
    tout = tm(tx)
    tloss = torch.nn.functional.cross_entropy(tout, torch.from_numpy(y))
    topt.zero_grad()
    tloss.backward()

    opt = cx.optim.SGD(model, lr=0.05, momentum=0.9, weight_decay=1e-3)
    out = model(x.astype(dtype))
    assert out.dtype == dtype
    close(out, tout.detach().numpy())
    loss, g = cx.losses.CrossEntropyLoss()(out, y)
    close(np.array(loss), tloss.detach().numpy())
    opt.zero_grad()
    assert model.backward(g, needs_input_grad=False) is None
    tgrads = {k: p.grad.numpy() for k, p in tm.named_parameters()}
    grads = model.grads()
    assert list(grads) == list(tgrads)
    for k in tgrads:
        close(grads[k], tgrads[k])
    topt.step()
    opt.step()
    for k, v in tm.state_dict().items():
        close(model.state_dict()[k], v.numpy())


def test_input_gradient_matches_torch():
    torch = pytest.importorskip("torch")
    torch.manual_seed(3)
    tm = torch_lenet(torch).double()
    model = lenet(np.float64)
    model.load_state_dict({k: v.numpy() for k, v in tm.state_dict().items()})
    x = np.random.default_rng(2).standard_normal((3, 1, 28, 28))
    tx = torch.from_numpy(x).requires_grad_()
    tm(tx).square().sum().backward()
    out = model(x)
    gx = model.backward(2 * out)
    assert_close64(gx, tx.grad.numpy())


# -- initialisation -----------------------------------------------------------------------------

@pytest.mark.parametrize("make, fan_in", [(lambda r: L.Conv2D(8, 32, 3, rng=r), 72),
                                          (lambda r: L.Conv2D(8, 32, (3, 2), groups=4, rng=r), 12),
                                          (lambda r: L.Dense(50, 200, rng=r), 50)])
def test_default_init_is_torchs(make, fan_in):
    """kaiming_uniform(a=sqrt(5)) = U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for the weight, the same
    bound for the bias; reproducible from the generator."""
    layer = make(np.random.default_rng(5))
    bound = 1 / math.sqrt(fan_in)
    w, b = layer.parameters()["weight"], layer.parameters()["bias"]
    assert w.dtype == np.float32
    assert np.max(np.abs(w)) <= bound and np.max(np.abs(w)) > 0.95 * bound
    assert abs(w.std() - bound / math.sqrt(3)) < 0.1 * bound / math.sqrt(3)
    assert np.max(np.abs(b)) <= bound
    again = make(np.random.default_rng(5))
    np.testing.assert_array_equal(again.parameters()["weight"], w)
    np.testing.assert_array_equal(again.parameters()["bias"], b)
    other = make(np.random.default_rng(6))
    assert not np.array_equal(other.parameters()["weight"], w)


def test_parameter_shapes_match_torch():
    torch = pytest.importorskip("torch")
    nn = torch.nn
    pairs = [(L.Conv2D(4, 6, (3, 2), groups=2, bias=False), nn.Conv2d(4, 6, (3, 2), groups=2,
                                                                     bias=False)),
             (L.Dense(7, 3), nn.Linear(7, 3)),
             (L.BatchNorm2D(5), nn.BatchNorm2d(5))]
    for ours, theirs in pairs:
        sd = theirs.state_dict()
        assert {k: v.shape for k, v in ours.state_dict().items()} == \
            {k: tuple(v.shape) for k, v in sd.items()}
        ours.load_state_dict({k: v.numpy() for k, v in sd.items()})
    bn = L.BatchNorm2D(5)
    np.testing.assert_array_equal(bn.parameters()["weight"], np.ones(5, np.float32))
    np.testing.assert_array_equal(bn.parameters()["bias"], np.zeros(5, np.float32))


def test_sequential_reset_is_reproducible():
    a, b = lenet(rng=7), lenet(rng=7)
    for k, v in a.state_dict().items():
        np.testing.assert_array_equal(v, b.state_dict()[k])
    c = lenet(rng=8)
    assert not np.array_equal(a.state_dict()["0.weight"], c.state_dict()["0.weight"])


# -- gradient checks (float64, central differences) -----------------------------------------------

def _check_layer_grads(layer, x, seed=0):
    """dL/dx and dL/dparam of L = sum(forward(x) * r) against central differences."""
    r = np.random.default_rng(seed).standard_normal(layer(x).shape)
    layer.zero_grad()
    layer.train()
    layer.forward(x)
    gx = layer.backward(r)

    def f_x(xx):
        return float(np.sum(layer.forward(xx) * r))
    ng = numerical_grad(f_x, x)
    np.testing.assert_allclose(gx, ng, rtol=1e-3, atol=1e-5)
    for name, p in layer.parameters().items():
        saved = p.copy()

        def f_p(pp):
            p[...] = pp
            return float(np.sum(layer.forward(x) * r))
        ng = numerical_grad(f_p, saved)
        p[...] = saved
        np.testing.assert_allclose(layer.grads()[name], ng, rtol=1e-3, atol=1e-5,
                                   err_msg=name)


def test_gradcheck_conv_dense():
    rng = np.random.default_rng(0)
    _check_layer_grads(L.Conv2D(4, 6, (3, 2), stride=(2, 1), padding=1, dilation=(1, 2),
                                groups=2, dtype=np.float64, rng=1),
                       rng.standard_normal((2, 4, 6, 7)))
    _check_layer_grads(L.Dense(5, 3, dtype=np.float64, rng=2), rng.standard_normal((4, 5)))
    _check_layer_grads(L.Dense(5, 3, bias=False, dtype=np.float64, rng=2),
                       rng.standard_normal((2, 3, 5)))


def test_gradcheck_batchnorm_train():
    rng = np.random.default_rng(1)
    bn = L.BatchNorm2D(3, dtype=np.float64)
    bn.parameters()["weight"][...] = [0.5, 2.0, -1.0]
    bn.parameters()["bias"][...] = [0.1, 0.0, 0.3]
    _check_layer_grads(bn, rng.standard_normal((3, 3, 4, 5)) * 2 + 1)


def test_gradcheck_sequential():
    rng = np.random.default_rng(2)
    model = L.Sequential(L.Conv2D(2, 3, 3, padding=1, dtype=np.float64), L.Tanh(), L.Flatten(),
                         L.Dense(3 * 5 * 4, 4, dtype=np.float64)).reset_parameters(3)
    _check_layer_grads(model, rng.standard_normal((2, 2, 5, 4)))


# -- BatchNorm2D against torch ------------------------------------------------------------------

def test_batchnorm_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    tb = torch.nn.BatchNorm2d(3, momentum=0.2).double()
    bn = L.BatchNorm2D(3, momentum=0.2, dtype=np.float64)
    w, b = rng.standard_normal(3), rng.standard_normal(3)
    with torch.no_grad():
        tb.weight.copy_(torch.from_numpy(w))
        tb.bias.copy_(torch.from_numpy(b))
    bn.load_state_dict({k: v.numpy() for k, v in tb.state_dict().items()})
    for step in range(3):
        x = rng.standard_normal((4, 3, 5, 6)) * (step + 1) + step
        g = rng.standard_normal(x.shape)
        tx = torch.from_numpy(x).requires_grad_()
        ty = tb(tx)
        ty.backward(torch.from_numpy(g))
        bn.zero_grad()
        assert_close64(bn(x), ty.detach().numpy())
        assert_close64(bn.backward(g), tx.grad.numpy())
        assert_close64(bn.grads()["weight"], tb.weight.grad.numpy())
        assert_close64(bn.grads()["bias"], tb.bias.grad.numpy())
        tb.zero_grad()
    sd = bn.state_dict()
    for k, v in tb.state_dict().items():
        np.testing.assert_allclose(sd[k], v.numpy(), rtol=1e-12, atol=0)
    assert sd["num_batches_tracked"].dtype == np.int64 and sd["num_batches_tracked"] == 3
    tb.eval()
    bn.eval()
    x = rng.standard_normal((2, 3, 4, 4))
    assert_close64(bn(x), tb(torch.from_numpy(x)).detach().numpy())
    before = bn.state_dict()["running_mean"]
    bn(x)
    np.testing.assert_array_equal(bn.state_dict()["running_mean"], before)


def test_batchnorm_float32_and_errors():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(5).standard_normal((8, 4, 6, 6)).astype(np.float32) * 3 + 2
    bn = L.BatchNorm2D(4)
    tb = torch.nn.BatchNorm2d(4).double()
    assert_close32(bn(x), tb(torch.from_numpy(x.astype(np.float64))).detach().numpy())
    with pytest.raises(ValueError, match="more than 1 value"):
        L.BatchNorm2D(4)(np.ones((1, 4, 1, 1), np.float32))
    with pytest.raises(ValueError, match=r"\(N, 4, H, W\)"):
        bn(np.ones((2, 3, 4, 4), np.float32))
    with pytest.raises(TypeError, match="dtype"):
        bn(np.ones((2, 4, 4, 4)))


# -- activations and pooling as layers (torch as the oracle) --------------------------------------

def _torch_layer_cases(torch):
    nn = torch.nn
    return [
        (L.ReLU(), nn.ReLU()), (L.LeakyReLU(0.2), nn.LeakyReLU(0.2)), (L.ELU(0.7), nn.ELU(0.7)),
        (L.Sigmoid(), nn.Sigmoid()), (L.Tanh(), nn.Tanh()), (L.Softmax(1), nn.Softmax(1)),
        (L.LogSoftmax(1), nn.LogSoftmax(1)),
        (L.MaxPool2D(3, 2, 1), nn.MaxPool2d(3, 2, 1)),
        (L.MaxPool2D((2, 3), ceil_mode=True), nn.MaxPool2d((2, 3), ceil_mode=True)),
        (L.AvgPool2D(3, 2, 1, count_include_pad=False),
         nn.AvgPool2d(3, 2, 1, count_include_pad=False)),
        (L.LPPool2D(2, 2), nn.LPPool2d(2, 2)),
        (L.GlobalAvgPool2D(), nn.AdaptiveAvgPool2d(1)),
        (L.Flatten(), nn.Flatten()),
    ]


def test_stateless_layers_match_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(6)
    for ours, theirs in _torch_layer_cases(torch):
        x = rng.standard_normal((2, 3, 7, 8))
        if isinstance(ours, L.LPPool2D):
            x = np.abs(x) + 0.1
        tx = torch.from_numpy(x).requires_grad_()
        ty = theirs(tx)
        g = rng.standard_normal(tuple(ty.shape))
        ty.backward(torch.from_numpy(g))
        y = ours(x)
        assert_close64(y, ty.detach().numpy())
        assert_close64(ours.backward(g), tx.grad.numpy())
        assert ours.parameters() == {} and ours.state_dict() == {}


# -- Dropout -----------------------------------------------------------------------------------

def test_dropout():
    x = np.ones((100, 200), np.float32)
    d = L.Dropout(0.3, rng=11)
    y = d(x)
    assert y.dtype == np.float32
    kept = y != 0
    assert abs(kept.mean() - 0.7) < 0.01
    np.testing.assert_allclose(y[kept], 1 / 0.7, rtol=1e-6)
    g = d.backward(np.full_like(x, 2))
    np.testing.assert_array_equal(g != 0, kept)
    np.testing.assert_allclose(g[kept], 2 / 0.7, rtol=1e-6)
    np.testing.assert_array_equal(L.Dropout(0.3, rng=11)(x), y)  # reproducible
    assert not np.array_equal(L.Dropout(0.3, rng=12)(x), y)
    d.eval()
    assert d(x) is x or np.array_equal(d(x), x)
    np.testing.assert_array_equal(L.Dropout(1.0)(x), 0)
    with pytest.raises(ValueError, match="between 0 and 1"):
        L.Dropout(1.5)


# -- Sequential, state, repr, errors -----------------------------------------------------------

def test_state_dict_keys_like_torch_with_batchnorm():
    torch = pytest.importorskip("torch")
    nn = torch.nn
    tm = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                       nn.Linear(4 * 6 * 6, 3))
    model = L.Sequential(L.Conv2D(1, 4, 3), L.BatchNorm2D(4), L.ReLU(), L.Flatten(),
                         L.Dense(4 * 6 * 6, 3))
    assert list(model.state_dict()) == list(tm.state_dict())
    assert list(model.parameters()) == [k for k, _ in tm.named_parameters()]
    model.load_state_dict({k: v.numpy() for k, v in tm.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((2, 1, 8, 8)).astype(np.float32)
    tm.eval()
    model.eval()
    assert_close32(model(x), tm(torch.from_numpy(x).double() if False else torch.from_numpy(x))
                   .detach().numpy().astype(np.float64))


def test_load_state_dict_checks_and_writes_in_place():
    model = lenet()
    w = model.parameters()["0.weight"]
    sd = model.state_dict()
    sd["0.weight"] = np.zeros_like(sd["0.weight"])
    model.load_state_dict(sd)
    assert model.parameters()["0.weight"] is w and not w.any()
    bad = dict(sd)
    bad["3.bias"] = np.ones(5, np.float32)
    bad["0.weight"] = np.ones_like(sd["0.weight"])
    with pytest.raises(ValueError, match=r"'3.bias' has shape \(5,\)"):
        model.load_state_dict(bad)
    assert not w.any()  # nothing written when a check fails
    missing = dict(sd)
    del missing["9.bias"]
    with pytest.raises(ValueError, match="missing keys.*9.bias"):
        model.load_state_dict(missing)
    with pytest.raises(ValueError, match="unexpected keys.*extra"):
        model.load_state_dict({**sd, "extra": np.zeros(1)})
    model.load_state_dict(missing, strict=False)


def test_train_eval_and_no_state_kept():
    model = L.Sequential(L.Conv2D(1, 2, 3), L.Dropout(0.5), L.BatchNorm2D(2), L.ReLU())
    assert model.training and all(l.training for l in model)
    model.eval()
    assert not model.training and not any(l.training for l in model)
    x = np.ones((2, 1, 5, 5), np.float32)
    model(x)
    assert model[0]._x is None and model[1]._mask is None and model[3]._x is None
    with pytest.raises(RuntimeError, match="training mode"):
        model.backward(np.ones((2, 2, 3, 3), np.float32))
    model.train()
    model(x)
    model.backward(np.ones((2, 2, 3, 3), np.float32))
    assert model[0]._x is None and model[3]._x is None  # released after backward


def test_grads_accumulate_until_zero_grad():
    layer = L.Dense(3, 2, rng=0)
    x = np.ones((4, 3), np.float32)
    layer(x)
    layer.backward(np.ones((4, 2), np.float32))
    once = layer.grads()["weight"].copy()
    layer(x)
    layer.backward(np.ones((4, 2), np.float32))
    np.testing.assert_array_equal(layer.grads()["weight"], 2 * once)
    layer.zero_grad()
    assert not layer.grads()["weight"].any()


def test_repr():
    assert repr(L.Conv2D(1, 6, 5, padding=2)) == "Conv2D(1, 6, kernel_size=(5, 5), padding=(2, 2))"
    assert repr(L.Conv2D(4, 8, (3, 1), stride=2, groups=2, bias=False)) == \
        "Conv2D(4, 8, kernel_size=(3, 1), stride=(2, 2), groups=2, bias=False)"
    assert repr(L.Dense(400, 120)) == "Dense(in_features=400, out_features=120)"
    assert repr(L.MaxPool2D(2)) == "MaxPool2D(kernel_size=2)"
    assert repr(L.ReLU()) == "ReLU()"
    assert repr(L.Dropout(0.25)) == "Dropout(p=0.25)"
    assert repr(L.BatchNorm2D(4)) == \
        "BatchNorm2D(4, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)"
    assert repr(L.Sequential(L.Flatten(), L.Dense(2, 1))) == \
        "Sequential(\n  (0): Flatten()\n  (1): Dense(in_features=2, out_features=1)\n)"


def test_constructor_errors():
    with pytest.raises(ValueError, match="in_channels"):
        L.Conv2D(0, 3, 3)
    with pytest.raises(ValueError, match="groups=2 must divide"):
        L.Conv2D(3, 4, 3, groups=2)
    with pytest.raises(ValueError, match="padding"):
        L.Conv2D(3, 4, 3, padding="full")
    with pytest.raises(TypeError, match="dtype"):
        L.Dense(3, 4, dtype=np.int32)
    with pytest.raises(TypeError, match="not a Layer"):
        L.Sequential(L.ReLU(), "relu")
    with pytest.raises(ValueError, match=r"\(\.\.\., 3\)"):
        L.Dense(3, 4)(np.ones((2, 5), np.float32))
    with pytest.raises(TypeError, match="dtype"):
        L.Dense(3, 4)(np.ones((2, 3)))
    with pytest.raises(ValueError, match="channels"):
        L.Conv2D(3, 4, 3)(np.ones((1, 2, 5, 5), np.float32))
