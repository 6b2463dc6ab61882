"""Layers against torch.nn: names, shapes, outputs, gradients, optimizer step, BatchNorm2D."""

import numpy as np
import pytest

import convext as cx
from cases import assert_close32, assert_close64, lenet
from convext import layers as L

torch = pytest.importorskip("torch")


def torch_lenet(torch):
    nn = torch.nn
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(400, 120),
        nn.ReLU(),
        nn.Linear(120, 84),
        nn.ReLU(),
        nn.Linear(84, 10),
    )


# -- LeNet against torch.nn ---------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_lenet_matches_torch(dtype):
    """Same weights (a torch state_dict loads one to one): same output, loss, every parameter
    gradient and weights after one SGD step (momentum, weight decay). The oracle is torch in
    float64; convext float32 is held to float32 rounding, float64 to 1e-10."""
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


def test_parameter_shapes_match_torch():
    nn = torch.nn
    pairs = [
        (
            L.Conv2D(4, 6, (3, 2), groups=2, bias=False),
            nn.Conv2d(4, 6, (3, 2), groups=2, bias=False),
        ),
        (L.Dense(7, 3), nn.Linear(7, 3)),
        (L.BatchNorm2D(5), nn.BatchNorm2d(5)),
    ]
    for ours, theirs in pairs:
        sd = theirs.state_dict()
        assert {k: v.shape for k, v in ours.state_dict().items()} == {
            k: tuple(v.shape) for k, v in sd.items()
        }
        ours.load_state_dict({k: v.numpy() for k, v in sd.items()})
    bn = L.BatchNorm2D(5)
    np.testing.assert_array_equal(bn.parameters()["weight"], np.ones(5, np.float32))
    np.testing.assert_array_equal(bn.parameters()["bias"], np.zeros(5, np.float32))


# -- BatchNorm2D against torch ------------------------------------------------------------------


def test_batchnorm_matches_torch():
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


def test_batchnorm_float32_matches_torch():
    x = np.random.default_rng(5).standard_normal((8, 4, 6, 6)).astype(np.float32) * 3 + 2
    bn = L.BatchNorm2D(4)
    tb = torch.nn.BatchNorm2d(4).double()
    assert_close32(bn(x), tb(torch.from_numpy(x.astype(np.float64))).detach().numpy())


# -- activations and pooling as layers (torch as the oracle) --------------------------------------


def _torch_layer_cases(torch):
    nn = torch.nn
    return [
        (L.ReLU(), nn.ReLU()),
        (L.LeakyReLU(0.2), nn.LeakyReLU(0.2)),
        (L.ELU(0.7), nn.ELU(0.7)),
        (L.Sigmoid(), nn.Sigmoid()),
        (L.Tanh(), nn.Tanh()),
        (L.Softmax(1), nn.Softmax(1)),
        (L.LogSoftmax(1), nn.LogSoftmax(1)),
        (L.MaxPool2D(3, 2, 1), nn.MaxPool2d(3, 2, 1)),
        (L.MaxPool2D((2, 3), ceil_mode=True), nn.MaxPool2d((2, 3), ceil_mode=True)),
        (
            L.AvgPool2D(3, 2, 1, count_include_pad=False),
            nn.AvgPool2d(3, 2, 1, count_include_pad=False),
        ),
        (L.LPPool2D(2, 2), nn.LPPool2d(2, 2)),
        (L.GlobalAvgPool2D(), nn.AdaptiveAvgPool2d(1)),
        (L.Flatten(), nn.Flatten()),
    ]


def test_stateless_layers_match_torch():
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


def test_state_dict_keys_like_torch_with_batchnorm():
    nn = torch.nn
    tm = nn.Sequential(
        nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 3)
    )
    model = L.Sequential(
        L.Conv2D(1, 4, 3), L.BatchNorm2D(4), L.ReLU(), L.Flatten(), L.Dense(4 * 6 * 6, 3)
    )
    assert list(model.state_dict()) == list(tm.state_dict())
    assert list(model.parameters()) == [k for k, _ in tm.named_parameters()]
    model.load_state_dict({k: v.numpy() for k, v in tm.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((2, 1, 8, 8)).astype(np.float32)
    tm.eval()
    model.eval()
    assert_close32(
        model(x),
        tm(torch.from_numpy(x).double() if False else torch.from_numpy(x))
        .detach()
        .numpy()
        .astype(np.float64),
    )
