"""Optimizers against torch.optim on the same parameters and gradients, and init formulas."""
import math

import numpy as np
import pytest

import convext as cx
from convext import init, optim


def _run(torch, make_ours, make_theirs, dtype, steps=6):
    """Both optimizers see the same gradient sequence; parameters must agree at every step."""
    rng = np.random.default_rng(0)
    shapes = [(4, 3, 2, 2), (7,), (5, 6)]
    params = [rng.standard_normal(s).astype(dtype) for s in shapes]
    grads = [np.zeros_like(p) for p in params]
    tparams = [torch.from_numpy(p.copy()).requires_grad_() for p in params]
    ours = make_ours(list(zip(params, grads)))
    theirs = make_theirs(tparams)
    for _ in range(steps):
        for g, tp in zip(grads, tparams):
            new = rng.standard_normal(g.shape).astype(dtype)
            g[...] = new
            tp.grad = torch.from_numpy(new.copy())
        ours.step()
        theirs.step()
        for p, tp in zip(params, tparams):
            ref = tp.detach().numpy()
            if dtype == np.float64:
                np.testing.assert_allclose(p, ref, rtol=1e-12, atol=1e-14)
            else:  # float32: the two libraries may round individual operations differently
                assert np.max(np.abs(p - ref)) <= 1e-6 * max(1.0, np.max(np.abs(ref)))


CASES = [
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


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kind, kw", CASES)
def test_matches_torch(kind, kw, dtype):
    torch = pytest.importorskip("torch")
    ours = {"sgd": optim.SGD, "adam": optim.Adam, "adamw": optim.AdamW}[kind]
    theirs = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam,
              "adamw": torch.optim.AdamW}[kind]
    _run(torch, lambda p: ours(p, **kw), lambda p: theirs(p, **kw), dtype)


def test_optimizer_holds_model_arrays():
    model = cx.Sequential(cx.Dense(3, 2, rng=0), cx.ReLU(), cx.Dense(2, 1, rng=1))
    opt = optim.SGD(model, lr=0.5)
    before = model.state_dict()
    for g in model.grads().values():
        g.fill(1)
    opt.step()
    for k, p in model.parameters().items():
        np.testing.assert_array_equal(p, before[k] - np.float32(0.5))
    opt.zero_grad()
    assert not any(g.any() for g in model.grads().values())


def test_optimizer_errors():
    p = np.zeros(3)
    with pytest.raises(ValueError, match="lr"):
        optim.SGD([(p, np.zeros(3))], lr=-1)
    with pytest.raises(ValueError, match="same shape"):
        optim.Adam([(p, np.zeros(4))])
    with pytest.raises(ValueError, match="nesterov"):
        optim.SGD([(p, np.zeros(3))], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match=r"betas\[1\]"):
        optim.Adam([(p, np.zeros(3))], betas=(0.9, 1.0))


# -- init ----------------------------------------------------------------------------------------

def test_gain_and_fans_match_torch():
    torch = pytest.importorskip("torch")
    for nl, param in [("linear", None), ("relu", None), ("tanh", None), ("sigmoid", None),
                      ("leaky_relu", None), ("leaky_relu", 0.2), ("selu", None),
                      ("conv2d", None)]:
        assert init.calculate_gain(nl, param) == pytest.approx(
            torch.nn.init.calculate_gain(nl, param), rel=1e-15)
    t = torch.empty(6, 4, 3, 2)
    assert init.fan_in_and_fan_out(t.shape) == \
        torch.nn.init._calculate_fan_in_and_fan_out(t)
    with pytest.raises(ValueError, match="nonlinearity"):
        init.calculate_gain("swish")


@pytest.mark.parametrize("fn, kw, std, uniform", [
    (init.kaiming_uniform, dict(), math.sqrt(2) / math.sqrt(64 * 9), True),  # a=0: gain sqrt(2)
    (init.kaiming_uniform, dict(a=math.sqrt(5)), 1 / math.sqrt(3 * 64 * 9), True),
    (init.kaiming_normal, dict(mode="fan_out", nonlinearity="relu"),
     math.sqrt(2) / math.sqrt(128 * 9), False),
    (init.xavier_uniform, dict(gain=2.0), 2 * math.sqrt(2 / (64 * 9 + 128 * 9)), True),
    (init.xavier_normal, dict(), math.sqrt(2 / (64 * 9 + 128 * 9)), False),
])
def test_initialiser_distributions(fn, kw, std, uniform):
    w = np.empty((128, 64, 3, 3), np.float32)
    out = fn(w, np.random.default_rng(0), **kw)
    assert out is w and w.dtype == np.float32
    assert abs(w.mean()) < 0.01 * std * 10 and abs(w.std() / std - 1) < 0.01
    if uniform:
        bound = math.sqrt(3) * std
        assert np.max(np.abs(w)) <= bound * (1 + 1e-6) and np.max(np.abs(w)) > 0.999 * bound
    again = fn(np.empty_like(w), np.random.default_rng(0), **kw)
    np.testing.assert_array_equal(again, w)


def test_init_errors():
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        init.xavier_uniform(np.empty(5), 0)
    with pytest.raises(ValueError, match="mode"):
        init.kaiming_normal(np.empty((3, 3)), 0, mode="fan_avg")
