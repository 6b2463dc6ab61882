/* The avx2 row of the instruction-set layer: kernels.inc over simd_avx2.h.
 * Compiled by setup.py with this ISA's flags only (gcc/clang -mavx2 -mfma, MSVC /arch:AVX2); the
 * kernels run only when cvx_isa.c has found the ISA on the CPU. */
#include "cvx_isa.h"
#include "simd_avx2.h"

#define CVX_DOUBLE 0
#include "kernels.inc"
#undef CVX_DOUBLE
#define CVX_DOUBLE 1
#include "kernels.inc"
#undef CVX_DOUBLE

const struct cvx_kernel_table cvx_table_avx2 = {
    .isa = CVX_ISA_AVX2,
    .name = "avx2",
    .description = "AVX2+FMA",
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
    .dw_taps_f = cvx_dw_taps_f,
    .dw_taps_d = cvx_dw_taps_d,
    .dw_dots_f = cvx_dw_dots_f,
    .dw_dots_d = cvx_dw_dots_d,
    .dw_lanes_f = cvx_dw_lanes_f,
    .dw_lanes_d = cvx_dw_lanes_d,
    .dw_finite_f = cvx_dw_finite_f,
    .dw_finite_d = cvx_dw_finite_d,
    .dw_poly_f = cvx_dw_poly_f,
    .dw_poly_d = cvx_dw_poly_d,
    .dw_unpoly_f = cvx_dw_unpoly_f,
    .dw_unpoly_d = cvx_dw_unpoly_d,
    .dw_place_f = cvx_dw_place_f,
    .dw_place_d = cvx_dw_place_d,
    .dw_copy_f = cvx_dw_copy_f,
    .dw_copy_d = cvx_dw_copy_d,
    .pl_max_row_f = cvx_pl_max_row_f,
    .pl_max_row_d = cvx_pl_max_row_d,
    .pl_avg_row_f = cvx_pl_avg_row_f,
    .pl_avg_row_d = cvx_pl_avg_row_d,
    .pl_max3_f = cvx_pl_max3_f,
    .pl_max3_d = cvx_pl_max3_d,
    .pl_max2_f = cvx_pl_max2_f,
    .pl_max2_d = cvx_pl_max2_d,
    .fma_chains = cvx_fma_chains,
    .f32_lanes = CVX_VF_LANES,
    .f64_lanes = CVX_VD_LANES,
    .sgemm_mr = CVX_SGEMM_MR,
    .sgemm_nr = CVX_SGEMM_NV * CVX_VF_LANES,
    .dgemm_mr = CVX_DGEMM_MR,
    .dgemm_nr = CVX_DGEMM_NV * CVX_VD_LANES,
    .fma_fused = CVX_FMA_FUSED,
};
