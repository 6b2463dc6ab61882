"""Absurd but legal geometry (issue 9, "Geometry overflow"): every size is checked in Python
integers against the geometry bound (2**40, convext._validation.MAX_EXTENT) before any C
arithmetic; beyond it a ValueError names the argument; below it, large but meaningful values
(stride past the input, padding wider than the image) give the naive loops' result on every
route that accepts them, with scratch memory bounded by the input and output. (The same cases
against torch: tests/parity/test_parity_geometry.py.)

Each example of the issue is a regression test here. Before the fix several crashed the
interpreter (SIGSEGV) or returned heap garbage; they now raise or compute, so they run in-process.
"""

import tracemalloc

import numpy as np
import pytest

import convext
import reference as R
from cases import MEANINGFUL_CONV as MEANINGFUL
from cases import POOL_LARGE, ROUTE_SHAPES, pool_large, routes_for
from convext import functional as F
from convext._validation import MAX_EXTENT

ones = np.ones


# ---------------------------------------------------------------------------------------------
# the issue's examples: refused, naming the argument

ISSUE_CONV = [
    # direct route: Cg*sh*kw*Hq*OW wrapped to 0, then the unfold wrote past a 64-element buffer
    ("direct", (1, 2, 1, 1), (2, 2, 1, 1), dict(stride=(2**62, 1), padding=(2**61, 0)), "stride"),
    (
        "direct, batch of 4",
        (4, 2, 1, 1),
        (2, 2, 1, 1),
        dict(stride=(2**62, 1), padding=(2**61, 0)),
        "stride",
    ),
    (
        "direct, 'same'",
        (4, 2, 1, 1),
        (2, 2, 2, 1),
        dict(dilation=(2**61, 1), padding="same"),
        "dilation",
    ),
    (
        "direct, 'same' 2x2",
        (1, 2, 2, 2),
        (2, 2, 2, 2),
        dict(dilation=(2**61, 1), padding="same"),
        "dilation",
    ),
    (
        "direct, 'same' 2x2, batch of 4",
        (4, 2, 2, 2),
        (2, 2, 2, 2),
        dict(dilation=(2**61, 1), padding="same"),
        "dilation",
    ),
    # GEMM route: pad + stride - 1 overflowed in the column range, heap garbage in y and grad_x
    (
        "gemm",
        (1, 300, 2, 2),
        (2, 300, 1, 2),
        dict(stride=(1, 2**62 + 2), padding=(0, 2**62 - 1)),
        "stride",
    ),
    # depthwise route: pointer arithmetic wrapped back onto the pixel (y = 1, torch 0)
    ("depthwise 2**61", (1, 1, 1, 1), (1, 1, 1, 1), dict(stride=2**61, padding=2**61), "stride"),
    (
        "depthwise 2**62/2**61",
        (1, 1, 1, 1),
        (1, 1, 1, 1),
        dict(stride=2**62, padding=2**61),
        "stride",
    ),
    ("depthwise 2**62", (1, 1, 1, 1), (1, 1, 1, 1), dict(stride=2**62, padding=2**62), "stride"),
    # >= 2**63: an OverflowError that did not name the argument
    ("stride 2**63", (1, 1, 3, 3), (1, 1, 1, 1), dict(stride=2**63), "stride"),
    ("stride 2**64", (1, 1, 3, 3), (1, 1, 1, 1), dict(stride=(1, 2**64)), "stride"),
    ("padding 2**63", (1, 1, 3, 3), (1, 1, 1, 1), dict(padding=2**63), "padding"),
    ("dilation 2**63", (1, 1, 3, 3), (1, 1, 2, 2), dict(dilation=2**63), "dilation"),
    ("groups 2**63", (1, 1, 3, 3), (1, 1, 1, 1), dict(groups=2**63), "groups"),
]


@pytest.mark.parametrize("what, xs, ws, kw, name", ISSUE_CONV, ids=[c[0] for c in ISSUE_CONV])
def test_issue_conv_examples_are_value_errors(what, xs, ws, kw, name):
    x, w = ones(xs), ones(ws)
    with pytest.raises(ValueError, match=name):
        F.conv2d(x, w, **kw)
    gy = ones((xs[0], ws[0], 2, 2))  # any grad_out: the geometry is refused first
    with pytest.raises(ValueError, match=name):
        F.conv2d_backward(gy, x, w, **kw)


@pytest.mark.parametrize("value", [2**40 + 1, 2**62, 2**63 - 1, 2**63, 2**64, 10**30])
@pytest.mark.parametrize(
    "call, name",
    [
        (lambda v: F.max_pool2d(ones((1, 1, 3, 3)), 2, stride=v), "stride"),
        (lambda v: F.max_pool2d(ones((1, 1, 3, 3)), 2, dilation=(1, v)), "dilation"),
        (lambda v: F.max_pool2d(ones((1, 1, 3, 3)), v, padding=v // 2), "kernel_size"),
        (
            lambda v: F.max_pool2d_backward(
                ones((1, 1, 1, 1)), np.zeros((1, 1, 1, 1), np.int64), (1, 1, v, 1)
            ),
            "input_shape",
        ),
        (lambda v: F.avg_pool2d(ones((1, 1, 3, 3)), 2, stride=(v, 1)), "stride"),
        (lambda v: F.avg_pool2d(ones((1, 1, 3, 3)), 2, divisor_override=v), "divisor_override"),
        (
            lambda v: F.avg_pool2d_backward(
                ones((1, 1, 1, 1)), (1, 1, 3, 3), 2, divisor_override=v
            ),
            "divisor_override",
        ),
        (lambda v: F.avg_pool2d_backward(ones((1, 1, 1, 1)), (1, 1, 3, v), 3), "input_shape"),
        (lambda v: F.lp_pool2d(ones((1, 1, 3, 3)), 2, 2, stride=v), "stride"),
        (lambda v: F.lp_pool2d(ones((1, 1, 3, 3)), 2, (2, v)), "kernel_size"),
        (lambda v: F.global_avg_pool2d_backward(ones((1, 1, 1, 1)), (1, 1, v, 3)), "input_shape"),
        (lambda v: convext.layers.Conv2D(1, 1, 3, stride=v), "stride"),
        (lambda v: convext.layers.Conv2D(1, 1, 3, padding=(0, v)), "padding"),
        (lambda v: convext.layers.Conv2D(1, 1, (v, 1)), "kernel_size"),
    ],
    ids=[
        "max-stride",
        "max-dilation",
        "max-kernel",
        "maxb-shape",
        "avg-stride",
        "avg-divisor",
        "avgb-divisor",
        "avgb-shape",
        "lp-stride",
        "lp-kernel",
        "global-shape",
        "Conv2d-stride",
        "Conv2d-padding",
        "Conv2d-kernel",
    ],
)
def test_beyond_the_bound_is_a_value_error_naming_the_argument(call, name, value):
    with pytest.raises(ValueError, match=name):
        call(value)


def test_derived_extents_are_checked_too():
    x, w = ones((1, 1, 3, 3)), ones((1, 1, 2, 2))
    # each value within the bound, but the padded input is not
    with pytest.raises(ValueError, match="padded input.*padding"):
        F.conv2d(x, w, padding=(MAX_EXTENT, 0), stride=MAX_EXTENT)
    # the dilated kernel
    with pytest.raises(ValueError, match="dilated kernel.*dilation"):
        F.conv2d(x, ones((1, 1, 3, 1)), dilation=(MAX_EXTENT, 1), padding="same")
    # the output plane OH*OW
    with pytest.raises(ValueError, match="output plane.*stride/padding"):
        F.conv2d(ones((1, 1, 1, 1)), ones((1, 1, 1, 1)), padding=2**20)
    # the whole output, bounded by memory (2**32 float64 per image here: 32 GiB)
    with pytest.raises(ValueError, match="output.*padding.*memory"):
        F.conv2d(ones((4, 1, 1, 1)), ones((2, 1, 1, 1)), padding=(2**15, 2**15))
    # the pooling window area, a divisor in the kernel
    with pytest.raises(ValueError, match="window area.*kernel_size"):
        F.avg_pool2d(ones((1, 1, 1, 1)), 2**21, padding=2**20)


# ---------------------------------------------------------------------------------------------
# large but meaningful values: the naive loops' result on every route


@pytest.mark.parametrize("kw", MEANINGFUL, ids=[str(k) for k in MEANINGFUL])
@pytest.mark.parametrize("route, N, C, F_, G", ROUTE_SHAPES, ids=[r[0] for r in ROUTE_SHAPES])
@pytest.mark.parametrize("hw", [(5, 5), (3, 3), (1, 1), (1, 4)])
def test_meaningful_large_geometry_equals_the_naive_loops(route, N, C, F_, G, kw, hw):
    """Forward and gradients equal the naive loops of tests/reference.py (which never build
    the padded input), by the chosen route and by every route that accepts the geometry."""
    rng = np.random.default_rng(9)
    x = rng.standard_normal((N, C) + hw)
    w = rng.standard_normal((F_, C // G, 2, 2))
    b = rng.standard_normal(F_)
    kw = dict(kw, groups=G)
    try:
        y = F.conv2d(x, w, b, **kw)
    except ValueError as e:  # the kernel is larger than the padded input
        assert "larger than the padded input" in str(e)
        return
    gy = rng.standard_normal(y.shape)
    gx, gw, gb = F.conv2d_backward(gy, x, w, **kw)
    assert y.shape == (N, F_) + convext.conv_output_size(
        hw, 2, kw.get("stride", 1), kw.get("padding", 0), kw.get("dilation", 1)
    )
    if y.size <= 600:
        np.testing.assert_allclose(y, R.conv2d(x, w, b, **kw), rtol=1e-10, atol=1e-10)
        for got, want in zip((gx, gw, gb), R.conv2d_grads(gy, x, w, **kw), strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)
    allowed = routes_for(x, w, kw)
    for r in allowed["forward"]:
        np.testing.assert_allclose(F.conv2d(x, w, b, **kw, _route=r), y, rtol=1e-10, atol=1e-10)
    for p, got in (("grad_input", gx), ("grad_weight", gw)):
        for r in allowed[p]:
            other = F.conv2d_backward(
                gy,
                x,
                w,
                **kw,
                needs_bias_grad=False,
                _route={p: r},
                **{"needs_input_grad": p == "grad_input", "needs_weight_grad": p == "grad_weight"},
            )
            np.testing.assert_allclose(
                other[0 if p == "grad_input" else 1], got, rtol=1e-10, atol=1e-10
            )


def test_stride_past_the_image_on_5x5_and_padding_50_on_3x3():
    """The two plain examples of the brief, by every route that accepts them (the forced GEMM
    route included), against the naive loops."""
    rng = np.random.default_rng(1)
    for x, kw in (
        (rng.standard_normal((2, 3, 5, 5)), dict(stride=10**6)),
        (rng.standard_normal((2, 3, 3, 3)), dict(padding=50)),
    ):
        w = rng.standard_normal((4, 3, 3, 3))
        want = R.conv2d(x, w, None, **kw)
        np.testing.assert_allclose(F.conv2d(x, w, **kw), want, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(
            F.conv2d(x, w, **kw, _route="gemm"), want, rtol=1e-10, atol=1e-12
        )
        for r in routes_for(x, w, kw)["forward"]:
            np.testing.assert_allclose(F.conv2d(x, w, **kw, _route=r), want, rtol=1e-10, atol=1e-12)


def test_depthwise_scratch_is_bounded_by_input_and_output():
    """stride = padding = 10**6 asked the depthwise route for 14.6 TiB of scratch; now the
    call takes a few kB beyond its output and equals the naive loops (y = x at the centre, 0
    around)."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 4, 3, 3))
    w = rng.standard_normal((4, 1, 1, 1))
    kw = dict(stride=10**6, padding=10**6, groups=4)
    tracemalloc.start()
    try:
        y = F.conv2d(x, w, **kw)
        gx, gw, gb = F.conv2d_backward(np.ones_like(y), x, w, **kw)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20, peak  # the GEMM's packed panels (~1 MB) and small arrays
    np.testing.assert_allclose(y, R.conv2d(x, w, None, **kw), rtol=1e-12)
    assert y.shape == (2, 4, 3, 3) and np.count_nonzero(y[:, :, 1, 1]) == 8
    # the depthwise route refuses this geometry (its padded plane would be 14.6 TiB)
    assert "depthwise" not in routes_for(x, w, kw)["forward"]
    with pytest.raises(ValueError, match="depthwise"):
        F.conv2d(x, w, **kw, _route="depthwise")


@pytest.mark.parametrize("kind, kw", POOL_LARGE, ids=[f"{k}-{v}" for k, v in POOL_LARGE])
@pytest.mark.parametrize("hw", [(5, 4), (1, 1)])
def test_pooling_with_large_geometry_equals_the_naive_loops(kind, kw, hw):
    """Forward and gradient equal the naive loops of tests/reference.py."""
    pool_large(kind, kw, hw)


# ---------------------------------------------------------------------------------------------
# max_pool2d_backward: input_shape and indices


def test_max_pool2d_backward_empty_planes_with_indices_is_a_value_error():
    for shape in [(1, 1, 0, 5), (1, 1, 5, 0), (1, 0, 0)]:
        lead = shape[:-2]
        gy = ones(lead + (1, 1))
        idx = np.zeros(gy.shape, np.int64)
        with pytest.raises(ValueError, match="input_shape"):
            F.max_pool2d_backward(gy, idx, shape)
    # nothing to scatter: an empty batch stays an empty gradient
    out = F.max_pool2d_backward(ones((0, 1, 1, 1)), np.zeros((0, 1, 1, 1), np.int64), (0, 1, 0, 5))
    assert out.shape == (0, 1, 0, 5)


@pytest.mark.parametrize("shape", [(1, 1, 2**31, 2**31), (2**20, 2**20, 1, 1), (1, 1, 2**40, 1)])
def test_max_pool2d_backward_input_shape_too_large_is_a_value_error(shape):
    gy = ones(shape[:2] + (1, 1)) if shape[0] * shape[1] < 2**20 else None
    match = "input_shape"
    if gy is None:
        # grad_out itself would be huge: a broadcast view (no memory), whose contiguous copy
        # (8 TiB) is refused first, naming grad_out
        gy = np.broadcast_to(np.ones(1), shape[:2] + (1, 1))
        match = "^grad_out, copied to a contiguous array, .* more than this machine"
    idx = np.broadcast_to(np.zeros(1, np.int64), gy.shape)
    with pytest.raises(ValueError, match=match):
        F.max_pool2d_backward(gy, idx, shape)


def test_max_pool2d_backward_memory_bound_names_input_shape():
    # within 2**40 elements but more bytes than any test machine has
    with pytest.raises(ValueError, match="input_shape.*memory"):
        F.max_pool2d_backward(
            ones((1, 1, 1, 1)), np.zeros((1, 1, 1, 1), np.int64), (1, 1, 2**20, 2**20 - 1)
        )


def test_max_pool2d_backward_unsigned_indices():
    x = np.random.default_rng(4).standard_normal((2, 3, 4, 4))
    y, idx = F.max_pool2d(x, 2, return_indices=True)
    gy = np.ones_like(y)
    want = F.max_pool2d_backward(gy, idx, x.shape)
    for dt in (np.uint64, np.uint32, np.uint8, np.int32):
        np.testing.assert_array_equal(F.max_pool2d_backward(gy, idx.astype(dt), x.shape), want)
    for big in (2**64 - 1, 2**63, 2**63 + 5):  # would wrap to -1 (skipped) or negative
        bad = idx.astype(np.uint64)
        bad[0, 0, 0, 0] = big
        with pytest.raises(ValueError, match="indices"):
            F.max_pool2d_backward(gy, bad, x.shape)
    # in int64 range but outside the plane: refused as before
    for v in (16, 2**63 - 1, -2):
        bad = idx.copy()
        bad[1, 2, 1, 1] = v
        with pytest.raises(ValueError, match="indices"):
            F.max_pool2d_backward(gy, bad, x.shape)
