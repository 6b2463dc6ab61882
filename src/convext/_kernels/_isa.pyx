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

from ._types cimport idx_t

cdef extern from "isa/cvx_isa.h" nogil:
    int cvx_isa_cpu_supports(int isa)
    const cvx_kernel_table *cvx_isa_compiled(int isa)
    const char *cvx_isa_name(int isa)
    int cvx_isa_code_path_msvc()
    void cvx_cpu_cache(long long *l2_bytes, int *amd, int *family)
    idx_t cvx_direct_band_bytes
    idx_t cvx_direct_1x1_band_bytes
    enum: CVX_DIRECT_BAND_MAX_BYTES
    enum: CVX_DIRECT_MIN_BAND_ROWS
    enum: CVX_DIRECT_PBMAX
    idx_t cvx_direct_band_rows_of(idx_t row, idx_t reach, idx_t nbytes, idx_t elem_size,
                                  int unfolds)
    enum: CVX_DIRECT_1X1_BAND_BYTES
    idx_t cvx_vt_block_bytes
    enum: CVX_VT_BLOCK_BYTES

cdef const cvx_kernel_table *_active = NULL


cdef const cvx_kernel_table *isa_table() noexcept nogil:
    return _active


cdef idx_t direct_fwd_scratch(cvx_direct_geom *g) noexcept nogil:
    return cvx_direct_fwd_scratch(g, cvx_direct_band_bytes)


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
    """The active table's facts: name, description, lanes, GEMM tiles, whether the FMA is fused,
    which kernels work in registers on its lane operations (dw_lane_rows: the depthwise
    stride-1 rows, flat planes and max pool; dw_s2_lanes_min_ow: the depthwise stride-2 rows
    from this output width in float32 and float64, -1 never)."""
    return {
        "name": _active.name.decode(),
        "description": _active.description.decode(),
        "f32_lanes": _active.f32_lanes,
        "f64_lanes": _active.f64_lanes,
        "sgemm_tile": (_active.sgemm_mr, _active.sgemm_nr),
        "dgemm_tile": (_active.dgemm_mr, _active.dgemm_nr),
        "fma_fused": bool(_active.fma_fused),
        "dw_lane_rows": bool(_active.dw_lane_rows),
        "dw_s2_lanes_min_ow": (_active.dw_s2_lanes_min_ow_f, _active.dw_s2_lanes_min_ow_d),
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


cdef dict _read_cpu_cache():
    cdef long long l2 = 0
    cdef int amd = 0, family = 0
    cvx_cpu_cache(&l2, &amd, &family)
    return {"l2_bytes": int(l2), "amd": bool(amd), "family": int(family)}


_CPU_CACHE = _read_cpu_cache()  # read once, at import


def cpu_cache():
    """{"l2_bytes": the calling core's L2 cache in bytes, "amd": whether the CPU is AMD's,
    "family": its family number (AMD's Zen 3 and Zen 4: 25, Zen 5: 26)}, read with cpuid on x86
    at import (0 and False elsewhere, or where the CPU does not say)."""
    return dict(_CPU_CACHE)


def fast_l3(l2_bytes, amd):
    """Whether a core's reads beyond its L2 come fast enough from the L3 for the routes of
    functional/_routes.py (its SLOW_L3 is the opposite): on AMD's CPUs with an L2 of at least
    DIRECT_BAND_AMD_MIN_L2 (Zen 4, Zen 5) and where the L2 is unknown; not on a Sapphire Rapids
    Xeon or a Zen 3 (the measurements there)."""
    return bool(l2_bytes <= 0 or (amd and l2_bytes >= DIRECT_BAND_AMD_MIN_L2))


# The direct forward unfolds the input in bands of at most this many bytes, and every filter
# block of the work item runs over a band while it is in cache (kernels.inc, cvx_direct_fwd). The
# best band depends on the caches, not on the instruction set. On a Zen 5 (1 MB L2, whose L3
# serves a whole band fast) 4 MB was fastest: 1 MB was 8-9% slower on 64 channels at 56x56 and
# 128-512 kB slower still (each band unfolds the kernel's reach again). On a Sapphire Rapids Xeon
# (2 MB L2, a slow L3 per core) 4 MB bands stream every filter block's rows from the L3: at
# 1 MB, float32 batch 4, the direct forward of 64x56x56 3x3 ran at 78 instead of 47 GFLOP/s on
# one thread (114 / 67 on two), 256x56x56 -> 64 1x1 at 42 / 20 (65 / 37), 32x112x112 3x3 at
# 66 / 28 (107 / 51); 512 kB was no faster than 1 MB. On a Zen 3 (512 kB L2, an L3 shared with
# other guests of its host) 256 kB was the fastest band, 4 MB up to 2x slower (float32, AVX2,
# 2 threads, ms 4 MB / 256 kB, min of 25 alternated calls: 32x128x128 3x3 batch 4 22.6 / 14.0,
# 32x64x64 3x3 dilation 2 batch 8 8.6 / 7.8, 64x56x56 3x3 batch 4 12.5 / 12.6; 384 kB as 256 kB,
# 128 kB up to 1.7x slower). On a Zen 4 (family 25, 1 MB L2, a VM sharing its L3 with other
# guests) the 4 MB band lost wherever an image's unfolded rows outgrow the L2, and half the L2
# was as fast elsewhere (float32, weights packed once, medians of alternated calls, ms 4 MB /
# 512 kB): batch 8 on two threads, ResNet's 7x7 stride-2 stem 10.7-11.6 / 9.8-11.4,
# MobileNetV2's 3 -> 32 3x3 stride 2 1.19-1.87 / 1.14-1.74 (batch 16: 3.29-4.70 / 2.91-3.15),
# 3x224x224 -> 64 3x3 9.6-10.1 / 9.0-9.1, 16x112x112 -> 32 3x3 5.1-5.2 / 4.8, 64x56x56 -> 64
# 3x3 8.8-8.9 / 8.8-9.2; batch 1 on one thread with the input evicted before each call, the
# stem 2.61 / 2.32 (two threads 1.28 / 1.20), 64x56x56 -> 64 2.10-2.11 / 2.12-2.13; 256 kB lost
# 4-8% on 64x56x56 -> 64 and 24x56x56 -> 48 5x5 stride 2. So: 4 MB on AMD's CPUs from the Zen
# 5's family (DIRECT_BAND_AMD_MIN_FAMILY) on with an L2 of at least DIRECT_BAND_AMD_MIN_L2,
# and where the L2 is unknown; else half the L2, within [DIRECT_BAND_MIN, DIRECT_BAND_MAX]. The
# band changes no result bit. But a band that unfolds its rows (every kernel but a 1x1 read in
# place) holds at least DIRECT_MIN_BAND_ROWS output rows within DIRECT_BAND_MAX whatever the
# band (isa/cvx_isa.h, cvx_direct_band_rows_of): on that Zen 4, 512 kB held a single output row of
# a wide image, or a single strip, each unfolding the kernel's reach again (float32, one thread,
# batch 1, GFLOP/s at bands of 512 kB / 1 MB / 2 MB / 4 MB, before the floor): 64x320x320 -> 32
# 3x3 44 / 83 / 93 / 95, 32x320x320 -> 32 80 / 92 / 94 / 94, 64x160x160 -> 32 82 / 91 / 91 / 94;
# where 512 kB held more rows no band was faster (16x320x320 -> 32 80 / 78 / 78 / 78, 64x56x56
# -> 64 106 / 106 / 104 / 107).
DIRECT_BAND_MIN = 256 * 1024
DIRECT_BAND_MAX = int(CVX_DIRECT_BAND_MAX_BYTES)
# (a band that unfolds its rows holds at least DIRECT_MIN_BAND_ROWS output rows within
# DIRECT_BAND_MAX: direct_band_rows)
DIRECT_MIN_BAND_ROWS = int(CVX_DIRECT_MIN_BAND_ROWS)
# pixels of the widest strip of the direct forward's register tiles (over every ISA)
DIRECT_STRIP_MAX = int(CVX_DIRECT_PBMAX)
DIRECT_BAND_AMD_MIN_L2 = 1024 * 1024
DIRECT_BAND_AMD_MIN_FAMILY = 26


def direct_band_for(l2_bytes, amd, family):
    """The direct forward's band in bytes for a CPU with this L2 (0: unknown), AMD's or not, of
    this family (cpu_cache)."""
    if l2_bytes <= 0 or (fast_l3(l2_bytes, amd) and family >= DIRECT_BAND_AMD_MIN_FAMILY):
        return DIRECT_BAND_MAX
    return min(max(l2_bytes // 2, DIRECT_BAND_MIN), DIRECT_BAND_MAX)


def direct_band_bytes():
    """The band of the direct forward in use (chosen at import by direct_band_for)."""
    return int(cvx_direct_band_bytes)


def direct_band_rows(idx_t row, idx_t reach, idx_t nbytes, idx_t itemsize):
    """Output rows of one band of nbytes of the direct forward that unfolds rows of U of `row`
    elements of itemsize bytes, for a kernel reaching `reach` rows below an output row
    (isa/cvx_isa.h, cvx_direct_band_rows_of: at least DIRECT_MIN_BAND_ROWS within
    DIRECT_BAND_MAX); 0 when not one fits."""
    if row <= 0 or reach < 0 or nbytes < 0 or itemsize not in (4, 8):
        raise ValueError(
            f"row must be positive, reach and nbytes not negative and itemsize 4 or 8, got "
            f"{row}, {reach}, {nbytes}, {itemsize}"
        )
    return int(cvx_direct_band_rows_of(row, reach, nbytes, itemsize, 1))


def set_direct_band_bytes(n):
    """Set the band of the direct forward (tests and benchmarks: no convolution may be running;
    results do not change). Returns the previous value."""
    global cvx_direct_band_bytes
    if type(n) is not int or not DIRECT_BAND_MIN // 16 <= n <= 16 * DIRECT_BAND_MAX:
        raise ValueError(
            f"band must be an int in [{DIRECT_BAND_MIN // 16}, {16 * DIRECT_BAND_MAX}], got {n!r}"
        )
    old = int(cvx_direct_band_bytes)
    cvx_direct_band_bytes = n
    return old


cvx_direct_band_bytes = direct_band_for(**cpu_cache())


# A 1x1 kernel read in place (stride 1, no padding) has no unfolded copy, so a band costs no
# work again, only where its input rows are read from: every filter block runs over a band's
# rows, which a 4 MB band reads from the L3 once per filter block. Half the L2 keeps them in it
# (at most the band above, which the tests make small). Measured on a Zen 4 (1 MB L2, float32,
# one thread, input evicted before each call, medians of 200 alternated calls, us at a band of
# 4096 / 512 / 256 / 128 kB): 32x112x112 -> 16 413 / 338 / 338 / 349, 32x112x112 -> 32 596 /
# 455 / 444 / 472, 16x112x112 -> 96 809 / 729 / 718 / 731, 144x56x56 -> 24 419 / 340 / 346 /
# 360; 576x14x14 -> 96 and 960x7x7 -> 160 within 2% (one band at 512 kB); two threads 32x112x112
# -> 16 217 / 199 / 198 / 200, -> 32 296 / 264 / 266 / 269; with the input in cache before each
# call, within 2%. The default (CVX_DIRECT_1X1_BAND_BYTES, 512 kB) where the L2 is unknown.
def direct_1x1_band_for(l2_bytes):
    """The direct forward's band in bytes for a 1x1 kernel read in place, for a CPU with this L2
    (0: unknown)."""
    if l2_bytes <= 0:
        return int(CVX_DIRECT_1X1_BAND_BYTES)
    return min(max(l2_bytes // 2, DIRECT_BAND_MIN), DIRECT_BAND_MAX)


def direct_1x1_band_bytes():
    """The band of the direct forward's 1x1 kernels read in place (chosen at import by
    direct_1x1_band_for)."""
    return int(cvx_direct_1x1_band_bytes)


cvx_direct_1x1_band_bytes = direct_1x1_band_for(cpu_cache()["l2_bytes"])


# The valid-taps forward runs every tile of a work item over one block of channels at a time
# (isa/valid_taps.inc): the block's packed weights and the input rows a row of its tiles reads
# are meant to stay in the L2 cache, beside the item's sums, while the tiles stream them to the
# registers. The block used to hold 256 kB of weights alone, sized for a 1 MB L2; on a Zen 3
# (512 kB L2, AVX2) 512 channels of a 3x3 kernel then overflowed the L2 and ran at 58 GFLOP/s on
# one thread. Float32, 3x3 with padding, batch 1, medians of 15 alternated calls in one process,
# ms at a budget of 48 / 64 / 96 / 128 / 192 / 1024 kB (both counted): 512x28x28 -> 512 one
# thread 47.6 / 49.1 / 52.6 / 52.0 / 50.8 / 67.8, two threads 31.8 / 32.6 / 33.5 / 34.8 / 36.4 /
# 45.9; 256x56x56 -> 256 one thread 48.4 / 53.6 / 51.5 / 52.4 / 55.3 / 58.8; 64x56x56 -> 64 and
# 128x28x28 -> 128 even within 5%. On a Zen 4 (1 MB L2, AVX-512: blocks of 64 filters, four
# times the weights per channel) a quarter of the L2 was faster than an eighth (float32, 3x3
# with padding, medians of 25 alternated calls, ms at 128 / 256 kB): batch 1 on one thread
# 64x56x56 -> 64 2.06 / 2.03 (input evicted: 2.10 / 2.08), 128x28x28 -> 128 1.99 / 1.96,
# 512x7x7 -> 512 1.95 / 1.93; on two threads 64x56x56 -> 64 1.14 / 1.11, 256x14x14 -> 256 0.97
# / 0.96, 512x7x7 -> 512 1.02 / 0.97; batch 16 on two threads 256x56x56 -> 256 273 / 270,
# 512x28x28 -> 512 263 / 260; half the L2 as a quarter, and 64, 32 and 16 kB 1-12% slower than
# 128. So an eighth of the L2, a quarter for the AVX-512 kernels (the default, where the L2 is
# unknown: CVX_VT_BLOCK_BYTES of isa/cvx_base.h); at least VT_BLOCK_MIN.
VT_BLOCK_MIN = 32 * 1024


def vt_block_for(l2_bytes, isa):
    """The valid-taps forward's channel-block budget in bytes for a CPU with this L2 (0:
    unknown) running the kernels of instruction set ``isa`` (a name of known())."""
    if l2_bytes <= 0:
        return int(CVX_VT_BLOCK_BYTES)
    return max(l2_bytes // (4 if isa == "avx512" else 8), VT_BLOCK_MIN)


def vt_block_bytes():
    """The valid-taps forward's channel-block budget in use (set at import)."""
    return int(cvx_vt_block_bytes)


def set_vt_block_bytes(n):
    """Set the valid-taps forward's channel-block budget in bytes (tests and benchmarks: no
    convolution may be running; results do not change). Returns the previous value."""
    global cvx_vt_block_bytes
    if type(n) is not int or not 1024 <= n <= 1 << 30:
        raise ValueError(f"bytes must be an int in [1024, {1 << 30}], got {n!r}")
    old = int(cvx_vt_block_bytes)
    cvx_vt_block_bytes = n
    return old


cvx_vt_block_bytes = vt_block_for(cpu_cache()["l2_bytes"], active())
