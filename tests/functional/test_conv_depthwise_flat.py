"""The depthwise forward pass on flat planes (isa/depthwise.inc's cvx_dw_s1_flat, chosen by
_conv.pyx for a 3x3 window at stride 1 with one row and column of padding on every side, on
planes narrower than 32 of at most DW_FLAT_MAX_PIXELS pixels, where the table has lane
operations): each output vector holds pixels in flat order across row ends, each tap's lanes
masked to the pixels whose window element is inside the plane. The same bits as the per-plane
kernels and the channel blocks, for both dtypes, planes narrower and wider than a vector, whose
pixel count is and is not a multiple of a vector, one row, one column, one pixel, the epilogue
fused or after, non-finite values on every border, 1 and 2 threads and any batch; and the
naive loops' values. Forced (_blocks=4) it runs on every instruction set: without lane
operations pixel by pixel."""

import numpy as np
import pytest

import reference as R
from cases import EPILOGUE_ACTS, close_to_oracle, epilogue_by_hand
from convext import functional as F
from convext._kernels import _conv, _isa

RNG = np.random.default_rng(71)
LANE_ROWS = _isa.active_info()["dw_lane_rows"]
FLAT = 4  # conv2d_forward_depthwise's _blocks: flat planes wherever they apply

# (C, H, W)
PLANES = [
    (3, 1, 1),  # one pixel: every tap but the middle one in the padding
    (2, 1, 9),  # one row
    (2, 11, 1),  # one column
    (3, 2, 2),
    (4, 4, 4),  # 16 pixels: one float32 vector exactly, two float64 ones
    (3, 5, 5),  # a vector and a part
    (5, 7, 7),  # MobileNetV2's last planes: 4 float32 vectors, the last one pixel
    (2, 8, 8),  # 4 vectors exactly
    (3, 14, 14),  # 196 pixels: 12 vectors and 4 pixels
    (2, 9, 17),  # rows longer than a float32 vector
    (2, 13, 31),  # the widest the rule takes
    (2, 40, 3),  # tall and thin: many rows per vector
    (2, 32, 32),  # 1024 pixels: the rule's largest plane (forced: 32 wide goes to the rows)
]


def _run(x, w, b, blocks, n_threads, act=0, a0=0.0, a1=0.0, residual=None):
    C = x.shape[1]
    y = np.full(x.shape, np.nan, x.dtype)
    _conv.conv2d_forward_depthwise(
        x, w, b, y, 1, 1, 1, 1, 1, 1, C, n_threads,
        residual=residual, act=act, a0=a0, a1=a1, _blocks=blocks,
    )  # fmt: skip
    return y


def _kernel(shape, itemsize=4, blocks=-1, residual=False, padding=(1, 1)):
    N, C, H, W = shape
    OH, OW = H + 2 * padding[0] - 2, W + 2 * padding[1] - 2
    return _conv.depthwise_forward_kernel(
        shape, (C, 1, 3, 3), (N, C, OH, OW), C, 1, 1, padding[0], padding[1], 1, 1, itemsize,
        residual, blocks,
    )  # fmt: skip


def _data(C, H, W, n, dtype):
    x = RNG.standard_normal((n, C, H, W)).astype(dtype)
    w = RNG.standard_normal((C, 1, 3, 3)).astype(dtype)
    b = RNG.standard_normal(C).astype(dtype)
    return x, w, b


def _same_bits(got, want):
    np.testing.assert_array_equal(got.view(np.uint8), want.view(np.uint8))


@pytest.mark.parametrize("plane", PLANES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_flat_planes_give_the_per_plane_bits(plane, dtype):
    x, w, b = _data(*plane, 3, dtype)
    assert _kernel(x.shape, x.itemsize, FLAT) == "s1_flat"
    for bias in (b, None):
        want = _run(x, w, bias, 0, 1)  # the per-plane kernels
        for n_threads in (1, 2):
            _same_bits(_run(x, w, bias, FLAT, n_threads), want)
        _same_bits(_run(x, w, bias, 1, 1), want)  # the channel blocks
        _same_bits(_run(x[1:2], w, bias, FLAT, 1), want[1:2])  # an image alone
        ref = R.conv2d(x.astype(np.float64), w.astype(np.float64),
                       None if bias is None else bias.astype(np.float64), stride=1, padding=1,
                       groups=plane[0])  # fmt: skip
        close_to_oracle(want, ref, dtype)


@pytest.mark.parametrize("plane", [PLANES[6], PLANES[9]])
@pytest.mark.parametrize("act, a0, a1", EPILOGUE_ACTS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_flat_planes_keep_the_epilogue(plane, act, a0, a1, dtype):
    """The clamps fused into the flat sums, LeakyReLU after the plane: the per-plane kernels'
    bits, and the plain sum activated by hand."""
    x, w, b = _data(*plane, 2, dtype)
    want = _run(x, w, b, 0, 1, act=act, a0=a0, a1=a1)
    for n_threads in (1, 2):
        got = _run(x, w, b, FLAT, n_threads, act=act, a0=a0, a1=a1)
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(got, epilogue_by_hand(_run(x, w, b, FLAT, 1), act, a0, a1))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_flat_planes_propagate_nonfinite_values_like_the_planes(dtype):
    """Non-finite inputs on each border and at a row's end (where the flat order runs into the
    next row, whose value no tap may take), and weights of inf whose taps read only padding on
    the border (inf times a padded zero is NaN, as in torch and the per-plane kernels)."""
    x, w, b = _data(5, 7, 9, 2, dtype)
    x[0, 0, 0, 0] = np.nan
    x[0, 1, 3, 8] = np.inf  # the last column: the next pixel in flat order is the next row's
    x[0, 2, 4, 0] = -np.inf  # the first column: the previous one is the row above's
    x[1, 3, 6, 8] = np.inf  # the last pixel of the plane
    x[1, 0, 0, 4] = np.nan  # the first row
    w[4, 0, 0, 0] = np.inf  # reads the row above and the column before
    w[3, 0, 2, 2] = -np.inf  # the row below and the column after
    for act in (0, 2):
        got, want = _run(x, w, b, FLAT, 2, act=act), _run(x, w, b, 0, 1, act=act)
        _same_bits(got, want)
    assert np.isnan(got[:, 4, 0, :]).all() and np.isnan(got[:, 4, :, 0]).all()
    assert np.isnan(got[:, 3, -1, :]).all() and np.isnan(got[:, 3, :, -1]).all()
    assert not np.isnan(got[0, 1, 3, :7]).any()  # the inf in the row's last column, alone
    assert not np.isnan(got[0, 1, 2:5, 0]).any() and got[0, 1, 4, 0] != np.inf


def test_flat_planes_are_not_taken_with_a_residual():
    """A residual goes to the other kernels (their write-out adds it), even forced: the same
    bits as the per-plane kernels, and the plain sum plus the residual."""
    x, w, b = _data(4, 7, 7, 2, np.float32)
    assert _kernel(x.shape, 4, FLAT, residual=True) != "s1_flat"
    r = RNG.standard_normal(x.shape).astype(np.float32)
    got = _run(x, w, b, FLAT, 2, residual=r)
    np.testing.assert_array_equal(got, _run(x, w, b, 0, 1, residual=r))
    np.testing.assert_array_equal(got, _run(x, w, b, FLAT, 1) + r)


def test_the_rule_takes_small_same_padded_planes():
    """With the register rows (AVX-512), the 3x3 stride-1 'same' layers of MobileNetV2 below 32
    wide go to the flat planes at any batch; not other paddings, planes 32 wide (the register
    rows) nor planes of more than 1024 pixels; without them, never."""
    for shape in ((1, 192, 28, 28), (8, 384, 14, 14), (1, 960, 7, 7), (1, 24, 31, 31)):
        assert (_kernel(shape) == "s1_flat") == bool(LANE_ROWS)
        assert _kernel(shape, 8) == _kernel(shape)  # float64 alike
    assert _kernel((1, 24, 7, 7), padding=(0, 0)) != "s1_flat"
    assert _kernel((1, 24, 7, 7), padding=(2, 2)) != "s1_flat"
    assert _kernel((1, 24, 32, 32)) != "s1_flat"
    assert _kernel((1, 24, 40, 30)) != "s1_flat"  # 1200 pixels


def test_functional_conv2d_on_flat_planes_in_any_batch():
    """F.conv2d on MobileNetV2's 14x14 layer: the per-plane kernels' bits, the same for an
    image alone or inside a batch, and the naive loops' values."""
    x, w, b = _data(40, 14, 14, 3, np.float32)
    y = F.conv2d(x, w, b, stride=1, padding=1, groups=40)
    _same_bits(y, _run(x, w, b, 0, 1))
    _same_bits(F.conv2d(x[2:3], w, b, stride=1, padding=1, groups=40), y[2:3])
    ref = R.conv2d(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64), stride=1,
                   padding=1, groups=40)  # fmt: skip
    close_to_oracle(y, ref, np.float32)
