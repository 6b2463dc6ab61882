"""convext.functional's CNN ops against naive loops (tests/reference_cnn.py) and central finite
differences; layouts, errors and thread-count determinism. No torch here (see
tests/parity/test_parity_cnn_ops.py)."""

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import convext
import reference_cnn as ref
from convext import functional as K
from convext._config import SERIAL_WORK

DTYPES = (np.float32, np.float64)


def _close(out, want, dtype):
    """float64: rtol 1e-10; float32: max|out - ref| <= 1e-5 * max(1, max|ref|)."""
    out = np.asarray(out, np.float64)
    want = np.asarray(want, np.float64)
    assert out.shape == want.shape
    if dtype == np.float64:
        np.testing.assert_allclose(out, want, rtol=1e-10, atol=1e-12)
    else:
        scale = max(1.0, float(np.max(np.abs(want))) if want.size else 1.0)
        assert float(np.max(np.abs(out - want), initial=0.0)) <= 1e-5 * scale


def _fd(f, a, eps=1e-6):
    """Central differences of the scalar f() w.r.t. every element of the float64 array a."""
    g = np.zeros_like(a)
    flat, gf = a.reshape(-1), g.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        hi = f()
        flat[i] = old - eps
        lo = f()
        flat[i] = old
        gf[i] = (hi - lo) / (2 * eps)
    return g


def _gradcheck(analytic, numeric):
    np.testing.assert_allclose(analytic, numeric, atol=1e-5, rtol=1e-3)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def _threads_equal(fn):
    """fn() with 1 and with 2 threads: bitwise identical results."""
    old = convext.get_num_threads()
    try:
        convext.set_num_threads(1)
        a = fn()
        convext.set_num_threads(2)
        b = fn()
    finally:
        convext.set_num_threads(old)
    a = a if isinstance(a, tuple) else (a,)
    b = b if isinstance(b, tuple) else (b,)
    for u, v in zip(a, b, strict=True):
        if u is not None:
            assert u.tobytes() == v.tobytes()


# ---------------------------------------------------------------------------------------------
# batch_norm


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(5, 3), (4, 3, 7), (3, 4, 5, 6), (2, 3, 2, 3, 4)])
@pytest.mark.parametrize("training", [False, True])
@pytest.mark.parametrize("affine", [False, True])
def test_batch_norm_matches_reference(rng, dtype, shape, training, affine):
    C = shape[1]
    x = (rng.standard_normal(shape) * 3 + 1).astype(dtype)
    rm = rng.standard_normal(C).astype(dtype)
    rv = (rng.random(C) + 0.5).astype(dtype)
    w = rng.standard_normal(C).astype(dtype) if affine else None
    b = rng.standard_normal(C).astype(dtype) if affine else None
    want, want_rm, want_rv = ref.batch_norm(x, rm, rv, w, b, training, 0.3, 1e-3)
    rm1, rv1 = rm.copy(), rv.copy()
    y = K.batch_norm(x, rm1, rv1, w, b, training=training, momentum=0.3, eps=1e-3)
    assert y.dtype == dtype and y.shape == shape
    _close(y, want, dtype)
    _close(rm1, want_rm, dtype)
    _close(rv1, want_rv, dtype)


def test_batch_norm_training_without_running_stats(rng):
    x = rng.standard_normal((4, 3, 5, 5))
    want, _, _ = ref.batch_norm(x, None, None, None, None, True, 0.1, 1e-5)
    _close(K.batch_norm(x, None, None, training=True), want, np.float64)


def test_batch_norm_return_stats(rng):
    x = rng.standard_normal((4, 3, 5, 5))
    rm, rv = rng.standard_normal(3), rng.random(3) + 0.5
    y, mean, invstd = K.batch_norm(x, rm, rv, return_stats=True)
    np.testing.assert_array_equal(mean, rm)
    _close(invstd, 1 / np.sqrt(rv + 1e-5), np.float64)
    y, mean, invstd = K.batch_norm(x, None, None, training=True, return_stats=True)
    _close(mean, x.mean(axis=(0, 2, 3)), np.float64)
    _close(invstd, 1 / np.sqrt(x.var(axis=(0, 2, 3)) + 1e-5), np.float64)


@pytest.mark.parametrize("training", [False, True])
@pytest.mark.parametrize("affine", [False, True])
def test_batch_norm_backward_finite_differences(rng, training, affine):
    shape = (3, 2, 3, 4)
    x = rng.standard_normal(shape)
    rm, rv = rng.standard_normal(2), rng.random(2) + 0.5
    w = rng.standard_normal(2) if affine else None
    b = rng.standard_normal(2) if affine else None
    g = rng.standard_normal(shape)

    def loss():
        return float(np.sum(K.batch_norm(x, rm.copy(), rv.copy(), w, b, training=training) * g))

    _, mean, invstd = K.batch_norm(
        x, rm.copy(), rv.copy(), w, b, training=training, return_stats=True
    )
    gx, gw, gb = K.batch_norm_backward(g, x, mean, invstd, w, training=training)
    _gradcheck(gx, _fd(loss, x))
    if affine:
        _gradcheck(gw, _fd(loss, w))
        _gradcheck(gb, _fd(loss, b))
    else:
        assert gw is None and gb is None


def test_batch_norm_backward_needs_flags(rng):
    x = rng.standard_normal((3, 2, 4))
    w = rng.standard_normal(2)
    _, m, s = K.batch_norm(x, None, None, w, training=True, return_stats=True)
    g = rng.standard_normal(x.shape)
    full = K.batch_norm_backward(g, x, m, s, w, training=True)
    only_x = K.batch_norm_backward(
        g, x, m, s, w, training=True, needs_weight_grad=False, needs_bias_grad=False
    )
    assert only_x[1] is None and only_x[2] is None
    np.testing.assert_array_equal(only_x[0], full[0])
    only_w = K.batch_norm_backward(g, x, m, s, w, training=True, needs_input_grad=False)
    assert only_w[0] is None
    np.testing.assert_array_equal(only_w[1], full[1])


@pytest.mark.parametrize("dtype", DTYPES)
def test_batch_norm_backward_float32_vs_float64(rng, dtype):
    shape = (4, 3, 5, 6)
    x64, g64 = rng.standard_normal(shape), rng.standard_normal(shape)
    w64 = rng.standard_normal(3)
    _, m, s = K.batch_norm(x64, None, None, w64, training=True, return_stats=True)
    want = K.batch_norm_backward(g64, x64, m, s, w64, training=True)
    x, g, w = x64.astype(dtype), g64.astype(dtype), w64.astype(dtype)
    _, m, s = K.batch_norm(x, None, None, w, training=True, return_stats=True)
    got = K.batch_norm_backward(g, x, m, s, w, training=True)
    for a, b in zip(got, want, strict=True):
        assert a.dtype == dtype
        tol = 1e-12 if dtype == np.float64 else 2e-5
        assert np.max(np.abs(a - b)) <= tol * max(1.0, np.max(np.abs(b)))


def test_batch_norm_eval_independent_of_batch_and_threads(rng):
    x = rng.standard_normal((8, 8, 32, 32)).astype(np.float32)
    rm = rng.standard_normal(8).astype(np.float32)
    rv = (rng.random(8) + 0.5).astype(np.float32)
    w, b = rng.standard_normal(8).astype(np.float32), rng.standard_normal(8).astype(np.float32)
    full = K.batch_norm(x, rm, rv, w, b)
    assert full[3:4].tobytes() == K.batch_norm(x[3:4], rm, rv, w, b).tobytes()
    _threads_equal(lambda: K.batch_norm(x, rm, rv, w, b))
    _threads_equal(
        lambda: K.batch_norm(x, rm.copy(), rv.copy(), w, b, training=True, return_stats=True)
    )
    g = rng.standard_normal(x.shape).astype(np.float32)
    _, m, s = K.batch_norm(x, None, None, w, b, training=True, return_stats=True)
    _threads_equal(lambda: K.batch_norm_backward(g, x, m, s, w, training=True))


def test_batch_norm_layouts(rng):
    base = rng.standard_normal((6, 3, 8, 10))
    rm, rv = rng.standard_normal(3), rng.random(3) + 0.5
    for x in (base[::2], base.transpose(0, 1, 3, 2), np.asfortranarray(base), base[:, :, ::-1]):
        want = K.batch_norm(np.ascontiguousarray(x), rm, rv, training=False)
        ro = x.copy()
        ro.flags.writeable = False
        np.testing.assert_array_equal(K.batch_norm(x, rm, rv), want)
        np.testing.assert_array_equal(K.batch_norm(ro, rm, rv), want)


def test_batch_norm_errors(rng):
    x = rng.standard_normal((2, 3, 4, 4))
    rm, rv = np.zeros(3), np.ones(3)
    with pytest.raises(ValueError, match="running_mean"):
        K.batch_norm(x, np.zeros(4), rv)
    with pytest.raises(TypeError, match="running_var"):
        K.batch_norm(x, rm, np.ones(3, np.float32))
    with pytest.raises(ValueError, match="eval mode"):
        K.batch_norm(x, None, None)
    with pytest.raises(ValueError, match="both"):
        K.batch_norm(x, rm, None, training=True)
    with pytest.raises(ValueError, match="more than 1 value"):
        K.batch_norm(x[:1, :, :1, :1], rm, rv, training=True)
    with pytest.raises(ValueError, match="eps"):
        K.batch_norm(x, rm, rv, eps=0)
    with pytest.raises(TypeError, match="training"):
        K.batch_norm(x, rm, rv, training="yes")
    with pytest.raises(TypeError, match="momentum"):
        K.batch_norm(x, rm, rv, momentum="0.1")
    with pytest.raises(ValueError, match="weight"):
        K.batch_norm(x, rm, rv, weight=np.ones(2))
    with pytest.raises(ValueError, match="x must be"):
        K.batch_norm(np.zeros(3), rm, rv)
    ro = np.zeros(3)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="running_mean"):
        K.batch_norm(x, ro, rv.copy(), training=True)
    with pytest.raises(TypeError, match="running_mean"):
        K.batch_norm(x, [0.0, 0.0, 0.0], rv.copy(), training=True)
    rv_before = rv.copy()
    with pytest.raises(ValueError):
        K.batch_norm(x, ro, rv, training=True)
    np.testing.assert_array_equal(rv, rv_before)  # nothing updated on failure
    _, m, s = K.batch_norm(x, rm, rv, return_stats=True)
    with pytest.raises(ValueError, match="grad_out"):
        K.batch_norm_backward(np.zeros((2, 3, 4, 5)), x, m, s)
    with pytest.raises(ValueError, match="invstd"):
        K.batch_norm_backward(np.zeros_like(x), x, m, s[:2])
    with pytest.raises(TypeError, match="grad_out"):
        K.batch_norm_backward(np.zeros_like(x, np.float32), x, m, s)


def test_batch_norm_out(rng):
    base = rng.standard_normal((5, 3, 4, 4))
    rm, rv = rng.standard_normal(3), rng.random(3) + 0.5
    want = K.batch_norm(base, rm, rv)
    out = np.full_like(base, np.nan)
    assert K.batch_norm(base, rm, rv, out=out) is out
    np.testing.assert_array_equal(out, want)
    x = base.copy()
    assert K.batch_norm(x, rm, rv, out=x) is x  # in place
    np.testing.assert_array_equal(x, want)
    x = base.copy()
    big = np.full((7, 3, 4, 4), np.nan)
    big[:5] = base
    K.batch_norm(big[:5], rm, rv, out=big[1:6])  # overlapping, shifted: still correct
    np.testing.assert_array_equal(big[1:6], want)
    assert np.isnan(big[6]).all()
    guard = np.full((5, 3, 4, 8), np.nan)
    K.batch_norm(base, rm, rv, out=guard[..., ::2])
    np.testing.assert_array_equal(guard[..., ::2], want)
    assert np.isnan(guard[..., 1::2]).all()
    out = np.full_like(base, np.nan)
    with pytest.raises(ValueError, match="out"):
        K.batch_norm(base, rm, rv, out=out[:2])
    with pytest.raises(TypeError, match="out"):
        K.batch_norm(base, rm, rv, out=out.astype(np.float32))
    with pytest.raises(ValueError, match="running_mean"):
        K.batch_norm(base, rm[:2], rv, out=out)
    assert np.isnan(out).all()  # nothing written on failure


def test_batch_norm_empty_batch_eval(rng):
    x = np.zeros((0, 3, 4, 4))
    y = K.batch_norm(x, np.zeros(3), np.ones(3))
    assert y.shape == x.shape
    gx, gw, gb = K.batch_norm_backward(x, x, np.zeros(3), np.ones(3), np.ones(3))
    assert gx.shape == x.shape
    np.testing.assert_array_equal(gw, 0)
    np.testing.assert_array_equal(gb, 0)


# ---------------------------------------------------------------------------------------------
# activations

ACTS = {
    "relu6": (K.relu6, K.relu6_backward, lambda x: ref.hardtanh(x, 0.0, 6.0), (0.0, 6.0)),
    "hardtanh": (
        lambda x: K.hardtanh(x, -0.5, 2.0),
        lambda g, x: K.hardtanh_backward(g, x, -0.5, 2.0),
        lambda x: ref.hardtanh(x, -0.5, 2.0),
        (-0.5, 2.0),
    ),
    "hardswish": (K.hardswish, K.hardswish_backward, ref.hardswish, (-3.0, 3.0)),
    "hardsigmoid": (K.hardsigmoid, K.hardsigmoid_backward, ref.hardsigmoid, (-3.0, 3.0)),
    "silu": (K.silu, K.silu_backward, ref.silu, ()),
    "gelu": (K.gelu, K.gelu_backward, ref.gelu, ()),
    "gelu_tanh": (
        lambda x: K.gelu(x, approximate="tanh"),
        lambda g, x: K.gelu_backward(g, x, approximate="tanh"),
        lambda x: ref.gelu(x, "tanh"),
        (),
    ),
}


@pytest.mark.parametrize("name", sorted(ACTS))
@pytest.mark.parametrize("dtype", DTYPES)
def test_activation_forward(rng, name, dtype):
    f, _, r, kinks = ACTS[name]
    x = (rng.standard_normal((3, 4, 5, 6)) * 4).astype(dtype)
    x.reshape(-1)[: len(kinks)] = kinks
    y = f(x)
    assert y.dtype == dtype and y.shape == x.shape
    _close(y, r(x.astype(np.float64)), dtype)


@pytest.mark.parametrize("name", sorted(ACTS))
def test_activation_backward_finite_differences(rng, name):
    f, fb, _, kinks = ACTS[name]
    x = rng.standard_normal((2, 3, 4)) * 4
    # stay away from the kinks, where the derivative is a convention
    for k in kinks:
        near = np.abs(x - k) < 1e-3
        x[near] += 1e-2
    g = rng.standard_normal(x.shape)
    _gradcheck(fb(g, x), _fd(lambda: float(np.sum(f(x) * g)), x))


@pytest.mark.parametrize("dtype", DTYPES)
def test_activation_kink_conventions(dtype):
    """torch's gradient at the kinks (also checked against torch in the parity tests)."""
    g = np.full(2, 7.0, dtype)
    np.testing.assert_array_equal(K.relu6_backward(g, np.array([0, 6], dtype)), [0, 0])
    np.testing.assert_array_equal(K.hardtanh_backward(g, np.array([-1, 1], dtype)), [0, 0])
    np.testing.assert_array_equal(K.hardswish_backward(g, np.array([-3, 3], dtype)), [0, 7])
    np.testing.assert_array_equal(K.hardsigmoid_backward(g, np.array([-3, 3], dtype)), [0, 0])
    nan = np.array([np.nan, np.nan], dtype)
    assert np.isnan(K.relu6(nan)).all() and np.isnan(K.hardswish(nan)).all()
    np.testing.assert_array_equal(K.relu6_backward(g, nan), [0, 0])
    # torch's vectorised loop: g * (NaN/3 + 1/2) (its scalar tail loop passes g)
    assert np.isnan(K.hardswish_backward(g, nan)).all()


@pytest.mark.parametrize("dtype", DTYPES)
def test_activation_extremes_no_warning(dtype):
    x = np.array([-1000, -100, 0, 100, 1000], dtype)
    g = np.ones_like(x)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for name, (f, fb, r, _) in ACTS.items():
            y, gx = f(x), fb(g, x)
            assert np.isfinite(y).all() and np.isfinite(gx).all(), name
            _close(y, r(x.astype(np.float64)), dtype)


def test_activation_layouts_threads_errors(rng):
    base = rng.standard_normal((4, 8, 40, 40)).astype(np.float32)
    for f, fb, _, _ in ACTS.values():
        want = f(np.ascontiguousarray(base[:, ::2].transpose(0, 1, 3, 2)))
        np.testing.assert_array_equal(f(base[:, ::2].transpose(0, 1, 3, 2)), want)
        _threads_equal(lambda f=f: f(base))
        _threads_equal(lambda fb=fb: fb(base, base))
        with pytest.raises(ValueError, match="grad_out"):
            fb(base[:1], base)
        with pytest.raises(TypeError, match="grad_out"):
            fb(base.astype(np.float64), base)
        with pytest.raises(TypeError, match="x"):
            f(np.arange(3))
    with pytest.raises(ValueError, match="approximate"):
        K.gelu(base, approximate="erf")
    with pytest.raises(ValueError, match="min_val"):
        K.hardtanh(base, 2.0, 1.0)
    with pytest.raises(TypeError, match="max_val"):
        K.hardtanh(base, 0.0, None)
    assert K.silu(np.zeros((0, 3))).shape == (0, 3)


# ---------------------------------------------------------------------------------------------
# adaptive pooling

SIZES = [(3, 4), 5, (None, 3), (7, 10), (9, 13), 1, (2, None), (1, 10)]


def _pair(os, H, W):
    if isinstance(os, int):
        return os, os
    return (H if os[0] is None else os[0]), (W if os[1] is None else os[1])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("output_size", SIZES)
def test_adaptive_pools_match_reference(rng, dtype, output_size):
    x = rng.standard_normal((2, 3, 7, 10)).astype(dtype)
    oh, ow = _pair(output_size, 7, 10)
    _close(K.adaptive_avg_pool2d(x, output_size), ref.adaptive_avg_pool2d(x, oh, ow), dtype)
    y, idx = K.adaptive_max_pool2d(x, output_size, return_indices=True)
    want, want_idx = ref.adaptive_max_pool2d(x, oh, ow)
    np.testing.assert_array_equal(y, want.astype(dtype))
    np.testing.assert_array_equal(idx, want_idx)
    assert idx.dtype == np.int64
    # 3-D input
    _close(K.adaptive_avg_pool2d(x[0], output_size), ref.adaptive_avg_pool2d(x[0], oh, ow), dtype)


@pytest.mark.parametrize("output_size", [(3, 4), (4, 7), 2])
def test_adaptive_pools_backward_finite_differences(rng, output_size):
    x = rng.standard_normal((2, 2, 5, 7))
    oh, ow = _pair(output_size, 5, 7)
    g = rng.standard_normal((2, 2, oh, ow))
    ga = K.adaptive_avg_pool2d_backward(g, x.shape)
    _gradcheck(ga, _fd(lambda: float(np.sum(K.adaptive_avg_pool2d(x, output_size) * g)), x))
    _, idx = K.adaptive_max_pool2d(x, output_size, return_indices=True)
    gm = K.adaptive_max_pool2d_backward(g, idx, x.shape)
    _gradcheck(gm, _fd(lambda: float(np.sum(K.adaptive_max_pool2d(x, output_size) * g)), x))


def test_adaptive_max_ties_and_nan():
    x = np.zeros((1, 1, 4, 4))
    y, idx = K.adaptive_max_pool2d(x, (2, 2), return_indices=True)
    np.testing.assert_array_equal(idx[0, 0], [[0, 2], [8, 10]])  # first in row-major order
    g = K.adaptive_max_pool2d_backward(np.ones((1, 1, 2, 2)), idx, x.shape)
    assert g.sum() == 4
    x[0, 0, 0, 1] = np.nan
    x[0, 0, 1, 0] = np.nan
    y, idx = K.adaptive_max_pool2d(x, (2, 2), return_indices=True)
    assert np.isnan(y[0, 0, 0, 0]) and idx[0, 0, 0, 0] == 4  # the last NaN
    x = -np.ones((1, 1, 3, 3))  # all negative: never 0
    assert (K.adaptive_max_pool2d(x, 2) == -1).all()


def test_adaptive_pools_threads_layouts_errors(rng):
    x = rng.standard_normal((4, 8, 33, 35)).astype(np.float32)  # above the serial threshold
    assert x.size >= SERIAL_WORK["elements"]
    _threads_equal(lambda: K.adaptive_avg_pool2d(x, (5, 7)))
    _threads_equal(lambda: K.adaptive_max_pool2d(x, (5, 7), return_indices=True))
    g = rng.standard_normal((4, 8, 5, 7)).astype(np.float32)
    _threads_equal(lambda: K.adaptive_avg_pool2d_backward(g, x.shape))
    t = x.transpose(0, 1, 3, 2)[:, ::2]
    np.testing.assert_array_equal(
        K.adaptive_avg_pool2d(t, 3), K.adaptive_avg_pool2d(np.ascontiguousarray(t), 3)
    )
    with pytest.raises(ValueError, match="output_size"):
        K.adaptive_avg_pool2d(x, -1)
    with pytest.raises(TypeError, match="output_size"):
        K.adaptive_avg_pool2d(x, 2.5)
    with pytest.raises(ValueError, match="output_size"):
        K.adaptive_max_pool2d(x, (1, 2, 3))
    with pytest.raises(ValueError, match="x must"):
        K.adaptive_avg_pool2d(np.zeros((2, 3, 0, 4)), 2)
    with pytest.raises(TypeError, match="return_indices"):
        K.adaptive_max_pool2d(x, 2, return_indices=1)
    _, idx = K.adaptive_max_pool2d(x, (5, 7), return_indices=True)
    bad = idx.copy()
    bad[0, 0, 0, 0] = 33 * 35
    with pytest.raises(ValueError, match="indices"):
        K.adaptive_max_pool2d_backward(g, bad, x.shape)
    bad[0, 0, 0, 0] = -1
    with pytest.raises(ValueError, match="indices"):
        K.adaptive_max_pool2d_backward(g, bad, x.shape)
    with pytest.raises(ValueError, match="indices"):
        K.adaptive_max_pool2d_backward(g, idx[:1], x.shape)
    with pytest.raises(TypeError, match="indices"):
        K.adaptive_max_pool2d_backward(g, idx.astype(np.float64), x.shape)
    with pytest.raises(ValueError, match="input_shape"):
        K.adaptive_avg_pool2d_backward(g, (4, 7, 33, 35))
    empty = K.adaptive_avg_pool2d(np.zeros((0, 3, 4, 4)), 2)
    assert empty.shape == (0, 3, 2, 2)


# ---------------------------------------------------------------------------------------------
# interpolate


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("size", [(13, 4), (7, 10), (3, 21), (1, 1), (14, 20)])
def test_interpolate_matches_reference(rng, dtype, size):
    x = rng.standard_normal((2, 3, 7, 10)).astype(dtype)
    np.testing.assert_array_equal(
        K.interpolate(x, size=size), ref.interpolate_nearest(x, *size).astype(dtype)
    )
    for ac in (False, True):
        _close(
            K.interpolate(x, size=size, mode="bilinear", align_corners=ac),
            ref.interpolate_bilinear(x, *size, ac),
            dtype,
        )
    _close(
        K.interpolate(x, size=size, mode="bilinear"),
        ref.interpolate_bilinear(x, *size, False),
        dtype,
    )
    _close(
        K.interpolate(x[0], size=size, mode="bilinear"),
        ref.interpolate_bilinear(x[0], *size, False),
        dtype,
    )


def test_interpolate_scale_factor():
    x = np.arange(2 * 5 * 6, dtype=np.float64).reshape(1, 2, 5, 6)
    np.testing.assert_array_equal(K.interpolate(x, scale_factor=2), K.interpolate(x, size=(10, 12)))
    np.testing.assert_array_equal(
        K.interpolate(x, scale_factor=(3, 0.5)), ref.interpolate_nearest(x, 15, 3)
    )
    assert K.interpolate(x, scale_factor=1.7).shape == (1, 2, 8, 10)
    assert K.interpolate(x, scale_factor=1.7, mode="bilinear").shape == (1, 2, 8, 10)
    # with recompute_scale_factor the scale is in/out, as with size
    np.testing.assert_array_equal(
        K.interpolate(x, scale_factor=1.7, recompute_scale_factor=True, mode="bilinear"),
        K.interpolate(x, size=(8, 10), mode="bilinear"),
    )


@pytest.mark.parametrize(
    "kw",
    [dict(size=(9, 5)), dict(scale_factor=2), dict(size=(3, 2)), dict(scale_factor=(1.5, 0.7))],
)
@pytest.mark.parametrize("mode,ac", [("nearest", None), ("bilinear", False), ("bilinear", True)])
def test_interpolate_backward_finite_differences(rng, kw, mode, ac):
    x = rng.standard_normal((2, 2, 4, 6))
    y = K.interpolate(x, mode=mode, align_corners=ac, **kw)
    g = rng.standard_normal(y.shape)
    gx = K.interpolate_backward(g, x.shape, mode=mode, align_corners=ac, **kw)
    _gradcheck(
        gx, _fd(lambda: float(np.sum(K.interpolate(x, mode=mode, align_corners=ac, **kw) * g)), x)
    )


def test_interpolate_threads_errors(rng):
    x = rng.standard_normal((4, 8, 24, 24)).astype(np.float32)
    for mode in ("nearest", "bilinear"):
        _threads_equal(lambda mode=mode: K.interpolate(x, scale_factor=1.5, mode=mode))
        g = rng.standard_normal((4, 8, 36, 36)).astype(np.float32)
        assert g.size >= SERIAL_WORK["elements"]
        _threads_equal(
            lambda g=g, mode=mode: K.interpolate_backward(g, x.shape, scale_factor=1.5, mode=mode)
        )
    with pytest.raises(ValueError, match="mode"):
        K.interpolate(x, size=3, mode="bicubic")
    with pytest.raises(ValueError, match="size and scale_factor"):
        K.interpolate(x)
    with pytest.raises(ValueError, match="size and scale_factor"):
        K.interpolate(x, size=3, scale_factor=2)
    with pytest.raises(ValueError, match="align_corners"):
        K.interpolate(x, size=3, align_corners=True)
    with pytest.raises(TypeError, match="align_corners"):
        K.interpolate(x, size=3, mode="bilinear", align_corners=1)
    with pytest.raises(ValueError, match="scale_factor"):
        K.interpolate(x, scale_factor=-1)
    with pytest.raises(ValueError, match="scale_factor"):
        K.interpolate(x, scale_factor=float("inf"))
    with pytest.raises(ValueError, match="scale_factor"):
        K.interpolate(x, scale_factor=2.0**60)
    with pytest.raises(ValueError, match="output size"):
        K.interpolate(x, scale_factor=0.01)
    with pytest.raises(ValueError, match="size"):
        K.interpolate(x, size=-3)
    with pytest.raises(ValueError, match="grad_out"):
        K.interpolate_backward(np.zeros((4, 8, 3, 3), np.float32), x.shape, size=4)


# ---------------------------------------------------------------------------------------------
# max_unpool2d


def _pooled(rng, shape=(2, 3, 8, 9)):
    """A max-pool-like (values, indices) pair of a 2x2/stride-2 pooling of shape."""
    N, C, H, W = shape
    oh, ow = H // 2, W // 2
    vals = rng.standard_normal((N, C, oh, ow))
    dh = rng.integers(0, 2, (N, C, oh, ow))
    dw = rng.integers(0, 2, (N, C, oh, ow))
    idx = (2 * np.arange(oh)[:, None] + dh) * W + 2 * np.arange(ow)[None, :] + dw
    return vals, idx.astype(np.int64)


@pytest.mark.parametrize("dtype", DTYPES)
def test_max_unpool2d_matches_reference(rng, dtype):
    vals, idx = _pooled(rng)
    vals = vals.astype(dtype)
    y = K.max_unpool2d(vals, idx, 2, output_size=(8, 9))
    assert y.dtype == dtype
    np.testing.assert_array_equal(y, ref.max_unpool2d(vals, idx, 8, 9).astype(dtype))
    np.testing.assert_array_equal(K.max_unpool2d(vals, idx, 2, output_size=(2, 3, 8, 9)), y)
    np.testing.assert_array_equal(K.max_unpool2d(vals[0], idx[0], 2, output_size=(8, 9)), y[0])
    v2, i2 = _pooled(rng, (2, 3, 8, 8))
    np.testing.assert_array_equal(K.max_unpool2d(v2, i2, 2), ref.max_unpool2d(v2, i2, 8, 8))
    # a repeated index keeps the last value in row-major order
    rep = K.max_unpool2d(np.array([[[[1.0, 2.0]]]]), np.array([[[[5, 5]]]]), 2)
    assert rep.shape == (1, 1, 2, 4) and rep[0, 0, 1, 1] == 2.0 and rep.sum() == 2.0


def test_max_unpool2d_backward_finite_differences(rng):
    vals, idx = _pooled(rng, (2, 2, 6, 7))
    g = rng.standard_normal((2, 2, 6, 7))
    gx = K.max_unpool2d_backward(g, idx, vals.shape)
    fd = _fd(lambda: float(np.sum(K.max_unpool2d(vals, idx, 2, output_size=(6, 7)) * g)), vals)
    _gradcheck(gx, fd)


def test_max_unpool2d_threads_errors(rng):
    vals, idx = _pooled(rng, (4, 8, 64, 64))
    vals = vals.astype(np.float32)
    _threads_equal(lambda: K.max_unpool2d(vals, idx, 2))
    g = rng.standard_normal((4, 8, 64, 64)).astype(np.float32)
    _threads_equal(lambda: K.max_unpool2d_backward(g, idx, vals.shape))
    for forged in (64 * 64, -1, 2**62, -(2**63)):
        bad = idx.copy()
        bad[3, 7, 31, 31] = forged
        with pytest.raises(ValueError, match="indices"):
            K.max_unpool2d(vals, bad, 2)
        with pytest.raises(ValueError, match="indices"):
            K.max_unpool2d_backward(g, bad, vals.shape)
    with pytest.raises(ValueError, match="indices"):
        K.max_unpool2d(vals, idx[:, :4], 2)
    with pytest.raises(TypeError, match="indices"):
        K.max_unpool2d(vals, idx.astype(np.float32), 2)
    with pytest.raises(ValueError, match="output_size"):
        K.max_unpool2d(vals, idx, 2, output_size=(70, 64))
    with pytest.raises(ValueError, match="output_size"):
        K.max_unpool2d(vals, idx, 2, output_size=(64,))
    with pytest.raises(ValueError, match="kernel_size"):
        K.max_unpool2d(vals, idx, 0)
    with pytest.raises(ValueError, match="padding"):
        K.max_unpool2d(vals, idx, 2, padding=-1)
    with pytest.raises(ValueError, match="output size"):
        K.max_unpool2d(vals, idx, 1, stride=1, padding=40)
    with pytest.raises(ValueError, match="too large"):
        K.max_unpool2d(vals, idx, 2, stride=2**40)
    with pytest.raises(ValueError, match="input_shape"):
        K.max_unpool2d_backward(g, idx, (4, 7, 32, 32))


@pytest.mark.parametrize(
    "call",
    [
        lambda x: K.adaptive_avg_pool2d(x, 2**40),
        lambda x: K.adaptive_max_pool2d(x, (2**62, 1)),
        lambda x: K.adaptive_avg_pool2d_backward(np.zeros((1, 1, 2, 2)), (1, 1, 2**62, 4)),
        lambda x: K.interpolate(x, size=2**40),
        lambda x: K.interpolate(x, size=(2**63, 1)),
        lambda x: K.interpolate(x, scale_factor=(2.0**50, 1)),
        lambda x: K.max_unpool2d(x, np.zeros(x.shape, np.int64), 2**62),
        lambda x: K.max_unpool2d(x, np.zeros(x.shape, np.int64), 2, stride=(2**62, 2**62)),
    ],
)
def test_huge_geometry_is_a_value_error(call):
    """Sizes are checked in Python ints before any C arithmetic (docs/reliability.md item 16)."""
    with pytest.raises(ValueError):
        call(np.zeros((1, 1, 4, 4)))


def test_resampling_layouts(rng):
    """Sliced, transposed, negative-stride, Fortran-ordered and read-only inputs give the
    result of a contiguous copy."""
    base = rng.standard_normal((3, 4, 10, 12))
    views = [base[:, ::2], base.transpose(0, 1, 3, 2), base[:, :, ::-1], np.asfortranarray(base)]
    ro = base.copy()
    ro.flags.writeable = False
    views.append(ro)
    ops = [
        lambda a: K.adaptive_avg_pool2d(a, (3, 5)),
        lambda a: K.adaptive_max_pool2d(a, (4, 3), return_indices=True),
        lambda a: K.interpolate(a, size=(7, 15)),
        lambda a: K.interpolate(a, scale_factor=1.5, mode="bilinear", align_corners=True),
        lambda a: K.max_unpool2d(a, np.zeros(a.shape, np.int64) + 3, 2),
        lambda a: K.silu(a),
        lambda a: K.interpolate_backward(
            a, a.shape[:2] + (5, 6), size=a.shape[2:], mode="bilinear"
        ),
    ]
    for op in ops:
        for v in views:
            got, want = op(v), op(np.ascontiguousarray(v))
            for a, b in zip(
                got if isinstance(got, tuple) else (got,),
                want if isinstance(want, tuple) else (want,),
                strict=True,
            ):
                np.testing.assert_array_equal(a, b)


@settings(max_examples=80, deadline=None)
@given(
    n=st.integers(0, 2),
    c=st.integers(1, 3),
    h=st.integers(1, 9),
    w=st.integers(1, 9),
    oh=st.integers(1, 12),
    ow=st.integers(1, 12),
    seed=st.integers(0, 2**32 - 1),
)
def test_adaptive_and_interpolate_property(n, c, h, w, oh, ow, seed):
    """Any plane size against any output size (down- and upsampling, non-divisible), float64."""
    x = np.random.default_rng(seed).standard_normal((n, c, h, w))
    _close(K.adaptive_avg_pool2d(x, (oh, ow)), ref.adaptive_avg_pool2d(x, oh, ow), np.float64)
    y, idx = K.adaptive_max_pool2d(x, (oh, ow), return_indices=True)
    want, want_idx = ref.adaptive_max_pool2d(x, oh, ow)
    np.testing.assert_array_equal(y, want)
    np.testing.assert_array_equal(idx, want_idx)
    np.testing.assert_array_equal(
        K.interpolate(x, size=(oh, ow)), ref.interpolate_nearest(x, oh, ow)
    )
    for ac in (False, True):
        _close(
            K.interpolate(x, size=(oh, ow), mode="bilinear", align_corners=ac),
            ref.interpolate_bilinear(x, oh, ow, ac),
            np.float64,
        )
    # the backward passes are the adjoints of the forward passes: <A x, g> == <x, A^T g>
    g = np.random.default_rng(seed + 1).standard_normal((n, c, oh, ow))
    for fwd, bwd in [
        (
            lambda a: K.adaptive_avg_pool2d(a, (oh, ow)),
            lambda b: K.adaptive_avg_pool2d_backward(b, x.shape),
        ),
        (
            lambda a: K.interpolate(a, size=(oh, ow), mode="bilinear"),
            lambda b: K.interpolate_backward(b, x.shape, size=(oh, ow), mode="bilinear"),
        ),
        (
            lambda a: K.interpolate(a, size=(oh, ow)),
            lambda b: K.interpolate_backward(b, x.shape, size=(oh, ow)),
        ),
    ]:
        np.testing.assert_allclose(np.sum(fwd(x) * g), np.sum(x * bwd(g)), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("out_hw", [(0, 3), (2, 0), (0, 0)])
def test_adaptive_avg_pool2d_backward_of_an_empty_output_is_zero(out_hw):
    """An output of no rows or columns (torch's forward allows it) depends on no input element:
    the gradient is zero everywhere (it raised numpy's "cannot reshape array of size 0")."""
    x = np.ones((2, 3, 4, 5), np.float32)
    y = K.adaptive_avg_pool2d(x, out_hw)
    assert y.shape == (2, 3) + out_hw
    gx = K.adaptive_avg_pool2d_backward(np.ones(y.shape, np.float32), x.shape)
    assert gx.dtype == np.float32
    np.testing.assert_array_equal(gx, np.zeros(x.shape, np.float32))
