"""convext.sklearn (issue 15): scikit-learn's own estimator checks, and the estimators inside
scikit-learn's tools (clone, Pipeline, GridSearchCV, cross_val_score)."""

import numpy as np
import pytest

pytest.importorskip("sklearn")
from sklearn.base import clone  # noqa: E402
from sklearn.datasets import load_digits, make_regression  # noqa: E402
from sklearn.model_selection import GridSearchCV, cross_val_score  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

import convext as cx  # noqa: E402
from convext import layers as L  # noqa: E402
from convext.sklearn import ConvNetClassifier, ConvNetRegressor  # noqa: E402


@parametrize_with_checks([ConvNetClassifier(), ConvNetRegressor()])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def _digits(n=300):
    d = load_digits()
    return (d.data[:n] / 16.0).astype(np.float32), d.target[:n]


def _same_params(a, b):
    pa, pb = a.state_dict(), b.state_dict()
    return pa.keys() == pb.keys() and all(np.array_equal(pa[k], pb[k]) for k in pa)


def test_classifier_on_digits_with_input_shape_and_probabilities():
    X, y = _digits()
    clf = ConvNetClassifier(input_shape=(1, 8, 8), epochs=8, random_state=0).fit(X, y)
    assert isinstance(clf.model_[0], cx.Conv2D)  # the default network for images
    assert list(clf.classes_) == list(range(10)) and clf.n_features_in_ == 64
    P = clf.predict_proba(X)
    assert P.shape == (300, 10) and P.dtype == np.float64
    np.testing.assert_allclose(P.sum(axis=1), 1.0, rtol=1e-12)
    assert np.array_equal(clf.classes_[P.argmax(axis=1)], clf.predict(X))
    assert clf.score(X, y) > 0.9
    assert len(clf.history_["loss"]) == 8
    # the same fit again: bitwise the same network
    again = clone(clf).fit(X, y)
    assert _same_params(clf.model_, again.model_)
    with pytest.raises(ValueError, match="input_shape .* does not hold the 64 features"):
        ConvNetClassifier(input_shape=(1, 7, 7)).fit(X, y)


def test_string_labels_and_binary_decision_function():
    X, y = _digits(200)
    labels = np.where(y < 5, "low", "high")
    clf = ConvNetClassifier(epochs=5, random_state=1).fit(X, labels)
    assert list(clf.classes_) == ["high", "low"]
    d = clf.decision_function(X)
    assert d.shape == (200,)
    assert np.array_equal(clf.predict(X), clf.classes_[(d > 0).astype(int)])


def test_partial_fit_twice_equals_fit_two_epochs():
    X, y = _digits(120)
    a = ConvNetClassifier(epochs=2, random_state=3).fit(X, y)
    b = ConvNetClassifier(random_state=3)
    b.partial_fit(X, y, classes=np.arange(10))
    b.partial_fit(X, y)
    assert _same_params(a.model_, b.model_) and a.history_ == b.history_
    with pytest.raises(ValueError, match=r"labels \[42\] that are not in classes_"):
        b.partial_fit(X[:3], np.array([1, 2, 42]))


def test_network_as_layer_and_as_factory():
    X, y = _digits(150)
    net = L.Sequential(L.Dense(64, 16), L.ReLU(), L.Dense(16, 10))
    before = net.state_dict()
    clf = ConvNetClassifier(network=net, epochs=2, random_state=0).fit(X, y)
    assert (
        clf.model_ is not net
        and _same_params(net, net)
        and all(np.array_equal(v, net.state_dict()[k]) for k, v in before.items())
    )
    assert clf.model_[0].out_features == 16
    seen = []

    def factory(shape, n_out):
        seen.append((shape, n_out))
        return L.Sequential(L.Flatten(), L.Dense(64, n_out))

    ConvNetClassifier(network=factory, epochs=1).fit(X, y)
    ConvNetClassifier(network=factory, input_shape=(1, 8, 8), epochs=1).fit(X, y)
    assert seen == [(64, 10), ((1, 8, 8), 10)]
    with pytest.raises(TypeError, match="network must be None"):
        ConvNetClassifier(network=3).fit(X, y)
    with pytest.raises(ValueError, match="optimizer must be one of"):
        ConvNetClassifier(optimizer="lbfgs").fit(X, y)


def test_pipeline_gridsearch_and_cross_val_score():
    X, y = _digits(240)
    pipe = make_pipeline(StandardScaler(), ConvNetClassifier(epochs=4, random_state=0))
    scores = cross_val_score(pipe, X, y, cv=3)
    assert scores.shape == (3,) and scores.mean() > 0.8
    grid = GridSearchCV(
        ConvNetClassifier(epochs=3, random_state=0),
        {"lr": [1e-3, 1e-2], "optimizer": ["adam", "sgd"]},
        cv=2,
    )
    grid.fit(X, y)
    assert set(grid.best_params_) == {"lr", "optimizer"}
    assert len(grid.cv_results_["mean_test_score"]) == 4
    clf = ConvNetClassifier(lr=0.5)
    assert clone(clf).set_params(lr=0.1).get_params()["lr"] == 0.1 and clf.lr == 0.5


def test_regressor_single_and_multi_output():
    X, y = make_regression(200, 6, n_targets=2, noise=0.1, random_state=0)
    y = y / y.std(axis=0)
    reg = ConvNetRegressor(epochs=40, random_state=0).fit(X, y)
    assert reg.predict(X).shape == (200, 2) and reg.score(X, y) > 0.9
    one = ConvNetRegressor(epochs=40, random_state=0).fit(X, y[:, 0])
    p = one.predict(X)
    assert p.shape == (200,) and p.dtype == np.float64 and one.score(X, y[:, 0]) > 0.9
    with pytest.raises(ValueError, match="targets"):
        one.partial_fit(X, y)


def test_a_refit_that_fails_on_its_arguments_leaves_the_fitted_estimator():
    X, y = _digits(120)
    clf = ConvNetClassifier(epochs=2, random_state=3).fit(X, y)
    model, classes, predicted = clf.model_, clf.classes_.copy(), clf.predict(X)
    for params, error in [
        ({"lr": float("nan")}, ValueError),
        ({"validation_split": 1.0}, ValueError),
        ({"optimizer_params": [1]}, TypeError),
        ({"optimizer_params": {"foo": 1}}, TypeError),
    ]:
        with pytest.raises(error, match="lr|validation_split|optimizer_params"):
            clone(clf).set_params(**params).fit(X, y)  # a clone: the baseline
        with pytest.raises(error, match="lr|validation_split|optimizer_params"):
            clf.set_params(**params).fit(X, y + 5)
        clf.set_params(lr=1e-3, validation_split=0.0, optimizer_params=None)
        assert clf.model_ is model and np.array_equal(clf.classes_, classes)
        assert np.array_equal(clf.predict(X), predicted)
    fresh = ConvNetClassifier(lr=float("nan"), random_state=3)
    with pytest.raises(ValueError, match="lr"):
        fresh.partial_fit(X, y, classes=np.arange(10))
    assert not hasattr(fresh, "model_")
    fresh.set_params(lr=1e-3).partial_fit(X, y, classes=np.arange(10))  # a first call again
    assert hasattr(fresh, "optimizer_")
