"""convext.optim against torch.optim, step by step: optimizers (every option, parameter groups,
state_dict layout and loading torch's state), gradient clipping and the learning-rate
schedulers (exactly torch's sequence and state_dict). The only new test file importing torch.
"""

import math

import numpy as np
import pytest

from convext import optim
from convext.optim import lr_scheduler as cl

torch = pytest.importorskip("torch")
tl = torch.optim.lr_scheduler

SHAPES = [(4, 3), (7,), (2, 3, 2)]

OPT_CASES = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.2, weight_decay=0.01)),
    ("SGD", dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.1, maximize=True)),
    ("Adam", dict(lr=0.01)),
    ("Adam", dict(lr=0.02, betas=(0.3, 0.6), eps=1e-6, weight_decay=0.1, maximize=True)),
    ("Adam", dict(lr=0.01, amsgrad=True, decoupled_weight_decay=True, weight_decay=0.3)),
    ("AdamW", dict(lr=0.01)),
    ("AdamW", dict(lr=0.03, weight_decay=0.2, amsgrad=True, maximize=True)),
    ("RMSprop", dict()),
    ("RMSprop", dict(lr=0.01, alpha=0.9, eps=1e-6, weight_decay=0.1, momentum=0.9)),
    ("RMSprop", dict(lr=0.003, centered=True, momentum=0.5, maximize=True)),
    ("RMSprop", dict(lr=0.003, centered=True, alpha=0.3)),
    ("Adagrad", dict()),
    (
        "Adagrad",
        dict(
            lr=0.1,
            lr_decay=0.05,
            weight_decay=0.2,
            initial_accumulator_value=0.3,
            eps=1e-6,
            maximize=True,
        ),
    ),
]


def _setup(kind, kw, dtype, groups, rng):
    params = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
    grads = [np.zeros_like(p) for p in params]
    tparams = [torch.from_numpy(p.copy()).requires_grad_() for p in params]
    pairs = list(zip(params, grads, strict=True))
    if groups:  # the second group has its own lr and weight decay
        ours = getattr(optim, kind)(
            [{"params": pairs[:1]}, {"params": pairs[1:], "lr": 0.004, "weight_decay": 0.05}], **kw
        )
        theirs = getattr(torch.optim, kind)(
            [{"params": tparams[:1]}, {"params": tparams[1:], "lr": 0.004, "weight_decay": 0.05}],
            **kw,
        )
    else:
        ours, theirs = getattr(optim, kind)(pairs, **kw), getattr(torch.optim, kind)(tparams, **kw)
    return params, grads, tparams, ours, theirs


def _feed(rng, grads, tparams, dtype):
    for g, tp in zip(grads, tparams, strict=True):
        g[...] = rng.standard_normal(g.shape).astype(dtype)
        tp.grad = torch.from_numpy(g.copy())


def _close(params, tparams, dtype):
    for p, tp in zip(params, tparams, strict=True):
        ref = tp.detach().numpy()
        if dtype == np.float64:
            np.testing.assert_allclose(p, ref, rtol=1e-12, atol=1e-14)
        else:  # float32: the libraries may round single operations differently
            assert np.max(np.abs(p - ref)) <= 1e-6 * max(1.0, np.max(np.abs(ref)))


@pytest.mark.parametrize("groups", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kind, kw", OPT_CASES)
def test_optimizer_matches_torch_step_by_step(kind, kw, dtype, groups):
    rng = np.random.default_rng(0)
    params, grads, tparams, ours, theirs = _setup(kind, kw, dtype, groups, rng)
    for _ in range(10):
        _feed(rng, grads, tparams, dtype)
        ours.step()
        theirs.step()
        _close(params, tparams, dtype)


def _to_numpy(sd):
    """torch's optimizer state_dict with arrays for tensors (0-d 'step' becomes a float)."""
    state = {
        i: {k: (float(v) if v.ndim == 0 else v.numpy().copy()) for k, v in s.items()}
        for i, s in sd["state"].items()
    }
    return {"state": state, "param_groups": [dict(g) for g in sd["param_groups"]]}


@pytest.mark.parametrize("kind, kw", OPT_CASES)
def test_state_dict_has_torchs_layout_and_loads_torchs_state(kind, kw):
    rng = np.random.default_rng(1)
    params, grads, tparams, ours, theirs = _setup(kind, kw, np.float64, True, rng)
    for _ in range(3):
        _feed(rng, grads, tparams, np.float64)
        ours.step()
        theirs.step()
    mine, torchs = ours.state_dict(), _to_numpy(theirs.state_dict())
    assert mine["state"].keys() == torchs["state"].keys()
    for i, s in torchs["state"].items():
        assert mine["state"][i].keys() == s.keys()
        for k, v in s.items():
            np.testing.assert_allclose(mine["state"][i][k], v, rtol=1e-12, atol=1e-14)
    torch_only = {"foreach", "fused", "capturable", "differentiable"}
    for g, tg in zip(mine["param_groups"], torchs["param_groups"], strict=True):
        assert g == {k: v for k, v in tg.items() if k not in torch_only}

    # torch's own state (tensors turned into arrays) loads into a fresh optimizer of ours, and
    # both continue identically
    fresh_params = [tp.detach().numpy().copy() for tp in tparams]
    fresh_grads = [np.zeros_like(p) for p in fresh_params]
    pairs = list(zip(fresh_params, fresh_grads, strict=True))
    fresh = getattr(optim, kind)([{"params": pairs[:1]}, {"params": pairs[1:]}], **kw)
    fresh.load_state_dict(torchs)
    for _ in range(3):
        _feed(rng, fresh_grads, tparams, np.float64)
        fresh.step()
        theirs.step()
    _close(fresh_params, tparams, np.float64)


# -- gradient clipping ----------------------------------------------------------------------


@pytest.mark.parametrize("norm_type", [2.0, 1, math.inf, -math.inf, 0, 3.5, 0.5, "inf"])
@pytest.mark.parametrize("max_norm", [0.5, 1e3])
def test_clip_grad_norm_matches_torch(norm_type, max_norm):
    rng = np.random.default_rng(2)
    grads = [rng.standard_normal(s) for s in SHAPES]
    grads[1][2] = 0.0  # a zero entry, so the 0-"norm" and -inf norm mean something
    tps = [torch.zeros(s, dtype=torch.float64, requires_grad=True) for s in SHAPES]
    for tp, g in zip(tps, grads, strict=True):
        tp.grad = torch.from_numpy(g.copy())
    total = optim.clip_grad_norm(grads, max_norm, norm_type)
    ref = torch.nn.utils.clip_grad_norm_(tps, max_norm, norm_type)
    assert total == pytest.approx(float(ref), rel=1e-13)
    for g, tp in zip(grads, tps, strict=True):
        np.testing.assert_allclose(g, tp.grad.numpy(), rtol=1e-13, atol=0)


def test_clip_grad_norm_nonfinite_as_torch():
    grads = [np.array([1.0, np.inf, 2.0]), np.array([3.0, -4.0])]
    tps = [
        torch.zeros(3, dtype=torch.float64, requires_grad=True),
        torch.zeros(2, dtype=torch.float64, requires_grad=True),
    ]
    for tp, g in zip(tps, grads, strict=True):
        tp.grad = torch.from_numpy(g.copy())
    with pytest.raises(ValueError, match="error_if_nonfinite"):
        optim.clip_grad_norm(grads, 1.0, error_if_nonfinite=True)
    with pytest.raises(RuntimeError):
        torch.nn.utils.clip_grad_norm_(tps, 1.0, error_if_nonfinite=True)
    total = optim.clip_grad_norm(grads, 1.0)
    ref = torch.nn.utils.clip_grad_norm_(tps, 1.0)
    assert total == float(ref) == math.inf
    for g, tp in zip(grads, tps, strict=True):
        np.testing.assert_array_equal(g, tp.grad.numpy())  # NaN where torch has NaN


def test_clip_grad_value_matches_torch():
    rng = np.random.default_rng(3)
    grads = [rng.standard_normal(s) for s in SHAPES]
    grads[0][0, 0] = np.nan
    tps = [torch.zeros(s, dtype=torch.float64, requires_grad=True) for s in SHAPES]
    for tp, g in zip(tps, grads, strict=True):
        tp.grad = torch.from_numpy(g.copy())
    optim.clip_grad_value(grads, 0.7)
    torch.nn.utils.clip_grad_value_(tps, 0.7)
    for g, tp in zip(grads, tps, strict=True):
        np.testing.assert_array_equal(g, tp.grad.numpy())


# -- learning-rate schedulers ------------------------------------------------------------


def _optimizers(kind="SGD"):
    """The same two-group optimizer in both libraries (lr 0.1 and 0.5)."""
    p0, p1 = np.zeros(2), np.zeros(3)
    kw = dict(momentum=0.9) if kind == "SGD" else {}
    ours = getattr(optim, kind)(
        [{"params": [(p0, np.zeros(2))]}, {"params": [(p1, np.zeros(3))], "lr": 0.5}], lr=0.1, **kw
    )
    theirs = getattr(torch.optim, kind)(
        [
            {"params": [torch.zeros(2, requires_grad=True)]},
            {"params": [torch.zeros(3, requires_grad=True)], "lr": 0.5},
        ],
        lr=0.1,
        **kw,
    )
    return ours, theirs


SCHED_CASES = [
    ("StepLR", dict(step_size=3, gamma=0.7)),
    ("StepLR", dict(step_size=1)),
    ("MultiStepLR", dict(milestones=[2, 5, 5, 20], gamma=0.5)),
    ("ExponentialLR", dict(gamma=0.93)),
    ("CosineAnnealingLR", dict(T_max=10, eta_min=0.001)),  # past T_max: back up, recursively
    ("CosineAnnealingLR", dict(T_max=60)),
    ("CosineAnnealingLR", dict(T_max=7)),
    ("LinearLR", dict()),
    ("LinearLR", dict(start_factor=0.2, end_factor=0.6, total_iters=17)),
    ("OneCycleLR", dict(max_lr=[1.0, 2.0], total_steps=70)),
    (
        "OneCycleLR",
        dict(
            max_lr=1.0,
            epochs=7,
            steps_per_epoch=10,
            pct_start=0.25,
            anneal_strategy="linear",
            div_factor=10.0,
            final_div_factor=100.0,
        ),
    ),
    (
        "OneCycleLR",
        dict(
            max_lr=0.3,
            total_steps=70,
            three_phase=True,
            base_momentum=0.8,
            max_momentum=[0.9, 0.99],
        ),
    ),
    ("OneCycleLR", dict(max_lr=0.3, total_steps=70, cycle_momentum=False)),
]


def _compare(ours, theirs, o_opt, t_opt, steps):
    for _ in range(steps):
        assert ours.get_last_lr() == theirs.get_last_lr()  # exactly
        for g, tg in zip(o_opt.param_groups, t_opt.param_groups, strict=True):
            for key in ("lr", "momentum", "betas"):
                if key in tg:
                    assert g[key] == (tuple(tg[key]) if key == "betas" else tg[key])
        t_opt.step()
        o_opt.step()
        ours.step()
        theirs.step()
    assert ours.state_dict() == theirs.state_dict()


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("kind", ["SGD", "Adam"])
@pytest.mark.parametrize("name, kw", SCHED_CASES)
def test_scheduler_sequence_equals_torch(name, kw, kind):
    o_opt, t_opt = _optimizers(kind)
    ours, theirs = getattr(cl, name)(o_opt, **kw), getattr(tl, name)(t_opt, **kw)
    _compare(ours, theirs, o_opt, t_opt, 70 if name == "OneCycleLR" else 60)
    if name == "OneCycleLR":  # one step too many
        with pytest.raises(ValueError, match="total_steps"):
            ours.step()
        with pytest.raises(ValueError):
            theirs.step()


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize(
    "make",
    [
        lambda L, o: (
            [L.LinearLR(o, start_factor=0.1, total_iters=4), L.ExponentialLR(o, gamma=0.9)],
            [5],
        ),
        lambda L, o: (
            [
                L.LinearLR(o, start_factor=0.1, total_iters=4),
                L.CosineAnnealingLR(o, 20),
                L.StepLR(o, 4, 0.5),
            ],
            [5, 30],
        ),
        lambda L, o: (
            [
                L.ExponentialLR(o, 0.8),
                L.MultiStepLR(o, [3, 9]),
                L.OneCycleLR(o, 1.0, total_steps=40),
            ],
            [0, 15],
        ),
    ],
)
def test_sequential_lr_equals_torch(make):
    o_opt, t_opt = _optimizers()
    ours = cl.SequentialLR(o_opt, *make(cl, o_opt))
    theirs = tl.SequentialLR(t_opt, *make(tl, t_opt))
    _compare(ours, theirs, o_opt, t_opt, 55)


@pytest.mark.parametrize(
    "kw",
    [
        dict(patience=2, cooldown=1, factor=0.5),
        dict(mode="max", threshold_mode="abs", threshold=0.01, patience=0, min_lr=[0.02, 0.1]),
        dict(patience=3, threshold=0.1, min_lr=1e-3, eps=1e-3),
    ],
)
def test_reduce_lr_on_plateau_equals_torch(kw):
    o_opt, t_opt = _optimizers()
    ours, theirs = cl.ReduceLROnPlateau(o_opt, **kw), tl.ReduceLROnPlateau(t_opt, **kw)
    rng = np.random.default_rng(4)
    for i in range(60):
        metric = 1 / (1 + i // 10) + 0.01 * rng.standard_normal()
        if kw.get("mode") == "max":
            metric = -metric
        ours.step(metric)
        theirs.step(metric)
        assert ours.get_last_lr() == theirs.get_last_lr()
    assert ours.state_dict() == theirs.state_dict()
    assert ours.get_last_lr() != [0.1, 0.5]  # the plateaus did reduce the lr
