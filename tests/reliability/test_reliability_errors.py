"""Error contract (docs/reliability.md check 6), table-driven over every public function.

For each function a valid call is described once (``SPECS``): its array arguments with their
allowed ranks, its integer, pair, bool, number and choice arguments. Generic invalid values are
derived from that description (None, integer/complex/string arrays, wrong rank, mixed float
dtypes, 0/negative/fractional/bool/string/wrong-length sizes, non-bool flags, ...), and
hand-written cases add the shape relations. Every invalid call must raise the documented
exception type (ValueError or TypeError) with a message naming the argument; conv2d's
caller-supplied ``out`` must be untouched.
"""

import re

import numpy as np
import pytest

import convext
from convext import functional as F
from convext import layers as L

R = np.random.default_rng(0)


def _a(*shape, dtype=np.float64, lo=None):
    a = R.standard_normal(shape).astype(dtype)
    return np.abs(a) * 0.5 + 0.1 if lo else a


X4 = _a(2, 4, 8, 7)
W4 = _a(6, 2, 3, 3)
GY = _a(2, 6, 6, 5)
WT = _a(4, 3, 3, 3)  # conv_transpose2d's weight (C_in, C_out/groups, kH, kW)
GYT = _a(2, 6, 10, 9)
XP = _a(2, 3, 8, 7)
_, IDX = F.max_pool2d(XP, 2, return_indices=True)
GP = _a(2, 3, 4, 3)
LPY = F.lp_pool2d(XP, 2, 2)
PROB = R.random((3, 4)) * 0.9 + 0.05


class Spec:
    def __init__(
        self,
        fn,
        args,
        arrays=None,
        ints=(),
        pos=(),
        pairs=(),
        bools=(),
        numbers=(),
        choices=None,
        optional=(),
        cases=(),
    ):
        self.fn = fn
        self.args = args  # a valid call
        self.arrays = arrays or {}  # float array argument -> allowed ranks
        self.ints = ints  # non-negative int arguments
        self.pos = pos  # positive int arguments
        self.pairs = pairs  # int arguments that also take a pair
        self.bools = bools
        self.numbers = numbers  # float scalar arguments
        self.choices = choices or {}  # argument -> an invalid value (also takes strings)
        self.optional = optional  # array arguments that may be None
        self.cases = cases  # (overrides, exception, regex)


_POOL = ("kernel_size", "stride", "padding", "dilation")
# divisor_override: any non-zero int, negative ones too (as torch)
_DIVISOR_CASES = [
    (dict(divisor_override=v), e, r"\bdivisor_override\b")
    for v, e in [
        (0, ValueError),
        (1.5, TypeError),
        (True, TypeError),
        ("2", TypeError),
        (float("nan"), TypeError),
        (2.0, TypeError),
    ]
]
_AR = (3, 4)

SPECS = {
    "conv2d": Spec(
        convext.conv2d,
        dict(x=X4, weight=W4, bias=_a(6), stride=1, padding=0, dilation=1, groups=2),
        arrays=dict(x=_AR, weight=(4,), bias=(1,)),
        ints=("padding",),
        pos=("stride", "dilation", "groups"),
        pairs=("stride", "padding", "dilation"),
        choices=dict(padding="full"),
        optional=("bias",),
        cases=[
            (dict(groups=4), ValueError, r"groups=4"),
            (dict(groups=1), ValueError, r"x has 4 channels"),
            (dict(bias=_a(5)), ValueError, r"bias must have shape \(6,\)"),
            (dict(weight=_a(6, 2, 9, 3)), ValueError, r"kernel.*padded input"),
            (
                dict(weight=_a(6, 2, 0, 3)),
                ValueError,
                r"weight must have at least one filter and a kernel",
            ),
            (dict(padding="same", stride=2), ValueError, r"padding='same'.*stride"),
            (dict(stride=(1, 1, 1)), ValueError, r"stride"),
        ],
    ),
    "linear": Spec(
        F.linear,
        dict(x=_a(2, 3, 7), weight=_a(5, 7), bias=_a(5)),
        arrays=dict(x=range(1, 33), weight=(2,), bias=(1,)),
        optional=("bias",),
        cases=[
            (
                dict(weight=_a(5, 6)),
                ValueError,
                r"x must have shape \(\.\.\., 6\).*\(5, 6\).*\(2, 3, 7\)",
            ),
            (dict(bias=_a(4)), ValueError, r"bias must have shape \(5,\)"),
            (dict(x=_a()), ValueError, r"x must be at least 1-dimensional"),
        ],
    ),
    "linear_backward": Spec(
        F.linear_backward,
        dict(grad_out=_a(2, 3, 5), x=_a(2, 3, 7), weight=_a(5, 7)),
        arrays=dict(grad_out=range(1, 33), x=range(1, 33), weight=(2,)),
        cases=[(dict(grad_out=_a(2, 3, 4)), ValueError, r"grad_out must have shape \(2, 3, 5\)")],
    ),
    "conv2d_backward": Spec(
        convext.conv2d_backward,
        dict(grad_out=GY, x=X4, weight=W4, stride=1, padding=0, dilation=1, groups=2),
        arrays=dict(grad_out=_AR, x=_AR, weight=(4,)),
        ints=("padding",),
        pos=("stride", "dilation", "groups"),
        pairs=("stride", "padding", "dilation"),
        choices=dict(padding="full"),
        cases=[
            (
                dict(grad_out=_a(2, 6, 6, 6)),
                ValueError,
                r"grad_out must have the output's shape \(2, 6, 6, 5\)",
            ),
            (dict(grad_out=_a(6, 6, 5)), ValueError, r"grad_out"),
            (dict(groups=3), ValueError, r"groups=3"),
        ],
    ),
    "conv_transpose2d": Spec(
        convext.conv_transpose2d,
        dict(
            x=X4, weight=WT, bias=_a(6), stride=1, padding=0, output_padding=0, groups=2, dilation=1
        ),
        arrays=dict(x=_AR, weight=(4,), bias=(1,)),
        ints=("padding", "output_padding"),
        pos=("stride", "dilation", "groups"),
        pairs=("stride", "padding", "output_padding", "dilation"),
        optional=("bias",),
        cases=[
            (dict(groups=3), ValueError, r"groups=3"),
            (dict(weight=_a(6, 3, 3, 3)), ValueError, r"x has 4 channels"),
            (dict(bias=_a(5)), ValueError, r"bias must have shape \(6,\)"),
            (dict(output_padding=1), ValueError, r"output_padding"),
            (dict(output_padding=2, stride=2, dilation=2), ValueError, r"output_padding"),
            (dict(padding=7), ValueError, r"output size"),
            (dict(weight=_a(4, 3, 0, 3)), ValueError, r"weight must have at least one"),
        ],
    ),
    "conv_transpose2d_backward": Spec(
        convext.conv_transpose2d_backward,
        dict(
            grad_out=GYT,
            x=X4,
            weight=WT,
            stride=1,
            padding=0,
            output_padding=0,
            groups=2,
            dilation=1,
        ),
        arrays=dict(grad_out=_AR, x=_AR, weight=(4,)),
        ints=("padding", "output_padding"),
        pos=("stride", "dilation", "groups"),
        pairs=("stride", "padding", "output_padding", "dilation"),
        cases=[
            (
                dict(grad_out=_a(2, 6, 10, 10)),
                ValueError,
                r"grad_out must have the output's shape \(2, 6, 10, 9\)",
            ),
            (dict(groups=3), ValueError, r"groups=3"),
            (dict(output_padding=1), ValueError, r"output_padding"),
        ],
    ),
    "max_pool2d": Spec(
        F.max_pool2d,
        dict(
            x=XP,
            kernel_size=2,
            stride=None,
            padding=0,
            dilation=1,
            ceil_mode=False,
            return_indices=False,
        ),
        arrays=dict(x=_AR),
        ints=("padding",),
        pos=("kernel_size", "stride", "dilation"),
        pairs=_POOL,
        bools=("ceil_mode", "return_indices"),
        cases=[
            (dict(kernel_size=3, padding=2), ValueError, r"padding.*half"),
            (dict(kernel_size=9), ValueError, r"kernel.*padded input"),
            (dict(kernel_size=3, dilation=4), ValueError, r"kernel.*dilation"),
        ],
    ),
    "max_pool2d_backward": Spec(
        F.max_pool2d_backward,
        dict(grad_out=GP, indices=IDX, input_shape=XP.shape),
        arrays=dict(grad_out=_AR),
        cases=[
            (dict(indices=IDX.astype(np.float64)), TypeError, r"indices must be an integer"),
            (dict(indices=IDX[:, :, :2]), ValueError, r"indices"),
            (dict(indices=IDX + 100), ValueError, r"indices.*outside"),
            (dict(indices=IDX - 5), ValueError, r"indices.*outside"),
            (dict(indices=None), TypeError, r"indices"),
            (dict(input_shape=(2, 4, 8, 7)), ValueError, r"input_shape"),
            (dict(input_shape=(3, 8, 7)), ValueError, r"input_shape"),
            (dict(input_shape=(2, 3, -8, 7)), ValueError, r"input_shape"),
            (dict(input_shape=(2, 3, 8.5, 7)), TypeError, r"input_shape"),
            (dict(input_shape="2, 3, 8, 7"), TypeError, r"input_shape"),
            (dict(input_shape=None), TypeError, r"input_shape"),
        ],
    ),
    "avg_pool2d": Spec(
        F.avg_pool2d,
        dict(
            x=XP,
            kernel_size=2,
            stride=None,
            padding=0,
            ceil_mode=False,
            count_include_pad=True,
            divisor_override=None,
        ),
        arrays=dict(x=_AR),
        ints=("padding",),
        pos=("kernel_size", "stride"),
        pairs=("kernel_size", "stride", "padding"),
        bools=("ceil_mode", "count_include_pad"),
        cases=[
            (dict(kernel_size=2, padding=2), ValueError, r"padding.*half"),
            (dict(kernel_size=(2, 8)), ValueError, r"kernel.*padded input"),
            (dict(divisor_override=(2, 2)), TypeError, r"divisor_override"),
        ]
        + _DIVISOR_CASES,
    ),
    "avg_pool2d_backward": Spec(
        F.avg_pool2d_backward,
        dict(
            grad_out=GP,
            input_shape=XP.shape,
            kernel_size=2,
            stride=None,
            padding=0,
            ceil_mode=False,
            count_include_pad=True,
            divisor_override=None,
        ),
        arrays=dict(grad_out=_AR),
        ints=("padding",),
        pos=("kernel_size", "stride"),
        pairs=("kernel_size", "stride", "padding"),
        bools=("ceil_mode", "count_include_pad"),
        cases=[
            (dict(grad_out=_a(2, 3, 4, 4)), ValueError, r"grad_out must have shape \(2, 3, 4, 3\)"),
            (dict(input_shape=(2, 3, 8)), ValueError, r"grad_out|input_"),
            (dict(input_shape=(2, 3, 8, -7)), ValueError, r"input_shape"),
            (dict(input_shape=None), TypeError, r"input_shape"),
        ]
        + _DIVISOR_CASES,
    ),
    "lp_pool2d": Spec(
        F.lp_pool2d,
        dict(x=XP, norm_type=2.0, kernel_size=2, stride=None, ceil_mode=False),
        arrays=dict(x=_AR),
        pos=("kernel_size", "stride"),
        pairs=("kernel_size", "stride"),
        bools=("ceil_mode",),
        cases=[
            (dict(norm_type=0), ValueError, r"norm_type"),
            (dict(norm_type=-2.0), ValueError, r"norm_type"),
            (dict(norm_type=float("nan")), ValueError, r"norm_type"),
            (dict(norm_type="2"), TypeError, r"norm_type"),
            (dict(norm_type=None), TypeError, r"norm_type"),
            (dict(norm_type=True), TypeError, r"norm_type"),
            (dict(kernel_size=9), ValueError, r"kernel.*padded input"),
        ],
    ),
    "lp_pool2d_backward": Spec(
        F.lp_pool2d_backward,
        dict(
            grad_out=GP, x=XP, out=LPY, norm_type=2.0, kernel_size=2, stride=None, ceil_mode=False
        ),
        arrays=dict(grad_out=_AR, x=_AR, out=_AR),
        pos=("kernel_size", "stride"),
        pairs=("kernel_size", "stride"),
        bools=("ceil_mode",),
        cases=[
            (dict(norm_type=0), ValueError, r"norm_type"),
            (dict(norm_type="2"), TypeError, r"norm_type"),
            (dict(grad_out=_a(2, 3, 4, 4)), ValueError, r"grad_out"),
            (dict(out=_a(2, 3, 3, 3)), ValueError, r"out"),
        ],
    ),
    "global_avg_pool2d": Spec(
        F.global_avg_pool2d,
        dict(x=XP),
        arrays=dict(x=_AR),
        cases=[
            (dict(x=_a(2, 3, 0, 4)), ValueError, r"x must have non-empty planes"),
        ],
    ),
    "global_avg_pool2d_backward": Spec(
        F.global_avg_pool2d_backward,
        dict(grad_out=_a(2, 3, 1, 1), input_shape=XP.shape),
        arrays=dict(grad_out=_AR),
        cases=[
            (dict(grad_out=_a(2, 3, 2, 1)), ValueError, r"grad_out must have shape"),
            (dict(input_shape=(2, 3, 0, 7)), ValueError, r"grad_out|input_shape"),
            (dict(input_shape=None), TypeError, r"input_shape"),
        ],
    ),
}

_XA = _a(3, 4)
for _n, _kw in [
    ("relu", {}),
    ("leaky_relu", dict(negative_slope=0.1)),
    ("elu", dict(alpha=1.0)),
    ("sigmoid", {}),
    ("tanh", {}),
    ("softplus", dict(beta=1.0, threshold=20.0)),
    ("softmax", dict(axis=1)),
    ("log_softmax", dict(axis=1)),
]:
    _nums = tuple(k for k in _kw if k != "axis")
    _ax = (
        [
            (dict(axis=2), ValueError, r"axis"),
            (dict(axis=-3), ValueError, r"axis"),
            (dict(axis=1.0), TypeError, r"axis"),
            (dict(axis="1"), TypeError, r"axis"),
        ]
        if "axis" in _kw
        else []
    )
    SPECS[_n] = Spec(
        getattr(F, _n), dict(x=_XA, **_kw), arrays=dict(x=None), numbers=_nums, cases=_ax
    )
    _second = "y" if _n in ("sigmoid", "tanh", "softmax", "log_softmax") else "x"
    SPECS[_n + "_backward"] = Spec(
        getattr(F, _n + "_backward"),
        dict(grad_out=_a(3, 4), **{_second: _XA}, **_kw),
        arrays={"grad_out": None, _second: None},
        numbers=_nums,
        cases=_ax + [(dict(grad_out=_a(4, 3)), ValueError, r"grad_out")],
    )

_RED = dict(reduction="avg")
for _n in (
    "mse_loss",
    "msle_loss",
    "l1_loss",
    "l2_loss",
    "mape_loss",
    "binary_cross_entropy_with_logits",
    "binary_cross_entropy",
):
    _inp = PROB if _n == "binary_cross_entropy" else _a(3, 4, lo=True)
    _extra = []
    if _n == "msle_loss":
        _extra = [
            (dict(input=-np.ones((3, 4)) * 2), ValueError, r"input.*> -1"),
            (dict(target=-np.ones((3, 4)) * 2), ValueError, r"target.*> -1"),
        ]
    if _n == "binary_cross_entropy":
        _extra = [
            (dict(input=PROB + 1), ValueError, r"input.*between 0 and 1"),
            (dict(weight=_a(5)), ValueError, r"weight.*broadcast"),
            (dict(weight=_a(4, dtype=np.float32)), TypeError, r"weight"),
            (dict(weight=np.ones(4, np.int64)), TypeError, r"weight"),
        ]
    if _n == "l2_loss":
        _extra = [(dict(input=np.float64(1.0), target=np.float64(2.0)), ValueError, r"input")]
    SPECS[_n] = Spec(
        getattr(F, _n),
        dict(input=_inp, target=_a(3, 4, lo=True) * 0.5, reduction="mean"),
        arrays=dict(input=(0, 1, 2, 3), target=(0, 1, 2, 3)),
        choices=dict(reduction="avg"),
        cases=_extra
        + [
            (
                dict(target=_a(4, 3, lo=True)),
                ValueError,
                r"target must have the "
                r"shape of input",
            ),
            (dict(reduction=None), ValueError, r"reduction"),
            (dict(reduction=0), ValueError, r"reduction"),
        ],
    )

for _n, _arg in (("cross_entropy", "logits"), ("nll_loss", "log_probs")):
    SPECS[_n] = Spec(
        getattr(F, _n),
        {_arg: _a(3, 4), "target": np.array([0, 3, 1]), "reduction": "mean"},
        # (C,), (N, C) or (N, C, d1, ..., dk): only a scalar has the wrong rank
        arrays={_arg: tuple(range(1, 8))},
        choices=dict(reduction="avg"),
        cases=[
            (dict(target=np.array([0, 4, 1])), ValueError, r"target.*class index 4"),
            (dict(target=np.array([0, -1, 1])), ValueError, r"target.*-1"),
            (dict(target=np.array([0, 1])), ValueError, r"target must have shape"),
            (dict(target=np.array([[0, 1, 2]])), ValueError, r"target"),
            (dict(target=None), TypeError, r"target"),
            (dict(target="abc"), TypeError, r"target"),
        ]
        + (
            [
                (dict(target=_a(3, 5)), ValueError, r"target"),
                (dict(target=_a(3, 4, dtype=np.float32)), TypeError, r"target"),
            ]
            if _n == "cross_entropy"
            else [(dict(target=_a(3)), TypeError, r"target")]
        ),
    )


# the CNN ops: normalisation, pointwise activations, resampling
_C3 = _a(3)
_BNX = _a(2, 3, 5, 4)
SPECS["batch_norm"] = Spec(
    F.batch_norm,
    dict(
        x=_BNX,
        running_mean=_a(3),
        running_var=_a(3, lo=True),
        weight=_a(3),
        bias=_a(3),
        training=False,
        momentum=0.1,
        eps=1e-5,
        return_stats=False,
    ),
    arrays=dict(x=(2, 3, 4, 5)),
    bools=("training", "return_stats"),
    numbers=("momentum", "eps"),
    cases=[
        (dict(weight=_a(4)), ValueError, r"weight must have shape \(3,\)"),
        (dict(running_mean=_a(4)), ValueError, r"running_mean"),
        (dict(running_var=None), ValueError, r"running_mean and running_var"),
        (dict(eps=0.0), ValueError, r"eps"),
        (dict(bias=_a(3, dtype=np.float32)), TypeError, r"bias"),
    ],
)
SPECS["batch_norm_backward"] = Spec(
    F.batch_norm_backward,
    dict(
        grad_out=_a(2, 3, 5, 4),
        x=_BNX,
        mean=_a(3),
        invstd=_a(3, lo=True),
        weight=_a(3),
        training=True,
    ),
    arrays=dict(grad_out=(2, 3, 4, 5), x=(2, 3, 4, 5)),
    bools=("training",),
    cases=[
        (dict(grad_out=_a(2, 3, 4, 4)), ValueError, r"grad_out"),
        (dict(mean=_a(4)), ValueError, r"mean"),
        (dict(invstd=None), TypeError, r"invstd"),
    ],
)
for _n, _kw in [
    ("relu6", {}),
    ("hardtanh", dict(min_val=-1.0, max_val=1.0)),
    ("hardswish", {}),
    ("hardsigmoid", {}),
    ("silu", {}),
    ("gelu", dict(approximate="none")),
]:
    _nums = tuple(k for k in _kw if k != "approximate")
    _ch = dict(approximate="erf") if "approximate" in _kw else None
    _extra = [(dict(min_val=2.0), ValueError, r"min_val")] if _n == "hardtanh" else []
    SPECS[_n] = Spec(
        getattr(F, _n),
        dict(x=_XA, **_kw),
        arrays=dict(x=None),
        numbers=_nums,
        choices=_ch,
        cases=_extra,
    )
    SPECS[_n + "_backward"] = Spec(
        getattr(F, _n + "_backward"),
        dict(grad_out=_a(3, 4), x=_XA, **_kw),
        arrays=dict(grad_out=None, x=None),
        numbers=_nums,
        choices=_ch,
        cases=_extra + [(dict(grad_out=_a(4, 3)), ValueError, r"grad_out")],
    )
SPECS["adaptive_avg_pool2d"] = Spec(
    F.adaptive_avg_pool2d,
    dict(x=XP, output_size=(3, 2)),
    arrays=dict(x=_AR),
    cases=[
        (dict(output_size=-1), ValueError, r"output_size"),
        (dict(output_size=(1, 2, 3)), ValueError, r"output_size"),
        (dict(output_size=None), TypeError, r"output_size"),
        (dict(output_size=1.5), TypeError, r"output_size"),
        (dict(x=_a(2, 0, 8, 7)), ValueError, r"x must have non-empty"),
    ],
)
SPECS["adaptive_max_pool2d"] = Spec(
    F.adaptive_max_pool2d,
    dict(x=XP, output_size=(3, 2), return_indices=False),
    arrays=dict(x=_AR),
    bools=("return_indices",),
    cases=[
        (dict(output_size=-1), ValueError, r"output_size"),
    ],
)
_AGY = _a(2, 3, 3, 2)
_, _AIDX = F.adaptive_max_pool2d(XP, (3, 2), return_indices=True)
SPECS["adaptive_avg_pool2d_backward"] = Spec(
    F.adaptive_avg_pool2d_backward,
    dict(grad_out=_AGY, input_shape=XP.shape),
    arrays=dict(grad_out=_AR),
    cases=[
        (dict(input_shape=(2, 4, 8, 7)), ValueError, r"input_shape"),
        (dict(input_shape=None), TypeError, r"input_shape"),
    ],
)
SPECS["adaptive_max_pool2d_backward"] = Spec(
    F.adaptive_max_pool2d_backward,
    dict(grad_out=_AGY, indices=_AIDX, input_shape=XP.shape),
    arrays=dict(grad_out=_AR),
    cases=[
        (dict(indices=_AIDX.astype(np.float64)), TypeError, r"indices must be an integer"),
        (dict(indices=_AIDX + 100), ValueError, r"indices"),
        (dict(indices=_AIDX[:, :, :1]), ValueError, r"indices"),
        (dict(input_shape=None), TypeError, r"input_shape"),
    ],
)
SPECS["interpolate"] = Spec(
    F.interpolate,
    dict(x=XP, size=None, scale_factor=2.0, mode="bilinear", align_corners=False),
    arrays=dict(x=_AR),
    choices=dict(mode="bicubic"),
    cases=[
        (dict(align_corners=1), TypeError, r"align_corners"),
        (dict(align_corners="yes"), TypeError, r"align_corners"),
        (dict(size=(4, 5)), ValueError, r"size and scale_factor"),
        (dict(scale_factor=-1.0), ValueError, r"scale_factor"),
        (dict(scale_factor="2"), TypeError, r"scale_factor"),
        (dict(mode="nearest"), ValueError, r"align_corners"),
    ],
)
SPECS["interpolate_backward"] = Spec(
    F.interpolate_backward,
    dict(
        grad_out=_a(2, 3, 16, 14), input_shape=XP.shape, size=None, scale_factor=2.0, mode="nearest"
    ),
    arrays=dict(grad_out=_AR),
    choices=dict(mode="bicubic"),
    cases=[
        (dict(grad_out=_a(2, 3, 16, 13)), ValueError, r"grad_out"),
        (dict(input_shape=None), TypeError, r"input_shape"),
    ],
)
SPECS["max_unpool2d"] = Spec(
    F.max_unpool2d,
    dict(x=GP, indices=IDX, kernel_size=2, stride=None, padding=0, output_size=XP.shape[-2:]),
    arrays=dict(x=_AR),
    ints=("padding",),
    pos=("kernel_size", "stride"),
    pairs=("kernel_size", "stride", "padding"),
    cases=[
        (dict(indices=IDX + 1000), ValueError, r"indices"),
        (dict(indices=IDX.astype(np.float64)), TypeError, r"indices"),
        (dict(output_size=(3, 3)), ValueError, r"output_size"),
        (dict(output_size=None), ValueError, r"indices"),
    ],
)
SPECS["max_unpool2d_backward"] = Spec(
    F.max_unpool2d_backward,
    dict(grad_out=XP, indices=IDX, input_shape=GP.shape),
    arrays=dict(grad_out=_AR),
    cases=[
        (dict(indices=IDX + 1000), ValueError, r"indices"),
        (dict(input_shape=None), TypeError, r"input_shape"),
    ],
)


# --- generic invalid values derived from each spec ------------------------------------------


def _wrong_rank(a, ranks):
    if ranks is None:  # any rank
        return None
    for r in (a.ndim + 1, a.ndim - 1, 0, 1, 2, 5, 6, 7):
        if r not in ranks and r >= 0:
            return np.zeros((2,) * r)
    return None


def _generic(name, spec):
    out = []
    floats = list(spec.arrays)
    for arg, ranks in spec.arrays.items():
        a = spec.args[arg]
        if arg not in spec.optional:
            out.append(({arg: None}, TypeError))
        out += [
            ({arg: a.astype(np.int64)}, TypeError),
            ({arg: a.astype(np.complex128)}, TypeError),
            ({arg: "abc"}, TypeError),
            ({arg: a.astype(np.float16)}, TypeError),
            ({arg: a.astype(bool)}, TypeError),
            ({arg: np.asarray(a, object)}, TypeError),
        ]
        wr = _wrong_rank(a, ranks)
        if wr is not None:
            out.append(({arg: wr}, ValueError))
        if len(floats) > 1:
            out.append(({arg: a.astype(np.float32)}, TypeError))
    for arg in spec.pos + spec.ints:
        bad = [
            (-1, ValueError),
            (1.5, TypeError),
            (True, TypeError),
            ("2", ValueError if arg in spec.choices else TypeError),
            (float("nan"), TypeError),
            (2.0, TypeError),
        ]
        if arg in spec.pos:
            bad.append((0, ValueError))
        if arg in spec.pairs:
            # (a one-element tuple is valid, as in PyTorch: it stands for (a, a))
            bad += [
                ((1, 1, 1), ValueError),
                ((1, -1), ValueError),
                ((1, 1.5), TypeError),
                ((1, None), TypeError),
            ]
            if not (arg == "stride" and "pool" in name):  # torch: an empty stride is the default
                bad.append(((), ValueError))
            if arg in spec.pos:
                bad.append(((1, 0), ValueError))
        if spec.args.get(arg, 0) is not None:
            bad.append((None, TypeError))
        out += [({arg: v}, e) for v, e in bad]
    for arg in spec.bools:
        out += [({arg: 1}, TypeError), ({arg: "yes"}, TypeError), ({arg: None}, TypeError)]
    for arg in spec.numbers:
        out += [
            ({arg: "1"}, TypeError),
            ({arg: None}, TypeError),
            ({arg: True}, TypeError),
            ({arg: [1.0]}, TypeError),
            ({arg: 1j}, TypeError),
            ({arg: np.complex64(1)}, TypeError),
            ({arg: float("nan")}, ValueError),
            ({arg: -float("inf")}, ValueError),
            ({arg: 10**400}, ValueError),  # no float holds it: not an OverflowError
        ]
    for arg, v in spec.choices.items():
        out.append(({arg: v}, ValueError))
    return [(name, o, e, rf"\b{list(o)[0]}\b") for o, e in out]


def _all_cases():
    cases = []
    for name, spec in SPECS.items():
        cases += _generic(name, spec)
        cases += [(name, o, e, m) for o, e, m in spec.cases]
    return cases


CASES = _all_cases()


def _id(c):
    name, over, exc, _ = c
    parts = []
    for k, v in over.items():
        r = (
            f"{type(v).__name__}{getattr(v, 'shape', '')}{getattr(v, 'dtype', '')}"
            if isinstance(v, np.ndarray)
            else repr(v)
        )
        parts.append(f"{k}={r}")
    return f"{name}[{','.join(parts)}]"


def test_every_public_function_has_an_error_spec():
    public = {n for n in F.__all__ if n != "conv_output_size"}
    assert public - set(SPECS) == set()


@pytest.mark.parametrize("name", list(SPECS))
def test_the_valid_call_of_each_spec_works(name):
    spec = SPECS[name]
    spec.fn(**spec.args)


@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_invalid_argument_raises_documented_error_naming_it(case):
    name, over, exc, pattern = case
    spec = SPECS[name]
    args = dict(spec.args, **over)
    with pytest.raises((ValueError, TypeError)) as info:
        spec.fn(**args)
    assert info.type is exc or issubclass(info.type, exc), (
        f"{name}: expected {exc.__name__}, got {info.type.__name__}: {info.value}"
    )
    assert re.search(pattern, str(info.value)), (
        f"{name}: message does not name the argument ({pattern}): {info.value}"
    )


CONV_CASES = [c for c in CASES if c[0] == "conv2d"]


@pytest.mark.parametrize("case", CONV_CASES, ids=[_id(c) for c in CONV_CASES])
@pytest.mark.parametrize("out_kind", ["contiguous", "view"])
def test_conv2d_out_untouched_on_error(case, out_kind):
    _, over, exc, pattern = case
    spec = SPECS["conv2d"]
    shape = convext.conv2d(**spec.args).shape
    if out_kind == "contiguous":
        out = np.full(shape, np.nan)
        buf = out
    else:
        buf = np.full(shape[:-1] + (2 * shape[-1],), np.nan)
        out = buf[..., ::2]
    with pytest.raises((ValueError, TypeError)):
        convext.conv2d(**dict(spec.args, **over), out=out)
    assert np.isnan(buf).all()


OUT_ERRORS = [
    (np.full((2, 6, 6, 5), np.nan, np.float32), TypeError),
    (np.full((2, 6, 6, 6), np.nan), ValueError),
    (np.full((6, 6, 5), np.nan), ValueError),
    ("out", TypeError),
    ([[0.0]], TypeError),
]


@pytest.mark.parametrize("out, exc", OUT_ERRORS, ids=lambda v: getattr(v, "shape", repr(v)))
def test_conv2d_bad_out(out, exc):
    spec = SPECS["conv2d"]
    before = np.array(out, copy=True) if isinstance(out, np.ndarray) else None
    with pytest.raises(exc, match=r"\bout\b"):
        convext.conv2d(**spec.args, out=out)
    if before is not None:
        np.testing.assert_array_equal(out, before)


def test_conv2d_readonly_out_rejected():
    spec = SPECS["conv2d"]
    out = np.full(convext.conv2d(**spec.args).shape, np.nan)
    out.flags.writeable = False
    with pytest.raises(ValueError, match=r"\bout\b.*writable"):
        convext.conv2d(**spec.args, out=out)


def test_conv2d_out_aliasing_an_input_gives_the_right_result():
    """``out`` sharing memory with ``x`` must not corrupt the result (the kernel writes into a
    temporary and copies at the end)."""
    x = _a(1, 2, 6, 6)
    w = _a(2, 2, 1, 1)
    want = convext.conv2d(x, w)
    got = convext.conv2d(x, w, out=x)
    np.testing.assert_array_equal(got, want)


# --- layers: invalid inputs to forward/backward ------------------------------------------------

LAYER_ERRORS = [
    (
        lambda: L.Conv2D(4, 6, 3, rng=0).forward(np.ones((2, 3, 8, 8), np.float32)),
        ValueError,
        r"channels",
    ),
    (
        lambda: L.Conv2D(4, 6, 3, rng=0).forward(np.ones((2, 4, 8, 8), np.int32)),
        TypeError,
        r"\bx\b",
    ),
    (lambda: L.Conv2D(4, 6, 3, rng=0).forward(np.ones((4, 8), np.float32)), ValueError, r"\bx\b"),
    (lambda: L.Conv2D(4, 6, 3, rng=0).forward(np.ones((2, 4, 8, 8))), TypeError, r"dtype"),
    (
        lambda: L.Conv2D(4, 6, 5, rng=0).forward(np.ones((2, 4, 3, 3), np.float32)),
        ValueError,
        r"kernel",
    ),
    (lambda: L.MaxPool2D(5).forward(np.ones((2, 4, 3, 3))), ValueError, r"kernel"),
    (lambda: L.AvgPool2D(2, padding=2).forward(np.ones((2, 4, 3, 3))), ValueError, r"padding"),
    (lambda: L.ReLU().forward("x"), TypeError, r"\bx\b"),
    (lambda: L.Softmax(axis=3).forward(np.ones((2, 3))), ValueError, r"axis"),
    (
        lambda: L.Conv2D(4, 6, 3, rng=0).backward(np.ones((2, 6, 6, 6), np.float32)),
        RuntimeError,
        r"forward",
    ),
    (lambda: L.MaxPool2D(2).backward(np.ones((2, 4, 3, 3))), RuntimeError, r"forward"),
]


@pytest.mark.parametrize("call, exc, pattern", LAYER_ERRORS)
def test_layer_errors(call, exc, pattern):
    with pytest.raises(exc, match=pattern):
        call()
