/* CPU detection and the table of compiled kernel tables (compiled with the baseline flags).
 *
 * Which tables exist is decided by setup.py: CVX_HAVE_ISA_AVX2 / _AVX512 / _NEON are defined
 * when isa_<isa>.c was compiled into this extension. Detection:
 *   gcc/clang (GNU code path): __builtin_cpu_supports, which also checks that the OS saves the
 *       vector registers;
 *   MSVC and the MSVC code path: cpuid and xgetbv, read the same way on both (leaf 1 ECX: FMA,
 *       OSXSAVE, AVX; leaf 7 EBX: AVX2, AVX512F; XCR0: the OS saves ymm (bits 1-2) and zmm/opmask
 *       (bits 5-7) state). MSVC reads them with <intrin.h>'s __cpuidex and _xgetbv; the MSVC-path
 *       build under gcc/clang uses the portable equivalent, <cpuid.h>'s __cpuid_count and an
 *       xgetbv instruction: the only line of that build that is not the MSVC text;
 *   aarch64: Advanced SIMD (NEON) is part of the architecture, always present.
 * The choice of the active table (CONVEXT_ISA, or the best supported) is made once, at import of
 * convext._kernels._isa, and so is the direct forward's band (cvx_direct_band_bytes), from the
 * L2 size, vendor and family cvx_cpu_cache reads with cpuid on every x86 build (<intrin.h>'s
 * __cpuidex under MSVC, <cpuid.h> elsewhere). */
#include "cvx_isa.h"

#if CVX_HAVE_ISA_AVX2
extern const struct cvx_kernel_table cvx_table_avx2;
#endif
#if CVX_HAVE_ISA_AVX512
extern const struct cvx_kernel_table cvx_table_avx512;
#endif
#if CVX_HAVE_ISA_NEON
extern const struct cvx_kernel_table cvx_table_neon;
#endif
extern const struct cvx_kernel_table cvx_table_generic;

static const char *const cvx_isa_names[CVX_ISA_COUNT] = {"generic", "avx2", "avx512", "neon"};

const char *cvx_isa_name(int isa)
{
    return isa >= 0 && isa < CVX_ISA_COUNT ? cvx_isa_names[isa] : "";
}

const struct cvx_kernel_table *cvx_isa_compiled(int isa)
{
    switch (isa) {
    case CVX_ISA_GENERIC: return &cvx_table_generic;
#if CVX_HAVE_ISA_AVX2
    case CVX_ISA_AVX2: return &cvx_table_avx2;
#endif
#if CVX_HAVE_ISA_AVX512
    case CVX_ISA_AVX512: return &cvx_table_avx512;
#endif
#if CVX_HAVE_ISA_NEON
    case CVX_ISA_NEON: return &cvx_table_neon;
#endif
    default: return NULL;
    }
}

int cvx_isa_code_path_msvc(void) { return !CVX_GNU; }

#if CVX_ARCH_X86
#if defined(_MSC_VER) && !defined(CVX_MSVC_PATH)
#include <intrin.h>
static void cvx_cpuid(int leaf, int sub, unsigned int r[4])
{
    int v[4];
    __cpuidex(v, leaf, sub);
    r[0] = (unsigned int)v[0], r[1] = (unsigned int)v[1], r[2] = (unsigned int)v[2], r[3] = (unsigned int)v[3];
}
#if !CVX_GNU
static unsigned long long cvx_xgetbv0(void) { return _xgetbv(0); }
#endif
#else /* gcc/clang, and the MSVC code path under them: the portable equivalent of the intrinsics */
#include <cpuid.h>
static void cvx_cpuid(int leaf, int sub, unsigned int r[4])
{
    __cpuid_count(leaf, sub, r[0], r[1], r[2], r[3]);
}
#if !CVX_GNU
static unsigned long long cvx_xgetbv0(void)
{
    unsigned int lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((unsigned long long)hi << 32) | lo;
}
#endif
#endif
#endif

cvx_index cvx_direct_band_bytes = CVX_DIRECT_BAND_BYTES;
cvx_index cvx_direct_1x1_band_bytes = CVX_DIRECT_1X1_BAND_BYTES;
cvx_index cvx_vt_block_bytes = CVX_VT_BLOCK_BYTES;

/* The calling core's L2 cache in bytes (cpuid leaf 0x80000006, ECX bits 31-16: KiB, which Intel
 * and AMD both report), whether the CPU is AMD's (leaf 0's vendor "AuthenticAMD") and its family
 * (leaf 1's EAX: the base family, plus the extended family where the base is 15: AMD's Zen 3 and
 * Zen 4 are 25, Zen 5 is 26); 0 for what is unknown (not x86, or no such leaf). */
void cvx_cpu_cache(long long *l2_bytes, int *amd, int *family)
{
    *l2_bytes = 0, *amd = 0, *family = 0;
#if CVX_ARCH_X86
    {
        unsigned int r[4], base;
        cvx_cpuid(0, 0, r);
        /* the vendor string is EBX, EDX, ECX: "Auth" "enti" "cAMD" */
        *amd = r[1] == 0x68747541u && r[3] == 0x69746e65u && r[2] == 0x444d4163u;
        if (r[0] >= 1u) {
            cvx_cpuid(1, 0, r);
            base = (r[0] >> 8) & 0xfu;
            *family = (int)(base == 0xfu ? base + ((r[0] >> 20) & 0xffu) : base);
        }
        cvx_cpuid((int)0x80000000u, 0, r);
        if (r[0] >= 0x80000006u) {
            cvx_cpuid((int)0x80000006u, 0, r);
            *l2_bytes = (long long)(r[2] >> 16) * 1024;
        }
    }
#endif
}

#if CVX_ARCH_X86 && !CVX_GNU
/* bit 0: AVX2+FMA usable, bit 1: AVX-512F usable */
static int cvx_x86_features(void)
{
    unsigned int r[4], max_leaf;
    unsigned long long xcr0;
    int fma, avx, osxsave, avx2, avx512f, out = 0;
    cvx_cpuid(0, 0, r);
    max_leaf = r[0];
    if (max_leaf < 7) return 0;
    cvx_cpuid(1, 0, r);
    fma = (r[2] >> 12) & 1, osxsave = (r[2] >> 27) & 1, avx = (r[2] >> 28) & 1;
    if (!osxsave || !avx) return 0;
    xcr0 = cvx_xgetbv0();
    cvx_cpuid(7, 0, r);
    avx2 = (r[1] >> 5) & 1, avx512f = (r[1] >> 16) & 1;
    if ((xcr0 & 0x6) == 0x6 && avx2 && fma) out |= 1;
    if ((xcr0 & 0xE6) == 0xE6 && avx512f && avx2 && fma) out |= 2;
    return out;
}
#endif

int cvx_isa_cpu_supports(int isa)
{
    switch (isa) {
    case CVX_ISA_GENERIC: return 1;
#if CVX_ARCH_X86 && CVX_GNU
    case CVX_ISA_AVX2:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case CVX_ISA_AVX512:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx2") &&
               __builtin_cpu_supports("fma");
#elif CVX_ARCH_X86
    case CVX_ISA_AVX2: return cvx_x86_features() & 1;
    case CVX_ISA_AVX512: return (cvx_x86_features() >> 1) & 1;
#endif
#if CVX_ARCH_AARCH64
    case CVX_ISA_NEON: return 1;
#endif
    default: return 0;
    }
}
