"""Thread controls: set_num_threads/get_num_threads, OMP_NUM_THREADS, threadpoolctl, and
worker processes started with spawn and forkserver.

Results must not depend on the thread count: each convolution kernel fixes its work split and
summation order independently of the number of threads, so 1 and 2 threads agree bitwise.
"""

import multiprocessing
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import convext
import reference

needs_openmp = pytest.mark.skipif(
    not convext.openmp_enabled(), reason="convext was built without OpenMP"
)


def _run(code, **env):
    """Run python code in a fresh interpreter with extra environment variables; return stdout."""
    full_env = dict(os.environ)
    full_env.pop("OMP_NUM_THREADS", None)
    full_env.update(env)
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


# ---- set_num_threads / get_num_threads -----------------------------------------------------


@needs_openmp
def test_set_get_num_threads(restore_threads):
    convext.set_num_threads(3)
    assert convext.get_num_threads() == 3
    convext.set_num_threads(np.int64(1))
    assert convext.get_num_threads() == 1
    assert type(convext.get_num_threads()) is int


def test_set_num_threads_none_restores_default(restore_threads):
    default = convext.get_num_threads()
    convext.set_num_threads(1)
    convext.set_num_threads(None)
    assert convext.get_num_threads() == default
    assert default >= 1


@pytest.mark.parametrize("bad", [0, -1, -8])
def test_set_num_threads_rejects_non_positive(bad, restore_threads):
    before = convext.get_num_threads()
    with pytest.raises(ValueError, match="positive"):
        convext.set_num_threads(bad)
    assert convext.get_num_threads() == before


@pytest.mark.parametrize("bad", [1.5, 2.0, "2", True, [2]])
def test_set_num_threads_rejects_non_int(bad, restore_threads):
    before = convext.get_num_threads()
    with pytest.raises(TypeError, match="n must be"):
        convext.set_num_threads(bad)
    assert convext.get_num_threads() == before


def test_without_openmp_one_thread(restore_threads):
    if convext.openmp_enabled():
        pytest.skip("convext was built with OpenMP")
    convext.set_num_threads(4)
    assert convext.get_num_threads() == 1


# ---- OMP_NUM_THREADS -----------------------------------------------------------------------


@needs_openmp
@pytest.mark.parametrize("value, expected", [("3", 3), ("1", 1), ("5,2", 5)])
def test_omp_num_threads_is_the_default(value, expected):
    out = _run("import convext; print(convext.get_num_threads())", OMP_NUM_THREADS=value)
    assert int(out) == expected


@needs_openmp
def test_set_num_threads_overrides_omp_num_threads():
    out = _run(
        "import convext; convext.set_num_threads(2); print(convext.get_num_threads())",
        OMP_NUM_THREADS="1",
    )
    assert int(out) == 2


# ---- threadpoolctl -------------------------------------------------------------------------

# Run in a fresh interpreter that loads no other OpenMP runtime (PyTorch ships its own).
_THREADPOOLCTL_CODE = """
    import json
    import numpy as np
    import convext
    from convext._kernels import _threads
    from threadpoolctl import threadpool_info, threadpool_limits

    libs = [i["filepath"] for i in threadpool_info() if i["user_api"] == "openmp"]
    before = _threads.omp_max_threads()
    with threadpool_limits(1, user_api="openmp"):
        inside = _threads.omp_max_threads()
        inside_convext = convext.get_num_threads()
    after = _threads.omp_max_threads()
    print(json.dumps(dict(libs=libs, before=before, inside=inside, after=after,
                          inside_convext=inside_convext)))
"""


@needs_openmp
def test_threadpoolctl_finds_and_limits_convexts_openmp():
    pytest.importorskip("threadpoolctl")
    import json

    r = json.loads(_run(_THREADPOOLCTL_CODE, OMP_NUM_THREADS="2"))
    # threadpoolctl found an OpenMP library, and the one it limited is the one the kernels use.
    assert len(r["libs"]) >= 1, r
    assert r["before"] == 2 and r["inside"] == 1 and r["after"] == 2, r


@needs_openmp
def test_threadpoolctl_limits_convext_default_threads():
    pytest.importorskip("threadpoolctl")
    import json

    r = json.loads(_run(_THREADPOOLCTL_CODE, OMP_NUM_THREADS="2"))
    assert r["inside_convext"] == 1, r


# ---- thread count does not change results ---------------------------------------------------


def _conv_case(dtype, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, 6, 13, 11)).astype(dtype)
    w = rng.standard_normal((8, 3, 3, 3)).astype(dtype)
    b = rng.standard_normal(8).astype(dtype)
    return x, w, b


@needs_openmp
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_conv2d_same_result_for_1_and_2_threads(dtype, restore_threads):
    x, w, b = _conv_case(dtype)
    kw = dict(stride=(1, 2), padding=1, groups=2)
    results = {}
    for n in (1, 2):
        convext.set_num_threads(n)
        y = convext.conv2d(x, w, b, **kw)
        gy = np.random.default_rng(1).standard_normal(y.shape).astype(dtype)
        gx, gw, gb = convext.conv2d_backward(gy, x, w, **kw)
        results[n] = (y, gx, gw, gb)
    for a, c in zip(results[1], results[2], strict=True):
        np.testing.assert_array_equal(a, c)
    # and they are right (float64 reference; docs/reliability.md tolerances)
    y = results[1][0]
    ref = reference.conv2d(x, w, b, **kw)
    if dtype == np.float64:
        np.testing.assert_allclose(y, ref, rtol=1e-10, atol=0)
    else:
        assert np.max(np.abs(y - ref)) <= 1e-5 * max(1.0, np.max(np.abs(ref)))


# ---- worker processes ----------------------------------------------------------------------


@pytest.mark.parametrize("method", ["spawn", "forkserver"])
def test_worker_pool_runs_convext(method):
    if method not in multiprocessing.get_all_start_methods():
        pytest.skip(f"start method {method!r} is not available on this platform")
    x, w, b = _conv_case(np.float64)
    # Run an OpenMP region in the parent first: after that, 'fork' is unsafe with libgomp,
    # while spawn and forkserver start clean interpreters.
    expected = convext.conv2d(x, w, b, padding=1, groups=2)
    ctx = multiprocessing.get_context(method)
    with ctx.Pool(2) as pool:
        outs = pool.starmap(convext.conv2d, [(x, w, b, 1, 1, 1, 2), (x[:1], w, b, 1, 1, 1, 2)])
    np.testing.assert_array_equal(outs[0], expected)
    np.testing.assert_array_equal(outs[1], expected[:1])


@pytest.mark.parametrize(
    ("threads", "team"), [(1, 1), (2, 2), (3, 3), (7, 7), (64, 64), (7, 1), (7, 2), (64, 2)]
)
@pytest.mark.parametrize("n", [0, 1, 5, 16, 17, 100, 1031])
def test_sched_hands_out_every_item_once(n, threads, team):
    """cvx_sched (_openmp_helpers.h, the valid-taps forward's schedule): every work item is run
    exactly once, on some thread, for counts below, at and above the threads and the 16 units
    of a share, also when the region has fewer threads than the schedule's shares (OpenMP may
    give a region fewer than asked: the others' shares are then taken over)."""
    from convext._kernels import _threads

    counts = _threads.sched_counts(n, threads, team)
    assert counts.shape == (threads, n)
    assert (counts.sum(axis=0) == 1).all()
    assert counts[team:].sum() == 0  # (threads past the team ran nothing)


@needs_openmp
def test_sched_takes_over_a_late_threads_share():
    """A thread that starts late does not hold up the region: thread 0 waits (up to 10 s) until
    the other thread, done with its own share, has taken over a unit of thread 0's; every item
    still once."""
    from convext._kernels import _threads

    n = 1000
    counts = _threads.sched_counts(n, 2, wait=10.0)
    assert (counts.sum(axis=0) == 1).all()
    # thread 0's static share is items [0, 500), in units of 32: the other thread took at least
    # its last one, [480, 500), before thread 0 claimed any
    assert counts[1, 480:500].sum() == 20
    assert counts[0].sum() < n // 2


def test_sched_counts_rejects_bad_arguments():
    from convext._kernels import _threads

    with pytest.raises(ValueError, match="threads"):
        _threads.sched_counts(5, 0)
    with pytest.raises(ValueError, match="threads"):
        _threads.sched_counts(5, 65)
    with pytest.raises(ValueError, match="team"):
        _threads.sched_counts(5, 2, 3)
    with pytest.raises(ValueError, match="n >= 0"):
        _threads.sched_counts(-1, 2)
