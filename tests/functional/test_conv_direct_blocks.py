"""The direct forward's blocking (isa/kernels.inc, cvx_direct_fwd; _conv.pyx, _fwd_direct) on
layers large enough to cross its boundaries: several cache-sized pixel bands per work item, bands
of a single strip, work items that are pixel blocks or ranges of filter blocks (batch 1 on two
threads), unequal filter blocks, the last pixels in filter lanes, and the weights packed once
(optimize_for_inference's path). The band is set per CPU at import (_isa.direct_band_for); these
tests set it to 4 MB, for which the layers below were sized, and to smaller bands.

Oracles: the float64 naive loops of tests/reference.py. On small-integer data every product and
partial sum is an integer below 2**24, so every summation order is exact and the float32 result
must equal the oracle bit for bit whatever the blocking; on random data the usual tolerances
(RELIABILITY.md). The torch comparison of the same layers: tests/parity/test_parity_conv.py.
"""

import numpy as np
import pytest

import convext
import reference as R
from convext import conv2d, inference
from convext._kernels import _conv, _isa
from convext.functional import _routes

# (name, x shape, weight shape, stride, padding, dilation). Float32 bands of 4 MB (the band the
# `band` fixture sets first) hold 2**20 elements of U = Cg * stride * kW rows of OW per output row
# (float64: half as many):
LAYERS = [
    # 3072 rows of 16 per output row: bands of about 18 output rows, 2 bands in 24 (float64: 4)
    ("bands", (1, 1024, 24, 16), (10, 1024, 3, 3), 1, 1, 1),
    # 2304 rows of 120: the budget holds fewer rows than the kernel's reach, bands of one strip
    ("one-strip-bands", (1, 768, 4, 120), (5, 768, 3, 3), 1, 1, 1),
    # strided 7x7 with 128 channels: one band in float32, several in float64
    ("strided-7x7", (1, 128, 40, 40), (9, 128, 7, 7), 2, 3, 1),
    # U smaller than the weights: batch 1 splits the filter blocks (13 filters: blocks 7 + 6
    # on AVX-512, 4 + 3 + 3 + 3 on AVX2 and generic)
    ("filter-split", (1, 64, 4, 4), (13, 64, 3, 3), 1, 1, 1),
    ("filter-split-40", (1, 48, 5, 5), (40, 48, 3, 3), 1, (1, 2), (1, 2)),
    # dilated, with groups
    ("dilated-groups", (1, 96, 20, 18), (12, 48, 3, 3), 1, 2, 2),
    # fewer last pixels than a vector (7x7: 49 = 48 + 1 on AVX-512 float, 2*24 + 1 in float64),
    # in filter lanes: 43 filters = 5 full blocks of 8 (a group of 4 blocks, then 1) and a block
    # of 3 (the one-vector tile); AVX2/generic: 10 blocks of 4 and one of 3
    ("lane-tail-49", (1, 24, 7, 7), (43, 24, 3, 3), 1, 1, 1),
    # 55 = 48 + 7 (float64: 2*24 + 7): the last pixels in two calls (4 + 3), 8 full blocks
    ("lane-tail-55", (1, 16, 5, 11), (64, 16, 3, 3), 1, 1, 1),
    # U smaller than the weights, 14x14: batch 1 on two threads splits the pixels (5 strips of
    # 48: 2 and 2 + 4 pixels), the second item ending in filter lanes
    ("pixel-split-14", (1, 8, 14, 14), (80, 8, 3, 3), 1, 1, 1),
    # stride 2 down to 7x7 (a 1-pixel tail) without bias below
    ("lane-tail-s2", (1, 32, 14, 14), (48, 32, 3, 3), 2, 1, 1),
    # 1x1 at stride 1 without padding: x read in place as U (81 pixels: a strip, vectors, one
    # last pixel copied out; 13 filters: a narrower last block); 1536 rows of 20 per output row
    # in 800 pixels: 2 bands of 4 MB, and in the 1x1 band (_isa.direct_1x1_band_for, half the
    # L2, at most the band) bands of a strip or a few
    ("1x1-in-place", (1, 40, 9, 9), (13, 40, 1, 1), 1, 0, 1),
    ("1x1-bands", (1, 1536, 40, 20), (10, 1536, 1, 1), 1, 0, 1),
    # 7x7 (float64: 49 = 6 vectors + 1) and 20 pixels (float32: a vector + 4 copied out)
    ("1x1-7x7", (1, 96, 7, 7), (43, 96, 1, 1), 1, 0, 1),
    ("1x1-20", (1, 40, 4, 5), (11, 40, 1, 1), 1, 0, 1),
    # 1073 pixels = 22 strips of 48 + a vector + 1 pixel in lanes, 21 filters in 3 blocks;
    # batches of several images pack the weights once for all of them
    ("strips-vector-lane", (1, 8, 29, 37), (21, 8, 3, 3), 1, 1, 1),
    # LeNet's second layer: a valid 5x5 on 14x14 (the unfold's vector row copies stop short of
    # the input's end), 16 filters in two blocks, 100 pixels: 2 strips + 4 in lanes
    ("valid-5x5", (1, 6, 14, 14), (16, 6, 5, 5), 1, 0, 1),
    # row phases no tap reads, which the unfold leaves alone (cvx_direct_phase_read): a 1x1 at
    # stride 2 (56 pixels: a strip and a vector's tail; 13 filters: a narrower last block), and
    # a 3x3 of dilation 2 at stride 2 (its rows 0, 2, 4 all of phase 0)
    ("1x1-s2", (1, 24, 15, 13), (13, 24, 1, 1), 2, 0, 1),
    ("dilated-s2", (1, 16, 17, 19), (10, 16, 3, 3), 2, 2, 2),
    # U = 12*3*202*300 = 2,181,600 elements, more than FWD_DIRECT_MAX_U: the scratch holds a
    # band of U (cvx_direct_fwd_u_elems), not all of it; 60,000 pixels in many bands
    ("beyond-whole-u", (1, 12, 200, 300), (5, 12, 3, 3), 1, 1, 1),
]
IDS = [c[0] for c in LAYERS]


def _data(rng, case, dtype, integer):
    _, xs, ws, *_ = case
    if integer:
        x = rng.integers(-3, 4, size=xs).astype(dtype)
        w = rng.integers(-3, 4, size=ws).astype(dtype)
        b = rng.integers(-50, 51, size=ws[0]).astype(dtype)
    else:
        x = rng.standard_normal(xs).astype(dtype)
        w = rng.standard_normal(ws).astype(dtype)
        b = rng.standard_normal(ws[0]).astype(dtype)
    return x, w, b


def _kw(case):
    _, xs, ws, s, p, d = case
    return dict(stride=s, padding=p, dilation=d, groups=xs[1] // ws[1])


@pytest.fixture(params=[_isa.DIRECT_BAND_MAX, 64 * 1024], ids=["band-4M", "band-64k"])
def band(request):
    """The direct forward's band for the test (4 MB, for which LAYERS were sized; 64 kB: many
    more bands, of DIRECT_MIN_BAND_ROWS output rows for the larger layers and of a single strip
    for one-strip-bands); the CPU's band restored after."""
    old = _isa.set_direct_band_bytes(request.param)
    yield request.param
    _isa.set_direct_band_bytes(old)


def _direct(x, w, b, kw, threads):
    convext.set_num_threads(threads)
    return conv2d(x, w, b, **kw, _route="direct")


@pytest.mark.parametrize("case", LAYERS, ids=IDS)
@pytest.mark.parametrize("threads", [1, 2])
def test_integer_data_is_exact_for_every_blocking(case, threads, band, restore_threads):
    rng = np.random.default_rng(11)
    x, w, b = _data(rng, case, np.float32, integer=True)
    kw = _kw(case)
    want = R.conv2d(x, w, b, **kw)
    assert np.abs(want).max() < 2**24
    y = _direct(x, w, b, kw, threads)
    np.testing.assert_array_equal(y, want.astype(np.float32), strict=True)
    # a batch of three: whole images per work item instead of pixel or filter blocks
    x3 = np.concatenate([x, x[:, :, ::-1].copy(), -x])
    y3 = _direct(x3, w, b, kw, threads)
    np.testing.assert_array_equal(y3, R.conv2d(x3, w, b, **kw).astype(np.float32), strict=True)


@pytest.mark.parametrize("case", LAYERS, ids=IDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_random_data_within_tolerance_and_bitwise_independent_of_threads_and_batch(
    case, dtype, band, restore_threads
):
    rng = np.random.default_rng(12)
    x, w, b = _data(rng, case, dtype, integer=False)
    x3 = np.concatenate([x, rng.standard_normal(x.shape).astype(dtype), x[:, :, ::-1].copy()])
    kw = _kw(case)
    want = R.conv2d(x3, w, b, **kw)
    y1 = _direct(x3, w, b, kw, 1)
    tol = 1e-10 if dtype == np.float64 else 1e-5
    assert np.abs(y1 - want).max() <= tol * max(1.0, np.abs(want).max())
    # two threads, and each image alone (batch 1: the images are split into work items)
    np.testing.assert_array_equal(_direct(x3, w, b, kw, 2), y1)
    for n in range(3):
        np.testing.assert_array_equal(_direct(x3[n : n + 1], w, b, kw, 2), y1[n : n + 1])


def test_a_band_that_unfolds_holds_some_output_rows_whatever_the_budget():
    """A band unfolds its rows of U, one more and the kernel's reach: with a small budget a wide
    image would get one output row (or one strip) per band, so it gets up to
    DIRECT_MIN_BAND_ROWS within DIRECT_BAND_MAX."""
    least, most = _isa.DIRECT_MIN_BAND_ROWS, _isa.DIRECT_BAND_MAX
    rows = _isa.direct_band_rows
    assert rows(1000, 2, 64 * 1024, 4) == 64 * 1024 // 4 // 1000 - 3 > least  # the budget's
    assert rows(1000, 2, 64 * 1024, 8) == least  # float64: 5 in the budget
    assert rows(49152, 2, 64 * 1024, 4) == least  # the "bands" layer: 0 in the budget
    assert rows(most // 4 // 6, 2, 64 * 1024, 4) == 3  # the largest band holds 6 rows of U
    assert rows(most // 8 // 6, 2, 64 * 1024, 8) == 3
    assert rows(most // 4 // 3, 2, 64 * 1024, 4) == 0  # not even one output row
    assert rows(1000, 2, 64 * most, 4) == 64 * most // 4 // 1000 - 3  # a band beyond the largest
    for bad in ((0, 2, most, 4), (1000, -1, most, 4), (1000, 2, -1, 4), (1000, 2, most, 2)):
        with pytest.raises(ValueError, match="row must be positive"):
            rows(*bad)


def test_a_prepared_call_keeps_the_band_its_scratch_was_sized_for():
    """A prepared direct forward's scratch holds a band of U at the band in use when it was
    prepared (the kernel reads the band from its geometry); a larger band set afterwards must
    not make it unfold more rows, which would write past the scratch. The result is the same
    at every band."""
    rng = np.random.default_rng(14)
    x = rng.standard_normal((1, 8, 200, 64)).astype(np.float32)
    w = rng.standard_normal((4, 8, 3, 3)).astype(np.float32)
    b = rng.standard_normal(4).astype(np.float32)
    want = R.conv2d(x, w, b, stride=1, padding=1)
    old = _isa.set_direct_band_bytes(16 * 1024)
    try:
        call = _conv.prepare_forward("direct", x.shape, w, b, want.shape, 1, 1, 1, 1, 1, 1, 1, 1)
        n = call.scratch_bytes
        buf = np.full(n + (4 << 20), 0xAB, np.uint8)
        call.use_scratch(buf[:n])
        _isa.set_direct_band_bytes(_isa.DIRECT_BAND_MAX)
        y = np.empty(want.shape, np.float32)
        call(x, y)
    finally:
        _isa.set_direct_band_bytes(old)
    assert np.count_nonzero(buf[n:] != 0xAB) == 0
    assert np.abs(y - want).max() <= 1e-5 * max(1.0, np.abs(want).max())
    np.testing.assert_array_equal(y, conv2d(x, w, b, padding=1, _route="direct"), strict=True)


@pytest.mark.parametrize("case", LAYERS, ids=IDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_band_changes_no_bit(case, dtype, restore_threads):
    rng = np.random.default_rng(13)
    x, w, b = _data(rng, case, dtype, integer=False)
    kw = _kw(case)
    old = _isa.direct_band_bytes()
    try:
        got = {}
        for nbytes in (_isa.DIRECT_BAND_MAX, 1 << 20, _isa.DIRECT_BAND_MIN, 16 * 1024):
            _isa.set_direct_band_bytes(nbytes)
            got[nbytes] = [_direct(x, w, b, kw, threads) for threads in (1, 2)]
    finally:
        _isa.set_direct_band_bytes(old)
    first = got[_isa.DIRECT_BAND_MAX][0]
    for ys in got.values():
        for y in ys:
            np.testing.assert_array_equal(y, first, strict=True)


def test_the_band_for_the_cpu():
    mb = 1 << 20
    zen4, zen5 = 25, 26
    # AMD's CPUs from the Zen 5 on with a large L2, and unknown caches: the largest band; else
    # half the L2, within the limits
    assert _isa.direct_band_for(mb, True, zen5) == _isa.DIRECT_BAND_MAX == 4 * mb
    assert _isa.direct_band_for(2 * mb, True, 27) == 4 * mb
    assert _isa.DIRECT_BAND_AMD_MIN_L2 == mb
    assert _isa.DIRECT_BAND_AMD_MIN_FAMILY == zen5
    assert _isa.direct_band_for(mb, True, zen4) == mb // 2
    assert _isa.direct_band_for(mb // 2, True, zen4) == mb // 4
    assert _isa.direct_band_for(mb // 2, True, zen5) == mb // 4
    assert _isa.direct_band_for(mb - 1, True, zen5) == (mb - 1) // 2
    assert _isa.direct_band_for(0, False, 0) == 4 * mb
    assert _isa.direct_band_for(2 * mb, False, 6) == mb
    assert _isa.direct_band_for(2 * mb, False, zen5) == mb
    assert _isa.direct_band_for(5 * mb // 4, False, 6) == 5 * mb // 8
    assert _isa.direct_band_for(256 * 1024, False, 6) == _isa.DIRECT_BAND_MIN == 256 * 1024
    assert _isa.direct_band_for(32 * mb, False, 6) == 4 * mb
    # the L3 counts as fast (functional/_routes.py's SLOW_L3 is False) on AMD's CPUs with a
    # large L2, Zen 4 or Zen 5, and where the L2 is unknown
    assert _isa.fast_l3(mb, True) and _isa.fast_l3(0, False)
    assert not _isa.fast_l3(mb // 2, True) and not _isa.fast_l3(2 * mb, False)
    cache = _isa.cpu_cache()
    assert set(cache) == {"l2_bytes", "amd", "family"}
    assert all(type(v) is t for v, t in zip(cache.values(), (int, bool, int), strict=True))
    assert _isa.direct_band_bytes() == _isa.direct_band_for(**cache)
    assert _routes.SLOW_L3 is not _isa.fast_l3(cache["l2_bytes"], cache["amd"])
    for bad in (0, 1023, 2**40, 1.5e6, "1048576", True):
        with pytest.raises(ValueError, match="band"):
            _isa.set_direct_band_bytes(bad)
    assert _isa.direct_band_bytes() == _isa.direct_band_for(**cache)


def test_the_1x1_band_for_the_cpu():
    """A 1x1 kernel read in place: half the L2 within the limits, whatever the vendor (no
    kernel's reach to unfold again); 512 kB where the L2 is unknown."""
    mb = 1 << 20
    assert _isa.direct_1x1_band_for(mb) == mb // 2
    assert _isa.direct_1x1_band_for(2 * mb) == mb
    assert _isa.direct_1x1_band_for(0) == mb // 2
    assert _isa.direct_1x1_band_for(256 * 1024) == _isa.DIRECT_BAND_MIN
    assert _isa.direct_1x1_band_for(32 * mb) == _isa.DIRECT_BAND_MAX
    assert _isa.direct_1x1_band_bytes() == _isa.direct_1x1_band_for(_isa.cpu_cache()["l2_bytes"])


def _kernel(x, w, b, y, kw, threads, residual, act, packed):
    s, p, d = (kw[k] for k in ("stride", "padding", "dilation"))
    s, d = np.broadcast_to(s, 2), np.broadcast_to(d, 2)
    p = np.broadcast_to(p, 2)
    _conv.conv2d_forward_direct(
        x, w, b, y, s[0], s[1], p[0], p[1], d[0], d[1], kw["groups"], threads,
        residual, act, 0.0, 0.0, packed,
    )  # fmt: skip


@pytest.mark.parametrize("case", LAYERS, ids=IDS)
@pytest.mark.parametrize("threads", [1, 2])
def test_packed_weights_and_the_epilogue_on_every_work_item(case, threads):
    """The weights packed once (as optimize_for_inference does) and the fused residual + ReLU on
    each work item's block of y: exact on integer data against the oracle."""
    rng = np.random.default_rng(13)
    x, w, b = _data(rng, case, np.float32, integer=True)
    kw = _kw(case)
    want = R.conv2d(x, w, b, **kw)
    r = rng.integers(-40, 41, size=want.shape).astype(np.float32)
    packed = _conv.pack_direct_weight(w, kw["groups"])
    assert packed.shape == (w.size,) and packed.dtype == w.dtype
    np.testing.assert_array_equal(np.sort(packed), np.sort(w, axis=None))  # a permutation of w
    y = np.full(want.shape, np.nan, np.float32)
    _kernel(x, w, b, y, kw, threads, None, 0, packed)
    np.testing.assert_array_equal(y, want.astype(np.float32), strict=True)
    y = np.full(want.shape, np.nan, np.float32)
    _kernel(x, w, b, y, kw, threads, r, 1, None)  # ACT_RELU = 1
    np.testing.assert_array_equal(y, np.maximum(want + r, 0).astype(np.float32), strict=True)
    y = np.full(want.shape, np.nan, np.float32)
    _kernel(x, w, b, y, kw, threads, r, 1, packed)
    np.testing.assert_array_equal(y, np.maximum(want + r, 0).astype(np.float32), strict=True)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_packed_weights_give_the_same_bits_as_packing_in_the_kernel(dtype):
    rng = np.random.default_rng(14)
    for case in LAYERS:
        x, w, b = _data(rng, case, dtype, integer=False)
        kw = _kw(case)
        want = R.conv2d(x, w, b, **kw)
        y0 = np.empty(want.shape, dtype)
        y1 = np.empty(want.shape, dtype)
        _kernel(x, w, b, y0, kw, 2, None, 0, None)
        _kernel(x, w, b, y1, kw, 2, None, 0, _conv.pack_direct_weight(w, kw["groups"]))
        tol = 1e-10 if dtype == np.float64 else 1e-5
        assert np.abs(y0 - want).max() <= tol * max(1.0, np.abs(want).max()), case[0]
        np.testing.assert_array_equal(y1, y0)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_filter_lanes_without_bias(threads, dtype, restore_threads):
    """The last pixels in filter lanes start from zero without a bias: exact on integer data,
    and the same bits as the layer with a zero bias."""
    rng = np.random.default_rng(15)
    for case in [c for c in LAYERS if c[0].startswith(("lane-", "pixel-split"))]:
        x, w, _ = _data(rng, case, dtype, integer=True)
        kw = _kw(case)
        want = R.conv2d(x, w, None, **kw)
        y = _direct(x, w, None, kw, threads)
        np.testing.assert_array_equal(y, want.astype(dtype), strict=True)
        x, w, _ = _data(rng, case, dtype, integer=False)
        y0 = _direct(x, w, None, kw, threads)
        y1 = _direct(x, w, np.zeros(w.shape[0], dtype), kw, threads)
        np.testing.assert_array_equal(y0, y1)


# (name, ACT_* code, a0, a1, the activation as numpy computes it in the array's dtype); the kernel
# applies the clamps (and the residual) on each tile while it is in cache, the others after it
EPILOGUES = [
    ("relu", inference.ACT_RELU, 0.0, 0.0, lambda v: np.maximum(v, 0)),
    ("relu6", inference.ACT_RELU6, 0.0, 0.0, lambda v: np.minimum(np.maximum(v, 0), 6)),
    ("hardtanh", inference.ACT_HARDTANH, -0.75, 1.5, lambda v: np.clip(v, -0.75, 1.5)),
    ("none", inference.ACT_NONE, 0.0, 0.0, lambda v: v),
    ("silu", inference.ACT_SILU, 0.0, 0.0, None),
]


@pytest.mark.parametrize("epilogue", EPILOGUES, ids=[e[0] for e in EPILOGUES])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_epilogue_gives_the_bits_of_the_separate_passes(epilogue, dtype):
    """y = act(conv + b + residual) in one call: the same bits as the convolution alone followed
    by the residual add and the clamp in numpy, on every blocking (bands, strips, one-vector
    tiles, filter lanes) and both thread counts, with and without the residual and packing."""
    _, act, a0, a1, fn = epilogue
    rng = np.random.default_rng(16)
    for case in LAYERS:
        x, w, b = _data(rng, case, dtype, integer=False)
        kw = _kw(case)
        s, p, d = (np.broadcast_to(kw[k], 2) for k in ("stride", "padding", "dilation"))
        conv = conv2d(x, w, b, **kw, _route="direct")
        r = rng.standard_normal(conv.shape).astype(dtype)
        packed = _conv.pack_direct_weight(w, kw["groups"])
        for threads, res, pk in [(1, r, None), (2, r, packed), (2, None, None)]:
            y = np.full(conv.shape, np.nan, dtype)
            _conv.conv2d_forward_direct(
                x, w, b, y, s[0], s[1], p[0], p[1], d[0], d[1], kw["groups"], threads,
                res, act, a0, a1, pk,
            )  # fmt: skip
            v = conv if res is None else conv + res
            if fn is None:  # SiLU: after the kernel, in float64 arithmetic rounded once
                want = (v / (1.0 + np.exp(-v.astype(np.float64)))).astype(dtype)
                np.testing.assert_allclose(y, want, rtol=1e-6 if dtype == np.float32 else 1e-15)
            else:
                np.testing.assert_array_equal(y, fn(v), strict=True, err_msg=case[0])


@pytest.mark.parametrize("case", [c for c in LAYERS if c[0] in ("1x1-s2", "dilated-s2")])
@pytest.mark.parametrize("threads", [1, 2])
def test_weight_gradient_with_row_phases_no_tap_reads(case, threads, restore_threads):
    """The direct weight gradient unfolds as the forward does, without the unread phases:
    integer data, exact against the reference, on one thread and two."""
    rng = np.random.default_rng(13)
    x, w, _ = _data(rng, case, np.float32, integer=True)
    kw = _kw(case)
    x4 = np.concatenate([x, -x, x[:, :, ::-1].copy(), 2 * x])  # pairs enough for the route
    gy = rng.integers(-3, 4, size=R.conv2d(x4, w, None, **kw).shape).astype(np.float32)
    convext.set_num_threads(threads)
    _, gw, _ = convext.functional.conv2d_backward(
        gy, x4, w, **kw, needs_input_grad=False, needs_bias_grad=False, _route="direct"
    )
    want = R.conv2d_grads(gy, x4, w, **kw)[1]
    assert np.abs(want).max() < 2**24
    np.testing.assert_array_equal(gw, want.astype(np.float32), strict=True)


@pytest.mark.parametrize("case", [c for c in LAYERS if c[0] in ("1x1-s2", "dilated-s2")])
@pytest.mark.parametrize("threads", [1, 2])
def test_the_unread_row_phases_never_reach_a_result(case, threads):
    """The unfold leaves the planes of the row phases no tap reads as they were: with the
    scratch full of NaN beforehand the forward is still exact (a tail tile's lanes past a band
    may read them, and are dropped)."""
    rng = np.random.default_rng(14)
    x, w, b = _data(rng, case, np.float32, integer=True)
    _, _, _, s, p, d = case
    y = np.empty(R.conv2d(x, w, b, stride=s, padding=p, dilation=d).shape, np.float32)
    call = _conv.prepare_forward("direct", x.shape, w, b, y.shape, s, s, p, p, d, d, 1, threads)
    scratch = np.full(call.scratch_bytes // 4 + 16, np.nan, np.float32)
    call.use_scratch(scratch.view(np.uint8))
    call(x, y)
    want = R.conv2d(x, w, b, stride=s, padding=p, dilation=d).astype(np.float32)
    np.testing.assert_array_equal(y, want, strict=True)
