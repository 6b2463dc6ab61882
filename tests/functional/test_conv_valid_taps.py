"""The valid-taps forward route (convext/_kernels/isa/valid_taps.inc): against the naive oracle on
geometries that put output pixels at every kind of edge (asymmetric and oversized padding,
stride, dilation, groups, wide kernels), the same bits for every thread count and batch, its
epilogue and packed weight against the plain call, the GEMM route for a non-finite weight, and
the chooser's limits."""

import numpy as np
import pytest

import convext
import reference as R
from convext import conv2d, conv2d_backward
from convext._kernels import _conv, _isa
from convext.functional import _routes
from convext.functional import conv as conv_module
from convext.functional._routes import accepts, choose_route
from convext.inference import ACT_HARDTANH, ACT_RELU, ACT_SILU

# (x shape, w shape, conv2d keywords): pixels whose taps are cut on every side, by padding, by a
# kernel wider than the input, by stride and dilation; groups; filters not a whole block
GEOMETRIES = [
    ((2, 8, 7, 7), (16, 8, 3, 3), dict(padding=1)),
    ((1, 3, 9, 11), (70, 3, 3, 5), dict(stride=2, padding=2)),
    ((2, 6, 8, 8), (130, 3, 3, 3), dict(padding=3, dilation=2, groups=2)),
    ((1, 4, 5, 5), (8, 4, 7, 7), dict(padding=3)),
    ((1, 5, 6, 6), (4, 5, 3, 3), dict(stride=3, padding=5)),  # pixels no tap reaches
    ((2, 4, 6, 9), (9, 4, 2, 4), dict(padding="same")),  # even kernels: asymmetric padding
    ((1, 3, 10, 8), (7, 3, 3, 3), dict(padding=(2, 0, 1, 3))),  # per side (top, bottom, ...)
    ((3, 16, 14, 14), (64, 16, 1, 1), {}),
    ((1, 2, 4, 30), (5, 2, 16, 3), dict(padding=(8, 1), dilation=(1, 2))),
    ((16, 8, 7, 7), (130, 8, 3, 3), dict(padding=1)),  # tiles across the images too
    ((9, 3, 5, 6), (20, 3, 3, 3), dict(padding=2, stride=(1, 2))),
    # the unrolled copy for a whole 3x3 kernel (tiles along the rows: each image alone) against
    # the steps from the tables (tiles across the images), at stride 2 and a dilated row step
    ((16, 8, 7, 13), (70, 8, 3, 3), dict(padding=1, stride=(1, 2))),
    ((12, 8, 9, 9), (64, 8, 3, 3), dict(padding=1, stride=2)),
    ((16, 8, 9, 7), (66, 8, 3, 3), dict(padding=(2, 1), dilation=(2, 1))),
]


@pytest.mark.parametrize("xs, ws, kw", GEOMETRIES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matches_naive_for_every_thread_count_and_image(xs, ws, kw, dtype, restore_threads):
    rng = np.random.default_rng(sum(xs) + sum(ws))
    x, w = rng.standard_normal(xs).astype(dtype), rng.standard_normal(ws).astype(dtype)
    b = rng.standard_normal(ws[0]).astype(dtype)
    ref = _oracle(x, w, b, kw)
    got = []
    for nt in (1, 2, 3):
        convext.set_num_threads(nt)
        got.append(conv2d(x, w, b, **kw, _route="valid_taps"))
    for other in got[1:]:
        np.testing.assert_array_equal(other, got[0])
    tol = dict(rtol=1e-10, atol=1e-12) if dtype == np.float64 else dict(rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got[0], ref, **tol)
    assert got[0].dtype == dtype
    for n in range(xs[0]):  # each image's output is the one it gets alone
        alone = conv2d(x[n : n + 1], w, b, **kw, _route="valid_taps")
        np.testing.assert_array_equal(alone[0], got[0][n])
    nobias = conv2d(x, w, None, **kw, _route="valid_taps")
    np.testing.assert_allclose(nobias, _oracle(x, w, None, kw), **tol)


# many channels on a wide plane: the channels go in several blocks (isa/valid_taps.inc), and
# the interior's tiles run along the rows
BLOCK_GEOMETRIES = [
    ((1, 40, 30, 30), (18, 40, 3, 3), dict(padding=1)),
    ((2, 41, 9, 12), (33, 41, 3, 3), dict(padding=1)),  # blocks of unequal size
    ((2, 24, 13, 41), (20, 12, 3, 3), dict(padding=2, stride=(1, 2), dilation=2, groups=2)),
]


@pytest.mark.parametrize("xs, ws, kw", BLOCK_GEOMETRIES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_channel_blocks_change_no_bit(xs, ws, kw, dtype, restore_threads):
    rng = np.random.default_rng(sum(xs) + 5)
    x, w = rng.standard_normal(xs).astype(dtype), rng.standard_normal(ws).astype(dtype)
    b = rng.standard_normal(ws[0]).astype(dtype)
    old = _isa.vt_block_bytes()
    got = []
    try:
        # one channel per block up to all of them in one (the budget is in bytes: 1 kB holds
        # less than one channel's packed weights and input rows)
        for nbytes in (1024, 24 * 1024, 64 * 1024, 1 << 30):
            before = _isa.vt_block_bytes()
            assert _isa.set_vt_block_bytes(nbytes) == before
            for nt in (1, 2):
                convext.set_num_threads(nt)
                got.append(conv2d(x, w, b, **kw, _route="valid_taps"))
    finally:
        _isa.set_vt_block_bytes(old)
    for other in got[1:]:
        np.testing.assert_array_equal(other, got[0], strict=True)
    want = _oracle(x, w, b, kw)
    # a sum of 360 products: the error bound scales with the output's magnitude
    tol = 1e-10 if dtype == np.float64 else 1e-5
    assert np.abs(got[0] - want).max() <= tol * np.abs(want).max()


def test_the_channel_block_budget_for_the_cpu():
    kb = 1024
    # an eighth of the L2 (a quarter for the AVX-512 kernels), at least VT_BLOCK_MIN; the
    # compiled default where the L2 is unknown
    for isa in ("generic", "avx2", "neon"):
        assert _isa.vt_block_for(512 * kb, isa) == 64 * kb
        assert _isa.vt_block_for(1024 * kb, isa) == 128 * kb
        assert _isa.vt_block_for(2048 * kb, isa) == 256 * kb
        assert _isa.vt_block_for(128 * kb, isa) == 32 * kb
    assert _isa.vt_block_for(512 * kb, "avx512") == 128 * kb
    assert _isa.vt_block_for(1024 * kb, "avx512") == 256 * kb
    assert _isa.vt_block_for(64 * kb, "avx512") == 32 * kb
    assert _isa.VT_BLOCK_MIN == 32 * kb
    assert _isa.vt_block_for(0, "avx2") == _isa.vt_block_for(0, "avx512") == 128 * kb
    l2 = _isa.cpu_cache()["l2_bytes"]
    assert _isa.vt_block_bytes() == _isa.vt_block_for(l2, _isa.active())
    for bad in (0, 1023, 2**40, 65536.0, "65536", True):
        with pytest.raises(ValueError, match="bytes"):
            _isa.set_vt_block_bytes(bad)
    assert _isa.vt_block_bytes() == _isa.vt_block_for(l2, _isa.active())


def _oracle(x, w, b, kw):
    """The naive convolution in float64; padding per side (top, bottom, left, right) as the
    zeros put around x first."""
    x, w = x.astype(np.float64), w.astype(np.float64)
    b = None if b is None else b.astype(np.float64)
    pad = kw.get("padding", 0)
    if isinstance(pad, tuple) and len(pad) == 4:
        x = np.pad(x, ((0, 0), (0, 0), pad[:2], pad[2:]))
        kw = dict(kw, padding=0)
    return R.conv2d(x, w, b, **kw)


def _kernel_args(x, w, kw):
    x4, w4, _, _, g = conv_module._conv_setup(
        x,
        w,
        None,
        kw.get("stride", 1),
        kw.get("padding", 0),
        kw.get("dilation", 1),
        kw.get("groups", 1),
    )
    y = np.empty((x.shape[0], w.shape[0]) + g.out_hw, x.dtype)
    return y, conv_module._kernel_geom(
        g, x4.shape, w4.shape, "valid_taps", x4.dtype.itemsize, "conv2d"
    )


@pytest.mark.parametrize("act", [(ACT_RELU, 0.0, 0.0), (ACT_HARDTANH, -0.5, 0.7), (ACT_SILU, 0, 0)])
def test_epilogue_and_packed_weight_give_the_plain_calls_bits(act):
    rng = np.random.default_rng(7)
    xs, ws, kw = (2, 6, 8, 8), (130, 3, 3, 3), dict(padding=3, dilation=2, groups=2)
    x, w = rng.standard_normal(xs).astype(np.float32), rng.standard_normal(ws).astype(np.float32)
    b = rng.standard_normal(ws[0]).astype(np.float32)
    y, geom = _kernel_args(x, w, kw)
    res = rng.standard_normal(y.shape).astype(np.float32)
    _conv.conv2d_forward_valid_taps(x, w, b, y, *geom)
    plain = y.copy()
    _conv.conv2d_epilogue(plain, res, *act, 1)
    fused = np.full_like(y, np.nan)
    packed = _conv.pack_valid_taps_weight(w, 2, 2)
    _conv.conv2d_forward_valid_taps(x, w, b, fused, *geom, res, *act, packed)
    np.testing.assert_array_equal(fused, plain)
    again = np.full_like(y, np.nan)
    _conv.conv2d_forward_valid_taps(x, w, b, again, *geom, None, 0, 0.0, 0.0, packed)
    np.testing.assert_array_equal(again, y)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "ws, groups", [((8, 4, 3, 3), 1), ((64, 64, 3, 3), 1), ((130, 3, 3, 3), 2)]
)
def test_packed_weight_starts_on_a_cache_line(dtype, ws, groups):
    """The tile loads its vectors of filters from the packed weight: it starts on a 64-byte
    boundary (numpy aligns its arrays to 16 bytes only, and a 64-byte load from such an offset
    spans two lines), small or large, and gives the bits of the packing done inside the
    call."""
    rng = np.random.default_rng(5)
    w = rng.standard_normal(ws).astype(dtype)
    x = rng.standard_normal((1, ws[1] * groups, 9, 9)).astype(dtype)
    for _ in range(3):
        packed = _conv.pack_valid_taps_weight(w, groups)
        assert packed.ctypes.data % 64 == 0
        assert packed.dtype == dtype and packed.ndim == 1 and packed.flags.c_contiguous
    y, geom = _kernel_args(x, w, dict(padding=1, groups=groups))
    _conv.conv2d_forward_valid_taps(x, w, None, y, *geom)
    again = np.full_like(y, np.nan)
    _conv.conv2d_forward_valid_taps(x, w, None, again, *geom, None, 0, 0.0, 0.0, packed)
    np.testing.assert_array_equal(again, y)


def test_empty_aligned_starts_on_the_boundary_it_is_given():
    for align in (64, 4096, 2 << 20):
        for n, dtype in ((0, np.float32), (1, np.float64), (1000, np.float32), (77, np.uint8)):
            a = _conv.empty_aligned(n, dtype, align)
            assert n == 0 or a.ctypes.data % align == 0  # (an empty slice's pointer is numpy's)
            assert a.shape == (n,) and a.dtype == dtype and a.flags.c_contiguous
            assert a.flags.writeable
            a[...] = 1
    for bad in (0, 3, 48, -64):
        with pytest.raises(ValueError, match="align must be a power of two"):
            _conv.empty_aligned(4, np.float32, bad)


@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan])
def test_a_non_finite_weight_runs_the_gemm_route(bad):
    """inf or NaN times the zero padding is NaN on the other routes (and in the oracle): the
    valid-taps packer refuses such a weight, and the call runs the GEMM route instead."""
    rng = np.random.default_rng(11)
    x, w = rng.standard_normal((2, 4, 6, 6)), rng.standard_normal((8, 4, 3, 3))
    w[3, 1, 0, 2] = bad
    assert _conv.pack_valid_taps_weight(w, 1) is None
    got = conv2d(x, w, padding=1, _route="valid_taps")
    want = conv2d(x, w, padding=1, _route="gemm")
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_array_equal(got[~np.isnan(got)], want[~np.isnan(want)])
    assert np.isnan(got[:, 3, 0]).all() or not np.isfinite(got[:, 3]).all()


def _shape(x_shape, w_shape, **kw):
    x4, w4, _, _, g = conv_module._conv_setup(
        np.empty(x_shape),
        np.empty(w_shape),
        None,
        kw.get("stride", 1),
        kw.get("padding", 0),
        kw.get("dilation", 1),
        kw.get("groups", 1),
    )
    return _routes.conv_shape(x4.shape, w4.shape, g)


def test_the_chooser_takes_it_for_padded_kernels_beyond_the_smallest_planes():
    pick = lambda *a, **k: choose_route("forward", _shape(*a, **k))  # noqa: E731
    assert _routes.VT_MIN_PLANE == 25
    assert pick((1, 256, 14, 14), (256, 256, 3, 3), padding=1) == "valid_taps"
    assert pick((16, 128, 28, 28), (128, 128, 3, 3), padding=1) == "valid_taps"
    assert pick((1, 128, 28, 28), (256, 128, 3, 3), stride=2, padding=1) == "valid_taps"
    for n in (1, 16):  # 49 and 25 pixels, whatever the batch; 16 pixels not
        assert pick((n, 512, 7, 7), (512, 512, 3, 3), padding=1) == "valid_taps"
        assert pick((n, 256, 14, 14), (512, 256, 3, 3), stride=2, padding=1) == "valid_taps"
        assert pick((n, 512, 5, 5), (512, 512, 3, 3), padding=1) == "valid_taps"
        assert pick((n, 512, 4, 4), (512, 512, 3, 3), padding=1) != "valid_taps"
    assert pick((1, 64, 56, 56), (64, 64, 3, 3), padding=1) == "valid_taps"
    assert pick((1, 64, 112, 112), (128, 64, 3, 3), padding=1) == "valid_taps"
    assert pick((1, 64, 8, 8), (64, 64, 3, 3), padding=1) == "valid_taps"  # 64 pixels
    # from VT_MIN_TAPS taps per output (channels times the kernel's taps) and VT_MIN_FG filters
    # per group on: 64 channels of a 3x3 kernel and a block of 64 filters on AVX-512 (with 32,
    # half of every vector is idle), 16 and 16 on AVX2, where 16 channels won
    taps, fg = _routes.VT_MIN_TAPS, _routes.VT_MIN_FG
    assert (taps, fg) == ((144, 16) if _isa.active() == "avx2" else (576, 64))
    cg = taps // 9
    assert pick((1, cg, 56, 56), (fg, cg, 3, 3), padding=1) == "valid_taps"
    # a wider kernel with fewer channels: counted in taps (ResNet's 7x7 stem on AVX2: 147)
    c7 = -(-taps // 49)
    assert pick((1, c7, 56, 56), (fg, c7, 7, 7), padding=3) == "valid_taps"
    assert pick((1, c7 - 1, 56, 56), (fg, c7 - 1, 7, 7), padding=3) != "valid_taps"
    # the input gradient keeps 576 taps and 64 filters (GI_VT_MIN_TAPS, GI_VT_MIN_FG) everywhere
    assert (_routes.GI_VT_MIN_TAPS, _routes.GI_VT_MIN_FG) == (576, 64)
    for c in (32, 64):
        s32 = _shape((16, c, 28, 28), (c, c, 3, 3), padding=1)
        assert choose_route("forward", s32) == ("valid_taps" if c >= cg else "direct")
        assert (choose_route("grad_input", s32) == "valid_taps") == (c >= 64)
    assert pick((1, cg, 56, 56), (fg - 1, cg, 3, 3), padding=1) != "valid_taps"
    assert pick((1, cg - 1, 56, 56), (fg, cg - 1, 3, 3), padding=1) != "valid_taps"
    assert pick((1, 256, 14, 14), (256, 256, 3, 3)) != "valid_taps"  # no padding to skip
    assert pick((1, 256, 14, 14), (256, 256, 1, 1)) != "valid_taps"
    assert pick((1, 3, 224, 224), (64, 3, 3, 3), padding=1) != "valid_taps"  # a stem's 3 channels
    assert pick((1, 256, 14, 14), (256, 1, 3, 3), padding=1, groups=256) == "depthwise"
    # the input gradient where its forward convolution takes it; the weight gradient has none
    s = _shape((1, 256, 14, 14), (256, 256, 3, 3), padding=1)
    assert choose_route("grad_input", s) == "valid_taps"
    # ... on the forward's planes, from VT_MIN_PLANE pixels (5x5, not 4x4), whatever the batch
    for n in (1, 16):
        for hw, want in ((7, True), (5, True), (4, False)):
            sq = _shape((n, 512, hw, hw), (512, 512, 3, 3), padding=1)
            assert (choose_route("forward", sq) == "valid_taps") == want
            assert (choose_route("grad_input", sq) == "valid_taps") == want
    strided = _shape((1, 128, 28, 28), (256, 128, 3, 3), stride=2, padding=1)
    assert not accepts("valid_taps", "grad_input", strided)
    assert not accepts("valid_taps", "grad_weight", s)


def test_it_refuses_what_its_bounded_scratch_cannot_hold():
    assert not accepts("valid_taps", "forward", _shape((1, 4, 20, 20), (4, 4, 17, 3), padding=8))
    assert accepts("valid_taps", "forward", _shape((1, 4, 20, 20), (4, 4, 16, 3), padding=8))
    wide = _routes.VT_MAX_OW + 1
    assert not accepts("valid_taps", "forward", _shape((1, 2, 1, wide), (4, 2, 1, 1)))
    assert accepts("valid_taps", "forward", _shape((1, 2, 1, wide - 1), (4, 2, 1, 1)))
    # one channel per group is the depthwise route's
    assert not accepts("valid_taps", "forward", _shape((1, 4, 8, 8), (4, 1, 3, 3), groups=4))
    # few filters in many groups: blocks of up to 64 filters would pad the weight far beyond
    # its size
    many = _shape((1, 4096, 8, 8), (4096, 2, 3, 3), padding=1, groups=2048)
    assert not accepts("valid_taps", "forward", many)
    with pytest.raises(ValueError, match="valid_taps route cannot"):
        conv2d(np.ones((1, 4, 8, 8)), np.ones((4, 1, 3, 3)), groups=4, _route="valid_taps")


# stride 1 (the input gradient as a forward convolution): padding, dilation, groups, kernels
GRAD_INPUT_GEOMETRIES = [
    ((2, 8, 7, 7), (16, 8, 3, 3), dict(padding=1)),
    ((2, 6, 8, 8), (130, 3, 3, 3), dict(padding=2, dilation=2, groups=2)),
    ((1, 4, 9, 6), (8, 4, 5, 3), dict(padding=(1, 2))),
    ((16, 8, 5, 5), (70, 8, 3, 3), dict(padding=1)),
]


@pytest.mark.parametrize("xs, ws, kw", GRAD_INPUT_GEOMETRIES)
def test_grad_input_matches_naive_for_every_thread_count_and_image(xs, ws, kw, restore_threads):
    rng = np.random.default_rng(sum(xs) + 3)
    x, w = rng.standard_normal(xs), rng.standard_normal(ws)
    gy = rng.standard_normal(R.conv2d(x, w, **kw).shape)
    want = R.conv2d_grads(gy, x, w, **kw)[0]
    only = dict(needs_weight_grad=False, needs_bias_grad=False)
    got = []
    for nt in (1, 2, 3):
        convext.set_num_threads(nt)
        got.append(conv2d_backward(gy, x, w, **kw, **only, _route="valid_taps")[0])
    np.testing.assert_allclose(got[0], want, rtol=1e-10, atol=1e-12)
    for other in got[1:]:
        np.testing.assert_array_equal(other, got[0])
    for n in range(xs[0]):
        alone = conv2d_backward(gy[n : n + 1], x[n : n + 1], w, **kw, **only, _route="valid_taps")
        np.testing.assert_array_equal(alone[0][0], got[0][n])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "ws, groups",
    [
        ((16, 8, 3, 3), 1),
        ((512, 70, 3, 3), 1),  # the gradient's filters (70 channels) past one block
        ((12, 5, 2, 3), 2),  # a kernel that is not square, groups
        ((8, 130, 5, 5), 4),
        ((3, 1, 1, 1), 1),
    ],
)
def test_the_rotated_weight_is_packed_as_its_numpy_rotation(dtype, ws, groups):
    """The input gradient's weight w'[c, f] = w[f, c] rotated by 180 degrees in each group,
    packed straight from w, is bit for bit the packing of w' made by NumPy; an inf or a NaN
    anywhere in w gives None (the GEMM route), as the packer of w' does."""
    rng = np.random.default_rng(sum(ws))
    w = rng.standard_normal(ws).astype(dtype)
    F, cg, kh, kw = ws
    rot = w.reshape(groups, F // groups, cg, kh, kw)[:, :, :, ::-1, ::-1].transpose(0, 2, 1, 3, 4)
    rot = np.ascontiguousarray(rot).reshape(groups * cg, F // groups, kh, kw)
    want = _conv.pack_valid_taps_weight(rot, groups, 2)
    for nt in (1, 2, 3):
        got = _conv.pack_valid_taps_weight(w, groups, nt, rotated=True)
        assert got.dtype == dtype and got.shape == want.shape and got.ctypes.data % 64 == 0
        np.testing.assert_array_equal(got.view(np.uint8), want.view(np.uint8))
    for bad, at in ((np.inf, (-1, -1, -1, 0)), (np.nan, (0, 0, 0, -1)), (-np.inf, (0, -1, 0, 0))):
        spoilt = w.copy()
        spoilt[at] = bad  # the last block's channels, or the first's
        for nt in (1, 3):
            assert _conv.pack_valid_taps_weight(spoilt, groups, nt, rotated=True) is None


@pytest.mark.parametrize("hw", [5, 7, 9])
def test_grad_input_on_small_planes_in_float32(hw, restore_threads):
    """The input gradient takes the route from 5x5 planes on (VT_MIN_PLANE), in float32 too:
    against the naive loops in float64, the same bits on 1 and 2 threads and for an image
    alone."""
    rng = np.random.default_rng(hw)
    x = rng.standard_normal((3, 64, hw, hw)).astype(np.float32)
    w = (rng.standard_normal((72, 64, 3, 3)) / 24).astype(np.float32)
    gy = rng.standard_normal((3, 72, hw, hw)).astype(np.float32)
    s = _routes.conv_shape(
        x.shape, w.shape, conv_module._conv_window(x.shape, w.shape, None, 1, 1, 1, 1, "conv2d")
    )
    assert choose_route("grad_input", s) == "valid_taps"
    want = R.conv2d_grads(
        gy.astype(np.float64), x.astype(np.float64), w.astype(np.float64), padding=1
    )[0]
    only = dict(padding=1, needs_weight_grad=False, needs_bias_grad=False)
    got = []
    for nt in (1, 2):
        convext.set_num_threads(nt)
        got.append(conv2d_backward(gy, x, w, **only)[0])
    assert got[0].dtype == np.float32
    np.testing.assert_allclose(got[0], want, rtol=1e-4, atol=1e-4 * np.abs(want).max())
    np.testing.assert_array_equal(got[1], got[0])
    alone = conv2d_backward(gy[1:2], x[1:2], w, **only)[0]
    np.testing.assert_array_equal(alone[0], got[0][1])


def test_grad_input_with_a_non_finite_weight_is_the_gemm_routes():
    rng = np.random.default_rng(12)
    x, w = rng.standard_normal((2, 4, 6, 6)), rng.standard_normal((8, 4, 3, 3))
    w[2, 3, 1, 0] = np.inf
    gy = rng.standard_normal((2, 8, 6, 6))
    gy[:, :, 0] = 0.0  # inf * 0 = NaN where the gradient has such a product
    only = dict(padding=1, needs_weight_grad=False, needs_bias_grad=False)
    got = conv2d_backward(gy, x, w, **only, _route="valid_taps")[0]
    want = conv2d_backward(gy, x, w, **only, _route="gemm")[0]
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_array_equal(got[~np.isnan(got)], want[~np.isnan(want)])
    assert np.isnan(want).any() and np.isinf(want).any() and np.isfinite(want).any()
