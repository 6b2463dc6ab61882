"""Naive, obviously-correct float64 oracles, written independently of convext's kernels.

Each follows the textbook definition with explicit loops: the convolutions over kernel taps
(each tap's window of the padded input at once, NumPy's sums over the channels; the loops over
single output pixels, conv2d_by_pixels and conv2d_grads_by_pixels, serve huge padding and check
them), the pooling over output positions, the activations and losses over single elements (with
the math module). They are slow and only meant for small shapes.
NumPy only: these oracles need no PyTorch (the PyTorch comparisons are in tests/parity/).
"""

import math

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


# Inputs whose zero-padded copy would hold more elements than this take the per-pixel loops.
_PADDED_COPY_MAX = 1 << 26


def _window_geometry(x, w, stride, padding, dilation):
    """(strides, dilations, (top, bottom) and (left, right) padding, padded size, output size)
    of a convolution of x by w: each output length is (padded - d*(k-1) - 1) // s + 1."""
    H, W = x.shape[2:]
    kh, kw = w.shape[2:]
    sh, sw = _pair(stride)
    dh, dw = _pair(dilation)
    padh, padw = _pads(padding, kh, kw, dh, dw)
    Hp, Wp = H + padh[0] + padh[1], W + padw[0] + padw[1]
    OH = (Hp - dh * (kh - 1) - 1) // sh + 1
    OW = (Wp - dw * (kw - 1) - 1) // sw + 1
    return (sh, sw), (dh, dw), (padh, padw), (Hp, Wp), (OH, OW)


def _tap_windows(x, w, stride, padding, dilation):
    """The zero-padded input and, for each tap (i, j), the window of xpad it multiplies:
    xpad[:, :, i*dh + oh*sh, j*dw + ow*sw] over every output pixel; None when the padded copy
    would be too large (huge padding)."""
    N, C, H, W = x.shape
    kh, kw = w.shape[2:]
    (sh, sw), (dh, dw), (padh, padw), (Hp, Wp), (OH, OW) = _window_geometry(
        x, w, stride, padding, dilation
    )
    if N * C * Hp * Wp > _PADDED_COPY_MAX:
        return None
    xpad = np.zeros((N, C, Hp, Wp))
    xpad[:, :, padh[0] : padh[0] + H, padw[0] : padw[0] + W] = x
    taps = {
        (i, j): (
            slice(i * dh, i * dh + sh * (OH - 1) + 1, sh),
            slice(j * dw, j * dw + sw * (OW - 1) + 1, sw),
        )
        for i in range(kh)
        for j in range(kw)
    }
    return xpad, taps, (padh, padw), (OH, OW)


def conv2d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    """y[n, f, oh, ow] = b[f] + sum_{c,i,j} w[f, c, i, j]
    * xpad[n, g*Cg + c, oh*s + i*d, ow*s + j*d], summed one tap at a time over every output
    pixel (conv2d_by_pixels when the padded copy would be too large)."""
    x = np.asarray(x, np.float64)
    w = np.asarray(w, np.float64)
    windows = _tap_windows(x, w, stride, padding, dilation)
    if windows is None:
        return conv2d_by_pixels(x, w, b, stride, padding, dilation, groups)
    xpad, taps, _, (OH, OW) = windows
    N = x.shape[0]
    F, Cg = w.shape[:2]
    Fg = F // groups
    y = np.zeros((N, F, OH, OW))
    for g in range(groups):
        fs, cs = slice(g * Fg, (g + 1) * Fg), slice(g * Cg, (g + 1) * Cg)
        for (i, j), (rows, cols) in taps.items():
            win = xpad[:, cs, rows, cols]
            y[:, fs] += np.einsum("nchw,fc->nfhw", win, w[fs, :, i, j], optimize=True)
    if b is not None:
        y += np.asarray(b, np.float64)[None, :, None, None]
    return y


def conv2d_grads(gy, x, w, stride=1, padding=0, dilation=1, groups=1):
    """(dx, dw, db): each tap's window of the padded input receives gy times that tap's weight
    (the padding's share is dropped) and gives the tap's weight gradient (conv2d_grads_by_pixels
    when the padded copy would be too large)."""
    gy = np.asarray(gy, np.float64)
    x = np.asarray(x, np.float64)
    w = np.asarray(w, np.float64)
    windows = _tap_windows(x, w, stride, padding, dilation)
    if windows is None:
        return conv2d_grads_by_pixels(gy, x, w, stride, padding, dilation, groups)
    xpad, taps, (padh, padw), _ = windows
    N, C, H, W = x.shape
    F, Cg = w.shape[:2]
    Fg = F // groups
    gxpad = np.zeros_like(xpad)
    gw = np.zeros_like(w)
    for g in range(groups):
        fs, cs = slice(g * Fg, (g + 1) * Fg), slice(g * Cg, (g + 1) * Cg)
        for (i, j), (rows, cols) in taps.items():
            dy, win = gy[:, fs], xpad[:, cs, rows, cols]
            gxpad[:, cs, rows, cols] += np.einsum(
                "nfhw,fc->nchw", dy, w[fs, :, i, j], optimize=True
            )
            gw[fs, :, i, j] = np.einsum("nfhw,nchw->fc", dy, win, optimize=True)
    gx = gxpad[:, :, padh[0] : padh[0] + H, padw[0] : padw[0] + W].copy()
    gb = gy.sum(axis=(0, 2, 3))
    return gx, gw, gb


def conv2d_by_pixels(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    """conv2d one output pixel at a time (any padding, even 2**40): y[n, f, oh, ow] = b[f]
    + sum_{c,i,j} w[f, c, i, j] * xpad[n, g*Cg + c, oh*s + i*d, ow*s + j*d]."""
    x = np.asarray(x, np.float64)
    w = np.asarray(w, np.float64)
    N = x.shape[0]
    F, Cg, kh, kw = w.shape
    (sh, sw), (dh, dw), (padh, padw), _, (OH, OW) = _window_geometry(
        x, w, stride, padding, dilation
    )
    Fg = F // groups
    y = np.zeros((N, F, OH, OW))
    for f in range(F):
        g = f // Fg
        for oh in range(OH):
            for ow in range(OW):
                acc = np.zeros(N)
                for i in range(kh):
                    for j in range(kw):
                        patch = _at(
                            x,
                            slice(g * Cg, (g + 1) * Cg),
                            oh * sh + i * dh - padh[0],
                            ow * sw + j * dw - padw[0],
                        )
                        acc += patch @ w[f, :, i, j]
                y[:, f, oh, ow] = acc
        if b is not None:
            y[:, f] += b[f]
    return y


def conv2d_grads_by_pixels(gy, x, w, stride=1, padding=0, dilation=1, groups=1):
    """conv2d_grads one output pixel at a time: (dx, dw, db) by scattering each output
    gradient back over the window it came from."""
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
            for o, i in zip(
                np.asarray(gy, np.float64)[n, c].ravel(), idx[n, c].ravel(), strict=True
            ):
                if i >= 0:
                    gx[n, c, i // W, i % W] += o
    return gx


def _avg_windows(
    H, W, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override
):
    """Yield (oh, ow, rows, cols, divisor) for every average-pooling window."""
    kh, kw = _pair(kernel_size)
    sh, sw = _pair(kernel_size if stride is None else stride)
    ph, pw = _pair(padding)
    OH = pool_out_size(H, kh, sh, ph, 1, ceil_mode)
    OW = pool_out_size(W, kw, sw, pw, 1, ceil_mode)
    for oh in range(OH):
        for ow in range(OW):
            r0, q0 = oh * sh - ph, ow * sw - pw
            # window clipped to the padded input (its size is PyTorch's count_include_pad divisor)
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


def avg_pool2d(
    x,
    kernel_size,
    stride=None,
    padding=0,
    ceil_mode=False,
    count_include_pad=True,
    divisor_override=None,
):
    x = np.asarray(x, np.float64)
    N, C, H, W = x.shape
    wins = list(
        _avg_windows(
            H, W, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override
        )
    )
    OH, OW = wins[0][5]
    y = np.zeros((N, C, OH, OW))
    for oh, ow, rows, cols, div, _ in wins:
        if rows and cols:
            y[:, :, oh, ow] = x[:, :, rows][:, :, :, cols].sum(axis=(2, 3)) / div
    return y


def avg_pool2d_backward(
    gy,
    input_shape,
    kernel_size,
    stride=None,
    padding=0,
    ceil_mode=False,
    count_include_pad=True,
    divisor_override=None,
):
    gy = np.asarray(gy, np.float64)
    N, C, H, W = input_shape
    gx = np.zeros(input_shape)
    for oh, ow, rows, cols, div, _ in _avg_windows(
        H, W, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override
    ):
        for r in rows:
            for q in cols:
                gx[:, :, r, q] += gy[:, :, oh, ow] / div
    return gx


def lp_pool2d(x, p, kernel_size, stride=None, ceil_mode=False):
    """PyTorch's definition: (kH*kW * avg_pool2d(x**p)) ** (1/p), windows clipped like avg."""
    kh, kw = _pair(kernel_size)
    x = np.asarray(x, np.float64)
    return (avg_pool2d(x**p, kernel_size, stride, 0, ceil_mode) * kh * kw) ** (1.0 / p)


# ---------------------------------------------------------------------------------------------
# activation oracles: the textbook formula applied to one element at a time (Python floats and
# the math module, float64), written from PyTorch's documentation. Each backward takes the
# forward's INPUT x and returns grad_out * d(forward)/dx.


def _elementwise(fn, *arrays):
    arrays = [np.asarray(a, np.float64) for a in arrays]
    out = np.zeros(arrays[0].shape)
    for i in np.ndindex(out.shape):
        out[i] = fn(*(float(a[i]) for a in arrays))
    return out


def _sigmoid1(v):
    if v >= 0:
        return 1.0 / (1.0 + math.exp(-v))
    e = math.exp(v)
    return e / (1.0 + e)


def relu(x):
    return _elementwise(lambda v: 0.0 if v <= 0 else v, x)  # NaN stays NaN


def relu_backward(g, x):
    return _elementwise(lambda gv, v: 0.0 if v <= 0 else gv, g, x)  # NaN input passes grad


def leaky_relu(x, negative_slope=0.01):
    return _elementwise(lambda v: v if v > 0 else negative_slope * v, x)


def leaky_relu_backward(g, x, negative_slope=0.01):
    return _elementwise(lambda gv, v: gv if v > 0 else negative_slope * gv, g, x)


def elu(x, alpha=1.0):
    return _elementwise(lambda v: v if v > 0 else alpha * math.expm1(v), x)


def elu_backward(g, x, alpha=1.0):
    return _elementwise(lambda gv, v: gv * alpha * math.exp(v) if v <= 0 else gv, g, x)


def sigmoid(x):
    return _elementwise(_sigmoid1, x)


def sigmoid_backward(g, x):
    return _elementwise(lambda gv, v: gv * _sigmoid1(v) * (1.0 - _sigmoid1(v)), g, x)


def tanh(x):
    return _elementwise(math.tanh, x)


def tanh_backward(g, x):
    return _elementwise(lambda gv, v: gv * (1.0 - math.tanh(v) ** 2), g, x)


def softplus(x, beta=1.0, threshold=20.0):
    """log(1 + exp(beta*x)) / beta, and x itself where beta*x > threshold."""

    def one(v):
        b = beta * v
        if b > threshold:
            return v
        # log(1 + e^b) = max(b, 0) + log1p(e^-|b|): no overflow for large b
        return (max(b, 0.0) + math.log1p(math.exp(-abs(b)))) / beta

    return _elementwise(one, x)


def softplus_backward(g, x, beta=1.0, threshold=20.0):
    return _elementwise(
        lambda gv, v: gv if beta * v > threshold else gv * _sigmoid1(beta * v), g, x
    )


def _rows(fn, axis, *arrays):
    """Apply fn(row, ...) -> row to every 1-d slice along ``axis``."""
    arrays = [np.moveaxis(np.asarray(a, np.float64), axis, -1) for a in arrays]
    out = np.zeros(arrays[0].shape)
    for i in np.ndindex(out.shape[:-1]):
        out[i] = fn(*([float(v) for v in a[i]] for a in arrays))
    return np.moveaxis(out, -1, axis)


def _log_sum_exp(row):
    m = max(row)
    return m + math.log(sum(math.exp(v - m) for v in row))


def softmax(x, axis=-1):
    def one(row):
        m = max(row)
        e = [math.exp(v - m) for v in row]
        s = sum(e)
        return [v / s for v in e]

    return _rows(one, axis, x)


def softmax_backward(g, x, axis=-1):
    """dx_i = y_i * (g_i - sum_j g_j y_j), y = softmax(x)."""

    def one(grow, row):
        lse = _log_sum_exp(row)
        y = [math.exp(v - lse) for v in row]
        dot = sum(a * b for a, b in zip(grow, y, strict=True))
        return [yi * (gi - dot) for gi, yi in zip(grow, y, strict=True)]

    return _rows(one, axis, g, x)


def log_softmax(x, axis=-1):
    def one(row):
        lse = _log_sum_exp(row)
        return [v - lse for v in row]

    return _rows(one, axis, x)


def log_softmax_backward(g, x, axis=-1):
    """dx_i = g_i - softmax(x)_i * sum_j g_j."""

    def one(grow, row):
        lse = _log_sum_exp(row)
        total = sum(grow)
        return [gi - math.exp(v - lse) * total for gi, v in zip(grow, row, strict=True)]

    return _rows(one, axis, g, x)


# ---------------------------------------------------------------------------------------------
# loss oracles: (loss, grad) with PyTorch's reductions ('mean' divides by the number of loss
# terms); grad is the gradient of the SUM of the returned loss (a scalar for 'mean'/'sum').
# Per-term losses and their derivatives are written out one element at a time.


def _reduce(terms, dterms, reduction, n_terms):
    """terms: per-term losses (array); dterms: d(sum of terms)/d(input)."""
    if reduction == "none":
        return terms, dterms
    if reduction == "sum":
        return terms.sum(), dterms
    return terms.sum() / n_terms, dterms / n_terms


def _sign(v):
    return 0.0 if v == 0 else math.copysign(1.0, v)


def _elementwise_loss(term, dterm, x, t, reduction):
    x = np.asarray(x, np.float64)
    terms = _elementwise(term, x, t)
    return _reduce(terms, _elementwise(dterm, x, t), reduction, terms.size)


def mse_loss(x, t, reduction="mean"):
    return _elementwise_loss(lambda a, b: (a - b) ** 2, lambda a, b: 2 * (a - b), x, t, reduction)


def msle_loss(x, t, reduction="mean"):
    return _elementwise_loss(
        lambda a, b: (math.log1p(a) - math.log1p(b)) ** 2,
        lambda a, b: 2 * (math.log1p(a) - math.log1p(b)) / (1 + a),
        x,
        t,
        reduction,
    )


def l1_loss(x, t, reduction="mean"):
    return _elementwise_loss(lambda a, b: abs(a - b), lambda a, b: _sign(a - b), x, t, reduction)


def mape_loss(x, t, reduction="mean"):
    """100 * |x - t| / max(|t|, 1e-7)."""
    return _elementwise_loss(
        lambda a, b: 100 * abs(a - b) / max(abs(b), 1e-7),
        lambda a, b: 100 * _sign(a - b) / max(abs(b), 1e-7),
        x,
        t,
        reduction,
    )


def l2_loss(x, t, reduction="mean"):
    """One term per sample: the sum of its squared errors over every non-batch axis."""
    x = np.asarray(x, np.float64)
    t = np.asarray(t, np.float64)
    terms = np.zeros(x.shape[0])
    grad = np.zeros(x.shape)
    for n in range(x.shape[0]):
        for i in np.ndindex(x.shape[1:]):
            d = float(x[(n,) + i]) - float(t[(n,) + i])
            terms[n] += d * d
            grad[(n,) + i] = 2 * d
    return _reduce(terms, grad, reduction, x.shape[0])


def binary_cross_entropy(x, t, weight=None, reduction="mean"):
    """-w * (t*log(x) + (1 - t)*log(1 - x)), each log clamped at -100; PyTorch's gradient
    w * (x - t) / max(x*(1 - x), eps) with its eps = 1e-12f (a float32 constant, also used for
    float64)."""
    eps = float(np.float32(1e-12))
    x = np.asarray(x, np.float64)
    w = np.broadcast_to(np.ones(1) if weight is None else np.asarray(weight, np.float64), x.shape)

    def log_c(v):
        return -100.0 if v <= 0 else max(math.log(v), -100.0)

    terms = _elementwise(lambda a, b, c: -c * (b * log_c(a) + (1 - b) * log_c(1 - a)), x, t, w)
    grad = _elementwise(lambda a, b, c: c * (a - b) / max(a * (1 - a), eps), x, t, w)
    return _reduce(terms, grad, reduction, terms.size)


def binary_cross_entropy_with_logits(x, t, reduction="mean"):
    """-(t*log(sigmoid(x)) + (1 - t)*log(1 - sigmoid(x))) = log(1 + e^x) - t*x."""
    return _elementwise_loss(
        lambda a, b: max(a, 0.0) + math.log1p(math.exp(-abs(a))) - b * a,
        lambda a, b: _sigmoid1(a) - b,
        x,
        t,
        reduction,
    )


def cross_entropy(z, t, reduction="mean"):
    """Class indices t (N,): -log_softmax(z)[n, t[n]]; probabilities t (N, C):
    -sum_c t[n, c] * log_softmax(z)[n, c]."""
    z = np.asarray(z, np.float64)
    t = np.asarray(t)
    N, C = z.shape
    terms = np.zeros(N)
    grad = np.zeros((N, C))
    for n in range(N):
        row = [float(v) for v in z[n]]
        lse = _log_sum_exp(row)
        p = [math.exp(v - lse) for v in row]
        if t.ndim == 1:
            k = int(t[n])
            terms[n] = lse - row[k]
            for c in range(C):
                grad[n, c] = p[c] - (1.0 if c == k else 0.0)
        else:
            tn = [float(v) for v in t[n]]
            terms[n] = -sum(tc * (v - lse) for tc, v in zip(tn, row, strict=True))
            for c in range(C):
                grad[n, c] = p[c] * sum(tn) - tn[c]
    return _reduce(terms, grad, reduction, N)


def _class_positions(x):
    """Index tuples of the target positions of class scores x: () for (C,), else (n, d1..dk)
    (the class axis is axis 1, axis 0 unbatched); and a function giving the class-c index."""
    if x.ndim == 1:
        return [()], lambda pos, c: (c,)
    shape = (x.shape[0],) + x.shape[2:]
    return list(np.ndindex(shape)), lambda pos, c: (pos[0], c) + pos[1:]


def class_loss_options(
    x, t, kind, weight=None, ignore_index=-100, label_smoothing=0.0, reduction="mean"
):
    """torch's cross_entropy (kind 'ce', x logits) or nll_loss (kind 'nll', x log-probs) with
    every option, one target position at a time; loss value only (gradients by differences).

    Index targets: loss = (1-s) * w[t] * -lp[t] + s/C * sum_c w[c] * -lp[c], ignored positions 0,
    'mean' divides by the sum of w[t] over non-ignored positions. Probability targets (ce): the
    target becomes (1-s)*t + s/C, loss = -sum_c w[c] * t[c] * lp[c], 'mean' divides by the number
    of positions."""
    x = np.asarray(x, np.float64)
    t = np.asarray(t)
    C = x.shape[0] if x.ndim == 1 else x.shape[1]
    w = [1.0] * C if weight is None else [float(v) for v in weight]
    s = float(label_smoothing)
    positions, at = _class_positions(x)
    terms, denom = [], 0.0
    for pos in positions:
        row = [float(x[at(pos, c)]) for c in range(C)]
        if kind == "ce":
            lse = _log_sum_exp(row)
            lp = [v - lse for v in row]
        else:
            lp = row
        if np.issubdtype(t.dtype, np.floating):
            tc = [(1 - s) * float(t[at(pos, c)]) + s / C for c in range(C)]
            terms.append(-sum(w[c] * tc[c] * lp[c] for c in range(C)))
            denom += 1.0
            continue
        k = int(t[pos])
        if k == ignore_index:
            terms.append(0.0)
            continue
        term = -w[k] * lp[k]
        if s:
            term = (1 - s) * term + s / C * -sum(w[c] * lp[c] for c in range(C))
        terms.append(term)
        denom += w[k]
    terms = np.array(terms).reshape(() if x.ndim == 1 else (x.shape[0],) + x.shape[2:])
    if reduction == "none":
        return terms
    if reduction == "sum":
        return terms.sum()
    return terms.sum() / denom if denom else math.nan


def bce_with_logits_options(x, t, weight=None, pos_weight=None, reduction="mean"):
    """torch's binary_cross_entropy_with_logits with weight and pos_weight (both broadcast to
    x's shape), one element at a time: w * ((1-t)*x + (1 + (pw-1)*t) * log(1 + exp(-x)))."""
    x = np.asarray(x, np.float64)
    t = np.asarray(t, np.float64)
    w = np.broadcast_to(1.0 if weight is None else np.asarray(weight, np.float64), x.shape)
    pw = np.broadcast_to(1.0 if pos_weight is None else np.asarray(pos_weight, np.float64), x.shape)
    terms = np.zeros(x.shape)
    for i in np.ndindex(x.shape):
        xi, ti = float(x[i]), float(t[i])
        softplus_neg = max(-xi, 0.0) + math.log1p(math.exp(-abs(xi)))  # log(1 + exp(-x))
        terms[i] = float(w[i]) * ((1 - ti) * xi + (1 + (float(pw[i]) - 1) * ti) * softplus_neg)
    if reduction == "none":
        return terms
    return terms.sum() if reduction == "sum" else terms.sum() / terms.size


def nll_loss(lp, t, reduction="mean"):
    lp = np.asarray(lp, np.float64)
    N = lp.shape[0]
    terms = np.zeros(N)
    grad = np.zeros(lp.shape)
    for n in range(N):
        k = int(t[n])
        terms[n] = -lp[n, k]
        grad[n, k] = -1.0
    return _reduce(terms, grad, reduction, N)


# ---------------------------------------------------------------------------------------------
# optimizer oracle: PyTorch's documented update rules (the SGD, Adam and AdamW
# algorithm boxes), float64, one parameter element at a time.


class Optimizer:
    """step(grads) updates the float64 copies of the parameters and returns them."""

    def __init__(
        self,
        kind,
        params,
        lr,
        momentum=0.0,
        dampening=0.0,
        nesterov=False,
        betas=(0.9, 0.999),
        eps=1e-8,
        weight_decay=None,
        amsgrad=False,
    ):
        self.kind = kind
        self.params = [np.array(p, np.float64) for p in params]
        self.lr, self.momentum, self.dampening, self.nesterov = lr, momentum, dampening, nesterov
        self.b1, self.b2 = betas
        self.eps, self.amsgrad = eps, amsgrad
        self.wd = (0.01 if kind == "adamw" else 0.0) if weight_decay is None else weight_decay
        self.t = 0
        # per element: momentum buffer (SGD) or (m, v, vmax) (Adam)
        self.state = [np.zeros(p.shape + (3,)) for p in self.params]

    def step(self, grads):
        self.t += 1
        for p, st, g in zip(self.params, self.state, grads, strict=True):
            g = np.asarray(g, np.float64)
            for i in np.ndindex(p.shape):
                p[i] = self._one(float(p[i]), float(g[i]), st[i])
        return self.params

    def _one(self, p, g, st):
        lr, wd, t = self.lr, self.wd, self.t
        if self.kind == "sgd":
            g = g + wd * p
            if self.momentum:
                st[0] = g if t == 1 else self.momentum * st[0] + (1 - self.dampening) * g
                g = g + self.momentum * st[0] if self.nesterov else st[0]
            return p - lr * g
        if self.kind == "adamw":
            p = p * (1 - lr * wd)
        else:
            g = g + wd * p
        st[0] = self.b1 * st[0] + (1 - self.b1) * g
        st[1] = self.b2 * st[1] + (1 - self.b2) * g * g
        m_hat = st[0] / (1 - self.b1**t)
        if self.amsgrad:
            st[2] = max(st[2], st[1])
            v_hat = st[2] / (1 - self.b2**t)
        else:
            v_hat = st[1] / (1 - self.b2**t)
        return p - lr * m_hat / (math.sqrt(v_hat) + self.eps)


# ---------------------------------------------------------------------------------------------
# batch normalisation oracle (PyTorch's BatchNorm2d), one channel at a time with math.fsum


def batch_norm2d_train(x, weight, bias, eps=1e-5):
    """Training mode: (y, batch mean, biased variance, unbiased variance) per channel."""
    x = np.asarray(x, np.float64)
    N, C, H, W = x.shape
    y = np.zeros(x.shape)
    mean, var, uvar = np.zeros(C), np.zeros(C), np.zeros(C)
    m = N * H * W
    for c in range(C):
        vals = [float(v) for v in x[:, c].ravel()]
        mu = math.fsum(vals) / m
        ss = math.fsum((v - mu) ** 2 for v in vals)
        mean[c], var[c], uvar[c] = mu, ss / m, ss / (m - 1)
        y[:, c] = (x[:, c] - mu) / math.sqrt(var[c] + eps) * weight[c] + bias[c]
    return y, mean, var, uvar


def batch_norm2d_eval(x, weight, bias, running_mean, running_var, eps=1e-5):
    x = np.asarray(x, np.float64)
    y = np.zeros(x.shape)
    for c in range(x.shape[1]):
        y[:, c] = (x[:, c] - running_mean[c]) / math.sqrt(running_var[c] + eps) * weight[c] + bias[
            c
        ]
    return y


def batch_norm2d_train_backward(g, x, weight, eps=1e-5):
    """(dx, dweight, dbias) of training-mode batch normalisation:
    dx = weight / std * (g - mean(g) - xhat * mean(g * xhat)) per channel."""
    g = np.asarray(g, np.float64)
    x = np.asarray(x, np.float64)
    C = x.shape[1]
    dx = np.zeros(x.shape)
    dw, db = np.zeros(C), np.zeros(C)
    for c in range(C):
        xc, gc = x[:, c], g[:, c]
        m = xc.size
        mu = math.fsum(xc.ravel()) / m
        std = math.sqrt(math.fsum(((xc - mu) ** 2).ravel()) / m + eps)
        xhat = (xc - mu) / std
        gmean = math.fsum(gc.ravel()) / m
        gxmean = math.fsum((gc * xhat).ravel()) / m
        dx[:, c] = weight[c] / std * (gc - gmean - xhat * gxmean)
        dw[c] = math.fsum((gc * xhat).ravel())
        db[c] = math.fsum(gc.ravel())
    return dx, dw, db


# ---------------------------------------------------------------------------------------------
# transposed convolution oracle (float64 scatter loops, written from torch's definition, not
# from conv2d's gradient)


def conv_transpose2d(x, w, b=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """Every input pixel scatters weight[c, o] * x[n, c, h, w] to output row
    h*stride - padding + i*dilation (likewise columns); taps outside the output are dropped."""
    x, w = np.asarray(x, np.float64), np.asarray(w, np.float64)
    (sh, sw), (ph, pw), (oph, opw), (dh, dw) = (
        _pair(v) for v in (stride, padding, output_padding, dilation)
    )
    N, C, H, W = x.shape
    _, Og, kh, kw = w.shape
    OH = (H - 1) * sh - 2 * ph + dh * (kh - 1) + oph + 1
    OW = (W - 1) * sw - 2 * pw + dw * (kw - 1) + opw + 1
    Cg = C // groups
    y = np.zeros((N, Og * groups, OH, OW))
    for n in range(N):
        for c in range(C):
            g = c // Cg
            for h in range(H):
                for ww in range(W):
                    v = x[n, c, h, ww]
                    for o in range(Og):
                        for i in range(kh):
                            r = h * sh - ph + i * dh
                            if not 0 <= r < OH:
                                continue
                            for j in range(kw):
                                q = ww * sw - pw + j * dw
                                if 0 <= q < OW:
                                    y[n, g * Og + o, r, q] += v * w[c, o, i, j]
    if b is not None:
        y += np.asarray(b, np.float64)[None, :, None, None]
    return y


def conv_transpose2d_grads(gy, x, w, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """(grad_x, grad_w, grad_b) by the same loops: each scattered product's two factors."""
    gy, x, w = (np.asarray(a, np.float64) for a in (gy, x, w))
    (sh, sw), (ph, pw), (dh, dw) = (_pair(v) for v in (stride, padding, dilation))
    N, C, H, W = x.shape
    _, Og, kh, kw = w.shape
    OH, OW = gy.shape[2:]
    Cg = C // groups
    gx, gw = np.zeros_like(x), np.zeros_like(w)
    for n in range(N):
        for c in range(C):
            g = c // Cg
            for h in range(H):
                for ww in range(W):
                    for o in range(Og):
                        for i in range(kh):
                            r = h * sh - ph + i * dh
                            if not 0 <= r < OH:
                                continue
                            for j in range(kw):
                                q = ww * sw - pw + j * dw
                                if 0 <= q < OW:
                                    t = gy[n, g * Og + o, r, q]
                                    gx[n, c, h, ww] += t * w[c, o, i, j]
                                    gw[c, o, i, j] += t * x[n, c, h, ww]
    return gx, gw, gy.sum(axis=(0, 2, 3))
