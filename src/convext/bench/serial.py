"""Serial against parallel: small problems of each kind of ``_config.SERIAL_WORK`` timed on one
thread and on N threads, around the kind's threshold.

``python -m convext bench serial [--shapes NAME,...] [--threads N] [--repeats N] [--quick]``

Each problem (a batch of small convolutions and a linear layer for "macs", max pooling for
"elements", relu for "elementwise") is timed at 1/8 ... 8 times its kind's threshold (1/4, 1 and
4 times with --quick), float32, once with ``set_num_threads(1)`` and once with N threads and the
threshold lifted (``threads_for`` then gives every call N threads); each figure is the median of
the repeats of a batch of calls long enough to time. The table says where N threads start to
win: the smallest work from which N threads are faster at every larger size timed. The command
that re-measures the thresholds of ``_config.SERIAL_WORK``.
"""

import time

import numpy as np

from .. import _config, functional
from ._common import alternate, print_table

# name, kind of SERIAL_WORK
SHAPES = [
    ("macs-conv", "macs"),
    ("macs-linear", "macs"),
    ("elements-maxpool", "elements"),
    ("elementwise-relu", "elementwise"),
]
FACTORS = (1 / 8, 1 / 4, 1 / 2, 1, 2, 4, 8)
QUICK_FACTORS = (1 / 4, 1, 4)
BATCH_SECONDS = 2e-3  # each timed sample runs the call this long, at least once
HEADERS = (
    "problem",
    "kind",
    "work",
    "work/threshold",
    "1 thread us",
    "N threads us",
    "N/1",
    "threads_for",
)


def problem(name, work, rng):
    """(call, its actual work in the kind's units) for a problem of about ``work`` units."""
    if name == "macs-conv":  # 8 -> 8 channels, 3x3, padding 1 on 8x8 images: 36864 an image
        # (the batch grows, not the image: the kernels spread images over the threads)
        images = max(1, round(work / 36864))
        x = rng.standard_normal((images, 8, 8, 8), dtype=np.float32)
        w = rng.standard_normal((8, 8, 3, 3), dtype=np.float32)
        return (lambda: functional.conv2d(x, w, None, 1, 1)), 36864 * images
    if name == "macs-linear":  # 64 -> 64 features: 4096 multiply-adds a row
        rows = max(1, round(work / 4096))
        x = rng.standard_normal((rows, 64), dtype=np.float32)
        w = rng.standard_normal((64, 64), dtype=np.float32)
        return (lambda: functional.linear(x, w)), 4096 * rows
    if name == "elements-maxpool":  # 16x16 planes, 2x2 windows; work = input elements
        planes = max(1, round(work / 256))
        x = rng.standard_normal((1, planes, 16, 16), dtype=np.float32)
        return (lambda: functional.max_pool2d(x, 2)), 256 * planes
    if name == "elementwise-relu":
        x = rng.standard_normal(int(work), dtype=np.float32)
        return (lambda: functional.relu(x)), int(work)
    raise ValueError(f"unknown serial problem {name!r}")


def _batched(fn, threads, calls):
    def run():
        _config.set_num_threads(threads)
        for _ in range(calls):
            fn()

    return run


def measure(ctx):
    """Rows of (name, kind, work, 1-thread s per call, N-thread s per call)."""
    rng = np.random.default_rng(0)
    nt = ctx.threads
    factors = QUICK_FACTORS if ctx.quick else FACTORS
    saved = dict(_config.SERIAL_WORK)
    rows = []
    try:
        for name, kind in ctx.select(SHAPES):
            for f in factors:
                fn, work = problem(name, saved[kind] * f, rng)
                _config.SERIAL_WORK[kind] = saved[kind]
                t0 = time.perf_counter()
                fn()
                calls = max(1, int(BATCH_SECONDS / max(time.perf_counter() - t0, 1e-7)))
                _config.SERIAL_WORK[kind] = 0  # every call on nt threads gets nt threads
                t1, tn = alternate(
                    _batched(fn, 1, calls),
                    _batched(fn, nt, calls),
                    repeats=ctx.repeats,
                    warmup=1,
                    watch=ctx.watch,
                )
                rows.append((name, kind, work, t1 / calls, tn / calls))
    finally:
        _config.SERIAL_WORK.update(saved)
        _config.set_num_threads(nt)
    return rows


def break_even(rows):
    """The smallest work from which N threads win at every larger size timed, or None."""
    win = None
    for *_, work, t1, tn in sorted(rows, key=lambda r: r[2], reverse=True):
        if tn >= t1:
            break
        win = work
    return win


def run(ctx):
    nt = ctx.threads
    print(f"\n## Serial against parallel (float32, 1 thread against N = {nt})\n")
    rows = measure(ctx)
    if not rows:
        print("(no serial problem selected)")
        return []
    print_table(
        HEADERS,
        [
            (
                name,
                kind,
                work,
                f"{work / _config.SERIAL_WORK[kind]:.3g}",
                f"{t1 * 1e6:.1f}",
                f"{tn * 1e6:.1f}",
                f"{tn / t1:.2f}",
                _config.threads_for(work, kind),
            )
            for name, kind, work, t1, tn in rows
        ],
    )
    print()
    if nt == 1:
        print("one thread only (--threads 1 or no OpenMP): no break-even to measure")
        return []
    for name, kind in ctx.select(SHAPES):
        win = break_even([r for r in rows if r[0] == name])
        where = f"from {win} units" if win is not None else "nowhere in the sizes timed"
        print(
            f"{name}: {nt} threads win {where} (SERIAL_WORK[{kind!r}] = "
            f"{_config.SERIAL_WORK[kind]})"
        )
    return []
