"""The GEMM route's forward pass with its B packed straight from the input (gemm_pack_b_gather).

Where a work item puts several images side by side in the GEMM's columns (small planes) and is
not split into filter blocks sharing its B, the unfolded input is no longer written out first
(_im2col_tile) and then packed: the packing reads each
element from x through a table of offsets (-1 for the zero padding), cut per column strip and
kernel tap into runs of zeros or of evenly strided offsets. The packed values are the same, so
the outputs must be the same bits as the unfolding path, which one image alone on one thread
still takes (one work item, one filter block: no table), and so do the filter blocks sharing B
(few work items on 2 or more threads). The shapes cross the gather's
boundaries: runs that cross image boundaries (7x7: 49 columns per image), strided runs (stride
2, dilation 2), zero runs (padding, a 5x5 kernel on 6x6), several groups of 8 column strips
(more than 384 columns), non-square kernels and groups, a table too large (a 60x60 kernel
on 48 images side by side: the unfolding path instead), and blocks of images whose number
follows the thread count (the batch split evenly); two batch-1 shapes check the paths
without a table against the same oracle. The naive loops of
tests/reference.py are the oracle for the values themselves."""

import numpy as np
import pytest

import reference as ref
from convext._kernels import _conv

# (N, C, H, W, F, kh, kw, sh, sw, ph, pw, dh, dw, groups)
SHAPES = [
    (16, 400, 7, 7, 24, 1, 1, 1, 1, 0, 0, 1, 1, 1),  # 1x1 on 7x7: images side by side
    (16, 40, 7, 7, 24, 1, 1, 1, 1, 0, 0, 1, 1, 1),  # under 385 channels: one image per item
    (16, 24, 14, 14, 32, 1, 1, 2, 2, 0, 0, 1, 1, 1),  # 1x1 stride 2: no subsampled copy
    (7, 20, 9, 11, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1),  # 693 columns: two groups of strips
    (5, 16, 10, 12, 24, 3, 2, 2, 1, 1, 0, 2, 1, 2),  # non-square, stride, dilation, groups
    (16, 64, 7, 7, 40, 3, 3, 1, 1, 1, 1, 1, 1, 1),  # 3x3 on 7x7 (resnet's last stage)
    (3, 30, 6, 6, 20, 5, 5, 1, 1, 2, 2, 1, 1, 1),  # mostly zero runs
    (1, 12, 40, 40, 32, 3, 3, 1, 1, 1, 1, 1, 1, 1),  # batch 1, 3 pixel tiles: no table
    (1, 70, 7, 7, 48, 3, 3, 2, 2, 1, 1, 1, 1, 1),  # batch 1, shared B on 2+ threads: no table
    (64, 1, 61, 61, 8, 60, 60, 1, 1, 0, 0, 1, 1, 1),  # 3600 taps x 192 columns: unfolding
    # 3 images of 4608 taps a tile: 8 images in 4 blocks of 2 on 2 threads, 3 blocks on 1 and 3
    (8, 512, 7, 7, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1),
]


def _out_hw(shape):
    N, C, H, W, F, kh, kw, sh, sw, ph, pw, dh, dw, G = shape
    return (H + 2 * ph - dh * (kh - 1) - 1) // sh + 1, (W + 2 * pw - dw * (kw - 1) - 1) // sw + 1


def _data(shape, dtype, seed=0):
    N, C, H, W, F, kh, kw, *_, G = shape
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


def _forward(x, w, b, shape, n_threads, packed=None):
    N, C, H, W, F, kh, kw, sh, sw, ph, pw, dh, dw, G = shape
    y = np.full((x.shape[0], F, *_out_hw(shape)), np.nan, x.dtype)
    _conv.conv2d_forward_gemm(
        x, w, b, y, sh, sw, ph, pw, dh, dw, G, n_threads, None, 0, 0.0, 0.0, packed
    )
    return y


def _oracle(x, w, b, shape):
    N, C, H, W, F, kh, kw, sh, sw, ph, pw, dh, dw, G = shape
    return ref.conv2d(x, w, b, stride=(sh, sw), padding=(ph, pw), dilation=(dh, dw), groups=G)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES, ids=[f"s{i}" for i in range(len(SHAPES))])
def test_gathered_forward_matches_the_oracle(dtype, shape):
    x, w, b = _data(shape, dtype)
    want = _oracle(x, w, b, shape)
    for n_threads in (1, 2):
        got = _forward(x, w, b, shape, n_threads)
        if dtype == np.float64:
            np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)
        else:
            assert np.abs(got - want).max() <= 1e-5 * max(1.0, np.abs(want).max())


@pytest.mark.parametrize("packed", [False, True], ids=["w", "packed"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES, ids=[f"s{i}" for i in range(len(SHAPES))])
def test_gathered_forward_is_bitwise_the_unfolding_path(dtype, shape, packed):
    """Each image of the batch, on 1 to 3 threads, against that image alone on one thread
    (one work item and one filter block: unfolded by _im2col_tile, or for a 1x1 kernel with
    stride 1 read in place by the GEMM)."""
    x, w, b = _data(shape, dtype, seed=1)
    pk = _pack(w, shape[-1]) if packed else None
    alone = np.concatenate([_forward(x[n : n + 1], w, b, shape, 1, pk) for n in range(len(x))])
    for n_threads in (1, 2, 3):
        got = _forward(x, w, b, shape, n_threads, pk)
        np.testing.assert_array_equal(got.view(np.uint8), alone.view(np.uint8))
