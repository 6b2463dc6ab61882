"""The torch options of the class losses (weight, ignore_index, label_smoothing, K-dimensional
and unbatched input) and of binary_cross_entropy_with_logits (weight, pos_weight), against naive
loop oracles (tests/reference.py) with gradients checked by central differences of the oracle;
the loss objects; avg_pool2d's divisor_override values. No torch (the torch comparisons:
tests/parity/test_parity_loss_options.py)."""

import math

import numpy as np
import pytest

import reference as ref
from convext import functional as F
from convext import losses

RNG = np.random.default_rng(2015)
REDUCTIONS = ["mean", "sum", "none"]

# (input shape, target shape): batched (N, C), K-dimensional (N, C, d1, ..., dk), unbatched (C,)
SHAPES = [((4, 5), (4,)), ((2, 3, 4), (2, 4)), ((2, 3, 2, 3), (2, 2, 3)), ((3,), ())]


def _targets(tshape, C, ignore_index, rng=RNG):
    t = rng.integers(0, C, size=tshape)
    if t.ndim and t.size > 1 and ignore_index is not None:
        flat = t.reshape(-1)
        flat[::3] = ignore_index  # some positions ignored, the others counted
    return np.asarray(t, np.int64)


def _check(fn, kind, x, t, reduction, **opts):
    loss, grad = fn(x, t, reduction=reduction, **opts)
    expected = ref.class_loss_options(x, t, kind, reduction=reduction, **opts)
    np.testing.assert_allclose(loss, expected, rtol=1e-10, atol=1e-12)
    assert np.shape(loss) == np.shape(expected)
    assert grad.shape == x.shape and grad.dtype == x.dtype
    if reduction == "mean" and math.isnan(expected):  # every target ignored (see below)
        np.testing.assert_array_equal(grad, 0)
        return
    num = ref.numerical_grad(
        lambda v: np.sum(ref.class_loss_options(v, t, kind, reduction=reduction, **opts)), x
    )
    np.testing.assert_allclose(grad, num, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("xshape, tshape", SHAPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("ignore_index", [-100, 1])
@pytest.mark.parametrize("smoothing", [0.0, 0.3])
def test_cross_entropy_index_targets(xshape, tshape, reduction, weighted, ignore_index, smoothing):
    C = xshape[0] if len(xshape) == 1 else xshape[1]
    x = RNG.standard_normal(xshape)
    t = _targets(tshape, C, ignore_index)
    w = RNG.uniform(0.2, 2.0, C) if weighted else None
    _check(
        F.cross_entropy,
        "ce",
        x,
        t,
        reduction,
        weight=w,
        ignore_index=ignore_index,
        label_smoothing=smoothing,
    )


@pytest.mark.parametrize("xshape", [s for s, _ in SHAPES])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("smoothing", [0.0, 0.25])
def test_cross_entropy_probability_targets(xshape, reduction, weighted, smoothing):
    C = xshape[0] if len(xshape) == 1 else xshape[1]
    x = RNG.standard_normal(xshape)
    p = RNG.uniform(0, 1, xshape)
    p = p / p.sum(axis=0 if len(xshape) == 1 else 1, keepdims=True)
    w = RNG.uniform(0.2, 2.0, C) if weighted else None
    # a negative ignore_index does nothing for probability targets (torch)
    _check(
        F.cross_entropy, "ce", x, p, reduction, weight=w, ignore_index=-1, label_smoothing=smoothing
    )


@pytest.mark.parametrize("xshape, tshape", SHAPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("ignore_index", [-100, 0])
def test_nll_loss_options(xshape, tshape, reduction, weighted, ignore_index):
    C = xshape[0] if len(xshape) == 1 else xshape[1]
    x = RNG.standard_normal(xshape)
    t = _targets(tshape, C, ignore_index)
    w = RNG.uniform(0.2, 2.0, C) if weighted else None
    _check(F.nll_loss, "nll", x, t, reduction, weight=w, ignore_index=ignore_index)


@pytest.mark.parametrize("fn", [F.cross_entropy, F.nll_loss])
def test_everything_ignored(fn):
    """Nothing counts: 'mean' is 0/0 = NaN (torch), 'sum' 0, the gradient 0."""
    x = RNG.standard_normal((3, 4, 2))
    t = np.full((3, 2), 7, np.int64)
    loss, grad = fn(x, t, ignore_index=7, weight=np.ones(4))
    assert math.isnan(loss)
    np.testing.assert_array_equal(grad, 0)
    loss, grad = fn(x, t, reduction="sum", ignore_index=7)
    assert loss == 0
    np.testing.assert_array_equal(grad, 0)
    loss, grad = fn(x, t, reduction="none", ignore_index=7)
    np.testing.assert_array_equal(loss, np.zeros((3, 2)))


def test_weighted_mean_divides_by_the_target_weights():
    """'mean' with weights is the weighted average: sum(w[t] * l) / sum(w[t]) (torch), which for
    one counted target is that target's unweighted loss."""
    x = RNG.standard_normal((3, 4))
    t = np.array([2, -100, -100])
    w = np.array([1.0, 2.0, 5.0, 3.0])
    loss, _ = F.cross_entropy(x, t, weight=w)
    single, _ = F.cross_entropy(x[:1], t[:1])
    np.testing.assert_allclose(loss, single, rtol=1e-12)


def test_k_dim_equals_flattened_positions():
    """A (N, C, H, W) segmentation map is the (N*H*W, C) problem of its pixels."""
    x = RNG.standard_normal((2, 3, 4, 5))
    t = _targets((2, 4, 5), 3, -100)
    w = RNG.uniform(0.5, 1.5, 3)
    loss, grad = F.cross_entropy(x, t, weight=w, label_smoothing=0.1)
    flat_x = np.moveaxis(x, 1, -1).reshape(-1, 3)
    loss2, grad2 = F.cross_entropy(flat_x, t.reshape(-1), weight=w, label_smoothing=0.1)
    np.testing.assert_allclose(loss, loss2, rtol=1e-12)
    np.testing.assert_allclose(grad, np.moveaxis(grad2.reshape(2, 4, 5, 3), -1, 1), rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_preserved(dtype):
    x = RNG.standard_normal((2, 3, 4)).astype(dtype)
    t = _targets((2, 4), 3, -100)
    loss, grad = F.cross_entropy(x, t, weight=np.ones(3, dtype), label_smoothing=0.1)
    assert np.asarray(loss).dtype == dtype and grad.dtype == dtype
    expected = ref.class_loss_options(x, t, "ce", weight=np.ones(3), label_smoothing=0.1)
    np.testing.assert_allclose(loss, expected, rtol=1e-5 if dtype == np.float32 else 1e-12)


@pytest.mark.parametrize("wshape", [None, (1,), (5,), (1, 5), (4, 5)])
@pytest.mark.parametrize("pwshape", [None, (5,), (1, 5), (4, 5)])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_bce_with_logits_weights(wshape, pwshape, reduction):
    x = RNG.standard_normal((4, 5)) * 3
    t = RNG.uniform(0, 1, (4, 5))
    w = None if wshape is None else RNG.uniform(0.2, 2, wshape)
    pw = None if pwshape is None else RNG.uniform(0.2, 3, pwshape)
    loss, grad = F.binary_cross_entropy_with_logits(x, t, reduction, weight=w, pos_weight=pw)
    expected = ref.bce_with_logits_options(x, t, w, pw, reduction)
    np.testing.assert_allclose(loss, expected, rtol=1e-10, atol=1e-12)
    num = ref.numerical_grad(
        lambda v: np.sum(ref.bce_with_logits_options(v, t, w, pw, reduction)), x
    )
    np.testing.assert_allclose(grad, num, rtol=1e-6, atol=1e-8)


def test_bce_with_logits_pos_weight_is_stable():
    """Logits of +-1000 stay finite with pos_weight (log_sigmoid from the shifted softplus)."""
    x = np.array([[-1000.0, 1000.0, 0.0]])
    t = np.array([[1.0, 0.0, 1.0]])
    loss, grad = F.binary_cross_entropy_with_logits(x, t, "none", pos_weight=np.array([2.0]))
    np.testing.assert_allclose(loss, [[2000.0, 1000.0, 2 * math.log(2)]], rtol=1e-12)
    np.testing.assert_allclose(grad, [[-2.0, 1.0, -1.0]], rtol=1e-12)


# ---------------------------------------------------------------------------------------------
# the loss objects


def test_loss_objects_carry_the_options():
    x = RNG.standard_normal((2, 3, 4))
    t = _targets((2, 4), 3, 2)
    w = RNG.uniform(0.5, 1.5, 3)
    obj = losses.CrossEntropyLoss(weight=w, ignore_index=2, reduction="sum", label_smoothing=0.2)
    for a, b in zip(
        obj(x, t),
        F.cross_entropy(x, t, "sum", weight=w, ignore_index=2, label_smoothing=0.2),
        strict=False,
    ):
        np.testing.assert_array_equal(a, b)
    assert "ignore_index=2" in repr(obj) and "label_smoothing=0.2" in repr(obj)
    assert repr(losses.CrossEntropyLoss()) == "CrossEntropyLoss()"
    nll = losses.NLLLoss(w, 0, "none")
    for a, b in zip(nll(x, t), F.nll_loss(x, t, "none", weight=w, ignore_index=0), strict=False):
        np.testing.assert_array_equal(a, b)
    p = RNG.uniform(0.05, 0.95, (4, 5))
    tb = RNG.uniform(0, 1, (4, 5))
    bw = RNG.uniform(0.5, 1.5, (5,))
    for a, b in zip(losses.BCELoss(bw)(p, tb), F.binary_cross_entropy(p, tb, bw), strict=False):
        np.testing.assert_array_equal(a, b)
    bl = losses.BCEWithLogitsLoss(weight=bw, pos_weight=2 * bw)
    for a, b in zip(
        bl(p, tb),
        F.binary_cross_entropy_with_logits(p, tb, weight=bw, pos_weight=2 * bw),
        strict=False,
    ):
        np.testing.assert_array_equal(a, b)
    assert isinstance(losses.get("bce"), losses.BCELoss)


def test_loss_object_errors_name_the_argument():
    with pytest.raises(ValueError, match="reduction"):
        losses.CrossEntropyLoss(reduction="avg")
    with pytest.raises(ValueError, match="label_smoothing"):
        losses.CrossEntropyLoss(label_smoothing=2.0)(np.zeros((2, 3)), np.zeros(2, np.int64))


# ---------------------------------------------------------------------------------------------
# validation: every option, the error naming it

X = np.zeros((2, 3, 4))
T = np.zeros((2, 4), np.int64)


@pytest.mark.parametrize(
    "call, exc, match",
    [
        (
            lambda: F.cross_entropy(X, T, weight=np.ones(4)),
            ValueError,
            r"weight must have shape \(3,\)",
        ),
        (lambda: F.cross_entropy(X, T, weight=np.ones((1, 3))), ValueError, "weight"),
        (lambda: F.cross_entropy(X, T, weight=np.ones(3, np.float32)), TypeError, "weight"),
        (lambda: F.cross_entropy(X, T, weight="abc"), TypeError, "weight"),
        (lambda: F.cross_entropy(X, T, ignore_index=1.5), TypeError, "ignore_index"),
        (lambda: F.cross_entropy(X, T, ignore_index=True), TypeError, "ignore_index"),
        (lambda: F.cross_entropy(X, T, label_smoothing=-0.1), ValueError, "label_smoothing"),
        (lambda: F.cross_entropy(X, T, label_smoothing=1.01), ValueError, "label_smoothing"),
        (lambda: F.cross_entropy(X, T, label_smoothing="0.1"), TypeError, "label_smoothing"),
        (lambda: F.cross_entropy(X, T, label_smoothing=math.nan), ValueError, "label_smoothing"),
        (
            lambda: F.cross_entropy(X, np.zeros((2, 3), np.int64)),
            ValueError,
            r"target must have shape \(2, 4\)",
        ),
        (lambda: F.cross_entropy(X, np.full((2, 4), 3)), ValueError, "class index 3"),
        (lambda: F.cross_entropy(X, np.full((2, 4), -1)), ValueError, "class index -1"),
        # an ignore_index other than the target's value does not excuse it
        (
            lambda: F.cross_entropy(X, np.full((2, 4), -100), ignore_index=-1),
            ValueError,
            "class index -100",
        ),
        (lambda: F.cross_entropy(X, np.zeros((2, 4))), ValueError, "probability targets"),
        (
            lambda: F.cross_entropy(X, np.zeros((2, 3, 4)), ignore_index=0),
            ValueError,
            "ignore_index",
        ),
        (lambda: F.nll_loss(X, T, weight=np.ones(2)), ValueError, "weight"),
        (lambda: F.nll_loss(X, T, ignore_index="a"), TypeError, "ignore_index"),
        (
            lambda: F.nll_loss(np.zeros(3), np.array([1])),
            ValueError,
            r"target must have shape \(\)",
        ),
        (lambda: F.nll_loss(np.zeros(()), np.array(1)), ValueError, "log_probs"),
        (
            lambda: F.binary_cross_entropy_with_logits(
                np.zeros((4, 5)), np.zeros((4, 5)), pos_weight=np.ones(4)
            ),
            ValueError,
            "pos_weight of shape",
        ),
        (
            lambda: F.binary_cross_entropy_with_logits(
                np.zeros((4, 5)), np.zeros((4, 5)), weight=np.ones((2, 4, 5))
            ),
            ValueError,
            "weight of shape",
        ),
        (
            lambda: F.binary_cross_entropy_with_logits(
                np.zeros((4, 5)), np.zeros((4, 5)), pos_weight=np.ones(5, np.float32)
            ),
            TypeError,
            "pos_weight",
        ),
        (
            lambda: F.binary_cross_entropy(np.zeros((4, 5)), np.zeros((4, 5)), np.ones(4)),
            ValueError,
            "weight of shape",
        ),
    ],
)
def test_option_errors(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


# ---------------------------------------------------------------------------------------------
# avg_pool2d: every divisor_override torch accepts (any non-zero int, within the geometry bound)


@pytest.mark.parametrize("div", [-3, -1, 1, 7, 2**31, 2**40, -(2**40)])
def test_avg_pool_divisor_override_values(div):
    x = RNG.standard_normal((1, 2, 5, 5))
    y = F.avg_pool2d(x, 2, 2, 1, True, True, div)
    np.testing.assert_allclose(y, ref.avg_pool2d(x, 2, 2, 1, True, True, div), rtol=1e-12)
    gy = RNG.standard_normal(y.shape)
    np.testing.assert_allclose(
        F.avg_pool2d_backward(gy, x.shape, 2, 2, 1, True, True, div),
        ref.avg_pool2d_backward(gy, x.shape, 2, 2, 1, True, True, div),
        rtol=1e-12,
    )


@pytest.mark.parametrize(
    "div, exc",
    [
        (0, ValueError),
        (2.0, TypeError),
        (2.5, TypeError),
        (True, TypeError),
        ("2", TypeError),
        (2**40 + 1, ValueError),
        (-(2**40) - 1, ValueError),
    ],
)
def test_avg_pool_divisor_override_refused(div, exc):
    x = np.zeros((1, 1, 4, 4))
    with pytest.raises(exc, match="divisor_override"):
        F.avg_pool2d(x, 2, divisor_override=div)
    with pytest.raises(exc, match="divisor_override"):
        F.avg_pool2d_backward(np.zeros((1, 1, 2, 2)), x.shape, 2, divisor_override=div)


def test_avg_pool_one_element_sequences():
    """torch's pooling sequences: one element stands for both sides, an empty stride for the
    default."""
    x = RNG.standard_normal((1, 1, 6, 6))
    np.testing.assert_array_equal(F.avg_pool2d(x, (2,), (), (1,)), F.avg_pool2d(x, 2, 2, 1))
