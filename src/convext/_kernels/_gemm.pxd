# The C-level contract of _gemm.h (its header comment documents it) and a fused-type dispatcher,
# shared by the kernels that multiply matrices.
from ._types cimport floating, idx_t

cdef extern from "_gemm.h" nogil:
    enum: CVX_GEMM_WORK_ELEMS
    void cvx_sgemm(idx_t M, idx_t N, idx_t K, const float *A, idx_t rsa, idx_t csa,
                   const float *B, idx_t rsb, idx_t csb, float *C, idx_t ldc,
                   int accumulate, float *work)
    void cvx_dgemm(idx_t M, idx_t N, idx_t K, const double *A, idx_t rsa, idx_t csa,
                   const double *B, idx_t rsb, idx_t csb, double *C, idx_t ldc,
                   int accumulate, double *work)


cdef inline void gemm(idx_t M, idx_t N, idx_t K, const floating *A, idx_t rsa, idx_t csa,
                      const floating *B, idx_t rsb, idx_t csb, floating *C, idx_t ldc,
                      int accumulate, floating *work) noexcept nogil:
    """C (=, or += when accumulate) A @ B with strides; see _gemm.h."""
    if floating is float:
        cvx_sgemm(M, N, K, A, rsa, csa, B, rsb, csb, C, ldc, accumulate, work)
    else:
        cvx_dgemm(M, N, K, A, rsa, csa, B, rsb, csb, C, ldc, accumulate, work)
