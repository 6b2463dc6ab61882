"""The loss options and the BatchNorm2d options against torch 2.13: forward values and
gradients (torch autograd), for float32 and float64."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as TF  # noqa: E402

from convext import functional as F  # noqa: E402
from convext import losses  # noqa: E402
from convext.layers import BatchNorm2D  # noqa: E402

RNG = np.random.default_rng(77)
DTYPES = [np.float32, np.float64]


def _tol(dtype):
    return dict(rtol=2e-5, atol=2e-6) if dtype == np.float32 else dict(rtol=1e-11, atol=1e-13)


def _torch_loss(fn, x, *args, **kw):
    xt = torch.from_numpy(x.copy()).requires_grad_(True)
    out = fn(xt, *args, **kw)
    out.sum().backward()
    return out.detach().numpy(), xt.grad.numpy()


SHAPES = [((5, 4), (5,)), ((2, 4, 3), (2, 3)), ((2, 4, 3, 5), (2, 3, 5)), ((4,), ())]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("xshape, tshape", SHAPES)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("ignore_index", [-100, 2])
@pytest.mark.parametrize("smoothing", [0.0, 0.15, 1.0])
def test_cross_entropy_index_targets(
    dtype, xshape, tshape, reduction, weighted, ignore_index, smoothing
):
    C = xshape[0] if len(xshape) == 1 else xshape[1]
    x = RNG.standard_normal(xshape).astype(dtype)
    t = RNG.integers(0, C, size=tshape).astype(np.int64)
    if t.ndim:
        t.reshape(-1)[::4] = ignore_index
    w = RNG.uniform(0.2, 2, C).astype(dtype) if weighted else None
    loss, grad = F.cross_entropy(
        x, t, reduction, weight=w, ignore_index=ignore_index, label_smoothing=smoothing
    )
    tl, tg = _torch_loss(
        TF.cross_entropy,
        x,
        torch.from_numpy(t),
        weight=None if w is None else torch.from_numpy(w),
        ignore_index=ignore_index,
        reduction=reduction,
        label_smoothing=smoothing,
    )
    np.testing.assert_allclose(loss, tl, **_tol(dtype))
    np.testing.assert_allclose(grad, tg, **_tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("xshape", [s for s, _ in SHAPES])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("smoothing", [0.0, 0.4])
def test_cross_entropy_probability_targets(dtype, xshape, reduction, weighted, smoothing):
    C = xshape[0] if len(xshape) == 1 else xshape[1]
    x = RNG.standard_normal(xshape).astype(dtype)
    p = RNG.uniform(0, 1, xshape).astype(dtype)
    w = RNG.uniform(0.2, 2, C).astype(dtype) if weighted else None
    loss, grad = F.cross_entropy(x, p, reduction, weight=w, label_smoothing=smoothing)
    tl, tg = _torch_loss(
        TF.cross_entropy,
        x,
        torch.from_numpy(p),
        weight=None if w is None else torch.from_numpy(w),
        reduction=reduction,
        label_smoothing=smoothing,
    )
    np.testing.assert_allclose(loss, tl, **_tol(dtype))
    np.testing.assert_allclose(grad, tg, **_tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("xshape, tshape", SHAPES)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("ignore_index", [-100, 1])
def test_nll_loss(dtype, xshape, tshape, reduction, weighted, ignore_index):
    C = xshape[0] if len(xshape) == 1 else xshape[1]
    x = RNG.standard_normal(xshape).astype(dtype)
    t = RNG.integers(0, C, size=tshape).astype(np.int64)
    w = RNG.uniform(0.2, 2, C).astype(dtype) if weighted else None
    loss, grad = F.nll_loss(x, t, reduction, weight=w, ignore_index=ignore_index)
    tl, tg = _torch_loss(
        TF.nll_loss,
        x,
        torch.from_numpy(t),
        weight=None if w is None else torch.from_numpy(w),
        ignore_index=ignore_index,
        reduction=reduction,
    )
    np.testing.assert_allclose(loss, tl, **_tol(dtype), equal_nan=True)
    np.testing.assert_allclose(grad, tg, **_tol(dtype), equal_nan=True)


@pytest.mark.parametrize(
    "fn, tfn", [(F.cross_entropy, TF.cross_entropy), (F.nll_loss, TF.nll_loss)]
)
@pytest.mark.parametrize("weight", [None, np.array([1.0, 0.0, 2.0])])
def test_nothing_counts(fn, tfn, weight):
    """All targets ignored (or of weight 0): torch's NaN mean, and its gradient."""
    x = RNG.standard_normal((3, 3))
    t = np.array([1, 1, -100]) if weight is not None else np.full(3, -100)
    loss, grad = fn(x, t, weight=weight)
    tl, tg = _torch_loss(
        tfn, x, torch.from_numpy(t), weight=None if weight is None else torch.from_numpy(weight)
    )
    np.testing.assert_allclose(loss, tl, equal_nan=True)
    np.testing.assert_allclose(grad, tg, equal_nan=True)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("wshape", [None, (1,), (5,), (3, 5)])
@pytest.mark.parametrize("pwshape", [None, (5,), (3, 5)])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_bce_with_logits(dtype, wshape, pwshape, reduction):
    x = (RNG.standard_normal((3, 5)) * 4).astype(dtype)
    t = RNG.uniform(0, 1, (3, 5)).astype(dtype)
    w = None if wshape is None else RNG.uniform(0.2, 2, wshape).astype(dtype)
    pw = None if pwshape is None else RNG.uniform(0.2, 3, pwshape).astype(dtype)
    loss, grad = F.binary_cross_entropy_with_logits(x, t, reduction, weight=w, pos_weight=pw)
    tl, tg = _torch_loss(
        TF.binary_cross_entropy_with_logits,
        x,
        torch.from_numpy(t),
        weight=None if w is None else torch.from_numpy(w),
        pos_weight=None if pw is None else torch.from_numpy(pw),
        reduction=reduction,
    )
    np.testing.assert_allclose(loss, tl, **_tol(dtype))
    np.testing.assert_allclose(grad, tg, **_tol(dtype))


@pytest.mark.parametrize("wshape", [(4, 5), (5,), (1, 5)])
def test_bce_weight(wshape):
    x = RNG.uniform(0.02, 0.98, (4, 5))
    t = RNG.uniform(0, 1, (4, 5))
    w = RNG.uniform(0.2, 2, wshape)
    loss, grad = losses.BCELoss(w)(x, t)
    tl, tg = _torch_loss(
        TF.binary_cross_entropy, x, torch.from_numpy(t), weight=torch.from_numpy(w)
    )
    np.testing.assert_allclose(loss, tl, rtol=1e-11)
    np.testing.assert_allclose(grad, tg, rtol=1e-11)


def test_loss_objects_match_torch_modules():
    x = RNG.standard_normal((2, 3, 4, 4))
    t = RNG.integers(0, 3, (2, 4, 4))
    t[0, 0] = 1
    w = RNG.uniform(0.5, 1.5, 3)
    ours = losses.CrossEntropyLoss(weight=w, ignore_index=1, label_smoothing=0.1)
    theirs = torch.nn.CrossEntropyLoss(
        weight=torch.from_numpy(w), ignore_index=1, label_smoothing=0.1
    )
    loss, grad = ours(x, t)
    tl, tg = _torch_loss(theirs, x, torch.from_numpy(t))
    np.testing.assert_allclose(loss, tl, rtol=1e-11)
    np.testing.assert_allclose(grad, tg, rtol=1e-11)


@pytest.mark.parametrize("div", [-3, -1, 1, 7, 2**31])
def test_avg_pool_divisor_override(div):
    x = RNG.standard_normal((1, 2, 5, 5))
    xt = torch.from_numpy(x).requires_grad_(True)
    yt = TF.avg_pool2d(xt, 3, 2, 1, True, False, div)
    yt.sum().backward()
    y = F.avg_pool2d(x, 3, 2, 1, True, False, div)
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-12)
    gx = F.avg_pool2d_backward(np.ones_like(y), x.shape, 3, 2, 1, True, False, div)
    np.testing.assert_allclose(gx, xt.grad.numpy(), rtol=1e-12)


@pytest.mark.parametrize("div", [0, 2.0, True])
def test_avg_pool_divisor_override_refused_as_torch(div):
    x = np.zeros((1, 1, 4, 4))
    with pytest.raises((RuntimeError, TypeError)):
        TF.avg_pool2d(torch.from_numpy(x), 2, divisor_override=div)
    with pytest.raises((ValueError, TypeError), match="divisor_override"):
        F.avg_pool2d(x, 2, divisor_override=div)


# ---------------------------------------------------------------------------------------------
# BatchNorm2d options

BN_OPTIONS = [
    dict(),
    dict(momentum=None),
    dict(momentum=0.7, eps=1e-3),
    dict(affine=False),
    dict(track_running_stats=False),
    dict(affine=False, track_running_stats=False),
    dict(bias=False),
    dict(momentum=None, affine=False),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("opts", BN_OPTIONS)
def test_batchnorm2d_options(dtype, opts):
    """Three training steps then an eval step with backward, as torch: outputs, input and
    parameter gradients, buffers."""
    tdt = torch.float32 if dtype == np.float32 else torch.float64
    ours = BatchNorm2D(3, dtype=dtype, **opts)
    theirs = torch.nn.BatchNorm2d(3, dtype=tdt, **opts)
    if ours.affine:
        w = RNG.uniform(0.5, 1.5, 3).astype(dtype)
        ours._params["weight"][...] = w
        with torch.no_grad():
            theirs.weight.copy_(torch.from_numpy(w))
    for step, training in enumerate([True, True, True, False]):
        ours.train(training)
        theirs.train(training)
        x = (RNG.standard_normal((4, 3, 3, 2)) * (step + 1) + step).astype(dtype)
        xt = torch.from_numpy(x).requires_grad_(True)
        yt = theirs(xt)
        g = RNG.standard_normal(x.shape).astype(dtype)
        yt.backward(torch.from_numpy(g))
        y = ours.forward(x)
        gx = ours.backward(g)
        np.testing.assert_allclose(y, yt.detach().numpy(), **_tol(dtype))
        np.testing.assert_allclose(gx, xt.grad.numpy(), **_tol(dtype))
        sd = ours.state_dict()
        assert set(sd) == set(theirs.state_dict())
        for k, v in theirs.state_dict().items():
            np.testing.assert_allclose(sd[k], v.numpy(), **_tol(dtype), err_msg=k)
        for k, p in theirs.named_parameters():
            np.testing.assert_allclose(ours._grads[k], p.grad.numpy(), **_tol(dtype), err_msg=k)
    assert (
        repr(ours)
        .replace("BatchNorm2D", "BatchNorm2d")
        .endswith(
            repr(theirs).split("(", 1)[1]
            if dtype == np.float32
            else repr(theirs).split("(", 1)[1][:-1] + ", dtype=float64)"
        )
    )


@pytest.mark.parametrize("momentum", [0.1, None])
def test_batchnorm2d_empty_batch_in_training(momentum):
    """N = 0 in training mode: empty output, running statistics unchanged,
    num_batches_tracked counted, zero parameter gradients (torch 2.13)."""
    ours = BatchNorm2D(3, momentum=momentum)
    theirs = torch.nn.BatchNorm2d(3, momentum=momentum)
    x = np.zeros((0, 3, 4, 4), np.float32)
    xt = torch.from_numpy(x).requires_grad_(True)
    yt = theirs(xt)
    yt.sum().backward()
    y = ours.forward(x)
    gx = ours.backward(np.ones_like(y))
    assert y.shape == tuple(yt.shape) and gx.shape == tuple(xt.grad.shape)
    for k, v in theirs.state_dict().items():
        np.testing.assert_array_equal(ours.state_dict()[k], v.numpy(), err_msg=k)
    for k, p in theirs.named_parameters():
        np.testing.assert_array_equal(ours._grads[k], p.grad.numpy())
    rm, rv = np.zeros(3, np.float32), np.ones(3, np.float32)
    assert F.batch_norm(x, rm, rv, training=True).shape == x.shape
    np.testing.assert_array_equal(rm, 0)
    np.testing.assert_array_equal(rv, 1)


@pytest.mark.parametrize("ignore_index", [0, 5])
def test_ignore_index_with_probability_targets_refused_as_torch(ignore_index):
    x, p = RNG.standard_normal((2, 3)), RNG.uniform(0, 1, (2, 3))
    with pytest.raises(RuntimeError, match="ignore_index"):
        TF.cross_entropy(torch.from_numpy(x), torch.from_numpy(p), ignore_index=ignore_index)
    with pytest.raises(ValueError, match="ignore_index"):
        F.cross_entropy(x, p, ignore_index=ignore_index)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_smoothed_mean_over_zero_weight_is_nan_as_torch(dtype):
    """Label smoothing with 'mean' where every counted target has weight 0: torch divides the
    target term and the smoothing term by the weight sum each (0/0 + s/0: NaN); their sum
    divided once was an infinity. The gradient is NaN in both."""
    x = np.array([[1.0, 2.0, 3.0], [0.5, -1.0, 2.0]], dtype)
    t = np.array([0, 0])
    w = np.array([0.0, 1.0, 1.0], dtype)
    loss, grad = F.cross_entropy(x, t, weight=w, label_smoothing=0.3)
    xt = torch.tensor(x, requires_grad=True)
    lt = TF.cross_entropy(xt, torch.tensor(t), weight=torch.tensor(w), label_smoothing=0.3)
    lt.backward()
    assert np.isnan(loss) and np.isnan(lt.item())
    np.testing.assert_array_equal(np.isnan(grad), np.isnan(xt.grad.numpy()))
