"""Memory safety and leaks (docs/reliability.md checks 4, 13, 14).

* Guard: every catalogued call runs on inputs that are views into larger NaN-filled buffers;
  nothing outside the views changes, and the result equals the result on fresh copies (an
  out-of-bounds read would pull a NaN in). conv2d also writes through ``out`` views into
  NaN-filled buffers, contiguous (the kernel writes there directly) and strided.
* Batch 0: every catalogued call accepts an empty batch.
* No leak: over 10,000 forward+backward passes of a small network (conv + relu + max pool +
  dense + cross-entropy), the counts of Python objects and of malloc'd bytes stay flat and the
  resident set does not grow in every quarter.
"""

import ctypes
import gc
import os
import resource
import sys

import numpy as np
import pytest
from test_reliability_catalog import CASES, assert_identical, case_id, flatten

import convext
from convext import functional as F
from convext import layers as L
from convext._kernels import _conv

PAD = 37  # guard elements on each side of a view


def _guarded(a, strided):
    """(view, buffer): ``a``'s values in a view into a NaN-filled buffer (NaN or -1 for ints)."""
    fill = np.nan if a.dtype.kind == "f" else -1
    if strided:  # every other element along the last axis, plus a margin before and after
        buf = np.full(2 * a.size + 2 * PAD, fill, a.dtype)
        view = buf[PAD : PAD + 2 * a.size : 2].reshape(a.shape)
    else:  # a C-contiguous block inside the buffer
        buf = np.full(a.size + 2 * PAD, fill, a.dtype)
        view = buf[PAD : PAD + a.size].reshape(a.shape)
    view[...] = a
    return view, buf


@pytest.mark.parametrize("strided", [False, True], ids=["block", "strided"])
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_guard_inputs_in_nan_buffers(case, strided):
    rng = np.random.default_rng(4)
    arrays = case.make(rng, np.float64 if strided else np.float32, 2)
    want = case.call(**{k: v.copy() if isinstance(v, np.ndarray) else v for k, v in arrays.items()})
    views, bufs = {}, {}
    for k, v in arrays.items():
        if isinstance(v, np.ndarray):
            views[k], bufs[k] = _guarded(v, strided)
        else:
            views[k] = v
    snapshot = {k: b.copy() for k, b in bufs.items()}
    got = case.call(**views)
    assert_identical(got, want, case_id(case))
    for k, b in bufs.items():
        np.testing.assert_array_equal(b, snapshot[k], err_msg=f"{case_id(case)}: {k} changed")


CONV_OUT_CASES = [
    ((2, 4, 9, 8), (6, 2, 3, 2), dict(stride=(2, 1), padding=(1, 2), groups=2)),
    ((3, 8, 30, 28), (16, 4, 3, 3), dict(padding=1, groups=2)),  # tiled / parallel path
    ((2, 3, 7, 6), (5, 3, 1, 1), {}),
    ((2, 4, 7, 6), (4, 1, 3, 3), dict(padding="same", groups=4, dilation=2)),
    ((0, 3, 7, 6), (5, 3, 3, 3), {}),
]


@pytest.mark.parametrize("xs, ws, kw", CONV_OUT_CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("strided", [False, True], ids=["block", "strided"])
def test_guard_conv2d_out_views(xs, ws, kw, dtype, strided):
    rng = np.random.default_rng(5)
    x = rng.standard_normal(xs).astype(dtype)
    w = rng.standard_normal(ws).astype(dtype)
    b = rng.standard_normal(ws[0]).astype(dtype)
    want = convext.conv2d(x, w, b, **kw)
    out, buf = _guarded(np.full(want.shape, np.nan, dtype), strided)
    if not strided:
        assert out.flags.c_contiguous  # the kernel writes straight into the caller's memory
    res = convext.conv2d(x, w, b, **kw, out=out)
    assert res is out
    assert_identical(np.array(out), want)
    outside = np.ones(buf.shape, bool)
    outside[PAD : PAD + (2 if strided else 1) * want.size : 2 if strided else 1] = False
    assert np.isnan(buf[outside]).all(), "conv2d wrote outside its out view"


@pytest.mark.parametrize("case", [c for c in CASES if c.batch0], ids=case_id)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_batch_zero_everywhere(case, dtype):
    rng = np.random.default_rng(6)
    arrays = case.make(rng, dtype, 0)
    results = flatten(case.call(**arrays))
    for r in results:
        if r is None or r.dtype.kind != "f":
            continue
        assert r.dtype == dtype, case_id(case)
        if r.ndim and r.size:  # parameter gradients of an empty batch are zero
            assert not np.any(r), f"{case_id(case)}: non-zero {r}"
        if r.ndim == 0 and "sum" in case.tags:
            assert r == 0


def test_batch_zero_gradients_of_every_pool_are_zero_shaped():
    x = np.zeros((0, 3, 8, 8))
    y, idx = F.max_pool2d(x, 3, 2, 1, return_indices=True)
    assert F.max_pool2d_backward(y, idx, x.shape).shape == x.shape
    assert (
        F.lp_pool2d_backward(np.zeros((0, 3, 4, 4)), x, np.zeros((0, 3, 4, 4)), 2, 2).shape
        == x.shape
    )


# --- no leak ---------------------------------------------------------------------------------


def _rss_bytes():
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        ru = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return ru if sys.platform == "darwin" else ru * 1024


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks "
        "keepcost".split()
    ]


def _malloc_in_use_function():
    """glibc's count of the bytes malloc has handed out and not had back (every arena, and the
    blocks it maps on their own), or None where there is no mallinfo2 (musl, macOS, glibc <
    2.33). numpy's array data and every buffer the kernels allocate come from malloc."""
    try:
        mallinfo2 = ctypes.CDLL(None).mallinfo2
    except (AttributeError, OSError):
        return None
    mallinfo2.restype = _MallInfo2

    def in_use():
        info = mallinfo2()
        return info.uordblks + info.hblkhd

    return in_use


ITERATIONS = int(os.environ.get("CONVEXT_LEAK_ITERATIONS", "10000"))


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc/self/statm")
@pytest.mark.skipif(
    "libasan" in os.environ.get("LD_PRELOAD", ""),
    reason="under AddressSanitizer freed memory sits in its quarantine, so RSS "
    "says nothing about leaks (the normal run and the debug build check it)",
)
def test_no_leak_over_10000_forward_backward_passes():
    rng = np.random.default_rng(7)
    model = L.Sequential(
        L.Conv2D(1, 4, 3, padding=1, rng=1),
        L.ReLU(),
        L.MaxPool2D(2),
        L.Flatten(),
        L.Dense(4 * 4 * 4, 3, rng=2),
    )
    x = rng.standard_normal((4, 1, 8, 8)).astype(np.float32)
    t = rng.integers(0, 3, 4)

    def step(i):
        out = model.forward(x)
        loss, grad = F.cross_entropy(out, t)
        model.backward(grad)
        # the functional kernels directly as well, incl. the conv out= path and avg/lp pools
        a = F.avg_pool2d(x, 3, 2, 1, ceil_mode=True, count_include_pad=False)
        F.avg_pool2d_backward(a, x.shape, 3, 2, 1, True, False)
        p = F.lp_pool2d(x, 2, 2)
        F.lp_pool2d_backward(p, x, p, 2, 2)
        return loss

    malloc_in_use = _malloc_in_use_function()
    convext.set_num_threads(1)  # memory is the point here; keep it fast on a busy machine
    try:
        samples = _run(step, model, malloc_in_use)
    finally:
        convext.set_num_threads(None)
    rss, blocks, heap = (list(column) for column in zip(*samples, strict=True))
    # A leak grows with the passes. Leaking one small array (>= 64 bytes of data and a 112-byte
    # object) per pass adds >= 640 kB of malloc'd bytes and 10,000 Python objects in 10,000.
    # These two counts are exact: they move only when something is allocated and kept.
    assert blocks[-1] - blocks[0] < 1000, f"Python objects kept: {blocks}"
    if malloc_in_use is not None:
        assert heap[-1] - heap[0] < 2**18, f"malloc'd bytes kept: {heap}"
    # The resident set also sees what neither count does (pages mapped by hand, thread stacks).
    # It moves in steps as the allocators keep or return freed memory, which depends on what
    # ran before in the process (a 3.6 MiB step in one quarter, flat before and after, was
    # seen after the parity tests). A leak grows it in every quarter of the passes.
    quarters = np.diff(rss)
    assert quarters.min() < 2**18, f"RSS grew in every quarter: {rss}"
    assert rss[-1] - rss[0] < 16 * 2**20, f"RSS grew by {(rss[-1] - rss[0]) / 2**20:.2f} MiB: {rss}"


def _run(step, model, malloc_in_use):
    """(RSS, Python's allocated blocks, malloc's bytes in use) after a warm-up, then after each
    quarter of the passes."""

    def sample():
        model.zero_grad()
        gc.collect()
        return _rss_bytes(), sys.getallocatedblocks(), malloc_in_use() if malloc_in_use else 0

    for i in range(500):  # warm-up: caches, allocator pools, first-use imports
        step(i)
    samples = [sample()]
    chunk = ITERATIONS // 4
    for _ in range(4):
        for i in range(chunk):
            step(i)
        samples.append(sample())
    return samples


def _x(shape=(1, 1, 6, 6)):
    return np.ones(shape, np.float32)


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: F.interpolate(_x(), size=(2**19, 2**19), mode="nearest"), "interpolate"),
        (lambda: F.interpolate(_x(), scale_factor=60000.0, mode="bilinear"), "interpolate"),
        (
            lambda: F.interpolate_backward(_x((1, 1, 1, 1)), (1, 1, 2**19, 2**19), size=(1, 1)),
            "interpolate_backward",
        ),
        (lambda: F.adaptive_avg_pool2d(_x(), (2**19, 2**19)), "adaptive_avg_pool2d"),
        (lambda: F.adaptive_max_pool2d(_x(), (2**19, 2**19)), "adaptive_max_pool2d"),
        (
            lambda: F.max_unpool2d(_x((1, 1, 1, 1)), np.zeros((1, 1, 1, 1), np.int64), 2**18),
            "max_unpool2d",
        ),
        (lambda: L.Pad([2**18] * 4)(_x()), "Pad"),
        (lambda: F.linear(_x((200000, 1)), _x((200000, 1))), "linear"),
    ],
)
def test_outputs_larger_than_the_machine_are_value_errors(call, name):
    """An output (or gradient) of more bytes than the machine has is refused before anything is
    allocated, naming the call (a MemoryError, or a machine brought to swap, otherwise)."""
    with pytest.raises(ValueError, match=rf"^{name}: .*bytes, more than this machine"):
        call()


# A 64x64 kernel over 4 channels on the GEMM route: each tile of unfolded input is 4*64*64 rows
# by at least 192 output pixels (12.6 MB in float32, at most 3 per thread); the machine is said
# to have 8 MiB, then 256 MiB.
_BIG_KERNEL = (4, 4, 64, 64)


def _unfolded_calls():
    x, w = _x((1, 4, 40, 40)), np.ones(_BIG_KERNEL, np.float32)
    gy = np.ones((1, 4, 41, 41), np.float32)
    xt, gyt = _x((1, 4, 16, 16)), np.ones((1, 4, 79, 79), np.float32)
    return [
        ("conv2d", lambda: F.conv2d(x, w, padding=32, _route="gemm")),
        # a 2x2 output plane: its tile is still packed 48 columns wide
        ("conv2d", lambda: F.conv2d(_x((1, 4, 1, 1)), w, stride=64, padding=64, _route="gemm")),
        (
            "conv2d_backward",
            lambda: F.conv2d_backward(gy, x, w, padding=32, needs_weight_grad=False, _route="gemm"),
        ),
        (
            "conv2d_backward",
            lambda: F.conv2d_backward(gy, x, w, padding=32, needs_input_grad=False, _route="gemm"),
        ),
        ("conv_transpose2d", lambda: F.conv_transpose2d(xt, w, _route="gemm")),
        (
            "conv_transpose2d_backward",
            lambda: F.conv_transpose2d_backward(gyt, xt, w, _route="gemm"),
        ),
    ]


@pytest.mark.parametrize("k", range(len(_unfolded_calls())))
def test_gemm_tiles_of_a_huge_kernel_larger_than_the_machine_are_value_errors(k, monkeypatch):
    """The GEMM route's per-thread tiles of unfolded input grow with the kernel's channels x
    taps (at least 192 output pixels each): beyond the machine's memory the call is refused
    before anything is allocated, naming the call and the weight; within it, the same call
    runs and gives the same result as without the check."""
    name, call = _unfolded_calls()[k]
    want = call()
    monkeypatch.setattr("convext._validation._physical_memory", lambda: 256 << 20)
    assert_identical(call(), want, name)
    monkeypatch.setattr("convext._validation._physical_memory", lambda: 8 << 20)
    with pytest.raises(
        ValueError,
        match=rf"^{name}: the GEMM route's tiles of unfolded input for weight of shape "
        rf"\(4, 4, 64, 64\) .*bytes, more than this machine",
    ):
        call()


def _broadcast(shape):
    """A 4-byte array standing for ``shape`` (stride 0 everywhere)."""
    return np.broadcast_to(np.float32(1), shape)


_HUGE = (1, 1, 2**20, 2**20)  # 4 TiB in float32


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: F.conv2d(_broadcast(_HUGE), _x((1, 1, 1, 1)), stride=2**20), "x"),
        (lambda: F.conv2d(_x((1, 1, 1, 1)), _broadcast((1, 1, 2**20, 2**20))), "weight"),
        (lambda: F.max_pool2d(_broadcast(_HUGE), 2**20), "x"),
        (lambda: F.avg_pool2d(_broadcast(_HUGE), 2**20), "x"),
        (lambda: F.global_avg_pool2d(_broadcast(_HUGE)), "x"),
        (lambda: F.relu(_broadcast(_HUGE)), "x"),
        (lambda: F.linear(_broadcast((2**19, 2**20)), _x((1, 2**20))), "x"),
        (lambda: F.mse_loss(_broadcast(_HUGE), _broadcast(_HUGE)), "input"),
    ],
)
def test_broadcast_inputs_whose_copy_exceeds_the_machine_are_value_errors(call, name):
    """A broadcast (stride 0) view of a few bytes can stand for terabytes; the contiguous copy
    the kernels read is checked first (numpy's MemoryError otherwise), naming the argument."""
    with pytest.raises(ValueError, match=rf"^{name}, copied to a contiguous array, .*bytes, more"):
        call()


@pytest.mark.parametrize("mode", ["nearest", "bilinear"])
def test_interpolation_tables_beyond_the_machine_are_value_errors(mode, monkeypatch):
    """interpolate's index and weight tables are per output row and column: on a plane one
    pixel wide they take ten times the output (a 2 GB output asked for 22 GB). They are
    checked with the output, before anything is allocated."""
    x = _x((1, 1, 1, 1))
    rows = 1 << 16
    y = F.interpolate(x, size=(rows, 1), mode=mode)  # 256 kB out, 3 MB of tables
    monkeypatch.setattr("convext._validation._physical_memory", lambda: 2 * rows * 4)
    with pytest.raises(ValueError, match=r"^interpolate: the index and weight tables, .* more"):
        F.interpolate(x, size=(rows, 1), mode=mode)
    with pytest.raises(ValueError, match=r"^interpolate_backward: the index and weight tables"):
        F.interpolate_backward(y, x.shape, size=(rows, 1), mode=mode)


def test_gemm_tiles_count_the_images_put_side_by_side(monkeypatch):
    """On a small plane the GEMM route puts several images side by side in one tile: 16
    images of a 2x2 output make tiles of 64 columns (96 once packed), not one image's 4 (48
    packed). On one thread the tiles take 3 * 16384 rows * 96 columns * 4 bytes = 18.9 MB; a
    machine said to have 12 MiB refuses them (counting one image's columns, 9.4 MB, it did
    not), one of 256 MiB runs them."""
    x, w = _x((16, 4, 1, 1)), np.ones(_BIG_KERNEL, np.float32)
    old = convext.get_num_threads()
    convext.set_num_threads(1)
    try:
        want = F.conv2d(x, w, stride=64, padding=64, _route="gemm")
        monkeypatch.setattr("convext._validation._physical_memory", lambda: 256 << 20)
        assert_identical(F.conv2d(x, w, stride=64, padding=64, _route="gemm"), want, "conv2d")
        monkeypatch.setattr("convext._validation._physical_memory", lambda: 12 << 20)
        with pytest.raises(ValueError, match=r"\(3, 16384, 96\) asks for 18874368 bytes"):
            F.conv2d(x, w, stride=64, padding=64, _route="gemm")
    finally:
        convext.set_num_threads(old)


def test_gemm_tiles_that_fit_one_thread_run_on_fewer_threads(monkeypatch):
    """Each thread of the GEMM route unfolds its own tiles, 3 of them at most: one image of a
    2x2 output plane has tiles of 16384 rows x 48 columns, 3 x 3 MiB per thread (64 filters:
    enough multiply-adds for every thread). On a machine said to have 20 MiB, 8 threads' 72
    MiB do not fit but 2 threads' do: the call runs on 2 (spied: the kernel is given 2) and
    gives one thread's bits, instead of a refusal that one thread would not meet. Below one
    thread's 9 MiB it is refused on any thread count."""
    x, w = _x((1, 4, 1, 1)), _x((64,) + _BIG_KERNEL[1:])
    old = convext.get_num_threads()
    calls = []
    real = _conv.conv2d_forward_gemm

    def spy(*args):
        calls.append(args[-1])
        return real(*args)

    try:
        convext.set_num_threads(1)
        want = F.conv2d(x, w, stride=64, padding=64, _route="gemm")
        monkeypatch.setattr("convext._validation._physical_memory", lambda: 20 << 20)
        monkeypatch.setattr(_conv, "conv2d_forward_gemm", spy)
        convext.set_num_threads(8)
        assert_identical(F.conv2d(x, w, stride=64, padding=64, _route="gemm"), want, "conv2d")
        assert calls == [2]
        monkeypatch.setattr("convext._validation._physical_memory", lambda: 8 << 20)
        for threads in (1, 8):
            convext.set_num_threads(threads)
            with pytest.raises(ValueError, match=r"\(3, 16384, 48\) asks for 9437184 bytes"):
                F.conv2d(x, w, stride=64, padding=64, _route="gemm")
    finally:
        convext.set_num_threads(old)


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: F.adaptive_avg_pool2d(_x((1, 1, 1, 1)), (2**38, 0)), "adaptive_avg_pool2d"),
        (lambda: F.adaptive_max_pool2d(_x((1, 1, 1, 1)), (2**38, 0)), "adaptive_max_pool2d"),
        (
            lambda: F.adaptive_avg_pool2d_backward(
                np.ones((1, 1, 2**38, 0), np.float32), (1, 1, 1, 1)
            ),
            "adaptive_avg_pool2d_backward",
        ),
    ],
)
def test_adaptive_pooling_tables_beyond_the_machine_are_value_errors(call, name):
    """An empty output of 2**38 rows is legal and takes no bytes, but the pools' window tables
    are per output row: numpy's MemoryError for terabytes, before; now the tables' check."""
    with pytest.raises(ValueError, match=rf"^{name}: the index and weight tables, .* more"):
        call()


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: L.Transpose([0, 1, 3, 2])(_broadcast(_HUGE)), "^Transpose: the output"),
        (lambda: L.Cat(1)(_broadcast(_HUGE), _broadcast(_HUGE)), "^Cat: the joined output"),
        (lambda: L.Reshape([1, -1])(_broadcast(_HUGE)), "^Reshape: the copy of its input"),
    ],
)
def test_graph_ops_copying_a_broadcast_input_check_the_copy(call, match):
    """The graph layers an ONNX import emits copy their input where it is not contiguous (a
    permutation, a join, a reshape of a broadcast view): checked first, not numpy's
    MemoryError for 4 TiB."""
    with pytest.raises(ValueError, match=match + r".* (elements|bytes), more"):
        call()
