"""Layer.summary() (issue 15): layers, output shapes and parameter counts."""

import re

import numpy as np
import pytest

from convext import layers as L


def _rows(text):
    """(label, shape text, count text) of each layer row of the table."""
    lines = text.splitlines()
    body = lines[3 : lines.index("=" * len(lines[0]), 3)]
    return [tuple(re.split(r"\s{2,}", line.strip())) for line in body]


def _cnn():
    return L.Sequential(
        L.Conv2D(1, 4, 3, padding=1), L.ReLU(), L.MaxPool2D(2), L.Flatten(), L.Dense(64, 10)
    ).reset_parameters(0)


def test_sequential_rows_shapes_and_counts():
    model = _cnn()
    printed = []
    text = model.summary((2, 1, 8, 8), print_fn=printed.append)
    assert printed == [text]
    rows = _rows(text)
    assert [r[0] for r in rows] == [
        "Sequential",
        "0 (Conv2D)",
        "1 (ReLU)",
        "2 (MaxPool2D)",
        "3 (Flatten)",
        "4 (Dense)",
    ]
    # each shape, from running the layers one after another by hand
    x = np.zeros((2, 1, 8, 8), np.float32)
    for layer, row in zip(model, rows[1:], strict=True):
        x = layer(x)
        assert row[1] == str(x.shape)
        assert row[2] == f"{sum(p.size for p in layer.parameters().values()):,}"
    assert rows[0][1] == str(x.shape) and rows[0][2] == "--"
    total = sum(p.size for p in model.parameters().values())
    assert f"Total params: {total:,}" in text and total == 4 * 9 + 4 + 64 * 10 + 10


def test_nested_composite_and_nothing_changes():
    block = L.Sequential(L.Conv2D(4, 4, 3, padding=1), L.BatchNorm2D(4), L.ReLU())
    model = L.Sequential(
        L.Conv2D(3, 4, 1),
        L.Residual(block),
        L.Concat(L.Identity(), L.Conv2D(4, 2, 1)),
        L.GlobalAvgPool2D(),
        L.Flatten(),
        L.Dense(6, 3),
    ).reset_parameters(1)
    model.train()
    before = model.state_dict()
    text = model.summary((1, 3, 5, 5), print_fn=None)
    rows = _rows(text)
    labels = [r[0] for r in rows]
    assert labels[:7] == [
        "Sequential",
        "0 (Conv2D)",
        "1 (Residual)",
        "body (Sequential)",
        "0 (Conv2D)",
        "1 (BatchNorm2D)",
        "2 (ReLU)",
    ]
    lines = text.splitlines()
    indent = {line.strip().split("  ")[0]: len(line) - len(line.lstrip()) for line in lines}
    assert indent["1 (Residual)"] == 2 and indent["body (Sequential)"] == 4
    by_label = dict(zip(labels, rows, strict=False))
    assert by_label["2 (Concat)"][1] == "(1, 6, 5, 5)"
    assert by_label["1 (BatchNorm2D)"][2] == "8"
    counted = sum(int(r[2].replace(",", "")) for r in rows if r[2] != "--")
    assert counted == sum(p.size for p in model.parameters().values())
    assert f"Buffers (not trained): {sum(b.size for b in model.buffers().values()):,}" in text
    assert model.training and all(layer.training for _, layer in model.named_layers())
    after = model.state_dict()  # eval mode: BatchNorm's running statistics untouched
    assert all(np.array_equal(before[k], after[k]) for k in before)
    assert all("forward" not in layer.__dict__ for _, layer in model.named_layers())


def test_summary_restores_every_layers_mode():
    model = L.Sequential(L.Conv2D(1, 2, 3), L.BatchNorm2D(2), L.ReLU())
    model[1].eval()  # frozen statistics inside a model in training mode
    model.summary((1, 1, 8, 8), print_fn=None)
    assert [layer.training for _, layer in model.named_layers()] == [True, True, False, True]


def test_summary_errors_leave_the_model_as_it_was():
    model = _cnn()
    with pytest.raises(TypeError, match="^input_shape must be a tuple"):
        model.summary(None)
    with pytest.raises(ValueError, match="^input_shape must hold positive sizes"):
        model.summary((0, 1, 8, 8))
    with pytest.raises(ValueError):
        model.summary((1, 3, 8, 8))  # 3 channels into Conv2D(1, ...)
    assert model.training
    assert all("forward" not in layer.__dict__ for _, layer in model.named_layers())
    assert _rows(model.summary((1, 1, 8, 8), print_fn=None))[1][1] == "(1, 4, 8, 8)"
