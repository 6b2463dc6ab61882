"""convext.optimize_for_inference and the convolution epilogue it relies on.

Oracles: the naive float64 convolution of tests/reference.py with activations written here in
float64 NumPy (the epilogue kernel); the original model in eval mode (the optimized model), in
float64 (rtol 1e-10) and in float32 against the float64 model (the optimized error no larger
than the original's, up to a small margin: folding BatchNorm rounds differently)."""

import contextlib
import math
import threading

import numpy as np
import pytest

import convext
import reference as ref
from convext import inference, models
from convext._kernels import _conv
from convext.inference import (
    ACT_ELU,
    ACT_GELU,
    ACT_GELU_TANH,
    ACT_HARDSIGMOID,
    ACT_HARDSWISH,
    ACT_HARDTANH,
    ACT_LEAKY,
    ACT_NONE,
    ACT_RELU,
    ACT_RELU6,
    ACT_SIGMOID,
    ACT_SILU,
    ACT_TANH,
)
from convext.layers import (
    ELU,
    GELU,
    AdaptiveAvgPool2D,
    AvgPool2D,
    BatchNorm2D,
    Concat,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    GlobalAvgPool2D,
    GraphBuilder,
    Hardsigmoid,
    Hardswish,
    Hardtanh,
    Identity,
    Layer,
    LeakyReLU,
    MaxPool2D,
    ReLU,
    ReLU6,
    Residual,
    Sequential,
    Sigmoid,
    SiLU,
    Tanh,
)
from convext.layers.graph import Add

# --- the epilogue kernel against a naive oracle ------------------------------------------------


def _erf(v):
    import math

    return np.vectorize(math.erf)(v)


# (code, a0, a1, float64 oracle)
ACTS = [
    (ACT_NONE, 0, 0, lambda v: v),
    (ACT_RELU, 0, 0, lambda v: np.where(v < 0, 0, v)),
    (ACT_RELU6, 0, 0, lambda v: np.clip(v, 0, 6)),
    (ACT_LEAKY, 0.1, 0, lambda v: np.where(v < 0, 0.1 * v, v)),
    (ACT_HARDTANH, -0.5, 0.7, lambda v: np.clip(v, -0.5, 0.7)),
    (ACT_ELU, 1.3, 0, lambda v: np.where(v > 0, v, 1.3 * np.expm1(np.minimum(v, 0)))),
    (ACT_SIGMOID, 0, 0, lambda v: 1 / (1 + np.exp(-v))),
    (ACT_TANH, 0, 0, np.tanh),
    (ACT_SILU, 0, 0, lambda v: v / (1 + np.exp(-v))),
    (ACT_HARDSWISH, 0, 0, lambda v: v * np.clip(v + 3, 0, 6) / 6),
    (ACT_HARDSIGMOID, 0, 0, lambda v: np.clip(v + 3, 0, 6) / 6),
    (ACT_GELU, 0, 0, lambda v: 0.5 * v * (1 + _erf(v / np.sqrt(2)))),
    (
        ACT_GELU_TANH,
        0,
        0,
        lambda v: 0.5 * v * (1 + np.tanh(np.sqrt(2 / np.pi) * (v + 0.044715 * v**3))),
    ),
]

# (N, C, H, F, k, stride, pad, route): small planes (several images per GEMM), batch 1 (filter
# blocks), the direct route, and a plane large enough for several pixel tiles
GEOMS = [
    (5, 16, 5, 24, 3, 1, 1, "gemm"),
    (1, 8, 9, 40, 3, 2, 1, "gemm"),
    (2, 6, 24, 20, 1, 1, 0, "gemm"),
    (3, 4, 10, 12, 3, 1, 1, "direct"),
]


def _tol(dtype, scale):
    return (1e-10 if dtype == np.float64 else 1e-5) * max(1.0, scale)


def _run_kernel(route, x, w, b, s, p, residual, code, a0, a1, n_threads, groups=1):
    OH = (x.shape[2] + 2 * p - w.shape[2]) // s + 1
    OW = (x.shape[3] + 2 * p - w.shape[3]) // s + 1
    y = np.full((x.shape[0], w.shape[0], OH, OW), np.nan, x.dtype)
    kernel = getattr(_conv, f"conv2d_forward_{route}")
    kernel(x, w, b, y, s, s, p, p, 1, 1, groups, n_threads, residual, code, a0, a1)
    return y


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("geom", GEOMS)
@pytest.mark.parametrize("with_residual", [False, True])
def test_epilogue_matches_naive_oracle(dtype, geom, with_residual):
    N, C, H, F, k, s, p, route = geom
    rng = np.random.default_rng(1)
    x = rng.standard_normal((N, C, H, H)).astype(dtype)
    w = (rng.standard_normal((F, C, k, k)) / np.sqrt(C * k * k)).astype(dtype)
    b = rng.standard_normal(F).astype(dtype)
    conv = ref.conv2d(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64), s, p)
    r = rng.standard_normal(conv.shape).astype(dtype) if with_residual else None
    pre = conv + (0 if r is None else r.astype(np.float64))
    for code, a0, a1, oracle in ACTS:
        want = oracle(pre)
        got = _run_kernel(route, x, w, b, s, p, r, code, a0, a1, 2)
        assert got.dtype == dtype
        err = np.abs(got - want).max()
        assert err <= _tol(dtype, np.abs(want).max()), (code, err)
        # and the same bits on one thread
        one = _run_kernel(route, x, w, b, s, p, r, code, a0, a1, 1)
        np.testing.assert_array_equal(got, one)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_standalone_epilogue_matches_oracle_and_keeps_nan(dtype):
    rng = np.random.default_rng(2)
    y0 = (rng.standard_normal((2, 3, 5, 7)) * 4).astype(dtype)
    y0[0, 0, 0, :3] = np.nan
    r = rng.standard_normal(y0.shape).astype(dtype)
    for code, a0, a1, oracle in ACTS:
        for res in (None, r):
            y = y0.copy()
            _conv.conv2d_epilogue(y, res, code, a0, a1, 2)
            want = oracle(y0.astype(np.float64) + (0 if res is None else res))
            np.testing.assert_array_equal(np.isnan(y), np.isnan(want))
            ok = ~np.isnan(want)
            assert np.abs(y[ok] - want[ok]).max() <= _tol(dtype, np.abs(want[ok]).max())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("slope", [0.1, -0.5, 0.0, 3.0])
def test_leaky_epilogue_is_the_product_below_zero_bit_for_bit(dtype, slope):
    """LeakyReLU's epilogue multiplies every element by the slope or by 1 (a vector blend):
    the bits of v * slope below zero and of v itself elsewhere, signed zeros, infinities and
    NaN included, against NumPy's select in the input's dtype."""
    rng = np.random.default_rng(4)
    y0 = rng.standard_normal((2, 3, 9, 37)).astype(dtype)
    specials = [np.nan, -np.inf, np.inf, -0.0, 0.0, np.finfo(dtype).tiny / 4, -1e-30, 1e30]
    y0.flat[: len(specials)] = specials
    y = y0.copy()
    _conv.conv2d_epilogue(y, None, ACT_LEAKY, slope, 0, 2)
    want = np.where(y0 < 0, y0 * dtype(slope), y0)
    np.testing.assert_array_equal(y.view(np.uint8), want.view(np.uint8))


# (N, C, H, W, multiplier, k, stride, pad): planes narrower than the depthwise kernel's
# DW_FLAT_OW (64; computed flat, then copied out) and wider ones (written in place), stride 2,
# batch 1, a channel multiplier of 2 and a 5x5 kernel
DW_GEOMS = [
    (2, 5, 9, 11, 1, 3, 1, 1),
    (1, 4, 14, 14, 1, 3, 2, 1),
    (2, 3, 6, 70, 1, 3, 1, 1),
    (1, 2, 5, 140, 1, 3, 2, 1),
    (2, 3, 8, 8, 2, 5, 1, 2),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("geom", DW_GEOMS)
@pytest.mark.parametrize("with_residual", [False, True])
def test_depthwise_epilogue_matches_naive_oracle(dtype, geom, with_residual):
    """The depthwise forward's epilogue: each activation, with and without a residual, against
    the naive oracle; the same bits on 1 and 2 threads, image by image, and as the unfused
    kernel followed by the separate conv2d_epilogue pass."""
    N, C, H, W, m, k, s, p = geom
    rng = np.random.default_rng(11)
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    w = (rng.standard_normal((C * m, 1, k, k)) / k).astype(dtype)
    b = rng.standard_normal(C * m).astype(dtype)
    conv = ref.conv2d(
        x.astype(np.float64), w.astype(np.float64), b.astype(np.float64), s, p, groups=C
    )
    r = rng.standard_normal(conv.shape).astype(dtype) * 2 if with_residual else None
    pre = conv + (0 if r is None else r.astype(np.float64))
    plain = _run_kernel("depthwise", x, w, b, s, p, None, ACT_NONE, 0, 0, 2, groups=C)
    for code, a0, a1, oracle in ACTS:
        want = oracle(pre)
        got = _run_kernel("depthwise", x, w, b, s, p, r, code, a0, a1, 2, groups=C)
        assert got.dtype == dtype and got.shape == want.shape
        err = np.abs(got - want).max()
        assert err <= _tol(dtype, np.abs(want).max()), (code, err)
        one = _run_kernel("depthwise", x, w, b, s, p, r, code, a0, a1, 1, groups=C)
        np.testing.assert_array_equal(got, one)
        for n in range(N):
            rn = None if r is None else r[n : n + 1]
            alone = _run_kernel(
                "depthwise", x[n : n + 1], w, b, s, p, rn, code, a0, a1, 2, groups=C
            )
            np.testing.assert_array_equal(got[n : n + 1], alone)
        separate = plain.copy()
        _conv.conv2d_epilogue(separate, r, code, a0, a1, 2)
        np.testing.assert_array_equal(got, separate)


def test_gemm_route_is_batch_and_thread_independent():
    """Images side by side in the GEMM's columns (small planes) and filter blocks (batch 1)
    leave every output bitwise as computed one image at a time on one thread."""
    rng = np.random.default_rng(3)
    for C, H, F, k, p in [(64, 7, 64, 3, 1), (96, 7, 160, 1, 0), (32, 4, 48, 3, 1)]:
        x = rng.standard_normal((9, C, H, H)).astype(np.float32)
        w = (rng.standard_normal((F, C, k, k)) / np.sqrt(C * k * k)).astype(np.float32)
        b = rng.standard_normal(F).astype(np.float32)
        whole = _run_kernel("gemm", x, w, b, 1, p, None, ACT_RELU, 0, 0, 2)
        for n in range(x.shape[0]):
            one = _run_kernel("gemm", x[n : n + 1], w, b, 1, p, None, ACT_RELU, 0, 0, 1)
            np.testing.assert_array_equal(whole[n : n + 1], one)
        np.testing.assert_array_equal(
            whole, _run_kernel("gemm", x, w, b, 1, p, None, ACT_RELU, 0, 0, 1)
        )


# --- the optimized model ----------------------------------------------------------------------


def _plan_for(opt, batch):
    """``opt``'s plan for inputs of ``batch`` images (it may also hold one for a batch of one
    image per thread, from which it decides whether a larger batch runs in chunks)."""
    (plan,) = [
        entry
        for (signature, _threads), entry in opt._local.plans.items()
        if isinstance(entry, inference._Plan) and signature[0][0][0] == batch
    ]
    return plan


def _randomize(model, seed=0):
    """BatchNorm statistics and affine parameters away from their defaults (a fold that does
    nothing would prove nothing)."""
    rng = np.random.default_rng(seed)
    for _, layer in model.named_layers():
        if isinstance(layer, BatchNorm2D):
            C = layer.num_features
            layer._buffers["running_mean"][:] = rng.standard_normal(C) * 0.2
            layer._buffers["running_var"][:] = rng.uniform(0.5, 2.0, C)
            if layer.affine:
                layer._params["weight"][:] = rng.uniform(0.5, 1.5, C)
                layer._params["bias"][:] = rng.standard_normal(C) * 0.2
    return model.eval()


def _check_close(make, x):
    """The optimized model against the original (``make(dtype)`` builds it): float64 within
    1e-10; float32 not worse against the float64 model than the original float32 model is
    (plus a small margin). Both dtypes hold the same (randomised) numbers."""
    m64 = _randomize(make(np.float64))
    m32 = make(np.float32).eval()
    m32.load_state_dict(m64.state_dict())
    want64 = m64(x.astype(np.float64))
    got64 = convext.optimize_for_inference(m64)(x.astype(np.float64))
    scale = max(1.0, float(np.abs(want64).max()))
    assert got64.dtype == np.float64
    assert np.abs(got64 - want64).max() <= 1e-10 * scale
    plain32 = m32(x.astype(np.float32))
    opt = convext.optimize_for_inference(m32)
    got32 = opt(x.astype(np.float32))
    assert got32.dtype == np.float32 and got32.shape == want64.shape
    err_plain = np.abs(plain32 - want64).max()
    err_opt = np.abs(got32 - want64).max()
    assert err_opt <= 2 * err_plain + 1e-6 * scale, (err_opt, err_plain)
    return opt, got32


ZOO = [
    ("resnet18", dict(num_classes=10), (3, 32, 32)),
    ("resnet34", dict(num_classes=10), (3, 32, 32)),
    ("resnet50", dict(num_classes=10), (3, 32, 32)),
    ("mobilenet_v2", dict(num_classes=10), (3, 32, 32)),
    ("vgg11", dict(num_classes=10), (3, 32, 32)),
    ("lenet5", dict(), (1, 28, 28)),
    ("unet", dict(), (3, 32, 32)),
]


@pytest.mark.parametrize("name,kw,shape", ZOO, ids=[z[0] for z in ZOO])
def test_zoo_models_match_the_original(name, kw, shape):
    rng = np.random.default_rng(4)
    x8 = rng.standard_normal((8,) + shape)
    opt, got8 = _check_close(lambda dt: getattr(models, name)(rng=0, dtype=dt, **kw), x8)
    # batch 1 gives the same bits as the same image in a batch of 8
    x32 = x8.astype(np.float32)
    np.testing.assert_array_equal(opt(x32[3:4]), got8[3:4])
    # and the thread count changes nothing
    before = convext.get_num_threads()
    try:
        convext.set_num_threads(1)
        one = opt(x32)
    finally:
        convext.set_num_threads(before)
    np.testing.assert_array_equal(one, got8)


def test_batchnorm_and_activations_are_fused_into_the_convolutions():
    model = _randomize(models.resnet18(num_classes=10, rng=0))
    opt = convext.optimize_for_inference(model)
    opt(np.zeros((1, 3, 32, 32), np.float32))
    plan = _plan_for(opt, 1)
    kinds = [type(fn).__name__ for fn, _, _ in plan.steps]
    # conv1+bn1+relu, maxpool, 8 blocks of 2 (3 with a downsample), pool, flatten, fc
    assert "BatchNorm2D" not in kinds and "ReLU" not in kinds
    assert len(plan.steps) == 1 + 1 + 8 * 2 + 3 + 3


ACT_LAYERS = [
    ReLU,
    ReLU6,
    lambda: LeakyReLU(0.2),
    lambda: Hardtanh(-1.5, 2.0),
    lambda: ELU(0.7),
    Sigmoid,
    Tanh,
    SiLU,
    Hardswish,
    Hardsigmoid,
    GELU,
    lambda: GELU("tanh"),
]


@pytest.mark.parametrize("act", ACT_LAYERS)
def test_every_activation_after_conv_bn(act):
    def make(dt):
        return Sequential(
            Conv2D(4, 6, 3, padding=1, dtype=dt, rng=1), BatchNorm2D(6, dtype=dt), act(),
            MaxPool2D(2),
        )  # fmt: skip

    _check_close(make, np.random.default_rng(5).standard_normal((3, 4, 8, 8)) * 2)


class _Custom(Layer):
    """A composite with attribute children and its own forward."""

    def __init__(self, dt):
        super().__init__()
        self.stem = Sequential(
            Conv2D(3, 8, 3, padding=1, dtype=dt, rng=2), BatchNorm2D(8, dtype=dt), ReLU()
        )
        self.a = Sequential(Conv2D(8, 8, 1, dtype=dt, rng=3), BatchNorm2D(8, dtype=dt))
        self.b = Conv2D(8, 8, 3, padding=1, groups=8, dtype=dt, rng=4)
        self.head = Sequential(Flatten(), Dense(8 * 6 * 6, 5, dtype=dt, rng=5))

    def forward(self, x):
        h = self.stem(x)
        return self.head(np.maximum(self.a(h), self.b(h)))


def _composite(dt):
    def cbn(cin, cout, k, groups=1, bias=True, seed=0):
        return [
            Conv2D(cin, cout, k, padding=k // 2, groups=groups, bias=bias, dtype=dt, rng=seed),
            BatchNorm2D(cout, dtype=dt),
        ]

    block = Residual(
        Sequential(*cbn(8, 8, 3, bias=False, seed=7), ReLU6(), *cbn(8, 16, 3, seed=8)),
        Sequential(*cbn(8, 16, 1, bias=False, seed=9)),
    )
    return Sequential(
        *cbn(3, 8, 3, seed=10),
        ReLU(),
        block,
        ReLU(),
        Residual(Sequential(*cbn(16, 16, 3, groups=16, seed=11))),
        Concat(Sequential(Conv2D(16, 4, 1, dtype=dt, rng=12), SiLU()), Identity(), Dropout(0.5)),
        BatchNorm2D(36, dtype=dt),
        Tanh(),
    )


def _record_kernel_runs(monkeypatch, drop_packed=False):
    """The runs of the convolution steps' prepared kernel calls (_conv.prepare_forward), each as
    the dict of the arguments its call was prepared with (route, n_threads, residual, act,
    packed), appended when it runs; drop_packed: prepared without the packed weight."""
    prepare = _conv.prepare_forward
    runs = []

    def recording(route, *args):
        args = list(args)
        if drop_packed:
            args[16] = None
        call = prepare(route, *args)
        info = {
            "route": route,
            "n_threads": args[11],
            "residual": args[12],
            "act": args[13],
            "packed": args[16],
            "weight_shape": np.shape(args[1]),
        }

        class Recorder:
            scratch_bytes = call.scratch_bytes

            def use_scratch(self, buf):
                call.use_scratch(buf)

            def __call__(self, x, y, residual=None):
                runs.append(info)
                call(x, y, residual)

        return Recorder()

    monkeypatch.setattr(_conv, "prepare_forward", recording)
    return runs


def _depthwise_chain(dt):
    c = 4

    def dw(seed):
        return [
            Conv2D(c, c, 3, padding=1, groups=c, dtype=dt, rng=seed),
            BatchNorm2D(c, dtype=dt),
        ]

    return Sequential(*dw(20), ReLU6(), Residual(Sequential(*dw(21))), Hardswish())


@pytest.mark.parametrize("width", [9, 70])
def test_depthwise_convolutions_fuse_residual_and_activation(width, monkeypatch):
    """Depthwise conv+bn+relu6 and conv+bn+add+hardswish are each one call of the depthwise
    kernel with its epilogue (no separate pass), on planes computed flat (width 9) and in
    place (width 70)."""
    runs = _record_kernel_runs(monkeypatch)

    def no_separate_pass(*args):
        raise AssertionError("conv2d_epilogue called")

    monkeypatch.setattr(_conv, "conv2d_epilogue", no_separate_pass)
    x = np.random.default_rng(12).standard_normal((2, 4, 6, width))
    opt, _ = _check_close(_depthwise_chain, x)
    plan = _plan_for(opt, 2)
    assert len(plan.steps) == 2
    runs.clear()
    opt(x.astype(np.float32))
    assert [r["route"] for r in runs] == ["depthwise", "depthwise"]
    assert [(r["residual"], r["act"]) for r in runs] == [(False, ACT_RELU6), (True, ACT_HARDSWISH)]


def test_depthwise_steps_take_conv2ds_thread_count(monkeypatch):
    """A depthwise step runs on as many threads as conv2d gives the same layer (its work counted
    in elements moved, not in multiply-adds): 960 channels of 7x7 are serial by their 0.4 M
    multiply-adds but parallel by their 94 k elements."""
    threads = []
    kernel = _conv.conv2d_forward_depthwise

    def recording(*args):
        threads.append(args[11])
        return kernel(*args)

    monkeypatch.setattr(_conv, "conv2d_forward_depthwise", recording)
    runs = _record_kernel_runs(monkeypatch)
    layer = Conv2D(960, 960, 3, padding=1, groups=960, dtype=np.float32, rng=3).eval()
    x = np.random.default_rng(13).standard_normal((1, 960, 7, 7)).astype(np.float32)
    old = convext.get_num_threads()
    convext.set_num_threads(2)
    try:
        opt = convext.optimize_for_inference(Sequential(layer))
        opt(x)  # plans
        threads.clear()
        runs.clear()
        got = opt(x)
        want = layer(x)
        expected = convext._config.threads_for(2 * 960 * 49, "elements")
    finally:
        convext.set_num_threads(old)
    np.testing.assert_array_equal(got, want)
    assert [r["n_threads"] for r in runs] + threads == [expected, expected]


def test_gemm_layers_use_the_weight_packed_once(monkeypatch):
    """Every GEMM-route step passes its folded weight packed once (the same array on every
    call), and the outputs are bitwise those of the same steps packing the weight in each
    call; batch 1 equals its image in a batch of 4 (filter blocks vs images side by side)."""

    def make(dt):  # GEMM route: over 256 channels or 512 filters per group
        return Sequential(
            Conv2D(300, 150, 3, padding=1, dtype=dt, rng=30),  # K = 2700: 8 K chunks
            BatchNorm2D(150, dtype=dt),
            ReLU(),
            Conv2D(150, 600, 1, dtype=dt, rng=31),  # 600 filters: past MC
            BatchNorm2D(600, dtype=dt),
            ReLU6(),
            Residual(Sequential(Conv2D(600, 600, 1, dtype=dt, rng=32), BatchNorm2D(600, dtype=dt))),
            Conv2D(600, 20, 3, padding=1, dtype=dt, rng=33),  # 20 filters, K = 5400
        )

    # 4x4 planes: below the valid-taps route's least plane (VT_MIN_PLANE), which would take
    # the first 3x3 layer
    x = np.random.default_rng(13).standard_normal((4, 300, 4, 4))
    for dt in (np.float32, np.float64):
        model = _randomize(make(dt))
        with monkeypatch.context() as m:
            runs = _record_kernel_runs(m)
            opt = convext.optimize_for_inference(model)
            opt(x.astype(dt)), opt(x[2:3].astype(dt))  # plan (the planning run is unfused)
            runs.clear()
            got = opt(x.astype(dt))
            one = opt(x[2:3].astype(dt))
            calls = [r["packed"] for r in runs if r["route"] == "gemm"]
            assert len(calls) == 8 and all(p is not None and p.dtype == dt for p in calls)
            opt(x.astype(dt))
            calls = [r["packed"] for r in runs if r["route"] == "gemm"]
        assert all(p is q for p, q in zip(calls[8:], calls[:4], strict=True))  # packed once
        np.testing.assert_array_equal(one, got[2:3])
        with monkeypatch.context() as m:
            _record_kernel_runs(m, drop_packed=True)  # the kernel packs the weight itself
            want = convext.optimize_for_inference(model)(x.astype(dt))
        np.testing.assert_array_equal(got.view(np.uint8), want.view(np.uint8))


@pytest.mark.parametrize(
    "hw, k, stride, padding, dilation, kept",
    [
        ((1, 1), 3, 1, 1, 1, (1, 1)),  # ResNet's last stage on a 32x32 image: the centre
        ((2, 2), 3, 2, 1, 1, (2, 2)),  # its first convolution: the bottom-right 2x2
        ((1, 5), 3, 1, 1, 1, (1, 3)),  # rows only
        ((3, 3), 5, 1, 2, 1, (5, 5)),  # every tap lands inside for some output: kept whole
        ((1, 1), 5, 1, 4, 2, (1, 1)),  # dilated
        ((2, 3), 3, 1, 2, 1, (3, 3)),  # outputs beyond the input: kept whole
        ((4, 4), 3, 4, 1, 1, (2, 2)),  # one output from a large stride
        ((3, 1), 3, 2, (2, 2, 1, 1), 1, (3, 1)),  # per-side padding
    ],
)
def test_taps_in_the_padding_for_every_output_are_dropped(
    monkeypatch, hw, k, stride, padding, dilation, kept
):
    """A plan runs a convolution on the kernel rows and columns that land inside the input
    for some output (a padded zero times a finite weight adds nothing): the float64 result is
    the naive oracle's, the kernel is prepared with the cropped weight, and a non-finite weight
    in a dropped tap keeps the whole kernel (its NaN products, as conv2d's)."""
    x = np.random.default_rng(3).standard_normal((2, 6) + hw)
    for nonfinite in (False, True):
        conv = Conv2D(6, 10, k, stride=stride, padding=padding, dilation=dilation, rng=4)
        conv._params["weight"] = conv._params["weight"].astype(np.float64)
        conv._params["bias"] = conv._params["bias"].astype(np.float64)
        w, b = conv._params["weight"], conv._params["bias"]
        if nonfinite:
            w[7, 2, 0, 0] = np.inf  # the top-left tap: dropped wherever a crop applies
        model = Sequential(conv).eval()
        with monkeypatch.context() as m:
            runs = _record_kernel_runs(m)
            opt = convext.optimize_for_inference(model)
            opt(x)  # plans
            runs.clear()
            got = opt(x)
            shape = runs[0]["weight_shape"]
        want_kept = (k, k) if nonfinite and kept != (k, k) else kept
        assert shape == (10, 6) + want_kept
        if nonfinite:
            want = convext.functional.conv2d(x, w, b, stride, padding, dilation)
            np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
        else:
            pads = padding if isinstance(padding, tuple) else (padding,) * 4
            xp = np.pad(x, ((0, 0), (0, 0), pads[:2], pads[2:]))
            want = ref.conv2d(xp, w, b, stride=stride, dilation=dilation)
            np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(
    "cin, cout, groups, padding, hw, kept",
    [
        (16, 24, 1, "same", (1, 1), (1, 1)),
        (16, 16, 16, 1, (1, 1), (1, 1)),  # depthwise
        (16, 32, 2, (1, 1, 0, 2), (2, 1), (3, 1)),  # groups, per-side padding, 2x1 plane
    ],
)
def test_the_crop_with_batchnorm_groups_and_float32(
    monkeypatch, cin, cout, groups, padding, hw, kept
):
    """The crop in float32, after BatchNorm is folded in, with groups: the optimized model
    against the original within float32 rounding, batch 1 bitwise its image in a batch of 3;
    a weight that BatchNorm's fold makes infinite in a dropped tap keeps the whole kernel."""
    x = np.random.default_rng(5).standard_normal((3, cin) + hw).astype(np.float32)
    for overflow in (False, True):
        conv = Conv2D(cin, cout, 3, padding=padding, groups=groups, rng=6)
        model = _randomize(Sequential(conv, BatchNorm2D(cout), ReLU()))
        if overflow:  # 3e38 times a scale above 1 is inf in float32 after the fold
            conv._params["weight"][1, 0, 0, 2] = 3e38  # a dropped tap in every case
            model.layers[1]._params["weight"][1] = 2.0
            model.layers[1]._buffers["running_var"][1] = 1.0
        with monkeypatch.context() as m:
            runs = _record_kernel_runs(m)
            opt = convext.optimize_for_inference(model)
            opt(x)
            runs.clear()
            got = opt(x)
            one = opt(x[1:2])
            shape = runs[0]["weight_shape"]
        assert shape == (cout, cin // groups) + ((3, 3) if overflow else kept)
        np.testing.assert_array_equal(one, got[1:2])
        if overflow:  # conv2d of the folded weight: its inf times the padding is NaN
            bn = model.layers[1]
            scale = bn._params["weight"].astype(np.float64) / np.sqrt(
                bn._buffers["running_var"].astype(np.float64) + bn.eps
            )
            w = (conv._params["weight"] * scale[:, None, None, None]).astype(np.float32)
            b = (
                (conv._params["bias"] - bn._buffers["running_mean"]) * scale + bn._params["bias"]
            ).astype(np.float32)
            want = np.maximum(convext.functional.conv2d(x, w, b, 1, padding, 1, groups), 0)
            assert np.isnan(want).any()
        else:
            want = model(x)
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_dense_layers_run_on_the_weight_packed_once(monkeypatch):
    """A Dense on a 2-D batch of up to DENSE_PACKED_ROWS rows runs _linear.dense_forward on its
    weight packed once (the same array on every call); every output is bitwise the original
    layer's own forward (functional.linear), at every batch size, with and without a bias; a
    bigger batch, or a Dense on 3-D input, runs the layer's forward (the GEMM)."""
    from convext import inference
    from convext._kernels import _linear

    kernel = _linear.dense_forward
    calls = []

    def recording(x, wp, b, y, n_threads):
        calls.append(wp)
        return kernel(x, wp, b, y, n_threads)

    monkeypatch.setattr(_linear, "dense_forward", recording)
    for dt in (np.float32, np.float64):
        for bias in (True, False):
            model = Sequential(
                Conv2D(3, 8, 3, dtype=dt, rng=1),
                Flatten(),
                Dense(8 * 5 * 5, 130, bias=bias, dtype=dt, rng=2),
                ReLU(),
                Dense(130, 70, bias=bias, dtype=dt, rng=3),
            ).eval()
            opt = convext.optimize_for_inference(model)
            rng = np.random.default_rng(5)
            for n in (1, 3, 5, inference.DENSE_PACKED_ROWS, inference.DENSE_PACKED_ROWS + 1):
                x = rng.standard_normal((n, 3, 7, 7)).astype(dt)
                opt(x)  # plan
                calls.clear()
                got = opt(x)
                assert len(calls) == (2 if n <= inference.DENSE_PACKED_ROWS else 0)
                again = opt(x)
                assert all(p is q for p, q in zip(calls[2:], calls[:2], strict=True))
                want = model(x)
                assert got.dtype == dt
                np.testing.assert_array_equal(got.view(np.uint8), want.view(np.uint8))
                np.testing.assert_array_equal(again, got)
    # a Dense on (N, L, features): the layer's own forward
    seq = Sequential(Conv2D(3, 4, 1, rng=1), Flatten(start_dim=2), Dense(36, 5, rng=2)).eval()
    x = np.random.default_rng(6).standard_normal((2, 3, 6, 6)).astype(np.float32)
    calls.clear()
    np.testing.assert_array_equal(convext.optimize_for_inference(seq)(x), seq(x))
    assert not calls


def _pools(dt):
    return Sequential(
        MaxPool2D(3, 2, 1),
        AvgPool2D(3, 2, 1, count_include_pad=False),
        MaxPool2D(2, ceil_mode=True),
        AvgPool2D((2, 3), 1, (1, 0), ceil_mode=True, divisor_override=-5),
        AdaptiveAvgPool2D(1),
        Flatten(),
        Dense(4, 6, dtype=dt, rng=2),
    ).eval()


@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_pooling_layers_run_as_prepared_kernel_calls(monkeypatch, dt):
    """Pooling nodes (MaxPool2D without indices, AvgPool2D, AdaptiveAvgPool2D to 1x1,
    GlobalAvgPool2D, functional.global_avg_pool2d) run as kernel calls validated once: no
    functional pooling call once planned; the same bits as the original layers, as a model's
    output too (never a plan buffer), at batch 1 and 3, 1 and 2 threads, on a Fortran-ordered
    input; a MaxPool2D returning indices, or an adaptive pool to more than 1x1, runs the layer."""
    F = convext.functional
    calls = []
    for name in ("max_pool2d", "avg_pool2d", "adaptive_avg_pool2d", "global_avg_pool2d"):
        fn = getattr(F, name)
        monkeypatch.setattr(
            F, name, lambda *a, _fn=fn, _n=name, **k: calls.append(_n) or _fn(*a, **k)
        )
    rng = np.random.default_rng(8)
    makes = [
        (_pools, (4, 19, 23)),
        (lambda dt: Sequential(MaxPool2D(3, 2, 1)).eval(), (5, 112, 40)),
        (lambda dt: Sequential(GlobalAvgPool2D()).eval(), (7, 7, 9)),
        (lambda dt: Sequential(AdaptiveAvgPool2D((1, 1)), Flatten()).eval(), (600, 7, 7)),
    ]
    for make, shape in makes:
        model = make(dt)
        opt = convext.optimize_for_inference(model)
        for n in (1, 3):
            x = rng.standard_normal((n,) + shape).astype(dt)
            x[0, 0, 0, :3] = [np.nan, -0.0, 0.0]
            for threads in (1, 2):
                before = convext.get_num_threads()
                try:
                    convext.set_num_threads(threads)
                    opt(x)  # plan
                    calls.clear()
                    got = opt(np.asfortranarray(x))
                    assert not calls
                    again = opt(x + 1)
                finally:
                    convext.set_num_threads(before)
                want = model(x)
                assert got.dtype == dt and got.shape == want.shape
                np.testing.assert_array_equal(got.view(np.uint8), want.view(np.uint8))
                assert not np.shares_memory(got, again)
                np.testing.assert_array_equal(got, model(x))  # not overwritten by `again`
    # mobilenet's lowering calls functional.global_avg_pool2d: a kernel call too
    m = models.mobilenet_v2(num_classes=5, rng=0).eval()
    opt = convext.optimize_for_inference(m)
    x = rng.standard_normal((1, 3, 32, 32)).astype(np.float32)
    opt(x)
    calls.clear()
    opt(x)
    assert not calls
    # the layer's own forward: indices returned, or an adaptive output of more than 1x1
    for layer in (MaxPool2D(2, return_indices=True), AdaptiveAvgPool2D((2, 1))):
        opt = convext.optimize_for_inference(Sequential(layer).eval())
        x = rng.standard_normal((2, 3, 6, 6)).astype(dt)
        opt(x)
        calls.clear()
        got = opt(x)
        assert calls
        want = layer(x)
        for g, w in zip(
            got if isinstance(got, tuple) else (got,),
            want if isinstance(want, tuple) else (want,),
            strict=True,
        ):
            np.testing.assert_array_equal(g, w)


def test_composite_models():
    rng = np.random.default_rng(6)
    _check_close(_composite, rng.standard_normal((2, 3, 9, 9)))
    _check_close(_Custom, rng.standard_normal((2, 3, 6, 6)))


def _graph(dt=np.float32):
    g = GraphBuilder()
    x = g.input("x")
    y = g.add_node("conv1", Conv2D(4, 8, 3, padding=1, bias=False, dtype=dt, rng=13), x)
    y = g.add_node("bn1", BatchNorm2D(8, dtype=dt), y)
    y = g.add_node("relu1", ReLU(), y)
    y = g.add_node("conv2", Conv2D(8, 8, 3, padding=1, bias=False, dtype=dt, rng=14), y)
    y = g.add_node("bn2", BatchNorm2D(8, dtype=dt), y)
    s = g.add_node("down", Conv2D(4, 8, 1, dtype=dt, rng=15), x)  # after the main branch
    y = g.add_node("add", Add(), y, s)
    g.output(g.add_node("relu2", ReLU(), y))
    return g.build()


def test_graph():
    _check_close(_graph, np.random.default_rng(8).standard_normal((3, 4, 7, 7)))
    model = _randomize(_graph())
    opt = convext.optimize_for_inference(model)
    opt(np.zeros((1, 4, 7, 7), np.float32))
    plan = _plan_for(opt, 1)
    assert len(plan.steps) == 3  # conv1+bn1+relu1, down, conv2+bn2+add+relu2


def test_a_wrong_input_is_named_by_its_own_shape():
    """A batch larger than the threads is planned on its first images; a wrong input's error
    names the caller's shape (it named only the planning batch's)."""
    opt = convext.optimize_for_inference(Sequential(Conv2D(3, 8, 3, padding=1), ReLU()).eval())
    old = convext.get_num_threads()
    convext.set_num_threads(2)
    try:
        with pytest.raises(ValueError, match=r"input of shape \(4, 4, 8, 8\) \(planned on"):
            opt(np.zeros((4, 4, 8, 8), np.float32))
    finally:
        convext.set_num_threads(old)


def test_refuses_training_and_saving(tmp_path):
    model = _randomize(models.lenet5(rng=0))
    opt = convext.optimize_for_inference(model)
    x = np.zeros((4, 1, 28, 28), np.float32)
    opt(x)
    with pytest.raises(RuntimeError, match="eval-only"):
        opt.train()
    with pytest.raises(RuntimeError, match="no backward"):
        opt.backward(np.zeros((4, 10), np.float32))
    with pytest.raises(RuntimeError, match="eval-only"):
        convext.fit(opt, x, np.zeros(4, np.int64), epochs=1, verbose=0)
    with pytest.raises(TypeError, match="cannot be saved"):
        opt.save(tmp_path / "m.npz")
    assert not (tmp_path / "m.npz").exists()
    assert opt.parameters() == {}
    with pytest.raises(TypeError, match="model must be a convext Layer"):
        convext.optimize_for_inference("resnet18")


def test_independent_copy_buffers_and_inputs():
    model = _randomize(Sequential(Conv2D(3, 4, 3, rng=16), BatchNorm2D(4), ReLU(), Identity()))
    opt = convext.optimize_for_inference(model)
    rng = np.random.default_rng(9)
    x1, x2 = rng.standard_normal((2, 2, 3, 6, 6)).astype(np.float32)
    y1 = opt(x1)
    keep = y1.copy()
    y2 = opt(x2)
    np.testing.assert_array_equal(y1, keep)  # a returned array is never a reused buffer
    assert not np.shares_memory(y1, y2)
    model[0].weight[...] = 0  # the original changes: the optimized copy does not
    np.testing.assert_array_equal(opt(x1), keep)
    # unbatched, non-contiguous and float64 inputs: as the original model
    model[0].weight[...] = 1
    opt = convext.optimize_for_inference(model)
    plain = Sequential(Conv2D(3, 4, 3, rng=17), ReLU()).eval()
    np.testing.assert_array_equal(convext.optimize_for_inference(plain)(x1[0]), plain(x1[0]))
    with pytest.raises(ValueError, match="BatchNorm2D"):  # as the original: BatchNorm is 4-D
        opt(x1[0])
    xt = np.asfortranarray(x1)
    np.testing.assert_allclose(opt(xt), model(x1), rtol=1e-5, atol=1e-5)
    with pytest.raises(TypeError):
        opt(x1.astype(np.float64))
    with pytest.raises(ValueError):
        opt(np.zeros((1, 5, 6, 6), np.float32))


def test_concurrent_calls_match_serial():
    model = _randomize(models.mobilenet_v2(num_classes=10, width_mult=0.5, rng=0))
    opt = convext.optimize_for_inference(model)
    rng = np.random.default_rng(10)
    xs = [rng.standard_normal((2, 3, 32, 32)).astype(np.float32) for _ in range(4)]
    want = [opt(x) for x in xs]
    got = [None] * len(xs)

    def work(i):
        for _ in range(5):
            got[i] = opt(xs[i])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(xs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(g, w)


def _chain(dt=np.float32):
    """Six same-shaped conv + ReLU layers, a residual block over two of them, then a flatten
    (a view of the last buffer) and a dense layer: values whose lifetimes end at different
    steps, so the plan can reuse their buffers."""
    convs = [Conv2D(6, 6, 3, padding=1, dtype=dt, rng=20 + i) for i in range(6)]
    return Sequential(
        convs[0],
        ReLU(),
        convs[1],
        ReLU(),
        Residual(Sequential(convs[2], BatchNorm2D(6, dtype=dt), ReLU(), convs[3])),
        ReLU(),
        convs[4],
        ReLU6(),
        convs[5],
        Flatten(),
        Dense(6 * 5 * 5, 7, dtype=dt, rng=26),
    )


def test_buffers_are_shared_between_values_that_do_not_overlap():
    """The plan's fused steps write into fewer arrays than there are steps (a value's array is
    reused once nothing reads the value any more), with the original's results, on repeated
    calls and batch sizes, and a returned array is never one that a later call reuses."""
    rng = np.random.default_rng(21)
    x = rng.standard_normal((3, 6, 5, 5))
    opt, _ = _check_close(_chain, x)
    plan = _plan_for(opt, 3)
    slotted = [s for s in plan.steps if getattr(s[0], "__qualname__", "").endswith("step")]
    assert len(slotted) == 7  # six convolutions (two with residual/BN fused) and the dense
    # at most three (3, 6, 5, 5) values are alive at once (the residual's input, the body's
    # middle value and the step writing): one arena of three of them, each at a cache-line
    # boundary; the dense layer writes the returned array, a new one
    value_bytes = 3 * 6 * 5 * 5 * 4  # float32
    (arena,) = plan._buffers
    assert arena.nbytes == 3 * (-(-value_bytes // 64) * 64)
    assert arena.ctypes.data % 64 == 0
    model = _randomize(_chain())
    opt = convext.optimize_for_inference(model)
    for n in (3, 1, 3):
        xs = rng.standard_normal((n, 6, 5, 5)).astype(np.float32)
        y = opt(xs)
        np.testing.assert_allclose(y, model(xs), rtol=1e-4, atol=1e-4)
        keep = y.copy()
        opt(-xs)
        np.testing.assert_array_equal(y, keep)


@pytest.mark.parametrize("name", ["resnet18", "resnet50", "mobilenet_v2"])
def test_no_step_writes_over_a_value_still_to_be_read(name):
    """Every value a step writes lies clear of the memory of every value a step reads at or
    after it (that step's own inputs included): liveness worked out here from the steps, not
    with the plan's own bookkeeping; and the arena is smaller than the values it holds."""
    model = getattr(models, name)(rng=0).eval()
    opt = convext.optimize_for_inference(model)
    x = np.random.default_rng(5).standard_normal((2, 3, 32, 32)).astype(np.float32)
    opt(x)
    plan = _plan_for(opt, 2)
    written = {}

    def recording(fn, out):
        def run(*args):
            y = fn(*args)
            written[out] = y
            return y

        return run

    steps = plan.steps
    # the recording steps run one by one (no chains: they have no prepared call to link)
    plan.steps = [(recording(fn, out), ins, out) for fn, ins, out in steps]
    plan._link()
    try:
        opt(x)
    finally:
        plan.steps = steps
        plan._link()
    slotted = 0
    step_of = {out: k for k, (_, _, out) in enumerate(steps)}
    for k, (fn, _, out) in enumerate(steps):
        if not getattr(fn, "__qualname__", "").endswith("step"):
            continue  # not a fused step: it may return a view of its input (flatten)
        # the values written before step k that step k or a later one reads
        later = {v for _, ins, _ in steps[k:] for v in ins if step_of.get(v, k) < k}
        for v in later:
            assert not np.shares_memory(written[out], written[v]), (k, out, v)
        slotted += any(np.may_share_memory(written[out], b) for b in plan._buffers)
    assert slotted > 10
    held = sum(y.nbytes for y in written.values() if isinstance(y, np.ndarray))
    assert sum(b.nbytes for b in plan._buffers) < held / 2


def _two_outputs(dt=np.float32):
    """A graph whose first output is a flatten (a view) of a convolution's buffer that later
    steps could otherwise reuse, and whose second output comes after them."""
    g = GraphBuilder()
    x = g.input("x")
    a = g.add_node("c1", Conv2D(4, 4, 3, padding=1, dtype=dt, rng=30), x)
    f = g.add_node("flat", Flatten(), a)
    b = g.add_node("c2", Conv2D(4, 4, 3, padding=1, dtype=dt, rng=31), a)
    b = g.add_node("r2", ReLU(), b)
    b = g.add_node("c3", Conv2D(4, 4, 3, padding=1, dtype=dt, rng=32), b)
    b = g.add_node("c4", Conv2D(4, 4, 3, padding=1, dtype=dt, rng=33), b)
    g.output(f)
    g.output(g.add_node("c5", Conv2D(4, 4, 3, padding=1, dtype=dt, rng=34), b))
    return g.build()


def test_a_buffer_an_output_views_is_never_reused():
    model = _two_outputs().eval()
    opt = convext.optimize_for_inference(model)
    x = np.random.default_rng(22).standard_normal((2, 4, 6, 6)).astype(np.float32)
    want = model(x)
    got = opt(x)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5)
    plan = _plan_for(opt, 2)
    assert len(plan._buffers) < len(plan.steps) - 1  # c2..c5 share, c1's (viewed) does not
    flat = got[0].copy()
    opt(-x)
    np.testing.assert_array_equal(got[0], flat)


class _Split(convext.layers.Layer):
    """Returns two views of its input (a layer with several outputs)."""

    def forward(self, x):
        return (x[:, :1], x[:, 1:])


def test_outputs_inside_tuples_are_not_overwritten_by_the_next_call():
    """A model whose output is a tuple (a nested Graph with two outputs, a layer returning two
    views) got the plan's buffers back inside the tuple: the next call overwrote them."""
    from convext.layers import Conv2D, GraphBuilder, Sequential

    rng = np.random.default_rng(0)
    x1, x2 = (rng.standard_normal((1, 2, 4, 4)).astype(np.float32) for _ in range(2))
    inner = GraphBuilder()
    x = inner.input("x")
    inner.add_node("c1", Conv2D(2, 2, 3, padding=1, rng=1), x)
    inner.add_node("c2", Conv2D(2, 2, 3, padding=1, rng=2), x)
    inner.output("c1", "c2")
    outer = GraphBuilder()
    x = outer.input("x")
    outer.add_node("g", inner.build(), x)
    outer.output("g")
    for model in (outer.build(), Sequential(Conv2D(2, 2, 3, padding=1, rng=3), _Split())):
        want1, want2 = model.eval()(x1), model(x2)
        fast = convext.optimize_for_inference(model)
        got1 = fast(x1)
        got2 = fast(x2)
        for got, want in ((got1, want1), (got2, want2)):
            assert isinstance(got, tuple) and len(got) == 2
            for g, w in zip(got, want, strict=True):
                np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)


class _MinusBatchMean(Layer):
    """Subtracts the mean over the batch: each image's output depends on the others."""

    def forward(self, x):
        return x - x.mean(axis=0, keepdims=True)


def _forced_chunks(opt, monkeypatch):
    """Make ``opt`` run any batch larger than the thread count in chunks of one image per
    thread, whatever its buffers and weights weigh (the heuristic keeps small models whole)."""
    monkeypatch.setattr(inference, "CHUNK_BYTES", 1)
    opt._weight_bytes = 0
    return opt


def _planned_batches(opt):
    """The batch sizes ``opt`` has plans for (not those it runs in chunks)."""
    batches = set()
    for (signature, _threads), entry in opt._local.plans.items():
        (shape, _dtype), *_ = signature
        if isinstance(entry, inference._Plan):
            batches.add(shape[0])
    return sorted(batches)


@pytest.fixture(autouse=True)
def _warm_team(monkeypatch):
    """No run here starts cold (_team) unless a test says so: the tests that wrap a plan's
    steps, or count the threads of its kernels, see the steps themselves."""
    monkeypatch.setattr(inference._team, "TEAM_IDLE_SECONDS", float("inf"))
    if inference._team._last_end is None:  # the process's first run counts as cold
        monkeypatch.setattr(inference._team, "_last_end", 0.0)


@contextlib.contextmanager
def _threads(n):
    """convext's thread count set to n inside the block."""
    before = convext.get_num_threads()
    convext.set_num_threads(n)
    try:
        yield
    finally:
        convext.set_num_threads(before)


def _whole_and_alone(seed):
    """A small mobilenet_v2 (randomized), a batch of 5 images, its optimized model, that
    model's outputs for the batch in one run, and for each image alone, concatenated."""
    model = _randomize(models.mobilenet_v2(num_classes=10, width_mult=0.5, rng=0))
    x = np.random.default_rng(seed).standard_normal((5, 3, 32, 32)).astype(np.float32)
    whole = convext.optimize_for_inference(model)
    want = whole(x)
    alone = np.concatenate([whole(x[i : i + 1]) for i in range(5)])
    return model, x, whole, want, alone


@pytest.mark.parametrize("threads", [1, 2])
def test_a_batch_in_chunks_gives_the_same_bits(monkeypatch, threads):
    """A model whose every node computes each image alone runs a large batch in chunks: the
    outputs are bitwise those of the whole batch in one run, and of each image alone."""
    with _threads(threads):
        model, x, whole, want, alone = _whole_and_alone(12)
        assert 5 in _planned_batches(whole)  # small buffers: one run
        chunked = _forced_chunks(convext.optimize_for_inference(model), monkeypatch)
        got = chunked(x)
    assert _planned_batches(chunked) == sorted({threads, 5 % threads or threads})
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(alone, want)


@pytest.mark.parametrize("threads", [1, 2])
def test_a_batch_in_chunks_then_whole_gives_the_same_bits(monkeypatch, threads):
    """Where the last nodes' values are small, a chunked batch runs them once on the whole
    batch (_Split): bitwise the outputs of the whole batch in one run and of each image alone;
    the split never falls between a convolution and what its step takes in (the two plans
    have the steps of the one plan); the outputs stay the caller's after the next call."""
    with _threads(threads):
        model, x, whole, want, alone = _whole_and_alone(15)
        steps = len(_plan_for(whole, 5).steps)
        split = _forced_chunks(convext.optimize_for_inference(model), monkeypatch)
        # the values of the 8x8 maps on: small enough for the whole batch
        monkeypatch.setattr(inference, "SPLIT_BYTES_PER_THREAD", 5 * 48 * 8 * 8 * 4 // threads)
        got = split(x)
        entry = split._entry([x])
        again = split(x[::-1].copy())
    assert isinstance(entry, inference._Split)
    assert 0 < entry.k < len(split._nodes)
    assert split._nodes[entry.k].kind not in ("bn", "add", "act")
    assert split._nodes[entry.k - 1].kind != "conv"
    prefix = [entry._prefix[m] for m in sorted(entry._prefix)]
    assert sorted(entry._prefix) == sorted({threads, 5 % threads or threads})
    assert all(len(p.steps) + len(entry._suffix.steps) == steps for p in prefix)
    # the plans run one after the other: all their buffers lie in the largest one's arena
    arenas = [p.arena for p in prefix + [entry._suffix]]
    largest = max(arenas, key=lambda a: a.nbytes)
    assert all(np.shares_memory(a, largest) for a in arenas)
    # and every convolution of every plan runs on the same scratch buffer, as large as the
    # largest need of any of them
    plans = prefix + [entry._suffix]
    # the chains of every plan were made again on its last arena: what they write is there
    sets = [a for p in plans for _, _, _, pairs in p.segments for _, a in pairs or ()]
    assert sets and all(np.shares_memory(a, largest) for a in sets)
    (scratch,) = {id(p.scratch) for p in plans}
    assert plans[0].scratch.nbytes == max(p.scratch_bytes for p in plans) > 0
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(alone, want)
    np.testing.assert_array_equal(again, want[::-1])


def _count_steps(plan):
    """A list to which each of the plan's steps from now on appends ("all", k) when it runs,
    and its one-thread variant ("one", k); the plan's segments made again of them (no chains,
    which would run the kernels without them)."""
    ran = []

    def counted(kind, k, fn):
        def call(*args):
            ran.append((kind, k))
            return fn(*args)

        return call

    plan.steps = [(counted("all", k, f), i, o) for k, (f, i, o) in enumerate(plan.steps)]
    plan.serial = [f and counted("one", k, f) for k, f in enumerate(plan.serial)]
    plan._link()
    return ran


@pytest.mark.skipif(not convext.openmp_enabled(), reason="one thread without OpenMP")
def test_a_cold_start_runs_steps_on_one_thread_until_the_helper_runs(monkeypatch):
    """A run on two threads that starts after the team has been idle (_team) takes its
    convolutions' one-thread variants until the helper thread reports that it runs, then the
    steps themselves, and releases the helper after the first of those: every step exactly
    once, and the outputs bitwise those of a warm run and of a run on one thread."""
    model = _randomize(models.mobilenet_v2(num_classes=10, width_mult=0.5, rng=0))
    x = np.random.default_rng(17).standard_normal((1, 3, 64, 64)).astype(np.float32)
    with _threads(1):
        alone = convext.optimize_for_inference(model)(x)
    with _threads(2):
        opt = convext.optimize_for_inference(model)
        warm = opt(x)
        plan = _plan_for(opt, 1)
        # the convolutions large enough for two threads have a one-thread variant
        parallel = [k for k, f in enumerate(plan.serial) if f is not None]
        assert len(parallel) >= 2
        ran = _count_steps(plan)
        # the helper is not yet awake at the start, and awakes after the first of them
        monkeypatch.setattr(inference._team, "TEAM_IDLE_SECONDS", -1.0)
        monkeypatch.setattr(inference._team._threads, "team_wait_awake", lambda s: False)
        monkeypatch.setattr(inference._team, "awake", lambda: len(ran) > parallel[0])
        monkeypatch.setattr(inference._team, "release", lambda: ran.append(("release", None)))
        cold = opt(x)
    assert [k for _, k in ran if k is not None] == list(range(len(plan.steps)))
    assert [k for kind, k in ran if kind == "one"] == [parallel[0]]
    # released right after the second of them, the first to run on every thread
    assert ran[ran.index(("release", None)) - 1] == ("all", parallel[1])
    np.testing.assert_array_equal(cold, warm)
    np.testing.assert_array_equal(cold, alone)


@pytest.mark.skipif(not convext.openmp_enabled(), reason="one thread without OpenMP")
def test_a_cold_start_runs_large_convolutions_on_every_thread(monkeypatch):
    """A convolution of more than SERIAL_MAX_MACS multiply-adds has no one-thread variant: a run
    that starts while the team wakes takes the smaller ones' one-thread variants until the
    first large one, releases the helper before it and runs it and every later step on every
    thread; every step exactly once, the outputs bitwise those of a warm run and of a run on
    one thread."""
    model = _randomize(models.mobilenet_v2(num_classes=10, width_mult=0.5, rng=0))
    x = np.random.default_rng(19).standard_normal((1, 3, 64, 64)).astype(np.float32)
    with _threads(1):
        alone = convext.optimize_for_inference(model)(x)
    prepare = _conv.prepare_forward
    macs = []

    def recording(route, x_shape, w, b, y_shape, *args):
        if args[7] > 1:  # a call on several threads
            macs.append(math.prod(y_shape) * math.prod(w.shape[1:]))
        return prepare(route, x_shape, w, b, y_shape, *args)

    with _threads(2):
        monkeypatch.setattr(_conv, "prepare_forward", recording)
        convext.optimize_for_inference(model)(x)
        monkeypatch.setattr(_conv, "prepare_forward", prepare)
        # the larger half of the convolutions on several threads count as large
        limit = sorted(set(macs))[len(set(macs)) // 2 - 1]
        monkeypatch.setattr(inference, "SERIAL_MAX_MACS", limit)
        opt = convext.optimize_for_inference(model)
        warm = opt(x)
        plan = _plan_for(opt, 1)
        wide = [k for k, w in enumerate(plan._wide) if w]
        small = [k for k, f in enumerate(plan.serial) if f is not None]
        assert wide and small and small[0] < wide[0]
        ran = _count_steps(plan)
        monkeypatch.setattr(inference._team, "TEAM_IDLE_SECONDS", -1.0)
        monkeypatch.setattr(inference._team._threads, "team_wait_awake", lambda s: False)
        monkeypatch.setattr(inference._team, "awake", lambda: False)  # never, by itself
        monkeypatch.setattr(inference._team, "release", lambda: ran.append(("release", None)))
        cold = opt(x)
    assert [k for _, k in ran if k is not None] == list(range(len(plan.steps)))
    assert [k for kind, k in ran if kind == "one"] == [k for k in small if k < wide[0]]
    assert ran[ran.index(("release", None)) + 1] == ("all", wide[0])
    assert ran.count(("release", None)) == 1
    np.testing.assert_array_equal(cold, warm)
    np.testing.assert_array_equal(cold, alone)


@pytest.mark.skipif(not convext.openmp_enabled(), reason="one thread without OpenMP")
def test_a_cold_start_resumes_the_chains_once_the_team_runs(monkeypatch):
    """Once the helper runs and has been released, a run that started while the team woke
    goes on as a warm run does: the rest of the steps in chains (_Plan._segments_from), the
    first of them the later part of a chain, made on first use and then kept; the outputs
    bitwise those of a warm run."""
    model = _randomize(models.mobilenet_v2(num_classes=10, width_mult=0.5, rng=0))
    x = np.random.default_rng(20).standard_normal((1, 3, 64, 64)).astype(np.float32)
    with _threads(2):
        opt = convext.optimize_for_inference(model)
        warm = opt(x)
        plan = _plan_for(opt, 1)
        parallel = [k for k, f in enumerate(plan.serial) if f is not None]
        chained = [len(run.__self__) for run, _, _, sets in plan.segments if sets is not None]
        assert len(parallel) >= 2 and chained and chained[0] > parallel[1]
        steps_run = []
        monkeypatch.setattr(inference._team, "TEAM_IDLE_SECONDS", -1.0)
        monkeypatch.setattr(inference._team._threads, "team_wait_awake", lambda s: False)
        # awake once the first parallel step has run on one thread
        monkeypatch.setattr(inference._team, "awake", lambda: len(steps_run) > 0)
        serial = plan.serial[parallel[0]]

        def first(*args):
            steps_run.append(parallel[0])
            return serial(*args)

        plan.serial = list(plan.serial)
        plan.serial[parallel[0]] = first
        cold = opt(x)
        # released after the next parallel step, the run went on in chains from the step after
        assert list(plan._resume) == [parallel[1] + 1]
        (head, _, _, sets) = plan._resume[parallel[1] + 1][0]
        # the later part of the first chain (the segments before it are single steps: it
        # starts at step c0)
        c0 = next(i for i, (_, _, _, s) in enumerate(plan.segments) if s is not None)
        assert c0 <= parallel[1] < c0 + chained[0] - 1
        assert sets is not None and len(head.__self__) == c0 + chained[0] - (parallel[1] + 1)
        # the helper awake at once: the first parallel step on every thread, the chains after it
        again = opt(x)
        assert sorted(plan._resume) == [parallel[0] + 1, parallel[1] + 1]
        kept = dict(plan._resume)
        third = opt(x)  # the same chains again, not made anew
        assert plan._resume == kept
    np.testing.assert_array_equal(cold, warm)
    np.testing.assert_array_equal(again, warm)
    np.testing.assert_array_equal(third, warm)


def test_the_team_helper_wakes_holds_and_is_released(monkeypatch):
    """The helper's hold raises the awake flag at once and returns on release, long before its
    time limit; a cold start wakes the real helper thread, which then reports awake; a run on
    one thread, or one that follows another within TEAM_IDLE_SECONDS, is not cold."""
    from convext import _team
    from convext._kernels import _threads as kernel_threads

    kernel_threads.team_reset()
    assert not kernel_threads.team_is_awake()
    holder = threading.Thread(target=kernel_threads.team_hold, args=(60.0,))
    holder.start()
    try:
        assert kernel_threads.team_wait_awake(10.0)
    finally:
        kernel_threads.team_release()
        holder.join(10.0)
    assert not holder.is_alive()
    for _ in range(2):  # the helper serves one cold start after another
        monkeypatch.setattr(_team, "TEAM_IDLE_SECONDS", -1.0)
        assert _team.cold_start(2)
        assert kernel_threads.team_wait_awake(10.0)
        _team.finished()
        assert _team._helper.is_alive()
    monkeypatch.setattr(_team, "TEAM_IDLE_SECONDS", 60.0)
    assert not _team.cold_start(1)
    _team.finished()
    assert not _team.cold_start(2)


@pytest.mark.parametrize("threads", [1, 2])
def test_consecutive_convolutions_run_as_chains(monkeypatch, threads):
    """The convolution steps that read and write only the plan's own buffers run as chains of
    their prepared calls (_conv.ForwardChain: no Python between the kernels), in mobilenet_v2
    every one but the first (which reads the model's input); the outputs bitwise those of the
    same steps run one by one."""
    model = _randomize(models.mobilenet_v2(num_classes=10, width_mult=0.5, rng=0))
    x = np.random.default_rng(18).standard_normal((1, 3, 32, 32)).astype(np.float32)
    monkeypatch.setattr(inference._team, "cold_start", lambda threads: False)
    with _threads(threads):
        opt = convext.optimize_for_inference(model)
        opt(x)
        plan = _plan_for(opt, 1)
        chains = [seg for seg in plan.segments if seg[3] is not None]
        convs = [
            fn
            for fn, _, _ in plan.steps
            if isinstance(getattr(fn, "call", None), _conv.ForwardCall)
        ]
        assert len(convs) > 30
        assert sum(len(run.__self__) for run, _, _, _ in chains) == len(convs) - 1
        ran = []

        def counted(run):
            def call():
                ran.append(run)
                run()

            return call

        plan.segments = [
            (counted(fn), ins, out, sets) if sets is not None else (fn, ins, out, sets)
            for fn, ins, out, sets in plan.segments
        ]
        got = opt(x)
        assert len(ran) == len(chains)
        plan.segments = [step + (None,) for step in plan.steps]  # one by one
        again = opt(x)
    np.testing.assert_array_equal(got, again)


def test_no_split_where_the_last_values_are_large(monkeypatch):
    """A chunked batch whose last node writes a value larger than the limit runs in chunks all
    the way (no node after which every value is small)."""
    model = Sequential(Conv2D(3, 8, 3, padding=1, rng=42), ReLU()).eval()
    opt = _forced_chunks(convext.optimize_for_inference(model), monkeypatch)
    monkeypatch.setattr(inference, "SPLIT_BYTES_PER_THREAD", 1)
    x = np.random.default_rng(16).standard_normal((4, 3, 6, 6)).astype(np.float32)
    got = opt(x)
    assert isinstance(opt._entry([x]), int)
    np.testing.assert_array_equal(got, convext.optimize_for_inference(model)(x))


@pytest.mark.parametrize(
    "layer",
    [_MinusBatchMean(), Flatten(start_dim=0), Concat(Identity(), Identity(), axis=0)],
    ids=["batch-mean", "flatten-from-0", "concat-on-batch"],
)
def test_a_model_that_mixes_the_batch_runs_whole(monkeypatch, layer):
    """A layer that may mix the images (one convext does not know, a flatten or concatenation
    that takes in the batch axis) keeps the batch in one run: the original's outputs."""
    tail = () if isinstance(layer, Flatten) else (Conv2D(4, 4, 1, rng=41),)
    model = Sequential(Conv2D(3, 4, 3, padding=1, rng=40), ReLU(), layer, *tail).eval()
    opt = _forced_chunks(convext.optimize_for_inference(model), monkeypatch)
    x = np.random.default_rng(13).standard_normal((4, 3, 6, 6)).astype(np.float32)
    got = opt(x)
    assert _planned_batches(opt) == [4]  # not even a plan of one image per thread
    np.testing.assert_allclose(got, model(x), rtol=1e-5, atol=1e-5)


def test_the_zoo_chunks_where_values_outweigh_weights():
    """At 224x224 and batch 8, mobilenet_v2 (27 MB of values per image, 14 MB of weights)
    runs its large maps in chunks of a whole number of images per thread and its last stages,
    as far as their values fit the limit per thread, on the whole batch; resnet18 (11 MB per
    image, 47 MB of weights) runs whole."""
    x = np.zeros((8, 3, 224, 224), np.float32)
    threads = convext.get_num_threads()
    mobile = convext.optimize_for_inference(models.mobilenet_v2(rng=0))
    entry = mobile._entry([x])
    assert isinstance(entry, inference._Split)
    assert entry.chunk < 8 and entry.chunk % threads == 0
    mobile(x)
    assert 8 not in _planned_batches(mobile)  # never planned whole
    # the whole batch's plan holds no value above the limit (on two threads: from the 28x28
    # stage on), the chunks' plan the 112x112 ones
    limit = inference.SPLIT_BYTES_PER_THREAD * threads
    assert max(entry._suffix.batch_bytes.values()) <= limit
    assert max(entry._prefix[entry.chunk].batch_bytes.values()) >= entry.chunk * 96 * 112 * 112 * 4
    resnet = convext.optimize_for_inference(models.resnet18(rng=0))
    assert isinstance(resnet._entry([x]), inference._Plan)


@pytest.mark.parametrize("bilinear", [False, True])
def test_unet_is_one_plan(bilinear):
    """The U-Net is lowered whole (input check, encoder, each decoder step's upsampling, join
    and DoubleConv, output conv): one plan with its convolutions fused and no nested optimized
    model; odd sizes (the joins pad) give the original's outputs, and a map too small for the
    depth the original's ValueError."""
    model = _randomize(models.unet(base_channels=8, depth=3, bilinear=bilinear, rng=0))
    opt = convext.optimize_for_inference(model)
    x = np.random.default_rng(14).standard_normal((2, 3, 19, 26)).astype(np.float32)
    np.testing.assert_allclose(opt(x), model(x), rtol=1e-4, atol=1e-4)
    plan = _plan_for(opt, 2)
    kinds = [type(fn).__name__ for fn, _, _ in plan.steps]
    assert "InferenceModel" not in kinds and "BatchNorm2D" not in kinds
    # the check, inc (2 convs), 3 downs (pool, 2 convs), 3 ups (upsampling, join, 2 convs), outc
    assert len(plan.steps) == 1 + 2 + 3 * 3 + 3 * 4 + 1
    with pytest.raises(ValueError, match="2\\*\\*depth"):
        opt(np.zeros((1, 3, 7, 26), np.float32))


def test_the_weight_store_puts_weights_on_2mb_boundaries_one_after_the_other():
    """_WeightStore copies each array (values, dtype and shape kept, C-contiguous) into blocks
    that start on a 2 MB boundary, 64-byte aligned one after the other; a small array and None
    stay as they are, an array larger than a block gets a block of its own."""
    store = inference._WeightStore(2 * inference.WEIGHT_BLOCK)
    rng = np.random.default_rng(5)
    a = rng.standard_normal((3, 5, 7, 11)).astype(np.float32)  # 4620 bytes
    b = rng.standard_normal(1000)  # float64, 8000 bytes
    c = np.asfortranarray(rng.standard_normal((40, 30)).astype(np.float32))
    small = np.ones(16, np.float32)
    pa, pb, pc = store.place(a), store.place(b), store.place(c)
    assert store.place(small) is small and store.place(None) is None
    for got, want in ((pa, a), (pb, b), (pc, c)):
        assert got.dtype == want.dtype and got.shape == want.shape and got.flags.c_contiguous
        np.testing.assert_array_equal(got, want, strict=True)
        assert not np.shares_memory(got, want)
    addr = [p.ctypes.data for p in (pa, pb, pc)]
    assert addr[0] % inference.WEIGHT_PAGE == 0
    assert addr[1] - addr[0] == -(-a.nbytes // 64) * 64
    assert addr[2] - addr[1] == -(-b.nbytes // 64) * 64
    assert store.blocks[0].nbytes == inference.WEIGHT_BLOCK  # what it still expects is more
    big = np.zeros(inference.WEIGHT_BLOCK // 4 + 1, np.float32)
    pbig = store.place(big)
    assert pbig.ctypes.data % inference.WEIGHT_PAGE == 0 and pbig.nbytes == big.nbytes
    # the next small array goes on in the block before it
    pd = store.place(a)
    assert pd.ctypes.data == addr[2] + -(-c.nbytes // 64) * 64
    assert store.nbytes == 2 * a.nbytes + b.nbytes + c.nbytes + big.nbytes


def test_the_weight_store_sizes_its_blocks_from_the_weights_it_expects():
    """A block holds what the plan still expects and a quarter more, in whole 2 MB pages; a
    plan expecting less than a page keeps plain arrays."""
    page = inference.WEIGHT_PAGE
    a = np.ones(300_000, np.float32)  # 1.2 MB
    store = inference._WeightStore(3 * page)
    assert store.place(a).ctypes.data % page == 0
    assert store.blocks[0].nbytes == 4 * page  # 3.75 pages, rounded up
    store = inference._WeightStore(page - 1)
    assert store.place(a) is a and not store.blocks


def test_an_optimized_model_reads_its_weights_from_the_store(monkeypatch):
    """The weight every convolution kernel reads (packed, or the weight itself) and the packed
    classifier lie in a 2 MB-aligned block of the plan's store; the outputs are the model's."""
    read = []
    prepare, dense = _conv.prepare_forward, inference._linear.dense_forward

    def prepare_recorded(route, x_shape, w, *args):
        packed = args[-1]
        read.append(w if packed is None else packed)
        return prepare(route, x_shape, w, *args)

    def dense_recorded(x, wp, *args):
        read.append(wp)
        return dense(x, wp, *args)

    monkeypatch.setattr(inference._conv, "prepare_forward", prepare_recorded)
    monkeypatch.setattr(inference._linear, "dense_forward", dense_recorded)
    m = models.resnet18(rng=0, num_classes=10)
    m.train(False)
    x = np.random.default_rng(1).random((1, 3, 64, 64), dtype=np.float32)
    f = convext.optimize_for_inference(m)
    np.testing.assert_allclose(f(x), m(x), rtol=1e-4, atol=1e-5)
    store = f._entry([x])._weights
    assert len(read) >= 21  # 20 convolutions and the classifier
    assert store.blocks and all(b.ctypes.data % inference.WEIGHT_PAGE == 0 for b in store.blocks)
    for a in read:
        assert any(np.shares_memory(a, b) for b in store.blocks)
