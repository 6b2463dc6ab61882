"""The dense forward with the weight packed once (_linear.dense_pack, then dense_forward), as
convext.inference runs a Dense layer at small batch sizes.

Each output element must get exactly the arithmetic of the GEMM that linear_forward runs
(x @ w^T with the same K chunks, the same FMA chain per chunk, then + bias), so the outputs
must be the same bits as linear_forward's for every batch size and thread count: checked here
under the active instruction set (the ISA matrix runs tests/kernels under each CONVEXT_ISA) on
shapes crossing the packed strips (16 to 64 rows of w by ISA and dtype; fewer rows than one
strip), the row tiles of x (1, 2 and 4 rows), and the GEMM's K chunks (KC = 384: one, two and
three chunks), float32 and float64, with and without a bias, 1 and 2 threads. Float64 NumPy
(einsum) is the oracle for the values themselves (float64: rtol 1e-10; float32: 1e-5 of the
largest output), as in tests/functional/test_linear.py."""

import numpy as np
import pytest

from convext._kernels import _linear

# (M rows of x, N rows of w, K)
SHAPES = [
    (1, 1000, 512),  # resnet18's fc at batch 1: two K chunks
    (8, 1000, 1280),  # mobilenet_v2's classifier at batch 8: four K chunks
    (3, 70, 385),  # 3 rows: a 2-row and a 1-row tile; two chunks, one a row longer
    (7, 129, 769),  # 4 + 2 + 1 rows; three chunks; a strip and a row past 128
    (5, 1, 1),  # one output, K = 1
    (2, 17, 384),  # fewer rows of w than a strip; exactly one chunk
    (9, 65, 3),
]


def _data(M, N, K, dtype, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((M, K)).astype(dtype)
    w = (rng.standard_normal((N, K)) / np.sqrt(K)).astype(dtype)
    b = rng.standard_normal(N).astype(dtype)
    return x, w, b


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("with_bias", [True, False])
def test_packed_dense_is_bitwise_linear_forward(shape, dtype, with_bias):
    M, N, K = shape
    x, w, b = _data(M, N, K, dtype)
    b = b if with_bias else None
    want = np.full((M, N), np.nan, dtype)
    _linear.linear_forward(x, w, b, want, 2)
    packed = _linear.dense_pack(w)
    assert packed.dtype == dtype and packed.ndim == 1 and packed.size >= N * K
    for n_threads in (1, 2):
        got = np.full((M, N), np.nan, dtype)
        _linear.dense_forward(x, packed, b, got, n_threads)
        np.testing.assert_array_equal(got.view(np.uint8), want.view(np.uint8))
    # every row alone (batch 1) gives that row of the batch, bit for bit
    for m in (0, M - 1):
        one = np.empty((1, N), dtype)
        _linear.dense_forward(np.ascontiguousarray(x[m : m + 1]), packed, b, one, 2)
        np.testing.assert_array_equal(one[0].view(np.uint8), want[m].view(np.uint8))
    # the float64 oracle
    ref = np.einsum("mk,nk->mn", x.astype(np.float64), w.astype(np.float64))
    if b is not None:
        ref = ref + b
    if dtype == np.float64:
        np.testing.assert_allclose(want, ref, rtol=1e-10, atol=1e-12)
    else:
        assert float(np.abs(want - ref).max()) <= 1e-5 * max(1.0, float(np.abs(ref).max()))


def test_packed_dense_keeps_nonfinite_values():
    """inf and NaN in x or w reach the outputs they touch exactly as in linear_forward."""
    x, w, b = _data(4, 40, 50, np.float32, seed=3)
    x[1, 7] = np.inf
    w[5, 9] = np.nan
    want = np.empty((4, 40), np.float32)
    _linear.linear_forward(x, w, b, want, 1)
    got = np.empty((4, 40), np.float32)
    _linear.dense_forward(x, _linear.dense_pack(w), b, got, 2)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_array_equal(got, want)
    assert np.isnan(got[:, 5]).all() and np.isinf(got[1]).sum() > 0
