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
#include <math.h>
#include <stddef.h>

#ifndef CVX_NEON_INDEX_DEFINED
#define CVX_NEON_INDEX_DEFINED
typedef ptrdiff_t cvx_neon_index;
#endif

/* ---- helpers with the same names on every instruction set (float: cvx_vf_*, double: cvx_vd_*) */
typedef float32x4_t cvx_vf;
typedef float64x2_t cvx_vd;
#define CVX_VF_LANES 4
#define CVX_VD_LANES 2
static inline cvx_vf cvx_vf_load(const float *p) { return vld1q_f32(p); }
static inline void cvx_vf_store(float *p, cvx_vf x) { vst1q_f32(p, x); }
/* broadcast from memory: LD1R, a load (no arithmetic: -0.0 stays -0.0) */
static inline cvx_vf cvx_vf_load1(const float *p) { return vld1q_dup_f32(p); }
static inline cvx_vf cvx_vf_set1(float x) { return vdupq_n_f32(x); }
static inline cvx_vf cvx_vf_zero(void) { return vdupq_n_f32(0.0f); }
/* a * b + c, one rounding */
static inline cvx_vf cvx_vf_fma(cvx_vf a, cvx_vf b, cvx_vf c) { return vfmaq_f32(c, a, b); }
static inline cvx_vf cvx_vf_add(cvx_vf a, cvx_vf b) { return vaddq_f32(a, b); }
static inline cvx_vd cvx_vd_load(const double *p) { return vld1q_f64(p); }
static inline void cvx_vd_store(double *p, cvx_vd x) { vst1q_f64(p, x); }
static inline cvx_vd cvx_vd_load1(const double *p) { return vld1q_dup_f64(p); }
static inline cvx_vd cvx_vd_set1(double x) { return vdupq_n_f64(x); }
static inline cvx_vd cvx_vd_zero(void) { return vdupq_n_f64(0.0); }
static inline cvx_vd cvx_vd_fma(cvx_vd a, cvx_vd b, cvx_vd c) { return vfmaq_f64(c, a, b); }
static inline cvx_vd cvx_vd_add(cvx_vd a, cvx_vd b) { return vaddq_f64(a, b); }

/* GEMM tiles (the micro-kernels below) */
#define CVX_SGEMM_MR 8
#define CVX_SGEMM_NR 12
#define CVX_DGEMM_MR 8
#define CVX_DGEMM_NR 6

/* In-register transposes for packing operands contiguous along K (4x4 float, 2x2 double): read
 * TB rows of TB contiguous elements at stride ld, write their transpose as TB rows at stride ldd. */
static inline void cvx_neon_str4(const float *src, cvx_neon_index ld, float *dst, cvx_neon_index ldd)
{
    float32x4_t r0 = vld1q_f32(src), r1 = vld1q_f32(src + ld);
    float32x4_t r2 = vld1q_f32(src + 2 * ld), r3 = vld1q_f32(src + 3 * ld);
    float32x4_t t0 = vtrn1q_f32(r0, r1), t1 = vtrn2q_f32(r0, r1);
    float32x4_t t2 = vtrn1q_f32(r2, r3), t3 = vtrn2q_f32(r2, r3);
    float64x2_t u0 = vreinterpretq_f64_f32(t0), u1 = vreinterpretq_f64_f32(t1);
    float64x2_t u2 = vreinterpretq_f64_f32(t2), u3 = vreinterpretq_f64_f32(t3);
    vst1q_f32(dst, vreinterpretq_f32_f64(vtrn1q_f64(u0, u2)));
    vst1q_f32(dst + ldd, vreinterpretq_f32_f64(vtrn1q_f64(u1, u3)));
    vst1q_f32(dst + 2 * ldd, vreinterpretq_f32_f64(vtrn2q_f64(u0, u2)));
    vst1q_f32(dst + 3 * ldd, vreinterpretq_f32_f64(vtrn2q_f64(u1, u3)));
}
static inline void cvx_neon_dtr2(const double *src, cvx_neon_index ld, double *dst, cvx_neon_index ldd)
{
    float64x2_t r0 = vld1q_f64(src), r1 = vld1q_f64(src + ld);
    vst1q_f64(dst, vtrn1q_f64(r0, r1));
    vst1q_f64(dst + ldd, vtrn2q_f64(r0, r1));
}

/* y[i] += a * x[i] (one fma per element, as the other instruction sets) */
#define CVX_NEON_DEFINE_AXPY(T, SUF, VL)                                                            \
    static inline void cvx_neon_axpy_##T(cvx_neon_index n, T a, const T *__restrict__ x,            \
                                         T *__restrict__ y)                                         \
    {                                                                                               \
        cvx_neon_index i = 0;                                                                       \
        for (; i + 4 * (VL) <= n; i += 4 * (VL)) {                                                  \
            vst1q_##SUF(y + i, vfmaq_n_##SUF(vld1q_##SUF(y + i), vld1q_##SUF(x + i), a));           \
            vst1q_##SUF(y + i + (VL), vfmaq_n_##SUF(vld1q_##SUF(y + i + (VL)),                      \
                                                    vld1q_##SUF(x + i + (VL)), a));                 \
            vst1q_##SUF(y + i + 2 * (VL), vfmaq_n_##SUF(vld1q_##SUF(y + i + 2 * (VL)),              \
                                                        vld1q_##SUF(x + i + 2 * (VL)), a));         \
            vst1q_##SUF(y + i + 3 * (VL), vfmaq_n_##SUF(vld1q_##SUF(y + i + 3 * (VL)),              \
                                                        vld1q_##SUF(x + i + 3 * (VL)), a));         \
        }                                                                                           \
        for (; i + (VL) <= n; i += (VL))                                                            \
            vst1q_##SUF(y + i, vfmaq_n_##SUF(vld1q_##SUF(y + i), vld1q_##SUF(x + i), a));           \
        for (; i < n; i++) y[i] = CVX_NEON_SFMA_##T(a, x[i], y[i]);                                 \
    }
#define CVX_NEON_SFMA_float(a, b, c) fmaf(a, b, c)
#define CVX_NEON_SFMA_double(a, b, c) fma(a, b, c)
CVX_NEON_DEFINE_AXPY(float, f32, 4)
CVX_NEON_DEFINE_AXPY(double, f64, 2)

/* sum of x[i] * y[i] in the order every instruction set uses: 16 partial sums (element i goes
 * to partial i % 16, one fma each), then folded 8, 4, 2, 1: p[i] += p[i + 8], p[i] += p[i + 4], ... */
static inline float cvx_neon_dot_float(cvx_neon_index n, const float *x, const float *y)
{
    float32x4_t p0 = vdupq_n_f32(0.0f), p1 = p0, p2 = p0, p3 = p0;
    float part[16];
    cvx_neon_index i, m = n - n % 16;
    for (i = 0; i < m; i += 16) {
        p0 = vfmaq_f32(p0, vld1q_f32(x + i), vld1q_f32(y + i));
        p1 = vfmaq_f32(p1, vld1q_f32(x + i + 4), vld1q_f32(y + i + 4));
        p2 = vfmaq_f32(p2, vld1q_f32(x + i + 8), vld1q_f32(y + i + 8));
        p3 = vfmaq_f32(p3, vld1q_f32(x + i + 12), vld1q_f32(y + i + 12));
    }
    vst1q_f32(part, p0), vst1q_f32(part + 4, p1), vst1q_f32(part + 8, p2), vst1q_f32(part + 12, p3);
    for (i = m; i < n; i++) part[i - m] = fmaf(x[i], y[i], part[i - m]);
    p0 = vaddq_f32(vld1q_f32(part), vld1q_f32(part + 8));     /* partials 0-3 += 8-11 */
    p1 = vaddq_f32(vld1q_f32(part + 4), vld1q_f32(part + 12)); /* partials 4-7 += 12-15 */
    p0 = vaddq_f32(p0, p1);                                     /* 0-3 += 4-7 */
    {
        float32x2_t h = vadd_f32(vget_low_f32(p0), vget_high_f32(p0)); /* 0,1 += 2,3 */
        return vget_lane_f32(h, 0) + vget_lane_f32(h, 1);
    }
}
static inline double cvx_neon_dot_double(cvx_neon_index n, const double *x, const double *y)
{
    float64x2_t p0 = vdupq_n_f64(0.0), p1 = p0, p2 = p0, p3 = p0, p4 = p0, p5 = p0, p6 = p0, p7 = p0;
    double part[16];
    cvx_neon_index i, m = n - n % 16;
    int l;
    for (i = 0; i < m; i += 16) {
        p0 = vfmaq_f64(p0, vld1q_f64(x + i), vld1q_f64(y + i));
        p1 = vfmaq_f64(p1, vld1q_f64(x + i + 2), vld1q_f64(y + i + 2));
        p2 = vfmaq_f64(p2, vld1q_f64(x + i + 4), vld1q_f64(y + i + 4));
        p3 = vfmaq_f64(p3, vld1q_f64(x + i + 6), vld1q_f64(y + i + 6));
        p4 = vfmaq_f64(p4, vld1q_f64(x + i + 8), vld1q_f64(y + i + 8));
        p5 = vfmaq_f64(p5, vld1q_f64(x + i + 10), vld1q_f64(y + i + 10));
        p6 = vfmaq_f64(p6, vld1q_f64(x + i + 12), vld1q_f64(y + i + 12));
        p7 = vfmaq_f64(p7, vld1q_f64(x + i + 14), vld1q_f64(y + i + 14));
    }
    vst1q_f64(part, p0), vst1q_f64(part + 2, p1), vst1q_f64(part + 4, p2), vst1q_f64(part + 6, p3);
    vst1q_f64(part + 8, p4), vst1q_f64(part + 10, p5), vst1q_f64(part + 12, p6);
    vst1q_f64(part + 14, p7);
    for (i = m; i < n; i++) part[i - m] = fma(x[i], y[i], part[i - m]);
    for (l = 0; l < 8; l++) part[l] += part[l + 8];
    for (l = 0; l < 4; l++) part[l] += part[l + 4];
    part[0] += part[2];
    part[1] += part[3];
    return part[0] + part[1];
}

/* the FMA peak loop (convext.bench's ceiling): 16 independent chains acc = acc * m + c of 4-lane
 * FMAs (16 chains cover 4 pipes x 4 cycles of latency, as on Apple M and Neoverse V cores) */
static inline double cvx_neon_fma_chains(long long iters, float m, float c)
{
    float32x4_t a[16], vc = vdupq_n_f32(c);
    float out[4];
    double sum = 0.0;
    long long it;
    int i;
    for (i = 0; i < 16; i++) a[i] = vdupq_n_f32((float)i * 1e-3f);
    for (it = 0; it < iters; it++)
        for (i = 0; i < 16; i++) a[i] = vfmaq_n_f32(vc, a[i], m);
    for (i = 1; i < 16; i++) a[0] = vaddq_f32(a[0], a[i]);
    vst1q_f32(out, a[0]);
    for (i = 0; i < 4; i++) sum += out[i];
    return sum;
}

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

/* Direct-convolution forward tile of 8 filters x 12 float (6 double) pixels, the same lanes
 * trick: y[f*ldy + p] = fma chain over k ascending of w[k*8 + f] * u[off[k] + p], from the bias
 * b[f] (loaded by LD1R: a load, so a -0.0 bias stays -0.0).  The 8 weights of tap k are two
 * (four) whole vectors, so 24 accumulators + 3 inputs + 2 (4) weight vectors fit the register
 * file (with 8 broadcast weights GCC spills 4 accumulators). */
#define CVX_NEON_SBIAS(i) float32x4_t c##i##0 = vld1q_dup_f32(bias + (i)), c##i##1 = c##i##0, c##i##2 = c##i##0;
#define CVX_NEON_DBIAS(i) float64x2_t c##i##0 = vld1q_dup_f64(bias + (i)), c##i##1 = c##i##0, c##i##2 = c##i##0;
static inline __attribute__((always_inline)) void
cvx_neon_sdirect_8x12(cvx_neon_index K, const float *__restrict__ w,
                      const cvx_neon_index *__restrict__ off, const float *u, const float *bias,
                      float *c, cvx_neon_index ldc)
{
    const int NV = 3, add = 0;
    cvx_neon_index k;
    CVX_NEON_ROWS(CVX_NEON_SBIAS)
    for (k = 0; k < K; k++, w += 8) {
        const float *up = u + off[k];
        const float32x4_t a0 = vld1q_f32(w), a1 = vld1q_f32(w + 4);
        const float32x4_t b0 = vld1q_f32(up), b1 = vld1q_f32(up + 4), b2 = vld1q_f32(up + 8);
        CVX_NEON_ROWS(CVX_NEON_SFMA)
    }
    CVX_NEON_ROWS(CVX_NEON_SSTORE)
}
static inline __attribute__((always_inline)) void
cvx_neon_ddirect_8x6(cvx_neon_index K, const double *__restrict__ w,
                     const cvx_neon_index *__restrict__ off, const double *u, const double *bias,
                     double *c, cvx_neon_index ldc)
{
    const int NV = 3, add = 0;
    cvx_neon_index k;
    CVX_NEON_ROWS(CVX_NEON_DBIAS)
    for (k = 0; k < K; k++, w += 8) {
        const double *up = u + off[k];
        const float64x2_t a0 = vld1q_f64(w), a1 = vld1q_f64(w + 2);
        const float64x2_t a2 = vld1q_f64(w + 4), a3 = vld1q_f64(w + 6);
        const float64x2_t b0 = vld1q_f64(up), b1 = vld1q_f64(up + 2), b2 = vld1q_f64(up + 4);
        CVX_NEON_ROWS(CVX_NEON_DFMA)
    }
    CVX_NEON_ROWS(CVX_NEON_DSTORE)
}

#endif /* CVX_SIMD_NEON_H */
