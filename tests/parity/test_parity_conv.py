"""conv2d and conv2d_backward against torch (values, gradients, non-finite propagation)."""

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import convext
from cases import NONFINITE_CONV as NONFINITE
from cases import conv_cases, routes_for
from convext import conv2d, conv2d_backward

torch = pytest.importorskip("torch")


@settings(max_examples=60, deadline=None)
@given(conv_cases(), st.sampled_from([np.float32, np.float64]))
def test_matches_torch(case, dtype):
    x, w, b, kw = case
    x, w = x.astype(dtype), w.astype(dtype)
    b = None if b is None else b.astype(dtype)
    tx = torch.tensor(x, requires_grad=True)
    tw = torch.tensor(w, requires_grad=True)
    tb = None if b is None else torch.tensor(b, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch warns about 'same' with even kernels
        ty = torch.nn.functional.conv2d(
            tx, tw, tb, kw["stride"], kw["padding"], kw["dilation"], kw["groups"]
        )
    y = conv2d(x, w, b, **kw)
    assert y.shape == tuple(ty.shape)
    gy = np.random.default_rng(5).standard_normal(y.shape).astype(dtype)
    if y.size:
        ty.backward(torch.tensor(gy))
    gx, gw, gb = conv2d_backward(gy, x, w, **kw)
    tol = dict(rtol=1e-10, atol=1e-10) if dtype == np.float64 else dict(rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(y, ty.detach().numpy(), **tol)
    if y.size:
        np.testing.assert_allclose(gx, tx.grad.numpy(), **tol)
        np.testing.assert_allclose(gw, tw.grad.numpy(), **tol)
        if tb is not None:
            np.testing.assert_allclose(gb, tb.grad.numpy(), **tol)


def _torch_conv_all(x, w, gy, **kw):
    tx = torch.tensor(x, requires_grad=True)
    tw = torch.tensor(w, requires_grad=True)
    ty = torch.nn.functional.conv2d(
        tx,
        tw,
        None,
        kw.get("stride", 1),
        kw.get("padding", 0),
        kw.get("dilation", 1),
        kw.get("groups", 1),
    )
    ty.backward(torch.tensor(gy))
    return ty.detach().numpy(), tx.grad.numpy(), tw.grad.numpy()


@pytest.mark.parametrize("where, idx, xs, ws, kw", NONFINITE)
def test_non_finite_values_propagate_like_torch(where, idx, xs, ws, kw):
    x = np.ones(xs)
    w = np.ones(ws)
    (x if where == "x" else w)[idx] = np.inf
    y = conv2d(x, w, **kw)
    gy = np.ones(y.shape)
    gx, gw, _ = conv2d_backward(gy, x, w, **kw)
    ty, tgx, tgw = _torch_conv_all(x, w, gy, **kw)
    for a, b in ((y, ty), (gx, tgx), (gw, tgw)):
        np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
        np.testing.assert_array_equal(a[~np.isnan(a)], b[~np.isnan(b)])


def test_direct_route_non_finite_like_torch():
    for where in ("x", "w"):
        x = np.ones((2, 3, 7, 9))
        w = np.ones((5, 3, 3, 3))
        (x if where == "x" else w)[(1, 2, 3, 8) if where == "x" else (2, 1, 0, 2)] = np.inf
        kw = dict(padding=1)
        y = conv2d(x, w, **kw)
        gy = np.ones(y.shape)
        gx, gw, _ = conv2d_backward(gy, x, w, **kw)
        ty, tgx, tgw = _torch_conv_all(x, w, gy, **kw)
        for a, b in ((y, ty), (gx, tgx), (gw, tgw)):
            np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
            np.testing.assert_array_equal(a[~np.isnan(a)], b[~np.isnan(b)])


@settings(max_examples=40, deadline=None)
@given(conv_cases(), st.sampled_from([np.float32, np.float64]))
def test_every_route_that_accepts_a_geometry_matches_torch(case, dtype):
    """The same cases through every route (forced with the private _route argument)."""
    x, w, b, kw = case
    x, w = x.astype(dtype), w.astype(dtype)
    b = None if b is None else b.astype(dtype)
    tx = torch.tensor(x, requires_grad=True)
    tw = torch.tensor(w, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch warns about 'same' with even kernels
        ty = torch.nn.functional.conv2d(
            tx,
            tw,
            None if b is None else torch.tensor(b),
            kw["stride"],
            kw["padding"],
            kw["dilation"],
            kw["groups"],
        )
    gy = np.random.default_rng(6).standard_normal(tuple(ty.shape)).astype(dtype)
    if ty.numel():
        ty.backward(torch.tensor(gy))
    tol = dict(rtol=1e-10, atol=1e-10) if dtype == np.float64 else dict(rtol=1e-4, atol=1e-4)
    allowed = routes_for(x, w, kw)
    for r in allowed["forward"]:
        np.testing.assert_allclose(conv2d(x, w, b, **kw, _route=r), ty.detach().numpy(), **tol)
    if not ty.numel():
        return
    for r in allowed["grad_input"]:
        gx = conv2d_backward(gy, x, w, **kw, _route={"grad_input": r}, needs_weight_grad=False)[0]
        np.testing.assert_allclose(gx, tx.grad.numpy(), **tol)
    for r in allowed["grad_weight"]:
        gw = conv2d_backward(gy, x, w, **kw, _route={"grad_weight": r}, needs_input_grad=False)[1]
        np.testing.assert_allclose(gw, tw.grad.numpy(), **tol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "shape",
    [
        (1, 61, 7, 7, 40, 3, 1),  # batch 1, 7x7: filter blocks share B, 3 channel blocks
        (1, 600, 7, 7, 64, 1, 0),  # 1x1 on 7x7: the image packed once, 3 channel blocks
        (1, 64, 30, 30, 24, 3, 1),  # 3 pixel tiles, each item's B shared by its filter blocks
        (3, 100, 5, 5, 64, 3, 0),  # 3 images side by side, filter blocks
    ],
)
def test_gemm_forward_with_shared_b_matches_torch(shape, dtype):
    """The GEMM forward on few work items with several threads (the filter blocks sharing the
    packed unfolded input) against torch, and bitwise the same as on one thread."""
    N, C, H, W, F, k, p = shape
    rng = np.random.default_rng(11)
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    w = (rng.standard_normal((F, C, k, k)) / np.sqrt(C * k * k)).astype(dtype)
    b = rng.standard_normal(F).astype(dtype)
    want = torch.nn.functional.conv2d(torch.tensor(x), torch.tensor(w), torch.tensor(b), 1, p)
    old = convext.get_num_threads()
    try:
        got = {}
        for n in (1, 2):
            convext.set_num_threads(n)
            got[n] = conv2d(x, w, b, padding=p, _route="gemm")
    finally:
        convext.set_num_threads(old)
    tol = dict(rtol=1e-10, atol=1e-10) if dtype == np.float64 else dict(rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(got[2], want.numpy(), **tol)
    np.testing.assert_array_equal(got[2].view(np.uint8), got[1].view(np.uint8))


# the direct forward's last pixels in filter lanes (7x7: 48 + 1, 5x11: 48 + 7, 14x14 at stride 2
# down to 7x7) and batch 1 split by pixels on two threads (14x14 with more weights than U):
# tests/functional/test_conv_direct_blocks.py has the same layers against the naive oracle
LANE_LAYERS = [
    ((1, 24, 7, 7), (43, 24, 3, 3), dict(padding=1)),
    ((1, 16, 5, 11), (64, 16, 3, 3), dict(padding=1)),
    ((1, 32, 14, 14), (48, 32, 3, 3), dict(stride=2, padding=1)),
    ((1, 8, 14, 14), (80, 8, 3, 3), dict(padding=1)),
]


@pytest.mark.parametrize("xs, ws, kw", LANE_LAYERS)
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_direct_forward_filter_lanes_match_torch(xs, ws, kw, threads, dtype, restore_threads):
    rng = np.random.default_rng(7)
    x = rng.standard_normal(xs).astype(dtype)
    w = rng.standard_normal(ws).astype(dtype)
    b = rng.standard_normal(ws[0]).astype(dtype)
    convext.set_num_threads(threads)
    tol = dict(rtol=1e-10, atol=1e-10) if dtype == np.float64 else dict(rtol=1e-4, atol=1e-4)
    for bias in (b, None):
        y = conv2d(x, w, bias, **kw, _route="direct")
        tb = None if bias is None else torch.tensor(bias)
        ty = torch.nn.functional.conv2d(torch.tensor(x), torch.tensor(w), tb, **kw)
        np.testing.assert_allclose(y, ty.numpy(), **tol)
    # an infinite weight of a full filter block: NaN where torch has NaN (padding), else Inf
    w[37, 5, 1, 1] = np.inf
    y = conv2d(x, w, b, **kw, _route="direct")
    ty = torch.nn.functional.conv2d(torch.tensor(x), torch.tensor(w), torch.tensor(b), **kw)
    ty = ty.numpy()
    np.testing.assert_array_equal(np.isnan(y), np.isnan(ty))
    np.testing.assert_allclose(y[~np.isnan(y)], ty[~np.isnan(ty)], **tol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "shape",
    [
        (16, 96, 7, 7, 40, 1, 1, 0),  # 1x1 on 7x7: 3 images side by side, B gathered from x
        (16, 64, 14, 14, 48, 1, 2, 0),  # 1x1 stride 2: gathered without a subsampled copy
        (16, 48, 14, 14, 40, 3, 2, 1),  # 3x3 stride 2 down to 7x7: runs with zeros, strided
        (5, 24, 7, 7, 32, 3, 1, 1),  # 3x3 on 7x7, 5 images
    ],
)
def test_gemm_forward_gathered_on_small_planes_matches_torch(shape, dtype, restore_threads):
    """The GEMM forward with images side by side on small planes, their B packed straight from
    x (gemm_pack_b_gather; on two threads the first two shapes are one work item whose filter
    blocks share an unfolded B instead), against torch, and bitwise the same on one and two
    threads."""
    N, C, H, W, F, k, s, p = shape
    rng = np.random.default_rng(12)
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    w = (rng.standard_normal((F, C, k, k)) / np.sqrt(C * k * k)).astype(dtype)
    b = rng.standard_normal(F).astype(dtype)
    want = torch.nn.functional.conv2d(torch.tensor(x), torch.tensor(w), torch.tensor(b), s, p)
    got = {}
    for n in (1, 2):
        convext.set_num_threads(n)
        got[n] = conv2d(x, w, b, stride=s, padding=p, _route="gemm")
    tol = dict(rtol=1e-10, atol=1e-10) if dtype == np.float64 else dict(rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(got[2], want.numpy(), **tol)
    np.testing.assert_array_equal(got[2].view(np.uint8), got[1].view(np.uint8))
