"""The layer registry lives in convext.layers; serialization imports the layers, never the
reverse; registering a layer type of one's own is public."""

import ast
import pathlib
import subprocess
import sys

import numpy as np
import pytest

import convext as cx
from convext import layers as L

LAYERS_DIR = pathlib.Path(L.__file__).parent


def test_importing_the_layers_does_not_import_serialization():
    code = (
        "import sys, convext.layers, convext\n"
        "print(sorted(m for m in sys.modules if 'serialization' in m))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "[]"


def test_no_layer_module_imports_serialization_even_inside_a_function():
    for path in sorted(LAYERS_DIR.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""] + [a.name for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            assert not any("serialization" in n for n in names), f"{path.name} line {node.lineno}"


def test_register_layer_is_public_and_one_name():
    assert cx.register_layer is L.register_layer is L.registry.register_layer
    assert "register_layer" in cx.__all__ and "register_layer" in L.__all__
    assert not hasattr(L.base, "register") and not hasattr(L.base, "LAYERS")
    assert L.LAYERS is L.registry.LAYERS


def test_a_registered_custom_layer_saves_and_loads(tmp_path):
    @cx.register_layer(name="test_registry.Scale")
    class Scale(cx.Layer):
        def __init__(self, factor=2.0):
            super().__init__()
            self.factor = float(factor)

        def get_config(self):
            return {"factor": self.factor}

        def forward(self, x):
            return x * self.factor

        def backward(self, grad_out, needs_input_grad=True):
            return grad_out * self.factor

    try:
        model = L.Sequential(L.Dense(3, 2, rng=0), Scale(3.0))
        model.save(tmp_path / "m.npz")
        back = cx.load(tmp_path / "m.npz")
        assert type(back[1]) is Scale and back[1].factor == 3.0
        x = np.arange(6, dtype=np.float32).reshape(2, 3)
        np.testing.assert_array_equal(back(x), model(x))
    finally:
        del L.LAYERS["test_registry.Scale"]


def test_unregistered_and_unconfigured_layers_say_how(tmp_path):
    class Unregistered(cx.Layer):
        def forward(self, x):
            return x

    with pytest.raises(TypeError, match=r"register_layer"):
        L.Sequential(Unregistered()).save(tmp_path / "u.npz")

    @cx.register_layer(name="test_registry.NoConfig")
    class NoConfig(cx.Layer):
        def __init__(self, width=3):
            super().__init__()
            self.width = width

    try:
        with pytest.raises(TypeError, match=r"width.*get_config"):
            NoConfig(5).save(tmp_path / "n.npz")
    finally:
        del L.LAYERS["test_registry.NoConfig"]
    assert not list(tmp_path.iterdir())


def test_a_taken_name_is_refused():
    with pytest.raises(ValueError, match="'ReLU' is taken"):

        @cx.register_layer(name="ReLU")
        class Other(cx.Layer):
            pass

    assert L.LAYERS["ReLU"] is L.ReLU
    with pytest.raises(TypeError, match="Layer subclass"):
        cx.register_layer(42)


def test_load_of_an_unknown_type_names_register_layer(tmp_path):
    class Temp(L.ReLU):
        pass

    cx.register_layer(Temp)
    try:
        L.Sequential(Temp()).save(tmp_path / "t.npz")
    finally:
        del L.LAYERS["Temp"]
    with pytest.raises(ValueError, match="unknown layer type 'Temp'.*register_layer"):
        cx.load(tmp_path / "t.npz")


def test_one_name_for_the_input_gradient_flag():
    import inspect

    for name in L.__all__:
        cls = getattr(L, name)
        if isinstance(cls, type) and issubclass(cls, cx.Layer):
            params = inspect.signature(cls.backward).parameters
            assert "needs_input_grad" in params and "input_grad" not in params, name
