"""API contracts (issue 9, "Numerics and contracts").

* fit checks its arguments before the first update: labels against the loss and the model's
  output, the optimizer's arrays against the model's, generator / 0-d inputs, y=None and
  reduction='none' losses; a NaN loss stops training with a clear error (on_nan='continue'
  keeps going).
* Pooling layers take Python lists like the conv layers do.

(The softmax family with non-finite logits is compared with torch in
tests/parity/test_parity_nonfinite.py.)
"""

import numpy as np
import pytest

import convext
from convext import functional as F
from convext import layers as L


def _blobs(n=20, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    centres = np.array([[3, 0, 0, 0], [0, 3, 0, 0], [0, 0, 3, 0]], np.float64)
    X = centres[y] + rng.standard_normal((n, 4)) * 0.5
    return X.astype(np.float32), y


def _mlp(seed=0):
    return L.Sequential(L.Dense(4, 8), L.ReLU(), L.Dense(8, 3)).reset_parameters(seed)


def _snapshot(model):
    return {k: v.copy() for k, v in model.state_dict().items()}


def _assert_unchanged(model, before):
    after = model.state_dict()
    assert after.keys() == before.keys()
    for k in before:
        np.testing.assert_array_equal(after[k], before[k], err_msg=k)


def _fit(model, X, y, loss="cross_entropy", opt=None, **kw):
    opt = cx_optim_sgd(model) if opt is None else opt
    kw.setdefault("progress", False)
    return convext.fit(model, X, y, loss, opt, kw.pop("epochs", 1), kw.pop("batch_size", 4), **kw)


def cx_optim_sgd(model):
    return convext.optim.SGD(model, lr=0.1, momentum=0.9)


@pytest.mark.parametrize("bad_label", [3, -1, 100])
def test_fit_checks_labels_in_range_before_any_update(bad_label):
    X, y = _blobs()
    y = y.copy()
    y[-1] = bad_label  # only the 5th (last) batch holds it: it used to fail after 4 updates
    model = _mlp()
    before = _snapshot(model)
    with pytest.raises(ValueError, match=r"y does not fit the loss") as e:
        _fit(model, X, y, shuffle=False)
    assert "(N, 3)" in str(e.value) and "y[16:20]" in str(e.value)
    _assert_unchanged(model, before)


@pytest.mark.parametrize(
    "loss, y_of",
    [
        ("cross_entropy", lambda y: y[:, None]),  # (N, 1) indices
        ("cross_entropy", lambda y: np.eye(4, dtype=np.float32)[y]),  # 4 classes, model has 3
        ("cross_entropy", lambda y: y.astype(np.float32)),  # float class indices
        ("mse", lambda y: np.zeros((len(y), 2), np.float32)),  # (N, 2) for (N, 3)
    ],
)
def test_fit_checks_label_shape_before_any_update(loss, y_of):
    X, y = _blobs()
    model = _mlp()
    before = _snapshot(model)
    with pytest.raises((ValueError, TypeError), match="y does not fit the loss"):
        _fit(model, X, y_of(y), loss=loss)
    _assert_unchanged(model, before)


def test_fit_nan_loss_stops_before_the_bad_update():
    X, y = _blobs()
    X_nan = X.copy()
    X_nan[9, 2] = np.nan  # batch 3 of 5 (batch_size 4, no shuffling)
    ref, model = _mlp(), _mlp()
    _fit(ref, X[:8], y[:8], shuffle=False)  # the two finite batches only
    with pytest.raises(convext.NonFiniteLossError, match=r"loss is nan at epoch 1, batch 3") as e:
        _fit(model, X_nan, y, shuffle=False)
    assert isinstance(e.value, ValueError) and isinstance(e.value, FloatingPointError)
    assert "on_nan='continue'" in str(e.value)
    _assert_unchanged(model, _snapshot(ref))  # the parameters of the last finite step


def test_fit_on_nan_continue_keeps_going():
    X, y = _blobs()
    X[9, 2] = np.nan
    model = _mlp()
    hist = _fit(model, X, y, shuffle=False, epochs=2, on_nan="continue")
    assert len(hist["loss"]) == 2 and np.isnan(hist["loss"]).all()
    with pytest.raises(ValueError, match="on_nan must be 'raise' or 'continue'"):
        _fit(_mlp(), X, y, on_nan="ignore")


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
def test_fit_inf_loss_stops_too():
    X, y = _blobs()
    model = L.Sequential(L.Dense(4, 3)).reset_parameters(0)
    Xi = X.copy()
    Xi[0] = np.float32(3e38)  # finite inputs whose squared error overflows float32
    before = _snapshot(model)
    with pytest.raises(convext.NonFiniteLossError, match="loss is inf"):
        _fit(model, Xi, np.zeros((len(X), 3), np.float32), loss="mse", shuffle=False)
    _assert_unchanged(model, before)


def test_fit_refuses_an_optimizer_of_other_arrays():
    X, y = _blobs()
    model, other = _mlp(), _mlp(1)
    before = _snapshot(model)
    with pytest.raises(ValueError, match="optimizer.*not a parameter of this model"):
        _fit(model, X, y, opt=convext.optim.SGD(other, lr=0.1))
    copies = [
        (p.copy(), g.copy())
        for p, g in zip(model.parameters().values(), model.grads().values(), strict=True)
    ]
    with pytest.raises(ValueError, match="optimizer.*not a parameter of this model"):
        _fit(model, X, y, opt=convext.optim.SGD(copies, lr=0.1))
    p0 = model.parameters()["0.weight"]
    wrong_grad = [(p0, np.zeros_like(p0))]
    with pytest.raises(ValueError, match="optimizer.*not the model's gradient array"):
        _fit(model, X, y, opt=convext.optim.SGD(wrong_grad, lr=0.1))
    with pytest.raises(TypeError, match="optimizer must have zero_grad"):
        _fit(model, X, y, opt=object())
    _assert_unchanged(model, before)


def test_fit_with_an_optimizer_over_part_of_the_model_trains_that_part():
    X, y = _blobs()
    model = _mlp()
    before = _snapshot(model)
    last = model.layers[2]
    opt = convext.optim.SGD(last, lr=0.1)  # first layer frozen
    _fit(model, X, y, opt=opt)
    after = model.state_dict()
    np.testing.assert_array_equal(after["0.weight"], before["0.weight"])
    assert not np.array_equal(after["2.weight"], before["2.weight"])


def test_fit_argument_errors_name_the_argument():
    X, y = _blobs()
    model = _mlp()
    before = _snapshot(model)
    with pytest.raises(TypeError, match=r"^X must be an array .*generator"):
        _fit(model, (row for row in X), y)
    with pytest.raises(TypeError, match=r"^y must be an array .*generator"):
        _fit(model, X, (int(v) for v in y))
    with pytest.raises(ValueError, match=r"^y must be the targets for X, got None"):
        _fit(model, X, None)
    with pytest.raises(ValueError, match=r"^X must have a sample axis .*0-d"):
        _fit(model, np.float32(1.0), y)
    with pytest.raises(ValueError, match=r"^y must have a sample axis .*0-d"):
        _fit(model, X, np.int64(1))
    with pytest.raises(TypeError, match=r"^X must be an array .* of numbers.*dtype <U"):
        _fit(model, X.astype(str), y)
    with pytest.raises(ValueError, match=r"^loss must reduce .*reduction='none'"):
        _fit(model, X, y, loss=convext.losses.CrossEntropyLoss(reduction="none"))

    def per_sample(out, t):  # a callable that forgot to reduce
        return F.cross_entropy(out, t, reduction="none")

    with pytest.raises(ValueError, match=r"^loss must return one number per batch"):
        _fit(model, X, y, loss=per_sample)
    _assert_unchanged(model, before)


def test_fit_checks_validation_data_before_training():
    X, y = _blobs()
    model = _mlp()
    before = _snapshot(model)
    y_bad = y.copy()
    y_bad[-1] = 7
    with pytest.raises(ValueError, match=r"^y_val \(validation_data\) does not fit the loss"):
        _fit(model, X, y, validation_data=(X, y_bad))
    with pytest.raises(TypeError, match=r"^validation_data must be a pair"):
        _fit(model, X, y, validation_data=X)
    with pytest.raises(ValueError, match=r"^validation_data: y_val must be the targets"):
        _fit(model, X, y, validation_data=(X, None))
    with pytest.raises(TypeError, match=r"^validation_data: X must be an array"):
        _fit(model, X, y, validation_data=((r for r in X), y))
    with pytest.raises(ValueError, match=r"^validation_data: X and y must have the same"):
        _fit(model, X, y, validation_data=(X, y[:-1]))
    _assert_unchanged(model, before)


def test_predict_and_evaluate_refuse_generators_and_0d():
    X, y = _blobs()
    model = _mlp()
    with pytest.raises(TypeError, match="^X must be an array"):
        convext.predict(model, (row for row in X))
    with pytest.raises(ValueError, match="^X must have a sample axis"):
        convext.evaluate(model, np.float32(2.0), y, "cross_entropy")


# ---- pooling layers take Python lists like the conv layers ---------------------------------

POOL_LAYERS = [
    lambda: L.MaxPool2D(2),
    lambda: L.MaxPool2D(3, 1, 1),
    lambda: L.AvgPool2D(2),
    lambda: L.AvgPool2D(3, 2, 1),
    lambda: L.LPPool2D(2, 2),
    lambda: L.GlobalAvgPool2D(),
]


@pytest.mark.parametrize("make", POOL_LAYERS)
@pytest.mark.parametrize("training", [True, False])
def test_pooling_layers_accept_lists_like_conv(make, training):
    x = np.random.default_rng(3).standard_normal((2, 3, 6, 5))
    conv = L.Conv2D(3, 2, 3, dtype=np.float64).reset_parameters(0)
    conv.train(training)
    np.testing.assert_array_equal(conv(x.tolist()), conv(x))  # the conv layers convert
    ref, lay = make(), make()
    ref.train(training)
    lay.train(training)
    y_ref, y = ref(x), lay(x.tolist())
    assert y.dtype == np.float64
    np.testing.assert_array_equal(y, y_ref)
    if training:
        g = np.random.default_rng(4).standard_normal(y.shape)
        np.testing.assert_array_equal(lay.backward(g), ref.backward(g))


@pytest.mark.parametrize("make", POOL_LAYERS)
def test_pooling_layers_refuse_lists_that_are_not_arrays_of_numbers(make):
    with pytest.raises(TypeError, match="x must have dtype"):
        make()([[["a", "b"], ["c", "d"]]])
    with pytest.raises(ValueError):
        make()([[[[1.0, 2.0], [3.0]]]])


def test_keep_plain_results_tells_types_apart():
    """The geometry checks' memo keeps results for plain arguments only, keyed with their types
    (True == 1 == 1.0 hash alike): anything else runs the check on every call."""
    from convext._validation import keep_plain_results

    calls = []

    @keep_plain_results
    def check(*args):
        calls.append(args)
        return len(calls)

    assert check(1, (2, 3), "a", None) == 1
    assert check(1, (2, 3), "a", None) == 1  # kept
    assert check(True, (2, 3), "a", None) == 2  # a bool is not the int 1
    assert check((1,), (2, 3), "a", None) == 3
    for other in (1.0, [2, 3], (2, np.int64(3))):
        n = len(calls)
        assert check(other, (2, 3), "a", None) == n + 1
        assert check(other, (2, 3), "a", None) == n + 2  # not kept: checked every time
