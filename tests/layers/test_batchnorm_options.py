"""BatchNorm2D's torch options (momentum None, affine, bias, track_running_stats, device, dtype),
backward after an eval-mode forward, and the empty training batch, against the naive oracles of
tests/reference.py (no torch; the torch comparison: tests/parity/test_parity_loss_options.py)."""

import numpy as np
import pytest

import reference
from convext import functional as F
from convext import layers as L

RNG = np.random.default_rng(1515)


def _close(a, b):
    np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-12)


def test_momentum_none_is_the_cumulative_average():
    bn = L.BatchNorm2D(2, momentum=None, dtype=np.float64)
    means, uvars = [], []
    for step in range(4):
        x = RNG.standard_normal((3, 2, 4, 3)) * (step + 1) + step
        _, mean, _, uvar = reference.batch_norm2d_train(x, np.ones(2), np.zeros(2))
        means.append(mean)
        uvars.append(uvar)
        bn(x)
    sd = bn.state_dict()
    # running = (1 - 1/k) * running + 1/k * batch from zeros/ones: the average of the batches'
    # statistics (the initial running_var of 1 has weight 0 after the first step)
    _close(sd["running_mean"], np.mean(means, axis=0))
    _close(sd["running_var"], np.mean(uvars, axis=0))
    assert sd["num_batches_tracked"] == 4


@pytest.mark.parametrize(
    "affine, bias, params",
    [
        (True, True, {"weight", "bias"}),
        (True, False, {"weight"}),
        (False, True, set()),
        (False, False, set()),
    ],
)
def test_affine_and_bias(affine, bias, params):
    bn = L.BatchNorm2D(3, affine=affine, bias=bias, dtype=np.float64)
    assert set(bn.parameters()) == params
    assert bn.bias == (affine and bias)
    w = RNG.uniform(0.5, 1.5, 3) if affine else np.ones(3)
    if affine:
        bn.parameters()["weight"][...] = w
    x = RNG.standard_normal((4, 3, 3, 3))
    g = RNG.standard_normal(x.shape)
    y = bn(x)
    _close(y, reference.batch_norm2d_train(x, w, np.zeros(3))[0])
    gx = bn.backward(g)
    rgx, rgw, _ = reference.batch_norm2d_train_backward(g, x, w)
    _close(gx, rgx)
    if affine:
        _close(bn.grads()["weight"], rgw)
    clone = L.BatchNorm2D(**bn.get_config())
    assert set(clone.parameters()) == params and repr(clone) == repr(bn)


def test_no_running_stats_uses_the_batch_in_both_modes():
    bn = L.BatchNorm2D(3, track_running_stats=False, dtype=np.float64)
    assert bn.state_dict().keys() == {"weight", "bias"}
    x = RNG.standard_normal((4, 3, 2, 2))
    y_train = bn(x)
    bn.eval()
    _close(bn(x), y_train)
    _close(y_train, reference.batch_norm2d_train(x, np.ones(3), np.zeros(3))[0])


def test_backward_after_eval_forward():
    """Eval mode: the running statistics are constants, dL/dx = g * weight / sqrt(var + eps)."""
    bn = L.BatchNorm2D(3, eps=1e-3, dtype=np.float64)
    rm, rv, w = RNG.standard_normal(3), RNG.uniform(0.5, 2, 3), RNG.uniform(0.5, 1.5, 3)
    bn.load_state_dict(dict(bn.state_dict(), running_mean=rm, running_var=rv, weight=w))
    bn.eval()
    x = RNG.standard_normal((2, 3, 3, 3))
    g = RNG.standard_normal(x.shape)
    _close(bn(x), reference.batch_norm2d_eval(x, w, np.zeros(3), rm, rv, eps=1e-3))
    gx = bn.backward(g)
    num = reference.numerical_grad(
        lambda v: np.sum(g * reference.batch_norm2d_eval(v, w, np.zeros(3), rm, rv, eps=1e-3)), x
    )
    np.testing.assert_allclose(gx, num, rtol=1e-6, atol=1e-8)
    xhat = (x - rm[None, :, None, None]) / np.sqrt(rv + 1e-3)[None, :, None, None]
    _close(bn.grads()["weight"], np.sum(g * xhat, axis=(0, 2, 3)))
    _close(bn.grads()["bias"], np.sum(g, axis=(0, 2, 3)))


@pytest.mark.parametrize("momentum", [0.1, None])
@pytest.mark.parametrize("track", [True, False])
def test_empty_batch_in_training(momentum, track):
    """N = 0 in training mode (torch 2.13): empty output, running statistics unchanged, the
    batch still counted in num_batches_tracked; empty input gradient, zero parameter
    gradients."""
    bn = L.BatchNorm2D(3, momentum=momentum, track_running_stats=track)
    before = {k: v.copy() for k, v in bn.state_dict().items()}
    x = np.zeros((0, 3, 4, 4), np.float32)
    y = bn(x)
    assert y.shape == x.shape and y.dtype == np.float32
    gx = bn.backward(np.zeros_like(y))
    assert gx.shape == x.shape
    np.testing.assert_array_equal(bn.grads()["weight"], 0)
    np.testing.assert_array_equal(bn.grads()["bias"], 0)
    sd = bn.state_dict()
    for k in ("running_mean", "running_var") if track else ():
        np.testing.assert_array_equal(sd[k], before[k])
    if track:
        assert sd["num_batches_tracked"] == 1
    # and the next real batch is normalised and tracked as usual
    bn(RNG.standard_normal((2, 3, 2, 2)).astype(np.float32))


def test_functional_empty_batch_leaves_running_stats():
    rm, rv = np.full(2, 0.5), np.full(2, 2.0)
    y, mean, invstd = F.batch_norm(np.zeros((0, 2, 3)), rm, rv, training=True, return_stats=True)
    assert y.shape == (0, 2, 3)
    np.testing.assert_array_equal(rm, 0.5)
    np.testing.assert_array_equal(rv, 2.0)
    gx, gw, gb = F.batch_norm_backward(
        np.zeros((0, 2, 3)), np.zeros((0, 2, 3)), mean, invstd, np.ones(2), training=True
    )
    assert gx.shape == (0, 2, 3)
    np.testing.assert_array_equal(gw, 0)
    np.testing.assert_array_equal(gb, 0)
    with pytest.raises(ValueError, match="more than 1 value"):
        F.batch_norm(np.zeros((1, 2, 1)), rm, rv, training=True)


def test_device_and_dtype():
    assert L.BatchNorm2D(2).dtype == np.float32
    assert L.BatchNorm2D(2, dtype=None).dtype == np.float32
    assert L.BatchNorm2D(2, device="cpu", dtype="float64").dtype == np.float64
    with pytest.raises(ValueError, match="device"):
        L.BatchNorm2D(2, device="cuda")
    with pytest.raises(TypeError, match="dtype"):
        L.BatchNorm2D(2, dtype=np.int32)


@pytest.mark.parametrize(
    "where, message",
    [
        ("mean in out", "running_mean and out"),
        ("var in out", "running_var and out"),
        ("mean in x, out=x", "running_mean and out"),
        ("same array", "running_mean and running_var"),
    ],
)
def test_running_statistics_sharing_memory_with_out_are_refused(where, message):
    """Training writes the running statistics after y: inside out (or inside x written over
    by out=x) they would overwrite the result, silently. Refused, and nothing is written; in
    eval mode they are only read, and may be anywhere."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 3))
    out = np.full((4, 3), np.nan)
    rm, rv = np.zeros(3), np.ones(3)
    if where == "mean in out":
        rm = out[0]
    elif where == "var in out":
        rv = out[1]
    elif where == "mean in x, out=x":
        rm, out = x[0], x
    else:
        rv = rm
    before = x.copy(), out.copy(), rm.copy(), rv.copy()
    with pytest.raises(ValueError, match=rf"^batch_norm: {message} must not share memory"):
        F.batch_norm(x, rm, rv, training=True, out=out)
    for a, b in zip((x, out, rm, rv), before, strict=True):
        np.testing.assert_array_equal(a, b)
    y = F.batch_norm(x, np.abs(rm), np.abs(rv), training=False)  # eval mode reads them only
    want = (x - np.abs(rm)) / np.sqrt(np.abs(rv) + 1e-5)
    np.testing.assert_allclose(y, want, rtol=1e-12, atol=1e-12)


def test_running_statistics_inside_x_are_updated_after_y():
    """Without out, statistics inside x are written after y is computed from x (as torch):
    y is what copies of them give, and they end up in x."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((5, 3))
    x[0], x[1] = 0.0, 1.0  # the statistics' starting values, inside x
    want_y = F.batch_norm(x.copy(), np.zeros(3), np.ones(3), training=True)
    rm, rv = np.zeros(3), np.ones(3)
    F.batch_norm(x.copy(), rm, rv, training=True)
    y = F.batch_norm(x, x[0], x[1], training=True)
    np.testing.assert_array_equal(y, want_y)
    np.testing.assert_array_equal(x[0], rm)
    np.testing.assert_array_equal(x[1], rv)
