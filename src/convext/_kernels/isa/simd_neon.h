/* SIMD helpers for AArch64 Advanced SIMD (NEON; isa_neon.c needs no flag: it is the base ISA).
 * The names and tile macros are those of simd_avx512.h (documented there). 32 vector registers
 * of 128 bits: 4 float / 2 double lanes.
 *
 * Tiles: GEMM float 8 x 12 and double 8 x 6 (8 rows x 3 vectors = 24 accumulators), direct
 * forward 8 filters x 3 vectors, weight gradient 4 filters x 5 taps (20 accumulators).
 *
 * Lane tiles (CVX_LANE_TILES): the 8-row GEMM micro-kernels and the 8-filter direct forward tile
 * are written here instead of by tiles.inc's broadcast loop. A column of 8 A values (or the 8
 * weights of a tap) is loaded as whole vectors and every FMA takes its scalar from a lane of them
 * (FMLA by element, vfmaq_laneq_*), so the FP pipes run nothing but FMAs:
 *     float GEMM k step:  2 + 3 vector loads, 24 FMLA, 29 registers live;
 *     double:             4 + 3 vector loads, 24 FMLA, 31 registers live.
 * (tiles.inc's loop would broadcast 8 scalars per k step, and with 8 broadcast weights the direct
 * tile spills 4 accumulators.) A lane index must be a literal constant (clang checks it before
 * any unrolling), hence the tiles are spelled out with named accumulators and not loops (written
 * as loops over an array of vectors without forced unrolling, GCC 12 kept that array in memory,
 * a store per FMA). The arithmetic is
 * tiles.inc's, element for element: acc = fma(a, b, acc) over k ascending from 0 (GEMM; then
 * C = acc or C + acc) or from the bias (direct), so results are those of the other FMA ISAs. */
#ifndef CVX_SIMD_H
#define CVX_SIMD_H

#include <arm_neon.h>
#include "cvx_base.h"

#define CVX_SGEMM_MR 8
#define CVX_SGEMM_NV 3
#define CVX_DGEMM_MR 8
#define CVX_DGEMM_NV 3
#define CVX_DIRECT_FB 8
#define CVX_DIRECT_NV 3
#define CVX_DIRECT_GW_KB 5
#define CVX_FMA_FUSED 1
#define CVX_VREGS 32
#define CVX_LANE_TILES 1
/* scalar a*b + c rounded once (simd_x86_fma.h) */
#if CVX_GNU
CVX_INLINE float cvx_sf_fma(float a, float b, float c) { return __builtin_fmaf(a, b, c); }
CVX_INLINE double cvx_sd_fma(double a, double b, double c) { return __builtin_fma(a, b, c); }
#else
CVX_INLINE float cvx_sf_fma(float a, float b, float c)
{
    return vgetq_lane_f32(vfmaq_f32(vdupq_n_f32(c), vdupq_n_f32(a), vdupq_n_f32(b)), 0);
}
CVX_INLINE double cvx_sd_fma(double a, double b, double c)
{
    return vgetq_lane_f64(vfmaq_f64(vdupq_n_f64(c), vdupq_n_f64(a), vdupq_n_f64(b)), 0);
}
#endif

typedef float32x4_t cvx_vf;
#define CVX_VF_LANES 4
CVX_INLINE cvx_vf cvx_vf_load(const float *p) { return vld1q_f32(p); }
CVX_INLINE void cvx_vf_store(float *p, cvx_vf x) { vst1q_f32(p, x); }
CVX_INLINE cvx_vf cvx_vf_load_even(const float *p) { return vld2q_f32(p).val[0]; }
CVX_INLINE cvx_vf cvx_vf_set1(float x) { return vdupq_n_f32(x); }
/* LD1R: a load, no arithmetic (a -0.0 stays -0.0) */
CVX_INLINE cvx_vf cvx_vf_bcast(const float *p) { return vld1q_dup_f32(p); }
CVX_INLINE cvx_vf cvx_vf_fma(cvx_vf a, cvx_vf b, cvx_vf c) { return vfmaq_f32(c, a, b); }
CVX_INLINE cvx_vf cvx_vf_add(cvx_vf a, cvx_vf b) { return vaddq_f32(a, b); }
CVX_INLINE cvx_vf cvx_vf_zero(void) { return vdupq_n_f32(0.0f); }
/* compare and select, not FMAX/FMIN (which make -0.0 below +0.0 and do not keep v's NaN) */
CVX_INLINE cvx_vf cvx_vf_clamp(cvx_vf v, cvx_vf lo, cvx_vf hi)
{
    v = vbslq_f32(vcltq_f32(v, lo), lo, v);
    return vbslq_f32(vcgtq_f32(v, hi), hi, v);
}
/* 4 x 4 transpose: 4 rows of 4 at stride ld -> 4 rows at stride ldd */
#define CVX_VF_TR 4
CVX_INLINE void cvx_vf_transpose(const float *src, cvx_index ld, float *dst, cvx_index ldd)
{
    float32x4_t r0 = vld1q_f32(src), r1 = vld1q_f32(src + ld);
    float32x4_t r2 = vld1q_f32(src + 2 * ld), r3 = vld1q_f32(src + 3 * ld);
    float64x2_t t0 = vreinterpretq_f64_f32(vtrn1q_f32(r0, r1));
    float64x2_t t1 = vreinterpretq_f64_f32(vtrn2q_f32(r0, r1));
    float64x2_t t2 = vreinterpretq_f64_f32(vtrn1q_f32(r2, r3));
    float64x2_t t3 = vreinterpretq_f64_f32(vtrn2q_f32(r2, r3));
    vst1q_f32(dst, vreinterpretq_f32_f64(vtrn1q_f64(t0, t2)));
    vst1q_f32(dst + ldd, vreinterpretq_f32_f64(vtrn1q_f64(t1, t3)));
    vst1q_f32(dst + 2 * ldd, vreinterpretq_f32_f64(vtrn2q_f64(t0, t2)));
    vst1q_f32(dst + 3 * ldd, vreinterpretq_f32_f64(vtrn2q_f64(t1, t3)));
}

typedef float64x2_t cvx_vd;
#define CVX_VD_LANES 2
CVX_INLINE cvx_vd cvx_vd_load(const double *p) { return vld1q_f64(p); }
CVX_INLINE void cvx_vd_store(double *p, cvx_vd x) { vst1q_f64(p, x); }
CVX_INLINE cvx_vd cvx_vd_load_even(const double *p) { return vld2q_f64(p).val[0]; }
CVX_INLINE cvx_vd cvx_vd_bcast(const double *p) { return vld1q_dup_f64(p); }
CVX_INLINE cvx_vd cvx_vd_fma(cvx_vd a, cvx_vd b, cvx_vd c) { return vfmaq_f64(c, a, b); }
CVX_INLINE cvx_vd cvx_vd_add(cvx_vd a, cvx_vd b) { return vaddq_f64(a, b); }
CVX_INLINE cvx_vd cvx_vd_zero(void) { return vdupq_n_f64(0.0); }
CVX_INLINE cvx_vd cvx_vd_clamp(cvx_vd v, cvx_vd lo, cvx_vd hi)
{
    v = vbslq_f64(vcltq_f64(v, lo), lo, v);
    return vbslq_f64(vcgtq_f64(v, hi), hi, v);
}
#define CVX_VD_TR 2
CVX_INLINE void cvx_vd_transpose(const double *src, cvx_index ld, double *dst, cvx_index ldd)
{
    float64x2_t r0 = vld1q_f64(src), r1 = vld1q_f64(src + ld);
    vst1q_f64(dst, vtrn1q_f64(r0, r1));
    vst1q_f64(dst + ldd, vtrn2q_f64(r0, r1));
}

/* ---- lane tiles: 8 rows (filters) x NV vectors, NV a constant 1..3 ---- */
#define CVX_NEON_ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7)
#define CVX_NEON_SZERO(i) float32x4_t c##i##0 = vdupq_n_f32(0.0f), c##i##1 = c##i##0, c##i##2 = c##i##0;
#define CVX_NEON_DZERO(i) float64x2_t c##i##0 = vdupq_n_f64(0.0), c##i##1 = c##i##0, c##i##2 = c##i##0;
#define CVX_NEON_SBIAS(i)                                                                           \
    float32x4_t c##i##0 = vld1q_dup_f32(bias + (i)), c##i##1 = c##i##0, c##i##2 = c##i##0;
#define CVX_NEON_DBIAS(i)                                                                           \
    float64x2_t c##i##0 = vld1q_dup_f64(bias + (i)), c##i##1 = c##i##0, c##i##2 = c##i##0;
/* row i: float lane i % 4 of a0 (rows 0-3) / a1 (rows 4-7); double lane i % 2 of a(i / 2) */
#define CVX_NEON_SAV(i) ((i) < 4 ? a0 : a1)
#define CVX_NEON_DAV(i) ((i) < 2 ? a0 : (i) < 4 ? a1 : (i) < 6 ? a2 : a3)
#define CVX_NEON_SFMA(i)                                                                            \
    c##i##0 = vfmaq_laneq_f32(c##i##0, b0, CVX_NEON_SAV(i), (i) % 4);                               \
    if (NV > 1) c##i##1 = vfmaq_laneq_f32(c##i##1, b1, CVX_NEON_SAV(i), (i) % 4);                   \
    if (NV > 2) c##i##2 = vfmaq_laneq_f32(c##i##2, b2, CVX_NEON_SAV(i), (i) % 4);
#define CVX_NEON_DFMA(i)                                                                            \
    c##i##0 = vfmaq_laneq_f64(c##i##0, b0, CVX_NEON_DAV(i), (i) % 2);                               \
    if (NV > 1) c##i##1 = vfmaq_laneq_f64(c##i##1, b1, CVX_NEON_DAV(i), (i) % 2);                   \
    if (NV > 2) c##i##2 = vfmaq_laneq_f64(c##i##2, b2, CVX_NEON_DAV(i), (i) % 2);
#define CVX_NEON_STORE1(SUF, VL, i, v)                                                              \
    vst1q_##SUF(c + (i) * ldc + (v) * (VL),                                                         \
                add ? vaddq_##SUF(vld1q_##SUF(c + (i) * ldc + (v) * (VL)), c##i##v) : c##i##v);
#define CVX_NEON_SSTORE(i)                                                                          \
    CVX_NEON_STORE1(f32, 4, i, 0)                                                                   \
    if (NV > 1) { CVX_NEON_STORE1(f32, 4, i, 1) }                                                   \
    if (NV > 2) { CVX_NEON_STORE1(f32, 4, i, 2) }
#define CVX_NEON_DSTORE(i)                                                                          \
    CVX_NEON_STORE1(f64, 2, i, 0)                                                                   \
    if (NV > 1) { CVX_NEON_STORE1(f64, 2, i, 1) }                                                   \
    if (NV > 2) { CVX_NEON_STORE1(f64, 2, i, 2) }
#define CVX_NEON_SLOAD_B(p)                                                                         \
    const float32x4_t b0 = vld1q_f32(p);                                                            \
    const float32x4_t b1 = NV > 1 ? vld1q_f32((p) + 4) : b0;                                        \
    const float32x4_t b2 = NV > 2 ? vld1q_f32((p) + 8) : b0;
#define CVX_NEON_DLOAD_B(p)                                                                         \
    const float64x2_t b0 = vld1q_f64(p);                                                            \
    const float64x2_t b1 = NV > 1 ? vld1q_f64((p) + 2) : b0;                                        \
    const float64x2_t b2 = NV > 2 ? vld1q_f64((p) + 4) : b0;

/* GEMM micro-kernel (tiles.inc kind 1, A = 8 rows): C[0:8, 0:NV*VL] (=, or += when add)
 * sum_k a[k*8 + i] * b[k*NV*VL + j] */
CVX_INLINE void cvx_lane_gemm_f(const int NV, cvx_index kc, const float *CVX_RESTRICT a,
                                const float *CVX_RESTRICT b, float *CVX_RESTRICT c, cvx_index ldc,
                                int add)
{
    cvx_index k;
    CVX_NEON_ROWS(CVX_NEON_SZERO)
    for (k = 0; k < kc; k++, a += 8, b += 4 * NV) {
        const float32x4_t a0 = vld1q_f32(a), a1 = vld1q_f32(a + 4);
        CVX_NEON_SLOAD_B(b)
        CVX_NEON_ROWS(CVX_NEON_SFMA)
    }
    CVX_NEON_ROWS(CVX_NEON_SSTORE)
}
CVX_INLINE void cvx_lane_gemm_d(const int NV, cvx_index kc, const double *CVX_RESTRICT a,
                                const double *CVX_RESTRICT b, double *CVX_RESTRICT c,
                                cvx_index ldc, int add)
{
    cvx_index k;
    CVX_NEON_ROWS(CVX_NEON_DZERO)
    for (k = 0; k < kc; k++, a += 8, b += 2 * NV) {
        const float64x2_t a0 = vld1q_f64(a), a1 = vld1q_f64(a + 2);
        const float64x2_t a2 = vld1q_f64(a + 4), a3 = vld1q_f64(a + 6);
        CVX_NEON_DLOAD_B(b)
        CVX_NEON_ROWS(CVX_NEON_DFMA)
    }
    CVX_NEON_ROWS(CVX_NEON_DSTORE)
}

/* direct forward tile (tiles.inc kind 2, A = 8 filters): y[f*ldy + p] = bias[f] + sum_k
 * w[k*8 + f] * u[off[k] + p], an fma chain over k ascending from the bias */
CVX_INLINE void cvx_lane_direct_f(const int NV, cvx_index K, const float *CVX_RESTRICT w,
                                  const cvx_index *CVX_RESTRICT off, const float *u,
                                  const float *bias, float *c, cvx_index ldc)
{
    const int add = 0;
    cvx_index k;
    CVX_NEON_ROWS(CVX_NEON_SBIAS)
    for (k = 0; k < K; k++, w += 8) {
        const float32x4_t a0 = vld1q_f32(w), a1 = vld1q_f32(w + 4);
        CVX_NEON_SLOAD_B(u + off[k])
        CVX_NEON_ROWS(CVX_NEON_SFMA)
    }
    CVX_NEON_ROWS(CVX_NEON_SSTORE)
}
CVX_INLINE void cvx_lane_direct_d(const int NV, cvx_index K, const double *CVX_RESTRICT w,
                                  const cvx_index *CVX_RESTRICT off, const double *u,
                                  const double *bias, double *c, cvx_index ldc)
{
    const int add = 0;
    cvx_index k;
    CVX_NEON_ROWS(CVX_NEON_DBIAS)
    for (k = 0; k < K; k++, w += 8) {
        const float64x2_t a0 = vld1q_f64(w), a1 = vld1q_f64(w + 2);
        const float64x2_t a2 = vld1q_f64(w + 4), a3 = vld1q_f64(w + 6);
        CVX_NEON_DLOAD_B(u + off[k])
        CVX_NEON_ROWS(CVX_NEON_DFMA)
    }
    CVX_NEON_ROWS(CVX_NEON_DSTORE)
}

#endif
