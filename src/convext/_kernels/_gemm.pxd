# The GEMM of the instruction-set layer (isa/kernels.inc documents it; _isa.pxd declares it) and a
# fused-type dispatcher, shared by the kernels that multiply matrices.
from ._types cimport floating, idx_t
from ._isa cimport (
    CVX_GEMM_WORK_ELEMS,
    cvx_dgemm,
    cvx_dgemm_pa,
    cvx_dgemm_pack_a,
    cvx_dgemm_pack_b,
    cvx_dgemm_pb,
    cvx_dgemm_pack_b_gather,
    cvx_dgemm_nt,
    cvx_gemm_packed_a_elems,
    cvx_gemm_packed_b_elems,
    cvx_sgemm,
    cvx_sgemm_pa,
    cvx_sgemm_pack_a,
    cvx_sgemm_pack_b,
    cvx_sgemm_pb,
    cvx_sgemm_pack_b_gather,
    cvx_sgemm_nt,
    isa_table,
)


cdef inline void gemm(idx_t M, idx_t N, idx_t K, const floating *A, idx_t rsa, idx_t csa,
                      const floating *B, idx_t rsb, idx_t csb, floating *C, idx_t ldc,
                      int accumulate, floating *work) noexcept nogil:
    """C (=, or += when accumulate) A @ B with strides; see isa/kernels.inc."""
    if floating is float:
        cvx_sgemm(M, N, K, A, rsa, csa, B, rsb, csb, C, ldc, accumulate, work)
    else:
        cvx_dgemm(M, N, K, A, rsa, csa, B, rsb, csb, C, ldc, accumulate, work)


cdef inline void gemm_nt(idx_t M, idx_t N, idx_t K, const floating *A, idx_t lda,
                         const floating *B, idx_t ldb, floating *C, idx_t ldc,
                         floating *work) noexcept nogil:
    """C (M x N) += A @ B.T, the rows of A and of B read along K (a weight gradient's dW^T, A
    unfolded input rows, B rows of grad_out); see isa/kernels.inc, cvx_gemm_nt."""
    if floating is float:
        cvx_sgemm_nt(M, N, K, A, lda, B, ldb, C, ldc, work)
    else:
        cvx_dgemm_nt(M, N, K, A, lda, B, ldb, C, ldc, work)


# ---- A packed once (a weight used by many calls): bitwise the same C as gemm() ----
cdef inline idx_t gemm_mr(bint is_double) noexcept nogil:
    """Rows of the active GEMM tile (the packed strips' height) for float / double."""
    return isa_table().dgemm_mr if is_double else isa_table().sgemm_mr


cdef inline void gemm_pack_a(idx_t M, idx_t K, const floating *A, idx_t rsa, idx_t csa,
                             floating *dst) noexcept nogil:
    """A (M x K, strided) into dst: cvx_gemm_packed_a_elems(M, K, gemm_mr(...)) elements."""
    if floating is float:
        cvx_sgemm_pack_a(M, K, A, rsa, csa, dst)
    else:
        cvx_dgemm_pack_a(M, K, A, rsa, csa, dst)


cdef inline void gemm_pa(idx_t M, idx_t N, idx_t K, const floating *Ap, const floating *B,
                         idx_t rsb, idx_t csb, floating *C, idx_t ldc, int accumulate,
                         floating *work) noexcept nogil:
    """gemm() with A packed by gemm_pack_a: Ap = packed + r0*K, r0 a multiple of gemm_mr."""
    if floating is float:
        cvx_sgemm_pa(M, N, K, Ap, B, rsb, csb, C, ldc, accumulate, work)
    else:
        cvx_dgemm_pa(M, N, K, Ap, B, rsb, csb, C, ldc, accumulate, work)


# ---- B packed once, shared by many row blocks of A: bitwise the same C as gemm() ----
cdef inline idx_t gemm_nr(bint is_double) noexcept nogil:
    """Columns of the active GEMM tile (the packed B strips' width) for float / double."""
    return isa_table().dgemm_nr if is_double else isa_table().sgemm_nr


cdef inline idx_t gemm_packed_b_elems(idx_t K, idx_t N, bint is_double) noexcept nogil:
    """Elements of B (K x N) packed by gemm_pack_b for the active instruction set."""
    return cvx_gemm_packed_b_elems(K, N, gemm_nr(is_double))


cdef inline void gemm_pack_b(idx_t K, idx_t N, idx_t r0, idx_t r1, const floating *B, idx_t rsb,
                             idx_t csb, floating *dst) noexcept nogil:
    """Rows r0..r1-1 of B (K x N; B points at row r0) into dst, gemm_packed_b_elems(K, N)
    elements: threads may pack disjoint row ranges of one dst."""
    if floating is float:
        cvx_sgemm_pack_b(K, N, r0, r1, B, rsb, csb, dst)
    else:
        cvx_dgemm_pack_b(K, N, r0, r1, B, rsb, csb, dst)


cdef inline void gemm_pb(idx_t M, idx_t N, idx_t K, const floating *A, idx_t rsa, idx_t csa,
                         const floating *Ap, const floating *Bp, floating *C, idx_t ldc,
                         int accumulate, floating *work) noexcept nogil:
    """gemm() with B packed by gemm_pack_b, A strided (Ap NULL) or packed by gemm_pack_a
    (Ap = packed + r0*K, r0 a multiple of gemm_mr)."""
    if floating is float:
        cvx_sgemm_pb(M, N, K, A, rsa, csa, Ap, Bp, C, ldc, accumulate, work)
    else:
        cvx_dgemm_pb(M, N, K, A, rsa, csa, Ap, Bp, C, ldc, accumulate, work)


cdef inline void gemm_pack_b_gather(idx_t K, idx_t N, idx_t r0, idx_t r1, const floating *X,
                                    idx_t plane, idx_t kk, const idx_t *tab, idx_t ldt,
                                    floating *dst) noexcept nogil:
    """gemm_pack_b of an unfolded input gathered straight from X (channel c of row r = c*kk + t
    at X + c*plane, column j of tap t at offset tab[t*ldt + j], -1 for a zero): rows r0..r1-1,
    the same packed values as gemm_pack_b of the unfolded B (isa/kernels.inc)."""
    if floating is float:
        cvx_sgemm_pack_b_gather(K, N, r0, r1, X, plane, kk, tab, ldt, dst)
    else:
        cvx_dgemm_pack_b_gather(K, N, r0, r1, X, plane, kk, tab, ldt, dst)
