"""2-D pooling kernels: max pooling with an integer argmax mask, average pooling; both ways.

Contract (the functional layer checks it; these kernels trust it): the input is viewed as
P = N*C independent planes, x is (P, H, W), y / grad_out / indices are (P, OH, OW); every array
is C-contiguous and non-empty, floats are one dtype (float32 or float64), indices are int64.
The geometry arrives as kernel (kh, kw), stride (sh, sw), padding (ph, pw) (top/left; for max
pooling the bottom/right extent is implied by OH and OW, which is how ceil_mode windows and
asymmetric padding hang over the edge) and, for max pooling, dilation (dil_h, dil_w). Average
pooling also takes the bottom/right padding (pb, pr): its divisor with count_include_pad counts
the window positions inside the padded input, which OH and OW do not determine.

Parallelism: one work item is one plane. A plane of y (or of grad_x) is written by exactly one
thread, in a fixed order, so every result is bitwise the same for every thread count and the
gradient scatter needs no atomics.

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

No scratch memory: the backward kernels zero their own grad planes before scattering.

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

cdef void _max_plane(const floating *xp, floating *yp, int64_t *ip, idx_t H, idx_t W,
                     idx_t OH, idx_t OW, idx_t kh, idx_t kw, idx_t sh, idx_t sw, idx_t ph,
                     idx_t pw, idx_t dil_h, idx_t dil_w) noexcept nogil:
    cdef idx_t oh, ow, hs, he, ws, we, ih, iw, best
    cdef floating v, m
    for oh in range(OH):
        hs = oh * sh - ph
        he = _imin(hs + (kh - 1) * dil_h + 1, H)
        hs = _first_tap(hs, dil_h)
        for ow in range(OW):
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
                        if v > m or v != v:
                            m = v
                            best = ih * W + iw
                        iw = iw + dil_w
                    ih = ih + dil_h
            yp[oh * OW + ow] = m
            ip[oh * OW + ow] = best


cdef void _max_plane_2x2(const floating *xp, floating *yp, int64_t *ip, idx_t W, idx_t OH,
                         idx_t OW) noexcept nogil:
    """kernel 2, stride 2, no padding, no dilation: every window is whole."""
    cdef idx_t oh, ow, i, best
    cdef const floating *r0
    cdef const floating *r1
    cdef floating m, v
    for oh in range(OH):
        r0 = xp + 2 * oh * W
        r1 = r0 + W
        for ow in range(OW):
            i = 2 * ow
            m = -INFINITY
            best = i
            v = r0[i]
            if v > m or v != v:
                m = v
            v = r0[i + 1]
            if v > m or v != v:
                m = v
                best = i + 1
            v = r1[i]
            if v > m or v != v:
                m = v
                best = W + i
            v = r1[i + 1]
            if v > m or v != v:
                m = v
                best = W + i + 1
            yp[oh * OW + ow] = m
            ip[oh * OW + ow] = 2 * oh * W + best


def max_pool2d_forward(const floating[:, :, ::1] x, floating[:, :, ::1] y,
                       int64_t[:, :, ::1] indices, idx_t kh, idx_t kw, idx_t sh, idx_t sw,
                       idx_t ph, idx_t pw, idx_t dil_h, idx_t dil_w, int n_threads):
    cdef idx_t P = x.shape[0], H = x.shape[1], W = x.shape[2]
    cdef idx_t OH = y.shape[1], OW = y.shape[2], p
    # the 2x2 stride-2 loop assumes whole windows (ceil_mode can add a partial last one)
    cdef bint fast = (kh == 2 and kw == 2 and sh == 2 and sw == 2 and ph == 0 and pw == 0
                      and dil_h == 1 and dil_w == 1 and 2 * OH <= H and 2 * OW <= W)
    with nogil:
        for p in prange(P, num_threads=n_threads, schedule="static"):
            if fast:
                _max_plane_2x2(&x[p, 0, 0], &y[p, 0, 0], &indices[p, 0, 0], W, OH, OW)
            else:
                _max_plane(&x[p, 0, 0], &y[p, 0, 0], &indices[p, 0, 0], H, W, OH, OW,
                           kh, kw, sh, sw, ph, pw, dil_h, dil_w)


def max_pool2d_backward(const floating[:, :, ::1] grad_out, const int64_t[:, :, ::1] indices,
                        floating[:, :, ::1] grad_x, int n_threads):
    """grad_x[p].flat[indices[p, i]] += grad_out[p, i]; returns how many indices were outside
    [0, H*W) other than -1 (those are skipped)."""
    cdef idx_t P = grad_x.shape[0], HW = grad_x.shape[1] * grad_x.shape[2]
    cdef idx_t L = grad_out.shape[1] * grad_out.shape[2], p, i
    cdef int64_t j
    cdef idx_t bad = 0
    cdef floating *gx
    cdef const floating *gy
    cdef const int64_t *ix
    with nogil:
        for p in prange(P, num_threads=n_threads, schedule="static"):
            gx = &grad_x[p, 0, 0]
            gy = &grad_out[p, 0, 0]
            ix = &indices[p, 0, 0]
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

cdef inline idx_t _avg_div(idx_t hs, idx_t ws, idx_t he0, idx_t we0, idx_t hs1, idx_t ws1,
                           idx_t he1, idx_t we1, bint include_pad,
                           idx_t divisor) noexcept nogil:
    if divisor != 0:
        return divisor
    if include_pad:
        return (he0 - hs) * (we0 - ws)
    return (he1 - hs1) * (we1 - ws1)


cdef void _avg_plane_2x2(const floating *xp, floating *yp, idx_t W, idx_t OH,
                         idx_t OW) noexcept nogil:
    """kernel 2, stride 2, no padding: every window is whole and its divisor is 4."""
    cdef idx_t oh, ow
    cdef const floating *r0
    cdef const floating *r1
    for oh in range(OH):
        r0 = xp + 2 * oh * W
        r1 = r0 + W
        for ow in range(OW):
            yp[oh * OW + ow] = (((r0[2 * ow] + r0[2 * ow + 1]) + r1[2 * ow]) + r1[2 * ow + 1]) / 4


def avg_pool2d_forward(const floating[:, :, ::1] x, floating[:, :, ::1] y, idx_t kh, idx_t kw,
                       idx_t sh, idx_t sw, idx_t ph, idx_t pw, idx_t pb, idx_t pr,
                       bint count_include_pad, idx_t divisor_override, int n_threads):
    cdef idx_t P = x.shape[0], H = x.shape[1], W = x.shape[2]
    cdef idx_t OH = y.shape[1], OW = y.shape[2]
    cdef idx_t p, oh, ow, hs, ws, he0, we0, hs1, ws1, he1, we1, ih, iw
    cdef floating acc
    cdef const floating *xp
    cdef const floating *row
    cdef floating *yp
    # the 2x2 stride-2 loop assumes whole windows (ceil_mode can add a partial last one)
    cdef bint fast = (kh == 2 and kw == 2 and sh == 2 and sw == 2 and ph == 0 and pw == 0
                      and (divisor_override == 0 or divisor_override == 4)
                      and 2 * OH <= H and 2 * OW <= W)
    with nogil:
        for p in prange(P, num_threads=n_threads, schedule="static"):
            xp = &x[p, 0, 0]
            yp = &y[p, 0, 0]
            if fast:
                _avg_plane_2x2(xp, yp, W, OH, OW)
                continue
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
                        yp[oh * OW + ow] = 0
                        continue
                    acc = 0
                    for ih in range(hs1, he1):
                        row = xp + ih * W
                        for iw in range(ws1, we1):
                            acc = acc + row[iw]
                    yp[oh * OW + ow] = acc / <floating>_avg_div(
                        hs, ws, he0, we0, hs1, ws1, he1, we1, count_include_pad,
                        divisor_override)


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
    with nogil:
        for p in prange(P, num_threads=n_threads, schedule="static"):
            gx = &grad_x[p, 0, 0]
            gy = &grad_out[p, 0, 0]
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
