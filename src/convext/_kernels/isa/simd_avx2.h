/* SIMD helpers for AVX2 + FMA (isa_avx2.c is compiled with -mavx2 -mfma, /arch:AVX2).
 * The names and tile macros are those of simd_avx512.h (documented there). */
#ifndef CVX_SIMD_H
#define CVX_SIMD_H

#include <immintrin.h>
#include "cvx_base.h"
#include "simd_x86_transpose.h"

/* 16 ymm registers: 6 x 2 vectors of accumulators */
#define CVX_SGEMM_MR 6
#define CVX_SGEMM_NV 2
#define CVX_DGEMM_MR 6
#define CVX_DGEMM_NV 2
#define CVX_DIRECT_FB 4
#define CVX_DIRECT_NV 3
#define CVX_DIRECT_GW_KB 2
/* as simd_avx512.h; AVX2 on the same Xeon, one thread, the same measure: 10.13, 10.26, 9.66 /
 * 9.50, 9.10, 9.36 ms (back to back 8.51 / 8.21) */
#define CVX_GEMM_PF_A 2048
/* The valid-taps tile's unrolled copy for a whole 3x3 kernel (simd_avx512.h): at stride 2, and
 * at stride 1 for tiles of at most CVX_VT_DENSE3X3_UNIT_A pixels (a 28x28 plane's rows: four
 * tiles of 5 and one of 6); float64's tiles too (measured on float32 only). On a Zen 3
 * (float32, one 3x3 layer alone with bias and ReLU, weights packed once, medians of 15 x 5
 * calls beside onnxruntime's in alternated processes, ms, tables / unrolled): one thread, batch
 * 1, 64x56x56 -> 128 stride 2 1.435, 1.415 / 1.402, 1.377; 128x28x28 -> 256 stride 2 1.509,
 * 1.465 / 1.374, 1.379; two threads, batch 8, time / onnxruntime's, 64x56x56 -> 128 1.14, 0.97
 * / 1.02, 1.02; 128x28x28 -> 256 1.15, 1.14 / 1.04, 1.03; 256x14x14 -> 512 (7x7 output) 1.09,
 * 1.03 / 1.03, 1.05. At stride 1 the 6-pixel tile's copy lost (64x56x56 -> 64, one thread,
 * 2.53, 2.55 / 2.67, 2.74): GCC 12 kept some of its 12 sums on the stack (16 registers), which
 * the loop over the tables does not. The 5-pixel tile's (10 sums), one thread, batch 1, time /
 * onnxruntime's on a busy machine: 128x28x28 -> 128 1.04, 1.05, 1.07, 1.07 / 0.95, 1.01, 1.03,
 * 1.15; 96x28x28 -> 96 1.05, 1.05 / 1.01, 1.03; 64x28x28 -> 64 1.04, 1.05, 1.05, 1.06 / 0.93,
 * 1.01, 1.01, 1.12; 512x7x7 -> 512 0.91, 0.92, 0.92, 1.10 / 0.85, 0.88, 0.89, 0.93. */
#define CVX_VT_DENSE3X3 1
#define CVX_VT_DENSE3X3_UNIT_A 5
#define CVX_FMA_FUSED 1
#define CVX_VREGS 16
#include "simd_x86_fma.h" /* cvx_sf_fma, cvx_sd_fma */

typedef __m256 cvx_vf;
#define CVX_VF_LANES 8
CVX_INLINE cvx_vf cvx_vf_load(const float *p) { return _mm256_loadu_ps(p); }
CVX_INLINE void cvx_vf_store(float *p, cvx_vf x) { _mm256_storeu_ps(p, x); }
/* a0 a2 b0 b2 | a4 a6 b4 b6 from the two halves, then its 64-bit pairs in the order 0 2 1 3 */
CVX_INLINE cvx_vf cvx_vf_load_even(const float *p)
{
    __m256 t = _mm256_shuffle_ps(_mm256_loadu_ps(p), _mm256_loadu_ps(p + 8), _MM_SHUFFLE(2, 0, 2, 0));
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(t), _MM_SHUFFLE(3, 1, 2, 0)));
}
CVX_INLINE cvx_vf cvx_vf_set1(float x) { return _mm256_set1_ps(x); }
CVX_INLINE cvx_vf cvx_vf_bcast(const float *p) { return _mm256_broadcast_ss(p); }
CVX_INLINE cvx_vf cvx_vf_fma(cvx_vf a, cvx_vf b, cvx_vf c) { return _mm256_fmadd_ps(a, b, c); }
CVX_INLINE cvx_vf cvx_vf_add(cvx_vf a, cvx_vf b) { return _mm256_add_ps(a, b); }
CVX_INLINE cvx_vf cvx_vf_zero(void) { return _mm256_setzero_ps(); }

/* max(lo, v) = (lo > v ? lo : v), min(hi, t) = (hi < t ? hi : t): MAX/MIN return their second
 * operand when either is NaN or both are zero, so these are cvx_v?_clamp's comparisons exactly */
CVX_INLINE cvx_vf cvx_vf_clamp(cvx_vf v, cvx_vf lo, cvx_vf hi)
{
    return _mm256_min_ps(hi, _mm256_max_ps(lo, v));
}
/* The lane operations (CVX_V_LANE_OPS: simd_avx512.h documents them) from AVX2's permutes,
 * masked moves and blends: prev1 one lane across the vectors' halves (VPERM2F128, then
 * VPALIGNR within each half), even / odd one SHUFPS and a VPERMPD of its 64-bit pairs, the
 * first lanes as lane masks (VMASKMOVPS: masked-off lanes are neither read nor written, so
 * they do not fault). Not the register-row kernels' own (CVX_V_LANE_ROWS), which no AVX2
 * kernel takes. */
#define CVX_V_LANE_OPS 1
/* Of the register-row kernels only the depthwise stride-2 rows (cvx_dw_s2_vplane) in float32,
 * on output planes at least CVX_DW_S2_LANES_MIN_OW_F wide.
 * Measured on a Zen 3 (float32, ReLU6, one thread, batch 1, medians of 41-61 calls alternated
 * in one process with the kernels the rule took before, time of those over these rows):
 * 96x112x112 (56 wide) the row ring 1.24-1.44 (two threads 1.25), 64x96x96 1.35, 32x224x224
 * the split rows 1.01, batch 8 144x56x56 the ring 1.10; but narrower, 144x56x56 (28 wide) the
 * ring 0.73, 64x40x40 0.76, 192x28x28 the channel blocks 0.64, and 64x98x98 (49 wide) the ring
 * 0.90-0.98. The stride-1 rows (cvx_dw_s1_vrow) against the rows reading 9 times: 32x112x112
 * 0.76-0.99, 144x56x56 1.03-1.11, 64x44x44 0.96; the flat planes lost to the channel blocks
 * on every plane narrower than 32 (192x28x28 0.61, 384x14x14 0.63, 960x7x7 0.60 of the flat
 * planes' time); the max pool's register rows against the column maxima 0.75-1.10 (64x112x112
 * 0.97-1.08): so no CVX_V_LANE_ROWS. In float64 (4 lanes) the split rows against these:
 * 32x224x224 0.81, 64x98x98 0.86, batch 8 96x112x112 0.71, but 96x112x112 1.12, 64x96x96
 * 0.99: so float64 keeps the split rows (-1). */
#define CVX_DW_S2_LANES_MIN_OW_F 48
#define CVX_DW_S2_LANES_MIN_OW_D (-1)
#if CVX_GNU
#define cvx_vf_addmul(c, a, b) ((c) + (a) * (b))
#define cvx_vd_addmul(c, a, b) ((c) + (a) * (b))
#else
#define cvx_vf_addmul(c, a, b) _mm256_add_ps((c), _mm256_mul_ps((a), (b)))
#define cvx_vd_addmul(c, a, b) _mm256_add_pd((c), _mm256_mul_pd((a), (b)))
#endif
/* lane l all ones where l < n (n clamped to 0 .. 8), as 32-bit lanes */
CVX_INLINE __m256i cvx_x86_first8(cvx_index n)
{
    const int k = n <= 0 ? 0 : n >= 8 ? 8 : (int)n;
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(k), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
/* the same as 64-bit lanes (n clamped to 0 .. 4) */
CVX_INLINE __m256i cvx_x86_first4(cvx_index n)
{
    const long long k = n <= 0 ? 0 : n >= 4 ? 4 : (long long)n;
    return _mm256_cmpgt_epi64(_mm256_set1_epi64x(k), _mm256_setr_epi64x(0, 1, 2, 3));
}
CVX_INLINE void cvx_vf_store_n(float *p, cvx_vf x, cvx_index n)
{
    _mm256_maskstore_ps(p, cvx_x86_first8(n), x);
}
CVX_INLINE cvx_vf cvx_vf_load_nf(const float *p, cvx_index n, cvx_vf fill)
{
    const __m256i m = cvx_x86_first8(n);
    return _mm256_blendv_ps(fill, _mm256_maskload_ps(p, m), _mm256_castsi256_ps(m));
}
/* a0 a2 b0 b2 | a4 a6 b4 b6 (odd: a1 a3 b1 b3 | ...), then the 64-bit pairs in the order 0 2 1 3 */
CVX_INLINE cvx_vf cvx_vf_even(cvx_vf a, cvx_vf b)
{
    __m256 t = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0));
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(t), _MM_SHUFFLE(3, 1, 2, 0)));
}
CVX_INLINE cvx_vf cvx_vf_odd(cvx_vf a, cvx_vf b)
{
    __m256 t = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 3, 1));
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(t), _MM_SHUFFLE(3, 1, 2, 0)));
}
/* [prev's high half, cur's low half], then each half shifted by one lane onto cur's halves */
CVX_INLINE cvx_vf cvx_vf_prev1(cvx_vf prev, cvx_vf cur)
{
    __m256 t = _mm256_permute2f128_ps(prev, cur, 0x21);
    return _mm256_castsi256_ps(_mm256_alignr_epi8(_mm256_castps_si256(cur), _mm256_castps_si256(t), 12));
}
#define CVX_VF_TR 8
CVX_INLINE void cvx_vf_transpose(const float *src, cvx_index ld, float *dst, cvx_index ldd)
{
    cvx_x86_transpose8_f(src, ld, dst, ldd);
}

/* The GEMM tile's 6 rows in the first 6 lanes of one vector (kernels.inc, cvx_krows): loaded
 * with a mask, so the 2 elements past a packed strip's row are neither read nor used (lanes
 * 6 and 7 hold zeros); stored whole, 8 elements */
#define CVX_VF_ROWV_PART 6
typedef __m256 cvx_vf8;
CVX_INLINE cvx_vf8 cvx_vf8_load_part(const float *p)
{
    return _mm256_maskload_ps(p, _mm256_setr_epi32(-1, -1, -1, -1, -1, -1, 0, 0));
}
CVX_INLINE void cvx_vf8_store(float *p, cvx_vf8 x) { _mm256_storeu_ps(p, x); }
CVX_INLINE cvx_vf8 cvx_vf8_bcast(const float *p) { return _mm256_broadcast_ss(p); }
CVX_INLINE cvx_vf8 cvx_vf8_fma(cvx_vf8 a, cvx_vf8 b, cvx_vf8 c) { return _mm256_fmadd_ps(a, b, c); }
CVX_INLINE cvx_vf8 cvx_vf8_zero(void) { return _mm256_setzero_ps(); }

typedef __m256d cvx_vd;
#define CVX_VD_LANES 4
CVX_INLINE cvx_vd cvx_vd_load(const double *p) { return _mm256_loadu_pd(p); }
CVX_INLINE void cvx_vd_store(double *p, cvx_vd x) { _mm256_storeu_pd(p, x); }
/* a0 b0 a2 b2, then in the order 0 2 1 3 */
CVX_INLINE cvx_vd cvx_vd_load_even(const double *p)
{
    __m256d t = _mm256_unpacklo_pd(_mm256_loadu_pd(p), _mm256_loadu_pd(p + 4));
    return _mm256_permute4x64_pd(t, _MM_SHUFFLE(3, 1, 2, 0));
}
CVX_INLINE cvx_vd cvx_vd_bcast(const double *p) { return _mm256_broadcast_sd(p); }
CVX_INLINE cvx_vd cvx_vd_fma(cvx_vd a, cvx_vd b, cvx_vd c) { return _mm256_fmadd_pd(a, b, c); }
CVX_INLINE cvx_vd cvx_vd_add(cvx_vd a, cvx_vd b) { return _mm256_add_pd(a, b); }
CVX_INLINE cvx_vd cvx_vd_zero(void) { return _mm256_setzero_pd(); }
CVX_INLINE cvx_vd cvx_vd_clamp(cvx_vd v, cvx_vd lo, cvx_vd hi)
{
    return _mm256_min_pd(hi, _mm256_max_pd(lo, v));
}
CVX_INLINE void cvx_vd_store_n(double *p, cvx_vd x, cvx_index n)
{
    _mm256_maskstore_pd(p, cvx_x86_first4(n), x);
}
CVX_INLINE cvx_vd cvx_vd_load_nf(const double *p, cvx_index n, cvx_vd fill)
{
    const __m256i m = cvx_x86_first4(n);
    return _mm256_blendv_pd(fill, _mm256_maskload_pd(p, m), _mm256_castsi256_pd(m));
}
/* a0 b0 | a2 b2 (odd: a1 b1 | a3 b3), then in the order 0 2 1 3 */
CVX_INLINE cvx_vd cvx_vd_even(cvx_vd a, cvx_vd b)
{
    return _mm256_permute4x64_pd(_mm256_unpacklo_pd(a, b), _MM_SHUFFLE(3, 1, 2, 0));
}
CVX_INLINE cvx_vd cvx_vd_odd(cvx_vd a, cvx_vd b)
{
    return _mm256_permute4x64_pd(_mm256_unpackhi_pd(a, b), _MM_SHUFFLE(3, 1, 2, 0));
}
CVX_INLINE cvx_vd cvx_vd_prev1(cvx_vd prev, cvx_vd cur)
{
    __m256d t = _mm256_permute2f128_pd(prev, cur, 0x21);
    return _mm256_castsi256_pd(_mm256_alignr_epi8(_mm256_castpd_si256(cur), _mm256_castpd_si256(t), 8));
}
#define CVX_VD_TR 4
CVX_INLINE void cvx_vd_transpose(const double *src, cvx_index ld, double *dst, cvx_index ldd)
{
    cvx_x86_transpose4_d(src, ld, dst, ldd);
}

#endif
