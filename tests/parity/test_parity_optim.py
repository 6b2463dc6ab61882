"""Optimizers against torch.optim on the same parameters and gradients; init gains and fans
against torch.nn.init."""

import numpy as np
import pytest

from cases import OPTIMIZER_CASES
from convext import init, optim

torch = pytest.importorskip("torch")


def _run(torch, make_ours, make_theirs, dtype, steps=6):
    """Both optimizers see the same gradient sequence; parameters must agree at every step."""
    rng = np.random.default_rng(0)
    shapes = [(4, 3, 2, 2), (7,), (5, 6)]
    params = [rng.standard_normal(s).astype(dtype) for s in shapes]
    grads = [np.zeros_like(p) for p in params]
    tparams = [torch.from_numpy(p.copy()).requires_grad_() for p in params]
    ours = make_ours(list(zip(params, grads, strict=True)))
    theirs = make_theirs(tparams)
    for _ in range(steps):
        for g, tp in zip(grads, tparams, strict=True):
            new = rng.standard_normal(g.shape).astype(dtype)
            g[...] = new
            tp.grad = torch.from_numpy(new.copy())
        ours.step()
        theirs.step()
        for p, tp in zip(params, tparams, strict=True):
            ref = tp.detach().numpy()
            if dtype == np.float64:
                np.testing.assert_allclose(p, ref, rtol=1e-12, atol=1e-14)
            else:  # float32: the two libraries may round individual operations differently
                assert np.max(np.abs(p - ref)) <= 1e-6 * max(1.0, np.max(np.abs(ref)))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kind, kw", OPTIMIZER_CASES)
def test_matches_torch(kind, kw, dtype):
    ours = {"sgd": optim.SGD, "adam": optim.Adam, "adamw": optim.AdamW}[kind]
    theirs = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[kind]
    _run(torch, lambda p: ours(p, **kw), lambda p: theirs(p, **kw), dtype)


def test_gain_and_fans_match_torch():
    for nl, param in [
        ("linear", None),
        ("relu", None),
        ("tanh", None),
        ("sigmoid", None),
        ("leaky_relu", None),
        ("leaky_relu", 0.2),
        ("selu", None),
        ("conv2d", None),
    ]:
        assert init.calculate_gain(nl, param) == pytest.approx(
            torch.nn.init.calculate_gain(nl, param), rel=1e-15
        )
    t = torch.empty(6, 4, 3, 2)
    assert init.fan_in_and_fan_out(t.shape) == torch.nn.init._calculate_fan_in_and_fan_out(t)
    with pytest.raises(ValueError, match="nonlinearity"):
        init.calculate_gain("swish")
