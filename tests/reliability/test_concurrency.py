"""Concurrency without the GIL's help (docs/reliability.md check 19; issue 14, item 5).

On free-threaded CPython (3.13t, 3.14t) Python threads run truly in parallel: whatever convext
shares between threads must be safe without the GIL. What it shares, and how it is kept safe:

* the thread count (``_config``): one module global, written under a lock, read in one load;
  the OpenMP runtime's own setting read per call; the fork handler runs in the child only;
* the layer registry (``layers.registry.LAYERS``): registration checks and writes under a lock,
  readers take a copy before they iterate;
* ``functools.cache`` of the constructor fields (its C implementation is thread-safe; a value
  computed twice is the same value);
* the compiled kernel modules: no module state, loops run without the GIL
  (``freethreading_compatible`` declared for each, so importing them does not turn the GIL back
  on).

Each test hammers one of these from many Python threads and compares every result with the
serial one, bitwise. They pass under the GIL too (where they still catch the registry's
check-then-write race and a dict changing size under an iteration, which the GIL does not
prevent); under a free-threaded build they also check that convext keeps the GIL off.
(tests/reliability/test_reliability_concurrency.py covers the compiled functions on their own:
8 threads x hundreds of calls, the GIL released during a kernel.)
"""

import io
import os
import subprocess
import sys
import sysconfig
import threading

import numpy as np
import pytest

import convext
from convext import functional as F
from convext.layers import registry
from convext.optim import SGD

FREE_THREADED = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))
N_THREADS = 8


def _run_threads(target, n=N_THREADS):
    """Run target(i) in n threads started together; re-raise the first failure."""
    errors = []
    barrier = threading.Barrier(n)

    def run(i):
        try:
            barrier.wait()
            target(i)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def _same(a, b, what):
    assert a.dtype == b.dtype and a.shape == b.shape, what
    assert np.array_equal(a, b, equal_nan=True), what


# --- compiled functions on separate data, thread count changing underneath -------------------


def _kernel_work(seed):
    rng = np.random.default_rng(seed)
    dtype = np.float32 if seed % 2 else np.float64
    # above the serial thresholds of _config.SERIAL_WORK: these calls do run on several
    # OpenMP threads when the count allows it
    x = rng.standard_normal((2, 8, 33, 31)).astype(dtype)
    w = rng.standard_normal((16, 8, 3, 2)).astype(dtype)
    b = rng.standard_normal(16).astype(dtype)

    def calls():
        y = convext.conv2d(x, w, b, stride=(2, 1), padding=1, dilation=(1, 2))
        gx, gw, gb = convext.conv2d_backward(y, x, w, stride=(2, 1), padding=1, dilation=(1, 2))
        p, idx = F.max_pool2d(x, 3, 2, 1, return_indices=True)
        gp = F.max_pool2d_backward(p, idx, x.shape)
        return [y, gx, gw, gb, p, idx, gp]

    return calls


def test_kernels_in_many_threads_while_the_thread_count_changes(restore_threads):
    """8 threads call conv2d, its gradients and max_pool2d on their own data while a ninth sets
    the thread count to 1, 2, 3 and the default over and over: every result equals the serial
    one bitwise (no result depends on the thread count), and get_num_threads never returns
    anything else."""
    work = [_kernel_work(100 + i) for i in range(N_THREADS)]
    convext.set_num_threads(1)
    expected = [fn() for fn in work]
    convext.set_num_threads(None)
    allowed = {1, 2, 3, convext.get_num_threads()}
    stop = threading.Event()
    seen = []  # sets of the counts each thread saw (list.append is atomic)

    def switcher():
        i, counts = 0, set()
        while not stop.is_set():  # as fast as it can: the most interleavings
            convext.set_num_threads((1, 2, None, 3)[i % 4])
            counts.add(convext.get_num_threads())
            i += 1
        seen.append(counts)

    calls = int(os.environ.get("CONVEXT_THREAD_CALLS", "30"))

    def worker(i):
        for rep in range(calls):
            got = work[i]()
            for k, (g, e) in enumerate(zip(got, expected[i], strict=True)):
                _same(g, e, f"thread {i} call {rep} result {k}")
            seen.append({convext.get_num_threads()})

    t = threading.Thread(target=switcher)
    t.start()
    try:
        _run_threads(worker)
    finally:
        stop.set()
        t.join()
    counts = set().union(*seen)
    assert len(seen) == N_THREADS * calls + 1 and counts <= allowed, sorted(counts - allowed)


def test_set_num_threads_from_many_threads_leaves_one_of_the_values_set(restore_threads):
    values = list(range(1, N_THREADS + 1))

    def setter(i):
        for _ in range(500):
            convext.set_num_threads(values[i])
            assert 1 <= convext.get_num_threads() <= convext.MAX_THREADS

    _run_threads(setter)
    if convext.openmp_enabled():
        assert convext.get_num_threads() in values
    else:
        assert convext.get_num_threads() == 1


# --- training separate models in parallel ----------------------------------------------------


def _model(seed, dtype):
    return convext.Sequential(
        convext.Conv2D(3, 8, 3, padding=1, dtype=dtype, rng=seed),
        convext.BatchNorm2D(8, dtype=dtype),
        convext.ReLU(),
        convext.MaxPool2D(2),
        convext.Conv2D(8, 8, (3, 1), stride=(1, 2), dtype=dtype, rng=seed + 1),
        convext.ReLU(),
        convext.Flatten(),
        convext.Dense(8 * 6 * 4, 5, dtype=dtype, rng=seed + 2),
    )


def _train(seed, steps=12):
    """A few SGD steps of one model on its own data; returns its losses and final state."""
    dtype = np.float32 if seed % 2 else np.float64
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((6, 3, 16, 16)).astype(dtype)
    labels = rng.integers(0, 5, 6)
    model = _model(seed, dtype).train()
    opt = SGD(model, lr=0.05, momentum=0.9)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss, grad = F.cross_entropy(model(x), labels)
        model.backward(grad)
        opt.step()
        losses.append(np.asarray(loss))
    return losses, {k: np.array(v) for k, v in model.state_dict().items()}


def test_training_separate_models_in_parallel_threads_matches_serial(restore_threads):
    convext.set_num_threads(1)
    seeds = [10 * i + 1 for i in range(N_THREADS)]
    expected = [_train(s) for s in seeds]
    got = [None] * N_THREADS

    def worker(i):
        got[i] = _train(seeds[i])

    _run_threads(worker)
    for i, ((losses, state), (want_losses, want_state)) in enumerate(
        zip(got, expected, strict=True)
    ):
        for step, (a, b) in enumerate(zip(losses, want_losses, strict=True)):
            _same(a, b, f"model {i} loss at step {step}")
        assert state.keys() == want_state.keys()
        for k in state:
            _same(state[k], want_state[k], f"model {i} {k}")


def test_one_model_in_eval_mode_serves_many_threads(restore_threads):
    """The documented sharing: eval-mode inference of one model from many threads."""
    convext.set_num_threads(1)
    model = _model(7, np.float32).eval()
    rng = np.random.default_rng(7)
    inputs = [rng.standard_normal((3, 3, 16, 16)).astype(np.float32) for _ in range(N_THREADS)]
    expected = [model(x) for x in inputs]

    def worker(i):
        for _ in range(25):
            _same(model(inputs[i]), expected[i], f"thread {i}")

    _run_threads(worker)


# --- the layer registry ----------------------------------------------------------------------


def _layer_class(name, module):
    def forward(self, x):
        return x

    def backward(self, grad_out, needs_input_grad=True):
        return grad_out

    cls = type(name, (convext.Layer,), {"forward": forward, "backward": backward})
    cls.__module__ = module
    return cls


@pytest.fixture
def clean_registry():
    """Restore the registry afterwards; meanwhile switch threads as often as the interpreter
    allows (under the GIL that is what exposes a check-then-write race or an iteration of a
    dict another thread is growing; without the GIL they are exposed anyway)."""
    before = dict(registry.LAYERS)
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(interval)
        registry.LAYERS.clear()  # every thread has finished
        registry.LAYERS.update(before)


def test_racing_registrations_of_one_name_have_one_winner(clean_registry):
    """Different classes registered under one name at once: exactly one is registered, every
    other registration is a ValueError (never two that both believe they won)."""
    for round_ in range(40):
        name = f"_ConcurrencyRace{round_}"
        classes = [_layer_class(name, f"tests.race{i}") for i in range(N_THREADS)]
        won = []

        def register(i, name=name, classes=classes, won=won):
            try:
                convext.register_layer(classes[i])
                won.append(i)
            except ValueError as e:
                assert "is taken by" in str(e)

        _run_threads(register)
        assert len(won) == 1, (round_, won)
        assert registry.LAYERS[name] is classes[won[0]]


def test_registering_while_other_threads_save_and_load(clean_registry):
    """New layer types registered in some threads while others describe, save and load models
    (which walk the registry): no 'dictionary changed size during iteration', every
    description is the serial one, every model loads back with the same outputs."""
    # a type registered after all of convext's: finding its name walks the whole registry
    tail = convext.register_layer(_layer_class("_ConcurrencyTail", "tests.tail"))
    model = convext.Sequential(_model(3, np.float64), tail()).eval()
    x = np.random.default_rng(3).standard_normal((2, 3, 16, 16))
    want, want_spec = model(x), registry.layer_spec(model)
    writers = N_THREADS // 2
    finished = []  # one entry per writer that stopped (list.append is atomic)

    def worker(i):
        if i < writers:
            try:
                for k in range(2000):
                    convext.register_layer(_layer_class(f"_ConcurrencyNew{i}_{k}", "tests.new"))
            finally:
                finished.append(i)
            return
        while len(finished) < writers:
            assert registry.layer_spec(model) == want_spec, f"thread {i}"
            # an unknown type lists the known ones (a sorted copy of the registry)
            with pytest.raises(ValueError, match="unknown layer type"):
                registry.layer_from_spec({"type": "_NoSuchLayer", "config": {}})
        f = io.BytesIO()
        convext.save(model, f)
        f.seek(0)
        _same(convext.load(f).eval()(x), want, f"thread {i}")

    _run_threads(worker)
    assert sum(k.startswith("_ConcurrencyNew") for k in registry.LAYERS) == writers * 2000


# --- free-threaded CPython: importing convext keeps the GIL off ------------------------------


@pytest.mark.skipif(not FREE_THREADED, reason="a free-threaded (3.13t/3.14t) CPython only")
def test_importing_every_kernel_module_keeps_the_gil_disabled():
    """A compiled module not declared free-threading compatible turns the GIL back on when it
    is imported (with a RuntimeWarning); each of convext's is declared."""
    code = (
        "import importlib, pkgutil, sys, warnings\n"
        "warnings.simplefilter('error')\n"
        "import convext, convext._kernels as k\n"
        "names = [m.name for m in pkgutil.iter_modules(k.__path__)]\n"
        "for n in names: importlib.import_module('convext._kernels.' + n)\n"
        "assert len(names) >= 5, names\n"
        "print(sys._is_gil_enabled(), len(names))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHON_GIL"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[0] == "False", out.stdout
