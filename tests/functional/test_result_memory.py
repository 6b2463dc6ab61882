"""The kept memory of large results (convext._recycle): a block is handed out again only when
nothing but the pool refers to it, the pool never holds more than its limit, and results
computed in reused memory are the same as in fresh memory. The size threshold is lowered here
(monkeypatch) so that small arrays exercise it."""

import concurrent.futures
import gc
import os
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest
import torch

import convext
import convext.functional as F
from convext import _recycle

needs_pool = pytest.mark.skipif(not _recycle.ENABLED, reason="the pool is off (free-threaded)")


def _test_pool(monkeypatch, most_bytes):
    """Blocks from 4 KiB, at most most_bytes, an empty pool before and after."""
    convext.release_cached_memory()
    monkeypatch.setattr(_recycle, "MIN_BYTES", 4096)
    monkeypatch.setattr(_recycle, "MOST_BYTES", most_bytes)
    yield
    gc.collect()
    convext.release_cached_memory()


@pytest.fixture
def small_pool(monkeypatch):
    """Blocks from 4 KiB, at most 1 MiB, an empty pool before and after."""
    yield from _test_pool(monkeypatch, 1 << 20)


def _address(a):
    return a.__array_interface__["data"][0]


def test_the_default_threshold_and_limit():
    assert _recycle.MIN_BYTES == 32 << 20  # glibc's largest mmap threshold
    assert 0 < _recycle.limit() <= 512 << 20


def test_small_results_are_plain_arrays(small_pool):
    a = _recycle.empty((10, 10), np.float32)
    assert a.flags.owndata and a.shape == (10, 10) and a.dtype == np.float32
    assert _recycle.held_bytes() == 0


@needs_pool
def test_a_dropped_result_memory_is_handed_out_again(small_pool):
    a = _recycle.empty((4, 64, 64), np.float32)
    assert a.shape == (4, 64, 64) and a.dtype == np.float32 and a.flags.c_contiguous
    assert _address(a) % 64 == 0
    first = _address(a)
    del a
    b = _recycle.empty((64, 4, 64), np.float32)  # same bytes, another shape
    assert _address(b) == first
    del b
    c = _recycle.empty((4, 64, 32), np.float64)  # same bytes, another dtype
    assert _address(c) == first and c.dtype == np.float64
    d = _recycle.empty((4, 64, 64), np.float32)  # c is alive: a new block
    assert _address(d) != first
    assert _recycle.held_bytes() == 2 * (4 * 64 * 64 * 4 + 64)


def _from_base(base):
    """The float32 data of a result, read through the block it is a view of."""
    start = -base.ctypes.data % 64
    return base[start : start + 4 * 64 * 64 * 4].view(np.float32)


# what keeps a result's memory alive, and how to read the result's values back through it
HOLDERS = {
    "the array": (lambda a: a, np.asarray),
    "a view": (lambda a: a[1:, ::2], np.asarray),
    "a reshaped view": (lambda a: a.reshape(-1), np.asarray),
    "its base": (lambda a: a.base, _from_base),
    "a memoryview": (memoryview, np.asarray),
    "np.frombuffer": (
        lambda a: np.frombuffer(memoryview(a).cast("B"), np.uint8),
        lambda k: k.view(np.float32),
    ),
    "a torch tensor": (torch.from_numpy, lambda k: k.numpy()),
    "a list": (lambda a: [a], lambda k: k[0]),
}


@needs_pool
@pytest.mark.parametrize("holder", HOLDERS)
def test_memory_still_referenced_is_never_handed_out(small_pool, holder):
    keep, read = HOLDERS[holder]
    a = _recycle.empty((4, 64, 64), np.float32)
    a[...] = 7.0
    kept = keep(a)
    del a
    b = _recycle.empty((4, 64, 64), np.float32)
    b[...] = -1.0
    held = read(kept)
    assert not np.shares_memory(held, b)
    assert held.size and np.all(held == 7.0)


@needs_pool
def test_the_pool_never_holds_more_than_its_limit(small_pool):
    live = [_recycle.empty((i, 1024), np.float64) for i in range(8, 40)]  # 64-312 KiB each
    assert _recycle.held_bytes() <= _recycle.limit() == 1 << 20
    for i, a in enumerate(live):  # those past the limit are plain arrays, all usable
        a[...] = i
    for i, a in enumerate(live):
        assert np.all(a == i)
    assert not any(np.shares_memory(a, b) for k, a in enumerate(live) for b in live[k + 1 :])


def _kept_sizes():
    return [b.nbytes for b in _recycle._blocks]


@needs_pool
def test_idle_blocks_make_room_least_recently_used_first(small_pool):
    sizes = [(40, 1024), (41, 1024), (42, 1024)]  # ~320 KiB each: three fit under 1 MiB
    nbytes = [r * 1024 * 8 + 64 for r, _ in sizes]
    addresses = []
    for shape in sizes:
        a = _recycle.empty(shape, np.float64)
        addresses.append(_address(a))
        del a
    a = _recycle.empty(sizes[0], np.float64)  # reused: now the most recently used
    assert _address(a) == addresses[0]
    del a
    assert _kept_sizes() == [nbytes[1], nbytes[2], nbytes[0]]
    b = _recycle.empty((43, 1024), np.float64)  # needs room: sizes[1]'s block goes, only it
    assert _kept_sizes() == [nbytes[2], nbytes[0], 43 * 1024 * 8 + 64]
    c = _recycle.empty(sizes[0], np.float64)
    assert _address(c) == addresses[0]
    del b, c
    held = _recycle.held_bytes()
    assert held <= 1 << 20
    assert convext.release_cached_memory() == held
    assert _recycle.held_bytes() == 0


@needs_pool
def test_a_result_over_the_limit_is_plain_and_drops_nothing(small_pool):
    a = _recycle.empty((40, 1024), np.float64)
    del a
    before = _kept_sizes()
    big = _recycle.empty((200, 1024), np.float64)  # 1.6 MiB > the 1 MiB limit
    assert _kept_sizes() == before
    big[...] = 5.0
    assert big.shape == (200, 1024) and np.all(big == 5.0)


@needs_pool
def test_when_memory_runs_out_the_idle_blocks_go_first(small_pool, monkeypatch):
    a = _recycle.empty((40, 1024), np.float64)
    del a
    real, calls = _recycle._new_block, []

    def short_of_memory(size):  # fails while any idle block is kept
        calls.append(_recycle.held_bytes())
        if calls[-1]:
            raise MemoryError("out of memory")
        return real(size)

    monkeypatch.setattr(_recycle, "_new_block", short_of_memory)
    b = _recycle.empty((41, 1024), np.float64)
    assert calls == [40 * 1024 * 8 + 64, 0]
    b[...] = 2.0
    assert np.all(b == 2.0)
    assert _kept_sizes() == [41 * 1024 * 8 + 64]


@needs_pool
def test_the_pool_called_from_inside_itself_neither_waits_nor_reorders(small_pool, monkeypatch):
    """A finalizer the garbage collector runs inside the pool's locked code (here called by a
    wrapped _take) gets a plain array and frees nothing, instead of waiting for its own
    thread forever."""
    real_take, inner = _recycle._take, []

    def take_with_a_finalizer(size):
        inner.append(_recycle.empty((30, 1024), np.float64))
        inner.append(convext.release_cached_memory())
        return real_take(size)

    monkeypatch.setattr(_recycle, "_take", take_with_a_finalizer)
    out = []
    t = threading.Thread(target=lambda: out.append(_recycle.empty((40, 1024), np.float64)))
    t.start()
    t.join(timeout=30)
    assert not t.is_alive(), "the pool waited for itself"
    assert inner[0].flags.owndata and inner[1] == 0
    assert out[0].shape == (40, 1024) and not out[0].flags.owndata


@needs_pool
def test_release_frees_only_what_no_result_uses(small_pool):
    a = _recycle.empty((4, 64, 64), np.float32)
    b = _recycle.empty((8, 64, 64), np.float32)
    del b
    assert convext.release_cached_memory() == 8 * 64 * 64 * 4 + 64
    assert _recycle.held_bytes() == a.nbytes + 64
    a[...] = 1.0
    assert np.all(a == 1.0)
    del a
    assert convext.release_cached_memory() == 4 * 64 * 64 * 4 + 64
    assert convext.release_cached_memory() == 0


def test_release_cached_memory_is_public():
    assert convext.release_cached_memory is _recycle.release_cached_memory
    assert isinstance(convext.release_cached_memory(), int)


@needs_pool
def test_threads_never_share_a_live_block(small_pool):
    """Six threads each keep three results alive while the others allocate (sleep(0) hands the
    GIL over between allocating, filling and checking), and drop them in turn, so blocks move
    from thread to thread: a block handed out while alive would show another value."""

    def work(k):
        live, moved = [], 0
        for i in range(300):
            a = _recycle.empty((16, 64 + (i % 3)), np.float64)
            time.sleep(0)
            a[...] = k * 1000 + i
            live.append((i, a))
            time.sleep(0)
            for j, b in live:
                if not np.all(b == k * 1000 + j):
                    return f"thread {k}: result {j} was overwritten"
            if len(live) > 3:
                live.pop(0)
            moved += a.base.ctypes.data in seen
            seen.add(a.base.ctypes.data)
        return moved

    seen: set = set()
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        results = list(pool.map(work, range(6)))
    assert all(isinstance(r, int) for r in results), results
    assert sum(results) > 0  # blocks were handed out again
    assert _recycle.held_bytes() <= _recycle.limit()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no os.fork on this platform")
def test_a_child_forked_while_the_pool_is_locked_can_allocate():
    code = textwrap.dedent(
        """
        import os, numpy as np
        from convext import _recycle
        _recycle.MIN_BYTES = 4096
        with _recycle._lock:
            pid = os.fork()
            if pid == 0:
                a = _recycle.empty((64, 64), np.float64)
                a[...] = 3.0
                os._exit(0 if np.all(a == 3.0) else 1)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0, status
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


def _poison_idle_blocks():
    """Fill every idle block with NaN, so that an element a kernel does not write shows."""
    for i in range(len(_recycle._blocks)):
        if _recycle._idle(i):
            _recycle._blocks[i][...] = 0xFF  # all-ones bytes: a NaN in float32 and float64


def _in_reused_memory(fn, *args, pooled=None, **kwargs):
    """fn's results computed in reused memory: fn called once and its results dropped (their
    blocks then idle), every idle block of the pool filled with NaN (-1 in int64), then fn
    called again; asserts that each result of that call (those at the positions in ``pooled``,
    default all) is a view of a block that was idle."""
    fn(*args, **kwargs)
    _poison_idle_blocks()
    blocks = _recycle._blocks
    idle = [
        (blocks[i].ctypes.data, blocks[i].nbytes) for i in range(len(blocks)) if _recycle._idle(i)
    ]
    out = fn(*args, **kwargs)
    results = out if isinstance(out, tuple) else (out,)
    for k in range(len(results)) if pooled is None else pooled:
        at = results[k].ctypes.data
        assert not _recycle.ENABLED or any(a <= at < a + n for a, n in idle), (fn.__name__, k)
    return out


@pytest.fixture
def roomy_pool(monkeypatch):
    """small_pool's 4 KiB threshold with room for every result of the tests below (8 MiB), so
    that no block they drop is evicted before it is handed out again."""
    yield from _test_pool(monkeypatch, 8 << 20)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_convolutions_in_reused_memory_match_torch(roomy_pool, dtype):
    """conv2d's and conv_transpose2d's outputs, batch_norm's and conv2d_backward's grad_x come
    from reused memory here, the pool's idle blocks full of NaN before each call
    (_in_reused_memory); results kept alive, dropped and recomputed all match torch."""
    rng = np.random.default_rng(5)
    tol = dict(rtol=1e-4, atol=1e-4) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-10)
    kept = []
    TF = torch.nn.functional
    for step in range(6):
        x = rng.standard_normal((2, 8, 20, 20)).astype(dtype)
        w = rng.standard_normal((16, 8, 3, 3)).astype(dtype)
        gy = rng.standard_normal((2, 16, 20, 20)).astype(dtype)
        stride = 1 + step % 2
        xt = torch.from_numpy(x).requires_grad_(True)
        yt = TF.conv2d(xt, torch.from_numpy(w), padding=1, stride=stride)
        yt.backward(torch.from_numpy(gy[:, :, : yt.shape[2], : yt.shape[3]].copy()))
        y = _in_reused_memory(F.conv2d, x, w, padding=1, stride=stride)
        np.testing.assert_allclose(y, yt.detach().numpy(), **tol)
        gx, _, _ = _in_reused_memory(
            F.conv2d_backward,
            gy[:, :, : y.shape[2], : y.shape[3]].copy(),
            x,
            w,
            padding=1,
            stride=stride,
            pooled=(0,),
        )
        np.testing.assert_allclose(gx, xt.grad.numpy(), **tol)
        mean, var = rng.standard_normal(16).astype(dtype), rng.random(16).astype(dtype) + 0.5
        z = _in_reused_memory(F.batch_norm, y, mean, var, training=False)
        zt = TF.batch_norm(yt.detach(), torch.from_numpy(mean), torch.from_numpy(var))
        np.testing.assert_allclose(z, zt.numpy(), **tol)
        wt = rng.standard_normal((8, 4, 3, 3)).astype(dtype)
        u = _in_reused_memory(F.conv_transpose2d, x, wt, stride=stride, padding=1)
        ut = TF.conv_transpose2d(
            torch.from_numpy(x), torch.from_numpy(wt), stride=stride, padding=1
        )
        np.testing.assert_allclose(u, ut.numpy(), **tol)
        if step % 2:
            kept.append((y.copy(), y))  # alive: later results must not overwrite it
    for copy, y in kept:
        np.testing.assert_array_equal(y, copy)
    assert not _recycle.ENABLED or 0 < _recycle.held_bytes() <= _recycle.limit()


def _torch_grad(grad, f, x, *args, **kwargs):
    """d(f(x, *args, **kwargs) . grad)/dx by torch's autograd."""
    xg = torch.from_numpy(x).requires_grad_(True)
    f(xg, *args, **kwargs).backward(torch.from_numpy(grad))
    return xg.grad.numpy()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_pooling_resampling_and_activations_in_reused_memory_match_torch(roomy_pool, dtype):
    """The results of max, average, adaptive and global pooling, unpooling, interpolation and the
    compiled activations, forward and backward, come from reused memory here, the pool's idle
    blocks full of NaN before each call (an element a kernel does not write would stay NaN,
    an index -1): each matches torch, including max pooling's backward on the disjoint 2x2
    windows its gather writes once and on overlapping 3x3 windows (zeroed, then scattered)."""
    rng = np.random.default_rng(11)
    TF = torch.nn.functional
    aten = torch.ops.aten
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
    for step in range(2):
        # odd sizes in turn: the last row or column of a 2x2 stride-2 pool is in no window
        x = rng.standard_normal((2, 4, 33 - step, 31 + step)).astype(dtype)
        xt = torch.from_numpy(x)
        for k, s, p in ((2, 2, 0), (3, 2, 1), (3, 1, 1)):
            y, idx = _in_reused_memory(F.max_pool2d, x, k, s, p, return_indices=True)
            yt, it = TF.max_pool2d(xt, k, s, p, return_indices=True)
            np.testing.assert_array_equal(y, yt.numpy())
            np.testing.assert_array_equal(idx, it.numpy())
            v = _in_reused_memory(F.max_pool2d, x, k, s, p)  # the values-only kernels
            np.testing.assert_array_equal(v, yt.numpy())
            gy = rng.standard_normal(y.shape).astype(dtype)
            gx = _in_reused_memory(F.max_pool2d_backward, gy, idx, x.shape)
            want = aten.max_pool2d_with_indices_backward(
                torch.from_numpy(gy), xt, [k, k], [s, s], [p, p], [1, 1], False, it
            )
            np.testing.assert_array_equal(gx, want.numpy())
            u = _in_reused_memory(F.max_unpool2d, y, idx, k, s, p, output_size=x.shape[-2:])
            np.testing.assert_array_equal(u, TF.max_unpool2d(yt, it, k, s, p, x.shape[-2:]))
            gu = rng.standard_normal(u.shape).astype(dtype)
            g = _in_reused_memory(F.max_unpool2d_backward, gu, idx, y.shape)
            np.testing.assert_array_equal(
                g, _torch_grad(gu, TF.max_unpool2d, y, it, k, s, p, x.shape[-2:])
            )
        for k, s, p in ((2, 2, 0), (3, 2, 1), (3, 1, 1)):  # 2x2: each grad element written once
            a = _in_reused_memory(F.avg_pool2d, x, k, s, p)
            np.testing.assert_allclose(a, TF.avg_pool2d(xt, k, s, p).numpy(), **tol)
            ga = rng.standard_normal(a.shape).astype(dtype)
            g = _in_reused_memory(F.avg_pool2d_backward, ga, x.shape, k, s, p)
            want = aten.avg_pool2d_backward(
                torch.from_numpy(ga), xt, [k, k], [s, s], [p, p], False, True, None
            )
            np.testing.assert_allclose(g, want.numpy(), **tol)
        gg = rng.standard_normal((2, 4, 1, 1)).astype(dtype)
        g = _in_reused_memory(F.global_avg_pool2d_backward, gg, x.shape)
        np.testing.assert_allclose(g, _torch_grad(gg, TF.adaptive_avg_pool2d, x, 1), **tol)
        m = _in_reused_memory(F.adaptive_avg_pool2d, x, (16, 16))
        np.testing.assert_allclose(m, TF.adaptive_avg_pool2d(xt, (16, 16)).numpy(), **tol)
        gm = rng.standard_normal(m.shape).astype(dtype)
        g = _in_reused_memory(F.adaptive_avg_pool2d_backward, gm, x.shape)
        np.testing.assert_allclose(g, _torch_grad(gm, TF.adaptive_avg_pool2d, x, (16, 16)), **tol)
        m, mi = _in_reused_memory(F.adaptive_max_pool2d, x, (16, 16), return_indices=True)
        mt, mit = TF.adaptive_max_pool2d(xt, (16, 16), return_indices=True)
        np.testing.assert_array_equal(m, mt.numpy())
        np.testing.assert_array_equal(mi, mit.numpy())
        g = _in_reused_memory(F.adaptive_max_pool2d_backward, gm, mi, x.shape)
        np.testing.assert_array_equal(g, _torch_grad(gm, TF.adaptive_max_pool2d, x, (16, 16)))
        for mode, corners in (("nearest", None), ("bilinear", True), ("bilinear", False)):
            opts = dict(scale_factor=2, mode=mode, align_corners=corners)
            r = _in_reused_memory(F.interpolate, x, **opts)
            np.testing.assert_allclose(r, TF.interpolate(xt, **opts).numpy(), **tol)
            gr = rng.standard_normal(r.shape).astype(dtype)
            g = _in_reused_memory(F.interpolate_backward, gr, x.shape, **opts)
            np.testing.assert_allclose(g, _torch_grad(gr, TF.interpolate, x, **opts), **tol)
        for name in (
            "relu",
            "relu6",
            "hardswish",
            "hardsigmoid",
            "silu",
            "gelu",
            "elu",
            "leaky_relu",
            "softplus",
        ):
            z = _in_reused_memory(getattr(F, name), x)
            np.testing.assert_allclose(z, getattr(TF, name)(xt).numpy(), **tol)
            gz = rng.standard_normal(x.shape).astype(dtype)
            g = _in_reused_memory(getattr(F, name + "_backward"), gz, x)
            if name == "hardsigmoid":  # torch's float64 multiplies by float32's 1/6
                want = gz / dtype(6) * ((x > -3) & (x < 3))
            else:
                want = _torch_grad(gz, getattr(TF, name), x)
            np.testing.assert_allclose(g, want, **tol)
        z = _in_reused_memory(F.sigmoid, x)
        np.testing.assert_allclose(z, torch.sigmoid(xt).numpy(), **tol)
