"""Optimizers against the naive oracle on the same parameters and gradients, and init formulas
(against PyTorch: tests/parity/test_parity_optim.py)."""

import math

import numpy as np
import pytest

import convext as cx
import reference as ref
from cases import OPTIMIZER_CASES
from convext import init, optim


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kind, kw", OPTIMIZER_CASES)
def test_matches_reference(kind, kw, dtype):
    """The optimizer and the float64 oracle see the same gradient sequence; parameters must
    agree at every step."""
    rng = np.random.default_rng(0)
    shapes = [(4, 3, 2, 2), (7,), (5, 6)]
    params = [rng.standard_normal(s).astype(dtype) for s in shapes]
    grads = [np.zeros_like(p) for p in params]
    ours = {"sgd": optim.SGD, "adam": optim.Adam, "adamw": optim.AdamW}[kind](
        list(zip(params, grads, strict=True)), **kw
    )
    oracle = ref.Optimizer(kind, params, **kw)
    for _ in range(6):
        for g in grads:
            g[...] = rng.standard_normal(g.shape).astype(dtype)
        ours.step()
        want = oracle.step(grads)
        for p, r in zip(params, want, strict=True):
            assert p.dtype == dtype
            if dtype == np.float64:
                np.testing.assert_allclose(p, r, rtol=1e-12, atol=1e-14)
            else:  # float32 rounds every operation; the oracle computes in float64
                assert np.max(np.abs(p - r)) <= 1e-6 * max(1.0, np.max(np.abs(r)))


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


@pytest.mark.parametrize(
    "fn, kw, std, uniform",
    [
        (init.kaiming_uniform, dict(), math.sqrt(2) / math.sqrt(64 * 9), True),  # a=0: gain sqrt(2)
        (init.kaiming_uniform, dict(a=math.sqrt(5)), 1 / math.sqrt(3 * 64 * 9), True),
        (
            init.kaiming_normal,
            dict(mode="fan_out", nonlinearity="relu"),
            math.sqrt(2) / math.sqrt(128 * 9),
            False,
        ),
        (init.xavier_uniform, dict(gain=2.0), 2 * math.sqrt(2 / (64 * 9 + 128 * 9)), True),
        (init.xavier_normal, dict(), math.sqrt(2 / (64 * 9 + 128 * 9)), False),
    ],
)
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
