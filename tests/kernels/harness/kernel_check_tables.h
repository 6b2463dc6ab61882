/* The kernel tables kernel_check.c checks: one struct check_table per instruction set compiled
 * into the harness, with the entry points and the facts the checks need. */
#ifndef CVX_KERNEL_CHECK_TABLES_H
#define CVX_KERNEL_CHECK_TABLES_H

#include "../../../src/convext/_kernels/_direct.h"
#include "../../../src/convext/_kernels/_vec.h"
#if defined(__aarch64__)
#include "../../../src/convext/_kernels/isa/isa_neon.h"
#endif

#define CHECK_MAX_TABLES 4

struct check_table {
    const char *name;
    int (*available)(void); /* does this CPU run it */
    int fma_order;          /* bitwise: the documented fma order (see kernel_check.c) */
    cvx_index gemm_work_elems, gemm_kc;
    void (*sgemm)(CVX_GEMM_ARGS(float));
    void (*dgemm)(CVX_GEMM_ARGS(double));
    cvx_index (*direct_scratch)(const cvx_direct_geom *);
    cvx_index (*direct_v_elems)(const cvx_direct_geom *);
    void (*direct_fwd_float)(const cvx_direct_geom *, const float *, const float *, const float *,
                             const cvx_index *, float *, float *);
    void (*direct_fwd_double)(const cvx_direct_geom *, const double *, const double *,
                              const double *, const cvx_index *, double *, double *);
    void (*direct_gw_float)(const cvx_direct_geom *, const float *, const float *,
                            const cvx_index *, float *, float *);
    void (*direct_gw_double)(const cvx_direct_geom *, const double *, const double *,
                             const cvx_index *, double *, double *);
    void (*direct_gw_finish_float)(const cvx_direct_geom *, const float *, float *);
    void (*direct_gw_finish_double)(const cvx_direct_geom *, const double *, double *);
    void (*axpy_float)(cvx_index, float, const float *, float *);
    void (*axpy_double)(cvx_index, double, const double *, double *);
    float (*dot_float)(cvx_index, const float *, const float *);
    double (*dot_double)(cvx_index, const double *, const double *);
};

static int check_always(void) { return 1; }

#if defined(__aarch64__)
static const struct check_table check_table_neon = {
    "neon", check_always, 1, CVX_GEMM_WORK_ELEMS, CVX_GEMM_KC,
    cvx_sgemm_neon, cvx_dgemm_neon, cvx_direct_scratch, cvx_direct_v_elems,
    cvx_direct_fwd_float_neon, cvx_direct_fwd_double_neon,
    cvx_direct_gw_float_neon, cvx_direct_gw_double_neon,
    cvx_direct_gw_finish_float_neon, cvx_direct_gw_finish_double_neon,
    cvx_axpy_float_neon, cvx_axpy_double_neon, cvx_dot_float_neon, cvx_dot_double_neon};
#endif

#if CVX_X86
/* the level _gemm.h dispatches to on this CPU (AVX-512F or AVX2+FMA; both use FMA) */
static int check_x86_fma(void) { return cvx_gemm_level() >= 1; }
static const struct check_table check_table_dispatch = {
    "x86", check_x86_fma, 1, CVX_GEMM_WORK_ELEMS, CVX_GEMM_KC,
    cvx_sgemm, cvx_dgemm, cvx_direct_scratch, cvx_direct_v_elems,
    cvx_direct_fwd_float, cvx_direct_fwd_double, cvx_direct_gw_float, cvx_direct_gw_double,
    cvx_direct_gw_finish_float, cvx_direct_gw_finish_double,
    cvx_axpy_float, cvx_axpy_double, cvx_dot_float, cvx_dot_double};
#endif

static int check_tables(const struct check_table **t)
{
    int n = 0;
#if defined(__aarch64__)
    t[n++] = &check_table_neon;
#endif
#if CVX_X86
    t[n++] = &check_table_dispatch;
#endif
    return n;
}

#endif /* CVX_KERNEL_CHECK_TABLES_H */
