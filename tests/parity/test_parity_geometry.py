"""The large-geometry cases of tests/reliability/test_reliability_geometry.py against torch:
values past the input (stride, padding, dilation) give torch's result on every route, and where
no window fits torch refuses the call as convext does."""

import os

import numpy as np
import pytest

from cases import MEANINGFUL_CONV as MEANINGFUL
from cases import POOL_LARGE, ROUTE_SHAPES, pool_large, routes_for
from convext import functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional

# Under the AddressSanitizer build (CI's sanitizer step) a C++ exception thrown inside torch
# aborts the process (ASan's __cxa_throw interceptor), so there the calls that make torch raise
# are not made: the naive loops of tests/reference.py are the oracle for those.
TORCH_MAY_RAISE = os.environ.get("CONVEXT_ASAN", "0") != "1"


def _int32_safe(kw):
    """torch's pooling and its slow_conv2d backward need every geometry value below 2**31."""
    vals = [
        v
        for v in kw.values()
        for v in (v if isinstance(v, tuple) else (v,))
        if isinstance(v, int) and not isinstance(v, bool)
    ]
    return max(vals, default=0) < 2**31


def _torch_conv(x, w, b, gy, kw):
    xt = torch.from_numpy(x).requires_grad_()
    wt = torch.from_numpy(w).requires_grad_()
    bt = torch.from_numpy(b).requires_grad_()
    y = TF.conv2d(xt, wt, bt, **kw)
    y.backward(torch.from_numpy(gy))
    return y.detach().numpy(), xt.grad.numpy(), wt.grad.numpy(), bt.grad.numpy()


@pytest.mark.parametrize("kw", MEANINGFUL, ids=[str(k) for k in MEANINGFUL])
@pytest.mark.parametrize("route, N, C, F_, G", ROUTE_SHAPES, ids=[r[0] for r in ROUTE_SHAPES])
@pytest.mark.parametrize("hw", [(5, 5), (3, 3), (1, 1), (1, 4)])
def test_meaningful_large_geometry_equals_torch(route, N, C, F_, G, kw, hw):
    """Forward and gradients equal torch where it computes, on every route that accepts the
    geometry: torch's backward raises on some of these strides, and at stride 2**39 with
    dilation 3 its output width is 0 where the formula floor((W + 2p - d(k-1) - 1) / s) + 1
    gives 1; there the naive loops decide (tests/reliability)."""
    rng = np.random.default_rng(9)
    x = rng.standard_normal((N, C) + hw)
    w = rng.standard_normal((F_, C // G, 2, 2))
    b = rng.standard_normal(F_)
    kw = dict(kw, groups=G)
    try:
        y = F.conv2d(x, w, b, **kw)
    except ValueError as e:  # the kernel is larger than the padded input: torch refuses it too
        assert "larger than the padded input" in str(e)
        if TORCH_MAY_RAISE:
            with pytest.raises(RuntimeError):
                TF.conv2d(torch.from_numpy(x), torch.from_numpy(w), **kw)
        return
    yt = TF.conv2d(torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b), **kw).numpy()
    gy = rng.standard_normal(y.shape)
    if y.size > 600:
        assert y.shape == yt.shape
    if y.shape != yt.shape:
        return
    allowed = routes_for(x, w, kw)
    for r in allowed["forward"]:
        np.testing.assert_allclose(F.conv2d(x, w, b, **kw, _route=r), yt, rtol=1e-10, atol=1e-10)
    tgx = None
    if TORCH_MAY_RAISE or _int32_safe(kw):
        try:
            _, tgx, tgw, tgb = _torch_conv(x, w, b, gy, kw)
        except RuntimeError:  # torch's backward fails at some strides beyond 2**31
            assert not _int32_safe(kw)
    if tgx is None:
        return
    gx, gw, gb = F.conv2d_backward(gy, x, w, **kw)
    np.testing.assert_allclose(gx, tgx, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(gw, tgw, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(gb, tgb, rtol=1e-10, atol=1e-10)
    for r in allowed["grad_input"]:
        got = F.conv2d_backward(gy, x, w, **kw, _route={"grad_input": r}, needs_weight_grad=False)[
            0
        ]
        np.testing.assert_allclose(got, tgx, rtol=1e-10, atol=1e-10)
    for r in allowed["grad_weight"]:
        got = F.conv2d_backward(gy, x, w, **kw, _route={"grad_weight": r}, needs_input_grad=False)[
            1
        ]
        np.testing.assert_allclose(got, tgw, rtol=1e-10, atol=1e-10)


def test_stride_past_the_image_on_5x5_and_padding_50_on_3x3():
    """The two plain examples of the brief, with a forced GEMM route as a cross-check."""
    rng = np.random.default_rng(1)
    for x, kw in (
        (rng.standard_normal((2, 3, 5, 5)), dict(stride=10**6)),
        (rng.standard_normal((2, 3, 3, 3)), dict(padding=50)),
    ):
        w = rng.standard_normal((4, 3, 3, 3))
        want = TF.conv2d(torch.from_numpy(x), torch.from_numpy(w), **kw).numpy()
        np.testing.assert_allclose(F.conv2d(x, w, **kw), want, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(
            F.conv2d(x, w, **kw, _route="gemm"), want, rtol=1e-10, atol=1e-12
        )


def test_depthwise_with_huge_stride_and_padding_equals_torch():
    """(The memory bound of this call: tests/reliability.) y = x at the centre, 0 around."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 4, 3, 3))
    w = rng.standard_normal((4, 1, 1, 1))
    kw = dict(stride=10**6, padding=10**6, groups=4)
    y = F.conv2d(x, w, **kw)
    want = TF.conv2d(torch.from_numpy(x), torch.from_numpy(w), **kw).numpy()
    np.testing.assert_allclose(y, want, rtol=1e-12)


@pytest.mark.parametrize("kind, kw", POOL_LARGE, ids=[f"{k}-{v}" for k, v in POOL_LARGE])
@pytest.mark.parametrize("hw", [(5, 4), (1, 1)])
def test_pooling_with_large_geometry_equals_torch(kind, kw, hw):
    """Forward and gradient equal torch where it accepts the arguments (its pooling refuses
    sizes beyond int32: RuntimeError); where no window fits torch refuses as well."""
    tfwd = {
        "max": TF.max_pool2d,
        "avg": TF.avg_pool2d,
        "lp": lambda x, **k: TF.lp_pool2d(x, 2, **k),
    }[kind]
    got = pool_large(kind, kw, hw)
    if got is None:
        if TORCH_MAY_RAISE:
            x = np.abs(np.random.default_rng(3).standard_normal((2, 3) + hw)) + 0.25
            with pytest.raises(RuntimeError):
                tfwd(torch.from_numpy(x), **kw)
        return
    x, y, gy, gx, idx = got
    if not (TORCH_MAY_RAISE or _int32_safe(kw)):
        return
    xt = torch.from_numpy(x).requires_grad_()
    try:
        if kind == "max":
            yt, it = TF.max_pool2d(xt, return_indices=True, **kw)
            np.testing.assert_array_equal(idx, it.numpy())
        elif kind == "avg":
            yt = TF.avg_pool2d(xt, **kw)
        else:
            yt = TF.lp_pool2d(xt, 2, **kw)
    except RuntimeError as e:  # beyond torch's int32 pooling arguments
        assert "int" in str(e) and not _int32_safe(kw)
        return
    yt.backward(torch.from_numpy(gy))
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-10, atol=1e-300)
    np.testing.assert_allclose(gx, xt.grad.numpy(), rtol=1e-10, atol=1e-300)
