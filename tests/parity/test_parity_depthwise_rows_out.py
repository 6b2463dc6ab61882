"""The depthwise forward bands written straight to the output (planes at least 56 wide, no
residual: cvx_dw_taps_act, with the clamp in the taps' loop) against torch (the bitwise
comparisons with the band's grid: tests/functional/test_conv_depthwise_rows_out.py)."""

import numpy as np
import pytest

from convext import conv2d
from convext._kernels import _conv

torch = pytest.importorskip("torch")


@pytest.mark.parametrize(
    "C, H, W, k, stride, padding, dilation",
    [
        (3, 112, 112, 3, 1, 1, 1),
        (2, 75, 56, 3, 1, 1, 1),
        (2, 40, 57, 3, 1, 1, 1),
        (2, 50, 113, 3, 2, 1, 1),
        (2, 20, 70, 5, 1, 2, 1),
    ],
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_depthwise_rows_out_match_torch(C, H, W, k, stride, padding, dilation, dtype):
    rng = np.random.default_rng(C * 1000 + H + W)
    x = (4 * rng.standard_normal((2, C, H, W))).astype(dtype)
    w = rng.standard_normal((C, 1, k, k)).astype(dtype)
    b = rng.standard_normal(C).astype(dtype)
    y = conv2d(x, w, b, stride, padding, dilation, groups=C)
    ty = torch.nn.functional.conv2d(
        torch.tensor(x), torch.tensor(w), torch.tensor(b), stride, padding, dilation, C
    ).numpy()
    tol = dict(rtol=1e-10, atol=1e-10) if dtype == np.float64 else dict(rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(y, ty, **tol)
    # the clamp in the taps' loop: ReLU, ReLU6 and Hardtanh, no residual, per-plane bands
    for act, lo, hi in ((1, 0.0, np.inf), (2, 0.0, 6.0), (4, -0.25, 0.5)):
        got = np.empty_like(y)
        _conv.conv2d_forward_depthwise(
            x, w, b, got, stride, stride, padding, padding, dilation, dilation, C, 2, None,
            act, 0.0 if act != 4 else lo, 0.0 if act != 4 else hi, _blocks=0,
        )  # fmt: skip
        want = torch.clamp(torch.tensor(ty), lo, None if hi == np.inf else hi).numpy()
        np.testing.assert_allclose(got, want, **tol)
