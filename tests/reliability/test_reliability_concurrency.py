"""Concurrency (RELIABILITY.md checks 11 and 12).

* 8 Python threads, each making hundreds of calls of the compiled functions on its own data,
  get exactly the serial results.
* The kernels release the GIL: Python code keeps running while a long kernel runs in another
  thread, and two long calls in two threads overlap in time.
* 1, 2 and 3 OpenMP threads give bitwise the same forward and input gradients for every
  catalogued function with a large case (conv, max/avg pooling and their gradients) and for Lp
  pooling; the conv weight gradient within 1e-6 relative.
(Fork safety with spawn/forkserver worker pools is tested in tests/kernels/test_threads.py.)
"""
import os
import threading
import time

import numpy as np
import pytest

import convext
from convext import functional as F
from test_reliability_catalog import CASES, assert_identical, case_id, flatten

KERNEL_CASES = [c for c in CASES if c.name in (
    "conv2d", "conv2d_backward", "max_pool2d", "max_pool2d_backward", "avg_pool2d",
    "avg_pool2d_backward", "lp_pool2d", "lp_pool2d_backward", "Conv2D", "Sequential")]
CALLS_PER_THREAD = int(os.environ.get("CONVEXT_THREAD_CALLS", "300"))


def test_8_threads_hundreds_of_calls_match_serial(restore_threads):
    convext.set_num_threads(1)  # many small calls: avoid oversubscribing a busy machine
    n_threads = 8
    work = []  # per thread: list of (case, arrays, expected)
    for t in range(n_threads):
        rng = np.random.default_rng(100 + t)
        items = []
        for case in KERNEL_CASES:
            dtype = np.float32 if t % 2 else np.float64
            arrays = case.make(rng, dtype, 1 + t % 3)
            items.append((case, arrays, case.call(**arrays)))
        work.append(items)
    errors = []
    barrier = threading.Barrier(n_threads)

    def run(t):
        try:
            items = work[t]
            barrier.wait()
            for i in range(CALLS_PER_THREAD):
                case, arrays, want = items[(i + t) % len(items)]
                assert_identical(case.call(**arrays), want, f"thread {t} call {i} "
                                                            f"{case_id(case)}")
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(t,)) for t in range(n_threads)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors, errors[0]


def test_8_threads_with_2_openmp_threads_each(restore_threads):
    """Python threads and OpenMP teams nest: results are still the serial ones."""
    convext.set_num_threads(2)
    rng = np.random.default_rng(8)
    data = []
    for t in range(8):
        x = rng.standard_normal((2, 8, 20, 20)).astype(np.float32)
        w = rng.standard_normal((8, 8, 3, 3)).astype(np.float32)
        y = convext.conv2d(x, w, padding=1)
        data.append((x, w, y, convext.conv2d_backward(y, x, w, padding=1)[0],
                     F.max_pool2d(x, 3, 2, 1)))
    errors = []

    def run(t):
        x, w, y, gx, mp = data[t]
        try:
            for _ in range(20):
                assert_identical(convext.conv2d(x, w, padding=1), y)
                assert_identical(convext.conv2d_backward(y, x, w, padding=1)[0], gx)
                assert_identical(F.max_pool2d(x, 3, 2, 1), mp)
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=run, args=(t,)) for t in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors, errors[0]


# --- the GIL is released ---------------------------------------------------------------------

LONG_CALLS = {
    "conv2d": lambda x, w: convext.conv2d(x, w, padding=2),
    "conv2d_backward": lambda x, w: convext.conv2d_backward(x, x, w, padding=2),
    "max_pool2d": lambda x, w: F.max_pool2d(x, 9, 1, 4),
    "avg_pool2d": lambda x, w: F.avg_pool2d(x, 15, 1, 7),
}
MIN_CALL_CPU = 0.2  # seconds of CPU per long call (single-threaded)


def _long_inputs(fn, max_batch=32):
    """(x, w) for which one single-threaded call of fn takes at least MIN_CALL_CPU seconds of
    CPU on this build and machine (the batch grows until it does, up to max_batch): long
    enough for the checks below whatever the speed of the build (optimised, debug, ASan)."""
    rng = np.random.default_rng(9)
    w = rng.standard_normal((128, 128, 5, 5)).astype(np.float32)
    n = 1
    while True:
        x = rng.standard_normal((n, 128, 48, 48)).astype(np.float32)
        a = time.thread_time()
        fn(x, w)
        cpu = time.thread_time() - a
        if cpu >= MIN_CALL_CPU or n >= max_batch:
            return x, w
        n = min(max_batch, max(2 * n, int(1.3 * n * MIN_CALL_CPU / max(cpu, 1e-4)) + 1))


# Per-thread CPU clocks: time.thread_time() in the thread itself, and (where the platform has
# them: Linux, the BSDs) another thread's clock read from the main thread. CPU time, unlike wall
# time, does not stretch when other processes load the machine.
_CPU_CLOCK_OF = getattr(time, "pthread_getcpuclockid", None)


def _watch(fn, x, w, workers):
    """Run fn(x, w) once in each of ``workers`` threads while the main thread spins in Python.

    Returns the main thread's Python loop iterations and CPU seconds while any worker ran, each
    worker's CPU seconds inside its call (its own clock: (start, end)), and, where another
    thread's CPU clock can be read, samples of the workers' clocks taken BY the main thread
    (a sample is taken only while the main thread executes Python, i.e. holds the GIL)."""
    spans = [None] * workers
    idents = [None] * workers
    ready = threading.Barrier(workers + 1)
    done = threading.Event()
    release = threading.Event()  # workers stay alive (their CPU clocks valid) until then
    finished = []

    def run(i):
        idents[i] = threading.get_ident()
        ready.wait()
        a = time.thread_time()
        fn(x, w)
        spans[i] = (a, time.thread_time())
        finished.append(i)
        if len(finished) == workers:
            done.set()
        release.wait()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(workers)]
    for th in threads:
        th.start()
    ready.wait()
    clocks = None
    if _CPU_CLOCK_OF is not None:
        try:
            clocks = [_CPU_CLOCK_OF(ident) for ident in idents]
        except OSError:
            clocks = None
    samples = []
    n = 0
    cpu0 = time.thread_time()
    next_sample = time.perf_counter()
    while not done.is_set():
        n += 1
        if clocks is not None and time.perf_counter() >= next_sample:
            samples.append([time.clock_gettime(c) for c in clocks])
            next_sample = time.perf_counter() + 0.0005
    main_cpu = time.thread_time() - cpu0
    release.set()
    for th in threads:
        th.join()
    return dict(iterations=n, main_cpu=main_cpu, spans=spans, samples=samples,
                clocks=clocks is not None)


def _inside(sample, spans):
    """True when every worker's CPU clock in ``sample`` is well inside its call (between 20%
    and 80% of the CPU time the call took): all calls were computing at that instant."""
    return all(a + 0.2 * (b - a) < c < a + 0.8 * (b - a) for c, (a, b) in zip(sample, spans))


def _gil_released(r):
    """The main thread ran Python while the kernel(s) computed:

    * its CPU time over the watch is at least a quarter of the shortest call's CPU time (a
      kernel holding the GIL would leave it only the calls' short Python prologues: a few
      percent at most), and
    * where other threads' CPU clocks are readable: at least one of its samples shows every
      worker in the middle of its call, which it could not have taken with the GIL held by
      any of them."""
    shortest = min(b - a for a, b in r["spans"])
    if r["main_cpu"] < 0.25 * shortest:
        return False
    return not r["clocks"] or any(_inside(s, r["spans"]) for s in r["samples"])


def _summary(r):
    return dict(iterations=r["iterations"], main_cpu=round(r["main_cpu"], 4),
                call_cpu=[round(b - a, 4) for a, b in r["spans"]], samples=len(r["samples"]),
                samples_inside=sum(_inside(s, r["spans"]) for s in r["samples"]))


@pytest.mark.parametrize("name", list(LONG_CALLS))
def test_python_runs_while_a_kernel_runs(name, restore_threads):
    """While one thread is inside a long kernel, another thread keeps executing Python code.

    Measured in CPU time (not wall time, which stretches under load): the main thread spins
    and must get a real share of CPU while the worker computes, and (Linux) must sample the
    worker's CPU clock in the middle of the call. Up to 5 tries on a busy machine."""
    convext.set_num_threads(1)
    fn = LONG_CALLS[name]
    x, w = _long_inputs(fn)
    tries = []
    for _ in range(5):
        r = _watch(fn, x, w, workers=1)
        tries.append(_summary(r))
        if _gil_released(r):
            break
    else:
        pytest.fail(f"Python was frozen while {name} ran (GIL held?): {tries}")


def test_two_long_calls_overlap_in_time(restore_threads):
    """Two threads each run one long single-threaded conv2d: at some instant both are in the
    middle of their call (their CPU clocks, sampled by a third thread running Python, are both
    between 20% and 80% of their call), so neither holds the GIL while it computes. No
    wall-clock speed-up is asked for: on a shared machine it varies. Up to 5 tries."""
    convext.set_num_threads(1)
    fn = LONG_CALLS["conv2d"]
    x, w = _long_inputs(fn)
    tries = []
    for _ in range(5):
        r = _watch(fn, x, w, workers=2)
        tries.append(_summary(r))
        if _gil_released(r):
            break
    else:
        pytest.fail(f"the two calls did not run at the same time: {tries}")


# --- thread count --------------------------------------------------------------------------

THREAD_CASES = [c for c in CASES if c.big is not None]


def _lp_big(rng, dtype, n=None):
    x = rng.random((4, 8, 40, 41)).astype(dtype) + 0.1
    return dict(x=x)


@pytest.mark.parametrize("case", THREAD_CASES + [
    c for c in CASES if c.name in ("lp_pool2d", "lp_pool2d_backward") and not c.tags],
    ids=case_id)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_results_do_not_depend_on_the_thread_count(case, dtype, restore_threads):
    rng = np.random.default_rng(10)
    make = case.big or (lambda r, d, n=None: case.make(r, d, 6))
    arrays = make(rng, dtype)
    results = []
    for n in (1, 2, 3):
        convext.set_num_threads(n)
        results.append(flatten(case.call(**arrays)))
    for other in results[1:]:
        for i, (a, b) in enumerate(zip(results[0], other)):
            if case.name == "conv2d_backward" and i == 1:  # grad_weight: 1e-6 relative
                scale = max(1.0, float(np.abs(a).max()))
                assert float(np.abs(a.astype(np.float64) - b).max()) <= 1e-6 * scale
            else:
                assert_identical(b, a, f"{case_id(case)} output {i}")
