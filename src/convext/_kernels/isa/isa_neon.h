/* Entry points of the NEON kernel set (isa_neon.c, compiled on AArch64 only). */
#ifndef CVX_ISA_NEON_H
#define CVX_ISA_NEON_H

#include "../_direct.h"

void cvx_sgemm_neon(CVX_GEMM_ARGS(float));
void cvx_dgemm_neon(CVX_GEMM_ARGS(double));
void cvx_direct_fwd_float_neon(const cvx_direct_geom *g, const float *x, const float *w,
                               const float *b, const cvx_index *off, float *y, float *scratch);
void cvx_direct_fwd_double_neon(const cvx_direct_geom *g, const double *x, const double *w,
                                const double *b, const cvx_index *off, double *y, double *scratch);
void cvx_direct_gw_float_neon(const cvx_direct_geom *g, const float *x, const float *gy,
                              const cvx_index *off, float *v, float *scratch);
void cvx_direct_gw_double_neon(const cvx_direct_geom *g, const double *x, const double *gy,
                               const cvx_index *off, double *v, double *scratch);
void cvx_direct_gw_finish_float_neon(const cvx_direct_geom *g, const float *v, float *grad_w);
void cvx_direct_gw_finish_double_neon(const cvx_direct_geom *g, const double *v, double *grad_w);
void cvx_axpy_float_neon(cvx_index n, float a, const float *x, float *y);
void cvx_axpy_double_neon(cvx_index n, double a, const double *x, double *y);
float cvx_dot_float_neon(cvx_index n, const float *x, const float *y);
double cvx_dot_double_neon(cvx_index n, const double *x, const double *y);
double cvx_fma_chains_neon(long long iters, float m, float c);

#endif /* CVX_ISA_NEON_H */
