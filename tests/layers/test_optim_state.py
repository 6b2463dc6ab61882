"""convext.optim without torch: resuming from state_dict is exact, load_state_dict's checks,
parameter groups, the update rules against per-element hand-written formulas, and gradient
clipping against hand-computed norms."""

import copy
import math

import numpy as np
import pytest

import convext as cx
from convext import layers as L
from convext import optim
from convext.optim import lr_scheduler as cl


def _model(seed, dtype=np.float64):
    return L.Sequential(
        L.Conv2D(1, 3, 3, dtype=dtype), L.ReLU(), L.Flatten(), L.Dense(12, 4, dtype=dtype)
    ).reset_parameters(seed)


def _data(steps, dtype=np.float64):
    rng = np.random.default_rng(7)
    return [
        (rng.standard_normal((5, 1, 4, 4)).astype(dtype), rng.integers(0, 4, 5))
        for _ in range(steps)
    ]


def _train(model, opt, batches, scheduler=None):
    loss = cx.losses.CrossEntropyLoss()
    for X, y in batches:
        opt.zero_grad()
        _, grad = loss(model(X), y)
        model.backward(grad)
        opt.step()
        if scheduler is not None:
            scheduler.step()


def _groups(model):
    """Two groups: the convolution (its own lr and weight decay) and the dense layer."""
    return [{"params": model[0], "lr": 0.02, "weight_decay": 0.1}, {"params": model[3]}]


RESUME_CASES = [
    (optim.SGD, dict(lr=0.1)),
    (optim.SGD, dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3)),
    (optim.Adam, dict(lr=0.01, amsgrad=True)),
    (optim.AdamW, dict(lr=0.01, maximize=False)),
    (optim.RMSprop, dict(lr=0.01, momentum=0.5, centered=True)),
    (optim.Adagrad, dict(lr=0.1, lr_decay=0.01, initial_accumulator_value=0.1)),
]


@pytest.mark.parametrize("groups", [False, True])
@pytest.mark.parametrize("cls, kw", RESUME_CASES)
def test_resume_after_3_steps_equals_6_steps_bitwise(cls, kw, groups):
    batches = _data(6)
    make = (lambda m: cls(_groups(m), **kw)) if groups else (lambda m: cls(m, **kw))
    straight = _model(0)
    _train(straight, make(straight), batches)

    first = _model(0)
    opt = make(first)
    _train(first, opt, batches[:3])
    saved_model = copy.deepcopy(first.state_dict())
    saved_opt = copy.deepcopy(opt.state_dict())
    _train(first, opt, batches[3:4])  # what happens after saving does not touch the save

    resumed = _model(1)  # other initial weights: everything must come from the save
    resumed.load_state_dict(saved_model)
    opt2 = make(resumed)
    opt2.load_state_dict(saved_opt)
    _train(resumed, opt2, batches[3:])
    for k, p in straight.parameters().items():
        np.testing.assert_array_equal(resumed.parameters()[k], p)
    assert opt2.state_dict()["param_groups"] == make(_model(0)).state_dict()["param_groups"]


def test_resume_with_a_scheduler_is_exact():
    batches = _data(6)
    straight = _model(0)
    opt = optim.SGD(straight, lr=0.1, momentum=0.9)
    _train(straight, opt, batches, cl.CosineAnnealingLR(opt, T_max=4, eta_min=0.01))

    first = _model(0)
    opt = optim.SGD(first, lr=0.1, momentum=0.9)
    sched = cl.CosineAnnealingLR(opt, T_max=4, eta_min=0.01)
    _train(first, opt, batches[:3], sched)
    saved = copy.deepcopy((first.state_dict(), opt.state_dict(), sched.state_dict()))

    resumed = _model(1)
    resumed.load_state_dict(saved[0])
    opt2 = optim.SGD(resumed, lr=0.1, momentum=0.9)
    sched2 = cl.CosineAnnealingLR(opt2, T_max=4, eta_min=0.01)  # before loading, as in torch
    opt2.load_state_dict(saved[1])
    sched2.load_state_dict(saved[2])
    _train(resumed, opt2, batches[3:], sched2)
    for k, p in straight.parameters().items():
        np.testing.assert_array_equal(resumed.parameters()[k], p)


def test_state_dict_layout():
    model = _model(0)
    opt = optim.Adam(_groups(model), lr=0.01, amsgrad=True)
    sd = opt.state_dict()
    assert sd["state"] == {}
    assert [g["params"] for g in sd["param_groups"]] == [[0, 1], [2, 3]]
    assert sd["param_groups"][0] == {
        "lr": 0.02,
        "betas": (0.9, 0.999),
        "eps": 1e-8,
        "weight_decay": 0.1,
        "amsgrad": True,
        "maximize": False,
        "decoupled_weight_decay": False,
        "params": [0, 1],
    }
    _train(model, opt, _data(2))
    sd = opt.state_dict()
    assert sorted(sd["state"]) == [0, 1, 2, 3]
    for i, (p, _) in enumerate(opt.pairs):
        s = sd["state"][i]
        assert set(s) == {"step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"}
        assert s["step"] == 2.0 and isinstance(s["step"], float)
        assert s["exp_avg"].shape == p.shape and s["exp_avg"] is not opt.state[i]["exp_avg"]
    sgd = optim.SGD(model, lr=0.1)  # no momentum: no state, as in torch
    _train(model, sgd, _data(1))
    assert sgd.state_dict()["state"] == {}
    ada = optim.Adagrad(model, initial_accumulator_value=0.5)  # torch creates it eagerly
    assert ada.state_dict()["state"][3]["step"] == 0.0
    assert np.all(ada.state_dict()["state"][3]["sum"] == 0.5)


def _adam_state():
    model = _model(0)
    opt = optim.Adam(_groups(model), lr=0.01)
    _train(model, opt, _data(1))
    return opt


def _broken(edit):
    opt = _adam_state()
    sd = copy.deepcopy(opt.state_dict())
    edit(sd)
    return opt, sd


@pytest.mark.parametrize(
    "edit, err, match",
    [
        (lambda sd: sd["param_groups"].pop(), ValueError, "has 1 groups, this optimizer 2"),
        (
            lambda sd: sd["param_groups"][1]["params"].pop(),
            ValueError,
            r"\['param_groups'\]\[1\]\['params'\] has 1 parameters",
        ),
        (
            lambda sd: sd["state"][1].__setitem__("exp_avg", np.zeros(2)),
            ValueError,
            r"\['state'\]\[1\]\['exp_avg'\] has shape \(2,\)",
        ),
        (
            lambda sd: sd["state"][2].__setitem__(
                "exp_avg_sq", sd["state"][2]["exp_avg_sq"].astype(np.float32)
            ),
            ValueError,
            r"\['exp_avg_sq'\] has dtype float32",
        ),
        (lambda sd: sd["state"][0].__setitem__("exp_avg", [0.0]), TypeError, "'exp_avg'.*numpy"),
        (lambda sd: sd["state"][0].pop("exp_avg_sq"), ValueError, "missing 'exp_avg_sq'"),
        (
            lambda sd: sd["state"][0].__setitem__("momentum", 1.0),
            ValueError,
            "unexpected key 'momentum'",
        ),
        (lambda sd: sd["state"][0].__setitem__("step", 1.5), ValueError, "whole number"),
        (lambda sd: sd["state"][0].__setitem__("step", -1.0), ValueError, r"\['step'\]"),
        (lambda sd: sd["state"].__setitem__(9, {}), ValueError, r"\['state'\]\[9\]"),
        (lambda sd: sd["param_groups"][0].pop("eps"), ValueError, "missing 'eps'"),
        (lambda sd: sd["param_groups"][0].__setitem__("lr", -1.0), ValueError, "lr must"),
        (lambda sd: sd["param_groups"][1].__setitem__("betas", (0.9,)), ValueError, "betas"),
        (lambda sd: sd["param_groups"][1].__setitem__("amsgrad", 1), TypeError, "amsgrad"),
        (
            lambda sd: sd["param_groups"][0].__setitem__("momentum", 0.9),
            ValueError,
            "unexpected key 'momentum'",
        ),
        (lambda sd: sd["param_groups"][0].__setitem__("foreach", True), ValueError, "foreach"),
        (lambda sd: sd["param_groups"][0].__setitem__("params", [0, 0]), ValueError, "twice"),
        (lambda sd: sd.__setitem__("extra", 1), ValueError, "unexpected keys"),
        (lambda sd: sd.pop("state"), ValueError, "no 'state'"),
    ],
)
def test_load_state_dict_checks_everything_and_changes_nothing(edit, err, match):
    opt, sd = _broken(edit)
    before = copy.deepcopy(opt.state_dict())
    with pytest.raises(err, match=match):
        opt.load_state_dict(sd)
    after = opt.state_dict()
    assert after["param_groups"] == before["param_groups"]
    for i, s in before["state"].items():
        for k, v in s.items():
            np.testing.assert_array_equal(after["state"][i][k], v)


def test_load_accepts_torchs_switches_at_their_defaults():
    opt, sd = _broken(
        lambda sd: [
            g.update(foreach=None, fused=None, capturable=False, differentiable=False)
            for g in sd["param_groups"]
        ]
    )
    opt.load_state_dict(sd)
    assert "foreach" not in opt.state_dict()["param_groups"][0]


# -- groups and the API ---------------------------------------------------------------------


def test_param_groups_have_their_own_lr_and_weight_decay():
    rng = np.random.default_rng(0)
    p = [rng.standard_normal(3), rng.standard_normal(2)]
    g = [rng.standard_normal(3), rng.standard_normal(2)]
    start = [x.copy() for x in p]
    opt = optim.SGD(
        [{"params": [(p[0], g[0])], "weight_decay": 0.5}, {"params": [(p[1], g[1])], "lr": 0.3}],
        lr=0.1,
    )
    opt.step()
    for i in range(3):  # p - lr * (g + wd * p), element by element
        assert p[0][i] == start[0][i] - 0.1 * (g[0][i] + 0.5 * start[0][i])
    for i in range(2):
        assert p[1][i] == start[1][i] - 0.3 * g[1][i]
    with pytest.raises(AttributeError, match="different learning rates"):
        _ = opt.lr
    assert getattr(opt, "lr", None) is None
    opt.lr = 0.2
    assert [grp["lr"] for grp in opt.param_groups] == [0.2, 0.2] and opt.lr == 0.2
    with pytest.raises(ValueError, match="lr"):
        opt.lr = -1
    q = (np.zeros(4), np.ones(4))
    opt.add_param_group({"params": [q], "momentum": 0.9})
    assert opt.param_groups[2]["lr"] == 0.1 and opt.param_groups[2]["momentum"] == 0.9
    opt.step()
    np.testing.assert_array_equal(q[0], -0.1 * np.ones(4))
    assert opt.state_dict()["param_groups"][2]["params"] == [2]
    assert "SGD" in repr(opt)


def test_group_and_constructor_errors():
    p, g = np.zeros(3), np.zeros(3)
    with pytest.raises(ValueError, match="unknown hyperparameter 'mometum'"):
        optim.SGD([{"params": [(p, g)], "mometum": 0.9}], lr=0.1)
    with pytest.raises(ValueError, match="already in the optimizer"):
        optim.SGD([{"params": [(p, g)]}, {"params": [(p, g)]}], lr=0.1)
    with pytest.raises(ValueError, match="no 'params'"):
        optim.SGD([{"lr": 0.1}], lr=0.1)
    with pytest.raises(ValueError, match=r"params\[1\]: lr"):
        optim.Adam([{"params": [(p, g)]}, {"params": [(np.zeros(1), np.zeros(1))], "lr": -0.5}])
    with pytest.raises(ValueError, match="alpha"):
        optim.RMSprop([(p, g)], alpha=-0.1)
    with pytest.raises(ValueError, match="lr_decay"):
        optim.Adagrad([(p, g)], lr_decay=-1)
    with pytest.raises(ValueError, match="eps must be finite"):
        optim.Adam([(p, g)], eps=math.inf)
    with pytest.raises(TypeError, match="maximize"):
        optim.SGD([(p, g)], maximize="yes")
    with pytest.raises(TypeError, match="Layer or an iterable"):
        optim.SGD(p, lr=0.1)
    opt = optim.SGD([(p, g)], lr=0.1)
    opt.param_groups[0]["lr"] = math.nan  # changed by hand: checked at the next step
    with pytest.raises(ValueError, match=r"param_groups\[0\]: lr"):
        opt.step()


def test_step_returns_the_closure_value():
    p, g = np.ones(2), np.zeros(2)
    opt = optim.SGD([(p, g)], lr=0.5)

    def closure():
        g[...] = 2.0
        return 7.0

    assert opt.step(closure) == 7.0
    np.testing.assert_array_equal(p, [0.0, 0.0])


# -- update rules against per-element formulas (float64) -----------------------------------


def _elementwise(kind, kw, steps=5):
    """Run the optimizer on one array; return (params after each step, grads fed)."""
    rng = np.random.default_rng(11)
    p, g = rng.standard_normal(6), np.zeros(6)
    opt = getattr(optim, kind)([(p, g)], **kw)
    history, grads = [p.copy()], []
    for _ in range(steps):
        g[...] = rng.standard_normal(6)
        grads.append(g.copy())
        opt.step()
        history.append(p.copy())
    return history, grads


def _naive(history, grads, update):
    """Apply ``update(x, g, state, t)`` element by element with Python floats."""
    out = []
    for i in range(history[0].size):
        x, state = float(history[0][i]), {}
        for t, g in enumerate(grads, 1):
            x = update(x, float(g[i]), state, t)
        out.append(x)
    np.testing.assert_allclose(history[-1], out, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize(
    "kw",
    [
        dict(),
        dict(lr=0.02, alpha=0.8, momentum=0.7, centered=True, weight_decay=0.1, maximize=True),
    ],
)
def test_rmsprop_rule(kw):
    o = (
        dict(
            lr=0.01,
            alpha=0.99,
            eps=1e-8,
            weight_decay=0.0,
            momentum=0.0,
            centered=False,
            maximize=False,
        )
        | kw
    )

    def update(x, g, s, t):
        g = (-g if o["maximize"] else g) + o["weight_decay"] * x
        s["v"] = o["alpha"] * s.get("v", 0.0) + (1 - o["alpha"]) * g * g
        v = s["v"]
        if o["centered"]:
            s["a"] = o["alpha"] * s.get("a", 0.0) + (1 - o["alpha"]) * g
            v = v - s["a"] ** 2
        d = math.sqrt(v) + o["eps"]
        if o["momentum"]:
            s["b"] = o["momentum"] * s.get("b", 0.0) + g / d
            return x - o["lr"] * s["b"]
        return x - o["lr"] * g / d

    _naive(*_elementwise("RMSprop", kw), update)


@pytest.mark.parametrize(
    "kw",
    [
        dict(),
        dict(
            lr=0.3,
            lr_decay=0.2,
            weight_decay=0.1,
            eps=1e-3,
            initial_accumulator_value=0.4,
            maximize=True,
        ),
    ],
)
def test_adagrad_rule(kw):
    o = (
        dict(
            lr=0.01,
            lr_decay=0.0,
            weight_decay=0.0,
            initial_accumulator_value=0.0,
            eps=1e-10,
            maximize=False,
        )
        | kw
    )

    def update(x, g, s, t):
        g = (-g if o["maximize"] else g) + o["weight_decay"] * x
        s["s"] = s.get("s", o["initial_accumulator_value"]) + g * g
        return x - o["lr"] / (1 + (t - 1) * o["lr_decay"]) * g / (math.sqrt(s["s"]) + o["eps"])

    _naive(*_elementwise("Adagrad", kw), update)


@pytest.mark.parametrize(
    "kind, kw",
    [("Adam", dict(amsgrad=True, weight_decay=0.1)), ("AdamW", dict(lr=0.1, betas=(0.5, 0.7)))],
)
def test_adam_rule(kind, kw):
    decoupled = kind == "AdamW"
    o = (
        dict(
            lr=1e-3,
            betas=(0.9, 0.999),
            eps=1e-8,
            weight_decay=0.01 if decoupled else 0.0,
            amsgrad=False,
        )
        | kw
    )

    def update(x, g, s, t):
        b1, b2 = o["betas"]
        if decoupled:
            x = x * (1 - o["lr"] * o["weight_decay"])
        else:
            g = g + o["weight_decay"] * x
        s["m"] = b1 * s.get("m", 0.0) + (1 - b1) * g
        s["v"] = b2 * s.get("v", 0.0) + (1 - b2) * g * g
        s["vmax"] = max(s.get("vmax", 0.0), s["v"]) if o["amsgrad"] else s["v"]
        m_hat = s["m"] / (1 - b1**t)
        return x - o["lr"] * m_hat / (math.sqrt(s["vmax"]) / math.sqrt(1 - b2**t) + o["eps"])

    _naive(*_elementwise(kind, kw), update)


def test_float32_parameters_stay_float32():
    for cls in (optim.SGD, optim.Adam, optim.AdamW, optim.RMSprop, optim.Adagrad):
        model = _model(0, np.float32)
        opt = cls(_groups(model), lr=0.01)
        _train(model, opt, _data(2, np.float32))
        assert all(p.dtype == np.float32 for p in model.parameters().values())
        assert all(
            v.dtype == np.float32
            for s in opt.state
            for v in s.values()
            if isinstance(v, np.ndarray)
        )


# -- clipping --------------------------------------------------------------------------------


@pytest.mark.parametrize("norm_type", [2, 1, math.inf, 3])
def test_clip_grad_norm_by_hand(norm_type):
    grads = [np.array([3.0, -4.0]), np.array([[1.0, -2.0], [0.5, 0.0]])]
    flat = [3.0, 4.0, 1.0, 2.0, 0.5, 0.0]
    want = (
        max(flat) if norm_type == math.inf else sum(v**norm_type for v in flat) ** (1 / norm_type)
    )
    before = [g.copy() for g in grads]
    total = optim.clip_grad_norm(grads, 100.0, norm_type)
    assert total == pytest.approx(want, rel=1e-15)
    for g, b in zip(grads, before, strict=True):
        np.testing.assert_array_equal(g, b)  # under max_norm: unchanged
    total = optim.clip_grad_norm(grads, 1.0, norm_type)
    coef = 1.0 / (want + 1e-6)
    for g, b in zip(grads, before, strict=True):
        np.testing.assert_allclose(g, b * coef, rtol=1e-15)


def test_clip_on_a_model_and_an_optimizer():
    model = _model(0)
    opt = optim.SGD(model, lr=0.1)
    X, y = _data(1)[0]
    _, grad = cx.losses.CrossEntropyLoss()(model(X), y)
    model.backward(grad)
    grads = list(model.grads().values())
    norm = math.sqrt(sum(float(np.sum(g * g)) for g in grads))
    assert optim.clip_grad_norm(model, norm / 2) == pytest.approx(norm, rel=1e-14)
    clipped = norm / 2 / (norm + 1e-6) * norm  # torch's factor max_norm / (norm + 1e-6)
    assert optim.clip_grad_norm(opt, 1e9) == pytest.approx(clipped, rel=1e-14)
    optim.clip_grad_value(opt, 1e-3)
    assert max(float(np.max(np.abs(g))) for g in model.grads().values()) <= 1e-3
    g32 = np.ones(4, np.float32)
    optim.clip_grad_norm([g32], 1.0)
    assert g32.dtype == np.float32 and abs(float(np.sum(g32 * g32)) - 1.0) < 1e-5
    assert optim.clip_grad_norm([], 1.0) == 0.0


def test_clip_errors():
    g = np.ones(3)
    with pytest.raises(ValueError, match="max_norm"):
        optim.clip_grad_norm([g], -1.0)
    with pytest.raises(ValueError, match="norm_type"):
        optim.clip_grad_norm([g], 1.0, norm_type=math.nan)
    with pytest.raises(TypeError, match="norm_type"):
        optim.clip_grad_norm([g], 1.0, norm_type="two")
    with pytest.raises(ValueError, match="clip_value"):
        optim.clip_grad_value([g], -0.1)
    with pytest.raises(TypeError, match="parameters"):
        optim.clip_grad_value(3.0, 1.0)
    with pytest.raises(TypeError, match=r"parameters\[0\]"):
        optim.clip_grad_norm([np.arange(3)], 1.0)
    ro = np.ones(3)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        optim.clip_grad_value([ro], 1.0)
    bad = np.array([1.0, np.nan])
    with pytest.raises(ValueError, match="error_if_nonfinite"):
        optim.clip_grad_norm([bad], 1.0, error_if_nonfinite=True)
    np.testing.assert_array_equal(bad, [1.0, np.nan])  # untouched when refused


def test_step_checks_every_group_before_updating_any():
    from convext.optim import SGD

    p0, p1 = (np.ones(3), np.ones(3)), (np.ones(3), np.ones(3))
    opt = SGD([{"params": [p0]}, {"params": [p1]}], lr=0.1)
    opt.param_groups[1]["lr"] = float("nan")
    with pytest.raises(ValueError, match=r"param_groups\[1\]: lr must be finite"):
        opt.step()
    np.testing.assert_array_equal(p0[0], np.ones(3))  # group 0 was not updated either


@pytest.mark.parametrize(
    "make",
    [
        lambda p: cx.optim.SGD([p], lr=10**400),
        lambda p: cx.optim.SGD([p], lr=0.1, momentum=10**400),
    ],
)
def test_ints_too_large_for_a_float_are_value_errors(make):
    with pytest.raises(ValueError, match="must be finite, got an int of 1329 bits"):
        make((np.ones(3), np.ones(3)))


@pytest.mark.parametrize("key, value", [("exp_avg_sq", -1.0), ("exp_avg", np.nan)])
def test_forged_adam_state_is_refused(key, value):
    from convext.optim import Adam

    p = (np.ones(3), np.full(3, 0.5))
    opt = Adam([p], lr=0.1)
    opt.step()
    state = opt.state_dict()
    state["state"][0][key] = np.full(3, value)
    before = opt.state_dict()
    with pytest.raises(ValueError, match=rf"\['{key}'\] holds (negative|NaN)"):
        opt.load_state_dict(state)
    after = opt.state_dict()
    for k in before["state"][0]:
        np.testing.assert_array_equal(after["state"][0][k], before["state"][0][k])
