"""The convolution's route choice (convext/functional/_routes.py): the chooser against its
rules, forced routes, every route that accepts a geometry against the naive oracle, and which
kernel ran (the torch comparison through every route: tests/parity/test_parity_conv.py)."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

import convext
import reference as R
from cases import conv_cases, routes_for
from convext import conv2d, conv2d_backward
from convext.functional import _routes
from convext.functional import conv as conv_module
from convext.functional._common import Window
from convext.functional._routes import ConvShape, accepts, choose_route

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def shape(batch=2, groups=1, cg=3, fg=5, hw=(9, 9), k=(3, 3), s=(1, 1), d=(1, 1), pad=(1, 1)):
    out = tuple(convext.conv_output_size(hw[i], k[i], s[i], pad[i], d[i]) for i in range(2))
    window = Window(k, s, tuple((p, p) for p in pad), d, out, groups)
    return ConvShape(batch, cg, fg, hw, window)


# ------------------------------------------------------------------------- the chooser's rules


def test_depthwise_geometry_takes_the_depthwise_route_in_every_pass():
    s = shape(groups=4, cg=1, fg=1)
    for p in _routes.PASSES:
        assert choose_route(p, s) == "depthwise"


def test_depthwise_route_refuses_a_plane_beyond_its_scratch_bound():
    s = shape(groups=4, cg=1, fg=1, hw=(3, 3), k=(1, 1), s=(10**6, 10**6), pad=(10**6, 10**6))
    assert _routes.depthwise_scratch(s) > _routes.DW_SLACK * (9 + 9) + _routes.DW_MIN_SCRATCH
    assert not accepts("depthwise", "forward", s)
    assert choose_route("forward", s) == "gemm"


def test_tap_phases_counted_in_closed_form():
    """The depthwise scratch's distinct phases i*dil % stride of k taps, counted without
    building a set of k elements (a 2**24-row kernel took a second and 550 MB): the same
    counts as the set, and the scratch of a huge kernel is computed at once."""
    for k in range(1, 14):
        for dil in range(1, 10):
            for stride in range(1, 10):
                want = len({i * dil % stride for i in range(k)})
                assert _routes._phases(k, dil, stride) == want, (k, dil, stride)
    huge = shape(groups=1, cg=1, fg=1, hw=(1, 1), k=(2**40, 1), s=(2**39, 1), pad=(2**40, 0))
    assert _routes.depthwise_scratch(huge) > 0


def test_a_channel_multiplier_takes_the_depthwise_input_gradient_up_to_its_limit():
    m = _routes.DW_MAX_MULTIPLIER
    for s in (shape(groups=1, cg=1, fg=m), shape(groups=4, cg=1, fg=2)):  # a grey first layer
        assert all(accepts("depthwise", p, s) for p in _routes.PASSES)
        assert choose_route("grad_input", s) == "depthwise"
        # forward and weight gradient: the direct route's rules (grad_weight wants 4 pairs)
        assert choose_route("forward", s) == "direct"
        assert choose_route("grad_weight", s) == ("direct" if s.window.groups >= 2 else "gemm")
    s = shape(groups=1, cg=1, fg=m + 1)
    assert accepts("depthwise", "grad_input", s) and accepts("direct", "grad_input", s)
    # beyond it, the GEMM's: one channel is below the direct input gradient's GI_DIRECT_MIN_CG
    assert choose_route("grad_input", s) == "gemm"
    assert choose_route("grad_input", shape(groups=1, cg=1, fg=m + 1, s=(2, 2))) == "gemm"


def test_the_input_gradient_takes_the_direct_route_as_its_forward_convolution_would():
    """Stride 1 with padding at most d*(k-1) at the top and left: grad_out convolved with the
    rotated weight (channels and filters swapped) on the direct route, within its limits."""
    cg, fg = _routes.GI_DIRECT_MIN_CG, _routes.GI_DIRECT_FEW_FG + 6
    for kw in (dict(), dict(d=(2, 1), pad=(2, 0)), dict(k=(5, 3), pad=(4, 2)), dict(pad=(0, 0))):
        s = shape(cg=cg, fg=fg, hw=(12, 11), **kw)
        fwd, pads = _routes.grad_input_as_forward(s)
        k, d, (top, left) = s.window.kernel, s.window.dilation, s.window.pad_top_left
        assert pads == (d[0] * (k[0] - 1) - top, d[1] * (k[1] - 1) - left)
        assert (fwd.channels_per_group, fwd.filters_per_group) == (fg, cg)
        assert fwd.in_hw == s.window.out_hw and fwd.window.out_hw == s.in_hw
        assert accepts("direct", "grad_input", s)
        assert choose_route("grad_input", s) == "direct"
        # fewer channels (its forward's filters): the GEMM route, though direct accepts it
        s = shape(cg=cg - 1, fg=fg, hw=(12, 11), **kw)
        assert accepts("direct", "grad_input", s) and choose_route("grad_input", s) == "gemm"
    for kw in (dict(s=(2, 2)), dict(s=(1, 2)), dict(pad=(3, 1)), dict(k=(1, 1), pad=(1, 0))):
        s = shape(cg=cg, fg=fg, hw=(12, 11), **kw)
        assert _routes.grad_input_as_forward(s) is None
        assert not accepts("direct", "grad_input", s)
        assert choose_route("grad_input", s) == "gemm"
    # its forward convolution's channels are the filters here: within FWD_DIRECT_MAX_CG only
    limit = _routes.FWD_DIRECT_MAX_CG
    assert choose_route("grad_input", shape(cg=cg, fg=limit, hw=(12, 11))) == "direct"
    s = shape(cg=cg, fg=limit + 1, hw=(12, 11))
    assert accepts("direct", "grad_input", s) and choose_route("grad_input", s) == "gemm"


def test_direct_limits_are_the_active_instruction_sets():
    """The channel limits follow the ISA the kernels run: its direct tile sets them."""
    from convext._kernels import _isa

    assert set(_routes.DIRECT_LIMITS) == set(_isa.known())
    limits = _routes.DIRECT_LIMITS[_isa.active()]
    assert (_routes.FWD_DIRECT_MAX_CG, _routes.FWD_DIRECT_MAX_FG) == limits[:2]
    # where the L3 is slow per core (not _isa.fast_l3) the weight gradient's limits are
    # GW_DIRECT_SLOW_L3_MAX_CG channels and GW_DIRECT_SLOW_L3_MAX_FG filters at most, with any
    # filter count (up to the ISA's) from GW_DIRECT_SLOW_L3_ANY_FG_CG channels down
    gw_cg, gw_fg, any_fg_cg = limits.gw_cg, limits.gw_fg, 0
    if _routes.SLOW_L3:
        gw_cg = min(_routes.GW_DIRECT_SLOW_L3_MAX_CG, gw_cg)
        gw_fg = min(_routes.GW_DIRECT_SLOW_L3_MAX_FG, gw_fg)
        any_fg_cg = _routes.GW_DIRECT_SLOW_L3_ANY_FG_CG
    assert (_routes.GW_DIRECT_MAX_CG, _routes.GW_DIRECT_MAX_FG) == (gw_cg, gw_fg)
    assert _routes.GW_DIRECT_ANY_FG_MAX_CG == any_fg_cg


def test_weight_gradient_takes_any_filter_count_with_few_channels():
    """With at most GW_DIRECT_ANY_FG_MAX_CG channels per group (on a CPU with a slow L3; none
    elsewhere) the direct weight gradient takes up to the instruction set's filter limit."""
    from convext._kernels import _isa

    few, most = _routes.GW_DIRECT_ANY_FG_MAX_CG, _routes.DIRECT_LIMITS[_isa.active()].gw_fg
    small = dict(batch=4, hw=(11, 11), pad=(0, 0))
    if few:
        assert choose_route("grad_weight", shape(cg=few, fg=most, **small)) == "direct"
        assert choose_route("grad_weight", shape(cg=few, fg=most + 1, **small)) == "gemm"
    wide = max(few + 1, _routes.GW_DIRECT_MAX_CG + 1)
    assert choose_route("grad_weight", shape(cg=wide, fg=most, **small)) == "gemm"


@pytest.mark.parametrize(
    "pass_, max_cg, max_fg",
    [
        ("forward", _routes.FWD_DIRECT_MAX_CG, _routes.FWD_DIRECT_MAX_FG),
        ("grad_weight", _routes.GW_DIRECT_MAX_CG, _routes.GW_DIRECT_MAX_FG),
    ],
)
def test_direct_route_within_its_channel_and_filter_limits(pass_, max_cg, max_fg):
    # 81 output pixels: above the forward's small-plane rule; no padding, which the valid-taps
    # route would skip
    small = dict(batch=4, hw=(11, 11), pad=(0, 0))
    assert choose_route(pass_, shape(cg=max_cg, fg=max_fg, **small)) == "direct"
    assert choose_route(pass_, shape(cg=max_cg + 1, fg=max_fg, **small)) == "gemm"
    assert choose_route(pass_, shape(cg=max_cg, fg=max_fg + 1, **small)) == "gemm"
    # beyond the channel limits the direct route still accepts (when forced): a speed limit
    assert accepts("direct", pass_, shape(cg=max_cg + 1, fg=max_fg + 1, **small))


def test_1x1_forward_limit_follows_the_cpus_l3():
    """A 1x1 kernel takes the direct forward up to FWD_DIRECT_1X1_MAX_CG channels per group: 192
    where the L3 is slow per core (not _isa.fast_l3), else the forward's channel limit, as for
    every kernel; a 3x3 kernel keeps the forward's limit."""
    limit = _routes.FWD_DIRECT_1X1_MAX_CG
    if _routes.SLOW_L3:
        assert limit == min(192, _routes.FWD_DIRECT_MAX_CG)
    else:
        assert limit == _routes.FWD_DIRECT_MAX_CG
    one = dict(batch=4, fg=64, hw=(9, 9), k=(1, 1), pad=(0, 0))
    assert choose_route("forward", shape(cg=limit, **one)) == "direct"
    assert choose_route("forward", shape(cg=limit + 1, **one)) == "gemm"
    assert accepts("direct", "forward", shape(cg=limit + 1, **one))
    # the input gradient of a 1x1 kernel: its forward convolution's channels are the filters
    assert choose_route("grad_input", shape(cg=64, **one | dict(fg=limit))) == "direct"
    assert choose_route("grad_input", shape(cg=64, **one | dict(fg=limit + 1))) == "gemm"
    cg = min(_routes.FWD_DIRECT_MAX_CG, limit + 1)
    assert choose_route("forward", shape(batch=4, cg=cg, fg=64, hw=(11, 11), pad=(0, 0))) == (
        "direct"
    )


def test_1x1_on_a_small_plane_with_many_filters_takes_the_gemm_route():
    """A 1x1 kernel read in place (stride 1, no padding) on at most FWD_1X1_GEMM_MAX_PLANE
    output pixels with more than FWD_1X1_GEMM_MAX_DIRECT_FG filters: the GEMM route, forward
    and input gradient, whatever the batch; with fewer filters, a larger plane, a stride or a
    padding, the usual limits."""
    fg = _routes.FWD_1X1_GEMM_MAX_DIRECT_FG
    cg = min(64, _routes.FWD_DIRECT_1X1_MAX_CG)  # within the direct forward's channel limit
    one = dict(cg=cg, hw=(16, 16), k=(1, 1), pad=(0, 0))
    assert 16 * 16 == _routes.FWD_1X1_GEMM_MAX_PLANE
    for n in (1, 16):
        assert choose_route("forward", shape(batch=n, fg=fg + 1, **one)) == "gemm"
        assert choose_route("forward", shape(batch=n, fg=fg, **one)) == "direct"
    assert choose_route("forward", shape(fg=fg + 1, **{**one, "hw": (17, 16)})) == "direct"
    assert choose_route("forward", shape(fg=fg + 1, s=(2, 2), **{**one, "hw": (32, 32)})) == (
        "direct"
    )
    padded = shape(fg=fg + 1, **{**one, "hw": (14, 16), "pad": (1, 0)})
    assert padded.window.out_hw == (16, 16) and choose_route("forward", padded) == "direct"
    # the input gradient follows its forward convolution: the filters are its channels
    assert choose_route("grad_input", shape(fg=cg, **{**one, "cg": fg + 1})) == "gemm"
    assert choose_route("grad_input", shape(fg=cg, **{**one, "cg": fg})) == "direct"
    # what the rule forces is a speed choice: the direct route still accepts the geometry
    assert accepts("direct", "forward", shape(fg=fg + 1, **one))


def test_direct_weight_gradient_bounded_by_its_unfolded_image():
    # U = Cg * sh * kW * Hq * OW with Hq = OH + (kH - 1): a square image of side n, 3x3 'same'
    def at(n):
        return shape(batch=4, cg=4, fg=4, hw=(n, n))

    max_u, n = _routes.GW_DIRECT_MAX_U, 1
    while _routes.direct_unfolded(at(n + 1)) <= max_u:
        n += 1
    assert _routes.direct_unfolded(at(n)) <= max_u < _routes.direct_unfolded(at(n + 1))
    assert choose_route("grad_weight", at(n)) == "direct"
    assert accepts("direct", "grad_weight", at(n))
    assert choose_route("grad_weight", at(n + 1)) == "gemm"
    assert not accepts("direct", "grad_weight", at(n + 1))


def test_direct_forward_bounded_by_one_strip_of_its_unfolded_image():
    """The direct forward unfolds U band by band into a scratch of one band: it accepts any
    image whose smallest band (one strip's rows of U) is at most FWD_DIRECT_MAX_U elements, and
    beyond an image whose whole U fits that bound it is chosen only with at least
    FWD_DIRECT_MIN_BAND_ROWS output rows per band in either dtype on any CPU (fewer unfold the
    kernel's reach again for every row, and the GEMM route is faster), and for kernels larger
    than 1x1."""
    max_u = _routes.FWD_DIRECT_MAX_U

    def at(cg, width):  # 3x3 'same', 8 rows of `width`
        return shape(cg=cg, fg=4, hw=(8, width))

    width = 1
    while _routes.direct_strip_unfolded(at(64, width + 1)) <= max_u:
        width += 1
    assert _routes.direct_strip_unfolded(at(64, width)) <= max_u
    assert accepts("direct", "forward", at(64, width))
    assert not accepts("direct", "forward", at(64, width + 1))
    assert choose_route("forward", at(64, width + 1)) == "gemm"
    # images whose whole U exceeds the bound: the band rows decide
    # (at most 32 channels: within FWD_DIRECT_MAX_CG at every instruction-set level)
    many = [shape(cg=cg, fg=4, hw=(n, n)) for cg in (1, 4, 16, 32) for n in range(64, 4097, 64)]
    beyond = [
        s for s in many if _routes.direct_unfolded(s) > max_u and accepts("direct", "forward", s)
    ]
    rows = {s: _routes.direct_band_rows(s) for s in beyond}
    enough = [s for s in beyond if rows[s] >= _routes.FWD_DIRECT_MIN_BAND_ROWS]
    few = [s for s in beyond if rows[s] < _routes.FWD_DIRECT_MIN_BAND_ROWS]
    assert enough and few
    assert {choose_route("forward", s) for s in enough} == {"direct"}
    assert {choose_route("forward", s) for s in few} == {"gemm"}
    # a 1x1 kernel stays on the GEMM route beyond the bound, whatever its bands
    ones = [shape(cg=cg, fg=4, hw=(n, n), k=(1, 1), pad=(0, 0)) for cg, n in ((16, 512), (32, 384))]
    for s in ones:
        assert _routes.direct_unfolded(s) > max_u and _routes.direct_band_rows(s) >= 1
        assert accepts("direct", "forward", s) and choose_route("forward", s) == "gemm"


def test_grad_weight_direct_route_wants_enough_image_group_pairs():
    need = _routes.GW_DIRECT_MIN_PAIRS
    assert choose_route("grad_weight", shape(batch=need - 1)) == "gemm"
    assert choose_route("grad_weight", shape(batch=need)) == "direct"
    assert choose_route("grad_weight", shape(batch=1, groups=need, cg=2, fg=2)) == "direct"
    # the forward pass decides on the image alone: the batch never changes its route
    assert {choose_route("forward", shape(batch=n)) for n in (1, 2, 3, 4, 100)} == {"direct"}


def test_the_input_gradient_with_few_filters_takes_the_direct_route_from_fewer_channels():
    """With at most GI_DIRECT_FEW_FG filters (AVX-512; none elsewhere) the direct input
    gradient starts at GI_DIRECT_FEW_FG_MIN_CG channels, not GI_DIRECT_MIN_CG."""
    few, low = _routes.GI_DIRECT_FEW_FG, _routes.GI_DIRECT_FEW_FG_MIN_CG
    route = lambda cg, fg: choose_route("grad_input", shape(cg=cg, fg=fg, hw=(12, 11)))  # noqa: E731
    if few:
        assert route(low, few) == "direct" and route(low - 1, few) == "gemm"
        assert route(low, few + 1) == ("direct" if low >= _routes.GI_DIRECT_MIN_CG else "gemm")
    assert route(_routes.GI_DIRECT_MIN_CG - 1, few + 1) == "gemm"
    assert route(_routes.GI_DIRECT_MIN_CG, few + 1) == "direct"


def test_grad_input_direct_route_is_decided_on_the_image_alone():
    """An image's input gradient is the same in any batch: the batch never changes its route."""
    cg = _routes.GI_DIRECT_MIN_CG
    assert {choose_route("grad_input", shape(batch=n, cg=cg)) for n in (1, 2, 8, 100)} == {"direct"}
    assert {choose_route("grad_input", shape(batch=n, cg=cg, s=(2, 2))) for n in (1, 100)} == {
        "gemm"
    }


# ------------------------------------------------------------------------- forced routes


def test_forced_route_that_cannot_compute_the_geometry_is_a_value_error():
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((2, 4, 6, 6)), rng.standard_normal((6, 2, 3, 3))
    with pytest.raises(ValueError, match="_route.*'gemm', 'direct', 'depthwise'"):
        conv2d(x, w, groups=2, _route="im2col")
    with pytest.raises(ValueError, match="depthwise route cannot"):
        conv2d(x, w, groups=2, _route="depthwise")
    gy = np.ones((2, 6, 4, 4))
    with pytest.raises(ValueError, match="direct route cannot compute the grad_input"):
        conv2d_backward(np.ones((2, 6, 2, 2)), x, w, 2, groups=2, _route="direct")  # stride 2
    with pytest.raises(ValueError, match="_route keys"):
        conv2d_backward(gy, x, w, groups=2, _route={"forward": "gemm"})
    # not asked for, not checked: the weight gradient alone may take the direct route
    _, gw, _ = conv2d_backward(gy, x, w, groups=2, _route="direct", needs_input_grad=False)
    np.testing.assert_allclose(gw, R.conv2d_grads(gy, x, w, groups=2)[1], rtol=1e-10, atol=1e-12)
    # a refused route writes nothing into out
    out = np.full((2, 6, 4, 4), 7.0)
    with pytest.raises(ValueError):
        conv2d(x, w, groups=2, out=out, _route="depthwise")
    assert (out == 7.0).all()


def _all_routes_match_naive(x, w, b, kw):
    allowed = routes_for(x, w, kw)
    ref = R.conv2d(x, w, b, **kw)
    gy = np.random.default_rng(3).standard_normal(ref.shape)
    rgx, rgw, _ = R.conv2d_grads(gy, x, w, **kw)
    for r in allowed["forward"]:
        np.testing.assert_allclose(conv2d(x, w, b, **kw, _route=r), ref, rtol=1e-10, atol=1e-12)
    for r in allowed["grad_input"]:
        gx = conv2d_backward(gy, x, w, **kw, _route={"grad_input": r}, needs_weight_grad=False)[0]
        np.testing.assert_allclose(gx, rgx, rtol=1e-10, atol=1e-12)
    for r in allowed["grad_weight"]:
        gw = conv2d_backward(gy, x, w, **kw, _route={"grad_weight": r}, needs_input_grad=False)[1]
        np.testing.assert_allclose(gw, rgw, rtol=1e-10, atol=1e-12)
    return allowed


@SETTINGS
@given(conv_cases())
def test_every_route_that_accepts_a_geometry_matches_naive(case):
    x, w, b, kw = case
    allowed = _all_routes_match_naive(x, w, b, kw)
    assert "gemm" in allowed["forward"] and "gemm" in allowed["grad_weight"]


ROUTE_GEOMETRIES = [  # each accepted by all three routes of the forward pass
    ((3, 4, 12, 13), (4, 1, 5, 5), dict(padding=2, groups=4)),
    ((2, 3, 9, 8), (3, 1, 3, 2), dict(stride=(2, 1), padding=(1, 0), dilation=(1, 2), groups=3)),
    ((2, 2, 7, 7), (2, 1, 4, 4), dict(padding="same", groups=2)),
]


@pytest.mark.parametrize("xs, ws, kw", ROUTE_GEOMETRIES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_three_routes_agree_and_each_is_the_same_for_every_thread_count(
    xs, ws, kw, dtype, restore_threads
):
    rng = np.random.default_rng(4)
    x, w = rng.standard_normal(xs).astype(dtype), rng.standard_normal(ws).astype(dtype)
    b = rng.standard_normal(ws[0]).astype(dtype)
    allowed = routes_for(x, w, kw)
    assert allowed["forward"] == ["gemm", "direct", "depthwise"]
    if dtype == np.float64:
        _all_routes_match_naive(x, w, b, kw)
    ref = R.conv2d(x, w, b, **kw)
    for r in allowed["forward"]:
        got = []
        for nt in (1, 2, 3):
            convext.set_num_threads(nt)
            got.append(conv2d(x, w, b, **kw, _route=r))
        for other in got[1:]:
            np.testing.assert_array_equal(got[0], other)
        if dtype == np.float32:
            assert np.abs(got[0] - ref).max() <= 1e-5 * max(1, np.abs(ref).max())


# ------------------------------------------------------------------------- which route ran


def test_the_chosen_route_is_the_kernel_that_runs(monkeypatch):
    """A spy on every route kernel: each call runs exactly the kernel choose_route names."""
    ran, seen = [], set()
    for p, routes in _routes.PASS_ROUTES.items():
        for r in routes:
            name = f"conv2d_{p}_{r}"
            real = getattr(conv_module._conv, name)

            def spy(*args, _real=real, _p=p, _r=r):
                ran.append((_p, _r))
                return _real(*args)

            monkeypatch.setattr(conv_module._conv, name, spy)
    rng = np.random.default_rng(5)
    cases = [
        ((4, 16, 8, 8), (5, 16, 3, 3), dict(padding=1)),  # direct
        ((4, 300, 5, 5), (2, 300, 1, 1), {}),  # gemm (Cg beyond)
        ((2, 4, 8, 8), (4, 1, 3, 3), dict(padding=1, groups=4)),  # depthwise
        ((4, 3, 8, 8), (5, 3, 3, 3), dict(padding=1, stride=2)),  # grad_input: gemm
        ((1, 64, 10, 10), (64, 64, 3, 3), dict(padding=1)),  # valid taps
        ((1, 3, 8, 8), (5, 3, 3, 3), dict(padding=1)),
    ]  # grad_weight: N*G < 4
    for xs, ws, kw in cases:
        x, w = rng.standard_normal(xs), rng.standard_normal(ws)
        x4, w4, _, _, g = conv_module._conv_setup(
            x, w, None, kw.get("stride", 1), kw.get("padding", 0), 1, kw.get("groups", 1)
        )
        s = _routes.conv_shape(x4.shape, w4.shape, g)
        ran.clear()
        y = conv2d(x, w, **kw)
        conv2d_backward(np.ones_like(y), x, w, **kw)
        assert ran == [(p, choose_route(p, s)) for p in _routes.PASSES], (xs, ws, kw)
        seen.update(ran)
        ran.clear()
        conv2d(x, w, **kw, _route="gemm")
        assert ran == [("forward", "gemm")]
    assert choose_route("forward", s) == "direct" and choose_route("grad_weight", s) == "gemm"
    # these cases ran every kernel
    assert seen == {(p, r) for p, routes in _routes.PASS_ROUTES.items() for r in routes}


# ------------------------------------------------------ the input gradient's direct route


@pytest.mark.parametrize(
    "xs, ws, kw",
    [
        ((3, 6, 9, 8), (10, 6, 3, 3), dict(padding=1)),
        ((2, 8, 10, 9), (6, 4, 3, 2), dict(padding=(2, 1), dilation=(2, 1), groups=2)),
        ((2, 5, 7, 7), (4, 5, 4, 4), dict(padding="same")),  # even kernel: 1 top, 2 bottom
        ((1, 4, 6, 6), (3, 4, 5, 5), dict(padding=0)),
    ],
)
def test_grad_input_direct_route_against_the_oracle_threads_and_batch(xs, ws, kw, restore_threads):
    rng = np.random.default_rng(31)
    x, w = rng.standard_normal(xs), rng.standard_normal(ws)
    gy = rng.standard_normal(R.conv2d(x, w, None, **kw).shape)
    assert "direct" in routes_for(x, w, kw)["grad_input"]
    want = R.conv2d_grads(gy, x, w, **kw)[0]
    got = []
    for nt in (1, 2):
        convext.set_num_threads(nt)
        got.append(conv2d_backward(gy, x, w, **kw, needs_weight_grad=False, _route="direct")[0])
    np.testing.assert_allclose(got[0], want, rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(got[1], got[0])
    for n in range(xs[0]):  # an image's gradient is the one it gets alone
        alone = conv2d_backward(
            gy[n : n + 1], x[n : n + 1], w, **kw, needs_weight_grad=False, _route="direct"
        )
        np.testing.assert_array_equal(alone[0], got[0][n : n + 1])


def test_grad_input_direct_route_with_a_non_finite_weight_is_the_gemm_routes_gradient():
    """The rotated weight would meet the zeros around grad_out (inf * 0 = NaN): such a weight
    runs the GEMM route, which forms only the gradient's own products."""
    rng = np.random.default_rng(32)
    x, w = rng.standard_normal((2, 3, 6, 6)), rng.standard_normal((4, 3, 3, 3))
    w[1, 2, 0, 0], w[3, 0, 2, 1] = np.inf, np.nan
    gy = rng.standard_normal((2, 4, 6, 6))
    gy[:, :, 0] = 0.0
    kw = dict(padding=1, needs_weight_grad=False, needs_bias_grad=False)
    direct = conv2d_backward(gy, x, w, **kw, _route="direct")[0]
    gemm = conv2d_backward(gy, x, w, **kw, _route="gemm")[0]
    np.testing.assert_array_equal(direct, gemm)
    assert np.isfinite(gemm).any() and np.isnan(gemm).any()


def test_forward_direct_route_on_small_planes_only_with_few_taps_and_filters():
    """At most FWD_DIRECT_SMALL_PLANE output pixels: the direct forward up to
    FWD_DIRECT_SMALL_MAX_TAPS taps and FWD_DIRECT_SMALL_MAX_FG filters per group."""
    plane, taps, fg = (
        _routes.FWD_DIRECT_SMALL_PLANE,
        _routes.FWD_DIRECT_SMALL_MAX_TAPS,
        _routes.FWD_DIRECT_SMALL_MAX_FG,
    )
    assert plane == 64 and taps == 576
    # 5x5 without padding (no valid-taps route): 64 output pixels; 23 channels are 575 taps, 24
    # are 600 (within every ISA's own channel limit, FWD_DIRECT_MAX_CG)
    at_limit = dict(hw=(12, 12), k=(5, 5), pad=(0, 0), cg=taps // 25, fg=fg)
    assert taps // 25 + 1 <= _routes.FWD_DIRECT_MAX_CG
    assert choose_route("forward", shape(**at_limit)) == "direct"
    assert choose_route("forward", shape(**{**at_limit, "cg": taps // 25 + 1})) == "gemm"
    assert choose_route("forward", shape(**{**at_limit, "fg": fg + 1})) == "gemm"
    # one more output pixel per row: the plane rule no longer applies
    wider = dict(hw=(12, 13), cg=taps // 25 + 1, fg=fg + 1)
    assert choose_route("forward", shape(**{**at_limit, **wider})) == "direct"
    # 1x1: the taps are the channels alone (up to 192 or 256 of them, FWD_DIRECT_1X1_MAX_CG:
    # 4800 or 6400 taps with a 5x5 kernel)
    cg = min(256, _routes.FWD_DIRECT_1X1_MAX_CG)
    assert cg * 25 > taps
    one = dict(hw=(7, 7), cg=cg, fg=64, pad=(0, 0))
    assert choose_route("forward", shape(**one, k=(1, 1))) == "direct"
    assert choose_route("forward", shape(**{**one, "hw": (11, 11)}, k=(5, 5))) == "gemm"
    # the forward decides on the image alone: the batch never changes its route
    for n in (1, 16):
        assert choose_route("forward", shape(batch=n, hw=(7, 7), cg=256, fg=256, pad=(0, 0))) == (
            "gemm"
        )
