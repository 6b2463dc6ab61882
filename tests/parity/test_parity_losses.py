"""Losses against torch: (loss, grad) against autograd of the reduced torch loss."""

import numpy as np
import pytest

from cases import check_loss_grad as _check
from cases import loss_pair as _pair
from cases import loss_pos_pair as _pos_pair
from cases import loss_probs as _probs
from convext import functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional

RNG = np.random.default_rng(13)
REDUCTIONS = ["mean", "sum", "none"]


def _reduce_t(loss, reduction):
    return loss.mean() if reduction == "mean" else loss.sum() if reduction == "sum" else loss


# name, convext fn(x, t, red), torch fn(tx, tt, red), inputs
LOSSES = [
    ("mse", F.mse_loss, TF.mse_loss, _pair),
    (
        "msle",
        F.msle_loss,
        lambda x, t, reduction: TF.mse_loss(torch.log1p(x), torch.log1p(t), reduction=reduction),
        _pos_pair,
    ),
    ("l1", F.l1_loss, TF.l1_loss, _pair),
    (
        "l2",
        F.l2_loss,
        lambda x, t, reduction: _reduce_t(
            ((x - t) ** 2).sum(dim=tuple(range(1, x.dim()))), reduction
        ),
        _pair,
    ),
    (
        "mape",
        F.mape_loss,
        lambda x, t, reduction: _reduce_t(100 * (x - t).abs() / t.abs().clamp(min=1e-7), reduction),
        _pair,
    ),
    ("bce", F.binary_cross_entropy, TF.binary_cross_entropy, _probs),
    ("bce_logits", F.binary_cross_entropy_with_logits, TF.binary_cross_entropy_with_logits, _pair),
]
IDS = [a[0] for a in LOSSES]


def _torch_loss_grad(tfn, x, t, reduction, **kw):
    tx = torch.from_numpy(np.asarray(x, np.float64)).requires_grad_(True)
    tt = torch.from_numpy(
        np.asarray(
            t if np.issubdtype(np.asarray(t).dtype, np.integer) else np.asarray(t, np.float64)
        )
    )
    loss = tfn(tx, tt, reduction=reduction, **kw)
    loss.sum().backward()
    return loss.detach().numpy(), tx.grad.numpy()


@pytest.mark.parametrize("name,fn,tfn,make", LOSSES, ids=IDS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_vs_torch(name, fn, tfn, make, reduction, dtype):
    x, t = (a.astype(dtype) for a in make())
    loss, grad = fn(x, t, reduction=reduction)
    _check(loss, grad, *_torch_loss_grad(tfn, x, t, reduction), dtype)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_bce_weight_and_clamp_match_torch(reduction):
    x, t = _probs((5, 4))
    x[0, :2] = [0.0, 1.0]  # log clamped at -100; gradient through torch's 1e-12 floor
    t[0, :2] = [1.0, 0.0]
    w = RNG.random(4)
    loss, grad = F.binary_cross_entropy(x, t, w, reduction)
    rl, rg = _torch_loss_grad(TF.binary_cross_entropy, x, t, reduction, weight=torch.from_numpy(w))
    _check(loss, grad, rl, rg, np.float64)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kind", ["index", "probs"])
def test_cross_entropy_vs_torch(reduction, dtype, kind):
    z = (RNG.standard_normal((6, 5)) * 2).astype(dtype)
    if kind == "index":
        t = RNG.integers(0, 5, 6)
    else:
        t = RNG.random((6, 5)).astype(dtype)
        t /= t.sum(axis=1, keepdims=True)
    loss, grad = F.cross_entropy(z, t, reduction)
    _check(loss, grad, *_torch_loss_grad(TF.cross_entropy, z, t, reduction), dtype)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_nll_vs_torch(reduction, dtype):
    lp = F.log_softmax(RNG.standard_normal((7, 4)).astype(dtype))
    t = RNG.integers(0, 4, 7).astype(np.int32)
    loss, grad = F.nll_loss(lp, t, reduction)
    _check(loss, grad, *_torch_loss_grad(TF.nll_loss, lp, t.astype(np.int64), reduction), dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_entropy_extreme_logits_match_torch(dtype):
    z = np.array([[1000, -1000, 0], [-1000, 1000, 1000], [-1000, -1000, -1000]], dtype)
    t = np.array([1, 0, 2])
    loss, grad = F.cross_entropy(z, t, "none")
    rl, rg = _torch_loss_grad(TF.cross_entropy, z, t, "none")
    np.testing.assert_allclose(loss, rl, rtol=1e-7)
    np.testing.assert_allclose(grad, rg, atol=1e-7)
