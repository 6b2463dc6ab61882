/* The generic row of the instruction-set layer: kernels.inc over simd_generic.h.
 * Compiled by setup.py with this ISA's flags only (no ISA flag: the architecture's baseline (SSE2 on x86-64)); the
 * kernels run only when cvx_isa.c has found the ISA on the CPU. */
#include "cvx_isa.h"
#include "simd_generic.h"

#define CVX_DOUBLE 0
#include "kernels.inc"
#undef CVX_DOUBLE
#define CVX_DOUBLE 1
#include "kernels.inc"
#undef CVX_DOUBLE

const struct cvx_kernel_table cvx_table_generic = {
    .isa = CVX_ISA_GENERIC,
    .name = "generic",
    .description = "generic",
    .sgemm = cvx_gemm_f,
    .dgemm = cvx_gemm_d,
    .direct_fwd_f = cvx_direct_fwd_f,
    .direct_fwd_d = cvx_direct_fwd_d,
    .direct_gw_f = cvx_direct_gw_f,
    .direct_gw_d = cvx_direct_gw_d,
    .direct_gw_finish_f = cvx_direct_gw_finish_f,
    .direct_gw_finish_d = cvx_direct_gw_finish_d,
    .axpy_f = cvx_axpy_f,
    .axpy_d = cvx_axpy_d,
    .dot_f = cvx_dot_f,
    .dot_d = cvx_dot_d,
    .fma_chains = cvx_fma_chains,
    .f32_lanes = CVX_VF_LANES,
    .f64_lanes = CVX_VD_LANES,
    .sgemm_mr = CVX_SGEMM_MR,
    .sgemm_nr = CVX_SGEMM_NV * CVX_VF_LANES,
    .dgemm_mr = CVX_DGEMM_MR,
    .dgemm_nr = CVX_DGEMM_NV * CVX_VD_LANES,
    .fma_fused = CVX_FMA_FUSED,
};
