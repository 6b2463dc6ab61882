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


def zero_pad(x, pads_h, pads_w):
    N, C, H, W = x.shape
    xp = np.zeros((N, C, H + pads_h[0] + pads_h[1], W + pads_w[0] + pads_w[1]))
    xp[:, :, pads_h[0]:pads_h[0] + H, pads_w[0]:pads_w[0] + W] = x
    return xp


def conv2d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    """y[n, f, oh, ow] = b[f] + sum_{c,i,j} w[f, c, i, j] * xpad[n, g*Cg + c, oh*s + i*d, ow*s + j*d]."""
    x = np.asarray(x, np.float64)
    w = np.asarray(w, np.float64)
    N, C, H, W = x.shape
    F, Cg, kh, kw = w.shape
    sh, sw = _pair(stride)
    dh, dw = _pair(dilation)
    padh, padw = _pads(padding, kh, kw, dh, dw)
    xp = zero_pad(x, padh, padw)
    Hp, Wp = xp.shape[2:]
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
                        patch = xp[:, g * Cg:(g + 1) * Cg, oh * sh + i * dh, ow * sw + j * dw]
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
    xp = zero_pad(x, padh, padw)
    gxp = np.zeros_like(xp)
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
                        r, c = oh * sh + i * dh, ow * sw + j * dw_
                        gxp[:, cs, r, c] += go[:, None] * w[f, :, i, j][None, :]
                        gw[f, :, i, j] += go @ xp[:, cs, r, c]
    gx = gxp[:, :, padh[0]:padh[0] + H, padw[0]:padw[0] + W]
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
