"""Concurrency (docs/reliability.md checks 11 and 12).

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

import numpy as np
import pytest
from gil_watch import gil_released, long_inputs, summary, watch
from test_reliability_catalog import CASES, assert_identical, case_id, flatten

import convext
from convext import functional as F

KERNEL_CASES = [
    c
    for c in CASES
    if c.name
    in (
        "conv2d",
        "conv2d_backward",
        "max_pool2d",
        "max_pool2d_backward",
        "avg_pool2d",
        "avg_pool2d_backward",
        "lp_pool2d",
        "lp_pool2d_backward",
        "Conv2D",
        "Sequential",
    )
]
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
                assert_identical(case.call(**arrays), want, f"thread {t} call {i} {case_id(case)}")
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
    for _ in range(8):
        x = rng.standard_normal((2, 8, 20, 20)).astype(np.float32)
        w = rng.standard_normal((8, 8, 3, 3)).astype(np.float32)
        y = convext.conv2d(x, w, padding=1)
        data.append(
            (x, w, y, convext.conv2d_backward(y, x, w, padding=1)[0], F.max_pool2d(x, 3, 2, 1))
        )
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


@pytest.mark.parametrize("name", list(LONG_CALLS))
def test_python_runs_while_a_kernel_runs(name, restore_threads):
    """While one thread is inside a long kernel, another thread keeps executing Python code.

    Measured in CPU time (not wall time, which stretches under load): the main thread spins
    and must get a real share of CPU while the worker computes, and (Linux) must sample the
    worker's CPU clock in the middle of the call. Up to 5 tries on a busy machine."""
    convext.set_num_threads(1)
    fn = LONG_CALLS[name]
    x, w = long_inputs(fn)
    tries = []
    for _ in range(5):
        r = watch(fn, x, w, workers=1)
        tries.append(summary(r))
        if gil_released(r):
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
    x, w = long_inputs(fn)
    tries = []
    for _ in range(5):
        r = watch(fn, x, w, workers=2)
        tries.append(summary(r))
        if gil_released(r):
            break
    else:
        pytest.fail(f"the two calls did not run at the same time: {tries}")


# --- thread count --------------------------------------------------------------------------

THREAD_CASES = [c for c in CASES if c.big is not None]


def _lp_big(rng, dtype, n=None):
    x = rng.random((4, 8, 40, 41)).astype(dtype) + 0.1
    return dict(x=x)


@pytest.mark.parametrize(
    "case",
    THREAD_CASES
    + [c for c in CASES if c.name in ("lp_pool2d", "lp_pool2d_backward") and not c.tags],
    ids=case_id,
)
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
        for i, (a, b) in enumerate(zip(results[0], other, strict=True)):
            if case.name == "conv2d_backward" and i == 1:  # grad_weight: 1e-6 relative
                scale = max(1.0, float(np.abs(a).max()))
                assert float(np.abs(a.astype(np.float64) - b).max()) <= 1e-6 * scale
            else:
                assert_identical(b, a, f"{case_id(case)} output {i}")
