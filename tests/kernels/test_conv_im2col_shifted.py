"""The GEMM route's im2col when both strides are 1 and the output has as many columns as the
input (_im2col_tile_shifted: 3x3 with padding 1, any dilation with its "same" padding).

Output pixel p = oh*W + ow then reads, for tap (i, j), element p + offh*W + offw of its input
plane, so a tap's row of the unfolded tile is one flat copy of the plane shifted by a constant;
the copy leaves out the pixels whose element lies outside the plane and then writes zeros into
the columns whose element wrapped across a row's edge. The shapes cross its cases: tiles that
start and end inside a row (3 pixel tiles of 768, 768 and 64 pixels on a 40x40 plane),
dilation with its padding, a shift of more than the whole row (dilation 5 on a plane 3 wide:
every column wraps for the outer taps), row padding larger than "same" (more output rows than
input rows), a kernel one column wide (no column wraps), a 1x1 plane, and a wide kernel
(shifts of up to two columns). The forward and the weight gradient (which unfold the same way)
against the naive loops of tests/reference.py, on 1 and 2 threads; a NaN on a row's first
column must not reach the previous row's last output through the wrap; and shifts of 2**39
rows or 2**20 columns, or of all but one column of a wide row (the index arithmetic stays
within the tile and the plane) give the oracle's values."""

import numpy as np
import pytest

import convext
import reference as ref
from convext import functional as F

# (N, C, H, W, F, kh, kw, ph, pw, dh, dw): stride 1, OW == W
SHAPES = [
    (1, 12, 40, 40, 16, 3, 3, 1, 1, 1, 1),  # 3 pixel tiles, the first two ending mid-row
    (2, 5, 9, 13, 7, 3, 3, 2, 2, 2, 2),  # dilation 2, its "same" padding
    (1, 3, 4, 3, 4, 3, 3, 5, 5, 5, 5),  # dilation 5 on a plane 3 wide: whole rows wrap
    (1, 4, 7, 6, 5, 3, 1, 0, 0, 1, 1),  # one column wide: rows shift, no column wraps
    (1, 4, 6, 8, 5, 3, 3, 2, 1, 1, 1),  # row padding 2: 8 output rows from 6
    (1, 3, 1, 1, 2, 3, 3, 1, 1, 1, 1),  # a 1x1 plane: every tap but the centre is padding
    (1, 2, 5, 9, 3, 1, 5, 0, 2, 1, 1),  # shifts of up to two columns
]


def _data(shape, dtype, seed=0):
    N, C, H, W, F_, kh, kw, *_ = shape
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    w = (rng.standard_normal((F_, C, kh, kw)) / np.sqrt(C * kh * kw)).astype(dtype)
    b = rng.standard_normal(F_).astype(dtype)
    return x, w, b


def _geom(shape):
    ph, pw, dh, dw = shape[7:]
    return {"stride": 1, "padding": (ph, pw), "dilation": (dh, dw)}


@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES, ids=[f"s{i}" for i in range(len(SHAPES))])
def test_shifted_unfolding_matches_the_oracle(shape, dtype, n_threads, restore_threads):
    x, w, b = _data(shape, dtype)
    geom = _geom(shape)
    assert ref.conv2d(x, w, b, **geom).shape[3] == x.shape[3]  # the shifted path's case
    tol = 1e-10 if dtype == np.float64 else 1e-5
    convext.set_num_threads(n_threads)
    y = F.conv2d(x, w, b, **geom, _route="gemm")
    want = ref.conv2d(x, w, b, **geom)
    assert y.dtype == dtype
    assert np.abs(y - want).max() <= tol * max(1.0, float(np.abs(want).max()))
    gy = np.random.default_rng(1).standard_normal(y.shape).astype(dtype)
    _, gw, _ = F.conv2d_backward(gy, x, w, **geom, _route="gemm")
    _, want_gw, _ = ref.conv2d_grads(gy, x, w, **geom)
    assert np.abs(gw - want_gw).max() <= tol * max(1.0, float(np.abs(want_gw).max()))


def test_a_nan_on_a_row_edge_stays_in_its_windows():
    """x[0, 0, 2, 0] is NaN: with a 3x3 kernel it reaches outputs (1..3, 0..1) only. Its flat
    index is also one past the end of row 1, where the taps with offw = +1 of outputs (0..2,
    3) would read it if the wrapped column were not zeroed (and likewise the end of row 2 for
    offw = -1 from the row below)."""
    x, w, b = _data((1, 2, 5, 4, 3, 3, 3, 1, 1, 1, 1), np.float32, seed=4)
    x[0, 0, 2, 0] = np.nan
    y = F.conv2d(x, w, b, padding=1, _route="gemm")
    want = np.zeros((5, 4), bool)
    want[1:4, 0:2] = True
    for f in range(3):
        np.testing.assert_array_equal(np.isnan(y[0, f]), want)


@pytest.mark.parametrize(
    "xs, ws, padding, dilation",
    [
        # rows: a dilation and padding of 2**39 - 1, one output row: the outer taps' input rows
        # are 2**39 - 1 rows away, so only the centre tap reads the image
        ((1, 1, 1, 4096), (2, 1, 3, 1), ((1 << 39) - 1, 0), ((1 << 39) - 1, 1)),
        # columns: a shift of 2**20 columns on a plane 5 wide wraps every column
        ((1, 2, 3, 5), (2, 2, 1, 3), (0, 1 << 20), (1, 1 << 20)),
        # a shift of W - 1 on a row of 2**16 columns cut into tiles of a few hundred pixels:
        # all but one column of each outer tap wraps (the zeros are written per tile, only
        # within it)
        ((1, 1, 1, 1 << 16), (1, 1, 1, 3), (0, (1 << 16) - 1), (1, (1 << 16) - 1)),
    ],
)
def test_shifts_far_beyond_the_plane(xs, ws, padding, dilation):
    rng = np.random.default_rng(6)
    x = rng.standard_normal(xs).astype(np.float32)
    w = rng.standard_normal(ws).astype(np.float32)
    y = F.conv2d(x, w, None, padding=padding, dilation=dilation, _route="gemm")
    want = ref.conv2d_by_pixels(x, w, None, 1, padding, dilation)
    assert y.shape == want.shape == xs[:1] + ws[:1] + xs[2:]
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)
