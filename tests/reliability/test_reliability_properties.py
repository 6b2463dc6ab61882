"""Property-based parity of the pools (RELIABILITY.md checks 1-3, 9), beyond tests/test_pool.py.

tests/test_pool.py has a hypothesis test of max-pool forward/backward against the oracle and
fixed cases against torch; here hypothesis drives every pool, forward AND backward, against
both the naive float64 oracle (tests/reference.py) and torch: batch 0..3, non-square kernels,
stride > kernel, dilation (max), ceil_mode, every padding form (int, pair, 0), count_include_pad,
divisor_override, unbatched input, float64 (rtol 1e-10) and float32 (1e-5 * max(1, max|ref|)).
"""
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

import reference as R
from convext import functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional


SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))


def _close(got, ref, dtype):
    got = np.asarray(got)
    assert got.shape == ref.shape, (got.shape, ref.shape)
    assert got.dtype == dtype
    fin = np.isfinite(ref)  # -inf (empty max-pool windows) must match exactly
    np.testing.assert_array_equal(got[~fin], ref[~fin])
    got, ref = got[fin], ref[fin]
    if dtype == np.float64:
        np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-12)
    else:
        scale = max(1.0, float(np.abs(ref).max(initial=0.0)))
        assert float(np.abs(got.astype(np.float64) - ref).max(initial=0.0)) <= 1e-5 * scale


def _pad_or_int(draw, a, b):
    """padding as an int (when both equal) or a pair."""
    return a if a == b and draw(st.booleans()) else (a, b)


@st.composite
def pool_geometry(draw, dilation=True, padding=True):
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    sh = draw(st.integers(1, 5))
    sw = draw(st.integers(1, 5))
    stride = None if draw(st.integers(0, 5)) == 0 else _pad_or_int(draw, sh, sw)
    dh, dw = (draw(st.integers(1, 3)), draw(st.integers(1, 3))) if dilation else (1, 1)
    ph, pw = (draw(st.integers(0, kh // 2)), draw(st.integers(0, kw // 2))) if padding \
        else (0, 0)
    ceil = draw(st.booleans())
    n = draw(st.integers(0, 3))
    c = draw(st.integers(1, 3))
    h = draw(st.integers(max(1, dh * (kh - 1) + 1 - 2 * ph), 11))
    w = draw(st.integers(max(1, dw * (kw - 1) + 1 - 2 * pw), 11))
    unbatched = draw(st.integers(0, 7)) == 0
    kernel = kh if kh == kw and draw(st.booleans()) else (kh, kw)
    return dict(shape=(c, h, w) if unbatched else (n, c, h, w), kernel_size=kernel,
                stride=stride, padding=_pad_or_int(draw, ph, pw), dilation=(dh, dw),
                ceil_mode=ceil, seed=draw(st.integers(0, 2 ** 31)))


def _b4(a):
    return a if a.ndim == 4 else a[None]


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
def test_max_pool_forward_backward_vs_oracle_and_torch(g, dtype):
    rng = np.random.default_rng(g["seed"])
    # half the time integer-valued: many ties (the first maximum in row-major order wins)
    x = rng.standard_normal(g["shape"])
    if g["seed"] % 2:
        x = np.round(x * 2)
    x = x.astype(dtype)
    kw = {k: g[k] for k in ("kernel_size", "stride", "padding", "dilation", "ceil_mode")}
    y, idx = F.max_pool2d(x, **kw, return_indices=True)
    ry, ridx = R.max_pool2d(_b4(x), **kw)
    _close(_b4(y), ry, dtype)
    np.testing.assert_array_equal(_b4(idx), ridx)
    gy = rng.standard_normal(y.shape).astype(dtype)
    gx = F.max_pool2d_backward(gy, idx, x.shape)
    _close(_b4(gx), R.max_pool2d_backward(_b4(gy), ridx, _b4(x).shape), dtype)
    if (ridx < 0).any():
        return  # windows without any input element: torch returns -inf with index garbage
    ty, tgx = _torch(TF.max_pool2d, x, grad=gy, **kw)
    if ty is not None:
        np.testing.assert_array_equal(y, ty)
        _, tidx = TF.max_pool2d(torch.tensor(x), **kw, return_indices=True)
        np.testing.assert_array_equal(idx, tidx.numpy())
        _close(_b4(gx), _b4(tgx).astype(np.float64), dtype)


@SETTINGS
@given(pool_geometry(dilation=False), st.booleans(), st.sampled_from([None, None, 1, 3, 7]),
       st.sampled_from([np.float64, np.float32]))
def test_avg_pool_forward_backward_vs_oracle_and_torch(g, include_pad, divisor, dtype):
    rng = np.random.default_rng(g["seed"])
    x = rng.standard_normal(g["shape"]).astype(dtype)
    kw = {k: g[k] for k in ("kernel_size", "stride", "padding", "ceil_mode")}
    kw.update(count_include_pad=include_pad, divisor_override=divisor)
    y = F.avg_pool2d(x, **kw)
    _close(_b4(y), R.avg_pool2d(_b4(x), **kw), dtype)
    gy = rng.standard_normal(y.shape).astype(dtype)
    gx = F.avg_pool2d_backward(gy, x.shape, **kw)
    _close(_b4(gx), R.avg_pool2d_backward(_b4(gy), _b4(x).shape, **kw), dtype)
    ty, tgx = _torch(TF.avg_pool2d, x, grad=gy, **kw)
    if ty is not None:
        _close(_b4(y), _b4(ty).astype(np.float64), dtype)
        _close(_b4(gx), _b4(tgx).astype(np.float64), dtype)


@SETTINGS
@given(pool_geometry(dilation=False, padding=False),
       st.sampled_from([1.0, 2.0, 3.0, 1.5, np.inf]), st.sampled_from([np.float64, np.float32]))
def test_lp_pool_forward_backward_vs_oracle_and_torch(g, p, dtype):
    rng = np.random.default_rng(g["seed"])
    # positive, away from 0: the gradient is smooth and torch's formula has no 0**negative
    x = (rng.random(g["shape"]) + 0.2).astype(dtype)
    kw = {k: g[k] for k in ("kernel_size", "stride", "ceil_mode")}
    y = F.lp_pool2d(x, p, **kw)
    if np.isfinite(p):
        _close(_b4(y), R.lp_pool2d(_b4(x), p, **kw), dtype)
    else:
        ry, _ = R.max_pool2d(_b4(np.abs(x)), kw["kernel_size"], kw["stride"], 0, 1,
                             kw["ceil_mode"])
        _close(_b4(y), ry, dtype)
    gy = rng.standard_normal(y.shape).astype(dtype)
    gx = F.lp_pool2d_backward(gy, x, y, p, **kw)
    assert gx.shape == x.shape and gx.dtype == dtype
    if not np.isfinite(p):
        return  # torch's lp_pool2d has no p = inf
    ty, tgx = _torch(TF.lp_pool2d, x, p, grad=gy, **kw)
    if ty is not None:
        _close(_b4(y), _b4(ty).astype(np.float64), dtype)
        if dtype == np.float64:
            np.testing.assert_allclose(gx, tgx, rtol=1e-9, atol=1e-12)
        else:
            scale = max(1.0, float(np.abs(tgx).max()))
            assert float(np.abs(gx.astype(np.float64) - tgx).max()) <= 1e-4 * scale


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(pool_geometry(dilation=False, padding=False), st.sampled_from([1.0, 2.0, 3.0]))
@example(dict(shape=(1, 1, 3, 11), kernel_size=2, stride=2, padding=0, dilation=(1, 1),
              ceil_mode=True, seed=311), 1.0)
def test_lp_pool_backward_by_central_differences(g, p):
    assume(0 < int(np.prod(g["shape"])) <= 200)
    rng = np.random.default_rng(g["seed"])
    x = rng.random(g["shape"]) + 0.2
    kw = {k: g[k] for k in ("kernel_size", "stride", "ceil_mode")}
    y = F.lp_pool2d(x, p, **kw)
    gy = rng.standard_normal(y.shape)
    gx = F.lp_pool2d_backward(gy, x, y, p, **kw)
    num = R.numerical_grad(lambda v: float(np.sum(F.lp_pool2d(v, p, **kw) * gy)), x)
    np.testing.assert_allclose(gx, num, atol=1e-5, rtol=1e-3)


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(pool_geometry(dilation=False), st.booleans())
def test_avg_pool_backward_by_central_differences(g, include_pad):
    assume(0 < int(np.prod(g["shape"])) <= 200)
    rng = np.random.default_rng(g["seed"])
    x = rng.standard_normal(g["shape"])
    kw = {k: g[k] for k in ("kernel_size", "stride", "padding", "ceil_mode")}
    kw["count_include_pad"] = include_pad
    gy = rng.standard_normal(F.avg_pool2d(x, **kw).shape)
    gx = F.avg_pool2d_backward(gy, x.shape, **kw)
    num = R.numerical_grad(lambda v: float(np.sum(F.avg_pool2d(v, **kw) * gy)), x)
    np.testing.assert_allclose(gx, num, atol=1e-5, rtol=1e-3)


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
