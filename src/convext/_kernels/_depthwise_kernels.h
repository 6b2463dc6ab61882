/* The depthwise kernels of _depthwise.h, written once. Included once per (type, instruction set)
 * with CVX_DW_T (float or double), CVX_DW_FN(name) (the name with its type and instruction-set
 * suffix) and CVX_DW_ATTR (the instruction set's target attribute, empty for the baseline)
 * defined; it undefines nothing, _depthwise.h does. Plain loops over restrict pointers: the
 * compiler vectorises each for the instruction set it is compiled for. */

/* o[p] = (acc ? o[p] : bias) + w[0]*b[0][p] + ... + w[8]*b[8][p], added left to right */
CVX_DW_ATTR static inline void CVX_DW_FN(cvx_dw_k9)(cvx_index n, const CVX_DW_T *const *b,
                                                    cvx_index off, const CVX_DW_T *w,
                                                    CVX_DW_T bias, int acc,
                                                    CVX_DW_T *CVX_RESTRICT o)
{
    const CVX_DW_T *b0 = b[0] + off, *b1 = b[1] + off, *b2 = b[2] + off, *b3 = b[3] + off;
    const CVX_DW_T *b4 = b[4] + off, *b5 = b[5] + off, *b6 = b[6] + off, *b7 = b[7] + off;
    const CVX_DW_T *b8 = b[8] + off;
    const CVX_DW_T w0 = w[0], w1 = w[1], w2 = w[2], w3 = w[3], w4 = w[4], w5 = w[5], w6 = w[6];
    const CVX_DW_T w7 = w[7], w8 = w[8];
    cvx_index p;
    if (acc) {
        for (p = 0; p < n; p++)
            o[p] = o[p] + w0 * b0[p] + w1 * b1[p] + w2 * b2[p] + w3 * b3[p] + w4 * b4[p] +
                   w5 * b5[p] + w6 * b6[p] + w7 * b7[p] + w8 * b8[p];
    } else {
        for (p = 0; p < n; p++)
            o[p] = bias + w0 * b0[p] + w1 * b1[p] + w2 * b2[p] + w3 * b3[p] + w4 * b4[p] +
                   w5 * b5[p] + w6 * b6[p] + w7 * b7[p] + w8 * b8[p];
    }
}

/* the same with 3 taps */
CVX_DW_ATTR static inline void CVX_DW_FN(cvx_dw_k3)(cvx_index n, const CVX_DW_T *const *b,
                                                    cvx_index off, const CVX_DW_T *w,
                                                    CVX_DW_T bias, int acc,
                                                    CVX_DW_T *CVX_RESTRICT o)
{
    const CVX_DW_T *b0 = b[0] + off, *b1 = b[1] + off, *b2 = b[2] + off;
    const CVX_DW_T w0 = w[0], w1 = w[1], w2 = w[2];
    cvx_index p;
    if (acc) {
        for (p = 0; p < n; p++) o[p] = o[p] + w0 * b0[p] + w1 * b1[p] + w2 * b2[p];
    } else {
        for (p = 0; p < n; p++) o[p] = bias + w0 * b0[p] + w1 * b1[p] + w2 * b2[p];
    }
}

/* the same with 1 tap */
CVX_DW_ATTR static inline void CVX_DW_FN(cvx_dw_k1)(cvx_index n, const CVX_DW_T *const *b,
                                                    cvx_index off, const CVX_DW_T *w,
                                                    CVX_DW_T bias, int acc,
                                                    CVX_DW_T *CVX_RESTRICT o)
{
    const CVX_DW_T *b0 = b[0] + off;
    const CVX_DW_T w0 = w[0];
    cvx_index p;
    if (acc) {
        for (p = 0; p < n; p++) o[p] = o[p] + w0 * b0[p];
    } else {
        for (p = 0; p < n; p++) o[p] = bias + w0 * b0[p];
    }
}

/* For r < rows and p < n:
 *     out[r*ld_out + p] = (accumulate ? out[r*ld_out + p] : bias) + sum over t < ntaps, in
 *                         order, of w[t] * base[t][r*ld_in + p]
 * (ntaps = 0 writes bias, or leaves out as it is). Each element's sum is the same whatever
 * rows and n are, so a plane computed flat (rows = 1) equals one computed row by row. */
CVX_DW_ATTR static void CVX_DW_FN(cvx_dw_taps)(cvx_index rows, cvx_index n, cvx_index ld_in,
                                              cvx_index ld_out, int ntaps,
                                              const CVX_DW_T *const *base, const CVX_DW_T *w,
                                              CVX_DW_T bias, int accumulate,
                                              CVX_DW_T *CVX_RESTRICT out)
{
    cvx_index r, p;
    int t, acc;
    for (r = 0; r < rows; r++) {
        CVX_DW_T *o = out + r * ld_out;
        cvx_index off = r * ld_in;
        acc = accumulate;
        t = 0;
        for (; t + 9 <= ntaps; t += 9, acc = 1) CVX_DW_FN(cvx_dw_k9)(n, base + t, off, w + t, bias, acc, o);
        for (; t + 3 <= ntaps; t += 3, acc = 1) CVX_DW_FN(cvx_dw_k3)(n, base + t, off, w + t, bias, acc, o);
        for (; t < ntaps; t++, acc = 1) CVX_DW_FN(cvx_dw_k1)(n, base + t, off, w + t, bias, acc, o);
        if (!acc)
            for (p = 0; p < n; p++) o[p] = bias;
    }
}

/* One tap's lane sums: a[l] += g[i] * x[i] over a row of n, element i in lane i % 16. */
CVX_DW_ATTR static inline void CVX_DW_FN(cvx_dw_d1)(cvx_index n, const CVX_DW_T *CVX_RESTRICT g,
                                                    const CVX_DW_T *CVX_RESTRICT x,
                                                    CVX_DW_T *CVX_RESTRICT a)
{
    cvx_index i, l, m = n - n % 16;
    for (i = 0; i < m; i += 16)
        for (l = 0; l < 16; l++) a[l] += g[i + l] * x[i + l];
    for (i = m; i < n; i++) a[i - m] += g[i] * x[i];
}

/* Three taps' lane sums at once (g is read once for the three). */
CVX_DW_ATTR static inline void CVX_DW_FN(cvx_dw_d3)(cvx_index n, const CVX_DW_T *CVX_RESTRICT g,
                                                    const CVX_DW_T *CVX_RESTRICT x0,
                                                    const CVX_DW_T *CVX_RESTRICT x1,
                                                    const CVX_DW_T *CVX_RESTRICT x2,
                                                    CVX_DW_T *CVX_RESTRICT a)
{
    CVX_DW_T a0[16], a1[16], a2[16];
    cvx_index i, l, m = n - n % 16;
    for (l = 0; l < 16; l++) {
        a0[l] = a[l];
        a1[l] = a[16 + l];
        a2[l] = a[32 + l];
    }
    for (i = 0; i < m; i += 16)
        for (l = 0; l < 16; l++) {
            CVX_DW_T gv = g[i + l];
            a0[l] += gv * x0[i + l];
            a1[l] += gv * x1[i + l];
            a2[l] += gv * x2[i + l];
        }
    for (i = m; i < n; i++) {
        a0[i - m] += g[i] * x0[i];
        a1[i - m] += g[i] * x1[i];
        a2[i - m] += g[i] * x2[i];
    }
    for (l = 0; l < 16; l++) {
        a[l] = a0[l];
        a[16 + l] = a1[l];
        a[32 + l] = a2[l];
    }
}

/* Nine taps' lane sums at once (g is read once for the nine; 9 accumulators in registers). */
CVX_DW_ATTR static inline void CVX_DW_FN(cvx_dw_d9)(cvx_index n, const CVX_DW_T *CVX_RESTRICT g,
                                                    const CVX_DW_T *const *x, cvx_index off,
                                                    CVX_DW_T *CVX_RESTRICT a)
{
    CVX_DW_T a0[16], a1[16], a2[16], a3[16], a4[16], a5[16], a6[16], a7[16], a8[16];
    const CVX_DW_T *x0 = x[0] + off, *x1 = x[1] + off, *x2 = x[2] + off, *x3 = x[3] + off;
    const CVX_DW_T *x4 = x[4] + off, *x5 = x[5] + off, *x6 = x[6] + off, *x7 = x[7] + off;
    const CVX_DW_T *x8 = x[8] + off;
    cvx_index i, l, m = n - n % 16;
    for (l = 0; l < 16; l++) {
        a0[l] = a[l];
        a1[l] = a[16 + l];
        a2[l] = a[32 + l];
        a3[l] = a[48 + l];
        a4[l] = a[64 + l];
        a5[l] = a[80 + l];
        a6[l] = a[96 + l];
        a7[l] = a[112 + l];
        a8[l] = a[128 + l];
    }
    for (i = 0; i < m; i += 16)
        for (l = 0; l < 16; l++) {
            CVX_DW_T gv = g[i + l];
            a0[l] += gv * x0[i + l];
            a1[l] += gv * x1[i + l];
            a2[l] += gv * x2[i + l];
            a3[l] += gv * x3[i + l];
            a4[l] += gv * x4[i + l];
            a5[l] += gv * x5[i + l];
            a6[l] += gv * x6[i + l];
            a7[l] += gv * x7[i + l];
            a8[l] += gv * x8[i + l];
        }
    for (i = m; i < n; i++) {
        CVX_DW_T gv = g[i];
        a0[i - m] += gv * x0[i];
        a1[i - m] += gv * x1[i];
        a2[i - m] += gv * x2[i];
        a3[i - m] += gv * x3[i];
        a4[i - m] += gv * x4[i];
        a5[i - m] += gv * x5[i];
        a6[i - m] += gv * x6[i];
        a7[i - m] += gv * x7[i];
        a8[i - m] += gv * x8[i];
    }
    for (l = 0; l < 16; l++) {
        a[l] = a0[l];
        a[16 + l] = a1[l];
        a[32 + l] = a2[l];
        a[48 + l] = a3[l];
        a[64 + l] = a4[l];
        a[80 + l] = a5[l];
        a[96 + l] = a6[l];
        a[112 + l] = a7[l];
        a[128 + l] = a8[l];
    }
}

/* For t < ntaps: acc[16*t + l] += the products g[r*ld_g + p] * base[t][r*ld_in + p] over
 * r < rows and p < n with p % 16 == l, added row by row in order. A tap's result depends only on
 * rows, n and the data, never on how the taps are grouped. */
CVX_DW_ATTR static void CVX_DW_FN(cvx_dw_dots)(cvx_index rows, cvx_index n, cvx_index ld_in,
                                              cvx_index ld_g, int ntaps,
                                              const CVX_DW_T *const *base, const CVX_DW_T *g,
                                              CVX_DW_T *CVX_RESTRICT acc)
{
    cvx_index r;
    int t = 0;
    for (; t + 9 <= ntaps; t += 9)
        for (r = 0; r < rows; r++)
            CVX_DW_FN(cvx_dw_d9)(n, g + r * ld_g, base + t, r * ld_in, acc + 16 * t);
    for (; t + 3 <= ntaps; t += 3)
        for (r = 0; r < rows; r++)
            CVX_DW_FN(cvx_dw_d3)(n, g + r * ld_g, base[t] + r * ld_in, base[t + 1] + r * ld_in,
                                 base[t + 2] + r * ld_in, acc + 16 * t);
    for (; t < ntaps; t++)
        for (r = 0; r < rows; r++)
            CVX_DW_FN(cvx_dw_d1)(n, g + r * ld_g, base[t] + r * ld_in, acc + 16 * t);
}

/* dst[r*ldd + q] = src[r*lds + q] for r < rows, q < cols */
CVX_DW_ATTR static void CVX_DW_FN(cvx_dw_copy)(cvx_index rows, cvx_index cols,
                                              const CVX_DW_T *CVX_RESTRICT src, cvx_index lds,
                                              CVX_DW_T *CVX_RESTRICT dst, cvx_index ldd)
{
    cvx_index r, q;
    for (r = 0; r < rows; r++)
        for (q = 0; q < cols; q++) dst[r * ldd + q] = src[r * lds + q];
}

/* dst (total elements, zeroed) with src (rows x cols) placed at row r0, column c0 of pitch ld */
CVX_DW_ATTR static void CVX_DW_FN(cvx_dw_place)(const CVX_DW_T *CVX_RESTRICT src, cvx_index rows,
                                               cvx_index cols, cvx_index total, cvx_index ld,
                                               cvx_index r0, cvx_index c0,
                                               CVX_DW_T *CVX_RESTRICT dst)
{
    cvx_index q;
    for (q = 0; q < total; q++) dst[q] = 0;
    CVX_DW_FN(cvx_dw_copy)(rows, cols, src, cols, dst + r0 * ld + c0, ld);
}

/* Polyphase zero-padded copy of a plane src (H x W). The padded plane (Hp x Wp: the plane at
 * row ph, column pw, zeros around) is stored as na*nb sub-planes of Hq x Wq (Hq = ceil(Hp/sh),
 * Wq = ceil(Wp/sw)): sub-plane ia*nb + ib holds the padded pixels (u*sh + pa[ia],
 * v*sw + pb[ib]) at [u][v], for the row phases pa (na of them) and column phases pb (nb) that
 * the kernel's taps read. A strided tap then reads one contiguous run of a sub-plane per output
 * row. Pixels outside Hp x Wp (never read) and `slack` elements after the last sub-plane are
 * zero. */
CVX_DW_ATTR static void CVX_DW_FN(cvx_dw_poly)(const CVX_DW_T *CVX_RESTRICT src, cvx_index H,
                                              cvx_index W, cvx_index ph, cvx_index pw,
                                              cvx_index sh, cvx_index sw, cvx_index Hp,
                                              cvx_index Wp, cvx_index Hq, cvx_index Wq,
                                              cvx_index na, const cvx_index *pa, cvx_index nb,
                                              const cvx_index *pb, cvx_index slack,
                                              CVX_DW_T *CVX_RESTRICT dst)
{
    cvx_index r, a, b, ia, ib, u, v, v0, v1, rows, cols, q, total = na * nb * Hq * Wq + slack;
    for (q = 0; q < total; q++) dst[q] = 0;
    rows = Hp - ph < H ? (Hp - ph > 0 ? Hp - ph : 0) : H;
    cols = Wp - pw < W ? (Wp - pw > 0 ? Wp - pw : 0) : W;
    for (ia = 0; ia < na; ia++) {
        a = pa[ia];
        if (sw == 2 && nb == 2) {
            /* both column phases in one pass over each row (a de-interleave) */
            CVX_DW_T *e0 = dst + (ia * nb + (pb[0] == 0 ? 0 : 1)) * Hq * Wq;
            CVX_DW_T *o0 = dst + (ia * nb + (pb[0] == 0 ? 1 : 0)) * Hq * Wq;
            cvx_index ve0 = (pw + 1) / 2, ve1 = (cols + pw + 1) / 2; /* c = 2v - pw */
            cvx_index vo0 = pw / 2, vo1 = (cols + pw) / 2;           /* c = 2v + 1 - pw */
            cvx_index lo = ve0 > vo0 ? ve0 : vo0, hi = ve1 < vo1 ? ve1 : vo1;
            for (u = a >= ph ? 0 : (ph - a + sh - 1) / sh; (r = u * sh + a - ph) < rows; u++) {
                const CVX_DW_T *s = src + r * W;
                CVX_DW_T *e = e0 + u * Wq, *o = o0 + u * Wq;
                if (lo >= hi) {
                    for (v = ve0; v < ve1; v++) e[v] = s[2 * v - pw];
                    for (v = vo0; v < vo1; v++) o[v] = s[2 * v + 1 - pw];
                    continue;
                }
                for (v = ve0; v < lo; v++) e[v] = s[2 * v - pw];
                for (v = vo0; v < lo; v++) o[v] = s[2 * v + 1 - pw];
                for (v = lo; v < hi; v++) {
                    e[v] = s[2 * v - pw];
                    o[v] = s[2 * v + 1 - pw];
                }
                for (v = hi; v < ve1; v++) e[v] = s[2 * v - pw];
                for (v = hi; v < vo1; v++) o[v] = s[2 * v + 1 - pw];
            }
            continue;
        }
        for (ib = 0; ib < nb; ib++) {
            /* input columns c = v*sw + b - pw with 0 <= c < cols */
            b = pb[ib];
            v0 = pw > b ? (pw - b + sw - 1) / sw : 0;
            v1 = (cols + pw - b + sw - 1) / sw;
            /* input rows r = u*sh + a - ph with 0 <= r < rows */
            for (u = a >= ph ? 0 : (ph - a + sh - 1) / sh; (r = u * sh + a - ph) < rows; u++) {
                const CVX_DW_T *s = src + r * W;
                CVX_DW_T *d = dst + (ia * nb + ib) * Hq * Wq + u * Wq;
                if (sw == 1)
                    for (v = v0; v < v1; v++) d[v] = s[v - pw];
                else if (sw == 2) /* a constant stride, which the compiler vectorises */
                    for (v = v0; v < v1; v++) d[v] = s[2 * v + b - pw];
                else
                    for (v = v0; v < v1; v++) d[v] = s[v * sw + b - pw];
            }
        }
    }
}

/* The inverse for a gradient: dst (H x W) = the padded pixels (r + ph, c + pw) of the
 * sub-planes (same phases; row pitch ld, sub-plane pitch sp) inside Hp x Wp, zero elsewhere
 * (a pixel of a phase no tap reads gets no gradient). */
CVX_DW_ATTR static void CVX_DW_FN(cvx_dw_unpoly)(const CVX_DW_T *CVX_RESTRICT src, cvx_index H,
                                                cvx_index W, cvx_index ph, cvx_index pw,
                                                cvx_index sh, cvx_index sw, cvx_index Hp,
                                                cvx_index Wp, cvx_index na, const cvx_index *pa,
                                                cvx_index nb, const cvx_index *pb, cvx_index sp,
                                                cvx_index ld, CVX_DW_T *CVX_RESTRICT dst)
{
    cvx_index r, a, b, ia, ib, u, v, v0, v1, rows, cols, q;
    rows = Hp - ph < H ? (Hp - ph > 0 ? Hp - ph : 0) : H;
    cols = Wp - pw < W ? (Wp - pw > 0 ? Wp - pw : 0) : W;
    for (q = 0; q < H * W; q++) dst[q] = 0;
    for (ia = 0; ia < na; ia++) {
        a = pa[ia];
        if (sw == 2 && nb == 2) {
            /* both column phases in one pass over each row (an interleave) */
            const CVX_DW_T *e0 = src + (ia * nb + (pb[0] == 0 ? 0 : 1)) * sp;
            const CVX_DW_T *o0 = src + (ia * nb + (pb[0] == 0 ? 1 : 0)) * sp;
            cvx_index ve0 = (pw + 1) / 2, ve1 = (cols + pw + 1) / 2; /* c = 2v - pw */
            cvx_index vo0 = pw / 2, vo1 = (cols + pw) / 2;           /* c = 2v + 1 - pw */
            cvx_index lo = ve0 > vo0 ? ve0 : vo0, hi = ve1 < vo1 ? ve1 : vo1;
            for (u = a >= ph ? 0 : (ph - a + sh - 1) / sh; (r = u * sh + a - ph) < rows; u++) {
                CVX_DW_T *d = dst + r * W;
                const CVX_DW_T *e = e0 + u * ld, *o = o0 + u * ld;
                if (lo >= hi) {
                    for (v = ve0; v < ve1; v++) d[2 * v - pw] = e[v];
                    for (v = vo0; v < vo1; v++) d[2 * v + 1 - pw] = o[v];
                    continue;
                }
                for (v = ve0; v < lo; v++) d[2 * v - pw] = e[v];
                for (v = vo0; v < lo; v++) d[2 * v + 1 - pw] = o[v];
                for (v = lo; v < hi; v++) {
                    d[2 * v - pw] = e[v];
                    d[2 * v + 1 - pw] = o[v];
                }
                for (v = hi; v < ve1; v++) d[2 * v - pw] = e[v];
                for (v = hi; v < vo1; v++) d[2 * v + 1 - pw] = o[v];
            }
            continue;
        }
        for (ib = 0; ib < nb; ib++) {
            b = pb[ib];
            v0 = pw > b ? (pw - b + sw - 1) / sw : 0;
            v1 = (cols + pw - b + sw - 1) / sw;
            for (u = a >= ph ? 0 : (ph - a + sh - 1) / sh; (r = u * sh + a - ph) < rows; u++) {
                CVX_DW_T *d = dst + r * W;
                const CVX_DW_T *s = src + (ia * nb + ib) * sp + u * ld;
                if (sw == 1)
                    for (v = v0; v < v1; v++) d[v - pw] = s[v];
                else if (sw == 2)
                    for (v = v0; v < v1; v++) d[2 * v + b - pw] = s[v];
                else
                    for (v = v0; v < v1; v++) d[v * sw + b - pw] = s[v];
            }
        }
    }
}

/* 1 when every p[i] (i < n) is finite, else 0 */
CVX_DW_ATTR static int CVX_DW_FN(cvx_dw_finite)(cvx_index n, const CVX_DW_T *CVX_RESTRICT p)
{
    cvx_index i;
    int bad = 0;
    for (i = 0; i < n; i++) bad |= !(p[i] - p[i] == 0);
    return !bad;
}
