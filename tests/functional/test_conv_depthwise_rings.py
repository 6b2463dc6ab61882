"""The depthwise forward pass on row rings (isa/depthwise.inc's cvx_dw_cbr_fwd, chosen by
_conv.pyx for strided windows on planes wider than DW_CB_MAX_OW): the same bits as the per-plane
kernels, for every dtype, channel counts around the block of 16 lanes, strides (a window
shorter than the stride skips rows), padding beyond the plane, dilation, kernels of 1 to 25
taps, segments of output rows (several work items per plane) and write-out groups that do not
divide the plane, the epilogue fused or after, non-finite values and 1 or 2 threads; and the
naive loops (torch: tests/parity/test_parity_depthwise_rings.py)."""

import numpy as np
import pytest

import reference as R
from cases import EPILOGUE_ACTS, depthwise_conv_shape, epilogue_by_hand
from convext import functional as F
from convext._kernels import _conv
from convext.functional import _routes

RNG = np.random.default_rng(47)

# (C, H, W, kernel, stride, padding (top, bottom, left, right), dilation)
CASES = [
    (1, 20, 40, (3, 3), (2, 2), (1, 1, 1, 1), (1, 1)),  # one channel: 15 idle lanes
    (16, 35, 35, (3, 3), (2, 2), (1, 1, 1, 1), (1, 1)),  # exactly one block, 18 wide
    (17, 56, 56, (3, 3), (2, 2), (0, 1, 0, 1), (1, 1)),  # a block and a lane, 28 rows: 3 segments
    (33, 19, 70, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1)),  # stride 1 (forced), odd widths
    (20, 40, 300, (3, 3), (2, 2), (1, 1, 1, 1), (1, 1)),  # 150 wide: one row per write-out
    (9, 30, 44, (5, 5), (2, 2), (2, 2, 2, 2), (1, 1)),  # 25 taps: groups of 9, 9, 3, 3, 1
    (18, 26, 51, (1, 5), (2, 1), (0, 0, 2, 2), (1, 2)),  # 5 taps: 3, 1, 1; a 1-row window
    (7, 31, 60, (3, 3), (4, 3), (2, 2, 2, 2), (1, 1)),  # stride above the window: skipped rows
    (5, 24, 48, (3, 2), (3, 2), (0, 0, 0, 0), (2, 3)),  # dilation, input rows no window reads
    (3, 8, 80, (2, 2), (3, 3), (9, 9, 9, 9), (1, 1)),  # padding beyond the plane, zero rows
    (24, 17, 34, (4, 4), (2, 2), (2, 1, 2, 1), (1, 1)),  # 16 taps: 9, 3, 3, 1
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


def _reference(x, w, b, case):
    C, _, _, k, s, p, d = case
    # the naive loops take symmetric padding: pad the input by hand
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), p[:2], p[2:]))
    return R.conv2d(xp, w.astype(np.float64), None if b is None else b.astype(np.float64),
                    stride=s, padding=0, dilation=d, groups=C)  # fmt: skip


def test_the_cases_are_ring_geometries():
    """Every case is wider than the channel blocks' limit (16) and, but one, strided."""
    for case in CASES:
        assert _geom(case)[1] > 16
    assert sum(case[4] == (1, 1) for case in CASES) == 1


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_rings_give_the_per_plane_bits(case, dtype):
    x, w, b = _data(case, 2, dtype)
    for bias in (b, None):
        want = _run(x, w, bias, case, 0, 1)
        for n_threads in (1, 2):
            got = _run(x, w, bias, case, 2, n_threads)
            np.testing.assert_array_equal(got.view(np.uint8), want.view(np.uint8))
        ref = _reference(x, w, bias, case)
        if dtype == np.float64:
            np.testing.assert_allclose(want, ref, rtol=1e-10, atol=1e-12)
        else:
            assert np.max(np.abs(want - ref)) <= 1e-5 * max(1.0, np.max(np.abs(ref)))


@pytest.mark.parametrize("case", [CASES[2], CASES[4], CASES[7]])
@pytest.mark.parametrize("act, a0, a1", EPILOGUE_ACTS)
@pytest.mark.parametrize("with_residual", [False, True])
def test_rings_keep_the_epilogue(case, act, a0, a1, with_residual):
    """The clamps fused into the write-out (with a residual or without), LeakyReLU after it:
    the per-plane kernels' bits, and the unfused sum activated by hand."""
    x, w, b = _data(case, 2, np.float32)
    r = (
        RNG.standard_normal((2, case[0]) + _geom(case)).astype(np.float32)
        if with_residual
        else None
    )
    want = _run(x, w, b, case, 0, 1, residual=r, act=act, a0=a0, a1=a1)
    for n_threads in (1, 2):
        got = _run(x, w, b, case, 2, n_threads, residual=r, act=act, a0=a0, a1=a1)
        np.testing.assert_array_equal(got, want)
    plain = _run(x, w, b, case, 2, 1)
    if r is not None:
        plain = plain + r
    expect = epilogue_by_hand(plain, act, a0, a1)
    np.testing.assert_array_equal(got, expect)


def test_rings_propagate_nonfinite_values_like_the_planes():
    case = CASES[2]
    x, w, b = _data(case, 2, np.float32)
    x[0, 2, 3, 4] = np.nan
    x[1, 16, 0, 0] = np.inf  # the lone lane of the second block, on the padded border
    w[5, 0, 1, 1] = -np.inf
    got, want = _run(x, w, b, case, 2, 2, act=2), _run(x, w, b, case, 0, 1, act=2)
    assert np.isnan(got).any()
    np.testing.assert_array_equal(got.view(np.uint8), want.view(np.uint8))


def test_functional_conv2d_on_rings_equals_forced_planes_in_any_batch():
    """F.conv2d takes the rings for a stride-2 layer 56 wide without padding on its sides (the
    rule, from the geometry; with a column of padding on the left a table with the stride-2
    rows in registers takes those from their width on); the result is the per-plane kernels'
    bits, the same for an image
    alone or inside a batch, and the naive loops' values."""
    case = (40, 56, 56, (3, 3), (2, 2), (1, 1, 0, 0), (1, 1))
    x, w, b = _data(case, 3, np.float32)
    OH, OW = _geom(case)
    assert (
        _conv.depthwise_forward_kernel(x.shape, w.shape, (3, 40, OH, OW), 40, 2, 2, 1, 0, 1, 1, 4)
        == "rings"
    )
    y = F.conv2d(x, w, b, stride=2, padding=(1, 0), groups=40)
    np.testing.assert_array_equal(y, _run(x, w, b, case, 0, 1))
    np.testing.assert_array_equal(y, _run(x, w, b, case, -1, 2))
    np.testing.assert_array_equal(
        F.conv2d(x[1:2], w, b, stride=2, padding=(1, 0), groups=40), y[1:2]
    )
    ref = _reference(x, w, b, case)
    assert np.max(np.abs(y - ref)) <= 1e-5 * max(1.0, np.max(np.abs(ref)))


def test_stride_1_rings_for_a_small_batch_give_the_large_batchs_bits():
    """Stride 1 on a plane at most DW_CBR_MAX_OW wide: the rule takes the rings while the
    batch's input is small (DW_CBR_S1_CACHED_BYTES) and the per-plane kernels for a large
    batch; an image gives the same bits alone as inside the large batch, and the naive
    loops' values."""
    case = (40, 28, 28, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1))
    x, w, b = _data(case, 30, np.float32)  # 30 * 40 * 28 * 28 * 4 bytes = 3.8 MB: per plane
    assert x.nbytes > 3 * 2**20
    y = F.conv2d(x, w, b, padding=1, groups=40)
    np.testing.assert_array_equal(y, _run(x, w, b, case, 0, 1))
    for i in (0, 7, 29):
        alone = F.conv2d(x[i : i + 1], w, b, padding=1, groups=40)  # 125 kB: the rings
        np.testing.assert_array_equal(alone, y[i : i + 1])
        np.testing.assert_array_equal(alone, _run(x[i : i + 1], w, b, case, 2, 2))
    ref = _reference(x[:2], w, b, case)
    assert np.max(np.abs(y[:2] - ref)) <= 1e-5 * max(1.0, np.max(np.abs(ref)))


def test_rings_are_not_taken_for_a_channel_multiplier():
    """Two filters per channel: the rings (one filter per lane) never take it, even forced."""
    x = RNG.standard_normal((1, 3, 20, 40)).astype(np.float32)
    w = RNG.standard_normal((6, 1, 3, 3)).astype(np.float32)
    y = np.full((1, 6, 10, 20), np.nan, np.float32)
    _conv.conv2d_forward_depthwise(x, w, None, y, 2, 2, 1, 1, 1, 1, 3, 1, _blocks=2)
    ref = R.conv2d(np.pad(x.astype(np.float64), ((0, 0), (0, 0), (1, 1), (1, 1))),
                   w.astype(np.float64), None, stride=2, groups=3)  # fmt: skip
    assert np.max(np.abs(y - ref)) <= 1e-5 * max(1.0, np.max(np.abs(ref)))


def test_ring_scratch_mirrored_by_the_routes():
    """_routes.depthwise_ring_scratch: MobileNetV2's stride-2 layers wider than 16 fit, well
    within the route's scratch bound; a channel multiplier and a window too tall for the limit
    do not (the kernel falls back to the per-plane kernels: the same bits, even forced)."""

    shape = depthwise_conv_shape

    for C, H in ((96, 112), (144, 56)):
        sh = shape(C, H, H)
        assert 0 < _routes.depthwise_ring_scratch(sh) <= _routes.DW_CB_MAX_ELEMS
        assert _routes.depthwise_scratch(sh) >= _routes.depthwise_ring_scratch(sh)
        assert _routes.accepts("depthwise", "forward", sh)
    assert _routes.depthwise_ring_scratch(shape(4, 40, 40, m=2)) == 0
    tall = (3, 130, 80, (3, 3), (2, 2), (0, 0, 1, 1), (60, 1))  # 121 ring rows of 81 pixels
    assert _routes.depthwise_ring_scratch(shape(3, 130, 80, s=2, p=(0, 0, 1, 1), d=(60, 1))) == 0
    x, w, b = _data(tall, 2, np.float64)
    want = _run(x, w, b, tall, 0, 1)
    np.testing.assert_array_equal(_run(x, w, b, tall, 2, 2), want)
    np.testing.assert_allclose(want, _reference(x, w, b, tall), rtol=1e-10, atol=1e-12)
