"""The depthwise forward pass on stride-2 rows (isa/depthwise.inc's cvx_dw_s2_plane, chosen by
_conv.pyx for 3x3 windows at stride 2 on output planes at least DW_S2_MIN_OW wide): the same
bits as the per-plane kernels and the row rings or channel blocks, for both dtypes, widths
below, at and above two vectors (the split's vector loop, its redone last columns and its
scalar ends), one output pixel, odd and even planes, padding from 0 to beyond the plane on
each side, the epilogue fused or after, non-finite values on the border and 1 or 2 threads;
and the naive loops' values."""

import numpy as np
import pytest

import reference as R
from cases import EPILOGUE_ACTS, close_to_oracle, depthwise_conv_shape, epilogue_by_hand
from convext import functional as F
from convext._kernels import _conv
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
]


def _geom(case):
    _, H, W, p = case
    return (H + p[0] + p[1] - 3) // 2 + 1, (W + p[2] + p[3] - 3) // 2 + 1


def _kernel(x, case, blocks, residual=False):
    """The kernel conv2d_forward_depthwise runs (_conv.depthwise_forward_kernel)."""
    C, _, _, p = case
    return _conv.depthwise_forward_kernel(
        x.shape, (C, 1, 3, 3), (x.shape[0], C) + _geom(case), C, 2, 2, p[0], p[2], 1, 1,
        x.itemsize, residual, blocks,
    )  # fmt: skip


def _run(x, w, b, case, blocks, n_threads, residual=None, act=0, a0=0.0, a1=0.0):
    C, _, _, p = case
    OH, OW = _geom(case)
    y = np.full((x.shape[0], C, OH, OW), np.nan, x.dtype)
    _conv.conv2d_forward_depthwise(
        x, w, b, y, 2, 2, p[0], p[2], 1, 1, C, n_threads,
        residual=residual, act=act, a0=a0, a1=a1, _blocks=blocks,
    )  # fmt: skip
    return y


def _data(case, n, dtype):
    C, H, W, _ = case
    x = RNG.standard_normal((n, C, H, W)).astype(dtype)
    w = RNG.standard_normal((C, 1, 3, 3)).astype(dtype)
    b = RNG.standard_normal(C).astype(dtype)
    return x, w, b


def _reference(x, w, b, case):
    C, _, _, p = case
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), p[:2], p[2:]))
    return R.conv2d(xp, w.astype(np.float64), None if b is None else b.astype(np.float64),
                    stride=2, padding=0, groups=C)  # fmt: skip


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_s2_rows_give_the_per_plane_bits(case, dtype):
    x, w, b = _data(case, 2, dtype)
    assert (_kernel(x, case, 3), _kernel(x, case, 0)) == ("s2_rows", "planes")
    for bias in (b, None):
        want = _run(x, w, bias, case, 0, 1)
        for n_threads in (1, 2):
            got = _run(x, w, bias, case, 3, n_threads)
            np.testing.assert_array_equal(got.view(np.uint8), want.view(np.uint8))
        other = _run(x, w, bias, case, 2, 1)  # the row rings, or the channel blocks
        np.testing.assert_array_equal(other.view(np.uint8), want.view(np.uint8))
        close_to_oracle(want, _reference(x, w, bias, case), dtype)


@pytest.mark.parametrize("case", [CASES[1], CASES[4], CASES[5]])
@pytest.mark.parametrize("act, a0, a1", EPILOGUE_ACTS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_s2_rows_keep_the_epilogue(case, act, a0, a1, dtype):
    """The clamps fused into the rows' taps, LeakyReLU after the plane: the per-plane kernels'
    bits, and the plain sum activated by hand."""
    x, w, b = _data(case, 2, dtype)
    want = _run(x, w, b, case, 0, 1, act=act, a0=a0, a1=a1)
    for n_threads in (1, 2):
        got = _run(x, w, b, case, 3, n_threads, act=act, a0=a0, a1=a1)
        np.testing.assert_array_equal(got, want)
    plain = _run(x, w, b, case, 3, 1)
    expect = epilogue_by_hand(plain, act, a0, a1)
    np.testing.assert_array_equal(got, expect)


def test_s2_rows_are_not_taken_with_a_residual():
    """A residual goes to the other kernels (their write-out adds it), even forced: the same
    bits as the per-plane kernels, and the plain sum plus the residual."""
    case = CASES[4]
    x, w, b = _data(case, 2, np.float32)
    assert _kernel(x, case, 3, residual=True) != "s2_rows"
    r = RNG.standard_normal((2, case[0]) + _geom(case)).astype(np.float32)
    got = _run(x, w, b, case, 3, 2, residual=r)
    np.testing.assert_array_equal(got, _run(x, w, b, case, 0, 1, residual=r))
    np.testing.assert_array_equal(got, _run(x, w, b, case, 3, 1) + r)


def test_s2_rows_propagate_nonfinite_values_like_the_planes():
    case = CASES[6]
    x, w, b = _data(case, 2, np.float32)
    x[0, 0, 0, 0] = np.nan  # the first column, beside the left padding
    x[1, 1, 6, 224] = np.inf  # the last column of the last row: the scalar end
    x[1, 0, 3, 120] = -np.inf
    x[0, 1, 3, 0] = np.nan  # column 0 of a later row: its split's first (scalar) column
    w[1, 0, 2, 2] = np.nan
    got, want = _run(x, w, b, case, 3, 2, act=2), _run(x, w, b, case, 0, 1, act=2)
    assert np.isnan(got).any() and np.isnan(got[1, 1]).all()
    np.testing.assert_array_equal(got.view(np.uint8), want.view(np.uint8))


def test_functional_conv2d_takes_s2_rows_in_any_batch():
    """F.conv2d on a stride-2 layer 56 wide (the rule): the per-plane kernels' bits, the same
    for an image alone or inside a batch, and the naive loops' values; a channel multiplier
    (two filters per channel) goes elsewhere, with the naive loops' values too."""
    case = (24, 112, 112, (1, 1, 1, 1))
    x, w, b = _data(case, 3, np.float32)
    assert _kernel(x, case, -1) == "s2_rows"
    assert _kernel(x[:, :, :64, :94], (24, 64, 94, (1, 1, 1, 1)), -1) == "rings"  # 47 wide
    y = F.conv2d(x, w, b, stride=2, padding=1, groups=24)
    np.testing.assert_array_equal(y, _run(x, w, b, case, 0, 1))
    np.testing.assert_array_equal(y, _run(x, w, b, case, 3, 2))
    np.testing.assert_array_equal(F.conv2d(x[2:3], w, b, stride=2, padding=1, groups=24), y[2:3])
    close_to_oracle(y, _reference(x, w, b, case), np.float32)
    w2 = RNG.standard_normal((48, 1, 3, 3)).astype(np.float32)
    y2 = np.full((3, 48, 56, 56), np.nan, np.float32)
    _conv.conv2d_forward_depthwise(x, w2, None, y2, 2, 2, 1, 1, 1, 1, 24, 1, _blocks=3)
    close_to_oracle(y2, _reference(x, w2, None, case), np.float32)  # 2 filters per channel


def test_s2_scratch_mirrored_by_the_routes():
    """_routes.depthwise_s2_scratch: the ring of three split rows for MobileNetV2's 112-wide
    layer, within the route's scratch bound; 0 where the kernel is never taken."""

    def shape(C, H, k=3, s=2, d=1, m=1):
        return depthwise_conv_shape(C, H, H, k, s, k // 2 * d, d, m)

    sh = shape(96, 112)
    assert _routes.depthwise_s2_scratch(sh) == 6 * 64  # 57 columns of each phase, pitch 64
    assert _routes.depthwise_scratch(sh) >= _routes.depthwise_s2_scratch(sh)
    for other in (shape(96, 112, k=5), shape(96, 112, s=1), shape(8, 40, m=2), shape(8, 40, d=2)):
        assert _routes.depthwise_s2_scratch(other) == 0
