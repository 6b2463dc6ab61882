"""convext.__all__ is written out (for readers, ruff and mypy): it must list exactly the
top-level names, every layer class and every functional name, and each must exist."""

import convext as cx
from convext import functional as F
from convext import layers as L


def test_all_lists_every_layer_and_functional_name():
    names = set(cx.__all__)
    assert len(names) == len(cx.__all__), "a name is listed twice"
    assert set(L.__all__) - {"LAYERS"} <= names
    assert set(F.__all__) <= names
    for name in F.__all__:
        assert getattr(cx, name) is getattr(F, name), name
    for name in set(L.__all__) - {"LAYERS"}:
        assert getattr(cx, name) is getattr(L, name), name


def test_every_name_in_all_exists_and_star_import_works():
    missing = [n for n in cx.__all__ if not hasattr(cx, n)]
    assert not missing
    namespace: dict = {}
    exec("from convext import *", namespace)
    assert {"Conv2D", "Add", "Transpose", "conv2d", "load", "save", "fit"} <= set(namespace)
