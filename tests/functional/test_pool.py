"""Pooling: max (argmax mask), average, Lp and global average, forward and backward, against the
naive oracle and finite differences (the PyTorch comparisons: tests/parity/test_parity_pool.py)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import convext
import reference as ref
from cases import AVG_POOL_CASES as AVG_CASES
from cases import LP_NORMS, LP_POOL_CASES
from cases import MAX_POOL_CASES as MAX_CASES
from cases import f32_ok as _f32_ok
from convext import functional as F

RNG = np.random.default_rng(1234)


def _distinct(shape, dtype=np.float64):
    """Values far apart (no near-ties), so finite differences do not cross a switch."""
    n = int(np.prod(shape))
    return (RNG.permutation(n).reshape(shape) * 0.1 - n * 0.05).astype(dtype)


# --- max pooling -------------------------------------------------------------------------------


@pytest.mark.parametrize("k,s,p,d,ceil", MAX_CASES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_max_forward_backward_vs_reference(k, s, p, d, ceil, dtype):
    x = RNG.standard_normal((2, 3, 7, 9)).astype(dtype)
    y, idx = F.max_pool2d(x, k, s, p, d, ceil, return_indices=True)
    ry, ridx = ref.max_pool2d(x, k, s, p, d, ceil)
    assert y.dtype == dtype and idx.dtype == np.int64
    np.testing.assert_array_equal(y, ry.astype(dtype))
    np.testing.assert_array_equal(idx, ridx)
    gy = RNG.standard_normal(y.shape).astype(dtype)
    gx = F.max_pool2d_backward(gy, idx, x.shape)
    assert gx.dtype == dtype
    rgx = ref.max_pool2d_backward(gy, ridx, x.shape)
    if dtype == np.float64:
        np.testing.assert_allclose(gx, rgx, rtol=1e-10, atol=0)
    else:
        assert _f32_ok(gx, rgx)


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(0, 3),
    c=st.integers(1, 3),
    h=st.integers(1, 9),
    w=st.integers(1, 9),
    kh=st.integers(1, 4),
    kw=st.integers(1, 4),
    sh=st.integers(1, 4),
    sw=st.integers(1, 4),
    dh=st.integers(1, 3),
    dw=st.integers(1, 3),
    ceil=st.booleans(),
    data=st.data(),
)
def test_max_forward_property(n, c, h, w, kh, kw, sh, sw, dh, dw, ceil, data):
    ph = data.draw(st.integers(0, kh // 2))
    pw = data.draw(st.integers(0, kw // 2))
    if (
        ref.pool_out_size(h, kh, sh, ph, dh, ceil) < 1
        or ref.pool_out_size(w, kw, sw, pw, dw, ceil) < 1
    ):
        with pytest.raises(ValueError, match="larger than the padded input"):
            F.max_pool2d(np.zeros((n, c, h, w)), (kh, kw), (sh, sw), (ph, pw), (dh, dw), ceil)
        return
    x = np.round(RNG.standard_normal((n, c, h, w)) * 2)  # integers: many ties
    y, idx = F.max_pool2d(x, (kh, kw), (sh, sw), (ph, pw), (dh, dw), ceil, return_indices=True)
    ry, ridx = ref.max_pool2d(x, (kh, kw), (sh, sw), (ph, pw), (dh, dw), ceil)
    np.testing.assert_array_equal(y, ry)
    np.testing.assert_array_equal(idx, ridx)
    gy = np.round(RNG.standard_normal(y.shape) * 3)
    gx = F.max_pool2d_backward(gy, idx, x.shape)
    np.testing.assert_array_equal(gx, ref.max_pool2d_backward(gy, ridx, x.shape))
    assert gx.sum() == gy[idx >= 0].sum()


@pytest.mark.parametrize("k,s,p,d,ceil", MAX_CASES[:6])
def test_max_gradcheck(k, s, p, d, ceil):
    x = _distinct((2, 2, 6, 7))
    y, idx = F.max_pool2d(x, k, s, p, d, ceil, return_indices=True)
    gy = RNG.standard_normal(y.shape)
    gx = F.max_pool2d_backward(gy, idx, x.shape)
    num = ref.numerical_grad(lambda z: np.sum(F.max_pool2d(z, k, s, p, d, ceil) * gy), x)
    np.testing.assert_allclose(gx, num, atol=1e-5, rtol=1e-3)


def test_max_ties_first_position_and_exact_sum():
    x = np.full((1, 1, 4, 4), 2.0)
    y, idx = F.max_pool2d(x, 2, return_indices=True)
    np.testing.assert_array_equal(idx[0, 0], [[0, 2], [8, 10]])
    gx = F.max_pool2d_backward(np.ones_like(y), idx, x.shape)
    expect = np.zeros((4, 4))
    expect[::2, ::2] = 1
    np.testing.assert_array_equal(gx[0, 0], expect)
    # integer-valued input with overlapping windows: every grad_out lands exactly once
    for dtype in (np.float32, np.float64):
        x = RNG.integers(-2, 3, size=(3, 4, 11, 10)).astype(dtype)
        y, idx = F.max_pool2d(x, 3, 2, 1, return_indices=True)
        gy = RNG.integers(-5, 6, size=y.shape).astype(dtype)
        gx = F.max_pool2d_backward(gy, idx, x.shape)
        assert gx.sum() == gy.sum()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("k,s,p", [(2, 2, 0), (3, 2, 1), (2, 1, 0)])
def test_max_nan_matches_reference(dtype, k, s, p):
    x = RNG.standard_normal((2, 2, 6, 6)).astype(dtype)
    x[0, 0, 0, 0] = np.nan
    x[0, 0, 1, 1] = np.nan  # two NaNs in one window: the last one is kept
    x[1, 1, 3, 2] = np.nan
    x[1, 0, 5, 5] = np.nan
    y, idx = F.max_pool2d(x, k, s, p, return_indices=True)
    ry, ridx = ref.max_pool2d(x, k, s, p)
    np.testing.assert_array_equal(y, ry.astype(dtype))  # NaN positions equal too
    np.testing.assert_array_equal(idx, ridx)
    assert np.isnan(y[0, 0, 0, 0])
    if (k, s) == (2, 2):
        assert idx[0, 0, 0, 0] == 6 + 1  # (1, 1): the last NaN in row-major order


def test_max_padding_is_minus_inf():
    x = -1.0 - RNG.random((2, 3, 5, 6))
    y = F.max_pool2d(x, 3, 2, 1)
    assert np.all(y < 0)
    np.testing.assert_array_equal(y, ref.max_pool2d(x, 3, 2, 1)[0])


def test_max_empty_window_with_dilation():
    x = RNG.standard_normal((1, 1, 2, 2))
    y, idx = F.max_pool2d(x, 2, 1, 1, dilation=3, return_indices=True)
    assert y.shape == (1, 1, 1, 1) and y[0, 0, 0, 0] == -np.inf and idx[0, 0, 0, 0] == -1
    np.testing.assert_array_equal(F.max_pool2d_backward(np.ones((1, 1, 1, 1)), idx, x.shape), 0)


def test_max_backward_rejects_bad_indices():
    gy = np.ones((1, 1, 2, 2))
    with pytest.raises(ValueError, match="outside"):
        F.max_pool2d_backward(gy, np.full((1, 1, 2, 2), 16), (1, 1, 4, 4))
    with pytest.raises(TypeError, match="indices"):
        F.max_pool2d_backward(gy, np.zeros((1, 1, 2, 2)), (1, 1, 4, 4))
    with pytest.raises(ValueError, match="indices"):
        F.max_pool2d_backward(gy, np.zeros((1, 1, 2, 1), np.int64), (1, 1, 4, 4))
    with pytest.raises(ValueError, match="input_shape"):
        F.max_pool2d_backward(gy, np.zeros((1, 1, 2, 2), np.int64), (1, 2, 4, 4))


# --- average pooling ---------------------------------------------------------------------------


@pytest.mark.parametrize("k,s,p,ceil", AVG_CASES)
@pytest.mark.parametrize("include_pad", [True, False])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_avg_vs_reference(k, s, p, ceil, include_pad, dtype):
    x = RNG.standard_normal((2, 3, 7, 8)).astype(dtype)
    y = F.avg_pool2d(x, k, s, p, ceil, include_pad)
    ry = ref.avg_pool2d(x, k, s, p, ceil, include_pad)
    assert y.dtype == dtype and y.shape == ry.shape
    gy = RNG.standard_normal(y.shape).astype(dtype)
    gx = F.avg_pool2d_backward(gy, x.shape, k, s, p, ceil, include_pad)
    rgx = ref.avg_pool2d_backward(gy, x.shape, k, s, p, ceil, include_pad)
    if dtype == np.float64:
        np.testing.assert_allclose(y, ry, rtol=1e-10, atol=1e-14)
        np.testing.assert_allclose(gx, rgx, rtol=1e-10, atol=1e-14)
    else:
        assert _f32_ok(y, ry) and _f32_ok(gx, rgx)


@pytest.mark.parametrize("div", [1, 3, 4, 7])
def test_avg_divisor_override(div):
    x = RNG.standard_normal((2, 2, 6, 5))
    y = F.avg_pool2d(x, 2, 2, 1, True, True, div)
    np.testing.assert_allclose(y, ref.avg_pool2d(x, 2, 2, 1, True, True, div), rtol=1e-10)
    gy = RNG.standard_normal(y.shape)
    np.testing.assert_allclose(
        F.avg_pool2d_backward(gy, x.shape, 2, 2, 1, True, True, div),
        ref.avg_pool2d_backward(gy, x.shape, 2, 2, 1, True, True, div),
        rtol=1e-10,
    )


@pytest.mark.parametrize("k,s,p,ceil", AVG_CASES)
@pytest.mark.parametrize("include_pad", [True, False])
def test_avg_gradcheck(k, s, p, ceil, include_pad):
    x = RNG.standard_normal((1, 2, 5, 6))
    y = F.avg_pool2d(x, k, s, p, ceil, include_pad)
    gy = RNG.standard_normal(y.shape)
    gx = F.avg_pool2d_backward(gy, x.shape, k, s, p, ceil, include_pad)
    num = ref.numerical_grad(lambda z: np.sum(F.avg_pool2d(z, k, s, p, ceil, include_pad) * gy), x)
    np.testing.assert_allclose(gx, num, atol=1e-5, rtol=1e-3)


# --- Lp pooling --------------------------------------------------------------------------------


@pytest.mark.parametrize("p", LP_NORMS)
@pytest.mark.parametrize("k,s,ceil", LP_POOL_CASES)
def test_lp_vs_reference_and_gradcheck(p, k, s, ceil):
    x = RNG.random((2, 2, 6, 7)) + 0.1  # positive: every p is defined
    y = F.lp_pool2d(x, p, k, s, ceil)
    np.testing.assert_allclose(y, ref.lp_pool2d(x, p, k, s, ceil), rtol=1e-10)
    gy = RNG.standard_normal(y.shape)
    gx = F.lp_pool2d_backward(gy, x, y, p, k, s, ceil)
    num = ref.numerical_grad(lambda z: np.sum(F.lp_pool2d(z, p, k, s, ceil) * gy), x)
    np.testing.assert_allclose(gx, num, atol=1e-5, rtol=1e-3)
    x32 = x.astype(np.float32)
    y32 = F.lp_pool2d(x32, p, k, s, ceil)
    assert y32.dtype == np.float32 and _f32_ok(y32, ref.lp_pool2d(x, p, k, s, ceil))


def test_lp_l2_signed_input_and_zero_window():
    x = RNG.standard_normal((2, 3, 6, 6))
    x[0, 0, :2, :2] = 0  # a zero window: output 0, gradient defined as 0
    y = F.lp_pool2d(x, 2, 2)
    np.testing.assert_allclose(y, np.sqrt(ref.avg_pool2d(x * x, 2) * 4), rtol=1e-10)
    assert y[0, 0, 0, 0] == 0
    gy = RNG.standard_normal(y.shape)
    gx = F.lp_pool2d_backward(gy, x, y, 2, 2)
    np.testing.assert_array_equal(gx[0, 0, :2, :2], 0)
    mask = np.ones_like(x, bool)
    mask[0, 0, :2, :2] = False
    num = ref.numerical_grad(lambda z: np.sum(F.lp_pool2d(z, 2, 2) * gy), x)
    np.testing.assert_allclose(gx[mask], num[mask], atol=1e-5, rtol=1e-3)


def test_lp_inf_is_max_of_abs():
    x = (RNG.permutation(144).reshape(2, 2, 6, 6) + 1) * 0.1 * RNG.choice([-1, 1], (2, 2, 6, 6))
    y = F.lp_pool2d(x, float("inf"), 2)
    np.testing.assert_array_equal(y, ref.max_pool2d(np.abs(x), 2)[0])
    gy = RNG.standard_normal(y.shape)
    gx = F.lp_pool2d_backward(gy, x, y, float("inf"), 2)
    num = ref.numerical_grad(lambda z: np.sum(F.lp_pool2d(z, float("inf"), 2) * gy), x)
    np.testing.assert_allclose(gx, num, atol=1e-5, rtol=1e-3)


# --- global average ----------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_global_avg(dtype):
    x = RNG.standard_normal((3, 4, 5, 6)).astype(dtype)
    y = F.global_avg_pool2d(x)
    assert y.shape == (3, 4, 1, 1) and y.dtype == dtype
    r = ref.avg_pool2d(x, (5, 6))
    if dtype == np.float64:
        np.testing.assert_allclose(y, r, rtol=1e-10)
    else:
        assert _f32_ok(y, r)
    gy = RNG.standard_normal(y.shape).astype(dtype)
    gx = F.global_avg_pool2d_backward(gy, x.shape)
    assert gx.dtype == dtype
    np.testing.assert_allclose(
        gx,
        ref.avg_pool2d_backward(gy, x.shape, (5, 6)),
        rtol=1e-6 if dtype == np.float32 else 1e-10,
    )
    if dtype == np.float64:
        num = ref.numerical_grad(lambda z: np.sum(F.global_avg_pool2d(z) * gy[:1, :2]), x[:1, :2])
        np.testing.assert_allclose(
            F.global_avg_pool2d_backward(gy[:1, :2], (1, 2, 5, 6)), num, atol=1e-5, rtol=1e-3
        )
    assert F.global_avg_pool2d(x[0]).shape == (4, 1, 1)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "shape",
    [
        (1, 1280, 7, 7),
        (2, 9, 5, 3),
        (1, 7, 1, 1),
        (3, 17, 12, 11),
        (1, 130, 5, 7),  # work items of 64 planes and 2 more; 35 elements: a tail for every TR
        (2, 72, 4, 4),  # planes of whole TR x TR blocks (TR 2, 4 or 8), no tail
        (1, 33, 9, 9),
    ],
)
def test_global_avg_sums_each_plane_in_double_in_order(dtype, shape):
    """global_avg_pool2d and adaptive_avg_pool2d to 1x1 (eval pooling of resnet and mobilenet)
    run one kernel that sums a vector's width of planes side by side (blocks transposed in
    registers, the rest one by one): every output is exactly the plane's sequential float64 sum
    (np.cumsum's last term: an independent oracle), divided by H*W, rounded to the dtype, the
    same for every thread count, plane count and plane size (whole blocks and the rest) and
    layout; and the same bits as the adaptive kernel's full window."""
    from convext._kernels import _pool, _resample

    N, C, H, W = shape
    x = (RNG.standard_normal(shape) * 10 + 3).astype(dtype)
    want = np.cumsum(x.reshape(N, C, H * W).astype(np.float64), axis=-1)[..., -1] / (H * W)
    want = want.astype(dtype).reshape(N, C, 1, 1)
    full = np.empty((N * C, 1, 1), dtype)
    one = np.array([0])
    _resample.adaptive_avg_forward(
        x.reshape(-1, H, W), full, one, np.array([H]), one, np.array([W]), 1
    )
    try:
        for n in (1, 2, 3):
            convext.set_num_threads(n)
            for got in (
                F.global_avg_pool2d(x),
                F.adaptive_avg_pool2d(x, 1),
                F.adaptive_avg_pool2d(x, (1, 1)),
                F.adaptive_avg_pool2d(np.asfortranarray(x), (1, None) if W == 1 else 1),
                F.global_avg_pool2d(x[:, ::-1])[:, ::-1],
                F.global_avg_pool2d(x[0])[None],
            ):
                assert got.dtype == dtype and got.shape[-2:] == (1, 1)
                np.testing.assert_array_equal(got.view(np.uint8), want[: len(got)].view(np.uint8))
            # the kernel itself on n threads, whatever the size (the functions above run the
            # smaller shapes on one)
            direct = np.empty(N * C, dtype)
            _pool.global_avg_forward(x.reshape(N * C, H * W), direct, n)
            np.testing.assert_array_equal(direct.view(np.uint8), want.reshape(-1).view(np.uint8))
        np.testing.assert_array_equal(full.reshape(want.shape), want)
    finally:
        convext.set_num_threads(None)
    if dtype == np.float64:  # and the naive float64 oracle
        np.testing.assert_allclose(want, ref.avg_pool2d(x, (H, W)), rtol=1e-10)


# --- shapes, layouts, threads ------------------------------------------------------------------


def test_batch_zero():
    x = np.zeros((0, 3, 8, 8), np.float32)
    y, idx = F.max_pool2d(x, 2, return_indices=True)
    assert y.shape == idx.shape == (0, 3, 4, 4)
    assert F.max_pool2d_backward(y, idx, x.shape).shape == x.shape
    a = F.avg_pool2d(x, 3, 2, 1)
    assert a.shape == (0, 3, 4, 4)
    assert F.avg_pool2d_backward(a, x.shape, 3, 2, 1).shape == x.shape
    assert F.lp_pool2d(x, 2, 2).shape == (0, 3, 4, 4)
    assert F.global_avg_pool2d(x).shape == (0, 3, 1, 1)
    assert (
        F.global_avg_pool2d_backward(np.zeros((0, 3, 1, 1), np.float32), x.shape).shape == x.shape
    )


def test_unbatched():
    x = RNG.standard_normal((3, 7, 6))
    y, idx = F.max_pool2d(x, 3, 2, 1, return_indices=True)
    y4, idx4 = F.max_pool2d(x[None], 3, 2, 1, return_indices=True)
    np.testing.assert_array_equal(y, y4[0])
    np.testing.assert_array_equal(idx, idx4[0])
    np.testing.assert_array_equal(
        F.max_pool2d_backward(y, idx, x.shape), F.max_pool2d_backward(y4, idx4, x[None].shape)[0]
    )
    a = F.avg_pool2d(x, 3, 2, 1, True, False)
    np.testing.assert_array_equal(a, F.avg_pool2d(x[None], 3, 2, 1, True, False)[0])
    np.testing.assert_array_equal(
        F.avg_pool2d_backward(a, x.shape, 3, 2, 1, True, False),
        F.avg_pool2d_backward(a[None], x[None].shape, 3, 2, 1, True, False)[0],
    )
    np.testing.assert_array_equal(F.lp_pool2d(x, 2, 2), F.lp_pool2d(x[None], 2, 2)[0])


def _layouts(x):
    yield "sliced", np.ascontiguousarray(np.repeat(x, 2, axis=3))[..., ::2]
    yield "transposed", np.ascontiguousarray(x.transpose(0, 1, 3, 2)).transpose(0, 1, 3, 2)
    yield "negative", np.ascontiguousarray(x[:, :, ::-1])[:, :, ::-1]
    yield "fortran", np.asfortranarray(x)
    ro = x.copy()
    ro.flags.writeable = False
    yield "readonly", ro


def test_layouts():
    x = RNG.standard_normal((2, 3, 7, 6))
    y, idx = F.max_pool2d(x, 3, 2, 1, return_indices=True)
    a = F.avg_pool2d(x, 3, 2, 1)
    gy = RNG.standard_normal(y.shape)
    gx = F.max_pool2d_backward(gy, idx, x.shape)
    ga = F.avg_pool2d_backward(gy, x.shape, 3, 2, 1)
    for name, v in _layouts(x):
        np.testing.assert_array_equal(v, x)
        yv, iv = F.max_pool2d(v, 3, 2, 1, return_indices=True)
        np.testing.assert_array_equal(yv, y, err_msg=name)
        np.testing.assert_array_equal(iv, idx, err_msg=name)
        np.testing.assert_array_equal(F.avg_pool2d(v, 3, 2, 1), a, err_msg=name)
    for name, g in _layouts(gy):
        np.testing.assert_array_equal(F.max_pool2d_backward(g, idx, x.shape), gx, err_msg=name)
        np.testing.assert_array_equal(F.avg_pool2d_backward(g, x.shape, 3, 2, 1), ga, err_msg=name)
    np.testing.assert_array_equal(F.max_pool2d_backward(gy, np.asfortranarray(idx), x.shape), gx)


def test_thread_count_determinism():
    x = RNG.standard_normal((4, 8, 40, 41)).astype(np.float32)  # large enough to go parallel
    results = []
    try:
        for n in (1, 2):
            convext.set_num_threads(n)
            y, idx = F.max_pool2d(x, 3, 2, 1, return_indices=True)
            gy = np.ones_like(y)
            results.append(
                (
                    y,
                    idx,
                    F.max_pool2d_backward(gy, idx, x.shape),
                    F.avg_pool2d(x, 3, 2, 1),
                    F.avg_pool2d_backward(gy, x.shape, 3, 2, 1),
                )
            )
    finally:
        convext.set_num_threads(None)
    for a, b in zip(*results, strict=True):
        np.testing.assert_array_equal(a, b)


# Wide rows: the vector row kernels of _kernels/isa/pool.inc (several runs of outputs per row, the
# even/odd split at stride 2) against the naive loops, with ties, NaN and inf inside the runs.
WIDE_MAX = [  # kernel, stride, padding, dilation, ceil_mode
    (3, 2, 1, 1, False),  # ResNet's stem pool
    (2, 2, 0, 1, False),
    (3, 1, 1, 1, False),
    ((2, 3), (1, 3), (1, 1), (2, 2), True),
    (3, 2, 1, 2, True),
]


def _wide(dtype):
    x = RNG.integers(-3, 4, size=(1, 2, 9, 150)).astype(dtype)  # many ties
    x[0, 0, 3, 40:44] = np.nan
    x[0, 1, 5, 70] = np.inf
    x[0, 1, 2, 90:100] = -np.inf
    return x


@pytest.mark.parametrize("k,s,p,d,ceil", WIDE_MAX)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_max_wide_rows_vs_reference(k, s, p, d, ceil, dtype):
    x = _wide(dtype)
    y, idx = F.max_pool2d(x, k, s, p, d, ceil, return_indices=True)
    ry, ridx = ref.max_pool2d(x, k, s, p, d, ceil)
    np.testing.assert_array_equal(y, ry.astype(dtype))
    np.testing.assert_array_equal(idx, ridx)


@pytest.mark.parametrize("k,s,p", [(3, 2, 1), (2, 2, 0), (3, 1, 1), ((3, 2), (2, 1), (1, 0))])
@pytest.mark.parametrize("include_pad", [True, False])
def test_avg_wide_rows_vs_reference(k, s, p, include_pad):
    x = RNG.standard_normal((1, 2, 9, 150))
    y = F.avg_pool2d(x, k, s, p, count_include_pad=include_pad)
    ry = ref.avg_pool2d(x, k, s, p, count_include_pad=include_pad)
    np.testing.assert_allclose(y, ry, rtol=1e-12, atol=1e-14)


def _special_3x3(rng, shape, dtype):
    """Small integers (dense ties) with NaN (often two in one window, in different rows and
    columns), +-inf and all -inf stretches: every branch of the max rule."""
    x = rng.integers(-2, 3, size=shape).astype(dtype)
    flat = x.reshape(-1)
    for value, count in ((np.nan, 6), (np.inf, 3), (-np.inf, 8)):
        flat[rng.choice(flat.size, size=count * max(1, flat.size // 200), replace=False)] = value
    x[..., 1:4, 5:9] = -np.inf  # whole windows of -inf: the first tap is kept
    if shape[-1] > 11:
        x[..., 2, 10], x[..., 3, 11] = np.nan, np.nan  # two NaNs, two rows of one window
    return x


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("p,ceil", [(1, False), (0, False), (0, True), (1, True)])
def test_max_3x3_stride2_every_row_length_vs_reference(dtype, p, ceil):
    """The whole 3x3 stride-2 windows go through the separable kernel (row maxima, then the
    maximum of the three rows): values and indices as the row-major oracle for every row
    length modulo the kernel's vector block, and rows longer than one of its runs (128)."""
    rng = np.random.default_rng(7)
    for w in [*range(3, 3 + 2 * 18), 2 * 128 + 5, 2 * 300 + 4]:
        x = _special_3x3(rng, (1, 2, 7, w), dtype)
        y, idx = F.max_pool2d(x, 3, 2, p, ceil_mode=ceil, return_indices=True)
        ry, ridx = ref.max_pool2d(x, 3, 2, p, ceil_mode=ceil)
        np.testing.assert_array_equal(y, ry.astype(dtype), err_msg=f"W={w}")
        np.testing.assert_array_equal(idx, ridx, err_msg=f"W={w}")


def test_row_blocks_of_one_plane_are_thread_independent():
    """One large plane is split into row blocks over the threads (batch 1, one channel)."""
    x = RNG.standard_normal((1, 1, 300, 130)).astype(np.float32)  # enough to go parallel
    runs = []
    try:
        for n in (1, 2):
            convext.set_num_threads(n)
            runs.append((*F.max_pool2d(x, 3, 2, 1, return_indices=True), F.avg_pool2d(x, 3, 2, 1)))
    finally:
        convext.set_num_threads(None)
    for a, b in zip(*runs, strict=True):
        np.testing.assert_array_equal(a, b)
    ry, ridx = ref.max_pool2d(x, 3, 2, 1)
    np.testing.assert_array_equal(runs[0][0], ry.astype(np.float32))
    np.testing.assert_array_equal(runs[0][1], ridx)


# Values only: without return_indices the kernels skip the argmax (isa/pool.inc, ip == NULL);
# the values must be the same bits as with it (NaN payloads and the sign of zero included).
VALUE_CASES = [  # kernel, stride, padding, dilation, ceil_mode: every kernel route
    *MAX_CASES,
    *WIDE_MAX,
    (2, 1, 0, 1, False),  # whole 2x2 windows, stride 1
    (3, 3, 1, 1, True),  # whole 3x3 windows, stride 3
    (3, 2, 0, 1, True),
    ((1, 5), (1, 2), (0, 2), 1, False),  # the generic row kernel at stride 2
    (2, 2, 0, 1, True),  # ceil_mode's edge windows of the values-only 2x2 stride-2 kernel
]


def _bits(a):
    return a.view(np.uint32 if a.dtype == np.float32 else np.uint64)


def _value_data(rng, shape, dtype):
    """Dense ties with both signs of zero, NaNs of distinct payloads (often two per window), +-inf
    and whole -inf windows."""
    x = _special_3x3(rng, shape, dtype)
    zeros = x == 0
    x[zeros] = np.where(rng.random(int(zeros.sum())) < 0.5, -0.0, 0.0).astype(dtype)
    bits = _bits(x)
    nan = np.isnan(x)
    # quiet NaNs with payloads 1, 2, ... (which NaN is kept shows in the bits)
    quiet = np.uint32(0x7FC00000) if dtype == np.float32 else np.uint64(0x7FF8000000000000)
    bits[nan] = quiet + np.arange(1, int(nan.sum()) + 1).astype(bits.dtype)
    return x


@pytest.mark.parametrize("p,ceil", [(1, False), (0, False), (1, True), (0, True)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_3x3_stride2_values_only_rows(p, ceil, dtype):
    """Values-only 3x3 stride-2 pooling (resnet's stem) runs whole output rows through
    isa/pool.inc's cvx_pl_vmax3s2: border windows in the kernel, the interior in vector code,
    and, when the rows read hold no NaN, a plain max instruction instead of the NaN rule. The
    same bits as the path with indices (the scalar rule) and the naive oracle, on widths whose
    interior crosses the 16-output blocks, narrow planes, planes with and without NaN side by
    side (the NaN check is per call), +-0 ties and -inf; every thread count and batch split.
    With one column of padding on the left, on AVX-512 the rows are made in registers
    (cvx_pl_vmax3s2_lanes: MAXPS, an output row again by the rule where its rows hold a NaN)."""
    rng = np.random.default_rng(23)
    for H, W in [(9, 33), (8, 34), (7, 35), (5, 64), (3, 3), (4, 5), (11, 100), (2, 70)]:
        x = rng.integers(-3, 4, size=(3, 4, H, W)).astype(dtype)
        zeros = x == 0
        x[zeros] = np.where(rng.random(int(zeros.sum())) < 0.5, -0.0, 0.0).astype(dtype)
        x[0, 1] = -np.inf
        x[0, 2, :, : W // 2] = -np.inf
        x[2, 3, H // 2, W // 3] = np.nan  # one plane with a NaN among NaN-free ones
        x[1, 0, 0, -1] = np.nan
        try:
            y, _ = F.max_pool2d(x, 3, 2, p, 1, ceil, return_indices=True)
        except ValueError:  # kernel larger than this shape
            continue
        runs = []
        try:
            for n in (1, 2):
                convext.set_num_threads(n)
                runs.append(F.max_pool2d(x, 3, 2, p, 1, ceil))
                runs.append(
                    np.concatenate([F.max_pool2d(x[i : i + 1], 3, 2, p, 1, ceil) for i in range(3)])
                )
        finally:
            convext.set_num_threads(None)
        ry, _ = ref.max_pool2d(x, 3, 2, p, 1, ceil)
        for v in runs:
            assert v.dtype == dtype and v.shape == y.shape
            np.testing.assert_array_equal(_bits(v), _bits(y), err_msg=str((H, W)))
            np.testing.assert_array_equal(v, ry.astype(dtype), err_msg=str((H, W)))
        assert np.isnan(runs[0][2, 3]).any() and not np.isnan(runs[0][2, :3]).any()


@pytest.mark.parametrize("ceil", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_3x3_stride2_values_nan_at_a_run_boundary(ceil, dtype):
    """cvx_pl_vmax3s2_lanes (AVX-512) makes an output row's vectors in runs of 32; a run's first
    outputs read the last odd column of the run before it (2 * 32 * lanes - 1: 1023 in float32,
    511 in float64). A NaN there, in any window row of one output row only, makes that output
    NaN (the rule), here as in the path with indices and the naive oracle: once, the run after
    it dropped the NaN. Planes a run and a bit wide, NaN in the top, middle and bottom window
    row, one and two threads."""
    lanes = 16 if dtype == np.float32 else 8
    c = 2 * 32 * lanes - 1
    for r in (1, 2, 3, 4):  # rows of output rows 0-2's windows, shared or not
        x = np.random.default_rng(r).standard_normal((1, 2, 6, c + 2)).astype(dtype)
        x[0, 1, r, c] = np.nan
        want, _ = ref.max_pool2d(x, 3, 2, 1, 1, ceil)
        got = _values_by_the_rule(x, 3, 2, 1, ceil)
        np.testing.assert_array_equal(got, want.astype(dtype), err_msg=str(r))
        assert np.isnan(got[0, 1, :, (c + 1) // 2]).sum() == (2 if r % 2 else 1)
        assert not np.isnan(got[0, 0]).any()


def _picked(x, idx):
    """The input element each index names (the exact bits the rule keeps), -inf for -1."""
    flat = x.reshape(x.shape[0] * x.shape[1], -1)
    i = np.maximum(idx, 0).reshape(flat.shape[0], -1)
    got = np.take_along_axis(flat, i, axis=1).reshape(idx.shape)
    return np.where(idx >= 0, got, -np.inf).astype(x.dtype)


def _values_by_the_rule(x, k, s, p, ceil):
    """Values-only max pooling of x (windows k, stride s, padding p): the bits of the element
    the indices name (the rule), on one and two threads, for the batch and for each plane of
    its first image alone (one plane: split into row blocks). Returns those values."""
    _, idx = F.max_pool2d(x, k, s, p, 1, ceil, return_indices=True)
    want = _picked(x, idx)
    try:
        for n in (1, 2):
            convext.set_num_threads(n)
            got = F.max_pool2d(x, k, s, p, 1, ceil)
            np.testing.assert_array_equal(_bits(got), _bits(want), err_msg=str((x.shape, n)))
            for c in range(x.shape[1]):
                one = F.max_pool2d(x[:1, c : c + 1], k, s, p, 1, ceil)
                np.testing.assert_array_equal(
                    _bits(one), _bits(want[:1, c : c + 1]), err_msg=str((x.shape, n, c))
                )
    finally:
        convext.set_num_threads(None)
    return want


@pytest.mark.parametrize("p,ceil", [(1, False), (0, False), (1, True), (0, True)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_3x3_stride2_values_column_pass(p, ceil, dtype):
    """cvx_pl_vmax3s2 takes each input column's maximum over the window's three rows first
    (runs of 256 outputs), which keeps every bit only on rows without NaN and -0.0; a run
    whose rows hold one is computed again by the rule. The same bits as the rule (the element
    the indices name) on rows longer than one run, with a -0.0 / +0.0 tie (first in row-major
    order -0.0, first in column order +0.0, and the reverse) in one run of a row and not the
    next, NaNs of distinct payloads in the first and last rows, in a row where a row block
    (work item) starts and in the bottom row of a window only, and one plane clean; one plane
    split into row blocks, every thread count."""
    rng = np.random.default_rng(31)
    for H, W in [(21, 2 * 256 + 3), (20, 4 * 256 + 6), (9, 520), (5, 40)]:
        x = rng.standard_normal((1, 3, H, W)).astype(dtype)
        OW = (W + 2 * p - 3 + (1 if ceil else 0)) // 2 + 1
        # plane 0: signed-zero ties, window (oh, q) rows 2*oh - p.., columns 2*q - p..
        for oh, q, first in ((1, OW - 2, -0.0), (2, 1, 0.0), (H // 2 - 1, OW // 2, -0.0)):
            r, c = 2 * oh - p, 2 * q - p
            if r < 0 or c < 0 or r + 2 >= H or c + 2 >= W:
                continue
            x[0, 0, r : r + 3, c : c + 3] = -1
            x[0, 0, r, c + 1] = first  # the first zero in row-major order
            x[0, 0, r + 1, c] = 0.0 if np.signbit(first) else -0.0  # first in its column
        # plane 1: NaNs (quiet, payloads 1, 2, ...) in the first and last rows, the bottom row
        # of one window, and rows where row blocks start
        nan_at = [(0, 5), (H - 1, W - 2), (2, W // 2), (4, W - 3), (H // 2, 1)]
        bits = _bits(x)
        quiet = np.uint32(0x7FC00000) if dtype == np.float32 else np.uint64(0x7FF8000000000000)
        for k, (r, c) in enumerate(nan_at):
            bits[0, 1, r, c] = quiet + bits.dtype.type(k + 1)
        x[0, 1, 2, W // 2 + 1] = np.nan  # two NaNs in one window row: the last is kept
        want = _values_by_the_rule(x, 3, 2, p, ceil)
        assert np.isnan(want[0, 1]).sum() >= 4 and not np.isnan(want[0, 0]).any()
        if W < 100:
            ry, _ = ref.max_pool2d(x, 3, 2, p, 1, ceil)
            np.testing.assert_array_equal(want, ry.astype(dtype))


@pytest.mark.parametrize("s", [1, 2])
@pytest.mark.parametrize("p,ceil", [(1, False), (0, False), (1, True), (0, True)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_3x3_in_registers_vs_reference(s, p, ceil, dtype):
    """3x3 windows at stride 1 and 2 with padding <= 1 go whole rows at a time, borders and
    ceil_mode's windows included, through isa/pool.inc's cvx_pl_max3_lanes where the kernel
    table has the register rows (AVX-512): each window row's maximum and tap by the rule, then
    the three rows', in runs of 32 output vectors down the rows, each input row's pass kept for
    the output rows that share it. Values (their bits: NaN payloads, the sign of zero) and
    indices as the naive oracle on every output width up to three vectors, across a run's end
    (the stride-2 pass carries the last column of the run before it: a NaN there), heights from
    one row, one plane (split into row blocks) and six, one and two threads; the values-only
    call gives the same bits."""
    lanes, run = (16, 32 * 16) if dtype == np.float32 else (8, 32 * 8)
    rng = np.random.default_rng(41 + s)
    sizes = [(h, w) for h in (1, 2, 3, 5) for w in range(1, 3 * lanes * s + 4)]
    edge = s * run - p  # the column the stride-2 pass carries into the second run
    sizes += [(4, s * (run - 1) + 3 - 2 * p + d) for d in (0, 1, 2)] + [(6, s * run + 9)]
    for H, W in sizes:
        if H + 2 * p < 3 or W + 2 * p < 3:
            continue
        shape = (2, 3, H, W) if W < 4 * lanes else (1, 2, H, W)
        x = _value_data(rng, (*shape[:2], max(H, 8), max(W, 8)), dtype)[..., :H, :W].copy()
        if W > edge:
            x[0, 1, H // 2, edge] = np.nan
        ry, ridx = ref.max_pool2d(x, 3, s, p, 1, ceil)
        runs = []
        try:
            for n in (1, 2):
                convext.set_num_threads(n)
                runs.append(F.max_pool2d(x, 3, s, p, 1, ceil, return_indices=True))
                one = F.max_pool2d(x[:1, 1:2], 3, s, p, 1, ceil, return_indices=True)
                runs.append(tuple(a for a in one))
        finally:
            convext.set_num_threads(None)
        want = _picked(x, ridx)
        np.testing.assert_array_equal(want, ry.astype(dtype))
        for k, (y, idx) in enumerate(runs):
            ref_y, ref_idx = (want, ridx) if k % 2 == 0 else (want[:1, 1:2], ridx[:1, 1:2])
            np.testing.assert_array_equal(idx, ref_idx, err_msg=str((H, W, k)))
            np.testing.assert_array_equal(_bits(y), _bits(ref_y), err_msg=str((H, W, k)))
        v = F.max_pool2d(x, 3, s, p, 1, ceil)
        np.testing.assert_array_equal(_bits(v), _bits(want), err_msg=str((H, W)))


@pytest.mark.parametrize("pad", ["ceil", "floor", "sides"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_2x2_stride2_values_plane_rows(pad, dtype):
    """Values-only 2x2 stride-2 pooling without top and left padding runs a work item's rows in
    one call (isa/pool.inc's cvx_pl_vmax2s2: the whole windows of each row by the rule, then the
    windows over the right and bottom edges that ceil_mode, or bottom and right padding
    ("sides": (0, 1, 0, 1)), adds). The same bits as the path with indices (the element they
    name) and, without side padding, the naive oracle: -0.0 / +0.0 ties (the rule keeps the
    first in row-major order) and pairs of NaNs of distinct payloads (the last is kept), in
    whole windows and in the right, bottom and corner edge windows; odd sizes, planes of one row
    or one column; rows of 1 to 260 outputs; one plane split into row blocks; one and two
    threads."""
    rng = np.random.default_rng(37)
    ceil = pad == "ceil"
    padding = (0, 1, 0, 1) if pad == "sides" else 0
    grow = 0 if pad == "floor" else 1
    shapes = [(32, 32), (64, 32), (20, 2 * 256 + 6), (9, 33), (7, 520), (17, 64), (3, 3), (2, 5)]
    if pad != "floor":  # a kernel larger than the plane needs the edge windows
        shapes += [(1, 5), (5, 1), (1, 1)]
    quiet = np.uint32(0x7FC00000) if dtype == np.float32 else np.uint64(0x7FF8000000000000)
    for H, W in shapes:
        x = rng.standard_normal((2, 3, H, W)).astype(dtype)
        bits = _bits(x)
        OH, OW = ((n - 2 + grow) // 2 + 1 for n in (H, W))

        # pairs of cells in one window, in row-major order: whole windows (where the rule and
        # each column's maximum first differ), the right edge (an odd W), the bottom edge (an
        # odd H), the last whole row's windows; the output each lands in
        pairs = []
        if H >= 2 and W >= 2:
            pairs.append((((0, 1), (1, 0)), (0, 0)))
        if W % 2 and H >= 2:
            pairs.append((((0, W - 1), (1, W - 1)), (0, OW - 1)))
        if H % 2 and W >= 2:
            pairs.append((((H - 1, 0), (H - 1, 1)), (OH - 1, 0)))
        if H % 2 == 0 and W >= 4:
            pairs.append((((H - 2, 3), (H - 1, 2)), (OH - 1, 1)))
        kept = []
        for k, (((r0, c0), (r1, c1)), out) in enumerate(pairs):
            if r1 >= 2 * OH or max(c0, c1) >= 2 * OW:  # (floor mode drops the edge)
                continue
            # plane (0, 0): -0.0 then +0.0, the rest of the window -inf: -0.0 is kept
            x[0, 0, 2 * out[0] : 2 * out[0] + 2, 2 * out[1] : 2 * out[1] + 2] = -np.inf
            x[0, 0, r0, c0], x[0, 0, r1, c1] = -0.0, 0.0
            # plane (0, 1): two NaNs of distinct payloads: the second is kept
            bits[0, 1, r0, c0] = quiet + bits.dtype.type(10 * k + 1)
            bits[0, 1, r1, c1] = quiet + bits.dtype.type(10 * k + 2)
            kept.append((out, 10 * k + 2))
        bits[1, 2, min(H, 2 * OH) - 1, 0] = quiet + bits.dtype.type(99)  # one NaN plane
        want = _values_by_the_rule(x, 2, 2, padding, ceil)
        assert want.shape == (2, 3, OH, OW)
        for (oh, q), payload in kept:  # each pair's window: the second NaN, a -0.0 tie
            assert _bits(want)[0, 1, oh, q] == quiet + bits.dtype.type(payload), (H, W, oh, q)
            assert want[0, 0, oh, q] == 0 and np.signbit(want[0, 0, oh, q]), (H, W, oh, q)
        assert np.isnan(want[1, 2]).any() and not np.isnan(want[1, :2]).any()
        if W < 100 and pad != "sides":
            ry, _ = ref.max_pool2d(x, 2, 2, 0, 1, ceil)
            np.testing.assert_array_equal(want, ry.astype(dtype))


# Windows of the values-only separable kernel (isa/pool.inc's cvx_pl_vmax_sep): kernel,
# stride, padding, ceil_mode. Stride 1 with padding (k - 1) / 2 takes its runs of whole rows
# (cvx_pl_vmax_same), the others its rows a few at a time; (300, 200) is wider than one chunk.
SEPARABLE_CASES = [
    (3, 1, 1, False),
    (5, 1, 2, False),
    ((7, 3), 1, (3, 1), False),
    (1, 1, 0, False),
    (2, 1, 0, False),
    (3, 3, 1, True),
    ((3, 5), (1, 2), (1, 2), True),
    ((4, 2), (2, 1), (2, 1), True),
    ((2, 300), (1, 200), (1, 150), True),
    (2, 3, 0, True),  # stride beyond the window: rows between windows
    ((1, 500), (1, 300), 0, True),  # one output per chunk
    ((2, 3), (1, 600), (1, 1), True),  # a stride longer than the row buffer
]


@pytest.mark.parametrize("k,s,p,ceil", SEPARABLE_CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_values_separable_rows(k, s, p, ceil, dtype):
    """Values-only windows without dilation other than 3x3 and 2x2 at stride 2 go through
    cvx_pl_vmax_sep: each column's maximum over the window's rows, then each output's maximum
    over its columns, with -inf for the columns outside the plane, wherever the window rows hold
    no NaN and no -0.0, and the rule in row-major order for an output row (or a run of rows)
    whose window rows do. The same bits as the rule (the element the indices name) and the
    naive oracle: sparse specials (runs with and without them side by side; a -0.0 / +0.0 tie
    or a NaN in one row only, in the border columns too) and dense ones (_value_data); narrow
    planes of many rows per run, planes of one row or column, rows longer than one chunk; one
    plane split into row blocks; one and two threads."""
    rng = np.random.default_rng(41)
    kh, kw = (k, k) if isinstance(k, int) else k
    quiet = np.uint32(0x7FC00000) if dtype == np.float32 else np.uint64(0x7FF8000000000000)
    shapes = [(32, 32), (9, 33), (40, 5), (3, 700), (1, 9), (9, 1), (64, 17), (4, 1100)]
    for H, W in shapes:
        sparse = rng.integers(-4, 5, size=(2, 3, H, W)).astype(dtype)  # dense ties
        bits = _bits(sparse)
        # plane (0, 0): -0.0 / +0.0 pairs in one row, the first of each pair the one kept by
        # the rule in row-major order; plane (0, 1): NaNs of distinct payloads
        for j, (r, c) in enumerate([(H // 2, 0), (H - 1, W - 1), (0, W // 2), (H // 3, W - 2)]):
            c2 = min(c + 1, W - 1)
            sparse[0, 0, r, c], sparse[0, 0, r, c2] = (-0.0, 0.0) if j % 2 else (0.0, -0.0)
            sparse[0, 0, r, max(c - 1, 0)] = 0.0 if j % 2 else -0.0
            bits[0, 1, r, c] = quiet + bits.dtype.type(2 * j + 1)
            bits[0, 1, min(r + 1, H - 1), c2] = quiet + bits.dtype.type(2 * j + 2)
        sparse[1, 0] = np.maximum(sparse[1, 0], 0)  # +0.0 ties only: separably throughout
        sparse[1, 1] = -np.inf
        # plane (1, 2): diagonal -0.0 / +0.0 ties on -1s, where each column's maximum first
        # and the rule in row-major order keep different zeros (a tie within one row keeps the
        # same first zero either way)
        sparse[1, 2] = -1
        for j, (r, c) in enumerate([(0, 0), (H // 2, W // 2), (H - 2, W - 2), (H // 3, 0)]):
            if 0 <= r < H - 1 and 0 <= c < W - 1:
                sparse[1, 2, r, c + 1] = -0.0 if j % 2 == 0 else 0.0  # first in row-major order
                sparse[1, 2, r + 1, c] = 0.0 if j % 2 == 0 else -0.0  # first in its column
        dense = [_value_data(rng, (1, 2, H, W), dtype)] if H >= 4 else []  # (its layout's size)
        for x in [sparse, *dense]:
            try:
                want = _values_by_the_rule(x, k, s, p, ceil)
            except ValueError:  # kernel larger than this shape
                continue
            if W < 100:
                ry, _ = ref.max_pool2d(x, k, s, p, 1, ceil)
                np.testing.assert_array_equal(want, ry.astype(dtype), err_msg=str((H, W)))


def _avg_in_order(x, k, s, p, ceil, include_pad, divisor):
    """Average pooling as the kernels define it, in x's dtype: each window's taps inside the
    plane added from 0 in row-major order, one IEEE addition at a time, then divided once by
    reference.py's divisor."""
    N, C, H, W = x.shape
    wins = list(ref._avg_windows(H, W, k, s, p, ceil, include_pad, divisor))
    OH, OW = wins[0][5]
    y = np.zeros((N, C, OH, OW), x.dtype)
    for oh, ow, rows, cols, div, _ in wins:
        acc = np.zeros((N, C), x.dtype)
        with np.errstate(invalid="ignore"):  # inf + -inf
            for r in rows:
                for c in cols:
                    acc = acc + x[:, :, r, c]
        y[:, :, oh, ow] = acc / x.dtype.type(div) if rows and cols else 0
    return y


@pytest.mark.parametrize("k,s,p,ceil", SEPARABLE_CASES)
@pytest.mark.parametrize("include_pad,divisor", [(True, None), (False, None), (True, 5)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_avg_rows_same_additions(k, s, p, ceil, include_pad, divisor, dtype):
    """Average pooling without dilation (but the 2x2 stride-2 loop) sums a work item's rows in
    one call (isa/pool.inc's cvx_pl_vavg_sep: each window row copied with zeros outside the
    plane, the taps added in order over every output of a row; at stride 1 with kw = 2*pw + 1
    runs of whole rows read in place, the first and last pw outputs of each row summed again
    from their own row), then divides each output by its divisor. The same additions in the
    same order as the oracle here, so the same values (float32 rounding, infinities, NaN where
    they meet, the sign of zero sums), one plane split into row blocks, one and two threads."""
    rng = np.random.default_rng(43)
    for H, W in [(32, 32), (9, 33), (40, 5), (3, 700), (1, 9), (9, 1), (64, 17)]:
        x = rng.standard_normal((2, 3, H, W)).astype(dtype)
        x[0, 1] = np.round(x[0, 1])  # sums that cancel to zero
        x[1, 0].flat[:: max(1, H * W // 7)] = -0.0
        x[1, 1].flat[:: max(1, H * W // 5)] = np.inf
        x[1, 1].flat[1 :: max(1, H * W // 4)] = -np.inf
        x[1, 2].flat[:: max(1, H * W // 3)] = np.nan
        try:
            want = _avg_in_order(x, k, s, p, ceil, include_pad, divisor)
        except IndexError:  # kernel larger than this shape
            continue
        try:
            for n in (1, 2):
                convext.set_num_threads(n)
                for got in (
                    F.avg_pool2d(x, k, s, p, ceil, include_pad, divisor),
                    np.concatenate(
                        [
                            F.avg_pool2d(x[:, c : c + 1], k, s, p, ceil, include_pad, divisor)
                            for c in range(3)
                        ],
                        axis=1,
                    ),
                ):
                    np.testing.assert_array_equal(got, want, err_msg=str((H, W, n)))
                    zero = want == 0
                    assert np.array_equal(np.signbit(got[zero]), np.signbit(want[zero]))
        finally:
            convext.set_num_threads(None)


@pytest.mark.parametrize("k,s,p,d,ceil", VALUE_CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_values_only_same_bits_as_with_indices(k, s, p, d, ceil, dtype):
    rng = np.random.default_rng(11)
    for shape in [(2, 3, 7, 9), (1, 2, 9, 150), (1, 1, 8, 2 * 128 + 7)]:
        x = _value_data(rng, shape, dtype)
        try:
            y, idx = F.max_pool2d(x, k, s, p, d, ceil, return_indices=True)
        except ValueError:  # kernel larger than this shape
            continue
        v = F.max_pool2d(x, k, s, p, d, ceil)
        assert v.dtype == dtype and v.shape == y.shape
        np.testing.assert_array_equal(_bits(v), _bits(y), err_msg=str(shape))
        ry, _ = ref.max_pool2d(x, k, s, p, d, ceil)
        np.testing.assert_array_equal(v, ry.astype(dtype), err_msg=str(shape))
        # the NaN kept is the window's last one: its payload, as the indices say
        flat = x.reshape(shape[0] * shape[1], -1)
        picked = np.where(
            idx >= 0,
            np.take_along_axis(flat, np.maximum(idx, 0).reshape(flat.shape[0], -1), axis=1).reshape(
                idx.shape
            ),
            -np.inf,
        ).astype(dtype)
        np.testing.assert_array_equal(_bits(v), _bits(picked), err_msg=str(shape))
    # unbatched, and thread counts
    x = _value_data(rng, (3, 40, 41), dtype)
    runs = []
    try:
        for n in (1, 2):
            convext.set_num_threads(n)
            runs.append(F.max_pool2d(x, k, s, p, d, ceil))
    finally:
        convext.set_num_threads(None)
    np.testing.assert_array_equal(_bits(runs[0]), _bits(runs[1]))
    np.testing.assert_array_equal(_bits(runs[0]), _bits(F.max_pool2d(x[None], k, s, p, d, ceil)[0]))


# Backward of a 2x2 stride-2 pool without padding: each plane whose indices all lie in their own
# windows is written as a gather (isa/pool.inc cvx_pl_back2), any other plane by the scatter.
# Oracle: np.add.at in the array's dtype, the scatter's additions in its order.
def _scatter(gy, idx, shape):
    N, C, H, W = shape
    gx = np.zeros((N * C, H * W), gy.dtype)
    g, i = gy.reshape(N * C, -1), idx.reshape(N * C, -1)
    for p in range(N * C):
        keep = i[p] >= 0
        np.add.at(gx[p], i[p][keep], g[p][keep])
    return gx.reshape(shape)


def _special_grads(rng, shape, dtype):
    g = rng.standard_normal(shape).astype(dtype)
    flat = g.reshape(-1)
    for value in (-0.0, 0.0, np.inf, -np.inf, np.nan):
        flat[rng.choice(flat.size, size=max(1, flat.size // 50), replace=False)] = value
    return g


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("h,w", [(8, 10), (9, 10), (8, 11), (9, 11), (2, 2), (3, 3), (6, 300)])
def test_max_backward_2x2_gather_vs_scatter(dtype, h, w):
    rng = np.random.default_rng(5)
    x = _value_data(rng, (2, 3, h, w), dtype)
    y, idx = F.max_pool2d(x, 2, 2, return_indices=True)
    gy = _special_grads(rng, y.shape, dtype)
    gx = F.max_pool2d_backward(gy, idx, x.shape)
    want = _scatter(gy, idx, x.shape)
    np.testing.assert_array_equal(_bits(gx), _bits(want))  # -0.0 becomes 0.0, as the scatter
    np.testing.assert_array_equal(gx, ref.max_pool2d_backward(gy, idx, x.shape).astype(dtype))
    runs = []
    try:
        for n in (1, 2):
            convext.set_num_threads(n)
            runs.append(F.max_pool2d_backward(gy, idx, x.shape))
    finally:
        convext.set_num_threads(None)
    np.testing.assert_array_equal(_bits(runs[0]), _bits(runs[1]))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_backward_2x2_shape_with_other_indices(dtype):
    """Indices of the 2x2 stride-2 shape that do not all lie in their own windows (in another
    window, shared, -1, first rows fine and a late row not, one plane of several): the same
    result as the scatter, and an index out of the plane is still an error."""
    rng = np.random.default_rng(6)
    shape = (2, 2, 9, 11)
    x = _value_data(rng, shape, dtype)
    _, idx = F.max_pool2d(x, 2, 2, return_indices=True)
    gy = _special_grads(rng, idx.shape, dtype)
    gy[np.isnan(gy)] = 1.5
    cases = []
    a = idx.copy()
    a[0, 0, 3, 2] = a[0, 0, 3, 1]  # two outputs add into one element (a late row of a plane)
    cases.append(a)
    a = idx.copy()
    a[1, 1, 0, 0] = 2 * 11 + 2  # an element of another window, in the first row
    cases.append(a)
    a = idx.copy()
    a[0, 1, 2, 4] = -1  # an empty window's index: skipped
    cases.append(a)
    a = idx.copy()
    a[0, 0, 1, 4] = 2 * 11 + 10  # the last column of an odd W (in no window)
    a[1, 0, 3, 0] = 8 * 11  # the last row of an odd H
    cases.append(a)
    a = idx.copy()
    a[:, :, :-1, 0] += 2 * 11  # the next output row's window
    cases.append(a)
    cases.append(np.zeros_like(idx))  # everything into element 0: one sum in output order
    for a in cases:
        gx = F.max_pool2d_backward(gy, a, shape)
        np.testing.assert_array_equal(_bits(gx), _bits(_scatter(gy, a, shape)))
        if not np.isnan(gy).any():
            np.testing.assert_allclose(
                gx, ref.max_pool2d_backward(gy, a, shape), rtol=1e-5 if dtype == np.float32 else 0
            )
    a = idx.copy()
    a[1, 1, 3, 4] = 9 * 11  # outside the plane
    with pytest.raises(ValueError, match="indices lie outside"):
        F.max_pool2d_backward(gy, a, shape)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_backward_repeated_indices_in_output_order(dtype):
    """The backward adds each grad_out to the element its index names in the order of the
    outputs, from 0: the same additions as np.add.at, bit for bit, for the indices of
    overlapping pools (3x3 at stride 2 and 1) and forged ones: consecutive outputs naming one
    element (a long run, broken by -1 and resumed), the same element again after another, a run
    ending at a plane's last output, a plane starting on the element the previous plane ended
    on (each plane its own), the whole plane into one element; grad_out with -0.0 (0 + -0.0 is
    0.0), +-inf and NaN payloads; an index outside the plane among them still an error."""
    rng = np.random.default_rng(9)
    for shape, k, s, p in (((2, 3, 15, 17), 3, 2, 1), ((2, 2, 9, 8), 3, 1, 1)):
        x = _value_data(rng, shape, dtype)
        _, idx = F.max_pool2d(x, k, s, p, return_indices=True)
        gy = _value_data(rng, idx.shape, dtype)
        H, W = shape[2:]
        flat = idx.reshape(idx.shape[0] * idx.shape[1], -1)
        cases = [idx]
        a = flat.copy()
        a[0, 3:20] = 7  # a long run
        a[0, 20:23] = -1  # broken by empty windows
        a[0, 23:26] = 7  # and resumed: gx[7] read back after its store
        a[1, 5:9] = a[1, 4]  # a run starting at a real index
        a[1, -4:] = H * W - 1  # a run ending the plane
        a[2, :] = 0  # the whole plane into one element
        a[3, 0] = a[2, -1]  # the next plane starts on the previous plane's run's element
        cases.append(a.reshape(idx.shape))
        b = flat.copy()
        b[:, ::2] = b[:, :1]  # one element every other output: runs of one, read back often
        cases.append(b.reshape(idx.shape))
        for c in cases:
            gx = F.max_pool2d_backward(gy, c, shape)
            np.testing.assert_array_equal(_bits(gx), _bits(_scatter(gy, c, shape)))
            runs = []
            try:
                for n in (1, 2):
                    convext.set_num_threads(n)
                    runs.append(F.max_pool2d_backward(gy, c, shape))
            finally:
                convext.set_num_threads(None)
            np.testing.assert_array_equal(_bits(runs[0]), _bits(runs[1]))
        a = flat.copy()
        a[1, 10:14] = 5
        a[1, 12] = H * W  # outside the plane, inside a run
        with pytest.raises(ValueError, match="1 indices lie outside"):
            F.max_pool2d_backward(gy, a.reshape(idx.shape), shape)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("h,w", [(8, 10), (9, 10), (8, 11), (9, 11), (2, 2), (3, 3), (6, 300)])
def test_avg_backward_2x2_writes_every_element(dtype, h, w):
    """The 2x2 stride-2 average backward writes each grad element once (no zeroing pass): the
    windows get 0 + grad_out / 4, the last row and column of an odd size 0, whatever the
    memory held (freed NaN-filled arrays first)."""
    rng = np.random.default_rng(8)
    gy = _special_grads(rng, (2, 3, h // 2, w // 2), dtype)
    for _ in range(3):
        junk = np.full((2, 3, h, w), np.nan, dtype)
        del junk
        gx = F.avg_pool2d_backward(gy, (2, 3, h, w), 2)
        want = np.zeros((2, 3, h, w), dtype)
        quarter = (0 + gy / dtype(4)).repeat(2, axis=2).repeat(2, axis=3)
        want[..., : 2 * (h // 2), : 2 * (w // 2)] = quarter
        np.testing.assert_array_equal(_bits(gx), _bits(want))
        np.testing.assert_array_equal(
            gx, ref.avg_pool2d_backward(gy, (2, 3, h, w), 2).astype(dtype)
        )


# --- errors ------------------------------------------------------------------------------------


def test_the_kept_pooling_geometry_keeps_every_check():
    """The pooling geometry of plain arguments is kept (_validation.keep_plain_results): a value
    equal to a kept one but of another type is still checked, and errors come on every call."""
    x = np.ones((1, 2, 5, 6))
    want = F.avg_pool2d(x, 2, ceil_mode=True)
    F.max_pool2d(x, 2, 2)
    for call, name in (
        (lambda: F.avg_pool2d(x, 2, ceil_mode=1), "ceil_mode"),
        (lambda: F.max_pool2d(x, 2, 2.0), "stride"),
        (lambda: F.max_pool2d(x, True), "kernel_size"),
    ):
        with pytest.raises(TypeError, match=name):
            call()
    same = F.avg_pool2d(x, [2, 2], (np.int64(2), 2), ceil_mode=np.bool_(True))
    np.testing.assert_array_equal(same, want)
    for _ in range(2):
        with pytest.raises(ValueError, match="half of the kernel"):
            F.max_pool2d(x, 3, 1, 2)


@pytest.mark.parametrize(
    "call,exc,match",
    [
        (lambda x: F.max_pool2d(x, 3, 1, 2), ValueError, "padding .* half of the kernel"),
        (lambda x: F.avg_pool2d(x, 2, 1, 2), ValueError, "padding .* half of the kernel"),
        (lambda x: F.max_pool2d(x, 9), ValueError, r"larger than the padded input.*\(1, 2, 5, 6\)"),
        (lambda x: F.avg_pool2d(x, (2, 9)), ValueError, "larger than the padded input"),
        (lambda x: F.max_pool2d(x, 0), ValueError, "kernel_size"),
        (lambda x: F.max_pool2d(x, 2, 0), ValueError, "stride"),
        (lambda x: F.max_pool2d(x, 2, -1), ValueError, "stride"),
        (lambda x: F.max_pool2d(x, 2, 2, -1), ValueError, "padding"),
        (lambda x: F.max_pool2d(x, 2, dilation=0), ValueError, "dilation"),
        (lambda x: F.max_pool2d(x, 2.5), TypeError, "kernel_size"),
        (lambda x: F.max_pool2d(x[0, 0], 2), ValueError, r"x must be 3 or 4-dimensional.*\(5, 6\)"),
        (lambda x: F.avg_pool2d(x[None], 2), ValueError, "x must be 3 or 4-dimensional"),
        (lambda x: F.max_pool2d(x.astype(np.int32), 2), TypeError, "x must have dtype"),
        (lambda x: F.avg_pool2d(x, 2, divisor_override=0), ValueError, "divisor_override"),
        (lambda x: F.avg_pool2d(x, 2, ceil_mode=1), TypeError, "ceil_mode"),
        (
            lambda x: F.avg_pool2d_backward(np.zeros((1, 2, 3, 3)), x.shape, 2),
            ValueError,
            r"grad_out must have shape \(1, 2, 2, 3\)",
        ),
        (
            lambda x: F.avg_pool2d_backward(np.zeros((1, 2, 2, 3)), (2, 5, 6, 1, 1), 2),
            ValueError,
            "input_shape",
        ),
        (lambda x: F.lp_pool2d(x, 0, 2), ValueError, "norm_type"),
        (lambda x: F.lp_pool2d(x, -np.inf, 2), ValueError, "norm_type"),
        (
            lambda x: F.lp_pool2d_backward(np.zeros((1, 2, 2, 3)), x, np.zeros((1, 2, 2, 2)), 2, 2),
            ValueError,
            "out must have shape",
        ),
        (
            lambda x: F.lp_pool2d_backward(
                np.zeros((1, 2, 2, 3), np.float32), x, np.zeros((1, 2, 2, 3)), 2, 2
            ),
            TypeError,
            "dtype",
        ),
        (
            lambda x: F.max_pool2d(np.zeros((1, 2, 0, 6)), 2, 2, 1),
            ValueError,
            r"non-empty channels.*\(1, 2, 0, 6\)",
        ),
        (lambda x: F.avg_pool2d(np.zeros((2, 0, 4, 4)), 2), ValueError, "non-empty channels"),
        (
            lambda x: F.global_avg_pool2d_backward(np.zeros((1, 2, 2, 1)), x.shape),
            ValueError,
            "grad_out must have shape",
        ),
    ],
)
def test_errors(call, exc, match):
    x = np.zeros((1, 2, 5, 6))
    with pytest.raises(exc, match=match):
        call(x)
