"""The depthwise forward pass on row rings (strided windows on planes wider than 16) against
torch, on channel counts around the 16-lane block, strides 2 and 3, dilation and padding (the
bitwise comparison with the per-plane kernels: tests/functional/test_conv_depthwise_rings.py)."""

import numpy as np
import pytest

from convext import conv2d

torch = pytest.importorskip("torch")


@pytest.mark.parametrize(
    "C, H, W, k, stride, padding, dilation",
    [
        (1, 40, 40, 3, 2, 1, 1),
        (17, 56, 56, 3, 2, 1, 1),
        (17, 56, 56, 3, 2, (1, 0), 1),  # the rings on every table (no register rows: pw = 0)
        (32, 35, 70, 3, 2, 1, 1),
        (20, 30, 61, 5, 2, 2, 1),
        (9, 29, 75, 3, 3, 2, 2),
        (16, 21, 100, 2, (2, 3), 0, 1),
    ],
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_depthwise_rings_match_torch(C, H, W, k, stride, padding, dilation, dtype):
    rng = np.random.default_rng(C * 100 + H)
    x = rng.standard_normal((2, C, H, W)).astype(dtype)
    w = rng.standard_normal((C, 1, k, k)).astype(dtype)
    b = rng.standard_normal(C).astype(dtype)
    y = conv2d(x, w, b, stride, padding, dilation, groups=C)
    ty = torch.nn.functional.conv2d(
        torch.tensor(x), torch.tensor(w), torch.tensor(b), stride, padding, dilation, C
    )
    assert y.shape[3] > 16
    tol = dict(rtol=1e-10, atol=1e-10) if dtype == np.float64 else dict(rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(y, ty.numpy(), **tol)
