"""The GEMM route's forward epilogue: bias, residual and activation applied to each item's output
block (_bias_epilogue: one pass over it for no activation or a clamp, ReLU, ReLU6 and Hardtanh;
_add_bias then _epilogue for the others), on every path of conv2d_forward_gemm: one image per
item with B packed inside the GEMM (one thread), filter blocks sharing a packed B (batch 1 on two
threads), and images side by side in the GEMM's columns (a small plane, a batch), whose output is
copied out per image. The oracle is the unfused arithmetic in NumPy on the kernel's own plain
sum (no bias, no activation): ((sum + b) + r), then the activation, with the same float
operations, so the bits must be equal; NaN and infinities go through it like any value."""

import numpy as np
import pytest

from convext._kernels import _conv
from convext.inference import ACT_HARDTANH, ACT_LEAKY, ACT_NONE, ACT_RELU, ACT_RELU6

# (N, C, H, W, F, kh, kw, pad): the path each takes at 2 threads
SHAPES = [
    (1, 64, 14, 14, 96, 1, 1, 0),  # 1x1 at batch 1: filter blocks sharing B
    (1, 24, 9, 11, 40, 3, 3, 1),  # 3x3 at batch 1: filter blocks sharing B
    (6, 40, 7, 7, 48, 3, 3, 1),  # images side by side
    (2, 16, 40, 40, 8, 3, 3, 1),  # a large plane: pixel tiles of one image
]

ACTS = [
    (ACT_NONE, 0.0, 0.0),
    (ACT_RELU, 0.0, 0.0),
    (ACT_RELU6, 0.0, 0.0),
    (ACT_HARDTANH, -0.5, 0.75),
    (ACT_LEAKY, 0.1, 0.0),
]


def _forward(x, w, b, pad, n_threads, residual=None, act=(ACT_NONE, 0.0, 0.0)):
    N, _, H, W = x.shape
    F, _, kh, kw = w.shape
    y = np.full((N, F, H + 2 * pad - kh + 1, W + 2 * pad - kw + 1), np.nan, x.dtype)
    _conv.conv2d_forward_gemm(x, w, b, y, 1, 1, pad, pad, 1, 1, 1, n_threads, residual, *act)
    return y


def _activate(v, act):
    code, a0, a1 = act
    t = v.dtype.type
    if code == ACT_NONE:
        return v
    if code == ACT_LEAKY:
        return np.where(v < 0, v * t(a0), v)
    lo, hi = {ACT_RELU: (0, np.inf), ACT_RELU6: (0, 6), ACT_HARDTANH: (a0, a1)}[code]
    v = np.where(v < t(lo), t(lo), v)  # NaN stays NaN, as in the kernel's comparisons
    return np.where(v > t(hi), t(hi), v)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_epilogue_is_the_unfused_arithmetic_on_every_path(shape, act, dtype):
    N, C, H, W, F, kh, kw, pad = shape
    rng = np.random.default_rng(F)
    x = (rng.standard_normal((N, C, H, W)) * 4).astype(dtype)
    x[0, 1, 2, 3] = np.nan
    x[-1, 0, 1, 1] = np.inf
    w = (rng.standard_normal((F, C, kh, kw)) / np.sqrt(C * kh * kw)).astype(dtype)
    b = rng.standard_normal(F).astype(dtype)
    OH, OW = H + 2 * pad - kh + 1, W + 2 * pad - kw + 1
    r = (rng.standard_normal((N, F, OH, OW)) * 4).astype(dtype)
    for n_threads in (1, 2):
        plain = _forward(x, w, None, pad, n_threads)
        assert np.isnan(plain).any() and (np.abs(plain) > 6).any()
        for bias in (None, b):
            for residual in (None, r):
                want = plain if bias is None else plain + bias[:, None, None]
                want = want if residual is None else want + residual
                got = _forward(x, w, bias, pad, n_threads, residual, act)
                np.testing.assert_array_equal(
                    got.view(np.uint8), _activate(want, act).view(np.uint8)
                )
