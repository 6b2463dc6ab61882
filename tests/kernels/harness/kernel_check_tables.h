/* The kernel tables kernel_check.c checks: every row of the instruction-set layer compiled into
 * the harness (cvx_isa_compiled), as a struct check_table with the facts the checks need. The
 * script that builds the harness decides which isa/isa_<name>.c files are linked in, and defines
 * CVX_HAVE_ISA_<NAME> for them as setup.py does. */
#ifndef CVX_KERNEL_CHECK_TABLES_H
#define CVX_KERNEL_CHECK_TABLES_H

#include "cvx_isa.h" /* -I src/convext/_kernels/isa */

#define CHECK_MAX_TABLES CVX_ISA_COUNT

struct check_table {
    const char *name;
    int available; /* this CPU runs it */
    int fma_order; /* bitwise: the documented fma order (kernel_check.c) */
    cvx_index gemm_work_elems, gemm_kc;
    cvx_sgemm_fn sgemm;
    cvx_dgemm_fn dgemm;
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

static cvx_index check_direct_scratch(const cvx_direct_geom *g) { return cvx_direct_scratch(g); }
static cvx_index check_direct_v_elems(const cvx_direct_geom *g) { return cvx_direct_v_elems(g); }

/* the compiled rows, in enum order; returns how many */
static int check_tables(const struct check_table **out)
{
    static struct check_table rows[CVX_ISA_COUNT];
    int isa, n = 0;
    for (isa = 0; isa < CVX_ISA_COUNT; isa++) {
        const struct cvx_kernel_table *t = cvx_isa_compiled(isa);
        struct check_table *r = &rows[n];
        if (!t) continue;
        r->name = t->name;
        r->available = cvx_isa_cpu_supports(isa);
        r->fma_order = t->fma_fused;
        r->gemm_work_elems = CVX_GEMM_WORK_ELEMS;
        r->gemm_kc = CVX_GEMM_KC;
        r->sgemm = t->sgemm;
        r->dgemm = t->dgemm;
        r->direct_scratch = check_direct_scratch;
        r->direct_v_elems = check_direct_v_elems;
        r->direct_fwd_float = t->direct_fwd_f;
        r->direct_fwd_double = t->direct_fwd_d;
        r->direct_gw_float = t->direct_gw_f;
        r->direct_gw_double = t->direct_gw_d;
        r->direct_gw_finish_float = t->direct_gw_finish_f;
        r->direct_gw_finish_double = t->direct_gw_finish_d;
        r->axpy_float = t->axpy_f;
        r->axpy_double = t->axpy_d;
        r->dot_float = t->dot_f;
        r->dot_double = t->dot_d;
        out[n++] = r;
    }
    return n;
}

#endif /* CVX_KERNEL_CHECK_TABLES_H */
