"""``python -m convext bench``: convext against PyTorch's CPU backend, same process, same threads.

Families: ``conv`` (benchmarks/bench_conv.py), ``pool`` (benchmarks/bench_pool.py), and the
others registered in FAMILIES.
"""
import importlib

FAMILIES = {"conv": "convext.bench.conv", "pool": "convext.bench.pool",
            "network": "convext.bench.network"}


def add_arguments(p):
    p.add_argument("families", nargs="*", default=[], metavar="FAMILY",
                   help=f"which to run (default: all): {', '.join(FAMILIES)}")
    p.add_argument("--threads", type=int, default=None,
                   help="threads for both libraries (default: convext's default)")
    p.add_argument("--repeats", type=int, default=7, help="timed runs per figure (median)")
    p.add_argument("--quick", action="store_true", help="fewer repeats, for a smoke test")


def run(args):
    from .._config import get_num_threads, set_num_threads
    from ._common import require_torch
    torch = require_torch()
    if args.threads is not None:
        set_num_threads(args.threads)
    nt = get_num_threads()
    torch.set_num_threads(nt)
    names = args.families or list(FAMILIES)
    for name in names:
        if name not in FAMILIES:
            raise SystemExit(f"unknown benchmark family {name!r}; choose from {', '.join(FAMILIES)}")
    print(f"threads: {nt} (convext and torch {torch.__version__})")
    for name in names:
        importlib.import_module(FAMILIES[name]).run(args)
    return 0
