"""How this copy of convext was built, and what it runs with: ``build_info()`` and
``show_config()``.

The compile-time part comes from the ``_kernels._cpu_info`` module (the preprocessor's view of
the build: compiler, flags, OpenMP, the SIMD baseline); the instruction set from
``_kernels._isa`` (chosen once at import: CONVEXT_ISA, or the best this CPU runs); the rest is
read at run time.
"""

from __future__ import annotations

import platform
import sys
from typing import IO, Any

import numpy

from ._config import get_num_threads
from ._kernels import _cpu_info, _isa
from ._version import __version__

__all__ = ["build_info", "show_config"]


def build_info() -> dict[str, Any]:
    """Return a dict describing how convext was built and what it is running with.

    Keys: ``version``; ``python`` and ``platform`` (run time); ``cython_version`` and
    ``numpy_build_version`` (what the kernels were compiled with); ``numpy_version`` (run time);
    ``compiler`` and ``cflags`` (convext's own compile flags); ``openmp`` (compiled with
    OpenMP) and ``openmp_spec`` (the ``_OPENMP`` date, 0 without); ``num_threads``
    (``get_num_threads()`` now); ``arch`` and ``simd_baseline`` (the highest SIMD extension
    every kernel may use, fixed at compile time: SSE2 for portable x86-64 wheels);
    ``isa`` (the instruction set every kernel runs: ``'generic'``, ``'avx2'``, ``'avx512'`` or
    ``'neon'``, chosen at import: the ``CONVEXT_ISA`` environment variable, else the best one),
    ``isa_cpu`` (the instruction sets this CPU supports), ``isa_compiled`` (those this build has
    kernels for), ``gemm_kernel`` (the active GEMM micro-kernel: ISA and float32 / float64 register
    tiles) and ``code_path`` (``'gnu'``, or ``'msvc'`` when the kernels were compiled as MSVC
    compiles them: an MSVC build, or ``CONVEXT_MSVC_PATH=1``).
    """
    ci = _cpu_info.compile_info()
    isa = _isa.active_info()
    (smr, snr), (dmr, dnr) = isa["sgemm_tile"], isa["dgemm_tile"]
    return {
        "version": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cython_version": ci["cython_version"],
        "numpy_build_version": ci["numpy_build_version"],
        "numpy_version": numpy.__version__,
        "compiler": ci["compiler"],
        "cflags": ci["cflags"],
        "openmp": ci["openmp"],
        "openmp_spec": ci["openmp_spec"],
        "num_threads": get_num_threads(),
        "arch": ci["arch"],
        "simd_baseline": ci["simd_baseline"],
        "isa": isa["name"],
        "isa_cpu": ", ".join(_isa.cpu_supported()),
        "isa_compiled": ", ".join(_isa.compiled()),
        "gemm_kernel": f"{isa['description']} float32 {smr}x{snr}, float64 {dmr}x{dnr}",
        "code_path": _isa.code_path(),
    }


def show_config(file: IO[str] | None = None) -> None:
    """Print ``build_info()``, one ``key: value`` line each (to ``file``, default stdout)."""
    info = build_info()
    width = max(len(k) for k in info)
    out = sys.stdout if file is None else file
    print(f"convext {info['version']}", file=out)
    for key, value in info.items():
        print(f"  {key:<{width}} : {value}", file=out)
