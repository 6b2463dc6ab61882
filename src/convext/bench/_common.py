"""Timing helpers shared by the benchmark families.

Rules (see BENCHMARKS.md): convext and torch run in the same process with the same thread count,
alternating run by run (A B A B ...), after a warm-up; the figure is the median.
"""
import time

import numpy as np


def require_torch():
    try:
        import torch
    except ImportError:
        raise SystemExit("convext bench needs PyTorch to compare against: "
                         "pip install 'convext[bench]'") from None
    return torch


def alternate(fa, fb, repeats=7, warmup=2, min_time=0.0):
    """Median seconds of fa and fb, run alternately after `warmup` calls of each."""
    for _ in range(warmup):
        fa()
        fb()
    ta, tb = [], []
    start = time.perf_counter()
    i = 0
    while i < repeats or (time.perf_counter() - start < min_time and i < 100):
        t0 = time.perf_counter()
        fa()
        t1 = time.perf_counter()
        fb()
        t2 = time.perf_counter()
        ta.append(t1 - t0)
        tb.append(t2 - t1)
        i += 1
    return float(np.median(ta)), float(np.median(tb))


def sgemm_gflops(n=2048, repeats=5):
    """The ceiling: numpy's float32 matrix multiply at n x n, in GFLOP/s."""
    a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
    b = a.copy()
    a @ b
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        ts.append(time.perf_counter() - t0)
    return 2 * n ** 3 / float(np.median(ts)) / 1e9


def geomean(values):
    values = [v for v in values if v > 0]
    return float(np.exp(np.mean(np.log(values)))) if values else float("nan")


def print_table(headers, rows, file=None):
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) for i, h in enumerate(headers)]
    line = "| " + " | ".join(str(h).ljust(w) for h, w in zip(headers, widths)) + " |"
    print(line, file=file)
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|", file=file)
    for r in rows:
        print("| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths)) + " |", file=file)


def ratio_table(rows, rate_name, digits, family):
    """Print rows of (shape, pass, convext s, torch s, work per call) as a table with ms, the
    rate (work per second, in units of 1e9 called ``rate_name``) and convext/torch; then the
    family's geometric mean and worst ratio. Returns the ratios."""
    table, ratios = [], []
    for name, label, ta, tb, work in rows:
        ratios.append(ta / tb)
        table.append((name, label, f"{ta * 1e3:.3f}", f"{tb * 1e3:.3f}",
                      f"{work / ta / 1e9:.{digits}f}", f"{work / tb / 1e9:.{digits}f}",
                      f"{ta / tb:.2f}"))
    print_table(("shape", "pass", "convext ms", "torch ms", f"convext {rate_name}",
                 f"torch {rate_name}", "convext/torch"), table)
    print()
    print(f"{family} geometric mean convext/torch: {geomean(ratios):.2f}; "
          f"worst: {max(ratios):.2f}")
    return ratios
