# The GEMM of the instruction-set layer (isa/kernels.inc documents it; _isa.pxd declares it) and a
# fused-type dispatcher, shared by the kernels that multiply matrices.
from ._types cimport floating, idx_t
from ._isa cimport CVX_GEMM_WORK_ELEMS, cvx_dgemm, cvx_sgemm


cdef inline void gemm(idx_t M, idx_t N, idx_t K, const floating *A, idx_t rsa, idx_t csa,
                      const floating *B, idx_t rsb, idx_t csb, floating *C, idx_t ldc,
                      int accumulate, floating *work) noexcept nogil:
    """C (=, or += when accumulate) A @ B with strides; see isa/kernels.inc."""
    if floating is float:
        cvx_sgemm(M, N, K, A, rsa, csa, B, rsb, csb, C, ldc, accumulate, work)
    else:
        cvx_dgemm(M, N, K, A, rsa, csa, B, rsb, csb, C, ldc, accumulate, work)
