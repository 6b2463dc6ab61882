"""convext.optim.lr_scheduler without torch: each schedule against its closed form or a
hand-computed sequence, per param group, state_dict round trips and load_state_dict's checks.
(tests/parity/test_parity_optim_state.py compares the exact sequences with torch.)"""

import copy
import math

import numpy as np
import pytest

from convext import optim
from convext.optim import lr_scheduler as cl


def _opt(lrs=(0.1, 0.5), cls=optim.SGD, **kw):
    groups = [{"params": [(np.zeros(2), np.zeros(2))], "lr": lr} for lr in lrs]
    return cls(groups, lr=lrs[0], **kw)


def _run(sched, steps):
    """The lrs used by steps 0..steps-1 (read before each scheduler step), per group."""
    out = []
    for _ in range(steps):
        out.append(sched.get_last_lr())
        assert out[-1] == [g["lr"] for g in sched.optimizer.param_groups]
        sched.optimizer.step()
        sched.step()
    return np.array(out)


def _closed(f, steps, bases=(0.1, 0.5)):
    return np.array([[f(t, b) for b in bases] for t in range(steps)])


def test_step_multistep_exponential_closed_forms():
    np.testing.assert_allclose(
        _run(cl.StepLR(_opt(), 3, gamma=0.7), 60),
        _closed(lambda t, b: b * 0.7 ** (t // 3), 60),
        rtol=1e-13,
    )
    ms = [2, 5, 5, 20]  # a repeated milestone counts twice
    np.testing.assert_allclose(
        _run(cl.MultiStepLR(_opt(), ms, gamma=0.5), 60),
        _closed(lambda t, b: b * 0.5 ** sum(m <= t for m in ms), 60),
        rtol=1e-15,
    )
    np.testing.assert_allclose(
        _run(cl.ExponentialLR(_opt(), 0.93), 60), _closed(lambda t, b: b * 0.93**t, 60), rtol=1e-13
    )


@pytest.mark.parametrize("T_max, eta_min", [(10, 0.001), (60, 0.0), (7, 0.05)])
def test_cosine_annealing_closed_form(T_max, eta_min):
    """Recursive in torch's way, and equal to the closed form (also past T_max, where it
    rises again) up to rounding: at most 2 ulps of the initial lr per recursive step."""
    got = _run(cl.CosineAnnealingLR(_opt(), T_max, eta_min), 60)
    want = _closed(
        lambda t, b: eta_min + (b - eta_min) * (1 + math.cos(math.pi * t / T_max)) / 2, 60
    )
    bases = np.array([0.1, 0.5])
    assert np.all(np.abs(got - want) <= 60 * 2 * np.finfo(float).eps * bases)
    assert got[0].tolist() == [0.1, 0.5]


def test_cosine_is_the_demos_schedule():
    """The demo's former CosineDecay: lr_t = lr * (1 + cos(pi * t / steps)) / 2 for the t-th
    optimizer step, t = 0..steps-1."""
    steps, lr = 855, 3e-3
    opt = optim.Adam([(np.zeros(1), np.zeros(1))], lr=lr)
    got = _run(cl.CosineAnnealingLR(opt, T_max=steps), steps)[:, 0]
    want = [lr * 0.5 * (1 + math.cos(math.pi * min(t, steps) / steps)) for t in range(steps)]
    assert np.max(np.abs(got - want)) <= 1e-15 * lr * steps**0.5


def test_linear_lr_closed_form():
    got = _run(cl.LinearLR(_opt(), start_factor=0.2, end_factor=0.6, total_iters=17), 40)
    want = _closed(lambda t, b: b * (0.2 + 0.4 * min(t, 17) / 17), 40)
    np.testing.assert_allclose(got, want, rtol=1e-14)
    got = _run(cl.LinearLR(_opt()), 8)  # defaults: 1/3 to 1 over 5 steps
    np.testing.assert_allclose(
        got, _closed(lambda t, b: b * (1 / 3 + 2 / 3 * min(t, 5) / 5), 8), rtol=1e-14
    )


@pytest.mark.parametrize("three_phase", [False, True])
def test_one_cycle_by_hand(three_phase):
    total, pct = 50, 0.3
    opt = _opt(cls=optim.SGD, momentum=0.9)
    sched = cl.OneCycleLR(
        opt, max_lr=[1.0, 2.0], total_steps=total, pct_start=pct, three_phase=three_phase
    )
    lrs, moms = [], []
    for _ in range(total):
        lrs.append(sched.get_last_lr())
        moms.append([g["momentum"] for g in opt.param_groups])
        opt.step()
        sched.step()
    lrs, moms = np.array(lrs), np.array(moms)

    def cos(start, end, x):
        return end + (start - end) / 2 * (math.cos(math.pi * x) + 1)

    up = pct * total - 1  # 14: the step at max_lr
    for t in range(total):
        if t <= up:
            want, m = cos(1 / 25, 1.0, t / up), cos(0.95, 0.85, t / up)
        elif three_phase and t <= 2 * up:
            want, m = cos(1.0, 1 / 25, (t - up) / up), cos(0.85, 0.95, (t - up) / up)
        else:
            s0 = 2 * up if three_phase else up
            x = (t - s0) / (total - 1 - s0)
            want = cos(1 / 25 if three_phase else 1.0, 1 / 25 / 1e4, x)
            m = 0.95 if three_phase else cos(0.85, 0.95, x)
        np.testing.assert_allclose(lrs[t], [want, 2 * want], rtol=1e-13)
        np.testing.assert_allclose(moms[t], [m, m], rtol=1e-13)
    assert lrs[int(up), 0] == 1.0 and lrs[-1, 0] == pytest.approx(1 / 25 / 1e4, rel=1e-13)
    with pytest.raises(ValueError, match="total_steps"):
        sched.step()
    assert sched.last_epoch == total  # as in torch, step total_steps is allowed; the refused
    # step changed nothing


def test_one_cycle_moves_adams_beta1_and_refuses_adagrad():
    opt = optim.Adam([(np.zeros(1), np.zeros(1))], betas=(0.9, 0.98))
    sched = cl.OneCycleLR(opt, max_lr=0.01, total_steps=10, base_momentum=0.8, max_momentum=0.9)
    assert opt.param_groups[0]["betas"] == (0.9, 0.98)
    for _ in range(3):
        opt.step()
        sched.step()
    assert 0.8 < opt.param_groups[0]["betas"][0] < 0.9 and opt.param_groups[0]["betas"][1] == 0.98
    with pytest.raises(ValueError, match="cycle_momentum"):
        cl.OneCycleLR(optim.Adagrad([(np.zeros(1), np.zeros(1))]), 0.1, total_steps=5)
    cl.OneCycleLR(
        optim.Adagrad([(np.zeros(1), np.zeros(1))]), 0.1, total_steps=5, cycle_momentum=False
    )


def test_reduce_lr_on_plateau_by_hand():
    opt = _opt()
    sched = cl.ReduceLROnPlateau(opt, factor=0.5, patience=2, cooldown=1, min_lr=[0.03, 0.0])
    # improvement resets the count; the 3rd bad epoch in a row (> patience) halves the lrs;
    # the next epoch is cooldown
    metrics = [1.0, 0.9, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95]
    lrs = []
    for m in metrics:
        sched.step(m)
        lrs.append(sched.get_last_lr())
    want = [[0.1, 0.5]] * 4 + [[0.05, 0.25]] * 4 + [[0.03, 0.125]] * 2
    assert lrs == want
    assert sched.best == 0.9 and sched.last_epoch == 10
    with pytest.raises(TypeError, match="metrics"):
        sched.step("low")
    mx = cl.ReduceLROnPlateau(_opt(), mode="max", patience=0, threshold=0.1, threshold_mode="abs")
    for m in [1.0, 1.05, 1.2]:  # 1.05 is no improvement by 0.1: reduce at once
        mx.step(m)
    assert mx.get_last_lr() == [pytest.approx(0.01), pytest.approx(0.05)]


def test_sequential_lr_pieces():
    opt = _opt()
    sched = cl.SequentialLR(
        opt,
        [cl.LinearLR(opt, start_factor=0.1, total_iters=4), cl.ExponentialLR(opt, gamma=0.9)],
        milestones=[5],
    )
    got = _run(sched, 30)
    want = _closed(
        lambda t, b: b * (0.1 + 0.9 * min(t, 4) / 4) if t < 5 else b * 0.9 ** (t - 5), 30
    )
    np.testing.assert_allclose(got, want, rtol=1e-13)


def test_errors():
    opt = _opt()
    with pytest.raises(ValueError, match="step_size"):
        cl.StepLR(opt, 0)
    with pytest.raises(TypeError, match="step_size"):
        cl.StepLR(opt, 2.5)
    with pytest.raises(ValueError, match="gamma"):
        cl.ExponentialLR(opt, -0.1)
    with pytest.raises(ValueError, match="T_max"):
        cl.CosineAnnealingLR(opt, 0)
    with pytest.raises(ValueError, match="start_factor"):
        cl.LinearLR(opt, start_factor=0.0)
    with pytest.raises(ValueError, match="anneal_strategy"):
        cl.OneCycleLR(opt, 1.0, total_steps=10, anneal_strategy="cosine")
    with pytest.raises(ValueError, match="total_steps"):
        cl.OneCycleLR(opt, 1.0)
    with pytest.raises(ValueError, match="max_lr"):
        cl.OneCycleLR(opt, [1.0], total_steps=10)
    with pytest.raises(ValueError, match="factor"):
        cl.ReduceLROnPlateau(opt, factor=1.0)
    with pytest.raises(ValueError, match="mode"):
        cl.ReduceLROnPlateau(opt, mode="lowest")
    with pytest.raises(TypeError, match="optimizer"):
        cl.StepLR(object(), 2)
    with pytest.raises(ValueError, match="initial_lr"):
        cl.StepLR(_opt(), 2, last_epoch=3)
    with pytest.raises(ValueError, match="milestones"):
        cl.SequentialLR(opt, [cl.StepLR(opt, 2), cl.StepLR(opt, 3)], milestones=[])
    with pytest.raises(ValueError, match="another optimizer"):
        cl.SequentialLR(opt, [cl.StepLR(_opt(), 2)], milestones=[])
    with pytest.raises(TypeError, match="ReduceLROnPlateau"):
        cl.SequentialLR(opt, [cl.ReduceLROnPlateau(opt)], milestones=[])


MAKERS = [
    lambda o: cl.StepLR(o, 3, gamma=0.5),
    lambda o: cl.MultiStepLR(o, [2, 4, 4]),
    lambda o: cl.CosineAnnealingLR(o, 6, eta_min=0.01),
    lambda o: cl.OneCycleLR(o, 1.0, total_steps=20),
    lambda o: cl.SequentialLR(o, [cl.LinearLR(o, total_iters=3), cl.ExponentialLR(o, 0.8)], [4]),
]


@pytest.mark.parametrize("make", MAKERS)
def test_state_dict_round_trip_resumes_the_sequence(make):
    opt = _opt(momentum=0.9)
    sched = make(opt)
    first = _run(sched, 7)
    saved_opt, saved = copy.deepcopy(opt.state_dict()), copy.deepcopy(sched.state_dict())
    rest = _run(sched, 10)

    opt2 = _opt(momentum=0.9)
    sched2 = make(opt2)
    opt2.load_state_dict(saved_opt)
    sched2.load_state_dict(saved)
    assert sched2.last_epoch == 7 and len(first) == 7
    np.testing.assert_array_equal(_run(sched2, 10), rest)


def test_plateau_state_round_trip():
    opt = _opt()
    sched = cl.ReduceLROnPlateau(opt, patience=1)
    for m in [1.0, 1.0, 1.0]:
        sched.step(m)
    sd = copy.deepcopy(sched.state_dict())
    other = cl.ReduceLROnPlateau(_opt(), patience=5, min_lr=[0.0, 0.01])
    other.load_state_dict(sd)
    assert other.state_dict() == sd and other.patience == 1 and other.default_min_lr == 0.0


@pytest.mark.parametrize(
    "edit, err, match",
    [
        (lambda sd: sd.pop("gamma"), ValueError, "no 'gamma'"),
        (lambda sd: sd.__setitem__("extra", 1), ValueError, "unexpected key 'extra'"),
        (lambda sd: sd.__setitem__("step_size", 0), ValueError, "step_size"),
        (lambda sd: sd.__setitem__("step_size", "3"), TypeError, "step_size"),
        (lambda sd: sd.__setitem__("gamma", math.nan), TypeError, "gamma"),
        (lambda sd: sd.__setitem__("base_lrs", [0.1]), ValueError, "base_lrs"),
        (lambda sd: sd.__setitem__("_last_lr", [0.1, -0.5]), ValueError, "_last_lr"),
        (lambda sd: sd.__setitem__("last_epoch", -5), ValueError, "last_epoch"),
        (lambda sd: sd.__setitem__("_is_initial", 0), TypeError, "_is_initial"),
    ],
)
def test_load_state_dict_checks_and_changes_nothing(edit, err, match):
    sched = cl.StepLR(_opt(), 3, gamma=0.5)
    _run(sched, 4)
    before = sched.state_dict()
    sd = copy.deepcopy(before)
    edit(sd)
    with pytest.raises(err, match=match):
        sched.load_state_dict(sd)
    assert sched.state_dict() == before


def test_sequential_load_is_atomic():
    opt = _opt()

    def make():
        return cl.SequentialLR(opt, [cl.StepLR(opt, 2), cl.ExponentialLR(opt, 0.9)], [3])

    sched = make()
    _run(sched, 5)
    before = sched.state_dict()
    sd = copy.deepcopy(before)
    sd["_schedulers"][1]["gamma"] = -1.0  # the second one is refused after the first loaded
    sd["_schedulers"][0]["last_epoch"] = 0
    with pytest.raises(ValueError, match="gamma"):
        sched.load_state_dict(sd)
    assert sched.state_dict() == before


def test_one_cycle_and_plateau_state_checks():
    opt = _opt(momentum=0.9)
    sched = cl.OneCycleLR(opt, 1.0, total_steps=10)
    before = sched.state_dict()
    sd = copy.deepcopy(before)
    sd["_schedule_phases"][0]["start_lr"] = "params"  # would read a group's arrays
    with pytest.raises(ValueError, match="start_lr"):
        sched.load_state_dict(sd)
    sd = copy.deepcopy(before)
    sd["_schedule_phases"][1]["end_step"] = None
    with pytest.raises(TypeError, match="end_step"):
        sched.load_state_dict(sd)
    assert sched.state_dict() == before
    fresh = cl.StepLR(_opt(momentum=0.9), 2)  # its optimizer lacks max_lr, ...
    one = cl.OneCycleLR(fresh.optimizer, 1.0, total_steps=10)
    for g in fresh.optimizer.param_groups:
        del g["max_lr"]
    with pytest.raises(ValueError, match="no 'max_lr'"):
        one.load_state_dict(before)

    listed = cl.ReduceLROnPlateau(_opt(), min_lr=[0.0, 0.1])
    scalar = cl.ReduceLROnPlateau(_opt())
    scalar.load_state_dict(listed.state_dict())  # default_min_lr None is allowed
    assert scalar.default_min_lr is None and scalar.min_lrs == [0.0, 0.1]
    sd = listed.state_dict()
    sd["best"] = None
    with pytest.raises(TypeError, match="best"):
        scalar.load_state_dict(sd)


def test_forged_counts_and_huge_ints_are_refused():
    p = (np.ones(3), np.ones(3))
    opt = optim.SGD([p], lr=0.1)
    sched = cl.MultiStepLR(opt, [2, 4])
    state = sched.state_dict()
    state["milestones"] = {2: 2**63}  # gamma ** 2**63 was an OverflowError at step()
    with pytest.raises(ValueError, match=r"must be in \[1, 2\*\*53\]"):
        sched.load_state_dict(state)
    with pytest.raises(ValueError, match="T_max must be in"):
        cl.CosineAnnealingLR(opt, 2**1100)
    with pytest.raises(ValueError, match="gamma must be finite"):
        cl.StepLR(opt, 1, gamma=10**400)
    plateau = cl.ReduceLROnPlateau(opt)
    with pytest.raises(ValueError, match="metrics is an int too large"):
        plateau.step(10**400)


@pytest.mark.parametrize(
    "make, fails_at",
    [
        # 0.1 * 1e300 is finite, 0.1 * 1e300 * 1e300 is not: the second decay fails
        (lambda o: cl.StepLR(o, step_size=2, gamma=1e300), 4),
        (lambda o: cl.ExponentialLR(o, gamma=1e300), 2),
        (lambda o: cl.MultiStepLR(o, milestones=[1, 3], gamma=1e300), 3),
        # a milestone given twice: 1e300 ** 2 is an OverflowError in Python
        (lambda o: cl.MultiStepLR(o, milestones=[2, 2], gamma=1e300), 2),
        # gamma 2 doubles 0.5 past the float range (2**1024) after 1025 steps
        (lambda o: cl.ExponentialLR(o, gamma=2.0), 1025),
    ],
)
def test_a_step_to_a_non_finite_lr_is_a_value_error_naming_gamma(make, fails_at):
    """torch would set lr=inf; the step that would do so is a ValueError naming gamma, and
    neither the scheduler nor the optimizer changes."""
    opt = _opt()
    sched = make(opt)
    for _ in range(fails_at - 1):
        sched.step()
    assert all(math.isfinite(lr) for lr in sched.get_last_lr())
    state, lrs = copy.deepcopy(sched.state_dict()), [g["lr"] for g in opt.param_groups]
    for _ in range(2):  # and again: nothing moved
        with pytest.raises(ValueError, match=rf"step {fails_at} would make .*gamma=.* overflow"):
            sched.step()
        assert sched.state_dict() == state
        assert [g["lr"] for g in opt.param_groups] == lrs


def test_sequential_lr_step_to_a_non_finite_lr_changes_nothing():
    opt = _opt()
    sched = cl.SequentialLR(
        opt,
        [cl.ExponentialLR(opt, gamma=0.5), cl.ExponentialLR(opt, gamma=1e300)],
        milestones=[1],
    )
    sched.step()  # the second scheduler restarts at the milestone: lr = initial lr
    assert sched.get_last_lr() == [0.1, 0.5]
    sched.step()  # 0.1 * 1e300
    state = copy.deepcopy(sched.state_dict())
    lrs = [g["lr"] for g in opt.param_groups]
    with pytest.raises(ValueError, match="^ExponentialLR: step 2 .*gamma=1e\\+300"):
        sched.step()
    assert sched.state_dict() == state
    assert [g["lr"] for g in opt.param_groups] == lrs
