"""conv_transpose2d and conv_transpose2d_backward against an independent scatter-loop oracle
(tests/reference.py) and finite differences; routes, threads, errors (the PyTorch comparisons:
tests/parity/test_parity_conv_transpose.py)."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

import convext
import reference as R
from cases import conv_transpose_cases
from convext import conv_transpose2d, conv_transpose2d_backward
from convext.functional import _routes

SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def f32_close(out, ref):
    """RELIABILITY.md: max|out32 - ref64| <= 1e-5 * max(1, max|ref64|)."""
    assert out.dtype == np.float32
    scale = max(1.0, float(np.abs(ref).max(initial=0.0)))
    assert float(np.abs(out.astype(np.float64) - ref).max(initial=0.0)) <= 1e-5 * scale


@SETTINGS
@given(conv_transpose_cases())
def test_forward_and_gradients_float64_match_naive(case):
    x, w, b, kw = case
    y = conv_transpose2d(x, w, b, **kw)
    ref = R.conv_transpose2d(x, w, b, **kw)
    assert y.shape == ref.shape and y.dtype == np.float64
    np.testing.assert_allclose(y, ref, rtol=1e-10, atol=1e-12)
    gy = np.random.default_rng(1).standard_normal(y.shape)
    got = conv_transpose2d_backward(gy, x, w, **kw)
    for g, r in zip(got, R.conv_transpose2d_grads(gy, x, w, **kw), strict=True):
        assert g.shape == r.shape
        np.testing.assert_allclose(g, r, rtol=1e-10, atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(conv_transpose_cases())
def test_float32_within_tolerance(case):
    x, w, b, kw = case
    x32, w32 = x.astype(np.float32), w.astype(np.float32)
    b32 = None if b is None else b.astype(np.float32)
    ref = R.conv_transpose2d(x32, w32, b32, **kw)
    f32_close(conv_transpose2d(x32, w32, b32, **kw), ref)
    gy = np.random.default_rng(2).standard_normal(ref.shape).astype(np.float32)
    for g, r in zip(
        conv_transpose2d_backward(gy, x32, w32, **kw),
        R.conv_transpose2d_grads(gy, x32, w32, **kw),
        strict=True,
    ):
        f32_close(g, r)


GEOMETRIES = [  # x shape, weight shape, kwargs
    ((2, 4, 3, 4), (4, 3, 3, 2), dict(stride=2, padding=1, output_padding=1, groups=2)),
    ((1, 2, 3, 3), (2, 2, 2, 3), dict(stride=1, padding=0, output_padding=1, dilation=2)),
    (
        (2, 3, 4, 3),
        (3, 1, 3, 3),
        dict(stride=(2, 1), padding=(1, 2), groups=3, dilation=(1, 3), output_padding=(1, 2)),
    ),
    ((1, 1, 1, 1), (1, 2, 2, 2), dict(stride=2, padding=1, output_padding=1)),
]


@pytest.mark.parametrize("xs, ws, kw", GEOMETRIES)
def test_all_three_gradients_by_finite_differences(xs, ws, kw):
    rng = np.random.default_rng(5)
    x, w, b = (
        rng.standard_normal(xs),
        rng.standard_normal(ws),
        rng.standard_normal(ws[1] * kw.get("groups", 1)),
    )
    gy = rng.standard_normal(conv_transpose2d(x, w, b, **kw).shape)
    gx, gw, gb = conv_transpose2d_backward(gy, x, w, **kw)
    loss = lambda x_, w_, b_: float((conv_transpose2d(x_, w_, b_, **kw) * gy).sum())  # noqa: E731
    np.testing.assert_allclose(
        gx, R.numerical_grad(lambda v: loss(v, w, b), x), rtol=1e-6, atol=1e-8
    )
    np.testing.assert_allclose(
        gw, R.numerical_grad(lambda v: loss(x, v, b), w), rtol=1e-6, atol=1e-8
    )
    np.testing.assert_allclose(
        gb, R.numerical_grad(lambda v: loss(x, w, v), b), rtol=1e-6, atol=1e-8
    )


def _cases_for_routes():
    rng = np.random.default_rng(7)
    dense = (
        rng.standard_normal((2, 4, 5, 6)),
        rng.standard_normal((4, 3, 3, 3)),
        dict(stride=2, padding=1, output_padding=1, dilation=1, groups=2),
    )
    depthwise = (
        rng.standard_normal((2, 3, 5, 4)),
        rng.standard_normal((3, 1, 3, 2)),
        dict(stride=(1, 2), padding=1, output_padding=(0, 1), dilation=(2, 1), groups=3),
    )
    return [dense, depthwise]


@pytest.mark.parametrize(
    "case, must",
    list(zip(_cases_for_routes(), ["gemm", "depthwise"], strict=True)),
    ids=["dense", "depthwise"],
)
def test_every_accepted_route_matches_the_oracle(case, must):
    """Each pass on every route that accepts the geometry (forward runs conv2d's grad_input
    kernels, the input gradient conv2d's forward kernels)."""
    (
        x,
        w,
        _,
    ) = case[0], case[1], None
    kw = case[2]
    ref = R.conv_transpose2d(x, w, None, **kw)
    gy = np.random.default_rng(8).standard_normal(ref.shape)
    rx, rw, _ = R.conv_transpose2d_grads(gy, x, w, **kw)
    seen = set()
    for route in _routes.ROUTES:
        try:
            y = conv_transpose2d(x, w, None, **kw, _route=route)
        except ValueError as e:
            assert "cannot compute" in str(e)
        else:
            seen.add(("forward", route))
            np.testing.assert_allclose(y, ref, rtol=1e-10, atol=1e-12)
        for key, ref_g, idx in (("grad_input", rx, 0), ("grad_weight", rw, 1)):
            try:
                g = conv_transpose2d_backward(gy, x, w, **kw, _route={key: route})[idx]
            except ValueError as e:
                assert "cannot compute" in str(e)
            else:
                seen.add((key, route))
                np.testing.assert_allclose(g, ref_g, rtol=1e-10, atol=1e-12)
    # the dense case runs gemm on every pass (and direct where it has a kernel), the depthwise
    # case the depthwise route on all three
    assert {("forward", must), ("grad_input", must), ("grad_weight", must)} <= seen
    if must == "gemm":
        assert {("grad_input", "direct"), ("grad_weight", "direct")} <= seen


def test_thread_count_does_not_change_a_bit():
    rng = np.random.default_rng(9)
    x = rng.standard_normal((5, 8, 9, 7)).astype(np.float32)
    w = rng.standard_normal((8, 6, 3, 3)).astype(np.float32)
    b = rng.standard_normal(12).astype(np.float32)
    kw = dict(stride=2, padding=1, output_padding=1, groups=2)
    old = convext.get_num_threads()
    results = []
    try:
        for n in (1, 2, 3):
            convext.set_num_threads(n)
            y = conv_transpose2d(x, w, b, **kw)
            results.append((y,) + conv_transpose2d_backward(np.sin(y), x, w, **kw))
    finally:
        convext.set_num_threads(old)
    for r in results[1:]:
        for a, c in zip(results[0], r, strict=True):
            np.testing.assert_array_equal(a, c)
    # and each image's output is the same in any batch
    np.testing.assert_array_equal(conv_transpose2d(x[2:3], w, b, **kw), results[0][0][2:3])


def test_unbatched_out_and_batch_zero():
    rng = np.random.default_rng(10)
    x, w = rng.standard_normal((2, 4, 5)), rng.standard_normal((2, 3, 3, 3))
    b = rng.standard_normal(3)
    y = conv_transpose2d(x, w, b, stride=2)
    np.testing.assert_array_equal(y, conv_transpose2d(x[None], w, b, stride=2)[0])
    out = np.full(y.shape, np.nan)
    assert conv_transpose2d(x, w, b, stride=2, out=out) is out
    np.testing.assert_array_equal(out, y)
    gx, gw, gb = conv_transpose2d_backward(np.ones_like(y), x, w, stride=2)
    assert gx.shape == x.shape and gw.shape == w.shape and gb.shape == (3,)
    y0 = conv_transpose2d(np.zeros((0, 2, 4, 5)), w, b, stride=2)
    assert y0.shape == (0, 3, 9, 11)
    gx0, gw0, gb0 = conv_transpose2d_backward(y0, np.zeros((0, 2, 4, 5)), w, stride=2)
    assert gx0.shape == (0, 2, 4, 5) and not gw0.any() and not gb0.any()
    # no input channels: the output is the bias
    yc = conv_transpose2d(np.zeros((1, 0, 2, 2)), np.zeros((0, 2, 1, 1)), np.array([1.0, 2.0]))
    np.testing.assert_array_equal(
        yc, np.array([1.0, 2.0])[None, :, None, None] * np.ones((1, 2, 2, 2))
    )


@pytest.mark.parametrize(
    "kw, name",
    [
        (dict(output_padding=2, stride=2), "output_padding"),
        (dict(output_padding=-1), "output_padding"),
        (dict(stride=0), "stride"),
        (dict(dilation=(1, 0)), "dilation"),
        (dict(padding=-1), "padding"),
        (dict(padding=9), "output size"),
        (dict(groups=3), "groups"),
        (dict(stride=2**45), "stride"),
        (dict(output_padding=2**41), "output_padding"),
        (dict(dilation=2**39, output_padding=0), "dilation"),
        (dict(stride=1.5), "stride"),
    ],
)
def test_errors_name_the_argument(kw, name):
    x, w = np.zeros((1, 2, 4, 4)), np.zeros((2, 3, 3, 3))
    with pytest.raises((ValueError, TypeError), match=name):
        conv_transpose2d(x, w, **kw)
    with pytest.raises((ValueError, TypeError), match=name):
        conv_transpose2d_backward(np.zeros((1, 3, 6, 6)), x, w, **kw)


def test_shape_and_dtype_errors():
    x, w = np.zeros((1, 2, 4, 4)), np.zeros((2, 3, 3, 3))
    with pytest.raises(ValueError, match="channels"):
        conv_transpose2d(np.zeros((1, 3, 4, 4)), w)
    with pytest.raises(ValueError, match="bias"):
        conv_transpose2d(x, w, np.zeros(2))
    with pytest.raises(TypeError, match="weight"):
        conv_transpose2d(x, w.astype(np.float32))
    with pytest.raises(ValueError, match="grad_out"):
        conv_transpose2d_backward(np.zeros((1, 3, 5, 6)), x, w)
    with pytest.raises(ValueError, match="out"):
        conv_transpose2d(x, w, out=np.zeros((1, 3, 6, 5)))
    with pytest.raises(ValueError, match="_route"):
        conv_transpose2d(x, w, _route="fast")
    with pytest.raises(ValueError, match="cannot compute"):
        conv_transpose2d(x, w, stride=2, _route="direct")  # conv2d's input gradient: stride 1
