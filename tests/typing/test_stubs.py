"""The .pyi stubs of the compiled modules against the modules themselves.

`python -m mypy.stubtest` (.github/scripts/lint_check.sh) checks the stubs in depth, but it
cannot read the signature of a Cython fused function (every kernel taking float32/float64
arrays) and passes them unchecked: this test compares their parameter names and defaults with
``inspect.signature`` of the built functions, and runs without mypy.
"""

import ast
import importlib
import inspect
from pathlib import Path

import pytest

import convext._kernels

KERNELS = Path(convext._kernels.__file__).parent
MODULES = [
    "_activations",
    "_batchnorm",
    "_conv",
    "_cpu_info",
    "_isa",
    "_linear",
    "_peak",
    "_pointwise",
    "_pool",
    "_resample",
    "_threads",
]


def test_every_compiled_module_has_a_stub():
    compiled = {p.name.split(".")[0] for p in KERNELS.iterdir() if p.suffix in (".so", ".pyd")}
    assert compiled == set(MODULES)
    for name in MODULES:
        assert (KERNELS / f"{name}.pyi").is_file(), f"{name}.pyi is not installed"


def _stub_functions(name):
    tree = ast.parse((KERNELS / f"{name}.pyi").read_text())
    return {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}


def _stub_classes(name):
    tree = ast.parse((KERNELS / f"{name}.pyi").read_text())
    return {node.name for node in tree.body if isinstance(node, ast.ClassDef)}


@pytest.mark.parametrize("name", MODULES)
def test_stub_signatures_match_the_module(name):
    module = importlib.import_module(f"convext._kernels.{name}")
    stubs = _stub_functions(name)
    public = {
        n: v
        for n, v in vars(module).items()
        if callable(v)
        and not n.startswith("_")
        and getattr(v, "__module__", None) == module.__name__
    }
    classes = {n for n, v in public.items() if isinstance(v, type)}
    assert classes == _stub_classes(name), f"{name}: classes {sorted(classes)}"
    functions = set(public) - classes
    assert functions == set(stubs), f"{name}: runtime {sorted(functions)} vs stub {sorted(stubs)}"
    for fname, node in stubs.items():
        params = inspect.signature(getattr(module, fname)).parameters.values()
        got = [(p.name, p.default is not inspect.Parameter.empty) for p in params]
        args = node.args.args
        n_defaults = len(node.args.defaults)
        defaults = [False] * (len(args) - n_defaults) + [True] * n_defaults
        want = [(a.arg, d) for a, d in zip(args, defaults, strict=True)]
        assert got == want, f"{name}.{fname}: runtime {got} vs stub {want}"
