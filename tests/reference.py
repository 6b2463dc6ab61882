"""Naive, obviously-correct float64 oracles, written independently of convext's kernels.

Each follows the textbook definition with explicit loops over output positions and kernel taps
(NumPy only for the innermost sums over the batch and channels), so it is slow and only meant
for small shapes.
"""
import numpy as np


def pad_same(k, d):
    """PyTorch's 'same' padding for one axis: (before, after)."""
    total = d * (k - 1)
    return total // 2, total - total // 2


def _pads(padding, kh, kw, dh, dw):
    if padding == "valid":
        return (0, 0), (0, 0)
    if padding == "same":
        return pad_same(kh, dh), pad_same(kw, dw)
    ph, pw = (padding, padding) if np.isscalar(padding) else padding
    return (ph, ph), (pw, pw)


def _pair(v):
    return (v, v) if np.isscalar(v) else tuple(v)


def _at(x, cs, r, c):
    """x[:, cs, r, c] of the zero-padded input, without building it (any padding, even
    2**40): out-of-range positions read zeros, which still take part in the arithmetic as a
    padded zero does (0 * inf = NaN)."""
    N, C, H, W = x.shape
    if 0 <= r < H and 0 <= c < W:
        return x[:, cs, r, c]
    return np.zeros((N, len(range(C)[cs])))


def conv2d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    """y[n, f, oh, ow] = b[f] + sum_{c,i,j} w[f, c, i, j] * xpad[n, g*Cg + c, oh*s + i*d, ow*s + j*d]."""
    x = np.asarray(x, np.float64)
    w = np.asarray(w, np.float64)
    N, C, H, W = x.shape
    F, Cg, kh, kw = w.shape
    sh, sw = _pair(stride)
    dh, dw = _pair(dilation)
    padh, padw = _pads(padding, kh, kw, dh, dw)
    Hp, Wp = H + padh[0] + padh[1], W + padw[0] + padw[1]
    OH = (Hp - dh * (kh - 1) - 1) // sh + 1
    OW = (Wp - dw * (kw - 1) - 1) // sw + 1
    Fg = F // groups
    y = np.zeros((N, F, OH, OW))
    for f in range(F):
        g = f // Fg
        for oh in range(OH):
            for ow in range(OW):
                acc = np.zeros(N)
                for i in range(kh):
                    for j in range(kw):
                        patch = _at(x, slice(g * Cg, (g + 1) * Cg),
                                    oh * sh + i * dh - padh[0], ow * sw + j * dw - padw[0])
                        acc += patch @ w[f, :, i, j]
                y[:, f, oh, ow] = acc
        if b is not None:
            y[:, f] += b[f]
    return y


def conv2d_grads(gy, x, w, stride=1, padding=0, dilation=1, groups=1):
    """(dx, dw, db) by scattering each output gradient back over the window it came from."""
    gy = np.asarray(gy, np.float64)
    x = np.asarray(x, np.float64)
    w = np.asarray(w, np.float64)
    N, C, H, W = x.shape
    F, Cg, kh, kw = w.shape
    sh, sw = _pair(stride)
    dh, dw_ = _pair(dilation)
    padh, padw = _pads(padding, kh, kw, dh, dw_)
    gx = np.zeros_like(x)
    gw = np.zeros_like(w)
    OH, OW = gy.shape[2:]
    Fg = F // groups
    for f in range(F):
        g = f // Fg
        cs = slice(g * Cg, (g + 1) * Cg)
        for oh in range(OH):
            for ow in range(OW):
                go = gy[:, f, oh, ow]  # (N,)
                for i in range(kh):
                    for j in range(kw):
                        r, c = oh * sh + i * dh - padh[0], ow * sw + j * dw_ - padw[0]
                        if 0 <= r < H and 0 <= c < W:  # the padding's gradient is dropped
                            gx[:, cs, r, c] += go[:, None] * w[f, :, i, j][None, :]
                        gw[f, :, i, j] += go @ _at(x, cs, r, c)
    gb = gy.sum(axis=(0, 2, 3))
    return gx, gw, gb


def numerical_grad(f, x, eps=1e-6):
    """Central differences of the scalar function f at x (float64), one coordinate at a time."""
    x = np.array(x, dtype=np.float64)
    g = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"])
    for _ in it:
        idx = it.multi_index
        old = x[idx]
        x[idx] = old + eps
        fp = f(x)
        x[idx] = old - eps
        fm = f(x)
        x[idx] = old
        g[idx] = (fp - fm) / (2 * eps)
    return g


# ---------------------------------------------------------------------------------------------
# pooling oracles (float64 loops over every output position and every window tap)

def pool_out_size(size, k, s, p, d=1, ceil_mode=False):
    """PyTorch's pooling output length, written out from its documentation."""
    num = size + 2 * p - d * (k - 1) - 1
    out = (-(-num // s) if ceil_mode else num // s) + 1
    if ceil_mode and (out - 1) * s >= size + p:
        out -= 1
    return out


def _taps_inside(start, d, k, size):
    """The taps t < k whose position start + t*d lies in [0, size), in order (computed, not
    searched, so that a kernel of 2**40 taps costs nothing)."""
    lo = max(0, -(start // d) if start < 0 else 0)
    while lo < k and start + lo * d < 0:
        lo += 1
    hi = min(k - 1, (size - 1 - start) // d) if size - 1 - start >= 0 else -1
    return range(lo, hi + 1)


def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """(y, indices): the first maximum of each window in row-major order, NaN wins (the last
    NaN), padding never wins. indices are h*W + w in the input plane."""
    x = np.asarray(x, np.float64)
    kh, kw = _pair(kernel_size)
    sh, sw = _pair(kernel_size if stride is None else stride)
    ph, pw = _pair(padding)
    dh, dw = _pair(dilation)
    N, C, H, W = x.shape
    OH = pool_out_size(H, kh, sh, ph, dh, ceil_mode)
    OW = pool_out_size(W, kw, sw, pw, dw, ceil_mode)
    y = np.full((N, C, OH, OW), -np.inf)
    idx = np.full((N, C, OH, OW), -1, dtype=np.int64)
    for n in range(N):
        for c in range(C):
            for oh in range(OH):
                for ow in range(OW):
                    taps = []  # (value, flat index) of the real elements, row-major
                    for i in _taps_inside(oh * sh - ph, dh, kh, H):
                        for j in _taps_inside(ow * sw - pw, dw, kw, W):
                            r, q = oh * sh - ph + i * dh, ow * sw - pw + j * dw
                            assert 0 <= r < H and 0 <= q < W
                            taps.append((x[n, c, r, q], r * W + q))
                    nans = [t for t in taps if np.isnan(t[0])]
                    if nans:
                        best, bi = nans[-1]
                    elif taps:
                        best = max(v for v, _ in taps)
                        bi = next(i for v, i in taps if v == best)
                    else:
                        best, bi = -np.inf, -1
                    y[n, c, oh, ow], idx[n, c, oh, ow] = best, bi
    return y, idx


def max_pool2d_backward(gy, idx, input_shape):
    gx = np.zeros(input_shape)
    N, C, H, W = input_shape
    for n in range(N):
        for c in range(C):
            for o, i in zip(np.asarray(gy, np.float64)[n, c].ravel(), idx[n, c].ravel()):
                if i >= 0:
                    gx[n, c, i // W, i % W] += o
    return gx


def _avg_windows(H, W, kernel_size, stride, padding, ceil_mode, count_include_pad,
                 divisor_override):
    """Yield (oh, ow, rows, cols, divisor) for every average-pooling window."""
    kh, kw = _pair(kernel_size)
    sh, sw = _pair(kernel_size if stride is None else stride)
    ph, pw = _pair(padding)
    OH = pool_out_size(H, kh, sh, ph, 1, ceil_mode)
    OW = pool_out_size(W, kw, sw, pw, 1, ceil_mode)
    for oh in range(OH):
        for ow in range(OW):
            r0, q0 = oh * sh - ph, ow * sw - pw
            # window clipped to the padded input (its size is torch's count_include_pad divisor)
            r1, q1 = min(r0 + kh, H + ph), min(q0 + kw, W + pw)
            rows = list(range(max(r0, 0), min(r1, H)))
            cols = list(range(max(q0, 0), min(q1, W)))
            if divisor_override:
                div = divisor_override
            elif count_include_pad:
                div = (r1 - r0) * (q1 - q0)
            else:
                div = len(rows) * len(cols)
            yield oh, ow, rows, cols, div, (OH, OW)


def avg_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    x = np.asarray(x, np.float64)
    N, C, H, W = x.shape
    wins = list(_avg_windows(H, W, kernel_size, stride, padding, ceil_mode, count_include_pad,
                             divisor_override))
    OH, OW = wins[0][5]
    y = np.zeros((N, C, OH, OW))
    for oh, ow, rows, cols, div, _ in wins:
        if rows and cols:
            y[:, :, oh, ow] = x[:, :, rows][:, :, :, cols].sum(axis=(2, 3)) / div
    return y


def avg_pool2d_backward(gy, input_shape, kernel_size, stride=None, padding=0, ceil_mode=False,
                        count_include_pad=True, divisor_override=None):
    gy = np.asarray(gy, np.float64)
    N, C, H, W = input_shape
    gx = np.zeros(input_shape)
    for oh, ow, rows, cols, div, _ in _avg_windows(H, W, kernel_size, stride, padding,
                                                   ceil_mode, count_include_pad,
                                                   divisor_override):
        for r in rows:
            for q in cols:
                gx[:, :, r, q] += gy[:, :, oh, ow] / div
    return gx


def lp_pool2d(x, p, kernel_size, stride=None, ceil_mode=False):
    """torch's definition: (kH*kW * avg_pool2d(x**p)) ** (1/p), windows clipped like avg."""
    kh, kw = _pair(kernel_size)
    x = np.asarray(x, np.float64)
    return (avg_pool2d(x ** p, kernel_size, stride, 0, ceil_mode) * kh * kw) ** (1.0 / p)
