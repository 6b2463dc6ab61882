"""The depthwise forward pass on stride-2 and stride-1 rows (isa/depthwise.inc's
cvx_dw_s2_plane and cvx_dw_s1_plane, chosen by _conv.pyx for 3x3 windows at stride 2 or 1 on
output planes at least DW_S2_MIN_OW or DW_S1_MIN_OW wide, other widths where the table has them
in registers, below): the same bits as the per-plane
kernels and the row rings or channel blocks, for both dtypes, widths below, at and above two
vectors (the split's vector loop, its redone last columns and its scalar ends; at stride 1 the
whole rows read one column beyond the row, and the first and last pixels computed again), one
output pixel, planes one and two columns wide, odd and even planes, padding from 0 to beyond
the plane on each side, the epilogue fused or after, non-finite values on the border and 1 or
2 threads; and the naive loops' values. On AVX-512 (the table's register rows) the stride-1
rows work in registers: every row goes in vectors whose neighbours are shifted
(cvx_dw_s1_vrow), its ends loaded in part with zeros beyond them; at stride 2 with one column
of padding on the left, on AVX-512 and in float32 on AVX2 (the table's dw_s2_lanes_min_ow),
each output vector comes from the even and odd elements of two input vectors per row
(cvx_dw_s2_vplane), the columns beyond the row loaded as zeros."""

import numpy as np
import pytest

import reference as R
from cases import EPILOGUE_ACTS, close_to_oracle, depthwise_conv_shape, epilogue_by_hand
from convext import functional as F
from convext._kernels import _conv, _isa
from convext.functional import _routes

RNG = np.random.default_rng(53)

# (C, H, W, padding (top, bottom, left, right))
CASES = [
    (3, 9, 5, (1, 1, 1, 1)),  # narrower than a vector: scalar ends only
    (5, 20, 17, (1, 1, 1, 1)),  # one vector, then the row's end
    (4, 21, 33, (0, 0, 0, 0)),  # no padding, odd width
    (6, 30, 34, (1, 0, 1, 0)),  # even width, padding on one side
    (2, 16, 112, (1, 1, 1, 1)),  # MobileNetV2's shape: 56 wide, no tail in the taps
    (3, 13, 97, (2, 3, 3, 2)),  # padding wider than the window's reach on the left
    (2, 7, 225, (1, 1, 1, 1)),  # 113 wide, odd
    (1, 5, 40, (4, 4, 0, 5)),  # rows and columns of padding only at the ends
    (2, 3, 3, (0, 0, 0, 0)),  # one output pixel
    (2, 1, 1, (2, 2, 2, 2)),  # padding larger than the plane: one input pixel read
    (3, 4, 2, (1, 1, 1, 1)),  # two columns
    (2, 6, 20, (0, 1, 0, 1)),  # padding after the plane only: one last pixel, no first
    (2, 8, 30, (1, 2, 1, 2)),  # two columns of padding on the right: no whole rows at stride 1
    (2, 5, 1, (1, 1, 1, 1)),  # one column
    # stride 1 on AVX-512: rows a vector (16 float32, 8 float64) plus 2 wide, loaded in part
    (2, 6, 18, (1, 1, 1, 1)),
    (2, 6, 10, (1, 1, 1, 1)),
    (2, 6, 16, (1, 1, 1, 1)),  # one vector exactly: no part vector
]
STRIDES = (2, 1)


def _geom(case, s):
    _, H, W, p = case
    return (H + p[0] + p[1] - 3) // s + 1, (W + p[2] + p[3] - 3) // s + 1


def _kernel(x, case, s, blocks, residual=False):
    """The kernel conv2d_forward_depthwise runs (_conv.depthwise_forward_kernel)."""
    C, _, _, p = case
    return _conv.depthwise_forward_kernel(
        x.shape, (C, 1, 3, 3), (x.shape[0], C) + _geom(case, s), C, s, s, p[0], p[2], 1, 1,
        x.itemsize, residual, blocks,
    )  # fmt: skip


def _run(x, w, b, case, s, blocks, n_threads, residual=None, act=0, a0=0.0, a1=0.0):
    C, _, _, p = case
    OH, OW = _geom(case, s)
    y = np.full((x.shape[0], C, OH, OW), np.nan, x.dtype)
    _conv.conv2d_forward_depthwise(
        x, w, b, y, s, s, p[0], p[2], 1, 1, C, n_threads,
        residual=residual, act=act, a0=a0, a1=a1, _blocks=blocks,
    )  # fmt: skip
    return y


def _data(case, n, dtype):
    C, H, W, _ = case
    x = RNG.standard_normal((n, C, H, W)).astype(dtype)
    w = RNG.standard_normal((C, 1, 3, 3)).astype(dtype)
    b = RNG.standard_normal(C).astype(dtype)
    return x, w, b


def _reference(x, w, b, case, s):
    C, _, _, p = case
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), p[:2], p[2:]))
    return R.conv2d(xp, w.astype(np.float64), None if b is None else b.astype(np.float64),
                    stride=s, padding=0, groups=C)  # fmt: skip


def _rows(s):
    return "s2_rows" if s == 2 else "s1_rows"


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("s", STRIDES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_rows_give_the_per_plane_bits(case, s, dtype):
    x, w, b = _data(case, 2, dtype)
    assert (_kernel(x, case, s, 3), _kernel(x, case, s, 0)) == (_rows(s), "planes")
    for bias in (b, None):
        want = _run(x, w, bias, case, s, 0, 1)
        for n_threads in (1, 2):
            got = _run(x, w, bias, case, s, 3, n_threads)
            np.testing.assert_array_equal(got.view(np.uint8), want.view(np.uint8))
        other = _run(x, w, bias, case, s, 2, 1)  # the row rings, or the channel blocks
        np.testing.assert_array_equal(other.view(np.uint8), want.view(np.uint8))
        close_to_oracle(want, _reference(x, w, bias, case, s), dtype)


@pytest.mark.parametrize("case", [CASES[1], CASES[4], CASES[5]])
@pytest.mark.parametrize("s", STRIDES)
@pytest.mark.parametrize("act, a0, a1", EPILOGUE_ACTS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_rows_keep_the_epilogue(case, s, act, a0, a1, dtype):
    """The clamps fused into the rows' taps (and into the first and last pixels' sums at
    stride 1), LeakyReLU after the plane: the per-plane kernels' bits, and the plain sum
    activated by hand."""
    x, w, b = _data(case, 2, dtype)
    want = _run(x, w, b, case, s, 0, 1, act=act, a0=a0, a1=a1)
    for n_threads in (1, 2):
        got = _run(x, w, b, case, s, 3, n_threads, act=act, a0=a0, a1=a1)
        np.testing.assert_array_equal(got, want)
    plain = _run(x, w, b, case, s, 3, 1)
    expect = epilogue_by_hand(plain, act, a0, a1)
    np.testing.assert_array_equal(got, expect)


@pytest.mark.parametrize("s", STRIDES)
def test_rows_are_not_taken_with_a_residual(s):
    """A residual goes to the other kernels (their write-out adds it), even forced: the same
    bits as the per-plane kernels, and the plain sum plus the residual."""
    case = CASES[4]
    x, w, b = _data(case, 2, np.float32)
    assert _kernel(x, case, s, 3, residual=True) != _rows(s)
    r = RNG.standard_normal((2, case[0]) + _geom(case, s)).astype(np.float32)
    got = _run(x, w, b, case, s, 3, 2, residual=r)
    np.testing.assert_array_equal(got, _run(x, w, b, case, s, 0, 1, residual=r))
    np.testing.assert_array_equal(got, _run(x, w, b, case, s, 3, 1) + r)


@pytest.mark.parametrize("s", STRIDES)
def test_rows_propagate_nonfinite_values_like_the_planes(s):
    case = CASES[6]
    x, w, b = _data(case, 2, np.float32)
    x[0, 0, 0, 0] = np.nan  # the first column, beside the left padding
    x[1, 1, 6, 224] = np.inf  # the last column of the last row: the scalar end
    x[1, 0, 3, 120] = -np.inf
    x[0, 1, 3, 0] = np.nan  # column 0 of a later row: its split's first (scalar) column
    x[0, 1, 4, 224] = np.inf  # the last column of a middle row: read beyond the row at stride 1
    x[1, 0, 2, 0] = -np.inf  # the first column of a middle row: read before the row there
    w[1, 0, 2, 2] = np.nan
    got, want = _run(x, w, b, case, s, 3, 2, act=2), _run(x, w, b, case, s, 0, 1, act=2)
    assert np.isnan(got).any() and np.isnan(got[1, 1]).all()
    np.testing.assert_array_equal(got.view(np.uint8), want.view(np.uint8))


def test_stride1_rows_keep_padded_taps_of_a_nonfinite_weight():
    """A weight of inf times a padded zero is NaN in the per-plane kernels and in torch: the
    stride-1 rows' first and last pixels, and the rows beside the padding above and below, keep
    that product (the tap of the weight reads the padding only there)."""
    case = CASES[4]
    x, w, b = _data(case, 2, np.float32)
    w[0, 0, 0, 0] = np.inf  # reads the row above and the column before: padding on the border
    w[1, 0, 2, 2] = -np.inf  # the row below and the column after
    got, want = _run(x, w, b, case, 1, 3, 2), _run(x, w, b, case, 1, 0, 1)
    np.testing.assert_array_equal(got.view(np.uint8), want.view(np.uint8))
    assert np.isnan(got[:, 0, 0, :]).all() and np.isnan(got[:, 0, :, 0]).all()
    assert np.isnan(got[:, 1, -1, :]).all() and np.isnan(got[:, 1, :, -1]).all()
    assert not np.isnan(got[:, 0, 1:, 1:]).any()


# (stride, the input plane of a layer the rule gives to the rows, the input plane of a
# narrower layer and the kernel the rule gives it); with the table's register rows (AVX-512)
# the stride-1 rows start at 32 wide, below which the flat planes take "same" layers
LANE_ROWS = _isa.active_info()["dw_lane_rows"]
# the least output width of the stride-2 rows in registers, float32 and float64 (-1: none)
S2_LANES_MIN_OW = _isa.active_info()["dw_s2_lanes_min_ow"]
RULE_CASES = [
    # in registers the stride-2 rows take rows whose vectors are 2/3 filled (AVX-512), or at
    # least 48 wide (AVX2): not 20
    (2, (112, 112), (40, 40) if S2_LANES_MIN_OW[0] >= 0 else (64, 94), "rings"),
    (1, (32, 32), (31, 31), "s1_flat") if LANE_ROWS else (1, (56, 56), (40, 47), "planes"),
]


@pytest.mark.parametrize("s, hw, narrow, narrow_kernel", RULE_CASES)
def test_functional_conv2d_takes_the_rows_in_any_batch(s, hw, narrow, narrow_kernel):
    """F.conv2d on a layer the rule gives to the rows: the per-plane kernels' bits, the same for an
    image alone or inside a batch, and the naive loops' values; a channel multiplier (two
    filters per channel) goes elsewhere, with the naive loops' values too."""
    case = (24, *hw, (1, 1, 1, 1))
    x, w, b = _data(case, 3, np.float32)
    assert _kernel(x, case, s, -1) == _rows(s)
    assert _kernel(x[:, :, : narrow[0], : narrow[1]], (24, *narrow, (1, 1, 1, 1)), s, -1) == (
        narrow_kernel
    )
    y = F.conv2d(x, w, b, stride=s, padding=1, groups=24)
    np.testing.assert_array_equal(y, _run(x, w, b, case, s, 0, 1))
    np.testing.assert_array_equal(y, _run(x, w, b, case, s, 3, 2))
    np.testing.assert_array_equal(F.conv2d(x[2:3], w, b, stride=s, padding=1, groups=24), y[2:3])
    close_to_oracle(y, _reference(x, w, b, case, s), np.float32)
    w2 = RNG.standard_normal((48, 1, 3, 3)).astype(np.float32)
    y2 = np.full((3, 48) + _geom(case, s), np.nan, np.float32)
    _conv.conv2d_forward_depthwise(x, w2, None, y2, s, s, 1, 1, 1, 1, 24, 1, _blocks=3)
    close_to_oracle(y2, _reference(x, w2, None, case, s), np.float32)  # 2 filters per channel


def test_rows_scratch_mirrored_by_the_routes():
    """_routes.depthwise_rows_scratch: the ring of three split rows for MobileNetV2's 112-wide
    stride-2 layer, the zero row for its 112-wide stride-1 layer, within the route's scratch
    bound; 0 where the kernels are never taken."""

    def shape(C, H, k=3, s=2, d=1, m=1):
        return depthwise_conv_shape(C, H, H, k, s, k // 2 * d, d, m)

    for sh, elems in ((shape(96, 112), 6 * 64), (shape(32, 112, s=1), 112 + 32)):
        # stride 2: 57 columns of each phase, pitch 64; stride 1: 112 zeros and 16 each side
        assert _routes.depthwise_rows_scratch(sh) == elems
        assert _routes.depthwise_scratch(sh) >= elems
    others = (shape(96, 112, k=5), shape(96, 112, s=3), shape(8, 40, m=2), shape(8, 40, d=2))
    for other in others:
        assert _routes.depthwise_rows_scratch(other) == 0


# (C, H, batch, dtype, the rule's kernel at stride 2)
RING_CASES = [
    (96, 112, 1, np.float32, "rings"),  # 16 planes 50176 bytes apart: 4 of the L1's sets
    (96, 104, 1, np.float32, "rings"),  # 16 sets
    (96, 128, 1, np.float32, "s2_rows"),  # planes of 64 kB: one set for all 16
    (64, 96, 1, np.float32, "s2_rows"),  # 36 kB, a multiple of 4 kB: one set
    (24, 112, 1, np.float32, "s2_rows"),  # a block and a half of channels
    (96, 112, 8, np.float32, "s2_rows"),  # 38 MB of input: beyond the cache
    (96, 104, 1, np.float64, "s2_rows"),  # the ring was slower in float64
]


@pytest.mark.parametrize("C, H, N, dtype, kernel", RING_CASES)
def test_the_row_ring_takes_stride2_planes_whose_blocks_spread_over_the_cache(
    C, H, N, dtype, kernel
):
    """_conv.pyx's DW_CBR_MIN_SETS rule, and the ring's bits where it takes the layer: those
    of the stride-2 rows and of the per-plane kernels."""
    # no column of padding on the left: with one, a table with the stride-2 rows in registers
    # for the dtype takes them (cvx_dw_s2_vplane) from its width on, never the ring
    case = (C, H, H, (1, 1, 0, 1))
    x = np.empty((N, C, H, H), dtype)
    assert _kernel(x, case, 2, -1) == kernel
    min_ow = S2_LANES_MIN_OW[dtype == np.float64]
    if 0 <= min_ow <= H // 2:
        assert _kernel(x, (C, H, H, (1, 1, 1, 1)), 2, -1) == "s2_rows"

    if kernel == "rings":
        x, w, b = _data(case, N, dtype)
        got = _run(x, w, b, case, 2, -1, 2, act=2)
        np.testing.assert_array_equal(
            got.view(np.uint8), _run(x, w, b, case, 2, 3, 1, act=2).view(np.uint8)
        )
        np.testing.assert_array_equal(
            got.view(np.uint8), _run(x, w, b, case, 2, 0, 1, act=2).view(np.uint8)
        )


def test_register_rows_need_at_most_one_column_of_left_padding():
    """The lower widths of the register rows apply only where they run: at stride 1 with two
    columns of padding on the left a 42-wide layer keeps the per-plane kernels, and at stride 2
    with none a 27-wide layer keeps the row rings, on every table."""
    x = np.empty((1, 24, 40, 40), np.float32)
    assert _kernel(x, (24, 40, 40, (2, 2, 2, 2)), 1, -1) == "planes"  # 42 wide
    x = np.empty((1, 40, 56, 56), np.float32)
    assert _kernel(x, (40, 56, 56, (1, 1, 0, 0)), 2, -1) == "rings"  # 27 wide
