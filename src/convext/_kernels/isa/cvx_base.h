/* Portability macros and blocking constants shared by every file of the instruction-set layer.
 *
 * Code paths (build_info()['code_path']):
 *   CVX_GNU = 1  gcc or clang with GNU extensions: always_inline, __restrict__, __builtin_prefetch and
 *                the unroll pragma (GCC unroll / clang unroll).
 *   CVX_GNU = 0  MSVC, and any compiler given -DCVX_MSVC_PATH (setup.py's CONVEXT_MSVC_PATH=1): only
 *                ISO C11 plus the vendor intrinsics of <immintrin.h>; MSVC's __forceinline and
 *                __restrict are its only extensions, replaced by plain `static inline` / `restrict`
 *                under CVX_MSVC_PATH. No GNU attribute, vector type, builtin or _Pragma is used.
 * Everything else (the kernels in kernels.inc, the SIMD helpers) is the same text on both paths.
 */
#ifndef CVX_BASE_H
#define CVX_BASE_H

#include <stddef.h>
#include <stdint.h>

typedef ptrdiff_t cvx_index;

#if (defined(__GNUC__) || defined(__clang__)) && !defined(_MSC_VER) && !defined(CVX_MSVC_PATH)
#define CVX_GNU 1
#else
#define CVX_GNU 0
#endif

#if defined(__x86_64__) || defined(_M_X64) || defined(__i386__) || defined(_M_IX86)
#define CVX_ARCH_X86 1
#else
#define CVX_ARCH_X86 0
#endif
#if defined(__aarch64__) || defined(_M_ARM64)
#define CVX_ARCH_AARCH64 1
#else
#define CVX_ARCH_AARCH64 0
#endif

#if CVX_GNU
#define CVX_INLINE static inline __attribute__((always_inline))
#define CVX_NOINLINE __attribute__((noinline))
#define CVX_RESTRICT __restrict__
#define CVX_PREFETCH(p) __builtin_prefetch((p), 0, 3)
#define CVX_PREFETCH_L2(p) __builtin_prefetch((p), 0, 2) /* into the L2 (x86: prefetcht1) */
#if defined(__clang__)
#define CVX_UNROLL _Pragma("unroll")
#else
#define CVX_UNROLL _Pragma("GCC unroll 32")
#endif
#else /* MSVC, or the MSVC code path compiled by gcc/clang */
#if defined(_MSC_VER) && !defined(CVX_MSVC_PATH)
#define CVX_INLINE static __forceinline
#define CVX_NOINLINE __declspec(noinline)
#define CVX_RESTRICT __restrict
#else
#define CVX_INLINE static inline
#define CVX_NOINLINE
#define CVX_RESTRICT restrict
#endif
#if CVX_ARCH_X86
#include <xmmintrin.h>
#define CVX_PREFETCH(p) _mm_prefetch((const char *)(p), _MM_HINT_T0)
#define CVX_PREFETCH_L2(p) _mm_prefetch((const char *)(p), _MM_HINT_T1)
#else
#define CVX_PREFETCH(p) ((void)0)
#define CVX_PREFETCH_L2(p) ((void)(p))
#endif
#define CVX_UNROLL /* loops with constant trip counts: the compiler's own full unrolling */
#endif

/* CVX_NOCALLS: keep GCC from replacing a copy or zeroing loop by a memcpy/memset call (which
 * costs more than the loop on the small planes of the depthwise kernels). GCC only: clang has
 * no such attribute, and the MSVC code path uses no GNU attribute. */
#if CVX_GNU && !defined(__clang__)
#define CVX_NOCALLS __attribute__((optimize("no-tree-loop-distribute-patterns")))
#else
#define CVX_NOCALLS
#endif

/* -inf without <math.h> (the MSVC-target syntax check is freestanding: stddef.h and stdint.h only) */
CVX_INLINE float cvx_neg_inf_f(void)
{
    union { uint32_t u; float f; } v;
    v.u = 0xff800000u;
    return v.f;
}
CVX_INLINE double cvx_neg_inf_d(void)
{
    union { uint64_t u; double f; } v;
    v.u = 0xfff0000000000000u;
    return v.f;
}

/* ---- GEMM blocking (kernels.inc), shared by every ISA: KC/MC/NC must be multiples of every
 * MR / NR. A new ISA whose tile does not divide them must change them here (for all). ---- */
#define CVX_GEMM_KC 384 /* max K chunk; K is cut into ceil(K/KC) near-equal chunks */
#define CVX_GEMM_MC 144 /* multiple of 8, 6 and 4 */
#define CVX_GEMM_NC 384 /* multiple of 48, 16, 12, 24 and 8 */
#define CVX_PF_ROWS 4   /* B rows prefetched ahead while packing */
#define CVX_GEMM_MAXTILE 512 /* >= MR*NR of every micro-kernel */
/* elements of `work` a GEMM call needs (realigned to 64 bytes inside) */
#define CVX_GEMM_WORK_ELEMS \
    ((cvx_index)CVX_GEMM_KC * (CVX_GEMM_MC + CVX_GEMM_NC) + CVX_GEMM_MAXTILE + 16)

/* ---- direct convolution tiles: upper bounds over every ISA (the scratch sizes use them) ---- */
#define CVX_DIRECT_FBMAX 8  /* filters per forward register tile */
#define CVX_DIRECT_PBMAX 64 /* pixels per forward register tile (NV * lanes) */
#define CVX_DIRECT_KBMAX 8  /* taps per weight-gradient register tile */
#define CVX_DIRECT_VLMAX 16 /* lanes of the widest vector (float, AVX-512) */
/* bytes of the row-unfolded input one band of the direct forward unfolds at a time (kernels.inc,
 * cvx_direct_fwd), so that a band stays in cache while every filter block runs over it: the
 * default of cvx_direct_band_bytes (cvx_isa.c), which _isa.pyx sets for the CPU at import. The
 * band changes no result bit, only where the unfolded rows are read from. The C harness builds
 * with a smaller default (-D) so that its shapes cross band boundaries. */
#ifndef CVX_DIRECT_BAND_BYTES
#define CVX_DIRECT_BAND_BYTES (4 * 1024 * 1024)
#endif
extern cvx_index cvx_direct_band_bytes;
/* A band that unfolds its rows of U holds at least CVX_DIRECT_MIN_BAND_ROWS output rows where
 * CVX_DIRECT_BAND_MAX_BYTES allow (cvx_isa.h, cvx_direct_band_rows_of): a wide image's rows
 * would otherwise take a band of one output row or of one strip, each unfolding the kernel's
 * reach again (_isa.pyx has the measurements). The largest band _isa.pyx sets by default. */
#define CVX_DIRECT_MIN_BAND_ROWS 8
#define CVX_DIRECT_BAND_MAX_BYTES (4 * 1024 * 1024)
/* the same for a 1x1 kernel read in place (no unfold, so no kernel's reach unfolded again per
 * band): a band's rows of the input, every filter block run over them while they sit in the L2,
 * at most cvx_direct_1x1_band_bytes (and at most cvx_direct_band_bytes); set by _isa.pyx for the
 * CPU at import, this where its L2 is unknown */
#ifndef CVX_DIRECT_1X1_BAND_BYTES
#define CVX_DIRECT_1X1_BAND_BYTES (512 * 1024)
#endif
extern cvx_index cvx_direct_1x1_band_bytes;
/* ---- valid-taps forward (valid_taps.inc) ---- kernel rows and columns it takes (at most: its
 * tap lists live on the stack), and the default of cvx_vt_block_bytes (cvx_isa.c), which
 * _isa.pyx sets for the CPU at import: the bytes a block of channels brings into the L2 cache
 * while every tile of the work item runs over it, its packed weights and the input rows a row
 * of tiles reads. The block changes no result bit. */
#define CVX_VT_KMAX 16
#define CVX_VT_BLOCK_BYTES (128 * 1024)
extern cvx_index cvx_vt_block_bytes;
/* elements of a scratch of floats or doubles that hold n cvx_index values (at most 8 bytes),
 * rounded up to whole cache lines so that what follows them starts on a line as the scratch does
 * (the direct forward's U: on a 64-byte line its rows of 16 floats are whole vectors, not split
 * loads across two lines) */
#define CVX_DIRECT_IDX_ELEMS(n) ((2 * (n) + 15) / 16 * 16)
/* ---- average pooling (pool.inc, _pool.pyx) ---- the divisor of a window (PyTorch's rule, which
 * _pool.pyx documents): a non-zero divisor_override, else with count_include_pad the size of the
 * window clipped to the padded input, rows [hs, he0) times columns [ws, we0), else its size
 * clipped to the input, [hs1, he1) times [ws1, we1). The one place the rule is written: the
 * forward's kernel and _pool.pyx's loops (the backward's too) call it. */
static inline cvx_index cvx_pl_avg_div(cvx_index hs, cvx_index ws, cvx_index he0, cvx_index we0,
                                       cvx_index hs1, cvx_index ws1, cvx_index he1,
                                       cvx_index we1, int include_pad, cvx_index divisor)
{
    if (divisor != 0) return divisor;
    if (include_pad) return (he0 - hs) * (we0 - ws);
    return (he1 - hs1) * (we1 - ws1);
}

#endif /* CVX_BASE_H */
