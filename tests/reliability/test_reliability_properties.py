"""Property-based parity of the pools (docs/reliability.md checks 1-3, 9), beyond
tests/functional/test_pool.py.

tests/functional/test_pool.py has a hypothesis test of max-pool forward/backward against the
oracle and fixed cases; here hypothesis drives every pool, forward AND backward, against the
naive float64 oracle (tests/reference.py; the same properties against PyTorch:
tests/parity/test_parity_properties.py): batch 0..3, non-square kernels,
stride > kernel, dilation (max), ceil_mode, every padding form (int, pair, 0), count_include_pad,
divisor_override, unbatched input, float64 (rtol 1e-10) and float32 (1e-5 * max(1, max|ref|)).
"""

import numpy as np
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

import reference as R
from cases import b4 as _b4
from cases import close_to_oracle as _close
from cases import pool_geometry
from convext import functional as F

SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))


@SETTINGS
@given(pool_geometry(), st.sampled_from([np.float64, np.float32]))
def test_max_pool_forward_backward_vs_oracle(g, dtype):
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


@SETTINGS
@given(
    pool_geometry(dilation=False),
    st.booleans(),
    st.sampled_from([None, None, 1, 3, 7]),
    st.sampled_from([np.float64, np.float32]),
)
def test_avg_pool_forward_backward_vs_oracle(g, include_pad, divisor, dtype):
    rng = np.random.default_rng(g["seed"])
    x = rng.standard_normal(g["shape"]).astype(dtype)
    kw = {k: g[k] for k in ("kernel_size", "stride", "padding", "ceil_mode")}
    kw.update(count_include_pad=include_pad, divisor_override=divisor)
    y = F.avg_pool2d(x, **kw)
    _close(_b4(y), R.avg_pool2d(_b4(x), **kw), dtype)
    gy = rng.standard_normal(y.shape).astype(dtype)
    gx = F.avg_pool2d_backward(gy, x.shape, **kw)
    _close(_b4(gx), R.avg_pool2d_backward(_b4(gy), _b4(x).shape, **kw), dtype)


@SETTINGS
@given(
    pool_geometry(dilation=False, padding=False),
    st.sampled_from([1.0, 2.0, 3.0, 1.5, np.inf]),
    st.sampled_from([np.float64, np.float32]),
)
def test_lp_pool_forward_backward_vs_oracle(g, p, dtype):
    rng = np.random.default_rng(g["seed"])
    # positive, away from 0: the gradient is smooth (and has no 0**negative)
    x = (rng.random(g["shape"]) + 0.2).astype(dtype)
    kw = {k: g[k] for k in ("kernel_size", "stride", "ceil_mode")}
    y = F.lp_pool2d(x, p, **kw)
    if np.isfinite(p):
        _close(_b4(y), R.lp_pool2d(_b4(x), p, **kw), dtype)
    else:
        ry, _ = R.max_pool2d(_b4(np.abs(x)), kw["kernel_size"], kw["stride"], 0, 1, kw["ceil_mode"])
        _close(_b4(y), ry, dtype)
    gy = rng.standard_normal(y.shape).astype(dtype)
    gx = F.lp_pool2d_backward(gy, x, y, p, **kw)
    assert gx.shape == x.shape and gx.dtype == dtype


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(pool_geometry(dilation=False, padding=False), st.sampled_from([1.0, 2.0, 3.0]))
@example(
    dict(
        shape=(1, 1, 3, 11),
        kernel_size=2,
        stride=2,
        padding=0,
        dilation=(1, 1),
        ceil_mode=True,
        seed=311,
    ),
    1.0,
)
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


def test_avg_pool_ceil_mode_window_past_the_edge():
    """kernel 2, stride 2, ceil_mode on odd sizes: the last window hangs past the input and is
    divided by its clipped size (found by the fuzz target)."""
    x = np.ones((1, 1, 3, 3))
    want = R.avg_pool2d(x, 2, ceil_mode=True)
    np.testing.assert_array_equal(want, np.ones((1, 1, 2, 2)))
    np.testing.assert_array_equal(F.avg_pool2d(x, 2, ceil_mode=True), want)
    gx = F.avg_pool2d_backward(np.ones((1, 1, 2, 2)), x.shape, 2, ceil_mode=True)
    np.testing.assert_array_equal(
        gx, R.avg_pool2d_backward(np.ones((1, 1, 2, 2)), x.shape, 2, ceil_mode=True)
    )
