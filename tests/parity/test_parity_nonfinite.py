"""softmax, log_softmax and cross_entropy with +inf, -inf and NaN logits give NaN exactly where
torch does, forward and backward (torch is the oracle; issue 9, "Numerics and contracts")."""

import numpy as np
import pytest

from convext import functional as F

torch = pytest.importorskip("torch")

inf, nan = np.inf, np.nan
# rows mixing +inf, -inf, NaN and finite values; the last rows are ordinary
ROWS = [
    [inf, 1.0, 2.0],
    [inf, inf, 1.0],
    [-inf, 1.0, 2.0],
    [-inf, -inf, -inf],
    [inf, -inf, 0.0],
    [-inf, -inf, 3.0],
    [nan, 1.0, 2.0],
    [1000.0, -1000.0, 0.0],
    [0.5, -1.5, 2.0],
]
DTYPES = [np.float32, np.float64]


def _logits(dtype):
    return np.array(ROWS, dtype=dtype)


def _grad_out(dtype):
    return np.random.default_rng(0).standard_normal((len(ROWS), 3)).astype(dtype)


def _assert_same(ours, theirs, dtype):
    theirs = theirs.detach().numpy() if hasattr(theirs, "detach") else np.asarray(theirs)
    ours = np.asarray(ours)
    assert ours.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs))
    np.testing.assert_array_equal(np.isposinf(ours), np.isposinf(theirs))
    np.testing.assert_array_equal(np.isneginf(ours), np.isneginf(theirs))
    rtol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=rtol, equal_nan=True)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_softmax_family_nonfinite_logits_match_torch(name, dtype):
    x = _logits(dtype)
    g = _grad_out(dtype)
    xt = torch.tensor(x, requires_grad=True)
    yt = getattr(torch.nn.functional, name)(xt, dim=-1)
    yt.backward(torch.tensor(g))
    with np.errstate(all="raise"):  # no floating-point warnings either
        y = getattr(F, name)(x)
        gx = getattr(F, name + "_backward")(g, y)
    _assert_same(y, yt, dtype)
    _assert_same(gx, xt.grad, dtype)
    assert np.isnan(y[0]).all()  # the example: a +inf logit, NaN throughout the row
    assert np.isfinite(y[-1]).all()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_softmax_family_nonfinite_along_axis_0(name, dtype):
    x = np.ascontiguousarray(_logits(dtype).T)
    xt = torch.tensor(x)
    _assert_same(getattr(F, name)(x, axis=0), getattr(torch.nn.functional, name)(xt, dim=0), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("target_kind", ["index", "probability"])
def test_cross_entropy_nonfinite_logits_match_torch(dtype, reduction, target_kind):
    x = _logits(dtype)
    rng = np.random.default_rng(1)
    if target_kind == "index":
        t = np.array([1, 2, 1, 0, 2, 2, 1, 0, 2])
        tt = torch.tensor(t)
    else:
        t = rng.dirichlet(np.ones(3), size=len(ROWS)).astype(dtype)
        t[2] = [0.0, 0.5, 0.5]  # zero weight on a -inf logit: 0 * -inf is NaN in torch too
        tt = torch.tensor(t)
    xt = torch.tensor(x, requires_grad=True)
    lt = torch.nn.functional.cross_entropy(xt, tt, reduction=reduction)
    lt.sum().backward()
    with np.errstate(all="raise"):
        loss, grad = F.cross_entropy(x, t, reduction=reduction)
    _assert_same(loss, lt, dtype)
    _assert_same(grad, xt.grad, dtype)
