"""The depthwise forward pass on bands of output rows (_conv.pyx's _fwd_depthwise: each band's
polyphase copy and output kept in L1, the epilogue applied in the copy-out by isa/depthwise.inc's
cvx_dw_out for no activation, ReLU, ReLU6 and Hardtanh): the same bits whatever the band height
(the rule's bands, one band holding the whole plane, one row per band), for every dtype, on
planes that cross band boundaries (B = 4096 // (nsub*Wq) - DI rows per band: the last band
partial or a single row), strides, padding, dilation, channel multipliers, the epilogue with and
without a residual, non-finite values and 1 or 2 threads; and the naive loops (torch:
tests/parity/test_parity_depthwise_bands.py)."""

import numpy as np
import pytest

import reference as R
from convext import functional as F
from convext._kernels import _conv

RNG = np.random.default_rng(47)

# (C, m, H, W, kernel, stride, padding (top, left; bottom and right as many), dilation)
CASES = [
    (3, 1, 112, 112, (3, 3), (1, 1), (1, 1), (1, 1)),  # Wq 114, B 33: bands of 33, 33, 33, 13
    (2, 1, 112, 112, (3, 3), (2, 2), (1, 1), (1, 1)),  # 4 sub-planes of Wq 57, B 16: 16x3, 8
    (2, 1, 61, 126, (3, 3), (1, 1), (1, 1), (1, 1)),  # Wq 128, B 30: 30, 30 and a 1-row band
    (2, 2, 70, 90, (5, 3), (1, 2), (2, 1), (2, 1)),  # 2 filters per channel, dilation, stride
    (1, 1, 200, 40, (3, 3), (3, 2), (0, 1), (2, 2)),  # stride 3 rows, dilation 2
    (2, 1, 40, 300, (1, 1), (1, 1), (0, 0), (1, 1)),  # one tap, Wq 300: B 13
    (1, 1, 33, 9, (4, 4), (1, 1), (2, 2), (1, 1)),  # 16 taps on a small plane: one band
]


def _out(case):
    C, m, H, W, k, s, p, d = case
    # a window's output length, the same for convolution and (floor-mode) pooling
    return tuple(R.pool_out_size(n, *a) for n, *a in zip((H, W), k, s, p, d, strict=True))


def _data(case, n, dtype):
    C, m, H, W, k = case[:5]
    x = RNG.standard_normal((n, C, H, W)).astype(dtype)
    w = RNG.standard_normal((C * m, 1) + k).astype(dtype)
    b = RNG.standard_normal(C * m).astype(dtype)
    return x, w, b


def _run(x, w, b, case, bands, n_threads, residual=None, act=0, a0=0.0, a1=0.0):
    C, m, H, W, k, s, p, d = case
    y = np.full((x.shape[0], C * m) + _out(case), np.nan, x.dtype)
    _conv.conv2d_forward_depthwise(
        x, w, b, y, s[0], s[1], p[0], p[1], d[0], d[1], C, n_threads,
        residual=residual, act=act, a0=a0, a1=a1, _blocks=0, _bands=bands,
    )  # fmt: skip
    return y


def _bits(a):
    return a.view(np.uint8)


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bands_give_the_whole_plane_bits_and_the_naive_values(case, dtype):
    x, w, b = _data(case, 2, dtype)
    for bias in (b, None):
        want = _run(x, w, bias, case, 0, 1)  # one band: the whole plane
        assert not np.isnan(want).any()
        for bands in (-1, 1):
            for n_threads in (1, 2):
                got = _run(x, w, bias, case, bands, n_threads)
                np.testing.assert_array_equal(_bits(got), _bits(want))
        C, m, H, W, k, s, p, d = case
        ref = R.conv2d(x.astype(np.float64), w.astype(np.float64),
                       None if bias is None else bias.astype(np.float64),
                       stride=s, padding=p, dilation=d, groups=C)  # fmt: skip
        tol = 1e-5 if dtype == np.float32 else 1e-12
        assert np.max(np.abs(want - ref)) <= tol * max(1.0, np.max(np.abs(ref)))


# (act code, a0, a1): none, ReLU, ReLU6, Hardtanh (cvx_dw_out); LeakyReLU, Hardswish, SiLU
# (_epilogue after the copy)
ACTS = [(0, 0.0, 0.0), (1, 0.0, 0.0), (2, 0.0, 0.0), (4, -0.5, 0.75), (3, 0.1, 0.0),
        (9, 0.0, 0.0), (8, 0.0, 0.0)]  # fmt: skip


@pytest.mark.parametrize("case", [CASES[0], CASES[1], CASES[3]])
@pytest.mark.parametrize("act, a0, a1", ACTS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_epilogue_in_the_copy_out_equals_the_separate_pass(case, act, a0, a1, dtype):
    """The fused epilogue (residual or not) has the bits of the plain output followed by the
    separate epilogue pass (_conv.conv2d_epilogue), for every band height."""
    x, w, b = _data(case, 2, dtype)
    r = RNG.standard_normal((2, case[0] * case[1]) + _out(case)).astype(dtype)
    r[0, 0, 0, :3] = (np.nan, np.inf, -np.inf)
    for residual in (None, r):
        plain = _run(x, w, b, case, 0, 1)
        _conv.conv2d_epilogue(plain, residual, act, a0, a1, 1)
        for bands in (-1, 0, 1):
            got = _run(x, w, b, case, bands, 2, residual=residual, act=act, a0=a0, a1=a1)
            np.testing.assert_array_equal(_bits(got), _bits(plain))


def test_the_clamps_match_the_naive_definitions():
    """ReLU6 and Hardtanh in the copy-out against numpy's clip of the naive float64 sum."""
    case = CASES[1]
    x, w, b = _data(case, 1, np.float64)
    x *= 4
    C, m, H, W, k, s, p, d = case
    ref = R.conv2d(x, w, b, stride=s, padding=p, dilation=d, groups=C)
    for act, lo, hi in ((2, 0.0, 6.0), (4, -0.5, 0.75), (1, 0.0, np.inf)):
        got = _run(x, w, b, case, -1, 2, act=act, a0=lo, a1=hi)
        assert (got >= lo).all() and (got <= hi).all()
        assert ((got == lo).any() and (got == hi).any()) or hi == np.inf
        np.testing.assert_allclose(got, np.clip(ref, lo, hi), rtol=1e-12, atol=1e-12)


def test_bands_propagate_nonfinite_values_like_the_whole_plane():
    case = CASES[0]
    x, w, b = _data(case, 2, np.float32)
    x[0, 0, 32, 5] = np.nan  # read by the last row of band 0 and the first of band 1
    x[0, 1, 0, 0] = np.inf  # on the padded border
    x[1, 2, 111, 111] = -np.inf  # the last band's last row
    w[2, 0, 0, 0] = np.inf  # times the padded zeros: NaN, as in torch
    for act in (0, 2):
        want = _run(x, w, b, case, 0, 1, act=act)
        got = _run(x, w, b, case, -1, 2, act=act)
        assert np.isnan(got).any()
        np.testing.assert_array_equal(_bits(got), _bits(want))
    assert np.isnan(got[:, 2, 0, :]).all()  # the top padding row times the infinite weight


def test_functional_conv2d_on_bands_is_independent_of_the_batch():
    """F.conv2d on a MobileNetV2-like 3x3 depthwise layer: an image's output is the same bits
    alone and inside a batch, and the naive loops' values."""
    case = (24, 1, 56, 56, (3, 3), (2, 2), (1, 1), (1, 1))
    x, w, b = _data(case, 3, np.float32)
    y = F.conv2d(x, w, b, stride=2, padding=1, groups=24)
    np.testing.assert_array_equal(_bits(F.conv2d(x[1:2], w, b, stride=2, padding=1, groups=24)),
                                  _bits(y[1:2]))  # fmt: skip
    np.testing.assert_array_equal(_bits(y), _bits(_run(x, w, b, case, 0, 1)))
    ref = R.conv2d(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64),
                   stride=2, padding=1, groups=24)  # fmt: skip
    assert np.max(np.abs(y - ref)) <= 1e-5 * max(1.0, np.max(np.abs(ref)))
