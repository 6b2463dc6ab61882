"""``python -m convext bench``: convext against PyTorch's CPU backend, same process, same threads.

The one benchmark entry point (docs/benchmarks.md)::

    python -m convext bench [conv|pool|network|layers|all|routes|serial ...] [--quick] [--threads N]
                            [--repeats N] [--shapes NAME,...] [--no-torch] [--default-malloc]

Each run first measures the machine's float32 FMA peak (convext.bench.peak) for 1, 2, 4 ... N
threads, the ceiling the convolution figures are given as a fraction of; then the families; then
the peak again, and says whether the machine was shared with other load (convext.bench._common
.LoadWatch). Without torch (or with --no-torch) only convext is timed.

Two more commands re-measure the limits the code chooses by, convext only (not part of ``all``):
``routes`` times every convolution route that accepts each shape (convext.bench.routes: the
direct-route limits of functional/_routes.py) and ``serial`` times small problems on 1 and N
threads (convext.bench.serial: the thresholds of _config.SERIAL_WORK).
"""

import importlib

from .._cli_args import int_in
from .._config import MAX_THREADS

FAMILIES = {
    "conv": "convext.bench.conv",
    "pool": "convext.bench.pool",
    "network": "convext.bench.network",
    "layers": "convext.bench.layers",
}
# the limits' re-measurements: convext only, run when named, not part of "all"
LIMITS = {
    "routes": "convext.bench.routes",
    "serial": "convext.bench.serial",
}
MODULES = {**FAMILIES, **LIMITS}
# timed runs per figure: the median steadies within tens of runs (the default is 7), and the
# largest figures take seconds each, so 1000 is hours for a family; more is a typo, not a
# measurement (10**11 timed for ever)
MAX_REPEATS = 1_000


def add_arguments(p):
    p.add_argument(
        "families",
        nargs="*",
        default=[],
        metavar="FAMILY",
        help=f"which to run (default: all): {', '.join(FAMILIES)} or all; or the limits' "
        f"re-measurements {', '.join(LIMITS)}",
    )
    p.add_argument(
        "--threads",
        type=int_in(1, MAX_THREADS),
        default=None,
        help="threads for both libraries (default: convext's)",
    )
    p.add_argument(
        "--repeats",
        type=int_in(1, MAX_REPEATS),
        default=7,
        help=f"timed runs per figure (median; default 7, at most {MAX_REPEATS})",
    )
    p.add_argument(
        "--quick", action="store_true", help="3 repeats and short warm-ups: a smoke test"
    )
    p.add_argument(
        "--shapes",
        default=None,
        metavar="NAME,...",
        help="only these shapes (names from the tables, e.g. lenet-c1,pool-small,lenet)",
    )
    p.add_argument("--no-torch", action="store_true", help="time convext only")
    p.add_argument(
        "--default-malloc",
        action="store_true",
        help="leave glibc's malloc thresholds at their defaults (see docs/benchmarks.md)",
    )


def _families(names):
    for name in names:
        if name not in MODULES and name != "all":
            raise SystemExit(
                f"unknown benchmark family {name!r}; choose from {', '.join(FAMILIES)}, all, "
                f"{', '.join(LIMITS)}"
            )
    if not names or "all" in names:
        return list(FAMILIES) + [n for n in dict.fromkeys(names) if n in LIMITS]
    return list(dict.fromkeys(names))


def _shapes(text, families):
    if text is None:
        return None
    wanted = frozenset(s.strip() for s in text.split(",") if s.strip())
    known = set()
    for fam in families:
        known.update(s[0] for s in importlib.import_module(MODULES[fam]).SHAPES)
    unknown = sorted(wanted - known)
    if unknown or not wanted:
        raise SystemExit(
            f"unknown shape(s) {', '.join(unknown) or '(none given)'}; "
            f"choose from {', '.join(sorted(known))}"
        )
    return wanted


def run(args):
    from .._config import get_num_threads, set_num_threads
    from . import peak
    from ._common import Context, LoadWatch, optional_torch, print_table, steady_allocator

    names = _families(args.families)
    shapes = _shapes(args.shapes, names)
    torch = optional_torch(args.no_torch)
    if args.threads is not None:
        set_num_threads(args.threads)
    nt = get_num_threads()
    watch = LoadWatch(nt)
    if torch is not None:
        torch.set_num_threads(nt)
        print(f"threads: {nt} (convext and torch {torch.__version__})")
    else:
        why = "--no-torch" if args.no_torch else "torch is not installed"
        print(f"threads: {nt} (convext only: {why})")
    allocator = None if args.default_malloc else steady_allocator()
    print(allocator or "allocator: the C library's malloc with its default settings")

    print(f"\n## Ceiling: float32 FMA peak ({peak.isa()}, {peak.chains()} chains per thread)\n")
    peaks = peak.measure_table(nt, args.quick)
    print_table(
        ("threads", "GFLOP/s", "per thread"),
        [(n, f"{gf:.1f}", f"{gf / n:.1f}") for n, gf in peaks.items()],
    )
    watch.check_scaling(peaks)
    ctx = Context(
        torch=torch,
        threads=nt,
        repeats=3 if args.quick else args.repeats,
        quick=args.quick,
        shapes=shapes,
        ceiling=peaks[nt],
        ceiling_estimate=peak.is_estimate(),
        watch=watch,
    )
    for name in names:
        importlib.import_module(MODULES[name]).run(ctx)
    end = peak.measure(nt, args.quick)
    print(f"\nFMA peak at {nt} threads: {peaks[nt]:.1f} GFLOP/s at the start, {end:.1f} at the end")
    watch.check_drift(peaks[nt], end)
    watch.report()
    return 0
