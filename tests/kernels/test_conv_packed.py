"""The GEMM route's forward pass with the weight packed once (conv2d_pack_weight_gemm, then
conv2d_forward_gemm(..., packed=)), as convext.inference runs it.

The packed GEMM reads the same values in the same order as the GEMM that packs its A blocks on
every call, so the outputs must be the same bits: checked here under the active instruction set
(the ISA matrix runs tests/kernels under each CONVEXT_ISA) on shapes crossing the GEMM's
blocking (tile rows MR, KC = 384 with two and three K chunks, MC = 144 rows, NC = 384 columns),
with groups, stride, the batch-1 split into filter blocks, several images side by side in the
GEMM's columns, the 1x1 route that reads the image in place, the epilogue, float32 and float64,
1 and 2 threads, and every batch size. The naive loops of tests/reference.py are the oracle
for the values themselves (float64: rtol 1e-10; float32: 1e-5 of the largest output)."""

import numpy as np
import pytest

import reference as ref
from convext._kernels import _conv, _isa
from convext.inference import ACT_RELU

# (N, C, H, W, F, kh, kw, stride, pad, groups)
SHAPES = [
    (1, 512, 7, 7, 512, 3, 3, 1, 1, 1),  # K = 4608: 12 K chunks; batch 1: filter blocks
    (2, 43, 9, 9, 150, 3, 3, 1, 1, 1),  # K = 387: 2 chunks; 150 filters: past MC
    (1, 20, 21, 20, 37, 1, 1, 1, 0, 1),  # 1x1 (image is the cols matrix), 420 columns: past NC
    (3, 12, 20, 20, 30, 3, 2, 2, 1, 3),  # groups, stride, non-square kernel
    (2, 769, 3, 3, 9, 1, 1, 1, 0, 1),  # K = 769: 3 chunks; fewer filters than MR
    (5, 64, 7, 7, 100, 3, 3, 1, 1, 2),  # small planes: images side by side, groups
    (1, 30, 5, 5, 161, 3, 3, 1, 1, 1),  # batch 1, filter blocks not a multiple of 8 or 6
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
    packed = np.full(n, np.nan, w.dtype)  # every element must be written
    _conv.conv2d_pack_weight_gemm(w, packed, groups)
    return packed


def _forward(x, w, b, shape, n_threads, packed=None, residual=None, act=0):
    N, C, H, W, F, kh, kw, s, p, G = shape
    OH, OW = _out_hw(H, W, kh, kw, s, p)
    y = np.full((x.shape[0], F, OH, OW), np.nan, x.dtype)
    args = (x, w, b, y, s, s, p, p, 1, 1, G, n_threads, residual, act, 0.0, 0.0)
    if packed is None:
        _conv.conv2d_forward_gemm(*args)
    else:
        _conv.conv2d_forward_gemm(*args, packed)
    return y


def test_packed_size_is_the_tile_strips():
    """Per group, ceil(F/G / MR) strips of MR rows x K (the active tile's MR)."""
    for dtype, key in ((np.float32, "sgemm_tile"), (np.float64, "dgemm_tile")):
        mr = _isa.active_info()[key][0]
        for F, K, G in [(1, 1, 1), (512, 4608, 1), (37, 20, 1), (30, 36, 3), (161, 270, 7)]:
            Fg = F // G
            want = G * -(-Fg // mr) * mr * K
            assert _conv.gemm_packed_weight_elems(F, K, G, dtype == np.float64) == want
        w = np.random.default_rng(1).standard_normal((10, 3, 2, 2)).astype(dtype)
        keep = w.copy()
        packed = _pack(w, 1)
        np.testing.assert_array_equal(w, keep)  # the weight is only read
        assert not np.isnan(packed).any()  # padded strip rows are zeros, not left unwritten


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES, ids=[f"s{i}" for i in range(len(SHAPES))])
def test_packed_forward_is_bitwise_the_unpacked_one(dtype, shape):
    x, w, b = _data(shape, dtype)
    packed = _pack(w, shape[-1])
    want = _forward(x, w, b, shape, 2)
    for n_threads in (1, 2):
        got = _forward(x, w, b, shape, n_threads, packed)
        np.testing.assert_array_equal(got.view(np.uint8), want.view(np.uint8))
    # every batch size: each image alone gives the bits it gets in the batch
    for n in range(x.shape[0]):
        alone = _forward(x[n : n + 1], w, b, shape, 2, packed)
        np.testing.assert_array_equal(alone.view(np.uint8), want[n : n + 1].view(np.uint8))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_packed_forward_with_epilogue(dtype):
    shape = SHAPES[1]
    x, w, b = _data(shape, dtype, seed=2)
    packed = _pack(w, shape[-1])
    plain = _forward(x, w, b, shape, 2)
    r = np.random.default_rng(3).standard_normal(plain.shape).astype(dtype)
    want = _forward(x, w, b, shape, 2, residual=r, act=ACT_RELU)
    for n_threads in (1, 2):
        got = _forward(x, w, b, shape, n_threads, packed, residual=r, act=ACT_RELU)
        np.testing.assert_array_equal(got.view(np.uint8), want.view(np.uint8))
    assert (want >= 0).all() and (want == 0).any() and (want > 0).any()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [SHAPES[3], SHAPES[4], SHAPES[6]], ids=["groups", "K3", "b1"])
def test_packed_forward_matches_the_naive_oracle(dtype, shape):
    N, C, H, W, F, kh, kw, s, p, G = shape
    x, w, b = _data(shape, dtype, seed=5)
    got = _forward(x, w, b, shape, 2, _pack(w, G))
    want = ref.conv2d(
        x.astype(np.float64), w.astype(np.float64), b.astype(np.float64), s, p, groups=G
    )
    scale = max(1.0, float(np.abs(want).max()))
    tol = 1e-10 if dtype == np.float64 else 1e-5
    assert np.abs(got - want).max() <= tol * scale


def test_nonfinite_weight_stays_in_its_filter():
    """A NaN in one filter of the packed weight makes only that filter's outputs NaN (the zero
    rows padding the last strip, and the strips of other filter blocks, do not carry it)."""
    shape = SHAPES[6]
    x, w, b = _data(shape, np.float32, seed=7)
    w[160, 3, 1, 2] = np.nan  # the last filter: in the last, partial strip
    w[5, 0, 0, 0] = np.inf
    got = _forward(x, w, b, shape, 2, _pack(w, 1))
    want = _forward(x, w, b, shape, 2)
    np.testing.assert_array_equal(got.view(np.uint8), want.view(np.uint8))
    bad = np.isnan(got).any(axis=(0, 2, 3))
    assert bad[160] and bad[5] and bad.sum() == 2


@pytest.mark.parametrize("shape", [SHAPES[0], SHAPES[3], SHAPES[5]], ids=["b1", "groups", "nimg"])
def test_the_packed_weight_is_what_is_used(shape):
    """The GEMMs read the packed copy (not w): packing another weight gives its outputs."""
    x, w, b = _data(shape, np.float32, seed=8)
    _, w2, _ = _data(shape, np.float32, seed=9)
    got = _forward(x, w, b, shape, 2, _pack(w2, shape[-1]))
    want = _forward(x, w2, b, shape, 2)
    np.testing.assert_array_equal(got.view(np.uint8), want.view(np.uint8))
    assert not np.array_equal(got, _forward(x, w, b, shape, 2))
