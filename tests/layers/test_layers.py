"""Layers: init, gradchecks, state, dropout, errors (PyTorch parity of names, shapes, outputs
and gradients: tests/parity/test_parity_layers.py)."""

import math

import numpy as np
import pytest

import reference
from cases import assert_close32, assert_close64, lenet
from convext import layers as L
from reference import numerical_grad

# -- initialisation -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make, fan_in",
    [
        (lambda r: L.Conv2D(8, 32, 3, rng=r), 72),
        (lambda r: L.Conv2D(8, 32, (3, 2), groups=4, rng=r), 12),
        (lambda r: L.Dense(50, 200, rng=r), 50),
    ],
)
def test_default_init_is_kaiming_uniform(make, fan_in):
    """kaiming_uniform(a=sqrt(5)) = U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for the weight, the same
    bound for the bias; reproducible from the generator."""
    layer = make(np.random.default_rng(5))
    bound = 1 / math.sqrt(fan_in)
    w, b = layer.parameters()["weight"], layer.parameters()["bias"]
    assert w.dtype == np.float32
    assert np.max(np.abs(w)) <= bound and np.max(np.abs(w)) > 0.95 * bound
    assert abs(w.std() - bound / math.sqrt(3)) < 0.1 * bound / math.sqrt(3)
    assert np.max(np.abs(b)) <= bound
    again = make(np.random.default_rng(5))
    np.testing.assert_array_equal(again.parameters()["weight"], w)
    np.testing.assert_array_equal(again.parameters()["bias"], b)
    other = make(np.random.default_rng(6))
    assert not np.array_equal(other.parameters()["weight"], w)


def test_sequential_reset_is_reproducible():
    a, b = lenet(rng=7), lenet(rng=7)
    for k, v in a.state_dict().items():
        np.testing.assert_array_equal(v, b.state_dict()[k])
    c = lenet(rng=8)
    assert not np.array_equal(a.state_dict()["0.weight"], c.state_dict()["0.weight"])


# -- gradient checks (float64, central differences) -----------------------------------------------


def _check_layer_grads(layer, x, seed=0):
    """dL/dx and dL/dparam of L = sum(forward(x) * r) against central differences."""
    r = np.random.default_rng(seed).standard_normal(layer(x).shape)
    layer.zero_grad()
    layer.train()
    layer.forward(x)
    gx = layer.backward(r)

    def f_x(xx):
        return float(np.sum(layer.forward(xx) * r))

    ng = numerical_grad(f_x, x)
    np.testing.assert_allclose(gx, ng, rtol=1e-3, atol=1e-5)
    for name, p in layer.parameters().items():
        saved = p.copy()

        def f_p(pp, p=p):
            p[...] = pp
            return float(np.sum(layer.forward(x) * r))

        ng = numerical_grad(f_p, saved)
        p[...] = saved
        np.testing.assert_allclose(layer.grads()[name], ng, rtol=1e-3, atol=1e-5, err_msg=name)


def test_gradcheck_conv_dense():
    rng = np.random.default_rng(0)
    _check_layer_grads(
        L.Conv2D(
            4,
            6,
            (3, 2),
            stride=(2, 1),
            padding=1,
            dilation=(1, 2),
            groups=2,
            dtype=np.float64,
            rng=1,
        ),
        rng.standard_normal((2, 4, 6, 7)),
    )
    _check_layer_grads(L.Dense(5, 3, dtype=np.float64, rng=2), rng.standard_normal((4, 5)))
    _check_layer_grads(
        L.Dense(5, 3, bias=False, dtype=np.float64, rng=2), rng.standard_normal((2, 3, 5))
    )


def test_gradcheck_batchnorm_train():
    rng = np.random.default_rng(1)
    bn = L.BatchNorm2D(3, dtype=np.float64)
    bn.parameters()["weight"][...] = [0.5, 2.0, -1.0]
    bn.parameters()["bias"][...] = [0.1, 0.0, 0.3]
    _check_layer_grads(bn, rng.standard_normal((3, 3, 4, 5)) * 2 + 1)


def test_gradcheck_sequential():
    rng = np.random.default_rng(2)
    model = L.Sequential(
        L.Conv2D(2, 3, 3, padding=1, dtype=np.float64),
        L.Tanh(),
        L.Flatten(),
        L.Dense(3 * 5 * 4, 4, dtype=np.float64),
    ).reset_parameters(3)
    _check_layer_grads(model, rng.standard_normal((2, 2, 5, 4)))


# -- BatchNorm2D ---------------------------------------------------------------------------------


def test_batchnorm_matches_reference():
    """Three training steps (output, input and parameter gradients, running statistics with
    momentum 0.2 and the unbiased variance), then eval mode on the running statistics."""
    rng = np.random.default_rng(4)
    bn = L.BatchNorm2D(3, momentum=0.2, dtype=np.float64)
    w, b = rng.standard_normal(3), rng.standard_normal(3)
    bn.load_state_dict(dict(bn.state_dict(), weight=w, bias=b))
    run_mean, run_var = np.zeros(3), np.ones(3)
    for step in range(3):
        x = rng.standard_normal((4, 3, 5, 6)) * (step + 1) + step
        g = rng.standard_normal(x.shape)
        y, mean, _, uvar = reference.batch_norm2d_train(x, w, b)
        gx, gw, gb = reference.batch_norm2d_train_backward(g, x, w)
        bn.zero_grad()
        assert_close64(bn(x), y)
        assert_close64(bn.backward(g), gx)
        assert_close64(bn.grads()["weight"], gw)
        assert_close64(bn.grads()["bias"], gb)
        run_mean = 0.8 * run_mean + 0.2 * mean
        run_var = 0.8 * run_var + 0.2 * uvar
    sd = bn.state_dict()
    np.testing.assert_allclose(sd["running_mean"], run_mean, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(sd["running_var"], run_var, rtol=1e-12, atol=0)
    assert sd["num_batches_tracked"].dtype == np.int64 and sd["num_batches_tracked"] == 3
    bn.eval()
    x = rng.standard_normal((2, 3, 4, 4))
    assert_close64(bn(x), reference.batch_norm2d_eval(x, w, b, run_mean, run_var))
    x32 = (rng.standard_normal((8, 4, 6, 6)) * 3 + 2).astype(np.float32)
    assert_close32(
        L.BatchNorm2D(4)(x32), reference.batch_norm2d_train(x32, np.ones(4), np.zeros(4))[0]
    )


def test_batchnorm_errors():
    bn = L.BatchNorm2D(4)
    with pytest.raises(ValueError, match="more than 1 value"):
        L.BatchNorm2D(4)(np.ones((1, 4, 1, 1), np.float32))
    with pytest.raises(ValueError, match=r"\(N, 4, H, W\)"):
        bn(np.ones((2, 3, 4, 4), np.float32))
    with pytest.raises(TypeError, match="dtype"):
        bn(np.ones((2, 4, 4, 4)))


# -- Dropout -----------------------------------------------------------------------------------


def test_dropout():
    x = np.ones((100, 200), np.float32)
    d = L.Dropout(0.3, rng=11)
    y = d(x)
    assert y.dtype == np.float32
    kept = y != 0
    assert abs(kept.mean() - 0.7) < 0.01
    np.testing.assert_allclose(y[kept], 1 / 0.7, rtol=1e-6)
    g = d.backward(np.full_like(x, 2))
    np.testing.assert_array_equal(g != 0, kept)
    np.testing.assert_allclose(g[kept], 2 / 0.7, rtol=1e-6)
    np.testing.assert_array_equal(L.Dropout(0.3, rng=11)(x), y)  # reproducible
    assert not np.array_equal(L.Dropout(0.3, rng=12)(x), y)
    d.eval()
    assert d(x) is x or np.array_equal(d(x), x)
    np.testing.assert_array_equal(L.Dropout(1.0)(x), 0)
    with pytest.raises(ValueError, match=r"^Dropout: p must satisfy 0.0 <= p <= 1.0"):
        L.Dropout(1.5)


# -- Sequential, state, repr, errors -----------------------------------------------------------


def test_load_state_dict_checks_and_writes_in_place():
    model = lenet()
    w = model.parameters()["0.weight"]
    sd = model.state_dict()
    sd["0.weight"] = np.zeros_like(sd["0.weight"])
    model.load_state_dict(sd)
    assert model.parameters()["0.weight"] is w and not w.any()
    bad = dict(sd)
    bad["3.bias"] = np.ones(5, np.float32)
    bad["0.weight"] = np.ones_like(sd["0.weight"])
    with pytest.raises(ValueError, match=r"'3.bias' has shape \(5,\)"):
        model.load_state_dict(bad)
    assert not w.any()  # nothing written when a check fails
    missing = dict(sd)
    del missing["9.bias"]
    with pytest.raises(ValueError, match="missing keys.*9.bias"):
        model.load_state_dict(missing)
    with pytest.raises(ValueError, match="unexpected keys.*extra"):
        model.load_state_dict({**sd, "extra": np.zeros(1)})
    model.load_state_dict(missing, strict=False)


def test_train_eval_and_no_state_kept():
    model = L.Sequential(L.Conv2D(1, 2, 3), L.Dropout(0.5), L.BatchNorm2D(2), L.ReLU())
    assert model.training and all(layer.training for layer in model)
    model.eval()
    assert not model.training and not any(layer.training for layer in model)
    x = np.ones((2, 1, 5, 5), np.float32)
    model(x)
    assert model[0]._x is None and model[1]._mask is None and model[3]._x is None
    with pytest.raises(RuntimeError, match="training mode"):
        model.backward(np.ones((2, 2, 3, 3), np.float32))
    model.train()
    model(x)
    model.backward(np.ones((2, 2, 3, 3), np.float32))
    assert model[0]._x is None and model[3]._x is None  # released after backward


def test_grads_accumulate_until_zero_grad():
    layer = L.Dense(3, 2, rng=0)
    x = np.ones((4, 3), np.float32)
    layer(x)
    layer.backward(np.ones((4, 2), np.float32))
    once = layer.grads()["weight"].copy()
    layer(x)
    layer.backward(np.ones((4, 2), np.float32))
    np.testing.assert_array_equal(layer.grads()["weight"], 2 * once)
    layer.zero_grad()
    assert not layer.grads()["weight"].any()


def test_repr():
    assert repr(L.Conv2D(1, 6, 5, padding=2)) == "Conv2D(1, 6, kernel_size=(5, 5), padding=(2, 2))"
    assert (
        repr(L.Conv2D(4, 8, (3, 1), stride=2, groups=2, bias=False))
        == "Conv2D(4, 8, kernel_size=(3, 1), stride=(2, 2), groups=2, bias=False)"
    )
    assert repr(L.Dense(400, 120)) == "Dense(in_features=400, out_features=120)"
    assert repr(L.MaxPool2D(2)) == "MaxPool2D(kernel_size=2)"
    assert repr(L.ReLU()) == "ReLU()"
    assert repr(L.Dropout(0.25)) == "Dropout(p=0.25)"
    want = "BatchNorm2D(4, eps=1e-05, momentum=0.1, affine=True, bias=True, "
    assert repr(L.BatchNorm2D(4)) == want + "track_running_stats=True)"
    assert (
        repr(L.Sequential(L.Flatten(), L.Dense(2, 1)))
        == "Sequential(\n  (0): Flatten()\n  (1): Dense(in_features=2, out_features=1)\n)"
    )


def test_constructor_errors():
    with pytest.raises(ValueError, match="in_channels"):
        L.Conv2D(0, 3, 3)
    with pytest.raises(ValueError, match="groups=2 must divide"):
        L.Conv2D(3, 4, 3, groups=2)
    with pytest.raises(ValueError, match="padding"):
        L.Conv2D(3, 4, 3, padding="full")
    with pytest.raises(TypeError, match="dtype"):
        L.Dense(3, 4, dtype=np.int32)
    with pytest.raises(TypeError, match="not a Layer"):
        L.Sequential(L.ReLU(), "relu")
    with pytest.raises(ValueError, match=r"\(\.\.\., 3\)"):
        L.Dense(3, 4)(np.ones((2, 5), np.float32))
    with pytest.raises(TypeError, match="dtype"):
        L.Dense(3, 4)(np.ones((2, 3)))
    with pytest.raises(ValueError, match="channels"):
        L.Conv2D(3, 4, 3)(np.ones((1, 2, 5, 5), np.float32))


@pytest.mark.parametrize(
    "make, match",
    [
        # 2**40 float32 weights: 4 TiB, within the element bound but beyond any machine's memory
        (lambda: L.Dense(2**20, 2**20), r"Dense: the weight \(out_features, in_features\)"),
        (lambda: L.Conv2D(2**20, 2**20, 3), r"Conv2D: the weight \(out_channels, in_channels"),
        (lambda: L.Conv2D(4, 4, 2**20), r"Conv2D: the weight .*kernel_size\) of shape"),
        (lambda: L.ConvTranspose2D(2**20, 2**20, 3), r"ConvTranspose2D: the weight \(in_ch"),
        (lambda: L.BatchNorm2D(2**40), r"BatchNorm2D: a per-channel array \(num_features\)"),
        (lambda: L.Constant([2**20, 2**20]), r"Constant: shape \(1048576, 1048576\)"),
    ],
)
def test_huge_constructor_sizes_are_value_errors_naming_the_argument(make, match):
    """A layer whose parameters or buffers cannot be allocated is a ValueError naming the
    constructor arguments (not numpy's MemoryError), before anything is allocated."""
    with pytest.raises(ValueError, match=match):
        make()


@pytest.mark.parametrize(
    "make, error, match",
    [
        (lambda: L.LeakyReLU(float("nan")), ValueError, "^LeakyReLU: negative_slope must be fin"),
        (lambda: L.LeakyReLU("0.1"), TypeError, "^LeakyReLU: negative_slope must be a real"),
        (lambda: L.LeakyReLU(True), TypeError, "^LeakyReLU: negative_slope must be a real"),
        (lambda: L.ELU(float("inf")), ValueError, "^ELU: alpha must be finite"),
        (lambda: L.ELU(10**400), ValueError, "^ELU: alpha must be finite"),
        (lambda: L.Hardtanh(-1.0, float("inf")), ValueError, "^Hardtanh: max_val must be finite"),
        (lambda: L.Hardtanh("-1"), TypeError, "^Hardtanh: min_val must be a real number"),
        (lambda: L.BatchNorm2D(3, momentum=1e308), ValueError, r"momentum <= 1.0, got 1e\+308"),
        (lambda: L.BatchNorm2D(3, momentum=-0.1), ValueError, "^BatchNorm2D: momentum must"),
        (lambda: L.BatchNorm2D(3, momentum=float("nan")), ValueError, "^BatchNorm2D: momentum"),
        (lambda: L.BatchNorm2D(3, momentum="0.1"), TypeError, "^BatchNorm2D: momentum must be"),
        (lambda: L.BatchNorm2D(3, eps=float("inf")), ValueError, "^BatchNorm2D: eps must be"),
        (lambda: L.BatchNorm2D(3, eps=0.0), ValueError, "^BatchNorm2D: eps must satisfy 0.0 <"),
        (lambda: L.Dropout("0.3"), TypeError, "^Dropout: p must be a real number, got str"),
        (lambda: L.Dropout(float("nan")), ValueError, "^Dropout: p must be finite"),
        (lambda: L.Dropout(1.5), ValueError, "^Dropout: p must satisfy 0.0 <= p <= 1.0"),
        (lambda: L.Dropout2D(-0.1), ValueError, "^Dropout2D: p must satisfy"),
        (lambda: L.LPPool2D(float("nan"), 2), ValueError, "^LPPool2D: norm_type must be posit"),
        (lambda: L.LPPool2D("2", 2), TypeError, "^LPPool2D: norm_type must be a number"),
        (lambda: L.Upsample(scale_factor="2"), TypeError, "^Upsample: scale_factor must be a r"),
        (lambda: L.Upsample(scale_factor=(2, float("nan"))), ValueError, "^Upsample: scale_f"),
        (
            lambda: L.Constant([2], value=np.array([1e300, 1.0])),
            ValueError,
            r"^Constant: 'value' holds 1 finite value\(s\) beyond the range of the layer's "
            "float32",
        ),
        (lambda: L.Constant([1], value=np.array(["1"])), TypeError, "^Constant: value has dtype"),
    ],
)
def test_constructor_float_arguments_are_checked(make, error, match):
    """NaN, infinities, strings and bools as float hyper-parameters are refused by the
    constructor (they used to be accepted and only ``save`` refused some of them)."""
    with pytest.raises(error, match=match):
        make()


def test_constructor_float_arguments_torch_accepts_are_kept():
    """Finite values torch accepts stay accepted (ints, numpy scalars, negative slopes, the
    ends of the ranges), stored as Python floats."""
    assert L.LeakyReLU(-2).negative_slope == -2.0
    assert type(L.LeakyReLU(np.float32(0.25)).negative_slope) is float
    assert L.ELU(0).alpha == 0.0
    assert L.Dropout(0).p == 0.0 and L.Dropout(1).p == 1.0
    for m in (0, 1, 0.5, None):
        assert L.BatchNorm2D(2, momentum=m).momentum == m
    assert L.BatchNorm2D(2, eps=np.float64(1e-3)).eps == 1e-3
    assert L.Hardtanh(-3, 3).max_val == 3.0
    assert L.LPPool2D(float("inf"), 2).norm_type == math.inf
    assert L.Upsample(scale_factor=np.float32(2)).scale_factor == 2.0
    np.testing.assert_array_equal(
        L.Constant([2], value=np.array([1e30, -1.5])).value, np.array([1e30, -1.5], np.float32)
    )


def test_constructor_axis_arguments_must_be_ints():
    """An axis given as a float or a string was truncated by int() (Softmax(1.9) ran along
    axis 1); it is a TypeError naming the argument, as Concat's axis already was."""
    for make, match in [
        (lambda: L.Softmax(1.9), "^Softmax: axis must be an int, got float"),
        (lambda: L.LogSoftmax("1"), "^LogSoftmax: axis must be an int, got str"),
        (lambda: L.Flatten(1.5), "^Flatten: start_dim must be an int"),
        (lambda: L.Flatten(1, -1.0), "^Flatten: end_dim must be an int"),
        (lambda: L.Softmax(True), "^Softmax: axis must be an int, got bool"),
    ]:
        with pytest.raises(TypeError, match=match):
            make()
    assert L.Softmax(np.int64(-1)).axis == -1 and L.Flatten(np.int32(2)).start_dim == 2
