"""Prepared forward calls (_conv.prepare_forward -> ForwardCall), as convext.inference's steps
run them: the route's kernel, work split, thread count, tables and packed weight decided once,
then run on new data again and again.

A prepared call must give the same bits as the one-shot conv2d_forward_<route> with the same
arguments (it runs the same kernel on the same split), on its own scratch per call or on a
buffer given once (use_scratch) that holds garbage from before; the naive loops of
tests/reference.py are the oracle for the values (float64: 1e-10, float32: 1e-5 of the largest
output). Shapes reach every kernel a route has: the depthwise stride-2 and stride-1 rows,
channel blocks, row rings and per-plane bands; the GEMM with shared B (batch 1 on two threads),
images side by side through the gather table, and the 1x1 read in place; the direct and
valid-taps routes."""

import pickle
import threading

import numpy as np
import pytest

import reference as ref
from convext._kernels import _conv, _isa
from convext.inference import ACT_HARDSWISH, ACT_HARDTANH, ACT_NONE, ACT_RELU, ACT_RELU6

LANE_ROWS = _isa.active_info()["dw_lane_rows"]

# (route, N, C, H, W, F, k, stride, pad, groups, the depthwise kernel or None)
CASES = [
    ("depthwise", 1, 8, 100, 100, 8, 3, 2, 1, 8, "s2_rows"),
    ("depthwise", 2, 6, 20, 60, 6, 3, 1, 1, 6, "s1_rows"),
    ("depthwise", 2, 20, 14, 14, 20, 3, 1, 0, 20, "blocks"),
    ("depthwise", 2, 20, 14, 14, 20, 3, 1, 1, 20, "s1_flat" if LANE_ROWS else "blocks"),
    ("depthwise", 1, 24, 120, 20, 24, 3, 2, 1, 24, "rings"),  # 10 wide: rings on every table
    ("depthwise", 2, 4, 30, 70, 8, 5, 1, 2, 4, "planes"),
    ("gemm", 1, 64, 14, 14, 128, 3, 1, 1, 1, None),
    ("gemm", 5, 40, 7, 7, 24, 3, 1, 1, 1, None),
    ("gemm", 2, 30, 9, 11, 50, 1, 1, 0, 1, None),
    ("gemm", 3, 12, 20, 20, 30, 3, 2, 1, 3, None),
    ("direct", 2, 16, 23, 23, 24, 3, 1, 1, 1, None),
    ("direct", 1, 3, 40, 40, 16, 7, 2, 3, 1, None),
    ("valid_taps", 2, 32, 14, 14, 40, 3, 1, 1, 1, None),
]


def _arrays(case, dtype, seed):
    route, N, C, H, W, F, k, s, p, G, _ = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    w = (rng.standard_normal((F, C // G, k, k)) / np.sqrt(C // G * k * k)).astype(dtype)
    b = rng.standard_normal(F).astype(dtype)
    OH, OW = (H + 2 * p - k) // s + 1, (W + 2 * p - k) // s + 1
    return x, w, b, (N, F, OH, OW)


def _geometry(case, n_threads):
    _, _, _, _, _, _, _, s, p, G, _ = case
    return (s, s, p, p, 1, 1, G, n_threads)


def _one_shot(case, x, w, b, y_shape, n_threads, residual, act):
    y = np.full(y_shape, np.nan, x.dtype)
    kernel = getattr(_conv, f"conv2d_forward_{case[0]}")
    kernel(x, w, b, y, *_geometry(case, n_threads), residual, act, 0.0, 0.0)
    return y


def _oracle(case, x, w, b, residual, act):
    _, _, _, _, _, _, _, s, p, G, _ = case
    v = ref.conv2d(x, w, b.astype(np.float64), s, p, 1, G)
    if residual is not None:
        v = v + residual
    if act == ACT_RELU6:
        v = np.clip(v, 0, 6)
    elif act == ACT_HARDSWISH:
        v = v * np.clip(v + 3, 0, 6) / 6
    return v


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}-{c[1:10]}")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("residual", [False, True])
def test_prepared_call_is_the_kernel_bit_for_bit(case, dtype, n_threads, residual):
    x, w, b, y_shape = _arrays(case, dtype, 0)
    if case[10] is not None:  # the depthwise kernel this shape is meant to reach
        s, _, p, _, _, _, G, _ = _geometry(case, n_threads)
        kind = _conv.depthwise_forward_kernel(
            x.shape, w.shape, y_shape, G, s, s, p, p, 1, 1, x.itemsize, residual
        )
        # (the rows take no residual: the rule runs the next kernel then)
        assert kind == case[10] or (residual and case[10] in ("s2_rows", "s1_rows", "s1_flat"))
    act = ACT_HARDSWISH if residual else ACT_RELU6
    call = _conv.prepare_forward(
        case[0], x.shape, w, b, y_shape, *_geometry(case, n_threads), residual, act, 0.0, 0.0
    )
    assert 1 <= call.n_threads <= n_threads
    garbage = np.full(call.scratch_bytes + 64, 0xFF, np.uint8)
    for seed in (1, 2, 3):
        if seed == 2:  # from here on, a buffer given once (and NaN bytes left in it)
            call.use_scratch(garbage[64:])
        x = np.random.default_rng(seed).standard_normal(x.shape).astype(dtype)
        r = np.random.default_rng(seed + 10).standard_normal(y_shape).astype(dtype)
        r = r if residual else None
        y = np.full(y_shape, np.nan, dtype)
        call(x, y, r)
        want = _one_shot(case, x, w, b, y_shape, n_threads, r, act)
        np.testing.assert_array_equal(y.view(np.uint8), want.view(np.uint8))
        exact = _oracle(case, x, w, b, r, act)
        tol = (1e-10 if dtype == np.float64 else 1e-5) * max(1.0, np.abs(exact).max())
        assert np.abs(y - exact).max() <= tol


def _prepared(residual=False, dtype=np.float32):
    case = CASES[1]
    x, w, b, y_shape = _arrays(case, dtype, 0)
    call = _conv.prepare_forward(
        "depthwise", x.shape, w, b, y_shape, *_geometry(case, 2), residual, ACT_RELU6
    )
    return call, x, y_shape


@pytest.mark.parametrize(
    "bad, error, match",
    [
        (lambda x, y, r: (x.tolist(), y, r), TypeError, "x: expected a numpy array"),
        (lambda x, y, r: (x.astype(np.float64), y, r), TypeError, "x: expected float32"),
        (lambda x, y, r: (x.astype(">f4"), y, r), TypeError, "x: expected float32"),
        (lambda x, y, r: (x[:1], y, r), ValueError, "x: expected shape"),
        (lambda x, y, r: (x[None], y, r), ValueError, "x: expected shape"),
        (lambda x, y, r: (np.asfortranarray(x), y, r), ValueError, "x: expected a C-contig"),
        (lambda x, y, r: (x, y[:, :, :, ::-1], r), ValueError, "y: expected a C-contig"),
        (lambda x, y, r: (x, _readonly(y), r), ValueError, "y: expected a C-contig.*writeable"),
        (lambda x, y, r: (x, y, r.astype(np.float64)), TypeError, "residual: expected float32"),
        (lambda x, y, r: (x, y, None), TypeError, "residual: this call was prepared with one"),
        (lambda x, y, r: (x, y, y), ValueError, "y: overlaps residual"),
    ],
)
def test_prepared_call_rejects_bad_arrays_before_writing(bad, error, match):
    call, x, y_shape = _prepared(residual=True)
    y = np.full(y_shape, 7.0, np.float32)
    r = np.zeros(y_shape, np.float32)
    args = bad(x, y, r)
    with pytest.raises(error, match=match):
        call(*args)
    assert (y == 7.0).all()


def _readonly(a):
    a = a.view()
    a.flags.writeable = False
    return a


def test_prepared_call_rejects_an_output_over_its_input():
    """x and y of the same shape in one buffer (a 1x1 convolution of as many filters)."""
    x = np.random.default_rng(4).standard_normal((1, 6, 5, 5)).astype(np.float32)
    w = np.random.default_rng(5).standard_normal((6, 6, 1, 1)).astype(np.float32)
    call = _conv.prepare_forward("gemm", x.shape, w, None, x.shape, 1, 1, 0, 0, 1, 1, 1, 1)
    keep = x.copy()
    with pytest.raises(ValueError, match="y: overlaps x"):
        call(x, x)
    np.testing.assert_array_equal(x, keep)
    with pytest.raises(TypeError, match="this call was prepared without one"):
        call(x, np.empty_like(x), np.zeros_like(x))


def test_use_scratch_checks_its_buffer():
    call, x, y_shape = _prepared()
    with pytest.raises(ValueError, match="buf: expected at least"):
        call.use_scratch(np.empty(call.scratch_bytes - 1, np.uint8))
    with pytest.raises(TypeError, match="buf: expected a writeable, contiguous uint8"):
        call.use_scratch(np.empty(call.scratch_bytes, np.float32))
    with pytest.raises(TypeError, match="buf: expected a writeable, contiguous uint8"):
        call.use_scratch(_readonly(np.empty(call.scratch_bytes, np.uint8)))


def test_prepare_forward_checks_route_and_shapes():
    x, w, b, y_shape = _arrays(CASES[1], np.float32, 0)
    with pytest.raises(ValueError, match="route: expected one of"):
        _conv.prepare_forward("fft", x.shape, w, b, y_shape, *_geometry(CASES[1], 1))
    with pytest.raises(ValueError, match="x_shape, y_shape: expected 4 dimensions"):
        _conv.prepare_forward("depthwise", x.shape[1:], w, b, y_shape, *_geometry(CASES[1], 1))


@pytest.mark.parametrize("case", [CASES[0], CASES[3], CASES[4]], ids=lambda c: c[0])
def test_calls_on_their_own_scratch_may_overlap(case):
    """Without use_scratch, each run writes only y and a buffer of its own (the per-plane
    kernels' tap pointers too): Python threads running one call at the same time (the kernel
    releases the GIL) each get their own input's bits."""
    x, w, b, y_shape = _arrays(case, np.float32, 0)
    call = _conv.prepare_forward(case[0], x.shape, w, b, y_shape, *_geometry(case, 1))
    xs = [np.random.default_rng(s).standard_normal(x.shape).astype(np.float32) for s in range(4)]
    want = [_one_shot(case, xi, w, b, y_shape, 1, None, 0) for xi in xs]
    bad = []

    def run(i):
        y = np.empty(y_shape, np.float32)
        for _ in range(30):
            call(xs[i], y)
            if not np.array_equal(y.view(np.uint8), want[i].view(np.uint8)):
                bad.append(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert bad == []


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize(
    "residual, act, a0, a1",
    [
        (True, ACT_RELU, 0, 0),
        (True, ACT_RELU6, 0, 0),
        (False, ACT_HARDTANH, -0.5, 0.25),
        (True, ACT_NONE, 0, 0),
        (True, ACT_HARDSWISH, 0, 0),
    ],
)
def test_the_valid_taps_epilogue_is_the_add_then_the_clamp(dtype, n_threads, residual, act, a0, a1):
    """The valid-taps kernel's epilogue (the residual and a clamp applied to its output rows as
    they leave its sums; any other activation after it) is, element for element, the sums
    without it, plus the residual, then the clamp v = lo if v < lo else v, hi if v > hi else v
    (ReLU: [0, inf], ReLU6: [0, 6], Hardtanh: [a0, a1]) or the activation, written here in
    numpy on the plain sums; NaN, -0.0 and both sides of the bounds in the residual. Two images
    and 70 filters: a block of 64 and one of 6."""
    rng = np.random.default_rng(41)
    x = rng.standard_normal((2, 24, 9, 11)).astype(dtype)
    w = (rng.standard_normal((70, 24, 3, 3)) / 15).astype(dtype)
    b = rng.standard_normal(70).astype(dtype)
    r = (rng.standard_normal((2, 70, 9, 11)) * 4).astype(dtype) if residual else None
    if residual:
        r.reshape(-1)[::17] = np.nan
        r.reshape(-1)[5::23] = -0.0
    geom = (1, 1, 1, 1, 1, 1, 1, n_threads)
    plain = np.full(r.shape if residual else (2, 70, 9, 11), np.nan, dtype)
    _conv.conv2d_forward_valid_taps(x, w, b, plain, *geom, None, ACT_NONE, 0.0, 0.0)
    call = _conv.prepare_forward(
        "valid_taps", x.shape, w, b, plain.shape, *geom, residual, act, a0, a1
    )
    y = np.full_like(plain, np.nan)
    call(x, y, r)
    v = plain + r if residual else plain
    if act in (ACT_RELU, ACT_RELU6, ACT_HARDTANH):
        lo, hi = {ACT_RELU: (0, np.inf), ACT_RELU6: (0, 6)}.get(act, (a0, a1))
        lo, hi = dtype(lo), dtype(hi)
        t = np.where(v < lo, lo, v)
        want = np.where(t > hi, hi, t)
    elif act == ACT_HARDSWISH:  # after the kernel: the separate pass's arithmetic on y + r
        want = plain.copy()
        _conv.conv2d_epilogue(want, r, ACT_HARDSWISH, 0.0, 0.0, 1)
        np.testing.assert_allclose(want, v * np.clip(v + 3, 0, 6) / 6, rtol=1e-6, atol=1e-6)
    else:
        want = v
    np.testing.assert_array_equal(y.view(np.uint8), want.astype(dtype).view(np.uint8))


def _network(dtype, n_threads, scratch=True):
    """Four prepared calls of a small network on one 1x16x20x20 image, each reading the one
    before it (random weights and biases): a depthwise 3x3 with ReLU6, a GEMM 1x1 to 24
    filters, a direct 3x3 back to 16 with the first output as its residual and Hardswish,
    valid taps 3x3 to 64 filters; and the arrays they read and write. scratch: every call on
    one buffer of NaN bytes (as convext.inference runs them)."""
    rng = np.random.default_rng(21)
    shapes = [(16, 16, 3, 16), (24, 16, 1, 1), (16, 24, 3, 1), (64, 16, 3, 1)]
    routes = ["depthwise", "gemm", "direct", "valid_taps"]
    x = rng.standard_normal((1, 16, 20, 20)).astype(dtype)
    vals, calls, steps = [x], [], []
    for i, ((F, C, k, G), route) in enumerate(zip(shapes, routes, strict=True)):
        w = (rng.standard_normal((F, C // G, k, k)) / np.sqrt(C // G * k * k)).astype(dtype)
        b = rng.standard_normal(F).astype(dtype)
        y = np.full((1, F, 20, 20), np.nan, dtype)
        residual = i == 2
        act = ACT_HARDSWISH if residual else ACT_RELU6
        p = k // 2
        call = _conv.prepare_forward(
            route, vals[-1].shape, w, b, y.shape, 1, 1, p, p, 1, 1, G, n_threads, residual, act
        )
        calls.append(call)
        steps.append((route, vals[-1], w, b, y, (1, 1, p, p, 1, 1, G, n_threads), act))
        vals.append(y)
    if scratch:
        buf = np.full(max(c.scratch_bytes for c in calls), 0xFF, np.uint8)
        for c in calls:
            c.use_scratch(buf)
    xs, ys = vals[:-1], vals[1:]
    rs = [None, None, vals[1], None]
    return calls, xs, ys, rs, steps


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_threads", [1, 2])
def test_a_chain_runs_its_calls_in_order_bit_for_bit(dtype, n_threads):
    """ForwardChain.run() is each call on its arrays in order (a later call reading what an
    earlier one wrote), the same bits as the one-shot kernels; run again on new input data
    written into the first array, it computes from that data."""
    calls, xs, ys, rs, steps = _network(dtype, n_threads)
    chain = _conv.ForwardChain(calls, xs, ys, rs)
    assert len(chain) == 4
    for seed in (1, 2):
        xs[0][...] = np.random.default_rng(seed).standard_normal(xs[0].shape)
        for y in ys:
            y[...] = np.nan
        chain.run()
        for (route, x, w, b, y, geom, act), r in zip(steps, rs, strict=True):
            want = np.full(y.shape, np.nan, dtype)
            getattr(_conv, f"conv2d_forward_{route}")(x, w, b, want, *geom, r, act, 0.0, 0.0)
            np.testing.assert_array_equal(y.view(np.uint8), want.view(np.uint8))
            assert np.isfinite(y).all()


def test_a_chain_checks_its_calls_and_arrays():
    """Each call and array is checked when the chain is made, as a call checks them, and named
    by its index; a call without a scratch buffer of its own is refused; nothing runs."""
    calls, xs, ys, rs, _ = _network(np.float32, 1)
    keep = [y.copy() for y in ys]
    bad = [
        ((calls[:3], xs, ys, rs), ValueError, "expected lists of one length"),
        (([], [], [], []), ValueError, "expected lists of one length"),
        ((calls[:1] + [None] + calls[2:], xs, ys, rs), TypeError, r"calls\[1\]: expected a Fo"),
        ((calls, xs[:1] + [xs[1].tolist()] + xs[2:], ys, rs), TypeError, r"xs\[1\]: expected a n"),
        ((calls, xs, ys[:3] + [ys[3][:, :, ::-1]], rs), ValueError, r"ys\[3\]: expected a C-c"),
        ((calls, xs, ys, rs[:2] + [None, None]), TypeError, r"residuals\[2\]: this call was pr"),
        ((calls, xs, ys, rs[:1] + [ys[1]] + rs[2:]), TypeError, r"residuals\[1\]: this call was"),
        ((calls, xs, ys[:2] + [rs[2]] + ys[3:], rs), ValueError, r"ys\[2\]: overlaps residuals"),
        ((calls, xs, [xs[0]] + ys[1:], rs), ValueError, r"ys\[0\]: overlaps xs\[0\]"),
        ((calls, xs[:2] + [xs[2].astype(np.float64)] + xs[3:], ys, rs), TypeError, r"xs\[2\]: ex"),
    ]
    for args, error, match in bad:
        with pytest.raises(error, match=match):
            _conv.ForwardChain(*args)
    no_scratch, *_ = _network(np.float32, 1, scratch=False)
    with pytest.raises(ValueError, match=r"calls\[0\]: has no scratch buffer"):
        _conv.ForwardChain(no_scratch, xs, ys, rs)
    chain = _conv.ForwardChain(calls, xs, ys, rs)
    with pytest.raises(TypeError, match="already made"):
        chain.__init__(calls, xs, ys, rs)
    with pytest.raises(TypeError):
        _conv.ForwardChain(calls, tuple(xs), ys, rs)
    with pytest.raises(TypeError):  # it points into its arrays: no copy of it by pickling
        pickle.dumps(chain)
    for y, k in zip(ys, keep, strict=True):
        np.testing.assert_array_equal(y, k)
