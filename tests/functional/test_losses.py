"""Losses: (loss, grad) against the naive oracle, central differences, stability cases and the
error contract (the PyTorch comparisons: tests/parity/test_parity_losses.py)."""

import warnings

import numpy as np
import pytest

import reference as ref
from cases import check_loss_grad as _check
from cases import loss_pair as _pair
from cases import loss_pos_pair as _pos_pair
from cases import loss_probs as _probs
from convext import functional as F

RNG = np.random.default_rng(11)
REDUCTIONS = ["mean", "sum", "none"]


# name, convext fn(x, t, red), oracle fn(x, t, red), inputs
LOSSES = [
    ("mse", F.mse_loss, ref.mse_loss, _pair),
    ("msle", F.msle_loss, ref.msle_loss, _pos_pair),
    ("l1", F.l1_loss, ref.l1_loss, _pair),
    ("l2", F.l2_loss, ref.l2_loss, _pair),
    ("mape", F.mape_loss, ref.mape_loss, _pair),
    ("bce", F.binary_cross_entropy, ref.binary_cross_entropy, _probs),
    ("bce_logits", F.binary_cross_entropy_with_logits, ref.binary_cross_entropy_with_logits, _pair),
]
IDS = [a[0] for a in LOSSES]


def _check_types(loss, grad, x, reduction, dtype):
    assert grad.dtype == dtype and grad.shape == x.shape
    if reduction == "none":
        assert isinstance(loss, np.ndarray) and loss.dtype == dtype
    else:
        assert np.ndim(loss) == 0 and np.asarray(loss).dtype == dtype


@pytest.mark.parametrize("name,fn,rfn,make", LOSSES, ids=IDS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_vs_reference(name, fn, rfn, make, reduction, dtype):
    x, t = (a.astype(dtype) for a in make())
    loss, grad = fn(x, t, reduction=reduction)
    _check_types(loss, grad, x, reduction, dtype)
    _check(loss, grad, *rfn(x, t, reduction=reduction), dtype)


@pytest.mark.parametrize("name,fn,rfn,make", LOSSES, ids=IDS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_gradcheck(name, fn, rfn, make, reduction):
    x, t = make()
    _, grad = fn(x, t, reduction=reduction)
    num = ref.numerical_grad(lambda z: np.sum(fn(z, t, reduction=reduction)[0]), x)
    np.testing.assert_allclose(grad, num, atol=1e-5, rtol=1e-3)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_bce_weight_and_clamp(reduction):
    x, t = _probs((5, 4))
    x[0, :2] = [0.0, 1.0]  # log clamped at -100; gradient through PyTorch's 1e-12 floor
    t[0, :2] = [1.0, 0.0]
    w = RNG.random(4)
    loss, grad = F.binary_cross_entropy(x, t, w, reduction)
    rl, rg = ref.binary_cross_entropy(x, t, w, reduction)
    _check(loss, grad, rl, rg, np.float64)
    with pytest.raises(ValueError, match="between 0 and 1"):
        F.binary_cross_entropy(x + 1, t)
    with pytest.raises(ValueError, match="weight"):
        F.binary_cross_entropy(x, t, np.ones(3))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kind", ["index", "probs"])
def test_cross_entropy_vs_reference(reduction, dtype, kind):
    z = (RNG.standard_normal((6, 5)) * 2).astype(dtype)
    if kind == "index":
        t = RNG.integers(0, 5, 6)
    else:
        t = RNG.random((6, 5)).astype(dtype)
        t /= t.sum(axis=1, keepdims=True)
    loss, grad = F.cross_entropy(z, t, reduction)
    _check_types(loss, grad, z, reduction, dtype)
    _check(loss, grad, *ref.cross_entropy(z, t, reduction), dtype)
    if dtype == np.float64:
        num = ref.numerical_grad(lambda a: np.sum(F.cross_entropy(a, t, reduction)[0]), z)
        np.testing.assert_allclose(grad, num, atol=1e-5, rtol=1e-3)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_nll_vs_reference(reduction, dtype):
    lp = F.log_softmax(RNG.standard_normal((7, 4)).astype(dtype))
    t = RNG.integers(0, 4, 7).astype(np.int32)
    loss, grad = F.nll_loss(lp, t, reduction)
    _check_types(loss, grad, lp, reduction, dtype)
    _check(loss, grad, *ref.nll_loss(lp, t, reduction), dtype)
    if dtype == np.float64:
        num = ref.numerical_grad(lambda a: np.sum(F.nll_loss(a, t, reduction)[0]), lp)
        np.testing.assert_allclose(grad, num, atol=1e-5, rtol=1e-3)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_entropy_stability(dtype):
    z = np.array([[1000, -1000, 0], [-1000, 1000, 1000], [-1000, -1000, -1000]], dtype)
    t = np.array([1, 0, 2])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss, grad = F.cross_entropy(z, t, "none")
        lb, gb = F.binary_cross_entropy_with_logits(
            np.array([1000, -1000], dtype), np.array([0, 1], dtype), "none"
        )
    # log-sum-exp exactly: 2000, 2000 + log 2, log 3
    np.testing.assert_allclose(loss, [2000, 2000 + np.log(2), np.log(3)], rtol=1e-7)
    assert np.all(np.isfinite(grad)) and np.all(np.isfinite(lb)) and np.all(np.isfinite(gb))
    np.testing.assert_array_equal(lb, [1000, 1000])
    rl, rg = ref.cross_entropy(z, t, "none")
    np.testing.assert_allclose(loss, rl, rtol=1e-7)
    np.testing.assert_allclose(grad, rg, atol=1e-7)


def test_cross_entropy_shift_invariance_float32():
    # logits on a 1/8 grid: shifting by 256 is exact in float32, so only the loss's own rounding
    # can move it
    z = (RNG.integers(-80, 80, (64, 10)) / 8).astype(np.float32)
    t = RNG.integers(0, 10, 64)
    a, _ = F.cross_entropy(z, t)
    b, _ = F.cross_entropy(z + np.float32(256), t)
    c, _ = F.cross_entropy(z - np.float32(256), t)
    assert abs(a - b) < 1e-5 and abs(a - c) < 1e-5
    p = np.full((64, 10), 0.1, np.float32)
    assert abs(F.cross_entropy(z, p)[0] - F.cross_entropy(z + np.float32(256), p)[0]) < 1e-5


def test_empty_batch():
    x = np.zeros((0, 3))
    loss, grad = F.mse_loss(x, x)
    assert np.isnan(loss) and grad.shape == (0, 3)
    assert F.mse_loss(x, x, "sum")[0] == 0
    loss, grad = F.cross_entropy(x, np.zeros(0, np.int64), "sum")
    assert loss == 0 and grad.shape == (0, 3)
    loss, grad = F.l2_loss(x, x, "none")
    assert loss.shape == (0,) and grad.shape == (0, 3)


def test_l2_is_per_sample_sum():
    x, t = _pair((3, 4))
    loss, _ = F.l2_loss(x, t, "none")
    np.testing.assert_allclose(loss, ((x - t) ** 2).sum(axis=1), rtol=1e-12)
    np.testing.assert_allclose(F.l2_loss(x, t)[0], ((x - t) ** 2).sum() / 3, rtol=1e-12)
    np.testing.assert_allclose(
        F.l2_loss(x[:, 0], t[:, 0], "sum")[0], F.mse_loss(x[:, 0], t[:, 0], "sum")[0], rtol=1e-12
    )


@pytest.mark.parametrize(
    "call,exc,match",
    [
        (
            lambda: F.mse_loss(np.zeros(3), np.zeros(4)),
            ValueError,
            r"target must have the shape of input \(3\), got \(4\)",
        ),
        (lambda: F.l1_loss(np.zeros(3), np.zeros(3, np.float32)), TypeError, "dtype"),
        (
            lambda: F.mse_loss(np.zeros(3), np.zeros(3), "avg"),
            ValueError,
            "reduction must be one of 'mean', 'sum', 'none'",
        ),
        (lambda: F.msle_loss(np.array([-2.0]), np.zeros(1)), ValueError, "> -1"),
        (lambda: F.l2_loss(np.float64(1), np.float64(1)), ValueError, "batch axis"),
        (
            lambda: F.cross_entropy(np.zeros((2, 3)), np.array([0, 3])),
            ValueError,
            r"class index 3, outside \[0, 3\)",
        ),
        (
            lambda: F.cross_entropy(np.zeros((2, 3)), np.array([-1, 0])),
            ValueError,
            "class index -1",
        ),
        (
            lambda: F.cross_entropy(np.zeros((2, 3)), np.zeros(3, np.int64)),
            ValueError,
            r"target must have shape \(2,\)",
        ),
        (
            lambda: F.cross_entropy(np.zeros((2, 3)), np.zeros(2)),
            ValueError,
            "probability targets must have the logits' shape",
        ),
        # unbatched (C,) logits take a scalar target (torch)
        (
            lambda: F.cross_entropy(np.zeros(3), np.zeros(1, np.int64)),
            ValueError,
            r"target must have shape \(\) for input of shape \(3\)",
        ),
        (
            lambda: F.cross_entropy(np.zeros(()), np.zeros((), np.int64)),
            ValueError,
            r"logits must be \(C,\) or \(N, C, d1, ..., dk\)",
        ),
        (lambda: F.nll_loss(np.zeros((2, 3)), np.zeros(2)), TypeError, "integer"),
        (lambda: F.nll_loss(np.zeros((2, 3)), np.array([0, 5])), ValueError, "class index 5"),
        (
            lambda: F.binary_cross_entropy_with_logits(np.zeros(2, np.int64), np.zeros(2)),
            TypeError,
            "input must have dtype",
        ),
    ],
)
def test_errors(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


@pytest.mark.parametrize("loss", ["cross_entropy", "nll_loss"])
@pytest.mark.parametrize("shape", [(3, 0), (3, 0, 2)])
def test_no_classes_is_a_value_error_naming_the_target(loss, shape):
    """An input of zero classes leaves every target index out of range: the loss's own
    ValueError (cross_entropy raised numpy's "cannot reshape array of size 0")."""
    target = np.zeros((shape[0],) + shape[2:], np.int64)
    with pytest.raises(ValueError, match=rf"^{loss}: target holds class index 0, outside \[0, 0\)"):
        getattr(F, loss)(np.zeros(shape, np.float32), target)
