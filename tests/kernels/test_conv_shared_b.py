"""The GEMM route's forward pass when an item's filter blocks share its B (few work items: batch
1, or a few blocks of images side by side on a small plane, with 2 or more threads).

Then every (image, group, pixel tile) item's unfolded input is packed once, whole (gemm_pack_b),
by all the threads, a block of channels at a time, and the filter blocks multiply it in place
(gemm_pb). One thread takes the other path (one item, one filter block: _fwd_gemm, which packs
B inside its GEMM), so comparing thread counts compares the two paths: the outputs must be the
same bits. The shapes cross the shared path's boundaries: channel blocks (256 unfolded rows:
28 channels of a 3x3 kernel; smaller where that would give fewer than two packing steps per
thread, down to one channel a step), several pixel tiles of one image, images side by side (nimg;
a 1x1 kernel on enough channels among them), groups, stride, the last column strip 1, a few
and many columns wide (49 = 48 + 1, 60 = 48 + 12), filter blocks that are not a multiple of the
tile's rows, with and without the packed weight and the epilogue, float32 and float64. The naive
loops of tests/reference.py are the oracle for the values themselves.

A 1x1 kernel reading its images in place takes no shared B where the thread count is a multiple
of the items (batch 1): one filter block per thread, each packing its own strips of the image
inside its GEMM (_prep_gemm); with other counts (3 images, or 3 groups, on 2 threads) it keeps
the shared B, packed straight from the image. Its shapes below compare both with the one thread
in the same way.

On a plane of at least twice as many pixels as filters the few items are made more instead:
the plane is cut into pixel tiles, two per thread (_split_pixels in _conv.pyx), with no filter
blocks where that gives enough items; the same bits again (PIXEL_SPLIT below)."""

import numpy as np
import pytest

import reference as ref
from convext._kernels import _conv
from convext.inference import ACT_RELU

# (N, C, H, W, F, kh, kw, stride, pad, groups)
SHAPES = [
    (1, 61, 7, 7, 40, 3, 3, 1, 1, 1),  # 3 channel blocks (28 + 28 + 5), 49 = 48 + 1 columns
    (1, 120, 20, 20, 208, 3, 3, 1, 1, 1),  # 3 pixel tiles (192 + 192 + 16): 3 items
    (1, 300, 10, 6, 33, 1, 1, 1, 0, 1),  # 1x1 read in place: a filter block per thread
    (1, 600, 7, 7, 64, 1, 1, 1, 0, 1),  # 1x1 read in place, K 600 (two chunks of the GEMM's K)
    (3, 100, 5, 5, 64, 3, 3, 1, 0, 1),  # 3 images side by side (27 columns), filter blocks
    (8, 40, 7, 7, 48, 3, 3, 1, 1, 1),  # all 8 images side by side: 392 columns, past NC
    (1, 32, 12, 10, 40, 3, 3, 2, 1, 2),  # groups and stride: 2 items, 30 columns
    (1, 20, 8, 15, 161, 3, 3, 1, 1, 1),  # 120 = 2 * 48 + 24 columns; 161 filters
    (1, 50, 10, 6, 20, 1, 1, 1, 0, 1),  # 1x1, 60 = 48 + 12 columns, 20 filters
    (1, 3, 9, 9, 24, 1, 1, 1, 0, 1),  # 1x1 on 3 channels: fewer than the steps, one a step
    # filter blocks of whole strips of the tile's rows, their strip counts within one of each
    # other: 32 filters (AVX2: 6 strips, the last of 2 rows; in 2 or 3 blocks), 64 (11 strips)
    (1, 40, 9, 9, 32, 1, 1, 1, 0, 1),
    (1, 24, 6, 6, 64, 3, 3, 1, 1, 1),
    # 1x1 on 400 channels: 3 images side by side (75 columns), B unfolded then shared
    (3, 400, 5, 5, 64, 1, 1, 1, 0, 1),
    # 1x1 read in place, 3 items: at 2 threads the shared B, at 3 one filter block per thread
    (3, 64, 7, 7, 96, 1, 1, 1, 0, 1),
    (1, 48, 6, 5, 72, 1, 1, 1, 0, 3),  # 3 groups: 3 items
]


def _out_hw(H, W, kh, kw, s, p):
    return (H + 2 * p - kh) // s + 1, (W + 2 * p - kw) // s + 1


def _data(shape, dtype, seed=0):
    N, C, H, W, F, kh, kw, s, p, G = shape
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    w = (rng.standard_normal((F, C // G, kh, kw)) / np.sqrt(C // G * kh * kw)).astype(dtype)
    b = rng.standard_normal(F).astype(dtype)
    return x, w, b


def _pack(w, groups):
    F, cg, kh, kw = w.shape
    n = _conv.gemm_packed_weight_elems(F, cg * kh * kw, groups, w.dtype == np.float64)
    packed = np.empty(n, w.dtype)
    _conv.conv2d_pack_weight_gemm(w, packed, groups)
    return packed


def _forward(x, w, b, shape, n_threads, packed=None, residual=None, act=0):
    N, C, H, W, F, kh, kw, s, p, G = shape
    OH, OW = _out_hw(H, W, kh, kw, s, p)
    y = np.full((x.shape[0], F, OH, OW), np.nan, x.dtype)
    _conv.conv2d_forward_gemm(
        x, w, b, y, s, s, p, p, 1, 1, G, n_threads, residual, act, 0.0, 0.0, packed
    )
    return y


def _bits(a):
    return a.view(np.uint8)


@pytest.mark.parametrize("packed", [False, True], ids=["w", "packed"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES, ids=[f"s{i}" for i in range(len(SHAPES))])
def test_shared_b_is_bitwise_the_one_thread_path(dtype, shape, packed):
    x, w, b = _data(shape, dtype)
    pk = _pack(w, shape[-1]) if packed else None
    want = _forward(x, w, b, shape, 1, pk)  # one item per filter block: B packed per GEMM
    for n_threads in (2, 3, 4):
        got = _forward(x, w, b, shape, n_threads, pk)
        np.testing.assert_array_equal(_bits(got), _bits(want))
    # every batch size: each image alone (batch 1: shared B, or a 1x1 kernel's own strips) gives
    # the bits it gets in the batch
    for n in range(x.shape[0]):
        alone = _forward(x[n : n + 1], w, b, shape, 2, pk)
        np.testing.assert_array_equal(_bits(alone), _bits(want[n : n + 1]))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "shape", [SHAPES[0], SHAPES[2], SHAPES[4], SHAPES[6], SHAPES[9], SHAPES[10], SHAPES[11]]
)
def test_shared_b_matches_the_naive_oracle(dtype, shape):
    N, C, H, W, F, kh, kw, s, p, G = shape
    x, w, b = _data(shape, dtype, seed=5)
    want = ref.conv2d(
        x.astype(np.float64), w.astype(np.float64), b.astype(np.float64), s, p, groups=G
    )
    scale = max(1.0, float(np.abs(want).max()))
    tol = 1e-10 if dtype == np.float64 else 1e-5
    for packed in (None, _pack(w, G)):
        got = _forward(x, w, b, shape, 2, packed)
        assert np.abs(got - want).max() <= tol * scale


@pytest.mark.parametrize(
    "shape", [SHAPES[1], SHAPES[4], SHAPES[2], SHAPES[-2]], ids=["tiles", "nimg", "1x1", "1x1b3"]
)
def test_shared_b_with_epilogue(shape):
    x, w, b = _data(shape, np.float32, seed=2)
    plain = _forward(x, w, b, shape, 1)
    r = np.random.default_rng(3).standard_normal(plain.shape).astype(np.float32)
    want = _forward(x, w, b, shape, 1, residual=r, act=ACT_RELU)
    np.testing.assert_array_equal(want, np.maximum(plain + r, 0))
    for n_threads in (2, 3):
        got = _forward(x, w, b, shape, n_threads, _pack(w, 1), residual=r, act=ACT_RELU)
        np.testing.assert_array_equal(_bits(got), _bits(want))


def test_nonfinite_input_stays_in_its_pixel():
    """A NaN in one input pixel reaches only the outputs whose windows read it (the packed B's
    padding columns and the other channel blocks do not carry it)."""
    shape = SHAPES[0]
    x, w, b = _data(shape, np.float32, seed=7)
    x[0, 60, 6, 6] = np.nan  # the last channel block, the last (49th) column's pixel
    got = _forward(x, w, b, shape, 2)
    np.testing.assert_array_equal(_bits(got), _bits(_forward(x, w, b, shape, 1)))
    bad = np.isnan(got[0]).any(axis=0)
    want = np.zeros((7, 7), bool)
    want[5:, 5:] = True
    np.testing.assert_array_equal(bad, want)


# (N, C, H, W, F, kh, kw, stride, pad, groups): planes of at least twice as many pixels as
# filters, few items: at 2 threads the plane in tiles of a multiple of 48 pixels, 4 or more
PIXEL_SPLIT = [
    (1, 192, 28, 28, 32, 1, 1, 1, 0, 1),  # 1x1, 784 pixels: 4 tiles of 192 and one of 16
    (1, 16, 30, 30, 8, 3, 3, 1, 1, 1),  # 3x3, one tile of 900 pixels before: 4 x 192 + 132
    (1, 32, 16, 16, 8, 3, 3, 1, 1, 2),  # 2 groups: 2 planes of 256 pixels in 96 + 96 + 64
    (2, 24, 20, 20, 8, 3, 3, 2, 1, 1),  # stride 2: the batch side by side, one image 48 + 48 + 4
    (1, 40, 9, 9, 32, 1, 1, 1, 0, 1),  # 81 pixels: 48 + 33, and still 2 filter blocks each
]


@pytest.mark.parametrize("packed", [False, True], ids=["w", "packed"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", PIXEL_SPLIT, ids=[f"p{i}" for i in range(len(PIXEL_SPLIT))])
def test_pixel_split_is_bitwise_one_thread_and_the_oracle(dtype, shape, packed):
    N, C, H, W, F, kh, kw, s, p, G = shape
    x, w, b = _data(shape, dtype, seed=11)
    pk = _pack(w, G) if packed else None
    want = _forward(x, w, b, shape, 1, pk)  # one thread: the plane in tile_pixels's tiles
    for n_threads in (2, 3, 4):
        got = _forward(x, w, b, shape, n_threads, pk)
        np.testing.assert_array_equal(_bits(got), _bits(want))
    for n in range(N):
        alone = _forward(x[n : n + 1], w, b, shape, 2, pk)
        np.testing.assert_array_equal(_bits(alone), _bits(want[n : n + 1]))
    oracle = ref.conv2d(
        x.astype(np.float64), w.astype(np.float64), b.astype(np.float64), s, p, groups=G
    )
    tol = 1e-10 if dtype == np.float64 else 1e-5
    assert np.abs(want - oracle).max() <= tol * max(1.0, float(np.abs(oracle).max()))
