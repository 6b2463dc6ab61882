"""A small program written against convext's public API, type-checked by
``mypy --config-file pyproject.toml tests/typing/typed_example.py`` ([tool.mypy], strict) in
.github/scripts/lint_check.sh, and run by tests/typing/test_typed_example.py.

``assert_type`` makes mypy fail when an annotation of the public API changes what a caller
sees; at run time it returns its argument.
"""

from __future__ import annotations

import os
import tempfile
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

import convext as cx
from convext import functional as F
from convext import layers as L
from convext import models, optim

if TYPE_CHECKING:
    from typing_extensions import assert_type
else:

    def assert_type(value, _type):
        return value


FloatArray = NDArray[np.floating[Any]]


def functional_api(rng: np.random.Generator) -> float:
    x = rng.standard_normal((2, 3, 8, 8)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    y = assert_type(F.conv2d(x, w, padding="same"), FloatArray)
    gx, gw, gb = cx.conv2d_backward(np.ones_like(y), x, w, padding=1, needs_bias_grad=False)
    assert gx is not None and gw is not None and gb is None
    pooled = assert_type(F.max_pool2d(F.relu(y), 2), FloatArray)
    same, indices = F.max_pool2d(F.relu(y), 2, return_indices=True)
    assert_type(indices, NDArray[np.int64])
    assert np.array_equal(same, pooled)
    size = F.conv_output_size(8, 3, stride=2)
    assert size == 3
    dense = rng.standard_normal((5, 64)).astype(np.float32)
    loss, grad = F.cross_entropy(F.linear(pooled.reshape(2, -1), dense), np.array([0, 4]))
    assert_type(grad, FloatArray)
    return float(loss)


def layer_api(rng: np.random.Generator) -> dict[str, float]:
    model = L.Sequential(
        L.Conv2D(1, 4, 3, padding=1, rng=0),
        L.ReLU(),
        L.MaxPool2D(2),
        L.Flatten(),
        L.Dense(4 * 4 * 4, 3, rng=1),
    )
    x = rng.standard_normal((6, 1, 8, 8)).astype(np.float32)
    labels = rng.integers(0, 3, 6)
    out = assert_type(model(x), FloatArray)
    g = model.backward(np.ones_like(out))
    assert g is not None and g.shape == x.shape
    model.zero_grad()
    opt = optim.SGD(model, lr=0.01, momentum=0.9)
    history = assert_type(
        cx.fit(model, x, labels, "cross_entropy", opt, epochs=2, batch_size=3, progress=False),
        dict[str, list[float]],
    )
    assert len(history["loss"]) == 2
    predictions = assert_type(cx.predict(model, x), FloatArray)
    assert predictions.shape == (6, 3)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.npz")
        model.save(path)
        again = assert_type(cx.load(path), L.Layer)
        weights = cx.read_state_dict(path)
        assert set(weights) == set(model.state_dict())
    assert np.array_equal(again.eval()(x), model.eval()(x))
    return cx.evaluate(model, x, labels, "cross_entropy")


def model_zoo() -> int:
    net = assert_type(models.lenet5(num_classes=10, rng=0), L.Sequential)
    resnet = assert_type(models.resnet18(num_classes=4, rng=0), models.ResNet)
    return len(net.parameters()) + len(resnet.parameters())


def main() -> None:
    rng = np.random.default_rng(0)
    assert np.isfinite(functional_api(rng))
    assert "loss" in layer_api(rng)
    assert model_zoo() > 0
    assert cx.get_num_threads() >= 1


if __name__ == "__main__":
    main()
