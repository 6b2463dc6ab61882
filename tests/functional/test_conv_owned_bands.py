"""The threads' bands and planes (_conv.pyx, _owned_bands, _owns_planes): with fewer images
(or image-group pairs) than threads, the direct route's pixel blocks and the GEMM's pixel tiles
of a plane with at least twice as many pixels as filters split each plane into one band of rows
per thread, in a static schedule; with a multiple of the thread count, each thread takes whole
planes (or blocks of images side by side) in a static schedule. Each gives the bits of one
thread, for batch 1, 2, 4 and 6 on 2, 3 and 4 threads (bands of 2, 3 and 4, 2 per image, and
whole images where the batch divides), on planes of fewer strips than bands too, with and
without the fused epilogue; and the naive loops' values. The depthwise kernels, which keep
their split by channels, give one thread's bits at batch 1 and 2 on as many threads."""

import numpy as np
import pytest

import reference as R
from cases import close_to_oracle
from convext._kernels import _conv

RNG = np.random.default_rng(71)
THREADS = (2, 3, 4)


def _data(xs, ws, dtype):
    x = RNG.standard_normal(xs).astype(dtype)
    w = RNG.standard_normal(ws).astype(dtype)
    b = RNG.standard_normal(ws[0]).astype(dtype)
    return x, w, b


def _out_hw(xs, ws, s, p):
    return tuple((n + 2 * p - k) // s + 1 for n, k in zip(xs[2:], ws[2:], strict=True))


def _dense(route, x, w, b, s, p, n_threads, act=0, a1=0.0):
    y = np.full(x.shape[:1] + w.shape[:1] + _out_hw(x.shape, w.shape, s, p), np.nan, x.dtype)
    kernel = getattr(_conv, f"conv2d_forward_{route}")
    kernel(x, w, b, y, s, s, p, p, 1, 1, 1, n_threads, None, act, 0.0, a1)
    return y


# (x shape without the batch, w shape, stride, padding): the direct route splits a plane into
# pixel blocks where its input outweighs its weights; the GEMM splits it into pixel tiles where
# it has at least twice as many pixels as filters
DIRECT_CASES = [
    ((16, 20, 20), (48, 16, 1, 1), 1, 0),  # an expansion layer: 9 strips of 48 pixels
    ((8, 7, 7), (24, 8, 1, 1), 1, 0),  # 49 pixels: 2 strips, fewer than 3 or 4 bands
    ((6, 23, 19), (10, 6, 3, 3), 1, 1),  # 3x3 with padding: bands cut inside rows
    ((5, 31, 29), (7, 5, 3, 3), 2, 1),  # stride 2
]
GEMM_CASES = [
    ((32, 20, 20), (8, 32, 1, 1), 1, 0),  # a projection: the input read in place
    ((24, 12, 12), (6, 24, 1, 1), 1, 0),  # 144 pixels: 3 strips
    ((4, 40, 37), (8, 4, 3, 3), 1, 1),  # unfolded tiles
    ((3, 50, 47), (5, 3, 3, 3), 2, 0),  # stride 2, unfolded
]


@pytest.mark.parametrize("route, case", [("direct", c) for c in DIRECT_CASES]
                         + [("gemm", c) for c in GEMM_CASES])  # fmt: skip
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dense_routes_give_one_threads_bits_in_bands(route, case, dtype):
    cs, ws, s, p = case
    for n in (1, 2, 4, 6):
        x, w, b = _data((n,) + cs, ws, dtype)
        want = _dense(route, x, w, b, s, p, 1)
        for nt in THREADS:
            got = _dense(route, x, w, b, s, p, nt)
            np.testing.assert_array_equal(got.view(np.uint8), want.view(np.uint8))
        x64, w64, b64 = (a.astype(np.float64) for a in (x, w, b))
        close_to_oracle(want, R.conv2d(x64, w64, b64, stride=s, padding=p), dtype)


@pytest.mark.parametrize("route, case", [("direct", DIRECT_CASES[0]), ("gemm", GEMM_CASES[0])])
def test_dense_routes_keep_the_clamp_in_bands(route, case):
    """ReLU6 (ACT code 2, fused in the tiles' write-out) on each band: one thread's bits, and
    the plain sum clamped by hand."""
    cs, ws, s, p = case
    x, w, b = _data((1,) + cs, ws, np.float32)
    plain = _dense(route, x, w, b, s, p, 1)
    for nt in THREADS:
        got = _dense(route, x, w, b, s, p, nt, act=2)
        np.testing.assert_array_equal(got, np.minimum(np.maximum(plain, 0), 6))


def _depthwise(x, w, b, s, p, blocks, n_threads, act=0, a1=0.0):
    C = x.shape[1]
    y = np.full(x.shape[:2] + _out_hw(x.shape, w.shape, s, p), np.nan, x.dtype)
    _conv.conv2d_forward_depthwise(x, w, b, y, s, s, p, p, 1, 1, C, n_threads,
                                   act=act, a1=a1, _blocks=blocks)  # fmt: skip
    return y


# (C, H, W, stride, _blocks): 3 forces the stride-2 or stride-1 rows, 2 the row rings
DEPTHWISE_CASES = [
    (5, 20, 17, 2, 3),
    (3, 5, 60, 1, 3),
    (3, 3, 9, 2, 3),  # one output row: fewer rows than bands
    (4, 33, 30, 2, 3),
    (17, 14, 70, 1, 2),  # a channel block and a part of one, wider than the blocks' planes
    (6, 23, 80, 2, 2),
    (3, 2, 70, 1, 2),  # two output rows
]


@pytest.mark.parametrize("case", DEPTHWISE_CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_depthwise_kernels_give_one_threads_bits_at_small_batches(case, dtype):
    C, H, W, s, blocks = case
    for n in (1, 2):
        x, w, b = _data((n, C, H, W), (C, 1, 3, 3), dtype)
        want = _depthwise(x, w, b, s, 1, 0, 1)  # the per-plane kernels
        for nt in (1,) + THREADS:
            got = _depthwise(x, w, b, s, 1, blocks, nt)
            np.testing.assert_array_equal(got.view(np.uint8), want.view(np.uint8))
            clamped = _depthwise(x, w, b, s, 1, blocks, nt, act=2)
            np.testing.assert_array_equal(clamped, np.minimum(np.maximum(want, 0), 6))
        x64, w64, b64 = (a.astype(np.float64) for a in (x, w, b))
        close_to_oracle(want, R.conv2d(x64, w64, b64, stride=s, padding=1, groups=C), dtype)
