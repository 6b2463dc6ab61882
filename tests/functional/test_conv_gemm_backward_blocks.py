"""The GEMM route's gradients on small planes (_conv.pyx, _gx_gemm and _gw_gemm): several images
side by side in one GEMM (the input gradient's columns, the weight gradient's inner products),
the weight gradient's blocks of (image, group) pairs with boundaries inside an image's groups,
its blocks of filters or of input channels (few blocks on 2 threads), images split into pixel
tiles, and a 14x14 plane in one tile (tile_pixels); each also where the weight gradient runs as
dW^T = U gy^T (cvx_gemm_nt, GW_NT_MAX_FG and GW_NT_MIN_ROW in _conv.pyx).

Oracles: the float64 naive loops of tests/reference.py. On small-integer data every product and
partial sum is an integer below 2**24, so every summation order is exact and float32 results
must equal the oracle bit for bit whatever the blocking; on random data the usual tolerances
(RELIABILITY.md). The torch comparison of the gradients: tests/parity/test_parity_conv.py.
"""

import numpy as np
import pytest

import convext
import reference as R
from convext._kernels import _conv
from convext.functional import conv2d_backward

# (name, x shape, weight shape, stride, padding, dilation)
LAYERS = [
    # 7x7 planes: 15 images per GEMM (both passes); the weight gradient in 2 blocks of 10
    ("side-by-side", (20, 24, 7, 7), (40, 24, 3, 3), 1, 1, 1),
    # 3 groups, 5x5 planes, 5 images per GEMM: the weight gradient's 3 blocks of (image, group)
    # pairs start inside an image's groups
    ("groups-mid-image", (5, 12, 5, 5), (18, 4, 3, 3), 1, 1, 1),
    ("strided-dilated-groups", (9, 16, 9, 9), (20, 8, 3, 3), 2, 2, 2),
    # 1x1 (the input gradient writes straight into gx; the weight gradient copies the images)
    ("pointwise", (11, 40, 6, 6), (24, 40, 1, 1), 1, 0, 1),
    # more filters than taps, one block on 2 threads: the weight gradient splits its filters
    # (rows of dW, 4 blocks of 38, 38, 38 and 36), each item copying only its rows of grad_out
    ("filter-blocks", (4, 24, 7, 7), (150, 24, 1, 1), 1, 0, 1),
    ("filter-blocks-3x3", (2, 8, 7, 7), (100, 8, 3, 3), 1, 1, 1),
    # 256 pixels of 1152 taps: two pixel tiles per image (192 + 64), one image per GEMM
    ("two-tiles", (2, 128, 16, 16), (8, 128, 3, 3), 1, 1, 1),
    # 196 pixels of 1152 taps: one tile (at most a quarter over the 192 of the budget)
    ("one-tile-14x14", (3, 128, 14, 14), (8, 128, 3, 3), 1, 1, 1),
    # the weight gradient as dW^T = U gy^T (cvx_gemm_nt: at most 64 filters per group, rows of
    # U of at least 320 pixels): one image, its input channels split on 2 threads
    ("nt-channel-blocks", (1, 16, 24, 24), (40, 16, 3, 3), 1, 1, 1),
    # more filters than taps: its filters split on 2 threads (columns of dW^T)
    ("nt-filter-blocks", (1, 2, 20, 20), (60, 2, 3, 3), 1, 1, 1),
    # 576 pixels of 576 taps: two pixel tiles per image (336 + 240 in float32)
    ("nt-two-tiles", (2, 64, 24, 24), (33, 64, 3, 3), 1, 1, 1),
    ("nt-groups-strided", (3, 8, 40, 40), (12, 4, 3, 3), 2, 1, 1),
]
IDS = [c[0] for c in LAYERS]


def _kw(case):
    _, xs, ws, s, p, d = case
    return dict(stride=s, padding=p, dilation=d, groups=xs[1] // ws[1])


def _data(rng, case, dtype, integer):
    _, xs, ws, *_ = case
    kw = _kw(case)
    ys = R.conv2d(np.zeros(xs), np.zeros(ws), None, **kw).shape
    if integer:
        draw = lambda s: rng.integers(-3, 4, size=s).astype(dtype)  # noqa: E731
    else:
        draw = lambda s: rng.standard_normal(s).astype(dtype)  # noqa: E731
    return draw(ys), draw(xs), draw(ws)


def _grads(gy, x, w, kw, threads):
    convext.set_num_threads(threads)
    gx, gw, _ = conv2d_backward(gy, x, w, **kw, needs_bias_grad=False, _route="gemm")
    return gx, gw


@pytest.mark.parametrize("case", LAYERS, ids=IDS)
@pytest.mark.parametrize("threads", [1, 2])
def test_integer_data_is_exact_for_every_blocking(case, threads, restore_threads):
    gy, x, w = _data(np.random.default_rng(21), case, np.float32, integer=True)
    kw = _kw(case)
    want_x, want_w, _ = R.conv2d_grads(gy, x, w, **kw)
    assert max(np.abs(want_x).max(), np.abs(want_w).max()) < 2**24
    gx, gw = _grads(gy, x, w, kw, threads)
    np.testing.assert_array_equal(gx, want_x.astype(np.float32), strict=True)
    np.testing.assert_array_equal(gw, want_w.astype(np.float32), strict=True)


@pytest.mark.parametrize("case", LAYERS, ids=IDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_random_data_within_tolerance_and_bitwise_independent_of_threads(
    case, dtype, restore_threads
):
    gy, x, w = _data(np.random.default_rng(22), case, dtype, integer=False)
    kw = _kw(case)
    want_x, want_w, _ = R.conv2d_grads(gy, x, w, **kw)
    gx, gw = _grads(gy, x, w, kw, 1)
    tol = 1e-10 if dtype == np.float64 else 1e-5
    for got, want in ((gx, want_x), (gw, want_w)):
        assert got.dtype == dtype
        assert np.abs(got - want).max() <= tol * max(1.0, np.abs(want).max())
    gx2, gw2 = _grads(gy, x, w, kw, 2)
    np.testing.assert_array_equal(gx2, gx)
    np.testing.assert_array_equal(gw2, gw)


@pytest.mark.parametrize("case", LAYERS, ids=IDS)
def test_an_images_input_gradient_does_not_depend_on_the_batch(case, restore_threads):
    """Images side by side change no column's sum: each image's gx is the one it gets alone."""
    gy, x, w = _data(np.random.default_rng(23), case, np.float32, integer=False)
    kw = _kw(case)
    gx, _ = _grads(gy, x, w, kw, 2)
    for n in range(x.shape[0]):
        alone, _ = _grads(gy[n : n + 1], x[n : n + 1], w, kw, 1)
        np.testing.assert_array_equal(gx[n : n + 1], alone)


def _transposed(case, itemsize=4):
    """Whether the GEMM route's weight gradient runs this case as dW^T = U gy^T."""
    _, xs, ws, s, p, d = case
    ys = R.conv2d(np.zeros(xs), np.zeros(ws), None, **_kw(case)).shape
    return _conv.grad_weight_gemm_transposed(xs, ws, ys, xs[1] // ws[1], s, s, p, p, d, d, itemsize)


def test_the_weight_gradients_layout_follows_the_filters_and_the_rows():
    """dW^T = U gy^T (cvx_gemm_nt) for the nt- cases and side-by-side (at most 64 filters per
    group, rows of U of at least 320 pixels, U not the input read in place), dW = gy U^T for
    the others; 64 and 65
    filters, 319 and 320 pixels either side of the limits."""
    # side-by-side: 15 images of 49 pixels, 40 filters
    want = {c[0] for c in LAYERS if c[0].startswith("nt-")} | {"side-by-side"}
    assert {c[0] for c in LAYERS if _transposed(c)} == want
    assert not _transposed(("", (2, 64, 24, 24), (33, 64, 3, 3), 1, 1, 1), itemsize=8)  # 192
    plane = ("", (1, 4, 16, 20), (64, 4, 3, 3), 1, 1, 1)  # 320 pixels of 36 taps
    assert _transposed(plane)
    assert not _transposed(("", (1, 4, 16, 20), (65, 4, 3, 3), 1, 1, 1))
    assert not _transposed(("", (1, 4, 11, 29), (64, 4, 3, 3), 1, 1, 1))  # 319 pixels
    assert not _transposed(("", (1, 4, 16, 20), (64, 4, 1, 1), 1, 0, 1))  # 1x1 read in place


@pytest.mark.parametrize("transposed", [False, True])
@pytest.mark.parametrize("case", LAYERS, ids=IDS)
def test_both_weight_gradient_layouts_are_exact_on_integer_data(case, transposed, restore_threads):
    """Either layout, forced, on 1 and 2 threads: float32 bit for bit the float64 oracle."""
    gy, x, w = _data(np.random.default_rng(24), case, np.float32, integer=True)
    _, xs, ws, s, p, d = case
    _, want, _ = R.conv2d_grads(gy, x, w, **_kw(case))
    for threads in (1, 2):
        gw = np.full(ws, np.nan, np.float32)
        _conv.conv2d_grad_weight_gemm(
            gy, x, gw, s, s, p, p, d, d, xs[1] // ws[1], threads, transposed=transposed
        )
        np.testing.assert_array_equal(gw, want.astype(np.float32), strict=True)


def test_tile_pixels_keeps_a_plane_at_most_a_quarter_over_the_budget_in_one_tile():
    K = 1152  # 786432 bytes / (1152 * 4) = 170 pixels: the 192 floor
    assert _conv.tile_pixels(K, 100, 4) == 100
    assert _conv.tile_pixels(K, 196, 4) == 196
    assert _conv.tile_pixels(K, 240, 4) == 240
    assert _conv.tile_pixels(K, 241, 4) == 192
    assert _conv.tile_pixels(K, 10**6, 4) == 192
    assert _conv.tile_pixels(1, 10**6, 8) == 768
