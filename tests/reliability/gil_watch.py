"""Is the GIL released while a kernel computes? Measured in CPU time, which, unlike wall time,
does not stretch when other processes load the machine (tests/reliability/
test_reliability_concurrency.py).

Per-thread CPU clocks: time.thread_time() in the thread itself, and (where the platform has
them: Linux, the BSDs) another thread's clock read from the main thread.
"""

import threading
import time

import numpy as np

MIN_CALL_CPU = 0.2  # seconds of CPU per long call (single-threaded)


def long_inputs(fn, max_batch=32):
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


_CPU_CLOCK_OF = getattr(time, "pthread_getcpuclockid", None)


def watch(fn, x, w, workers):
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
    return dict(
        iterations=n, main_cpu=main_cpu, spans=spans, samples=samples, clocks=clocks is not None
    )


def _inside(sample, spans):
    """True when every worker's CPU clock in ``sample`` is well inside its call (between 20%
    and 80% of the CPU time the call took): all calls were computing at that instant."""
    return all(
        a + 0.2 * (b - a) < c < a + 0.8 * (b - a) for c, (a, b) in zip(sample, spans, strict=True)
    )


def gil_released(r):
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


def summary(r):
    return dict(
        iterations=r["iterations"],
        main_cpu=round(r["main_cpu"], 4),
        call_cpu=[round(b - a, 4) for a, b in r["spans"]],
        samples=len(r["samples"]),
        samples_inside=sum(_inside(s, r["spans"]) for s in r["samples"]),
    )
