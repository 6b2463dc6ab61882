/* Portable single-threaded strided GEMM for the convolution kernels (float and double).
 *
 *     C[i*ldc + j]  (=, or += when accumulate != 0)  sum_{k<K} A[i*rsa + k*csa] * B[k*rsb + j*csb]
 *
 * Design (Goto / BLIS):
 *   for jc in N step NC:                      B panel  (KC x NC)  packed into NR-wide column strips
 *     for pc in K step kc:                    kc = K split into ceil(K/CVX_GEMM_KC) near-equal chunks
 *       pack B[pc:pc+kc, jc:jc+nc]
 *       for ic in M step MC:                  A block  (MC x KC)  packed into MR-tall row strips
 *         pack A[ic:ic+mc, pc:pc+kc]
 *         for jr in nc step NR:  for ir in mc step MR:
 *           micro-kernel: an MR x NR register tile, acc = sum_k a[:,k] (x) b[k,:]  (FMA, k ascending),
 *           then C = acc (first K chunk, !accumulate) or C += acc.
 *   Packing absorbs any strides (A or B may be transposed views); partial strips are zero-padded.
 *   Edge tiles (fewer than MR rows / NR columns) run the SAME micro-kernel into a temporary tile that
 *   is then stored / added to C, so every C element sees exactly the same arithmetic whatever M, N and
 *   the sub-block being computed: results depend only on K (its chunking) and the instruction set.
 *
 *   The last partial column strip uses a narrower kernel (e.g. 8x16 / 8x32 instead of 8x48) with the
 *   same per-element arithmetic, so it is bitwise-identical too.  Operands that are contiguous along K
 *   (row-major A, transposed B) are packed with 8x8 (float) / 4x4 (double) in-register transposes;
 *   B rows are software-prefetched while packing (they are usually far apart in memory).
 *
 * Micro-kernels, selected at run time with __builtin_cpu_supports (GCC/clang on x86-64):
 *   AVX-512F      float 8x48  (24 zmm accumulators),  double 8x24
 *   AVX2+FMA      float 6x16  (12 ymm accumulators),  double 6x8
 *   otherwise     GNU vector extensions (SSE2 / NEON ...), or plain C for other compilers (MSVC).
 * No -march flag is needed: the ISA-specific functions carry target attributes (GCC >= 6 / clang).
 * The three paths may round differently from each other (FMA vs mul+add), but on a given machine
 * the path is fixed, so results are reproducible run to run and independent of the C blocking.
 * The caller provides `work` (>= CVX_GEMM_WORK_ELEMS elements of the float type; it is realigned
 * internally to 64 bytes).  No allocation, no globals written, thread-safe with separate work buffers.
 * Best N tile for callers: NC (a multiple of the 48-wide panels; docs/benchmarks.md, "Figures
 * measured once").  Small tiles pay for re-packing A on every call.
 */
#ifndef CVX_GEMM_H
#define CVX_GEMM_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef ptrdiff_t cvx_index;

/* ---- blocking parameters (shared by all kernels; KC/MC/NC must be multiples of all MR/NR) ---- */
#ifndef CVX_GEMM_KC
#define CVX_GEMM_KC 384          /* max K chunk; K is cut into ceil(K/KC) near-equal chunks     */
#endif
#ifndef CVX_GEMM_MC
#define CVX_GEMM_MC 144          /* multiple of 8, 6 and 4                                        */
#endif
#ifndef CVX_GEMM_NC
#define CVX_GEMM_NC 384          /* multiple of 48, 16 and 24                                     */
#endif
#ifndef CVX_PF_ROWS
#define CVX_PF_ROWS 4            /* B rows prefetched ahead while packing                        */
#endif
#define CVX_GEMM_MAXTILE 512     /* >= MR*NR of every kernel                                      */
#define CVX_GEMM_WORK_ELEMS \
    ((cvx_index)CVX_GEMM_KC * (CVX_GEMM_MC + CVX_GEMM_NC) + CVX_GEMM_MAXTILE + 16)

#if (defined(__GNUC__) || defined(__clang__)) && !defined(CVX_GEMM_NO_GNU) /* NO_GNU: testing */
#define CVX_GNU 1
#define CVX_INLINE static inline __attribute__((always_inline))
#define CVX_RESTRICT __restrict__
#define CVX_PREFETCH(p) __builtin_prefetch((p), 0, 3)
#define CVX_MAYBE_UNUSED __attribute__((unused))
#else
#define CVX_MAYBE_UNUSED
#define CVX_PREFETCH(p) ((void)0)
#define CVX_GNU 0
#define CVX_INLINE static __inline
#define CVX_RESTRICT
#endif

#if CVX_GNU && (defined(__x86_64__) || defined(__i386__)) && \
    (defined(__clang__) || __GNUC__ >= 6) && !defined(CVX_GEMM_NO_X86)
#define CVX_X86 1
#include <immintrin.h>
#else
#define CVX_X86 0
#endif

typedef void (*cvx_skern_t)(cvx_index, const float *, const float *, float *, cvx_index, int);
typedef void (*cvx_dkern_t)(cvx_index, const double *, const double *, double *, cvx_index, int);

/* ------------------------------------------------------------------------------------------------
 * Micro-kernel template: kc steps of an MR x (NV*VL) tile.  a: packed MR x kc (k-major), b: packed
 * kc x NR (k-major).  add == 0: C = acc;  add != 0: C = C + acc.   Ops are passed as macro names.
 * ---------------------------------------------------------------------------------------------- */
#if defined(__clang__)
#define CVX_PRAGMA_UNROLL _Pragma("unroll")
#else
#define CVX_PRAGMA_UNROLL _Pragma("GCC unroll 32")
#endif
#define CVX_DEFINE_KERNEL(NAME, T, VT, VL, MR, NV, ATTR, LD, ST, BC, FMA, ADD, ZERO)                 \
    ATTR static void NAME(cvx_index kc, const T *CVX_RESTRICT a, const T *CVX_RESTRICT b,            \
                          T *CVX_RESTRICT c, cvx_index ldc, int add)                                 \
    {                                                                                                \
        VT acc[MR][NV];                                                                              \
        cvx_index k;                                                                                 \
        int i, v;                                                                                    \
        CVX_PRAGMA_UNROLL for (i = 0; i < MR; i++)                                                   \
            CVX_PRAGMA_UNROLL for (v = 0; v < NV; v++) acc[i][v] = ZERO();                           \
        for (k = 0; k < kc; k++) {                                                                   \
            VT bv[NV];                                                                               \
            CVX_PRAGMA_UNROLL for (v = 0; v < NV; v++) bv[v] = LD(b + v * VL);                       \
            CVX_PRAGMA_UNROLL for (i = 0; i < MR; i++) {                                             \
                VT av = BC(a + i);                                                                   \
                CVX_PRAGMA_UNROLL for (v = 0; v < NV; v++) acc[i][v] = FMA(av, bv[v], acc[i][v]);    \
            }                                                                                        \
            a += MR;                                                                                 \
            b += NV * VL;                                                                            \
        }                                                                                            \
        if (add) {                                                                                   \
            CVX_PRAGMA_UNROLL for (i = 0; i < MR; i++)                                               \
                CVX_PRAGMA_UNROLL for (v = 0; v < NV; v++)                                           \
                    ST(c + i * ldc + v * VL, ADD(LD(c + i * ldc + v * VL), acc[i][v]));              \
        } else {                                                                                     \
            CVX_PRAGMA_UNROLL for (i = 0; i < MR; i++)                                               \
                CVX_PRAGMA_UNROLL for (v = 0; v < NV; v++) ST(c + i * ldc + v * VL, acc[i][v]);      \
        }                                                                                            \
    }

#if CVX_X86
/* AVX-512F: 32 zmm registers -> 8 x 3 vectors of accumulators. */
#define CVX_A5S_LD(p) _mm512_loadu_ps(p)
#define CVX_A5S_ST(p, x) _mm512_storeu_ps((p), (x))
#define CVX_A5S_BC(p) _mm512_set1_ps(*(p))
#define CVX_A5S_FMA(a, b, c) _mm512_fmadd_ps((a), (b), (c))
#define CVX_A5S_ADD(a, b) _mm512_add_ps((a), (b))
#define CVX_A5S_ZERO() _mm512_setzero_ps()
#define CVX_A5D_LD(p) _mm512_loadu_pd(p)
#define CVX_A5D_ST(p, x) _mm512_storeu_pd((p), (x))
#define CVX_A5D_BC(p) _mm512_set1_pd(*(p))
#define CVX_A5D_FMA(a, b, c) _mm512_fmadd_pd((a), (b), (c))
#define CVX_A5D_ADD(a, b) _mm512_add_pd((a), (b))
#define CVX_A5D_ZERO() _mm512_setzero_pd()
/* AVX2 + FMA: 16 ymm registers -> 6 x 2 vectors of accumulators. */
#define CVX_A2S_LD(p) _mm256_loadu_ps(p)
#define CVX_A2S_ST(p, x) _mm256_storeu_ps((p), (x))
#define CVX_A2S_BC(p) _mm256_broadcast_ss(p)
#define CVX_A2S_FMA(a, b, c) _mm256_fmadd_ps((a), (b), (c))
#define CVX_A2S_ADD(a, b) _mm256_add_ps((a), (b))
#define CVX_A2S_ZERO() _mm256_setzero_ps()
#define CVX_A2D_LD(p) _mm256_loadu_pd(p)
#define CVX_A2D_ST(p, x) _mm256_storeu_pd((p), (x))
#define CVX_A2D_BC(p) _mm256_broadcast_sd(p)
#define CVX_A2D_FMA(a, b, c) _mm256_fmadd_pd((a), (b), (c))
#define CVX_A2D_ADD(a, b) _mm256_add_pd((a), (b))
#define CVX_A2D_ZERO() _mm256_setzero_pd()

#define CVX_ATTR_AVX512 __attribute__((target("avx512f,avx2,fma"), noinline))
#define CVX_ATTR_AVX2 __attribute__((target("avx2,fma"), noinline))
#define CVX_ATTR_AVX512_DRV __attribute__((target("avx512f,avx2,fma")))
#define CVX_ATTR_AVX2_DRV __attribute__((target("avx2,fma")))

#define CVX_S_A5_MR 8
#define CVX_S_A5_NR 48
#define CVX_D_A5_MR 8
#define CVX_D_A5_NR 24
#define CVX_S_A2_MR 6
#define CVX_S_A2_NR 16
#define CVX_D_A2_MR 6
#define CVX_D_A2_NR 8
/* In-register transposes used by packing when the operand is contiguous along K (8x8 float, 4x4
 * double): read TB rows of TB contiguous elements at stride ld, write TB rows at stride ldd. */
static inline __attribute__((target("avx2,fma"), always_inline)) void
cvx_str8_avx2(const float *src, cvx_index ld, float *dst, cvx_index ldd)
{
    __m256 r0 = _mm256_loadu_ps(src), r1 = _mm256_loadu_ps(src + ld);
    __m256 r2 = _mm256_loadu_ps(src + 2 * ld), r3 = _mm256_loadu_ps(src + 3 * ld);
    __m256 r4 = _mm256_loadu_ps(src + 4 * ld), r5 = _mm256_loadu_ps(src + 5 * ld);
    __m256 r6 = _mm256_loadu_ps(src + 6 * ld), r7 = _mm256_loadu_ps(src + 7 * ld);
    __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
    __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
    __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
    __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
    __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    _mm256_storeu_ps(dst, _mm256_permute2f128_ps(s0, s4, 0x20));
    _mm256_storeu_ps(dst + ldd, _mm256_permute2f128_ps(s1, s5, 0x20));
    _mm256_storeu_ps(dst + 2 * ldd, _mm256_permute2f128_ps(s2, s6, 0x20));
    _mm256_storeu_ps(dst + 3 * ldd, _mm256_permute2f128_ps(s3, s7, 0x20));
    _mm256_storeu_ps(dst + 4 * ldd, _mm256_permute2f128_ps(s0, s4, 0x31));
    _mm256_storeu_ps(dst + 5 * ldd, _mm256_permute2f128_ps(s1, s5, 0x31));
    _mm256_storeu_ps(dst + 6 * ldd, _mm256_permute2f128_ps(s2, s6, 0x31));
    _mm256_storeu_ps(dst + 7 * ldd, _mm256_permute2f128_ps(s3, s7, 0x31));
}
static inline __attribute__((target("avx2,fma"), always_inline)) void
cvx_dtr4_avx2(const double *src, cvx_index ld, double *dst, cvx_index ldd)
{
    __m256d r0 = _mm256_loadu_pd(src), r1 = _mm256_loadu_pd(src + ld);
    __m256d r2 = _mm256_loadu_pd(src + 2 * ld), r3 = _mm256_loadu_pd(src + 3 * ld);
    __m256d t0 = _mm256_unpacklo_pd(r0, r1), t1 = _mm256_unpackhi_pd(r0, r1);
    __m256d t2 = _mm256_unpacklo_pd(r2, r3), t3 = _mm256_unpackhi_pd(r2, r3);
    _mm256_storeu_pd(dst, _mm256_permute2f128_pd(t0, t2, 0x20));
    _mm256_storeu_pd(dst + ldd, _mm256_permute2f128_pd(t1, t3, 0x20));
    _mm256_storeu_pd(dst + 2 * ldd, _mm256_permute2f128_pd(t0, t2, 0x31));
    _mm256_storeu_pd(dst + 3 * ldd, _mm256_permute2f128_pd(t1, t3, 0x31));
}

CVX_DEFINE_KERNEL(cvx_skern_avx512, float, __m512, 16, 8, 3, CVX_ATTR_AVX512, CVX_A5S_LD, CVX_A5S_ST,
                  CVX_A5S_BC, CVX_A5S_FMA, CVX_A5S_ADD, CVX_A5S_ZERO)
CVX_DEFINE_KERNEL(cvx_dkern_avx512, double, __m512d, 8, 8, 3, CVX_ATTR_AVX512, CVX_A5D_LD, CVX_A5D_ST,
                  CVX_A5D_BC, CVX_A5D_FMA, CVX_A5D_ADD, CVX_A5D_ZERO)
CVX_DEFINE_KERNEL(cvx_skern_avx2, float, __m256, 8, 6, 2, CVX_ATTR_AVX2, CVX_A2S_LD, CVX_A2S_ST,
                  CVX_A2S_BC, CVX_A2S_FMA, CVX_A2S_ADD, CVX_A2S_ZERO)
CVX_DEFINE_KERNEL(cvx_dkern_avx2, double, __m256d, 4, 6, 2, CVX_ATTR_AVX2, CVX_A2D_LD, CVX_A2D_ST,
                  CVX_A2D_BC, CVX_A2D_FMA, CVX_A2D_ADD, CVX_A2D_ZERO)
/* Narrower kernels for the last (partial) column strip: same per-element arithmetic. */
CVX_DEFINE_KERNEL(cvx_skern_avx512_n1, float, __m512, 16, 8, 1, CVX_ATTR_AVX512, CVX_A5S_LD, CVX_A5S_ST,
                  CVX_A5S_BC, CVX_A5S_FMA, CVX_A5S_ADD, CVX_A5S_ZERO)
CVX_DEFINE_KERNEL(cvx_skern_avx512_n2, float, __m512, 16, 8, 2, CVX_ATTR_AVX512, CVX_A5S_LD, CVX_A5S_ST,
                  CVX_A5S_BC, CVX_A5S_FMA, CVX_A5S_ADD, CVX_A5S_ZERO)
CVX_DEFINE_KERNEL(cvx_dkern_avx512_n1, double, __m512d, 8, 8, 1, CVX_ATTR_AVX512, CVX_A5D_LD, CVX_A5D_ST,
                  CVX_A5D_BC, CVX_A5D_FMA, CVX_A5D_ADD, CVX_A5D_ZERO)
CVX_DEFINE_KERNEL(cvx_dkern_avx512_n2, double, __m512d, 8, 8, 2, CVX_ATTR_AVX512, CVX_A5D_LD, CVX_A5D_ST,
                  CVX_A5D_BC, CVX_A5D_FMA, CVX_A5D_ADD, CVX_A5D_ZERO)
CVX_DEFINE_KERNEL(cvx_skern_avx2_n1, float, __m256, 8, 6, 1, CVX_ATTR_AVX2, CVX_A2S_LD, CVX_A2S_ST,
                  CVX_A2S_BC, CVX_A2S_FMA, CVX_A2S_ADD, CVX_A2S_ZERO)
CVX_DEFINE_KERNEL(cvx_dkern_avx2_n1, double, __m256d, 4, 6, 1, CVX_ATTR_AVX2, CVX_A2D_LD, CVX_A2D_ST,
                  CVX_A2D_BC, CVX_A2D_FMA, CVX_A2D_ADD, CVX_A2D_ZERO)
#define CVX_DEFINE_NARROW(NAME, T, K1, K2)                                                           \
    static void NAME(int nv, cvx_index kc, const T *a, const T *b, T *c, cvx_index ldc, int add)     \
    {                                                                                                \
        if (nv == 1) K1(kc, a, b, c, ldc, add);                                                      \
        else K2(kc, a, b, c, ldc, add);                                                              \
    }
CVX_DEFINE_NARROW(cvx_snarrow_avx512, float, cvx_skern_avx512_n1, cvx_skern_avx512_n2)
CVX_DEFINE_NARROW(cvx_dnarrow_avx512, double, cvx_dkern_avx512_n1, cvx_dkern_avx512_n2)
CVX_DEFINE_NARROW(cvx_snarrow_avx2, float, cvx_skern_avx2_n1, cvx_skern_avx2_n1)
CVX_DEFINE_NARROW(cvx_dnarrow_avx2, double, cvx_dkern_avx2_n1, cvx_dkern_avx2_n1)
#endif /* CVX_X86 */

/* Generic kernels: GNU vector extensions (16-byte vectors: SSE2, NEON, ...) or plain C. */
#if CVX_GNU
typedef float cvx_gvs __attribute__((vector_size(16)));
typedef double cvx_gvd __attribute__((vector_size(16)));
typedef float cvx_gvs_u __attribute__((vector_size(16), aligned(4), may_alias));
typedef double cvx_gvd_u __attribute__((vector_size(16), aligned(8), may_alias));
#define CVX_GS_LD(p) (*(const cvx_gvs_u *)(p))
#define CVX_GS_ST(p, x) (*(cvx_gvs_u *)(p) = (x))
#define CVX_GS_BC(p) ((cvx_gvs){0.0f, 0.0f, 0.0f, 0.0f} + *(p))
#define CVX_GS_FMA(a, b, c) ((c) + (a) * (b))
#define CVX_GS_ADD(a, b) ((a) + (b))
#define CVX_GS_ZERO() ((cvx_gvs){0.0f, 0.0f, 0.0f, 0.0f})
#define CVX_GD_LD(p) (*(const cvx_gvd_u *)(p))
#define CVX_GD_ST(p, x) (*(cvx_gvd_u *)(p) = (x))
#define CVX_GD_BC(p) ((cvx_gvd){0.0, 0.0} + *(p))
#define CVX_GD_FMA(a, b, c) ((c) + (a) * (b))
#define CVX_GD_ADD(a, b) ((a) + (b))
#define CVX_GD_ZERO() ((cvx_gvd){0.0, 0.0})
#define CVX_S_G_MR 4
#define CVX_S_G_NR 12
#define CVX_D_G_MR 4
#define CVX_D_G_NR 6
CVX_DEFINE_KERNEL(cvx_skern_generic, float, cvx_gvs, 4, 4, 3, __attribute__((noinline)), CVX_GS_LD,
                  CVX_GS_ST, CVX_GS_BC, CVX_GS_FMA, CVX_GS_ADD, CVX_GS_ZERO)
CVX_DEFINE_KERNEL(cvx_dkern_generic, double, cvx_gvd, 2, 4, 3, __attribute__((noinline)), CVX_GD_LD,
                  CVX_GD_ST, CVX_GD_BC, CVX_GD_FMA, CVX_GD_ADD, CVX_GD_ZERO)
#else
#define CVX_S_G_MR 4
#define CVX_S_G_NR 8
#define CVX_D_G_MR 4
#define CVX_D_G_NR 4
#define CVX_DEFINE_CKERNEL(NAME, T, MR, NR)                                                           \
    static void NAME(cvx_index kc, const T *a, const T *b, T *c, cvx_index ldc, int add)              \
    {                                                                                                \
        T acc[MR][NR];                                                                               \
        cvx_index k;                                                                                 \
        int i, j;                                                                                    \
        for (i = 0; i < MR; i++)                                                                     \
            for (j = 0; j < NR; j++) acc[i][j] = 0;                                                  \
        for (k = 0; k < kc; k++, a += MR, b += NR)                                                   \
            for (i = 0; i < MR; i++)                                                                 \
                for (j = 0; j < NR; j++) acc[i][j] += a[i] * b[j];                                   \
        for (i = 0; i < MR; i++)                                                                     \
            for (j = 0; j < NR; j++) c[i * ldc + j] = add ? c[i * ldc + j] + acc[i][j] : acc[i][j];  \
    }
CVX_DEFINE_CKERNEL(cvx_skern_generic, float, 4, 8)
CVX_DEFINE_CKERNEL(cvx_dkern_generic, double, 4, 4)
#endif

/* ------------------------------------------------------------------------------------------------
 * Packing and blocked driver, written once per float type; MR, NR and the kernel are compile-time
 * constants after inlining into the per-ISA entry points below.
 * ---------------------------------------------------------------------------------------------- */
#define CVX_DEFINE_DRIVER(T, S)                                                                      \
    /* A[0:mc, 0:kc] -> ceil(mc/MR) strips of MR x kc, stored k-major, zero padded */                \
    CVX_INLINE void cvx_##S##pack_a(cvx_index mc, cvx_index kc, const T *A, cvx_index rsa,           \
                                    cvx_index csa, int MR, T *CVX_RESTRICT dst, int TB,              \
                                    void (*tr)(const T *, cvx_index, T *, cvx_index))                \
    {                                                                                                \
        cvx_index ir, i, k, kt = tr ? kc - kc % TB : 0;                                              \
        for (ir = 0; ir < mc; ir += MR, dst += MR * kc) {                                            \
            cvx_index mr = mc - ir < MR ? mc - ir : MR;                                              \
            const T *src = A + ir * rsa;                                                             \
            if (mr == MR && rsa == 1) {                                                              \
                for (k = 0; k < kc; k++)                                                             \
                    for (i = 0; i < MR; i++) dst[k * MR + i] = src[k * csa + i];                     \
            } else if (mr == MR && csa == 1) {                                                       \
                if (tr && MR % TB == 0) { /* in-register transposes of TB x TB blocks */             \
                    for (k = 0; k < kt; k += TB)                                                     \
                        for (i = 0; i < MR; i += TB) tr(src + i * rsa + k, rsa, dst + k * MR + i, MR); \
                } else kt = 0;                                                                       \
                for (k = kt; k < kc; k++)                                                            \
                    for (i = 0; i < MR; i++) dst[k * MR + i] = src[i * rsa + k];                     \
            } else {                                                                                 \
                for (k = 0; k < kc; k++) {                                                           \
                    for (i = 0; i < mr; i++) dst[k * MR + i] = src[i * rsa + k * csa];               \
                    for (; i < MR; i++) dst[k * MR + i] = 0;                                         \
                }                                                                                    \
            }                                                                                        \
        }                                                                                            \
    }                                                                                                \
    /* B[0:kc, 0:nc] -> ceil(nc/NR) strips of kc x NR, stored k-major, zero padded */                \
    CVX_INLINE void cvx_##S##pack_b(cvx_index kc, cvx_index nc, const T *B, cvx_index rsb,           \
                                    cvx_index csb, int NR, int VL, T *CVX_RESTRICT dst, int TB,      \
                                    void (*tr)(const T *, cvx_index, T *, cvx_index))                \
    {                                                                                                \
        cvx_index jr, j, k, nfull = nc - nc % NR, kt = tr ? kc - kc % TB : 0;                        \
        if (csb == 1) {                                                                              \
            for (k = 0; k < kc; k++) {                                                               \
                const T *src = B + k * rsb;                                                          \
                T *d = dst + k * NR;                                                                 \
                if (k + CVX_PF_ROWS < kc) /* rows are far apart: help the hardware prefetcher */     \
                    for (j = 0; j < nc; j += 64 / (cvx_index)sizeof(T))                              \
                        CVX_PREFETCH(src + CVX_PF_ROWS * rsb + j);                                   \
                for (jr = 0; jr < nfull; jr += NR, d += NR * kc)                                     \
                    for (j = 0; j < NR; j++) d[j] = src[jr + j];                                     \
            }                                                                                        \
        } else if (rsb == 1) {                                                                       \
            if (!tr || NR % TB) kt = 0;                                                              \
            for (jr = 0; jr < nfull; jr += NR) {                                                     \
                T *d = dst + jr * kc;                                                                \
                for (k = 0; k < kt; k += TB) { /* in-register transposes of TB x TB blocks */        \
                    if (k % (64 / (cvx_index)sizeof(T)) == 0) /* one prefetch per line, 4 lines ahead */ \
                        for (j = 0; j < NR; j++) CVX_PREFETCH(B + (jr + j) * csb + k + 256 / sizeof(T)); \
                    for (j = 0; j < NR; j += TB) tr(B + (jr + j) * csb + k, csb, d + k * NR + j, NR); \
                }                                                                                    \
                for (k = kt; k < kc; k += 8) {                                                       \
                    cvx_index kk, kn = kc - k < 8 ? kc - k : 8;                                      \
                    for (j = 0; j < NR; j++) {                                                       \
                        const T *src = B + (jr + j) * csb + k;                                       \
                        for (kk = 0; kk < kn; kk++) d[(k + kk) * NR + j] = src[kk];                  \
                    }                                                                                \
                }                                                                                    \
            }                                                                                        \
        } else {                                                                                     \
            for (jr = 0; jr < nfull; jr += NR) {                                                     \
                T *d = dst + jr * kc;                                                                \
                for (k = 0; k < kc; k++)                                                             \
                    for (j = 0; j < NR; j++) d[k * NR + j] = B[k * rsb + (jr + j) * csb];            \
            }                                                                                        \
        }                                                                                            \
        if (nfull < nc) { /* last strip: NR wide, or VL-rounded when narrow kernels exist */         \
            T *d = dst + nfull * kc;                                                                 \
            cvx_index w = VL ? (nc - nfull + VL - 1) / VL * VL : NR;                                 \
            for (k = 0; k < kc; k++) {                                                               \
                for (j = 0; j < nc - nfull; j++) d[k * w + j] = B[k * rsb + (nfull + j) * csb];      \
                for (; j < w; j++) d[k * w + j] = 0;                                                 \
            }                                                                                        \
        }                                                                                            \
    }                                                                                                \
    CVX_INLINE void cvx_##S##gemm_driver(                                                            \
        cvx_index M, cvx_index N, cvx_index K, const T *A, cvx_index rsa, cvx_index csa,             \
        const T *B, cvx_index rsb, cvx_index csb, T *C, cvx_index ldc, int accumulate, T *work,      \
        const int MR, const int NR, void (*kern)(cvx_index, const T *, const T *, T *, cvx_index,    \
                                                 int),                                               \
        const int TB, void (*tr)(const T *, cvx_index, T *, cvx_index), const int VL,                \
        void (*knarrow)(int, cvx_index, const T *, const T *, T *, cvx_index, int))                  \
    {                                                                                                \
        cvx_index jc, pc, ic, jr, ir, i, j, nchunks, kcmax;                                          \
        T *ws = (T *)(((uintptr_t)work + 63) & ~(uintptr_t)63);                                      \
        T *bp = ws, *ap = ws + (cvx_index)CVX_GEMM_KC * CVX_GEMM_NC;                           \
        T *tmp = ap + (cvx_index)CVX_GEMM_KC * CVX_GEMM_MC;                                    \
        if (M <= 0 || N <= 0) return;                                                                \
        if (K <= 0) {                                                                                \
            if (!accumulate)                                                                         \
                for (i = 0; i < M; i++)                                                              \
                    for (j = 0; j < N; j++) C[i * ldc + j] = 0;                                      \
            return;                                                                                  \
        }                                                                                            \
        nchunks = (K + CVX_GEMM_KC - 1) / CVX_GEMM_KC;                                               \
        kcmax = (K + nchunks - 1) / nchunks;                                                         \
        for (jc = 0; jc < N; jc += CVX_GEMM_NC) {                                                    \
            cvx_index nc = N - jc < CVX_GEMM_NC ? N - jc : CVX_GEMM_NC;                              \
            for (pc = 0; pc < K; pc += kcmax) {                                                      \
                cvx_index kc = K - pc < kcmax ? K - pc : kcmax;                                      \
                int add = accumulate || pc > 0;                                                      \
                cvx_##S##pack_b(kc, nc, B + pc * rsb + jc * csb, rsb, csb, NR, knarrow ? VL : 0, bp, TB, tr);                  \
                for (ic = 0; ic < M; ic += CVX_GEMM_MC) {                                            \
                    cvx_index mc = M - ic < CVX_GEMM_MC ? M - ic : CVX_GEMM_MC;                      \
                    cvx_##S##pack_a(mc, kc, A + ic * rsa + pc * csa, rsa, csa, MR, ap, TB, tr);              \
                    for (jr = 0; jr < nc; jr += NR) {                                                \
                        cvx_index nr = nc - jr < NR ? nc - jr : NR;                                  \
                        int nv = knarrow ? (int)((nr + VL - 1) / VL) : 0; /* narrow last strip */    \
                        if (nv * VL == NR) nv = 0;                                                   \
                        for (ir = 0; ir < mc; ir += MR) {                                            \
                            cvx_index mr = mc - ir < MR ? mc - ir : MR;                              \
                            T *c = C + (ic + ir) * ldc + jc + jr;                                    \
                            if (mr == MR && nr == NR) {                                              \
                                kern(kc, ap + ir * kc, bp + jr * kc, c, ldc, add);                   \
                            } else if (nv && mr == MR && nr == nv * VL) {                            \
                                knarrow(nv, kc, ap + ir * kc, bp + jr * kc, c, ldc, add);            \
                            } else {                                                                 \
                                if (nv) knarrow(nv, kc, ap + ir * kc, bp + jr * kc, tmp, NR, 0);     \
                                else kern(kc, ap + ir * kc, bp + jr * kc, tmp, NR, 0);               \
                                for (i = 0; i < mr; i++)                                             \
                                    for (j = 0; j < nr; j++) {                                       \
                                        if (add) c[i * ldc + j] += tmp[i * NR + j];                  \
                                        else c[i * ldc + j] = tmp[i * NR + j];                       \
                                    }                                                                \
                            }                                                                        \
                        }                                                                            \
                    }                                                                                \
                }                                                                                    \
            }                                                                                        \
        }                                                                                            \
    }

CVX_DEFINE_DRIVER(float, s)
CVX_DEFINE_DRIVER(double, d)

#define CVX_GEMM_ARGS(T)                                                                             \
    cvx_index M, cvx_index N, cvx_index K, const T *A, cvx_index rsa, cvx_index csa, const T *B,     \
        cvx_index rsb, cvx_index csb, T *C, cvx_index ldc, int accumulate, T *work
#define CVX_GEMM_PASS M, N, K, A, rsa, csa, B, rsb, csb, C, ldc, accumulate, work

/* Per-ISA entry points: the driver is inlined, so packing loops are compiled for that ISA too. */
#if CVX_X86
CVX_ATTR_AVX512_DRV static void cvx_sgemm_avx512(CVX_GEMM_ARGS(float))
{
    cvx_sgemm_driver(CVX_GEMM_PASS, CVX_S_A5_MR, CVX_S_A5_NR, cvx_skern_avx512, 8, cvx_str8_avx2, 16,
                     cvx_snarrow_avx512);
}
CVX_ATTR_AVX512_DRV static void cvx_dgemm_avx512(CVX_GEMM_ARGS(double))
{
    cvx_dgemm_driver(CVX_GEMM_PASS, CVX_D_A5_MR, CVX_D_A5_NR, cvx_dkern_avx512, 4, cvx_dtr4_avx2, 8,
                     cvx_dnarrow_avx512);
}
CVX_ATTR_AVX2_DRV static void cvx_sgemm_avx2(CVX_GEMM_ARGS(float))
{
    cvx_sgemm_driver(CVX_GEMM_PASS, CVX_S_A2_MR, CVX_S_A2_NR, cvx_skern_avx2, 8, cvx_str8_avx2, 8,
                     cvx_snarrow_avx2);
}
CVX_ATTR_AVX2_DRV static void cvx_dgemm_avx2(CVX_GEMM_ARGS(double))
{
    cvx_dgemm_driver(CVX_GEMM_PASS, CVX_D_A2_MR, CVX_D_A2_NR, cvx_dkern_avx2, 4, cvx_dtr4_avx2, 4,
                     cvx_dnarrow_avx2);
}
#endif
static void cvx_sgemm_generic(CVX_GEMM_ARGS(float))
{
    cvx_sgemm_driver(CVX_GEMM_PASS, CVX_S_G_MR, CVX_S_G_NR, cvx_skern_generic, 1, 0, 0, 0);
}
static void cvx_dgemm_generic(CVX_GEMM_ARGS(double))
{
    cvx_dgemm_driver(CVX_GEMM_PASS, CVX_D_G_MR, CVX_D_G_NR, cvx_dkern_generic, 1, 0, 0, 0);
}

/* Kernel level selected at run time: 2 = AVX-512F, 1 = AVX2+FMA, 0 = generic.
 * Define CVX_GEMM_FORCE_LEVEL to pin it (testing). */
CVX_MAYBE_UNUSED static int cvx_gemm_level(void)
{
#if defined(CVX_GEMM_FORCE_LEVEL)
    return CVX_GEMM_FORCE_LEVEL;
#elif CVX_X86
    if (__builtin_cpu_supports("avx512f")) return 2;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return 1;
    return 0;
#else
    return 0;
#endif
}

CVX_MAYBE_UNUSED static void cvx_sgemm(CVX_GEMM_ARGS(float))
{
#if CVX_X86
    int level = cvx_gemm_level();
    if (level == 2) { cvx_sgemm_avx512(CVX_GEMM_PASS); return; }
    if (level == 1) { cvx_sgemm_avx2(CVX_GEMM_PASS); return; }
#endif
    cvx_sgemm_generic(CVX_GEMM_PASS);
}

CVX_MAYBE_UNUSED static void cvx_dgemm(CVX_GEMM_ARGS(double))
{
#if CVX_X86
    int level = cvx_gemm_level();
    if (level == 2) { cvx_dgemm_avx512(CVX_GEMM_PASS); return; }
    if (level == 1) { cvx_dgemm_avx2(CVX_GEMM_PASS); return; }
#endif
    cvx_dgemm_generic(CVX_GEMM_PASS);
}

#endif /* CVX_GEMM_H */
