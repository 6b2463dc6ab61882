"""Inputs and closeness checks shared by the tests against the naive oracles (tests/functional,
tests/reliability) and their PyTorch twins (tests/parity): one definition for both.

NumPy and hypothesis only (no PyTorch).
"""

import numpy as np
from hypothesis import strategies as st

import reference
from convext import functional as F
from convext import layers as L
from convext._validation import MAX_EXTENT
from convext.functional._routes import PASS_ROUTES, accepts, conv_shape
from convext.functional.conv import _conv_setup

# ---------------------------------------------------------------------------- closeness


def f32_ok(out, ref64):
    """docs/reliability.md: max|out32 - ref64| <= 1e-5 * max(1, max|ref64|)."""
    return np.max(np.abs(out - ref64), initial=0) <= 1e-5 * max(
        1.0, np.max(np.abs(ref64), initial=0)
    )


def check_loss_grad(loss, grad, rl, rg, dtype):
    """A loss and its gradient against float64 references: rtol 1e-10 (float64), 1e-5 of the
    largest magnitude (float32)."""
    if dtype == np.float64:
        np.testing.assert_allclose(loss, rl, rtol=1e-10, atol=1e-14)
        np.testing.assert_allclose(grad, rg, rtol=1e-10, atol=1e-14)
    else:
        for a, r in ((loss, rl), (grad, rg)):
            assert np.max(np.abs(a - r)) <= 1e-5 * max(1.0, np.max(np.abs(r)))


def close_to_oracle(got, ref, dtype):
    """float64: rtol 1e-10; float32: 1e-5 * max(1, max|ref|); non-finite values exactly."""
    got = np.asarray(got)
    assert got.shape == ref.shape, (got.shape, ref.shape)
    assert got.dtype == dtype
    fin = np.isfinite(ref)  # -inf (empty max-pool windows) must match exactly
    np.testing.assert_array_equal(got[~fin], ref[~fin])
    got, ref = got[fin], ref[fin]
    if dtype == np.float64:
        np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-12)
    else:
        scale = max(1.0, float(np.abs(ref).max(initial=0.0)))
        assert float(np.abs(got.astype(np.float64) - ref).max(initial=0.0)) <= 1e-5 * scale


# ---------------------------------------------------------------------------- convolution


def depthwise_conv_shape(C, H, W, k=3, s=2, p=1, d=1, m=1):
    """The routes' ConvShape of a depthwise layer on a 1 x C x H x W input: k x k windows at
    stride s, padding p, dilation d, m filters per channel."""
    x = np.empty((1, C, H, W))
    w = np.empty((C * m, 1, k, k))
    g = _conv_setup(x, w, None, s, p, d, C, fn="t")[4]
    return conv_shape(x.shape, w.shape, g)


# the kernels' epilogue activation codes the depthwise tests fuse (ACT_* of _conv.pyx): ReLU,
# ReLU6, Hardtanh(a0, a1), LeakyReLU(a0)
EPILOGUE_ACTS = [(1, 0.0, 0.0), (2, 0.0, 0.0), (4, -0.5, 0.75), (3, 0.1, 0.0)]


def epilogue_by_hand(plain, act, a0, a1):
    """A sum activated as an EPILOGUE_ACTS code says, with NumPy's operations in its dtype."""
    t = plain.dtype.type
    if act == 1:
        return np.maximum(plain, 0)
    if act == 2:
        return np.minimum(np.maximum(plain, 0), 6)
    if act == 4:
        return np.minimum(np.maximum(plain, t(a0)), t(a1))
    return np.where(plain > 0, plain, t(a0) * plain)


def _pad_total(p):
    return p if isinstance(p, str) else (p if isinstance(p, tuple) else (p, p))


@st.composite
def conv_cases(draw, max_batch=3):
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    depthwise = draw(st.booleans()) and groups > 1
    cg = 1 if depthwise else draw(st.integers(1, 3))
    fg = draw(st.integers(1, 3))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    dh, dw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    padding = draw(
        st.one_of(
            st.integers(0, 2),
            st.tuples(st.integers(0, 2), st.integers(0, 2)),
            st.sampled_from(["valid", "same"]),
        )
    )
    if padding == "same":
        stride = 1
    else:
        stride = draw(st.one_of(st.integers(1, 4), st.tuples(st.integers(1, 4), st.integers(1, 4))))
    ph, pw = (0, 0) if padding in ("valid", "same") else _pad_total(padding)
    min_h = max(1, dh * (kh - 1) + 1 - 2 * ph)
    min_w = max(1, dw * (kw - 1) + 1 - 2 * pw)
    H = draw(st.integers(min_h, min_h + 6))
    W = draw(st.integers(min_w, min_w + 6))
    N = draw(st.integers(0, max_batch))
    seed = draw(st.integers(0, 2**31))
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, cg * groups, H, W))
    w = rng.standard_normal((fg * groups, cg, kh, kw))
    b = rng.standard_normal(fg * groups) if draw(st.booleans()) else None
    return x, w, b, dict(stride=stride, padding=padding, dilation=(dh, dw), groups=groups)


NONFINITE_CONV = [  # (where, index) of an inf in the input or the weight, x shape, w shape, kw
    ("x", (0, 0, 0, 4), (1, 1, 2, 5), (1, 1, 1, 3), {}),
    ("w", (0, 0, 0, 0), (1, 1, 2, 5), (1, 1, 1, 3), {}),
    ("w", (0, 0, 0, 0), (1, 1, 4, 4), (1, 1, 3, 3), dict(padding=1, stride=2)),
    ("w", (1, 0, 0, 0), (1, 2, 4, 5), (2, 1, 3, 3), dict(padding=1, stride=2, groups=2)),
    ("x", (0, 1, 2, 3), (1, 2, 5, 6), (2, 1, 3, 3), dict(padding=1, groups=2)),
    ("w", (0, 0, 1, 1), (1, 3, 5, 5), (4, 3, 3, 3), dict(padding=1)),
]


# ---------------------------------------------------------------------------- pooling

# kernel, stride, padding, dilation, ceil_mode (non-square where it matters)
MAX_POOL_CASES = [
    (2, 2, 0, 1, False),
    (3, 2, 1, 1, False),
    (3, 2, 1, 1, True),
    ((2, 3), (1, 2), (1, 0), 1, False),
    (3, 1, 1, 2, False),
    ((3, 2), (2, 3), (1, 1), (2, 1), True),
    (2, 3, 0, 1, True),  # stride > kernel
    (4, 1, 2, 1, False),
]
# kernel, stride, padding, ceil_mode
AVG_POOL_CASES = [
    (2, 2, 0, False),
    (3, 2, 1, False),
    (3, 2, 1, True),
    ((2, 3), (1, 2), (1, 0), True),
    (3, 3, 1, True),
    (2, 3, 0, True),
    (4, 1, 2, False),
]
# Lp pooling: (kernel, stride, ceil_mode) and the norms p
LP_POOL_CASES = [(2, 2, False), (3, 2, True), ((2, 3), 1, False)]
LP_NORMS = [1, 2, 3, 1.5]


def _pad_or_int(draw, a, b):
    """padding as an int (when both equal) or a pair."""
    return a if a == b and draw(st.booleans()) else (a, b)


@st.composite
def pool_geometry(draw, dilation=True, padding=True):
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    sh = draw(st.integers(1, 5))
    sw = draw(st.integers(1, 5))
    stride = None if draw(st.integers(0, 5)) == 0 else _pad_or_int(draw, sh, sw)
    dh, dw = (draw(st.integers(1, 3)), draw(st.integers(1, 3))) if dilation else (1, 1)
    ph, pw = (draw(st.integers(0, kh // 2)), draw(st.integers(0, kw // 2))) if padding else (0, 0)
    ceil = draw(st.booleans())
    n = draw(st.integers(0, 3))
    c = draw(st.integers(1, 3))
    h = draw(st.integers(max(1, dh * (kh - 1) + 1 - 2 * ph), 11))
    w = draw(st.integers(max(1, dw * (kw - 1) + 1 - 2 * pw), 11))
    unbatched = draw(st.integers(0, 7)) == 0
    kernel = kh if kh == kw and draw(st.booleans()) else (kh, kw)
    return dict(
        shape=(c, h, w) if unbatched else (n, c, h, w),
        kernel_size=kernel,
        stride=stride,
        padding=_pad_or_int(draw, ph, pw),
        dilation=(dh, dw),
        ceil_mode=ceil,
        seed=draw(st.integers(0, 2**31)),
    )


def b4(a):
    """A batch axis for unbatched (C, H, W) arrays."""
    return a if a.ndim == 4 else a[None]


# ---------------------------------------------------------------------------- activations, losses

_RNG = np.random.default_rng(7)


def activation_input(shape, dtype):
    """Away from the kinks at 0 (and softplus's threshold), for finite differences."""
    x = _RNG.standard_normal(shape) * 3
    x[np.abs(x) < 0.05] += 0.2
    return x.astype(dtype)


def loss_pair(shape=(4, 3, 2)):
    x = _RNG.standard_normal(shape)
    t = _RNG.standard_normal(shape)
    t[np.abs(x - t) < 0.05] += 0.3  # away from |.|'s kink
    return x, t


def loss_pos_pair(shape=(4, 3)):
    return _RNG.random(shape) * 3, _RNG.random(shape) * 3


def loss_probs(shape=(4, 3)):
    return _RNG.uniform(0.05, 0.95, shape), _RNG.random(shape)


# ---------------------------------------------------------------------------- layers


def lenet(dtype=np.float32, rng=0):
    return L.Sequential(
        L.Conv2D(1, 6, 5, padding=2, dtype=dtype),
        L.ReLU(),
        L.MaxPool2D(2),
        L.Conv2D(6, 16, 5, dtype=dtype),
        L.ReLU(),
        L.MaxPool2D(2),
        L.Flatten(),
        L.Dense(400, 120, dtype=dtype),
        L.ReLU(),
        L.Dense(120, 84, dtype=dtype),
        L.ReLU(),
        L.Dense(84, 10, dtype=dtype),
    ).reset_parameters(rng)


def assert_close32(got, ref64):
    ref64 = np.asarray(ref64, np.float64)
    tol = 1e-5 * max(1.0, float(np.max(np.abs(ref64))))
    assert got.shape == ref64.shape
    assert float(np.max(np.abs(got.astype(np.float64) - ref64))) <= tol


def assert_close64(got, ref):
    ref = np.asarray(ref, np.float64)
    assert got.dtype == np.float64 and got.shape == ref.shape
    assert float(np.max(np.abs(got - ref))) <= 1e-10 * max(1.0, float(np.max(np.abs(ref))))


# ---------------------------------------------------------------------------- optimizers

# (optimizer, keyword arguments): every option of SGD, Adam and AdamW
OPTIMIZER_CASES = [
    ("sgd", dict(lr=0.1)),
    ("sgd", dict(lr=0.05, momentum=0.9)),
    ("sgd", dict(lr=0.05, momentum=0.9, dampening=0.3, weight_decay=0.01)),
    ("sgd", dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.1)),
    ("adam", dict(lr=0.01)),
    ("adam", dict(lr=0.02, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1)),
    ("adam", dict(lr=0.01, amsgrad=True)),
    ("adamw", dict(lr=0.01)),
    ("adamw", dict(lr=0.03, weight_decay=0.2, amsgrad=True)),
]


# ---------------------------------------------------------------------------- large geometry
# (tests/reliability/test_reliability_geometry.py against the naive loops,
# tests/parity/test_parity_geometry.py against torch)


def routes_for(x, w, kw):
    """{pass: [routes that accept this geometry]} for conv2d(x, w, **kw)."""
    x4, w4, _, _, g = F.conv._conv_setup(
        x,
        w,
        None,
        kw.get("stride", 1),
        kw.get("padding", 0),
        kw.get("dilation", 1),
        kw.get("groups", 1),
    )
    s = conv_shape(x4.shape, w4.shape, g)
    return {p: [r for r in rs if accepts(r, p, s)] for p, rs in PASS_ROUTES.items()}


# large but meaningful values of conv2d
MEANINGFUL_CONV = [
    dict(stride=10**6),
    dict(padding=50),
    dict(stride=10**6, padding=10**6),
    dict(stride=(10**6, 1), padding=(10**6 - 1, 1)),
    dict(stride=(1, 2**39), padding=(0, 2**39 - 3)),
    dict(stride=MAX_EXTENT, padding=(1, 2)),
    dict(stride=2**39, padding=2**38, dilation=(1, 3)),
    dict(dilation=(10**6, 1), padding="same"),
    dict(dilation=(2**38, 2), padding=(2**37, 1), stride=(2**37, 1)),
    dict(dilation=(3, 2**37), padding=(1, 2**37 - 1), stride=(1, 2**36)),
]

# (name, N, C, F, groups): depthwise (C/G == F/G == 1), direct (few channels, N*G >= 4 for the
# weight gradient) and GEMM (Cg = 300 is beyond the direct route's limit); each geometry also
# runs through every other route that accepts it
ROUTE_SHAPES = [("depthwise", 2, 3, 3, 3), ("direct", 4, 2, 3, 1), ("gemm", 2, 300, 2, 1)]


POOL_LARGE = [
    ("max", dict(kernel_size=2, stride=10**6)),
    ("max", dict(kernel_size=10**6, padding=5 * 10**5)),
    ("max", dict(kernel_size=(3, 2), stride=(MAX_EXTENT, 1), padding=1, dilation=(1, 2))),
    ("max", dict(kernel_size=2, stride=10**6, dilation=10**5, ceil_mode=True)),
    ("max", dict(kernel_size=3, stride=2**39, padding=1, ceil_mode=True)),
    ("avg", dict(kernel_size=2, stride=10**6)),
    ("avg", dict(kernel_size=10**6, padding=5 * 10**5)),
    ("avg", dict(kernel_size=10**6, padding=5 * 10**5, count_include_pad=False)),
    ("avg", dict(kernel_size=3, stride=2**39, padding=1, ceil_mode=True)),
    ("avg", dict(kernel_size=2, divisor_override=MAX_EXTENT)),
    ("lp", dict(kernel_size=2, stride=10**6)),
    ("lp", dict(kernel_size=(4, 2**30), stride=(1, 2**39), ceil_mode=True)),
]


def pool_large(kind, kw, hw):
    """Run pooling ``kind`` with ``kw`` on a (2, 3) + hw input: None when no window fits (a
    ValueError), else (x, y, gy, gx, idx) after checking them against the naive loops."""
    rng = np.random.default_rng(3)
    x = np.abs(rng.standard_normal((2, 3) + hw)) + 0.25
    fwd = {"max": F.max_pool2d, "avg": F.avg_pool2d, "lp": lambda x, **k: F.lp_pool2d(x, 2, **k)}[
        kind
    ]
    try:
        fwd(x, **kw)
    except ValueError as e:  # no window fits
        assert "larger than the padded input" in str(e)
        return None
    idx = None
    if kind == "max":
        y, idx = F.max_pool2d(x, return_indices=True, **kw)
        gy = rng.standard_normal(y.shape)
        gx = F.max_pool2d_backward(gy, idx, x.shape)
        ry, ridx = reference.max_pool2d(x, **kw)
        np.testing.assert_array_equal(idx, ridx)
        rgx = reference.max_pool2d_backward(gy, ridx, x.shape)
    elif kind == "avg":
        y = F.avg_pool2d(x, **kw)
        gy = rng.standard_normal(y.shape)
        gx = F.avg_pool2d_backward(gy, x.shape, **kw)
        ry, rgx = reference.avg_pool2d(x, **kw), reference.avg_pool2d_backward(gy, x.shape, **kw)
    else:
        y = F.lp_pool2d(x, 2, **kw)
        gy = rng.standard_normal(y.shape)
        gx = F.lp_pool2d_backward(gy, x, y, 2, **kw)
        ry, rgx = reference.lp_pool2d(x, 2, **kw), None
    np.testing.assert_allclose(y, ry, rtol=1e-10, atol=1e-300)
    if rgx is not None:
        np.testing.assert_allclose(gx, rgx, rtol=1e-10, atol=1e-300)
    return x, y, gy, gx, idx


@st.composite
def conv_transpose_cases(draw, max_batch=3):
    """(x, weight (C_in, C_out/groups, kH, kW), bias or None, kwargs) of a small transposed
    convolution: groups (depthwise included), stride, padding, dilation and output_padding
    (below the stride or the dilation, both allowed) per axis; the output is non-empty."""
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    depthwise = draw(st.booleans()) and groups > 1
    cg = 1 if depthwise else draw(st.integers(1, 3))
    og = 1 if depthwise else draw(st.integers(1, 3))
    k = [draw(st.integers(1, 4)) for _ in range(2)]
    s = [draw(st.integers(1, 3)) for _ in range(2)]
    d = [draw(st.integers(1, 3)) for _ in range(2)]
    hw = [draw(st.integers(1, 5)) for _ in range(2)]
    op = [draw(st.integers(0, max(a, b) - 1)) for a, b in zip(s, d, strict=True)]
    full = [
        (n - 1) * a + e * (kk - 1) + o + 1 for n, a, e, kk, o in zip(hw, s, d, k, op, strict=True)
    ]
    p = [draw(st.integers(0, (f - 1) // 2)) for f in full]
    N = draw(st.integers(0, max_batch))
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    x = rng.standard_normal((N, cg * groups, *hw))
    w = rng.standard_normal((cg * groups, og, *k))
    b = rng.standard_normal(og * groups) if draw(st.booleans()) else None
    return (
        x,
        w,
        b,
        dict(
            stride=tuple(s),
            padding=tuple(p),
            output_padding=tuple(op),
            groups=groups,
            dilation=tuple(d),
        ),
    )
