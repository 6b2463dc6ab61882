/* SIMD helpers for the generic level (isa_generic.c: no ISA flag; runs on any CPU of the arch).
 * The names and tile macros are those of simd_avx512.h (documented there). Three variants:
 *   x86 (SSE2 is part of x86-64): 4 float / 2 double lanes of <emmintrin.h>, on every compiler;
 *   other GNU targets (not under the MSVC code path): 16-byte GNU vector extensions;
 *   anything else: plain C, one lane.
 * No FMA: cvx_v?_fma is a multiply then an add (CVX_FMA_FUSED 0). */
#ifndef CVX_SIMD_H
#define CVX_SIMD_H

#include "cvx_base.h"

#define CVX_DIRECT_FB 4
#define CVX_DIRECT_NV 3
#define CVX_DIRECT_GW_KB 2
#define CVX_FMA_FUSED 0
/* vector registers: 32 on AArch64 (GNU vectors there), 16 on x86-64 (SSE2), taken as 16 elsewhere */
#if CVX_ARCH_AARCH64
#define CVX_VREGS 32
#else
#define CVX_VREGS 16
#endif
/* scalar a*b + c in the form of this level's cvx_v?_fma: a multiply then an add (simd_avx512.h) */
CVX_INLINE float cvx_sf_fma(float a, float b, float c) { return c + a * b; }
CVX_INLINE double cvx_sd_fma(double a, double b, double c) { return c + a * b; }
#define CVX_VF_TR 0
#define CVX_VD_TR 0

#if CVX_ARCH_X86 && (defined(__SSE2__) || defined(_M_X64) || (defined(_M_IX86_FP) && _M_IX86_FP >= 2))
#include <emmintrin.h>
#define CVX_SIMD_GENERIC_KIND "SSE2"
#define CVX_SGEMM_MR 4
#define CVX_SGEMM_NV 3
#define CVX_DGEMM_MR 4
#define CVX_DGEMM_NV 3
typedef __m128 cvx_vf;
#define CVX_VF_LANES 4
CVX_INLINE cvx_vf cvx_vf_load(const float *p) { return _mm_loadu_ps(p); }
CVX_INLINE void cvx_vf_store(float *p, cvx_vf x) { _mm_storeu_ps(p, x); }
CVX_INLINE cvx_vf cvx_vf_load_even(const float *p)
{
    return _mm_shuffle_ps(_mm_loadu_ps(p), _mm_loadu_ps(p + 4), _MM_SHUFFLE(2, 0, 2, 0));
}
CVX_INLINE cvx_vf cvx_vf_set1(float x) { return _mm_set1_ps(x); }
CVX_INLINE cvx_vf cvx_vf_bcast(const float *p) { return _mm_set1_ps(*p); }
CVX_INLINE cvx_vf cvx_vf_fma(cvx_vf a, cvx_vf b, cvx_vf c) { return _mm_add_ps(c, _mm_mul_ps(a, b)); }
CVX_INLINE cvx_vf cvx_vf_add(cvx_vf a, cvx_vf b) { return _mm_add_ps(a, b); }
CVX_INLINE cvx_vf cvx_vf_zero(void) { return _mm_setzero_ps(); }
/* MAXPS/MINPS: the second operand when either is NaN or both are zero (simd_avx2.h) */
CVX_INLINE cvx_vf cvx_vf_clamp(cvx_vf v, cvx_vf lo, cvx_vf hi)
{
    return _mm_min_ps(hi, _mm_max_ps(lo, v));
}
typedef __m128d cvx_vd;
#define CVX_VD_LANES 2
CVX_INLINE cvx_vd cvx_vd_load(const double *p) { return _mm_loadu_pd(p); }
CVX_INLINE void cvx_vd_store(double *p, cvx_vd x) { _mm_storeu_pd(p, x); }
CVX_INLINE cvx_vd cvx_vd_load_even(const double *p)
{
    return _mm_unpacklo_pd(_mm_loadu_pd(p), _mm_loadu_pd(p + 2));
}
CVX_INLINE cvx_vd cvx_vd_bcast(const double *p) { return _mm_set1_pd(*p); }
CVX_INLINE cvx_vd cvx_vd_fma(cvx_vd a, cvx_vd b, cvx_vd c) { return _mm_add_pd(c, _mm_mul_pd(a, b)); }
CVX_INLINE cvx_vd cvx_vd_add(cvx_vd a, cvx_vd b) { return _mm_add_pd(a, b); }
CVX_INLINE cvx_vd cvx_vd_zero(void) { return _mm_setzero_pd(); }
CVX_INLINE cvx_vd cvx_vd_clamp(cvx_vd v, cvx_vd lo, cvx_vd hi)
{
    return _mm_min_pd(hi, _mm_max_pd(lo, v));
}

#elif CVX_GNU
#define CVX_SIMD_GENERIC_KIND "GNU vectors"
#define CVX_SGEMM_MR 4
#define CVX_SGEMM_NV 3
#define CVX_DGEMM_MR 4
#define CVX_DGEMM_NV 3
typedef float cvx_vf __attribute__((vector_size(16)));
typedef float cvx_vf_u __attribute__((vector_size(16), aligned(4), may_alias));
#define CVX_VF_LANES 4
CVX_INLINE cvx_vf cvx_vf_load(const float *p) { return *(const cvx_vf_u *)p; }
CVX_INLINE void cvx_vf_store(float *p, cvx_vf x) { *(cvx_vf_u *)p = x; }
CVX_INLINE cvx_vf cvx_vf_load_even(const float *p) { return (cvx_vf){p[0], p[2], p[4], p[6]}; }
/* a plain broadcast: (cvx_vf){0} + x would be an add, turning -0.0 into +0.0 */
CVX_INLINE cvx_vf cvx_vf_set1(float x) { return (cvx_vf){x, x, x, x}; }
CVX_INLINE cvx_vf cvx_vf_bcast(const float *p) { return (cvx_vf){*p, *p, *p, *p}; }
CVX_INLINE cvx_vf cvx_vf_fma(cvx_vf a, cvx_vf b, cvx_vf c) { return c + a * b; }
CVX_INLINE cvx_vf cvx_vf_add(cvx_vf a, cvx_vf b) { return a + b; }
CVX_INLINE cvx_vf cvx_vf_zero(void) { return (cvx_vf){0.0f, 0.0f, 0.0f, 0.0f}; }
/* a comparison of GNU vectors is a mask of lanes (all ones where true), selecting bitwise */
typedef int cvx_vfm __attribute__((vector_size(16)));
CVX_INLINE cvx_vf cvx_vf_clamp(cvx_vf v, cvx_vf lo, cvx_vf hi)
{
    cvx_vfm m = v < lo;
    v = (cvx_vf)(((cvx_vfm)lo & m) | ((cvx_vfm)v & ~m));
    m = v > hi;
    return (cvx_vf)(((cvx_vfm)hi & m) | ((cvx_vfm)v & ~m));
}
typedef double cvx_vd __attribute__((vector_size(16)));
typedef double cvx_vd_u __attribute__((vector_size(16), aligned(8), may_alias));
#define CVX_VD_LANES 2
CVX_INLINE cvx_vd cvx_vd_load(const double *p) { return *(const cvx_vd_u *)p; }
CVX_INLINE void cvx_vd_store(double *p, cvx_vd x) { *(cvx_vd_u *)p = x; }
CVX_INLINE cvx_vd cvx_vd_load_even(const double *p) { return (cvx_vd){p[0], p[2]}; }
CVX_INLINE cvx_vd cvx_vd_bcast(const double *p) { return (cvx_vd){*p, *p}; }
CVX_INLINE cvx_vd cvx_vd_fma(cvx_vd a, cvx_vd b, cvx_vd c) { return c + a * b; }
CVX_INLINE cvx_vd cvx_vd_add(cvx_vd a, cvx_vd b) { return a + b; }
CVX_INLINE cvx_vd cvx_vd_zero(void) { return (cvx_vd){0.0, 0.0}; }
typedef long long cvx_vdm __attribute__((vector_size(16)));
CVX_INLINE cvx_vd cvx_vd_clamp(cvx_vd v, cvx_vd lo, cvx_vd hi)
{
    cvx_vdm m = v < lo;
    v = (cvx_vd)(((cvx_vdm)lo & m) | ((cvx_vdm)v & ~m));
    m = v > hi;
    return (cvx_vd)(((cvx_vdm)hi & m) | ((cvx_vdm)v & ~m));
}

#else
#define CVX_SIMD_GENERIC_KIND "C"
#define CVX_SGEMM_MR 4
#define CVX_SGEMM_NV 8
#define CVX_DGEMM_MR 4
#define CVX_DGEMM_NV 4
typedef float cvx_vf;
#define CVX_VF_LANES 1
CVX_INLINE cvx_vf cvx_vf_load(const float *p) { return *p; }
CVX_INLINE void cvx_vf_store(float *p, cvx_vf x) { *p = x; }
CVX_INLINE cvx_vf cvx_vf_load_even(const float *p) { return *p; }
CVX_INLINE cvx_vf cvx_vf_set1(float x) { return x; }
CVX_INLINE cvx_vf cvx_vf_bcast(const float *p) { return *p; }
CVX_INLINE cvx_vf cvx_vf_fma(cvx_vf a, cvx_vf b, cvx_vf c) { return c + a * b; }
CVX_INLINE cvx_vf cvx_vf_add(cvx_vf a, cvx_vf b) { return a + b; }
CVX_INLINE cvx_vf cvx_vf_zero(void) { return 0.0f; }
CVX_INLINE cvx_vf cvx_vf_clamp(cvx_vf v, cvx_vf lo, cvx_vf hi)
{
    v = v < lo ? lo : v;
    return v > hi ? hi : v;
}
typedef double cvx_vd;
#define CVX_VD_LANES 1
CVX_INLINE cvx_vd cvx_vd_load(const double *p) { return *p; }
CVX_INLINE void cvx_vd_store(double *p, cvx_vd x) { *p = x; }
CVX_INLINE cvx_vd cvx_vd_load_even(const double *p) { return *p; }
CVX_INLINE cvx_vd cvx_vd_bcast(const double *p) { return *p; }
CVX_INLINE cvx_vd cvx_vd_fma(cvx_vd a, cvx_vd b, cvx_vd c) { return c + a * b; }
CVX_INLINE cvx_vd cvx_vd_add(cvx_vd a, cvx_vd b) { return a + b; }
CVX_INLINE cvx_vd cvx_vd_zero(void) { return 0.0; }
CVX_INLINE cvx_vd cvx_vd_clamp(cvx_vd v, cvx_vd lo, cvx_vd hi)
{
    v = v < lo ? lo : v;
    return v > hi ? hi : v;
}
#endif

/* no in-register transposes at this level (CVX_V?_TR 0): never called */
CVX_INLINE void cvx_vf_transpose(const float *src, cvx_index ld, float *dst, cvx_index ldd)
{
    (void)src, (void)ld, (void)dst, (void)ldd;
}
CVX_INLINE void cvx_vd_transpose(const double *src, cvx_index ld, double *dst, cvx_index ldd)
{
    (void)src, (void)ld, (void)dst, (void)ldd;
}

#endif
