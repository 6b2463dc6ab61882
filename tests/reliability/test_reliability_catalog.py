"""The catalogue of every public array function, shared by the reliability sweep.

Each ``Case`` knows how to build valid inputs for one public function (``make(rng, dtype, n)``
returns a dict argument name -> array for a batch of ``n``) and how to call it
(``call(**arrays)``). The layout, guard, batch-0, concurrency and thread-count tests run over
this table, so a new public function only needs one entry here; ``test_every_public_function_
is_catalogued`` fails until it has one.
"""

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pytest

import convext
from convext import functional as F
from convext import layers as L


@dataclass
class Case:
    name: str  # public function (or layer) exercised; several cases may share one
    call: Callable  # call(**arrays) -> array, tuple of arrays/scalars
    make: Callable  # make(rng, dtype, n) -> {argument name: array}
    batch0: bool = True  # meaningful with a batch of 0
    big: Callable = None  # make for a larger problem (crosses parallel thresholds)
    tags: tuple = field(default_factory=tuple)


def _norm(rng, shape, dtype):
    return rng.standard_normal(shape).astype(dtype)


def _pos(rng, shape, dtype):
    return (rng.random(shape) + 0.25).astype(dtype)


# --- convolution -----------------------------------------------------------------------------

CONV_KW = dict(stride=(2, 1), padding=(1, 2), dilation=(1, 2), groups=2)
SIDE_CONV_KW = dict(stride=(2, 1), padding=(0, 2, 3, 1), dilation=(1, 2), groups=2)


def _conv_make(rng, dtype, n, shape=(4, 9, 8), wshape=(6, 2, 3, 2)):
    x = _norm(rng, (n,) + shape, dtype)
    w = _norm(rng, wshape, dtype)
    return dict(x=x, weight=w, bias=_norm(rng, wshape[0], dtype))


def _conv_bwd_make(rng, dtype, n, shape=(4, 9, 8), wshape=(6, 2, 3, 2), kw=CONV_KW):
    d = _conv_make(rng, dtype, n, shape, wshape)
    y = convext.conv2d(d["x"], d["weight"], **kw)
    return dict(grad_out=_norm(rng, y.shape, dtype), x=d["x"], weight=d["weight"])


TCONV_KW = dict(stride=(2, 1), padding=(1, 0), output_padding=(1, 0), groups=2, dilation=(1, 2))


def _tconv_make(rng, dtype, n, shape=(4, 6, 5), wshape=(4, 3, 3, 2)):
    return dict(
        x=_norm(rng, (n,) + shape, dtype),
        weight=_norm(rng, wshape, dtype),
        bias=_norm(rng, wshape[1] * TCONV_KW["groups"], dtype),
    )


def _tconv_bwd_make(rng, dtype, n, shape=(4, 6, 5), wshape=(4, 3, 3, 2)):
    d = _tconv_make(rng, dtype, n, shape, wshape)
    y = convext.conv_transpose2d(d["x"], d["weight"], **TCONV_KW)
    return dict(grad_out=_norm(rng, y.shape, dtype), x=d["x"], weight=d["weight"])


def _linear_make(rng, dtype, n, k=7, f=5):
    return dict(
        x=_norm(rng, (n, 3, k), dtype), weight=_norm(rng, (f, k), dtype), bias=_norm(rng, f, dtype)
    )


def _linear_bwd_make(rng, dtype, n, k=7, f=5):
    d = _linear_make(rng, dtype, n, k, f)
    return dict(grad_out=_norm(rng, (n, 3, f), dtype), x=d["x"], weight=d["weight"])


def _big_conv(rng, dtype, n=None):
    return _conv_make(rng, dtype, 3, (8, 30, 28), (16, 4, 3, 3))


def _big_conv_bwd(rng, dtype, n=None):
    return _conv_bwd_make(rng, dtype, 3, (8, 30, 28), (16, 4, 3, 3))


# --- pooling ---------------------------------------------------------------------------------

MAXP = dict(kernel_size=(3, 2), stride=(2, 1), padding=(1, 1), dilation=(1, 2), ceil_mode=True)
AVGP = dict(
    kernel_size=(3, 2), stride=(2, 3), padding=(1, 1), ceil_mode=True, count_include_pad=False
)
LPP = dict(norm_type=2.0, kernel_size=(2, 3), stride=(2, 2), ceil_mode=True)
SIDE_MAXP = dict(
    kernel_size=(3, 2), stride=(2, 1), padding=(0, 1, 1, 0), dilation=(1, 2), ceil_mode=True
)
SIDE_AVGP = dict(
    kernel_size=(3, 4), stride=(2, 3), padding=(1, 0, 2, 1), ceil_mode=True, count_include_pad=True
)


def _x(shape=(3, 9, 8), pos=False):
    def make(rng, dtype, n):
        return dict(x=(_pos if pos else _norm)(rng, (n,) + shape, dtype))

    return make


def _maxb_make(rng, dtype, n, shape=(3, 9, 8)):
    x = _norm(rng, (n,) + shape, dtype)
    y, idx = F.max_pool2d(x, **MAXP, return_indices=True)
    return dict(grad_out=_norm(rng, y.shape, dtype), indices=idx, input_shape=x.shape)


def _avgb_make(rng, dtype, n, shape=(3, 9, 8), kw=AVGP):
    y = F.avg_pool2d(np.zeros((n,) + shape, dtype), **kw)
    return dict(grad_out=_norm(rng, y.shape, dtype), input_shape=(n,) + shape)


def _lpb_make(rng, dtype, n, shape=(3, 9, 8)):
    x = _norm(rng, (n,) + shape, dtype)
    y = F.lp_pool2d(x, **LPP)
    return dict(grad_out=_norm(rng, y.shape, dtype), x=x, out=y)


def _gapb_make(rng, dtype, n, shape=(3, 9, 8)):
    return dict(grad_out=_norm(rng, (n, shape[0], 1, 1), dtype), input_shape=(n,) + shape)


# --- activations and losses ------------------------------------------------------------------


def _act(fn, **kw):
    return lambda x: getattr(F, fn)(x, **kw)


def _act_b(fn, second, **kw):
    return lambda grad_out, **a: getattr(F, fn)(grad_out, a[second], **kw)


def _actb_make(second, fwd=None, **kw):
    def make(rng, dtype, n):
        x = _norm(rng, (n, 5, 3), dtype) * 3
        v = x if fwd is None else getattr(F, fwd)(x, **kw)
        return {"grad_out": _norm(rng, x.shape, dtype), second: v}

    return make


def _pair_make(lo=None, prob=False):
    def make(rng, dtype, n):
        a = _norm(rng, (n, 4, 3), dtype)
        b = _norm(rng, (n, 4, 3), dtype)
        if lo is not None:
            a, b = np.abs(a) + dtype(lo), np.abs(b) + dtype(lo)
        if prob:
            a = (rng.random((n, 4, 3)) * 0.98 + 0.01).astype(dtype)
            b = rng.random((n, 4, 3)).astype(dtype)
        return dict(input=a, target=b)

    return make


def _ce_make(prob):
    def make(rng, dtype, n):
        z = _norm(rng, (n, 5), dtype) * 4
        if prob:
            t = rng.random((n, 5)).astype(dtype)
            t /= t.sum(axis=1, keepdims=True)
        else:
            t = rng.integers(0, 5, n)
        return dict(logits=z, target=t)

    return make


def _nll_make(rng, dtype, n):
    return dict(log_probs=F.log_softmax(_norm(rng, (n, 5), dtype), 1), target=rng.integers(0, 5, n))


def _loss(fn, **kw):
    return lambda **a: getattr(F, fn)(**a, **kw)


# --- the CNN ops: normalisation, pointwise activations, resampling ------------------------------


def _bn_make(rng, dtype, n, shape=(3, 6, 5)):
    C = shape[0]
    return dict(
        x=_norm(rng, (n,) + shape, dtype),
        running_mean=_norm(rng, C, dtype),
        running_var=_pos(rng, C, dtype),
        weight=_norm(rng, C, dtype),
        bias=_norm(rng, C, dtype),
    )


def _bn_eval(**a):
    # (the statistics it would return are the running ones, not results of the batch)
    return F.batch_norm(**a, training=False)


def _bn_train(**a):
    # the running statistics are updated in place: work on copies, so repeated calls agree
    a = dict(a, running_mean=np.array(a["running_mean"]), running_var=np.array(a["running_var"]))
    y, mean, invstd = F.batch_norm(**a, training=True, return_stats=True)
    return y, mean, invstd, a["running_mean"], a["running_var"]


def _bnb_make(training):
    def make(rng, dtype, n, shape=(3, 6, 5)):
        d = _bn_make(rng, dtype, n, shape)
        if training:
            _, mean, invstd = F.batch_norm(d["x"], None, None, training=True, return_stats=True)
        else:
            mean, invstd = d["running_mean"], (1 / np.sqrt(d["running_var"] + 1e-5)).astype(dtype)
        return dict(
            grad_out=_norm(rng, d["x"].shape, dtype),
            x=d["x"],
            mean=mean,
            invstd=invstd,
            weight=d["weight"],
        )

    return make


def _adb_make(rng, dtype, n, shape=(3, 9, 8)):
    return dict(grad_out=_norm(rng, (n, shape[0], 4, 3), dtype), input_shape=(n,) + shape)


def _amb_make(rng, dtype, n, shape=(3, 9, 8)):
    x = _norm(rng, (n,) + shape, dtype)
    y, idx = F.adaptive_max_pool2d(x, (4, 3), return_indices=True)
    return dict(grad_out=_norm(rng, y.shape, dtype), indices=idx, input_shape=x.shape)


INTERP = [
    dict(scale_factor=1.5, mode="nearest"),
    dict(size=(5, 11), mode="bilinear"),
    dict(size=(7, 4), mode="bilinear", align_corners=True),
]


def _interpb_make(kw):
    def make(rng, dtype, n, shape=(3, 9, 8)):
        y = F.interpolate(np.zeros((n,) + shape, dtype), **kw)
        return dict(grad_out=_norm(rng, y.shape, dtype), input_shape=(n,) + shape)

    return make


def _unpool_make(rng, dtype, n, shape=(3, 9, 8)):
    _, idx = F.max_pool2d(_norm(rng, (n,) + shape, dtype), 2, return_indices=True)
    return dict(x=_norm(rng, idx.shape, dtype), indices=idx)


def _unpoolb_make(rng, dtype, n, shape=(3, 9, 8)):
    d = _unpool_make(rng, dtype, n, shape)
    y = F.max_unpool2d(d["x"], d["indices"], 2)
    return dict(grad_out=_norm(rng, y.shape, dtype), indices=d["indices"], input_shape=d["x"].shape)


# --- layers ----------------------------------------------------------------------------------


def _layer(factory, needs_input_grad=True):
    """forward then backward of a fresh layer; returns (y, grad_x, *parameter gradients)."""

    def call(x, grad_out):
        layer = factory(x.dtype)
        y = layer.forward(x)
        gx = layer.backward(grad_out, needs_input_grad=needs_input_grad)
        return (y, gx) + tuple(layer.grads()[k] for k in sorted(layer.grads()))

    return call


def _layer_make(factory, shape):
    def make(rng, dtype, n):
        x = _norm(rng, (n,) + shape, dtype)
        y = factory(dtype).forward(x.copy())
        return dict(x=x, grad_out=_norm(rng, y.shape, dtype))

    return make


class _PoolUnpool(L.Layer):
    """max_pool2d with indices, then the MaxUnpool2D layer under test (its two inputs)."""

    def __init__(self):
        super().__init__()
        self.unpool = L.MaxUnpool2D(2)

    def forward(self, x):
        y, self._idx = F.max_pool2d(x, 2, return_indices=True)
        self._shape = x.shape
        return self.unpool(y, self._idx)

    def backward(self, grad_out, needs_input_grad=True):
        g = self.unpool.backward(grad_out)
        return F.max_pool2d_backward(g, self._idx, self._shape)


LAYER_FACTORIES = {
    "Conv2D": (
        lambda dt: L.Conv2D(4, 6, (3, 2), stride=(1, 2), padding=1, groups=2, dtype=dt, rng=1),
        (4, 7, 8),
    ),
    "ConvTranspose2D": (
        lambda dt: L.ConvTranspose2D(
            4, 6, (3, 2), stride=2, padding=1, output_padding=1, groups=2, dtype=dt, rng=1
        ),
        (4, 5, 6),
    ),
    "Dense": (lambda dt: L.Dense(12, 5, dtype=dt, rng=2), (12,)),
    "MaxPool2D": (lambda dt: L.MaxPool2D(3, 2, 1), (3, 7, 8)),
    "AvgPool2D": (lambda dt: L.AvgPool2D((2, 3), 2, (1, 1), ceil_mode=True), (3, 7, 8)),
    "LPPool2D": (lambda dt: L.LPPool2D(2, 2), (3, 7, 8)),
    "GlobalAvgPool2D": (lambda dt: L.GlobalAvgPool2D(), (3, 7, 8)),
    "BatchNorm2D": (lambda dt: L.BatchNorm2D(3, dtype=dt), (3, 5, 4)),
    "Flatten": (lambda dt: L.Flatten(), (3, 4, 2)),
    "Dropout": (lambda dt: L.Dropout(0.3, rng=5), (3, 4, 2)),
    "ReLU": (lambda dt: L.ReLU(), (3, 4, 2)),
    "LeakyReLU": (lambda dt: L.LeakyReLU(0.1), (3, 4, 2)),
    "ELU": (lambda dt: L.ELU(0.7), (3, 4, 2)),
    "Sigmoid": (lambda dt: L.Sigmoid(), (3, 4, 2)),
    "Tanh": (lambda dt: L.Tanh(), (3, 4, 2)),
    "Softmax": (lambda dt: L.Softmax(), (5, 2)),
    "LogSoftmax": (lambda dt: L.LogSoftmax(), (5, 2)),
    "Sequential": (
        lambda dt: L.Sequential(
            L.Conv2D(2, 4, 3, padding=1, dtype=dt, rng=3),
            L.ReLU(),
            L.MaxPool2D(2),
            L.Flatten(),
            L.Dense(4 * 3 * 3, 3, dtype=dt, rng=4),
        ),
        (2, 6, 7),
    ),
    "Identity": (lambda dt: L.Identity(), (3, 4, 2)),
    "ReLU6": (lambda dt: L.ReLU6(), (3, 4, 2)),
    "Hardtanh": (lambda dt: L.Hardtanh(-0.5, 1.5), (3, 4, 2)),
    "SiLU": (lambda dt: L.SiLU(), (3, 4, 2)),
    "Hardswish": (lambda dt: L.Hardswish(), (3, 4, 2)),
    "Hardsigmoid": (lambda dt: L.Hardsigmoid(), (3, 4, 2)),
    "GELU": (lambda dt: L.GELU("tanh"), (3, 4, 2)),
    "AdaptiveAvgPool2D": (lambda dt: L.AdaptiveAvgPool2D((3, None)), (3, 7, 8)),
    "AdaptiveMaxPool2D": (lambda dt: L.AdaptiveMaxPool2D(3), (3, 7, 8)),
    "Upsample": (
        lambda dt: L.Upsample(scale_factor=2, mode="bilinear", align_corners=True),
        (3, 5, 4),
    ),
    "MaxUnpool2D": (lambda dt: _PoolUnpool(), (3, 6, 8)),
    "Dropout2D": (lambda dt: L.Dropout2D(0.3, rng=5), (3, 4, 2)),
    "Residual": (
        lambda dt: L.Residual(
            L.Sequential(L.Conv2D(3, 3, 3, padding=1, dtype=dt, rng=6), L.Tanh()),
            L.Conv2D(3, 3, 1, dtype=dt, rng=7),
        ),
        (3, 5, 4),
    ),
    "Concat": (
        lambda dt: L.Concat(
            L.Conv2D(2, 3, 1, dtype=dt, rng=8),
            L.Conv2D(2, 4, 3, padding=1, dtype=dt, rng=9),
            L.Identity(),
        ),
        (2, 5, 4),
    ),
    # graph op layers: the ones with several inputs exercised inside a Graph (x and tanh(x))
    **{
        op: (
            lambda dt, op=op: L.Graph(
                ["x"],
                [
                    ("t", L.Tanh(), ["x"]),
                    ("s", L.Sigmoid(), ["x"]),
                    ("op", getattr(L, op)(), ["t", "s"]),
                ],
                ["op"],
            ),
            (3, 4, 2),
        )
        for op in ("Add", "Sub", "Mul", "Div")
    },
    "Cat": (
        lambda dt: L.Graph(
            ["x"], [("t", L.Tanh(), ["x"]), ("c", L.Cat(axis=2), ["x", "t", "x"])], ["c"]
        ),
        (3, 4, 2),
    ),
    "Constant": (
        lambda dt: L.Graph(
            ["x"],
            [
                (
                    "c",
                    L.Constant([3, 1, 1], dt, value=np.array([0.5, -1.0, 2.0]).reshape(3, 1, 1)),
                    [],
                ),
                ("m", L.Mul(), ["x", "c"]),
            ],
            ["m"],
        ),
        (3, 4, 2),
    ),
    "Reshape": (lambda dt: L.Reshape([0, 4, 6]), (3, 4, 2)),
    "Transpose": (lambda dt: L.Transpose([0, 2, 3, 1]), (3, 4, 2)),
    "Pad": (lambda dt: L.Pad([1, 2, 2, 1], mode="reflect"), (3, 4, 3)),
    "Graph": (
        lambda dt: L.Graph(
            ["x"],
            [
                ("conv", L.Conv2D(3, 3, 3, padding=1, dtype=dt, rng=10), ["x"]),
                ("relu", L.ReLU(), ["conv"]),
                ("add", L.Add(), ["relu", "x"]),
            ],
            ["add"],
        ),
        (3, 5, 4),
    ),
}


def _cases():
    c = [
        Case("conv2d", lambda **a: convext.conv2d(**a, **CONV_KW), _conv_make, big=_big_conv),
        Case(
            "conv2d",
            lambda **a: convext.conv2d(**a),
            lambda r, d, n: _conv_make(r, d, n, (3, 6, 7), (5, 3, 1, 1)),
            tags=("1x1",),
        ),
        Case(
            "conv2d",
            lambda **a: convext.conv2d(**a, padding="same"),
            lambda r, d, n: _conv_make(r, d, n, (3, 6, 7), (4, 3, 4, 3)),
            tags=("same",),
        ),
        Case(
            "conv2d",
            lambda **a: convext.conv2d(**a, padding=1, groups=4),
            lambda r, d, n: _conv_make(r, d, n, (4, 6, 7), (8, 1, 3, 3)),
            tags=("depthwise",),
        ),
        Case(
            "conv2d",
            lambda **a: convext.conv2d(**a, **SIDE_CONV_KW),
            _conv_make,
            big=_big_conv,
            tags=("side-padding",),
        ),
        Case(
            "conv2d",
            lambda **a: convext.conv2d(**a, padding=(0, 2, 1, 0), groups=4),
            lambda r, d, n: _conv_make(r, d, n, (4, 6, 7), (4, 1, 3, 3)),
            tags=("depthwise", "side-padding"),
        ),
        Case(
            "conv2d_backward",
            lambda **a: convext.conv2d_backward(**a, **SIDE_CONV_KW),
            lambda r, d, n: _conv_bwd_make(r, d, n, kw=SIDE_CONV_KW),
            tags=("side-padding",),
        ),
        Case(
            "conv_transpose2d",
            lambda **a: convext.conv_transpose2d(**a, **TCONV_KW),
            _tconv_make,
            big=lambda r, d, n=None: _tconv_make(r, d, 3, (16, 20, 18), (16, 4, 3, 3)),
        ),
        Case(
            "conv_transpose2d",
            lambda **a: convext.conv_transpose2d(**a, groups=4),
            lambda r, d, n: dict(
                x=_norm(r, (n, 4, 6, 7), d), weight=_norm(r, (4, 1, 3, 3), d), bias=_norm(r, 4, d)
            ),
            tags=("depthwise",),
        ),
        Case(
            "conv_transpose2d_backward",
            lambda **a: convext.conv_transpose2d_backward(**a, **TCONV_KW),
            _tconv_bwd_make,
            big=lambda r, d, n=None: _tconv_bwd_make(r, d, 3, (16, 20, 18), (16, 4, 3, 3)),
        ),
        Case(
            "linear",
            lambda **a: F.linear(**a),
            _linear_make,
            big=lambda r, d, n=None: _linear_make(r, d, 300, 400, 120),
        ),
        Case(
            "linear_backward",
            lambda **a: F.linear_backward(**a),
            _linear_bwd_make,
            big=lambda r, d, n=None: _linear_bwd_make(r, d, 300, 400, 120),
        ),
        Case(
            "conv2d_backward",
            lambda **a: convext.conv2d_backward(**a, **CONV_KW),
            _conv_bwd_make,
            big=_big_conv_bwd,
        ),
        Case(
            "max_pool2d",
            lambda x: F.max_pool2d(x, **MAXP, return_indices=True),
            _x(),
            big=lambda r, d, n=None: dict(x=_norm(r, (4, 8, 40, 41), d)),
        ),
        Case(
            "max_pool2d_backward",
            F.max_pool2d_backward,
            _maxb_make,
            big=lambda r, d, n=None: _maxb_make(r, d, 4, (8, 40, 41)),
        ),
        Case(
            "avg_pool2d",
            lambda x: F.avg_pool2d(x, **AVGP),
            _x(),
            big=lambda r, d, n=None: dict(x=_norm(r, (4, 8, 40, 41), d)),
        ),
        Case(
            "avg_pool2d",
            lambda x: F.avg_pool2d(x, 3, 1, 1, divisor_override=5),
            _x(),
            tags=("divisor",),
        ),
        Case(
            "avg_pool2d",
            lambda x: F.avg_pool2d(x, **SIDE_AVGP),
            _x(),
            big=lambda r, d, n=None: dict(x=_norm(r, (4, 8, 40, 41), d)),
            tags=("side-padding",),
        ),
        Case(
            "avg_pool2d_backward",
            lambda grad_out, input_shape: F.avg_pool2d_backward(grad_out, input_shape, **SIDE_AVGP),
            lambda r, d, n: _avgb_make(r, d, n, kw=SIDE_AVGP),
            tags=("side-padding",),
        ),
        Case(
            "max_pool2d",
            lambda x: F.max_pool2d(x, **SIDE_MAXP, return_indices=True),
            _x(),
            tags=("side-padding",),
        ),
        Case(
            "lp_pool2d",
            lambda x: F.lp_pool2d(x, **LPP, padding=(1, 0, 0, 1)),
            _x(),
            tags=("side-padding",),
        ),
        Case(
            "avg_pool2d_backward",
            lambda **a: F.avg_pool2d_backward(**a, **AVGP),
            _avgb_make,
            big=lambda r, d, n=None: _avgb_make(r, d, 4, (8, 40, 41)),
        ),
        Case("lp_pool2d", lambda x: F.lp_pool2d(x, **LPP), _x()),
        Case("lp_pool2d", lambda x: F.lp_pool2d(x, 3.0, 2), _x(pos=True), tags=("p3",)),
        Case(
            "lp_pool2d_backward",
            lambda grad_out, x, out: F.lp_pool2d_backward(grad_out, x, out, **LPP),
            _lpb_make,
        ),
        Case("global_avg_pool2d", lambda x: F.global_avg_pool2d(x), _x()),
        Case("global_avg_pool2d_backward", F.global_avg_pool2d_backward, _gapb_make),
    ]
    for fn, kw in [
        ("relu", {}),
        ("leaky_relu", dict(negative_slope=0.2)),
        ("elu", {}),
        ("sigmoid", {}),
        ("tanh", {}),
        ("softplus", dict(beta=2.0)),
        ("softmax", dict(axis=1)),
        ("log_softmax", dict(axis=1)),
    ]:
        c.append(Case(fn, _act(fn, **kw), lambda r, d, n: dict(x=_norm(r, (n, 5, 3), d) * 3)))
        second = "y" if fn in ("sigmoid", "tanh", "softmax", "log_softmax") else "x"
        c.append(
            Case(
                fn + "_backward",
                _act_b(fn + "_backward", second, **kw),
                _actb_make(second, fn if second == "y" else None, **kw),
            )
        )
    for fn, make in [
        ("mse_loss", _pair_make()),
        ("msle_loss", _pair_make(lo=0.1)),
        ("l1_loss", _pair_make()),
        ("l2_loss", _pair_make()),
        ("mape_loss", _pair_make()),
        ("binary_cross_entropy", _pair_make(prob=True)),
        ("binary_cross_entropy_with_logits", _pair_make()),
    ]:
        for red in ("mean", "sum", "none"):
            c.append(Case(fn, _loss(fn, reduction=red), make, tags=(red,)))
    c.append(
        Case(
            "binary_cross_entropy",
            lambda input, target, weight: F.binary_cross_entropy(input, target, weight),
            lambda r, d, n: dict(_pair_make(prob=True)(r, d, n), weight=_pos(r, (4, 3), d)),
            tags=("weight",),
        )
    )
    for red in ("mean", "sum", "none"):
        c.append(
            Case(
                "cross_entropy",
                _loss("cross_entropy", reduction=red),
                _ce_make(False),
                tags=(red, "index"),
            )
        )
        c.append(
            Case(
                "cross_entropy",
                _loss("cross_entropy", reduction=red),
                _ce_make(True),
                tags=(red, "prob"),
            )
        )
        c.append(Case("nll_loss", _loss("nll_loss", reduction=red), _nll_make, tags=(red,)))
    c += [
        Case(
            "batch_norm",
            _bn_eval,
            _bn_make,
            big=lambda r, d, n=None: _bn_make(r, d, 4, (8, 40, 41)),
        ),
        Case("batch_norm", _bn_train, _bn_make, batch0=False, tags=("train",)),
        Case(
            "batch_norm_backward",
            lambda **a: F.batch_norm_backward(**a, training=False),
            _bnb_make(False),
        ),
        Case(
            "batch_norm_backward",
            lambda **a: F.batch_norm_backward(**a, training=True),
            _bnb_make(True),
            batch0=False,
            tags=("train",),
            big=lambda r, d, n=None: _bnb_make(True)(r, d, 4, (8, 40, 41)),
        ),
        Case(
            "adaptive_avg_pool2d",
            lambda x: F.adaptive_avg_pool2d(x, (4, 3)),
            _x(),
            big=lambda r, d, n=None: dict(x=_norm(r, (4, 8, 40, 41), d)),
        ),
        Case("adaptive_avg_pool2d_backward", F.adaptive_avg_pool2d_backward, _adb_make),
        Case(
            "adaptive_max_pool2d",
            lambda x: F.adaptive_max_pool2d(x, (4, 3), return_indices=True),
            _x(),
            big=lambda r, d, n=None: dict(x=_norm(r, (4, 8, 40, 41), d)),
        ),
        Case("adaptive_max_pool2d_backward", F.adaptive_max_pool2d_backward, _amb_make),
        Case("max_unpool2d", lambda x, indices: F.max_unpool2d(x, indices, 2), _unpool_make),
        Case("max_unpool2d_backward", F.max_unpool2d_backward, _unpoolb_make),
    ]
    for i, kw in enumerate(INTERP):
        c.append(
            Case(
                "interpolate",
                lambda x, kw=kw: F.interpolate(x, **kw),
                _x(),
                tags=(str(i),),
                big=lambda r, d, n=None: dict(x=_norm(r, (4, 8, 40, 41), d)),
            )
        )
        c.append(
            Case(
                "interpolate_backward",
                lambda grad_out, input_shape, kw=kw: F.interpolate_backward(
                    grad_out, input_shape, **kw
                ),
                _interpb_make(kw),
                tags=(str(i),),
            )
        )
    for fn, kw in [
        ("relu6", {}),
        ("hardtanh", dict(min_val=-0.5, max_val=2.0)),
        ("hardswish", {}),
        ("hardsigmoid", {}),
        ("silu", {}),
        ("gelu", {}),
        ("gelu", dict(approximate="tanh")),
    ]:
        tags = tuple(kw.values())[:1] if fn == "gelu" else ()
        c.append(
            Case(fn, _act(fn, **kw), lambda r, d, n: dict(x=_norm(r, (n, 5, 3), d) * 3), tags=tags)
        )
        c.append(
            Case(fn + "_backward", _act_b(fn + "_backward", "x", **kw), _actb_make("x"), tags=tags)
        )
    for name, (factory, shape) in LAYER_FACTORIES.items():
        c.append(
            Case(
                name,
                _layer(factory),
                _layer_make(factory, shape),
                batch0=name not in ("BatchNorm2D",),
                tags=("layer",),
            )
        )
    return c


CASES = _cases()


def case_id(case):
    return "-".join((case.name,) + case.tags)


# --- comparing results -----------------------------------------------------------------------


def flatten(result):
    """The arrays of a result (tuples/lists flattened, scalars as 0-d arrays, None kept)."""
    if isinstance(result, (tuple, list)):
        return [a for r in result for a in flatten(r)]
    if result is None:
        return [None]
    return [np.asarray(result)]


def assert_identical(got, want, what=""):
    """Same structure, shapes, dtypes and bitwise the same values (NaN == NaN)."""
    got, want = flatten(got), flatten(want)
    assert len(got) == len(want), what
    for i, (a, b) in enumerate(zip(got, want, strict=True)):
        if a is None or b is None:
            assert a is None and b is None, f"{what} [{i}]"
            continue
        assert a.shape == b.shape and a.dtype == b.dtype, (
            f"{what} [{i}]: {a.shape} {a.dtype} vs {b.shape} {b.dtype}"
        )
        if a.dtype.kind == "f":
            same = (
                np.array_equal(a.view(f"u{a.itemsize}"), b.view(f"u{b.itemsize}"))
                if a.flags.c_contiguous and b.flags.c_contiguous
                else None
            )
            if same is None:
                same = np.array_equal(
                    np.ascontiguousarray(a).view(f"u{a.itemsize}"),
                    np.ascontiguousarray(b).view(f"u{b.itemsize}"),
                )
            if not same:
                diff = np.nanmax(np.abs(a.astype(np.float64) - b), initial=0)
                raise AssertionError(f"{what} [{i}]: not bitwise identical, max|diff| {diff}")
        else:
            np.testing.assert_array_equal(a, b, err_msg=f"{what} [{i}]")


# --- tests of the catalogue itself -----------------------------------------------------------


def test_every_public_function_is_catalogued():
    """Every array function of convext.functional and every layer has a catalogue entry."""
    names = {c.name for c in CASES}
    public = {n for n in F.__all__ if n not in ("conv_output_size",)}
    assert public - names == set(), f"not in the reliability catalogue: {public - names}"
    layer_names = {
        n
        for n in L.__all__
        if isinstance(getattr(L, n), type)
        and issubclass(getattr(L, n), L.Layer)
        and n not in ("Layer", "LayerList")
    }  # a LayerList has no forward
    assert layer_names - names == set(), f"layers not catalogued: {layer_names - names}"


@pytest.mark.parametrize("case", CASES, ids=case_id)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_case_runs_and_preserves_dtype(case, dtype):
    rng = np.random.default_rng(0)
    arrays = case.make(rng, dtype, 2)
    assert any(isinstance(v, np.ndarray) for v in arrays.values())
    for a in flatten(case.call(**arrays)):
        if a is not None and a.dtype.kind == "f":
            assert a.dtype == dtype, case_id(case)
            assert np.isfinite(a).all() or case.name.startswith("max_pool"), case_id(case)
