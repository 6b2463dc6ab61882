"""Activations: forward and backward against the naive oracle, central differences and stability
cases (the PyTorch comparisons: tests/parity/test_parity_activations.py)."""

import warnings

import numpy as np
import pytest

import reference as ref
from cases import activation_input
from convext import functional as F

RNG = np.random.default_rng(7)

# name, convext forward, convext backward (grad, x, y), oracle forward, oracle backward (grad, x);
# convext's backward takes x or y
ACTS = [
    ("relu", F.relu, lambda g, x, y: F.relu_backward(g, x), ref.relu, ref.relu_backward),
    (
        "leaky_relu",
        lambda x: F.leaky_relu(x, 0.2),
        lambda g, x, y: F.leaky_relu_backward(g, x, 0.2),
        lambda x: ref.leaky_relu(x, 0.2),
        lambda g, x: ref.leaky_relu_backward(g, x, 0.2),
    ),
    (
        "leaky_relu_default",
        F.leaky_relu,
        lambda g, x, y: F.leaky_relu_backward(g, x),
        ref.leaky_relu,
        ref.leaky_relu_backward,
    ),
    (
        "elu",
        lambda x: F.elu(x, 1.5),
        lambda g, x, y: F.elu_backward(g, x, 1.5),
        lambda x: ref.elu(x, 1.5),
        lambda g, x: ref.elu_backward(g, x, 1.5),
    ),
    (
        "sigmoid",
        F.sigmoid,
        lambda g, x, y: F.sigmoid_backward(g, y),
        ref.sigmoid,
        ref.sigmoid_backward,
    ),
    ("tanh", F.tanh, lambda g, x, y: F.tanh_backward(g, y), ref.tanh, ref.tanh_backward),
    (
        "softplus",
        F.softplus,
        lambda g, x, y: F.softplus_backward(g, x),
        ref.softplus,
        ref.softplus_backward,
    ),
    (
        "softplus_beta",
        lambda x: F.softplus(x, 2.0, 3.0),
        lambda g, x, y: F.softplus_backward(g, x, 2.0, 3.0),
        lambda x: ref.softplus(x, 2.0, 3.0),
        lambda g, x: ref.softplus_backward(g, x, 2.0, 3.0),
    ),
    (
        "softmax",
        F.softmax,
        lambda g, x, y: F.softmax_backward(g, y),
        ref.softmax,
        ref.softmax_backward,
    ),
    (
        "softmax_axis0",
        lambda x: F.softmax(x, 0),
        lambda g, x, y: F.softmax_backward(g, y, 0),
        lambda x: ref.softmax(x, 0),
        lambda g, x: ref.softmax_backward(g, x, 0),
    ),
    (
        "log_softmax",
        F.log_softmax,
        lambda g, x, y: F.log_softmax_backward(g, y),
        ref.log_softmax,
        ref.log_softmax_backward,
    ),
    (
        "log_softmax_axis1",
        lambda x: F.log_softmax(x, 1),
        lambda g, x, y: F.log_softmax_backward(g, y, 1),
        lambda x: ref.log_softmax(x, 1),
        lambda g, x: ref.log_softmax_backward(g, x, 1),
    ),
]
IDS = [a[0] for a in ACTS]


@pytest.mark.parametrize("name,fwd,bwd,rfwd,rbwd", ACTS, ids=IDS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_vs_reference(name, fwd, bwd, rfwd, rbwd, dtype):
    x = activation_input((3, 4, 5), dtype)
    g = RNG.standard_normal(x.shape).astype(dtype)
    y = fwd(x)
    assert y.dtype == dtype and y.shape == x.shape
    gx = bwd(g, x, y)
    assert gx.dtype == dtype and gx.shape == x.shape
    ry, rg = rfwd(x), rbwd(g, x)  # float64 oracle of the (rounded) inputs
    if dtype == np.float64:
        np.testing.assert_allclose(y, ry, rtol=1e-10, atol=1e-15)
        np.testing.assert_allclose(gx, rg, rtol=1e-10, atol=1e-15)
    else:
        for out, r in ((y, ry), (gx, rg)):
            assert np.max(np.abs(out - r)) <= 1e-5 * max(1.0, np.max(np.abs(r)))


@pytest.mark.parametrize("name,fwd,bwd,rfwd,rbwd", ACTS, ids=IDS)
def test_gradcheck(name, fwd, bwd, rfwd, rbwd):
    x = activation_input((2, 3, 4), np.float64)
    g = RNG.standard_normal(x.shape)
    num = ref.numerical_grad(lambda z: np.sum(fwd(z) * g), x)
    np.testing.assert_allclose(bwd(g, x, fwd(x)), num, atol=1e-5, rtol=1e-3)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_stability_no_warning_no_nan(dtype):
    x = np.array([-1000, -100, -30, -1, 0, 1, 30, 100, 1000], dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(all="raise"):
            s = F.sigmoid(x)
            sp = F.softplus(x)
            spb = F.softplus(x, beta=1.0, threshold=1e6)  # no shortcut: still finite
            e = F.elu(x)
            gs = F.softplus_backward(np.ones_like(x), x)
            ge = F.elu_backward(np.ones_like(x), x)
    for a in (s, sp, spb, e, gs, ge):
        assert a.dtype == dtype and not np.any(np.isnan(a))
    assert s[0] == 0 and s[-1] == 1 and s[4] == 0.5
    assert sp[0] == 0 and sp[-1] == 1000 and spb[-1] == 1000
    for out, r in ((sp, ref.softplus(x)), (s, ref.sigmoid(x))):
        assert np.max(np.abs(out - r)) <= 1e-5 * max(1.0, np.max(np.abs(r)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_rows_sum_to_one(dtype):
    x = (RNG.standard_normal((50, 37)) * 300).astype(dtype)
    x[0] = [1000] * 18 + [-1000] * 19
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = F.softmax(x)
        ly = F.log_softmax(x)
    assert np.all(np.abs(y.sum(axis=1) - 1) <= 1e-6)
    assert np.all(np.isfinite(ly))
    np.testing.assert_allclose(ly[0, :18], -np.log(18), rtol=1e-6)
    np.testing.assert_allclose(ly[0, 18:], -2000 - np.log(18), rtol=1e-6)
    np.testing.assert_allclose(y, ref.softmax(x), atol=1e-6)


def test_relu_family_at_zero_and_nan():
    x = np.array([-1.0, 0.0, 1.0, np.nan])
    np.testing.assert_array_equal(F.relu(x)[:3], [0, 0, 1])
    assert np.isnan(F.relu(x)[3])
    np.testing.assert_array_equal(F.elu_backward(np.ones(4), x), ref.elu_backward(np.ones(4), x))
    expect = ref.relu_backward(np.ones(4), x)
    np.testing.assert_array_equal(F.relu_backward(np.ones(4), x), expect)  # NaN passes grad


def test_shapes_and_layouts():
    x = RNG.standard_normal((4, 6))
    for fwd in (F.relu, F.sigmoid, F.tanh, F.softplus, F.elu, F.leaky_relu):
        assert fwd(np.zeros((0, 3))).shape == (0, 3)
        assert fwd(np.float64(0.5)).shape == ()
        np.testing.assert_array_equal(fwd(x.T), fwd(np.ascontiguousarray(x.T)))
    assert F.softmax(np.zeros((3, 0))).shape == (3, 0)
    assert F.softmax(np.zeros((0, 3))).shape == (0, 3)
    np.testing.assert_allclose(F.softmax(np.float64(3.0)), 1.0)
    np.testing.assert_array_equal(F.softmax(x[:, ::-1]), F.softmax(x.copy()[:, ::-1]))
    np.testing.assert_allclose(F.softmax(x, 0), F.softmax(x.T, 1).T, rtol=1e-15)


def test_errors():
    x = np.zeros((2, 3))
    with pytest.raises(TypeError, match="x must have dtype"):
        F.relu(np.zeros(3, np.int64))
    with pytest.raises(ValueError, match=r"grad_out must have the shape of x \(2, 3\)"):
        F.relu_backward(np.zeros((3, 2)), x)
    with pytest.raises(TypeError, match="dtype"):
        F.sigmoid_backward(np.zeros((2, 3), np.float32), x)
    with pytest.raises(ValueError, match="axis 2"):
        F.softmax(x, 2)
    with pytest.raises(ValueError, match="axis -3"):
        F.log_softmax_backward(x, x, -3)
    with pytest.raises(TypeError, match="negative_slope"):
        F.leaky_relu(x, "0.1")
    with pytest.raises(TypeError, match="axis"):
        F.softmax(x, 1.0)


def test_hyper_parameters_must_fit_the_dtype():
    """A slope, alpha or beta that float32 cannot hold (it would become an infinity) is a
    ValueError naming it on float32 input, as torch refuses it; float64 holds it."""
    x = np.array([-1.0, 2.0])
    for fn, name in [
        (lambda v, a: F.leaky_relu(a, v), "negative_slope"),
        (lambda v, a: F.elu(a, v), "alpha"),
        (lambda v, a: F.softplus(a, beta=v), "beta"),
        (lambda v, a: F.softplus_backward(a, a, threshold=v), "threshold"),
    ]:
        with pytest.raises(ValueError, match=rf"{name} must be within the range of float32"):
            fn(1e300, x.astype(np.float32))
        assert fn(1e300, x).dtype == np.float64


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_large_parallel_path(dtype):
    x = RNG.standard_normal((3, 7, 81, 79)).astype(dtype)[:, :, ::-1]  # > 2**16, non-contiguous
    x[0, 0, 0, :3] = [np.nan, -0.0, 0.0]
    np.testing.assert_array_equal(F.relu(x), ref.relu(x).astype(dtype))
