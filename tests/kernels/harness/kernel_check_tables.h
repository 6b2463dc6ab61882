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
    /* the GEMM with A packed once: tile rows, packed size, pack, multiply */
    int sgemm_mr, dgemm_mr;
    cvx_index (*gemm_packed_a_elems)(cvx_index M, cvx_index K, cvx_index mr);
    void (*sgemm_pack_a)(cvx_index, cvx_index, const float *, cvx_index, cvx_index, float *);
    void (*dgemm_pack_a)(cvx_index, cvx_index, const double *, cvx_index, cvx_index, double *);
    void (*sgemm_pa)(cvx_index, cvx_index, cvx_index, const float *, const float *, cvx_index,
                     cvx_index, float *, cvx_index, int, float *);
    void (*dgemm_pa)(cvx_index, cvx_index, cvx_index, const double *, const double *, cvx_index,
                     cvx_index, double *, cvx_index, int, double *);
    /* the GEMM with B packed once: tile columns, packed size, pack (a row range), multiply */
    int sgemm_nr, dgemm_nr;
    cvx_index (*gemm_packed_b_elems)(cvx_index K, cvx_index N, cvx_index nr);
    void (*sgemm_pack_b)(cvx_index, cvx_index, cvx_index, cvx_index, const float *, cvx_index,
                         cvx_index, float *);
    void (*dgemm_pack_b)(cvx_index, cvx_index, cvx_index, cvx_index, const double *, cvx_index,
                         cvx_index, double *);
    void (*sgemm_pb)(cvx_index, cvx_index, cvx_index, const float *, cvx_index, cvx_index,
                     const float *, const float *, float *, cvx_index, int, float *);
    void (*dgemm_pb)(cvx_index, cvx_index, cvx_index, const double *, cvx_index, cvx_index,
                     const double *, const double *, double *, cvx_index, int, double *);
    /* C += A B^T, both read along their rows, and its largest K chunk */
    void (*sgemm_nt)(cvx_index, cvx_index, cvx_index, const float *, cvx_index, const float *,
                     cvx_index, float *, cvx_index, float *);
    void (*dgemm_nt)(cvx_index, cvx_index, cvx_index, const double *, cvx_index, const double *,
                     cvx_index, double *, cvx_index, double *);
    cvx_index sgemm_nt_kc, dgemm_nt_kc;
    cvx_index (*direct_scratch)(const cvx_direct_geom *);
    cvx_index (*direct_fwd_scratch)(const cvx_direct_geom *);
    cvx_index (*direct_v_elems)(const cvx_direct_geom *);
    void (*direct_fwd_float)(const cvx_direct_geom *, const float *, const float *, const float *,
                             const float *, const cvx_index *, float *, float *);
    void (*direct_fwd_double)(const cvx_direct_geom *, const double *, const double *,
                              const double *, const double *, const cvx_index *, double *,
                              double *);
    void (*direct_pack_float)(const cvx_direct_geom *, const float *, float *, cvx_index,
                              cvx_index);
    void (*direct_pack_double)(const cvx_direct_geom *, const double *, double *, cvx_index,
                               cvx_index);
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
    void (*dw_taps_float)(cvx_index rows, cvx_index n, cvx_index ld_in, cvx_index ld_out, int ntaps,
                      const float *const *base, const float *w, float bias, int accumulate,
                      float *out);
    void (*dw_taps_double)(cvx_index rows, cvx_index n, cvx_index ld_in, cvx_index ld_out, int ntaps,
                      const double *const *base, const double *w, double bias, int accumulate,
                      double *out);
    void (*dw_dots_float)(cvx_index rows, cvx_index n, cvx_index ld_in, cvx_index ld_g, int ntaps,
                      const float *const *base, const float *g, float *acc);
    void (*dw_dots_double)(cvx_index rows, cvx_index n, cvx_index ld_in, cvx_index ld_g, int ntaps,
                      const double *const *base, const double *g, double *acc);
    float (*dw_lanes_float)(const float *a);
    double (*dw_lanes_double)(const double *a);
    int (*dw_finite_float)(cvx_index n, const float *p);
    int (*dw_finite_double)(cvx_index n, const double *p);
    void (*dw_poly_float)(const float *src, cvx_index H, cvx_index W, cvx_index ph, cvx_index pw,
                      cvx_index sh, cvx_index sw, cvx_index Hp, cvx_index Wp, cvx_index Hq,
                      cvx_index Wq, cvx_index na, const cvx_index *pa, cvx_index nb,
                      const cvx_index *pb, cvx_index slack, float *dst);
    void (*dw_poly_double)(const double *src, cvx_index H, cvx_index W, cvx_index ph, cvx_index pw,
                      cvx_index sh, cvx_index sw, cvx_index Hp, cvx_index Wp, cvx_index Hq,
                      cvx_index Wq, cvx_index na, const cvx_index *pa, cvx_index nb,
                      const cvx_index *pb, cvx_index slack, double *dst);
    void (*dw_unpoly_float)(const float *src, cvx_index H, cvx_index W, cvx_index ph, cvx_index pw,
                        cvx_index sh, cvx_index sw, cvx_index Hp, cvx_index Wp, cvx_index na,
                        const cvx_index *pa, cvx_index nb, const cvx_index *pb, cvx_index sp,
                        cvx_index ld, float *dst);
    void (*dw_unpoly_double)(const double *src, cvx_index H, cvx_index W, cvx_index ph, cvx_index pw,
                        cvx_index sh, cvx_index sw, cvx_index Hp, cvx_index Wp, cvx_index na,
                        const cvx_index *pa, cvx_index nb, const cvx_index *pb, cvx_index sp,
                        cvx_index ld, double *dst);
    void (*dw_place_float)(const float *src, cvx_index rows, cvx_index cols, cvx_index total,
                       cvx_index ld, cvx_index r0, cvx_index c0, float *dst);
    void (*dw_place_double)(const double *src, cvx_index rows, cvx_index cols, cvx_index total,
                       cvx_index ld, cvx_index r0, cvx_index c0, double *dst);
    void (*dw_copy_float)(cvx_index rows, cvx_index cols, const float *src, cvx_index lds, float *dst,
                      cvx_index ldd);
    void (*dw_copy_double)(cvx_index rows, cvx_index cols, const double *src, cvx_index lds,
                      double *dst, cvx_index ldd);
    void (*dw_cb_fwd_float)(cvx_index nl, const float *x, cvx_index H, cvx_index W, cvx_index ph,
                        cvx_index pw, cvx_index Hp, cvx_index Wp, cvx_index OH, cvx_index OW,
                        cvx_index sh, cvx_index sw, int kk, const cvx_index *toff,
                        const float *w, const float *b, const float *res, int clamp, float lo,
                        float hi, float *scratch, float *y);
    void (*dw_cb_fwd_double)(cvx_index nl, const double *x, cvx_index H, cvx_index W, cvx_index ph,
                        cvx_index pw, cvx_index Hp, cvx_index Wp, cvx_index OH, cvx_index OW,
                        cvx_index sh, cvx_index sw, int kk, const cvx_index *toff,
                        const double *w, const double *b, const double *res, int clamp, double lo,
                        double hi, double *scratch, double *y);
    void (*dw_cb_gx_float)(cvx_index nl, const float *gy, cvx_index OH, cvx_index OW, cvx_index H,
                       cvx_index W, cvx_index ph, cvx_index pw, cvx_index Hp, cvx_index Wp,
                       cvx_index sh, cvx_index sw, cvx_index DI, cvx_index DJ, cvx_index Hq,
                       cvx_index Wq, cvx_index na, const cvx_index *pa, cvx_index nb,
                       const cvx_index *pb, int kk, const int *tcount, const int *tix,
                       const cvx_index *toff, const float *w, float *scratch, float *gx);
    void (*dw_cb_gx_double)(cvx_index nl, const double *gy, cvx_index OH, cvx_index OW, cvx_index H,
                       cvx_index W, cvx_index ph, cvx_index pw, cvx_index Hp, cvx_index Wp,
                       cvx_index sh, cvx_index sw, cvx_index DI, cvx_index DJ, cvx_index Hq,
                       cvx_index Wq, cvx_index na, const cvx_index *pa, cvx_index nb,
                       const cvx_index *pb, int kk, const int *tcount, const int *tix,
                       const cvx_index *toff, const double *w, double *scratch, double *gx);
    void (*dw_cb_gw_float)(cvx_index nl, cvx_index N, const float *x, cvx_index xs, const float *gy,
                       cvx_index gys, cvx_index H, cvx_index W, cvx_index ph, cvx_index pw,
                       cvx_index Hp, cvx_index Wp, cvx_index OH, cvx_index OW, cvx_index sh,
                       cvx_index sw, cvx_index na, const cvx_index *pa, cvx_index nb,
                       const cvx_index *pb, int kk, const cvx_index *toff, int flat,
                       const cvx_index *start, const cvx_index *gq, const cvx_index *xq,
                       float *scratch, float *gw);
    void (*dw_cb_gw_double)(cvx_index nl, cvx_index N, const double *x, cvx_index xs,
                       const double *gy, cvx_index gys, cvx_index H, cvx_index W, cvx_index ph,
                       cvx_index pw, cvx_index Hp, cvx_index Wp, cvx_index OH, cvx_index OW,
                       cvx_index sh, cvx_index sw, cvx_index na, const cvx_index *pa,
                       cvx_index nb, const cvx_index *pb, int kk, const cvx_index *toff,
                       int flat, const cvx_index *start, const cvx_index *gq,
                       const cvx_index *xq, double *scratch, double *gw);
    void (*dw_out_float)(cvx_index rows, cvx_index cols, const float *z, cvx_index ldz,
                         const float *res, cvx_index ldr, int clamp, float lo, float hi,
                         float *y, cvx_index ldy);
    void (*dw_out_double)(cvx_index rows, cvx_index cols, const double *z, cvx_index ldz,
                          const double *res, cvx_index ldr, int clamp, double lo, double hi,
                          double *y, cvx_index ldy);
    void (*bias_out_float)(cvx_index rows, cvx_index cols, float *y, cvx_index ldy, const float *b,
                           const float *res, cvx_index ldr, int clamp, float lo, float hi);
    void (*bias_out_double)(cvx_index rows, cvx_index cols, double *y, cvx_index ldy,
                            const double *b, const double *res, cvx_index ldr, int clamp,
                            double lo, double hi);
    void (*dw_taps_act_float)(cvx_index rows, cvx_index n, cvx_index ld_in, cvx_index ld_out,
                              int ntaps, const float *const *base, const float *w, float bias,
                              int clamp, float lo, float hi, float *out);
    void (*dw_taps_act_double)(cvx_index rows, cvx_index n, cvx_index ld_in, cvx_index ld_out,
                               int ntaps, const double *const *base, const double *w,
                               double bias, int clamp, double lo, double hi, double *out);
    void (*dw_pad1_float)(const float *src, cvx_index H, cvx_index W, cvx_index ph,
                          cvx_index pw, cvx_index Hp, cvx_index Wp, cvx_index slack, float *dst);
    void (*dw_pad1_double)(const double *src, cvx_index H, cvx_index W, cvx_index ph,
                           cvx_index pw, cvx_index Hp, cvx_index Wp, cvx_index slack,
                           double *dst);
    /* pooling rows (pool.inc; _pool.pyx): max (with argmax) and average over the interior
     * columns of one output row; whole 3x3 and 2x2 max windows */
    void (*pl_max_row_float)(const float *xp, cvx_index W, cvx_index hs, cvx_index i0, cvx_index i1,
                         cvx_index dh, cvx_index kw, cvx_index sw, cvx_index pw, cvx_index dw,
                         cvx_index ow0, cvx_index ow1, float *yp, int64_t *ip);
    void (*pl_max_row_double)(const double *xp, cvx_index W, cvx_index hs, cvx_index i0, cvx_index i1,
                         cvx_index dh, cvx_index kw, cvx_index sw, cvx_index pw, cvx_index dw,
                         cvx_index ow0, cvx_index ow1, double *yp, int64_t *ip);
    void (*pl_avg_row_float)(const float *xp, cvx_index W, cvx_index hs, cvx_index i0, cvx_index i1,
                         cvx_index kw, cvx_index sw, cvx_index pw, cvx_index ow0, cvx_index ow1,
                         float div, float *yp);
    void (*pl_avg_row_double)(const double *xp, cvx_index W, cvx_index hs, cvx_index i0, cvx_index i1,
                         cvx_index kw, cvx_index sw, cvx_index pw, cvx_index ow0, cvx_index ow1,
                         double div, double *yp);
    void (*pl_max3_float)(cvx_index n, const float *r0, cvx_index W, cvx_index s, int64_t base,
                      float *yp, int64_t *ip);
    void (*pl_max3_double)(cvx_index n, const double *r0, cvx_index W, cvx_index s, int64_t base,
                      double *yp, int64_t *ip);
    void (*pl_max2_float)(cvx_index n, const float *r0, cvx_index W, cvx_index s, int64_t base,
                      float *yp, int64_t *ip);
    void (*pl_max2_double)(cvx_index n, const double *r0, cvx_index W, cvx_index s, int64_t base,
                      double *yp, int64_t *ip);
    int (*pl_back2_float)(cvx_index n, const float *gy, const int64_t *ix, int64_t base,
                          cvx_index W, float *g0, float *g1);
    int (*pl_back2_double)(cvx_index n, const double *gy, const int64_t *ix, int64_t base,
                           cvx_index W, double *g0, double *g1);
    void (*pl_max3_rows_float)(cvx_index rows, cvx_index n, cvx_index s, const float *r0,
                               cvx_index W, int64_t base, cvx_index OW, float *yp, int64_t *ip);
    void (*pl_max3_rows_double)(cvx_index rows, cvx_index n, cvx_index s, const double *r0,
                                cvx_index W, int64_t base, cvx_index OW, double *yp,
                                int64_t *ip);
    void (*pl_vmax3s2_float)(const float *x, cvx_index H, cvx_index W, cvx_index ph,
                             cvx_index pw, cvx_index OW, cvx_index oh0, cvx_index oh1, float *y);
    void (*pl_vmax3s2_double)(const double *x, cvx_index H, cvx_index W, cvx_index ph,
                              cvx_index pw, cvx_index OW, cvx_index oh0, cvx_index oh1, double *y);
    void (*pl_max3_lanes_float)(const float *x, cvx_index H, cvx_index W, cvx_index s,
                                cvx_index ph, cvx_index pw, cvx_index OW, cvx_index oh0,
                                cvx_index oh1, float *y, int64_t *ip);
    void (*pl_max3_lanes_double)(const double *x, cvx_index H, cvx_index W, cvx_index s,
                                 cvx_index ph, cvx_index pw, cvx_index OW, cvx_index oh0,
                                 cvx_index oh1, double *y, int64_t *ip);
    void (*pl_vmax2s2_float)(const float *x, cvx_index H, cvx_index W, cvx_index OW,
                             cvx_index oh0, cvx_index oh1, float *y);
    void (*pl_vmax2s2_double)(const double *x, cvx_index H, cvx_index W, cvx_index OW,
                              cvx_index oh0, cvx_index oh1, double *y);
    void (*pl_vmax_sep_float)(const float *x, cvx_index H, cvx_index W, cvx_index kh,
                              cvx_index kw, cvx_index sh, cvx_index sw, cvx_index ph,
                              cvx_index pw, cvx_index OW, cvx_index oh0, cvx_index oh1, float *y);
    void (*pl_vmax_sep_double)(const double *x, cvx_index H, cvx_index W, cvx_index kh,
                               cvx_index kw, cvx_index sh, cvx_index sw, cvx_index ph,
                               cvx_index pw, cvx_index OW, cvx_index oh0, cvx_index oh1,
                               double *y);
    void (*pl_vavg_sep_float)(const float *x, cvx_index H, cvx_index W, cvx_index kh,
                              cvx_index kw, cvx_index sh, cvx_index sw, cvx_index ph,
                              cvx_index pw, cvx_index pb, cvx_index pr, int include_pad,
                              cvx_index divisor, cvx_index OW, cvx_index oh0, cvx_index oh1,
                              float *y);
    void (*pl_vavg_sep_double)(const double *x, cvx_index H, cvx_index W, cvx_index kh,
                               cvx_index kw, cvx_index sh, cvx_index sw, cvx_index ph,
                               cvx_index pw, cvx_index pb, cvx_index pr, int include_pad,
                               cvx_index divisor, cvx_index OW, cvx_index oh0, cvx_index oh1,
                               double *y);
};

static cvx_index check_gemm_packed_a_elems(cvx_index M, cvx_index K, cvx_index mr)
{
    return cvx_gemm_packed_a_elems(M, K, mr);
}
static cvx_index check_gemm_packed_b_elems(cvx_index K, cvx_index N, cvx_index nr)
{
    return cvx_gemm_packed_b_elems(K, N, nr);
}
static cvx_index check_direct_scratch(const cvx_direct_geom *g) { return cvx_direct_scratch(g); }
/* the forward's at g's band (direct_setup: the current one), as convext._kernels._isa's
 * direct_fwd_scratch sizes it */
static cvx_index check_direct_fwd_scratch(const cvx_direct_geom *g)
{
    cvx_direct_geom d = *g;
    return cvx_direct_fwd_scratch(&d, g->band_bytes);
}
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
        r->sgemm_mr = t->sgemm_mr;
        r->dgemm_mr = t->dgemm_mr;
        r->gemm_packed_a_elems = check_gemm_packed_a_elems;
        r->sgemm_pack_a = t->sgemm_pack_a;
        r->dgemm_pack_a = t->dgemm_pack_a;
        r->sgemm_pa = t->sgemm_pa;
        r->dgemm_pa = t->dgemm_pa;
        r->sgemm_nr = t->sgemm_nr;
        r->dgemm_nr = t->dgemm_nr;
        r->gemm_packed_b_elems = check_gemm_packed_b_elems;
        r->sgemm_pack_b = t->sgemm_pack_b;
        r->dgemm_pack_b = t->dgemm_pack_b;
        r->sgemm_pb = t->sgemm_pb;
        r->dgemm_pb = t->dgemm_pb;
        r->sgemm_nt = t->sgemm_nt;
        r->dgemm_nt = t->dgemm_nt;
        r->sgemm_nt_kc = t->sgemm_nt_kc;
        r->dgemm_nt_kc = t->dgemm_nt_kc;
        r->direct_scratch = check_direct_scratch;
        r->direct_fwd_scratch = check_direct_fwd_scratch;
        r->direct_v_elems = check_direct_v_elems;
        r->direct_fwd_float = t->direct_fwd_f;
        r->direct_fwd_double = t->direct_fwd_d;
        r->direct_pack_float = t->direct_pack_f;
        r->direct_pack_double = t->direct_pack_d;
        r->direct_gw_float = t->direct_gw_f;
        r->direct_gw_double = t->direct_gw_d;
        r->direct_gw_finish_float = t->direct_gw_finish_f;
        r->direct_gw_finish_double = t->direct_gw_finish_d;
        r->axpy_float = t->axpy_f;
        r->axpy_double = t->axpy_d;
        r->dot_float = t->dot_f;
        r->dot_double = t->dot_d;
        r->dw_taps_float = t->dw_taps_f;
        r->dw_taps_double = t->dw_taps_d;
        r->dw_dots_float = t->dw_dots_f;
        r->dw_dots_double = t->dw_dots_d;
        r->dw_lanes_float = t->dw_lanes_f;
        r->dw_lanes_double = t->dw_lanes_d;
        r->dw_finite_float = t->dw_finite_f;
        r->dw_finite_double = t->dw_finite_d;
        r->dw_poly_float = t->dw_poly_f;
        r->dw_poly_double = t->dw_poly_d;
        r->dw_unpoly_float = t->dw_unpoly_f;
        r->dw_unpoly_double = t->dw_unpoly_d;
        r->dw_place_float = t->dw_place_f;
        r->dw_place_double = t->dw_place_d;
        r->dw_copy_float = t->dw_copy_f;
        r->dw_copy_double = t->dw_copy_d;
        r->dw_cb_fwd_float = t->dw_cb_fwd_f;
        r->dw_cb_fwd_double = t->dw_cb_fwd_d;
        r->dw_cb_gx_float = t->dw_cb_gx_f;
        r->dw_cb_gx_double = t->dw_cb_gx_d;
        r->dw_cb_gw_float = t->dw_cb_gw_f;
        r->dw_cb_gw_double = t->dw_cb_gw_d;
        r->dw_out_float = t->dw_out_f;
        r->dw_out_double = t->dw_out_d;
        r->bias_out_float = t->bias_out_f;
        r->bias_out_double = t->bias_out_d;
        r->dw_taps_act_float = t->dw_taps_act_f;
        r->dw_taps_act_double = t->dw_taps_act_d;
        r->dw_pad1_float = t->dw_pad1_f;
        r->dw_pad1_double = t->dw_pad1_d;
        r->pl_max_row_float = t->pl_max_row_f;
        r->pl_max_row_double = t->pl_max_row_d;
        r->pl_avg_row_float = t->pl_avg_row_f;
        r->pl_avg_row_double = t->pl_avg_row_d;
        r->pl_max3_float = t->pl_max3_f;
        r->pl_max3_double = t->pl_max3_d;
        r->pl_max2_float = t->pl_max2_f;
        r->pl_max2_double = t->pl_max2_d;
        r->pl_back2_float = t->pl_back2_f;
        r->pl_back2_double = t->pl_back2_d;
        r->pl_max3_rows_float = t->pl_max3_rows_f;
        r->pl_max3_rows_double = t->pl_max3_rows_d;
        r->pl_vmax3s2_float = t->pl_vmax3s2_f;
        r->pl_vmax3s2_double = t->pl_vmax3s2_d;
        r->pl_max3_lanes_float = t->pl_max3_lanes_f;
        r->pl_max3_lanes_double = t->pl_max3_lanes_d;
        r->pl_vmax2s2_float = t->pl_vmax2s2_f;
        r->pl_vmax2s2_double = t->pl_vmax2s2_d;
        r->pl_vmax_sep_float = t->pl_vmax_sep_f;
        r->pl_vmax_sep_double = t->pl_vmax_sep_d;
        r->pl_vavg_sep_float = t->pl_vavg_sep_f;
        r->pl_vavg_sep_double = t->pl_vavg_sep_d;
        out[n++] = r;
    }
    return n;
}

#endif /* CVX_KERNEL_CHECK_TABLES_H */
