"""fit / evaluate / predict."""

import numpy as np
import pytest

import convext as cx
from convext import layers as L


def _blobs(n=240, seed=0):
    """Three well separated Gaussian classes in 4-D."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    centres = np.array([[3, 0, 0, 0], [0, 3, 0, 0], [0, 0, 3, 0]], np.float64)
    X = centres[y] + rng.standard_normal((n, 4)) * 0.5
    return X.astype(np.float32), y


def _mlp(seed=0):
    return L.Sequential(L.Dense(4, 16), L.ReLU(), L.Dense(16, 3)).reset_parameters(seed)


def test_fit_learns_and_reports_history(capsys):
    X, y = _blobs()
    model = _mlp()
    opt = cx.optim.Adam(model, lr=0.05)
    hist = cx.fit(
        model,
        X[:200],
        y[:200],
        cx.losses.CrossEntropyLoss(),
        opt,
        epochs=5,
        batch_size=32,
        validation_data=(X[200:], y[200:]),
        rng=0,
        progress=False,
    )
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""
    assert set(hist) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert all(len(v) == 5 for v in hist.values())
    assert hist["loss"][-1] < hist["loss"][0]
    assert hist["accuracy"][-1] > 0.95 and hist["val_accuracy"][-1] > 0.95
    res = cx.evaluate(model, X[200:], y[200:], "cross_entropy", batch_size=7)
    assert res["loss"] == pytest.approx(hist["val_loss"][-1], rel=1e-6)
    assert res["accuracy"] == hist["val_accuracy"][-1]
    pred = cx.predict(model, X[200:], batch_size=7)
    assert pred.shape == (40, 3) and pred.dtype == np.float32
    assert np.mean(pred.argmax(1) == y[200:]) == res["accuracy"]


def test_fit_is_reproducible_and_shuffle_off():
    X, y = _blobs(100)
    h = []
    for _ in range(2):
        model = _mlp(1)
        h.append(
            cx.fit(
                model,
                X,
                y,
                "cross_entropy",
                cx.optim.SGD(model, lr=0.1, momentum=0.9),
                epochs=2,
                batch_size=16,
                rng=3,
                progress=False,
            )
        )
    assert h[0] == h[1]
    model = _mlp(1)
    h3 = cx.fit(
        model,
        X,
        y,
        "cross_entropy",
        cx.optim.SGD(model, lr=0.1),
        epochs=1,
        batch_size=100,
        shuffle=False,
        progress=False,
    )
    # one full batch, no shuffling: the reported loss is the loss at the initial weights
    init = _mlp(1)
    assert h3["loss"][0] == pytest.approx(
        cx.evaluate(init, X, y, "cross_entropy")["loss"], rel=1e-6
    )


def test_fit_regression_has_no_accuracy():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 3)).astype(np.float32)
    t = X @ np.array([[1.0], [-2.0], [0.5]], np.float32)
    model = L.Sequential(L.Dense(3, 1, rng=0))
    hist = cx.fit(
        model,
        X,
        t,
        cx.losses.MSELoss(),
        cx.optim.SGD(model, lr=0.1),
        epochs=30,
        batch_size=16,
        rng=0,
        progress=False,
    )
    assert set(hist) == {"loss"} and hist["loss"][-1] < 1e-3


def test_progress_output(capsys):
    X, y = _blobs(64)
    model = _mlp()
    cx.fit(
        model,
        X,
        y,
        "cross_entropy",
        cx.optim.SGD(model, lr=0.1),
        epochs=2,
        batch_size=16,
        progress=True,
    )
    err = capsys.readouterr().err
    assert "epoch 2/2" in err and "loss" in err


def test_fit_errors():
    X, y = _blobs(20)
    model = _mlp()
    opt = cx.optim.SGD(model, lr=0.1)
    with pytest.raises(ValueError, match="same length"):
        cx.fit(model, X, y[:-1], "cross_entropy", opt, 1, 4, progress=False)
    with pytest.raises(ValueError, match="batch_size"):
        cx.fit(model, X, y, "cross_entropy", opt, 1, 0, progress=False)
    with pytest.raises(ValueError, match="epochs"):
        cx.fit(model, X, y, "cross_entropy", opt, -1, 4, progress=False)
    with pytest.raises(ValueError, match="unknown loss"):
        cx.fit(model, X, y, "hinge", opt, 1, 4, progress=False)


def test_predict_restores_mode():
    model = _mlp()
    model.train()
    cx.predict(model, np.zeros((3, 4), np.float32))
    assert model.training
    model.eval()
    cx.predict(model, np.zeros((3, 4), np.float32))
    assert not model.training


def test_predict_and_evaluate_restore_every_layers_mode():
    """A BatchNorm frozen in eval mode inside a model in training mode (fine-tuning) stays
    frozen after predict / evaluate, and a layer left in training mode inside an eval-mode
    model stays so: each layer gets back its own mode, not the root's."""
    model = L.Sequential(L.Conv2D(1, 2, 3), L.BatchNorm2D(2), L.ReLU(), L.Flatten(), L.Dense(8, 3))
    X = np.random.default_rng(0).standard_normal((5, 1, 4, 4)).astype(np.float32)
    model.train()
    model[1].eval()
    cx.predict(model, X)
    # the model first, then its five layers
    assert [layer.training for _, layer in model.named_layers()] == [True, True, False] + [True] * 3
    cx.evaluate(model, X, np.array([0, 1, 2, 0, 1]), "cross_entropy")
    assert not model[1].training and model.training and model[0].training
    model.eval()
    model[4].train()
    cx.predict(model, X)
    assert [layer.training for _, layer in model.named_layers()] == [False] * 5 + [True]


def test_progress_without_tqdm(capsys, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "tqdm", None)
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    X, y = _blobs(32)
    model = _mlp()
    cx.fit(model, X, y, "cross_entropy", cx.optim.SGD(model, lr=0.1), epochs=1, batch_size=8)
    out = capsys.readouterr()
    assert out.out == "" and "epoch 1/1: loss" in out.err
