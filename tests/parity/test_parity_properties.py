"""Property-based parity of the pools with torch (docs/reliability.md checks 1-3, 9): hypothesis
drives every pool, forward AND backward, over the geometries of
tests/reliability/test_reliability_properties.py (which checks the same against the naive
oracle)."""

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cases import b4 as _b4
from cases import close_to_oracle as _close
from cases import pool_geometry
from convext import functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional


SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))


def _torch(fn, x, *args, grad=None, **kw):
    """torch forward (and backward with ``grad``) in the input's dtype; None for empty batch."""
    if x.shape[0] == 0 and x.ndim == 4:
        return None, None
    tx = torch.tensor(x, requires_grad=grad is not None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ty = fn(tx, *args, **kw)
    if grad is None:
        return ty.detach().numpy(), None
    ty.backward(torch.tensor(grad))
    return ty.detach().numpy(), tx.grad.numpy()


@SETTINGS
@given(pool_geometry(), st.sampled_from([np.float64, np.float32]))
def test_max_pool_forward_backward_vs_torch(g, dtype):
    rng = np.random.default_rng(g["seed"])
    # half the time integer-valued: many ties (the first maximum in row-major order wins)
    x = rng.standard_normal(g["shape"])
    if g["seed"] % 2:
        x = np.round(x * 2)
    x = x.astype(dtype)
    kw = {k: g[k] for k in ("kernel_size", "stride", "padding", "dilation", "ceil_mode")}
    y, idx = F.max_pool2d(x, **kw, return_indices=True)
    gy = rng.standard_normal(y.shape).astype(dtype)
    gx = F.max_pool2d_backward(gy, idx, x.shape)
    if (idx < 0).any():
        return  # windows without any input element: torch returns -inf with index garbage
    ty, tgx = _torch(TF.max_pool2d, x, grad=gy, **kw)
    if ty is not None:
        np.testing.assert_array_equal(y, ty)
        _, tidx = TF.max_pool2d(torch.tensor(x), **kw, return_indices=True)
        np.testing.assert_array_equal(idx, tidx.numpy())
        _close(_b4(gx), _b4(tgx).astype(np.float64), dtype)


@SETTINGS
@given(
    pool_geometry(dilation=False),
    st.booleans(),
    st.sampled_from([None, None, 1, 3, 7]),
    st.sampled_from([np.float64, np.float32]),
)
def test_avg_pool_forward_backward_vs_torch(g, include_pad, divisor, dtype):
    rng = np.random.default_rng(g["seed"])
    x = rng.standard_normal(g["shape"]).astype(dtype)
    kw = {k: g[k] for k in ("kernel_size", "stride", "padding", "ceil_mode")}
    kw.update(count_include_pad=include_pad, divisor_override=divisor)
    y = F.avg_pool2d(x, **kw)
    gy = rng.standard_normal(y.shape).astype(dtype)
    gx = F.avg_pool2d_backward(gy, x.shape, **kw)
    ty, tgx = _torch(TF.avg_pool2d, x, grad=gy, **kw)
    if ty is not None:
        _close(_b4(y), _b4(ty).astype(np.float64), dtype)
        _close(_b4(gx), _b4(tgx).astype(np.float64), dtype)


@SETTINGS
@given(
    pool_geometry(dilation=False, padding=False),
    st.sampled_from([1.0, 2.0, 3.0, 1.5]),
    st.sampled_from([np.float64, np.float32]),
)
def test_lp_pool_forward_backward_vs_torch(g, p, dtype):
    """(torch's lp_pool2d has no p = inf: that norm is checked against the oracle only)"""
    rng = np.random.default_rng(g["seed"])
    # positive, away from 0: the gradient is smooth and torch's formula has no 0**negative
    x = (rng.random(g["shape"]) + 0.2).astype(dtype)
    kw = {k: g[k] for k in ("kernel_size", "stride", "ceil_mode")}
    y = F.lp_pool2d(x, p, **kw)
    gy = rng.standard_normal(y.shape).astype(dtype)
    gx = F.lp_pool2d_backward(gy, x, y, p, **kw)
    ty, tgx = _torch(TF.lp_pool2d, x, p, grad=gy, **kw)
    if ty is not None:
        _close(_b4(y), _b4(ty).astype(np.float64), dtype)
        if dtype == np.float64:
            np.testing.assert_allclose(gx, tgx, rtol=1e-9, atol=1e-12)
        else:
            scale = max(1.0, float(np.abs(tgx).max()))
            assert float(np.abs(gx.astype(np.float64) - tgx).max()) <= 1e-4 * scale


def test_avg_pool_ceil_mode_window_past_the_edge_matches_torch():
    """kernel 2, stride 2, ceil_mode on odd sizes: the last window hangs past the input and
    torch divides by its clipped size (found by the fuzz target)."""
    x = np.ones((1, 1, 3, 3))
    want = TF.avg_pool2d(torch.tensor(x), 2, ceil_mode=True).numpy()
    np.testing.assert_array_equal(want, np.ones((1, 1, 2, 2)))
    np.testing.assert_array_equal(F.avg_pool2d(x, 2, ceil_mode=True), want)
    gx = F.avg_pool2d_backward(np.ones((1, 1, 2, 2)), x.shape, 2, ceil_mode=True)
    tx = torch.tensor(x, requires_grad=True)
    TF.avg_pool2d(tx, 2, ceil_mode=True).sum().backward()
    np.testing.assert_array_equal(gx, tx.grad.numpy())
