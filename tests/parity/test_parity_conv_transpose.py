"""conv_transpose2d, conv_transpose2d_backward and ConvTranspose2D against torch (values,
autograd gradients, the layer's initialisation and state_dict)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import convext
from cases import conv_transpose_cases
from convext import conv_transpose2d, conv_transpose2d_backward

torch = pytest.importorskip("torch")
F = torch.nn.functional


@settings(max_examples=80, deadline=None)
@given(conv_transpose_cases(), st.sampled_from([np.float32, np.float64]))
def test_matches_torch(case, dtype):
    x, w, b, kw = case
    x, w = x.astype(dtype), w.astype(dtype)
    b = None if b is None else b.astype(dtype)
    tx = torch.tensor(x, requires_grad=True)
    tw = torch.tensor(w, requires_grad=True)
    tb = None if b is None else torch.tensor(b, requires_grad=True)
    ty = F.conv_transpose2d(
        tx, tw, tb, kw["stride"], kw["padding"], kw["output_padding"], kw["groups"], kw["dilation"]
    )
    y = conv_transpose2d(x, w, b, **kw)
    assert y.shape == tuple(ty.shape) and y.dtype == dtype
    tol = dict(rtol=1e-10, atol=1e-10) if dtype == np.float64 else dict(rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(y, ty.detach().numpy(), **tol)
    gy = np.random.default_rng(5).standard_normal(y.shape).astype(dtype)
    gx, gw, gb = conv_transpose2d_backward(gy, x, w, **kw)
    if x.shape[0] == 0:  # torch gives no gradients through an empty batch
        assert not gw.any() and not gb.any() and gx.shape == x.shape
        return
    ty.backward(torch.tensor(gy))
    np.testing.assert_allclose(gx, tx.grad.numpy(), **tol)
    np.testing.assert_allclose(gw, tw.grad.numpy(), **tol)
    if tb is not None:
        np.testing.assert_allclose(gb, tb.grad.numpy(), **tol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_layer_matches_torch_module(dtype):
    tdt = torch.float32 if dtype == np.float32 else torch.float64
    torch.manual_seed(0)
    tm = torch.nn.ConvTranspose2d(
        6,
        4,
        (3, 2),
        stride=(2, 1),
        padding=(1, 0),
        output_padding=(1, 0),
        groups=2,
        dilation=(1, 2),
    ).to(tdt)
    layer = convext.ConvTranspose2D(
        6,
        4,
        (3, 2),
        stride=(2, 1),
        padding=(1, 0),
        output_padding=(1, 0),
        groups=2,
        dilation=(1, 2),
        dtype=dtype,
        rng=0,
    )
    sd = {k: v.detach().numpy() for k, v in tm.state_dict().items()}
    assert list(layer.state_dict()) == list(sd)
    assert {k: v.shape for k, v in layer.state_dict().items()} == {
        k: v.shape for k, v in sd.items()
    }
    layer.load_state_dict(sd)
    x = np.random.default_rng(1).standard_normal((2, 6, 5, 4)).astype(dtype)
    tx = torch.tensor(x, requires_grad=True)
    ty = tm(tx)
    y = layer.train()(x)
    tol = dict(rtol=1e-10, atol=1e-10) if dtype == np.float64 else dict(rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(y, ty.detach().numpy(), **tol)
    gy = np.random.default_rng(2).standard_normal(y.shape).astype(dtype)
    ty.backward(torch.tensor(gy))
    np.testing.assert_allclose(layer.backward(gy), tx.grad.numpy(), **tol)
    np.testing.assert_allclose(layer.grads()["weight"], tm.weight.grad.numpy(), **tol)
    np.testing.assert_allclose(layer.grads()["bias"], tm.bias.grad.numpy(), **tol)


def test_layer_initialisation_has_torchs_bounds():
    """torch's kaiming_uniform(a=sqrt(5)) on (in, out/groups, kH, kW): fan_in is
    out/groups * kH * kW, bound 1/sqrt(fan_in) for the weight and the bias alike."""
    layer = convext.ConvTranspose2D(8, 6, 3, groups=2, rng=0)
    tm = torch.nn.ConvTranspose2d(8, 6, 3, groups=2)
    fan_in = torch.nn.init._calculate_fan_in_and_fan_out(tm.weight)[0]
    assert fan_in == 3 * 9
    bound = 1 / np.sqrt(fan_in)
    for arr in (layer.weight, layer.bias):
        assert np.abs(arr).max() <= bound
    assert np.abs(layer.weight).max() > 0.9 * bound  # 216 uniform draws reach near the edge
