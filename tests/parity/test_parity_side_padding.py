"""Per-side padding (top, bottom, left, right) against torch: torch has no such argument, so the
oracle is torch.nn.functional.pad on those sides (zeros, or -inf before a max pool) and then the
torch op with padding 0; gradients through torch autograd (float64)."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import convext.functional as F  # noqa: E402

TF = torch.nn.functional
RNG = np.random.default_rng(21)


def _tpad(t, pads, value=0.0):
    top, bottom, left, right = pads
    return TF.pad(t, (left, right, top, bottom), value=value)  # torch: last axis first


@pytest.mark.parametrize(
    "xs, ws, stride, dil, groups, pads",
    [
        ((2, 3, 9, 8), (5, 3, 3, 3), 1, 1, 1, (0, 2, 1, 0)),
        ((2, 4, 9, 8), (6, 2, 3, 2), (2, 3), (1, 2), 2, (3, 1, 0, 2)),
        ((1, 4, 10, 7), (4, 1, 3, 3), 2, 1, 4, (1, 0, 2, 3)),
        ((3, 2, 6, 6), (3, 2, 1, 1), 1, 1, 1, (1, 2, 0, 1)),
    ],
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_conv2d_side_padding_matches_torch_pad_then_conv(xs, ws, stride, dil, groups, pads, dtype):
    x = RNG.standard_normal(xs).astype(dtype)
    w = RNG.standard_normal(ws).astype(dtype)
    b = RNG.standard_normal(ws[0]).astype(dtype)
    tx = torch.tensor(x, requires_grad=True)
    tw = torch.tensor(w, requires_grad=True)
    tb = torch.tensor(b, requires_grad=True)
    ty = TF.conv2d(_tpad(tx, pads), tw, tb, stride, 0, dil, groups)
    y = F.conv2d(x, w, b, stride, pads, dil, groups)
    tol = dict(rtol=1e-4, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-11)
    np.testing.assert_allclose(y, ty.detach().numpy(), **tol)
    gy = RNG.standard_normal(y.shape).astype(dtype)
    ty.backward(torch.tensor(gy))
    gx, gw, gb = F.conv2d_backward(gy, x, w, stride, pads, dil, groups)
    np.testing.assert_allclose(gx, tx.grad.numpy(), **tol)
    np.testing.assert_allclose(gw, tw.grad.numpy(), **tol)
    np.testing.assert_allclose(gb, tb.grad.numpy(), **tol)


POOLS = [
    ((2, 3, 9, 8), 3, 2, (0, 1, 1, 0), False),
    ((2, 3, 9, 8), 3, 2, (1, 0, 0, 1), True),
    ((1, 2, 11, 10), (4, 3), (3, 2), (2, 0, 1, 1), True),
    ((1, 2, 11, 10), (5, 4), (2, 3), (0, 2, 2, 1), False),
]


def _crop_to(t, y):
    # torch's ceil_mode rule on the padded input may keep one more window, starting in the
    # bottom/right padding, which convext drops (its rule: the last window starts inside the
    # input or the top/left padding)
    assert t.shape[2] - y.shape[2] in (0, 1) and t.shape[3] - y.shape[3] in (0, 1)
    return t[:, :, : y.shape[2], : y.shape[3]]


@pytest.mark.parametrize("xs, k, s, pads, ceil", POOLS)
@pytest.mark.parametrize("dil", [1, 2])
def test_max_pool_side_padding_matches_torch_neg_inf_pad(xs, k, s, pads, ceil, dil):
    x = RNG.standard_normal(xs)
    tx = torch.tensor(x, requires_grad=True)
    ty = _crop_to(
        TF.max_pool2d(_tpad(tx, pads, -np.inf), k, s, 0, dil, ceil),
        np.empty(F.max_pool2d(x, k, s, pads, dil, ceil).shape),
    )
    y, idx = F.max_pool2d(x, k, s, pads, dil, ceil, return_indices=True)
    np.testing.assert_array_equal(y, ty.detach().numpy())
    gy = RNG.standard_normal(y.shape)
    ty.backward(torch.tensor(gy))
    np.testing.assert_allclose(
        F.max_pool2d_backward(gy, idx, x.shape), tx.grad.numpy(), rtol=1e-13, atol=1e-13
    )


@pytest.mark.parametrize("xs, k, s, pads, ceil", POOLS)
@pytest.mark.parametrize("include", [True, False])
def test_avg_pool_side_padding_matches_torch_zero_pad(xs, k, s, pads, ceil, include):
    x = RNG.standard_normal(xs)
    y = F.avg_pool2d(x, k, s, pads, ceil, include)
    tx = torch.tensor(x, requires_grad=True)
    if include:
        ty = TF.avg_pool2d(_tpad(tx, pads), k, s, 0, ceil, True)
    else:  # the divisor counts the real pixels only: sum pool / sum pool of padded ones
        ones = torch.ones_like(tx)
        ty = TF.avg_pool2d(_tpad(tx, pads), k, s, 0, ceil, divisor_override=1) / TF.avg_pool2d(
            _tpad(ones, pads), k, s, 0, ceil, divisor_override=1
        )
    ty = _crop_to(ty, y)
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-12, atol=1e-13)
    gy = RNG.standard_normal(y.shape)
    ty.backward(torch.tensor(gy))
    np.testing.assert_allclose(
        F.avg_pool2d_backward(gy, x.shape, k, s, pads, ceil, include),
        tx.grad.numpy(),
        rtol=1e-12,
        atol=1e-13,
    )


@pytest.mark.parametrize("xs, k, s, pads, ceil", POOLS)
@pytest.mark.parametrize("p", [1.0, 2.0, 3.5])
def test_lp_pool_side_padding_matches_torch_zero_pad(xs, k, s, pads, ceil, p):
    x = RNG.uniform(0.1, 2.0, xs)
    y = F.lp_pool2d(x, p, k, s, ceil, pads)
    tx = torch.tensor(x, requires_grad=True)
    ty = _crop_to(TF.lp_pool2d(_tpad(tx, pads), p, k, s, ceil), y)
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-12, atol=1e-13)
    gy = RNG.standard_normal(y.shape)
    ty.backward(torch.tensor(gy))
    np.testing.assert_allclose(
        F.lp_pool2d_backward(gy, x, y, p, k, s, ceil, pads), tx.grad.numpy(), rtol=1e-10, atol=1e-12
    )
