"""Pooling against torch: max (values, indices, gradients, NaN), average, Lp and global average.
The same cases run against the naive oracle in tests/functional/test_pool.py."""

import numpy as np
import pytest

import convext
from cases import AVG_POOL_CASES, LP_NORMS, LP_POOL_CASES, MAX_POOL_CASES, f32_ok
from convext import functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional
aten = torch.ops.aten

RNG = np.random.default_rng(4321)


def _t(a):
    return torch.from_numpy(np.ascontiguousarray(a))


def _pairs(*values):
    return (list(convext._validation.as_pair(v, "v", allow_zero=True)) for v in values)


@pytest.mark.parametrize("k,s,p,d,ceil", MAX_POOL_CASES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_max_forward_backward_vs_torch(k, s, p, d, ceil, dtype):
    x = RNG.standard_normal((2, 3, 7, 9)).astype(dtype)
    y, idx = F.max_pool2d(x, k, s, p, d, ceil, return_indices=True)
    ty, tidx = TF.max_pool2d(_t(x), k, s, p, d, ceil, return_indices=True)
    np.testing.assert_array_equal(y, ty.numpy())
    np.testing.assert_array_equal(idx, tidx.numpy())
    gy = RNG.standard_normal(y.shape).astype(dtype)
    gx = F.max_pool2d_backward(gy, idx, x.shape)
    tk, ts, tp, td = _pairs(k, s, p, d)
    tgx = aten.max_pool2d_with_indices_backward(_t(gy), _t(x), tk, ts, tp, td, ceil, tidx)
    np.testing.assert_allclose(
        gx,
        tgx.numpy(),
        rtol=1e-6 if dtype == np.float32 else 1e-12,
        atol=1e-6 if dtype == np.float32 else 1e-12,
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_tie_indices_match_torch(dtype):
    # integer-valued input with overlapping windows: many ties, the first maximum wins
    x = RNG.integers(-2, 3, size=(3, 4, 11, 10)).astype(dtype)
    _, idx = F.max_pool2d(x, 3, 2, 1, return_indices=True)
    _, tidx = TF.max_pool2d(_t(x), 3, 2, 1, return_indices=True)
    np.testing.assert_array_equal(idx, tidx.numpy())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("k,s,p", [(2, 2, 0), (3, 2, 1), (2, 1, 0)])
def test_max_nan_matches_torch(dtype, k, s, p):
    x = RNG.standard_normal((2, 2, 6, 6)).astype(dtype)
    x[0, 0, 0, 0] = np.nan
    x[0, 0, 1, 1] = np.nan  # two NaNs in one window: the last one is kept
    x[1, 1, 3, 2] = np.nan
    x[1, 0, 5, 5] = np.nan
    y, idx = F.max_pool2d(x, k, s, p, return_indices=True)
    ty, tidx = TF.max_pool2d(_t(x), k, s, p, return_indices=True)
    np.testing.assert_array_equal(y, ty.numpy())  # NaN positions equal too
    np.testing.assert_array_equal(idx, tidx.numpy())


@pytest.mark.parametrize("k,s,p,d,ceil", [*MAX_POOL_CASES, (3, 2, 1, 1, False)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_values_only_matches_torch(k, s, p, d, ceil, dtype):
    """max_pool2d without return_indices (the values-only kernels): torch's values, with ties of
    both signs of zero and NaN, on rows long enough for the vector kernels."""
    x = RNG.integers(-2, 3, size=(2, 3, 9, 70)).astype(dtype)
    x[x == 0] = np.where(RNG.random(int((x == 0).sum())) < 0.5, -0.0, 0.0).astype(dtype)
    x[0, 1, 2, 5:9] = np.nan
    x[1, 2, 4:6, 30] = np.nan
    y = F.max_pool2d(x, k, s, p, d, ceil)
    ty = TF.max_pool2d(_t(x), k, s, p, d, ceil).numpy()
    np.testing.assert_array_equal(y, ty)
    np.testing.assert_array_equal(np.signbit(y), np.signbit(ty))


@pytest.mark.parametrize("h,w", [(8, 70), (9, 71)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_backward_2x2_matches_torch(h, w, dtype):
    """The 2x2 stride-2 backward (written as a gather) against torch's, element for element,
    -0.0 grads included (both add them to a zeroed plane)."""
    x = RNG.standard_normal((2, 3, h, w)).astype(dtype)
    y, idx = F.max_pool2d(x, 2, 2, return_indices=True)
    _, tidx = TF.max_pool2d(_t(x), 2, 2, return_indices=True)
    gy = RNG.standard_normal(y.shape).astype(dtype)
    gy[0, 0, 0, :4] = -0.0
    gx = F.max_pool2d_backward(gy, idx, x.shape)
    tgx = aten.max_pool2d_with_indices_backward(
        _t(gy), _t(x), [2, 2], [2, 2], [0, 0], [1, 1], False, tidx
    ).numpy()
    np.testing.assert_array_equal(gx, tgx)
    np.testing.assert_array_equal(np.signbit(gx), np.signbit(tgx))


@pytest.mark.parametrize("k,s,p,ceil", AVG_POOL_CASES)
@pytest.mark.parametrize("include_pad", [True, False])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_avg_vs_torch(k, s, p, ceil, include_pad, dtype):
    x = RNG.standard_normal((2, 3, 7, 8)).astype(dtype)
    y = F.avg_pool2d(x, k, s, p, ceil, include_pad)
    ty = TF.avg_pool2d(_t(x), k, s, p, ceil, include_pad).numpy()
    assert y.dtype == dtype and y.shape == ty.shape
    gy = RNG.standard_normal(y.shape).astype(dtype)
    gx = F.avg_pool2d_backward(gy, x.shape, k, s, p, ceil, include_pad)
    tk, ts, tp = _pairs(k, s, p)
    tgx = aten.avg_pool2d_backward(_t(gy), _t(x), tk, ts, tp, ceil, include_pad, None).numpy()
    if dtype == np.float64:
        np.testing.assert_allclose(y, ty, rtol=1e-10, atol=1e-14)
        np.testing.assert_allclose(gx, tgx, rtol=1e-10, atol=1e-14)
    else:
        assert f32_ok(y, ty) and f32_ok(gx, tgx)


@pytest.mark.parametrize("div", [1, 3, 4, 7])
def test_avg_divisor_override_matches_torch(div):
    x = RNG.standard_normal((2, 2, 6, 5))
    y = F.avg_pool2d(x, 2, 2, 1, True, True, div)
    np.testing.assert_allclose(
        y, TF.avg_pool2d(_t(x), 2, 2, 1, True, True, div).numpy(), rtol=1e-10
    )


@pytest.mark.parametrize("p", LP_NORMS)
@pytest.mark.parametrize("k,s,ceil", LP_POOL_CASES)
def test_lp_vs_torch(p, k, s, ceil):
    x = RNG.random((2, 2, 6, 7)) + 0.1  # positive: every p is defined
    y = F.lp_pool2d(x, p, k, s, ceil)
    tx = _t(x).requires_grad_(True)
    ty = TF.lp_pool2d(tx, p, k, s, ceil)
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-10)
    gy = RNG.standard_normal(y.shape)
    gx = F.lp_pool2d_backward(gy, x, y, p, k, s, ceil)
    ty.backward(_t(gy))
    np.testing.assert_allclose(gx, tx.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_lp_l2_signed_input_and_zero_window_match_torch():
    x = RNG.standard_normal((2, 3, 6, 6))
    x[0, 0, :2, :2] = 0  # a zero window: output 0, gradient defined as 0
    y = F.lp_pool2d(x, 2, 2)
    gy = RNG.standard_normal(y.shape)
    gx = F.lp_pool2d_backward(gy, x, y, 2, 2)
    tx = _t(x).requires_grad_(True)
    TF.lp_pool2d(tx, 2, 2).backward(_t(gy))
    np.testing.assert_allclose(gx, tx.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_global_avg_matches_torch():
    x = RNG.standard_normal((3, 4, 5, 6))
    y = F.global_avg_pool2d(x)
    ty = TF.adaptive_avg_pool2d(_t(x), 1).numpy()
    np.testing.assert_allclose(y, ty, rtol=1e-10)
