"""The layers of issue 11 without torch: activations, adaptive pools, Upsample, MaxUnpool2D,
Dropout2D, Flatten and BatchNorm2D on the compiled kernel (eval-mode backward, momentum=None,
affine/track_running_stats off) against the naive loops of tests/reference_cnn.py and central
finite differences; save/load round trips and the registry's checks of their fields."""

import numpy as np
import pytest
from test_layers import _check_layer_grads

import convext
import reference_cnn as ref
from convext import layers as L
from convext.layers.base import unallocated
from convext.layers.registry import layer_from_spec
from reference import numerical_grad

ACTIVATIONS = [
    (lambda: L.ReLU6(), lambda x: ref.hardtanh(x, 0.0, 6.0)),
    (lambda: L.Hardtanh(-0.5, 1.5), lambda x: ref.hardtanh(x, -0.5, 1.5)),
    (lambda: L.SiLU(), ref.silu),
    (lambda: L.Hardswish(), ref.hardswish),
    (lambda: L.Hardsigmoid(), ref.hardsigmoid),
    (lambda: L.GELU(), ref.gelu),
    (lambda: L.GELU("tanh"), lambda x: ref.gelu(x, "tanh")),
]


def _away_from_kinks(rng, shape, kinks, scale=4.0):
    """Random values at least 1e-3 from every kink (finite differences step over none)."""
    x = rng.uniform(-scale, scale, shape)
    for k in kinks:
        close = np.abs(x - k) < 1e-3
        x[close] += 2e-3
    return x


@pytest.mark.parametrize("make, oracle", ACTIVATIONS)
def test_activation_layers_forward_and_gradient(make, oracle):
    rng = np.random.default_rng(0)
    x = _away_from_kinks(rng, (2, 3, 4, 5), (-3.0, -0.5, 0.0, 1.5, 3.0, 6.0), scale=7.0)
    layer = make()
    np.testing.assert_allclose(layer(x), oracle(x), rtol=1e-12, atol=1e-14)
    y32 = layer(x.astype(np.float32))
    assert y32.dtype == np.float32
    np.testing.assert_allclose(
        y32,
        oracle(x.astype(np.float32).astype(np.float64)),
        rtol=0,
        atol=1e-5 * max(1.0, np.abs(oracle(x)).max()),
    )
    _check_layer_grads(make(), x)


def test_activation_settings_and_errors():
    assert repr(L.GELU()) == "GELU()" and repr(L.GELU("tanh")) == "GELU(approximate='tanh')"
    assert repr(L.Hardtanh()) == "Hardtanh(min_val=-1.0, max_val=1.0)"
    with pytest.raises(ValueError, match="approximate"):
        L.GELU("erf")
    with pytest.raises(ValueError, match="min_val"):
        L.Hardtanh(2.0, 1.0)
    with pytest.raises(ValueError, match="min_val"):
        L.Hardtanh(float("nan"), 1.0)
    layer = L.ReLU6().eval()
    layer(np.ones((2, 2)))
    with pytest.raises(RuntimeError, match="training mode"):
        layer.backward(np.ones((2, 2)))


# -- adaptive pooling, upsampling, unpooling -----------------------------------------------------


@pytest.mark.parametrize(
    "output_size, oh, ow",
    [((3, 2), 3, 2), (4, 4, 4), ((None, 3), 7, 3), (1, 1, 1), ((9, 11), 9, 11)],
)
def test_adaptive_pool_layers(output_size, oh, ow):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 7, 6))
    avg = L.AdaptiveAvgPool2D(output_size)
    np.testing.assert_allclose(avg(x), ref.adaptive_avg_pool2d(x, oh, ow), rtol=1e-12, atol=1e-15)
    _check_layer_grads(L.AdaptiveAvgPool2D(output_size), x)
    mx = L.AdaptiveMaxPool2D(output_size)
    y, _ = ref.adaptive_max_pool2d(x, oh, ow)
    np.testing.assert_array_equal(mx(x), y)
    _check_layer_grads(L.AdaptiveMaxPool2D(output_size), x)  # distinct values: no ties


def test_adaptive_pool_config_and_errors():
    assert L.AdaptiveAvgPool2D((7, 7)).get_config() == {"output_size": [7, 7]}
    assert repr(L.AdaptiveMaxPool2D((None, 3))) == "AdaptiveMaxPool2D(output_size=(None, 3))"
    for bad in (0, (1, 2, 3), (0, 2)):
        with pytest.raises(ValueError, match="output_size"):
            L.AdaptiveAvgPool2D(bad)
    with pytest.raises(TypeError, match="output_size"):
        L.AdaptiveMaxPool2D(2.5)


@pytest.mark.parametrize(
    "kw, size",
    [
        (dict(scale_factor=2, mode="bilinear", align_corners=True), (10, 8)),
        (dict(scale_factor=2, mode="bilinear"), (10, 8)),
        (dict(size=(7, 9), mode="bilinear", align_corners=False), (7, 9)),
        (dict(size=(3, 11), mode="bilinear", align_corners=True), (3, 11)),
        (dict(size=(9, 3)), (9, 3)),
        (dict(scale_factor=2), (10, 8)),
    ],
)
def test_upsample(kw, size):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 5, 4))
    layer = L.Upsample(**kw)
    y = layer(x)
    assert y.shape == (2, 3) + size
    if kw.get("mode") == "bilinear":
        np.testing.assert_allclose(
            y, ref.interpolate_bilinear(x, *size, kw.get("align_corners")), rtol=1e-12, atol=1e-14
        )
    elif "size" in kw:
        np.testing.assert_array_equal(y, ref.interpolate_nearest(x, *size))
    else:  # nearest, twice the size: each pixel repeated
        np.testing.assert_array_equal(y, x.repeat(2, axis=2).repeat(2, axis=3))
    _check_layer_grads(L.Upsample(**kw), x)


def test_upsample_errors():
    with pytest.raises(ValueError, match="exactly one of size and scale_factor"):
        L.Upsample()
    with pytest.raises(ValueError, match="exactly one"):
        L.Upsample(size=4, scale_factor=2)
    with pytest.raises(ValueError, match="mode"):
        L.Upsample(scale_factor=2, mode="bicubic")
    with pytest.raises(ValueError, match="align_corners"):
        L.Upsample(scale_factor=2, align_corners=True)
    with pytest.raises(ValueError, match="scale_factor"):
        L.Upsample(scale_factor=-2)
    with pytest.raises(ValueError, match="scale_factor"):
        L.Upsample(scale_factor=float("inf"))
    # a size is checked when the layer is built (a negative or zero one failed only at
    # forward, or at save as an invalid configuration)
    for size in [(-1, 2), (0, 0), 0, (2, 3, 4), 2**41]:
        with pytest.raises(ValueError, match="Upsample: size"):
            L.Upsample(size=size)
    for size in ["a", 2.5, True, (2, None)]:
        with pytest.raises(TypeError, match="Upsample: size"):
            L.Upsample(size=size)


def test_max_unpool():
    rng = np.random.default_rng(3)
    x7 = rng.standard_normal((2, 3, 6, 7))
    y7, idx7 = convext.max_pool2d(x7, 2, return_indices=True)
    u7 = L.MaxUnpool2D(2)(y7, idx7, output_size=(6, 7))
    np.testing.assert_array_equal(u7, ref.max_unpool2d(y7, idx7, 6, 7))
    x = rng.standard_normal((2, 3, 6, 6))
    y, idx = convext.max_pool2d(x, 2, return_indices=True)
    unpool = L.MaxUnpool2D(2)
    u = unpool(y, idx)
    np.testing.assert_array_equal(u, ref.max_unpool2d(y, idx, 6, 6))
    g = rng.standard_normal(u.shape)
    gx = unpool.backward(g)
    # the adjoint: <unpool(y), g> == <y, unpool.backward(g)>
    np.testing.assert_allclose(np.sum(u * g), np.sum(y * gx), rtol=1e-12)
    ng = numerical_grad(lambda yy: float(np.sum(L.MaxUnpool2D(2)(yy, idx) * g)), y)
    np.testing.assert_allclose(gx, ng, rtol=1e-6, atol=1e-8)
    with pytest.raises(RuntimeError, match="training mode"):
        unpool.backward(g)
    with pytest.raises(ValueError, match="indices"):
        L.MaxUnpool2D(2)(y, idx + 100)
    assert repr(L.MaxUnpool2D(2, 2)) == "MaxUnpool2D(kernel_size=2, stride=2)"


class SegNetStage(L.Layer):
    """conv, pool with indices, unpool with them, conv: SegNet's encoder/decoder pairing."""

    def __init__(self):
        super().__init__()
        self.enc = L.Conv2D(2, 3, 3, padding=1, dtype=np.float64, rng=0)
        self.pool = L.MaxPool2D(2, return_indices=True)
        self.unpool = L.MaxUnpool2D(2)
        self.dec = L.Conv2D(3, 2, 3, padding=1, dtype=np.float64, rng=1)

    def forward(self, x):
        h = self.enc(x)
        y, idx = self.pool(h)
        return self.dec(self.unpool(y, idx, output_size=h.shape[-2:]))

    def backward(self, grad_out, needs_input_grad=True):
        g = self.unpool.backward(self.dec.backward(grad_out))
        return self.enc.backward(self.pool.backward(g), needs_input_grad=needs_input_grad)


def test_max_pool_with_indices_feeds_max_unpool():
    x = np.random.default_rng(14).standard_normal((2, 2, 7, 6))
    pool = L.MaxPool2D(2, return_indices=True)
    y, idx = pool(x)
    y_ref, idx_ref = convext.max_pool2d(x, 2, return_indices=True)
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(idx, idx_ref)
    assert repr(pool) == "MaxPool2D(kernel_size=2, return_indices=True)"
    assert "return_indices" not in L.MaxPool2D(2).get_config()
    pool.eval()
    y_eval, idx_eval = pool(x)
    np.testing.assert_array_equal(idx_eval, idx_ref)
    _check_layer_grads(SegNetStage(), x)
    with pytest.raises(TypeError, match="return_indices"):
        L.MaxPool2D(2, return_indices=1)


# -- Dropout2D and Flatten ------------------------------------------------------------------------


def test_dropout2d_drops_whole_channels():
    x = np.random.default_rng(4).standard_normal((64, 50, 3, 4)).astype(np.float32) + 5
    d = L.Dropout2D(0.3, rng=11)
    y = d(x)
    assert y.dtype == np.float32
    kept = (y != 0).all(axis=(2, 3))
    dropped = (y == 0).all(axis=(2, 3))
    assert (kept | dropped).all()  # each channel is kept or zeroed as a whole
    assert abs(dropped.mean() - 0.3) < 0.03
    np.testing.assert_allclose(y[kept], x[kept] / np.float32(0.7), rtol=1e-6)
    g = d.backward(np.ones_like(x))
    np.testing.assert_allclose(g[kept], 1 / np.float32(0.7), rtol=1e-6)
    assert not g[dropped].any()
    np.testing.assert_array_equal(L.Dropout2D(0.3, rng=11)(x), y)  # reproducible
    d.eval()
    np.testing.assert_array_equal(d(x), x)
    np.testing.assert_array_equal(d.backward(x), x)
    np.testing.assert_array_equal(L.Dropout2D(1.0)(x), 0)
    np.testing.assert_array_equal(L.Dropout2D(0.0)(x), x)
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        L.Dropout2D(0.5)(np.ones((3, 4, 5)))
    with pytest.raises(ValueError, match=r"^Dropout2D: p must satisfy 0.0 <= p <= 1.0"):
        L.Dropout2D(-0.1)


@pytest.mark.parametrize(
    "start, end, shape",
    [
        (1, -1, (2, 60)),
        (0, -1, (120,)),
        (1, 2, (2, 12, 5)),
        (2, 3, (2, 3, 20)),
        (-2, -1, (2, 3, 20)),
        (0, 0, (2, 3, 4, 5)),
    ],
)
def test_flatten_dims(start, end, shape):
    x = np.arange(120.0).reshape(2, 3, 4, 5)
    f = L.Flatten(start, end)
    y = f(x)
    assert y.shape == shape
    np.testing.assert_array_equal(y.ravel(), x.ravel())
    np.testing.assert_array_equal(f.backward(y), x)
    assert L.Flatten()(x).shape == (2, 60)  # the default keeps the batch axis


# -- BatchNorm2D --------------------------------------------------------------------------------


def _bn(dtype=np.float64, **kw):
    rng = np.random.default_rng(5)
    bn = L.BatchNorm2D(3, dtype=dtype, **kw)
    sd = bn.state_dict()
    if "weight" in sd:
        sd["weight"], sd["bias"] = rng.uniform(0.5, 1.5, 3), rng.uniform(-0.5, 0.5, 3)
    if "running_mean" in sd:
        sd["running_mean"], sd["running_var"] = rng.uniform(-1, 1, 3), rng.uniform(0.5, 2, 3)
    return bn.load_state_dict(sd)


def test_batchnorm_eval_backward():
    """Eval mode: the statistics are constants; dL/dx = g * weight / sqrt(var + eps), and the
    parameter gradients by central differences."""
    x = np.random.default_rng(6).standard_normal((2, 3, 4, 5)) * 2 + 1
    bn = _bn().eval()
    sd = bn.state_dict()
    y = bn(x)
    rv, rm = sd["running_var"], sd["running_mean"]
    y_ref, _, _ = ref.batch_norm(x, rm, rv, sd["weight"], sd["bias"], False, 0.1, 1e-5)
    np.testing.assert_allclose(y, y_ref, rtol=1e-12, atol=1e-14)
    g = np.random.default_rng(7).standard_normal(x.shape)
    gx = bn.backward(g)
    np.testing.assert_allclose(
        gx, g * (sd["weight"] / np.sqrt(rv + 1e-5))[:, None, None], rtol=1e-12
    )
    xhat = (x - rm[:, None, None]) / np.sqrt(rv + 1e-5)[:, None, None]
    np.testing.assert_allclose(bn.grads()["weight"], (g * xhat).sum(axis=(0, 2, 3)), rtol=1e-12)
    np.testing.assert_allclose(bn.grads()["bias"], g.sum(axis=(0, 2, 3)), rtol=1e-12)
    # the full check, eval mode kept by the gradcheck's own train() call being undone
    bn2 = _bn().eval()
    bn2.train = lambda mode=True: bn2  # keep eval mode inside _check_layer_grads
    _check_layer_grads(bn2, x)
    assert (bn2.state_dict()["running_mean"] == sd["running_mean"]).all()  # untouched


def test_batchnorm_frozen_inside_training_model():
    """model.train(); bn.eval(): the frozen BatchNorm keeps its input and backward works; a
    model in eval mode as a whole keeps nothing."""
    model = L.Sequential(L.Conv2D(2, 3, 3, padding=1, dtype=np.float64, rng=0), _bn(), L.ReLU())
    x = np.random.default_rng(8).standard_normal((2, 2, 5, 5))
    model.train()
    model[1].eval()
    before = model.state_dict()
    y = model(x)
    model.backward(np.ones_like(y))
    for k in ("1.running_mean", "1.running_var", "1.num_batches_tracked"):
        np.testing.assert_array_equal(model.state_dict()[k], before[k])
    _check_layer_grads_frozen(model, x)
    model.eval()
    model(x)
    assert model[1]._saved is None
    with pytest.raises(RuntimeError, match="forward pass"):
        model[1].backward(np.ones_like(y))


def _check_layer_grads_frozen(model, x):
    r = np.random.default_rng(9).standard_normal(model(x).shape)
    model.zero_grad()
    model(x)
    gx = model.backward(r)
    ng = numerical_grad(lambda xx: float(np.sum(model(xx) * r)), x)
    np.testing.assert_allclose(gx, ng, rtol=1e-6, atol=1e-8)
    w = model.parameters()["1.weight"]
    saved = w.copy()

    def f(ww):
        w[...] = ww
        return float(np.sum(model(x) * r))

    ng = numerical_grad(f, saved)
    w[...] = saved
    np.testing.assert_allclose(model.grads()["1.weight"], ng, rtol=1e-6, atol=1e-8)


def test_batchnorm_momentum_none_is_a_cumulative_average():
    rng = np.random.default_rng(10)
    bn = L.BatchNorm2D(3, momentum=None, dtype=np.float64)
    xs = [rng.standard_normal((4, 3, 3, 2)) * (i + 1) + i for i in range(4)]
    for x in xs:
        bn(x)
    n = 4 * 3 * 2
    means = [x.mean(axis=(0, 2, 3)) for x in xs]
    uvars = [x.var(axis=(0, 2, 3)) * n / (n - 1) for x in xs]
    sd = bn.state_dict()
    # the cumulative average of the batch statistics, with the initial (0, 1) weighted out
    np.testing.assert_allclose(sd["running_mean"], np.mean(means, axis=0), rtol=1e-12)
    np.testing.assert_allclose(sd["running_var"], np.mean(uvars, axis=0), rtol=1e-12)
    assert sd["num_batches_tracked"] == 4


def test_batchnorm_without_affine_or_running_stats():
    rng = np.random.default_rng(11)
    x = rng.standard_normal((3, 3, 4, 4)) * 3 - 1
    plain = L.BatchNorm2D(3, affine=False, dtype=np.float64)
    assert list(plain.state_dict()) == ["running_mean", "running_var", "num_batches_tracked"]
    y, _, _ = ref.batch_norm(x, None, None, None, None, True, 0.1, 1e-5)
    np.testing.assert_allclose(plain(x), y, rtol=1e-12, atol=1e-14)
    _check_layer_grads(L.BatchNorm2D(3, affine=False, dtype=np.float64), x)
    untracked = L.BatchNorm2D(3, track_running_stats=False, dtype=np.float64)
    assert list(untracked.state_dict()) == ["weight", "bias"]
    untracked.eval()  # no running statistics: the batch's, in eval mode too (as torch)
    np.testing.assert_allclose(untracked(x), y, rtol=1e-12, atol=1e-14)
    _check_layer_grads(L.BatchNorm2D(3, track_running_stats=False, dtype=np.float64), x)


def test_batchnorm_eval_is_batch_independent_and_thread_independent(restore_threads):
    x = np.random.default_rng(12).standard_normal((16, 3, 20, 30)).astype(np.float32)
    bn = _bn(np.float32).eval()
    y = bn(x)
    np.testing.assert_array_equal(bn(x[5:6]), y[5:6])
    convext.set_num_threads(1)
    np.testing.assert_array_equal(bn(x), y)
    bn.train()
    convext.set_num_threads(2)
    y2 = bn(x)
    g2 = bn.backward(x)
    convext.set_num_threads(1)
    bn.load_state_dict(_bn(np.float32).state_dict())
    np.testing.assert_array_equal(bn(x), y2)
    np.testing.assert_array_equal(bn.backward(x), g2)


def test_batchnorm_errors():
    with pytest.raises(ValueError, match="eps"):
        L.BatchNorm2D(3, eps=0)
    with pytest.raises(ValueError, match="momentum"):
        L.BatchNorm2D(3, momentum=float("nan"))
    bn = L.BatchNorm2D(3, dtype=np.float64)
    with pytest.raises(RuntimeError, match="forward pass"):
        bn.backward(np.ones((2, 3, 2, 2)))
    bn(np.ones((2, 3, 2, 2)))
    with pytest.raises(ValueError, match="grad_out must have shape"):
        bn.backward(np.ones((2, 3, 2, 3)))


# -- save / load --------------------------------------------------------------------------------

NEW_LAYERS = [
    L.ReLU6(),
    L.Hardtanh(-2.0, 0.5),
    L.SiLU(),
    L.Hardswish(),
    L.Hardsigmoid(),
    L.GELU("tanh"),
    L.AdaptiveAvgPool2D((3, None)),
    L.AdaptiveMaxPool2D(2),
    L.Upsample(scale_factor=[2.0, 1.5], mode="bilinear", align_corners=False),
    L.Upsample(size=(6, 7)),
    L.Dropout2D(0.25),
    L.Flatten(0, 2),
    L.BatchNorm2D(3, momentum=None, affine=False, dtype=np.float64),
]


@pytest.mark.parametrize("layer", NEW_LAYERS, ids=lambda layer: type(layer).__name__)
def test_save_load_round_trip(layer, tmp_path):
    model = L.Sequential(L.Conv2D(3, 3, 3, padding=1, dtype=np.float64, rng=0), layer)
    model.eval()
    x = np.random.default_rng(13).standard_normal((2, 3, 6, 6))
    path = tmp_path / "m.npz"
    model.save(path)
    back = convext.load(path).eval()
    assert back[1].get_config() == layer.get_config()
    assert repr(back) == repr(model)
    np.testing.assert_array_equal(back(x), model(x))


@pytest.mark.parametrize(
    "name, config, match",
    [
        ("GELU", dict(approximate="erf"), "approximate must be"),
        ("Hardtanh", dict(min_val="1"), "min_val must be"),
        ("Hardtanh", dict(min_val=2.0, max_val=1.0), "min_val"),
        ("AdaptiveAvgPool2D", dict(output_size=[0, 2]), "output_size must be"),
        ("AdaptiveMaxPool2D", dict(output_size=[1, 2, 3]), "output_size must be"),
        ("Upsample", dict(scale_factor=-2.0), "scale_factor must be"),
        ("Upsample", dict(scale_factor=1e300), "scale_factor must be"),
        ("Upsample", dict(size=[4], mode="bicubic"), "mode must be"),
        ("Upsample", dict(scale_factor=2.0, align_corners="yes"), "align_corners must be"),
        ("Upsample", dict(), "exactly one"),
        ("MaxUnpool2D", dict(kernel_size=0), "kernel_size must be"),
        ("Dropout2D", dict(p=2.0), "p must be"),
    ],
)
def test_registry_checks_new_fields(name, config, match):
    with pytest.raises(ValueError, match=match):
        with unallocated():
            layer_from_spec({"type": name, "config": config})
