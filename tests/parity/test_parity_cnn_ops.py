"""convext.functional's CNN ops against torch.nn.functional: forward and backward, float32 and
float64 (the only test file of these ops that imports torch)."""

import numpy as np
import pytest

from convext import functional as K

torch = pytest.importorskip("torch")
F = torch.nn.functional

DTYPES = (np.float32, np.float64)


def _t(a, grad=False):
    t = torch.from_numpy(np.array(a))
    return t.requires_grad_(grad)


def _close(out, want, dtype):
    out = np.asarray(out, np.float64)
    want = np.asarray(want.detach().numpy() if hasattr(want, "detach") else want, np.float64)
    assert out.shape == want.shape
    if dtype == np.float64:
        np.testing.assert_allclose(out, want, rtol=1e-10, atol=1e-12)
    else:
        scale = max(1.0, float(np.max(np.abs(want), initial=0.0)))
        assert float(np.max(np.abs(out - want), initial=0.0)) <= 1e-5 * scale


@pytest.fixture
def rng():
    return np.random.default_rng(99)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("training", [False, True])
@pytest.mark.parametrize("affine", [False, True])
@pytest.mark.parametrize("shape", [(6, 4), (3, 4, 9), (4, 4, 6, 7)])
def test_batch_norm(rng, dtype, training, affine, shape):
    C = shape[1]
    x = (rng.standard_normal(shape) * 2 + 0.5).astype(dtype)
    rm = rng.standard_normal(C).astype(dtype)
    rv = (rng.random(C) + 0.5).astype(dtype)
    w = rng.standard_normal(C).astype(dtype) if affine else None
    b = rng.standard_normal(C).astype(dtype) if affine else None
    g = rng.standard_normal(shape).astype(dtype)
    rm1, rv1 = rm.copy(), rv.copy()
    y, mean, invstd = K.batch_norm(
        x, rm1, rv1, w, b, training=training, momentum=0.2, eps=1e-4, return_stats=True
    )
    gx, gw, gb = K.batch_norm_backward(g, x, mean, invstd, w, training=training)
    rmt, rvt = _t(rm), _t(rv)
    xt = _t(x, True)
    wt = None if w is None else _t(w, True)
    bt = None if b is None else _t(b, True)
    yt = F.batch_norm(xt, rmt, rvt, wt, bt, training=training, momentum=0.2, eps=1e-4)
    yt.backward(_t(g))
    _close(y, yt, dtype)
    _close(rm1, rmt, dtype)
    _close(rv1, rvt, dtype)
    _close(gx, xt.grad, dtype)
    if affine:
        # sums over N*H*W terms: scale the float32 tolerance by the number of terms
        n = x.size // C
        for ours, theirs in ((gw, wt.grad), (gb, bt.grad)):
            want = theirs.numpy().astype(np.float64)
            tol = 1e-10 if dtype == np.float64 else 1e-6 * n
            assert np.max(np.abs(ours - want)) <= tol * max(1.0, np.max(np.abs(want)))


ACTS = [
    ("relu6", K.relu6, K.relu6_backward, F.relu6),
    (
        "hardtanh",
        lambda x: K.hardtanh(x, -0.5, 2.0),
        lambda g, x: K.hardtanh_backward(g, x, -0.5, 2.0),
        lambda t: F.hardtanh(t, -0.5, 2.0),
    ),
    ("hardswish", K.hardswish, K.hardswish_backward, F.hardswish),
    ("hardsigmoid", K.hardsigmoid, K.hardsigmoid_backward, F.hardsigmoid),
    ("silu", K.silu, K.silu_backward, F.silu),
    ("gelu", K.gelu, K.gelu_backward, F.gelu),
    (
        "gelu_tanh",
        lambda x: K.gelu(x, approximate="tanh"),
        lambda g, x: K.gelu_backward(g, x, approximate="tanh"),
        lambda t: F.gelu(t, approximate="tanh"),
    ),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name,f,fb,tf", ACTS, ids=[a[0] for a in ACTS])
def test_activation(rng, dtype, name, f, fb, tf):
    kinks = [-3, -1, -0.5, 0, 1, 2, 3, 6, -6, 7, np.nan, 1000, -1000, 2.999, -2.999, 6.001]
    # the kinks first: torch runs its vectorised loop there on every ISA, and its scalar tail
    # loop (the last elements, how many depends on the vector width) gives some activations'
    # gradient at NaN differently (hardtanh, hardswish: g instead of the vector loop's value)
    x = np.concatenate([kinks, rng.standard_normal(300) * 5]).astype(dtype)
    g = rng.standard_normal(x.shape).astype(dtype)
    xt = _t(x, True)
    yt = tf(xt)
    yt.backward(_t(g))
    y, gx = f(x), fb(g, x)
    nan = np.isnan(x)
    # NaN handling at the kinks is compared exactly, the rest within the tolerances
    np.testing.assert_array_equal(np.isnan(y), np.isnan(yt.detach().numpy()))
    np.testing.assert_array_equal(np.isnan(gx), np.isnan(xt.grad.numpy()))
    _close(y[~nan], yt.detach().numpy()[~nan], dtype)
    if name == "hardsigmoid" and dtype == np.float64:
        # torch multiplies by the float32 constant 1.0f/6.0f even in float64: 3e-8 relative
        np.testing.assert_allclose(gx[~nan], xt.grad.numpy()[~nan], rtol=1e-7)
        np.testing.assert_allclose(gx[~nan], g[~nan] / 6 * ((x > -3) & (x < 3))[~nan], rtol=1e-15)
    else:
        _close(gx[~nan], xt.grad.numpy()[~nan], dtype)
    if name not in ("relu6", "hardtanh"):
        np.testing.assert_array_equal(gx[nan], xt.grad.numpy()[nan])
    else:
        # torch's hardtanh_backward zeroes a NaN's gradient in its vectorised loop but passes it
        # in the scalar tail loop (compare the x.grad of relu6 on 20 NaNs); convext zeroes it
        assert (gx[nan] == 0).all()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("output_size", [(3, 4), 5, (None, 3), (7, 10), (9, 13), 1, (4, None)])
def test_adaptive_pools(rng, dtype, output_size):
    x = rng.standard_normal((2, 3, 7, 10)).astype(dtype)
    xt = _t(x, True)
    yt = F.adaptive_avg_pool2d(xt, output_size)
    g = rng.standard_normal(tuple(yt.shape)).astype(dtype)
    yt.backward(_t(g))
    _close(K.adaptive_avg_pool2d(x, output_size), yt, dtype)
    _close(K.adaptive_avg_pool2d_backward(g, x.shape), xt.grad, dtype)
    xt = _t(x, True)
    ymt, imt = F.adaptive_max_pool2d(xt, output_size, return_indices=True)
    ymt.backward(_t(g))
    y, idx = K.adaptive_max_pool2d(x, output_size, return_indices=True)
    np.testing.assert_array_equal(y, ymt.detach().numpy())
    np.testing.assert_array_equal(idx, imt.numpy())
    np.testing.assert_array_equal(K.adaptive_max_pool2d_backward(g, idx, x.shape), xt.grad.numpy())


@pytest.mark.parametrize("dtype", DTYPES)
def test_adaptive_max_ties_and_nan(dtype):
    x = np.round(np.random.default_rng(3).standard_normal((2, 2, 9, 11))).astype(dtype)
    x[0, 0, 1, 1] = x[0, 0, 2, 5] = x[1, 1, 4, 4] = np.nan
    for os in [(2, 3), (4, 5), (9, 11), 1]:
        y, idx = K.adaptive_max_pool2d(x, os, return_indices=True)
        yt, it = F.adaptive_max_pool2d(_t(x), os, return_indices=True)
        np.testing.assert_array_equal(y, yt.numpy())
        np.testing.assert_array_equal(idx, it.numpy())


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "kw",
    [
        dict(size=(13, 4)),
        dict(size=5),
        dict(size=(7, 10)),
        dict(size=(14, 20)),
        dict(size=(1, 1)),
        dict(scale_factor=2),
        dict(scale_factor=1.7),
        dict(scale_factor=(0.6, 2.3)),
        dict(scale_factor=0.5),
        dict(scale_factor=1 / 3),
        dict(scale_factor=2.5, recompute_scale_factor=True),
        dict(scale_factor=(1.1, 2.0)),  # 7 rows stay 7: torch copies that axis
        dict(scale_factor=1.05),  # both axes keep their size
    ],
)
@pytest.mark.parametrize("mode,ac", [("nearest", None), ("bilinear", False), ("bilinear", True)])
def test_interpolate(rng, dtype, kw, mode, ac):
    x = rng.standard_normal((2, 3, 7, 10)).astype(dtype)
    xt = _t(x, True)
    yt = F.interpolate(xt, mode=mode, align_corners=ac, **kw)
    g = rng.standard_normal(tuple(yt.shape)).astype(dtype)
    yt.backward(_t(g))
    y = K.interpolate(x, mode=mode, align_corners=ac, **kw)
    gx = K.interpolate_backward(g, x.shape, mode=mode, align_corners=ac, **kw)
    if mode == "nearest":
        np.testing.assert_array_equal(y, yt.detach().numpy())
    else:
        _close(y, yt, dtype)
    _close(gx, xt.grad, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ac", [False, True])
def test_interpolate_copies_an_axis_of_unchanged_size(dtype, ac):
    """An axis whose size the scale factor leaves as it is (floor(H * s) == H) is a copy, as in
    torch, not a blend at i / s (which gave 0.57 for 1 on two rows at s = 1.4); torch's copy
    still multiplies the next row by a weight 0, so an inf there gives NaN, as here."""
    x = np.arange(2 * 5 * 3, dtype=dtype).reshape(1, 2, 5, 3)
    np.testing.assert_array_equal(
        K.interpolate(x, scale_factor=1.1, mode="bilinear", align_corners=ac), x
    )
    x[0, 1, 4, 1] = np.inf
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-12)
    for sf in (1.1, (1.1, 1.0), (1.19, 2.0), 1.4):
        xs = x[:, :, :2] if sf == 1.4 else x  # 2 rows stay 2 at 1.4
        yt = F.interpolate(_t(xs), scale_factor=sf, mode="bilinear", align_corners=ac)
        y = K.interpolate(xs, scale_factor=sf, mode="bilinear", align_corners=ac)
        np.testing.assert_allclose(y, yt.numpy(), **tol, err_msg=str(sf))  # NaN, inf in place
        g = np.ones(y.shape, dtype)
        xt = _t(xs, True)
        F.interpolate(xt, scale_factor=sf, mode="bilinear", align_corners=ac).backward(_t(g))
        gx = K.interpolate_backward(g, xs.shape, scale_factor=sf, mode="bilinear", align_corners=ac)
        np.testing.assert_allclose(gx, xt.grad.numpy(), **tol, err_msg=str(sf))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "H,W,k,s,p,output_size",
    [
        (8, 9, 2, None, 0, None),
        (8, 9, 2, None, 0, (8, 9)),
        (7, 7, 3, 2, 1, None),
        (7, 7, 3, 2, 1, (7, 8)),
        (10, 6, (3, 2), (2, 1), (1, 0), None),
        (5, 5, 2, 1, 0, None),
    ],
)
def test_max_unpool2d(rng, dtype, H, W, k, s, p, output_size):
    x = rng.standard_normal((2, 3, H, W)).astype(dtype)
    pooled, idx = F.max_pool2d(_t(x), k, s, p, return_indices=True)
    oh, ow = K.max_unpool2d(
        pooled.numpy(), np.zeros(tuple(idx.shape), np.int64), k, s, p, output_size
    ).shape[-2:]
    if idx.max() >= oh * ow:
        # torch rejects indices outside its output ("Found an invalid max index"), so must we
        # (torch is not called: its C++ exception aborts under AddressSanitizer)
        with pytest.raises(ValueError, match="indices"):
            K.max_unpool2d(pooled.numpy(), idx.numpy(), k, s, p, output_size)
        return
    pt = pooled.clone().requires_grad_(True)
    yt = F.max_unpool2d(pt, idx, k, s, p, output_size)
    g = rng.standard_normal(tuple(yt.shape)).astype(dtype)
    yt.backward(_t(g))
    y = K.max_unpool2d(pooled.numpy(), idx.numpy(), k, s, p, output_size)
    np.testing.assert_array_equal(y, yt.detach().numpy())
    np.testing.assert_array_equal(
        K.max_unpool2d_backward(g, idx.numpy(), tuple(pooled.shape)), pt.grad.numpy()
    )


def test_max_unpool2d_output_size_rule():
    """torch's accepted output_size range (default - stride, default + stride), exclusive."""
    x = torch.zeros((1, 1, 3, 3))
    idx = torch.zeros((1, 1, 3, 3), dtype=torch.int64)
    for oh in range(3, 10):
        try:
            F.max_unpool2d(x, idx, 2, output_size=(oh, 6))
            ok = True
        except (ValueError, RuntimeError):
            ok = False
        if ok:
            assert K.max_unpool2d(x.numpy(), idx.numpy(), 2, output_size=(oh, 6)).shape[-2] == oh
        else:
            with pytest.raises(ValueError, match="output_size"):
                K.max_unpool2d(x.numpy(), idx.numpy(), 2, output_size=(oh, 6))
