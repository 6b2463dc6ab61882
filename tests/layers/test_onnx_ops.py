"""The Onnx* node layers of convext.onnx (they need neither onnx nor torch): forward against
direct NumPy formulas, backward against finite differences (float64), save/load inside a
Graph, and eval-mode graphs running from several threads."""

import threading

import numpy as np
import pytest

import convext as cx
from convext import layers as L
from convext.onnx import _ops as O
from reference import numerical_grad

RNG = np.random.default_rng(99)


def _check_grad(layer, x, params=True):
    layer.train()
    y = layer(x)
    w = RNG.standard_normal(np.shape(y))
    layer.zero_grad()
    layer(x)
    gx = layer.backward(w)

    def f(xv):
        return float((w * layer(xv)).sum())

    np.testing.assert_allclose(gx, numerical_grad(f, x), rtol=1e-6, atol=1e-8)
    if params:
        grads = {k: v.copy() for k, v in layer.grads().items()}
        for name, p in layer.parameters().items():

            def fp(pv, p=p):
                old = p.copy()
                p[...] = pv
                try:
                    return float((w * layer(x)).sum())
                finally:
                    p[...] = old

            np.testing.assert_allclose(
                grads[name], numerical_grad(fp, p), rtol=1e-6, atol=1e-8, err_msg=name
            )


def _away_from_kinks(x, points, gap=0.05):
    """Move values within ``gap`` of a kink (where finite differences are meaningless)."""
    for p in points:
        near = np.abs(x - p) < gap
        x[near] = p + np.sign(x[near] - p + 1e-12) * 2 * gap
    return x


@pytest.mark.parametrize("lo, hi", [(0.0, 6.0), (-0.5, None), (None, 0.3), (0.0, None)])
def test_clip(lo, hi):
    layer = O.OnnxClip(lo, hi)
    x = _away_from_kinks(RNG.standard_normal((2, 3, 4)) * 3, [v for v in (lo, hi) if v is not None])
    np.testing.assert_array_equal(
        layer(x), np.clip(x, -np.inf if lo is None else lo, np.inf if hi is None else hi)
    )
    _check_grad(layer, x)


@pytest.mark.parametrize("lo, hi", [(2.0, 1.0), (1.0, -0.5)])
def test_clip_with_min_above_max(lo, hi):
    """ONNX's min(max(x, min), max) is max everywhere where min > max (NaN stays NaN), with
    gradient 0, as onnxruntime computes it; the layer refused it. (Its own generator: the
    module's RNG feeds the other tests.)"""
    x = np.random.default_rng(5).standard_normal((2, 3, 4)) * 3
    x[0, 0, :3] = [np.nan, np.inf, -np.inf]
    layer = O.OnnxClip(lo, hi).train()
    np.testing.assert_array_equal(layer(x), np.where(np.isnan(x), np.nan, hi))
    np.testing.assert_array_equal(layer.backward(np.ones_like(x)), np.zeros_like(x))
    again = O.OnnxClip(**layer.get_config())
    assert (again.min, again.max) == (lo, hi)
    np.testing.assert_array_equal(again(x), layer(x))


@pytest.mark.parametrize("alpha, beta", [(0.2, 0.5), (1 / 6, 0.5), (0.3, 0.4)])
def test_hardsigmoid(alpha, beta):
    layer = O.OnnxHardSigmoid(alpha, beta)
    x = _away_from_kinks(RNG.standard_normal((2, 3, 4)) * 4, [-beta / alpha, (1 - beta) / alpha])
    np.testing.assert_allclose(layer(x), np.clip(alpha * x + beta, 0, 1), rtol=1e-15)
    _check_grad(layer, x)


def test_hardswish_flatten_squeeze_unsqueeze_globalmax():
    x = _away_from_kinks(RNG.standard_normal((2, 3, 4, 5)) * 4, [-3, 3])
    _check_grad(O.OnnxHardSwish(), x)
    np.testing.assert_allclose(O.OnnxHardSwish()(x), x * np.clip(x + 3, 0, 6) / 6, rtol=1e-15)
    assert O.OnnxFlatten(2)(x).shape == (6, 20) and O.OnnxFlatten(0)(x).shape == (1, 120)
    _check_grad(O.OnnxFlatten(-1), x)
    y = O.OnnxUnsqueeze([0, -1])(x)
    assert y.shape == (1, 2, 3, 4, 5, 1)
    _check_grad(O.OnnxUnsqueeze([0, -1]), x)
    assert O.OnnxSqueeze([0, 5])(y).shape == x.shape
    with pytest.raises(ValueError, match="squeeze"):
        O.OnnxSqueeze([1])(x)
    g = O.OnnxGlobalMaxPool()(x)
    np.testing.assert_array_equal(g, x.max(axis=(2, 3), keepdims=True))
    _check_grad(O.OnnxGlobalMaxPool(), x)


@pytest.mark.parametrize(
    "kw",
    [
        dict(scale_factor=[2.0, 3.0]),
        dict(size=[7, 4], mode="bilinear"),
        dict(scale_factor=[2.0, 2.0], mode="bilinear", align_corners=True),
        dict(scale_factor=[5 / 3, 0.5]),
        dict(size=[1, 5], mode="bilinear", pytorch_half_pixel=True),
        dict(scale_factor=[1.7, 0.26], mode="bilinear", pytorch_half_pixel=True),
    ],
)
def test_resize_gradient(kw):
    _check_grad(O.OnnxResize(**kw), RNG.standard_normal((2, 2, 3, 4)))


@pytest.mark.parametrize(
    "k, s, pads", [((3, 3), (2, 2), (0, 2, 1, 0)), ((2, 3), (1, 2), (1, 0, 0, 2))]
)
def test_avg_pool_exclude_pad(k, s, pads):
    layer = O.OnnxAvgPoolExcludePad(k, s, pads)
    x = RNG.standard_normal((2, 3, 7, 6))
    y = layer(x)
    # direct definition: the mean of the real elements of each window of the padded plane
    t, b, l_, r = pads
    H, W = x.shape[2:]
    OH, OW = (H + t + b - k[0]) // s[0] + 1, (W + l_ + r - k[1]) // s[1] + 1
    want = np.empty(x.shape[:2] + (OH, OW))
    for i in range(OH):
        for j in range(OW):
            r0, c0 = i * s[0] - t, j * s[1] - l_
            win = x[:, :, max(r0, 0) : min(r0 + k[0], H), max(c0, 0) : min(c0 + k[1], W)]
            want[:, :, i, j] = win.mean(axis=(2, 3))
    np.testing.assert_allclose(y, want, rtol=1e-13)
    _check_grad(layer, x)


@pytest.mark.parametrize(
    "kw",
    [
        dict(stride=2, pads=(0, 1, 1, 0), output_padding=1),
        dict(stride=(1, 2), dilation=2, groups=2, bias=False),
        dict(stride=3, pads=(2, 2, 1, 1), output_padding=(2, 0)),
    ],
)
def test_conv_transpose_gradients(kw):
    layer = O.OnnxConvTranspose(4, 6, (3, 2), dtype="float64", **kw)
    layer.weight[...] = RNG.standard_normal(layer.weight.shape)
    if layer.bias is not None:
        layer.bias[...] = RNG.standard_normal(layer.bias.shape)
    _check_grad(layer, RNG.standard_normal((2, 4, 4, 3)))


def test_onnx_op_layers_save_and_load(tmp_path):
    ct = O.OnnxConvTranspose(3, 2, 2, stride=2, pads=(0, 1, 1, 0), dtype="float32")
    ct.weight[...] = RNG.standard_normal(ct.weight.shape)
    nodes = [
        ("ct", ct, ["x"]),
        ("clip", O.OnnxClip(None, 0.5), ["ct"]),
        ("hs", O.OnnxHardSigmoid(0.3, 0.4), ["clip"]),
        ("up", O.OnnxResize(scale_factor=[2.0, 2.0]), ["hs"]),
        ("pool", O.OnnxAvgPoolExcludePad([3, 3], [2, 2], [1, 0, 0, 1]), ["up"]),
        ("pad", L.Pad([1, 0, 0, 1], value=float("-inf")), ["pool"]),
        ("mp", L.MaxPool2D(2), ["pad"]),
        ("gm", O.OnnxGlobalMaxPool(), ["mp"]),
        ("fl", O.OnnxFlatten(1), ["gm"]),
        ("us", O.OnnxUnsqueeze([1]), ["fl"]),
        ("sq", O.OnnxSqueeze([1]), ["us"]),
    ]
    g = L.Graph(["x"], nodes, ["sq"]).eval()
    g.save(tmp_path / "g.npz")
    g2 = cx.load(tmp_path / "g.npz").eval()
    x = RNG.standard_normal((2, 3, 5, 4)).astype(np.float32)
    np.testing.assert_array_equal(g2(x), g(x))
    assert g2.node("clip").min is None and g2.node("pad").value == -np.inf


def test_eval_mode_graph_from_several_threads():
    g = L.Graph(
        ["x"],
        [
            ("c", L.Conv2D(3, 4, 3, padding=1, rng=1), ["x"]),
            ("t", L.Tanh(), ["c"]),
            ("m", L.Mul(), ["c", "t"]),
            ("p", L.Pad([1, 1, 1, 1], mode="edge"), ["m"]),
            ("k", L.Cat(axis=1), ["p", "p"]),
        ],
        ["k"],
    ).eval()
    xs = [RNG.standard_normal((2, 3, 8, 8)).astype(np.float32) for _ in range(4)]
    want = [g(x) for x in xs]
    got = [None] * 4

    def work(i):
        for _ in range(20):
            got[i] = g(xs[i])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for a, b in zip(got, want, strict=True):
        np.testing.assert_array_equal(a, b)
