"""Naive, obviously-correct float64 loops for the CNN ops of convext.functional's CNN ops.

Written from the definitions (torch's documented formulas), independently of the kernels and of
the functional layer. Slow; use on small shapes only.
"""

import math

import numpy as np


def batch_norm(x, running_mean, running_var, weight, bias, training, momentum, eps):
    """-> (y, new_running_mean, new_running_var); x is (N, C, ...)."""
    x = np.asarray(x, np.float64)
    N, C = x.shape[:2]
    y = np.empty_like(x)
    rm = None if running_mean is None else np.array(running_mean, np.float64)
    rv = None if running_var is None else np.array(running_var, np.float64)
    for c in range(C):
        vals = [v for v in x[:, c].reshape(-1)]
        n = len(vals)
        if training:
            m = math.fsum(vals) / n
            var = math.fsum((v - m) ** 2 for v in vals) / n
            if rm is not None:
                rm[c] = (1 - momentum) * rm[c] + momentum * m
                rv[c] = (1 - momentum) * rv[c] + momentum * var * n / (n - 1)
        else:
            m, var = float(running_mean[c]), float(running_var[c])
        wc = 1.0 if weight is None else float(weight[c])
        bc = 0.0 if bias is None else float(bias[c])
        y[:, c] = (x[:, c] - m) / math.sqrt(var + eps) * wc + bc
    return y, rm, rv


def hardtanh(x, lo, hi):
    return np.array([lo if v < lo else hi if v > hi else v for v in np.ravel(x)]).reshape(
        np.shape(x)
    )


def hardswish(x):
    out = []
    for v in np.ravel(x):
        out.append(0.0 if v <= -3 else v if v >= 3 else v * (v + 3) / 6)
    return np.array(out).reshape(np.shape(x))


def hardsigmoid(x):
    out = []
    for v in np.ravel(x):
        out.append(0.0 if v <= -3 else 1.0 if v >= 3 else v / 6 + 0.5)
    return np.array(out).reshape(np.shape(x))


def silu(x):
    return np.array([v / (1 + math.exp(-v)) if v > -700 else 0.0 for v in np.ravel(x)]).reshape(
        np.shape(x)
    )


def gelu(x, approximate="none"):
    out = []
    for v in np.ravel(x):
        if approximate == "none":
            out.append(v * 0.5 * (1 + math.erf(v / math.sqrt(2))))
        else:
            out.append(0.5 * v * (1 + math.tanh(math.sqrt(2 / math.pi) * (v + 0.044715 * v**3))))
    return np.array(out).reshape(np.shape(x))


def _adaptive_windows(n_in, n_out):
    return [(i * n_in // n_out, -(-(i + 1) * n_in // n_out)) for i in range(n_out)]


def adaptive_avg_pool2d(x, oh, ow):
    x = np.asarray(x, np.float64)
    H, W = x.shape[-2:]
    lead = x.shape[:-2]
    xp = x.reshape(-1, H, W)
    y = np.zeros((xp.shape[0], oh, ow))
    for p in range(xp.shape[0]):
        for i, (h0, h1) in enumerate(_adaptive_windows(H, oh)):
            for j, (w0, w1) in enumerate(_adaptive_windows(W, ow)):
                s = 0.0
                for h in range(h0, h1):
                    for w in range(w0, w1):
                        s += xp[p, h, w]
                y[p, i, j] = s / ((h1 - h0) * (w1 - w0))
    return y.reshape(lead + (oh, ow))


def adaptive_max_pool2d(x, oh, ow):
    """-> (y, indices); first maximum in row-major order wins (no NaN handling)."""
    x = np.asarray(x, np.float64)
    H, W = x.shape[-2:]
    lead = x.shape[:-2]
    xp = x.reshape(-1, H, W)
    y = np.zeros((xp.shape[0], oh, ow))
    idx = np.zeros((xp.shape[0], oh, ow), np.int64)
    for p in range(xp.shape[0]):
        for i, (h0, h1) in enumerate(_adaptive_windows(H, oh)):
            for j, (w0, w1) in enumerate(_adaptive_windows(W, ow)):
                best, bi = -math.inf, -1
                for h in range(h0, h1):
                    for w in range(w0, w1):
                        if xp[p, h, w] > best:
                            best, bi = xp[p, h, w], h * W + w
                y[p, i, j], idx[p, i, j] = best, bi
    return y.reshape(lead + (oh, ow)), idx.reshape(lead + (oh, ow))


def interpolate_nearest(x, oh, ow):
    """Source index floor(i * in / out) (size given), computed exactly in rationals."""
    x = np.asarray(x, np.float64)
    H, W = x.shape[-2:]
    y = np.zeros(x.shape[:-2] + (oh, ow))
    for i in range(oh):
        for j in range(ow):
            y[..., i, j] = x[..., min(i * H // oh, H - 1), min(j * W // ow, W - 1)]
    return y


def _linear_src(i, n_in, n_out, align_corners):
    if align_corners:
        src = i * (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
    else:
        src = max((i + 0.5) * n_in / n_out - 0.5, 0.0)
    i0 = min(int(math.floor(src)), n_in - 1)
    i1 = min(i0 + 1, n_in - 1)
    lam = min(max(src - i0, 0.0), 1.0)
    return i0, i1, lam


def interpolate_bilinear(x, oh, ow, align_corners):
    x = np.asarray(x, np.float64)
    H, W = x.shape[-2:]
    y = np.zeros(x.shape[:-2] + (oh, ow))
    for i in range(oh):
        h0, h1, a = _linear_src(i, H, oh, align_corners)
        for j in range(ow):
            w0, w1, b = _linear_src(j, W, ow, align_corners)
            y[..., i, j] = (1 - a) * ((1 - b) * x[..., h0, w0] + b * x[..., h0, w1]) + a * (
                (1 - b) * x[..., h1, w0] + b * x[..., h1, w1]
            )
    return y


def max_unpool2d(x, indices, oh, ow):
    x = np.asarray(x, np.float64)
    lead = x.shape[:-2]
    xp = x.reshape(-1, x.shape[-2] * x.shape[-1])
    ip = np.asarray(indices).reshape(xp.shape)
    y = np.zeros((xp.shape[0], oh * ow))
    for p in range(xp.shape[0]):
        for k in range(xp.shape[1]):
            y[p, ip[p, k]] = xp[p, k]
    return y.reshape(lead + (oh, ow))
