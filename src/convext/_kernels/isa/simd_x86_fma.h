/* The scalar FMA of the x86 rows with FMA (AVX2, AVX-512): a*b + c rounded once, fused exactly
 * as their vector cvx_v?_fma is (depthwise.inc: products summed on paths that must agree are
 * written with cvx_*_fma). Included by simd_avx2.h and simd_avx512.h after cvx_base.h. */
#ifndef CVX_SIMD_X86_FMA_H
#define CVX_SIMD_X86_FMA_H
#include <immintrin.h>
#include "cvx_base.h"
#if CVX_GNU
CVX_INLINE float cvx_sf_fma(float a, float b, float c) { return __builtin_fmaf(a, b, c); }
CVX_INLINE double cvx_sd_fma(double a, double b, double c) { return __builtin_fma(a, b, c); }
#else
CVX_INLINE float cvx_sf_fma(float a, float b, float c)
{
    return _mm_cvtss_f32(_mm_fmadd_ss(_mm_set_ss(a), _mm_set_ss(b), _mm_set_ss(c)));
}
CVX_INLINE double cvx_sd_fma(double a, double b, double c)
{
    return _mm_cvtsd_f64(_mm_fmadd_sd(_mm_set_sd(a), _mm_set_sd(b), _mm_set_sd(c)));
}
#endif

#endif
