"""The model zoo without torch: torchvision's keys and parameter counts, output shapes, save /
load round trips, eval outputs independent of the batch, and every model's backward against
central finite differences (directional derivatives, float64, small versions). The comparison
with torch itself is tests/parity/test_parity_models.py."""

import math

import numpy as np
import pytest

import convext
from convext import layers as L
from convext import models
from convext.layers.base import unallocated


def _n_params(model):
    return sum(math.prod(p.shape) for p in model.parameters().values())


@pytest.mark.parametrize(
    "build, n_params, n_keys, keys",
    [
        # torchvision's parameter counts (its documentation's "num_params") and some of its keys
        (
            models.resnet18,
            11_689_512,
            122,
            [
                "conv1.weight",
                "layer1.0.conv1.weight",
                "layer2.0.downsample.0.weight",
                "layer4.1.bn2.num_batches_tracked",
                "fc.bias",
            ],
        ),
        (models.resnet34, 21_797_672, 218, ["layer3.5.bn2.running_var"]),
        (
            models.resnet50,
            25_557_032,
            320,
            ["layer1.0.conv3.weight", "layer1.0.downsample.1.bias", "layer4.2.bn3.running_mean"],
        ),
        (
            models.mobilenet_v2,
            3_504_872,
            314,
            [
                "features.0.0.weight",
                "features.1.conv.0.0.weight",
                "features.1.conv.2.running_var",
                "features.2.conv.1.1.bias",
                "features.18.1.running_mean",
                "classifier.1.weight",
            ],
        ),
        (
            models.vgg11,
            132_863_336,
            22,
            ["features.0.weight", "features.18.bias", "classifier.0.weight", "classifier.6.bias"],
        ),
    ],
)
def test_torchvision_layout(build, n_params, n_keys, keys):
    with unallocated():  # no memory: shapes only
        model = build()
    assert _n_params(model) == n_params
    names = list(model.parameters()) + list(model.buffers())
    assert len(names) == n_keys
    for k in keys:
        assert k in names


def test_model_shapes_and_dtypes():
    x = np.random.default_rng(0).random((2, 3, 40, 36))
    for build in (models.resnet18, models.resnet50):
        m = build(num_classes=7, dtype=np.float64, rng=0).eval()
        y = m(x)
        assert y.shape == (2, 7) and y.dtype == np.float64
    m = models.mobilenet_v2(num_classes=5, width_mult=0.5, rng=0).eval()
    assert m(x.astype(np.float32)).shape == (2, 5)
    assert models.lenet5(rng=0).eval()(np.zeros((3, 1, 28, 28), np.float32)).shape == (3, 10)
    for bilinear in (False, True):
        u = models.unet(
            in_channels=1, num_classes=3, base_channels=4, depth=3, bilinear=bilinear, rng=0
        ).eval()
        assert isinstance(u.up1.up, L.ConvTranspose2D) != bilinear
        for hw in ((16, 24), (17, 29), (8, 8)):  # odd sizes: padded in the decoder
            assert u(np.zeros((1, 1) + hw, np.float32)).shape == (1, 3) + hw
        with pytest.raises(ValueError, match="2\\*\\*depth"):
            u(np.zeros((1, 1, 7, 16), np.float32))
    assert not models.unet(base_channels=4, depth=2).bilinear  # the default
    with pytest.raises(TypeError, match="bilinear"):
        models.unet(bilinear=1)
    with pytest.raises(TypeError, match="dtype"):
        models.resnet18(dtype=np.int32)
    with pytest.raises(ValueError, match="num_classes"):
        models.resnet18(num_classes=0)


def test_torchvision_init():
    """Convolutions kaiming_normal(fan_out, relu), BatchNorm 1/0, mobilenet's Linear N(0, 0.01)
    and zero bias, ResNet's fc torch's default; reproducible from rng."""
    m = models.mobilenet_v2(num_classes=10, rng=1)
    w = m.parameters()["features.18.0.weight"]  # (1280, 320, 1, 1): fan_out 1280
    assert abs(w.std() - math.sqrt(2 / 1280)) < 0.02 * math.sqrt(2 / 1280)
    fc = m.parameters()["classifier.1.weight"]
    assert abs(fc.std() - 0.01) < 0.001 and not m.parameters()["classifier.1.bias"].any()
    assert (m.parameters()["features.3.conv.1.1.weight"] == 1).all()
    again = models.mobilenet_v2(num_classes=10, rng=1).state_dict()
    for k, v in m.state_dict().items():
        np.testing.assert_array_equal(again[k], v)
    r = models.resnet18(num_classes=10, rng=2)
    bound = 1 / math.sqrt(512)
    assert np.abs(r.parameters()["fc.weight"]).max() <= bound


SMALL = {
    "lenet5": (lambda dt: models.lenet5(dtype=dt, rng=0), (2, 1, 28, 28)),
    "resnet18": (lambda dt: models.resnet18(num_classes=4, dtype=dt, rng=0), (2, 3, 32, 32)),
    "resnet50": (lambda dt: models.resnet50(num_classes=4, dtype=dt, rng=0), (2, 3, 32, 32)),
    "mobilenet_v2": (
        lambda dt: models.mobilenet_v2(4, 0.35, dropout=0.0, dtype=dt, rng=0),
        (2, 3, 32, 32),
    ),
    "unet": (lambda dt: models.unet(2, 3, 4, 2, dtype=dt, rng=0), (2, 2, 9, 11)),
    "unet_bilinear": (
        lambda dt: models.unet(2, 3, 4, 2, bilinear=True, dtype=dt, rng=0),
        (2, 2, 9, 11),
    ),
}


@pytest.mark.parametrize("name", list(SMALL))
def test_save_load_round_trip_and_batch_independence(name, tmp_path):
    build, shape = SMALL[name]
    model = build(np.float32)
    model.train()
    x = np.random.default_rng(1).random(shape, dtype=np.float32)
    model(x)  # running statistics move away from their initial values
    model.eval()
    y = model(x)
    path = tmp_path / "model.npz"
    model.save(path)
    back = convext.load(path).eval()
    assert type(back) is type(model) and repr(back) == repr(model)
    got = back.state_dict()
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(got[k], v)
    np.testing.assert_array_equal(back(x), y)
    np.testing.assert_array_equal(model(x[1:]), y[1:])  # eval: no dependence on the batch


@pytest.mark.parametrize("name", list(SMALL))
def test_a_batch_of_zero_images(name):
    """torch's models take a batch of 0 (torch.flatten keeps it); so do the zoo's, in eval
    mode, optimized, and forward and backward in training mode. (numpy's reshape(0, -1) cannot
    infer the -1: the classifiers' flatten raised a ValueError.)"""
    build, shape = SMALL[name]
    model = build(np.float32)
    x = np.zeros((0,) + shape[1:], np.float32)
    model.eval()
    want = model(np.zeros((1,) + shape[1:], np.float32)).shape[1:]
    y = model(x)
    assert y.shape == (0,) + want and y.dtype == np.float32
    assert convext.optimize_for_inference(model)(x).shape == y.shape
    model.train()
    y = model(x)
    assert y.shape == (0,) + want
    assert model.backward(np.zeros_like(y)).shape == x.shape


def test_vgg11_description_round_trips():
    """VGG-11 is 507 MB: its description is checked as load checks it, without memory."""
    from convext.layers.registry import layer_from_spec, layer_spec

    with unallocated():
        model = models.vgg11(num_classes=3, dropout=0.2)
        back = layer_from_spec(layer_spec(model))
    assert back.get_config() == model.get_config()
    assert {k: v.shape for k, v in back.parameters().items()} == {
        k: v.shape for k, v in model.parameters().items()
    }


# -- backward against central differences (float64) ------------------------------------------------


def _directional_check(model, x, n_dirs=2, seed=0, eps=1e-7, only=None):
    """<grad, v> against (L(p + eps v) - L(p - eps v)) / (2 eps) for random directions v of the
    input and of all parameters at once; L = sum(model(x) * r), training mode. The step is
    small (1e-7) so that no ReLU / ReLU6 input crosses its kink between the two evaluations
    (hundreds of thousands of them move at once). ``only``: the parameters moved (default
    all)."""
    rng = np.random.default_rng(seed)
    model.train()
    y = model(x)
    r = rng.standard_normal(y.shape)
    model.zero_grad()
    model(x)
    gx = model.backward(r)
    params = {k: p for k, p in model.parameters().items() if only is None or k in only}
    grads = {k: g.copy() for k, g in model.grads().items() if k in params}
    saved = {k: p.copy() for k, p in params.items()}
    buffers = {k: b.copy() for k, b in model.buffers().items()}

    def loss(dx, dp, t):
        for k, p in params.items():
            p[...] = saved[k] + t * dp[k]
        value = float(np.sum(model(x + t * dx) * r))
        for k, b in model.buffers().items():  # running statistics do not affect training mode
            b[...] = buffers[k]
        return value

    for _ in range(n_dirs):
        dx = rng.standard_normal(x.shape)
        # each parameter moves on its own scale (a kaiming-initialised weight of std 0.02
        # moved by N(0, 1) steps would push many more ReLU inputs over their kinks)
        dp = {
            k: rng.standard_normal(p.shape) * (p.std() if p.std() > 0 else 0.1)
            for k, p in params.items()
        }
        numeric = (loss(dx, dp, eps) - loss(dx, dp, -eps)) / (2 * eps)
        analytic = float(np.sum(gx * dx)) + sum(float(np.sum(grads[k] * dp[k])) for k in dp)
        assert abs(numeric - analytic) <= 1e-5 * max(1.0, abs(analytic)), (numeric, analytic)
    for k, p in params.items():
        p[...] = saved[k]


@pytest.mark.parametrize(
    "build, shape",
    [
        (lambda: models.BasicBlock(4, 6, 2, dtype=np.float64), (2, 4, 7, 6)),
        (lambda: models.BasicBlock(4, 4, dtype=np.float64), (2, 4, 5, 6)),
        (lambda: models.Bottleneck(8, 3, 2, dtype=np.float64), (2, 8, 7, 6)),
        (lambda: models.Bottleneck(12, 3, dtype=np.float64), (2, 12, 5, 4)),
        (lambda: models.InvertedResidual(8, 8, 1, 6, dtype=np.float64), (2, 8, 5, 6)),
        (lambda: models.InvertedResidual(8, 12, 2, 1, dtype=np.float64), (2, 8, 5, 6)),
        (SMALL["lenet5"][0], SMALL["lenet5"][1]),
        # at least 8 values per channel in every BatchNorm (with 2 the normalised values are +-1
        # and their derivatives blow up where the two are close: no finite difference is accurate)
        (SMALL["resnet18"][0], (2, 3, 64, 64)),
        (SMALL["mobilenet_v2"][0], (2, 3, 64, 64)),
        (SMALL["unet"][0], SMALL["unet"][1]),
        (SMALL["unet_bilinear"][0], SMALL["unet_bilinear"][1]),
        (lambda: models.unet(1, 2, 3, 3, dtype=np.float64, rng=1), (2, 1, 17, 13)),
        (lambda: models.unet(1, 2, 3, 3, bilinear=True, dtype=np.float64, rng=1), (2, 1, 17, 13)),
    ],
)
def test_backward_by_finite_differences(build, shape):
    model = build(np.float64) if build in [v[0] for v in SMALL.values()] else build()
    model.reset_parameters(np.random.default_rng(3))
    x = np.random.default_rng(4).standard_normal(shape)
    _directional_check(model, x)


def test_vgg11_backward_by_finite_differences():
    """The whole VGG-11 (float64, 1 GB of parameters), one directional check at 32x32 moving
    the input and the first and last layers' parameters."""
    with unallocated():  # then uniform weights: cheaper than torchvision's normal draws
        model = models.vgg11(num_classes=3, dropout=0.0, dtype=np.float64)
    model._allocate()
    rng = np.random.default_rng(5)
    for p in model.parameters().values():
        bound = np.sqrt(3 / np.prod(p.shape[1:])) if p.ndim > 1 else 0.1
        rng.random(out=p)  # in place: no 800 MB temporaries
        p -= 0.5
        p *= 2 * bound
    x = rng.standard_normal((1, 3, 32, 32))
    _directional_check(
        model,
        x,
        n_dirs=1,
        only={
            "features.0.weight",
            "features.0.bias",
            "features.18.weight",
            "classifier.6.weight",
            "classifier.6.bias",
        },
    )


def test_needs_input_grad_false_gives_the_same_parameter_gradients():
    model = SMALL["resnet18"][0](np.float64)
    x = np.random.default_rng(6).standard_normal(SMALL["resnet18"][1])
    r = np.random.default_rng(7).standard_normal((2, 4))
    model(x)
    model.backward(r)
    full = {k: g.copy() for k, g in model.grads().items()}
    model.zero_grad()
    model(x)
    assert model.backward(r, needs_input_grad=False) is None
    for k, g in model.grads().items():
        np.testing.assert_array_equal(g, full[k])


def test_eval_mode_keeps_nothing():
    model = SMALL["resnet18"][0](np.float32).eval()
    model(np.zeros((1, 3, 32, 32), np.float32))
    with pytest.raises(RuntimeError, match="training mode"):
        model.backward(np.ones((1, 4), np.float32))
    assert all(
        getattr(layer, "_saved", None) is None
        for _, layer in model.named_layers()
        if isinstance(layer, L.BatchNorm2D)
    )


@pytest.mark.parametrize(
    "spec, match",
    [
        ({"type": "UNet", "config": {"depth": 33}}, "depth must be"),
        ({"type": "UNet", "config": {"depth": 32, "base_channels": 2**20}}, "2\\*\\*depth"),
        ({"type": "ResNet", "config": {"block": "basic", "blocks": [1, 2]}}, "blocks must be"),
        ({"type": "ResNet", "config": {"block": "wide", "blocks": [1, 1, 1, 1]}}, "block must be"),
        (
            {"type": "ResNet", "config": {"block": "basic", "blocks": [1, 1, 1, 10**6]}},
            "blocks must be",
        ),
        ({"type": "MobileNetV2", "config": {"width_mult": 1e6}}, "width_mult must be"),
        ({"type": "MobileNetV2", "config": {"dropout": 1.5}}, "dropout must be"),
        (
            {
                "type": "InvertedResidual",
                "config": {"in_channels": 4, "out_channels": 4, "stride": 3, "expand_ratio": 6},
            },
            "stride",
        ),
        ({"type": "VGG", "config": {"num_classes": 0}}, "num_classes must be"),
    ],
)
def test_model_descriptions_from_files_are_bounded(spec, match):
    """A model file's description of a zoo model is checked like any layer's: bounded sizes,
    depths and block counts, before anything is built or allocated."""
    from convext.layers.registry import layer_from_spec

    with pytest.raises(ValueError, match=match):
        with unallocated():
            layer_from_spec(spec)
