"""conv2d and conv2d_backward against the naive oracle and finite differences (the PyTorch
comparisons: tests/parity/test_parity_conv.py)."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

import convext
import reference as R
from cases import NONFINITE_CONV, conv_cases
from convext import conv2d, conv2d_backward, conv_output_size

SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def f32_close(out, ref):
    """docs/reliability.md: max|out32 - ref64| <= 1e-5 * max(1, max|ref64|)."""
    assert out.dtype == np.float32
    scale = max(1.0, float(np.abs(ref).max(initial=0.0)))
    assert float(np.abs(out.astype(np.float64) - ref).max(initial=0.0)) <= 1e-5 * scale


# --------------------------------------------------------------------------------- forward


@SETTINGS
@given(conv_cases())
def test_forward_float64_matches_naive(case):
    x, w, b, kw = case
    y = conv2d(x, w, b, **kw)
    ref = R.conv2d(x, w, b, **kw)
    assert y.shape == ref.shape and y.dtype == np.float64
    np.testing.assert_allclose(y, ref, rtol=1e-10, atol=1e-12)


@settings(max_examples=60, deadline=None)
@given(conv_cases())
def test_the_tap_oracle_agrees_with_the_pixel_oracle(case):
    """reference.conv2d and conv2d_grads sum one tap at a time over every output pixel; they
    agree with the textbook loops over single output pixels that they replace for speed."""
    x, w, b, kw = case
    y = R.conv2d(x, w, b, **kw)
    np.testing.assert_allclose(y, R.conv2d_by_pixels(x, w, b, **kw), rtol=1e-12, atol=1e-12)
    gy = np.random.default_rng(1).standard_normal(y.shape)
    for got, want in zip(
        R.conv2d_grads(gy, x, w, **kw), R.conv2d_grads_by_pixels(gy, x, w, **kw), strict=True
    ):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


@settings(max_examples=60, deadline=None)
@given(conv_cases())
def test_gradients_float64_match_naive(case):
    x, w, b, kw = case
    y = R.conv2d(x, w, b, **kw)
    gy = np.random.default_rng(1).standard_normal(y.shape)
    gx, gw, gb = conv2d_backward(gy, x, w, **kw)
    rx, rw, rb = R.conv2d_grads(gy, x, w, **kw)
    np.testing.assert_allclose(gx, rx, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(gw, rw, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(gb, rb, rtol=1e-10, atol=1e-12)


@settings(max_examples=60, deadline=None)
@given(conv_cases())
def test_float32_within_tolerance(case):
    x, w, b, kw = case
    x32, w32 = x.astype(np.float32), w.astype(np.float32)
    b32 = None if b is None else b.astype(np.float32)
    # the float64 reference of the float32-rounded inputs
    ref = R.conv2d(x32, w32, b32, **kw)
    f32_close(conv2d(x32, w32, b32, **kw), ref)
    gy = np.random.default_rng(2).standard_normal(ref.shape).astype(np.float32)
    gx, gw, gb = conv2d_backward(gy, x32, w32, **kw)
    rx, rw, rb = R.conv2d_grads(gy, x32, w32, **kw)
    f32_close(gx, rx)
    f32_close(gw, rw)  # sums over N*OH*OW terms: the tolerance scales with max|ref|
    f32_close(gb, rb)


LARGE = [  # shapes big enough to cross GEMM tiles, channel blocks and thread splits
    ((3, 20, 30, 27), (24, 20, 3, 5), dict(stride=1, padding=(1, 2))),
    ((2, 16, 33, 35), (32, 8, 3, 3), dict(stride=(2, 1), padding=1, groups=2)),
    ((2, 64, 23, 25), (40, 64, 1, 1), {}),
    ((2, 12, 40, 41), (12, 1, 3, 3), dict(padding="same", groups=12, dilation=2)),
    ((1, 9, 50, 31), (7, 9, 4, 2), dict(padding="same")),
    ((2, 130, 9, 11), (5, 130, 3, 3), dict(stride=3, padding=2)),
]


@pytest.mark.parametrize("xs, ws, kw", LARGE)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_large_shapes(xs, ws, kw, dtype):
    rng = np.random.default_rng(3)
    x = rng.standard_normal(xs).astype(dtype)
    w = rng.standard_normal(ws).astype(dtype)
    b = rng.standard_normal(ws[0]).astype(dtype)
    ref = R.conv2d(x, w, b, **kw)
    y = conv2d(x, w, b, **kw)
    gy = rng.standard_normal(ref.shape).astype(dtype)
    got = conv2d_backward(gy, x, w, **kw)
    want = R.conv2d_grads(gy, x, w, **kw)
    if dtype == np.float64:
        np.testing.assert_allclose(y, ref, rtol=1e-10, atol=1e-10)
        for a, r in zip(got, want, strict=True):
            np.testing.assert_allclose(a, r, rtol=1e-10, atol=1e-10)
    else:
        f32_close(y, ref)
        for a, r in zip(got, want, strict=True):
            f32_close(a, r)


# --------------------------------------------------------------------- finite differences

FD_CASES = [
    ((2, 3, 6, 7), (4, 3, 3, 2), dict(stride=(2, 1), padding=(1, 0))),
    ((1, 4, 7, 6), (4, 2, 2, 3), dict(padding="same", dilation=(2, 1), groups=2)),
    ((2, 3, 5, 5), (6, 1, 3, 3), dict(padding=1, groups=3, stride=2)),
    ((1, 2, 8, 5), (3, 2, 2, 2), dict(padding="same")),
]


@pytest.mark.parametrize("xs, ws, kw", FD_CASES)
def test_gradients_by_central_differences(xs, ws, kw):
    rng = np.random.default_rng(4)
    x = rng.standard_normal(xs)
    w = rng.standard_normal(ws)
    b = rng.standard_normal(ws[0])
    gy = rng.standard_normal(conv2d(x, w, b, **kw).shape)

    def loss(xv, wv, bv):
        return float(np.sum(conv2d(xv, wv, bv, **kw) * gy))

    gx, gw, gb = conv2d_backward(gy, x, w, **kw)
    for got, num in (
        (gx, R.numerical_grad(lambda v: loss(v, w, b), x)),
        (gw, R.numerical_grad(lambda v: loss(x, v, b), w)),
        (gb, R.numerical_grad(lambda v: loss(x, w, v), b)),
    ):
        np.testing.assert_allclose(got, num, atol=1e-5, rtol=1e-3)


# ----------------------------------------------------------------------------- edge shapes


def test_batch_zero_gives_empty_output_and_zero_gradients():
    x = np.zeros((0, 3, 8, 8))
    w = np.ones((4, 3, 3, 3))
    y = conv2d(x, w, np.ones(4), padding=1)
    assert y.shape == (0, 4, 8, 8)
    gx, gw, gb = conv2d_backward(np.zeros((0, 4, 8, 8)), x, w, padding=1)
    assert gx.shape == x.shape
    assert np.array_equal(gw, np.zeros_like(w)) and np.array_equal(gb, np.zeros(4))


def test_kernel_equal_to_padded_input_gives_1x1():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 3, 5, 4))
    w = rng.standard_normal((2, 3, 7, 6))
    y = conv2d(x, w, padding=1)
    assert y.shape == (2, 2, 1, 1)
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    np.testing.assert_allclose(y[:, :, 0, 0], np.einsum("nchw,fchw->nf", xp, w), rtol=1e-12)


def test_1x1_kernel_is_a_matmul():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((3, 10, 6, 5))
    w = rng.standard_normal((7, 10, 1, 1))
    y = conv2d(x, w)
    np.testing.assert_allclose(y, np.einsum("fc,nchw->nfhw", w[:, :, 0, 0], x), rtol=1e-12)


def test_stride_larger_than_kernel():
    rng = np.random.default_rng(8)
    x = rng.standard_normal((2, 2, 11, 13))
    w = rng.standard_normal((3, 2, 2, 2))
    y = conv2d(x, w, stride=(4, 5), padding=1)
    np.testing.assert_allclose(y, R.conv2d(x, w, stride=(4, 5), padding=1), rtol=1e-10)


@pytest.mark.parametrize("k, d", [((2, 4), (1, 1)), ((4, 3), (1, 2)), ((2, 2), (3, 1))])
def test_same_with_even_kernel_equals_explicit_asymmetric_padding(k, d):
    rng = np.random.default_rng(9)
    x = rng.standard_normal((2, 3, 7, 8))
    w = rng.standard_normal((2, 3) + k)
    y = conv2d(x, w, padding="same", dilation=d)
    assert y.shape[2:] == x.shape[2:]
    (t, b_), (left, r) = R.pad_same(k[0], d[0]), R.pad_same(k[1], d[1])
    xp = np.pad(x, ((0, 0), (0, 0), (t, b_), (left, r)))
    np.testing.assert_allclose(y, conv2d(xp, w, padding=0, dilation=d), rtol=1e-12)
    gy = rng.standard_normal(y.shape)
    gx = conv2d_backward(gy, x, w, padding="same", dilation=d)[0]
    gxp = conv2d_backward(gy, xp, w, dilation=d)[0]
    np.testing.assert_allclose(gx, gxp[:, :, t : t + 7, left : left + 8], rtol=1e-12)


def test_valid_equals_padding_zero():
    rng = np.random.default_rng(10)
    x = rng.standard_normal((2, 3, 7, 8))
    w = rng.standard_normal((2, 3, 3, 2))
    np.testing.assert_array_equal(conv2d(x, w, padding="valid"), conv2d(x, w, padding=0))


def test_unbatched_input():
    rng = np.random.default_rng(11)
    x = rng.standard_normal((3, 7, 8))
    w = rng.standard_normal((2, 3, 3, 3))
    y = conv2d(x, w, padding=1)
    np.testing.assert_allclose(y, conv2d(x[None], w, padding=1)[0], rtol=0, atol=0)
    gy = rng.standard_normal(y.shape)
    gx, gw, _ = conv2d_backward(gy, x, w, padding=1)
    gx4, gw4, _ = conv2d_backward(gy[None], x[None], w, padding=1)
    assert gx.shape == x.shape
    np.testing.assert_array_equal(gx, gx4[0])
    np.testing.assert_array_equal(gw, gw4)


def test_gradients_not_asked_for_are_none():
    x = np.ones((1, 2, 4, 4))
    w = np.ones((3, 2, 2, 2))
    gy = np.ones((1, 3, 3, 3))
    assert conv2d_backward(gy, x, w, needs_input_grad=False)[0] is None
    gx, gw, gb = conv2d_backward(gy, x, w, needs_weight_grad=False, needs_bias_grad=False)
    assert gx is not None and gw is None and gb is None


def test_conv_output_size():
    assert conv_output_size(28, 5, padding=2) == 28
    assert conv_output_size(56, 3, stride=2, padding=1) == 28
    assert conv_output_size(64, 3, padding=2, dilation=2) == 64
    assert conv_output_size(10, 3, padding="same") == 10
    assert conv_output_size(10, 3, padding="valid") == 8
    assert conv_output_size((10, 9), (3, 2), stride=(2, 1)) == (4, 8)
    with pytest.raises(ValueError, match="stride"):
        conv_output_size(10, 3, stride=2, padding="same")


@pytest.mark.parametrize(
    "args, name",
    [
        ((5, 3, 0), "stride"),  # was a ZeroDivisionError
        ((5, 3, -1), "stride"),  # was -1
        ((5, 0), "kernel_size"),  # was 6
        ((5, 3, 1, 0, -5), "dilation"),  # was 15
        ((5, 3, 1, -5), "padding"),  # was -7
        ((0, 3), "size"),
        ((5, 3, 1, 0, 2**41), "dilation"),
    ],
)
def test_conv_output_size_checks_one_axis_as_it_checks_pairs(args, name):
    """The scalar form follows the pair form's rules (ValueError naming the argument), where it
    used to divide by zero or return nonsense for a zero, negative or huge value."""
    with pytest.raises(ValueError, match=rf"^{name}\b"):
        conv_output_size(*args)
    pair = tuple((a, a) if isinstance(a, int) else a for a in args)
    with pytest.raises(ValueError, match=rf"^{name}\b"):
        conv_output_size(*pair)


# ---------------------------------------------------------------------------------- layouts


def _layouts(a):
    big = np.zeros((a.shape[0] + 1,) + tuple(2 * s for s in a.shape[1:]), a.dtype)
    big[: a.shape[0], ::2, ::2, ::2] = a
    sliced = big[: a.shape[0], ::2, ::2, ::2]
    neg = np.ascontiguousarray(a[:, :, ::-1, ::-1])[:, :, ::-1, ::-1]
    fortran = np.asfortranarray(a)
    transposed = np.ascontiguousarray(a.transpose(0, 1, 3, 2)).transpose(0, 1, 3, 2)
    ro = a.copy()
    ro.flags.writeable = False
    return {
        "sliced": sliced,
        "negative": neg,
        "fortran": fortran,
        "transposed": transposed,
        "readonly": ro,
    }


@pytest.mark.parametrize("layout", ["sliced", "negative", "fortran", "transposed", "readonly"])
def test_any_memory_layout_gives_the_same_result(layout):
    rng = np.random.default_rng(12)
    x = rng.standard_normal((2, 4, 9, 7)).astype(np.float32)
    w = rng.standard_normal((6, 2, 3, 2)).astype(np.float32)
    kw = dict(stride=(2, 1), padding=1, groups=2)
    y = conv2d(x, w, **kw)
    gy = rng.standard_normal(y.shape).astype(np.float32)
    want = conv2d_backward(gy, x, w, **kw)
    xv, wv, gyv = _layouts(x)[layout], _layouts(w)[layout], _layouts(gy)[layout]
    np.testing.assert_array_equal(conv2d(xv, wv, **kw), y)
    for a, b in zip(conv2d_backward(gyv, xv, wv, **kw), want, strict=True):
        np.testing.assert_array_equal(a, b)


def test_out_argument():
    rng = np.random.default_rng(13)
    x = rng.standard_normal((2, 3, 6, 6))
    w = rng.standard_normal((4, 3, 3, 3))
    out = np.full((2, 4, 4, 4), np.nan)
    res = conv2d(x, w, out=out)
    assert res is out
    np.testing.assert_allclose(out, R.conv2d(x, w), rtol=1e-10)
    # a non-contiguous out is written through a temporary
    big = np.full((2, 4, 4, 8), np.nan)
    view = big[..., ::2]
    conv2d(x, w, out=view)
    np.testing.assert_allclose(view, R.conv2d(x, w), rtol=1e-10)
    assert np.isnan(big[..., 1::2]).all()


def test_bad_out_is_untouched():
    x = np.ones((2, 3, 6, 6))
    w = np.ones((4, 3, 3, 3))
    out = np.full((2, 4, 4, 4), np.nan)
    with pytest.raises(ValueError, match="weight"):
        conv2d(x, np.ones((4, 2, 3, 3)), out=out)
    with pytest.raises(ValueError, match="out"):
        conv2d(x, w, out=np.full((2, 4, 4, 5), np.nan))
    with pytest.raises(TypeError, match="out"):
        conv2d(x, w, out=out.astype(np.float32))
    assert np.isnan(out).all()


# ------------------------------------------------------------------------------- threads


def test_thread_count_does_not_change_results():
    rng = np.random.default_rng(14)
    # (each large enough to run in parallel: see convext._config.SERIAL_WORK["macs"])
    cases = [
        ((4, 16, 20, 20), (32, 16, 3, 3), dict(padding=1)),
        ((4, 16, 40, 40), (16, 1, 3, 3), dict(padding=1, groups=16)),
        ((2, 32, 12, 12), (64, 32, 1, 1), {}),
        # batch 1 on a small plane, GEMM route: filter blocks in forward and grad_weight
        ((1, 320, 7, 7), (64, 320, 1, 1), {}),
        ((1, 300, 5, 5), (40, 300, 3, 3), dict(padding=1)),
        # several images side by side in the forward GEMM's columns (a 1x1 kernel: from 385
        # input channels on)
        ((6, 400, 7, 7), (48, 400, 1, 1), {}),
    ]
    old = convext.get_num_threads()
    try:
        for xs, ws, kw in cases:
            x = rng.standard_normal(xs).astype(np.float32)
            w = rng.standard_normal(ws).astype(np.float32)
            results = []
            for n in (1, 2, 3):
                convext.set_num_threads(n)
                y = conv2d(x, w, **kw)
                results.append((y,) + conv2d_backward(np.ones_like(y), x, w, **kw))
            for other in results[1:]:
                for a, b in zip(results[0], other, strict=True):
                    np.testing.assert_array_equal(a, b)
    finally:
        convext.set_num_threads(old)


# -------------------------------------------------------------------------------- errors

X = np.ones((2, 4, 8, 8))
W = np.ones((6, 2, 3, 3))

ERRORS = [
    (dict(x=np.ones((4, 8))), ValueError, r"x must be 3 or 4-dimensional.*\(4, 8\)"),
    (dict(weight=np.ones((6, 2, 3))), ValueError, r"weight must be 4-dimensional"),
    (dict(x=np.ones((2, 4, 8, 8), np.int64)), TypeError, r"x must have dtype float32, float64"),
    (dict(weight=W.astype(np.float32)), TypeError, r"weight must have the same dtype"),
    (dict(bias=np.ones(6, np.float32)), TypeError, r"bias must have the same dtype"),
    (dict(groups=1), ValueError, r"x has 4 channels.*\(6, 2, 3, 3\).*expects 2"),
    (dict(groups=4), ValueError, r"groups=4 must divide.*\(6, 2, 3, 3\)"),
    (dict(groups=0), ValueError, r"groups must be a positive int"),
    (dict(groups=1.5), TypeError, r"groups must be an int"),
    (dict(padding=-1), ValueError, r"padding must be non-negative"),
    (dict(padding=(1, -1)), ValueError, r"padding must be non-negative"),
    (dict(padding="full"), ValueError, r"padding must be .*'valid' or 'same'.*'full'"),
    (dict(padding="same", stride=2), ValueError, r"padding='same'.*stride"),
    (dict(stride=0), ValueError, r"stride must be >= 1"),
    (dict(stride=(1, 2, 3)), ValueError, r"stride must be an int or a pair"),
    (dict(dilation=0), ValueError, r"dilation must be >= 1"),
    (dict(bias=np.ones(5)), ValueError, r"bias must have shape \(6,\).*\(5\)"),
    (dict(bias=np.ones((6, 1))), ValueError, r"bias must be 1-dimensional"),
    (dict(weight=np.ones((6, 2, 9, 3))), ValueError, r"kernel .*larger than the padded input"),
    (dict(dilation=5), ValueError, r"kernel \(11 x 11.*larger than the padded input \(8 x 8\)"),
    (dict(x=None), TypeError, r"x must be an array"),
]


@pytest.mark.parametrize("kwargs, exc, msg", ERRORS)
def test_conv2d_errors(kwargs, exc, msg):
    args = dict(x=X, weight=W, bias=None, stride=1, padding=0, dilation=1, groups=2)
    args.update(kwargs)
    with pytest.raises(exc, match=msg):
        conv2d(**args)


def test_the_geometry_cache_keeps_every_check():
    """conv2d keeps the geometry of plain arguments (ints, strs, tuples of ints): a value that
    equals a cached one but is of another type is still validated, and an error is raised on
    every call, not only the first."""
    ok = dict(x=X, weight=W, bias=None, stride=1, padding=1, dilation=1, groups=2)
    want = conv2d(**ok)  # cached now
    for name, bad in (
        ("stride", True),
        ("stride", 1.0),
        ("padding", np.bool_(True)),
        ("dilation", (1, 1.0)),
        ("groups", 2.0),
    ):
        with pytest.raises(TypeError, match=name):
            conv2d(**dict(ok, **{name: bad}))
    # numpy ints and lists are validated (uncached) and give the same result
    same = dict(ok, stride=np.int64(1), padding=[1, 1], dilation=(np.int32(1), 1))
    np.testing.assert_array_equal(conv2d(**same), want)
    for _ in range(2):
        with pytest.raises(ValueError, match="padding must be non-negative"):
            conv2d(**dict(ok, padding=-1))
        with pytest.raises(ValueError, match=r"bias must have shape \(6,\)"):
            conv2d(**dict(ok, bias=np.ones(5)))


def test_backward_errors():
    with pytest.raises(ValueError, match=r"grad_out must have the output's shape \(2, 6, 6, 6\)"):
        conv2d_backward(np.ones((2, 6, 5, 6)), X, W, groups=2)
    with pytest.raises(TypeError, match="grad_out must have the same dtype"):
        conv2d_backward(np.ones((2, 6, 6, 6), np.float32), X, W, groups=2)
    with pytest.raises(ValueError, match="x has 4 channels"):
        conv2d_backward(np.ones((2, 6, 6, 6)), X, W)


def test_thread_setting_errors():
    with pytest.raises(ValueError, match="positive"):
        convext.set_num_threads(0)
    with pytest.raises(TypeError):
        convext.set_num_threads("2")


# --------------------------------------------------------------------- regression cases


@pytest.mark.parametrize(
    "dtype, xs, ws",
    [
        (np.float64, (1, 32, 24, 24), (1, 32, 5, 5)),  # tile width once depended on the threads
        (np.float64, (1, 64, 32, 32), (8, 64, 3, 3)),
        (np.float32, (2, 64, 30, 30), (4, 64, 3, 3)),
        # the weight gradient's GEMM blocks split into blocks of input channels on 2 and 3
        # threads: images side by side (7x7), and a 1x1 kernel read in place
        (np.float32, (16, 96, 7, 7), (24, 96, 3, 3)),
        (np.float64, (2, 80, 9, 9), (40, 80, 1, 1)),
    ],
)
def test_grad_input_bitwise_identical_across_thread_counts(dtype, xs, ws):
    rng = np.random.default_rng(15)
    x = rng.standard_normal(xs).astype(dtype)
    w = rng.standard_normal(ws).astype(dtype)
    pad = ws[2] // 2
    gy = rng.standard_normal(conv2d(x, w, padding=pad).shape).astype(dtype)
    old = convext.get_num_threads()
    try:
        got = []
        for n in (1, 2, 3):
            convext.set_num_threads(n)
            got.append(conv2d_backward(gy, x, w, padding=pad))
    finally:
        convext.set_num_threads(old)
    for other in got[1:]:
        for a, b in zip(got[0], other, strict=True):
            np.testing.assert_array_equal(a, b)


def test_empty_height_or_no_filters_are_errors():
    with pytest.raises(ValueError, match=r"x must have a non-empty height.*\(1, 1, 0, 3\)"):
        conv2d(np.ones((1, 1, 0, 3)), np.ones((1, 1, 1, 1)), padding=1)
    with pytest.raises(ValueError, match=r"weight must have at least one filter.*\(0, 2, 1, 1\)"):
        conv2d(np.ones((1, 2, 3, 3)), np.ones((0, 2, 1, 1)))


def test_no_input_channels_gives_the_bias():
    y = conv2d(np.ones((2, 0, 3, 3)), np.ones((2, 0, 1, 1)), np.array([1.0, -2.0]))
    assert y.shape == (2, 2, 3, 3)
    np.testing.assert_array_equal(y[:, 0], 1.0)
    np.testing.assert_array_equal(y[:, 1], -2.0)


def test_huge_stride_and_one_element_tuples():
    x = np.arange(2 * 3 * 5 * 5, dtype=np.float64).reshape(2, 3, 5, 5)
    w = np.ones((2, 3, 2, 2))
    np.testing.assert_array_equal(conv2d(x, w, stride=2**40), R.conv2d(x, w, stride=5))
    np.testing.assert_array_equal(
        conv2d(x, w, stride=(2,), padding=(1,)), conv2d(x, w, stride=2, padding=1)
    )


def test_big_endian_input_gives_the_same_values():
    rng = np.random.default_rng(16)
    x = rng.standard_normal((1, 2, 5, 5))
    w = rng.standard_normal((3, 2, 3, 3))
    np.testing.assert_array_equal(conv2d(x.astype(">f8"), w.astype(">f8")), conv2d(x, w))


# Direct route (few channels per group, not depthwise): shapes that select it.
DIRECT = [
    ((3, 1, 12, 13), (6, 1, 5, 5), dict(padding=2)),
    ((2, 6, 9, 11), (16, 6, 5, 5), {}),
    ((2, 3, 11, 10), (5, 3, 3, 3), dict(stride=2, padding=1)),
    ((2, 2, 13, 12), (9, 2, 3, 2), dict(stride=(3, 2), padding=(2, 1), dilation=(2, 3))),
    ((2, 4, 10, 9), (6, 2, 3, 3), dict(padding=1, groups=2)),
    ((1, 2, 17, 19), (3, 2, 7, 1), dict(padding=(3, 0), dilation=(1, 1))),
    ((2, 3, 8, 8), (32, 3, 1, 1), {}),
    ((2, 5, 9, 9), (2, 5, 4, 4), dict(padding="same")),
]


@pytest.mark.parametrize("xs, ws, kw", DIRECT)
def test_direct_route_matches_reference(xs, ws, kw):
    rng = np.random.default_rng(40)
    x = rng.standard_normal(xs)
    w = rng.standard_normal(ws)
    b = rng.standard_normal(ws[0])
    y = conv2d(x, w, b, **kw)
    ref = R.conv2d(x, w, b, **kw)
    np.testing.assert_allclose(y, ref, rtol=1e-10, atol=1e-10 * np.abs(ref).max())
    gy = rng.standard_normal(y.shape)
    gx, gw, gb = conv2d_backward(gy, x, w, **kw)
    rgx, rgw, rgb = R.conv2d_grads(gy, x, w, **kw)
    for a, r in ((gx, rgx), (gw, rgw), (gb, rgb)):
        np.testing.assert_allclose(a, r, rtol=1e-10, atol=1e-10 * np.abs(r).max())
    y32 = conv2d(x.astype(np.float32), w.astype(np.float32), b.astype(np.float32), **kw)
    assert y32.dtype == np.float32
    assert np.abs(y32 - ref).max() <= 1e-5 * max(1, np.abs(ref).max())
    _, gw32, _ = conv2d_backward(
        gy.astype(np.float32), x.astype(np.float32), w.astype(np.float32), **kw
    )
    assert np.abs(gw32 - rgw).max() <= 1e-5 * max(1, np.abs(rgw).max())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("xs, ws, kw", [DIRECT[0], DIRECT[1], DIRECT[3]])
def test_direct_route_is_the_same_for_every_thread_count(xs, ws, kw, dtype):
    rng = np.random.default_rng(41)
    x = rng.standard_normal((19,) + xs[1:]).astype(dtype)
    w = rng.standard_normal(ws).astype(dtype)
    b = rng.standard_normal(ws[0]).astype(dtype)
    gy = rng.standard_normal(conv2d(x, w, b, **kw).shape).astype(dtype)
    old = convext.get_num_threads()
    got = []
    try:
        for nt in (1, 2, 3):
            convext.set_num_threads(nt)
            got.append((conv2d(x, w, b, **kw),) + tuple(conv2d_backward(gy, x, w, **kw)))
    finally:
        convext.set_num_threads(old)
    for other in got[1:]:
        for a, c in zip(got[0], other, strict=True):
            np.testing.assert_array_equal(a, c)


@pytest.mark.parametrize(
    "where, idx, xs, ws, kw",
    NONFINITE_CONV
    + [
        ("x", (1, 2, 3, 8), (2, 3, 7, 9), (5, 3, 3, 3), dict(padding=1)),  # the direct route
        ("w", (2, 1, 0, 2), (2, 3, 7, 9), (5, 3, 3, 3), dict(padding=1)),
    ],
)
def test_non_finite_values_propagate_like_the_oracle(where, idx, xs, ws, kw):
    """inf in the input or the weight: inf and NaN (inf * 0 at the zero padding) exactly where
    the naive oracle has them, in the output and both gradients."""
    x = np.ones(xs)
    w = np.ones(ws)
    (x if where == "x" else w)[idx] = np.inf
    y = conv2d(x, w, **kw)
    gy = np.ones(y.shape)
    gx, gw, _ = conv2d_backward(gy, x, w, **kw)
    with np.errstate(invalid="ignore"):
        ry = R.conv2d(x, w, **kw)
        rgx, rgw, _ = R.conv2d_grads(gy, x, w, **kw)
    for a, b in ((y, ry), (gx, rgx), (gw, rgw)):
        np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
        np.testing.assert_array_equal(a[~np.isnan(a)], b[~np.isnan(b)])
