/* The machine's float32 FMA peak, for the benchmark suite's ceiling (convext.bench).
 *
 * cvx_fma_chains(iters, m, c) runs 16 independent chains of vector FMAs, acc = acc * m + c, for
 * `iters` steps and returns a checksum (so the compiler keeps the work). Sixteen chains hide the
 * FMA latency (4-5 cycles) on two FMA ports, so the loop runs at the core's throughput limit and
 * nothing else: no loads, no stores. One step is 16 * lanes FMAs = 32 * lanes flops.
 *
 * The instruction set is chosen at run time with cvx_gemm_level() from _gemm.h, the same choice the
 * GEMM micro-kernels make, so the ceiling is the one the convolution kernels can reach:
 *   level 2  AVX-512F  16 float lanes per zmm
 *   level 1  AVX2+FMA   8 float lanes per ymm
 *   level 0  generic    plain C (mul + add, counted as 2 flops; the compiler may vectorise it for
 *                       the baseline ISA), reported as an estimate only.
 * With m = 1 - 2^-20 and c small, the values converge to c / (1 - m) and never overflow or become
 * subnormal, so no slow path is taken. */
#ifndef CVX_PEAK_H
#define CVX_PEAK_H

#include "_gemm.h"

#define CVX_PEAK_CHAINS 16
#define CVX_PEAK_16(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) \
                       X(8) X(9) X(10) X(11) X(12) X(13) X(14) X(15)

#if CVX_X86
#define CVX_PEAK_DEFINE(NAME, VT, SET1, STORE, LANES, ATTR)                                        \
    ATTR static double NAME(long long iters, float m, float c)                                     \
    {                                                                                              \
        VT vm = SET1(m), vc = SET1(c);                                                             \
        float out[LANES];                                                                          \
        double sum = 0.0;                                                                          \
        long long it;                                                                              \
        int l;                                                                                     \
        CVX_PEAK_16(CVX_PEAK_DECL_##LANES)                                                         \
        for (it = 0; it < iters; it++) {                                                           \
            CVX_PEAK_16(CVX_PEAK_STEP_##LANES)                                                     \
        }                                                                                          \
        CVX_PEAK_16(CVX_PEAK_FOLD_##LANES)                                                         \
        STORE(out, a0);                                                                            \
        for (l = 0; l < LANES; l++) sum += out[l];                                                 \
        return sum;                                                                                \
    }
/* declare / step / fold accumulator i (a0 += a_i at the end; a0 is folded into itself first) */
#define CVX_PEAK_DECL_16(i) __m512 a##i = _mm512_set1_ps((float)(i) * 1e-3f);
#define CVX_PEAK_STEP_16(i) a##i = _mm512_fmadd_ps(a##i, vm, vc);
#define CVX_PEAK_FOLD_16(i) if (i) a0 = _mm512_add_ps(a0, a##i);
#define CVX_PEAK_DECL_8(i) __m256 a##i = _mm256_set1_ps((float)(i) * 1e-3f);
#define CVX_PEAK_STEP_8(i) a##i = _mm256_fmadd_ps(a##i, vm, vc);
#define CVX_PEAK_FOLD_8(i) if (i) a0 = _mm256_add_ps(a0, a##i);

CVX_PEAK_DEFINE(cvx_fma_chains_avx512, __m512, _mm512_set1_ps, _mm512_storeu_ps, 16, CVX_ATTR_AVX512)
CVX_PEAK_DEFINE(cvx_fma_chains_avx2, __m256, _mm256_set1_ps, _mm256_storeu_ps, 8, CVX_ATTR_AVX2)
#endif

/* generic: 16 scalar chains of mul + add */
static double cvx_fma_chains_generic(long long iters, float m, float c)
{
    float acc[CVX_PEAK_CHAINS];
    double sum = 0.0;
    long long it;
    int i;
    for (i = 0; i < CVX_PEAK_CHAINS; i++) acc[i] = (float)i * 1e-3f;
    for (it = 0; it < iters; it++)
        for (i = 0; i < CVX_PEAK_CHAINS; i++) acc[i] = acc[i] * m + c;
    for (i = 0; i < CVX_PEAK_CHAINS; i++) sum += acc[i];
    return sum;
}

/* The level cvx_fma_chains runs at (2 = AVX-512F, 1 = AVX2+FMA, 0 = generic). */
static int cvx_peak_level(void) { return cvx_gemm_level(); }

/* float32 lanes per chain at that level (1 for generic). */
static int cvx_peak_lanes(void)
{
    int level = cvx_peak_level();
    return level == 2 ? 16 : level == 1 ? 8 : 1;
}

static double cvx_fma_chains(long long iters, float m, float c)
{
#if CVX_X86
    int level = cvx_peak_level();
    if (level == 2) return cvx_fma_chains_avx512(iters, m, c);
    if (level == 1) return cvx_fma_chains_avx2(iters, m, c);
#endif
    return cvx_fma_chains_generic(iters, m, c);
}

#endif /* CVX_PEAK_H */
