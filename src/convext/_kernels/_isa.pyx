"""The instruction-set layer (isa/cvx_isa.h): the one copy of every C kernel, and the choice of
the instruction set, made once, when this module is imported.

The kernels (isa/kernels.inc) are compiled once per ISA (isa/isa_<isa>.c, each with its own
compiler flags) and linked into this extension only; the other kernel modules call them through
isa_table() (_isa.pxd), which returns the active table. The active ISA is the environment
variable CONVEXT_ISA (generic, avx2, avx512 or neon; empty or "auto": the best one) read at import,
refused with a ValueError naming CONVEXT_ISA when this build lacks that ISA or this CPU cannot run
it; otherwise the best ISA that is both compiled and supported by the CPU.
"""
import os

cdef extern from "isa/cvx_isa.h" nogil:
    int cvx_isa_cpu_supports(int isa)
    const cvx_kernel_table *cvx_isa_compiled(int isa)
    const char *cvx_isa_name(int isa)
    int cvx_isa_code_path_msvc()

cdef const cvx_kernel_table *_active = NULL


cdef const cvx_kernel_table *isa_table() noexcept nogil:
    return _active


def known():
    """Every ISA name the layer knows, in enum order (generic first)."""
    return [cvx_isa_name(i).decode() for i in range(CVX_ISA_COUNT)]


def compiled():
    """The ISAs whose kernels this build contains."""
    return [cvx_isa_name(i).decode() for i in range(CVX_ISA_COUNT) if cvx_isa_compiled(i) != NULL]


def cpu_supported():
    """The ISAs this CPU (and OS) can run, whether compiled or not."""
    return [cvx_isa_name(i).decode() for i in range(CVX_ISA_COUNT) if cvx_isa_cpu_supports(i)]


def available():
    """The ISAs both compiled and supported by this CPU: the values CONVEXT_ISA accepts."""
    return [
        cvx_isa_name(i).decode()
        for i in range(CVX_ISA_COUNT)
        if cvx_isa_compiled(i) != NULL and cvx_isa_cpu_supports(i)
    ]


def code_path():
    """'msvc' when the kernels were compiled as MSVC compiles them (MSVC, or CONVEXT_MSVC_PATH=1),
    'gnu' when they use the GNU extensions of gcc/clang."""
    return "msvc" if cvx_isa_code_path_msvc() else "gnu"


def active():
    """The name of the ISA in use (chosen at import)."""
    return _active.name.decode()


def active_info():
    """The active table's facts: name, description, lanes, GEMM tiles, whether the FMA is fused."""
    return {
        "name": _active.name.decode(),
        "description": _active.description.decode(),
        "f32_lanes": _active.f32_lanes,
        "f64_lanes": _active.f64_lanes,
        "sgemm_tile": (_active.sgemm_mr, _active.sgemm_nr),
        "dgemm_tile": (_active.dgemm_mr, _active.dgemm_nr),
        "fma_fused": bool(_active.fma_fused),
    }


def _choose():
    """The index of the ISA to use: CONVEXT_ISA if set, else the best available."""
    cdef int i
    names = known()
    ok = available()
    value = os.environ.get("CONVEXT_ISA", "").strip().lower()
    if value in ("", "auto"):
        return max(names.index(n) for n in ok)  # the enum lists each arch's ISAs best last
    if value not in names:
        raise ValueError(
            f"CONVEXT_ISA={os.environ['CONVEXT_ISA']!r} is not an instruction set convext knows; "
            f"use one of {', '.join(names)} (or leave it unset: the best this CPU runs). "
            f"This CPU and build run: {', '.join(ok)}"
        )
    if value not in ok:
        i = names.index(value)
        why = "this CPU does not support it" if not cvx_isa_cpu_supports(i) else \
            "this build has no kernels for it"
        raise ValueError(
            f"CONVEXT_ISA={value!r} cannot be used: {why}. "
            f"This CPU and build run: {', '.join(ok)} (unset CONVEXT_ISA for the best of them)"
        )
    return names.index(value)


_active = cvx_isa_compiled(_choose())
