"""Explicit per-side padding (top, bottom, left, right) of conv2d and the pools, without torch.

The oracle is the definition: pad the input explicitly with np.pad (zeros for convolution and
average/power pooling, -inf for max pooling), then run the naive loops of tests/reference.py with
padding 0. Every convolution route is forced through ``_route``; gradients are checked against
the same oracle and against central differences."""

import numpy as np
import pytest

import convext.functional as F
import reference as ref
from convext._validation import MAX_EXTENT, conv_output_size
from convext.functional._common import Window

RNG = np.random.default_rng(12)
SIDES = [(0, 2, 1, 0), (2, 0, 0, 1), (1, 0, 2, 2), (0, 1, 0, 1), (3, 1, 0, 2)]


def _np_pad(x, pads, value=0.0):
    t, b, left, r = pads
    return np.pad(x, ((0, 0), (0, 0), (t, b), (left, r)), constant_values=value)


def _crop(a, pads):
    t, b, left, r = pads
    return a[:, :, t : a.shape[2] - b, left : a.shape[3] - r]


def _ceil_out(size, k, s, lo, hi, d=1):
    """The pooling ceil_mode length with per-side padding, written from its stated rule: round
    the span up, then drop a last window that starts past the input and its top/left padding."""
    span = size + lo + hi - d * (k - 1) - 1
    out = -(-span // s) + 1
    if (out - 1) * s >= size + lo:
        out -= 1
    return out


# --------------------------------------------------------------------------------- conv2d
CONV_CASES = [
    # (x shape, weight shape, stride, dilation, groups, pads)
    ((2, 3, 7, 6), (4, 3, 3, 3), 1, 1, 1, (0, 2, 1, 0)),
    ((2, 3, 7, 6), (4, 3, 3, 2), 2, 1, 1, (2, 0, 0, 1)),
    ((1, 4, 8, 9), (6, 2, 3, 3), (2, 3), (1, 2), 2, (1, 3, 2, 0)),
    ((2, 3, 6, 6), (3, 1, 3, 3), 1, 1, 3, (0, 1, 2, 1)),  # depthwise
    ((2, 3, 9, 7), (3, 1, 2, 3), 2, (2, 1), 3, (3, 0, 1, 2)),  # depthwise, stride, dilation
]


def _routes(pass_, groups, w_shape):
    depthwise = w_shape[1] == 1 and w_shape[0] == groups
    names = {
        "forward": ["gemm", "direct"],
        "grad_input": ["gemm"],
        "grad_weight": ["gemm", "direct"],
    }[pass_]
    return names + (["depthwise"] if depthwise else [])


@pytest.mark.parametrize("xs, ws, stride, dil, groups, pads", CONV_CASES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_conv2d_side_padding_equals_np_pad_on_every_route(xs, ws, stride, dil, groups, pads, dtype):
    x = RNG.standard_normal(xs).astype(dtype)
    w = RNG.standard_normal(ws).astype(dtype)
    b = RNG.standard_normal(ws[0]).astype(dtype)
    want = ref.conv2d(_np_pad(x, pads), w, b, stride, 0, dil, groups)
    tol = dict(rtol=1e-12, atol=1e-12) if dtype == np.float64 else dict(rtol=2e-5, atol=2e-5)
    for route in _routes("forward", groups, ws):
        got = F.conv2d(x, w, b, stride, pads, dil, groups, _route=route)
        assert got.dtype == dtype and got.shape == want.shape, route
        np.testing.assert_allclose(got, want, **tol, err_msg=route)


@pytest.mark.parametrize("xs, ws, stride, dil, groups, pads", CONV_CASES)
def test_conv2d_backward_side_padding_equals_np_pad_on_every_route(
    xs, ws, stride, dil, groups, pads
):
    x = RNG.standard_normal(xs)
    w = RNG.standard_normal(ws)
    gy = RNG.standard_normal(F.conv2d(x, w, None, stride, pads, dil, groups).shape)
    gxp, gw_want, gb_want = ref.conv2d_grads(gy, _np_pad(x, pads), w, stride, 0, dil, groups)
    gx_want = _crop(gxp, pads)
    for ri in _routes("grad_input", groups, ws):
        for rw in _routes("grad_weight", groups, ws):
            gx, gw, gb = F.conv2d_backward(
                gy, x, w, stride, pads, dil, groups, _route={"grad_input": ri, "grad_weight": rw}
            )
            np.testing.assert_allclose(gx, gx_want, rtol=1e-11, atol=1e-11, err_msg=ri)
            np.testing.assert_allclose(gw, gw_want, rtol=1e-11, atol=1e-11, err_msg=rw)
            np.testing.assert_allclose(gb, gb_want, rtol=1e-12, atol=1e-12)


# A 1x1 kernel at stride 1 with padding only at the bottom and/or right: the top and left
# padding are 0, yet the output is larger than the input. The direct route read such an input
# in place as if it were the output's size (out of bounds: wrong values, a SIGBUS on a mapped
# file), in the forward and in the input gradient (its forward convolution of grad_out).
POINTWISE_CASES = [
    ((1, 3, 2, 7), (1, 3, 1, 1), (0, 0, 0, 1)),
    ((2, 6, 3, 12), (4, 6, 1, 1), (0, 0, 0, 2)),
    ((1, 5, 4, 20), (3, 5, 1, 1), (0, 2, 0, 0)),
    ((2, 4, 5, 17), (8, 4, 1, 1), (0, 1, 0, 2)),
    ((1, 16, 6, 16), (16, 16, 1, 1), (0, 3, 0, 0)),
]
ALL_ROUTES = ("gemm", "direct", "valid_taps")


@pytest.mark.parametrize("xs, ws, pads", POINTWISE_CASES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_pointwise_bottom_right_padding_on_every_route(xs, ws, pads, dtype):
    from convext.functional import _routes

    x = RNG.standard_normal(xs).astype(dtype)
    w = RNG.standard_normal(ws).astype(dtype)
    tol = dict(rtol=1e-12, atol=1e-12) if dtype == np.float64 else dict(rtol=2e-5, atol=2e-5)
    want = ref.conv2d(_np_pad(x, pads), w, None, 1, 0, 1, 1)
    gy = RNG.standard_normal(want.shape).astype(dtype)
    gxp, gw_want, _ = ref.conv2d_grads(gy, _np_pad(x, pads), w, 1, 0, 1, 1)
    t, b, left, r = pads
    window = Window((1, 1), (1, 1), ((t, b), (left, r)), (1, 1), want.shape[2:], 1)
    s = _routes.conv_shape(x.shape, w.shape, window)
    ran = set()
    for route in (None,) + ALL_ROUTES:
        if route is None or _routes.accepts(route, "forward", s):
            got = F.conv2d(x, w, None, 1, pads, _route=route)
            np.testing.assert_allclose(got, want, **tol, err_msg=str(route))
            ran.add(("forward", route))
        if route is None or _routes.accepts(route, "grad_input", s):
            gx, gw, _ = F.conv2d_backward(
                gy, x, w, 1, pads, _route=None if route is None else {"grad_input": route}
            )
            np.testing.assert_allclose(gx, _crop(gxp, pads), **tol, err_msg=str(route))
            np.testing.assert_allclose(gw, gw_want, **tol)
            ran.add(("grad_input", route))
    assert {("forward", "direct"), ("grad_input", "direct"), ("forward", "gemm")} <= ran


def test_conv2d_backward_side_padding_finite_differences():
    x = RNG.standard_normal((1, 2, 5, 4))
    w = RNG.standard_normal((3, 2, 3, 2))
    pads, stride = (2, 0, 1, 3), (2, 1)
    gy = RNG.standard_normal(F.conv2d(x, w, None, stride, pads).shape)
    gx, gw, _ = F.conv2d_backward(gy, x, w, stride, pads)
    np.testing.assert_allclose(
        gx,
        ref.numerical_grad(lambda v: np.sum(gy * F.conv2d(v, w, None, stride, pads)), x),
        rtol=1e-6,
        atol=1e-7,
    )
    np.testing.assert_allclose(
        gw,
        ref.numerical_grad(lambda v: np.sum(gy * F.conv2d(x, v, None, stride, pads)), w),
        rtol=1e-6,
        atol=1e-7,
    )


def test_symmetric_four_tuple_equals_the_pair_and_unbatched():
    x = RNG.standard_normal((2, 3, 6, 7))
    w = RNG.standard_normal((4, 3, 3, 3))
    np.testing.assert_array_equal(
        F.conv2d(x, w, padding=(1, 1, 2, 2)), F.conv2d(x, w, padding=(1, 2))
    )
    np.testing.assert_array_equal(
        F.conv2d(x[0], w, padding=(0, 2, 1, 0)), F.conv2d(x[:1], w, padding=(0, 2, 1, 0))[0]
    )
    np.testing.assert_array_equal(F.max_pool2d(x, 3, 2, [1, 1, 1, 1]), F.max_pool2d(x, 3, 2, 1))
    np.testing.assert_array_equal(
        F.avg_pool2d(x, 3, 2, (1, 1, 0, 0)), F.avg_pool2d(x, 3, 2, (1, 0))
    )


def test_conv_output_size_takes_the_four_tuple():
    assert conv_output_size((7, 6), 3, 2, (0, 2, 1, 0)) == (
        (7 + 2 - 3) // 2 + 1,
        (6 + 1 - 3) // 2 + 1,
    )


def test_depthwise_scratch_counts_bottom_and_right_padding():
    # the route chooser's depthwise plane is sized from OH and OW, which grow with the
    # bottom/right padding: Hp = H + top + bottom, Wp = W + left + right here (stride 1)
    from convext.functional import _routes

    x = RNG.standard_normal((1, 2, 4, 5))
    w = RNG.standard_normal((2, 1, 3, 3))
    pads = (1, 40, 0, 30)
    _, _, _, _, g = F.conv._conv_setup(x, w, None, 1, pads, 1, 2)
    OH, OW = g.out_hw
    assert (OH, OW) == (4 + 41 - 2, 5 + 30 - 2)
    # at least the padded plane (Hp x Wp) and the output grid (OH x Wp) of the forward pass
    assert _routes.depthwise_scratch(_routes.conv_shape(x.shape, w.shape, g)) >= (
        (4 + 41 + OH) * (5 + 30)
    )
    want = ref.conv2d(_np_pad(x, pads), w, None, 1, 0, 1, 2)
    for route in ("depthwise", "gemm"):
        np.testing.assert_allclose(
            F.conv2d(x, w, padding=pads, groups=2, _route=route), want, rtol=1e-12, atol=1e-12
        )
        gy = RNG.standard_normal(want.shape)
        gx, gw, _ = F.conv2d_backward(gy, x, w, 1, pads, 1, 2, _route=route)
        gxp, gw_want, _ = ref.conv2d_grads(gy, _np_pad(x, pads), w, 1, 0, 1, 2)
        np.testing.assert_allclose(gx, _crop(gxp, pads), rtol=1e-11, atol=1e-11)
        np.testing.assert_allclose(gw, gw_want, rtol=1e-11, atol=1e-11)


# --------------------------------------------------------------------------------- pools
POOL_CASES = [
    # (x shape, kernel, stride, pads, ceil_mode)
    ((2, 3, 7, 6), 3, 2, (0, 1, 1, 0), False),
    ((2, 3, 7, 6), 3, 2, (1, 0, 0, 1), True),
    ((1, 2, 8, 9), (4, 3), (3, 2), (2, 0, 1, 1), True),
    ((1, 2, 8, 9), (4, 3), (3, 2), (0, 2, 0, 1), False),
    ((2, 1, 5, 5), 2, 1, (1, 0, 0, 1), True),
    ((1, 2, 6, 7), (5, 4), (2, 3), (2, 1, 2, 0), True),
]


def _pool_check_shape(got, x, k, s, pads, ceil):
    kh, kw = (k, k) if np.isscalar(k) else k
    sh, sw = (s, s) if np.isscalar(s) else s
    t, b, left, r = pads
    H, W = x.shape[2:]
    if ceil:
        want = (_ceil_out(H, kh, sh, t, b), _ceil_out(W, kw, sw, left, r))
    else:
        want = ((H + t + b - kh) // sh + 1, (W + left + r - kw) // sw + 1)
    assert got.shape[2:] == want
    return want


@pytest.mark.parametrize("xs, k, s, pads, ceil", POOL_CASES)
@pytest.mark.parametrize("dil", [1, 2])
def test_max_pool_side_padding_equals_neg_inf_np_pad(xs, k, s, pads, ceil, dil):
    x = RNG.standard_normal(xs) - 5.0  # all negative: a padded 0 would win, -inf never does
    got, idx = F.max_pool2d(x, k, s, pads, dil, ceil, return_indices=True)
    xp = _np_pad(x, pads, -np.inf)
    want, widx = ref.max_pool2d(xp, k, s, 0, dil, ceil)
    OH, OW = got.shape[2:]
    if dil == 1:
        _pool_check_shape(got, x, k, s, pads, ceil)
    # the padded-input oracle's ceil rule lets a last window start in the bottom/right padding;
    # ours drops it, so the oracle may have one more row or column
    assert want.shape[2] - OH in (0, 1) and want.shape[3] - OW in (0, 1)
    want, widx = want[:, :, :OH, :OW], widx[:, :, :OH, :OW]
    np.testing.assert_array_equal(got, want)
    t, _, left, _ = pads
    Wp, W = xp.shape[3], x.shape[3]
    real = widx >= 0
    want_idx = np.where(real, (widx // Wp - t) * W + (widx % Wp - left), -1)
    np.testing.assert_array_equal(idx, want_idx)
    gy = RNG.standard_normal(got.shape)
    gx = F.max_pool2d_backward(gy, idx, x.shape)
    np.testing.assert_allclose(
        gx, ref.max_pool2d_backward(gy, want_idx, x.shape), rtol=1e-13, atol=1e-13
    )


# Values only (no indices), 3x3 stride 2 (resnet's stem pool) on narrow planes: its own kernel
# (cvx_pl_vmax3s2), which took the one output of a plane 2 wide without left padding for a
# window inside the plane and read a column past it (3.8e30 in float32).
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("with_nan", [False, True])
def test_max_pool_values_only_3x3_s2_on_narrow_planes(dtype, with_nan):
    checked = 0
    for H in range(1, 8):
        for W in range(1, 8):
            for pads in [
                (t, b, lft, r) for t in (0, 1) for b in (0, 1) for lft in (0, 1) for r in (0, 1)
            ]:
                for ceil in (False, True):
                    t, b, lft, r = pads
                    if H + t + b < 3 or W + lft + r < 3:
                        continue  # no window: refused
                    x = (RNG.standard_normal((1, 2, H, W)) - 5.0).astype(dtype)
                    if with_nan:
                        x[0, 1, H // 2, W // 2] = np.nan
                    got = F.max_pool2d(x, 3, 2, pads, ceil_mode=ceil)
                    want = F.max_pool2d(x, 3, 2, pads, ceil_mode=ceil, return_indices=True)[0]
                    oracle = ref.max_pool2d(_np_pad(x, pads, -np.inf), 3, 2, 0, 1, ceil)[0]
                    OH, OW = got.shape[2:]
                    np.testing.assert_array_equal(got, want, err_msg=f"{H}x{W} {pads} {ceil}")
                    np.testing.assert_array_equal(
                        got, oracle[:, :, :OH, :OW], err_msg=f"{H}x{W} {pads} {ceil}"
                    )
                    checked += 1
    assert checked > 500


@pytest.mark.parametrize("xs, k, s, pads, ceil", POOL_CASES)
@pytest.mark.parametrize("include", [True, False])
def test_avg_pool_side_padding_equals_zero_np_pad(xs, k, s, pads, ceil, include):
    x = RNG.standard_normal(xs)
    got = F.avg_pool2d(x, k, s, pads, ceil, include)
    OH, OW = _pool_check_shape(got, x, k, s, pads, ceil)
    if include:
        want = ref.avg_pool2d(_np_pad(x, pads), k, s, 0, ceil, True)
    else:  # the divisor counts only the real pixels: a sum pool over a padded plane of ones
        sums = ref.avg_pool2d(_np_pad(x, pads), k, s, 0, ceil, divisor_override=1)
        count = ref.avg_pool2d(_np_pad(np.ones_like(x), pads), k, s, 0, ceil, divisor_override=1)
        want = sums / count
    np.testing.assert_allclose(got, want[:, :, :OH, :OW], rtol=1e-13, atol=1e-13)
    # the gradient: the oracle's gradient on the padded input, cropped
    gy = RNG.standard_normal(got.shape)
    gx = F.avg_pool2d_backward(gy, x.shape, k, s, pads, ceil, include)
    np.testing.assert_allclose(
        gx,
        ref.numerical_grad(lambda v: np.sum(gy * F.avg_pool2d(v, k, s, pads, ceil, include)), x),
        rtol=1e-6,
        atol=1e-8,
    )


@pytest.mark.parametrize("xs, k, s, pads, ceil", POOL_CASES[:4])
@pytest.mark.parametrize("p", [1.0, 2.0, 3.0, np.inf])
def test_lp_pool_side_padding_equals_zero_np_pad(xs, k, s, pads, ceil, p):
    x = RNG.uniform(0.2, 2.0, xs)  # positive: x**p is real for any p
    got = F.lp_pool2d(x, p, k, s, ceil, pads)
    OH, OW = _pool_check_shape(got, x, k, s, pads, ceil)
    xp = _np_pad(x, pads)
    if p == np.inf:
        want = ref.max_pool2d(np.abs(xp), k, s, 0, 1, ceil)[0]
    else:
        want = ref.lp_pool2d(xp, p, k, s, ceil)
    np.testing.assert_allclose(got, want[:, :, :OH, :OW], rtol=1e-12, atol=1e-12)
    gy = RNG.standard_normal(got.shape)
    gx = F.lp_pool2d_backward(gy, x, got, p, k, s, ceil, pads)
    np.testing.assert_allclose(
        gx,
        ref.numerical_grad(lambda v: np.sum(gy * F.lp_pool2d(v, p, k, s, ceil, pads)), x),
        rtol=1e-5,
        atol=1e-7,
    )


def test_max_pool_backward_finite_differences_with_side_padding():
    x = RNG.standard_normal((1, 2, 6, 5))
    pads = (1, 0, 0, 1)
    y, idx = F.max_pool2d(x, 3, 2, pads, 1, True, return_indices=True)
    gy = RNG.standard_normal(y.shape)
    np.testing.assert_allclose(
        F.max_pool2d_backward(gy, idx, x.shape),
        ref.numerical_grad(lambda v: np.sum(gy * F.max_pool2d(v, 3, 2, pads, 1, True)), x),
        rtol=1e-6,
        atol=1e-8,
    )


def test_ceil_mode_last_window_must_start_inside_the_input_or_top_left_padding():
    # H = W = 4, k = 2, s = 2, bottom padding 1: ceil_mode's span allows a window starting at
    # row 4, which is bottom padding: it is dropped (the padded-input rule would keep it)
    x = RNG.standard_normal((1, 1, 4, 4))
    assert F.max_pool2d(x, 2, 2, (0, 1, 0, 0), ceil_mode=True).shape[2:] == (2, 2)
    assert ref.max_pool2d(_np_pad(x, (0, 1, 0, 0)), 2, 2, 0, 1, True)[0].shape[2:] == (3, 2)
    # a last window that starts inside the input and hangs past it is kept, clipped to the
    # padded input: H = W = 5, k = 3, s = 2, top padding 1: rows -1..1, 1..3, 3..5 (row 5 is
    # past the input and there is no bottom padding, so the divisor counts 2 rows)
    x = RNG.standard_normal((1, 1, 5, 5))
    y = F.avg_pool2d(x, 3, 2, (1, 0, 0, 0), ceil_mode=True)
    assert y.shape[2:] == (3, 2)
    np.testing.assert_allclose(y[0, 0, 2, 0], x[0, 0, 3:5, 0:3].sum() / 6, rtol=1e-13)
    np.testing.assert_allclose(y[0, 0, 0, 1], x[0, 0, 0:2, 2:5].sum() / 9, rtol=1e-13)


# --------------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    "bad, exc",
    [
        ((1, 2, 3), ValueError),
        ((1, 2, 3, 4, 5), ValueError),
        ((1, -1, 0, 0), ValueError),
        ((1, 0, 0, 1.5), TypeError),
        ((0, MAX_EXTENT + 1, 0, 0), ValueError),
        ((True, 0, 0, 0), TypeError),
        ("full", ValueError),
    ],
)
def test_bad_side_padding_is_an_error_naming_padding(bad, exc):
    x = np.zeros((1, 1, 6, 6))
    w = np.zeros((1, 1, 3, 3))
    with pytest.raises(exc, match="padding"):
        F.conv2d(x, w, padding=bad)
    with pytest.raises(exc, match="padding"):
        F.conv2d_backward(np.zeros((1, 1, 4, 4)), x, w, padding=bad)
    pool_exc = TypeError if isinstance(bad, str) else exc
    for fn in (
        lambda: F.max_pool2d(x, 3, 1, bad),
        lambda: F.avg_pool2d(x, 3, 1, bad),
        lambda: F.lp_pool2d(x, 2, 3, 1, False, bad),
        lambda: F.avg_pool2d_backward(np.zeros((1, 1, 4, 4)), x.shape, 3, 1, bad),
    ):
        with pytest.raises(pool_exc, match="padding"):
            fn()


@pytest.mark.parametrize("pads", [(2, 0, 0, 0), (0, 2, 0, 0), (0, 0, 2, 0), (0, 0, 0, 2)])
def test_pool_padding_at_most_half_the_kernel_on_each_side(pads):
    x = np.zeros((1, 1, 6, 6))
    for fn in (F.max_pool2d, F.avg_pool2d):
        with pytest.raises(ValueError, match="padding .* at most half of the kernel size"):
            fn(x, 3, 1, pads)
    with pytest.raises(ValueError, match="padding"):
        F.lp_pool2d(x, 2, 3, 1, False, pads)
    F.max_pool2d(x, (4, 4), 1, tuple(min(p, 2) for p in pads))  # 2 <= 4 // 2 is fine


def test_kernel_larger_than_the_side_padded_input_names_padding():
    x = np.zeros((1, 1, 2, 2))
    with pytest.raises(ValueError, match="padded input"):
        F.conv2d(x, np.zeros((1, 1, 4, 3)), padding=(1, 0, 0, 1))
    F.conv2d(x, np.zeros((1, 1, 4, 3)), padding=(1, 1, 0, 1))  # 4 x 3 padded: fits


# --------------------------------------------------------------------------------- layers
def test_layers_take_side_padding_and_save_and_load_it(tmp_path):
    import convext as cx
    from convext import layers as L

    pads = (1, 0, 2, 1)
    model = L.Sequential(
        L.Conv2D(2, 3, 3, padding=pads, dtype=np.float64, rng=0),
        L.MaxPool2D(3, 2, [0, 1, 1, 0]),
        L.AvgPool2D(2, 1, (1, 0, 0, 1), True, False),
        L.LPPool2D(2, 2, 1, False, (0, 1, 1, 0)),
    )
    x = RNG.standard_normal((2, 2, 9, 8))
    c = model[0]
    y = F.conv2d(x, c.weight, c.bias, 1, pads)
    y = F.max_pool2d(y, 3, 2, (0, 1, 1, 0))
    y = F.avg_pool2d(y, 2, 1, (1, 0, 0, 1), True, False)
    y = F.lp_pool2d(y, 2, 2, 1, False, (0, 1, 1, 0))
    np.testing.assert_array_equal(model(x), y)
    assert model[0].get_config()["padding"] == list(pads)
    assert model[3].get_config()["padding"] == [0, 1, 1, 0]
    assert "padding" not in L.LPPool2D(2, 2).get_config()  # older files stay as they were
    model.save(tmp_path / "m.npz")
    back = cx.load(tmp_path / "m.npz")
    np.testing.assert_array_equal(back(x), model(x))
    model.train()
    gy = RNG.standard_normal(model(x).shape)
    gx = model.backward(gy)
    assert gx.shape == x.shape


@pytest.mark.parametrize("bad", [[1, 2, 3], [1, 2, 3, 4, 5], [0, -1, 0, 0], [0, 0, 0, 1.5]])
def test_registry_padding_field_takes_four_ints_only(bad):
    from convext.layers.registry import layer_from_spec

    spec = {
        "type": "Conv2D",
        "config": {"in_channels": 1, "out_channels": 1, "kernel_size": [3, 3], "padding": bad},
    }
    with pytest.raises(ValueError, match="padding must be .*list of 1, 2 or 4"):
        layer_from_spec(spec)
    spec["config"]["padding"] = [0, 1, 2, 0]
    assert layer_from_spec(spec).padding == (0, 1, 2, 0)
