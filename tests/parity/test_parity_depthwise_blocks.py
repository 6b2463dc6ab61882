"""The depthwise forward pass and gradients on channel blocks (small planes) against
torch, on channel counts around the 16-lane block and at the plane-width limit (the bitwise
comparison with the per-plane kernels: tests/functional/test_conv_depthwise_blocks.py)."""

import numpy as np
import pytest

from convext import conv2d, conv2d_backward

torch = pytest.importorskip("torch")


@pytest.mark.parametrize(
    "C, H, k, stride, padding, dilation",
    [
        (1, 7, 3, 1, 1, 1),
        (17, 7, 3, 1, 1, 1),
        (31, 14, 3, 2, 1, 1),
        (48, 14, 5, 1, 2, 1),
        (20, 16, 3, 1, 1, 1),
        (19, 9, 3, 1, 2, 2),
        (5, 2, 3, 1, 1, 1),
    ],
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_depthwise_blocks_match_torch(C, H, k, stride, padding, dilation, dtype):
    rng = np.random.default_rng(C * 100 + H)
    x = rng.standard_normal((3, C, H, H)).astype(dtype)
    w = rng.standard_normal((C, 1, k, k)).astype(dtype)
    b = rng.standard_normal(C).astype(dtype)
    y = conv2d(x, w, b, stride, padding, dilation, groups=C)
    tx = torch.tensor(x, requires_grad=True)
    tw = torch.tensor(w, requires_grad=True)
    ty = torch.nn.functional.conv2d(tx, tw, torch.tensor(b), stride, padding, dilation, C)
    tol = dict(rtol=1e-10, atol=1e-10) if dtype == np.float64 else dict(rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(y, ty.detach().numpy(), **tol)
    gy = rng.standard_normal(y.shape).astype(dtype)
    ty.backward(torch.tensor(gy))
    gx, gw, _ = conv2d_backward(gy, x, w, stride, padding, dilation, C)
    np.testing.assert_allclose(gx, tx.grad.numpy(), **tol)
    np.testing.assert_allclose(gw, tw.grad.numpy(), **tol)


@pytest.mark.parametrize(
    "C, H, stride, n",
    [
        (40, 7, 1, 17),  # the weight gradient's chunks of 7 images: 7, 7, 3
        (24, 14, 1, 5),  # 14 wide: the weight gradient on blocks too, chunks of 2
        (33, 14, 2, 9),  # 7 wide out of 14, chunks of 3
        (18, 28, 2, 3),  # 14 wide out of 28: one image per chunk
    ],
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_depthwise_block_gradients_over_batches_match_torch(C, H, stride, n, dtype):
    """MobileNetV2's small-plane geometries (3x3, padding 1) at batches that cross the weight
    gradient's chunks of images."""
    rng = np.random.default_rng(C * 7 + H + n)
    x = rng.standard_normal((n, C, H, H)).astype(dtype)
    w = rng.standard_normal((C, 1, 3, 3)).astype(dtype)
    tx = torch.tensor(x, requires_grad=True)
    tw = torch.tensor(w, requires_grad=True)
    ty = torch.nn.functional.conv2d(tx, tw, None, stride, 1, 1, C)
    gy = rng.standard_normal(tuple(ty.shape)).astype(dtype)
    ty.backward(torch.tensor(gy))
    gx, gw, _ = conv2d_backward(gy, x, w, stride, 1, 1, C, needs_bias_grad=False)
    tol = dict(rtol=1e-10, atol=1e-10) if dtype == np.float64 else dict(rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(gx, tx.grad.numpy(), **tol)
    np.testing.assert_allclose(gw, tw.grad.numpy(), **tol)
