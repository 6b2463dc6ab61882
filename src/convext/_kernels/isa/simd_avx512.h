/* SIMD helpers for AVX-512F (isa_avx512.c is compiled with -mavx512f -mavx2 -mfma, /arch:AVX512).
 * Same names in every simd_<isa>.h; kernels.inc is written against them:
 *   cvx_vf / cvx_vd            float / double vector, CVX_VF_LANES / CVX_VD_LANES lanes
 *   cvx_v?_load, _store        unaligned
 *   cvx_v?_load_even(p)        lane l = p[2*l] (reads 2 * lanes elements from p)
 *   cvx_v?_bcast(p)            every lane = *p;   cvx_vf_set1(x): every lane = x
 *   cvx_v?_fma(a, b, c)        a*b + c (fused where the ISA has it)
 *   cvx_s?_fma(a, b, c)        the same on scalars (float / double), fused exactly where
 *                              cvx_v?_fma is (GNU: __builtin_fma(f), which the vectoriser
 *                              vectorises and -mfma inlines; a call of libm's fma(f) where not
 *                              inlined, correctly rounded: the same bits), else c + a*b
 *   cvx_v?_add, cvx_v?_zero
 *   cvx_v?_clamp(v, lo, hi)    t = lo if v < lo else v, then hi if t > hi else t, lane by
 *                              lane, exactly (NaN stays NaN, -0.0 above lo = 0 stays -0.0):
 *                              the epilogue's clamp (_conv.pyx's _epilogue)
 *   CVX_VF_TR / CVX_VD_TR      size of the in-register transpose cvx_v?_transpose (0: none)
 *   CVX_V_LANE_OPS (optional)  cvx_v?_prev1: a vector shifted by one element;
 *                              cvx_v?_store_n: a vector's first lanes;
 *                              cvx_v?_even / cvx_v?_odd: every other element of two vectors;
 *                              cvx_v?_addmul: c + a*b as a plain expression;
 *                              cvx_v?_load_nf: a vector's first lanes, another fill after
 *                              them (what the depthwise stride-2 rows in registers use)
 *   CVX_DW_S2_LANES_MIN_OW_F / _D   with the lane operations: float32 / float64's least
 *                              output width of the depthwise stride-2 rows in registers (0:
 *                              from a vector; -1: those rows without them)
 *   CVX_V_LANE_ROWS (optional) the other register-row kernels too: the depthwise stride-1
 *                              rows and flat planes, the 3x3 stride-2 max pool; with the
 *                              lane operations and these:
 *                              cvx_v?_next1: shifted by one element the other way;
 *                              cvx_v?_load_n: a vector's first lanes, zeros after them;
 *                              cvx_v?_load_mask, cvx_v?_keep_mask: the lanes of a bit
 *                              mask (loaded, or kept from a vector), zeros elsewhere;
 *                              cvx_v?_max_rule: max pooling's comparison, cvx_v?_max_nonan
 *                              the same without NaN, cvx_v?_any_nan;
 *                              cvx_v?i: an index vector (an integer lane per lane), its
 *                              cvx_v?i_set1, cvx_v?i_add, cvx_v?i_lanes(s) (lane l = l*s),
 *                              cvx_v?_max_rule_at: the comparison with the argmax, and
 *                              cvx_v?_store_index: an index vector's first lanes as int64
 * and the ISA's register tiles (see kernels.inc):
 *   CVX_SGEMM_MR, CVX_SGEMM_NV, CVX_DGEMM_MR, CVX_DGEMM_NV   GEMM: MR rows x NV vectors
 *   CVX_DIRECT_FB (4 or 8), CVX_DIRECT_NV                    direct forward: filters x vectors
 *   CVX_DIRECT_GW_KB                                         direct weight gradient: taps (4 filters)
 *   CVX_DIRECT_PF (optional)                                 direct forward: prefetch taps ahead
 *   CVX_GEMM_PF_C (optional)                                 GEMM tile: prefetch its C lines
 *   CVX_GEMM_PF_A (optional)                                 GEMM tile: prefetch A this many bytes ahead
 *   CVX_VT_PF (optional)                                     valid-taps tile: prefetch weights ahead
 *   CVX_VT_DENSE3X3 (optional)                               valid-taps tile: unrolled 3x3 copy
 *   CVX_VT_DENSE3X3_UNIT_A (optional)                        ... at stride 1 up to this many pixels (all)
 *   CVX_FMA_FUSED                                            1 if cvx_vf_fma is one fused op
 *   CVX_VREGS                                                vector registers (16 or 32) */
#ifndef CVX_SIMD_H
#define CVX_SIMD_H

#include <immintrin.h>
#include "cvx_base.h"
#include "simd_x86_transpose.h"

/* 32 zmm registers: 8 x 3 vectors of accumulators */
#define CVX_SGEMM_MR 8
#define CVX_SGEMM_NV 3
#define CVX_DGEMM_MR 8
#define CVX_DGEMM_NV 3
#define CVX_DIRECT_FB 8
#define CVX_DIRECT_NV 3
#define CVX_DIRECT_GW_KB 5
/* The direct forward tile prefetches the input row of the tap 8 taps ahead (tiles.inc): each tap
 * reads its pixels from another row of U, an access pattern the hardware prefetchers do not
 * follow. Measured on a Sapphire Rapids Xeon (float32, 1 MB bands, 9 layers of ResNet-18 and
 * MobileNetV2, geometric mean GFLOP/s, medians of alternated runs): 1 thread batch 4 44 -> 60,
 * 2 threads batch 1 78 -> 83, batch 4 88 -> 93; 16 taps ahead was no better. The AVX2 tile
 * (12 FMAs per tap, against 24 here) was no faster with it on the same CPU, so it has none. */
#define CVX_DIRECT_PF 8
/* The GEMM micro-kernel prefetches its tile's C lines at its first step (tiles.inc): they are
 * ldc apart, and in a weight gradient (dW, 9.4 MB for 512x512x3x3, added to once per pixel
 * tile) beyond the L2. Measured on a Zen 4 (float32): 512x28x28 -> 512 3x3 at batch 4 on one
 * thread, medians of 6 alternated processes, weight gradient 177.6 -> 171.4 ms, input gradient
 * 173.5 -> 166.7; both gradients at batch 16 on two threads, against torch in the same runs,
 * 1.14, 1.19, 1.07 -> 1.04, 1.03, 1.01 of torch's time. */
#define CVX_GEMM_PF_C 1
/* The GEMM tile's first pass over a weight packed once prefetches it 2 kB ahead (kernels.inc,
 * cvx_kern_pf). Measured on an Intel Xeon (2 vCPUs), float32, optimized mobilenet_v2 at batch 1
 * called after 30 ms of idle (as `bench network` calls it), medians of 60 calls in alternated
 * processes on a loaded machine, ms, without / with: one thread 6.70, 6.99, 7.52 / 6.08, 6.31,
 * 6.37; two threads 4.15, 4.44, 4.61 / 3.88, 4.02, 4.21. Its three 160x7x7 -> 960 1x1 layers
 * took 209-221 us each after the pause against 96-98 called back to back; with it 96. */
#define CVX_GEMM_PF_A 2048
/* The valid-taps tile prefetches the packed weights CVX_VT_PF steps (taps) ahead (tiles.inc):
 * on a small plane at batch 1 (tiles of 5 pixels, corners of 1) the block's first tile reads
 * them from memory, where a network's weights mostly are, at 20 FMAs per 256 bytes. Measured on
 * a Zen 4 (float32, 512x7x7 -> 512 3x3 at batch 1, weights evicted before each call, 1 thread,
 * time / the GEMM route's in the same process): 1.05, 1.12, 1.04 -> 0.97, 0.99, 0.99; no change
 * at batch 8 (0.73) nor on 14x14 and 56x56 planes (0.88, 0.80). */
#define CVX_VT_PF 16
/* The valid-taps tile (valid_taps.inc: 6 pixels x 4 vectors, 24 sums, 4 weight vectors and a
 * broadcast in the 32 registers) has a copy for the regions that see a whole 3x3 kernel, its
 * nine steps unrolled with their offsets as constants and without the prefetch (tiles.inc).
 * The 7-pixel tile it replaces (28 sums) kept one sum on the stack at every step and reloaded
 * each step's offsets from the tables. Measured on the Intel Xeon VM (float32; medians of
 * alternated processes, ms, the 7-pixel tile -> these). One 3x3 layer alone, batch 1, one
 * thread: 64x56x56 -> 64 1.65 -> 1.56, 128x28x28 -> 128 1.57 -> 1.53, 256x14x14 -> 256
 * 1.76 -> 1.69, 512x7x7 -> 512 2.61 -> 2.49. resnet18 optimized: batch 1 on one thread
 * 25.6-25.8 -> 24.5-25.0, on two 13.2 -> 12.7-12.9; batch 8 on two 96.2-97.6 -> 92.4-93.2.
 * With the prefetch in the unrolled copy too, resnet18 took 3-4% longer (the hardware
 * prefetcher follows weights read in order); the 6-pixel tile without the unrolled copy was
 * within the noise of the 7-pixel one. Not re-measured on this VM, whose 480 MB L3 holds every
 * weight: a small plane at batch 1 with its weights evicted on a CPU with a small L3 (the case
 * CVX_VT_PF above was measured for), whose interior tiles now run without the prefetch. */
#define CVX_VT_DENSE3X3 1
#define CVX_FMA_FUSED 1
#define CVX_VREGS 32
#include "simd_x86_fma.h" /* cvx_sf_fma, cvx_sd_fma */

typedef __m512 cvx_vf;
#define CVX_VF_LANES 16
CVX_INLINE cvx_vf cvx_vf_load(const float *p) { return _mm512_loadu_ps(p); }
CVX_INLINE void cvx_vf_store(float *p, cvx_vf x) { _mm512_storeu_ps(p, x); }
CVX_INLINE cvx_vf cvx_vf_load_even(const float *p)
{
    const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    return _mm512_permutex2var_ps(_mm512_loadu_ps(p), even, _mm512_loadu_ps(p + 16));
}
CVX_INLINE cvx_vf cvx_vf_set1(float x) { return _mm512_set1_ps(x); }
CVX_INLINE cvx_vf cvx_vf_bcast(const float *p) { return _mm512_set1_ps(*p); }
CVX_INLINE cvx_vf cvx_vf_fma(cvx_vf a, cvx_vf b, cvx_vf c) { return _mm512_fmadd_ps(a, b, c); }
CVX_INLINE cvx_vf cvx_vf_add(cvx_vf a, cvx_vf b) { return _mm512_add_ps(a, b); }
CVX_INLINE cvx_vf cvx_vf_zero(void) { return _mm512_setzero_ps(); }

/* max(lo, v) = (lo > v ? lo : v), min(hi, t) = (hi < t ? hi : t): MAX/MIN return their second
 * operand when either is NaN or both are zero, so these are cvx_v?_clamp's comparisons exactly */
CVX_INLINE cvx_vf cvx_vf_clamp(cvx_vf v, cvx_vf lo, cvx_vf hi)
{
    return _mm512_min_ps(hi, _mm512_max_ps(lo, v));
}
/* Lane operations (CVX_V_LANE_OPS). Neighbour shifts: cvx_v?_prev1(prev, cur) lane l =
 * element l - 1 of the vectors prev, cur side by side (prev's last lane, then cur's lanes but
 * the last), and cvx_v?_next1(cur, next) lane l = element l + 1 of cur, next (cur's lanes but
 * the first, then next's first lane): one VALIGN each, no load. cvx_v?_store_n(p, x, n): the
 * first n lanes of x to p[0 .. n) (0 < n < lanes), nothing written beyond them;
 * cvx_v?_load_n(p, n): lanes l < n from p[l], the others 0 (0 <= n <= lanes), nothing read
 * beyond p[n - 1]. cvx_v?_even(a, b) / cvx_v?_odd(a, b): lane l = element 2l / 2l + 1 of a, b
 * side by side. */
#define CVX_V_LANE_OPS 1
/* every register-row kernel, the stride-2 depthwise rows from a vector wide (_conv.pyx's rule:
 * DW_S2_VEC_FILL_NUM) */
#define CVX_V_LANE_ROWS 1
#define CVX_DW_S2_LANES_MIN_OW_F 0
#define CVX_DW_S2_LANES_MIN_OW_D 0
/* cvx_v?_addmul(c, a, b): c + a*b written as a plain expression, so that it is contracted to one
 * fused multiply-add exactly where the compiler contracts the scalar expression c + a*b of the
 * depthwise kernels' plain loops (depthwise.inc's one-form rule): with GNU C's vector
 * operators (CVX_GNU: gcc, clang) the same contraction rules apply to both; on the MSVC code
 * path a multiply and an add of intrinsics, which MSVC does not contract, as it does not
 * contract its scalars at its default /fp:precise (VS2022 and later; the MSVC-path check
 * builds it with contraction off). */
#if CVX_GNU
#define cvx_vf_addmul(c, a, b) ((c) + (a) * (b))
#define cvx_vd_addmul(c, a, b) ((c) + (a) * (b))
#else
#define cvx_vf_addmul(c, a, b) _mm512_add_ps((c), _mm512_mul_ps((a), (b)))
#define cvx_vd_addmul(c, a, b) _mm512_add_pd((c), _mm512_mul_pd((a), (b)))
#endif
CVX_INLINE void cvx_vf_store_n(float *p, cvx_vf x, cvx_index n)
{
    _mm512_mask_storeu_ps(p, (__mmask16)((1u << n) - 1), x);
}
CVX_INLINE void cvx_vd_store_n(double *p, __m512d x, cvx_index n)
{
    _mm512_mask_storeu_pd(p, (__mmask8)((1u << n) - 1), x);
}
/* cvx_v?_load_nf(p, n, fill): cvx_v?_load_n with fill's lanes instead of zeros from lane n on */
CVX_INLINE cvx_vf cvx_vf_load_nf(const float *p, cvx_index n, cvx_vf fill)
{
    return _mm512_mask_loadu_ps(fill, (__mmask16)(n >= 16 ? 0xFFFFu : (1u << n) - 1), p);
}
CVX_INLINE __m512d cvx_vd_load_nf(const double *p, cvx_index n, __m512d fill)
{
    return _mm512_mask_loadu_pd(fill, (__mmask8)(n >= 8 ? 0xFFu : (1u << n) - 1), p);
}
/* cvx_v?_load_mask(p, m): lane l = p[l] where bit l of m is set, else 0; the lanes whose bit is
 * clear are not read (the masked load does not fault on them, wherever they point).
 * cvx_v?_keep_mask(x, m): lane l = x's where bit l of m is set, else 0 */
CVX_INLINE cvx_vf cvx_vf_load_mask(const float *p, cvx_index m)
{
    return _mm512_maskz_loadu_ps((__mmask16)m, p);
}
CVX_INLINE __m512d cvx_vd_load_mask(const double *p, cvx_index m)
{
    return _mm512_maskz_loadu_pd((__mmask8)m, p);
}
CVX_INLINE cvx_vf cvx_vf_keep_mask(cvx_vf x, cvx_index m)
{
    return _mm512_maskz_mov_ps((__mmask16)m, x);
}
CVX_INLINE __m512d cvx_vd_keep_mask(__m512d x, cvx_index m)
{
    return _mm512_maskz_mov_pd((__mmask8)m, x);
}
CVX_INLINE cvx_vf cvx_vf_load_n(const float *p, cvx_index n)
{
    return cvx_vf_load_nf(p, n, _mm512_setzero_ps());
}
CVX_INLINE __m512d cvx_vd_load_n(const double *p, cvx_index n)
{
    return cvx_vd_load_nf(p, n, _mm512_setzero_pd());
}
/* cvx_v?_max_rule(v, m): lane by lane v where v > m or v is NaN, else m (max pooling's rule,
 * pool.inc's cvx_pl_vstep: the same comparisons, so the same bits, NaN payloads and the sign
 * of zero too) */
CVX_INLINE cvx_vf cvx_vf_max_rule(cvx_vf v, cvx_vf m)
{
    __mmask16 c = _mm512_cmp_ps_mask(v, m, _CMP_GT_OQ) | _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
    return _mm512_mask_blend_ps(c, m, v);
}
CVX_INLINE __m512d cvx_vd_max_rule(__m512d v, __m512d m)
{
    __mmask8 c = _mm512_cmp_pd_mask(v, m, _CMP_GT_OQ) | _mm512_cmp_pd_mask(v, v, _CMP_UNORD_Q);
    return _mm512_mask_blend_pd(c, m, v);
}
/* Index vectors for max pooling's argmax: cvx_vfi holds an int32 lane per float lane, cvx_vdi
 * an int64 lane per double lane (AVX-512F alone: no 256-bit masked integer moves). */
typedef __m512i cvx_vfi;
typedef __m512i cvx_vdi;
CVX_INLINE cvx_vfi cvx_vfi_set1(int64_t c) { return _mm512_set1_epi32((int32_t)c); }
CVX_INLINE cvx_vdi cvx_vdi_set1(int64_t c) { return _mm512_set1_epi64(c); }
CVX_INLINE cvx_vfi cvx_vfi_add(cvx_vfi a, cvx_vfi b) { return _mm512_add_epi32(a, b); }
CVX_INLINE cvx_vdi cvx_vdi_add(cvx_vdi a, cvx_vdi b) { return _mm512_add_epi64(a, b); }
/* lane l = l*s */
CVX_INLINE cvx_vfi cvx_vfi_lanes(int32_t s)
{
    return _mm512_set_epi32(15 * s, 14 * s, 13 * s, 12 * s, 11 * s, 10 * s, 9 * s, 8 * s, 7 * s,
                            6 * s, 5 * s, 4 * s, 3 * s, 2 * s, s, 0);
}
CVX_INLINE cvx_vdi cvx_vdi_lanes(int32_t s)
{
    const int64_t t = s;
    return _mm512_set_epi64(7 * t, 6 * t, 5 * t, 4 * t, 3 * t, 2 * t, t, 0);
}
/* cvx_v?_max_rule_at(v, vi, force, m, mi): cvx_v?_max_rule with the argmax: lane by lane, where
 * v > *m, v is NaN or the lane's bit of force is set, *m takes v and *mi takes vi */
CVX_INLINE void cvx_vf_max_rule_at(cvx_vf v, cvx_vfi vi, unsigned force, cvx_vf *m, cvx_vfi *mi)
{
    const __mmask16 c = _mm512_cmp_ps_mask(v, *m, _CMP_GT_OQ) |
                        _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q) | (__mmask16)force;
    *m = _mm512_mask_blend_ps(c, *m, v);
    *mi = _mm512_mask_blend_epi32(c, *mi, vi);
}
CVX_INLINE void cvx_vd_max_rule_at(__m512d v, cvx_vdi vi, unsigned force, __m512d *m,
                                   cvx_vdi *mi)
{
    const __mmask8 c = _mm512_cmp_pd_mask(v, *m, _CMP_GT_OQ) |
                       _mm512_cmp_pd_mask(v, v, _CMP_UNORD_Q) | (__mmask8)force;
    *m = _mm512_mask_blend_pd(c, *m, v);
    *mi = _mm512_mask_blend_epi64(c, *mi, vi);
}
/* cvx_v?_store_index(p, vi, n): p[l] = lane l of vi as int64 for l < n (0 < n <= lanes),
 * nothing written beyond p[n - 1] */
CVX_INLINE void cvx_vf_store_index(int64_t *p, cvx_vfi vi, cvx_index n)
{
    const __m512i lo = _mm512_cvtepi32_epi64(_mm512_castsi512_si256(vi));
    const __m512i hi = _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(vi, 1));
    if (n >= 16) {
        _mm512_storeu_si512((void *)p, lo);
        _mm512_storeu_si512((void *)(p + 8), hi);
    } else if (n > 8) {
        _mm512_storeu_si512((void *)p, lo);
        _mm512_mask_storeu_epi64(p + 8, (__mmask8)((1u << (n - 8)) - 1), hi);
    } else {
        _mm512_mask_storeu_epi64(p, (__mmask8)((1u << n) - 1), lo);
    }
}
CVX_INLINE void cvx_vd_store_index(int64_t *p, cvx_vdi vi, cvx_index n)
{
    _mm512_mask_storeu_epi64(p, (__mmask8)(n >= 8 ? 0xFFu : (1u << n) - 1), vi);
}
/* cvx_v?_max_nonan(v, m): lane by lane v > m ? v : m (MAXPS), which is cvx_v?_max_rule where v
 * is not NaN; cvx_v?_any_nan(a, b): 1 when a lane of a or b is NaN */
CVX_INLINE cvx_vf cvx_vf_max_nonan(cvx_vf v, cvx_vf m) { return _mm512_max_ps(v, m); }
CVX_INLINE __m512d cvx_vd_max_nonan(__m512d v, __m512d m) { return _mm512_max_pd(v, m); }
CVX_INLINE int cvx_vf_any_nan(cvx_vf a, cvx_vf b)
{
    return _mm512_cmp_ps_mask(a, b, _CMP_UNORD_Q) != 0;
}
CVX_INLINE int cvx_vd_any_nan(__m512d a, __m512d b)
{
    return _mm512_cmp_pd_mask(a, b, _CMP_UNORD_Q) != 0;
}
CVX_INLINE cvx_vf cvx_vf_even(cvx_vf a, cvx_vf b)
{
    const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    return _mm512_permutex2var_ps(a, even, b);
}
CVX_INLINE cvx_vf cvx_vf_odd(cvx_vf a, cvx_vf b)
{
    const __m512i odd = _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
    return _mm512_permutex2var_ps(a, odd, b);
}
CVX_INLINE __m512d cvx_vd_even(__m512d a, __m512d b)
{
    return _mm512_permutex2var_pd(a, _mm512_set_epi64(14, 12, 10, 8, 6, 4, 2, 0), b);
}
CVX_INLINE __m512d cvx_vd_odd(__m512d a, __m512d b)
{
    return _mm512_permutex2var_pd(a, _mm512_set_epi64(15, 13, 11, 9, 7, 5, 3, 1), b);
}
CVX_INLINE cvx_vf cvx_vf_prev1(cvx_vf prev, cvx_vf cur)
{
    return _mm512_castsi512_ps(
        _mm512_alignr_epi32(_mm512_castps_si512(cur), _mm512_castps_si512(prev), 15));
}
CVX_INLINE cvx_vf cvx_vf_next1(cvx_vf cur, cvx_vf next)
{
    return _mm512_castsi512_ps(
        _mm512_alignr_epi32(_mm512_castps_si512(next), _mm512_castps_si512(cur), 1));
}
#define CVX_VF_TR 8
CVX_INLINE void cvx_vf_transpose(const float *src, cvx_index ld, float *dst, cvx_index ldd)
{
    cvx_x86_transpose8_f(src, ld, dst, ldd);
}

/* 8-float vectors (ymm) for the GEMM's rows-in-lanes remainder kernel (kernels.inc, cvx_krows):
 * one per 8-row strip of packed A, where the 16-lane vector is twice the strip */
#define CVX_VF_ROWV 8
typedef __m256 cvx_vf8;
CVX_INLINE cvx_vf8 cvx_vf8_load(const float *p) { return _mm256_loadu_ps(p); }
CVX_INLINE void cvx_vf8_store(float *p, cvx_vf8 x) { _mm256_storeu_ps(p, x); }
CVX_INLINE cvx_vf8 cvx_vf8_bcast(const float *p) { return _mm256_broadcast_ss(p); }
CVX_INLINE cvx_vf8 cvx_vf8_fma(cvx_vf8 a, cvx_vf8 b, cvx_vf8 c) { return _mm256_fmadd_ps(a, b, c); }
CVX_INLINE cvx_vf8 cvx_vf8_zero(void) { return _mm256_setzero_ps(); }

/* The rows of two 8-row strips of packed A in one 16-lane vector, for the GEMM's rows-in-lanes
 * kernel of 9 to 12 columns (kernels.inc, cvx_krows2): lanes 0-7 from p0, 8-15 from p1 */
#define CVX_VF_ROWV2 1
CVX_INLINE cvx_vf cvx_vf_load2(const float *p0, const float *p1)
{
    const __m512d lo = _mm512_castpd256_pd512(_mm256_castps_pd(_mm256_loadu_ps(p0)));
    return _mm512_castpd_ps(_mm512_insertf64x4(lo, _mm256_castps_pd(_mm256_loadu_ps(p1)), 1));
}

typedef __m512d cvx_vd;
#define CVX_VD_LANES 8
CVX_INLINE cvx_vd cvx_vd_load(const double *p) { return _mm512_loadu_pd(p); }
CVX_INLINE void cvx_vd_store(double *p, cvx_vd x) { _mm512_storeu_pd(p, x); }
CVX_INLINE cvx_vd cvx_vd_load_even(const double *p)
{
    const __m512i even = _mm512_set_epi64(14, 12, 10, 8, 6, 4, 2, 0);
    return _mm512_permutex2var_pd(_mm512_loadu_pd(p), even, _mm512_loadu_pd(p + 8));
}
CVX_INLINE cvx_vd cvx_vd_bcast(const double *p) { return _mm512_set1_pd(*p); }
CVX_INLINE cvx_vd cvx_vd_fma(cvx_vd a, cvx_vd b, cvx_vd c) { return _mm512_fmadd_pd(a, b, c); }
CVX_INLINE cvx_vd cvx_vd_add(cvx_vd a, cvx_vd b) { return _mm512_add_pd(a, b); }
CVX_INLINE cvx_vd cvx_vd_zero(void) { return _mm512_setzero_pd(); }
CVX_INLINE cvx_vd cvx_vd_clamp(cvx_vd v, cvx_vd lo, cvx_vd hi)
{
    return _mm512_min_pd(hi, _mm512_max_pd(lo, v));
}
CVX_INLINE cvx_vd cvx_vd_prev1(cvx_vd prev, cvx_vd cur)
{
    return _mm512_castsi512_pd(
        _mm512_alignr_epi64(_mm512_castpd_si512(cur), _mm512_castpd_si512(prev), 7));
}
CVX_INLINE cvx_vd cvx_vd_next1(cvx_vd cur, cvx_vd next)
{
    return _mm512_castsi512_pd(
        _mm512_alignr_epi64(_mm512_castpd_si512(next), _mm512_castpd_si512(cur), 1));
}
#define CVX_VD_TR 4
CVX_INLINE void cvx_vd_transpose(const double *src, cvx_index ld, double *dst, cvx_index ldd)
{
    cvx_x86_transpose4_d(src, ld, dst, ldd);
}

#endif
