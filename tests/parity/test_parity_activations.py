"""Activations against torch: forward and backward values, extreme inputs, zero and NaN."""

import numpy as np
import pytest

from cases import activation_input
from convext import functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional

RNG = np.random.default_rng(17)

# name, convext forward, convext backward (grad, x, y), torch forward; backward takes x or y
ACTS = [
    ("relu", F.relu, lambda g, x, y: F.relu_backward(g, x), TF.relu),
    (
        "leaky_relu",
        lambda x: F.leaky_relu(x, 0.2),
        lambda g, x, y: F.leaky_relu_backward(g, x, 0.2),
        lambda t: TF.leaky_relu(t, 0.2),
    ),
    (
        "leaky_relu_default",
        F.leaky_relu,
        lambda g, x, y: F.leaky_relu_backward(g, x),
        TF.leaky_relu,
    ),
    (
        "elu",
        lambda x: F.elu(x, 1.5),
        lambda g, x, y: F.elu_backward(g, x, 1.5),
        lambda t: TF.elu(t, 1.5),
    ),
    ("sigmoid", F.sigmoid, lambda g, x, y: F.sigmoid_backward(g, y), torch.sigmoid),
    ("tanh", F.tanh, lambda g, x, y: F.tanh_backward(g, y), torch.tanh),
    ("softplus", F.softplus, lambda g, x, y: F.softplus_backward(g, x), TF.softplus),
    (
        "softplus_beta",
        lambda x: F.softplus(x, 2.0, 3.0),
        lambda g, x, y: F.softplus_backward(g, x, 2.0, 3.0),
        lambda t: TF.softplus(t, 2.0, 3.0),
    ),
    ("softmax", F.softmax, lambda g, x, y: F.softmax_backward(g, y), lambda t: TF.softmax(t, -1)),
    (
        "softmax_axis0",
        lambda x: F.softmax(x, 0),
        lambda g, x, y: F.softmax_backward(g, y, 0),
        lambda t: TF.softmax(t, 0),
    ),
    (
        "log_softmax",
        F.log_softmax,
        lambda g, x, y: F.log_softmax_backward(g, y),
        lambda t: TF.log_softmax(t, -1),
    ),
    (
        "log_softmax_axis1",
        lambda x: F.log_softmax(x, 1),
        lambda g, x, y: F.log_softmax_backward(g, y, 1),
        lambda t: TF.log_softmax(t, 1),
    ),
]
IDS = [a[0] for a in ACTS]


@pytest.mark.parametrize("name,fwd,bwd,tfwd", ACTS, ids=IDS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_vs_torch(name, fwd, bwd, tfwd, dtype):
    x = activation_input((3, 4, 5), dtype)
    g = RNG.standard_normal(x.shape).astype(dtype)
    y = fwd(x)
    assert y.dtype == dtype and y.shape == x.shape
    gx = bwd(g, x, y)
    assert gx.dtype == dtype and gx.shape == x.shape
    tx = torch.from_numpy(x.astype(np.float64)).requires_grad_(True)
    ty = tfwd(tx)
    ty.backward(torch.from_numpy(g.astype(np.float64)))
    ry, rg = ty.detach().numpy(), tx.grad.numpy()
    if dtype == np.float64:
        np.testing.assert_allclose(y, ry, rtol=1e-10, atol=1e-15)
        np.testing.assert_allclose(gx, rg, rtol=1e-10, atol=1e-15)
    else:
        for out, r in ((y, ry), (gx, rg)):
            assert np.max(np.abs(out - r)) <= 1e-5 * max(1.0, np.max(np.abs(r)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_extreme_inputs_match_torch(dtype):
    x = np.array([-1000, -100, -30, -1, 0, 1, 30, 100, 1000], dtype)
    for out, r in (
        (F.softplus(x), TF.softplus(torch.from_numpy(x.astype(np.float64)))),
        (F.sigmoid(x), torch.sigmoid(torch.from_numpy(x.astype(np.float64)))),
    ):
        r = r.numpy()
        assert np.max(np.abs(out - r)) <= 1e-5 * max(1.0, np.max(np.abs(r)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_large_logits_match_torch(dtype):
    x = (RNG.standard_normal((50, 37)) * 300).astype(dtype)
    x[0] = [1000] * 18 + [-1000] * 19
    np.testing.assert_allclose(F.softmax(x), TF.softmax(torch.from_numpy(x), -1).numpy(), atol=1e-6)


def test_relu_family_at_zero_and_nan_match_torch():
    x = np.array([-1.0, 0.0, 1.0, np.nan])
    tx = torch.from_numpy(x).requires_grad_(True)
    TF.elu(tx).backward(torch.ones(4, dtype=torch.float64))
    np.testing.assert_array_equal(F.elu_backward(np.ones(4), x), tx.grad.numpy())
    expect = torch.ops.aten.threshold_backward(
        torch.ones(4, dtype=torch.float64), torch.from_numpy(x), 0
    ).numpy()
    np.testing.assert_array_equal(F.relu_backward(np.ones(4), x), expect)  # NaN passes grad


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_large_parallel_path_matches_torch(dtype):
    x = RNG.standard_normal((3, 7, 81, 79)).astype(dtype)[:, :, ::-1]  # > 2**16, non-contiguous
    x[0, 0, 0, :3] = [np.nan, -0.0, 0.0]
    np.testing.assert_array_equal(F.relu(x), torch.relu(torch.from_numpy(x.copy())).numpy())
