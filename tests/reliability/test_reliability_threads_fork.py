"""Threads and processes (issue 9): the thread-count bound, OMP_NUM_THREADS clamping, fork
safety, and eval-mode inference on one model shared by several Python threads.

* ``set_num_threads`` refuses more than ``convext.MAX_THREADS`` (1024) with a ValueError naming
  n (100000 used to crash with SIGSEGV; 2**31 made every later call raise OverflowError);
  1024 threads compute the 1-thread result bitwise.
* A larger ``OMP_NUM_THREADS`` (each entry of a list) is clamped to 1024 with a RuntimeWarning
  before the OpenMP runtime reads it; a larger runtime setting (threadpoolctl) is capped by
  ``get_num_threads`` too.
* ``os.fork()`` after the OpenMP pool is warm: the child computes conv2d, its gradients and
  pooling on one thread (it used to hang) and gets the parent's results bitwise; so does a
  ``multiprocessing`` 'fork' worker.
* Four Python threads running a shared eval-mode model get the serial results exactly.
Subprocess tests run under a timeout, so a regression fails instead of hanging the suite.
"""

import os
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

import convext
from convext import layers as L
from convext._config import _clamp_omp_num_threads

needs_openmp = pytest.mark.skipif(
    not convext.openmp_enabled(), reason="convext was built without OpenMP"
)
needs_fork = pytest.mark.skipif(not hasattr(os, "fork"), reason="no os.fork on this platform")


def _run(code, timeout=60, **env):
    """Run python code in a fresh interpreter (no inherited OMP_NUM_THREADS); return the
    completed process. A hang fails the test through the timeout."""
    full_env = dict(os.environ)
    full_env.pop("OMP_NUM_THREADS", None)
    full_env.update(env)
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stderr
    return proc


# ---- the upper bound -----------------------------------------------------------------------


def test_max_threads_is_1024():
    assert convext.MAX_THREADS == 1024


@pytest.mark.parametrize("n", [1025, 100000, 2**31, 2**63, 10**30])
def test_set_num_threads_refuses_more_than_max(n, restore_threads):
    convext.set_num_threads(2)
    with pytest.raises(ValueError, match=rf"^n must be at most 1024 .*got {n}$"):
        convext.set_num_threads(n)
    assert convext.get_num_threads() == (2 if convext.openmp_enabled() else 1)
    x = np.ones((1, 1, 4, 4))
    np.testing.assert_array_equal(
        convext.conv2d(x, np.ones((1, 1, 2, 2))), np.full((1, 1, 3, 3), 4.0)
    )  # later calls still work


@needs_openmp
def test_former_crashes_now_refused_and_1024_threads_compute_the_serial_result():
    # a fresh interpreter: 1024 threads stay out of the test process
    code = """
        import numpy as np, convext
        for n in (100000, 2**31):
            try:
                convext.set_num_threads(n)
            except ValueError as e:
                assert "n must be at most 1024" in str(e), e
            else:
                raise AssertionError(n)
        rng = np.random.default_rng(0)
        x = rng.standard_normal((4, 8, 20, 20)); w = rng.standard_normal((8, 8, 3, 3))
        def run():
            y = convext.conv2d(x, w, padding=1)
            gx, gw, gb = convext.conv2d_backward(np.ones_like(y), x, w, padding=1)
            return [y, gx, convext.max_pool2d(x, 3, 1, 1), convext.avg_pool2d(x, 2),
                    convext.relu(x)]
        convext.set_num_threads(1)
        serial = run()
        convext.set_num_threads(1024)
        assert convext.get_num_threads() == 1024
        for a, b in zip(serial, run()):
            assert np.array_equal(a, b)
        print("ok")
    """
    assert _run(code).stdout.strip() == "ok"


# ---- OMP_NUM_THREADS -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, expected",
    [
        ("99999999999", "1024"),
        ("1025", "1024"),
        (" 2000 ", "1024"),
        ("99999999999,2", "1024,2"),
        ("4,5000", "4,1024"),
        ("+99999999999", "1024"),
        ("1" + "0" * 40, "1024"),
    ],
)
def test_clamp_omp_num_threads_clamps_each_entry_with_a_warning(value, expected):
    env = {"OMP_NUM_THREADS": value}
    with pytest.warns(RuntimeWarning, match="exceeds convext's limit of 1024 threads"):
        assert _clamp_omp_num_threads(env) == expected
    assert env["OMP_NUM_THREADS"] == expected


@pytest.mark.parametrize("value", ["1", "1024", "+8", "4,2", "abc", "0", "-3", "", "\u0662"])
def test_clamp_omp_num_threads_leaves_other_values(value, recwarn):
    env = {"OMP_NUM_THREADS": value}
    assert _clamp_omp_num_threads(env) is None
    assert env["OMP_NUM_THREADS"] == value
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


@needs_openmp
@pytest.mark.parametrize(
    "value, threads, env_after",
    [
        ("99999999999", 1024, "1024"),
        ("99999999999,3", 1024, "1024,3"),
        ("3", 3, "3"),
    ],
)
def test_omp_num_threads_is_clamped_before_the_runtime_reads_it(value, threads, env_after):
    code = """
        import os, numpy as np, convext
        from convext._kernels import _threads
        y = convext.conv2d(np.ones((1, 2, 5, 5)), np.ones((2, 2, 3, 3)))
        assert np.array_equal(y, np.full((1, 2, 3, 3), 18.0))
        print(convext.get_num_threads(), _threads.omp_max_threads(), os.environ["OMP_NUM_THREADS"])
    """
    proc = _run(code, OMP_NUM_THREADS=value)
    # the OpenMP runtime itself got the clamped value, not only convext's policy
    assert proc.stdout.split() == [str(threads), str(threads), env_after]
    assert ("exceeds convext's limit of 1024 threads" in proc.stderr) == (value != "3")


@needs_openmp
def test_a_larger_runtime_setting_is_capped():
    pytest.importorskip("threadpoolctl")
    code = """
        import convext
        from threadpoolctl import threadpool_limits
        with threadpool_limits(5000, user_api="openmp"):
            print(convext.get_num_threads())
    """
    assert _run(code, OMP_NUM_THREADS="2").stdout.strip() == "1024"


# ---- fork ----------------------------------------------------------------------------------

_FORK_CODE = """
    import os, sys, warnings
    import numpy as np
    import convext

    def compute():
        rng = np.random.default_rng(0)
        x = rng.standard_normal((4, 8, 24, 24))
        w = rng.standard_normal((16, 8, 3, 3))
        y = convext.conv2d(x, w, padding=1)
        gx, gw, gb = convext.conv2d_backward(rng.standard_normal(y.shape), x, w, padding=1)
        yd = convext.conv2d(x, rng.standard_normal((8, 1, 3, 3)), groups=8)
        m = convext.max_pool2d(y, 2)
        a = convext.avg_pool2d(y, 3, 1, 1)
        return dict(y=y, gx=gx, gw=gw, gb=gb, yd=yd, m=m, a=a, r=convext.relu(y))

    convext.set_num_threads(2)
    parent = compute()  # the OpenMP pool is warm now
    path = sys.argv[1]
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            assert convext.get_num_threads() == 1
            with warnings.catch_warnings(record=True) as rec:
                warnings.simplefilter("always")
                convext.set_num_threads(2)
            assert any("forked child" in str(r.message) for r in rec)
            assert convext.get_num_threads() == 1
            np.savez(path, **compute())
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, status
    child = np.load(path)
    for k, v in parent.items():
        assert np.array_equal(child[k], v), k  # bitwise
    assert convext.get_num_threads() == 2  # the parent keeps its threads
    print("ok")
"""


@needs_fork
def test_fork_after_warm_pool_child_computes_the_parents_results(tmp_path):
    code = textwrap.dedent(_FORK_CODE)
    proc = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "child.npz")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


_MP_FORK_CODE = """
    import multiprocessing as mp
    import numpy as np
    import convext

    def work(seed):
        rng = np.random.default_rng(seed)
        x = rng.standard_normal((2, 4, 16, 16)); w = rng.standard_normal((6, 4, 3, 3))
        return convext.get_num_threads(), convext.max_pool2d(convext.conv2d(x, w), 2)

    if __name__ == "__main__":
        convext.set_num_threads(2)
        expected = [work(s)[1] for s in range(4)]  # warms the pool
        with mp.get_context("fork").Pool(2) as pool:
            got = pool.map(work, range(4))
        assert [n for n, _ in got] == [1, 1, 1, 1]
        assert all(np.array_equal(a, b) for (_, a), b in zip(got, expected))
        print("ok")
"""


@needs_fork
def test_multiprocessing_fork_workers_after_warm_pool(tmp_path):
    script = tmp_path / "mp_fork.py"
    script.write_text(textwrap.dedent(_MP_FORK_CODE))
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


# ---- a shared eval-mode model in several Python threads ------------------------------------


def _model():
    return L.Sequential(
        L.Conv2D(3, 8, 3, padding=1, dtype=np.float64),
        L.BatchNorm2D(8, dtype=np.float64),
        L.ReLU(),
        L.MaxPool2D(2),
        L.Conv2D(8, 8, 3, dtype=np.float64),
        L.AvgPool2D(2),
        L.Dropout(0.5),
        L.Flatten(),
        L.Dense(8 * 3 * 3, 5, dtype=np.float64),
        L.LogSoftmax(),
    ).reset_parameters(0)


def test_shared_eval_model_in_4_threads_matches_serial(restore_threads):
    convext.set_num_threads(1)  # several Python threads: keep the busy machine calm
    model = _model()
    # give BatchNorm running statistics that differ from its initial ones
    model.train()
    model(np.random.default_rng(9).standard_normal((6, 3, 16, 16)))
    model.eval()
    before = {k: v.copy() for k, v in model.state_dict().items()}
    n_threads, calls = 4, 25
    inputs = [
        [np.random.default_rng(100 * t + i).standard_normal((2, 3, 16, 16)) for i in range(calls)]
        for t in range(n_threads)
    ]
    expected = [[model(x) for x in xs] for xs in inputs]
    expected_pred = [convext.predict(model, np.concatenate(xs), batch_size=7) for xs in inputs]
    results = [None] * n_threads
    errors = []
    barrier = threading.Barrier(n_threads)

    def worker(t):
        try:
            barrier.wait()
            outs = [model(x) for x in inputs[t]]
            results[t] = (outs, convext.predict(model, np.concatenate(inputs[t]), batch_size=7))
        except Exception as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(n_threads)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=120)
    assert not errors, errors
    for t in range(n_threads):
        outs, pred = results[t]
        for a, b in zip(outs, expected[t], strict=True):
            np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(pred, expected_pred[t])
    for k, v in model.state_dict().items():  # inference changed nothing
        np.testing.assert_array_equal(v, before[k])
    assert not model.training
