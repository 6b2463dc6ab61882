"""The depthwise forward pass on channel blocks (isa/depthwise.inc's cvx_dw_cb_fwd, chosen by
_conv.pyx on planes at most DW_CB_MAX_OW wide): the same bits as the per-plane kernels it
replaces there, for every dtype, channel count around the block of 16 lanes, tiny planes,
planes at the width limit and at the scratch limit, strides, padding and dilation, the
epilogue, non-finite values and 1 or 2 threads; and the naive loops (torch:
tests/parity/test_parity_depthwise_blocks.py)."""

import numpy as np
import pytest

import reference as R
from convext import functional as F
from convext._kernels import _conv
from convext.functional import _routes
from convext.functional.conv import _conv_setup

RNG = np.random.default_rng(31)

# (C, H, W, kernel, stride, padding (top, bottom, left, right), dilation)
CASES = [
    (1, 7, 7, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1)),  # one channel: 15 idle lanes
    (15, 7, 7, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1)),  # one short block
    (16, 7, 7, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1)),  # exactly one block
    (17, 14, 14, (3, 3), (2, 2), (1, 1, 1, 1), (1, 1)),  # a block and one lane, stride 2
    (33, 5, 9, (2, 3), (1, 2), (0, 1, 2, 0), (2, 1)),  # asymmetric everything
    (40, 14, 14, (5, 5), (1, 1), (2, 2, 2, 2), (1, 1)),  # 25 taps: groups of 9, 9, 3, 3, 1
    (9, 6, 6, (4, 4), (1, 1), (2, 1, 2, 1), (1, 1)),  # 16 taps: 9, 3, 3, 1
    (18, 13, 11, (1, 5), (2, 1), (0, 0, 2, 2), (1, 2)),  # 5 taps: 3, 1, 1
    (7, 2, 2, (3, 3), (3, 3), (2, 2, 2, 2), (1, 1)),  # a 2x2 plane, padding beyond it
    (16, 1, 1, (1, 1), (1, 1), (0, 0, 0, 0), (1, 1)),  # 1x1 plane, 1 tap
    (5, 10, 10, (7, 7), (1, 1), (3, 3, 3, 3), (1, 1)),  # 49 taps
    (20, 16, 16, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1)),  # the input gradient's width limit
    (18, 31, 31, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1)),  # the widest plane a block fits
    (3, 9, 20, (3, 3), (1, 1), (0, 0, 0, 0), (1, 1)),  # input rows/columns no window reads
    (4, 12, 12, (3, 3), (3, 3), (0, 0, 0, 0), (2, 2)),  # stride 3 with dilation 2
    (5, 2, 3, (1, 1), (20, 20), (9, 9, 9, 9), (1, 1)),  # the top padding beyond Hp = 1
]


def _geom(case):
    C, H, W, k, s, p, d = case
    OH = (H + p[0] + p[1] - d[0] * (k[0] - 1) - 1) // s[0] + 1
    OW = (W + p[2] + p[3] - d[1] * (k[1] - 1) - 1) // s[1] + 1
    return OH, OW


def _run(x, w, b, case, blocks, n_threads, residual=None, act=0, a0=0.0, a1=0.0):
    C, H, W, k, s, p, d = case
    OH, OW = _geom(case)
    y = np.full((x.shape[0], C, OH, OW), np.nan, x.dtype)
    _conv.conv2d_forward_depthwise(
        x, w, b, y, s[0], s[1], p[0], p[2], d[0], d[1], C, n_threads,
        residual=residual, act=act, a0=a0, a1=a1, _blocks=blocks,
    )  # fmt: skip
    return y


def _data(case, n, dtype):
    C, H, W, k = case[:4]
    x = RNG.standard_normal((n, C, H, W)).astype(dtype)
    w = RNG.standard_normal((C, 1) + k).astype(dtype)
    b = RNG.standard_normal(C).astype(dtype)
    return x, w, b


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_blocks_give_the_per_plane_bits(case, dtype):
    x, w, b = _data(case, 3, dtype)
    for bias in (b, None):
        want = _run(x, w, bias, case, 0, 1)
        for n_threads in (1, 2):
            got = _run(x, w, bias, case, 1, n_threads)
            np.testing.assert_array_equal(got.view(np.uint8), want.view(np.uint8))
        # and the naive float64 loops
        C, _, _, k, s, p, d = case
        # the naive loops take symmetric padding: pad the input by hand
        xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), p[:2], p[2:]))
        ref = R.conv2d(xp, w.astype(np.float64),
                       None if bias is None else bias.astype(np.float64),
                       stride=s, padding=0, dilation=d, groups=C)  # fmt: skip
        if dtype == np.float64:
            np.testing.assert_allclose(want, ref, rtol=1e-10, atol=1e-12)
        else:
            assert np.max(np.abs(want - ref)) <= 1e-5 * max(1.0, np.max(np.abs(ref)))


@pytest.mark.parametrize("case", [CASES[3], CASES[5], CASES[11]])
# none, ReLU, ReLU6 and Hardtanh: clamps in the block's kernel (on its pixel-major result, or
# in the copy out with a residual); LeakyReLU: the epilogue on each plane after it
@pytest.mark.parametrize("act", [(0, 0.0, 0.0), (1, 0.0, 0.0), (2, 0.0, 0.0), (4, -0.5, 0.75),
                                 (3, 0.1, 0.0)])  # fmt: skip
@pytest.mark.parametrize("with_residual", [True, False])
def test_blocks_keep_the_epilogue(case, act, with_residual):
    code, a0, a1 = act
    x, w, b = _data(case, 2, np.float32)
    x, b = x * 4, b * 4  # sums beyond ReLU6's 6
    x[0, 1, 2, 3] = np.nan  # and non-finite values through the clamps
    x[1, 0, 0, 1] = np.inf
    r = RNG.standard_normal((2, case[0]) + _geom(case)).astype(np.float32) * 4
    r = r if with_residual else None
    want = _run(x, w, b, case, 0, 1, r, code, a0, a1)
    got = _run(x, w, b, case, 1, 2, r, code, a0, a1)
    np.testing.assert_array_equal(got.view(np.uint32), want.view(np.uint32))
    # and equal to the unfused sum, activated by the naive loops' arithmetic
    plain = _run(x, w, b, case, 1, 1)
    plain = plain + r if with_residual else plain
    assert (plain > 6).any() and (plain < 0).any() and np.isnan(plain).any()
    lo, hi = {0: (-np.inf, np.inf), 1: (0, np.inf), 2: (0, 6), 4: (a0, a1)}.get(code, (0, 0))
    lo, hi = np.float32(lo), np.float32(hi)
    if code == 3:
        expect = np.where(plain < 0, np.float32(a0) * plain, plain)
    else:  # v = lo if v < lo else v, then hi if v > hi else v: NaN stays NaN
        expect = np.where(plain < lo, lo, plain)
        expect = np.where(expect > hi, hi, expect)
    np.testing.assert_array_equal(got.view(np.uint32), expect.view(np.uint32))


def test_blocks_propagate_nonfinite_values_like_the_planes():
    case = CASES[3]
    x, w, b = _data(case, 2, np.float32)
    x[0, 2, 3, 4] = np.nan
    x[1, 16, 0, 0] = np.inf  # the lone lane of the second block, on the padded border
    w[5, 0, 1, 1] = -np.inf
    got, want = _run(x, w, b, case, 1, 2), _run(x, w, b, case, 0, 1)
    assert np.isnan(got).any() and np.isinf(got).any()
    np.testing.assert_array_equal(got, want)


def test_blocks_are_taken_on_small_planes_within_their_scratch_limit():
    """The rule of _conv.pyx mirrored by _routes: blocks fit MobileNetV2's 7x7 and 14x14
    depthwise layers and a plane at the width limit, never a channel multiplier, and the
    route's scratch bound always holds for them."""

    def shape(C, H, k=3, s=1, p=1, m=1):
        x = np.empty((1, C, H, H))
        w = np.empty((C * m, 1, k, k))
        g = _conv_setup(x, w, None, s, p, 1, C, fn="t")[4]
        return _routes.conv_shape(x.shape, w.shape, g)

    for C, H, s in ((960, 7, 1), (576, 14, 2), (576, 14, 1), (192, 28, 2), (20, 16, 1)):
        sh = shape(C, H, s=s)
        assert sh.window.out_hw[1] <= 16
        assert 0 < _routes.depthwise_blocks_scratch(sh) <= _routes.DW_CB_MAX_ELEMS
        assert _routes.accepts("depthwise", "forward", sh)
    assert _routes.depthwise_blocks_scratch(shape(4, 14, m=2)) == 0
    assert _routes.depthwise_blocks_scratch(shape(4, 80, k=3)) == 0  # beyond the limit


def test_functional_conv2d_on_blocks_equals_the_naive_loops_and_forced_planes():
    """F.conv2d chooses the route and the blocks from the geometry; the result is the per-plane
    kernels' bits (forced through the kernel) and the naive loops' values, for a batch of one and
    the same image inside a batch."""
    case = (37, 7, 7, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1))
    x, w, b = _data(case, 4, np.float32)
    y = F.conv2d(x, w, b, padding=1, groups=37)
    np.testing.assert_array_equal(y, _run(x, w, b, case, 0, 1))
    np.testing.assert_array_equal(F.conv2d(x[2:3], w, b, padding=1, groups=37), y[2:3])
    ref = R.conv2d(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64),
                   padding=1, groups=37)  # fmt: skip
    assert np.max(np.abs(y - ref)) <= 1e-5 * max(1.0, np.max(np.abs(ref)))


@pytest.mark.parametrize("H, taken", [(56, True), (57, False)])
def test_a_block_exactly_at_the_scratch_limit(H, taken):
    """56x19 with a 2x5 kernel and padding (1, 1, 0, 0): the block's scratch is exactly
    DW_CB_MAX_ELEMS elements (taken); one row more is beyond it (the per-plane kernels)."""
    case = (17, H, 19, (2, 5), (1, 1), (1, 1, 0, 0), (1, 1))
    x, w, b = _data(case, 2, np.float64)
    g = _conv_setup(x, w, None, 1, (1, 1, 0, 0), 1, 17, fn="t")[4]
    elems = _routes.depthwise_blocks_scratch(_routes.conv_shape(x.shape, w.shape, g))
    assert elems == (_routes.DW_CB_MAX_ELEMS if taken else 0)
    want = _run(x, w, b, case, 0, 1)
    np.testing.assert_array_equal(_run(x, w, b, case, 1, 2), want)
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (0, 0)))
    np.testing.assert_allclose(want, R.conv2d(xp, w, b, groups=17), rtol=1e-10, atol=1e-12)


# ---- the input gradient


def _run_gx(gy, w, case, blocks, n_threads, n=None):
    C, H, W, k, s, p, d = case
    gx = np.full((gy.shape[0], C, H, W), np.nan, gy.dtype)
    _conv.conv2d_grad_input_depthwise(
        gy, w, gx, s[0], s[1], p[0], p[2], d[0], d[1], C, n_threads, _blocks=blocks
    )
    return gx


def _gx_reference(gy, w, case):
    """The naive loops' input gradient (symmetric padding only: pad by hand, then crop)."""
    C, H, W, k, s, p, d = case
    xp = np.zeros((gy.shape[0], C, H + p[0] + p[1], W + p[2] + p[3]))
    gxp, _, _ = R.conv2d_grads(gy.astype(np.float64), xp, w.astype(np.float64), stride=s,
                               padding=0, dilation=d, groups=C)  # fmt: skip
    return gxp[:, :, p[0] : p[0] + H, p[2] : p[2] + W]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_input_gradient_blocks_give_the_per_plane_bits(case, dtype):
    C, H, W, k = case[:4]
    gy = RNG.standard_normal((3, C) + _geom(case)).astype(dtype)
    w = RNG.standard_normal((C, 1) + k).astype(dtype)
    want = _run_gx(gy, w, case, 0, 1)
    for n_threads in (1, 2):
        got = _run_gx(gy, w, case, 1, n_threads)
        np.testing.assert_array_equal(got.view(np.uint8), want.view(np.uint8))
    ref = _gx_reference(gy, w, case)
    if dtype == np.float64:
        np.testing.assert_allclose(want, ref, rtol=1e-10, atol=1e-12)
    else:
        assert np.max(np.abs(want - ref)) <= 1e-5 * max(1.0, np.max(np.abs(ref)))


def test_input_gradient_blocks_with_nonfinite_weights_and_gradients():
    """A block with a non-finite weight goes to the per-plane kernels' exact scatter for each of
    its channels (its other blocks stay blocks); a non-finite output gradient propagates."""
    case = CASES[3]  # 17 channels: a block of 16 and a block of 1
    C, H, W, k = case[:4]
    gy = RNG.standard_normal((2, C) + _geom(case)).astype(np.float32)
    w = RNG.standard_normal((C, 1) + k).astype(np.float32)
    w[3, 0, 0, 2] = np.inf
    gy[1, 16, 0, 0] = np.nan
    got, want = _run_gx(gy, w, case, 1, 2), _run_gx(gy, w, case, 0, 1)
    assert np.isnan(got).any() and np.isinf(got).any()
    np.testing.assert_array_equal(got, want)
    assert np.isfinite(got[:, :3]).all()  # the channels of the block without the infinity


@pytest.mark.parametrize("H, taken", [(60, True), (61, False)])
def test_an_input_gradient_block_exactly_at_the_scratch_limit(H, taken):
    """60x17 with a 2x2 kernel: the block's scratch is exactly DW_CB_MAX_ELEMS elements and
    the output 16 wide (taken); one row more is beyond it (the per-plane kernels)."""
    case = (17, H, 17, (2, 2), (1, 1), (0, 0, 0, 0), (1, 1))
    gy = RNG.standard_normal((2, 17) + _geom(case))
    w = RNG.standard_normal((17, 1, 2, 2))
    x = np.empty((2, 17, H, 17))
    g = _conv_setup(x, w, None, 1, 0, 1, 17, fn="t")[4]
    s = _routes.conv_shape(x.shape, w.shape, g)
    elems = _routes.depthwise_blocks_scratch(s, "grad_input")
    assert elems == (_routes.DW_CB_MAX_ELEMS if taken else 0)
    want = _run_gx(gy, w, case, 0, 1)
    np.testing.assert_array_equal(_run_gx(gy, w, case, 1, 2), want)
    np.testing.assert_allclose(want, _gx_reference(gy, w, case), rtol=1e-10, atol=1e-12)


def test_functional_backward_on_blocks_equals_the_naive_loops_and_forced_planes():
    case = (37, 14, 14, (3, 3), (2, 2), (1, 1, 1, 1), (1, 1))
    x = RNG.standard_normal((4, 37, 14, 14)).astype(np.float32)
    w = RNG.standard_normal((37, 1, 3, 3)).astype(np.float32)
    gy = RNG.standard_normal((4, 37, 7, 7)).astype(np.float32)
    gx, _, _ = F.conv2d_backward(gy, x, w, 2, 1, groups=37)
    np.testing.assert_array_equal(gx, _run_gx(gy, w, case, 0, 1))
    gx1, _, _ = F.conv2d_backward(gy[1:2], x[1:2], w, 2, 1, groups=37)
    np.testing.assert_array_equal(gx1, gx[1:2])
    ref = _gx_reference(gy, w, case)
    assert np.max(np.abs(gx - ref)) <= 1e-5 * max(1.0, np.max(np.abs(ref)))


# ---- the weight gradient


def _run_gw(gy, x, case, blocks, n_threads):
    C, H, W, k, s, p, d = case
    gw = np.full((C, 1) + k, np.nan, gy.dtype)
    _conv.conv2d_grad_weight_depthwise(
        gy, x, gw, s[0], s[1], p[0], p[2], d[0], d[1], C, n_threads, _blocks=blocks
    )
    return gw


def _gw_reference(gy, x, case):
    C, H, W, k, s, p, d = case
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), p[:2], p[2:]))
    _, gw, _ = R.conv2d_grads(gy.astype(np.float64), xp, np.zeros((C, 1) + k), stride=s,
                              padding=0, dilation=d, groups=C)  # fmt: skip
    return gw


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_weight_gradient_blocks_give_the_per_plane_bits(case, dtype):
    C, H, W = case[:3]
    gy = RNG.standard_normal((3, C) + _geom(case)).astype(dtype)
    x = RNG.standard_normal((3, C, H, W)).astype(dtype)
    want = _run_gw(gy, x, case, 0, 1)
    for n_threads in (1, 2):
        got = _run_gw(gy, x, case, 1, n_threads)
        np.testing.assert_array_equal(got.view(np.uint8), want.view(np.uint8))
    ref = _gw_reference(gy, x, case)
    if dtype == np.float64:
        np.testing.assert_allclose(want, ref, rtol=1e-10, atol=1e-12)
    else:
        assert np.max(np.abs(want - ref)) <= 1e-5 * max(1.0, np.max(np.abs(ref)))


def test_weight_gradient_blocks_with_nonfinite_inputs():
    """An image whose padded plane holds a non-finite value takes the per-plane kernels' row
    order for that channel (the other lanes of its block keep the flat grid's), as do the
    channels of a block where every lane has one."""
    case = (20, 7, 7, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1))  # blocks of 16 and 4
    gy = RNG.standard_normal((3, 20, 7, 7)).astype(np.float32)
    x = RNG.standard_normal((3, 20, 7, 7)).astype(np.float32)
    x[1, 5, 3, 3] = np.inf  # one lane of the first block, in image 1 only
    x[0, 16:, 0, 0] = np.nan  # every lane of the second block, in image 0
    x[2, 9, 6, 6] = -np.inf
    got, want = _run_gw(gy, x, case, 1, 2), _run_gw(gy, x, case, 0, 1)
    np.testing.assert_array_equal(got, want)
    assert np.isnan(got[16:]).any() and np.isfinite(got[:5]).all()
    # a large value in a row (finite): the flat order for its lane, exact against the planes
    x = RNG.standard_normal((3, 20, 7, 7)).astype(np.float32)
    x[1, 5, 3, 3] = 3e38
    np.testing.assert_array_equal(_run_gw(gy, x, case, 1, 2), _run_gw(gy, x, case, 0, 1))


# (case, images): the weight gradient's blocks go over the images in chunks of
# min(1024 // (Hp*Wp + OH*OW), 16, N) (isa/depthwise.inc, cvx_dw_cb_gw_chunk)
CHUNKED = [
    ((20, 7, 7, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1)), 17),  # chunks of 7: 7, 7, 3
    ((17, 14, 14, (3, 3), (2, 2), (1, 1, 1, 1), (1, 1)), 9),  # 15x15 + 7x7: chunks of 3
    ((5, 2, 3, (1, 1), (20, 20), (9, 9, 9, 9), (1, 1)), 37),  # 1x1: chunks of 16: 16, 16, 5
    ((18, 13, 11, (1, 5), (2, 1), (0, 0, 2, 2), (1, 2)), 11),  # 5 taps (no group of 9)
]


@pytest.mark.parametrize("case, n", CHUNKED)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_weight_gradient_blocks_over_chunks_of_images_give_the_per_plane_bits(case, n, dtype):
    C, H, W = case[:3]
    gy = RNG.standard_normal((n, C) + _geom(case)).astype(dtype)
    x = RNG.standard_normal((n, C, H, W)).astype(dtype)
    want = _run_gw(gy, x, case, 0, 1)
    for n_threads in (1, 2):
        got = _run_gw(gy, x, case, 1, n_threads)
        np.testing.assert_array_equal(got.view(np.uint8), want.view(np.uint8))
    # each image's part: the sums over images in order, whatever the chunks
    ref = _gw_reference(gy, x, case)
    if dtype == np.float64:
        np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-12)
    else:
        assert np.max(np.abs(got - ref)) <= 1e-5 * max(1.0, np.max(np.abs(ref)))


def test_weight_gradient_chunks_with_nonfinite_inputs_in_later_chunks():
    """A chunk where a lane takes the rows' order goes image by image: a non-finite value in
    one lane of an image of the second chunk, in every lane of a block in the third, in the
    last image; the other chunks keep the flat grid's order: the per-plane bits throughout."""
    case = (20, 7, 7, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1))  # chunks of 7 images
    gy = RNG.standard_normal((17, 20, 7, 7)).astype(np.float32)
    x = RNG.standard_normal((17, 20, 7, 7)).astype(np.float32)
    x[9, 5, 3, 3] = np.inf  # one lane of the first block, second chunk
    x[14, 16:, 0, 0] = np.nan  # every lane of the second block, third chunk
    x[16, 2, 6, 6] = -np.inf  # the last image
    got, want = _run_gw(gy, x, case, 1, 2), _run_gw(gy, x, case, 0, 1)
    np.testing.assert_array_equal(got, want)
    assert np.isnan(got[16:]).any() and not np.isfinite(got[[2, 5]]).all(axis=(1, 2, 3)).any()
    assert np.isfinite(got[6:16]).all()
    x[9, 5, 3, 3] = 3e38  # finite: the flat order in that chunk again
    np.testing.assert_array_equal(_run_gw(gy, x, case, 1, 1), _run_gw(gy, x, case, 0, 1))


@pytest.mark.parametrize("H, taken", [(17, True), (18, False)])
def test_a_weight_gradient_block_exactly_at_the_scratch_limit(H, taken):
    """17x51 with a 4x5 kernel and padding (1, 1, 0, 0): the block's scratch is exactly
    DW_CB_MAX_ELEMS elements (taken when forced: the output is 47 wide); one row more is beyond
    it."""
    case = (17, H, 51, (4, 5), (1, 1), (1, 1, 0, 0), (1, 1))
    gy = RNG.standard_normal((2, 17) + _geom(case))
    x = RNG.standard_normal((2, 17, H, 51))
    g = _conv_setup(x, np.empty((17, 1, 4, 5)), None, 1, (1, 1, 0, 0), 1, 17, fn="t")[4]
    s = _routes.conv_shape(x.shape, (17, 1, 4, 5), g)
    elems = _routes.depthwise_blocks_scratch(s, "grad_weight")
    assert elems == (_routes.DW_CB_MAX_ELEMS if taken else 0)
    want = _run_gw(gy, x, case, 0, 1)
    np.testing.assert_array_equal(_run_gw(gy, x, case, 1, 2), want)
    np.testing.assert_allclose(want, _gw_reference(gy, x, case), rtol=1e-10, atol=1e-12)


def test_functional_weight_gradient_on_blocks_equals_the_naive_loops_and_forced_planes():
    case = (37, 7, 7, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1))
    x = RNG.standard_normal((5, 37, 7, 7)).astype(np.float32)
    w = RNG.standard_normal((37, 1, 3, 3)).astype(np.float32)
    gy = RNG.standard_normal((5, 37, 7, 7)).astype(np.float32)
    _, gw, _ = F.conv2d_backward(gy, x, w, 1, 1, groups=37)
    np.testing.assert_array_equal(gw, _run_gw(gy, x, case, 0, 1))
    ref = _gw_reference(gy, x, case)
    assert np.max(np.abs(gw - ref)) <= 1e-5 * max(1.0, np.max(np.abs(ref)))


# ---- both gradients in one pass (conv2d_grad_depthwise: cvx_dw_cb_gxw)

BOTH = [
    ((65, 7, 7, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1)), 17),  # 5 blocks (the last of 1 lane)
    ((64, 14, 14, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1)), 5),  # 14 wide, chunks of 2
    ((50, 14, 14, (3, 3), (2, 2), (1, 1, 1, 1), (1, 1)), 4),  # stride 2: 4 phases
    ((64, 28, 28, (3, 3), (2, 2), (1, 1, 1, 1), (1, 1)), 2),  # 14 wide out of 28
    ((50, 9, 9, (5, 5), (1, 1), (2, 2, 2, 2), (1, 1)), 3),  # 25 taps: 9, 9, then single taps
    ((49, 12, 11, (3, 2), (2, 1), (0, 1, 2, 0), (2, 1)), 3),  # asymmetric everything
    ((52, 5, 5, (3, 3), (3, 3), (0, 0, 0, 0), (1, 1)), 6),  # input rows no window reads
]


def _run_both(gy, x, w, case, n_threads):
    C, H, W, k, s, p, d = case
    gx = np.full(x.shape, np.nan, x.dtype)
    gw = np.full(w.shape, np.nan, x.dtype)
    ran = _conv.conv2d_grad_depthwise(
        gy, x, w, gx, gw, s[0], s[1], p[0], p[2], d[0], d[1], C, n_threads
    )
    return ran, gx, gw


@pytest.mark.parametrize("case, n", BOTH)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_both_gradients_in_one_pass_give_the_bits_of_the_two_passes(case, n, dtype):
    C, H, W, k = case[:4]
    gy = RNG.standard_normal((n, C) + _geom(case)).astype(dtype)
    x = RNG.standard_normal((n, C, H, W)).astype(dtype)
    w = RNG.standard_normal((C, 1) + k).astype(dtype)
    want_gx, want_gw = _run_gx(gy, w, case, -1, 1), _run_gw(gy, x, case, -1, 1)
    for n_threads in (1, 2):
        ran, gx, gw = _run_both(gy, x, w, case, n_threads)
        assert ran
        np.testing.assert_array_equal(gx.view(np.uint8), want_gx.view(np.uint8))
        np.testing.assert_array_equal(gw.view(np.uint8), want_gw.view(np.uint8))
    # and the per-plane kernels' bits
    np.testing.assert_array_equal(gw, _run_gw(gy, x, case, 0, 1))
    ref = _gw_reference(gy, x, case)
    tol = 1e-10 if dtype == np.float64 else 1e-5
    assert np.max(np.abs(gw - ref)) <= tol * max(1.0, np.max(np.abs(ref)))


def test_both_gradients_with_nonfinite_inputs_and_gradients():
    case = (40, 7, 7, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1))
    gy = RNG.standard_normal((17, 40, 7, 7)).astype(np.float32)
    x = RNG.standard_normal((17, 40, 7, 7)).astype(np.float32)
    w = RNG.standard_normal((40, 1, 3, 3)).astype(np.float32)
    x[9, 5, 3, 3] = np.inf  # one lane, second chunk: that chunk goes image by image
    x[14, 16:32, 0, 0] = np.nan  # every lane of the second block
    gy[3, 33, 2, 2] = np.nan
    gy[16, 1, 6, 6] = -np.inf
    ran, gx, gw = _run_both(gy, x, w, case, 1)
    assert ran
    np.testing.assert_array_equal(gx, _run_gx(gy, w, case, -1, 1))
    np.testing.assert_array_equal(gw, _run_gw(gy, x, case, 0, 1))
    assert np.isnan(gx[3, 33]).any() and np.isfinite(gx[3, 34]).all()


@pytest.mark.parametrize(
    "case, n, wbad, n_threads",
    [
        ((40, 7, 7, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1)), 3, True, 1),  # a non-finite weight
        ((40, 7, 7, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1)), 3, False, 2),  # 3 blocks: < 2 each
        ((20, 7, 7, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1)), 3, False, 1),  # 2 blocks: taken
        ((16, 7, 7, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1)), 3, False, 1),  # one block
        ((40, 16, 16, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1)), 2, False, 1),  # 16 wide: gw planes
        ((40, 30, 30, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1)), 2, False, 1),  # 30 wide: no blocks
    ],
)
def test_both_gradients_run_only_where_the_blocks_take_both(case, n, wbad, n_threads):
    C, H, W, k = case[:4]
    gy = RNG.standard_normal((n, C) + _geom(case)).astype(np.float32)
    x = RNG.standard_normal((n, C, H, W)).astype(np.float32)
    w = RNG.standard_normal((C, 1) + k).astype(np.float32)
    if wbad:
        w[7, 0, 1, 1] = np.inf
    taken = not wbad and (C + 15) // 16 >= 2 * n_threads and H <= 14
    ran, gx, gw = _run_both(gy, x, w, case, n_threads)
    assert ran == taken
    if not taken:
        assert np.isnan(gx).all() and np.isnan(gw).all()  # nothing written
    # the functional backward: the same bits whichever way
    fx, fw, _ = F.conv2d_backward(gy, x, w, 1, 1, groups=C)
    np.testing.assert_array_equal(fx, _run_gx(gy, w, case, -1, 1))
    np.testing.assert_array_equal(fw, _run_gw(gy, x, case, -1, 1))
