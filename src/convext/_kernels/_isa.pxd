# The C-level contract of the instruction-set layer (isa/cvx_isa.h documents it): the kernel
# table, the direct convolution's geometry and scratch sizes, and the entry points every other
# kernel module calls. The kernels are compiled once, into the _isa extension; isa_table() (shared
# through Cython's C-API capsule) returns the table chosen at import (CONVEXT_ISA, or the best one
# this CPU runs). The inline functions below keep the C names the modules called before.
from libc.stdint cimport int64_t

from ._types cimport idx_t

cdef extern from "isa/cvx_isa.h" nogil:
    enum: CVX_GEMM_WORK_ELEMS
    enum: CVX_GEMM_KC
    enum: CVX_ISA_COUNT

    ctypedef struct cvx_direct_geom:
        idx_t Cg, H, W, Fg, kh, kw, sh, sw, ph, pw, dil_h, dil_w, OH, OW, Hq, K, P
        idx_t p_begin, p_end, f_begin, f_end
        const void *res
        int clamp
        double lo, hi
        idx_t band_bytes

    ctypedef struct cvx_vt_geom:
        idx_t Cg, H, W, kh, kw, sh, sw, ph, pw, dil_h, dil_w, OH, OW
        int clamp
        double lo, hi

    idx_t cvx_vt_scratch(idx_t fb, idx_t rows, idx_t OW)
    idx_t cvx_dw_s2_ring(idx_t OW)
    idx_t cvx_direct_fblock(idx_t Fg, int fb_max)
    idx_t cvx_gemm_packed_a_elems(idx_t M, idx_t K, idx_t mr)
    idx_t cvx_gemm_packed_b_elems(idx_t K, idx_t N, idx_t nr)
    idx_t cvx_direct_scratch(const cvx_direct_geom *g)
    idx_t cvx_direct_fwd_scratch(cvx_direct_geom *g, idx_t band_bytes)
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
                             const float *wp, const float *b, const idx_t *off, float *y,
                             float *scratch) noexcept nogil
        void (*direct_fwd_d)(const cvx_direct_geom *g, const double *x, const double *w,
                             const double *wp, const double *b, const idx_t *off, double *y,
                             double *scratch) noexcept nogil
        void (*direct_pack_f)(const cvx_direct_geom *g, const float *w, float *wp,
                              idx_t f_begin, idx_t f_end) noexcept nogil
        void (*direct_pack_d)(const cvx_direct_geom *g, const double *w, double *wp,
                              idx_t f_begin, idx_t f_end) noexcept nogil
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
        void (*sgemm_pack_a)(idx_t M, idx_t K, const float *A, idx_t rsa, idx_t csa,
                             float *dst) noexcept nogil
        void (*dgemm_pack_a)(idx_t M, idx_t K, const double *A, idx_t rsa, idx_t csa,
                             double *dst) noexcept nogil
        void (*sgemm_pa)(idx_t M, idx_t N, idx_t K, const float *Ap, const float *B, idx_t rsb,
                         idx_t csb, float *C, idx_t ldc, int accumulate,
                         float *work) noexcept nogil
        void (*dgemm_pa)(idx_t M, idx_t N, idx_t K, const double *Ap, const double *B,
                         idx_t rsb, idx_t csb, double *C, idx_t ldc, int accumulate,
                         double *work) noexcept nogil
        idx_t (*sdense_pack)(idx_t N, idx_t K, const float *W, float *dst) noexcept nogil
        idx_t (*ddense_pack)(idx_t N, idx_t K, const double *W, double *dst) noexcept nogil
        void (*sdense_pa)(idx_t M, idx_t N, idx_t K, idx_t n0, idx_t n1, const float *wp,
                          const float *x, const float *b, float *y) noexcept nogil
        void (*ddense_pa)(idx_t M, idx_t N, idx_t K, idx_t n0, idx_t n1, const double *wp,
                          const double *x, const double *b, double *y) noexcept nogil
        void (*sgemm_pack_b)(idx_t K, idx_t N, idx_t r0, idx_t r1, const float *B, idx_t rsb,
                             idx_t csb, float *dst) noexcept nogil
        void (*dgemm_pack_b)(idx_t K, idx_t N, idx_t r0, idx_t r1, const double *B, idx_t rsb,
                             idx_t csb, double *dst) noexcept nogil
        void (*sgemm_pb)(idx_t M, idx_t N, idx_t K, const float *A, idx_t rsa, idx_t csa,
                         const float *Ap, const float *Bp, float *C, idx_t ldc, int accumulate,
                         float *work) noexcept nogil
        void (*dgemm_pb)(idx_t M, idx_t N, idx_t K, const double *A, idx_t rsa, idx_t csa,
                         const double *Ap, const double *Bp, double *C, idx_t ldc,
                         int accumulate, double *work) noexcept nogil
        void (*sgemm_pack_b_gather)(idx_t K, idx_t N, idx_t r0, idx_t r1, const float *X,
                                    idx_t plane, idx_t kk, const idx_t *tab, idx_t ldt,
                                    float *dst) noexcept nogil
        void (*dgemm_pack_b_gather)(idx_t K, idx_t N, idx_t r0, idx_t r1, const double *X,
                                    idx_t plane, idx_t kk, const idx_t *tab, idx_t ldt,
                                    double *dst) noexcept nogil
        void (*sgemm_nt)(idx_t M, idx_t N, idx_t K, const float *A, idx_t lda, const float *B,
                         idx_t ldb, float *C, idx_t ldc, float *work) noexcept nogil
        void (*dgemm_nt)(idx_t M, idx_t N, idx_t K, const double *A, idx_t lda,
                         const double *B, idx_t ldb, double *C, idx_t ldc,
                         double *work) noexcept nogil
        void (*dw_taps_f)(idx_t rows, idx_t n, idx_t ld_in, idx_t ld_out, int ntaps,
                          const float *const *base, const float *w, float bias, int accumulate,
                          float *out) noexcept nogil
        void (*dw_taps_d)(idx_t rows, idx_t n, idx_t ld_in, idx_t ld_out, int ntaps,
                          const double *const *base, const double *w, double bias,
                          int accumulate, double *out) noexcept nogil
        void (*dw_dots_f)(idx_t rows, idx_t n, idx_t ld_in, idx_t ld_g, int ntaps,
                          const float *const *base, const float *g, float *acc) noexcept nogil
        void (*dw_dots_d)(idx_t rows, idx_t n, idx_t ld_in, idx_t ld_g, int ntaps,
                          const double *const *base, const double *g,
                          double *acc) noexcept nogil
        float (*dw_lanes_f)(const float *a) noexcept nogil
        double (*dw_lanes_d)(const double *a) noexcept nogil
        int (*dw_finite_f)(idx_t n, const float *p) noexcept nogil
        int (*dw_finite_d)(idx_t n, const double *p) noexcept nogil
        void (*dw_poly_f)(const float *src, idx_t H, idx_t W, idx_t ph, idx_t pw, idx_t sh,
                          idx_t sw, idx_t Hp, idx_t Wp, idx_t Hq, idx_t Wq, idx_t na,
                          const idx_t *pa, idx_t nb, const idx_t *pb, idx_t slack,
                          float *dst) noexcept nogil
        void (*dw_poly_d)(const double *src, idx_t H, idx_t W, idx_t ph, idx_t pw, idx_t sh,
                          idx_t sw, idx_t Hp, idx_t Wp, idx_t Hq, idx_t Wq, idx_t na,
                          const idx_t *pa, idx_t nb, const idx_t *pb, idx_t slack,
                          double *dst) noexcept nogil
        void (*dw_unpoly_f)(const float *src, idx_t H, idx_t W, idx_t ph, idx_t pw, idx_t sh,
                            idx_t sw, idx_t Hp, idx_t Wp, idx_t na, const idx_t *pa, idx_t nb,
                            const idx_t *pb, idx_t sp, idx_t ld, float *dst) noexcept nogil
        void (*dw_unpoly_d)(const double *src, idx_t H, idx_t W, idx_t ph, idx_t pw, idx_t sh,
                            idx_t sw, idx_t Hp, idx_t Wp, idx_t na, const idx_t *pa, idx_t nb,
                            const idx_t *pb, idx_t sp, idx_t ld, double *dst) noexcept nogil
        void (*dw_place_f)(const float *src, idx_t rows, idx_t cols, idx_t total, idx_t ld,
                           idx_t r0, idx_t c0, float *dst) noexcept nogil
        void (*dw_place_d)(const double *src, idx_t rows, idx_t cols, idx_t total, idx_t ld,
                           idx_t r0, idx_t c0, double *dst) noexcept nogil
        void (*dw_copy_f)(idx_t rows, idx_t cols, const float *src, idx_t lds, float *dst,
                          idx_t ldd) noexcept nogil
        void (*dw_copy_d)(idx_t rows, idx_t cols, const double *src, idx_t lds, double *dst,
                          idx_t ldd) noexcept nogil
        void (*dw_cb_fwd_f)(idx_t nl, const float *x, idx_t H, idx_t W, idx_t ph, idx_t pw,
                            idx_t Hp, idx_t Wp, idx_t OH, idx_t OW, idx_t sh, idx_t sw, int kk,
                            const idx_t *toff, const float *w, const float *b,
                            const float *res, int clamp, float lo, float hi, float *scratch,
                            float *y) noexcept nogil
        void (*dw_cb_fwd_d)(idx_t nl, const double *x, idx_t H, idx_t W, idx_t ph, idx_t pw,
                            idx_t Hp, idx_t Wp, idx_t OH, idx_t OW, idx_t sh, idx_t sw, int kk,
                            const idx_t *toff, const double *w, const double *b,
                            const double *res, int clamp, double lo, double hi,
                            double *scratch, double *y) noexcept nogil
        void (*dw_cb_gx_f)(idx_t nl, const float *gy, idx_t OH, idx_t OW, idx_t H, idx_t W,
                           idx_t ph, idx_t pw, idx_t Hp, idx_t Wp, idx_t sh, idx_t sw, idx_t DI,
                           idx_t DJ, idx_t Hq, idx_t Wq, idx_t na, const idx_t *pa, idx_t nb,
                           const idx_t *pb, int kk, const int *tcount, const int *tix,
                           const idx_t *toff, const float *w, float *scratch,
                           float *gx) noexcept nogil
        void (*dw_cb_gx_d)(idx_t nl, const double *gy, idx_t OH, idx_t OW, idx_t H, idx_t W,
                           idx_t ph, idx_t pw, idx_t Hp, idx_t Wp, idx_t sh, idx_t sw, idx_t DI,
                           idx_t DJ, idx_t Hq, idx_t Wq, idx_t na, const idx_t *pa, idx_t nb,
                           const idx_t *pb, int kk, const int *tcount, const int *tix,
                           const idx_t *toff, const double *w, double *scratch,
                           double *gx) noexcept nogil
        void (*dw_cb_gw_f)(idx_t nl, idx_t N, const float *x, idx_t xs, const float *gy,
                           idx_t gys, idx_t H, idx_t W, idx_t ph, idx_t pw, idx_t Hp, idx_t Wp,
                           idx_t OH, idx_t OW, idx_t sh, idx_t sw, idx_t na, const idx_t *pa,
                           idx_t nb, const idx_t *pb, int kk, const idx_t *toff, int flat,
                           const idx_t *start, const idx_t *gq, const idx_t *xq,
                           float *scratch, float *gw) noexcept nogil
        void (*dw_cb_gw_d)(idx_t nl, idx_t N, const double *x, idx_t xs, const double *gy,
                           idx_t gys, idx_t H, idx_t W, idx_t ph, idx_t pw, idx_t Hp, idx_t Wp,
                           idx_t OH, idx_t OW, idx_t sh, idx_t sw, idx_t na, const idx_t *pa,
                           idx_t nb, const idx_t *pb, int kk, const idx_t *toff, int flat,
                           const idx_t *start, const idx_t *gq, const idx_t *xq,
                           double *scratch, double *gw) noexcept nogil
        void (*dw_out_f)(idx_t rows, idx_t cols, const float *z, idx_t ldz, const float *res,
                         idx_t ldr, int clamp, float lo, float hi, float *y,
                         idx_t ldy) noexcept nogil
        void (*dw_out_d)(idx_t rows, idx_t cols, const double *z, idx_t ldz,
                         const double *res, idx_t ldr, int clamp, double lo, double hi,
                         double *y, idx_t ldy) noexcept nogil
        void (*bias_out_f)(idx_t rows, idx_t cols, float *y, idx_t ldy, const float *b,
                           const float *res, idx_t ldr, int clamp, float lo,
                           float hi) noexcept nogil
        void (*bias_out_d)(idx_t rows, idx_t cols, double *y, idx_t ldy, const double *b,
                           const double *res, idx_t ldr, int clamp, double lo,
                           double hi) noexcept nogil
        void (*dw_cb_gxw_f)(idx_t nl, idx_t N, const float *x, idx_t xs, const float *gy,
                            idx_t gys, idx_t H, idx_t W, idx_t ph, idx_t pw, idx_t Hp, idx_t Wp,
                            idx_t OH, idx_t OW, idx_t sh, idx_t sw, idx_t na, const idx_t *pa,
                            idx_t nb, const idx_t *pb, int kk, const idx_t *toff, int flat,
                            const idx_t *start, const idx_t *gq, const idx_t *xq,
                            float *scratch, float *gw, float *gx, idx_t gxs, const float *w,
                            idx_t DI, idx_t DJ, idx_t Hq, idx_t Wq, const int *tcount,
                            const int *tix, const idx_t *toffx) noexcept nogil
        void (*dw_cb_gxw_d)(idx_t nl, idx_t N, const double *x, idx_t xs, const double *gy,
                            idx_t gys, idx_t H, idx_t W, idx_t ph, idx_t pw, idx_t Hp, idx_t Wp,
                            idx_t OH, idx_t OW, idx_t sh, idx_t sw, idx_t na, const idx_t *pa,
                            idx_t nb, const idx_t *pb, int kk, const idx_t *toff, int flat,
                            const idx_t *start, const idx_t *gq, const idx_t *xq,
                            double *scratch, double *gw, double *gx, idx_t gxs,
                            const double *w, idx_t DI, idx_t DJ, idx_t Hq, idx_t Wq,
                            const int *tcount, const int *tix, const idx_t *toffx) noexcept nogil
        void (*dw_cbr_fwd_f)(idx_t nl, const float *x, idx_t H, idx_t W, idx_t ph, idx_t pw,
                             idx_t Hp, idx_t Wp, idx_t OH, idx_t OW, idx_t sh, idx_t sw, idx_t R,
                             idx_t G, idx_t oh0, idx_t oh1, int kk, const idx_t *toff,
                             const float *w, const float *b, const float *res, int clamp,
                             float lo, float hi, float *scratch, float *y) noexcept nogil
        void (*dw_cbr_fwd_d)(idx_t nl, const double *x, idx_t H, idx_t W, idx_t ph, idx_t pw,
                             idx_t Hp, idx_t Wp, idx_t OH, idx_t OW, idx_t sh, idx_t sw, idx_t R,
                             idx_t G, idx_t oh0, idx_t oh1, int kk, const idx_t *toff,
                             const double *w, const double *b, const double *res, int clamp,
                             double lo, double hi, double *scratch, double *y) noexcept nogil
        void (*dw_taps_act_f)(idx_t rows, idx_t n, idx_t ld_in, idx_t ld_out, int ntaps,
                              const float *const *base, const float *w, float bias, int clamp,
                              float lo, float hi, float *out) noexcept nogil
        void (*dw_taps_act_d)(idx_t rows, idx_t n, idx_t ld_in, idx_t ld_out, int ntaps,
                              const double *const *base, const double *w, double bias, int clamp,
                              double lo, double hi, double *out) noexcept nogil
        void (*dw_s2_plane_f)(const float *x, idx_t H, idx_t W, idx_t ph, idx_t pw, idx_t OH,
                              idx_t OW, const float *w, float bias, int clamp, float lo,
                              float hi, float *y, float *ring) noexcept nogil
        void (*dw_s2_plane_d)(const double *x, idx_t H, idx_t W, idx_t ph, idx_t pw, idx_t OH,
                              idx_t OW, const double *w, double bias, int clamp, double lo,
                              double hi, double *y, double *ring) noexcept nogil
        void (*dw_s1_plane_f)(const float *x, idx_t H, idx_t W, idx_t ph, idx_t pw, idx_t OH,
                              idx_t OW, const float *w, float bias, int clamp, float lo,
                              float hi, float *y, const float *zero) noexcept nogil
        void (*dw_s1_plane_d)(const double *x, idx_t H, idx_t W, idx_t ph, idx_t pw, idx_t OH,
                              idx_t OW, const double *w, double bias, int clamp, double lo,
                              double hi, double *y, const double *zero) noexcept nogil
        void (*dw_s1_flat_f)(const float *x, idx_t H, idx_t W, const idx_t *mask,
                             const float *w, float bias, int clamp, float lo, float hi,
                             float *y) noexcept nogil
        void (*dw_s1_flat_d)(const double *x, idx_t H, idx_t W, const idx_t *mask,
                             const double *w, double bias, int clamp, double lo, double hi,
                             double *y) noexcept nogil
        void (*dw_flat_masks)(idx_t H, idx_t W, idx_t lanes, idx_t *mask) noexcept nogil
        void (*dw_pad1_f)(const float *src, idx_t H, idx_t W, idx_t ph, idx_t pw, idx_t Hp,
                          idx_t Wp, idx_t slack, float *dst) noexcept nogil
        void (*dw_pad1_d)(const double *src, idx_t H, idx_t W, idx_t ph, idx_t pw, idx_t Hp,
                          idx_t Wp, idx_t slack, double *dst) noexcept nogil
        void (*pl_max_row_f)(const float *xp, idx_t W, idx_t hs, idx_t i0, idx_t i1, idx_t dh,
                             idx_t kw, idx_t sw, idx_t pw, idx_t dw, idx_t ow0, idx_t ow1,
                             float *yp, int64_t *ip) noexcept nogil
        void (*pl_max_row_d)(const double *xp, idx_t W, idx_t hs, idx_t i0, idx_t i1, idx_t dh,
                             idx_t kw, idx_t sw, idx_t pw, idx_t dw, idx_t ow0, idx_t ow1,
                             double *yp, int64_t *ip) noexcept nogil
        void (*pl_avg_row_f)(const float *xp, idx_t W, idx_t hs, idx_t i0, idx_t i1, idx_t kw,
                             idx_t sw, idx_t pw, idx_t ow0, idx_t ow1, float div,
                             float *yp) noexcept nogil
        void (*pl_avg_row_d)(const double *xp, idx_t W, idx_t hs, idx_t i0, idx_t i1, idx_t kw,
                             idx_t sw, idx_t pw, idx_t ow0, idx_t ow1, double div,
                             double *yp) noexcept nogil
        void (*pl_max3_f)(idx_t n, const float *r0, idx_t W, idx_t s, int64_t base, float *yp,
                          int64_t *ip) noexcept nogil
        void (*pl_max3_d)(idx_t n, const double *r0, idx_t W, idx_t s, int64_t base,
                          double *yp, int64_t *ip) noexcept nogil
        void (*pl_max2_f)(idx_t n, const float *r0, idx_t W, idx_t s, int64_t base, float *yp,
                          int64_t *ip) noexcept nogil
        void (*pl_max2_d)(idx_t n, const double *r0, idx_t W, idx_t s, int64_t base,
                          double *yp, int64_t *ip) noexcept nogil
        int (*pl_back2_f)(idx_t n, const float *gy, const int64_t *ix, int64_t base, idx_t W,
                          float *g0, float *g1) noexcept nogil
        int (*pl_back2_d)(idx_t n, const double *gy, const int64_t *ix, int64_t base, idx_t W,
                          double *g0, double *g1) noexcept nogil
        void (*pl_max3_rows_f)(idx_t rows, idx_t n, idx_t s, const float *r0, idx_t W,
                               int64_t base, idx_t OW, float *yp, int64_t *ip) noexcept nogil
        void (*pl_max3_rows_d)(idx_t rows, idx_t n, idx_t s, const double *r0, idx_t W,
                               int64_t base, idx_t OW, double *yp, int64_t *ip) noexcept nogil
        void (*pl_vmax3s2_f)(const float *x, idx_t H, idx_t W, idx_t ph, idx_t pw, idx_t OW,
                             idx_t oh0, idx_t oh1, float *y) noexcept nogil
        void (*pl_vmax3s2_d)(const double *x, idx_t H, idx_t W, idx_t ph, idx_t pw, idx_t OW,
                             idx_t oh0, idx_t oh1, double *y) noexcept nogil
        void (*pl_max3_lanes_f)(const float *x, idx_t H, idx_t W, idx_t s, idx_t ph, idx_t pw,
                                idx_t OW, idx_t oh0, idx_t oh1, float *y,
                                int64_t *ip) noexcept nogil
        void (*pl_max3_lanes_d)(const double *x, idx_t H, idx_t W, idx_t s, idx_t ph, idx_t pw,
                                idx_t OW, idx_t oh0, idx_t oh1, double *y,
                                int64_t *ip) noexcept nogil
        void (*pl_vmax2s2_f)(const float *x, idx_t H, idx_t W, idx_t OW, idx_t oh0, idx_t oh1,
                             float *y) noexcept nogil
        void (*pl_vmax2s2_d)(const double *x, idx_t H, idx_t W, idx_t OW, idx_t oh0, idx_t oh1,
                             double *y) noexcept nogil
        void (*pl_vmax_sep_f)(const float *x, idx_t H, idx_t W, idx_t kh, idx_t kw, idx_t sh,
                              idx_t sw, idx_t ph, idx_t pw, idx_t OW, idx_t oh0, idx_t oh1,
                              float *y) noexcept nogil
        void (*pl_vmax_sep_d)(const double *x, idx_t H, idx_t W, idx_t kh, idx_t kw, idx_t sh,
                              idx_t sw, idx_t ph, idx_t pw, idx_t OW, idx_t oh0, idx_t oh1,
                              double *y) noexcept nogil
        void (*pl_vavg_sep_f)(const float *x, idx_t H, idx_t W, idx_t kh, idx_t kw, idx_t sh,
                              idx_t sw, idx_t ph, idx_t pw, idx_t pb, idx_t pr, int include_pad,
                              idx_t divisor, idx_t OW, idx_t oh0, idx_t oh1,
                              float *y) noexcept nogil
        void (*pl_vavg_sep_d)(const double *x, idx_t H, idx_t W, idx_t kh, idx_t kw, idx_t sh,
                              idx_t sw, idx_t ph, idx_t pw, idx_t pb, idx_t pr, int include_pad,
                              idx_t divisor, idx_t OW, idx_t oh0, idx_t oh1,
                              double *y) noexcept nogil
        void (*pl_gap_f)(const float *x, float *y, idx_t n, idx_t L) noexcept nogil
        void (*pl_gap_d)(const double *x, double *y, idx_t n, idx_t L) noexcept nogil
        double (*fma_chains)(long long iters, float m, float c) noexcept nogil
        int fma_chain_count
        int f32_lanes, f64_lanes, sgemm_mr, sgemm_nr, dgemm_mr, dgemm_nr, fma_fused, direct_fb
        int sdense_rows, ddense_rows
        void (*vt_fwd_f)(const cvx_vt_geom *g, const float *x, idx_t xs, const float *wp,
                         const float *wnext, const float *b, idx_t nf, float *y, idx_t ys,
                         const float *res, idx_t nimg, idx_t oh0, idx_t oh1,
                         float *scratch) noexcept nogil
        void (*vt_fwd_d)(const cvx_vt_geom *g, const double *x, idx_t xs, const double *wp,
                         const double *wnext, const double *b, idx_t nf, double *y, idx_t ys,
                         const double *res, idx_t nimg, idx_t oh0, idx_t oh1,
                         double *scratch) noexcept nogil
        int (*vt_pack_f)(const cvx_vt_geom *g, idx_t Fg, const float *w, float *wp,
                         idx_t b_begin, idx_t b_end) noexcept nogil
        int (*vt_pack_d)(const cvx_vt_geom *g, idx_t Fg, const double *w, double *wp,
                         idx_t b_begin, idx_t b_end) noexcept nogil
        int vt_fb_f, vt_fb_d
        int dw_lane_rows
        int dw_s2_lanes_min_ow_f, dw_s2_lanes_min_ow_d


cdef const cvx_kernel_table *isa_table() noexcept nogil
# the direct forward's scratch elements per call at the current band (cvx_direct_band_bytes),
# which it fixes in g (g.band_bytes: the band the kernel unfolds)
cdef idx_t direct_fwd_scratch(cvx_direct_geom *g) noexcept nogil


# ---- the entry points, through the active table ----
cdef inline void cvx_sgemm(idx_t M, idx_t N, idx_t K, const float *A, idx_t rsa, idx_t csa,
                           const float *B, idx_t rsb, idx_t csb, float *C, idx_t ldc,
                           int accumulate, float *work) noexcept nogil:
    isa_table().sgemm(M, N, K, A, rsa, csa, B, rsb, csb, C, ldc, accumulate, work)


cdef inline void cvx_dgemm(idx_t M, idx_t N, idx_t K, const double *A, idx_t rsa, idx_t csa,
                           const double *B, idx_t rsb, idx_t csb, double *C, idx_t ldc,
                           int accumulate, double *work) noexcept nogil:
    isa_table().dgemm(M, N, K, A, rsa, csa, B, rsb, csb, C, ldc, accumulate, work)


# the GEMM with A packed once (isa/kernels.inc: cvx_gemm_pack_a, cvx_gemm_pa)
cdef inline void cvx_sgemm_pack_a(idx_t M, idx_t K, const float *A, idx_t rsa, idx_t csa,
                                  float *dst) noexcept nogil:
    isa_table().sgemm_pack_a(M, K, A, rsa, csa, dst)


cdef inline void cvx_dgemm_pack_a(idx_t M, idx_t K, const double *A, idx_t rsa, idx_t csa,
                                  double *dst) noexcept nogil:
    isa_table().dgemm_pack_a(M, K, A, rsa, csa, dst)


cdef inline void cvx_sgemm_pa(idx_t M, idx_t N, idx_t K, const float *Ap, const float *B,
                              idx_t rsb, idx_t csb, float *C, idx_t ldc, int accumulate,
                              float *work) noexcept nogil:
    isa_table().sgemm_pa(M, N, K, Ap, B, rsb, csb, C, ldc, accumulate, work)


cdef inline void cvx_dgemm_pa(idx_t M, idx_t N, idx_t K, const double *Ap, const double *B,
                              idx_t rsb, idx_t csb, double *C, idx_t ldc, int accumulate,
                              double *work) noexcept nogil:
    isa_table().dgemm_pa(M, N, K, Ap, B, rsb, csb, C, ldc, accumulate, work)


# the GEMM with B packed once for many row blocks of A (isa/kernels.inc: cvx_gemm_pack_b,
# cvx_gemm_pb)
cdef inline void cvx_sgemm_pack_b(idx_t K, idx_t N, idx_t r0, idx_t r1, const float *B,
                                  idx_t rsb, idx_t csb, float *dst) noexcept nogil:
    isa_table().sgemm_pack_b(K, N, r0, r1, B, rsb, csb, dst)


cdef inline void cvx_dgemm_pack_b(idx_t K, idx_t N, idx_t r0, idx_t r1, const double *B,
                                  idx_t rsb, idx_t csb, double *dst) noexcept nogil:
    isa_table().dgemm_pack_b(K, N, r0, r1, B, rsb, csb, dst)


cdef inline void cvx_sgemm_pb(idx_t M, idx_t N, idx_t K, const float *A, idx_t rsa, idx_t csa,
                              const float *Ap, const float *Bp, float *C, idx_t ldc,
                              int accumulate, float *work) noexcept nogil:
    isa_table().sgemm_pb(M, N, K, A, rsa, csa, Ap, Bp, C, ldc, accumulate, work)


cdef inline void cvx_dgemm_pb(idx_t M, idx_t N, idx_t K, const double *A, idx_t rsa, idx_t csa,
                              const double *Ap, const double *Bp, double *C, idx_t ldc,
                              int accumulate, double *work) noexcept nogil:
    isa_table().dgemm_pb(M, N, K, A, rsa, csa, Ap, Bp, C, ldc, accumulate, work)


cdef inline void cvx_sgemm_pack_b_gather(idx_t K, idx_t N, idx_t r0, idx_t r1, const float *X,
                                         idx_t plane, idx_t kk, const idx_t *tab, idx_t ldt,
                                         float *dst) noexcept nogil:
    isa_table().sgemm_pack_b_gather(K, N, r0, r1, X, plane, kk, tab, ldt, dst)


cdef inline void cvx_dgemm_pack_b_gather(idx_t K, idx_t N, idx_t r0, idx_t r1, const double *X,
                                         idx_t plane, idx_t kk, const idx_t *tab, idx_t ldt,
                                         double *dst) noexcept nogil:
    isa_table().dgemm_pack_b_gather(K, N, r0, r1, X, plane, kk, tab, ldt, dst)


cdef inline void cvx_sgemm_nt(idx_t M, idx_t N, idx_t K, const float *A, idx_t lda,
                              const float *B, idx_t ldb, float *C, idx_t ldc,
                              float *work) noexcept nogil:
    isa_table().sgemm_nt(M, N, K, A, lda, B, ldb, C, ldc, work)


cdef inline void cvx_dgemm_nt(idx_t M, idx_t N, idx_t K, const double *A, idx_t lda,
                              const double *B, idx_t ldb, double *C, idx_t ldc,
                              double *work) noexcept nogil:
    isa_table().dgemm_nt(M, N, K, A, lda, B, ldb, C, ldc, work)


cdef inline void cvx_direct_fwd_float(const cvx_direct_geom *g, const float *x, const float *w,
                                      const float *wp, const float *b, const idx_t *off,
                                      float *y, float *scratch) noexcept nogil:
    isa_table().direct_fwd_f(g, x, w, wp, b, off, y, scratch)


cdef inline void cvx_direct_fwd_double(const cvx_direct_geom *g, const double *x,
                                       const double *w, const double *wp, const double *b,
                                       const idx_t *off, double *y,
                                       double *scratch) noexcept nogil:
    isa_table().direct_fwd_d(g, x, w, wp, b, off, y, scratch)


cdef inline idx_t cvx_direct_filter_block(idx_t Fg) noexcept nogil:
    return cvx_direct_fblock(Fg, isa_table().direct_fb)


cdef inline void cvx_direct_pack_float(const cvx_direct_geom *g, const float *w, float *wp,
                                       idx_t f_begin, idx_t f_end) noexcept nogil:
    isa_table().direct_pack_f(g, w, wp, f_begin, f_end)


cdef inline void cvx_direct_pack_double(const cvx_direct_geom *g, const double *w, double *wp,
                                        idx_t f_begin, idx_t f_end) noexcept nogil:
    isa_table().direct_pack_d(g, w, wp, f_begin, f_end)


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


# depthwise convolution (isa/depthwise.inc), for _conv.pyx
cdef inline void cvx_dw_taps_float(idx_t rows, idx_t n, idx_t ld_in, idx_t ld_out, int ntaps,
                                   const float *const *base, const float *w, float bias,
                                   int accumulate, float *out) noexcept nogil:
    isa_table().dw_taps_f(rows, n, ld_in, ld_out, ntaps, base, w, bias, accumulate, out)


cdef inline void cvx_dw_taps_double(idx_t rows, idx_t n, idx_t ld_in, idx_t ld_out, int ntaps,
                                    const double *const *base, const double *w, double bias,
                                    int accumulate, double *out) noexcept nogil:
    isa_table().dw_taps_d(rows, n, ld_in, ld_out, ntaps, base, w, bias, accumulate, out)


cdef inline void cvx_dw_dots_float(idx_t rows, idx_t n, idx_t ld_in, idx_t ld_g, int ntaps,
                                   const float *const *base, const float *g,
                                   float *acc) noexcept nogil:
    isa_table().dw_dots_f(rows, n, ld_in, ld_g, ntaps, base, g, acc)


cdef inline void cvx_dw_dots_double(idx_t rows, idx_t n, idx_t ld_in, idx_t ld_g, int ntaps,
                                    const double *const *base, const double *g,
                                    double *acc) noexcept nogil:
    isa_table().dw_dots_d(rows, n, ld_in, ld_g, ntaps, base, g, acc)


cdef inline float cvx_dw_lanes_float(const float *a) noexcept nogil:
    return isa_table().dw_lanes_f(a)


cdef inline double cvx_dw_lanes_double(const double *a) noexcept nogil:
    return isa_table().dw_lanes_d(a)


cdef inline int cvx_dw_finite_float(idx_t n, const float *p) noexcept nogil:
    return isa_table().dw_finite_f(n, p)


cdef inline int cvx_dw_finite_double(idx_t n, const double *p) noexcept nogil:
    return isa_table().dw_finite_d(n, p)


cdef inline void cvx_dw_poly_float(const float *src, idx_t H, idx_t W, idx_t ph, idx_t pw,
                                   idx_t sh, idx_t sw, idx_t Hp, idx_t Wp, idx_t Hq, idx_t Wq,
                                   idx_t na, const idx_t *pa, idx_t nb, const idx_t *pb,
                                   idx_t slack, float *dst) noexcept nogil:
    isa_table().dw_poly_f(src, H, W, ph, pw, sh, sw, Hp, Wp, Hq, Wq, na, pa, nb, pb, slack, dst)


cdef inline void cvx_dw_poly_double(const double *src, idx_t H, idx_t W, idx_t ph, idx_t pw,
                                    idx_t sh, idx_t sw, idx_t Hp, idx_t Wp, idx_t Hq, idx_t Wq,
                                    idx_t na, const idx_t *pa, idx_t nb, const idx_t *pb,
                                    idx_t slack, double *dst) noexcept nogil:
    isa_table().dw_poly_d(src, H, W, ph, pw, sh, sw, Hp, Wp, Hq, Wq, na, pa, nb, pb, slack, dst)


cdef inline void cvx_dw_unpoly_float(const float *src, idx_t H, idx_t W, idx_t ph, idx_t pw,
                                     idx_t sh, idx_t sw, idx_t Hp, idx_t Wp, idx_t na,
                                     const idx_t *pa, idx_t nb, const idx_t *pb, idx_t sp,
                                     idx_t ld, float *dst) noexcept nogil:
    isa_table().dw_unpoly_f(src, H, W, ph, pw, sh, sw, Hp, Wp, na, pa, nb, pb, sp, ld, dst)


cdef inline void cvx_dw_unpoly_double(const double *src, idx_t H, idx_t W, idx_t ph, idx_t pw,
                                      idx_t sh, idx_t sw, idx_t Hp, idx_t Wp, idx_t na,
                                      const idx_t *pa, idx_t nb, const idx_t *pb, idx_t sp,
                                      idx_t ld, double *dst) noexcept nogil:
    isa_table().dw_unpoly_d(src, H, W, ph, pw, sh, sw, Hp, Wp, na, pa, nb, pb, sp, ld, dst)


cdef inline void cvx_dw_place_float(const float *src, idx_t rows, idx_t cols, idx_t total,
                                    idx_t ld, idx_t r0, idx_t c0, float *dst) noexcept nogil:
    isa_table().dw_place_f(src, rows, cols, total, ld, r0, c0, dst)


cdef inline void cvx_dw_place_double(const double *src, idx_t rows, idx_t cols, idx_t total,
                                     idx_t ld, idx_t r0, idx_t c0, double *dst) noexcept nogil:
    isa_table().dw_place_d(src, rows, cols, total, ld, r0, c0, dst)


cdef inline void cvx_dw_copy_float(idx_t rows, idx_t cols, const float *src, idx_t lds,
                                   float *dst, idx_t ldd) noexcept nogil:
    isa_table().dw_copy_f(rows, cols, src, lds, dst, ldd)


cdef inline void cvx_dw_copy_double(idx_t rows, idx_t cols, const double *src, idx_t lds,
                                    double *dst, idx_t ldd) noexcept nogil:
    isa_table().dw_copy_d(rows, cols, src, lds, dst, ldd)


cdef inline void cvx_dw_cb_fwd_float(idx_t nl, const float *x, idx_t H, idx_t W, idx_t ph,
                                     idx_t pw, idx_t Hp, idx_t Wp, idx_t OH, idx_t OW, idx_t sh,
                                     idx_t sw, int kk, const idx_t *toff, const float *w,
                                     const float *b, const float *res, int clamp, float lo,
                                     float hi, float *scratch, float *y) noexcept nogil:
    isa_table().dw_cb_fwd_f(nl, x, H, W, ph, pw, Hp, Wp, OH, OW, sh, sw, kk, toff, w, b, res,
                            clamp, lo, hi, scratch, y)


cdef inline void cvx_dw_cb_fwd_double(idx_t nl, const double *x, idx_t H, idx_t W, idx_t ph,
                                      idx_t pw, idx_t Hp, idx_t Wp, idx_t OH, idx_t OW, idx_t sh,
                                      idx_t sw, int kk, const idx_t *toff, const double *w,
                                      const double *b, const double *res, int clamp, double lo,
                                      double hi, double *scratch, double *y) noexcept nogil:
    isa_table().dw_cb_fwd_d(nl, x, H, W, ph, pw, Hp, Wp, OH, OW, sh, sw, kk, toff, w, b, res,
                            clamp, lo, hi, scratch, y)


# pooling rows (isa/pool.inc), for _pool.pyx
cdef inline void cvx_pl_max_row_float(const float *xp, idx_t W, idx_t hs, idx_t i0, idx_t i1,
                                      idx_t dh, idx_t kw, idx_t sw, idx_t pw, idx_t dw,
                                      idx_t ow0, idx_t ow1, float *yp,
                                      int64_t *ip) noexcept nogil:
    isa_table().pl_max_row_f(xp, W, hs, i0, i1, dh, kw, sw, pw, dw, ow0, ow1, yp, ip)


cdef inline void cvx_pl_max_row_double(const double *xp, idx_t W, idx_t hs, idx_t i0, idx_t i1,
                                       idx_t dh, idx_t kw, idx_t sw, idx_t pw, idx_t dw,
                                       idx_t ow0, idx_t ow1, double *yp,
                                       int64_t *ip) noexcept nogil:
    isa_table().pl_max_row_d(xp, W, hs, i0, i1, dh, kw, sw, pw, dw, ow0, ow1, yp, ip)


cdef inline void cvx_pl_avg_row_float(const float *xp, idx_t W, idx_t hs, idx_t i0, idx_t i1,
                                      idx_t kw, idx_t sw, idx_t pw, idx_t ow0, idx_t ow1,
                                      float div, float *yp) noexcept nogil:
    isa_table().pl_avg_row_f(xp, W, hs, i0, i1, kw, sw, pw, ow0, ow1, div, yp)


cdef inline void cvx_pl_avg_row_double(const double *xp, idx_t W, idx_t hs, idx_t i0, idx_t i1,
                                       idx_t kw, idx_t sw, idx_t pw, idx_t ow0, idx_t ow1,
                                       double div, double *yp) noexcept nogil:
    isa_table().pl_avg_row_d(xp, W, hs, i0, i1, kw, sw, pw, ow0, ow1, div, yp)


cdef inline void cvx_pl_max3_float(idx_t n, const float *r0, idx_t W, idx_t s, int64_t base,
                                   float *yp, int64_t *ip) noexcept nogil:
    isa_table().pl_max3_f(n, r0, W, s, base, yp, ip)


cdef inline void cvx_pl_max3_double(idx_t n, const double *r0, idx_t W, idx_t s, int64_t base,
                                    double *yp, int64_t *ip) noexcept nogil:
    isa_table().pl_max3_d(n, r0, W, s, base, yp, ip)


cdef inline void cvx_pl_max2_float(idx_t n, const float *r0, idx_t W, idx_t s, int64_t base,
                                   float *yp, int64_t *ip) noexcept nogil:
    isa_table().pl_max2_f(n, r0, W, s, base, yp, ip)


cdef inline void cvx_pl_max2_double(idx_t n, const double *r0, idx_t W, idx_t s, int64_t base,
                                    double *yp, int64_t *ip) noexcept nogil:
    isa_table().pl_max2_d(n, r0, W, s, base, yp, ip)


cdef inline void cvx_dw_cb_gx_float(idx_t nl, const float *gy, idx_t OH, idx_t OW, idx_t H,
                                    idx_t W, idx_t ph, idx_t pw, idx_t Hp, idx_t Wp, idx_t sh,
                                    idx_t sw, idx_t DI, idx_t DJ, idx_t Hq, idx_t Wq, idx_t na,
                                    const idx_t *pa, idx_t nb, const idx_t *pb, int kk,
                                    const int *tcount, const int *tix, const idx_t *toff,
                                    const float *w, float *scratch, float *gx) noexcept nogil:
    isa_table().dw_cb_gx_f(nl, gy, OH, OW, H, W, ph, pw, Hp, Wp, sh, sw, DI, DJ, Hq, Wq, na, pa,
                           nb, pb, kk, tcount, tix, toff, w, scratch, gx)


cdef inline void cvx_dw_cb_gx_double(idx_t nl, const double *gy, idx_t OH, idx_t OW, idx_t H,
                                     idx_t W, idx_t ph, idx_t pw, idx_t Hp, idx_t Wp, idx_t sh,
                                     idx_t sw, idx_t DI, idx_t DJ, idx_t Hq, idx_t Wq, idx_t na,
                                     const idx_t *pa, idx_t nb, const idx_t *pb, int kk,
                                     const int *tcount, const int *tix, const idx_t *toff,
                                     const double *w, double *scratch,
                                     double *gx) noexcept nogil:
    isa_table().dw_cb_gx_d(nl, gy, OH, OW, H, W, ph, pw, Hp, Wp, sh, sw, DI, DJ, Hq, Wq, na, pa,
                           nb, pb, kk, tcount, tix, toff, w, scratch, gx)


cdef inline void cvx_dw_cb_gw_float(idx_t nl, idx_t N, const float *x, idx_t xs, const float *gy,
                                    idx_t gys, idx_t H, idx_t W, idx_t ph, idx_t pw, idx_t Hp,
                                    idx_t Wp, idx_t OH, idx_t OW, idx_t sh, idx_t sw, idx_t na,
                                    const idx_t *pa, idx_t nb, const idx_t *pb, int kk,
                                    const idx_t *toff, int flat, const idx_t *start,
                                    const idx_t *gq, const idx_t *xq, float *scratch,
                                    float *gw) noexcept nogil:
    isa_table().dw_cb_gw_f(nl, N, x, xs, gy, gys, H, W, ph, pw, Hp, Wp, OH, OW, sh, sw, na, pa,
                           nb, pb, kk, toff, flat, start, gq, xq, scratch, gw)


cdef inline void cvx_dw_cb_gw_double(idx_t nl, idx_t N, const double *x, idx_t xs,
                                     const double *gy, idx_t gys, idx_t H, idx_t W, idx_t ph,
                                     idx_t pw, idx_t Hp, idx_t Wp, idx_t OH, idx_t OW, idx_t sh,
                                     idx_t sw, idx_t na, const idx_t *pa, idx_t nb,
                                     const idx_t *pb, int kk, const idx_t *toff, int flat,
                                     const idx_t *start, const idx_t *gq, const idx_t *xq,
                                     double *scratch, double *gw) noexcept nogil:
    isa_table().dw_cb_gw_d(nl, N, x, xs, gy, gys, H, W, ph, pw, Hp, Wp, OH, OW, sh, sw, na, pa,
                           nb, pb, kk, toff, flat, start, gq, xq, scratch, gw)


cdef inline void cvx_dw_out_float(idx_t rows, idx_t cols, const float *z, idx_t ldz,
                                  const float *res, idx_t ldr, int clamp, float lo, float hi,
                                  float *y, idx_t ldy) noexcept nogil:
    isa_table().dw_out_f(rows, cols, z, ldz, res, ldr, clamp, lo, hi, y, ldy)


cdef inline void cvx_dw_out_double(idx_t rows, idx_t cols, const double *z, idx_t ldz,
                                   const double *res, idx_t ldr, int clamp, double lo,
                                   double hi, double *y, idx_t ldy) noexcept nogil:
    isa_table().dw_out_d(rows, cols, z, ldz, res, ldr, clamp, lo, hi, y, ldy)


cdef inline void cvx_bias_out_float(idx_t rows, idx_t cols, float *y, idx_t ldy, const float *b,
                                    const float *res, idx_t ldr, int clamp, float lo,
                                    float hi) noexcept nogil:
    isa_table().bias_out_f(rows, cols, y, ldy, b, res, ldr, clamp, lo, hi)


cdef inline void cvx_bias_out_double(idx_t rows, idx_t cols, double *y, idx_t ldy,
                                     const double *b, const double *res, idx_t ldr, int clamp,
                                     double lo, double hi) noexcept nogil:
    isa_table().bias_out_d(rows, cols, y, ldy, b, res, ldr, clamp, lo, hi)


cdef inline void cvx_dw_cb_gxw_float(idx_t nl, idx_t N, const float *x, idx_t xs,
                                     const float *gy, idx_t gys, idx_t H, idx_t W, idx_t ph,
                                     idx_t pw, idx_t Hp, idx_t Wp, idx_t OH, idx_t OW, idx_t sh,
                                     idx_t sw, idx_t na, const idx_t *pa, idx_t nb,
                                     const idx_t *pb, int kk, const idx_t *toff, int flat,
                                     const idx_t *start, const idx_t *gq, const idx_t *xq,
                                     float *scratch, float *gw, float *gx, idx_t gxs,
                                     const float *w, idx_t DI, idx_t DJ, idx_t Hq, idx_t Wq,
                                     const int *tcount, const int *tix,
                                     const idx_t *toffx) noexcept nogil:
    isa_table().dw_cb_gxw_f(nl, N, x, xs, gy, gys, H, W, ph, pw, Hp, Wp, OH, OW, sh, sw, na, pa,
                            nb, pb, kk, toff, flat, start, gq, xq, scratch, gw, gx, gxs, w, DI,
                            DJ, Hq, Wq, tcount, tix, toffx)


cdef inline void cvx_dw_cb_gxw_double(idx_t nl, idx_t N, const double *x, idx_t xs,
                                      const double *gy, idx_t gys, idx_t H, idx_t W, idx_t ph,
                                      idx_t pw, idx_t Hp, idx_t Wp, idx_t OH, idx_t OW, idx_t sh,
                                      idx_t sw, idx_t na, const idx_t *pa, idx_t nb,
                                      const idx_t *pb, int kk, const idx_t *toff, int flat,
                                      const idx_t *start, const idx_t *gq, const idx_t *xq,
                                      double *scratch, double *gw, double *gx, idx_t gxs,
                                      const double *w, idx_t DI, idx_t DJ, idx_t Hq, idx_t Wq,
                                      const int *tcount, const int *tix,
                                      const idx_t *toffx) noexcept nogil:
    isa_table().dw_cb_gxw_d(nl, N, x, xs, gy, gys, H, W, ph, pw, Hp, Wp, OH, OW, sh, sw, na, pa,
                            nb, pb, kk, toff, flat, start, gq, xq, scratch, gw, gx, gxs, w, DI,
                            DJ, Hq, Wq, tcount, tix, toffx)


cdef inline void cvx_dw_cbr_fwd_float(idx_t nl, const float *x, idx_t H, idx_t W, idx_t ph,
                                      idx_t pw, idx_t Hp, idx_t Wp, idx_t OH, idx_t OW, idx_t sh,
                                      idx_t sw, idx_t R, idx_t G, idx_t oh0, idx_t oh1, int kk,
                                      const idx_t *toff, const float *w, const float *b,
                                      const float *res, int clamp, float lo, float hi,
                                      float *scratch, float *y) noexcept nogil:
    isa_table().dw_cbr_fwd_f(nl, x, H, W, ph, pw, Hp, Wp, OH, OW, sh, sw, R, G, oh0, oh1, kk,
                             toff, w, b, res, clamp, lo, hi, scratch, y)


cdef inline void cvx_dw_cbr_fwd_double(idx_t nl, const double *x, idx_t H, idx_t W, idx_t ph,
                                       idx_t pw, idx_t Hp, idx_t Wp, idx_t OH, idx_t OW,
                                       idx_t sh, idx_t sw, idx_t R, idx_t G, idx_t oh0,
                                       idx_t oh1, int kk, const idx_t *toff, const double *w,
                                       const double *b, const double *res, int clamp,
                                       double lo, double hi, double *scratch,
                                       double *y) noexcept nogil:
    isa_table().dw_cbr_fwd_d(nl, x, H, W, ph, pw, Hp, Wp, OH, OW, sh, sw, R, G, oh0, oh1, kk,
                             toff, w, b, res, clamp, lo, hi, scratch, y)


cdef inline void cvx_dw_taps_act_float(idx_t rows, idx_t n, idx_t ld_in, idx_t ld_out,
                                       int ntaps, const float *const *base, const float *w,
                                       float bias, int clamp, float lo, float hi,
                                       float *out) noexcept nogil:
    isa_table().dw_taps_act_f(rows, n, ld_in, ld_out, ntaps, base, w, bias, clamp, lo, hi, out)


cdef inline void cvx_dw_taps_act_double(idx_t rows, idx_t n, idx_t ld_in, idx_t ld_out,
                                        int ntaps, const double *const *base, const double *w,
                                        double bias, int clamp, double lo, double hi,
                                        double *out) noexcept nogil:
    isa_table().dw_taps_act_d(rows, n, ld_in, ld_out, ntaps, base, w, bias, clamp, lo, hi, out)


cdef inline void cvx_dw_s2_plane_float(const float *x, idx_t H, idx_t W, idx_t ph, idx_t pw,
                                       idx_t OH, idx_t OW, const float *w, float bias,
                                       int clamp, float lo, float hi, float *y,
                                       float *ring) noexcept nogil:
    isa_table().dw_s2_plane_f(x, H, W, ph, pw, OH, OW, w, bias, clamp, lo, hi, y, ring)


cdef inline void cvx_dw_s2_plane_double(const double *x, idx_t H, idx_t W, idx_t ph, idx_t pw,
                                        idx_t OH, idx_t OW, const double *w, double bias,
                                        int clamp, double lo, double hi, double *y,
                                        double *ring) noexcept nogil:
    isa_table().dw_s2_plane_d(x, H, W, ph, pw, OH, OW, w, bias, clamp, lo, hi, y, ring)


cdef inline void cvx_dw_s1_plane_float(const float *x, idx_t H, idx_t W, idx_t ph, idx_t pw,
                                       idx_t OH, idx_t OW, const float *w, float bias,
                                       int clamp, float lo, float hi, float *y,
                                       const float *zero) noexcept nogil:
    isa_table().dw_s1_plane_f(x, H, W, ph, pw, OH, OW, w, bias, clamp, lo, hi, y, zero)


cdef inline void cvx_dw_s1_plane_double(const double *x, idx_t H, idx_t W, idx_t ph, idx_t pw,
                                        idx_t OH, idx_t OW, const double *w, double bias,
                                        int clamp, double lo, double hi, double *y,
                                        const double *zero) noexcept nogil:
    isa_table().dw_s1_plane_d(x, H, W, ph, pw, OH, OW, w, bias, clamp, lo, hi, y, zero)


cdef inline void cvx_dw_s1_flat_float(const float *x, idx_t H, idx_t W, const idx_t *mask,
                                      const float *w, float bias, int clamp, float lo, float hi,
                                      float *y) noexcept nogil:
    isa_table().dw_s1_flat_f(x, H, W, mask, w, bias, clamp, lo, hi, y)


cdef inline void cvx_dw_s1_flat_double(const double *x, idx_t H, idx_t W, const idx_t *mask,
                                       const double *w, double bias, int clamp, double lo,
                                       double hi, double *y) noexcept nogil:
    isa_table().dw_s1_flat_d(x, H, W, mask, w, bias, clamp, lo, hi, y)


cdef inline void cvx_dw_flat_masks(idx_t H, idx_t W, idx_t lanes, idx_t *mask) noexcept nogil:
    isa_table().dw_flat_masks(H, W, lanes, mask)


cdef inline void cvx_dw_pad1_float(const float *src, idx_t H, idx_t W, idx_t ph, idx_t pw,
                                   idx_t Hp, idx_t Wp, idx_t slack, float *dst) noexcept nogil:
    isa_table().dw_pad1_f(src, H, W, ph, pw, Hp, Wp, slack, dst)


cdef inline void cvx_dw_pad1_double(const double *src, idx_t H, idx_t W, idx_t ph, idx_t pw,
                                    idx_t Hp, idx_t Wp, idx_t slack, double *dst) noexcept nogil:
    isa_table().dw_pad1_d(src, H, W, ph, pw, Hp, Wp, slack, dst)


cdef inline int cvx_pl_back2_float(idx_t n, const float *gy, const int64_t *ix, int64_t base,
                                   idx_t W, float *g0, float *g1) noexcept nogil:
    return isa_table().pl_back2_f(n, gy, ix, base, W, g0, g1)


cdef inline int cvx_pl_back2_double(idx_t n, const double *gy, const int64_t *ix, int64_t base,
                                    idx_t W, double *g0, double *g1) noexcept nogil:
    return isa_table().pl_back2_d(n, gy, ix, base, W, g0, g1)


cdef inline void cvx_pl_max3_rows_float(idx_t rows, idx_t n, idx_t s, const float *r0, idx_t W,
                                        int64_t base, idx_t OW, float *yp,
                                        int64_t *ip) noexcept nogil:
    isa_table().pl_max3_rows_f(rows, n, s, r0, W, base, OW, yp, ip)


cdef inline void cvx_pl_max3_rows_double(idx_t rows, idx_t n, idx_t s, const double *r0,
                                         idx_t W, int64_t base, idx_t OW, double *yp,
                                         int64_t *ip) noexcept nogil:
    isa_table().pl_max3_rows_d(rows, n, s, r0, W, base, OW, yp, ip)


cdef inline void cvx_pl_vmax3s2_float(const float *x, idx_t H, idx_t W, idx_t ph, idx_t pw,
                                      idx_t OW, idx_t oh0, idx_t oh1, float *y) noexcept nogil:
    isa_table().pl_vmax3s2_f(x, H, W, ph, pw, OW, oh0, oh1, y)


cdef inline void cvx_pl_vmax3s2_double(const double *x, idx_t H, idx_t W, idx_t ph, idx_t pw,
                                       idx_t OW, idx_t oh0, idx_t oh1, double *y) noexcept nogil:
    isa_table().pl_vmax3s2_d(x, H, W, ph, pw, OW, oh0, oh1, y)


cdef inline bint cvx_pl_max3_lanes_here() noexcept nogil:
    """1 where the active table has the 3x3 max pool in registers (cvx_pl_max3_lanes)."""
    return isa_table().pl_max3_lanes_f != NULL


cdef inline void cvx_pl_max3_lanes_float(const float *x, idx_t H, idx_t W, idx_t s, idx_t ph,
                                         idx_t pw, idx_t OW, idx_t oh0, idx_t oh1, float *y,
                                         int64_t *ip) noexcept nogil:
    isa_table().pl_max3_lanes_f(x, H, W, s, ph, pw, OW, oh0, oh1, y, ip)


cdef inline void cvx_pl_max3_lanes_double(const double *x, idx_t H, idx_t W, idx_t s, idx_t ph,
                                          idx_t pw, idx_t OW, idx_t oh0, idx_t oh1, double *y,
                                          int64_t *ip) noexcept nogil:
    isa_table().pl_max3_lanes_d(x, H, W, s, ph, pw, OW, oh0, oh1, y, ip)


cdef inline void cvx_pl_vmax2s2_float(const float *x, idx_t H, idx_t W, idx_t OW, idx_t oh0,
                                      idx_t oh1, float *y) noexcept nogil:
    isa_table().pl_vmax2s2_f(x, H, W, OW, oh0, oh1, y)


cdef inline void cvx_pl_vmax2s2_double(const double *x, idx_t H, idx_t W, idx_t OW, idx_t oh0,
                                       idx_t oh1, double *y) noexcept nogil:
    isa_table().pl_vmax2s2_d(x, H, W, OW, oh0, oh1, y)


cdef inline void cvx_pl_vmax_sep_float(const float *x, idx_t H, idx_t W, idx_t kh, idx_t kw,
                                       idx_t sh, idx_t sw, idx_t ph, idx_t pw, idx_t OW,
                                       idx_t oh0, idx_t oh1, float *y) noexcept nogil:
    isa_table().pl_vmax_sep_f(x, H, W, kh, kw, sh, sw, ph, pw, OW, oh0, oh1, y)


cdef inline void cvx_pl_vmax_sep_double(const double *x, idx_t H, idx_t W, idx_t kh, idx_t kw,
                                        idx_t sh, idx_t sw, idx_t ph, idx_t pw, idx_t OW,
                                        idx_t oh0, idx_t oh1, double *y) noexcept nogil:
    isa_table().pl_vmax_sep_d(x, H, W, kh, kw, sh, sw, ph, pw, OW, oh0, oh1, y)


cdef inline void cvx_pl_vavg_sep_float(const float *x, idx_t H, idx_t W, idx_t kh, idx_t kw,
                                       idx_t sh, idx_t sw, idx_t ph, idx_t pw, idx_t pb, idx_t pr,
                                       bint include_pad, idx_t divisor, idx_t OW, idx_t oh0,
                                       idx_t oh1, float *y) noexcept nogil:
    isa_table().pl_vavg_sep_f(x, H, W, kh, kw, sh, sw, ph, pw, pb, pr, include_pad, divisor, OW,
                              oh0, oh1, y)


cdef inline void cvx_pl_vavg_sep_double(const double *x, idx_t H, idx_t W, idx_t kh, idx_t kw,
                                        idx_t sh, idx_t sw, idx_t ph, idx_t pw, idx_t pb,
                                        idx_t pr, bint include_pad, idx_t divisor, idx_t OW,
                                        idx_t oh0, idx_t oh1, double *y) noexcept nogil:
    isa_table().pl_vavg_sep_d(x, H, W, kh, kw, sh, sw, ph, pw, pb, pr, include_pad, divisor,
                              OW, oh0, oh1, y)


cdef inline void cvx_pl_gap_float(const float *x, float *y, idx_t n, idx_t L) noexcept nogil:
    isa_table().pl_gap_f(x, y, n, L)


cdef inline void cvx_pl_gap_double(const double *x, double *y, idx_t n, idx_t L) noexcept nogil:
    isa_table().pl_gap_d(x, y, n, L)


cdef inline void cvx_vt_fwd_float(const cvx_vt_geom *g, const float *x, idx_t xs,
                                  const float *wp, const float *wnext, const float *b, idx_t nf,
                                  float *y, idx_t ys, const float *res, idx_t nimg, idx_t oh0,
                                  idx_t oh1, float *scratch) noexcept nogil:
    isa_table().vt_fwd_f(g, x, xs, wp, wnext, b, nf, y, ys, res, nimg, oh0, oh1, scratch)


cdef inline void cvx_vt_fwd_double(const cvx_vt_geom *g, const double *x, idx_t xs,
                                   const double *wp, const double *wnext, const double *b,
                                   idx_t nf, double *y, idx_t ys, const double *res, idx_t nimg,
                                   idx_t oh0, idx_t oh1, double *scratch) noexcept nogil:
    isa_table().vt_fwd_d(g, x, xs, wp, wnext, b, nf, y, ys, res, nimg, oh0, oh1, scratch)


cdef inline int cvx_vt_pack_float(const cvx_vt_geom *g, idx_t Fg, const float *w, float *wp,
                                  idx_t b_begin, idx_t b_end) noexcept nogil:
    return isa_table().vt_pack_f(g, Fg, w, wp, b_begin, b_end)


cdef inline int cvx_vt_pack_double(const cvx_vt_geom *g, idx_t Fg, const double *w,
                                   double *wp, idx_t b_begin, idx_t b_end) noexcept nogil:
    return isa_table().vt_pack_d(g, Fg, w, wp, b_begin, b_end)


cdef inline idx_t cvx_vt_filter_block(bint is_double) noexcept nogil:
    """Filters per block of the valid-taps forward for the element type."""
    return isa_table().vt_fb_d if is_double else isa_table().vt_fb_f
