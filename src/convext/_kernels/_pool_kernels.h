/* The pooling kernels of _pool.h, written once. Included once per (type, instruction set) with
 * CVX_PL_T (float or double), CVX_PL_FN(name) (the name with its type and instruction-set
 * suffix) and CVX_PL_ATTR (the instruction set's target attribute) defined. Plain loops over
 * restrict pointers: the compiler vectorises the loops over output columns for the
 * instruction set it is compiled for. */

/* One tap (row i, column j of the window) of a max window over a run of n outputs: x[q*s]
 * (q < n) against the running maximum m[q]; a value replaces the maximum when it is greater or
 * NaN (PyTorch's rule), and then (bi[q], bj[q]) becomes (i, j). s is a compile-time constant
 * where the caller inlines this. */
CVX_PL_ATTR static inline void CVX_PL_FN(cvx_pl_max_tap)(cvx_index n, const CVX_PL_T *CVX_RESTRICT x,
                                                        cvx_index s, int i, int j,
                                                        CVX_PL_T *CVX_RESTRICT m,
                                                        int *CVX_RESTRICT bi,
                                                        int *CVX_RESTRICT bj)
{
    cvx_index q;
    for (q = 0; q < n; q++) {
        CVX_PL_T v = x[q * s];
        int c = (v > m[q]) | (v != v);
        m[q] = c ? v : m[q];
        bi[q] = c ? i : bi[q];
        bj[q] = c ? j : bj[q];
    }
}

/* One tap of an average window over a run of n outputs: a[q] += x[q*s] */
CVX_PL_ATTR static inline void CVX_PL_FN(cvx_pl_sum_tap)(cvx_index n, const CVX_PL_T *CVX_RESTRICT x,
                                                        cvx_index s, CVX_PL_T *CVX_RESTRICT a)
{
    cvx_index q;
    for (q = 0; q < n; q++) a[q] += x[q * s];
}

/* Output row oh of a max pool over the interior columns [ow0, ow1) of a plane xp (H x W):
 * every tap column is inside the plane there, so the window of output ow
 * is the rows ih = hs + i*dh (i0 <= i < i1, the rows inside the plane) times the columns
 * ow*sw - pw + j*dw (j < kw), scanned in row-major order exactly as the scalar rule. The
 * outputs go in runs of at most CVX_PL_RUN whose maxima and taps (row, column in the window)
 * stay in small arrays while the taps pass over them (the index in the plane is worked out at
 * the end); with stride 2 each row's span is split into its even and odd columns first, so
 * that every tap reads a contiguous run. */
#define CVX_PL_RUN 64
CVX_PL_ATTR static inline void CVX_PL_FN(cvx_pl_max_block)(
    const CVX_PL_T *xp, cvx_index W, cvx_index hs, cvx_index i0, cvx_index i1, cvx_index dh,
    cvx_index kw, cvx_index sw, cvx_index pw, cvx_index dw, cvx_index o, cvx_index n,
    CVX_PL_T *CVX_RESTRICT yp, int64_t *CVX_RESTRICT ip)
{
    CVX_PL_T m[CVX_PL_RUN];
    int bi[CVX_PL_RUN], bj[CVX_PL_RUN];
    cvx_index q, i, j, ws = o * sw - pw;
    for (q = 0; q < n; q++) {
        m[q] = -INFINITY;
        bi[q] = (int)i0; /* the first tap */
        bj[q] = 0;
    }
    for (i = i0; i < i1; i++) {
        const CVX_PL_T *r = xp + (hs + i * dh) * W + ws;
        if (sw == 2 && (kw - 1) * dw < CVX_PL_RUN) {
            /* the row's span split into its even and odd columns first, so that every tap
             * reads a contiguous run: column 2q + t is ev[q + t/2] for even t, od[q + t/2]
             * for odd t (exactly the columns up to 2*(n-1) + tmax are read) */
            CVX_PL_T ev[2 * CVX_PL_RUN], od[2 * CVX_PL_RUN];
            cvx_index t, tmax = (kw - 1) * dw;
            cvx_index ne = n + tmax / 2, no = tmax >= 1 ? n + (tmax - 1) / 2 : n - 1;
            for (q = 0; q < ne; q++) ev[q] = r[2 * q];
            for (q = 0; q < no; q++) od[q] = r[2 * q + 1];
            for (j = 0; j < kw; j++) {
                t = j * dw;
                CVX_PL_FN(cvx_pl_max_tap)(n, (t % 2 ? od : ev) + t / 2, 1, (int)i, (int)j, m,
                                          bi, bj);
            }
            continue;
        }
        for (j = 0; j < kw; j++) {
            if (sw == 1)
                CVX_PL_FN(cvx_pl_max_tap)(n, r + j * dw, 1, (int)i, (int)j, m, bi, bj);
            else
                CVX_PL_FN(cvx_pl_max_tap)(n, r + j * dw, sw, (int)i, (int)j, m, bi, bj);
        }
    }
    /* tap (i, j) -> index in the plane: row hs + i*dh, column ws + q*sw + j*dw */
    for (q = 0; q < n; q++) {
        yp[o + q] = m[q];
        ip[o + q] = (hs + (cvx_index)bi[q] * dh) * W + ws + q * sw + (cvx_index)bj[q] * dw;
    }
}

CVX_PL_ATTR static void CVX_PL_FN(cvx_pl_max_row)(const CVX_PL_T *xp, cvx_index W, cvx_index hs,
                                                 cvx_index i0, cvx_index i1, cvx_index dh,
                                                 cvx_index kw, cvx_index sw, cvx_index pw,
                                                 cvx_index dw, cvx_index ow0, cvx_index ow1,
                                                 CVX_PL_T *yp, int64_t *ip)
{
    cvx_index o, n;
    for (o = ow0; o < ow1; o += n) {
        n = ow1 - o < CVX_PL_RUN ? ow1 - o : CVX_PL_RUN;
        CVX_PL_FN(cvx_pl_max_block)(xp, W, hs, i0, i1, dh, kw, sw, pw, dw, o, n, yp, ip);
    }
}

/* Output row oh of an average pool over the interior columns [ow0, ow1): the sum of the rows
 * hs + i (i0 <= i < i1) times the columns ow*sw - pw + j (j < kw), added from 0 in row-major
 * order (as the scalar loop), divided by div; blocks as the max pool's. */
CVX_PL_ATTR static inline void CVX_PL_FN(cvx_pl_avg_block)(
    const CVX_PL_T *xp, cvx_index W, cvx_index hs, cvx_index i0, cvx_index i1, cvx_index kw,
    cvx_index sw, cvx_index pw, cvx_index o, cvx_index n, CVX_PL_T div,
    CVX_PL_T *CVX_RESTRICT yp)
{
    CVX_PL_T a[CVX_PL_RUN];
    cvx_index q, i, j, ws = o * sw - pw;
    for (q = 0; q < n; q++) a[q] = 0;
    for (i = i0; i < i1; i++) {
        const CVX_PL_T *r = xp + (hs + i) * W + ws;
        if (sw == 2 && kw - 1 < CVX_PL_RUN) {
            /* even and odd columns first, as the max pool */
            CVX_PL_T ev[2 * CVX_PL_RUN], od[2 * CVX_PL_RUN];
            cvx_index tmax = kw - 1;
            cvx_index ne = n + tmax / 2, no = tmax >= 1 ? n + (tmax - 1) / 2 : n - 1;
            for (q = 0; q < ne; q++) ev[q] = r[2 * q];
            for (q = 0; q < no; q++) od[q] = r[2 * q + 1];
            for (j = 0; j < kw; j++)
                CVX_PL_FN(cvx_pl_sum_tap)(n, (j % 2 ? od : ev) + j / 2, 1, a);
            continue;
        }
        for (j = 0; j < kw; j++) {
            if (sw == 1)
                CVX_PL_FN(cvx_pl_sum_tap)(n, r + j, 1, a);
            else
                CVX_PL_FN(cvx_pl_sum_tap)(n, r + j, sw, a);
        }
    }
    for (q = 0; q < n; q++) yp[o + q] = a[q] / div;
}

CVX_PL_ATTR static void CVX_PL_FN(cvx_pl_avg_row)(const CVX_PL_T *xp, cvx_index W, cvx_index hs,
                                                 cvx_index i0, cvx_index i1, cvx_index kw,
                                                 cvx_index sw, cvx_index pw, cvx_index ow0,
                                                 cvx_index ow1, CVX_PL_T div, CVX_PL_T *yp)
{
    cvx_index o, n;
    for (o = ow0; o < ow1; o += n) {
        n = ow1 - o < CVX_PL_RUN ? ow1 - o : CVX_PL_RUN;
        CVX_PL_FN(cvx_pl_avg_block)(xp, W, hs, i0, i1, kw, sw, pw, o, n, div, yp);
    }
}

/* Whole 3x3 windows (stride s, no dilation, all three rows inside the plane) over n outputs,
 * the window's taps unrolled and the loop over the outputs innermost: the first tap sets the
 * maximum (equal to starting from -inf), each later one replaces it when greater or NaN; the
 * index kept is the tap's offset (row*W + column) from r0, added to base + q*s at the end. */
CVX_PL_ATTR static void CVX_PL_FN(cvx_pl_max3)(cvx_index n, const CVX_PL_T *CVX_RESTRICT r0,
                                              cvx_index W, cvx_index s, int64_t base,
                                              CVX_PL_T *CVX_RESTRICT yp,
                                              int64_t *CVX_RESTRICT ip)
{
    const CVX_PL_T *r1 = r0 + W, *r2 = r1 + W;
    const int64_t w1 = W, w2 = 2 * W;
    cvx_index q;
#define CVX_PL_STEP(V, OFF)                                                                       \
    do {                                                                                          \
        CVX_PL_T v_ = (V);                                                                        \
        int c_ = (v_ > m) | (v_ != v_);                                                           \
        m = c_ ? v_ : m;                                                                          \
        b = c_ ? (OFF) : b;                                                                       \
    } while (0)
    if (s == 2) {
        for (q = 0; q < n; q++) {
            CVX_PL_T m = r0[2 * q];
            int64_t b = 0;
            CVX_PL_STEP(r0[2 * q + 1], 1);
            CVX_PL_STEP(r0[2 * q + 2], 2);
            CVX_PL_STEP(r1[2 * q], w1);
            CVX_PL_STEP(r1[2 * q + 1], w1 + 1);
            CVX_PL_STEP(r1[2 * q + 2], w1 + 2);
            CVX_PL_STEP(r2[2 * q], w2);
            CVX_PL_STEP(r2[2 * q + 1], w2 + 1);
            CVX_PL_STEP(r2[2 * q + 2], w2 + 2);
            yp[q] = m;
            ip[q] = base + 2 * q + b;
        }
    } else {
        for (q = 0; q < n; q++) {
            CVX_PL_T m = r0[q * s];
            int64_t b = 0;
            CVX_PL_STEP(r0[q * s + 1], 1);
            CVX_PL_STEP(r0[q * s + 2], 2);
            CVX_PL_STEP(r1[q * s], w1);
            CVX_PL_STEP(r1[q * s + 1], w1 + 1);
            CVX_PL_STEP(r1[q * s + 2], w1 + 2);
            CVX_PL_STEP(r2[q * s], w2);
            CVX_PL_STEP(r2[q * s + 1], w2 + 1);
            CVX_PL_STEP(r2[q * s + 2], w2 + 2);
            yp[q] = m;
            ip[q] = base + q * s + b;
        }
    }
}

/* The same for whole 2x2 windows */
CVX_PL_ATTR static void CVX_PL_FN(cvx_pl_max2)(cvx_index n, const CVX_PL_T *CVX_RESTRICT r0,
                                              cvx_index W, cvx_index s, int64_t base,
                                              CVX_PL_T *CVX_RESTRICT yp,
                                              int64_t *CVX_RESTRICT ip)
{
    const CVX_PL_T *r1 = r0 + W;
    const int64_t w1 = W;
    cvx_index q;
    if (s == 2) {
        for (q = 0; q < n; q++) {
            CVX_PL_T m = r0[2 * q];
            int64_t b = 0;
            CVX_PL_STEP(r0[2 * q + 1], 1);
            CVX_PL_STEP(r1[2 * q], w1);
            CVX_PL_STEP(r1[2 * q + 1], w1 + 1);
            yp[q] = m;
            ip[q] = base + 2 * q + b;
        }
    } else {
        for (q = 0; q < n; q++) {
            CVX_PL_T m = r0[q * s];
            int64_t b = 0;
            CVX_PL_STEP(r0[q * s + 1], 1);
            CVX_PL_STEP(r1[q * s], w1);
            CVX_PL_STEP(r1[q * s + 1], w1 + 1);
            yp[q] = m;
            ip[q] = base + q * s + b;
        }
    }
#undef CVX_PL_STEP
}
