/* Pooling row kernels for _pool.pyx (the design is at its top): the interior output columns of
 * one output row of a max pool (with its argmax) or an average pool, vectorised over the output
 * columns with the taps scanned in the window's row-major order, exactly as the scalar loops
 * of _pool.pyx do for the border columns; and whole 2x2 and 3x3 max windows with their taps
 * unrolled (cvx_pl_max2/cvx_pl_max3).
 *
 * The per-instruction-set part is the list of instantiations below (one target attribute per
 * instruction set, chosen at run time with cvx_gemm_level() as _gemm.h does): the kernels
 * themselves are written once, in _pool_kernels.h. */
#ifndef CVX_POOL_H
#define CVX_POOL_H

#include <math.h>
#include <stdint.h>
#include "_gemm.h"

#define CVX_PL_NAME2(name, t, isa) name##_##t##_##isa
#define CVX_PL_NAME(name, t, isa) CVX_PL_NAME2(name, t, isa)

#define CVX_PL_ATTR CVX_MAYBE_UNUSED
#define CVX_PL_T float
#define CVX_PL_FN(name) CVX_PL_NAME(name, float, generic)
#include "_pool_kernels.h"
#undef CVX_PL_T
#undef CVX_PL_FN
#define CVX_PL_T double
#define CVX_PL_FN(name) CVX_PL_NAME(name, double, generic)
#include "_pool_kernels.h"
#undef CVX_PL_T
#undef CVX_PL_FN
#undef CVX_PL_ATTR

#if CVX_X86
#define CVX_PL_ATTR CVX_MAYBE_UNUSED CVX_ATTR_AVX512_DRV
#define CVX_PL_T float
#define CVX_PL_FN(name) CVX_PL_NAME(name, float, avx512)
#include "_pool_kernels.h"
#undef CVX_PL_T
#undef CVX_PL_FN
#define CVX_PL_T double
#define CVX_PL_FN(name) CVX_PL_NAME(name, double, avx512)
#include "_pool_kernels.h"
#undef CVX_PL_T
#undef CVX_PL_FN
#undef CVX_PL_ATTR

#define CVX_PL_ATTR CVX_MAYBE_UNUSED CVX_ATTR_AVX2_DRV
#define CVX_PL_T float
#define CVX_PL_FN(name) CVX_PL_NAME(name, float, avx2)
#include "_pool_kernels.h"
#undef CVX_PL_T
#undef CVX_PL_FN
#define CVX_PL_T double
#define CVX_PL_FN(name) CVX_PL_NAME(name, double, avx2)
#include "_pool_kernels.h"
#undef CVX_PL_T
#undef CVX_PL_FN
#undef CVX_PL_ATTR

#define CVX_PL_DISPATCH(name, t, ARGS)                                                            \
    do {                                                                                          \
        int level_ = cvx_gemm_level();                                                            \
        if (level_ == 2) return CVX_PL_NAME(name, t, avx512) ARGS;                                \
        if (level_ == 1) return CVX_PL_NAME(name, t, avx2) ARGS;                                  \
        return CVX_PL_NAME(name, t, generic) ARGS;                                                \
    } while (0)
#else
#define CVX_PL_DISPATCH(name, t, ARGS) return CVX_PL_NAME(name, t, generic) ARGS
#endif

#define CVX_PL_MAX_ARGS (xp, W, hs, i0, i1, dh, kw, sw, pw, dw, ow0, ow1, yp, ip)
#define CVX_PL_AVG_ARGS (xp, W, hs, i0, i1, kw, sw, pw, ow0, ow1, div, yp)
#define CVX_PL_DECL(T)                                                                            \
    CVX_MAYBE_UNUSED static void cvx_pl_max_row_##T(                                              \
        const T *xp, cvx_index W, cvx_index hs, cvx_index i0, cvx_index i1, cvx_index dh,        \
        cvx_index kw, cvx_index sw, cvx_index pw, cvx_index dw, cvx_index ow0, cvx_index ow1,    \
        T *yp, int64_t *ip)                                                                       \
    { CVX_PL_DISPATCH(cvx_pl_max_row, T, CVX_PL_MAX_ARGS); }                                      \
    CVX_MAYBE_UNUSED static void cvx_pl_avg_row_##T(                                              \
        const T *xp, cvx_index W, cvx_index hs, cvx_index i0, cvx_index i1, cvx_index kw,        \
        cvx_index sw, cvx_index pw, cvx_index ow0, cvx_index ow1, T div, T *yp)                  \
    { CVX_PL_DISPATCH(cvx_pl_avg_row, T, CVX_PL_AVG_ARGS); }
CVX_PL_DECL(float)
CVX_PL_DECL(double)

#define CVX_PL_SMALL_ARGS (n, r0, W, s, base, yp, ip)
#define CVX_PL_SMALL_DECL(T)                                                                      \
    CVX_MAYBE_UNUSED static void cvx_pl_max3_##T(cvx_index n, const T *r0, cvx_index W,           \
                                                 cvx_index s, int64_t base, T *yp, int64_t *ip)   \
    { CVX_PL_DISPATCH(cvx_pl_max3, T, CVX_PL_SMALL_ARGS); }                                       \
    CVX_MAYBE_UNUSED static void cvx_pl_max2_##T(cvx_index n, const T *r0, cvx_index W,           \
                                                 cvx_index s, int64_t base, T *yp, int64_t *ip)   \
    { CVX_PL_DISPATCH(cvx_pl_max2, T, CVX_PL_SMALL_ARGS); }
CVX_PL_SMALL_DECL(float)
CVX_PL_SMALL_DECL(double)

#endif
