/* Vector loops for the depthwise kernels of _conv.pyx: y += a*x and a dot product in a fixed
 * order. Each is compiled for AVX-512, AVX2+FMA and the baseline instruction set and chosen at
 * run time with cvx_gemm_level(), like _gemm.h (no -march flag needed). They are plain loops over
 * restrict pointers, which the compiler vectorises for each instruction set. The dot product
 * keeps 16 partial sums added in a fixed order, so its result depends only on n and the
 * instruction set. */
#ifndef CVX_VEC_H
#define CVX_VEC_H

#include "_gemm.h"

#define CVX_DEFINE_VEC(T, S, SUFFIX, ATTR)                                                        \
    ATTR static void cvx_axpy_##S##_##SUFFIX(cvx_index n, T a, const T *CVX_RESTRICT x,            \
                                            T *CVX_RESTRICT y)                                    \
    {                                                                                             \
        cvx_index i;                                                                              \
        for (i = 0; i < n; i++) y[i] += a * x[i];                                                 \
    }                                                                                             \
    ATTR static T cvx_dot_##S##_##SUFFIX(cvx_index n, const T *CVX_RESTRICT x,                     \
                                        const T *CVX_RESTRICT y)                                  \
    {                                                                                             \
        T acc[16] = {0};                                                                          \
        cvx_index i, l, m = n - n % 16;                                                           \
        for (i = 0; i < m; i += 16)                                                               \
            for (l = 0; l < 16; l++) acc[l] += x[i + l] * y[i + l];                               \
        for (i = m; i < n; i++) acc[i - m] += x[i] * y[i];                                        \
        for (l = 8; l > 0; l /= 2)                                                                \
            for (i = 0; i < l; i++) acc[i] += acc[i + l];                                         \
        return acc[0];                                                                            \
    }

CVX_DEFINE_VEC(float, float, generic, CVX_MAYBE_UNUSED)
CVX_DEFINE_VEC(double, double, generic, CVX_MAYBE_UNUSED)
#if CVX_X86
CVX_DEFINE_VEC(float, float, avx512, CVX_ATTR_AVX512)
CVX_DEFINE_VEC(double, double, avx512, CVX_ATTR_AVX512)
CVX_DEFINE_VEC(float, float, avx2, CVX_ATTR_AVX2)
CVX_DEFINE_VEC(double, double, avx2, CVX_ATTR_AVX2)
#define CVX_VEC_DISPATCH(CALL)                                                                    \
    do {                                                                                          \
        int level_ = cvx_gemm_level();                                                            \
        if (level_ == 2) return CALL(avx512);                                                     \
        if (level_ == 1) return CALL(avx2);                                                       \
        return CALL(generic);                                                                     \
    } while (0)
#else
#define CVX_VEC_DISPATCH(CALL) return CALL(generic)
#endif

#define CVX_AXPY_FLOAT(V) cvx_axpy_float_##V(n, a, x, y)
#define CVX_AXPY_DOUBLE(V) cvx_axpy_double_##V(n, a, x, y)
#define CVX_DOT_FLOAT(V) cvx_dot_float_##V(n, x, y)
#define CVX_DOT_DOUBLE(V) cvx_dot_double_##V(n, x, y)

/* y[i] += a * x[i] for i < n (x and y must not overlap) */
CVX_MAYBE_UNUSED static void cvx_axpy_float(cvx_index n, float a, const float *x, float *y)
{ CVX_VEC_DISPATCH(CVX_AXPY_FLOAT); }
CVX_MAYBE_UNUSED static void cvx_axpy_double(cvx_index n, double a, const double *x, double *y)
{ CVX_VEC_DISPATCH(CVX_AXPY_DOUBLE); }
/* sum of x[i] * y[i] for i < n, in a fixed order */
CVX_MAYBE_UNUSED static float cvx_dot_float(cvx_index n, const float *x, const float *y)
{ CVX_VEC_DISPATCH(CVX_DOT_FLOAT); }
CVX_MAYBE_UNUSED static double cvx_dot_double(cvx_index n, const double *x, const double *y)
{ CVX_VEC_DISPATCH(CVX_DOT_DOUBLE); }

#endif
