"""functional.linear / linear_backward against torch."""

import numpy as np
import pytest

from convext import functional as F

torch = pytest.importorskip("torch")


def test_linear_matches_torch():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((6, 11)).astype(np.float32)
    w = rng.standard_normal((5, 11)).astype(np.float32)
    b = rng.standard_normal(5).astype(np.float32)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    ty = torch.nn.functional.linear(tx, tw, tb)
    gy = rng.standard_normal(ty.shape).astype(np.float32)
    ty.backward(torch.tensor(gy))
    np.testing.assert_allclose(F.linear(x, w, b), ty.detach().numpy(), rtol=1e-5, atol=1e-5)
    for a, t in zip(F.linear_backward(gy, x, w), (tx.grad, tw.grad, tb.grad), strict=True):
        np.testing.assert_allclose(a, t.numpy(), rtol=1e-5, atol=1e-5)
