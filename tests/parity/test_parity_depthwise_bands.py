"""The depthwise forward pass on bands of output rows (large planes: several bands each) and its
epilogue in the copy-out against torch (the bitwise comparisons between band heights:
tests/functional/test_conv_depthwise_bands.py)."""

import numpy as np
import pytest

from convext import conv2d
from convext._kernels import _conv

torch = pytest.importorskip("torch")


@pytest.mark.parametrize(
    "C, H, W, k, stride, padding, dilation",
    [
        (3, 112, 112, 3, 1, 1, 1),
        (4, 112, 112, 3, 2, 1, 1),
        (2, 61, 126, 3, 1, 1, 1),
        (2, 70, 90, 5, (1, 2), 2, (2, 1)),
    ],
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_depthwise_bands_match_torch(C, H, W, k, stride, padding, dilation, dtype):
    rng = np.random.default_rng(C * 1000 + H + W)
    x = rng.standard_normal((2, C, H, W)).astype(dtype)
    w = rng.standard_normal((C, 1, k, k)).astype(dtype)
    b = rng.standard_normal(C).astype(dtype)
    y = conv2d(x, w, b, stride, padding, dilation, groups=C)
    ty = torch.nn.functional.conv2d(
        torch.tensor(x), torch.tensor(w), torch.tensor(b), stride, padding, dilation, C
    ).numpy()
    tol = dict(rtol=1e-10, atol=1e-10) if dtype == np.float64 else dict(rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(y, ty, **tol)
    # the fused epilogue: ReLU6 of the sum with a residual, and Hardtanh
    r = rng.standard_normal(y.shape).astype(dtype)
    s = (stride, stride) if isinstance(stride, int) else stride
    d = (dilation, dilation) if isinstance(dilation, int) else dilation
    for act, lo, hi in ((2, 0.0, 6.0), (4, -0.25, 0.5)):
        got = np.empty_like(y)
        _conv.conv2d_forward_depthwise(
            x, w, b, got, s[0], s[1], padding, padding, d[0], d[1], C, 2, r, act, lo, hi
        )
        want = torch.clamp(torch.tensor(ty) + torch.tensor(r), lo, hi).numpy()
        np.testing.assert_allclose(got, want, **tol)
