/* AArch64 Advanced SIMD (NEON): 32 vector registers of 128 bits, 4 float / 2 double lanes.
 *
 * GEMM micro-kernels (k-major packed panels, as the shared driver packs them):
 *   float  8 x 12:  24 accumulators (8 rows x 3 vectors), B row = 3 vectors, A column = 2 vectors
 *   double 8 x 6:   24 accumulators (8 rows x 3 vectors), B row = 3 vectors, A column = 4 vectors
 * Per k step: 5 (float) / 7 (double) 128-bit loads feed 24 FMAs; 29 / 31 of the 32 registers live.
 * A is NOT broadcast: the column of A is loaded as whole vectors and each FMA takes its scalar
 * from a lane of it (FMLA by element, vfmaq_laneq_*), so there is no broadcast instruction at all
 * (and no "0 + a" broadcast that would turn -0.0 into +0.0).  Every C element is
 *     acc = fma(a[i,k], b[k,j], acc)   for k ascending, from acc = 0,
 * then C = acc or C = C + acc: the same arithmetic, in the same order, as the x86 kernels.
 * The narrow kernels (8 x 4, 8 x 8 float; 8 x 2, 8 x 4 double) serve the last column strip with
 * the same per-element arithmetic.
 *
 * No target flag is needed: Advanced SIMD (with FMA) is part of the AArch64 base ISA.
 */
#ifndef CVX_SIMD_NEON_H
#define CVX_SIMD_NEON_H

#include <arm_neon.h>
#include <stddef.h>

#ifndef CVX_NEON_INDEX_DEFINED
#define CVX_NEON_INDEX_DEFINED
typedef ptrdiff_t cvx_neon_index;
#endif

/* The tiles are written out with named accumulators: GCC keeps an array of vectors in memory
 * (a store per FMA), named variables stay in registers.  X(i) expands once per row. */
#define CVX_NEON_ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7)
#define CVX_NEON_DECL(T, Z, i) T c##i##0 = Z, c##i##1 = Z, c##i##2 = Z;
#define CVX_NEON_SDECL(i) CVX_NEON_DECL(float32x4_t, vdupq_n_f32(0.0f), i)
#define CVX_NEON_DDECL(i) CVX_NEON_DECL(float64x2_t, vdupq_n_f64(0.0), i)
/* row i of float: lane i%4 of a0 (rows 0-3) or a1 (rows 4-7) */
#define CVX_NEON_SAV(i) ((i) < 4 ? a0 : a1)
#define CVX_NEON_SFMA(i)                                                                            \
    c##i##0 = vfmaq_laneq_f32(c##i##0, b0, CVX_NEON_SAV(i), (i) % 4);                               \
    if (NV > 1) c##i##1 = vfmaq_laneq_f32(c##i##1, b1, CVX_NEON_SAV(i), (i) % 4);                   \
    if (NV > 2) c##i##2 = vfmaq_laneq_f32(c##i##2, b2, CVX_NEON_SAV(i), (i) % 4);
/* row i of double: lane i%2 of a(i/2) */
#define CVX_NEON_DAV(i) ((i) < 2 ? a0 : (i) < 4 ? a1 : (i) < 6 ? a2 : a3)
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

/* C[0:8, 0:4*NV] (=, or += when add) sum_k a[k*8 + i] * b[k*4*NV + j]; NV in 1..3, a constant */
static inline __attribute__((always_inline)) void
cvx_neon_skern_8xn(const int NV, cvx_neon_index kc, const float *__restrict__ a,
                   const float *__restrict__ b, float *__restrict__ c, cvx_neon_index ldc, int add)
{
    cvx_neon_index k;
    CVX_NEON_ROWS(CVX_NEON_SDECL)
    for (k = 0; k < kc; k++, a += 8, b += 4 * NV) {
        const float32x4_t a0 = vld1q_f32(a), a1 = vld1q_f32(a + 4);
        const float32x4_t b0 = vld1q_f32(b);
        const float32x4_t b1 = NV > 1 ? vld1q_f32(b + 4) : b0;
        const float32x4_t b2 = NV > 2 ? vld1q_f32(b + 8) : b0;
        CVX_NEON_ROWS(CVX_NEON_SFMA)
    }
    CVX_NEON_ROWS(CVX_NEON_SSTORE)
}

/* C[0:8, 0:2*NV] (=, or += when add) sum_k a[k*8 + i] * b[k*2*NV + j]; NV in 1..3, a constant */
static inline __attribute__((always_inline)) void
cvx_neon_dkern_8xn(const int NV, cvx_neon_index kc, const double *__restrict__ a,
                   const double *__restrict__ b, double *__restrict__ c, cvx_neon_index ldc, int add)
{
    cvx_neon_index k;
    CVX_NEON_ROWS(CVX_NEON_DDECL)
    for (k = 0; k < kc; k++, a += 8, b += 2 * NV) {
        const float64x2_t a0 = vld1q_f64(a), a1 = vld1q_f64(a + 2);
        const float64x2_t a2 = vld1q_f64(a + 4), a3 = vld1q_f64(a + 6);
        const float64x2_t b0 = vld1q_f64(b);
        const float64x2_t b1 = NV > 1 ? vld1q_f64(b + 2) : b0;
        const float64x2_t b2 = NV > 2 ? vld1q_f64(b + 4) : b0;
        CVX_NEON_ROWS(CVX_NEON_DFMA)
    }
    CVX_NEON_ROWS(CVX_NEON_DSTORE)
}

#endif /* CVX_SIMD_NEON_H */
