"""2-D pooling kernels: max pooling with an integer argmax mask, average pooling; both ways.

Contract (the functional layer checks it; these kernels trust it): the input is viewed as
P = N*C independent planes, x is (P, H, W), y / grad_out / indices are (P, OH, OW); every array
is C-contiguous and non-empty, floats are one dtype (float32 or float64), indices are int64.
The geometry arrives as kernel (kh, kw), stride (sh, sw), padding (ph, pw) (top/left; for max
pooling the bottom/right extent is implied by OH and OW, which is how ceil_mode windows and
asymmetric padding hang over the edge) and, for max pooling, dilation (dil_h, dil_w). Average
pooling also takes the bottom/right padding (pb, pr): its divisor with count_include_pad counts
the window positions inside the padded input, which OH and OW do not determine.

Parallelism: forward, one work item is a block of output rows of one plane (a plane is split
into row blocks only when there are fewer than 16 planes, as at batch 1 with few channels);
backward, one plane of grad_x. Every output element is computed by one thread in a fixed order
that does not depend on the blocking, so every result is bitwise the same for every thread
count, and the gradient scatter needs no atomics.

Vector rows (isa/pool.inc, through the instruction-set table of _isa.pxd): in each output row,
the columns whose whole window lies inside the plane horizontally go through a C row kernel that
is vectorised over the output columns, applying the taps in the same row-major order and with
the same comparison (max) or the same additions from 0 (average) as the scalar loops here, which
take the border columns; so the two agree bitwise.
Whole 2x2 and 3x3 max windows (no dilation, every row inside the plane) go through kernels with
the four (nine) taps unrolled and the output columns innermost, the same comparisons in the same
order; at stride 2, and at stride 1 with the argmax, the 3x3 windows are computed separably
(each window row's maximum, then the maximum of the three rows, both by the same rule), which
keeps exactly the same value and index (isa/pool.inc says why); consecutive output rows of whole
3x3 windows at those strides go as one run (cvx_pl_max3_rows), the row pass of a row that
several output rows' windows share done once for all of them.
The 2x2 stride-2 average without padding keeps its own loop. Other average windows without
dilation (windows at most SEP_MAX_KW columns wide, any stride) go a work item's rows at a time
through cvx_pl_vavg_sep: each window row copied with zeros for its columns outside the plane,
every output of the row adding its taps in order in one vector loop, borders included (a zero
added changes no sum from 0, which is never -0.0; at stride 1 with kw = 2*pw + 1, runs of whole
rows read in place), then each output divided by its divisor (cvx_pl_avg_div, isa/cvx_base.h,
the loops here call the same function): the same additions in the same order as the scalar
loop, so the same values (where two NaNs meet in a sum, which one's sign and payload it keeps
is the compiled addition's choice, as in the scalar loop).
Without an indices array (max_pool2d without return_indices) the same kernels write the values
only: the same comparisons in the same order, without the argmax (a third of the bytes fewer);
but values-only 3x3 stride-2 windows (resnet's stem) take each input column's maximum over the
window's rows first, then the maximum of three column maxima, which keeps every bit on rows
without NaN and -0.0 (the rows are checked; others take the rule in row-major order: isa/pool.inc's
cvx_pl_vmax3s2 says why). Where the kernel table has the register rows (CVX_V_LANE_ROWS:
AVX-512) and the window one column of padding on the left, those rows are made in registers instead
(cvx_pl_vmax3s2_lanes): each window row's maximum of its three views (the even, odd and shifted
odd elements of two input vectors) first, then the maximum of the three rows', ties keeping the
earlier (MAXPS: the rule's result without NaN, -0.0 included), the bottom row's maxima kept for
the next output row, whose top row it is; the rule's comparisons on an output row whose window
rows hold a NaN.
Where the kernel table has the 3x3 pool in registers (cvx_pl_max3_lanes: AVX-512), 3x3 windows
at stride 1 or 2 with padding <= 1 go a work item's rows at a time through it instead, borders and
ceil_mode's windows included: each window row's maximum and tap by the rule from three views of
the row, then the three rows' by the rule, the indices in int32 lanes (the plane below 2**31
elements), each input row's pass made once for the output rows that share it. With the argmax
it took, against the separable C rows and the scalar borders (float32, one thread, Zen 5):
1x64x112x112 stride 2 0.13-0.15 ms against 0.31, 16x64x56x56 stride 1 1.8-1.9 against 6.2,
8x64x55x55 stride 2 without padding 0.34-0.37 against 0.83; values only at stride 1 1.0 ms
against 1.7-1.8 (cvx_pl_vmax_same) and at stride 2 without padding 0.25-0.35 against 0.40-0.58
(cvx_pl_vmax3s2's columns first). Values only at stride 2 with one column of padding on the left
stay with cvx_pl_vmax3s2's register rows (MAXPS without the NaN test: 0.071 ms against 0.093 on
1x64x112x112).
Values-only 2x2 stride-2 windows without top and left padding (LeNet's and U-Net's pools) go
a work item's rows at a time through one call (cvx_pl_vmax2s2: each row's whole windows by
cvx_pl_max2, then the windows over the right and bottom edges), not a call per output row: a
32x32 plane's rows are 16 outputs each, which cost about what each row's bounds and kernel-table
call in _max_rows did.
Every other values-only max window without dilation (at most SEP_MAX_KW columns wide, any
stride: stride 1, Inception's and SPP's same-size pools, 3x3 at stride 3, ...) goes a work
item's rows at a time through cvx_pl_vmax_sep: each column's maximum over the window's rows,
then each output's maximum over its columns, the columns outside the plane -inf, so that the
border windows take the same vector loop; an output row whose window rows hold NaN or -0.0
(each input row checked when it enters a window) is computed by the rule in row-major order
instead. At stride 1 with kw = 2*pw + 1 (an output row as wide as the plane) the rows whose
windows lie inside the plane go in runs of whole rows, one loop per pass over the run
(cvx_pl_vmax_same). Before it, 3x3 stride 1 went through a loop that read its taps at a stride
known only at run time (a gather, on 4 lanes) and the border columns one by one: 0.08 of the
copy bandwidth on 64x32x32x32.

Max pooling follows PyTorch's CPU rule exactly: padding is -inf (only real elements are
visited), the window is scanned in row-major order and a value replaces the current maximum when
it is greater or when it is NaN. Hence ties go to the FIRST maximum, and a window holding NaN
outputs NaN with the index of its LAST NaN. The index stored is h*W + w inside the plane. A
window that holds no real element at all (possible only with dilation) outputs -inf and index -1;
the backward pass skips index -1 and counts (and skips) any other index outside [0, H*W) so the
caller can raise.

Average pooling follows PyTorch's divisor rule: the window is clipped to the input padded by
ph on top, pb at the bottom, pw on the left and pr on the right (this clipped size is the
divisor with count_include_pad; PyTorch pads symmetrically, pb = ph and pr = pw), then to the
input itself (its size is the divisor without count_include_pad); a non-zero divisor_override
(negative too, as PyTorch) replaces both. A window with no real element outputs 0.

No scratch memory: the backward kernels zero their own grad planes before scattering, except
the 2x2 stride-2 average without padding (each element is written once) and a max-pool plane
of the 2x2 stride-2 shape whose indices all lie in their own (disjoint) windows, written as a
gather, each grad element once (isa/pool.inc's cvx_pl_back2): the same values, since each
element then gets at most one term.

Global average (global_avg_forward: adaptive average pooling to 1x1, and global_avg_pool2d):
each plane's sum in double, element by element in memory order, divided by the plane's size,
then rounded to the dtype (adaptive_avg_forward's arithmetic for a window holding the whole
plane). isa/pool.inc's cvx_pl_gap sums the planes CVX_TR at a time side by side in vector
lanes (each TR x TR block of them transposed in registers: 8 float planes on x86); each
plane's additions keep their order.

Index arithmetic: kernel size, stride, padding, dilation, the padded input, the dilated kernel,
OH, OW and (for average pooling, whose divisor is a window area) kh*kw are each at most 2**40,
checked in Python integers by convext._validation.window_geometry and
functional.pooling._avg_args before any call; so window bounds such as
oh*sh - ph + (kh-1)*dil_h + 1 stay below 2**42 and never overflow idx_t.
|divisor_override| is at most 2**40 as well (pooling._avg_args).
"""
from cython.parallel cimport prange
from libc.stdint cimport int64_t
from libc.string cimport memset
from libc.math cimport INFINITY

from ._types cimport floating, idx_t


cdef inline idx_t _first_tap(idx_t start, idx_t d) noexcept nogil:
    """The first tap start + k*d (k >= 0) that is >= 0."""
    if start < 0:
        start += ((-start + d - 1) // d) * d
    return start


cdef inline idx_t _imin(idx_t a, idx_t b) noexcept nogil:
    return a if a < b else b


cdef inline idx_t _imax(idx_t a, idx_t b) noexcept nogil:
    return a if a > b else b


# ---------------------------------------------------------------------------------------------
# max pooling

# The row kernels are isa/pool.inc's, through the active instruction-set table (_isa.pxd).
from ._isa cimport (
    cvx_pl_avg_row_double,
    cvx_pl_back2_double,
    cvx_pl_back2_float,
    cvx_pl_gap_double,
    cvx_pl_gap_float,
    cvx_pl_max3_rows_double,
    cvx_pl_max3_rows_float,
    cvx_pl_max3_lanes_double,
    cvx_pl_max3_lanes_float,
    cvx_pl_max3_lanes_here,
    cvx_pl_avg_row_float,
    cvx_pl_max2_double,
    cvx_pl_max2_float,
    cvx_pl_max3_double,
    cvx_pl_max3_float,
    cvx_pl_max_row_double,
    cvx_pl_max_row_float,
    cvx_pl_vmax2s2_double,
    cvx_pl_vmax2s2_float,
    cvx_pl_vmax3s2_double,
    cvx_pl_vmax3s2_float,
    cvx_pl_vmax_sep_double,
    cvx_pl_vmax_sep_float,
    cvx_pl_vavg_sep_double,
    cvx_pl_vavg_sep_float,
)


# Planes of at most this many elements and windows of at most this many rows and columns take
# the vector row kernels (which keep window rows and columns in int).
DEF VEC_MAX_PLANE = 2147483647
# The widest window (columns) cvx_pl_vmax_sep and cvx_pl_vavg_sep take: their row buffers hold
# 512 columns (isa/pool.inc's CVX_PL_ROWV), at least one output's window.
DEF SEP_MAX_KW = 512
# Output rows per run of whole 3x3 windows at stride 1 or 2 (cvx_pl_max3_rows), their border
# columns done after each run, while its rows are in the cache.
DEF RUN3 = 8
# Work items: planes, each split into this many row blocks at most when there are few planes.
DEF ROW_ITEMS = 16


cdef inline idx_t _ceil_div(idx_t a, idx_t b) noexcept nogil:
    """ceil(a / b) for b > 0 and any a."""
    if a <= 0:
        return -((-a) // b)
    return (a + b - 1) // b


cdef inline void _interior(idx_t W, idx_t OW, idx_t kw, idx_t sw, idx_t pw, idx_t dw,
                           idx_t *lo, idx_t *hi) noexcept nogil:
    """The output columns [lo, hi) whose every tap column ow*sw - pw + j*dw (j < kw) is inside
    [0, W)."""
    cdef idx_t a = _ceil_div(pw, sw)
    cdef idx_t b = (W - 1 - (kw - 1) * dw + pw) // sw + 1 if W - 1 - (kw - 1) * dw + pw >= 0 else 0
    a = _imin(_imax(a, 0), OW)
    b = _imin(_imax(b, a), OW)
    lo[0] = a
    hi[0] = b


cdef inline void _max_one(const floating *xp, floating *yp, int64_t *ip, idx_t H, idx_t W,
                          idx_t OW, idx_t oh, idx_t ow, idx_t kh, idx_t kw, idx_t sh, idx_t sw,
                          idx_t ph, idx_t pw, idx_t dil_h, idx_t dil_w) noexcept nogil:
    """One output of the max pool, by the scalar rule (row-major scan, greater or NaN), each
    step a selection rather than a branch (which on random data mispredicted about every other
    tap: the border columns of a 3x3 pool took a quarter of its time)."""
    cdef idx_t hs, he, ws, we, ih, iw, best
    cdef floating v, m
    cdef bint c
    hs = oh * sh - ph
    he = _imin(hs + (kh - 1) * dil_h + 1, H)
    hs = _first_tap(hs, dil_h)
    ws = ow * sw - pw
    we = _imin(ws + (kw - 1) * dil_w + 1, W)
    ws = _first_tap(ws, dil_w)
    m = -INFINITY
    best = -1
    if hs < he and ws < we:
        best = hs * W + ws
        ih = hs
        while ih < he:
            iw = ws
            while iw < we:
                v = xp[ih * W + iw]
                c = (v > m) | (v != v)
                m = v if c else m
                best = ih * W + iw if c else best
                iw = iw + dil_w
            ih = ih + dil_h
    yp[oh * OW + ow] = m
    if ip != NULL:
        ip[oh * OW + ow] = best


cdef void _max_rows(const floating *xp, floating *yp, int64_t *ip, idx_t H, idx_t W, idx_t OH,
                    idx_t OW, idx_t kh, idx_t kw, idx_t sh, idx_t sw, idx_t ph, idx_t pw,
                    idx_t dil_h, idx_t dil_w, idx_t oh0, idx_t oh1) noexcept nogil:
    """Output rows [oh0, oh1) of one plane: the interior columns (every tap column inside the
    plane) by the vector row kernel of isa/pool.inc, the others one by one; the same rule.
    ip == NULL: the values only (the row kernels then skip the argmax)."""
    cdef idx_t oh, ow, hs, i0, i1, lo, hi, oe, r
    cdef int64_t *iq
    if (kh == 3 and kw == 3 and sh == sw and (sh == 1 or sh == 2) and dil_h == 1
            and dil_w == 1 and ph <= 1 and pw <= 1 and H * W <= VEC_MAX_PLANE
            and (ip != NULL or sh == 1 or pw == 0) and cvx_pl_max3_lanes_here()):
        # 3x3 at stride 1 or 2 in registers, whole rows, borders included: with the argmax, or
        # values only but for stride 2 with a column of padding on the left (resnet's stem:
        # cvx_pl_vmax3s2's register rows below, with MAXPS)
        if floating is float:
            cvx_pl_max3_lanes_float(xp, H, W, sh, ph, pw, OW, oh0, oh1, yp, ip)
        else:
            cvx_pl_max3_lanes_double(xp, H, W, sh, ph, pw, OW, oh0, oh1, yp, ip)
        return
    if (ip == NULL and kh == 3 and kw == 3 and sh == 2 and sw == 2 and dil_h == 1
            and dil_w == 1 and ph <= 1 and pw <= 1 and H * W <= VEC_MAX_PLANE):
        # values only, 3x3 stride 2 (resnet's stem): whole rows, borders included, in one call
        if floating is float:
            cvx_pl_vmax3s2_float(xp, H, W, ph, pw, OW, oh0, oh1, yp)
        else:
            cvx_pl_vmax3s2_double(xp, H, W, ph, pw, OW, oh0, oh1, yp)
        return
    if (ip == NULL and kh == 2 and kw == 2 and sh == 2 and sw == 2 and dil_h == 1
            and dil_w == 1 and ph == 0 and pw == 0):
        # values only, 2x2 stride 2 without top and left padding: the rows in one call
        if floating is float:
            cvx_pl_vmax2s2_float(xp, H, W, OW, oh0, oh1, yp)
        else:
            cvx_pl_vmax2s2_double(xp, H, W, OW, oh0, oh1, yp)
        return
    if ip == NULL and dil_h == 1 and dil_w == 1 and kw <= SEP_MAX_KW:
        # values only, any other window without dilation: the rows in one call, separably
        # where the rows hold no NaN and no -0.0 (isa/pool.inc's cvx_pl_vmax_sep)
        if floating is float:
            cvx_pl_vmax_sep_float(xp, H, W, kh, kw, sh, sw, ph, pw, OW, oh0, oh1, yp)
        else:
            cvx_pl_vmax_sep_double(xp, H, W, kh, kw, sh, sw, ph, pw, OW, oh0, oh1, yp)
        return
    _interior(W, OW, kw, sw, pw, dil_w, &lo, &hi)
    if H * W > VEC_MAX_PLANE or kh > VEC_MAX_PLANE or kw > VEC_MAX_PLANE:
        lo = hi = 0  # the row kernel keeps window rows and columns in int
    # 3x3 at stride 2 (or 1: values only went to cvx_pl_vmax_sep above): the rows whose windows
    # are whole go as one run (cvx_pl_max3_rows shares the rows between output rows' windows);
    # the same values as row by row
    cdef bint run3 = (kh == 3 and kw == 3 and sh == sw and (sh == 1 or sh == 2) and dil_h == 1
                      and dil_w == 1 and lo < hi)
    oh = oh0
    while oh < oh1:
        hs = oh * sh - ph
        if run3 and hs >= 0 and hs + 2 < H:
            oe = oh + 1
            while oe < oh1 and oe * sh - ph + 2 < H and oe - oh < RUN3:
                oe = oe + 1
            iq = ip + oh * OW + lo if ip != NULL else NULL
            if floating is float:
                cvx_pl_max3_rows_float(oe - oh, hi - lo, sh, xp + hs * W + lo * sw - pw, W,
                                       hs * W + lo * sw - pw, OW, yp + oh * OW + lo, iq)
            else:
                cvx_pl_max3_rows_double(oe - oh, hi - lo, sh, xp + hs * W + lo * sw - pw, W,
                                        hs * W + lo * sw - pw, OW, yp + oh * OW + lo, iq)
            # the border columns after the run, whose rows are then in the cache
            for r in range(oh, oe):
                for ow in range(lo):
                    _max_one(xp, yp, ip, H, W, OW, r, ow, kh, kw, sh, sw, ph, pw, dil_h, dil_w)
                for ow in range(hi, OW):
                    _max_one(xp, yp, ip, H, W, OW, r, ow, kh, kw, sh, sw, ph, pw, dil_h, dil_w)
            oh = oe
            continue
        # the taps i0 <= i < i1 whose rows hs + i*dil_h are inside the plane
        i0 = _ceil_div(-hs, dil_h) if hs < 0 else 0
        i1 = _imin(kh, _ceil_div(H - hs, dil_h))
        if i0 >= i1:
            for ow in range(OW):
                _max_one(xp, yp, ip, H, W, OW, oh, ow, kh, kw, sh, sw, ph, pw, dil_h, dil_w)
            oh = oh + 1
            continue
        for ow in range(lo):
            _max_one(xp, yp, ip, H, W, OW, oh, ow, kh, kw, sh, sw, ph, pw, dil_h, dil_w)
        iq = ip + oh * OW + lo if ip != NULL else NULL
        if lo < hi and i1 - i0 == kh and (kh == 2 or kh == 3) and kw == kh \
                and dil_h == 1 and dil_w == 1:
            # whole 2x2 or 3x3 windows: the taps unrolled (isa/pool.inc)
            if kh == 3:
                if floating is float:
                    cvx_pl_max3_float(hi - lo, xp + hs * W + lo * sw - pw, W, sw,
                                      hs * W + lo * sw - pw, yp + oh * OW + lo, iq)
                else:
                    cvx_pl_max3_double(hi - lo, xp + hs * W + lo * sw - pw, W, sw,
                                       hs * W + lo * sw - pw, yp + oh * OW + lo, iq)
            else:
                if floating is float:
                    cvx_pl_max2_float(hi - lo, xp + hs * W + lo * sw - pw, W, sw,
                                      hs * W + lo * sw - pw, yp + oh * OW + lo, iq)
                else:
                    cvx_pl_max2_double(hi - lo, xp + hs * W + lo * sw - pw, W, sw,
                                       hs * W + lo * sw - pw, yp + oh * OW + lo, iq)
        elif lo < hi:
            # the row kernel offsets yp and ip by lo itself
            iq = ip + oh * OW if ip != NULL else NULL
            if floating is float:
                cvx_pl_max_row_float(xp, W, hs, i0, i1, dil_h, kw, sw, pw, dil_w, lo, hi,
                                     yp + oh * OW, iq)
            else:
                cvx_pl_max_row_double(xp, W, hs, i0, i1, dil_h, kw, sw, pw, dil_w, lo, hi,
                                      yp + oh * OW, iq)
        for ow in range(hi, OW):
            _max_one(xp, yp, ip, H, W, OW, oh, ow, kh, kw, sh, sw, ph, pw, dil_h, dil_w)
        oh = oh + 1


cdef inline idx_t _row_blocks(idx_t P, idx_t OH) noexcept nogil:
    """Row blocks per plane: enough work items for the threads when there are few planes (the
    outputs do not depend on it)."""
    return _imax(1, _imin(OH, (ROW_ITEMS + P - 1) // P))


def max_pool2d_forward(const floating[:, :, ::1] x, floating[:, :, ::1] y,
                       int64_t[:, :, ::1] indices, idx_t kh, idx_t kw, idx_t sh, idx_t sw,
                       idx_t ph, idx_t pw, idx_t dil_h, idx_t dil_w, int n_threads):
    """indices None: the values only (the same y, without the argmax)."""
    cdef idx_t P = x.shape[0], H = x.shape[1], W = x.shape[2]
    cdef idx_t OH = y.shape[1], OW = y.shape[2], it, p, rb
    cdef idx_t nrb = _row_blocks(P, OH)
    cdef idx_t RB = (OH + nrb - 1) // nrb
    cdef int64_t *ib = NULL if indices is None else &indices[0, 0, 0]
    with nogil:
        for it in prange(P * nrb, num_threads=n_threads, schedule="static"):
            p = it // nrb
            rb = it % nrb
            _max_rows(&x[p, 0, 0], &y[p, 0, 0], ib + p * OH * OW if ib != NULL else NULL, H,
                      W, OH, OW, kh, kw, sh, sw, ph, pw, dil_h, dil_w, rb * RB,
                      _imin(OH, rb * RB + RB))


cdef bint _max_back_2x2(const floating *gy, const int64_t *ix, floating *gx, idx_t H, idx_t W,
                        idx_t OH, idx_t OW) noexcept nogil:
    """The scatter below as a gather (isa/pool.inc's cvx_pl_back2, row by row), when every index
    of the plane names an element of its own window of a 2x2 stride-2 pool without padding
    (rows 2*oh, 2*oh + 1, columns 2*ow, 2*ow + 1; the caller checks 2*OH <= H and
    2*OW <= W): those windows are disjoint, so each element of grad_x gets at most one term,
    exactly the scatter's 0 + grad_out, and every other element 0; each grad row is written
    once, with no zeroing pass. Returns False, with grad_x partly written, at the first output
    row holding another index (the caller then zeroes and scatters the whole plane)."""
    cdef idx_t oh
    cdef floating *r0
    cdef int ok
    for oh in range(OH):
        r0 = gx + 2 * oh * W
        if floating is float:
            ok = cvx_pl_back2_float(OW, gy + oh * OW, ix + oh * OW, 2 * oh * W, W, r0, r0 + W)
        else:
            ok = cvx_pl_back2_double(OW, gy + oh * OW, ix + oh * OW, 2 * oh * W, W, r0, r0 + W)
        if not ok:
            return False
        if 2 * OW < W:  # the last column of an odd W is in no window
            r0[W - 1] = 0
            r0[2 * W - 1] = 0
    if 2 * OH < H:  # the last row of an odd H likewise
        memset(gx + 2 * OH * W, 0, W * sizeof(floating))
    return True


def max_pool2d_backward(const floating[:, :, ::1] grad_out, const int64_t[:, :, ::1] indices,
                        floating[:, :, ::1] grad_x, int n_threads):
    """grad_x[p].flat[indices[p, i]] += grad_out[p, i] (i in order, from 0); returns how many
    indices were outside [0, H*W) other than -1 (those are skipped). A plane whose indices all
    lie in their own windows of a 2x2 stride-2 pool without padding takes _max_back_2x2 (the
    same result, as a gather)."""
    cdef idx_t P = grad_x.shape[0], HW = grad_x.shape[1] * grad_x.shape[2]
    cdef idx_t H = grad_x.shape[1], W = grad_x.shape[2]
    cdef idx_t OH = grad_out.shape[1], OW = grad_out.shape[2]
    cdef idx_t L = grad_out.shape[1] * grad_out.shape[2], p, i
    cdef int64_t j
    cdef idx_t bad = 0
    cdef floating *gx
    cdef const floating *gy
    cdef const int64_t *ix
    # the shape of a 2x2 stride-2 pool without padding (H is 2*OH or 2*OH + 1, W likewise);
    # the indices decide, plane by plane
    cdef bint tile2 = 2 * OH <= H <= 2 * OH + 1 and 2 * OW <= W <= 2 * OW + 1
    with nogil:
        for p in prange(P, num_threads=n_threads, schedule="static"):
            gx = &grad_x[p, 0, 0]
            gy = &grad_out[p, 0, 0]
            ix = &indices[p, 0, 0]
            if tile2 and _max_back_2x2(gy, ix, gx, H, W, OH, OW):
                continue
            memset(gx, 0, HW * sizeof(floating))
            for i in range(L):
                j = ix[i]
                if 0 <= j < HW:
                    gx[j] += gy[i]
                elif j != -1:
                    bad += 1
    return bad


# ---------------------------------------------------------------------------------------------
# average pooling

cdef extern from "isa/cvx_base.h" nogil:
    # the divisor of a window (the rule, written once there)
    idx_t _avg_div "cvx_pl_avg_div" (idx_t hs, idx_t ws, idx_t he0, idx_t we0, idx_t hs1,
                                     idx_t ws1, idx_t he1, idx_t we1, bint include_pad,
                                     idx_t divisor)


cdef void _avg_rows(const floating *xp, floating *yp, idx_t H, idx_t W, idx_t OW, idx_t kh,
                    idx_t kw, idx_t sh, idx_t sw, idx_t ph, idx_t pw, idx_t pb, idx_t pr,
                    bint count_include_pad, idx_t divisor_override, idx_t oh0,
                    idx_t oh1) noexcept nogil:
    """Output rows [oh0, oh1) of one plane: windows at most SEP_MAX_KW columns wide in one call
    (cvx_pl_vavg_sep); wider ones with the interior columns (the window's columns inside the
    plane, so one divisor for the row) by the vector row kernel of isa/pool.inc, the others one
    by one; each adds the window from 0 in row-major order and divides once."""
    cdef idx_t oh, ow, hs, ws, he0, we0, hs1, ws1, he1, we1, ih, iw, lo, hi
    cdef floating acc
    cdef const floating *row
    if kw <= SEP_MAX_KW:
        # the rows in one call (isa/pool.inc's cvx_pl_vavg_sep): the same additions in the same
        # order, each output divided by its divisor
        if floating is float:
            cvx_pl_vavg_sep_float(xp, H, W, kh, kw, sh, sw, ph, pw, pb, pr, count_include_pad,
                                  divisor_override, OW, oh0, oh1, yp)
        else:
            cvx_pl_vavg_sep_double(xp, H, W, kh, kw, sh, sw, ph, pw, pb, pr, count_include_pad,
                                   divisor_override, OW, oh0, oh1, yp)
        return
    _interior(W, OW, kw, sw, pw, 1, &lo, &hi)
    for oh in range(oh0, oh1):
        hs = oh * sh - ph
        he0 = _imin(hs + kh, H + pb)
        hs1 = _imax(hs, 0)
        he1 = _imin(he0, H)
        ow = 0
        while ow < OW:
            if ow == lo and lo < hi and hs1 < he1:
                # interior: ws1 = ws, we1 = we0 = ws + kw
                if floating is float:
                    cvx_pl_avg_row_float(xp, W, 0, hs1, he1, kw, sw, pw, lo, hi,
                                         <float>_avg_div(hs, 0, he0, kw, hs1, 0, he1, kw,
                                                         count_include_pad, divisor_override),
                                         yp + oh * OW)
                else:
                    cvx_pl_avg_row_double(xp, W, 0, hs1, he1, kw, sw, pw, lo, hi,
                                          <double>_avg_div(hs, 0, he0, kw, hs1, 0, he1, kw,
                                                           count_include_pad, divisor_override),
                                          yp + oh * OW)
                ow = hi
                continue
            ws = ow * sw - pw
            we0 = _imin(ws + kw, W + pr)
            ws1 = _imax(ws, 0)
            we1 = _imin(we0, W)
            if hs1 >= he1 or ws1 >= we1:
                yp[oh * OW + ow] = 0
            else:
                acc = 0
                for ih in range(hs1, he1):
                    row = xp + ih * W
                    for iw in range(ws1, we1):
                        acc = acc + row[iw]
                yp[oh * OW + ow] = acc / <floating>_avg_div(
                    hs, ws, he0, we0, hs1, ws1, he1, we1, count_include_pad, divisor_override)
            ow = ow + 1


cdef void _avg_rows_2x2(const floating *xp, floating *yp, idx_t W, idx_t OW, idx_t oh0,
                        idx_t oh1) noexcept nogil:
    """kernel 2, stride 2, no padding: every window is whole and its divisor is 4 (a loop the
    compiler vectorises as it stands)."""
    cdef idx_t oh, ow
    cdef const floating *r0
    cdef const floating *r1
    for oh in range(oh0, oh1):
        r0 = xp + 2 * oh * W
        r1 = r0 + W
        for ow in range(OW):
            yp[oh * OW + ow] = (((r0[2 * ow] + r0[2 * ow + 1]) + r1[2 * ow]) + r1[2 * ow + 1]) / 4


def avg_pool2d_forward(const floating[:, :, ::1] x, floating[:, :, ::1] y, idx_t kh, idx_t kw,
                       idx_t sh, idx_t sw, idx_t ph, idx_t pw, idx_t pb, idx_t pr,
                       bint count_include_pad, idx_t divisor_override, int n_threads):
    cdef idx_t P = x.shape[0], H = x.shape[1], W = x.shape[2]
    cdef idx_t OH = y.shape[1], OW = y.shape[2], it, p, rb
    cdef idx_t nrb = _row_blocks(P, OH)
    cdef idx_t RB = (OH + nrb - 1) // nrb
    # the 2x2 stride-2 loop assumes whole windows (ceil_mode can add a partial last one)
    cdef bint fast = (kh == 2 and kw == 2 and sh == 2 and sw == 2 and ph == 0 and pw == 0
                      and (divisor_override == 0 or divisor_override == 4)
                      and 2 * OH <= H and 2 * OW <= W)
    with nogil:
        for it in prange(P * nrb, num_threads=n_threads, schedule="static"):
            p = it // nrb
            rb = it % nrb
            if fast:
                _avg_rows_2x2(&x[p, 0, 0], &y[p, 0, 0], W, OW, rb * RB, _imin(OH, rb * RB + RB))
            else:
                _avg_rows(&x[p, 0, 0], &y[p, 0, 0], H, W, OW, kh, kw, sh, sw, ph, pw, pb, pr,
                          count_include_pad, divisor_override, rb * RB, _imin(OH, rb * RB + RB))


cdef void _avg_back_2x2(const floating *gy, floating *gx, idx_t H, idx_t W, idx_t OH,
                        idx_t OW) noexcept nogil:
    """kernel 2, stride 2, no padding, divisor 4: each element of a window gets one term,
    0 + grad_out / 4, exactly what the general loop adds to the zeroed plane (a loop the
    compiler vectorises); the elements in no window (columns from 2*OW, rows from 2*OH) get 0.
    Every grad element is written once: no zeroing pass."""
    cdef idx_t oh, ow
    cdef floating *r0
    cdef floating *r1
    cdef floating g
    for oh in range(OH):
        r0 = gx + 2 * oh * W
        r1 = r0 + W
        for ow in range(OW):
            g = 0 + gy[oh * OW + ow] / <floating>4
            r0[2 * ow] = g
            r0[2 * ow + 1] = g
            r1[2 * ow] = g
            r1[2 * ow + 1] = g
        for ow in range(2 * OW, W):
            r0[ow] = 0
            r1[ow] = 0
    if 2 * OH < H:
        memset(gx + 2 * OH * W, 0, (H - 2 * OH) * W * sizeof(floating))


def avg_pool2d_backward(const floating[:, :, ::1] grad_out, floating[:, :, ::1] grad_x,
                        idx_t kh, idx_t kw, idx_t sh, idx_t sw, idx_t ph, idx_t pw,
                        idx_t pb, idx_t pr, bint count_include_pad, idx_t divisor_override,
                        int n_threads):
    cdef idx_t P = grad_x.shape[0], H = grad_x.shape[1], W = grad_x.shape[2]
    cdef idx_t OH = grad_out.shape[1], OW = grad_out.shape[2]
    cdef idx_t p, oh, ow, hs, ws, he0, we0, hs1, ws1, he1, we1, ih, iw
    cdef floating g
    cdef floating *gx
    cdef floating *row
    cdef const floating *gy
    # whole 2x2 stride-2 windows (as the forward's fast loop)
    cdef bint fast = (kh == 2 and kw == 2 and sh == 2 and sw == 2 and ph == 0 and pw == 0
                      and (divisor_override == 0 or divisor_override == 4)
                      and 2 * OH <= H and 2 * OW <= W)
    with nogil:
        for p in prange(P, num_threads=n_threads, schedule="static"):
            gx = &grad_x[p, 0, 0]
            gy = &grad_out[p, 0, 0]
            if fast:
                _avg_back_2x2(gy, gx, H, W, OH, OW)
                continue
            memset(gx, 0, H * W * sizeof(floating))
            for oh in range(OH):
                hs = oh * sh - ph
                he0 = _imin(hs + kh, H + pb)
                hs1 = _imax(hs, 0)
                he1 = _imin(he0, H)
                for ow in range(OW):
                    ws = ow * sw - pw
                    we0 = _imin(ws + kw, W + pr)
                    ws1 = _imax(ws, 0)
                    we1 = _imin(we0, W)
                    if hs1 >= he1 or ws1 >= we1:
                        continue
                    g = gy[oh * OW + ow] / <floating>_avg_div(
                        hs, ws, he0, we0, hs1, ws1, he1, we1, count_include_pad,
                        divisor_override)
                    for ih in range(hs1, he1):
                        row = gx + ih * W
                        for iw in range(ws1, we1):
                            row[iw] = row[iw] + g


DEF GAP_GROUP = 64  # planes per work item at most ...
DEF GAP_UNIT = 16  # ... and a multiple of this (of every ISA's transpose, isa/pool.inc)


def global_avg_forward(const floating[:, ::1] x, floating[::1] y, int n_threads):
    """y[p] = the mean of x[p, :] (x: (P, L), L >= 1): the sum in double in memory order,
    divided by L, rounded to the dtype (isa/pool.inc's cvx_pl_gap, at most GAP_GROUP planes
    per work item, fewer where that leaves a thread without one)."""
    cdef idx_t P = x.shape[0], L = x.shape[1], g, ng
    cdef idx_t grp = (P + n_threads - 1) // max(n_threads, 1)
    grp = max(GAP_UNIT, min(GAP_GROUP, (grp + GAP_UNIT - 1) // GAP_UNIT * GAP_UNIT))
    ng = (P + grp - 1) // grp
    with nogil:
        for g in prange(ng, num_threads=n_threads, schedule="static"):
            if floating is float:
                cvx_pl_gap_float(&x[g * grp, 0], &y[g * grp], _imin(grp, P - g * grp), L)
            else:
                cvx_pl_gap_double(&x[g * grp, 0], &y[g * grp], _imin(grp, P - g * grp), L)
