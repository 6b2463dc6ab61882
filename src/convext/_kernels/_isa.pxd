# The C-level contract of the instruction-set layer (isa/cvx_isa.h documents it): the kernel
# table, the direct convolution's geometry and scratch sizes, and the entry points every other
# kernel module calls. The kernels are compiled once, into the _isa extension; isa_table() (shared
# through Cython's C-API capsule) returns the table chosen at import (CONVEXT_ISA, or the best one
# this CPU runs). The inline functions below keep the C names the modules called before.
from ._types cimport idx_t

cdef extern from "isa/cvx_isa.h" nogil:
    enum: CVX_GEMM_WORK_ELEMS
    enum: CVX_ISA_COUNT

    ctypedef struct cvx_direct_geom:
        idx_t Cg, H, W, Fg, kh, kw, sh, sw, ph, pw, dil_h, dil_w, OH, OW, Hq, K, P

    idx_t cvx_direct_scratch(const cvx_direct_geom *g)
    idx_t cvx_direct_v_elems(const cvx_direct_geom *g)

    struct cvx_kernel_table:
        int isa
        const char *name
        const char *description
        void (*sgemm)(idx_t M, idx_t N, idx_t K, const float *A, idx_t rsa, idx_t csa,
                      const float *B, idx_t rsb, idx_t csb, float *C, idx_t ldc,
                      int accumulate, float *work) noexcept nogil
        void (*dgemm)(idx_t M, idx_t N, idx_t K, const double *A, idx_t rsa, idx_t csa,
                      const double *B, idx_t rsb, idx_t csb, double *C, idx_t ldc,
                      int accumulate, double *work) noexcept nogil
        void (*direct_fwd_f)(const cvx_direct_geom *g, const float *x, const float *w,
                             const float *b, const idx_t *off, float *y,
                             float *scratch) noexcept nogil
        void (*direct_fwd_d)(const cvx_direct_geom *g, const double *x, const double *w,
                             const double *b, const idx_t *off, double *y,
                             double *scratch) noexcept nogil
        void (*direct_gw_f)(const cvx_direct_geom *g, const float *x, const float *gy,
                            const idx_t *off, float *v, float *scratch) noexcept nogil
        void (*direct_gw_d)(const cvx_direct_geom *g, const double *x, const double *gy,
                            const idx_t *off, double *v, double *scratch) noexcept nogil
        void (*direct_gw_finish_f)(const cvx_direct_geom *g, const float *v,
                                   float *grad_w) noexcept nogil
        void (*direct_gw_finish_d)(const cvx_direct_geom *g, const double *v,
                                   double *grad_w) noexcept nogil
        void (*axpy_f)(idx_t n, float a, const float *x, float *y) noexcept nogil
        void (*axpy_d)(idx_t n, double a, const double *x, double *y) noexcept nogil
        float (*dot_f)(idx_t n, const float *x, const float *y) noexcept nogil
        double (*dot_d)(idx_t n, const double *x, const double *y) noexcept nogil
        double (*fma_chains)(long long iters, float m, float c) noexcept nogil
        int f32_lanes, f64_lanes, sgemm_mr, sgemm_nr, dgemm_mr, dgemm_nr, fma_fused


cdef const cvx_kernel_table *isa_table() noexcept nogil


# ---- the entry points, through the active table ----
cdef inline void cvx_sgemm(idx_t M, idx_t N, idx_t K, const float *A, idx_t rsa, idx_t csa,
                           const float *B, idx_t rsb, idx_t csb, float *C, idx_t ldc,
                           int accumulate, float *work) noexcept nogil:
    isa_table().sgemm(M, N, K, A, rsa, csa, B, rsb, csb, C, ldc, accumulate, work)


cdef inline void cvx_dgemm(idx_t M, idx_t N, idx_t K, const double *A, idx_t rsa, idx_t csa,
                           const double *B, idx_t rsb, idx_t csb, double *C, idx_t ldc,
                           int accumulate, double *work) noexcept nogil:
    isa_table().dgemm(M, N, K, A, rsa, csa, B, rsb, csb, C, ldc, accumulate, work)


cdef inline void cvx_direct_fwd_float(const cvx_direct_geom *g, const float *x, const float *w,
                                      const float *b, const idx_t *off, float *y,
                                      float *scratch) noexcept nogil:
    isa_table().direct_fwd_f(g, x, w, b, off, y, scratch)


cdef inline void cvx_direct_fwd_double(const cvx_direct_geom *g, const double *x,
                                       const double *w, const double *b, const idx_t *off,
                                       double *y, double *scratch) noexcept nogil:
    isa_table().direct_fwd_d(g, x, w, b, off, y, scratch)


cdef inline void cvx_direct_gw_float(const cvx_direct_geom *g, const float *x, const float *gy,
                                     const idx_t *off, float *v, float *scratch) noexcept nogil:
    isa_table().direct_gw_f(g, x, gy, off, v, scratch)


cdef inline void cvx_direct_gw_double(const cvx_direct_geom *g, const double *x,
                                      const double *gy, const idx_t *off, double *v,
                                      double *scratch) noexcept nogil:
    isa_table().direct_gw_d(g, x, gy, off, v, scratch)


cdef inline void cvx_direct_gw_finish_float(const cvx_direct_geom *g, const float *v,
                                            float *grad_w) noexcept nogil:
    isa_table().direct_gw_finish_f(g, v, grad_w)


cdef inline void cvx_direct_gw_finish_double(const cvx_direct_geom *g, const double *v,
                                             double *grad_w) noexcept nogil:
    isa_table().direct_gw_finish_d(g, v, grad_w)


cdef inline void cvx_axpy_float(idx_t n, float a, const float *x, float *y) noexcept nogil:
    isa_table().axpy_f(n, a, x, y)


cdef inline void cvx_axpy_double(idx_t n, double a, const double *x, double *y) noexcept nogil:
    isa_table().axpy_d(n, a, x, y)


cdef inline float cvx_dot_float(idx_t n, const float *x, const float *y) noexcept nogil:
    return isa_table().dot_f(n, x, y)


cdef inline double cvx_dot_double(idx_t n, const double *x, const double *y) noexcept nogil:
    return isa_table().dot_d(n, x, y)
