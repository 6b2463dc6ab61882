/* Direct convolution for small channel counts (float and double): forward and weight gradient.
 *
 * For one image and group, the input is first "row-unfolded" into U: for every input channel c,
 * row phase rp < sh and kernel column j, a plane of Hq x OW elements
 *     U[c, rp, j][r, ow] = xpad[r*sh + rp, ow*sw + j*dil_w],     Hq = OH + (dil_h*(kh-1)) / sh,
 * where xpad is the input with its zero padding (so no loop below needs a bounds check, and a
 * padded zero takes part in the arithmetic as in PyTorch: a non-finite weight times it is NaN).
 * Tap (c, i, j) then reads, for the output pixels p = oh*OW + ow in order, the CONTIGUOUS run
 *     U + off[k] + p,    off[k] = (((c*sh + (i*dil_h)%sh)*kw + j)*Hq + (i*dil_h)/sh) * OW,
 * so the convolution is a GEMM whose B operand needs no packing: y (Fg x P) = W (Fg x K) @ B.
 *
 * forward: register tiles of FB output channels x PB = NV*VL pixels (acc[FB][NV] vectors) over
 *          k ascending, starting from the bias; weights broadcast from a small packed copy.
 * weight gradient: register tiles of FB filters x KB taps, each accumulator a vector of partial
 *          sums over pixels (VL lanes), reduced lane by lane in a fixed order at the end of the
 *          image; the P % VL last pixels are added one by one. dW(+)= the image's sum.
 * Every result element has a fixed arithmetic order that depends only on the shape and the
 * instruction set, never on the caller's partitioning into threads.
 *
 * Instruction sets as in _gemm.h (whose vector macros and run-time level this reuses): AVX-512F,
 * AVX2+FMA (target attributes, chosen with __builtin_cpu_supports), GNU vector extensions, or
 * plain C for other compilers.  Scratch: cvx_direct_scratch(g) elements of T per call.
 */
#ifndef CVX_DIRECT_H
#define CVX_DIRECT_H

#include "_gemm.h"

typedef struct {
    cvx_index Cg, H, W, Fg, kh, kw, sh, sw, ph, pw, dil_h, dil_w, OH, OW, Hq, K, P;
} cvx_direct_geom;

#define CVX_DIRECT_FBMAX 8   /* >= every FB below */
#define CVX_DIRECT_PBMAX 64  /* >= every NV*VL below */
#define CVX_DIRECT_KBMAX 8

/* elements of U (plus slack read by the last, partial pixel block). Bounded before this is
 * called: convext/functional/_routes.py sends a geometry to this route only when
 * Cg*sh*kw*Hq*OW <= 2**21 (computed in Python integers), and every factor is at most 2**40 by
 * the Python geometry check (convext._validation.window_geometry); K = Cg*kh*kw is the
 * weight's size per filter. */
static inline cvx_index cvx_direct_u_elems(const cvx_direct_geom *g)
{
    return g->Cg * g->sh * g->kw * g->Hq * g->OW + CVX_DIRECT_PBMAX;
}
static inline cvx_index cvx_direct_scratch(const cvx_direct_geom *g)
{
    return cvx_direct_u_elems(g) + g->K * CVX_DIRECT_FBMAX + CVX_DIRECT_FBMAX * (CVX_DIRECT_PBMAX + 1) +
           CVX_DIRECT_FBMAX * CVX_DIRECT_KBMAX + 64;
}

/* forward micro-kernel: y[f*ldy + p] = b[f] + sum_k w[k*FB + f] * u[off[k] + p], p < NV*VL */
#define CVX_DIRECT_FWD_KERNEL(NAME, T, VT, VL, FB, NV, ATTR, LD, ST, BC, FMA)                               \
    ATTR static void NAME(cvx_index K, const T *CVX_RESTRICT w, const cvx_index *CVX_RESTRICT off,  \
                          const T *u, const T *b, T *y, cvx_index ldy)                                \
    {                                                                                                \
        VT acc[FB][NV];                                                                              \
        cvx_index k;                                                                                 \
        int f, v;                                                                                    \
        CVX_PRAGMA_UNROLL for (f = 0; f < FB; f++)                                                   \
            CVX_PRAGMA_UNROLL for (v = 0; v < NV; v++) acc[f][v] = BC(b + f);                        \
        for (k = 0; k < K; k++) {                                                                    \
            const T *up = u + off[k];                                                                \
            VT xv[NV];                                                                               \
            CVX_PRAGMA_UNROLL for (v = 0; v < NV; v++) xv[v] = LD(up + v * VL);                      \
            CVX_PRAGMA_UNROLL for (f = 0; f < FB; f++) {                                             \
                VT wv = BC(w + k * FB + f);                                                          \
                CVX_PRAGMA_UNROLL for (v = 0; v < NV; v++) acc[f][v] = FMA(wv, xv[v], acc[f][v]);    \
            }                                                                                        \
        }                                                                                            \
        CVX_PRAGMA_UNROLL for (f = 0; f < FB; f++)                                                   \
            CVX_PRAGMA_UNROLL for (v = 0; v < NV; v++) ST(y + f * ldy + v * VL, acc[f][v]);          \
    }

/* weight-gradient micro-kernel: v[(f*ldv + t)*VL + l] += lane l of the sum over the pixels
 * q < nvec*VL of g[f*ldg + q] * u[off[t] + q], plus (gt != NULL) one more vector step on the
 * zero-padded copies gt[f*VL + l], ut[t*VL + l] of the last P % VL pixels (lanes past the end
 * then add exactly 0*0) */
#define CVX_DIRECT_GW_KERNEL(NAME, T, VT, VL, FB, KB, ATTR, LD, ST, FMA, ZERO)                               \
    ATTR static void NAME(cvx_index nvec, const T *g, cvx_index ldg, const T *u,                     \
                          const cvx_index *CVX_RESTRICT off, const T *gt, const T *ut,               \
                          T *CVX_RESTRICT v, cvx_index ldv)                                          \
    {                                                                                                \
        VT acc[FB][KB];                                                                              \
        cvx_index q;                                                                                 \
        int f, t;                                                                                    \
        CVX_PRAGMA_UNROLL for (f = 0; f < FB; f++)                                                   \
            CVX_PRAGMA_UNROLL for (t = 0; t < KB; t++) acc[f][t] = LD(v + (f * ldv + t) * VL);       \
        for (q = 0; q < nvec * VL; q += VL) {                                                        \
            VT gv[FB];                                                                               \
            CVX_PRAGMA_UNROLL for (f = 0; f < FB; f++) gv[f] = LD(g + f * ldg + q);                  \
            CVX_PRAGMA_UNROLL for (t = 0; t < KB; t++) {                                             \
                VT xv = LD(u + off[t] + q);                                                          \
                CVX_PRAGMA_UNROLL for (f = 0; f < FB; f++) acc[f][t] = FMA(gv[f], xv, acc[f][t]);    \
            }                                                                                        \
        }                                                                                            \
        if (gt) {                                                                                    \
            VT gv[FB];                                                                               \
            CVX_PRAGMA_UNROLL for (f = 0; f < FB; f++) gv[f] = LD(gt + f * VL);                      \
            CVX_PRAGMA_UNROLL for (t = 0; t < KB; t++) {                                             \
                VT xv = LD(ut + t * VL);                                                             \
                CVX_PRAGMA_UNROLL for (f = 0; f < FB; f++) acc[f][t] = FMA(gv[f], xv, acc[f][t]);    \
            }                                                                                        \
        }                                                                                            \
        CVX_PRAGMA_UNROLL for (f = 0; f < FB; f++)                                                   \
            CVX_PRAGMA_UNROLL for (t = 0; t < KB; t++) ST(v + (f * ldv + t) * VL, acc[f][t]);        \
    }

#define CVX_DIRECT_FWD_SET(P, T, VT, VL, NV, ATTR, LD, ST, BC, FMA)                                        \
    CVX_DIRECT_FWD_SET_NV(P, T, VT, VL, NV, ATTR, LD, ST, BC, FMA)                                         \
    CVX_DIRECT_FWD_SET_NV(P##t, T, VT, VL, 1, ATTR, LD, ST, BC, FMA)
#define CVX_DIRECT_FWD_SET8(P, T, VT, VL, NV, ATTR, LD, ST, BC, FMA)                                       \
    CVX_DIRECT_FWD_SET8_NV(P, T, VT, VL, NV, ATTR, LD, ST, BC, FMA)                                        \
    CVX_DIRECT_FWD_SET8_NV(P##t, T, VT, VL, 1, ATTR, LD, ST, BC, FMA)
#define CVX_DIRECT_FWD_SET_NV(P, T, VT, VL, NV, ATTR, LD, ST, BC, FMA)                                     \
    CVX_DIRECT_FWD_KERNEL(P##1, T, VT, VL, 1, NV, ATTR, LD, ST, BC, FMA)                                   \
    CVX_DIRECT_FWD_KERNEL(P##2, T, VT, VL, 2, NV, ATTR, LD, ST, BC, FMA)                                   \
    CVX_DIRECT_FWD_KERNEL(P##3, T, VT, VL, 3, NV, ATTR, LD, ST, BC, FMA)                                   \
    CVX_DIRECT_FWD_KERNEL(P##4, T, VT, VL, 4, NV, ATTR, LD, ST, BC, FMA)
#define CVX_DIRECT_FWD_SET8_NV(P, T, VT, VL, NV, ATTR, LD, ST, BC, FMA)                                    \
    CVX_DIRECT_FWD_SET_NV(P, T, VT, VL, NV, ATTR, LD, ST, BC, FMA)                                         \
    CVX_DIRECT_FWD_KERNEL(P##5, T, VT, VL, 5, NV, ATTR, LD, ST, BC, FMA)                                   \
    CVX_DIRECT_FWD_KERNEL(P##6, T, VT, VL, 6, NV, ATTR, LD, ST, BC, FMA)                                   \
    CVX_DIRECT_FWD_KERNEL(P##7, T, VT, VL, 7, NV, ATTR, LD, ST, BC, FMA)                                   \
    CVX_DIRECT_FWD_KERNEL(P##8, T, VT, VL, 8, NV, ATTR, LD, ST, BC, FMA)
#define CVX_DIRECT_GW_SET(P, T, VT, VL, KB, ATTR, LD, ST, FMA, ZERO)                                       \
    CVX_DIRECT_GW_KERNEL(P##1, T, VT, VL, 1, KB, ATTR, LD, ST, FMA, ZERO)                                  \
    CVX_DIRECT_GW_KERNEL(P##2, T, VT, VL, 2, KB, ATTR, LD, ST, FMA, ZERO)                                  \
    CVX_DIRECT_GW_KERNEL(P##3, T, VT, VL, 3, KB, ATTR, LD, ST, FMA, ZERO)                                  \
    CVX_DIRECT_GW_KERNEL(P##4, T, VT, VL, 4, KB, ATTR, LD, ST, FMA, ZERO)

#define CVX_ATTR_AVX512_K __attribute__((target("avx512f,avx2,fma"), noinline))
#define CVX_ATTR_AVX2_K __attribute__((target("avx2,fma"), noinline))

#if CVX_X86
CVX_DIRECT_FWD_SET8(cvx_direct_fwd_a5_float_, float, __m512, 16, 3, CVX_ATTR_AVX512_K, CVX_A5S_LD, CVX_A5S_ST, CVX_A5S_BC,
              CVX_A5S_FMA)
CVX_DIRECT_FWD_SET8(cvx_direct_fwd_a5_double_, double, __m512d, 8, 3, CVX_ATTR_AVX512_K, CVX_A5D_LD, CVX_A5D_ST, CVX_A5D_BC,
              CVX_A5D_FMA)
CVX_DIRECT_FWD_SET(cvx_direct_fwd_a2_float_, float, __m256, 8, 3, CVX_ATTR_AVX2_K, CVX_A2S_LD, CVX_A2S_ST, CVX_A2S_BC,
             CVX_A2S_FMA)
CVX_DIRECT_FWD_SET(cvx_direct_fwd_a2_double_, double, __m256d, 4, 3, CVX_ATTR_AVX2_K, CVX_A2D_LD, CVX_A2D_ST, CVX_A2D_BC,
             CVX_A2D_FMA)
CVX_DIRECT_GW_SET(cvx_direct_gw_a5_float_, float, __m512, 16, 5, CVX_ATTR_AVX512_K, CVX_A5S_LD, CVX_A5S_ST, CVX_A5S_FMA,
            CVX_A5S_ZERO)
CVX_DIRECT_GW_SET(cvx_direct_gw_a5_double_, double, __m512d, 8, 5, CVX_ATTR_AVX512_K, CVX_A5D_LD, CVX_A5D_ST, CVX_A5D_FMA,
            CVX_A5D_ZERO)
CVX_DIRECT_GW_SET(cvx_direct_gw_a2_float_, float, __m256, 8, 2, CVX_ATTR_AVX2_K, CVX_A2S_LD, CVX_A2S_ST, CVX_A2S_FMA,
            CVX_A2S_ZERO)
CVX_DIRECT_GW_SET(cvx_direct_gw_a2_double_, double, __m256d, 4, 2, CVX_ATTR_AVX2_K, CVX_A2D_LD, CVX_A2D_ST, CVX_A2D_FMA,
            CVX_A2D_ZERO)
#endif

#if CVX_GNU
#define CVX_DIRECT_VL_FLOAT 4
#define CVX_DIRECT_VL_DOUBLE 2
CVX_DIRECT_FWD_SET(cvx_direct_fwd_g_float_, float, cvx_gvs, 4, 3, __attribute__((noinline)), CVX_GS_LD, CVX_GS_ST, CVX_GS_BC,
             CVX_GS_FMA)
CVX_DIRECT_FWD_SET(cvx_direct_fwd_g_double_, double, cvx_gvd, 2, 3, __attribute__((noinline)), CVX_GD_LD, CVX_GD_ST, CVX_GD_BC,
             CVX_GD_FMA)
CVX_DIRECT_GW_SET(cvx_direct_gw_g_float_, float, cvx_gvs, 4, 2, __attribute__((noinline)), CVX_GS_LD, CVX_GS_ST, CVX_GS_FMA,
            CVX_GS_ZERO)
CVX_DIRECT_GW_SET(cvx_direct_gw_g_double_, double, cvx_gvd, 2, 2, __attribute__((noinline)), CVX_GD_LD, CVX_GD_ST, CVX_GD_FMA,
            CVX_GD_ZERO)
#else
#define CVX_DIRECT_VL_FLOAT 1
#define CVX_DIRECT_VL_DOUBLE 1
#define CVX_DIRECT_C_LD(p) (*(p))
#define CVX_DIRECT_C_ST(p, x) (*(p) = (x))
#define CVX_DIRECT_C_FMA(a, b, c) ((c) + (a) * (b))
#define CVX_DIRECT_C_ZERO() 0
CVX_DIRECT_FWD_SET(cvx_direct_fwd_g_float_, float, float, 1, 3, , CVX_DIRECT_C_LD, CVX_DIRECT_C_ST, CVX_DIRECT_C_LD, CVX_DIRECT_C_FMA)
CVX_DIRECT_FWD_SET(cvx_direct_fwd_g_double_, double, double, 1, 3, , CVX_DIRECT_C_LD, CVX_DIRECT_C_ST, CVX_DIRECT_C_LD, CVX_DIRECT_C_FMA)
CVX_DIRECT_GW_SET(cvx_direct_gw_g_float_, float, float, 1, 2, , CVX_DIRECT_C_LD, CVX_DIRECT_C_ST, CVX_DIRECT_C_FMA, CVX_DIRECT_C_ZERO)
CVX_DIRECT_GW_SET(cvx_direct_gw_g_double_, double, double, 1, 2, , CVX_DIRECT_C_LD, CVX_DIRECT_C_ST, CVX_DIRECT_C_FMA, CVX_DIRECT_C_ZERO)
#endif

/* ---- drivers, written once per float type ---- */
#define CVX_DEFINE_DIRECT(T, S)                                                                      \
    typedef void (*cvx_direct_fwd_t_##S)(cvx_index, const T *, const cvx_index *, const T *, const T *,   \
                                    T *, cvx_index);                                                 \
    typedef void (*cvx_direct_gw_t_##S)(cvx_index, const T *, cvx_index, const T *, const cvx_index *,    \
                                   const T *, const T *, T *, cvx_index);                            \
    /* U (see the header comment) of the Cg planes at x */                                           \
    static void cvx_direct_unfold_##S(const cvx_direct_geom *g, const T *x, T *u)                         \
    {                                                                                                \
        cvx_index c, rp, j, r, ow, lo, hi, a, e;                                                     \
        for (c = 0; c < g->Cg; c++)                                                                  \
            for (rp = 0; rp < g->sh; rp++)                                                           \
                for (j = 0; j < g->kw; j++) {                                                        \
                    /* columns ow with 0 <= ow*sw + a < W */                                         \
                    a = j * g->dil_w - g->pw;                                                           \
                    lo = a < 0 ? (-a + g->sw - 1) / g->sw : 0;                                       \
                    hi = g->W - 1 - a >= 0 ? (g->W - 1 - a) / g->sw + 1 : 0;                         \
                    if (hi > g->OW) hi = g->OW;                                                      \
                    if (lo > hi) lo = hi;                                                            \
                    for (r = 0; r < g->Hq; r++) {                                                    \
                        T *d = u + (((c * g->sh + rp) * g->kw + j) * g->Hq + r) * g->OW;             \
                        cvx_index ih = r * g->sh + rp - g->ph;                                       \
                        const T *xr;                                                                 \
                        if (ih < 0 || ih >= g->H) {                                                  \
                            for (ow = 0; ow < g->OW; ow++) d[ow] = 0;                                \
                            continue;                                                                \
                        }                                                                            \
                        xr = x + (c * g->H + ih) * g->W + a;                                         \
                        for (ow = 0; ow < lo; ow++) d[ow] = 0;                                       \
                        if (g->sw == 1)                                                              \
                            for (ow = lo; ow < hi; ow++) d[ow] = xr[ow];                             \
                        else                                                                         \
                            for (ow = lo; ow < hi; ow++) d[ow] = xr[ow * g->sw];                     \
                        for (ow = hi; ow < g->OW; ow++) d[ow] = 0;                                   \
                    }                                                                                \
                }                                                                                    \
        e = g->Cg * g->sh * g->kw * g->Hq * g->OW;                                                   \
        for (a = 0; a < CVX_DIRECT_PBMAX; a++) u[e + a] = 0;                                              \
    }                                                                                                \
    /* pixel blocks: NV*VL wide while they fit, then VL wide (NV = 1 kernels), the last one    \
       through tmp */                                                                                \
    static void cvx_direct_fwd_run_##S(const cvx_direct_geom *g, const T *u, const T *w, const T *b,      \
                                        const cvx_index *off, T *y, T *work, int FBMAX, int VL,      \
                                        int NV, const cvx_direct_fwd_t_##S *kern,                         \
                                        const cvx_direct_fwd_t_##S *kern1)                                \
    {                                                                                                \
        cvx_index K = g->K, P = g->P, f0, p0, k, q, PB = (cvx_index)NV * VL;                         \
        cvx_index nfb = (g->Fg + FBMAX - 1) / FBMAX, FB = (g->Fg + nfb - 1) / nfb;                   \
        T *wp = work, *bb = wp + K * CVX_DIRECT_FBMAX, *tmp = bb + CVX_DIRECT_FBMAX;                           \
        int f, fb;                                                                                   \
        for (f0 = 0; f0 < g->Fg; f0 += FB) {                                                         \
            fb = (int)(g->Fg - f0 < FB ? g->Fg - f0 : FB);                                           \
            for (k = 0; k < K; k++)                                                                  \
                for (f = 0; f < fb; f++) wp[k * fb + f] = w[(f0 + f) * K + k];                       \
            for (f = 0; f < fb; f++) bb[f] = b ? b[f0 + f] : (T)0;                                   \
            for (p0 = 0; p0 + PB <= P; p0 += PB)                                                     \
                kern[fb - 1](K, wp, off, u + p0, bb, y + f0 * P + p0, P);                            \
            for (; p0 + VL <= P; p0 += VL)                                                           \
                kern1[fb - 1](K, wp, off, u + p0, bb, y + f0 * P + p0, P);                           \
            if (p0 < P) {                                                                            \
                kern1[fb - 1](K, wp, off, u + p0, bb, tmp, VL);                                      \
                for (f = 0; f < fb; f++)                                                             \
                    for (q = 0; q < P - p0; q++) y[(f0 + f) * P + p0 + q] = tmp[f * VL + q];         \
            }                                                                                        \
        }                                                                                            \
    }                                                                                                \
    /* v (Fg x Kp x VL lane partial sums, Kp = K rounded up to KB) += one image; tail: room for  \
       the zero-padded last pixels (Fg*VL + Kp*VL) */                                                \
    static void cvx_direct_gw_run_##S(const cvx_direct_geom *g, const T *u, const T *gy,                  \
                                       const cvx_index *off, T *v, T *tail, int FBMAX, int KB,       \
                                       int VL, const cvx_direct_gw_t_##S *kern)                           \
    {                                                                                                \
        cvx_index K = g->K, P = g->P, Kp = (K + KB - 1) / KB * KB, f0, k0, k, nvec = P / VL;         \
        cvx_index rem = P % VL, q0 = nvec * VL;                                                      \
        cvx_index nfb = (g->Fg + FBMAX - 1) / FBMAX, FB = (g->Fg + nfb - 1) / nfb;                   \
        cvx_index offs[CVX_DIRECT_KBMAX];                                                                 \
        T *gt = tail, *ut = tail + g->Fg * VL;                                                       \
        int fb, t, l;                                                                                \
        if (rem) {                                                                                   \
            for (k = 0; k < g->Fg; k++)                                                              \
                for (l = 0; l < VL; l++) gt[k * VL + l] = l < rem ? gy[k * P + q0 + l] : (T)0;       \
            for (k = 0; k < Kp; k++)                                                                 \
                for (l = 0; l < VL; l++)                                                             \
                    ut[k * VL + l] = l < rem && k < K ? u[off[k] + q0 + l] : (T)0;                   \
        }                                                                                            \
        for (f0 = 0; f0 < g->Fg; f0 += FB) {                                                         \
            fb = (int)(g->Fg - f0 < FB ? g->Fg - f0 : FB);                                           \
            for (k0 = 0; k0 < K; k0 += KB) {                                                         \
                for (t = 0; t < KB; t++) offs[t] = off[k0 + t < K ? k0 + t : K - 1];                 \
                kern[fb - 1](nvec, gy + f0 * P, P, u, offs, rem ? gt + f0 * VL : NULL,               \
                             ut + k0 * VL, v + (f0 * Kp + k0) * VL, Kp);                             \
            }                                                                                        \
        }                                                                                            \
    }                                                                                                \
    /* grad_w[f*K + k] = the lanes of v[f, k] added in order */                                          \
    static void cvx_direct_gw_sum_##S(const cvx_direct_geom *g, const T *v, T *grad_w, int KB, int VL)        \
    {                                                                                                \
        cvx_index K = g->K, Kp = (K + KB - 1) / KB * KB, f, k;                                       \
        int l;                                                                                       \
        for (f = 0; f < g->Fg; f++)                                                                  \
            for (k = 0; k < K; k++) {                                                                \
                const T *a = v + (f * Kp + k) * VL;                                                  \
                T s = a[0];                                                                          \
                for (l = 1; l < VL; l++) s += a[l];                                                  \
                grad_w[f * K + k] = s;                                                                   \
            }                                                                                        \
    }

CVX_DEFINE_DIRECT(float, float)
CVX_DEFINE_DIRECT(double, double)

#define CVX_DIRECT_TAB8(N, P) {P##1, P##2, P##3, P##4, P##5, P##6, P##7, P##8}
#define CVX_DIRECT_TAB4(N, P) {P##1, P##2, P##3, P##4}
#if CVX_X86
static const cvx_direct_fwd_t_float cvx_direct_fwd_a5_float[8] = CVX_DIRECT_TAB8(, cvx_direct_fwd_a5_float_);
static const cvx_direct_fwd_t_float cvx_direct_fwd_a5t_float[8] = CVX_DIRECT_TAB8(, cvx_direct_fwd_a5_float_t);
static const cvx_direct_fwd_t_double cvx_direct_fwd_a5_double[8] = CVX_DIRECT_TAB8(, cvx_direct_fwd_a5_double_);
static const cvx_direct_fwd_t_double cvx_direct_fwd_a5t_double[8] = CVX_DIRECT_TAB8(, cvx_direct_fwd_a5_double_t);
static const cvx_direct_fwd_t_float cvx_direct_fwd_a2_float[4] = CVX_DIRECT_TAB4(, cvx_direct_fwd_a2_float_);
static const cvx_direct_fwd_t_float cvx_direct_fwd_a2t_float[4] = CVX_DIRECT_TAB4(, cvx_direct_fwd_a2_float_t);
static const cvx_direct_fwd_t_double cvx_direct_fwd_a2_double[4] = CVX_DIRECT_TAB4(, cvx_direct_fwd_a2_double_);
static const cvx_direct_fwd_t_double cvx_direct_fwd_a2t_double[4] = CVX_DIRECT_TAB4(, cvx_direct_fwd_a2_double_t);
static const cvx_direct_gw_t_float cvx_direct_gw_a5_float[4] = CVX_DIRECT_TAB4(, cvx_direct_gw_a5_float_);
static const cvx_direct_gw_t_double cvx_direct_gw_a5_double[4] = CVX_DIRECT_TAB4(, cvx_direct_gw_a5_double_);
static const cvx_direct_gw_t_float cvx_direct_gw_a2_float[4] = CVX_DIRECT_TAB4(, cvx_direct_gw_a2_float_);
static const cvx_direct_gw_t_double cvx_direct_gw_a2_double[4] = CVX_DIRECT_TAB4(, cvx_direct_gw_a2_double_);
#endif
static const cvx_direct_fwd_t_float cvx_direct_fwd_g_float[4] = CVX_DIRECT_TAB4(, cvx_direct_fwd_g_float_);
static const cvx_direct_fwd_t_float cvx_direct_fwd_gt_float[4] = CVX_DIRECT_TAB4(, cvx_direct_fwd_g_float_t);
static const cvx_direct_fwd_t_double cvx_direct_fwd_g_double[4] = CVX_DIRECT_TAB4(, cvx_direct_fwd_g_double_);
static const cvx_direct_fwd_t_double cvx_direct_fwd_gt_double[4] = CVX_DIRECT_TAB4(, cvx_direct_fwd_g_double_t);
static const cvx_direct_gw_t_float cvx_direct_gw_g_float[4] = CVX_DIRECT_TAB4(, cvx_direct_gw_g_float_);
static const cvx_direct_gw_t_double cvx_direct_gw_g_double[4] = CVX_DIRECT_TAB4(, cvx_direct_gw_g_double_);

/* y (Fg x P) = conv of the Cg planes at x with w (Fg x K) plus b (Fg, or NULL) */
#define CVX_DEFINE_DIRECT_ENTRY(T, S, VLG)                                                           \
    CVX_MAYBE_UNUSED static void cvx_direct_fwd_##S(const cvx_direct_geom *g, const T *x, const T *w,     \
                                                     const T *b, const cvx_index *off, T *y,         \
                                                     T *scratch)                                     \
    {                                                                                                \
        T *u = scratch, *work = scratch + cvx_direct_u_elems(g);                                     \
        int VL5 = 64 / (int)sizeof(T), VL2 = 32 / (int)sizeof(T);                                    \
        cvx_direct_unfold_##S(g, x, u);                                                             \
        CVX_DIRECT_X86(                                                                              \
            int level = cvx_gemm_level();                                                            \
            if (level == 2) {                                                                        \
                cvx_direct_fwd_run_##S(g, u, w, b, off, y, work, 8, VL5, 3, cvx_direct_fwd_a5_##S,       \
                                        cvx_direct_fwd_a5t_##S);                                          \
                return;                                                                              \
            }                                                                                        \
            if (level == 1) {                                                                        \
                cvx_direct_fwd_run_##S(g, u, w, b, off, y, work, 4, VL2, 3, cvx_direct_fwd_a2_##S,       \
                                        cvx_direct_fwd_a2t_##S);                                          \
                return;                                                                              \
            })                                                                                       \
        (void)VL5;                                                                                   \
        (void)VL2;                                                                                   \
        cvx_direct_fwd_run_##S(g, u, w, b, off, y, work, 4, VLG, 3, cvx_direct_fwd_g_##S,                \
                                cvx_direct_fwd_gt_##S);                                                   \
    }                                                                                                \
    /* v += lane partial sums of one image's weight gradient (x: its Cg planes, gy: Fg x P) */      \
    CVX_MAYBE_UNUSED static void cvx_direct_gw_##S(const cvx_direct_geom *g, const T *x, const T *gy,     \
                                                    const cvx_index *off, T *v, T *scratch)          \
    {                                                                                                \
        T *u = scratch, *tail = v + g->Fg * (g->K + CVX_DIRECT_KBMAX) * 16;                               \
        int VL5 = 64 / (int)sizeof(T), VL2 = 32 / (int)sizeof(T);                                    \
        cvx_direct_unfold_##S(g, x, u);                                                             \
        CVX_DIRECT_X86(                                                                              \
            int level = cvx_gemm_level();                                                            \
            if (level == 2) {                                                                        \
                cvx_direct_gw_run_##S(g, u, gy, off, v, tail, 4, 5, VL5, cvx_direct_gw_a5_##S);                \
                return;                                                                              \
            }                                                                                        \
            if (level == 1) {                                                                        \
                cvx_direct_gw_run_##S(g, u, gy, off, v, tail, 4, 2, VL2, cvx_direct_gw_a2_##S);                \
                return;                                                                              \
            })                                                                                       \
        (void)VL5;                                                                                   \
        (void)VL2;                                                                                   \
        cvx_direct_gw_run_##S(g, u, gy, off, v, tail, 4, 2, VLG, cvx_direct_gw_g_##S);                         \
    }                                                                                                \
    /* grad_w (Fg x K) = the lane partial sums v reduced; (KB, VL) as used by cvx_direct_gw_##S */     \
    CVX_MAYBE_UNUSED static void cvx_direct_gw_finish_##S(const cvx_direct_geom *g, const T *v, T *grad_w)    \
    {                                                                                                \
        CVX_DIRECT_X86(                                                                              \
            int level = cvx_gemm_level();                                                            \
            if (level == 2) {                                                                        \
                cvx_direct_gw_sum_##S(g, v, grad_w, 5, 64 / (int)sizeof(T));                            \
                return;                                                                              \
            }                                                                                        \
            if (level == 1) {                                                                        \
                cvx_direct_gw_sum_##S(g, v, grad_w, 2, 32 / (int)sizeof(T));                            \
                return;                                                                              \
            })                                                                                       \
        cvx_direct_gw_sum_##S(g, v, grad_w, 2, VLG);                                                    \
    }

#if CVX_X86
#define CVX_DIRECT_X86(...) __VA_ARGS__
#else
#define CVX_DIRECT_X86(...)
#endif
/* elements of v for the grad_weight kernels: lane partial sums (the widest case), then room for
 * the tail. Bounded by Fg (the weight's filters per group, an array in memory; the chosen route
 * has Fg <= 64) and K = Cg*kh*kw, the weight's size per filter. */
static inline cvx_index cvx_direct_v_elems(const cvx_direct_geom *g)
{
    return (g->Fg * (g->K + CVX_DIRECT_KBMAX) + g->Fg + g->K + CVX_DIRECT_KBMAX) * 16;
}
CVX_DEFINE_DIRECT_ENTRY(float, float, CVX_DIRECT_VL_FLOAT)
CVX_DEFINE_DIRECT_ENTRY(double, double, CVX_DIRECT_VL_DOUBLE)

#endif /* CVX_DIRECT_H */
