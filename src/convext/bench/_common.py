"""Timing, tables and the load watch shared by the benchmark families.

Rules (docs/benchmarks.md): convext and torch run in the same process with the same thread count,
alternating run by run (A B A B ...), after a warm-up; the figure is the median. The ceiling is the
machine's float32 FMA peak measured in the same run (convext.bench.peak). Every timed series
records its spread, and LoadWatch turns the spreads, the load average and the peak measurements
into a warning when the run shared the machine with other load.
"""

import contextlib
import ctypes
import dataclasses
import os
import sys
import time

import numpy as np

# Warn when ...
LOAD_IDLE = 0.5  # ... the 1-minute load average exceeds this (plus this run's threads)
SPREAD_LIMIT = 0.25  # ... the median (max - min) / median of the timed series exceeds this
SCALING_LIMIT = 0.8  # ... n threads reach less than this fraction of n x one thread's FMA peak
DRIFT_LIMIT = 0.15  # ... the FMA peak at the end differs from the start by more than this


# glibc's mallopt parameters (malloc.h) and the values steady_allocator sets
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_MMAP_THRESHOLD = 32 << 20  # glibc's largest allowed value on 64-bit machines
_TRIM_THRESHOLD = 1 << 30


def steady_allocator():
    """Stop glibc from handing freed blocks of up to 32 MiB back to the kernel; returns a line
    for the report, or None where this is not glibc.

    By default glibc serves large blocks with mmap and its thresholds move with the program's
    frees, so when two libraries alternate, a block one of them frees can be unmapped and the
    other's next output array is page-faulted back in while its threads run: a convolution
    then took 40-50% longer than alone, for either library, depending only on the order of calls.
    Fixed thresholds keep that memory in the heap, so each figure is the library's steady state.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return None
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    if not (
        mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD) and mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD)
    ):
        return None
    return (
        f"allocator: glibc mmap threshold {_MMAP_THRESHOLD >> 20} MiB and trim threshold "
        f"{_TRIM_THRESHOLD >> 20} MiB, fixed (docs/benchmarks.md, How it measures)"
    )


def optional_torch(disabled=False):
    """torch, or None when it is not installed or ``disabled`` (then only convext is timed)."""
    if disabled:
        return None
    try:
        import torch
    except ImportError:
        return None
    return torch


def no_grad(torch):
    """torch.no_grad(), or nothing without torch."""
    return torch.no_grad() if torch is not None else contextlib.nullcontext()


@dataclasses.dataclass
class Context:
    """What every family's run() gets: the options and the run's shared measurements."""

    torch: object  # the torch module, or None
    threads: int
    repeats: int
    quick: bool
    shapes: frozenset | None  # names to run, None for all
    ceiling: float  # FMA peak at `threads` threads, GFLOP/s
    ceiling_estimate: bool  # True when the FMA loop is generic C (no ISA-specific kernel)
    watch: "LoadWatch"

    def select(self, shapes):
        """The entries of a family's SHAPES (name first) that this run asks for."""
        return [s for s in shapes if self.shapes is None or s[0] in self.shapes]


class LoadWatch:
    """Evidence that the machine was shared during the run; warnings() says what it saw."""

    def __init__(self, threads):
        self.threads = threads
        self.spreads = []
        self.impossible = []
        self.notes = []
        self.load_start = _loadavg()

    def record_spread(self, samples):
        med = float(np.median(samples))
        if len(samples) > 1 and med > 0:
            self.spreads.append((max(samples) - min(samples)) / med)

    def check_scaling(self, peaks):
        """peaks: {threads: GFLOP/s}. Flags threads that do not add their share of the peak."""
        one = peaks.get(1)
        for n, gf in sorted(peaks.items()):
            if one and n > 1 and gf < SCALING_LIMIT * n * one:
                self.notes.append(
                    f"{n} threads reach {gf / one:.2f}x one thread's FMA peak (expected ~{n}x): "
                    f"the cores are shared with other load (or are hyper-threads of one core)"
                )

    def check_drift(self, start, end):
        if start > 0 and abs(end - start) / start > DRIFT_LIMIT:
            self.notes.append(
                f"the FMA peak moved from {start:.1f} to {end:.1f} GFLOP/s during the run"
            )

    def flag_impossible(self, what):
        self.impossible.append(what)

    def warnings(self):
        out = []
        cpus = _cpu_count()
        if self.load_start is not None and self.load_start > LOAD_IDLE:
            out.append(
                f"load average {self.load_start:.2f} on {cpus} CPUs before the run started "
                f"(other processes were running)"
            )
        end = _loadavg()
        if end is not None and end > self.threads + LOAD_IDLE:
            out.append(
                f"load average {end:.2f} on {cpus} CPUs at the end "
                f"(this run accounts for at most {self.threads})"
            )
        out.extend(self.notes)
        if self.spreads:
            spread = float(np.median(self.spreads))
            if spread > SPREAD_LIMIT:
                out.append(
                    f"repeats of one figure differ by {spread:.0%} (median (max-min)/median)"
                )
        if self.impossible:
            out.append(
                f"{len(self.impossible)} figure(s) above the measured FMA peak, which is "
                f"impossible: {', '.join(self.impossible[:6])}"
                + (" ..." if len(self.impossible) > 6 else "")
            )
        return out

    def report(self):
        """Print the verdict; returns the warnings."""
        warns = self.warnings()
        print("\n## Machine load\n")
        if not warns:
            print("no sign of other load (load average, spread of repeats, FMA peak scaling)")
            return warns
        print("WARNING: this run shared the machine with other load; the figures above are not")
        print("reliable (rerun on an idle machine):")
        for w in warns:
            print(f"  - {w}")
        return warns


def _loadavg():
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):  # Windows
        return None


def _cpu_count():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def alternate(fa, fb, repeats=7, warmup=2, watch=None):
    """Median seconds of fa and fb (None: not timed, nan), run alternately after `warmup` calls
    of each. The spread of each series goes to `watch`."""
    for _ in range(warmup):
        fa()
        if fb is not None:
            fb()
    ta, tb = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fa()
        t1 = time.perf_counter()
        if fb is not None:
            fb()
        t2 = time.perf_counter()
        ta.append(t1 - t0)
        tb.append(t2 - t1)
    if watch is not None:
        watch.record_spread(ta)
        if fb is not None:
            watch.record_spread(tb)
    return float(np.median(ta)), float(np.median(tb)) if fb is not None else float("nan")


def geomean(values):
    values = [v for v in values if v > 0]
    return float(np.exp(np.mean(np.log(values)))) if values else float("nan")


def print_table(headers, rows, file=None):
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) for i, h in enumerate(headers)]
    line = "| " + " | ".join(str(h).ljust(w) for h, w in zip(headers, widths, strict=True)) + " |"
    print(line, file=file)
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|", file=file)
    for r in rows:
        print(
            "| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) + " |",
            file=file,
        )


def ratio_table(rows, rate_name, digits, family, ctx, peak_flops=False):
    """Print rows of (shape, pass, convext s, torch s, work per call) as a table with ms, the
    rate (work per second, in units of 1e9 called ``rate_name``) and convext/torch (the torch
    columns only when torch is timed); with ``peak_flops`` also each rate as a fraction of the
    FMA peak, marked ``!`` (and reported to the load watch) above 100%. Then the family's
    geometric mean and worst ratio. Returns the ratios (empty without torch)."""
    with_torch = ctx.torch is not None
    headers = ["shape", "pass", "convext ms"]
    if with_torch:
        headers.append("torch ms")
    headers.append(f"convext {rate_name}")
    if with_torch:
        headers += [f"torch {rate_name}", "convext/torch"]
    if peak_flops:
        headers.append("convext % peak")
    table, ratios = [], []
    for name, label, ta, tb, work in rows:
        ra, rb = work / ta / 1e9, work / tb / 1e9
        row = [name, label, f"{ta * 1e3:.3f}"]
        if with_torch:
            row.append(f"{tb * 1e3:.3f}")
        row.append(f"{ra:.{digits}f}")
        if with_torch:
            ratios.append(ta / tb)
            row += [f"{rb:.{digits}f}", f"{ta / tb:.2f}"]
        if peak_flops:
            frac = ra / ctx.ceiling
            row.append(f"{frac:.0%}" + ("!" if frac > 1 else ""))
            for lib, r in (("convext", ra), ("torch", rb)):
                if r > ctx.ceiling and not ctx.ceiling_estimate:
                    ctx.watch.flag_impossible(f"{lib} {name} {label} {r / ctx.ceiling:.0%}")
        table.append(row)
    print_table(headers, table)
    print()
    if ratios:
        print(
            f"{family} geometric mean convext/torch: {geomean(ratios):.2f}; "
            f"worst: {max(ratios):.2f}"
        )
    return ratios
