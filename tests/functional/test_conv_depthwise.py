"""The depthwise route's kernels (_kernels/isa/depthwise.inc through _conv.pyx): the polyphase
planes at strides 1-3 with dilation, the flat (narrow planes) and row-by-row (wide planes)
forms, channel multipliers, against the naive loops; its sums independent of the batch and of
the thread count (the torch comparison: tests/parity/test_parity_conv.py)."""

import numpy as np
import pytest

import convext
import reference as R
from convext import functional as F

RNG = np.random.default_rng(13)

# (C, multiplier, H, W, k, stride, padding, dilation): the width picks the flat form (OW < 64)
# or the row-by-row one (OW >= 64)
CASES = [
    (3, 1, 9, 11, 3, 1, 1, 1),  # flat, stride 1
    (2, 1, 7, 140, 3, 2, 1, 1),  # rows, stride 2 (the even and odd sub-planes)
    (2, 1, 9, 70, 3, 1, 1, 1),  # rows, stride 1
    (2, 3, 8, 13, 3, 2, 1, 1),  # a channel multiplier, stride 2
    (2, 2, 10, 12, (3, 2), (3, 2), (2, 0), (2, 3)),  # stride 3, dilation, non-square
    (1, 1, 11, 9, 5, 2, 2, 2),  # stride 2 and dilation 2: every tap in one column phase
    (2, 1, 6, 7, 1, 3, 0, 1),  # 1x1 at stride 3: one phase, pixels no tap reads
    (2, 1, 5, 6, 3, 1, (0, 4), 1),  # padding beyond the kernel
]


def _args(case):
    C, m, H, W, k, s, p, d = case
    kh, kw = (k, k) if isinstance(k, int) else k
    x = RNG.standard_normal((2, C, H, W))
    w = RNG.standard_normal((C * m, 1, kh, kw))
    b = RNG.standard_normal(C * m)
    return x, w, b, dict(stride=s, padding=p, dilation=d, groups=C)


@pytest.mark.parametrize("case", CASES)
def test_depthwise_route_matches_the_naive_loops(case):
    x, w, b, kw = _args(case)
    y = F.conv2d(x, w, b, **kw, _route="depthwise")
    np.testing.assert_allclose(y, R.conv2d(x, w, b, **kw), rtol=1e-12, atol=1e-12)
    gy = RNG.standard_normal(y.shape)
    gx, gw, _ = F.conv2d_backward(gy, x, w, **kw, _route="depthwise")
    rgx, rgw, _ = R.conv2d_grads(gy, x, w, **kw)
    np.testing.assert_allclose(gx, rgx, rtol=1e-11, atol=1e-11)
    np.testing.assert_allclose(gw, rgw, rtol=1e-11, atol=1e-11)
    # float32 within the documented tolerance of the float64 loops
    x32, w32, b32, gy32 = (a.astype(np.float32) for a in (x, w, b, gy))
    y32 = F.conv2d(x32, w32, b32, **kw, _route="depthwise")
    gx32, gw32, _ = F.conv2d_backward(gy32, x32, w32, **kw, _route="depthwise")
    assert y32.dtype == gx32.dtype == gw32.dtype == np.float32
    for got, want in ((y32, y), (gx32, rgx), (gw32, rgw)):
        assert np.max(np.abs(got - want)) <= 1e-5 * max(1.0, np.max(np.abs(want)))


@pytest.mark.parametrize("case", CASES[:4])
def test_depthwise_results_do_not_depend_on_the_batch_or_the_threads(case):
    x, w, b, kw = _args(case)
    x = np.concatenate([x, RNG.standard_normal(x.shape)]).astype(np.float32)
    w, b = w.astype(np.float32), b.astype(np.float32)
    gy = RNG.standard_normal(F.conv2d(x, w, b, **kw).shape).astype(np.float32)
    runs = []
    try:
        for n in (1, 2):
            convext.set_num_threads(n)
            y = F.conv2d(x, w, b, **kw, _route="depthwise")
            gx, gw, _ = F.conv2d_backward(gy, x, w, **kw, _route="depthwise")
            # image 1 alone gives the same bits as inside the batch
            y1 = F.conv2d(x[1:2], w, b, **kw, _route="depthwise")
            gx1, _, _ = F.conv2d_backward(gy[1:2], x[1:2], w, **kw, _route="depthwise")
            np.testing.assert_array_equal(y1, y[1:2])
            np.testing.assert_array_equal(gx1, gx[1:2])
            runs.append((y, gx, gw))
    finally:
        convext.set_num_threads(None)
    for a, b_ in zip(*runs, strict=True):
        np.testing.assert_array_equal(a, b_)


def test_depthwise_nonfinite_weight_reaches_only_real_gradients():
    # an inf weight: the gathered input gradient would meet the zeros around the output
    # gradient (inf * 0 = NaN); such a channel is scattered over the real gradients instead
    x = RNG.standard_normal((1, 2, 6, 70))
    w = RNG.standard_normal((2, 1, 3, 3))
    w[0, 0, 0, 0] = np.inf
    gy = RNG.standard_normal(F.conv2d(x, w, None, 2, 1, 1, 2).shape)
    gx, _, _ = F.conv2d_backward(gy, x, w, 2, 1, 1, 2, _route="depthwise")
    rgx, _, _ = R.conv2d_grads(gy, x, w, 2, 1, 1, 2)
    np.testing.assert_array_equal(np.isnan(gx), np.isnan(rgx))
    finite = np.isfinite(rgx)
    np.testing.assert_allclose(gx[finite], rgx[finite], rtol=1e-11, atol=1e-11)
    np.testing.assert_array_equal(gx[~finite], rgx[~finite])
