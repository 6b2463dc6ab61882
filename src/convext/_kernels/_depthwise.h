/* Depthwise convolution kernels for _conv.pyx (the design is above its depthwise route).
 *
 * cvx_dw_taps_{float,double}: a weighted sum of up to any number of shifted copies of a plane,
 *     rows of n elements, taps in groups of 9, 3 and 1 held in registers, one pass over the
 *     output per group (a 3x3 kernel is one pass).
 * cvx_dw_dots_{float,double}: the products of one plane with up to any number of shifted copies
 *     of another, kept as 16 lane sums per tap (reduced in a fixed order by cvx_dw_lanes_*).
 * cvx_dw_poly/unpoly/place/copy_*: the plane copies (polyphase zero padding, extraction,
 *     placement on a zero grid, a strided copy), loops rather than memcpy/memset calls, which
 *     cost more than the copy itself on the small planes of late layers.
 *
 * The per-instruction-set part is the list of instantiations below (one target attribute per
 * instruction set, chosen at run time with cvx_gemm_level() as _gemm.h does): the kernels
 * themselves are written once, in _depthwise_kernels.h. */
#ifndef CVX_DEPTHWISE_H
#define CVX_DEPTHWISE_H

#include "_gemm.h"

#if defined(__GNUC__) && !defined(__clang__)
#define CVX_DW_NOCALLS __attribute__((optimize("no-tree-loop-distribute-patterns")))
#else
#define CVX_DW_NOCALLS
#endif
#define CVX_DW_NAME2(name, t, isa) name##_##t##_##isa
#define CVX_DW_NAME(name, t, isa) CVX_DW_NAME2(name, t, isa)

#define CVX_DW_ATTR CVX_MAYBE_UNUSED CVX_DW_NOCALLS
#define CVX_DW_T float
#define CVX_DW_FN(name) CVX_DW_NAME(name, float, generic)
#include "_depthwise_kernels.h"
#undef CVX_DW_T
#undef CVX_DW_FN
#define CVX_DW_T double
#define CVX_DW_FN(name) CVX_DW_NAME(name, double, generic)
#include "_depthwise_kernels.h"
#undef CVX_DW_T
#undef CVX_DW_FN
#undef CVX_DW_ATTR

#if CVX_X86
#define CVX_DW_ATTR CVX_MAYBE_UNUSED CVX_DW_NOCALLS CVX_ATTR_AVX512_DRV
#define CVX_DW_T float
#define CVX_DW_FN(name) CVX_DW_NAME(name, float, avx512)
#include "_depthwise_kernels.h"
#undef CVX_DW_T
#undef CVX_DW_FN
#define CVX_DW_T double
#define CVX_DW_FN(name) CVX_DW_NAME(name, double, avx512)
#include "_depthwise_kernels.h"
#undef CVX_DW_T
#undef CVX_DW_FN
#undef CVX_DW_ATTR

#define CVX_DW_ATTR CVX_MAYBE_UNUSED CVX_DW_NOCALLS CVX_ATTR_AVX2_DRV
#define CVX_DW_T float
#define CVX_DW_FN(name) CVX_DW_NAME(name, float, avx2)
#include "_depthwise_kernels.h"
#undef CVX_DW_T
#undef CVX_DW_FN
#define CVX_DW_T double
#define CVX_DW_FN(name) CVX_DW_NAME(name, double, avx2)
#include "_depthwise_kernels.h"
#undef CVX_DW_T
#undef CVX_DW_FN
#undef CVX_DW_ATTR

#define CVX_DW_DISPATCH(name, t, ARGS)                                                            \
    do {                                                                                          \
        int level_ = cvx_gemm_level();                                                            \
        if (level_ == 2) return CVX_DW_NAME(name, t, avx512) ARGS;                                \
        if (level_ == 1) return CVX_DW_NAME(name, t, avx2) ARGS;                                  \
        return CVX_DW_NAME(name, t, generic) ARGS;                                                \
    } while (0)
#else
#define CVX_DW_DISPATCH(name, t, ARGS) return CVX_DW_NAME(name, t, generic) ARGS
#endif

#define CVX_DW_TAPS_ARGS (rows, n, ld_in, ld_out, ntaps, base, w, bias, accumulate, out)
#define CVX_DW_DOTS_ARGS (rows, n, ld_in, ld_g, ntaps, base, g, acc)

CVX_MAYBE_UNUSED static void cvx_dw_taps_float(cvx_index rows, cvx_index n, cvx_index ld_in,
                                               cvx_index ld_out, int ntaps,
                                               const float *const *base, const float *w,
                                               float bias, int accumulate, float *out)
{ CVX_DW_DISPATCH(cvx_dw_taps, float, CVX_DW_TAPS_ARGS); }
CVX_MAYBE_UNUSED static void cvx_dw_taps_double(cvx_index rows, cvx_index n, cvx_index ld_in,
                                                cvx_index ld_out, int ntaps,
                                                const double *const *base, const double *w,
                                                double bias, int accumulate, double *out)
{ CVX_DW_DISPATCH(cvx_dw_taps, double, CVX_DW_TAPS_ARGS); }
CVX_MAYBE_UNUSED static void cvx_dw_dots_float(cvx_index rows, cvx_index n, cvx_index ld_in,
                                               cvx_index ld_g, int ntaps,
                                               const float *const *base, const float *g,
                                               float *acc)
{ CVX_DW_DISPATCH(cvx_dw_dots, float, CVX_DW_DOTS_ARGS); }
CVX_MAYBE_UNUSED static void cvx_dw_dots_double(cvx_index rows, cvx_index n, cvx_index ld_in,
                                                cvx_index ld_g, int ntaps,
                                                const double *const *base, const double *g,
                                                double *acc)
{ CVX_DW_DISPATCH(cvx_dw_dots, double, CVX_DW_DOTS_ARGS); }

#define CVX_DW_POLY_ARGS (src, H, W, ph, pw, sh, sw, Hp, Wp, Hq, Wq, na, pa, nb, pb, slack, dst)
#define CVX_DW_UNPOLY_ARGS (src, H, W, ph, pw, sh, sw, Hp, Wp, na, pa, nb, pb, sp, ld, dst)
#define CVX_DW_POLY_DECL(T)                                                                       \
    CVX_MAYBE_UNUSED static void cvx_dw_poly_##T(                                                 \
        const T *src, cvx_index H, cvx_index W, cvx_index ph, cvx_index pw, cvx_index sh,        \
        cvx_index sw, cvx_index Hp, cvx_index Wp, cvx_index Hq, cvx_index Wq, cvx_index na,      \
        const cvx_index *pa, cvx_index nb, const cvx_index *pb, cvx_index slack, T *dst)         \
    { CVX_DW_DISPATCH(cvx_dw_poly, T, CVX_DW_POLY_ARGS); }                                        \
    CVX_MAYBE_UNUSED static void cvx_dw_unpoly_##T(                                               \
        const T *src, cvx_index H, cvx_index W, cvx_index ph, cvx_index pw, cvx_index sh,        \
        cvx_index sw, cvx_index Hp, cvx_index Wp, cvx_index na, const cvx_index *pa,             \
        cvx_index nb, const cvx_index *pb, cvx_index sp, cvx_index ld, T *dst)                   \
    { CVX_DW_DISPATCH(cvx_dw_unpoly, T, CVX_DW_UNPOLY_ARGS); }
CVX_DW_POLY_DECL(float)
CVX_DW_POLY_DECL(double)
CVX_MAYBE_UNUSED static void cvx_dw_place_float(const float *src, cvx_index rows, cvx_index cols,
                                                cvx_index total, cvx_index ld, cvx_index r0,
                                                cvx_index c0, float *dst)
{ CVX_DW_DISPATCH(cvx_dw_place, float, (src, rows, cols, total, ld, r0, c0, dst)); }
CVX_MAYBE_UNUSED static void cvx_dw_place_double(const double *src, cvx_index rows,
                                                 cvx_index cols, cvx_index total, cvx_index ld,
                                                 cvx_index r0, cvx_index c0, double *dst)
{ CVX_DW_DISPATCH(cvx_dw_place, double, (src, rows, cols, total, ld, r0, c0, dst)); }
CVX_MAYBE_UNUSED static void cvx_dw_copy_float(cvx_index rows, cvx_index cols, const float *src,
                                               cvx_index lds, float *dst, cvx_index ldd)
{ CVX_DW_DISPATCH(cvx_dw_copy, float, (rows, cols, src, lds, dst, ldd)); }
CVX_MAYBE_UNUSED static void cvx_dw_copy_double(cvx_index rows, cvx_index cols,
                                                const double *src, cvx_index lds, double *dst,
                                                cvx_index ldd)
{ CVX_DW_DISPATCH(cvx_dw_copy, double, (rows, cols, src, lds, dst, ldd)); }

/* The 16 lane sums of one tap added in a fixed tree order (lane i + 8 onto lane i, then i + 4,
 * i + 2, i + 1), written out so that it compiles to a few instructions. */
#define CVX_DW_LANES(T)                                                                           \
    CVX_MAYBE_UNUSED static T cvx_dw_lanes_##T(const T *a)                                        \
    {                                                                                             \
        T s0 = a[0] + a[8], s1 = a[1] + a[9], s2 = a[2] + a[10], s3 = a[3] + a[11];               \
        T s4 = a[4] + a[12], s5 = a[5] + a[13], s6 = a[6] + a[14], s7 = a[7] + a[15];             \
        s0 += s4;                                                                                 \
        s1 += s5;                                                                                 \
        s2 += s6;                                                                                 \
        s3 += s7;                                                                                 \
        s0 += s2;                                                                                 \
        s1 += s3;                                                                                 \
        return s0 + s1;                                                                           \
    }
CVX_DW_LANES(float)
CVX_DW_LANES(double)

CVX_MAYBE_UNUSED static int cvx_dw_finite_float(cvx_index n, const float *p)
{ CVX_DW_DISPATCH(cvx_dw_finite, float, (n, p)); }
CVX_MAYBE_UNUSED static int cvx_dw_finite_double(cvx_index n, const double *p)
{ CVX_DW_DISPATCH(cvx_dw_finite, double, (n, p)); }


#endif
