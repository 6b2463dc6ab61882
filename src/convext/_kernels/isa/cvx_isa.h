/* The instruction-set layer: one enum of ISAs, one table of kernel entry points per ISA, the
 * active table chosen once at import.
 *
 *   isa/cvx_base.h       portability macros (GNU / MSVC code path), blocking constants
 *   isa/cvx_isa.h        this file: enum cvx_isa, struct cvx_kernel_table, the direct convolution's
 *                        geometry and scratch sizes, detection (cvx_isa.c)
 *   isa/simd_<isa>.h     SIMD helpers with the same names for every ISA (cvx_vf_*, cvx_vd_*) and
 *                        the ISA's tile sizes
 *   isa/kernels.inc      every kernel written once as static inline functions over those helpers,
 *                        included once per type (CVX_DOUBLE = 0 / 1); it includes depthwise.inc
 *                        (depthwise convolution) and pool.inc (pooling rows), written the same way
 *   isa/isa_<isa>.c      simd_<isa>.h + kernels.inc + `const struct cvx_kernel_table cvx_table_<isa>`;
 *                        compiled with that ISA's flags only (setup.py), so no target attributes
 *   isa/cvx_isa.c        CPU detection and the table of tables
 * The .pyx modules reach the kernels through convext._kernels._isa (one copy of every kernel, in
 * that extension); they include this header only for the types and the inline size helpers.
 * Adding an ISA: CONTRIBUTING.md, "Adding an instruction set".
 */
#ifndef CVX_ISA_H
#define CVX_ISA_H

#include "cvx_base.h"

enum cvx_isa {
    CVX_ISA_GENERIC = 0, /* any CPU: SSE2 on x86-64, GNU vectors or plain C elsewhere */
    CVX_ISA_AVX2 = 1,    /* x86-64 with AVX2 and FMA */
    CVX_ISA_AVX512 = 2,  /* x86-64 with AVX-512F (and AVX2, FMA) */
    CVX_ISA_NEON = 3,    /* aarch64 Advanced SIMD */
    /* room: CVX_ISA_SVE = 4, ... (then raise CVX_ISA_COUNT) */
    CVX_ISA_COUNT = 4
};

/* Geometry of one (image, group) of the direct convolution (kernels.inc documents the method). */
typedef struct {
    cvx_index Cg, H, W, Fg, kh, kw, sh, sw, ph, pw, dil_h, dil_w, OH, OW, Hq, K, P;
    /* the forward's work item: its output pixels [p_begin, p_end) and the filter blocks that
     * start in [f_begin, f_end) (0, P and 0, Fg: everything) */
    cvx_index p_begin, p_end, f_begin, f_end;
    /* the forward's epilogue, applied in the register tiles before their stores (the last
     * pixels of a band: to y while it is in cache): y = clamp(y + res)
     * with res (NULL: none) laid out as y (same element offsets from the y the kernel is given),
     * the clamp (clamp != 0: v = lo if v < lo else v, then hi if v > hi else v; NaN stays NaN)
     * to lo and hi cast to the element type */
    const void *res;
    int clamp;
    double lo, hi;
    /* the forward's band: bytes of U it unfolds at a time (cvx_direct_band_rows), fixed when
     * its scratch is sized (cvx_direct_fwd_scratch), so that a later change of
     * cvx_direct_band_bytes cannot outgrow a prepared call's scratch */
    cvx_index band_bytes;
} cvx_direct_geom;

/* Geometry of one (image, group) of the valid-taps forward (valid_taps.inc), and its epilogue's
 * clamp (clamp != 0: v = lo if v < lo else v, then hi if v > hi else v, lo and hi cast to the
 * element type), applied after the residual (cvx_vt_fwd's res) as the sums go out to y */
typedef struct {
    cvx_index Cg, H, W, kh, kw, sh, sw, ph, pw, dil_h, dil_w, OH, OW;
    int clamp;
    double lo, hi;
} cvx_vt_geom;

/* filters per block of the direct forward: Fg cut into ceil(Fg / fb_max) near-equal blocks
 * (fb_max: the ISA's tile, cvx_kernel_table.direct_fb); block j starts at filter j * result */
static inline cvx_index cvx_direct_fblock(cvx_index Fg, int fb_max)
{
    cvx_index nfb = (Fg + fb_max - 1) / fb_max;
    return nfb > 0 ? (Fg + nfb - 1) / nfb : 1;
}

typedef void (*cvx_sgemm_fn)(cvx_index M, cvx_index N, cvx_index K, const float *A, cvx_index rsa,
                             cvx_index csa, const float *B, cvx_index rsb, cvx_index csb, float *C,
                             cvx_index ldc, int accumulate, float *work);
typedef void (*cvx_dgemm_fn)(cvx_index M, cvx_index N, cvx_index K, const double *A, cvx_index rsa,
                             cvx_index csa, const double *B, cvx_index rsb, cvx_index csb,
                             double *C, cvx_index ldc, int accumulate, double *work);

/* One row per ISA; every entry point is defined in isa_<isa>.c from kernels.inc. */
struct cvx_kernel_table {
    int isa;                 /* enum cvx_isa */
    const char *name;        /* CONVEXT_ISA spelling: "generic", "avx2", "avx512", "neon" */
    const char *description; /* e.g. "AVX-512F" */
    /* C (=, or += when accumulate) A @ B, strided operands; work: CVX_GEMM_WORK_ELEMS elements */
    cvx_sgemm_fn sgemm;
    cvx_dgemm_fn dgemm;
    /* direct convolution of one (image, group): forward (the pixels [p_begin, p_end); wp: the
     * weights packed by direct_pack, or NULL), its weights packed once (Fg x K elements: the
     * filter blocks starting in [f_begin, f_end)), weight-gradient partial sums, their sum */
    void (*direct_fwd_f)(const cvx_direct_geom *g, const float *x, const float *w, const float *wp,
                         const float *b, const cvx_index *off, float *y, float *scratch);
    void (*direct_fwd_d)(const cvx_direct_geom *g, const double *x, const double *w,
                         const double *wp, const double *b, const cvx_index *off, double *y,
                         double *scratch);
    void (*direct_pack_f)(const cvx_direct_geom *g, const float *w, float *wp, cvx_index f_begin,
                          cvx_index f_end);
    void (*direct_pack_d)(const cvx_direct_geom *g, const double *w, double *wp,
                          cvx_index f_begin, cvx_index f_end);
    void (*direct_gw_f)(const cvx_direct_geom *g, const float *x, const float *gy,
                        const cvx_index *off, float *v, float *scratch);
    void (*direct_gw_d)(const cvx_direct_geom *g, const double *x, const double *gy,
                        const cvx_index *off, double *v, double *scratch);
    void (*direct_gw_finish_f)(const cvx_direct_geom *g, const float *v, float *grad_w);
    void (*direct_gw_finish_d)(const cvx_direct_geom *g, const double *v, double *grad_w);
    /* y += a*x;  sum x*y in a fixed order (16 partial sums) */
    void (*axpy_f)(cvx_index n, float a, const float *x, float *y);
    void (*axpy_d)(cvx_index n, double a, const double *x, double *y);
    float (*dot_f)(cvx_index n, const float *x, const float *y);
    double (*dot_d)(cvx_index n, const double *x, const double *y);
    /* GEMM with A packed once (cvx_gemm_packed_a_elems below): pack A whole, then C (=, +=)
     * rows r0.. of it (r0 a multiple of the tile's MR, Ap = packed + r0*K) @ B, bitwise as sgemm */
    void (*sgemm_pack_a)(cvx_index M, cvx_index K, const float *A, cvx_index rsa, cvx_index csa,
                         float *dst);
    void (*dgemm_pack_a)(cvx_index M, cvx_index K, const double *A, cvx_index rsa,
                         cvx_index csa, double *dst);
    void (*sgemm_pa)(cvx_index M, cvx_index N, cvx_index K, const float *Ap, const float *B,
                     cvx_index rsb, cvx_index csb, float *C, cvx_index ldc, int accumulate,
                     float *work);
    void (*dgemm_pa)(cvx_index M, cvx_index N, cvx_index K, const double *Ap, const double *B,
                     cvx_index rsb, cvx_index csb, double *C, cvx_index ldc, int accumulate,
                     double *work);
    /* a dense layer's forward with W packed once (kernels.inc): pack W (N x K; dst NULL: only
     * the size, returned), then y (M x N) columns [n0, n1) = x @ W^T (+ b), n0 a multiple of
     * the strip height (sdense_rows / ddense_rows), bitwise as sgemm + bias */
    cvx_index (*sdense_pack)(cvx_index N, cvx_index K, const float *W, float *dst);
    cvx_index (*ddense_pack)(cvx_index N, cvx_index K, const double *W, double *dst);
    void (*sdense_pa)(cvx_index M, cvx_index N, cvx_index K, cvx_index n0, cvx_index n1,
                      const float *wp, const float *x, const float *b, float *y);
    void (*ddense_pa)(cvx_index M, cvx_index N, cvx_index K, cvx_index n0, cvx_index n1,
                      const double *wp, const double *x, const double *b, double *y);
    /* GEMM with B packed once for many row blocks of A (cvx_gemm_packed_b_elems below): pack
     * rows r0..r1-1 of B (B points at row r0), then C (=, +=) A (strided, or Ap packed as
     * above when Ap != NULL) @ B, bitwise as sgemm */
    void (*sgemm_pack_b)(cvx_index K, cvx_index N, cvx_index r0, cvx_index r1, const float *B,
                         cvx_index rsb, cvx_index csb, float *dst);
    void (*dgemm_pack_b)(cvx_index K, cvx_index N, cvx_index r0, cvx_index r1, const double *B,
                         cvx_index rsb, cvx_index csb, double *dst);
    void (*sgemm_pb)(cvx_index M, cvx_index N, cvx_index K, const float *A, cvx_index rsa,
                     cvx_index csa, const float *Ap, const float *Bp, float *C, cvx_index ldc,
                     int accumulate, float *work);
    void (*dgemm_pb)(cvx_index M, cvx_index N, cvx_index K, const double *A, cvx_index rsa,
                     cvx_index csa, const double *Ap, const double *Bp, double *C, cvx_index ldc,
                     int accumulate, double *work);
    /* B of the GEMM with B packed once, gathered straight from the input by a table of offsets
     * (an unfolded convolution input: kernels.inc, cvx_gemm_pack_b_gather) */
    void (*sgemm_pack_b_gather)(cvx_index K, cvx_index N, cvx_index r0, cvx_index r1,
                                const float *X, cvx_index plane, cvx_index kk,
                                const cvx_index *tab, cvx_index ldt, float *dst);
    void (*dgemm_pack_b_gather)(cvx_index K, cvx_index N, cvx_index r0, cvx_index r1,
                                const double *X, cvx_index plane, cvx_index kk,
                                const cvx_index *tab, cvx_index ldt, double *dst);
    /* C (M x N) += A B^T with the rows of A (lda apart) and of B (ldb apart) both read along K:
     * a weight gradient's dW^T (kernels.inc, cvx_gemm_nt); work: CVX_GEMM_WORK_ELEMS */
    void (*sgemm_nt)(cvx_index M, cvx_index N, cvx_index K, const float *A, cvx_index lda,
                     const float *B, cvx_index ldb, float *C, cvx_index ldc, float *work);
    void (*dgemm_nt)(cvx_index M, cvx_index N, cvx_index K, const double *A, cvx_index lda,
                     const double *B, cvx_index ldb, double *C, cvx_index ldc, double *work);
    /* depthwise convolution (depthwise.inc; _conv.pyx's depthwise route) */
    void (*dw_taps_f)(cvx_index rows, cvx_index n, cvx_index ld_in, cvx_index ld_out, int ntaps,
                      const float *const *base, const float *w, float bias, int accumulate,
                      float *out);
    void (*dw_taps_d)(cvx_index rows, cvx_index n, cvx_index ld_in, cvx_index ld_out, int ntaps,
                      const double *const *base, const double *w, double bias, int accumulate,
                      double *out);
    void (*dw_dots_f)(cvx_index rows, cvx_index n, cvx_index ld_in, cvx_index ld_g, int ntaps,
                      const float *const *base, const float *g, float *acc);
    void (*dw_dots_d)(cvx_index rows, cvx_index n, cvx_index ld_in, cvx_index ld_g, int ntaps,
                      const double *const *base, const double *g, double *acc);
    float (*dw_lanes_f)(const float *a);
    double (*dw_lanes_d)(const double *a);
    int (*dw_finite_f)(cvx_index n, const float *p);
    int (*dw_finite_d)(cvx_index n, const double *p);
    void (*dw_poly_f)(const float *src, cvx_index H, cvx_index W, cvx_index ph, cvx_index pw,
                      cvx_index sh, cvx_index sw, cvx_index Hp, cvx_index Wp, cvx_index Hq,
                      cvx_index Wq, cvx_index na, const cvx_index *pa, cvx_index nb,
                      const cvx_index *pb, cvx_index slack, float *dst);
    void (*dw_poly_d)(const double *src, cvx_index H, cvx_index W, cvx_index ph, cvx_index pw,
                      cvx_index sh, cvx_index sw, cvx_index Hp, cvx_index Wp, cvx_index Hq,
                      cvx_index Wq, cvx_index na, const cvx_index *pa, cvx_index nb,
                      const cvx_index *pb, cvx_index slack, double *dst);
    void (*dw_unpoly_f)(const float *src, cvx_index H, cvx_index W, cvx_index ph, cvx_index pw,
                        cvx_index sh, cvx_index sw, cvx_index Hp, cvx_index Wp, cvx_index na,
                        const cvx_index *pa, cvx_index nb, const cvx_index *pb, cvx_index sp,
                        cvx_index ld, float *dst);
    void (*dw_unpoly_d)(const double *src, cvx_index H, cvx_index W, cvx_index ph, cvx_index pw,
                        cvx_index sh, cvx_index sw, cvx_index Hp, cvx_index Wp, cvx_index na,
                        const cvx_index *pa, cvx_index nb, const cvx_index *pb, cvx_index sp,
                        cvx_index ld, double *dst);
    void (*dw_place_f)(const float *src, cvx_index rows, cvx_index cols, cvx_index total,
                       cvx_index ld, cvx_index r0, cvx_index c0, float *dst);
    void (*dw_place_d)(const double *src, cvx_index rows, cvx_index cols, cvx_index total,
                       cvx_index ld, cvx_index r0, cvx_index c0, double *dst);
    void (*dw_copy_f)(cvx_index rows, cvx_index cols, const float *src, cvx_index lds, float *dst,
                      cvx_index ldd);
    void (*dw_copy_d)(cvx_index rows, cvx_index cols, const double *src, cvx_index lds,
                      double *dst, cvx_index ldd);
    /* one block of up to 16 channels of a small plane, lanes = channels (forward) */
    void (*dw_cb_fwd_f)(cvx_index nl, const float *x, cvx_index H, cvx_index W, cvx_index ph,
                        cvx_index pw, cvx_index Hp, cvx_index Wp, cvx_index OH, cvx_index OW,
                        cvx_index sh, cvx_index sw, int kk, const cvx_index *toff,
                        const float *w, const float *b, const float *res, int clamp, float lo,
                        float hi, float *scratch, float *y);
    void (*dw_cb_fwd_d)(cvx_index nl, const double *x, cvx_index H, cvx_index W, cvx_index ph,
                        cvx_index pw, cvx_index Hp, cvx_index Wp, cvx_index OH, cvx_index OW,
                        cvx_index sh, cvx_index sw, int kk, const cvx_index *toff,
                        const double *w, const double *b, const double *res, int clamp, double lo,
                        double hi, double *scratch, double *y);
    void (*dw_cb_gx_f)(cvx_index nl, const float *gy, cvx_index OH, cvx_index OW, cvx_index H,
                       cvx_index W, cvx_index ph, cvx_index pw, cvx_index Hp, cvx_index Wp,
                       cvx_index sh, cvx_index sw, cvx_index DI, cvx_index DJ, cvx_index Hq,
                       cvx_index Wq, cvx_index na, const cvx_index *pa, cvx_index nb,
                       const cvx_index *pb, int kk, const int *tcount, const int *tix,
                       const cvx_index *toff, const float *w, float *scratch, float *gx);
    void (*dw_cb_gx_d)(cvx_index nl, const double *gy, cvx_index OH, cvx_index OW, cvx_index H,
                       cvx_index W, cvx_index ph, cvx_index pw, cvx_index Hp, cvx_index Wp,
                       cvx_index sh, cvx_index sw, cvx_index DI, cvx_index DJ, cvx_index Hq,
                       cvx_index Wq, cvx_index na, const cvx_index *pa, cvx_index nb,
                       const cvx_index *pb, int kk, const int *tcount, const int *tix,
                       const cvx_index *toff, const double *w, double *scratch, double *gx);
    void (*dw_cb_gw_f)(cvx_index nl, cvx_index N, const float *x, cvx_index xs, const float *gy,
                       cvx_index gys, cvx_index H, cvx_index W, cvx_index ph, cvx_index pw,
                       cvx_index Hp, cvx_index Wp, cvx_index OH, cvx_index OW, cvx_index sh,
                       cvx_index sw, cvx_index na, const cvx_index *pa, cvx_index nb,
                       const cvx_index *pb, int kk, const cvx_index *toff, int flat,
                       const cvx_index *start, const cvx_index *gq, const cvx_index *xq,
                       float *scratch, float *gw);
    void (*dw_cb_gw_d)(cvx_index nl, cvx_index N, const double *x, cvx_index xs,
                       const double *gy, cvx_index gys, cvx_index H, cvx_index W, cvx_index ph,
                       cvx_index pw, cvx_index Hp, cvx_index Wp, cvx_index OH, cvx_index OW,
                       cvx_index sh, cvx_index sw, cvx_index na, const cvx_index *pa,
                       cvx_index nb, const cvx_index *pb, int kk, const cvx_index *toff,
                       int flat, const cvx_index *start, const cvx_index *gq,
                       const cvx_index *xq, double *scratch, double *gw);
    void (*dw_out_f)(cvx_index rows, cvx_index cols, const float *z, cvx_index ldz,
                     const float *res, cvx_index ldr, int clamp, float lo, float hi, float *y,
                     cvx_index ldy);
    void (*dw_out_d)(cvx_index rows, cvx_index cols, const double *z, cvx_index ldz,
                     const double *res, cvx_index ldr, int clamp, double lo, double hi,
                     double *y, cvx_index ldy);
    /* the GEMM route's epilogue in place: y = clamp((y + b[row]) + res) (b, res may be NULL) */
    void (*bias_out_f)(cvx_index rows, cvx_index cols, float *y, cvx_index ldy, const float *b,
                       const float *res, cvx_index ldr, int clamp, float lo, float hi);
    void (*bias_out_d)(cvx_index rows, cvx_index cols, double *y, cvx_index ldy, const double *b,
                       const double *res, cvx_index ldr, int clamp, double lo, double hi);
    /* both gradients of a block in one pass over the output gradient (dw_cb_gw's arguments,
     * then gx, its image stride and dw_cb_gx's w, DI, DJ, Hq, Wq, tcount, tix, toff) */
    void (*dw_cb_gxw_f)(cvx_index nl, cvx_index N, const float *x, cvx_index xs, const float *gy,
                        cvx_index gys, cvx_index H, cvx_index W, cvx_index ph, cvx_index pw,
                        cvx_index Hp, cvx_index Wp, cvx_index OH, cvx_index OW, cvx_index sh,
                        cvx_index sw, cvx_index na, const cvx_index *pa, cvx_index nb,
                        const cvx_index *pb, int kk, const cvx_index *toff, int flat,
                        const cvx_index *start, const cvx_index *gq, const cvx_index *xq,
                        float *scratch, float *gw, float *gx, cvx_index gxs, const float *w,
                        cvx_index DI, cvx_index DJ, cvx_index Hq, cvx_index Wq,
                        const int *tcount, const int *tix, const cvx_index *toffx);
    void (*dw_cb_gxw_d)(cvx_index nl, cvx_index N, const double *x, cvx_index xs,
                        const double *gy, cvx_index gys, cvx_index H, cvx_index W, cvx_index ph,
                        cvx_index pw, cvx_index Hp, cvx_index Wp, cvx_index OH, cvx_index OW,
                        cvx_index sh, cvx_index sw, cvx_index na, const cvx_index *pa,
                        cvx_index nb, const cvx_index *pb, int kk, const cvx_index *toff,
                        int flat, const cvx_index *start, const cvx_index *gq,
                        const cvx_index *xq, double *scratch, double *gw, double *gx,
                        cvx_index gxs, const double *w, cvx_index DI, cvx_index DJ,
                        cvx_index Hq, cvx_index Wq, const int *tcount, const int *tix,
                        const cvx_index *toffx);
    /* output rows of one block of up to 16 channels of any plane, lanes = channels, a ring of
     * padded rows (forward, with the clamp epilogue) */
    void (*dw_cbr_fwd_f)(cvx_index nl, const float *x, cvx_index H, cvx_index W, cvx_index ph,
                         cvx_index pw, cvx_index Hp, cvx_index Wp, cvx_index OH, cvx_index OW,
                         cvx_index sh, cvx_index sw, cvx_index R, cvx_index G,
                         cvx_index oh0, cvx_index oh1, int kk, const cvx_index *toff,
                         const float *w, const float *b,
                         const float *res, int clamp, float lo, float hi, float *scratch,
                         float *y);
    void (*dw_cbr_fwd_d)(cvx_index nl, const double *x, cvx_index H, cvx_index W, cvx_index ph,
                         cvx_index pw, cvx_index Hp, cvx_index Wp, cvx_index OH, cvx_index OW,
                         cvx_index sh, cvx_index sw, cvx_index R, cvx_index G,
                         cvx_index oh0, cvx_index oh1, int kk, const cvx_index *toff,
                         const double *w, const double *b,
                         const double *res, int clamp, double lo, double hi, double *scratch,
                         double *y);
    /* a band's output rows written straight to the output with the clamp epilogue (forward,
     * per plane) */
    void (*dw_taps_act_f)(cvx_index rows, cvx_index n, cvx_index ld_in, cvx_index ld_out,
                          int ntaps, const float *const *base, const float *w, float bias,
                          int clamp, float lo, float hi, float *out);
    void (*dw_taps_act_d)(cvx_index rows, cvx_index n, cvx_index ld_in, cvx_index ld_out,
                          int ntaps, const double *const *base, const double *w, double bias,
                          int clamp, double lo, double hi, double *out);
    /* a plane of a 3x3 forward at stride 2 (forward, per plane) */
    void (*dw_s2_plane_f)(const float *x, cvx_index H, cvx_index W, cvx_index ph, cvx_index pw,
                          cvx_index OH, cvx_index OW, const float *w, float bias, int clamp,
                          float lo, float hi, float *y, float *ring);
    void (*dw_s2_plane_d)(const double *x, cvx_index H, cvx_index W, cvx_index ph, cvx_index pw,
                          cvx_index OH, cvx_index OW, const double *w, double bias, int clamp,
                          double lo, double hi, double *y, double *ring);
    /* a plane of a 3x3 forward at stride 1, the taps read in place (forward, per plane) */
    void (*dw_s1_plane_f)(const float *x, cvx_index H, cvx_index W, cvx_index ph, cvx_index pw,
                          cvx_index OH, cvx_index OW, const float *w, float bias, int clamp,
                          float lo, float hi, float *y, const float *zero);
    void (*dw_s1_plane_d)(const double *x, cvx_index H, cvx_index W, cvx_index ph, cvx_index pw,
                          cvx_index OH, cvx_index OW, const double *w, double bias, int clamp,
                          double lo, double hi, double *y, const double *zero);
    /* a small plane of a 3x3 forward at stride 1 with one row and column of padding, taken
     * whole (forward, per plane), and the masks of its loads (once per plan) */
    void (*dw_s1_flat_f)(const float *x, cvx_index H, cvx_index W, const cvx_index *mask,
                         const float *w, float bias, int clamp, float lo, float hi, float *y);
    void (*dw_s1_flat_d)(const double *x, cvx_index H, cvx_index W, const cvx_index *mask,
                         const double *w, double bias, int clamp, double lo, double hi,
                         double *y);
    void (*dw_flat_masks)(cvx_index H, cvx_index W, cvx_index lanes, cvx_index *mask);
    /* a band's zero-padded copy for stride 1 (forward, per plane) */
    void (*dw_pad1_f)(const float *src, cvx_index H, cvx_index W, cvx_index ph, cvx_index pw,
                      cvx_index Hp, cvx_index Wp, cvx_index slack, float *dst);
    void (*dw_pad1_d)(const double *src, cvx_index H, cvx_index W, cvx_index ph, cvx_index pw,
                      cvx_index Hp, cvx_index Wp, cvx_index slack, double *dst);
    /* pooling rows (pool.inc; _pool.pyx): max (with argmax) and average over the interior
     * columns of one output row; whole 3x3 and 2x2 max windows */
    void (*pl_max_row_f)(const float *xp, cvx_index W, cvx_index hs, cvx_index i0, cvx_index i1,
                         cvx_index dh, cvx_index kw, cvx_index sw, cvx_index pw, cvx_index dw,
                         cvx_index ow0, cvx_index ow1, float *yp, int64_t *ip);
    void (*pl_max_row_d)(const double *xp, cvx_index W, cvx_index hs, cvx_index i0, cvx_index i1,
                         cvx_index dh, cvx_index kw, cvx_index sw, cvx_index pw, cvx_index dw,
                         cvx_index ow0, cvx_index ow1, double *yp, int64_t *ip);
    void (*pl_avg_row_f)(const float *xp, cvx_index W, cvx_index hs, cvx_index i0, cvx_index i1,
                         cvx_index kw, cvx_index sw, cvx_index pw, cvx_index ow0, cvx_index ow1,
                         float div, float *yp);
    void (*pl_avg_row_d)(const double *xp, cvx_index W, cvx_index hs, cvx_index i0, cvx_index i1,
                         cvx_index kw, cvx_index sw, cvx_index pw, cvx_index ow0, cvx_index ow1,
                         double div, double *yp);
    void (*pl_max3_f)(cvx_index n, const float *r0, cvx_index W, cvx_index s, int64_t base,
                      float *yp, int64_t *ip);
    void (*pl_max3_d)(cvx_index n, const double *r0, cvx_index W, cvx_index s, int64_t base,
                      double *yp, int64_t *ip);
    void (*pl_max2_f)(cvx_index n, const float *r0, cvx_index W, cvx_index s, int64_t base,
                      float *yp, int64_t *ip);
    void (*pl_max2_d)(cvx_index n, const double *r0, cvx_index W, cvx_index s, int64_t base,
                      double *yp, int64_t *ip);
    int (*pl_back2_f)(cvx_index n, const float *gy, const int64_t *ix, int64_t base, cvx_index W,
                      float *g0, float *g1);
    int (*pl_back2_d)(cvx_index n, const double *gy, const int64_t *ix, int64_t base,
                      cvx_index W, double *g0, double *g1);
    void (*pl_max3_rows_f)(cvx_index rows, cvx_index n, cvx_index s, const float *r0,
                           cvx_index W, int64_t base, cvx_index OW, float *yp, int64_t *ip);
    void (*pl_max3_rows_d)(cvx_index rows, cvx_index n, cvx_index s, const double *r0,
                           cvx_index W, int64_t base, cvx_index OW, double *yp, int64_t *ip);
    /* values-only 3x3 stride-2 max pool, padding <= 1: output rows [oh0, oh1) of a plane */
    void (*pl_vmax3s2_f)(const float *x, cvx_index H, cvx_index W, cvx_index ph, cvx_index pw,
                         cvx_index OW, cvx_index oh0, cvx_index oh1, float *y);
    void (*pl_vmax3s2_d)(const double *x, cvx_index H, cvx_index W, cvx_index ph, cvx_index pw,
                         cvx_index OW, cvx_index oh0, cvx_index oh1, double *y);
    /* 3x3 max pool at stride 1 or 2, padding <= 1, in registers (with the argmax in ip, or
     * values only: ip NULL): output rows [oh0, oh1) of a plane; NULL where the ISA has no
     * register rows (CVX_V_LANE_ROWS) */
    void (*pl_max3_lanes_f)(const float *x, cvx_index H, cvx_index W, cvx_index s, cvx_index ph,
                            cvx_index pw, cvx_index OW, cvx_index oh0, cvx_index oh1, float *y,
                            int64_t *ip);
    void (*pl_max3_lanes_d)(const double *x, cvx_index H, cvx_index W, cvx_index s,
                            cvx_index ph, cvx_index pw, cvx_index OW, cvx_index oh0,
                            cvx_index oh1, double *y, int64_t *ip);
    /* values-only 2x2 stride-2 max pool without top and left padding: output rows [oh0, oh1) */
    void (*pl_vmax2s2_f)(const float *x, cvx_index H, cvx_index W, cvx_index OW, cvx_index oh0,
                         cvx_index oh1, float *y);
    void (*pl_vmax2s2_d)(const double *x, cvx_index H, cvx_index W, cvx_index OW, cvx_index oh0,
                         cvx_index oh1, double *y);
    /* values-only max pool without dilation, kw and sw at most 512: output rows [oh0, oh1) */
    void (*pl_vmax_sep_f)(const float *x, cvx_index H, cvx_index W, cvx_index kh, cvx_index kw,
                          cvx_index sh, cvx_index sw, cvx_index ph, cvx_index pw, cvx_index OW,
                          cvx_index oh0, cvx_index oh1, float *y);
    void (*pl_vmax_sep_d)(const double *x, cvx_index H, cvx_index W, cvx_index kh,
                          cvx_index kw, cvx_index sh, cvx_index sw, cvx_index ph, cvx_index pw,
                          cvx_index OW, cvx_index oh0, cvx_index oh1, double *y);
    /* average pool without dilation, kw and sw at most 512: output rows [oh0, oh1) */
    void (*pl_vavg_sep_f)(const float *x, cvx_index H, cvx_index W, cvx_index kh, cvx_index kw,
                          cvx_index sh, cvx_index sw, cvx_index ph, cvx_index pw, cvx_index pb,
                          cvx_index pr, int include_pad, cvx_index divisor, cvx_index OW,
                          cvx_index oh0, cvx_index oh1, float *y);
    void (*pl_vavg_sep_d)(const double *x, cvx_index H, cvx_index W, cvx_index kh,
                          cvx_index kw, cvx_index sh, cvx_index sw, cvx_index ph, cvx_index pw,
                          cvx_index pb, cvx_index pr, int include_pad, cvx_index divisor,
                          cvx_index OW, cvx_index oh0, cvx_index oh1, double *y);
    /* the global average of n planes of L elements, L apart (pool.inc's cvx_pl_gap) */
    void (*pl_gap_f)(const float *x, float *y, cvx_index n, cvx_index L);
    void (*pl_gap_d)(const double *x, double *y, cvx_index n, cvx_index L);
    /* the FMA-peak loop of convext.bench: fma_chain_count chains, `iters` steps; a checksum */
    double (*fma_chains)(long long iters, float m, float c);
    int fma_chain_count;                /* chains of that loop: as many as fit in registers */
    int f32_lanes, f64_lanes;           /* vector lanes */
    int sgemm_mr, sgemm_nr, dgemm_mr, dgemm_nr; /* GEMM register tiles */
    int sgemm_nt_kc, dgemm_nt_kc; /* sgemm_nt / dgemm_nt: the largest K chunk */
    int fma_fused;                      /* 1: the peak loop runs fused multiply-adds (else mul+add) */
    int direct_fb;                      /* filters per direct forward tile (cvx_direct_fblock) */
    int sdense_rows, ddense_rows;       /* rows of W per packed strip of sdense_pack / ddense_pack */
    /* valid-taps forward (valid_taps.inc): one work item (rows [oh0, oh1) of a block of nf
     * filters in nimg images; wnext: the packed weights of the thread's next item, or NULL),
     * the packing of blocks [b_begin, b_end) of a group's weights (1: all finite), and the
     * filters per block (vt_fb_f / vt_fb_d) */
    void (*vt_fwd_f)(const cvx_vt_geom *g, const float *x, cvx_index xs, const float *wp,
                     const float *wnext, const float *b, cvx_index nf, float *y, cvx_index ys,
                     const float *res, cvx_index nimg, cvx_index oh0, cvx_index oh1,
                     float *scratch);
    void (*vt_fwd_d)(const cvx_vt_geom *g, const double *x, cvx_index xs, const double *wp,
                     const double *wnext, const double *b, cvx_index nf, double *y,
                     cvx_index ys, const double *res, cvx_index nimg, cvx_index oh0,
                     cvx_index oh1, double *scratch);
    int (*vt_pack_f)(const cvx_vt_geom *g, cvx_index Fg, const float *w, float *wp,
                     cvx_index b_begin, cvx_index b_end);
    int (*vt_pack_d)(const cvx_vt_geom *g, cvx_index Fg, const double *w, double *wp,
                     cvx_index b_begin, cvx_index b_end);
    int vt_fb_f, vt_fb_d;
    /* 1: simd_<isa>.h has CVX_V_LANE_ROWS, so the depthwise rows at stride 1 work in registers
     * (with at most one column of padding on the left: cvx_dw_s1_vrow) and so do the flat
     * planes (cvx_dw_s1_flat), which moves their rule's widths, and pool.inc's 3x3 max pools:
     * the values at stride 2 (cvx_pl_vmax3s2_lanes), and with the argmax or at stride 1 those
     * of pl_max3_lanes_f / _d (cvx_pl_max3_lanes; set exactly then) */
    int dw_lane_rows;
    /* float32 / float64: -1, or the depthwise rows at stride 2 with one column of padding on
     * the left work in registers (cvx_dw_s2_vplane), and the rule takes them on output planes
     * at least this wide (simd_<isa>.h's CVX_DW_S2_LANES_MIN_OW_F / _D; 0: from a vector) */
    int dw_s2_lanes_min_ow_f, dw_s2_lanes_min_ow_d;
};

/* cvx_isa.c */
int cvx_isa_cpu_supports(int isa);                       /* 1 if this CPU (and OS) can run it */
const struct cvx_kernel_table *cvx_isa_compiled(int isa); /* its table, or NULL if not built */
const char *cvx_isa_name(int isa);                       /* "generic", ... ("" if out of range) */
int cvx_isa_code_path_msvc(void);                        /* 1 for MSVC / CVX_MSVC_PATH builds */
/* the L2 size, AMD or not, the CPU family (0: unknown) */
void cvx_cpu_cache(long long *l2_bytes, int *amd, int *family);

/* ---- GEMM with a pre-packed A: elements of the packed copy of an M x K matrix for a tile of
 * mr rows (the table's sgemm_mr / dgemm_mr): ceil(M/mr) strips of mr x K. M and K are the
 * dimensions of an array in memory (a weight), so this cannot overflow. ---- */
static inline cvx_index cvx_gemm_packed_a_elems(cvx_index M, cvx_index K, cvx_index mr)
{
    return (M + mr - 1) / mr * mr * K;
}
/* ---- GEMM with a pre-packed B: elements of the packed copy of a K x N matrix for a tile of nr
 * columns (the table's sgemm_nr / dgemm_nr): at most ceil(N/nr) strips of K x nr. K*N is at
 * most the size of an unfolded tile in memory (the caller's scratch), so this cannot overflow. */
static inline cvx_index cvx_gemm_packed_b_elems(cvx_index K, cvx_index N, cvx_index nr)
{
    return (N + nr - 1) / nr * nr * K;
}

/* ---- depthwise 3x3 at stride 2 (cvx_dw_s2_plane): a split row's pitch (each phase's OW + 1
 * elements, rounded up to 16), and the ring of three rows of both phases. OW is an output
 * plane's width, an array in memory. ---- */
static inline cvx_index cvx_dw_s2_pitch(cvx_index OW) { return (OW + 1 + 15) / 16 * 16; }
static inline cvx_index cvx_dw_s2_ring(cvx_index OW) { return 6 * cvx_dw_s2_pitch(OW); }

/* ---- direct convolution: scratch sizes (callers allocate them) ---- */
/* elements of U (plus slack read by the last, partial pixel block): the weight gradient's whole
 * row-unfolded image. Bounded before this is called: convext/functional/_routes.py sends a
 * geometry to that route only when Cg*sh*kw*Hq*OW <= 2**20 (computed in Python integers), and
 * every factor is at most 2**40 by the Python geometry check
 * (convext._validation.window_geometry); K = Cg*kh*kw is the weight's size per filter. */
static inline cvx_index cvx_direct_u_elems(const cvx_direct_geom *g)
{
    return g->Cg * g->sh * g->kw * g->Hq * g->OW + CVX_DIRECT_PBMAX;
}
/* Whether the direct forward reads x in place as U (a 1x1 kernel at stride 1 without padding
 * on any side, the output as large as the input: a bottom or right padding alone leaves ph and
 * pw 0), with at least vl pixels (kernels.inc, cvx_direct_fwd) */
static inline int cvx_direct_in_place(const cvx_direct_geom *g, cvx_index vl)
{
    return g->kh == 1 && g->kw == 1 && g->sh == 1 && g->sw == 1 && g->ph == 0 && g->pw == 0 &&
           g->OH == g->H && g->OW == g->W && g->P >= vl;
}
/* Output rows of one band of the direct forward (cvx_direct_fwd), for a row of U of `row`
 * elements and a kernel reaching `reach` rows below an output row: the band's rows of U (its
 * output rows, one more for a band starting mid-row, and the reach) within `bytes` of
 * elem_size-byte elements; where the band unfolds its rows (unfolds) and that leaves fewer than
 * CVX_DIRECT_MIN_BAND_ROWS, up to that many within CVX_DIRECT_BAND_MAX_BYTES; 0 when not even
 * one output row fits. The same function for every element size and budget, and never fewer
 * rows for more bytes or smaller elements (the scratch bound below relies on it). */
static inline cvx_index cvx_direct_band_rows_of(cvx_index row, cvx_index reach, cvx_index bytes,
                                                cvx_index elem_size, int unfolds)
{
    cvx_index rows = bytes / elem_size / row - 1 - reach;
    if (unfolds && rows < CVX_DIRECT_MIN_BAND_ROWS) {
        cvx_index most = CVX_DIRECT_BAND_MAX_BYTES / elem_size / row - 1 - reach;
        if (most > CVX_DIRECT_MIN_BAND_ROWS) most = CVX_DIRECT_MIN_BAND_ROWS;
        if (rows < most) rows = most;
    }
    return rows > 0 ? rows : 0;
}
static inline cvx_index cvx_direct_band_rows(const cvx_direct_geom *g, cvx_index bytes,
                                             cvx_index elem_size, int unfolds)
{
    return cvx_direct_band_rows_of(g->Cg * g->sh * g->kw * g->OW, g->Hq - g->OH, bytes,
                                   elem_size, unfolds);
}
/* elements of the forward's band of U (plus the same slack): at most the rows a band of
 * cvx_direct_fwd unfolds at g->band_bytes for the smallest element (float), unfolding (the most
 * rows), or of one strip of at most CVX_DIRECT_PBMAX pixels when no output row fits, or U's Hq
 * rows; read in place, the copy of a band's last pixels (K rows of a vector). Never more than
 * cvx_direct_u_elems. Bounded by the route too: it takes a geometry only when one strip's rows
 * Cg*sh*kw*OW*min(Hq, (CVX_DIRECT_PBMAX - 1)/OW + 2 + Hq - OH) are at most 2**21 elements
 * (_routes.py, computed in Python integers), so a band's rows, Hq at most, times a row of U
 * cannot overflow. */
static inline cvx_index cvx_direct_fwd_u_elems(const cvx_direct_geom *g)
{
    const cvx_index row = g->Cg * g->sh * g->kw * g->OW;
    const cvx_index rows = cvx_direct_band_rows(g, g->band_bytes, (cvx_index)sizeof(float), 1);
    const cvx_index px = rows * g->OW > CVX_DIRECT_PBMAX ? rows * g->OW : CVX_DIRECT_PBMAX;
    cvx_index span = (px - 1) / g->OW + 2 + (g->Hq - g->OH), u;
    if (span > g->Hq) span = g->Hq;
    u = span * row;
    if (cvx_direct_in_place(g, 1)) { /* read in place from VL <= P pixels: K*VL copied, <= K*P */
        const cvx_index lanes = g->P < CVX_DIRECT_VLMAX ? g->P : CVX_DIRECT_VLMAX;
        if (u < g->K * lanes) u = g->K * lanes;
    }
    return u + CVX_DIRECT_PBMAX; /* so at most cvx_direct_u_elems */
}
/* scratch for u elements of U: the re-based tap offsets (K), U (u), a zero bias, the partial
 * last pixel strip and the packed weights (Fg x K, the weight's size per group); a multiple of
 * 16 elements, so that each thread's scratch (this many elements apart) starts on a cache line
 * where the first does */
static inline cvx_index cvx_direct_scratch_of(const cvx_direct_geom *g, cvx_index u)
{
    return (CVX_DIRECT_IDX_ELEMS(g->K) + u + CVX_DIRECT_FBMAX * (CVX_DIRECT_PBMAX + 1) +
            g->K * g->Fg + 64 + 15) /
           16 * 16;
}
/* the weight gradient's scratch (all of U), and the forward's: a band of U at band_bytes, which
 * it fixes in g (g->band_bytes: the band the kernel then unfolds) */
static inline cvx_index cvx_direct_scratch(const cvx_direct_geom *g)
{
    return cvx_direct_scratch_of(g, cvx_direct_u_elems(g));
}
static inline cvx_index cvx_direct_fwd_scratch(cvx_direct_geom *g, cvx_index band_bytes)
{
    g->band_bytes = band_bytes;
    return cvx_direct_scratch_of(g, cvx_direct_fwd_u_elems(g));
}
/* elements of v for the grad_weight kernels: lane partial sums (the widest case), then room for
 * the tail. Bounded by Fg (the weight's filters per group, an array in memory; the chosen route
 * has Fg <= 64) and K = Cg*kh*kw, the weight's size per filter. */
static inline cvx_index cvx_direct_v_elems(const cvx_direct_geom *g)
{
    return (g->Fg * (g->K + CVX_DIRECT_KBMAX) + g->Fg + g->K + CVX_DIRECT_KBMAX) * CVX_DIRECT_VLMAX;
}

/* ---- valid-taps forward: scratch elements of a work item of `rows` output rows (its band's rows
 * times its images): the block's bias and its sums, pixel-major (fb filters per pixel). The
 * caller keeps rows * OW * fb within its band's bound (_conv.pyx, VT_BAND_ELEMS). */
static inline cvx_index cvx_vt_scratch(cvx_index fb, cvx_index rows, cvx_index OW)
{
    return fb * (1 + rows * OW);
}

#endif /* CVX_ISA_H */
