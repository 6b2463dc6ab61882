"""The depthwise forward bands written straight to the output (_conv.pyx's _fwd_depthwise with
isa/depthwise.inc's cvx_dw_taps_act: planes at least DW_ROWS_MIN_OW = 56 wide, no residual, no
activation or a clamp): the same bits as the band's grid copied out by cvx_dw_out (the private
_bands=2), for every band height, dtype, thread count, 9 taps (the clamp in the taps' loop) and
other counts (the clamp after the row), with and without a bias, non-finite values; and the
naive loops' values (torch: tests/parity/test_parity_depthwise_rows_out.py). With stride 1 a
band's padded copy is isa/depthwise.inc's cvx_dw_pad1 (each element written once): its bits
against the row rings' and its values against the naive loops, with padding beyond the plane."""

import numpy as np
import pytest

import reference as R
from convext._kernels import _conv


def _rng(case, n, dtype):
    """A generator seeded by the test's own case, batch and dtype: each test draws the same data
    whatever ran before it in its process (pytest-xdist spreads the tests over workers)."""
    flat = [v for part in case for v in (part if isinstance(part, tuple) else (part,))]
    return np.random.default_rng([53, n, np.dtype(dtype).itemsize, *flat])


# (C, m, H, W, kernel, stride, padding, dilation); OW around 56 and the rows' band boundaries
CASES = [
    (2, 1, 40, 55, (3, 3), (1, 1), (1, 1), (1, 1)),  # OW 55: the grid (below the limit)
    (3, 1, 75, 56, (3, 3), (1, 1), (1, 1), (1, 1)),  # OW 56, Wq 58, B 68: bands of 68 and 7
    (2, 1, 37, 57, (3, 3), (1, 1), (1, 1), (1, 1)),  # OW 57: a tail of 9 (16-wide vectors)
    (2, 1, 112, 112, (3, 3), (1, 1), (1, 1), (1, 1)),  # Wq 114, B 33: 33, 33, 33, 13
    (2, 1, 50, 113, (3, 3), (2, 2), (1, 1), (1, 1)),  # stride 2, OW 57, 4 sub-planes
    (2, 2, 30, 60, (3, 3), (1, 1), (1, 1), (1, 1)),  # 2 filters per channel
    (1, 1, 40, 64, (3, 3), (1, 1), (2, 2), (2, 2)),  # dilation 2
    (2, 1, 20, 70, (5, 5), (1, 1), (2, 2), (1, 1)),  # 25 taps: the clamp after the row
    (2, 1, 9, 61, (1, 1), (1, 1), (0, 0), (1, 1)),  # 1 tap
]
# (act code, a0, a1): none, ReLU, ReLU6, Hardtanh
ACTS = [(0, 0.0, 0.0), (1, 0.0, 0.0), (2, 0.0, 0.0), (4, -0.5, 0.75)]


def _out(case):
    C, m, H, W, k, s, p, d = case
    # a window's output length, the same for convolution and (floor-mode) pooling
    return tuple(R.pool_out_size(n, *a) for n, *a in zip((H, W), k, s, p, d, strict=True))


def _data(case, n, dtype):
    C, m, H, W, k = case[:5]
    rng = _rng(case, n, dtype)
    x = (4 * rng.standard_normal((n, C, H, W))).astype(dtype)
    w = rng.standard_normal((C * m, 1) + k).astype(dtype)
    b = rng.standard_normal(C * m).astype(dtype)
    return x, w, b


def _run(x, w, b, case, bands, n_threads, act=0, a0=0.0, a1=0.0):
    C, m, H, W, k, s, p, d = case
    y = np.full((x.shape[0], C * m) + _out(case), np.nan, x.dtype)
    _conv.conv2d_forward_depthwise(
        x, w, b, y, s[0], s[1], p[0], p[1], d[0], d[1], C, n_threads,
        act=act, a0=a0, a1=a1, _blocks=0, _bands=bands,
    )  # fmt: skip
    return y


def _bits(a):
    return a.view(np.uint8)


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("act, a0, a1", ACTS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_rows_out_give_the_grid_bits_and_the_naive_values(case, act, a0, a1, dtype):
    x, w, b = _data(case, 2, dtype)
    C, m, H, W, k, s, p, d = case
    lo, hi = {0: (-np.inf, np.inf), 1: (0.0, np.inf), 2: (0.0, 6.0), 4: (a0, a1)}[act]
    for bias in (b, None):
        want = _run(x, w, bias, case, 2, 1, act, a0, a1)  # the grid and cvx_dw_out
        assert not np.isnan(want).any()
        for bands in (-1, 0, 1):
            for n_threads in (1, 2):
                got = _run(x, w, bias, case, bands, n_threads, act, a0, a1)
                np.testing.assert_array_equal(_bits(got), _bits(want))
        ref = R.conv2d(x.astype(np.float64), w.astype(np.float64),
                       None if bias is None else bias.astype(np.float64),
                       stride=s, padding=p, dilation=d, groups=C)  # fmt: skip
        ref = np.clip(ref, lo, hi)
        tol = 1e-5 if dtype == np.float32 else 1e-12
        assert np.max(np.abs(want - ref)) <= tol * max(1.0, np.max(np.abs(ref)))
        if act in (2, 4):  # the clamp is reached on both sides
            assert (want == lo).any() and (want == hi).any()


@pytest.mark.parametrize("case", [CASES[1], CASES[3], CASES[4]])
def test_rows_out_propagate_nonfinite_values_like_the_grid(case):
    x, w, b = _data(case, 2, np.float32)
    C, m, H, W = case[:4]
    x[0, 0, H // 2, 5] = np.nan
    x[0, 1, 0, 0] = np.inf  # on the padded border
    x[1, 0, H - 1, W - 1] = -np.inf  # the last band's last row
    w[1, 0, 0, 0] = np.inf  # times the padded zeros: NaN, as in torch
    for act, a0, a1 in ACTS:
        want = _run(x, w, b, case, 2, 1, act, a0, a1)
        assert np.isnan(want).any()
        for bands in (-1, 1):
            got = _run(x, w, b, case, bands, 2, act, a0, a1)
            np.testing.assert_array_equal(_bits(got), _bits(want))


def test_rows_out_match_the_row_rings_on_a_mobilenet_layer():
    """A MobileNetV2 layer (32x112x112 3x3 stride 1, ReLU6): the per-plane bands written
    straight to the output have the bits of the row rings (lanes = channels) as well."""
    case = (32, 1, 112, 112, (3, 3), (1, 1), (1, 1), (1, 1))
    x, w, b = _data(case, 1, np.float32)
    y = _run(x, w, b, case, -1, 2, 2)
    ring = np.full_like(y, np.nan)
    _conv.conv2d_forward_depthwise(x, w, b, ring, 1, 1, 1, 1, 1, 1, 32, 2, act=2, _blocks=2)
    np.testing.assert_array_equal(_bits(y), _bits(ring))


# stride 1 (cvx_dw_pad1): (C, H, W, kernel, padding, dilation), padding up to beyond the plane
PAD1_CASES = [
    (2, 5, 7, (3, 3), (4, 4), (1, 1)),  # padding wider than the plane: zero rows and columns
    (2, 1, 1, (3, 3), (2, 2), (1, 1)),  # one pixel
    (1, 9, 70, (5, 5), (0, 0), (1, 1)),  # no padding, 25 taps
    (2, 40, 61, (3, 3), (3, 1), (2, 2)),  # dilation 2, uneven padding
    (2, 150, 60, (3, 3), (1, 1), (1, 1)),  # Wq 62, B 64: bands of 64, 64, 22
]


@pytest.mark.parametrize("case", PAD1_CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_stride_one_copies_match_the_rings_and_the_naive_loops(case, dtype):
    C, H, W, k, p, d = case
    full = (C, 1, H, W, k, (1, 1), p, d)
    x, w, b = _data(full, 2, dtype)
    ref = R.conv2d(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64),
                   stride=(1, 1), padding=p, dilation=d, groups=C)  # fmt: skip
    tol = 1e-5 if dtype == np.float32 else 1e-12
    for act in (0, 2):
        ring = np.full((2, C) + _out(full), np.nan, dtype)
        _conv.conv2d_forward_depthwise(
            x, w, b, ring, 1, 1, p[0], p[1], d[0], d[1], C, 1, act=act, _blocks=2
        )
        want = np.clip(ref, 0.0, 6.0) if act == 2 else ref
        assert np.max(np.abs(ring - want)) <= tol * max(1.0, np.max(np.abs(want)))
        for bands in (-1, 0, 1, 2):
            got = _run(x, w, b, full, bands, 2, act)
            np.testing.assert_array_equal(_bits(got), _bits(ring))
